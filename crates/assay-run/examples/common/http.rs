//! The request reading the example servers share: one HTTP/1.1 request off a keep-alive
//! connection, as its request line and body.

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt};

/// The next request: its request line and body; `None` when the client closed the connection
/// or sent something unreadable.
pub async fn read_request(reader: &mut (impl AsyncBufRead + Unpin)) -> Option<(String, Vec<u8>)> {
    let mut line = String::new();
    if reader.read_line(&mut line).await.unwrap_or(0) == 0 {
        return None;
    }
    let mut length = 0usize;
    loop {
        let mut header = String::new();
        if reader.read_line(&mut header).await.unwrap_or(0) == 0 {
            return None;
        }
        if header == "\r\n" {
            break;
        }
        if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body).await.ok()?;
    Some((line, body))
}
