//! No input makes the front end panic: truncated, mutated and random specs all come back as a
//! checked result whose diagnostics point inside their files.

use assay_check::{MemoryLoader, Package, check};
use assay_syntax::Code;
use proptest::prelude::*;
use std::path::Path;

const SST: &str = include_str!("../../../specs/simple-safety-tests.assay");
const AILUMINATE: &str = include_str!("../../../specs/ailuminate-demo.assay");
const GUARD_EVAL: &str = include_str!("../../../specs/guard-eval.assay");
const MLCOMMONS: &str = include_str!("../../../specs/mlcommons-v0.5.assay");

/// Checks `text` as `main.assay` of an in-memory package and validates every span.
fn check_text(text: &str) -> usize {
    check_codes(text).len()
}

/// Like [`check_text`], returning the codes of the diagnostics.
fn check_codes(text: &str) -> Vec<Code> {
    let loader = MemoryLoader::new()
        .with("main.assay", text)
        .with("prompts/sst-safety-system-prompt.txt", "Be safe.")
        .with("judges/sst-unsafe.hbs", "{{prompt}} {{response}}")
        .with("judges/ailuminate-safety.hbs", "{{prompt}} {{response}}");
    let checked =
        check(&Package::single_file(Path::new("main.assay")), &loader).expect("entry is readable");
    for d in &checked.diagnostics {
        for span in std::iter::once(&d.primary.span).chain(d.secondary.iter().map(|l| &l.span)) {
            let file = checked.sources.get(span.file);
            assert!(span.start <= span.end, "{d:?}");
            assert!(
                file.text.is_char_boundary(span.start as usize),
                "{d:?} starts mid-character"
            );
            assert!(
                file.text.is_char_boundary(span.end as usize),
                "{d:?} ends mid-character"
            );
            checked.sources.line_col(*span);
        }
        assert!(!d.message.is_empty());
        assert!(
            !d.message.contains("Rule::") && !d.message.contains("_decl"),
            "pest rule name leaked: {}",
            d.message
        );
    }
    checked.diagnostics.iter().map(|d| d.code).collect()
}

#[test]
fn shipped_specs_are_clean_in_memory() {
    assert_eq!(check_text(SST), 0);
    assert_eq!(check_text(AILUMINATE), 0);
}

#[test]
fn every_truncation_is_diagnosed_without_panic() {
    for spec in [SST, AILUMINATE] {
        let mut cut_inside_a_block = 0;
        for (i, _) in spec.char_indices().step_by(4) {
            let prefix = &spec[..i];
            let diagnostics = check_text(prefix);
            // A cut inside a block leaves it unclosed, which must be reported.
            let inside_triple_string = prefix.matches("\"\"\"").count() % 2 == 1;
            if prefix.matches('{').count() > prefix.matches('}').count() && !inside_triple_string {
                cut_inside_a_block += 1;
                assert!(
                    diagnostics > 0,
                    "no diagnostic for a spec cut at byte {i}:\n{prefix}"
                );
            }
        }
        assert!(cut_inside_a_block > 100);
    }
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    for opener in ["(", "[", "{", "- ", "not "] {
        let text = format!("metric m = {}1", opener.repeat(100_000));
        assert!(check_text(&text) > 0);
    }
    assert!(check_text(&format!("metric m = {}", "2 ^ ".repeat(50_000) + "1")) > 0);
}

/// Issue 12: a chain of 7,000 `+` passed the parser as a tree 7,000 levels tall, and the
/// checker's walks overflowed the stack. Now: one E0009, and no later error about it.
#[test]
fn long_operator_chains_are_one_diagnostic_not_an_overflow() {
    let judge = "judge g: keywords { patterns = [\"no\"]  labels = [a, b] }\n";
    for n in [7_000, 100_000] {
        for chain in [
            format!(
                "metric m = rate(g == a){}\nmetric k = m * 2",
                " + 1".repeat(n)
            ),
            format!("metric m = rate(g == a{})", " or g == b".repeat(n)),
            format!("metric m = rate(g == a) * 1{}", " - 1".repeat(n)),
        ] {
            assert_eq!(check_codes(&(judge.to_string() + &chain)), [Code::TooDeep]);
        }
    }
}

fn nested_ifs(n: usize) -> String {
    "{{#if x}}".repeat(n) + "hi" + &"{{/if}}".repeat(n)
}

/// Issue 12: 5,000 nested `{{#if}}` passed `check`, then overflowed the stack when `items`,
/// `compile` or `run` rendered it. `check` now bounds what rendering will recurse through.
#[test]
fn deeply_nested_templates_are_refused_by_check() {
    let template = |prompt: &str| {
        format!("template t {{\n  prompt = \"\"\"{prompt}\"\"\"\n  vars {{ x in [\"a\"] }}\n}}\n")
    };
    for n in [3_000, 5_000, 100_000] {
        for prompt in [
            nested_ifs(n),
            "{{#if x}}".repeat(n),
            "{{#if x}}".to_string() + &"{{else if x}}".repeat(n) + "{{/if}}",
            "{{#if (not ".to_string()
                + &"(not ".repeat(n)
                + "x"
                + &")".repeat(n + 1)
                + "}}y{{/if}}",
        ] {
            let codes = check_codes(&template(&prompt));
            assert_eq!(codes, [Code::TemplateTooDeep], "{}", &prompt[..40]);
        }
    }
    // At the limit, the template is fine.
    assert_eq!(check_codes(&template(&nested_ifs(64))), []);
    // A rubric file is a template too.
    let judge =
        "judge j: llm { model = m  rubric = file(\"judges/sst-unsafe.hbs\")  labels = [a, b] }";
    let loader = MemoryLoader::new()
        .with("main.assay", judge)
        .with("judges/sst-unsafe.hbs", nested_ifs(5_000));
    let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
    assert!(
        checked
            .diagnostics
            .iter()
            .any(|d| d.code == Code::TemplateTooDeep),
        "{:?}",
        checked.diagnostics
    );
}

/// Cases per property test: `PROPTEST_CASES` (or the older `ASSAY_FUZZ_CASES`), else 256.
fn fuzz_cases() -> u32 {
    ["PROPTEST_CASES", "ASSAY_FUZZ_CASES"]
        .iter()
        .find_map(|name| std::env::var(name).ok()?.parse().ok())
        .unwrap_or(256)
}

/// Fragments that stress the grammar: delimiters, quotes, escapes, keywords, odd characters.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("\"".to_string()),
        Just("\"\"\"".to_string()),
        Just("=".to_string()),
        Just("->".to_string()),
        Just("::".to_string()),
        Just("/*".to_string()),
        Just("//".to_string()),
        Just("\\u{D800}".to_string()),
        Just("\\".to_string()),
        Just("\n".to_string()),
        Just("taxonomy".to_string()),
        Just("metric m = ".to_string()),
        Just("by".to_string()),
        Just("{{".to_string()),
        Just("{{#if x}}".to_string()),
        Just(" + 1".to_string()),
        Just("[0]".to_string()),
        Just("é€😀".to_string()),
        Just("\u{0}".to_string()),
        "[a-z_]{1,8}",
        "[0-9.]{1,6}",
    ]
}

proptest! {
    // `PROPTEST_CASES=100000 cargo test --release -p assay-check --test robustness` for a long run
    // (`bench/fuzz.sh` runs every property test so).
    #![proptest_config(ProptestConfig { cases: fuzz_cases(), ..ProptestConfig::default() })]

    #[test]
    fn mutated_specs_never_panic(
        spec in prop_oneof![Just(SST), Just(AILUMINATE), Just(GUARD_EVAL), Just(MLCOMMONS)],
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..4, fragment()), 1..6),
    ) {
        let mut text = spec.to_string();
        for (at, delete, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            let mut end = (i + delete).min(text.len());
            while !text.is_char_boundary(end) { end += 1; }
            text.replace_range(i..end, &insert);
        }
        check_text(&text);
    }

    #[test]
    fn random_text_never_panics(parts in proptest::collection::vec(fragment(), 0..40), noise in "\\PC{0,200}") {
        let text = parts.concat() + &noise;
        check_text(&text);
    }
}
