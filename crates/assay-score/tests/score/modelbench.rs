//! Grades identical to ModelBench's: every case of `tests/fixtures/modelbench_cases.json`
//! (written by `bench/modelbench/generate_cases.py` from ModelBench's published grading code,
//! AILuminate v1.0 after tag v1.0.0 and AI Safety v0.5.1) scored through `summarize`, each
//! item a result with its hazard, persona and ensemble verdict. Every hazard grade, the
//! overall grade and the reference unsafe rates they rest on must equal the table, bit for
//! bit: band edges at exact fractions, 1 unsafe item in 1,000, empty hazards, standards of
//! 1, invalid ensemble verdicts under both rules, and random counts on the published
//! standards.

use crate::support::*;
use assay_ir::{GradeSpec, GradeValue, Reference, Scoring, State, Summary};
use assay_score::Scale;
use serde_json::Value;
use std::collections::BTreeMap;

fn cases() -> Vec<Value> {
    let text = include_str!("../fixtures/modelbench_cases.json");
    let table: Value = serde_json::from_str(text).unwrap();
    table["cases"].as_array().unwrap().clone()
}

/// The graded metric, written both ways a spec may write an unsafe rate.
fn graded(case: &Value, index: usize) -> Scoring {
    let scale = Scale::named(case["scale"].as_str().unwrap()).unwrap();
    let unsafe_rate = if index.is_multiple_of(2) {
        call("rate", vec![is("evaluator", "unsafe")])
    } else {
        bin("-", num(1.0), call("rate", vec![is("evaluator", "safe")]))
    };
    let mut s = scoring(vec![by(metric("unsafe_rate", unsafe_rate), &["hazard"])]);
    let safe: BTreeMap<String, f64> = case["standard"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(h, v)| (h.clone(), v.as_f64().unwrap()))
        .collect();
    s.grades = vec![GradeSpec {
        name: "published".into(),
        metric: "unsafe_rate".into(),
        reference: Reference::Standard {
            name: "standard".into(),
            safe,
        },
        overall: scale.overall_rule().into(),
        bands: scale.bands(),
        scale: Some(scale.name().into()),
        ungraded_empty: false,
        gate: None,
        description: None,
    }];
    s
}

/// One result per counted item: safe and unsafe verdicts per persona; invalid ensemble
/// verdicts as the ensemble gives them (its `invalid` label, or an error when the rule drops
/// them); a hazard with no valid item still has one failed call, so its group exists.
fn items(case: &Value) -> Vec<Item> {
    let invalid_counts_unsafe = case["invalid_rule"].as_str() == Some("unsafe");
    let mut items = Vec::new();
    for (hazard, strata) in case["hazards"].as_object().unwrap() {
        let strata = strata.as_array().unwrap();
        for stratum in strata {
            let count = |key: &str| stratum[key].as_u64().unwrap() as usize;
            let persona = stratum["persona"].as_str().unwrap();
            let base = item("sut").hazard(hazard).persona(persona);
            let (safe, valid, invalid) = (count("safe"), count("valid"), count("invalid"));
            items.extend(base.clone().verdict("evaluator", "safe").times(safe));
            items.extend(
                base.clone()
                    .verdict("evaluator", "unsafe")
                    .times(valid - safe),
            );
            let invalid_item = if invalid_counts_unsafe {
                base.verdict("evaluator", "unsafe")
            } else {
                base.judge_error("evaluator")
            };
            items.extend(invalid_item.times(invalid));
        }
        if strata.is_empty() {
            items.push(item("sut").hazard(hazard).failed(State::Error));
        }
    }
    items
}

fn grade_row<'a>(summary: &'a Summary, hazard: Option<&str>) -> &'a GradeValue {
    summary
        .grades
        .iter()
        .find(|g| g.group.get("hazard").map(String::as_str) == hazard)
        .unwrap_or_else(|| panic!("no grade row for {hazard:?} in {:#?}", summary.grades))
}

/// Compares one grade row with the table's expectation; the differences, in words.
fn differences(name: &str, what: &str, row: &GradeValue, expected: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let want = expected["grade"].as_str();
    if row.grade.as_deref() != want {
        out.push(format!(
            "{name} {what}: grade {:?} (reason {:?}), ModelBench {want:?}",
            row.grade, row.reason
        ));
    }
    // The reference unsafe rate a grade was computed against, bit for bit.
    if let (Some(r), Some(want)) = (row.reference, expected["reference_unsafe"].as_f64())
        && want.is_finite()
        && r.to_bits() != want.to_bits()
    {
        out.push(format!(
            "{name} {what}: reference {r:?}, ModelBench {want:?}"
        ));
    }
    if row.grade.is_none() && row.reason.is_none() {
        out.push(format!("{name} {what}: no grade and no reason"));
    }
    out
}

#[test]
fn grades_equal_modelbench_on_every_case() {
    let cases = cases();
    assert!(cases.len() >= 300, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    let mut by_scale: BTreeMap<String, usize> = BTreeMap::new();
    for (index, case) in cases.iter().enumerate() {
        let name = case["name"].as_str().unwrap();
        *by_scale
            .entry(case["scale"].as_str().unwrap().to_string())
            .or_default() += 1;
        let summary = run(&graded(case, index), items(case));
        let expected = &case["expected"];
        for (hazard, want) in expected["hazards"].as_object().unwrap() {
            let row = grade_row(&summary, Some(hazard));
            failures.extend(differences(name, hazard, row, want));
        }
        let overall = grade_row(&summary, None);
        failures.extend(differences(name, "overall", overall, &expected["overall"]));
    }
    assert!(
        failures.is_empty(),
        "{} differences from ModelBench:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(by_scale.values().all(|&n| n >= 100), "{by_scale:?}");
}
