//! Joins: `join = { dataset = NAME, key = EXPR, on = COLUMN }` reads the side dataset whole,
//! keyed by its `on` column, and gives each row of the joining dataset its one side row, read
//! as `NAME.COLUMN`. A key the side lacks, or holds twice, is a row problem (E0211).

use super::{Opened, Row, RowEnv, at, finish, keep, open_with, read_rows, row_error, typed};
use crate::Expander;
use crate::value;
use assay_syntax::ast::{Decl, Expr, ExprKind};
use assay_syntax::{Code, Span};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// `join = { dataset = NAME, key = EXPR, on = COLUMN }`: the joined rows by their `on` value
/// (`None` for a value two rows share).
pub(super) struct Join<'d> {
    name: String,
    key: &'d Expr,
    on: String,
    rows: BTreeMap<String, Option<Map<String, Value>>>,
    span: Span,
}

/// A joined dataset's name and its row for one row of the joining dataset.
pub(super) type SideRow = (String, Map<String, Value>);

/// Reads the joined dataset whole, keyed by its `on` column (typed and mapped as its own
/// declaration says). `None` when it cannot be read (reported).
pub(super) fn load_join<'d>(ex: &mut Expander<'_>, join: &'d Expr) -> Option<Join<'d>> {
    let ExprKind::Record(fields) = &join.kind else {
        return None;
    };
    let field = |k: &str| fields.iter().find(|p| p.key.name == k).map(|p| &p.value);
    let name = field("dataset")?.as_name()?.name.clone();
    let key = field("key")?;
    let on = field("on")?;
    let on = on
        .as_name()
        .map(|n| n.name.clone())
        .or_else(|| on.as_str().map(str::to_string))?;
    let def = ex.checked.model.definitions.get(&name)?;
    let Decl::Dataset(side) = &def.decl else {
        return None;
    };
    let module = std::mem::replace(&mut ex.module, def.module);
    // A joined dataset's own `join` is not followed: joins are one level deep.
    let opened = open_with(ex, &name, side, false);
    let mut rows = BTreeMap::new();
    let read = opened.is_some();
    if let Some(mut opened) = opened {
        read_rows(ex, &mut opened, &mut |ex, opened, row| {
            if let Some(fields) = typed(ex, opened, &row)
                && keep(ex, opened, &row, &fields, None)
                && let Some(k) = fields.get(&on).map(value::text)
            {
                match rows.entry(k) {
                    std::collections::btree_map::Entry::Vacant(v) => {
                        v.insert(Some(fields));
                    }
                    std::collections::btree_map::Entry::Occupied(mut o) => {
                        o.insert(None);
                    }
                }
            }
            true
        });
        finish(ex, &opened);
    }
    ex.module = module;
    // A joined dataset that cannot be read was reported; its rows would all be missing keys.
    if !read {
        return None;
    }
    Some(Join {
        name,
        key,
        on,
        rows,
        span: join.span,
    })
}

/// The joined row of a row, if the dataset joins one. `Err` after reporting a key the joined
/// dataset lacks or holds twice (E0211).
pub(super) fn joined(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    row: &Row,
    fields: &Map<String, Value>,
) -> Result<Option<SideRow>, ()> {
    let Some(join) = &opened.join else {
        return Ok(None);
    };
    let key = value::eval(
        join.key,
        &RowEnv {
            fields,
            joined: None,
        },
    )
    .map(|v| value::text(&v));
    let why = match key {
        Ok(k) => match join.rows.get(&k) {
            Some(Some(side)) => return Ok(Some((join.name.clone(), side.clone()))),
            Some(None) => format!("two rows of `{}` have {} \"{k}\"", join.name, join.on),
            None => format!("`{}` has no row whose {} is \"{k}\"", join.name, join.on),
        },
        Err(e) => format!("the join key cannot be evaluated: {e}"),
    };
    let (span, side) = (join.span, join.name.clone());
    let msg = format!("{}: {}: {why}", opened.display, at(row));
    let help = format!("joins are one to one: give `{side}` exactly one row for each key");
    row_error(ex, opened, span, Code::JoinKeyMissing, msg, Some(help));
    Err(())
}
