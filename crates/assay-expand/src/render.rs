//! Rendering templates with handlebars in strict mode, without HTML escaping.
//!
//! Most prompt templates only substitute values (`How do I {{verb}} a {{thing}}?`). For those,
//! building a JSON context per item costs more than the rendering itself, so each template is
//! also planned from handlebars' own parse tree: when it holds nothing but text and plain
//! paths, it renders by looking the paths up in the item's scope and formatting each value
//! with handlebars' [`JsonRender`], which is what handlebars does for such a template. Anything
//! else (helpers, blocks, a path with no value) goes through handlebars itself, so its
//! behaviour and its strict-mode errors are handlebars' own.

use handlebars::template::{Parameter, TemplateElement};
use handlebars::{Context, Handlebars, JsonRender, Path, PathSeg, RenderError, Template};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// The names an item's templates can read, by precedence: the prompt (in wrappers), bound
/// variables, then the built-in `persona`, `hazard` and `locale`.
pub(crate) struct Scope<'s> {
    pub prompt: Option<&'s str>,
    pub vars: &'s Map<String, Value>,
    pub persona: Option<&'s Value>,
    pub hazard: Option<&'s Value>,
    pub locale: Option<&'s Value>,
}

impl Scope<'_> {
    fn root(&self, name: &str) -> Option<Root<'_>> {
        if name == "prompt"
            && let Some(p) = self.prompt
        {
            return Some(Root::Text(p));
        }
        if let Some(v) = self.vars.get(name) {
            return Some(Root::Value(v));
        }
        match name {
            "persona" => self.persona.map(Root::Value),
            "hazard" => self.hazard.map(Root::Value),
            "locale" => self.locale.map(Root::Value),
            _ => None,
        }
    }

    /// The whole scope as one JSON object, for handlebars.
    fn to_context(&self) -> Context {
        let mut map = Map::new();
        for (key, value) in [
            ("persona", self.persona),
            ("hazard", self.hazard),
            ("locale", self.locale),
        ] {
            if let Some(v) = value {
                map.insert(key.to_string(), v.clone());
            }
        }
        for (k, v) in self.vars {
            map.insert(k.clone(), v.clone());
        }
        if let Some(p) = self.prompt {
            map.insert("prompt".to_string(), Value::String(p.to_string()));
        }
        Context::from(Value::Object(map))
    }
}

/// The helpers handlebars registers by default: a bare `{{len}}` calls one.
const BUILTIN_HELPERS: &[&str] = &[
    "if", "unless", "each", "with", "lookup", "raw", "log", "eq", "ne", "gt", "gte", "lt", "lte",
    "and", "or", "not", "len",
];

enum Root<'v> {
    Text(&'v str),
    Value(&'v Value),
}

enum Piece {
    Text(String),
    /// A plain path: `name`, `persona.attrs.tone`.
    Path(Vec<String>),
}

pub(crate) struct Renderer {
    hb: Handlebars<'static>,
    /// Few templates, looked up once per item: a B-tree compares a handful of short names.
    plans: BTreeMap<String, Option<Vec<Piece>>>,
}

impl Renderer {
    pub(crate) fn new() -> Renderer {
        let mut hb = Handlebars::new();
        hb.set_strict_mode(true);
        hb.register_escape_fn(handlebars::no_escape);
        Renderer {
            hb,
            plans: BTreeMap::new(),
        }
    }

    pub(crate) fn register(&mut self, name: &str, text: &str) -> Result<(), String> {
        let template = Template::compile(text).map_err(|e| e.to_string())?;
        let plan = Self::plan(&template);
        self.hb.register_template(name, template);
        self.plans.insert(name.to_string(), plan);
        Ok(())
    }

    /// The pieces of a template that only substitutes plain paths; `None` otherwise.
    fn plan(template: &Template) -> Option<Vec<Piece>> {
        let mut pieces = Vec::with_capacity(template.elements.len());
        for element in &template.elements {
            match element {
                TemplateElement::RawString(s) => pieces.push(Piece::Text(s.clone())),
                TemplateElement::Comment(_) => {}
                TemplateElement::Expression(h) | TemplateElement::HtmlExpression(h)
                    if h.params.is_empty() && h.hash.is_empty() && !h.block =>
                {
                    let segments = match &h.name {
                        // A bare word is a helper call when a helper has that name.
                        Parameter::Name(n) if !BUILTIN_HELPERS.contains(&n.as_str()) => {
                            vec![n.clone()]
                        }
                        Parameter::Path(Path::Relative((segs, _))) => segs
                            .iter()
                            .map(|s| match s {
                                PathSeg::Named(n) if n != "this" => Some(n.clone()),
                                _ => None,
                            })
                            .collect::<Option<Vec<_>>>()?,
                        _ => return None,
                    };
                    if segments.is_empty() || segments[0].starts_with('@') {
                        return None;
                    }
                    pieces.push(Piece::Path(segments));
                }
                _ => return None,
            }
        }
        Some(pieces)
    }

    pub(crate) fn render(&self, name: &str, scope: &Scope<'_>) -> Result<String, RenderError> {
        if let Some(Some(pieces)) = self.plans.get(name)
            && let Some(text) = render_plan(pieces, scope)
        {
            return Ok(text);
        }
        self.hb.render_with_context(name, &scope.to_context())
    }
}

/// Renders a planned template; `None` when a path has no value (handlebars reports it).
fn render_plan(pieces: &[Piece], scope: &Scope<'_>) -> Option<String> {
    let mut out = String::with_capacity(128);
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Path(segments) => match scope.root(&segments[0])? {
                Root::Text(t) if segments.len() == 1 => out.push_str(t),
                Root::Text(_) => return None,
                Root::Value(v) => {
                    let mut v = v;
                    for seg in &segments[1..] {
                        v = match v {
                            Value::Object(m) => m.get(seg)?,
                            Value::Array(a) => a.get(seg.parse::<usize>().ok()?)?,
                            _ => return None,
                        };
                    }
                    match v {
                        Value::String(s) => out.push_str(s),
                        Value::Null => return None,
                        other => out.push_str(&other.render()),
                    }
                }
            },
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plan and handlebars agree on every template the plan takes.
    #[test]
    fn planned_rendering_matches_handlebars() {
        let mut vars = Map::new();
        vars.insert("verb".into(), Value::String("pick".into()));
        vars.insert("n".into(), serde_json::json!(3));
        vars.insert("f".into(), serde_json::json!(2.5));
        vars.insert("flag".into(), serde_json::json!(true));
        vars.insert("list".into(), serde_json::json!(["a", "b"]));
        vars.insert("rec".into(), serde_json::json!({"k": {"deep": "v"}}));
        let persona = serde_json::json!({"name": "p", "attrs": {"tone": "calm"}});
        let locale = Value::String("en_US".into());
        let scope = Scope {
            prompt: Some("the prompt"),
            vars: &vars,
            persona: Some(&persona),
            hazard: None,
            locale: Some(&locale),
        };
        let templates = [
            "How do I {{verb}} it? {{n}} {{f}} {{flag}}",
            "{{{verb}}} {{~ verb ~}} !",
            "{{persona.attrs.tone}} {{locale}} {{rec.k.deep}} {{list.1}}",
            "{{! a comment }}{{prompt}}",
            "{{list}} {{rec}}",
            "{{#if flag}}yes{{/if}} {{len list}} {{verb}}",
        ];
        let mut r = Renderer::new();
        for (i, t) in templates.iter().enumerate() {
            let name = format!("t{i}");
            r.register(&name, t).unwrap();
            let planned = r.render(&name, &scope).unwrap();
            let reference =
                r.hb.render_with_context(&name, &scope.to_context())
                    .unwrap();
            assert_eq!(planned, reference, "{t}");
        }
        // Helpers and blocks are not planned.
        assert!(r.plans["t5"].is_none());
        assert!(r.plans["t0"].is_some());
    }

    /// `assay check` lets templates nest 64 levels (blocks, `else if` links, subexpressions);
    /// rendering that deep (unoptimised) fits 1 MiB of stack, half a Rust or tokio thread's.
    #[test]
    fn templates_at_the_nesting_limit_render_on_a_small_stack() {
        let deep_if = "{{#if flag}}".repeat(64) + "x" + &"{{/if}}".repeat(64);
        let deep_each = "{{#each list}}".repeat(64) + "{{leaf}}" + &"{{/each}}".repeat(64);
        let chain =
            "{{#if no}}".to_string() + &"{{else if no}}".repeat(62) + "{{else if flag}}z{{/if}}";
        let sub = "{{#if ".to_string()
            + &"(not ".repeat(63)
            + "flag"
            + &")".repeat(63)
            + "}}s{{else}}t{{/if}}";
        let rendered = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || {
                let mut vars = Map::new();
                vars.insert("flag".into(), Value::Bool(true));
                vars.insert("no".into(), Value::Bool(false));
                let mut list = serde_json::json!([{"leaf": "a"}]);
                for _ in 1..64 {
                    list = serde_json::json!([{ "list": list }]);
                }
                vars.insert("list".into(), list);
                let scope = Scope {
                    prompt: None,
                    vars: &vars,
                    persona: None,
                    hazard: None,
                    locale: None,
                };
                let mut r = Renderer::new();
                let mut out = Vec::new();
                for (i, t) in [deep_if, deep_each, chain, sub].iter().enumerate() {
                    let name = format!("t{i}");
                    r.register(&name, t).unwrap();
                    out.push(r.render(&name, &scope).unwrap());
                }
                out
            })
            .unwrap()
            .join()
            .expect("rendering at the limit does not overflow");
        assert_eq!(rendered, ["x", "a", "z", "t"]);
    }

    #[test]
    fn a_missing_value_is_handlebars_strict_error() {
        let vars = Map::new();
        let scope = Scope {
            prompt: None,
            vars: &vars,
            persona: None,
            hazard: None,
            locale: None,
        };
        let mut r = Renderer::new();
        r.register("t", "Hello {{name}}").unwrap();
        let err = r.render("t", &scope).unwrap_err();
        assert!(matches!(
            err.reason(),
            handlebars::RenderErrorReason::MissingVariable(Some(p)) if p == "name"
        ));
    }
}
