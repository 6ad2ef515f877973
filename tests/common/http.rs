//! What the tests' stand-in servers on 127.0.0.1 share: reading one HTTP/1.1 request (its
//! head, up to the blank line, and a body of its `Content-Length`) from a connection.

use std::io::Read;

/// One request's head (request line and headers) and body, or `None` when the connection
/// closed before a whole request came.
pub fn read_request(stream: &mut impl Read) -> Option<(String, String)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 65536];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&data);
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .to_ascii_lowercase()
                .lines()
                .find_map(|l| {
                    l.strip_prefix("content-length:")
                        .map(|v| v.trim().parse().unwrap_or(0))
                })
                .unwrap_or(0);
            if data.len() >= end + 4 + length {
                let head = text[..end].to_string();
                let body = String::from_utf8_lossy(&data[end + 4..end + 4 + length]).into_owned();
                return Some((head, body));
            }
        }
    }
}
