//! Diagnostic fixtures: every file `tests/fixtures/diagnostics/*.assay` (or folder with a
//! `main.assay`) is checked with the `assay` binary. Expected diagnostics are written inside the
//! file they concern as `expect: CODE LINE:COLUMN` in a comment (`// expect: E0102 9:12` in a
//! spec, `{{! expect: E0121 4:1 }}` in a template); `// args: --expand` adds arguments to
//! `assay check` (expansion diagnostics need `--expand`). The test
//! asserts the exact set of (file, code, line, column), then snapshots the source with the
//! rendered and the JSON output.

use datatest_stable::Utf8Path;
use std::collections::BTreeSet;
use std::process::Command;

type Expectation = (String, String, usize, usize);

fn expectations(file: &str, text: &str) -> BTreeSet<Expectation> {
    text.lines()
        .filter_map(|l| l.split_once("expect: ").map(|(_, rest)| rest))
        .map(|rest| {
            let mut parts = rest.split_whitespace();
            let code = parts.next().expect("expect: CODE LINE:COL").to_string();
            let (line, col) = parts
                .next()
                .and_then(|p| p.split_once(':'))
                .expect("expect: CODE LINE:COL");
            (
                file.to_string(),
                code,
                line.parse().expect("line"),
                col.parse().expect("column"),
            )
        })
        .collect()
}

fn check_fixture(path: &Utf8Path) -> datatest_stable::Result<()> {
    let dir = path.parent().expect("fixture has a folder");
    let is_folder = path.file_name() == Some("main.assay");
    let name = if is_folder {
        dir.file_name().unwrap().to_string()
    } else {
        path.file_stem().unwrap().to_string()
    };
    let arg = path.file_name().unwrap();

    // The fixture's sources: one file, or every file of the folder (specs, rubrics, data).
    let mut files: Vec<(String, String)> = Vec::new();
    if is_folder {
        let mut pending = vec![dir.as_std_path().to_path_buf()];
        while let Some(folder) = pending.pop() {
            for entry in std::fs::read_dir(&folder)? {
                let p = entry?.path();
                if p.is_dir() {
                    pending.push(p);
                } else {
                    let rel = p
                        .strip_prefix(dir)
                        .unwrap()
                        .to_string_lossy()
                        .replace('\\', "/");
                    files.push((rel, std::fs::read_to_string(&p)?));
                }
            }
        }
        files.sort();
    } else {
        files.push((arg.to_string(), std::fs::read_to_string(path)?));
    }
    let expected: BTreeSet<Expectation> =
        files.iter().flat_map(|(f, t)| expectations(f, t)).collect();

    // `args: --expand` in a fixture adds arguments (expansion diagnostics need `--expand`).
    let extra: Vec<&str> = files
        .iter()
        .flat_map(|(_, t)| t.lines())
        .filter_map(|l| l.split_once("args: ").map(|(_, rest)| rest))
        .flat_map(str::split_whitespace)
        .collect();
    let run = |format: &str| {
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["check", "--format", format, arg])
            .args(&extra)
            .current_dir(dir)
            .env("NO_COLOR", "1")
            .output()
            .expect("assay runs")
    };
    let json = run("json");
    let human = run("human");
    let json_out = String::from_utf8(json.stdout)?;
    let mut actual = BTreeSet::new();
    for line in json_out.lines() {
        let v: serde_json::Value = serde_json::from_str(line)?;
        if !v["help"].is_string() || v["labels"].as_array().is_none_or(|l| l.is_empty()) {
            return Err(
                format!("{name}: every diagnostic has a label and a help line: {line}").into(),
            );
        }
        actual.insert((
            v["file"].as_str().unwrap_or_default().to_string(),
            v["code"].as_str().unwrap_or_default().to_string(),
            v["line"].as_u64().unwrap_or_default() as usize,
            v["column"].as_u64().unwrap_or_default() as usize,
        ));
    }
    if expected != actual {
        return Err(format!(
            "diagnostics differ for {name}\n  expected: {expected:?}\n  actual:   {actual:?}\n{}",
            String::from_utf8_lossy(&human.stderr)
        )
        .into());
    }
    let has_errors = expected.iter().any(|(_, code, _, _)| code.starts_with('E'));
    let want_exit = if has_errors { 1 } else { 0 };
    if json.status.code() != Some(want_exit) || human.status.code() != Some(want_exit) {
        return Err(format!(
            "{name}: exit {:?}, expected {want_exit}",
            json.status.code()
        )
        .into());
    }

    let mut snapshot = String::new();
    for (file, text) in &files {
        snapshot.push_str(&format!("──── {file}\n{text}"));
    }
    snapshot.push_str(&format!(
        "──── human (exit {want_exit})\n{}",
        String::from_utf8(human.stderr)?
    ));
    snapshot.push_str(&format!("──── json\n{json_out}"));
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true }, {
        insta::assert_snapshot!(name, snapshot);
    });
    Ok(())
}

/// Every code has a fixture named after it.
fn every_code_has_a_fixture(dir: &Utf8Path) -> datatest_stable::Result<()> {
    let root = dir.parent().expect("fixture folder");
    let names: Vec<String> = std::fs::read_dir(root)?
        .map(|e| e.map(|e| e.file_name().to_string_lossy().into_owned()))
        .collect::<Result<_, _>>()?;
    let missing: Vec<&str> = assay_syntax::Code::ALL
        .iter()
        .map(|c| c.as_str())
        .filter(|code| !names.iter().any(|n| n.starts_with(&format!("{code}-"))))
        .collect();
    if missing.is_empty() {
        Ok(())
    } else {
        Err(format!("no fixture for {missing:?}").into())
    }
}

datatest_stable::harness! {
    { test = check_fixture, root = "../../tests/fixtures/diagnostics", pattern = r"^[^/]+\.assay$|^[^/]+/main\.assay$" },
    { test = every_code_has_a_fixture, root = "../../tests/fixtures/diagnostics", pattern = r"^E0001-syntax-error\.assay$" },
}
