//! The embedded store: one SQLite file in WAL mode, one writer connection behind a mutex and a
//! small pool of read connections, so that reads never wait for a long ingest transaction.
//!
//! Raw records are kept in compressed blocks (one block per committed batch, LZ4, each record
//! length-prefixed); an event row points at its block and position. Compressing a block of
//! similar records costs a fraction of compressing each record alone and shrinks better.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter, types::Value};

use crate::codec::*;
use crate::rows::{
    self, ALERT_COLUMNS, AUDIT_COLUMNS, DELIVERY_COLUMNS, EVENT_COLUMNS, FEEDBACK_COLUMNS,
    INCIDENT_COLUMNS, KEY_COLUMNS, MODEL_COLUMNS, RESPONSE_COLUMNS, USER_COLUMNS,
};
use crate::*;

impl From<rusqlite::Error> for StoreError {
    fn from(e: rusqlite::Error) -> StoreError {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

/// Schema migrations, applied in order; the index of the last applied one is kept in
/// `PRAGMA user_version`. Never edit one that has shipped: add another.
const MIGRATIONS: &[&str] = &[
    r#"
CREATE TABLE raw_blocks (
    id INTEGER PRIMARY KEY,
    max_time INTEGER NOT NULL,
    codec TEXT NOT NULL,
    data BLOB NOT NULL
);
CREATE INDEX raw_blocks_max_time ON raw_blocks(max_time);
CREATE TABLE events (
    seq INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    id_hash INTEGER NOT NULL,
    time INTEGER NOT NULL,
    ingested INTEGER NOT NULL,
    provider TEXT NOT NULL,
    kind TEXT NOT NULL,
    account TEXT,
    region TEXT,
    principal TEXT NOT NULL,
    principal_hash INTEGER NOT NULL,
    actor_name TEXT,
    access_key TEXT,
    source_ip TEXT,
    user_agent TEXT,
    service TEXT NOT NULL,
    operation TEXT NOT NULL,
    read_only INTEGER,
    success INTEGER NOT NULL,
    error_code TEXT,
    block INTEGER NOT NULL,
    block_idx INTEGER NOT NULL
);
-- Keyed by time and a 64-bit hash of the id: a retried batch hits the same key and is ignored;
-- a live stream's inserts land near the end of the index, and the entries are small (inserts
-- into recent time are what costs: every touched page is written again).
CREATE UNIQUE INDEX events_time_id ON events(time, id_hash);
CREATE INDEX events_principal_time ON events(principal_hash, time);
CREATE TABLE incidents (
    id INTEGER PRIMARY KEY,
    key TEXT NOT NULL,
    entity TEXT NOT NULL,
    account TEXT,
    title TEXT NOT NULL,
    level INTEGER NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    alert_count INTEGER NOT NULL,
    tactics TEXT NOT NULL,
    techniques TEXT NOT NULL
);
CREATE INDEX incidents_last_seen ON incidents(last_seen);
CREATE TABLE alerts (
    id INTEGER PRIMARY KEY,
    kind TEXT NOT NULL,
    rule_id TEXT NOT NULL,
    title TEXT NOT NULL,
    level INTEGER NOT NULL,
    techniques TEXT NOT NULL,
    tactics TEXT NOT NULL,
    entity TEXT NOT NULL,
    account TEXT,
    access_key TEXT,
    source_ip TEXT,
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    created INTEGER NOT NULL,
    updated INTEGER NOT NULL,
    count INTEGER NOT NULL,
    event_ids TEXT NOT NULL,
    explanation TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'open',
    assignee TEXT,
    incident_id INTEGER,
    verdict TEXT
);
CREATE INDEX alerts_last_seen ON alerts(last_seen);
CREATE INDEX alerts_rule ON alerts(rule_id);
CREATE INDEX alerts_entity ON alerts(entity);
CREATE INDEX alerts_incident ON alerts(incident_id);
CREATE TABLE comments (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX comments_alert ON comments(alert_id);
CREATE TABLE feedback (
    id INTEGER PRIMARY KEY,
    alert_id INTEGER NOT NULL,
    verdict TEXT NOT NULL,
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    rule_id TEXT NOT NULL,
    entity TEXT NOT NULL
);
CREATE INDEX feedback_alert ON feedback(alert_id);
CREATE TABLE suppressions (
    id INTEGER PRIMARY KEY,
    rule_id TEXT NOT NULL,
    entity TEXT NOT NULL,
    reason TEXT NOT NULL,
    author TEXT NOT NULL,
    created INTEGER NOT NULL,
    expires INTEGER NOT NULL
);
CREATE TABLE users (
    id INTEGER PRIMARY KEY,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    token_version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE api_keys (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    prefix TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    role TEXT NOT NULL,
    created_by TEXT NOT NULL,
    created INTEGER NOT NULL,
    last_used INTEGER,
    revoked INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE audit (
    seq INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT NOT NULL,
    detail TEXT NOT NULL,
    source_ip TEXT,
    prev_hash TEXT NOT NULL,
    hash TEXT NOT NULL
);
CREATE TABLE source_files (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime INTEGER NOT NULL,
    done INTEGER NOT NULL,
    PRIMARY KEY (path, size, mtime)
);
"#,
    // 2: learning: feedback scores on alerts, the features alerts were raised with, the model
    // registry, and state kept across restarts.
    r#"
ALTER TABLE alerts ADD COLUMN tp_score REAL;
CREATE INDEX alerts_tp_score ON alerts(tp_score);
CREATE TABLE alert_features (
    alert_id INTEGER PRIMARY KEY,
    schema INTEGER NOT NULL,
    features TEXT NOT NULL,
    anomaly_score REAL
);
CREATE TABLE models (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL,
    version INTEGER NOT NULL,
    schema INTEGER NOT NULL,
    status TEXT NOT NULL,
    progress REAL NOT NULL DEFAULT 0,
    message TEXT NOT NULL DEFAULT '',
    created INTEGER NOT NULL,
    finished INTEGER,
    trained_by TEXT NOT NULL,
    window_from INTEGER,
    window_to INTEGER,
    samples INTEGER NOT NULL DEFAULT 0,
    metrics TEXT NOT NULL DEFAULT '{}',
    params TEXT NOT NULL DEFAULT '{}',
    artefact BLOB,
    active INTEGER NOT NULL DEFAULT 0,
    activated INTEGER,
    UNIQUE (name, version)
);
CREATE TABLE state (
    key TEXT PRIMARY KEY,
    value BLOB NOT NULL,
    updated INTEGER NOT NULL
);
"#,
    // 3: user ids are never reused (AUTOINCREMENT), and each user has a random token secret
    // that its tokens carry: a deleted user's tokens can never stand for a later user.
    r#"
CREATE TABLE users_v3 (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    username TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL,
    created INTEGER NOT NULL,
    disabled INTEGER NOT NULL DEFAULT 0,
    token_version INTEGER NOT NULL DEFAULT 0,
    token_secret TEXT NOT NULL
);
INSERT INTO users_v3 (id, username, password_hash, role, created, disabled, token_version, token_secret)
    SELECT id, username, password_hash, role, created, disabled, token_version, lower(hex(randomblob(16)))
    FROM users;
DROP TABLE users;
ALTER TABLE users_v3 RENAME TO users;
"#,
    // 4: incidents are worked: an assignee, a severity an analyst sets, a close reason, comments.
    r#"
ALTER TABLE incidents ADD COLUMN assignee TEXT;
ALTER TABLE incidents ADD COLUMN severity INTEGER;
ALTER TABLE incidents ADD COLUMN close_reason TEXT;
CREATE TABLE incident_comments (
    id INTEGER PRIMARY KEY,
    incident_id INTEGER NOT NULL,
    author TEXT NOT NULL,
    time INTEGER NOT NULL,
    text TEXT NOT NULL
);
CREATE INDEX incident_comments_incident ON incident_comments(incident_id);
"#,
    // 5: what an incident answers to besides its key and entity (principals, addresses, a
    // person, identities its principal created), so that grouping survives a restart.
    r#"
ALTER TABLE incidents ADD COLUMN join_keys TEXT;
"#,
    // 6: the notification outbox: one row per message per sink, written with the alert change
    // it tells, sent by the dispatcher in order per sink.
    r#"
CREATE TABLE deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    sink TEXT NOT NULL,
    alert_id INTEGER,
    change TEXT NOT NULL,
    payload TEXT NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    created INTEGER NOT NULL,
    next_attempt INTEGER NOT NULL,
    last_attempt INTEGER,
    last_error TEXT,
    last_failure INTEGER,
    sent INTEGER,
    latency_ms INTEGER
);
CREATE INDEX deliveries_pending ON deliveries(sink, status, id);
CREATE INDEX deliveries_alert ON deliveries(alert_id);
"#,
    // 7: containment actions: proposed, approved, run (with the state before), undone.
    r#"
CREATE TABLE responses (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    alert_id INTEGER NOT NULL,
    playbook TEXT,
    action TEXT NOT NULL,
    account TEXT,
    status TEXT NOT NULL,
    proposed_by TEXT NOT NULL,
    proposed_at INTEGER NOT NULL,
    approved_by TEXT,
    approved_at INTEGER,
    run_by TEXT,
    run_at INTEGER,
    before TEXT,
    verified INTEGER,
    result TEXT,
    undone_by TEXT,
    undone_at INTEGER
);
CREATE INDEX responses_alert ON responses(alert_id);
CREATE INDEX responses_run ON responses(account, run_at);
"#,
    // 8: a second approval, which a second quarantine in one incident needs.
    r#"
ALTER TABLE responses ADD COLUMN second_approved_by TEXT;
ALTER TABLE responses ADD COLUMN second_approved_at INTEGER;
"#,
    // 9: what the pipeline changed lately (resuming folding, the API processes' live stream).
    r#"
CREATE INDEX alerts_updated ON alerts(updated);
CREATE INDEX incidents_updated ON incidents(updated);
"#,
    // 10: the events search: the source address's AS and country as known when stored, lookups
    // by address, account, AS and country, and the token index of words, resources and the principal's
    // names (FTS5 over tokens the caller computes, which are plain lower-case words, so the
    // `ascii` tokenizer keeps each whole; contentless, rows are events' `seq`).
    // PostgreSQL's 0003 is the same.
    r#"
ALTER TABLE events ADD COLUMN asn INTEGER;
ALTER TABLE events ADD COLUMN country TEXT;
CREATE INDEX events_ip_time ON events(source_ip, time);
CREATE INDEX events_account_time ON events(account, time);
CREATE INDEX events_asn_time ON events(asn, time) WHERE asn IS NOT NULL;
CREATE INDEX events_country_time ON events(country, time) WHERE country IS NOT NULL;
CREATE VIRTUAL TABLE event_words USING fts5(
    words, content='', contentless_delete=1, detail=none, tokenize='ascii'
);
"#,
    // 11: the queue's default order, what needs attention first: level, then the newest
    // arrival (`AlertSort::Attention`; the row id, the index's tail, breaks ties).
    // PostgreSQL's 0004 is the same.
    r#"
CREATE INDEX alerts_attention ON alerts(level, created);
"#,
    // 12: `action:` searches by the operation's own index, and events counted per minute as they
    // are stored (`event_minutes`), so that a chart of a month's events reads a few thousand
    // rows instead of counting every event. PostgreSQL's 0005 is the same.
    r#"
CREATE INDEX events_operation_time ON events(operation COLLATE NOCASE, time);
CREATE TABLE event_minutes (minute INTEGER PRIMARY KEY, n INTEGER NOT NULL);
INSERT INTO event_minutes (minute, n) SELECT time / 60000, COUNT(*) FROM events GROUP BY 1;
"#,
    // 13: an event's words wait here (by `seq`, between spaces) until the background indexer
    // moves them into `event_words` in large batches (`index_pending_words`); searches read
    // both, so an event is found as soon as it is stored. FTS5 merges segments in eights instead
    // of fours: about a quarter less work per event (measured with FTS5 on CloudTrail tokens).
    r#"
CREATE TABLE event_words_pending (seq INTEGER PRIMARY KEY, words TEXT NOT NULL);
INSERT INTO event_words (event_words, rank) VALUES ('automerge', 8);
"#,
];

/// Queues deliveries inside an open transaction.
fn insert_deliveries(conn: &Connection, ds: &[NewDelivery], now: i64) -> Result<Vec<i64>> {
    let mut stmt = conn.prepare_cached(
        "INSERT INTO deliveries (sink, alert_id, change, payload, status, attempts, created, next_attempt) \
         VALUES (?1, ?2, ?3, ?4, 'pending', 0, ?5, ?5)",
    )?;
    let mut ids = Vec::with_capacity(ds.len());
    for d in ds {
        stmt.execute(params![d.sink, d.alert_id, d.change, d.payload, now])?;
        ids.push(conn.last_insert_rowid());
    }
    Ok(ids)
}

/// How the SQLite file is opened.
#[derive(Debug, Clone)]
pub struct SqliteOptions {
    /// `full` (fsync on every commit: survives power loss) or `normal` (survives a crash of the
    /// process, not of the machine).
    pub synchronous_full: bool,
    /// Read connections in the pool.
    pub readers: usize,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            synchronous_full: true,
            readers: 4,
        }
    }
}

pub struct SqliteStore {
    /// Shared with the background word indexer ([`index_words_in_background`]).
    writer: std::sync::Arc<Mutex<Connection>>,
    readers: Mutex<Vec<Connection>>,
    available: Condvar,
    /// Tells the checkpoint and word-index threads to stop.
    stop: std::sync::Arc<(Mutex<bool>, Condvar)>,
}

impl Drop for SqliteStore {
    fn drop(&mut self) {
        let (flag, cv) = &*self.stop;
        *flag.lock().unwrap_or_else(|e| e.into_inner()) = true;
        cv.notify_all();
    }
}

/// Makes the database readable by its owner only (0600), creating it so when new. SQLite
/// gives the write-ahead log and shared-memory files the database file's mode, and those that
/// exist already are narrowed too.
fn private_files(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create(true).truncate(false).mode(0o600);
        drop(opts.open(path)?);
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            match std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(e.into()),
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// Write-ahead log size past which the checkpointer makes the log start over.
const WAL_RESTART_BYTES: u64 = 64 * 1024 * 1024;

/// How often the background thread copies the write-ahead log into the database.
const CHECKPOINT_EVERY: std::time::Duration = std::time::Duration::from_millis(500);

/// Checkpoints from their own connection, so that commits never wait for one (SQLite's automatic
/// checkpoint runs inside the commit that crosses the threshold, which showed as latency spikes).
/// PASSIVE never blocks the writer or readers; the log is reused from its start once copied.
///
/// Under sustained writes a PASSIVE checkpoint never sees the log complete, so the log would
/// never restart from its beginning and would grow without bound; once it passes
/// [`WAL_RESTART_BYTES`], a RESTART checkpoint (most frames already copied, so it is short) makes
/// the next commit start the log over, and `journal_size_limit` trims the file.
fn checkpointer(conn: Connection, wal: PathBuf, stop: std::sync::Arc<(Mutex<bool>, Condvar)>) {
    let (flag, cv) = &*stop;
    let mut stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
    while !*stopped {
        drop(stopped);
        if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
            eprintln!("warning: sqlite checkpoint failed: {e}");
        }
        let size = std::fs::metadata(&wal).map(|m| m.len()).unwrap_or(0);
        if size > WAL_RESTART_BYTES
            && let Err(e) = conn.query_row("PRAGMA wal_checkpoint(RESTART)", [], |_| Ok(()))
        {
            eprintln!("warning: sqlite checkpoint failed: {e}");
        }
        stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
        if *stopped {
            break;
        }
        stopped = cv
            .wait_timeout(stopped, CHECKPOINT_EVERY)
            .unwrap_or_else(|e| e.into_inner())
            .0;
    }
}

/// Events whose pending words the background indexer moves into the word index per
/// transaction: large enough that FTS5 writes few segments, small enough that the pipeline's
/// next commit waits for one such transaction at most a few tens of milliseconds.
const WORDS_BATCH: usize = 4096;

/// How often the background indexer looks for pending words.
const INDEX_WORDS_EVERY: std::time::Duration = std::time::Duration::from_millis(250);

/// Moves the words of up to `max` stored events (oldest first) from `event_words_pending` into
/// the FTS5 index `event_words`, in one transaction; answers how many.
fn index_pending(conn: &Connection, max: usize) -> Result<usize> {
    // IMMEDIATE: take the write lock first (waiting for it), so that a commit from another
    // connection between the read and the write cannot fail this one.
    let tx = rusqlite::Transaction::new_unchecked(conn, rusqlite::TransactionBehavior::Immediate)?;
    let upto: Option<i64> = tx.query_row(
        "SELECT MAX(seq) FROM (SELECT seq FROM event_words_pending ORDER BY seq LIMIT ?1)",
        params![max as i64],
        |r| r.get(0),
    )?;
    let Some(upto) = upto else {
        return Ok(0);
    };
    let n = tx.execute(
        "INSERT INTO event_words (rowid, words) \
         SELECT seq, words FROM event_words_pending WHERE seq <= ?1",
        params![upto],
    )?;
    tx.execute(
        "DELETE FROM event_words_pending WHERE seq <= ?1",
        params![upto],
    )?;
    tx.commit()?;
    Ok(n)
}

/// The background word indexer: the pipeline's commit only stores an event's words beside it
/// (a plain row), and this thread moves them into the FTS5 index in batches of
/// [`WORDS_BATCH`], on the writer connection, between the pipeline's commits. FTS5 costs much
/// less per event in large transactions than in the pipeline's small ones.
fn index_words_in_background(
    writer: std::sync::Arc<Mutex<Connection>>,
    stop: std::sync::Arc<(Mutex<bool>, Condvar)>,
) {
    let (flag, cv) = &*stop;
    loop {
        {
            let stopped = flag.lock().unwrap_or_else(|e| e.into_inner());
            let stopped = cv
                .wait_timeout_while(stopped, INDEX_WORDS_EVERY, |s| !*s)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if *stopped {
                return;
            }
        }
        loop {
            let moved = {
                let conn = writer.lock().unwrap_or_else(|e| e.into_inner());
                index_pending(&conn, WORDS_BATCH)
            };
            match moved {
                Ok(n) if n == WORDS_BATCH => {
                    // Let a waiting commit have the connection before the next batch.
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Ok(_) => break,
                Err(e) => {
                    eprintln!("warning: sqlite word index: {e}");
                    break;
                }
            }
        }
    }
}

struct Reader<'a> {
    store: &'a SqliteStore,
    conn: Option<Connection>,
}

impl std::ops::Deref for Reader<'_> {
    type Target = Connection;
    fn deref(&self) -> &Connection {
        self.conn.as_ref().expect("present until drop")
    }
}

impl Drop for Reader<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.conn.take() {
            self.store
                .readers
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(c);
            self.store.available.notify_one();
        }
    }
}

impl rows::Cells for Row<'_> {
    type Error = rusqlite::Error;
    fn int(&self, i: usize) -> rusqlite::Result<i64> {
        self.get(i)
    }
    fn opt_int(&self, i: usize) -> rusqlite::Result<Option<i64>> {
        self.get(i)
    }
    fn real(&self, i: usize) -> rusqlite::Result<f64> {
        self.get(i)
    }
    fn opt_real(&self, i: usize) -> rusqlite::Result<Option<f64>> {
        self.get(i)
    }
    fn text(&self, i: usize) -> rusqlite::Result<String> {
        self.get(i)
    }
    fn opt_text(&self, i: usize) -> rusqlite::Result<Option<String>> {
        self.get(i)
    }
    fn flag(&self, i: usize) -> rusqlite::Result<bool> {
        Ok(self.get::<_, i64>(i)? != 0)
    }
    fn opt_flag(&self, i: usize) -> rusqlite::Result<Option<bool>> {
        Ok(self.get::<_, Option<i64>>(i)?.map(|v| v != 0))
    }
}

// The shared mappers, as the functions of one row lifetime that `query_map` takes.
fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    rows::delivery(r)
}
fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    rows::alert(r)
}
fn model_row(r: &Row<'_>) -> rusqlite::Result<ModelRecord> {
    rows::model(r)
}
fn incident_row(r: &Row<'_>) -> rusqlite::Result<IncidentRecord> {
    rows::incident(r)
}
fn event_row(r: &Row<'_>) -> rusqlite::Result<(EventRow, i64, i64)> {
    rows::event(r)
}
fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    rows::user(r)
}
fn key_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    rows::api_key(r)
}
fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    rows::audit(r)
}
fn feedback_row(r: &Row<'_>) -> rusqlite::Result<FeedbackRecord> {
    rows::feedback(r)
}
fn response_row(r: &Row<'_>) -> rusqlite::Result<ResponseRecord> {
    rows::response(r)
}

impl SqliteStore {
    /// Opens (creating if needed) the database file and applies pending migrations.
    pub fn open(path: &Path, options: &SqliteOptions) -> Result<SqliteStore> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        private_files(path)?;
        let writer = Connection::open(path)?;
        writer.pragma_update(None, "journal_mode", "WAL")?;
        writer.pragma_update(
            None,
            "synchronous",
            if options.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        writer.busy_timeout(std::time::Duration::from_secs(10))?;
        writer.pragma_update(None, "cache_size", -65536)?;
        writer.pragma_update(None, "temp_store", "MEMORY")?;
        // Checkpoints run on their own thread (see `checkpointer`).
        writer.pragma_update(None, "wal_autocheckpoint", 0)?;
        writer.pragma_update(None, "journal_size_limit", WAL_RESTART_BYTES as i64)?;
        migrate(&writer)?;
        let mut readers = Vec::new();
        for _ in 0..options.readers.max(1) {
            let c = Connection::open(path)?;
            c.busy_timeout(std::time::Duration::from_secs(10))?;
            c.pragma_update(None, "cache_size", -16384)?;
            readers.push(c);
        }
        let stop = std::sync::Arc::new((Mutex::new(false), Condvar::new()));
        let cp = Connection::open(path)?;
        cp.busy_timeout(std::time::Duration::from_secs(10))?;
        // Without this the WAL would be fsync'ed by checkpoints only at the level set on the
        // writer; keep them in step.
        cp.pragma_update(
            None,
            "synchronous",
            if options.synchronous_full {
                "FULL"
            } else {
                "NORMAL"
            },
        )?;
        {
            let stop = std::sync::Arc::clone(&stop);
            let mut wal = path.as_os_str().to_owned();
            wal.push("-wal");
            let wal = PathBuf::from(wal);
            std::thread::Builder::new()
                .name("sqlite-checkpoint".into())
                .spawn(move || checkpointer(cp, wal, stop))?;
        }
        let writer = std::sync::Arc::new(Mutex::new(writer));
        {
            let (writer, stop) = (std::sync::Arc::clone(&writer), std::sync::Arc::clone(&stop));
            std::thread::Builder::new()
                .name("sqlite-words".into())
                .spawn(move || index_words_in_background(writer, stop))?;
        }
        Ok(SqliteStore {
            writer,
            readers: Mutex::new(readers),
            available: Condvar::new(),
            stop,
        })
    }

    /// Moves the pending words of up to `max` stored events into the word index now (the
    /// background indexer does this on its own); answers how many. Searches find events either
    /// way.
    pub fn index_pending_words(&self, max: usize) -> Result<usize> {
        index_pending(&self.write(), max)
    }

    fn write(&self) -> MutexGuard<'_, Connection> {
        self.writer.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn read(&self) -> Reader<'_> {
        let mut pool = self.readers.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            if let Some(conn) = pool.pop() {
                return Reader {
                    store: self,
                    conn: Some(conn),
                };
            }
            pool = self.available.wait(pool).unwrap_or_else(|e| e.into_inner());
        }
    }

    /// Fills in `raw` for rows, reading each block once.
    fn attach_raw(&self, conn: &Connection, rows: &mut [(EventRow, i64, i64)]) -> Result<()> {
        let mut blocks: std::collections::HashMap<i64, Vec<String>> = Default::default();
        let mut stmt = conn.prepare_cached("SELECT data FROM raw_blocks WHERE id = ?1")?;
        for (row, block, idx) in rows.iter_mut() {
            if !blocks.contains_key(block) {
                let data: Option<Vec<u8>> =
                    stmt.query_row(params![*block], |r| r.get(0)).optional()?;
                let records = match data {
                    Some(d) => unpack_block(&d)?,
                    None => Vec::new(),
                };
                blocks.insert(*block, records);
            }
            let text = blocks[block].get(*idx as usize);
            row.raw = text.and_then(|t| serde_json::from_str(t).ok());
        }
        Ok(())
    }
}

fn migrate(conn: &Connection) -> Result<()> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    for (i, m) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
        let tx = conn.unchecked_transaction()?;
        tx.execute_batch(m)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
    }
    Ok(())
}

/// A WHERE clause being built, with its parameters.
#[derive(Default)]
struct Filter {
    clauses: Vec<String>,
    params: Vec<Value>,
}

impl Filter {
    fn add(&mut self, clause: &str, value: Value) {
        self.params.push(value);
        self.clauses
            .push(clause.replace('?', &format!("?{}", self.params.len())));
    }

    fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }
}

fn text(s: &str) -> Value {
    Value::Text(s.to_string())
}

mod accounts;
mod alerts;
mod audit;
mod events;
mod models;
mod outbox;
mod responses;
#[cfg(test)]
mod tests;
