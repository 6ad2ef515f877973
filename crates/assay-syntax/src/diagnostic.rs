//! The one diagnostic model shared by every output: terminal (rendered with miette in the CLI),
//! JSON lines and, later, the language server. A source diagnostic always has a primary span.

use crate::code::Code;
use crate::span::Span;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A span with a short message, e.g. "first defined here".
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One finding about a source: what is wrong, where, and how to fix it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// The exact span the finding is about, with its label text.
    pub primary: Label,
    /// Related places, e.g. the first definition of a duplicate.
    pub secondary: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            primary: Label {
                span,
                message: String::new(),
            },
            secondary: Vec::new(),
            help: None,
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }

    /// Text of the primary label (shown under the span).
    pub fn label(mut self, message: impl Into<String>) -> Self {
        self.primary.message = message.into();
        self
    }

    pub fn secondary(mut self, span: Span, message: impl Into<String>) -> Self {
        self.secondary.push(Label {
            span,
            message: message.into(),
        });
        self
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Adds "did you mean `x`?" when `suggestion` is some.
    pub fn suggest(self, suggestion: Option<&str>) -> Self {
        match suggestion {
            Some(s) => self.help(format!("did you mean `{s}`?")),
            None => self,
        }
    }

    /// The order diagnostics are reported in: by file, position, then code.
    pub fn sort_key(&self) -> (Span, Code) {
        (self.primary.span, self.code)
    }
}

/// Puts diagnostics in reporting order: sorted by file and position, exact duplicates (the
/// same finding reached twice, e.g. through a module imported by two files) removed, and a help
/// line on every one (pointing to `assay explain` when the finding gave none).
pub fn finish_diagnostics(diagnostics: &mut Vec<Diagnostic>) {
    diagnostics.sort_by(|a, b| {
        a.sort_key()
            .cmp(&b.sort_key())
            .then_with(|| natural_cmp(&a.message, &b.message))
    });
    diagnostics.dedup();
    for d in diagnostics {
        if d.help.is_none() {
            d.help = Some(format!(
                "`assay explain {}` shows an example and its fix",
                d.code
            ));
        }
    }
}

/// Text order with runs of digits compared by value, so that "row 9" comes before "row 10"
/// (problems at one place, such as the rows of a dataset, are listed in row order).
fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return std::cmp::Ordering::Equal,
            (None, Some(_)) => return std::cmp::Ordering::Less,
            (Some(_), None) => return std::cmp::Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let da = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let db = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (na, nb) = (&a[..da], &b[..db]);
                // Without leading zeros, a longer run is a larger number.
                let strip = |n: &'_ [u8]| -> usize { n.iter().take_while(|c| **c == b'0').count() };
                let (ta, tb) = (&na[strip(na)..], &nb[strip(nb)..]);
                let order = ta.len().cmp(&tb.len()).then(ta.cmp(tb)).then(da.cmp(&db));
                if order.is_ne() {
                    return order;
                }
                (a, b) = (&a[da..], &b[db..]);
            }
            (Some(x), Some(y)) if x != y => return x.cmp(y),
            _ => (a, b) = (&a[1..], &b[1..]),
        }
    }
}

/// Words in backticks, comma-separated: "`safe`, `unsafe`".
pub fn ticked<T: std::fmt::Display>(words: impl IntoIterator<Item = T>) -> String {
    words
        .into_iter()
        .map(|w| format!("`{w}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The closest candidate to `name` by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    // Ties in edit distance go to the candidate that shares the longer start (`vrc` → `vcr`,
    // not `src`), then alphabetically, so the suggestion is deterministic.
    candidates
        .into_iter()
        .filter(|c| *c != name)
        .map(|c| {
            let other_start = name.chars().next() != c.chars().next();
            let similarity = (strsim::jaro_winkler(name, c) * 1e6) as i64;
            (
                strsim::osa_distance(name, c),
                other_start,
                std::cmp::Reverse(similarity),
                c,
            )
        })
        .filter(|(d, ..)| *d <= limit)
        .min()
        .map(|(.., c)| c)
}

#[cfg(test)]
mod tests {
    #[test]
    fn messages_at_one_place_sort_by_the_numbers_in_them() {
        use super::natural_cmp;
        let mut rows = vec![
            "d.csv: row 10 (line 11)",
            "d.csv: row 9 (line 10)",
            "d.csv: row 100",
            "d.csv: row 09",
        ];
        rows.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            rows,
            [
                "d.csv: row 9 (line 10)",
                "d.csv: row 09",
                "d.csv: row 10 (line 11)",
                "d.csv: row 100"
            ]
        );
        assert!(
            natural_cmp("a", "b").is_lt()
                && natural_cmp("a", "a").is_eq()
                && natural_cmp("a", "a1").is_lt()
        );
    }

    use super::*;

    #[test]
    fn suggests_close_names_only() {
        let names = ["unsafe_rate", "refusal_rate", "hazard"];
        assert_eq!(did_you_mean("unsafe_rat", names), Some("unsafe_rate"));
        assert_eq!(did_you_mean("hazrd", names), Some("hazard"));
        assert_eq!(did_you_mean("persona", names), None);
        assert_eq!(did_you_mean("vrc", ["src", "vcr"]), Some("vcr"));
        assert_eq!(did_you_mean("gaurd", ["guard"]), Some("guard"));
    }
}
