//! Lowering: pest pairs → typed AST. Each `lower_*` function takes the pair of one grammar rule
//! and returns its node; property bags are validated against `schema.rs` on the way, and every
//! problem becomes a diagnostic, never a panic. Pairs only reach these functions when the
//! grammar matched, so the shapes they unpack are the grammar's.

use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::parser::Rule;
use crate::schema::{self, Schema};
use crate::span::{FileId, Span};
use pest::iterators::Pair;

/// Expressions may nest this deep (prefix chains and `^` chains included).
const MAX_EXPR_DEPTH: usize = 128;

/// Words accepted by keys that take one name from a fixed list.
const KNOWN_WORDS: &[(&str, &[&str])] = &[
    (
        "provider",
        &[
            "openai",
            "anthropic",
            "ollama",
            "openai_compatible",
            "huggingface",
            "vllm",
        ],
    ),
    ("ci", &["wilson", "clopper_pearson", "bootstrap", "none"]),
    ("pooling", &["items", "groups"]),
    ("overall", &["pooled", "worst"]),
    ("format", &["csv", "jsonl", "yaml", "llama_guard"]),
    ("from", &["text", "logprobs"]),
    ("rule", &["majority", "any", "all", "weighted", "jury"]),
    ("reduce", &["mean", "median"]),
    ("role", &["prompt", "response"]),
];

/// Bounds of numeric keys, inclusive: a value outside is meaningless to every provider or
/// statistic that reads it.
const RANGES: &[(&str, f64, f64)] = &[
    ("temperature", 0.0, 2.0),
    ("top_p", 0.0, 1.0),
    ("max_tokens", 1.0, f64::INFINITY),
    ("rate_limit", f64::MIN_POSITIVE, f64::INFINITY),
    ("concurrency", 1.0, f64::INFINITY),
    ("timeout", f64::MIN_POSITIVE, f64::INFINITY),
    ("confidence", f64::MIN_POSITIVE, 1.0 - f64::EPSILON),
    ("min_valid", 1.0, f64::INFINITY),
    ("max_turns", 1.0, f64::INFINITY),
    ("bootstrap", 1.0, f64::INFINITY),
];

pub(crate) struct Lowerer {
    file: FileId,
    decls: Vec<Decl>,
    comments: Vec<Comment>,
    diagnostics: Vec<Diagnostic>,
    /// Declarations dropped for an error already reported (see [`Module::broken`]).
    broken: Vec<Ident>,
    /// The declaration being lowered has unreadable lines: skip missing-key errors.
    lenient: bool,
    depth: usize,
}

/// The children of a pair that carry meaning: comments and keyword tokens are skipped.
fn inner(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
    pair.into_inner().filter(|p| !is_noise(p.as_rule()))
}

fn is_noise(rule: Rule) -> bool {
    use Rule::*;
    matches!(
        rule,
        COMMENT
            | bad_item
            | kw_suite
            | kw_version
            | kw_use
            | kw_taxonomy
            | kw_mapping
            | kw_from
            | kw_to
            | kw_persona
            | kw_template
            | kw_vars
            | kw_in
            | kw_generate
            | kw_where
            | kw_sample
            | kw_seed
            | kw_dataset
            | kw_columns
            | kw_map
            | kw_item
            | kw_axis
            | kw_target
            | kw_program
            | kw_attacker
            | kw_stop
            | kw_when
            | kw_judge
            | kw_aspects
            | kw_metric
            | kw_by
            | kw_grade
            | kw_band
            | kw_otherwise
            | kw_report
            | kw_table
            | kw_chart
    )
}

impl Lowerer {
    pub(crate) fn new(file: FileId) -> Self {
        Lowerer {
            file,
            decls: Vec::new(),
            comments: Vec::new(),
            diagnostics: Vec::new(),
            broken: Vec::new(),
            lenient: false,
            depth: 0,
        }
    }

    pub(crate) fn finish(self) -> (Module, Vec<Diagnostic>) {
        (
            Module {
                file: self.file,
                decls: self.decls,
                comments: self.comments,
                broken: self.broken,
            },
            self.diagnostics,
        )
    }

    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    /// The span of the keyword that opens `pair` (keywords are skipped by [`inner`]).
    fn keyword_span(&self, pair: &Pair<'_, Rule>) -> Span {
        let first = pair.clone().into_inner().next();
        first.map_or_else(|| self.span(pair), |k| self.span(&k))
    }

    fn error(&mut self, d: Diagnostic) {
        self.diagnostics.push(d);
    }

    /// Lowers one top-level pair: a declaration or a comment between declarations.
    pub(crate) fn decl(&mut self, pair: Pair<'_, Rule>, text: &str) {
        for p in pair.clone().into_inner().flatten() {
            self.collect_comment(&p);
        }
        // Lines that no block could read were swallowed by `bad_item`; report each. The
        // declaration is still lowered, without missing-key errors its broken lines may cause.
        let before = self.diagnostics.len();
        self.bad_items(pair.clone(), text);
        self.lenient = self.diagnostics.len() > before;
        let decl = match pair.as_rule() {
            Rule::COMMENT => return,
            Rule::suite_decl => Decl::Suite(self.lower_suite(pair)),
            Rule::use_decl => Decl::Use(self.lower_use(pair)),
            Rule::taxonomy_decl => Decl::Taxonomy(self.lower_taxonomy(pair)),
            Rule::mapping_decl => Decl::Mapping(self.lower_mapping(pair)),
            Rule::persona_decl => Decl::Persona(self.lower_persona(pair)),
            Rule::template_decl => Decl::Template(self.lower_template(pair)),
            Rule::dataset_decl => Decl::Dataset(self.lower_dataset(pair)),
            Rule::axis_decl => match self.lower_axis(pair) {
                Some(axis) => Decl::Axis(axis),
                None => return,
            },
            Rule::target_decl => Decl::Target(self.lower_target(pair)),
            Rule::program_decl => Decl::Program(self.lower_program(pair)),
            Rule::judge_decl => match self.lower_judge(pair) {
                Some(judge) => Decl::Judge(judge),
                None => return,
            },
            Rule::metric_decl => Decl::Metric(self.lower_metric(pair)),
            Rule::grade_decl => Decl::Grade(self.lower_grade(pair)),
            Rule::report_decl => Decl::Report(self.lower_report(pair)),
            _ => return,
        };
        self.decls.push(decl);
    }

    fn bad_items(&mut self, pair: Pair<'_, Rule>, text: &str) {
        let parent = pair.as_rule();
        // After a `"""` or `/*` that never closes, the block's later lines are its text: they
        // are not reported one by one.
        let mut inside_open_text = false;
        for child in pair.into_inner() {
            if child.as_rule() == Rule::bad_item {
                if inside_open_text {
                    continue;
                }
                let d = crate::parser::diagnose(
                    self.file,
                    text,
                    &child,
                    crate::parser::probe_for(parent),
                );
                inside_open_text = d.message.starts_with("unterminated")
                    && (d.message.contains("comment")
                        || text[d.primary.span.range()].starts_with("\"\"\""));
                self.diagnostics.push(d);
            } else {
                self.bad_items(child, text);
            }
        }
    }

    fn collect_comment(&mut self, pair: &Pair<'_, Rule>) {
        let kind = match pair.as_rule() {
            Rule::line_comment => CommentKind::Line,
            Rule::block_comment => CommentKind::Block,
            _ => return,
        };
        self.comments.push(Comment {
            kind,
            text: pair.as_str().to_string(),
            span: self.span(pair),
        });
    }

    // ---- leaves -------------------------------------------------------------------------

    fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    fn string(&mut self, pair: Pair<'_, Rule>) -> StrLit {
        let span = self.span(&pair);
        // string → plain_string(plain_inner) | triple_string(triple_inner)
        let quoted = pair.into_inner().next();
        let content = quoted.and_then(|q| q.into_inner().next());
        let value = match content {
            Some(c) if c.as_rule() == Rule::triple_inner => c.as_str().to_string(),
            Some(c) => self.unescape(c.as_str(), span),
            None => String::new(),
        };
        StrLit { value, span }
    }

    fn unescape(&mut self, raw: &str, span: Span) -> String {
        let mut out = String::with_capacity(raw.len());
        let mut chars = raw.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some('r') => out.push('\r'),
                Some('u') => {
                    let hex: String = chars.by_ref().skip(1).take_while(|c| *c != '}').collect();
                    match u32::from_str_radix(&hex, 16).ok().and_then(char::from_u32) {
                        Some(ch) => out.push(ch),
                        None => self.error(
                            Diagnostic::new(
                                Code::SyntaxError,
                                span,
                                format!("`\\u{{{hex}}}` is not a Unicode character"),
                            )
                            .label("invalid escape in this string")
                            .help("use a code point between 0 and 10FFFF, outside D800-DFFF"),
                        ),
                    }
                }
                Some(other) => out.push(other),
                None => {}
            }
        }
        out
    }

    fn string_or_code(&mut self, pair: Pair<'_, Rule>) -> StrLit {
        match pair.as_rule() {
            Rule::string => self.string(pair),
            Rule::column_name => {
                let child = inner(pair).next().expect("column_name has one child");
                self.string_or_code(child)
            }
            _ => StrLit {
                value: pair.as_str().to_string(),
                span: self.span(&pair),
            },
        }
    }

    fn count(&mut self, pair: Pair<'_, Rule>) -> u64 {
        let span = self.span(&pair);
        match pair.as_str().parse::<u64>() {
            Ok(n) => n,
            Err(_) => {
                self.error(
                    Diagnostic::new(Code::WrongValueType, span, "expected a whole number")
                        .label("not a whole number that fits in 64 bits"),
                );
                0
            }
        }
    }

    // ---- expressions --------------------------------------------------------------------

    fn expr(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let items: Vec<Pair<'_, Rule>> = inner(pair).collect();
        let mut pos = 0;
        self.depth += 1;
        let e = if self.depth > MAX_EXPR_DEPTH {
            self.error(
                Diagnostic::new(Code::SyntaxError, span, "expression nests too deeply")
                    .label("too deep")
                    .help(format!(
                        "expressions may nest at most {MAX_EXPR_DEPTH} levels"
                    )),
            );
            Expr {
                kind: ExprKind::Number(0.0),
                span,
            }
        } else {
            self.climb(&items, &mut pos, 0)
        };
        self.depth -= 1;
        e
    }

    /// Precedence climbing over the flat `prefix* primary postfix* (infix ...)*` sequence.
    fn climb(&mut self, items: &[Pair<'_, Rule>], pos: &mut usize, min_prec: u8) -> Expr {
        let mut lhs = self.unary(items, pos);
        while let Some(op) = items.get(*pos).and_then(|p| binary_op(p.as_rule())) {
            let prec = precedence(op);
            if prec < min_prec {
                break;
            }
            *pos += 1;
            let next = if op == BinaryOp::Pow { prec } else { prec + 1 };
            self.depth += 1;
            let rhs = if self.depth > MAX_EXPR_DEPTH {
                self.depth -= 1;
                self.error(
                    Diagnostic::new(
                        Code::SyntaxError,
                        self.span(&items[*pos - 1]),
                        "expression nests too deeply",
                    )
                    .label("too deep")
                    .help(format!(
                        "expressions may nest at most {MAX_EXPR_DEPTH} levels"
                    )),
                );
                *pos = items.len();
                break;
            } else {
                self.climb(items, pos, next)
            };
            self.depth -= 1;
            let span = lhs.span.to(rhs.span);
            lhs = Expr {
                kind: ExprKind::Binary {
                    op,
                    lhs: Box::new(lhs),
                    rhs: Box::new(rhs),
                },
                span,
            };
        }
        lhs
    }

    fn unary(&mut self, items: &[Pair<'_, Rule>], pos: &mut usize) -> Expr {
        let mut prefixes = Vec::new();
        while let Some(p) = items.get(*pos) {
            let op = match p.as_rule() {
                Rule::op_neg => UnaryOp::Neg,
                Rule::op_not => UnaryOp::Not,
                _ => break,
            };
            prefixes.push((op, self.span(p)));
            *pos += 1;
        }
        if prefixes.len() > MAX_EXPR_DEPTH {
            let span = prefixes[0].1;
            self.error(
                Diagnostic::new(
                    Code::SyntaxError,
                    span,
                    "too many prefix operators in a row",
                )
                .label("here"),
            );
            prefixes.truncate(1);
        }
        let Some(primary) = items.get(*pos).cloned() else {
            let span = prefixes.last().map(|(_, s)| *s).unwrap_or_default();
            return Expr {
                kind: ExprKind::Number(0.0),
                span,
            };
        };
        *pos += 1;
        let mut e = self.primary(primary);
        while let Some(p) = items.get(*pos).filter(|p| p.as_rule() == Rule::index) {
            let span = e.span.to(self.span(p));
            let index = inner(p.clone()).next().map(|x| self.expr(x));
            *pos += 1;
            if let Some(index) = index {
                e = Expr {
                    kind: ExprKind::Index {
                        base: Box::new(e),
                        index: Box::new(index),
                    },
                    span,
                };
            }
        }
        for (op, span) in prefixes.into_iter().rev() {
            let span = span.to(e.span);
            e = Expr {
                kind: ExprKind::Unary {
                    op,
                    operand: Box::new(e),
                },
                span,
            };
        }
        e
    }

    fn primary(&mut self, pair: Pair<'_, Rule>) -> Expr {
        let span = self.span(&pair);
        let kind = match pair.as_rule() {
            Rule::expr => return self.expr(pair),
            Rule::string => ExprKind::Str(self.string(pair).value),
            Rule::number => ExprKind::Number(pair.as_str().parse().unwrap_or(f64::NAN)),
            Rule::boolean => ExprKind::Bool(pair.as_str() == "true"),
            Rule::path => ExprKind::Path(inner(pair).map(|p| self.ident(p)).collect()),
            Rule::list => ExprKind::List(inner(pair).map(|p| self.expr(p)).collect()),
            Rule::record => ExprKind::Record(self.properties(pair)),
            Rule::range => {
                let mut nums = inner(pair).map(|p| p.as_str().parse::<f64>().unwrap_or(f64::NAN));
                ExprKind::Range {
                    start: nums.next().unwrap_or(0.0),
                    end: nums.next().unwrap_or(0.0),
                }
            }
            Rule::call => {
                let mut parts = inner(pair);
                let callee = self.ident(parts.next().expect("call starts with a name"));
                let args = parts
                    .map(|arg| {
                        let mut a = inner(arg).collect::<Vec<_>>();
                        let value = self.expr(a.pop().expect("arg has a value"));
                        let name = a.pop().map(|n| self.ident(n));
                        Arg { name, value }
                    })
                    .collect();
                ExprKind::Call { callee, args }
            }
            _ => ExprKind::Number(0.0),
        };
        Expr { kind, span }
    }

    // ---- property bags ------------------------------------------------------------------

    fn property(&mut self, pair: Pair<'_, Rule>) -> Property {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let key = self.ident(parts.next().expect("property has a key"));
        let value = self.expr(parts.next().expect("property has a value"));
        Property { key, value, span }
    }

    /// The properties directly inside `pair` (a `prop_block`, `record` or declaration).
    fn properties(&mut self, pair: Pair<'_, Rule>) -> Vec<Property> {
        let props: Vec<Property> = inner(pair)
            .filter(|p| p.as_rule() == Rule::property)
            .map(|p| self.property(p))
            .collect();
        self.reject_duplicates(props)
    }

    fn reject_duplicates(&mut self, props: Vec<Property>) -> Vec<Property> {
        let mut out: Vec<Property> = Vec::with_capacity(props.len());
        for p in props {
            if let Some(first) = out.iter().find(|q| q.key.name == p.key.name) {
                let first = first.key.span;
                self.error(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        p.key.span,
                        format!("`{}` is given twice", p.key.name),
                    )
                    .label("given again here")
                    .secondary(first, "first given here")
                    .help("keep one of the two"),
                );
            } else {
                out.push(p);
            }
        }
        out
    }

    /// Checks `props` against `schema` for the block called `owner`.
    fn validate(&mut self, schema: &Schema, props: Vec<Property>, owner: &Ident) -> Props {
        let mut kept = Vec::with_capacity(props.len());
        let mut mistyped = Vec::new();
        for p in props {
            let Some(key) = schema.key(&p.key.name) else {
                let known = schema.keys.iter().map(|k| k.name);
                let suggestion = did_you_mean(&p.key.name, known);
                let d = Diagnostic::new(
                    Code::UnknownKey,
                    p.key.span,
                    format!(
                        "unknown key `{}` in {} `{}`",
                        p.key.name, schema.what, owner.name
                    ),
                )
                .label("not a key of this block");
                let d = match suggestion {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!(
                        "{} accepts: {}",
                        schema.what,
                        schema
                            .keys
                            .iter()
                            .map(|k| format!("`{}`", k.name))
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                };
                self.error(d);
                continue;
            };
            if !key.shape.accepts(&p.value) {
                self.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        p.value.span,
                        format!(
                            "`{}` expects {}, found {}",
                            key.name,
                            key.shape.describe(),
                            p.value.describe()
                        ),
                    )
                    .label(format!("expected {}", key.shape.describe()))
                    .help(key.doc),
                );
                mistyped.push(p.key.name.clone());
                continue;
            }
            if let Some(word) = p.value.as_name() {
                self.check_word(key.name, word);
            }
            if !self.in_range(&p) {
                continue;
            }
            if key.shape == schema::Shape::Names {
                self.check_name_list(&p);
            }
            kept.push(p);
        }
        let missing: Vec<&str> = schema
            .keys
            .iter()
            .filter(|k| k.required)
            .filter(|k| !kept.iter().any(|p: &Property| p.key.name == k.name))
            .filter(|k| !mistyped.iter().any(|m| m == k.name))
            .map(|k| k.name)
            .collect();
        if !missing.is_empty() {
            self.missing(schema.what, owner, &missing);
        }
        Props(kept)
    }

    fn missing(&mut self, what: &str, owner: &Ident, missing: &[&str]) {
        if self.lenient {
            return;
        }
        let list = missing
            .iter()
            .map(|k| format!("`{k}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let first = missing.first().copied().unwrap_or_default();
        self.error(
            Diagnostic::new(
                Code::MissingKey,
                owner.span,
                format!("{what} `{}` is missing {list}", owner.name),
            )
            .label(format!("needs {list}"))
            .help(format!("add `{first} = ...` to the block")),
        );
    }

    /// Reports a number outside its key's range (see [`RANGES`]).
    fn in_range(&mut self, p: &Property) -> bool {
        let (Some(n), Some((_, min, max))) = (
            p.value.as_number(),
            RANGES.iter().find(|(k, _, _)| *k == p.key.name),
        ) else {
            return true;
        };
        if n >= *min && n <= *max {
            return true;
        }
        let bound = match (*min, *max) {
            (min, max) if max.is_infinite() && min == f64::MIN_POSITIVE => "above 0".to_string(),
            (min, max) if max.is_infinite() => format!("at least {min}"),
            (min, max) if min == f64::MIN_POSITIVE => format!("above 0 and below {}", max.ceil()),
            (min, max) => format!("between {min} and {max}"),
        };
        self.error(
            Diagnostic::new(
                Code::WrongValueType,
                p.value.span,
                format!("`{}` must be {bound}, found {n}", p.key.name),
            )
            .label("out of range"),
        );
        false
    }

    /// A list of names (labels, members, axes) must not be empty nor repeat a name.
    fn check_name_list(&mut self, p: &Property) {
        let ExprKind::List(items) = &p.value.kind else {
            return;
        };
        if items.is_empty() {
            self.error(
                Diagnostic::new(
                    Code::WrongValueType,
                    p.value.span,
                    format!("`{}` is empty", p.key.name),
                )
                .label("expected at least one name"),
            );
        }
        let names: Vec<&Ident> = items.iter().filter_map(Expr::as_name).collect();
        self.reject_repeats(&names);
    }

    /// Reports each name that repeats an earlier one in the same list.
    fn reject_repeats(&mut self, names: &[&Ident]) {
        for (i, name) in names.iter().enumerate() {
            if let Some(first) = names[..i].iter().find(|n| n.name == name.name) {
                let first = first.span;
                self.error(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        name.span,
                        format!("`{}` is listed twice", name.name),
                    )
                    .label("listed again here")
                    .secondary(first, "first listed here"),
                );
            }
        }
    }

    fn check_word(&mut self, key: &str, word: &Ident) {
        let Some((_, words)) = KNOWN_WORDS.iter().find(|(k, _)| *k == key) else {
            return;
        };
        if !words.contains(&word.name.as_str()) {
            self.unknown_word(word, &format!("`{key}`"), words);
        }
    }

    fn unknown_word(&mut self, word: &Ident, what: &str, words: &[&str]) {
        let suggestion = did_you_mean(&word.name, words.iter().copied());
        let list = words
            .iter()
            .map(|w| format!("`{w}`"))
            .collect::<Vec<_>>()
            .join(", ");
        let d = Diagnostic::new(
            Code::UnknownKind,
            word.span,
            format!("unknown {what} `{}`", word.name),
        )
        .label(format!("expected one of {list}"));
        let d = match suggestion {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!("use one of {list}")),
        };
        self.error(d);
    }

    // ---- declarations -------------------------------------------------------------------

    fn lower_suite(&mut self, pair: Pair<'_, Rule>) -> Suite {
        let span = self.span(&pair);
        let mut name = None;
        let mut version = None;
        let mut props = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::string if name.is_none() => name = Some(self.string(p)),
                Rule::string => version = Some(self.string(p)),
                Rule::prop_block => props = self.properties(p),
                _ => {}
            }
        }
        let name = name.expect("suite has a name");
        let owner = Ident {
            name: name.value.clone(),
            span: name.span,
        };
        let props = self.validate(&schema::SUITE, props, &owner);
        Suite {
            name,
            version,
            props,
            span,
        }
    }

    fn lower_use(&mut self, pair: Pair<'_, Rule>) -> Use {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let source_pair = parts.next().expect("use has a source");
        let source_span = self.span(&source_pair);
        let source = match source_pair.as_rule() {
            Rule::string => ImportSource::File(self.string(source_pair)),
            _ => {
                let mut segments: Vec<Ident> = inner(source_pair).map(|p| self.ident(p)).collect();
                let head = segments.remove(0);
                if head.name == "std" {
                    ImportSource::Std(segments)
                } else {
                    ImportSource::Package {
                        package: head,
                        path: segments,
                    }
                }
            }
        };
        let names = parts
            .next()
            .map(|names| inner(names).map(|p| self.ident(p)).collect())
            .unwrap_or_default();
        Use {
            source,
            source_span,
            names,
            span,
        }
    }

    fn lower_taxonomy(&mut self, pair: Pair<'_, Rule>) -> Taxonomy {
        let span = self.span(&pair);
        let mut parts = inner(pair).peekable();
        let name = self.ident(parts.next().expect("taxonomy has a name"));
        let title = match parts.peek().map(Pair::as_rule) {
            Some(Rule::string) => parts.next().map(|p| self.string(p)),
            _ => None,
        };
        let (props, categories) = self.taxonomy_body(parts);
        let props = self.validate(&schema::TAXONOMY, props, &name);
        Taxonomy {
            name,
            title,
            props,
            categories,
            span,
        }
    }

    fn taxonomy_body<'i>(
        &mut self,
        parts: impl Iterator<Item = Pair<'i, Rule>>,
    ) -> (Vec<Property>, Vec<Category>) {
        let mut props = Vec::new();
        let mut categories = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::category => categories.push(self.lower_category(p)),
                _ => {}
            }
        }
        (self.reject_duplicates(props), categories)
    }

    fn lower_category(&mut self, pair: Pair<'_, Rule>) -> Category {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let code = self.ident(parts.next().expect("category has a code"));
        let title = self.string(parts.next().expect("category has a title"));
        let (props, children) = self.taxonomy_body(parts);
        let props = self.validate(&schema::CATEGORY, props, &code);
        Category {
            code,
            title,
            props,
            children,
            span,
        }
    }

    fn lower_mapping(&mut self, pair: Pair<'_, Rule>) -> Mapping {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("mapping has a name"));
        let from = self.ident(parts.next().expect("mapping has a source"));
        let to = self.ident(parts.next().expect("mapping has a target"));
        let rules = parts
            .map(|rule| {
                let span = self.span(&rule);
                let mut r = inner(rule);
                let source = self.ident(r.next().expect("rule has a source"));
                let target = r.next().expect("rule has a target");
                let targets = match target.as_rule() {
                    Rule::code_list => inner(target).map(|p| self.ident(p)).collect(),
                    _ if target.as_str() == "none" => Vec::new(),
                    _ => vec![self.ident(target)],
                };
                MappingRule {
                    source,
                    targets,
                    span,
                }
            })
            .collect();
        Mapping {
            name,
            from,
            to,
            rules,
            span,
        }
    }

    fn lower_persona(&mut self, pair: Pair<'_, Rule>) -> Persona {
        let span = self.span(&pair);
        let mut name = None;
        let mut title = None;
        let mut props = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::string => title = Some(self.string(p)),
                Rule::prop_block => props = self.properties(p),
                _ => {}
            }
        }
        let name = name.expect("persona has a name");
        let props = self.validate(&schema::PERSONA, props, &name);
        Persona {
            name,
            title,
            props,
            span,
        }
    }

    fn lower_template(&mut self, pair: Pair<'_, Rule>) -> Template {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("template has a name"));
        let mut props = Vec::new();
        let mut vars = Vec::new();
        let mut generate = None;
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::vars_block => {
                    for binding in inner(p) {
                        let span = self.span(&binding);
                        let mut b = inner(binding);
                        let var = self.ident(b.next().expect("binding has a name"));
                        let domain = self.expr(b.next().expect("binding has a domain"));
                        if let Some(first) =
                            vars.iter().find(|v: &&VarBinding| v.name.name == var.name)
                        {
                            let first = first.name.span;
                            self.error(
                                Diagnostic::new(
                                    Code::DuplicateDefinition,
                                    var.span,
                                    format!("variable `{}` is bound twice", var.name),
                                )
                                .label("bound again here")
                                .secondary(first, "first bound here"),
                            );
                            continue;
                        }
                        vars.push(VarBinding {
                            name: var,
                            domain,
                            span,
                        });
                    }
                }
                Rule::generate => {
                    if let Some(g) = self.lower_generate(p) {
                        generate = Some(g);
                    }
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::TEMPLATE, props, &name);
        Template {
            name,
            props,
            vars,
            generate,
            span,
        }
    }

    fn lower_generate(&mut self, pair: Pair<'_, Rule>) -> Option<Generate> {
        let span = self.span(&pair);
        let mut generator = None;
        let mut filter = None;
        let mut sample = None;
        for p in inner(pair) {
            match p.as_rule() {
                Rule::generator => {
                    let word = self.ident(p);
                    generator = match word.name.as_str() {
                        "product" => Some(Generator::Product),
                        "zip" => Some(Generator::Zip),
                        _ => {
                            self.unknown_word(&word, "generator", &["product", "zip"]);
                            return None;
                        }
                    };
                }
                Rule::where_clause => filter = inner(p).next().map(|e| self.expr(e)),
                Rule::sample_clause => {
                    let s = self.span(&p);
                    let mut nums = inner(p);
                    let count = nums.next().map(|n| self.count(n)).unwrap_or(0);
                    if count == 0 {
                        self.error(
                            Diagnostic::new(
                                Code::WrongValueType,
                                s,
                                "`sample` needs at least one item",
                            )
                            .label("sample 0 yields nothing")
                            .help("write `sample N` with N of 1 or more, or drop the clause"),
                        );
                    }
                    let seed = nums.next().map(|n| self.count(n));
                    sample = Some(Sample {
                        count,
                        seed,
                        span: s,
                    });
                }
                _ => {}
            }
        }
        Some(Generate {
            generator: generator?,
            filter,
            sample,
            span,
        })
    }

    fn lower_dataset(&mut self, pair: Pair<'_, Rule>) -> Dataset {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("dataset has a name"));
        let mut props = Vec::new();
        let mut columns: Vec<Column> = Vec::new();
        let mut value_maps = Vec::new();
        let mut item = None;
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::columns_block => {
                    for col in inner(p) {
                        let span = self.span(&col);
                        let mut c = inner(col);
                        let cname = self.string_or_code(c.next().expect("column has a name"));
                        let ty_word = self.ident(c.next().expect("column has a type"));
                        let ty = match ty_word.name.as_str() {
                            "string" => ColumnType::String,
                            "int" => ColumnType::Int,
                            "float" => ColumnType::Float,
                            "bool" => ColumnType::Bool,
                            _ => {
                                self.unknown_word(
                                    &ty_word,
                                    "column type",
                                    &["string", "int", "float", "bool"],
                                );
                                continue;
                            }
                        };
                        if let Some(first) = columns.iter().find(|c| c.name.value == cname.value) {
                            let first = first.name.span;
                            self.error(
                                Diagnostic::new(
                                    Code::DuplicateKey,
                                    cname.span,
                                    format!("column `{}` is declared twice", cname.value),
                                )
                                .label("declared again here")
                                .secondary(first, "first declared here"),
                            );
                            continue;
                        }
                        columns.push(Column {
                            name: cname,
                            ty,
                            span,
                        });
                    }
                }
                Rule::value_map => value_maps.push(self.lower_value_map(p)),
                Rule::item_block => {
                    let block = inner(p).next().expect("item has a block");
                    let item_props = self.properties(block);
                    let owner = Ident {
                        name: name.name.clone(),
                        span: name.span,
                    };
                    let validated = self.validate(&schema::DATASET_ITEM, item_props, &owner);
                    if validated.get("prompt").is_none() && validated.get("turns").is_none() {
                        self.missing("dataset item of", &owner, &["prompt"]);
                    }
                    item = Some(validated);
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::DATASET, props, &name);
        if props.get("path").is_none() && props.get("url").is_none() && !self.lenient {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("dataset `{}` needs a `path` or a `url`", name.name),
                )
                .label("no source")
                .help("add `path = \"data/file.csv\"`, or `url = \"...\"` with `sha256 = \"...\"`"),
            );
        }
        if item.is_none() {
            self.missing("dataset", &name, &["item"]);
        }
        Dataset {
            name,
            props,
            columns,
            value_maps,
            item,
            span,
        }
    }

    fn lower_value_map(&mut self, pair: Pair<'_, Rule>) -> ValueMap {
        let span = self.span(&pair);
        let mut parts = inner(pair).peekable();
        let column = self.string_or_code(parts.next().expect("map names a column"));
        let taxonomy = match parts.peek().map(Pair::as_rule) {
            Some(Rule::ident) => parts.next().map(|p| self.ident(p)),
            _ => None,
        };
        let mut rules: Vec<ValueRule> = Vec::new();
        for rule in parts {
            let span = self.span(&rule);
            let mut r = inner(rule);
            let from = self.string_or_code(r.next().expect("rule has a source"));
            let to = self.expr(r.next().expect("rule has a target"));
            if let Some(first) = rules.iter().find(|r| r.from.value == from.value) {
                let first = first.from.span;
                self.error(
                    Diagnostic::new(
                        Code::DuplicateKey,
                        from.span,
                        format!("value \"{}\" is mapped twice", from.value),
                    )
                    .label("mapped again here")
                    .secondary(first, "first mapped here"),
                );
                continue;
            }
            rules.push(ValueRule { from, to, span });
        }
        ValueMap {
            column,
            taxonomy,
            rules,
            span,
        }
    }

    fn lower_axis(&mut self, pair: Pair<'_, Rule>) -> Option<Axis> {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("axis has a name"));
        let kind_word = self.ident(parts.next().expect("axis has a kind"));
        let variants = self.properties(parts.next().expect("axis has variants"));
        let kind = match kind_word.name.as_str() {
            "system" => AxisKind::System,
            "transform" => AxisKind::Transform,
            "locale" => AxisKind::Locale,
            "persona" => AxisKind::Persona,
            _ => {
                self.unknown_word(
                    &kind_word,
                    "axis kind",
                    &["system", "transform", "locale", "persona"],
                );
                self.broken.push(name);
                return None;
            }
        };
        if variants.is_empty() && !self.lenient {
            self.error(
                Diagnostic::new(
                    Code::MissingKey,
                    name.span,
                    format!("axis `{}` has no variants", name.name),
                )
                .label("empty axis")
                .help("add variants as `name = value`"),
            );
        }
        Some(Axis {
            name,
            kind,
            variants,
            span,
        })
    }

    fn lower_target(&mut self, pair: Pair<'_, Rule>) -> Target {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("target has a name"));
        let props = self.properties(parts.next().expect("target has a block"));
        let props = self.validate(&schema::TARGET, props, &name);
        Target { name, props, span }
    }

    fn lower_program(&mut self, pair: Pair<'_, Rule>) -> Program {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("program has a name"));
        let mut props = Vec::new();
        let mut turns = Vec::new();
        let mut attacker = None;
        let mut stops = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::turn => {
                    let span = self.span(&p);
                    let mut t = inner(p);
                    let role = match t.next().map(|r| r.as_str().to_string()).as_deref() {
                        Some("assistant") => Role::Assistant,
                        _ => Role::User,
                    };
                    let content = self.expr(t.next().expect("turn has content"));
                    turns.push(Turn {
                        role,
                        content,
                        span,
                    });
                }
                Rule::attacker_block => {
                    let block = inner(p).next().expect("attacker has a block");
                    let attacker_props = self.properties(block);
                    let owner = name.clone();
                    attacker = Some(self.validate(&schema::ATTACKER, attacker_props, &owner));
                }
                Rule::stop_clause => {
                    if let Some(e) = inner(p).next() {
                        stops.push(self.expr(e));
                    }
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::PROGRAM, props, &name);
        Program {
            name,
            props,
            turns,
            attacker,
            stops,
            span,
        }
    }

    fn lower_judge(&mut self, pair: Pair<'_, Rule>) -> Option<Judge> {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("judge has a name"));
        let kind_word = self.ident(parts.next().expect("judge has a kind"));
        let mut props = Vec::new();
        let mut aspects = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::aspects_block => {
                    let block = inner(p).next().expect("aspects has a block");
                    aspects = self.properties(block);
                }
                _ => {}
            }
        }
        let Some(kind) = JudgeKind::ALL
            .iter()
            .find(|(w, _)| *w == kind_word.name)
            .map(|(_, k)| *k)
        else {
            let words: Vec<&str> = JudgeKind::ALL.iter().map(|(w, _)| *w).collect();
            self.unknown_word(&kind_word, "judge kind", &words);
            self.broken.push(name);
            return None;
        };
        for aspect in &aspects {
            if !schema::Shape::Names.accepts(&aspect.value) {
                self.error(
                    Diagnostic::new(
                        Code::WrongValueType,
                        aspect.value.span,
                        format!(
                            "aspect `{}` expects a list of labels, found {}",
                            aspect.key.name,
                            aspect.value.describe()
                        ),
                    )
                    .label("expected a list of names, like `[yes, no]`"),
                );
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(schema::judge_schema(kind), props, &name);
        if kind == JudgeKind::Llm && props.get("labels").is_none() && aspects.is_empty() {
            self.missing("llm judge", &name, &["labels"]);
        }
        Some(Judge {
            name,
            kind,
            props,
            aspects,
            span,
        })
    }

    fn lower_metric(&mut self, pair: Pair<'_, Rule>) -> Metric {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("metric has a name"));
        let expr = self.expr(parts.next().expect("metric has an expression"));
        let mut filter = None;
        let mut group_by = Vec::new();
        let mut props = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::where_clause => filter = inner(p).next().map(|e| self.expr(e)),
                Rule::by_clause => {
                    group_by = self.name_list(p);
                    self.reject_repeats(&group_by.iter().collect::<Vec<_>>());
                }
                Rule::prop_block => props = self.properties(p),
                _ => {}
            }
        }
        let props = self.validate(&schema::METRIC, props, &name);
        Metric {
            name,
            expr,
            filter,
            group_by,
            props,
            span,
        }
    }

    /// The names of a `by_clause` or a `name_list`.
    fn name_list(&mut self, pair: Pair<'_, Rule>) -> Vec<Ident> {
        if pair.as_rule() == Rule::by_clause && inner(pair.clone()).next().is_none() {
            self.error(
                Diagnostic::new(
                    Code::SyntaxError,
                    self.keyword_span(&pair),
                    "expected a name after `by`",
                )
                .label("`by` needs at least one label or axis")
                .help("write `by hazard` or `by hazard, persona`"),
            );
            return Vec::new();
        }
        let mut out = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::ident | Rule::list_name => out.push(self.ident(p)),
                _ => out.extend(self.name_list(p)),
            }
        }
        out
    }

    fn lower_grade(&mut self, pair: Pair<'_, Rule>) -> Grade {
        let span = self.span(&pair);
        let mut parts = inner(pair);
        let name = self.ident(parts.next().expect("grade has a name"));
        let mut props = Vec::new();
        let mut bands = Vec::new();
        for p in parts {
            match p.as_rule() {
                Rule::property => props.push(self.property(p)),
                Rule::band => {
                    let span = self.span(&p);
                    let mut b = inner(p);
                    let band_name = self.string_or_code(b.next().expect("band has a name"));
                    let condition = b.next().map(|e| self.expr(e));
                    bands.push(Band {
                        name: band_name,
                        condition,
                        span,
                    });
                }
                _ => {}
            }
        }
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::GRADE, props, &name);
        if bands.is_empty() {
            self.missing("grade", &name, &["band"]);
        }
        Grade {
            name,
            props,
            bands,
            span,
        }
    }

    fn lower_report(&mut self, pair: Pair<'_, Rule>) -> Report {
        let span = self.span(&pair);
        let mut name = None;
        let mut props = Vec::new();
        let mut tables = Vec::new();
        let mut charts = Vec::new();
        for p in inner(pair) {
            match p.as_rule() {
                Rule::ident => name = Some(self.ident(p)),
                Rule::property => props.push(self.property(p)),
                Rule::table => {
                    let span = self.span(&p);
                    let mut metrics = Vec::new();
                    let mut by = Vec::new();
                    for t in inner(p) {
                        match t.as_rule() {
                            Rule::name_list => metrics = self.name_list(t),
                            Rule::by_clause => by = self.name_list(t),
                            _ => {}
                        }
                    }
                    tables.push(Table { metrics, by, span });
                }
                Rule::chart => {
                    let span = self.span(&p);
                    let mut c = inner(p);
                    let kind = self.ident(c.next().expect("chart has a kind"));
                    let metric = self.ident(c.next().expect("chart has a metric"));
                    let by = c.next().map(|b| self.name_list(b)).unwrap_or_default();
                    if !["bar", "line", "heatmap", "scatter"].contains(&kind.name.as_str()) {
                        self.unknown_word(
                            &kind,
                            "chart kind",
                            &["bar", "line", "heatmap", "scatter"],
                        );
                    }
                    charts.push(Chart {
                        kind,
                        metric,
                        by,
                        span,
                    });
                }
                _ => {}
            }
        }
        let owner = name.clone().unwrap_or(Ident {
            name: "report".into(),
            span,
        });
        let props = self.reject_duplicates(props);
        let props = self.validate(&schema::REPORT, props, &owner);
        Report {
            name,
            props,
            tables,
            charts,
            span,
        }
    }
}

fn binary_op(rule: Rule) -> Option<BinaryOp> {
    Some(match rule {
        Rule::op_or => BinaryOp::Or,
        Rule::op_and => BinaryOp::And,
        Rule::op_eq => BinaryOp::Eq,
        Rule::op_ne => BinaryOp::Ne,
        Rule::op_lt => BinaryOp::Lt,
        Rule::op_le => BinaryOp::Le,
        Rule::op_gt => BinaryOp::Gt,
        Rule::op_ge => BinaryOp::Ge,
        Rule::op_in => BinaryOp::In,
        Rule::op_add => BinaryOp::Add,
        Rule::op_sub => BinaryOp::Sub,
        Rule::op_mul => BinaryOp::Mul,
        Rule::op_div => BinaryOp::Div,
        Rule::op_pow => BinaryOp::Pow,
        _ => return None,
    })
}

fn precedence(op: BinaryOp) -> u8 {
    match op {
        BinaryOp::Or => 1,
        BinaryOp::And => 2,
        BinaryOp::Eq
        | BinaryOp::Ne
        | BinaryOp::Lt
        | BinaryOp::Le
        | BinaryOp::Gt
        | BinaryOp::Ge
        | BinaryOp::In => 3,
        BinaryOp::Add | BinaryOp::Sub => 4,
        BinaryOp::Mul | BinaryOp::Div => 5,
        BinaryOp::Pow => 6,
    }
}
