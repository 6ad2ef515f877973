//! Lowers conversation programs into [`ProgramSpec`]s, the defenses of targets and of
//! `defense` axes into [`DefenseSpec`]s, with the budgets and the worst-case number of calls
//! an item can make. `extends` has already been merged by the checker.

use crate::Expander;
use crate::scoring::{Names, lower_expr};
use assay_ir::{
    AttackParser, AttackerSpec, Context, DEFAULT_REWRITE_PROMPT, DefenseSpec, JudgeKind, JudgeSpec,
    MetricExpr, ProgramSpec, Rewrite, Role, ScriptTurn, StopSpec, TargetSpec, TurnText, WorstCase,
};
use assay_syntax::ast::{Decl, Expr, ExprKind, Program, Props, Role as AstRole};
use std::collections::{BTreeMap, BTreeSet};

/// Attack rounds when neither the attacker nor the program gives a budget.
pub const DEFAULT_ATTACK_TURNS: u32 = 5;
/// Backtracks allowed per conversation when `max_backtracks` is not given (Crescendo's 10).
pub const DEFAULT_MAX_BACKTRACKS: u32 = 10;

impl Expander<'_> {
    /// Every program visible from the entry module, by name.
    pub(crate) fn lower_programs(
        &mut self,
        names: &Names,
        judges: &[JudgeSpec],
    ) -> BTreeMap<String, ProgramSpec> {
        let mut out = BTreeMap::new();
        for (name, def) in self.checked.model.in_source_order() {
            let Decl::Program(p) = &def.decl else {
                continue;
            };
            self.module = def.module;
            if let Some(spec) = self.lower_program(name, p, names, judges) {
                out.insert(name.to_string(), spec);
            }
        }
        out
    }

    fn lower_program(
        &mut self,
        name: &str,
        p: &Program,
        names: &Names,
        judges: &[JudgeSpec],
    ) -> Option<ProgramSpec> {
        let mut turns = Vec::new();
        for t in &p.turns {
            let content = match &t.content.kind {
                ExprKind::Path(path) if path.len() == 2 && path[1].name == "prompt" => {
                    TurnText::ItemPrompt
                }
                ExprKind::Path(path) if path.len() == 2 && path[1].name == "turns" => {
                    TurnText::ItemTurns
                }
                _ => TurnText::Text(self.text_of(&t.content)?),
            };
            turns.push(ScriptTurn {
                role: match t.role {
                    AstRole::User => Role::User,
                    AstRole::Assistant => Role::Assistant,
                },
                content,
            });
        }
        let count = |props: &Props, key: &str| props.number(key).map(|n| n.max(0.0) as u32);
        let attacker = match &p.attacker {
            Some(a) => Some(self.lower_attacker(a, count(&p.props, "max_turns"))?),
            None => None,
        };
        let stops: Vec<StopSpec> = p
            .stops
            .iter()
            .map(|e| StopSpec {
                source: self.source_text(e),
                condition: lower_expr(e, names),
            })
            .collect();
        // The judges run in the loop, members before the ensembles combining them.
        let mut wanted = BTreeSet::new();
        for stop in &stops {
            judges_read(&stop.condition, &mut wanted);
        }
        if let Some(a) = &attacker {
            wanted.extend(a.feedback.iter().chain(&a.backtrack).cloned());
        }
        let loop_judges = closure(&wanted, judges);
        // Target turns of one conversation: the scripted user turns (an item's turns count
        // as one here: their number is the item's), then the attack rounds. The worst case
        // below counts them so.
        let scripted = turns.iter().filter(|t| t.role == Role::User).count() as u32;
        let attack = attacker.as_ref().map_or(0, |a| a.max_turns);
        let natural = scripted + attack;
        let max_turns = count(&p.props, "max_turns").map(|m| m.max(1));
        let judged: u64 = loop_judges.iter().map(|n| judge_calls(n, judges)).sum();
        let worst_case = worst_case(
            attacker.as_ref(),
            scripted,
            max_turns.map_or(natural, |m| m.min(natural)),
            judged,
            judges,
        );
        Some(ProgramSpec {
            name: name.to_string(),
            turns,
            attacker,
            stops,
            max_turns,
            judges: loop_judges,
            worst_case_calls: worst_case
                .target
                .saturating_add(worst_case.attacker)
                .saturating_add(worst_case.judges),
            worst_case,
            description: p.props.str("description").map(str::to_string),
        })
    }

    fn lower_attacker(&mut self, a: &Props, program_turns: Option<u32>) -> Option<AttackerSpec> {
        let model = a.name("model")?.name.clone();
        let target = self.target_named(&model)?;
        let prompt = self.text_of(a.value("prompt")?)?;
        let system = match a.value("system") {
            Some(v) => Some(self.text_of(v)?),
            None => None,
        };
        let parser = match a.value("parser").map(|v| &v.kind) {
            Some(ExprKind::Call { callee, args }) => {
                let arg = args.first().and_then(|a| a.value.as_str())?.to_string();
                match callee.name.as_str() {
                    "json" => AttackParser::Json(arg),
                    _ => AttackParser::Regex(arg),
                }
            }
            _ => AttackParser::Text,
        };
        let count = |key: &str| a.number(key).map(|n| n.max(0.0) as u32);
        let judge = |key: &str| a.name(key).map(|n| n.name.clone());
        let max_turns = count("max_turns")
            .or(program_turns)
            .unwrap_or(DEFAULT_ATTACK_TURNS);
        Some(AttackerSpec {
            model,
            target,
            system,
            prompt,
            parser,
            context: match a.name("context").map(|c| c.name.as_str()) {
                Some("single") => Context::Single,
                _ => Context::Conversation,
            },
            streams: count("streams").unwrap_or(1).max(1),
            branching: count("branching").unwrap_or(1).max(1),
            width: count("width").unwrap_or(0),
            feedback: judge("feedback"),
            prune: judge("prune"),
            backtrack: judge("backtrack"),
            max_backtracks: count("max_backtracks").unwrap_or(DEFAULT_MAX_BACKTRACKS),
            temperature: a.number("temperature"),
            max_turns,
        })
    }

    /// A target by name, lowered as `lower_targets` lowers it.
    pub(crate) fn target_named(&mut self, name: &str) -> Option<TargetSpec> {
        let def = self.checked.model.definitions.get(name).or_else(|| {
            // A name visible in the declaring module but not imported into the entry one.
            self.checked
                .model
                .definitions
                .values()
                .find(|d| matches!(&d.decl, Decl::Target(t) if t.name.name == name))
        })?;
        let Decl::Target(t) = &def.decl else {
            return None;
        };
        let module = std::mem::replace(&mut self.module, def.module);
        let spec = self.lower_target(name, t);
        self.module = module;
        spec
    }

    /// A target's spec, its `wraps` resolved: a defended target calls the wrapped target's
    /// model with the defense around it.
    pub(crate) fn lower_target(
        &mut self,
        name: &str,
        t: &assay_syntax::ast::Target,
    ) -> Option<TargetSpec> {
        let mut spec = match t.props.name("wraps") {
            Some(base) => {
                let mut spec = self.target_named(&base.name)?;
                let defense = self.defense_of(&t.props)?;
                spec.defense = (!defense.is_empty()).then_some(defense);
                spec
            }
            None => {
                let mut spec = crate::scoring::target_spec(name, t);
                spec.system = match t.props.value("system") {
                    Some(v) => Some(self.text_of(v)?),
                    None => None,
                };
                spec
            }
        };
        if t.props.get("wraps").is_some() {
            // The wrapper's own sampling parameters and limits hold over the wrapped one's.
            let own = crate::scoring::target_spec(name, t);
            spec.params.extend(own.params);
            let l = own.limits;
            spec.limits.concurrency = l.concurrency.or(spec.limits.concurrency);
            spec.limits.requests_per_minute =
                l.requests_per_minute.or(spec.limits.requests_per_minute);
            spec.limits.timeout_secs = l.timeout_secs.or(spec.limits.timeout_secs);
            spec.limits.retries = l.retries.or(spec.limits.retries);
        }
        Some(spec)
    }

    /// The defense keys of a target or a `defense` axis variant.
    pub(crate) fn defense_of(&mut self, props: &Props) -> Option<DefenseSpec> {
        let judge = |key: &str| props.name(key).map(|n| n.name.clone());
        let system = match props.value("system") {
            Some(v) => Some(self.text_of(v)?).filter(|s| !s.trim().is_empty()),
            None => None,
        };
        let rewrite = match props.name("rewrite") {
            Some(model) => {
                let target = self.target_named(&model.name)?;
                let prompt = match props.value("rewrite_prompt") {
                    Some(v) => self.text_of(v)?,
                    None => DEFAULT_REWRITE_PROMPT.to_string(),
                };
                Some(Box::new(Rewrite {
                    model: model.name.clone(),
                    target,
                    prompt,
                }))
            }
            None => None,
        };
        Some(DefenseSpec {
            system,
            input_guard: judge("input_guard"),
            output_guard: judge("output_guard"),
            rewrite,
        })
    }

    /// The text of an expression as written in its file.
    fn source_text(&self, e: &Expr) -> String {
        let file = self.checked.modules[self.module].file;
        let text = &self.checked.sources.get(file).text;
        text.get(e.span.start as usize..e.span.end as usize)
            .unwrap_or_default()
            .to_string()
    }
}

/// The judges an expression reads.
fn judges_read(e: &MetricExpr, out: &mut BTreeSet<String>) {
    match e {
        MetricExpr::Verdict { judge, .. }
        | MetricExpr::Score { judge }
        | MetricExpr::Categories { judge } => {
            out.insert(judge.clone());
        }
        MetricExpr::List(items) => items.iter().for_each(|i| judges_read(i, out)),
        MetricExpr::Unary { operand, .. } => judges_read(operand, out),
        MetricExpr::Binary { lhs, rhs, .. } => {
            judges_read(lhs, out);
            judges_read(rhs, out);
        }
        MetricExpr::Call { args, .. } => args.iter().for_each(|a| judges_read(a, out)),
        _ => {}
    }
}

/// `wanted` and every ensemble member under them, in the scoring's dependency order.
fn closure(wanted: &BTreeSet<String>, judges: &[JudgeSpec]) -> Vec<String> {
    let mut all = wanted.clone();
    // Ensembles come after their members: walking backwards adds members before they are
    // reached.
    for j in judges.iter().rev() {
        if all.contains(&j.name)
            && let JudgeKind::Ensemble { members, .. } = &j.kind
        {
            all.extend(members.iter().cloned());
        }
    }
    judges
        .iter()
        .filter(|j| all.contains(&j.name))
        .map(|j| j.name.clone())
        .collect()
}

/// Model calls one judge verdict can take: one for a judge that asks a model, the sum of the
/// members for an ensemble, none otherwise.
fn judge_calls(name: &str, judges: &[JudgeSpec]) -> u64 {
    match judges.iter().find(|j| j.name == name).map(|j| &j.kind) {
        Some(JudgeKind::Llm { .. } | JudgeKind::Guard { .. } | JudgeKind::Score { .. }) => 1,
        Some(JudgeKind::Ensemble { members, .. }) => {
            members.iter().map(|m| judge_calls(m, judges)).sum()
        }
        _ => 0,
    }
}

/// The most calls an item can make: every target turn of every branch and its judging by
/// the loop judges (`judged` calls per turn), every attack prompt asked and (with `prune`)
/// judged, every backtrack's new prompt, turn and judging. Defenses add theirs per target
/// call, at run time; retries are not counted. Scripted turns come once, before any stream.
fn worst_case(
    attacker: Option<&AttackerSpec>,
    scripted: u32,
    max_turns: u32,
    judged: u64,
    judges: &[JudgeSpec],
) -> WorstCase {
    let scripted = u64::from(scripted.min(max_turns));
    let mut w = WorstCase {
        target: scripted,
        attacker: 0,
        judges: scripted.saturating_mul(judged),
    };
    let Some(a) = attacker else {
        w.target = u64::from(max_turns);
        w.judges = w.target.saturating_mul(judged);
        return w;
    };
    let prune = a.prune.as_ref().map_or(0, |p| judge_calls(p, judges));
    let streams = u64::from(a.streams);
    let rounds = u64::from(max_turns).saturating_sub(scripted);
    // Leaves at each level: streams × branching^level, down to `width` after each level.
    let mut leaves = streams;
    for _ in 0..rounds {
        let children = leaves.saturating_mul(u64::from(a.branching));
        w.attacker = w.attacker.saturating_add(children);
        w.target = w.target.saturating_add(children);
        w.judges = w
            .judges
            .saturating_add(children.saturating_mul(prune.saturating_add(judged)));
        leaves = if a.width == 0 {
            children
        } else {
            children.min(u64::from(a.width))
        };
    }
    if a.backtrack.is_some() {
        let again = u64::from(a.max_backtracks).saturating_mul(streams);
        w.attacker = w.attacker.saturating_add(again);
        w.target = w.target.saturating_add(again);
        w.judges = w
            .judges
            .saturating_add(again.saturating_mul(prune.saturating_add(judged)));
    }
    w
}
