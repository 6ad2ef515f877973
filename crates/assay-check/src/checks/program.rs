//! Conversation programs (after `extends` has merged them with their bases), the defenses of
//! targets and of `defense` axes, and the judges all of them run in the loop.

use super::metric::check_condition;
use super::{Ctx, builtin};
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic};

/// How an attacker's answer is read.
const ATTACK_PARSERS: &[(&str, usize)] = &[("json", 1), ("regex", 1)];

/// Judge kinds that ask a model.
fn needs_model(kind: JudgeKind) -> bool {
    matches!(kind, JudgeKind::Llm | JudgeKind::Guard | JudgeKind::Score)
}

impl Ctx<'_> {
    /// Whether the module being checked is part of the standard library, whose base judges
    /// and attacks leave their models to the spec that extends them.
    pub(crate) fn in_std(&self) -> bool {
        self.modules[self.m].is_std()
    }

    /// Looks up a judge a program or defense runs in the loop: it must exist and, outside the
    /// standard library, have a model if its kind asks one.
    pub(crate) fn loop_judge(&mut self, name: &Ident, role: &str) {
        let Some(judge) = self.lookup(name, "judge", |d| match d {
            Decl::Judge(j) => Some(j),
            _ => None,
        }) else {
            return;
        };
        if !self.in_std() && needs_model(judge.kind) && judge.props.get("model").is_none() {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("judge `{}` ({role}) has no model to ask", name.name),
                )
                .label("a base judge without a model")
                .help(format!(
                    "declare `judge my_{0}: {1} {{ extends = {0}  model = my_target }}` and name it here",
                    name.name,
                    judge.kind.as_str()
                )),
            );
        }
        self.refuse_in_loop(name, judge, role);
    }

    /// E0124 for a judge run inside a conversation that needs more than one answer's text:
    /// an `extract_llm` step or `from = logprobs`, its own or an ensemble member's. Judging
    /// after the run does both; the interpreter's judges do not.
    fn refuse_in_loop(&mut self, name: &Ident, judge: &Judge, role: &str) {
        let mut judges = vec![judge];
        for member in judge.props.names("members") {
            if let Some(Decl::Judge(m)) = self.find(&member.name) {
                judges.push(m);
            }
        }
        let what = judges.iter().find_map(|j| {
            let extracts = matches!(
                j.props.value("preprocess").map(|v| &v.kind),
                Some(ExprKind::List(steps)) if steps.iter().any(|s| matches!(
                    &s.kind,
                    ExprKind::Call { callee, .. } if callee.name == "extract_llm"
                ))
            );
            let via = if j.name.name == judge.name.name {
                String::new()
            } else {
                format!(" through its member `{}`", j.name.name)
            };
            if extracts {
                Some(format!("extracts with a model (`extract_llm`){via}"))
            } else if j.props.name("from").is_some_and(|f| f.name == "logprobs") {
                Some(format!("reads log-probabilities (`from = logprobs`){via}"))
            } else {
                None
            }
        });
        if let Some(what) = what {
            self.error(
                Diagnostic::new(
                    Code::NotRunnable,
                    name.span,
                    format!(
                        "judge `{}` ({role}) {what}, which is not supported inside a conversation by this version of Assay",
                        name.name
                    ),
                )
                .label("judged on each turn of the conversation")
                .help("judge the conversation after the run instead (a metric reading the judge), or give the loop a judge that reads the answer's text"),
            );
        }
    }
}

pub(crate) fn check_program(ctx: &mut Ctx<'_>, program: &Program) {
    let std = ctx.in_std();
    if let Some(attacker) = &program.attacker {
        match attacker.name("model") {
            Some(model) => {
                ctx.lookup(model, "target", |d| match d {
                    Decl::Target(t) => Some(t),
                    _ => None,
                });
            }
            None if !std => missing(ctx, program, "model", "the target that writes the attacks"),
            None => {}
        }
        match attacker.value("prompt") {
            Some(prompt) => {
                ctx.template_of(prompt);
            }
            None if !std => missing(ctx, program, "prompt", "the attacker's instructions"),
            None => {}
        }
        if let Some(system) = attacker.value("system") {
            ctx.template_of(system);
        }
        if let Some(parser) = attacker.value("parser")
            && let Some((name, args)) = builtin(ctx, parser, ATTACK_PARSERS, "attacker parser")
        {
            match args.first().map(|a| &a.value) {
                Some(arg) if arg.as_str().is_some() => {
                    let text = arg.as_str().unwrap_or_default();
                    if name.name == "regex"
                        && let Err(e) = regex::Regex::new(text)
                    {
                        ctx.error(
                            Diagnostic::new(
                                Code::WrongValueType,
                                arg.span,
                                "the attacker's regex does not compile".to_string(),
                            )
                            .label(first_line(&e.to_string()))
                            .help("Rust regex syntax: no look-around or back-references"),
                        );
                    }
                }
                Some(arg) => {
                    ctx.error(
                        Diagnostic::new(
                            Code::WrongValueType,
                            arg.span,
                            format!("`{}` expects a string, found {}", name.name, arg.describe()),
                        )
                        .label("expected a string"),
                    );
                }
                None => {}
            }
        }
        if let Some(context) = attacker.name("context")
            && !matches!(context.name.as_str(), "conversation" | "single")
        {
            ctx.error(
                Diagnostic::new(
                    Code::UnknownKind,
                    context.span,
                    format!("`{}` is not an attacker context", context.name),
                )
                .label("expected `conversation` or `single`")
                .help(
                    "`conversation`: the target sees the whole history (Crescendo); `single`: \
                     only the latest attack prompt (PAIR, TAP)",
                ),
            );
        }
        for key in ["streams", "branching"] {
            if let Some(p) = attacker.get(key)
                && p.value.as_number() == Some(0.0)
            {
                ctx.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        p.value.span,
                        format!("`{key}` must be at least 1"),
                    )
                    .label("no attack would be made")
                    .help(format!("leave `{key}` out for 1")),
                );
            }
        }
        for (key, role) in [
            ("feedback", "the attacker's feedback"),
            ("prune", "pruning attack prompts"),
            ("backtrack", "backtracking refused turns"),
        ] {
            if let Some(judge) = attacker.name(key) {
                ctx.loop_judge(judge, role);
            }
        }
    }
    for turn in &program.turns {
        let ok = match &turn.content.kind {
            ExprKind::Str(_) => true,
            ExprKind::Path(p) => {
                p.len() == 2
                    && p[0].name == "item"
                    && matches!(p[1].name.as_str(), "prompt" | "turns")
            }
            _ => turn.content.as_file_ref().is_some(),
        };
        if !ok {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    turn.content.span,
                    format!("a turn expects text, found {}", turn.content.describe()),
                )
                .label("expected a string, `file(\"...\")`, `item.prompt` or `item.turns`"),
            );
        } else if !matches!(turn.content.kind, ExprKind::Path(_)) {
            // Scripted text is a template over the item (`{{prompt}}`, `{{hazard}}`, ...).
            ctx.template_of(&turn.content);
        }
    }
    let labels = ctx.item_labels();
    for stop in &program.stops {
        check_condition(ctx, &labels, stop);
        if !std {
            for judge in judges_in(stop) {
                if let Some(Decl::Judge(_)) = ctx.find(&judge.name) {
                    ctx.loop_judge(judge, "a stop condition");
                }
            }
        }
    }
}

/// Names a condition reads that may be judges: the head of every path.
pub(crate) fn judges_in(e: &Expr) -> Vec<&Ident> {
    let mut out = Vec::new();
    e.walk(&mut |e| {
        if let ExprKind::Path(p) = &e.kind
            && let Some(head) = p.first()
        {
            out.push(head);
        }
    });
    out
}

fn missing(ctx: &mut Ctx<'_>, program: &Program, key: &str, what: &str) {
    ctx.error(
        Diagnostic::new(
            Code::MissingKey,
            program.name.span,
            format!(
                "the attacker of program `{}` is missing `{key}`",
                program.name.name
            ),
        )
        .label(format!("needs `{key}`: {what}"))
        .help(format!("add `{key} = ...` to its `attacker` block")),
    );
}

/// A target's defense keys: the wrapped target, the guard judges, the rewriter.
pub(crate) fn check_defense_keys(ctx: &mut Ctx<'_>, props: &Props, own_name: Option<&Ident>) {
    if let Some(wraps) = props.name("wraps") {
        if own_name.is_some_and(|n| n.name == wraps.name) {
            ctx.error(
                Diagnostic::new(
                    Code::CircularDefinition,
                    wraps.span,
                    format!("target `{}` wraps itself", wraps.name),
                )
                .label("a defense wraps another target")
                .help("name the undefended target here"),
            );
        } else if let Some(base) = ctx.lookup(wraps, "target", |d| match d {
            Decl::Target(t) => Some(t),
            _ => None,
        }) && base.props.get("wraps").is_some()
        {
            ctx.error(
                Diagnostic::new(
                    Code::NotRunnable,
                    wraps.span,
                    format!(
                        "`{}` is itself a defended target, and this version of Assay does not chain defenses",
                        wraps.name
                    ),
                )
                .label("defenses wrap an undefended target")
                .help("give one target every defense key it needs, wrapping the plain target"),
            );
        }
    }
    for (key, role) in [
        ("input_guard", "an input guard"),
        ("output_guard", "an output guard"),
    ] {
        if let Some(judge) = props.name(key) {
            ctx.loop_judge(judge, role);
        }
    }
    if let Some(rewrite) = props.name("rewrite") {
        ctx.lookup(rewrite, "target", |d| match d {
            Decl::Target(t) => Some(t),
            _ => None,
        });
    }
    if let Some(prompt) = props.value("rewrite_prompt") {
        ctx.template_of(prompt);
        if props.get("rewrite").is_none()
            && let Some(p) = props.get("rewrite_prompt")
        {
            ctx.error(
                Diagnostic::new(
                    Code::MissingKey,
                    p.key.span,
                    "`rewrite_prompt` without `rewrite`".to_string(),
                )
                .label("no model to rewrite with")
                .help("add `rewrite = TARGET`, the model that rewrites each prompt"),
            );
        }
    }
}

/// Keys a `defense` axis variant may give.
const DEFENSE_KEYS: &[&str] = &[
    "system",
    "input_guard",
    "output_guard",
    "rewrite",
    "rewrite_prompt",
];

/// A `defense` axis variant: `{}` or a record of defense keys.
pub(crate) fn check_defense_variant(ctx: &mut Ctx<'_>, variant: &Property) {
    let ExprKind::Record(props) = &variant.value.kind else {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                variant.value.span,
                format!(
                    "variant `{}` expects a defense record, found {}",
                    variant.key.name,
                    variant.value.describe()
                ),
            )
            .label("expected `{ input_guard = JUDGE ... }`, or `{}` for none"),
        );
        return;
    };
    for p in props {
        if !DEFENSE_KEYS.contains(&p.key.name.as_str()) {
            ctx.error(
                Diagnostic::new(
                    Code::UnknownKey,
                    p.key.span,
                    format!("`{}` is not a defense key", p.key.name),
                )
                .label("unknown key")
                .help(format!(
                    "a defense gives {}",
                    assay_syntax::ticked(DEFENSE_KEYS.iter())
                )),
            );
            continue;
        }
        let ok = match p.key.name.as_str() {
            "system" | "rewrite_prompt" => {
                matches!(p.value.kind, ExprKind::Str(_)) || p.value.as_file_ref().is_some()
            }
            _ => p.value.as_name().is_some(),
        };
        if !ok {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    p.value.span,
                    format!(
                        "`{}` expects {}, found {}",
                        p.key.name,
                        shape_of(&p.key.name),
                        p.value.describe()
                    ),
                )
                .label(format!("expected {}", shape_of(&p.key.name))),
            );
        } else if p.key.name == "system" {
            ctx.text_of(&p.value);
        }
    }
    let props = Props(props.clone());
    check_defense_keys(ctx, &props, None);
}

fn shape_of(key: &str) -> &'static str {
    match key {
        "system" | "rewrite_prompt" => "a string or `file(\"...\")`",
        "rewrite" => "a target's name",
        _ => "a judge's name",
    }
}

/// A `program` axis variant: a program's name, or `none` for a single turn.
pub(crate) fn check_program_variant(ctx: &mut Ctx<'_>, variant: &Property) {
    match variant.value.as_name() {
        Some(name) if name.name == "none" => {}
        Some(name) => {
            ctx.lookup(name, "program", |d| match d {
                Decl::Program(p) => Some(p),
                _ => None,
            });
        }
        None => {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    variant.value.span,
                    format!(
                        "variant `{}` expects a program's name, found {}",
                        variant.key.name,
                        variant.value.describe()
                    ),
                )
                .label("expected a program, or `none` for a single turn"),
            );
        }
    }
}

fn first_line(s: &str) -> String {
    s.lines().last().unwrap_or(s).trim().to_string()
}
