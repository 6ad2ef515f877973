//! `assay site RUN_DIR... -o DIR`: a static result site over several runs, as a standards
//! body publishes them: `DIR/index.html` (every model with its overall and per-group grades,
//! and how to reproduce them), and per run `DIR/<model>/index.html` (its full report page,
//! charts and item browser), `summary.json` and `scoring.json`; with `--spec`, the spec file
//! and its sha256. Each run is scored from its folder alone, as `assay report` does.

use crate::ToolError;
use assay_ir::{RunInfo, Summary};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(clap::Args, Debug)]
pub struct SiteArgs {
    /// Run folders, one per model (each with results.jsonl and scoring.json).
    #[arg(required = true)]
    pub run_dirs: Vec<PathBuf>,
    /// The folder to write the site into.
    #[arg(short, long)]
    pub out: PathBuf,
    /// The spec the runs ran, published beside the results with its sha256.
    #[arg(long, value_name = "FILE")]
    pub spec: Option<PathBuf>,
}

fn write(path: &Path, text: &str) -> Result<(), ToolError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ToolError(format!("cannot create {}: {e}", dir.display())))?;
    }
    std::fs::write(path, assay_run::redact::redact(text).as_bytes())
        .map_err(|e| ToolError(format!("cannot write {}: {e}", path.display())))
}

pub fn site(args: &SiteArgs) -> Result<ExitCode, ToolError> {
    struct Scored {
        slug: String,
        summary: Summary,
        scoring: assay_ir::Scoring,
        info: Option<RunInfo>,
    }
    let mut scored: Vec<Scored> = Vec::new();
    for dir in &args.run_dirs {
        let scoring = crate::score::read_scoring(dir)?;
        let summary = crate::score::summarize_dir(dir, &scoring, None)?;
        let info: Option<RunInfo> = std::fs::read_to_string(dir.join("run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        let base = assay_report::site::slug(&summary.models.join("+"));
        let mut slug = base.clone();
        let mut n = 2;
        while scored.iter().any(|s| s.slug == slug) {
            slug = format!("{base}-{n}");
            n += 1;
        }
        // Each run's own page, linked back to the index.
        let page_dir = args.out.join(&slug);
        let mut page = assay_report::html::Page::new(&summary, &scoring, info.as_ref());
        crate::html::each_result(dir, |record, judgement| page.add(record, judgement))?;
        write(
            &page_dir.join("index.html"),
            &page.render_in_site(Some(("../index.html", "all models"))),
        )?;
        write(&page_dir.join("summary.json"), &pretty(&summary))?;
        write(&page_dir.join("scoring.json"), &pretty(&scoring))?;
        scored.push(Scored {
            slug,
            summary,
            scoring,
            info,
        });
    }
    let spec = match &args.spec {
        Some(path) => {
            let bytes = std::fs::read(path)
                .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?;
            let name = path
                .file_name()
                .map_or("spec.assay".into(), |n| n.to_string_lossy().into_owned());
            std::fs::write(args.out.join(&name), &bytes)
                .map_err(|e| ToolError(format!("cannot write the spec into the site: {e}")))?;
            Some(assay_report::site::SpecFile {
                name,
                sha256: hex::encode(Sha256::digest(&bytes)),
            })
        }
        None => None,
    };
    let runs: Vec<assay_report::site::SiteRun<'_>> = scored
        .iter()
        .map(|s| assay_report::site::SiteRun {
            slug: s.slug.clone(),
            summary: &s.summary,
            scoring: &s.scoring,
            items_hash: s.info.as_ref().map(|i| i.items_hash.clone()),
            finished: s.info.as_ref().map(|i| i.finished.clone()),
        })
        .collect();
    let index = args.out.join("index.html");
    write(&index, &assay_report::site::index(&runs, spec.as_ref()))?;
    errln!(
        "wrote a site of {} run{} to {}",
        runs.len(),
        if runs.len() == 1 { "" } else { "s" },
        index.display()
    );
    Ok(ExitCode::SUCCESS)
}

/// Pretty JSON with a trailing newline, as the run folder's own files.
fn pretty<T: serde::Serialize>(value: &T) -> String {
    let mut text = serde_json::to_string_pretty(value).expect("serialises");
    text.push('\n');
    text
}
