//! Taxonomies, their categories, and mappings between taxonomies.

use super::{Lowerer, inner};
use crate::ast::*;
use crate::parser::Rule;
use crate::schema;
use pest::iterators::Pair;

impl Lowerer {
    pub(super) fn lower_taxonomy(&mut self, pair: Pair<'_, Rule>) -> Taxonomy {
        let span = self.span(&pair);
        let mut parts = inner(pair).peekable();
        let name = self.ident(parts.next().expect("taxonomy has a name"));
        let title = match parts.peek().map(Pair::as_rule) {
            Some(Rule::string) => parts.next().map(|p| self.string(p)),
            _ => None,
        };
        let (props, categories) = self.taxonomy_body(parts);
        let props = self.validate(&schema::TAXONOMY, props, &name);
        Taxonomy {
            name,
            title,
            props,
            categories,
            span,
        }
    }

    pub(super) fn taxonomy_body<'i>(
        &mut self,
        parts: impl Iterator<Item = Pair<'i, Rule>>,
    ) -> (Vec<Property>, Vec<Category>) {
        let mut props = Vec::new();
        let mut categories = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::category => categories.push(self.lower_category(p)),
                _ => {}
            }
        }
        (self.reject_duplicates(props), categories)
    }

    pub(super) fn lower_category(&mut self, pair: Pair<'_, Rule>) -> Category {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let code = self.ident(parts.next().expect("category has a code"));
        let title = self.string(parts.next().expect("category has a title"));
        let (props, children) = self.taxonomy_body(parts);
        let props = self.validate(&schema::CATEGORY, props, &code);
        Category {
            code,
            title,
            props,
            children,
            span,
        }
    }

    pub(super) fn lower_mapping(&mut self, pair: Pair<'_, Rule>) -> Mapping {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("mapping has a name"));
        let from = self.ident(parts.next().expect("mapping has a source"));
        let to = self.ident(parts.next().expect("mapping has a target"));
        let rules = parts
            .map(|rule| {
                let span = self.span(&rule);
                let mut r = inner(rule);
                let source = self.ident(r.next().expect("rule has a source"));
                let target = r.next().expect("rule has a target");
                let targets = match target.as_rule() {
                    Rule::code_list => inner(target).map(|p| self.ident(p)).collect(),
                    _ if target.as_str() == "none" => Vec::new(),
                    _ => vec![self.ident(target)],
                };
                MappingRule {
                    source,
                    targets,
                    span,
                }
            })
            .collect();
        Mapping {
            name,
            from,
            to,
            rules,
            span,
        }
    }
}
