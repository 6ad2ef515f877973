//! Anthropic Messages (`POST {base}/v1/messages`, `anthropic-version: 2023-06-01`). Base URL
//! from the target's `endpoint` or `ANTHROPIC_BASE_URL`; key from `api_key_env` or
//! `ANTHROPIC_API_KEY`. The system prompt is a top-level field; `max_tokens` is required by
//! the API and defaults to 1024.

use super::{
    CallError, Endpoint, Params, Reply, base_url, http_error, key_from_env, malformed, send,
};
use assay_ir::{Message, Role, Usage};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Anthropic {
    pub model: String,
    pub base_url: String,
    key_env: String,
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
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let key = key_from_env(&self.key_env)?;
        let system: Vec<&str> = messages
            .iter()
            .filter(|m| m.role == Role::System)
            .map(|m| m.content.as_str())
            .collect();
        let turns: Vec<&Message> = messages.iter().filter(|m| m.role != Role::System).collect();
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
            .timeout(timeout)
            .header("x-api-key", key)
            .header("anthropic-version", "2023-06-01")
            .json(&body);
        let (status, headers, text) = send(request).await?;
        if !status.is_success() {
            // Anthropic signals overload with 529.
            return Err(http_error(status, &headers, &text));
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| malformed("not JSON", &text))?;
        let Some(content) = v["content"].as_array() else {
            return Err(malformed("no content", &text));
        };
        let out: String = content
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .collect();
        let usage = v["usage"]["input_tokens"].as_u64().map(|p| Usage {
            prompt_tokens: p,
            completion_tokens: v["usage"]["output_tokens"].as_u64().unwrap_or(0),
        });
        let filtered = (v["stop_reason"] == "refusal").then(|| "stop_reason: refusal".to_string());
        Ok(Reply {
            text: out,
            filtered,
            usage,
        })
    }
}
