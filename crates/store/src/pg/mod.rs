//! The scaled-out store: PostgreSQL, for several CloudSentinel processes sharing one state.
//!
//! It implements the same domain traits as the SQLite store and passes the same test suite
//! (`crate::suite`). The schema is versioned SQL files (`migrations/postgres/NNNN_name.sql`),
//! applied in order under an advisory lock, so processes starting together migrate once.
//!
//! - **Events** are partitioned by day of event time (`events_pYYYYMMDD`), their raw records kept
//!   in LZ4 blocks (one per commit and day) in `raw_blocks`, partitioned the same way. A day's
//!   partitions are created the first time one of its events arrives; days outside
//!   [`PARTITION_PAST_DAYS`]..[`PARTITION_FUTURE_DAYS`] of now go to a default partition, so a
//!   record with an absurd time cannot make thousands of tables. Retention drops whole days.
//! - **Batches** go in with one statement over arrays (`INSERT .. SELECT FROM unnest(..)`), which
//!   costs what COPY does and, unlike COPY, can skip events already stored (`ON CONFLICT DO
//!   NOTHING`).
//! - **Connections** come from a small pool. A connection the server closed (a restart) is
//!   dropped and the next call connects again; while the database cannot be reached calls fail
//!   with [`StoreError::Unavailable`], which the service answers with 503.

use std::collections::HashSet;
use std::sync::{Condvar, Mutex};
use std::time::Duration;

use chrono::Utc;
use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};

use crate::codec::*;
use crate::rows::{
    self, ALERT_COLUMNS, AUDIT_COLUMNS, DELIVERY_COLUMNS, EVENT_COLUMNS, FEEDBACK_COLUMNS,
    INCIDENT_COLUMNS, KEY_COLUMNS, MODEL_COLUMNS, RESPONSE_COLUMNS, USER_COLUMNS,
};
use crate::*;

mod accounts;
mod alerts;
mod audit;
mod events;
mod models;
mod outbox;
mod responses;

impl From<postgres::Error> for StoreError {
    fn from(e: postgres::Error) -> StoreError {
        match e.as_db_error() {
            // The server is shutting down, starting, or out of connections.
            Some(db)
                if matches!(
                    db.code().code(),
                    "57P01" | "57P02" | "57P03" | "53300" | "08006" | "08001"
                ) =>
            {
                StoreError::Unavailable(format!("postgres: {}", db.message()))
            }
            Some(db) => StoreError::Backend(format!(
                "postgres: {}{}",
                db.message(),
                db.detail().map(|d| format!(" ({d})")).unwrap_or_default()
            )),
            // Not an answer from the server: the connection failed or was closed.
            None => StoreError::Unavailable(format!("postgres: {e}")),
        }
    }
}

/// The versioned schema files, in order. Never edit one that has shipped: add the next.
const MIGRATIONS: &[(i64, &str, &str)] = &[
    (
        1,
        "schema",
        include_str!("../../migrations/postgres/0001_schema.sql"),
    ),
    (
        2,
        "updated_indexes",
        include_str!("../../migrations/postgres/0002_updated_indexes.sql"),
    ),
    (
        3,
        "event_search",
        include_str!("../../migrations/postgres/0003_event_search.sql"),
    ),
    (
        4,
        "alert_attention",
        include_str!("../../migrations/postgres/0004_alert_attention.sql"),
    ),
    (
        5,
        "event_counts",
        include_str!("../../migrations/postgres/0005_event_counts.sql"),
    ),
];

/// Advisory lock keys (arbitrary, fixed): migrating, and creating or dropping partitions.
const MIGRATION_LOCK: i64 = 0x4353_0001;
const PARTITION_LOCK: i64 = 0x4353_0002;

pub(crate) const DAY_MS: i64 = 86_400_000;
/// Days before now that get their own partitions (older ones go to the default partition).
pub const PARTITION_PAST_DAYS: i64 = 3 * 366;
/// Days after now that get their own partitions.
pub const PARTITION_FUTURE_DAYS: i64 = 2;

/// How the store connects.
#[derive(Clone)]
pub struct PostgresOptions {
    /// A libpq-style connection string or URL: `postgres://user@host:5432/db`.
    pub url: String,
    /// The password, kept out of the URL (and out of `Debug`).
    pub password: Option<String>,
    /// Connections at most in the pool.
    pub pool: usize,
}

impl std::fmt::Debug for PostgresOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresOptions")
            .field("url", &self.url)
            .field("password", &self.password.as_ref().map(|_| "(redacted)"))
            .field("pool", &self.pool)
            .finish()
    }
}

impl PostgresOptions {
    pub fn new(url: &str) -> PostgresOptions {
        PostgresOptions {
            url: url.to_string(),
            password: None,
            pool: 8,
        }
    }

    /// Checks the connection string: it must parse, name a host, and carry no password (a
    /// password belongs in [`PostgresOptions::password`], read from a secret, not in a file
    /// that is shown and logged).
    pub fn check(&self) -> std::result::Result<(), String> {
        let config: postgres::Config = self
            .url
            .parse()
            .map_err(|e| format!("not a PostgreSQL connection string: {e}"))?;
        if config.get_password().is_some() {
            return Err("carries a password; give it in the environment instead".into());
        }
        if config.get_hosts().is_empty() {
            return Err("names no host".into());
        }
        Ok(())
    }
}

struct Pool {
    idle: Vec<Client>,
    open: usize,
}

pub struct PostgresStore {
    config: postgres::Config,
    pool: Mutex<Pool>,
    available: Condvar,
    max: usize,
    /// Days whose partitions are known to exist.
    days: Mutex<HashSet<i64>>,
    /// The lease this store holds, as (the session's backend pid, the lock key): while it is
    /// set, a commit checks in its own transaction that the lease is still held, so a process
    /// that lost it (its session ended, another took over) cannot commit behind the new holder.
    pub(crate) fence: std::sync::Arc<Mutex<Option<(i32, i64)>>>,
}

impl Drop for PostgresStore {
    fn drop(&mut self) {
        // Closing a client blocks on its runtime too.
        let idle = std::mem::take(&mut self.lock_pool().idle);
        off_runtime(move || drop(idle));
    }
}

/// A connection taken from the pool; it goes back when dropped, unless it was closed.
pub(crate) struct Conn<'a> {
    store: &'a PostgresStore,
    client: Option<Client>,
}

impl std::ops::Deref for Conn<'_> {
    type Target = Client;
    fn deref(&self) -> &Client {
        self.client.as_ref().expect("present until drop")
    }
}

impl std::ops::DerefMut for Conn<'_> {
    fn deref_mut(&mut self) -> &mut Client {
        self.client.as_mut().expect("present until drop")
    }
}

impl Drop for Conn<'_> {
    fn drop(&mut self) {
        if let Some(c) = self.client.take() {
            let mut pool = self.store.lock_pool();
            if c.is_closed() {
                // The server closed it (a restart, most likely): the idle ones are as dead, and
                // the next call should connect afresh rather than fail on each of them.
                pool.open -= 1 + pool.idle.len();
                pool.idle.clear();
            } else {
                pool.idle.push(c);
            }
            self.store.available.notify_one();
        }
    }
}

/// How long a call waits for a free connection before it fails as unavailable.
const POOL_WAIT: Duration = Duration::from_secs(30);

impl PostgresStore {
    /// Connects, applies pending migrations and learns which day partitions exist.
    pub fn open(options: &PostgresOptions) -> Result<PostgresStore> {
        off_runtime(|| PostgresStore::open_here(options))
    }

    fn open_here(options: &PostgresOptions) -> Result<PostgresStore> {
        let mut config: postgres::Config = options
            .url
            .parse()
            .map_err(|e| StoreError::Backend(format!("postgres: bad connection string: {e}")))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        if let Some(p) = &options.password {
            config.password(p);
        }
        if config.get_application_name().is_none() {
            config.application_name("cloudsentinel");
        }
        let store = PostgresStore {
            config,
            pool: Mutex::new(Pool {
                idle: Vec::new(),
                open: 0,
            }),
            available: Condvar::new(),
            max: options.pool.max(2),
            days: Mutex::new(HashSet::new()),
            fence: Default::default(),
        };
        {
            let mut c = store.conn()?;
            migrate(&mut c)?;
            let known = existing_days(&mut c)?;
            *store.days.lock().unwrap_or_else(|e| e.into_inner()) = known;
        }
        Ok(store)
    }

    fn lock_pool(&self) -> std::sync::MutexGuard<'_, Pool> {
        self.pool.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// A connection from the pool, connecting a new one when none is idle and the pool has room.
    pub(crate) fn conn(&self) -> Result<Conn<'_>> {
        let deadline = std::time::Instant::now() + POOL_WAIT;
        let mut pool = self.lock_pool();
        loop {
            while let Some(c) = pool.idle.pop() {
                if c.is_closed() {
                    pool.open -= 1;
                    continue;
                }
                return Ok(Conn {
                    store: self,
                    client: Some(c),
                });
            }
            if pool.open < self.max {
                pool.open += 1;
                drop(pool);
                return match self.config.connect(NoTls) {
                    Ok(c) => Ok(Conn {
                        store: self,
                        client: Some(c),
                    }),
                    Err(e) => {
                        self.lock_pool().open -= 1;
                        self.available.notify_one();
                        Err(StoreError::Unavailable(format!("postgres: {e}")))
                    }
                };
            }
            let now = std::time::Instant::now();
            if now >= deadline {
                return Err(StoreError::Unavailable(
                    "postgres: no free connection in the pool".into(),
                ));
            }
            pool = self
                .available
                .wait_timeout(pool, deadline - now)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }

    /// Makes sure each day (start, in ms) in `days` has its partitions, creating the missing
    /// ones (each in its own short transaction, under the partition lock). A day outside the
    /// partitioned window is left to the default partition.
    pub(crate) fn ensure_days(&self, days: &[i64]) -> Result<()> {
        let today = day_of(ms(Utc::now()));
        let missing: Vec<i64> = {
            let known = self.days.lock().unwrap_or_else(|e| e.into_inner());
            days.iter()
                .copied()
                .filter(|d| !known.contains(d))
                .filter(|d| {
                    *d >= today - PARTITION_PAST_DAYS * DAY_MS
                        && *d <= today + PARTITION_FUTURE_DAYS * DAY_MS
                })
                .collect::<HashSet<_>>()
                .into_iter()
                .collect()
        };
        if missing.is_empty() {
            return Ok(());
        }
        let mut c = self.conn()?;
        for day in missing {
            create_day(&mut c, day)?;
            self.days
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(day);
        }
        Ok(())
    }

    /// Drops the partitions of days that end at or before `before`; answers how many events
    /// they held.
    pub(crate) fn drop_days_before(&self, c: &mut Client, before: i64) -> Result<u64> {
        let mut tx = c.transaction()?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
        let days: Vec<i64> = list_days(&mut tx)?
            .into_iter()
            .filter(|d| d + DAY_MS <= before)
            .collect();
        let mut n = 0u64;
        for day in &days {
            let name = partition_name(*day);
            let count: i64 = tx
                .query_one(&format!("SELECT COUNT(*) FROM events_{name}"), &[])?
                .get(0);
            n += count as u64;
            tx.batch_execute(&format!(
                "DROP TABLE events_{name}; DROP TABLE raw_blocks_{name};"
            ))?;
        }
        tx.commit()?;
        let mut known = self.days.lock().unwrap_or_else(|e| e.into_inner());
        for day in days {
            known.remove(&day);
        }
        Ok(n)
    }

    /// Fills in `raw` for rows (with their block and index), reading each block once.
    pub(crate) fn attach_raw(c: &mut Client, rows: &mut [(EventRow, i64, i64)]) -> Result<()> {
        let mut blocks: std::collections::HashMap<(i64, i64), Vec<String>> = Default::default();
        let stmt = c.prepare("SELECT data FROM raw_blocks WHERE day = $1 AND id = $2")?;
        for (row, block, idx) in rows.iter_mut() {
            let key = (day_of(ms(row.time)), *block);
            let records = match blocks.entry(key) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(v) => {
                    v.insert(match c.query_opt(&stmt, &[&key.0, &key.1])? {
                        Some(r) => unpack_block(r.try_get::<_, &[u8]>(0)?)?,
                        None => Vec::new(),
                    })
                }
            };
            let text = records.get(*idx as usize);
            row.raw = text.and_then(|t| serde_json::from_str(t).ok());
        }
        Ok(())
    }
}

/// The start (ms) of the UTC day holding `t` (ms).
pub(crate) fn day_of(t: i64) -> i64 {
    t.div_euclid(DAY_MS) * DAY_MS
}

/// `pYYYYMMDD` for a day's start.
fn partition_name(day: i64) -> String {
    format!("p{}", time(day).format("%Y%m%d"))
}

/// The days that have partitions, from the catalogue.
fn list_days(c: &mut impl postgres::GenericClient) -> Result<Vec<i64>> {
    let rows = c.query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid \
         WHERE i.inhparent = 'events'::regclass",
        &[],
    )?;
    let mut days = Vec::new();
    for r in rows {
        let name: String = r.try_get(0)?;
        if let Some(d) = name
            .strip_prefix("events_p")
            .and_then(|d| chrono::NaiveDate::parse_from_str(d, "%Y%m%d").ok())
        {
            days.push(
                d.and_hms_opt(0, 0, 0)
                    .expect("midnight")
                    .and_utc()
                    .timestamp_millis(),
            );
        }
    }
    days.sort_unstable();
    Ok(days)
}

fn existing_days(c: &mut Client) -> Result<HashSet<i64>> {
    Ok(list_days(c)?.into_iter().collect())
}

/// Creates one day's partitions (if another process has not), moving any of its rows that the
/// default partition holds into them.
fn create_day(c: &mut Client, day: i64) -> Result<()> {
    let name = partition_name(day);
    let end = day + DAY_MS;
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])?;
    let exists: bool = tx
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&format!("events_{name}")],
        )?
        .get(0);
    if !exists {
        tx.batch_execute(&format!(
            "CREATE TABLE events_{name} (LIKE events INCLUDING DEFAULTS);
             INSERT INTO events_{name} SELECT * FROM events_other WHERE time >= {day} AND time < {end};
             DELETE FROM events_other WHERE time >= {day} AND time < {end};
             ALTER TABLE events ATTACH PARTITION events_{name} FOR VALUES FROM ({day}) TO ({end});
             CREATE TABLE raw_blocks_{name} (LIKE raw_blocks INCLUDING DEFAULTS);
             INSERT INTO raw_blocks_{name} SELECT * FROM raw_blocks_other WHERE day = {day};
             DELETE FROM raw_blocks_other WHERE day = {day};
             ALTER TABLE raw_blocks ATTACH PARTITION raw_blocks_{name} FOR VALUES FROM ({day}) TO ({end});"
        ))?;
    }
    tx.commit()?;
    Ok(())
}

fn migrate(c: &mut Client) -> Result<()> {
    let mut tx = c.transaction()?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (
             version BIGINT PRIMARY KEY,
             name TEXT NOT NULL,
             applied BIGINT NOT NULL
         )",
    )?;
    let done: i64 = tx
        .query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?
        .get(0);
    let latest = MIGRATIONS.last().map(|m| m.0).unwrap_or(0);
    if done > latest {
        return Err(StoreError::Conflict(format!(
            "the database's schema is at version {done}, newer than this build knows ({latest}); \
             run a newer CloudSentinel"
        )));
    }
    for (version, name, sql) in MIGRATIONS.iter().filter(|m| m.0 > done) {
        tx.batch_execute(sql).map_err(|e| {
            StoreError::Backend(format!("postgres migration {version} ({name}): {e}"))
        })?;
        tx.execute(
            "INSERT INTO schema_migrations (version, name, applied) VALUES ($1, $2, $3)",
            &[version, name, &ms(Utc::now())],
        )?;
    }
    tx.commit()?;
    Ok(())
}

/// A parameter of a query built at run time.
pub(crate) type Param = Box<dyn ToSql + Sync + Send>;

/// A WHERE clause being built, with its parameters (`?` in a clause becomes `$n`).
#[derive(Default)]
pub(crate) struct Filter {
    pub(crate) clauses: Vec<String>,
    pub(crate) params: Vec<Param>,
}

impl Filter {
    pub(crate) fn add(&mut self, clause: &str, value: impl ToSql + Sync + Send + 'static) {
        self.params.push(Box::new(value));
        self.clauses
            .push(clause.replace('?', &format!("${}", self.params.len())));
    }

    /// Adds a parameter without a clause; answers its `$n`.
    pub(crate) fn param(&mut self, value: impl ToSql + Sync + Send + 'static) -> String {
        self.params.push(Box::new(value));
        format!("${}", self.params.len())
    }

    pub(crate) fn sql(&self) -> String {
        if self.clauses.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", self.clauses.join(" AND "))
        }
    }

    pub(crate) fn refs(&self) -> Vec<&(dyn ToSql + Sync)> {
        self.params
            .iter()
            .map(|p| p.as_ref() as &(dyn ToSql + Sync))
            .collect()
    }
}

/// Queues deliveries inside an open transaction.
pub(crate) fn insert_deliveries(
    c: &mut impl postgres::GenericClient,
    ds: &[NewDelivery],
    now: i64,
) -> Result<Vec<i64>> {
    if ds.is_empty() {
        return Ok(Vec::new());
    }
    let sinks: Vec<&str> = ds.iter().map(|d| d.sink.as_str()).collect();
    let alerts: Vec<Option<i64>> = ds.iter().map(|d| d.alert_id).collect();
    let changes: Vec<&str> = ds.iter().map(|d| d.change.as_str()).collect();
    let payloads: Vec<&str> = ds.iter().map(|d| d.payload.as_str()).collect();
    let rows = c.query(
        "INSERT INTO deliveries (sink, alert_id, change, payload, status, attempts, created, next_attempt) \
         SELECT s, a, c, p, 'pending', 0, $5, $5 \
         FROM unnest($1::text[], $2::bigint[], $3::text[], $4::text[]) WITH ORDINALITY AS t(s, a, c, p, n) \
         ORDER BY n RETURNING id",
        &[&sinks, &alerts, &changes, &payloads, &now],
    )?;
    let mut ids: Vec<i64> = rows
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    // Identity values are handed out in the order rows are inserted, which is `n`'s.
    ids.sort_unstable();
    Ok(ids)
}

impl crate::rows::Cells for Row {
    type Error = postgres::Error;
    fn int(&self, i: usize) -> Result<i64, postgres::Error> {
        self.try_get(i)
    }
    fn opt_int(&self, i: usize) -> Result<Option<i64>, postgres::Error> {
        self.try_get(i)
    }
    fn real(&self, i: usize) -> Result<f64, postgres::Error> {
        self.try_get(i)
    }
    fn opt_real(&self, i: usize) -> Result<Option<f64>, postgres::Error> {
        self.try_get(i)
    }
    fn text(&self, i: usize) -> Result<String, postgres::Error> {
        self.try_get(i)
    }
    fn opt_text(&self, i: usize) -> Result<Option<String>, postgres::Error> {
        self.try_get(i)
    }
    fn flag(&self, i: usize) -> Result<bool, postgres::Error> {
        self.try_get(i)
    }
    fn opt_flag(&self, i: usize) -> Result<Option<bool>, postgres::Error> {
        self.try_get(i)
    }
}

/// Maps every row, stopping at the first that does not read.
pub(crate) fn map_rows<T>(
    rows: Vec<Row>,
    f: impl Fn(&Row) -> Result<T, postgres::Error>,
) -> Result<Vec<T>> {
    rows.iter()
        .map(|r| f(r).map_err(StoreError::from))
        .collect()
}

#[cfg(test)]
mod tests;

/// Runs a store call that blocks on PostgreSQL. The `postgres` client drives its connection on a
/// runtime of its own, which cannot start on a thread that is running asynchronous tasks (the
/// service calls the store from some of those): there the call moves off the executor first
/// (`block_in_place`), and elsewhere it runs as is.
pub(crate) fn off_runtime<T>(f: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(h) if h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(f)
        }
        _ => f(),
    }
}
