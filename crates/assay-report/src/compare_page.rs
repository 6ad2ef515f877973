//! `compare.html`: two runs of a suite side by side, as one self-contained page like
//! `report.html`: per metric and group A, B and B − A with its interval (significant when the
//! interval leaves out zero), how verdicts moved between the runs, and a browser over the
//! items whose state or verdict changed (compressed, paged in the browser).
//!
//! Results are matched by item id and by the model's place in its run (one model against
//! another, or a run against its rerun). Every result of A is added before any of B.

use crate::chart::escape;
use crate::html::{NOT_SET, pack, script_json, verdict_word};
use assay_ir::{Judgement, ResultRecord, Summary};
use assay_score::Difference;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// The page's data block.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CompareData {
    pub format: u32,
    pub a: RunSide,
    pub b: RunSide,
    pub differences: Vec<Change>,
    /// Judge → `A label → B label` → results (only labels that changed).
    pub moves: BTreeMap<String, BTreeMap<String, u64>>,
    /// Results in both runs, and those whose state or a verdict changed.
    pub matched: u64,
    pub changed: u64,
    /// Results in one run only.
    pub only_a: u64,
    pub only_b: u64,
    pub titles: BTreeMap<String, String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunSide {
    pub name: String,
    pub suite: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub models: Vec<String>,
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
}

/// One metric row's change, with whether its interval leaves out zero.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Change {
    #[serde(flatten)]
    pub difference: Difference,
    pub significant: bool,
}

/// A result of A kept until B's arrives.
struct Kept {
    state: String,
    verdicts: BTreeMap<String, String>,
    response: Option<String>,
}

/// One side of a changed item.
#[derive(Serialize)]
struct SideRow<'a> {
    state: &'a str,
    verdicts: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'a str>,
}

#[derive(Serialize)]
struct ChangedRow<'a> {
    id: &'a str,
    model_a: &'a str,
    model_b: &'a str,
    hazard: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    persona: Option<&'a str>,
    prompt: &'a str,
    /// Judges whose label changed (and `state` when the state did).
    changed: Vec<&'a str>,
    a: SideRow<'a>,
    b: SideRow<'a>,
}

/// Longest response kept per side: the page shows what changed, the run folders hold all.
const RESPONSE_CHARS: usize = 4000;

pub struct ComparePage<'a> {
    a: &'a Summary,
    b: &'a Summary,
    names: (String, String),
    differences: &'a [Difference],
    titles: &'a BTreeMap<String, String>,
    kept: BTreeMap<(String, usize), Kept>,
    moves: BTreeMap<String, BTreeMap<String, u64>>,
    items: Vec<u8>,
    matched: u64,
    changed: u64,
    only_b: u64,
}

fn words(judgement: Option<&Judgement>) -> BTreeMap<String, String> {
    judgement
        .map(|j| {
            j.verdicts
                .iter()
                .map(|(k, v)| (k.clone(), verdict_word(v).to_string()))
                .collect()
        })
        .unwrap_or_default()
}

fn cut(text: Option<&str>) -> Option<String> {
    text.map(|t| t.chars().take(RESPONSE_CHARS).collect())
}

impl<'a> ComparePage<'a> {
    pub fn new(
        a: &'a Summary,
        b: &'a Summary,
        names: (String, String),
        differences: &'a [Difference],
        titles: &'a BTreeMap<String, String>,
    ) -> Self {
        ComparePage {
            a,
            b,
            names,
            differences,
            titles,
            kept: BTreeMap::new(),
            moves: BTreeMap::new(),
            items: b"[".to_vec(),
            matched: 0,
            changed: 0,
            only_b: 0,
        }
    }

    fn model_index(summary: &Summary, model: &str) -> usize {
        summary
            .models
            .iter()
            .position(|m| m == model)
            .unwrap_or(usize::MAX)
    }

    /// A result of run A.
    pub fn add_a(&mut self, record: &ResultRecord, judgement: Option<&Judgement>) {
        let key = (
            record.item_id.clone(),
            Self::model_index(self.a, &record.model),
        );
        self.kept.insert(
            key,
            Kept {
                state: record.state.as_str().to_string(),
                verdicts: words(judgement),
                response: cut(record.response.as_deref().or(record.error.as_deref())),
            },
        );
    }

    /// A result of run B, compared with A's.
    pub fn add_b(&mut self, record: &ResultRecord, judgement: Option<&Judgement>) {
        let key = (
            record.item_id.clone(),
            Self::model_index(self.b, &record.model),
        );
        let Some(kept) = self.kept.remove(&key) else {
            self.only_b += 1;
            return;
        };
        self.matched += 1;
        let verdicts = words(judgement);
        let mut changed: Vec<&str> = Vec::new();
        if kept.state != record.state.as_str() {
            changed.push("state");
        }
        for (judge, before) in &kept.verdicts {
            if let Some(after) = verdicts.get(judge)
                && after != before
            {
                changed.push(judge);
                *self
                    .moves
                    .entry(judge.clone())
                    .or_default()
                    .entry(format!("{before} → {after}"))
                    .or_default() += 1;
            }
        }
        if changed.is_empty() {
            return;
        }
        let model_a = self
            .a
            .models
            .get(key.1)
            .map_or(record.model.as_str(), String::as_str);
        let prompt = record
            .messages
            .iter()
            .rev()
            .find(|m| m.role == assay_ir::Role::User)
            .map_or("", |m| m.content.as_str());
        let response_b = cut(record.response.as_deref());
        let row = ChangedRow {
            id: &record.item_id,
            model_a,
            model_b: &record.model,
            hazard: record.labels.hazard.as_deref().unwrap_or(NOT_SET),
            persona: record.labels.persona.as_deref(),
            prompt,
            changed,
            a: SideRow {
                state: &kept.state,
                verdicts: &kept.verdicts,
                response: kept.response.as_deref(),
                error: None,
            },
            b: SideRow {
                state: record.state.as_str(),
                verdicts: &verdicts,
                response: response_b.as_deref(),
                error: record.error.as_deref(),
            },
        };
        if self.changed > 0 {
            self.items.push(b',');
        }
        serde_json::to_writer(&mut self.items, &row).expect("a changed row serialises");
        self.changed += 1;
    }

    pub fn data(&self) -> CompareData {
        let side = |s: &Summary, name: &str| RunSide {
            name: name.to_string(),
            suite: s.suite.clone(),
            version: s.version.clone(),
            models: s.models.clone(),
            counts: s.counts.clone(),
        };
        CompareData {
            format: crate::html::DATA_FORMAT,
            a: side(self.a, &self.names.0),
            b: side(self.b, &self.names.1),
            differences: self
                .differences
                .iter()
                .map(|d| Change {
                    difference: d.clone(),
                    significant: matches!((d.ci_low, d.ci_high), (Some(lo), Some(hi)) if lo > 0.0 || hi < 0.0),
                })
                .collect(),
            moves: self.moves.clone(),
            matched: self.matched,
            changed: self.changed,
            only_a: self.kept.len() as u64,
            only_b: self.only_b,
            titles: self.titles.clone(),
        }
    }

    /// The changed items' JSON (what the items block holds).
    pub fn items_json(&self) -> Vec<u8> {
        let mut json = self.items.clone();
        json.push(b']');
        json
    }

    pub fn render(self) -> String {
        let data = self.data();
        let block = pack(&self.items_json());
        render(&data, &block)
    }
}

const COMPARE_JS: &str = include_str!("../assets/compare.js");

fn number(x: Option<f64>) -> String {
    x.map_or("—".to_string(), |v| format!("{v:.3}"))
}

fn render(data: &CompareData, block: &str) -> String {
    let mut out = String::with_capacity(block.len() + 32 * 1024);
    let title = format!("{} — {} against {}", data.b.suite, data.b.name, data.a.name);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <title>{} — Assay comparison</title><style>{}</style></head><body><header><h1>Comparison</h1><dl class=\"facts\">",
        escape(&title),
        crate::html::CSS
    );
    for (label, side) in [("A", &data.a), ("B", &data.b)] {
        let counts = side
            .counts
            .values()
            .flat_map(|c| c.iter())
            .fold(BTreeMap::<&str, u64>::new(), |mut acc, (s, n)| {
                *acc.entry(s.as_str()).or_default() += n;
                acc
            })
            .iter()
            .map(|(s, n)| format!("<span class=\"state s-{}\">{n} {s}</span>", escape(s)))
            .collect::<Vec<_>>()
            .join(" ");
        let _ = write!(
            out,
            "<div class=\"side\" data-side=\"{label}\"><dt>{label}</dt><dd><code>{}</code> ({} {}) {counts}</dd></div>",
            escape(&side.name),
            escape(&side.suite),
            escape(side.version.as_deref().unwrap_or(""))
        );
    }
    let _ = write!(
        out,
        "<div><dt>results</dt><dd>{} in both, {} changed, {} only in A, {} only in B</dd></div></dl>\
         <nav><a href=\"#differences\">Metrics</a> <a href=\"#moves\">Verdicts</a> <a href=\"#items\">Changed items</a></nav></header><main>",
        data.matched, data.changed, data.only_a, data.only_b
    );
    out.push_str(
        "<section id=\"differences\"><h2>Metrics: B − A</h2><table class=\"differences\"><thead><tr>\
         <th scope=\"col\">metric</th><th scope=\"col\">group</th><th scope=\"col\">A</th><th scope=\"col\">B</th>\
         <th scope=\"col\">B − A (95% CI)</th><th scope=\"col\">significant</th></tr></thead><tbody>",
    );
    for c in &data.differences {
        let d = &c.difference;
        let group = if d.group.is_empty() {
            "<strong>overall</strong>".to_string()
        } else {
            d.group
                .iter()
                .map(|(k, v)| match data.titles.get(v) {
                    Some(t) => format!("{} = {} <code>{}</code>", escape(k), escape(t), escape(v)),
                    None => format!("{} = {}", escape(k), escape(v)),
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        let diff = match (d.difference, d.ci_low, d.ci_high) {
            (Some(v), Some(lo), Some(hi)) => format!("{v:+.3} <small>[{lo:+.3}, {hi:+.3}]</small>"),
            (Some(v), _, _) => format!("{v:+.3}"),
            _ => "—".into(),
        };
        let mark = match (c.significant, d.difference) {
            (true, Some(v)) if v > 0.0 => {
                "<span class=\"sig up\" title=\"the interval leaves out zero\">▲ yes</span>"
            }
            (true, _) => {
                "<span class=\"sig down\" title=\"the interval leaves out zero\">▼ yes</span>"
            }
            (false, _) => "<span class=\"note\">no</span>",
        };
        let _ = write!(
            out,
            "<tr data-metric=\"{}\" data-group=\"{}\" data-significant=\"{}\"><td>{}</td><td>{group}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\" data-difference=\"{}\">{diff}</td><td>{mark}</td></tr>",
            escape(&d.name),
            escape(
                &d.group
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            c.significant,
            escape(&d.name),
            number(d.a),
            number(d.b),
            d.difference.map_or(String::new(), |v| v.to_string()),
        );
    }
    out.push_str("</tbody></table><p class=\"note\">Significant: the 95% interval of the change (MOVER, from each run's own interval) leaves out zero.</p></section>");
    out.push_str("<section id=\"moves\"><h2>Verdicts that changed</h2>");
    if data.moves.is_empty() {
        out.push_str(
            "<p class=\"note\">No judge changed its verdict on any result in both runs.</p>",
        );
    } else {
        out.push_str("<table class=\"moves\"><thead><tr><th scope=\"col\">judge</th><th scope=\"col\">A → B</th><th scope=\"col\">results</th></tr></thead><tbody>");
        for (judge, moves) in &data.moves {
            for (m, n) in moves {
                let _ = write!(
                    out,
                    "<tr><td>{}</td><td>{}</td><td class=\"num\">{n}</td></tr>",
                    escape(judge),
                    escape(m)
                );
            }
        }
        out.push_str("</tbody></table>");
    }
    out.push_str(
        "</section><section id=\"items\"><h2>Changed items</h2><div id=\"browser\"><p class=\"note\">Loading the items…</p></div></section>",
    );
    let _ = write!(
        out,
        "</main><footer>Written by Assay {}.</footer>\
         <script type=\"application/json\" id=\"assay-data\">{}</script>\
         <script type=\"application/octet-stream\" id=\"assay-items\" data-encoding=\"zlib+base64\">{block}</script>\
         <script>{COMPARE_JS}</script></body></html>",
        env!("CARGO_PKG_VERSION"),
        script_json(data)
    );
    out.push('\n');
    out
}
