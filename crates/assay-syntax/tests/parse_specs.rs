//! Parser behaviour: the typed tree, comments, precedence and recovery.

use assay_syntax::ast::{BinaryOp, CommentKind, Decl, ExprKind, UnaryOp};
use assay_syntax::{Code, FileId, parse};

#[test]
fn sst_spec_parses_cleanly() {
    let text = include_str!("../../../specs/simple-safety-tests.assay");
    let (module, diags) = parse(FileId(0), text);
    assert!(diags.is_empty(), "{diags:#?}");
    let kinds: Vec<&str> = module.decls.iter().map(Decl::kind_name).collect();
    assert_eq!(
        kinds,
        [
            "suite", "taxonomy", "dataset", "axis", "target", "judge", "judge", "metric", "metric",
            "report"
        ]
    );
}

#[test]
fn comments_are_kept_with_spans() {
    let text = "// header\ntaxonomy t { /* inline */ a \"A\" // trailing\n}\n";
    let (module, diags) = parse(FileId(3), text);
    assert!(diags.is_empty(), "{diags:#?}");
    let comments: Vec<(CommentKind, &str)> = module
        .comments
        .iter()
        .map(|c| (c.kind, &text[c.span.range()]))
        .collect();
    assert_eq!(
        comments,
        [
            (CommentKind::Line, "// header"),
            (CommentKind::Block, "/* inline */"),
            (CommentKind::Line, "// trailing")
        ]
    );
    assert!(
        module
            .comments
            .iter()
            .all(|c| c.span.file == FileId(3) && c.text == text[c.span.range()])
    );
}

#[test]
fn every_node_span_covers_its_text() {
    let text = "metric m = rate(guard == unsafe) where expect == refuse by hazard, persona";
    let (module, diags) = parse(FileId(0), text);
    assert!(diags.is_empty(), "{diags:#?}");
    let Decl::Metric(m) = &module.decls[0] else {
        panic!()
    };
    assert_eq!(&text[m.span.range()], text);
    assert_eq!(&text[m.name.span.range()], "m");
    assert_eq!(&text[m.expr.span.range()], "rate(guard == unsafe)");
    assert_eq!(
        &text[m.filter.as_ref().unwrap().span.range()],
        "expect == refuse"
    );
    let groups: Vec<&str> = m.group_by.iter().map(|g| &text[g.span.range()]).collect();
    assert_eq!(groups, ["hazard", "persona"]);
}

fn metric_expr(source: &str) -> assay_syntax::ast::Expr {
    let (module, diags) = parse(FileId(0), &format!("metric m = {source}"));
    assert!(diags.is_empty(), "{diags:#?}");
    let Decl::Metric(m) = module.decls.into_iter().next().unwrap() else {
        panic!()
    };
    m.expr
}

/// Renders an expression fully parenthesised.
fn show(e: &assay_syntax::ast::Expr) -> String {
    match &e.kind {
        ExprKind::Number(n) => n.to_string(),
        ExprKind::Path(p) => p
            .iter()
            .map(|i| i.name.as_str())
            .collect::<Vec<_>>()
            .join("."),
        ExprKind::Binary { op, lhs, rhs } => {
            format!("({} {} {})", show(lhs), op.as_str(), show(rhs))
        }
        ExprKind::Unary {
            op: UnaryOp::Neg,
            operand,
        } => format!("-{}", show(operand)),
        ExprKind::Unary {
            op: UnaryOp::Not,
            operand,
        } => format!("not {}", show(operand)),
        ExprKind::Call { callee, args } => {
            format!(
                "{}({})",
                callee.name,
                args.iter()
                    .map(|a| show(&a.value))
                    .collect::<Vec<_>>()
                    .join(", ")
            )
        }
        other => format!("{other:?}"),
    }
}

#[test]
fn operators_follow_precedence() {
    assert_eq!(
        show(&metric_expr("1 + 2 * 3 ^ 2 ^ 2")),
        "(1 + (2 * (3 ^ (2 ^ 2))))"
    );
    assert_eq!(
        show(&metric_expr("a == b and c != d or e")),
        "(((a == b) and (c != d)) or e)"
    );
    assert_eq!(
        show(&metric_expr("(1 - a) * (1 + l * b) / (1 + l)")),
        "(((1 - a) * (1 + (l * b))) / (1 + l))"
    );
    assert_eq!(show(&metric_expr("-x - -1")), "(-x - -1)");
    assert_eq!(show(&metric_expr("a - b - c")), "((a - b) - c)");
    assert_eq!(
        show(&metric_expr("not guard == safe")),
        "not (guard == safe)"
    );
    assert_eq!(
        show(&metric_expr("not a and b or not c")),
        "((not a and b) or not c)"
    );
    assert_eq!(
        show(&metric_expr("a == b and not c != d")),
        "((a == b) and not (c != d))"
    );
    assert_eq!(show(&metric_expr("-x + 1")), "(-x + 1)");
    let ExprKind::Binary { op, .. } = metric_expr("guard in [unsafe, controversial]").kind else {
        panic!()
    };
    assert_eq!(op, BinaryOp::In);
}

#[test]
fn one_bad_declaration_does_not_hide_the_others() {
    let text = "target a { provider = openai model = = \"x\" }\n\
                judge j: keywords { patterns = [\"no\"] labels = [x] }\n\
                metric broken = rate(\n\
                metric fine = rate(j == x)\n";
    let (module, diags) = parse(FileId(0), text);
    let names: Vec<&str> = module
        .decls
        .iter()
        .filter_map(|d| d.name())
        .map(|n| n.name.as_str())
        .collect();
    // The target keeps its readable lines; only the broken metric is lost.
    assert_eq!(names, ["a", "j", "fine"]);
    let codes: Vec<Code> = diags.iter().map(|d| d.code).collect();
    assert_eq!(codes, [Code::SyntaxError, Code::UnclosedBlock]);
    assert_eq!(
        diags[1].message,
        "expected `)` to close metric `broken` opened here"
    );
}

#[test]
fn every_bad_line_of_a_block_is_reported_and_the_block_survives() {
    let text = "target t {\n  provider = openai\n  model = = \"x\"\n  temperature 0\n  seed = 1\n}\n\
                taxonomy harm {\n  vcr \"Violent\"\n  ncr Non-violent\n  src \"Sex crimes\"\n}\n";
    let (module, diags) = parse(FileId(0), text);
    let found: Vec<(Code, &str, &str)> = diags
        .iter()
        .map(|d| (d.code, d.message.as_str(), &text[d.primary.span.range()]))
        .collect();
    assert_eq!(
        found,
        [
            (Code::SyntaxError, "expected a value, found `=`", "="),
            (Code::SyntaxError, "expected `=`, found a number", "0"),
            (
                Code::SyntaxError,
                "expected a string or `=`, found `Non`",
                "Non"
            ),
        ]
    );
    // No "missing `model`" cascade; the readable properties and categories are kept.
    let Decl::Target(t) = &module.decls[0] else {
        panic!()
    };
    assert_eq!(
        t.props
            .iter()
            .map(|p| p.key.name.as_str())
            .collect::<Vec<_>>(),
        ["provider", "seed"]
    );
    let Decl::Taxonomy(harm) = &module.decls[1] else {
        panic!()
    };
    let codes: Vec<&str> = harm
        .categories
        .iter()
        .map(|c| c.code.name.as_str())
        .collect();
    assert_eq!(codes, ["vcr", "src"]);
}

#[test]
fn unclosed_nested_block_names_it() {
    let text = "template t {\n  prompt = \"x\"\n  vars {\n    a in [\"1\"]\n}\n";
    let (_, diags) = parse(FileId(0), text);
    assert_eq!(diags.len(), 1, "{diags:#?}");
    assert_eq!(diags[0].code, Code::UnclosedBlock);
    assert_eq!(
        diags[0].message,
        "expected `}` to close template `t` opened here"
    );
}

#[test]
fn escapes_are_decoded_and_triple_strings_kept_verbatim() {
    let text = "persona p \"Title \\\"q\\\" \\u{e9}\" { description = \"\"\"line one\n  {{not a var}} \\n\"\"\" }";
    let (module, diags) = parse(FileId(0), text);
    assert!(diags.is_empty(), "{diags:#?}");
    let Decl::Persona(p) = &module.decls[0] else {
        panic!()
    };
    assert_eq!(p.title.as_ref().unwrap().value, "Title \"q\" é");
    assert_eq!(
        p.props.str("description"),
        Some("line one\n  {{not a var}} \\n")
    );
}

#[test]
fn invalid_unicode_escape_is_reported() {
    let (_, diags) = parse(FileId(0), "persona p \"\\u{D800}\" { description = \"x\" }");
    assert_eq!(diags.len(), 1);
    assert!(diags[0].message.contains("not a Unicode character"));
}

#[test]
fn stray_non_ascii_character_is_a_syntax_error() {
    // Found by the property test: a chunk starting with a multi-byte character.
    let (module, diags) = parse(FileId(0), "€uro\ntaxonomy t { a \"A\" }\n");
    assert_eq!(module.decls.len(), 1);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].message, "expected a declaration, found `€`");
    assert_eq!(diags[0].primary.span.range(), 0..3);
}

/// Issue 12: `metric m = rate(x == a) + 1 + 1 + ...` was folded into a tree as tall as the
/// chain, which every later pass walked recursively until the stack ran out.
#[test]
fn long_operator_chains_are_one_error_not_a_tall_tree() {
    for n in [7_000, 100_000] {
        for (what, text) in [
            (
                "+",
                format!("metric m = rate(g == a){}\nmetric k = m", " + 1".repeat(n)),
            ),
            (
                "and",
                format!("metric m = rate(g == a{})", " and g == a".repeat(n)),
            ),
            ("index", format!("metric m = x{}", "[0]".repeat(n))),
            ("prefix", format!("metric m = {}1", "- ".repeat(n))),
        ] {
            let (module, diags) = parse(FileId(0), &text);
            let codes: Vec<Code> = diags.iter().map(|d| d.code).collect();
            assert_eq!(codes, [Code::TooDeep], "{what} x {n}");
            // The declaration is dropped, its name kept so that its uses raise nothing more.
            assert!(
                module
                    .decls
                    .iter()
                    .all(|d| d.name().is_none_or(|n| n.name != "m"))
            );
            assert!(module.broken.iter().any(|b| b.name == "m"), "{what} x {n}");
            // The error is at the operator that opens the level past the limit.
            let at = &text[diags[0].primary.span.range()];
            assert!(matches!(at, "+" | "and" | "[0]" | "-"), "{what}: {at:?}");
        }
    }
}

#[test]
fn a_chain_as_tall_as_the_limit_is_kept() {
    use assay_syntax::MAX_EXPR_DEPTH;
    // `1 + 1 + ... + 1` with k operators is k + 1 levels tall.
    let at_limit = format!("metric m = 1{}", " + 1".repeat(MAX_EXPR_DEPTH - 1));
    let (module, diags) = parse(FileId(0), &at_limit);
    assert!(diags.is_empty(), "{diags:#?}");
    assert_eq!(module.decls.len(), 1);
    let over = format!("metric m = 1{}", " + 1".repeat(MAX_EXPR_DEPTH));
    let (_, diags) = parse(FileId(0), &over);
    assert_eq!(diags.len(), 1);
    assert_eq!(diags[0].code, Code::TooDeep);
}

#[test]
fn the_formatter_reads_a_long_chain_without_recursing() {
    let text = format!("metric m = rate(g == a){}\n", " + 1".repeat(100_000));
    // Token-based: it formats (or refuses) without building the tree.
    let _ = assay_syntax::format::format(&text);
}
