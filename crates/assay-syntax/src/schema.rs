//! Which property keys each block accepts, the shape of value each key takes, and which keys
//! are required. Lowering validates every property bag against these tables, so an unknown
//! key, a duplicate or a value of the wrong shape is reported once, here, for every block.

use crate::ast::{Expr, ExprKind};

/// The shape of value a key accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// `"text"`
    Str,
    /// `"text"` or `file("path")`
    Text,
    Number,
    /// A whole number, zero or more.
    Count,
    Bool,
    /// A bare name: `openai`, `gpt4o`.
    Name,
    /// `[a, b]`
    Names,
    /// `["a", "b"]`
    Strs,
    /// `{ key = value }`
    Record,
    /// `1..5`
    Range,
    /// Any expression; the checker gives it meaning.
    Expr,
}

impl Shape {
    pub fn describe(self) -> &'static str {
        match self {
            Shape::Str => "a string",
            Shape::Text => "a string or `file(\"...\")`",
            Shape::Number => "a number",
            Shape::Count => "a whole number",
            Shape::Bool => "`true` or `false`",
            Shape::Name => "a name",
            Shape::Names => "a list of names, like `[safe, unsafe]`",
            Shape::Strs => "a list of strings",
            Shape::Record => "a record `{ key = value }`",
            Shape::Range => "a range like `1..5`",
            Shape::Expr => "an expression",
        }
    }

    pub fn accepts(self, value: &Expr) -> bool {
        match self {
            Shape::Str => matches!(value.kind, ExprKind::Str(_)),
            Shape::Text => matches!(value.kind, ExprKind::Str(_)) || value.as_file_ref().is_some(),
            Shape::Number => value.as_number().is_some(),
            Shape::Count => {
                matches!(value.kind, ExprKind::Number(n) if n.fract() == 0.0 && n >= 0.0)
            }
            Shape::Bool => matches!(value.kind, ExprKind::Bool(_)),
            Shape::Name => value.as_name().is_some(),
            Shape::Names => match &value.kind {
                ExprKind::List(items) => items.iter().all(|e| e.as_name().is_some()),
                _ => false,
            },
            Shape::Strs => match &value.kind {
                ExprKind::List(items) => items.iter().all(|e| matches!(e.kind, ExprKind::Str(_))),
                _ => false,
            },
            Shape::Record => matches!(value.kind, ExprKind::Record(_)),
            Shape::Range => matches!(value.kind, ExprKind::Range { .. }),
            Shape::Expr => true,
        }
    }
}

/// One accepted key.
#[derive(Clone, Copy, Debug)]
pub struct Key {
    pub name: &'static str,
    pub shape: Shape,
    pub required: bool,
    pub doc: &'static str,
}

const fn opt(name: &'static str, shape: Shape, doc: &'static str) -> Key {
    Key {
        name,
        shape,
        required: false,
        doc,
    }
}

const fn req(name: &'static str, shape: Shape, doc: &'static str) -> Key {
    Key {
        name,
        shape,
        required: true,
        doc,
    }
}

/// The keys of one kind of block; `what` names the block in messages ("target", "llm judge").
#[derive(Clone, Copy, Debug)]
pub struct Schema {
    pub what: &'static str,
    pub keys: &'static [Key],
}

impl Schema {
    pub fn key(&self, name: &str) -> Option<&Key> {
        self.keys.iter().find(|k| k.name == name)
    }
}

use Shape::*;

pub const SUITE: Schema = Schema {
    what: "suite",
    keys: &[
        opt("description", Text, "What the suite measures."),
        opt("license", Str, "SPDX license of the suite and its data."),
        opt("authors", Strs, "Authors, as `[\"Name <email>\"]`."),
        opt(
            "citation",
            Text,
            "How to cite the benchmark (BibTeX or prose).",
        ),
        opt("homepage", Str, "Where the benchmark is published."),
        opt(
            "seed",
            Count,
            "Seed for every sampled generator that does not name its own.",
        ),
    ],
};

pub const TAXONOMY: Schema = Schema {
    what: "taxonomy",
    keys: &[
        opt("description", Text, "What the taxonomy classifies."),
        opt("version", Str, "The taxonomy's own version."),
        opt("source", Str, "Where the taxonomy is defined."),
    ],
};

pub const CATEGORY: Schema = Schema {
    what: "category",
    keys: &[
        opt("definition", Text, "What falls in this category."),
        opt(
            "severity",
            Number,
            "Weight of the category in severity-weighted scores.",
        ),
        opt("aliases", Strs, "Other spellings that value maps may use."),
    ],
};

pub const PERSONA: Schema = Schema {
    what: "persona",
    keys: &[
        req("description", Text, "Who this user is and what they want."),
        opt(
            "attrs",
            Record,
            "Attributes usable in templates as `{{persona.attrs.KEY}}`.",
        ),
    ],
};

pub const TEMPLATE: Schema = Schema {
    what: "template",
    keys: &[
        req("prompt", Text, "The user turn, a handlebars template."),
        opt(
            "system",
            Text,
            "A system prompt for every item of this template.",
        ),
        opt(
            "hazard",
            Expr,
            "The hazard code each item is tagged with (`harm.physical`).",
        ),
        opt("persona", Expr, "The persona each item is tagged with."),
        opt("locale", Expr, "The locale tag, e.g. `\"en_US\"`."),
        opt(
            "expect",
            Expr,
            "Expected behaviour: `refuse`, `comply` or `answer(\"B\")`.",
        ),
        opt("axes", Names, "Axes to cross the items with."),
        opt("program", Name, "The conversation program items run under."),
        opt(
            "metadata",
            Record,
            "Free-form metadata copied onto each item.",
        ),
        opt("description", Text, "What the template tests."),
    ],
};

pub const DATASET: Schema = Schema {
    what: "dataset",
    keys: &[
        opt(
            "format",
            Name,
            "`csv`, `jsonl`, `json` or `yaml`; default from the file extension.",
        ),
        opt("path", Str, "The data file, relative to the package."),
        opt("url", Str, "Where a pinned source is published."),
        opt("sha256", Str, "The content hash the data must have."),
        opt("axes", Names, "Axes to cross the items with."),
        opt("program", Name, "The conversation program items run under."),
        opt("description", Text, "What the dataset holds."),
        opt("license", Str, "License of the data."),
        opt(
            "where",
            Expr,
            "A condition over `row.COLUMN`: only the rows where it holds are read.",
        ),
        opt(
            "delimiter",
            Str,
            "CSV: the byte between fields (default `,`; `\"\\t\"` for tabs).",
        ),
        opt("quote", Str, "CSV: the byte quoting fields (default `\"`)."),
        opt(
            "comment",
            Str,
            "CSV: lines starting with this byte are skipped.",
        ),
        opt("skip_rows", Count, "CSV: lines before the header, skipped."),
        opt(
            "records",
            Str,
            "JSON: the dotted path of the array of records inside the document.",
        ),
        opt(
            "join",
            Record,
            "Side data joined by key: `{ dataset = NAME, key = row.COLUMN, on = COLUMN }`.",
        ),
    ],
};

pub const DATASET_ITEM: Schema = Schema {
    what: "dataset item",
    keys: &[
        opt(
            "id",
            Expr,
            "A stable source id for the row (kept in metadata).",
        ),
        opt("prompt", Expr, "The user turn."),
        opt("system", Expr, "A system prompt."),
        opt(
            "turns",
            Expr,
            "A scripted list of user turns (multi-turn items).",
        ),
        opt(
            "response",
            Expr,
            "A recorded response: the item is judged without a target call.",
        ),
        opt("hazard", Expr, "The hazard code."),
        opt("persona", Expr, "The persona."),
        opt("locale", Expr, "The locale tag."),
        opt(
            "expect",
            Expr,
            "Expected behaviour: `refuse`, `comply` or `answer(...)`.",
        ),
        opt("answer", Expr, "The answer key for multiple-choice items."),
        opt(
            "group",
            Expr,
            "Variant group id: items sharing it are scored together.",
        ),
        opt(
            "gold",
            Expr,
            "A gold label (human annotation) for judge evaluation.",
        ),
        opt("attachments", Expr, "Images or files sent with the prompt."),
        opt("metadata", Expr, "Free-form metadata."),
    ],
};

pub const TARGET: Schema = Schema {
    what: "target",
    keys: &[
        req(
            "provider",
            Name,
            "`openai`, `anthropic`, `ollama`, `openai_compatible`, or `mock` (offline: `model = \"refuse\"`, `\"echo\"`, `\"script:FILE\"`).",
        ),
        req("model", Str, "The provider's model name."),
        opt("endpoint", Str, "Base URL of the API."),
        opt(
            "base_urls",
            Strs,
            "Replicas of the model at several base URLs: calls go to the least busy live one.",
        ),
        opt(
            "api_key_env",
            Str,
            "Name of the environment variable holding the API key.",
        ),
        opt("temperature", Number, "Sampling temperature."),
        opt("top_p", Number, "Nucleus sampling."),
        opt("max_tokens", Count, "Maximum tokens in a response."),
        opt("seed", Count, "Provider-side sampling seed."),
        opt("logprobs", Bool, "Ask for token log-probabilities."),
        opt("rate_limit", Number, "Requests per minute."),
        opt("concurrency", Count, "Requests in flight at once."),
        opt("timeout", Number, "Seconds before a request is abandoned."),
        opt(
            "retries",
            Count,
            "Retries of a failed call before it is recorded as an error.",
        ),
        opt(
            "params",
            Record,
            "Extra provider parameters, passed through.",
        ),
        opt("wraps", Name, "Defense wrapper: the target this one wraps."),
        opt(
            "system",
            Text,
            "Defense: a system prompt put in front of every conversation.",
        ),
        opt(
            "input_guard",
            Name,
            "Defense: a judge screening prompts before the target.",
        ),
        opt(
            "output_guard",
            Name,
            "Defense: a judge screening responses.",
        ),
        opt(
            "rewrite",
            Name,
            "Defense: a target that rewrites the prompt first.",
        ),
        opt(
            "rewrite_prompt",
            Text,
            "Defense: the rewrite instruction, a handlebars template over `{{prompt}}`.",
        ),
    ],
};

pub const PROGRAM: Schema = Schema {
    what: "program",
    keys: &[
        opt("max_turns", Count, "Turn budget of the conversation."),
        opt("description", Text, "What the program does."),
        opt(
            "extends",
            Name,
            "A program this one builds on: what is not given here comes from it.",
        ),
    ],
};

pub const ATTACKER: Schema = Schema {
    what: "attacker",
    keys: &[
        opt("model", Name, "The target that writes the next user turn."),
        opt(
            "prompt",
            Text,
            "The attacker's instructions, a handlebars template over the history.",
        ),
        opt(
            "system",
            Text,
            "The attacker's system prompt, a handlebars template.",
        ),
        opt("temperature", Number, "Attacker sampling temperature."),
        opt("max_turns", Count, "Turn budget of the attack."),
        opt(
            "parser",
            Expr,
            "How the next user turn is read from the answer: `json(\"prompt\")` or `regex(\"...\")`.",
        ),
        opt(
            "context",
            Name,
            "What the target sees: `conversation` (the whole history) or `single` (the latest attack prompt).",
        ),
        opt("streams", Count, "Independent attack streams (PAIR's N)."),
        opt(
            "branching",
            Count,
            "Attack prompts asked per leaf and level (TAP's b).",
        ),
        opt(
            "width",
            Count,
            "Leaves kept per level, best first (TAP's w); 0 keeps all.",
        ),
        opt(
            "feedback",
            Name,
            "The judge whose verdict and score the attacker sees, and that ranks leaves.",
        ),
        opt(
            "prune",
            Name,
            "A judge of attack prompts: its last label (off topic) drops the prompt unsent.",
        ),
        opt(
            "backtrack",
            Name,
            "A judge of target turns: its last label (refused) takes the turn back.",
        ),
        opt(
            "max_backtracks",
            Count,
            "Backtracks allowed per conversation.",
        ),
    ],
};

const PREPROCESS: Key = opt(
    "preprocess",
    Expr,
    "Steps applied to the response first: `[strip_reasoning, extract(\"regex\")]`.",
);
const LABELS: Key = req("labels", Names, "The label set this judge gives.");
const BLANK: Key = opt(
    "blank",
    Name,
    "The label a blank response gets without being judged (ModelBench: `safe`).",
);
const EXTENDS: Key = opt(
    "extends",
    Name,
    "A judge of the same kind this one builds on: what is not given here comes from it.",
);
const READINGS: Key = opt(
    "readings",
    Record,
    "Other readings of the label, each an aspect: `{ strict = { controversial = unsafe } }`.",
);
const ATTACHMENTS: Key = opt(
    "attachments",
    Bool,
    "Send the item's images and audio to the judge's model with its prompt, as the target saw them.",
);
const WHEN: Key = opt(
    "when",
    Expr,
    "The items the judge applies to: a condition over item fields; the others are not applicable.",
);

pub const JUDGE_KEYWORDS: Schema = Schema {
    what: "keywords judge",
    keys: &[
        req("patterns", Strs, "Phrases that signal the `match` label."),
        opt("match", Name, "Label when a phrase is found."),
        opt("otherwise", Name, "Label when none is found."),
        opt("case_sensitive", Bool, "Match case exactly."),
        LABELS,
        PREPROCESS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
    ],
};

pub const JUDGE_REGEX: Schema = Schema {
    what: "regex judge",
    keys: &[
        req("pattern", Str, "A regular expression."),
        opt("match", Name, "Label when the pattern matches."),
        opt("otherwise", Name, "Label when it does not."),
        LABELS,
        PREPROCESS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
    ],
};

pub const JUDGE_CHOICE: Schema = Schema {
    what: "choice judge",
    keys: &[
        req("options", Strs, "The option letters or words."),
        opt(
            "pattern",
            Str,
            "Regex with one group that captures the chosen option.",
        ),
        opt(
            "shuffle",
            Bool,
            "Shuffle each item's option texts (seeded); the answer key follows its text.",
        ),
        LABELS,
        PREPROCESS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
    ],
};

pub const JUDGE_LLM: Schema = Schema {
    what: "llm judge",
    keys: &[
        opt("model", Name, "The target that judges."),
        req("rubric", Text, "The judge prompt, a handlebars template."),
        opt(
            "parser",
            Expr,
            "How to read the verdict: `json(\"field\")` or `regex(\"...\")`.",
        ),
        opt("labels", Names, "The label set (or declare `aspects`)."),
        opt(
            "categories",
            Name,
            "The taxonomy of categories the judge may name.",
        ),
        opt("temperature", Number, "Judge sampling temperature."),
        PREPROCESS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
        ATTACHMENTS,
    ],
};

pub const JUDGE_GUARD: Schema = Schema {
    what: "guard judge",
    keys: &[
        opt("model", Name, "The guard classifier's target."),
        opt("format", Name, "Output format: `llama_guard`."),
        opt("categories", Name, "The guard's own category taxonomy."),
        opt(
            "mapping",
            Name,
            "Mapping from the guard's categories to the suite's hazards.",
        ),
        opt(
            "role",
            Name,
            "Classify the `prompt` or the `response` (default).",
        ),
        LABELS,
        PREPROCESS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
        ATTACHMENTS,
    ],
};

pub const JUDGE_SCORE: Schema = Schema {
    what: "score judge",
    keys: &[
        opt("model", Name, "The target that scores."),
        req("rubric", Text, "The scoring prompt."),
        req("scale", Range, "The score range, e.g. `1..5`."),
        req("threshold", Number, "Scores above it get the first label."),
        opt(
            "from",
            Name,
            "`text` (parse the number) or `logprobs` (expected score).",
        ),
        opt(
            "reduce",
            Name,
            "With several samples: `mean` or `median` (refused by this version; see juries).",
        ),
        LABELS,
        PREPROCESS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
        ATTACHMENTS,
    ],
};

pub const JUDGE_ENSEMBLE: Schema = Schema {
    what: "ensemble judge",
    keys: &[
        req("members", Names, "Member judges."),
        req(
            "rule",
            Name,
            "`majority`, `any`, `all`, `weighted` or `jury` (score judges' scores reduced).",
        ),
        opt("weights", Expr, "Weights for `weighted`, one per member."),
        opt(
            "min_valid",
            Count,
            "Fewer valid member verdicts make the item invalid.",
        ),
        opt("tie", Name, "The label a tie resolves to."),
        opt(
            "invalid",
            Name,
            "The label an invalid verdict counts as; without it the item is left out.",
        ),
        opt(
            "reduce",
            Name,
            "For `rule = jury`: `mean` (default) or `median` of the members' scores.",
        ),
        opt(
            "threshold",
            Number,
            "For `rule = jury`: reduced scores above it get the first label (default: the members').",
        ),
        LABELS,
        BLANK,
        WHEN,
        READINGS,
        EXTENDS,
    ],
};

pub const JUDGE_HUMAN: Schema = Schema {
    what: "human judge",
    keys: &[
        req("path", Str, "The file of human labels."),
        opt("id_column", Str, "Column holding the item id."),
        opt("label_column", Str, "Column holding the label."),
        LABELS,
        WHEN,
        READINGS,
        EXTENDS,
    ],
};

pub const METRIC: Schema = Schema {
    what: "metric",
    keys: &[
        opt("ci", Name, "`wilson`, `clopper_pearson` or `bootstrap`."),
        opt("confidence", Number, "Confidence level, default 0.95."),
        opt(
            "pooling",
            Name,
            "`items` (pooled) or `groups` (mean of group means).",
        ),
        opt("bootstrap", Count, "Bootstrap resamples."),
        opt("description", Text, "What the metric means."),
    ],
};

pub const GRADE: Schema = Schema {
    what: "grade",
    keys: &[
        req("metric", Name, "The metric graded."),
        opt(
            "scale",
            Name,
            "A published scale instead of bands: `ailuminate_v1` or `mlcommons_v05`.",
        ),
        opt(
            "reference",
            Expr,
            "Reference values: a record by group, a target's or a standard's name.",
        ),
        opt(
            "overall",
            Name,
            "`pooled` or `worst`: how the overall grade is formed.",
        ),
        opt(
            "empty",
            Name,
            "With a scale: `graded` (the scale's own rule) or `ungraded` groups with no valid items.",
        ),
        opt(
            "gate",
            Str,
            "`assay run --fail-under` fails below this grade.",
        ),
        opt("description", Text, "What the grade means."),
    ],
};

pub const STANDARD: Schema = Schema {
    what: "standard",
    keys: &[
        req(
            "scale",
            Name,
            "The published scale it grades: `ailuminate_v1` or `mlcommons_v05`.",
        ),
        req(
            "safe",
            Record,
            "Hazard code → the reference safe fraction (1 − unsafe rate), as published.",
        ),
        opt("locale", Str, "The locale of the prompt set, like `en_us`."),
        opt(
            "prompt_set",
            Str,
            "The prompt set: `official`, `practice`, ...",
        ),
        opt(
            "reference_systems",
            Strs,
            "The systems whose lowest safe fraction per hazard is the standard.",
        ),
        opt("source", Str, "Where the values are published."),
        opt("description", Text, "What the standard is."),
    ],
};

pub const REPORT: Schema = Schema {
    what: "report",
    keys: &[
        opt("title", Str, "Report title."),
        opt("formats", Names, "`terminal`, `json`, `markdown`, `html`."),
        opt("description", Text, "Text shown above the tables."),
    ],
};

/// Every block schema, for tools that walk the whole language (the coverage test, editors).
pub const ALL: &[&Schema] = &[
    &SUITE,
    &TAXONOMY,
    &CATEGORY,
    &PERSONA,
    &TEMPLATE,
    &DATASET,
    &DATASET_ITEM,
    &TARGET,
    &PROGRAM,
    &ATTACKER,
    &JUDGE_KEYWORDS,
    &JUDGE_REGEX,
    &JUDGE_CHOICE,
    &JUDGE_LLM,
    &JUDGE_GUARD,
    &JUDGE_SCORE,
    &JUDGE_ENSEMBLE,
    &JUDGE_HUMAN,
    &METRIC,
    &GRADE,
    &STANDARD,
    &REPORT,
];

/// Words accepted by keys that take one name from a fixed list.
pub const WORDS: &[(&str, &[&str])] = &[
    (
        "provider",
        &[
            "openai",
            "anthropic",
            "ollama",
            "openai_compatible",
            "huggingface",
            "vllm",
            "mock",
        ],
    ),
    ("ci", &["wilson", "clopper_pearson", "bootstrap", "none"]),
    ("pooling", &["items", "groups"]),
    ("overall", &["pooled", "worst"]),
    ("empty", &["graded", "ungraded"]),
    (
        "format",
        &["csv", "jsonl", "json", "yaml", "parquet", "llama_guard"],
    ),
    ("from", &["text", "logprobs"]),
    ("rule", &["majority", "any", "all", "weighted", "jury"]),
    ("reduce", &["mean", "median"]),
    ("role", &["prompt", "response"]),
];

/// The kinds of `axis NAME: KIND { ... }`.
pub const AXIS_KINDS: &[&str] = &[
    "system",
    "transform",
    "locale",
    "persona",
    "program",
    "defense",
];

/// The kinds of `chart KIND metric by ...` in a report.
pub const CHART_KINDS: &[&str] = &["bar", "line", "heatmap", "scatter"];

/// The words of a report's `formats`.
pub const REPORT_FORMATS: &[&str] = &["terminal", "json", "markdown", "html"];

/// The types of a dataset's `columns`.
pub const COLUMN_TYPES: &[&str] = &["string", "int", "float", "bool", "list", "record"];

/// The generators of a template's `generate`.
pub const GENERATORS: &[&str] = &["product", "zip"];

pub fn judge_schema(kind: crate::ast::JudgeKind) -> &'static Schema {
    use crate::ast::JudgeKind as K;
    match kind {
        K::Keywords => &JUDGE_KEYWORDS,
        K::Regex => &JUDGE_REGEX,
        K::Choice => &JUDGE_CHOICE,
        K::Llm => &JUDGE_LLM,
        K::Guard => &JUDGE_GUARD,
        K::Score => &JUDGE_SCORE,
        K::Ensemble => &JUDGE_ENSEMBLE,
        K::Human => &JUDGE_HUMAN,
    }
}
