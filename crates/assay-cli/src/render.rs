//! Diagnostics out: rendered with miette for people, or as JSON lines for machines. Both read
//! the same [`assay_syntax::Diagnostic`]; this is the only place miette is used.

use assay_syntax::{Diagnostic, Severity, SourceMap, Span};
use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource};
use serde::Serialize;
use std::fmt;
use std::sync::Arc;

/// A diagnostic bound to its source, in the shape miette renders.
struct Report {
    code: String,
    message: String,
    severity: miette::Severity,
    help: Option<String>,
    source: NamedSource<Window>,
    labels: Vec<LabeledSpan>,
    /// Secondary labels in other files, rendered as related notes.
    related: Vec<Report>,
}

impl fmt::Debug for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Report {}

impl miette::Diagnostic for Report {
    fn code<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        (!self.code.is_empty()).then(|| Box::new(&self.code) as Box<dyn fmt::Display>)
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(self.severity)
    }

    fn help<'a>(&'a self) -> Option<Box<dyn fmt::Display + 'a>> {
        self.help
            .as_ref()
            .map(|h| Box::new(h) as Box<dyn fmt::Display>)
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        Some(&self.source)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        Some(Box::new(self.labels.iter().cloned()))
    }

    fn related<'a>(&'a self) -> Option<Box<dyn Iterator<Item = &'a dyn miette::Diagnostic> + 'a>> {
        if self.related.is_empty() {
            return None;
        }
        Some(Box::new(
            self.related.iter().map(|r| r as &dyn miette::Diagnostic),
        ))
    }
}

fn labeled(window: &Window, span: Span, message: &str, primary: bool) -> LabeledSpan {
    let text = (!message.is_empty()).then(|| message.to_string());
    let start = window.to_shown(span.start as usize, false);
    let end = window.to_shown(span.end as usize, true).max(start);
    if primary {
        LabeledSpan::new_primary_with_span(text, start..end)
    } else {
        LabeledSpan::new_with_span(text, start..end)
    }
}

/// Each file's text, shared by all the diagnostics that show it.
struct Texts(Vec<Arc<str>>);

impl Texts {
    fn new(sources: &SourceMap) -> Self {
        Texts(
            sources
                .files()
                .map(|f| Arc::from(f.text.as_str()))
                .collect(),
        )
    }

    /// The part of a file that `spans` (all in that file) are shown in.
    fn source(&self, sources: &SourceMap, spans: &[Span]) -> NamedSource<Window> {
        let file = sources.get(spans[0].file);
        let text = Arc::clone(&self.0[spans[0].file.0 as usize]);
        let lowest = spans.iter().map(|s| s.start as usize).min().unwrap_or(0);
        let highest = spans.iter().map(|s| s.end as usize).max().unwrap_or(0);
        let first_line = file
            .line_index
            .line_col(&text, lowest)
            .line
            .saturating_sub(1 + WINDOW_MARGIN);
        let last_line = file.line_index.line_col(&text, highest).line + WINDOW_MARGIN;
        let start = file.line_index.line_start(first_line + 1).unwrap_or(0);
        let end = file
            .line_index
            .line_start(last_line + 1)
            .unwrap_or(text.len());
        // Line `n` (1-based) of the window, as a byte range of the file without its line end.
        let lines = (first_line + 1..=last_line).map_while(|n| {
            let from = file.line_index.line_start(n).filter(|&s| s < end)?;
            let to = file
                .line_index
                .line_start(n + 1)
                .unwrap_or(text.len())
                .min(end);
            let content = text[from..to].trim_end_matches(['\n', '\r']).len();
            Some((from, from + content, to))
        });
        let long = lines.clone().any(|(from, to, _)| to - from > LONG_LINE);
        let window = if long {
            Window::clipped(&text, lines, spans, first_line)
        } else {
            Window {
                pieces: vec![Piece {
                    shown: start,
                    file: start,
                    len: end - start,
                }],
                shown: Arc::clone(&text),
                range: start..end,
                first_line,
                file_text: text,
                clipped: false,
            }
        };
        NamedSource::new(file.name.clone(), window)
    }
}

/// Lines of context kept around the labels, beyond the one line the handler shows.
const WINDOW_MARGIN: usize = 2;

/// A line longer than this (in bytes) is shown in pieces: miette pads a label to its column
/// with a formatting width, which panics past column 65,535, and a line of thousands of
/// characters says nothing on a terminal anyway.
const LONG_LINE: usize = 400;

/// Bytes of a long line kept on each side of a label's start and end.
const CLIP_CONTEXT: usize = 60;

/// A window of a file's text around a diagnostic's labels. miette finds a span's line by
/// scanning its source from the start; handing it a window keeps the cost of rendering one
/// diagnostic independent of the file's size. Lines and offsets are reported as in the whole
/// file. Long lines are clipped to the stretches around the labels, joined by `…`; then the
/// text shown is a copy, and label offsets are translated into it ([`Window::to_shown`]).
struct Window {
    /// The text miette reads: the file itself, or the clipped copy.
    shown: Arc<str>,
    /// The window's part of `shown`.
    range: std::ops::Range<usize>,
    /// Where the stretches of `shown` come from in the file, in order.
    pieces: Vec<Piece>,
    /// 0-based line number of the window's first line.
    first_line: usize,
    file_text: Arc<str>,
    clipped: bool,
}

/// `len` bytes at `shown` in the window's text are the bytes at `file` in the file.
#[derive(Clone, Copy, Debug)]
struct Piece {
    shown: usize,
    file: usize,
    len: usize,
}

impl Window {
    /// A copy of the window's lines, each line longer than [`LONG_LINE`] cut down to the
    /// stretches around the label ends on it (or its start, if none).
    fn clipped(
        text: &Arc<str>,
        lines: impl Iterator<Item = (usize, usize, usize)>,
        spans: &[Span],
        first_line: usize,
    ) -> Window {
        let mut shown = String::new();
        let mut pieces = Vec::new();
        let mut keep = |shown: &mut String, from: usize, to: usize| {
            pieces.push(Piece {
                shown: shown.len(),
                file: from,
                len: to - from,
            });
            shown.push_str(&text[from..to]);
        };
        for (from, to, next) in lines {
            if to - from <= LONG_LINE {
                keep(&mut shown, from, next);
                continue;
            }
            let floor = |mut i: usize| {
                while !text.is_char_boundary(i) {
                    i -= 1;
                }
                i
            };
            let ceil = |mut i: usize| {
                while !text.is_char_boundary(i) {
                    i += 1;
                }
                i
            };
            let mut stretches: Vec<(usize, usize)> = spans
                .iter()
                .flat_map(|s| [s.start as usize, s.end as usize])
                .filter(|p| (from..=to).contains(p))
                .map(|p| {
                    (
                        floor(p.saturating_sub(CLIP_CONTEXT).max(from)),
                        ceil((p + CLIP_CONTEXT).min(to)),
                    )
                })
                .collect();
            if stretches.is_empty() {
                stretches.push((from, ceil(from + 2 * CLIP_CONTEXT)));
            }
            stretches.sort_unstable();
            let mut merged: Vec<(usize, usize)> = Vec::new();
            for (a, b) in stretches {
                match merged.last_mut() {
                    Some(last) if a <= last.1 => last.1 = last.1.max(b),
                    _ => merged.push((a, b)),
                }
            }
            let mut at = from;
            for (a, b) in merged {
                if a > at {
                    shown.push('…');
                }
                keep(&mut shown, a, b);
                at = b;
            }
            if at < to {
                shown.push('…');
            }
            keep(&mut shown, to, next);
        }
        let len = shown.len();
        Window {
            shown: Arc::from(shown),
            range: 0..len,
            pieces,
            first_line,
            file_text: Arc::clone(text),
            clipped: true,
        }
    }

    /// A file offset as an offset in the text shown. An offset in a clipped-out stretch goes
    /// to the next piece (the end of the previous one for a span's `end`).
    fn to_shown(&self, offset: usize, end: bool) -> usize {
        let mut before = self.pieces.first().map_or(0, |p| p.shown);
        for p in &self.pieces {
            if offset < p.file {
                return if end { before } else { p.shown };
            }
            if offset <= p.file + p.len {
                return p.shown + (offset - p.file);
            }
            before = p.shown + p.len;
        }
        before
    }

    /// An offset in the text shown as a file offset.
    fn to_file(&self, shown: usize) -> usize {
        let piece = self
            .pieces
            .iter()
            .rev()
            .find(|p| p.shown <= shown)
            .or(self.pieces.first());
        piece.map_or(shown, |p| p.file + (shown - p.shown).min(p.len))
    }
}

impl miette::SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let window = &self.shown[self.range.clone()];
        let offset = span
            .offset()
            .checked_sub(self.range.start)
            .ok_or(miette::MietteError::OutOfBounds)?;
        let local = miette::SourceSpan::new(offset.into(), span.len());
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        let data_span = contents.span();
        // The column of the header (`file:line:column`), in bytes as miette counts it, is
        // the file's: clipping moves a label, not where it is.
        let column = if self.clipped && context_lines_before == 0 {
            let at = self.to_file(span.offset());
            let line_start = self.file_text[..at].rfind('\n').map_or(0, |i| i + 1);
            at - line_start
        } else {
            contents.column()
        };
        Ok(Box::new(miette::MietteSpanContents::new(
            contents.data(),
            miette::SourceSpan::new(
                (data_span.offset() + self.range.start).into(),
                data_span.len(),
            ),
            contents.line() + self.first_line,
            column,
            contents.line_count() + self.first_line,
        )))
    }
}

fn report(sources: &SourceMap, texts: &Texts, d: &Diagnostic) -> Report {
    let file = d.primary.span.file;
    let same_file: Vec<Span> = std::iter::once(d.primary.span)
        .chain(
            d.secondary
                .iter()
                .map(|l| l.span)
                .filter(|s| s.file == file),
        )
        .collect();
    let source = texts.source(sources, &same_file);
    let mut labels = vec![labeled(
        source.inner(),
        d.primary.span,
        &d.primary.message,
        true,
    )];
    let mut related = Vec::new();
    for label in &d.secondary {
        if label.span.file == file {
            labels.push(labeled(source.inner(), label.span, &label.message, false));
        } else {
            let other = texts.source(sources, &[label.span]);
            related.push(Report {
                code: String::new(),
                message: label.message.clone(),
                severity: miette::Severity::Advice,
                help: None,
                labels: vec![labeled(other.inner(), label.span, &label.message, true)],
                source: other,
                related: Vec::new(),
            });
        }
    }
    Report {
        code: d.code.as_str().to_string(),
        message: d.message.clone(),
        severity: match d.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        },
        help: d.help.clone(),
        source,
        labels,
        related,
    }
}

/// Renders diagnostics for a terminal; `color` adds ANSI colours, `width` wraps text.
pub fn human(sources: &SourceMap, diagnostics: &[Diagnostic], color: bool, width: usize) -> String {
    let theme = if color {
        GraphicalTheme::unicode()
    } else {
        GraphicalTheme::unicode_nocolor()
    };
    let handler = GraphicalReportHandler::new_themed(theme)
        .with_width(width)
        .with_context_lines(1);
    let texts = Texts::new(sources);
    let mut out = String::new();
    for d in diagnostics {
        let r = report(sources, &texts, d);
        if handler.render_report(&mut out, &r).is_err() {
            out.push_str(&format!("{}: {}\n", d.code, d.message));
        }
        out.push('\n');
    }
    out
}

#[derive(Serialize)]
struct JsonLabel<'a> {
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    message: &'a str,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    code: &'a str,
    severity: Severity,
    message: &'a str,
    file: &'a str,
    line: usize,
    column: usize,
    end_line: usize,
    end_column: usize,
    labels: Vec<JsonLabel<'a>>,
    help: Option<&'a str>,
}

fn json_label<'a>(sources: &'a SourceMap, span: Span, message: &'a str) -> JsonLabel<'a> {
    let (start, end) = sources.line_col(span);
    JsonLabel {
        file: &sources.get(span.file).name,
        line: start.line,
        column: start.column,
        end_line: end.line,
        end_column: end.column,
        message,
    }
}

/// One JSON object per diagnostic, one per line. Lines and columns are 1-based; columns count
/// characters.
pub fn json_lines(sources: &SourceMap, diagnostics: &[Diagnostic]) -> String {
    let mut out = String::new();
    for d in diagnostics {
        let primary = json_label(sources, d.primary.span, &d.primary.message);
        let labels = std::iter::once(json_label(sources, d.primary.span, &d.primary.message))
            .chain(
                d.secondary
                    .iter()
                    .map(|l| json_label(sources, l.span, &l.message)),
            )
            .collect();
        let line = JsonDiagnostic {
            code: d.code.as_str(),
            severity: d.severity(),
            message: &d.message,
            file: primary.file,
            line: primary.line,
            column: primary.column,
            end_line: primary.end_line,
            end_column: primary.end_column,
            labels,
            help: d.help.as_deref(),
        };
        out.push_str(&serde_json::to_string(&line).expect("diagnostics serialize"));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_syntax::Code;

    fn render(text: &str, spans: &[(usize, usize)]) -> String {
        let mut sources = SourceMap::new();
        let file = sources.add("long.assay", text);
        let span = |(a, b): (usize, usize)| Span::new(file, a, b);
        let mut d = Diagnostic::new(Code::SyntaxError, span(spans[0]), "here").label("this");
        for s in &spans[1..] {
            d = d.secondary(span(*s), "and this");
        }
        human(&sources, &[d], false, 100)
    }

    /// Issue 12: miette pads a label to its column with a formatting width, and panicked past
    /// column 65,535. Long lines are now clipped around the labels; the header keeps the
    /// file's own line and column.
    #[test]
    fn a_label_past_column_65535_renders() {
        let line = "metric m = ".to_string() + &" ".repeat(70_000) + "zz";
        let text = format!("// first\n{line}\n// last\n");
        let at = 9 + line.len() - 2;
        let out = render(&text, &[(at, at + 2)]);
        assert!(out.contains("[long.assay:2:70012]"), "{out}");
        assert!(out.contains("zz"), "{out}");
        assert!(out.contains("╰── this"), "{out}");
        assert!(out.lines().all(|l| l.chars().count() < 400), "{out}");
    }

    #[test]
    fn labels_far_apart_on_one_long_line_each_show() {
        let line = "a".repeat(100) + &"é".repeat(40_000) + "\t" + &"😀".repeat(20_000) + "end";
        let end = line.len();
        let out = render(&line, &[(end - 3, end), (0, 1), (50_000, 80_000)]);
        assert!(out.contains("end"), "{out}");
        assert!(out.contains("and this"), "{out}");
        assert!(out.contains('…'), "{out}");
        assert!(out.lines().all(|l| l.chars().count() < 1_000), "{out}");
    }

    #[test]
    fn a_span_across_long_lines_renders() {
        let long = "x".repeat(80_000);
        let text = format!("{long}\n{long}\n{long}\n");
        let out = render(&text, &[(70_000, 160_000 + 75_000)]);
        assert!(out.contains("[long.assay:1:70001]"), "{out}");
        assert!(out.lines().all(|l| l.chars().count() < 1_000), "{out}");
    }

    #[test]
    fn short_lines_are_shown_whole() {
        let text = "metric m = rate(g == a)\n";
        let out = render(text, &[(16, 17)]);
        assert!(out.contains(" 1 │ metric m = rate(g == a)\n"), "{out}");
        assert!(!out.contains('…'), "{out}");
    }
}
