//! From an ingest body to committed events, alerts and incidents.
//!
//! Two halves:
//! - [`prepare_async`] (the [`Workers`] threads, in parallel): decode and normalize the body, run
//!   the stateless Sigma detection rules on each event. Malformed input is refused here, before anything is
//!   queued, with the record index and reason.
//! - [`Pipeline`] (one thread): takes prepared batches in arrival order, drops events already
//!   stored (a retried batch), hands the Sigma correlations to their own thread, folds signals into alerts
//!   (dedup window), applies suppressions, groups alerts into incidents, and commits events,
//!   alerts and incidents in one transaction. Several waiting batches share a commit. Each
//!   batch's sender is answered only after that commit, so an acknowledged batch is on disk.
//!   Inside the commit, once the store has said which events are new, the behaviour baselines
//!   learn each new event in time order and the active anomaly model scores it; anomalies join
//!   the rule signals, and the active feedback model scores every new alert.
//!
//! The queue between them is bounded in events ([`Submitter::try_submit`] refuses when full):
//! an overloaded service answers 429 instead of growing.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use cloudsentinel_core::{Event, Level, Origin, Provider, Signal};
use cloudsentinel_detect::RuleSet;
use cloudsentinel_detect::sigma::CorrelationInput;
use cloudsentinel_ingest::{Item, ReadOptions, reader::decode_bytes_with};
use cloudsentinel_store::{
    AlertRecord, AlertStatus, Derived, IncidentRecord, MAX_EVIDENCE, NewEvent, Store,
    SuppressionRecord,
};
use serde::Serialize;
use tokio::sync::{broadcast, oneshot};

use crate::learning::{Active, BASELINES_KEY, Learning};
use crate::metrics::Metrics;
use cloudsentinel_context::NetContext;
use cloudsentinel_learn::anomaly::Behaviour;
use cloudsentinel_learn::behaviour::{Baselines, Features, Observation, SCHEMA_VERSION};
use cloudsentinel_learn::feedback::{AlertFacts, FeedbackModel};

/// A record that could not be decoded.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RecordError {
    /// 0-based index of the record in the body, when known.
    pub index: Option<u64>,
    /// 1-based line, for JSON Lines bodies.
    pub line: Option<u64>,
    pub reason: String,
}

impl std::fmt::Display for RecordError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.index, self.line) {
            (_, Some(l)) => write!(f, "line {l}: {}", self.reason),
            (Some(i), None) => write!(f, "record {i}: {}", self.reason),
            (None, None) => f.write_str(&self.reason),
        }
    }
}

/// Why a body was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PrepareError {
    /// Up to 20 errors, the first one first.
    #[error("{}", .0.first().map(ToString::to_string).unwrap_or_default())]
    Malformed(Vec<RecordError>),
    #[error("more than {max} records in one request; split the batch")]
    TooManyRecords { records: usize, max: usize },
    #[error("the body holds no records")]
    Empty,
    /// A worker thread failed (a bug): answered as a 500.
    #[error("{0}")]
    Internal(String),
}

/// What alerts and incidents key on, taken from the event a signal came from.
#[derive(Debug, Clone)]
pub struct Context {
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    /// The principal without the access key (incidents join on either).
    pub principal: String,
    /// Identities the event created or gave credentials to ([`crate::lineage`]).
    pub created: Vec<String>,
    /// The actor's name when the event gave one (a user principal name beside an object id).
    pub name: Option<String>,
}

impl Context {
    fn of_row(o: &Observation<'_>) -> Context {
        Context {
            access_key: o.access_key.map(str::to_string),
            source_ip: o.source_ip.map(str::to_string),
            principal: o.principal().to_string(),
            created: Vec::new(),
            name: o.actor_name.map(str::to_string),
        }
    }

    pub fn of(e: &Event) -> Context {
        Context {
            access_key: e.actor.access_key_id.clone(),
            source_ip: e.source_ip.clone(),
            principal: e
                .principal()
                .map(str::to_string)
                .unwrap_or_else(|| e.entity()),
            created: crate::lineage::created_identities(e),
            name: e.actor.name.clone(),
        }
    }
}

/// A decoded, detected batch waiting for the pipeline: rows ready to store, and the detections
/// with the index of the row they came from. The events themselves are dropped on the worker
/// thread, not on the pipeline's.
pub struct Prepared {
    pub rows: Vec<NewEvent>,
    pub signals: Vec<(usize, Signal, Context)>,
    pub correlation: Vec<(usize, CorrelationInput, Context)>,
    /// Digests and insights recognised and skipped.
    pub skipped: u64,
    pub received: Instant,
}

/// Most errors listed in one answer.
const MAX_LISTED_ERRORS: usize = 20;

/// Decodes a body (JSON array, `{"Records": [...]}`, JSON Lines, one record, or any of these
/// gzip-compressed) into events. Fails on the first malformed record (listing up to 20), so that
/// nothing of a bad batch is stored. Answers the events and the records skipped.
pub fn decode(
    body: &[u8],
    provider: Option<Provider>,
    source: &str,
    max_records: usize,
    net: &NetContext,
) -> Result<(Vec<Event>, u64), PrepareError> {
    let origin = Origin {
        source: source.to_string(),
        ..Origin::default()
    };
    let mut events = Vec::new();
    let mut errors = Vec::new();
    let mut error_count = 0usize;
    let mut skipped = 0u64;
    let mut too_many = false;
    // The body was decompressed already (within the configured limit): never again here.
    let options = ReadOptions {
        hint: provider,
        decompress: false,
        ..ReadOptions::default()
    };
    decode_bytes_with(body, origin, options, &mut |item| match item {
        Item::Event(mut e) => {
            if events.len() >= max_records {
                too_many = true;
            } else {
                net.enrich(&mut e);
                events.push(*e);
            }
        }
        Item::Digest | Item::Insight => skipped += 1,
        Item::Error(e) => {
            error_count += 1;
            if errors.len() < MAX_LISTED_ERRORS {
                errors.push(RecordError {
                    index: e.origin.record_index,
                    line: e.origin.line,
                    reason: e.reason,
                });
            }
        }
    });
    if error_count > 0 {
        if error_count > errors.len() {
            errors.push(RecordError {
                index: None,
                line: None,
                reason: format!("and {} more errors", error_count - errors.len()),
            });
        }
        return Err(PrepareError::Malformed(errors));
    }
    if too_many {
        return Err(PrepareError::TooManyRecords {
            records: events.len() + 1,
            max: max_records,
        });
    }
    if events.is_empty() && skipped == 0 {
        return Err(PrepareError::Empty);
    }
    Ok((events, skipped))
}

/// Runs the detection rules on events and turns them into rows.
pub fn detect_rows(events: Vec<Event>, rules: &RuleSet, received: Instant) -> Prepared {
    let mut signals = Vec::new();
    let mut correlation = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let d = rules.detect(e);
        for m in &d.matches {
            signals.push((i, m.to_signal(e), Context::of(e)));
        }
        if let Some(c) = d.for_correlation {
            correlation.push((i, c, Context::of(e)));
        }
    }
    Prepared {
        rows: events.into_iter().map(NewEvent::from_owned).collect(),
        signals,
        correlation,
        skipped: 0,
        received,
    }
}

/// Batches at least this large are detected in two halves on two threads: on an idle machine
/// that halves the time a batch waits before its commit.
const SPLIT_AT: usize = 512;

type Job = Box<dyn FnOnce() + Send>;

/// A fixed set of threads for decoding and detection. Not tokio's blocking pool: that one
/// spreads work over up to hundreds of threads, and memory allocated on one of them and freed by
/// the pipeline thread then goes back to an idle thread's heap, so every batch faults in fresh
/// pages. Measured: 46 µs of CPU per event for this stage on the blocking pool, 22–38 µs on a
/// fixed pool (BENCHMARKS.md).
pub struct Workers {
    tx: std::sync::mpsc::Sender<Job>,
}

impl Workers {
    pub fn new(threads: usize) -> std::io::Result<Workers> {
        let (tx, rx) = std::sync::mpsc::channel::<Job>();
        let rx = Arc::new(std::sync::Mutex::new(rx));
        for i in 0..threads.max(1) {
            let rx = Arc::clone(&rx);
            std::thread::Builder::new()
                .name(format!("detect-{i}"))
                .spawn(move || {
                    loop {
                        let job = rx.lock().unwrap_or_else(|e| e.into_inner()).recv();
                        match job {
                            // A panic fails that one request (its answer channel is dropped), not
                            // the thread.
                            Ok(job) => {
                                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                            }
                            Err(_) => return,
                        }
                    }
                })?;
        }
        Ok(Workers { tx })
    }

    /// Runs `f` on one of the threads and waits for it without blocking the async runtime.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PrepareError> {
        let (tx, rx) = oneshot::channel();
        self.tx
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| PrepareError::Internal("the detection threads stopped".into()))?;
        rx.await
            .map_err(|_| PrepareError::Internal("a detection thread failed".into()))
    }
}

/// Decodes a body and runs the detection rules on every event, on the detection threads: all the
/// per-event work that can run in parallel. Nothing is queued if a record is malformed.
#[allow(clippy::too_many_arguments)] // each is one independent input of the stage
pub async fn prepare_async(
    workers: &Workers,
    body: Vec<u8>,
    provider: Option<Provider>,
    source: String,
    rules: Arc<RuleSet>,
    net: NetContext,
    max_records: usize,
    received: Instant,
) -> Result<Prepared, PrepareError> {
    let (mut events, skipped) = workers
        .run(move || decode(&body, provider, &source, max_records, &net))
        .await??;
    let second = if events.len() >= SPLIT_AT {
        let tail = events.split_off(events.len() / 2);
        let rules = Arc::clone(&rules);
        Some(workers.run(move || detect_rows(tail, &rules, received)))
    } else {
        None
    };
    let first = workers.run(move || detect_rows(events, &rules, received));
    let (first, second) = match second {
        Some(second) => {
            let (a, b) = tokio::join!(first, second);
            (a, Some(b))
        }
        None => (first.await, None),
    };
    let mut p = first?;
    if let Some(second) = second {
        let q = second?;
        let offset = p.rows.len();
        p.rows.extend(q.rows);
        p.signals
            .extend(q.signals.into_iter().map(|(i, s, c)| (i + offset, s, c)));
        p.correlation.extend(
            q.correlation
                .into_iter()
                .map(|(i, s, c)| (i + offset, s, c)),
        );
    }
    p.skipped = skipped;
    Ok(p)
}

/// What the pipeline answers for one batch.
#[derive(Debug, Default, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Committed {
    /// Events stored by this batch.
    pub accepted: u64,
    /// Events already stored before (ignored).
    pub duplicates: u64,
    /// Records recognised and skipped (CloudTrail digests, Insights).
    pub skipped: u64,
    /// Detections on this batch's events (before dedup into alerts).
    pub signals: u64,
}

enum Msg {
    Batch(Prepared, oneshot::Sender<Result<Committed, String>>),
    /// Signals of correlations, from the correlation thread.
    Signals(Vec<(Signal, Context)>),
    Stop,
}

/// Why a batch was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SubmitError {
    /// The queue holds too many events: try again later.
    Saturated,
    /// The pipeline has stopped.
    Stopped,
}

/// The handle ingest uses to queue batches.
#[derive(Clone)]
pub struct Submitter {
    tx: SyncSender<Msg>,
    metrics: Arc<Metrics>,
    max_queued: usize,
}

impl Submitter {
    /// Queues a batch if the queue has room; the receiver answers after the commit.
    pub fn try_submit(&self, p: Prepared) -> Result<Answer, SubmitError> {
        self.queue(p).map_err(|(e, _)| e)
    }

    /// Queues a batch, waiting for room (for sources that can wait, like a directory).
    pub async fn submit(&self, mut p: Prepared) -> Result<Committed, String> {
        loop {
            match self.queue(p) {
                Ok(rx) => return rx.await.map_err(|_| "pipeline stopped".to_string())?,
                Err((SubmitError::Stopped, _)) => return Err("pipeline stopped".into()),
                Err((SubmitError::Saturated, back)) => {
                    p = back;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Queues a batch, or hands it back with the reason it was not queued.
    fn queue(&self, p: Prepared) -> Result<Answer, (SubmitError, Prepared)> {
        let n = p.rows.len() as i64;
        let before = self.metrics.queued_events.fetch_add(n, Ordering::SeqCst);
        if before > 0 && (before + n) as usize > self.max_queued {
            self.metrics.queued_events.fetch_sub(n, Ordering::SeqCst);
            return Err((SubmitError::Saturated, p));
        }
        let (tx, rx) = oneshot::channel();
        match self.tx.try_send(Msg::Batch(p, tx)) {
            Ok(()) => Ok(rx),
            Err(e) => {
                self.metrics.queued_events.fetch_sub(n, Ordering::SeqCst);
                let (why, msg) = match e {
                    TrySendError::Full(m) => (SubmitError::Saturated, m),
                    TrySendError::Disconnected(m) => (SubmitError::Stopped, m),
                };
                let Msg::Batch(p, _) = msg else {
                    unreachable!("a batch was sent")
                };
                Err((why, p))
            }
        }
    }
}

/// The answer to a queued batch, sent after its commit.
pub type Answer = oneshot::Receiver<Result<Committed, String>>;

/// Settings of the pipeline thread.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub dedup_window: Duration,
    pub incident_window: Duration,
    pub max_commit_events: usize,
    pub max_queued_events: usize,
}

/// The running pipeline thread.
pub struct Pipeline {
    tx: SyncSender<Msg>,
    thread: Option<std::thread::JoinHandle<()>>,
}

/// What analysts and admins have tuned: active suppressions and disabled rules. Shared and live
/// (the API edits it, the pipeline reads it).
pub type Suppressions = Arc<RwLock<Tuning>>;

#[derive(Debug, Default, Clone)]
pub struct Tuning {
    pub suppressions: Vec<SuppressionRecord>,
    /// Rule ids whose matches raise nothing (kept in the store's state as [`DISABLED_RULES`]).
    pub disabled_rules: std::collections::BTreeSet<String>,
}

/// The store state key of the disabled rule ids (a JSON array).
pub const DISABLED_RULES: &str = "rules.disabled";

impl Pipeline {
    /// Starts the pipeline thread, resuming alert folding and incident grouping from the store.
    #[allow(clippy::too_many_arguments)]
    pub fn start(
        store: Arc<dyn Store>,
        rules: Arc<RuleSet>,
        settings: PipelineSettings,
        metrics: Arc<Metrics>,
        suppressions: Suppressions,
        live: broadcast::Sender<AlertRecord>,
        learning: Arc<Learning>,
        baselines: Baselines,
    ) -> anyhow::Result<(Pipeline, Submitter)> {
        let (tx, rx) = sync_channel(4096);
        let mut alerter = Alerter::resume(store.as_ref(), &settings)?;
        let mut behaviour = Learner::new(baselines, &learning);
        let thread = {
            let metrics = Arc::clone(&metrics);
            let settings = settings.clone();
            let back = tx.clone();
            std::thread::Builder::new()
                .name("pipeline".into())
                .spawn(move || {
                    run(
                        rx,
                        back,
                        store.as_ref(),
                        &rules,
                        &settings,
                        &metrics,
                        &suppressions,
                        &live,
                        &mut alerter,
                        &mut behaviour,
                        &learning,
                    )
                })?
        };
        let submitter = Submitter {
            tx: tx.clone(),
            metrics,
            max_queued: settings.max_queued_events,
        };
        Ok((
            Pipeline {
                tx,
                thread: Some(thread),
            },
            submitter,
        ))
    }

    /// Processes everything queued so far, then stops.
    pub fn stop(mut self) {
        let _ = self.tx.send(Msg::Stop);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// The correlation thread: feeds the Sigma correlations with the new events' inputs, in commit
/// order, and sends what fires back to the pipeline thread, which commits it with the next
/// batch. Correlation costs more per event than storing it; on its own thread it runs beside the
/// commits. Its backlog counts in the queue, so a lagging correlator turns into 429s, not memory.
fn correlate(
    rules: &RuleSet,
    rx: Receiver<Vec<(CorrelationInput, Context)>>,
    back: SyncSender<Msg>,
    metrics: &Metrics,
) {
    let Some(mut correlator) = rules.correlator() else {
        for inputs in rx {
            metrics
                .queued_events
                .fetch_sub(inputs.len() as i64, Ordering::SeqCst);
        }
        return;
    };
    for inputs in rx {
        let n = inputs.len() as i64;
        let mut fired = Vec::new();
        for (input, ctx) in inputs {
            for s in correlator.feed(input) {
                // The correlation's evidence is about the group; the context of the event that
                // completed it is the best guess for its access key and address.
                fired.push((s, ctx.clone()));
            }
        }
        if !fired.is_empty() && back.send(Msg::Signals(fired)).is_err() {
            return;
        }
        metrics.queued_events.fetch_sub(n, Ordering::SeqCst);
    }
}

#[allow(clippy::too_many_arguments)]
fn run(
    rx: Receiver<Msg>,
    back: SyncSender<Msg>,
    store: &dyn Store,
    rules: &RuleSet,
    settings: &PipelineSettings,
    metrics: &Metrics,
    suppressions: &Suppressions,
    live: &broadcast::Sender<AlertRecord>,
    alerter: &mut Alerter,
    learner: &mut Learner,
    learning: &Learning,
) {
    std::thread::scope(|scope| {
        let (corr_tx, corr_rx) = std::sync::mpsc::channel();
        let correlation = std::thread::Builder::new()
            .name("correlation".into())
            .spawn_scoped(scope, move || correlate(rules, corr_rx, back, metrics))
            .expect("a thread starts");
        let mut corr_tx = Some(corr_tx);
        let mut stopping = false;
        loop {
            let first = if stopping {
                // Stopping: commit what the correlation thread still sends, until it is done.
                match rx.recv_timeout(std::time::Duration::from_millis(20)) {
                    Ok(m) => m,
                    Err(_) if correlation.is_finished() => break,
                    Err(_) => continue,
                }
            } else {
                match rx.recv() {
                    Ok(m) => m,
                    Err(_) => break,
                }
            };
            let mut batches = Vec::new();
            let mut late_signals = Vec::new();
            let mut events = 0usize;
            let mut msg = Some(first);
            while let Some(m) = msg.take() {
                match m {
                    Msg::Stop => {
                        stopping = true;
                        // No more inputs: the correlation thread finishes its backlog and ends.
                        corr_tx = None;
                    }
                    Msg::Batch(_, tx) if stopping => {
                        let _ = tx.send(Err("the service is shutting down".into()));
                    }
                    Msg::Batch(p, tx) => {
                        events += p.rows.len();
                        batches.push((p, tx));
                    }
                    Msg::Signals(s) => late_signals.extend(s),
                }
                if events >= settings.max_commit_events {
                    break;
                }
                msg = rx.try_recv().ok();
            }
            if batches.is_empty() && late_signals.is_empty() {
                continue;
            }
            let queued: i64 = batches.iter().map(|(p, _)| p.rows.len() as i64).sum();
            let started = Instant::now();
            learner.refresh(learning);
            let result = process(
                &mut batches,
                late_signals,
                store,
                metrics,
                suppressions,
                alerter,
                learner,
            );
            if learner.last_save.elapsed() >= SAVE_BASELINES_EVERY {
                learner.save(store);
            }
            tracing::debug!(
                batches = batches.len(),
                events = queued,
                ms = started.elapsed().as_secs_f64() * 1000.0,
                "committed"
            );
            match result {
                Ok((answers, changed, correlation_inputs)) => {
                    metrics.commits.fetch_add(1, Ordering::Relaxed);
                    if !correlation_inputs.is_empty()
                        && let Some(tx) = &corr_tx
                    {
                        metrics
                            .queued_events
                            .fetch_add(correlation_inputs.len() as i64, Ordering::SeqCst);
                        let _ = tx.send(correlation_inputs);
                    }
                    metrics.queued_events.fetch_sub(queued, Ordering::SeqCst);
                    for a in changed {
                        let _ = live.send(a);
                    }
                    for ((p, tx), answer) in batches.into_iter().zip(answers) {
                        metrics.observe_latency(p.received.elapsed().as_secs_f64());
                        let _ = tx.send(Ok(answer));
                    }
                }
                Err(e) => {
                    metrics.queued_events.fetch_sub(queued, Ordering::SeqCst);
                    metrics.error("store");
                    tracing::error!(error = %e, "pipeline commit failed");
                    // What the alerter holds may not be what is stored now: start again from the store.
                    if let Ok(a) = Alerter::resume(store, settings) {
                        *alerter = a;
                    }
                    for (_, tx) in batches {
                        let _ = tx.send(Err("the store could not commit the batch".into()));
                    }
                }
            }
        }
        drop(corr_tx);
        let _ = correlation.join();
    });
    learner.save(store);
    // Anything still queued behind a stop is answered, not dropped silently.
    while let Ok(m) = rx.try_recv() {
        if let Msg::Batch(_, tx) = m {
            let _ = tx.send(Err("the service is shutting down".into()));
        }
    }
}

/// The answers per batch, the alerts that changed, and the new events' correlation inputs.
type Processed = (
    Vec<Committed>,
    Vec<AlertRecord>,
    Vec<(CorrelationInput, Context)>,
);

/// Commits a group of batches: their events, then (inside the same transaction, once the store
/// has said which events are new) the alerts and incidents those new events raise.
fn process(
    batches: &mut [(Prepared, oneshot::Sender<Result<Committed, String>>)],
    late_signals: Vec<(Signal, Context)>,
    store: &dyn Store,
    metrics: &Metrics,
    suppressions: &Suppressions,
    alerter: &mut Alerter,
    learner: &mut Learner,
) -> anyhow::Result<Processed> {
    let now = Utc::now();
    let sizes: Vec<usize> = batches.iter().map(|(p, _)| p.rows.len()).collect();
    let events: Vec<NewEvent> = batches
        .iter_mut()
        .flat_map(|(p, _)| std::mem::take(&mut p.rows))
        .collect();
    let (active, disabled) = {
        let tuning = suppressions.read().unwrap_or_else(|e| e.into_inner());
        let active: Vec<SuppressionRecord> = tuning
            .suppressions
            .iter()
            .filter(|s| s.expires > now)
            .cloned()
            .collect();
        (active, tuning.disabled_rules.clone())
    };
    let mut answers = Vec::with_capacity(batches.len());
    let mut changed = Vec::new();
    let mut correlation = Vec::new();
    let mut late_signals = Some(late_signals);
    store.commit(&events, &mut |fresh_all: &[bool]| {
        let mut signals: Vec<(Signal, Context, Option<usize>)> = late_signals
            .take()
            .unwrap_or_default()
            .into_iter()
            .map(|(s, c)| (s, c, None))
            .collect();
        // Behaviour: every new event, in time order, learned and (with a model) scored.
        let features = learner.observe(&events, fresh_all, &mut signals, metrics);
        let mut at = 0usize;
        for ((p, _), n) in batches.iter_mut().zip(&sizes) {
            let rows = &events[at..at + n];
            let fresh = &fresh_all[at..at + n];
            at += n;
            let accepted = fresh.iter().filter(|f| **f).count() as u64;
            let answer = Committed {
                accepted,
                duplicates: *n as u64 - accepted,
                skipped: p.skipped,
                signals: p.signals.iter().filter(|(i, _, _)| fresh[*i]).count() as u64,
            };
            for (row, f) in rows.iter().zip(fresh) {
                if *f {
                    metrics.events_in[Metrics::provider_index(&row.provider)]
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            metrics
                .duplicates
                .fetch_add(answer.duplicates, Ordering::Relaxed);
            for (i, s, ctx) in std::mem::take(&mut p.signals) {
                if fresh[i] {
                    signals.push((s, ctx, Some(at - n + i)));
                }
            }
            for (i, c, ctx) in std::mem::take(&mut p.correlation) {
                if fresh[i] {
                    correlation.push((c, ctx));
                }
            }
            answers.push(answer);
        }
        correlation.sort_by_key(|(c, _)| c.time);
        signals.sort_by_key(|s| s.0.first_seen);
        let mut new_features = Vec::new();
        for (s, ctx, row) in signals {
            if disabled.contains(&s.rule_id)
                || active
                    .iter()
                    .any(|x| x.rule_id == s.rule_id && x.entity == s.entity)
            {
                metrics.signals_suppressed.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let Some(id) = alerter.add(s, ctx, now, metrics) else {
                continue;
            };
            // A new alert: keep the features it was raised with, and score it.
            let f = row.and_then(|i| features.get(i)).and_then(|f| f.as_ref());
            if let Some((x, score)) = f {
                new_features.push(cloudsentinel_store::AlertFeatures {
                    alert_id: id,
                    schema: SCHEMA_VERSION,
                    values: x.values.to_vec(),
                    anomaly_score: *score,
                });
            }
            if let Some(fb) = &learner.feedback {
                alerter.score(id, &fb.model, f, learner.auto_close_below, metrics);
            }
        }
        let (alerts, incidents) = alerter.take_dirty();
        changed = alerts.clone();
        Derived {
            alerts,
            incidents,
            features: new_features,
        }
    })?;
    alerter.prune();
    Ok((answers, changed, correlation))
}

/// How often the pipeline keeps its baselines in the store. Between saves nothing is lost: on
/// start the baselines replay the events stored after the kept copy.
const SAVE_BASELINES_EVERY: std::time::Duration = std::time::Duration::from_secs(300);

/// The pipeline's behaviour state: baselines, the active models as of the last commit.
pub struct Learner {
    engine: Behaviour,
    enabled: bool,
    generation: u64,
    feedback: Option<Active<FeedbackModel>>,
    auto_close_below: Option<f64>,
    last_save: Instant,
    learned: u64,
}

/// Features (and the anomaly score, with a model) per event of a commit; `None` for events
/// that are duplicates or whose principal is still being learned.
type EventFeatures = Vec<Option<(Features, Option<f64>)>>;

impl Learner {
    fn new(baselines: Baselines, learning: &Learning) -> Learner {
        let mut l = Learner {
            engine: Behaviour::new(baselines, None),
            enabled: learning.enabled,
            generation: u64::MAX,
            feedback: None,
            auto_close_below: learning.auto_close_below,
            last_save: Instant::now(),
            learned: 0,
        };
        l.refresh(learning);
        l
    }

    /// Picks up models activated since the last commit.
    fn refresh(&mut self, learning: &Learning) {
        let g = learning.generation();
        if g != self.generation {
            self.generation = g;
            self.engine.model = learning.anomaly().map(|a| a.model);
            self.feedback = learning.feedback();
        }
    }

    fn observe(
        &mut self,
        events: &[NewEvent],
        fresh: &[bool],
        signals: &mut Vec<(Signal, Context, Option<usize>)>,
        metrics: &Metrics,
    ) -> EventFeatures {
        if !self.enabled {
            return Vec::new();
        }
        let mut out: EventFeatures = vec![None; events.len()];
        let mut order: Vec<usize> = (0..events.len()).filter(|i| fresh[*i]).collect();
        order.sort_by_key(|i| events[*i].time);
        for i in order {
            let o = Observation::of_row(&events[i]);
            let r = self.engine.observe(&o);
            self.learned += 1;
            if r.score.is_some() {
                metrics.events_scored.fetch_add(1, Ordering::Relaxed);
            }
            if let Some(s) = r.signal {
                metrics.anomalies.fetch_add(1, Ordering::Relaxed);
                signals.push((s, Context::of_row(&o), Some(i)));
            }
            for s in r.detected {
                signals.push((s, Context::of_row(&o), Some(i)));
            }
            out[i] = r.features.map(|x| (x, r.score));
        }
        out
    }

    /// Keeps the baselines in the store (when they learned something since the last time).
    fn save(&mut self, store: &dyn Store) {
        self.last_save = Instant::now();
        if self.learned == 0 {
            return;
        }
        let started = Instant::now();
        self.engine.baselines.prune();
        let bytes = self.engine.baselines.to_bytes();
        match store.put_state(BASELINES_KEY, &bytes) {
            Ok(()) => {
                self.learned = 0;
                tracing::debug!(
                    bytes = bytes.len(),
                    ms = started.elapsed().as_millis() as u64,
                    "baselines kept"
                );
            }
            Err(e) => tracing::error!(error = %e, "could not keep the baselines"),
        }
    }
}

/// Folds signals into alerts and alerts into incidents, in memory, remembering what changed.
pub struct Alerter {
    window: Duration,
    incident_window: Duration,
    /// (rule id, entity) -> open alert ids.
    open: HashMap<(String, String), Vec<i64>>,
    alerts: HashMap<i64, AlertRecord>,
    /// Principal or access key -> incident ids.
    incident_keys: HashMap<String, Vec<i64>>,
    incidents: HashMap<i64, IncidentRecord>,
    /// The keys each kept incident is filed under.
    incident_key_of: HashMap<i64, Vec<String>>,
    next_alert: i64,
    next_incident: i64,
    dirty_alerts: HashSet<i64>,
    dirty_incidents: HashSet<i64>,
    /// Latest event time seen, for pruning.
    horizon: DateTime<Utc>,
    /// Identity an incident's principal created -> (that incident, when).
    links: HashMap<String, (i64, DateTime<Utc>)>,
    /// Incident -> the name of its principal when that is known by an object id.
    incident_names: HashMap<i64, String>,
}

/// Open alerts and incidents kept in memory at most; older ones are forgotten first.
const MAX_KEPT: usize = 50_000;
/// How long an identity an incident's principal created leads back to that incident.
pub const LINEAGE_DAYS: i64 = 7;
/// Keys (principals, access keys, addresses) one incident answers to at most.
const MAX_INCIDENT_KEYS: usize = 64;

/// What an alert can join an incident by.
struct Joins {
    access_key: Option<String>,
    principal: String,
    /// The public source address, when the event had one.
    address: Option<std::net::IpAddr>,
    created: Vec<String>,
    /// The principal's name, when it is known by an object id.
    name: Option<String>,
}

/// The person behind a principal, by e-mail: an Entra user's name, a Google account, an AWS
/// Identity Center (or SAML) session named after its user. Service accounts and roles are no
/// person.
fn person_of(principal: &str, name: Option<&str>) -> Option<String> {
    let email = |s: &str| {
        let s = s.trim();
        (s.contains('@') && !s.contains(' ') && !s.ends_with(".gserviceaccount.com"))
            .then(|| s.to_ascii_lowercase())
    };
    if let Some(rest) = principal.strip_prefix("arn:aws:sts::") {
        return rest.rsplit('/').next().and_then(email);
    }
    if principal.starts_with("arn:") {
        return None;
    }
    email(principal).or_else(|| name.and_then(email))
}

/// A source address worth grouping by: public (not a VPC's, a loopback or link-local address,
/// which many unrelated callers share).
fn public_address(s: &str) -> Option<std::net::IpAddr> {
    let ip: std::net::IpAddr = s.parse().ok()?;
    let shared = match ip {
        std::net::IpAddr::V4(v) => {
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
        }
        std::net::IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    (!shared).then_some(ip)
}

impl Alerter {
    pub fn resume(store: &dyn Store, settings: &PipelineSettings) -> anyhow::Result<Alerter> {
        let (max_alert, max_incident) = store.max_ids()?;
        let mut a = Alerter {
            window: settings.dedup_window,
            incident_window: settings.incident_window,
            open: HashMap::new(),
            alerts: HashMap::new(),
            incident_keys: HashMap::new(),
            incidents: HashMap::new(),
            incident_key_of: HashMap::new(),
            next_alert: max_alert + 1,
            next_incident: max_incident + 1,
            dirty_alerts: HashSet::new(),
            dirty_incidents: HashSet::new(),
            horizon: DateTime::<Utc>::MIN_UTC,
            links: HashMap::new(),
            incident_names: HashMap::new(),
        };
        let since = Utc::now() - settings.dedup_window.max(settings.incident_window) * 2;
        // Incidents as far back as an identity one of them created still leads to it.
        let incidents_since = since.min(Utc::now() - Duration::days(LINEAGE_DAYS));
        for i in store.recent_incidents(incidents_since)? {
            a.file_incident(i);
        }
        for r in store.recent_alerts(since)? {
            a.open
                .entry((r.rule_id.clone(), r.entity.clone()))
                .or_default()
                .push(r.id);
            a.horizon = a.horizon.max(r.last_seen);
            a.alerts.insert(r.id, r);
        }
        Ok(a)
    }

    /// Files the incident under one more key (a principal or address that joined it).
    fn add_incident_key(&mut self, id: i64, key: &str) {
        let keys = self.incident_key_of.entry(id).or_default();
        if keys.iter().any(|k| k == key) || keys.len() >= MAX_INCIDENT_KEYS {
            return;
        }
        keys.push(key.to_string());
        self.incident_keys
            .entry(key.to_string())
            .or_default()
            .push(id);
    }

    /// Files an incident under its key, its entity and what else it answers to (resumed from
    /// the store: the identities its principal created lead back to it again).
    fn file_incident(&mut self, i: IncidentRecord) {
        let mut keys = vec![i.key.clone()];
        if i.entity != i.key {
            keys.push(i.entity.clone());
        }
        for k in &i.join_keys {
            if !keys.contains(k) && keys.len() < MAX_INCIDENT_KEYS {
                keys.push(k.clone());
            }
        }
        for k in &keys {
            self.incident_keys.entry(k.clone()).or_default().push(i.id);
            if let Some(identity) = k.strip_prefix("created:") {
                self.links.insert(identity.to_string(), (i.id, i.last_seen));
            }
        }
        self.incident_key_of.insert(i.id, keys);
        self.incidents.insert(i.id, i);
    }

    /// Folds a signal into an open alert or opens one; answers the id of a new alert.
    fn add(
        &mut self,
        s: Signal,
        ctx: Context,
        now: DateTime<Utc>,
        metrics: &Metrics,
    ) -> Option<i64> {
        let Context {
            access_key,
            source_ip,
            principal,
            created,
            name,
        } = ctx;
        self.horizon = self.horizon.max(s.last_seen);
        let w = self.window;
        let key = (s.rule_id.clone(), s.entity.clone());
        let existing = self.open.get(&key).and_then(|ids| {
            ids.iter().copied().find(|id| {
                self.alerts.get(id).is_some_and(|a| {
                    s.first_seen <= a.last_seen + w && s.last_seen + w >= a.first_seen
                })
            })
        });
        let created_ids = created;
        let mut created = None;
        let id = if let Some(id) = existing {
            let a = self.alerts.get_mut(&id).expect("listed alerts are kept");
            a.count += 1;
            // A routine (informational) signal folded with one that is not: the alert is as
            // severe as its most severe signal.
            a.level = a.level.max(s.level);
            if s.first_seen < a.first_seen {
                a.first_seen = s.first_seen;
                a.explanation = s.explanation;
            }
            a.last_seen = a.last_seen.max(s.last_seen);
            for e in s.event_ids {
                if a.event_ids.len() >= MAX_EVIDENCE {
                    break;
                }
                if !a.event_ids.contains(&e) {
                    a.event_ids.push(e);
                }
            }
            a.updated = now;
            metrics.alerts_updated.fetch_add(1, Ordering::Relaxed);
            id
        } else {
            let id = self.next_alert;
            self.next_alert += 1;
            let mut event_ids = s.event_ids;
            event_ids.truncate(MAX_EVIDENCE);
            let a = AlertRecord {
                id,
                kind: s.kind.as_str().to_string(),
                rule_id: s.rule_id,
                title: s.title,
                level: s.level,
                techniques: s.techniques,
                tactics: s.tactics,
                entity: s.entity,
                account: s.account,
                access_key: access_key.clone(),
                source_ip: source_ip.clone(),
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                created: now,
                updated: now,
                count: 1,
                event_ids,
                explanation: s.explanation,
                status: AlertStatus::Open,
                assignee: None,
                incident_id: None,
                verdict: None,
                tp_score: None,
            };
            self.open.entry(key).or_default().push(id);
            self.alerts.insert(id, a);
            metrics.alerts_new.fetch_add(1, Ordering::Relaxed);
            created = Some(id);
            id
        };
        self.dirty_alerts.insert(id);
        let joins = Joins {
            access_key,
            principal,
            address: source_ip.as_deref().and_then(public_address),
            created: created_ids,
            name,
        };
        self.attach_incident(id, joins, now, metrics);
        created
    }

    /// Scores a new alert with the feedback model, and closes it when the analysts asked for
    /// likely false positives to be closed and the score is below their bar.
    fn score(
        &mut self,
        id: i64,
        model: &FeedbackModel,
        features: Option<&(Features, Option<f64>)>,
        auto_close_below: Option<f64>,
        metrics: &Metrics,
    ) {
        let Some(a) = self.alerts.get_mut(&id) else {
            return;
        };
        let p = model.score(&AlertFacts {
            rule_id: a.rule_id.clone(),
            kind: a.kind.clone(),
            level: a.level,
            count: a.count,
            features: features.map(|(x, _)| x.values.to_vec()),
            anomaly_score: features.and_then(|(_, s)| *s),
        });
        a.tp_score = Some(p);
        if let Some(bar) = auto_close_below
            && p < bar
        {
            a.status = AlertStatus::Resolved;
            a.explanation = format!(
                "{} [closed automatically: the feedback model gives it a {:.0}% chance of being a true positive, below the configured {:.0}%]",
                a.explanation,
                p * 100.0,
                bar * 100.0
            );
            metrics.alerts_auto_closed.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Files the alert under an incident whose time is within the incident window and that
    /// shares its access key, its principal or (for alerts, not informational signals) its public
    /// source address; else under the incident of whoever created the principal within
    /// [`LINEAGE_DAYS`] ([`crate::lineage`]); else opens one. The incident then answers to the
    /// alert's keys too, and to the identities the alert's event created.
    fn attach_incident(
        &mut self,
        alert_id: i64,
        joins: Joins,
        now: DateTime<Utc>,
        metrics: &Metrics,
    ) {
        let a = self.alerts[&alert_id].clone();
        let iw = self.incident_window;
        // Informational signals (change records, routine findings) join the incident their
        // principal already has, as context, but never open one, and do not join by address
        // (an organisation's own egress carries everyone's routine).
        let may_open = a.level > Level::Informational;
        let Joins {
            access_key,
            principal,
            address,
            created,
            name,
        } = joins;
        let address = address.filter(|_| may_open).map(|ip| format!("ip:{ip}"));
        // One person across clouds: the e-mail an Entra user, a Google account and an Identity
        // Center session share.
        let person = person_of(&principal, name.as_deref()).map(|p| format!("person:{p}"));
        let keys: Vec<String> = access_key
            .into_iter()
            .chain([principal.clone()])
            .chain(person)
            .collect();
        let in_window = |i: &IncidentRecord| {
            a.first_seen <= i.last_seen + iw && a.last_seen + iw >= i.first_seen
        };
        let incident_id = match a.incident_id {
            Some(id) if self.incidents.contains_key(&id) => Some(id),
            _ => keys.iter().chain(address.iter()).find_map(|k| {
                self.incident_keys.get(k).and_then(|ids| {
                    ids.iter()
                        .rev()
                        .copied()
                        .find(|id| self.incidents.get(id).is_some_and(in_window))
                })
            }),
        };
        // The identity was created by an incident's principal: its later doings are that story.
        let incident_id = incident_id.or_else(|| {
            keys.iter().find_map(|k| {
                let (id, at) = self.links.get(k)?;
                (a.first_seen >= *at - iw
                    && a.first_seen <= *at + chrono::Duration::days(LINEAGE_DAYS)
                    && self.incidents.contains_key(id))
                .then_some(*id)
            })
        });
        let id = match incident_id {
            Some(id) => id,
            None if !may_open => return,
            None => {
                let id = self.next_incident;
                self.next_incident += 1;
                metrics.incidents_new.fetch_add(1, Ordering::Relaxed);
                self.file_incident(IncidentRecord {
                    id,
                    key: keys[0].clone(),
                    entity: principal.clone(),
                    account: a.account.clone(),
                    title: a.title.clone(),
                    level: a.level,
                    status: AlertStatus::Open,
                    first_seen: a.first_seen,
                    last_seen: a.last_seen,
                    created: now,
                    updated: now,
                    alert_count: 0,
                    tactics: Vec::new(),
                    techniques: Vec::new(),
                    assignee: None,
                    severity: None,
                    close_reason: None,
                    join_keys: Vec::new(),
                });
                id
            }
        };
        if let Some(n) = name.filter(|n| *n != principal)
            && self.incidents[&id].entity == principal
            && crate::narrative::is_object_id(&principal)
            && self.incident_names.len() < MAX_KEPT
        {
            self.incident_names.insert(id, n);
        }
        let newly_attached = a.incident_id != Some(id);
        if newly_attached {
            self.alerts.get_mut(&alert_id).expect("kept").incident_id = Some(id);
        }
        for k in keys.iter().chain(address.iter()) {
            self.add_incident_key(id, k);
        }
        for c in created {
            self.add_incident_key(id, &format!("created:{c}"));
            if self.links.len() >= MAX_KEPT {
                self.links
                    .retain(|_, (_, at)| *at + chrono::Duration::days(LINEAGE_DAYS) >= a.last_seen);
            }
            if self.links.len() < MAX_KEPT {
                self.links.insert(c, (id, a.last_seen));
            }
        }
        let inc = self.incidents.get_mut(&id).expect("filed");
        if newly_attached {
            inc.alert_count += 1;
        }
        inc.first_seen = inc.first_seen.min(a.first_seen);
        inc.last_seen = inc.last_seen.max(a.last_seen);
        inc.updated = now;
        if a.level > inc.level {
            inc.level = a.level;
        }
        for t in &a.tactics {
            if !inc.tactics.contains(t) {
                inc.tactics.push(t.clone());
            }
        }
        inc.tactics.sort_by_key(|t| tactic_rank(t));
        for t in &a.techniques {
            if !inc.techniques.contains(t) {
                inc.techniques.push(t.clone());
            }
        }
        inc.techniques.sort();
        inc.title = incident_title(inc, &a, self.incident_names.get(&id));
        self.dirty_incidents.insert(id);
    }

    fn take_dirty(&mut self) -> (Vec<AlertRecord>, Vec<IncidentRecord>) {
        let mut alerts: Vec<AlertRecord> = self
            .dirty_alerts
            .drain()
            .filter_map(|id| self.alerts.get(&id).cloned())
            .collect();
        alerts.sort_by_key(|a| a.id);
        let mut incidents: Vec<IncidentRecord> = self
            .dirty_incidents
            .drain()
            .filter_map(|id| {
                let mut i = self.incidents.get(&id).cloned()?;
                i.join_keys = self.incident_key_of.get(&id).cloned().unwrap_or_default();
                Some(i)
            })
            .collect();
        incidents.sort_by_key(|i| i.id);
        (alerts, incidents)
    }

    /// Forgets alerts and incidents too old to take new signals (by event time), and the
    /// oldest ones beyond [`MAX_KEPT`].
    fn prune(&mut self) {
        if self.alerts.len() + self.incidents.len() < MAX_KEPT / 4 {
            return;
        }
        let alert_cut = self.horizon - self.window * 2;
        let mut old: Vec<(DateTime<Utc>, i64)> =
            self.alerts.values().map(|a| (a.last_seen, a.id)).collect();
        old.sort();
        let excess = self.alerts.len().saturating_sub(MAX_KEPT);
        for (i, (t, id)) in old.into_iter().enumerate() {
            if t >= alert_cut && i >= excess {
                break;
            }
            if let Some(a) = self.alerts.remove(&id)
                && let Some(list) = self.open.get_mut(&(a.rule_id.clone(), a.entity.clone()))
            {
                list.retain(|x| *x != id);
                if list.is_empty() {
                    self.open.remove(&(a.rule_id, a.entity));
                }
            }
        }
        let horizon = self.horizon;
        self.links
            .retain(|_, (_, at)| *at + chrono::Duration::days(LINEAGE_DAYS) >= horizon);
        let incident_cut = self.horizon - self.incident_window * 2;
        let mut old: Vec<(DateTime<Utc>, i64)> = self
            .incidents
            .values()
            .map(|i| (i.last_seen, i.id))
            .collect();
        old.sort();
        let excess = self.incidents.len().saturating_sub(MAX_KEPT);
        for (n, (t, id)) in old.into_iter().enumerate() {
            if t >= incident_cut && n >= excess {
                break;
            }
            self.incidents.remove(&id);
            self.incident_names.remove(&id);
            for k in self.incident_key_of.remove(&id).unwrap_or_default() {
                if let Some(list) = self.incident_keys.get_mut(&k) {
                    list.retain(|x| *x != id);
                    if list.is_empty() {
                        self.incident_keys.remove(&k);
                    }
                }
            }
        }
    }
}

/// ATT&CK's tactic order (the kill chain), for incident timelines.
pub fn tactic_rank(t: &str) -> usize {
    cloudsentinel_core::TACTICS
        .iter()
        .position(|x| *x == t)
        .unwrap_or(cloudsentinel_core::TACTICS.len())
}

fn incident_title(inc: &IncidentRecord, latest: &AlertRecord, name: Option<&String>) -> String {
    if inc.alert_count <= 1 {
        return latest.title.clone();
    }
    let who = name.unwrap_or(&inc.entity);
    if inc.tactics.is_empty() {
        format!("{} alerts about {who}", inc.alert_count)
    } else {
        format!(
            "{} alerts about {who}: {}",
            inc.alert_count,
            inc.tactics.join(" → ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cloudsentinel_core::SignalKind;
    use cloudsentinel_store::{SqliteOptions, SqliteStore};

    fn settings() -> PipelineSettings {
        PipelineSettings {
            dedup_window: Duration::hours(1),
            incident_window: Duration::hours(1),
            max_commit_events: 1000,
            max_queued_events: 1000,
        }
    }

    fn alerter() -> (tempfile::TempDir, Alerter) {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&dir.path().join("cs.db"), &SqliteOptions::default()).unwrap();
        let a = Alerter::resume(&store, &settings()).unwrap();
        (dir, a)
    }

    /// Folds a signal with its context into the alerter; the id of the alert it made or joined.
    fn raise(a: &mut Alerter, s: Signal, c: Context) -> i64 {
        let key = (s.rule_id.clone(), s.entity.clone());
        if let Some(id) = a.add(s, c, Utc::now(), &Metrics::default()) {
            return id;
        }
        *a.open[&key].last().expect("an open alert")
    }

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .unwrap()
    }

    fn signal(rule: &str, entity: &str, level: Level, t: DateTime<Utc>) -> Signal {
        Signal {
            kind: SignalKind::Rule,
            rule_id: rule.into(),
            title: rule.into(),
            level,
            techniques: vec![],
            tactics: vec![],
            entity: entity.into(),
            account: None,
            first_seen: t,
            last_seen: t,
            event_ids: vec![format!("{rule}-{entity}-{}", t.timestamp())],
            explanation: String::new(),
        }
    }

    fn ctx(principal: &str, ip: &str, created: &[&str]) -> Context {
        Context {
            access_key: None,
            source_ip: Some(ip.into()),
            principal: principal.into(),
            created: created.iter().map(|s| s.to_string()).collect(),
            name: None,
        }
    }

    fn incident_of(a: &Alerter, id: i64) -> i64 {
        a.alerts[&id].incident_id.expect("in an incident")
    }

    #[test]
    fn one_address_against_many_principals_and_what_an_intruder_created_make_one_incident() {
        let (_dir, mut a) = alerter();
        let attacker = "185.156.73.54";
        // A spray from one address, then the accounts it broke into, each from that address.
        let spray = raise(
            &mut a,
            signal("spray", attacker, Level::High, at(5, 3, 0)),
            ctx(attacker, attacker, &[]),
        );
        let user = raise(
            &mut a,
            signal("risky-sign-in", "svc@corp", Level::Medium, at(5, 3, 20)),
            ctx("svc@corp", attacker, &["sp-1"]),
        );
        assert_eq!(incident_of(&a, spray), incident_of(&a, user));
        // The service principal the account armed, two days later from another address.
        let sp = raise(
            &mut a,
            signal("run-command", "sp-1", Level::Medium, at(7, 9, 0)),
            ctx("sp-1", "159.223.44.182", &[]),
        );
        assert_eq!(
            incident_of(&a, sp),
            incident_of(&a, spray),
            "the identity it created"
        );
        // Another principal from a private address (a VPC endpoint many share), meanwhile: its own.
        let other = raise(
            &mut a,
            signal("burst", "dev@corp", Level::Medium, at(5, 3, 10)),
            ctx("dev@corp", "10.0.3.7", &[]),
        );
        let other2 = raise(
            &mut a,
            signal("burst", "ops@corp", Level::Medium, at(5, 3, 15)),
            ctx("ops@corp", "10.0.3.7", &[]),
        );
        assert_ne!(incident_of(&a, other), incident_of(&a, spray));
        assert_ne!(
            incident_of(&a, other),
            incident_of(&a, other2),
            "a private address joins nothing"
        );
        // An informational record from the attacker's address joins no one by address.
        let info = a.add(
            signal(
                "change-record",
                "someone@corp",
                Level::Informational,
                at(5, 3, 30),
            ),
            ctx("someone@corp", attacker, &[]),
            Utc::now(),
            &Metrics::default(),
        );
        assert!(info.is_some_and(|id| a.alerts[&id].incident_id.is_none()));
        // What the created identity does after a week is a new story.
        let late = raise(
            &mut a,
            signal("run-command2", "sp-1", Level::Medium, at(20, 9, 0)),
            ctx("sp-1", "159.223.44.183", &[]),
        );
        assert_ne!(incident_of(&a, late), incident_of(&a, spray));
    }

    #[test]
    fn one_person_across_clouds_is_one_incident() {
        let (_dir, mut a) = alerter();
        let mut entra = ctx("9d2f7a1c-4b3e-4c5d-8e6f-0a1b2c3d4e5f", "198.51.100.4", &[]);
        entra.name = Some("Alice@Corp.example".into());
        let first = raise(
            &mut a,
            signal(
                "entra-risky",
                "9d2f7a1c-4b3e-4c5d-8e6f-0a1b2c3d4e5f",
                Level::High,
                at(5, 9, 0),
            ),
            entra,
        );
        let gcp = raise(
            &mut a,
            signal("gcp-owner", "alice@corp.example", Level::High, at(5, 9, 20)),
            ctx("alice@corp.example", "203.0.113.9", &[]),
        );
        let sso =
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b/alice@corp.example";
        let aws = raise(
            &mut a,
            signal("aws-burst", sso, Level::Medium, at(5, 9, 40)),
            ctx(sso, "192.0.2.77", &[]),
        );
        assert_eq!(incident_of(&a, gcp), incident_of(&a, first));
        assert_eq!(incident_of(&a, aws), incident_of(&a, first));
        assert_eq!(
            a.incidents[&incident_of(&a, first)].entity,
            "9d2f7a1c-4b3e-4c5d-8e6f-0a1b2c3d4e5f",
            "an incident is about its first principal, not a join key"
        );
        // A role or a service account is nobody's person.
        assert_eq!(person_of("arn:aws:iam::1:role/ci", None), None);
        assert_eq!(person_of("etl@p.iam.gserviceaccount.com", None), None);
        assert_eq!(
            person_of("arn:aws:sts::1:assumed-role/app-server-role/i-0abc", None),
            None
        );
        let bob = raise(
            &mut a,
            signal("gcp-owner", "bob@corp.example", Level::High, at(5, 9, 30)),
            ctx("bob@corp.example", "203.0.113.10", &[]),
        );
        assert_ne!(incident_of(&a, bob), incident_of(&a, first));
    }

    #[test]
    fn grouping_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            SqliteStore::open(&dir.path().join("cs.db"), &SqliteOptions::default()).unwrap();
        let t0 = Utc::now() - Duration::hours(30);
        let attacker = "185.156.73.54";
        let mut a = Alerter::resume(&store, &settings()).unwrap();
        let first = raise(
            &mut a,
            signal("spray", "svc@corp", Level::High, t0),
            ctx("svc@corp", attacker, &["sp-9"]),
        );
        let incident = a.alerts[&first].incident_id.unwrap();
        let (alerts, incidents) = a.take_dirty();
        store
            .commit(&[], &mut |_| cloudsentinel_store::Derived {
                alerts: alerts.clone(),
                incidents: incidents.clone(),
                ..Default::default()
            })
            .unwrap();
        // The service restarts.
        let mut b = Alerter::resume(&store, &settings()).unwrap();
        let same_address = raise(
            &mut b,
            signal(
                "risky",
                "ops@corp",
                Level::Medium,
                t0 + Duration::minutes(20),
            ),
            ctx("ops@corp", attacker, &[]),
        );
        assert_eq!(b.alerts[&same_address].incident_id, Some(incident));
        let created_later = raise(
            &mut b,
            signal(
                "run-command",
                "sp-9",
                Level::Medium,
                t0 + Duration::hours(26),
            ),
            ctx("sp-9", "159.223.44.182", &[]),
        );
        assert_eq!(b.alerts[&created_later].incident_id, Some(incident));
    }
}
