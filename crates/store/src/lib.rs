//! Where CloudSentinel keeps what it knows: events (indexed columns plus the provider's original
//! record, compressed), alerts, incidents, users, API keys, the audit log, analyst feedback and
//! suppressions.
//!
//! Callers hold one [`Store`] (`Arc<dyn Store>`), the umbrella over one trait per domain:
//! [`EventStore`] (the pipeline's commit, search, scans, retention), [`AlertStore`] (alerts,
//! incidents, analysts' work, dashboard counts), [`AccountStore`] (users, API keys),
//! [`AuditStore`], [`ModelStore`] (model registry, named state) and [`OutboxStore`]
//! (notification deliveries). [`SqliteStore`] is the embedded implementation (one file, WAL, one
//! writer connection and a small pool of readers; `sqlite/` has one module per domain). A
//! PostgreSQL implementation implements the same six traits; no backend type (`rusqlite`) reaches
//! callers ([`StoreError::Backend`]).
//!
//! The pipeline's commit is a transaction object ([`EventStore::begin_commit`] →
//! [`CommitTx::fresh`] → [`CommitTx::finish`]): the store never calls back into the pipeline.
//!
//! The trait is synchronous: the server calls it from blocking threads, and the pipeline's
//! single writer thread batches many ingest requests into one transaction.
//!
//! ```
//! use cloudsentinel_store::{SqliteStore, SqliteOptions, prelude::*};
//! let dir = tempfile::tempdir().unwrap();
//! let store = SqliteStore::open(&dir.path().join("cs.db"), &SqliteOptions::default()).unwrap();
//! assert_eq!(store.stats().unwrap().events_total, 0);
//! ```

use chrono::{DateTime, Utc};
use cloudsentinel_core::Level;
use serde::{Deserialize, Serialize};

mod codec;
mod event_search;
mod pg;
mod rows;
mod sqlite;
#[cfg(test)]
mod suite;
pub use pg::{PARTITION_FUTURE_DAYS, PARTITION_PAST_DAYS, PostgresOptions, PostgresStore};
pub use sqlite::{SqliteOptions, SqliteStore};

/// What can go wrong in the store.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database failed (its message says how); no backend's types reach callers.
    #[error("storage: {0}")]
    Backend(String),
    #[error("stored data is damaged: {0}")]
    Corrupt(String),
    #[error("{0}")]
    Conflict(String),
    /// The database cannot be reached now (down, restarting, out of connections); trying again
    /// later may work.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord, Verdict};
pub use cloudsentinel_core::row::{EventFields, EventRow, NewEvent};

/// What an analyst changes on an incident; `None` leaves a field as it is, `Some(None)` clears
/// an optional one.
#[derive(Debug, Clone, Default)]
pub struct IncidentUpdate {
    pub status: Option<AlertStatus>,
    pub assignee: Option<Option<String>>,
    pub severity: Option<Option<Level>>,
    pub close_reason: Option<Option<String>>,
    /// Messages about the new status for the notification sinks, queued in the same
    /// transaction, and only when the status did change.
    pub deliveries: Vec<NewDelivery>,
}

/// A note an analyst left on an incident.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct IncidentComment {
    pub id: i64,
    pub incident_id: i64,
    pub author: String,
    pub time: DateTime<Utc>,
    pub text: String,
}

/// What the pipeline derives from the new events of a commit, written in the same transaction.
#[derive(Debug, Default)]
pub struct Derived {
    /// New alerts and updates to open ones (detection columns only on update).
    pub alerts: Vec<AlertRecord>,
    pub incidents: Vec<IncidentRecord>,
    /// Behaviour features of new alerts' first events (kept for the feedback model).
    pub features: Vec<AlertFeatures>,
    /// Messages about these alerts for the notification sinks (the outbox), committed with them.
    pub deliveries: Vec<NewDelivery>,
}

/// A message for a notification sink, waiting in the outbox.
#[derive(Debug, Clone, PartialEq)]
pub struct NewDelivery {
    pub sink: String,
    /// The alert it is about (none for a test message).
    pub alert_id: Option<i64>,
    /// `created`, `updated`, `acknowledged`, `resolved` or `test`.
    pub change: String,
    /// What the message says (the notify crate's `Notice`, JSON).
    pub payload: String,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next try.
    Pending,
    Sent,
    /// Given up: refused by the receiver, or out of tries.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [
            DeliveryStatus::Pending,
            DeliveryStatus::Sent,
            DeliveryStatus::Dead,
        ]
        .into_iter()
        .find(|x| x.as_str() == s)
    }
}

/// A message in the outbox, with its history.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct DeliveryRecord {
    pub id: i64,
    pub sink: String,
    pub alert_id: Option<i64>,
    pub change: String,
    #[serde(skip)]
    pub payload: String,
    pub status: DeliveryStatus,
    pub attempts: u32,
    pub created: DateTime<Utc>,
    /// When the next try is due (pending deliveries).
    pub next_attempt: DateTime<Utc>,
    pub last_attempt: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
    pub sent: Option<DateTime<Utc>>,
    /// From the commit of the change to the receiver's answer, in milliseconds.
    pub latency_ms: Option<i64>,
}

/// How one try of a delivery ended, as the store records it.
#[derive(Debug, Clone, PartialEq)]
pub enum DeliveryResult {
    Sent,
    Retry {
        error: String,
        next_attempt: DateTime<Utc>,
    },
    Dead {
        error: String,
    },
}

/// Filters for the delivery list.
#[derive(Debug, Clone, Default)]
pub struct DeliveryQuery {
    pub sink: Option<String>,
    pub alert_id: Option<i64>,
    pub status: Option<DeliveryStatus>,
    pub limit: u32,
    pub offset: u64,
}

/// Per sink: how its deliveries stand.
#[derive(Debug, Clone, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct SinkSummary {
    pub sink: String,
    pub pending: u64,
    pub sent: u64,
    pub dead: u64,
    /// Deliveries that needed more than one try.
    pub retried: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The behaviour features an alert was raised with.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFeatures {
    pub alert_id: i64,
    /// Feature schema version.
    pub schema: u32,
    pub values: Vec<f32>,
    pub anomaly_score: Option<f64>,
}

/// A model in the registry. `artefact` is the trained model itself, loaded only when asked.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ModelRecord {
    pub id: i64,
    /// `anomaly` or `feedback`.
    pub name: String,
    /// 1, 2, ... per name.
    pub version: i64,
    /// Feature schema version.
    pub schema: u32,
    /// `training`, `ready` or `failed`.
    pub status: String,
    /// 0 to 1 while training.
    pub progress: f64,
    pub message: String,
    pub created: DateTime<Utc>,
    pub finished: Option<DateTime<Utc>>,
    pub trained_by: String,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub samples: u64,
    pub metrics: serde_json::Value,
    pub params: serde_json::Value,
    pub active: bool,
    pub activated: Option<DateTime<Utc>>,
    #[serde(skip)]
    pub artefact: Option<Vec<u8>>,
}

/// A model about to be trained.
#[derive(Debug, Clone)]
pub struct NewModel {
    pub name: String,
    pub schema: u32,
    pub trained_by: String,
    pub window_from: Option<DateTime<Utc>>,
    pub window_to: Option<DateTime<Utc>>,
    pub params: serde_json::Value,
}

/// How a training run ended.
#[derive(Debug, Clone)]
pub struct ModelResult {
    /// `ready` or `failed`.
    pub status: &'static str,
    pub message: String,
    pub samples: u64,
    pub metrics: serde_json::Value,
    pub artefact: Option<Vec<u8>>,
}

/// What a commit did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct CommitOutcome {
    pub inserted: u64,
    /// Events whose id was already stored (a retried batch): ignored.
    pub duplicates: u64,
}

/// Sort order for alert lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertSort {
    #[default]
    LastSeen,
    FirstSeen,
    Level,
    Count,
    Id,
    /// The feedback model's true-positive score (alerts without one last when descending).
    TpScore,
    /// When the pipeline last changed it.
    Updated,
    /// What needs attention first: level, then the newest arrival (when the alert was created
    /// in the store, not its events' time: a backfilled alert is new).
    Attention,
}

/// Filters for alert lists; every field narrows.
#[derive(Debug, Clone, Default)]
pub struct AlertQuery {
    pub min_level: Option<Level>,
    pub levels: Vec<Level>,
    pub statuses: Vec<AlertStatus>,
    pub rule_id: Option<String>,
    /// `rule`, `correlation` or `anomaly`.
    pub kind: Option<String>,
    pub technique: Option<String>,
    /// Entity (principal), exact.
    pub principal: Option<String>,
    pub account: Option<String>,
    /// Who it is assigned to: `Some(None)` for nobody, `Some(Some(user))` for that user.
    pub assignee: Option<Option<String>>,
    pub incident_id: Option<i64>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Changed by the pipeline after this (exclusive).
    pub updated_since: Option<DateTime<Utc>>,
    /// Free text, matched in title, rule id, entity, explanation.
    pub text: Option<String>,
    pub sort: AlertSort,
    pub descending: bool,
    pub limit: u32,
    pub offset: u64,
}

/// One page of a list and the total it is a page of.
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    pub total: u64,
    pub items: Vec<T>,
}

/// Filters for event search.
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub principal: Option<String>,
    pub account: Option<String>,
    pub source_ip: Option<String>,
    pub service: Option<String>,
    pub operation: Option<String>,
    pub success: Option<bool>,
    /// Free text: its words, in order, somewhere in the record ([`EventField::Text`]).
    pub text: Option<String>,
    /// A resource the event names (an ARN, a bucket, a user name, as in its request), exact,
    /// case-insensitive. Events stored before resources were indexed are not found by it.
    pub resource: Option<String>,
    /// The autonomous system of the source address, as recorded when the event was stored.
    pub asn: Option<u32>,
    /// The country of the source address (ISO 3166 alpha-2, either case), as recorded when the
    /// event was stored.
    pub country: Option<String>,
    /// Further conditions, all of which must hold (the search language's terms).
    pub terms: Vec<EventTerm>,
    pub with_raw: bool,
    pub limit: u32,
    pub offset: u64,
}

/// Event searches count their matches up to this many; past it, [`Page::total`] is
/// `EVENT_COUNT_CAP + 1`, which says "more than this".
pub const EVENT_COUNT_CAP: u64 = 100_000;

/// What [`EventStore::event_digest`] found about a search's matches: how many there are over
/// time and the most frequent values of the fields an analyst pivots on, counted over the newest
/// matches up to a cap.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventDigest {
    /// Matches counted (at most the cap).
    pub counted: u64,
    /// More events match than were counted.
    pub capped: bool,
    /// The oldest and newest counted match.
    pub span: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Counted matches per bucket of the histogram asked for.
    pub histogram: Vec<u64>,
    /// The range the histogram's buckets divide (its open ends closed by the span).
    pub histogram_range: Option<(DateTime<Utc>, DateTime<Utc>)>,
    /// Per field (principal, ip, action as `service:operation`, account, as, country,
    /// outcome), the most frequent values with their counts, most first.
    pub facets: Vec<Facet>,
}

/// The most frequent values of a field among counted matches.
#[derive(Debug, Clone, PartialEq)]
pub struct Facet {
    pub field: EventField,
    pub values: Vec<KeyCount>,
    /// How many different values the counted matches have.
    pub distinct: u64,
}

/// A histogram to count matches in: `buckets` equal slices of `from`..`to`; an open end is
/// the oldest or newest counted match.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Histogram {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub buckets: u32,
}

/// One condition on events: a field and a value, or its negation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventTerm {
    pub field: EventField,
    pub value: String,
    /// The event must not match.
    pub negate: bool,
}

/// What an [`EventTerm`] looks at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventField {
    /// The principal: its display string (`arn (AKIA…)`), its bare id or ARN, its access key or
    /// its name, exact.
    Principal,
    /// The source address, exact.
    Ip,
    /// The AS number of the source address (digits, an `AS` prefix allowed).
    As,
    /// The country of the source address, two letters.
    Country,
    /// The operation (`CreateUser`), or `service:operation` (`iam:CreateUser`), case-insensitive.
    Action,
    /// A resource the event names, exact, case-insensitive.
    Resource,
    Account,
    /// `success` or `failure`.
    Outcome,
    /// Words anywhere in the record (request parameters, resources, every string value): each
    /// word of the value must be a word of the record, case-insensitive.
    Text,
}

/// A user account.
#[derive(Debug, Clone, PartialEq)]
pub struct UserRecord {
    pub id: i64,
    pub username: String,
    /// Argon2id PHC string.
    pub password_hash: String,
    pub role: String,
    pub created: DateTime<Utc>,
    pub disabled: bool,
    /// Bumped on logout, password change and role change: older tokens stop working.
    pub token_version: i64,
    /// Random, drawn when the user is created and carried by its tokens: a token never stands
    /// for another user, even one created later under a reused name.
    pub token_secret: String,
}

/// An API key (stored as a hash; the secret is shown once).
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ApiKeyRecord {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it in a list.
    pub prefix: String,
    #[serde(skip)]
    pub key_hash: String,
    pub role: String,
    pub created_by: String,
    pub created: DateTime<Utc>,
    pub last_used: Option<DateTime<Utc>>,
    pub revoked: bool,
}

/// One audit log entry.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct AuditRecord {
    /// Position in the chain: 1, 2, ...
    pub seq: i64,
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    /// JSON text with the details of the change.
    pub detail: String,
    pub source_ip: Option<String>,
    /// The chain hash of the entry before.
    pub prev_hash: String,
    /// This entry's chain hash (an HMAC over it and `prev_hash`).
    pub hash: String,
}

/// An audit entry before it is chained.
#[derive(Debug, Clone)]
pub struct NewAudit {
    pub time: DateTime<Utc>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub detail: String,
    pub source_ip: Option<String>,
}

/// An analyst's verdict on an alert, with why.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct FeedbackRecord {
    pub id: i64,
    pub alert_id: i64,
    pub verdict: Verdict,
    pub reason: String,
    pub author: String,
    pub time: DateTime<Utc>,
    /// The alert's rule and entity, kept with the verdict.
    pub rule_id: String,
    pub entity: String,
}

#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct CommentRecord {
    pub id: i64,
    pub alert_id: i64,
    pub author: String,
    pub time: DateTime<Utc>,
    pub text: String,
}

/// "Do not alert on this rule for this entity until then."
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct SuppressionRecord {
    pub id: i64,
    pub rule_id: String,
    /// The principal (entity) whose matches of the rule raise no alert.
    pub entity: String,
    pub reason: String,
    pub author: String,
    pub created: DateTime<Utc>,
    pub expires: DateTime<Utc>,
}

/// Headline counts.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Stats {
    pub events_total: u64,
    pub alerts_total: u64,
    pub incidents_total: u64,
    pub open_incidents: u64,
    pub alerts_by_level: Vec<(String, u64)>,
    pub alerts_by_status: Vec<(String, u64)>,
    pub events_last_24h: u64,
    pub alerts_last_24h: u64,
    pub last_event: Option<DateTime<Utc>>,
}

/// Counts per time bucket.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct TrendPoint {
    /// Where the bucket starts.
    pub start: DateTime<Utc>,
    /// Events that happened in it.
    pub events: u64,
    /// Alerts first seen in it.
    pub alerts: u64,
}

/// Alerts per rule.
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RuleCount {
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub alerts: u64,
    /// The events of those alerts (their counts summed).
    pub events: u64,
    pub last_seen: DateTime<Utc>,
}

/// What [`Store::alert_top`] counts alerts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertKey {
    /// The source address of the alert's first evidence event.
    SourceIp,
    Entity,
    Account,
    Technique,
    Tactic,
}

/// A key and how often it occurs.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct KeyCount {
    pub key: String,
    pub count: u64,
}

/// Alerts and incidents counted over a range (the overview's tiles).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertCounts {
    /// Alerts last seen in the range: (level, status, how many), most severe level first.
    pub alerts: Vec<(Level, AlertStatus, u64)>,
    /// Incidents last seen in the range: (status, how many).
    pub incidents: Vec<(AlertStatus, u64)>,
}

/// One rule's alerts and the verdicts analysts gave them (each alert counts with its latest).
#[derive(Debug, Clone, Default, Serialize, PartialEq, schemars::JsonSchema)]
pub struct RuleVerdicts {
    pub rule_id: String,
    pub alerts: u64,
    pub true_positive: u64,
    pub false_positive: u64,
    pub benign: u64,
    /// When its newest alert was last seen.
    pub last_seen: Option<DateTime<Utc>>,
}

impl RuleVerdicts {
    /// Alerts an analyst gave a verdict.
    pub fn judged(&self) -> u64 {
        self.true_positive + self.false_positive + self.benign
    }

    /// The share of judged alerts marked false positive, when any was judged.
    pub fn false_positive_rate(&self) -> Option<f64> {
        let judged = self.judged();
        (judged > 0).then(|| self.false_positive as f64 / judged as f64)
    }
}

/// The most events [`EventStore::latest_events`] answers.
pub const LATEST_EVENTS_CAP: u32 = 50_000;

/// How many of the most recent alerts or incidents an entity page's lookups look through
/// ([`AlertStore::alerts_from_addresses`], [`AlertStore::incidents_with_keys`]).
pub const ENTITY_SCAN_ROWS: u32 = 50_000;

/// Whether an incident answers to one of `keys`: its key, its entity or one of its join keys.
pub fn answers_to(i: &IncidentRecord, keys: &[String]) -> bool {
    keys.iter()
        .any(|k| i.key == *k || i.entity == *k || i.join_keys.contains(k))
}

/// The storage seam. Every method is one short transaction or one query.
/// An open commit of the pipeline (see [`EventStore::begin_commit`]).
pub trait CommitTx {
    /// Per event of the batch, whether it was new.
    fn fresh(&self) -> &[bool];
    /// Stores what the new events derived and commits the transaction.
    fn finish(self: Box<Self>, derived: Derived) -> Result<CommitOutcome>;
}

/// The events: the pipeline's commit (events and what they derive, in one transaction), search, time-ordered scans, retention, the directory source's bookkeeping.
pub trait EventStore {
    /// Opens the pipeline's durable transaction and stores `events` in it, ignoring those
    /// already stored (same id and time: a retried batch). The caller reads which were new
    /// ([`CommitTx::fresh`]), derives alerts, incidents and messages from them, and hands those to
    /// [`CommitTx::finish`], which commits everything at once. Dropped unfinished, nothing is
    /// stored. The store calls nothing back.
    fn begin_commit<'a>(&'a self, events: &[NewEvent]) -> Result<Box<dyn CommitTx + 'a>>;
    /// [`EventStore::begin_commit`], `derive` and [`CommitTx::finish`] in one call.
    fn commit(
        &self,
        events: &[NewEvent],
        derive: &mut dyn FnMut(&[bool]) -> Derived,
    ) -> Result<CommitOutcome> {
        let tx = self.begin_commit(events)?;
        let derived = derive(tx.fresh());
        tx.finish(derived)
    }
    /// Deletes events (and their raw records) older than `before`; returns how many.
    fn purge_events(&self, before: DateTime<Utc>) -> Result<u64>;
    fn events(&self, q: &EventQuery) -> Result<Page<EventRow>>;
    /// The newest `cap` matches of `q` counted: per histogram bucket and per value of the fields
    /// an analyst pivots on (the `top` most frequent of each). `q`'s limit and offset are ignored.
    fn event_digest(
        &self,
        q: &EventQuery,
        cap: u32,
        histogram: Option<Histogram>,
        top: u32,
    ) -> Result<EventDigest>;
    /// The newest matches of `q`, newest first, at most `cap` (at most [`LATEST_EVENTS_CAP`]),
    /// without their raw records and without counting them: what an entity page describes.
    /// `q`'s limit, offset and `with_raw` are ignored.
    fn latest_events(&self, q: &EventQuery, cap: u32) -> Result<Vec<EventRow>>;
    /// Events by provider id, looked up among events timed within `within` (inclusive).
    fn events_by_id(
        &self,
        ids: &[String],
        within: (DateTime<Utc>, DateTime<Utc>),
        with_raw: bool,
    ) -> Result<Vec<EventRow>>;
    /// The latest name each principal's events carried (`actor_name`: a user principal name, a
    /// service principal's display name), for principals known by an object id; principals
    /// without one are left out. At most 100 principals are looked up.
    fn actor_names(
        &self,
        principals: &[String],
    ) -> Result<std::collections::HashMap<String, String>>;
    /// Whether a source file (by path, size and modification time) was already ingested.
    fn source_file_done(&self, path: &str, size: u64, mtime: i64) -> Result<bool>;
    fn mark_source_file(&self, path: &str, size: u64, mtime: i64) -> Result<()>;
    /// Visits the events stored in a time window in time order (without their raw records),
    /// until `visit` answers false. Answers how many were visited.
    fn scan_events(
        &self,
        since: Option<DateTime<Utc>>,
        until: Option<DateTime<Utc>>,
        visit: &mut dyn FnMut(EventRow) -> bool,
    ) -> Result<u64>;
}

/// Alerts and incidents: what the alerting stage resumes from, the queue and its filters, what analysts change (status, assignee, comments, verdicts, suppressions), dashboard counts, and the feedback model's inputs.
pub trait AlertStore {
    /// Alerts whose window may still be open, to resume folding: last seen (event time) at or
    /// after `since`, or changed by the pipeline (wall clock) at or after it, since events
    /// backfilled from last year fold into alerts whose event times are long past.
    fn recent_alerts(&self, since: DateTime<Utc>) -> Result<Vec<AlertRecord>>;
    /// Incidents likewise (last seen or changed at or after `since`).
    fn recent_incidents(&self, since: DateTime<Utc>) -> Result<Vec<IncidentRecord>>;
    /// The largest alert and incident ids handed out so far.
    fn max_ids(&self) -> Result<(i64, i64)>;
    fn alerts(&self, q: &AlertQuery) -> Result<Page<AlertRecord>>;
    fn alert(&self, id: i64) -> Result<Option<AlertRecord>>;
    /// Sets the analyst-owned fields that are `Some`.
    /// Changes what an analyst owns on an alert. `deliveries` (messages about the new status)
    /// are queued in the same transaction, and only when the status did change.
    fn update_alert(
        &self,
        id: i64,
        status: Option<AlertStatus>,
        assignee: Option<Option<String>>,
        deliveries: &[NewDelivery],
    ) -> Result<Option<AlertRecord>>;
    fn add_comment(&self, alert_id: i64, author: &str, text: &str) -> Result<CommentRecord>;
    fn comments(&self, alert_id: i64) -> Result<Vec<CommentRecord>>;
    fn add_feedback(
        &self,
        alert_id: i64,
        verdict: Verdict,
        reason: &str,
        author: &str,
    ) -> Result<Option<FeedbackRecord>>;
    fn feedback(&self, alert_id: Option<i64>) -> Result<Vec<FeedbackRecord>>;
    fn incidents(
        &self,
        statuses: &[AlertStatus],
        limit: u32,
        offset: u64,
    ) -> Result<Page<IncidentRecord>>;
    fn incident(&self, id: i64) -> Result<Option<IncidentRecord>>;
    /// Alerts whose source address (their first evidence event's) is one of `addresses` (the
    /// first 100), most recently seen first, at most `limit`: among the [`ENTITY_SCAN_ROWS`]
    /// most recently seen alerts, so that an entity page stays fast however many are stored.
    fn alerts_from_addresses(&self, addresses: &[String], limit: u32) -> Result<Vec<AlertRecord>>;
    /// Incidents that answer to one of `keys` (the first 100): as their key, their entity or one
    /// of their join keys (a principal or access key, `ip:<address>`, `person:<e-mail>`,
    /// `created:<identity>`). Most recently seen first, at most `limit`, among the
    /// [`ENTITY_SCAN_ROWS`] most recently seen incidents.
    fn incidents_with_keys(&self, keys: &[String], limit: u32) -> Result<Vec<IncidentRecord>>;
    /// Applies what an analyst changed (the fields given); `None` when there is no such incident.
    fn update_incident(&self, id: i64, update: &IncidentUpdate) -> Result<Option<IncidentRecord>>;
    /// `None` when there is no such incident.
    fn add_incident_comment(
        &self,
        incident_id: i64,
        author: &str,
        text: &str,
    ) -> Result<Option<IncidentComment>>;
    fn incident_comments(&self, incident_id: i64) -> Result<Vec<IncidentComment>>;
    fn add_suppression(
        &self,
        rule_id: &str,
        entity: &str,
        reason: &str,
        author: &str,
        expires: DateTime<Utc>,
    ) -> Result<SuppressionRecord>;
    /// Suppressions not yet expired at `now`.
    fn suppressions(&self, now: DateTime<Utc>) -> Result<Vec<SuppressionRecord>>;
    fn delete_suppression(&self, id: i64) -> Result<bool>;
    fn stats(&self) -> Result<Stats>;
    fn trends(
        &self,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<TrendPoint>>;
    fn top_rules(&self, since: Option<DateTime<Utc>>, limit: u32) -> Result<Vec<RuleCount>>;
    /// Alerts last seen at or after `since` per source address, entity, account, technique or
    /// tactic, most first.
    fn alert_top(
        &self,
        key: AlertKey,
        since: Option<DateTime<Utc>>,
        limit: u32,
    ) -> Result<Vec<KeyCount>>;
    fn alert_features(&self, alert_ids: &[i64]) -> Result<Vec<AlertFeatures>>;
    fn set_tp_scores(&self, scores: &[(i64, f64)]) -> Result<()>;
    /// Alerts last seen at or after `since` per level and status, and incidents last seen at or
    /// after it per status.
    fn alert_counts(&self, since: Option<DateTime<Utc>>) -> Result<AlertCounts>;
    /// Open alerts at `min_level` or above that nobody is assigned to, newest arrival (`created`)
    /// first, and how many there are.
    fn unassigned_alerts(&self, min_level: Level, limit: u32) -> Result<Page<AlertRecord>>;
    /// One rule's alerts per bucket of `bucket_secs` by first sighting, from `since` to `until`:
    /// (bucket start, alerts), every bucket present.
    fn rule_trend(
        &self,
        rule_id: &str,
        since: DateTime<Utc>,
        until: DateTime<Utc>,
        bucket_secs: i64,
    ) -> Result<Vec<(DateTime<Utc>, u64)>>;
    /// Per rule (or only `rule_id`): alerts last seen at or after `since` and their verdicts, most
    /// alerts first.
    fn rule_verdicts(
        &self,
        since: Option<DateTime<Utc>>,
        rule_id: Option<&str>,
    ) -> Result<Vec<RuleVerdicts>>;
}

/// Users and API keys.
pub trait AccountStore {
    fn create_user(&self, username: &str, password_hash: &str, role: &str) -> Result<UserRecord>;
    fn user_by_name(&self, username: &str) -> Result<Option<UserRecord>>;
    fn user(&self, id: i64) -> Result<Option<UserRecord>>;
    fn users(&self) -> Result<Vec<UserRecord>>;
    fn count_users(&self) -> Result<u64>;
    /// Updates the given fields; any change bumps the token version.
    fn update_user(
        &self,
        id: i64,
        role: Option<&str>,
        password_hash: Option<&str>,
        disabled: Option<bool>,
    ) -> Result<Option<UserRecord>>;
    fn bump_token_version(&self, id: i64) -> Result<()>;
    fn delete_user(&self, id: i64) -> Result<bool>;
    fn create_api_key(
        &self,
        name: &str,
        prefix: &str,
        key_hash: &str,
        role: &str,
        created_by: &str,
    ) -> Result<ApiKeyRecord>;
    fn api_key_by_hash(&self, key_hash: &str) -> Result<Option<ApiKeyRecord>>;
    fn api_keys(&self) -> Result<Vec<ApiKeyRecord>>;
    fn revoke_api_key(&self, id: i64) -> Result<bool>;
    fn touch_api_key(&self, id: i64, when: DateTime<Utc>) -> Result<()>;
}

/// The audit log (its hash chain is computed by the caller inside `append_audit`'s transaction).
pub trait AuditStore {
    /// Appends one entry; `chain(prev_hash, seq, entry)` computes its hash inside the same
    /// transaction that reads the previous one, so the chain has no forks.
    fn append_audit(
        &self,
        entry: NewAudit,
        chain: &dyn Fn(&str, i64, &NewAudit) -> String,
    ) -> Result<AuditRecord>;
    /// Entries in sequence order, from `after_seq` on.
    fn audit(&self, after_seq: i64, limit: u32) -> Result<Vec<AuditRecord>>;
    fn audit_page(&self, limit: u32, offset: u64) -> Result<Page<AuditRecord>>;
}

/// The model registry and small named state (baselines, disabled rules, configured sinks).
pub trait ModelStore {
    /// Registers a model in `training` state, with the next version of its name.
    fn create_model(&self, m: &NewModel) -> Result<ModelRecord>;
    fn model_progress(&self, id: i64, progress: f64, message: &str) -> Result<()>;
    fn finish_model(&self, id: i64, r: &ModelResult) -> Result<()>;
    /// All models, newest first, without artefacts.
    fn models(&self, name: Option<&str>) -> Result<Vec<ModelRecord>>;
    fn model(&self, id: i64, with_artefact: bool) -> Result<Option<ModelRecord>>;
    /// Makes a ready model the active one of its name (the previous one stops being active).
    /// Conflict when it is not ready.
    fn activate_model(&self, id: i64) -> Result<Option<ModelRecord>>;
    fn deactivate_models(&self, name: &str) -> Result<()>;
    fn active_model(&self, name: &str) -> Result<Option<ModelRecord>>;
    fn put_state(&self, key: &str, value: &[u8]) -> Result<()>;
    fn get_state(&self, key: &str) -> Result<Option<Vec<u8>>>;
    /// Takes the lease `name` if no other process holds it: what one process of a deployment
    /// does at a time (consuming the bus, sending notifications, pulling sources). Held until
    /// the lease is dropped or its holder dies; `None` while another holds it.
    fn try_lease(&self, name: &str) -> Result<Option<Box<dyn Lease>>>;
}

/// A lease taken with [`ModelStore::try_lease`].
pub trait Lease: Send {
    /// Whether it is still held (PostgreSQL ends a lease with the session that took it).
    fn held(&mut self) -> bool;
}

/// The notification outbox.
pub trait OutboxStore {
    /// Small named blobs the service keeps across restarts (the behaviour baselines).
    /// Queues messages (test messages; alert changes go with their commit or status update).
    fn enqueue_deliveries(&self, deliveries: &[NewDelivery]) -> Result<Vec<i64>>;
    /// A sink's pending deliveries in the order they were queued, the first `limit`.
    fn pending_deliveries(&self, sink: &str, limit: u32) -> Result<Vec<DeliveryRecord>>;
    /// Records how a try ended (`at`: when it ended).
    fn record_delivery(&self, id: i64, at: DateTime<Utc>, result: &DeliveryResult) -> Result<()>;
    fn deliveries(&self, q: &DeliveryQuery) -> Result<Page<DeliveryRecord>>;
    fn delivery(&self, id: i64) -> Result<Option<DeliveryRecord>>;
    fn delivery_summary(&self) -> Result<Vec<SinkSummary>>;
}

/// A containment action on its way: proposed, approved, run, undone (issue 19).
#[derive(Debug, Clone, Serialize, PartialEq, schemars::JsonSchema)]
pub struct ResponseRecord {
    pub id: i64,
    pub alert_id: i64,
    /// The playbook that proposed it, if one did.
    pub playbook: Option<String>,
    /// The action and its parameters, as `cloudsentinel-respond` writes them.
    pub action: serde_json::Value,
    /// The account it acts in.
    pub account: Option<String>,
    /// `proposed`, `approved`, `done`, `failed`, `undone` or `refused`.
    pub status: String,
    pub proposed_by: String,
    pub proposed_at: DateTime<Utc>,
    pub approved_by: Option<String>,
    pub approved_at: Option<DateTime<Utc>>,
    pub run_by: Option<String>,
    pub run_at: Option<DateTime<Utc>>,
    /// The state found before the change: what undo restores.
    pub before: Option<serde_json::Value>,
    /// Whether reading the state back showed the change.
    pub verified: Option<bool>,
    /// What happened, in words: the error, the refusal, what undo did.
    pub result: Option<String>,
    pub undone_by: Option<String>,
    pub undone_at: Option<DateTime<Utc>>,
    /// A second responder's approval (a second quarantine in one incident needs it).
    pub second_approved_by: Option<String>,
    pub second_approved_at: Option<DateTime<Utc>>,
}

/// A response to record as proposed.
#[derive(Debug, Clone)]
pub struct NewResponse {
    pub alert_id: i64,
    pub playbook: Option<String>,
    pub action: serde_json::Value,
    pub account: Option<String>,
    pub proposed_by: String,
}

/// A step of a response.
#[derive(Debug, Clone)]
pub enum ResponseStep {
    Approved {
        by: String,
    },
    /// A second approval: the status stays `approved`.
    SecondApproval {
        by: String,
    },
    Ran {
        by: String,
        before: Option<serde_json::Value>,
        changed: bool,
        verified: Option<bool>,
        result: Option<String>,
    },
    Undone {
        by: String,
        result: String,
    },
    Refused {
        by: String,
        reason: String,
    },
}

/// Containment actions and their steps.
pub trait ResponseStore {
    fn propose_response(&self, r: &NewResponse) -> Result<ResponseRecord>;
    fn response(&self, id: i64) -> Result<Option<ResponseRecord>>;
    /// An alert's responses (all, newest first, with `None`), oldest first.
    fn responses(&self, alert_id: Option<i64>, limit: u32) -> Result<Vec<ResponseRecord>>;
    /// Takes a step if the response is still in one of `from` (so two people cannot run it
    /// twice); `None` when it has moved on.
    fn step_response(
        &self,
        id: i64,
        from: &[&str],
        step: &ResponseStep,
        at: DateTime<Utc>,
    ) -> Result<Option<ResponseRecord>>;
    /// The responses of an incident's alerts, oldest first.
    fn incident_responses(&self, incident_id: i64) -> Result<Vec<ResponseRecord>>;
    /// Responses run in an account since `since` (for the per-hour limit).
    fn responses_run_since(&self, account: Option<&str>, since: DateTime<Utc>) -> Result<u64>;
}

/// The whole store: every domain behind one object-safe trait, as callers hold it
/// (`Arc<dyn Store>`). Implement the domain traits; `Store` follows.
pub trait Store:
    EventStore
    + AlertStore
    + AccountStore
    + AuditStore
    + ModelStore
    + OutboxStore
    + ResponseStore
    + Send
    + Sync
{
}

impl<T> Store for T where
    T: EventStore
        + AlertStore
        + AccountStore
        + AuditStore
        + ModelStore
        + OutboxStore
        + ResponseStore
        + Send
        + Sync
{
}

/// The store traits, for `use cloudsentinel_store::prelude::*` where a `dyn Store` is called.
pub mod prelude {
    pub use crate::{
        AccountStore, AlertStore, AuditStore, EventStore, Lease, ModelStore, OutboxStore,
        ResponseStore, Store,
    };
}
