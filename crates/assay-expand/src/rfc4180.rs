//! RFC 4180 quoting, checked over the raw bytes of a CSV file before any row is read.
//!
//! The `csv` crate is lenient by design: a quote that never closes swallows the rest of the
//! file into one field, a quote inside an unquoted field is kept as text, and text after a
//! closing quote is glued onto the field. None of these is reported, and the first one turns
//! the rows after it into one prompt. Its reader does not expose the state it ends in, and a
//! heuristic over the fields it returns (a newline inside a field, a short last record) cannot
//! tell a corrupt file from a legitimate multi-line field. So the bytes are checked here
//! instead, with the same state machine `csv_core` runs (comma delimiter, `"` quotes doubled
//! inside quoted fields, `\n`, `\r\n` or `\r` ending a record, blank lines skipped), but
//! strict: every place where `csv_core` would guess is a [`QuoteFault`]. The check is fed the
//! bytes while the file is hashed, so it costs no extra read, and a file that fails it is not
//! read at all.

/// Rows are numbered as the dataset reader numbers them: the header is row 0, the first
/// record under it row 1. Lines are 1-based and count `\n`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QuoteFault {
    pub kind: QuoteFaultKind,
    pub row: u64,
    /// Where the fault is: the line of the stray character, or the line the unclosed quote
    /// opened on.
    pub line: u64,
    /// The quote character of the file (`"` unless the dataset sets `quote`).
    pub quote: char,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum QuoteFaultKind {
    /// A quoted field still open at the end of the file; the file's last line.
    Unterminated { last_line: u64 },
    /// A `"` inside a field that does not start with one.
    QuoteInUnquotedField,
    /// Text between a field's closing quote and the next comma or line end.
    TextAfterClosingQuote,
}

impl std::fmt::Display for QuoteFault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.row == 0 {
            format!("the header row (line {})", self.line)
        } else {
            format!("row {} (line {})", self.row, self.line)
        };
        let q = self.quote;
        match self.kind {
            QuoteFaultKind::Unterminated { last_line } if last_line > self.line => write!(
                f,
                "{at} opens a quoted field that is never closed: lines {}-{last_line} would be read as one field",
                self.line
            ),
            QuoteFaultKind::Unterminated { .. } => {
                write!(f, "{at} opens a quoted field that is never closed")
            }
            QuoteFaultKind::QuoteInUnquotedField => {
                write!(f, "{at} has a `{q}` inside a field that is not quoted")
            }
            QuoteFaultKind::TextAfterClosingQuote => {
                write!(f, "{at} has text after the closing `{q}` of a quoted field")
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// Between records (blank lines are skipped here, as the csv reader skips them).
    StartRecord,
    StartField,
    Unquoted,
    Quoted,
    /// A `"` inside a quoted field: the closing quote, or the first of a doubled one.
    QuoteInQuoted,
    /// A field already reported; the rest of it is skipped up to the next comma or line end.
    Faulty,
    /// A comment line (it starts with the dataset's `comment` byte), skipped to its end.
    Comment,
    /// One of the `skip_rows` lines before the header, skipped to its end.
    Skipped,
}

/// The CSV options a dataset declares: `delimiter`, `quote`, `comment` and `skip_rows`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Dialect {
    pub delimiter: u8,
    pub quote: u8,
    pub comment: Option<u8>,
    /// Lines before the header, skipped whatever they hold.
    pub skip_lines: u64,
}

impl Default for Dialect {
    fn default() -> Self {
        Dialect {
            delimiter: b',',
            quote: b'"',
            comment: None,
            skip_lines: 0,
        }
    }
}

/// The quoting check, fed a file's bytes in any chunks.
pub(crate) struct Rfc4180 {
    state: State,
    /// The row being read; `u64::MAX` before the header (so that the header is row 0).
    row: u64,
    line: u64,
    /// Where the open quoted field started.
    opened: (u64, u64),
    /// The first bytes, while a UTF-8 byte-order mark may still be arriving.
    at_start: usize,
    after_cr: bool,
    after_lf: bool,
    faults: Vec<QuoteFault>,
    /// Faults found, including those not kept.
    count: usize,
    keep: usize,
    dialect: Dialect,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

impl Rfc4180 {
    /// A check that keeps the first `keep` faults and counts the rest.
    #[cfg(test)]
    pub(crate) fn new(keep: usize) -> Self {
        Self::with_dialect(keep, Dialect::default())
    }

    /// The check for a file written with other delimiters, quotes or comment lines.
    pub(crate) fn with_dialect(keep: usize, dialect: Dialect) -> Self {
        Rfc4180 {
            state: if dialect.skip_lines > 0 {
                State::Skipped
            } else {
                State::StartRecord
            },
            row: u64::MAX,
            line: 1,
            opened: (0, 0),
            at_start: 0,
            after_cr: false,
            after_lf: false,
            faults: Vec::new(),
            count: 0,
            keep,
            dialect,
        }
    }

    fn fault(&mut self, kind: QuoteFaultKind, row: u64, line: u64) {
        self.count += 1;
        if self.faults.len() < self.keep {
            let quote = char::from(self.dialect.quote);
            self.faults.push(QuoteFault {
                kind,
                row,
                line,
                quote,
            });
        }
    }

    pub(crate) fn feed(&mut self, bytes: &[u8]) {
        for &b in bytes {
            // A byte-order mark is not part of the first field.
            if self.at_start < BOM.len() {
                if b == BOM[self.at_start] {
                    self.at_start += 1;
                    continue;
                }
                if self.at_start > 0 && self.state != State::Skipped {
                    // Not a mark after all: its first bytes began an unquoted field.
                    self.row = 0;
                    self.state = State::Unquoted;
                }
                self.at_start = BOM.len();
            }
            let cr_lf = self.after_cr && b == b'\n';
            self.after_cr = b == b'\r';
            self.after_lf = b == b'\n';
            if b == b'\n' {
                self.line += 1;
            }
            // `\r\n` ends a record once: its `\n` is part of the terminator the `\r` began.
            if cr_lf && self.state == State::StartRecord {
                continue;
            }
            let terminator = b == b'\n' || b == b'\r';
            let (delimiter, quote) = (self.dialect.delimiter, self.dialect.quote);
            self.state = match (self.state, b) {
                (State::Skipped, b'\n') if self.line > self.dialect.skip_lines => {
                    State::StartRecord
                }
                (State::Skipped, _) => State::Skipped,
                (State::Comment, b'\n' | b'\r') => State::StartRecord,
                (State::Comment, _) => State::Comment,
                (State::StartRecord, _) if terminator => State::StartRecord,
                (State::StartRecord, _) if Some(b) == self.dialect.comment => State::Comment,
                (State::StartRecord, _) => {
                    self.row = self.row.wrapping_add(1);
                    self.start_field(b)
                }
                (State::StartField, _) => self.start_field(b),
                (State::Unquoted | State::Faulty | State::QuoteInQuoted, _) if b == delimiter => {
                    State::StartField
                }
                (State::Unquoted | State::Faulty | State::QuoteInQuoted, _) if terminator => {
                    State::StartRecord
                }
                (State::Unquoted, _) if b == quote => {
                    self.fault(QuoteFaultKind::QuoteInUnquotedField, self.row, self.line);
                    State::Faulty
                }
                (State::Unquoted, _) => State::Unquoted,
                (State::Faulty, _) => State::Faulty,
                (State::Quoted, _) if b == quote => State::QuoteInQuoted,
                (State::Quoted, _) => State::Quoted,
                (State::QuoteInQuoted, _) if b == quote => State::Quoted,
                (State::QuoteInQuoted, _) => {
                    self.fault(QuoteFaultKind::TextAfterClosingQuote, self.row, self.line);
                    State::Faulty
                }
            };
        }
    }

    /// The first byte of a field.
    fn start_field(&mut self, b: u8) -> State {
        if b == self.dialect.quote {
            self.opened = (self.row, self.line);
            State::Quoted
        } else if b == self.dialect.delimiter {
            State::StartField
        } else if b == b'\n' || b == b'\r' {
            State::StartRecord
        } else {
            State::Unquoted
        }
    }

    /// The faults found (the first `keep`), and how many there were in all.
    pub(crate) fn finish(mut self) -> (Vec<QuoteFault>, usize) {
        if self.state == State::Quoted {
            let (row, line) = self.opened;
            // The file's last line: the one its last byte is on, not the empty one after it.
            let last_line = self.line - u64::from(self.after_lf);
            self.fault(QuoteFaultKind::Unterminated { last_line }, row, line);
        }
        (self.faults, self.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn faults(text: &str) -> Vec<String> {
        let mut check = Rfc4180::new(10);
        check.feed(text.as_bytes());
        check.finish().0.iter().map(ToString::to_string).collect()
    }

    /// The same bytes fed one at a time: chunk boundaries change nothing.
    fn faults_bytewise(text: &str) -> Vec<String> {
        let mut check = Rfc4180::new(10);
        for b in text.as_bytes() {
            check.feed(std::slice::from_ref(b));
        }
        check.finish().0.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn well_formed_quoting_passes() {
        for text in [
            "id,prompt\na,plain\n",
            "id,prompt\na,\"with, comma\"\nb,\"with \"\"quotes\"\"\"\n",
            "id,prompt\na,\"two\nlines\"\nb,x",
            "id,prompt\r\na,\"crlf\r\ninside\"\r\nb,x\r\n",
            "\u{feff}\"id\",\"prompt\"\na,b\n",
            "id,prompt\n\n\na,\"\"\n",
            "",
        ] {
            assert_eq!(faults(text), Vec::<String>::new(), "{text:?}");
            assert_eq!(faults_bytewise(text), Vec::<String>::new(), "{text:?}");
        }
    }

    #[test]
    fn an_unterminated_quote_names_where_it_opened() {
        let text = "id,prompt\na,one\nb,\"two\nc,three\nd,four\n";
        let want = [
            "row 2 (line 3) opens a quoted field that is never closed: lines 3-5 would be read as one field",
        ];
        assert_eq!(faults(text), want);
        assert_eq!(faults_bytewise(text), want);
    }

    #[test]
    fn stray_quotes_are_reported_once_per_field() {
        let text = "id,prompt\r\na,on\"e\"\"\r\n\r\nb,\"two\"x\"y\r\n\"c\",3\n";
        assert_eq!(
            faults(text),
            [
                "row 1 (line 2) has a `\"` inside a field that is not quoted",
                "row 2 (line 4) has text after the closing `\"` of a quoted field",
            ]
        );
        assert_eq!(faults(text), faults_bytewise(text));
    }

    #[test]
    fn the_header_is_row_zero() {
        assert_eq!(
            faults("id,\"prompt\n"),
            ["the header row (line 1) opens a quoted field that is never closed"]
        );
    }

    #[test]
    fn the_dialect_is_honoured() {
        let dialect = Dialect {
            delimiter: b';',
            quote: b'\'',
            comment: Some(b'#'),
            skip_lines: 2,
        };
        let check = |text: &str| {
            let mut check = Rfc4180::with_dialect(10, dialect);
            check.feed(text.as_bytes());
            check
                .finish()
                .0
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
        };
        // Skipped lines and comments may hold anything; `"` is plain text under `'` quotes.
        let good = "a \"stray\nb 'x\nid;prompt\n# it's a comment\nq1;'semi; colon'\nq2;5\" blade\n";
        assert_eq!(check(good), Vec::<String>::new());
        assert_eq!(
            check("skip\nskip\nid;prompt\n#c\nq1;'open\n"),
            ["row 1 (line 5) opens a quoted field that is never closed"]
        );
    }

    #[test]
    fn faults_past_the_kept_ones_are_counted() {
        let mut check = Rfc4180::new(2);
        check.feed("a\nx\"\ny\"\nz\"\n".as_bytes());
        let (kept, count) = check.finish();
        assert_eq!((kept.len(), count), (2, 3));
    }
}
