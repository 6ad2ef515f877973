//! Templates (variables bound and used, domains, generators, tags) and datasets (sources,
//! hashes, columns, value maps, item fields).

use super::taxonomy::{expect_code, lookup_taxonomy};
use super::{Ctx, TextRef};
use assay_syntax::ast::*;
use assay_syntax::{Code, Diagnostic, did_you_mean};
use std::collections::BTreeSet;

/// Variables every template may use without binding them.
pub(crate) const BUILTIN_VARIABLES: &[&str] = &["persona", "hazard", "locale", "item"];

/// One variable use in a handlebars text: the root name and its byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VarUse {
    pub name: String,
    pub start: usize,
    pub end: usize,
}

/// The variables a handlebars template reads, outside `#each`/`#with` bodies (whose names
/// refer to the element, not to bindings). Comments `{{! }}`, partials `{{> }}` and escaped
/// `\\{{` are skipped; helpers (`{{upper name}}`, `(eq a b)`) are not variables, their
/// arguments are; `key=value` arguments read `value`.
pub(crate) fn variables(text: &str) -> Vec<VarUse> {
    let mut out = Vec::new();
    let mut scoped = 0usize;
    let mut rest = 0;
    while let Some(open) = text[rest..].find("{{") {
        let start = rest + open;
        if start > 0 && text.as_bytes()[start - 1] == b'\\' {
            rest = start + 2;
            continue;
        }
        let Some(close) = text[start..].find("}}") else {
            break;
        };
        let end = start + close;
        rest = end + 2;
        let raw = &text[start + 2..end];
        let trimmed = raw.trim_start_matches(['{', '~', '&']).trim_start();
        let mut offset = start + 2 + (raw.len() - trimmed.len());
        let sigil = trimmed.chars().next().filter(|c| "!#/^>".contains(*c));
        let mut body = &trimmed[sigil.map_or(0, char::len_utf8)..];
        offset += sigil.map_or(0, char::len_utf8);
        match sigil {
            Some('!' | '>') => continue,
            Some('/') => {
                if matches!(
                    body.trim().trim_end_matches(['~', '}']).trim(),
                    "each" | "with"
                ) {
                    scoped = scoped.saturating_sub(1);
                }
                continue;
            }
            _ => {}
        }
        // `{{else}}` and `{{else if x}}`: the words after `else` are a block opener's.
        let is_else = body.starts_with("else")
            && !body[4..].starts_with(|c: char| c.is_alphanumeric() || c == '_');
        if is_else {
            body = &body[4..];
            offset += 4;
        }
        let tokens = tokenize(body);
        let helper_form = matches!(sigil, Some('#' | '^')) || is_else || tokens.len() > 1;
        if scoped == 0 {
            for (i, token) in tokens.iter().enumerate() {
                if token.helper || (helper_form && i == 0) {
                    continue;
                }
                let root = token.text.split(['.', '/', '[']).next().unwrap_or("");
                let is_name = root.starts_with(|c: char| c.is_alphabetic() || c == '_')
                    && root.chars().all(|c| c.is_alphanumeric() || c == '_');
                if is_name && !matches!(root, "this" | "true" | "false" | "null" | "undefined") {
                    out.push(VarUse {
                        name: root.to_string(),
                        start: offset + token.at,
                        end: offset + token.at + root.len(),
                    });
                }
            }
        }
        if sigil == Some('#') && matches!(tokens.first().map(|t| t.text), Some("each" | "with")) {
            scoped += 1;
        }
    }
    out
}

/// A word of a handlebars expression, at byte `at` of its body.
struct Token<'a> {
    at: usize,
    text: &'a str,
    /// First word of a sub-expression `(helper ...)`: a helper, not a variable.
    helper: bool,
}

/// Splits an expression body into words: whitespace and parentheses separate them, quoted
/// strings are skipped, `key=value` yields `value`.
fn tokenize(body: &str) -> Vec<Token<'_>> {
    let mut out = Vec::new();
    let bytes = body.as_bytes();
    let mut i = 0;
    let mut after_paren = false;
    while i < bytes.len() {
        match bytes[i] {
            b'(' => {
                after_paren = true;
                i += 1;
            }
            b')' | b'~' | b'}' => i += 1,
            b if b.is_ascii_whitespace() => i += 1,
            quote @ (b'"' | b'\'') => {
                i += 1;
                while i < bytes.len() && bytes[i] != quote {
                    i += 1;
                }
                i += 1;
                after_paren = false;
            }
            _ => {
                let start = i;
                while i < bytes.len()
                    && !bytes[i].is_ascii_whitespace()
                    && !b"()~}".contains(&bytes[i])
                {
                    i += 1;
                }
                let word = &body[start..i];
                let (at, text) = match word.split_once('=') {
                    Some((key, value)) => (start + key.len() + 1, value),
                    None => (start, word),
                };
                if !text.is_empty() && !text.starts_with(['"', '\'']) {
                    out.push(Token {
                        at,
                        text,
                        helper: after_paren,
                    });
                }
                after_paren = false;
            }
        }
    }
    out
}

pub(crate) fn check_template(ctx: &mut Ctx<'_>, template: &Template) {
    let bound: Vec<&str> = template.vars.iter().map(|v| v.name.name.as_str()).collect();
    let mut used: BTreeSet<String> = BTreeSet::new();
    let before = ctx.diagnostics.len();

    for key in ["prompt", "system"] {
        let Some(value) = template.props.value(key) else {
            continue;
        };
        let Some(text) = ctx.template_of(value) else {
            continue;
        };
        check_uses(ctx, &text, &bound, &mut used);
    }
    for key in ["hazard", "persona", "locale", "expect"] {
        if let Some(value) = template.props.value(key) {
            value.walk(&mut |e| {
                if let ExprKind::Path(p) = &e.kind
                    && let Some(first) = p.first()
                    && bound.contains(&first.name.as_str())
                {
                    used.insert(first.name.clone());
                }
            });
        }
    }

    // An invalid template says nothing reliable about which variables it uses.
    let invalid = ctx.diagnostics[before..]
        .iter()
        .any(|d| matches!(d.code, Code::InvalidTemplate | Code::TemplateTooDeep));
    for binding in &template.vars {
        check_domain(ctx, binding);
        if !invalid && !used.contains(&binding.name.name) {
            ctx.error(
                Diagnostic::new(
                    Code::UnusedVariable,
                    binding.name.span,
                    format!("variable `{}` is bound but never used", binding.name.name),
                )
                .label("unused")
                .help(format!(
                    "use `{{{{{}}}}}` in the prompt, or remove the binding",
                    binding.name.name
                )),
            );
        }
    }

    if let Some(generate) = &template.generate
        && let Some(filter) = &generate.filter
    {
        filter.walk(&mut |e| {
            if let ExprKind::Path(p) = &e.kind
                && let Some(first) = p.first()
                && !bound.contains(&first.name.as_str())
                && !BUILTIN_VARIABLES.contains(&first.name.as_str())
            {
                let d = Diagnostic::new(
                    Code::UndefinedName,
                    first.span,
                    format!("no variable named `{}`", first.name),
                )
                .label("not bound in `vars`")
                .suggest(did_you_mean(&first.name, bound.iter().copied()));
                ctx.error(d);
            }
        });
    }

    check_tag(ctx, template.props.value("hazard"), &bound, Tag::Hazard);
    check_tag(ctx, template.props.value("persona"), &bound, Tag::Persona);
    if let Some(expect) = template.props.value("expect") {
        check_expect(ctx, expect, &bound);
    }
    check_links(ctx, &template.props);
}

fn check_uses(ctx: &mut Ctx<'_>, text: &TextRef, bound: &[&str], used: &mut BTreeSet<String>) {
    for var in variables(&text.text) {
        if bound.contains(&var.name.as_str()) {
            used.insert(var.name);
        } else if !BUILTIN_VARIABLES.contains(&var.name.as_str()) {
            let candidates = bound
                .iter()
                .copied()
                .chain(BUILTIN_VARIABLES.iter().copied());
            let suggestion = did_you_mean(&var.name, candidates);
            let span = text.span(var.start, var.end);
            let mut d = Diagnostic::new(
                Code::UnboundVariable,
                span,
                format!("template variable `{}` is not bound", var.name),
            )
            .label("used here");
            if span.file != text.fallback.file {
                d = d.secondary(text.fallback, "in the template read here");
            }
            ctx.error(d.help(match suggestion {
                Some(s) => format!("did you mean `{s}`?"),
                None => format!(
                    "bind it in the template's `vars` block: `{} in [\"...\"]`",
                    var.name
                ),
            }));
        }
    }
}

fn check_domain(ctx: &mut Ctx<'_>, binding: &VarBinding) {
    let domain = &binding.domain;
    match &domain.kind {
        ExprKind::List(_) => {}
        ExprKind::Call { callee, .. } if callee.name == "file" => {
            if let Some((rel, span)) = domain.as_file_ref() {
                if let Some(path) = ctx.file_ref(rel, span, true) {
                    ctx.read.insert(path);
                }
            } else {
                ctx.error(
                    Diagnostic::new(Code::BadCall, domain.span, "`file` takes one path string")
                        .label("expected `file(\"values.txt\")`"),
                );
            }
        }
        ExprKind::Call { callee, args } if callee.name == "leaves" => match args
            .first()
            .filter(|_| args.len() == 1)
            .and_then(|a| a.value.as_name())
        {
            Some(name) => {
                lookup_taxonomy(ctx, name);
            }
            None => ctx.error(
                Diagnostic::new(
                    Code::BadCall,
                    domain.span,
                    "`leaves` takes one taxonomy name",
                )
                .label("expected `leaves(taxonomy)`"),
            ),
        },
        ExprKind::Path(p) if p.len() == 2 => {
            let dataset = ctx.lookup(&p[0], "dataset", |d| match d {
                Decl::Dataset(ds) => Some(ds),
                _ => None,
            });
            if let Some(dataset) = dataset {
                check_column(ctx, dataset, &p[1]);
            }
        }
        _ => ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                domain.span,
                format!(
                    "variable `{}` needs a domain, found {}",
                    binding.name.name,
                    domain.describe()
                ),
            )
            .label("expected a list, `file(\"...\")`, `dataset.column` or `leaves(taxonomy)`"),
        ),
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Tag {
    Hazard,
    Persona,
}

/// `hazard = taxonomy.code` (or a bound variable); `persona = name` (or a bound variable).
fn check_tag(ctx: &mut Ctx<'_>, value: Option<&Expr>, bound: &[&str], tag: Tag) {
    let Some(value) = value else { return };
    let ExprKind::Path(p) = &value.kind else {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                value.span,
                format!("expected a name, found {}", value.describe()),
            )
            .label(match tag {
                Tag::Hazard => "expected `taxonomy.code`",
                Tag::Persona => "expected a persona's name",
            }),
        );
        return;
    };
    if bound.contains(&p[0].name.as_str()) {
        return;
    }
    match (tag, p.as_slice()) {
        (Tag::Hazard, [taxonomy, code]) => {
            if let Some(t) = lookup_taxonomy(ctx, taxonomy) {
                expect_code(ctx, t, code);
            }
        }
        (Tag::Hazard, _) => ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                value.span,
                "a hazard is written `taxonomy.code`",
            )
            .label("expected `taxonomy.code`, e.g. `ailuminate_v1.vcr`"),
        ),
        (Tag::Persona, [name]) => {
            ctx.lookup(name, "persona", |d| match d {
                Decl::Persona(p) => Some(p),
                _ => None,
            });
        }
        (Tag::Persona, _) => ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                value.span,
                "a persona is written as its name",
            )
            .label("expected a persona's name"),
        ),
    }
}

/// `expect = refuse | comply | answer("B")`, or a value read from the row.
fn check_expect(ctx: &mut Ctx<'_>, expect: &Expr, bound: &[&str]) {
    match &expect.kind {
        ExprKind::Path(p) if p.len() == 1 => {
            let word = &p[0];
            if !["refuse", "comply"].contains(&word.name.as_str())
                && !bound.contains(&word.name.as_str())
            {
                ctx.error(
                    Diagnostic::new(
                        Code::UnknownKind,
                        word.span,
                        format!("unknown expectation `{}`", word.name),
                    )
                    .label("expected `refuse`, `comply` or `answer(...)`")
                    .suggest(did_you_mean(&word.name, ["refuse", "comply"])),
                );
            }
        }
        ExprKind::Path(p) if p.first().is_some_and(|s| s.name == "row") => {}
        ExprKind::Call { callee, args } if callee.name == "answer" && args.len() == 1 => {}
        _ => ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                expect.span,
                format!("expected an expectation, found {}", expect.describe()),
            )
            .label("expected `refuse`, `comply` or `answer(...)`"),
        ),
    }
}

fn check_links(ctx: &mut Ctx<'_>, props: &Props) {
    for axis in props.names("axes") {
        ctx.lookup(axis, "axis", |d| match d {
            Decl::Axis(a) => Some(a),
            _ => None,
        });
    }
    if let Some(program) = props.name("program") {
        ctx.lookup(program, "program", |d| match d {
            Decl::Program(p) => Some(p),
            _ => None,
        });
    }
}

fn check_column(ctx: &mut Ctx<'_>, dataset: &Dataset, column: &Ident) -> bool {
    if dataset.columns.is_empty() || dataset.columns.iter().any(|c| c.name.value == column.name) {
        return true;
    }
    let names = dataset.columns.iter().map(|c| c.name.value.as_str());
    ctx.error(
        Diagnostic::new(
            Code::UndefinedName,
            column.span,
            format!(
                "dataset `{}` has no column `{}`",
                dataset.name.name, column.name
            ),
        )
        .label("unknown column")
        .suggest(did_you_mean(&column.name, names))
        .secondary(dataset.name.span, "dataset declared here"),
    );
    false
}

/// The functions a row expression (`where`, item fields) may call, with their argument
/// counts (`None`: one or more). Expansion evaluates the same list (`assay-expand`'s
/// `value.rs`).
const ROW_FUNCTIONS: &[(&str, Option<usize>)] = &[
    ("len", Some(1)),
    ("lower", Some(1)),
    ("upper", Some(1)),
    ("trim", Some(1)),
    ("contains", Some(2)),
    ("replace", Some(3)),
    ("join", Some(2)),
    ("format", None),
    ("image", Some(1)),
    ("audio", Some(1)),
];

/// A row expression: every `row.COLUMN` declared, every call a known function with the right
/// number of arguments, and a literal `format` pattern with as many `{}` as values. `joined`
/// is the joined dataset, whose name may also start a path.
fn check_row_expr(ctx: &mut Ctx<'_>, dataset: &Dataset, expr: &Expr, joined: Option<&Dataset>) {
    expr.walk(&mut |e| match &e.kind {
        ExprKind::Path(p) if p.len() == 2 && p[0].name == "row" => {
            check_column(ctx, dataset, &p[1]);
        }
        ExprKind::Path(p) if p.len() == 2 && joined.is_some_and(|j| j.name.name == p[0].name) => {
            if let Some(j) = joined {
                check_column(ctx, j, &p[1]);
            }
        }
        ExprKind::Call { callee, args } => check_row_call(ctx, callee, args, e),
        _ => {}
    });
}

fn check_row_call(ctx: &mut Ctx<'_>, callee: &Ident, args: &[Arg], call: &Expr) {
    let Some((_, arity)) = ROW_FUNCTIONS.iter().find(|(n, _)| *n == callee.name) else {
        let names: Vec<&str> = ROW_FUNCTIONS.iter().map(|(n, _)| *n).collect();
        ctx.error(
            Diagnostic::new(
                Code::BadCall,
                callee.span,
                format!("unknown function `{}` in a row expression", callee.name),
            )
            .label("not a row function")
            .help(format!(
                "row expressions call {}",
                assay_syntax::ticked(names.iter())
            ))
            .suggest(did_you_mean(&callee.name, names.iter().copied())),
        );
        return;
    };
    // `image(x)`, or `image(url, sha256)`: a URL pinned by its hash.
    let attachment = matches!(callee.name.as_str(), "image" | "audio");
    let wrong_count = match arity {
        Some(1) if attachment => !(1..=2).contains(&args.len()),
        Some(n) => args.len() != *n,
        None => args.is_empty(),
    };
    if wrong_count {
        let wanted = match arity {
            Some(1) if attachment => {
                "a file, data or URL, and for a URL its sha256 (1 or 2 arguments)".to_string()
            }
            Some(1) => "1 argument".to_string(),
            Some(n) => format!("{n} arguments"),
            None => "a pattern and its values".to_string(),
        };
        ctx.error(
            Diagnostic::new(
                Code::BadCall,
                call.span,
                format!("`{}` takes {wanted}, found {}", callee.name, args.len()),
            )
            .label("wrong number of arguments"),
        );
        return;
    }
    let literal_type_error = |arg: &Arg, want: &str| -> Option<Diagnostic> {
        Some(
            Diagnostic::new(
                Code::TypeMismatch,
                arg.value.span,
                format!(
                    "`{}` expects {want} here, found {}",
                    callee.name,
                    arg.value.describe()
                ),
            )
            .label(format!("expected {want}")),
        )
    };
    let is_text = |e: &Expr| !matches!(e.kind, ExprKind::List(_) | ExprKind::Record(_));
    let mut problems = Vec::new();
    match (callee.name.as_str(), args) {
        ("join", [list, sep]) => {
            if !matches!(
                list.value.kind,
                ExprKind::List(_)
                    | ExprKind::Path(_)
                    | ExprKind::Call { .. }
                    | ExprKind::Index { .. }
            ) {
                problems.extend(literal_type_error(list, "a list"));
            }
            if !is_text(&sep.value) {
                problems.extend(literal_type_error(sep, "a string"));
            }
        }
        ("format", [pattern, values @ ..]) => {
            if let Some(text) = pattern.value.as_str() {
                let wanted = placeholders(text);
                if wanted != values.len() {
                    ctx.error(
                        Diagnostic::new(
                            Code::BadCall,
                            pattern.value.span,
                            format!(
                                "this `format` pattern has {wanted} `{{}}` but {} value{} follow{}",
                                values.len(),
                                if values.len() == 1 { "" } else { "s" },
                                if values.len() == 1 { "s" } else { "" },
                            ),
                        )
                        .label(format!("{wanted} placeholders"))
                        .help("each `{}` takes the next value; write `{{` and `}}` for literal braces"),
                    );
                }
            } else if !is_text(&pattern.value) {
                problems.extend(literal_type_error(pattern, "a string"));
            }
        }
        ("trim" | "lower" | "upper" | "replace", _) => {
            for a in args {
                if !is_text(&a.value) {
                    problems.extend(literal_type_error(a, "a string"));
                }
            }
        }
        _ => {}
    }
    for p in problems {
        ctx.error(p);
    }
}

/// How many `{}` a `format` pattern holds (`{{` and `}}` are literal braces).
fn placeholders(pattern: &str) -> usize {
    let mut count = 0;
    let mut chars = pattern.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, chars.peek()) {
            ('{', Some('{')) | ('}', Some('}')) => {
                chars.next();
            }
            ('{', Some('}')) => {
                chars.next();
                count += 1;
            }
            _ => {}
        }
    }
    count
}

/// W0203: an item field holding a string that reads a value in handlebars braces.
fn template_in_item_field(ctx: &mut Ctx<'_>, key: &str, value: &Expr) {
    // A `format` pattern writes literal braces as `{{` and `}}`: not a template.
    let mut patterns = Vec::new();
    value.walk(&mut |e| {
        if let ExprKind::Call { callee, args } = &e.kind
            && callee.name == "format"
            && let Some(first) = args.first()
        {
            patterns.push(first.value.span);
        }
    });
    value.walk(&mut |e| {
        if let Some(text) = e.as_str()
            && !patterns.contains(&e.span)
            && let Some(open) = text.find("{{")
            && let Some(close) = text[open..].find("}}")
        {
            let inner = text[open + 2..open + close].trim().trim_start_matches('{');
            let inner = inner.trim_end_matches('}').trim();
            // Only a name in braces reads like a template (`format("{{{}}}", x)` is braces).
            let name = inner.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && inner
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.');
            if !name {
                return;
            }
            let fix = inner.to_string();
            ctx.error(
                Diagnostic::new(
                    Code::TemplateInItemField,
                    e.span,
                    format!("`{key}` is an expression, not a template: this string is sent as written, braces and all"),
                )
                .label("looks like a handlebars template")
                .help(format!(
                    "write the expression itself: `{key} = {fix}`; join texts with `+` or `format(\"...{{}}...\", {fix})`"
                )),
            );
        }
    });
}

/// `delimiter`, `quote` and `comment` are one ASCII character other than a line break, and
/// the delimiter is not the quote (E0006).
fn check_csv_options(ctx: &mut Ctx<'_>, dataset: &Dataset) {
    // Options of one format on a dataset of another would be ignored without a word.
    if let Some(format) = data_format(dataset) {
        for (key, applies) in [
            ("delimiter", "csv"),
            ("quote", "csv"),
            ("comment", "csv"),
            ("skip_rows", "csv"),
            ("records", "json"),
        ] {
            if let Some(prop) = dataset.props.get(key)
                && format != applies
            {
                ctx.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        prop.key.span,
                        format!(
                            "`{key}` applies to {applies} files; this dataset is read as {format}"
                        ),
                    )
                    .label(format!("not a {applies} option"))
                    .help(format!(
                        "remove `{key}`, or set `format = {applies}` if the file is {applies}"
                    )),
                );
            }
        }
    }
    let mut bytes = Vec::new();
    for key in ["delimiter", "quote", "comment"] {
        let Some(prop) = dataset.props.get(key) else {
            continue;
        };
        let Some(text) = prop.value.as_str() else {
            continue;
        };
        let ok = text.len() == 1 && text.is_ascii() && text != "\n" && text != "\r";
        if !ok {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    prop.value.span,
                    format!("`{key}` must be one ASCII character, found {text:?}"),
                )
                .label("not one character")
                .help("CSV options are single characters: `delimiter = \";\"`, `\"\\t\"` for tabs, `quote = \"'\"`, `comment = \"#\"`"),
            );
        } else {
            bytes.push((key, text.as_bytes()[0], prop.value.span));
        }
    }
    let quote = bytes
        .iter()
        .find(|(k, ..)| *k == "quote")
        .map_or(b'"', |b| b.1);
    let delimiter = bytes
        .iter()
        .find(|(k, ..)| *k == "delimiter")
        .map_or(b',', |b| b.1);
    if quote == delimiter
        && let Some((key, _, span)) = bytes.iter().find(|(k, ..)| *k != "comment")
    {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                *span,
                format!(
                    "`{key}` is the same character as the {}",
                    if *key == "quote" {
                        "delimiter"
                    } else {
                        "quote"
                    }
                ),
            )
            .label("delimiter and quote alike")
            .help("a field could not be told from its quoting: choose two different characters"),
        );
    }
}

/// The format a dataset is read in, as expansion decides it: `format`, else the extension.
fn data_format(dataset: &Dataset) -> Option<&'static str> {
    let named = dataset.props.name("format").map(|f| f.name.as_str());
    let ext = || {
        let hint = dataset.props.str("path").or(dataset.props.str("url"))?;
        Some(hint.rsplit('.').next()?.to_ascii_lowercase())
    };
    match named {
        Some("csv") => Some("csv"),
        Some("jsonl") => Some("jsonl"),
        Some("json") => Some("json"),
        Some("yaml") => Some("yaml"),
        Some("parquet") => Some("parquet"),
        Some(_) => None,
        None => match ext()?.as_str() {
            "csv" => Some("csv"),
            "jsonl" | "ndjson" => Some("jsonl"),
            "json" => Some("json"),
            "yaml" | "yml" => Some("yaml"),
            "parquet" => Some("parquet"),
            _ => None,
        },
    }
}

/// `join = { dataset = NAME, key = EXPR, on = COLUMN }`: the joined dataset exists and
/// declares the `on` column; its name then reads its columns (`labels.gold`).
fn check_join<'a>(ctx: &mut Ctx<'a>, dataset: &Dataset) -> Option<&'a Dataset> {
    let join = dataset.props.get("join")?;
    let ExprKind::Record(fields) = &join.value.kind else {
        return None;
    };
    let field = |name: &str| fields.iter().find(|p| p.key.name == name);
    let mut missing = Vec::new();
    for key in ["dataset", "key", "on"] {
        if field(key).is_none() {
            missing.push(key);
        }
    }
    for f in fields {
        if !["dataset", "key", "on"].contains(&f.key.name.as_str()) {
            ctx.error(
                Diagnostic::new(
                    Code::UnknownKey,
                    f.key.span,
                    format!("unknown key `{}` in `join`", f.key.name),
                )
                .label("unknown key")
                .help("`join = { dataset = NAME, key = row.COLUMN, on = COLUMN }`"),
            );
        }
    }
    if !missing.is_empty() {
        ctx.error(
            Diagnostic::new(
                Code::MissingKey,
                join.value.span,
                format!("`join` needs {}", assay_syntax::ticked(missing.iter())),
            )
            .label("incomplete join")
            .help("`join = { dataset = NAME, key = row.COLUMN, on = COLUMN }`"),
        );
        return None;
    }
    let name = field("dataset")?.value.as_name()?;
    let joined = ctx.lookup(name, "dataset", |d| match d {
        Decl::Dataset(d) => Some(d),
        _ => None,
    })?;
    if joined.name.name == dataset.name.name {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                name.span,
                format!("dataset `{}` cannot join itself", name.name),
            )
            .label("the dataset being declared"),
        );
        return None;
    }
    let key = &field("key")?.value;
    check_row_expr(ctx, dataset, key, None);
    let on = &field("on")?.value;
    let on_name = on
        .as_name()
        .map(|n| n.name.clone())
        .or_else(|| on.as_str().map(str::to_string));
    match on_name {
        Some(column) => {
            check_column(
                ctx,
                joined,
                &Ident {
                    name: column,
                    span: on.span,
                },
            );
        }
        None => ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                on.span,
                format!(
                    "`on` names a column of `{}`, found {}",
                    name.name,
                    on.describe()
                ),
            )
            .label("expected a column name"),
        ),
    }
    Some(joined)
}

pub(crate) fn check_dataset(ctx: &mut Ctx<'_>, dataset: &Dataset) {
    let url = dataset.props.get("url");
    let sha = dataset.props.get("sha256");
    if let Some(sha) = sha
        && let Some(value) = sha.value.as_str()
        && (value.len() != 64 || !value.chars().all(|c| c.is_ascii_hexdigit()))
    {
        ctx.error(
            Diagnostic::new(
                Code::InvalidHash,
                sha.value.span,
                format!(
                    "`sha256` must be 64 hexadecimal digits, found {}",
                    value.len()
                ),
            )
            .label("not a sha256 digest")
            .help("compute it with `sha256sum FILE`"),
        );
    }
    if let Some(u) = url
        && let Some(text) = u.value.as_str()
        && let Some(Err(why)) = crate::hub::hub_url(text)
    {
        ctx.error(
            Diagnostic::new(Code::WrongValueType, u.value.span, why)
                .label("not a pinned Hub file")
                .help("write hf://datasets/OWNER/NAME@REVISION/PATH, the revision a commit hash"),
        );
    }
    if url.is_some() && sha.is_none() {
        ctx.error(
            Diagnostic::new(Code::MissingKey, dataset.name.span, format!("dataset `{}` has a `url` but no `sha256`", dataset.name.name))
                .label("unpinned source")
                .help("pin the data: add `sha256 = \"...\"` so the spec names exactly the data it was built on"),
        );
    }
    if let Some(path) = dataset.props.get("path")
        && let Some(rel) = path.value.as_str()
    {
        // A pinned source may be absent locally: it is downloaded or given with `--data`.
        ctx.file_ref(rel, path.value.span, url.is_none());
    }

    for map in &dataset.value_maps {
        let column = Ident {
            name: map.column.value.clone(),
            span: map.column.span,
        };
        check_column(ctx, dataset, &column);
        let taxonomy = map.taxonomy.as_ref().and_then(|t| lookup_taxonomy(ctx, t));
        if let Some(taxonomy) = taxonomy {
            for rule in &map.rules {
                match rule.to.as_name() {
                    Some(code) => {
                        expect_code(ctx, taxonomy, code);
                    }
                    None => ctx.error(
                        Diagnostic::new(
                            Code::WrongValueType,
                            rule.to.span,
                            format!(
                                "expected a code of `{}`, found {}",
                                taxonomy.name.name,
                                rule.to.describe()
                            ),
                        )
                        .label("expected a taxonomy code"),
                    ),
                }
            }
        }
    }

    check_csv_options(ctx, dataset);
    let joined = check_join(ctx, dataset);
    if let Some(filter) = dataset.props.value("where") {
        check_row_expr(ctx, dataset, filter, joined);
        // A dotted name here reads the row or the joined row; anything else is a typo that
        // would compare a bare word (`taxonomy.code` still names a code).
        filter.walk(&mut |e| {
            if let ExprKind::Path(p) = &e.kind
                && p.len() >= 2
                && p[0].name != "row"
                && joined.is_none_or(|j| j.name.name != p[0].name)
                && !matches!(ctx.find(&p[0].name), Some(Decl::Taxonomy(_)))
            {
                let mut heads = vec!["row"];
                heads.extend(joined.map(|j| j.name.name.as_str()));
                ctx.error(
                    Diagnostic::new(
                        Code::UndefinedName,
                        p[0].span,
                        format!("`{}` is not `row` or a joined dataset", p[0].name),
                    )
                    .label("unknown name")
                    .suggest(did_you_mean(&p[0].name, heads.iter().copied())),
                );
            }
        });
    }

    let Some(item) = &dataset.item else { return };
    for prop in item.iter() {
        // `expect` reads `answer(...)`, checked below.
        if prop.key.name != "expect" {
            check_row_expr(ctx, dataset, &prop.value, joined);
        } else {
            prop.value.walk(&mut |e| {
                if let ExprKind::Path(p) = &e.kind
                    && p.len() == 2
                    && p[0].name == "row"
                {
                    check_column(ctx, dataset, &p[1]);
                }
            });
        }
        template_in_item_field(ctx, &prop.key.name, &prop.value);
    }
    if let Some(hazard) = item.value("hazard")
        && let ExprKind::Path(p) = &hazard.kind
        && p.len() == 2
        && p[0].name != "row"
        && joined.is_none_or(|j| j.name.name != p[0].name)
        && let Some(t) = lookup_taxonomy(ctx, &p[0])
    {
        expect_code(ctx, t, &p[1]);
    }
    if let Some(persona) = item.value("persona")
        && let Some(name) = persona.as_name()
    {
        ctx.lookup(name, "persona", |d| match d {
            Decl::Persona(p) => Some(p),
            _ => None,
        });
    }
    if let Some(expect) = item.value("expect") {
        check_expect(ctx, expect, &[]);
    }
    check_links(ctx, &dataset.props);
}

#[cfg(test)]
mod tests {
    use super::variables;

    fn names(text: &str) -> Vec<String> {
        variables(text).into_iter().map(|v| v.name).collect()
    }

    #[test]
    fn finds_the_variables_a_template_reads() {
        let cases: &[(&str, &[&str])] = &[
            ("How do I {{verb}} a {{thing}}?", &["verb", "thing"]),
            (
                "{{persona.attrs.tone}} {{{raw}}} {{~trim~}}",
                &["persona", "raw", "trim"],
            ),
            (
                "{{#if polite}}Please{{else if rude}}Now{{else}}OK{{/if}}",
                &["polite", "rude"],
            ),
            (
                "{{#unless (eq lang \"en\")}}{{translate text to=lang}}{{/unless}}",
                &["lang", "text", "lang"],
            ),
            (
                "{{#each turns}}{{content}} {{@index}}{{/each}} {{after}}",
                &["turns", "after"],
            ),
            ("{{! a comment {{not}} }} \\{{literal}} {{> partial}}", &[]),
            ("{{this}} {{true}} {{../up}} {{\"str\"}} {{42}}", &[]),
        ];
        for (text, expected) in cases {
            assert_eq!(names(text), *expected, "in {text:?}");
        }
    }

    #[test]
    fn positions_point_at_the_name() {
        let text = "Hi {{ name }} and {{#if (eq a b)}}x{{/if}}";
        let found: Vec<&str> = variables(text)
            .iter()
            .map(|v| &text[v.start..v.end])
            .collect();
        assert_eq!(found, ["name", "a", "b"]);
    }
}
