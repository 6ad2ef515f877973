//! Taxonomies (unique codes across the hierarchy) and mappings between taxonomies (every source
//! code mapped, every code on both sides defined).

use super::Ctx;
use assay_syntax::ast::{Category, Decl, Ident, Mapping, Taxonomy};
use assay_syntax::{Code, Diagnostic, did_you_mean, ticked};
use std::collections::BTreeMap;

pub(crate) fn check_taxonomy(ctx: &mut Ctx<'_>, taxonomy: &Taxonomy) {
    let mut seen: BTreeMap<&str, &Category> = BTreeMap::new();
    for (category, _) in taxonomy.walk() {
        if let Some(first) = seen.get(category.code.name.as_str()) {
            ctx.error(
                Diagnostic::new(
                    Code::DuplicateCode,
                    category.code.span,
                    format!(
                        "code `{}` is used twice in taxonomy `{}`",
                        category.code.name, taxonomy.name.name
                    ),
                )
                .label(format!(
                    "`{}` again, as \"{}\"",
                    category.code.name, category.title.value
                ))
                .secondary(
                    first.code.span,
                    format!("first used for \"{}\"", first.title.value),
                )
                .help("codes identify categories in results and mappings; give each its own"),
            );
        } else {
            seen.insert(&category.code.name, category);
        }
    }
}

/// The codes of a taxonomy, depth first.
pub(crate) fn codes(taxonomy: &Taxonomy) -> Vec<&str> {
    taxonomy
        .walk()
        .into_iter()
        .map(|(c, _)| c.code.name.as_str())
        .collect()
}

/// Reports `code` when `taxonomy` does not define it.
pub(crate) fn expect_code(ctx: &mut Ctx<'_>, taxonomy: &Taxonomy, code: &Ident) -> bool {
    let all = codes(taxonomy);
    if all.contains(&code.name.as_str()) {
        return true;
    }
    ctx.error(
        Diagnostic::new(
            Code::UnknownCode,
            code.span,
            format!(
                "taxonomy `{}` has no code `{}`",
                taxonomy.name.name, code.name
            ),
        )
        .label("unknown code")
        .suggest(did_you_mean(&code.name, all.iter().copied())),
    );
    false
}

pub(crate) fn lookup_taxonomy<'a>(ctx: &mut Ctx<'a>, name: &Ident) -> Option<&'a Taxonomy> {
    ctx.lookup(name, "taxonomy", |d| match d {
        Decl::Taxonomy(t) => Some(t),
        _ => None,
    })
}

pub(crate) fn check_mapping(ctx: &mut Ctx<'_>, mapping: &Mapping) {
    let from = lookup_taxonomy(ctx, &mapping.from);
    let to = lookup_taxonomy(ctx, &mapping.to);
    let mut mapped: BTreeMap<&str, &Ident> = BTreeMap::new();
    for rule in &mapping.rules {
        if let Some(first) = mapped.get(rule.source.name.as_str()) {
            ctx.error(
                Diagnostic::new(
                    Code::DuplicateKey,
                    rule.source.span,
                    format!("code `{}` is mapped twice", rule.source.name),
                )
                .label("mapped again here")
                .secondary(first.span, "first mapped here")
                .help("map a code to several targets at once with `CODE -> [a, b]`"),
            );
            continue;
        }
        mapped.insert(&rule.source.name, &rule.source);
        if let Some(from) = from {
            expect_code(ctx, from, &rule.source);
        }
        if let Some(to) = to {
            for target in &rule.targets {
                expect_code(ctx, to, target);
            }
        }
    }
    let Some(from) = from else { return };
    // Every leaf must be mapped, itself or through an ancestor.
    let mut unmapped = Vec::new();
    for (category, _) in from.walk() {
        if !category.children.is_empty() {
            continue;
        }
        let covered = mapped.contains_key(category.code.name.as_str())
            || ancestors(from, &category.code.name)
                .iter()
                .any(|a| mapped.contains_key(a));
        if !covered {
            unmapped.push(category.code.name.as_str());
        }
    }
    if !unmapped.is_empty() {
        let list = ticked(&unmapped);
        ctx.error(
            Diagnostic::new(
                Code::UnmappedCode,
                mapping.name.span,
                format!(
                    "mapping `{}` leaves {list} of `{}` unmapped",
                    mapping.name.name, from.name.name
                ),
            )
            .label(format!(
                "{} unmapped",
                if unmapped.len() == 1 {
                    "one code"
                } else {
                    "codes"
                }
            ))
            .secondary(from.name.span, "source taxonomy defined here")
            .help(format!(
                "add `{} -> CODE`, or `{} -> none` to drop it on purpose",
                unmapped[0], unmapped[0]
            )),
        );
    }
}

/// Codes of the categories above `code`, nearest first.
fn ancestors<'a>(taxonomy: &'a Taxonomy, code: &str) -> Vec<&'a str> {
    fn go<'a>(cats: &'a [Category], code: &str, path: &mut Vec<&'a str>) -> bool {
        for c in cats {
            if c.code.name == code {
                return true;
            }
            path.push(&c.code.name);
            if go(&c.children, code, path) {
                return true;
            }
            path.pop();
        }
        false
    }
    let mut path = Vec::new();
    go(&taxonomy.categories, code, &mut path);
    path.reverse();
    path
}
