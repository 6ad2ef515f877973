//! `report.html` in a run folder: reads `run.json`, `results.jsonl` and `judgements.jsonl`
//! line by line into an [`assay_report::html::Page`], then writes the page under a temporary
//! name and renames it. Every line read is redacted first, as every file of a run folder is.

use crate::ToolError;
use assay_ir::{Judgement, ResultRecord, RunInfo, Scoring, Summary};
use std::io::BufRead;
use std::path::{Path, PathBuf};

/// Whether the report asks for `report.html`: the spec's `formats`, or `--html`.
pub fn wanted(scoring: &Scoring, flag: bool) -> bool {
    flag || scoring.formats.iter().any(|f| f == "html")
}

/// Calls `each` with every result of a run folder and its judgement (when judged).
pub fn each_result(
    run_dir: &Path,
    mut each: impl FnMut(&ResultRecord, Option<&Judgement>),
) -> Result<(), ToolError> {
    let lines = |name: &str| -> Result<
        Option<std::io::Lines<std::io::BufReader<std::fs::File>>>,
        ToolError,
    > {
        let path = run_dir.join(name);
        match std::fs::File::open(&path) {
            Ok(f) => Ok(Some(std::io::BufReader::new(f).lines())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ToolError(format!("cannot open {}: {e}", path.display()))),
        }
    };
    let results = lines("results.jsonl")?
        .ok_or_else(|| ToolError(format!("{} has no results.jsonl", run_dir.display())))?;
    let mut judgements = lines("judgements.jsonl")?;
    for line in results {
        let line = line.map_err(|e| ToolError(format!("cannot read results.jsonl: {e}")))?;
        let line = assay_run::redact::redact(&line);
        let record: ResultRecord = serde_json::from_str(&line).map_err(|e| {
            ToolError(format!(
                "results.jsonl holds a line that is not a result: {e}"
            ))
        })?;
        // judgements.jsonl follows results.jsonl line for line; one that does not belong to
        // its result (results rewritten since) is left out, as scoring leaves it out.
        let judgement = judgements
            .as_mut()
            .and_then(|j| j.next())
            .and_then(Result::ok)
            .and_then(|l| serde_json::from_str::<Judgement>(&assay_run::redact::redact(&l)).ok())
            .filter(|j| j.item_id == record.item_id && j.model == record.model);
        each(&record, judgement.as_ref());
    }
    Ok(())
}

/// Writes a page under a temporary name, then renames it; redacted, as every file the
/// process writes is.
fn write_page(path: &Path, page: &str) -> Result<(), ToolError> {
    let tmp = path.with_extension("html.tmp");
    std::fs::write(&tmp, assay_run::redact::redact(page).as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| ToolError(format!("cannot write {}: {e}", path.display())))
}

/// Writes `RUN_DIR/report.html` for a scored run and returns its path.
pub fn write_report(
    run_dir: &Path,
    scoring: &Scoring,
    summary: &Summary,
) -> Result<PathBuf, ToolError> {
    let run: Option<RunInfo> = std::fs::read_to_string(run_dir.join("run.json"))
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok());
    let mut page = assay_report::html::Page::new(summary, scoring, run.as_ref());
    each_result(run_dir, |record, judgement| page.add(record, judgement))?;
    let path = run_dir.join("report.html");
    write_page(&path, &page.render())?;
    Ok(path)
}

/// Two runs compared: writes `B/compare.html` and returns its path.
pub fn write_comparison(
    (a_dir, a): (&Path, &Summary),
    (b_dir, b): (&Path, &Summary),
    names: (String, String),
    differences: &[assay_score::Difference],
) -> Result<PathBuf, ToolError> {
    let scoring = crate::score::read_scoring(b_dir)?;
    let mut page =
        assay_report::compare_page::ComparePage::new(a, b, names, differences, &scoring.titles);
    each_result(a_dir, |record, judgement| page.add_a(record, judgement))?;
    each_result(b_dir, |record, judgement| page.add_b(record, judgement))?;
    let path = b_dir.join("compare.html");
    write_page(&path, &page.render())?;
    Ok(path)
}
