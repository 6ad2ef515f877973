//! `format = json`: one JSON document holding an array of records, or an object holding one
//! at the dotted path `records`. Records are read strictly (a key given twice is E0209) and
//! then streamed like YAML records.

use super::{DUPLICATE_KEY_HELP, Opened, Row, read_records, row_error};
use crate::Expander;
use crate::strict_value::{self, ReadError};
use crate::value;
use assay_syntax::Code;
use serde_json::Value;
use std::io::Read;

/// Reads the document and streams its records to `each`.
pub(super) fn read(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    mut reader: Box<dyn Read + '_>,
    each: &mut dyn FnMut(&mut Expander<'_>, &mut Opened<'_>, Row) -> bool,
) {
    let d = opened.decl;
    let mut text = String::new();
    if let Err(e) = reader.read_to_string(&mut text) {
        let msg = format!("{} cannot be read: {e}", opened.display);
        row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
        return;
    }
    let doc = match strict_value::from_json(text.trim_start_matches('\u{feff}')) {
        Ok(v) => v,
        Err(ReadError::DuplicateKey { key, record }) => {
            let msg = if record > 0 {
                format!("{}: row {record} has the key `{key}` twice", opened.display)
            } else {
                format!("{} has the key `{key}` twice", opened.display)
            };
            let help = Some(DUPLICATE_KEY_HELP.into());
            row_error(ex, opened, d.name.span, Code::DuplicateColumn, msg, help);
            return;
        }
        Err(ReadError::Syntax(e) | ReadError::Truncated(e)) => {
            let msg = format!("{} is not valid JSON: {e}", opened.display);
            row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
            return;
        }
    };
    let records = d.props.get("records");
    let path = records.and_then(|p| p.value.as_str()).unwrap_or("");
    let mut at = &doc;
    let mut walked = Vec::new();
    for seg in path.split('.').filter(|s| !s.is_empty()) {
        walked.push(seg);
        match at.get(seg) {
            Some(v) => at = v,
            None => {
                let span = records.map_or(d.name.span, |p| p.value.span);
                let msg = format!(
                    "{} has nothing at `{}`: {} holds {}",
                    opened.display,
                    walked.join("."),
                    if walked.len() == 1 {
                        "the document".to_string()
                    } else {
                        format!("`{}`", walked[..walked.len() - 1].join("."))
                    },
                    keys_of(at)
                );
                let help =
                    "`records` is the dotted path of the list of records inside the document"
                        .to_string();
                row_error(ex, opened, span, Code::BadRow, msg, Some(help));
                return;
            }
        }
    }
    let Value::Array(rows) = at else {
        let msg = if path.is_empty() {
            format!(
                "{} holds {}; a JSON dataset is an array of records",
                opened.display,
                keys_of(at)
            )
        } else {
            format!(
                "{}: `{path}` holds {}, not an array of records",
                opened.display,
                value::kind(at)
            )
        };
        let help = "name the array inside the document with `records = \"data.items\"`";
        row_error(
            ex,
            opened,
            d.name.span,
            Code::BadRow,
            msg,
            Some(help.into()),
        );
        return;
    };
    let rows = rows.clone();
    drop(doc);
    read_records(ex, opened, rows, each);
}

/// What a JSON value holds, for messages: a record's keys, or its kind.
fn keys_of(v: &Value) -> String {
    match v {
        Value::Object(m) if !m.is_empty() => format!(
            "a record with the keys {}",
            m.keys()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => value::kind(other).to_string(),
    }
}
