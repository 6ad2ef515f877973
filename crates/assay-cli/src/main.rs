//! `assay`: the command-line tool. It owns the edges: arguments, files, terminal output and
//! exit codes. Exit codes: 0 success (warnings allowed), 1 errors in a spec, 2 usage or I/O
//! problems.

mod render;

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
    },
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

/// A problem with the invocation or the file system rather than with a spec.
struct ToolError(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Check { paths, format } => check(&paths, format),
        Command::Explain { code } => explain(code.as_deref()),
    };
    match result {
        Ok(code) => code,
        Err(ToolError(message)) => {
            eprintln!("error: {message}");
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

fn check(paths: &[PathBuf], format: Format) -> Result<ExitCode, ToolError> {
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
                eprint!(
                    "{}",
                    render::human(&checked.sources, &checked.diagnostics, stderr_color, width)
                );
                eprintln!(
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
            println!("{code}  {}", code.summary());
        }
        return Ok(ExitCode::SUCCESS);
    };
    let Some(code) = Code::parse(text) else {
        return Err(ToolError(format!(
            "`{text}` is not a diagnostic code; `assay explain` lists them"
        )));
    };
    println!("{code}: {}\n", code.summary());
    println!("{}", code.explanation());
    Ok(ExitCode::SUCCESS)
}
