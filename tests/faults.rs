//! Fault injection through `assay run`. A server on 127.0.0.1 speaks the OpenAI, Anthropic
//! and Ollama wire formats and misbehaves in the way the item's prompt names (`fault:KIND`):
//! broken bodies, broken connections, answers that are no answer, bodies too slow or too
//! large, a key echoed back, a redirect to another origin. Whatever it sends, every item ends
//! in exactly one state with its cause, the calls the run counts are the requests the server
//! saw, the key never follows a redirect out of its origin, and the process ends without a
//! panic. `--timeout 1` and one retry keep a run at about two seconds.

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The API key of every run: the server echoes it, and it must go nowhere else.
const KEY: &str = "sk-faults-sentinel-5b1e8d0c-never-write-me";

/// The fault kinds, each with what its item must end as. `calls` is how many requests the
/// item makes with `--retries 1`: two for what is worth another try, one for the rest.
struct Fault {
    kind: &'static str,
    state: &'static str,
    calls: u32,
}

const FAULTS: &[Fault] = &[
    // The clean controls: a plain answer, a blank one, one behind a same-origin redirect.
    Fault {
        kind: "plain",
        state: "ok",
        calls: 1,
    },
    Fault {
        kind: "blank",
        state: "ok",
        calls: 1,
    },
    Fault {
        kind: "sameorigin",
        state: "ok",
        calls: 1,
    },
    Fault {
        kind: "badjson",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "errorbody",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "html",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "truncated",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "reset",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "close",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "empty",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "null",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "filter",
        state: "filtered",
        calls: 1,
    },
    Fault {
        kind: "nonutf8",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "surrogate",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "sse",
        state: "error",
        calls: 1,
    },
    Fault {
        kind: "drip",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "hang",
        state: "error",
        calls: 2,
    },
    Fault {
        kind: "endless",
        state: "error",
        calls: 1,
    },
    Fault {
        kind: "echokey",
        state: "error",
        calls: 1,
    },
    Fault {
        kind: "redirect",
        state: "error",
        calls: 1,
    },
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    OpenAi,
    Anthropic,
    Ollama,
}

impl Format {
    fn of_path(path: &str) -> Format {
        match path {
            "/v1/messages" => Format::Anthropic,
            "/api/chat" => Format::Ollama,
            _ => Format::OpenAi,
        }
    }

    /// The spec's target at the server `url`, its key in `FAULTS_KEY`.
    fn target(self, url: &str) -> String {
        let (provider, endpoint) = match self {
            Format::OpenAi => ("openai_compatible", format!("{url}/v1")),
            Format::Anthropic => ("anthropic", url.to_string()),
            Format::Ollama => ("ollama", url.to_string()),
        };
        format!(
            "target sut {{\n  provider = {provider}\n  model = \"m\"\n  endpoint = \"{endpoint}\"\n  api_key_env = \"FAULTS_KEY\"\n}}\n"
        )
    }

    /// The fault kinds this format can carry: Ollama's API has no content filter.
    fn faults(self) -> Vec<&'static Fault> {
        FAULTS
            .iter()
            .filter(|f| !(self == Format::Ollama && f.kind == "filter"))
            .collect()
    }

    /// The start of the cause an item of `kind` ends with.
    fn cause(self, kind: &str, elsewhere: &str) -> String {
        let malformed = |what: &str| format!("malformed response ({what}");
        match (kind, self) {
            ("badjson", _) => malformed("not JSON: key must be a string"),
            ("errorbody", Format::OpenAi) => {
                "HTTP 200 with an error in the body: server_error: upstream failed".into()
            }
            ("errorbody", Format::Anthropic) => {
                "HTTP 200 with an error in the body: overloaded_error: Overloaded".into()
            }
            ("errorbody", Format::Ollama) => {
                "HTTP 200 with an error in the body: model runner stopped".into()
            }
            ("html", _) => malformed("HTML, not JSON): an HTML page titled \"502 Bad Gateway\""),
            ("truncated" | "reset" | "close", _) => "the connection failed".into(),
            ("empty", Format::OpenAi) => malformed("no choices)"),
            ("null", Format::OpenAi) => malformed("message content is null, finish_reason: stop)"),
            ("empty" | "null", Format::Anthropic) => {
                malformed("no text content block, stop_reason: end_turn)")
            }
            ("empty" | "null", Format::Ollama) => malformed("no message content)"),
            ("filter", Format::OpenAi) => {
                "refused by the provider's content filter: finish_reason: content_filter".into()
            }
            ("filter", _) => {
                "refused by the provider's content filter: stop_reason: refusal".into()
            }
            ("nonutf8", _) => malformed("not UTF-8: invalid byte at offset"),
            ("surrogate", _) => malformed("not JSON: unexpected end of hex escape"),
            ("sse", _) => "the server sent an event stream, which was not requested".into(),
            ("drip" | "hang", _) => "timed out".into(),
            ("endless", _) => "response larger than 1048576 bytes".into(),
            ("echokey", _) => "HTTP 401: ".into(),
            ("redirect", _) => format!(
                "the server redirected to another origin ({elsewhere}); not followed, so the key is not sent there"
            ),
            _ => unreachable!("{kind} has no cause"),
        }
    }

    /// A successful answer holding `content` where the text goes (the value as JSON, so a
    /// test can put `null` there), with `stop` as the finish or stop reason.
    fn answer(self, content: &str, stop: &str) -> String {
        match self {
            Format::OpenAi => format!(
                r#"{{"id":"c1","object":"chat.completion","choices":[{{"index":0,"message":{{"role":"assistant","content":{content}}},"finish_reason":"{stop}"}}],"usage":{{"prompt_tokens":11,"completion_tokens":7}}}}"#
            ),
            Format::Anthropic => format!(
                r#"{{"id":"msg_1","type":"message","role":"assistant","content":[{{"type":"text","text":{content}}}],"stop_reason":"{stop}","usage":{{"input_tokens":11,"output_tokens":7}}}}"#
            ),
            Format::Ollama => format!(
                r#"{{"model":"m","message":{{"role":"assistant","content":{content}}},"done":true,"done_reason":"{stop}","prompt_eval_count":11,"eval_count":7}}"#
            ),
        }
    }

    fn ok(self, text: &str) -> String {
        let stop = if self == Format::Anthropic {
            "end_turn"
        } else {
            "stop"
        };
        self.answer(&json!(text).to_string(), stop)
    }

    /// What the format sends when it answers with nothing: no choice, no content block, no
    /// message.
    fn empty(self) -> String {
        match self {
            Format::OpenAi => r#"{"id":"c1","object":"chat.completion","choices":[]}"#.into(),
            Format::Anthropic => {
                r#"{"type":"message","content":[],"stop_reason":"end_turn"}"#.into()
            }
            Format::Ollama => r#"{"model":"m","done":true}"#.into(),
        }
    }

    fn filtered(self) -> String {
        match self {
            Format::OpenAi => self.answer("null", "content_filter"),
            _ => r#"{"type":"message","content":[],"stop_reason":"refusal"}"#.into(),
        }
    }

    fn error_body(self) -> String {
        match self {
            Format::OpenAi => {
                r#"{"error":{"message":"upstream failed","type":"server_error"}}"#.into()
            }
            Format::Anthropic => {
                r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#
                    .into()
            }
            Format::Ollama => r#"{"error":"model runner stopped"}"#.into(),
        }
    }

    /// An event stream, as a server sends when it streams without being asked.
    fn event_stream(self) -> String {
        match self {
            Format::Anthropic => "event: message_start\ndata: {\"type\":\"message_start\"}\n\nevent: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n".into(),
            _ => "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: [DONE]\n\n".into(),
        }
    }
}

/// What a server saw: calls per prompt and every request it read. A request that follows a
/// same-origin redirect is part of its call, not a call of its own.
#[derive(Default)]
struct Seen {
    calls: BTreeMap<String, u32>,
    requests: Vec<String>,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    /// A fault server whose `redirect` fault points at `elsewhere`.
    fn start(elsewhere: &str) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        let elsewhere = elsewhere.to_string();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&shared);
                let elsewhere = elsewhere.clone();
                std::thread::spawn(move || serve(stream, &seen, &elsewhere));
            }
        });
        Server { url, seen }
    }

    fn total_calls(&self) -> u32 {
        self.seen.lock().unwrap().calls.values().sum()
    }
}

/// Looks at a whole request without reading it (so that closing the connection then resets
/// it): its length in bytes and its text.
fn peek_request(stream: &TcpStream) -> Option<(usize, String)> {
    let mut buf = vec![0; 1 << 20];
    loop {
        let n = stream.peek(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        let seen = &buf[..n];
        if let Some(end) = seen.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&seen[..end]).to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let total = end + 4 + length;
            if n >= total {
                return Some((total, String::from_utf8_lossy(&seen[..total]).into_owned()));
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

fn respond(stream: &mut TcpStream, status: &str, content_type: &str, body: &[u8]) {
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
}

/// One request per connection, answered as its prompt's fault says.
fn serve(mut stream: TcpStream, seen: &Mutex<Seen>, elsewhere: &str) {
    let Some((length, request)) = peek_request(&stream) else {
        return;
    };
    let (head, body) = request.split_once("\r\n\r\n").unwrap_or((&request, ""));
    let full_path = head.split_whitespace().nth(1).unwrap_or("").to_string();
    let redirected = full_path.starts_with("/same/");
    let path = full_path.strip_prefix("/same").unwrap_or(&full_path);
    let format = Format::of_path(path);
    let body: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let prompt = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or("")
        .to_string();
    let key = head
        .lines()
        .find_map(|l| {
            let lower = l.to_ascii_lowercase();
            (lower.starts_with("authorization: bearer ") || lower.starts_with("x-api-key: "))
                .then(|| l.rsplit(' ').next().unwrap_or("").to_string())
        })
        .unwrap_or_default();
    {
        let mut seen = seen.lock().unwrap();
        seen.requests.push(request.clone());
        if !redirected {
            *seen.calls.entry(prompt.clone()).or_default() += 1;
        }
    }
    let kind = prompt.strip_prefix("fault:").unwrap_or("plain");
    if kind == "reset" {
        // Closing with the request unread makes the kernel reset the connection.
        return;
    }
    let mut consumed = vec![0; length];
    if stream.read_exact(&mut consumed).is_err() {
        return;
    }
    let json = "application/json";
    let ok = format.ok(&format!("answer to: {kind}"));
    match kind {
        "blank" => respond(&mut stream, "200 OK", json, format.ok("").as_bytes()),
        "sameorigin" if !redirected => {
            let to = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: /same{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(to.as_bytes());
        }
        "badjson" => respond(&mut stream, "200 OK", json, b"{not json"),
        "errorbody" => respond(&mut stream, "200 OK", json, format.error_body().as_bytes()),
        "html" => respond(
            &mut stream,
            "200 OK",
            "text/html",
            b"<html><head><title>502 Bad Gateway</title></head><body><center>nginx</center></body></html>",
        ),
        "truncated" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {json}\r\nContent-Length: {}\r\n\r\n",
                ok.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&ok.as_bytes()[..ok.len() / 2]);
        }
        "close" => {}
        "empty" => respond(&mut stream, "200 OK", json, format.empty().as_bytes()),
        "null" => {
            let stop = if format == Format::Anthropic {
                "end_turn"
            } else {
                "stop"
            };
            respond(
                &mut stream,
                "200 OK",
                json,
                format.answer("null", stop).as_bytes(),
            );
        }
        "filter" => respond(&mut stream, "200 OK", json, format.filtered().as_bytes()),
        "nonutf8" => {
            // "café" in Latin-1: the é is one byte 0xE9, which is not UTF-8.
            let mut bytes = format.ok("caf@").into_bytes();
            let at = bytes.iter().position(|b| *b == b'@').unwrap();
            bytes[at] = 0xe9;
            respond(&mut stream, "200 OK", json, &bytes);
        }
        "surrogate" => {
            let body = format.ok("@@").replace("@@", "\\ud800");
            respond(&mut stream, "200 OK", json, body.as_bytes());
        }
        "sse" => respond(
            &mut stream,
            "200 OK",
            "text/event-stream",
            format.event_stream().as_bytes(),
        ),
        "drip" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {json}\r\nContent-Length: {}\r\n\r\n",
                ok.len()
            );
            let _ = stream.write_all(head.as_bytes());
            for byte in ok.as_bytes() {
                if stream.write_all(&[*byte]).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        }
        "hang" => std::thread::sleep(Duration::from_secs(5)),
        "endless" => {
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: {json}\r\nConnection: close\r\n\r\n{{\"choices\":[{{\"message\":{{\"content\":\""
            );
            let _ = stream.write_all(head.as_bytes());
            let block = vec![b'a'; 64 * 1024];
            while stream.write_all(&block).is_ok() {}
        }
        "echokey" => {
            let body = json!({ "error": {
                "message": format!("Incorrect API key provided: {key}"),
                "type": "invalid_request_error",
            }});
            respond(
                &mut stream,
                "401 Unauthorized",
                json,
                body.to_string().as_bytes(),
            );
        }
        "redirect" => {
            let to = format!(
                "HTTP/1.1 307 Temporary Redirect\r\nLocation: {elsewhere}{path}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            );
            let _ = stream.write_all(to.as_bytes());
        }
        _ => respond(&mut stream, "200 OK", json, ok.as_bytes()),
    }
}

/// One run of every fault of `format`: its folder, the servers, and the process's output.
struct FaultRun {
    dir: tempfile::TempDir,
    server: Server,
    elsewhere: Server,
    faults: Vec<&'static Fault>,
    out: Output,
}

fn run_faults(format: Format, faults: Vec<&'static Fault>) -> FaultRun {
    // The other origin: a second server on another port, which no request may reach.
    let elsewhere = Server::start("");
    let server = Server::start(&elsewhere.url);
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = faults
        .iter()
        .map(|f| format!("\"fault:{}\"", f.kind))
        .collect();
    let spec = format!(
        "suite \"faults\" version \"1.0.0\"\ntemplate t {{\n  prompt = \"{{{{p}}}}\"\n  vars {{ p in [{}] }}\n}}\n{}",
        prompts.join(", "),
        format.target(&server.url)
    );
    std::fs::write(dir.path().join("main.assay"), spec).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "run",
            "main.assay",
            "--out",
            "out",
            "--timeout",
            "1",
            "--retries",
            "1",
            "--concurrency",
            "32",
        ])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env("ASSAY_BACKOFF_MS", "1")
        .env("FAULTS_KEY", KEY)
        .env_remove("ASSAY_STATE_DIR")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OLLAMA_HOST")
        .output()
        .unwrap();
    FaultRun {
        dir,
        server,
        elsewhere,
        faults,
        out,
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// Every item in exactly one state, with its cause; the run's calls are the server's.
fn check(format: Format) {
    let run = run_faults(format, format.faults());
    let stderr = text(&run.out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // 0, or 4 once a run with this many failures is marked invalid; never a crash.
    assert!(
        matches!(run.out.status.code(), Some(0 | 4)),
        "{:?}: {stderr}",
        run.out.status
    );
    let out = run.dir.path().join("out");
    let records: Vec<Value> = std::fs::read_to_string(out.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), run.faults.len(), "one result per item");
    let seen = run.server.seen.lock().unwrap();
    for fault in &run.faults {
        let prompt = format!("fault:{}", fault.kind);
        let mine: Vec<&Value> = records
            .iter()
            .filter(|r| r["messages"][0]["content"] == prompt.as_str())
            .collect();
        let [record] = mine.as_slice() else {
            panic!("{prompt}: {} results", mine.len());
        };
        let what = format!("{format:?} {prompt}: {record}");
        assert_eq!(record["state"], fault.state, "{what}");
        assert_eq!(
            seen.calls.get(&prompt).copied().unwrap_or(0),
            fault.calls,
            "{what}"
        );
        if fault.state == "ok" {
            let want = if fault.kind == "blank" {
                String::new()
            } else {
                format!("answer to: {}", fault.kind)
            };
            assert_eq!(record["response"], want.as_str(), "{what}");
            assert!(record["error"].is_null(), "{what}");
            continue;
        }
        assert!(record["response"].is_null(), "{what}");
        let error = record["error"].as_str().unwrap_or_else(|| panic!("{what}"));
        let cause = format.cause(fault.kind, &run.elsewhere.url);
        assert!(error.starts_with(&cause), "{what}\nwant {cause}");
        if fault.calls == 2 {
            assert!(error.ends_with("(gave up after 2 attempts)"), "{what}");
        }
    }
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("run.json")).unwrap()).unwrap();
    assert_eq!(
        info["calls"].as_u64(),
        Some(u64::from(seen.calls.values().sum::<u32>())),
        "{info}"
    );
    drop(seen);
    assert_eq!(
        run.server.total_calls(),
        info["calls"].as_u64().unwrap() as u32
    );
    // Nothing reached the other origin, so no key did.
    assert!(run.elsewhere.seen.lock().unwrap().requests.is_empty());
    // The key went to the server with every request that carries one.
    if format != Format::Ollama {
        let seen = run.server.seen.lock().unwrap();
        assert!(seen.requests.iter().all(|r| r.contains(KEY)));
    }
}

#[test]
fn openai_faults_end_in_one_state_each() {
    check(Format::OpenAi);
}

#[test]
fn anthropic_faults_end_in_one_state_each() {
    check(Format::Anthropic);
}

#[test]
fn ollama_faults_end_in_one_state_each() {
    check(Format::Ollama);
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            all_files(&path, out);
        } else {
            out.push(path);
        }
    }
}

/// The server echoes the key in an error body: it still reaches no file of the run folder
/// or the state (`.assay/`, the database included) and no line of output.
#[test]
fn no_secret_reaches_disk_or_output() {
    for format in [Format::OpenAi, Format::Anthropic] {
        let run = run_faults(format, format.faults());
        assert!(
            run.server
                .seen
                .lock()
                .unwrap()
                .requests
                .iter()
                .any(|r| r.contains("fault:echokey")),
            "the key was echoed"
        );
        let mut files = Vec::new();
        all_files(run.dir.path(), &mut files);
        assert!(files.iter().any(|f| f.ends_with("results.jsonl")));
        assert!(
            files
                .iter()
                .any(|f| f.starts_with(run.dir.path().join(".assay")))
        );
        for file in files {
            let bytes = std::fs::read(&file).unwrap();
            assert!(
                !bytes.windows(KEY.len()).any(|w| w == KEY.as_bytes()),
                "{format:?}: {} holds the key",
                file.display()
            );
        }
        assert!(!text(&run.out.stdout).contains(KEY), "{format:?}: stdout");
        assert!(!text(&run.out.stderr).contains(KEY), "{format:?}: stderr");
    }
}

/// A run whose every item failed measured nothing: it exits with the "run invalid" status.
#[test]
fn a_run_whose_every_item_failed_exits_4() {
    let failing: Vec<&'static Fault> = FAULTS
        .iter()
        .filter(|f| {
            matches!(
                f.kind,
                "badjson" | "sse" | "endless" | "echokey" | "redirect"
            )
        })
        .collect();
    let run = run_faults(Format::OpenAi, failing);
    assert_eq!(run.out.status.code(), Some(4), "{}", text(&run.out.stderr));
}
