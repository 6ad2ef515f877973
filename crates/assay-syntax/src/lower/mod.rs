//! Lowering: pest pairs → typed AST. Each `lower_*` function takes the pair of one grammar rule
//! and returns its node; property bags are validated against `schema.rs` on the way, and every
//! problem becomes a diagnostic, never a panic. Pairs only reach these functions when the
//! grammar matched, so the shapes they unpack are the grammar's.

mod dataset;
mod decls;
mod expr;
pub use expr::MAX_EXPR_DEPTH;
mod judge;
mod props;
mod taxonomy;
mod template;

use crate::ast::*;
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::parser::Rule;
use crate::span::{FileId, Span};
use pest::iterators::Pair;

pub(crate) struct Lowerer {
    file: FileId,
    decls: Vec<Decl>,
    comments: Vec<Comment>,
    diagnostics: Vec<Diagnostic>,
    /// Declarations dropped for an error already reported (see [`Module::broken`]).
    broken: Vec<Ident>,
    /// The declaration being lowered has unreadable lines: skip missing-key errors.
    lenient: bool,
    /// Recursion depth of expression lowering.
    depth: usize,
    /// The declaration being lowered has an expression over the limits (reported once).
    too_deep: bool,
}

/// The children of a pair that carry meaning: comments and keyword tokens are skipped.
pub(super) fn inner(pair: Pair<'_, Rule>) -> impl Iterator<Item = Pair<'_, Rule>> {
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
            | kw_standard
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
            too_deep: false,
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

    pub(super) fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let s = pair.as_span();
        Span::new(self.file, s.start(), s.end())
    }

    /// The span of the keyword that opens `pair` (keywords are skipped by [`inner`]).
    pub(super) fn keyword_span(&self, pair: &Pair<'_, Rule>) -> Span {
        let first = pair.clone().into_inner().next();
        first.map_or_else(|| self.span(pair), |k| self.span(&k))
    }

    pub(super) fn error(&mut self, d: Diagnostic) {
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
        self.too_deep = false;
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
            Rule::standard_decl => Decl::Standard(self.lower_standard(pair)),
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
        // An expression too deep to keep was cut short: the declaration is dropped, and its
        // name remembered so that its uses raise no second error.
        if std::mem::take(&mut self.too_deep) {
            self.broken.extend(decl.name().cloned());
            return;
        }
        self.decls.push(decl);
    }

    pub(super) fn bad_items(&mut self, pair: Pair<'_, Rule>, text: &str) {
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
                // Only an unterminated `"""` or `/*` is reported on a span that starts so.
                let reported = &text[d.primary.span.range()];
                inside_open_text = reported.starts_with("\"\"\"") || reported.starts_with("/*");
                self.diagnostics.push(d);
            } else {
                self.bad_items(child, text);
            }
        }
    }

    pub(super) fn collect_comment(&mut self, pair: &Pair<'_, Rule>) {
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

    pub(super) fn ident(&self, pair: Pair<'_, Rule>) -> Ident {
        Ident {
            name: pair.as_str().to_string(),
            span: self.span(&pair),
        }
    }

    pub(super) fn string(&mut self, pair: Pair<'_, Rule>) -> StrLit {
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

    pub(super) fn unescape(&mut self, raw: &str, span: Span) -> String {
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

    pub(super) fn string_or_code(&mut self, pair: Pair<'_, Rule>) -> StrLit {
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

    pub(super) fn count(&mut self, pair: Pair<'_, Rule>) -> u64 {
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

    /// The names of a `by_clause` or a `name_list`.
    pub(super) fn name_list(&mut self, pair: Pair<'_, Rule>) -> Vec<Ident> {
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
}
