//! The formatter: one canonical layout for Assay sources.
//!
//! It works on tokens, not on the tree, so every comment stays exactly where it was written
//! and no construct can be lost. The author's line breaks are kept (they carry meaning: a
//! declaration starts on its own line); everything else is normalised:
//!
//! * indentation is two spaces per open `{`, `[` or `(`; a line starting with a closer is
//!   dedented;
//! * within a line, tokens are separated by one space, except around `.`, `::` and `..`,
//!   before `,` `;` `:` `)` `]`, after `(` `[`, and after a unary minus; a call keeps its
//!   name and `(` together as written;
//! * a comment after code is set off by two spaces; trailing spaces are dropped;
//! * at most one blank line in a row, none after an opening bracket or before a closing one,
//!   none at the start, and the file ends with one newline.
//!
//! Strings (plain and `"""` triple-quoted) and comments are copied byte for byte, so the
//! formatted file parses to the same tree; `format(format(x)) == format(x)`. A file the lexer
//! cannot read (an unterminated string or comment, a stray character) is refused, with the
//! byte offset; callers format only files that parse.

/// Why a source could not be formatted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FormatError {
    pub offset: usize,
    pub message: String,
}

impl std::fmt::Display for FormatError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (at byte {})", self.message, self.offset)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Word,
    Number,
    Str,
    LineComment,
    BlockComment,
    Punct,
}

#[derive(Clone, Debug)]
struct Token<'s> {
    kind: Kind,
    text: &'s str,
    /// Lines (0-based) of the token's first and last byte.
    line: usize,
    end_line: usize,
    /// Whether whitespace separated it from the previous token in the source.
    spaced: bool,
}

/// Punctuation, longest first.
const PUNCT: &[&str] = &[
    "::", "..", "->", "==", "!=", "<=", ">=", "{", "}", "[", "]", "(", ")", ",", ";", ":", "=",
    "<", ">", "+", "-", "*", "/", "^", ".", "|", "?",
];

fn lex(src: &str) -> Result<Vec<Token<'_>>, FormatError> {
    let bytes = src.as_bytes();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut line = 0;
    let mut spaced = false;
    let err = |offset: usize, message: &str| FormatError {
        offset,
        message: message.to_string(),
    };
    while i < bytes.len() {
        let rest = &src[i..];
        let c = rest.chars().next().expect("in bounds");
        if c == '\n' {
            line += 1;
            i += 1;
            spaced = true;
            continue;
        }
        if c.is_whitespace() || c == '\u{feff}' {
            i += c.len_utf8();
            spaced = true;
            continue;
        }
        let start = i;
        let kind;
        if rest.starts_with("//") {
            kind = Kind::LineComment;
            i += rest.find('\n').unwrap_or(rest.len());
        } else if let Some(body) = rest.strip_prefix("/*") {
            kind = Kind::BlockComment;
            let close = body
                .find("*/")
                .ok_or_else(|| err(start, "unterminated block comment"))?;
            i += 2 + close + 2;
        } else if let Some(body) = rest.strip_prefix("\"\"\"") {
            kind = Kind::Str;
            let close = body
                .find("\"\"\"")
                .ok_or_else(|| err(start, "unterminated triple-quoted string"))?;
            i += 3 + close + 3;
        } else if c == '"' {
            kind = Kind::Str;
            let mut j = i + 1;
            loop {
                match bytes.get(j) {
                    None | Some(b'\n') => return Err(err(start, "unterminated string")),
                    Some(b'\\') => j += 2,
                    Some(b'"') => break,
                    Some(_) => j += 1,
                }
            }
            i = j + 1;
        } else if c.is_ascii_digit() {
            kind = Kind::Number;
            let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            let mut j = i;
            while j < bytes.len() && bytes[j].is_ascii_digit() {
                j += 1;
            }
            if bytes.get(j) == Some(&b'.') && bytes.get(j + 1).is_some_and(u8::is_ascii_digit) {
                j += 1;
                while j < bytes.len() && bytes[j].is_ascii_digit() {
                    j += 1;
                }
            }
            // Exponents and codes that start with a digit (`1a`) stay one token.
            while j < bytes.len()
                && (word(bytes[j])
                    || (bytes[j] == b'+' || bytes[j] == b'-')
                        && matches!(bytes[j - 1], b'e' | b'E')
                        && bytes.get(j + 1).is_some_and(u8::is_ascii_digit))
            {
                j += 1;
            }
            i = j;
        } else if c.is_ascii_alphabetic() || c == '_' {
            kind = Kind::Word;
            let mut j = i;
            while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
                j += 1;
            }
            i = j;
        } else if let Some(p) = PUNCT.iter().find(|p| rest.starts_with(**p)) {
            kind = Kind::Punct;
            i += p.len();
        } else {
            return Err(err(start, &format!("unexpected character `{c}`")));
        }
        let text = &src[start..i];
        let end_line = line + text.matches('\n').count();
        tokens.push(Token {
            kind,
            text,
            line,
            end_line,
            spaced,
        });
        line = end_line;
        spaced = false;
    }
    Ok(tokens)
}

fn is_opener(t: &Token<'_>) -> bool {
    t.kind == Kind::Punct && matches!(t.text, "{" | "[" | "(")
}

fn is_closer(t: &Token<'_>) -> bool {
    t.kind == Kind::Punct && matches!(t.text, "}" | "]" | ")")
}

/// Keywords that take an expression: a `-` after them is a sign, a `(` or `[` after them opens
/// a group or a list (never a call or an index).
const SIGN_AFTER: &[&str] = &[
    "and", "or", "not", "in", "when", "where", "by", "sample", "seed",
];

/// Whether the `-` at `tokens[i]` is a unary minus.
fn is_unary_minus(tokens: &[Token<'_>], i: usize) -> bool {
    let before = tokens[..i]
        .iter()
        .rev()
        .find(|t| !matches!(t.kind, Kind::LineComment | Kind::BlockComment));
    match before {
        None => true,
        Some(t) => match t.kind {
            Kind::Punct => !matches!(t.text, ")" | "]" | "}"),
            Kind::Word => SIGN_AFTER.contains(&t.text),
            _ => false,
        },
    }
}

/// The space between two tokens on one line: `""` or `" "` (two before a trailing comment).
fn gap(tokens: &[Token<'_>], i: usize) -> &'static str {
    let (p, n) = (&tokens[i - 1], &tokens[i]);
    if n.kind == Kind::LineComment || n.kind == Kind::BlockComment {
        return "  ";
    }
    if n.kind == Kind::Punct {
        match n.text {
            // `?` marks a nullable column type: `score: float?`.
            "," | ";" | ")" | "]" | "." | ".." | "::" | ":" | "?" => return "",
            // A call or an index keeps its name and bracket as written.
            "(" | "[" if p.kind == Kind::Word && SIGN_AFTER.contains(&p.text) => return " ",
            "(" | "[" if matches!(p.kind, Kind::Word) || matches!(p.text, ")" | "]") => {
                return if n.spaced { " " } else { "" };
            }
            "}" if p.text == "{" => return "",
            _ => {}
        }
    }
    if p.kind == Kind::Punct {
        match p.text {
            "(" | "[" | "." | ".." | "::" => return "",
            "-" if is_unary_minus(tokens, i - 1) => return "",
            _ => {}
        }
    }
    if starts_item(tokens, i) {
        return "  ";
    }
    " "
}

/// Declaration keywords: a name after them is declared, not the start of an item.
const DECLARATION_WORDS: &[&str] = &[
    "suite", "use", "taxonomy", "mapping", "persona", "template", "dataset", "axis", "target",
    "program", "judge", "metric", "grade", "standard", "report", "band", "table", "chart",
];

/// Whether `tokens[i]` begins a second item on a line (`a = 1  b = 2`, `x in [..]  y in [..]`,
/// `id: string  prompt: string`): items sharing a line are set two spaces apart.
fn starts_item(tokens: &[Token<'_>], i: usize) -> bool {
    let (p, n) = (&tokens[i - 1], &tokens[i]);
    let Some(next) = tokens.get(i + 1).filter(|t| t.line == n.end_line) else {
        return false;
    };
    let opens_item = n.kind == Kind::Word
        && (next.kind == Kind::Punct && matches!(next.text, "=" | ":")
            || next.kind == Kind::Word && next.text == "in");
    let value_ends = match p.kind {
        Kind::Word => !SIGN_AFTER.contains(&p.text) && !DECLARATION_WORDS.contains(&p.text),
        Kind::Number | Kind::Str => true,
        Kind::Punct => matches!(p.text, ")" | "]" | "}" | "?"),
        Kind::LineComment | Kind::BlockComment => false,
    };
    opens_item && value_ends
}

/// Formats a source; see the module documentation for the layout.
pub fn format(src: &str) -> Result<String, FormatError> {
    let tokens = lex(src)?;
    let mut out = String::with_capacity(src.len() + src.len() / 8);
    let mut depth: usize = 0;
    let mut line_open = false;
    for i in 0..tokens.len() {
        let t = &tokens[i];
        let new_line = i == 0 || t.line > tokens[i - 1].end_line;
        if new_line {
            if i > 0 {
                out.push('\n');
                let prev = &tokens[i - 1];
                let blank = t.line - prev.end_line > 1;
                // No blank line after an opener or before a closer.
                if blank && !is_opener(prev) && !is_closer(t) {
                    out.push('\n');
                }
            }
            let leading_closers = tokens[i..]
                .iter()
                .take_while(|x| x.line == t.line && is_closer(x))
                .count();
            let indent = depth.saturating_sub(leading_closers);
            for _ in 0..indent {
                out.push_str("  ");
            }
            line_open = true;
        } else if line_open {
            out.push_str(gap(&tokens, i));
        }
        out.push_str(t.text);
        if is_opener(t) {
            depth += 1;
        } else if is_closer(t) {
            depth = depth.saturating_sub(1);
        }
    }
    if !out.is_empty() {
        out.push('\n');
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::format;

    #[test]
    fn normalises_indentation_spacing_and_blank_lines() {
        let src = "\n\n// lead\ntemplate t{\n\n      prompt=\"a  b\"   // keep\n  vars{x in[\"1\" ,\"2\"]}\n\n\n  generate product where x!=\"1\"and  - 1<2\n\n}\nmetric m = rate( j == unsafe ) by hazard , persona\n";
        let want = "// lead\ntemplate t {\n  prompt = \"a  b\"  // keep\n  vars { x in [\"1\", \"2\"] }\n\n  generate product where x != \"1\" and -1 < 2\n}\nmetric m = rate(j == unsafe) by hazard, persona\n";
        let got = format(src).unwrap();
        assert_eq!(got, want);
        assert_eq!(format(&got).unwrap(), got);
    }

    #[test]
    fn keeps_strings_comments_paths_and_codes_verbatim() {
        let src = "taxonomy t {\n1a \"One  A\" { definition = \"\"\"\n   kept\n      as is\"\"\" }\n}\nmetric m = 1 - a.b /* x  y */ * 2e-3\nuse std::a::b\naxis x: transform { r = wrap(\"{{prompt}}\") }\ngrade g { band A when value <= 0.5..1 }\n";
        let got = format(src).unwrap();
        assert!(
            got.contains("  1a \"One  A\" { definition = \"\"\"\n   kept\n      as is\"\"\" }\n")
        );
        assert!(got.contains("metric m = 1 - a.b  /* x  y */ * 2e-3\n"));
        assert!(got.contains("use std::a::b\n"));
        assert!(got.contains("axis x: transform { r = wrap(\"{{prompt}}\") }\n"));
        assert!(got.contains("0.5..1"));
        assert_eq!(format(&got).unwrap(), got);
    }

    #[test]
    fn items_sharing_a_line_are_two_spaces_apart() {
        let src = "persona p \"P\" { description = \"d\" attrs = { a = 1, b = 2 } }\ntemplate t { prompt = \"x\" hazard = h.a\n  vars { a in [1] b in [2] }\n  generate product where a in [1] and b in [2]\n}\ndataset d { columns { id: string prompt: string } }\naxis x: system { none = \"\" }\nmetric m = rate(j == u) by hazard\n";
        let want = "persona p \"P\" { description = \"d\"  attrs = { a = 1, b = 2 } }\ntemplate t { prompt = \"x\"  hazard = h.a\n  vars { a in [1]  b in [2] }\n  generate product where a in [1] and b in [2]\n}\ndataset d { columns { id: string  prompt: string } }\naxis x: system { none = \"\" }\nmetric m = rate(j == u) by hazard\n";
        assert_eq!(format(src).unwrap(), want);
    }

    #[test]
    fn refuses_what_it_cannot_lex() {
        assert_eq!(
            format("x = \"open\n").unwrap_err().message,
            "unterminated string"
        );
        assert_eq!(
            format("/* open").unwrap_err().message,
            "unterminated block comment"
        );
        assert_eq!(format("x = @").unwrap_err().offset, 4);
    }
}
