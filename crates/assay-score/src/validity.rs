//! Whether a scored run measured anything a reader may rely on. A run is invalid when more
//! than a share of a model's items failed (`error`, `skipped`), when a judge failed on more
//! than that share of a model's answered items (its `invalid` verdicts included), or when a
//! model has no item at all: its numbers, and any gate on them, would rest on too little.
//! ModelBench's share is 3%. [`verdict`] adds the gates (`--fail-under`, a grade's `gate`,
//! `--fail-if`): a gated grade or metric without a value makes the run invalid, never a pass.

use assay_ir::{JudgeCounts, Scoring, Summary};

/// ModelBench's limit: a run whose invalid judgements exceed 3% is not valid.
pub const DEFAULT_MAX_INVALID: f64 = 0.03;

/// A `--fail-if` bound: the metric's overall value `op` `value` fails the run.
#[derive(Clone, Debug, PartialEq)]
pub struct Condition {
    pub metric: String,
    pub op: String,
    pub value: f64,
}

/// The gates a run is held to.
#[derive(Clone, Copy, Debug)]
pub struct Gates<'a> {
    /// `--fail-under GRADE`, over each grade's own `gate`.
    pub fail_under: Option<&'a str>,
    pub fail_if: &'a [Condition],
    pub max_invalid: f64,
}

/// What a scored run amounts to: why it is invalid (if it is), the gates it failed, and the
/// results it rests on.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Verdict {
    pub invalid: Vec<String>,
    pub failed_gates: Vec<String>,
    pub results: u64,
    /// Results in `error` or `skipped`.
    pub without_answer: u64,
}

/// The run's verdict; `Err` is a gate that names no metric or band of the suite.
pub fn verdict(summary: &Summary, scoring: &Scoring, gates: &Gates<'_>) -> Result<Verdict, String> {
    let mut invalid = invalid_reasons(summary, gates.max_invalid);
    let failed_gates = failed_gates(summary, scoring, gates, &mut invalid)?;
    let count = |states: &[&str]| -> u64 {
        summary
            .counts
            .values()
            .flat_map(|c| c.iter())
            .filter(|(s, _)| states.is_empty() || states.contains(&s.as_str()))
            .map(|(_, n)| n)
            .sum()
    };
    Ok(Verdict {
        invalid,
        failed_gates,
        results: count(&[]),
        without_answer: count(&["error", "skipped"]),
    })
}

/// A judge's outcomes without a valid verdict (errors, and verdicts an ensemble's `invalid`
/// rule gave), of all its outcomes: the share the validity rule limits.
pub fn judge_failures(c: &JudgeCounts) -> (u64, u64) {
    (c.errors + c.invalid, c.verdicts + c.errors)
}

/// Why the run is invalid, one line per reason; empty when it is valid.
pub fn invalid_reasons(summary: &Summary, max_invalid: f64) -> Vec<String> {
    let percent = |part: u64, whole: u64| 100.0 * part as f64 / whole as f64;
    let mut reasons = Vec::new();
    if summary.models.is_empty() {
        reasons.push("nothing was run".to_string());
    }
    for model in &summary.models {
        let counts = summary.counts.get(model);
        let count = |state: &str| counts.and_then(|c| c.get(state)).copied().unwrap_or(0);
        let total: u64 = counts.map_or(0, |c| c.values().sum());
        let failed = count("error") + count("skipped");
        if total == 0 {
            reasons.push(format!("`{model}` has no item"));
        } else if failed as f64 > max_invalid * total as f64 {
            reasons.push(format!(
                "{failed} of {total} items of `{model}` failed ({:.1}%: {} error, {} skipped), \
                 above the {}% allowed",
                percent(failed, total),
                count("error"),
                count("skipped"),
                max_invalid * 100.0
            ));
        }
    }
    for (judge, per_model) in &summary.judges {
        for (model, c) in per_model {
            let (failed, total) = judge_failures(c);
            if total > 0 && failed as f64 > max_invalid * total as f64 {
                reasons.push(format!(
                    "judge `{judge}` gave no valid verdict on {failed} of {total} responses of \
                     `{model}` ({:.1}%), above the {}% allowed",
                    percent(failed, total),
                    max_invalid * 100.0
                ));
            }
        }
    }
    reasons
}

/// The gates that failed; a gated grade or metric with no value is no pass but a reason the
/// run is invalid (`invalid`). `Err` is a gate that names nothing of the suite.
fn failed_gates(
    summary: &Summary,
    scoring: &Scoring,
    args: &Gates<'_>,
    invalid: &mut Vec<String>,
) -> Result<Vec<String>, String> {
    let mut failures = Vec::new();
    for grade in &scoring.grades {
        let floor = args.fail_under.or(grade.gate.as_deref());
        let Some(floor) = floor else { continue };
        let order: Vec<&str> = grade.bands.iter().map(|b| b.grade.as_str()).collect();
        let Some(limit) = order.iter().position(|g| g.eq_ignore_ascii_case(floor)) else {
            if args.fail_under.is_some() && scoring.grades.len() == 1 {
                return Err(format!(
                    "--fail-under {floor}: grade `{}` has no band `{floor}` (bands: {})",
                    grade.name,
                    order.join(", ")
                ));
            }
            continue;
        };
        let rows: Vec<_> = summary
            .grades
            .iter()
            .filter(|g| g.name == grade.name)
            .collect();
        if rows.is_empty() {
            invalid.push(format!(
                "grade `{}` is gated at {floor} but graded nothing",
                grade.name
            ));
        }
        let overall: Vec<_> = rows.iter().filter(|g| g.group.is_empty()).collect();
        let checked: Vec<_> = if overall.is_empty() {
            rows.iter().collect()
        } else {
            overall
        };
        for g in checked {
            let Some(result) = &g.grade else {
                invalid.push(format!(
                    "grade `{}` of `{}` is gated at {floor} but has no grade: {}",
                    grade.name,
                    g.model,
                    g.reason.as_deref().unwrap_or("no reason given")
                ));
                continue;
            };
            let at = order
                .iter()
                .position(|b| b == result)
                .unwrap_or(order.len());
            if at > limit {
                let group = if g.group.is_empty() {
                    "overall".to_string()
                } else {
                    g.group.values().cloned().collect::<Vec<_>>().join("/")
                };
                failures.push(format!(
                    "grade `{}` of `{}` ({group}) is {result}, below {floor}",
                    grade.name, g.model
                ));
            }
        }
    }
    for c in args.fail_if {
        if !scoring.metrics.iter().any(|m| m.name == c.metric) {
            let names: Vec<&str> = scoring.metrics.iter().map(|m| m.name.as_str()).collect();
            return Err(format!(
                "--fail-if: the suite has no metric `{}` (metrics: {})",
                c.metric,
                names.join(", ")
            ));
        }
        for m in summary
            .metrics
            .iter()
            .filter(|m| m.name == c.metric && m.group.is_empty())
        {
            let Some(v) = m.value else {
                invalid.push(format!(
                    "`{}` of `{}` is gated by --fail-if but has no value ({} items excluded)",
                    c.metric, m.model, m.excluded
                ));
                continue;
            };
            let hit = match c.op.as_str() {
                ">" => v > c.value,
                ">=" => v >= c.value,
                "<" => v < c.value,
                _ => v <= c.value,
            };
            if hit {
                failures.push(format!(
                    "`{}` of `{}` is {v:.4}, {} {}",
                    c.metric, m.model, c.op, c.value
                ));
            }
        }
    }
    Ok(failures)
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_ir::JudgeCounts;
    use std::collections::BTreeMap;

    fn summary(states: &[(&str, u64)], judge: Option<JudgeCounts>) -> Summary {
        let counts: BTreeMap<String, u64> =
            states.iter().map(|(s, n)| (s.to_string(), *n)).collect();
        let mut judges = BTreeMap::new();
        if let Some(c) = judge {
            judges.insert("guard".to_string(), BTreeMap::from([("m".to_string(), c)]));
        }
        Summary {
            suite: "s".into(),
            version: None,
            models: vec!["m".into()],
            counts: BTreeMap::from([("m".to_string(), counts)]),
            judges,
            metrics: Vec::new(),
            grades: Vec::new(),
            warnings: Vec::new(),
        }
    }

    #[test]
    fn failed_items_and_judges_above_the_share_make_a_run_invalid() {
        // 3 of 100 is the limit itself: valid; 4 is not.
        assert!(invalid_reasons(&summary(&[("ok", 97), ("error", 3)], None), 0.03).is_empty());
        let reasons = invalid_reasons(&summary(&[("ok", 96), ("skipped", 4)], None), 0.03);
        assert_eq!(
            reasons,
            ["4 of 100 items of `m` failed (4.0%: 0 error, 4 skipped), above the 3% allowed"]
        );
        // Every call failed: invalid, whatever a gate would say.
        let all_failed = summary(&[("error", 200)], None);
        assert_eq!(invalid_reasons(&all_failed, 0.03).len(), 1);
        assert_eq!(invalid_reasons(&all_failed, 1.0), Vec::<String>::new());
        // Judges: errors and invalid verdicts both count.
        let judged = |errors, invalid| {
            let c = JudgeCounts {
                verdicts: 100 - errors,
                errors,
                invalid,
                not_applicable: 0,
            };
            invalid_reasons(&summary(&[("ok", 100)], Some(c)), 0.03)
        };
        assert!(judged(3, 0).is_empty());
        assert_eq!(judged(2, 2).len(), 1);
        assert!(judged(2, 2)[0].starts_with("judge `guard` gave no valid verdict on 4 of 100"));
        assert_eq!(
            invalid_reasons(&summary(&[], None), 0.03),
            ["`m` has no item"]
        );
    }
}
