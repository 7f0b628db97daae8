//! Alerts from signals: signals of one rule about one entity that are close in time become one
//! alert, with every evidence event kept.

use chrono::Duration;
use cloudsentinel_core::{Alert, Signal};

use crate::sigma::RuleSet;

/// Folds signals into alerts: same rule, same entity, each signal starting no later than
/// `window` after the previous one ended. The result is ordered by first_seen, then rule id,
/// and does not depend on the order the signals arrived in.
pub fn dedup(mut signals: Vec<Signal>, window: Duration, rules: &RuleSet) -> Vec<Alert> {
    signals.sort_by(|a, b| {
        (&a.rule_id, &a.entity, a.first_seen, a.last_seen).cmp(&(
            &b.rule_id,
            &b.entity,
            b.first_seen,
            b.last_seen,
        ))
    });
    let mut alerts: Vec<Alert> = Vec::new();
    for s in signals {
        if let Some(last) = alerts.last_mut() {
            if last.rule_id == s.rule_id
                && last.entity == s.entity
                && s.first_seen <= last.last_seen + window
            {
                last.count += 1;
                last.last_seen = last.last_seen.max(s.last_seen);
                last.first_seen = last.first_seen.min(s.first_seen);
                for id in s.event_ids {
                    if !last.event_ids.contains(&id) {
                        last.event_ids.push(id);
                    }
                }
                continue;
            }
        }
        let meta = rules.rule(&s.rule_id);
        alerts.push(Alert {
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
            event_ids: s.event_ids,
            explanation: s.explanation,
            description: meta.and_then(|m| m.description.clone()),
            remedy: meta.and_then(|m| m.remedy.clone()),
            false_positives: meta.map(|m| m.false_positives.clone()).unwrap_or_default(),
        });
    }
    alerts.sort_by(|a, b| {
        (a.first_seen, &a.rule_id, &a.entity).cmp(&(b.first_seen, &b.rule_id, &b.entity))
    });
    alerts
}
