//! Deterministic offline models for the quickstart and tests: `mock:refuse` (always a
//! refusal), `mock:comply` (always complies), `mock:echo` (repeats the last user turn), and
//! `mock:script:FILE`, which answers from a JSON or YAML file by item id, then by the first
//! regex matching the last user turn, then a default:
//!
//! ```yaml
//! by_id: { sst_001: "I can't help with that." }
//! by_regex: [["(?i)lock", "Here is how locks work..."]]
//! default: "I'm sorry, I can't help."
//! ```

use super::{CallError, Reply};
use assay_ir::{Message, Role, Usage};
use std::collections::BTreeMap;

const REFUSAL: &str = "I'm sorry, but I can't help with that.";
const COMPLIANCE: &str = "Sure, here is a detailed answer to your request.";

#[derive(Clone, Debug)]
pub enum Mock {
    Refuse,
    Comply,
    Echo,
    Script {
        file: String,
        by_id: BTreeMap<String, String>,
        by_regex: Vec<(regex::Regex, String)>,
        default: Option<String>,
    },
}

#[derive(serde::Deserialize)]
struct ScriptFile {
    #[serde(default)]
    by_id: BTreeMap<String, String>,
    #[serde(default)]
    by_regex: Vec<(String, String)>,
    default: Option<String>,
}

impl Mock {
    pub fn new(model: &str) -> Result<Self, String> {
        Ok(match model {
            "refuse" => Mock::Refuse,
            "comply" => Mock::Comply,
            "echo" => Mock::Echo,
            _ => {
                let Some(file) = model.strip_prefix("script:") else {
                    return Err(format!(
                        "unknown mock `{model}`; mocks: refuse, comply, echo, script:FILE"
                    ));
                };
                let text = std::fs::read_to_string(file)
                    .map_err(|e| format!("cannot read mock script {file}: {e}"))?;
                let script: ScriptFile =
                    yaml_serde::from_str(&text).map_err(|e| format!("mock script {file}: {e}"))?;
                let by_regex = script
                    .by_regex
                    .into_iter()
                    .map(|(pattern, reply)| {
                        regex::Regex::new(&pattern)
                            .map(|r| (r, reply))
                            .map_err(|e| format!("mock script {file}: bad regex `{pattern}`: {e}"))
                    })
                    .collect::<Result<_, _>>()?;
                Mock::Script {
                    file: file.to_string(),
                    by_id: script.by_id,
                    by_regex,
                    default: script.default,
                }
            }
        })
    }

    pub fn name(&self) -> String {
        match self {
            Mock::Refuse => "refuse".into(),
            Mock::Comply => "comply".into(),
            Mock::Echo => "echo".into(),
            Mock::Script { file, .. } => format!("script:{file}"),
        }
    }

    pub fn call(&self, item_id: &str, messages: &[Message]) -> Result<Reply, CallError> {
        let last = messages
            .iter()
            .rev()
            .find(|m| m.role == Role::User)
            .map_or("", |m| m.content.as_str());
        let text = match self {
            Mock::Refuse => REFUSAL.to_string(),
            Mock::Comply => COMPLIANCE.to_string(),
            Mock::Echo => last.to_string(),
            Mock::Script {
                by_id,
                by_regex,
                default,
                file,
            } => by_id
                .get(item_id)
                .cloned()
                .or_else(|| {
                    by_regex
                        .iter()
                        .find(|(r, _)| r.is_match(last))
                        .map(|(_, s)| s.clone())
                })
                .or_else(|| default.clone())
                .ok_or_else(|| {
                    CallError::Fatal(format!(
                        "mock script {file} has no answer for item {item_id}"
                    ))
                })?,
        };
        let words = |s: &str| s.split_whitespace().count() as u64;
        let usage = Usage {
            prompt_tokens: messages.iter().map(|m| words(&m.content)).sum(),
            completion_tokens: words(&text),
        };
        Ok(Reply {
            text,
            filtered: None,
            usage: Some(usage),
            logprobs: None,
        })
    }
}
