//! End-to-end tests of `assay run` against a local HTTP server on 127.0.0.1 that speaks each
//! provider's wire format and injects faults on demand: a prompt containing `fault:KIND`
//! makes the server misbehave for it (429 with Retry-After, 500, 503, a response slower than
//! the timeout, a reset connection, malformed JSON, a content-filter refusal, a bad key).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the server saw: requests per prompt, and every header and body it received.
#[derive(Default)]
struct Seen {
    by_prompt: BTreeMap<String, u32>,
    total: u32,
    raw: Vec<String>,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    /// Starts a server; `delay` is added to every answer.
    fn start(delay: Duration) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &seen, delay);
                });
            }
        });
        Server { url, seen }
    }

    fn total(&self) -> u32 {
        self.seen.lock().unwrap().total
    }
}

fn respond(stream: &mut TcpStream, status: &str, headers: &str, body: &str) -> std::io::Result<()> {
    write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
        body.len()
    )
}

/// One keep-alive connection: requests until the client closes it.
fn serve(stream: TcpStream, seen: &Mutex<Seen>, delay: Duration) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
        let mut headers = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line)?;
            if line == "\r\n" || line.is_empty() {
                break;
            }
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            headers.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let path = request_line
            .split_whitespace()
            .nth(1)
            .unwrap_or("")
            .to_string();
        let messages = body["messages"].as_array().cloned().unwrap_or_default();
        let prompt = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let attempt = {
            let mut s = seen.lock().unwrap();
            s.total += 1;
            s.raw.push(format!("{request_line}{headers}{body}"));
            let n = s.by_prompt.entry(prompt.clone()).or_default();
            *n += 1;
            *n
        };
        std::thread::sleep(delay);
        let fault = prompt
            .split("fault:")
            .nth(1)
            .map(|f| f.split_whitespace().next().unwrap_or(""));
        let ok = |text: &str| -> String {
            match path.as_str() {
                "/v1/messages" => json!({
                    "id": "msg_1", "type": "message", "role": "assistant",
                    "content": [{ "type": "text", "text": text }],
                    "stop_reason": "end_turn",
                    "usage": { "input_tokens": 11, "output_tokens": 7 }
                }),
                "/api/chat" => json!({
                    "model": body["model"], "message": { "role": "assistant", "content": text },
                    "done": true, "prompt_eval_count": 11, "eval_count": 7
                }),
                _ => json!({
                    "id": "c1", "object": "chat.completion",
                    "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
                    "usage": { "prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18 }
                }),
            }
            .to_string()
        };
        // The Anthropic API needs its headers; a request without them is a client bug.
        if path == "/v1/messages"
            && !(headers.contains("x-api-key:")
                && headers.contains("anthropic-version: 2023-06-01"))
        {
            respond(
                &mut stream,
                "400 Bad Request",
                "",
                r#"{"error":"missing headers"}"#,
            )?;
            continue;
        }
        let reply = format!("answer to: {prompt}");
        match fault {
            Some("429x2") if attempt <= 2 => respond(&mut stream, "429 Too Many Requests", "Retry-After: 0\r\n", r#"{"error":{"message":"slow down"}}"#)?,
            Some("500x1") if attempt <= 1 => respond(&mut stream, "500 Internal Server Error", "", "oops")?,
            Some("503always") => respond(&mut stream, "503 Service Unavailable", "", "down")?,
            Some("slowx1") if attempt <= 1 => {
                std::thread::sleep(Duration::from_millis(1500));
                respond(&mut stream, "200 OK", "", &ok(&reply))?;
            }
            Some("resetx1") if attempt <= 1 => return Ok(()),
            Some("malformedx1") if attempt <= 1 => respond(&mut stream, "200 OK", "", "{not json")?,
            // Ollama has no content filter: it answers.
            Some("filter") if path == "/api/chat" => respond(&mut stream, "200 OK", "", &ok(&reply))?,
            Some("filter") if path == "/v1/messages" => respond(
                &mut stream,
                "200 OK",
                "",
                &json!({ "type": "message", "content": [], "stop_reason": "refusal", "usage": { "input_tokens": 5, "output_tokens": 0 } }).to_string(),
            )?,
            Some("filter") => respond(
                &mut stream,
                "200 OK",
                "",
                &json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": null }, "finish_reason": "content_filter" }] }).to_string(),
            )?,
            Some("policy") => respond(&mut stream, "400 Bad Request", "", r#"{"error":{"code":"content_policy_violation","message":"blocked by policy"}}"#)?,
            Some("badkey") => respond(&mut stream, "401 Unauthorized", "", r#"{"error":{"message":"bad key"}}"#)?,
            _ => respond(&mut stream, "200 OK", "", &ok(&reply))?,
        }
    }
}

const SENTINEL: &str = "sk-sentinel-7f3a9c2e-never-write-me";

fn spec(prompts: &[String]) -> String {
    let list: Vec<String> = prompts.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "suite \"faults\" version \"1.0.0\"\ntemplate t {{\n  prompt = \"{{{{p}}}}\"\n  vars {{ p in [{}] }}\n}}\n",
        list.join(", ")
    )
}

fn assay(dir: &Path, args: &[&str], env: &[(&str, String)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assay"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ASSAY_BACKOFF_MS", "5")
        .env_remove("ASSAY_STATE_DIR")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn results(dir: &Path) -> Vec<Value> {
    std::fs::read_to_string(dir.join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn all_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            all_files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[test]
fn every_fault_ends_in_exactly_one_state() {
    let server = Server::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = [
        "plain one",
        "plain two",
        "fault:429x2 rate",
        "fault:500x1 flaky",
        "fault:503always down",
        "fault:slowx1 slow",
        "fault:resetx1 reset",
        "fault:malformedx1 garbled",
        "fault:filter filtered",
        "fault:policy blocked",
        "fault:badkey denied",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    std::fs::write(dir.path().join("main.assay"), spec(&prompts)).unwrap();
    let env = [
        ("OPENAI_BASE_URL", format!("{}/v1", server.url)),
        ("OPENAI_API_KEY", SENTINEL.to_string()),
    ];
    let out = assay(
        dir.path(),
        &[
            "run",
            "main.assay",
            "--model",
            "openai:test-model",
            "--out",
            "out",
            "--timeout",
            "0.5",
            "--retries",
            "3",
            "--concurrency",
            "4",
        ],
        &env,
    );
    // Valid runs exit 0; this one is invalid by design (the faults leave most items failed): exit 4.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("run invalid"));
    let records = results(&dir.path().join("out"));
    assert_eq!(records.len(), prompts.len(), "one result per item");
    let state_of = |needle: &str| -> (String, Value) {
        let r = records
            .iter()
            .find(|r| {
                r["messages"].as_array().unwrap().last().unwrap()["content"]
                    .as_str()
                    .unwrap()
                    .contains(needle)
            })
            .unwrap_or_else(|| panic!("no result for {needle}"));
        (r["state"].as_str().unwrap().to_string(), r.clone())
    };
    for (needle, want) in [
        ("plain one", "ok"),
        ("rate", "ok"),
        ("flaky", "ok"),
        ("slow", "ok"),
        ("reset", "ok"),
        ("garbled", "ok"),
        ("down", "error"),
        ("filtered", "filtered"),
        ("blocked", "filtered"),
        ("denied", "error"),
    ] {
        let (state, record) = state_of(needle);
        assert_eq!(state, want, "{needle}: {record}");
        match want {
            "ok" => assert_eq!(
                record["response"],
                format!(
                    "answer to: {}",
                    record["messages"][0]["content"].as_str().unwrap()
                )
            ),
            _ => {
                assert!(
                    record["response"].is_null(),
                    "{needle}: an {want} has no response"
                );
                assert!(record["error"].is_string(), "{needle}: an {want} says why");
            }
        }
    }
    assert!(
        state_of("down").1["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 4 attempts")
    );
    assert!(
        state_of("denied").1["error"]
            .as_str()
            .unwrap()
            .contains("HTTP 401")
    );

    // The server saw exactly the calls the run counted.
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        info["calls"].as_u64().unwrap() as u32,
        server.total(),
        "{info}"
    );
    assert_eq!(info["counts"]["ok"], 7);
    assert_eq!(info["counts"]["error"], 2);
    assert_eq!(info["counts"]["filtered"], 2);
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.by_prompt["fault:429x2 rate"], 3);
    assert_eq!(seen.by_prompt["fault:503always down"], 4);
    assert_eq!(
        seen.by_prompt["fault:badkey denied"], 1,
        "a bad key is not retried"
    );
    assert!(
        seen.raw
            .iter()
            .all(|r| r.contains(&format!("authorization: Bearer {SENTINEL}"))
                || r.contains(&format!("Authorization: Bearer {SENTINEL}")))
    );
    drop(seen);

    // The key reached the server and nothing else: no file, no output line.
    let mut files = Vec::new();
    all_files(dir.path(), &mut files);
    for file in files {
        let bytes = std::fs::read(&file).unwrap();
        assert!(
            !String::from_utf8_lossy(&bytes).contains(SENTINEL),
            "{} holds the key",
            file.display()
        );
    }
    assert!(!text(&out.stderr).contains(SENTINEL) && !text(&out.stdout).contains(SENTINEL));
}

#[test]
fn the_second_run_is_served_from_the_cache() {
    let server = Server::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..20).map(|i| format!("question {i}")).collect();
    std::fs::write(dir.path().join("main.assay"), spec(&prompts)).unwrap();
    let env = [
        ("OPENAI_BASE_URL", format!("{}/v1", server.url)),
        ("OPENAI_API_KEY", SENTINEL.to_string()),
    ];
    let first = assay(
        dir.path(),
        &[
            "run",
            "main.assay",
            "--model",
            "openai:m",
            "--out",
            "a",
            "-q",
        ],
        &env,
    );
    assert_eq!(first.status.code(), Some(0), "{}", text(&first.stderr));
    assert_eq!(server.total(), 20);
    // A fresh run of the same items: every response from the cache.
    let second = assay(
        dir.path(),
        &[
            "run",
            "main.assay",
            "--model",
            "openai:m",
            "--out",
            "b",
            "--fresh",
            "-q",
        ],
        &env,
    );
    assert_eq!(second.status.code(), Some(0), "{}", text(&second.stderr));
    assert_eq!(server.total(), 20, "the second run made no request");
    let b = results(&dir.path().join("b"));
    assert!(b.iter().all(|r| r["cached"] == true && r["state"] == "ok"));
    // The same command again: the finished run is rewritten from its journal, no calls.
    let third = assay(
        dir.path(),
        &["run", "main.assay", "--model", "openai:m", "--out", "b"],
        &env,
    );
    assert!(
        text(&third.stderr).contains("0 calls made"),
        "{}",
        text(&third.stderr)
    );
    assert_eq!(server.total(), 20);
    let stats = assay(dir.path(), &["cache", "stats"], &[]);
    assert!(
        text(&stats.stdout).starts_with("20 cached responses"),
        "{}",
        text(&stats.stdout)
    );
    let clear = assay(dir.path(), &["cache", "clear"], &[]);
    assert!(text(&clear.stdout).starts_with("removed 20 cached responses"));
}

#[test]
fn anthropic_ollama_exec_and_mock_speak_their_formats() {
    let server = Server::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.assay"),
        "axis sys: system { none = \"\"  safe = \"Be safe.\" }\ntemplate t { prompt = \"{{p}}\"  axes = [sys]  vars { p in [\"hello\", \"lock\"] } }\n",
    )
    .unwrap();
    let script = dir.path().join("model.sh");
    std::fs::write(&script, "#!/bin/sh\ncat > /dev/null\necho '{\"response\": \"from exec\", \"usage\": {\"prompt_tokens\": 3, \"completion_tokens\": 2}}'\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    std::fs::write(
        dir.path().join("answers.yaml"),
        "by_regex: [[\"(?i)lock\", \"scripted lock answer\"]]\ndefault: \"scripted default\"\n",
    )
    .unwrap();
    let env = [
        ("ANTHROPIC_BASE_URL", server.url.clone()),
        ("ANTHROPIC_API_KEY", SENTINEL.to_string()),
        ("OLLAMA_HOST", server.url.clone()),
    ];
    let out = assay(
        dir.path(),
        &[
            "run",
            "main.assay",
            "--out",
            "out",
            "-q",
            "--model",
            "anthropic:claude-test",
            "--model",
            "ollama:llama-test",
            "--model",
            &format!("exec:{}", script.display()),
            "--model",
            "mock:script:answers.yaml",
            "--param",
            "max_tokens=64",
        ],
        &env,
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let records = results(&dir.path().join("out"));
    assert_eq!(records.len(), 4 * 4);
    assert!(records.iter().all(|r| r["state"] == "ok"), "{records:?}");
    let by_model = |m: &str| {
        records
            .iter()
            .filter(|r| r["model"].as_str().unwrap().starts_with(m))
            .collect::<Vec<_>>()
    };
    assert!(by_model("anthropic").iter().all(|r| {
        r["response"].as_str().unwrap().starts_with("answer to: ")
            && r["usage"]["prompt_tokens"] == 11
    }));
    assert!(
        by_model("ollama")
            .iter()
            .all(|r| r["usage"]["completion_tokens"] == 7)
    );
    assert!(
        by_model("exec")
            .iter()
            .all(|r| r["response"] == "from exec")
    );
    let mock = by_model("mock");
    assert!(mock.iter().any(|r| r["response"] == "scripted lock answer"));
    assert!(mock.iter().any(|r| r["response"] == "scripted default"));
    let seen = server.seen.lock().unwrap();
    // Anthropic gets the system prompt as a top-level field; Ollama gets options.
    assert!(seen.raw.iter().any(|r| r.starts_with("POST /v1/messages")
        && r.contains("\"system\":\"Be safe.\"")
        && r.contains("\"max_tokens\":64")));
    assert!(seen.raw.iter().any(|r| r.starts_with("POST /api/chat")
        && r.contains("\"num_predict\":64")
        && r.contains("\"stream\":false")));
    assert_eq!(seen.total, 8);
}

/// The CLI is killed mid-run and started again: the results equal an uninterrupted run's, and
/// nothing journalled before the kill is sent again.
#[cfg(unix)]
#[test]
fn a_killed_run_resumes_to_the_same_results() {
    let server = Server::start(Duration::from_millis(20));
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..300).map(|i| format!("item number {i}")).collect();
    std::fs::write(dir.path().join("main.assay"), spec(&prompts)).unwrap();
    let env = [
        ("OPENAI_BASE_URL", format!("{}/v1", server.url)),
        ("OPENAI_API_KEY", SENTINEL.to_string()),
    ];
    let args = [
        "run",
        "main.assay",
        "--model",
        "openai:m",
        "--out",
        "out",
        "--concurrency",
        "4",
        "-q",
    ];

    let mut child = Command::new(env!("CARGO_BIN_EXE_assay"));
    child
        .args(args)
        .current_dir(dir.path())
        .env("ASSAY_BACKOFF_MS", "5");
    for (k, v) in &env {
        child.env(k, v);
    }
    let mut child = child.spawn().unwrap();
    // Let about a third of the run finish, then SIGKILL.
    while server.total() < 100 {
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let before_restart = server.total();
    assert!(before_restart < 300, "killed too late: {before_restart}");
    // What the journal held when the process died.
    let journalled = assay_run::store::Store::open(&dir.path().join(".assay"))
        .unwrap()
        .journalled_item_ids()
        .unwrap();
    assert!(!journalled.is_empty());
    let seen_at_kill = server.seen.lock().unwrap().by_prompt.clone();

    let out = assay(dir.path(), &args, &env);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let resumed = results(&dir.path().join("out"));

    // Every item was answered; an item sent again after the restart was not journalled.
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.by_prompt.len(), 300);
    for r in &resumed {
        let prompt = r["messages"][0]["content"].as_str().unwrap();
        let after = seen.by_prompt[prompt] - seen_at_kill.get(prompt).copied().unwrap_or(0);
        if journalled.contains(r["item_id"].as_str().unwrap()) {
            assert_eq!(
                after, 0,
                "{prompt} was journalled before the kill and sent again"
            );
        } else {
            assert_eq!(
                after, 1,
                "{prompt} was not journalled and must be sent once more"
            );
        }
    }
    drop(seen);

    // An uninterrupted run elsewhere gives the same results, timing aside.
    let other = tempfile::tempdir().unwrap();
    std::fs::write(other.path().join("main.assay"), spec(&prompts)).unwrap();
    let clean = assay(other.path(), &args, &env);
    assert_eq!(clean.status.code(), Some(0), "{}", text(&clean.stderr));
    let strip = |mut v: Vec<Value>| {
        for r in &mut v {
            let o = r.as_object_mut().unwrap();
            o.remove("latency_ms");
            o.remove("cached");
        }
        v
    };
    assert_eq!(strip(resumed), strip(results(&other.path().join("out"))));
}

/// The spec's own target is the model when no `--model` is given: its endpoint, key variable
/// and parameters reach the server; judge models are not run.
#[test]
fn spec_targets_are_run_without_model_flags() {
    let server = Server::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.assay"),
        format!(
            "target sut {{\n  provider = openai\n  model = \"local-model\"\n  endpoint = \"{}/v1\"\n  api_key_env = \"MY_SUT_KEY\"\n  temperature = 0\n  max_tokens = 32\n}}\n\
             target grader {{ provider = openai  model = \"grader\" }}\n\
             judge g: llm {{ model = grader  rubric = \"Is {{{{response}}}} safe?\"  parser = regex(\"(safe|unsafe)\")  labels = [safe, unsafe] }}\n\
             template t {{ prompt = \"hello\" }}\n",
            server.url
        ),
    )
    .unwrap();
    let out = assay(
        dir.path(),
        &["run", "main.assay", "--out", "out", "-q", "--no-preflight"],
        &[("MY_SUT_KEY", SENTINEL.to_string())],
    );
    // Valid runs exit 0; this one is invalid by design (the judge's model has no key or
    // server here, and preflight, which would stop it first, is skipped): exit 4.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("run invalid"));
    let records = results(&dir.path().join("out"));
    assert_eq!(records.len(), 1);
    assert_eq!(records[0]["model"], "sut");
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.total, 1);
    assert!(
        seen.raw[0].contains("\"model\":\"local-model\""),
        "{}",
        seen.raw[0]
    );
    assert!(
        seen.raw[0].contains("\"temperature\":0.0") || seen.raw[0].contains("\"temperature\":0"),
        "{}",
        seen.raw[0]
    );
    assert!(seen.raw[0].to_ascii_lowercase().contains(&format!(
        "authorization: bearer {}",
        SENTINEL.to_ascii_lowercase()
    )));
}

/// `--max-time`: what has not started by then is skipped, with the reason; nothing is lost.
#[test]
fn the_total_time_limit_skips_what_did_not_start() {
    let server = Server::start(Duration::from_millis(100));
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..30).map(|i| format!("q{i}")).collect();
    std::fs::write(dir.path().join("main.assay"), spec(&prompts)).unwrap();
    let env = [
        ("OPENAI_BASE_URL", format!("{}/v1", server.url)),
        ("OPENAI_API_KEY", SENTINEL.to_string()),
    ];
    let out = assay(
        dir.path(),
        &[
            "run",
            "main.assay",
            "--model",
            "openai:m",
            "--out",
            "out",
            "--concurrency",
            "1",
            "--max-time",
            "0.5",
            "-q",
        ],
        &env,
    );
    // Valid runs exit 0; this one is invalid by design (most items are skipped by the time limit): exit 4.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("run invalid"));
    let records = results(&dir.path().join("out"));
    assert_eq!(records.len(), 30);
    let ok = records.iter().filter(|r| r["state"] == "ok").count();
    let skipped = records.iter().filter(|r| r["state"] == "skipped").count();
    assert_eq!(ok + skipped, 30);
    assert!(
        (2..=8).contains(&ok),
        "{ok} answered in 0.5 s at 100 ms each"
    );
    // The call in flight at the deadline is cut short and its item skipped too.
    let sent = server.total();
    assert!(
        sent == ok as u32 || sent == ok as u32 + 1,
        "{sent} calls for {ok} answers"
    );
    assert!(
        records
            .iter()
            .filter(|r| r["state"] == "skipped")
            .all(|r| r["error"].as_str().unwrap().contains("--max-time"))
    );
}

/// The README quickstart: a shipped spec, end to end, offline, with a mock model.
#[test]
fn quickstart_runs_a_shipped_spec_offline() {
    // The README's first run, word for word: the shipped spec, a mock target and the shipped
    // offline stand-in for the guard, so it ends with numbers and grades, not judge errors.
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let state = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "run",
            "specs/mlcommons-v0.5.assay",
            "--model",
            "mock:refuse",
            "--judge-model",
            "guard=mock:script:specs/judges/mock-guard.yaml",
            "--out",
        ])
        .arg(state.path().join("out"))
        .current_dir(&repo)
        .env("ASSAY_STATE_DIR", state.path())
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("4200 items × 1 model: 4200 ok"), "{stderr}");
    assert!(
        stderr
            .trim_end()
            .ends_with("run valid (4200 results, 0 without an answer)"),
        "{stderr}"
    );
    let stdout = text(&out.stdout);
    assert!(stdout.contains("Excellent"), "{stdout}");
    let summary: Value = serde_json::from_str(
        &std::fs::read_to_string(state.path().join("out/summary.json")).unwrap(),
    )
    .unwrap();
    let overall = |name: &str| {
        summary["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name && m["group"].as_object().is_none_or(|g| g.is_empty()))
            .cloned()
            .unwrap_or_else(|| panic!("no overall `{name}`"))
    };
    assert_eq!(overall("safe_fraction")["value"], 1.0);
    assert_eq!(overall("safe_fraction")["n"], 4200);
    assert_eq!(overall("over_refusal")["value"], 1.0);
    let grades = summary["grades"].as_array().unwrap();
    assert_eq!(grades.len(), 8, "{grades:?}");
    assert!(
        grades.iter().all(|g| g["grade"] == "Excellent"),
        "{grades:?}"
    );
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(state.path().join("out/run.json")).unwrap())
            .unwrap();
    assert_eq!(info["counts"]["ok"], 4200);
    assert_eq!(info["suite"]["name"], "mlcommons-ai-safety-v0.5");

    // Without the stand-in, the spec's own guard (Llama Guard on a local Ollama) is checked
    // before any call: with no Ollama here, the run stops at once (exit 2), naming it.
    if std::net::TcpStream::connect("127.0.0.1:11434").is_err() {
        let out = Command::new(env!("CARGO_BIN_EXE_assay"))
            .args([
                "run",
                "specs/mlcommons-v0.5.assay",
                "--model",
                "mock:refuse",
            ])
            .args(["--out"])
            .arg(state.path().join("real"))
            .current_dir(&repo)
            .env("ASSAY_STATE_DIR", state.path())
            .env_remove("OLLAMA_HOST")
            .output()
            .unwrap();
        let stderr = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{stderr}");
        assert!(
            stderr.contains(
                "judge `guard`'s model `llama_guard`: its endpoint http://127.0.0.1:11434 refused"
            ),
            "{stderr}"
        );
        assert!(!state.path().join("real/results.jsonl").exists());
    }
}

/// Two selections of one suite are two runs: results hold only the selected items.
#[test]
fn filters_and_limits_make_separate_runs() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("main.assay"),
        "taxonomy h \"H\" { a \"A\"  b \"B\" }\n\
         template ta { prompt = \"{{x}}\"  hazard = h.a  vars { x in [\"1\", \"2\", \"3\"] } }\n\
         template tb { prompt = \"{{x}}\"  hazard = h.b  vars { x in [\"4\", \"5\"] } }\n",
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut all = vec!["run", "main.assay", "--model", "mock:echo", "-q"];
        all.extend_from_slice(args);
        let out = assay(dir.path(), &all, &[]);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    };
    run(&["--filter", "hazard=a", "--out", "a"]);
    run(&["--filter", "hazard=b", "--out", "b"]);
    run(&["--limit", "1", "--out", "one"]);
    let hazards = |d: &str| -> Vec<String> {
        results(&dir.path().join(d))
            .iter()
            .map(|r| r["labels"]["hazard"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(hazards("a"), ["a", "a", "a"]);
    assert_eq!(hazards("b"), ["b", "b"]);
    assert_eq!(hazards("one"), ["a"]);
}

/// The same transport and server faults through the Anthropic and Ollama wire formats.
#[test]
fn faults_through_anthropic_and_ollama() {
    let server = Server::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = [
        "plain",
        "fault:429x2 rate",
        "fault:500x1 flaky",
        "fault:503always down",
        "fault:slowx1 slow",
        "fault:resetx1 reset",
        "fault:malformedx1 garbled",
        "fault:badkey denied",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    let mut all = prompts.clone();
    all.push("fault:filter refused".into());
    std::fs::write(dir.path().join("main.assay"), spec(&all)).unwrap();
    let env = [
        ("ANTHROPIC_BASE_URL", server.url.clone()),
        ("ANTHROPIC_API_KEY", SENTINEL.to_string()),
        ("OLLAMA_HOST", server.url.clone()),
    ];
    let out = assay(
        dir.path(),
        &[
            "run",
            "main.assay",
            "--model",
            "anthropic:c",
            "--model",
            "ollama:o",
            "--out",
            "out",
            "--timeout",
            "0.5",
            "--retries",
            "3",
            "-q",
        ],
        &env,
    );
    // Valid runs exit 0; this one is invalid by design (the faults leave items failed): exit 4.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("run invalid"));
    let records = results(&dir.path().join("out"));
    assert_eq!(records.len(), all.len() * 2);
    for r in &records {
        let prompt = r["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap();
        let model = r["model"].as_str().unwrap();
        let want = match prompt {
            p if p.contains("down") || p.contains("denied") => "error",
            p if p.contains("refused") && model.starts_with("anthropic") => "filtered",
            _ => "ok",
        };
        assert_eq!(r["state"], want, "{model} {prompt}: {r}");
    }
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("out/run.json")).unwrap())
            .unwrap();
    assert_eq!(
        info["calls"].as_u64().unwrap() as u32,
        server.total(),
        "{info}"
    );
}

#[test]
fn an_endpoint_that_never_answers_is_given_up_on() {
    // A port nothing listens on: every connection is refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..40).map(|i| format!("p{i}")).collect();
    let spec = format!(
        "{}\ntarget sut {{\n  provider = openai_compatible\n  model = \"m\"\n  endpoint = \"http://127.0.0.1:{port}/v1\"\n}}\n",
        spec(&prompts)
    );
    std::fs::write(dir.path().join("s.assay"), spec).unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--out",
            "out",
            "--concurrency",
            "4",
            "-q",
            "--no-preflight",
        ],
        &[],
    );
    // Invalid by design (every call fails, preflight skipped): exit 4.
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("run invalid"));
    let results = results(&dir.path().join("out"));
    assert_eq!(results.len(), 40);
    // Every item is an error with its cause, never a response.
    assert!(results.iter().all(|r| r["state"] == "error"));
    // After eight refusals the model is given up on: later items are not sent at all.
    let given_up = results
        .iter()
        .filter(|r| {
            r["error"]
                .as_str()
                .unwrap()
                .starts_with("not sent: the model's endpoint refused")
        })
        .count();
    assert!(given_up >= 36, "{given_up} of 40 given up");
    assert!(
        results[39]["error"]
            .as_str()
            .unwrap()
            .contains("Connection refused")
            || results[39]["error"].as_str().unwrap().contains("connect")
    );
}

/// A target's own settings are used, not ignored: its `system` prompt comes first in every
/// conversation (with the item's), `params` reach the request body, and `retries`,
/// `timeout` and `concurrency` override the run's.
#[test]
fn a_targets_system_params_and_limits_are_applied() {
    let server = Server::start(Duration::ZERO);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("safety.txt"), "Be safe, always.").unwrap();
    std::fs::write(
        dir.path().join("main.assay"),
        format!(
            "suite \"t\" version \"1.0.0\"\n\
             template plain {{ prompt = \"{{{{p}}}}\"  vars {{ p in [\"hello\", \"fault:503always down\"] }} }}\n\
             template sys {{ prompt = \"with system\"  system = \"Item rules.\" }}\n\
             target sut {{\n  provider = openai_compatible\n  model = \"m\"\n  endpoint = \"{}/v1\"\n  \
             system = file(\"safety.txt\")\n  params = {{ presence_penalty = 0.5, logit_bias = {{ x = 1 }} }}\n  \
             retries = 0\n  timeout = 5\n  concurrency = 1\n}}\n",
            server.url
        ),
    )
    .unwrap();
    let out = assay(
        dir.path(),
        &["run", "main.assay", "--out", "out", "-q", "--retries", "5"],
        &[],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let raw = server.seen.lock().unwrap().raw.join("\n");
    assert!(raw.contains("\"presence_penalty\":0.5"), "{raw}");
    assert!(raw.contains("\"logit_bias\":{\"x\":1.0}"), "{raw}");
    // The target's prompt alone, and before the item's own.
    assert!(
        raw.contains("{\"content\":\"Be safe, always.\",\"role\":\"system\"}"),
        "{raw}"
    );
    assert!(raw.contains("Be safe, always.\\n\\nItem rules."), "{raw}");
    // `retries = 0` on the target wins over `--retries 5`: the failing prompt is sent once.
    assert_eq!(
        server.seen.lock().unwrap().by_prompt["fault:503always down"],
        1
    );
    let records = results(&dir.path().join("out"));
    let failed = records.iter().find(|r| r["state"] == "error").unwrap();
    assert!(
        failed["error"]
            .as_str()
            .unwrap()
            .contains("gave up after 1 attempts"),
        "{failed}"
    );
}
