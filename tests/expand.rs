//! Expansion fixtures: every `tests/fixtures/expand/*.assay` (or folder with a `main.assay`)
//! is expanded with `assay items --format json`; the test asserts a clean exit and snapshots
//! the sources beside the items they expand to. Adding a case means adding a file.

use datatest_stable::Utf8Path;
use std::process::Command;

fn expand_fixture(path: &Utf8Path) -> datatest_stable::Result<()> {
    let dir = path.parent().expect("fixture has a folder");
    let is_folder = path.file_name() == Some("main.assay");
    let name = if is_folder {
        dir.file_name().unwrap().to_string()
    } else {
        path.file_stem().unwrap().to_string()
    };
    let mut files: Vec<(String, String)> = Vec::new();
    if is_folder {
        for entry in std::fs::read_dir(dir)? {
            let p = entry?.path();
            if p.is_file() {
                let rel = p.file_name().unwrap().to_string_lossy().into_owned();
                files.push((rel, std::fs::read_to_string(&p)?));
            }
        }
        files.sort();
    } else {
        files.push((
            path.file_name().unwrap().to_string(),
            std::fs::read_to_string(path)?,
        ));
    }
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["items", "--format", "json", path.file_name().unwrap()])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()?;
    let stderr = String::from_utf8(out.stderr)?;
    if out.status.code() != Some(0) || !stderr.is_empty() {
        return Err(format!("{name}: exit {:?}\n{stderr}", out.status.code()).into());
    }
    let mut snapshot = String::new();
    for (file, text) in &files {
        snapshot.push_str(&format!("──── {file}\n{text}"));
    }
    snapshot.push_str("──── items\n");
    for line in String::from_utf8(out.stdout)?.lines() {
        let item: serde_json::Value = serde_json::from_str(line)?;
        snapshot.push_str(&serde_json::to_string_pretty(&item)?);
        snapshot.push('\n');
    }
    insta::with_settings!({ prepend_module_to_snapshot => false, omit_expression => true, snapshot_suffix => "expand" }, {
        insta::assert_snapshot!(name, snapshot);
    });
    Ok(())
}

datatest_stable::harness! {
    { test = expand_fixture, root = "../../tests/fixtures/expand", pattern = r"^[^/]+\.assay$|^[^/]+/main\.assay$" },
}
