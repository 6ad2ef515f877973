//! Judging a run folder: every answered result in `results.jsonl` goes through every judge of
//! the suite's [`Scoring`], and `judgements.jsonl` gets one line per result, in the same
//! order. Judges that ask a model send their prompts through the engine, so they share the
//! cache, the rate limits and the retries of targets; a rerun after a kill answers every
//! judge prompt already made from the cache. The file is written whole and renamed into
//! place, so a reader never sees half of it.

use crate::ProgressMode;
use crate::engine::{Caller, ModelRun, Request, RunOptions};
use crate::provider::{Endpoint, Provider};
use crate::store::Store;
use assay_ir::{JudgeKind, JudgeOutcome, Judgement, ResultRecord, Scoring, State, TargetSpec};
use assay_judge::{Judges, Step};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Results judged per batch: bounds memory while keeping judge models busy.
const BATCH: usize = 1024;

pub struct JudgeRequest<'a> {
    pub run_dir: PathBuf,
    pub scoring: &'a Scoring,
    /// Judge name → the model behind it.
    pub models: BTreeMap<String, ModelRun>,
    pub state_dir: PathBuf,
    pub options: RunOptions,
    pub progress: ProgressMode,
}

/// What judging did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct JudgeReport {
    /// Results judged (answered ones).
    pub judged: u64,
    /// Judge model calls sent (not served from the cache).
    pub calls: u64,
    /// Judge → results it could not judge.
    pub errors: BTreeMap<String, u64>,
}

/// The model a target names: `provider:model` at its endpoint, with its parameters.
pub fn model_for(name: &str, target: &TargetSpec) -> Result<ModelRun, String> {
    // Its key is a secret whatever its variable is called.
    if let Some(env) = &target.api_key_env {
        crate::redact::register_env(env);
    }
    let endpoint = Endpoint {
        base_url: target.endpoint.clone(),
        api_key_env: target.api_key_env.clone(),
    };
    let provider = Provider::parse(&format!("{}:{}", target.provider, target.model), &endpoint)?;
    Ok(ModelRun {
        system: target.system.clone(),
        limits: target.limits,
        ..ModelRun::new(name.to_string(), provider, target.params.clone(), None)
    })
}

/// Judges every result of `request.run_dir` and writes `judgements.jsonl`.
pub fn judge(request: JudgeRequest<'_>) -> Result<JudgeReport, String> {
    let results_path = request.run_dir.join("results.jsonl");
    let file = std::fs::File::open(&results_path)
        .map_err(|e| format!("cannot open {}: {e}", results_path.display()))?;
    let judges = Judges::new(&request.scoring.judges);
    let store = Arc::new(Store::open(&request.state_dir)?);
    // Judge name → index into the batch's models, for judges that ask one.
    let mut models = Vec::new();
    let mut model_of = BTreeMap::new();
    for (judge, model) in &request.models {
        model_of.insert(judge.clone(), models.len());
        models.push(model.clone());
    }
    let tmp = request.run_dir.join(".judgements.jsonl.tmp");
    let mut out = std::io::BufWriter::new(
        std::fs::File::create(&tmp).map_err(|e| format!("cannot write {}: {e}", tmp.display()))?,
    );
    let mut report = JudgeReport::default();
    let progress = Progress::start(request.progress, &results_path);
    // One caller for the whole judging, so rate limits hold across batches; its cache
    // writes are committed as they come, so a kill loses no answered judge prompt.
    let (writer, writer_thread) = store.writer(std::sync::mpsc::channel().0)?;
    let caller = Caller::new(Arc::clone(&store), writer, models, request.options.clone())?;
    let context = Batch {
        judges: &judges,
        model_of: &model_of,
        caller: &caller,
        answered: &progress.answered,
    };
    let mut batch = Vec::with_capacity(BATCH);
    let mut lines = std::io::BufReader::new(file).lines();
    loop {
        let line = lines.next();
        let done = line.is_none();
        if let Some(line) = line {
            let line = line.map_err(|e| format!("cannot read {}: {e}", results_path.display()))?;
            if line.trim().is_empty() {
                continue;
            }
            let record: ResultRecord = serde_json::from_str(&line).map_err(|e| {
                format!(
                    "{} holds a line that is not a result: {e}",
                    results_path.display()
                )
            })?;
            batch.push(record);
        }
        if batch.len() >= BATCH || (done && !batch.is_empty()) {
            let judged = judge_batch(&context, &batch, &mut report)?;
            progress
                .results
                .fetch_add(batch.len() as u64, Ordering::Relaxed);
            for j in judged {
                let json = serde_json::to_string(&j).expect("a judgement serialises");
                out.write_all(crate::redact::redact(&json).as_bytes())
                    .and_then(|()| out.write_all(b"\n"))
                    .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
            }
            batch.clear();
        }
        if done {
            break;
        }
    }
    drop(progress);
    drop(caller);
    writer_thread
        .join()
        .map_err(|_| "the cache writer panicked".to_string())??;
    out.flush()
        .map_err(|e| format!("cannot write {}: {e}", tmp.display()))?;
    drop(out);
    let path = request.run_dir.join("judgements.jsonl");
    std::fs::rename(&tmp, &path).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    Ok(report)
}

/// What every batch of one judging shares.
struct Batch<'a> {
    judges: &'a Judges,
    /// Judge name → index into the caller's models.
    model_of: &'a BTreeMap<String, usize>,
    caller: &'a Caller,
    /// Judge calls answered so far, for the progress display.
    answered: &'a Arc<AtomicU64>,
}

fn judge_batch(
    batch: &Batch<'_>,
    records: &[ResultRecord],
    report: &mut JudgeReport,
) -> Result<Vec<Judgement>, String> {
    let Batch {
        judges,
        model_of,
        caller,
        answered,
    } = *batch;
    let mut verdicts: Vec<BTreeMap<String, JudgeOutcome>> = vec![BTreeMap::new(); records.len()];
    // (record, judge) of each request sent.
    let mut asked: Vec<(usize, usize)> = Vec::new();
    let mut requests = Vec::new();
    for (r, record) in records.iter().enumerate() {
        if record.state != State::Ok {
            // Unanswered: no verdicts, but a judge whose `when` excludes the item says so,
            // so that metrics reading it leave the item out rather than count a failure.
            for spec in judges.specs() {
                if !judges.applies(spec, record) {
                    verdicts[r].insert(spec.name.clone(), JudgeOutcome::not_applicable());
                }
            }
            continue;
        }
        report.judged += 1;
        for (j, spec) in judges.specs().iter().enumerate() {
            if matches!(spec.kind, JudgeKind::Ensemble { .. }) {
                continue;
            }
            match judges.start(spec, record) {
                Step::Decided(outcome) => {
                    verdicts[r].insert(spec.name.clone(), outcome);
                }
                Step::Ask { messages, .. } => match model_of.get(&spec.name) {
                    Some(&model) => {
                        asked.push((r, j));
                        requests.push(Request {
                            model,
                            id: format!("{}/{}", record.item_id, spec.name),
                            messages,
                        });
                    }
                    None => {
                        verdicts[r].insert(
                            spec.name.clone(),
                            JudgeOutcome::failed(
                                format!("judge `{}` has no model to ask", spec.name),
                                None,
                            ),
                        );
                    }
                },
            }
        }
    }
    if !requests.is_empty() {
        let (answers, calls) = caller.call_all(requests, answered)?;
        report.calls += calls;
        for ((r, j), answer) in asked.into_iter().zip(answers) {
            let spec = &judges.specs()[j];
            let outcome = judges.finish(spec, answer.as_deref().map_err(String::as_str));
            verdicts[r].insert(spec.name.clone(), outcome);
        }
    }
    // Ensembles come after their members in the scoring's order.
    for (r, record) in records.iter().enumerate() {
        if record.state != State::Ok {
            continue;
        }
        for spec in judges.specs() {
            if matches!(spec.kind, JudgeKind::Ensemble { .. }) {
                let outcome = judges.combine(spec, record, &verdicts[r]);
                verdicts[r].insert(spec.name.clone(), outcome);
            }
        }
        for (name, outcome) in &verdicts[r] {
            if outcome.is_error() {
                *report.errors.entry(name.clone()).or_default() += 1;
            }
        }
    }
    Ok(records
        .iter()
        .zip(verdicts)
        .map(|(record, verdicts)| Judgement {
            item_id: record.item_id.clone(),
            model: record.model.clone(),
            verdicts,
            turns: Vec::new(),
        })
        .collect())
}

/// Judging progress on stderr: results judged (per batch) and judge calls answered (as they
/// come), as a bar on a terminal or a line every few seconds in logs.
struct Progress {
    results: Arc<AtomicU64>,
    answered: Arc<AtomicU64>,
    done: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Progress {
    fn start(mode: ProgressMode, results_path: &std::path::Path) -> Progress {
        let results = Arc::new(AtomicU64::new(0));
        let answered = Arc::new(AtomicU64::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let thread = (mode != ProgressMode::Quiet).then(|| {
            // Counting lines first gives the bar its length; the file is read again to judge.
            let total = std::fs::File::open(results_path)
                .map(|f| std::io::BufReader::new(f).lines().count() as u64)
                .unwrap_or(0);
            let (results, answered, done) = (
                Arc::clone(&results),
                Arc::clone(&answered),
                Arc::clone(&done),
            );
            std::thread::spawn(move || {
                let bar = (mode == ProgressMode::Bar).then(|| {
                    let bar =
                        ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
                    bar.set_style(
                        ProgressStyle::with_template("judging {bar:30} {pos}/{len} {msg}")
                            .expect("a valid template"),
                    );
                    bar
                });
                let mut last_line = Instant::now();
                while !done.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(100));
                    let (r, a) = (
                        results.load(Ordering::Relaxed),
                        answered.load(Ordering::Relaxed),
                    );
                    match &bar {
                        Some(bar) => {
                            bar.set_position(r);
                            bar.set_message(format!("{a} judge calls answered"));
                        }
                        None if last_line.elapsed() >= Duration::from_secs(5) => {
                            last_line = Instant::now();
                            let _ = writeln!(
                                std::io::stderr(),
                                "judging: {r}/{total} results, {a} judge calls answered"
                            );
                        }
                        None => {}
                    }
                }
                if let Some(bar) = bar {
                    bar.finish_and_clear();
                }
            })
        });
        Progress {
            results,
            answered,
            done,
            thread,
        }
    }
}

/// Stops the display, also when judging fails half way.
impl Drop for Progress {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
