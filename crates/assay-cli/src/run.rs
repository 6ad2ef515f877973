//! `assay run` and `assay cache`: the interpreter's command line. A spec is compiled into a
//! temporary items file first (streaming, so memory stays flat); a compiled suite is read as
//! it is. Models come from `--model PROVIDER:MODEL` or, without it, from the spec's targets
//! that no judge, attacker or grade uses.

use crate::ToolError;
use crate::suite::{self, DataArgs};
use assay_ir::{Item, Manifest, SuiteInfo};
use assay_run::{Endpoint, ModelRun, ProgressMode, Provider, RunOptions, RunRequest};
use assay_syntax::ast::Decl;
use std::io::{BufRead, IsTerminal, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

#[derive(clap::Args, Debug)]
pub struct RunArgs {
    /// A spec, or a compiled suite folder (with manifest.json).
    pub suite: PathBuf,
    /// PROVIDER:MODEL, repeatable: openai:gpt-4o-mini, anthropic:claude-sonnet-4-5,
    /// ollama:llama3.1, exec:./model.sh, mock:refuse|comply|echo|script:FILE.
    #[arg(long = "model", value_name = "PROVIDER:MODEL")]
    pub models: Vec<String>,
    /// Where results go; default .assay/runs/<suite>-<model>-<time>/.
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Requests in flight per model.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// Run only the first N items (after filters).
    #[arg(long)]
    pub limit: Option<usize>,
    /// Run part K of N of the items (after filters and --limit), split by item id so the
    /// parts stay stable when the suite grows; `assay merge` puts the parts together.
    #[arg(long, value_name = "K/N", value_parser = assay_run::shard::parse_shard)]
    pub shard: Option<(u32, u32)>,
    /// Only items whose label KEY has VALUE (as for `assay items`).
    #[arg(long = "filter", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub filters: Vec<(String, String)>,
    /// A model parameter, e.g. temperature=0 or max_tokens=256 (JSON values).
    #[arg(long = "param", value_name = "KEY=VALUE", value_parser = parse_pair)]
    pub params: Vec<(String, String)>,
    /// Start the run over, ignoring its journal (the cache still serves).
    #[arg(long)]
    pub fresh: bool,
    /// Keep the failures (`error`, `skipped`) of an earlier run of the same items instead of
    /// trying them again.
    #[arg(long)]
    pub no_retry_errors: bool,
    /// Neither read nor write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// Seconds one request may take.
    #[arg(long, default_value = "120", value_parser = parse_seconds)]
    pub timeout: Duration,
    /// Seconds the whole run may take, waits included; items without an answer by then are
    /// skipped.
    #[arg(long, value_parser = parse_seconds)]
    pub max_time: Option<Duration>,
    /// Retries after a failed call.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// The largest response body read, in bytes; a larger one is that call's error.
    #[arg(long, value_name = "BYTES", default_value_t = assay_run::provider::DEFAULT_MAX_RESPONSE_BYTES, value_parser = parse_bytes)]
    pub max_response_bytes: usize,
    /// Requests per minute per model.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,
    /// Tokens per minute per model (estimated from the prompt).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub tpm: Option<u32>,
    /// Where items' attachment paths are relative to: by default the spec's package, or the
    /// current folder for a compiled suite (run it from its package).
    #[arg(long, value_name = "DIR")]
    pub attachments_root: Option<PathBuf>,
    /// Stop starting calls once the run has spent this many dollars (from the usage the
    /// providers report and `--price`); what is left is skipped, the run exits 5, and a rerun
    /// with a larger budget goes on.
    #[arg(long, value_name = "USD", value_parser = parse_dollars)]
    pub max_cost: Option<f64>,
    /// Stop starting calls once the run has sent this many (retries included), as
    /// `--max-cost` does.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    pub max_calls: Option<u64>,
    /// Dollars per million prompt and completion tokens, as PROMPT/COMPLETION, for `cost`.
    #[arg(long, value_parser = parse_price)]
    pub price: Option<(f64, f64)>,
    /// No progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip the check, before the first call, that every model's key variable is set and its
    /// endpoint accepts a connection.
    #[arg(long)]
    pub no_preflight: bool,
    #[command(flatten)]
    pub data: DataArgs,
    #[command(flatten)]
    pub score: crate::score::ScoreArgs,
}

fn parse_pair(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_string(), v.to_string())),
        _ => Err(format!("expected KEY=VALUE, found `{arg}`")),
    }
}

fn parse_price(arg: &str) -> Result<(f64, f64), String> {
    let (p, c) = arg.split_once('/').ok_or_else(|| {
        format!("expected PROMPT/COMPLETION dollars per million tokens, found `{arg}`")
    })?;
    let num = |s: &str| match s.trim().parse::<f64>() {
        Ok(n) if n.is_finite() && n >= 0.0 => Ok(n),
        _ => Err(format!(
            "`{s}` is not a price: a number of dollars, 0 or more"
        )),
    };
    Ok((num(p)?, num(c)?))
}

/// Dollars above 0.
fn parse_dollars(arg: &str) -> Result<f64, String> {
    match arg.trim().trim_start_matches('$').parse::<f64>() {
        Ok(d) if d.is_finite() && d > 0.0 => Ok(d),
        _ => Err(format!(
            "`{arg}` is not an amount of dollars above 0 (e.g. 25 or 2.50)"
        )),
    }
}

/// A byte count from 1 KiB to 1 GiB.
pub fn parse_bytes(arg: &str) -> Result<usize, String> {
    match arg.trim().parse::<usize>() {
        Ok(n) if (1024..=1 << 30).contains(&n) => Ok(n),
        _ => Err(format!(
            "`{arg}` is not a number of bytes from 1024 to 1073741824"
        )),
    }
}

/// The longest time a flag may give: a year. A longer one means "no limit", which is what
/// leaving the flag out says.
const MAX_SECONDS: f64 = 365.0 * 24.0 * 3600.0;

/// Seconds, as a positive, finite number of at most a year.
pub fn parse_seconds(arg: &str) -> Result<Duration, String> {
    match arg.trim().parse::<f64>() {
        Ok(s) if s.is_finite() && s > 0.0 && s <= MAX_SECONDS => Ok(Duration::from_secs_f64(s)),
        Ok(s) if s.is_finite() && s > MAX_SECONDS => Err(format!(
            "{arg} seconds is more than a year; leave the flag out for no limit"
        )),
        _ => Err(format!(
            "`{arg}` is not a number of seconds above 0 (e.g. 30 or 2.5)"
        )),
    }
}

/// Parameters from `--param`: JSON where it parses (`0.7`, `["\n"]`), a string otherwise.
fn params_of(pairs: &[(String, String)]) -> assay_run::provider::Params {
    pairs
        .iter()
        .map(|(k, v)| {
            let value =
                serde_json::from_str(v).unwrap_or_else(|_| serde_json::Value::String(v.clone()));
            (k.clone(), value)
        })
        .collect()
}

/// The items to run: a temporary compiled file or a suite's items.jsonl.
struct Source {
    suite: SuiteInfo,
    items_hash: String,
    items_file: PathBuf,
    /// Keeps a temporary items file alive.
    _temp: Option<tempfile::TempPath>,
    state_dir: PathBuf,
    /// The spec's systems under test.
    models: Vec<ModelRun>,
    /// Every target of the spec, by name, for `--model NAME`.
    targets: Vec<ModelRun>,
    scoring: assay_ir::Scoring,
    /// The conversation programs items run under.
    programs: std::collections::BTreeMap<String, assay_ir::ProgramSpec>,
    /// The package root, for a spec: where items' attachment paths are relative to.
    root: Option<PathBuf>,
    /// The spec's hash, as the manifest gives it.
    spec_hash: String,
    /// Held for the whole command: no other process runs on the same state meanwhile.
    _lock: assay_run::store::StateLock,
}

/// Takes the state's lock, then removes the items files that runs killed before they could
/// clean up left behind (no other run can be using them while the lock is held).
fn lock_state(state_dir: &Path) -> Result<assay_run::store::StateLock, ToolError> {
    let lock = assay_run::store::StateLock::acquire(state_dir).map_err(ToolError)?;
    if let Ok(entries) = std::fs::read_dir(state_dir) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let name = name.to_string_lossy();
            if (name.starts_with(ITEMS_PREFIX) || name.starts_with(".tmp"))
                && entry.file_type().is_ok_and(|t| t.is_file())
            {
                let _ = std::fs::remove_file(entry.path());
            }
        }
    }
    Ok(lock)
}

/// The name a run's temporary items file starts with, in the state folder.
const ITEMS_PREFIX: &str = ".items-";

fn load(args: &RunArgs) -> Result<Result<Source, ExitCode>, ToolError> {
    let path = &args.suite;
    if path.is_dir() && path.join("manifest.json").is_file() {
        let text = std::fs::read_to_string(path.join("manifest.json"))
            .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?;
        let manifest: Manifest = serde_json::from_str(&text).map_err(|e| {
            ToolError(format!(
                "{}/manifest.json is not a manifest: {e}",
                path.display()
            ))
        })?;
        verify_suite(&path.join("items.jsonl"), &manifest)?;
        let state_dir = assay_run::state_dir_for(Path::new("."));
        let lock = lock_state(&state_dir)?;
        return Ok(Ok(Source {
            suite: manifest.suite,
            items_hash: manifest.items_blake3,
            items_file: path.join("items.jsonl"),
            _temp: None,
            state_dir,
            models: Vec::new(),
            targets: Vec::new(),
            scoring: manifest.scoring,
            programs: manifest.programs,
            root: None,
            spec_hash: manifest.spec_hash,
            _lock: lock,
        }));
    }
    let loaded = match suite::load(path, false)? {
        Ok(l) => l,
        Err(code) => return Ok(Err(code)),
    };
    let state_dir = assay_run::state_dir_for(&loaded.package.root);
    let lock = lock_state(&state_dir)?;
    let temp = tempfile::Builder::new()
        .prefix(ITEMS_PREFIX)
        .suffix(".jsonl")
        .tempfile_in(&state_dir)
        .map_err(|e| ToolError(format!("cannot write in {}: {e}", state_dir.display())))?;
    let (file, temp_path) = temp.into_parts();
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    let mut hash = blake3::Hasher::new();
    let mut failed = None;
    let expansion = suite::expand(&loaded, &args.data, &mut |_, line| {
        hash.update(line);
        hash.update(b"\n");
        match out.write_all(line).and_then(|()| out.write_all(b"\n")) {
            Ok(()) => ControlFlow::Continue(()),
            Err(e) => {
                failed = Some(e);
                ControlFlow::Break(())
            }
        }
    })?;
    if let Some(e) = failed.or_else(|| out.flush().err()) {
        return Err(ToolError(format!("cannot write the items: {e}")));
    }
    if expansion.has_errors() {
        return Ok(Err(ExitCode::from(1)));
    }
    let suite_decl = loaded.checked.model.suite.as_ref();
    let suite = SuiteInfo {
        name: suite_decl.map_or_else(
            || {
                path.file_stem()
                    .map_or("suite".into(), |s| s.to_string_lossy().into_owned())
            },
            |s| s.name.value.clone(),
        ),
        version: suite_decl.and_then(|s| s.version.as_ref().map(|v| v.value.clone())),
        license: suite_decl.and_then(|s| s.props.str("license").map(str::to_string)),
    };
    let (models, targets) = spec_targets(&loaded.checked, &expansion.targets)?;
    let items_hash = hash.finalize().to_hex().to_string();
    // The hash a compiled suite's manifest would give, for run.json.
    let spec_hash = suite::manifest(&loaded, &expansion, items_hash.clone()).spec_hash;
    Ok(Ok(Source {
        suite,
        items_hash,
        items_file: temp_path.to_path_buf(),
        _temp: Some(temp_path),
        state_dir,
        models,
        targets,
        scoring: expansion.scoring,
        programs: expansion.programs,
        root: Some(loaded.package.root.clone()),
        spec_hash,
        _lock: lock,
    }))
}

/// Checks a compiled suite before anything runs: `items.jsonl` hashes to the manifest's
/// `items_blake3`, holds as many items as it says, and every line is an item. A damaged or
/// edited suite is refused with the line at fault, never run in part.
fn verify_suite(items: &Path, manifest: &Manifest) -> Result<(), ToolError> {
    use std::io::Read as _;
    let damaged = |what: String| {
        ToolError(format!(
            "{}: {what}; the compiled suite is damaged or was edited: compile it again",
            items.display()
        ))
    };
    let file = std::fs::File::open(items)
        .map_err(|e| ToolError(format!("cannot open {}: {e}", items.display())))?;
    let mut reader = std::io::BufReader::new(file);
    let mut hash = blake3::Hasher::new();
    let mut line = Vec::new();
    let mut count = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(u64::MAX)
            .read_until(b'\n', &mut line)
            .map_err(|e| ToolError(format!("cannot read {}: {e}", items.display())))?;
        if n == 0 {
            break;
        }
        hash.update(&line);
        count += 1;
        let body = line.strip_suffix(b"\n").unwrap_or(&line);
        if let Err(e) = std::str::from_utf8(body) {
            return Err(damaged(format!("line {count} is not UTF-8 ({e})")));
        }
        if let Err(e) = serde_json::from_slice::<Item>(body) {
            return Err(damaged(format!("line {count} is not an item ({e})")));
        }
    }
    let actual = hash.finalize().to_hex().to_string();
    if actual != manifest.items_blake3 {
        return Err(damaged(format!(
            "its blake3 is {actual}, but manifest.json says {}",
            manifest.items_blake3
        )));
    }
    if count != manifest.counts.items {
        return Err(damaged(format!(
            "it holds {count} items, but manifest.json says {}",
            manifest.counts.items
        )));
    }
    Ok(())
}

/// The spec's systems under test (targets no judge, attacker or grade refers to), and every
/// target.
fn spec_targets(
    checked: &assay_check::Checked,
    lowered: &std::collections::BTreeMap<String, assay_ir::TargetSpec>,
) -> Result<(Vec<ModelRun>, Vec<ModelRun>), ToolError> {
    let mut used = std::collections::BTreeSet::new();
    for (_, def) in checked.model.in_source_order() {
        match &def.decl {
            Decl::Judge(j) => {
                if let Some(m) = j.props.name("model") {
                    used.insert(m.name.clone());
                }
            }
            Decl::Grade(g) => {
                if let Some(r) = g.props.name("reference") {
                    used.insert(r.name.clone());
                }
            }
            Decl::Program(p) => {
                if let Some(m) = p.attacker.as_ref().and_then(|a| a.name("model")) {
                    used.insert(m.name.clone());
                }
            }
            Decl::Target(t) => {
                for key in ["wraps", "rewrite"] {
                    if let Some(n) = t.props.name(key) {
                        used.insert(n.name.clone());
                    }
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut all = Vec::new();
    for (name, def) in checked.model.in_source_order() {
        let Decl::Target(t) = &def.decl else { continue };
        // The same lowering as a judge's target, so a target means one thing everywhere.
        let spec = lowered
            .get(name)
            .cloned()
            .unwrap_or_else(|| assay_expand::target_spec(name, t));
        let run = assay_run::judging::model_for(name, &spec)
            .map_err(|e| ToolError(format!("target `{name}`: {e}")))?;
        if !used.contains(name) {
            out.push(run.clone());
        }
        all.push(run);
    }
    Ok((out, all))
}

/// Items of a JSONL file, filtered and limited, then of one shard: each with its position
/// among the filtered and limited items (the whole run's order).
fn items<'a>(
    file: &'a Path,
    filters: &'a [(String, String)],
    limit: Option<usize>,
    shard: Option<(u32, u32)>,
) -> Result<impl Iterator<Item = (u64, Item)> + 'a, ToolError> {
    let reader = std::io::BufReader::new(
        std::fs::File::open(file)
            .map_err(|e| ToolError(format!("cannot open {}: {e}", file.display())))?,
    );
    Ok(reader
        .lines()
        .map_while(Result::ok)
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| serde_json::from_str::<Item>(&l).ok())
        .filter(move |i| suite::matches(i, filters))
        .take(limit.unwrap_or(usize::MAX))
        .enumerate()
        .map(|(position, item)| (position as u64, item))
        .filter(move |(_, item)| {
            shard.is_none_or(|(k, n)| assay_run::shard::shard_of(&item.id, n) == k)
        }))
}

/// The models a run calls: `--model` (a provider's model, or a target the spec declares), else
/// the spec's systems under test, else, for recorded responses only, one pseudo-model.
fn models_of(
    args: &RunArgs,
    source: &Source,
    params: &assay_run::provider::Params,
) -> Result<Vec<ModelRun>, ToolError> {
    Ok(if args.models.is_empty() {
        let recorded_only = source.models.is_empty()
            && items(&source.items_file, &args.filters, args.limit, args.shard)?
                .all(|(_, i)| i.response.is_some());
        if recorded_only {
            // Recorded transcripts only (guard and judge evaluation): nothing to call, so
            // the results stand under one pseudo-model.
            vec![ModelRun::new(
                "recorded".into(),
                Provider::parse("mock:echo", &Endpoint::default()).map_err(ToolError)?,
                Default::default(),
                None,
            )]
        } else if source.models.is_empty() {
            return Err(ToolError(
                "no model to run: give --model PROVIDER:MODEL (e.g. --model mock:refuse), or declare a target in the spec".into(),
            ));
        } else {
            source
                .models
                .iter()
                .cloned()
                .map(|mut m| {
                    m.params.extend(params.clone());
                    m.price = args.price;
                    m
                })
                .collect()
        }
    } else {
        args.models
            .iter()
            .map(|spec| {
                if let Some(target) = source.targets.iter().find(|t| &t.name == spec) {
                    let mut m = target.clone();
                    m.params.extend(params.clone());
                    m.price = args.price;
                    return Ok(m);
                }
                Provider::parse(spec, &Endpoint::default())
                    .map(|provider| {
                        ModelRun::new(spec.clone(), provider, params.clone(), args.price)
                    })
                    .map_err(|e| ToolError(format!("--model {spec}: {e}")))
            })
            .collect::<Result<_, _>>()?
    })
}

pub fn run(args: &RunArgs) -> Result<ExitCode, ToolError> {
    let source = match load(args)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let params = params_of(&args.params);
    for (name, value) in &args.params {
        if assay_run::redact::name_looks_secret(name) {
            assay_run::redact::register(value);
        }
    }
    let models = models_of(args, &source, &params)?;
    // Judge models are settled (and `--judge-model` checked) before any target is called.
    let judge_models = crate::score::judge_models(&source.scoring, &args.score.judge_models)?;
    // Counting first gives the progress bar its total, and finds what conversations need;
    // the items are read again to run.
    let mut total = 0u64;
    let mut conversational = models.iter().any(|m| m.defense.is_some());
    let mut defenses: Vec<assay_ir::DefenseSpec> = Vec::new();
    let mut positions = Vec::new();
    for (position, item) in items(&source.items_file, &args.filters, args.limit, args.shard)? {
        total += 1;
        if args.shard.is_some() {
            positions.push(position);
        }
        conversational |= item.program.is_some();
        if let Some(d) = item.defense
            && !defenses.contains(&d)
        {
            conversational = true;
            defenses.push(d);
        }
    }
    let conversing = if conversational {
        let (conversations, helpers) = assay_run::Conversations::prepare(
            source.programs.clone(),
            &source.scoring,
            &judge_models,
            &defenses,
            &models,
        )
        .map_err(ToolError)?;
        Some(assay_run::Conversing {
            conversations,
            helpers,
        })
    } else {
        None
    };
    if !args.no_preflight {
        let mut all = models.clone();
        all.extend(conversing.iter().flat_map(|c| c.helpers.iter().cloned()));
        crate::score::preflight(&all, &judge_models)?;
    }
    let progress = if args.quiet {
        ProgressMode::Quiet
    } else if std::io::stderr().is_terminal() {
        ProgressMode::Bar
    } else {
        ProgressMode::Lines
    };
    let options = RunOptions {
        concurrency: args.concurrency as usize,
        timeout: args.timeout,
        max_time: args.max_time,
        retries: args.retries,
        backoff: Duration::from_millis(
            std::env::var("ASSAY_BACKOFF_MS")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(500),
        ),
        requests_per_minute: args.rpm,
        tokens_per_minute: args.tpm,
        use_cache: !args.no_cache,
        max_response_bytes: args.max_response_bytes,
        budget: assay_run::engine::Budget {
            max_calls: args.max_calls,
            max_cost: args.max_cost,
            ..Default::default()
        },
        attachments_root: args
            .attachments_root
            .clone()
            .or_else(|| source.root.clone()),
        data_cache: Some(crate::suite::data_cache(
            source.root.as_deref().unwrap_or(Path::new(".")),
        )),
    };
    // The budget bounds the run's calls; judging afterwards is not cut short by it.
    let judge_options = RunOptions {
        budget: Default::default(),
        ..options.clone()
    };
    let request = RunRequest {
        suite: source.suite.clone(),
        items_hash: source.items_hash.clone(),
        spec_hash: Some(source.spec_hash.clone()),
        total_items: total,
        // The shard is part of the run's identity: each part has its own journal.
        selection: match args.shard {
            Some((k, n)) => format!("{:?} {:?} shard {k}/{n}", args.filters, args.limit),
            None => format!("{:?} {:?}", args.filters, args.limit),
        },
        models,
        options,
        state_dir: source.state_dir.clone(),
        out_dir: args.out.clone(),
        fresh: args.fresh,
        keep_failures: args.no_retry_errors,
        progress,
        conversing,
    };
    let mut iter =
        items(&source.items_file, &args.filters, args.limit, args.shard)?.map(|(_, item)| item);
    let outcome = assay_run::run(request, &mut iter).map_err(ToolError)?;
    if let Some((shard, of)) = args.shard {
        let info = assay_run::shard::ShardInfo {
            shard,
            of,
            items_hash: source.items_hash.clone(),
            selection: format!("{:?} {:?}", args.filters, args.limit),
            positions,
        };
        let mut text = serde_json::to_string(&info).expect("shard info serialises");
        text.push('\n');
        let path = outcome.out_dir.join(assay_run::shard::SHARD_FILE);
        std::fs::write(&path, text)
            .map_err(|e| ToolError(format!("cannot write {}: {e}", path.display())))?;
    }
    if !args.quiet {
        let counts: Vec<String> = outcome
            .info
            .counts
            .iter()
            .map(|(state, n)| format!("{n} {state}"))
            .collect();
        errln!(
            "{} items × {} model{}: {}; {} call{} made{}; results in {}",
            outcome.info.items,
            outcome.info.models.len(),
            if outcome.info.models.len() == 1 {
                ""
            } else {
                "s"
            },
            if counts.is_empty() {
                "nothing run".to_string()
            } else {
                counts.join(", ")
            },
            outcome.calls_now,
            if outcome.calls_now == 1 { "" } else { "s" },
            if outcome.already_finished {
                " (the run had finished: results rewritten from its journal)".to_string()
            } else if outcome.retried > 0 {
                format!(
                    " ({} results kept from an earlier run, {} without an answer tried again)",
                    outcome.resumed, outcome.retried
                )
            } else if outcome.resumed > 0 {
                format!(
                    " ({} results resumed from an interrupted run)",
                    outcome.resumed
                )
            } else {
                String::new()
            },
            outcome.out_dir.display()
        );
    }
    let out_dir = outcome.out_dir.clone();
    crate::score::write_scoring(&out_dir, &source.scoring)?;
    let calls = crate::score::CallSettings {
        options: judge_options,
        quiet: args.quiet,
        items: Some(source.items_file.clone()),
    };
    crate::score::judge_dir(
        &out_dir,
        &source.scoring,
        &args.score,
        &calls,
        &source.state_dir,
    )?;
    let code = crate::score::report_dir(&out_dir, &source.scoring, &args.score, args.quiet)?;
    if outcome.over_budget > 0 {
        errln!(
            "budget spent: {} result{} skipped; run again with a larger --max-cost or --max-calls to go on",
            outcome.over_budget,
            if outcome.over_budget == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(5));
    }
    Ok(code)
}

#[derive(clap::Subcommand, Debug)]
pub enum CacheCommand {
    /// Entries and size of the response cache.
    Stats,
    /// Empty the response cache.
    Clear,
}

pub fn cache(command: &CacheCommand) -> Result<ExitCode, ToolError> {
    let dir = assay_run::state_dir_for(Path::new("."));
    let store = assay_run::store::Store::open(&dir).map_err(ToolError)?;
    match command {
        CacheCommand::Stats => {
            let (entries, bytes) = store.cache_stats().map_err(ToolError)?;
            outln!(
                "{entries} cached responses, {:.1} KiB, in {}",
                bytes as f64 / 1024.0,
                store.path().display()
            );
        }
        CacheCommand::Clear => {
            let n = store.cache_clear().map_err(ToolError)?;
            outln!(
                "removed {n} cached responses from {}",
                store.path().display()
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[derive(clap::Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub run: RunArgs,
    /// Dollars per million prompt and completion tokens by model name, as a JSON object:
    /// `{"gpt-4o-mini": [0.15, 0.6]}`; `--price` holds for every target over it.
    #[arg(long, value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Completion tokens a call is assumed to take when its model sets no max_tokens.
    #[arg(long, default_value_t = 256)]
    pub completion_tokens: u64,
    /// Seconds a call is assumed to take, for models bounded by their concurrency.
    #[arg(long, default_value = "2", value_parser = parse_seconds)]
    pub latency: Duration,
    /// `table` (for people) or `json`.
    #[arg(long, default_value = "table")]
    pub format: String,
}

/// `assay plan`: the calls, tokens, dollars and time a run would take, without a call.
pub fn plan(args: &PlanArgs) -> Result<ExitCode, ToolError> {
    let run = &args.run;
    if !matches!(args.format.as_str(), "table" | "json") {
        return Err(ToolError(format!(
            "--format {}: expected `table` or `json`",
            args.format
        )));
    }
    let source = match load(run)? {
        Ok(s) => s,
        Err(code) => return Ok(code),
    };
    let params = params_of(&run.params);
    let models = models_of(run, &source, &params)?;
    let judge_models = crate::score::judge_models(&source.scoring, &run.score.judge_models)?;
    let prices: std::collections::BTreeMap<String, (f64, f64)> = match &args.prices {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| ToolError(format!("cannot read {}: {e}", path.display())))?;
            serde_json::from_str(&text).map_err(|e| {
                ToolError(format!(
                    "{}: expected {{\"MODEL\": [PROMPT, COMPLETION], ...}} in dollars per million tokens: {e}",
                    path.display()
                ))
            })?
        }
        None => Default::default(),
    };
    let options = RunOptions {
        concurrency: run.concurrency as usize,
        requests_per_minute: run.rpm,
        ..RunOptions::default()
    };
    let plan_options = assay_run::plan::PlanOptions {
        completion_tokens: args.completion_tokens,
        latency: args.latency,
        prices,
    };
    let mut iter = items(&source.items_file, &run.filters, run.limit, run.shard)?.map(|(_, i)| i);
    let plan = assay_run::plan::plan(
        &mut iter,
        &models,
        &judge_models,
        &source.scoring,
        &source.programs,
        &options,
        &plan_options,
    );
    if args.format == "json" {
        outln!(
            "{}",
            serde_json::to_string_pretty(&plan).expect("a plan serialises")
        );
        return Ok(ExitCode::SUCCESS);
    }
    let money = |c: Option<f64>| c.map_or("no price".to_string(), |c| format!("${c:.2}"));
    let time = |s: f64| {
        if s >= 3600.0 {
            format!("{:.1} h", s / 3600.0)
        } else if s >= 60.0 {
            format!("{:.1} min", s / 60.0)
        } else {
            format!("{s:.0} s")
        }
    };
    outln!(
        "{:<28} {:>8} {:>9} {:>12} {:>12} {:>10} {:>9}  bound",
        "model",
        "items",
        "calls",
        "prompt tok",
        "output tok",
        "cost",
        "time"
    );
    for (kind, rows) in [
        ("", &plan.models),
        ("", &plan.programs),
        ("judge ", &plan.judges),
    ] {
        for m in rows {
            outln!(
                "{:<28} {:>8} {:>9} {:>12} {:>12} {:>10} {:>9}  {}; {}",
                format!("{kind}{}", m.name),
                m.items,
                m.calls,
                m.prompt_tokens,
                m.completion_tokens,
                money(m.cost),
                time(m.wall_seconds),
                m.bound,
                m.tokenizer
            );
        }
    }
    let t = &plan.total;
    outln!(
        "{:<28} {:>8} {:>9} {:>12} {:>12} {:>10} {:>9}",
        "total",
        t.items,
        t.calls,
        t.prompt_tokens,
        t.completion_tokens,
        if t.priced_all {
            format!("${:.2}", t.cost)
        } else {
            format!("${:.2}+", t.cost)
        },
        time(t.wall_seconds)
    );
    for a in &plan.assumptions {
        outln!("  {a}");
    }
    Ok(ExitCode::SUCCESS)
}
