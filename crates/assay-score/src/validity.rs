//! Whether a scored run measured anything a reader may rely on. A run is invalid when more
//! than a share of a model's items failed (`error`, `skipped`), when a judge failed on more
//! than that share of a model's answered items (its `invalid` verdicts included), or when a
//! model has no item at all: its numbers, and any gate on them, would rest on too little.
//! ModelBench's share is 3%.

use assay_ir::Summary;

/// ModelBench's limit: a run whose invalid judgements exceed 3% is not valid.
pub const DEFAULT_MAX_INVALID: f64 = 0.03;

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
            let total = c.verdicts + c.errors;
            let failed = c.errors + c.invalid;
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
