//! The program interpreter: one item's conversation against one target, under its program
//! and its defenses.
//!
//! A conversation is a sequence of calls in an order the program fixes: scripted user turns
//! the target answers, then attack rounds in which the attacker writes each user turn from a
//! template over the history, an optional judge prunes it, the target answers through its
//! defenses (rewrite, input guard, system prompt, output guard), the program's judges judge
//! the answer, a refused answer may be backtracked, and the stop conditions are tested. With
//! several streams or a branching factor the rounds grow a tree, level by level, kept to the
//! best `width` leaves by the feedback judge's score.
//!
//! Every call is numbered in that order and journalled as a step when it is answered
//! ([`crate::store::Write::Step`]). A conversation killed half way replays its steps and goes
//! on from the first one missing, so it ends with the transcript an uninterrupted run would
//! have made, whatever the models and the cache. Any failure of the attacker, the target, a
//! guard or an in-loop judge ends the item in `error` with the round it failed at: never a
//! verdict.

use crate::engine::{Failure, ModelRun, Shared, call};
use crate::provider::Reply;
use assay_ir::{
    AttackParser, AttackerSpec, Author, Context, DefenseSpec, Item, JudgeKind, JudgeOutcome,
    Message, ProgramSpec, ResultRecord, Role, Scoring, State, TurnRecord, TurnText, Usage,
};
use assay_judge::{Judges, Step};
use handlebars::Handlebars;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::time::Instant;

/// What conversations need beyond the run's targets: the programs, every judge of the suite
/// (loop judges, guards and their ensemble members), and where each judge's model and each
/// attacker or rewriter sits among the engine's models.
pub struct Conversations {
    pub programs: BTreeMap<String, ProgramSpec>,
    judges: Judges,
    /// Judge → index of its model in the engine's models.
    judge_model: BTreeMap<String, usize>,
    /// Attacker or rewriter key (see [`helper_key`]) → index in the engine's models.
    helper: BTreeMap<String, usize>,
    templates: Handlebars<'static>,
}

/// The key of a helper model: its target's name, and the attacker's temperature when it sets
/// one (the same target may attack at two temperatures).
fn helper_key(name: &str, temperature: Option<f64>) -> String {
    match temperature {
        Some(t) => format!("{name}@temperature={t}"),
        None => name.to_string(),
    }
}

impl Conversations {
    /// The conversations of a run whose targets take the first `first` model indices: the
    /// helper models to append after them (judges' models, attackers, rewriters), and the
    /// context the engine passes every conversation.
    pub fn prepare(
        programs: BTreeMap<String, assay_ir::ProgramSpec>,
        scoring: &Scoring,
        judge_models: &BTreeMap<String, ModelRun>,
        item_defenses: &[DefenseSpec],
        targets: &[ModelRun],
    ) -> Result<(Conversations, Vec<ModelRun>), String> {
        let first = targets.len();
        let mut helpers: Vec<ModelRun> = Vec::new();
        let mut index: BTreeMap<String, usize> = BTreeMap::new();
        let mut add = |key: String, run: ModelRun, helpers: &mut Vec<ModelRun>| -> usize {
            *index.entry(key).or_insert_with(|| {
                helpers.push(run);
                first + helpers.len() - 1
            })
        };
        // Judges' models as judging calls them (`--judge-model` included).
        let mut judge_model = BTreeMap::new();
        for (judge, run) in judge_models {
            let key = format!("judge:{}:{}", run.name, run.provider.identity());
            judge_model.insert(judge.clone(), add(key, run.clone(), &mut helpers));
        }
        let mut helper = BTreeMap::new();
        let mut templates = Handlebars::new();
        templates.register_escape_fn(handlebars::no_escape);
        for program in programs.values() {
            for turn in &program.turns {
                if let TurnText::Text(text) = &turn.content {
                    register(&mut templates, text)?;
                }
            }
            if let Some(a) = &program.attacker {
                let key = helper_key(&a.model, a.temperature);
                let mut run = crate::judging::model_for(&a.model, &a.target)?;
                if let Some(t) = a.temperature {
                    run.params.insert("temperature".into(), json!(t));
                }
                helper.insert(key.clone(), add(key, run, &mut helpers));
                register(&mut templates, &a.prompt)?;
                if let Some(system) = &a.system {
                    register(&mut templates, system)?;
                }
            }
        }
        let defenses = targets
            .iter()
            .filter_map(|t| t.defense.as_ref())
            .chain(item_defenses);
        for d in defenses {
            if let Some(r) = &d.rewrite {
                let run = crate::judging::model_for(&r.model, &r.target)?;
                helper.insert(r.model.clone(), add(r.model.clone(), run, &mut helpers));
                register(&mut templates, &r.prompt)?;
            }
        }
        Ok((
            Conversations {
                programs,
                judges: Judges::new(&scoring.judges),
                judge_model,
                helper,
                templates,
            },
            helpers,
        ))
    }

    fn render(&self, template: &str, data: &Value) -> Result<String, String> {
        self.templates
            .render(&template_name(template), data)
            .map_err(|e| format!("the template does not render: {e}"))
    }
}

/// Templates are registered under a hash of their text.
fn template_name(text: &str) -> String {
    hex::encode(&Sha256::digest(text.as_bytes())[..8])
}

fn register(templates: &mut Handlebars<'static>, text: &str) -> Result<(), String> {
    let name = template_name(text);
    if templates.has_template(&name) {
        return Ok(());
    }
    templates
        .register_template_string(&name, text)
        .map_err(|e| format!("a program's template does not compile: {e}"))
}

/// Whether an item runs as a conversation: it names a program, carries a defense, or its
/// target is defended.
pub fn is_conversation(item: &Item, model: &ModelRun) -> bool {
    item.program.is_some() || item.defense.is_some() || model.defense.is_some()
}

/// How one conversation ended, before it becomes a record.
enum End {
    /// A stop condition held, or the budget ran out: the reason.
    Done(String),
    /// A guard blocked, or the provider's filter refused: the reason.
    Filtered(String),
    /// A call failed: the reason and whether it was the run's time limit.
    Failed { message: String, skipped: bool },
}

/// One branch of an attack (the whole conversation when there is no tree).
#[derive(Clone)]
struct Node {
    /// `"1"`, `"1.2"`; `None` for a plain conversation.
    id: Option<String>,
    /// What the target sees (with `context = conversation`), system messages first.
    history: Vec<Message>,
    /// Each target turn of the branch: what the attacker's template sees.
    log: Vec<Value>,
    /// Turns taken back from the target's history.
    backtracked: Vec<Value>,
    backtracks: u32,
    /// Target turns so far.
    depth: u32,
    /// The feedback judge's score (or label rank) of the branch's last turn.
    score: f64,
    /// The branch's last target answer, and its index in the transcript.
    response: Option<String>,
    last_turn: Option<usize>,
}

/// A conversation under way.
struct Conv<'a> {
    shared: &'a Shared,
    conv: &'a Conversations,
    /// The target's index.
    m: usize,
    item: &'a Item,
    seq: u64,
    defense: DefenseSpec,
    /// Journalled steps: step → (request hash, reply).
    journal: BTreeMap<u32, (String, String)>,
    next_step: u32,
    /// Calls asked (journal and cache hits included), and sent.
    asked: u64,
    sent: u64,
    all_cached: bool,
    turns: Vec<TurnRecord>,
    usage: Usage,
    /// The round under way, for errors.
    round: u32,
    /// Why the last blocked turn was blocked: a tree goes on without the branch, and an
    /// item none of whose turns got through ends `filtered` with it.
    blocked: Option<String>,
    /// The item's attachments, sent to the target with the first user turn of each call.
    media: Vec<crate::provider::Media>,
}

/// One answered call.
struct Answer {
    reply: Reply,
    cached: bool,
    latency_ms: u64,
}

/// What the target's side of a turn gave.
enum TargetTurn {
    Answer { text: String },
    Blocked(String),
}

/// Runs one item's conversation against target `m`: its record and the calls sent.
pub(crate) async fn run(
    shared: &Shared,
    conv: &Conversations,
    m: usize,
    item: &Item,
    seq: u64,
    mut record: ResultRecord,
    media: Vec<crate::provider::Media>,
) -> (ResultRecord, u64) {
    let model = &shared.models[m];
    let mut defense = model.defense.clone().unwrap_or_default();
    if let Some(d) = &item.defense {
        // An item's defense (a `defense` axis) adds to the target's own.
        defense.system = match (defense.system.take(), &d.system) {
            (Some(a), Some(b)) => Some(format!("{a}\n\n{b}")),
            (a, b) => a.or_else(|| b.clone()),
        };
        defense.input_guard = d.input_guard.clone().or(defense.input_guard);
        defense.output_guard = d.output_guard.clone().or(defense.output_guard);
        defense.rewrite = d.rewrite.clone().or(defense.rewrite);
    }
    let journal = shared
        .store
        .steps(&shared.run_key, seq, m)
        .unwrap_or_default();
    let mut c = Conv {
        shared,
        conv,
        m,
        item,
        seq,
        defense,
        journal,
        next_step: 0,
        asked: 0,
        sent: 0,
        all_cached: true,
        turns: Vec::new(),
        usage: Usage::default(),
        round: 0,
        blocked: None,
        media,
    };
    let started = Instant::now();
    let program = item.program.as_ref().and_then(|p| conv.programs.get(p));
    let outcome = match (&item.program, program) {
        (Some(name), None) => Err(End::Failed {
            message: format!("the compiled suite has no program `{name}`"),
            skipped: false,
        }),
        (_, program) => c.converse(program).await,
    };
    record.latency_ms = Some(started.elapsed().as_millis() as u64);
    // A conversation in which the target never answered (every attack prompt pruned or
    // blocked) has nothing to judge: filtered when a guard blocked, else skipped.
    let outcome = match outcome {
        Ok((node, End::Done(reason))) if node.response.is_none() => match c.blocked.take() {
            Some(why) => Err(End::Filtered(why)),
            None => Err(End::Failed {
                message: format!("the target was never asked: {reason}"),
                skipped: true,
            }),
        },
        other => other,
    };
    match outcome {
        Ok((final_node, end)) => {
            let mut history = final_node.history;
            if history.last().is_some_and(|m| m.role == Role::Assistant) {
                history.pop();
            }
            record.messages = c.as_sent(&history);
            record.response = final_node.response;
            record.final_turn = final_node.last_turn;
            match end {
                End::Done(reason) => record.stop = Some(reason),
                End::Filtered(reason) => {
                    record.state = State::Filtered;
                    record.error = Some(reason);
                    record.response = None;
                }
                // A conversation reports failures as `Err`; one here is an error all the same.
                End::Failed { message, skipped } => {
                    record.state = if skipped {
                        State::Skipped
                    } else {
                        State::Error
                    };
                    record.error = Some(message);
                    record.response = None;
                }
            }
        }
        Err(End::Failed { message, skipped }) => {
            record.state = if skipped {
                State::Skipped
            } else {
                State::Error
            };
            record.error = Some(message);
            record.failed_turn = Some(c.round.max(1));
            record.response = None;
        }
        Err(End::Filtered(reason)) => {
            record.state = State::Filtered;
            record.error = Some(reason);
            record.response = None;
        }
        Err(End::Done(reason)) => record.stop = Some(reason),
    }
    record.turns = std::mem::take(&mut c.turns);
    record.calls = Some(c.asked);
    record.cached = c.all_cached && c.sent == 0 && record.state != State::Error;
    if c.usage != Usage::default() {
        let usage = c.usage;
        record.usage = Some(usage);
        record.cost = model.price.map(|(p, q)| {
            (usage.prompt_tokens as f64 * p + usage.completion_tokens as f64 * q) / 1_000_000.0
        });
    }
    (record, c.sent)
}

impl Conv<'_> {
    /// One call, numbered: replayed from the journal when it holds this step for the same
    /// request, else sent through the engine (cache, limits, retries) and journalled.
    async fn ask(&mut self, model: usize, messages: &[Message], salt: &str) -> Result<Answer, End> {
        let media = model == self.m;
        self.ask_with(model, messages, salt, media).await
    }

    /// [`Self::ask`], sending the item's attachments with the last user turn when `media`
    /// (the target always; a judge that sees them).
    async fn ask_with(
        &mut self,
        model: usize,
        messages: &[Message],
        salt: &str,
        media: bool,
    ) -> Result<Answer, End> {
        let step = self.next_step;
        self.next_step += 1;
        self.asked += 1;
        let run = &self.shared.models[model];
        let request = request_hash(run, messages, salt);
        if let Some((hash, json)) = self.journal.get(&step)
            && *hash == request
            && let Ok(reply) = serde_json::from_str::<Reply>(json)
        {
            return Ok(Answer {
                reply,
                cached: true,
                latency_ms: 0,
            });
        }
        let started = Instant::now();
        let id = if salt.is_empty() {
            self.item.id.clone()
        } else {
            format!("{}#{salt}", self.item.id)
        };
        // The target's place is held by the conversation's task; a helper model's is taken
        // for this call only (never the target's again, which would wait on itself).
        let permit = if model == self.m {
            None
        } else {
            self.shared.permit(model).await
        };
        // The target sees the item's attachments, and a judge declared to see them.
        let media: &[crate::provider::Media] = if media { &self.media } else { &[] };
        let result = call(self.shared, model, &id, messages, salt, media).await;
        drop(permit);
        match result {
            Ok((reply, cached, made)) => {
                self.sent += made;
                self.all_cached &= cached;
                if let Ok(json) = serde_json::to_string(&reply)
                    && let Ok(writer) = self.shared.writer.lock()
                {
                    let _ = writer.send(crate::store::Write::Step {
                        run_key: self.shared.run_key.clone(),
                        seq: self.seq,
                        model: self.m,
                        step,
                        request,
                        reply: json,
                    });
                }
                Ok(Answer {
                    reply,
                    cached,
                    latency_ms: started.elapsed().as_millis() as u64,
                })
            }
            Err(Failure {
                message,
                calls,
                skipped,
            }) => {
                self.sent += calls;
                self.all_cached = false;
                Err(End::Failed { message, skipped })
            }
        }
    }

    fn fail<T>(&self, who: &str, why: impl std::fmt::Display) -> Result<T, End> {
        Err(End::Failed {
            message: format!("{who} failed at turn {}: {why}", self.round.max(1)),
            skipped: false,
        })
    }

    /// Prefixes a failure's message with who failed and when.
    fn blame(&self, who: &str, end: End) -> End {
        match end {
            End::Failed { message, skipped } => End::Failed {
                message: format!("{who} failed at turn {}: {message}", self.round.max(1)),
                skipped,
            },
            other => other,
        }
    }

    /// The whole conversation: the node it ended on, and how.
    async fn converse(&mut self, program: Option<&ProgramSpec>) -> Result<(Node, End), End> {
        let system: Vec<Message> = self
            .item
            .messages
            .iter()
            .filter(|m| m.role == Role::System)
            .cloned()
            .collect();
        let mut node = Node {
            id: None,
            history: system,
            log: Vec::new(),
            backtracked: Vec::new(),
            backtracks: 0,
            depth: 0,
            score: f64::NEG_INFINITY,
            response: None,
            last_turn: None,
        };
        let item_turns: Vec<String> = self
            .item
            .messages
            .iter()
            .filter(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .collect();
        let default_script = [assay_ir::ScriptTurn {
            role: Role::User,
            content: TurnText::ItemTurns,
        }];
        let script = program.map_or(&default_script[..], |p| &p.turns[..]);
        let budget = program.and_then(|p| p.max_turns).unwrap_or(u32::MAX);
        let loop_judges: &[String] = program.map_or(&[], |p| &p.judges[..]);
        // Scripted turns. A user turn followed by an assistant turn is a prefilled exchange:
        // the assistant turn is its answer, with no call. Every other user turn is sent.
        let data = self.item_data();
        for (i, turn) in script.iter().enumerate() {
            let texts: Vec<String> = match &turn.content {
                TurnText::Text(t) => match self.conv.render(t, &data) {
                    Ok(text) => vec![text],
                    Err(e) => return self.fail("a scripted turn", e),
                },
                TurnText::ItemPrompt => item_turns.first().cloned().into_iter().collect(),
                TurnText::ItemTurns => item_turns.clone(),
            };
            let prefilled = script
                .get(i + 1)
                .is_some_and(|next| next.role == Role::Assistant);
            let count = texts.len();
            for (k, text) in texts.into_iter().enumerate() {
                if turn.role == Role::Assistant {
                    node.history.push(Message {
                        role: Role::Assistant,
                        content: text.clone(),
                    });
                    self.record(Role::Assistant, text, Author::Script, None, &node, None);
                    continue;
                }
                if prefilled && k + 1 == count {
                    node.history.push(Message {
                        role: Role::User,
                        content: text.clone(),
                    });
                    self.record(Role::User, text, Author::Script, None, &node, None);
                    continue;
                }
                if node.depth >= budget {
                    return Ok((
                        node,
                        End::Done(format!("turn budget reached ({budget} target turns)")),
                    ));
                }
                self.round = node.depth + 1;
                self.record(Role::User, text.clone(), Author::Script, None, &node, None);
                match self
                    .target_turn(&mut node, text, Context::Conversation)
                    .await?
                {
                    TargetTurn::Blocked(why) => return Ok((node, End::Filtered(why))),
                    TargetTurn::Answer { .. } => {}
                }
                let verdicts = self.judge_turn(loop_judges, &node).await?;
                if let Some(reason) = self.stopped(program, &node, &verdicts) {
                    return Ok((node, End::Done(reason)));
                }
            }
        }
        let Some(program) = program else {
            return Ok((node, End::Done("the script ended".into())));
        };
        let Some(attacker) = &program.attacker else {
            return Ok((node, End::Done("the script ended".into())));
        };
        self.attack(program, attacker, node, budget).await
    }

    /// The attacker's rounds: a chain, streams, or a pruned tree.
    async fn attack(
        &mut self,
        program: &ProgramSpec,
        a: &AttackerSpec,
        root: Node,
        budget: u32,
    ) -> Result<(Node, End), End> {
        let tree = a.streams > 1 || a.branching > 1;
        let mut leaves: Vec<Node> = (1..=a.streams)
            .map(|s| Node {
                id: (a.streams > 1).then(|| s.to_string()),
                ..root.clone()
            })
            .collect();
        let mut best: Option<Node> = None;
        let mut level = 0u32;
        loop {
            if leaves.is_empty() {
                let node = best.unwrap_or(root);
                return Ok((node, End::Done("every branch was pruned or blocked".into())));
            }
            if leaves[0].depth >= budget || level >= a.max_turns {
                let node = best_of(&leaves).unwrap_or(root);
                return Ok((
                    node,
                    End::Done(format!(
                        "turn budget reached ({} target turns)",
                        node_depth(&leaves)
                    )),
                ));
            }
            level += 1;
            let mut children = Vec::new();
            for leaf in &leaves {
                for b in 1..=a.branching {
                    let mut child = leaf.clone();
                    // A stream keeps its number; a tree numbers each child under its parent.
                    if a.branching > 1 {
                        child.id = Some(match &leaf.id {
                            Some(id) => format!("{id}.{b}"),
                            None => b.to_string(),
                        });
                    }
                    match self.grow(program, a, child, b).await? {
                        Grown::Stopped(node, reason) => return Ok((node, End::Done(reason))),
                        Grown::Filtered(node, why) if !tree => {
                            return Ok((node, End::Filtered(why)));
                        }
                        Grown::Filtered(_, why) => self.blocked = Some(why),
                        Grown::Pruned => {}
                        Grown::Kept(node) => children.push(node),
                    }
                }
            }
            // Best first, ties in the order the children were made.
            children.sort_by(|x, y| y.score.total_cmp(&x.score));
            if a.width > 0 && children.len() > a.width as usize {
                // The leaves cut by the width leave the conversation with this level's turns.
                for cut in children.split_off(a.width as usize) {
                    for t in &mut self.turns {
                        if t.node == cut.id && t.turn == cut.depth && t.dropped.is_none() {
                            t.dropped = Some("pruned: width".into());
                        }
                    }
                }
            }
            if let Some(first) = children.first() {
                best = Some(first.clone());
            }
            leaves = children;
        }
    }

    /// One attack turn on a branch: the attacker's prompt, pruning, the target's answer (with
    /// backtracking), the judges and the stop conditions.
    async fn grow(
        &mut self,
        program: &ProgramSpec,
        a: &AttackerSpec,
        mut node: Node,
        branch: u32,
    ) -> Result<Grown, End> {
        loop {
            self.round = node.depth + 1;
            let first_turn = self.turns.len();
            let prompt = self.attacker_prompt(a, &node, branch).await?;
            self.record(
                Role::User,
                prompt.0.clone(),
                Author::Attacker,
                Some(&a.model),
                &node,
                Some(prompt.1),
            );
            if let Some(prune) = &a.prune {
                let goal = self.goal();
                let record = self.judge_record(
                    vec![Message {
                        role: Role::User,
                        content: goal,
                    }],
                    prompt.0.clone(),
                );
                let outcome = self.judge_one(prune, &record).await?;
                let flagged = self.flagged(prune, &outcome);
                let last = self.turns.len() - 1;
                self.turns[last].verdicts.insert(prune.clone(), outcome);
                if flagged {
                    self.turns[last].dropped = Some("pruned".into());
                    return Ok(Grown::Pruned);
                }
            }
            let before = node.clone();
            let text = match self
                .target_turn(&mut node, prompt.0.clone(), a.context)
                .await?
            {
                TargetTurn::Blocked(why) => return Ok(Grown::Filtered(node, why)),
                TargetTurn::Answer { text } => text,
            };
            let verdicts = self.judge_turn(&program.judges, &node).await?;
            if let Some(judge) = &a.backtrack
                && node.backtracks < a.max_backtracks
                && verdicts.get(judge).is_some_and(|o| self.flagged(judge, o))
            {
                // Taken back: the target never saw it; the attacker is told and tries again.
                for t in &mut self.turns[first_turn..] {
                    t.dropped = Some("backtracked".into());
                }
                let backtracks = node.backtracks + 1;
                let mut backtracked = before.backtracked.clone();
                backtracked.push(json!({ "prompt": prompt.0, "response": text }));
                node = Node {
                    backtracks,
                    backtracked,
                    ..before
                };
                continue;
            }
            let feedback = a
                .feedback
                .as_ref()
                .and_then(|f| verdicts.get(f).map(|o| (f, o)));
            node.score = match feedback {
                Some((judge, o)) => o.score.unwrap_or_else(|| self.label_rank(judge, o)),
                None => f64::NEG_INFINITY,
            };
            node.log.push(json!({
                "turn": node.depth,
                "prompt": prompt.0,
                "response": text,
                "verdict": feedback.and_then(|(_, o)| o.label.clone()),
                "score": feedback.and_then(|(_, o)| o.score).map(score_value),
            }));
            if let Some(reason) = self.stopped(Some(program), &node, &verdicts) {
                return Ok(Grown::Stopped(node, reason));
            }
            return Ok(Grown::Kept(node));
        }
    }

    /// The item as templates see it: `prompt` (its first user turn), its labels and metadata.
    fn item_data(&self) -> Value {
        let item = &self.item;
        json!({
            "prompt": self.goal(),
            "hazard": item.labels.hazard,
            "sub_hazard": item.labels.sub_hazard,
            "persona": item.labels.persona,
            "locale": item.labels.locale,
            "expect": item.expect.as_str(),
            "axes": item.labels.axes,
            "metadata": item.metadata,
        })
    }

    /// Asks the attacker for the next user turn: the prompt and the call's latency.
    async fn attacker_prompt(
        &mut self,
        a: &AttackerSpec,
        node: &Node,
        branch: u32,
    ) -> Result<(String, u64), End> {
        let data = json!({
            "goal": self.goal(),
            "item": self.item_data(),
            "history": node.log,
            "last": node.log.last(),
            "turn": node.depth + 1,
            "max_turns": a.max_turns,
            // A node's id starts with its stream only when there are several; a tree of one
            // stream numbers its nodes from the root's children.
            "stream": match node.id.as_deref() {
                Some(id) if a.streams > 1 => id.split('.').next().unwrap_or("1"),
                _ => "1",
            },
            "branch": node.id.as_deref().unwrap_or("1"),
            "backtracked": node.backtracked,
        });
        let mut messages = Vec::new();
        if let Some(system) = &a.system {
            match self.conv.render(system, &data) {
                Ok(text) => messages.push(Message {
                    role: Role::System,
                    content: text,
                }),
                Err(e) => return self.fail("the attacker's system prompt", e),
            }
        }
        match self.conv.render(&a.prompt, &data) {
            Ok(text) => messages.push(Message {
                role: Role::User,
                content: text,
            }),
            Err(e) => return self.fail("the attacker's prompt", e),
        }
        let Some(&model) = self.conv.helper.get(&helper_key(&a.model, a.temperature)) else {
            return self.fail(
                "the attacker",
                format!("`{}` was not prepared for this run", a.model),
            );
        };
        // The node and branch keep two branches' identical requests apart in the cache.
        let salt = format!(
            "attack:{}:{}:{}",
            node.id.as_deref().unwrap_or(""),
            branch,
            node.backtracks
        );
        let answer = match self.ask(model, &messages, &salt).await {
            Ok(a) => a,
            Err(end) => return Err(self.blame("the attacker", end)),
        };
        if let Some(reason) = &answer.reply.filtered {
            return self.fail(
                "the attacker",
                format!("its provider's content filter refused: {reason}"),
            );
        }
        match parse_attack(&a.parser, &answer.reply.text) {
            Ok(prompt) => Ok((prompt, answer.latency_ms)),
            Err(why) => self.fail("the attacker", why),
        }
    }

    /// The target's answer to `text`, through the defense: a rewrite, the input guard, the
    /// defense's system prompt, the output guard. Pushes the user turn (as the target saw
    /// it) and the answer onto the node's history and the transcript.
    async fn target_turn(
        &mut self,
        node: &mut Node,
        mut text: String,
        context: Context,
    ) -> Result<TargetTurn, End> {
        if let Some(r) = self.defense.rewrite.clone() {
            let messages = [Message {
                role: Role::User,
                content: match self.conv.render(&r.prompt, &json!({ "prompt": text })) {
                    Ok(t) => t,
                    Err(e) => return self.fail("the rewrite", e),
                },
            }];
            let Some(&model) = self.conv.helper.get(&r.model) else {
                return self.fail(
                    "the rewrite",
                    format!("`{}` was not prepared for this run", r.model),
                );
            };
            let answer = match self.ask(model, &messages, "rewrite").await {
                Ok(a) => a,
                Err(end) => return Err(self.blame(&format!("the rewrite by `{}`", r.model), end)),
            };
            if let Some(reason) = &answer.reply.filtered {
                return self.fail("the rewrite", format!("content filter: {reason}"));
            }
            text = answer.reply.text.trim().to_string();
            self.record(
                Role::User,
                text.clone(),
                Author::Rewrite,
                Some(&r.model),
                node,
                Some(answer.latency_ms),
            );
        }
        let mut sent = match context {
            Context::Conversation => node.history.clone(),
            Context::Single => node
                .history
                .iter()
                .filter(|m| m.role == Role::System)
                .cloned()
                .collect(),
        };
        sent.push(Message {
            role: Role::User,
            content: text.clone(),
        });
        if let Some(guard) = self.defense.input_guard.clone() {
            let record = self.judge_record(sent[..sent.len() - 1].to_vec(), text.clone());
            let mut record = record;
            record.messages.push(Message {
                role: Role::User,
                content: text.clone(),
            });
            let outcome = self
                .judge_one(&guard, &record)
                .await
                .map_err(|e| as_role(e, "input guard"))?;
            let flagged = self.flagged(&guard, &outcome);
            let label = outcome.label.clone().unwrap_or_default();
            // The guard's verdict stays on the user turn it screened, passed or not.
            let last = self.turns.len() - 1;
            self.turns[last].verdicts.insert(guard.clone(), outcome);
            if flagged {
                self.turns[last].dropped = Some("blocked".into());
                // The record shows the conversation up to the turn that was blocked.
                node.history = sent;
                node.response = None;
                return Ok(TargetTurn::Blocked(format!(
                    "blocked by the input guard `{guard}` ({label}) at turn {}",
                    self.round.max(1)
                )));
            }
        }
        let model = self.m;
        let target = self.as_sent(&sent);
        let answer = match self.ask(model, &target, "").await {
            Ok(a) => a,
            Err(end) => return Err(self.blame("the target", end)),
        };
        if let Some(u) = answer.reply.usage {
            self.usage.prompt_tokens += u.prompt_tokens;
            self.usage.completion_tokens += u.completion_tokens;
        }
        if let Some(reason) = &answer.reply.filtered {
            // The user turn the provider refused, as a guard's block is marked.
            if let Some(user) = self.turns.iter_mut().rev().find(|t| t.role == Role::User) {
                user.dropped = Some("filtered".into());
            }
            node.history = sent;
            node.response = None;
            return Ok(TargetTurn::Blocked(format!(
                "refused by the provider's content filter: {reason}"
            )));
        }
        let reply = answer.reply.text.clone();
        node.depth += 1;
        node.response = Some(reply.clone());
        let name = self.shared.models[model].name.clone();
        self.record(
            Role::Assistant,
            reply.clone(),
            Author::Target,
            Some(&name),
            node,
            Some(answer.latency_ms),
        );
        let last = self.turns.len() - 1;
        node.last_turn = Some(last);
        self.turns[last].usage = answer.reply.usage;
        self.turns[last].cached = answer.cached;
        if let Some(guard) = self.defense.output_guard.clone() {
            let record = self.judge_record(sent.clone(), reply.clone());
            let outcome = self
                .judge_one(&guard, &record)
                .await
                .map_err(|e| as_role(e, "output guard"))?;
            let flagged = self.flagged(&guard, &outcome);
            let label = outcome.label.clone().unwrap_or_default();
            self.turns[last].verdicts.insert(guard.clone(), outcome);
            if flagged {
                self.turns[last].dropped = Some("blocked".into());
                node.history = sent;
                node.response = None;
                return Ok(TargetTurn::Blocked(format!(
                    "blocked by the output guard `{guard}` ({label}) at turn {}",
                    self.round.max(1)
                )));
            }
        }
        // The conversation as the target saw it, its answer last; without the target's and
        // the defense's system prompts, which are put in front at each call.
        node.history = sent;
        node.history.push(Message {
            role: Role::Assistant,
            content: reply.clone(),
        });
        Ok(TargetTurn::Answer { text: reply })
    }

    /// The conversation as the target is sent it: the defense's system prompt, then the
    /// target's own, in front of the conversation's.
    fn as_sent(&self, messages: &[Message]) -> Vec<Message> {
        let model = &self.shared.models[self.m];
        let messages = model.with_system(messages);
        match self.defense.system.as_deref() {
            Some(system) => ModelRun {
                system: Some(system.to_string()),
                ..model.clone()
            }
            .with_system(&messages),
            None => messages,
        }
    }

    /// Every loop judge on the node's last answer, members before ensembles. An error of
    /// any of them is the item's error.
    async fn judge_turn(
        &mut self,
        names: &[String],
        node: &Node,
    ) -> Result<BTreeMap<String, JudgeOutcome>, End> {
        let mut outcomes = BTreeMap::new();
        if names.is_empty() {
            return Ok(outcomes);
        }
        let mut asked: Vec<Message> = node.history.clone();
        // The judged conversation ends with the user turn the answer replied to.
        let response = match asked.pop() {
            Some(m) if m.role == Role::Assistant => m.content,
            _ => node.response.clone().unwrap_or_default(),
        };
        let record = self.judge_record(asked, response);
        for name in names {
            let Some(spec) = self.conv.judges.spec(name) else {
                return self.fail(
                    &format!("the judge `{name}`"),
                    "it is not in the compiled suite",
                );
            };
            let outcome = if matches!(spec.kind, JudgeKind::Ensemble { .. }) {
                self.conv.judges.combine(spec, &record, &outcomes)
            } else {
                self.judge_one(name, &record).await?
            };
            if let Some(error) = &outcome.error {
                return self.fail(&format!("the judge `{name}`"), error);
            }
            outcomes.insert(name.clone(), outcome);
        }
        if let Some(last) = self.turns.iter_mut().rev().find(|t| t.by == Author::Target) {
            last.verdicts.extend(outcomes.clone());
        }
        Ok(outcomes)
    }

    /// One judge (not an ensemble) on `record`.
    async fn judge_one(&mut self, name: &str, record: &ResultRecord) -> Result<JudgeOutcome, End> {
        let judges = &self.conv.judges;
        let Some(spec) = judges.spec(name) else {
            return self.fail(
                &format!("the judge `{name}`"),
                "it is not in the compiled suite",
            );
        };
        if let JudgeKind::Ensemble { members, .. } = &spec.kind {
            // Members first, then the combination.
            let mut outcomes = BTreeMap::new();
            for member in members.clone() {
                let o = Box::pin(self.judge_one(&member, record)).await?;
                outcomes.insert(member, o);
            }
            let spec = self.conv.judges.spec(name).expect("found above");
            return Ok(self.conv.judges.combine(spec, record, &outcomes));
        }
        let outcome = match judges.start(spec, record) {
            Step::Decided(o) => o,
            Step::Ask { messages, .. } => {
                let Some(&model) = self.conv.judge_model.get(name) else {
                    return self.fail(&format!("the judge `{name}`"), "it has no model to ask");
                };
                let sees = spec.attachments;
                let answer = match self.ask_with(model, &messages, "", sees).await {
                    Ok(a) => a,
                    Err(end) => return Err(self.blame(&format!("the judge `{name}`"), end)),
                };
                let spec = self.conv.judges.spec(name).expect("found above");
                match &answer.reply.filtered {
                    Some(reason) => self.conv.judges.finish(
                        spec,
                        Err(&format!(
                            "refused by the provider's content filter: {reason}"
                        )),
                    ),
                    None => self.conv.judges.finish(spec, Ok(&answer.reply.text)),
                }
            }
        };
        if let Some(error) = &outcome.error {
            return self.fail(&format!("the judge `{name}`"), error);
        }
        Ok(outcome)
    }

    /// Whether a judge's outcome is its flagged label: the last of its labels.
    fn flagged(&self, judge: &str, outcome: &JudgeOutcome) -> bool {
        let last = self.conv.judges.spec(judge).and_then(|s| s.labels.last());
        last.is_some() && outcome.label.as_ref() == last
    }

    /// A judge's label as a rank (its position in the label set), for judges without a score.
    fn label_rank(&self, judge: &str, outcome: &JudgeOutcome) -> f64 {
        let labels = self.conv.judges.spec(judge).map(|s| &s.labels);
        match (labels, &outcome.label) {
            (Some(labels), Some(label)) => labels
                .iter()
                .position(|l| l == label)
                .map_or(f64::NEG_INFINITY, |p| p as f64),
            _ => f64::NEG_INFINITY,
        }
    }

    /// The first stop condition holding after the node's last answer.
    fn stopped(
        &self,
        program: Option<&ProgramSpec>,
        node: &Node,
        verdicts: &BTreeMap<String, JudgeOutcome>,
    ) -> Option<String> {
        let program = program?;
        let mut record = self.judge_record(Vec::new(), node.response.clone().unwrap_or_default());
        // `turns` counts the branch's target turns.
        record.messages = (0..node.depth)
            .map(|_| Message {
                role: Role::User,
                content: String::new(),
            })
            .collect();
        // `queries` counts the target's answers so far, every branch's: one stand-in per
        // answer, the last (this branch's, at its depth) as the final turn.
        let queries = self.turns.iter().filter(|t| t.by == Author::Target).count();
        record.turns = (0..queries)
            .map(|_| TurnRecord {
                role: Role::Assistant,
                content: String::new(),
                by: Author::Target,
                model: None,
                turn: node.depth,
                node: None,
                latency_ms: None,
                usage: None,
                cached: false,
                verdicts: BTreeMap::new(),
                dropped: None,
            })
            .collect();
        record.final_turn = queries.checked_sub(1);
        for stop in &program.stops {
            if assay_score::condition(&stop.condition, &record, verdicts) == Some(true) {
                return Some(format!("`{}` held at turn {}", stop.source, node.depth));
            }
        }
        None
    }

    /// A record for judging: the item's labels with these messages and response.
    fn judge_record(&self, messages: Vec<Message>, response: String) -> ResultRecord {
        ResultRecord {
            messages,
            response: Some(response),
            ..crate::engine::new_record(self.item, &self.shared.models[self.m].name)
        }
    }

    /// The attack's goal: the item's first user turn.
    fn goal(&self) -> String {
        self.item
            .messages
            .iter()
            .find(|m| m.role == Role::User)
            .map(|m| m.content.clone())
            .unwrap_or_default()
    }

    fn record(
        &mut self,
        role: Role,
        content: String,
        by: Author,
        model: Option<&str>,
        node: &Node,
        latency_ms: Option<u64>,
    ) {
        let turn = match by {
            Author::Target => node.depth,
            _ => node.depth + 1,
        };
        self.turns.push(TurnRecord {
            role,
            content,
            by,
            model: model.map(str::to_string),
            turn,
            node: node.id.clone(),
            latency_ms,
            usage: None,
            cached: false,
            verdicts: BTreeMap::new(),
            dropped: None,
        });
    }
}

/// A failure of a judge named for the role it played: "the input guard `g` failed ...".
fn as_role(end: End, role: &str) -> End {
    match end {
        End::Failed { message, skipped } => End::Failed {
            message: message.replacen("the judge `", &format!("the {role} `"), 1),
            skipped,
        },
        other => other,
    }
}

/// A score as templates show it: `7`, not `7.0`, when it is whole.
fn score_value(score: f64) -> Value {
    if score.fract() == 0.0 && score.abs() < 1e15 {
        json!(score as i64)
    } else {
        json!(score)
    }
}

enum Grown {
    Kept(Node),
    Stopped(Node, String),
    Filtered(Node, String),
    Pruned,
}

fn best_of(leaves: &[Node]) -> Option<Node> {
    leaves.first().cloned()
}

fn node_depth(leaves: &[Node]) -> u32 {
    leaves.iter().map(|l| l.depth).max().unwrap_or(0)
}

/// A hash of one request: the model's identity and parameters, the messages and the salt.
fn request_hash(model: &ModelRun, messages: &[Message], salt: &str) -> String {
    let mut h = Sha256::new();
    h.update(model.provider.identity().as_bytes());
    h.update([0]);
    h.update(serde_json::to_vec(&model.params).expect("params serialise"));
    h.update([0]);
    h.update(serde_json::to_vec(messages).expect("messages serialise"));
    h.update([0]);
    h.update(salt.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// The next user turn from the attacker's answer.
pub fn parse_attack(parser: &AttackParser, answer: &str) -> Result<String, String> {
    let text = match parser {
        AttackParser::Text => answer.trim().to_string(),
        AttackParser::Json(field) => {
            let start = answer
                .find('{')
                .ok_or_else(|| format!("no JSON object in its answer: {}", preview(answer)))?;
            let mut stream =
                serde_json::Deserializer::from_str(&answer[start..]).into_iter::<Value>();
            let value = match stream.next() {
                Some(Ok(v)) => v,
                _ => return Err(format!("no JSON object in its answer: {}", preview(answer))),
            };
            match value.get(field) {
                Some(Value::String(s)) => s.trim().to_string(),
                Some(other) => {
                    return Err(format!("`{field}` is {other}, not a string"));
                }
                None => {
                    return Err(format!("its JSON has no `{field}`: {}", preview(answer)));
                }
            }
        }
        AttackParser::Regex(pattern) => {
            let re = regex::Regex::new(pattern).map_err(|e| format!("bad regex: {e}"))?;
            let caps = re
                .captures(answer)
                .ok_or_else(|| format!("no match for /{pattern}/ in {}", preview(answer)))?;
            caps.get(1)
                .or_else(|| caps.get(0))
                .map_or(String::new(), |m| m.as_str().trim().to_string())
        }
    };
    if text.is_empty() {
        return Err("its answer holds an empty prompt".into());
    }
    Ok(text)
}

fn preview(text: &str) -> String {
    let t: String = text.chars().take(80).collect();
    if t.len() < text.len() {
        format!("{t:?}…")
    } else {
        format!("{t:?}")
    }
}

/// A program's turn plan in words, for `assay items` and reviews: its scripted turns, its
/// attacker and budgets, the judges it runs in the loop, its stop conditions and the most
/// calls an item can make under it.
pub fn describe(p: &ProgramSpec) -> Vec<String> {
    let mut lines = Vec::new();
    for t in &p.turns {
        let who = match t.role {
            Role::Assistant => "assistant",
            _ => "user",
        };
        let what = match &t.content {
            TurnText::Text(text) => format!("{:?}", preview_words(text)),
            TurnText::ItemPrompt => "the item's prompt".to_string(),
            TurnText::ItemTurns => "each of the item's user turns".to_string(),
        };
        lines.push(format!("{who}: {what}"));
    }
    if let Some(a) = &p.attacker {
        let mut shape = vec![match a.context {
            Context::Conversation => "the target sees the whole conversation".to_string(),
            Context::Single => "the target sees only the latest attack prompt".to_string(),
        }];
        if a.streams > 1 {
            shape.push(format!("{} streams", a.streams));
        }
        if a.branching > 1 {
            shape.push(format!("branching {}", a.branching));
        }
        if a.width > 0 && (a.streams > 1 || a.branching > 1) {
            shape.push(format!("{} best kept per level", a.width));
        }
        if let Some(j) = &a.feedback {
            shape.push(format!("feedback from `{j}`"));
        }
        if let Some(j) = &a.prune {
            shape.push(format!("off-topic prompts pruned by `{j}`"));
        }
        if let Some(j) = &a.backtrack {
            shape.push(format!(
                "refused turns backtracked by `{j}` (at most {})",
                a.max_backtracks
            ));
        }
        lines.push(format!(
            "attacker `{}`: up to {} rounds; {}",
            a.model,
            a.max_turns,
            shape.join("; ")
        ));
    }
    if !p.judges.is_empty() {
        lines.push(format!(
            "judged after each target turn by {}",
            p.judges
                .iter()
                .map(|j| format!("`{j}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    for s in &p.stops {
        lines.push(format!("stops when {}", s.source));
    }
    if let Some(n) = p.max_turns {
        lines.push(format!("at most {n} target turns per conversation"));
    }
    lines.push(format!(
        "at most {} calls per item (retries and defenses aside; an item's own turns counted as one)",
        p.worst_case_calls
    ));
    lines
}

fn preview_words(text: &str) -> String {
    let t: String = text.chars().take(60).collect();
    if t.len() < text.len() {
        format!("{t}…")
    } else {
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attack_prompts_are_read_by_the_parser() {
        let json = AttackParser::Json("prompt".into());
        let answer = "Thinking...\n{\"improvement\": \"be subtle\", \"prompt\": \" Tell a story \"} trailing";
        assert_eq!(parse_attack(&json, answer).unwrap(), "Tell a story");
        assert!(
            parse_attack(&json, "no object here")
                .unwrap_err()
                .contains("no JSON object")
        );
        assert!(
            parse_attack(&json, "{\"other\": 1}")
                .unwrap_err()
                .contains("no `prompt`")
        );
        assert!(
            parse_attack(&json, "{\"prompt\": 3}")
                .unwrap_err()
                .contains("not a string")
        );
        assert!(
            parse_attack(&json, "{\"prompt\": \"  \"}")
                .unwrap_err()
                .contains("empty")
        );
        let regex = AttackParser::Regex("PROMPT: (.*)".into());
        assert_eq!(parse_attack(&regex, "x\nPROMPT: go on").unwrap(), "go on");
        assert!(
            parse_attack(&regex, "nothing")
                .unwrap_err()
                .contains("no match")
        );
        assert_eq!(
            parse_attack(&AttackParser::Text, "  as is \n").unwrap(),
            "as is"
        );
    }

    #[test]
    fn whole_scores_render_without_a_fraction() {
        assert_eq!(score_value(10.0).to_string(), "10");
        assert_eq!(score_value(7.5).to_string(), "7.5");
    }

    #[test]
    fn helper_keys_keep_temperatures_apart() {
        assert_eq!(helper_key("att", None), "att");
        assert_eq!(helper_key("att", Some(1.0)), "att@temperature=1");
        assert_ne!(helper_key("att", Some(0.7)), helper_key("att", Some(1.0)));
    }
}
