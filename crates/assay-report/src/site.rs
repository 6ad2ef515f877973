//! A result site (`assay site RUN_DIR... -o DIR`): the form in which a standards body
//! publishes a benchmark's results. [`index`] is its front page: every model with its overall
//! grades and its grade per group (hazard), each linking to the model's own report page, and
//! what a reader needs to reproduce the numbers (the suite, the items hash of each run, the
//! spec file with its sha256). The CLI writes the pages; this module only builds them.

use crate::chart::escape;
use crate::html::script_json;
use assay_ir::{Scoring, Summary};
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// One run on the site.
pub struct SiteRun<'a> {
    /// The folder name of its page under the site (`<slug>/index.html`).
    pub slug: String,
    pub summary: &'a Summary,
    pub scoring: &'a Scoring,
    /// BLAKE3 of the compiled items the run used (`run.json`).
    pub items_hash: Option<String>,
    pub finished: Option<String>,
}

/// The spec published beside the results.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SpecFile {
    /// Its file name in the site.
    pub name: String,
    pub sha256: String,
}

/// The index's data block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteData {
    pub title: String,
    pub suite: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec: Option<SpecFile>,
    /// The groups graded, in order (hazard codes), and their titles.
    pub groups: Vec<String>,
    pub titles: BTreeMap<String, String>,
    pub models: Vec<SiteModel>,
    /// Runs whose items differ from the first run's: their numbers are not comparable.
    pub warnings: Vec<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct SiteModel {
    pub model: String,
    pub page: String,
    /// Grade name → overall grade (`None`: ungraded).
    pub overall: BTreeMap<String, Option<String>>,
    /// Group value → grade, of the first grade declared.
    pub groups: BTreeMap<String, Option<String>>,
    pub counts: BTreeMap<String, u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_hash: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
}

/// The index's data: one entry per model of every run.
pub fn data(runs: &[SiteRun<'_>], spec: Option<&SpecFile>) -> SiteData {
    let first = runs.first();
    let mut groups: Vec<String> = Vec::new();
    let mut titles = BTreeMap::new();
    let mut models = Vec::new();
    let mut warnings = Vec::new();
    let first_hash = first.and_then(|r| r.items_hash.clone());
    for run in runs {
        titles.extend(run.scoring.titles.clone());
        if run.items_hash != first_hash {
            warnings.push(format!(
                "{} ran other items (items hash {}) than {} ({}): compare their numbers with care",
                run.slug,
                run.items_hash.as_deref().unwrap_or("unknown"),
                runs[0].slug,
                first_hash.as_deref().unwrap_or("unknown")
            ));
        }
        let first_grade = run.summary.grades.first().map(|g| g.name.clone());
        for model in &run.summary.models {
            let mut overall = BTreeMap::new();
            let mut by_group = BTreeMap::new();
            for g in run.summary.grades.iter().filter(|g| &g.model == model) {
                if g.group.is_empty() {
                    overall.insert(g.name.clone(), g.grade.clone());
                } else if Some(&g.name) == first_grade.as_ref() {
                    let value = g.group.values().cloned().collect::<Vec<_>>().join(", ");
                    if !groups.contains(&value) {
                        groups.push(value.clone());
                    }
                    by_group.insert(value, g.grade.clone());
                }
            }
            models.push(SiteModel {
                model: model.clone(),
                page: format!("{}/index.html", run.slug),
                overall,
                groups: by_group,
                counts: run.summary.counts.get(model).cloned().unwrap_or_default(),
                items_hash: run.items_hash.clone(),
                finished: run.finished.clone(),
            });
        }
    }
    SiteData {
        title: first
            .and_then(|r| r.scoring.title.clone())
            .or_else(|| first.map(|r| r.summary.suite.clone()))
            .unwrap_or_else(|| "Results".into()),
        suite: first.map(|r| r.summary.suite.clone()).unwrap_or_default(),
        version: first.and_then(|r| r.summary.version.clone()),
        spec: spec.cloned(),
        groups,
        titles,
        models,
        warnings,
    }
}

/// The grade's colour class by its place on the scale of the run that gave it.
fn grade_class(grade: Option<&str>, name: &str, runs: &[SiteRun<'_>]) -> &'static str {
    const CLASSES: [&str; 5] = ["g0", "g1", "g2", "g3", "g4"];
    let Some(grade) = grade else { return "gn" };
    for run in runs {
        if let Some(spec) = run.scoring.grades.iter().find(|g| g.name == name)
            && let Some(rank) = spec.bands.iter().position(|b| b.grade == grade)
        {
            let of = spec.bands.len();
            return if of > 1 {
                CLASSES[(rank * 4 + (of - 1) / 2) / (of - 1)]
            } else {
                "g0"
            };
        }
    }
    "gn"
}

/// The site's front page.
pub fn index(runs: &[SiteRun<'_>], spec: Option<&SpecFile>) -> String {
    let data = data(runs, spec);
    let mut out = String::new();
    let title = escape(&data.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">\
         <title>{title} — results</title><style>{}</style></head><body><header><h1>{title}</h1>\
         <p>Suite <code>{}</code>{} — {} model{}.</p></header><main>",
        crate::html::CSS,
        escape(&data.suite),
        data.version
            .as_deref()
            .map(|v| format!(" version {}", escape(v)))
            .unwrap_or_default(),
        data.models.len(),
        if data.models.len() == 1 { "" } else { "s" }
    );
    if !data.warnings.is_empty() {
        out.push_str("<section class=\"warnings\"><h2>Warnings</h2><ul>");
        for w in &data.warnings {
            let _ = write!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul></section>");
    }
    let grade_names: Vec<String> = data
        .models
        .iter()
        .flat_map(|m| m.overall.keys().cloned())
        .fold(Vec::new(), |mut acc, g| {
            if !acc.contains(&g) {
                acc.push(g);
            }
            acc
        });
    let first_grade = runs
        .iter()
        .find_map(|r| r.summary.grades.first().map(|g| g.name.clone()))
        .unwrap_or_default();
    out.push_str("<section id=\"models\"><h2>Models</h2><table class=\"site\"><thead><tr><th scope=\"col\">model</th>");
    for g in &grade_names {
        let _ = write!(out, "<th scope=\"col\">{} (overall)</th>", escape(g));
    }
    for group in &data.groups {
        let _ = write!(
            out,
            "<th scope=\"col\" title=\"{}\">{}</th>",
            escape(
                data.titles
                    .get(group)
                    .map_or(group.as_str(), String::as_str)
            ),
            escape(group)
        );
    }
    out.push_str("<th scope=\"col\">results</th></tr></thead><tbody>");
    for m in &data.models {
        let _ = write!(
            out,
            "<tr data-model=\"{}\"><td><a href=\"{}\"><code>{}</code></a></td>",
            escape(&m.model),
            escape(&m.page),
            escape(&m.model)
        );
        for g in &grade_names {
            let grade = m.overall.get(g).cloned().flatten();
            let _ = write!(
                out,
                "<td class=\"grade {}\" data-grade-name=\"{}\" data-grade=\"{}\">{}</td>",
                grade_class(grade.as_deref(), g, runs),
                escape(g),
                escape(grade.as_deref().unwrap_or("")),
                escape(grade.as_deref().unwrap_or("ungraded"))
            );
        }
        for group in &data.groups {
            let grade = m.groups.get(group).cloned().flatten();
            let _ = write!(
                out,
                "<td class=\"grade {}\" data-group=\"{}\" data-grade=\"{}\">{}</td>",
                grade_class(grade.as_deref(), &first_grade, runs),
                escape(group),
                escape(grade.as_deref().unwrap_or("")),
                escape(grade.as_deref().unwrap_or("—"))
            );
        }
        let counts = m
            .counts
            .iter()
            .map(|(s, n)| format!("{n} {s}"))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = write!(out, "<td>{}</td></tr>", escape(&counts));
    }
    out.push_str("</tbody></table>");
    if !data.groups.is_empty() {
        out.push_str("<p class=\"note\">Columns after the overall grades: ");
        let names: Vec<String> = data
            .groups
            .iter()
            .map(|g| {
                format!(
                    "<code>{}</code> {}",
                    escape(g),
                    escape(data.titles.get(g).map_or("", String::as_str))
                )
            })
            .collect();
        let _ = write!(out, "{}", names.join(" · "));
        let _ = write!(out, " (grade <code>{}</code>).</p>", escape(&first_grade));
    }
    out.push_str("</section><section id=\"reproduce\"><h2>Reproduce</h2><ul>");
    if let Some(spec) = &data.spec {
        let _ = write!(
            out,
            "<li>Spec: <a href=\"{}\"><code>{}</code></a>, sha256 <code>{}</code></li>",
            escape(&spec.name),
            escape(&spec.name),
            escape(&spec.sha256)
        );
    }
    for m in &data.models {
        let _ = write!(
            out,
            "<li><code>{}</code>: items hash (BLAKE3) <code>{}</code>{}; <a href=\"{}\">report</a>, \
             <a href=\"{}\">summary.json</a></li>",
            escape(&m.model),
            escape(m.items_hash.as_deref().unwrap_or("unknown")),
            m.finished
                .as_deref()
                .map(|f| format!(", finished {}", escape(f)))
                .unwrap_or_default(),
            escape(&m.page),
            escape(&m.page.replace("index.html", "summary.json"))
        );
    }
    let _ = write!(
        out,
        "</ul><pre class=\"raw\">assay run {} --model PROVIDER:MODEL</pre></section></main>\
         <footer>Written by Assay {}.</footer><script type=\"application/json\" id=\"assay-site\">{}</script></body></html>",
        escape(data.spec.as_ref().map_or("SPEC", |s| s.name.as_str())),
        env!("CARGO_PKG_VERSION"),
        script_json(&data)
    );
    out.push('\n');
    out
}

/// A folder name for a model: letters, digits, `-`, `_` and `.` kept, the rest `-`.
pub fn slug(model: &str) -> String {
    let s: String = model
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '-'
            }
        })
        .collect();
    let s = s.trim_matches(|c| c == '-' || c == '.').to_string();
    if s.is_empty() { "run".into() } else { s }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slugs_are_safe_folder_names() {
        assert_eq!(slug("openai:gpt-4o"), "openai-gpt-4o");
        assert_eq!(slug("mock:script:../x.yaml"), "mock-script-..-x.yaml");
        assert_eq!(slug("../.."), "run");
        assert_eq!(slug(""), "run");
    }
}
