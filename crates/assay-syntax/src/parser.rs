//! Parsing never fails: [`parse`] returns a module and diagnostics.
//!
//! The grammar recovers at two levels. `bad_item` swallows a line inside a block that is no
//! item of that block; `bad_decl` swallows a declaration that cannot be read at all, up to the
//! next top-level keyword at column 0. Each swallowed piece is parsed again on its own (with a
//! `probe_*` rule for the block it was in, or `single_decl`) to learn where and why it failed,
//! and that pest error is turned into words here: pest's rule names never reach a user.

use crate::ast::{Ident, Module};
use crate::code::Code;
use crate::diagnostic::Diagnostic;
use crate::lower::Lowerer;
use crate::span::{FileId, Span};
use pest::Parser as _;
use pest::error::{ErrorVariant, InputLocation};
use pest::iterators::Pair;

#[derive(pest_derive::Parser)]
#[grammar = "assay.pest"]
pub(crate) struct AssayParser;

/// Brackets may nest this deep; deeper input is refused before pest sees it, so that no input
/// can exhaust the stack.
pub const MAX_NESTING: usize = 64;

/// Parses one file. Always returns a module (possibly partial) and the diagnostics found.
pub fn parse(file: FileId, text: &str) -> (Module, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    if let Some(d) = check_nesting(file, text) {
        diagnostics.push(d);
        return (
            Module {
                file,
                ..Module::default()
            },
            diagnostics,
        );
    }
    let pairs = match AssayParser::parse(Rule::file, text) {
        Ok(pairs) => pairs,
        Err(e) => {
            // `file` accepts any input through `bad_decl`; this is a pest limit being hit.
            let at = match e.location {
                InputLocation::Pos(p) => p,
                InputLocation::Span((s, _)) => s,
            };
            diagnostics.push(
                Diagnostic::new(
                    Code::SyntaxError,
                    Span::new(file, at, at),
                    "the file could not be parsed",
                )
                .label("parsing stopped here"),
            );
            return (
                Module {
                    file,
                    ..Module::default()
                },
                diagnostics,
            );
        }
    };
    let mut lowerer = Lowerer::new(file);
    let mut broken = Vec::new();
    let file_pair = pairs
        .into_iter()
        .next()
        .expect("the file rule produces one pair");
    for pair in file_pair.into_inner() {
        match pair.as_rule() {
            Rule::bad_decl => {
                diagnostics.push(diagnose_chunk(file, text, &pair));
                if let Some(name) = declared_name(file, &pair) {
                    broken.push(name);
                }
            }
            Rule::EOI => {}
            _ => lowerer.decl(pair, text),
        }
    }
    let (mut module, mut lowered) = lowerer.finish();
    module.broken.append(&mut broken);
    diagnostics.append(&mut lowered);
    crate::diagnostic::finish_diagnostics(&mut diagnostics);
    (module, diagnostics)
}

/// Refuses input whose brackets nest deeper than [`MAX_NESTING`].
fn check_nesting(file: FileId, text: &str) -> Option<Diagnostic> {
    let mut depth = 0usize;
    let mut chars = text.char_indices().peekable();
    let mut in_string = false;
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => in_string = !in_string,
            '\\' if in_string => {
                chars.next();
            }
            '\n' => in_string = false,
            '/' if !in_string && chars.peek().map(|(_, c)| *c) == Some('/') => {
                while chars.peek().is_some_and(|(_, c)| *c != '\n') {
                    chars.next();
                }
            }
            '{' | '[' | '(' if !in_string => {
                depth += 1;
                if depth > MAX_NESTING {
                    return Some(
                        Diagnostic::new(
                            Code::TooDeep,
                            Span::new(file, i, i + 1),
                            format!("brackets nest more than {MAX_NESTING} levels deep"),
                        )
                        .label("too deep")
                        .help("flatten the structure; no spec needs this much nesting"),
                    );
                }
            }
            '}' | ']' | ')' if !in_string => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    None
}

/// Serialises detailed re-parses: pest's error-detail switch is process-wide.
static DETAIL: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// Parses a failed chunk with pest's attempt tracking on, which lists the literal tokens
/// expected ("expected `}`"). Tracking costs time, so it is on only for these re-parses; a
/// parse elsewhere that overlaps one merely tracks too, with the same result.
fn parse_with_detail(rule: Rule, chunk: &str) -> Result<(), pest::error::Error<Rule>> {
    let _guard = DETAIL
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pest::set_error_detail(true);
    let result = AssayParser::parse(rule, chunk).map(|_| ());
    pest::set_error_detail(false);
    result
}

/// Explains why one swallowed declaration does not parse.
fn diagnose_chunk(file: FileId, text: &str, chunk: &Pair<'_, Rule>) -> Diagnostic {
    diagnose(file, text, chunk, Rule::single_decl)
}

/// The rule that re-parses a block item swallowed by `bad_item` inside a `parent` block.
pub(crate) fn probe_for(parent: Rule) -> Rule {
    match parent {
        Rule::taxonomy_decl | Rule::category => Rule::probe_taxonomy,
        Rule::mapping_decl => Rule::probe_mapping,
        Rule::template_decl => Rule::probe_template,
        Rule::vars_block => Rule::probe_vars,
        Rule::dataset_decl => Rule::probe_dataset,
        Rule::columns_block => Rule::probe_columns,
        Rule::value_map => Rule::probe_values,
        Rule::program_decl => Rule::probe_program,
        Rule::judge_decl => Rule::probe_judge,
        Rule::grade_decl => Rule::probe_grade,
        Rule::report_decl => Rule::probe_report,
        _ => Rule::probe_property,
    }
}

/// What may stand where a whole `rule` was expected, in words.
fn what_fits(rule: Rule) -> &'static str {
    match rule {
        Rule::probe_taxonomy => "a property or a category `code \"Title\"`",
        Rule::probe_mapping => "a mapping rule `CODE -> CODE`",
        Rule::probe_template => "a property, `vars` or `generate`",
        Rule::probe_vars => "a variable binding `name in [...]`",
        Rule::probe_dataset => "a property, `columns`, `map` or `item`",
        Rule::probe_columns => "a column `name: type`",
        Rule::probe_values => "a value rule `\"value\" -> code`",
        Rule::probe_program => "a property, `user ...`, `attacker` or `stop when`",
        Rule::probe_judge => "a property or `aspects`",
        Rule::probe_grade => "a property or a `band`",
        Rule::probe_report => "a property, `table` or `chart`",
        Rule::probe_property => "a property `key = value`",
        _ => "a declaration",
    }
}

/// Explains why `chunk` does not parse as `rule`: a whole declaration (`single_decl`) or one
/// block item (`probe_*`).
pub(crate) fn diagnose(file: FileId, text: &str, chunk: &Pair<'_, Rule>, rule: Rule) -> Diagnostic {
    let start = chunk.as_span().start();
    let chunk_text = chunk.as_str();
    let is_item = rule != Rule::single_decl;
    let error = match parse_with_detail(rule, chunk_text) {
        // The chunk parses alone: it was cut short by a top-level keyword at column 0 (or a
        // `}`) that sits inside it. Report its start.
        Ok(()) => {
            return Diagnostic::new(
                Code::SyntaxError,
                Span::new(file, start, start + first_word(chunk_text).len()),
                if is_item { "this line could not be read" } else { "this declaration could not be read" },
            )
            .label("here")
            .help("indent nested lines: a line starting at column 0 with a declaration keyword begins a new declaration");
        }
        Err(e) => e,
    };
    let pos = match error.location {
        InputLocation::Pos(p) => p,
        InputLocation::Span((s, _)) => s,
    };
    let at = start + pos;

    if let Some(d) = unterminated(file, text, at).or_else(|| bad_escape(file, text, at)) {
        return d;
    }
    // A block left open right after a complete declaration (`metric m = x {`): the
    // declaration ended before it, and the block itself is what was never closed.
    if !is_item && pos == 0 && unclosed_opener(chunk_text) == Some(0) {
        let closer = closer_of(chunk_text.as_bytes()[0]);
        let end = start + chunk_text.trim_end().len();
        return Diagnostic::new(
            Code::UnclosedBlock,
            Span::new(file, end, end),
            format!("expected `{closer}` to close the block opened here"),
        )
        .label(format!("expected `{closer}`"))
        .secondary(Span::new(file, start, start + 1), "block opened here")
        .help(format!("add `{closer}` to close it"));
    }
    let rest_is_blank = is_blank(&chunk_text[pos..]);
    let mut expected = expected_words(&error);
    if is_item {
        // An item's text ends at its line: "end of file" there means "end of the line".
        for w in &mut expected {
            if w == "end of file" {
                *w = "the end of the line".to_string();
            }
        }
    }
    if expected.is_empty() {
        expected.push(what_fits(rule).to_string());
    }
    if let Some(opener) = unclosed_opener(&chunk_text[..pos]).filter(|_| !is_item) {
        let closer = closer_of(chunk_text.as_bytes()[opener]);
        let expects_closer = expected.iter().any(|w| w == &format!("`{closer}`"));
        if rest_is_blank || expects_closer && at_next_line_start(chunk_text, pos) {
            // Point just after the last thing written, where the closer belongs.
            let end = start + chunk_text[..pos].trim_end().len();
            let what = describe_opener(chunk_text, opener);
            return Diagnostic::new(
                Code::UnclosedBlock,
                Span::new(file, end, end),
                format!("expected `{closer}` to close {what} opened here"),
            )
            .label(format!("expected `{closer}`"))
            .secondary(
                Span::new(file, start + opener, start + opener + 1),
                format!("{what} opened here"),
            )
            .help(format!("add `{closer}` to close it"));
        }
    }

    let found = if is_item && chunk_text[pos..].trim().is_empty() {
        "the end of the line".to_string()
    } else {
        describe_found(&chunk_text[pos..], start + pos >= text.trim_end().len())
    };
    let len = found_len(&chunk_text[pos..]);
    let expected = join_words(&expected);
    let mut d = Diagnostic::new(
        Code::SyntaxError,
        Span::new(file, at, at + len),
        format!("expected {expected}, found {found}"),
    )
    .label(format!("expected {expected}"));
    if chunk_text[pos..].starts_with(|c: char| !c.is_ascii() && c.is_alphanumeric()) {
        d = d.help("names use ASCII letters, digits and `_`; other text goes in strings");
    } else if pos == 0 && !is_item {
        d = d.help(
            "a file is a list of declarations: suite, use, taxonomy, mapping, persona, template, \
             dataset, axis, target, program, judge, metric, grade, standard, report",
        );
    }
    d
}

/// The name a failed chunk declares, when its header gets that far: `judge guard: ...`.
fn declared_name(file: FileId, chunk: &Pair<'_, Rule>) -> Option<Ident> {
    const NAMED: &[&str] = &[
        "taxonomy", "mapping", "persona", "template", "dataset", "axis", "target", "program",
        "judge", "metric", "grade", "standard",
    ];
    let text = chunk.as_str();
    let keyword = first_word(text);
    if !NAMED.contains(&keyword) {
        return None;
    }
    let rest = &text[keyword.len()..];
    let offset = keyword.len() + (rest.len() - rest.trim_start().len());
    let name: String = rest
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let starts_well = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    if !starts_well {
        return None;
    }
    let start = chunk.as_span().start() + offset;
    Some(Ident {
        span: Span::new(file, start, start + name.len()),
        name,
    })
}

/// An unterminated string or block comment at `at`: a `"` whose string never closes on its
/// line, a `"""` never closed, or a `/*` without `*/`.
fn unterminated(file: FileId, text: &str, at: usize) -> Option<Diagnostic> {
    // pest may stop on the third quote of `"""` after reading `""` as an empty string.
    let triple_at = [at, at.saturating_sub(1), at.saturating_sub(2)]
        .into_iter()
        .find(|&i| text.get(i..).is_some_and(|r| r.starts_with("\"\"\"")) && i + 3 > at);
    if let Some(start) = triple_at {
        if text[start + 3..].contains("\"\"\"") {
            return None;
        }
        return Some(
            Diagnostic::new(
                Code::UnterminatedString,
                Span::new(file, start, start + 3),
                "unterminated string",
            )
            .label("this `\"\"\"` is never closed")
            .help("close the text with `\"\"\"`"),
        );
    }
    let rest = text.get(at..)?;
    if rest.starts_with("/*") {
        if rest.contains("*/") {
            return None;
        }
        return Some(
            Diagnostic::new(
                Code::SyntaxError,
                Span::new(file, at, at + 2),
                "unterminated block comment",
            )
            .label("this comment is never closed")
            .help("close it with `*/`"),
        );
    }
    if !rest.starts_with('"') {
        return None;
    }
    let line = rest.split('\n').next().unwrap_or(rest);
    let mut escaped = false;
    for c in line[1..].chars() {
        match c {
            '\\' if !escaped => escaped = true,
            '"' if !escaped => return None,
            _ => escaped = false,
        }
    }
    let end = at + line.trim_end_matches('\r').len();
    Some(
        Diagnostic::new(Code::UnterminatedString, Span::new(file, at, end), "unterminated string")
            .label("this string is never closed")
            .help("close it with `\"` on the same line, or use `\"\"\"...\"\"\"` for text that spans lines"),
    )
}

/// An invalid escape inside the string that starts at `at`.
fn bad_escape(file: FileId, text: &str, at: usize) -> Option<Diagnostic> {
    let rest = text.get(at..)?;
    if !rest.starts_with('"') || rest.starts_with("\"\"\"") {
        return None;
    }
    let line = rest.split('\n').next().unwrap_or(rest);
    let mut chars = line.char_indices().skip(1);
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return None,
            '\\' => {
                let after = &line[i + 1..];
                let valid = after.starts_with(['"', '\\', 'n', 't', 'r', '{', '}'])
                    || after.strip_prefix("u{").is_some_and(|hex| {
                        let digits = hex.find('}').unwrap_or(usize::MAX);
                        (1..=6).contains(&digits)
                            && hex[..digits].chars().all(|c| c.is_ascii_hexdigit())
                    });
                if !valid {
                    let len = 1 + after.chars().next().map_or(0, char::len_utf8);
                    return Some(
                        Diagnostic::new(
                            Code::SyntaxError,
                            Span::new(file, at + i, at + i + len),
                            format!("invalid escape `{}` in a string", &line[i..i + len]),
                        )
                        .label("not an escape")
                        .help("escapes are \\\" \\\\ \\n \\t \\r \\{ \\} and \\u{1F600}; `\"\"\"...\"\"\"` strings take none"),
                    );
                }
                chars.next();
            }
            _ => {}
        }
    }
    None
}

/// The innermost bracket opened in `prefix` and not closed, ignoring strings and comments.
fn unclosed_opener(prefix: &str) -> Option<usize> {
    let bytes = prefix.as_bytes();
    let mut stack = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' if prefix[i..].starts_with("\"\"\"") => {
                i = prefix[i + 3..]
                    .find("\"\"\"")
                    .map_or(bytes.len(), |j| i + 3 + j + 3);
                continue;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
            }
            b'/' if prefix[i..].starts_with("//") => {
                i = prefix[i..].find('\n').map_or(bytes.len(), |j| i + j);
                continue;
            }
            b'/' if prefix[i..].starts_with("/*") => {
                i = prefix[i + 2..]
                    .find("*/")
                    .map_or(bytes.len(), |j| i + 2 + j + 2);
                continue;
            }
            b'{' | b'[' | b'(' => stack.push(i),
            b'}' | b']' | b')' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    stack.pop()
}

fn closer_of(opener: u8) -> char {
    match opener {
        b'{' => '}',
        b'[' => ']',
        _ => ')',
    }
}

/// "taxonomy `harm`" for the declaration's own block, "`vars` of template `t`" for a nested one.
fn describe_opener(chunk: &str, opener: usize) -> String {
    let mut words = chunk
        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .filter(|w| !w.is_empty());
    let kind = words.next().unwrap_or("declaration");
    let header_end = chunk.find(['{', '[', '(']).unwrap_or(chunk.len());
    let name = name_in_header(&chunk[..header_end]);
    let decl = match name {
        Some(name) => format!("{kind} `{name}`"),
        None => kind.to_string(),
    };
    if opener == header_end {
        return decl;
    }
    let line_start = chunk[..opener].rfind('\n').map_or(0, |i| i + 1);
    let head = chunk[line_start..opener].trim();
    match head.split_whitespace().next() {
        Some(word) if !word.is_empty() => format!("`{word}` in {decl}"),
        _ => format!("the block in {decl}"),
    }
}

/// The declared name in a header such as `taxonomy harm "Title"` or `suite "sst"`.
fn name_in_header(header: &str) -> Option<String> {
    let rest = header
        .trim_start()
        .split_once(char::is_whitespace)?
        .1
        .trim_start();
    if let Some(quoted) = rest.strip_prefix('"') {
        return quoted.split('"').next().map(str::to_string);
    }
    let name: String = rest
        .chars()
        .take_while(|c| c.is_alphanumeric() || *c == '_')
        .collect();
    (!name.is_empty()).then_some(name)
}

/// The leading word of `text`, or its first character when it does not start with one.
fn first_word(text: &str) -> &str {
    let end = text
        .find(|c: char| !(c.is_alphanumeric() || c == '_'))
        .unwrap_or(text.len());
    let end = if end == 0 {
        text.chars().next().map_or(0, char::len_utf8)
    } else {
        end
    };
    &text[..end]
}

/// Whether `text` holds only whitespace and comments.
fn is_blank(text: &str) -> bool {
    let mut rest = text.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("//") {
            rest = r.find('\n').map_or("", |i| &r[i..]).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.find("*/").map_or("", |i| &r[i + 2..]).trim_start();
        } else {
            return rest.is_empty();
        }
    }
}

/// Whether everything between the last newline before `pos` and `pos` is whitespace.
fn at_next_line_start(chunk: &str, pos: usize) -> bool {
    chunk[..pos]
        .rfind('\n')
        .is_some_and(|nl| chunk[nl..pos].trim().is_empty())
}

fn describe_found(rest: &str, at_eof: bool) -> String {
    let rest = rest.trim_start();
    let Some(c) = rest.chars().next() else {
        return if at_eof {
            "end of file".into()
        } else {
            "the next declaration".into()
        };
    };
    if c == '"' {
        return "a string".into();
    }
    if c.is_ascii_digit() {
        return "a number".into();
    }
    if c.is_alphanumeric() || c == '_' {
        return format!("`{}`", first_word(rest));
    }
    format!("`{c}`")
}

fn found_len(rest: &str) -> usize {
    match rest.chars().next() {
        None => 0,
        Some(c) if c.is_alphanumeric() || c == '_' => first_word(rest).len(),
        Some(c) => c.len_utf8(),
    }
}

/// Infix operators: listed one by one they would drown the useful words.
const OPERATORS: &[&str] = &["==", "!=", "<", "<=", ">", ">=", "+", "*", "/", "^"];

/// Human words for what pest expected, most specific first, without repeats.
fn expected_words(error: &pest::error::Error<Rule>) -> Vec<String> {
    let mut words: Vec<(u8, String)> = Vec::new();
    let mut add = |rank: u8, w: String| {
        if !words.iter().any(|(_, x)| *x == w) {
            words.push((rank, w));
        }
    };
    if let ErrorVariant::ParsingError { positives, .. } = &error.variant {
        for rule in positives {
            if let Some((rank, w)) = rule_words(*rule) {
                add(rank, w.to_string());
            }
        }
    }
    if let Some(attempts) = error.parse_attempts() {
        for token in attempts.expected_tokens() {
            // `ParsingToken` is not exported; its Display is the literal text. Keywords are
            // covered by rule words, so keep punctuation only.
            let token = token.to_string();
            if !token.is_empty()
                && !token.contains("..")
                && !token
                    .chars()
                    .any(|c| c.is_alphanumeric() || c.is_whitespace() || c == '\u{feff}')
            {
                if OPERATORS.contains(&token.as_str()) {
                    add(3, "an operator".to_string());
                } else {
                    add(1, format!("`{token}`"));
                }
            }
        }
    }
    // Comment openers are always possible; quotes are covered by "a string" or "a value".
    // Where any value fits, `{` (a record) and `-` (a negative number) are values too.
    let has_value = words.iter().any(|(_, w)| w == "a value");
    // `(` and `[` after a name are a call or an index: noise unless nothing else fits.
    let alone = words.len() <= 1;
    words.retain(|(_, w)| {
        let noise = matches!(w.as_str(), "`/*`" | "`//`" | "`\"`" | "`\"\"\"`" | "`_`");
        let covered = has_value && matches!(w.as_str(), "`{`" | "`-`");
        let call_or_index = !alone && matches!(w.as_str(), "`(`" | "`[`");
        !(noise || covered || call_or_index)
    });
    // A `-` where no value fits is the infix minus.
    if let Some(minus) = words.iter().position(|(_, w)| w == "`-`") {
        words.remove(minus);
        if !words.iter().any(|(_, w)| w == "an operator") {
            words.push((3, "an operator".to_string()));
        }
    }
    words.sort_by_key(|(rank, _)| *rank);
    words.into_iter().map(|(_, w)| w).take(6).collect()
}

fn join_words(words: &[String]) -> String {
    match words {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} or {last}", init.join(", ")),
    }
}

/// What a rule means to a spec author, with a rank (lower first) for ordering.
fn rule_words(rule: Rule) -> Option<(u8, &'static str)> {
    use Rule::*;
    let w = match rule {
        property => (0, "a property `key = value`"),
        category => (0, "a category `code \"Title\"`"),
        mapping_rule => (0, "a mapping rule `CODE -> CODE`"),
        var_binding => (0, "a variable binding `name in [...]`"),
        column => (0, "a column `name: type`"),
        value_rule => (0, "a value rule `\"value\" -> code`"),
        turn | turn_role => (0, "`user` or `assistant`"),
        band => (0, "`band`"),
        table => (0, "`table`"),
        chart => (0, "`chart`"),
        generate | kw_generate => (0, "`generate`"),
        vars_block | kw_vars => (0, "`vars`"),
        attacker_block | kw_attacker => (0, "`attacker`"),
        stop_clause | kw_stop => (0, "`stop`"),
        aspects_block | kw_aspects => (0, "`aspects`"),
        columns_block | kw_columns => (0, "`columns`"),
        value_map | kw_map => (0, "`map`"),
        item_block | kw_item => (0, "`item`"),
        where_clause | kw_where => (2, "`where`"),
        by_clause | kw_by => (2, "`by`"),
        sample_clause | kw_sample => (2, "`sample`"),
        kw_seed => (2, "`seed`"),
        kw_version => (2, "`version`"),
        kw_from => (0, "`from`"),
        kw_to => (1, "`to`"),
        kw_in => (0, "`in`"),
        kw_when => (0, "`when`"),
        kw_otherwise => (0, "`otherwise`"),
        generator => (0, "a generator (`product` or `zip`)"),
        suite_decl | use_decl | taxonomy_decl | mapping_decl | persona_decl | template_decl
        | dataset_decl | axis_decl | target_decl | program_decl | judge_decl | metric_decl
        | grade_decl | standard_decl | report_decl | top_keyword | kw_suite | kw_use
        | kw_taxonomy | kw_mapping | kw_persona | kw_template | kw_dataset | kw_axis
        | kw_target | kw_program | kw_judge | kw_metric | kw_grade | kw_standard | kw_report => {
            (0, "a declaration")
        }
        ident | path | code | name_list | list_name | column_name => (1, "a name"),
        module_path => (1, "a module path like `std::personas::v05`"),
        string | plain_string | triple_string => (1, "a string"),
        number | range => (1, "a number"),
        expr | list | record | call | boolean | op_neg | op_not => (1, "a value"),
        op_or | op_and | op_eq | op_ne | op_le | op_ge | op_lt | op_gt | op_in | op_add
        | op_sub | op_mul | op_div | op_pow => (3, "an operator"),
        prop_block | use_names => (1, "`{`"),
        code_list => (1, "`[`"),
        EOI => (4, "end of file"),
        _ => return None,
    };
    Some(w)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Rule names that could leak into a message: the snake_case and upper-case ones (plain
    /// words such as `string` or `property` are fine in prose).
    fn rule_names() -> Vec<String> {
        Rule::all_rules()
            .iter()
            .map(|r| format!("{r:?}"))
            .filter(|n| n.contains('_') || n.chars().all(|c| c.is_ascii_uppercase()))
            .collect()
    }

    fn assert_human(text: &str) {
        let names = rule_names();
        let (_, diagnostics) = parse(FileId(0), text);
        for d in diagnostics {
            let words = [
                d.message.as_str(),
                d.primary.message.as_str(),
                d.help.as_deref().unwrap_or(""),
            ];
            for name in &names {
                for w in words {
                    let leaked = w
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .any(|token| token == name);
                    assert!(!leaked, "rule name `{name}` in {w:?} for input {text:?}");
                }
            }
        }
    }

    #[test]
    fn hand_picked_errors_speak_in_words() {
        for text in [
            "taxonomy",
            "taxonomy t",
            "taxonomy t {",
            "taxonomy t { a }",
            "mapping m from a to",
            "mapping m from a to b { x => y }",
            "template t { vars { x [1] } }",
            "template t { generate everything }",
            "dataset d { columns { a string } }",
            "dataset d { map c to { \"x\" y } }",
            "program p { user }",
            "judge j: llm { aspects [a] }",
            "metric m = ",
            "metric m = rate(",
            "metric m = a by",
            "grade g { band }",
            "report { table }",
            "suite",
            "use",
            "use std::",
            "@",
        ] {
            assert_human(text);
        }
    }

    proptest! {
        #[test]
        fn random_errors_speak_in_words(text in "[a-z{}()\\[\\]=:,\"<>!.\\- \n]{0,60}") {
            assert_human(&text);
        }
    }
}
