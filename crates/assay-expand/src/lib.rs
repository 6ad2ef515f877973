//! `assay-expand`: from a checked spec to a stream of test items.
//!
//! Templates are rendered over their variable bindings (cartesian product, zip, `where`
//! filters, seeded sampling), dataset rows are read, typed and mapped, and every item is
//! crossed with the axes its source names (system prompts, transforms, locales, personas).
//! Each item gets an id that hashes its content and coordinates. Items stream to a sink one by
//! one: memory holds the spec, the variable domains and an 8-byte fingerprint per item for
//! duplicate detection, never the items themselves.
//!
//! Expansion is pure apart from reading: spec-relative files come through the checker's
//! [`SourceLoader`], dataset bytes through a [`DataSource`] (the CLI's resolves `--data`
//! overrides, the package's files, the data cache and downloads). Problems are
//! [`Diagnostic`]s pointing into the spec. It may depend on `assay-syntax`, `assay-check`
//! and `assay-ir` only.

mod dataset;
mod sample;
mod template;
mod transform;
mod value;

use assay_check::{Checked, Definition, SourceLoader, resolve_in_package};
use assay_ir::{Counts, DatasetInfo, Expect, Item, Labels, Message, Role};
use assay_syntax::ast::{Axis, AxisKind, Decl, Expr, Ident, Persona, Taxonomy};
use assay_syntax::{Code, Diagnostic, Span, did_you_mean};
use handlebars::Handlebars;
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashSet};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use transform::Transform;

/// A dataset as the spec declares it, for a [`DataSource`] to find.
#[derive(Clone, Debug)]
pub struct DatasetSource<'a> {
    pub name: &'a str,
    /// The `path`, resolved inside the package.
    pub path: Option<PathBuf>,
    pub url: Option<&'a str>,
    pub sha256: Option<&'a str>,
}

/// Where dataset bytes come from.
pub trait DataSource {
    /// Opens the data of `source` from its start, with a name for messages (its path). Called
    /// more than once for one dataset: once to verify its hash, once to read it.
    fn open(&self, source: &DatasetSource<'_>) -> Result<(String, Box<dyn Read + '_>), String>;
}

/// Datasets read from their `path` through the file system, nothing else: for tests and for
/// specs whose data lives in the package.
#[derive(Clone, Copy, Debug, Default)]
pub struct PackageData;

impl DataSource for PackageData {
    fn open(&self, source: &DatasetSource<'_>) -> Result<(String, Box<dyn Read + '_>), String> {
        let Some(path) = &source.path else {
            return Err(format!(
                "dataset `{}` has no local `path`; give its file with `--data {}=PATH`",
                source.name, source.name
            ));
        };
        let file = std::fs::File::open(path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok((
            path.display().to_string(),
            Box::new(std::io::BufReader::new(file)),
        ))
    }
}

#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Overrides the suite's `seed`.
    pub seed: Option<u64>,
}

/// What an expansion found, beside the items it streamed.
#[derive(Debug, Default)]
pub struct Expansion {
    pub diagnostics: Vec<Diagnostic>,
    pub counts: Counts,
    /// The seed sampled generators derived from.
    pub seed: u64,
    /// Every file read (specs, prompts, fragment lists), package-relative, with its sha256.
    pub files: BTreeMap<String, String>,
    pub datasets: BTreeMap<String, DatasetInfo>,
    /// The sink asked to stop before the end (`--limit`).
    pub stopped: bool,
}

impl Expansion {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Expands every template and dataset of a checked spec, in the order they are written,
/// handing each item to `sink`. The spec must have checked without errors.
pub fn expand(
    checked: &Checked,
    loader: &dyn SourceLoader,
    data: &dyn DataSource,
    options: &Options,
    sink: &mut dyn FnMut(Item) -> ControlFlow<()>,
) -> Expansion {
    let suite_seed = checked
        .model
        .suite
        .as_ref()
        .and_then(|s| s.props.number("seed"))
        .map_or(0, |n| n as u64);
    let mut ex = Expander {
        checked,
        loader,
        data,
        hb: Handlebars::new(),
        out: Expansion {
            seed: options.seed.unwrap_or(suite_seed),
            ..Expansion::default()
        },
        seen: HashSet::new(),
        sink,
        module: 0,
    };
    ex.hb.set_strict_mode(true);
    ex.hb.register_escape_fn(handlebars::no_escape);
    ex.hash_modules();
    for (name, def) in checked.model.in_source_order() {
        if ex.out.stopped {
            break;
        }
        ex.module = def.module;
        match &def.decl {
            Decl::Template(t) => template::expand_template(&mut ex, name, t),
            Decl::Dataset(d) => dataset::expand_dataset(&mut ex, name, d),
            _ => {}
        }
    }
    assay_syntax::finish_diagnostics(&mut ex.out.diagnostics);
    ex.out
}

pub(crate) struct Expander<'a> {
    checked: &'a Checked,
    loader: &'a dyn SourceLoader,
    data: &'a dyn DataSource,
    hb: Handlebars<'static>,
    out: Expansion,
    /// Fingerprints (the first 8 bytes of the id) of every item emitted.
    seen: HashSet<u64>,
    sink: &'a mut dyn FnMut(Item) -> ControlFlow<()>,
    /// The module of the definition being expanded: file references resolve against it.
    module: usize,
}

/// One axis with its variants resolved.
pub(crate) struct ResolvedAxis {
    name: String,
    variants: Vec<(String, Variant)>,
}

pub(crate) enum Variant {
    /// A registered system-prompt template, or `None` for the empty prompt.
    System(Option<String>),
    Transform(Transform),
    Locale(String),
    Persona(String),
}

/// An item before the axes: what every axis combination of it shares.
pub(crate) struct Base {
    pub source: String,
    pub key: String,
    /// The user turn: a registered template rendered per combination, or fixed turns.
    pub user: UserTurns,
    /// A registered system-prompt template, or a fixed system prompt.
    pub system: Option<SystemPrompt>,
    pub taxonomy: Option<String>,
    pub hazard: Option<String>,
    pub sub_hazard: Option<String>,
    pub persona: Option<String>,
    pub locale: Option<String>,
    pub expect: Expect,
    pub response: Option<String>,
    pub gold: Option<String>,
    pub group: Option<String>,
    pub program: Option<String>,
    pub attachments: Vec<String>,
    pub metadata: BTreeMap<String, Value>,
    /// Template variables, for rendering.
    pub vars: Map<String, Value>,
    /// Where to point when rendering fails.
    pub span: Span,
}

#[derive(Clone)]
pub(crate) enum UserTurns {
    Template(String),
    Fixed(Vec<String>),
}

#[derive(Clone)]
pub(crate) enum SystemPrompt {
    Template(String),
    Fixed(String),
}

/// The part of an item its id hashes: everything but the key and the source.
#[derive(Serialize)]
struct Content<'a> {
    messages: &'a [Message],
    labels: &'a Labels,
    expect: &'a Expect,
    response: &'a Option<String>,
    gold: &'a Option<String>,
    group: &'a Option<String>,
    program: &'a Option<String>,
    attachments: &'a [String],
    metadata: &'a BTreeMap<String, Value>,
}

/// Feeds serialized bytes straight into a hash.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

impl<'a> Expander<'a> {
    pub(crate) fn error(&mut self, d: Diagnostic) {
        self.out.diagnostics.push(d);
    }

    fn definition(&self, name: &str) -> Option<&'a Definition> {
        self.checked.model.definitions.get(name)
    }

    pub(crate) fn taxonomy(&self, name: &str) -> Option<&'a Taxonomy> {
        match self.definition(name).map(|d| &d.decl) {
            Some(Decl::Taxonomy(t)) => Some(t),
            _ => None,
        }
    }

    pub(crate) fn persona(&self, name: &str) -> Option<&'a Persona> {
        match self.definition(name).map(|d| &d.decl) {
            Some(Decl::Persona(p)) => Some(p),
            _ => None,
        }
    }

    /// Every taxonomy in scope that defines `code`.
    pub(crate) fn taxonomies_with(&self, code: &str) -> Vec<&'a str> {
        self.checked
            .model
            .of_kind("taxonomy")
            .filter_map(|(name, d)| match d {
                Decl::Taxonomy(t) if t.walk().iter().any(|(c, _)| c.code.name == code) => {
                    Some(name)
                }
                _ => None,
            })
            .collect()
    }

    /// Records the hash of every spec module read from the package.
    fn hash_modules(&mut self) {
        for module in &self.checked.modules {
            if let assay_check::Origin::File { root, path } = &module.origin {
                let text = &self.checked.sources.get(module.file).text;
                let rel = relative(root, path);
                self.out.files.insert(rel, sha256_hex(text.as_bytes()));
            }
        }
    }

    /// Resolves a package-relative path written in the current module.
    pub(crate) fn resolve(&self, rel: &str) -> Result<(PathBuf, String), String> {
        let module = &self.checked.modules[self.module];
        let (Some(root), Some(dir)) = (module.root(), module.dir()) else {
            return Err("standard-library modules cannot read files".into());
        };
        let path = resolve_in_package(self.loader, root, &dir, rel).map_err(str::to_string)?;
        let display = relative(root, &path);
        Ok((path, display))
    }

    /// Reads a package file, recording its hash.
    pub(crate) fn read_file(&mut self, rel: &str, span: Span) -> Option<String> {
        let read = self.resolve(rel).and_then(|(path, display)| {
            self.loader
                .read(&path)
                .map(|text| (display, text))
                .map_err(|e| format!("cannot read {}: {e}", path.display()))
        });
        match read {
            Ok((display, text)) => {
                self.out.files.insert(display, sha256_hex(text.as_bytes()));
                Some(text)
            }
            Err(why) => {
                self.error(
                    Diagnostic::new(Code::FileNotFound, span, format!("cannot read `{rel}`"))
                        .label(why)
                        .help("paths are relative to the spec file that names them"),
                );
                None
            }
        }
    }

    /// The text behind a `"literal"` or `file("...")` value.
    pub(crate) fn text_of(&mut self, value: &Expr) -> Option<String> {
        match value.as_file_ref() {
            Some((rel, span)) => self.read_file(rel, span),
            None => value.as_str().map(str::to_string),
        }
    }

    /// Registers a handlebars template; the checker has already compiled it once.
    pub(crate) fn register(&mut self, name: String, text: &str, span: Span) -> Option<String> {
        match self.hb.register_template_string(&name, text) {
            Ok(()) => Some(name),
            Err(e) => {
                self.error(
                    Diagnostic::new(
                        Code::InvalidTemplate,
                        span,
                        format!("invalid template: {e}"),
                    )
                    .label("this template"),
                );
                None
            }
        }
    }

    /// Resolves the axes a source names.
    pub(crate) fn axes(&mut self, names: &[&Ident]) -> Option<Vec<ResolvedAxis>> {
        let mut out = Vec::new();
        for ident in names {
            let def = self.definition(&ident.name)?;
            let Decl::Axis(axis) = &def.decl else {
                return None;
            };
            let module = std::mem::replace(&mut self.module, def.module);
            let resolved = self.resolve_axis(axis);
            self.module = module;
            out.push(resolved?);
        }
        Some(out)
    }

    fn resolve_axis(&mut self, axis: &Axis) -> Option<ResolvedAxis> {
        let mut variants = Vec::new();
        for v in &axis.variants {
            let variant = match axis.kind {
                AxisKind::System => {
                    let text = self.text_of(&v.value)?;
                    if text.trim().is_empty() {
                        Variant::System(None)
                    } else {
                        let name = format!("axis:{}:{}", axis.name.name, v.key.name);
                        Variant::System(Some(self.register(name, &text, v.value.span)?))
                    }
                }
                AxisKind::Locale => Variant::Locale(v.value.as_str()?.to_string()),
                AxisKind::Persona => Variant::Persona(v.value.as_name()?.name.clone()),
                AxisKind::Transform => Variant::Transform(self.transform(axis, v)?),
            };
            variants.push((v.key.name.clone(), variant));
        }
        Some(ResolvedAxis {
            name: axis.name.name.clone(),
            variants,
        })
    }

    fn transform(&mut self, axis: &Axis, v: &assay_syntax::ast::Property) -> Option<Transform> {
        use assay_syntax::ast::ExprKind;
        let (name, args) = match &v.value.kind {
            ExprKind::Path(p) if p.len() == 1 => (&p[0], &[][..]),
            ExprKind::Call { callee, args } => (callee, args.as_slice()),
            _ => return None,
        };
        if let Some(t) = Transform::simple(&name.name) {
            return Some(t);
        }
        match (name.name.as_str(), args) {
            ("wrap", [arg]) => {
                let text = self.text_of(&arg.value)?;
                let key = format!("axis:{}:{}", axis.name.name, v.key.name);
                self.register(key, &text, arg.value.span)
                    .map(Transform::Wrap)
            }
            ("translate", _) => {
                self.error(
                    Diagnostic::new(
                        Code::ExpansionFailed,
                        v.value.span,
                        "`translate` cannot be expanded: translation needs a model",
                    )
                    .label("not a pure transform")
                    .help("write the translated prompts as a dataset with a `locale` column, or as a locale axis over translated templates"),
                );
                None
            }
            _ => None,
        }
    }

    /// The hazard labels of a code: its top-level category and, for a sub-code, the code.
    pub(crate) fn hazard_of(
        &self,
        taxonomy: &str,
        code: &str,
    ) -> Option<(String, Option<String>, Value)> {
        let t = self.taxonomy(taxonomy)?;
        let walk = t.walk();
        let (cat, _) = walk.iter().find(|(c, _)| c.code.name == code)?;
        // Climb to the top-level ancestor.
        let mut top = code;
        while let Some((_, Some(parent))) = walk.iter().find(|(c, _)| c.code.name == top) {
            top = &parent.code.name;
        }
        let mut obj = Map::new();
        obj.insert("code".into(), Value::String(code.to_string()));
        obj.insert("title".into(), Value::String(cat.title.value.clone()));
        if let Some(def) = cat.props.str("definition") {
            obj.insert("definition".into(), Value::String(def.to_string()));
        }
        obj.insert("taxonomy".into(), Value::String(taxonomy.to_string()));
        let sub = (top != code).then(|| code.to_string());
        Some((top.to_string(), sub, Value::Object(obj)))
    }

    /// The persona as templates see it: `{{persona.name}}`, `{{persona.attrs.tone}}`.
    fn persona_value(&self, name: &str) -> Value {
        let mut obj = Map::new();
        obj.insert("name".into(), Value::String(name.to_string()));
        if let Some(p) = self.persona(name) {
            if let Some(title) = &p.title {
                obj.insert("title".into(), Value::String(title.value.clone()));
            }
            if let Some(d) = p.props.str("description") {
                obj.insert("description".into(), Value::String(d.to_string()));
            }
            let attrs = p
                .props
                .value("attrs")
                .and_then(|e| value::eval(e, &NoEnv).ok())
                .unwrap_or_else(|| Value::Object(Map::new()));
            obj.insert("attrs".into(), attrs);
        }
        Value::Object(obj)
    }

    /// Emits one base item crossed with every combination of `axes`.
    pub(crate) fn emit(&mut self, base: &Base, axes: &[ResolvedAxis]) {
        let mut index = vec![0usize; axes.len()];
        if axes.iter().any(|a| a.variants.is_empty()) {
            return;
        }
        loop {
            if self.out.stopped {
                return;
            }
            self.emit_one(base, axes, &index);
            // Advance the mixed-radix counter: the last axis varies fastest.
            let mut i = axes.len();
            loop {
                if i == 0 {
                    return;
                }
                i -= 1;
                index[i] += 1;
                if index[i] < axes[i].variants.len() {
                    break;
                }
                index[i] = 0;
            }
        }
    }

    fn emit_one(&mut self, base: &Base, axes: &[ResolvedAxis], index: &[usize]) {
        let mut persona = base.persona.clone();
        let mut locale = base.locale.clone();
        let mut system: Option<Option<&str>> = None;
        let mut transforms = Vec::new();
        let mut coords = BTreeMap::new();
        let mut key = base.key.clone();
        for (axis, &i) in axes.iter().zip(index) {
            let (variant_name, variant) = &axis.variants[i];
            coords.insert(axis.name.clone(), variant_name.clone());
            key.push_str(&format!("/{}={variant_name}", axis.name));
            match variant {
                Variant::System(t) => system = Some(t.as_deref()),
                Variant::Transform(t) => transforms.push(t),
                Variant::Locale(l) => locale = Some(l.clone()),
                Variant::Persona(p) => persona = Some(p.clone()),
            }
        }

        let mut context = base.vars.clone();
        if let Some(p) = &persona {
            context
                .entry("persona")
                .or_insert_with(|| self.persona_value(p));
        }
        if let (Some(t), Some(h)) = (&base.taxonomy, &base.hazard) {
            let code = base.sub_hazard.as_deref().unwrap_or(h);
            if let Some((_, _, obj)) = self.hazard_of(t, code) {
                context.entry("hazard").or_insert(obj);
            }
        }
        if let Some(l) = &locale {
            context
                .entry("locale")
                .or_insert_with(|| Value::String(l.clone()));
        }
        let context = Value::Object(context);

        let mut turns = match &base.user {
            UserTurns::Template(name) => match self.render(name, &context, base) {
                Some(text) => vec![text],
                None => return,
            },
            UserTurns::Fixed(turns) => turns.clone(),
        };
        for t in transforms {
            for turn in &mut turns {
                *turn = match t {
                    Transform::Wrap(name) => {
                        let mut ctx = context.clone();
                        ctx["prompt"] = Value::String(std::mem::take(turn));
                        match self.render(name, &ctx, base) {
                            Some(text) => text,
                            None => return,
                        }
                    }
                    other => other.apply(turn),
                };
            }
        }
        let system_text = match system {
            Some(None) => None,
            Some(Some(name)) => match self.render(name, &context, base) {
                Some(text) => Some(text),
                None => return,
            },
            None => match &base.system {
                None => None,
                Some(SystemPrompt::Fixed(s)) => Some(s.clone()),
                Some(SystemPrompt::Template(name)) => match self.render(name, &context, base) {
                    Some(text) => Some(text),
                    None => return,
                },
            },
        };

        let mut messages = Vec::with_capacity(turns.len() + 1);
        if let Some(s) = system_text.filter(|s| !s.is_empty()) {
            messages.push(Message {
                role: Role::System,
                content: s,
            });
        }
        messages.extend(turns.into_iter().map(|content| Message {
            role: Role::User,
            content,
        }));
        let labels = Labels {
            taxonomy: base.taxonomy.clone(),
            hazard: base.hazard.clone(),
            sub_hazard: base.sub_hazard.clone(),
            persona,
            locale,
            axes: coords,
        };
        let mut item = Item {
            id: String::new(),
            key,
            source: base.source.clone(),
            messages,
            labels,
            expect: base.expect.clone(),
            response: base.response.clone(),
            gold: base.gold.clone(),
            group: base.group.clone(),
            program: base.program.clone(),
            attachments: base.attachments.clone(),
            metadata: base.metadata.clone(),
        };
        let mut hasher = Sha256::new();
        serde_json::to_writer(
            HashWriter(&mut hasher),
            &Content {
                messages: &item.messages,
                labels: &item.labels,
                expect: &item.expect,
                response: &item.response,
                gold: &item.gold,
                group: &item.group,
                program: &item.program,
                attachments: &item.attachments,
                metadata: &item.metadata,
            },
        )
        .expect("hashing cannot fail");
        let digest = hasher.finalize();
        item.id = hex::encode(&digest[..16]);
        let fingerprint = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        if !self.seen.insert(fingerprint) {
            self.out.counts.duplicates += 1;
            self.duplicate(base, &item);
            return;
        }
        self.out.counts.add(&item);
        if (self.sink)(item).is_break() {
            self.out.stopped = true;
        }
    }

    fn render(&mut self, name: &str, context: &Value, base: &Base) -> Option<String> {
        match self.hb.render(name, context) {
            Ok(text) => Some(text),
            Err(e) => {
                let reason = match e.reason() {
                    handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
                        format!("`{path}` has no value")
                    }
                    other => other.to_string(),
                };
                let bindings = serde_json::to_string(&base.vars).unwrap_or_default();
                self.error(
                    Diagnostic::new(
                        Code::RenderFailed,
                        base.span,
                        format!("`{}` cannot be rendered: {reason}", base.source),
                    )
                    .label(format!("while rendering {}", base.key))
                    .help(format!(
                        "with the bindings {bindings}; every variable a template reads must have a value"
                    )),
                );
                None
            }
        }
    }

    /// Reports duplicates once per source: the first one, with a count in the summary.
    fn duplicate(&mut self, base: &Base, item: &Item) {
        let already = self
            .out
            .diagnostics
            .iter()
            .any(|d| d.code == Code::DuplicateItem && d.primary.span == base.span);
        if already {
            return;
        }
        self.error(
            Diagnostic::new(
                Code::DuplicateItem,
                base.span,
                format!(
                    "`{}` produces an item identical to an earlier one ({}); duplicates are left out",
                    base.source, item.key
                ),
            )
            .label("duplicate items")
            .help("identical prompts, labels and coordinates make one item; remove the repeated value, or tell the items apart with metadata"),
        );
    }
}

/// An environment where no name has a value.
pub(crate) struct NoEnv;

impl value::Env for NoEnv {
    fn path(&self, _: &[&str]) -> Option<Value> {
        None
    }
}

/// `path` relative to `root`, with forward slashes.
pub(crate) fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root)
        .unwrap_or(path)
        .to_string_lossy()
        .replace('\\', "/")
}

/// "did you mean" over names.
pub(crate) fn suggest<'n>(
    name: &str,
    candidates: impl IntoIterator<Item = &'n str>,
) -> Option<&'n str> {
    did_you_mean(name, candidates)
}
