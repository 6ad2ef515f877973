//! The semantic checks, one file per construct. They share a [`Ctx`]: the loaded modules, the
//! scopes, the loader (to check file references) and the diagnostics sink. Every check reports
//! and carries on, so one pass finds every error.

mod cycles;
pub(crate) mod judge;
pub(crate) mod metric;
mod program;
mod standard;
mod taxonomy;
mod template;
mod template_depth;
mod unsupported;

pub(crate) use metric::ItemLabels;

use crate::imports::{LoadedModule, outside_package, resolve_in_package};
use crate::loader::SourceLoader;
use crate::scope::{DefRef, Scopes};
use assay_syntax::ast::*;
use assay_syntax::schema::Shape;
use assay_syntax::{Code, Diagnostic, FileId, SourceMap, Span, did_you_mean};
use std::path::PathBuf;

pub(crate) struct Ctx<'a> {
    pub modules: &'a [LoadedModule],
    pub scopes: &'a Scopes,
    pub sources: &'a mut SourceMap,
    pub loader: &'a dyn SourceLoader,
    pub diagnostics: Vec<Diagnostic>,
    /// The module being checked.
    pub m: usize,
    /// What metric expressions may name in each module, built once per module.
    pub item_labels: std::collections::BTreeMap<usize, std::rc::Rc<ItemLabels>>,
    /// Every package file a text or a variable domain reads, for the lock file.
    pub read: std::collections::BTreeSet<PathBuf>,
}

/// Text found behind a `Text` value: the literal itself or a referenced file's contents.
pub(crate) struct TextRef {
    pub text: String,
    /// Where the text lives: a file in the source map and the byte offset of `text` in it.
    pub file: FileId,
    pub offset: usize,
    /// The span to point at when the exact position cannot be found.
    pub fallback: Span,
}

/// Runs every check over every module.
pub(crate) fn run(ctx: &mut Ctx<'_>) {
    suites(ctx);
    cycles::check_cycles(ctx);
    for m in 0..ctx.modules.len() {
        ctx.m = m;
        let module = &ctx.modules[m];
        for decl in &module.ast.decls {
            match decl {
                Decl::Suite(_) | Decl::Use(_) => {}
                Decl::Taxonomy(t) => taxonomy::check_taxonomy(ctx, t),
                Decl::Mapping(map) => taxonomy::check_mapping(ctx, map),
                Decl::Persona(_) => {}
                Decl::Template(t) => template::check_template(ctx, t),
                Decl::Dataset(d) => template::check_dataset(ctx, d),
                Decl::Axis(a) => check_axis(ctx, a),
                Decl::Target(t) => {
                    check_target(ctx, t);
                    unsupported::check_target(ctx, t);
                }
                Decl::Program(p) => program::check_program(ctx, p),
                Decl::Judge(j) => {
                    judge::check_judge(ctx, j);
                    unsupported::check_judge(ctx, j);
                }
                Decl::Metric(metric) => metric::check_metric(ctx, metric),
                Decl::Grade(g) => metric::check_grade(ctx, g),
                Decl::Standard(s) => standard::check_standard(ctx, s),
                Decl::Report(r) => check_report(ctx, r),
            }
        }
    }
}

impl<'a> Ctx<'a> {
    pub fn error(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    pub fn decl(&self, def: DefRef) -> &'a Decl {
        &self.modules[def.module].ast.decls[def.decl]
    }

    /// The judges, axes, metrics, codes and personas metric expressions of the current module
    /// may name.
    pub fn item_labels(&mut self) -> std::rc::Rc<ItemLabels> {
        if let Some(labels) = self.item_labels.get(&self.m) {
            return std::rc::Rc::clone(labels);
        }
        let labels = std::rc::Rc::new(ItemLabels::new(self));
        self.item_labels.insert(self.m, std::rc::Rc::clone(&labels));
        labels
    }

    /// Whether `name` belongs to a declaration that failed to parse (already reported).
    pub fn is_broken(&self, name: &str) -> bool {
        self.scopes.broken[self.m].contains(name)
    }

    /// Looks `name` up without reporting.
    pub fn find(&self, name: &str) -> Option<&'a Decl> {
        self.scopes.visible[self.m].get(name).map(|d| self.decl(*d))
    }

    /// Looks up a definition of one kind, reporting E0102 when it is missing or of another
    /// kind. `kind` names it in messages ("target").
    pub fn lookup<T>(
        &mut self,
        name: &Ident,
        kind: &str,
        pick: impl Fn(&'a Decl) -> Option<&'a T>,
    ) -> Option<&'a T> {
        let candidates = || -> Vec<&'a str> {
            self.scopes.visible[self.m]
                .iter()
                .filter(|(_, d)| pick(self.decl(**d)).is_some())
                .map(|(n, _)| n.as_str())
                .collect()
        };
        match self.find(&name.name) {
            Some(decl) => match pick(decl) {
                Some(found) => Some(found),
                None => {
                    let d = Diagnostic::new(
                        Code::UndefinedName,
                        name.span,
                        format!("`{}` is a {}, not a {kind}", name.name, decl.kind_name()),
                    )
                    .label(format!("expected a {kind}"));
                    let d = match candidates().as_slice() {
                        [] => d.help(format!("declare a {kind} and refer to it by name")),
                        some => d.help(format!("{kind}s in scope: {}", some.join(", "))),
                    };
                    self.error(d);
                    None
                }
            },
            None if self.is_broken(&name.name) => None,
            None => {
                let candidates = candidates();
                self.undefined(name, kind, candidates);
                None
            }
        }
    }

    pub fn undefined(
        &mut self,
        name: &Ident,
        kind: &str,
        candidates: impl IntoIterator<Item = &'a str>,
    ) {
        let suggestion = did_you_mean(&name.name, candidates);
        self.error(
            Diagnostic::new(
                Code::UndefinedName,
                name.span,
                format!("no {kind} named `{}`", name.name),
            )
            .label(format!("undefined {kind}"))
            .suggest(suggestion),
        );
    }

    /// Checks a package-relative file reference: inside the package and present. Returns the
    /// resolved path when both hold.
    pub fn file_ref(&mut self, rel: &str, span: Span, must_exist: bool) -> Option<PathBuf> {
        let module = &self.modules[self.m];
        let (Some(root), Some(dir)) = (module.root(), module.dir()) else {
            self.error(outside_package(
                span,
                rel,
                "standard-library modules cannot read files",
            ));
            return None;
        };
        match resolve_in_package(self.loader, root, &dir, rel) {
            Err(why) => {
                self.error(outside_package(span, rel, why));
                None
            }
            Ok(path) if must_exist && !self.loader.is_file(&path) => {
                self.error(
                    Diagnostic::new(Code::FileNotFound, span, format!("cannot find `{rel}`"))
                        .label(format!("no file at {}", path.display()))
                        .help("paths are relative to the spec file that names them"),
                );
                None
            }
            Ok(path) => Some(path),
        }
    }

    /// The text behind a `"literal"` or `file("path")` value; files are added to the source map
    /// so diagnostics can point into them.
    pub fn text_of(&mut self, value: &Expr) -> Option<TextRef> {
        if let Some((rel, span)) = value.as_file_ref() {
            let path = self.file_ref(rel, span, true)?;
            self.read.insert(path.clone());
            let name = path.display().to_string();
            if let Some(existing) = self.sources.files().find(|f| f.name == name) {
                return Some(TextRef {
                    text: existing.text.clone(),
                    file: existing.id,
                    offset: 0,
                    fallback: span,
                });
            }
            let text = match self.loader.read(&path) {
                Ok(text) => text,
                Err(e) => {
                    self.error(
                        Diagnostic::new(
                            Code::FileNotFound,
                            span,
                            format!("cannot read `{rel}`: {e}"),
                        )
                        .label("unreadable file")
                        .help("text files must be UTF-8"),
                    );
                    return None;
                }
            };
            let file = self.sources.add(name, text.clone());
            return Some(TextRef {
                text,
                file,
                offset: 0,
                fallback: span,
            });
        }
        let text = value.as_str()?.to_string();
        let source = &self.sources.get(value.span.file).text;
        let raw = source.get(value.span.range()).unwrap_or_default();
        // For triple-quoted strings the content is verbatim; for plain strings without
        // escapes likewise after the quote. Otherwise positions fall back to the literal.
        let offset = if raw.starts_with("\"\"\"") {
            value.span.start as usize + 3
        } else if raw.len() == text.len() + 2 {
            value.span.start as usize + 1
        } else {
            usize::MAX
        };
        Some(TextRef {
            text,
            file: value.span.file,
            offset,
            fallback: value.span,
        })
    }
}

impl<'a> Ctx<'a> {
    /// Like [`Ctx::text_of`], for text that is a handlebars template: it must compile (E0121).
    pub fn template_of(&mut self, value: &Expr) -> Option<TextRef> {
        let text = self.text_of(value)?;
        // Partials would read templates from outside the spec; none are registered.
        if let Some(at) = partial_at(&text.text) {
            let d = Diagnostic::new(
                Code::InvalidTemplate,
                text.span(at, at + 2),
                "invalid template: partials (`{{> name}}`) are not available",
            )
            .label("a partial")
            .help("write the text in place, or bind it to a variable");
            self.error(d);
            return Some(text);
        }
        // Nesting is bounded before handlebars parses the template (see `template_depth.rs`).
        if let Some(deep) = template_depth::scan(&text.text) {
            self.template_too_deep(&text, text.span(deep.start, deep.end));
            return Some(text);
        }
        match handlebars::Template::compile(&text.text) {
            Ok(compiled) => {
                if let Some((line, column)) = template_depth::depth(&compiled) {
                    let span = position_span(&text, line, column);
                    self.template_too_deep(&text, span);
                }
            }
            Err(e) => {
                let span = match e.pos() {
                    Some((line, column)) => position_span(&text, line, column),
                    None => text.fallback,
                };
                // handlebars' own syntax message lists its pest rule names; say it in words.
                let why = match e.reason() {
                    // Its parser refuses to recurse further when the stack runs low.
                    handlebars::TemplateErrorReason::InvalidSyntax(m)
                        if m.contains("limit reached") =>
                    {
                        self.template_too_deep(&text, span);
                        return Some(text);
                    }
                    handlebars::TemplateErrorReason::InvalidSyntax(_) => {
                        "a `{{...}}` expression is unclosed or malformed".to_string()
                    }
                    handlebars::TemplateErrorReason::MismatchingClosedHelper(open, close) => {
                        format!("`{{{{#{open}}}}}` is closed by `{{{{/{close}}}}}`")
                    }
                    other => other.to_string(),
                };
                let mut d = Diagnostic::new(Code::InvalidTemplate, span, format!("invalid template: {why}"))
                    .label("the template breaks here")
                    .help("templates use handlebars syntax: `{{name}}`, `{{#if x}}...{{/if}}`, `{{#each xs}}...{{/each}}`");
                if span.file != text.fallback.file {
                    d = d.secondary(text.fallback, "template read here");
                }
                self.error(d);
            }
        }
        Some(text)
    }

    fn template_too_deep(&mut self, text: &TextRef, span: assay_syntax::Span) {
        let max = template_depth::MAX_TEMPLATE_NESTING;
        let mut d = Diagnostic::new(
            Code::TemplateTooDeep,
            span,
            format!("this template nests blocks more than {max} levels deep"),
        )
        .label(format!("level {} starts here", max + 1))
        .help(format!(
            "blocks, `{{{{else if}}}}` links and subexpressions may nest at most {max} levels; flatten the logic or move it into variables"
        ));
        if span.file != text.fallback.file {
            d = d.secondary(text.fallback, "template read here");
        }
        self.error(d);
    }
}

/// The span of the character at handlebars' 1-based `(line, column)` in a template.
fn position_span(text: &TextRef, line: usize, column: usize) -> assay_syntax::Span {
    let index = assay_syntax::LineIndex::new(&text.text);
    let line_start = index.line_start(line).unwrap_or(text.text.len());
    let offset = text.text[line_start..]
        .char_indices()
        .nth(column.saturating_sub(1))
        .map_or(text.text.len(), |(i, _)| line_start + i);
    let end = text.text[offset..]
        .chars()
        .next()
        .map_or(offset, |c| offset + c.len_utf8());
    text.span(offset, end)
}

/// The offset of the first `{{> ...}}` or `{{#> ...}}` partial in a template.
fn partial_at(text: &str) -> Option<usize> {
    text.match_indices("{{").map(|(i, _)| i).find(|&i| {
        let body = text[i + 2..].trim_start_matches(['~', '#']).trim_start();
        body.starts_with('>')
    })
}

impl TextRef {
    /// The span of `start..end` (byte offsets into `text`).
    pub fn span(&self, start: usize, end: usize) -> Span {
        if self.offset == usize::MAX {
            self.fallback
        } else {
            Span::new(self.file, self.offset + start, self.offset + end)
        }
    }
}

/// One suite header, in the entry spec, with a semver version.
fn suites(ctx: &mut Ctx<'_>) {
    let mut first: Option<Span> = None;
    for (m, module) in ctx.modules.iter().enumerate() {
        for decl in &module.ast.decls {
            let Decl::Suite(s) = decl else { continue };
            if let Some(first) = first {
                ctx.error(
                    Diagnostic::new(Code::DuplicateSuite, s.name.span, "a second suite header")
                        .label("another suite header")
                        .secondary(first, "the suite is declared here")
                        .help("a package has one suite header, in its entry spec"),
                );
                continue;
            }
            if m != 0 {
                ctx.error(
                    Diagnostic::new(Code::DuplicateSuite, s.name.span, "a suite header in an imported module")
                        .label("imported modules define parts of a suite, not suites")
                        .help("move the suite header to the entry spec, or import the definitions without it"),
                );
                continue;
            }
            first = Some(s.name.span);
            if let Some(version) = &s.version
                && let Err(e) = semver::Version::parse(&version.value)
            {
                ctx.error(
                    Diagnostic::new(
                        Code::InvalidVersion,
                        version.span,
                        format!("`{}` is not a semver version: {e}", version.value),
                    )
                    .label("expected MAJOR.MINOR.PATCH")
                    .help("write versions like \"1.0.0\" or \"2.1.0-rc.1\""),
                );
            }
        }
    }
}

/// Built-in transforms of the user turn, with their argument counts.
pub(crate) const TRANSFORMS: &[(&str, usize)] = &[
    ("identity", 0),
    ("base64", 0),
    ("rot13", 0),
    ("leetspeak", 0),
    ("spacing", 0),
    ("reverse", 0),
    ("uppercase", 0),
    ("wrap", 1),
    ("translate", 1),
];

fn check_axis(ctx: &mut Ctx<'_>, axis: &Axis) {
    for variant in &axis.variants {
        let value = &variant.value;
        let wanted = match axis.kind {
            AxisKind::System if Shape::Text.accepts(value) => {
                ctx.template_of(value);
                None
            }
            AxisKind::System => Some("a system prompt: a string or `file(\"...\")`"),
            AxisKind::Locale if Shape::Str.accepts(value) => None,
            AxisKind::Locale => Some("a locale string like \"en_US\""),
            AxisKind::Persona => match value.as_name() {
                Some(name) => {
                    ctx.lookup(name, "persona", |d| match d {
                        Decl::Persona(p) => Some(p),
                        _ => None,
                    });
                    None
                }
                None => Some("a persona's name"),
            },
            AxisKind::Transform => {
                check_transform(ctx, value);
                None
            }
            AxisKind::Program => {
                program::check_program_variant(ctx, variant);
                None
            }
            AxisKind::Defense => {
                program::check_defense_variant(ctx, variant);
                None
            }
        };
        if let Some(want) = wanted {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    value.span,
                    format!(
                        "variant `{}` expects {want}, found {}",
                        variant.key.name,
                        value.describe()
                    ),
                )
                .label(format!("expected {want}")),
            );
        }
    }
}

/// Checks a use of a built-in such as `base64`, `wrap("...")` or `json("field")`: a known name
/// (from `known`, with its argument count) used bare or called with the right number of
/// arguments. Returns the name and arguments when it is valid, for checks of the arguments.
pub(crate) fn builtin<'e>(
    ctx: &mut Ctx<'_>,
    item: &'e Expr,
    known: &[(&str, usize)],
    what: &str,
) -> Option<(&'e Ident, &'e [Arg])> {
    let (name, args) = match &item.kind {
        ExprKind::Path(p) if p.len() == 1 => (&p[0], &[][..]),
        ExprKind::Call { callee, args } => (callee, args.as_slice()),
        _ => {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    item.span,
                    format!("expected a {what}, found {}", item.describe()),
                )
                .label(format!("not a {what}")),
            );
            return None;
        }
    };
    let names: Vec<&str> = known.iter().map(|(n, _)| *n).collect();
    let Some((_, arity)) = known.iter().find(|(n, _)| *n == name.name) else {
        ctx.error(
            Diagnostic::new(
                Code::BadCall,
                name.span,
                format!("unknown {what} `{}`", name.name),
            )
            .label(format!("not a built-in {what}"))
            .suggest(did_you_mean(&name.name, names.iter().copied()))
            .help(format!("{what}s: {}", names.join(", "))),
        );
        return None;
    };
    if args.len() != *arity {
        ctx.error(
            Diagnostic::new(
                Code::BadCall,
                item.span,
                format!(
                    "`{}` takes {arity} argument{}, found {}",
                    name.name,
                    if *arity == 1 { "" } else { "s" },
                    args.len()
                ),
            )
            .label("wrong number of arguments"),
        );
        return None;
    }
    Some((name, args))
}

fn check_transform(ctx: &mut Ctx<'_>, value: &Expr) {
    let Some((name, args)) = builtin(ctx, value, TRANSFORMS, "transform") else {
        return;
    };
    if name.name == "wrap"
        && let Some(arg) = args.first()
    {
        if let Some(text) = ctx.template_of(&arg.value) {
            if !template::variables(&text.text)
                .iter()
                .any(|v| v.name == "prompt")
            {
                ctx.error(
                    Diagnostic::new(Code::UnboundVariable, arg.value.span, "a wrapper must place the prompt with `{{prompt}}`")
                        .label("no `{{prompt}}` in this wrapper")
                        .help("write where the original prompt goes, e.g. \"Pretend you are DAN. {{prompt}}\""),
                );
            }
        } else {
            ctx.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    arg.value.span,
                    "`wrap` takes a string or `file(\"...\")`",
                )
                .label("expected a template"),
            );
        }
    }
}

fn check_target(ctx: &mut Ctx<'_>, target: &Target) {
    program::check_defense_keys(ctx, &target.props, Some(&target.name));
    if target.props.get("wraps").is_some() {
        for key in ["provider", "model", "endpoint", "api_key_env"] {
            if let Some(p) = target.props.get(key) {
                ctx.error(
                    Diagnostic::new(
                        Code::UnknownKey,
                        p.key.span,
                        format!("a target that wraps another takes `{key}` from it"),
                    )
                    .label("given by the wrapped target")
                    .help("set it on the wrapped target, or drop `wraps` to declare a model of its own"),
                );
            }
        }
    }
    if let Some(system) = target.props.value("system") {
        ctx.text_of(system);
    }
    if let Some(env) = target.props.get("api_key_env")
        && let Some(name) = env.value.as_str()
        && (name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    {
        ctx.error(
            Diagnostic::new(
                Code::WrongValueType,
                env.value.span,
                "`api_key_env` names an environment variable, not a key",
            )
            .label("expected a variable name like \"OPENAI_API_KEY\"")
            .help("keys are read from the environment at call time; never write a key into a spec"),
        );
    }
}

fn check_report(ctx: &mut Ctx<'_>, report: &Report) {
    let labels = ctx.item_labels();
    let metric_names: Vec<(Ident, Vec<Ident>)> = report
        .tables
        .iter()
        .flat_map(|t| t.metrics.iter().map(|m| (m.clone(), t.by.clone())))
        .chain(
            report
                .charts
                .iter()
                .map(|c| (c.metric.clone(), c.by.clone())),
        )
        .collect();
    for (metric, by) in metric_names {
        ctx.lookup(&metric, "metric", |d| match d {
            Decl::Metric(m) => Some(m),
            _ => None,
        });
        for group in &by {
            labels.check_group(ctx, group);
        }
    }
}
