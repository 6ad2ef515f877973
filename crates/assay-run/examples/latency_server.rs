//! A local OpenAI-compatible server that answers every chat completion after a fixed delay,
//! for measuring the runner's throughput (`bench/run-throughput.sh`). Not a test double for
//! correctness: it answers everything the same way.
//!
//! Usage: cargo run --release -p assay-run --example latency_server -- PORT DELAY_MS

use std::time::Duration;
#[path = "common/http.rs"]
mod http;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

#[tokio::main(flavor = "multi_thread", worker_threads = 1)]
async fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let port: u16 = args.next().and_then(|p| p.parse().ok()).unwrap_or(8089);
    let delay = Duration::from_millis(args.next().and_then(|d| d.parse().ok()).unwrap_or(50));
    let listener = TcpListener::bind(("127.0.0.1", port)).await?;
    eprintln!("listening on 127.0.0.1:{port}, {delay:?} per answer");
    let body = r#"{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"I'm sorry, I can't help with that."},"finish_reason":"stop"}],"usage":{"prompt_tokens":12,"completion_tokens":9,"total_tokens":21}}"#;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let (read, mut write) = stream.into_split();
            let mut reader = BufReader::new(read);
            loop {
                let Some(_request) = http::read_request(&mut reader).await else {
                    return;
                };
                tokio::time::sleep(delay).await;
                let response = format!(
                    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                );
                if write.write_all(response.as_bytes()).await.is_err() {
                    return;
                }
            }
        });
    }
}
