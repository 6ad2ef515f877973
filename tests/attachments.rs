//! Attachments sent in each provider's wire format, against a server on 127.0.0.1 that keeps
//! every request body: OpenAI image and audio content parts, Anthropic image blocks, Ollama
//! `images`. A provider that cannot take an attachment (audio to Anthropic or Ollama) fails
//! the item with the reason, never a verdict; results name attachments by hash and path.

#[path = "common/http.rs"]
mod http;
use base64::Engine as _;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

/// The smallest PNG (1×1, transparent) and a WAV header with no samples.
const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x01\0\0\0\x01\x08\x06\0\0\0\x1f\x15\xc4\x89\0\0\0\rIDATx\x9cc\xf8\x0f\0\0\x01\x01\0\x05\x18\xd8N\0\0\0\0IEND\xaeB`\x82";
const WAV: &[u8] =
    b"RIFF$\0\0\0WAVEfmt \x10\0\0\0\x01\0\x01\0\x40\x1f\0\0\x80\x3e\0\0\x02\0\x10\0data\0\0\0\0";

/// A server answering OpenAI, Anthropic and Ollama chat requests with "I see it.", keeping
/// each request's path and body.
/// Each request's path and JSON body, as the server saw them.
type Seen = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

fn server() -> (String, Seen) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = Arc::clone(&seen);
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let (head, body) = http::read_request(&mut stream).unwrap_or_default();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            log.lock().unwrap().push((path.clone(), body));
            let reply = if path.ends_with("/v1/messages") {
                r#"{"type":"message","role":"assistant","content":[{"type":"text","text":"I see it."}],"stop_reason":"end_turn","usage":{"input_tokens":3,"output_tokens":3}}"#
            } else if path.ends_with("/api/chat") {
                r#"{"message":{"role":"assistant","content":"I see it."},"done":true}"#
            } else {
                r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"I see it."},"finish_reason":"stop"}]}"#
            };
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen)
}

fn setup(targets: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("media")).unwrap();
    std::fs::write(d.join("media/dot.png"), PNG).unwrap();
    std::fs::write(d.join("media/blank.wav"), WAV).unwrap();
    let inline = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    std::fs::write(
        d.join("items.jsonl"),
        format!(
            "{{\"id\": \"seen\", \"prompt\": \"What is in this picture?\", \"image\": \"media/dot.png\"}}\n\
             {{\"id\": \"inline\", \"prompt\": \"And in this one?\", \"image\": \"{inline}\"}}\n"
        ),
    )
    .unwrap();
    std::fs::write(
        d.join("heard.jsonl"),
        "{\"id\": \"heard\", \"prompt\": \"What do you hear?\", \"clip\": \"media/blank.wav\"}\n",
    )
    .unwrap();
    std::fs::write(
        d.join("s.assay"),
        format!(
            r#"suite "media" version "1.0.0"
dataset pictures {{
  path = "items.jsonl"
  item {{ id = row.id  prompt = row.prompt  attachments = [image(row.image)] }}
}}
dataset sounds {{
  path = "heard.jsonl"
  item {{ id = row.id  prompt = row.prompt  attachments = [audio(row.clip)] }}
}}
{targets}
judge seen: keywords {{ patterns = ["see"]  labels = [saw, blind]  match = saw  otherwise = blind }}
metric sight = rate(seen == saw)
"#
        ),
    )
    .unwrap();
    dir
}

fn run(dir: &Path, model: &str) -> Vec<serde_json::Value> {
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "run",
            "s.assay",
            "--model",
            model,
            "--quiet",
            "--no-preflight",
            "--out",
            model,
        ])
        .current_dir(dir)
        .env("ASSAY_STATE_DIR", dir.join(".assay"))
        .env("ANTHROPIC_API_KEY", "sk-ant-test")
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let _ = out;
    std::fs::read_to_string(dir.join(model).join("results.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn each_provider_is_sent_the_attachments_in_its_own_format() {
    let (url, seen) = server();
    let dir = setup(&format!(
        r#"target gpt {{ provider = openai_compatible  model = "gpt-4o"  endpoint = "{url}/v1" }}
target claude {{ provider = anthropic  model = "claude"  endpoint = "{url}" }}
target llava {{ provider = ollama  model = "llava"  endpoint = "{url}" }}"#
    ));
    let d = dir.path();
    let png = base64::engine::general_purpose::STANDARD.encode(PNG);
    let wav = base64::engine::general_purpose::STANDARD.encode(WAV);

    // OpenAI: an image_url data URL and an input_audio part after the text.
    let results = run(d, "gpt");
    assert!(results.iter().all(|r| r["state"] == "ok"), "{results:?}");
    let bodies = seen.lock().unwrap().clone();
    let parts: Vec<&serde_json::Value> = bodies
        .iter()
        .map(|(_, b)| &b["messages"][0]["content"])
        .collect();
    assert!(
        parts
            .iter()
            .any(|p| p[1]["image_url"]["url"] == format!("data:image/png;base64,{png}"))
    );
    assert!(parts.iter().any(|p| p[1]["type"] == "input_audio"
        && p[1]["input_audio"]["data"] == wav.as_str()
        && p[1]["input_audio"]["format"] == "wav"));
    assert!(parts.iter().all(|p| p[0]["type"] == "text"));
    // Results name each attachment by hash and path, without its bytes.
    let first = results.iter().find(|r| r["source_id"] == "seen").unwrap();
    assert_eq!(first["attachments"][0]["path"], "media/dot.png");
    assert_eq!(first["attachments"][0]["media_type"], "image/png");
    assert!(first["attachments"][0].get("data").is_none());
    let inline = results.iter().find(|r| r["source_id"] == "inline").unwrap();
    assert!(inline["attachments"][0].get("data").is_none());
    assert_eq!(
        inline["attachments"][0]["sha256"],
        first["attachments"][0]["sha256"]
    );

    // Anthropic: a base64 image block before the text; audio refused with the reason.
    seen.lock().unwrap().clear();
    let results = run(d, "claude");
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2, "the audio item is never sent");
    for (path, body) in &bodies {
        assert!(path.ends_with("/v1/messages"));
        let block = &body["messages"][0]["content"][0];
        assert_eq!(block["type"], "image");
        assert_eq!(block["source"]["data"], png.as_str());
        assert_eq!(body["messages"][0]["content"][1]["type"], "text");
    }
    let heard = results.iter().find(|r| r["source_id"] == "heard").unwrap();
    assert_eq!(heard["state"], "error");
    assert!(
        heard["error"]
            .as_str()
            .unwrap()
            .contains("takes images, not audio")
    );
    let judged = std::fs::read_to_string(d.join("claude/judgements.jsonl")).unwrap();
    let heard_line = judged
        .lines()
        .find(|l| l.contains(heard["item_id"].as_str().unwrap()))
        .unwrap();
    assert!(
        !heard_line.contains("\"label\""),
        "a failed item has no verdict: {heard_line}"
    );

    // Ollama: the images in the message's `images`.
    seen.lock().unwrap().clear();
    let results = run(d, "llava");
    assert_eq!(results.iter().filter(|r| r["state"] == "ok").count(), 2);
    for (_, body) in seen.lock().unwrap().iter() {
        assert_eq!(body["messages"][0]["images"][0], png.as_str());
    }
}

#[test]
fn a_file_changed_since_compiling_is_an_error_not_another_prompt() {
    let (url, seen) = server();
    let dir = setup(&format!(
        r#"target gpt {{ provider = openai_compatible  model = "gpt-4o"  endpoint = "{url}/v1" }}"#
    ));
    let d = dir.path();
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["compile", "s.assay", "--out", "suite"])
        .current_dir(d)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut changed = PNG.to_vec();
    changed.push(0);
    std::fs::write(d.join("media/dot.png"), changed).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args([
            "run",
            "suite",
            "--model",
            "openai:gpt-4o",
            "--quiet",
            "--no-preflight",
            "--out",
            "r",
        ])
        .current_dir(d)
        .env("ASSAY_STATE_DIR", d.join(".assay"))
        .env("OPENAI_BASE_URL", format!("{url}/v1"))
        .output()
        .unwrap();
    let _ = out;
    let results = std::fs::read_to_string(d.join("r/results.jsonl")).unwrap();
    let seen_item = results.lines().find(|l| l.contains("\"seen\"")).unwrap();
    assert!(seen_item.contains("\"state\":\"error\""), "{seen_item}");
    assert!(seen_item.contains("compile the suite again"), "{seen_item}");
    // The inline image and the audio clip did not change: sent.
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// The lock holds each attached file's hash, read as bytes: a fresh lock checks clean, and an
/// image changed since is named as changed (not as gone, which reading it as text would say).
#[test]
fn the_lock_pins_attached_files_by_their_bytes() {
    let dir = setup("");
    let d = dir.path();
    let assay = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(args)
            .current_dir(d)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = assay(&["lock", "s.assay"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(d.join("s.lock")).unwrap();
    assert!(lock.contains("media/dot.png"), "{lock}");
    assert!(lock.contains("media/blank.wav"), "{lock}");
    let out = assay(&["check", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success() && !stderr.contains("W0003"),
        "{stderr}"
    );
    let mut changed = PNG.to_vec();
    changed.push(0);
    std::fs::write(d.join("media/dot.png"), changed).unwrap();
    let out = assay(&["check", "s.assay"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(stderr.contains("W0003"), "{stderr}");
    assert!(
        stderr.contains("`media/dot.png` changed since the lock was written"),
        "{stderr}"
    );
    assert_eq!(stderr.matches("stale lock:").count(), 1, "{stderr}");
}

/// A judge with `attachments = true` is sent the item's images and audio with its prompt, as
/// the target saw them; a judge without is sent text alone. Judged apart from the run, an
/// inline attachment needs the compiled suite (`--suite`): without it, that item's judgement
/// is an error saying so, never a verdict on the text alone.
#[test]
fn a_judge_that_sees_attachments_is_sent_them() {
    let (url, seen) = server();
    let dir = setup(&format!(
        r#"target gpt {{ provider = openai_compatible  model = "gpt-4o"  endpoint = "{url}/v1" }}
judge looks: llm {{
  model = gpt  rubric = "Look: {{{{response}}}}"  parser = regex("(see)")  labels = [see, blind]
  attachments = true
}}
judge reads: llm {{ model = gpt  rubric = "Read: {{{{response}}}}"  parser = regex("(see)")  labels = [see, blind] }}"#
    ));
    let d = dir.path();
    let results = run(d, "gpt");
    assert_eq!(results.len(), 3);
    let png = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    let bodies = seen.lock().unwrap().clone();
    let judged = |prefix: &str| -> Vec<serde_json::Value> {
        bodies
            .iter()
            .map(|(_, b)| b["messages"].as_array().unwrap().last().unwrap()["content"].clone())
            .filter(|c| {
                let text = match c {
                    serde_json::Value::String(s) => s.clone(),
                    _ => c
                        .as_array()
                        .unwrap()
                        .iter()
                        .find(|p| p["type"] == "text")
                        .unwrap()["text"]
                        .as_str()
                        .unwrap()
                        .to_string(),
                };
                text.starts_with(prefix)
            })
            .collect()
    };
    // Three items (a file image, an inline image, a clip): each judge asked three times.
    let looks = judged("Look:");
    let reads = judged("Read:");
    assert_eq!((looks.len(), reads.len()), (3, 3));
    for content in &reads {
        assert!(content.is_string(), "{content}");
    }
    let images: Vec<&serde_json::Value> = looks
        .iter()
        .flat_map(|c| c.as_array().unwrap())
        .filter(|p| p["type"] == "image_url")
        .collect();
    assert_eq!(images.len(), 2, "{looks:?}");
    for image in images {
        assert_eq!(image["image_url"]["url"], png.as_str());
    }
    let clips = looks
        .iter()
        .flat_map(|c| c.as_array().unwrap())
        .filter(|p| p["type"] == "input_audio")
        .count();
    assert_eq!(clips, 1);
    let verdicts = std::fs::read_to_string(d.join("gpt/judgements.jsonl")).unwrap();
    assert_eq!(
        verdicts.matches("\"looks\":{\"label\":\"see\"").count(),
        3,
        "{verdicts}"
    );

    // Judged again from the run folder alone, without the cache: the file image is read from
    // the package, the inline one cannot be.
    let out = Command::new(env!("CARGO_BIN_EXE_assay"))
        .args(["judge", "gpt", "--no-cache", "--quiet", "--no-preflight"])
        .current_dir(d)
        .env("ASSAY_STATE_DIR", d.join(".assay"))
        .env("NO_COLOR", "1")
        .output()
        .unwrap();
    let _ = out;
    let verdicts = std::fs::read_to_string(d.join("gpt/judgements.jsonl")).unwrap();
    assert_eq!(
        verdicts.matches("\"looks\":{\"label\":\"see\"").count(),
        2,
        "{verdicts}"
    );
    assert!(
        verdicts.contains("was given inline and results keep only its hash"),
        "{verdicts}"
    );
    // With the compiled suite at hand, every item is judged with its attachments again.
    let assay = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(args)
            .current_dir(d)
            .env("ASSAY_STATE_DIR", d.join(".assay"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = assay(&["compile", "s.assay", "--out", "suite"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = assay(&[
        "judge",
        "gpt",
        "--no-cache",
        "--quiet",
        "--no-preflight",
        "--suite",
        "suite",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verdicts = std::fs::read_to_string(d.join("gpt/judgements.jsonl")).unwrap();
    assert_eq!(
        verdicts.matches("\"looks\":{\"label\":\"see\"").count(),
        3,
        "{verdicts}"
    );
}

/// A server publishing the PNG at `/img/dot.png` (counting downloads) and answering chat
/// requests with "I see it.", keeping their bodies.
fn publisher() -> (String, Seen, Arc<std::sync::atomic::AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let seen: Seen = Arc::new(Mutex::new(Vec::new()));
    let downloads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let (log, count) = (Arc::clone(&seen), Arc::clone(&downloads));
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let (head, body) = http::read_request(&mut stream).unwrap_or_default();
            let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
            if path == "/img/dot.png" {
                count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let _ = write!(
                    stream,
                    "HTTP/1.1 200 OK\r\nContent-Type: image/png\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    PNG.len()
                );
                let _ = stream.write_all(PNG);
                continue;
            }
            // The preflight's connection sends nothing.
            if path.is_empty() {
                continue;
            }
            let body: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
            log.lock().unwrap().push((path, body));
            let reply = r#"{"choices":[{"index":0,"message":{"role":"assistant","content":"I see it."},"finish_reason":"stop"}]}"#;
            let _ = write!(
                stream,
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, seen, downloads)
}

/// An attachment published at a URL is pinned by its sha256 (`image(row.url, row.sha256)`):
/// compiling downloads it once into the data cache and checks the hash, runs send it from
/// there (also offline), results name it by URL and hash; a wrong hash, or no hash, is an
/// error at the row, before any call.
#[test]
fn an_attachment_url_is_pinned_by_its_hash_and_cached() {
    use sha2::Digest;
    let (url, seen, downloads) = publisher();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let sha = hex::encode(sha2::Sha256::digest(PNG));
    let rows = |sha: &str| {
        format!(
            "{{\"id\": \"far\", \"prompt\": \"What is this?\", \"url\": \"{url}/img/dot.png\", \"sha\": \"{sha}\"}}\n"
        )
    };
    std::fs::write(d.join("items.jsonl"), rows(&sha)).unwrap();
    let spec = |attachments: &str| {
        format!(
            r#"suite "far" version "1.0.0"
dataset pictures {{
  path = "items.jsonl"
  item {{ id = row.id  prompt = row.prompt  attachments = [{attachments}] }}
}}
target gpt {{ provider = openai_compatible  model = "gpt-4o"  endpoint = "{url}/v1" }}
"#
        )
    };
    std::fs::write(d.join("s.assay"), spec("image(row.url, row.sha)")).unwrap();
    let assay = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(args)
            .current_dir(d)
            .env("ASSAY_STATE_DIR", d.join(".assay"))
            .env("ASSAY_DATA_DIR", d.join("cache"))
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = assay(&["run", "s.assay", "--model", "gpt", "--quiet", "--out", "r1"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 1);
    assert_eq!(std::fs::read(d.join("cache").join(&sha)).unwrap(), PNG);
    let png = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 1, "{bodies:?}");
    assert_eq!(
        bodies[0].1["messages"][0]["content"][1]["image_url"]["url"],
        png.as_str()
    );
    let result: serde_json::Value = serde_json::from_str(
        std::fs::read_to_string(d.join("r1/results.jsonl"))
            .unwrap()
            .trim(),
    )
    .unwrap();
    assert_eq!(
        result["attachments"][0]["url"],
        format!("{url}/img/dot.png").as_str()
    );
    assert_eq!(result["attachments"][0]["sha256"], sha.as_str());
    assert!(result["attachments"][0]["data"].is_null());

    // Offline, from the cache: no download, the same image sent (by a run with a fresh
    // state, which replays nothing).
    std::fs::remove_dir_all(d.join(".assay")).unwrap();
    let out = assay(&[
        "run",
        "s.assay",
        "--model",
        "gpt",
        "--quiet",
        "--out",
        "r2",
        "--offline",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 1);
    let bodies = seen.lock().unwrap().clone();
    assert_eq!(bodies.len(), 2);
    assert_eq!(
        bodies[1].1["messages"][0]["content"][1]["image_url"]["url"],
        png.as_str()
    );

    // A hash the bytes do not have: the download is refused, nothing is sent.
    let wrong = "0".repeat(64);
    std::fs::write(d.join("items.jsonl"), rows(&wrong)).unwrap();
    let out = assay(&["items", "s.assay", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        flat(&stderr).contains(&format!("hassha256{sha},butitsrowpins{wrong}")),
        "{stderr}"
    );
    // No hash at all: the URL is not downloaded.
    std::fs::write(d.join("items.jsonl"), rows(&sha)).unwrap();
    std::fs::write(d.join("s.assay"), spec("image(row.url)")).unwrap();
    let out = assay(&["items", "s.assay", "--format", "json"]);
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        flat(&stderr).contains("pinitbythesha256ofitsbytes"),
        "{stderr}"
    );
    assert_eq!(downloads.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert_eq!(seen.lock().unwrap().len(), 2);
}

/// A diagnostic without its spaces and margins: messages are wrapped to the terminal.
fn flat(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_whitespace() && *c != '│')
        .collect()
}

/// A guard that sees attachments screens each turn with the item's image, inside the
/// defended target's conversation; the defended model gets it too.
#[test]
fn a_guard_that_sees_attachments_screens_the_turn_with_them() {
    let (url, seen) = server();
    let dir = setup(&format!(
        r#"target gpt {{ provider = openai_compatible  model = "gpt-4o"  endpoint = "{url}/v1" }}
target guard_model {{ provider = openai_compatible  model = "guard"  endpoint = "{url}/v1" }}
judge screen: llm {{
  model = guard_model  rubric = "Screen: {{{{prompt}}}}"  parser = regex("(see)")  labels = [see, blind]
  attachments = true
}}
target guarded {{ wraps = gpt  input_guard = screen }}"#
    ));
    let d = dir.path();
    let results = run(d, "guarded");
    assert_eq!(results.len(), 3);
    for r in &results {
        assert_eq!(r["state"], "ok", "{r}");
    }
    let png = format!(
        "data:image/png;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(PNG)
    );
    let bodies = seen.lock().unwrap().clone();
    let of = |model: &str| -> Vec<serde_json::Value> {
        bodies
            .iter()
            .filter(|(_, b)| b["model"] == model)
            .map(|(_, b)| b["messages"].as_array().unwrap().last().unwrap()["content"].clone())
            .collect()
    };
    // Each of the three turns screened, then answered: both with the item's media.
    for model in ["guard", "gpt-4o"] {
        let contents = of(model);
        assert_eq!(contents.len(), 3, "{model}");
        let images: Vec<&serde_json::Value> = contents
            .iter()
            .flat_map(|c| c.as_array().unwrap())
            .filter(|p| p["type"] == "image_url")
            .collect();
        assert_eq!(images.len(), 2, "{model}: {contents:?}");
        for image in images {
            assert_eq!(image["image_url"]["url"], png.as_str());
        }
    }
    assert!(
        of("guard")
            .iter()
            .all(|c| c[0]["text"].as_str().unwrap().starts_with("Screen: ")),
        "{bodies:?}"
    );
}

/// A column of hashes pins the rows that name URLs; a row naming a package file leaves it
/// empty (a hash there is an error: the suite pins its own files).
#[test]
fn a_local_file_in_a_column_of_urls_needs_no_pin() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::write(d.join("local.png"), PNG).unwrap();
    std::fs::write(
        d.join("s.assay"),
        r#"suite "mixed" version "1.0.0"
dataset pictures {
  path = "items.jsonl"
  item { id = row.id  prompt = row.prompt  attachments = [image(row.url, row.sha)] }
}
"#,
    )
    .unwrap();
    let items = |rows: &str| {
        std::fs::write(d.join("items.jsonl"), rows).unwrap();
        Command::new(env!("CARGO_BIN_EXE_assay"))
            .args(["items", "s.assay", "--format", "json"])
            .current_dir(d)
            .env("NO_COLOR", "1")
            .output()
            .unwrap()
    };
    let out = items(
        "{\"id\": \"near\", \"prompt\": \"What is this?\", \"url\": \"local.png\", \"sha\": \"\"}\n",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let item: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(item["attachments"][0]["path"], "local.png");
    let out = items(&format!(
        "{{\"id\": \"near\", \"prompt\": \"What is this?\", \"url\": \"local.png\", \"sha\": \"{}\"}}\n",
        "a".repeat(64)
    ));
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!out.status.success(), "{stderr}");
    assert!(
        flat(&stderr).contains("asha256pinsanattachment'sURL"),
        "{stderr}"
    );
}
