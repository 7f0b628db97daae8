//! The embedded store: one SQLite file in WAL mode, one writer connection behind a mutex and a
//! small pool of read connections, so that reads never wait for a long ingest transaction.
//!
//! Raw records are kept in compressed blocks (one block per committed batch, LZ4, each record
//! length-prefixed); an event row points at its block and position. Compressing a block of
//! similar records costs a fraction of compressing each record alone and shrinks better.

use std::path::{Path, PathBuf};
use std::sync::{Condvar, Mutex, MutexGuard};

use chrono::{DateTime, TimeZone, Utc};
use cloudsentinel_core::Level;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter, types::Value};

use crate::*;

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
];

const DELIVERY_COLUMNS: &str = "id, sink, alert_id, change, payload, status, attempts, created, \
     next_attempt, last_attempt, last_error, sent, latency_ms";

fn delivery_row(r: &Row<'_>) -> rusqlite::Result<DeliveryRecord> {
    let status: String = r.get(5)?;
    Ok(DeliveryRecord {
        id: r.get(0)?,
        sink: r.get(1)?,
        alert_id: r.get(2)?,
        change: r.get(3)?,
        payload: r.get(4)?,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Dead),
        attempts: r.get::<_, i64>(6)? as u32,
        created: time(r.get(7)?),
        next_attempt: time(r.get(8)?),
        last_attempt: r.get::<_, Option<i64>>(9)?.map(time),
        last_error: r.get(10)?,
        sent: r.get::<_, Option<i64>>(11)?.map(time),
        latency_ms: r.get(12)?,
    })
}

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
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    available: Condvar,
    /// Tells the checkpoint thread to stop.
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

/// FNV-1a, 64 bits: a stable hash for index keys (stored, so it must never change).
pub(crate) fn key_hash(s: &str) -> i64 {
    cloudsentinel_core::hash::fnv1a(s.as_bytes()) as i64
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

fn level_num(l: Level) -> i64 {
    l as i64
}

fn level_of(n: i64) -> Level {
    Level::ALL
        .get(n.clamp(0, 4) as usize)
        .copied()
        .unwrap_or(Level::Informational)
}

fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

fn list_of(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

const ALERT_COLUMNS: &str = "id, kind, rule_id, title, level, techniques, tactics, entity, account, \
    access_key, source_ip, first_seen, last_seen, created, updated, count, event_ids, explanation, \
    status, assignee, incident_id, verdict, tp_score";

fn alert_row(r: &Row<'_>) -> rusqlite::Result<AlertRecord> {
    Ok(AlertRecord {
        id: r.get(0)?,
        kind: r.get(1)?,
        rule_id: r.get(2)?,
        title: r.get(3)?,
        level: level_of(r.get(4)?),
        techniques: list_of(&r.get::<_, String>(5)?),
        tactics: list_of(&r.get::<_, String>(6)?),
        entity: r.get(7)?,
        account: r.get(8)?,
        access_key: r.get(9)?,
        source_ip: r.get(10)?,
        first_seen: time(r.get(11)?),
        last_seen: time(r.get(12)?),
        created: time(r.get(13)?),
        updated: time(r.get(14)?),
        count: r.get::<_, i64>(15)? as u64,
        event_ids: list_of(&r.get::<_, String>(16)?),
        explanation: r.get(17)?,
        status: AlertStatus::parse(&r.get::<_, String>(18)?).unwrap_or(AlertStatus::Open),
        assignee: r.get(19)?,
        incident_id: r.get(20)?,
        verdict: r
            .get::<_, Option<String>>(21)?
            .and_then(|v| Verdict::parse(&v)),
        tp_score: r.get(22)?,
    })
}

const MODEL_COLUMNS: &str = "id, name, version, schema, status, progress, message, created, \
    finished, trained_by, window_from, window_to, samples, metrics, params, active, activated";

fn model_row(r: &Row<'_>) -> rusqlite::Result<ModelRecord> {
    let json = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
    Ok(ModelRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        version: r.get(2)?,
        schema: r.get::<_, i64>(3)? as u32,
        status: r.get(4)?,
        progress: r.get(5)?,
        message: r.get(6)?,
        created: time(r.get(7)?),
        finished: r.get::<_, Option<i64>>(8)?.map(time),
        trained_by: r.get(9)?,
        window_from: r.get::<_, Option<i64>>(10)?.map(time),
        window_to: r.get::<_, Option<i64>>(11)?.map(time),
        samples: r.get::<_, i64>(12)? as u64,
        metrics: json(r.get(13)?),
        params: json(r.get(14)?),
        active: r.get::<_, i64>(15)? != 0,
        activated: r.get::<_, Option<i64>>(16)?.map(time),
        artefact: None,
    })
}

const INCIDENT_COLUMNS: &str = "id, key, entity, account, title, level, status, first_seen, \
    last_seen, created, updated, alert_count, tactics, techniques, assignee, severity, close_reason, \
    join_keys";

fn incident_row(r: &Row<'_>) -> rusqlite::Result<IncidentRecord> {
    Ok(IncidentRecord {
        id: r.get(0)?,
        key: r.get(1)?,
        entity: r.get(2)?,
        account: r.get(3)?,
        title: r.get(4)?,
        level: level_of(r.get(5)?),
        status: AlertStatus::parse(&r.get::<_, String>(6)?).unwrap_or(AlertStatus::Open),
        first_seen: time(r.get(7)?),
        last_seen: time(r.get(8)?),
        created: time(r.get(9)?),
        updated: time(r.get(10)?),
        alert_count: r.get::<_, i64>(11)? as u64,
        tactics: list_of(&r.get::<_, String>(12)?),
        techniques: list_of(&r.get::<_, String>(13)?),
        assignee: r.get(14)?,
        severity: r.get::<_, Option<i64>>(15)?.map(level_of),
        close_reason: r.get(16)?,
        join_keys: r
            .get::<_, Option<String>>(17)?
            .map(|t| list_of(&t))
            .unwrap_or_default(),
    })
}

const EVENT_COLUMNS: &str = "id, time, ingested, provider, kind, account, region, principal, \
    actor_name, access_key, source_ip, user_agent, service, operation, read_only, success, \
    error_code, block, block_idx";

fn event_row(r: &Row<'_>) -> rusqlite::Result<(EventRow, i64, i64)> {
    Ok((
        EventRow {
            id: r.get(0)?,
            time: time(r.get(1)?),
            ingested: time(r.get(2)?),
            provider: r.get(3)?,
            kind: r.get(4)?,
            account: r.get(5)?,
            region: r.get(6)?,
            principal: r.get(7)?,
            actor_name: r.get(8)?,
            access_key: r.get(9)?,
            source_ip: r.get(10)?,
            user_agent: r.get(11)?,
            service: r.get(12)?,
            operation: r.get(13)?,
            read_only: r.get::<_, Option<i64>>(14)?.map(|v| v != 0),
            success: r.get::<_, i64>(15)? != 0,
            error_code: r.get(16)?,
            raw: None,
        },
        r.get(17)?,
        r.get(18)?,
    ))
}

const USER_COLUMNS: &str =
    "id, username, password_hash, role, created, disabled, token_version, token_secret";

fn user_row(r: &Row<'_>) -> rusqlite::Result<UserRecord> {
    Ok(UserRecord {
        id: r.get(0)?,
        username: r.get(1)?,
        password_hash: r.get(2)?,
        role: r.get(3)?,
        created: time(r.get(4)?),
        disabled: r.get::<_, i64>(5)? != 0,
        token_version: r.get(6)?,
        token_secret: r.get(7)?,
    })
}

const KEY_COLUMNS: &str =
    "id, name, prefix, key_hash, role, created_by, created, last_used, revoked";

fn key_row(r: &Row<'_>) -> rusqlite::Result<ApiKeyRecord> {
    Ok(ApiKeyRecord {
        id: r.get(0)?,
        name: r.get(1)?,
        prefix: r.get(2)?,
        key_hash: r.get(3)?,
        role: r.get(4)?,
        created_by: r.get(5)?,
        created: time(r.get(6)?),
        last_used: r.get::<_, Option<i64>>(7)?.map(time),
        revoked: r.get::<_, i64>(8)? != 0,
    })
}

const AUDIT_COLUMNS: &str = "seq, time, actor, action, target, detail, source_ip, prev_hash, hash";

fn audit_row(r: &Row<'_>) -> rusqlite::Result<AuditRecord> {
    Ok(AuditRecord {
        seq: r.get(0)?,
        time: time(r.get(1)?),
        actor: r.get(2)?,
        action: r.get(3)?,
        target: r.get(4)?,
        detail: r.get(5)?,
        source_ip: r.get(6)?,
        prev_hash: r.get(7)?,
        hash: r.get(8)?,
    })
}

const FEEDBACK_COLUMNS: &str = "id, alert_id, verdict, reason, author, time, rule_id, entity";

fn feedback_row(r: &Row<'_>) -> rusqlite::Result<FeedbackRecord> {
    Ok(FeedbackRecord {
        id: r.get(0)?,
        alert_id: r.get(1)?,
        verdict: Verdict::parse(&r.get::<_, String>(2)?).unwrap_or(Verdict::Benign),
        reason: r.get(3)?,
        author: r.get(4)?,
        time: time(r.get(5)?),
        rule_id: r.get(6)?,
        entity: r.get(7)?,
    })
}

/// Packs records into one block: for each, its length (u32, little endian) then its bytes.
fn pack_block(records: &[&str]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(records.iter().map(|r| r.len() + 4).sum());
    for r in records {
        plain.extend_from_slice(&(r.len() as u32).to_le_bytes());
        plain.extend_from_slice(r.as_bytes());
    }
    lz4_flex::compress_prepend_size(&plain)
}

fn unpack_block(data: &[u8]) -> Result<Vec<String>> {
    let plain = lz4_flex::decompress_size_prepended(data)
        .map_err(|e| StoreError::Corrupt(format!("raw block: {e}")))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 4 <= plain.len() {
        let len = u32::from_le_bytes(plain[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 4;
        let Some(bytes) = plain.get(at..at + len) else {
            return Err(StoreError::Corrupt("raw block: truncated record".into()));
        };
        out.push(String::from_utf8_lossy(bytes).into_owned());
        at += len;
    }
    Ok(out)
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
        Ok(SqliteStore {
            writer: Mutex::new(writer),
            readers: Mutex::new(readers),
            available: Condvar::new(),
            stop,
        })
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

impl Store for SqliteStore {
    fn commit(
        &self,
        events: &[NewEvent],
        derive: &mut dyn FnMut(&[bool]) -> Derived,
    ) -> Result<CommitOutcome> {
        let now = ms(Utc::now());
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let mut outcome = CommitOutcome::default();
        let mut fresh = Vec::with_capacity(events.len());
        if !events.is_empty() {
            let records: Vec<&str> = events.iter().map(|e| e.raw.as_str()).collect();
            let max_time = events.iter().map(|e| ms(e.time)).max().unwrap_or(now);
            tx.execute(
                "INSERT INTO raw_blocks (max_time, codec, data) VALUES (?1, 'lz4', ?2)",
                params![max_time, pack_block(&records)],
            )?;
            let block = tx.last_insert_rowid();
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO events (id, time, ingested, provider, kind, account, region, \
                 principal, actor_name, access_key, source_ip, user_agent, service, operation, \
                 read_only, success, error_code, block, block_idx, id_hash, principal_hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
            )?;
            for (i, e) in events.iter().enumerate() {
                let n = stmt.execute(params![
                    e.id,
                    ms(e.time),
                    now,
                    e.provider,
                    e.kind,
                    e.account,
                    e.region,
                    e.principal,
                    e.actor_name,
                    e.access_key,
                    e.source_ip,
                    e.user_agent,
                    e.service,
                    e.operation,
                    e.read_only,
                    e.success,
                    e.error_code,
                    block,
                    i as i64,
                    key_hash(&e.id),
                    key_hash(&e.principal),
                ])?;
                if n == 1 {
                    outcome.inserted += 1;
                } else {
                    outcome.duplicates += 1;
                }
                fresh.push(n == 1);
            }
        }
        let batch = derive(&fresh);
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO alerts (id, kind, rule_id, title, level, techniques, tactics, entity, \
                 account, access_key, source_ip, first_seen, last_seen, created, updated, count, \
                 event_ids, explanation, status, assignee, incident_id, verdict, tp_score) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23) \
                 ON CONFLICT(id) DO UPDATE SET first_seen = excluded.first_seen, \
                 last_seen = excluded.last_seen, updated = excluded.updated, count = excluded.count, \
                 event_ids = excluded.event_ids, explanation = excluded.explanation, \
                 incident_id = excluded.incident_id, \
                 tp_score = COALESCE(excluded.tp_score, alerts.tp_score)",
            )?;
            for a in &batch.alerts {
                stmt.execute(params![
                    a.id,
                    a.kind,
                    a.rule_id,
                    a.title,
                    level_num(a.level),
                    json_list(&a.techniques),
                    json_list(&a.tactics),
                    a.entity,
                    a.account,
                    a.access_key,
                    a.source_ip,
                    ms(a.first_seen),
                    ms(a.last_seen),
                    ms(a.created),
                    ms(a.updated),
                    a.count as i64,
                    json_list(&a.event_ids),
                    a.explanation,
                    a.status.as_str(),
                    a.assignee,
                    a.incident_id,
                    a.verdict.map(Verdict::as_str),
                    a.tp_score,
                ])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO alert_features (alert_id, schema, features, anomaly_score) \
                 VALUES (?1, ?2, ?3, ?4)",
            )?;
            for f in &batch.features {
                stmt.execute(params![
                    f.alert_id,
                    f.schema as i64,
                    serde_json::to_string(&f.values).unwrap_or_default(),
                    f.anomaly_score,
                ])?;
            }
        }
        {
            let mut stmt = tx.prepare_cached(
                "INSERT INTO incidents (id, key, entity, account, title, level, status, first_seen, \
                 last_seen, created, updated, alert_count, tactics, techniques, join_keys) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15) \
                 ON CONFLICT(id) DO UPDATE SET title = excluded.title, level = excluded.level, \
                 first_seen = excluded.first_seen, last_seen = excluded.last_seen, \
                 updated = excluded.updated, alert_count = excluded.alert_count, \
                 tactics = excluded.tactics, techniques = excluded.techniques, \
                 join_keys = excluded.join_keys",
            )?;
            for i in &batch.incidents {
                stmt.execute(params![
                    i.id,
                    i.key,
                    i.entity,
                    i.account,
                    i.title,
                    level_num(i.level),
                    i.status.as_str(),
                    ms(i.first_seen),
                    ms(i.last_seen),
                    ms(i.created),
                    ms(i.updated),
                    i.alert_count as i64,
                    json_list(&i.tactics),
                    json_list(&i.techniques),
                    json_list(&i.join_keys),
                ])?;
            }
        }
        insert_deliveries(&tx, &batch.deliveries, ms(Utc::now()))?;
        tx.commit()?;
        Ok(outcome)
    }

    fn recent_alerts(&self, since: DateTime<Utc>) -> Result<Vec<AlertRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts WHERE last_seen >= ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![ms(since)], alert_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn recent_incidents(&self, since: DateTime<Utc>) -> Result<Vec<IncidentRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents WHERE last_seen >= ?1 ORDER BY id"
        ))?;
        let rows = stmt.query_map(params![ms(since)], incident_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn max_ids(&self) -> Result<(i64, i64)> {
        let conn = self.read();
        let a = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM alerts", [], |r| r.get(0))?;
        let i = conn.query_row("SELECT COALESCE(MAX(id), 0) FROM incidents", [], |r| {
            r.get(0)
        })?;
        Ok((a, i))
    }

    fn purge_events(&self, before: DateTime<Utc>) -> Result<u64> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let n = tx.execute("DELETE FROM events WHERE time < ?1", params![ms(before)])?;
        tx.execute(
            "DELETE FROM raw_blocks WHERE max_time < ?1",
            params![ms(before)],
        )?;
        tx.commit()?;
        Ok(n as u64)
    }

    fn events(&self, q: &EventQuery) -> Result<Page<EventRow>> {
        let mut f = Filter::default();
        if let Some(t) = q.since {
            f.add("time >= ?", Value::Integer(ms(t)));
        }
        if let Some(t) = q.until {
            f.add("time < ?", Value::Integer(ms(t)));
        }
        if let Some(p) = &q.principal {
            f.add("principal_hash = ?", Value::Integer(key_hash(p)));
            f.add("principal = ?", text(p));
        }
        if let Some(a) = &q.account {
            f.add("account = ?", text(a));
        }
        if let Some(ip) = &q.source_ip {
            f.add("source_ip = ?", text(ip));
        }
        if let Some(s) = &q.service {
            f.add("service = ?", text(s));
        }
        if let Some(o) = &q.operation {
            f.add("operation = ?", text(o));
        }
        if let Some(s) = q.success {
            f.add("success = ?", Value::Integer(s as i64));
        }
        if let Some(t) = &q.text {
            f.params.push(Value::Text(escape_like(t)));
            let n = f.params.len();
            f.params.push(Value::Text(t.clone()));
            let exact = f.params.len();
            f.clauses.push(format!(
                "(operation LIKE ?{n} ESCAPE '\\' OR principal LIKE ?{n} ESCAPE '\\' \
                 OR source_ip LIKE ?{n} ESCAPE '\\' OR error_code LIKE ?{n} ESCAPE '\\' \
                 OR user_agent LIKE ?{n} ESCAPE '\\' OR id = ?{exact})"
            ));
        }
        let conn = self.read();
        let where_ = f.sql();
        // Counting a large match exactly would scan it; past this many the total is a floor.
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM (SELECT 1 FROM events{where_} LIMIT 100000)"),
            params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let limit = q.limit.clamp(1, 1000);
        let mut stmt = conn.prepare(&format!(
            "SELECT {EVENT_COLUMNS} FROM events{where_} ORDER BY time DESC, seq DESC LIMIT {limit} OFFSET {}",
            q.offset
        ))?;
        let mut rows: Vec<(EventRow, i64, i64)> = stmt
            .query_map(params_from_iter(f.params.iter()), event_row)?
            .collect::<rusqlite::Result<_>>()?;
        if q.with_raw {
            self.attach_raw(&conn, &mut rows)?;
        }
        Ok(Page {
            total: total as u64,
            items: rows.into_iter().map(|r| r.0).collect(),
        })
    }

    fn events_by_id(
        &self,
        ids: &[String],
        within: (DateTime<Utc>, DateTime<Utc>),
        with_raw: bool,
    ) -> Result<Vec<EventRow>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {EVENT_COLUMNS} FROM events \
             WHERE time >= ?1 AND time <= ?2 AND id_hash = ?3 AND id = ?4"
        ))?;
        let mut rows = Vec::new();
        for id in ids {
            if let Some(r) = stmt
                .query_row(
                    params![ms(within.0), ms(within.1), key_hash(id), id],
                    event_row,
                )
                .optional()?
            {
                rows.push(r);
            }
        }
        if with_raw {
            self.attach_raw(&conn, &mut rows)?;
        }
        Ok(rows.into_iter().map(|r| r.0).collect())
    }

    fn alerts(&self, q: &AlertQuery) -> Result<Page<AlertRecord>> {
        let mut f = Filter::default();
        if let Some(l) = q.min_level {
            f.add("level >= ?", Value::Integer(level_num(l)));
        }
        if !q.levels.is_empty() {
            let list: Vec<String> = q.levels.iter().map(|l| level_num(*l).to_string()).collect();
            f.clauses.push(format!("level IN ({})", list.join(",")));
        }
        if !q.statuses.is_empty() {
            let list: Vec<String> = q
                .statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            f.clauses.push(format!("status IN ({})", list.join(",")));
        }
        if let Some(k) = &q.kind {
            f.add("kind = ?", text(k));
        }
        if let Some(r) = &q.rule_id {
            f.add("rule_id = ?", text(r));
        }
        if let Some(t) = &q.technique {
            // Sub-techniques count for their parent: T1078 finds T1078.004.
            f.params
                .push(Value::Text(format!("\"{}\"", t.to_ascii_uppercase())));
            let exact = f.params.len();
            f.params
                .push(Value::Text(format!("\"{}.", t.to_ascii_uppercase())));
            let parent = f.params.len();
            f.clauses.push(format!(
                "(instr(techniques, ?{exact}) > 0 OR instr(techniques, ?{parent}) > 0)"
            ));
        }
        if let Some(p) = &q.principal {
            f.add("entity = ?", text(p));
        }
        if let Some(a) = &q.account {
            f.add("account = ?", text(a));
        }
        if let Some(i) = q.incident_id {
            f.add("incident_id = ?", Value::Integer(i));
        }
        if let Some(t) = q.since {
            f.add("last_seen >= ?", Value::Integer(ms(t)));
        }
        if let Some(t) = q.until {
            f.add("first_seen < ?", Value::Integer(ms(t)));
        }
        if let Some(t) = &q.text {
            f.params.push(Value::Text(escape_like(t)));
            let n = f.params.len();
            f.clauses.push(format!(
                "(title LIKE ?{n} ESCAPE '\\' OR rule_id LIKE ?{n} ESCAPE '\\' \
                 OR entity LIKE ?{n} ESCAPE '\\' OR explanation LIKE ?{n} ESCAPE '\\' \
                 OR account LIKE ?{n} ESCAPE '\\')"
            ));
        }
        let where_ = f.sql();
        let order = match q.sort {
            AlertSort::LastSeen => "last_seen",
            AlertSort::FirstSeen => "first_seen",
            AlertSort::Level => "level",
            AlertSort::Count => "count",
            AlertSort::Id => "id",
            AlertSort::TpScore => "COALESCE(tp_score, -1)",
        };
        let dir = if q.descending { "DESC" } else { "ASC" };
        let conn = self.read();
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM alerts{where_}"),
            params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let limit = q.limit.clamp(1, 1000);
        let mut stmt = conn.prepare(&format!(
            "SELECT {ALERT_COLUMNS} FROM alerts{where_} ORDER BY {order} {dir}, id {dir} LIMIT {limit} OFFSET {}",
            q.offset
        ))?;
        let items = stmt
            .query_map(params_from_iter(f.params.iter()), alert_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn alert(&self, id: i64) -> Result<Option<AlertRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()?)
    }

    fn update_alert(
        &self,
        id: i64,
        status: Option<AlertStatus>,
        assignee: Option<Option<String>>,
        deliveries: &[NewDelivery],
    ) -> Result<Option<AlertRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let now = ms(Utc::now());
        let before: Option<String> = tx
            .query_row(
                "SELECT status FROM alerts WHERE id = ?1",
                params![id],
                |r| r.get(0),
            )
            .optional()?;
        let Some(before) = before else {
            return Ok(None);
        };
        if let Some(s) = status {
            tx.execute(
                "UPDATE alerts SET status = ?2, updated = ?3 WHERE id = ?1",
                params![id, s.as_str(), now],
            )?;
            if s.as_str() != before {
                insert_deliveries(&tx, deliveries, now)?;
            }
        }
        if let Some(a) = assignee {
            tx.execute(
                "UPDATE alerts SET assignee = ?2, updated = ?3 WHERE id = ?1",
                params![id, a, now],
            )?;
        }
        let after = tx
            .query_row(
                &format!("SELECT {ALERT_COLUMNS} FROM alerts WHERE id = ?1"),
                params![id],
                alert_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(after)
    }

    fn add_comment(&self, alert_id: i64, author: &str, body: &str) -> Result<CommentRecord> {
        let conn = self.write();
        let now = Utc::now();
        conn.execute(
            "INSERT INTO comments (alert_id, author, time, text) VALUES (?1, ?2, ?3, ?4)",
            params![alert_id, author, ms(now), body],
        )?;
        Ok(CommentRecord {
            id: conn.last_insert_rowid(),
            alert_id,
            author: author.to_string(),
            time: time(ms(now)),
            text: body.to_string(),
        })
    }

    fn comments(&self, alert_id: i64) -> Result<Vec<CommentRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, alert_id, author, time, text FROM comments WHERE alert_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![alert_id], |r| {
            Ok(CommentRecord {
                id: r.get(0)?,
                alert_id: r.get(1)?,
                author: r.get(2)?,
                time: time(r.get(3)?),
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_feedback(
        &self,
        alert_id: i64,
        verdict: Verdict,
        reason: &str,
        author: &str,
    ) -> Result<Option<FeedbackRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let Some((rule_id, entity)) = tx
            .query_row(
                "SELECT rule_id, entity FROM alerts WHERE id = ?1",
                params![alert_id],
                |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)),
            )
            .optional()?
        else {
            return Ok(None);
        };
        let now = ms(Utc::now());
        tx.execute(
            "INSERT INTO feedback (alert_id, verdict, reason, author, time, rule_id, entity) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                alert_id,
                verdict.as_str(),
                reason,
                author,
                now,
                rule_id,
                entity
            ],
        )?;
        let id = tx.last_insert_rowid();
        tx.execute(
            "UPDATE alerts SET verdict = ?2, updated = ?3 WHERE id = ?1",
            params![alert_id, verdict.as_str(), now],
        )?;
        tx.commit()?;
        Ok(Some(FeedbackRecord {
            id,
            alert_id,
            verdict,
            reason: reason.to_string(),
            author: author.to_string(),
            time: time(now),
            rule_id,
            entity,
        }))
    }

    fn feedback(&self, alert_id: Option<i64>) -> Result<Vec<FeedbackRecord>> {
        let conn = self.read();
        let rows = match alert_id {
            Some(a) => {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM feedback WHERE alert_id = ?1 ORDER BY id"
                ))?;
                stmt.query_map(params![a], feedback_row)?
                    .collect::<rusqlite::Result<_>>()?
            }
            None => {
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {FEEDBACK_COLUMNS} FROM feedback ORDER BY id"
                ))?;
                stmt.query_map([], feedback_row)?
                    .collect::<rusqlite::Result<_>>()?
            }
        };
        Ok(rows)
    }

    fn incidents(
        &self,
        statuses: &[AlertStatus],
        limit: u32,
        offset: u64,
    ) -> Result<Page<IncidentRecord>> {
        let where_ = if statuses.is_empty() {
            String::new()
        } else {
            let list: Vec<String> = statuses
                .iter()
                .map(|s| format!("'{}'", s.as_str()))
                .collect();
            format!(" WHERE status IN ({})", list.join(","))
        };
        let conn = self.read();
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM incidents{where_}"),
            [],
            |r| r.get(0),
        )?;
        let mut stmt = conn.prepare(&format!(
            "SELECT {INCIDENT_COLUMNS} FROM incidents{where_} ORDER BY last_seen DESC, id DESC LIMIT {} OFFSET {offset}",
            limit.clamp(1, 1000)
        ))?;
        let items = stmt
            .query_map([], incident_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn incident(&self, id: i64) -> Result<Option<IncidentRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                params![id],
                incident_row,
            )
            .optional()?)
    }

    fn actor_names(
        &self,
        principals: &[String],
    ) -> Result<std::collections::HashMap<String, String>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT actor_name FROM events WHERE principal_hash = ?1 AND principal = ?2 \
             AND actor_name IS NOT NULL AND actor_name <> principal ORDER BY time DESC LIMIT 1",
        )?;
        let mut out = std::collections::HashMap::new();
        for p in principals.iter().take(100) {
            if out.contains_key(p) {
                continue;
            }
            if let Some(name) = stmt
                .query_row(params![key_hash(p), p], |r| r.get::<_, String>(0))
                .optional()?
            {
                out.insert(p.clone(), name);
            }
        }
        Ok(out)
    }

    fn update_incident(&self, id: i64, u: &IncidentUpdate) -> Result<Option<IncidentRecord>> {
        let conn = self.write();
        let tx = conn.unchecked_transaction()?;
        let now = ms(Utc::now());
        if let Some(status) = u.status {
            let before: Option<String> = tx
                .query_row(
                    "SELECT status FROM incidents WHERE id = ?1",
                    params![id],
                    |r| r.get(0),
                )
                .optional()?;
            tx.execute(
                "UPDATE incidents SET status = ?2, updated = ?3 WHERE id = ?1",
                params![id, status.as_str(), now],
            )?;
            if before.is_some_and(|b| b != status.as_str()) {
                insert_deliveries(&tx, &u.deliveries, now)?;
            }
        }
        if let Some(assignee) = &u.assignee {
            tx.execute(
                "UPDATE incidents SET assignee = ?2, updated = ?3 WHERE id = ?1",
                params![id, assignee, now],
            )?;
        }
        if let Some(severity) = &u.severity {
            tx.execute(
                "UPDATE incidents SET severity = ?2, updated = ?3 WHERE id = ?1",
                params![id, severity.map(level_num), now],
            )?;
        }
        if let Some(reason) = &u.close_reason {
            tx.execute(
                "UPDATE incidents SET close_reason = ?2, updated = ?3 WHERE id = ?1",
                params![id, reason, now],
            )?;
        }
        let row = tx
            .query_row(
                &format!("SELECT {INCIDENT_COLUMNS} FROM incidents WHERE id = ?1"),
                params![id],
                incident_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(row)
    }

    fn add_incident_comment(
        &self,
        incident_id: i64,
        author: &str,
        body: &str,
    ) -> Result<Option<IncidentComment>> {
        let conn = self.write();
        let exists: Option<i64> = conn
            .query_row(
                "SELECT id FROM incidents WHERE id = ?1",
                params![incident_id],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_none() {
            return Ok(None);
        }
        let now = Utc::now();
        conn.execute(
            "INSERT INTO incident_comments (incident_id, author, time, text) VALUES (?1, ?2, ?3, ?4)",
            params![incident_id, author, ms(now), body],
        )?;
        Ok(Some(IncidentComment {
            id: conn.last_insert_rowid(),
            incident_id,
            author: author.to_string(),
            time: time(ms(now)),
            text: body.to_string(),
        }))
    }

    fn incident_comments(&self, incident_id: i64) -> Result<Vec<IncidentComment>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, incident_id, author, time, text FROM incident_comments WHERE incident_id = ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![incident_id], |r| {
            Ok(IncidentComment {
                id: r.get(0)?,
                incident_id: r.get(1)?,
                author: r.get(2)?,
                time: time(r.get(3)?),
                text: r.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn add_suppression(
        &self,
        rule_id: &str,
        entity: &str,
        reason: &str,
        author: &str,
        expires: DateTime<Utc>,
    ) -> Result<SuppressionRecord> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        // Refuse to hide what an analyst confirmed as an attack.
        let confirmed: Option<i64> = tx
            .query_row(
                "SELECT id FROM alerts WHERE rule_id = ?1 AND entity = ?2 \
                 AND verdict = 'true_positive' LIMIT 1",
                params![rule_id, entity],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(id) = confirmed {
            return Err(StoreError::Conflict(format!(
                "alert {id} of rule {rule_id} about {entity} is marked true positive: \
                 a suppression would hide a confirmed attack"
            )));
        }
        let now = Utc::now();
        tx.execute(
            "INSERT INTO suppressions (rule_id, entity, reason, author, created, expires) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![rule_id, entity, reason, author, ms(now), ms(expires)],
        )?;
        let id = tx.last_insert_rowid();
        tx.commit()?;
        Ok(SuppressionRecord {
            id,
            rule_id: rule_id.to_string(),
            entity: entity.to_string(),
            reason: reason.to_string(),
            author: author.to_string(),
            created: time(ms(now)),
            expires: time(ms(expires)),
        })
    }

    fn suppressions(&self, now: DateTime<Utc>) -> Result<Vec<SuppressionRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT id, rule_id, entity, reason, author, created, expires FROM suppressions \
             WHERE expires > ?1 ORDER BY id",
        )?;
        let rows = stmt.query_map(params![ms(now)], |r| {
            Ok(SuppressionRecord {
                id: r.get(0)?,
                rule_id: r.get(1)?,
                entity: r.get(2)?,
                reason: r.get(3)?,
                author: r.get(4)?,
                created: time(r.get(5)?),
                expires: time(r.get(6)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn delete_suppression(&self, id: i64) -> Result<bool> {
        let conn = self.write();
        Ok(conn.execute("DELETE FROM suppressions WHERE id = ?1", params![id])? > 0)
    }

    fn stats(&self) -> Result<Stats> {
        let conn = self.read();
        let day_ago = ms(Utc::now()) - 86_400_000;
        let one = |sql: &str, p: &[&dyn rusqlite::ToSql]| -> Result<i64> {
            Ok(conn.query_row(sql, p, |r| r.get::<_, i64>(0))?)
        };
        // MAX(seq) counts events without scanning them (events are only deleted by retention,
        // which the second term accounts for).
        let events_total = one("SELECT COUNT(*) FROM events", &[])?;
        let mut by_level = Vec::new();
        {
            let mut stmt = conn.prepare_cached(
                "SELECT level, COUNT(*) FROM alerts GROUP BY level ORDER BY level DESC",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (l, n) = row?;
                by_level.push((level_of(l).as_str().to_string(), n as u64));
            }
        }
        let mut by_status = Vec::new();
        {
            let mut stmt =
                conn.prepare_cached("SELECT status, COUNT(*) FROM alerts GROUP BY status")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
            for row in rows {
                let (s, n) = row?;
                by_status.push((s, n as u64));
            }
        }
        let last_event: Option<i64> =
            conn.query_row("SELECT MAX(time) FROM events", [], |r| r.get(0))?;
        Ok(Stats {
            events_total: events_total as u64,
            alerts_total: one("SELECT COUNT(*) FROM alerts", &[])? as u64,
            incidents_total: one("SELECT COUNT(*) FROM incidents", &[])? as u64,
            open_incidents: one(
                "SELECT COUNT(*) FROM incidents WHERE status IN ('open','acknowledged','investigating')",
                &[],
            )? as u64,
            alerts_by_level: by_level,
            alerts_by_status: by_status,
            events_last_24h: one("SELECT COUNT(*) FROM events WHERE time >= ?1", &[&day_ago])?
                as u64,
            alerts_last_24h: one(
                "SELECT COUNT(*) FROM alerts WHERE last_seen >= ?1",
                &[&day_ago],
            )? as u64,
            last_event: last_event.map(time),
        })
    }

    fn trends(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<TrendPoint>> {
        let bucket = bucket_secs.clamp(60, 100 * 366 * 86_400) * 1000;
        let (from, to) = (ms(since), ms(until));
        let n = ((to - from) / bucket + 1).clamp(1, 2000) as usize;
        let mut points: Vec<TrendPoint> = (0..n)
            .map(|i| TrendPoint {
                start: time(from + i as i64 * bucket),
                events: 0,
                alerts: 0,
            })
            .collect();
        let conn = self.read();
        for (table, column, is_events) in
            [("events", "time", true), ("alerts", "first_seen", false)]
        {
            let mut stmt = conn.prepare(&format!(
                "SELECT ({column} - ?1) / ?3, COUNT(*) FROM {table} \
                 WHERE {column} >= ?1 AND {column} < ?2 GROUP BY 1"
            ))?;
            let rows = stmt.query_map(params![from, to, bucket], |r| {
                Ok((r.get::<_, i64>(0)?, r.get::<_, i64>(1)?))
            })?;
            for row in rows {
                let (i, c) = row?;
                if let Some(p) = points.get_mut(i.max(0) as usize) {
                    if is_events {
                        p.events = c as u64;
                    } else {
                        p.alerts = c as u64;
                    }
                }
            }
        }
        Ok(points)
    }

    fn top_rules(&self, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<RuleCount>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT rule_id, MAX(title), MAX(level), COUNT(*), SUM(count), MAX(last_seen) \
             FROM alerts WHERE last_seen >= ?1 GROUP BY rule_id \
             ORDER BY MAX(level) DESC, COUNT(*) DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(params![since.map(ms).unwrap_or(0), limit], |r| {
            Ok(RuleCount {
                rule_id: r.get(0)?,
                title: r.get(1)?,
                level: level_of(r.get(2)?),
                alerts: r.get::<_, i64>(3)? as u64,
                events: r.get::<_, i64>(4)? as u64,
                last_seen: time(r.get(5)?),
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn alert_top(
        &self,
        key: AlertKey,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<KeyCount>> {
        // The column names come from this match, never from input.
        let sql = match key {
            AlertKey::SourceIp | AlertKey::Entity | AlertKey::Account => {
                let col = match key {
                    AlertKey::SourceIp => "source_ip",
                    AlertKey::Entity => "entity",
                    _ => "account",
                };
                format!(
                    "SELECT {col}, COUNT(*) FROM alerts WHERE {col} IS NOT NULL AND last_seen >= ?1 \
                     GROUP BY {col} ORDER BY COUNT(*) DESC, {col} LIMIT ?2"
                )
            }
            AlertKey::Technique | AlertKey::Tactic => {
                let col = if key == AlertKey::Technique {
                    "techniques"
                } else {
                    "tactics"
                };
                format!(
                    "SELECT j.value, COUNT(*) FROM alerts, json_each(alerts.{col}) AS j \
                     WHERE alerts.last_seen >= ?1 GROUP BY j.value ORDER BY COUNT(*) DESC, j.value LIMIT ?2"
                )
            }
        };
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&sql)?;
        let rows = stmt.query_map(params![since.map(ms).unwrap_or(0), limit], |r| {
            Ok(KeyCount {
                key: r.get(0)?,
                count: r.get::<_, i64>(1)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<UserRecord> {
        let conn = self.write();
        let now = ms(Utc::now());
        // The secret only has to differ from every other user's (tokens are signed with the
        // server's key); SQLite's randomblob draws from the operating system's randomness.
        let n = conn.execute(
            "INSERT OR IGNORE INTO users (username, password_hash, role, created, token_secret) \
             VALUES (?1, ?2, ?3, ?4, lower(hex(randomblob(16))))",
            params![username, password_hash, role, now],
        )?;
        if n == 0 {
            return Err(StoreError::Conflict(format!(
                "a user named {username} already exists"
            )));
        }
        let id = conn.last_insert_rowid();
        Ok(conn.query_row(
            &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
            params![id],
            user_row,
        )?)
    }

    fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE username = ?1"),
                params![username],
                user_row,
            )
            .optional()?)
    }

    fn user(&self, id: i64) -> Result<Option<UserRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                params![id],
                user_row,
            )
            .optional()?)
    }

    fn users(&self) -> Result<Vec<UserRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id"))?;
        let rows = stmt.query_map([], user_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn count_users(&self) -> Result<u64> {
        let conn = self.read();
        Ok(conn.query_row("SELECT COUNT(*) FROM users", [], |r| r.get::<_, i64>(0))? as u64)
    }

    fn update_user(
        &self,
        id: i64,
        role: Option<&str>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<Option<UserRecord>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        if let Some(r) = role {
            tx.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![id, r])?;
        }
        if let Some(h) = password_hash {
            tx.execute(
                "UPDATE users SET password_hash = ?2 WHERE id = ?1",
                params![id, h],
            )?;
        }
        if let Some(d) = disabled {
            tx.execute(
                "UPDATE users SET disabled = ?2 WHERE id = ?1",
                params![id, d],
            )?;
        }
        tx.execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ?1",
            params![id],
        )?;
        let user = tx
            .query_row(
                &format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1"),
                params![id],
                user_row,
            )
            .optional()?;
        tx.commit()?;
        Ok(user)
    }

    fn bump_token_version(&self, id: i64) -> Result<()> {
        let conn = self.write();
        conn.execute(
            "UPDATE users SET token_version = token_version + 1 WHERE id = ?1",
            params![id],
        )?;
        Ok(())
    }

    fn delete_user(&self, id: i64) -> Result<bool> {
        let conn = self.write();
        Ok(conn.execute("DELETE FROM users WHERE id = ?1", params![id])? > 0)
    }

    fn create_api_key(
        &self,
        name: &str,
        prefix: &str,
        key_hash: &str,
        role: &str,
        created_by: &str,
    ) -> Result<ApiKeyRecord> {
        let conn = self.write();
        let now = ms(Utc::now());
        conn.execute(
            "INSERT INTO api_keys (name, prefix, key_hash, role, created_by, created) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![name, prefix, key_hash, role, created_by, now],
        )?;
        Ok(ApiKeyRecord {
            id: conn.last_insert_rowid(),
            name: name.to_string(),
            prefix: prefix.to_string(),
            key_hash: key_hash.to_string(),
            role: role.to_string(),
            created_by: created_by.to_string(),
            created: time(now),
            last_used: None,
            revoked: false,
        })
    }

    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?1"),
                params![key_hash],
                key_row,
            )
            .optional()?)
    }

    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare(&format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id"))?;
        let rows = stmt.query_map([], key_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn revoke_api_key(&self, id: i64) -> Result<bool> {
        let conn = self.write();
        Ok(conn.execute(
            "UPDATE api_keys SET revoked = 1 WHERE id = ?1 AND revoked = 0",
            params![id],
        )? > 0)
    }

    fn touch_api_key(&self, id: i64, when: DateTime<Utc>) -> Result<()> {
        let conn = self.write();
        conn.execute(
            "UPDATE api_keys SET last_used = ?2 WHERE id = ?1",
            params![id, ms(when)],
        )?;
        Ok(())
    }

    fn append_audit(
        &self,
        entry: NewAudit,
        chain: &dyn Fn(&str, i64, &NewAudit) -> String,
    ) -> Result<AuditRecord> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let last: Option<(i64, String)> = tx
            .query_row(
                "SELECT seq, hash FROM audit ORDER BY seq DESC LIMIT 1",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?;
        let (prev_seq, prev_hash) = last.unwrap_or((0, String::new()));
        let seq = prev_seq + 1;
        // Millisecond precision, as stored, so that verification recomputes the same hash.
        let entry = NewAudit {
            time: time(ms(entry.time)),
            ..entry
        };
        let hash = chain(&prev_hash, seq, &entry);
        tx.execute(
            "INSERT INTO audit (seq, time, actor, action, target, detail, source_ip, prev_hash, hash) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            params![
                seq,
                ms(entry.time),
                entry.actor,
                entry.action,
                entry.target,
                entry.detail,
                entry.source_ip,
                prev_hash,
                hash
            ],
        )?;
        tx.commit()?;
        Ok(AuditRecord {
            seq,
            time: entry.time,
            actor: entry.actor,
            action: entry.action,
            target: entry.target,
            detail: entry.detail,
            source_ip: entry.source_ip,
            prev_hash,
            hash,
        })
    }

    fn audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit WHERE seq > ?1 ORDER BY seq LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![after_seq, limit], audit_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn audit_page(&self, limit: u32, offset: u64) -> Result<Page<AuditRecord>> {
        let conn = self.read();
        let total: i64 = conn.query_row("SELECT COUNT(*) FROM audit", [], |r| r.get(0))?;
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {AUDIT_COLUMNS} FROM audit ORDER BY seq DESC LIMIT ?1 OFFSET ?2"
        ))?;
        let items = stmt
            .query_map(params![limit.clamp(1, 1000), offset as i64], audit_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn source_file_done(&self, path: &str, size: u64, mtime: i64) -> Result<bool> {
        let conn = self.read();
        Ok(conn
            .prepare_cached(
                "SELECT 1 FROM source_files WHERE path = ?1 AND size = ?2 AND mtime = ?3 AND done = 1",
            )?
            .exists(params![path, size as i64, mtime])?)
    }

    fn mark_source_file(&self, path: &str, size: u64, mtime: i64) -> Result<()> {
        let conn = self.write();
        conn.execute(
            "INSERT OR REPLACE INTO source_files (path, size, mtime, done) VALUES (?1, ?2, ?3, 1)",
            params![path, size as i64, mtime],
        )?;
        Ok(())
    }

    fn scan_events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<u64> {
        // Pages by (time, id_hash), the unique index, so that no read transaction stays open for long.
        let mut after = (since.map(ms).unwrap_or(i64::MIN), i64::MIN);
        let until = until.map(ms).unwrap_or(i64::MAX);
        let mut n = 0u64;
        loop {
            let page: Vec<(EventRow, i64)> = {
                let conn = self.read();
                let mut stmt = conn.prepare_cached(&format!(
                    "SELECT {EVENT_COLUMNS}, id_hash FROM events \
                     WHERE (time, id_hash) > (?1, ?2) AND time < ?3 \
                     ORDER BY time, id_hash LIMIT 5000"
                ))?;
                stmt.query_map(params![after.0, after.1, until], |r| {
                    Ok((event_row(r)?.0, r.get(19)?))
                })?
                .collect::<rusqlite::Result<_>>()?
            };
            if page.is_empty() {
                return Ok(n);
            }
            for (row, seq) in page {
                after = (ms(row.time), seq);
                n += 1;
                if !visit(row) {
                    return Ok(n);
                }
            }
        }
    }

    fn alert_features(&self, alert_ids: &[i64]) -> Result<Vec<AlertFeatures>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(
            "SELECT alert_id, schema, features, anomaly_score FROM alert_features WHERE alert_id = ?1",
        )?;
        let mut out = Vec::new();
        for id in alert_ids {
            if let Some(f) = stmt
                .query_row(params![id], |r| {
                    Ok(AlertFeatures {
                        alert_id: r.get(0)?,
                        schema: r.get::<_, i64>(1)? as u32,
                        values: serde_json::from_str(&r.get::<_, String>(2)?).unwrap_or_default(),
                        anomaly_score: r.get(3)?,
                    })
                })
                .optional()?
            {
                out.push(f);
            }
        }
        Ok(out)
    }

    fn set_tp_scores(&self, scores: &[(i64, f64)]) -> Result<()> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        {
            let mut stmt = tx.prepare_cached("UPDATE alerts SET tp_score = ?2 WHERE id = ?1")?;
            for (id, s) in scores {
                stmt.execute(params![id, s])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    fn create_model(&self, m: &NewModel) -> Result<ModelRecord> {
        let id = {
            let mut conn = self.write();
            let tx = conn.transaction()?;
            let version: i64 = tx.query_row(
                "SELECT COALESCE(MAX(version), 0) + 1 FROM models WHERE name = ?1",
                params![m.name],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO models (name, version, schema, status, created, trained_by, window_from, \
                 window_to, params) VALUES (?1, ?2, ?3, 'training', ?4, ?5, ?6, ?7, ?8)",
                params![
                    m.name,
                    version,
                    m.schema as i64,
                    ms(Utc::now()),
                    m.trained_by,
                    m.window_from.map(ms),
                    m.window_to.map(ms),
                    m.params.to_string(),
                ],
            )?;
            let id = tx.last_insert_rowid();
            tx.commit()?;
            id
        };
        self.model(id, false)?
            .ok_or_else(|| StoreError::Corrupt("a model vanished as it was created".into()))
    }

    fn model_progress(&self, id: i64, progress: f64, message: &str) -> Result<()> {
        self.write().execute(
            "UPDATE models SET progress = ?2, message = ?3 WHERE id = ?1",
            params![id, progress, message],
        )?;
        Ok(())
    }

    fn finish_model(&self, id: i64, r: &ModelResult) -> Result<()> {
        self.write().execute(
            "UPDATE models SET status = ?2, message = ?3, samples = ?4, metrics = ?5, artefact = ?6, \
             progress = 1, finished = ?7 WHERE id = ?1",
            params![
                id,
                r.status,
                r.message,
                r.samples as i64,
                r.metrics.to_string(),
                r.artefact,
                ms(Utc::now())
            ],
        )?;
        Ok(())
    }

    fn models(&self, name: Option<&str>) -> Result<Vec<ModelRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MODEL_COLUMNS} FROM models WHERE ?1 IS NULL OR name = ?1 ORDER BY id DESC"
        ))?;
        Ok(stmt
            .query_map(params![name], model_row)?
            .collect::<rusqlite::Result<_>>()?)
    }

    fn model(&self, id: i64, with_artefact: bool) -> Result<Option<ModelRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {MODEL_COLUMNS}, artefact FROM models WHERE id = ?1"
        ))?;
        Ok(stmt
            .query_row(params![id], |r| {
                let mut m = model_row(r)?;
                if with_artefact {
                    m.artefact = r.get(17)?;
                }
                Ok(m)
            })
            .optional()?)
    }

    fn activate_model(&self, id: i64) -> Result<Option<ModelRecord>> {
        {
            let mut conn = self.write();
            let tx = conn.transaction()?;
            let found: Option<(String, String)> = tx
                .query_row(
                    "SELECT name, status FROM models WHERE id = ?1",
                    params![id],
                    |r| Ok((r.get(0)?, r.get(1)?)),
                )
                .optional()?;
            let Some((name, status)) = found else {
                return Ok(None);
            };
            if status != "ready" {
                return Err(StoreError::Conflict(format!(
                    "model {id} is {status}: only a ready model can be activated"
                )));
            }
            tx.execute(
                "UPDATE models SET active = 0 WHERE name = ?1",
                params![name],
            )?;
            tx.execute(
                "UPDATE models SET active = 1, activated = ?2 WHERE id = ?1",
                params![id, ms(Utc::now())],
            )?;
            tx.commit()?;
        }
        self.model(id, true)
    }

    fn deactivate_models(&self, name: &str) -> Result<()> {
        self.write().execute(
            "UPDATE models SET active = 0 WHERE name = ?1",
            params![name],
        )?;
        Ok(())
    }

    fn active_model(&self, name: &str) -> Result<Option<ModelRecord>> {
        let id: Option<i64> = self
            .read()
            .query_row(
                "SELECT id FROM models WHERE name = ?1 AND active = 1",
                params![name],
                |r| r.get(0),
            )
            .optional()?;
        match id {
            Some(id) => self.model(id, true),
            None => Ok(None),
        }
    }

    fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<Vec<i64>> {
        let mut conn = self.write();
        let tx = conn.transaction()?;
        let ids = insert_deliveries(&tx, deliveries, ms(Utc::now()))?;
        tx.commit()?;
        Ok(ids)
    }

    fn pending_deliveries(&self, sink: &str, limit: u32) -> Result<Vec<DeliveryRecord>> {
        let conn = self.read();
        let mut stmt = conn.prepare_cached(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE sink = ?1 AND status = 'pending' \
             ORDER BY id LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![sink, limit.clamp(1, 1000)], delivery_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    fn record_delivery(&self, id: i64, at: DateTime<Utc>, result: &DeliveryResult) -> Result<()> {
        let conn = self.write();
        let at = ms(at);
        match result {
            DeliveryResult::Sent => conn.execute(
                "UPDATE deliveries SET status = 'sent', attempts = attempts + 1, last_attempt = ?2, \
                 sent = ?2, latency_ms = MAX(0, ?2 - created) WHERE id = ?1",
                params![id, at],
            )?,
            DeliveryResult::Retry {
                error,
                next_attempt,
            } => conn.execute(
                "UPDATE deliveries SET attempts = attempts + 1, last_attempt = ?2, last_error = ?3, \
                 last_failure = ?2, next_attempt = ?4 WHERE id = ?1",
                params![id, at, error, ms(*next_attempt)],
            )?,
            DeliveryResult::Dead { error } => conn.execute(
                "UPDATE deliveries SET status = 'dead', attempts = attempts + 1, last_attempt = ?2, \
                 last_error = ?3, last_failure = ?2 WHERE id = ?1",
                params![id, at, error],
            )?,
        };
        Ok(())
    }

    fn deliveries(&self, q: &DeliveryQuery) -> Result<Page<DeliveryRecord>> {
        let conn = self.read();
        let mut f = Filter::default();
        if let Some(s) = &q.sink {
            f.add("sink = ?", Value::Text(s.clone()));
        }
        if let Some(a) = q.alert_id {
            f.add("alert_id = ?", Value::Integer(a));
        }
        if let Some(s) = q.status {
            f.add("status = ?", Value::Text(s.as_str().to_string()));
        }
        let total: i64 = conn.query_row(
            &format!("SELECT COUNT(*) FROM deliveries{}", f.sql()),
            params_from_iter(f.params.iter()),
            |r| r.get(0),
        )?;
        let mut params = f.params.clone();
        params.push(Value::Integer(q.limit.clamp(1, 1000) as i64));
        params.push(Value::Integer(q.offset.min(i64::MAX as u64) as i64));
        let n = params.len();
        let mut stmt = conn.prepare(&format!(
            "SELECT {DELIVERY_COLUMNS} FROM deliveries{} ORDER BY id DESC LIMIT ?{} OFFSET ?{}",
            f.sql(),
            n - 1,
            n
        ))?;
        let items = stmt
            .query_map(params_from_iter(params.iter()), delivery_row)?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Page {
            total: total as u64,
            items,
        })
    }

    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>> {
        let conn = self.read();
        Ok(conn
            .query_row(
                &format!("SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE id = ?1"),
                params![id],
                delivery_row,
            )
            .optional()?)
    }

    fn delivery_summary(&self) -> Result<Vec<SinkSummary>> {
        let conn = self.read();
        let mut stmt = conn.prepare(
            "SELECT sink, \
               SUM(status = 'pending'), SUM(status = 'sent'), SUM(status = 'dead'), \
               SUM(attempts > 1), MAX(sent), \
               MAX(last_failure) \
             FROM deliveries GROUP BY sink ORDER BY sink",
        )?;
        let mut out: Vec<SinkSummary> = stmt
            .query_map([], |r| {
                Ok(SinkSummary {
                    sink: r.get(0)?,
                    pending: r.get::<_, i64>(1)? as u64,
                    sent: r.get::<_, i64>(2)? as u64,
                    dead: r.get::<_, i64>(3)? as u64,
                    retried: r.get::<_, i64>(4)? as u64,
                    last_success: r.get::<_, Option<i64>>(5)?.map(time),
                    last_failure: r.get::<_, Option<i64>>(6)?.map(time),
                    last_error: None,
                })
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut last = conn.prepare_cached(
            "SELECT last_error FROM deliveries WHERE sink = ?1 AND last_failure IS NOT NULL \
             ORDER BY last_failure DESC LIMIT 1",
        )?;
        for s in &mut out {
            s.last_error = last.query_row(params![s.sink], |r| r.get(0)).optional()?;
        }
        Ok(out)
    }

    fn put_state(&self, key: &str, value: &[u8]) -> Result<()> {
        self.write().execute(
            "INSERT OR REPLACE INTO state (key, value, updated) VALUES (?1, ?2, ?3)",
            params![key, value, ms(Utc::now())],
        )?;
        Ok(())
    }

    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>> {
        Ok(self
            .read()
            .query_row(
                "SELECT value FROM state WHERE key = ?1",
                params![key],
                |r| r.get(0),
            )
            .optional()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Commits events, then the given alerts, whatever is new.
    fn put(s: &SqliteStore, events: Vec<NewEvent>, alerts: Vec<AlertRecord>) -> CommitOutcome {
        let mut alerts = Some(alerts);
        s.commit(&events, &mut |_| Derived {
            alerts: alerts.take().unwrap_or_default(),
            ..Derived::default()
        })
        .unwrap()
    }

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let dir = tempfile::tempdir().unwrap();
        let s = SqliteStore::open(&dir.path().join("t.db"), &SqliteOptions::default()).unwrap();
        (dir, s)
    }

    fn event(id: &str, t: i64, principal: &str) -> NewEvent {
        NewEvent {
            id: id.into(),
            time: time(t),
            provider: "aws".into(),
            kind: "cloudtrail".into(),
            account: Some("111122223333".into()),
            region: Some("us-east-1".into()),
            principal: principal.into(),
            actor_name: None,
            access_key: None,
            source_ip: Some("198.51.100.7".into()),
            user_agent: None,
            service: "iam".into(),
            operation: "ListUsers".into(),
            read_only: Some(true),
            success: true,
            error_code: None,
            raw: format!("{{\"eventID\":\"{id}\",\"n\":{t}}}"),
        }
    }

    fn alert(id: i64, rule: &str, entity: &str, t: i64) -> AlertRecord {
        AlertRecord {
            id,
            kind: "rule".into(),
            rule_id: rule.into(),
            title: format!("title of {rule}"),
            level: Level::High,
            techniques: vec!["T1078.004".into()],
            tactics: vec!["initial-access".into()],
            entity: entity.into(),
            account: None,
            access_key: None,
            source_ip: Some("198.51.100.7".into()),
            first_seen: time(t),
            last_seen: time(t),
            created: time(t),
            updated: time(t),
            count: 1,
            event_ids: vec!["e1".into()],
            explanation: "because".into(),
            status: AlertStatus::Open,
            assignee: None,
            incident_id: None,
            verdict: None,
            tp_score: None,
        }
    }

    #[test]
    fn events_round_trip_with_their_raw_record_and_duplicates_are_ignored() {
        let (_d, s) = store();
        let out = put(
            &s,
            vec![event("e1", 1000, "alice"), event("e2", 2000, "bob")],
            vec![],
        );
        assert_eq!(
            out,
            CommitOutcome {
                inserted: 2,
                duplicates: 0
            }
        );
        let again = put(
            &s,
            vec![event("e2", 2000, "bob"), event("e3", 3000, "bob")],
            vec![],
        );
        assert_eq!(
            again,
            CommitOutcome {
                inserted: 1,
                duplicates: 1
            }
        );
        let got = s
            .events_by_id(&["e3".into(), "e1".into()], (time(0), time(5000)), true)
            .unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].raw.as_ref().unwrap()["n"], 3000);
        assert_eq!(got[1].raw.as_ref().unwrap()["eventID"], "e1");
        let page = s
            .events(&EventQuery {
                principal: Some("bob".into()),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items[0].id, "e3", "newest first");
        // Outside the time window, an id is not found.
        assert!(
            s.events_by_id(&["e1".into()], (time(1001), time(5000)), false)
                .unwrap()
                .is_empty()
        );
        // The commit tells which events were new.
        let mut seen = Vec::new();
        s.commit(
            &[event("e1", 1000, "alice"), event("e9", 9000, "bob")],
            &mut |f| {
                seen = f.to_vec();
                Derived::default()
            },
        )
        .unwrap();
        assert_eq!(seen, vec![false, true]);
    }

    #[test]
    fn an_object_id_is_named_by_its_latest_event_and_incidents_keep_their_analysts_work() {
        let (_d, s) = store();
        let oid = "33361d06-a301-4ece-a45e-d689386f7c4b";
        let mut old = event("e1", 1000, oid);
        old.actor_name = Some("old.name@corp.example".into());
        let mut new = event("e2", 2000, oid);
        new.actor_name = Some("svc-automation@corp.example".into());
        let mut unnamed = event("e3", 3000, oid);
        unnamed.actor_name = None;
        put(
            &s,
            vec![old, new, unnamed, event("e4", 1000, "alice")],
            vec![],
        );
        let names = s
            .actor_names(&[oid.to_string(), "alice".to_string(), "nobody".to_string()])
            .unwrap();
        assert_eq!(names.len(), 1, "{names:?}");
        assert_eq!(names[oid], "svc-automation@corp.example");

        // Incidents: the analyst's fields and notes, which a pipeline update leaves alone.
        let inc = IncidentRecord {
            id: 1,
            key: oid.into(),
            entity: oid.into(),
            account: None,
            title: "t".into(),
            level: Level::High,
            status: AlertStatus::Open,
            first_seen: time(1000),
            last_seen: time(2000),
            created: time(1000),
            updated: time(1000),
            alert_count: 1,
            tactics: vec![],
            techniques: vec![],
            assignee: None,
            severity: None,
            close_reason: None,
            join_keys: vec!["ip:185.156.73.54".into()],
        };
        let batch = |i: &IncidentRecord| {
            s.commit(&[], &mut |_| Derived {
                incidents: vec![i.clone()],
                ..Derived::default()
            })
            .unwrap()
        };
        batch(&inc);
        let worked = s
            .update_incident(
                1,
                &IncidentUpdate {
                    status: Some(AlertStatus::Resolved),
                    assignee: Some(Some("kim".into())),
                    severity: Some(Some(Level::Critical)),
                    close_reason: Some(Some("contained".into())),
                    deliveries: vec![delivery("pager", 1, "resolved")],
                },
            )
            .unwrap()
            .unwrap();
        assert_eq!(worked.assignee.as_deref(), Some("kim"));
        assert_eq!(
            s.pending_deliveries("pager", 10).unwrap().len(),
            1,
            "the status message is queued with the status"
        );
        let mut later = inc.clone();
        later.alert_count = 3;
        batch(&later);
        let after = s.incident(1).unwrap().unwrap();
        assert_eq!(after.alert_count, 3);
        assert_eq!(after.status, AlertStatus::Resolved);
        assert_eq!(after.assignee.as_deref(), Some("kim"));
        assert_eq!(after.severity, Some(Level::Critical));
        assert_eq!(after.close_reason.as_deref(), Some("contained"));
        assert_eq!(after.join_keys, vec!["ip:185.156.73.54"]);
        assert!(s.add_incident_comment(1, "kim", "done").unwrap().is_some());
        assert!(
            s.add_incident_comment(99, "kim", "no such")
                .unwrap()
                .is_none()
        );
        assert_eq!(s.incident_comments(1).unwrap()[0].text, "done");
        assert!(
            s.update_incident(99, &IncidentUpdate::default())
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn pipeline_updates_keep_analyst_fields() {
        let (_d, s) = store();
        put(&s, vec![], vec![alert(1, "r1", "alice", 1000)]);
        s.update_alert(
            1,
            Some(AlertStatus::Investigating),
            Some(Some("carol".into())),
            &[],
        )
        .unwrap();
        let mut later = alert(1, "r1", "alice", 1000);
        later.count = 5;
        later.last_seen = time(9000);
        put(&s, vec![], vec![later]);
        let a = s.alert(1).unwrap().unwrap();
        assert_eq!(a.count, 5);
        assert_eq!(a.status, AlertStatus::Investigating);
        assert_eq!(a.assignee.as_deref(), Some("carol"));
    }

    fn delivery(sink: &str, alert_id: i64, change: &str) -> NewDelivery {
        NewDelivery {
            sink: sink.into(),
            alert_id: Some(alert_id),
            change: change.into(),
            payload: format!("{{\"alert\":{alert_id}}}"),
        }
    }

    #[test]
    fn the_outbox_is_written_with_its_alert_and_kept_in_order_per_sink() {
        let (_d, s) = store();
        s.commit(&[], &mut |_| Derived {
            alerts: vec![alert(1, "r1", "alice", 1000)],
            deliveries: vec![
                delivery("hook", 1, "created"),
                delivery("mail", 1, "created"),
            ],
            ..Derived::default()
        })
        .unwrap();
        // A status change queues its messages in the same transaction; the same status again
        // queues nothing.
        s.update_alert(
            1,
            Some(AlertStatus::Resolved),
            None,
            &[delivery("hook", 1, "resolved")],
        )
        .unwrap();
        s.update_alert(
            1,
            Some(AlertStatus::Resolved),
            None,
            &[delivery("hook", 1, "resolved")],
        )
        .unwrap();
        let hook = s.pending_deliveries("hook", 10).unwrap();
        assert_eq!(
            hook.iter().map(|d| d.change.as_str()).collect::<Vec<_>>(),
            ["created", "resolved"]
        );
        assert_eq!(hook[0].payload, "{\"alert\":1}");
        let t = Utc::now();
        s.record_delivery(
            hook[0].id,
            t,
            &DeliveryResult::Retry {
                error: "HTTP 503".into(),
                next_attempt: t + chrono::Duration::seconds(2),
            },
        )
        .unwrap();
        s.record_delivery(hook[0].id, t, &DeliveryResult::Sent)
            .unwrap();
        s.record_delivery(
            hook[1].id,
            t,
            &DeliveryResult::Dead {
                error: "HTTP 400".into(),
            },
        )
        .unwrap();
        assert!(s.pending_deliveries("hook", 10).unwrap().is_empty());
        let d = s.delivery(hook[0].id).unwrap().unwrap();
        assert_eq!((d.status, d.attempts), (DeliveryStatus::Sent, 2));
        assert!(d.latency_ms.is_some());
        let summary = s.delivery_summary().unwrap();
        let h = summary.iter().find(|x| x.sink == "hook").unwrap();
        assert_eq!((h.pending, h.sent, h.dead, h.retried), (0, 1, 1, 1));
        assert_eq!(h.last_error.as_deref(), Some("HTTP 400"));
        let m = summary.iter().find(|x| x.sink == "mail").unwrap();
        assert_eq!((m.pending, m.last_failure), (1, None));
        let page = s
            .deliveries(&DeliveryQuery {
                alert_id: Some(1),
                status: Some(DeliveryStatus::Dead),
                limit: 10,
                ..Default::default()
            })
            .unwrap();
        assert_eq!((page.total, page.items[0].change.as_str()), (1, "resolved"));
    }

    #[test]
    fn alert_filters_and_technique_parent_match() {
        let (_d, s) = store();
        let mut a2 = alert(2, "r2", "bob", 5000);
        a2.level = Level::Low;
        a2.techniques = vec!["T1098".into()];
        put(&s, vec![], vec![alert(1, "r1", "alice", 1000), a2]);
        let q = |f: &dyn Fn(&mut AlertQuery)| {
            let mut q = AlertQuery {
                limit: 50,
                ..Default::default()
            };
            f(&mut q);
            s.alerts(&q)
                .unwrap()
                .items
                .iter()
                .map(|a| a.id)
                .collect::<Vec<_>>()
        };
        assert_eq!(q(&|q| q.technique = Some("T1078".into())), vec![1]);
        assert_eq!(q(&|q| q.min_level = Some(Level::Medium)), vec![1]);
        assert_eq!(q(&|q| q.text = Some("BOB".into())), vec![2]);
        assert_eq!(q(&|q| q.text = Some("%".into())), Vec::<i64>::new());
        assert_eq!(
            q(&|q| {
                q.sort = AlertSort::LastSeen;
                q.descending = true
            }),
            vec![2, 1]
        );
    }

    #[test]
    fn suppression_of_a_confirmed_attack_is_refused() {
        let (_d, s) = store();
        put(&s, vec![], vec![alert(1, "r1", "alice", 1000)]);
        let later = Utc::now() + chrono::Duration::days(1);
        s.add_suppression("r1", "alice", "noisy", "ann", later)
            .unwrap();
        s.add_feedback(1, Verdict::TruePositive, "real", "ann")
            .unwrap();
        let err = s
            .add_suppression("r1", "alice", "noisy", "ann", later)
            .unwrap_err();
        assert!(matches!(err, StoreError::Conflict(_)), "{err}");
        assert_eq!(s.suppressions(Utc::now()).unwrap().len(), 1);
    }

    #[test]
    fn models_are_versioned_and_one_per_name_is_active() {
        let (_d, s) = store();
        let new = |name: &str| NewModel {
            name: name.into(),
            schema: 1,
            trained_by: "alice".into(),
            window_from: None,
            window_to: None,
            params: serde_json::json!({"trees": 100}),
        };
        let a1 = s.create_model(&new("anomaly")).unwrap();
        let a2 = s.create_model(&new("anomaly")).unwrap();
        let f1 = s.create_model(&new("feedback")).unwrap();
        assert_eq!((a1.version, a2.version, f1.version), (1, 2, 1));
        assert_eq!(a1.status, "training");
        // Not ready yet: refused.
        assert!(matches!(
            s.activate_model(a1.id),
            Err(StoreError::Conflict(_))
        ));
        s.model_progress(a1.id, 0.5, "halfway").unwrap();
        assert_eq!(s.model(a1.id, false).unwrap().unwrap().message, "halfway");
        for (id, bytes) in [(a1.id, b"one".to_vec()), (a2.id, b"two".to_vec())] {
            s.finish_model(
                id,
                &ModelResult {
                    status: "ready",
                    message: "done".into(),
                    samples: 10,
                    metrics: serde_json::json!({"threshold": 0.6}),
                    artefact: Some(bytes),
                },
            )
            .unwrap();
        }
        assert!(s.active_model("anomaly").unwrap().is_none());
        s.activate_model(a1.id).unwrap().unwrap();
        let on = s.activate_model(a2.id).unwrap().unwrap();
        assert_eq!(on.artefact.as_deref(), Some(&b"two"[..]));
        let active = s.active_model("anomaly").unwrap().unwrap();
        assert_eq!(active.id, a2.id);
        let all = s.models(Some("anomaly")).unwrap();
        assert_eq!(all.iter().filter(|m| m.active).count(), 1);
        assert!(
            all.iter().all(|m| m.artefact.is_none()),
            "lists carry no artefacts"
        );
        assert_eq!(all[0].metrics["threshold"], 0.6);
        assert_eq!(s.models(None).unwrap().len(), 3);
        s.deactivate_models("anomaly").unwrap();
        assert!(s.active_model("anomaly").unwrap().is_none());
        assert!(s.activate_model(9999).unwrap().is_none());
    }

    #[test]
    fn state_and_alert_features_round_trip() {
        let (_d, s) = store();
        assert!(s.get_state("baselines").unwrap().is_none());
        s.put_state("baselines", b"abc").unwrap();
        s.put_state("baselines", b"abcd").unwrap();
        assert_eq!(s.get_state("baselines").unwrap().unwrap(), b"abcd");
        let mut a = Some(vec![alert(1, "r", "e", 1_000)]);
        s.commit(&[], &mut |_| Derived {
            alerts: a.take().unwrap(),
            features: vec![AlertFeatures {
                alert_id: 1,
                schema: 1,
                values: vec![1.0, 0.5],
                anomaly_score: Some(0.7),
            }],
            ..Derived::default()
        })
        .unwrap();
        let f = s.alert_features(&[1, 2]).unwrap();
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].values, vec![1.0, 0.5]);
        assert_eq!(f[0].anomaly_score, Some(0.7));
        s.set_tp_scores(&[(1, 0.25)]).unwrap();
        assert_eq!(s.alert(1).unwrap().unwrap().tp_score, Some(0.25));
        // A pipeline update without a score keeps the one it has.
        put(&s, vec![], vec![alert(1, "r", "e", 2_000)]);
        assert_eq!(s.alert(1).unwrap().unwrap().tp_score, Some(0.25));
    }

    #[test]
    fn scan_visits_events_in_time_order_across_pages() {
        let (_d, s) = store();
        let events: Vec<NewEvent> = (0..12_000)
            .map(|i| event(&format!("e{i}"), 1_000_000 - (i % 7_000) * 10, "p"))
            .collect();
        put(&s, events, vec![]);
        let mut last = i64::MIN;
        let mut seen = std::collections::HashSet::new();
        let n = s
            .scan_events(None, None, &mut |e| {
                assert!(e.time.timestamp_millis() >= last);
                last = e.time.timestamp_millis();
                seen.insert(e.id);
                true
            })
            .unwrap();
        assert_eq!((n, seen.len()), (12_000, 12_000));
        let mut k = 0;
        s.scan_events(None, None, &mut |_| {
            k += 1;
            k < 10
        })
        .unwrap();
        assert_eq!(k, 10, "stops when asked");
    }

    #[test]
    fn migrations_apply_once() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("m.db");
        SqliteStore::open(&p, &SqliteOptions::default()).unwrap();
        let s = SqliteStore::open(&p, &SqliteOptions::default()).unwrap();
        let v: i64 = s
            .read()
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .unwrap();
        assert_eq!(v, MIGRATIONS.len() as i64);
    }

    #[test]
    fn retention_drops_old_events_and_their_blocks() {
        let (_d, s) = store();
        put(&s, vec![event("old", 1000, "a")], vec![]);
        put(&s, vec![event("new", 50_000, "a")], vec![]);
        assert_eq!(s.purge_events(time(10_000)).unwrap(), 1);
        let left = s
            .events(&EventQuery {
                limit: 10,
                with_raw: true,
                ..Default::default()
            })
            .unwrap();
        assert_eq!(left.items.len(), 1);
        assert!(left.items[0].raw.is_some());
    }
}
