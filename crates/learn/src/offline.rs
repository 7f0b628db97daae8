//! The behavioural detectors over files, for `hunt` and `eval`: baselines learned in event-time
//! order (from history first when there is some), an isolation forest trained on the vectors of
//! the history (or of the input itself), then every scored input event checked against the
//! threshold. The same baselines, model and signals as the service's pipeline.

use cloudsentinel_core::Signal;
use cloudsentinel_core::row::EventRow;

use crate::anomaly::{self, AnomalyModel, MAX_TRAINING_VECTORS, TrainParams};
use crate::behaviour::{Baselines, DIMS, Features, Observation, Scored, Settings};
use crate::detectors::Detectors;

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
    pub input: Vec<EventRow>,
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
pub fn sort(events: &mut [EventRow]) {
    events.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
}

/// Learns from `history` (when given) then from `input`, trains the forest on the history's
/// vectors (or the input's when there is no history), and scores the input. Errors when there
/// are too few scored events to train on, saying how many there were; the error still carries
/// the explained detectors' signals, which need no forest.
pub fn detect(
    history: Option<Vec<EventRow>>,
    mut input: Vec<EventRow>,
    settings: Settings,
    params: &TrainParams,
    netdb: Option<std::sync::Arc<cloudsentinel_context::netdb::NetDb>>,
    hindsight: bool,
) -> Result<Outcome, NoForest> {
    let mut baselines = Baselines::new(settings);
    baselines.set_netdb(netdb);
    let mut training: Vec<[f32; DIMS]> = Vec::new();
    let mut seen = 0usize;
    let mut rng = crate::rng::Rng::new(params.seed);
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
            let obs = Observation::of_stored(o);
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
        let obs = Observation::of_stored(o);
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
            let mut s = anomaly::signal(&Observation::of_stored(&input[index]), &x, score, &model);
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
