//! The formatter over every spec the repository holds: shipped specs, the standard library and
//! every test fixture that parses. For each: formatting is idempotent, and the formatted text
//! parses to the same tree (spans aside) with the same comments.

use assay_syntax::format::format;
use assay_syntax::{FileId, parse};
use std::path::{Path, PathBuf};

fn assay_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries {
        let path = entry.unwrap().path();
        if path.is_dir() {
            assay_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "assay") {
            out.push(path);
        }
    }
}

/// The tree as JSON with every span removed: what the source means, not where it is.
fn meaning(text: &str) -> serde_json::Value {
    fn strip(v: &mut serde_json::Value) {
        match v {
            serde_json::Value::Object(map) => {
                map.retain(|k, _| !(k == "span" || k.ends_with("_span")));
                map.values_mut().for_each(strip);
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(strip),
            _ => {}
        }
    }
    let (module, _) = parse(FileId(0), text);
    let mut v = serde_json::to_value(&module).unwrap();
    strip(&mut v);
    v
}

#[test]
fn formatting_is_idempotent_and_keeps_the_meaning() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    for dir in ["specs", "stdlib", "tests/fixtures"] {
        assay_files(&root.join(dir), &mut files);
    }
    files.sort();
    let (mut formatted, mut refused) = (0, 0);
    for path in &files {
        let text = std::fs::read_to_string(path).unwrap();
        let (_, diagnostics) = parse(FileId(0), &text);
        if diagnostics
            .iter()
            .any(|d| d.code.as_str().starts_with("E000"))
        {
            // Fixtures with syntax errors: the CLI does not format them; the formatter must
            // still not panic.
            let _ = format(&text);
            refused += 1;
            continue;
        }
        let once = format(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let twice = format(&once).unwrap();
        assert_eq!(once, twice, "{}: not idempotent", path.display());
        assert_eq!(
            meaning(&text),
            meaning(&once),
            "{}: formatting changed the tree",
            path.display()
        );
        let (_, after) = parse(FileId(0), &once);
        assert!(
            after.iter().all(|d| !d.is_error()),
            "{}: formatted text has errors: {after:?}",
            path.display()
        );
        formatted += 1;
    }
    assert!(formatted >= 60, "only {formatted} files formatted");
    assert!(refused >= 5, "only {refused} files with syntax errors seen");
}
