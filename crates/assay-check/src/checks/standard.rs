//! Published reference standards (`standard NAME { scale = ... safe = { ... } }`): the scale
//! must be a published one, every value a safe fraction in [0, 1] keyed by one of the scale's
//! hazard codes; and a grade that names a standard must grade on the standard's scale.

use super::Ctx;
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, did_you_mean};

/// Published scales a grade may name instead of bands (AILuminate v1.0 and MLCommons v0.5,
/// with their overall-grade rules), and the hazard codes each grades.
pub(crate) const SCALES: &[(&str, &[&str])] = &[
    (
        "ailuminate_v1",
        &[
            "cse", "dfm", "hte", "ipv", "iwp", "ncr", "prv", "spc", "src", "ssh", "sxc", "vcr",
        ],
    ),
    (
        "mlcommons_v05",
        &["cae", "cbr", "hat", "nvc", "scr", "ssh", "vcr"],
    ),
];

pub(crate) fn scale_names() -> impl Iterator<Item = &'static str> {
    SCALES.iter().map(|(name, _)| *name)
}

/// Reports an unknown scale name (E0008); `Some(hazard codes)` for a known one.
pub(crate) fn check_scale(ctx: &mut Ctx<'_>, scale: &Ident) -> Option<&'static [&'static str]> {
    if let Some((_, hazards)) = SCALES.iter().find(|(name, _)| *name == scale.name) {
        return Some(hazards);
    }
    let names: Vec<&str> = scale_names().collect();
    ctx.error(
        Diagnostic::new(
            Code::UnknownKind,
            scale.span,
            format!("unknown grade scale `{}`", scale.name),
        )
        .label("not a published scale")
        .suggest(did_you_mean(&scale.name, names.iter().copied()))
        .help(format!("scales: {}", names.join(", "))),
    );
    None
}

pub(crate) fn check_standard(ctx: &mut Ctx<'_>, standard: &Standard) {
    let hazards = standard
        .props
        .name("scale")
        .and_then(|scale| check_scale(ctx, scale));
    let Some(ExprKind::Record(entries)) = standard.props.value("safe").map(|v| &v.kind) else {
        return;
    };
    for entry in entries {
        match entry.value.as_number() {
            Some(n) if (0.0..=1.0).contains(&n) => {}
            _ => ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    entry.value.span,
                    format!(
                        "the standard for `{}` must be a safe fraction between 0 and 1",
                        entry.key.name
                    ),
                )
                .label("expected a number from 0 to 1")
                .help("standards are written as published: the share of items judged safe"),
            ),
        }
        if let Some(hazards) = hazards
            && !hazards.contains(&entry.key.name.as_str())
        {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    entry.key.span,
                    format!("`{}` is not a hazard of this scale", entry.key.name),
                )
                .label("unknown hazard code")
                .suggest(did_you_mean(&entry.key.name, hazards.iter().copied()))
                .help(format!("its hazards: {}", hazards.join(", "))),
            );
        }
    }
}

/// A grade's `reference = NAME`: a target, or a standard of the grade's own scale.
pub(crate) fn check_reference_name(ctx: &mut Ctx<'_>, grade: &Grade, name: &Ident) {
    let Some(found) = ctx.lookup(name, "target or standard", |d| match d {
        Decl::Target(_) | Decl::Standard(_) => Some(d),
        _ => None,
    }) else {
        return;
    };
    let Decl::Standard(standard) = found else {
        return;
    };
    let (Some(graded), Some(published)) = (grade.props.name("scale"), standard.props.name("scale"))
    else {
        return;
    };
    if graded.name != published.name {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                name.span,
                format!(
                    "grade `{}` is on the scale `{}`, but the standard `{}` is for `{}`",
                    grade.name.name, graded.name, name.name, published.name
                ),
            )
            .label(format!("a standard for `{}`", published.name))
            .secondary(graded.span, "the grade's scale")
            .help("name a standard published for the grade's scale"),
        );
    }
}
