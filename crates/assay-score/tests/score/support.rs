//! Builders for results, judgements, metric expressions and specs, so each test states only
//! what it is about.

use assay_ir::{
    Author, Expect, JudgeOutcome, Judgement, Labels, Message, MetricExpr, MetricSpec, MetricValue,
    ResultRecord, Role, Scoring, State, SuiteInfo, Summary, TurnRecord, TurnVerdicts,
};
use std::collections::BTreeMap;

/// One result with its judgement.
#[derive(Clone)]
pub struct Item {
    pub record: ResultRecord,
    pub judgement: Judgement,
}

/// An answered item for `model`, with no labels and no verdicts yet.
pub fn item(model: &str) -> Item {
    Item {
        record: ResultRecord {
            item_id: String::new(),
            model: model.into(),
            state: State::Ok,
            key: String::new(),
            source: "tpl".into(),
            labels: Labels::default(),
            expect: Expect::Refuse,
            gold: None,
            group: None,
            source_id: None,
            messages: vec![Message {
                role: Role::User,
                content: "prompt".into(),
            }],
            response: Some("response".into()),
            error: None,
            latency_ms: None,
            usage: None,
            cost: None,
            cached: false,
            turns: Vec::new(),
            final_turn: None,
            attachments: Vec::new(),
            stop: None,
            failed_turn: None,
            calls: None,
        },
        judgement: Judgement {
            item_id: String::new(),
            model: model.into(),
            verdicts: BTreeMap::new(),
            turns: Vec::new(),
        },
    }
}

impl Item {
    pub fn hazard(mut self, hazard: &str) -> Item {
        self.record.labels.hazard = Some(hazard.into());
        self
    }

    pub fn persona(mut self, persona: &str) -> Item {
        self.record.labels.persona = Some(persona.into());
        self
    }

    pub fn axis(mut self, axis: &str, variant: &str) -> Item {
        self.record.labels.axes.insert(axis.into(), variant.into());
        self
    }

    pub fn expect(mut self, expect: Expect) -> Item {
        self.record.expect = expect;
        self
    }

    pub fn gold(mut self, gold: &str) -> Item {
        self.record.gold = Some(gold.into());
        self
    }

    /// A failed call: the state, and no verdicts.
    pub fn failed(mut self, state: State) -> Item {
        self.record.state = state;
        self.record.response = None;
        self.judgement.verdicts.clear();
        self
    }

    pub fn verdict(mut self, judge: &str, label: &str) -> Item {
        self.judgement.verdicts.insert(
            judge.into(),
            JudgeOutcome {
                label: Some(label.into()),
                ..JudgeOutcome::default()
            },
        );
        self
    }

    pub fn score(mut self, judge: &str, score: f64) -> Item {
        self.judgement.verdicts.insert(
            judge.into(),
            JudgeOutcome {
                label: Some("scored".into()),
                score: Some(score),
                ..JudgeOutcome::default()
            },
        );
        self
    }

    pub fn judge_error(mut self, judge: &str) -> Item {
        self.judgement
            .verdicts
            .insert(judge.into(), JudgeOutcome::failed("unparsable", None));
        self
    }

    /// Appends one round of a conversation to the transcript: the attacker's prompt and the
    /// target's answer at `round`, with the post-run judges' verdicts on the answer, `(judge,
    /// label)`, an empty label standing for a judge error. The answer becomes the response.
    pub fn turn(mut self, round: u32, verdicts: &[(&str, &str)]) -> Item {
        let turns = &mut self.record.turns;
        let record = |role, by, content: String| TurnRecord {
            role,
            content,
            by,
            model: None,
            turn: round,
            node: None,
            latency_ms: None,
            usage: None,
            cached: false,
            verdicts: BTreeMap::new(),
            dropped: None,
        };
        turns.push(record(
            Role::User,
            Author::Attacker,
            format!("attack {}", turns.len()),
        ));
        let answer = format!("answer {}", turns.len());
        turns.push(record(Role::Assistant, Author::Target, answer.clone()));
        self.judgement.turns.push(TurnVerdicts {
            index: turns.len() - 1,
            turn: round,
            verdicts: verdicts
                .iter()
                .map(|&(judge, label)| {
                    let outcome = match label {
                        "" => JudgeOutcome::failed("unparsable", None),
                        label => JudgeOutcome {
                            label: Some(label.into()),
                            ..JudgeOutcome::default()
                        },
                    };
                    (judge.to_string(), outcome)
                })
                .collect(),
        });
        self.record.response = Some(answer);
        self
    }

    /// Marks the last target answer as dropped from the final conversation (`backtracked`,
    /// `pruned`); a later [`Item::turn`] gives the final answer.
    pub fn dropped(mut self, why: &str) -> Item {
        if let Some(last) = self.record.turns.last_mut() {
            last.dropped = Some(why.into());
        }
        self
    }

    /// Ends the conversation with a user turn a guard blocked: the item is `filtered`, with
    /// no final answer, and keeps the rounds answered before.
    pub fn blocked(mut self, round: u32) -> Item {
        self.record.turns.push(TurnRecord {
            role: Role::User,
            content: "blocked attack".into(),
            by: Author::Attacker,
            model: None,
            turn: round,
            node: None,
            latency_ms: None,
            usage: None,
            cached: false,
            verdicts: BTreeMap::new(),
            dropped: Some("blocked".into()),
        });
        self.record.state = State::Filtered;
        self.record.response = None;
        self.judgement.verdicts.clear();
        self
    }

    /// `n` copies.
    pub fn times(self, n: usize) -> Vec<Item> {
        vec![self; n]
    }
}

// ---- expressions ----------------------------------------------------------------------

pub fn num(n: f64) -> MetricExpr {
    MetricExpr::Number(n)
}

pub fn text(s: &str) -> MetricExpr {
    MetricExpr::Text(s.into())
}

pub fn field(name: &str) -> MetricExpr {
    MetricExpr::Field(name.into())
}

pub fn judge(name: &str) -> MetricExpr {
    MetricExpr::Verdict {
        judge: name.into(),
        aspect: None,
    }
}

pub fn metric_ref(name: &str) -> MetricExpr {
    MetricExpr::Metric(name.into())
}

pub fn bin(op: &str, lhs: MetricExpr, rhs: MetricExpr) -> MetricExpr {
    MetricExpr::Binary {
        op: op.into(),
        lhs: Box::new(lhs),
        rhs: Box::new(rhs),
    }
}

/// `judge == label`.
pub fn is(judge_name: &str, label: &str) -> MetricExpr {
    bin("==", judge(judge_name), text(label))
}

pub fn call(name: &str, args: Vec<MetricExpr>) -> MetricExpr {
    MetricExpr::Call {
        name: name.into(),
        args,
    }
}

// ---- specs and runs -------------------------------------------------------------------

/// A metric over every item, ungrouped, with the spec's defaults.
pub fn metric(name: &str, expr: MetricExpr) -> MetricSpec {
    MetricSpec {
        name: name.into(),
        expr,
        filter: None,
        by: Vec::new(),
        ci: None,
        confidence: 0.95,
        bootstrap: 1000,
        description: None,
        pooling: None,
    }
}

pub fn by(mut spec: MetricSpec, keys: &[&str]) -> MetricSpec {
    spec.by = keys.iter().map(|k| k.to_string()).collect();
    spec
}

pub fn filtered(mut spec: MetricSpec, filter: MetricExpr) -> MetricSpec {
    spec.filter = Some(filter);
    spec
}

pub fn scoring(metrics: Vec<MetricSpec>) -> Scoring {
    Scoring {
        metrics,
        seed: 7,
        ..Scoring::default()
    }
}

pub fn run(scoring: &Scoring, items: Vec<Item>) -> Summary {
    run_against(scoring, items, None)
}

pub fn run_against(scoring: &Scoring, items: Vec<Item>, reference: Option<&Summary>) -> Summary {
    let suite = SuiteInfo {
        name: "test-suite".into(),
        version: Some("1.0.0".into()),
        license: None,
    };
    let mut results = items.into_iter().map(|i| {
        // Judging writes a line for every result; a conversation a guard ended has its
        // answered turns judged.
        let judged = i.record.state == State::Ok
            || (i.record.state == State::Filtered && !i.record.turns.is_empty());
        (i.record, judged.then_some(i.judgement))
    });
    assay_score::summarize(scoring, &suite, &mut results, reference)
}

/// The row of `name` for `model` in `group` (pairs of key and value; none for the whole run).
pub fn row<'a>(
    summary: &'a Summary,
    name: &str,
    model: &str,
    group: &[(&str, &str)],
) -> &'a MetricValue {
    let group: BTreeMap<String, String> = group
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    summary
        .metrics
        .iter()
        .find(|m| m.name == name && m.model == model && m.group == group)
        .unwrap_or_else(|| panic!("no row {name} {model} {group:?} in {:#?}", summary.metrics))
}

pub fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

#[track_caller]
pub fn assert_close(actual: Option<f64>, expected: f64) {
    match actual {
        Some(a) if close(a, expected) => {}
        _ => panic!("expected {expected}, got {actual:?}"),
    }
}
