//! The checker's only window on files: a [`SourceLoader`]. The CLI gives it the real file
//! system; tests give it a [`MemoryLoader`]. Paths here are already resolved by the checker.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

/// Reads files for the checker.
pub trait SourceLoader {
    fn read(&self, path: &Path) -> std::io::Result<String>;
    /// A file's bytes, for data that need not be text (a Parquet dataset's hash).
    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        self.read(path).map(String::into_bytes)
    }
    fn is_file(&self, path: &Path) -> bool;
    /// The path with every symbolic link resolved, where the loader knows of links: used to
    /// keep a link from leading a file reference out of its package.
    fn canonical(&self, _path: &Path) -> Option<PathBuf> {
        None
    }
}

/// The file system.
#[derive(Clone, Copy, Debug, Default)]
pub struct FsLoader;

impl SourceLoader for FsLoader {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        std::fs::read_to_string(path)
    }

    fn read_bytes(&self, path: &Path) -> std::io::Result<Vec<u8>> {
        std::fs::read(path)
    }

    fn is_file(&self, path: &Path) -> bool {
        path.is_file()
    }

    fn canonical(&self, path: &Path) -> Option<PathBuf> {
        // An empty root means the current folder.
        let path = if path.as_os_str().is_empty() {
            Path::new(".")
        } else {
            path
        };
        std::fs::canonicalize(path).ok()
    }
}

/// Files held in memory, keyed by normalised path.
#[derive(Clone, Debug, Default)]
pub struct MemoryLoader {
    files: BTreeMap<PathBuf, String>,
}

impl MemoryLoader {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn with(mut self, path: impl AsRef<Path>, text: impl Into<String>) -> Self {
        self.files.insert(normalize(path.as_ref()), text.into());
        self
    }
}

impl SourceLoader for MemoryLoader {
    fn read(&self, path: &Path) -> std::io::Result<String> {
        self.files
            .get(&normalize(path))
            .cloned()
            .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"))
    }

    fn is_file(&self, path: &Path) -> bool {
        self.files.contains_key(&normalize(path))
    }
}

/// What is being checked: the package root (every file reference must stay inside it), the
/// entry file, and the package dependencies named in assay.toml.
#[derive(Clone, Debug)]
pub struct Package {
    pub root: PathBuf,
    /// The entry spec, relative to `root`.
    pub entry: PathBuf,
    /// Dependency name → its package root.
    pub dependencies: BTreeMap<String, PathBuf>,
    /// The manifest, when the package has one.
    pub manifest: Option<crate::manifest::Manifest>,
}

impl Package {
    /// A package made of one spec file: its folder is the root.
    pub fn single_file(path: &Path) -> Package {
        let root = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let entry = path.file_name().map(PathBuf::from).unwrap_or_default();
        Package {
            root,
            entry,
            dependencies: BTreeMap::new(),
            manifest: None,
        }
    }
}

/// Lexically normalises a path: removes `.` and folds `a/..`. Leading `..` are kept.
pub fn normalize(path: &Path) -> PathBuf {
    let mut out: Vec<Component<'_>> = Vec::new();
    for c in path.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => match out.last() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                _ => out.push(c),
            },
            other => out.push(other),
        }
    }
    out.iter().collect()
}
