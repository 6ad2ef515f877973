//! Judges: the kind, its schema, and aspects.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::schema;
use pest::iterators::Pair;

impl Lowerer {
    pub(super) fn lower_judge(&mut self, pair: Pair<'_, Rule>) -> Option<Judge> {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("judge has a name"));
        let kind_word = self.ident(parts.next().expect("judge has a kind"));
        let mut props = Vec::new();
        let mut aspects = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::aspects_block => {
                    let block = inner(p).next().expect("aspects has a block");
                    aspects = self.properties(block);
                }
                _ => {}
            }
        }
        let Some(kind) = JudgeKind::ALL
            .iter()
            .find(|(w, _)| *w == kind_word.name)
            .map(|(_, k)| *k)
        else {
            let words: Vec<&str> = JudgeKind::ALL.iter().map(|(w, _)| *w).collect();
            self.unknown_word(&kind_word, "judge kind", &words);
            self.broken.push(name);
            return None;
        };
        for aspect in &aspects {
            if !schema::Shape::Names.accepts(&aspect.value) {
                self.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        aspect.value.span,
                        format!(
                            "aspect `{}` expects a list of labels, found {}",
                            aspect.key.name,
                            aspect.value.describe()
                        ),
                    )
                    .label("expected a list of names, like `[yes, no]`"),
                );
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(schema::judge_schema(kind), props, &name);
        // A judge that extends another may take its labels from it (checked after merging).
        if kind == JudgeKind::Llm
            && props.get("labels").is_none()
            && props.get("extends").is_none()
            && aspects.is_empty()
        {
            self.missing("llm judge", &name, &["labels"]);
        }
        Some(Judge {
            name,
            kind,
            props,
            aspects,
            span,
        })
    }
}
