//! `assay fmt [--check] PATH...`: rewrites specs in the canonical layout
//! (`assay_syntax::format`). A file with syntax errors is left alone and its errors are shown;
//! files are rewritten only when their text changes.

use crate::{ToolError, report};
use assay_syntax::SourceMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

fn collect(path: &Path, out: &mut Vec<PathBuf>) -> Result<(), ToolError> {
    if path.is_dir() {
        let mut entries: Vec<PathBuf> = std::fs::read_dir(path)
            .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .collect();
        entries.sort();
        for entry in entries {
            let hidden = entry
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if entry.is_dir() && !hidden && entry.file_name().is_some_and(|n| n != "target") {
                collect(&entry, out)?;
            } else if entry.extension().is_some_and(|e| e == "assay") {
                out.push(entry);
            }
        }
        Ok(())
    } else if path.is_file() {
        out.push(path.to_path_buf());
        Ok(())
    } else {
        Err(ToolError(format!(
            "{}: no such file or folder",
            path.display()
        )))
    }
}

pub fn run(paths: &[PathBuf], check: bool) -> Result<ExitCode, ToolError> {
    let mut files = Vec::new();
    for path in paths {
        collect(path, &mut files)?;
    }
    let (mut changed, mut broken) = (Vec::new(), 0usize);
    for file in &files {
        let text = std::fs::read_to_string(file)
            .map_err(|e| ToolError(format!("cannot read {}: {e}", file.display())))?;
        let mut sources = SourceMap::default();
        let id = sources.add(file.display().to_string(), text.clone());
        let (_, diagnostics) = assay_syntax::parse(id, &text);
        let errors: Vec<_> = diagnostics.into_iter().filter(|d| d.is_error()).collect();
        if !errors.is_empty() {
            report(&sources, &errors);
            errln!("{}: not formatted, it has syntax errors", file.display());
            broken += 1;
            continue;
        }
        let formatted = match assay_syntax::format::format(&text) {
            Ok(f) => f,
            Err(e) => {
                errln!("{}: not formatted: {e}", file.display());
                broken += 1;
                continue;
            }
        };
        if formatted == text {
            continue;
        }
        changed.push(file.clone());
        if check {
            outln!("{}", file.display());
        } else {
            std::fs::write(file, formatted)
                .map_err(|e| ToolError(format!("cannot write {}: {e}", file.display())))?;
        }
    }
    let verb = if check {
        "would reformat"
    } else {
        "reformatted"
    };
    errln!(
        "{} file{} {verb}, {} unchanged{}",
        changed.len(),
        if changed.len() == 1 { "" } else { "s" },
        files.len() - changed.len() - broken,
        if broken > 0 {
            format!(", {broken} with errors")
        } else {
            String::new()
        }
    );
    Ok(if broken > 0 || (check && !changed.is_empty()) {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
