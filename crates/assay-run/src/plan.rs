//! `assay plan`: what a run will cost, without calling a model. For every model: its items
//! (per hazard), the calls (one per user turn of a plain item; a conversation program's worst
//! case), the prompt and completion tokens, the dollars at its price, and the wall time its
//! rate limit and concurrency imply; for every judge that asks a model, and every
//! `extract_llm` step, the same for its calls.
//!
//! Estimates, each stated so a reader can weigh them:
//! * prompt tokens are counted with OpenAI's tokenizer (`tiktoken`, the encoding of the
//!   model's name, `o200k_base` for unknown OpenAI names) for OpenAI-family models, and as
//!   one token per four bytes for every other model, plus 3 tokens per message and 3 priming
//!   the reply (OpenAI's count);
//! * completion tokens are the model's `max_tokens` when it sets one (an upper bound), else
//!   [`PlanOptions::completion_tokens`] per call;
//! * a conversation's target turn t of T carries the item's turns and t − 1 earlier
//!   exchanges; attacker and in-loop judge calls are counted at the item's size plus a
//!   completion each;
//! * wall time is calls over the throughput the model allows: its requests per minute, or its
//!   concurrency over [`PlanOptions::latency`] a call, whichever is lower; models run side by
//!   side, judging after the run.

use crate::engine::{ModelRun, RunOptions};
use assay_ir::{Item, JudgeKind, Preprocess, ProgramSpec, Role, Scoring};
use serde::Serialize;
use std::collections::BTreeMap;
use std::time::Duration;

/// What a plan assumes where nothing is declared.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Completion tokens per call for a model without `max_tokens`.
    pub completion_tokens: u64,
    /// Seconds one call takes, for models bounded by their concurrency.
    pub latency: Duration,
    /// Dollars per million prompt and completion tokens, by model name (a `--prices` file);
    /// a model's own `price` comes first.
    pub prices: BTreeMap<String, (f64, f64)>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        PlanOptions {
            completion_tokens: 256,
            latency: Duration::from_secs(2),
            prices: BTreeMap::new(),
        }
    }
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Plan {
    pub models: Vec<ModelPlan>,
    pub judges: Vec<ModelPlan>,
    /// Conversation programs' attackers and in-loop judges, by program.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub programs: Vec<ModelPlan>,
    pub total: Totals,
    /// How the figures were estimated.
    pub assumptions: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct ModelPlan {
    /// The target's name, or the judge's (`judge (model)`).
    pub name: String,
    /// The model it calls.
    pub model: String,
    pub items: u64,
    /// Items per hazard (`(none)` without one).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub by_hazard: BTreeMap<String, u64>,
    /// Calls: target turns, and a conversation program's worst case (its attacker and
    /// in-loop judges included).
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// `None` without a price for the model.
    pub cost: Option<f64>,
    pub wall_seconds: f64,
    /// What bounds the wall time.
    pub bound: String,
    /// How prompt tokens were counted.
    pub tokenizer: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Totals {
    pub items: u64,
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// The sum over models with a price; `priced_all` says whether every model had one.
    pub cost: f64,
    pub priced_all: bool,
    /// The run (models side by side), then judging.
    pub wall_seconds: f64,
}

/// Counts tokens as a model's tokenizer would, or estimates them.
struct Counter {
    bpe: Option<&'static tiktoken_rs::CoreBPE>,
    name: String,
}

impl Counter {
    fn for_model(model: &ModelRun) -> Counter {
        let identity = model.provider.identity();
        let name = identity
            .split_once(':')
            .map_or(identity.as_str(), |(_, rest)| rest);
        let name = name.split('@').next().unwrap_or(name);
        let openai_family = identity.starts_with("openai:")
            && ["gpt-", "o1", "o3", "o4", "chatgpt", "text-"]
                .iter()
                .any(|p| name.starts_with(p));
        if openai_family {
            let (bpe, encoding) = match tiktoken_rs::bpe_for_model(name) {
                Ok(bpe) => (
                    bpe,
                    tiktoken_rs::tokenizer::get_tokenizer(name)
                        .map_or("o200k_base".to_string(), |t| format!("{t:?}")),
                ),
                Err(_) => (
                    tiktoken_rs::o200k_base_singleton(),
                    "o200k_base".to_string(),
                ),
            };
            return Counter {
                bpe: Some(bpe),
                name: format!("tiktoken {encoding}"),
            };
        }
        Counter {
            bpe: None,
            name: "estimate: bytes / 4".to_string(),
        }
    }

    fn count(&self, text: &str) -> u64 {
        match &self.bpe {
            Some(bpe) => bpe.encode_ordinary(text).len() as u64,
            None => (text.len() as u64).div_ceil(4),
        }
    }

    /// A conversation's tokens as OpenAI counts them: each message's text plus 3, and 3
    /// priming the reply.
    fn messages<'a>(&self, texts: impl Iterator<Item = &'a str>) -> u64 {
        texts.map(|t| self.count(t) + 3).sum::<u64>() + 3
    }
}

/// A judge's model, or an `extract_llm` step's, as the plan counts it: its tally, the
/// tokens of its prompt before the item's, the judge it works for, and its model.
struct Asker {
    tally: Tally,
    prompt: u64,
    judge: String,
    run: ModelRun,
}

/// What one model's plan adds up while the items stream by.
struct Tally {
    plan: ModelPlan,
    counter: Counter,
    completion: u64,
}

/// Plans a run of `items` against `models`, judged by `judge_models` (judge → model).
pub fn plan(
    items: &mut dyn Iterator<Item = Item>,
    models: &[ModelRun],
    judge_models: &BTreeMap<String, ModelRun>,
    scoring: &Scoring,
    programs: &BTreeMap<String, ProgramSpec>,
    run: &RunOptions,
    options: &PlanOptions,
) -> Plan {
    let completion_of = |m: &ModelRun| {
        m.params
            .get("max_tokens")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(options.completion_tokens)
    };
    let mut targets: Vec<Tally> = models
        .iter()
        .map(|m| Tally {
            plan: ModelPlan {
                name: m.name.clone(),
                model: m.provider.identity(),
                ..ModelPlan::default()
            },
            counter: Counter::for_model(m),
            completion: completion_of(m),
        })
        .collect();
    // Judges that ask a model, with their rubric's size; then `extract_llm` steps, a call to
    // the step's model before each judgement of its judge, with its prompt (Assay's, or the
    // step's own), the item's question and the response.
    let asker = |name: String, judge: &str, prompt: usize, run: ModelRun| Asker {
        tally: Tally {
            plan: ModelPlan {
                name,
                model: run.provider.identity(),
                ..ModelPlan::default()
            },
            counter: Counter::for_model(&run),
            completion: completion_of(&run).min(64),
        },
        prompt: (prompt as u64).div_ceil(4),
        judge: judge.to_string(),
        run,
    };
    let mut askers: Vec<Asker> = scoring
        .judges
        .iter()
        .filter_map(|j| {
            let rubric = match &j.kind {
                JudgeKind::Llm { rubric, .. } | JudgeKind::Score { rubric, .. } => rubric.len(),
                JudgeKind::Guard { categories, .. } => {
                    categories
                        .iter()
                        .map(|(c, t)| c.len() + t.len())
                        .sum::<usize>()
                        + 1500
                }
                _ => return None,
            };
            let m = judge_models.get(&j.name)?;
            Some(asker(
                format!("{} ({})", j.name, m.name),
                &j.name,
                rubric,
                m.clone(),
            ))
        })
        .collect();
    askers.extend(scoring.judges.iter().filter_map(|j| {
        let (model, prompt) = j.preprocess.iter().find_map(|step| match step {
            Preprocess::ExtractLlm { model, prompt } => Some((model, prompt)),
            _ => None,
        })?;
        let run = crate::judging::model_for(model, scoring.models.get(model)?).ok()?;
        let prompt = prompt.as_deref().unwrap_or(assay_judge::EXTRACT_PROMPT);
        Some(asker(
            format!("{} extract_llm ({model})", j.name),
            &j.name,
            prompt.len(),
            run,
        ))
    }));

    // Attackers and in-loop judges, by program: their models are the program's own.
    let mut helpers: BTreeMap<String, ModelPlan> = BTreeMap::new();
    let applies = assay_judge::Judges::new(&scoring.judges);
    for item in items {
        let user: Vec<&str> = item
            .messages
            .iter()
            .filter(|m| m.role != Role::Assistant)
            .map(|m| m.content.as_str())
            .collect();
        let program = item.program.as_ref().and_then(|p| programs.get(p));
        for t in &mut targets {
            let p = &mut t.plan;
            p.items += 1;
            *p.by_hazard
                .entry(
                    item.labels
                        .hazard
                        .clone()
                        .unwrap_or_else(|| "(none)".into()),
                )
                .or_default() += 1;
            if item.response.is_some() {
                continue;
            }
            let base = t.counter.messages(user.iter().copied());
            match program {
                Some(program) => {
                    let w = program.worst_case;
                    let calls = w.target.max(1);
                    p.calls += calls;
                    // A turn at depth d carries d − 1 earlier exchanges in a conversation, none
                    // when the target sees only the latest prompt: on average half the depth.
                    let depth = u64::from(program.max_turns.unwrap_or_else(|| {
                        program.attacker.as_ref().map_or(1, |a| a.max_turns)
                            + program.turns.len() as u32
                    }));
                    let single = program
                        .attacker
                        .as_ref()
                        .is_some_and(|a| a.context == assay_ir::Context::Single);
                    let exchange = base + t.completion;
                    let history = if single {
                        0
                    } else {
                        depth.saturating_sub(1) * exchange / 2
                    };
                    p.prompt_tokens += calls * (base + history);
                    p.completion_tokens += calls * t.completion;
                    let helper = helpers
                        .entry(format!(
                            "attackers and in-loop judges of `{}`",
                            program.name
                        ))
                        .or_default();
                    helper.items += 1;
                    helper.calls += w.attacker + w.judges;
                    helper.prompt_tokens +=
                        (w.attacker + w.judges) * (base + history + options.completion_tokens);
                    helper.completion_tokens += (w.attacker + w.judges) * options.completion_tokens;
                }
                None => {
                    let turns = user.len().max(1) as u64;
                    p.calls += turns;
                    p.prompt_tokens += (0..turns).map(|k| base + k * t.completion).sum::<u64>();
                    p.completion_tokens += turns * t.completion;
                }
            }
        }
        // Each answer, and each target turn of a conversation, judged once per model, by the
        // judges whose `when` holds for the item.
        let judged_turns = program.map_or(1, |p| 1 + p.worst_case.target);
        let record = record_of(&item);
        for a in &mut askers {
            let applies_here = applies
                .spec(&a.judge)
                .is_none_or(|spec| applies.applies(spec, &record));
            if !applies_here {
                continue;
            }
            let t = &mut a.tally;
            let per_call = a.prompt + t.counter.messages(user.iter().copied()) + t.completion;
            let calls = judged_turns * models.len() as u64;
            t.plan.items += models.len() as u64;
            t.plan.calls += calls;
            t.plan.prompt_tokens += calls * (per_call + options.completion_tokens);
            t.plan.completion_tokens += calls * t.completion;
        }
    }

    let finish = |t: Tally, m: &ModelRun| -> ModelPlan {
        let mut p = t.plan;
        p.tokenizer = t.counter.name;
        let price = m.price.or_else(|| options.prices.get(&m.name).copied());
        p.cost = price.map(|(pp, cc)| {
            (p.prompt_tokens as f64 * pp + p.completion_tokens as f64 * cc) / 1_000_000.0
        });
        let concurrency = m.limits.concurrency.unwrap_or(run.concurrency).max(1) as f64;
        let by_concurrency = concurrency / options.latency.as_secs_f64();
        let rpm = m.limits.requests_per_minute.or(run.requests_per_minute);
        let (per_second, bound) = match rpm {
            Some(rpm) if f64::from(rpm) / 60.0 < by_concurrency => {
                (f64::from(rpm) / 60.0, format!("rate limit {rpm}/min"))
            }
            _ => (
                by_concurrency,
                format!(
                    "concurrency {concurrency} at {:.1} s a call",
                    options.latency.as_secs_f64()
                ),
            ),
        };
        p.wall_seconds = p.calls as f64 / per_second;
        p.bound = bound;
        p
    };
    let mut out = Plan {
        models: targets
            .into_iter()
            .zip(models)
            .map(|(t, m)| finish(t, m))
            .collect(),
        judges: Vec::new(),
        ..Plan::default()
    };
    out.judges = askers
        .into_iter()
        .map(|a| finish(a.tally, &a.run))
        .collect();
    // Attackers and in-loop judges: their calls and time, at no price (their models are the
    // program's, priced with `--prices` by name when given).
    for (name, mut h) in helpers {
        h.name = name;
        h.model = "the program's models".into();
        h.tokenizer = "estimate: bytes / 4".into();
        let per_second = run.concurrency.max(1) as f64 / options.latency.as_secs_f64();
        h.wall_seconds = h.calls as f64 / per_second;
        h.bound = format!(
            "concurrency {} at {:.1} s a call",
            run.concurrency,
            options.latency.as_secs_f64()
        );
        out.programs.push(h);
    }
    let all = out.models.iter().chain(&out.judges).chain(&out.programs);
    out.total = Totals {
        items: out.models.first().map_or(0, |m| m.items),
        calls: all.clone().map(|m| m.calls).sum(),
        prompt_tokens: all.clone().map(|m| m.prompt_tokens).sum(),
        completion_tokens: all.clone().map(|m| m.completion_tokens).sum(),
        cost: all.clone().filter_map(|m| m.cost).sum(),
        priced_all: all.clone().all(|m| m.cost.is_some()),
        wall_seconds: out
            .models
            .iter()
            .map(|m| m.wall_seconds)
            .fold(0.0, f64::max)
            + out
                .judges
                .iter()
                .map(|m| m.wall_seconds)
                .fold(0.0, f64::max),
    };
    out.assumptions = vec![
        "prompt tokens: tiktoken for OpenAI-family models, else bytes / 4; 4 more per message"
            .into(),
        format!(
            "completion tokens: a model's max_tokens, else {} a call ({} for judges at most)",
            options.completion_tokens, 64
        ),
        "conversations: the program's worst case (every round, branch and backtrack)".into(),
        format!(
            "wall time: calls over the rate limit, or over concurrency at {:.1} s a call",
            options.latency.as_secs_f64()
        ),
    ];
    out
}

/// The item as judges' `when` reads it.
fn record_of(item: &Item) -> assay_ir::ResultRecord {
    assay_ir::ResultRecord {
        messages: Vec::new(),
        ..crate::engine::new_record(item, "")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::{Endpoint, Provider};

    #[test]
    fn openai_models_are_counted_with_their_tokenizer() {
        let m = |spec: &str| {
            ModelRun::new(
                spec.into(),
                Provider::parse(spec, &Endpoint::default()).unwrap(),
                Default::default(),
                None,
            )
        };
        let c = Counter::for_model(&m("openai:gpt-4o-mini"));
        assert!(c.name.starts_with("tiktoken"), "{}", c.name);
        // "Hello, world!" is four tokens in o200k_base and cl100k_base.
        assert_eq!(c.count("Hello, world!"), 4);
        let c = Counter::for_model(&m("ollama:llama3.1"));
        assert_eq!(c.name, "estimate: bytes / 4");
        assert_eq!(c.count("Hello, world!"), 4);
        assert_eq!(c.count("12345678"), 2);
    }
}
