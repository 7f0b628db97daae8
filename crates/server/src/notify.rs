//! Delivery of alert changes to the `[[notify]]` sinks, through an outbox in the store.
//!
//! - The pipeline thread asks the [`Notifier`]'s router which sinks hear of each alert change of
//!   a commit and writes those messages (deliveries) in the same transaction as the alerts; an
//!   analyst's status change writes its messages with the status. What the store acknowledged is
//!   never lost: a kill -9 after the commit leaves the messages pending for the next start.
//! - One dispatcher thread per sink sends its pending deliveries in the order they were queued
//!   (so an update never overtakes its alert's first message), records every try, and on a
//!   failure that may pass (network, timeout, 408, 429, 5xx) waits with exponential backoff and
//!   jitter ([`cloudsentinel_notify::backoff`], `Retry-After` honoured) before trying that
//!   delivery again; a refusal (other 4xx) or the last try makes it dead, and the next one goes.
//!   A slow or dead sink holds only its own thread: ingest and the other sinks go on.
//! - Delivery is at least once: a crash between a receiver's answer and the store's record of
//!   it sends that one message again on restart. Receivers can tell: every webhook carries its
//!   delivery id, PagerDuty deduplicates by the alert's key and ServiceNow incidents are found by
//!   correlation id before one is created.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudsentinel_alert::{AlertRecord, IncidentRecord};
use cloudsentinel_context::NetContext;
use cloudsentinel_notify::{Change, Notice, Outcome, Router, Sink};
use cloudsentinel_store::{DeliveryResult, NewDelivery, Store};

/// Per-sink counters for `/metrics`.
#[derive(Default)]
pub struct SinkMetrics {
    pub sent: AtomicU64,
    pub failed: AtomicU64,
    pub retried: AtomicU64,
    pub dead: AtomicU64,
    /// Milliseconds from the commit that queued a sent message to its receiver's answer, summed.
    pub latency_ms_sum: AtomicU64,
    /// Sent messages per latency bucket ([`LATENCY_BUCKETS`], not cumulative).
    pub latency_buckets: [AtomicU64; LATENCY_BUCKETS.len()],
    /// The last try failed (cleared by the next success).
    pub failing: AtomicBool,
}

/// Upper bounds (seconds) of the delivery latency histogram: from a healthy receiver's tens of
/// milliseconds to the minutes a backlog waits after an outage.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 30.0, 60.0, 300.0, 1800.0,
];

impl SinkMetrics {
    fn observe_latency(&self, ms: u64) {
        self.latency_ms_sum.fetch_add(ms, Ordering::Relaxed);
        let secs = ms as f64 / 1000.0;
        if let Some(i) = LATENCY_BUCKETS.iter().position(|b| secs <= *b) {
            self.latency_buckets[i].fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The sinks, the router and the wake-up the dispatchers wait on.
pub struct Notifier {
    pub sinks: Vec<Sink>,
    router: Mutex<Router>,
    /// Bumped after each commit that queued deliveries.
    wake: (Mutex<u64>, Condvar),
    pub metrics: Vec<SinkMetrics>,
    stop: AtomicBool,
    /// Whether this process sends: in a scaled-out deployment, only the detect process holding
    /// the lease does (each delivery is sent by one process).
    sending: AtomicBool,
}

impl Notifier {
    pub fn new(sinks: Vec<Sink>) -> Notifier {
        Notifier {
            router: Mutex::new(Router::new(&sinks)),
            metrics: sinks.iter().map(|_| SinkMetrics::default()).collect(),
            sinks,
            wake: (Mutex::new(0), Condvar::new()),
            stop: AtomicBool::new(false),
            sending: AtomicBool::new(true),
        }
    }

    /// Starts or stops sending (the outbox stays as it is).
    pub fn set_sending(&self, on: bool) {
        self.sending.store(on, Ordering::SeqCst);
        self.wake();
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty()
    }

    pub fn sink(&self, name: &str) -> Option<(usize, &Sink)> {
        self.sinks.iter().enumerate().find(|(_, s)| s.name == name)
    }

    fn router(&self) -> std::sync::MutexGuard<'_, Router> {
        self.router.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Whether some sink hears of incidents.
    pub fn has_incident_sinks(&self) -> bool {
        self.sinks.iter().any(|s| s.incidents)
    }

    /// The messages a commit's changes make (`alerts`, `incidents`: what it changed).
    pub fn route(
        &self,
        alerts: &[AlertRecord],
        incidents: &[IncidentRecord],
        now: DateTime<Utc>,
    ) -> Vec<NewDelivery> {
        if self.sinks.is_empty() {
            return Vec::new();
        }
        let mut router = self.router();
        let mut out = Vec::new();
        for a in alerts {
            let is_new = a.created == a.updated;
            for (sink, change) in router.route(a, is_new, now) {
                out.push(delivery(sink, a, None, change));
            }
        }
        if self.has_incident_sinks() {
            for i in incidents {
                // Its latest alert of this commit says where from and what it did last.
                let Some(latest) = alerts
                    .iter()
                    .filter(|a| a.incident_id == Some(i.id))
                    .max_by_key(|a| (a.last_seen, a.id))
                else {
                    continue;
                };
                let is_new = i.created == i.updated;
                for (sink, change) in router.route_incident(i, is_new, now) {
                    out.push(delivery(sink, latest, Some(i), change));
                }
            }
        }
        out
    }

    /// The messages an analyst's change of an incident's status makes (`after`: the incident
    /// with its new status; `latest`: its latest alert).
    pub fn route_incident_status(
        &self,
        after: &IncidentRecord,
        latest: &AlertRecord,
    ) -> Vec<NewDelivery> {
        self.router()
            .route_incident_status(after, Utc::now())
            .into_iter()
            .map(|(sink, change)| delivery(sink, latest, Some(after), change))
            .collect()
    }

    /// The messages an analyst's status change makes (`after`: the alert with its new status).
    pub fn route_status(&self, after: &AlertRecord) -> Vec<NewDelivery> {
        if self.sinks.is_empty() {
            return Vec::new();
        }
        self.router()
            .route_status(after, Utc::now())
            .into_iter()
            .map(|(sink, change)| delivery(sink, after, None, change))
            .collect()
    }

    /// Forgets what was routed (a commit that routed messages failed): changes are news again.
    pub fn forget(&self) {
        *self.router() = Router::new(&self.sinks);
    }

    /// Wakes the dispatchers (deliveries were committed).
    pub fn wake(&self) {
        let (n, cv) = &self.wake;
        *n.lock().unwrap_or_else(|e| e.into_inner()) += 1;
        cv.notify_all();
    }

    /// Waits until woken or `timeout` passes.
    fn wait(&self, seen: &mut u64, timeout: Duration) {
        let (n, cv) = &self.wake;
        let guard = n.lock().unwrap_or_else(|e| e.into_inner());
        if *guard != *seen {
            *seen = *guard;
            return;
        }
        let (guard, _) = cv
            .wait_timeout(guard, timeout)
            .unwrap_or_else(|e| e.into_inner());
        *seen = *guard;
    }

    /// Sinks whose last try failed, for `/health`.
    pub fn failing(&self) -> Vec<&str> {
        self.sinks
            .iter()
            .zip(&self.metrics)
            .filter(|(_, m)| m.failing.load(Ordering::Relaxed))
            .map(|(s, _)| s.name.as_str())
            .collect()
    }

    /// The Prometheus lines of the per-sink counters.
    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        if self.sinks.is_empty() {
            return;
        }
        let series: [Series; 4] = [
            (
                "cloudsentinel_notify_sent_total",
                "Messages a sink's receiver accepted.",
                |m| m.sent.load(Ordering::Relaxed),
            ),
            (
                "cloudsentinel_notify_failed_total",
                "Tries that failed (each retry counts).",
                |m| m.failed.load(Ordering::Relaxed),
            ),
            (
                "cloudsentinel_notify_retried_total",
                "Tries scheduled again after a failure.",
                |m| m.retried.load(Ordering::Relaxed),
            ),
            (
                "cloudsentinel_notify_dead_total",
                "Messages given up (refused, or out of tries).",
                |m| m.dead.load(Ordering::Relaxed),
            ),
        ];
        for (name, help, get) in series {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (s, m) in self.sinks.iter().zip(&self.metrics) {
                let _ = writeln!(
                    out,
                    "{name}{{sink=\"{}\",kind=\"{}\"}} {}",
                    s.name,
                    s.kind.as_str(),
                    get(m)
                );
            }
        }
        let name = "cloudsentinel_notify_latency_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Seconds from the commit that queued a message to its receiver's answer, per sink (sent messages)."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (s, m) in self.sinks.iter().zip(&self.metrics) {
            let labels = format!("sink=\"{}\",kind=\"{}\"", s.name, s.kind.as_str());
            let mut cumulative = 0;
            for (b, c) in LATENCY_BUCKETS.iter().zip(&m.latency_buckets) {
                cumulative += c.load(Ordering::Relaxed);
                let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{b}\"}} {cumulative}");
            }
            let sent = m.sent.load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {sent}");
            let _ = writeln!(
                out,
                "{name}_sum{{{labels}}} {}",
                m.latency_ms_sum.load(Ordering::Relaxed) as f64 / 1000.0
            );
            let _ = writeln!(out, "{name}_count{{{labels}}} {sent}");
        }
    }
}

/// A metric: name, help, and how to read it from a sink's counters.
type Series = (&'static str, &'static str, fn(&SinkMetrics) -> u64);

fn delivery(
    sink: String,
    a: &AlertRecord,
    incident: Option<&IncidentRecord>,
    change: Change,
) -> NewDelivery {
    let notice = Notice {
        change,
        alert: a.clone(),
        name: None,
        incident: incident.cloned(),
    };
    NewDelivery {
        sink,
        alert_id: Some(a.id),
        change: change.as_str().to_string(),
        payload: serde_json::to_string(&notice).expect("a notice serializes"),
    }
}

/// A test message for a sink: a made-up alert that says it is a test.
pub fn test_notice() -> Notice {
    let now = Utc::now();
    Notice {
        change: Change::Test,
        alert: AlertRecord {
            id: 0,
            kind: "rule".into(),
            rule_id: "cloudsentinel-test-message".into(),
            title: "Test message from CloudSentinel (no action needed)".into(),
            level: cloudsentinel_core::Level::Informational,
            techniques: Vec::new(),
            tactics: Vec::new(),
            entity: "cloudsentinel".into(),
            account: None,
            access_key: None,
            source_ip: None,
            first_seen: now,
            last_seen: now,
            created: now,
            updated: now,
            count: 1,
            event_ids: Vec::new(),
            explanation: "This message checks that CloudSentinel can reach this destination."
                .into(),
            status: cloudsentinel_alert::AlertStatus::Open,
            assignee: None,
            incident_id: None,
            verdict: None,
            tp_score: None,
        },
        name: None,
        incident: None,
    }
}

/// The running dispatcher threads.
pub struct Dispatcher {
    notifier: Arc<Notifier>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What a dispatcher needs besides the sink.
#[derive(Clone)]
pub struct SendEnv {
    pub store: Arc<dyn Store>,
    pub net: NetContext,
    pub public_url: Option<String>,
}

impl Dispatcher {
    pub fn start(notifier: Arc<Notifier>, env: SendEnv) -> std::io::Result<Dispatcher> {
        let mut threads = Vec::new();
        for i in 0..notifier.sinks.len() {
            let n = Arc::clone(&notifier);
            let env = env.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("notify-{}", notifier.sinks[i].name))
                    .spawn(move || dispatch(&n, i, &env))?,
            );
        }
        Ok(Dispatcher { notifier, threads })
    }

    /// Stops after the tries in flight.
    pub fn stop(self) {
        self.notifier.stop.store(true, Ordering::SeqCst);
        self.notifier.wake();
        for t in self.threads {
            let _ = t.join();
        }
    }
}

/// Longest wait between looks at the outbox when nothing wakes the thread.
const POLL: Duration = Duration::from_secs(2);

fn dispatch(n: &Notifier, i: usize, env: &SendEnv) {
    let sink = &n.sinks[i];
    let m = &n.metrics[i];
    let mut seen = 0u64;
    let mut names: HashMap<String, Option<String>> = HashMap::new();
    while !n.stop.load(Ordering::SeqCst) {
        if !n.sending.load(Ordering::SeqCst) {
            n.wait(&mut seen, POLL);
            continue;
        }
        let pending = match env.store.pending_deliveries(&sink.name, 50) {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(sink = %sink.name, error = %e, "cannot read the outbox");
                n.wait(&mut seen, POLL);
                continue;
            }
        };
        if pending.is_empty() {
            n.wait(&mut seen, POLL);
            continue;
        }
        let mut wait = None;
        for d in pending {
            if n.stop.load(Ordering::SeqCst) {
                return;
            }
            let now = Utc::now();
            if d.next_attempt > now {
                // In order: the head waits for its retry, the rest behind it.
                wait = Some(
                    (d.next_attempt - now)
                        .to_std()
                        .unwrap_or(POLL)
                        .min(POLL * 30),
                );
                break;
            }
            let mut notice: Notice = match serde_json::from_str(&d.payload) {
                Ok(x) => x,
                Err(e) => {
                    let _ = env.store.record_delivery(
                        d.id,
                        now,
                        &DeliveryResult::Dead {
                            error: format!("unreadable message: {e}"),
                        },
                    );
                    m.dead.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            if notice.name.is_none() && cloudsentinel_alert::is_object_id(&notice.alert.entity) {
                let entity = notice.alert.entity.clone();
                let name = names.entry(entity.clone()).or_insert_with(|| {
                    env.store
                        .actor_names(std::slice::from_ref(&entity))
                        .ok()
                        .and_then(|mut m| m.remove(&entity))
                });
                notice.name = name.clone();
                if names.len() > 10_000 {
                    names.clear();
                }
            }
            let network = |ip: &str| env.net.network(ip);
            let ctx = cloudsentinel_notify::Context {
                public_url: env.public_url.as_deref(),
                network: &network,
            };
            let outcome = cloudsentinel_notify::send(sink, &notice, d.id, &ctx);
            let at = Utc::now();
            let attempt = d.attempts + 1;
            let result = match outcome {
                Outcome::Sent => {
                    m.sent.fetch_add(1, Ordering::Relaxed);
                    m.observe_latency((at - d.created).num_milliseconds().max(0) as u64);
                    m.failing.store(false, Ordering::Relaxed);
                    DeliveryResult::Sent
                }
                Outcome::Retry { error, after } if attempt < sink.max_attempts => {
                    m.failed.fetch_add(1, Ordering::Relaxed);
                    m.retried.fetch_add(1, Ordering::Relaxed);
                    m.failing.store(true, Ordering::Relaxed);
                    let delay = cloudsentinel_notify::backoff(attempt, after);
                    tracing::warn!(sink = %sink.name, delivery = d.id, attempt, error = %error, retry_in_secs = delay.as_secs_f64(), "delivery failed; will retry");
                    DeliveryResult::Retry {
                        error,
                        next_attempt: at
                            + chrono::Duration::from_std(delay)
                                .unwrap_or(chrono::Duration::seconds(300)),
                    }
                }
                Outcome::Retry { error, .. } | Outcome::Failed { error } => {
                    m.failed.fetch_add(1, Ordering::Relaxed);
                    m.dead.fetch_add(1, Ordering::Relaxed);
                    m.failing.store(true, Ordering::Relaxed);
                    tracing::error!(sink = %sink.name, delivery = d.id, attempt, error = %error, "delivery given up");
                    DeliveryResult::Dead { error }
                }
            };
            let retry = matches!(result, DeliveryResult::Retry { .. });
            if let Err(e) = env.store.record_delivery(d.id, at, &result) {
                tracing::error!(sink = %sink.name, delivery = d.id, error = %e, "cannot record a delivery");
            }
            if retry {
                break;
            }
        }
        if let Some(w) = wait {
            n.wait(&mut seen, w);
        }
    }
}
