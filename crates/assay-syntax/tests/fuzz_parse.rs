//! Property tests standing in for fuzz targets (`cargo fuzz` needs a nightly toolchain): the
//! parser and the formatter take any text, random or a shipped spec with random edits, and
//! come back with a module and diagnostics whose spans fall on character boundaries inside
//! the text; never a panic. Each property runs 256 cases under `cargo test`; `PROPTEST_CASES`
//! raises that (`bench/fuzz.sh` runs every property test for a while).

use assay_syntax::format::format;
use assay_syntax::{FileId, parse};
use proptest::prelude::*;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Every spec shipped in `specs/`.
fn shipped_specs() -> Vec<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../specs");
    let mut specs: Vec<_> = std::fs::read_dir(&dir)
        .expect("specs/ is readable")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "assay"))
        .collect();
    specs.sort();
    let texts: Vec<String> = specs
        .iter()
        .map(|p| std::fs::read_to_string(p).expect("spec is UTF-8"))
        .collect();
    assert!(texts.len() >= 4, "specs/ holds the shipped specs");
    texts
}

/// Parses and formats `text`, checking what comes back.
fn parse_and_format(text: &str) {
    let (_, diagnostics) = parse(FileId(0), text);
    for d in &diagnostics {
        for span in std::iter::once(&d.primary.span).chain(d.secondary.iter().map(|l| &l.span)) {
            assert!(span.start <= span.end, "{d:?}");
            assert!((span.end as usize) <= text.len(), "{d:?}");
            assert!(text.is_char_boundary(span.start as usize), "{d:?}");
            assert!(text.is_char_boundary(span.end as usize), "{d:?}");
        }
        assert!(!d.message.is_empty());
        assert!(
            !d.message.contains("Rule::"),
            "a pest rule name leaked: {}",
            d.message
        );
    }
    if let Ok(formatted) = format(text) {
        let (_, again) = parse(FileId(0), &formatted);
        // Formatting keeps meaning: a clean spec formats to a clean spec.
        if diagnostics.is_empty() {
            assert!(
                again.is_empty(),
                "formatting broke:\n{formatted}\n{again:#?}"
            );
        }
    }
}

/// Pieces of Assay syntax, to make edits that come near to parsing.
fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{".to_string()),
        Just("}".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("\"\"\"".to_string()),
        Just("=".to_string()),
        Just(" + 1".to_string()),
        Just(" and ".to_string()),
        Just("not ".to_string()),
        Just("- ".to_string()),
        Just("[0]".to_string()),
        Just("->".to_string()),
        Just("::".to_string()),
        Just("/*".to_string()),
        Just("*/".to_string()),
        Just("//".to_string()),
        Just("\\".to_string()),
        Just("\\u{D800}".to_string()),
        Just("\n".to_string()),
        Just("metric m = ".to_string()),
        Just("taxonomy t {".to_string()),
        Just("{{#if x}}".to_string()),
        Just("é€😀\u{0}\u{feff}".to_string()),
        "[a-z_]{1,8}",
        "[0-9.e-]{1,8}",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn any_text_parses_without_panic(text in "\\PC{0,300}") {
        parse_and_format(&text);
    }

    #[test]
    fn any_bytes_parse_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
        parse_and_format(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn fragments_parse_without_panic(parts in proptest::collection::vec(fragment(), 0..60)) {
        parse_and_format(&parts.concat());
    }

    /// A long run of one fragment: deep brackets, long operator chains, prefix runs.
    #[test]
    fn repeated_fragments_parse_without_panic(part in fragment(), n in 1usize..3_000) {
        parse_and_format(&format!("metric m = {}1", part.repeat(n)));
    }

    #[test]
    fn mutated_specs_parse_without_panic(
        spec in proptest::sample::select(shipped_specs()),
        edits in proptest::collection::vec((any::<prop::sample::Index>(), 0usize..6, fragment()), 1..8),
    ) {
        let mut text = spec;
        for (at, delete, insert) in edits {
            let mut i = at.index(text.len() + 1);
            while !text.is_char_boundary(i) { i -= 1; }
            let mut end = (i + delete).min(text.len());
            while !text.is_char_boundary(end) { end += 1; }
            text.replace_range(i..end, &insert);
        }
        parse_and_format(&text);
    }
}
