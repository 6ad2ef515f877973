//! Between Assay's byte offsets and paths and LSP's UTF-16 positions and `file://` URIs.

use assay_syntax::Span;
use lsp_types as lsp;
use std::path::{Path, PathBuf};
use std::str::FromStr;

/// Line starts of one text, for converting offsets and positions.
pub struct LineMap<'t> {
    text: &'t str,
    starts: Vec<usize>,
}

impl<'t> LineMap<'t> {
    pub fn new(text: &'t str) -> Self {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineMap { text, starts }
    }

    /// The LSP position of a byte offset: line, and UTF-16 code units into the line.
    pub fn position(&self, offset: usize) -> lsp::Position {
        let offset = offset.min(self.text.len());
        let line = self.starts.partition_point(|&s| s <= offset) - 1;
        let start = self.starts[line];
        let column: usize = self
            .text
            .get(start..offset)
            .unwrap_or_default()
            .chars()
            .map(char::len_utf16)
            .sum();
        lsp::Position::new(line as u32, column as u32)
    }

    pub fn range(&self, span: Span) -> lsp::Range {
        lsp::Range {
            start: self.position(span.start as usize),
            end: self.position(span.end as usize),
        }
    }

    /// The byte offset of an LSP position; a column past the line's end is its end.
    pub fn offset(&self, position: lsp::Position) -> Option<usize> {
        let start = *self.starts.get(position.line as usize)?;
        let end = self
            .starts
            .get(position.line as usize + 1)
            .map_or(self.text.len(), |&e| e);
        let mut units = 0u32;
        for (i, c) in self.text[start..end].char_indices() {
            if units >= position.character || c == '\n' {
                return Some(start + i);
            }
            units += c.len_utf16() as u32;
        }
        Some(end)
    }
}

/// `file://` URI of an absolute path, percent-encoding what a URI path may not hold.
pub fn path_to_uri(path: &Path) -> Option<lsp::Uri> {
    let text = path.to_str()?;
    let mut encoded = String::with_capacity(text.len() + 8);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"/-._~".contains(&b) {
            encoded.push(b as char);
        } else {
            encoded.push_str(&format!("%{b:02X}"));
        }
    }
    lsp::Uri::from_str(&format!("file://{encoded}")).ok()
}

/// The path of a `file://` URI.
pub fn uri_to_path(uri: &lsp::Uri) -> Option<PathBuf> {
    let rest = uri.as_str().strip_prefix("file://")?;
    let bytes = rest.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(hex) = rest.get(i + 1..i + 3)
            && let Ok(b) = u8::from_str_radix(hex, 16)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    let path = PathBuf::from(String::from_utf8(out).ok()?);
    Some(assay_check::normalize(&path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_count_utf16_units() {
        let text = "a = \"é😀\"\nb = 1\n";
        let map = LineMap::new(text);
        let smile_end = text.find('😀').unwrap() + '😀'.len_utf8();
        assert_eq!(map.position(smile_end), lsp::Position::new(0, 8));
        assert_eq!(map.offset(lsp::Position::new(0, 8)), Some(smile_end));
        assert_eq!(
            map.position(text.find('b').unwrap()),
            lsp::Position::new(1, 0)
        );
        assert_eq!(map.offset(lsp::Position::new(1, 99)), Some(text.len() - 1));
    }

    #[test]
    fn uris_round_trip() {
        let path = Path::new("/tmp/a dir/spec #1.assay");
        let uri = path_to_uri(path).unwrap();
        assert_eq!(uri.as_str(), "file:///tmp/a%20dir/spec%20%231.assay");
        assert_eq!(uri_to_path(&uri).unwrap(), path);
    }
}
