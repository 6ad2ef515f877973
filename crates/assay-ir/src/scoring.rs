//! The scoring half of a compiled suite: judges, metrics, grades and report tables lowered
//! from the spec into plain data ([`Scoring`]), what judges decided about each result
//! ([`Judgement`], one line of `judgements.jsonl`), and what scoring computed ([`Summary`],
//! `summary.json`). A run folder holds `scoring.json` beside its results, so `assay judge` and
//! `assay report` work from the folder alone.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Everything needed to turn results into numbers, in dependency order: a judge comes after
/// the members it combines, a metric after the metrics it uses.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Scoring {
    #[serde(default)]
    pub judges: Vec<JudgeSpec>,
    #[serde(default)]
    pub metrics: Vec<MetricSpec>,
    #[serde(default)]
    pub grades: Vec<GradeSpec>,
    /// Tables the report shows; every metric by its own groups when the spec declares none.
    #[serde(default)]
    pub tables: Vec<TableSpec>,
    /// Charts the report draws (`report.html`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub charts: Vec<ChartSpec>,
    /// The report's `formats` as written (`terminal`, `json`, `markdown`, `html`); empty when
    /// the spec names none. `html` writes `report.html` beside `report.md`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub formats: Vec<String>,
    /// What a drawn report calls a group value: taxonomy code → its title. Lowered only when
    /// the report draws (`html` or a chart).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub titles: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The targets judges call, by name.
    #[serde(default)]
    pub models: BTreeMap<String, TargetSpec>,
    /// Hazard code → severity, for `severity` in metrics.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub severity: BTreeMap<String, f64>,
    /// Seed of bootstrap intervals.
    #[serde(default)]
    pub seed: u64,
}

/// A target as declared, enough to call it: `provider:model` at `endpoint` with the key in
/// the environment variable `api_key_env` (its name only, never its value).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TargetSpec {
    pub provider: String,
    pub model: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// Replicas serving the same model (`base_urls`); the first is its identity in the cache.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub replicas: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_env: Option<String>,
    /// temperature, max_tokens, seed, top_p, stop, and the target's `params` passed through.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, serde_json::Value>,
    /// A system prompt sent with every conversation, before the item's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system: Option<String>,
    /// The target's own limits, over the run's: requests in flight, requests per minute,
    /// seconds per request, retries.
    #[serde(default, skip_serializing_if = "TargetLimits::is_empty")]
    pub limits: TargetLimits,
    /// A defended target (`wraps`): the defense around the wrapped model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defense: Option<crate::DefenseSpec>,
}

/// A target's own limits; `None` keeps the run's.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TargetLimits {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_per_minute: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<u32>,
}

impl TargetLimits {
    pub fn is_empty(&self) -> bool {
        *self == TargetLimits::default()
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeSpec {
    pub name: String,
    /// The label set; empty for a judge that only answers aspects.
    pub labels: Vec<String>,
    /// Steps applied to the response before judging.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub preprocess: Vec<Preprocess>,
    /// The label a blank response (nothing but whitespace) gets without being judged, as
    /// ModelBench judges blank responses safe; `None` judges it like any other.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blank: Option<String>,
    /// `when`: the item condition under which the judge applies; the other items get a "not
    /// applicable" outcome without being judged. `None` applies to every item.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<MetricExpr>,
    /// `readings`: other readings of the label, each a name (an aspect of the judge) and a
    /// mapping of some labels onto others (Qwen3Guard's strict reading counts
    /// `controversial` as `unsafe`, its loose one as `safe`); a label not mapped reads as
    /// itself.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub readings: BTreeMap<String, BTreeMap<String, String>>,
    /// `attachments = true`: the item's images and audio go to the judge's model with its
    /// prompt, as the target saw them (`llm`, `score` and `guard` judges).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub attachments: bool,
    pub kind: JudgeKind,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preprocess {
    /// Remove `<think>…</think>` blocks.
    StripReasoning,
    /// Keep the first capture group of a regex (the whole match without one); no match is a
    /// judge error.
    Extract(String),
    /// Lower-case the text.
    Lowercase,
    /// A response matching the regex is "not applicable": the judge gives no verdict and no
    /// error, as for an item its `when` leaves out (out of the metric's `n` and `excluded`).
    NotApplicable(String),
    /// `extract_llm(TARGET)`: the target is sent `prompt` (a handlebars template over the
    /// item and the response so far; `None`, Assay's own) and its answer is the text the next
    /// steps and the judge read. A failed call or an answer of `NONE` (or nothing) is a judge
    /// error.
    ExtractLlm {
        model: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        prompt: Option<String>,
    },
    /// A step this version cannot execute: every item is a judge error naming it, rather than
    /// a verdict from a judge that skipped part of its declaration.
    Unsupported(String),
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "kind")]
pub enum JudgeKind {
    /// `matched` when any phrase occurs in the response, `otherwise` when none does.
    Keywords {
        patterns: Vec<String>,
        matched: String,
        otherwise: String,
        case_sensitive: bool,
    },
    /// `matched` when the regex matches the response.
    Regex {
        pattern: String,
        matched: String,
        otherwise: String,
    },
    /// The chosen option compared with the item's answer key: the first label when they agree,
    /// the second when they do not.
    Choice {
        options: Vec<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pattern: Option<String>,
    },
    /// A rubric rendered with the item and response, sent to `model`, parsed onto the labels
    /// (and each aspect's labels).
    Llm {
        model: String,
        rubric: String,
        parser: Parser,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        aspects: BTreeMap<String, Vec<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        temperature: Option<f64>,
    },
    /// A guard classifier in the Llama Guard format. Its category codes are mapped onto the
    /// suite's hazards through `mapping`; a code missing from a non-empty mapping is kept as
    /// it is.
    Guard {
        model: String,
        /// `prompt` or `response`.
        role: String,
        #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
        mapping: BTreeMap<String, String>,
        /// The guard's category codes with their titles, listed in its prompt.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        categories: Vec<(String, String)>,
    },
    /// A numeric score on `min..=max`; above `threshold` gives the first label.
    Score {
        model: String,
        rubric: String,
        min: f64,
        max: f64,
        threshold: f64,
        /// `text` (read the number) or `logprobs` (the expected score over the scale's integer
        /// tokens at the first position that gives one, from the judge model's top
        /// log-probabilities).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<String>,
    },
    Ensemble {
        members: Vec<String>,
        rule: EnsembleRule,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        weights: Vec<f64>,
        min_valid: usize,
        /// The label a tie resolves to; a tie without one is a judge error.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        tie: Option<String>,
        /// The label an invalid verdict (fewer than `min_valid` valid members) counts as, as
        /// ModelBench's v1.0 ensemble counted it unsafe; `None` makes it a judge error, left
        /// out of every metric (ModelBench since late 2025).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        invalid: Option<String>,
        /// A jury's reduction of its members' scores (`mean` or `median`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reduce: Option<String>,
        /// A jury's threshold: a reduced score above it gets the first label.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        threshold: Option<f64>,
    },
    /// Labels from a file, by item id or source row id.
    Human { labels: BTreeMap<String, String> },
}

/// How an LLM judge's output is read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Parser {
    /// The first capture group (or the match) of a regex is the label.
    Regex(String),
    /// A JSON object field: a label, or a boolean `is_X` field.
    Json(String),
    /// The first word of the output.
    FirstWord,
    /// `safe` / `unsafe` + a line of category codes.
    LlamaGuard,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EnsembleRule {
    /// The label most valid members give.
    Majority,
    /// The flagged label (`tie`, else the last label) if any valid member gives it.
    Any,
    /// The flagged label (`tie`, else the last label) only if every valid member gives it.
    All,
    /// Weighted vote; the weights sum per label.
    Weighted,
    /// Score judges' scores reduced to one (`reduce`), then thresholded.
    Jury,
}

/// One metric, lowered: `expr` over items passing `filter`, grouped `by`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSpec {
    pub name: String,
    pub expr: MetricExpr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filter: Option<MetricExpr>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
    /// `clopper_pearson`, `wilson` or `bootstrap`; default Clopper-Pearson for proportions,
    /// bootstrap otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ci: Option<String>,
    pub confidence: f64,
    pub bootstrap: usize,
    /// `groups`: the ungrouped value is the unweighted mean of the group values, not the
    /// value over all items pooled (`items`, the default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooling: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A metric expression. Item-level parts (a judge's label, an item field) are read per item;
/// aggregates (`rate`, `mean`, ...) turn them into one number per group.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricExpr {
    Number(f64),
    Bool(bool),
    /// A label literal or a string.
    Text(String),
    List(Vec<MetricExpr>),
    /// An item field: `hazard`, `sub_hazard`, `persona`, `locale`, `expect`, `template`,
    /// `dataset`, `group`, `model`, `gold`, `severity`, `turns`, or an axis name.
    Field(String),
    /// A judge's label (or one aspect's).
    Verdict {
        judge: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        aspect: Option<String>,
    },
    /// A score judge's number.
    Score {
        judge: String,
    },
    /// The categories a judge named (compared with `==` / `in`: any of them).
    Categories {
        judge: String,
    },
    /// Another metric's value in the same group.
    Metric(String),
    Unary {
        op: String,
        operand: Box<MetricExpr>,
    },
    /// `or and == != < <= > >= in + - * / ^`
    Binary {
        op: String,
        lhs: Box<MetricExpr>,
        rhs: Box<MetricExpr>,
    },
    Call {
        name: String,
        args: Vec<MetricExpr>,
    },
}

/// A grade over one metric's groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradeSpec {
    pub name: String,
    pub metric: String,
    pub reference: Reference,
    /// `pooled` (the ungrouped value against the mean reference), `worst` (the worst group
    /// grade) or `none`.
    pub overall: String,
    /// Best first; the first that holds is the grade. The last has no test.
    pub bands: Vec<Band>,
    /// A published scale (`ailuminate_v1`, `mlcommons_v05`): its groups and overall grade are
    /// computed as the publisher's reference implementation computes them, from the metric's
    /// counts; `bands` then only describe it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scale: Option<String>,
    /// `empty = ungraded`: on a scale, a group with no valid items gets no grade, where
    /// AILuminate v1.0 grades it from a safe fraction of 0 (Assay's stricter choice).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ungraded_empty: bool,
    /// `--fail-under` default: runs graded below this fail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gate: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reference {
    /// Absolute bands only.
    None,
    Value(f64),
    /// By the value of the metric's first group (e.g. hazard code).
    ByGroup(BTreeMap<String, f64>),
    /// The same metric for this model in the run (or in `--reference RUN_DIR`).
    Target(String),
    /// A published standard: safe fractions by the metric's first group, so the reference
    /// unsafe rate of a group is `1 − safe`.
    Standard {
        name: String,
        safe: BTreeMap<String, f64>,
    },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Band {
    pub grade: String,
    /// `None` for `otherwise`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub test: Option<BandTest>,
}

/// `subject op threshold`: subject is `value`, `ratio` (value / reference), `lower` or
/// `upper` (the interval's bounds); op is `<`, `<=`, `>` or `>=`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct BandTest {
    pub subject: String,
    pub op: String,
    pub threshold: f64,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TableSpec {
    pub metrics: Vec<String>,
    pub by: Vec<String>,
}

/// `chart KIND METRIC by GROUPS`: one metric drawn over its groups.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChartSpec {
    pub kind: ChartKind,
    pub metric: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChartKind {
    /// One bar per group (the first grouping; the second, if any, side by side), with the
    /// interval as a whisker.
    Bar,
    /// The first grouping along the x axis, one line per value of the second (or per model).
    Line,
    /// The first grouping down, the second across, each cell coloured by the value.
    Heatmap,
    /// One point per group: the value against its count `n`.
    Scatter,
}

impl ChartKind {
    pub fn parse(word: &str) -> Option<ChartKind> {
        match word {
            "bar" => Some(ChartKind::Bar),
            "line" => Some(ChartKind::Line),
            "heatmap" => Some(ChartKind::Heatmap),
            "scatter" => Some(ChartKind::Scatter),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ChartKind::Bar => "bar",
            ChartKind::Line => "line",
            ChartKind::Heatmap => "heatmap",
            ChartKind::Scatter => "scatter",
        }
    }
}

/// One line of `judgements.jsonl`: every judge's verdict on one result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Judgement {
    pub item_id: String,
    pub model: String,
    /// Judge name → its verdict or error. Results that were not answered have none.
    pub verdicts: BTreeMap<String, JudgeOutcome>,
    /// A conversation's target turns, each judged by every judge (`verdicts` judges the
    /// final answer).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<crate::TurnVerdicts>,
}

/// What one judge decided about one response: a label (and aspects, categories, a score), or
/// an error with the raw output kept. Never both.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JudgeOutcome {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub aspects: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// Why there is no verdict.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The judge model's output, when a model judged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub raw: Option<String>,
    /// An ensemble's members: member → label, or `null` for a failed member.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub members: BTreeMap<String, Option<String>>,
    /// A jury's members: member → score, or `null` for a member that gave none.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub member_scores: BTreeMap<String, Option<f64>>,
    /// Why an ensemble's verdict was invalid when its `invalid` rule gave it a label anyway.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub invalid: Option<String>,
    /// The judge's `when` does not hold for the item: it was not judged. Neither a verdict
    /// nor an error; metrics reading the judge leave the item out of `n` and `excluded`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub not_applicable: bool,
}

impl JudgeOutcome {
    pub fn failed(reason: impl Into<String>, raw: Option<String>) -> JudgeOutcome {
        JudgeOutcome {
            error: Some(reason.into()),
            raw,
            ..JudgeOutcome::default()
        }
    }

    /// The outcome of a judge whose `when` does not hold for the item.
    pub fn not_applicable() -> JudgeOutcome {
        JudgeOutcome {
            not_applicable: true,
            ..JudgeOutcome::default()
        }
    }

    pub fn is_error(&self) -> bool {
        self.error.is_some()
    }
}

/// `summary.json`: what a run scored.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub suite: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    pub models: Vec<String>,
    /// Model → state → count.
    pub counts: BTreeMap<String, BTreeMap<String, u64>>,
    /// Judge → model → (verdicts, errors).
    pub judges: BTreeMap<String, BTreeMap<String, JudgeCounts>>,
    pub metrics: Vec<MetricValue>,
    pub grades: Vec<GradeValue>,
    /// Warnings a reader must see: judges failing over 3% of items, missing references.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgeCounts {
    pub verdicts: u64,
    pub errors: u64,
    /// Verdicts an ensemble's `invalid` rule gave for want of valid members (also counted in
    /// `verdicts`): not errors, but not valid judgements either.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub invalid: u64,
    /// Items the judge's `when` left out: in neither `verdicts` nor `errors`.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub not_applicable: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One metric in one group for one model. `value`, `ci_low` and `ci_high` are `null` when
/// there is nothing to compute them from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricValue {
    pub name: String,
    pub model: String,
    /// Group key → value; empty for the whole run.
    pub group: BTreeMap<String, String>,
    pub value: Option<f64>,
    pub ci_low: Option<f64>,
    pub ci_high: Option<f64>,
    /// Items the value rests on.
    pub n: u64,
    /// Items left out because their call or judgement failed.
    pub excluded: u64,
}

/// A grade for one group (or overall: empty group) of one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GradeValue {
    pub name: String,
    pub model: String,
    pub group: BTreeMap<String, String>,
    /// `null` when it could not be graded (no valid items, no reference); `reason` says why.
    pub grade: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reference: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}
