//! Dataset import: the pinned hash verified first, then rows read from CSV, JSONL, JSON
//! (`json.rs`) or YAML, typed by the declared columns, mapped by the value maps, joined to a
//! side dataset by key (`join.rs`), kept or left out by the dataset's `where`, and turned into
//! items by the `item { ... }` block. Every problem names the file, the row and the column.
//!
//! Reading is strict where readers are usually lenient: CSV quoting is checked by RFC 4180 on
//! the hashing pass, before any row is read, with the dataset's own `delimiter`, `quote`,
//! `comment` and `skip_rows` (`rfc4180.rs`, E0208); a header naming two columns alike and a
//! JSON, JSONL or YAML record with a repeated key are refused (`strict_value.rs`, E0209).

mod join;
mod json;

use crate::rfc4180::{Dialect, QuoteFaultKind, Rfc4180};
use crate::strict_value::{self, ReadError};
use crate::value::{self, Env};
use crate::{Base, DatasetSource, Expander, UserTurns, relative};
use assay_ir::{DatasetInfo, Expect};
use assay_syntax::ast::{ColumnType, Dataset, Decl, Expr, ExprKind, Ident};
use assay_syntax::{Code, Diagnostic, Span, did_you_mean};
use join::{Join, joined, load_join};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read};

/// At most this many row problems are reported per dataset; the rest are counted.
const MAX_ROW_ERRORS: usize = 20;

const DUPLICATE_KEY_HELP: &str =
    "a record names each field once; the reader would keep one value and lose the other";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Format {
    Csv,
    Jsonl,
    Yaml,
    /// One JSON document: an array of records, or an object holding one at `records`.
    Json,
    /// Apache Parquet: a record per row, typed by the file's schema.
    Parquet,
}

/// One row: its 1-based number, the line it starts on, and its fields.
struct Row {
    number: u64,
    line: u64,
    fields: Map<String, Value>,
}

/// A value map, ready for lookups.
struct ValueMap {
    column: String,
    span: Span,
    taxonomy: Option<String>,
    rules: BTreeMap<String, String>,
    /// Codes and aliases of the taxonomy, accepted as themselves.
    codes: BTreeMap<String, String>,
}

/// A dataset opened, verified and ready to stream rows.
struct Opened<'d> {
    decl: &'d Dataset,
    display: String,
    format: Format,
    maps: Vec<ValueMap>,
    errors: usize,
    /// The problems past the first [`MAX_ROW_ERRORS`], by code: counted, not shown.
    hidden: BTreeMap<Code, usize>,
    /// Row ids seen so far, to keep item keys unique.
    ids: std::collections::HashSet<String>,
    repeated_ids: usize,
    /// The diagnostic reporting the first repeated id.
    repeated_report: Option<usize>,
    /// The side dataset joined to each row by key, if any.
    join: Option<Join<'d>>,
    /// Needed item fields (`prompt`, `turns`) that came out as nothing, by key: reported once.
    nulls: BTreeMap<&'static str, NullField>,
}

/// An item field that evaluated to nothing: where, on how many rows, first where and why.
struct NullField {
    span: Span,
    rows: u64,
    first: String,
    why: String,
}

pub(crate) fn expand_dataset(ex: &mut Expander<'_>, name: &str, d: &Dataset) {
    let axis_names = d.props.names("axes");
    let Some(axes) = ex.axes(&axis_names) else {
        return;
    };
    let Some(mut opened) = open(ex, name, d) else {
        return;
    };
    let item = d.item.as_ref();
    let mut rows = 0u64;
    ex.seen.clear();
    ex.track_duplicates = true;
    read_rows(ex, &mut opened, &mut |ex, opened, row| {
        rows += 1;
        let Some(fields) = typed(ex, opened, &row) else {
            return true;
        };
        let Ok(side) = joined(ex, opened, &row, &fields) else {
            return true;
        };
        let side = side.as_ref().map(|(n, m)| (n.as_str(), m));
        if !keep(ex, opened, &row, &fields, side) {
            return true;
        }
        if let Some(item) = item
            && let Some(base) = base(ex, name, opened, item, &row, &fields, side)
        {
            ex.emit(base, &axes);
        }
        !ex.out.stopped
    });
    ex.track_duplicates = false;
    ex.seen = Default::default();
    finish(ex, &opened);
    if let Some(info) = ex.out.datasets.get_mut(name) {
        info.rows = rows;
    }
}

/// The distinct values of one column, in first-seen order, for a template variable; with the
/// taxonomy the column is mapped to, if any.
pub(crate) fn column_values(
    ex: &mut Expander<'_>,
    dataset: &Ident,
    column: &str,
) -> Option<(Vec<Value>, Option<String>)> {
    let def = ex.checked.model.definitions.get(&dataset.name)?;
    let Decl::Dataset(d) = &def.decl else {
        return None;
    };
    let module = std::mem::replace(&mut ex.module, def.module);
    let mut opened = open(ex, &dataset.name, d);
    ex.module = module;
    let opened = opened.as_mut()?;
    let taxonomy = opened
        .maps
        .iter()
        .find(|m| m.column == column)
        .and_then(|m| m.taxonomy.clone());
    let mut values: Vec<Value> = Vec::new();
    let mut seen = std::collections::BTreeSet::new();
    read_rows(ex, opened, &mut |ex, opened, row| {
        if let Some(fields) = typed(ex, opened, &row)
            && let Ok(side) = joined(ex, opened, &row, &fields)
            && keep(
                ex,
                opened,
                &row,
                &fields,
                side.as_ref().map(|(n, m)| (n.as_str(), m)),
            )
            && let Some(v) = fields.get(column)
            && seen.insert(v.to_string())
        {
            values.push(v.clone());
        }
        true
    });
    finish(ex, opened);
    Some((values, taxonomy))
}

/// Resolves, verifies and describes a dataset's data. `None` after reporting.
fn open<'d>(ex: &mut Expander<'_>, name: &str, d: &'d Dataset) -> Option<Opened<'d>> {
    open_with(ex, name, d, true)
}

/// [`open`], following the dataset's `join` when `joining`.
fn open_with<'d>(
    ex: &mut Expander<'_>,
    name: &str,
    d: &'d Dataset,
    joining: bool,
) -> Option<Opened<'d>> {
    let path_prop = d.props.get("path");
    let path = match path_prop.and_then(|p| p.value.as_str()) {
        Some(rel) => match ex.resolve(rel) {
            Ok((path, _)) => Some(path),
            Err(why) => {
                let span = path_prop.map_or(d.name.span, |p| p.value.span);
                ex.error(
                    Diagnostic::new(
                        Code::DataUnavailable,
                        span,
                        format!("dataset `{name}` cannot be read: {why}"),
                    )
                    .label("this path")
                    .help("dataset paths are relative to the spec and stay inside the package"),
                );
                return None;
            }
        },
        None => None,
    };
    let url = d.props.str("url");
    let pinned = d.props.get("sha256");
    let source = DatasetSource {
        name,
        path,
        url,
        sha256: pinned.and_then(|p| p.value.as_str()),
    };
    let unavailable = |ex: &mut Expander<'_>, why: String| {
        let message = if why.starts_with(&format!("dataset `{name}`")) {
            why
        } else {
            format!("dataset `{name}` is not available: {why}")
        };
        ex.error(
            Diagnostic::new(Code::DataUnavailable, d.name.span, message)
                .label("this dataset")
                .help(format!(
                    "give a local copy with `--data {name}=PATH`; its hash is still checked"
                )),
        );
    };

    // The hash is verified over the whole file before any row is used.
    let (display, mut reader) = match ex.data.open(&source) {
        Ok(opened) => opened,
        Err(why) => {
            unavailable(ex, why);
            return None;
        }
    };
    let format = declared_format(d);
    // CSV quoting is checked on the same pass (see `rfc4180.rs`).
    let mut quoting =
        (format == Some(Format::Csv)).then(|| Rfc4180::with_dialect(MAX_ROW_ERRORS, dialect(d)));
    let mut hasher = Sha256::new();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        match reader.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => {
                hasher.update(&chunk[..n]);
                if let Some(q) = &mut quoting {
                    q.feed(&chunk[..n]);
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => {
                unavailable(ex, format!("cannot read {display}: {e}"));
                return None;
            }
        }
    }
    let actual = hex::encode(hasher.finalize());
    if let Some(p) = pinned
        && let Some(expected) = p.value.as_str()
        && !expected.eq_ignore_ascii_case(&actual)
    {
        ex.error(
            Diagnostic::new(
                Code::DataHashMismatch,
                p.value.span,
                format!("dataset `{name}`: {display} has sha256 {actual}, but the spec pins {expected}"),
            )
            .label(format!("pinned here; the data hashes to {actual}"))
            .help("if the data changed on purpose, update `sha256`; otherwise get the pinned version of the data"),
        );
        return None;
    }
    let display = match &source.path {
        Some(p) if display == p.display().to_string() => {
            let module = &ex.checked.modules[ex.module];
            module.root().map_or(display, |root| relative(root, p))
        }
        _ => display,
    };
    ex.out.datasets.insert(
        name.to_string(),
        DatasetInfo {
            sha256: actual,
            rows: 0,
            url: url.map(str::to_string),
        },
    );

    let Some(format) = format else {
        unavailable(ex, format!("cannot tell the format of {display}"));
        return None;
    };

    let maps = d
        .value_maps
        .iter()
        .map(|m| {
            let taxonomy = m.taxonomy.as_ref().map(|t| t.name.clone());
            let mut codes = BTreeMap::new();
            if let Some(t) = taxonomy.as_deref().and_then(|t| ex.taxonomy(t)) {
                for (c, _) in t.walk() {
                    codes.insert(c.code.name.clone(), c.code.name.clone());
                    if let Some(assay_syntax::ast::ExprKind::List(aliases)) =
                        c.props.value("aliases").map(|e| &e.kind)
                    {
                        for a in aliases.iter().filter_map(Expr::as_str) {
                            codes.insert(a.to_string(), c.code.name.clone());
                        }
                    }
                }
            }
            ValueMap {
                column: m.column.value.clone(),
                span: m.column.span,
                taxonomy,
                rules: m
                    .rules
                    .iter()
                    .map(|r| (r.from.value.clone(), value::text(&eval_name(&r.to))))
                    .collect(),
                codes,
            }
        })
        .collect();
    let mut opened = Opened {
        decl: d,
        display,
        format,
        maps,
        errors: 0,
        hidden: BTreeMap::new(),
        ids: Default::default(),
        repeated_ids: 0,
        repeated_report: None,
        join: None,
        nulls: BTreeMap::new(),
    };
    // A file that breaks CSV quoting is not read: past the first fault, rows would run into
    // each other.
    if let Some(q) = quoting {
        let (faults, count) = q.finish();
        if count > 0 {
            for fault in &faults {
                let msg = format!("{}: {fault}", opened.display);
                let help = match fault.kind {
                    QuoteFaultKind::Unterminated { .. } => {
                        "close the quoted field with `\"`; a `\"` inside it is written `\"\"`"
                    }
                    QuoteFaultKind::QuoteInUnquotedField => {
                        "quote the whole field and double the quotes inside it: `\"a 5\"\" blade\"`"
                    }
                    QuoteFaultKind::TextAfterClosingQuote => {
                        "a quoted field ends at its closing `\"`: put the rest inside the quotes, doubling any quote in it"
                    }
                };
                // The dataset's own quote character, if it sets one.
                let help = help.replace('"', &fault.quote.to_string());
                row_error(
                    ex,
                    &mut opened,
                    d.name.span,
                    Code::MalformedCsv,
                    msg,
                    Some(help),
                );
            }
            opened.errors += count - faults.len();
            if count > faults.len() {
                *opened.hidden.entry(Code::MalformedCsv).or_default() += count - faults.len();
            }
            finish(ex, &opened);
            return None;
        }
    }
    if joining && let Some(join) = d.props.value("join") {
        opened.join = Some(load_join(ex, join)?);
    }
    Some(opened)
}

/// The format a dataset is read in: its `format`, else its file's extension.
fn declared_format(d: &Dataset) -> Option<Format> {
    match d.props.name("format").map(|f| f.name.as_str()) {
        Some("csv") => Some(Format::Csv),
        Some("jsonl") => Some(Format::Jsonl),
        Some("yaml") => Some(Format::Yaml),
        Some("json") => Some(Format::Json),
        Some("parquet") => Some(Format::Parquet),
        _ => {
            let hint = d.props.str("path").or(d.props.str("url")).unwrap_or("");
            let ext = hint.rsplit('.').next().unwrap_or("").to_ascii_lowercase();
            match ext.as_str() {
                "csv" => Some(Format::Csv),
                "jsonl" | "ndjson" => Some(Format::Jsonl),
                "yaml" | "yml" => Some(Format::Yaml),
                "json" => Some(Format::Json),
                "parquet" => Some(Format::Parquet),
                _ => None,
            }
        }
    }
}

/// The CSV options a dataset declares (the checker made sure each is one byte).
fn dialect(d: &Dataset) -> Dialect {
    let byte = |key: &str| d.props.str(key).and_then(|s| s.bytes().next());
    let mut dialect = Dialect::default();
    if let Some(b) = byte("delimiter") {
        dialect.delimiter = b;
    }
    if let Some(b) = byte("quote") {
        dialect.quote = b;
    }
    dialect.comment = byte("comment");
    dialect.skip_lines = d
        .props
        .value("skip_rows")
        .and_then(Expr::as_number)
        .map_or(0, |n| n.max(0.0) as u64);
    dialect
}

/// Whether a typed row passes the dataset's `where` filter. A filter that cannot be evaluated
/// on a row is a problem of that row (reported), and the row is left out.
fn keep(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    row: &Row,
    fields: &Map<String, Value>,
    joined: Option<(&str, &Map<String, Value>)>,
) -> bool {
    let Some(cond) = opened.decl.props.value("where") else {
        return true;
    };
    match value::eval(cond, &RowEnv { fields, joined }) {
        Ok(v) => value::truthy(&v),
        Err(why) => {
            let msg = format!("{}: {}, `where`: {why}", opened.display, at(row));
            row_error(ex, opened, cond.span, Code::BadRow, msg, None);
            false
        }
    }
}

/// A mapping target: a bare name stands for itself.
fn eval_name(e: &Expr) -> Value {
    match e.as_name() {
        Some(n) => Value::String(n.name.clone()),
        None => value::eval(e, &crate::NoEnv).unwrap_or(Value::Null),
    }
}

/// Streams the rows of an opened dataset to `each`, which returns `false` to stop.
fn read_rows(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    each: &mut dyn FnMut(&mut Expander<'_>, &mut Opened<'_>, Row) -> bool,
) {
    let d = opened.decl;
    let source = DatasetSource {
        name: &d.name.name,
        path: match d.props.str("path").map(|rel| ex.resolve(rel)) {
            Some(Ok((p, _))) => Some(p),
            _ => None,
        },
        url: d.props.str("url"),
        sha256: d.props.str("sha256"),
    };
    let reader = match ex.data.open(&source) {
        Ok((_, r)) => r,
        Err(why) => {
            row_error(ex, opened, d.name.span, Code::DataUnavailable, why, None);
            return;
        }
    };
    match opened.format {
        Format::Csv => read_csv(ex, opened, reader, each),
        Format::Jsonl => {
            let mut number = 0;
            for (i, line) in BufReader::new(reader).lines().enumerate() {
                let line_no = i as u64 + 1;
                let text = match line {
                    Ok(t) => t,
                    Err(e) => {
                        let msg = format!("{}: line {line_no} cannot be read: {e}", opened.display);
                        row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
                        return;
                    }
                };
                if text.trim().is_empty() {
                    continue;
                }
                number += 1;
                match strict_value::from_json(&text) {
                    Ok(Value::Object(fields)) => {
                        if !each(
                            ex,
                            opened,
                            Row {
                                number,
                                line: line_no,
                                fields,
                            },
                        ) {
                            return;
                        }
                    }
                    Ok(other) => {
                        let msg = format!(
                            "{}: row {number} (line {line_no}) is {}, not a JSON object",
                            opened.display,
                            value::kind(&other)
                        );
                        row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
                    }
                    Err(ReadError::DuplicateKey { key, .. }) => {
                        let msg = format!(
                            "{}: row {number} (line {line_no}) has the key `{key}` twice",
                            opened.display
                        );
                        row_error(
                            ex,
                            opened,
                            d.name.span,
                            Code::DuplicateColumn,
                            msg,
                            Some(DUPLICATE_KEY_HELP.into()),
                        );
                    }
                    Err(ReadError::Truncated(e)) => {
                        let msg = format!(
                            "{}: row {number} (line {line_no}) ends inside its JSON object: {e}",
                            opened.display
                        );
                        let help = "the line is cut short (an interrupted download or write?); each line of a JSONL file is one complete JSON object";
                        row_error(
                            ex,
                            opened,
                            d.name.span,
                            Code::BadRow,
                            msg,
                            Some(help.into()),
                        );
                    }
                    Err(ReadError::Syntax(e)) => {
                        let msg = format!(
                            "{}: row {number} (line {line_no}) is not valid JSON: {e}",
                            opened.display
                        );
                        let help = "each line of a JSONL file is one complete JSON object";
                        row_error(
                            ex,
                            opened,
                            d.name.span,
                            Code::BadRow,
                            msg,
                            Some(help.into()),
                        );
                    }
                }
            }
        }
        Format::Yaml => {
            let doc = match strict_value::from_yaml(reader) {
                Ok(v) => v,
                Err(ReadError::DuplicateKey { key, record }) => {
                    let msg = if record > 0 {
                        format!("{}: row {record} has the key `{key}` twice", opened.display)
                    } else {
                        format!("{} has the key `{key}` twice", opened.display)
                    };
                    let help = Some(DUPLICATE_KEY_HELP.into());
                    row_error(ex, opened, d.name.span, Code::DuplicateColumn, msg, help);
                    return;
                }
                Err(ReadError::Syntax(e) | ReadError::Truncated(e)) => {
                    let msg = format!("{} is not valid YAML: {e}", opened.display);
                    row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
                    return;
                }
            };
            let Value::Array(rows) = doc else {
                let msg = format!(
                    "{} holds {}; a YAML dataset is a list of records",
                    opened.display,
                    value::kind(&doc)
                );
                row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
                return;
            };
            read_records(ex, opened, rows, each);
        }
        Format::Json => json::read(ex, opened, reader, each),
        Format::Parquet => match parquet_rows(reader) {
            Ok(rows) => read_records(ex, opened, rows, each),
            Err(why) => {
                let msg = format!("{} is not a readable Parquet file: {why}", opened.display);
                row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
            }
        },
    }
}

/// The rows of a Parquet file as records: each column by name, its value as the file's
/// schema types it (integers, floats, booleans, strings; lists and structs as JSON arrays
/// and objects; nulls as null). Parquet keeps its index at the end, so the file is read
/// whole first.
fn parquet_rows(mut reader: Box<dyn std::io::Read + '_>) -> Result<Vec<Value>, String> {
    use parquet::file::reader::FileReader as _;
    let mut bytes = Vec::new();
    reader
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read it: {e}"))?;
    let file =
        parquet::file::serialized_reader::SerializedFileReader::new(bytes::Bytes::from(bytes))
            .map_err(|e| e.to_string())?;
    let rows = file.get_row_iter(None).map_err(|e| e.to_string())?;
    rows.map(|row| row.map(|r| r.to_json_value()).map_err(|e| e.to_string()))
        .collect()
}

/// Streams a list of records (YAML, JSON) to `each`; an entry that is no record is a row error.
fn read_records(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    rows: Vec<Value>,
    each: &mut dyn FnMut(&mut Expander<'_>, &mut Opened<'_>, Row) -> bool,
) {
    let d = opened.decl;
    for (i, row) in rows.into_iter().enumerate() {
        let number = i as u64 + 1;
        match row {
            Value::Object(fields) => {
                if !each(
                    ex,
                    opened,
                    Row {
                        number,
                        line: 0,
                        fields,
                    },
                ) {
                    return;
                }
            }
            other => {
                let msg = format!(
                    "{}: row {number} is {}, not a record",
                    opened.display,
                    value::kind(&other)
                );
                row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
            }
        }
    }
}

fn read_csv(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    reader: Box<dyn Read + '_>,
    each: &mut dyn FnMut(&mut Expander<'_>, &mut Opened<'_>, Row) -> bool,
) {
    let d = opened.decl;
    // The CSV reader counts a record's line before it has consumed the `\n` of a preceding
    // `\r\n`, so in CRLF files its line numbers are one short.
    let mut reader = BufReader::with_capacity(1 << 16, reader);
    let crlf = match reader.fill_buf() {
        Ok(buf) => buf
            .iter()
            .position(|&b| b == b'\n')
            .is_some_and(|i| i > 0 && buf[i - 1] == b'\r'),
        Err(_) => false,
    };
    // A byte-order mark is not part of the first column's name (the csv crate keeps it, and
    // a quoted name after it would keep its quotes).
    if reader
        .fill_buf()
        .is_ok_and(|buf| buf.starts_with(b"\xEF\xBB\xBF"))
    {
        reader.consume(3);
    }
    // `skip_rows`: lines before the header, whatever they hold.
    let dialect = dialect(d);
    let mut skipped = 0;
    let mut line = Vec::new();
    while skipped < dialect.skip_lines {
        line.clear();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => skipped += 1,
        }
    }
    let line_of = |p: Option<&csv::Position>| p.map_or(0, |p| p.line() + u64::from(crlf) + skipped);
    let mut csv = csv::ReaderBuilder::new()
        .flexible(false)
        .delimiter(dialect.delimiter)
        .quote(dialect.quote)
        .comment(dialect.comment)
        .from_reader(reader);
    let headers: Vec<String> = match csv.headers() {
        Ok(h) => h
            .iter()
            .map(|s| s.trim_start_matches('\u{feff}').to_string())
            .collect(),
        Err(e) => {
            let msg = format!("{}: the header row cannot be read: {e}", opened.display);
            row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
            return;
        }
    };
    // A name given twice would leave one of its columns unreadable: the file is not read.
    if duplicate_headers(ex, opened, &headers) {
        return;
    }
    // A declared column missing from the header is one error, not one per row.
    let mut missing = false;
    for column in &d.columns {
        if !headers.contains(&column.name.value) {
            missing = true;
            let msg = if headers.iter().all(|h| h.is_empty()) {
                format!(
                    "{} has no header row, so no column `{}`",
                    opened.display, column.name.value
                )
            } else {
                format!(
                    "{} has no column `{}`; its header is: {}",
                    opened.display,
                    column.name.value,
                    headers.join(", ")
                )
            };
            let help = match did_you_mean(&column.name.value, headers.iter().map(String::as_str)) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "declare the columns as the file's header names them".to_string(),
            };
            row_error(
                ex,
                opened,
                column.name.span,
                Code::MissingColumn,
                msg,
                Some(help),
            );
        }
    }
    if missing {
        return;
    }
    let mut record = csv::StringRecord::new();
    let mut number = 0;
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => return,
            Ok(true) => {
                number += 1;
                let line = line_of(record.position());
                let mut fields = Map::new();
                for (h, v) in headers.iter().zip(record.iter()) {
                    fields.insert(h.clone(), Value::String(v.to_string()));
                }
                if !each(
                    ex,
                    opened,
                    Row {
                        number,
                        line,
                        fields,
                    },
                ) {
                    return;
                }
            }
            Err(e) => {
                number += 1;
                let line = line_of(e.position());
                let why = match e.kind() {
                    csv::ErrorKind::UnequalLengths {
                        expected_len, len, ..
                    } => {
                        format!("has {len} fields, the header has {expected_len}")
                    }
                    csv::ErrorKind::Utf8 { .. } => "is not valid UTF-8".to_string(),
                    _ => e.to_string(),
                };
                let msg = format!("{}: row {number} (line {line}) {why}", opened.display);
                row_error(ex, opened, d.name.span, Code::BadRow, msg, None);
                if !matches!(
                    e.kind(),
                    csv::ErrorKind::UnequalLengths { .. } | csv::ErrorKind::Utf8 { .. }
                ) {
                    return;
                }
            }
        }
    }
}

/// Reports each name the CSV header gives to more than one column; `true` if there is one.
fn duplicate_headers(ex: &mut Expander<'_>, opened: &mut Opened<'_>, headers: &[String]) -> bool {
    let mut columns: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, h) in headers.iter().enumerate() {
        columns.entry(h.as_str()).or_default().push(i + 1);
    }
    let mut repeated: Vec<(&str, Vec<usize>)> =
        columns.into_iter().filter(|(_, at)| at.len() > 1).collect();
    repeated.sort_by_key(|(_, at)| at[0]);
    for (name, at) in &repeated {
        let (last, rest) = at.split_last().expect("repeated names have positions");
        let rest: Vec<String> = rest.iter().map(ToString::to_string).collect();
        let count = match at.len() {
            2 => "two".to_string(),
            3 => "three".to_string(),
            n => n.to_string(),
        };
        let msg = if name.is_empty() {
            format!(
                "{}: the header leaves {count} columns without a name (columns {} and {last})",
                opened.display,
                rest.join(", ")
            )
        } else {
            format!(
                "{}: the header names {count} columns `{name}` (columns {} and {last})",
                opened.display,
                rest.join(", ")
            )
        };
        let help = "give every column its own name in the header; the reader would keep one of them and lose the others";
        let span = opened.decl.name.span;
        row_error(
            ex,
            opened,
            span,
            Code::DuplicateColumn,
            msg,
            Some(help.into()),
        );
    }
    !repeated.is_empty()
}

/// "row 12 (line 13)" for CSV and JSONL, "row 12" for YAML.
fn at(row: &Row) -> String {
    if row.line > 0 {
        format!("row {} (line {})", row.number, row.line)
    } else {
        format!("row {}", row.number)
    }
}

fn row_error(
    ex: &mut Expander<'_>,
    opened: &mut Opened<'_>,
    span: Span,
    code: Code,
    message: String,
    help: Option<String>,
) {
    opened.errors += 1;
    if opened.errors > MAX_ROW_ERRORS {
        *opened.hidden.entry(code).or_default() += 1;
        return;
    }
    let label = match code {
        Code::MissingColumn => "declared here",
        Code::UnknownValue => "mapped here",
        _ => "read from this dataset",
    };
    let mut d = Diagnostic::new(code, span, message).label(label);
    if let Some(h) = help {
        d = d.help(h);
    }
    ex.error(d);
}

/// Why an expression evaluated to nothing, in words: the innermost part that did.
/// `mapped` says whether a column has a value map (its values are the mapped ones).
fn null_reason(e: &Expr, env: &dyn Env, mapped: &dyn Fn(&str) -> bool) -> String {
    match &e.kind {
        ExprKind::Index { base, index } => {
            let (b, i) = (value::eval(base, env), value::eval(index, env));
            if let Ok(Value::Null) = &b {
                return null_reason(base, env, mapped);
            }
            match (b, i) {
                (Ok(Value::Object(m)), Ok(k)) => {
                    let note = match &index.kind {
                        ExprKind::Path(p)
                            if p.len() == 2 && p[0].name == "row" && mapped(&p[1].name) =>
                        {
                            "; value maps run before items, so the key is the mapped value"
                        }
                        _ => "",
                    };
                    format!(
                        "`{}[{}]` has no key `{}` (its keys: {}){note}",
                        shape(base),
                        shape(index),
                        value::text(&k),
                        assay_syntax::ticked(m.keys())
                    )
                }
                (Ok(Value::Array(a)), Ok(k)) => format!(
                    "`{}[{}]`: {} is past the end of a list of {}",
                    shape(base),
                    shape(index),
                    value::text(&k),
                    a.len()
                ),
                _ => format!("`{}` is nothing", shape(e)),
            }
        }
        ExprKind::Path(p) if p.len() >= 2 && p[0].name == "row" => {
            format!("the rows have no field `{}`", p[1].name)
        }
        ExprKind::Call { args, .. } => args
            .iter()
            .find(|a| matches!(value::eval(&a.value, env), Ok(Value::Null)))
            .map_or_else(
                || format!("`{}` is nothing", shape(e)),
                |a| null_reason(&a.value, env, mapped),
            ),
        _ => format!("`{}` is nothing", shape(e)),
    }
}

/// An expression in short: `row.task_type`, `{...}`, `[...]`, `f(...)`.
fn shape(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Path(p) => p
            .iter()
            .map(|s| s.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        ExprKind::Record(_) => "{...}".into(),
        ExprKind::List(_) => "[...]".into(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Number(n) => value::text(&value::number(*n)),
        ExprKind::Call { callee, .. } => format!("{}(...)", callee.name),
        ExprKind::Index { base, index } => format!("{}[{}]", shape(base), shape(index)),
        _ => "...".into(),
    }
}

/// Reports how many problems went unreported.
fn finish(ex: &mut Expander<'_>, opened: &Opened<'_>) {
    for (key, null) in &opened.nulls {
        let rows = if null.rows == 1 {
            "1 row".to_string()
        } else {
            format!("{} rows", null.rows)
        };
        ex.error(
            Diagnostic::new(
                Code::NullItemField,
                null.span,
                format!(
                    "{}: `{key}` evaluated to nothing for {rows} (first: {}): {}",
                    opened.display, null.first, null.why
                ),
            )
            .label(format!("nothing for {rows}"))
            .help("every item needs a user turn; these rows make no item"),
        );
    }
    if let Some(index) = opened.repeated_report
        && opened.repeated_ids > 1
    {
        let more = opened.repeated_ids - 1;
        ex.out.diagnostics[index].message.push_str(&if more == 1 {
            " (and 1 more row repeats an id)".to_string()
        } else {
            format!(" (and {more} more rows repeat an id)")
        });
    }
    // One line per kind of problem left out, at the dataset's closing brace: after the
    // problems shown, which all point inside the declaration.
    let decl = opened.decl;
    let end = Span {
        start: decl.span.end.saturating_sub(1).max(decl.span.start),
        ..decl.span
    };
    for (code, count) in &opened.hidden {
        let problems = if *count == 1 { "problem" } else { "problems" };
        ex.error(
            Diagnostic::new(
                *code,
                end,
                format!(
                    "{}: {count} more {code} {problems} not shown",
                    opened.display
                ),
            )
            .label(format!("{count} more in dataset `{}`", decl.name.name))
            .help(format!(
                "the first {MAX_ROW_ERRORS} problems are reported above; fix them and check again"
            )),
        );
    }
}

/// A row's fields typed by the declared columns and mapped by the value maps. `None` when the
/// row has a problem (reported).
fn typed(ex: &mut Expander<'_>, opened: &mut Opened<'_>, row: &Row) -> Option<Map<String, Value>> {
    let d = opened.decl;
    let mut fields = row.fields.clone();
    let mut ok = true;
    for column in &d.columns {
        let name = &column.name.value;
        // A nullable column reads a missing field, or a null, as null.
        let raw = match row.fields.get(name) {
            None | Some(Value::Null) if column.nullable => {
                fields.insert(name.clone(), Value::Null);
                continue;
            }
            raw => raw,
        };
        let Some(raw) = raw else {
            let msg = format!("{}: {} has no field `{name}`", opened.display, at(row));
            row_error(ex, opened, column.name.span, Code::MissingColumn, msg, None);
            ok = false;
            continue;
        };
        match convert(raw, column.ty) {
            Ok(v) => {
                fields.insert(name.clone(), v);
            }
            Err(why) => {
                let msg = format!("{}: {}, column `{name}`: {why}", opened.display, at(row));
                let help = if raw.is_null() {
                    format!(
                        "the column is declared `{0}`; declare it `{0}?` if it may be null",
                        type_name(column.ty)
                    )
                } else {
                    format!(
                        "the column is declared `{}`; fix the row or the declaration",
                        type_name(column.ty)
                    )
                };
                row_error(ex, opened, column.span, Code::BadRow, msg, Some(help));
                ok = false;
            }
        }
    }
    let mut unknown = Vec::new();
    for (i, map) in opened.maps.iter().enumerate() {
        let Some(raw) = fields.get(&map.column) else {
            continue;
        };
        let key = value::text(raw);
        let mapped = map.rules.get(&key).or_else(|| map.codes.get(&key));
        match mapped {
            Some(to) => {
                fields.insert(map.column.clone(), Value::String(to.clone()));
            }
            None => {
                unknown.push((i, key));
                ok = false;
            }
        }
    }
    for (i, key) in unknown {
        let map = &opened.maps[i];
        let (span, column) = (map.span, map.column.clone());
        let help = match did_you_mean(&key, map.rules.keys().map(String::as_str)) {
            Some(s) => format!("did you mean \"{s}\"? otherwise add `\"{key}\" -> ...` to the map"),
            None => format!("add `\"{key}\" -> ...` to the map"),
        };
        let msg = format!(
            "{}: {}, column `{column}`: value \"{key}\" is not in the value map",
            opened.display,
            at(row)
        );
        // Each distinct unknown value is worth one report.
        let dup = ex.out.diagnostics.iter().any(|d| {
            d.code == Code::UnknownValue
                && d.primary.span == span
                && d.message
                    .ends_with(&format!("value \"{key}\" is not in the value map"))
        });
        if !dup {
            row_error(ex, opened, span, Code::UnknownValue, msg, Some(help));
        }
    }
    ok.then_some(fields)
}

fn type_name(ty: ColumnType) -> &'static str {
    match ty {
        ColumnType::String => "string",
        ColumnType::Int => "int",
        ColumnType::Float => "float",
        ColumnType::Bool => "bool",
        ColumnType::List => "list",
        ColumnType::Record => "record",
    }
}

/// A raw field as the declared type.
fn convert(raw: &Value, ty: ColumnType) -> Result<Value, String> {
    match (ty, raw) {
        (ColumnType::String, Value::String(_)) => Ok(raw.clone()),
        (ColumnType::String, Value::Number(_) | Value::Bool(_)) => {
            Ok(Value::String(raw.to_string()))
        }
        (ColumnType::Int, Value::Number(n)) if n.is_i64() || n.is_u64() => Ok(raw.clone()),
        (ColumnType::Int, Value::Number(n)) => Err(format!("{n} is not a whole number")),
        (_, Value::Null) => Err("the value is null".to_string()),
        (ColumnType::Int, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("\"{s}\" is not a whole number")),
        (ColumnType::Float, Value::Number(_)) => Ok(raw.clone()),
        (ColumnType::Float, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(value::number)
            .ok_or_else(|| format!("\"{s}\" is not a number")),
        (ColumnType::Bool, Value::Bool(_)) => Ok(raw.clone()),
        (ColumnType::List, Value::Array(_)) | (ColumnType::Record, Value::Object(_)) => {
            Ok(raw.clone())
        }
        (ColumnType::Bool, Value::String(s)) => match s.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" => Ok(Value::Bool(true)),
            "false" | "0" | "no" => Ok(Value::Bool(false)),
            _ => Err(format!("\"{s}\" is not true or false")),
        },
        (_, other) => Err(format!("found {}", value::kind(other))),
    }
}

/// `row.NAME` reads a (typed, mapped) field; `taxonomy.code` is the code.
struct RowEnv<'r> {
    fields: &'r Map<String, Value>,
    /// The joined dataset's name and its row for this one.
    joined: Option<(&'r str, &'r Map<String, Value>)>,
}

impl Env for RowEnv<'_> {
    fn path(&self, segments: &[&str]) -> Option<Value> {
        match segments {
            [side, column, rest @ ..] if self.joined.is_some_and(|(n, _)| n == *side) => {
                let fields = self.joined.map(|(_, f)| f)?;
                let v = fields.get(*column).cloned().unwrap_or(Value::Null);
                rest.iter().try_fold(v, |v, seg| v.get(*seg).cloned())
            }
            ["row", column, rest @ ..] => {
                // An undeclared field a record lacks is absent; declared ones were checked.
                let v = self.fields.get(*column).cloned().unwrap_or(Value::Null);
                rest.iter().try_fold(v, |v, seg| v.get(*seg).cloned())
            }
            [_, code] => Some(Value::String((*code).to_string())),
            _ => None,
        }
    }
}

/// `refuse`, `comply`, `answer(x)`, or a value reading as one of them.
pub(crate) fn expectation(e: &Expr, env: &dyn Env) -> Result<Expect, String> {
    if let ExprKind::Call { callee, args } = &e.kind
        && callee.name == "answer"
        && let [arg] = args.as_slice()
    {
        return Ok(Expect::Answer(value::text(&value::eval(&arg.value, env)?)));
    }
    let v = value::eval(e, env)?;
    match value::text(&v).trim().to_ascii_lowercase().as_str() {
        "refuse" => Ok(Expect::Refuse),
        "comply" => Ok(Expect::Comply),
        other => Err(format!("\"{other}\" is not an expectation")),
    }
}

/// The item of one row, before the axes. `None` after reporting.
fn base(
    ex: &mut Expander<'_>,
    name: &str,
    opened: &mut Opened<'_>,
    item: &assay_syntax::ast::Props,
    row: &Row,
    fields: &Map<String, Value>,
    joined: Option<(&str, &Map<String, Value>)>,
) -> Option<Base> {
    let env = RowEnv { fields, joined };
    let mut failed = false;
    let mut get = |ex: &mut Expander<'_>, opened: &mut Opened<'_>, key: &str| -> Option<Value> {
        let e = item.value(key)?;
        match value::eval(e, &env) {
            Ok(Value::Null) => None,
            Ok(v) => Some(v),
            Err(why) => {
                let msg = format!("{}: {}, `{key}`: {why}", opened.display, at(row));
                row_error(ex, opened, e.span, Code::MissingColumn, msg, None);
                failed = true;
                None
            }
        }
    };
    let source_id = get(ex, opened, "id").map(|v| value::text(&v));
    let prompt = get(ex, opened, "prompt").map(|v| value::text(&v));
    let turns = get(ex, opened, "turns");
    let system = get(ex, opened, "system").map(|v| value::text(&v));
    let response = get(ex, opened, "response").map(|v| value::text(&v));
    let gold = get(ex, opened, "gold").map(|v| value::text(&v));
    let group = get(ex, opened, "group").map(|v| value::text(&v));
    let persona = get(ex, opened, "persona").map(|v| value::text(&v));
    let locale = get(ex, opened, "locale").map(|v| value::text(&v));
    let answer = get(ex, opened, "answer").map(|v| value::text(&v));
    let attachment_values = match get(ex, opened, "attachments") {
        Some(Value::Array(a)) => a,
        Some(v) => vec![v],
        None => Vec::new(),
    };
    let mut attachments = Vec::with_capacity(attachment_values.len());
    for v in &attachment_values {
        match ex.attachment(v) {
            Ok(a) => attachments.push(a),
            Err(why) => {
                let span = item
                    .value("attachments")
                    .map_or(opened.decl.name.span, |e| e.span);
                let msg = format!("{}: {}: {why}", opened.display, at(row));
                row_error(ex, opened, span, Code::BadRow, msg, None);
                return None;
            }
        }
    }
    let metadata_value = get(ex, opened, "metadata");
    if failed {
        return None;
    }

    // `turns`: a list of user turns, or of `{role, content}` records (a recorded
    // conversation, its assistant turns kept in place).
    let mut user: Vec<(assay_ir::Role, String)> = Vec::new();
    match turns {
        Some(Value::Array(t)) => user.extend(t.iter().map(|turn| match turn {
            Value::Object(o) if o.contains_key("content") => {
                let role = match o.get("role").and_then(Value::as_str) {
                    Some("assistant") => assay_ir::Role::Assistant,
                    _ => assay_ir::Role::User,
                };
                (role, o.get("content").map(value::text).unwrap_or_default())
            }
            other => (assay_ir::Role::User, value::text(other)),
        })),
        Some(v) => user.push((assay_ir::Role::User, value::text(&v))),
        None => {}
    }
    if user.is_empty()
        && let Some(p) = prompt
    {
        user.push((assay_ir::Role::User, p));
    }
    if user.is_empty() && response.is_none() {
        // Reported once for all rows, naming the expression and why (`finish`).
        let key = if item.value("prompt").is_some() {
            "prompt"
        } else {
            "turns"
        };
        let e = item.value(key)?;
        let null = opened.nulls.entry(key).or_insert_with(|| NullField {
            span: e.span,
            rows: 0,
            first: at(row),
            why: null_reason(e, &env, &|c| opened.maps.iter().any(|m| m.column == c)),
        });
        null.rows += 1;
        return None;
    }

    // hazard: a column mapped to a taxonomy, `taxonomy.code`, or a code one taxonomy defines.
    let (mut taxonomy, mut hazard, mut sub_hazard, mut hazard_value) = (None, None, None, None);
    if let Some(e) = item.value("hazard") {
        let (tax, code) = match &e.kind {
            ExprKind::Path(p) if p.len() == 2 && p[0].name == "row" => {
                let tax = opened
                    .maps
                    .iter()
                    .find(|m| m.column == p[1].name)
                    .and_then(|m| m.taxonomy.clone());
                (
                    tax,
                    fields.get(&p[1].name).map(value::text).unwrap_or_default(),
                )
            }
            // `taxonomy.code`, unless it names the joined dataset (`labels.hazard`).
            ExprKind::Path(p) if p.len() == 2 && joined.is_none_or(|(n, _)| n != p[0].name) => {
                (Some(p[0].name.clone()), p[1].name.clone())
            }
            _ => (
                None,
                value::eval(e, &env)
                    .map(|v| value::text(&v))
                    .unwrap_or_default(),
            ),
        };
        match ex.resolve_hazard(tax, &code) {
            Ok((tax, h)) => {
                taxonomy = Some(tax);
                hazard = Some(h.top);
                sub_hazard = h.sub;
                hazard_value = Some(h.value);
            }
            Err(why) => {
                let msg = format!("{}: {}: hazard \"{code}\": {why}", opened.display, at(row));
                let help =
                    "map the column to a taxonomy: `map COLUMN to TAXONOMY { \"value\" -> code }`";
                row_error(
                    ex,
                    opened,
                    e.span,
                    Code::UnknownValue,
                    msg,
                    Some(help.into()),
                );
                return None;
            }
        }
    }

    let expect = match (item.value("expect"), &answer) {
        (Some(e), _) => match expectation(e, &env) {
            Ok(x) => x,
            Err(why) => {
                let msg = format!("{}: {}, `expect`: {why}", opened.display, at(row));
                row_error(
                    ex,
                    opened,
                    e.span,
                    Code::UnknownValue,
                    msg,
                    Some("expectations are `refuse`, `comply` or `answer(...)`".into()),
                );
                return None;
            }
        },
        (None, Some(a)) => Expect::Answer(a.clone()),
        (None, None) => Expect::Refuse,
    };
    let mut metadata = BTreeMap::new();
    match metadata_value {
        Some(Value::Object(m)) => metadata.extend(m),
        Some(v) => {
            metadata.insert("value".to_string(), v);
        }
        None => {}
    }
    if let Some(a) = answer
        && !matches!(expect, Expect::Answer(_))
    {
        metadata.insert("answer".to_string(), Value::String(a));
    }
    if let Some(id) = &source_id {
        metadata.insert("source_id".to_string(), Value::String(id.clone()));
    }
    let key = match &source_id {
        Some(id) if opened.ids.insert(id.clone()) => format!("{name}/{id}"),
        Some(id) => {
            // Keys must be unique for `assay diff`: a repeated id gets the row number.
            opened.repeated_ids += 1;
            if opened.repeated_ids == 1 {
                opened.repeated_report = Some(ex.out.diagnostics.len());
                let span = item.value("id").map_or(opened.decl.name.span, |e| e.span);
                ex.error(
                    Diagnostic::new(
                        Code::RepeatedId,
                        span,
                        format!(
                            "{}: {} repeats the id \"{id}\" of an earlier row",
                            opened.display,
                            at(row)
                        ),
                    )
                    .label("ids read here")
                    .help("ids name rows across versions of the data; make them unique (rows with a repeated id are keyed by their row number)"),
                );
            }
            format!("{name}/{id}#row{}", row.number)
        }
        None => format!("{name}/row{}", row.number),
    };
    Some(Base {
        source: name.to_string(),
        key,
        user: UserTurns::Fixed(user),
        system: system.map(crate::SystemPrompt::Fixed),
        taxonomy,
        hazard,
        sub_hazard,
        hazard_value,
        persona,
        persona_value: None,
        locale,
        expect,
        response,
        gold,
        group,
        program: opened.decl.props.name("program").map(|p| p.name.clone()),
        defense: None,
        attachments,
        metadata,
        span: opened.decl.name.span,
    })
}
