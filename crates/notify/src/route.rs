//! Which alert changes go to which sink, and when: a new alert at once; a higher level or a
//! status change at once; an alert that only keeps counting at most every `update_every`; never
//! a message per event.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord};
use cloudsentinel_core::Level;
use serde::{Deserialize, Serialize};

use crate::config::Sink;

/// What happened to the alert that a message tells.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Change {
    /// A new alert.
    Created,
    /// More signals, a higher level, or an analyst's change short of acknowledging or closing.
    Updated,
    /// An analyst acknowledged it or is investigating it.
    Acknowledged,
    /// Resolved or closed.
    Resolved,
    /// A test message (`notify test`, the dashboard's button).
    Test,
}

impl Change {
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Created => "created",
            Change::Updated => "updated",
            Change::Acknowledged => "acknowledged",
            Change::Resolved => "resolved",
            Change::Test => "test",
        }
    }

    /// The change an analyst's new status makes.
    pub fn of_status(s: AlertStatus) -> Change {
        match s {
            AlertStatus::Open => Change::Updated,
            AlertStatus::Acknowledged | AlertStatus::Investigating => Change::Acknowledged,
            AlertStatus::Resolved | AlertStatus::Closed => Change::Resolved,
        }
    }
}

/// What one message says: the alert (or incident) as it was when the change happened. Stored in
/// the outbox as JSON, so a message sent after a restart says what it would have said before.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Notice {
    pub change: Change,
    /// The alert; for an incident's message, its latest alert (where from, what it did last).
    pub alert: AlertRecord,
    /// The principal's name when it is known by an object id.
    #[serde(default)]
    pub name: Option<String>,
    /// Set when the message is about this incident (a sink with `incidents = true`).
    #[serde(default)]
    pub incident: Option<IncidentRecord>,
}

impl Notice {
    /// `alert` or `incident`.
    pub fn kind(&self) -> &'static str {
        if self.incident.is_some() {
            "incident"
        } else {
            "alert"
        }
    }
    pub fn id(&self) -> i64 {
        self.incident.as_ref().map_or(self.alert.id, |i| i.id)
    }
    /// The key receivers deduplicate by: `cloudsentinel-alert-<id>`, `cloudsentinel-incident-<id>`.
    pub fn key(&self) -> String {
        format!("cloudsentinel-{}-{}", self.kind(), self.id())
    }
    pub fn title(&self) -> &str {
        self.incident
            .as_ref()
            .map_or(&self.alert.title, |i| &i.title)
    }
    /// The level; an incident's is the severity an analyst gave it, else its alerts' highest.
    pub fn level(&self) -> Level {
        self.incident
            .as_ref()
            .map_or(self.alert.level, |i| i.severity.unwrap_or(i.level))
    }
    pub fn entity(&self) -> &str {
        self.incident
            .as_ref()
            .map_or(&self.alert.entity, |i| &i.entity)
    }
    pub fn account(&self) -> Option<&str> {
        self.incident
            .as_ref()
            .map_or(self.alert.account.as_deref(), |i| i.account.as_deref())
    }
    /// Signals folded into the alert, or alerts in the incident.
    pub fn count(&self) -> u64 {
        self.incident
            .as_ref()
            .map_or(self.alert.count, |i| i.alert_count)
    }
    pub fn status(&self) -> AlertStatus {
        self.incident
            .as_ref()
            .map_or(self.alert.status, |i| i.status)
    }
    pub fn first_seen(&self) -> DateTime<Utc> {
        self.incident
            .as_ref()
            .map_or(self.alert.first_seen, |i| i.first_seen)
    }
    pub fn last_seen(&self) -> DateTime<Utc> {
        self.incident
            .as_ref()
            .map_or(self.alert.last_seen, |i| i.last_seen)
    }
    pub fn techniques(&self) -> &[String] {
        self.incident
            .as_ref()
            .map_or(&self.alert.techniques, |i| &i.techniques)
    }
    pub fn tactics(&self) -> &[String] {
        self.incident
            .as_ref()
            .map_or(&self.alert.tactics, |i| &i.tactics)
    }
    /// Why it fired; for an incident, what its latest alert says.
    pub fn explanation(&self) -> String {
        match &self.incident {
            None => self.alert.explanation.clone(),
            Some(i) => format!(
                "{} alert{} so far; the latest: {}. {}",
                i.alert_count,
                if i.alert_count == 1 { "" } else { "s" },
                self.alert.title,
                self.alert.explanation
            ),
        }
    }
}

/// What was last sent about one alert to one sink.
#[derive(Debug, Clone, Copy)]
struct Sent {
    level: Level,
    status: AlertStatus,
    count: u64,
    at: DateTime<Utc>,
}

/// Alerts remembered per sink at most; the oldest are forgotten first (an alert forgotten and
/// changed again is sent as an update).
const MAX_REMEMBERED: usize = 100_000;

/// Decides, for each changed alert or incident, which sinks hear of it.
pub struct Router {
    /// Sinks that hear of alerts: name, filter, update throttle.
    sinks: Vec<(String, crate::config::Filter, chrono::Duration)>,
    /// (sink index, alert id) -> what it last heard.
    sent: HashMap<(usize, i64), Sent>,
    /// Sinks that hear of incidents.
    incident_sinks: Vec<(String, crate::config::Filter, chrono::Duration)>,
    /// (incident sink index, incident id) -> what it last heard.
    sent_incidents: HashMap<(usize, i64), Sent>,
}

/// What changed since a sink last heard, given what it heard (`None`: nothing yet).
fn change(
    last: Option<&Sent>,
    now: (Level, AlertStatus, u64),
    is_new: bool,
    at: DateTime<Utc>,
    every: chrono::Duration,
) -> Option<Change> {
    let (level, status, count) = now;
    let closed = matches!(status, AlertStatus::Resolved | AlertStatus::Closed);
    match last {
        // Closed before anyone heard of it (the feedback model closed a likely false positive):
        // nothing to say.
        None if closed => None,
        None if is_new => Some(Change::Created),
        // Crossed the sink's level, or changed after a restart made us forget: it is news to
        // this sink either way.
        None => Some(if count <= 1 {
            Change::Created
        } else {
            Change::Updated
        }),
        Some(last) if last.status != status => Some(Change::of_status(status)),
        Some(last) if level > last.level => Some(Change::Updated),
        Some(last) if count > last.count && at - last.at >= every => Some(Change::Updated),
        Some(_) => None,
    }
}

/// Keeps the memory of what was sent bounded: drops the older half past [`MAX_REMEMBERED`].
fn bound(sent: &mut HashMap<(usize, i64), Sent>) {
    if sent.len() > MAX_REMEMBERED {
        let mut ats: Vec<DateTime<Utc>> = sent.values().map(|s| s.at).collect();
        ats.sort_unstable();
        let cut = ats[ats.len() - MAX_REMEMBERED / 2];
        sent.retain(|_, s| s.at >= cut);
    }
}

impl Router {
    pub fn new(sinks: &[Sink]) -> Router {
        let spec = |s: &Sink| (s.name.clone(), s.filter.clone(), s.update_every);
        Router {
            sinks: sinks.iter().filter(|s| !s.incidents).map(spec).collect(),
            sent: HashMap::new(),
            incident_sinks: sinks.iter().filter(|s| s.incidents).map(spec).collect(),
            sent_incidents: HashMap::new(),
        }
    }

    /// The (sink, change) pairs a changed incident makes for the sinks that hear of incidents.
    /// `is_new`: the incident was opened by this change.
    pub fn route_incident(
        &mut self,
        i: &IncidentRecord,
        is_new: bool,
        now: DateTime<Utc>,
    ) -> Vec<(String, Change)> {
        let mut out = Vec::new();
        let level = i.severity.unwrap_or(i.level);
        for (k, (name, filter, every)) in self.incident_sinks.iter().enumerate() {
            if !filter.accepts_incident(i) {
                continue;
            }
            let key = (k, i.id);
            let state = (level, i.status, i.alert_count);
            if let Some(c) = change(self.sent_incidents.get(&key), state, is_new, now, *every) {
                self.sent_incidents.insert(
                    key,
                    Sent {
                        level,
                        status: i.status,
                        count: i.alert_count,
                        at: now,
                    },
                );
                out.push((name.clone(), c));
            }
        }
        bound(&mut self.sent_incidents);
        out
    }

    /// The sinks an analyst's change of an incident's status goes to (see [`Router::route_status`]).
    pub fn route_incident_status(
        &mut self,
        i: &IncidentRecord,
        now: DateTime<Utc>,
    ) -> Vec<(String, Change)> {
        let mut out = Vec::new();
        let level = i.severity.unwrap_or(i.level);
        for (k, (name, filter, _)) in self.incident_sinks.iter().enumerate() {
            if filter.accepts_incident(i) {
                self.sent_incidents.insert(
                    (k, i.id),
                    Sent {
                        level,
                        status: i.status,
                        count: i.alert_count,
                        at: now,
                    },
                );
                out.push((name.clone(), Change::of_status(i.status)));
            }
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.sinks.is_empty() && self.incident_sinks.is_empty()
    }

    /// The (sink, change) pairs an alert changed by the pipeline makes. `is_new` says the alert
    /// was opened by this change.
    pub fn route(
        &mut self,
        a: &AlertRecord,
        is_new: bool,
        now: DateTime<Utc>,
    ) -> Vec<(String, Change)> {
        let mut out = Vec::new();
        for (i, (name, filter, every)) in self.sinks.iter().enumerate() {
            if !filter.accepts(a) {
                continue;
            }
            let key = (i, a.id);
            let state = (a.level, a.status, a.count);
            if let Some(c) = change(self.sent.get(&key), state, is_new, now, *every) {
                self.sent.insert(
                    key,
                    Sent {
                        level: a.level,
                        status: a.status,
                        count: a.count,
                        at: now,
                    },
                );
                out.push((name.clone(), c));
            }
        }
        bound(&mut self.sent);
        out
    }

    /// The sinks an analyst's status change goes to: those that want the alert (whether they
    /// heard of it before is not known here: a receiver that has not is told anyway, which
    /// PagerDuty and ServiceNow handle by their keys). Remembered, so the pipeline does not
    /// tell it again.
    pub fn route_status(&mut self, a: &AlertRecord, now: DateTime<Utc>) -> Vec<(String, Change)> {
        let mut out = Vec::new();
        for (i, (name, filter, _)) in self.sinks.iter().enumerate() {
            if filter.accepts(a) {
                self.sent.insert(
                    (i, a.id),
                    Sent {
                        level: a.level,
                        status: a.status,
                        count: a.count,
                        at: now,
                    },
                );
                out.push((name.clone(), Change::of_status(a.status)));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Filter, Kind, Sink, Target};

    fn sink(name: &str, min: Level) -> Sink {
        Sink {
            name: name.into(),
            kind: Kind::Webhook,
            filter: Filter {
                min_level: min,
                ..Filter::default()
            },
            incidents: false,
            update_every: chrono::Duration::minutes(15),
            max_attempts: 3,
            timeout: std::time::Duration::from_secs(1),
            target: Target::OcsfFile {
                path: "/dev/null".into(),
            },
        }
    }

    pub(crate) fn alert(id: i64, level: Level, count: u64) -> AlertRecord {
        let t = DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        AlertRecord {
            id,
            kind: "rule".into(),
            rule_id: "r".into(),
            title: "t".into(),
            level,
            techniques: vec![],
            tactics: vec![],
            entity: "e".into(),
            account: None,
            access_key: None,
            source_ip: None,
            first_seen: t,
            last_seen: t,
            created: t,
            updated: t,
            count,
            event_ids: vec![],
            explanation: String::new(),
            status: AlertStatus::Open,
            assignee: None,
            incident_id: None,
            verdict: None,
            tp_score: None,
        }
    }

    #[test]
    fn new_alerts_go_out_at_once_and_counting_is_throttled() {
        let mut r = Router::new(&[sink("hi", Level::High), sink("all", Level::Low)]);
        let t0 = Utc::now();
        let mut a = alert(1, Level::Medium, 1);
        assert_eq!(
            r.route(&a, true, t0),
            [("all".to_string(), Change::Created)]
        );
        // Ten more signals within the quarter hour: nothing.
        for n in 2..12 {
            a.count = n;
            assert!(
                r.route(&a, false, t0 + chrono::Duration::minutes(n as i64))
                    .is_empty()
            );
        }
        // The level rises: an update to "all" at once, and news to "hi".
        a.level = Level::High;
        assert_eq!(
            r.route(&a, false, t0 + chrono::Duration::minutes(12)),
            [
                ("hi".to_string(), Change::Updated),
                ("all".to_string(), Change::Updated)
            ]
        );
        // Counting after the throttle: an update.
        a.count = 40;
        assert!(
            r.route(&a, false, t0 + chrono::Duration::minutes(20))
                .is_empty()
        );
        assert_eq!(
            r.route(&a, false, t0 + chrono::Duration::minutes(28)).len(),
            2
        );
        // An analyst resolves it: both hear, and the pipeline does not tell them again.
        a.status = AlertStatus::Resolved;
        assert_eq!(
            r.route_status(&a, t0 + chrono::Duration::minutes(30)),
            [
                ("hi".to_string(), Change::Resolved),
                ("all".to_string(), Change::Resolved)
            ]
        );
        assert!(
            r.route(&a, false, t0 + chrono::Duration::minutes(31))
                .is_empty()
        );
    }

    #[test]
    fn incident_sinks_hear_of_incidents_not_alerts() {
        let mut pager = sink("pager", Level::Medium);
        pager.incidents = true;
        let mut r = Router::new(&[pager, sink("hook", Level::Low)]);
        let t0 = Utc::now();
        let a = alert(1, Level::High, 1);
        assert_eq!(
            r.route(&a, true, t0),
            [("hook".to_string(), Change::Created)]
        );
        let mut i: IncidentRecord = serde_json::from_value(serde_json::json!({
            "id": 9, "key": "k", "entity": "e", "account": null, "title": "t", "level": "high",
            "status": "open", "first_seen": t0, "last_seen": t0, "created": t0, "updated": t0,
            "alert_count": 1, "tactics": [], "techniques": []
        }))
        .unwrap();
        assert_eq!(
            r.route_incident(&i, true, t0),
            [("pager".to_string(), Change::Created)]
        );
        // A second alert joins: counted, throttled; a level an analyst raises: at once.
        i.alert_count = 2;
        assert!(
            r.route_incident(&i, false, t0 + chrono::Duration::minutes(1))
                .is_empty()
        );
        i.severity = Some(Level::Critical);
        assert_eq!(
            r.route_incident(&i, false, t0 + chrono::Duration::minutes(2)),
            [("pager".to_string(), Change::Updated)]
        );
        i.status = AlertStatus::Closed;
        assert_eq!(
            r.route_incident_status(&i, t0 + chrono::Duration::minutes(3)),
            [("pager".to_string(), Change::Resolved)]
        );
    }

    #[test]
    fn an_alert_closed_before_anyone_heard_of_it_is_not_sent() {
        let mut r = Router::new(&[sink("all", Level::Low)]);
        let mut a = alert(7, Level::High, 1);
        a.status = AlertStatus::Resolved;
        assert!(r.route(&a, true, Utc::now()).is_empty());
        let b = alert(8, Level::Informational, 1);
        assert!(r.route(&b, true, Utc::now()).is_empty(), "below the level");
    }
}
