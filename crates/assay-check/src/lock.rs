//! The lock file: the content hash of every file a suite reads (spec modules, prompts,
//! rubrics, fragment lists) and of every dataset, so a published suite can be rebuilt byte for
//! byte. `assay lock` and `assay compile` write it; `assay check` warns when it is stale.
//!
//! The lock of a package (a folder with `assay.toml`) is `assay.lock` beside the manifest; the
//! lock of a lone spec file `x.assay` is `x.lock` beside it.

use crate::loader::{Package, SourceLoader};
use assay_syntax::{Code, Diagnostic, SourceMap, Span};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub const LOCK_FILE: &str = "assay.lock";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lock {
    pub version: u32,
    /// Package-relative path → sha256.
    #[serde(default)]
    pub files: BTreeMap<String, String>,
    /// Dataset name → sha256 of its data.
    #[serde(default)]
    pub datasets: BTreeMap<String, String>,
}

impl Lock {
    pub fn new(files: BTreeMap<String, String>, datasets: BTreeMap<String, String>) -> Lock {
        Lock {
            version: 1,
            files,
            datasets,
        }
    }

    /// The lock as written to disk: a comment, then sorted TOML.
    pub fn to_text(&self) -> String {
        let body = toml::to_string(self).expect("a lock serialises");
        format!(
            "# Content hashes of every file this suite reads. Written by `assay lock` and\n# `assay compile`; do not edit by hand.\n{body}"
        )
    }

    pub fn parse(text: &str) -> Result<Lock, String> {
        toml::from_str(text).map_err(|e| e.message().to_string())
    }
}

/// Where the lock of a package lives.
pub fn lock_path(package: &Package) -> PathBuf {
    if package.manifest.is_some() {
        return package.root.join(LOCK_FILE);
    }
    let stem = package
        .entry
        .file_stem()
        .map_or_else(|| "spec".into(), |s| s.to_string_lossy().into_owned());
    package.root.join(format!("{stem}.lock"))
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// What the checker knows a suite reads: package-relative path → current hash, and the
/// datasets with the hash the spec pins (or, for unpinned local data, the file's hash).
pub(crate) struct Reads {
    pub files: BTreeMap<String, String>,
    pub datasets: BTreeMap<String, Option<String>>,
}

/// Compares the lock on disk, if any, with what the suite reads now.
pub(crate) fn check_lock(
    package: &Package,
    loader: &dyn SourceLoader,
    reads: &Reads,
    sources: &mut SourceMap,
    diagnostics: &mut Vec<Diagnostic>,
) {
    let path = lock_path(package);
    let Ok(text) = loader.read(&path) else {
        return;
    };
    let name = path.display().to_string();
    let file = sources.add(name.clone(), text.clone());
    let whole = Span::new(file, 0, text.find('\n').unwrap_or(text.len()));
    let lock = match Lock::parse(&text) {
        Ok(lock) => lock,
        Err(why) => {
            diagnostics.push(
                Diagnostic::new(
                    Code::StaleLock,
                    whole,
                    format!("the lock file cannot be read: {why}"),
                )
                .label("in this lock file")
                .help("rewrite it with `assay lock`"),
            );
            return;
        }
    };
    // Points at the line of the lock that names `key`, or at its first line.
    let span_of = |key: &str| -> Span {
        let quoted = format!("\"{key}\"");
        text.lines()
            .scan(0usize, |at, line| {
                let start = *at;
                *at += line.len() + 1;
                Some((start, line))
            })
            .find(|(_, line)| {
                let k = line.split('=').next().unwrap_or("").trim();
                k == key || k == quoted
            })
            .map_or(whole, |(start, line)| {
                Span::new(file, start, start + line.len())
            })
    };
    let mut stale = Vec::new();
    for (rel, locked) in &lock.files {
        let now = match reads.files.get(rel) {
            Some(h) => Some(h.clone()),
            // Locked files need not be text: an item's image or audio is hashed by its bytes.
            None => loader
                .read_bytes(&package.root.join(rel))
                .ok()
                .map(|b| sha256_hex(&b)),
        };
        match now {
            None => stale.push((
                span_of(rel),
                format!("`{rel}` is locked but no longer exists"),
            )),
            Some(h) if &h != locked => stale.push((
                span_of(rel),
                format!("`{rel}` changed since the lock was written"),
            )),
            Some(_) => {}
        }
    }
    for rel in reads.files.keys() {
        if !lock.files.contains_key(rel) {
            stale.push((
                whole,
                format!("the suite reads `{rel}`, which the lock does not list"),
            ));
        }
    }
    for (dataset, pinned) in &reads.datasets {
        match (lock.datasets.get(dataset), pinned) {
            (None, _) => stale.push((whole, format!("dataset `{dataset}` is not in the lock"))),
            (Some(locked), Some(now)) if !locked.eq_ignore_ascii_case(now) => stale.push((
                span_of(dataset),
                format!(
                    "dataset `{dataset}` changed since the lock was written (now {})",
                    short(now)
                ),
            )),
            _ => {}
        }
    }
    for dataset in lock.datasets.keys() {
        if !reads.datasets.contains_key(dataset) {
            stale.push((
                span_of(dataset),
                format!("dataset `{dataset}` is locked but the suite no longer declares it"),
            ));
        }
    }
    // One line that says how to refresh it, with the exact command.
    let spec = package.root.join(&package.entry);
    for (span, message) in stale {
        diagnostics.push(
            Diagnostic::new(
                Code::StaleLock,
                span,
                format!(
                    "stale lock: {message}; refresh it with `assay lock {}`",
                    spec.display()
                ),
            )
            .label("out of date"),
        );
    }
}

fn short(hash: &str) -> &str {
    &hash[..hash.len().min(12)]
}

/// Whether `path` is inside `root`; used to keep lock entries package-relative.
pub(crate) fn relative(root: &Path, path: &Path) -> Option<String> {
    path.strip_prefix(root)
        .ok()
        .map(|p| p.to_string_lossy().replace('\\', "/"))
}
