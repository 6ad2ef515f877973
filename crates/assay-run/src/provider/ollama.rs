//! Ollama's native chat API (`POST {host}/api/chat`, `stream: false`). Host from the
//! target's `endpoint` or `OLLAMA_HOST` (default `http://127.0.0.1:11434`). Parameters go in
//! `options` (`max_tokens` becomes `num_predict`).

use super::{
    Answer, CallError, CallLimits, Endpoint, Params, Reply, base_url, http_error, json_body,
    malformed, send,
};
use assay_ir::{Message, Usage};
use serde_json::json;

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
        limits: CallLimits,
        media: &[super::Media],
    ) -> Result<Reply, CallError> {
        if media.iter().any(|m| m.kind == assay_ir::MediaKind::Audio) {
            return Err(CallError::Fatal(
                "Ollama's chat API takes images, not audio: run audio items on a model that hears"
                    .into(),
            ));
        }
        super::over_limit(media, "Ollama's chat API", 20 << 20)?;
        let mut options = serde_json::Map::new();
        // Log-probabilities are asked for beside the options, not among them.
        let mut body = json!({ "model": self.model, "messages": messages, "stream": false });
        if !media.is_empty() {
            // Images as base64 in the first user message's `images`.
            let plain: Vec<serde_json::Value> = messages.iter().map(|m| json!(m)).collect();
            body["messages"] = json!(super::with_media(&plain, media, |m, media| {
                let mut m = m.clone();
                m["images"] = json!(media.iter().map(|x| &*x.base64).collect::<Vec<_>>());
                m
            }));
        }
        for (k, v) in params {
            let key = match k.as_str() {
                "max_tokens" => "num_predict",
                "logprobs" | "top_logprobs" => {
                    body[k] = v.clone();
                    continue;
                }
                k => k,
            };
            options.insert(key.to_string(), v.clone());
        }
        body["options"] = serde_json::Value::Object(options);
        let request = self
            .client
            .post(format!("{}/api/chat", self.host))
            .json(&body);
        send(request, limits)
            .await
            .and_then(|answer| read_reply(&answer))
    }
}

/// A chat answer as a reply: `message.content`, which `""` may be but which must be there.
fn read_reply(answer: &Answer) -> Result<Reply, CallError> {
    if !answer.status.is_success() {
        return Err(http_error(answer));
    }
    let v = json_body(answer)?;
    let Some(text) = v["message"]["content"].as_str() else {
        return Err(malformed("no message content", &answer.body));
    };
    let usage = v["prompt_eval_count"].as_u64().map(|p| Usage {
        prompt_tokens: p,
        completion_tokens: v["eval_count"].as_u64().unwrap_or(0),
    });
    Ok(Reply {
        text: text.to_string(),
        filtered: None,
        usage,
        // Ollama (0.12.11 and later) gives them as OpenAI does, at the top of the answer.
        logprobs: v["logprobs"].as_array().map(|c| super::openai::logprobs(c)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_message_content_is_no_answer() {
        for body in [
            r#"{"model":"m","message":{"role":"assistant"},"done":true}"#,
            r#"{"model":"m","message":{"role":"assistant","content":null},"done":true}"#,
            r#"{"model":"m","done":true}"#,
        ] {
            let Err(CallError::Retryable { message, .. }) = read_reply(&Answer::ok(body)) else {
                panic!("{body} is retried");
            };
            assert!(
                message.starts_with("malformed response (no message content)"),
                "{message}"
            );
        }
    }

    #[test]
    fn logprobs_are_read_beside_the_message() {
        let got = read_reply(&Answer::ok(
            r#"{"model":"m","message":{"role":"assistant","content":"2"},"done":true,
                "logprobs":[{"token":"2","logprob":-0.1,"top_logprobs":[{"token":"2","logprob":-0.1},{"token":"1","logprob":-2.4}]}]}"#,
        ))
        .unwrap();
        let tokens = got.logprobs.unwrap();
        assert_eq!(tokens[0].top[1], ("1".to_string(), -2.4));
    }

    #[test]
    fn an_empty_string_is_a_blank_answer() {
        let got = read_reply(&Answer::ok(
            r#"{"model":"m","message":{"role":"assistant","content":""},"done":true}"#,
        ));
        assert_eq!(got.unwrap().text, "");
    }

    #[test]
    fn an_error_with_a_success_status_is_an_error() {
        let got = read_reply(&Answer::ok(r#"{"error":"model runner stopped"}"#));
        let Err(CallError::Retryable { message, .. }) = got else {
            panic!("{got:?}")
        };
        assert_eq!(
            message,
            "HTTP 200 with an error in the body: model runner stopped"
        );
    }
}
