//! Template expansion: variable domains, generators (`product`, `zip`, `where`, `sample`) and
//! the tags of each item. Bindings are enumerated by index (a mixed-radix counter), never
//! materialised, so a million-item product holds only its domains in memory.

use crate::sample::{Selection, derive_seed};
use crate::value::{self, Env};
use crate::{Base, Expander, SystemPrompt, UserTurns};
use assay_ir::Expect;
use assay_syntax::ast::{Expr, ExprKind, Generator, Template};
use assay_syntax::{Code, Diagnostic};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::rc::Rc;

/// A bound variable with its values and, for `leaves(taxonomy)`, the taxonomy they are codes of.
struct Domain {
    name: String,
    values: Vec<Value>,
    taxonomy: Option<String>,
    /// Where the domain is written.
    span: assay_syntax::Span,
}

pub(crate) fn expand_template(ex: &mut Expander<'_>, name: &str, t: &Template) {
    let errors_before = ex.out.diagnostics.len();
    let mut domains = Vec::new();
    for binding in &t.vars {
        if let Some(d) = domain(ex, &binding.name.name, &binding.domain) {
            if d.values.is_empty() {
                ex.error(
                    Diagnostic::new(
                        Code::ExpansionFailed,
                        binding.domain.span,
                        format!("variable `{}` has no values", d.name),
                    )
                    .label("an empty domain")
                    .help("a template with an empty variable produces no items; give it at least one value"),
                );
            }
            domains.push(d);
        }
    }
    let generator = t
        .generate
        .as_ref()
        .map_or(Generator::Product, |g| g.generator);
    remove_repeats(ex, t, generator, &mut domains);
    let axis_names: Vec<_> = t.props.names("axes");
    let axes = ex.axes(&axis_names);
    let user = t
        .props
        .value("prompt")
        .and_then(|v| ex.text_of(v))
        .and_then(|text| ex.register(format!("t:{name}:prompt"), &text, t.name.span))
        .map(Rc::<str>::from);
    let system = match t.props.value("system") {
        Some(v) => ex
            .text_of(v)
            .and_then(|text| ex.register(format!("t:{name}:system"), &text, v.span))
            .map(|n| Some(SystemPrompt::Template(Rc::from(n)))),
        None => Some(None),
    };
    if ex.out.diagnostics[errors_before..]
        .iter()
        .any(|d| d.is_error())
    {
        return;
    }
    let (Some(axes), Some(user), Some(system)) = (axes, user, system) else {
        return;
    };

    let generator = t
        .generate
        .as_ref()
        .map_or(Generator::Product, |g| g.generator);
    let total: u64 = match generator {
        Generator::Product => domains.iter().map(|d| d.values.len() as u64).product(),
        Generator::Zip => {
            let lens: Vec<usize> = domains.iter().map(|d| d.values.len()).collect();
            if lens.windows(2).any(|w| w[0] != w[1]) {
                let sizes: Vec<String> = domains
                    .iter()
                    .map(|d| format!("`{}` has {}", d.name, d.values.len()))
                    .collect();
                let span = t.generate.as_ref().map_or(t.name.span, |g| g.span);
                ex.error(
                    Diagnostic::new(
                        Code::ExpansionFailed,
                        span,
                        format!("`generate zip` needs domains of equal length: {}", sizes.join(", ")),
                    )
                    .label("domains of different lengths")
                    .help("zip pairs values by position; give every variable as many values, or use `generate product`"),
                );
                return;
            }
            lens.first().copied().unwrap_or(1) as u64
        }
    };
    let filter = t.generate.as_ref().and_then(|g| g.filter.as_ref());
    let sample = t.generate.as_ref().and_then(|g| g.sample.as_ref());

    // An expectation that reads no variable is the same for every item.
    let bound: Vec<&str> = domains.iter().map(|d| d.name.as_str()).collect();
    let fixed_expect = match t.props.value("expect") {
        None => Some(Expect::Refuse),
        Some(e) if !reads_any(e, &bound) => crate::dataset::expectation(e, &crate::NoEnv).ok(),
        Some(_) => None,
    };
    let reads_vars = ["hazard", "persona", "locale"]
        .iter()
        .filter_map(|k| t.props.value(k))
        .any(|e| reads_any(e, &bound));
    let fixed_tags = if reads_vars {
        None
    } else {
        match tags(ex, name, t, &[]) {
            Some(tags) => Some(tags),
            None => return,
        }
    };
    let plan = Plan {
        name,
        t,
        user,
        system,
        fixed_expect,
        fixed_tags,
    };
    let combos = Combos {
        domains: &domains,
        generator,
        total,
    };
    // Sampling needs the number of candidates that pass the filter: a first, counting pass.
    let mut selection = match sample {
        Some(s) => {
            let candidates = match filter {
                None => total,
                Some(f) => {
                    let mut n = 0u64;
                    for i in 0..total {
                        match passes(ex, t, &combos, i, f) {
                            Some(true) => n += 1,
                            Some(false) => {}
                            None => return,
                        }
                    }
                    n
                }
            };
            let seed = s.seed.unwrap_or_else(|| derive_seed(ex.out.seed, name));
            Some(Selection::new(seed, s.count, candidates))
        }
        None => None,
    };

    for i in 0..total {
        if ex.out.stopped {
            return;
        }
        if let Some(f) = filter {
            match passes(ex, t, &combos, i, f) {
                Some(true) => {}
                Some(false) => continue,
                None => return,
            }
        }
        if let Some(s) = &mut selection
            && !s.keep()
        {
            continue;
        }
        let Some(base) = base(ex, &plan, &combos, i) else {
            return;
        };
        ex.emit(base, &axes);
    }
}

/// Repeated values would make identical items: a value listed twice in a product's domain,
/// or a row of values repeated in a zip. The repeats are dropped, with a warning.
fn remove_repeats(
    ex: &mut Expander<'_>,
    t: &Template,
    generator: Generator,
    domains: &mut [Domain],
) {
    let key = |v: &Value| v.to_string();
    match generator {
        Generator::Product => {
            for d in domains.iter_mut() {
                let mut seen = std::collections::HashSet::new();
                let before = d.values.len();
                let mut first_repeat = None;
                d.values.retain(|v| {
                    let fresh = seen.insert(key(v));
                    if !fresh && first_repeat.is_none() {
                        first_repeat = Some(value::text(v));
                    }
                    fresh
                });
                if let Some(repeat) = first_repeat {
                    let dropped = before - d.values.len();
                    ex.error(
                        Diagnostic::new(
                            Code::DuplicateItem,
                            d.span,
                            format!(
                                "variable `{}` lists \"{}\" more than once; the {dropped} repeat{} would make identical items and {} left out",
                                d.name,
                                crate::preview(&repeat),
                                if dropped == 1 { "" } else { "s" },
                                if dropped == 1 { "is" } else { "are" },
                            ),
                        )
                        .label("repeated values")
                        .help("list each value once"),
                    );
                }
            }
        }
        Generator::Zip => {
            let len = domains.first().map_or(0, |d| d.values.len());
            if domains.iter().any(|d| d.values.len() != len) {
                return; // reported by the caller
            }
            let mut seen = std::collections::HashSet::new();
            let keep: Vec<bool> = (0..len)
                .map(|i| {
                    let row: Vec<String> = domains.iter().map(|d| key(&d.values[i])).collect();
                    seen.insert(row)
                })
                .collect();
            let dropped = keep.iter().filter(|k| !**k).count();
            if dropped > 0 {
                for d in domains.iter_mut() {
                    let mut i = 0;
                    d.values.retain(|_| {
                        i += 1;
                        keep[i - 1]
                    });
                }
                let span = t.generate.as_ref().map_or(t.name.span, |g| g.span);
                ex.error(
                    Diagnostic::new(
                        Code::DuplicateItem,
                        span,
                        if dropped == 1 {
                            format!("`{}` zips a repeated row of values; it would make an identical item and is left out", t.name.name)
                        } else {
                            format!("`{}` zips {dropped} repeated rows of values; they would make identical items and are left out", t.name.name)
                        },
                    )
                    .label("repeated rows")
                    .help("make each position of the zipped lists a different combination"),
                );
            }
        }
    }
}

/// Whether an expression names one of `vars`.
fn reads_any(e: &Expr, vars: &[&str]) -> bool {
    let mut found = false;
    e.walk(&mut |x| {
        if let ExprKind::Path(p) = &x.kind
            && vars.contains(&p[0].name.as_str())
        {
            found = true;
        }
    });
    found
}

/// The hazard, persona and locale of one binding.
#[derive(Clone)]
struct Tags {
    taxonomy: Option<String>,
    hazard: Option<String>,
    sub_hazard: Option<String>,
    hazard_value: Option<Rc<Value>>,
    persona: Option<String>,
    persona_value: Option<Rc<Value>>,
    locale: Option<String>,
}

fn tags(
    ex: &mut Expander<'_>,
    name: &str,
    t: &Template,
    vars: &[(&str, &Value, Option<&str>)],
) -> Option<Tags> {
    let empty = BTreeMap::new();
    let env = BindingEnv { vars, tags: &empty };
    let (mut taxonomy, mut hazard, mut sub_hazard, mut hazard_value) = (None, None, None, None);
    if let Some(e) = t.props.value("hazard") {
        let (tax, code) = match &e.kind {
            ExprKind::Path(p) if p.len() == 2 => (Some(p[0].name.clone()), p[1].name.clone()),
            ExprKind::Path(p) if p.len() == 1 => {
                let bound = vars.iter().find(|(n, _, _)| *n == p[0].name);
                let code = bound.map(|(_, v, _)| value::text(v)).unwrap_or_default();
                let tax = bound.and_then(|(_, _, t)| t.map(str::to_string));
                (tax, code)
            }
            _ => (None, String::new()),
        };
        match ex.resolve_hazard(tax, &code) {
            Ok((tax, h)) => {
                taxonomy = Some(tax);
                hazard = Some(h.top);
                sub_hazard = h.sub;
                hazard_value = Some(h.value);
            }
            Err(why) => {
                ex.error(
                    Diagnostic::new(
                        Code::UnknownValue,
                        e.span,
                        format!("`{name}` tags an item with hazard `{code}`: {why}"),
                    )
                    .label("not a hazard code")
                    .help("bind the variable to `leaves(taxonomy)`, or write `hazard = taxonomy.code`"),
                );
                return None;
            }
        }
    }
    let persona = t
        .props
        .value("persona")
        .and_then(|e| value::eval(e, &env).ok())
        .map(|v| value::text(&v));
    let locale = t
        .props
        .value("locale")
        .and_then(|e| value::eval(e, &env).ok())
        .map(|v| value::text(&v));
    let persona_value = persona.as_deref().map(|p| ex.persona_value(p));
    Some(Tags {
        taxonomy,
        hazard,
        sub_hazard,
        hazard_value,
        persona,
        persona_value,
        locale,
    })
}

/// What every item of a template shares.
struct Plan<'t> {
    name: &'t str,
    t: &'t Template,
    /// The registered prompt and system-prompt templates.
    user: Rc<str>,
    system: Option<SystemPrompt>,
    /// The expectation, when it reads no variable.
    fixed_expect: Option<Expect>,
    /// The tags, when they read no variable.
    fixed_tags: Option<Tags>,
}

/// The bindings of a template, addressed by index.
struct Combos<'d> {
    domains: &'d [Domain],
    generator: Generator,
    total: u64,
}

impl Combos<'_> {
    /// The values of combination `i`: for a product the first variable varies slowest.
    fn bindings(&self, i: u64) -> Vec<(&str, &Value, Option<&str>)> {
        debug_assert!(i < self.total);
        let mut out = Vec::with_capacity(self.domains.len());
        match self.generator {
            Generator::Zip => {
                for d in self.domains {
                    out.push((
                        d.name.as_str(),
                        &d.values[i as usize],
                        d.taxonomy.as_deref(),
                    ));
                }
            }
            Generator::Product => {
                let mut rest = i;
                let mut picks = vec![0usize; self.domains.len()];
                for (k, d) in self.domains.iter().enumerate().rev() {
                    let n = d.values.len() as u64;
                    picks[k] = (rest % n) as usize;
                    rest /= n;
                }
                for (d, &p) in self.domains.iter().zip(&picks) {
                    out.push((d.name.as_str(), &d.values[p], d.taxonomy.as_deref()));
                }
            }
        }
        out
    }
}

/// Names in a `where` filter or a tag: the bound variables, the template's own tags and
/// `taxonomy.code` paths.
struct BindingEnv<'e> {
    vars: &'e [(&'e str, &'e Value, Option<&'e str>)],
    tags: &'e BTreeMap<&'static str, Value>,
}

impl Env for BindingEnv<'_> {
    fn path(&self, segments: &[&str]) -> Option<Value> {
        let (first, rest) = segments.split_first()?;
        if let Some((_, v, _)) = self.vars.iter().find(|(n, _, _)| n == first) {
            return rest
                .iter()
                .try_fold((*v).clone(), |v, seg| v.get(*seg).cloned());
        }
        if rest.is_empty() {
            return self.tags.get(first).cloned();
        }
        // `taxonomy.code` stands for the code.
        match rest {
            [code] => Some(Value::String((*code).to_string())),
            _ => None,
        }
    }
}

/// Whether combination `i` passes the filter; `None` after reporting an evaluation error.
fn passes(
    ex: &mut Expander<'_>,
    t: &Template,
    combos: &Combos<'_>,
    i: u64,
    filter: &Expr,
) -> Option<bool> {
    let vars = combos.bindings(i);
    let tags = tag_values(t, &vars);
    match value::eval(
        filter,
        &BindingEnv {
            vars: &vars,
            tags: &tags,
        },
    ) {
        Ok(v) => Some(value::truthy(&v)),
        Err(why) => {
            ex.error(
                Diagnostic::new(
                    Code::ExpansionFailed,
                    filter.span,
                    format!("the `where` filter of `{}` cannot be evaluated: {why}", t.name.name),
                )
                .label("this filter")
                .help("filters compare bound variables and tags, e.g. `where topic != \"x\" and hazard == harm.physical`"),
            );
            None
        }
    }
}

/// The values of `hazard`, `persona` and `locale` for one binding, as filters see them.
fn tag_values(
    t: &Template,
    vars: &[(&str, &Value, Option<&str>)],
) -> BTreeMap<&'static str, Value> {
    let mut tags = BTreeMap::new();
    let empty = BTreeMap::new();
    let env = BindingEnv { vars, tags: &empty };
    for key in ["hazard", "persona", "locale"] {
        if let Some(e) = t.props.value(key) {
            let v = match &e.kind {
                // `taxonomy.code` is the code; a bound variable its value.
                ExprKind::Path(p) if p.len() == 2 => Value::String(p[1].name.clone()),
                _ => value::eval(e, &env).unwrap_or(Value::Null),
            };
            tags.insert(key, v);
        }
    }
    tags
}

fn domain(ex: &mut Expander<'_>, name: &str, expr: &Expr) -> Option<Domain> {
    let mut taxonomy = None;
    let values = match &expr.kind {
        ExprKind::List(items) => {
            let mut values = Vec::with_capacity(items.len());
            for item in items {
                match value::eval(item, &crate::NoEnv) {
                    Ok(v) => values.push(v),
                    Err(why) => {
                        ex.error(
                            Diagnostic::new(
                                Code::ExpansionFailed,
                                item.span,
                                format!("this value cannot be evaluated: {why}"),
                            )
                            .label("not a value")
                            .help("list values are strings, numbers, booleans or records"),
                        );
                        return None;
                    }
                }
            }
            values
        }
        ExprKind::Call { callee, args } if callee.name == "file" => {
            let (rel, span) = expr.as_file_ref()?;
            let _ = args;
            let text = ex.read_file(rel, span)?;
            // One value per line; blank lines and `#` comments are skipped.
            text.lines()
                .map(str::trim_end)
                .filter(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .map(|l| Value::String(l.to_string()))
                .collect()
        }
        ExprKind::Call { callee, args } if callee.name == "leaves" => {
            let tax_name = args.first()?.value.as_name()?.name.clone();
            let t = ex.taxonomy(&tax_name)?;
            taxonomy = Some(tax_name);
            t.walk()
                .iter()
                .filter(|(c, _)| c.children.is_empty())
                .map(|(c, _)| Value::String(c.code.name.clone()))
                .collect()
        }
        ExprKind::Path(p) if p.len() == 2 => {
            let (values, tax) = crate::dataset::column_values(ex, &p[0], &p[1].name)?;
            taxonomy = tax;
            values
        }
        _ => return None,
    };
    Some(Domain {
        name: name.to_string(),
        values,
        taxonomy,
        span: expr.span,
    })
}

/// The item of combination `i`, before the axes.
fn base(ex: &mut Expander<'_>, plan: &Plan<'_>, combos: &Combos<'_>, i: u64) -> Option<Base> {
    let (name, t) = (plan.name, plan.t);
    let vars = combos.bindings(i);
    let empty = BTreeMap::new();
    let env = BindingEnv {
        vars: &vars,
        tags: &empty,
    };
    let mut var_map = Map::new();
    for (n, v, _) in &vars {
        var_map.insert((*n).to_string(), (*v).clone());
    }

    // hazard = taxonomy.code, or a variable holding a code.
    let tags = match &plan.fixed_tags {
        Some(tags) => tags.clone(),
        None => tags(ex, name, t, &vars)?,
    };
    let expect = match t.props.value("expect") {
        _ if plan.fixed_expect.is_some() => plan.fixed_expect.clone().unwrap_or_default(),
        None => Expect::Refuse,
        Some(e) => match crate::dataset::expectation(e, &env) {
            Ok(x) => x,
            Err(why) => {
                ex.error(
                    Diagnostic::new(Code::UnknownValue, e.span, format!("`{name}`: {why}"))
                        .label("not an expectation")
                        .help("expectations are `refuse`, `comply` or `answer(\"...\")`"),
                );
                return None;
            }
        },
    };
    let mut metadata = BTreeMap::new();
    if let Some(e) = t.props.value("metadata")
        && let Ok(Value::Object(m)) = value::eval(e, &env)
    {
        metadata.extend(m);
    }
    let mut binding = String::new();
    for (n, v) in &var_map {
        binding.push_str(n);
        binding.push('\0');
        match v {
            Value::String(s) => binding.push_str(s),
            other => binding.push_str(&other.to_string()),
        }
        binding.push('\0');
    }
    if !var_map.is_empty() {
        metadata.insert("vars".to_string(), Value::Object(var_map));
    }
    // The key names the binding by a hash of its values: stable when other bindings change.
    let digest = Sha256::digest(binding.as_bytes());
    let mut binding_hash = [0u8; 16];
    hex::encode_to_slice(&digest[..8], &mut binding_hash).expect("16 hex digits");
    Some(Base {
        source: name.to_string(),
        key: format!(
            "{name}/{}",
            std::str::from_utf8(&binding_hash).expect("hex is ASCII")
        ),
        user: UserTurns::Template(Rc::clone(&plan.user)),
        system: plan.system.clone(),
        taxonomy: tags.taxonomy,
        hazard: tags.hazard,
        sub_hazard: tags.sub_hazard,
        hazard_value: tags.hazard_value,
        persona: tags.persona,
        persona_value: tags.persona_value,
        locale: tags.locale,
        expect,
        response: None,
        gold: None,
        group: None,
        program: t.props.name("program").map(|p| p.name.clone()),
        defense: None,
        attachments: Vec::new(),
        metadata,
        span: t.name.span,
    })
}
