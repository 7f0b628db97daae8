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

use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{Duration, Utc};
use cloudsentinel_alert::AlertRecord;
use cloudsentinel_alert::{Alerter, Context, Resume, Windows};
use cloudsentinel_core::{Event, Origin, Provider, Signal};
use cloudsentinel_detect::sigma::CorrelationInput;
use cloudsentinel_detect::{RuleSet, Stage};
use cloudsentinel_ingest::{Item, ReadOptions};
use cloudsentinel_store::{Derived, NewEvent, Store, SuppressionRecord};
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

/// The alerting context of an event as the behaviour stage reads it.
fn context_of_row(o: &Observation<'_>) -> Context {
    Context {
        access_key: o.access_key.map(str::to_string),
        source_ip: o.source_ip.map(str::to_string),
        principal: o.principal().to_string(),
        created: Vec::new(),
        name: o.actor_name.map(str::to_string),
    }
}

/// The alerter, resumed from the alerts and incidents in the store that new signals can still
/// join.
pub fn resume_alerter(store: &dyn Store, settings: &PipelineSettings) -> anyhow::Result<Alerter> {
    let windows = settings.windows();
    let (alerts_since, incidents_since) = windows.resume_since(Utc::now());
    let (max_alert_id, max_incident_id) = store.max_ids()?;
    Ok(Alerter::resume(
        windows,
        Resume {
            max_alert_id,
            max_incident_id,
            alerts: store.recent_alerts(alerts_since)?,
            incidents: store.recent_incidents(incidents_since)?,
        },
    ))
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
/// gzip-compressed) into events, enriched by the stage. Fails on the first malformed record (listing up to 20), so that
/// nothing of a bad batch is stored. Answers the events and the records skipped.
pub fn decode(
    body: &[u8],
    provider: Option<Provider>,
    source: &str,
    max_records: usize,
    stage: Stage<'_>,
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
    stage.decode_bytes(body, origin, options, &mut |item| match item {
        Item::Event(e) => {
            if events.len() >= max_records {
                too_many = true;
            } else {
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

/// Runs the detection rules on events the stage decoded and turns them into rows.
pub fn detect_rows(events: Vec<Event>, stage: Stage<'_>, received: Instant) -> Prepared {
    let mut signals = Vec::new();
    let mut correlation = Vec::new();
    for (i, e) in events.iter().enumerate() {
        let d = stage.detect(e);
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
    let (mut events, skipped) = {
        let (rules, net) = (Arc::clone(&rules), net.clone());
        workers
            .run(move || {
                let stage = Stage::new(&rules, &net);
                decode(&body, provider, &source, max_records, stage)
            })
            .await??
    };
    let second = if events.len() >= SPLIT_AT {
        let tail = events.split_off(events.len() / 2);
        let (rules, net) = (Arc::clone(&rules), net.clone());
        Some(workers.run(move || detect_rows(tail, Stage::new(&rules, &net), received)))
    } else {
        None
    };
    let first = workers.run(move || detect_rows(events, Stage::new(&rules, &net), received));
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
    /// Start alerting again from what the store holds (a detect process taking the bus's queue
    /// over from another, which committed alerts this one has not seen).
    Resume(oneshot::Sender<Result<(), String>>),
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
    pub async fn submit(&self, p: Prepared) -> Result<Committed, String> {
        self.enqueue(p)
            .await?
            .await
            .map_err(|_| "pipeline stopped".to_string())?
    }

    /// Queues a batch, waiting for room; answers the receiver of its commit's answer.
    pub async fn enqueue(&self, mut p: Prepared) -> Result<Answer, String> {
        loop {
            match self.queue(p) {
                Ok(rx) => return Ok(rx),
                Err((SubmitError::Stopped, _)) => return Err("pipeline stopped".into()),
                Err((SubmitError::Saturated, back)) => {
                    p = back;
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }

    /// Resumes alerting from the store before the batches queued after this call (another
    /// process may have committed alerts and incidents meanwhile), and waits for it.
    pub async fn resume(&self) -> Result<(), String> {
        let (tx, rx) = oneshot::channel();
        let mut msg = Msg::Resume(tx);
        loop {
            match self.tx.try_send(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(m)) => {
                    msg = m;
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                Err(TrySendError::Disconnected(_)) => return Err("pipeline stopped".into()),
            }
        }
        rx.await.map_err(|_| "pipeline stopped".to_string())?
    }

    /// Queues signals that no event carries (a log source gone silent): they are folded and
    /// committed like a correlation's, with the next commit.
    pub fn signals(&self, signals: Vec<(Signal, Context)>) -> Result<(), SubmitError> {
        self.tx
            .try_send(Msg::Signals(signals))
            .map_err(|e| match e {
                TrySendError::Full(_) => SubmitError::Saturated,
                TrySendError::Disconnected(_) => SubmitError::Stopped,
            })
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

impl PipelineSettings {
    pub fn windows(&self) -> Windows {
        Windows {
            dedup: self.dedup_window,
            incident: self.incident_window,
        }
    }
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
        notifier: Arc<crate::notify::Notifier>,
    ) -> anyhow::Result<(Pipeline, Submitter)> {
        let (tx, rx) = sync_channel(4096);
        let mut alerter = resume_alerter(store.as_ref(), &settings)?;
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
                        &notifier,
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

/// The store state key of the correlation thread's state (open windows, routine history).
pub const CORRELATION_STATE: &str = "correlation.state";

/// How often the correlation thread keeps its state in the store while it is fed.
const SAVE_CORRELATION_EVERY: std::time::Duration = std::time::Duration::from_secs(10);

/// What the correlation thread is sent.
enum CorrMsg {
    /// New events' correlation inputs, in commit order.
    Inputs(Vec<(CorrelationInput, Context)>),
    /// Start again from the state kept in the store (a detect process taking over).
    Restore,
}

/// The correlation thread: feeds the Sigma correlations with the new events' inputs, in commit
/// order, and sends what fires back to the pipeline thread, which commits it with the next
/// batch. Correlation costs more per event than storing it; on its own thread it runs beside the
/// commits. Its backlog counts in the queue, so a lagging correlator turns into 429s, not memory.
/// Its state starts from what the store kept, and is kept there every
/// [`SAVE_CORRELATION_EVERY`] while it is fed and when it ends, so that a restart, or the detect
/// process that takes over, goes on with the windows that were open.
fn correlate(
    rules: &RuleSet,
    rx: Receiver<CorrMsg>,
    back: SyncSender<Msg>,
    metrics: &Metrics,
    store: &dyn Store,
) {
    let restore =
        |c: &mut cloudsentinel_detect::Correlator<'_>| match store.get_state(CORRELATION_STATE) {
            Ok(Some(bytes)) => {
                if let Err(e) = c.import(&bytes) {
                    tracing::warn!(
                        error = e,
                        "the kept correlation state is not usable; starting empty"
                    );
                }
            }
            Ok(None) => {}
            Err(e) => {
                tracing::warn!(error = %e, "cannot read the kept correlation state; starting empty")
            }
        };
    let save = |c: &cloudsentinel_detect::Correlator<'_>| {
        if let Err(e) = store.put_state(CORRELATION_STATE, &c.export()) {
            tracing::warn!(error = %e, "cannot keep the correlation state");
        }
    };
    let Some(mut correlator) = rules.correlator() else {
        for msg in rx {
            if let CorrMsg::Inputs(inputs) = msg {
                metrics
                    .queued_events
                    .fetch_sub(inputs.len() as i64, Ordering::SeqCst);
            }
        }
        return;
    };
    restore(&mut correlator);
    // Only a correlator that was fed keeps its state: one standing by must not overwrite the
    // state of the one working.
    let mut fed = false;
    let mut last_save = Instant::now();
    for msg in rx {
        let inputs = match msg {
            CorrMsg::Restore => {
                if let Some(fresh) = rules.correlator() {
                    correlator = fresh;
                    restore(&mut correlator);
                }
                fed = false;
                continue;
            }
            CorrMsg::Inputs(inputs) => inputs,
        };
        let n = inputs.len() as i64;
        let mut fired = Vec::new();
        for (input, ctx) in inputs {
            for s in correlator.feed(input) {
                // The correlation's evidence is about the group; the context of the event that
                // completed it is the best guess for its access key and address.
                fired.push((s, ctx.clone()));
            }
        }
        fed = true;
        if !fired.is_empty() && back.send(Msg::Signals(fired)).is_err() {
            return;
        }
        metrics.queued_events.fetch_sub(n, Ordering::SeqCst);
        if last_save.elapsed() >= SAVE_CORRELATION_EVERY {
            save(&correlator);
            last_save = Instant::now();
        }
    }
    if fed {
        save(&correlator);
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
    notifier: &crate::notify::Notifier,
) {
    std::thread::scope(|scope| {
        let (corr_tx, corr_rx) = std::sync::mpsc::channel();
        let correlation = std::thread::Builder::new()
            .name("correlation".into())
            .spawn_scoped(scope, move || {
                correlate(rules, corr_rx, back, metrics, store)
            })
            .expect("a thread starts");
        let mut corr_tx = Some(corr_tx);
        // Set when a commit failed and the alerter could not start again from the store: what
        // it holds includes folds that were never stored, so nothing commits until it has.
        let mut stale = false;
        // Correlation signals that could not be committed yet (the store was unavailable).
        let mut carried: Vec<(Signal, Context)> = Vec::new();
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
            let mut resume = None;
            let mut late_signals = std::mem::take(&mut carried);
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
                    Msg::Resume(tx) => {
                        // What came before it is committed first, then the alerter starts again.
                        resume = Some(tx);
                        break;
                    }
                }
                if events >= settings.max_commit_events {
                    break;
                }
                msg = rx.try_recv().ok();
            }
            if batches.is_empty() && late_signals.is_empty() {
                if let Some(tx) = resume {
                    if let Some(c) = &corr_tx {
                        let _ = c.send(CorrMsg::Restore);
                    }
                    let _ = tx.send(take_over(
                        store, settings, alerter, notifier, learner, learning,
                    ));
                }
                continue;
            }
            let queued: i64 = batches.iter().map(|(p, _)| p.rows.len() as i64).sum();
            if stale {
                match resume_from_store(store, settings, alerter, notifier) {
                    Ok(()) => stale = false,
                    Err(e) => {
                        tracing::warn!(error = e, "the store is still unavailable");
                        metrics.queued_events.fetch_sub(queued, Ordering::SeqCst);
                        carried = late_signals;
                        for (_, tx) in batches {
                            let _ = tx.send(Err("the store is unavailable".into()));
                        }
                        if let Some(tx) = resume {
                            let _ = tx.send(Err(e));
                        }
                        continue;
                    }
                }
            }
            let started = Instant::now();
            learner.refresh(learning);
            // Kept to commit with the next batch should this commit fail.
            let signals_again = late_signals.clone();
            let result = process(
                &mut batches,
                late_signals,
                store,
                metrics,
                suppressions,
                alerter,
                learner,
                notifier,
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
                        let _ = tx.send(CorrMsg::Inputs(correlation_inputs));
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
                    stale = resume_from_store(store, settings, alerter, notifier).is_err();
                    carried = signals_again;
                    for (_, tx) in batches {
                        let _ = tx.send(Err("the store could not commit the batch".into()));
                    }
                }
            }
            if let Some(tx) = resume {
                if let Some(c) = &corr_tx {
                    let _ = c.send(CorrMsg::Restore);
                }
                let _ = tx.send(take_over(
                    store, settings, alerter, notifier, learner, learning,
                ));
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

/// Starts alerting again from the alerts and incidents in the store.
fn resume_from_store(
    store: &dyn Store,
    settings: &PipelineSettings,
    alerter: &mut Alerter,
    notifier: &crate::notify::Notifier,
) -> Result<(), String> {
    let a = resume_alerter(store, settings).map_err(|e| format!("{e:#}"))?;
    *alerter = a;
    notifier.forget();
    Ok(())
}

/// Starts again from the store as a process taking the bus's queue over: alerting, and the
/// behaviour baselines (the kept copy and the events stored after it).
fn take_over(
    store: &dyn Store,
    settings: &PipelineSettings,
    alerter: &mut Alerter,
    notifier: &crate::notify::Notifier,
    learner: &mut Learner,
    learning: &Learning,
) -> Result<(), String> {
    resume_from_store(store, settings, alerter, notifier)?;
    let baselines = learning.baselines(store).map_err(|e| format!("{e:#}"))?;
    *learner = Learner::new(baselines, learning);
    Ok(())
}

/// The answers per batch, the alerts that changed, and the new events' correlation inputs.
type Processed = (
    Vec<Committed>,
    Vec<AlertRecord>,
    Vec<(CorrelationInput, Context)>,
);

/// Commits a group of batches: their events, then (inside the same transaction, once the store
/// has said which events are new) the alerts and incidents those new events raise.
#[allow(clippy::too_many_arguments)] // the pipeline thread's state, each part used here
fn process(
    batches: &mut [(Prepared, oneshot::Sender<Result<Committed, String>>)],
    late_signals: Vec<(Signal, Context)>,
    store: &dyn Store,
    metrics: &Metrics,
    suppressions: &Suppressions,
    alerter: &mut Alerter,
    learner: &mut Learner,
    notifier: &crate::notify::Notifier,
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
    let changed: Vec<AlertRecord>;
    let mut correlation = Vec::new();
    let queued_messages: bool;
    // One transaction: the events go in first; what the new ones derive is handed back to it.
    let tx = store.begin_commit(&events)?;
    let derived = {
        let fresh_all: &[bool] = tx.fresh();
        let mut signals: Vec<(Signal, Context, Option<usize>)> = late_signals
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
            let Some(id) = alerter.add(s, ctx, now) else {
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
            if let Some(fb) = &learner.feedback
                && let Some(a) = alerter.alert(id)
            {
                let p = fb.model.score(&AlertFacts {
                    rule_id: a.rule_id.clone(),
                    kind: a.kind.clone(),
                    level: a.level,
                    count: a.count,
                    features: f.map(|(x, _)| x.values.to_vec()),
                    anomaly_score: f.and_then(|(_, s)| *s),
                });
                alerter.set_tp_score(id, p, learner.auto_close_below);
            }
        }
        let (alerts, incidents) = alerter.take_dirty();
        let deliveries = notifier.route(&alerts, &incidents, now);
        queued_messages = !deliveries.is_empty();
        changed = alerts.clone();
        Derived {
            alerts,
            incidents,
            features: new_features,
            deliveries,
        }
    };
    tx.finish(derived)?;
    if queued_messages {
        notifier.wake();
    }
    alerter.prune();
    let c = alerter.take_counts();
    metrics
        .alerts_new
        .fetch_add(c.alerts_new, Ordering::Relaxed);
    metrics
        .alerts_updated
        .fetch_add(c.alerts_updated, Ordering::Relaxed);
    metrics
        .incidents_new
        .fetch_add(c.incidents_new, Ordering::Relaxed);
    metrics
        .alerts_auto_closed
        .fetch_add(c.auto_closed, Ordering::Relaxed);
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
                signals.push((s, context_of_row(&o), Some(i)));
            }
            for s in r.detected {
                signals.push((s, context_of_row(&o), Some(i)));
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
