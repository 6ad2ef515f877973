//! Issue 13 (what real benchmarks need from the language): regression tests for the defects
//! found by writing three benchmarks as specs, each named after its defect, and tests for the
//! features added with them. Every test runs `assay` offline in a temporary folder.

use serde_json::Value;
use std::net::TcpListener;
use std::path::Path;
use std::process::{Command, Output};

fn assay(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env("ASSAY_BACKOFF_MS", "5")
        .env_remove("ASSAY_STATE_DIR")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_API_KEY")
        .env_remove("ANTHROPIC_BASE_URL")
        .env_remove("ANTHROPIC_API_KEY")
        .env_remove("OLLAMA_HOST")
        .env_remove("ISSUE13_UNSET_KEY")
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn summary(dir: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap()
}

/// A port nothing listens on.
fn dead_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Three prompts, a keyword judge, and two judges whose models cannot answer: one whose key
/// variable is unset (its endpoint listens), one whose endpoint refuses connections.
fn judged_spec(listening: u16) -> String {
    format!(
        "template t {{ prompt = \"{{{{p}}}}\"  vars {{ p in [\"a\", \"b\", \"c\"] }} }}\n\
         target keyless {{\n  provider = anthropic\n  model = \"c\"\n  endpoint = \"http://127.0.0.1:{listening}\"\n  api_key_env = \"ISSUE13_UNSET_KEY\"\n}}\n\
         target down {{\n  provider = openai_compatible\n  model = \"g\"\n  endpoint = \"http://127.0.0.1:{}/v1\"\n}}\n\
         judge graded: llm {{ model = keyless  rubric = \"{{{{response}}}}\"  parser = regex(\"(safe|unsafe)\")  labels = [safe, unsafe] }}\n\
         judge checked: llm {{ model = down  rubric = \"{{{{response}}}}\"  parser = regex(\"(safe|unsafe)\")  labels = [safe, unsafe] }}\n\
         judge refusal: keywords {{ patterns = [\"sorry\"]  match = refused  otherwise = complied  labels = [refused, complied] }}\n\
         metric refusal_rate = rate(refusal == refused)\n",
        dead_port()
    )
}

/// Defect 6 (and feature 14): a judge model without its key, or behind an endpoint that
/// refuses, was found only after every target call. Preflight stops the run before the first
/// call, exit 2, naming each model with its variable or endpoint.
#[test]
fn defect_6_preflight_stops_before_any_call() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), judged_spec(port)).unwrap();
    let out = assay(
        dir.path(),
        &["run", "s.assay", "--model", "mock:refuse", "--out", "out"],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("preflight: 2 problems before any call, nothing was sent"),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "judge `graded`'s model `keyless`: the environment variable ISSUE13_UNSET_KEY is not set"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("judge `checked`'s model `down`: its endpoint http://127.0.0.1:")
            && stderr.contains("refused the connection"),
        "{stderr}"
    );
    assert!(
        !dir.path().join("out/results.jsonl").exists(),
        "no call was made"
    );

    // A target is checked too.
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "down",
            "--judge-model",
            "graded=mock:echo",
            "--judge-model",
            "checked=mock:echo",
            "--out",
            "out",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("target `down`: its endpoint"), "{stderr}");
    drop(listener);
}

/// Defect 6, the terminal half: with `--no-preflight` the judges fail on every item, and the
/// terminal gives each judge's first reason, not only a count.
#[test]
fn defect_6_judge_failures_print_their_first_reason() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), judged_spec(port)).unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:refuse",
            "--out",
            "out",
            "--no-preflight",
            "--retries",
            "0",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(4), "{stderr}");
    assert!(
        stderr.contains("graded: first error: ") && stderr.contains("ISSUE13_UNSET_KEY is not set"),
        "{stderr}"
    );
    assert!(stderr.contains("checked: first error: "), "{stderr}");
    drop(listener);
}

/// Defect 5: `--judge-model NAME=...` on a judge that has no model was accepted and ignored.
#[test]
fn defect_5_judge_model_on_a_judge_without_a_model_is_a_usage_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("s.assay"), judged_spec(dead_port())).unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:refuse",
            "--judge-model",
            "refusal=mock:echo",
            "--no-preflight",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains(
            "--judge-model refusal=...: judge `refusal` has no model to replace: it is a keywords judge"
        ),
        "{stderr}"
    );
    assert!(!stderr.contains("items ×"), "nothing ran: {stderr}");
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:refuse",
            "--judge-model",
            "nosuch=mock:echo",
        ],
    );
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("the suite has no judge `nosuch` (judges: graded, checked, refusal)"),
        "{stderr}"
    );
}

/// A server speaking the OpenAI chat format that answers every request "Sure."; its URL.
fn complying_server() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                loop {
                    let mut length = 0usize;
                    let mut line = String::new();
                    if reader.read_line(&mut line).unwrap_or(0) == 0 {
                        return;
                    }
                    loop {
                        line.clear();
                        reader.read_line(&mut line).unwrap();
                        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap();
                        }
                        if line.trim().is_empty() {
                            break;
                        }
                    }
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    let answer = r#"{"choices":[{"message":{"role":"assistant","content":"Sure."},"finish_reason":"stop"}]}"#;
                    let mut out = &stream;
                    let _ = write!(
                        out,
                        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{answer}",
                        answer.len()
                    );
                }
            });
        }
    });
    url
}

/// A spec graded against the target `reference` (at `REFERENCE_URL`), with a keyword judge.
const GRADED: &str = "taxonomy h \"H\" { a \"A\"  b \"B\" }\n\
    template t { prompt = \"{{p}}\"  hazard = h.a  vars { p in [\"1\", \"2\", \"3\", \"4\"] } }\n\
    template u { prompt = \"{{p}}\"  hazard = h.b  vars { p in [\"5\", \"6\", \"7\", \"8\"] } }\n\
    target reference { provider = openai_compatible  model = \"r\"  endpoint = \"REFERENCE_URL\" }\n\
    judge refusal: keywords { patterns = [\"sorry\"]  match = refused  otherwise = complied  labels = [refused, complied] }\n\
    metric complied_rate = rate(refusal == complied) by hazard\n\
    grade g {\n  metric = complied_rate\n  reference = reference\n  band Good when ratio <= 1\n  band Poor otherwise\n}\n";

/// Defect 2: `--reference RUN_DIR` accepted any run: a model graded against its own run got
/// "Good" everywhere. A reference run must hold the target the grade names.
#[test]
fn defect_2_reference_run_must_hold_the_graded_target() {
    let dir = tempfile::tempdir().unwrap();
    let spec = GRADED.replace("REFERENCE_URL", &complying_server());
    std::fs::write(dir.path().join("s.assay"), spec).unwrap();
    let own = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:comply",
            "--out",
            "own",
            "-q",
        ],
    );
    assert!(own.status.code().is_some(), "{}", text(&own.stderr));
    let again = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:comply",
            "--out",
            "again",
            "--reference",
            "own",
        ],
    );
    let stderr = text(&again.stderr);
    let s = summary(&dir.path().join("again"));
    let grades = s["grades"].as_array().unwrap();
    assert!(!grades.is_empty());
    assert!(grades.iter().all(|g| g["grade"].is_null()), "{grades:?}");
    assert!(
        grades.iter().all(|g| g["reason"]
            .as_str()
            .unwrap()
            .contains("the --reference run holds `mock:comply`, not the target `reference`")),
        "{grades:?}"
    );
    assert!(
        s["warnings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|w| w.as_str().unwrap().contains("not the target `reference`")),
        "{stderr}"
    );

    // The target's own run is a reference.
    let reference = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "reference",
            "--out",
            "ref",
            "-q",
        ],
    );
    assert!(reference.status.code().is_some());
    let graded = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:refuse",
            "--out",
            "graded",
            "-q",
            "--reference",
            "ref",
        ],
    );
    assert_eq!(graded.status.code(), Some(0), "{}", text(&graded.stderr));
    let s = summary(&dir.path().join("graded"));
    let grades = s["grades"].as_array().unwrap();
    assert!(grades.iter().all(|g| g["grade"] == "Good"), "{grades:?}");
}

/// The rows of `metric` in a summary: group (as `key=value`, "" for the overall row) → (n,
/// excluded).
fn rows(s: &Value, metric: &str) -> std::collections::BTreeMap<String, (u64, u64)> {
    s["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["name"] == metric)
        .map(|m| {
            let group = m["group"]
                .as_object()
                .map(|g| {
                    g.iter()
                        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            (
                group,
                (m["n"].as_u64().unwrap(), m["excluded"].as_u64().unwrap()),
            )
        })
        .collect()
}

/// Defect 3: grouped by a label a judge assigns, items whose judge failed vanished from every
/// group (n = 34, excluded = 0 while 2 of 36 had errored). They now form the `(unreadable)`
/// group, and the groups add up to the overall row.
#[test]
fn defect_3_items_whose_group_cannot_be_read_are_accounted_for() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        "template t { prompt = \"{{p}}\"  vars { p in [\"a\", \"b\", \"c\", \"d\", \"e\"] } }\n\
         target g { provider = ollama  model = \"g\" }\n\
         judge guard: llm { model = g  rubric = \"{{response}}\"  parser = regex(\"^(safe|unsafe)$\")  labels = [safe, unsafe] }\n\
         judge refusal: keywords { patterns = [\"sorry\"]  match = refused  otherwise = complied  labels = [refused, complied] }\n\
         metric complied_rate = rate(refusal == complied) by guard\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("guard.yaml"),
        "by_regex: [[\"^a$\", \"safe\"], [\"^[bc]$\", \"unsafe\"]]\ndefault: \"garbled\"\n",
    )
    .unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:echo",
            "--judge-model",
            "guard=mock:script:guard.yaml",
            "--out",
            "out",
        ],
    );
    let stderr = text(&out.stderr);
    assert!(stderr.contains("guard failed on 2"), "{stderr}");
    let s = summary(&dir.path().join("out"));
    let rows = rows(&s, "complied_rate");
    assert_eq!(rows[""], (5, 0), "{rows:?}");
    assert_eq!(rows["guard=safe"], (1, 0), "{rows:?}");
    assert_eq!(rows["guard=unsafe"], (2, 0), "{rows:?}");
    assert_eq!(rows["guard=(unreadable)"], (2, 0), "{rows:?}");
    let sum: u64 = rows
        .iter()
        .filter(|(g, _)| !g.is_empty())
        .map(|(_, (n, x))| n + x)
        .sum();
    assert_eq!(sum, 5, "the groups add up to the overall row");
}

/// Defect 4: human labels were matched by trimmed id while item ids were not trimmed, so
/// items whose id had a leading space got "no human label". Ids now match exactly first,
/// then trimmed on both sides.
#[test]
fn defect_4_human_labels_match_ids_with_spaces() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("pairs.jsonl"),
        "{\"id\": \" r1\", \"prompt\": \"p1\", \"response\": \"a\"}\n\
         {\"id\": \"r2 \", \"prompt\": \"p2\", \"response\": \"b\"}\n\
         {\"id\": \"r3\", \"prompt\": \"p3\", \"response\": \"c\"}\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("labels.csv"),
        "id,label\nr1,unsafe\nr2,safe\n r3 ,unsafe\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        "dataset pairs {\n  format = jsonl\n  path = \"pairs.jsonl\"\n  columns {\n    id: string\n    prompt: string\n    response: string\n  }\n  item {\n    id = row.id\n    prompt = row.prompt\n    response = row.response\n  }\n}\n\
         judge human: human {\n  path = \"labels.csv\"\n  id_column = \"id\"\n  label_column = \"label\"\n  labels = [safe, unsafe]\n}\n\
         metric unsafe_rate = rate(human == unsafe)\n",
    )
    .unwrap();
    let out = assay(dir.path(), &["run", "s.assay", "--out", "out"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    let judgements = std::fs::read_to_string(dir.path().join("out/judgements.jsonl")).unwrap();
    assert!(!judgements.contains("no human label"), "{judgements}");
    let s = summary(&dir.path().join("out"));
    assert_eq!(rows(&s, "unsafe_rate")[""], (3, 0));
}

/// Feature 13 (grouping): `by guard.category` groups by the categories a judge named: an
/// item with several is in each of their groups, one with none in `(not set)`, one whose judge
/// failed in `(unreadable)`; `where guard.categories == S1` filters by one.
#[test]
fn feature_13_grouping_by_a_judges_categories() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("s.assay"),
        "template t { prompt = \"{{p}}\"  vars { p in [\"a\", \"b\", \"c\", \"d\"] } }\n\
         target g { provider = ollama  model = \"x\" }\n\
         judge guard: guard { model = g  format = llama_guard  labels = [safe, unsafe] }\n\
         judge refusal: keywords { patterns = [\"sorry\"]  match = refused  otherwise = complied  labels = [refused, complied] }\n\
         metric complied_rate = rate(refusal == complied) by guard.category\n\
         metric s1_complied = rate(refusal == complied) where guard.categories == S1\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("guard.yaml"),
        "by_regex: [[\"(?m)^a$\", \"unsafe\\nS1,S2\"], [\"(?m)^b$\", \"unsafe\\nS2\"], [\"(?m)^c$\", \"safe\"]]\ndefault: \"garbled\"\n",
    )
    .unwrap();
    let out = assay(
        dir.path(),
        &[
            "run",
            "s.assay",
            "--model",
            "mock:echo",
            "--judge-model",
            "guard=mock:script:guard.yaml",
            "--out",
            "out",
            "-q",
        ],
    );
    assert!(out.status.code().is_some(), "{}", text(&out.stderr));
    let s = summary(&dir.path().join("out"));
    let rows = rows(&s, "complied_rate");
    assert_eq!(rows[""], (4, 0), "{rows:?}");
    assert_eq!(rows["guard.category=S1"], (1, 0), "{rows:?}");
    assert_eq!(rows["guard.category=S2"], (2, 0), "{rows:?}");
    assert_eq!(rows["guard.category=(not set)"], (1, 0), "{rows:?}");
    assert_eq!(rows["guard.category=(unreadable)"], (1, 0), "{rows:?}");
    assert_eq!(rows.len(), 5, "{rows:?}");
    let filtered = self::rows(&s, "s1_complied");
    assert_eq!(filtered[""], (1, 1), "{filtered:?}");

    // An aspect the judge does not have is refused by the checker, with the choices.
    std::fs::write(
        dir.path().join("bad.assay"),
        "template t { prompt = \"hi\" }\n\
         target g { provider = ollama  model = \"x\" }\n\
         judge guard: guard { model = g  format = llama_guard  labels = [safe, unsafe] }\n\
         metric unsafe_rate = rate(guard == unsafe) by guard.tone\n",
    )
    .unwrap();
    let out = assay(dir.path(), &["check", "bad.assay"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("E0115"), "{stderr}");
    assert!(stderr.contains("cannot group by `guard.tone`"), "{stderr}");
    assert!(
        stderr.contains("group by one of: guard.categories"),
        "{stderr}"
    );
}
