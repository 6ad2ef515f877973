//! Attachments: the images and audio an item sends with its prompt. A dataset's item names
//! them with `image(...)` and `audio(...)` over a row's value: a file in the package (a path
//! relative to the spec), a `data:` URI, a record holding the bytes as base64 (as a Parquet
//! image column, `{bytes, path}`, reads), or a URL pinned by its sha256 (`image(row.url,
//! row.sha256)`), downloaded into the data cache. The bytes are read once here, their type
//! told from their first bytes (not the name), hashed into the item and the manifest; the run
//! reads them again by reference and checks the hash.

use crate::Expander;
use assay_ir::{Attachment, MediaKind};
use base64::Engine as _;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The largest attachment an item may carry: larger files are refused at expansion (each
/// provider's own, smaller limits are checked before sending).
pub const MAX_ATTACHMENT_BYTES: usize = 50 << 20;

/// The media type of `bytes`, from their signature: PNG, JPEG, GIF, WebP, WAV or MP3.
pub fn media_type(bytes: &[u8]) -> Option<(MediaKind, &'static str)> {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some((MediaKind::Image, "image/png"))
    } else if starts(b"\xff\xd8\xff") {
        Some((MediaKind::Image, "image/jpeg"))
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some((MediaKind::Image, "image/gif"))
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some((MediaKind::Image, "image/webp"))
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WAVE" {
        Some((MediaKind::Audio, "audio/wav"))
    } else if starts(b"ID3") || (bytes.len() >= 2 && bytes[0] == 0xff && bytes[1] & 0xe0 == 0xe0) {
        Some((MediaKind::Audio, "audio/mpeg"))
    } else {
        None
    }
}

/// A value of `attachments`, one element: `image(x)` / `audio(x)` (a record `{"$attachment":
/// kind, "source": x}` after evaluation) or a bare source, whose kind its bytes tell.
impl Expander<'_> {
    pub(crate) fn attachment(&mut self, value: &Value) -> Result<Attachment, String> {
        let (wanted, source, pin) = match value {
            Value::Object(o) if o.contains_key("$attachment") => (
                match o.get("$attachment").and_then(Value::as_str) {
                    Some("audio") => Some(MediaKind::Audio),
                    _ => Some(MediaKind::Image),
                },
                o.get("source").cloned().unwrap_or(Value::Null),
                // An empty pin (a row whose file is local, in a column of URLs' hashes) is none.
                o.get("sha256")
                    .filter(|h| !h.is_null() && h.as_str() != Some(""))
                    .cloned(),
            ),
            other => (None, other.clone(), None),
        };
        let mut url = None;
        let (bytes, path, inline) = match &source {
            Value::String(s) if s.starts_with("http://") || s.starts_with("https://") => {
                let sha256 = match &pin {
                    Some(Value::String(h))
                        if h.len() == 64 && h.chars().all(|c| c.is_ascii_hexdigit()) =>
                    {
                        h.to_ascii_lowercase()
                    }
                    Some(other) => {
                        return Err(format!(
                            "the sha256 pinning `{s}` is {other}, not 64 hexadecimal digits"
                        ));
                    }
                    None => {
                        return Err(format!(
                            "`{s}` is a URL: pin it by the sha256 of its bytes, `image(row.url, row.sha256)`, or download the file into the package and name its path"
                        ));
                    }
                };
                let bytes = self.data.fetch(s, &sha256)?;
                url = Some(s.clone());
                (bytes, None, false)
            }
            Value::String(s) if s.starts_with("data:") => {
                let (_, b64) = s
                    .split_once(";base64,")
                    .ok_or("a `data:` URI must hold base64 (`data:image/png;base64,...`)")?;
                (decode(b64)?, None, true)
            }
            Value::Object(o) if o.get("bytes").is_some_and(|b| !b.is_null()) => {
                let b64 = o.get("bytes").and_then(Value::as_str).unwrap_or_default();
                (decode(b64)?, None, true)
            }
            Value::Object(o) if o.get("path").and_then(Value::as_str).is_some() => {
                let rel = o.get("path").and_then(Value::as_str).unwrap_or_default();
                let (bytes, display) = self.read_attachment(rel)?;
                (bytes, Some(display), false)
            }
            Value::String(rel) if !rel.is_empty() => {
                let (bytes, display) = self.read_attachment(rel)?;
                (bytes, Some(display), false)
            }
            Value::Null => return Err("the attachment's value is empty".into()),
            other => {
                return Err(format!(
                    "an attachment is a path, a `data:` URI or a record with `bytes`, not {other}"
                ));
            }
        };
        if bytes.len() > MAX_ATTACHMENT_BYTES {
            return Err(format!(
                "the attachment is {} bytes, over the {MAX_ATTACHMENT_BYTES} an item may carry",
                bytes.len()
            ));
        }
        let Some((kind, media_type)) = media_type(&bytes) else {
            return Err(
                "the attachment is neither PNG, JPEG, GIF nor WebP, nor WAV or MP3 audio".into(),
            );
        };
        if let Some(w) = wanted
            && w != kind
        {
            return Err(format!(
                "`{}(...)` names {media_type} data",
                match w {
                    MediaKind::Image => "image",
                    MediaKind::Audio => "audio",
                }
            ));
        }
        let sha256 = hex::encode(Sha256::digest(&bytes));
        if pin.is_some() && url.is_none() {
            return Err("a sha256 pins an attachment's URL; a file of the package or inline data is pinned by the suite itself: give `image(row.x)` one argument".into());
        }
        if let Some(p) = &path {
            self.out.files.insert(p.clone(), sha256.clone());
        }
        Ok(Attachment {
            kind,
            media_type: media_type.to_string(),
            bytes: bytes.len() as u64,
            path,
            url,
            data: inline.then(|| base64::engine::general_purpose::STANDARD.encode(&bytes)),
            sha256,
        })
    }

    /// A package file's bytes and its package-relative name.
    fn read_attachment(&mut self, rel: &str) -> Result<(Vec<u8>, String), String> {
        let (path, display) = self.resolve(rel)?;
        let bytes = self
            .loader
            .read_bytes(&path)
            .map_err(|e| format!("cannot read the attachment {display}: {e}"))?;
        Ok((bytes, display))
    }
}

fn decode(b64: &str) -> Result<Vec<u8>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .map_err(|e| format!("the attachment's base64 does not decode: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn media_types_are_told_by_their_bytes() {
        assert_eq!(
            media_type(b"\x89PNG\r\n\x1a\n...."),
            Some((MediaKind::Image, "image/png"))
        );
        assert_eq!(
            media_type(b"\xff\xd8\xff\xe0"),
            Some((MediaKind::Image, "image/jpeg"))
        );
        assert_eq!(
            media_type(b"GIF89a..."),
            Some((MediaKind::Image, "image/gif"))
        );
        assert_eq!(
            media_type(b"RIFF\0\0\0\0WEBPVP8 "),
            Some((MediaKind::Image, "image/webp"))
        );
        assert_eq!(
            media_type(b"RIFF\0\0\0\0WAVEfmt "),
            Some((MediaKind::Audio, "audio/wav"))
        );
        assert_eq!(
            media_type(b"ID3\x04\0"),
            Some((MediaKind::Audio, "audio/mpeg"))
        );
        assert_eq!(
            media_type(b"\xff\xfb\x90"),
            Some((MediaKind::Audio, "audio/mpeg"))
        );
        assert_eq!(media_type(b"hello"), None);
        assert_eq!(media_type(b""), None);
    }
}
