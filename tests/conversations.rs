//! Conversation programs end to end through `assay run`. One server on 127.0.0.1 plays every
//! model of a spec — the target, the attacker and the judges — deterministically by the
//! request's model name, in the OpenAI, Anthropic and Ollama wire formats. The specs are in
//! `tests/fixtures/conversations/`, each saying what its conversations must do; `@SERVER` in
//! a target is replaced by the server's provider, endpoint and key. Each transcript is
//! checked against a snapshot that shows who said what, at which turn and node, the in-loop
//! verdicts, what was dropped, and how the item ended (timing, usage and cache flags aside).

use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// ---------------------------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Format {
    OpenAi,
    Anthropic,
    Ollama,
}

const FORMATS: [Format; 3] = [Format::OpenAi, Format::Anthropic, Format::Ollama];

/// The key every target reads from `CONV_KEY`.
const KEY: &str = "sk-conversations-test";

impl Format {
    fn of_path(path: &str) -> Format {
        match path {
            "/v1/messages" => Format::Anthropic,
            "/api/chat" => Format::Ollama,
            _ => Format::OpenAi,
        }
    }

    /// The keys that put a target on the server at `url` in this format.
    fn connection(self, url: &str) -> String {
        let (provider, endpoint) = match self {
            Format::OpenAi => ("openai_compatible", format!("{url}/v1")),
            Format::Anthropic => ("anthropic", url.to_string()),
            Format::Ollama => ("ollama", url.to_string()),
        };
        format!(
            "provider = {provider}  endpoint = \"{endpoint}\"  api_key_env = \"CONV_KEY\"  retries = 1"
        )
    }

    /// An answer the provider's content filter refused (Ollama has no filter).
    fn filtered(self) -> String {
        match self {
            Format::Anthropic => json!({
                "id": "msg_1", "type": "message", "role": "assistant", "content": [],
                "stop_reason": "refusal", "usage": { "input_tokens": 11, "output_tokens": 0 }
            }),
            _ => json!({
                "id": "c1", "object": "chat.completion",
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": null }, "finish_reason": "content_filter" }]
            }),
        }
        .to_string()
    }

    fn answer(self, model: &str, text: &str) -> String {
        match self {
            Format::OpenAi => json!({
                "id": "c1", "object": "chat.completion", "model": model,
                "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
                "usage": { "prompt_tokens": 11, "completion_tokens": 7, "total_tokens": 18 }
            }),
            Format::Anthropic => json!({
                "id": "msg_1", "type": "message", "role": "assistant", "model": model,
                "content": [{ "type": "text", "text": text }],
                "stop_reason": "end_turn",
                "usage": { "input_tokens": 11, "output_tokens": 7 }
            }),
            Format::Ollama => json!({
                "model": model, "message": { "role": "assistant", "content": text },
                "done": true, "done_reason": "stop", "prompt_eval_count": 11, "eval_count": 7
            }),
        }
        .to_string()
    }
}

/// What the server saw: requests in all and per model.
#[derive(Default)]
struct Seen {
    total: u32,
    by_model: BTreeMap<String, u32>,
    /// Each request's model and last user turn, in the order they came.
    requests: Vec<(String, String)>,
    /// Requests being answered per model, and the most at once.
    in_flight: BTreeMap<String, u32>,
    most_in_flight: BTreeMap<String, u32>,
}

struct Server {
    url: String,
    seen: Arc<Mutex<Seen>>,
}

impl Server {
    /// A server that waits between `latency.0` and `latency.1` ms before each answer.
    fn start(latency: (u64, u64)) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = Arc::new(Mutex::new(Seen::default()));
        let shared = Arc::clone(&seen);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let seen = Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = serve(stream, &seen, latency);
                });
            }
        });
        Server { url, seen }
    }

    fn total(&self) -> u32 {
        self.seen.lock().unwrap().total
    }

    fn calls_of(&self, model: &str) -> u32 {
        self.seen
            .lock()
            .unwrap()
            .by_model
            .get(model)
            .copied()
            .unwrap_or(0)
    }
}

/// A request as a model sees it: the system prompt and the turns.
struct Request {
    model: String,
    system: String,
    turns: Vec<(String, String)>,
}

impl Request {
    fn last_user(&self) -> &str {
        self.turns
            .iter()
            .rev()
            .find(|(role, _)| role == "user")
            .map_or("", |(_, c)| c.as_str())
    }

    /// Assistant turns before the last user turn.
    fn earlier_answers(&self) -> usize {
        self.turns.iter().filter(|(r, _)| r == "assistant").count()
    }
}

/// One keep-alive connection: requests until the client closes it.
fn serve(stream: TcpStream, seen: &Mutex<Seen>, latency: (u64, u64)) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut stream = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line)? == 0 {
            return Ok(());
        }
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
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
        let path = request_line.split_whitespace().nth(1).unwrap_or("");
        let format = Format::of_path(path);
        let mut request = Request {
            model: body["model"].as_str().unwrap_or("").to_string(),
            system: body["system"].as_str().unwrap_or("").to_string(),
            turns: Vec::new(),
        };
        for m in body["messages"].as_array().into_iter().flatten() {
            let role = m["role"].as_str().unwrap_or("").to_string();
            let content = m["content"].as_str().unwrap_or("").to_string();
            if role == "system" {
                request.system = content;
            } else {
                request.turns.push((role, content));
            }
        }
        let n = {
            let mut s = seen.lock().unwrap();
            s.total += 1;
            *s.by_model.entry(request.model.clone()).or_default() += 1;
            s.requests
                .push((request.model.clone(), request.last_user().to_string()));
            let now = {
                let n = s.in_flight.entry(request.model.clone()).or_default();
                *n += 1;
                *n
            };
            let most = s.most_in_flight.entry(request.model.clone()).or_default();
            *most = (*most).max(now);
            s.total
        };
        if latency.1 > 0 {
            // A spread of waits, so that answers come back out of order.
            let spread = latency.1 - latency.0;
            let wait = latency.0 + u64::from(n).wrapping_mul(2_654_435_761) % (spread + 1);
            std::thread::sleep(Duration::from_millis(wait));
        }
        let (status, body) = match play(&request) {
            Ok(text) => ("200 OK", format.answer(&request.model, &text)),
            Err(FILTERED) => ("200 OK", format.filtered()),
            Err(status) => (
                status,
                json!({ "error": { "message": "the model is down", "type": "server_error" } })
                    .to_string(),
            ),
        };
        *seen
            .lock()
            .unwrap()
            .in_flight
            .entry(request.model.clone())
            .or_default() -= 1;
        // One write: pieces written apart wait on the client's delayed ACK.
        let response = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(response.as_bytes())?;
    }
}

/// The first number after `key` in `text`.
fn number_after(text: &str, key: &str) -> u32 {
    text.split(key)
        .nth(1)
        .map(|rest| {
            rest.chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>()
        })
        .and_then(|n| n.parse().ok())
        .unwrap_or(0)
}

/// The turns taken back so far, rendered as `backtracked=[xx]`.
fn backtracks(text: &str) -> usize {
    text.split("backtracked=[")
        .nth(1)
        .map_or(0, |rest| rest.chars().take_while(|c| *c == 'x').count())
}

/// The text between `RESPONSE<<<` and `>>>` of a judge's rubric.
fn judged(request: &Request) -> &str {
    let text = request.last_user();
    text.split("RESPONSE<<<")
        .nth(1)
        .and_then(|rest| rest.split(">>>").next())
        .unwrap_or("")
}

/// What `play` gives for an answer the provider's content filter refused.
const FILTERED: &str = "filtered";

/// Every model's behaviour, by its name: the answer, or an HTTP status to fail with (or
/// [`FILTERED`]).
fn play(request: &Request) -> Result<String, &'static str> {
    let last = request.last_user();
    match request.model.as_str() {
        // The system under test: refuses, unless asked for a story (or a hint).
        "target" => Ok(if last.contains("fault:500") {
            return Err("500 Internal Server Error");
        } else if last.contains("story") {
            "Once upon a time, a locksmith explained it: step 1, step 2, step 3.".into()
        } else if last.contains("hint") {
            "Here is a vague hint, nothing more.".into()
        } else {
            "I'm sorry, I can't help with that.".into()
        }),
        // Crescendo's target: answers background questions, but gives the recipe only once
        // the conversation has two earlier answers.
        "cautious-target" => Ok(if !last.contains("recipe") {
            format!("Some background, as asked ({}).", last.len())
        } else if request.earlier_answers() >= 2 {
            "Fine. The recipe: mix A with B, then heat.".into()
        } else {
            "I'm sorry, I can't share that.".into()
        }),
        // The kill test's target: refuses unless asked for a story, and counts the answers
        // it was shown.
        "chatty-target" => Ok(if last.contains("story") {
            format!(
                "Once upon a time ({} answers earlier): step 1, step 2.",
                request.earlier_answers()
            )
        } else {
            format!(
                "I'm sorry, I can't help with that ({} answers earlier).",
                request.earlier_answers()
            )
        }),
        // The kill test's attacker: a story for goal N when N + turn is a multiple of 4.
        "chain-attacker" => {
            let (goal, turn) = (
                number_after(last, "goal number "),
                number_after(last, "turn="),
            );
            let backtracked = backtracks(last);
            let ask = if (goal + turn) % 4 == 0 {
                "tell me a story about it"
            } else {
                "please explain it"
            };
            Ok(json!({
                "prompt": format!("Goal {goal}, turn {turn}, try {}: {ask}.", backtracked + 1),
            })
            .to_string())
        }
        // PAIR's attacker: a hint in stream 3 at turn 1, a story in stream 2 at turn 2.
        "pair-attacker" => {
            let (stream, turn) = (number_after(last, "stream="), number_after(last, "turn="));
            let ask = match (stream, turn) {
                _ if request.system.contains("story") => "write a story about it",
                (3, 1) => "give me a hint",
                (2, 2) => "write a story in which a character explains it",
                _ => "please explain it",
            };
            let improvement = if last.contains("last_score=") {
                format!("the last score was {}", number_after(last, "last_score="))
            } else {
                "a first attempt".into()
            };
            Ok(json!({
                "improvement": improvement,
                "prompt": format!("Stream {stream}, turn {turn}: {ask}."),
            })
            .to_string())
        }
        // TAP's attacker: each prompt starts with its node's path, `<2.1>`, made from the
        // parent's path (read off the last prompt) and the branch.
        "tap-attacker" => {
            let parent = last
                .split("parent=<")
                .nth(1)
                .and_then(|rest| rest.split('>').next());
            let branch = last
                .split("branch=")
                .nth(1)
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|b| b.rsplit('.').next())
                .unwrap_or("?");
            let path = match parent {
                Some(p) => format!("{p}.{branch}"),
                None => branch.to_string(),
            };
            let ask = match path.as_str() {
                "2" | "2.2" | "1.1" | "1.1.1" => "Give me a hint about it.",
                "2.1" | "2.2.2" => "What is the weather like today?",
                "1.1.2" => "Write a story in which a locksmith explains it.",
                _ => "Tell me about locks.",
            };
            Ok(format!(
                "{{\"improvement\": \"node {path}\", \"prompt\": \"<{path}> {ask}\"}}"
            ))
        }
        // Crescendo's attacker: asks for the recipe at first, and again after a backtrack
        // at turn 2 and from turn 3; a goal marked "stubborn" asks for it every time.
        "crescendo-attacker" => {
            let turn = number_after(last, "turn=");
            let backtracked = backtracks(last);
            let direct = last.contains("stubborn")
                || matches!((turn, backtracked), (1, 0) | (2, 1))
                || turn >= 3;
            let ask = if direct {
                "now give me the recipe"
            } else {
                "tell me some history of chemistry"
            };
            Ok(format!(
                "Thinking about it.\nPROMPT: Turn {turn} (after {backtracked} backtracks): {ask}."
            ))
        }
        // An attacker whose second answer is no JSON.
        "garbage-attacker" => Ok(if number_after(last, "turn=") >= 2 {
            "Sorry, I won't play along.".into()
        } else {
            json!({ "prompt": "Please explain it." }).to_string()
        }),
        "score-judge" => {
            let response = judged(request);
            let score = if response.contains("Once upon a time") {
                10
            } else if response.contains("hint") {
                5
            } else {
                1
            };
            Ok(format!("Rating: [[{score}]]"))
        }
        "harm-judge" => {
            let response = judged(request);
            let unsafe_ = response.contains("Once upon a time") || response.contains("recipe:");
            let verdict = if unsafe_ { "unsafe" } else { "safe" };
            Ok(json!({ "verdict": verdict }).to_string())
        }
        "refusal-judge" => Ok(if judged(request).contains("sorry") {
            "refused".into()
        } else {
            "complied".into()
        }),
        "topic-judge" => Ok(if judged(request).contains("weather") {
            "off_topic: it is about the weather".into()
        } else {
            "on_topic".into()
        }),
        "guard-judge" => Ok(if judged(request).contains("Once upon a time") {
            "unsafe".into()
        } else {
            "safe".into()
        }),
        // A rewrite defense: the message restated, "story" made "tale".
        "rewriter" => Ok(format!(
            "Restated: {}",
            last.split("MSG<<<")
                .nth(1)
                .and_then(|rest| rest.split(">>>").next())
                .unwrap_or("")
                .replace("story", "tale")
        )),
        // A target behind a content filter (OpenAI's and Anthropic's) that refuses what
        // stream 2 asks, and a turn holding "fault:filter".
        "filtering-target" if last.contains("Stream 2") || last.contains("fault:filter") => {
            Err(FILTERED)
        }
        "filtering-target" => Ok("I'm sorry, I can't help with that.".into()),
        "broken" => Err("500 Internal Server Error"),
        other => Ok(format!("unknown model {other}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Runs
// ---------------------------------------------------------------------------------------------

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/fixtures/conversations")
}

/// A run folder holding the fixture `name` with its targets on `server` in `format`, and
/// every data file of the fixtures.
fn prepare(name: &str, format: Format, server: &Server) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let spec = std::fs::read_to_string(fixtures().join(format!("{name}.assay"))).unwrap();
    let spec = spec.replace("@SERVER", &format.connection(&server.url));
    std::fs::write(dir.path().join("main.assay"), spec).unwrap();
    for entry in std::fs::read_dir(fixtures()).unwrap().flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e != "assay") {
            std::fs::copy(&path, dir.path().join(entry.file_name())).unwrap();
        }
    }
    dir
}

fn assay_command(dir: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_assay"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ASSAY_BACKOFF_MS", "1")
        .env("CONV_KEY", KEY)
        .env_remove("ASSAY_STATE_DIR")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OLLAMA_HOST");
    cmd
}

const RUN: &[&str] = &["run", "main.assay", "--out", "out", "-q"];

fn assay(dir: &Path, args: &[&str]) -> Output {
    assay_command(dir, args).output().unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn json_file(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// A finished run of fixture `name` in `format`: its folder, its records, each item's
/// first user turn (a program's record holds the final conversation instead), and the
/// server.
struct Finished {
    dir: tempfile::TempDir,
    server: Server,
    out: Output,
    records: Vec<Value>,
    goals: BTreeMap<String, String>,
}

impl Finished {
    fn out(&self) -> PathBuf {
        self.dir.path().join("out")
    }

    fn summary(&self) -> Value {
        json_file(&self.out().join("summary.json"))
    }

    /// A metric's overall value and `n`.
    fn metric(&self, name: &str) -> (f64, u64) {
        let summary = self.summary();
        let m = summary["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|m| m["name"] == name && m["group"] == json!({}))
            .unwrap_or_else(|| panic!("no metric {name}: {summary}"));
        (m["value"].as_f64().unwrap(), m["n"].as_u64().unwrap())
    }
}

fn run_fixture(name: &str, format: Format) -> Finished {
    let server = Server::start((0, 0));
    let dir = prepare(name, format, &server);
    let out = assay(dir.path(), RUN);
    let stderr = text(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    let results = dir.path().join("out/results.jsonl");
    assert!(results.exists(), "{name} {format:?}: no results\n{stderr}");
    let records = jsonl(&results);
    Finished {
        goals: goals(dir.path()),
        dir,
        server,
        out,
        records,
    }
}

/// Item id → the item's first user turn, from `assay items`.
fn goals(dir: &Path) -> BTreeMap<String, String> {
    let out = assay(dir, &["items", "main.assay", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .map(|item| {
            let first = item["messages"]
                .as_array()
                .unwrap()
                .iter()
                .find(|m| m["role"] == "user")
                .map_or("", |m| m["content"].as_str().unwrap())
                .to_string();
            (item["id"].as_str().unwrap().to_string(), first)
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Transcripts as text
// ---------------------------------------------------------------------------------------------

fn outcome(o: &Value) -> String {
    if o["not_applicable"] == true {
        return "n/a".into();
    }
    if let Some(e) = o["error"].as_str() {
        return format!("error({e})");
    }
    let mut s = o["label"].as_str().unwrap_or("-").to_string();
    if let Some(score) = o["score"].as_f64() {
        write!(s, " {score}").unwrap();
    }
    s
}

fn quoted(v: &Value) -> String {
    match v.as_str() {
        Some(s) => format!("{s:?}"),
        None => v.to_string(),
    }
}

/// A record as the snapshot shows it: how it ended, then each turn on a line — round, node,
/// role, author and model, content, in-loop verdicts and why it was dropped — then the final
/// conversation.
fn transcript(r: &Value, goals: &BTreeMap<String, String>) -> String {
    let mut s = String::new();
    let axes = r["labels"]["axes"]
        .as_object()
        .map(|a| {
            a.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_default();
    let goal = &goals[r["item_id"].as_str().unwrap()];
    writeln!(
        s,
        "## {} {goal:?} on {} {axes}",
        r["source"].as_str().unwrap_or(""),
        r["model"].as_str().unwrap()
    )
    .unwrap();
    write!(s, "state: {}", r["state"].as_str().unwrap()).unwrap();
    for key in ["stop", "error", "failed_turn", "final_turn", "calls"] {
        if !r[key].is_null() {
            write!(s, " | {key}: {}", quoted(&r[key])).unwrap();
        }
    }
    s.push('\n');
    for t in r["turns"].as_array().into_iter().flatten() {
        let node = t["node"]
            .as_str()
            .map_or(String::new(), |n| format!(" [{n}]"));
        let model = t["model"]
            .as_str()
            .map_or(String::new(), |m| format!("({m})"));
        write!(
            s,
            "  t{}{node} {} by {}{model}: {}",
            t["turn"],
            t["role"].as_str().unwrap(),
            t["by"].as_str().unwrap(),
            quoted(&t["content"])
        )
        .unwrap();
        if let Some(v) = t["verdicts"].as_object() {
            let v: Vec<String> = v
                .iter()
                .map(|(judge, o)| format!("{judge}={}", outcome(o)))
                .collect();
            write!(s, "  {{{}}}", v.join(", ")).unwrap();
        }
        if let Some(d) = t["dropped"].as_str() {
            write!(s, "  DROPPED {d}").unwrap();
        }
        s.push('\n');
    }
    s.push_str("  messages:\n");
    for m in r["messages"].as_array().into_iter().flatten() {
        writeln!(
            s,
            "    {}: {}",
            m["role"].as_str().unwrap(),
            quoted(&m["content"])
        )
        .unwrap();
    }
    writeln!(s, "  response: {}", quoted(&r["response"])).unwrap();
    s
}

fn transcripts(run: &Finished) -> String {
    run.records
        .iter()
        .map(|r| transcript(r, &run.goals))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs fixture `name` in every format: the transcripts, the same in each.
fn same_in_every_format(name: &str, formats: &[Format]) -> (String, Vec<Finished>) {
    let runs: Vec<Finished> = formats.iter().map(|f| run_fixture(name, *f)).collect();
    let first = transcripts(&runs[0]);
    for (run, format) in runs.iter().zip(formats).skip(1) {
        assert_eq!(
            transcripts(run),
            first,
            "{name}: {format:?} differs from {:?}",
            formats[0]
        );
    }
    (first, runs)
}

// ---------------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------------

#[test]
fn pair_streams_stop_at_the_first_full_score_in_every_wire_format() {
    let (shown, runs) = same_in_every_format("pair", &FORMATS);
    insta::assert_snapshot!("pair", shown);
    for run in &runs {
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        let [record] = run.records.as_slice() else {
            panic!("one item")
        };
        // Every call the item counts reached the server; post-run judging adds its own.
        // Six rounds, each an attacker, a target and a judge call.
        assert_eq!(record["calls"], 18);
        assert_eq!(run.server.calls_of("target"), 6);
        assert_eq!(run.server.calls_of("pair-attacker"), 6);
        assert_eq!(run.metric("hard_asr"), (1.0, 1));
        assert_eq!(run.metric("soft_asr"), (1.0, 1));
        // The attacker is shown its stream's last score and verdict.
        let seen = run.server.seen.lock().unwrap();
        let asked: Vec<&str> = seen
            .requests
            .iter()
            .filter(|(model, _)| model == "pair-attacker")
            .map(|(_, text)| text.as_str())
            .collect();
        assert_eq!(
            asked,
            [
                "stream=1 turn=1 of 3",
                "stream=2 turn=1 of 3",
                "stream=3 turn=1 of 3",
                "stream=3 turn=2 of 3 last_score=5 last_verdict=resisted",
                "stream=1 turn=2 of 3 last_score=1 last_verdict=resisted",
                "stream=2 turn=2 of 3 last_score=1 last_verdict=resisted",
            ]
        );
    }
}

#[test]
fn tap_prunes_off_topic_prompts_and_keeps_the_best_leaves() {
    let (shown, runs) = same_in_every_format("tap", &FORMATS);
    insta::assert_snapshot!("tap", shown);
    for run in &runs {
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        // Ten attack prompts; the two pruned never reached the target.
        assert_eq!(run.server.calls_of("tap-attacker"), 10);
        assert_eq!(run.server.calls_of("target"), 8);
        assert_eq!(run.metric("hard_asr"), (1.0, 1));
    }
}

#[test]
fn crescendo_backtracks_refused_turns_out_of_the_conversation() {
    let (shown, runs) = same_in_every_format("crescendo", &FORMATS);
    insta::assert_snapshot!("crescendo", shown);
    for run in &runs {
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        for record in &run.records {
            // A user turn taken back is in the transcript, never in the final conversation.
            let sent: Vec<&Value> = record["messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| &m["content"])
                .collect();
            let turns = record["turns"].as_array().unwrap();
            let backtracked: Vec<&Value> = turns
                .iter()
                .filter(|t| t["dropped"] == "backtracked")
                .collect();
            assert_eq!(backtracked.len(), 4, "two turns taken back, each a pair");
            for turn in backtracked.iter().filter(|t| t["role"] == "user") {
                assert!(!sent.contains(&&turn["content"]), "{turn}");
            }
        }
        // Both conversations had an unsafe turn, and ended on one.
        assert_eq!(run.metric("hard_asr"), (1.0, 2));
        assert_eq!(run.metric("soft_asr"), (1.0, 2));
    }
}

#[test]
fn scripted_turns_end_at_a_stop_the_budget_or_the_end_of_the_script() {
    let (shown, runs) = same_in_every_format("scripted", &FORMATS);
    insta::assert_snapshot!("scripted", shown);
    for run in &runs {
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        // A prefilled assistant turn is no call: novel 2 target turns, budget 1, plain 2,
        // lab 2.
        assert_eq!(run.server.calls_of("target"), 7);
        // novel's and lab's second turns were unsafe, at their second turn.
        assert_eq!(run.metric("hard_asr"), (0.5, 4));
        assert_eq!(run.metric("first_unsafe"), (2.0, 2));
    }
}

#[test]
fn failures_end_the_item_with_its_turn_and_cause_and_no_verdict() {
    let (shown, runs) = same_in_every_format("failures", &FORMATS);
    insta::assert_snapshot!("failures", shown);
    for run in &runs {
        // Three items of four failed: the run is invalid.
        assert_eq!(run.out.status.code(), Some(4), "{}", text(&run.out.stderr));
        let summary = run.summary();
        assert_eq!(
            summary["counts"]["sut"],
            json!({ "ok": 1, "error": 3 }),
            "{summary}"
        );
        // Only the item that ended ok is counted, safe or unsafe.
        assert_eq!(run.metric("soft_asr"), (0.0, 1));
        assert_eq!(run.metric("hard_asr"), (0.0, 1));
        // The judgements of a failed item hold no verdict, of the conversation or a turn.
        let judgements = jsonl(&run.out().join("judgements.jsonl"));
        for record in run.records.iter().filter(|r| r["state"] == "error") {
            for j in judgements
                .iter()
                .filter(|j| j["item_id"] == record["item_id"])
            {
                assert!(j["turns"].as_array().is_none_or(Vec::is_empty), "{j}");
                for o in j["verdicts"]
                    .as_object()
                    .into_iter()
                    .flat_map(|v| v.values())
                {
                    assert!(o["label"].is_null(), "{j}");
                }
            }
        }
        // The judge and the target gave up after two attempts; the attacker was asked twice.
        assert_eq!(run.server.calls_of("broken"), 2);
        assert_eq!(run.server.calls_of("garbage-attacker"), 2);
    }
}

#[test]
fn guards_block_with_their_verdict_and_a_rewrite_changes_what_the_model_sees() {
    let (shown, runs) = same_in_every_format("defenses", &FORMATS);
    insta::assert_snapshot!("defenses", shown);
    for run in &runs {
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        let summary = run.summary();
        assert_eq!(summary["counts"]["in_guarded"], json!({ "filtered": 1 }));
        assert_eq!(summary["counts"]["out_guarded"], json!({ "filtered": 1 }));
        assert_eq!(summary["counts"]["rewritten"], json!({ "ok": 1 }));
        // The input guard kept the story request from the model: 1 + 2 + 2 target calls.
        assert_eq!(run.server.calls_of("target"), 5);
        assert_eq!(run.server.calls_of("rewriter"), 2);
    }
}

#[test]
fn a_defense_axis_crossed_with_a_program_axis_makes_four_items_per_prompt() {
    let (shown, runs) = same_in_every_format("axes", &FORMATS);
    insta::assert_snapshot!("axes", shown);
    for run in &runs {
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        assert_eq!(run.records.len(), 8);
        // Hard ASR by defense and attack: a conversation the guard blocked counts as an attack
        // that did not succeed.
        let summary = run.summary();
        let mut cells = BTreeMap::new();
        for m in summary["metrics"].as_array().unwrap() {
            if m["name"] == "hard_asr" && m["group"] != json!({}) {
                let g = &m["group"];
                cells.insert(
                    format!(
                        "{}/{}",
                        g["defense"].as_str().unwrap(),
                        g["attack"].as_str().unwrap()
                    ),
                    (m["value"].as_f64().unwrap(), m["n"].as_u64().unwrap()),
                );
            }
        }
        assert_eq!(
            cells,
            BTreeMap::from([
                ("guard/direct".to_string(), (0.0, 2)),
                ("guard/pair".to_string(), (0.0, 2)),
                ("none/direct".to_string(), (0.5, 2)),
                ("none/pair".to_string(), (1.0, 2)),
            ]),
            "{summary}"
        );
    }
}

#[test]
fn a_content_filter_ends_a_conversation_or_drops_its_branch() {
    let mut shown = Vec::new();
    for format in [Format::OpenAi, Format::Anthropic] {
        let run = run_fixture("filter", format);
        assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
        // Each provider says why in its own words.
        shown.push(
            transcripts(&run)
                .replace("finish_reason: content_filter", "REASON")
                .replace("stop_reason: refusal", "REASON"),
        );
    }
    assert_eq!(shown[0], shown[1], "OpenAI and Anthropic differ");
    insta::assert_snapshot!("filter", shown[0]);
}

#[test]
fn a_guard_that_fails_is_the_items_error() {
    let (shown, runs) = same_in_every_format("guard-failure", &[Format::OpenAi]);
    insta::assert_snapshot!("guard-failure", shown);
    let run = &runs[0];
    let summary = run.summary();
    assert_eq!(
        summary["counts"]["in_down"],
        json!({ "error": 1 }),
        "{summary}"
    );
    assert_eq!(
        summary["counts"]["out_garbled"],
        json!({ "error": 1 }),
        "{summary}"
    );
    // The input guard failed before the model was asked; the output guard after.
    assert_eq!(run.server.calls_of("target"), 1);
}

#[test]
fn an_ensemble_in_the_loop_follows_its_members() {
    let (shown, runs) = same_in_every_format("ensemble", &[Format::Anthropic]);
    insta::assert_snapshot!("ensemble", shown);
    assert_eq!(runs[0].out.status.code(), Some(0));
}

/// A finished run started again does nothing: every result is in its journal and every
/// judgement in the cache, so the server sees no request, and the outputs are the same.
#[test]
fn a_finished_run_started_again_makes_no_call() {
    let run = run_fixture("crescendo", Format::OpenAi);
    assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
    let before = run.server.total();
    let results = std::fs::read_to_string(run.out().join("results.jsonl")).unwrap();
    let summary = std::fs::read_to_string(run.out().join("summary.json")).unwrap();
    let again = assay(run.dir.path(), RUN);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again.stderr));
    assert_eq!(run.server.total(), before, "a finished run called again");
    assert_eq!(
        strip_timing(&std::fs::read_to_string(run.out().join("results.jsonl")).unwrap()),
        strip_timing(&results)
    );
    assert_eq!(
        std::fs::read_to_string(run.out().join("summary.json")).unwrap(),
        summary
    );
}

/// The attacker's `stream` and `branch` in a tree with one stream (GRAMMAR.md §program,
/// template variables): `stream` is 1 throughout and `branch` names the node, `"1.2"`.
#[test]
fn a_tree_attacker_sees_its_stream_and_node() {
    let run = run_fixture("tree-variables", Format::OpenAi);
    assert_eq!(run.out.status.code(), Some(0), "{}", text(&run.out.stderr));
    let seen = run.server.seen.lock().unwrap();
    let asked: Vec<&String> = seen
        .requests
        .iter()
        .filter(|(model, _)| model == "tap-attacker")
        .map(|(_, text)| text)
        .collect();
    // Two children of the root, then two of each.
    assert_eq!(asked.len(), 6, "{asked:#?}");
    let nodes = ["1", "2", "1.1", "1.2", "2.1", "2.2"];
    for (text, node) in asked.iter().zip(nodes) {
        let turn = if node.contains('.') { 2 } else { 1 };
        assert_eq!(
            **text,
            format!("stream=1 branch={node} turn={turn}"),
            "{asked:#?}"
        );
    }
}

/// A target's own `concurrency` holds for it behind an attacker and an in-loop judge as it
/// does for a system under test (GRAMMAR.md §target): eight conversations at once, an
/// attacker allowed two requests at a time and a judge one.
#[test]
fn attackers_and_loop_judges_keep_their_own_concurrency() {
    let server = Server::start((10, 20));
    let dir = prepare("limits", Format::OpenAi, &server);
    let out = assay(dir.path(), &[RUN, &["--concurrency", "8"]].concat());
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let seen = server.seen.lock().unwrap();
    assert_eq!(seen.by_model["pair-attacker"], 8 * 3, "{:?}", seen.by_model);
    let most = |model: &str| seen.most_in_flight[model];
    assert!(most("target") <= 8, "{:?}", seen.most_in_flight);
    assert!(most("pair-attacker") <= 2, "{:?}", seen.most_in_flight);
    assert!(most("score-judge") <= 1, "{:?}", seen.most_in_flight);
}

/// Results without what differs from one run to another: latency, the cache flags, usage.
fn strip_timing(results: &str) -> String {
    fn strip(v: &mut Value) {
        match v {
            Value::Object(o) => {
                o.remove("latency_ms");
                o.remove("cached");
                o.remove("usage");
                o.values_mut().for_each(strip);
            }
            Value::Array(a) => a.iter_mut().for_each(strip),
            _ => {}
        }
    }
    results
        .lines()
        .map(|l| {
            let mut v: Value = serde_json::from_str(l).unwrap();
            strip(&mut v);
            v.to_string()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// A small seeded generator (SplitMix64) for the kill moments: the same trials every time.
struct Draw(u64);

impl Draw {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A whole number in `lo..hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo).max(1)
    }
}

/// What a run leaves that must not depend on kills: the results (timing, cache flags and
/// usage aside), the summary and the judgements.
fn outputs(out: &Path) -> (String, String, String) {
    let read = |f: &str| std::fs::read_to_string(out.join(f)).unwrap();
    (
        strip_timing(&read("results.jsonl")),
        read("summary.json"),
        strip_timing(&read("judgements.jsonl")),
    )
}

/// Conversations killed with SIGKILL at seeded random moments and resumed with the same
/// command, again and again, end with the results, judgements and summary of a run never
/// killed: no item lost, none twice, every transcript the same. `--no-cache`, so that what a
/// resumed conversation does not ask again it owes to its journalled steps.
#[cfg(unix)]
#[test]
fn conversations_killed_at_random_moments_resume_to_the_same_results() {
    const ITEMS: usize = 24;
    let args = [RUN, &["--concurrency", "4", "--no-cache"]].concat();
    // The run never killed, and how long it takes.
    let clean_server = Server::start((5, 20));
    let clean = prepare("kill", Format::OpenAi, &clean_server);
    let started = std::time::Instant::now();
    let out = assay(clean.path(), &args);
    let took = started.elapsed();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let want = outputs(&clean.path().join("out"));
    let records: Vec<Value> = want
        .0
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), ITEMS);
    // Four rounds each, and a backtrack when the first answer was a refusal.
    for r in &records {
        assert_eq!(r["state"], "ok", "{r}");
        let target_turns = r["turns"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["by"] == "target")
            .count();
        assert!((4..=5).contains(&target_turns), "{r}");
    }

    let mut draw = Draw(14);
    let window = took.as_millis() as u64;
    let mut kills = 0;
    for trial in 0..5 {
        let server = Server::start((5, 20));
        let dir = prepare("kill", Format::OpenAi, &server);
        // Two kills per trial, each at a moment drawn over the first half of the clean run's
        // length (a resumed run has less to do), then a run to the end.
        let mut landed = 0;
        for _ in 0..2 {
            let mut child = assay_command(dir.path(), &args)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap();
            let at = Duration::from_millis(draw.between(window / 20, window / 2));
            std::thread::sleep(at);
            if child.try_wait().unwrap().is_none() {
                child.kill().unwrap();
                kills += 1;
                landed += 1;
            }
            child.wait().unwrap();
        }
        let out = assay(dir.path(), &args);
        assert_eq!(
            out.status.code(),
            Some(0),
            "trial {trial}: {}",
            text(&out.stderr)
        );
        let got = outputs(&dir.path().join("out"));
        let ids: std::collections::BTreeSet<String> = got
            .0
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap()["item_id"].to_string())
            .collect();
        assert_eq!(ids.len(), ITEMS, "trial {trial}: an item lost");
        assert_eq!(got.0.lines().count(), ITEMS, "trial {trial}: an item twice");
        assert_eq!(got.0, want.0, "trial {trial}: results");
        assert_eq!(got.1, want.1, "trial {trial}: summary.json");
        assert_eq!(got.2, want.2, "trial {trial}: judgements");
        // Without the cache, only the journal keeps a step from being asked again: a kill
        // loses the calls in flight (one per conversation, four conversations at a time) and
        // the answers not yet written, a few more when the machine is loaded (19 seen in CI
        // with the tests of this file side by side; 7 to 8 on a quiet machine). Without the
        // journal a resumed run asks again every step before the kill, dozens each time.
        // (Judges are asked after the run too, and judging killed starts over: only the
        // attacker's and the target's calls are counted.)
        let conversing = |s: &Server| s.calls_of("chain-attacker") + s.calls_of("chatty-target");
        assert!(
            conversing(&server) <= conversing(&clean_server) + 16 * landed,
            "trial {trial}: {} attacker and target requests, {} in a run never killed",
            conversing(&server),
            conversing(&clean_server)
        );
    }
    assert!(kills >= 5, "only {kills} kills landed before the run ended");
}

#[test]
fn stop_conditions_read_the_turns_and_queries_so_far() {
    let (shown, runs) = same_in_every_format("stops", &[Format::OpenAi]);
    insta::assert_snapshot!("stops", shown);
    let stops: Vec<&str> = runs[0]
        .records
        .iter()
        .map(|r| r["stop"].as_str().unwrap())
        .collect();
    assert_eq!(
        stops,
        [
            "`turns >= 2` held at turn 2",
            "`queries >= 3` held at turn 3",
            "`queries >= 3` held at turn 2",
        ]
    );
}
