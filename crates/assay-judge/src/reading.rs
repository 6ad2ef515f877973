//! Readings of a judge's label (`readings`): a three-way label read as binary in more than one
//! way, as Qwen3Guard's `controversial` counts as `unsafe` in its strict reading and as `safe`
//! in its loose one. Each reading is an aspect of the judge's outcome, named after it.

use assay_ir::JudgeOutcome;
use std::collections::BTreeMap;

/// Adds each reading of the outcome's label as an aspect: the label the reading maps it to,
/// or the label itself. An outcome without a label (an error, not applicable) gets none.
pub fn read(outcome: &mut JudgeOutcome, readings: &BTreeMap<String, BTreeMap<String, String>>) {
    let Some(label) = outcome.label.clone() else {
        return;
    };
    for (reading, mapping) in readings {
        let read = mapping
            .get(&label)
            .cloned()
            .unwrap_or_else(|| label.clone());
        outcome.aspects.insert(reading.clone(), read);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn qwen3guard() -> BTreeMap<String, BTreeMap<String, String>> {
        let map = |from: &str, to: &str| BTreeMap::from([(from.to_string(), to.to_string())]);
        BTreeMap::from([
            ("strict".to_string(), map("controversial", "unsafe")),
            ("loose".to_string(), map("controversial", "safe")),
        ])
    }

    fn read_label(label: Option<&str>) -> BTreeMap<String, String> {
        let mut outcome = match label {
            Some(l) => JudgeOutcome {
                label: Some(l.to_string()),
                ..JudgeOutcome::default()
            },
            None => JudgeOutcome::failed("no `Safety:` line", Some("garbage".into())),
        };
        read(&mut outcome, &qwen3guard());
        outcome.aspects
    }

    #[test]
    fn strict_and_loose_readings_of_a_three_way_label() {
        let aspects = read_label(Some("controversial"));
        assert_eq!(
            (aspects["strict"].as_str(), aspects["loose"].as_str()),
            ("unsafe", "safe")
        );
        for same in ["safe", "unsafe"] {
            let aspects = read_label(Some(same));
            assert_eq!(
                (aspects["strict"].as_str(), aspects["loose"].as_str()),
                (same, same)
            );
        }
        // A failed judgement has no reading: it stays an error in both.
        assert!(read_label(None).is_empty());
    }
}
