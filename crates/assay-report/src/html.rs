//! `report.html`: one self-contained page (inline CSS, JS and SVG, no request leaves it) with
//! the run's header, grades coloured by their scale, every table and chart, judge agreement,
//! and an item browser over every result. The results travel in the page as one compressed
//! block (zlib, base64) that the browser inflates with `DecompressionStream` and pages
//! through, so 43,090 items never become 43,090 DOM rows.
//!
//! [`Page`] collects results one at a time (the CLI streams them from `results.jsonl` and
//! `judgements.jsonl`); [`Page::data`] is the page's data block as a value, which tests
//! snapshot instead of markup.

use crate::chart::{self, ChartData, escape};
use assay_ir::{
    GradeValue, JudgeOutcome, Judgement, Message, MetricValue, ResultRecord, RunInfo, Scoring,
    Summary, TurnRecord, TurnVerdicts,
};
use base64::Engine;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt::Write;

/// Version of the page's data block; bumped when a field changes meaning.
pub const DATA_FORMAT: u32 = 1;

/// The page's data block (`<script id="assay-data">`), without the items.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReportData {
    pub format: u32,
    pub title: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub suite: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub run: Option<RunFacts>,
    pub models: Vec<String>,
    /// Model → state → count.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    pub grades: Vec<Grade>,
    pub tables: Vec<TableData>,
    pub charts: Vec<ChartData>,
    pub agreement: Vec<Agreement>,
    pub facets: Facets,
    /// Taxonomy code → title.
    pub titles: BTreeMap<String, String>,
    pub warnings: Vec<String>,
    /// Results in the items block.
    pub items: u64,
}

/// What `run.json` says about the run, and what its results cost.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RunFacts {
    pub started: String,
    pub finished: String,
    /// BLAKE3 of the compiled suite's items: equal hashes, equal items.
    pub items_hash: String,
    /// The hash of the spec and data the suite was built from.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    pub calls: u64,
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
    /// Sum of the results' `cost`, in dollars; `None` when no result has a price.
    pub cost: Option<f64>,
}

/// A grade with its place on its scale: `rank` 0 is the best of `of` bands.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Grade {
    #[serde(flatten)]
    pub value: GradeValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<usize>,
    pub of: usize,
    /// What the grade is relative to, by name: a published standard or a reference target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub against: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableData {
    pub metrics: Vec<String>,
    pub by: Vec<String>,
    pub rows: Vec<TableRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TableRow {
    pub model: String,
    /// Group key → value; empty for the overall row.
    pub group: BTreeMap<String, String>,
    /// One per metric of the table, `None` where it was not computed.
    pub cells: Vec<Option<Cell>>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Cell {
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    pub n: u64,
    pub excluded: u64,
}

impl From<&MetricValue> for Cell {
    fn from(m: &MetricValue) -> Cell {
        Cell {
            value: m.value,
            ci_low: m.ci_low,
            ci_high: m.ci_high,
            n: m.n,
            excluded: m.excluded,
        }
    }
}

/// How often two judges (or a judge and the human labels, `b = "gold"`) agree on one model's
/// items both labelled, with Cohen's kappa.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Agreement {
    pub model: String,
    pub a: String,
    pub b: String,
    pub n: u64,
    pub agree: u64,
    pub kappa: Option<f64>,
    /// Where they disagree: `a`'s label, `b`'s label, and how often.
    pub disagreements: Vec<(String, String, u64)>,
}

/// The values the item browser filters by, each with its count over all results.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct Facets {
    pub model: BTreeMap<String, u64>,
    pub state: BTreeMap<String, u64>,
    pub hazard: BTreeMap<String, u64>,
    pub persona: BTreeMap<String, u64>,
    pub locale: BTreeMap<String, u64>,
    /// Axis → variant → count.
    pub axes: BTreeMap<String, BTreeMap<String, u64>>,
    /// Judge → label (or `error`) → count.
    pub verdicts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Results on which judges disagree.
    pub disagreements: u64,
}

/// One result as the item browser shows it (one element of the items block).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ItemRow<'a> {
    pub id: &'a str,
    pub model: &'a str,
    pub state: &'a str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub key: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hazard: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub_hazard: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub persona: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub locale: Option<&'a str>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub axes: &'a BTreeMap<String, String>,
    pub expect: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub answer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gold: Option<&'a str>,
    pub messages: &'a [Message],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub turns: &'a [TurnRecord],
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop: Option<&'a str>,
    pub verdicts: BTreeMap<&'a str, &'a JudgeOutcome>,
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub turn_verdicts: &'a [TurnVerdicts],
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub disagree: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
}

/// Label pairs counted for one (model, a, b).
type Confusion = BTreeMap<(String, String), u64>;

/// A report page being built from a summary and its results.
pub struct Page<'a> {
    summary: &'a Summary,
    scoring: &'a Scoring,
    run: Option<&'a RunInfo>,
    /// The items block's JSON, `[` … `]` once finished.
    items: Vec<u8>,
    count: u64,
    facets: Facets,
    cost: Option<f64>,
    /// Judge pairs compared: judges with the same label set.
    pairs: Vec<(String, String)>,
    confusion: BTreeMap<(String, String, String), Confusion>,
}

const GOLD: &str = "gold";

impl<'a> Page<'a> {
    pub fn new(summary: &'a Summary, scoring: &'a Scoring, run: Option<&'a RunInfo>) -> Self {
        let mut pairs = Vec::new();
        for (i, a) in scoring.judges.iter().enumerate() {
            for b in &scoring.judges[i + 1..] {
                if !a.labels.is_empty() && a.labels == b.labels {
                    pairs.push((a.name.clone(), b.name.clone()));
                }
            }
        }
        Page {
            summary,
            scoring,
            run,
            items: b"[".to_vec(),
            count: 0,
            facets: Facets::default(),
            cost: None,
            pairs,
            confusion: BTreeMap::new(),
        }
    }

    /// Adds one result and its judgement (if judged).
    pub fn add(&mut self, record: &ResultRecord, judgement: Option<&Judgement>) {
        let verdicts: BTreeMap<&str, &JudgeOutcome> = judgement
            .map(|j| j.verdicts.iter().map(|(k, v)| (k.as_str(), v)).collect())
            .unwrap_or_default();
        let label = |judge: &str| verdicts.get(judge).and_then(|o| o.label.as_deref());
        let mut disagree = false;
        for (a, b) in &self.pairs {
            if let (Some(la), Some(lb)) = (label(a), label(b)) {
                disagree |= la != lb;
                *self
                    .confusion
                    .entry((record.model.clone(), a.clone(), b.clone()))
                    .or_default()
                    .entry((la.to_string(), lb.to_string()))
                    .or_default() += 1;
            }
        }
        if let Some(gold) = record.gold.as_deref() {
            for judge in &self.scoring.judges {
                if let Some(l) = label(&judge.name)
                    && judge.labels.iter().any(|x| x == gold)
                {
                    disagree |= l != gold;
                    *self
                        .confusion
                        .entry((record.model.clone(), judge.name.clone(), GOLD.into()))
                        .or_default()
                        .entry((l.to_string(), gold.to_string()))
                        .or_default() += 1;
                }
            }
        }
        let f = &mut self.facets;
        bump(&mut f.model, &record.model);
        bump(&mut f.state, record.state.as_str());
        let labels = &record.labels;
        bump(&mut f.hazard, labels.hazard.as_deref().unwrap_or(NOT_SET));
        bump(&mut f.persona, labels.persona.as_deref().unwrap_or(NOT_SET));
        bump(&mut f.locale, labels.locale.as_deref().unwrap_or(NOT_SET));
        for (axis, variant) in &labels.axes {
            bump(f.axes.entry(axis.clone()).or_default(), variant);
        }
        for (judge, outcome) in &verdicts {
            let word = verdict_word(outcome);
            bump(f.verdicts.entry(judge.to_string()).or_default(), word);
        }
        if disagree {
            f.disagreements += 1;
        }
        if let Some(c) = record.cost {
            *self.cost.get_or_insert(0.0) += c;
        }
        let answer = match &record.expect {
            assay_ir::Expect::Answer(a) => Some(a.as_str()),
            _ => None,
        };
        let row = ItemRow {
            id: &record.item_id,
            model: &record.model,
            state: record.state.as_str(),
            key: &record.key,
            hazard: labels.hazard.as_deref(),
            sub_hazard: labels.sub_hazard.as_deref(),
            persona: labels.persona.as_deref(),
            locale: labels.locale.as_deref(),
            axes: &labels.axes,
            expect: record.expect.as_str(),
            answer,
            gold: record.gold.as_deref(),
            messages: &record.messages,
            response: record.response.as_deref(),
            error: record.error.as_deref(),
            turns: &record.turns,
            stop: record.stop.as_deref(),
            verdicts,
            turn_verdicts: judgement.map_or(&[], |j| j.turns.as_slice()),
            disagree,
            latency_ms: record.latency_ms,
            cost: record.cost,
        };
        if self.count > 0 {
            self.items.push(b',');
        }
        serde_json::to_writer(&mut self.items, &row).expect("an item row serialises");
        self.count += 1;
    }

    /// The data block as it will be embedded.
    pub fn data(&self) -> ReportData {
        let summary = self.summary;
        let scoring = self.scoring;
        let grades = summary
            .grades
            .iter()
            .map(|g| {
                let spec = scoring.grades.iter().find(|s| s.name == g.name);
                let bands = spec.map(|s| s.bands.as_slice()).unwrap_or_default();
                let against = spec.and_then(|s| match &s.reference {
                    assay_ir::Reference::Standard { name, .. } => Some(format!("standard {name}")),
                    assay_ir::Reference::Target(t) => Some(format!("target {t}")),
                    _ => None,
                });
                Grade {
                    value: g.clone(),
                    rank: g
                        .grade
                        .as_ref()
                        .and_then(|name| bands.iter().position(|b| &b.grade == name)),
                    of: bands.len(),
                    against,
                }
            })
            .collect();
        let tables = crate::tables(summary, scoring)
            .into_iter()
            .map(|spec| {
                let rows = summary
                    .models
                    .iter()
                    .flat_map(|model| {
                        crate::rows(summary, &spec, model)
                            .into_iter()
                            .map(move |(group, cells)| TableRow {
                                model: model.clone(),
                                group,
                                cells: cells.into_iter().map(|c| c.map(Cell::from)).collect(),
                            })
                    })
                    .collect();
                TableData {
                    metrics: spec.metrics,
                    by: spec.by,
                    rows,
                }
            })
            .collect();
        let charts = scoring
            .charts
            .iter()
            .map(|c| {
                let metric_by = scoring
                    .metrics
                    .iter()
                    .find(|m| m.name == c.metric)
                    .map(|m| m.by.as_slice())
                    .unwrap_or_default();
                chart::data(c, summary, metric_by)
            })
            .collect();
        let agreement = self
            .confusion
            .iter()
            .map(|((model, a, b), pairs)| {
                let n: u64 = pairs.values().sum();
                let agree: u64 = pairs
                    .iter()
                    .filter(|((x, y), _)| x == y)
                    .map(|(_, c)| c)
                    .sum();
                Agreement {
                    model: model.clone(),
                    a: a.clone(),
                    b: b.clone(),
                    n,
                    agree,
                    kappa: kappa(pairs),
                    disagreements: pairs
                        .iter()
                        .filter(|((x, y), _)| x != y)
                        .map(|((x, y), c)| (x.clone(), y.clone(), *c))
                        .collect(),
                }
            })
            .collect();
        ReportData {
            format: DATA_FORMAT,
            title: scoring
                .title
                .clone()
                .unwrap_or_else(|| summary.suite.clone()),
            description: scoring.description.clone(),
            suite: summary.suite.clone(),
            version: summary.version.clone(),
            run: self.run.map(|r| RunFacts {
                started: r.started.clone(),
                finished: r.finished.clone(),
                items_hash: r.items_hash.clone(),
                spec_hash: r.spec_hash.clone(),
                calls: r.calls,
                prompt_tokens: r.usage.prompt_tokens,
                completion_tokens: r.usage.completion_tokens,
                cost: self.cost,
            }),
            models: summary.models.clone(),
            counts: summary.counts.clone(),
            grades,
            tables,
            charts,
            agreement,
            facets: self.facets.clone(),
            titles: scoring.titles.clone(),
            warnings: summary.warnings.clone(),
            items: self.count,
        }
    }

    /// The items block's JSON (an array of [`ItemRow`]).
    pub fn items_json(&self) -> Vec<u8> {
        let mut json = self.items.clone();
        json.push(b']');
        json
    }

    /// The page.
    pub fn render(self) -> String {
        self.render_in_site(None)
    }

    /// The page as one of a site's: `home` is the link back to the site's index and its text.
    pub fn render_in_site(self, home: Option<(&str, &str)>) -> String {
        let data = self.data();
        let mut items = self.items;
        items.push(b']');
        let encoded = pack(&items);
        drop(items);
        render_page(&data, &encoded, home)
    }
}

/// An items block as embedded: zlib (what `DecompressionStream("deflate")` reads), base64.
pub(crate) fn pack(json: &[u8]) -> String {
    let packed = miniz_oxide::deflate::compress_to_vec_zlib(json, 6);
    base64::engine::general_purpose::STANDARD.encode(packed)
}

/// A written page's two blocks, read back: the data block's JSON and the items block's JSON
/// (inflated). `None` when the page is not a report Assay wrote.
pub fn embedded(page: &str) -> Option<(String, Vec<u8>)> {
    let between = |open: &str| -> Option<&str> {
        let start = page.find(open)? + open.len();
        let end = start + page[start..].find("</script>")?;
        Some(&page[start..end])
    };
    let data = between("<script type=\"application/json\" id=\"assay-data\">")?;
    let items = between(
        "<script type=\"application/octet-stream\" id=\"assay-items\" data-encoding=\"zlib+base64\">",
    )?;
    let packed = base64::engine::general_purpose::STANDARD
        .decode(items.trim())
        .ok()?;
    let items = miniz_oxide::inflate::decompress_to_vec_zlib(&packed).ok()?;
    Some((data.to_string(), items))
}

/// The group name of a missing label, as scoring names it.
pub(crate) const NOT_SET: &str = "(not set)";

pub(crate) fn verdict_word(outcome: &JudgeOutcome) -> &str {
    if outcome.not_applicable {
        "not applicable"
    } else if outcome.error.is_some() {
        "error"
    } else {
        outcome.label.as_deref().unwrap_or("(no label)")
    }
}

fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// Cohen's kappa of a confusion table; `None` when chance agreement is total.
fn kappa(pairs: &Confusion) -> Option<f64> {
    let n: u64 = pairs.values().sum();
    if n == 0 {
        return None;
    }
    let n = n as f64;
    let observed = pairs
        .iter()
        .filter(|((a, b), _)| a == b)
        .map(|(_, c)| *c as f64)
        .sum::<f64>()
        / n;
    let mut left: BTreeMap<&str, f64> = BTreeMap::new();
    let mut right: BTreeMap<&str, f64> = BTreeMap::new();
    for ((a, b), c) in pairs {
        *left.entry(a).or_default() += *c as f64;
        *right.entry(b).or_default() += *c as f64;
    }
    let chance: f64 = left
        .iter()
        .map(|(label, l)| l / n * right.get(label).copied().unwrap_or(0.0) / n)
        .sum();
    if (1.0 - chance).abs() < 1e-12 {
        return None;
    }
    Some((observed - chance) / (1.0 - chance))
}

pub const CSS: &str = include_str!("../assets/report.css");
const JS: &str = include_str!("../assets/report.js");

/// JSON safe inside `<script>`: no `<` can close the element.
pub(crate) fn script_json<T: Serialize>(value: &T) -> String {
    serde_json::to_string(value)
        .expect("report data serialises")
        .replace('<', "\\u003c")
}

fn number(x: Option<f64>) -> String {
    x.map_or("—".to_string(), |v| format!("{v:.3}"))
}

fn title_of<'t>(code: &'t str, titles: &'t BTreeMap<String, String>) -> &'t str {
    titles.get(code).map_or(code, String::as_str)
}

fn group_cell(
    group: &BTreeMap<String, String>,
    key: &str,
    titles: &BTreeMap<String, String>,
) -> String {
    match group.get(key) {
        Some(v) if titles.contains_key(v) => format!(
            "<span title=\"{}\">{}</span> <code>{}</code>",
            escape(title_of(v, titles)),
            escape(title_of(v, titles)),
            escape(v)
        ),
        Some(v) => escape(v),
        None => "<em>all</em>".to_string(),
    }
}

fn group_attr(group: &BTreeMap<String, String>) -> String {
    group
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(",")
}

/// The grade's colour class: five steps from the best band to the worst.
fn grade_class(g: &Grade) -> String {
    match (g.rank, g.of) {
        (Some(rank), of) if of > 1 => format!("g{}", (rank * 4 + (of - 1) / 2) / (of - 1)),
        (Some(_), _) => "g0".into(),
        (None, _) => "gn".into(),
    }
}

/// The whole page from its data and the encoded items block.
pub fn render(data: &ReportData, items_block: &str) -> String {
    render_page(data, items_block, None)
}

fn render_page(data: &ReportData, items_block: &str, home: Option<(&str, &str)>) -> String {
    let mut out = String::with_capacity(items_block.len() + 64 * 1024);
    let title = escape(&data.title);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'; img-src data:\">\
         <title>{title} — Assay report</title><style>{CSS}</style></head><body>\
         <header><h1>{title}</h1>"
    );
    if let Some(d) = &data.description {
        let _ = write!(out, "<p class=\"description\">{}</p>", escape(d));
    }
    header_facts(&mut out, data);
    out.push_str("<nav>");
    if let Some((href, text)) = home {
        let _ = write!(
            out,
            "<a class=\"home\" href=\"{}\">← {}</a> ",
            escape(href),
            escape(text)
        );
    }
    out.push_str(
        "<a href=\"#grades\">Grades</a> <a href=\"#tables\">Tables</a> <a href=\"#charts\">Charts</a> \
         <a href=\"#agreement\">Judge agreement</a> <a href=\"#items\">Items</a></nav></header><main>",
    );
    if !data.warnings.is_empty() {
        out.push_str("<section class=\"warnings\" aria-label=\"Warnings\"><h2>Warnings</h2><ul>");
        for w in &data.warnings {
            let _ = write!(out, "<li>{}</li>", escape(w));
        }
        out.push_str("</ul></section>");
    }
    grades(&mut out, data);
    tables(&mut out, data);
    out.push_str("<section id=\"charts\"><h2>Charts</h2>");
    if data.charts.is_empty() {
        out.push_str("<p class=\"note\">The spec's report declares no chart (<code>chart bar METRIC by GROUPS</code>).</p>");
    }
    for c in &data.charts {
        let _ = write!(
            out,
            "<figure class=\"chart-box\"><figcaption>{} of <code>{}</code> by {}</figcaption>{}</figure>",
            c.kind.as_str(),
            escape(&c.metric),
            escape(&if c.by.is_empty() {
                "model".to_string()
            } else {
                c.by.join(", ")
            }),
            chart::svg(c, &data.titles)
        );
    }
    out.push_str("</section>");
    agreement(&mut out, data);
    out.push_str(
        "<section id=\"items\"><h2>Items</h2><div id=\"browser\"><p class=\"note\" id=\"loading\">\
         Loading the items… (the browser needs JavaScript and DecompressionStream)</p></div></section>",
    );
    let _ = write!(
        out,
        "</main><footer>Written by Assay {}. Errors (failed calls or judgements) are left out of every value and counted as excluded; intervals are 95% unless the metric says otherwise.</footer>\
         <script type=\"application/json\" id=\"assay-data\">{}</script>\
         <script type=\"application/octet-stream\" id=\"assay-items\" data-encoding=\"zlib+base64\">{items_block}</script>\
         <script>{JS}</script></body></html>",
        env!("CARGO_PKG_VERSION"),
        script_json(data)
    );
    out.push('\n');
    out
}

fn header_facts(out: &mut String, data: &ReportData) {
    out.push_str("<dl class=\"facts\">");
    let mut fact = |name: &str, value: String| {
        let _ = write!(out, "<div><dt>{name}</dt><dd>{value}</dd></div>");
    };
    fact(
        "suite",
        format!(
            "<code>{}</code>{}",
            escape(&data.suite),
            data.version
                .as_deref()
                .map(|v| format!(" {}", escape(v)))
                .unwrap_or_default()
        ),
    );
    if let Some(run) = &data.run {
        if let Some(spec) = &run.spec_hash {
            fact(
                "spec hash",
                format!(
                    "<code title=\"sha256 of the spec files and datasets\">{}</code>",
                    escape(spec)
                ),
            );
        }
        fact(
            "items hash",
            format!(
                "<code title=\"BLAKE3 of the compiled items\">{}</code>",
                escape(&run.items_hash)
            ),
        );
        fact(
            "run",
            format!("{} → {}", escape(&run.started), escape(&run.finished)),
        );
        fact(
            "calls",
            format!(
                "{} ({} prompt + {} completion tokens)",
                run.calls, run.prompt_tokens, run.completion_tokens
            ),
        );
        fact(
            "cost",
            run.cost.map_or("—".to_string(), |c| format!("${c:.4}")),
        );
    }
    for model in &data.models {
        let states = data
            .counts
            .get(model)
            .map(|c| {
                c.iter()
                    .map(|(s, n)| format!("<span class=\"state s-{}\">{n} {s}</span>", escape(s)))
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .unwrap_or_default();
        let _ = write!(
            out,
            "<div class=\"model\" data-model=\"{}\"><dt>model</dt><dd><code>{}</code> {states}</dd></div>",
            escape(model),
            escape(model)
        );
    }
    out.push_str("</dl>");
}

fn grades(out: &mut String, data: &ReportData) {
    out.push_str("<section id=\"grades\"><h2>Grades</h2>");
    if data.grades.is_empty() {
        out.push_str("<p class=\"note\">The spec declares no grade.</p></section>");
        return;
    }
    out.push_str(
        "<table class=\"grades\"><thead><tr><th scope=\"col\">grade</th><th scope=\"col\">model</th>\
         <th scope=\"col\">group</th><th scope=\"col\">value</th><th scope=\"col\">reference</th>\
         <th scope=\"col\">result</th></tr></thead><tbody>",
    );
    for g in &data.grades {
        let v = &g.value;
        let group = if v.group.is_empty() {
            "<strong>overall</strong>".to_string()
        } else {
            v.group
                .keys()
                .map(|k| format!("{} = {}", escape(k), group_cell(&v.group, k, &data.titles)))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let result = match &v.grade {
            Some(grade) => format!(
                "<td class=\"grade {}\" data-grade=\"{}\">{}</td>",
                grade_class(g),
                escape(grade),
                escape(grade)
            ),
            None => format!(
                "<td class=\"grade gn\" data-grade=\"\">ungraded: {}</td>",
                escape(v.reason.as_deref().unwrap_or("no value"))
            ),
        };
        let _ = write!(
            out,
            "<tr data-name=\"{}\" data-model=\"{}\" data-group=\"{}\"><td>{}</td><td><code>{}</code></td><td>{group}</td>\
             <td class=\"num\" data-value=\"{}\">{}</td><td class=\"num\">{}</td>{result}</tr>",
            escape(&v.name),
            escape(&v.model),
            escape(&group_attr(&v.group)),
            escape(&v.name),
            escape(&v.model),
            v.value.map_or(String::new(), |x| x.to_string()),
            number(v.value),
            number(v.reference)
                + &g.against
                    .as_deref()
                    .map(|a| format!(" <small>{}</small>", escape(a)))
                    .unwrap_or_default()
        );
    }
    out.push_str("</tbody></table></section>");
}

fn tables(out: &mut String, data: &ReportData) {
    out.push_str("<section id=\"tables\"><h2>Tables</h2>");
    // A run of one model names it in the header; only several need a model column.
    let many = data.models.len() > 1;
    for (ti, t) in data.tables.iter().enumerate() {
        let _ = write!(
            out,
            "<table class=\"metrics\" data-table=\"{ti}\"><caption>{} by {}</caption><thead><tr>{}",
            escape(&t.metrics.join(", ")),
            escape(&if t.by.is_empty() {
                "all items".to_string()
            } else {
                t.by.join(", ")
            }),
            if many {
                "<th scope=\"col\">model</th>"
            } else {
                ""
            }
        );
        for b in &t.by {
            let _ = write!(out, "<th scope=\"col\">{}</th>", escape(b));
        }
        for m in &t.metrics {
            let _ = write!(
                out,
                "<th scope=\"col\">{} <small>(95% CI)</small></th><th scope=\"col\">n</th>",
                escape(m)
            );
        }
        out.push_str("</tr></thead><tbody>");
        for row in &t.rows {
            out.push_str("<tr>");
            if many {
                let _ = write!(out, "<td><code>{}</code></td>", escape(&row.model));
            }
            for b in &t.by {
                let _ = write!(out, "<td>{}</td>", group_cell(&row.group, b, &data.titles));
            }
            for (m, cell) in t.metrics.iter().zip(&row.cells) {
                match cell {
                    Some(c) => {
                        let ci = match (c.ci_low, c.ci_high) {
                            (Some(lo), Some(hi)) => format!(" <small>[{lo:.3}, {hi:.3}]</small>"),
                            _ => String::new(),
                        };
                        let _ = write!(
                            out,
                            "<td class=\"num value\" data-metric=\"{}\" data-model=\"{}\" data-group=\"{}\" data-value=\"{}\">{}{ci}</td>\
                             <td class=\"num\">{}{}</td>",
                            escape(m),
                            escape(&row.model),
                            escape(&group_attr(&row.group)),
                            c.value.map_or(String::new(), |x| x.to_string()),
                            number(c.value),
                            c.n,
                            if c.excluded > 0 {
                                format!(" <small>({} excl.)</small>", c.excluded)
                            } else {
                                String::new()
                            }
                        );
                    }
                    None => out.push_str("<td class=\"num\">—</td><td></td>"),
                }
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
    }
    out.push_str("</section>");
}

fn agreement(out: &mut String, data: &ReportData) {
    out.push_str("<section id=\"agreement\"><h2>Judge agreement</h2>");
    if data.agreement.is_empty() {
        out.push_str(
            "<p class=\"note\">No two judges share a label set, and no item has a human label: nothing to compare.</p></section>",
        );
        return;
    }
    out.push_str(
        "<table class=\"agreement\"><thead><tr><th scope=\"col\">model</th><th scope=\"col\">judge</th>\
         <th scope=\"col\">against</th><th scope=\"col\">both labelled</th><th scope=\"col\">agree</th>\
         <th scope=\"col\">Cohen's κ</th><th scope=\"col\">disagreements (judge → against)</th></tr></thead><tbody>",
    );
    for a in &data.agreement {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{} ({:.1}%)</td><td class=\"num\">{}</td><td>{}</td></tr>",
            escape(&a.model),
            escape(&a.a),
            if a.b == GOLD {
                "human labels".to_string()
            } else {
                escape(&a.b)
            },
            a.n,
            a.agree,
            if a.n == 0 {
                0.0
            } else {
                100.0 * a.agree as f64 / a.n as f64
            },
            number(a.kappa),
            if a.disagreements.is_empty() {
                "none".to_string()
            } else {
                a.disagreements
                    .iter()
                    .map(|(x, y, n)| format!("{} → {}: {n}", escape(x), escape(y)))
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        );
    }
    let _ = write!(
        out,
        "</tbody></table><p>{} result{} where judges disagree: the item browser's <em>judges disagree</em> filter lists them.</p></section>",
        data.facets.disagreements,
        if data.facets.disagreements == 1 {
            ""
        } else {
            "s"
        }
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kappa_of_perfect_and_chance_agreement() {
        let table = |rows: &[(&str, &str, u64)]| -> Confusion {
            rows.iter()
                .map(|(a, b, n)| ((a.to_string(), b.to_string()), *n))
                .collect()
        };
        assert_eq!(
            kappa(&table(&[("safe", "safe", 5), ("unsafe", "unsafe", 5)])),
            Some(1.0)
        );
        // Agreement no better than chance.
        let k = kappa(&table(&[
            ("safe", "safe", 25),
            ("safe", "unsafe", 25),
            ("unsafe", "safe", 25),
            ("unsafe", "unsafe", 25),
        ]))
        .unwrap();
        assert!(k.abs() < 1e-12, "{k}");
        // Everyone says the same label: kappa is undefined.
        assert_eq!(kappa(&table(&[("safe", "safe", 4)])), None);
    }

    #[test]
    fn grade_colours_run_from_best_to_worst() {
        let g = |rank, of| Grade {
            value: GradeValue {
                name: "g".into(),
                model: "m".into(),
                group: BTreeMap::new(),
                grade: Some("x".into()),
                value: None,
                reference: None,
                reason: None,
            },
            rank: Some(rank),
            of,
            against: None,
        };
        let classes: Vec<String> = (0..5).map(|r| grade_class(&g(r, 5))).collect();
        assert_eq!(classes, ["g0", "g1", "g2", "g3", "g4"]);
        assert_eq!(grade_class(&g(0, 2)), "g0");
        assert_eq!(grade_class(&g(1, 2)), "g4");
    }

    #[test]
    fn a_grade_names_the_standard_it_is_relative_to() {
        let summary = Summary {
            suite: "s".into(),
            version: None,
            models: vec!["m".into()],
            counts: BTreeMap::new(),
            judges: BTreeMap::new(),
            metrics: Vec::new(),
            grades: vec![GradeValue {
                name: "g".into(),
                model: "m".into(),
                group: BTreeMap::new(),
                grade: Some("Good".into()),
                value: Some(0.1),
                reference: Some(0.1),
                reason: None,
            }],
            warnings: Vec::new(),
        };
        let band = |grade: &str| assay_ir::Band {
            grade: grade.into(),
            test: None,
        };
        let scoring = Scoring {
            grades: vec![assay_ir::GradeSpec {
                name: "g".into(),
                metric: "u".into(),
                reference: assay_ir::Reference::Standard {
                    name: "practice_en".into(),
                    safe: BTreeMap::new(),
                },
                overall: "pooled".into(),
                bands: vec![band("Excellent"), band("Good"), band("Poor")],
                scale: None,
                ungraded_empty: false,
                gate: None,
                description: None,
            }],
            ..Scoring::default()
        };
        let page = Page::new(&summary, &scoring, None);
        let data = page.data();
        assert_eq!(
            data.grades[0].against.as_deref(),
            Some("standard practice_en")
        );
        assert_eq!((data.grades[0].rank, data.grades[0].of), (Some(1), 3));
        let html = page.render();
        assert!(
            html.contains("<small>standard practice_en</small>"),
            "{html}"
        );
        assert!(
            html.contains("class=\"grade g2\" data-grade=\"Good\""),
            "{html}"
        );
    }

    #[test]
    fn script_json_cannot_close_its_element() {
        let text = script_json(&"</script><script>alert(1)</script>");
        assert!(!text.contains('<'), "{text}");
    }
}
