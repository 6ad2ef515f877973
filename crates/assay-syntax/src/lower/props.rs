//! Property bags: each key once, known to its block's schema, with a value of the right shape
//! and range.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::{Diagnostic, did_you_mean, ticked};
use crate::parser::Rule;
use crate::schema;
use crate::schema::Schema;
use crate::span::Span;
use pest::iterators::Pair;

/// Bounds of numeric keys, inclusive: a value outside is meaningless to every provider or
/// statistic that reads it.
const RANGES: &[(&str, f64, f64)] = &[
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("max_tokens", 1.0, f64::INFINITY),
    ("rate_limit", f64::MIN_POSITIVE, f64::INFINITY),
    ("concurrency", 1.0, f64::INFINITY),
    ("timeout", f64::MIN_POSITIVE, f64::INFINITY),
    ("confidence", f64::MIN_POSITIVE, 1.0 - f64::EPSILON),
    ("min_valid", 1.0, f64::INFINITY),
    ("max_turns", 1.0, f64::INFINITY),
    ("bootstrap", 1.0, f64::INFINITY),
];

impl Lowerer {
    pub(super) fn property(&mut self, pair: Pair<'_, Rule>) -> Property {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let key = self.ident(parts.next().expect("property has a key"));
        let value = self.expr(parts.next().expect("property has a value"));
        Property { key, value, span }
    }

    /// The properties directly inside `pair` (a `prop_block`, `record` or declaration).
    pub(super) fn properties(&mut self, pair: Pair<'_, Rule>) -> Vec<Property> {
        let props: Vec<Property> = inner(pair)
            .filter(|p| p.as_rule() == Rule::property)
            .map(|p| self.property(p))
            .collect();
        self.reject_duplicates(props)
    }

    /// Reports `what` at `span` as a repeat when it already stood at `first`; says whether it
    /// was one. `verb` is what a block does with it: "given", "declared", "bound".
    pub(super) fn repeated(
        &mut self,
        code: Code,
        what: &str,
        verb: &str,
        span: Span,
        first: Option<Span>,
    ) -> bool {
        let Some(first) = first else { return false };
        self.error(
            Diagnostic::new(code, span, format!("{what} is {verb} twice"))
                .label(format!("{verb} again here"))
                .secondary(first, format!("first {verb} here"))
                .help("keep one of the two"),
        );
        true
    }

    pub(super) fn reject_duplicates(&mut self, props: Vec<Property>) -> Vec<Property> {
        let mut out: Vec<Property> = Vec::with_capacity(props.len());
        for p in props {
            let first = out
                .iter()
                .find(|q| q.key.name == p.key.name)
                .map(|q| q.key.span);
            let what = format!("`{}`", p.key.name);
            if !self.repeated(Code::DuplicateKey, &what, "given", p.key.span, first) {
                out.push(p);
            }
        }
        out
    }

    /// Checks `props` against `schema` for the block called `owner`.
    pub(super) fn validate(
        &mut self,
        schema: &Schema,
        props: Vec<Property>,
        owner: &Ident,
    ) -> Props {
        let mut kept = Vec::with_capacity(props.len());
        let mut mistyped = Vec::new();
        for p in props {
            let Some(key) = schema.key(&p.key.name) else {
                let known = schema.keys.iter().map(|k| k.name);
                let suggestion = did_you_mean(&p.key.name, known);
                let d = Diagnostic::new(
                    Code::UnknownKey,
                    p.key.span,
                    format!(
                        "unknown key `{}` in {} `{}`",
                        p.key.name, schema.what, owner.name
                    ),
                )
                .label("not a key of this block");
                let d = match suggestion {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "{} accepts: {}",
                        schema.what,
                        ticked(schema.keys.iter().map(|k| k.name))
                    )),
                };
                self.error(d);
                continue;
            };
            if !key.shape.accepts(&p.value) {
                self.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        p.value.span,
                        format!(
                            "`{}` expects {}, found {}",
                            key.name,
                            key.shape.describe(),
                            p.value.describe()
                        ),
                    )
                    .label(format!("expected {}", key.shape.describe()))
                    .help(key.doc),
                );
                mistyped.push(p.key.name.clone());
                continue;
            }
            if let Some(word) = p.value.as_name() {
                self.check_word(key.name, word);
            }
            if !self.in_range(&p) {
                continue;
            }
            if key.shape == schema::Shape::Names {
                self.check_name_list(&p);
            }
            kept.push(p);
        }
        // A declaration built on another (`extends`, or a target that `wraps` one) takes the
        // keys it leaves out from it: the checker tests required keys after merging.
        let derived = kept
            .iter()
            .any(|p: &Property| p.key.name == "extends" || p.key.name == "wraps");
        let missing: Vec<&str> = schema
            .keys
            .iter()
            .filter(|k| k.required)
            .filter(|k| !kept.iter().any(|p: &Property| p.key.name == k.name))
            .filter(|k| !mistyped.iter().any(|m| m == k.name))
            .map(|k| k.name)
            .collect();
        if !missing.is_empty() && !derived {
            self.missing(schema.what, owner, &missing);
        }
        Props(kept)
    }

    pub(super) fn missing(&mut self, what: &str, owner: &Ident, missing: &[&str]) {
        if self.lenient {
            return;
        }
        let list = ticked(missing);
        let first = missing.first().copied().unwrap_or_default();
        self.error(
            Diagnostic::new(
                Code::MissingKey,
                owner.span,
                format!("{what} `{}` is missing {list}", owner.name),
            )
            .label(format!("needs {list}"))
            .help(format!("add `{first} = ...` to the block")),
        );
    }

    /// Reports a number outside its key's range (see [`RANGES`]).
    pub(super) fn in_range(&mut self, p: &Property) -> bool {
        let (Some(n), Some((_, min, max))) = (
            p.value.as_number(),
            RANGES.iter().find(|(k, _, _)| *k == p.key.name),
        ) else {
            return true;
        };
        if n >= *min && n <= *max {
            return true;
        }
        let bound = match (*min, *max) {
            (min, max) if max.is_infinite() && min == f64::MIN_POSITIVE => "above 0".to_string(),
            (min, max) if max.is_infinite() => format!("at least {min}"),
            (min, max) if min == f64::MIN_POSITIVE => format!("above 0 and below {}", max.ceil()),
            (min, max) => format!("between {min} and {max}"),
        };
        self.error(
            Diagnostic::new(
                Code::WrongValueType,
                p.value.span,
                format!("`{}` must be {bound}, found {n}", p.key.name),
            )
            .label("out of range"),
        );
        false
    }

    /// A list of names (labels, members, axes) must not be empty nor repeat a name.
    pub(super) fn check_name_list(&mut self, p: &Property) {
        let ExprKind::List(items) = &p.value.kind else {
            return;
        };
        if items.is_empty() {
            self.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    p.value.span,
                    format!("`{}` is empty", p.key.name),
                )
                .label("expected at least one name"),
            );
        }
        let names: Vec<&Ident> = items.iter().filter_map(Expr::as_name).collect();
        self.reject_repeats(&names);
    }

    /// Reports each name that repeats an earlier one in the same list.
    pub(super) fn reject_repeats(&mut self, names: &[&Ident]) {
        for (i, name) in names.iter().enumerate() {
            let first = names[..i]
                .iter()
                .find(|n| n.name == name.name)
                .map(|n| n.span);
            self.repeated(
                Code::DuplicateKey,
                &format!("`{}`", name.name),
                "listed",
                name.span,
                first,
            );
        }
    }

    pub(super) fn check_word(&mut self, key: &str, word: &Ident) {
        let Some((_, words)) = schema::WORDS.iter().find(|(k, _)| *k == key) else {
            return;
        };
        if !words.contains(&word.name.as_str()) {
            self.unknown_word(word, &format!("`{key}`"), words);
        }
    }

    pub(super) fn unknown_word(&mut self, word: &Ident, what: &str, words: &[&str]) {
        let suggestion = did_you_mean(&word.name, words.iter().copied());
        let list = ticked(words);
        let d = Diagnostic::new(
            Code::UnknownKind,
            word.span,
            format!("unknown {what} `{}`", word.name),
        )
        .label(format!("expected one of {list}"));
        let d = match suggestion {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!("use one of {list}")),
        };
        self.error(d);
    }
}
