//! `assay-expand`: from a checked spec to a stream of test items.
//!
//! Templates are rendered over their variable bindings (cartesian product, zip, `where`
//! filters, seeded sampling), dataset rows are read, typed and mapped, and every item is
//! crossed with the axes its source names (system prompts, transforms, locales, personas).
//! Each item gets an id that hashes its content and coordinates. Items stream to a sink one by
//! one: memory holds the spec and the variable domains (and, while a dataset expands, an
//! 8-byte fingerprint per row to find repeated rows), never the items themselves.
//!
//! Expansion is pure apart from reading: spec-relative files come through the checker's
//! [`SourceLoader`], dataset bytes through a [`DataSource`] (the CLI's resolves `--data`
//! overrides, the package's files, the data cache and downloads). Problems are
//! [`Diagnostic`]s pointing into the spec. It may depend on `assay-syntax`, `assay-check`
//! and `assay-ir` only.

mod attachment;
mod choice;
mod dataset;
mod program;
mod render;
mod rfc4180;
mod sample;
mod scoring;
mod strict_value;
mod template;
mod transform;

pub use scoring::target_spec;
mod value;

use assay_check::{Checked, Definition, SourceLoader, resolve_in_package};
use assay_ir::{Counts, DatasetInfo, Expect, Item, Labels, Message, Role};
use assay_syntax::ast::{Axis, AxisKind, Decl, Expr, Ident, Persona, Taxonomy};
use assay_syntax::{Code, Diagnostic, Span};
use serde::Serialize;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::io::Read;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::rc::Rc;
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

    /// The bytes published at `url`, checked against `sha256`: an attachment pinned by hash.
    /// A source that cannot download says so.
    fn fetch(&self, url: &str, sha256: &str) -> Result<Vec<u8>, String> {
        let _ = sha256;
        Err(format!(
            "`{url}` is a URL, and this expansion downloads nothing: compile the suite with `assay compile` (which downloads it into the data cache), or download the file into the package and name its path"
        ))
    }
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
    /// Judges, metrics, grades and report tables, lowered for the runner.
    pub scoring: assay_ir::Scoring,
    /// Every target of the spec, lowered (its `system` file read), by name.
    pub targets: BTreeMap<String, assay_ir::TargetSpec>,
    /// The conversation programs items name, lowered.
    pub programs: BTreeMap<String, assay_ir::ProgramSpec>,
}

impl Expansion {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Expands every template and dataset of a checked spec, in the order they are written,
/// handing each item to `sink` with its canonical JSON line (no newline): the bytes a
/// compiled suite's `items.jsonl` holds, equal to `serde_json::to_vec(item)`. The spec must
/// have checked without errors.
pub fn expand(
    checked: &Checked,
    loader: &dyn SourceLoader,
    data: &dyn DataSource,
    options: &Options,
    sink: &mut dyn FnMut(&Item, &[u8]) -> ControlFlow<()>,
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
        renderer: render::Renderer::new(),
        personas: HashMap::new(),
        hazards: HashMap::new(),
        code_owners: HashMap::new(),
        render_failures: BTreeMap::new(),
        buffer: Vec::with_capacity(1024),
        line: Vec::with_capacity(1024),
        out: Expansion {
            seed: options.seed.unwrap_or(suite_seed),
            ..Expansion::default()
        },
        seen: HashSet::default(),
        track_duplicates: false,
        sink,
        module: 0,
        shuffle: None,
    };
    ex.shuffle = choice::Shuffle::of(checked, ex.out.seed);
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
    ex.out.targets = ex.lower_targets();
    ex.out.scoring = ex.lower_scoring();
    for (index, more) in std::mem::take(&mut ex.render_failures).into_values() {
        if more > 0 {
            let d = &mut ex.out.diagnostics[index];
            d.message.push_str(&if more == 1 {
                " (and 1 more item fails the same way)".to_string()
            } else {
                format!(" (and {more} more items fail the same way)")
            });
        }
    }
    assay_syntax::finish_diagnostics(&mut ex.out.diagnostics);
    ex.out
}

pub(crate) struct Expander<'a> {
    checked: &'a Checked,
    loader: &'a dyn SourceLoader,
    data: &'a dyn DataSource,
    renderer: render::Renderer,
    /// Personas and hazards as templates see them, built once each.
    personas: HashMap<String, Rc<Value>>,
    hazards: HashMap<String, HashMap<String, Option<Hazard>>>,
    /// Code → the taxonomies in scope defining it.
    code_owners: HashMap<String, Vec<&'a str>>,
    /// Source → its rendering report (index into the diagnostics) and how many more
    /// bindings failed after it.
    render_failures: BTreeMap<String, (usize, u64)>,
    /// Reused for serialising each item's content to hash it.
    buffer: Vec<u8>,
    out: Expansion,
    /// Fingerprints (the first 8 bytes of the id) of the current dataset's items, to find
    /// repeated rows; ids are uniformly distributed, so they are their own hash. Templates
    /// need none: distinct bindings make distinct items, and repeated values are removed from
    /// the domains before expansion, so memory does not grow with the number of items.
    pub(crate) seen: HashSet<u64, BuildHasherDefault<Fingerprint>>,
    pub(crate) track_duplicates: bool,
    sink: &'a mut dyn FnMut(&Item, &[u8]) -> ControlFlow<()>,
    /// Reused for each item's JSON line.
    line: Vec<u8>,
    /// The module of the definition being expanded: file references resolve against it.
    module: usize,
    /// Option shuffling asked for by a `choice` judge (`choice.rs`).
    shuffle: Option<choice::Shuffle>,
}

/// The hazard labels of a code: its top-level code, the sub-code when it is one, and the
/// category as templates see it (`{{hazard.title}}`).
#[derive(Clone, Debug)]
pub(crate) struct Hazard {
    pub top: String,
    pub sub: Option<String>,
    pub value: Rc<Value>,
}

/// A hasher for values that are already hashes.
#[derive(Default)]
struct Fingerprint(u64);

impl Hasher for Fingerprint {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.0 = (self.0 << 8) | u64::from(*b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
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
    /// A conversation program, or `None` for a single turn.
    Program(Option<String>),
    /// A defense around the target (`None` for none).
    Defense(Option<assay_ir::DefenseSpec>),
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
    /// The hazard as templates see it (`{{hazard.title}}`).
    pub hazard_value: Option<Rc<Value>>,
    pub persona: Option<String>,
    /// The persona as templates see it, when known before the axes.
    pub persona_value: Option<Rc<Value>>,
    pub locale: Option<String>,
    pub expect: Expect,
    pub response: Option<String>,
    pub gold: Option<String>,
    pub group: Option<String>,
    pub program: Option<String>,
    pub defense: Option<assay_ir::DefenseSpec>,
    pub attachments: Vec<assay_ir::Attachment>,
    pub metadata: BTreeMap<String, Value>,
    /// Where to point when rendering fails.
    pub span: Span,
}

#[derive(Clone)]
pub(crate) enum UserTurns {
    Template(Rc<str>),
    /// Fixed turns: the user's, and, in a recorded conversation, the assistant's between them.
    Fixed(Vec<(Role, String)>),
}

#[derive(Clone)]
pub(crate) enum SystemPrompt {
    Template(Rc<str>),
    Fixed(String),
}

/// The part of an item its id hashes: everything but the id and the key, in the order and
/// with the omissions of [`Item`]'s own serialisation. The source is part of it: two
/// templates that happen to write the same prompt make two items.
#[derive(Serialize)]
struct Content<'a> {
    source: &'a str,
    messages: &'a [Message],
    labels: &'a Labels,
    expect: &'a Expect,
    #[serde(skip_serializing_if = "Option::is_none")]
    response: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    gold: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    group: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    program: &'a Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    defense: &'a Option<assay_ir::DefenseSpec>,
    #[serde(skip_serializing_if = "<[assay_ir::Attachment]>::is_empty")]
    attachments: &'a [assay_ir::Attachment],
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    metadata: &'a BTreeMap<String, Value>,
}

impl<'a> Content<'a> {
    fn of(item: &'a Item) -> Self {
        Content {
            source: &item.source,
            messages: &item.messages,
            labels: &item.labels,
            expect: &item.expect,
            response: &item.response,
            gold: &item.gold,
            group: &item.group,
            program: &item.program,
            defense: &item.defense,
            attachments: &item.attachments,
            metadata: &item.metadata,
        }
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

    /// Every taxonomy in scope that defines `code`, remembered per code.
    fn taxonomies_with(&mut self, code: &str) -> Vec<&'a str> {
        if let Some(known) = self.code_owners.get(code) {
            return known.clone();
        }
        let owners: Vec<&'a str> = self
            .checked
            .model
            .of_kind("taxonomy")
            .filter_map(|(name, d)| match d {
                Decl::Taxonomy(t) if t.walk().iter().any(|(c, _)| c.code.name == code) => {
                    Some(name)
                }
                _ => None,
            })
            .collect();
        self.code_owners.insert(code.to_string(), owners.clone());
        owners
    }

    /// Starts from the files the checker read: spec modules, prompts, rubrics.
    fn hash_modules(&mut self) {
        self.out.files = self.checked.files.clone();
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
        match self.renderer.register(&name, text) {
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
                AxisKind::Program => Variant::Program(
                    v.value
                        .as_name()
                        .map(|n| n.name.clone())
                        .filter(|n| n != "none"),
                ),
                AxisKind::Defense => {
                    let assay_syntax::ast::ExprKind::Record(props) = &v.value.kind else {
                        return None;
                    };
                    let props = assay_syntax::ast::Props(props.clone());
                    let defense = self.defense_of(&props)?;
                    Variant::Defense((!defense.is_empty()).then_some(defense))
                }
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

    /// The hazard of `code`, in `taxonomy` when known, else in the one taxonomy in scope
    /// that defines it. `Err` says why there is none.
    pub(crate) fn resolve_hazard(
        &mut self,
        taxonomy: Option<String>,
        code: &str,
    ) -> Result<(String, Hazard), String> {
        let taxonomy = match taxonomy {
            Some(t) => t,
            None => match self.taxonomies_with(code).as_slice() {
                [only] => (*only).to_string(),
                [] => return Err(format!("no taxonomy in scope defines `{code}`")),
                several => {
                    return Err(format!(
                        "`{code}` is a code of several taxonomies ({}), so it is ambiguous",
                        several.join(", ")
                    ));
                }
            },
        };
        match self.hazard_of(&taxonomy, code) {
            Some(h) => Ok((taxonomy, h)),
            None => Err(format!("taxonomy `{taxonomy}` has no code `{code}`")),
        }
    }

    /// The hazard labels of a code of `taxonomy`; `None` when it has no such code.
    pub(crate) fn hazard_of(&mut self, taxonomy: &str, code: &str) -> Option<Hazard> {
        if let Some(known) = self.hazards.get(taxonomy).and_then(|t| t.get(code)) {
            return known.clone();
        }
        let found = self.find_hazard(taxonomy, code);
        self.hazards
            .entry(taxonomy.to_string())
            .or_default()
            .insert(code.to_string(), found.clone());
        found
    }

    fn find_hazard(&self, taxonomy: &str, code: &str) -> Option<Hazard> {
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
        Some(Hazard {
            top: top.to_string(),
            sub: (top != code).then(|| code.to_string()),
            value: Rc::new(Value::Object(obj)),
        })
    }

    /// The persona as templates see it: `{{persona.name}}`, `{{persona.attrs.tone}}`.
    pub(crate) fn persona_value(&mut self, name: &str) -> Rc<Value> {
        if let Some(v) = self.personas.get(name) {
            return Rc::clone(v);
        }
        let v = Rc::new(self.build_persona(name));
        self.personas.insert(name.to_string(), Rc::clone(&v));
        v
    }

    fn build_persona(&self, name: &str) -> Value {
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
    pub(crate) fn emit(&mut self, mut base: Base, axes: &[ResolvedAxis]) {
        if axes.iter().any(|a| a.variants.is_empty()) {
            return;
        }
        let mut index = vec![0usize; axes.len()];
        loop {
            if self.out.stopped {
                return;
            }
            let last = axes
                .iter()
                .zip(&index)
                .all(|(a, &i)| i + 1 == a.variants.len());
            // A rendering failure is reported; the other combinations still expand.
            let _ = self.emit_one(&mut base, axes, &index, last);
            if last {
                return;
            }
            // Advance the mixed-radix counter: the last axis varies fastest.
            let mut i = axes.len();
            while i > 0 {
                i -= 1;
                index[i] += 1;
                if index[i] < axes[i].variants.len() {
                    break;
                }
                index[i] = 0;
            }
        }
    }

    /// Emits one combination. On the `last` one the base's fields are moved, not copied.
    fn emit_one(
        &mut self,
        base: &mut Base,
        axes: &[ResolvedAxis],
        index: &[usize],
        last: bool,
    ) -> Option<()> {
        let mut persona = base.persona.as_deref();
        let mut locale = base.locale.as_deref();
        let mut system: Option<Option<&str>> = None;
        let mut transforms = Vec::new();
        let mut program: Option<&Option<String>> = None;
        let mut defense: Option<&Option<assay_ir::DefenseSpec>> = None;
        let mut coords = BTreeMap::new();
        let mut key_suffix = String::new();
        for (axis, &i) in axes.iter().zip(index) {
            let (variant_name, variant) = &axis.variants[i];
            coords.insert(axis.name.clone(), variant_name.clone());
            key_suffix.push('/');
            key_suffix.push_str(&axis.name);
            key_suffix.push('=');
            key_suffix.push_str(variant_name);
            match variant {
                Variant::System(t) => system = Some(t.as_deref()),
                Variant::Transform(t) => transforms.push(t),
                Variant::Locale(l) => locale = Some(l),
                Variant::Persona(p) => persona = Some(p),
                Variant::Program(p) => program = Some(p),
                Variant::Defense(d) => defense = Some(d),
            }
        }
        let persona: Option<String> = persona.map(str::to_string);
        let locale: Option<String> = locale.map(str::to_string);

        let persona_value = match (&persona, &base.persona) {
            (Some(p), Some(b)) if p == b && base.persona_value.is_some() => {
                base.persona_value.clone()
            }
            (Some(p), _) => Some(self.persona_value(p)),
            (None, _) => None,
        };
        let hazard_value = base.hazard_value.clone();
        let locale_value = locale.clone().map(Value::String);
        let base_ref: &Base = base;
        let scope = render::Scope {
            prompt: None,
            vars: base_ref.vars(),
            persona: persona_value.as_deref(),
            hazard: hazard_value.as_deref(),
            locale: locale_value.as_ref(),
        };

        let mut turns: Vec<(Role, String)> = match &base_ref.user {
            UserTurns::Template(name) => vec![(Role::User, self.render(name, &scope, base_ref)?)],
            UserTurns::Fixed(turns) => turns.clone(),
        };
        for t in transforms {
            // Transforms rewrite the user's turns; a recorded assistant turn stays as said.
            for (_, turn) in turns.iter_mut().filter(|(role, _)| *role == Role::User) {
                *turn = match t {
                    Transform::Wrap(name) => {
                        let wrapped = render::Scope {
                            prompt: Some(turn),
                            ..scope
                        };
                        self.render(name, &wrapped, base_ref)?
                    }
                    other => other.apply(turn),
                };
            }
        }
        let system_text = match system {
            Some(None) => None,
            Some(Some(name)) => Some(self.render(name, &scope, base_ref)?),
            None => match &base_ref.system {
                None => None,
                Some(SystemPrompt::Fixed(s)) => Some(s.clone()),
                Some(SystemPrompt::Template(name)) => Some(self.render(name, &scope, base_ref)?),
            },
        };

        let mut messages = Vec::with_capacity(turns.len() + 1);
        if let Some(s) = system_text.filter(|s| !s.is_empty()) {
            messages.push(Message {
                role: Role::System,
                content: s,
            });
        }
        messages.extend(
            turns
                .into_iter()
                .map(|(role, content)| Message { role, content }),
        );

        // The last combination takes the base's fields; the others copy them.
        fn take<T: Clone + Default>(field: &mut T, last: bool) -> T {
            if last {
                std::mem::take(field)
            } else {
                field.clone()
            }
        }
        let mut key = take(&mut base.key, last);
        key.push_str(&key_suffix);
        let mut item = Item {
            id: String::new(),
            key,
            source: take(&mut base.source, last),
            messages,
            labels: Labels {
                taxonomy: take(&mut base.taxonomy, last),
                hazard: take(&mut base.hazard, last),
                sub_hazard: take(&mut base.sub_hazard, last),
                persona,
                locale,
                axes: coords,
            },
            expect: take(&mut base.expect, last),
            response: take(&mut base.response, last),
            gold: take(&mut base.gold, last),
            group: take(&mut base.group, last),
            program: match program {
                Some(p) => p.clone(),
                None => take(&mut base.program, last),
            },
            defense: match defense {
                Some(d) => d.clone(),
                None => take(&mut base.defense, last),
            },
            attachments: take(&mut base.attachments, last),
            metadata: take(&mut base.metadata, last),
        };
        if let Some(shuffle) = &self.shuffle {
            shuffle.apply(&mut item);
        }

        // The id hashes the item's content; the line written is the same bytes behind the id,
        // key and source, so every item is serialised once.
        self.buffer.clear();
        serde_json::to_writer(&mut self.buffer, &Content::of(&item)).expect("an item serialises");
        let digest = Sha256::digest(&self.buffer);
        let mut id = [0u8; 32];
        hex::encode_to_slice(&digest[..16], &mut id).expect("32 hex digits");
        item.id = std::str::from_utf8(&id).expect("hex is ASCII").to_string();
        let fingerprint = u64::from_le_bytes(digest[..8].try_into().expect("8 bytes"));
        if self.track_duplicates && !self.seen.insert(fingerprint) {
            self.out.counts.duplicates += 1;
            self.duplicate(base.span, &item);
            return Some(());
        }
        self.out.counts.add(&item);

        self.line.clear();
        self.line.extend_from_slice(b"{\"id\":\"");
        self.line.extend_from_slice(&id);
        self.line.extend_from_slice(b"\",\"key\":");
        serde_json::to_writer(&mut self.line, &item.key).expect("a string serialises");
        self.line.push(b',');
        self.line.extend_from_slice(&self.buffer[1..]);
        if (self.sink)(&item, &self.line).is_break() {
            self.out.stopped = true;
        }
        Some(())
    }

    /// Renders a registered template; `None` after reporting why it cannot be.
    fn render(&mut self, name: &str, scope: &render::Scope<'_>, base: &Base) -> Option<String> {
        match self.renderer.render(name, scope) {
            Ok(text) => Some(text),
            Err(e) => {
                // One report per template or dataset; later failures are counted into it.
                if let Some((_, more)) = self.render_failures.get_mut(&base.source) {
                    *more += 1;
                    return None;
                }
                self.render_failures
                    .insert(base.source.clone(), (self.out.diagnostics.len(), 0));
                let reason = match e.reason() {
                    handlebars::RenderErrorReason::MissingVariable(Some(path)) => {
                        format!("`{path}` has no value")
                    }
                    other => other.to_string(),
                };
                let bindings = serde_json::to_string(base.vars()).unwrap_or_default();
                self.error(
                    Diagnostic::new(
                        Code::RenderFailed,
                        base.span,
                        format!("`{}` cannot be rendered: {reason}", base.source),
                    )
                    .label(format!("while rendering {}", base.key))
                    .help(if base.vars().is_empty() {
                        "every value a template reads must exist: check the persona's `attrs` and the names used".to_string()
                    } else {
                        format!("with the bindings {bindings}; every value a template reads must exist")
                    }),
                );
                None
            }
        }
    }

    /// Reports duplicates once per source: the first one, with a count in the summary.
    fn duplicate(&mut self, span: Span, item: &Item) {
        let already = self
            .out
            .diagnostics
            .iter()
            .any(|d| d.code == Code::DuplicateItem && d.primary.span == span);
        if already {
            return;
        }
        self.error(
            Diagnostic::new(
                Code::DuplicateItem,
                span,
                format!(
                    "`{}` produces an item identical to an earlier one ({}); duplicates are left out",
                    item.source, item.key
                ),
            )
            .label("duplicate items")
            .help("identical prompts, labels and coordinates make one item; remove the repeated value, or tell the items apart with metadata"),
        );
    }
}

impl Base {
    /// The template variables of the item, kept in its metadata as `vars`.
    fn vars(&self) -> &Map<String, Value> {
        static EMPTY: std::sync::OnceLock<Map<String, Value>> = std::sync::OnceLock::new();
        match self.metadata.get("vars") {
            Some(Value::Object(m)) => m,
            _ => EMPTY.get_or_init(Map::new),
        }
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

/// A value short enough for a message.
pub(crate) fn preview(text: &str) -> String {
    let flat: String = text
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    if flat.chars().count() <= 40 {
        flat
    } else {
        format!("{}…", flat.chars().take(39).collect::<String>())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use assay_check::{MemoryLoader, Package, check};

    fn expand_text(spec: &str) -> Vec<(Item, Vec<u8>)> {
        let loader = MemoryLoader::new().with("main.assay", spec);
        let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
        assert!(!checked.has_errors(), "{:?}", checked.diagnostics);
        let mut items = Vec::new();
        let out = expand(
            &checked,
            &loader,
            &PackageData,
            &Options::default(),
            &mut |item, line| {
                items.push((item.clone(), line.to_vec()));
                ControlFlow::Continue(())
            },
        );
        assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
        items
    }

    /// The line handed to the sink is exactly the item's own serialisation, and the id is the
    /// hash of that line without the id and the key.
    #[test]
    fn the_line_is_the_item_and_the_id_hashes_its_content() {
        let items = expand_text(
            "use std::personas::v05\n\
             axis sys: system { none = \"\"  safe = \"Be safe, {{persona.name}}.\" }\n\
             template t {\n  prompt = \"{{x}}\"\n  persona = typical\n  expect = comply\n  axes = [sys]\n  metadata = { tag = \"m\" }\n  vars { x in [\"a\", \"b\"] }\n}\n",
        );
        assert_eq!(items.len(), 4);
        for (item, line) in &items {
            assert_eq!(line, &serde_json::to_vec(item).unwrap());
            // Everything after the key is the hashed content.
            let content = serde_json::to_vec(&Content::of(item)).unwrap();
            let prefix = format!(
                "{{\"id\":\"{}\",\"key\":{},",
                item.id,
                serde_json::to_string(&item.key).unwrap()
            );
            assert_eq!(line[..prefix.len()], *prefix.as_bytes());
            assert_eq!(line[prefix.len()..], content[1..]);
            assert_eq!(item.id, hex::encode(&Sha256::digest(&content)[..16]));
        }
        let ids: std::collections::BTreeSet<_> = items.iter().map(|(i, _)| &i.id).collect();
        assert_eq!(ids.len(), 4);
    }

    /// Ids hash JSON; if a dependency turned on `serde_json/preserve_order`, maps would keep
    /// insertion order instead of sorting, and ids could change between builds.
    #[test]
    fn json_objects_serialise_sorted() {
        let v = serde_json::json!({"b": 1, "a": 2});
        assert_eq!(v.to_string(), r#"{"a":2,"b":1}"#);
    }
}
