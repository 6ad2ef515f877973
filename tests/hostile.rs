//! Regression tests for the failures an independent probe of `assay run` found (issue 12),
//! each named after the promise it broke: a damaged compiled suite that ran in part, keys on
//! disk, panics on flags and closed pipes, failures never retried, time limits that did not
//! bound waits, two runs on one state, leftover temporary files. A small OpenAI-format server
//! on 127.0.0.1 plays the model: a prompt's marker picks its behaviour (`retry3600`: 429 with
//! `Retry-After: 3600`; `hang`: never answers; `echokey`: a 401 that echoes the key it was
//! sent, as OpenAI's own "Incorrect API key provided" does).

use serde_json::{Value, json};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

const KEY: &str = "sk-hostile-3c9e1f-never-on-disk";

/// Requests per prompt, over every server of the test binary (prompts are unique per test).
static ATTEMPTS: std::sync::Mutex<std::collections::BTreeMap<String, u32>> =
    std::sync::Mutex::new(std::collections::BTreeMap::new());

/// Serves on `listener` until the test ends; counts the requests.
fn serve_on(listener: TcpListener) -> Arc<AtomicU32> {
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let calls = Arc::clone(&counted);
            std::thread::spawn(move || {
                let _ = serve(stream, &calls);
            });
        }
    });
    calls
}

fn start() -> (String, Arc<AtomicU32>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    (url, serve_on(listener))
}

fn serve(stream: TcpStream, calls: &AtomicU32) -> std::io::Result<()> {
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 {
            return Ok(());
        }
        let (mut length, mut authorization) = (0, String::new());
        loop {
            let mut header = String::new();
            reader.read_line(&mut header)?;
            if header == "\r\n" || header.is_empty() {
                break;
            }
            let lower = header.to_ascii_lowercase();
            if let Some(v) = lower.strip_prefix("content-length:") {
                length = v.trim().parse().unwrap_or(0);
            }
            if lower.starts_with("authorization:") {
                authorization = header["authorization:".len()..].trim().to_string();
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        calls.fetch_add(1, Ordering::SeqCst);
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let prompt = body["messages"]
            .as_array()
            .and_then(|m| m.last())
            .and_then(|m| m["content"].as_str())
            .unwrap_or("")
            .to_string();
        let attempt = {
            let mut attempts = ATTEMPTS.lock().unwrap();
            let n = attempts.entry(prompt.clone()).or_insert(0);
            *n += 1;
            *n
        };
        let (status, headers, reply) = if prompt.contains("retry7") && attempt == 1 {
            (
                "429 Too Many Requests",
                "Retry-After: 7\r\n",
                json!({"error": {"message": "slow down"}}),
            )
        } else if prompt.contains("retry3600") {
            (
                "429 Too Many Requests",
                "Retry-After: 3600\r\n",
                json!({"error": {"message": "slow down"}}),
            )
        } else if prompt.contains("hang") {
            std::thread::sleep(Duration::from_secs(120));
            return Ok(());
        } else if prompt.contains("echokey") {
            let key = authorization.trim_start_matches("Bearer ").to_string();
            let message = format!("Incorrect API key provided: {key}.");
            (
                "401 Unauthorized",
                "",
                json!({"error": {"message": message}}),
            )
        } else {
            let answer = json!({
                "choices": [{"index": 0, "message": {"role": "assistant", "content": format!("answer to {prompt}")}, "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 3}
            });
            ("200 OK", "", answer)
        };
        let body = reply.to_string();
        write!(
            stream,
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
            body.len()
        )?;
    }
}

/// A spec of `prompts` against the OpenAI-format target at `url`, its key in `HOSTILE_KEY`.
fn spec(url: &str, prompts: &[&str]) -> String {
    let list: Vec<String> = prompts.iter().map(|p| format!("\"{p}\"")).collect();
    format!(
        "suite \"hostile\" version \"1.0.0\"\n\
         template t {{\n  prompt = \"{{{{p}}}}\"\n  vars {{ p in [{}] }}\n}}\n\
         target sut {{\n  provider = openai_compatible\n  model = \"m\"\n  endpoint = \"{url}\"\n  api_key_env = \"HOSTILE_KEY\"\n}}\n",
        list.join(", ")
    )
}

fn command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assay"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ASSAY_BACKOFF_MS", "1")
        .env("HOSTILE_KEY", KEY)
        .env_remove("ASSAY_STATE_DIR");
    cmd
}

fn assay(dir: &Path, args: &[&str]) -> Output {
    command(dir, args).output().unwrap()
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

fn no_panic(out: &Output) {
    assert_ne!(out.status.code(), Some(101), "{}", text(&out.stderr));
    assert!(
        !text(&out.stderr).contains("panicked"),
        "{}",
        text(&out.stderr)
    );
}

/// Probe failure 1: a damaged compiled suite ran in part and looked whole.
#[test]
fn a_damaged_compiled_suite_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..6).map(|i| format!("q{i}")).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    std::fs::write(
        dir.path().join("s.assay"),
        spec("http://127.0.0.1:9/v1", &refs),
    )
    .unwrap();
    let out = assay(dir.path(), &["compile", "s.assay", "-o", "suite"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let items_path = dir.path().join("suite/items.jsonl");
    let intact = std::fs::read(&items_path).unwrap();
    let lines: Vec<&[u8]> = intact.split(|&b| b == b'\n').collect();

    let damage = |name: &str, bytes: Vec<u8>, expected: &str| {
        std::fs::write(&items_path, bytes).unwrap();
        let out = assay(
            dir.path(),
            &["run", "suite", "--model", "mock:refuse", "--out", name],
        );
        no_panic(&out);
        assert_eq!(out.status.code(), Some(2), "{name}: {}", text(&out.stderr));
        assert!(
            text(&out.stderr).contains(expected),
            "{name}: {}",
            text(&out.stderr)
        );
        assert!(!dir.path().join(name).exists(), "{name}: something ran");
    };
    // A line that is not JSON.
    let mut garbled = intact.clone();
    let at = lines[0].len() + 1;
    garbled[at] = b'#';
    damage("garbled", garbled, "line 2 is not an item");
    // A line that is not UTF-8.
    let mut binary = intact.clone();
    binary[at + 5] = 0xff;
    damage("binary", binary, "line 2 is not UTF-8");
    // Every line an item, but not the items compiled.
    let edited = String::from_utf8(intact.clone())
        .unwrap()
        .replace("q3", "q9");
    damage("edited", edited.into_bytes(), "but manifest.json says");
    // A line missing.
    let mut shorter: Vec<u8> = Vec::new();
    for line in lines.iter().skip(1).filter(|l| !l.is_empty()) {
        shorter.extend_from_slice(line);
        shorter.push(b'\n');
    }
    damage(
        "shorter",
        shorter,
        "the compiled suite is damaged or was edited",
    );
    // The intact suite runs.
    std::fs::write(&items_path, &intact).unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "suite",
            "--model",
            "mock:refuse",
            "--out",
            "ok",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(results(&dir.path().join("ok")).len(), 6);
}

/// Probe failure 2: a run where every call failed exited 0, and `--quiet` printed nothing.
#[test]
fn a_run_where_every_call_failed_is_invalid_and_says_so_when_quiet() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        spec("http://127.0.0.1:9/v1", &["a", "b", "c"]),
    )
    .unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--out",
            "out",
            "-q",
            "--retries",
            "0",
            "--no-preflight",
        ],
    );
    no_panic(&out);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("invalid: 3 of 3 items of `sut` failed"),
        "{stderr}"
    );
    assert!(stderr.trim_end().ends_with("exit 4"), "{stderr}");
    assert_eq!(results(&dir.path().join("out")).len(), 3);
}

/// Probe failure 3: keys reached disk, echoed by a server, printed by an `exec:` model or
/// passed as a parameter.
#[test]
fn keys_echoed_printed_or_passed_never_reach_disk_or_output() {
    let (url, _) = start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), spec(&url, &["fine", "echokey"])).unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--out",
            "out",
            "--retries",
            "0",
            "--param",
            "api_key=sk-param-secret-0042",
        ],
    );
    no_panic(&out);
    // An exec model that prints its environment's key to stderr, then fails.
    let script = dir.path().join("model.sh");
    std::fs::write(
        &script,
        "cat > /dev/null\necho \"auth failed for $HOSTILE_KEY\" >&2\nexit 3\n",
    )
    .unwrap();
    let exec = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "exec:sh ./model.sh",
            "--out",
            "exec",
            "--retries",
            "0",
        ],
    );
    no_panic(&exec);
    let records = results(&dir.path().join("out"));
    let echoed = records.iter().find(|r| r["state"] == "error").unwrap();
    assert!(
        echoed["error"]
            .as_str()
            .unwrap()
            .contains("Incorrect API key provided: [REDACTED]"),
        "{echoed}"
    );
    let exec_records = results(&dir.path().join("exec"));
    assert!(
        exec_records
            .iter()
            .all(|r| r["error"].as_str().unwrap_or("").contains("[REDACTED]")),
        "{exec_records:?}"
    );
    let run_json = std::fs::read_to_string(dir.path().join("out/run.json")).unwrap();
    assert!(
        run_json.contains("\"api_key\": \"[REDACTED]\""),
        "{run_json}"
    );
    let mut files = Vec::new();
    all_files(dir.path(), &mut files);
    for file in files {
        let bytes = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        for secret in [KEY, "sk-param-secret-0042"] {
            assert!(!bytes.contains(secret), "{secret} is in {}", file.display());
        }
    }
    for o in [&out, &exec] {
        for stream in [&o.stdout, &o.stderr] {
            assert!(!text(stream).contains(KEY) && !text(stream).contains("sk-param-secret-0042"));
        }
    }
}

/// Probe failure 4: `--timeout inf`, `--timeout 1e20`, `--max-time inf|1e19` panicked.
#[test]
fn out_of_range_numbers_are_usage_errors_not_panics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        spec("http://127.0.0.1:9/v1", &["a"]),
    )
    .unwrap();
    for (flag, value) in [
        ("--timeout", "inf"),
        ("--timeout", "1e20"),
        ("--timeout", "NaN"),
        ("--timeout", "0"),
        ("--timeout", "-3"),
        ("--max-time", "inf"),
        ("--max-time", "1e19"),
        ("--concurrency", "0"),
        ("--rpm", "0"),
        ("--price", "-1/2"),
        ("--max-invalid", "2"),
    ] {
        let given = format!("{flag}={value}");
        let out = assay(
            dir.path(),
            &[
                "run",
                "s.assay",
                "--model",
                "mock:refuse",
                "--out",
                "o",
                &given,
            ],
        );
        no_panic(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "{flag} {value}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stderr).contains(flag),
            "{flag} {value}: {}",
            text(&out.stderr)
        );
    }
}

/// Probe failure 4: stderr piped into a reader that closes (`assay run ... 2>&1 | head -1`)
/// panicked, and no summary was written.
#[test]
fn a_closed_output_never_stops_the_results() {
    let dir = tempfile::tempdir().unwrap();
    let prompts: Vec<String> = (0..50).map(|i| format!("q{i}")).collect();
    let refs: Vec<&str> = prompts.iter().map(String::as_str).collect();
    std::fs::write(
        dir.path().join("s.assay"),
        spec("http://127.0.0.1:9/v1", &refs),
    )
    .unwrap();
    let mut child = command(
        dir.path(),
        &["run", "s.assay", "--model", "mock:refuse", "--out", "out"],
    )
    .stdout(Stdio::piped())
    .stderr(Stdio::piped())
    .spawn()
    .unwrap();
    // The reader goes away before the run writes a line.
    drop(child.stdout.take());
    drop(child.stderr.take());
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(101));
    assert_eq!(results(&dir.path().join("out")).len(), 50);
    assert!(dir.path().join("out/summary.json").exists());
}

/// Probe failure 5: failed and skipped items were never retried: a rerun made no call.
#[test]
fn a_rerun_retries_what_has_no_answer() {
    // The endpoint is down for the first run.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    drop(listener);
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), spec(&url, &["a", "b", "c"])).unwrap();
    // Past the preflight check, which would stop it before any call.
    let args = [
        "run",
        "s.assay",
        "--out",
        "out",
        "--retries",
        "0",
        "-q",
        "--no-preflight",
    ];
    let first = assay(dir.path(), &args);
    assert_eq!(first.status.code(), Some(4), "{}", text(&first.stderr));
    assert!(
        results(&dir.path().join("out"))
            .iter()
            .all(|r| r["state"] == "error")
    );
    // `--no-retry-errors` keeps the failures: no call.
    let listener = TcpListener::bind(url.trim_start_matches("http://").trim_end_matches("/v1"))
        .expect("the port is free again");
    let calls = serve_on(listener);
    let mut kept: Vec<&str> = args.to_vec();
    kept.push("--no-retry-errors");
    let out = assay(dir.path(), &kept);
    assert_eq!(out.status.code(), Some(4), "{}", text(&out.stderr));
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    // Now the server is up: the rerun tries the three again, says so, and all answer.
    let out = command(
        dir.path(),
        &["run", "s.assay", "--out", "out", "--retries", "0"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("3 without an answer tried again"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let records = results(&dir.path().join("out"));
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["state"] == "ok"));
    // Answered items are never sent again.
    let out = assay(dir.path(), &args);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// Probe failure 8: one `Retry-After: 3600` stalled the run for an hour despite
/// `--max-time 10`; a server that never answers kept `--max-time 5` running 60 s.
#[test]
fn max_time_bounds_every_wait() {
    let (url, _) = start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        spec(&url, &["retry3600 a", "hang b", "fine c"]),
    )
    .unwrap();
    let started = Instant::now();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--out",
            "out",
            "--max-time",
            "2",
            "--timeout",
            "60",
            "-q",
        ],
    );
    let took = started.elapsed();
    no_panic(&out);
    assert!(took < Duration::from_secs(15), "took {took:?}");
    let records = results(&dir.path().join("out"));
    let state = |p: &str| {
        records
            .iter()
            .find(|r| r["messages"][0]["content"].as_str().unwrap().starts_with(p))
            .map(|r| (r["state"].as_str().unwrap().to_string(), r["error"].clone()))
            .unwrap()
    };
    let (retry_state, retry_error) = state("retry3600");
    assert_eq!(retry_state, "skipped");
    assert!(
        retry_error.as_str().unwrap().contains("--max-time"),
        "{retry_error}"
    );
    let (hang_state, hang_error) = state("hang");
    assert_eq!(hang_state, "skipped", "{hang_error}");
    assert_eq!(state("fine").0, "ok");
}

/// Probe failure 8: waits are shown in the progress line, so a run that seems stuck says it
/// is waiting.
#[test]
fn a_long_wait_is_shown_in_the_progress_line() {
    let (url, _) = start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), spec(&url, &["retry7 progress"])).unwrap();
    // Not a terminal, not quiet: a progress line every 5 s.
    let out = assay(dir.path(), &["run", "s.assay", "--out", "out"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("waiting"), "{stderr}");
    assert!(stderr.contains("for a rate limit or retry"), "{stderr}");
    assert_eq!(results(&dir.path().join("out"))[0]["state"], "ok");
}

/// Probe failure 11: two runs on the same state paid twice and fought over `judgements.jsonl`.
#[test]
fn a_second_run_on_the_same_state_is_refused_with_the_holders_pid() {
    let (url, _) = start();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), spec(&url, &["hang a"])).unwrap();
    let mut first = command(
        dir.path(),
        &["run", "s.assay", "--out", "one", "-q", "--timeout", "30"],
    )
    .stderr(Stdio::null())
    .spawn()
    .unwrap();
    let lock = dir.path().join(".assay/lock");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&lock)
        .unwrap_or_default()
        .trim()
        .is_empty()
    {
        assert!(
            Instant::now() < deadline,
            "the first run never took the lock"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let second = assay(dir.path(), &["run", "s.assay", "--out", "two", "-q"]);
    assert_eq!(second.status.code(), Some(2), "{}", text(&second.stderr));
    assert!(
        text(&second.stderr).contains(&format!("pid {}", first.id())),
        "{}",
        text(&second.stderr)
    );
    // A lock left by a killed process is taken over.
    first.kill().unwrap();
    first.wait().unwrap();
    std::fs::write(dir.path().join("s.assay"), spec(&url, &["fine a"])).unwrap();
    let third = assay(dir.path(), &["run", "s.assay", "--out", "three", "-q"]);
    assert_eq!(third.status.code(), Some(0), "{}", text(&third.stderr));
}

/// Probe failure 12: killed runs left `.assay/.tmpXXXX` copies of the items behind.
#[test]
fn temporary_items_left_by_killed_runs_are_removed() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        spec("http://127.0.0.1:9/v1", &["a"]),
    )
    .unwrap();
    let state = dir.path().join(".assay");
    std::fs::create_dir_all(&state).unwrap();
    for stale in [".tmpAbC123", ".items-Xy9.jsonl"] {
        std::fs::write(state.join(stale), "{}\n").unwrap();
    }
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:refuse",
            "--out",
            "o",
            "-q",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let left: Vec<String> = std::fs::read_dir(&state)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with(".tmp") || n.starts_with(".items-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
}
