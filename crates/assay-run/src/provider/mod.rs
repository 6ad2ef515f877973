//! Model providers, each speaking its API's real wire format: OpenAI Chat Completions (and
//! every server that copies it), Anthropic Messages, Ollama's native chat, a local command
//! (`exec:`), and deterministic offline models (`mock:`).
//!
//! A provider turns one conversation into one [`Reply`] or a [`CallError`]; retries, rate
//! limits and timeouts are the engine's. Keys are read from the environment at call time and
//! go nowhere but the request header, which never follows a redirect to another origin. Every
//! answer is read within [`CallLimits`] (an HTTP body or a command's output as a bounded
//! stream), and a body that holds no answer (no text, no JSON, not UTF-8, an error object) is
//! an error with its cause, never an empty reply.

mod anthropic;
mod exec;
mod mock;
mod ollama;
mod openai;
#[cfg(test)]
mod test_server;

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
    /// The answer's tokens with their top log-probabilities, when they were asked for
    /// (`logprobs` in the parameters) and the provider gave them. Absent from replies cached
    /// before it existed, which read as none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub logprobs: Option<Vec<assay_judge::TokenLogprob>>,
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

/// The bounds of one call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallLimits {
    /// The whole call: connecting, sending, and reading the answer to its end.
    pub timeout: Duration,
    /// The most bytes read of an answer: an HTTP response body, or a command's stdout or
    /// stderr. A larger answer is that call's error ("response larger than N bytes"), so an
    /// endless body costs this much memory, not all of it. Default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`].
    pub max_response_bytes: usize,
}

/// The default [`CallLimits::max_response_bytes`]: 1 MiB, far above any chat answer.
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 1_048_576;

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
                .redirect(same_origin_redirects())
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
            "vllm" => Provider::OpenAi(openai::OpenAi::of(
                &openai::VLLM,
                model,
                endpoint,
                client()?,
            )),
            "huggingface" => Provider::OpenAi(openai::OpenAi::of(
                &openai::HUGGING_FACE,
                model,
                endpoint,
                client()?,
            )),
            "ollama" => Provider::Ollama(ollama::Ollama::new(model, endpoint, client()?)),
            "exec" => Provider::Exec(exec::Exec::new(model)?),
            "mock" => Provider::Mock(mock::Mock::new(model)?),
            other => {
                return Err(format!(
                    "unknown provider `{other}`; providers: openai, openai_compatible, anthropic, ollama, vllm, huggingface, exec, mock"
                ));
            }
        })
    }

    /// Whether answers are free and instant (no cache, no rate limits needed).
    pub fn is_local_mock(&self) -> bool {
        matches!(self, Provider::Mock(_))
    }

    /// What a call needs before it can succeed, for the preflight check: the environment
    /// variable that must hold the key (Anthropic always; OpenAI's own API, or an
    /// OpenAI-compatible server whose target names its own `api_key_env`; a local server on
    /// the default variable, or Ollama, needs none), and the base URL it connects to (none
    /// for a local command or a mock).
    pub fn needs(&self) -> (Option<&str>, Option<&str>) {
        match self {
            Provider::OpenAi(p) => (
                p.key_required.then_some(p.key_env.as_str()),
                Some(&p.base_url),
            ),
            Provider::Anthropic(p) => (Some(&p.key_env), Some(&p.base_url)),
            Provider::Ollama(p) => (None, Some(&p.host)),
            Provider::Exec(_) | Provider::Mock(_) => (None, None),
        }
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

    /// Sends one conversation; `media` go with its first user turn.
    pub async fn call(
        &self,
        item_id: &str,
        messages: &[Message],
        params: &Params,
        limits: CallLimits,
        media: &[Media],
    ) -> Result<Reply, CallError> {
        match self {
            Provider::OpenAi(p) => p.call(messages, params, limits, media).await,
            Provider::Anthropic(p) => p.call(messages, params, limits, media).await,
            Provider::Ollama(p) => p.call(messages, params, limits, media).await,
            Provider::Exec(p) => p.call(item_id, messages, params, limits, media).await,
            // Offline models answer from the text.
            Provider::Mock(p) => p.call(item_id, messages),
        }
    }
}

/// An image or audio clip sent with a prompt: its bytes as base64, read from the item's
/// attachment and checked against its hash.
#[derive(Clone, Debug, PartialEq)]
pub struct Media {
    pub kind: assay_ir::MediaKind,
    pub media_type: String,
    pub sha256: String,
    /// The size in bytes, before base64.
    pub bytes: u64,
    pub base64: std::sync::Arc<str>,
}

/// The conversation as a JSON array with `media` on its first user turn, each turn as
/// `attach` writes a message that carries some.
pub(super) fn with_media(
    messages: &[serde_json::Value],
    media: &[Media],
    attach: impl Fn(&serde_json::Value, &[Media]) -> serde_json::Value,
) -> Vec<serde_json::Value> {
    let mut done = media.is_empty();
    messages
        .iter()
        .map(|m| {
            if !done && m["role"] == "user" {
                done = true;
                attach(m, media)
            } else {
                m.clone()
            }
        })
        .collect()
}

/// The first medium over `limit` bytes, as a fatal error naming the provider's limit.
pub(super) fn over_limit(media: &[Media], what: &str, limit: u64) -> Result<(), CallError> {
    match media.iter().find(|m| m.bytes > limit) {
        Some(m) => Err(CallError::Fatal(format!(
            "the {} attachment is {} bytes, over the {limit} {what} takes",
            m.media_type, m.bytes
        ))),
        None => Ok(()),
    }
}

/// Redirects followed only within the origin (scheme, host and port) the request was sent
/// to, at most ten. Keys travel in headers, and reqwest drops `Authorization` on a redirect to
/// another host but not `x-api-key`; refusing to leave the origin keeps every provider's key
/// where the target sent it. The refusal is the call's error (fatal: the server will send the
/// same redirect again).
fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let origin = attempt.url().origin();
        match attempt.previous().first() {
            Some(first) if first.origin() != origin => {
                let to = origin.ascii_serialization();
                attempt.error(format!(
                    "the server redirected to another origin ({to}); not followed, so the key \
                     is not sent there: set the target's endpoint to the address that answers"
                ))
            }
            _ if attempt.previous().len() > 10 => attempt.error("more than ten redirects"),
            _ => attempt.follow(),
        }
    })
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

/// An HTTP answer: status, headers and the body as bytes, read to its end or to the limit.
struct Answer {
    status: reqwest::StatusCode,
    headers: reqwest::header::HeaderMap,
    body: Vec<u8>,
}

/// Sends a request within `limits` and reads the answer as a bounded stream, so an endless
/// body costs at most the limit. A successful answer larger than the limit is the call's
/// error; the body of a failed one is cut there, as only its start is ever shown.
async fn send(request: reqwest::RequestBuilder, limits: CallLimits) -> Result<Answer, CallError> {
    let max = limits.max_response_bytes;
    let mut response = request
        .timeout(limits.timeout)
        .send()
        .await
        .map_err(transport_error)?;
    let status = response.status();
    let headers = response.headers().clone();
    if status.is_success() && response.content_length().is_some_and(|n| n > max as u64) {
        return Err(too_large(max));
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(transport_error)? {
        if body.len() + chunk.len() > max {
            if status.is_success() {
                return Err(too_large(max));
            }
            body.extend_from_slice(&chunk[..max - body.len()]);
            break;
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// An answer past [`CallLimits::max_response_bytes`]: another try would stream the same.
fn too_large(max: usize) -> CallError {
    CallError::Fatal(format!("response larger than {max} bytes"))
}

/// The JSON object a successful answer must hold. Anything else is the call's error with its
/// cause: an event stream nobody asked for (fatal, as the server streams every time), bytes
/// that are not UTF-8, an HTML page, JSON that does not parse (a lone surrogate, a cut-off
/// body), or an `error` object sent with a success status; those are retried, as proxies
/// and overloaded servers produce them now and then.
fn json_body(answer: &Answer) -> Result<Value, CallError> {
    let content_type = answer
        .headers
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_ascii_lowercase();
    let start = answer.body.trim_ascii_start();
    if content_type.starts_with("text/event-stream")
        || start.starts_with(b"data:")
        || start.starts_with(b"event:")
    {
        return Err(CallError::Fatal(format!(
            "the server sent an event stream, which was not requested: {}",
            snippet(&answer.body, 200)
        )));
    }
    let text = std::str::from_utf8(&answer.body).map_err(|e| {
        malformed(
            &format!("not UTF-8: invalid byte at offset {}", e.valid_up_to()),
            &answer.body,
        )
    })?;
    if content_type.starts_with("text/html") || start.starts_with(b"<") {
        return Err(malformed("HTML, not JSON", &answer.body));
    }
    let v: Value = serde_json::from_str(text)
        .map_err(|e| malformed(&format!("not JSON: {e}"), &answer.body))?;
    let error = &v["error"];
    if !error.is_null() {
        let what = error["message"]
            .as_str()
            .or(error.as_str())
            .map_or_else(|| error.to_string(), str::to_string);
        let kind = error["type"].as_str().or(error["code"].as_str());
        return Err(CallError::Retryable {
            message: format!(
                "HTTP {} with an error in the body: {}{}",
                answer.status.as_u16(),
                kind.map_or(String::new(), |k| format!("{k}: ")),
                what.chars().take(300).collect::<String>()
            ),
            retry_after: None,
            rate_limited: false,
        });
    }
    Ok(v)
}

/// The start of a body for a message: its text (invalid UTF-8 replaced) up to `n`
/// characters, or for an HTML page its title, as the markup around it says nothing.
fn snippet(body: &[u8], n: usize) -> String {
    let text = String::from_utf8_lossy(body);
    let lower = text.to_ascii_lowercase();
    if let Some(open) = lower.find("<title>")
        && let Some(close) = lower[open..].find("</title>")
    {
        let title = text[open + "<title>".len()..open + close].trim();
        return format!(
            "an HTML page titled \"{}\"",
            title.chars().take(n).collect::<String>()
        );
    }
    text.chars().take(n).collect::<String>().trim().to_string()
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

/// Classifies an HTTP failure from its answer (never the request).
fn http_error(answer: &Answer) -> CallError {
    let status = answer.status.as_u16();
    let message = format!("HTTP {status}: {}", snippet(&answer.body, 300));
    match status {
        408 | 409 | 425 | 429 | 500..=599 => CallError::Retryable {
            message,
            retry_after: retry_after(&answer.headers),
            rate_limited: status == 429,
        },
        _ => CallError::Fatal(message),
    }
}

/// A transport failure (refused, reset, timed out): worth another try. A redirect the policy
/// refused (see [`same_origin_redirects`]) is not: the server will send it again.
fn transport_error(e: reqwest::Error) -> CallError {
    if e.is_redirect()
        && let Some(why) = std::error::Error::source(&e)
    {
        return CallError::Fatal(why.to_string());
    }
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
fn malformed(what: &str, body: &[u8]) -> CallError {
    CallError::Retryable {
        message: format!("malformed response ({what}): {}", snippet(body, 200)),
        retry_after: None,
        rate_limited: false,
    }
}

#[cfg(test)]
impl Answer {
    /// A 200 answer with a JSON body, for the providers' tests of what they read.
    fn ok(body: &str) -> Answer {
        Answer {
            status: reqwest::StatusCode::OK,
            headers: reqwest::header::HeaderMap::new(),
            body: body.as_bytes().to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_server::{TestServer, response, write};
    use super::*;

    const LIMITS: CallLimits = CallLimits {
        timeout: Duration::from_secs(5),
        max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
    };

    /// An OpenAI-compatible model at `url`, sent no key.
    fn openai_at(url: &str) -> Provider {
        let endpoint = Endpoint {
            base_url: Some(format!("{url}/v1")),
            api_key_env: Some("ASSAY_TEST_UNSET_KEY".into()),
        };
        Provider::parse("openai:m", &endpoint).unwrap()
    }

    async fn call(provider: &Provider, limits: CallLimits) -> Result<Reply, CallError> {
        let messages = [Message {
            role: assay_ir::Role::User,
            content: "hello".into(),
        }];
        provider
            .call("i1", &messages, &Params::new(), limits, &[])
            .await
    }

    const ANSWER: &str = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}]}"#;

    #[tokio::test]
    async fn vllm_and_hugging_face_speak_chat_completions_with_their_own_keys() {
        let server = TestServer::start(|_, stream| {
            write(
                stream,
                &response("200 OK", "application/json", ANSWER.as_bytes()),
            )
        });
        // vLLM at the target's endpoint: no key needed, none sent.
        let vllm = Provider::parse(
            "vllm:meta-llama/Llama-3.1-8B-Instruct",
            &Endpoint {
                base_url: Some(format!("{}/v1", server.url)),
                api_key_env: None,
            },
        )
        .unwrap();
        assert_eq!(
            vllm.needs(),
            (None, Some(format!("{}/v1", server.url).as_str()))
        );
        assert_eq!(call(&vllm, LIMITS).await.unwrap().text, "hi");
        // A TGI server or Inference Endpoint: the token from the variable the target names
        // (here one every test process has, standing in for HF_TOKEN).
        let token = std::env::var("PATH").unwrap_or_default();
        let tgi = Provider::parse(
            "huggingface:tgi",
            &Endpoint {
                base_url: Some(format!("{}/v1", server.url)),
                api_key_env: Some("PATH".into()),
            },
        )
        .unwrap();
        assert_eq!(tgi.needs().0, Some("PATH"));
        assert_eq!(call(&tgi, LIMITS).await.unwrap().text, "hi");
        let requests = server.requests();
        assert!(
            requests[0].starts_with("POST /v1/chat/completions"),
            "{}",
            requests[0]
        );
        assert!(!requests[0].to_ascii_lowercase().contains("authorization"));
        assert!(requests[1].contains("\"model\":\"tgi\""));
        assert!(requests[1].to_ascii_lowercase().contains(&format!(
            "authorization: bearer {}",
            token.to_ascii_lowercase()
        )));
        // The hosted default (Hugging Face's router) needs HF_TOKEN.
        let hosted = Provider::parse(
            "huggingface:meta-llama/Llama-3.1-8B-Instruct",
            &Endpoint::default(),
        )
        .unwrap();
        assert_eq!(
            hosted.needs(),
            (Some("HF_TOKEN"), Some("https://router.huggingface.co/v1"))
        );
    }

    #[tokio::test]
    async fn an_endless_body_stops_at_the_limit() {
        let server = TestServer::start(|_, stream| {
            write(
                stream,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n",
            );
            let block = vec![b' '; 64 * 1024];
            while std::io::Write::write_all(stream, &block).is_ok() {}
        });
        let limits = CallLimits {
            max_response_bytes: 100_000,
            ..LIMITS
        };
        assert_eq!(
            call(&openai_at(&server.url), limits).await,
            Err(CallError::Fatal("response larger than 100000 bytes".into()))
        );
    }

    #[tokio::test]
    async fn a_declared_length_over_the_limit_is_refused_unread() {
        let server = TestServer::start(|_, stream| {
            write(
                stream,
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
            );
            std::thread::sleep(Duration::from_secs(3));
        });
        let started = std::time::Instant::now();
        assert_eq!(
            call(&openai_at(&server.url), LIMITS).await,
            Err(CallError::Fatal(
                "response larger than 1048576 bytes".into()
            ))
        );
        assert!(started.elapsed() < Duration::from_secs(2));
    }

    #[tokio::test]
    async fn a_large_error_page_stays_a_server_error() {
        let server = TestServer::start(|_, stream| {
            let page = format!("<html>{}</html>", "x".repeat(3_000_000));
            write(
                stream,
                &response("502 Bad Gateway", "text/html", page.as_bytes()),
            );
        });
        let Err(CallError::Retryable { message, .. }) = call(&openai_at(&server.url), LIMITS).await
        else {
            panic!("a 502 is retried")
        };
        assert!(message.starts_with("HTTP 502: <html>xxx"), "{message}");
    }

    #[tokio::test]
    async fn a_slow_drip_times_out() {
        let server = TestServer::start(|_, stream| {
            write(
                stream,
                format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                    ANSWER.len()
                )
                .as_bytes(),
            );
            for byte in ANSWER.as_bytes() {
                if std::io::Write::write_all(stream, &[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        });
        let limits = CallLimits {
            timeout: Duration::from_millis(400),
            ..LIMITS
        };
        let Err(CallError::Retryable { message, .. }) = call(&openai_at(&server.url), limits).await
        else {
            panic!("a timeout is retried")
        };
        assert!(message.starts_with("timed out"), "{message}");
    }

    #[tokio::test]
    async fn a_redirect_to_another_origin_is_refused() {
        let elsewhere = TestServer::start(|_, stream| {
            write(
                stream,
                &response("200 OK", "application/json", ANSWER.as_bytes()),
            );
        });
        let to = elsewhere.url.clone();
        let server = TestServer::start(move |_, stream| {
            let redirect = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {to}/v1/chat/completions\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            write(stream, redirect.as_bytes());
        });
        let Err(CallError::Fatal(message)) = call(&openai_at(&server.url), LIMITS).await else {
            panic!("a redirect to another origin is not followed")
        };
        assert_eq!(
            message,
            format!(
                "the server redirected to another origin ({}); not followed, so the key is not sent there: set the target's endpoint to the address that answers",
                elsewhere.url
            )
        );
        assert!(elsewhere.requests().is_empty());
    }

    #[tokio::test]
    async fn a_same_origin_redirect_is_followed() {
        let server = TestServer::start(|request, stream| {
            if request.starts_with("POST /v1/chat/completions ") {
                write(
                    stream,
                    b"HTTP/1.1 308 Permanent Redirect\r\nLocation: /moved/chat/completions\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                );
            } else {
                write(
                    stream,
                    &response("200 OK", "application/json", ANSWER.as_bytes()),
                );
            }
        });
        let reply = call(&openai_at(&server.url), LIMITS).await.unwrap();
        assert_eq!(reply.text, "hi");
        let requests = server.requests();
        assert_eq!(requests.len(), 2);
        assert!(requests[1].starts_with("POST /moved/chat/completions "));
        assert!(requests[1].contains("\"messages\""), "the body goes along");
    }

    /// Bodies no API sends, each a call error with its cause, whatever the format.
    #[tokio::test]
    async fn odd_bodies_are_call_errors() {
        let cases: [(&str, &[u8], bool, &str); 7] = [
            (
                "application/json",
                b"{\"choices\": [{\"message\": {\"content\": \"\xff\xfe\"}}]}",
                true,
                "malformed response (not UTF-8: invalid byte at offset 38)",
            ),
            (
                "application/json",
                br#"{"choices":[{"message":{"content":"\ud800"},"finish_reason":"stop"}]}"#,
                true,
                "malformed response (not JSON: unexpected end of hex escape at line 1 column 42)",
            ),
            (
                "text/html",
                b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>",
                true,
                "malformed response (HTML, not JSON): an HTML page titled \"502 Bad Gateway\"",
            ),
            (
                "application/json",
                br#"{"choices":[{"message":{"content":"cut here"#,
                true,
                "malformed response (not JSON: EOF while parsing a string at line 1 column 43)",
            ),
            (
                "text/event-stream",
                b"data: {\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n",
                false,
                "the server sent an event stream, which was not requested: data:",
            ),
            (
                "application/json",
                br#"{"error":{"message":"upstream failed","type":"server_error"}}"#,
                true,
                "HTTP 200 with an error in the body: server_error: upstream failed",
            ),
            (
                "application/json",
                br#"{"choices":[]}"#,
                true,
                "malformed response (no choices): {\"choices\":[]}",
            ),
        ];
        for (content_type, body, retryable, want) in cases {
            let body = body.to_vec();
            let server = TestServer::start(move |_, stream| {
                write(stream, &response("200 OK", content_type, &body));
            });
            let got = call(&openai_at(&server.url), LIMITS).await;
            match (&got, retryable) {
                (Err(CallError::Retryable { message, .. }), true)
                | (Err(CallError::Fatal(message)), false) => {
                    assert!(message.starts_with(want), "{message}\nwant {want}")
                }
                _ => panic!("{want}: {got:?}"),
            }
        }
    }

    #[tokio::test]
    async fn a_body_cut_short_is_a_dropped_connection() {
        let server = TestServer::start(|_, stream| {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
                ANSWER.len()
            );
            write(stream, head.as_bytes());
            write(stream, &ANSWER.as_bytes()[..20]);
        });
        let Err(CallError::Retryable { message, .. }) = call(&openai_at(&server.url), LIMITS).await
        else {
            panic!("a dropped connection is retried")
        };
        assert!(message.starts_with("the connection failed"), "{message}");
    }

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
