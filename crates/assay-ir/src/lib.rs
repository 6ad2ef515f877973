//! `assay-ir`: the compiled suite as plain data. A compiled suite is a folder with
//! `manifest.json` ([`Manifest`]) and `items.jsonl` (one [`Item`] per line). Expansion writes
//! these types, the runner and `assay diff` read them. No logic lives here beyond
//! (de)serialisation: every map is a `BTreeMap` and every field has a fixed order, so the same
//! values always serialise to the same bytes.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

mod program;
mod scoring;
pub use program::*;
pub use scoring::*;

/// The version of the compiled-suite format; bumped when a field changes meaning.
pub const FORMAT_VERSION: u32 = 1;

/// One test item: what is sent to the model, what it is about, and what is expected.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Item {
    /// Content hash of everything below except `key` and `source`: equal ids mean equal items.
    pub id: String,
    /// Where the item came from and at which coordinates, e.g. `sst/sst_001/system_prompt=none`.
    /// Stable across versions of a spec, so `assay diff` can tell a changed item from a new one.
    pub key: String,
    /// The template or dataset that produced the item.
    pub source: String,
    pub messages: Vec<Message>,
    pub labels: Labels,
    pub expect: Expect,
    /// A recorded response (guard and judge evaluation): judged without a target call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// A gold label (human annotation) for judge evaluation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    /// Variant group: items sharing it are scored together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The conversation program the item runs under; single turn when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub program: Option<String>,
    /// A defense around whatever target runs the item (a `defense` axis).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub defense: Option<DefenseSpec>,
    /// Images and audio sent with the item's first user turn.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, serde_json::Value>,
}

/// An image or audio clip sent with a prompt, by reference: its bytes are read when the item
/// is run (from `path`, relative to the package, or from `data` when the dataset held them),
/// and checked against `sha256`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attachment {
    pub kind: MediaKind,
    /// `image/png`, `image/jpeg`, `image/webp`, `image/gif`, `audio/wav` or `audio/mpeg`.
    pub media_type: String,
    pub sha256: String,
    pub bytes: u64,
    /// The file, relative to the package root.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub path: Option<String>,
    /// Where the file is published, pinned by `sha256`: compiling downloads it into the data
    /// cache (`<cache>/<sha256>`), where runs and judges read it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// The bytes as base64, when the dataset gave them rather than a file (kept out of
    /// results, which name the attachment by its hash).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Image,
    Audio,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    User,
    Assistant,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
}

/// What an item is about: the values metrics group by.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Labels {
    /// The taxonomy the hazard codes belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taxonomy: Option<String>,
    /// Top-level hazard code; a sub-code folds into its parent here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hazard: Option<String>,
    /// The sub-hazard code, when the item is tagged with one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_hazard: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub persona: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
    /// Coordinates on every axis the item was crossed with: axis → variant.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub axes: BTreeMap<String, String>,
}

/// The expected behaviour.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    /// The model must refuse or answer safely.
    #[default]
    Refuse,
    /// The model should help (over-refusal tests).
    Comply,
    /// A multiple-choice item: the answer key.
    Answer(String),
}

impl Expect {
    /// The word metrics compare against: `refuse`, `comply` or `answer`.
    pub fn as_str(&self) -> &str {
        match self {
            Expect::Refuse => "refuse",
            Expect::Comply => "comply",
            Expect::Answer(_) => "answer",
        }
    }
}

/// `manifest.json`: what a compiled suite is and what it was built from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub suite: SuiteInfo,
    /// The assay version that compiled the suite.
    pub assay_version: String,
    /// The seed every sampled generator without its own seed derives from.
    pub seed: u64,
    /// Hash over every spec file and dataset below: equal when the inputs are equal.
    pub spec_hash: String,
    /// Every file the suite reads (specs, prompts, rubrics, fragment lists), package-relative,
    /// with its sha256.
    pub files: BTreeMap<String, String>,
    pub datasets: BTreeMap<String, DatasetInfo>,
    /// BLAKE3 hash of `items.jsonl` (`b3sum items.jsonl`): the file is hashed as it streams
    /// out, and BLAKE3 keeps that cheap for millions of items.
    pub items_blake3: String,
    pub counts: Counts,
    pub judges: Vec<JudgeInfo>,
    pub metrics: Vec<MetricInfo>,
    /// Judges, metrics, grades and report tables, ready to execute.
    #[serde(default)]
    pub scoring: Scoring,
    /// The conversation programs items run under, by name.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub programs: BTreeMap<String, ProgramSpec>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SuiteInfo {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub license: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetInfo {
    pub sha256: String,
    pub rows: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// Item counts, in total and per label.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counts {
    pub items: u64,
    /// Items dropped because an earlier item had the same id.
    pub duplicates: u64,
    pub by_source: BTreeMap<String, u64>,
    pub by_hazard: BTreeMap<String, u64>,
    pub by_persona: BTreeMap<String, u64>,
    pub by_locale: BTreeMap<String, u64>,
    /// Axis → variant → count.
    pub by_axis: BTreeMap<String, BTreeMap<String, u64>>,
}

impl Counts {
    /// Counts one item.
    pub fn add(&mut self, item: &Item) {
        self.items += 1;
        let labels = &item.labels;
        bump(&mut self.by_source, &item.source);
        bump(
            &mut self.by_hazard,
            labels.hazard.as_deref().unwrap_or("(none)"),
        );
        if let Some(persona) = &labels.persona {
            bump(&mut self.by_persona, persona);
        }
        if let Some(locale) = &labels.locale {
            bump(&mut self.by_locale, locale);
        }
        for (axis, variant) in &labels.axes {
            match self.by_axis.get_mut(axis) {
                Some(variants) => bump(variants, variant),
                None => {
                    let mut variants = BTreeMap::new();
                    bump(&mut variants, variant);
                    self.by_axis.insert(axis.clone(), variants);
                }
            }
        }
    }
}

/// Adds one to a count, allocating the key only the first time it is seen.
fn bump(counts: &mut BTreeMap<String, u64>, key: &str) {
    match counts.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            counts.insert(key.to_string(), 1);
        }
    }
}

/// A judge as declared: enough for a reader to know what will score the items.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JudgeInfo {
    pub name: String,
    pub kind: String,
    pub labels: Vec<String>,
    /// The declaration's source text.
    pub source: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricInfo {
    pub name: String,
    pub by: Vec<String>,
    pub source: String,
}

/// How one item ended for one model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    /// The model answered (or the item carried a recorded response).
    Ok,
    /// The call failed after every retry; never counted as a verdict.
    Error,
    /// The provider refused by content filter: no text to judge.
    Filtered,
    /// Not run, with the reason in `error`.
    Skipped,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Ok => "ok",
            State::Error => "error",
            State::Filtered => "filtered",
            State::Skipped => "skipped",
        }
    }
}

/// Tokens a call used, as the provider reported them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// One line of `results.jsonl`: one item run against one model.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultRecord {
    pub item_id: String,
    pub model: String,
    pub state: State,
    /// The item's key and source (template or dataset), as in the compiled suite.
    #[serde(default)]
    pub key: String,
    #[serde(default)]
    pub source: String,
    pub labels: Labels,
    #[serde(default)]
    pub expect: Expect,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gold: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub group: Option<String>,
    /// The dataset row's own id, when it has one (`metadata.source_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_id: Option<String>,
    /// The conversation sent, ending with the last user turn.
    pub messages: Vec<Message>,
    /// The item's attachments, by reference (no bytes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<Attachment>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub response: Option<String>,
    /// Why the item ended in `error`, `filtered` or `skipped`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cost: Option<f64>,
    /// Whether the response came from the cache (no call was made).
    #[serde(default)]
    pub cached: bool,
    /// A conversation program's transcript: every turn made, in order, including turns
    /// dropped from the final conversation (backtracked, pruned, blocked).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub turns: Vec<TurnRecord>,
    /// The index in `turns` of the final answer (`response`): in a tree or streams, the turn
    /// of the branch the conversation ended on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_turn: Option<usize>,
    /// Why a conversation ended: the stop condition that held, or the budget reached.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop: Option<String>,
    /// The round a conversation failed at, with `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed_turn: Option<u32>,
    /// Model calls a conversation made (target, attacker, in-loop judges, guards, rewrites),
    /// journal and cache hits included.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub calls: Option<u64>,
}

/// `run.json`: what was run, how, and how it ended.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunInfo {
    pub suite: SuiteInfo,
    /// Hash of the compiled suite's items (`items_blake3` of its manifest).
    pub items_hash: String,
    /// Hash of the spec files and datasets the suite was built from (`spec_hash` of its
    /// manifest), to reproduce it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,
    pub models: Vec<String>,
    pub params: BTreeMap<String, serde_json::Value>,
    /// RFC 3339 times.
    pub started: String,
    pub finished: String,
    pub items: u64,
    /// State → count, over items × models.
    pub counts: BTreeMap<String, u64>,
    pub usage: Usage,
    /// Calls actually sent (not served from the cache or the journal).
    pub calls: u64,
}
