//! Alerts from signals, in one pass over a period (`hunt`): signals of one rule about one entity
//! that are close in time become one alert, with every evidence event kept.
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
    evidence: HashMap<String, DateTime<Utc>>,
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

fn add_evidence(evidence: &mut HashMap<String, DateTime<Utc>>, id: String, time: DateTime<Utc>) {
    let t = evidence.entry(id).or_insert(time);
    if time < *t {
        *t = time;
    }
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
        }
        a.last_seen = a.last_seen.max(o.last_seen);
        for (id, t) in other.evidence {
            add_evidence(&mut self.evidence, id, t);
        }
    }
}

/// Folds signals into alerts.
pub struct Folder {
    window: Duration,
    /// rule id -> entity -> alerts being built.
    open: HashMap<String, HashMap<String, Vec<Partial>>>,
}

impl Folder {
    pub fn new(window: Duration) -> Folder {
        Folder {
            window,
            open: HashMap::new(),
        }
    }

    pub fn add(&mut self, s: Signal) {
        let mut evidence = HashMap::with_capacity(s.event_ids.len());
        for id in s.event_ids {
            add_evidence(&mut evidence, id, s.first_seen);
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
            add_evidence(&mut open.evidence, event.id.clone(), t);
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
                let mut evidence: Vec<(DateTime<Utc>, String)> =
                    p.evidence.into_iter().map(|(id, t)| (t, id)).collect();
                evidence.sort_unstable();
                p.alert.event_ids = evidence.into_iter().map(|(_, id)| id).collect();
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
}
