//! `assay-run`: the interpreter. It runs a compiled suite's items against models and writes
//! `results.jsonl` and `run.json`.
//!
//! * `provider/`: the wire formats (OpenAI, Anthropic, Ollama, a local command, mocks);
//! * `engine.rs`: concurrency, rate limits, retries, timeouts and the cache, on tokio;
//! * `store.rs`: the SQLite state (cache, runs, journal) and its writer thread;
//! * `preflight.rs`: before the first call, every model's key variable and endpoint checked;
//! * this file: a run from start to finish, resumable: the run is identified by a hash of
//!   the items and the models, so the same command after a kill picks up the same run, its
//!   output folder and its journal.
//!
//! It reads compiled items ([`assay_ir::Item`]) and may depend on `assay-ir` only; the CLI
//! compiles specs and parses arguments.

pub mod conversation;
pub mod engine;
pub mod judging;
pub mod media;
pub mod plan;
pub mod preflight;
pub mod provider;
pub mod redact;
pub mod shard;
pub mod store;

pub use conversation::Conversations;
pub use engine::{Conversing, ModelRun, RunOptions};
pub use provider::{Endpoint, Provider};

use assay_ir::{Item, ResultRecord, RunInfo, State, SuiteInfo, Usage};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

/// The mark a run folder holds while its run is under way (or after it was killed, until it
/// is resumed): its `results.jsonl` is not complete yet.
pub const RUNNING: &str = ".running";

/// How progress is shown.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProgressMode {
    /// A live bar on a terminal.
    Bar,
    /// A plain line every few seconds (logs, CI).
    Lines,
    Quiet,
}

/// A run to make.
pub struct RunRequest {
    pub suite: SuiteInfo,
    /// The compiled items' hash (`items_blake3`).
    pub items_hash: String,
    /// The spec's hash (`spec_hash` of the manifest), written to `run.json`.
    pub spec_hash: Option<String>,
    /// Items the iterator will yield.
    pub total_items: u64,
    /// Which items of the suite are run (filters, limit), as text: part of the run's
    /// identity, so two selections never share a journal.
    pub selection: String,
    pub models: Vec<ModelRun>,
    pub options: RunOptions,
    /// Where the state database lives (`.assay/`).
    pub state_dir: PathBuf,
    /// `--out`; otherwise `state_dir/runs/<suite>-<model>-<time>/`, or the folder of the
    /// unfinished run being resumed.
    pub out_dir: Option<PathBuf>,
    /// Start over: forget the journal of this run (the cache still serves).
    pub fresh: bool,
    /// Keep journalled failures (`error`, `skipped`) instead of trying them again.
    pub keep_failures: bool,
    pub progress: ProgressMode,
    /// The conversation programs and defenses items run under, with the helper models they
    /// call; `None` when no item needs them.
    pub conversing: Option<Conversing>,
}

/// How a run ended.
pub struct RunOutcome {
    pub out_dir: PathBuf,
    pub info: RunInfo,
    /// Results found in the journal from an earlier invocation.
    pub resumed: u64,
    /// Journalled results without an answer (`error`, `skipped`) tried again.
    pub retried: u64,
    /// The earlier invocation had finished, with nothing to try again: this one only
    /// rewrote the results.
    pub already_finished: bool,
    /// Calls made by this invocation.
    pub calls_now: u64,
    /// Items skipped because the budget (`--max-cost`, `--max-calls`) was spent.
    pub over_budget: u64,
}

/// The identity of a run: the items, which of them, and the models with their parameters.
pub fn run_key(
    items_hash: &str,
    selection: &str,
    models: &[ModelRun],
    conversing: Option<&Conversing>,
) -> String {
    let mut h = Sha256::new();
    h.update(items_hash.as_bytes());
    h.update([0]);
    h.update(selection.as_bytes());
    // Programs are named by items, not hashed with them: a changed program is another run.
    if let Some(c) = conversing {
        h.update([1]);
        h.update(serde_json::to_vec(&c.conversations.programs).expect("programs serialise"));
        for m in &c.helpers {
            h.update([0]);
            h.update(m.name.as_bytes());
            h.update([0]);
            h.update(m.provider.identity().as_bytes());
            h.update([0]);
            h.update(serde_json::to_vec(&m.params).expect("params serialise"));
        }
    }
    for m in models {
        h.update([0]);
        h.update(m.name.as_bytes());
        h.update([0]);
        h.update(m.provider.identity().as_bytes());
        h.update([0]);
        h.update(serde_json::to_vec(&m.params).expect("params serialise"));
        if let Some(d) = &m.defense {
            h.update([2]);
            h.update(serde_json::to_vec(d).expect("a defense serialises"));
        }
    }
    hex::encode(h.finalize())
}

/// Runs every item against every model and writes the results.
pub fn run(
    mut request: RunRequest,
    items: &mut dyn Iterator<Item = Item>,
) -> Result<RunOutcome, String> {
    let started = rfc3339(SystemTime::now());
    let store = Arc::new(store::Store::open(&request.state_dir)?);
    let key = run_key(
        &request.items_hash,
        &request.selection,
        &request.models,
        request.conversing.as_ref(),
    );
    let earlier = store.run(&key)?;
    let finished_before = !request.fresh && earlier.as_ref().is_some_and(|(_, done)| *done);
    let out_dir = match (&request.out_dir, &earlier) {
        (Some(dir), _) => dir.clone(),
        (None, Some((dir, _))) if !request.fresh => dir.clone(),
        (None, _) => {
            let model = request.models.first().map_or("run", |m| m.name.as_str());
            let stamp = started
                .replace([':', '-'], "")
                .replace('T', "-")
                .trim_end_matches('Z')
                .to_string();
            request
                .state_dir
                .join("runs")
                .join(slug(&format!("{}-{}-{stamp}", request.suite.name, model)))
        }
    };
    std::fs::create_dir_all(&out_dir)
        .map_err(|e| format!("cannot create {}: {e}", out_dir.display()))?;
    store.start_run(&key, &out_dir, &started, request.fresh)?;
    let journalled = store.journalled(&key, request.keep_failures)?;
    // A budget covers the whole run: what earlier invocations spent counts.
    if request.options.budget.max_calls.is_some() || request.options.budget.max_cost.is_some() {
        let (calls, cost) = store.spent(&key)?;
        request.options.budget.spent_calls = calls;
        request.options.budget.spent_cost = cost;
    }
    let resumed = journalled.done.len() as u64;
    let retried = journalled.retried;
    let already_finished = finished_before && retried == 0;

    let total = request.total_items * request.models.len() as u64;
    let (committed_tx, committed_rx) = std::sync::mpsc::channel();
    let (writer, writer_thread) = store.writer(committed_tx)?;
    let waits = Arc::new(engine::Waits::default());
    // While the calls go on, each committed result is appended to `results.jsonl`, so the
    // run can be watched (`assay view`); at the end the file is replaced by the results in
    // item and model order. A resumed run starts the live file with what it resumes.
    // Until the results are written in order, the folder says its run is under way: `assay
    // judge` and `assay report` refuse it (a killed run keeps the mark until it is resumed).
    let running = out_dir.join(RUNNING);
    std::fs::write(
        &running,
        format!("assay run in progress (pid {})\n", std::process::id()),
    )
    .map_err(|e| format!("cannot write {}: {e}", running.display()))?;
    let live = out_dir.join("results.jsonl");
    if let Ok(file) = std::fs::File::create(&live) {
        let mut w = std::io::BufWriter::new(file);
        // What the journal holds and will keep: results tried again are appended when they
        // come, so they are not listed twice.
        let _ = store.for_each_result(&key, &mut |json, _| {
            let kept = request.keep_failures
                || !(json.contains("\"state\":\"error\"")
                    || json.contains("\"state\":\"skipped\""));
            if !kept {
                return Ok(());
            }
            w.write_all(json.as_bytes())
                .and_then(|()| w.write_all(b"\n"))
                .map_err(|e| e.to_string())
        });
        let _ = w.flush();
    }
    let progress = spawn_progress(
        request.progress,
        total,
        resumed,
        committed_rx,
        Arc::clone(&waits),
        live,
    );

    let journal = engine::Journal {
        store: Arc::clone(&store),
        writer,
        run_key: key.clone(),
    };
    let result = engine::execute(
        journal,
        request.models.clone(),
        items,
        &journalled.done,
        request.options.clone(),
        waits,
        request.conversing.take(),
    );
    // The engine has dropped its senders: the writer commits what is left and stops.
    let written = writer_thread
        .join()
        .map_err(|_| "the journal writer panicked".to_string())?;
    let calls_now = progress.join().unwrap_or(0);
    // The writer's own error says why it stopped (a full disk, say): it comes first.
    written?;
    result?;

    // results.jsonl from the journal, in item and model order.
    let mut counts: BTreeMap<String, u64> = BTreeMap::new();
    let mut usage = Usage::default();
    let mut calls = 0u64;
    let mut over_budget = 0u64;
    let tmp = out_dir.join(".results.jsonl.tmp");
    let file =
        std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    let mut out = std::io::BufWriter::new(file);
    store.for_each_result(&key, &mut |json, made| {
        let record: ResultRecord =
            serde_json::from_str(json).map_err(|e| format!("journal: {e}"))?;
        *counts.entry(record.state.as_str().to_string()).or_default() += 1;
        if record.state == State::Skipped
            && record
                .error
                .as_deref()
                .is_some_and(|e| e.contains("(--max-cost)") || e.contains("(--max-calls)"))
        {
            over_budget += 1;
        }
        if let Some(u) = record.usage {
            usage.prompt_tokens += u.prompt_tokens;
            usage.completion_tokens += u.completion_tokens;
        }
        calls += made;
        out.write_all(json.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| format!("cannot write {}: {e}", tmp.display()))
    })?;
    out.flush()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    drop(out);
    std::fs::rename(&tmp, out_dir.join("results.jsonl")).map_err(|e| {
        format!(
            "cannot write {}: {e}",
            out_dir.join("results.jsonl").display()
        )
    })?;
    let _ = std::fs::remove_file(&running);

    let finished = rfc3339(SystemTime::now());
    let info = RunInfo {
        suite: request.suite.clone(),
        items_hash: request.items_hash.clone(),
        spec_hash: request.spec_hash.clone(),
        models: request.models.iter().map(|m| m.name.clone()).collect(),
        // A parameter whose name says it is secret is written as redacted.
        params: request
            .models
            .first()
            .map(|m| {
                m.params
                    .iter()
                    .map(|(k, v)| {
                        let v = if redact::name_looks_secret(k) {
                            serde_json::Value::String(redact::REDACTED.to_string())
                        } else {
                            v.clone()
                        };
                        (k.clone(), v)
                    })
                    .collect()
            })
            .unwrap_or_default(),
        started,
        finished: finished.clone(),
        items: request.total_items,
        counts,
        usage,
        calls,
    };
    let mut text =
        redact::redact(&serde_json::to_string_pretty(&info).expect("run info serialises"))
            .into_owned();
    text.push('\n');
    std::fs::write(out_dir.join("run.json"), text)
        .map_err(|e| format!("cannot write {}: {e}", out_dir.join("run.json").display()))?;
    store.finish_run(&key, &finished)?;
    // Every conversation's result is journalled with its transcript: its steps are done.
    store.forget_steps(&key)?;
    Ok(RunOutcome {
        out_dir,
        info,
        resumed,
        retried,
        already_finished,
        calls_now,
        over_budget,
    })
}

/// Shows progress as results are committed; returns the calls made.
fn spawn_progress(
    mode: ProgressMode,
    total: u64,
    resumed: u64,
    committed: std::sync::mpsc::Receiver<store::Committed>,
    waits: Arc<engine::Waits>,
    live: PathBuf,
) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        // Appended as results are committed; a failure to write only loses the live view.
        let mut live = std::fs::OpenOptions::new()
            .append(true)
            .open(&live)
            .ok()
            .map(std::io::BufWriter::new);
        let bar = match mode {
            ProgressMode::Bar => {
                let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                bar.set_style(
                    ProgressStyle::with_template("{bar:30} {pos}/{len} {per_sec} eta {eta} {msg}")
                        .expect("a valid template"),
                );
                bar.set_position(resumed);
                Some(bar)
            }
            _ => None,
        };
        let (mut done, mut errors, mut filtered, mut calls, mut tokens, mut cost) =
            (resumed, 0u64, 0u64, 0u64, 0u64, 0f64);
        let start = Instant::now();
        let mut last_line = Instant::now();
        loop {
            // Wake at least every second, so a wait shows while nothing is committed.
            let batch = match committed.recv_timeout(Duration::from_secs(1)) {
                Ok(batch) => batch,
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => store::Committed {
                    records: Vec::new(),
                },
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => break,
            };
            for (record, made) in batch.records {
                if let Some(w) = &mut live
                    && let Ok(json) = serde_json::to_string(&record)
                {
                    let _ = w
                        .write_all(redact::redact(&json).as_bytes())
                        .and_then(|()| w.write_all(b"\n"));
                }
                done += 1;
                calls += made;
                match record.state {
                    State::Error => errors += 1,
                    State::Filtered => filtered += 1,
                    _ => {}
                }
                if let Some(u) = record.usage {
                    tokens += u.prompt_tokens + u.completion_tokens;
                }
                cost += record.cost.unwrap_or(0.0);
            }
            if let Some(w) = &mut live {
                let _ = w.flush();
            }
            let mut msg =
                format!("errors {errors}  filtered {filtered}  tokens {tokens}  ${cost:.4}");
            if let Some(left) = waits.left() {
                msg.push_str(&format!(
                    "  waiting {:.0} s for a rate limit or retry",
                    left.as_secs_f64().ceil()
                ));
            }
            match (&bar, mode) {
                (Some(bar), _) => {
                    bar.set_position(done);
                    bar.set_message(msg);
                }
                (None, ProgressMode::Lines) if last_line.elapsed() >= Duration::from_secs(5) => {
                    last_line = Instant::now();
                    let rate = (done - resumed) as f64 / start.elapsed().as_secs_f64().max(1e-9);
                    let _ = writeln!(std::io::stderr(), "{done}/{total} done, {rate:.0}/s, {msg}");
                }
                _ => {}
            }
        }
        if let Some(bar) = bar {
            bar.finish_and_clear();
        }
        calls
    })
}

/// A folder name: letters, digits, `-`, `_` and `.`.
fn slug(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// `2026-11-28T13:05:47Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let secs = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs() as i64;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // Civil date from days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Where the state of a package lives.
pub fn state_dir_for(root: &Path) -> PathBuf {
    std::env::var_os("ASSAY_STATE_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| root.join(".assay"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(784_111_777);
        assert_eq!(rfc3339(t), "1994-11-06T08:49:37Z");
        assert_eq!(rfc3339(SystemTime::UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
