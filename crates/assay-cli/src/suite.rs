//! Building suites: `assay items`, `assay compile`, `assay lock`, and the expansion half of
//! `assay check --expand`. Checks the spec, expands it through the data resolver, and writes
//! the compiled suite atomically (temporary files renamed into place only when expansion
//! succeeded).

use crate::data::DataResolver;
use crate::{ToolError, package_for, report};
use assay_check::lock::{Lock, lock_path};
use assay_check::{Checked, FsLoader, Package};
use assay_expand::{DataSource, DatasetSource, Expansion, Options};
use assay_ir::{Item, JudgeInfo, Manifest, MetricInfo, SuiteInfo};
use assay_syntax::ast::Decl;
use sha2::{Digest, Sha256};
use std::io::{BufWriter, Read, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};

/// The options every command that expands a spec takes.
#[derive(clap::Args, Clone, Debug, Default)]
pub struct DataArgs {
    /// A local copy of a pinned dataset: `--data NAME=PATH`. Its sha256 is still verified.
    #[arg(long = "data", value_name = "NAME=PATH", value_parser = parse_data)]
    pub data: Vec<(String, PathBuf)>,
    /// Never download datasets; use `--data`, the package's files and the data cache only.
    #[arg(long)]
    pub offline: bool,
    /// Seed for sampled generators, instead of the suite's `seed`.
    #[arg(long)]
    pub seed: Option<u64>,
}

fn parse_data(arg: &str) -> Result<(String, PathBuf), String> {
    DataResolver::parse_override(arg)
}

/// A spec checked without errors, ready to expand.
pub struct Loaded {
    pub package: Package,
    pub checked: Checked,
}

/// Checks a spec; on errors, prints them and returns `Err(exit code 1)`. Commands that
/// rewrite the lock (`lock`, `compile`) pass `rewrites_lock` to leave out stale-lock warnings.
pub fn load(
    path: &Path,
    rewrites_lock: bool,
) -> Result<Result<Loaded, std::process::ExitCode>, ToolError> {
    let package = package_for(path)?;
    let mut checked = assay_check::check(&package, &FsLoader).map_err(|e| {
        ToolError(format!(
            "cannot read {}: {e}",
            package.root.join(&package.entry).display()
        ))
    })?;
    if rewrites_lock {
        checked
            .diagnostics
            .retain(|d| d.code != assay_syntax::Code::StaleLock);
    }
    report(&checked.sources, &checked.diagnostics);
    if checked.has_errors() {
        return Ok(Err(std::process::ExitCode::from(1)));
    }
    Ok(Ok(Loaded { package, checked }))
}

/// Resolves dataset files for expansion: `--data`, the package, the data cache, downloads.
pub struct ResolvedData {
    resolver: DataResolver,
}

/// The data cache of a package: `ASSAY_DATA_DIR`, else `.assay/data` in the package. Pinned
/// datasets and attachments downloaded by URL are kept there, named by their sha256.
pub fn data_cache(root: &Path) -> PathBuf {
    std::env::var_os("ASSAY_DATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".assay").join("data"))
}

impl ResolvedData {
    pub fn new(package: &Package, args: &DataArgs) -> ResolvedData {
        let cache = data_cache(&package.root);
        let offline = args.offline || std::env::var_os("ASSAY_OFFLINE").is_some_and(|v| v == "1");
        ResolvedData {
            resolver: DataResolver::new(args.data.iter().cloned().collect(), cache, offline),
        }
    }
}

impl DataSource for ResolvedData {
    fn open(&self, source: &DatasetSource<'_>) -> Result<(String, Box<dyn Read + '_>), String> {
        let path = self
            .resolver
            .locate(
                source.name,
                source.path.as_deref(),
                source.url,
                source.sha256,
            )
            .map_err(|e| e.to_string())?;
        let file = std::fs::File::open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        Ok((
            path.display().to_string(),
            Box::new(std::io::BufReader::with_capacity(1 << 16, file)),
        ))
    }

    /// An attachment pinned by URL and sha256, from the data cache or downloaded into it.
    fn fetch(&self, url: &str, sha256: &str) -> Result<Vec<u8>, String> {
        const NAME: &str = "attachment";
        let path = self
            .resolver
            .locate(NAME, None, Some(url), Some(sha256))
            .map_err(|e| match e {
                crate::data::DataError::NotAvailableOffline { .. } => format!(
                    "the attachment {url} is not in the data cache and downloads are off (--offline)"
                ),
                e => e
                    .to_string()
                    .replacen(&format!("dataset `{NAME}`"), "the attachment", 1)
                    .replacen("the spec pins", "its row pins", 1),
            })?;
        std::fs::read(&path).map_err(|e| format!("cannot read {}: {e}", path.display()))
    }
}

/// `--data NAME=PATH` must name a dataset of the spec.
pub fn check_data_names(checked: &Checked, args: &DataArgs) -> Result<(), ToolError> {
    let datasets: Vec<&str> = checked
        .model
        .of_kind("dataset")
        .map(|(name, _)| name)
        .collect();
    for (name, _) in &args.data {
        if !datasets.contains(&name.as_str()) {
            let known = if datasets.is_empty() {
                "the spec declares no dataset".to_string()
            } else {
                format!("its datasets: {}", datasets.join(", "))
            };
            return Err(ToolError(format!(
                "`--data {name}=...` names no dataset of the spec; {known}"
            )));
        }
    }
    Ok(())
}

/// Expands a loaded spec into `sink`, printing the diagnostics of expansion.
pub fn expand(
    loaded: &Loaded,
    args: &DataArgs,
    sink: &mut dyn FnMut(&Item, &[u8]) -> ControlFlow<()>,
) -> Result<Expansion, ToolError> {
    check_data_names(&loaded.checked, args)?;
    let data = ResolvedData::new(&loaded.package, args);
    let options = Options { seed: args.seed };
    let expansion = assay_expand::expand(&loaded.checked, &FsLoader, &data, &options, sink);
    report(&loaded.checked.sources, &expansion.diagnostics);
    Ok(expansion)
}

/// The lock that matches an expansion.
pub fn lock_of(expansion: &Expansion) -> Lock {
    Lock::new(
        expansion.files.clone(),
        expansion
            .datasets
            .iter()
            .map(|(n, d)| (n.clone(), d.sha256.clone()))
            .collect(),
    )
}

/// Writes the lock when it changed. With `locked`, a stale lock is an error instead.
pub fn write_lock(package: &Package, lock: &Lock, locked: bool) -> Result<bool, ToolError> {
    let path = lock_path(package);
    let text = lock.to_text();
    let current = std::fs::read_to_string(&path).ok();
    if current.as_deref() == Some(text.as_str()) {
        return Ok(false);
    }
    if locked {
        return Err(ToolError(format!(
            "{} is {} and `--locked` was given; run `assay lock` to update it",
            path.display(),
            if current.is_some() {
                "out of date"
            } else {
                "missing"
            }
        )));
    }
    std::fs::write(&path, text)
        .map_err(|e| ToolError(format!("cannot write {}: {e}", path.display())))?;
    Ok(true)
}

/// `assay compile`: `DIR/items.jsonl` and `DIR/manifest.json`.
pub fn compile(
    loaded: &Loaded,
    args: &DataArgs,
    out: &Path,
    locked: bool,
) -> Result<std::process::ExitCode, ToolError> {
    std::fs::create_dir_all(out)
        .map_err(|e| ToolError(format!("cannot create {}: {e}", out.display())))?;
    let items_tmp = out.join(".items.jsonl.tmp");
    let file = std::fs::File::create(&items_tmp)
        .map_err(|e| ToolError(format!("cannot write {}: {e}", items_tmp.display())))?;
    // The hash sees the file in the buffer's large writes, where BLAKE3 is fastest.
    let mut writer = BufWriter::with_capacity(
        1 << 20,
        HashingWriter {
            inner: file,
            hash: blake3::Hasher::new(),
        },
    );
    let mut write_error = None;
    let expansion = expand(loaded, args, &mut |_, line| {
        let written = writer
            .write_all(line)
            .and_then(|()| writer.write_all(b"\n"));
        match written {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                write_error = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    let flushed = writer.flush();
    if let Some(e) = write_error.or(flushed.err()) {
        let _ = std::fs::remove_file(&items_tmp);
        return Err(ToolError(format!(
            "cannot write {}: {e}",
            items_tmp.display()
        )));
    }
    if expansion.has_errors() {
        let _ = std::fs::remove_file(&items_tmp);
        errln!("error: the suite was not compiled");
        return Ok(std::process::ExitCode::from(1));
    }
    let items_blake3 = match writer.into_inner() {
        Ok(w) => w.hash.finalize().to_hex().to_string(),
        Err(e) => {
            let _ = std::fs::remove_file(&items_tmp);
            return Err(ToolError(format!(
                "cannot write {}: {}",
                items_tmp.display(),
                e.error()
            )));
        }
    };
    let manifest = manifest(loaded, &expansion, items_blake3);
    let manifest_tmp = out.join(".manifest.json.tmp");
    let mut text = serde_json::to_string_pretty(&manifest).expect("a manifest serialises");
    text.push('\n');
    std::fs::write(&manifest_tmp, text)
        .map_err(|e| ToolError(format!("cannot write {}: {e}", manifest_tmp.display())))?;
    for (tmp, name) in [
        (&items_tmp, "items.jsonl"),
        (&manifest_tmp, "manifest.json"),
    ] {
        std::fs::rename(tmp, out.join(name))
            .map_err(|e| ToolError(format!("cannot write {}: {e}", out.join(name).display())))?;
    }
    let lock_written = write_lock(&loaded.package, &lock_of(&expansion), locked)?;
    errln!(
        "compiled {} items to {}{}{}",
        expansion.counts.items,
        out.display(),
        if expansion.counts.duplicates > 0 {
            format!(" ({} duplicates left out)", expansion.counts.duplicates)
        } else {
            String::new()
        },
        if lock_written {
            format!("; wrote {}", lock_path(&loaded.package).display())
        } else {
            String::new()
        }
    );
    Ok(std::process::ExitCode::SUCCESS)
}

struct HashingWriter<W> {
    inner: W,
    hash: blake3::Hasher,
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// The manifest of a compiled suite: no timestamps or absolute paths, so equal inputs give
/// equal bytes.
pub fn manifest(loaded: &Loaded, expansion: &Expansion, items_blake3: String) -> Manifest {
    let checked = &loaded.checked;
    let suite = checked.model.suite.as_ref();
    let source_of = |span: assay_syntax::Span| -> String {
        let file = checked.sources.get(span.file);
        file.text
            .get(span.start as usize..span.end as usize)
            .unwrap_or_default()
            .to_string()
    };
    let mut judges = Vec::new();
    let mut metrics = Vec::new();
    for (name, def) in checked.model.in_source_order() {
        match &def.decl {
            Decl::Judge(j) => judges.push(JudgeInfo {
                name: name.to_string(),
                kind: j.kind.as_str().to_string(),
                labels: j
                    .props
                    .names("labels")
                    .iter()
                    .map(|l| l.name.clone())
                    .collect(),
                source: source_of(j.span),
            }),
            Decl::Metric(m) => metrics.push(MetricInfo {
                name: name.to_string(),
                by: m.group_by.iter().map(|g| g.name.clone()).collect(),
                source: source_of(m.span),
            }),
            _ => {}
        }
    }
    let mut spec = Sha256::new();
    for (path, hash) in &expansion.files {
        spec.update(format!("file\0{path}\0{hash}\n"));
    }
    for (name, d) in &expansion.datasets {
        spec.update(format!("data\0{name}\0{}\n", d.sha256));
    }
    Manifest {
        format: assay_ir::FORMAT_VERSION,
        suite: SuiteInfo {
            name: suite.map(|s| s.name.value.clone()).unwrap_or_else(|| {
                loaded
                    .package
                    .entry
                    .file_stem()
                    .map_or_else(|| "suite".into(), |s| s.to_string_lossy().into_owned())
            }),
            version: suite.and_then(|s| s.version.as_ref().map(|v| v.value.clone())),
            license: suite.and_then(|s| s.props.str("license").map(str::to_string)),
        },
        assay_version: env!("CARGO_PKG_VERSION").to_string(),
        seed: expansion.seed,
        spec_hash: hex::encode(spec.finalize()),
        files: expansion.files.clone(),
        datasets: expansion.datasets.clone(),
        items_blake3,
        counts: expansion.counts.clone(),
        judges,
        metrics,
        scoring: expansion.scoring.clone(),
        programs: expansion.programs.clone(),
    }
}

/// `KEY=VALUE` filters of `assay items`: label keys, `axes.NAME` or a bare axis name.
pub fn matches(item: &Item, filters: &[(String, String)]) -> bool {
    filters.iter().all(|(key, want)| {
        let l = &item.labels;
        let got: Option<&str> = match key.as_str() {
            "hazard" => l.hazard.as_deref(),
            "sub_hazard" => l.sub_hazard.as_deref(),
            "taxonomy" => l.taxonomy.as_deref(),
            "persona" => l.persona.as_deref(),
            "locale" => l.locale.as_deref(),
            "source" => Some(item.source.as_str()),
            "expect" => Some(item.expect.as_str()),
            "id" => Some(item.id.as_str()),
            "key" => Some(item.key.as_str()),
            other => l
                .axes
                .get(other.strip_prefix("axes.").unwrap_or(other))
                .map(String::as_str),
        };
        got == Some(want.as_str()) || (key == "id" && item.id.starts_with(want.as_str()))
    })
}

/// The label keys `--filter` accepts besides axis names.
pub const FILTER_KEYS: &[&str] = &[
    "hazard",
    "sub_hazard",
    "taxonomy",
    "persona",
    "locale",
    "source",
    "expect",
    "id",
    "key",
];

/// Reads a compiled suite's items, one by one.
pub fn read_items(dir: &Path, each: &mut dyn FnMut(Item)) -> Result<(), ToolError> {
    use std::io::BufRead;
    let path = dir.join("items.jsonl");
    let file = std::fs::File::open(&path)
        .map_err(|e| ToolError(format!("cannot open {}: {e}", path.display())))?;
    for (i, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?;
        if line.trim().is_empty() {
            continue;
        }
        let item: Item = serde_json::from_str(&line).map_err(|e| {
            ToolError(format!(
                "{}: line {} is not an item: {e}",
                path.display(),
                i + 1
            ))
        })?;
        each(item);
    }
    Ok(())
}
