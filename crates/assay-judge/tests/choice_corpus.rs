//! The `choice` judge's default reading against a corpus of real answer shapes
//! (`tests/fixtures/judges/choice-answers.jsonl`): each line holds a `response`, the
//! `expected` option letter or `"error"`, and optionally the item's `prompt`, whose
//! `A) text` lines give the option texts.

use assay_judge::{choice_with_texts, option_texts};
use std::path::Path;

const OPTIONS: [&str; 4] = ["A", "B", "C", "D"];

#[test]
fn every_answer_shape_reads_as_expected() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/fixtures/judges/choice-answers.jsonl");
    let corpus = std::fs::read_to_string(&path).expect("the corpus exists");
    let mut wrong = Vec::new();
    let mut cases = 0;
    for (n, line) in corpus.lines().enumerate() {
        let case: serde_json::Value = serde_json::from_str(line).expect("a JSON line");
        let response = case["response"].as_str().expect("a response");
        let expected = case["expected"].as_str().expect("an expected outcome");
        let prompt = case["prompt"].as_str().unwrap_or("");
        let texts = option_texts(prompt, &OPTIONS);
        let got = match choice_with_texts(response, &OPTIONS, &texts) {
            Ok(option) => option,
            Err(e) => {
                assert_eq!(e.raw, response, "an error keeps the raw response");
                "error".to_string()
            }
        };
        if got != expected {
            wrong.push(format!(
                "line {}: {response:?}: expected {expected}, got {got}",
                n + 1
            ));
        }
        cases += 1;
    }
    assert!(cases >= 60, "the corpus holds {cases} cases, fewer than 60");
    assert!(
        wrong.is_empty(),
        "{} of {cases} misread:\n{}",
        wrong.len(),
        wrong.join("\n")
    );
}

#[test]
fn errors_say_why() {
    let err = |r: &str| {
        choice_with_texts(r, &OPTIONS, &Default::default())
            .unwrap_err()
            .reason
    };
    assert_eq!(err("A or B"), "several options named: A, B");
    assert_eq!(
        err("I'm sorry, but I can't help with that."),
        "the response refuses to choose an option"
    );
    assert_eq!(err("It depends."), "no option found");
}

#[test]
fn word_options_are_read_case_insensitively() {
    let yes_no = ["yes", "no"];
    let read = |r: &str| choice_with_texts(r, &yes_no, &Default::default());
    assert_eq!(read("Answer: Yes").unwrap(), "yes");
    assert_eq!(read("NO").unwrap(), "no");
    assert!(read("yes or no").is_err());
}

#[test]
fn option_texts_come_from_the_prompt() {
    let texts = option_texts("Pick one:\n(A) red\n**B.** blue\nC: green", &OPTIONS);
    assert_eq!(texts.get("A").map(String::as_str), Some("red"));
    assert_eq!(texts.get("B").map(String::as_str), Some("blue"));
    assert_eq!(texts.get("C").map(String::as_str), Some("green"));
    assert!(option_texts("A question with no options.", &OPTIONS).is_empty());
}
