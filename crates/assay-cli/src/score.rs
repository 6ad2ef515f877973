//! `assay judge` and `assay report`, and the judging and reporting at the end of `assay run`.
//! A run folder holds `scoring.json` (the suite's judges, metrics and grades), `results.jsonl`
//! and `run.json`; judging adds `judgements.jsonl`, scoring adds `summary.json` and
//! `report.md`. `--fail-under` and `--fail-if` (and a grade's declared `gate`) turn a result
//! into exit code 3 for CI.

use crate::ToolError;
use assay_ir::{RunInfo, Scoring, Summary};
use assay_run::engine::{ModelRun, RunOptions};
use assay_run::provider::{Endpoint, Provider};
use std::collections::BTreeMap;
use std::io::{BufRead, IsTerminal};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

/// Exit code of a run that completed but failed a gate.
pub const GATE_FAILED: u8 = 3;

/// Exit code of a run that measured too little to be relied on: too many failed items or
/// judgements, or a gated grade or metric without a value.
pub const RUN_INVALID: u8 = 4;

/// Options shared by `run`, `judge` and `report`: which judge models, which reference, which
/// gates.
#[derive(clap::Args, Debug, Clone, Default)]
pub struct ScoreArgs {
    /// Swap the model behind a declared judge: JUDGE=PROVIDER:MODEL (repeatable).
    #[arg(long = "judge-model", value_name = "JUDGE=PROVIDER:MODEL", value_parser = parse_judge_model)]
    pub judge_models: Vec<(String, String)>,
    /// A run folder whose results give grades their reference target's scores.
    #[arg(long, value_name = "RUN_DIR")]
    pub reference: Option<PathBuf>,
    /// Exit 3 when an overall grade (or, without one, any group's grade) is below GRADE.
    #[arg(long, value_name = "GRADE")]
    pub fail_under: Option<String>,
    /// Exit 3 when a metric's overall value passes a bound: METRIC>VALUE (or <, >=, <=).
    #[arg(long = "fail-if", value_name = "METRIC>VALUE", value_parser = parse_condition)]
    pub fail_if: Vec<Condition>,
    /// The share of a model's items, or of a judge's verdicts, that may fail before the run
    /// is invalid (exit 4); ModelBench's is 0.03.
    #[arg(long, value_name = "SHARE", default_value_t = assay_score::validity::DEFAULT_MAX_INVALID, value_parser = parse_share)]
    pub max_invalid: f64,
    /// Also write report.html, as a spec's `report { formats = [html] }` does.
    #[arg(long)]
    pub html: bool,
}

fn parse_share(arg: &str) -> Result<f64, String> {
    match arg.trim().parse::<f64>() {
        Ok(s) if (0.0..=1.0).contains(&s) => Ok(s),
        _ => Err(format!("`{arg}` is not a share from 0 to 1 (e.g. 0.03)")),
    }
}

fn parse_judge_model(arg: &str) -> Result<(String, String), String> {
    match arg.split_once('=') {
        Some((j, m)) if !j.trim().is_empty() && m.contains(':') => {
            Ok((j.trim().to_string(), m.trim().to_string()))
        }
        _ => Err(format!(
            "expected JUDGE=PROVIDER:MODEL, e.g. guard=ollama:llama-guard3, found `{arg}`"
        )),
    }
}

pub use assay_score::validity::Condition;

fn parse_condition(arg: &str) -> Result<Condition, String> {
    for op in [">=", "<=", ">", "<"] {
        if let Some((metric, value)) = arg.split_once(op) {
            let value = value
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| format!("`{}` is not a number in `{arg}`", value.trim()))?;
            if metric.trim().is_empty() {
                break;
            }
            return Ok(Condition {
                metric: metric.trim().to_string(),
                op: op.to_string(),
                value,
            });
        }
    }
    Err(format!(
        "expected METRIC>VALUE (or <, >=, <=), e.g. unsafe_rate>0.05, found `{arg}`"
    ))
}

/// Engine settings for judge calls.
#[derive(Clone, Debug)]
pub struct CallSettings {
    pub options: RunOptions,
    pub quiet: bool,
    /// The compiled suite's `items.jsonl`: inline attachments for judges that see them.
    pub items: Option<PathBuf>,
}

pub fn read_scoring(run_dir: &Path) -> Result<Scoring, ToolError> {
    let path = run_dir.join("scoring.json");
    match std::fs::read_to_string(&path) {
        Ok(text) => serde_json::from_str(&text)
            .map_err(|e| ToolError(format!("{} does not parse: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Scoring::default()),
        Err(e) => Err(ToolError(format!("cannot read {}: {e}", path.display()))),
    }
}

pub fn write_scoring(run_dir: &Path, scoring: &Scoring) -> Result<(), ToolError> {
    write_json(&run_dir.join("scoring.json"), scoring)
}

fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<(), ToolError> {
    let mut text = serde_json::to_string_pretty(value).expect("serialises");
    text.push('\n');
    write_atomically(path, &text)
}

/// Writes a run folder's file under a temporary name, then renames it; redacted, as every
/// file of a run folder is.
fn write_atomically(path: &Path, text: &str) -> Result<(), ToolError> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, assay_run::redact::redact(text).as_bytes())
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| ToolError(format!("cannot write {}: {e}", path.display())))
}

/// Checks every model the run will call before the first call (targets, then the judges'
/// models): a key variable unset, an endpoint that refuses or a host that does not resolve
/// stops the command with every problem listed (exit 2), before anything is spent.
pub fn preflight(
    targets: &[ModelRun],
    judges: &BTreeMap<String, ModelRun>,
) -> Result<(), ToolError> {
    use assay_run::preflight::{CONNECT_TIMEOUT, ModelUse, check};
    let uses: Vec<ModelUse<'_>> = targets
        .iter()
        .map(|m| ModelUse {
            role: "target".into(),
            model: m,
        })
        .chain(judges.iter().map(|(name, m)| ModelUse {
            role: format!("judge `{name}`'s model"),
            model: m,
        }))
        .collect();
    let problems = check(&uses, CONNECT_TIMEOUT);
    if problems.is_empty() {
        return Ok(());
    }
    let list: Vec<String> = problems.iter().map(|p| format!("  {p}")).collect();
    Err(ToolError(format!(
        "preflight: {} problem{} before any call, nothing was sent (--no-preflight skips \
         this check):\n{}",
        problems.len(),
        if problems.len() == 1 { "" } else { "s" },
        list.join("\n")
    )))
}

/// The model behind each judge that asks one: `--judge-model` first, else its target. A
/// `--judge-model` naming no judge, or a judge that asks no model, is a usage error.
pub fn judge_models(
    scoring: &Scoring,
    swaps: &[(String, String)],
) -> Result<BTreeMap<String, ModelRun>, ToolError> {
    for (judge, _) in swaps {
        if let Some(j) = scoring.judges.iter().find(|j| &j.name == judge)
            && !matches!(
                j.kind,
                assay_ir::JudgeKind::Llm { .. }
                    | assay_ir::JudgeKind::Guard { .. }
                    | assay_ir::JudgeKind::Score { .. }
            )
        {
            return Err(ToolError(format!(
                "--judge-model {judge}=...: judge `{judge}` has no model to replace: it is a \
                 {} judge, which decides without asking a model (only llm, guard and score \
                 judges have one)",
                judge_kind_name(&j.kind)
            )));
        }
        if !scoring.judges.iter().any(|j| &j.name == judge) {
            let names: Vec<&str> = scoring.judges.iter().map(|j| j.name.as_str()).collect();
            return Err(ToolError(format!(
                "--judge-model {judge}=...: the suite has no judge `{judge}` (judges: {})",
                if names.is_empty() {
                    "none".to_string()
                } else {
                    names.join(", ")
                }
            )));
        }
    }
    let mut models = BTreeMap::new();
    for judge in &scoring.judges {
        let (target, temperature) = match &judge.kind {
            assay_ir::JudgeKind::Llm {
                model, temperature, ..
            } => (model, *temperature),
            assay_ir::JudgeKind::Guard { model, .. } | assay_ir::JudgeKind::Score { model, .. } => {
                (model, None)
            }
            _ => continue,
        };
        let mut run = if let Some((_, spec)) = swaps.iter().find(|(j, _)| j == &judge.name) {
            ModelRun::new(
                spec.clone(),
                Provider::parse(spec, &Endpoint::default())
                    .map_err(|e| ToolError(format!("--judge-model {}={spec}: {e}", judge.name)))?,
                BTreeMap::new(),
                None,
            )
        } else if let Some(spec) = scoring.models.get(target) {
            assay_run::judging::model_for(target, spec)
                .map_err(|e| ToolError(format!("judge `{}`: target `{target}`: {e}", judge.name)))?
        } else {
            continue;
        };
        if let Some(t) = temperature {
            run.params
                .insert("temperature".into(), serde_json::json!(t));
        }
        models.insert(judge.name.clone(), run);
    }
    Ok(models)
}

/// The word a spec uses for a judge's kind.
fn judge_kind_name(kind: &assay_ir::JudgeKind) -> &'static str {
    use assay_ir::JudgeKind as K;
    match kind {
        K::Keywords { .. } => "keywords",
        K::Regex { .. } => "regex",
        K::Choice { .. } => "choice",
        K::Llm { .. } => "llm",
        K::Guard { .. } => "guard",
        K::Score { .. } => "score",
        K::Ensemble { .. } => "ensemble",
        K::Human { .. } => "human",
    }
}

/// Judges a run folder's results.
pub fn judge_dir(
    run_dir: &Path,
    scoring: &Scoring,
    args: &ScoreArgs,
    calls: &CallSettings,
    state_dir: &Path,
) -> Result<(), ToolError> {
    unfinished(run_dir)?;
    if scoring.judges.is_empty() {
        return Ok(());
    }
    let models = judge_models(scoring, &args.judge_models)?;
    let report = assay_run::judging::judge(assay_run::judging::JudgeRequest {
        run_dir: run_dir.to_path_buf(),
        scoring,
        models,
        state_dir: state_dir.to_path_buf(),
        options: calls.options.clone(),
        items: calls.items.clone(),
        progress: if calls.quiet {
            assay_run::ProgressMode::Quiet
        } else if std::io::stderr().is_terminal() {
            assay_run::ProgressMode::Bar
        } else {
            assay_run::ProgressMode::Lines
        },
    })
    .map_err(ToolError)?;
    if !calls.quiet {
        let mut errors: Vec<String> = report
            .errors
            .iter()
            .map(|(j, n)| format!("{j} failed on {n}"))
            .collect();
        errors.extend(report.turn_errors.iter().map(|(j, n)| {
            format!(
                "{j} failed on {n} conversation turn{}",
                if *n == 1 { "" } else { "s" }
            )
        }));
        let first = if report.errors.is_empty() {
            BTreeMap::new()
        } else {
            first_errors(run_dir)
        };
        errln!(
            "judged {} response{}{} with {} judge{}; {} judge call{} made{}",
            report.judged,
            if report.judged == 1 { "" } else { "s" },
            if report.turns > 0 {
                format!(
                    " and {} conversation turn{}",
                    report.turns,
                    if report.turns == 1 { "" } else { "s" }
                )
            } else {
                String::new()
            },
            scoring.judges.len(),
            if scoring.judges.len() == 1 { "" } else { "s" },
            report.calls,
            if report.calls == 1 { "" } else { "s" },
            if errors.is_empty() {
                String::new()
            } else {
                format!("; {}", errors.join(", "))
            }
        );
        for (judge, why) in &first {
            let why: String = why.chars().take(300).collect();
            errln!("  {judge}: first error: {why}");
        }
    }
    Ok(())
}

/// Each judge's first error in a run folder's `judgements.jsonl`, so the terminal says why
/// judging failed, not only how often (the rest are in the file).
fn first_errors(run_dir: &Path) -> BTreeMap<String, String> {
    let mut first = BTreeMap::new();
    let Ok(file) = std::fs::File::open(run_dir.join("judgements.jsonl")) else {
        return first;
    };
    for line in std::io::BufReader::new(file).lines().map_while(Result::ok) {
        let Ok(j) = serde_json::from_str::<assay_ir::Judgement>(&line) else {
            continue;
        };
        for (name, outcome) in j.verdicts {
            if let Some(e) = outcome.error {
                first.entry(name).or_insert(e);
            }
        }
    }
    first
}

/// Scores a judged run folder from its files alone: no model call.
/// A run folder whose run is under way, or was stopped before it wrote its results in
/// order, is neither judged nor scored: its numbers would rest on part of its items.
fn unfinished(run_dir: &Path) -> Result<(), ToolError> {
    if run_dir.join(assay_run::RUNNING).is_file() {
        return Err(ToolError(format!(
            "the run in {} has not finished (it is under way, or was stopped): run the same `assay run` again to complete it; its results so far are in results.jsonl",
            run_dir.display()
        )));
    }
    Ok(())
}

pub fn summarize_dir(
    run_dir: &Path,
    scoring: &Scoring,
    reference: Option<&Summary>,
) -> Result<Summary, ToolError> {
    unfinished(run_dir)?;
    let info_path = run_dir.join("run.json");
    let info: RunInfo = std::fs::read_to_string(&info_path)
        .map_err(|e| {
            ToolError(format!(
                "cannot read {}: {e} (is it a run folder?)",
                info_path.display()
            ))
        })
        .and_then(|t| {
            serde_json::from_str(&t)
                .map_err(|e| ToolError(format!("{} does not parse: {e}", info_path.display())))
        })?;
    let open = |name: &str| -> Result<Option<std::io::Lines<std::io::BufReader<std::fs::File>>>, ToolError> {
        let path = run_dir.join(name);
        match std::fs::File::open(&path) {
            Ok(f) => Ok(Some(std::io::BufReader::new(f).lines())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(ToolError(format!("cannot open {}: {e}", path.display()))),
        }
    };
    let results = open("results.jsonl")?
        .ok_or_else(|| ToolError(format!("{} has no results.jsonl", run_dir.display())))?;
    let mut judgements = open("judgements.jsonl")?;
    let mut failure: Option<ToolError> = None;
    let mut unjudged = 0u64;
    let mut pairs = results
        .map_while(|line| {
            let line = match line {
                Ok(l) => l,
                Err(e) => {
                    failure = Some(ToolError(format!("cannot read results.jsonl: {e}")));
                    return None;
                }
            };
            let record: assay_ir::ResultRecord = match serde_json::from_str(&line) {
                Ok(r) => r,
                Err(e) => {
                    failure = Some(ToolError(format!(
                        "results.jsonl holds a line that is not a result: {e}"
                    )));
                    return None;
                }
            };
            // judgements.jsonl is written in the order of results.jsonl; a line that does not
            // belong to its result (results rewritten since) counts as unjudged.
            let judgement = judgements
                .as_mut()
                .and_then(|j| j.next())
                .and_then(Result::ok)
                .and_then(|l| serde_json::from_str::<assay_ir::Judgement>(&l).ok())
                .filter(|j| j.item_id == record.item_id && j.model == record.model);
            if judgement.is_none() && !scoring.judges.is_empty() {
                unjudged += 1;
            }
            Some((record, judgement))
        })
        .fuse();
    let mut summary = assay_score::summarize(scoring, &info.suite, &mut pairs, reference);
    drop(pairs);
    if unjudged > 0 {
        summary.warnings.push(format!(
            "{unjudged} result{} no judgement (judgements.jsonl is missing or older than \
             results.jsonl): run `assay judge {}`",
            if unjudged == 1 { " has" } else { "s have" },
            run_dir.display()
        ));
    }
    if let Some(e) = failure {
        return Err(e);
    }
    Ok(summary)
}

/// The reference run's summary, recomputed from its folder.
fn reference_summary(dir: &Path) -> Result<Summary, ToolError> {
    let scoring = read_scoring(dir)?;
    summarize_dir(dir, &scoring, None)
}

/// Writes `summary.json` and `report.md`, prints the table, and applies the gates.
pub fn report_dir(
    run_dir: &Path,
    scoring: &Scoring,
    args: &ScoreArgs,
    quiet: bool,
) -> Result<ExitCode, ToolError> {
    let reference = args
        .reference
        .as_deref()
        .map(reference_summary)
        .transpose()?;
    let summary = summarize_dir(run_dir, scoring, reference.as_ref())?;
    write_json(&run_dir.join("summary.json"), &summary)?;
    write_atomically(
        &run_dir.join("report.md"),
        &assay_report::markdown(&summary, scoring),
    )?;
    for (name, _, svg) in assay_report::chart_files(&summary, scoring) {
        write_atomically(&run_dir.join(name), &svg)?;
    }
    if crate::html::wanted(scoring, args.html) {
        let path = crate::html::write_report(run_dir, scoring, &summary)?;
        if !quiet {
            errln!("wrote {}", path.display());
        }
    }
    if !quiet {
        out!("{}", assay_report::terminal(&summary, scoring, color()));
    } else {
        // Quiet hides tables and progress, never what a reader must see.
        for w in &summary.warnings {
            errln!("warning: {w}");
        }
    }
    verdict(&summary, scoring, args)
}

/// The run's verdict (`assay_score::validity`), always printed as its last line: invalid
/// (exit 4) when it measured too little, else a failed gate (exit 3), else success.
fn verdict(summary: &Summary, scoring: &Scoring, args: &ScoreArgs) -> Result<ExitCode, ToolError> {
    let gates = assay_score::validity::Gates {
        fail_under: args.fail_under.as_deref(),
        fail_if: &args.fail_if,
        max_invalid: args.max_invalid,
    };
    let v = assay_score::validity::verdict(summary, scoring, &gates).map_err(ToolError)?;
    for f in &v.failed_gates {
        errln!("gate failed: {f}");
    }
    for why in &v.invalid {
        errln!("invalid: {why}");
    }
    let measured = format!(
        "{} results, {} without an answer",
        v.results, v.without_answer
    );
    if !v.invalid.is_empty() {
        errln!("run invalid ({measured}): exit {RUN_INVALID}");
        return Ok(ExitCode::from(RUN_INVALID));
    }
    if !v.failed_gates.is_empty() {
        errln!(
            "run valid ({measured}); {} gate{} failed: exit {GATE_FAILED}",
            v.failed_gates.len(),
            if v.failed_gates.len() == 1 { "" } else { "s" }
        );
        return Ok(ExitCode::from(GATE_FAILED));
    }
    errln!("run valid ({measured})");
    Ok(ExitCode::SUCCESS)
}

/// Colour only for a terminal, and never with `NO_COLOR` set.
fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

#[derive(clap::Args, Debug)]
pub struct JudgeArgs {
    /// A run folder (with results.jsonl and scoring.json).
    pub run_dir: PathBuf,
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Judge requests in flight per judge.
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub concurrency: u32,
    /// Retries after a failed judge call.
    #[arg(long, default_value_t = 5)]
    pub retries: u32,
    /// Seconds one judge request may take.
    #[arg(long, default_value = "120", value_parser = crate::run::parse_seconds)]
    pub timeout: Duration,
    /// Judge requests per minute per judge.
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    pub rpm: Option<u32>,
    /// Neither read nor write the response cache.
    #[arg(long)]
    pub no_cache: bool,
    /// No tables or progress output.
    #[arg(long, short)]
    pub quiet: bool,
    /// Skip the check, before the first judge call, that every judge model's key variable is
    /// set and its endpoint accepts a connection.
    #[arg(long)]
    pub no_preflight: bool,
    #[command(flatten)]
    pub media: JudgeMediaArgs,
}

/// Where judges with `attachments = true` read the items' images and audio, when a run
/// folder is judged apart from its run (`assay judge`, `assay merge`).
#[derive(clap::Args, Clone, Debug, Default)]
pub struct JudgeMediaArgs {
    /// Where items' attachment paths are relative to, for judges with `attachments = true`
    /// (the package the run was made from; default the current folder).
    #[arg(long, value_name = "DIR")]
    pub attachments_root: Option<PathBuf>,
    /// The compiled suite (a folder with `items.jsonl`) the run was made from: the bytes of
    /// attachments a dataset gave inline, which results do not keep, for judges with
    /// `attachments = true`.
    #[arg(long, value_name = "DIR")]
    pub suite: Option<PathBuf>,
}

/// Backoff base: `ASSAY_BACKOFF_MS` (tests shorten it), else half a second.
pub fn backoff() -> Duration {
    Duration::from_millis(
        std::env::var("ASSAY_BACKOFF_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500),
    )
}

/// The state folder of a run folder: `.assay/` above `runs/`, else `.assay` here.
fn state_dir_of(run_dir: &Path) -> PathBuf {
    let abs = std::path::absolute(run_dir).unwrap_or_else(|_| run_dir.to_path_buf());
    match abs.parent() {
        Some(runs) if runs.file_name().is_some_and(|n| n == "runs") => runs.parent().map_or_else(
            || assay_run::state_dir_for(Path::new(".")),
            Path::to_path_buf,
        ),
        _ => assay_run::state_dir_for(Path::new(".")),
    }
}

pub fn judge(args: &JudgeArgs) -> Result<ExitCode, ToolError> {
    let scoring = read_scoring(&args.run_dir)?;
    let models = judge_models(&scoring, &args.score.judge_models)?;
    if !args.no_preflight {
        preflight(&[], &models)?;
    }
    let _lock =
        assay_run::store::StateLock::acquire(&state_dir_of(&args.run_dir)).map_err(ToolError)?;
    let calls = CallSettings {
        options: RunOptions {
            concurrency: args.concurrency as usize,
            timeout: args.timeout,
            max_time: None,
            retries: args.retries,
            backoff: backoff(),
            requests_per_minute: args.rpm,
            tokens_per_minute: None,
            use_cache: !args.no_cache,
            data_cache: Some(crate::suite::data_cache(
                args.media
                    .attachments_root
                    .as_deref()
                    .unwrap_or(Path::new(".")),
            )),
            attachments_root: args.media.attachments_root.clone(),
            ..RunOptions::default()
        },
        quiet: args.quiet,
        items: args.media.suite.as_ref().map(|s| s.join("items.jsonl")),
    };
    judge_dir(
        &args.run_dir,
        &scoring,
        &args.score,
        &calls,
        &state_dir_of(&args.run_dir),
    )?;
    report_dir(&args.run_dir, &scoring, &args.score, args.quiet)
}

#[derive(clap::Args, Debug)]
pub struct ReportArgs {
    /// One run folder, or two to compare (the second against the first).
    #[arg(required = true, num_args = 1..=2)]
    pub run_dirs: Vec<PathBuf>,
    #[command(flatten)]
    pub score: ScoreArgs,
    /// Print Markdown instead of terminal tables.
    #[arg(long)]
    pub markdown: bool,
    #[arg(long, short)]
    pub quiet: bool,
}

pub fn report(args: &ReportArgs) -> Result<ExitCode, ToolError> {
    if !args.score.judge_models.is_empty() {
        return Err(ToolError(
            "`assay report` makes no model call; rejudge with `assay judge RUN_DIR --judge-model ...`".into(),
        ));
    }
    match args.run_dirs.as_slice() {
        [one] => {
            let scoring = read_scoring(one)?;
            if args.markdown {
                let reference = args
                    .score
                    .reference
                    .as_deref()
                    .map(reference_summary)
                    .transpose()?;
                let summary = summarize_dir(one, &scoring, reference.as_ref())?;
                out!("{}", assay_report::markdown(&summary, &scoring));
                return verdict(&summary, &scoring, &args.score);
            }
            report_dir(one, &scoring, &args.score, args.quiet)
        }
        [a, b] => {
            let sa = reference_summary(a)?;
            let sb = reference_summary(b)?;
            let diffs = assay_score::compare(&sa, &sb);
            let name = |dir: &Path, s: &Summary| {
                let models = s.models.join("+");
                if models.is_empty() {
                    dir.display().to_string()
                } else {
                    models
                }
            };
            let (la, lb) = (name(a, &sa), name(b, &sb));
            out!(
                "{}",
                assay_report::comparison(&diffs, &la, &lb, args.markdown)
            );
            if args.score.html {
                let path = crate::html::write_comparison((a, &sa), (b, &sb), (la, lb), &diffs)?;
                errln!("wrote {}", path.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        _ => Err(ToolError("give one run folder, or two to compare".into())),
    }
}
