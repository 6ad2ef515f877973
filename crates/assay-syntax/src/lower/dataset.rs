//! Datasets: source properties, columns, value maps and the item block.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::schema;
use pest::iterators::Pair;

impl Lowerer {
    pub(super) fn lower_dataset(&mut self, pair: Pair<'_, Rule>) -> Dataset {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("dataset has a name"));
        let mut props = Vec::new();
        let mut columns: Vec<Column> = Vec::new();
        let mut value_maps = Vec::new();
        let mut item = None;
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::columns_block => {
                    for col in inner(p) {
                        let span = self.span(&col);
                        let mut c = inner(col);
                        let cname = self.string_or_code(c.next().expect("column has a name"));
                        let ty_word = self.ident(c.next().expect("column has a type"));
                        let nullable = c.next().is_some_and(|n| n.as_rule() == Rule::nullable);
                        let ty = match ty_word.name.as_str() {
                            "string" => ColumnType::String,
                            "int" => ColumnType::Int,
                            "float" => ColumnType::Float,
                            "bool" => ColumnType::Bool,
                            "list" => ColumnType::List,
                            "record" => ColumnType::Record,
                            _ => {
                                self.unknown_word(
                                    &ty_word,
                                    "column type",
                                    crate::schema::COLUMN_TYPES,
                                );
                                continue;
                            }
                        };
                        let first = columns
                            .iter()
                            .find(|c| c.name.value == cname.value)
                            .map(|c| c.name.span);
                        let what = format!("column `{}`", cname.value);
                        if self.repeated(Code::DuplicateKey, &what, "declared", cname.span, first) {
                            continue;
                        }
                        columns.push(Column {
                            name: cname,
                            ty,
                            nullable,
                            span,
                        });
                    }
                }
                Rule::value_map => value_maps.push(self.lower_value_map(p)),
                Rule::item_block => {
                    let block = inner(p).next().expect("item has a block");
                    let item_props = self.properties(block);
                    let owner = Ident {
                        name: name.name.clone(),
                        span: name.span,
                    };
                    let validated = self.validate(&schema::DATASET_ITEM, item_props, &owner);
                    if validated.get("prompt").is_none() && validated.get("turns").is_none() {
                        self.missing("dataset item of", &owner, &["prompt"]);
                    }
                    item = Some(validated);
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::DATASET, props, &name);
        if props.get("path").is_none() && props.get("url").is_none() && !self.lenient {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("dataset `{}` needs a `path` or a `url`", name.name),
                )
                .label("no source")
                .help("add `path = \"data/file.csv\"`, or `url = \"...\"` with `sha256 = \"...\"`"),
            );
        }
        // Without `item`, a dataset makes no items itself; templates may still read its
        // columns as variable domains.
        Dataset {
            name,
            props,
            columns,
            value_maps,
            item,
            span,
        }
    }

    pub(super) fn lower_value_map(&mut self, pair: Pair<'_, Rule>) -> ValueMap {
        let span = self.span(&pair);
        let mut parts = inner(pair).peekable();
        let column = self.string_or_code(parts.next().expect("map names a column"));
        let taxonomy = match parts.peek().map(Pair::as_rule) {
            Some(Rule::ident) => parts.next().map(|p| self.ident(p)),
            _ => None,
        };
        let mut rules: Vec<ValueRule> = Vec::new();
        for rule in parts {
            let span = self.span(&rule);
            let mut r = inner(rule);
            let from = self.string_or_code(r.next().expect("rule has a source"));
            let to = self.expr(r.next().expect("rule has a target"));
            let first = rules
                .iter()
                .find(|r| r.from.value == from.value)
                .map(|r| r.from.span);
            let what = format!("value \"{}\"", from.value);
            if self.repeated(Code::DuplicateKey, &what, "mapped", from.span, first) {
                continue;
            }
            rules.push(ValueRule { from, to, span });
        }
        ValueMap {
            column,
            taxonomy,
            rules,
            span,
        }
    }
}
