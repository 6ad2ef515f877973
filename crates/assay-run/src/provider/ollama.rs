//! Ollama's native chat API (`POST {host}/api/chat`, `stream: false`). Host from the
//! target's `endpoint` or `OLLAMA_HOST` (default `http://127.0.0.1:11434`). Parameters go in
//! `options` (`max_tokens` becomes `num_predict`).

use super::{CallError, Endpoint, Params, Reply, base_url, http_error, malformed, send};
use assay_ir::{Message, Usage};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct Ollama {
    pub model: String,
    pub host: String,
    client: reqwest::Client,
}

impl Ollama {
    pub fn new(model: &str, endpoint: &Endpoint, client: reqwest::Client) -> Self {
        let host = base_url(endpoint, "OLLAMA_HOST", "http://127.0.0.1:11434");
        let host = if host.starts_with("http://") || host.starts_with("https://") {
            host
        } else {
            format!("http://{host}")
        };
        Ollama {
            model: model.to_string(),
            host,
            client,
        }
    }

    pub async fn call(
        &self,
        messages: &[Message],
        params: &Params,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let mut options = serde_json::Map::new();
        for (k, v) in params {
            let key = if k == "max_tokens" {
                "num_predict"
            } else {
                k.as_str()
            };
            options.insert(key.to_string(), v.clone());
        }
        let body = json!({ "model": self.model, "messages": messages, "stream": false, "options": options });
        let request = self
            .client
            .post(format!("{}/api/chat", self.host))
            .timeout(timeout)
            .json(&body);
        let (status, headers, text) = send(request).await?;
        if !status.is_success() {
            return Err(http_error(status, &headers, &text));
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| malformed("not JSON", &text))?;
        let Some(out) = v["message"]["content"].as_str() else {
            return Err(malformed("no message content", &text));
        };
        let usage = v["prompt_eval_count"].as_u64().map(|p| Usage {
            prompt_tokens: p,
            completion_tokens: v["eval_count"].as_u64().unwrap_or(0),
        });
        Ok(Reply {
            text: out.to_string(),
            filtered: None,
            usage,
        })
    }
}
