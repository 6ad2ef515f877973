//! The set of loaded source files and the line index used to turn byte offsets into 1-based
//! lines and columns.

use crate::span::{FileId, Span};

/// One loaded source file.
#[derive(Clone, Debug)]
pub struct SourceFile {
    pub id: FileId,
    /// The name shown to users: a path relative to the package root, or `std::...`.
    pub name: String,
    pub text: String,
    pub line_index: LineIndex,
}

/// All source files of one check, indexed by [`FileId`].
#[derive(Clone, Debug, Default)]
pub struct SourceMap {
    files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn add(&mut self, name: impl Into<String>, text: impl Into<String>) -> FileId {
        let id = FileId(u32::try_from(self.files.len()).expect("fewer than 2^32 files"));
        let text = text.into();
        let line_index = LineIndex::new(&text);
        self.files.push(SourceFile {
            id,
            name: name.into(),
            text,
            line_index,
        });
        id
    }

    pub fn get(&self, id: FileId) -> &SourceFile {
        &self.files[id.0 as usize]
    }

    pub fn files(&self) -> impl Iterator<Item = &SourceFile> {
        self.files.iter()
    }

    /// 1-based (line, column) of the start and end of `span`; columns count characters.
    pub fn line_col(&self, span: Span) -> (LineCol, LineCol) {
        let file = self.get(span.file);
        (
            file.line_index.line_col(&file.text, span.start as usize),
            file.line_index.line_col(&file.text, span.end as usize),
        )
    }
}

/// A 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LineCol {
    pub line: usize,
    pub column: usize,
}

/// Byte offsets of line starts, for offset → line/column conversion by binary search.
#[derive(Clone, Debug, Default)]
pub struct LineIndex {
    line_starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(text: &str) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { line_starts }
    }

    pub fn line_col(&self, text: &str, offset: usize) -> LineCol {
        let offset = offset.min(text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let column = text
            .get(start..offset)
            .map_or(offset - start, |s| s.chars().count())
            + 1;
        LineCol {
            line: line + 1,
            column,
        }
    }

    /// Byte offset of the start of 1-based `line`, if it exists.
    pub fn line_start(&self, line: usize) -> Option<usize> {
        self.line_starts.get(line.checked_sub(1)?).copied()
    }
}
