//! `assay.toml`: the package manifest. It names the package, its semver version, the entry
//! spec and the dependencies that `use pkg::...` resolves against.
//!
//! ```toml
//! [package]
//! name = "ailuminate"
//! version = "1.0.0"
//! entry = "main.assay"      # default
//!
//! [dependencies]
//! mlc = { path = "../mlc-common" }
//! ```

use crate::loader::{Package, SourceLoader, normalize};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const MANIFEST: &str = "assay.toml";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ManifestFile {
    package: PackageSection,
    #[serde(default)]
    dependencies: BTreeMap<String, DependencySection>,
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PackageSection {
    name: String,
    version: toml::Spanned<String>,
    #[serde(default = "default_entry")]
    entry: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    license: Option<String>,
    #[serde(default)]
    authors: Vec<String>,
}

fn default_entry() -> String {
    "main.assay".to_string()
}

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DependencySection {
    path: String,
}

/// The manifest as read, kept so the checker can point into it.
#[derive(Clone, Debug)]
pub struct Manifest {
    pub path: PathBuf,
    pub text: String,
    pub name: String,
    pub version: String,
    /// Byte range of the version string in `text`.
    pub version_span: std::ops::Range<usize>,
    pub description: Option<String>,
    pub license: Option<String>,
    pub authors: Vec<String>,
}

/// Reads `root/assay.toml` into a [`Package`]. `Err` is a message for a tool error: the
/// manifest is missing or is not valid TOML of the expected shape.
pub fn read_package(root: &Path, loader: &dyn SourceLoader) -> Result<Package, String> {
    let path = normalize(&root.join(MANIFEST));
    let text = loader
        .read(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let file: ManifestFile = toml::from_str(&text)
        .map_err(|e| format!("{} is not a valid manifest: {e}", path.display()))?;
    let dependencies = file
        .dependencies
        .into_iter()
        .map(|(name, dep)| (name, normalize(&root.join(dep.path))))
        .collect();
    let entry = Path::new(&file.package.entry);
    let escapes = entry.components().any(|c| {
        !matches!(
            c,
            std::path::Component::Normal(_) | std::path::Component::CurDir
        )
    });
    if entry.as_os_str().is_empty() || escapes {
        return Err(format!(
            "{}: `entry = \"{}\"` must be a path inside the package, like \"main.assay\"",
            path.display(),
            file.package.entry
        ));
    }
    let version_span = file.package.version.span();
    Ok(Package {
        root: root.to_path_buf(),
        entry: PathBuf::from(&file.package.entry),
        dependencies,
        manifest: Some(Manifest {
            path,
            text,
            name: file.package.name,
            version: file.package.version.into_inner(),
            version_span,
            description: file.package.description,
            license: file.package.license,
            authors: file.package.authors,
        }),
    })
}
