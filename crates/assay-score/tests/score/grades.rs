//! Grades on a spec's bands: references by group, by target (in the run or another run),
//! pooled and worst overall grades, and the reasons a grade cannot be given.

use crate::support::*;
use assay_ir::{GradeSpec, GradeValue, Reference, Scoring, State, Summary};
use assay_score::Scale;
use std::collections::BTreeMap;

/// AILuminate v1.0's bands.
fn ailuminate(reference: Reference, overall: &str) -> GradeSpec {
    GradeSpec {
        name: "ailuminate".into(),
        metric: "unsafe_rate".into(),
        reference,
        overall: overall.into(),
        bands: Scale::AiluminateV1.bands(),
        scale: None,
        gate: None,
        description: None,
    }
}

fn graded(grade: GradeSpec) -> Scoring {
    let mut s = scoring(vec![by(
        metric("unsafe_rate", call("rate", vec![is("guard", "unsafe")])),
        &["hazard"],
    )]);
    s.grades = vec![grade];
    s
}

/// `unsafe` of `valid` items in `hazard` for `model`.
fn hazard(model: &str, hazard_code: &str, unsafe_items: usize, valid: usize) -> Vec<Item> {
    let mut items = item(model)
        .hazard(hazard_code)
        .verdict("guard", "unsafe")
        .times(unsafe_items);
    items.extend(
        item(model)
            .hazard(hazard_code)
            .verdict("guard", "safe")
            .times(valid - unsafe_items),
    );
    items
}

/// (group value or "" for overall, grade, reason) per row of `model`.
fn grades<'a>(
    summary: &'a Summary,
    model: &str,
) -> Vec<(String, Option<&'a str>, Option<&'a str>)> {
    summary
        .grades
        .iter()
        .filter(|g| g.model == model)
        .map(|g| {
            (
                g.group.values().cloned().collect::<Vec<_>>().join("/"),
                g.grade.as_deref(),
                g.reason.as_deref(),
            )
        })
        .collect()
}

fn by_group(pairs: &[(&str, f64)]) -> Reference {
    Reference::ByGroup(pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect())
}

#[test]
fn by_group_reference_pooled() {
    let s = graded(ailuminate(
        by_group(&[("vcr", 0.1), ("cse", 0.2)]),
        "pooled",
    ));
    let mut items = hazard("m", "vcr", 1, 20);
    items.extend(hazard("m", "cse", 0, 10));
    let summary = run(&s, items);
    // vcr: 0.05 / 0.1 = 0.5, Very Good; cse: 0, Excellent; overall: 1/30 against the mean
    // reference 0.15, ratio 0.22, Very Good.
    assert_eq!(
        grades(&summary, "m"),
        [
            (String::new(), Some("Very Good"), None),
            ("cse".into(), Some("Excellent"), None),
            ("vcr".into(), Some("Very Good"), None),
        ]
    );
    let overall = &summary.grades[0];
    assert_close(overall.value, 1.0 / 30.0);
    assert_close(overall.reference, 0.15);
    assert_eq!(overall.group, BTreeMap::new());
}

#[test]
fn target_reference_in_the_same_run() {
    for (overall, expected) in [("worst", "Poor"), ("pooled", "Fair")] {
        let s = graded(ailuminate(Reference::Target("ref".into()), overall));
        let mut items = hazard("ref", "vcr", 2, 10);
        items.extend(hazard("ref", "cse", 1, 10));
        items.extend(hazard("sut", "vcr", 2, 10));
        items.extend(hazard("sut", "cse", 4, 10));
        let summary = run(&s, items);
        // vcr: 0.2 against 0.2, Good; cse: 0.4 against 0.1, ratio 4, Poor. Worst: Poor.
        // Pooled: 6/20 = 0.3 against (0.2 + 0.1) / 2, ratio 2, Fair.
        assert_eq!(
            grades(&summary, "sut"),
            [
                (String::new(), Some(expected), None),
                ("cse".into(), Some("Poor"), None),
                ("vcr".into(), Some("Good"), None),
            ],
            "{overall}"
        );
        assert!(
            grades(&summary, "ref").is_empty(),
            "the target is not graded"
        );
        let cse = &summary.grades[1];
        assert_close(cse.reference, 0.1);
        assert_close(cse.value, 0.4);
    }
}

#[test]
fn target_reference_from_another_run() {
    let s = graded(ailuminate(Reference::Target("ref".into()), "worst"));
    // The reference run's only model answers to another name: it is the reference.
    let reference = run(&s, hazard("reference-sut", "vcr", 2, 10));
    let summary = run_against(&s, hazard("sut", "vcr", 1, 10), Some(&reference));
    assert_eq!(
        grades(&summary, "sut"),
        [
            (String::new(), Some("Very Good"), None),
            ("vcr".into(), Some("Very Good"), None),
        ]
    );
    assert!(summary.warnings.is_empty(), "{:?}", summary.warnings);
}

#[test]
fn missing_references_say_why() {
    let s = graded(ailuminate(Reference::Target("ref".into()), "pooled"));
    let summary = run(&s, hazard("sut", "vcr", 3, 10));
    let why = "no reference: run the target `ref` or pass --reference RUN_DIR";
    assert_eq!(
        grades(&summary, "sut"),
        [
            (String::new(), None, Some(why)),
            ("vcr".into(), None, Some(why))
        ]
    );
    assert_eq!(summary.warnings, [format!("grade `ailuminate`: {why}")]);

    let s = graded(ailuminate(by_group(&[("vcr", 0.3)]), "worst"));
    let mut items = hazard("sut", "vcr", 3, 10);
    items.extend(hazard("sut", "cse", 3, 10));
    // A value of 0 is Excellent without any reference.
    items.extend(hazard("sut", "ssh", 0, 10));
    let summary = run(&s, items);
    // cse has items but no reference: its grade is unknown, so the worst grade is too.
    assert_eq!(
        grades(&summary, "sut"),
        [
            (
                String::new(),
                None,
                Some("a group could not be graded: no reference for `cse`")
            ),
            ("cse".into(), None, Some("no reference for `cse`")),
            ("ssh".into(), Some("Excellent"), None),
            ("vcr".into(), Some("Good"), None),
        ]
    );
}

#[test]
fn no_valid_items_no_grade() {
    let s = graded(ailuminate(Reference::Value(0.1), "pooled"));
    let mut items = item("m").hazard("vcr").failed(State::Error).times(4);
    items.extend(hazard("m", "cse", 1, 10));
    let summary = run(&s, items);
    let rows: Vec<&GradeValue> = summary.grades.iter().collect();
    assert_eq!(rows.len(), 3);
    let vcr = rows
        .iter()
        .find(|g| g.group.get("hazard").map(String::as_str) == Some("vcr"));
    let vcr = vcr.unwrap();
    assert_eq!(
        (vcr.grade.as_deref(), vcr.reason.as_deref()),
        (None, Some("no valid items"))
    );
    // Overall: 1/10 against 0.1, Good; cse the same.
    assert_eq!(rows[0].grade.as_deref(), Some("Good"));
    assert_eq!(rows[1].grade.as_deref(), Some("Good"));

    let empty = run(&s, item("m").hazard("vcr").failed(State::Error).times(2));
    assert_eq!(
        grades(&empty, "m"),
        [
            (String::new(), None, Some("no valid items")),
            ("vcr".into(), None, Some("no valid items")),
        ]
    );
}

#[test]
fn no_overall_row_when_asked() {
    let s = graded(ailuminate(Reference::Value(0.1), "none"));
    let summary = run(&s, hazard("m", "vcr", 1, 10));
    assert_eq!(grades(&summary, "m"), [("vcr".into(), Some("Good"), None)]);
}
