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

    let Some(item) = &dataset.item else { return };
    for prop in item.iter() {
        prop.value.walk(&mut |e| {
            if let ExprKind::Path(p) = &e.kind
                && p.len() == 2
                && p[0].name == "row"
            {
                check_column(ctx, dataset, &p[1]);
            }
        });
    }
    if let Some(hazard) = item.value("hazard")
        && let ExprKind::Path(p) = &hazard.kind
        && p.len() == 2
        && p[0].name != "row"
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
