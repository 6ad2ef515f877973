//! Templates: properties, variable bindings and the generator.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::schema;
use pest::iterators::Pair;

impl Lowerer {
    pub(super) fn lower_template(&mut self, pair: Pair<'_, Rule>) -> Template {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("template has a name"));
        let mut props = Vec::new();
        let mut vars = Vec::new();
        let mut generate = None;
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::vars_block => {
                    for binding in inner(p) {
                        let span = self.span(&binding);
                        let mut b = inner(binding);
                        let var = self.ident(b.next().expect("binding has a name"));
                        let domain = self.expr(b.next().expect("binding has a domain"));
                        let first = vars
                            .iter()
                            .find(|v: &&VarBinding| v.name.name == var.name)
                            .map(|v| v.name.span);
                        let what = format!("variable `{}`", var.name);
                        if self.repeated(Code::DuplicateDefinition, &what, "bound", var.span, first)
                        {
                            continue;
                        }
                        vars.push(VarBinding {
                            name: var,
                            domain,
                            span,
                        });
                    }
                }
                Rule::generate => {
                    if let Some(g) = self.lower_generate(p) {
                        generate = Some(g);
                    }
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::TEMPLATE, props, &name);
        Template {
            name,
            props,
            vars,
            generate,
            span,
        }
    }

    pub(super) fn lower_generate(&mut self, pair: Pair<'_, Rule>) -> Option<Generate> {
        let span = self.span(&pair);
        let mut generator = None;
        let mut filter = None;
        let mut sample = None;
        for p in inner(pair) {
            match p.as_rule() {
                Rule::generator => {
                    let word = self.ident(p);
                    generator = match word.name.as_str() {
                        "product" => Some(Generator::Product),
                        "zip" => Some(Generator::Zip),
                        _ => {
                            self.unknown_word(&word, "generator", crate::schema::GENERATORS);
                            return None;
                        }
                    };
                }
                Rule::where_clause => filter = inner(p).next().map(|e| self.expr(e)),
                Rule::sample_clause => {
                    let s = self.span(&p);
                    let mut nums = inner(p);
                    let count = nums.next().map(|n| self.count(n)).unwrap_or(0);
                    if count == 0 {
                        self.error(
                            Diagnostic::new(
                                Code::WrongValueType,
                                s,
                                "`sample` needs at least one item",
                            )
                            .label("sample 0 yields nothing")
                            .help("write `sample N` with N of 1 or more, or drop the clause"),
                        );
                    }
                    let seed = nums.next().map(|n| self.count(n));
                    sample = Some(Sample {
                        count,
                        seed,
                        span: s,
                    });
                }
                _ => {}
            }
        }
        Some(Generate {
            generator: generator?,
            filter,
            sample,
            span,
        })
    }
}
