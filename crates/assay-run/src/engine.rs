//! The engine: every item against every model, on tokio, with bounded concurrency per model,
//! request and token rate limits (token buckets, `governor`) that pause the model on a 429,
//! retries with exponential backoff and jitter that honour `Retry-After`, per-request and
//! total timeouts, and the cache. Each finished result goes to the store's writer; a failure
//! after the last retry is an `error` result with its cause, never a verdict.

use crate::provider::{CallError, CallLimits, DEFAULT_MAX_RESPONSE_BYTES, Params, Provider, Reply};
use crate::store::{Store, Write};
use assay_ir::{Item, Message, ResultRecord, Role, State, Usage};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};
use std::collections::HashSet;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};
use tokio::sync::{Mutex, Semaphore};

/// One model of a run.
#[derive(Clone, Debug)]
pub struct ModelRun {
    /// As given: `openai:gpt-4o-mini`, or a target's name.
    pub name: String,
    pub provider: Provider,
    pub params: Params,
    /// Dollars per million prompt and completion tokens, for `cost`.
    pub price: Option<(f64, f64)>,
    /// The target's system prompt, sent before the item's own.
    pub system: Option<String>,
    /// The target's own limits, over the run's options.
    pub limits: assay_ir::TargetLimits,
    /// A defended target's defense: its conversations go through the program interpreter.
    pub defense: Option<assay_ir::DefenseSpec>,
    /// Replicas serving the same model at other endpoints (`base_urls`): each call goes to
    /// the live one with the fewest requests in flight. The cache and the run's identity stay
    /// the model's (`provider`), whichever replica answers.
    pub replicas: Vec<Provider>,
}

impl ModelRun {
    /// A model with no system prompt and the run's limits.
    pub fn new(
        name: String,
        provider: Provider,
        params: Params,
        price: Option<(f64, f64)>,
    ) -> Self {
        ModelRun {
            name,
            provider,
            params,
            price,
            system: None,
            limits: assay_ir::TargetLimits::default(),
            defense: None,
            replicas: Vec::new(),
        }
    }

    /// The conversation as this model is sent it: its system prompt first, in one system
    /// message with the item's (every provider takes one).
    pub(crate) fn with_system(&self, messages: &[Message]) -> Vec<Message> {
        let Some(system) = self.system.as_deref().filter(|s| !s.is_empty()) else {
            return messages.to_vec();
        };
        let mut out = Vec::with_capacity(messages.len() + 1);
        let mut merged = false;
        for m in messages {
            if m.role == Role::System && !merged {
                out.push(Message {
                    role: Role::System,
                    content: format!("{system}\n\n{}", m.content),
                });
                merged = true;
            } else {
                out.push(m.clone());
            }
        }
        if !merged {
            out.insert(
                0,
                Message {
                    role: Role::System,
                    content: system.to_string(),
                },
            );
        }
        out
    }

    fn timeout(&self, options: &RunOptions) -> Duration {
        self.limits
            .timeout_secs
            .filter(|s| s.is_finite() && *s > 0.0)
            .map_or(options.timeout, Duration::from_secs_f64)
    }

    fn retries(&self, options: &RunOptions) -> u32 {
        self.limits.retries.unwrap_or(options.retries)
    }
}

#[derive(Clone, Debug)]
pub struct RunOptions {
    /// Requests in flight per model.
    pub concurrency: usize,
    /// One request's limit.
    pub timeout: Duration,
    /// The whole run's limit: items not started by then are `skipped`.
    pub max_time: Option<Duration>,
    /// Tries after the first.
    pub retries: u32,
    /// First backoff; doubles each retry, with ±50% jitter, capped at 60 s.
    pub backoff: Duration,
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
    pub use_cache: bool,
    /// The most bytes read of one answer; a larger one is that call's error. Default
    /// [`DEFAULT_MAX_RESPONSE_BYTES`] (1 MiB).
    pub max_response_bytes: usize,
    /// The run's budget: once it is spent no new call starts, and what is left is skipped.
    pub budget: Budget,
    /// Where items' attachment paths are relative to: the package root (default: the
    /// current folder).
    pub attachments_root: Option<std::path::PathBuf>,
    /// The data cache, where attachments pinned by URL were downloaded when the suite was
    /// compiled (files named by their sha256).
    pub data_cache: Option<std::path::PathBuf>,
}

/// A run's budget, in calls sent and in dollars (from the usage providers report and the
/// models' prices; a model without a price costs nothing here). What earlier invocations of
/// the same run spent counts: a rerun with a larger budget goes on where the last stopped.
#[derive(Clone, Debug, Default)]
pub struct Budget {
    pub max_calls: Option<u64>,
    pub max_cost: Option<f64>,
    /// Spent before this invocation.
    pub spent_calls: u64,
    pub spent_cost: f64,
}

/// What the run has spent, against its budget.
#[derive(Debug, Default)]
pub(crate) struct Spending {
    calls: AtomicU64,
    /// Micro-dollars, so that concurrent calls add without a lock.
    micro_dollars: AtomicU64,
}

impl Spending {
    /// Why no new call may start, once the budget is spent.
    fn exhausted(&self, budget: &Budget) -> Option<String> {
        let calls = budget.spent_calls + self.calls.load(Ordering::SeqCst);
        if let Some(max) = budget.max_calls
            && calls >= max
        {
            return Some(format!(
                "not sent: the run's budget of {max} calls (--max-calls) is spent"
            ));
        }
        let cost = budget.spent_cost + self.micro_dollars.load(Ordering::SeqCst) as f64 / 1e6;
        if let Some(max) = budget.max_cost
            && cost >= max
        {
            return Some(format!(
                "not sent: the run's budget of ${max:.2} (--max-cost) is spent (${cost:.4})"
            ));
        }
        None
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 16,
            timeout: Duration::from_secs(120),
            max_time: None,
            retries: 5,
            backoff: Duration::from_millis(500),
            requests_per_minute: None,
            tokens_per_minute: None,
            use_cache: true,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            budget: Budget::default(),
            attachments_root: None,
            data_cache: None,
        }
    }
}

/// Per-model limits shared by its requests.
struct Limits {
    permits: Arc<Semaphore>,
    requests: Option<DefaultDirectRateLimiter>,
    tokens: Option<DefaultDirectRateLimiter>,
    /// After a 429, no request of this model starts before this instant.
    paused_until: Mutex<Option<Instant>>,
    /// Whether the model has answered once in this process.
    answered: AtomicBool,
    /// Connections refused since the start, while it never answered, and the last reason.
    refused: AtomicU32,
    last_refusal: std::sync::Mutex<String>,
    /// The model's replicas, when it has several.
    replicas: Vec<Replica>,
}

/// One replica's load and health.
#[derive(Debug, Default)]
struct Replica {
    /// Requests in flight.
    outstanding: AtomicU32,
    /// Failures in a row (refused connections, server errors, timeouts).
    failures: AtomicU32,
    /// Taken out of rotation until then.
    down_until: std::sync::Mutex<Option<Instant>>,
}

/// How long a replica that refuses connections, or fails [`REPLICA_FAILURES`] times in a row,
/// stays out of rotation before it is tried again.
const REPLICA_PAUSE: Duration = Duration::from_secs(30);
const REPLICA_FAILURES: u32 = 3;

impl Replica {
    fn live(&self, now: Instant) -> bool {
        self.down_until
            .lock()
            .map(|d| d.is_none_or(|until| until <= now))
            .unwrap_or(true)
    }

    fn take_out(&self) {
        if let Ok(mut d) = self.down_until.lock() {
            *d = Some(Instant::now() + REPLICA_PAUSE);
        }
    }
}

/// Holds a replica's place in flight for one request.
struct InFlight<'a>(&'a Replica);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.outstanding.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Limits {
    /// The replica a request goes to: among the live ones the one with the fewest requests in
    /// flight (the first of equals); when none is live, the one back soonest.
    fn pick_replica(&self) -> usize {
        let now = Instant::now();
        let load = |i: usize| self.replicas[i].outstanding.load(Ordering::SeqCst);
        (0..self.replicas.len())
            .filter(|&i| self.replicas[i].live(now))
            .min_by_key(|&i| load(i))
            .unwrap_or_else(|| {
                (0..self.replicas.len())
                    .min_by_key(|&i| {
                        self.replicas[i]
                            .down_until
                            .lock()
                            .ok()
                            .and_then(|d| *d)
                            .unwrap_or(now)
                    })
                    .unwrap_or(0)
            })
    }

    /// Whether another replica than `i` is live.
    fn another_live(&self, i: usize) -> bool {
        let now = Instant::now();
        (0..self.replicas.len()).any(|j| j != i && self.replicas[j].live(now))
    }
}

/// Refused connections after which a model that never answered is given up on: its endpoint
/// is wrong or its server is not running, and retrying every item would only add waiting.
const GIVE_UP_AFTER_REFUSALS: u32 = 8;

impl Limits {
    fn new(options: &RunOptions, model: &ModelRun) -> Limits {
        let per_minute =
            |n: u32| NonZeroU32::new(n).map(|n| RateLimiter::direct(Quota::per_minute(n)));
        // A provider's request limit per minute is enforced over shorter windows (OpenAI's
        // by the second), so a minute's worth of requests is never sent at once: the bucket
        // holds one second's share and refills evenly. (The token bucket keeps a minute's
        // worth: one call may need more tokens than a second's share.)
        let requests_per_minute = |n: u32| {
            NonZeroU32::new(n).map(|per| {
                let burst = NonZeroU32::new((n / 60).max(1)).unwrap_or(NonZeroU32::MIN);
                RateLimiter::direct(Quota::per_minute(per).allow_burst(burst))
            })
        };
        let concurrency = model.limits.concurrency.unwrap_or(options.concurrency);
        Limits {
            permits: Arc::new(Semaphore::new(concurrency.max(1))),
            requests: model
                .limits
                .requests_per_minute
                .or(options.requests_per_minute)
                .and_then(requests_per_minute),
            tokens: options.tokens_per_minute.and_then(per_minute),
            paused_until: Mutex::new(None),
            answered: AtomicBool::new(false),
            refused: AtomicU32::new(0),
            last_refusal: std::sync::Mutex::new(String::new()),
            replicas: model.replicas.iter().map(|_| Replica::default()).collect(),
        }
    }

    /// Why no call should be sent any more, once the model has been given up on.
    fn given_up(&self) -> Option<String> {
        let refused = self.refused.load(Ordering::SeqCst);
        (!self.answered.load(Ordering::SeqCst) && refused >= GIVE_UP_AFTER_REFUSALS).then(|| {
            let last = self
                .last_refusal
                .lock()
                .map(|m| m.clone())
                .unwrap_or_default();
            format!(
                "not sent: the model's endpoint refused {refused} connections and never answered; is its server running? ({last})"
            )
        })
    }
}

/// What every task of a run shares. `models` holds the run's targets first, then the helper
/// models conversations call (judges' models, attackers, rewriters).
pub(crate) struct Shared {
    pub(crate) models: Vec<ModelRun>,
    limits: Vec<Limits>,
    options: RunOptions,
    pub(crate) store: Arc<Store>,
    pub(crate) writer: std::sync::Mutex<mpsc::Sender<Write>>,
    pub(crate) run_key: String,
    deadline: Option<Instant>,
    waits: Arc<Waits>,
    /// The run's targets: the first `targets` of `models`.
    targets: usize,
    /// Calls and dollars spent by this invocation, against `options.budget`.
    spending: Spending,
    conversations: Option<Arc<crate::conversation::Conversations>>,
}

/// The longest wait under way (a 429 pause, a `Retry-After`, a backoff), for the progress
/// line: a run that seems stuck says what it is waiting for.
#[derive(Debug, Default)]
pub struct Waits {
    /// Milliseconds since the Unix epoch the wait ends at; 0 for none.
    until_ms: AtomicU64,
}

impl Waits {
    fn now_ms() -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }

    fn waiting(&self, wait: Duration) {
        if wait >= Duration::from_secs(1) {
            let until = Self::now_ms() + wait.as_millis() as u64;
            self.until_ms.fetch_max(until, Ordering::Relaxed);
        }
    }

    /// The time left of the wait under way, if any.
    pub fn left(&self) -> Option<Duration> {
        let until = self.until_ms.load(Ordering::Relaxed);
        let now = Self::now_ms();
        (until > now).then(|| Duration::from_millis(until - now))
    }
}

/// Where a run's results go: the store, its writer, and the run's journal key.
pub struct Journal {
    pub store: Arc<Store>,
    pub writer: mpsc::Sender<Write>,
    pub run_key: String,
}

/// The conversation programs of a run and the helper models they call, appended after the
/// targets.
pub struct Conversing {
    pub conversations: crate::conversation::Conversations,
    pub helpers: Vec<ModelRun>,
}

/// Runs `items` (numbered in order) against every model, skipping what the journal holds.
/// Returns when every result is handed to the writer; `waits` shows the waits under way.
pub fn execute(
    journal: Journal,
    mut models: Vec<ModelRun>,
    items: &mut dyn Iterator<Item = Item>,
    journalled: &HashSet<(u64, usize)>,
    options: RunOptions,
    waits: Arc<Waits>,
    conversing: Option<Conversing>,
) -> Result<(), String> {
    let runtime = runtime()?;
    let targets = models.len();
    let conversations = conversing.map(|c| {
        models.extend(c.helpers);
        Arc::new(c.conversations)
    });
    let limits = models.iter().map(|m| Limits::new(&options, m)).collect();
    let shared = Arc::new(Shared {
        spending: Spending::default(),
        targets,
        conversations,
        waits,
        deadline: options.max_time.map(|t| Instant::now() + t),
        models,
        limits,
        options,
        store: journal.store,
        writer: std::sync::Mutex::new(journal.writer),
        run_key: journal.run_key,
    });
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (seq, item) in items.enumerate() {
            let seq = seq as u64;
            let item = Arc::new(item);
            for m in 0..shared.targets {
                if journalled.contains(&(seq, m)) {
                    continue;
                }
                let permit = Arc::clone(&shared.limits[m].permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| "the run was closed".to_string())?;
                let shared = Arc::clone(&shared);
                let item = Arc::clone(&item);
                tasks.spawn(async move {
                    let (record, calls) = run_one(&shared, m, &item, seq).await;
                    drop(permit);
                    let write = Write::Journal {
                        run_key: shared.run_key.clone(),
                        seq,
                        model: m,
                        record: Box::new(record),
                        calls,
                    };
                    shared
                        .writer
                        .lock()
                        .map_err(|_| "writer lock poisoned".to_string())?
                        .send(write)
                        .map_err(|_| "the journal writer stopped".to_string())
                });
            }
            // Reap finished tasks as we go, so memory stays bounded by the concurrency.
            while let Some(done) = tasks.try_join_next() {
                done.map_err(|e| format!("a task failed: {e}"))??;
            }
        }
        while let Some(done) = tasks.join_next().await {
            done.map_err(|e| format!("a task failed: {e}"))??;
        }
        Ok::<(), String>(())
    })
}

/// One request of a batch: the model (an index into the batch's models), an id for
/// providers that want one, the conversation, and the media sent with its last user turn.
pub struct Request {
    pub model: usize,
    pub id: String,
    pub messages: Vec<Message>,
    pub media: Vec<crate::provider::Media>,
}

/// Sends independent requests (judge prompts) with the same cache, limits and retries as
/// targets, batch after batch: the rate limits and the given-up state of each model last as
/// long as the caller. Dropping it lets the store's writer finish.
pub struct Caller {
    runtime: tokio::runtime::Runtime,
    shared: Arc<Shared>,
}

impl Caller {
    pub fn new(
        store: Arc<Store>,
        writer: mpsc::Sender<Write>,
        models: Vec<ModelRun>,
        options: RunOptions,
    ) -> Result<Caller, String> {
        let runtime = runtime()?;
        let limits = models.iter().map(|m| Limits::new(&options, m)).collect();
        let shared = Arc::new(Shared {
            waits: Arc::default(),
            deadline: None,
            models,
            limits,
            options,
            store,
            writer: std::sync::Mutex::new(writer),
            run_key: String::new(),
            targets: 0,
            conversations: None,
            spending: Spending::default(),
        });
        Ok(Caller { runtime, shared })
    }

    /// Each answer is the reply's text, or the final error after every retry; a reply refused
    /// by a content filter is an error too. Answers come back in request order with the calls
    /// made; `answered` counts them as they come.
    pub fn call_all(
        &self,
        requests: Vec<Request>,
        answered: &AtomicU64,
    ) -> Result<(Vec<Result<String, String>>, u64), String> {
        let (replies, calls) = self.call_all_replies(requests, answered)?;
        let texts = replies.into_iter().map(|r| r.map(|r| r.text)).collect();
        Ok((texts, calls))
    }

    /// [`Caller::call_all`] with the whole replies (log-probabilities included).
    pub fn call_all_replies(
        &self,
        requests: Vec<Request>,
        answered: &AtomicU64,
    ) -> Result<(Vec<Result<Reply, String>>, u64), String> {
        let shared = &self.shared;
        self.runtime.block_on(async {
            let mut tasks = tokio::task::JoinSet::new();
            for (index, request) in requests.into_iter().enumerate() {
                let permit = Arc::clone(&shared.limits[request.model].permits)
                    .acquire_owned()
                    .await
                    .map_err(|_| "the batch was closed".to_string())?;
                let shared = Arc::clone(shared);
                tasks.spawn(async move {
                    let messages = shared.models[request.model].with_system(&request.messages);
                    let answer = call(
                        &shared,
                        request.model,
                        &request.id,
                        &messages,
                        "",
                        &request.media,
                    )
                    .await;
                    drop(permit);
                    (index, answer)
                });
            }
            let mut answers: Vec<Option<Result<Reply, String>>> = Vec::new();
            let mut calls = 0u64;
            while let Some(done) = tasks.join_next().await {
                let (index, answer) = done.map_err(|e| format!("a task failed: {e}"))?;
                answered.fetch_add(1, Ordering::Relaxed);
                if answers.len() <= index {
                    answers.resize(index + 1, None);
                }
                answers[index] = Some(match answer {
                    Ok((reply, _, made)) => {
                        calls += made;
                        match reply.filtered {
                            Some(reason) => Err(format!(
                                "refused by the provider's content filter: {reason}"
                            )),
                            None => Ok(reply),
                        }
                    }
                    Err(failure) => {
                        calls += failure.calls;
                        Err(failure.message)
                    }
                });
            }
            Ok((
                answers
                    .into_iter()
                    .map(|a| a.unwrap_or_else(|| Err("no answer".to_string())))
                    .collect(),
                calls,
            ))
        })
    }
}

/// The engine's runtime: two workers, as calls spend their time waiting on the network.
fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// A record of `item` for `model`, before anything is run: its labels and conversation, no
/// answer yet, its attachments by reference.
pub(crate) fn new_record(item: &Item, model: &str) -> ResultRecord {
    ResultRecord {
        item_id: item.id.clone(),
        model: model.to_string(),
        state: State::Ok,
        key: item.key.clone(),
        source: item.source.clone(),
        labels: item.labels.clone(),
        expect: item.expect.clone(),
        gold: item.gold.clone(),
        group: item.group.clone(),
        source_id: item
            .metadata
            .get("source_id")
            .and_then(|v| v.as_str())
            .map(str::to_string),
        messages: item.messages.clone(),
        response: None,
        error: None,
        latency_ms: None,
        usage: None,
        cost: None,
        cached: false,
        turns: Vec::new(),
        final_turn: None,
        // By reference: the bytes stay in the suite (or the package), not in results.
        attachments: item
            .attachments
            .iter()
            .map(|a| assay_ir::Attachment {
                data: None,
                ..a.clone()
            })
            .collect(),
        stop: None,
        failed_turn: None,
        calls: None,
    }
}

/// Runs one item against one model: its record and how many calls it made.
async fn run_one(shared: &Shared, m: usize, item: &Item, seq: u64) -> (ResultRecord, u64) {
    let model = &shared.models[m];
    let mut record = new_record(item, &model.name);
    if let Some(recorded) = &item.response {
        // A recorded transcript: judged as it is, no call. A recorded conversation (its
        // assistant turns kept) gets a transcript, so each of its answers is judged.
        record.response = Some(recorded.clone());
        if item.messages.iter().any(|m| m.role == Role::Assistant) {
            recorded_transcript(&mut record, &model.name);
        }
        return (record, 0);
    }
    if shared.deadline.is_some_and(|d| Instant::now() >= d) {
        record.state = State::Skipped;
        record.error =
            Some("the run's time limit (--max-time) was reached before this item started".into());
        return (record, 0);
    }
    if let Some(why) = shared.spending.exhausted(&shared.options.budget) {
        record.state = State::Skipped;
        record.error = Some(why);
        return (record, 0);
    }
    // Attachments are read (and checked against their hashes) before any call.
    let media = if item.attachments.is_empty() {
        Vec::new()
    } else {
        let root = shared
            .options
            .attachments_root
            .clone()
            .unwrap_or_else(|| std::path::PathBuf::from("."));
        match crate::media::load(item, &root, shared.options.data_cache.as_deref()) {
            Ok(media) => media,
            Err(why) => {
                record.state = State::Error;
                record.error = Some(why);
                return (record, 0);
            }
        }
    };
    if crate::conversation::is_conversation(item, model) {
        let Some(conversations) = &shared.conversations else {
            record.state = State::Error;
            record.error = Some(
                "the item runs as a conversation, but the run was given no programs".to_string(),
            );
            return (record, 0);
        };
        return crate::conversation::run(shared, conversations, m, item, seq, record, media).await;
    }

    // Scripted turns: each user turn is sent with the replies so far.
    let (system, turns): (Vec<&Message>, Vec<&Message>) =
        item.messages.iter().partition(|m| m.role == Role::System);
    let system: Vec<Message> = system.into_iter().cloned().collect();
    let mut history: Vec<Message> = model.with_system(&system);
    let mut usage = Usage::default();
    let mut calls = 0u64;
    let mut all_cached = true;
    let started = Instant::now();
    let user_turns: Vec<&Message> = turns.into_iter().filter(|m| m.role == Role::User).collect();
    let mut last_reply = None;
    for (i, turn) in user_turns.iter().enumerate() {
        history.push((*turn).clone());
        match call(shared, m, &item.id, &history, "", &media).await {
            Ok((reply, cached, made)) => {
                all_cached &= cached;
                calls += made;
                if let Some(u) = reply.usage {
                    usage.prompt_tokens += u.prompt_tokens;
                    usage.completion_tokens += u.completion_tokens;
                }
                if let Some(reason) = &reply.filtered {
                    record.state = State::Filtered;
                    record.error = Some(format!(
                        "refused by the provider's content filter: {reason}"
                    ));
                    last_reply = None;
                    break;
                }
                if i + 1 < user_turns.len() {
                    history.push(Message {
                        role: Role::Assistant,
                        content: reply.text.clone(),
                    });
                }
                last_reply = Some(reply.text);
            }
            Err(failure) => {
                calls += failure.calls;
                all_cached = false;
                record.state = if failure.skipped {
                    State::Skipped
                } else {
                    State::Error
                };
                record.error = Some(failure.message);
                last_reply = None;
                break;
            }
        }
    }
    record.messages = history;
    record.response = last_reply;
    record.latency_ms = Some(started.elapsed().as_millis() as u64);
    record.cached = all_cached && calls == 0 && record.state != State::Error;
    if usage != Usage::default() {
        record.usage = Some(usage);
        record.cost = model.price.map(|(p, c)| {
            (usage.prompt_tokens as f64 * p + usage.completion_tokens as f64 * c) / 1_000_000.0
        });
    }
    (record, calls)
}

/// The transcript of a recorded conversation: its user turns as scripted, each assistant
/// turn and the final response as the target's answers, one round each.
fn recorded_transcript(record: &mut ResultRecord, model: &str) {
    let mut round = 0u32;
    let mut turns = Vec::new();
    let turn = |role, content: &str, by, round| assay_ir::TurnRecord {
        role,
        content: content.to_string(),
        by,
        model: (by == assay_ir::Author::Target).then(|| model.to_string()),
        turn: round,
        node: None,
        latency_ms: None,
        usage: None,
        cached: false,
        verdicts: Default::default(),
        dropped: None,
    };
    for m in record.messages.iter().filter(|m| m.role != Role::System) {
        if m.role == Role::Assistant {
            round += 1;
            turns.push(turn(
                Role::Assistant,
                &m.content,
                assay_ir::Author::Target,
                round,
            ));
        } else {
            turns.push(turn(
                Role::User,
                &m.content,
                assay_ir::Author::Script,
                round + 1,
            ));
        }
    }
    if let Some(response) = &record.response {
        round += 1;
        turns.push(turn(
            Role::Assistant,
            response,
            assay_ir::Author::Target,
            round,
        ));
        record.final_turn = Some(turns.len() - 1);
    }
    record.turns = turns;
}

/// The cache key of a call: provider identity, parameters and messages, and a salt that
/// keeps apart requests that are equal but must be asked each (two branches of an attack
/// tree); never a key.
fn cache_key(model: &ModelRun, messages: &[Message], salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(model.provider.identity().as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&model.params).expect("params serialise"));
    h.update([0]);
    h.update(serde_json::to_vec(messages).expect("messages serialise"));
    if !salt.is_empty() {
        h.update([0]);
        h.update(salt.as_bytes());
    }
    hex::encode(h.finalize())
}

/// Why a call gave no reply: the final error, or the run's time limit, which skips the item
/// rather than failing it; with the calls made.
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) calls: u64,
    pub(crate) skipped: bool,
}

impl Failure {
    fn error(message: String, calls: u64) -> Failure {
        Failure {
            message,
            calls,
            skipped: false,
        }
    }

    fn out_of_time(what: &str, calls: u64) -> Failure {
        Failure {
            message: format!("the run's time limit (--max-time) was reached {what}"),
            calls,
            skipped: true,
        }
    }
}

impl Shared {
    /// Holds one of model `m`'s places in flight, for a call made inside a task that holds
    /// another model's (a conversation calling its attacker, judges, guards or rewriter):
    /// their own `concurrency` holds there too.
    pub(crate) async fn permit(&self, m: usize) -> Option<tokio::sync::OwnedSemaphorePermit> {
        Arc::clone(&self.limits[m].permits)
            .acquire_owned()
            .await
            .ok()
    }

    /// Time left before the run's deadline; `None` without one.
    fn time_left(&self) -> Option<Duration> {
        self.deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether waiting `wait` would end past the deadline.
    fn waits_past_deadline(&self, wait: Duration) -> bool {
        self.time_left().is_some_and(|left| wait >= left)
    }
}

/// One call with cache, limits and retries: the reply, whether it came from the cache and
/// the calls made (retries included), or why there is none. Every wait (a 429 pause, the
/// rate limiters, a backoff, the request itself) ends at the run's deadline.
pub(crate) async fn call(
    shared: &Shared,
    m: usize,
    item_id: &str,
    messages: &[Message],
    salt: &str,
    media: &[crate::provider::Media],
) -> Result<(Reply, bool, u64), Failure> {
    let model = &shared.models[m];
    let limits = &shared.limits[m];
    let use_cache = shared.options.use_cache && !model.provider.is_local_mock();
    // The media are part of what is asked: their hashes key the cache with the text.
    let salted;
    let salt = if media.is_empty() {
        salt
    } else {
        salted = format!(
            "{salt}\0media:{}",
            media
                .iter()
                .map(|x| x.sha256.as_str())
                .collect::<Vec<_>>()
                .join(",")
        );
        &salted
    };
    let key = use_cache.then(|| cache_key(model, messages, salt));
    if let Some(key) = &key
        && let Some(json) = shared.store.cached(key)
        && let Ok(reply) = serde_json::from_str::<Reply>(&json)
    {
        return Ok((reply, true, 0));
    }
    let mut attempt = 0u32;
    let mut calls = 0u64;
    // Replicas switched to after a refused connection, in this call.
    let mut switches = 0usize;
    let deadline = shared.deadline.map(tokio::time::Instant::from_std);
    loop {
        if let Some(why) = limits.given_up() {
            return Err(Failure::error(why, calls));
        }
        // A 429 pauses the whole model until the server's time.
        let paused = *limits.paused_until.lock().await;
        if let Some(until) = paused {
            let wait = until.saturating_duration_since(Instant::now());
            if shared.waits_past_deadline(wait) {
                return Err(Failure::out_of_time(
                    &format!(
                        "while the model was paused for {:.0} s by a rate limit",
                        wait.as_secs_f64()
                    ),
                    calls,
                ));
            }
            shared.waits.waiting(wait);
            tokio::time::sleep_until(until.into()).await;
        }
        if let Some(r) = &limits.requests
            && !before(deadline, r.until_ready()).await
        {
            return Err(Failure::out_of_time(
                "waiting for the request rate limit",
                calls,
            ));
        }
        if let Some(t) = &limits.tokens {
            let estimate: usize = messages.iter().map(|m| m.content.len() / 4 + 4).sum();
            let n = NonZeroU32::new(estimate.clamp(1, u32::MAX as usize) as u32).expect("non-zero");
            // More tokens than a minute allows: wait a minute's worth instead of forever.
            let ready = before(deadline, async {
                if t.until_n_ready(n).await.is_err() {
                    tokio::time::sleep(Duration::from_secs(60)).await;
                }
            })
            .await;
            if !ready {
                return Err(Failure::out_of_time(
                    "waiting for the token rate limit",
                    calls,
                ));
            }
        }
        // The request may last its timeout, or what is left of the run.
        let timeout = match shared.time_left() {
            Some(left) if left.is_zero() => {
                return Err(Failure::out_of_time("before the call was sent", calls));
            }
            Some(left) => model.timeout(&shared.options).min(left),
            None => model.timeout(&shared.options),
        };
        if let Some(why) = shared.spending.exhausted(&shared.options.budget) {
            return Err(Failure {
                message: why,
                calls,
                skipped: true,
            });
        }
        calls += 1;
        shared.spending.calls.fetch_add(1, Ordering::SeqCst);
        let (provider, replica) = if model.replicas.is_empty() {
            (&model.provider, None)
        } else {
            let i = limits.pick_replica();
            limits.replicas[i]
                .outstanding
                .fetch_add(1, Ordering::SeqCst);
            (&model.replicas[i], Some(i))
        };
        let in_flight = replica.map(|i| InFlight(&limits.replicas[i]));
        let result = provider
            .call(
                item_id,
                messages,
                &model.params,
                CallLimits {
                    timeout,
                    max_response_bytes: shared.options.max_response_bytes,
                },
                media,
            )
            .await;
        drop(in_flight);
        if let Some(i) = replica {
            let r = &limits.replicas[i];
            match &result {
                Ok(_) => r.failures.store(0, Ordering::SeqCst),
                Err(CallError::Unreachable(_)) => r.take_out(),
                Err(CallError::Retryable {
                    rate_limited: false,
                    ..
                }) => {
                    if r.failures.fetch_add(1, Ordering::SeqCst) + 1 >= REPLICA_FAILURES {
                        r.take_out();
                    }
                }
                Err(_) => {}
            }
            // A replica that refused the connection: another live one is asked at once,
            // and the refusal costs no retry.
            if matches!(result, Err(CallError::Unreachable(_)))
                && switches < model.replicas.len()
                && limits.another_live(i)
            {
                switches += 1;
                continue;
            }
        }
        if result.is_err() && shared.time_left().is_some_and(|left| left.is_zero()) {
            return Err(Failure::out_of_time("during the call", calls));
        }
        let result = match result {
            Err(CallError::Unreachable(message)) => {
                limits.refused.fetch_add(1, Ordering::SeqCst);
                if let Ok(mut last) = limits.last_refusal.lock() {
                    last.clone_from(&message);
                }
                Err(CallError::Retryable {
                    message,
                    retry_after: None,
                    rate_limited: false,
                })
            }
            other => other,
        };
        match result {
            Ok(reply) => {
                limits.answered.store(true, Ordering::SeqCst);
                if let (Some((p, c)), Some(u)) = (model.price, reply.usage) {
                    let dollars =
                        (u.prompt_tokens as f64 * p + u.completion_tokens as f64 * c) / 1_000_000.0;
                    shared
                        .spending
                        .micro_dollars
                        .fetch_add((dollars * 1e6).round() as u64, Ordering::SeqCst);
                }
                if let Some(key) = key
                    && let Ok(json) = serde_json::to_string(&reply)
                    && let Ok(writer) = shared.writer.lock()
                {
                    let _ = writer.send(Write::Cache { key, reply: json });
                }
                return Ok((reply, false, calls));
            }
            Err(CallError::Fatal(message) | CallError::Unreachable(message)) => {
                return Err(Failure::error(message, calls));
            }
            Err(CallError::Retryable {
                message,
                retry_after,
                rate_limited,
            }) => {
                if attempt >= model.retries(&shared.options) {
                    return Err(Failure::error(
                        format!("{message} (gave up after {} attempts)", attempt + 1),
                        calls,
                    ));
                }
                let wait = retry_after.unwrap_or_else(|| backoff(shared.options.backoff, attempt));
                if shared.waits_past_deadline(wait) {
                    return Err(Failure::out_of_time(
                        &format!(
                            "before a retry due in {:.0} s ({message})",
                            wait.as_secs_f64()
                        ),
                        calls,
                    ));
                }
                if rate_limited {
                    let until = Instant::now() + wait;
                    let mut paused = limits.paused_until.lock().await;
                    if paused.is_none_or(|p| p < until) {
                        *paused = Some(until);
                    }
                }
                attempt += 1;
                shared.waits.waiting(wait);
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// Awaits `wait`, or gives up at `deadline`: whether it finished.
async fn before(deadline: Option<tokio::time::Instant>, wait: impl std::future::Future) -> bool {
    match deadline {
        Some(d) => tokio::time::timeout_at(d, wait).await.is_ok(),
        None => {
            wait.await;
            true
        }
    }
}

/// Exponential backoff with ±50% jitter, capped at 60 s.
fn backoff(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16))
        .min(Duration::from_secs(60));
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
        .subsec_nanos();
    // A cheap uniform draw in [0.5, 1.5) from the clock's low bits.
    let jitter = 0.5 + f64::from(nanos.wrapping_mul(2_654_435_761) >> 8) / f64::from(1u32 << 24);
    exp.mul_f64(jitter)
}

#[cfg(test)]
mod tests {
    use super::backoff;
    use std::time::Duration;

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(100);
        for attempt in 0..20 {
            let d = backoff(base, attempt);
            let exp = base
                .saturating_mul(1 << attempt.min(16))
                .min(Duration::from_secs(60));
            assert!(
                d >= exp.mul_f64(0.5) && d < exp.mul_f64(1.5),
                "{attempt}: {d:?}"
            );
        }
    }
}
