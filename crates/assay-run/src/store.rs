//! The run state, in one SQLite database (`.assay/state.db`): the response cache, the runs,
//! and the journal of finished results.
//!
//! The journal is the source of truth of a run: a result counts as done only once its row is
//! committed, and `results.jsonl` is written from the journal at the end, in item order. So
//! a run killed at any moment resumes by skipping what the journal holds, sends nothing twice
//! that was journalled, and ends with the same file as an uninterrupted run. The cache is
//! keyed by a hash of provider identity, model, parameters and messages (never the key).
//!
//! One writer thread owns the write connection and commits in batches (one transaction per
//! batch, WAL mode), acknowledging each result after its commit; lookups use their own
//! connection.

use assay_ir::ResultRecord;
use rusqlite::{Connection, OptionalExtension, params};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::mpsc;

const SCHEMA: &str = "
PRAGMA journal_mode = WAL;
PRAGMA synchronous = NORMAL;
CREATE TABLE IF NOT EXISTS cache (
    key     TEXT PRIMARY KEY,
    reply   TEXT NOT NULL,
    created INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS runs (
    run_key  TEXT PRIMARY KEY,
    out_dir  TEXT NOT NULL,
    started  TEXT NOT NULL,
    finished TEXT
);
CREATE TABLE IF NOT EXISTS journal (
    run_key TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    model   INTEGER NOT NULL,
    record  TEXT NOT NULL,
    calls   INTEGER NOT NULL,
    PRIMARY KEY (run_key, seq, model)
);
CREATE TABLE IF NOT EXISTS steps (
    run_key TEXT NOT NULL,
    seq     INTEGER NOT NULL,
    model   INTEGER NOT NULL,
    step    INTEGER NOT NULL,
    request TEXT NOT NULL,
    reply   TEXT NOT NULL,
    PRIMARY KEY (run_key, seq, model, step)
);
";

/// The largest result the journal stores. A larger one (a huge prompt or response) becomes
/// that item's error with its size, so one item can never stop the run (SQLite refuses
/// strings over a gigabyte).
pub const MAX_RECORD_BYTES: usize = 64 << 20;

/// A result as the journal stores it: redacted, and within `limit` bytes.
fn journal_json(record: &ResultRecord, limit: usize) -> String {
    let json = serde_json::to_string(record).expect("a record serialises");
    if json.len() <= limit {
        return redacted(json);
    }
    let mut small = record.clone();
    small.state = assay_ir::State::Error;
    small.error = Some(format!(
        "the result is {} bytes, more than the {limit} the journal keeps; \
         its messages and response are left out",
        json.len()
    ));
    small.messages.clear();
    small.response = None;
    let json = serde_json::to_string(&small).expect("a record serialises");
    redacted(json)
}

/// `text` redacted, without a copy when it holds no secret (the usual case).
fn redacted(text: String) -> String {
    match crate::redact::redact(&text) {
        std::borrow::Cow::Borrowed(_) => text,
        std::borrow::Cow::Owned(clean) => clean,
    }
}

/// What a run's journal holds when it starts again.
#[derive(Debug, Default)]
pub struct Journalled {
    /// (item, model) pairs that need no new call.
    pub done: HashSet<(u64, usize)>,
    /// Results without an answer (`error`, `skipped`) that are tried again.
    pub retried: u64,
}

/// The state database.
pub struct Store {
    path: PathBuf,
    read: Mutex<Connection>,
}

/// A write for the writer thread.
pub enum Write {
    Journal {
        run_key: String,
        seq: u64,
        model: usize,
        record: Box<ResultRecord>,
        /// Calls this result cost (0 when cached or recorded).
        calls: u64,
    },
    Cache {
        key: String,
        reply: String,
    },
    /// One call of a conversation, journalled as it is answered: a conversation killed half
    /// way resumes from its steps, with the same replies, whatever the cache holds.
    Step {
        run_key: String,
        seq: u64,
        model: usize,
        step: u32,
        /// A hash of the request, so a step is replayed only for the same request.
        request: String,
        reply: String,
    },
}

/// The writer thread: joins with its last error, if any.
pub type WriterThread = std::thread::JoinHandle<Result<(), String>>;

/// What the writer reports after each commit.
pub struct Committed {
    pub records: Vec<(Box<ResultRecord>, u64)>,
}

fn open(path: &Path) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(30))?;
    conn.execute_batch(SCHEMA)?;
    Ok(conn)
}

fn err(path: &Path, e: rusqlite::Error) -> String {
    format!("state database {}: {e}", path.display())
}

impl Store {
    pub fn open(dir: &Path) -> Result<Store, String> {
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("state.db");
        let read = open(&path).map_err(|e| err(&path, e))?;
        Ok(Store {
            path,
            read: Mutex::new(read),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A cached reply, as JSON.
    pub fn cached(&self, key: &str) -> Option<String> {
        let conn = self.read.lock().ok()?;
        conn.query_row("SELECT reply FROM cache WHERE key = ?1", [key], |r| {
            r.get(0)
        })
        .optional()
        .ok()
        .flatten()
    }

    /// The output folder of an earlier run with this key, and whether it finished.
    pub fn run(&self, run_key: &str) -> Result<Option<(PathBuf, bool)>, String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        conn.query_row(
            "SELECT out_dir, finished IS NOT NULL FROM runs WHERE run_key = ?1",
            [run_key],
            |r| Ok((PathBuf::from(r.get::<_, String>(0)?), r.get::<_, bool>(1)?)),
        )
        .optional()
        .map_err(|e| err(&self.path, e))
    }

    /// Records a run's start (or restart) and its output folder.
    pub fn start_run(
        &self,
        run_key: &str,
        out_dir: &Path,
        started: &str,
        fresh: bool,
    ) -> Result<(), String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        if fresh {
            conn.execute("DELETE FROM journal WHERE run_key = ?1", [run_key])
                .map_err(|e| err(&self.path, e))?;
            conn.execute("DELETE FROM steps WHERE run_key = ?1", [run_key])
                .map_err(|e| err(&self.path, e))?;
        }
        conn.execute(
            "INSERT INTO runs (run_key, out_dir, started, finished) VALUES (?1, ?2, ?3, NULL)
             ON CONFLICT (run_key) DO UPDATE SET out_dir = ?2, finished = NULL",
            params![run_key, out_dir.display().to_string(), started],
        )
        .map_err(|e| err(&self.path, e))?;
        Ok(())
    }

    pub fn finish_run(&self, run_key: &str, finished: &str) -> Result<(), String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        conn.execute(
            "UPDATE runs SET finished = ?2 WHERE run_key = ?1",
            params![run_key, finished],
        )
        .map_err(|e| err(&self.path, e))?;
        Ok(())
    }

    /// The (item, model) pairs the journal holds for a run, as done and as to try again:
    /// a result with an answer (`ok`, `filtered`) is done; an `error` or `skipped` one is
    /// tried again unless `keep_failures`.
    pub fn journalled(&self, run_key: &str, keep_failures: bool) -> Result<Journalled, String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        let mut stmt = conn
            .prepare(
                "SELECT seq, model, json_extract(record, '$.state') FROM journal WHERE run_key = ?1",
            )
            .map_err(|e| err(&self.path, e))?;
        let rows = stmt
            .query_map([run_key], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as usize,
                    r.get::<_, Option<String>>(2)?,
                ))
            })
            .map_err(|e| err(&self.path, e))?;
        let mut journalled = Journalled::default();
        for row in rows {
            let (seq, model, state) = row.map_err(|e| err(&self.path, e))?;
            let answered = matches!(state.as_deref(), Some("ok" | "filtered"));
            if answered || keep_failures {
                journalled.done.insert((seq, model));
            } else {
                journalled.retried += 1;
            }
        }
        Ok(journalled)
    }

    /// What a run's journal says it has spent: calls sent, and dollars (the results' `cost`).
    pub fn spent(&self, run_key: &str) -> Result<(u64, f64), String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        conn.query_row(
            "SELECT COALESCE(SUM(calls), 0), COALESCE(SUM(json_extract(record, '$.cost')), 0.0) FROM journal WHERE run_key = ?1",
            [run_key],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, f64>(1)?)),
        )
        .map_err(|e| err(&self.path, e))
    }

    /// The journalled steps of one conversation: step → (request hash, reply).
    pub fn steps(
        &self,
        run_key: &str,
        seq: u64,
        model: usize,
    ) -> Result<std::collections::BTreeMap<u32, (String, String)>, String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        let mut stmt = conn
            .prepare_cached(
                "SELECT step, request, reply FROM steps WHERE run_key = ?1 AND seq = ?2 AND model = ?3",
            )
            .map_err(|e| err(&self.path, e))?;
        let rows = stmt
            .query_map(params![run_key, seq as i64, model as i64], |r| {
                Ok((
                    r.get::<_, i64>(0)? as u32,
                    (r.get::<_, String>(1)?, r.get::<_, String>(2)?),
                ))
            })
            .map_err(|e| err(&self.path, e))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(|e| err(&self.path, e))
    }

    /// Drops a finished conversation's steps: its result is journalled and holds them.
    pub fn forget_steps(&self, run_key: &str) -> Result<(), String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        conn.execute("DELETE FROM steps WHERE run_key = ?1", [run_key])
            .map_err(|e| err(&self.path, e))?;
        Ok(())
    }

    /// The ids of every item any run's journal holds a result for.
    pub fn journalled_item_ids(&self) -> Result<std::collections::BTreeSet<String>, String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        let mut stmt = conn
            .prepare("SELECT record FROM journal")
            .map_err(|e| err(&self.path, e))?;
        let rows = stmt
            .query_map([], |r| r.get::<_, String>(0))
            .map_err(|e| err(&self.path, e))?;
        let mut ids = std::collections::BTreeSet::new();
        for row in rows {
            let json = row.map_err(|e| err(&self.path, e))?;
            let record: ResultRecord =
                serde_json::from_str(&json).map_err(|e| format!("journal: {e}"))?;
            ids.insert(record.item_id);
        }
        Ok(ids)
    }

    /// Every journalled result of a run, in item then model order.
    pub fn for_each_result(
        &self,
        run_key: &str,
        each: &mut dyn FnMut(&str, u64) -> Result<(), String>,
    ) -> Result<(), String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        let mut stmt = conn
            .prepare("SELECT record, calls FROM journal WHERE run_key = ?1 ORDER BY seq, model")
            .map_err(|e| err(&self.path, e))?;
        let mut rows = stmt.query([run_key]).map_err(|e| err(&self.path, e))?;
        while let Some(row) = rows.next().map_err(|e| err(&self.path, e))? {
            let record: String = row.get(0).map_err(|e| err(&self.path, e))?;
            let calls: i64 = row.get(1).map_err(|e| err(&self.path, e))?;
            each(&record, calls as u64)?;
        }
        Ok(())
    }

    /// Cache statistics: entries and bytes.
    pub fn cache_stats(&self) -> Result<(u64, u64), String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        conn.query_row(
            "SELECT COUNT(*), COALESCE(SUM(LENGTH(reply) + LENGTH(key)), 0) FROM cache",
            [],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64)),
        )
        .map_err(|e| err(&self.path, e))
    }

    pub fn cache_clear(&self) -> Result<u64, String> {
        let conn = self
            .read
            .lock()
            .map_err(|_| "state lock poisoned".to_string())?;
        let n = conn
            .execute("DELETE FROM cache", [])
            .map_err(|e| err(&self.path, e))?;
        conn.execute_batch("VACUUM")
            .map_err(|e| err(&self.path, e))?;
        Ok(n as u64)
    }

    /// Starts the writer thread. Dropping the sender ends it after a last commit.
    pub fn writer(
        &self,
        committed: mpsc::Sender<Committed>,
    ) -> Result<(mpsc::Sender<Write>, WriterThread), String> {
        let path = self.path.clone();
        let mut conn = open(&path).map_err(|e| err(&path, e))?;
        let (tx, rx) = mpsc::channel::<Write>();
        let handle = std::thread::spawn(move || -> Result<(), String> {
            while let Ok(first) = rx.recv() {
                // Everything already waiting goes into the same transaction.
                let mut batch = vec![first];
                while batch.len() < 4096 {
                    match rx.try_recv() {
                        Ok(w) => batch.push(w),
                        Err(_) => break,
                    }
                }
                let tx_db = conn.transaction().map_err(|e| err(&path, e))?;
                let mut records = Vec::new();
                {
                    let mut journal = tx_db
                        .prepare_cached("INSERT OR REPLACE INTO journal (run_key, seq, model, record, calls) VALUES (?1, ?2, ?3, ?4, ?5)")
                        .map_err(|e| err(&path, e))?;
                    let mut cache = tx_db
                        .prepare_cached("INSERT OR REPLACE INTO cache (key, reply, created) VALUES (?1, ?2, strftime('%s','now'))")
                        .map_err(|e| err(&path, e))?;
                    let mut steps = tx_db
                        .prepare_cached("INSERT OR REPLACE INTO steps (run_key, seq, model, step, request, reply) VALUES (?1, ?2, ?3, ?4, ?5, ?6)")
                        .map_err(|e| err(&path, e))?;
                    for w in batch {
                        match w {
                            Write::Journal {
                                run_key,
                                seq,
                                model,
                                record,
                                calls,
                            } => {
                                let json = journal_json(&record, MAX_RECORD_BYTES);
                                journal
                                    .execute(params![
                                        run_key,
                                        seq as i64,
                                        model as i64,
                                        json,
                                        calls as i64
                                    ])
                                    .map_err(|e| err(&path, e))?;
                                records.push((record, calls));
                            }
                            Write::Step {
                                run_key,
                                seq,
                                model,
                                step,
                                request,
                                reply,
                            } => {
                                if reply.len() <= MAX_RECORD_BYTES {
                                    steps
                                        .execute(params![
                                            run_key,
                                            seq as i64,
                                            model as i64,
                                            i64::from(step),
                                            request,
                                            crate::redact::redact(&reply)
                                        ])
                                        .map_err(|e| err(&path, e))?;
                                }
                            }
                            Write::Cache { key, reply } => {
                                // A reply too large to keep is simply not cached.
                                if reply.len() <= MAX_RECORD_BYTES {
                                    cache
                                        .execute(params![key, crate::redact::redact(&reply)])
                                        .map_err(|e| err(&path, e))?;
                                }
                            }
                        }
                    }
                }
                tx_db.commit().map_err(|e| err(&path, e))?;
                // Acknowledged only now that the rows are committed.
                let _ = committed.send(Committed { records });
            }
            Ok(())
        });
        Ok((tx, handle))
    }
}

/// An exclusive hold on a state folder for one process: two runs on the same state would
/// send the same calls twice and overwrite each other's files. The lock is the operating
/// system's (`flock`), so it goes with the process that held it, however it ended; the file
/// keeps the holder's process id for the message.
pub struct StateLock {
    _file: std::fs::File,
}

impl StateLock {
    /// Takes the lock of `dir`, or says who holds it.
    pub fn acquire(dir: &Path) -> Result<StateLock, String> {
        use std::io::{Read as _, Seek as _, Write as _};
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        let path = dir.join("lock");
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(std::fs::TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                return Err(format!(
                    "another assay process{} is using the state in {}; wait for it to end, \
                     or give this one its own state with ASSAY_STATE_DIR",
                    if holder.is_empty() {
                        String::new()
                    } else {
                        format!(" (pid {holder})")
                    },
                    dir.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("cannot lock {}: {e}", path.display()));
            }
        }
        // Ours now: the previous holder, if any, has ended.
        let _ = file.set_len(0);
        let _ = file.rewind();
        let _ = write!(file, "{}", std::process::id());
        let _ = file.flush();
        Ok(StateLock { _file: file })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn two_runs_on_one_state_are_refused_and_a_released_lock_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let first = StateLock::acquire(dir.path()).unwrap();
        let refused = StateLock::acquire(dir.path()).err().unwrap();
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        drop(first);
        assert!(StateLock::acquire(dir.path()).is_ok());
    }

    #[test]
    fn an_oversized_result_is_that_items_error_never_the_runs() {
        let record: ResultRecord = serde_json::from_value(serde_json::json!({
            "item_id": "big", "model": "m", "state": "ok", "key": "k", "source": "s",
            "labels": {}, "expect": "refuse",
            "messages": [{ "role": "user", "content": "x".repeat(5000) }],
            "response": "y".repeat(5000)
        }))
        .unwrap();
        let stored: ResultRecord = serde_json::from_str(&journal_json(&record, 1000)).unwrap();
        assert_eq!(stored.state, assay_ir::State::Error);
        assert!(
            stored
                .error
                .unwrap()
                .contains("more than the 1000 the journal keeps")
        );
        assert!(stored.messages.is_empty() && stored.response.is_none());
        assert_eq!(stored.item_id, "big");
        // Within the limit, the record is kept whole.
        let kept: ResultRecord = serde_json::from_str(&journal_json(&record, 1 << 20)).unwrap();
        assert_eq!(kept, record);
    }

    #[test]
    fn a_rerun_tries_failures_again_unless_asked_to_keep_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let (tx, _rx) = mpsc::channel();
        let (writer, thread) = store.writer(tx).unwrap();
        for (seq, state) in [
            (0, assay_ir::State::Ok),
            (1, assay_ir::State::Error),
            (2, assay_ir::State::Skipped),
            (3, assay_ir::State::Filtered),
        ] {
            let record: ResultRecord = serde_json::from_value(serde_json::json!({
                "item_id": format!("i{seq}"), "model": "m", "state": state.as_str(),
                "key": "k", "source": "s", "labels": {}, "expect": "refuse",
                "messages": []
            }))
            .unwrap();
            writer
                .send(Write::Journal {
                    run_key: "r".into(),
                    seq,
                    model: 0,
                    record: Box::new(record),
                    calls: 1,
                })
                .unwrap();
        }
        drop(writer);
        thread.join().unwrap().unwrap();
        let retry = store.journalled("r", false).unwrap();
        assert_eq!(retry.done, HashSet::from([(0, 0), (3, 0)]));
        assert_eq!(retry.retried, 2);
        let keep = store.journalled("r", true).unwrap();
        assert_eq!(keep.done.len(), 4);
        assert_eq!(keep.retried, 0);
    }
}
