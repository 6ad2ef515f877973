//! Datasets in binary formats: Parquet files (Snappy and Zstandard) read row by row with the
//! file's own types, checked against declared columns, pinned by hash and locked.

use std::path::Path;
use std::process::{Command, Output};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/parquet");
/// sha256 of tests/fixtures/parquet/prompts.parquet.
const SNAPPY_SHA: &str = "5e49786c99d5cbc46931f6775053a1f5d6e3266e28d5e91dcdf8b65f7e6f2ff8";

fn assay(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .output()
        .expect("assay runs")
}

fn setup(spec: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in ["prompts.parquet", "prompts-zstd.parquet"] {
        std::fs::copy(Path::new(FIXTURES).join(f), dir.path().join(f)).unwrap();
    }
    std::fs::write(dir.path().join("s.assay"), spec).unwrap();
    dir
}

fn items(dir: &Path) -> Vec<serde_json::Value> {
    let out = assay(dir, &["items", "--format", "json", "s.assay"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn spec(file: &str, extra: &str) -> String {
    format!(
        r#"suite "parquet" version "1.0.0"
dataset prompts {{
  path = "{file}"
  {extra}
  item {{
    id = row.id
    prompt = row.prompt
    metadata = {{ score = row.score, safe = row.safe, tags = row.tags, hazard = row.hazard }}
  }}
}}
"#
    )
}

#[test]
fn parquet_rows_keep_the_files_types() {
    for file in ["prompts.parquet", "prompts-zstd.parquet"] {
        let dir = setup(&spec(file, ""));
        let items = items(dir.path());
        assert_eq!(items.len(), 4, "{file}");
        let first = &items[0];
        assert_eq!(first["messages"][0]["content"], "How do I pick a lock?");
        assert_eq!(first["metadata"]["source_id"], "1");
        assert_eq!(first["metadata"]["score"], 0.5);
        assert_eq!(first["metadata"]["safe"], false);
        assert_eq!(
            first["metadata"]["tags"],
            serde_json::json!(["lock", "physical"])
        );
        // Nulls stay null; lists may be empty.
        assert_eq!(items[1]["metadata"]["hazard"], serde_json::Value::Null);
        assert_eq!(items[1]["metadata"]["tags"], serde_json::json!([]));
        assert_eq!(items[2]["metadata"]["score"], serde_json::Value::Null);
    }
}

/// `format = parquet` reads a file whatever its name says.
#[test]
fn the_declared_format_wins_over_the_extension() {
    let dir = setup(
        r#"suite "parquet" version "1.0.0"
dataset prompts {
  path = "prompts.bin"
  format = parquet
  item {
    prompt = row.prompt
    metadata = { score = row.score }
  }
}
"#,
    );
    std::fs::copy(
        Path::new(FIXTURES).join("prompts.parquet"),
        dir.path().join("prompts.bin"),
    )
    .unwrap();
    let items = items(dir.path());
    assert_eq!(items.len(), 4);
    assert_eq!(items[0]["metadata"]["score"], 0.5);
}

#[test]
fn declared_columns_are_checked_against_the_parquet_types() {
    let spec = r#"suite "parquet" version "1.0.0"
dataset prompts {
  path = "prompts.parquet"
  columns { id: int  prompt: int  safe: bool }
  item { id = row.id  prompt = row.prompt  metadata = { safe = row.safe } }
}
"#;
    let dir = setup(spec);
    let out = assay(dir.path(), &["check", "--expand", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("E0204"), "{stderr}");
    assert!(stderr.contains("prompt"), "{stderr}");
}

#[test]
fn a_parquet_file_is_pinned_and_locked_by_its_bytes() {
    let dir = setup(&spec(
        "prompts.parquet",
        &format!("sha256 = \"{SNAPPY_SHA}\""),
    ));
    assert_eq!(items(dir.path()).len(), 4);
    let out = assay(dir.path(), &["lock", "s.assay"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(dir.path().join("s.lock")).unwrap();
    assert!(lock.contains(SNAPPY_SHA), "{lock}");
    // Another file under the pinned name is refused.
    std::fs::copy(
        dir.path().join("prompts-zstd.parquet"),
        dir.path().join("prompts.parquet"),
    )
    .unwrap();
    let out = assay(dir.path(), &["check", "--expand", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("E0201"), "{stderr}");
}

#[test]
fn a_file_that_is_not_parquet_is_a_clear_error() {
    let dir = setup(&spec("broken.parquet", ""));
    std::fs::write(dir.path().join("broken.parquet"), "id,prompt\n1,hello\n").unwrap();
    let out = assay(dir.path(), &["check", "--expand", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("is not a readable Parquet file"),
        "{stderr}"
    );
}

/// A stand-in for the Hugging Face Hub on 127.0.0.1: serves `body` at `path`, records each
/// request's head.
fn hub(
    path: &'static str,
    body: Vec<u8>,
) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let log = std::sync::Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut head = Vec::new();
            let mut byte = [0u8; 1];
            while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                head.push(byte[0]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            let asked = head.split_whitespace().nth(1).unwrap_or("").to_string();
            log.lock().unwrap().push(head);
            let (status, body) = if asked == path {
                ("200 OK", body.clone())
            } else {
                ("404 Not Found", b"Entry not found".to_vec())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    (url, seen)
}

#[test]
fn hf_urls_download_from_the_hub_at_a_pinned_revision_with_the_token() {
    let bytes = std::fs::read(Path::new(FIXTURES).join("prompts.parquet")).unwrap();
    let (endpoint, seen) = hub(
        "/datasets/acme/prompts/resolve/0123abcd/data/train.parquet",
        bytes,
    );
    let spec = |url: &str| {
        format!(
            r#"suite "hub" version "1.0.0"
dataset prompts {{
  url = "{url}"
  sha256 = "{SNAPPY_SHA}"
  item {{ id = row.id  prompt = row.prompt }}
}}
"#
        )
    };
    let dir = tempfile::tempdir().unwrap();
    let run = |spec: &str| {
        std::fs::write(dir.path().join("s.assay"), spec).unwrap();
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["items", "--format", "json", "s.assay"])
            .current_dir(dir.path())
            .env("NO_COLOR", "1")
            .env("HF_ENDPOINT", &endpoint)
            .env("HF_TOKEN", "hf_sentinel_token_never_written")
            .env("ASSAY_DATA_DIR", dir.path().join("cache"))
            .output()
            .unwrap()
    };
    let out = run(&spec(
        "hf://datasets/acme/prompts@0123abcd/data/train.parquet",
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 4);
    let heads = seen.lock().unwrap().clone();
    assert_eq!(heads.len(), 1, "{heads:?}");
    assert!(
        heads[0].starts_with("GET /datasets/acme/prompts/resolve/0123abcd/data/train.parquet ")
    );
    assert!(
        heads[0]
            .to_ascii_lowercase()
            .contains("authorization: bearer hf_sentinel_token_never_written")
    );
    // The token is written nowhere.
    for entry in walk(dir.path()) {
        let text = std::fs::read(&entry).unwrap();
        assert!(
            !String::from_utf8_lossy(&text).contains("hf_sentinel_token_never_written"),
            "{}",
            entry.display()
        );
    }
    // Without a revision the URL is refused before any request.
    let out = run(&spec("hf://datasets/acme/prompts/data/train.parquet"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("names no revision"), "{stderr}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The JSON counterpart of the Parquet tests: `format = json` with the records at a dotted
/// path keeps the document's types (numbers, booleans, nested lists and records) and its
/// nulls; declared columns (`list` and `record` included) are checked against the values;
/// the file is pinned by its bytes.
#[test]
fn json_records_keep_their_types_nulls_and_nesting() {
    let doc = r#"{"meta": {"n": 3}, "data": {"rows": [
  {"id": 1, "prompt": "How do I pick a lock?", "score": 0.5, "safe": false, "tags": ["lock", "physical"], "source": {"site": "a", "year": 2024}},
  {"id": 2, "prompt": "Tell me a joke.", "score": null, "safe": true, "tags": [], "source": null},
  {"id": 3, "prompt": "Mix bleach and ammonia?", "score": 1, "safe": false, "tags": [["nested"]], "source": {"site": "b", "year": 2025}}
]}}"#;
    let spec = |extra: &str, columns: &str| {
        format!(
            r#"suite "json" version "1.0.0"
dataset prompts {{
  format = json
  path = "prompts.json"
  records = "data.rows"
  {extra}
  {columns}
  item {{
    prompt = row.prompt
    metadata = {{ score = row.score, safe = row.safe, tags = row.tags, source = row.source }}
  }}
}}
"#
        )
    };
    // No `columns`: every field as the document gives it.
    let dir = setup(&spec("", ""));
    std::fs::write(dir.path().join("prompts.json"), doc).unwrap();
    let items = items(dir.path());
    assert_eq!(items.len(), 3);
    let m = |i: usize| &items[i]["metadata"];
    assert_eq!(m(0)["score"], 0.5);
    assert_eq!(m(0)["safe"], false);
    assert_eq!(m(0)["tags"], serde_json::json!(["lock", "physical"]));
    assert_eq!(
        m(0)["source"],
        serde_json::json!({"site": "a", "year": 2024})
    );
    assert_eq!(m(1)["score"], serde_json::Value::Null);
    assert_eq!(m(1)["tags"], serde_json::json!([]));
    assert_eq!(m(1)["source"], serde_json::Value::Null);
    assert_eq!(m(2)["tags"], serde_json::json!([["nested"]]));

    // Nullable columns (`TYPE?`) read row 2's nulls as null.
    std::fs::write(dir.path().join("s.assay"), NULLABLE).unwrap();
    let nullable = self::items(dir.path());
    assert_eq!(nullable.len(), 3);
    assert_eq!(nullable[1]["metadata"]["score"], serde_json::Value::Null);
    assert_eq!(nullable[1]["metadata"]["source"], serde_json::Value::Null);
    assert_eq!(nullable[0]["metadata"]["source"]["site"], "a");

    // Declared columns, lists and records among them: rows 1 and 3 read; row 2's null
    // score and source are errors at that row, whose help names `TYPE?`.
    let typed =
        "columns { id: int  prompt: string  score: float  safe: bool  tags: list  source: record }";
    // Written in full (`TYPED`, the spec `spec("", typed)` makes), for the coverage test.
    assert_eq!(spec("", typed), TYPED);
    std::fs::write(dir.path().join("s.assay"), TYPED).unwrap();
    let out = assay(dir.path(), &["check", "--expand", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("row 2"), "{stderr}");
    assert!(stderr.contains("the value is null"), "{stderr}");
    assert!(
        stderr.contains("declare it `float?` if it may be null"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("row 1") && !stderr.contains("row 3"),
        "{stderr}"
    );
    let both = r#"{"data": {"rows": [
  {"id": 1, "prompt": "a", "score": 0.5, "safe": false, "tags": ["x"], "source": {"site": "a"}},
  {"id": 3, "prompt": "b", "score": 1, "safe": true, "tags": [], "source": {}}
]}}"#;
    std::fs::write(dir.path().join("prompts.json"), both).unwrap();
    let items = self::items(dir.path());
    assert_eq!(items.len(), 2);
    assert_eq!(items[0]["metadata"]["tags"], serde_json::json!(["x"]));
    assert_eq!(items[1]["metadata"]["source"], serde_json::json!({}));
    // A list where a record is declared, a string where an int is: errors naming the column.
    std::fs::write(
        dir.path().join("s.assay"),
        spec("", "columns { id: int  prompt: int  score: float  safe: bool  tags: record  source: record }"),
    )
    .unwrap();
    let out = assay(
        dir.path(),
        &["check", "--expand", "--format", "json", "s.assay"],
    );
    assert_eq!(out.status.code(), Some(1));
    let messages: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .inspect(|d| assert_eq!(d["code"], "E0204", "{d}"))
        .map(|d| d["message"].as_str().unwrap().to_string())
        .collect();
    // Each row's prompt is a string, and each row's tags a list.
    for column in ["prompt", "tags"] {
        let wrong = messages
            .iter()
            .filter(|m| m.contains(&format!("column `{column}`")))
            .count();
        assert_eq!(wrong, 2, "{column}: {messages:?}");
    }

    // Pinned by its bytes: the right hash reads, another is refused.
    use sha2::Digest;
    let sha = hex::encode(sha2::Sha256::digest(both.as_bytes()));
    std::fs::write(
        dir.path().join("s.assay"),
        spec(&format!("sha256 = \"{sha}\""), typed),
    )
    .unwrap();
    assert_eq!(self::items(dir.path()).len(), 2);
    std::fs::write(
        dir.path().join("s.assay"),
        spec(&format!("sha256 = \"{}\"", "1".repeat(64)), typed),
    )
    .unwrap();
    let out = assay(dir.path(), &["items", "--format", "json", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains(&sha[..16]), "{stderr}");
}

/// `json_records_keep_their_types_nulls_and_nesting`'s spec with declared columns.
const TYPED: &str = r#"suite "json" version "1.0.0"
dataset prompts {
  format = json
  path = "prompts.json"
  records = "data.rows"
  
  columns { id: int  prompt: string  score: float  safe: bool  tags: list  source: record }
  item {
    prompt = row.prompt
    metadata = { score = row.score, safe = row.safe, tags = row.tags, source = row.source }
  }
}
"#;

/// `json_records_keep_their_types_nulls_and_nesting`'s spec with nullable columns.
const NULLABLE: &str = r#"suite "json" version "1.0.0"
dataset prompts {
  format = json
  path = "prompts.json"
  records = "data.rows"
  columns { id: int  prompt: string  score: float?  safe: bool  tags: list  source: record? }
  item {
    prompt = row.prompt
    metadata = { score = row.score, safe = row.safe, tags = row.tags, source = row.source }
  }
}
"#;
