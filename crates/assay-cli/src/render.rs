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

fn labeled(span: Span, message: &str, primary: bool) -> LabeledSpan {
    let text = (!message.is_empty()).then(|| message.to_string());
    let range = span.start as usize..span.end as usize;
    if primary {
        LabeledSpan::new_primary_with_span(text, range)
    } else {
        LabeledSpan::new_with_span(text, range)
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
        NamedSource::new(
            file.name.clone(),
            Window {
                text,
                start,
                end,
                first_line,
            },
        )
    }
}

/// Lines of context kept around the labels, beyond the one line the handler shows.
const WINDOW_MARGIN: usize = 2;

/// A window of a file's text around a diagnostic's labels. miette finds a span's line by
/// scanning its source from the start; handing it a window keeps the cost of rendering one
/// diagnostic independent of the file's size. Lines and offsets are reported as in the whole
/// file.
struct Window {
    text: Arc<str>,
    start: usize,
    end: usize,
    /// 0-based line number of `start`.
    first_line: usize,
}

impl miette::SourceCode for Window {
    fn read_span<'a>(
        &'a self,
        span: &miette::SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'a> + 'a>, miette::MietteError> {
        let window = &self.text[self.start..self.end];
        let offset = span
            .offset()
            .checked_sub(self.start)
            .ok_or(miette::MietteError::OutOfBounds)?;
        let local = miette::SourceSpan::new(offset.into(), span.len());
        let contents = window.read_span(&local, context_lines_before, context_lines_after)?;
        let data_span = contents.span();
        Ok(Box::new(miette::MietteSpanContents::new(
            contents.data(),
            miette::SourceSpan::new((data_span.offset() + self.start).into(), data_span.len()),
            contents.line() + self.first_line,
            contents.column(),
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
    let mut labels = vec![labeled(d.primary.span, &d.primary.message, true)];
    let mut related = Vec::new();
    for label in &d.secondary {
        if label.span.file == file {
            labels.push(labeled(label.span, &label.message, false));
        } else {
            related.push(Report {
                code: String::new(),
                message: label.message.clone(),
                severity: miette::Severity::Advice,
                help: None,
                source: texts.source(sources, &[label.span]),
                labels: vec![labeled(label.span, &label.message, true)],
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
        source: texts.source(sources, &same_file),
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
