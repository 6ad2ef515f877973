//! OpenAI Chat Completions (`POST {base}/chat/completions`), also spoken by vLLM, Ollama's
//! `/v1`, llama.cpp server, TGI, LiteLLM and OpenRouter. Base URL from the target's
//! `endpoint` or `OPENAI_BASE_URL`; key from the target's `api_key_env` or `OPENAI_API_KEY`
//! (a missing key is fine for local servers that need none).

use super::{
    Answer, CallError, CallLimits, Endpoint, Params, Reply, base_url, http_error, json_body,
    key_from_env, malformed, send,
};
use assay_ir::{Message, Usage};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct OpenAi {
    pub model: String,
    pub base_url: String,
    pub(super) key_env: String,
    /// Whether a call without a key is an error before it is sent (a hosted API, or a target
    /// naming its key's variable); local servers often need none.
    pub(super) key_required: bool,
    client: reqwest::Client,
}

/// The conventions of a server family that speaks the Chat Completions API: where its base
/// URL and key are read from when the target does not say.
pub(super) struct Flavour {
    pub base_env: &'static str,
    pub default_base: &'static str,
    pub key_env: &'static str,
}

/// OpenAI's own API and every compatible server.
pub(super) const OPENAI: Flavour = Flavour {
    base_env: "OPENAI_BASE_URL",
    default_base: "https://api.openai.com/v1",
    key_env: "OPENAI_API_KEY",
};

/// vLLM's OpenAI-compatible server (`vllm serve`): local by default, a key only if started
/// with `--api-key`.
pub(super) const VLLM: Flavour = Flavour {
    base_env: "VLLM_BASE_URL",
    default_base: "http://localhost:8000/v1",
    key_env: "VLLM_API_KEY",
};

/// Hugging Face: the Inference Providers router by default, or a TGI server or Inference
/// Endpoint given as the target's `endpoint` (its `/v1`); the token from `HF_TOKEN`.
pub(super) const HUGGING_FACE: Flavour = Flavour {
    base_env: "HF_BASE_URL",
    default_base: "https://router.huggingface.co/v1",
    key_env: "HF_TOKEN",
};

impl OpenAi {
    pub fn new(model: &str, endpoint: &Endpoint, client: reqwest::Client) -> Self {
        Self::of(&OPENAI, model, endpoint, client)
    }

    pub(super) fn of(
        flavour: &Flavour,
        model: &str,
        endpoint: &Endpoint,
        client: reqwest::Client,
    ) -> Self {
        let base_url = base_url(endpoint, flavour.base_env, flavour.default_base);
        // A hosted default needs its key; a server the user points at needs one only if the
        // target names the variable.
        let hosted = base_url.starts_with("https://api.openai.com")
            || base_url.starts_with("https://router.huggingface.co");
        OpenAi {
            model: model.to_string(),
            key_required: hosted || endpoint.api_key_env.is_some(),
            key_env: endpoint
                .api_key_env
                .clone()
                .unwrap_or_else(|| flavour.key_env.into()),
            base_url,
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
        let mut body = json!({ "model": self.model, "messages": messages });
        if !media.is_empty() {
            // Images as data URLs, audio as `input_audio` (WAV or MP3), after the text.
            super::over_limit(media, "the Chat Completions API", 20 << 20)?;
            let plain: Vec<Value> = messages.iter().map(|m| json!(m)).collect();
            body["messages"] = json!(super::with_media(&plain, media, |m, media| {
                let mut parts = vec![json!({ "type": "text", "text": m["content"] })];
                for x in media {
                    parts.push(match x.kind {
                        assay_ir::MediaKind::Image => json!({
                            "type": "image_url",
                            "image_url": { "url": format!("data:{};base64,{}", x.media_type, x.base64) }
                        }),
                        assay_ir::MediaKind::Audio => json!({
                            "type": "input_audio",
                            "input_audio": {
                                "data": &*x.base64,
                                "format": if x.media_type == "audio/wav" { "wav" } else { "mp3" }
                            }
                        }),
                    });
                }
                json!({ "role": "user", "content": parts })
            }));
        }
        for (k, v) in params {
            body[k] = v.clone();
        }
        let mut request = self
            .client
            .post(format!("{}/chat/completions", self.base_url))
            .json(&body);
        // Local servers often need no key; a hosted one answers 401, which is fatal.
        match key_from_env(&self.key_env) {
            Ok(key) => request = request.bearer_auth(key),
            Err(e) if self.key_required && self.base_url.starts_with("https://") => {
                return Err(e);
            }
            Err(_) => {}
        }
        send(request, limits)
            .await
            .and_then(|answer| read_reply(&answer))
    }
}

/// A Chat Completions answer as a reply. The first choice's `message.content` is the answer;
/// `""` is a blank answer, but a null or missing content is no answer at all (a malformed
/// response, retried) unless the choice was stopped by the content filter or carries the
/// model's `refusal`.
fn read_reply(answer: &Answer) -> Result<Reply, CallError> {
    if !answer.status.is_success() {
        // A refusal by the provider's content filter is an answer of its own kind.
        if answer.status.as_u16() == 400
            && let Ok(v) = serde_json::from_slice::<Value>(&answer.body)
            && let Some(code) = v["error"]["code"].as_str().or(v["error"]["type"].as_str())
            && matches!(code, "content_filter" | "content_policy_violation")
        {
            let reason = v["error"]["message"].as_str().unwrap_or(code).to_string();
            return Ok(Reply {
                text: String::new(),
                filtered: Some(reason),
                usage: None,
                logprobs: None,
            });
        }
        return Err(http_error(answer));
    }
    let v = json_body(answer)?;
    let Some(choice) = v["choices"].get(0) else {
        return Err(malformed("no choices", &answer.body));
    };
    let usage = v["usage"]["prompt_tokens"].as_u64().map(|p| Usage {
        prompt_tokens: p,
        completion_tokens: v["usage"]["completion_tokens"].as_u64().unwrap_or(0),
    });
    let finish_reason = choice["finish_reason"].as_str().unwrap_or("none");
    if finish_reason == "content_filter" {
        return Ok(Reply {
            text: choice["message"]["content"]
                .as_str()
                .unwrap_or("")
                .to_string(),
            filtered: Some("finish_reason: content_filter".into()),
            usage,
            logprobs: None,
        });
    }
    let text = match choice["message"].get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None if choice["message"]["refusal"].is_string() => {
            choice["message"]["refusal"]
                .as_str()
                .unwrap_or("")
                .to_string()
        }
        Some(Value::Null) => {
            return Err(malformed(
                &format!("message content is null, finish_reason: {finish_reason}"),
                &answer.body,
            ));
        }
        None => {
            return Err(malformed(
                &format!("no message content, finish_reason: {finish_reason}"),
                &answer.body,
            ));
        }
        Some(_) => return Err(malformed("message content is not text", &answer.body)),
    };
    Ok(Reply {
        text,
        filtered: None,
        usage,
        logprobs: choice["logprobs"]["content"]
            .as_array()
            .map(|c| logprobs(c)),
    })
}

/// `logprobs.content` of a choice: each token with its `top_logprobs`. A token without a
/// string `token` or a numeric `logprob` is left out.
pub(super) fn logprobs(content: &[Value]) -> Vec<assay_judge::TokenLogprob> {
    let pair = |v: &Value| Some((v["token"].as_str()?.to_string(), v["logprob"].as_f64()?));
    content
        .iter()
        .filter_map(|t| {
            let (token, logprob) = pair(t)?;
            let top = t["top_logprobs"]
                .as_array()
                .map(|top| top.iter().filter_map(pair).collect())
                .unwrap_or_default();
            Some(assay_judge::TokenLogprob {
                token,
                logprob,
                top,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(body: &str) -> Result<Reply, CallError> {
        read_reply(&Answer::ok(body))
    }

    fn malformed_message(body: &str) -> String {
        match reply(body) {
            Err(CallError::Retryable { message, .. }) => message,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn null_content_is_no_answer() {
        let message = malformed_message(
            r#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"stop"}]}"#,
        );
        assert!(
            message
                .starts_with("malformed response (message content is null, finish_reason: stop)"),
            "{message}"
        );
    }

    #[test]
    fn missing_content_is_no_answer() {
        let message = malformed_message(
            r#"{"choices":[{"message":{"role":"assistant","tool_calls":[]},"finish_reason":"tool_calls"}]}"#,
        );
        assert!(
            message
                .starts_with("malformed response (no message content, finish_reason: tool_calls)"),
            "{message}"
        );
    }

    #[test]
    fn empty_or_absent_choices_are_no_answer() {
        for body in [
            r#"{"choices":[]}"#,
            r#"{"id":"c1","object":"chat.completion"}"#,
        ] {
            assert!(
                malformed_message(body).starts_with("malformed response (no choices)"),
                "{body}"
            );
        }
    }

    #[test]
    fn a_content_filter_stop_stays_filtered() {
        let got = reply(
            r#"{"choices":[{"message":{"role":"assistant","content":null},"finish_reason":"content_filter"}]}"#,
        );
        assert_eq!(
            got,
            Ok(Reply {
                text: String::new(),
                filtered: Some("finish_reason: content_filter".into()),
                usage: None,
                logprobs: None,
            })
        );
    }

    #[test]
    fn an_empty_string_is_a_blank_answer() {
        let got = reply(
            r#"{"choices":[{"message":{"role":"assistant","content":""},"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens":0}}"#,
        );
        assert_eq!(
            got,
            Ok(Reply {
                text: String::new(),
                filtered: None,
                usage: Some(Usage {
                    prompt_tokens: 3,
                    completion_tokens: 0
                }),
                logprobs: None,
            })
        );
    }

    #[test]
    fn top_logprobs_come_with_the_reply() {
        let got = reply(
            r#"{"choices":[{"message":{"role":"assistant","content":"4"},"finish_reason":"stop",
                "logprobs":{"content":[{"token":"4","logprob":-0.5,"bytes":[52],
                  "top_logprobs":[{"token":"4","logprob":-0.5,"bytes":[52]},
                                  {"token":"3","logprob":-1.2,"bytes":[51]},
                                  {"token":"x","logprob":null}]}],"refusal":null}}]}"#,
        )
        .unwrap();
        let tokens = got.logprobs.unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!((tokens[0].token.as_str(), tokens[0].logprob), ("4", -0.5));
        assert_eq!(
            tokens[0].top,
            [("4".to_string(), -0.5), ("3".to_string(), -1.2)]
        );
        // Not asked for, not given: none.
        let plain = reply(r#"{"choices":[{"message":{"content":"4"},"logprobs":null}]}"#);
        assert_eq!(plain.unwrap().logprobs, None);
        // A reply cached before log-probabilities were kept reads as one without them.
        let cached: Reply = serde_json::from_str(r#"{"text":"4","usage":null}"#).unwrap();
        assert_eq!(cached.logprobs, None);
    }

    #[test]
    fn a_refusal_field_is_the_answer() {
        let got = reply(
            r#"{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that."},"finish_reason":"stop"}]}"#,
        );
        assert_eq!(got.unwrap().text, "I can't help with that.");
    }
}
