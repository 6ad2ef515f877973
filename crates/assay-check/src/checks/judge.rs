//! Judges: their models, rubrics, members, parsers and preprocessing steps, and that every
//! label they name (`match`, `otherwise`, `tie`) is in their label set.

use super::metric::{ItemLabels, check_condition};
use super::taxonomy::lookup_taxonomy;
use super::{Ctx, builtin};
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, did_you_mean, ticked};
use std::collections::BTreeMap;

/// Response post-processing steps and their argument counts.
pub const PREPROCESS_STEPS: &[(&str, usize)] = &[
    ("strip_reasoning", 0),
    ("extract", 1),
    ("extract_llm", 1),
    ("not_applicable", 1),
    ("lowercase", 0),
];

/// Verdict parsers of LLM judges and their argument counts.
pub const PARSERS: &[(&str, usize)] = &[
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
    // Each reading is an aspect whose labels are the judge's, read through its mapping.
    let labels: Vec<String> = judge
        .props
        .names("labels")
        .iter()
        .map(|l| l.name.clone())
        .collect();
    for (reading, mapping) in readings(judge) {
        let mut read: Vec<String> = Vec::new();
        for label in &labels {
            let to = mapping
                .iter()
                .find(|(from, _)| from.name == *label)
                .map_or(label, |(_, to)| &to.name);
            if !read.contains(to) {
                read.push(to.clone());
            }
        }
        aspects.insert(reading.name.clone(), read);
    }
    aspects
}

/// A judge's `readings` as written: each reading's name with its `label = label` pairs (the
/// pairs whose value is a name).
fn readings(judge: &Judge) -> Vec<(&Ident, Vec<(&Ident, &Ident)>)> {
    let Some(ExprKind::Record(readings)) = judge.props.value("readings").map(|v| &v.kind) else {
        return Vec::new();
    };
    readings
        .iter()
        .map(|r| {
            let pairs = match &r.value.kind {
                ExprKind::Record(pairs) => pairs
                    .iter()
                    .filter_map(|p| Some((&p.key, p.value.as_name()?)))
                    .collect(),
                _ => Vec::new(),
            };
            (&r.key, pairs)
        })
        .collect()
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
                let (extract_llm, others): (Vec<&Expr>, Vec<&Expr>) =
                    steps.iter().partition(|s| is_extract_llm(s));
                let others: Vec<Expr> = others.into_iter().cloned().collect();
                check_call_list(ctx, &others, PREPROCESS_STEPS, "preprocessing step");
                check_extract_llm(ctx, &extract_llm);
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
    check_jury(ctx, judge);
    check_logprobs(ctx, judge);
    check_readings(ctx, judge, &labels);
    if let Some(when) = judge.props.value("when") {
        check_when(ctx, when);
    } else if judge.kind == JudgeKind::Choice {
        warn_unkeyed_items(ctx, judge);
    }
}

fn is_extract_llm(step: &Expr) -> bool {
    matches!(&step.kind, ExprKind::Call { callee, .. } if callee.name == "extract_llm")
}

/// `extract_llm(TARGET)` or `extract_llm(TARGET, TEXT)`: a target that extracts, and the
/// prompt it is sent (a template); one such step per judge.
fn check_extract_llm(ctx: &mut Ctx<'_>, steps: &[&Expr]) {
    for (i, step) in steps.iter().enumerate() {
        let ExprKind::Call { callee, args } = &step.kind else {
            continue;
        };
        if i > 0 {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    callee.span,
                    "a judge takes one `extract_llm` step",
                )
                .label("a second extraction")
                .help("extract once, with a prompt that asks for what the judge reads"),
            );
        }
        if !(1..=2).contains(&args.len()) {
            ctx.error(
                Diagnostic::new(
                    Code::BadCall,
                    step.span,
                    format!(
                        "`extract_llm` takes a target and, optionally, a prompt; found {} argument{}",
                        args.len(),
                        if args.len() == 1 { "" } else { "s" }
                    ),
                )
                .label("wrong number of arguments")
                .help("write `extract_llm(extractor)` or `extract_llm(extractor, file(\"extract.hbs\"))`"),
            );
            continue;
        }
        match args[0].value.as_name() {
            Some(model) => {
                ctx.lookup(model, "target", |d| match d {
                    Decl::Target(t) => Some(t),
                    _ => None,
                });
            }
            None => ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    args[0].value.span,
                    format!(
                        "`extract_llm` expects the target that extracts, found {}",
                        args[0].value.describe()
                    ),
                )
                .label("not a target's name"),
            ),
        }
        if let Some(prompt) = args.get(1) {
            ctx.template_of(&prompt.value);
        }
    }
}

/// `rule = jury`: score judges on one scale, a threshold they agree on (or the jury's own);
/// `reduce` and `threshold` belong to juries only.
fn check_jury(ctx: &mut Ctx<'_>, judge: &Judge) {
    if judge.kind != JudgeKind::Ensemble {
        return;
    }
    if judge.props.name("rule").is_none_or(|r| r.name != "jury") {
        for key in ["reduce", "threshold"] {
            if let Some(p) = judge.props.get(key) {
                ctx.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        p.key.span,
                        format!("`{key}` is for juries (`rule = jury`)"),
                    )
                    .label("this ensemble votes on labels")
                    .help("remove it, or make the ensemble a jury of score judges: `rule = jury`"),
                );
            }
        }
        return;
    }
    // A jury's label comes from its reduced score and threshold, not from a vote.
    for key in ["weights", "tie"] {
        if let Some(p) = judge.props.get(key) {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    p.key.span,
                    format!("`{key}` is for votes, not juries"),
                )
                .label("a jury's label comes from its reduced score")
                .help("remove it: a reduced score above `threshold` gets the first label"),
            );
        }
    }
    // (member, scale, threshold) of each score judge among the members.
    type Scored<'j> = (&'j Ident, Option<(f64, f64)>, Option<f64>);
    let mut scored: Vec<Scored<'_>> = Vec::new();
    for member in judge.props.names("members") {
        let Some(Decl::Judge(found)) = ctx.find(&member.name) else {
            continue;
        };
        if found.kind != JudgeKind::Score {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    member.span,
                    format!(
                        "jury member `{}` is a {} judge, not a score judge",
                        member.name,
                        found.kind.as_str()
                    ),
                )
                .label("gives no score")
                .secondary(found.name.span, "member declared here")
                .help("a jury reduces its members' scores: its members are `score` judges; vote on labels with `rule = majority`"),
            );
            continue;
        }
        let scale = match found.props.value("scale").map(|v| &v.kind) {
            Some(ExprKind::Range { start, end }) => Some((*start, *end)),
            _ => None,
        };
        scored.push((member, scale, found.props.number("threshold")));
    }
    if let Some((first, Some(scale), _)) = scored.first() {
        if let Some((other, Some(theirs), _)) = scored
            .iter()
            .find(|(_, s, _)| s.is_some_and(|s| s != *scale))
        {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    other.span,
                    format!(
                        "jury member `{}` scores on {}..{}, `{}` on {}..{}",
                        other.name, theirs.0, theirs.1, first.name, scale.0, scale.1
                    ),
                )
                .label("another scale")
                .help("a mean or median of scores on different scales means nothing: give the members one scale"),
            );
        }
        if let Some(p) = judge.props.get("threshold")
            && let Some(t) = p.value.as_number()
            && !(t >= scale.0 && t <= scale.1)
        {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    p.value.span,
                    format!(
                        "threshold {t} lies outside the members' scale {}..{}",
                        scale.0, scale.1
                    ),
                )
                .label("outside the scale")
                .help("the threshold must be a score the jury can give"),
            );
        }
    }
    let mut thresholds: Vec<f64> = scored.iter().filter_map(|(_, _, t)| *t).collect();
    thresholds.dedup();
    if judge.props.get("threshold").is_none() && thresholds.len() > 1 {
        let list: Vec<String> = thresholds.iter().map(f64::to_string).collect();
        ctx.error(
            Diagnostic::new(
                Code::MissingKey,
                judge.name.span,
                format!(
                    "jury `{}` needs a `threshold`: its members' thresholds differ ({})",
                    judge.name.name,
                    list.join(", ")
                ),
            )
            .label("needs `threshold`")
            .help("add `threshold = N`: a reduced score above it gets the first label"),
        );
    }
}

/// `from = logprobs` on a judge whose model's provider is known to give no log-probabilities.
fn check_logprobs(ctx: &mut Ctx<'_>, judge: &Judge) {
    let Some(from) = judge.props.name("from").filter(|f| f.name == "logprobs") else {
        return;
    };
    let Some(model) = judge.props.name("model") else {
        return;
    };
    let Some(Decl::Target(target)) = ctx.find(&model.name) else {
        return;
    };
    let Some(provider) = target.props.name("provider") else {
        return;
    };
    let why = match provider.name.as_str() {
        "anthropic" => "Anthropic's API gives no log-probabilities",
        "mock" => "the offline mock models give no log-probabilities",
        _ => return,
    };
    ctx.error(
        Diagnostic::new(
            Code::ProviderCannot,
            from.span,
            format!(
                "score judge `{}` reads log-probabilities, but its model `{}` cannot give them",
                judge.name.name, model.name
            ),
        )
        .label("needs top log-probabilities")
        .secondary(provider.span, why)
        .help("use `from = text`, or a model served by an OpenAI-compatible server or Ollama"),
    );
}

/// `readings = { NAME = { LABEL = LABEL ... } ... }`: each reading maps labels of the judge
/// onto labels of the judge, and is named unlike any aspect.
fn check_readings(ctx: &mut Ctx<'_>, judge: &Judge, labels: &[&str]) {
    let Some(value) = judge.props.value("readings") else {
        return;
    };
    let ExprKind::Record(entries) = &value.kind else {
        return; // The schema's shape check has reported it.
    };
    if labels.is_empty() {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                value.span,
                format!("`{}` has no labels to read", judge.name.name),
            )
            .label("readings map a judge's labels")
            .help("give the judge `labels`"),
        );
        return;
    }
    let mut taken: Vec<String> = judge.aspect_labels().into_keys().collect();
    taken.extend(["score", "categories", "category", "choice"].map(String::from));
    for entry in entries {
        if taken.contains(&entry.key.name) {
            ctx.error(
                Diagnostic::new(
                    Code::DuplicateKey,
                    entry.key.span,
                    format!(
                        "the reading `{}` has the name of a field of `{}`",
                        entry.key.name, judge.name.name
                    ),
                )
                .label("already a field of the judge")
                .help("name the reading after what it reads: `strict`, `loose`"),
            );
        }
        let ExprKind::Record(pairs) = &entry.value.kind else {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    entry.value.span,
                    format!(
                        "a reading maps labels onto labels, found {}",
                        entry.value.describe()
                    ),
                )
                .label("expected `{ label = label }`")
                .help("write `strict = { controversial = unsafe }`"),
            );
            continue;
        };
        for pair in pairs {
            if !labels.contains(&pair.key.name.as_str()) {
                unknown_label(ctx, &judge.name, &pair.key, labels);
            }
            match pair.value.as_name() {
                Some(to) if labels.contains(&to.name.as_str()) => {}
                Some(to) => unknown_label(ctx, &judge.name, to, labels),
                None => ctx.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        pair.value.span,
                        format!("expected a label, found {}", pair.value.describe()),
                    )
                    .label("not a label"),
                ),
            }
        }
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
