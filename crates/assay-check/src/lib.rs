//! `assay-check`: from parsed sources to a checked semantic model.
//!
//! It loads the module graph (the entry spec, `use`d files, `std::...` modules embedded from
//! `stdlib/`, package dependencies), builds scopes, and runs every semantic check: names,
//! taxonomy codes and mappings, template variables, judge label sets, typed metric
//! expressions, grade scales, versions, hashes and file references. All problems are reported
//! in one pass, sorted by position. It reads files only through a [`SourceLoader`], never the
//! network, and may depend only on `assay-syntax`.
//!
//! ```
//! use assay_check::{MemoryLoader, Package, check};
//! use std::path::Path;
//!
//! let loader = MemoryLoader::new().with(
//!     "main.assay",
//!     "use std::taxonomy::ailuminate_v1\ntemplate t { prompt = \"Hi\"  hazard = ailuminate_v1.vcx }\n",
//! );
//! let checked = check(&Package::single_file(Path::new("main.assay")), &loader).unwrap();
//! assert_eq!(checked.diagnostics[0].message, "taxonomy `ailuminate_v1` has no code `vcx`");
//! assert_eq!(checked.diagnostics[0].help.as_deref(), Some("did you mean `vcr`?"));
//! ```

mod checks;
mod extends;
pub mod hub;
mod imports;
mod loader;
pub mod lock;
pub mod manifest;
mod model;
mod scope;
pub mod stdlib;

pub use checks::judge::{PARSERS, PREPROCESS_STEPS};
pub use checks::metric::{ITEM_FIELDS, ITEM_NUMBERS, function_names as metric_functions};
pub use imports::{LoadedModule, Origin, resolve_in_package};
pub use loader::{FsLoader, MemoryLoader, Package, SourceLoader, normalize};
pub use model::{Definition, Model};

use assay_syntax::{Code, Diagnostic, SourceMap, Span, finish_diagnostics};

/// The result of checking a package.
#[derive(Debug)]
pub struct Checked {
    pub sources: SourceMap,
    pub modules: Vec<LoadedModule>,
    /// Every diagnostic, sorted by file and position.
    pub diagnostics: Vec<Diagnostic>,
    /// The semantic model of the entry module's scope.
    pub model: Model,
    /// Every package file the spec reads (modules, prompts, rubrics, fragment lists),
    /// package-relative, with its sha256: what the lock file records.
    pub files: std::collections::BTreeMap<String, String>,
}

impl Checked {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Checks a package. `Err` only when the entry file cannot be read.
pub fn check(package: &Package, loader: &dyn SourceLoader) -> std::io::Result<Checked> {
    let mut graph = imports::GraphLoader::new(package, loader);
    graph.load_entry()?;
    let mut diagnostics = std::mem::take(&mut graph.diagnostics);
    let mut modules = std::mem::take(&mut graph.modules);
    let mut sources = std::mem::take(&mut graph.sources);

    if let Some(manifest) = &package.manifest {
        check_manifest(manifest, &mut sources, &mut diagnostics);
    }
    let scopes = scope::build(&modules, &mut diagnostics);
    extends::resolve(&mut modules, &scopes, &mut diagnostics);
    let mut ctx = checks::Ctx {
        modules: &modules,
        scopes: &scopes,
        sources: &mut sources,
        loader,
        diagnostics: Vec::new(),
        m: 0,
        item_labels: Default::default(),
        read: Default::default(),
    };
    checks::run(&mut ctx);
    diagnostics.append(&mut ctx.diagnostics);
    let read = std::mem::take(&mut ctx.read);
    let reads = reads(package, loader, &modules, &sources, &read);
    lock::check_lock(package, loader, &reads, &mut sources, &mut diagnostics);
    let files = reads.files;
    finish_diagnostics(&mut diagnostics);

    let model = Model::build(&modules, &scopes);
    Ok(Checked {
        sources,
        modules,
        diagnostics,
        model,
        files,
    })
}

/// What the suite reads, as the lock file records it: spec modules and the files texts and
/// variable domains name, relative to the package root, and the datasets.
fn reads(
    package: &Package,
    loader: &dyn SourceLoader,
    modules: &[LoadedModule],
    sources: &SourceMap,
    read: &std::collections::BTreeSet<std::path::PathBuf>,
) -> lock::Reads {
    let rel = |path: &std::path::Path| {
        lock::relative(&package.root, path).unwrap_or_else(|| path.display().to_string())
    };
    let mut files = std::collections::BTreeMap::new();
    let mut datasets = std::collections::BTreeMap::new();
    for module in modules {
        let Origin::File { path, .. } = &module.origin else {
            continue;
        };
        let text = &sources.get(module.file).text;
        files.insert(rel(path), lock::sha256_hex(text.as_bytes()));
        for decl in &module.ast.decls {
            let assay_syntax::ast::Decl::Dataset(d) = decl else {
                continue;
            };
            let hash = match (d.props.str("sha256"), d.props.str("path"), module.dir()) {
                (Some(pinned), _, _) => Some(pinned.to_ascii_lowercase()),
                (None, Some(p), Some(dir)) => loader
                    .read_bytes(&normalize(&dir.join(p)))
                    .ok()
                    .map(|t| lock::sha256_hex(&t)),
                _ => None,
            };
            datasets.insert(d.name.name.clone(), hash);
        }
    }
    for path in read {
        if let Ok(text) = loader.read(path) {
            files.insert(rel(path), lock::sha256_hex(text.as_bytes()));
        }
    }
    lock::Reads { files, datasets }
}

/// The manifest's version must be semver, like the suite's.
fn check_manifest(
    manifest: &manifest::Manifest,
    sources: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) {
    if let Err(e) = semver::Version::parse(&manifest.version) {
        let file = sources.add(manifest.path.display().to_string(), manifest.text.clone());
        diagnostics.push(
            Diagnostic::new(
                Code::InvalidVersion,
                Span::new(file, manifest.version_span.start, manifest.version_span.end),
                format!("package version `{}` is not semver: {e}", manifest.version),
            )
            .label("expected MAJOR.MINOR.PATCH")
            .help("write versions like \"1.0.0\" or \"2.1.0-rc.1\""),
        );
    }
}
