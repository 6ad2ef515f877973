//! OpenAI Chat Completions (`POST {base}/chat/completions`), also spoken by vLLM, Ollama's
//! `/v1`, llama.cpp server, TGI, LiteLLM and OpenRouter. Base URL from the target's
//! `endpoint` or `OPENAI_BASE_URL`; key from the target's `api_key_env` or `OPENAI_API_KEY`
//! (a missing key is fine for local servers that need none).

use super::{
    CallError, Endpoint, Params, Reply, base_url, http_error, key_from_env, malformed, send,
};
use assay_ir::{Message, Usage};
use serde_json::{Value, json};
use std::time::Duration;

#[derive(Clone, Debug)]
pub struct OpenAi {
    pub model: String,
    pub base_url: String,
    key_env: String,
    client: reqwest::Client,
}

impl OpenAi {
    pub fn new(model: &str, endpoint: &Endpoint, client: reqwest::Client) -> Self {
        OpenAi {
            model: model.to_string(),
            base_url: base_url(endpoint, "OPENAI_BASE_URL", "https://api.openai.com/v1"),
            key_env: endpoint
                .api_key_env
                .clone()
                .unwrap_or_else(|| "OPENAI_API_KEY".into()),
            client,
        }
    }

    pub async fn call(
        &self,
        messages: &[Message],
        params: &Params,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        let mut body = json!({ "model": self.model, "messages": messages });
        for (k, v) in params {
            body[k] = v.clone();
        }
        let mut request = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .timeout(timeout)
            .json(&body);
        // Local servers often need no key; a hosted one answers 401, which is fatal.
        match key_from_env(&self.key_env) {
            Ok(key) => request = request.bearer_auth(key),
            Err(e) if self.base_url.starts_with("https://api.openai.com") => return Err(e),
            Err(_) => {}
        }
        let (status, headers, text) = send(request).await?;
        if !status.is_success() {
            // A refusal by the provider's content filter is an answer of its own kind.
            if status.as_u16() == 400
                && let Ok(v) = serde_json::from_str::<Value>(&text)
                && let Some(code) = v["error"]["code"].as_str().or(v["error"]["type"].as_str())
                && matches!(code, "content_filter" | "content_policy_violation")
            {
                let reason = v["error"]["message"].as_str().unwrap_or(code).to_string();
                return Ok(Reply {
                    text: String::new(),
                    filtered: Some(reason),
                    usage: None,
                });
            }
            return Err(http_error(status, &headers, &text));
        }
        let v: Value = serde_json::from_str(&text).map_err(|_| malformed("not JSON", &text))?;
        let choice = &v["choices"][0];
        if choice.is_null() {
            return Err(malformed("no choices", &text));
        }
        let usage = v["usage"]["prompt_tokens"].as_u64().map(|p| Usage {
            prompt_tokens: p,
            completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        });
        if choice["finish_reason"] == "content_filter" {
            return Ok(Reply {
                text: choice["message"]["content"]
                    .as_str()
                    .unwrap_or("")
                    .to_string(),
                filtered: Some("finish_reason: content_filter".into()),
                usage,
            });
        }
        let text_out = match &choice["message"]["content"] {
            Value::String(s) => s.clone(),
            Value::Null if choice["message"]["refusal"].is_string() => choice["message"]["refusal"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            Value::Null => String::new(),
            _ => return Err(malformed("message content is not text", &text)),
        };
        Ok(Reply {
            text: text_out,
            filtered: None,
            usage,
        })
    }
}
