//! Judges: their models, rubrics, members, parsers and preprocessing steps, and that every
//! label they name (`match`, `otherwise`, `tie`) is in their label set.

use super::metric::{ItemLabels, check_condition};
use super::taxonomy::lookup_taxonomy;
use super::{Ctx, builtin};
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, did_you_mean, ticked};
use std::collections::BTreeMap;

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

/// Aspects a judge gives without declaring them: a `choice` judge's `choice`, the option it
/// read, whose labels are the options (`rate(mc.choice == "A")` measures position bias).
pub(crate) fn implied_aspects(judge: &Judge) -> BTreeMap<String, Vec<String>> {
    let mut aspects = BTreeMap::new();
    if judge.kind == JudgeKind::Choice
        && let Some(ExprKind::List(items)) = judge.props.value("options").map(|o| &o.kind)
    {
        let options = items
            .iter()
            .filter_map(|i| match &i.kind {
                ExprKind::Str(s) => Some(s.clone()),
                _ => None,
            })
            .collect();
        aspects.insert("choice".to_string(), options);
    }
    aspects
}

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
    } else if matches!(
        judge.kind,
        JudgeKind::Llm | JudgeKind::Guard | JudgeKind::Score
    ) && !ctx.in_std()
    {
        // The standard library's base judges leave their model to the spec that extends
        // them; anywhere else a judge that asks a model names it.
        ctx.error(
            Diagnostic::new(
                Code::MissingKey,
                judge.name.span,
                format!(
                    "{} judge `{}` is missing `model`",
                    judge.kind.as_str(),
                    judge.name.name
                ),
            )
            .label("needs `model`")
            .help("add `model = TARGET`, the target that judges"),
        );
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
    if let Some(when) = judge.props.value("when") {
        check_when(ctx, when);
    } else if judge.kind == JudgeKind::Choice {
        warn_unkeyed_items(ctx, judge);
    }
}

/// W0004: a `choice` judge without `when` in a suite with a template or dataset whose items
/// have no answer key (`expect` absent, `refuse` or `comply`): each of them would be a judge
/// error.
fn warn_unkeyed_items(ctx: &mut Ctx<'_>, judge: &Judge) {
    let unkeyed = |expect: Option<&Expr>| match expect.map(|e| &e.kind) {
        None => true,
        Some(ExprKind::Path(path)) => {
            path.len() == 1 && matches!(path[0].name.as_str(), "refuse" | "comply")
        }
        _ => false,
    };
    let mut sources: Vec<&str> = Vec::new();
    for def in ctx.scopes.visible[ctx.m].values() {
        let decl = ctx.decl(*def);
        match decl {
            Decl::Template(t) if unkeyed(t.props.value("expect")) => {
                sources.push(t.name.name.as_str())
            }
            Decl::Dataset(d)
                if d.item
                    .as_ref()
                    .is_none_or(|item| unkeyed(item.value("expect"))) =>
            {
                sources.push(d.name.name.as_str())
            }
            _ => {}
        }
    }
    if sources.is_empty() {
        return;
    }
    sources.sort_unstable();
    let more = match sources.len() {
        1 => String::new(),
        n => format!(" (and {} more)", n - 1),
    };
    ctx.error(
        Diagnostic::new(
            Code::ChoiceJudgeWithoutWhen,
            judge.name.span,
            format!(
                "choice judge `{}` judges every item, but `{}`{more} makes items without an answer key",
                judge.name.name, sources[0]
            ),
        )
        .label("each of those items would be a judge error")
        .help("judge only the multiple-choice items: `when = expect == answer`"),
    );
}

/// `when`: a condition decided from the item alone, before the judge is asked (E0123 for
/// anything else); its comparisons are then typed as a metric's `where` is.
fn check_when(ctx: &mut Ctx<'_>, when: &Expr) {
    let is_condition = match &when.kind {
        ExprKind::Bool(_) => true,
        ExprKind::Unary { op, .. } => *op == UnaryOp::Not,
        ExprKind::Binary { op, .. } => matches!(
            op,
            BinaryOp::Or
                | BinaryOp::And
                | BinaryOp::Eq
                | BinaryOp::Ne
                | BinaryOp::Lt
                | BinaryOp::Le
                | BinaryOp::Gt
                | BinaryOp::Ge
                | BinaryOp::In
        ),
        _ => false,
    };
    if !is_condition {
        ctx.error(
            Diagnostic::new(
                Code::JudgeWhenNotItemCondition,
                when.span,
                format!(
                    "`when` expects a condition on the item, found {}",
                    when.describe()
                ),
            )
            .label("not a condition")
            .help("write a comparison such as `when = expect == refuse`"),
        );
        return;
    }
    let mut errors = 0;
    not_item_level(ctx, when, &mut errors);
    if errors == 0 {
        let labels = ItemLabels::new(ctx);
        check_condition(ctx, &labels, when);
    }
}

/// Reports each part of a `when` that is not decided by the item alone: a judge, a metric, a
/// function, an index or a record.
fn not_item_level(ctx: &mut Ctx<'_>, expr: &Expr, errors: &mut usize) {
    let mut report = |ctx: &mut Ctx<'_>, what: String| {
        *errors += 1;
        ctx.error(
            Diagnostic::new(
                Code::JudgeWhenNotItemCondition,
                expr.span,
                format!("`when` cannot read {what}: it is decided before any judge runs"),
            )
            .label("not an item field")
            .help("compare item fields: `expect`, `hazard`, `persona`, `locale`, `template`, `dataset`, `group`, `gold` or an axis"),
        );
    };
    match &expr.kind {
        ExprKind::Path(path) => match ctx.find(&path[0].name) {
            Some(Decl::Judge(_)) => report(ctx, format!("the judge `{}`", path[0].name)),
            Some(Decl::Metric(_)) => report(ctx, format!("the metric `{}`", path[0].name)),
            _ => {}
        },
        ExprKind::Call { callee, .. } => report(ctx, format!("the function `{}`", callee.name)),
        ExprKind::Index { .. } | ExprKind::Record(_) | ExprKind::Range { .. } => {
            report(ctx, expr.describe().to_string())
        }
        ExprKind::List(items) => {
            for item in items {
                not_item_level(ctx, item, errors);
            }
        }
        ExprKind::Unary { operand, .. } => not_item_level(ctx, operand, errors),
        ExprKind::Binary { lhs, rhs, .. } => {
            not_item_level(ctx, lhs, errors);
            not_item_level(ctx, rhs, errors);
        }
        ExprKind::Number(_) | ExprKind::Str(_) | ExprKind::Bool(_) => {}
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
