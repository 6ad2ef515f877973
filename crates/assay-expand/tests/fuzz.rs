//! Property tests standing in for fuzz targets (`cargo fuzz` needs a nightly toolchain): no
//! dataset file and no template makes checking or expansion panic; each comes back as items or
//! as diagnostics whose spans point inside the spec. Each property runs 256 cases under
//! `cargo test`; `PROPTEST_CASES` raises that (`bench/fuzz.sh` runs them all for a while).

use assay_check::{MemoryLoader, Package, check};
use assay_expand::{DataSource, DatasetSource, Expansion, Options, expand};
use assay_syntax::Code;
use proptest::prelude::*;
use std::io::Read;
use std::ops::ControlFlow;
use std::path::Path;

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(256)
}

/// Dataset bytes, whatever the dataset declares.
struct Bytes(Vec<u8>);

impl DataSource for Bytes {
    fn open(&self, _: &DatasetSource<'_>) -> Result<(String, Box<dyn Read + '_>), String> {
        Ok(("data".to_string(), Box::new(self.0.as_slice())))
    }
}

/// Checks and (when the check passes) expands `spec` with `files` beside it and `data` as
/// every dataset's bytes. Validates every diagnostic's spans; returns the expansion and the
/// user turns of the items, or `None` when the check failed.
fn run(spec: &str, files: &[(&str, &str)], data: &[u8]) -> Option<(Expansion, Vec<String>)> {
    let mut loader = MemoryLoader::new().with("main.assay", spec);
    for (path, text) in files {
        loader = loader.with(path, *text);
    }
    let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
    let valid = |d: &assay_syntax::Diagnostic| {
        for span in std::iter::once(&d.primary.span).chain(d.secondary.iter().map(|l| &l.span)) {
            let text = &checked.sources.get(span.file).text;
            assert!(span.start <= span.end, "{d:?}");
            assert!(text.is_char_boundary(span.end as usize), "{d:?}");
            assert!(text.is_char_boundary(span.start as usize), "{d:?}");
        }
        assert!(!d.message.is_empty());
    };
    checked.diagnostics.iter().for_each(valid);
    if checked.has_errors() {
        return None;
    }
    let mut turns = Vec::new();
    let out = expand(
        &checked,
        &loader,
        &Bytes(data.to_vec()),
        &Options::default(),
        &mut |item, _| {
            turns.extend(item.messages.iter().map(|m| m.content.clone()));
            ControlFlow::Continue(())
        },
    );
    out.diagnostics.iter().for_each(valid);
    Some((out, turns))
}

fn dataset_spec(ext: &str) -> String {
    format!(
        "dataset d {{\n  path = \"d.{ext}\"\n  columns {{ id: string  prompt: string }}\n  item {{ id = row.id  prompt = row.prompt }}\n}}\n"
    )
}

/// Pieces of CSV, JSONL and YAML syntax, to make inputs that come near to parsing.
fn data_fragment() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        Just(b"\"".to_vec()),
        Just(b"\"\"".to_vec()),
        Just(b",".to_vec()),
        Just(b"\n".to_vec()),
        Just(b"\r\n".to_vec()),
        Just(b"\r".to_vec()),
        Just(b"id,prompt\n".to_vec()),
        Just(b"\xEF\xBB\xBF".to_vec()),
        Just(b"{\"id\": \"a\", \"prompt\": \"p\"}\n".to_vec()),
        Just(b"{".to_vec()),
        Just(b"}".to_vec()),
        Just(b":".to_vec()),
        Just(b"- ".to_vec()),
        Just(b"  ".to_vec()),
        Just(b"id: a\n".to_vec()),
        Just(b"prompt: ".to_vec()),
        Just(b"&a ".to_vec()),
        Just(b"*a ".to_vec()),
        Just(b"[".to_vec()),
        Just(b"]".to_vec()),
        Just(b"!!binary ".to_vec()),
        Just(b"\xff\xfe".to_vec()),
        "[a-z0-9 ]{1,8}".prop_map(String::into_bytes),
        proptest::collection::vec(any::<u8>(), 1..8),
    ]
}

fn data_bytes() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..512),
        proptest::collection::vec(data_fragment(), 0..60).prop_map(|parts| parts.concat()),
    ]
}

/// A field as RFC 4180 writes it: quoted when it holds a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) || text.is_empty() {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text.to_string()
    }
}

/// Handlebars pieces, to make templates that come near to compiling.
fn template_fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("{{x}}".to_string()),
        Just("{{{x}}}".to_string()),
        Just("{{#if x}}".to_string()),
        Just("{{/if}}".to_string()),
        Just("{{else}}".to_string()),
        Just("{{else if x}}".to_string()),
        Just("{{#unless x}}".to_string()),
        Just("{{/unless}}".to_string()),
        Just("{{#each x}}".to_string()),
        Just("{{/each}}".to_string()),
        Just("{{#with x}}".to_string()),
        Just("{{/with}}".to_string()),
        Just("{{this}}".to_string()),
        Just("{{@index}}".to_string()),
        Just("{{../x}}".to_string()),
        Just("{{len x}}".to_string()),
        Just("{{lookup x 0}}".to_string()),
        Just("{{#if (eq x \"a\")}}".to_string()),
        Just("{{persona.name}}".to_string()),
        Just("{{!-- c --}}".to_string()),
        Just("{{! c }}".to_string()),
        Just("{{{{raw}}}}".to_string()),
        Just("{{{{/raw}}}}".to_string()),
        Just("\\{{x}}".to_string()),
        Just("{{~x~}}".to_string()),
        Just("{{".to_string()),
        Just("}}".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just("[".to_string()),
        Just("]".to_string()),
        Just("\"".to_string()),
        Just("'".to_string()),
        Just("^".to_string()),
        Just("#".to_string()),
        Just("/".to_string()),
        "[a-z .]{1,6}",
    ]
}

fn template_text() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::collection::vec(template_fragment(), 0..30).prop_map(|p| p.concat()),
        // Deep nesting, near and past the limit.
        1 => (template_fragment(), 50usize..140, template_fragment()).prop_map(|(open, n, close)| {
            open.repeat(n) + "x" + &close.repeat(n)
        }),
        1 => "\\PC{0,80}",
    ]
}

/// A value for the template's variable: a string (escaped for the spec), a number, a boolean.
fn value_literal() -> impl Strategy<Value = String> {
    prop_oneof![
        "\\PC{0,20}".prop_map(|s| format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))),
        any::<i32>().prop_map(|n| n.to_string()),
        (-1e6f64..1e6).prop_map(|f| format!("{f:.3}")),
        any::<bool>().prop_map(|b| b.to_string()),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    /// Any bytes as a CSV, JSONL or YAML dataset: items or diagnostics, never a panic.
    #[test]
    fn dataset_bytes_never_panic(ext in prop_oneof![Just("csv"), Just("jsonl"), Just("yaml")], data in data_bytes()) {
        let spec = dataset_spec(ext);
        let path = format!("d.{ext}");
        let (out, turns) = run(&spec, &[(&path, "")], &data).expect("the spec checks");
        // Every item is a row, and a file with errors yields no silent success.
        prop_assert!(turns.len() as u64 <= out.datasets.get("d").map_or(0, |d| d.rows));
        if out.diagnostics.iter().any(|d| d.code == Code::MalformedCsv) {
            prop_assert!(turns.is_empty());
        }
    }

    /// Records written by RFC 4180 read back exactly, whatever they hold: strict reading
    /// refuses no well-formed file and merges no rows.
    #[test]
    fn well_formed_csv_reads_back_exactly(
        prompts in proptest::collection::vec("\\PC{0,12}|[\",\r\n ]{0,4}", 1..12),
        crlf in any::<bool>(),
        bom in any::<bool>(),
    ) {
        let end = if crlf { "\r\n" } else { "\n" };
        let mut data = String::from(if bom { "\u{feff}" } else { "" });
        data.push_str(&format!("id,prompt{end}"));
        for (i, p) in prompts.iter().enumerate() {
            data.push_str(&format!("r{i},{}{end}", csv_field(p)));
        }
        let (out, turns) = run(&dataset_spec("csv"), &[("d.csv", "")], data.as_bytes()).expect("checks");
        prop_assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        prop_assert_eq!(turns, prompts);
    }

    /// Any template over any value: `check` refuses it, or expansion renders it or reports
    /// why not. `check` passing means rendering does not crash.
    #[test]
    fn templates_never_panic(template in template_text(), value in value_literal()) {
        let spec = format!(
            "template t {{\n  prompt = file(\"t.hbs\")\n  vars {{ x in [{value}] }}\n}}\n"
        );
        if let Some((out, turns)) = run(&spec, &[("t.hbs", &template)], b"") {
            prop_assert!(turns.len() <= 1 || out.has_errors());
        }
    }
}
