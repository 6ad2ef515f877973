//! An item's attachments read for sending: from the package (`path`, relative to the
//! attachments' root) or from the item itself (`data`), checked against the hash expansion
//! recorded, so a file changed since the suite was compiled is an error, never a silently
//! different prompt.

use crate::provider::Media;
use assay_ir::{Attachment, Item};
use base64::Engine as _;
use sha2::{Digest, Sha256};
use std::path::Path;

/// The item's attachments as media, or why they cannot be sent.
pub fn load(item: &Item, root: &Path, cache: Option<&Path>) -> Result<Vec<Media>, String> {
    load_attachments(&item.attachments, root, cache)
}

/// Attachments (an item's, or a result's copy of them) as media, or why they cannot be sent:
/// files under `root`, inline data, and files pinned by URL from the data `cache`.
pub fn load_attachments(
    attachments: &[Attachment],
    root: &Path,
    cache: Option<&Path>,
) -> Result<Vec<Media>, String> {
    let b64 = base64::engine::general_purpose::STANDARD;
    attachments
        .iter()
        .map(|a| {
            let bytes = match (&a.data, &a.path) {
                (Some(data), _) => b64
                    .decode(data)
                    .map_err(|e| format!("an attachment's base64 does not decode: {e}"))?,
                (None, Some(path)) => {
                    let full = root.join(path);
                    std::fs::read(&full).map_err(|e| {
                        format!(
                            "cannot read the attachment {path} (under {}): {e}",
                            root.display()
                        )
                    })?
                }
                (None, None) => match (&a.url, cache) {
                    (Some(url), Some(cache)) => std::fs::read(cache.join(&a.sha256)).map_err(|e| {
                        format!(
                            "the attachment {url} is not in the data cache at {} ({e}): compile the suite on this machine (`assay compile` downloads it), or set ASSAY_DATA_DIR to the cache that holds it",
                            cache.display()
                        )
                    })?,
                    (Some(url), None) => {
                        return Err(format!("the attachment {url} needs the data cache, and none was given"));
                    }
                    (None, _) => return Err("an attachment names neither a file nor data".into()),
                },
            };
            let sha256 = hex::encode(Sha256::digest(&bytes));
            if sha256 != a.sha256 {
                return Err(format!(
                    "the attachment {} has sha256 {sha256}, but the suite was built with {}: it changed since; compile the suite again",
                    a.path.as_deref().or(a.url.as_deref()).unwrap_or("(inline)"),
                    a.sha256
                ));
            }
            Ok(Media {
                kind: a.kind,
                media_type: a.media_type.clone(),
                sha256,
                bytes: bytes.len() as u64,
                base64: b64.encode(&bytes).into(),
            })
        })
        .collect()
}
