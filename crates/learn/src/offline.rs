//! The behavioural detectors over files, for `hunt` and `eval`: baselines learned in event-time
//! order (from history first when there is some), an isolation forest trained on the vectors of
//! the history (or of the input itself), then every scored input event checked against the
//! threshold. The same baselines, model and signals as the service's pipeline.

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use cloudsentinel_core::row::EventRow;
use cloudsentinel_core::{Event, Signal};

use crate::anomaly::{self, AnomalyModel, MAX_TRAINING_VECTORS, TrainParams};
use crate::behaviour::{Baselines, DIMS, Features, Observation, Scored, Settings};
use crate::detectors::Detectors;

/// An event as the behavioural detectors read it over files, kept compactly: the values that
/// repeat from event to event (provider, account, region, principal, names, keys, addresses, user
/// agents, services, operations) are shared through an [`Interner`], so that holding every event
/// of a hunt costs about a third of a full row.
#[derive(Debug, Clone)]
pub struct Observed {
    pub id: Box<str>,
    pub time: DateTime<Utc>,
    pub provider: Arc<str>,
    pub account: Option<Arc<str>>,
    pub region: Option<Arc<str>>,
    /// The entity alerts are about ([`Event::entity`]).
    pub principal: Arc<str>,
    pub actor_name: Option<Arc<str>>,
    pub access_key: Option<Arc<str>>,
    pub source_ip: Option<Arc<str>>,
    pub user_agent: Option<Arc<str>>,
    pub service: Arc<str>,
    pub operation: Arc<str>,
    pub read_only: Option<bool>,
    pub success: bool,
}

/// Shares repeated strings among [`Observed`] events (one per reading thread).
#[derive(Default)]
pub struct Interner(HashSet<Arc<str>>);

/// Distinct values an interner keeps at most; past it, values are no longer shared (memory stays
/// bounded by the input either way).
const MAX_INTERNED: usize = 1 << 20;

impl Interner {
    pub fn get(&mut self, s: &str) -> Arc<str> {
        if let Some(a) = self.0.get(s) {
            return Arc::clone(a);
        }
        let a: Arc<str> = Arc::from(s);
        if self.0.len() < MAX_INTERNED {
            self.0.insert(Arc::clone(&a));
        }
        a
    }

    fn opt(&mut self, s: Option<&str>) -> Option<Arc<str>> {
        s.map(|v| self.get(v))
    }
}

impl Observed {
    /// An event read from a file.
    pub fn of_event(e: &Event, i: &mut Interner) -> Observed {
        Observed {
            id: e.id.as_str().into(),
            time: e.time,
            provider: i.get(e.provider.as_str()),
            account: i.opt(e.account.as_deref()),
            region: i.opt(e.region.as_deref()),
            principal: i.get(&e.entity()),
            actor_name: i.opt(e.actor.name.as_deref()),
            access_key: i.opt(e.actor.access_key_id.as_deref()),
            source_ip: i.opt(e.source_ip.as_deref()),
            user_agent: i.opt(e.user_agent.as_deref()),
            service: i.get(&e.action.service),
            operation: i.get(&e.action.operation),
            read_only: e.action.read_only,
            success: e.outcome.success,
        }
    }

    /// A stored event.
    pub fn of_row(r: &EventRow, i: &mut Interner) -> Observed {
        Observed {
            id: r.id.as_str().into(),
            time: r.time,
            provider: i.get(&r.provider),
            account: i.opt(r.account.as_deref()),
            region: i.opt(r.region.as_deref()),
            principal: i.get(&r.principal),
            actor_name: i.opt(r.actor_name.as_deref()),
            access_key: i.opt(r.access_key.as_deref()),
            source_ip: i.opt(r.source_ip.as_deref()),
            user_agent: i.opt(r.user_agent.as_deref()),
            service: i.get(&r.service),
            operation: i.get(&r.operation),
            read_only: r.read_only,
            success: r.success,
        }
    }
}

/// One scored input event.
#[derive(Debug, Clone)]
pub struct ScoredEvent {
    /// Index into the (time-sorted) input.
    pub index: usize,
    pub features: Features,
    pub score: f64,
}

/// What a run found.
pub struct Outcome {
    /// The input, sorted by (time, id).
    pub input: Vec<Observed>,
    pub scored: Vec<ScoredEvent>,
    /// The explained detectors' signals ([`crate::detectors`]), then the forest's.
    pub signals: Vec<Signal>,
    pub model: AnomalyModel,
    /// Input events not scored because their principal was still being learned.
    pub learning: usize,
    pub baselines: Baselines,
}

/// The forest could not be trained (too little to learn from); the detectors ran.
#[derive(Debug)]
pub struct NoForest {
    pub error: String,
    /// The explained detectors' signals.
    pub signals: Vec<Signal>,
}

/// Sorts by time, then id, so that a replay is the same whatever order the files came in.
pub fn sort(events: &mut [Observed]) {
    events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
}

/// Learns from `history` (when given) then from `input`, trains the forest on the history's
/// vectors (or the input's when there is no history), and scores the input. Errors when there
/// are too few scored events to train on, saying how many there were; the error still carries
/// the explained detectors' signals, which need no forest.
pub fn detect(
    history: Option<Vec<Observed>>,
    mut input: Vec<Observed>,
    settings: Settings,
    params: &TrainParams,
    netdb: Option<std::sync::Arc<cloudsentinel_context::netdb::NetDb>>,
    hindsight: bool,
) -> Result<Outcome, NoForest> {
    let mut baselines = Baselines::new(settings);
    baselines.set_netdb(netdb);
    let mut training: Vec<[f32; DIMS]> = Vec::new();
    let mut seen = 0usize;
    let mut rng = cloudsentinel_core::rng::Rng::new(params.seed);
    let mut keep = |v: &[f32; DIMS], training: &mut Vec<[f32; DIMS]>| {
        // A reservoir sample keeps training bounded on a long history.
        seen += 1;
        if training.len() < MAX_TRAINING_VECTORS {
            training.push(*v);
        } else {
            let j = rng.below(seen);
            if j < MAX_TRAINING_VECTORS {
                training[j] = *v;
            }
        }
    };
    let has_history = history.is_some();
    let mut detectors = Detectors::new();
    let mut signals = Vec::new();
    if let Some(mut h) = history {
        sort(&mut h);
        for o in &h {
            let obs = Observation::of_observed(o);
            detectors.before(&baselines, &obs, false);
            let scored = baselines.observe(&obs);
            detectors.learned(&baselines, &obs);
            if let Scored::Features(x) = scored {
                keep(&x.values, &mut training);
            }
        }
    }
    sort(&mut input);
    let mut features: Vec<(usize, Features, bool)> = Vec::new();
    let mut learning = 0usize;
    for (i, o) in input.iter().enumerate() {
        let obs = Observation::of_observed(o);
        signals.extend(detectors.before(&baselines, &obs, true));
        let scored = baselines.observe(&obs);
        detectors.learned(&baselines, &obs);
        match scored {
            Scored::Features(x) => {
                signals.extend(detectors.after(&obs, &x));
                if !has_history {
                    keep(&x.values, &mut training);
                }
                let corroborated = detectors.corroborates(&obs, &x);
                features.push((i, x, corroborated));
            }
            Scored::Learning => learning += 1,
        }
    }
    // `hunt` looks back over a period: new-region findings are judged with what came after.
    if hindsight {
        detectors.hindsight(&mut signals);
    }
    let model = match AnomalyModel::train(&training, params) {
        Ok(m) => m,
        Err(error) => return Err(NoForest { error, signals }),
    };
    let mut scored = Vec::with_capacity(features.len());
    for (index, x, corroborated) in features {
        let score = model.score(&x.values);
        if score >= model.threshold {
            let mut s =
                anomaly::signal(&Observation::of_observed(&input[index]), &x, score, &model);
            if !corroborated {
                anomaly::informational(&mut s);
            }
            signals.push(s);
        }
        scored.push(ScoredEvent {
            index,
            features: x,
            score,
        });
    }
    Ok(Outcome {
        input,
        scored,
        signals,
        model,
        learning,
        baselines,
    })
}
