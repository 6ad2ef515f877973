//! `assay`: the command-line tool. It owns the edges: arguments, files, terminal output and
//! exit codes. Exit codes: 0 success (warnings allowed), 1 errors in a spec, 2 usage or I/O
//! problems, 3 a valid run that failed a gate (`--fail-under`, `--fail-if`), 4 an invalid run
//! (too many failed items or judgements, or a gate with no value to test).

/// Standard output and error, as every command writes them: redacted (no secret the process
/// holds reaches a terminal or a log), and never a panic when the reader has gone
/// (`assay run ... | head -1`): a run's files are written whatever happens to its output.
macro_rules! out {
    ($($arg:tt)*) => { $crate::emit(&mut std::io::stdout(), format_args!($($arg)*), false) };
}
macro_rules! outln {
    ($($arg:tt)*) => { $crate::emit(&mut std::io::stdout(), format_args!($($arg)*), true) };
}
macro_rules! err {
    ($($arg:tt)*) => { $crate::emit(&mut std::io::stderr(), format_args!($($arg)*), false) };
}
macro_rules! errln {
    ($($arg:tt)*) => { $crate::emit(&mut std::io::stderr(), format_args!($($arg)*), true) };
}

mod data;
mod diff;
mod fmt;
mod html;
mod merge;
mod render;
mod run;
mod score;
mod site;
mod suite;
mod view;

use assay_check::{FsLoader, Package, manifest};
use assay_syntax::Code;
use clap::{Parser, Subcommand, ValueEnum};
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "assay",
    version,
    about = "A language and compiler for AI-safety benchmarks"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Check specs and report every problem found.
    Check {
        /// Spec files, or package folders holding an assay.toml.
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Output format of the diagnostics.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
        /// Also expand the suite: read and verify its datasets, render every template.
        #[arg(long)]
        expand: bool,
        #[command(flatten)]
        data: suite::DataArgs,
    },
    /// Preview the items a spec expands to.
    Items {
        spec: PathBuf,
        /// Only items whose label KEY has VALUE: hazard, sub_hazard, persona, locale, source,
        /// expect, id (a prefix), key, or an axis name. Repeat to narrow further.
        #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = parse_filter)]
        filters: Vec<(String, String)>,
        /// Show at most N items.
        #[arg(long)]
        limit: Option<usize>,
        #[arg(long, value_enum, default_value_t = ItemsFormat::Table)]
        format: ItemsFormat,
        #[command(flatten)]
        data: suite::DataArgs,
    },
    /// Compile a spec into a suite folder: manifest.json and items.jsonl.
    Compile {
        spec: PathBuf,
        /// The folder to write.
        #[arg(short, long)]
        out: PathBuf,
        /// Fail instead of updating a stale or missing lock file.
        #[arg(long)]
        locked: bool,
        #[command(flatten)]
        data: suite::DataArgs,
    },
    /// Show the items added, removed and changed between two specs or compiled suites.
    Diff {
        before: PathBuf,
        after: PathBuf,
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        #[command(flatten)]
        data: suite::DataArgs,
    },
    /// Write the lock file: the content hash of every file and dataset the suite reads.
    Lock {
        spec: PathBuf,
        #[command(flatten)]
        data: suite::DataArgs,
    },
    /// Format specs in the canonical layout (comments kept). Folders are searched for
    /// `.assay` files.
    Fmt {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        /// Change nothing; list the files that would change and exit 1 if any would.
        #[arg(long)]
        check: bool,
    },
    /// Run a spec or a compiled suite against models; results in results.jsonl and run.json.
    Run(Box<run::RunArgs>),
    /// What a run would cost, without calling a model: items, calls, tokens, dollars and
    /// time per model and judge (takes `run`'s options).
    Plan(Box<run::PlanArgs>),
    /// Put the shards of a run (`run --shard K/N`) back into one run folder, checked to be
    /// every part of one run exactly once, then judge and score it.
    Merge(Box<merge::MergeArgs>),
    /// Judge a run folder's responses again (no target calls), then score and report.
    Judge(Box<score::JudgeArgs>),
    /// Score a run folder from its stored results, or compare two; no model call.
    Report(Box<score::ReportArgs>),
    /// Build a static result site over run folders (one per model): an index of models
    /// with their grades, and each run's report page.
    Site(Box<site::SiteArgs>),
    /// Serve the run folders under .assay/runs (or RUNS_DIR) on 127.0.0.1: the list of runs,
    /// each run's report, two runs compared.
    View(Box<view::ViewArgs>),
    /// The response cache under .assay/.
    Cache {
        #[command(subcommand)]
        command: run::CacheCommand,
    },
    /// Run the language server on stdin and stdout (for editors).
    Lsp,
    /// Explain a diagnostic code, e.g. `assay explain E0007`; without a code, list them all.
    Explain { code: Option<String> },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// Rendered for people, on stderr.
    Human,
    /// One JSON object per diagnostic, one per line, on stdout.
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ItemsFormat {
    /// One line per item, for people.
    Table,
    /// One JSON item per line, as in items.jsonl.
    Json,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum DiffFormat {
    Text,
    Json,
}

fn parse_filter(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!(
            "expected KEY=VALUE, e.g. hazard=vcr; keys: {}, or an axis name",
            suite::FILTER_KEYS.join(", ")
        )),
    }
}

/// A problem with the invocation or the file system rather than with a spec.
struct ToolError(String);

/// Writes `args` to `to`, redacted; a closed stream is not an error worth stopping for.
fn emit(to: &mut dyn Write, args: std::fmt::Arguments<'_>, newline: bool) {
    let text = args.to_string();
    let text = assay_run::redact::redact(&text);
    let _ = to.write_all(text.as_bytes());
    if newline {
        let _ = to.write_all(b"\n");
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Every secret in the environment is known before anything can be printed or stored.
    assay_run::redact::register_environment();
    let result = match cli.command {
        Command::Check {
            paths,
            format,
            expand,
            data,
        } => check(&paths, format, expand.then_some(&data)),
        Command::Items {
            spec,
            filters,
            limit,
            format,
            data,
        } => items(&spec, &filters, limit, format, &data),
        Command::Compile {
            spec,
            out,
            locked,
            data,
        } => match suite::load(&spec, !locked) {
            Ok(Ok(loaded)) => suite::compile(&loaded, &data, &out, locked),
            Ok(Err(code)) => Ok(code),
            Err(e) => Err(e),
        },
        Command::Diff {
            before,
            after,
            format,
            data,
        } => diff::diff(&before, &after, &data, format == DiffFormat::Json),
        Command::Lock { spec, data } => lock(&spec, &data),
        Command::Fmt { paths, check } => fmt::run(&paths, check),
        Command::Run(args) => run::run(&args),
        Command::Merge(args) => merge::merge(&args),
        Command::Plan(args) => run::plan(&args),
        Command::Judge(args) => score::judge(&args),
        Command::Report(args) => score::report(&args),
        Command::Site(args) => site::site(&args),
        Command::View(args) => view::view(&args),
        Command::Cache { command } => run::cache(&command),
        Command::Lsp => assay_lsp::run_stdio()
            .map(|()| ExitCode::SUCCESS)
            .map_err(|e| ToolError(format!("language server: {e}"))),
        Command::Explain { code } => explain(code.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(ToolError(message)) => {
            errln!("error: {message}");
            ExitCode::from(2)
        }
    }
}

/// Finds the package a path belongs to: a folder with assay.toml, or a spec file (inside the
/// nearest folder above it holding assay.toml, if any, else on its own).
fn package_for(path: &Path) -> Result<Package, ToolError> {
    if path.is_dir() {
        if !path.join(manifest::MANIFEST).is_file() {
            return Err(ToolError(format!(
                "{} is a folder without an {}; pass a spec file or a package folder",
                path.display(),
                manifest::MANIFEST
            )));
        }
        return manifest::read_package(path, &FsLoader).map_err(ToolError);
    }
    if !path.is_file() {
        return Err(ToolError(format!(
            "{}: no such file or folder",
            path.display()
        )));
    }
    let mut dir = path.parent();
    while let Some(d) = dir {
        let probe = if d.as_os_str().is_empty() {
            Path::new(".")
        } else {
            d
        };
        if probe.join(manifest::MANIFEST).is_file() {
            let mut package = manifest::read_package(d, &FsLoader).map_err(ToolError)?;
            package.entry = path.strip_prefix(d).unwrap_or(path).to_path_buf();
            return Ok(package);
        }
        dir = d.parent();
    }
    Ok(Package::single_file(path))
}

/// Prints diagnostics for people on stderr.
fn report(sources: &assay_syntax::SourceMap, diagnostics: &[assay_syntax::Diagnostic]) {
    if diagnostics.is_empty() {
        return;
    }
    let color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    let width = if color { terminal_width() } else { 100 };
    err!("{}", render::human(sources, diagnostics, color, width));
}

fn items(
    spec: &Path,
    filters: &[(String, String)],
    limit: Option<usize>,
    format: ItemsFormat,
    data: &suite::DataArgs,
) -> Result<ExitCode, ToolError> {
    let loaded = match suite::load(spec, false)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let mut out = std::io::stdout().lock();
    let mut shown = 0usize;
    let mut failed = None;
    if format == ItemsFormat::Table {
        let _ = writeln!(
            out,
            "{:<12}  {:<18}  {:<10}  {:<10}  {:<24}  {:<12}  prompt",
            "id", "source", "hazard", "persona", "axes", "program"
        );
    }
    let mut programs_used = std::collections::BTreeSet::new();
    let expansion = suite::expand(&loaded, data, &mut |item, json| {
        if !suite::matches(item, filters) {
            return std::ops::ControlFlow::Continue(());
        }
        if limit.is_some_and(|l| shown >= l) {
            return std::ops::ControlFlow::Break(());
        }
        shown += 1;
        if let Some(p) = &item.program {
            programs_used.insert(p.clone());
        }
        let line = match format {
            ItemsFormat::Json => String::from_utf8_lossy(json).into_owned(),
            ItemsFormat::Table => {
                let axes: Vec<String> = item
                    .labels
                    .axes
                    .iter()
                    .map(|(a, v)| format!("{a}={v}"))
                    .collect();
                let prompt = item
                    .messages
                    .iter()
                    .rfind(|m| m.role == assay_ir::Role::User)
                    .map_or("", |m| m.content.as_str());
                format!(
                    "{:<12}  {:<18}  {:<10}  {:<10}  {:<24}  {:<12}  {}",
                    &item.id[..12],
                    diff::preview(&item.source, 18),
                    diff::preview(item.labels.hazard.as_deref().unwrap_or("-"), 10),
                    diff::preview(item.labels.persona.as_deref().unwrap_or("-"), 10),
                    diff::preview(&axes.join(","), 24),
                    diff::preview(item.program.as_deref().unwrap_or("-"), 12),
                    diff::preview(prompt, 60)
                )
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            failed = Some(e);
            return std::ops::ControlFlow::Break(());
        }
        std::ops::ControlFlow::Continue(())
    })?;
    if let Some(e) = failed
        && e.kind() != std::io::ErrorKind::BrokenPipe
    {
        return Err(ToolError(format!("cannot write output: {e}")));
    }
    if expansion.has_errors() {
        return Ok(ExitCode::from(1));
    }
    // The turn plan of every program the items shown run under.
    if format == ItemsFormat::Table {
        for name in &programs_used {
            if let Some(p) = expansion.programs.get(name) {
                let _ = writeln!(out, "\nprogram {name}:");
                for line in assay_run::conversation::describe(p) {
                    let _ = writeln!(out, "  {line}");
                }
            }
        }
    }
    if format == ItemsFormat::Table {
        let more = if expansion.stopped { "at least " } else { "" };
        errln!(
            "{shown} items shown of {more}{}{}",
            expansion.counts.items,
            if filters.is_empty() {
                ""
            } else {
                " (filtered)"
            }
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn lock(spec: &Path, data: &suite::DataArgs) -> Result<ExitCode, ToolError> {
    let loaded = match suite::load(spec, true)? {
        Ok(l) => l,
        Err(code) => return Ok(code),
    };
    let expansion = suite::expand(&loaded, data, &mut |_, _| {
        std::ops::ControlFlow::Continue(())
    })?;
    if expansion.has_errors() {
        return Ok(ExitCode::from(1));
    }
    let lock = suite::lock_of(&expansion);
    let written = suite::write_lock(&loaded.package, &lock, false)?;
    let path = assay_check::lock::lock_path(&loaded.package);
    errln!(
        "{} {} ({} files, {} datasets)",
        if written { "wrote" } else { "up to date:" },
        path.display(),
        lock.files.len(),
        lock.datasets.len()
    );
    Ok(ExitCode::SUCCESS)
}

fn check(
    paths: &[PathBuf],
    format: Format,
    expand: Option<&suite::DataArgs>,
) -> Result<ExitCode, ToolError> {
    let mut failed = false;
    let stderr_color = std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none();
    for path in paths {
        let package = package_for(path)?;
        let checked = assay_check::check(&package, &FsLoader).map_err(|e| {
            ToolError(format!(
                "cannot read {}: {e}",
                package.root.join(&package.entry).display()
            ))
        })?;
        let mut checked = checked;
        if let Some(data) = expand
            && !checked.has_errors()
        {
            suite::check_data_names(&checked, data)?;
            let resolved = suite::ResolvedData::new(&package, data);
            let options = assay_expand::Options { seed: data.seed };
            let expansion =
                assay_expand::expand(&checked, &FsLoader, &resolved, &options, &mut |_, _| {
                    std::ops::ControlFlow::Continue(())
                });
            checked.diagnostics.extend(expansion.diagnostics);
            assay_syntax::finish_diagnostics(&mut checked.diagnostics);
        }
        let errors = checked.diagnostics.iter().filter(|d| d.is_error()).count();
        let warnings = checked.diagnostics.len() - errors;
        failed |= errors > 0;
        match format {
            Format::Json => {
                let mut out = std::io::stdout().lock();
                out.write_all(
                    render::json_lines(&checked.sources, &checked.diagnostics).as_bytes(),
                )
                .map_err(|e| ToolError(format!("cannot write output: {e}")))?;
            }
            Format::Human => {
                let width = if stderr_color { terminal_width() } else { 100 };
                err!(
                    "{}",
                    render::human(&checked.sources, &checked.diagnostics, stderr_color, width)
                );
                errln!(
                    "{}: {}",
                    path.display(),
                    summary(errors, warnings, checked.model.definitions.len())
                );
            }
        }
    }
    Ok(if failed {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

fn summary(errors: usize, warnings: usize, definitions: usize) -> String {
    let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
    if errors == 0 && warnings == 0 {
        format!("ok, {}", plural(definitions, "definition"))
    } else if errors == 0 {
        format!("ok with {}", plural(warnings, "warning"))
    } else {
        format!(
            "{}, {}",
            plural(errors, "error"),
            plural(warnings, "warning")
        )
    }
}

fn terminal_width() -> usize {
    std::env::var("COLUMNS")
        .ok()
        .and_then(|c| c.parse().ok())
        .unwrap_or(100)
}

fn explain(code: Option<&str>) -> Result<ExitCode, ToolError> {
    let Some(text) = code else {
        for code in Code::ALL {
            outln!("{code}  {}", code.summary());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(code) = Code::parse(text) else {
        return Err(ToolError(format!(
            "`{text}` is not a diagnostic code; `assay explain` lists them"
        )));
    };
    outln!("{code}: {}\n", code.summary());
    outln!("{}", code.explanation());
    Ok(ExitCode::SUCCESS)
}
