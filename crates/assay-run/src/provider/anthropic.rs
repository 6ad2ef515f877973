//! Anthropic Messages (`POST {base}/v1/messages`, `anthropic-version: 2023-06-01`). Base URL
//! from the target's `endpoint` or `ANTHROPIC_BASE_URL`; key from `api_key_env` or
//! `ANTHROPIC_API_KEY`. The system prompt is a top-level field; `max_tokens` is required by
//! the API and defaults to 1024.

use super::{
    Answer, CallError, CallLimits, Endpoint, Params, Reply, base_url, http_error, json_body,
    key_from_env, malformed, send,
};
use assay_ir::{Message, Role, Usage};
use serde_json::json;

#[derive(Clone, Debug)]
pub struct Anthropic {
    pub model: String,
    pub base_url: String,
    pub(super) key_env: String,
    client: reqwest::Client,
}

impl Anthropic {
    pub fn new(model: &str, endpoint: &Endpoint, client: reqwest::Client) -> Self {
        Anthropic {
            model: model.to_string(),
            base_url: base_url(endpoint, "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
            key_env: endpoint
                .api_key_env
                .clone()
                .unwrap_or_else(|| "ANTHROPIC_API_KEY".into()),
            client,
        }
    }

    pub async fn call(
        &self,
        messages: &[Message],
        params: &Params,
        limits: CallLimits,
        media: &[super::Media],
    ) -> Result<Reply, CallError> {
        if media.iter().any(|m| m.kind == assay_ir::MediaKind::Audio) {
            return Err(CallError::Fatal(
                "Anthropic's Messages API takes images, not audio: run audio items on a model that hears".into(),
            ));
        }
        // Anthropic's own limit: 5 MB an image.
        super::over_limit(media, "Anthropic's Messages API", 5 << 20)?;
        let key = key_from_env(&self.key_env)?;
        let system: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let turns: Vec<serde_json::Value> = messages
            .iter()
            .filter(|m| m.role != Role::System)
            .map(|m| json!(m))
            .collect();
        // Images as base64 blocks before the text of the first user turn.
        let turns = super::with_media(&turns, media, |m, media| {
            let mut blocks: Vec<serde_json::Value> = media
                .iter()
                .map(|x| {
                    json!({
                        "type": "image",
                        "source": { "type": "base64", "media_type": x.media_type, "data": &*x.base64 }
                    })
                })
                .collect();
            blocks.push(json!({ "type": "text", "text": m["content"] }));
            json!({ "role": "user", "content": blocks })
        });
        let mut body = json!({
            "model": self.model,
            "max_tokens": params.get("max_tokens").cloned().unwrap_or(json!(1024)),
            "messages": turns,
        });
        if !system.is_empty() {
            body["system"] = json!(system.join("\n\n"));
        }
        for (k, v) in params {
            match k.as_str() {
                "max_tokens" | "seed" => {}
                "stop" => body["stop_sequences"] = v.clone(),
                _ => body[k] = v.clone(),
            }
        }
        let request = self
            .client
            .post(format!("{}/v1/messages", self.base_url))
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        send(request, limits)
            .await
            .and_then(|answer| read_reply(&answer))
    }
}

/// A Messages answer as a reply: its text blocks joined. An answer with no text block is no
/// answer (a malformed response, retried) unless it stopped as a refusal, which is filtered.
fn read_reply(answer: &Answer) -> Result<Reply, CallError> {
    if !answer.status.is_success() {
        // Anthropic signals overload with 529.
        return Err(http_error(answer));
    }
    let v = json_body(answer)?;
    let Some(content) = v["content"].as_array() else {
        return Err(malformed("no content", &answer.body));
    };
    let texts: Vec<&str> = content
        .iter()
        .filter(|b| b["type"] == "text")
        .filter_map(|b| b["text"].as_str())
        .collect();
    let usage = v["usage"]["input_tokens"].as_u64().map(|p| Usage {
        prompt_tokens: p,
        completion_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
    });
    let stop_reason = v["stop_reason"].as_str().unwrap_or("none");
    let filtered = (stop_reason == "refusal").then(|| "stop_reason: refusal".to_string());
    if texts.is_empty() && filtered.is_none() {
        return Err(malformed(
            &format!("no text content block, stop_reason: {stop_reason}"),
            &answer.body,
        ));
    }
    Ok(Reply {
        text: texts.concat(),
        filtered,
        usage,
        logprobs: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_text_block_is_no_answer() {
        for (body, stop_reason) in [
            (
                r#"{"type":"message","content":[],"stop_reason":"end_turn"}"#,
                "end_turn",
            ),
            (
                r#"{"type":"message","content":[{"type":"tool_use","id":"t","name":"f","input":{}}],"stop_reason":"tool_use"}"#,
                "tool_use",
            ),
            (r#"{"type":"message","content":[{"type":"text"}]}"#, "none"),
        ] {
            let Err(CallError::Retryable { message, .. }) = read_reply(&Answer::ok(body)) else {
                panic!("{body} is retried");
            };
            assert!(
                message.starts_with(&format!(
                    "malformed response (no text content block, stop_reason: {stop_reason})"
                )),
                "{message}"
            );
        }
    }

    #[test]
    fn a_refusal_without_text_stays_filtered() {
        let got = read_reply(&Answer::ok(
            r#"{"type":"message","content":[],"stop_reason":"refusal"}"#,
        ));
        assert_eq!(
            got,
            Ok(Reply {
                text: String::new(),
                filtered: Some("stop_reason: refusal".into()),
                usage: None,
                logprobs: None,
            })
        );
    }

    #[test]
    fn an_empty_text_block_is_a_blank_answer() {
        let got = read_reply(&Answer::ok(
            r#"{"type":"message","content":[{"type":"text","text":""}],"stop_reason":"end_turn"}"#,
        ));
        assert_eq!(got.unwrap().text, "");
    }

    #[test]
    fn an_error_event_with_a_success_status_is_an_error() {
        let got = read_reply(&Answer::ok(
            r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
        ));
        let Err(CallError::Retryable { message, .. }) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            message,
            "HTTP 200 with an error in the body: overloaded_error: Overloaded"
        );
    }
}
