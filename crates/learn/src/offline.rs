//! The behavioural detectors over files, for `hunt` and `eval`: baselines learned in event-time
//! order (from history first when there is some), an isolation forest trained on the vectors of
//! the history (or of the input itself), then every scored input event checked against the
//! threshold. The same baselines, model and signals as the service's pipeline.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cloudsentinel_core::compact::EventId;
use cloudsentinel_core::row::EventRow;
use cloudsentinel_core::{Event, Signal};

use crate::anomaly::{self, AnomalyModel, MAX_TRAINING_VECTORS, TrainParams};
use crate::behaviour::{Baselines, DIMS, Detail, Features, Observation, Scored, Settings};
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

pub use cloudsentinel_core::intern::Interner;

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
    /// The input, sorted by (time, id) ([`detect`]; empty from a [`Stream`]).
    pub input: Vec<Observed>,
    /// The scored input events ([`detect`], or a [`Stream`] told to keep them).
    pub scored: Vec<ScoredEvent>,
    /// How many input events were scored.
    pub scored_events: usize,
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

/// An input event waiting for the forest: its index, the event (its values numbered in a
/// [`Table`]), its features, and whether an explained detector corroborates it.
/// An input event waiting for the forest: its index, itself, its features' detail (the values
/// are its entry in [`Stream`]'s training vectors) and whether behaviour corroborates it.
type Pending = (usize, Numbered, Detail, bool);

/// An [`Observed`] whose shared values are numbers in a [`Table`]: a third of its size, for
/// the events that wait for the forest.
struct Numbered {
    id: EventId,
    time: DateTime<Utc>,
    /// provider, account, region, principal, actor name, access key, source address, user
    /// agent, service, operation; [`NONE`] for an absent one.
    values: [u32; 10],
    read_only: Option<bool>,
    success: bool,
}

/// An absent value in [`Numbered::values`].
const NONE: u32 = u32::MAX;

/// The values of the waiting events, each once.
#[derive(Default)]
struct Table {
    values: Vec<Arc<str>>,
    numbers: std::collections::HashMap<Arc<str>, u32>,
}

impl Table {
    fn number(&mut self, v: Option<&Arc<str>>) -> u32 {
        let Some(v) = v else { return NONE };
        if let Some(&n) = self.numbers.get(v) {
            return n;
        }
        let n = self.values.len() as u32;
        self.values.push(Arc::clone(v));
        self.numbers.insert(Arc::clone(v), n);
        n
    }

    fn value(&self, n: u32) -> Option<Arc<str>> {
        (n != NONE).then(|| Arc::clone(&self.values[n as usize]))
    }

    fn numbered(&mut self, o: Observed) -> Numbered {
        Numbered {
            values: [
                self.number(Some(&o.provider)),
                self.number(o.account.as_ref()),
                self.number(o.region.as_ref()),
                self.number(Some(&o.principal)),
                self.number(o.actor_name.as_ref()),
                self.number(o.access_key.as_ref()),
                self.number(o.source_ip.as_ref()),
                self.number(o.user_agent.as_ref()),
                self.number(Some(&o.service)),
                self.number(Some(&o.operation)),
            ],
            id: EventId::new(&o.id),
            time: o.time,
            read_only: o.read_only,
            success: o.success,
        }
    }

    fn observed(&self, n: Numbered) -> Observed {
        let v = |i: usize| self.value(n.values[i]);
        let given = |i: usize| v(i).expect("a value that is always there");
        Observed {
            id: n.id.to_string().into(),
            time: n.time,
            provider: given(0),
            account: v(1),
            region: v(2),
            principal: given(3),
            actor_name: v(4),
            access_key: v(5),
            source_ip: v(6),
            user_agent: v(7),
            service: given(8),
            operation: given(9),
            read_only: n.read_only,
            success: n.success,
        }
    }
}

/// Pending events are held in chunks of this many.
const PENDING_CHUNK: usize = 8192;

/// The behavioural detectors as a stream, in bounded memory: feed the history (if any) with
/// [`Stream::learn`], then the input with [`Stream::push`], both in (time, id) order, then
/// [`Stream::finish`]. Baselines are per principal and bounded per principal; the forest trains
/// on at most [`MAX_TRAINING_VECTORS`] vectors: a uniform sample of the history when there is
/// one (trained as the input starts), otherwise the input's first ones, held until the forest is
/// trained and then scored; every later event is scored as it comes. Only signals are kept.
pub struct Stream {
    baselines: Baselines,
    detectors: Detectors,
    params: TrainParams,
    training: Vec<[f32; DIMS]>,
    seen: usize,
    rng: cloudsentinel_core::rng::Rng,
    has_history: bool,
    model: Option<AnomalyModel>,
    /// Input events scored before the forest was trained: scored when it is. In chunks, so
    /// that growing never copies (nor briefly doubles) what is held.
    pending: Vec<Vec<Pending>>,
    pending_len: usize,
    table: Table,
    signals: Vec<Signal>,
    learning: usize,
    pushed: usize,
    scored_events: usize,
    /// Every scored input event, when asked for ([`Stream::keep_scores`]).
    scores: Option<Vec<ScoredEvent>>,
    training_error: Option<String>,
}

impl Stream {
    pub fn new(
        settings: Settings,
        params: &TrainParams,
        netdb: Option<std::sync::Arc<cloudsentinel_context::netdb::NetDb>>,
    ) -> Stream {
        let mut baselines = Baselines::new(settings);
        baselines.set_netdb(netdb);
        Stream {
            baselines,
            detectors: Detectors::new(),
            params: params.clone(),
            training: Vec::new(),
            seen: 0,
            rng: cloudsentinel_core::rng::Rng::new(params.seed),
            has_history: false,
            model: None,
            pending: Vec::new(),
            pending_len: 0,
            table: Table::default(),
            signals: Vec::new(),
            learning: 0,
            pushed: 0,
            scored_events: 0,
            scores: None,
            training_error: None,
        }
    }

    /// Records every scored input event's features and score (for evaluations).
    pub fn keep_scores(&mut self) {
        self.scores = Some(Vec::new());
    }

    /// A reservoir sample keeps training bounded on a long history.
    fn keep(&mut self, v: &[f32; DIMS]) {
        self.seen += 1;
        if self.training.len() < MAX_TRAINING_VECTORS {
            if self.training.len() == self.training.capacity() {
                // Once, to the most it will hold: doubling would briefly hold it one and a half
                // times over.
                self.training
                    .reserve_exact(MAX_TRAINING_VECTORS - self.training.len());
            }
            self.training.push(*v);
        } else {
            let j = self.rng.below(self.seen);
            if j < MAX_TRAINING_VECTORS {
                self.training[j] = *v;
            }
        }
    }

    /// Learns from a history event (before any input).
    pub fn learn(&mut self, o: &Observed) {
        debug_assert_eq!(self.pushed, 0, "history comes before the input");
        self.has_history = true;
        let obs = Observation::of_observed(o);
        self.detectors.before(&self.baselines, &obs, false);
        let scored = self.baselines.observe(&obs);
        self.detectors.learned(&self.baselines, &obs);
        if let Scored::Features(x) = scored {
            self.keep(&x.values);
        }
    }

    fn train(&mut self) {
        let training = std::mem::take(&mut self.training);
        match AnomalyModel::train(&training, &self.params) {
            Ok(m) => self.model = Some(m),
            Err(e) => self.training_error = Some(e),
        }
        self.pending_len = 0;
        let table = std::mem::take(&mut self.table);
        // Without history the training vectors are the waiting events' own, in order.
        let mut values = training.iter();
        for chunk in std::mem::take(&mut self.pending) {
            for (index, o, detail, corroborated) in chunk {
                let values = *values.next().expect("a training vector per waiting event");
                let x = Features { values, detail };
                self.score(index, &table.observed(o), x, corroborated);
            }
        }
    }

    fn score(&mut self, index: usize, o: &Observed, x: Features, corroborated: bool) {
        let Some(model) = &self.model else { return };
        self.scored_events += 1;
        let score = model.score(&x.values);
        if score >= model.threshold {
            let mut s = anomaly::signal(&Observation::of_observed(o), &x, score, model);
            if !corroborated {
                anomaly::informational(&mut s);
            }
            self.signals.push(s);
        }
        if let Some(scores) = &mut self.scores {
            scores.push(ScoredEvent {
                index,
                features: x,
                score,
            });
        }
    }

    /// Checks an input event against its principal's baseline, then learns from it.
    pub fn push(&mut self, o: Observed) {
        if self.pushed == 0 && self.has_history {
            self.train();
        }
        let index = self.pushed;
        self.pushed += 1;
        let obs = Observation::of_observed(&o);
        let found = self.detectors.before(&self.baselines, &obs, true);
        self.signals.extend(found);
        let scored = self.baselines.observe(&obs);
        self.detectors.learned(&self.baselines, &obs);
        match scored {
            Scored::Features(x) => {
                let found = self.detectors.after(&obs, &x);
                self.signals.extend(found);
                let corroborated = self.detectors.corroborates(&obs, &x);
                if self.has_history || self.model.is_some() {
                    self.score(index, &o, x, corroborated);
                } else {
                    self.keep(&x.values);
                    if self.pending.last().is_none_or(|c| c.len() == PENDING_CHUNK) {
                        self.pending.push(Vec::with_capacity(PENDING_CHUNK));
                    }
                    self.pending.last_mut().expect("a chunk").push((
                        index,
                        self.table.numbered(o),
                        x.detail,
                        corroborated,
                    ));
                    self.pending_len += 1;
                    if self.pending_len >= MAX_TRAINING_VECTORS {
                        self.train();
                    }
                }
            }
            Scored::Learning => self.learning += 1,
        }
    }

    /// Input events seen so far.
    pub fn pushed(&self) -> usize {
        self.pushed
    }

    /// Trains the forest if it is not yet, scores what waited, and gives what was found.
    pub fn finish(mut self, hindsight: bool) -> Result<Outcome, NoForest> {
        if self.model.is_none() && self.training_error.is_none() {
            self.train();
        }
        // `hunt` looks back over a period: new-region findings are judged with what came after.
        if hindsight {
            self.detectors.hindsight(&mut self.signals);
        }
        match self.model {
            Some(model) => Ok(Outcome {
                input: Vec::new(),
                scored: self.scores.unwrap_or_default(),
                scored_events: self.scored_events,
                signals: self.signals,
                model,
                learning: self.learning,
                baselines: self.baselines,
            }),
            None => Err(NoForest {
                error: self.training_error.unwrap_or_default(),
                signals: self.signals,
            }),
        }
    }
}

/// Learns from `history` (when given) then from `input` (sorted here), as [`Stream`] does, and
/// keeps every scored input event's features and score, with the sorted input. Errors when
/// there are too few scored events to train on, saying how many there were; the error still
/// carries the explained detectors' signals, which need no forest.
pub fn detect(
    history: Option<Vec<Observed>>,
    mut input: Vec<Observed>,
    settings: Settings,
    params: &TrainParams,
    netdb: Option<std::sync::Arc<cloudsentinel_context::netdb::NetDb>>,
    hindsight: bool,
) -> Result<Outcome, NoForest> {
    let mut stream = Stream::new(settings, params, netdb);
    stream.keep_scores();
    if let Some(mut h) = history {
        sort(&mut h);
        for o in &h {
            stream.learn(o);
        }
    }
    sort(&mut input);
    for o in &input {
        stream.push(o.clone());
    }
    let mut outcome = stream.finish(hindsight)?;
    outcome.scored.sort_by_key(|s| s.index);
    outcome.input = input;
    Ok(outcome)
}
