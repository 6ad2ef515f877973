//! Loading the module graph: the entry file, then every `use`, depth first. Resolves
//! `std::...` against the embedded standard library, relative files against the importing file,
//! and `pkg::...` against assay.toml dependencies; reports missing modules, files outside the
//! package and import cycles.

use crate::loader::{Package, SourceLoader, normalize};
use crate::stdlib;
use assay_syntax::ast::{Decl, ImportSource, Module, Use};
use assay_syntax::{Code, Diagnostic, FileId, SourceMap, Span, did_you_mean};
use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Where a module came from.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Origin {
    /// A file of the checked package or of a dependency; `root` is that package's root.
    File { path: PathBuf, root: PathBuf },
    /// A standard-library module, `std::a::b`.
    Std(String),
}

#[derive(Clone, Debug)]
pub struct LoadedModule {
    pub file: FileId,
    pub origin: Origin,
    pub ast: Module,
    /// For each `use` declaration (by decl index), the module it resolved to.
    pub imports: BTreeMap<usize, usize>,
}

impl LoadedModule {
    /// The package root that file references in this module must stay inside.
    pub fn root(&self) -> Option<&Path> {
        match &self.origin {
            Origin::File { root, .. } => Some(root),
            Origin::Std(_) => None,
        }
    }

    /// The folder relative file references resolve against.
    pub fn dir(&self) -> Option<PathBuf> {
        match &self.origin {
            Origin::File { path, .. } => {
                Some(path.parent().map(Path::to_path_buf).unwrap_or_default())
            }
            Origin::Std(_) => None,
        }
    }

    pub fn is_std(&self) -> bool {
        matches!(self.origin, Origin::Std(_))
    }
}

pub(crate) struct GraphLoader<'a> {
    package: &'a Package,
    loader: &'a dyn SourceLoader,
    pub(crate) sources: SourceMap,
    pub(crate) modules: Vec<LoadedModule>,
    pub(crate) diagnostics: Vec<Diagnostic>,
    index: BTreeMap<Origin, usize>,
    stack: Vec<usize>,
}

impl<'a> GraphLoader<'a> {
    pub(crate) fn new(package: &'a Package, loader: &'a dyn SourceLoader) -> Self {
        GraphLoader {
            package,
            loader,
            sources: SourceMap::new(),
            modules: Vec::new(),
            diagnostics: Vec::new(),
            index: BTreeMap::new(),
            stack: Vec::new(),
        }
    }

    /// Loads the entry file; `Err` when it cannot be read at all (a tool error, not a
    /// diagnostic: there is no span to point at).
    pub(crate) fn load_entry(&mut self) -> std::io::Result<()> {
        let path = normalize(&self.package.root.join(&self.package.entry));
        let text = self.loader.read(&path)?;
        let origin = Origin::File {
            path,
            root: normalize(&self.package.root),
        };
        self.visit(origin, text);
        Ok(())
    }

    fn visit(&mut self, origin: Origin, text: String) -> usize {
        let name = match &origin {
            Origin::File { path, .. } => path.display().to_string(),
            Origin::Std(name) => name.clone(),
        };
        let file = self.sources.add(name, text);
        let (ast, mut diags) = assay_syntax::parse(file, &self.sources.get(file).text);
        self.diagnostics.append(&mut diags);
        let me = self.modules.len();
        self.modules.push(LoadedModule {
            file,
            origin: origin.clone(),
            ast,
            imports: BTreeMap::new(),
        });
        self.index.insert(origin, me);
        self.stack.push(me);
        let uses: Vec<(usize, Use)> = self.modules[me]
            .ast
            .decls
            .iter()
            .enumerate()
            .filter_map(|(i, d)| match d {
                Decl::Use(u) => Some((i, u.clone())),
                _ => None,
            })
            .collect();
        for (i, u) in uses {
            if let Some(target) = self.resolve(me, &u) {
                self.modules[me].imports.insert(i, target);
            }
        }
        self.stack.pop();
        me
    }

    /// Resolves one `use` of module `from`, loading the target if new.
    fn resolve(&mut self, from: usize, u: &Use) -> Option<usize> {
        let origin = self.locate(from, u)?;
        if let Some(&existing) = self.index.get(&origin) {
            if let Some(pos) = self.stack.iter().position(|m| *m == existing) {
                let chain: Vec<String> = self.stack[pos..]
                    .iter()
                    .chain(std::iter::once(&existing))
                    .map(|m| self.sources.get(self.modules[*m].file).name.clone())
                    .collect();
                self.diagnostics.push(
                    Diagnostic::new(
                        Code::ImportCycle,
                        u.source_span,
                        format!("import cycle: {}", chain.join(" → ")),
                    )
                    .label("this import closes the cycle")
                    .help("move the shared definitions into a module that both import"),
                );
                return None;
            }
            return Some(existing);
        }
        let text = match &origin {
            Origin::Std(name) => {
                let segments: Vec<&str> = name.trim_start_matches("std::").split("::").collect();
                stdlib::module(&segments)?.to_string()
            }
            Origin::File { path, .. } => match self.loader.read(path) {
                Ok(text) => text,
                Err(e) => {
                    let shown = path.display();
                    let d = if self.loader.is_file(path) {
                        Diagnostic::new(
                            Code::ImportNotFound,
                            u.source_span,
                            format!("cannot read `{shown}`: {e}"),
                        )
                        .label("unreadable file")
                        .help("spec files must be UTF-8 text")
                    } else {
                        Diagnostic::new(
                            Code::ImportNotFound,
                            u.source_span,
                            format!("cannot find `{shown}`"),
                        )
                        .label(format!("no file at {shown}"))
                        .help("file imports are relative to the importing file")
                    };
                    self.diagnostics.push(d);
                    return None;
                }
            },
        };
        Some(self.visit(origin, text))
    }

    /// Where a `use` points, without reading it: a std module that exists, or a file path
    /// inside its package.
    fn locate(&mut self, from: usize, u: &Use) -> Option<Origin> {
        match &u.source {
            ImportSource::Std(segments) => {
                let names: Vec<&str> = segments.iter().map(|s| s.name.as_str()).collect();
                let full = format!("std::{}", names.join("::"));
                if stdlib::module(&names).is_some() {
                    return Some(Origin::Std(full));
                }
                let all = stdlib::modules();
                let suggestion = did_you_mean(&full, all.iter().map(String::as_str));
                let d = Diagnostic::new(
                    Code::UnknownStdModule,
                    u.source_span,
                    format!("no standard-library module `{full}`"),
                )
                .label("not in the standard library");
                let d = match suggestion {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("the standard library has: {}", all.join(", "))),
                };
                self.diagnostics.push(d);
                None
            }
            ImportSource::File(path) => {
                let module = &self.modules[from];
                let (Some(dir), Some(root)) = (module.dir(), module.root().map(Path::to_path_buf))
                else {
                    self.diagnostics.push(
                        Diagnostic::new(
                            Code::ImportNotFound,
                            u.source_span,
                            "standard-library modules cannot import files",
                        )
                        .label("file import in a std module"),
                    );
                    return None;
                };
                let target = self.file_in_package(&root, &dir, &path.value, path.span)?;
                Some(Origin::File { path: target, root })
            }
            ImportSource::Package { package, path } => {
                let Some(dep_root) = self.package.dependencies.get(&package.name) else {
                    let names = self.package.dependencies.keys().map(String::as_str);
                    let d = Diagnostic::new(
                        Code::ImportNotFound,
                        package.span,
                        format!("`{}` is not a dependency of this package", package.name),
                    )
                    .label("unknown package")
                    .suggest(did_you_mean(&package.name, names))
                    .help(format!(
                        "add it under [dependencies] in assay.toml, e.g. `{} = {{ path = \"../{}\" }}`, or import `std::...`",
                        package.name, package.name
                    ));
                    self.diagnostics.push(d);
                    return None;
                };
                let rel: PathBuf = path
                    .iter()
                    .map(|s| s.name.as_str())
                    .collect::<PathBuf>()
                    .with_extension("assay");
                let root = normalize(dep_root);
                let target = normalize(&root.join(&rel));
                Some(Origin::File { path: target, root })
            }
        }
    }

    /// Resolves `rel` against `dir`, refusing absolute paths and paths leaving `root`.
    fn file_in_package(
        &mut self,
        root: &Path,
        dir: &Path,
        rel: &str,
        span: Span,
    ) -> Option<PathBuf> {
        match resolve_in_package(self.loader, root, dir, rel) {
            Ok(path) => Some(path),
            Err(why) => {
                self.diagnostics.push(outside_package(span, rel, why));
                None
            }
        }
    }
}

/// Resolves a package-relative reference; `Err` says why it is refused.
pub fn resolve_in_package(
    loader: &dyn SourceLoader,
    root: &Path,
    dir: &Path,
    rel: &str,
) -> Result<PathBuf, &'static str> {
    let rel_path = Path::new(rel);
    if rel_path.is_absolute()
        || rel.starts_with('/')
        || rel.starts_with('\\')
        || rel_path.has_root()
    {
        return Err("absolute paths are not allowed");
    }
    let target = normalize(&dir.join(rel_path));
    let root = normalize(root);
    let inside = match target.strip_prefix(&root) {
        Ok(rest) => !matches!(rest.components().next(), Some(Component::ParentDir)),
        Err(_) => false,
    };
    if !inside
        || (root.as_os_str().is_empty()
            && matches!(target.components().next(), Some(Component::ParentDir)))
    {
        return Err("the path leaves the package");
    }
    // Lexically inside; a symbolic link may still lead out.
    if let (Some(real), Some(real_root)) = (loader.canonical(&target), loader.canonical(&root))
        && !real.starts_with(&real_root)
    {
        return Err("a symbolic link leads out of the package");
    }
    Ok(target)
}

pub(crate) fn outside_package(span: Span, rel: &str, why: &str) -> Diagnostic {
    Diagnostic::new(
        Code::PathOutsidePackage,
        span,
        format!("`{rel}` is outside the package"),
    )
    .label(why.to_string())
    .help("a spec reads only files inside its own package folder; copy the file into the package")
}
