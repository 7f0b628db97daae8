//! Learning in the service: the active anomaly and feedback models (swapped without a
//! restart), the behaviour baselines kept across restarts, and training runs in the background.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, Verdict};
use cloudsentinel_context::netdb::NetDb;
use cloudsentinel_context::{CloudRanges, NetContext};
use cloudsentinel_core::rng::Rng;
use cloudsentinel_learn::anomaly::{AnomalyModel, MAX_TRAINING_VECTORS, TrainParams};
use cloudsentinel_learn::behaviour::{self, Baselines, Observation, SCHEMA_VERSION, Scored};
use cloudsentinel_learn::feedback::{self, AlertFacts, FeedbackModel};
use cloudsentinel_store::{AlertQuery, EventQuery, ModelRecord, ModelResult, NewModel, Store};
use serde_json::json;

use crate::config::DetectionSection;

/// Where the baselines are kept in the store.
pub const BASELINES_KEY: &str = "behaviour.baselines";

/// The model names the registry knows.
pub const MODEL_NAMES: [&str; 2] = ["anomaly", "feedback"];

/// An active model and its registry entry.
pub struct Active<M> {
    pub id: i64,
    pub version: i64,
    pub model: Arc<M>,
}

impl<M> Clone for Active<M> {
    fn clone(&self) -> Self {
        Active {
            id: self.id,
            version: self.version,
            model: Arc::clone(&self.model),
        }
    }
}

pub struct Learning {
    pub enabled: bool,
    pub settings: behaviour::Settings,
    /// Where the address table comes from: the shipped one or the configured path.
    pub netdb_source: String,
    /// The address tables events are enriched with; the baselines use its IP table too.
    pub net: NetContext,
    pub target_rate: f64,
    pub auto_close_below: Option<f64>,
    anomaly: RwLock<Option<Active<AnomalyModel>>>,
    feedback: RwLock<Option<Active<FeedbackModel>>>,
    /// Bumped whenever a model changes, so the pipeline picks it up at its next commit.
    generation: AtomicU64,
    /// Names being trained now: one run per name at a time.
    training: Mutex<HashSet<String>>,
}

impl Learning {
    /// Loads the AS table and the active models.
    pub fn open(store: &dyn Store, d: &DetectionSection) -> anyhow::Result<Learning> {
        let db = match &d.netdb {
            Some(p) => {
                let db = NetDb::load(p).map_err(anyhow::Error::msg)?;
                tracing::info!(path = %p.display(), ranges = db.len(), "AS table loaded");
                Arc::new(db)
            }
            None => NetDb::builtin(),
        };
        let mut ranges = CloudRanges::default();
        for p in &d.cloud_ranges {
            let provider = ranges.add_file(p)?;
            tracing::info!(path = %p.display(), provider = provider.as_str(), "cloud ranges loaded");
        }
        let net = NetContext::new(db, ranges);
        let netdb_source = match &d.netdb {
            Some(p) => p.display().to_string(),
            None => "shipped (ip-location-db)".to_string(),
        };
        let l = Learning {
            enabled: d.anomaly,
            settings: behaviour::Settings {
                half_life_days: d.baseline_half_life_days,
                learning_days: d.baseline_learning_days,
                learning_events: d.baseline_learning_events,
                ..behaviour::Settings::default()
            },
            netdb_source,
            net,
            target_rate: d.anomaly_target_rate,
            auto_close_below: d.auto_close_below,
            anomaly: RwLock::new(None),
            feedback: RwLock::new(None),
            generation: AtomicU64::new(0),
            training: Mutex::new(HashSet::new()),
        };
        for name in MODEL_NAMES {
            if let Some(m) = store.active_model(name)?
                && let Err(e) = l.install(&m)
            {
                tracing::warn!(model = m.id, name, error = %e, "the active model cannot be used; running without it");
            }
        }
        Ok(l)
    }

    pub fn anomaly(&self) -> Option<Active<AnomalyModel>> {
        self.anomaly
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn feedback(&self) -> Option<Active<FeedbackModel>> {
        self.feedback
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Makes a registry entry (with its artefact) the running model of its name.
    pub fn install(&self, m: &ModelRecord) -> Result<(), String> {
        if m.schema != SCHEMA_VERSION {
            return Err(format!(
                "model {} was trained on feature schema {}; this build computes schema {SCHEMA_VERSION}: train a new one",
                m.id, m.schema
            ));
        }
        let bytes = m
            .artefact
            .as_deref()
            .ok_or_else(|| format!("model {} has no artefact", m.id))?;
        match m.name.as_str() {
            "anomaly" => {
                let model: AnomalyModel =
                    serde_json::from_slice(bytes).map_err(|e| format!("model {}: {e}", m.id))?;
                *self.anomaly.write().unwrap_or_else(|e| e.into_inner()) = Some(Active {
                    id: m.id,
                    version: m.version,
                    model: Arc::new(model),
                });
            }
            "feedback" => {
                let model: FeedbackModel =
                    serde_json::from_slice(bytes).map_err(|e| format!("model {}: {e}", m.id))?;
                *self.feedback.write().unwrap_or_else(|e| e.into_inner()) = Some(Active {
                    id: m.id,
                    version: m.version,
                    model: Arc::new(model),
                });
            }
            other => return Err(format!("unknown model name {other}")),
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(())
    }

    /// Stops using any model of this name.
    pub fn remove(&self, name: &str) {
        match name {
            "anomaly" => *self.anomaly.write().unwrap_or_else(|e| e.into_inner()) = None,
            "feedback" => *self.feedback.write().unwrap_or_else(|e| e.into_inner()) = None,
            _ => return,
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    pub fn is_training(&self, name: &str) -> bool {
        self.training
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(name)
    }

    /// The baselines as they were kept, brought up to date with the events stored since (a
    /// crash loses no learning: the events are in the store).
    pub fn baselines(&self, store: &dyn Store) -> anyhow::Result<Baselines> {
        let mut b = match store.get_state(BASELINES_KEY)? {
            Some(bytes) => match Baselines::from_bytes(&bytes) {
                Ok(b) => b,
                Err(e) => {
                    tracing::warn!(error = %e, "kept baselines are unreadable; learning again from the stored events");
                    Baselines::new(self.settings.clone())
                }
            },
            None => Baselines::new(self.settings.clone()),
        };
        b.settings = self.settings.clone();
        b.set_netdb(Some(Arc::clone(self.net.db())));
        if !self.enabled {
            return Ok(b);
        }
        let since = (b.events > 0)
            .then(|| DateTime::<Utc>::from_timestamp(b.now + 1, 0))
            .flatten();
        let started = std::time::Instant::now();
        let n = store.scan_events(since, None, &mut |row| {
            b.observe(&Observation::of_stored(&row));
            true
        })?;
        if n > 0 {
            tracing::info!(
                events = n,
                principals = b.principals(),
                ms = started.elapsed().as_millis() as u64,
                "baselines brought up to date from the store"
            );
        }
        Ok(b)
    }
}

/// Why a training run could not start.
#[derive(Debug)]
pub enum StartError {
    UnknownName(String),
    Busy(String),
    Store(cloudsentinel_store::StoreError),
}

/// Registers a model and trains it on a background thread; its progress is in the registry.
/// With `activate`, a model that trains successfully becomes the running one.
pub fn start_training(
    store: Arc<dyn Store>,
    learning: Arc<Learning>,
    name: &str,
    trained_by: &str,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
    activate: bool,
) -> Result<ModelRecord, StartError> {
    if !MODEL_NAMES.contains(&name) {
        return Err(StartError::UnknownName(name.to_string()));
    }
    {
        let mut t = learning.training.lock().unwrap_or_else(|e| e.into_inner());
        if !t.insert(name.to_string()) {
            return Err(StartError::Busy(format!(
                "a {name} model is being trained already: wait for it to finish"
            )));
        }
    }
    let params = match name {
        "anomaly" => json!({
            "target_rate": learning.target_rate,
            "trees": TrainParams::default().trees,
            "sample_size": TrainParams::default().sample_size,
            "half_life_days": learning.settings.half_life_days,
            "learning_days": learning.settings.learning_days,
            "learning_events": learning.settings.learning_events,
            "netdb": learning.netdb_source,
        }),
        _ => json!({"folds": 5, "l2": 1.0}),
    };
    let rec = match store.create_model(&NewModel {
        name: name.to_string(),
        schema: SCHEMA_VERSION,
        trained_by: trained_by.to_string(),
        window_from: window.0,
        window_to: window.1,
        params,
    }) {
        Ok(r) => r,
        Err(e) => {
            learning
                .training
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(name);
            return Err(StartError::Store(e));
        }
    };
    let id = rec.id;
    let name = name.to_string();
    let keep = Arc::clone(&store);
    let spawned = std::thread::Builder::new()
        .name(format!("train-{name}"))
        .spawn(move || {
            let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                train(store.as_ref(), &learning, &name, id, window)
            }))
            .unwrap_or_else(|_| failed("training stopped on an internal error (see the log)"));
            let ready = result.status == "ready";
            tracing::info!(model = id, name, status = result.status, message = %result.message, "training finished");
            if let Err(e) = store.finish_model(id, &result) {
                tracing::error!(model = id, error = %e, "could not record the trained model");
            } else if ready && activate {
                match activate_and_install(store.as_ref(), &learning, id) {
                    Ok(_) => tracing::info!(model = id, name, "model activated"),
                    Err(e) => tracing::error!(model = id, error = %e, "could not activate the trained model"),
                }
            }
            learning.training.lock().unwrap_or_else(|e| e.into_inner()).remove(&name);
        });
    if let Err(e) = spawned {
        let _ = keep.finish_model(id, &failed(&format!("could not start a thread: {e}")));
    }
    Ok(rec)
}

fn failed(message: &str) -> ModelResult {
    ModelResult {
        status: "failed",
        message: message.to_string(),
        samples: 0,
        metrics: json!({}),
        artefact: None,
    }
}

/// Activates a ready model in the store and in the running pipeline; a feedback model also
/// rescores the alerts still waiting for an analyst.
pub fn activate_and_install(
    store: &dyn Store,
    learning: &Learning,
    id: i64,
) -> anyhow::Result<Option<ModelRecord>> {
    let Some(m) = store.activate_model(id)? else {
        return Ok(None);
    };
    learning.install(&m).map_err(anyhow::Error::msg)?;
    if m.name == "feedback"
        && let Some(f) = learning.feedback()
    {
        rescore_open_alerts(store, &f.model)?;
    }
    Ok(Some(m))
}

/// Scores the open alerts with a feedback model (the queue is ordered by it).
pub fn rescore_open_alerts(store: &dyn Store, model: &FeedbackModel) -> anyhow::Result<u64> {
    let mut offset = 0u64;
    let mut n = 0u64;
    loop {
        let page = store.alerts(&AlertQuery {
            statuses: vec![
                AlertStatus::Open,
                AlertStatus::Acknowledged,
                AlertStatus::Investigating,
            ],
            sort: cloudsentinel_store::AlertSort::Id,
            limit: 500,
            offset,
            ..AlertQuery::default()
        })?;
        if page.items.is_empty() {
            return Ok(n);
        }
        offset += page.items.len() as u64;
        let ids: Vec<i64> = page.items.iter().map(|a| a.id).collect();
        let feats: HashMap<i64, _> = store
            .alert_features(&ids)?
            .into_iter()
            .map(|f| (f.alert_id, f))
            .collect();
        let scores: Vec<(i64, f64)> = page
            .items
            .iter()
            .map(|a| (a.id, model.score(&facts(a, feats.get(&a.id)))))
            .collect();
        n += scores.len() as u64;
        store.set_tp_scores(&scores)?;
    }
}

/// What the feedback model reads of a stored alert.
pub fn facts(a: &AlertRecord, f: Option<&cloudsentinel_store::AlertFeatures>) -> AlertFacts {
    let f = f.filter(|f| f.schema == SCHEMA_VERSION);
    AlertFacts {
        rule_id: a.rule_id.clone(),
        kind: a.kind.clone(),
        level: a.level,
        count: a.count,
        features: f.map(|f| f.values.clone()),
        anomaly_score: f.and_then(|f| f.anomaly_score),
    }
}

fn train(
    store: &dyn Store,
    learning: &Learning,
    name: &str,
    id: i64,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> ModelResult {
    let r = match name {
        "anomaly" => train_anomaly(store, learning, id, window),
        _ => train_feedback(store),
    };
    r.unwrap_or_else(|e| failed(&format!("{e:#}")))
}

/// Replays the stored events of the window through fresh baselines (so every event gets the
/// features it had when it happened), then fits the forest on the vectors of mature
/// principals and sets the threshold at the target rate.
pub fn train_anomaly(
    store: &dyn Store,
    learning: &Learning,
    id: i64,
    window: (Option<DateTime<Utc>>, Option<DateTime<Utc>>),
) -> anyhow::Result<ModelResult> {
    let total = store
        .events(&EventQuery {
            since: window.0,
            until: window.1,
            limit: 1,
            ..EventQuery::default()
        })?
        .total;
    if total == 0 {
        return Ok(failed(&format!(
            "no events are stored{}: ingest activity first. A principal is scored after {} days and {} events of its own, so train on at least a few days of history",
            window_text(window),
            learning.settings.learning_days,
            learning.settings.learning_events
        )));
    }
    let mut b = Baselines::new(learning.settings.clone());
    b.set_netdb(Some(Arc::clone(learning.net.db())));
    let mut vectors: Vec<[f32; behaviour::DIMS]> = Vec::new();
    let mut scored = 0u64;
    let mut rng = Rng::new(0x5eed ^ id as u64);
    let mut visited = 0u64;
    let mut first: Option<DateTime<Utc>> = None;
    let mut last: Option<DateTime<Utc>> = None;
    store.scan_events(window.0, window.1, &mut |row| {
        visited += 1;
        first.get_or_insert(row.time);
        last = Some(row.time);
        if let Scored::Features(x) = b.observe(&Observation::of_stored(&row)) {
            scored += 1;
            // A uniform sample of at most MAX_TRAINING_VECTORS (reservoir sampling).
            if vectors.len() < MAX_TRAINING_VECTORS {
                vectors.push(x.values);
            } else {
                let j = rng.below(scored as usize);
                if j < MAX_TRAINING_VECTORS {
                    vectors[j] = x.values;
                }
            }
        }
        if visited.is_multiple_of(20_000) {
            let _ = store.model_progress(
                id,
                0.9 * visited as f64 / total.max(1) as f64,
                &format!("replayed {visited} of {total} events"),
            );
        }
        true
    })?;
    let _ = store.model_progress(
        id,
        0.9,
        &format!("fitting the forest on {} vectors", vectors.len()),
    );
    let params = TrainParams {
        target_rate: learning.target_rate,
        seed: id as u64,
        ..TrainParams::default()
    };
    let model = match AnomalyModel::train(&vectors, &params) {
        Ok(m) => m,
        Err(e) => {
            return Ok(failed(&format!(
                "{e}. {visited} events were replayed{} over {} principals",
                window_text(window),
                b.principals()
            )));
        }
    };
    let mut scores: Vec<f64> = vectors.iter().map(|v| model.score(v)).collect();
    let flagged = scores.iter().filter(|s| **s >= model.threshold).count();
    let q = |scores: &mut Vec<f64>, p: f64| cloudsentinel_learn::metrics::quantile(scores, p);
    let metrics = json!({
        "events": visited,
        "scored_events": scored,
        "training_vectors": vectors.len(),
        "principals": b.principals(),
        "threshold": model.threshold,
        "target_rate": model.target_rate,
        "flagged_share": flagged as f64 / vectors.len() as f64,
        "score_p50": q(&mut scores, 0.5),
        "score_p99": q(&mut scores, 0.99),
        "score_p999": q(&mut scores, 0.999),
        "first_event": first,
        "last_event": last,
    });
    Ok(ModelResult {
        status: "ready",
        message: format!(
            "trained on {} of {scored} scored events ({visited} replayed, {} principals); threshold {:.3} lets {:.2} in 10,000 training events through",
            vectors.len(),
            b.principals(),
            model.threshold,
            flagged as f64 * 10_000.0 / vectors.len() as f64
        ),
        samples: vectors.len() as u64,
        metrics,
        artefact: Some(serde_json::to_vec(&model).context("serialising the model")?),
    })
}

fn window_text(w: (Option<DateTime<Utc>>, Option<DateTime<Utc>>)) -> String {
    match w {
        (None, None) => String::new(),
        (Some(a), None) => format!(" since {}", a.to_rfc3339()),
        (None, Some(b)) => format!(" before {}", b.to_rfc3339()),
        (Some(a), Some(b)) => format!(" between {} and {}", a.to_rfc3339(), b.to_rfc3339()),
    }
}

/// The analysts' latest verdict per alert, with what the model reads of each alert.
pub fn labelled_alerts(store: &dyn Store) -> anyhow::Result<Vec<(AlertFacts, bool)>> {
    let mut latest: HashMap<i64, (i64, Verdict)> = HashMap::new();
    for f in store.feedback(None)? {
        let e = latest.entry(f.alert_id).or_insert((f.id, f.verdict));
        if f.id >= e.0 {
            *e = (f.id, f.verdict);
        }
    }
    let mut ids: Vec<i64> = latest.keys().copied().collect();
    ids.sort_unstable();
    let feats: HashMap<i64, _> = store
        .alert_features(&ids)?
        .into_iter()
        .map(|f| (f.alert_id, f))
        .collect();
    let mut out = Vec::with_capacity(ids.len());
    for id in ids {
        if let Some(a) = store.alert(id)? {
            out.push((
                facts(&a, feats.get(&id)),
                latest[&id].1 == Verdict::TruePositive,
            ));
        }
    }
    Ok(out)
}

pub fn train_feedback(store: &dyn Store) -> anyhow::Result<ModelResult> {
    let labelled = labelled_alerts(store)?;
    let (model, cv) = match feedback::train(&labelled, 5, 7) {
        Ok(x) => x,
        Err(e) => return Ok(failed(&e)),
    };
    let pos = labelled.iter().filter(|(_, l)| *l).count();
    let names = feedback::input_names();
    let mut weights: Vec<(String, f64)> = names
        .iter()
        .cloned()
        .zip(model.logistic.weights.iter().copied())
        .collect();
    weights.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    weights.truncate(8);
    let metrics = json!({
        "labels": labelled.len(),
        "true_positives": pos,
        "false_positives_or_benign": labelled.len() - pos,
        "cross_validation": cv,
        "strongest_inputs": weights.iter().map(|(n, w)| json!({"input": n, "weight": w})).collect::<Vec<_>>(),
    });
    Ok(ModelResult {
        status: "ready",
        message: format!(
            "trained on {} labelled alerts; {}-fold cross-validation: AUC {}, precision {}, recall {} at 0.5",
            labelled.len(),
            cv.folds,
            opt(cv.auc),
            opt(cv.precision),
            opt(cv.recall)
        ),
        samples: labelled.len() as u64,
        metrics,
        artefact: Some(serde_json::to_vec(&model).context("serialising the model")?),
    })
}

fn opt(v: Option<f64>) -> String {
    v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into())
}
