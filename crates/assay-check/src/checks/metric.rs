//! Metric expressions are typed. Item-level values (a judge's label, an item's hazard, a
//! score) become numbers only through an aggregate (`rate`, `mean`, `f1`, ...); a metric's
//! result is an aggregate number. Labels compared to a judge must be in its label set. Grades
//! read one metric and test bands that must be monotonic.

use super::Ctx;
use super::judge::unknown_label;
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, Span, did_you_mean};
use std::collections::{BTreeMap, BTreeSet};

/// Labels every item carries, usable in conditions and `by`.
pub const ITEM_FIELDS: &[&str] = &[
    "hazard",
    "sub_hazard",
    "persona",
    "locale",
    "expect",
    "template",
    "dataset",
    "group",
    "model",
    "gold",
];

/// Item-level numbers: `turns` (target turns of the final conversation, or user turns
/// sent), `queries` (target calls made) and `turn` (the round read: a target turn's in a turn
/// function or a metric `by turn`, else the final answer's).
pub const ITEM_NUMBERS: &[&str] = &["severity", "turns", "queries", "turn"];

/// The `by` key that makes each target turn of a conversation a row.
const TURN_GROUP: &str = "turn";

/// Functions reading a condition at each target turn of an item.
const TURN_FUNCTIONS: &[&str] = &["any_turn", "all_turns", "share_turns", "first_turn"];

/// What an expression evaluates to.
#[derive(Clone, Debug, PartialEq)]
enum Ty {
    /// A condition on one item, or (item = false) a truth about aggregates.
    Bool {
        item: bool,
    },
    /// A number per item, or (item = false) an aggregate.
    Num {
        item: bool,
    },
    /// A judge's (or aspect's) verdict on one item.
    Label {
        owner: Ident,
        labels: Vec<String>,
    },
    /// An item's label value (hazard, persona, an axis coordinate...).
    Value(Field),
    /// A bare word not naming anything: only meaningful as a label literal.
    Word(Ident),
    Str(String, Span),
    List(Vec<Ty>),
    /// Already reported; stay quiet.
    Unknown,
}

impl Ty {
    fn describe(&self) -> String {
        match self {
            Ty::Bool { item: true } => "a condition on each item".into(),
            Ty::Bool { item: false } => "a boolean".into(),
            Ty::Num { item: true } => "a number per item".into(),
            Ty::Num { item: false } => "a number".into(),
            Ty::Label { owner, .. } => format!("the label given by `{}`", owner.name),
            Ty::Value(_) => "an item label".into(),
            Ty::Word(w) => format!("the word `{}`", w.name),
            Ty::Str(..) => "a string".into(),
            Ty::List(_) => "a list".into(),
            Ty::Unknown => "an unknown value".into(),
        }
    }
}

/// Which item label a value is, for checking what it is compared with.
#[derive(Clone, Debug, PartialEq)]
enum Field {
    Hazard,
    Persona,
    Expect,
    Axis(String),
    Other,
}

#[derive(Clone, Debug)]
struct JudgeInfo {
    kind: JudgeKind,
    labels: Vec<String>,
    aspects: BTreeMap<String, Vec<String>>,
}

/// What metric expressions can refer to in the current module: judges with their label sets,
/// axes, metrics.
pub(crate) struct ItemLabels {
    judges: BTreeMap<String, JudgeInfo>,
    axes: Vec<String>,
    metrics: Vec<String>,
    /// Codes of every taxonomy in scope: what `hazard` may equal.
    codes: BTreeSet<String>,
    personas: BTreeSet<String>,
    /// Axis → its variants: what `axis_name` may equal.
    variants: BTreeMap<String, Vec<String>>,
}

impl ItemLabels {
    pub(crate) fn new(ctx: &Ctx<'_>) -> Self {
        let mut judges = BTreeMap::new();
        let mut axes = Vec::new();
        let mut metrics = Vec::new();
        let mut codes = BTreeSet::new();
        let mut personas = BTreeSet::new();
        let mut variants = BTreeMap::new();
        for (name, def) in &ctx.scopes.visible[ctx.m] {
            match ctx.decl(*def) {
                // A standard-library base judge without its model is not run: outside the
                // standard library, only the judges extending it can be read.
                Decl::Judge(j)
                    if !ctx.in_std()
                        && matches!(
                            j.kind,
                            JudgeKind::Llm | JudgeKind::Guard | JudgeKind::Score
                        )
                        && j.props.get("model").is_none() => {}
                Decl::Judge(j) => {
                    let labels = j
                        .props
                        .names("labels")
                        .iter()
                        .map(|l| l.name.clone())
                        .collect();
                    let mut aspects = j.aspect_labels();
                    aspects.extend(super::judge::implied_aspects(j));
                    judges.insert(
                        name.clone(),
                        JudgeInfo {
                            kind: j.kind,
                            labels,
                            aspects,
                        },
                    );
                }
                Decl::Axis(a) => {
                    axes.push(name.clone());
                    let names = a.variants.iter().map(|v| v.key.name.clone()).collect();
                    variants.insert(name.clone(), names);
                }
                Decl::Metric(_) => metrics.push(name.clone()),
                Decl::Taxonomy(t) => {
                    codes.extend(t.walk().into_iter().map(|(c, _)| c.code.name.clone()));
                }
                Decl::Persona(_) => {
                    personas.insert(name.clone());
                }
                _ => {}
            }
        }
        ItemLabels {
            judges,
            axes,
            metrics,
            codes,
            personas,
            variants,
        }
    }

    /// Names `by` accepts.
    fn groups(&self) -> Vec<&str> {
        ITEM_FIELDS
            .iter()
            .copied()
            .chain([TURN_GROUP])
            .chain(self.axes.iter().map(String::as_str))
            .chain(self.judges.keys().map(String::as_str))
            .collect()
    }

    pub(crate) fn check_group(&self, ctx: &mut Ctx<'_>, group: &Ident) {
        let groups = self.groups();
        if groups.contains(&group.name.as_str()) || ctx.is_broken(&group.name) {
            return;
        }
        // `judge.aspect`, or `judge.categories` (`judge.category`): an item is in the group of
        // each category the judge named.
        if let Some((judge, field)) = group.name.split_once('.')
            && let Some(info) = self.judges.get(judge)
        {
            if info.aspects.contains_key(field) || field == "categories" || field == "category" {
                return;
            }
            let mut fields: Vec<&str> = info.aspects.keys().map(String::as_str).collect();
            fields.push("categories");
            ctx.error(
                Diagnostic::new(
                    Code::UnknownGroup,
                    group.span,
                    format!("cannot group by `{}`", group.name),
                )
                .label(format!("judge `{judge}` has no aspect `{field}`"))
                .help(format!(
                    "group by one of: {}",
                    fields
                        .iter()
                        .map(|f| format!("{judge}.{f}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )),
            );
            return;
        }
        let suggestion = did_you_mean(&group.name, groups.iter().copied());
        ctx.error(
            Diagnostic::new(
                Code::UnknownGroup,
                group.span,
                format!("cannot group by `{}`", group.name),
            )
            .label("neither an item label nor an axis")
            .help(match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("group by one of: {}", groups.join(", ")),
            }),
        );
    }

    fn all_names(&self) -> Vec<&str> {
        self.groups()
            .into_iter()
            .chain(self.metrics.iter().map(String::as_str))
            .chain(ITEM_NUMBERS.iter().copied().filter(|n| *n != TURN_GROUP))
            .collect()
    }
}

pub(crate) fn check_metric(ctx: &mut Ctx<'_>, metric: &Metric) {
    let labels = ctx.item_labels();
    let ty = infer(ctx, &labels, &metric.expr);
    let ty = settle(ctx, &labels, ty);
    match ty {
        Ty::Num { item: false } | Ty::Unknown => {}
        Ty::Bool { item: true } => ctx.error(
            Diagnostic::new(
                Code::TypeMismatch,
                metric.expr.span,
                "a metric must aggregate over items, found a condition on each item",
            )
            .label("a condition, not a number")
            .help("wrap it in `rate(...)` to get the share of items where it holds"),
        ),
        Ty::Num { item: true } => ctx.error(
            Diagnostic::new(
                Code::TypeMismatch,
                metric.expr.span,
                "a metric must aggregate over items, found a number per item",
            )
            .label("one number per item")
            .help("aggregate it, e.g. `mean(...)` or `median(...)`"),
        ),
        Ty::Label { owner, .. } => ctx.error(
            Diagnostic::new(
                Code::TypeMismatch,
                metric.expr.span,
                format!("a metric cannot be the label of `{}`", owner.name),
            )
            .label("a label, not a number")
            .help(format!(
                "compare it to a label and take a rate: `rate({} == ...)`",
                owner.name
            )),
        ),
        other => ctx.error(
            Diagnostic::new(
                Code::TypeMismatch,
                metric.expr.span,
                format!("a metric must be a number, found {}", other.describe()),
            )
            .label("not a number"),
        ),
    }
    if let Some(filter) = &metric.filter {
        check_condition(ctx, &labels, filter);
    }
    for group in &metric.group_by {
        labels.check_group(ctx, group);
    }
    check_shadowing(ctx, &labels, metric);
}

/// W0005: a metric named like a judge's label hides the label in every metric expression.
fn check_shadowing(ctx: &mut Ctx<'_>, labels: &ItemLabels, metric: &Metric) {
    let name = &metric.name.name;
    let Some(judge) = labels
        .judges
        .iter()
        .find(|(_, info)| info.labels.contains(name))
        .map(|(judge, _)| judge)
    else {
        return;
    };
    ctx.error(
        Diagnostic::new(
            Code::MetricShadowsLabel,
            metric.name.span,
            format!("metric `{name}` has the name of a label of judge `{judge}`"),
        )
        .label(format!("shadows the label `{name}`"))
        .help(format!(
            "in metric expressions `{name}` now means this metric (a number), not the label: \
             `{judge} == {name}` compares a label with a number; rename the metric, e.g. \
             `{name}_rate`"
        )),
    );
}

/// A `where` filter or a `stop when` condition: a condition on each item.
pub(crate) fn check_condition(ctx: &mut Ctx<'_>, labels: &ItemLabels, expr: &Expr) {
    let ty = infer(ctx, labels, expr);
    let ty = settle(ctx, labels, ty);
    if !matches!(ty, Ty::Bool { .. } | Ty::Unknown) {
        let help = match &ty {
            Ty::Label { owner, labels } => format!(
                "compare it to one of its labels, e.g. `{} == {}`",
                owner.name,
                labels.first().map_or("...", String::as_str)
            ),
            _ => "write a comparison such as `expect == refuse`".to_string(),
        };
        ctx.error(
            Diagnostic::new(
                Code::TypeMismatch,
                expr.span,
                format!("expected a condition, found {}", ty.describe()),
            )
            .label("not a condition")
            .help(help),
        );
    }
}

/// Reports a bare word that ended up standing for a value, not a label literal.
fn settle(ctx: &mut Ctx<'_>, labels: &ItemLabels, ty: Ty) -> Ty {
    match ty {
        Ty::Word(word) if ctx.is_broken(&word.name) => Ty::Unknown,
        Ty::Word(word) => {
            let names = labels.all_names();
            ctx.error(
                Diagnostic::new(
                    Code::UndefinedName,
                    word.span,
                    format!("`{}` is not defined", word.name),
                )
                .label("not a judge, metric, axis or item label")
                .suggest(did_you_mean(&word.name, names.iter().copied())),
            );
            Ty::Unknown
        }
        other => other,
    }
}

fn mismatch(ctx: &mut Ctx<'_>, span: Span, message: String, help: &str) -> Ty {
    ctx.error(
        Diagnostic::new(Code::TypeMismatch, span, message)
            .label("wrong type here")
            .help(help.to_string()),
    );
    Ty::Unknown
}

fn infer(ctx: &mut Ctx<'_>, labels: &ItemLabels, expr: &Expr) -> Ty {
    match &expr.kind {
        ExprKind::Number(_) => Ty::Num { item: false },
        ExprKind::Str(s) => Ty::Str(s.clone(), expr.span),
        ExprKind::Bool(_) => Ty::Bool { item: false },
        ExprKind::List(items) => Ty::List(items.iter().map(|e| infer(ctx, labels, e)).collect()),
        ExprKind::Path(path) => infer_path(ctx, labels, path),
        ExprKind::Unary { op, operand } => {
            let ty = infer(ctx, labels, operand);
            let ty = settle(ctx, labels, ty);
            match (op, ty) {
                (_, Ty::Unknown) => Ty::Unknown,
                (UnaryOp::Not, Ty::Bool { item }) => Ty::Bool { item },
                (UnaryOp::Neg, Ty::Num { item }) => Ty::Num { item },
                (UnaryOp::Not, other) => mismatch(
                    ctx,
                    operand.span,
                    format!("`not` needs a condition, found {}", other.describe()),
                    "negate a comparison, e.g. `not (guard == unsafe)`",
                ),
                (UnaryOp::Neg, other) => mismatch(
                    ctx,
                    operand.span,
                    format!("`-` needs a number, found {}", other.describe()),
                    "negate a number",
                ),
            }
        }
        ExprKind::Binary { op, lhs, rhs } => infer_binary(ctx, labels, *op, lhs, rhs),
        ExprKind::Call { callee, args } => infer_call(ctx, labels, callee, args, expr.span),
        ExprKind::Index { .. } | ExprKind::Record(_) | ExprKind::Range { .. } => mismatch(
            ctx,
            expr.span,
            format!("{} cannot appear in a metric expression", expr.describe()),
            "use judges, item labels, metrics, numbers and functions",
        ),
    }
}

fn is_literal(ty: &Ty) -> bool {
    matches!(ty, Ty::Word(_) | Ty::Str(..))
}

/// Checks the value an item label is compared with: a hazard code of a taxonomy in scope, a
/// persona, an expectation, a variant of the axis.
fn check_value(ctx: &mut Ctx<'_>, labels: &ItemLabels, field: &Field, value: &Ty) {
    let (name, span) = match value {
        Ty::Word(w) => (w.name.as_str(), w.span),
        Ty::Str(s, span) => (s.as_str(), *span),
        _ => return,
    };
    let (known, code, message, what): (Vec<&str>, Code, String, &str) = match field {
        Field::Hazard => (
            labels.codes.iter().map(String::as_str).collect(),
            Code::UnknownCode,
            format!("no taxonomy in scope has the code `{name}`"),
            "a hazard code",
        ),
        Field::Persona => (
            labels.personas.iter().map(String::as_str).collect(),
            Code::UndefinedName,
            format!("no persona named `{name}`"),
            "a persona",
        ),
        Field::Expect => (
            vec!["refuse", "comply", "answer"],
            Code::UnknownKind,
            format!("unknown expectation `{name}`"),
            "an expectation",
        ),
        Field::Axis(axis) => (
            labels
                .variants
                .get(axis)
                .map(|v| v.iter().map(String::as_str).collect())
                .unwrap_or_default(),
            Code::UndefinedName,
            format!("axis `{axis}` has no variant `{name}`"),
            "a variant of the axis",
        ),
        Field::Other => return,
    };
    // With nothing in scope to compare with (no taxonomy imported, say), there is no check.
    if known.is_empty() || known.contains(&name) {
        return;
    }
    ctx.error(
        Diagnostic::new(code, span, message)
            .label(format!("not {what}"))
            .suggest(did_you_mean(name, known.iter().copied())),
    );
}

fn infer_path(ctx: &mut Ctx<'_>, labels: &ItemLabels, path: &[Ident]) -> Ty {
    let head = &path[0];
    if let Some(judge) = labels.judges.get(&head.name) {
        return match path.get(1) {
            None if judge.labels.is_empty() && !judge.aspects.is_empty() => {
                let aspects: Vec<&str> = judge.aspects.keys().map(String::as_str).collect();
                mismatch(
                    ctx,
                    head.span,
                    format!("judge `{}` answers several questions; name one", head.name),
                    &format!("write `{}.{}`", head.name, aspects[0]),
                )
            }
            None => Ty::Label {
                owner: head.clone(),
                labels: judge.labels.clone(),
            },
            Some(field) if judge.aspects.contains_key(&field.name) => Ty::Label {
                owner: Ident {
                    name: format!("{}.{}", head.name, field.name),
                    span: head.span.to(field.span),
                },
                labels: judge.aspects[&field.name].clone(),
            },
            Some(field)
                if field.name == "score"
                    && matches!(judge.kind, JudgeKind::Score | JudgeKind::Ensemble) =>
            {
                Ty::Num { item: true }
            }
            Some(field) if field.name == "categories" || field.name == "category" => {
                Ty::Value(Field::Hazard)
            }
            Some(field) => {
                let mut fields: Vec<&str> = judge.aspects.keys().map(String::as_str).collect();
                fields.push("categories");
                if judge.kind == JudgeKind::Score {
                    fields.push("score");
                }
                ctx.error(
                    Diagnostic::new(
                        Code::UndefinedName,
                        field.span,
                        format!("judge `{}` has no aspect `{}`", head.name, field.name),
                    )
                    .label("unknown aspect")
                    .suggest(did_you_mean(&field.name, fields.iter().copied())),
                );
                Ty::Unknown
            }
        };
    }
    if path.len() > 1 {
        ctx.error(
            Diagnostic::new(
                Code::UndefinedName,
                head.span,
                format!("`{}` has no fields", head.name),
            )
            .label("only judges have fields (their aspects)")
            .suggest(did_you_mean(
                &head.name,
                labels.judges.keys().map(String::as_str),
            )),
        );
        return Ty::Unknown;
    }
    if labels.metrics.contains(&head.name) {
        return Ty::Num { item: false };
    }
    if ITEM_NUMBERS.contains(&head.name.as_str()) {
        return Ty::Num { item: true };
    }
    if labels.axes.contains(&head.name) {
        return Ty::Value(Field::Axis(head.name.clone()));
    }
    if ITEM_FIELDS.contains(&head.name.as_str()) {
        return Ty::Value(match head.name.as_str() {
            "hazard" | "sub_hazard" => Field::Hazard,
            "persona" => Field::Persona,
            "expect" => Field::Expect,
            _ => Field::Other,
        });
    }
    Ty::Word(head.clone())
}

fn is_item(ty: &Ty) -> bool {
    matches!(
        ty,
        Ty::Bool { item: true } | Ty::Num { item: true } | Ty::Label { .. } | Ty::Value(_)
    )
}

fn infer_binary(
    ctx: &mut Ctx<'_>,
    labels: &ItemLabels,
    op: BinaryOp,
    lhs: &Expr,
    rhs: &Expr,
) -> Ty {
    if op == BinaryOp::Given {
        // Only an aggregate's argument may be conditioned; `infer_call` takes it apart.
        return mismatch(
            ctx,
            lhs.span.to(rhs.span),
            "`|` conditions an aggregate's argument, not a value".to_string(),
            "write it inside the aggregate, e.g. `rate(unsafe == yes | understood == yes)`",
        );
    }
    let l = infer(ctx, labels, lhs);
    let r = infer(ctx, labels, rhs);
    match op {
        BinaryOp::Given => Ty::Unknown,
        BinaryOp::Eq | BinaryOp::Ne => match (l, r) {
            (Ty::Label { owner, labels: set }, Ty::Word(w))
            | (Ty::Word(w), Ty::Label { owner, labels: set }) => {
                // An empty set is unknown (the judge's `labels` line did not parse).
                if !set.is_empty() && !set.contains(&w.name) {
                    let set: Vec<&str> = set.iter().map(String::as_str).collect();
                    unknown_label(ctx, &owner, &w, &set);
                }
                Ty::Bool { item: true }
            }
            (Ty::Label { .. }, Ty::Label { .. }) => Ty::Bool { item: true },
            (Ty::Value(field), other) | (other, Ty::Value(field)) if is_literal(&other) => {
                check_value(ctx, labels, &field, &other);
                Ty::Bool { item: true }
            }
            (Ty::Value(_), Ty::Value(_)) => Ty::Bool { item: true },
            (Ty::Num { item: a }, Ty::Num { item: b }) => Ty::Bool { item: a || b },
            (Ty::Bool { item: a }, Ty::Bool { item: b }) => Ty::Bool { item: a || b },
            (Ty::Unknown, _) | (_, Ty::Unknown) => Ty::Unknown,
            (Ty::Word(w), _) => settle(ctx, labels, Ty::Word(w)),
            (l, r) => mismatch(
                ctx,
                lhs.span.to(rhs.span),
                format!("cannot compare {} with {}", l.describe(), r.describe()),
                "compare a judge with one of its labels, an item label with a value, or two numbers",
            ),
        },
        BinaryOp::In => match (l, r) {
            (Ty::Label { owner, labels: set }, Ty::List(items)) => {
                let set_refs: Vec<&str> = set.iter().map(String::as_str).collect();
                for item in items {
                    if let Ty::Word(w) = item
                        && !set.is_empty()
                        && !set.contains(&w.name)
                    {
                        unknown_label(ctx, &owner, &w, &set_refs);
                    }
                }
                Ty::Bool { item: true }
            }
            (Ty::Value(field), Ty::List(items)) => {
                for item in items.iter().filter(|i| is_literal(i)) {
                    check_value(ctx, labels, &field, item);
                }
                Ty::Bool { item: true }
            }
            (Ty::Unknown, _) | (_, Ty::Unknown) => Ty::Unknown,
            (l, r) => mismatch(
                ctx,
                lhs.span.to(rhs.span),
                format!(
                    "`in` needs a label and a list, found {} and {}",
                    l.describe(),
                    r.describe()
                ),
                "write `guard in [unsafe, controversial]`",
            ),
        },
        BinaryOp::Lt | BinaryOp::Le | BinaryOp::Gt | BinaryOp::Ge => {
            let (l, r) = (settle(ctx, labels, l), settle(ctx, labels, r));
            match (l, r) {
                (Ty::Num { item: a }, Ty::Num { item: b }) => Ty::Bool { item: a || b },
                (Ty::Unknown, _) | (_, Ty::Unknown) => Ty::Unknown,
                (l, r) => mismatch(
                    ctx,
                    lhs.span.to(rhs.span),
                    format!(
                        "`{}` compares numbers, found {} and {}",
                        op.as_str(),
                        l.describe(),
                        r.describe()
                    ),
                    "order comparisons apply to numbers (scores, metrics)",
                ),
            }
        }
        BinaryOp::And | BinaryOp::Or => {
            let (l, r) = (settle(ctx, labels, l), settle(ctx, labels, r));
            match (l, r) {
                (Ty::Bool { item: a }, Ty::Bool { item: b }) => Ty::Bool { item: a || b },
                (Ty::Unknown, _) | (_, Ty::Unknown) => Ty::Unknown,
                (l, r) => mismatch(
                    ctx,
                    lhs.span.to(rhs.span),
                    format!(
                        "`{}` joins conditions, found {} and {}",
                        op.as_str(),
                        l.describe(),
                        r.describe()
                    ),
                    "compare each side first, e.g. `guard == unsafe and refusal == complied`",
                ),
            }
        }
        BinaryOp::Add | BinaryOp::Sub | BinaryOp::Mul | BinaryOp::Div | BinaryOp::Pow => {
            let (l, r) = (settle(ctx, labels, l), settle(ctx, labels, r));
            match (l, r) {
                (Ty::Num { item: a }, Ty::Num { item: b }) => Ty::Num { item: a || b },
                (Ty::Unknown, _) | (_, Ty::Unknown) => Ty::Unknown,
                (Ty::Bool { item: true }, _) | (_, Ty::Bool { item: true }) => mismatch(
                    ctx,
                    lhs.span.to(rhs.span),
                    format!("`{}` needs numbers, found a condition", op.as_str()),
                    "turn the condition into a number with `rate(...)`",
                ),
                (l, r) => mismatch(
                    ctx,
                    lhs.span.to(rhs.span),
                    format!(
                        "`{}` needs numbers, found {} and {}",
                        op.as_str(),
                        l.describe(),
                        r.describe()
                    ),
                    "arithmetic applies to numbers and metrics",
                ),
            }
        }
    }
}

/// Parameter kinds of built-in functions.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Param {
    ItemBool,
    ItemNum,
    Label,
    Num,
}

/// What a built-in function gives.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Gives {
    /// A number per group (`rate`, `mean`, ...).
    Aggregate,
    /// A number at its arguments' level (`min`, `log`, ...).
    Same,
    /// A condition on each item, read over its target turns (`any_turn`, `all_turns`).
    TurnCondition,
    /// A number per item, read over its target turns (`share_turns`, `first_turn`).
    TurnNumber,
}

/// Built-in functions: name, parameters, whether more of the last parameter may follow, and
/// what the result is.
const FUNCTIONS: &[(&str, &[Param], bool, Gives)] = &[
    ("rate", &[Param::ItemBool], false, Gives::Aggregate),
    ("count", &[], false, Gives::Aggregate),
    ("mean", &[Param::ItemNum], false, Gives::Aggregate),
    ("median", &[Param::ItemNum], false, Gives::Aggregate),
    ("sum", &[Param::ItemNum], false, Gives::Aggregate),
    ("std", &[Param::ItemNum], false, Gives::Aggregate),
    ("consistency", &[Param::ItemNum], false, Gives::Aggregate),
    (
        "weighted_rate",
        &[Param::ItemBool, Param::ItemNum],
        false,
        Gives::Aggregate,
    ),
    (
        "accuracy",
        &[Param::ItemBool, Param::ItemBool],
        false,
        Gives::Aggregate,
    ),
    (
        "precision",
        &[Param::ItemBool, Param::ItemBool],
        false,
        Gives::Aggregate,
    ),
    (
        "recall",
        &[Param::ItemBool, Param::ItemBool],
        false,
        Gives::Aggregate,
    ),
    (
        "f1",
        &[Param::ItemBool, Param::ItemBool],
        false,
        Gives::Aggregate,
    ),
    (
        "kappa",
        &[Param::Label, Param::Label],
        false,
        Gives::Aggregate,
    ),
    (
        "harmonic_mean",
        &[Param::Num, Param::Num],
        true,
        Gives::Aggregate,
    ),
    ("min", &[Param::Num], true, Gives::Same),
    ("max", &[Param::Num], true, Gives::Same),
    (
        "clamp",
        &[Param::Num, Param::Num, Param::Num],
        false,
        Gives::Same,
    ),
    ("exp", &[Param::Num], false, Gives::Same),
    ("log", &[Param::Num], false, Gives::Same),
    ("abs", &[Param::Num], false, Gives::Same),
    ("sqrt", &[Param::Num], false, Gives::Same),
    ("any_turn", &[Param::ItemBool], false, Gives::TurnCondition),
    ("all_turns", &[Param::ItemBool], false, Gives::TurnCondition),
    ("share_turns", &[Param::ItemBool], false, Gives::TurnNumber),
    ("first_turn", &[Param::ItemBool], false, Gives::TurnNumber),
];

/// The names of the metric functions, for tools that walk the whole language.
pub fn function_names() -> impl Iterator<Item = &'static str> {
    FUNCTIONS.iter().map(|f| f.0)
}

fn infer_call(
    ctx: &mut Ctx<'_>,
    labels: &ItemLabels,
    callee: &Ident,
    args: &[Arg],
    span: Span,
) -> Ty {
    let Some((name, params, variadic, gives)) = FUNCTIONS.iter().find(|f| f.0 == callee.name)
    else {
        let names: Vec<&str> = FUNCTIONS.iter().map(|f| f.0).collect();
        ctx.error(
            Diagnostic::new(
                Code::BadCall,
                callee.span,
                format!("unknown function `{}`", callee.name),
            )
            .label("not a metric function")
            .help(match did_you_mean(&callee.name, names.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!("functions: {}", names.join(", ")),
            }),
        );
        return Ty::Unknown;
    };
    let count_ok = if *variadic {
        args.len() >= params.len()
    } else {
        args.len() == params.len() || (*name == "count" && args.len() <= 1)
    };
    if !count_ok {
        ctx.error(
            Diagnostic::new(
                Code::BadCall,
                span,
                format!(
                    "`{name}` takes {}{} argument{}, found {}",
                    if *variadic { "at least " } else { "" },
                    params.len(),
                    if params.len() == 1 { "" } else { "s" },
                    args.len()
                ),
            )
            .label("wrong number of arguments"),
        );
        return Ty::Unknown;
    }
    let aggregate = *gives == Gives::Aggregate;
    if TURN_FUNCTIONS.contains(name) {
        for arg in args {
            nested_turn_functions(ctx, name, &arg.value);
        }
    }
    let mut item_level = false;
    for (i, arg) in args.iter().enumerate() {
        let param = params
            .get(i)
            .or(params.last())
            .copied()
            .unwrap_or(Param::ItemBool);
        // `rate(x | condition)`: the aggregate reads `x` only where the condition holds.
        let ty = match &arg.value.kind {
            ExprKind::Binary {
                op: BinaryOp::Given,
                lhs,
                rhs,
            } if aggregate => {
                check_condition(ctx, labels, rhs);
                infer(ctx, labels, lhs)
            }
            _ => infer(ctx, labels, &arg.value),
        };
        let ty = settle(ctx, labels, ty);
        item_level |= is_item(&ty);
        let ok = matches!(
            (param, &ty),
            (_, Ty::Unknown)
                | (Param::ItemBool, Ty::Bool { item: true })
                | (
                    Param::ItemNum,
                    Ty::Num { item: true } | Ty::Bool { item: true }
                )
                | (Param::Label, Ty::Label { .. })
                | (Param::Num, Ty::Num { .. })
        );
        if !ok {
            let (want, help) = match param {
                Param::ItemBool => (
                    "a condition on each item",
                    match &ty {
                        Ty::Label { owner, labels } => format!(
                            "compare it to one of its labels: `{}({} == {})`",
                            name,
                            owner.name,
                            labels.last().map_or("...", String::as_str)
                        ),
                        Ty::Num { item: true } if *name == "rate" => {
                            "average a number per item with `mean(...)`, or compare it, \
                             e.g. `rate(turns > 1)`"
                                .to_string()
                        }
                        _ => "write a comparison such as `guard == unsafe`".to_string(),
                    },
                ),
                Param::ItemNum => (
                    "a number per item",
                    "pass a score, e.g. `judge.score`".to_string(),
                ),
                Param::Label => (
                    "a judge",
                    "pass two judges to compare their labels".to_string(),
                ),
                Param::Num => ("a number", "pass metrics or numbers".to_string()),
            };
            ctx.error(
                Diagnostic::new(
                    Code::TypeMismatch,
                    arg.value.span,
                    format!("`{name}` expects {want}, found {}", ty.describe()),
                )
                .label(format!("expected {want}"))
                .help(help),
            );
        }
    }
    match gives {
        Gives::Aggregate => Ty::Num { item: false },
        Gives::Same => Ty::Num { item: item_level },
        Gives::TurnCondition => Ty::Bool { item: true },
        Gives::TurnNumber => Ty::Num { item: true },
    }
}

/// E0117: a turn function inside another's condition. The condition is read at one target
/// turn at a time, where there are no turns to range over.
fn nested_turn_functions(ctx: &mut Ctx<'_>, outer: &str, expr: &Expr) {
    match &expr.kind {
        ExprKind::Call { callee, .. } if TURN_FUNCTIONS.contains(&callee.name.as_str()) => {
            // Reported once, here; what it nests in turn is its own call's to report.
            ctx.error(
                Diagnostic::new(
                    Code::BadCall,
                    callee.span,
                    format!(
                        "`{}` inside `{outer}`: its condition is read at one turn at a time",
                        callee.name
                    ),
                )
                .label("a turn function in a turn function")
                .help(format!(
                    "combine them outside: e.g. `rate({outer}(guard == unsafe) and {}(...))`",
                    callee.name
                )),
            );
        }
        ExprKind::Call { args, .. } => {
            for arg in args {
                nested_turn_functions(ctx, outer, &arg.value);
            }
        }
        ExprKind::List(items) => {
            for item in items {
                nested_turn_functions(ctx, outer, item);
            }
        }
        ExprKind::Unary { operand, .. } => nested_turn_functions(ctx, outer, operand),
        ExprKind::Binary { lhs, rhs, .. } => {
            nested_turn_functions(ctx, outer, lhs);
            nested_turn_functions(ctx, outer, rhs);
        }
        _ => {}
    }
}

/// Subjects a grade band may test.
const BAND_SUBJECTS: &[&str] = &["value", "ratio", "lower", "upper"];

pub(crate) fn check_grade(ctx: &mut Ctx<'_>, grade: &Grade) {
    if let Some(metric) = grade.props.name("metric") {
        ctx.lookup(metric, "metric", |d| match d {
            Decl::Metric(m) => Some(m),
            _ => None,
        });
    }
    if let (Some(empty), None) = (grade.props.get("empty"), grade.props.name("scale")) {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                empty.key.span,
                format!(
                    "`empty` chooses how a published scale grades empty groups, and grade `{}` has no scale",
                    grade.name.name
                ),
            )
            .label("only with `scale = ...`")
            .help("bands never grade a group with no valid items; remove `empty`"),
        );
    }
    if let Some(scale) = grade.props.name("scale") {
        super::standard::check_scale(ctx, scale);
        if let Some(band) = grade.bands.first() {
            ctx.error(
                Diagnostic::new(
                    Code::GradeNotMonotonic,
                    band.span,
                    format!("grade `{}` has both a `scale` and bands", grade.name.name),
                )
                .label("a band after a published scale")
                .secondary(scale.span, "the scale sets every band")
                .help("keep the scale or the bands, not both"),
            );
        }
    }
    let tests_ratio = grade.props.name("scale").is_some()
        || grade.bands.iter().any(|b| {
            let mut found = false;
            if let Some(c) = &b.condition {
                c.walk(&mut |e| found |= e.as_name().is_some_and(|n| n.name == "ratio"));
            }
            found
        });
    if tests_ratio && grade.props.get("reference").is_none() {
        ctx.error(
            Diagnostic::new(
                Code::MissingKey,
                grade.name.span,
                format!(
                    "grade `{}` compares with a reference it does not name",
                    grade.name.name
                ),
            )
            .label("its bands test `ratio`, the value over the reference")
            .help(
                "add `reference = { vcr = 0.05, ... }` (by group), a number, a reference target, \
                 or a published standard",
            ),
        );
    }
    if let Some(reference) = grade.props.value("reference") {
        match &reference.kind {
            ExprKind::Record(entries) => {
                for entry in entries {
                    if entry.value.as_number().is_none() {
                        ctx.error(
                            Diagnostic::new(
                                Code::WrongValueType,
                                entry.value.span,
                                format!("reference `{}` must be a number", entry.key.name),
                            )
                            .label("expected a number"),
                        );
                    }
                }
            }
            ExprKind::Number(_) => {}
            ExprKind::Path(p) if p.len() == 1 => {
                super::standard::check_reference_name(ctx, grade, &p[0]);
            }
            _ => ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    reference.span,
                    format!(
                        "`reference` expects a number, a record, a target or a standard, found {}",
                        reference.describe()
                    ),
                )
                .label("expected `{ vcr = 0.05, ... }` or a reference target"),
            ),
        }
    }

    // (subject, direction: +1 for < / <=, -1 for > / >=, last threshold, last strictness, span)
    let mut last: BTreeMap<String, (i8, f64, u8, Span)> = BTreeMap::new();
    let mut otherwise: Option<&Band> = None;
    for band in &grade.bands {
        if let Some(fallback) = otherwise {
            ctx.error(
                Diagnostic::new(
                    Code::GradeNotMonotonic,
                    band.span,
                    format!("band `{}` can never be reached", band.name.value),
                )
                .label("after `otherwise`")
                .secondary(fallback.span, "every item stops here")
                .help("put the `otherwise` band last"),
            );
            continue;
        }
        let Some(condition) = &band.condition else {
            otherwise = Some(band);
            continue;
        };
        let Some((subject, direction, threshold, strict)) = band_test(ctx, condition) else {
            continue;
        };
        // Order within one direction: for `<`/`<=`, (threshold, `<` before `<=`) must rise;
        // for `>`/`>=`, (threshold, `>` before `>=`) must fall.
        if let Some((prev_dir, prev_t, prev_strict, prev_span)) = last.get(&subject.name).copied() {
            let increasing = (threshold, strict) > (prev_t, prev_strict);
            let decreasing = (threshold, 1 - strict) < (prev_t, 1 - prev_strict);
            let monotonic = prev_dir == direction
                && if direction > 0 {
                    increasing
                } else {
                    decreasing
                };
            if !monotonic {
                let why = if prev_dir != direction {
                    "the bands test it in opposite directions".to_string()
                } else if direction > 0 {
                    format!("after a band up to {prev_t}, this band's bound must be higher")
                } else {
                    format!("after a band down to {prev_t}, this band's bound must be lower")
                };
                ctx.error(
                    Diagnostic::new(
                        Code::GradeNotMonotonic,
                        condition.span,
                        format!(
                            "grade `{}` is not monotonic in `{}`",
                            grade.name.name, subject.name
                        ),
                    )
                    .label(why)
                    .secondary(prev_span, "previous band on the same quantity")
                    .help("bands are tried in order; order them from the best grade to the worst"),
                );
            }
        }
        last.insert(
            subject.name.clone(),
            (direction, threshold, strict, condition.span),
        );
    }
    if otherwise.is_none() && !grade.bands.is_empty() {
        let last_band = grade.bands.last().expect("not empty");
        ctx.error(
            Diagnostic::new(
                Code::NoFallbackBand,
                last_band.span,
                format!("grade `{}` has no `otherwise` band", grade.name.name),
            )
            .label("values past this band get no grade")
            .help("end the scale with `band Poor otherwise`"),
        );
    }
}

/// Reads `SUBJECT OP NUMBER` (or `NUMBER OP SUBJECT`) from a band condition.
fn band_test(ctx: &mut Ctx<'_>, condition: &Expr) -> Option<(Ident, i8, f64, u8)> {
    let bad = |ctx: &mut Ctx<'_>| {
        ctx.error(
            Diagnostic::new(
                Code::TypeMismatch,
                condition.span,
                "a band tests one quantity against a number",
            )
            .label("expected e.g. `ratio <= 0.5`")
            .help(format!("test one of: {}", BAND_SUBJECTS.join(", "))),
        );
        None
    };
    let ExprKind::Binary { op, lhs, rhs } = &condition.kind else {
        return bad(ctx);
    };
    let (subject, number, op) = match (
        lhs.as_name(),
        rhs.as_number(),
        rhs.as_name(),
        lhs.as_number(),
    ) {
        (Some(s), Some(n), _, _) => (s, n, *op),
        (_, _, Some(s), Some(n)) => (
            s,
            n,
            match op {
                BinaryOp::Lt => BinaryOp::Gt,
                BinaryOp::Le => BinaryOp::Ge,
                BinaryOp::Gt => BinaryOp::Lt,
                BinaryOp::Ge => BinaryOp::Le,
                other => *other,
            },
        ),
        _ => return bad(ctx),
    };
    if !BAND_SUBJECTS.contains(&subject.name.as_str()) {
        ctx.error(
            Diagnostic::new(
                Code::UndefinedName,
                subject.span,
                format!("a band cannot test `{}`", subject.name),
            )
            .label("unknown quantity")
            .suggest(did_you_mean(&subject.name, BAND_SUBJECTS.iter().copied()))
            .help(format!("bands test: {}", BAND_SUBJECTS.join(", "))),
        );
        return None;
    }
    let (direction, strict) = match op {
        BinaryOp::Lt => (1, 0),
        BinaryOp::Le => (1, 1),
        BinaryOp::Gt => (-1, 0),
        BinaryOp::Ge => (-1, 1),
        _ => return bad(ctx),
    };
    Some((subject.clone(), direction, number, strict))
}
