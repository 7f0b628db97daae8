//! The CloudSentinel service: the HTTP API over the detection pipeline and the store.
//!
//! Main types:
//! - [`Service`]: opens the store, loads keys, bootstraps the first admin, starts the
//!   [`pipeline::Pipeline`] thread, and serves the [`router`] until shut down (then drains the
//!   pipeline).
//! - [`config::Config`]: the TOML file plus `CLOUDSENTINEL_*` overrides.
//! - [`routes::ROUTES`]: every route with its required role; the router, the OpenAPI document
//!   and the role tests are all built from that one table.
//!
//! ```no_run
//! # async fn run() -> anyhow::Result<()> {
//! use cloudsentinel_server::{Service, config::Config};
//! let config = Config::load(None, std::env::vars())?;
//! let mut builder = cloudsentinel_detect::RuleSetBuilder::new();
//! cloudsentinel_detect::add_builtin(&mut builder);
//! let rules = builder.build();
//! let service = Service::open(config, rules)?;
//! let listener = tokio::net::TcpListener::bind(service.listen()).await?;
//! service.run(listener, async { let _ = tokio::signal::ctrl_c().await; }).await?;
//! # Ok(()) }
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use anyhow::Context;
use axum::Router;
use chrono::Utc;
use cloudsentinel_alert::AlertRecord;
use cloudsentinel_core::Provider;
use cloudsentinel_detect::RuleSet;
use cloudsentinel_store::{PostgresStore, SqliteOptions, SqliteStore, Store};
use tokio::sync::{Semaphore, broadcast};

pub mod api;
pub mod audit;
pub mod auth;
pub mod bus;
pub mod config;
pub mod error;
pub mod learning;
pub mod metrics;
pub mod narrative;
pub mod notify;
pub mod pipeline;
pub mod routes;
pub mod search;
mod sources;
pub mod ui;

use audit::AuditLog;
use auth::{LoginLimiter, Tokens};
use metrics::Metrics;
use pipeline::{Committed, Pipeline, PipelineSettings, PrepareError, Submitter, Suppressions};

/// What every handler can reach.
pub struct Inner {
    pub store: Arc<dyn Store>,
    pub rules: Arc<RuleSet>,
    /// The pipeline's queue, in a process that runs it (roles `all` and `detect`).
    pub submitter: Option<Submitter>,
    /// The bus, where ingest publishes batches (`[bus] kind = "amqp"`, roles `all` and `ingest`).
    pub publisher: Option<Arc<bus::Publisher>>,
    pub metrics: Arc<Metrics>,
    pub tokens: Tokens,
    pub audit: AuditLog,
    pub limiter: LoginLimiter,
    pub config: config::Validated,
    pub suppressions: Suppressions,
    pub live: broadcast::Sender<AlertRecord>,
    /// Turns true when the server starts shutting down: long-lived responses (the dashboard's
    /// live stream) end so the graceful shutdown does not wait on them.
    pub closing: tokio::sync::watch::Sender<bool>,
    /// Active models and training runs.
    pub learning: Arc<learning::Learning>,
    pub ingest_slots: Arc<Semaphore>,
    /// Threads that decode and detect.
    pub workers: pipeline::Workers,
    pub started: chrono::DateTime<Utc>,
    /// The notification sinks and their router.
    pub notifier: Arc<notify::Notifier>,
    /// How each configured source is doing.
    pub sources: sources::health::SourceHealth,
    /// Playbook modes an admin set (`PATCH /api/v1/playbooks/{id}`), over the files' own; kept
    /// in the store's state as [`api::PLAYBOOK_MODES`].
    pub playbook_modes:
        RwLock<std::collections::BTreeMap<String, cloudsentinel_respond::playbook::Mode>>,
}

pub type AppState = Arc<Inner>;

/// Runs a store call on a blocking thread.
pub async fn blocking<T: Send + 'static>(
    state: &AppState,
    f: impl FnOnce(&dyn Store) -> cloudsentinel_store::Result<T> + Send + 'static,
) -> Result<T, error::ApiError> {
    let store = Arc::clone(&state.store);
    tokio::task::spawn_blocking(move || f(store.as_ref()))
        .await
        .map_err(|e| error::ApiError::Internal(e.into()))?
        .map_err(Into::into)
}

/// The running service.
pub struct Service {
    pub state: AppState,
    /// The pipeline and the notification dispatcher, where this process runs them.
    pipeline: Option<(Pipeline, notify::Dispatcher)>,
    /// The first admin's credentials when they were generated on this start (print them once).
    pub generated_admin: Option<(String, String)>,
}

/// Reads a 32-byte key from `path`, creating it (mode 0600) on first use.
fn key_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    if let Ok(text) = std::fs::read_to_string(path) {
        let text = text.trim();
        let bytes: Option<Vec<u8>> = (0..text.len())
            .step_by(2)
            .map(|i| {
                text.get(i..i + 2)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
            })
            .collect();
        return match bytes {
            Some(b) if b.len() >= 32 => Ok(b),
            _ => anyhow::bail!("{}: not a hex key of at least 32 bytes", path.display()),
        };
    }
    let mut key = vec![0u8; 32];
    getrandom::fill(&mut key).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    use std::io::Write;
    let mut f = opts
        .open(path)
        .with_context(|| format!("creating {}", path.display()))?;
    f.write_all(auth::hex(&key).as_bytes())?;
    f.sync_all()?;
    Ok(key)
}

/// The files under the data directory.
pub struct DataDir(pub PathBuf);

impl DataDir {
    pub fn database(&self) -> PathBuf {
        self.0.join("cloudsentinel.db")
    }
    pub fn jwt_key(&self) -> PathBuf {
        self.0.join("jwt.key")
    }
    pub fn audit_key(&self) -> PathBuf {
        self.0.join("audit.key")
    }
    pub fn audit_head(&self) -> PathBuf {
        self.0.join("audit.head")
    }

    /// Creates the data directory readable by its owner only (0700), or narrows an existing
    /// one to that: it holds password hashes, keys, events and the audit log.
    pub fn ensure_private(&self) -> anyhow::Result<()> {
        let mut builder = std::fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
            builder.mode(0o700);
            builder
                .create(&self.0)
                .with_context(|| format!("creating data directory {}", self.0.display()))?;
            std::fs::set_permissions(&self.0, std::fs::Permissions::from_mode(0o700))
                .with_context(|| format!("making {} private (0700)", self.0.display()))?;
        }
        #[cfg(not(unix))]
        builder
            .create(&self.0)
            .with_context(|| format!("creating data directory {}", self.0.display()))?;
        Ok(())
    }

    pub fn open_store(&self, synchronous_full: bool) -> anyhow::Result<SqliteStore> {
        self.ensure_private()?;
        SqliteStore::open(
            &self.database(),
            &SqliteOptions {
                synchronous_full,
                readers: 4,
            },
        )
        .with_context(|| format!("opening {}", self.database().display()))
    }

    pub fn audit_log(&self) -> anyhow::Result<AuditLog> {
        Ok(AuditLog::new(
            key_file(&self.audit_key())?,
            self.audit_head(),
        ))
    }
}

/// The store the configuration names: the SQLite file in the data directory, or PostgreSQL.
pub fn open_store(config: &config::Validated) -> anyhow::Result<Arc<dyn Store>> {
    // The keys live in the data directory whichever the backend.
    DataDir(config.config.storage.data_dir.clone()).ensure_private()?;
    Ok(match &config.postgres {
        Some(options) => Arc::new(
            PostgresStore::open(options)
                .with_context(|| format!("opening PostgreSQL at {}", options.url))?,
        ),
        None => Arc::new(
            DataDir(config.config.storage.data_dir.clone()).open_store(config.synchronous_full)?,
        ),
    })
}

impl Service {
    /// Opens everything and starts the pipeline; does not listen yet.
    pub fn open(config: config::Validated, rules: RuleSet) -> anyhow::Result<Service> {
        let c = &config.config;
        let dir = DataDir(c.storage.data_dir.clone());
        let store = open_store(&config)?;
        let tokens = Tokens::new(key_file(&dir.jwt_key())?);
        let audit = dir.audit_log()?;
        let metrics = Arc::new(Metrics::default());
        let disabled_rules = match store.get_state(pipeline::DISABLED_RULES)? {
            Some(b) => serde_json::from_slice(&b)
                .context("the stored list of disabled rules is not a JSON array of ids")?,
            None => Default::default(),
        };
        let suppressions: Suppressions = Arc::new(RwLock::new(pipeline::Tuning {
            suppressions: store.suppressions(Utc::now())?,
            disabled_rules,
        }));
        let playbook_modes = match store.get_state(api::PLAYBOOK_MODES)? {
            Some(b) => serde_json::from_slice(&b).context(
                "the stored playbook modes are not a JSON object of playbook id to mode",
            )?,
            None => Default::default(),
        };
        let (live, _) = broadcast::channel(1024);
        let rules = Arc::new(rules);
        let learning = Arc::new(learning::Learning::open(store.as_ref(), &c.detection)?);
        let notifier = Arc::new(notify::Notifier::new(config.sinks.clone()));
        let role = config.role;
        // A detect process sends once it holds the lease (see `lead`).
        notifier.set_sending(role != config::ProcessRole::Detect);
        let mut submitter = None;
        let mut pipeline = None;
        if role.runs_pipeline() {
            let baselines = learning.baselines(store.as_ref())?;
            audit_sinks(store.as_ref(), &audit, &notifier)?;
            let (p, s) = Pipeline::start(
                Arc::clone(&store),
                Arc::clone(&rules),
                PipelineSettings {
                    dedup_window: chrono::Duration::seconds(c.pipeline.dedup_window_secs),
                    incident_window: chrono::Duration::seconds(c.pipeline.incident_window_secs),
                    max_commit_events: c.pipeline.max_commit_events,
                    max_queued_events: c.pipeline.max_queued_events,
                },
                Arc::clone(&metrics),
                Arc::clone(&suppressions),
                live.clone(),
                Arc::clone(&learning),
                baselines,
                Arc::clone(&notifier),
            )?;
            let dispatcher = notify::Dispatcher::start(
                Arc::clone(&notifier),
                notify::SendEnv {
                    store: Arc::clone(&store),
                    net: learning.net.clone(),
                    public_url: c.server.public_url.clone(),
                },
            )?;
            submitter = Some(s);
            pipeline = Some((p, dispatcher));
        }
        let publisher = match &config.bus {
            Some(b) if role.ingests() => Some(Arc::new(bus::Publisher::new(b.clone()))),
            _ => None,
        };
        // The first admin is made where people sign in.
        let generated_admin = if role.serves_api() {
            bootstrap_admin(store.as_ref(), &audit)?
        } else {
            None
        };
        let state = Arc::new(Inner {
            limiter: LoginLimiter::new(
                c.auth.login_max_failures,
                Duration::from_secs(c.auth.login_window_secs as u64),
            ),
            ingest_slots: Arc::new(Semaphore::new(c.pipeline.max_concurrent_ingests)),
            workers: pipeline::Workers::new(
                std::thread::available_parallelism().map_or(2, |n| n.get()),
            )?,
            store,
            rules,
            submitter,
            publisher,
            metrics,
            tokens,
            audit,
            config,
            suppressions,
            live,
            closing: tokio::sync::watch::Sender::new(false),
            learning,
            started: Utc::now(),
            notifier,
            sources: Default::default(),
            playbook_modes: RwLock::new(playbook_modes),
        });
        Ok(Service {
            state,
            pipeline,
            generated_admin,
        })
    }

    pub fn listen(&self) -> SocketAddr {
        self.state.config.listen
    }

    pub fn router(&self) -> Router {
        routes::router(Arc::clone(&self.state))
    }

    /// Decodes, detects and commits one body, as the ingest API would (used by `demo`), waiting
    /// for room in the queue instead of refusing.
    pub async fn ingest(
        &self,
        body: Vec<u8>,
        provider: Option<Provider>,
        source: &str,
    ) -> anyhow::Result<Committed> {
        let prepared = pipeline::prepare_async(
            &self.state.workers,
            body,
            provider,
            source.to_string(),
            Arc::clone(&self.state.rules),
            self.state.learning.net.clone(),
            usize::MAX,
            std::time::Instant::now(),
        )
        .await;
        let submitter = self.state.submitter.as_ref().ok_or_else(|| {
            anyhow::anyhow!("this process does not run the pipeline (its role is not all)")
        })?;
        match prepared {
            Ok(p) => submitter.submit(p).await.map_err(anyhow::Error::msg),
            Err(PrepareError::Empty) => Ok(Committed::default()),
            Err(e) => Err(e.into()),
        }
    }

    /// Serves until `shutdown` completes, then stops taking requests, answers those in flight,
    /// and drains the pipeline.
    pub async fn run(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let app = self.router();
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let mut tasks = Vec::new();
        let role = self.state.config.role;
        if role == config::ProcessRole::Detect {
            tasks.push(tokio::spawn(lead(Arc::clone(&self.state), stop_rx.clone())));
        } else if role.runs_pipeline() {
            tasks.extend(sources::spawn(&self.state, &stop_rx));
            tasks.push(tokio::spawn(api::watch_auto(
                Arc::clone(&self.state),
                stop_rx.clone(),
            )));
            tasks.push(tokio::spawn(retention(
                Arc::clone(&self.state),
                stop_rx.clone(),
            )));
            if let Some(settings) = self.state.config.bus.clone() {
                tasks.push(tokio::spawn(consume_batches(
                    Arc::clone(&self.state),
                    settings,
                    stop_rx.clone(),
                )));
            }
        }
        if role == config::ProcessRole::Api {
            tasks.push(tokio::spawn(live_from_store(
                Arc::clone(&self.state),
                stop_rx.clone(),
            )));
        }
        tracing::info!(addr = %listener.local_addr()?, role = role.as_str(), "listening");
        let closing = self.state.closing.clone();
        let shutdown = async move {
            shutdown.await;
            closing.send_replace(true);
        };
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(shutdown)
        .await
        .context("http server")?;
        tracing::info!("shutting down: draining the pipeline");
        let _ = stop_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        let Service {
            state, pipeline, ..
        } = self;
        drop(state);
        if let Some((pipeline, dispatcher)) = pipeline {
            tokio::task::spawn_blocking(move || {
                pipeline.stop();
                dispatcher.stop();
            })
            .await?;
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// Detects and commits events that a [`cloudsentinel_detect::Stage`] decoded (and so enriched),
/// waiting for room in the queue (for sources that can wait, like a directory).
pub async fn ingest_events(
    state: &AppState,
    events: Vec<cloudsentinel_core::Event>,
) -> anyhow::Result<Committed> {
    if events.is_empty() {
        return Ok(Committed::default());
    }
    let old = past_retention(state, events.iter().map(|e| e.time));
    if old > 0 {
        tracing::warn!(
            events = old,
            retention_days = state.config.config.storage.retention_days,
            "events older than the retention period were stored and will be deleted by the next retention pass"
        );
    }
    let (rules, net) = (Arc::clone(&state.rules), state.learning.net.clone());
    let prepared = state
        .workers
        .run(move || {
            let stage = cloudsentinel_detect::Stage::new(&rules, &net);
            pipeline::detect_rows(events, stage, std::time::Instant::now())
        })
        .await?;
    state
        .submitter
        .as_ref()
        .ok_or_else(|| anyhow::anyhow!("this process does not run the pipeline"))?
        .submit(prepared)
        .await
        .map_err(anyhow::Error::msg)
}

/// The lease of a detect process: the one that holds it consumes the bus, sends notifications,
/// pulls the sources and applies retention; the others wait to take over.
const DETECT_LEASE: &str = "cloudsentinel.detect";

/// How often a detect process tries for the lease, and checks it still holds it.
const LEASE_EVERY: Duration = Duration::from_secs(2);

/// What a detect process does: waits for the lease, then does the deployment's one-at-a-time
/// work until it loses the lease (its database session ended) or stops.
async fn lead(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let Some(settings) = state.config.bus.clone() else {
        return;
    };
    loop {
        let mut lease = loop {
            if *stop.borrow() {
                return;
            }
            let store = Arc::clone(&state.store);
            let asked = tokio::task::spawn_blocking(move || store.try_lease(DETECT_LEASE))
                .await
                .expect("asking for the lease does not panic");
            match asked {
                Ok(Some(l)) => break l,
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot ask for the detect lease"),
            }
            tokio::select! {
                _ = tokio::time::sleep(LEASE_EVERY) => {}
                _ = stop.changed() => {}
            }
        };
        tracing::info!("holding the detect lease: consuming the bus, sending, pulling sources");
        state.notifier.set_sending(true);
        let (held_tx, held_rx) = tokio::sync::watch::channel(false);
        let mut tasks = sources::spawn(&state, &held_rx);
        tasks.push(tokio::spawn(api::watch_auto(
            Arc::clone(&state),
            held_rx.clone(),
        )));
        tasks.push(tokio::spawn(retention(Arc::clone(&state), held_rx.clone())));
        tasks.push(tokio::spawn(consume_batches(
            Arc::clone(&state),
            settings.clone(),
            held_rx,
        )));
        loop {
            tokio::select! {
                _ = tokio::time::sleep(LEASE_EVERY) => {}
                _ = stop.changed() => break,
            }
            let (back, held) = tokio::task::spawn_blocking(move || {
                let held = lease.held();
                (lease, held)
            })
            .await
            .expect("the lease check does not panic");
            lease = back;
            if !held {
                tracing::warn!("lost the detect lease (the database session ended): standing by");
                break;
            }
        }
        state.notifier.set_sending(false);
        let _ = held_tx.send(true);
        for t in tasks {
            let _ = t.await;
        }
        tokio::task::spawn_blocking(move || drop(lease))
            .await
            .expect("dropping the lease does not panic");
        if *stop.borrow() {
            return;
        }
    }
}

/// Takes batches from the bus, in order, and acknowledges each once the pipeline has committed
/// it (role `detect`, or `all` with a bus). A batch is detected and queued while the ones before
/// it commit.
async fn consume_batches(
    state: AppState,
    settings: bus::BusSettings,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let stopping = stop.clone();
    bus::consume(settings, stop, |d| {
        queue_batch(Arc::clone(&state), d, stopping.clone())
    })
    .await;
}

/// Detects one batch from the bus and queues it for the pipeline (after resuming alerting from
/// the store when it is the first this process takes); answers what waits for its commit.
/// While the store cannot commit it, the batch is detected and queued again (backing off up to
/// 10 s): it stays unacknowledged, and if this process stops meanwhile the broker gives it to
/// another. A retried batch may commit after batches that came behind it.
async fn queue_batch(
    state: AppState,
    d: bus::Delivery,
    stopping: tokio::sync::watch::Receiver<bool>,
) -> impl std::future::Future<Output = bus::Handled> + Send + 'static {
    let first = queue_once(&state, &d, &stopping).await;
    async move {
        let mut outcome = first;
        let mut backoff = Duration::from_millis(100);
        loop {
            let error = match outcome {
                Queued::Waiting(rx) => match rx.await {
                    Ok(Ok(c)) => {
                        state
                            .metrics
                            .bus_committed
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::debug!(
                            accepted = c.accepted,
                            duplicates = c.duplicates,
                            redelivered = d.redelivered,
                            "batch from the bus committed"
                        );
                        return bus::Handled::Done;
                    }
                    Ok(Err(e)) => e,
                    Err(_) => "pipeline stopped".to_string(),
                },
                Queued::Failed(e) => e,
                Queued::Finished(h) => return h,
            };
            if *stopping.borrow() {
                return bus::Handled::Retry;
            }
            tracing::warn!(error, "a batch from the bus did not commit; trying again");
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
            outcome = queue_once(&state, &d, &stopping).await;
        }
    }
}

/// Where a batch from the bus stands after one try to queue it.
enum Queued {
    /// In the pipeline's queue: the receiver answers after its commit.
    Waiting(pipeline::Answer),
    /// Not queued, for a reason that may pass.
    Failed(String),
    /// Nothing to commit (empty), or never processable, or this process is stopping.
    Finished(bus::Handled),
}

async fn queue_once(
    state: &AppState,
    d: &bus::Delivery,
    stopping: &tokio::sync::watch::Receiver<bool>,
) -> Queued {
    let Some(submitter) = state.submitter.as_ref() else {
        return Queued::Finished(bus::Handled::Poison(
            "this process does not run the pipeline".into(),
        ));
    };
    if d.first {
        // This process may have just taken the queue over: alert from what the store holds.
        let mut backoff = Duration::from_millis(100);
        while let Err(e) = submitter.resume().await {
            if *stopping.borrow() {
                return Queued::Finished(bus::Handled::Retry);
            }
            tracing::warn!(
                error = e,
                "cannot resume alerting from the store; trying again"
            );
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
        tracing::info!("took the batches' queue: alerting resumed from the store");
    }
    let prepared = pipeline::prepare_async(
        &state.workers,
        d.body.clone(),
        d.header.provider(),
        d.header.source.clone(),
        Arc::clone(&state.rules),
        state.learning.net.clone(),
        usize::MAX,
        std::time::Instant::now(),
    )
    .await;
    match prepared {
        Ok(p) => match submitter.enqueue(p).await {
            Ok(rx) => Queued::Waiting(rx),
            Err(e) => Queued::Failed(e),
        },
        Err(PrepareError::Empty) => Queued::Finished(bus::Handled::Done),
        Err(PrepareError::Internal(m)) => Queued::Failed(m),
        Err(e) => {
            state
                .metrics
                .bus_dead
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Queued::Finished(bus::Handled::Poison(e.to_string()))
        }
    }
}

/// In an API process, which runs no pipeline, the dashboard's live stream hears of alert
/// changes by reading the store every second.
async fn live_from_store(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut since = Utc::now();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            _ = stop.changed() => return,
        }
        let from = since;
        let changed = blocking(&state, move |s| {
            s.alerts(&cloudsentinel_store::AlertQuery {
                updated_since: Some(from),
                sort: cloudsentinel_store::AlertSort::Updated,
                descending: false,
                limit: 500,
                ..Default::default()
            })
        })
        .await;
        if let Ok(page) = changed {
            for a in page.items {
                // Updated within the same millisecond is read again next time: send once.
                if a.updated > since {
                    since = a.updated;
                }
                let _ = state.live.send(a);
            }
        }
    }
}

/// The store state key of the sinks configured at the last start (names, kinds, destinations).
const SINKS_STATE: &str = "notify.sinks";

/// Writes an audit entry when the configured sinks differ from the last start's.
fn audit_sinks(store: &dyn Store, audit: &AuditLog, n: &notify::Notifier) -> anyhow::Result<()> {
    let now: Vec<serde_json::Value> = n
        .sinks
        .iter()
        .map(|s| {
            serde_json::json!({
                "name": s.name,
                "kind": s.kind.as_str(),
                "destination": s.destination(),
                "min_level": s.filter.min_level.as_str(),
            })
        })
        .collect();
    let before: Vec<serde_json::Value> = store
        .get_state(SINKS_STATE)?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if before != now {
        audit.record(
            store,
            "system",
            "notify.sinks_changed",
            "notify",
            serde_json::json!({"before": before, "after": now}),
            None,
        )?;
        store.put_state(SINKS_STATE, &serde_json::to_vec(&now)?)?;
    }
    Ok(())
}

/// Creates the first admin when there are no users.
fn bootstrap_admin(
    store: &dyn Store,
    audit: &AuditLog,
) -> anyhow::Result<Option<(String, String)>> {
    if store.count_users()? > 0 {
        return Ok(None);
    }
    let user = std::env::var("CLOUDSENTINEL_ADMIN_USER").unwrap_or_else(|_| "admin".into());
    let (password, generated) = match std::env::var("CLOUDSENTINEL_ADMIN_PASSWORD") {
        Ok(p) => {
            auth::check_password_policy(&p, &user)
                .map_err(|e| anyhow::anyhow!("CLOUDSENTINEL_ADMIN_PASSWORD: {e}"))?;
            (p, false)
        }
        Err(_) => (auth::random_token(18), true),
    };
    let hash = auth::hash_password(&password)?;
    store.create_user(&user, &hash, auth::Role::Admin.as_str())?;
    audit.record(
        store,
        "system",
        "user.bootstrap",
        &format!("user:{user}"),
        serde_json::json!({"role": "admin", "generated_password": generated}),
        None,
    )?;
    Ok(generated.then_some((user, password)))
}

/// How many of these event times are past the retention period already (and so will be
/// deleted by the next retention pass, which also runs at every start).
pub(crate) fn past_retention(
    state: &AppState,
    times: impl Iterator<Item = chrono::DateTime<Utc>>,
) -> u64 {
    let days = state.config.config.storage.retention_days;
    if days == 0 {
        return 0;
    }
    let cutoff = Utc::now() - chrono::Duration::days(days as i64);
    times.filter(|t| *t < cutoff).count() as u64
}

/// Deletes events past the retention period, hourly.
async fn retention(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let days = state.config.config.storage.retention_days;
    if days == 0 {
        return;
    }
    loop {
        let cutoff = Utc::now() - chrono::Duration::days(days as i64);
        match blocking(&state, move |s| s.purge_events(cutoff)).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(events = n, days, "retention: deleted old events"),
            Err(e) => tracing::warn!(error = ?e, "retention failed"),
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(3600)) => {}
            _ = stop.changed() => return,
        }
    }
}
