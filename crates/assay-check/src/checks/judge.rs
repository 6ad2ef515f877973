//! Judges: their models, rubrics, members, parsers and preprocessing steps, and that every
//! label they name (`match`, `otherwise`, `tie`) is in their label set.

use super::taxonomy::lookup_taxonomy;
use super::{Ctx, builtin};
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, did_you_mean, ticked};

/// Response post-processing steps and their argument counts.
const PREPROCESS_STEPS: &[(&str, usize)] = &[
    ("strip_reasoning", 0),
    ("extract", 1),
    ("extract_llm", 1),
    ("not_applicable", 1),
    ("lowercase", 0),
];

/// Verdict parsers of LLM judges and their argument counts.
const PARSERS: &[(&str, usize)] = &[
    ("json", 1),
    ("regex", 1),
    ("llama_guard", 0),
    ("first_word", 0),
];

pub(crate) fn check_judge(ctx: &mut Ctx<'_>, judge: &Judge) {
    let labels: Vec<&str> = judge
        .props
        .names("labels")
        .iter()
        .map(|l| l.name.as_str())
        .collect();

    if let Some(model) = judge.props.name("model") {
        ctx.lookup(model, "target", |d| match d {
            Decl::Target(t) => Some(t),
            _ => None,
        });
    }
    if let Some(rubric) = judge.props.value("rubric") {
        ctx.template_of(rubric);
    }
    if let Some(categories) = judge.props.name("categories") {
        lookup_taxonomy(ctx, categories);
    }
    if let Some(mapping) = judge.props.name("mapping") {
        ctx.lookup(mapping, "mapping", |d| match d {
            Decl::Mapping(m) => Some(m),
            _ => None,
        });
    }
    for member in judge.props.names("members") {
        if member.name == judge.name.name {
            ctx.error(
                Diagnostic::new(
                    Code::UndefinedName,
                    member.span,
                    format!("judge `{}` lists itself as a member", member.name),
                )
                .label("an ensemble cannot contain itself"),
            );
            continue;
        }
        let Some(found) = ctx.lookup(member, "judge", |d| match d {
            Decl::Judge(j) => Some(j),
            _ => None,
        }) else {
            continue;
        };
        // A vote counts only if the member speaks the ensemble's labels.
        let foreign: Vec<&str> = found
            .props
            .names("labels")
            .into_iter()
            .map(|l| l.name.as_str())
            .filter(|l| !labels.is_empty() && !labels.contains(l))
            .collect();
        if !foreign.is_empty() {
            let list = ticked(&labels);
            ctx.error(
                Diagnostic::new(
                    Code::UnknownLabel,
                    member.span,
                    format!(
                        "member `{}` gives `{}`, which ensemble `{}` does not list",
                        member.name,
                        foreign.join("`, `"),
                        judge.name.name
                    ),
                )
                .label(format!("the ensemble votes over {list}"))
                .secondary(found.name.span, "member declared here")
                .help("give the member the ensemble's labels, or add its labels to the ensemble"),
            );
        }
    }
    if let Some(path) = judge.props.get("path")
        && let Some(rel) = path.value.as_str()
    {
        ctx.file_ref(rel, path.value.span, true);
    }
    for key in ["match", "otherwise", "tie", "invalid", "blank"] {
        if let Some(label) = judge.props.name(key)
            && !labels.is_empty()
            && !labels.contains(&label.name.as_str())
        {
            unknown_label(ctx, &judge.name, label, &labels);
        }
    }
    for key in ["pattern"] {
        if let Some(p) = judge.props.get(key)
            && let Some(pattern) = p.value.as_str()
        {
            check_regex(ctx, pattern, p.value.span);
        }
    }
    if let Some(parser) = judge.props.value("parser") {
        check_call_list(ctx, std::slice::from_ref(parser), PARSERS, "parser");
    }
    if let Some(pre) = judge.props.value("preprocess") {
        match &pre.kind {
            ExprKind::List(steps) => {
                check_call_list(ctx, steps, PREPROCESS_STEPS, "preprocessing step")
            }
            _ => ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    pre.span,
                    format!(
                        "`preprocess` expects a list of steps, found {}",
                        pre.describe()
                    ),
                )
                .label("expected `[strip_reasoning, extract(\"...\")]`"),
            ),
        }
    }
    if judge.kind == JudgeKind::Score
        && let (Some(ExprKind::Range { start, end }), Some(threshold)) = (
            judge.props.value("scale").map(|e| &e.kind),
            judge.props.number("threshold"),
        )
        && !(threshold >= *start && threshold <= *end)
    {
        let span = judge
            .props
            .get("threshold")
            .map_or(judge.name.span, |p| p.value.span);
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                span,
                format!("threshold {threshold} lies outside the scale {start}..{end}"),
            )
            .label("outside the scale")
            .help("the threshold must be a score the judge can give"),
        );
    }
}

pub(crate) fn unknown_label(ctx: &mut Ctx<'_>, owner: &Ident, label: &Ident, labels: &[&str]) {
    let list = ticked(labels);
    ctx.error(
        Diagnostic::new(
            Code::UnknownLabel,
            label.span,
            format!("`{}` never gives the label `{}`", owner.name, label.name),
        )
        .label(format!("not one of {list}"))
        .help(match did_you_mean(&label.name, labels.iter().copied()) {
            Some(s) => format!("did you mean `{s}`?"),
            None => format!("`{}` gives {list}", owner.name),
        }),
    );
}

fn check_regex(ctx: &mut Ctx<'_>, pattern: &str, span: assay_syntax::Span) {
    if let Err(e) = regex::Regex::new(pattern) {
        let why = e.to_string();
        let last = why.lines().last().unwrap_or("invalid").trim().to_string();
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                span,
                format!("invalid regular expression: {last}"),
            )
            .label("does not compile")
            .help("the pattern uses Rust regex syntax (no look-around or back-references)"),
        );
    }
}

fn check_call_list(ctx: &mut Ctx<'_>, items: &[Expr], known: &[(&str, usize)], what: &str) {
    for item in items {
        let Some((name, args)) = builtin(ctx, item, known, what) else {
            continue;
        };
        if matches!(name.name.as_str(), "regex" | "extract" | "not_applicable")
            && let Some(pattern) = args.first().and_then(|a| a.value.as_str())
        {
            check_regex(ctx, pattern, args[0].value.span);
        }
    }
}
