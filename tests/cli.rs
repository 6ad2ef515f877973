//! End-to-end tests of the `assay` binary: exit codes, shipped specs, `explain`.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn assay(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .expect("assay runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn shipped_specs_check_cleanly() {
    for entry in std::fs::read_dir(repo().join("specs")).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "assay") {
            let rel = path
                .strip_prefix(repo())
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let out = assay(&["check", &rel]);
            assert_eq!(out.status.code(), Some(0), "{rel}:\n{}", text(&out.stderr));
            let json = assay(&["check", "--format", "json", &rel]);
            assert_eq!(text(&json.stdout), "", "{rel} has diagnostics");
        }
    }
}

#[test]
fn missing_file_is_a_usage_error() {
    let out = assay(&["check", "specs/no-such-spec.assay"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("no such file or folder"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn folder_without_manifest_is_a_usage_error() {
    let out = assay(&["check", "tests"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("without an assay.toml"));
}

#[test]
fn bad_flag_is_a_usage_error() {
    let out = assay(&[
        "check",
        "--format",
        "xml",
        "specs/simple-safety-tests.assay",
    ]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn explain_prints_every_code() {
    for code in assay_syntax::Code::ALL {
        let out = assay(&["explain", code.as_str()]);
        assert_eq!(out.status.code(), Some(0));
        let stdout = text(&out.stdout);
        assert!(
            stdout.starts_with(&format!("{code}: {}", code.summary())),
            "{stdout}"
        );
        assert!(
            stdout.contains("Bad:") && stdout.contains("Fixed:"),
            "{stdout}"
        );
    }
    insta::assert_snapshot!("explain_E0007", text(&assay(&["explain", "e0007"]).stdout));
}

#[test]
fn explain_unknown_code_fails() {
    let out = assay(&["explain", "E9999"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("not a diagnostic code"));
}

#[test]
fn errors_in_several_paths_are_all_reported() {
    let out = assay(&[
        "check",
        "--format",
        "json",
        "tests/fixtures/diagnostics/E0004-unknown-key.assay",
        "tests/fixtures/diagnostics/E0005-duplicate-key.assay",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let codes: Vec<String> = text(&out.stdout)
        .lines()
        .map(|l| {
            serde_json::from_str::<serde_json::Value>(l).unwrap()["code"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(codes, ["E0004", "E0005"]);
}

mod never_crashes {
    use super::*;
    use proptest::prelude::*;

    const SPEC: &str = include_str!("../specs/simple-safety-tests.assay");

    proptest! {
        #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

        /// The binary exits 0 or 1 (never 101, a panic) on mutated specs, and its JSON output
        /// is one valid object per line.
        #[test]
        fn mutated_spec_exits_cleanly(cut in 0usize..SPEC.len(), junk in "[{}\"=()\\[\\]a-z\n]{0,12}") {
            let mut cut = cut;
            while !SPEC.is_char_boundary(cut) { cut -= 1; }
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("spec.assay");
            std::fs::write(&path, format!("{}{junk}", &SPEC[..cut])).unwrap();
            let out = Command::new(env!("CARGO_BIN_EXE_assay"))
                .args(["check", "--format", "json"])
                .arg(&path)
                .output()
                .unwrap();
            prop_assert!(matches!(out.status.code(), Some(0) | Some(1)), "exit {:?}: {}", out.status.code(), text(&out.stderr));
            for line in text(&out.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                prop_assert!(v["code"].is_string() && v["line"].as_u64().unwrap() >= 1 && v["column"].as_u64().unwrap() >= 1);
            }
        }
    }
}

/// Writes `files` (path, contents) under a fresh temporary folder.
fn package(files: &[(&str, &str)]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, contents) in files {
        let full = dir.path().join(path);
        std::fs::create_dir_all(full.parent().unwrap()).unwrap();
        std::fs::write(full, contents).unwrap();
    }
    dir
}

fn check_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .arg("check")
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("assay runs")
}

#[test]
fn package_folder_with_dependencies_and_selected_imports_checks() {
    let dir = package(&[
        (
            "sst/assay.toml",
            "[package]\nname = \"sst\"\nversion = \"1.0.0\"\n\n[dependencies]\ncommon = { path = \"../common\" }\n",
        ),
        (
            "sst/main.assay",
            "suite \"sst\" version \"1.0.0\"\nuse common::hazards\nuse \"lib/personas.assay\" { curious }\n\
             template t {\n  prompt = \"{{q}}\"\n  hazard = harm.physical\n  persona = curious\n  vars { q in file(\"data/questions.txt\") }\n}\n",
        ),
        (
            "sst/lib/personas.assay",
            "persona curious { description = \"Asks about anything.\" }\npersona other { description = \"x\" }\n",
        ),
        ("sst/data/questions.txt", "How do I pick a lock?\n"),
        (
            "common/hazards.assay",
            "taxonomy harm {\n  physical \"Physical harm\"\n}\n",
        ),
    ]);
    let out = check_in(dir.path(), &["sst"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    // A spec file inside the package is checked as part of it: the dependency resolves.
    let out = check_in(dir.path(), &["sst/main.assay"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
}

#[test]
fn package_problems_point_into_the_right_files() {
    let dir = package(&[
        (
            "p/assay.toml",
            "[package]\nname = \"p\"\nversion = \"1.0\"\n",
        ),
        (
            "p/main.assay",
            "use missing::hazards\nuse \"lib/personas.assay\" { curios }\n",
        ),
        (
            "p/lib/personas.assay",
            "persona curious { description = \"Asks about anything.\" }\n",
        ),
    ]);
    let out = check_in(dir.path(), &["--format", "json", "p"]);
    assert_eq!(out.status.code(), Some(1));
    let found: Vec<(String, String, u64, u64)> = text(&out.stdout)
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            (
                v["code"].as_str().unwrap().into(),
                v["file"].as_str().unwrap().into(),
                v["line"].as_u64().unwrap(),
                v["column"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        found,
        [
            ("E0104".into(), "p/main.assay".into(), 1, 5),
            ("E0102".into(), "p/main.assay".into(), 2, 28),
            ("E0108".into(), "p/assay.toml".into(), 3, 11),
        ]
    );
}

#[test]
fn invalid_manifest_is_a_usage_error() {
    let dir = package(&[
        (
            "p/assay.toml",
            "[package]\nname = \"p\"\nversoin = \"1.0.0\"\n",
        ),
        ("p/main.assay", ""),
    ]);
    let out = check_in(dir.path(), &["p"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a valid manifest"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn symbolic_links_cannot_lead_out_of_the_package() {
    let dir = package(&[
        ("outside/secret.txt", "not for specs"),
        ("p/prompts/ok.txt", "Be safe."),
        (
            "p/main.assay",
            "axis system_prompt: system {\n  ok = file(\"prompts/ok.txt\")\n  leak = file(\"prompts/secret.txt\")\n}\n",
        ),
    ]);
    std::os::unix::fs::symlink(
        dir.path().join("outside/secret.txt"),
        dir.path().join("p/prompts/secret.txt"),
    )
    .unwrap();
    let out = check_in(dir.path(), &["--format", "json", "p/main.assay"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let lines: Vec<serde_json::Value> = text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 1, "{lines:?}");
    assert_eq!(lines[0]["code"], "E0106");
    assert_eq!(
        (lines[0]["line"].as_u64(), lines[0]["column"].as_u64()),
        (Some(3), Some(15))
    );
    assert_eq!(
        lines[0]["labels"][0]["message"],
        "a symbolic link leads out of the package"
    );
}

#[test]
fn manifest_entry_must_stay_inside_the_package() {
    let dir = package(&[
        (
            "p/assay.toml",
            "[package]\nname = \"p\"\nversion = \"1.0.0\"\nentry = \"../other.assay\"\n",
        ),
        ("other.assay", ""),
    ]);
    let out = check_in(dir.path(), &["p"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("must be a path inside the package"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn shipped_specs_and_stdlib_are_formatted() {
    let out = assay(&["fmt", "--check", "specs", "stdlib"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    assert_eq!(text(&out.stdout), "");
}

#[test]
fn fmt_rewrites_checks_and_leaves_broken_files_alone() {
    let dir = tempfile::tempdir().unwrap();
    let messy = dir.path().join("messy.assay");
    let broken = dir.path().join("broken.assay");
    std::fs::write(&messy, "template t{\nprompt=\"x\"   // note\n\n\n}\n").unwrap();
    std::fs::write(&broken, "template t {\n  prompt = \"open\n}\n").unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(args)
            .arg(dir.path())
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let check = run(&["fmt", "--check"]);
    assert_eq!(check.status.code(), Some(1));
    assert!(text(&check.stdout).contains("messy.assay"));
    assert!(!text(&check.stdout).contains("broken.assay"));
    assert!(text(&check.stderr).contains("broken.assay: not formatted, it has syntax errors"));
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "template t{\nprompt=\"x\"   // note\n\n\n}\n",
        "--check changes nothing"
    );

    let fix = run(&["fmt"]);
    assert_eq!(fix.status.code(), Some(1), "the broken file still fails");
    assert_eq!(
        std::fs::read_to_string(&messy).unwrap(),
        "template t {\n  prompt = \"x\"  // note\n}\n"
    );
    assert_eq!(
        std::fs::read_to_string(&broken).unwrap(),
        "template t {\n  prompt = \"open\n}\n"
    );
    std::fs::remove_file(&broken).unwrap();
    let again = run(&["fmt", "--check"]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
}

/// `assay lsp` speaks LSP over stdio: framed JSON-RPC in, framed JSON-RPC out.
#[test]
fn lsp_over_stdio_initializes_and_shuts_down() {
    use std::io::{Read, Write};
    use std::process::Stdio;
    let frame = |body: &str| format!("Content-Length: {}\r\n\r\n{body}", body.len());
    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"))
        .arg("lsp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for body in [
        r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"capabilities":{}}}"#,
        r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
        r#"{"jsonrpc":"2.0","id":2,"method":"shutdown"}"#,
        r#"{"jsonrpc":"2.0","method":"exit"}"#,
    ] {
        stdin.write_all(frame(body).as_bytes()).unwrap();
    }
    drop(stdin);
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let status = child.wait().unwrap();
    assert!(status.success(), "exit {status:?}");
    assert!(out.starts_with("Content-Length: "), "{out}");
    assert!(out.contains(r#""definitionProvider":true"#), "{out}");
    assert!(
        out.contains(r#""documentFormattingProvider":true"#),
        "{out}"
    );
    assert!(out.contains(r#""id":2"#), "{out}");
}

#[test]
fn every_stdlib_module_imports_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let modules = assay_check::stdlib::modules();
    assert!(modules.len() >= 6, "{modules:?}");
    // One at a time, then all together (their names are unique across the library).
    let mut all = String::new();
    for module in &modules {
        let spec = dir.path().join("one.assay");
        std::fs::write(&spec, format!("use {module}\n")).unwrap();
        let out = assay(&["check", "--format", "json", spec.to_str().unwrap()]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{module}: {}",
            text(&out.stdout)
        );
        assert_eq!(text(&out.stdout), "", "{module}");
        all.push_str(&format!("use {module}\n"));
    }
    let spec = dir.path().join("all.assay");
    std::fs::write(&spec, all).unwrap();
    let out = assay(&["check", "--format", "json", spec.to_str().unwrap()]);
    assert_eq!(text(&out.stdout), "", "all modules together");
}
