//! How deeply a handlebars template nests, bounded before anything renders it.
//!
//! Handlebars renders a block by calling itself: `{{#if}}` inside `{{#each}}` inside `{{#with}}`
//! is three frames deep, each `{{else if}}` of a chain one more (a chain is stored as blocks
//! nested in each other's `else`), and each subexpression `(helper (helper ...))` one more.
//! Expansion, judging and every run render templates, so a template's nesting is a recursion
//! depth that `assay check` must bound for `check` passing to mean that rendering works.
//!
//! Two counts, for two reasons:
//!
//! - [`scan`] reads the text before handlebars does. Handlebars' parser is recursive too
//!   (pest, guarded against running out of stack, but then failing with a message about its own
//!   limits), so a template that is plainly too deep is refused without parsing it, at the tag
//!   that goes too far. The scan follows handlebars' lexical rules (escapes, comments, raw
//!   blocks, strings); text it cannot read as handlebars does only makes it count more, never
//!   less, except for closing tags it takes for real, which is why it is not the only count.
//! - [`depth`] walks the template handlebars compiled, without recursion, and is exact: it is
//!   the tree the renderer will walk.

use handlebars::template::{Parameter, Template, TemplateElement};

/// Blocks, `{{else if}}` links and subexpressions may nest this deep.
pub(crate) const MAX_TEMPLATE_NESTING: usize = 64;

/// Where a template first nests deeper than [`MAX_TEMPLATE_NESTING`]: the byte range of the
/// tag or bracket that opens the level past it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TooDeep {
    pub start: usize,
    pub end: usize,
}

/// Reads the text as handlebars' lexer does and counts nesting; `Some` past the limit.
pub(crate) fn scan(text: &str) -> Option<TooDeep> {
    let b = text.as_bytes();
    // Each open block's levels: 1, plus one per `{{else if ...}}` link of its chain.
    let mut blocks: Vec<usize> = Vec::new();
    let mut depth = 0usize;
    let mut i = 0;
    while let Some(open) = find(b, i, b"{{") {
        let backslashes = b[..open].iter().rev().take_while(|&&c| c == b'\\').count();
        if backslashes == 1 {
            // `\{{` is text (and `\{{{{` too); its braces open nothing.
            i = open + if b[open..].starts_with(b"{{{{") { 4 } else { 2 };
            continue;
        }
        if b[open..].starts_with(b"{{{{") {
            // A raw block: `{{{{name}}}}` text `{{{{/name}}}}`; the text is never parsed. It
            // ends at the first `{{{{` that no backslash precedes, which is never before
            // handlebars ends it.
            let start_end = find(b, open + 4, b"}}}}")?;
            let mut at = start_end + 4;
            loop {
                match find(b, at, b"{{{{") {
                    Some(p) if p > 0 && b[p - 1] == b'\\' => at = p + 4,
                    Some(p) => {
                        i = find(b, p + 4, b"}}}}").map_or(b.len(), |e| e + 4);
                        break;
                    }
                    None => return None,
                }
            }
            continue;
        }
        if b[open..].starts_with(b"{{!") {
            // Comments: `{{!-- ... --}}`, else `{{! ... }}`.
            let end = if b[open..].starts_with(b"{{!--") {
                find(b, open + 5, b"--}}").map(|e| e + 4)
            } else {
                None
            };
            i = end
                .or_else(|| find(b, open + 3, b"}}").map(|e| e + 2))
                .unwrap_or(b.len());
            continue;
        }
        let mut j = open + 2;
        if b.get(j) == Some(&b'~') {
            j += 1;
        }
        let over = |depth: usize| depth > MAX_TEMPLATE_NESTING;
        match b.get(j) {
            Some(b'#') => {
                blocks.push(1);
                depth += 1;
                if over(depth) {
                    return Some(tag(b, open));
                }
            }
            Some(b'/') => {
                depth -= blocks.pop().unwrap_or(0);
            }
            _ => {
                let rest = &b[j..];
                let word = if rest.starts_with(b"else") {
                    4
                } else if rest.starts_with(b"^") {
                    1
                } else {
                    0
                };
                if word > 0 {
                    // `{{else}}` and `{{^}}` switch to the block's other branch; anything
                    // after the word (`{{else if b}}`) is one more link of a chain.
                    let chained = rest[word..]
                        .iter()
                        .find(|c| !c.is_ascii_whitespace())
                        .is_some_and(|&c| c != b'}' && c != b'~');
                    if chained {
                        depth += 1;
                        if let Some(top) = blocks.last_mut() {
                            *top += 1;
                        } else {
                            blocks.push(1);
                        }
                        if over(depth) {
                            return Some(tag(b, open));
                        }
                    }
                }
            }
        }
        // The tag's body: subexpressions and literals nest; strings may hold `}}`.
        let mut brackets = 0usize;
        let mut k = j;
        loop {
            match b.get(k) {
                None => return None,
                Some(b'"' | b'\'') => {
                    let quote = b[k];
                    k += 1;
                    while k < b.len() && b[k] != quote {
                        k += if b[k] == b'\\' { 2 } else { 1 };
                    }
                    k += 1;
                }
                Some(b'(' | b'[' | b'{') => {
                    brackets += 1;
                    if over(depth + brackets) {
                        return Some(TooDeep {
                            start: k,
                            end: k + 1,
                        });
                    }
                    k += 1;
                }
                Some(b')' | b']') => {
                    brackets = brackets.saturating_sub(1);
                    k += 1;
                }
                Some(b'}') if brackets > 0 => {
                    brackets -= 1;
                    k += 1;
                }
                Some(b'}') if b.get(k + 1) == Some(&b'}') => {
                    i = k + 2;
                    break;
                }
                Some(_) => k += 1,
            }
        }
    }
    None
}

/// The tag that starts at `open`, up to its `}}` (or the end of its line).
fn tag(b: &[u8], open: usize) -> TooDeep {
    let end = find(b, open, b"}}")
        .map(|e| e + 2)
        .into_iter()
        .chain(b[open..].iter().position(|&c| c == b'\n').map(|n| open + n))
        .min()
        .unwrap_or(b.len());
    TooDeep { start: open, end }
}

fn find(haystack: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    haystack
        .get(from..)?
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|p| from + p)
}

/// Where an element is: handlebars' `(line, column)`, when it recorded one.
type At = Option<(usize, usize)>;

/// The element of a compiled template where nesting first goes past the limit, as
/// handlebars' `(line, column)` of that element (both 1-based); `None` within the limit.
pub(crate) fn depth(template: &Template) -> Option<(usize, usize)> {
    // Templates to visit, with their depth and the position of the element that opened them.
    let mut pending: Vec<(&Template, usize, At)> = vec![(template, 0, None)];
    // Parameters to visit, with their depth and position.
    let mut params: Vec<(&Parameter, usize, At)> = Vec::new();
    while let Some((t, level, opened_at)) = pending.pop() {
        for (i, element) in t.elements.iter().enumerate() {
            // The links of an `else if` chain have no position of their own: their block's.
            let at = t.mapping.get(i).map(|m| (m.0, m.1)).or(opened_at);
            match element {
                TemplateElement::HelperBlock(h) => {
                    if level + 1 > MAX_TEMPLATE_NESTING {
                        return at.or(Some((1, 1)));
                    }
                    for inner in h.template.iter().chain(&h.inverse) {
                        pending.push((inner, level + 1, at));
                    }
                    params.extend(h.params.iter().map(|p| (p, level + 1, at)));
                    params.extend(h.hash.values().map(|p| (p, level + 1, at)));
                }
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h) => {
                    params.extend(h.params.iter().map(|p| (p, level, at)));
                    params.extend(h.hash.values().map(|p| (p, level, at)));
                }
                TemplateElement::DecoratorBlock(d) | TemplateElement::PartialBlock(d) => {
                    if level + 1 > MAX_TEMPLATE_NESTING {
                        return at.or(Some((1, 1)));
                    }
                    pending.extend(d.template.iter().map(|inner| (inner, level + 1, at)));
                    params.extend(d.params.iter().map(|p| (p, level + 1, at)));
                }
                TemplateElement::DecoratorExpression(d) | TemplateElement::PartialExpression(d) => {
                    params.extend(d.params.iter().map(|p| (p, level, at)));
                }
                // Text, comments, and any element a later handlebars adds (the enum is
                // non-exhaustive; the scan still counted its tags).
                _ => {}
            }
        }
        while let Some((p, level, at)) = params.pop() {
            let Parameter::Subexpression(sub) = p else {
                continue;
            };
            if level + 1 > MAX_TEMPLATE_NESTING {
                return at.or(Some((1, 1)));
            }
            if let TemplateElement::Expression(h) = sub.as_element() {
                params.extend(h.params.iter().map(|p| (p, level + 1, at)));
                params.extend(h.hash.values().map(|p| (p, level + 1, at)));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nested(n: usize) -> String {
        "{{#if x}}".repeat(n) + "hi" + &"{{/if}}".repeat(n)
    }

    fn compiled_depth(text: &str) -> Option<(usize, usize)> {
        depth(&Template::compile(text).expect("compiles"))
    }

    #[test]
    fn nesting_up_to_the_limit_passes_both_counts() {
        for text in [
            nested(MAX_TEMPLATE_NESTING),
            "{{#if a}}x{{/if}}".repeat(500),
            format!("{}{{{{x}}}}", "{{#each xs}}{{#with this}}".repeat(32))
                + &"{{/with}}{{/each}}".repeat(32),
            "{{#if a}}1{{else if b}}2{{else}}3{{/if}}".to_string(),
            "{{!-- {{#if a}} --}}{{! {{#if b}} }}\\{{#if c}}{{{{raw}}}}{{#if d}}{{{{/raw}}}}x"
                .to_string(),
            "{{lookup persona \"}}{{/if}}\"}} {{x.[a b]}} {{{y}}}".to_string(),
        ] {
            assert_eq!(scan(&text), None, "{text}");
            assert_eq!(compiled_depth(&text), None, "{text}");
        }
    }

    #[test]
    fn one_level_more_is_refused_at_its_tag() {
        let text = nested(MAX_TEMPLATE_NESTING + 1);
        let at = MAX_TEMPLATE_NESTING * "{{#if x}}".len();
        assert_eq!(
            scan(&text),
            Some(TooDeep {
                start: at,
                end: at + 9
            })
        );
        assert_eq!(compiled_depth(&text), Some((1, at + 1)));
    }

    #[test]
    fn else_if_chains_and_subexpressions_count() {
        let chain = "{{#if a}}".to_string() + &"x{{else if b}}".repeat(70) + "y{{/if}}";
        assert!(scan(&chain).is_some());
        assert!(compiled_depth(&chain).is_some());
        let sub = "{{len ".to_string() + &"(lookup ".repeat(70) + "a" + &")".repeat(70) + "}}";
        assert!(scan(&sub).is_some());
        assert!(compiled_depth(&sub).is_some());
    }

    #[test]
    fn the_compiled_count_catches_what_the_scan_is_told() {
        // A closing tag hidden where the scan takes it for real: the compiled tree is exact.
        let hidden = "{{#if a}}{{x.[}}}}{{/if}}]}}".repeat(70) + &"{{/if}}".repeat(70);
        assert_eq!(scan(&hidden), None);
        assert!(compiled_depth(&hidden).is_some());
    }

    #[test]
    fn thousands_of_levels_are_refused_before_parsing() {
        for n in [5_000, 100_000] {
            assert!(scan(&nested(n)).is_some());
            assert!(scan(&"{{#if x}}".repeat(n)).is_some());
            assert!(scan(&("{{x ".to_string() + &"[".repeat(n) + "}}")).is_some());
        }
    }
}
