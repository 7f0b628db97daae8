//! Alerts from signals, in one pass over a period (`hunt`): signals of one rule about one entity
//! that are close in time become one alert, with its evidence events: all of them, or the
//! earliest few ([`Folder::with_max_evidence`]) so that memory does not grow with the events.
//!
//! [`Folder`] folds signals as they come, in any order, in memory proportional to the alerts (not
//! the events); [`Folder::finish`] gives the same alerts whatever order the signals arrived in:
//! for each rule and entity, the signals whose gaps are at most the window form one alert.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use cloudsentinel_core::{Alert, Event, Signal};

use cloudsentinel_detect::sigma::{RuleMatch, RuleSet};

/// An alert being built: the evidence keeps, per event id, the earliest time of a signal that
/// listed it, so that the final order of `event_ids` does not depend on arrival order.
struct Partial {
    alert: Alert,
    evidence: Evidence,
}

/// Evidence event ids with the earliest time each was seen: all of them, or with a cap the
/// `cap` earliest by (time, id), which is the same set whatever order they come in. With a cap,
/// the map is cut back to the `cap` earliest whenever it holds twice that many; from then on
/// an id later than the latest kept cannot be among the earliest and is not taken.
#[derive(Default)]
struct Evidence {
    cap: usize,
    by_id: HashMap<String, DateTime<Utc>>,
    /// With a cap, once cut back: the latest (time, id) kept.
    cutoff: Option<(DateTime<Utc>, String)>,
}

impl Evidence {
    fn new(cap: usize) -> Evidence {
        Evidence {
            cap,
            ..Evidence::default()
        }
    }

    fn add(&mut self, id: String, time: DateTime<Utc>) {
        if let Some(t) = self.by_id.get_mut(&id) {
            *t = (*t).min(time);
            return;
        }
        if let Some((ct, cid)) = &self.cutoff
            && (time, &id) > (*ct, cid)
        {
            return;
        }
        self.by_id.insert(id, time);
        if self.cap > 0 && self.by_id.len() >= 2 * self.cap {
            self.cut();
        }
    }

    /// Keeps the `cap` earliest.
    fn cut(&mut self) {
        let mut all: Vec<(DateTime<Utc>, String)> =
            self.by_id.drain().map(|(id, t)| (t, id)).collect();
        all.sort_unstable();
        all.truncate(self.cap);
        self.cutoff = all.last().cloned();
        self.by_id = all.into_iter().map(|(t, id)| (id, t)).collect();
    }

    fn absorb(&mut self, other: Evidence) {
        for (id, t) in other.by_id {
            self.add(id, t);
        }
    }

    /// The ids, earliest first.
    fn ids(self) -> Vec<String> {
        let mut all: Vec<(DateTime<Utc>, String)> =
            self.by_id.into_iter().map(|(id, t)| (t, id)).collect();
        all.sort_unstable();
        if self.cap > 0 {
            all.truncate(self.cap);
        }
        all.into_iter().map(|(_, id)| id).collect()
    }
}

/// The folding rule, shared by [`Folder`] and [`crate::Alerter`]: a signal spanning
/// `first..=last` joins an alert spanning `a_first..=a_last` of the same rule and entity when the
/// gap between them is at most the window.
pub fn joins(
    window: Duration,
    (a_first, a_last): (DateTime<Utc>, DateTime<Utc>),
    (first, last): (DateTime<Utc>, DateTime<Utc>),
) -> bool {
    first <= a_last + window && last + window >= a_first
}

/// Which signal speaks for an alert (its first time, account and explanation): the earliest; on
/// a tie the smaller, so that the result does not depend on arrival order.
pub fn speaks_before(
    new: (DateTime<Utc>, &Option<String>, &str),
    current: (DateTime<Utc>, &Option<String>, &str),
) -> bool {
    new < current
}

impl Partial {
    fn absorb(&mut self, other: Partial) {
        let a = &mut self.alert;
        a.count += other.alert.count;
        // A signal judged routine (informational) folded with one that was not: the alert is
        // as severe as its most severe signal.
        a.level = a.level.max(other.alert.level);
        // The earliest signal speaks for the alert; on a tie, the smaller one, so that the result
        // does not depend on arrival order.
        let o = other.alert;
        if speaks_before(
            (o.first_seen, &o.account, &o.explanation),
            (a.first_seen, &a.account, &a.explanation),
        ) {
            a.first_seen = o.first_seen;
            a.explanation = o.explanation;
            a.account = o.account;
            // Anomaly titles say what was unusual in their signal: the speaking one's.
            a.title = o.title;
        }
        a.last_seen = a.last_seen.max(o.last_seen);
        self.evidence.absorb(other.evidence);
    }
}

/// Folds signals into alerts.
pub struct Folder {
    window: Duration,
    /// Evidence ids kept per alert (0: all).
    max_evidence: usize,
    /// rule id -> entity -> alerts being built.
    open: HashMap<String, HashMap<String, Vec<Partial>>>,
}

impl Folder {
    pub fn new(window: Duration) -> Folder {
        Folder {
            window,
            max_evidence: 0,
            open: HashMap::new(),
        }
    }

    /// Keeps only the `n` earliest evidence ids of each alert (0: all); `count` still counts
    /// every signal.
    pub fn with_max_evidence(mut self, n: usize) -> Folder {
        self.max_evidence = n;
        self
    }

    pub fn add(&mut self, s: Signal) {
        let mut evidence = Evidence::new(self.max_evidence);
        for id in s.event_ids {
            evidence.add(id, s.first_seen);
        }
        let p = Partial {
            alert: Alert {
                rule_id: s.rule_id,
                title: s.title,
                level: s.level,
                techniques: s.techniques,
                tactics: s.tactics,
                entity: s.entity,
                account: s.account,
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                count: 1,
                event_ids: Vec::new(),
                explanation: s.explanation,
                description: None,
                remedy: None,
                false_positives: Vec::new(),
            },
            evidence,
        };
        self.add_partial(p);
    }

    /// Adds one rule match on one event: cheap when it joins an alert already open (no signal is
    /// built), which is what most matches of a busy rule do.
    pub fn add_match(&mut self, m: &RuleMatch, event: &Event) {
        let w = self.window;
        let entity = event.entity();
        let t = event.time;
        if let Some(list) = self
            .open
            .get_mut(m.rule.id.as_str())
            .and_then(|by_entity| by_entity.get_mut(entity.as_str()))
            && let Some(open) = list
                .iter_mut()
                .find(|o| joins(w, (o.alert.first_seen, o.alert.last_seen), (t, t)))
        {
            open.alert.count += 1;
            if t <= open.alert.first_seen {
                let explanation = m.explanation();
                let a = &mut open.alert;
                if speaks_before(
                    (t, &event.account, &explanation),
                    (a.first_seen, &a.account, &a.explanation),
                ) {
                    a.first_seen = t;
                    a.explanation = explanation;
                    a.account = event.account.clone();
                }
            }
            open.alert.last_seen = open.alert.last_seen.max(t);
            open.evidence.add(event.id.clone(), t);
            return;
        }
        self.add(m.to_signal(event));
    }

    fn add_partial(&mut self, p: Partial) {
        let w = self.window;
        let list = self
            .open
            .entry(p.alert.rule_id.clone())
            .or_default()
            .entry(p.alert.entity.clone())
            .or_default();
        // Within the window of an open alert: part of the same run of signals.
        if let Some(open) = list.iter_mut().find(|o| {
            joins(
                w,
                (o.alert.first_seen, o.alert.last_seen),
                (p.alert.first_seen, p.alert.last_seen),
            )
        }) {
            open.absorb(p);
        } else {
            list.push(p);
        }
    }

    /// Adds everything another folder collected (from another thread).
    pub fn merge(&mut self, other: Folder) {
        for (_, by_entity) in other.open {
            for (_, list) in by_entity {
                for p in list {
                    self.add_partial(p);
                }
            }
        }
    }

    /// The alerts, ordered by first_seen, then rule id and entity.
    pub fn finish(self, rules: &RuleSet) -> Vec<Alert> {
        let w = self.window;
        let mut all: Vec<Partial> = self
            .open
            .into_values()
            .flat_map(|m| m.into_values().flatten())
            .collect();
        all.sort_by(|a, b| {
            (&a.alert.rule_id, &a.alert.entity, a.alert.first_seen).cmp(&(
                &b.alert.rule_id,
                &b.alert.entity,
                b.alert.first_seen,
            ))
        });
        let mut merged: Vec<Partial> = Vec::new();
        for p in all {
            if let Some(last) = merged.last_mut()
                && last.alert.rule_id == p.alert.rule_id
                && last.alert.entity == p.alert.entity
                && p.alert.first_seen <= last.alert.last_seen + w
            {
                last.absorb(p);
                continue;
            }
            merged.push(p);
        }
        let mut alerts: Vec<Alert> = merged
            .into_iter()
            .map(|mut p| {
                p.alert.event_ids = p.evidence.ids();
                if let Some(m) = rules.rule(&p.alert.rule_id) {
                    p.alert.description = m.description.clone();
                    p.alert.remedy = m.remedy.clone();
                    p.alert.false_positives = m.false_positives.clone();
                }
                p.alert
            })
            .collect();
        alerts.sort_by(|a, b| {
            (a.first_seen, &a.rule_id, &a.entity).cmp(&(b.first_seen, &b.rule_id, &b.entity))
        });
        alerts
    }
}

/// Folds a list of signals into alerts (see [`Folder`]).
pub fn dedup(signals: Vec<Signal>, window: Duration, rules: &RuleSet) -> Vec<Alert> {
    let mut f = Folder::new(window);
    for s in signals {
        f.add(s);
    }
    f.finish(rules)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudsentinel_core::{Level, SignalKind};

    fn sig(rule: &str, entity: &str, minute: i64, id: &str) -> Signal {
        let t = DateTime::from_timestamp(1_700_000_000 + minute * 60, 0).unwrap();
        Signal {
            kind: SignalKind::Rule,
            rule_id: rule.into(),
            title: rule.into(),
            level: Level::High,
            techniques: vec![],
            tactics: vec![],
            entity: entity.into(),
            account: None,
            first_seen: t,
            last_seen: t,
            event_ids: vec![id.into()],
            explanation: format!("at {minute}"),
        }
    }

    fn rules() -> RuleSet {
        cloudsentinel_detect::RuleSetBuilder::new().build()
    }

    #[test]
    fn order_of_arrival_does_not_change_the_alerts() {
        // Minutes 0, 50, 100 chain into one alert with a 60-minute window; 200 stands alone.
        let signals = vec![
            sig("r", "a", 100, "e3"),
            sig("r", "a", 0, "e1"),
            sig("r", "a", 200, "e4"),
            sig("r", "a", 50, "e2"),
            sig("r", "b", 0, "x"),
        ];
        let forward = dedup(signals.clone(), Duration::minutes(60), &rules());
        let mut rev = signals;
        rev.reverse();
        let backward = dedup(rev, Duration::minutes(60), &rules());
        for alerts in [&forward, &backward] {
            assert_eq!(alerts.len(), 3);
            let a = alerts
                .iter()
                .find(|a| a.entity == "a" && a.count == 3)
                .expect("chained alert");
            assert_eq!(a.event_ids, ["e1", "e2", "e3"]);
            assert_eq!(a.explanation, "at 0");
            assert!(
                alerts
                    .iter()
                    .any(|a| a.entity == "a" && a.event_ids == ["e4"])
            );
            assert!(alerts.iter().any(|a| a.entity == "b"));
        }
    }

    #[test]
    fn folders_from_threads_merge_to_the_same_result() {
        let mut one = Folder::new(Duration::minutes(60));
        let mut two = Folder::new(Duration::minutes(60));
        one.add(sig("r", "a", 0, "e1"));
        two.add(sig("r", "a", 100, "e3"));
        one.add(sig("r", "a", 50, "e2"));
        two.add(sig("r", "a", 50, "e2"));
        one.merge(two);
        let alerts = one.finish(&rules());
        assert_eq!(alerts.len(), 1);
        assert_eq!(
            alerts[0].event_ids,
            ["e1", "e2", "e3"],
            "the same event seen twice is listed once"
        );
    }

    #[test]
    fn capped_evidence_is_the_earliest_whatever_the_order_and_the_threads() {
        // One run of 40 signals a minute apart, some ids seen twice (the later sighting must
        // not push the id's time back); cap 5: e00..e04, from any order, split over two folders.
        let mut signals: Vec<Signal> = (0..40)
            .map(|m| sig("r", "a", m, &format!("e{m:02}")))
            .collect();
        signals.push(sig("r", "a", 39, "e01"));
        signals.push(sig("r", "a", 38, "e03"));
        let expected = ["e00", "e01", "e02", "e03", "e04"];
        let mut order: Vec<usize> = (0..signals.len()).collect();
        for round in 0..6u64 {
            // A deterministic shuffle per round.
            let mut rng = cloudsentinel_core::rng::Rng::new(round + 1);
            for i in (1..order.len()).rev() {
                order.swap(i, rng.below(i + 1));
            }
            let mut one = Folder::new(Duration::minutes(60)).with_max_evidence(5);
            let mut two = Folder::new(Duration::minutes(60)).with_max_evidence(5);
            for (k, &i) in order.iter().enumerate() {
                if k % 2 == 0 {
                    one.add(signals[i].clone());
                } else {
                    two.add(signals[i].clone());
                }
            }
            one.merge(two);
            let alerts = one.finish(&rules());
            assert_eq!(alerts.len(), 1);
            assert_eq!(alerts[0].event_ids, expected, "round {round}");
            assert_eq!(alerts[0].count, 42, "every signal counts");
        }
    }
}
