//! A judge's `when`: items it does not apply to are "not applicable", neither verdicts nor
//! failures: out of `n`, out of `excluded`, out of the 3% validity rule.

use crate::support::*;
use assay_ir::{Expect, JudgeCounts, JudgeOutcome, State, SuiteInfo};

fn not_applicable(mut item: Item, judge: &str) -> Item {
    item.judgement
        .verdicts
        .insert(judge.into(), JudgeOutcome::not_applicable());
    item
}

#[test]
fn items_a_judge_does_not_apply_to_are_left_out_without_counting_as_failures() {
    // 3 multiple-choice items judged (2 correct, 1 wrong), 6 open items `mc` does not
    // apply to (one of them a failed call), and one judge error.
    let answer = || item("m").expect(Expect::Answer("A".into()));
    let mut items = answer().verdict("mc", "correct").times(2);
    items.push(answer().verdict("mc", "wrong"));
    items.push(answer().judge_error("mc"));
    items.extend(not_applicable(item("m"), "mc").times(5));
    items.push(not_applicable(item("m").failed(State::Error), "mc"));
    let s = scoring(vec![metric(
        "accuracy",
        call("rate", vec![is("mc", "correct")]),
    )]);
    // As `assay report` reads them: every result with its judgement line, answered or not.
    let suite = SuiteInfo {
        name: "test-suite".into(),
        version: None,
        license: None,
    };
    let mut results = items.into_iter().map(|i| (i.record, Some(i.judgement)));
    let summary = assay_score::summarize(&s, &suite, &mut results, None);
    let r = row(&summary, "accuracy", "m", &[]);
    assert_close(r.value, 2.0 / 3.0);
    assert_eq!((r.n, r.excluded), (3, 1));
    assert_eq!(
        summary.judges["mc"]["m"],
        JudgeCounts {
            verdicts: 3,
            errors: 1,
            invalid: 0,
            not_applicable: 6,
        }
    );
    // 1 error of 4 judged is over 3%: the warning counts judged items only.
    assert_eq!(
        summary.warnings,
        ["judge `mc` failed on 1 of 4 responses (25.0%) for `m`: above the 3% a valid run allows"]
    );
    let json = serde_json::to_value(summary.judges["mc"]["m"]).unwrap();
    assert_eq!(json["not_applicable"], 6);
}

#[test]
fn without_not_applicable_items_the_counts_serialise_as_before() {
    let json = serde_json::to_string(&JudgeCounts {
        verdicts: 2,
        errors: 0,
        invalid: 0,
        not_applicable: 0,
    })
    .unwrap();
    assert_eq!(json, r#"{"verdicts":2,"errors":0}"#);
}
