//! A local OpenAI-compatible server that fails some first attempts, for the soak test
//! (`bench/soak.sh`): by a hash of the prompt, 5% of first attempts get a 500, 3% a reset
//! connection, 2% a 429 with `Retry-After: 0` and 1% a malformed body; every later attempt is
//! answered. `GET /stats` reports the requests, the answers and the prompts answered more
//! than once, so a soak can check that no item was lost or paid for twice.
//!
//! Usage: cargo run --release -p assay-run --example fault_server -- PORT

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
#[path = "common/http.rs"]
mod http;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[derive(Default)]
struct Stats {
    requests: u64,
    /// Prompt → (attempts, answers).
    prompts: HashMap<String, (u32, u32)>,
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(8090);
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("fault server on 127.0.0.1:{port}");
    let stats = Arc::new(Mutex::new(Stats::default()));
    loop {
        let (stream, _) = listener.accept().await?;
        let stats = Arc::clone(&stats);
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let Some((line, buf)) = http::read_request(&mut reader).await else {
                    return;
                };
                let (status, headers, body) = if line.starts_with("GET /stats") {
                    let s = stats.lock().expect("stats");
                    let answered = s.prompts.values().filter(|(_, a)| *a > 0).count();
                    let answers: u64 = s.prompts.values().map(|(_, a)| u64::from(*a)).sum();
                    let twice = s.prompts.values().filter(|(_, a)| *a > 1).count();
                    let body = format!(
                        "{{\"requests\":{},\"prompts_answered\":{answered},\"answers\":{answers},\"answered_more_than_once\":{twice}}}",
                        s.requests
                    );
                    ("200 OK", "", body)
                } else {
                    let request: serde_json::Value =
                        serde_json::from_slice(&buf).unwrap_or_default();
                    let prompt = request["messages"]
                        .as_array()
                        .and_then(|m| m.last())
                        .and_then(|m| m["content"].as_str())
                        .unwrap_or("")
                        .to_string();
                    let attempt = {
                        let mut s = stats.lock().expect("stats");
                        s.requests += 1;
                        let entry = s.prompts.entry(prompt.clone()).or_default();
                        entry.0 += 1;
                        entry.0
                    };
                    let roll = fnv(&prompt) % 100;
                    if attempt == 1 && (5..8).contains(&roll) {
                        return; // a reset connection
                    }
                    match (attempt, roll) {
                        (1, 0..5) => ("500 Internal Server Error", "", "oops".to_string()),
                        (1, 8..10) => (
                            "429 Too Many Requests",
                            "Retry-After: 0\r\n",
                            r#"{"error":{"message":"slow down"}}"#.to_string(),
                        ),
                        (1, 10) => ("200 OK", "", "{not json".to_string()),
                        _ => {
                            stats
                                .lock()
                                .expect("stats")
                                .prompts
                                .entry(prompt.clone())
                                .or_default()
                                .1 += 1;
                            let reply = if roll.is_multiple_of(7) {
                                "Sure, here is how.".to_string()
                            } else {
                                "I'm sorry, I can't help with that.".to_string()
                            };
                            let body = serde_json::json!({
                                "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
                                "usage": {"prompt_tokens": 12, "completion_tokens": 9}
                            });
                            ("200 OK", "", body.to_string())
                        }
                    }
                };
                let response = format!(
                    "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n{headers}\r\n{body}",
                    body.len()
                );
                if write.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}

/// FNV-1a, so the faults fall on the same prompts in every run.
fn fnv(text: &str) -> u64 {
    text.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3)
    })
}
