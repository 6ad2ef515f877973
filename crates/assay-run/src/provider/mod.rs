//! Model providers, each speaking its API's real wire format: OpenAI Chat Completions (and
//! every server that copies it), Anthropic Messages, Ollama's native chat, a local command
//! (`exec:`), and deterministic offline models (`mock:`).
//!
//! A provider turns one conversation into one [`Reply`] or a [`CallError`]; retries, rate
//! limits and timeouts are the engine's. Keys are read from the environment at call time and
//! go nowhere but the request header.

mod anthropic;
mod exec;
mod mock;
mod ollama;
mod openai;

use assay_ir::{Message, Usage};
use serde_json::Value;
use std::collections::BTreeMap;
use std::time::Duration;

/// Model parameters: `temperature`, `max_tokens`, `seed`, `stop`, `top_p`.
pub type Params = BTreeMap<String, Value>;

/// What the model said.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Reply {
    pub text: String,
    /// The provider refused by content filter; the reason it gave.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filtered: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
}

/// Why a call failed.
#[derive(Clone, Debug, PartialEq)]
pub enum CallError {
    /// Worth another try: rate limits, server errors, timeouts, dropped connections.
    Retryable {
        message: String,
        /// What the server asked for (`Retry-After`).
        retry_after: Option<Duration>,
        /// A 429: the engine slows the whole model down, not only this call.
        rate_limited: bool,
    },
    /// Another try would fail the same way: bad key, unknown model, malformed request.
    Fatal(String),
    /// Nothing answered at the address (connection refused, unknown host): retried, but a
    /// model that has never answered and keeps refusing is given up on (see the engine).
    Unreachable(String),
}

impl CallError {
    pub fn message(&self) -> &str {
        match self {
            CallError::Retryable { message, .. }
            | CallError::Fatal(message)
            | CallError::Unreachable(message) => message,
        }
    }
}

/// A model to run, parsed from `PROVIDER:MODEL`.
#[derive(Clone, Debug)]
pub enum Provider {
    OpenAi(openai::OpenAi),
    Anthropic(anthropic::Anthropic),
    Ollama(ollama::Ollama),
    Exec(exec::Exec),
    Mock(mock::Mock),
}

/// Where a provider reads its endpoint and key, when the spec's target says so.
#[derive(Clone, Debug, Default)]
pub struct Endpoint {
    pub base_url: Option<String>,
    /// The name of the environment variable holding the key.
    pub api_key_env: Option<String>,
}

impl Provider {
    /// Parses `openai:gpt-4o`, `anthropic:claude-...`, `ollama:llama3`, `exec:./model.sh`,
    /// `mock:refuse` / `mock:comply` / `mock:echo` / `mock:script:FILE`.
    pub fn parse(spec: &str, endpoint: &Endpoint) -> Result<Provider, String> {
        let (kind, model) = spec.split_once(':').ok_or_else(|| {
            format!("`{spec}` is not PROVIDER:MODEL, e.g. openai:gpt-4o-mini or mock:refuse")
        })?;
        if model.trim().is_empty() {
            return Err(format!("`{spec}` names no model after `{kind}:`"));
        }
        let client = || {
            reqwest::Client::builder()
                .user_agent(concat!("assay/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(30))
                .pool_max_idle_per_host(1024)
                .build()
                .map_err(|e| format!("cannot make an HTTP client: {e}"))
        };
        Ok(match kind {
            "openai" | "openai_compatible" => {
                Provider::OpenAi(openai::OpenAi::new(model, endpoint, client()?))
            }
            "anthropic" => {
                Provider::Anthropic(anthropic::Anthropic::new(model, endpoint, client()?))
            }
            "ollama" => Provider::Ollama(ollama::Ollama::new(model, endpoint, client()?)),
            "exec" => Provider::Exec(exec::Exec::new(model)?),
            "mock" => Provider::Mock(mock::Mock::new(model)?),
            other => {
                return Err(format!(
                    "unknown provider `{other}`; providers: openai, anthropic, ollama, exec, mock"
                ));
            }
        })
    }

    /// Whether answers are free and instant (no cache, no rate limits needed).
    pub fn is_local_mock(&self) -> bool {
        matches!(self, Provider::Mock(_))
    }

    /// The identity the cache keys on: provider kind, model and endpoint (never the key).
    pub fn identity(&self) -> String {
        match self {
            Provider::OpenAi(p) => format!("openai:{}@{}", p.model, p.base_url),
            Provider::Anthropic(p) => format!("anthropic:{}@{}", p.model, p.base_url),
            Provider::Ollama(p) => format!("ollama:{}@{}", p.model, p.host),
            Provider::Exec(p) => format!("exec:{}", p.command.join(" ")),
            Provider::Mock(p) => format!("mock:{}", p.name()),
        }
    }

    /// Sends one conversation.
    pub async fn call(
        &self,
        item_id: &str,
        messages: &[Message],
        params: &Params,
        timeout: Duration,
    ) -> Result<Reply, CallError> {
        match self {
            Provider::OpenAi(p) => p.call(messages, params, timeout).await,
            Provider::Anthropic(p) => p.call(messages, params, timeout).await,
            Provider::Ollama(p) => p.call(messages, params, timeout).await,
            Provider::Exec(p) => p.call(item_id, messages, params, timeout).await,
            Provider::Mock(p) => p.call(item_id, messages),
        }
    }
}

/// The base URL of a provider: the target's `endpoint`, else the environment variable, else
/// the public default; without a trailing slash.
fn base_url(endpoint: &Endpoint, env: &str, default: &str) -> String {
    let url = endpoint
        .base_url
        .clone()
        .or_else(|| std::env::var(env).ok())
        .unwrap_or_else(|| default.to_string());
    url.trim_end_matches('/').to_string()
}

/// Sends a request and reads the whole answer: status, headers and body text.
async fn send(
    request: reqwest::RequestBuilder,
) -> Result<(reqwest::StatusCode, reqwest::header::HeaderMap, String), CallError> {
    let response = request.send().await.map_err(transport_error)?;
    let status = response.status();
    let headers = response.headers().clone();
    let text = response.text().await.map_err(transport_error)?;
    Ok((status, headers, text))
}

/// The key in environment variable `name`, read now.
fn key_from_env(name: &str) -> Result<String, CallError> {
    std::env::var(name).map_err(|_| {
        CallError::Fatal(format!(
            "the environment variable {name} is not set; it must hold the API key"
        ))
    })
}

/// `Retry-After` in seconds or as an HTTP date.
fn retry_after(headers: &reqwest::header::HeaderMap) -> Option<Duration> {
    let value = headers
        .get(reqwest::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(3600.0)));
    }
    let when = httpdate(value)?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .unwrap_or_default(),
    )
}

/// An IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), the form `Retry-After` dates take.
fn httpdate(text: &str) -> Option<std::time::SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let [_, day, month, year, time, "GMT"] = parts.as_slice() else {
        return None;
    };
    let months = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let month = months.iter().position(|m| m == month)? as i64 + 1;
    let (day, year): (i64, i64) = (day.parse().ok()?, year.parse().ok()?);
    let hms: Vec<i64> = time
        .split(':')
        .map(|p| p.parse().ok())
        .collect::<Option<_>>()?;
    let [h, m, s] = hms.as_slice() else {
        return None;
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let secs = days * 86_400 + h * 3600 + m * 60 + s;
    Some(std::time::UNIX_EPOCH + Duration::from_secs(u64::try_from(secs).ok()?))
}

/// Classifies an HTTP failure. `body` is the response text (never the request).
fn http_error(
    status: reqwest::StatusCode,
    headers: &reqwest::header::HeaderMap,
    body: &str,
) -> CallError {
    let snippet: String = body.chars().take(300).collect();
    let message = format!("HTTP {}: {}", status.as_u16(), snippet.trim());
    match status.as_u16() {
        408 | 409 | 425 | 429 | 500..=599 => CallError::Retryable {
            message,
            retry_after: retry_after(headers),
            rate_limited: status.as_u16() == 429,
        },
        _ => CallError::Fatal(message),
    }
}

/// A transport failure (refused, reset, timed out): worth another try.
fn transport_error(e: reqwest::Error) -> CallError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "the connection failed"
    };
    let mut message = format!("{kind}: {e}");
    let mut source = std::error::Error::source(&e);
    while let Some(s) = source {
        message.push_str(&format!(": {s}"));
        source = s.source();
    }
    if e.is_connect() && !e.is_timeout() {
        return CallError::Unreachable(message);
    }
    CallError::Retryable {
        message,
        retry_after: None,
        rate_limited: false,
    }
}

/// A body that is not what the API promises: retried, as proxies garble bodies under load.
fn malformed(what: &str, body: &str) -> CallError {
    let snippet: String = body.chars().take(200).collect();
    CallError::Retryable {
        message: format!("malformed response ({what}): {snippet}"),
        retry_after: None,
        rate_limited: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_dates_parse() {
        let t = httpdate("Sun, 06 Nov 1994 08:49:37 GMT").unwrap();
        assert_eq!(
            t.duration_since(std::time::UNIX_EPOCH).unwrap().as_secs(),
            784_111_777
        );
        assert_eq!(httpdate("tomorrow"), None);
    }

    #[test]
    fn model_specs_parse() {
        let e = Endpoint::default();
        assert!(matches!(
            Provider::parse("mock:refuse", &e),
            Ok(Provider::Mock(_))
        ));
        assert!(
            Provider::parse("gpt-4o", &e)
                .unwrap_err()
                .contains("PROVIDER:MODEL")
        );
        assert!(
            Provider::parse("nope:x", &e)
                .unwrap_err()
                .contains("unknown provider `nope`")
        );
        assert!(
            Provider::parse("openai:", &e)
                .unwrap_err()
                .contains("names no model")
        );
    }
}
