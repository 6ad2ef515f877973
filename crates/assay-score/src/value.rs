//! Item-level values: what a metric expression says about one result and its judgement, before
//! any aggregate turns many of them into a number. [`Value::Missing`] stands for "cannot say":
//! a failed call, a failed judge, or a field the item does not have. It propagates through
//! every operator, so an item the metric cannot read is excluded rather than miscounted.
//!
//! A conversation's target turns are read through the turn functions (`any_turn`,
//! `all_turns`, `share_turns`, `first_turn`), which evaluate their condition at each target
//! turn with the judges' verdicts on that turn ([`TurnView`]), and through `by turn`, which
//! makes each target turn a row of its own. An item without a transcript is one turn: its
//! final response, at round 1, so the same metric reads single- and multi-turn items alike.
//!
//! The arithmetic here (`arithmetic`, `order`, `math`) is shared with the aggregate level,
//! which applies the same operators to group numbers.

use assay_ir::{Author, JudgeOutcome, Judgement, ResultRecord, Role, State};
use std::borrow::Cow;
use std::collections::BTreeMap;

/// What grouping and comparisons see for a label the item does not carry.
pub(crate) const NONE: &str = "(not set)";

/// One item's value of an expression. Text borrows from the record, the judgement or the
/// expression, so evaluating a metric over millions of items allocates little.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value<'a> {
    Bool(bool),
    Num(f64),
    Text(Cow<'a, str>),
    List(Vec<Value<'a>>),
    Missing,
}

impl Value<'_> {
    /// A number, with `true` / `false` read as 1 / 0 (so `mean(guard == unsafe)` is a rate).
    pub(crate) fn number(&self) -> Option<f64> {
        match self {
            Value::Num(n) => Some(*n),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            _ => None,
        }
    }

    pub(crate) fn boolean(&self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(*b),
            _ => None,
        }
    }

    /// The value as a group key or a kappa label; `None` for what has no single text.
    pub(crate) fn text(&self) -> Option<Cow<'_, str>> {
        match self {
            Value::Text(s) => Some(Cow::Borrowed(s.as_ref())),
            Value::Bool(b) => Some(Cow::Borrowed(if *b { "true" } else { "false" })),
            Value::Num(n) => Some(Cow::Owned(format!("{n}"))),
            Value::List(_) | Value::Missing => None,
        }
    }
}

/// The functions that read a condition at each target turn of an item.
pub(crate) const TURN_FUNCTIONS: &[&str] = &["any_turn", "all_turns", "share_turns", "first_turn"];

/// What `dropped` says of a target answer a guard kept from the user: it is not judged and
/// no turn function reads it.
const BLOCKED: &str = "blocked";

/// One target turn as expressions read it: its round, and the post-run judges' verdicts on
/// it (`None` when the item has none, e.g. it was not judged).
#[derive(Clone, Copy, Debug)]
pub(crate) struct TurnView<'a> {
    pub round: u32,
    pub verdicts: Option<&'a BTreeMap<String, JudgeOutcome>>,
}

/// One result with its judgement, as expressions read it.
pub(crate) struct ItemContext<'a> {
    pub record: &'a ResultRecord,
    pub judgement: Option<&'a Judgement>,
    /// Hazard code → severity (`Scoring::severity`); absent hazards weigh 1.
    pub severity: &'a BTreeMap<String, f64>,
    /// The target turn being read (a row of a metric `by turn`, or a turn function's
    /// condition): judges are read from its verdicts and `turn` is its round. `None` reads
    /// the final response.
    pub turn: Option<TurnView<'a>>,
}

impl<'a> ItemContext<'a> {
    /// The expression's value for this item. Fields are read whatever the item's state, so
    /// a failed item still falls in its hazard's group; judges are read only from answered
    /// items.
    pub(crate) fn eval(&self, expr: &'a assay_ir::MetricExpr) -> Value<'a> {
        use assay_ir::MetricExpr as E;
        match expr {
            E::Number(n) => Value::Num(*n),
            E::Bool(b) => Value::Bool(*b),
            E::Text(s) => Value::Text(Cow::Borrowed(s)),
            E::List(items) => Value::List(items.iter().map(|i| self.eval(i)).collect()),
            E::Field(name) => self.field(name),
            E::Verdict { judge, aspect } => match self.outcome(judge) {
                Some(outcome) => {
                    let label = match aspect {
                        Some(aspect) => outcome.aspects.get(aspect),
                        None => outcome.label.as_ref(),
                    };
                    label.map_or(Value::Missing, |l| Value::Text(Cow::Borrowed(l)))
                }
                None => Value::Missing,
            },
            E::Score { judge } => self
                .outcome(judge)
                .and_then(|o| o.score)
                .map_or(Value::Missing, Value::Num),
            E::Categories { judge } => match self.outcome(judge) {
                Some(o) => Value::List(
                    o.categories
                        .iter()
                        .map(|c| Value::Text(Cow::Borrowed(c)))
                        .collect(),
                ),
                None => Value::Missing,
            },
            // Another metric is a group number: the plan inlines it above the item level, so
            // reaching one here means it was used inside an aggregate's argument.
            E::Metric(_) => Value::Missing,
            E::Unary { op, operand } => unary(op, self.eval(operand)),
            E::Binary { op, lhs, rhs } => binary(op, self.eval(lhs), self.eval(rhs)),
            E::Call { name, args } if TURN_FUNCTIONS.contains(&name.as_str()) => {
                match args.as_slice() {
                    [condition] => self.over_turns(name, condition),
                    _ => Value::Missing,
                }
            }
            E::Call { name, args } => {
                let mut numbers = Vec::with_capacity(args.len());
                for arg in args {
                    match self.eval(arg).number() {
                        Some(n) => numbers.push(n),
                        None => return Value::Missing,
                    }
                }
                math(name, &numbers).map_or(Value::Missing, Value::Num)
            }
        }
    }

    /// Whether `expr` reads a judge whose `when` left this item out ("not applicable").
    pub(crate) fn not_applicable(&self, expr: &assay_ir::MetricExpr) -> bool {
        use assay_ir::MetricExpr as E;
        match expr {
            E::Verdict { judge, .. } | E::Score { judge } | E::Categories { judge } => self
                .verdicts()
                .and_then(|v| v.get(judge))
                .is_some_and(|o| o.not_applicable),
            E::List(items) => items.iter().any(|i| self.not_applicable(i)),
            E::Unary { operand, .. } => self.not_applicable(operand),
            E::Binary { lhs, rhs, .. } => self.not_applicable(lhs) || self.not_applicable(rhs),
            E::Call { args, .. } => args.iter().any(|a| self.not_applicable(a)),
            _ => false,
        }
    }

    /// Whether metrics read the item: an answered one, or a conversation a guard or a
    /// provider's filter ended, whose answered turns were judged (its final answer has no
    /// verdict, so only the turn functions and fields read it).
    pub(crate) fn readable(&self) -> bool {
        match self.record.state {
            State::Ok => true,
            State::Filtered => !self.record.turns.is_empty(),
            _ => false,
        }
    }

    /// A judge's outcome on an answered item, or `None` when there is no verdict to read.
    fn outcome(&self, judge: &str) -> Option<&'a JudgeOutcome> {
        // A conversation a guard or a provider's filter ended still has the turns the
        // target answered before it: read at a turn, they have verdicts.
        let readable = match self.record.state {
            State::Ok => true,
            State::Filtered => self.turn.is_some() && self.readable(),
            _ => false,
        };
        if !readable {
            return None;
        }
        self.verdicts()?.get(judge).filter(|o| !o.is_error())
    }

    /// The verdicts being read: the turn's, or the final response's.
    fn verdicts(&self) -> Option<&'a BTreeMap<String, JudgeOutcome>> {
        match self.turn {
            Some(turn) => turn.verdicts,
            None => self.judgement.map(|j| &j.verdicts),
        }
    }

    /// The same item read at one target turn.
    pub(crate) fn at(&self, turn: TurnView<'a>) -> ItemContext<'a> {
        ItemContext {
            record: self.record,
            judgement: self.judgement,
            severity: self.severity,
            turn: Some(turn),
        }
    }

    /// The item's target turns, in transcript order: every target answer in `turns` but those
    /// a guard blocked, including answers later backtracked or pruned (the target gave them),
    /// each with its verdicts from `Judgement::turns`. An item without target turns is one
    /// turn, its final response at round 1. Read at a turn, the item is that turn alone.
    pub(crate) fn turns(&self) -> Vec<TurnView<'a>> {
        if let Some(turn) = self.turn {
            return vec![turn];
        }
        let judged = self.judgement.map_or(&[][..], |j| j.turns.as_slice());
        let mut next = 0;
        let mut out = Vec::new();
        for (index, turn) in self.record.turns.iter().enumerate() {
            if turn.by != Author::Target || turn.dropped.as_deref() == Some(BLOCKED) {
                continue;
            }
            // Judging writes the turns in transcript order: one pass pairs them.
            while judged.get(next).is_some_and(|j| j.index < index) {
                next += 1;
            }
            let verdicts = judged
                .get(next)
                .filter(|j| j.index == index)
                .map(|j| &j.verdicts);
            out.push(TurnView {
                round: turn.turn,
                verdicts,
            });
        }
        // A conversation ended by a guard or a provider's filter before the target answered
        // has no target turn: no turn of it holds anything (an attack that did not succeed).
        if out.is_empty() && self.record.state == State::Filtered && !self.record.turns.is_empty() {
            return out;
        }
        if out.is_empty() {
            out.push(TurnView {
                round: 1,
                verdicts: self.judgement.map(|j| &j.verdicts),
            });
        }
        out
    }

    /// A turn function's value: its condition read at each target turn. A turn whose
    /// condition cannot be read (its judge failed) is never taken as holding or not holding:
    /// `any_turn` is true if the condition holds at some turn, else missing if some turn is
    /// missing, else false; `all_turns` is false if it fails at some turn, else missing if
    /// some turn is missing, else true; `share_turns`, the share of turns where it holds, is
    /// missing if any turn is; `first_turn` is the earliest round where it holds, missing if
    /// it holds at none or a turn of an earlier round is missing.
    fn over_turns(&self, function: &str, condition: &'a assay_ir::MetricExpr) -> Value<'a> {
        let read: Vec<(u32, Option<bool>)> = self
            .turns()
            .into_iter()
            .map(|turn| (turn.round, self.at(turn).eval(condition).boolean()))
            .collect();
        let holds = |b: bool| read.iter().any(|(_, v)| *v == Some(b));
        let missing = read.iter().any(|(_, v)| v.is_none());
        match function {
            "any_turn" if holds(true) => Value::Bool(true),
            "all_turns" if holds(false) => Value::Bool(false),
            "any_turn" | "all_turns" if missing => Value::Missing,
            "any_turn" => Value::Bool(false),
            "all_turns" => Value::Bool(true),
            "share_turns" if missing || read.is_empty() => Value::Missing,
            "share_turns" => {
                let held = read.iter().filter(|(_, v)| *v == Some(true)).count();
                Value::Num(held as f64 / read.len() as f64)
            }
            "first_turn" => {
                let Some(first) = read
                    .iter()
                    .filter(|(_, v)| *v == Some(true))
                    .map(|(round, _)| *round)
                    .min()
                else {
                    return Value::Missing;
                };
                if read.iter().any(|(round, v)| v.is_none() && *round < first) {
                    Value::Missing
                } else {
                    Value::Num(f64::from(first))
                }
            }
            _ => Value::Missing,
        }
    }

    /// The target turn of the final response: the one `final_turn` names; for a transcript
    /// without it, the last target answer that was not dropped and is the response (the last
    /// one not dropped, failing that).
    fn final_turn(&self) -> Option<&'a assay_ir::TurnRecord> {
        let record = self.record;
        if let Some(turn) = record.final_turn.and_then(|i| record.turns.get(i)) {
            return Some(turn);
        }
        let kept = || {
            record
                .turns
                .iter()
                .rev()
                .filter(|t| t.by == Author::Target && t.dropped.is_none())
        };
        kept()
            .find(|t| record.response.as_deref() == Some(t.content.as_str()))
            .or_else(|| kept().next())
    }

    fn field(&self, name: &str) -> Value<'a> {
        let record = self.record;
        let labels = &record.labels;
        let text = |s: &'a str| Value::Text(Cow::Borrowed(s));
        // An item without a hazard or persona is its own group, `(not set)`: not an error.
        let label = |s: Option<&'a String>| text(s.map_or(NONE, String::as_str));
        match name {
            "hazard" => label(labels.hazard.as_ref()),
            "sub_hazard" => label(labels.sub_hazard.as_ref()),
            "persona" => label(labels.persona.as_ref()),
            "locale" => label(labels.locale.as_ref()),
            "expect" => text(record.expect.as_str()),
            "template" | "dataset" => text(&record.source),
            "group" => label(record.group.as_ref()),
            "model" => text(&record.model),
            // Without a gold label there is nothing to compare a prediction with.
            "gold" => record.gold.as_deref().map_or(Value::Missing, text),
            "severity" => Value::Num(
                labels
                    .hazard
                    .as_ref()
                    .and_then(|h| self.severity.get(h))
                    .copied()
                    .unwrap_or(1.0),
            ),
            // A conversation's target turns in its final conversation, which are the final
            // answer's round; otherwise the user turns sent.
            "turns" => match self.final_turn() {
                Some(last) => Value::Num(f64::from(last.turn)),
                None => Value::Num(
                    record
                        .messages
                        .iter()
                        .filter(|m| m.role == Role::User)
                        .count() as f64,
                ),
            },
            // The round being read: the turn's, or the final answer's (1 without a transcript).
            "turn" => Value::Num(f64::from(match (self.turn, self.final_turn()) {
                (Some(turn), _) => turn.round,
                (None, Some(last)) => last.turn,
                (None, None) => 1,
            })),
            // The target calls an item made: every target turn of its transcript (dropped ones
            // too), or its one call when it has a response.
            "queries" if !record.turns.is_empty() => Value::Num(
                record
                    .turns
                    .iter()
                    .filter(|t| t.by == Author::Target)
                    .count() as f64,
            ),
            "queries" => match record.response {
                Some(_) => Value::Num(1.0),
                None => Value::Missing,
            },
            axis => label(labels.axes.get(axis)),
        }
    }
}

fn unary<'a>(op: &str, v: Value<'a>) -> Value<'a> {
    match (op, v) {
        ("not" | "!", Value::Bool(b)) => Value::Bool(!b),
        ("-", v) => v.number().map_or(Value::Missing, |n| Value::Num(-n)),
        _ => Value::Missing,
    }
}

fn binary<'a>(op: &str, l: Value<'a>, r: Value<'a>) -> Value<'a> {
    if l == Value::Missing || r == Value::Missing {
        return Value::Missing;
    }
    let truth = |b: Option<bool>| b.map_or(Value::Missing, Value::Bool);
    match op {
        "and" | "or" => match (l.boolean(), r.boolean()) {
            (Some(a), Some(b)) => Value::Bool(if op == "and" { a && b } else { a || b }),
            _ => Value::Missing,
        },
        "==" => Value::Bool(equal(&l, &r)),
        "!=" => Value::Bool(!equal(&l, &r)),
        "in" => Value::Bool(member(&l, &r)),
        "<" | "<=" | ">" | ">=" => truth(compare(op, &l, &r)),
        _ => match (l.number(), r.number()) {
            (Some(a), Some(b)) => arithmetic(op, a, b).map_or(Value::Missing, Value::Num),
            _ => Value::Missing,
        },
    }
}

/// `==` on item values. A list against a single value asks whether any element equals it:
/// `guard.categories == S1` holds when the guard named S1 among others.
fn equal(l: &Value<'_>, r: &Value<'_>) -> bool {
    match (l, r) {
        (Value::List(a), Value::List(b)) => {
            a.len() == b.len() && a.iter().zip(b).all(|(x, y)| equal(x, y))
        }
        (Value::List(items), single) | (single, Value::List(items)) => {
            items.iter().any(|i| equal(i, single))
        }
        (Value::Text(a), Value::Text(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Num(a), Value::Num(b)) => a == b,
        // A numeric label (a score judge's `3`) against a number.
        (Value::Text(t), Value::Num(n)) | (Value::Num(n), Value::Text(t)) => {
            t.trim().parse::<f64>().is_ok_and(|x| x == *n)
        }
        _ => false,
    }
}

/// `in`: the value is one of the list's; a list on the left (categories) asks whether any of
/// its elements is.
fn member(l: &Value<'_>, r: &Value<'_>) -> bool {
    match (l, r) {
        (Value::List(items), _) => items.iter().any(|i| member(i, r)),
        (_, Value::List(options)) => options.iter().any(|o| equal(l, o)),
        _ => equal(l, r),
    }
}

/// Ordering of numbers, or of texts (alphabetical); anything else cannot be ordered.
fn compare(op: &str, l: &Value<'_>, r: &Value<'_>) -> Option<bool> {
    let ordering = match (l, r) {
        (Value::Text(a), Value::Text(b)) => a.cmp(b),
        _ => l.number()?.partial_cmp(&r.number()?)?,
    };
    order(op, ordering)
}

/// Whether `ordering` (of left against right) satisfies `op`.
pub(crate) fn order(op: &str, ordering: std::cmp::Ordering) -> Option<bool> {
    use std::cmp::Ordering::*;
    Some(match op {
        "<" => ordering == Less,
        "<=" => ordering != Greater,
        ">" => ordering == Greater,
        ">=" => ordering != Less,
        "==" => ordering == Equal,
        "!=" => ordering != Equal,
        _ => return None,
    })
}

/// `+ - * / ^` on numbers; division by zero gives an infinity or NaN, which makes the value
/// undefined where it surfaces.
pub(crate) fn arithmetic(op: &str, a: f64, b: f64) -> Option<f64> {
    Some(match op {
        "+" => a + b,
        "-" => a - b,
        "*" => a * b,
        "/" => a / b,
        "^" => a.powf(b),
        _ => return None,
    })
}

/// The numeric functions, at item or group level: `harmonic_mean`, `min`, `max`, `clamp`,
/// `exp`, `log` (natural), `abs`, `sqrt`. `None` for an unknown name or a wrong arity.
pub(crate) fn math(name: &str, args: &[f64]) -> Option<f64> {
    match (name, args) {
        ("exp", [x]) => Some(x.exp()),
        ("log", [x]) => Some(x.ln()),
        ("abs", [x]) => Some(x.abs()),
        ("sqrt", [x]) => Some(x.sqrt()),
        ("clamp", [x, lo, hi]) => Some(x.max(*lo).min(*hi)),
        ("min", [_, ..]) => args.iter().copied().reduce(f64::min),
        ("max", [_, ..]) => args.iter().copied().reduce(f64::max),
        // A zero anywhere makes the harmonic mean zero (F1 of a zero precision), rather than
        // dividing by zero.
        ("harmonic_mean", [_, ..]) => Some(if args.contains(&0.0) {
            0.0
        } else {
            args.len() as f64 / args.iter().map(|x| 1.0 / x).sum::<f64>()
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(s: &str) -> Value<'_> {
        Value::Text(Cow::Borrowed(s))
    }

    #[test]
    fn operators() {
        assert_eq!(binary("==", text("a"), text("a")), Value::Bool(true));
        assert_eq!(
            binary("==", Value::List(vec![text("S1"), text("S2")]), text("S2")),
            Value::Bool(true)
        );
        assert_eq!(
            binary("in", text("b"), Value::List(vec![text("a"), text("b")])),
            Value::Bool(true)
        );
        assert_eq!(
            binary(
                "in",
                Value::List(vec![text("x")]),
                Value::List(vec![text("a")])
            ),
            Value::Bool(false)
        );
        assert_eq!(
            binary("and", Value::Bool(false), Value::Missing),
            Value::Missing
        );
        assert_eq!(
            binary("+", Value::Bool(true), Value::Num(2.0)),
            Value::Num(3.0)
        );
        assert_eq!(
            binary("<", text("a"), Value::Num(1.0)),
            Value::Missing,
            "a text cannot be ordered against a number"
        );
        assert_eq!(unary("not", Value::Bool(true)), Value::Bool(false));
        assert_eq!(unary("-", Value::Num(2.0)), Value::Num(-2.0));
    }

    #[test]
    fn functions() {
        assert_eq!(math("harmonic_mean", &[0.5, 1.0]), Some(2.0 / 3.0));
        assert_eq!(math("harmonic_mean", &[0.0, 1.0]), Some(0.0));
        assert_eq!(math("clamp", &[5.0, 0.0, 1.0]), Some(1.0));
        assert_eq!(math("max", &[1.0, 3.0, 2.0]), Some(3.0));
        assert_eq!(math("exp", &[1.0, 2.0]), None);
    }
}
