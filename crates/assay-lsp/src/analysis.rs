//! What the server knows about a checked package: every name written in its modules, what
//! each one refers to, and the answers built on that (hover, definition, references,
//! completion, symbols). Pure: it reads a [`Checked`] and returns spans.

use assay_check::{Checked, Origin};
use assay_syntax::ast::{Category, Decl, Module};
use assay_syntax::{FileId, Span};
use serde_json::Value;

/// One name written in a module.
#[derive(Clone, Debug)]
pub struct Occurrence {
    pub name: String,
    pub span: Span,
    /// The segments before it in a dotted path (`harm` for `harm.physical`).
    pub prefix: Vec<String>,
}

/// What a name refers to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Target {
    /// A top-level declaration, by its name's span.
    Decl {
        name: String,
        span: Span,
        decl: Span,
    },
    /// A taxonomy category.
    Category {
        taxonomy: String,
        code: String,
        span: Span,
        decl: Span,
    },
}

impl Target {
    /// Where the name is defined.
    pub fn span(&self) -> Span {
        match self {
            Target::Decl { span, .. } | Target::Category { span, .. } => *span,
        }
    }
}

/// Every identifier in a module, found by walking its serialised tree: an identifier is an
/// object with exactly `name` and `span`; a dotted path is an array of them.
pub fn occurrences(module: &Module) -> Vec<Occurrence> {
    fn as_ident(v: &Value) -> Option<(String, Span)> {
        let map = v.as_object()?;
        if map.len() != 2 {
            return None;
        }
        let name = map.get("name")?.as_str()?.to_string();
        let span: Span = serde_json::from_value(map.get("span")?.clone()).ok()?;
        Some((name, span))
    }
    fn walk(v: &Value, out: &mut Vec<Occurrence>) {
        if let Some((name, span)) = as_ident(v) {
            out.push(Occurrence {
                name,
                span,
                prefix: Vec::new(),
            });
            return;
        }
        match v {
            Value::Array(items) => {
                let idents: Option<Vec<(String, Span)>> = items.iter().map(as_ident).collect();
                match idents {
                    Some(path) if !path.is_empty() => {
                        let mut prefix = Vec::new();
                        for (name, span) in path {
                            out.push(Occurrence {
                                name: name.clone(),
                                span,
                                prefix: prefix.clone(),
                            });
                            prefix.push(name);
                        }
                    }
                    _ => items.iter().for_each(|i| walk(i, out)),
                }
            }
            Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    if let Ok(v) = serde_json::to_value(module) {
        walk(&v, &mut out);
    }
    out.sort_by_key(|o| (o.span.start, o.span.end));
    out.dedup_by_key(|o| (o.span.start, o.span.end));
    out
}

/// The module index holding `file`.
pub fn module_of(checked: &Checked, file: FileId) -> Option<usize> {
    checked.modules.iter().position(|m| m.file == file)
}

/// A declaration visible from module `m`: its own, then the entry scope (imports).
fn find_decl<'c>(checked: &'c Checked, m: usize, name: &str) -> Option<(&'c Decl, FileId)> {
    let module = &checked.modules[m];
    if let Some(decl) = module
        .ast
        .decls
        .iter()
        .find(|d| d.name().is_some_and(|n| n.name == name))
    {
        return Some((decl, module.file));
    }
    // Names imported into this module: look them up in the modules it imports.
    for &imported in module.imports.values() {
        let other = &checked.modules[imported];
        if let Some(decl) = other
            .ast
            .decls
            .iter()
            .find(|d| d.name().is_some_and(|n| n.name == name))
        {
            return Some((decl, other.file));
        }
    }
    checked
        .model
        .definitions
        .get(name)
        .map(|d| (&d.decl, d.file))
}

fn decl_span(decl: &Decl) -> Span {
    match decl {
        Decl::Suite(d) => d.span,
        Decl::Use(d) => d.span,
        Decl::Taxonomy(d) => d.span,
        Decl::Mapping(d) => d.span,
        Decl::Persona(d) => d.span,
        Decl::Template(d) => d.span,
        Decl::Dataset(d) => d.span,
        Decl::Axis(d) => d.span,
        Decl::Target(d) => d.span,
        Decl::Program(d) => d.span,
        Decl::Judge(d) => d.span,
        Decl::Metric(d) => d.span,
        Decl::Grade(d) => d.span,
        Decl::Standard(d) => d.span,
        Decl::Report(d) => d.span,
    }
}

fn find_category<'t>(cats: &'t [Category], code: &str) -> Option<&'t Category> {
    for c in cats {
        if c.code.name == code {
            return Some(c);
        }
        if let Some(found) = find_category(&c.children, code) {
            return Some(found);
        }
    }
    None
}

/// What the occurrence refers to, if anything.
pub fn resolve(checked: &Checked, m: usize, occ: &Occurrence) -> Option<Target> {
    let module = &checked.modules[m];
    // A category code written in its own taxonomy.
    for decl in &module.ast.decls {
        if let Decl::Taxonomy(t) = decl
            && t.span.start <= occ.span.start
            && occ.span.end <= t.span.end
            && occ.prefix.is_empty()
            && let Some(cat) = find_category(&t.categories, &occ.name)
            && cat.code.span == occ.span
        {
            return Some(Target::Category {
                taxonomy: t.name.name.clone(),
                code: cat.code.name.clone(),
                span: cat.code.span,
                decl: cat.span,
            });
        }
    }
    match occ.prefix.as_slice() {
        [] => {
            let (decl, _) = find_decl(checked, m, &occ.name)?;
            let name = decl.name()?;
            Some(Target::Decl {
                name: name.name.clone(),
                span: name.span,
                decl: decl_span(decl),
            })
        }
        [taxonomy] => match find_decl(checked, m, taxonomy)? {
            (Decl::Taxonomy(t), _) => {
                let cat = find_category(&t.categories, &occ.name)?;
                Some(Target::Category {
                    taxonomy: t.name.name.clone(),
                    code: cat.code.name.clone(),
                    span: cat.code.span,
                    decl: cat.span,
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// The occurrence at a byte offset of module `m`.
pub fn occurrence_at(checked: &Checked, m: usize, offset: usize) -> Option<Occurrence> {
    occurrences(&checked.modules[m].ast)
        .into_iter()
        .find(|o| o.span.start as usize <= offset && offset <= o.span.end as usize)
}

/// Markdown for a target: what it is and the text that declares it.
pub fn hover_text(checked: &Checked, target: &Target) -> String {
    let source = |span: Span| -> String {
        let text = &checked.sources.get(span.file).text;
        let body = text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default();
        // Long declarations are cut after 15 lines.
        let lines: Vec<&str> = body.lines().collect();
        if lines.len() > 15 {
            format!("{}\n…", lines[..15].join("\n"))
        } else {
            body.to_string()
        }
    };
    let origin = |span: Span| checked.sources.get(span.file).name.clone();
    match target {
        Target::Decl { name, decl, .. } => {
            let kind = checked
                .model
                .definitions
                .get(name)
                .map_or("definition", |d| d.decl.kind_name());
            let mut text = format!(
                "**{kind}** `{name}` — {}\n\n```assay\n{}\n```",
                origin(*decl),
                source(*decl)
            );
            if let Some(assay_syntax::ast::Decl::Program(p)) =
                checked.model.definitions.get(name).map(|d| &d.decl)
            {
                text.push_str("\n\n");
                text.push_str(&turn_plan(p));
            }
            text
        }
        Target::Category {
            taxonomy,
            code,
            decl,
            ..
        } => {
            let mut out = format!("**category** `{taxonomy}.{code}` — {}", origin(*decl));
            let found = checked.modules.iter().find_map(|m| {
                m.ast.decls.iter().find_map(|d| match d {
                    Decl::Taxonomy(t) if t.name.name == *taxonomy => {
                        find_category(&t.categories, code)
                    }
                    _ => None,
                })
            });
            if let Some(cat) = found {
                out.push_str(&format!("\n\n**{}**", cat.title.value));
                if let Some(def) = cat.props.str("definition") {
                    out.push_str(&format!("\n\n{}", def.trim()));
                }
            }
            out
        }
    }
}

/// Every place in the package's own modules that refers to `target` (its definition too).
pub fn references(checked: &Checked, target: &Target) -> Vec<Span> {
    let mut out = Vec::new();
    for (m, module) in checked.modules.iter().enumerate() {
        if matches!(module.origin, Origin::Std(_)) {
            continue;
        }
        for occ in occurrences(&module.ast) {
            if resolve(checked, m, &occ).as_ref() == Some(target) {
                out.push(occ.span);
            }
        }
    }
    out
}

/// A completion candidate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    pub label: String,
    /// `taxonomy`, `judge`, ..., `category` or `keyword`.
    pub kind: String,
    pub detail: String,
}

/// Declaration keywords, offered at the start of a line.
pub const KEYWORDS: &[&str] = &[
    "suite", "use", "taxonomy", "mapping", "persona", "template", "dataset", "axis", "target",
    "program", "judge", "metric", "grade", "standard", "report",
];

/// What may be written at `offset` of module `m`, given the text before it on its line.
pub fn completions(checked: &Checked, m: usize, line_before: &str) -> Vec<Candidate> {
    // After `use std::`: the standard library's modules.
    if let Some(path) = line_before.trim_start().strip_prefix("use ")
        && path.starts_with("std::")
        && !path.contains(char::is_whitespace)
    {
        let typed = path.rsplit_once("::").map_or("", |(head, _)| head);
        return assay_check::stdlib::modules()
            .into_iter()
            .filter(|module| module.starts_with(&format!("{typed}::")))
            .map(|module| Candidate {
                label: module[typed.len() + 2..].to_string(),
                kind: "module".into(),
                detail: module,
            })
            .collect();
    }
    // After `taxonomy.`: the taxonomy's codes.
    let word_start = line_before
        .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .map_or(0, |i| i + 1);
    let word = &line_before[word_start..];
    if let Some((base, _)) = word.rsplit_once('.') {
        if let Some((Decl::Taxonomy(t), _)) = find_decl(checked, m, base) {
            return t
                .walk()
                .into_iter()
                .map(|(c, parent)| Candidate {
                    label: c.code.name.clone(),
                    kind: "category".into(),
                    detail: match parent {
                        Some(p) => format!("{} (in {})", c.title.value, p.code.name),
                        None => c.title.value.clone(),
                    },
                })
                .collect();
        }
        return Vec::new();
    }
    let mut out: Vec<Candidate> = Vec::new();
    if line_before.trim_start() == word {
        out.extend(KEYWORDS.iter().map(|k| Candidate {
            label: (*k).into(),
            kind: "keyword".into(),
            detail: "declaration".into(),
        }));
    }
    let module = &checked.modules[m];
    let own = module.ast.decls.iter().filter_map(|d| Some((d.name()?, d)));
    let imported = checked
        .model
        .definitions
        .values()
        .filter_map(|d| Some((d.decl.name()?, &d.decl)));
    for (name, decl) in own.chain(imported) {
        if !out.iter().any(|c| c.label == name.name) {
            out.push(Candidate {
                label: name.name.clone(),
                kind: decl.kind_name().into(),
                detail: decl.kind_name().into(),
            });
        }
    }
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// A declaration or category, for the outline.
#[derive(Clone, Debug)]
pub struct Symbol {
    pub name: String,
    pub kind: String,
    pub span: Span,
    pub selection: Span,
    pub children: Vec<Symbol>,
}

pub fn symbols(module: &Module) -> Vec<Symbol> {
    fn categories(cats: &[Category]) -> Vec<Symbol> {
        cats.iter()
            .map(|c| Symbol {
                name: c.code.name.clone(),
                kind: "category".into(),
                span: c.span,
                selection: c.code.span,
                children: categories(&c.children),
            })
            .collect()
    }
    module
        .decls
        .iter()
        .filter_map(|d| {
            let span = decl_span(d);
            let (name, selection) = match (d.name(), d) {
                (Some(n), _) => (n.name.clone(), n.span),
                (None, Decl::Suite(s)) => (s.name.value.clone(), s.name.span),
                (None, Decl::Report(_)) => (
                    "report".into(),
                    Span::new(span.file, span.start as usize, span.start as usize + 6),
                ),
                _ => return None,
            };
            let children = match d {
                Decl::Taxonomy(t) => categories(&t.categories),
                _ => Vec::new(),
            };
            Some(Symbol {
                name,
                kind: d.kind_name().into(),
                span,
                selection,
                children,
            })
        })
        .collect()
}

/// A program's turn plan, as its hover shows it (after `extends` is merged): the scripted
/// turns, then the attacker's rounds, the judges and the stop conditions.
pub fn turn_plan(p: &assay_syntax::ast::Program) -> String {
    use assay_syntax::ast::Role;
    let mut lines = vec!["**Turn plan**".to_string()];
    for (i, t) in p.turns.iter().enumerate() {
        let who = match t.role {
            Role::User => "user, then the target answers",
            Role::Assistant => "assistant (scripted)",
        };
        lines.push(format!("{}. {who}", i + 1));
    }
    if let Some(a) = &p.attacker {
        let rounds = a
            .number("max_turns")
            .or_else(|| p.props.number("max_turns"))
            .map_or("up to 5".to_string(), |n| format!("up to {n}"));
        let model = a
            .name("model")
            .map_or("(no model yet)".to_string(), |m| format!("`{}`", m.name));
        let mut shape = Vec::new();
        for key in [
            "context",
            "streams",
            "branching",
            "width",
            "feedback",
            "prune",
            "backtrack",
        ] {
            if let Some(v) = a.get(key) {
                let value = v
                    .value
                    .as_name()
                    .map(|n| n.name.clone())
                    .or_else(|| v.value.as_number().map(|n| n.to_string()))
                    .unwrap_or_else(|| v.value.describe().to_string());
                shape.push(format!("{key} {value}"));
            }
        }
        lines.push(format!(
            "then {rounds} attack rounds written by {model}{}",
            if shape.is_empty() {
                String::new()
            } else {
                format!(" ({})", shape.join(", "))
            }
        ));
    }
    if !p.stops.is_empty() {
        lines.push(format!(
            "stops early on {} condition(s), tested after each target turn",
            p.stops.len()
        ));
    }
    lines.join("\n\n")
}

#[cfg(test)]
mod plan_tests {
    use super::turn_plan;
    use assay_syntax::ast::Decl;

    #[test]
    fn a_program_hover_shows_its_turn_plan() {
        let text = "program crescendo {\n  user item.prompt\n  assistant \"Sure.\"\n  attacker { model = att  prompt = \"x\"  context = conversation  backtrack = refusal  max_turns = 8 }\n  stop when refusal == complied\n}\n";
        let (module, diagnostics) = assay_syntax::parse(assay_syntax::FileId(0), text);
        assert!(diagnostics.is_empty(), "{diagnostics:?}");
        let Some(Decl::Program(p)) = module.decls.first() else {
            panic!("a program")
        };
        let plan = turn_plan(p);
        assert!(plan.contains("1. user, then the target answers"), "{plan}");
        assert!(plan.contains("2. assistant (scripted)"), "{plan}");
        assert!(
            plan.contains("then up to 8 attack rounds written by `att` (context conversation, backtrack refusal)"),
            "{plan}"
        );
        assert!(plan.contains("stops early on 1 condition(s)"), "{plan}");
    }
}
