//! An incident told in plain words, from its alerts in time order: who, from where, what first,
//! what then, how it ended, for an analyst's first read and for the hand-over to the next shift.
//! Built when asked (the alerts are the truth; nothing is stored twice).

use std::collections::{BTreeSet, HashMap};
use std::fmt::Write as _;

use cloudsentinel_alert::{AlertRecord, IncidentRecord};
use cloudsentinel_core::Level;

/// Alerts named one by one at most; the rest are counted.
const NAMED: usize = 20;

/// An incident in words: one summary sentence, one step per alert in time order, and notes.
#[derive(Debug, Clone, serde::Serialize, schemars::JsonSchema)]
pub struct Narrative {
    /// One sentence: who, from where, when, how many alerts of which levels.
    pub summary: String,
    /// One sentence per alert at low or above, in time order (the first 20, then how many
    /// more).
    pub steps: Vec<String>,
    /// The tactics in kill-chain order; the informational signals beside them.
    pub notes: Vec<String>,
}

impl Narrative {
    /// The whole story as text, one line per sentence.
    pub fn text(&self) -> String {
        std::iter::once(self.summary.as_str())
            .chain(self.steps.iter().map(String::as_str))
            .chain(self.notes.iter().map(String::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

/// The story of `incident` from `alerts` (any order; informational ones are left out of the
/// steps and counted in a note).
pub fn narrate(
    incident: &IncidentRecord,
    alerts: &[AlertRecord],
    names: &HashMap<String, String>,
) -> Narrative {
    let short_name = |entity: &str| match names.get(entity) {
        Some(name) => name.clone(),
        None => short_name(entity),
    };
    let mut raised: Vec<&AlertRecord> = alerts
        .iter()
        .filter(|a| a.level > Level::Informational)
        .collect();
    raised.sort_by_key(|a| (a.first_seen, a.id));
    let context = alerts.len() - raised.len();
    let mut notes = Vec::new();
    let (Some(first), Some(last)) = (raised.first(), raised.iter().map(|a| a.last_seen).max())
    else {
        return Narrative {
            summary: format!(
                "No alert at low or above in this incident ({} informational signal{}).",
                context,
                plural(context)
            ),
            steps: Vec::new(),
            notes,
        };
    };
    let principals = distinct(raised.iter().map(|a| short_name(&a.entity)));
    let addresses = distinct(raised.iter().filter_map(|a| a.source_ip.clone()));
    let accounts = distinct(raised.iter().filter_map(|a| a.account.clone()));
    let same_day = first.first_seen.date_naive() == last.date_naive();
    let mut summary = format!(
        "From {} to {}",
        first.first_seen.format("%Y-%m-%d %H:%M UTC"),
        if same_day {
            last.format("%H:%M UTC").to_string()
        } else {
            last.format("%Y-%m-%d %H:%M UTC").to_string()
        }
    );
    let _ = write!(summary, ", {}", list("principal", &principals));
    if !addresses.is_empty() {
        let _ = write!(summary, " from {}", list("address", &addresses));
    }
    if !accounts.is_empty() {
        let _ = write!(summary, " in {}", list("account", &accounts));
    }
    let _ = write!(
        summary,
        " raised {} alert{} ({}).",
        raised.len(),
        plural(raised.len()),
        level_counts(&raised)
    );
    let mut steps = Vec::new();
    let mut day = None;
    let mut who = None;
    for a in raised.iter().take(NAMED) {
        let d = a.first_seen.date_naive();
        let when = if day == Some(d) {
            a.first_seen.format("%H:%M").to_string()
        } else {
            a.first_seen.format("%Y-%m-%d %H:%M").to_string()
        };
        day = Some(d);
        let name = short_name(&a.entity);
        let by = if who.as_ref() == Some(&name) || principals.len() == 1 {
            String::new()
        } else {
            format!("{name}: ")
        };
        who = Some(name);
        let times = if a.count > 1 {
            format!(", {} times", a.count)
        } else {
            String::new()
        };
        steps.push(format!(
            "{when}: {by}{} ({}{times}).",
            a.title.trim_end_matches('.'),
            a.level.as_str()
        ));
    }
    if raised.len() > NAMED {
        steps.push(format!(
            "... and {} more, the last at {}.",
            raised.len() - NAMED,
            last.format("%Y-%m-%d %H:%M")
        ));
    }
    if !incident.tactics.is_empty() {
        notes.push(format!(
            "Tactics, in kill-chain order: {}.",
            incident.tactics.join(" → ")
        ));
    }
    if context > 0 {
        notes.push(format!(
            "{} informational signal{} (change records, routine findings) {} beside them.",
            context,
            plural(context),
            if context == 1 { "sits" } else { "sit" }
        ));
    }
    Narrative {
        summary,
        steps,
        notes,
    }
}

pub use cloudsentinel_alert::is_object_id;

/// A principal as people say it: the last part of an ARN (`user/dmitri`,
/// `assumed-role/app/i-0abc`), without the access key an AWS entity carries in brackets.
fn short_name(entity: &str) -> String {
    let who = display_entity(entity);
    match who.strip_prefix("arn:") {
        Some(rest) => rest.rsplit(':').next().unwrap_or(rest).to_string(),
        None => who,
    }
}

fn display_entity(entity: &str) -> String {
    match entity.rsplit_once(" (") {
        Some((who, key)) if key.ends_with(')') => who.to_string(),
        _ => entity.to_string(),
    }
}

fn distinct(items: impl Iterator<Item = String>) -> Vec<String> {
    let mut seen = BTreeSet::new();
    items.filter(|i| seen.insert(i.clone())).collect()
}

fn list(noun: &str, items: &[String]) -> String {
    match items {
        [] => format!("no {noun}"),
        [one] => one.clone(),
        [a, b] => format!("{a} and {b}"),
        more if more.len() <= 4 => {
            let (last, rest) = more.split_last().expect("several");
            format!("{} and {last}", rest.join(", "))
        }
        more => format!(
            "{} and {} other {noun}s",
            more[..3].join(", "),
            more.len() - 3
        ),
    }
}

fn level_counts(alerts: &[&AlertRecord]) -> String {
    let mut parts = Vec::new();
    for level in [Level::Critical, Level::High, Level::Medium, Level::Low] {
        let n = alerts.iter().filter(|a| a.level == level).count();
        if n > 0 {
            parts.push(format!("{n} {}", level.as_str()));
        }
    }
    parts.join(", ")
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{TimeZone, Utc};
    use cloudsentinel_alert::AlertStatus;

    fn alert(
        id: i64,
        minute: u32,
        title: &str,
        level: Level,
        entity: &str,
        ip: &str,
    ) -> AlertRecord {
        let t = Utc.with_ymd_and_hms(2025, 3, 11, 22, minute, 0).unwrap();
        AlertRecord {
            id,
            kind: "rule".into(),
            rule_id: format!("r{id}"),
            title: title.into(),
            level,
            techniques: vec![],
            tactics: vec![],
            entity: entity.into(),
            account: Some("111122223333".into()),
            access_key: None,
            source_ip: Some(ip.into()),
            first_seen: t,
            last_seen: t + chrono::Duration::minutes(1),
            created: t,
            updated: t,
            count: 1,
            event_ids: vec![],
            explanation: String::new(),
            status: AlertStatus::Open,
            assignee: None,
            incident_id: Some(1),
            verdict: None,
            tp_score: None,
        }
    }

    #[test]
    fn an_incident_reads_in_time_order_with_who_where_and_what() {
        let dmitri = "arn:aws:iam::111122223333:user/dmitri (AKIAX)";
        let alerts = vec![
            alert(
                3,
                12,
                "New IAM User Created And Given Administrative Access",
                Level::High,
                dmitri,
                "45.32.154.91",
            ),
            alert(
                1,
                3,
                "Offensive Security Tool User Agent",
                Level::High,
                dmitri,
                "45.32.154.91",
            ),
            alert(
                2,
                5,
                "Enumeration Burst",
                Level::Medium,
                "arn:aws:iam::111122223333:user/dmitri",
                "45.32.154.91",
            ),
            alert(
                4,
                40,
                "Trail Stopped",
                Level::High,
                "arn:aws:iam::111122223333:user/backup-svc",
                "66.42.1.9",
            ),
            alert(
                5,
                41,
                "IAM change record",
                Level::Informational,
                dmitri,
                "45.32.154.91",
            ),
        ];
        let incident = IncidentRecord {
            id: 1,
            key: "AKIAX".into(),
            entity: dmitri.into(),
            account: Some("111122223333".into()),
            title: "t".into(),
            level: Level::High,
            status: AlertStatus::Open,
            first_seen: alerts[1].first_seen,
            last_seen: alerts[3].last_seen,
            created: alerts[1].first_seen,
            updated: alerts[1].first_seen,
            alert_count: 5,
            tactics: vec![
                "initial-access".into(),
                "persistence".into(),
                "defense-evasion".into(),
            ],
            techniques: vec![],
            assignee: None,
            severity: None,
            close_reason: None,
            join_keys: vec![],
        };
        let n = narrate(&incident, &alerts, &HashMap::new());
        assert_eq!(
            n.summary,
            "From 2025-03-11 22:03 UTC to 22:41 UTC, user/dmitri and user/backup-svc from 45.32.154.91 and 66.42.1.9 in 111122223333 raised 4 alerts (3 high, 1 medium)."
        );
        assert_eq!(
            n.steps,
            vec![
                "2025-03-11 22:03: user/dmitri: Offensive Security Tool User Agent (high).",
                "22:05: Enumeration Burst (medium).",
                "22:12: New IAM User Created And Given Administrative Access (high).",
                "22:40: user/backup-svc: Trail Stopped (high).",
            ]
        );
        assert_eq!(
            n.notes,
            vec![
                "Tactics, in kill-chain order: initial-access → persistence → defense-evasion.",
                "1 informational signal (change records, routine findings) sits beside them.",
            ]
        );
        assert!(!n.text().contains("AKIAX"));
        assert_eq!(n.text().lines().count(), 7);
    }

    #[test]
    fn object_ids_are_told_by_name_when_the_events_gave_one() {
        assert!(is_object_id("33361d06-a301-4ece-a45e-d689386f7c4b"));
        assert!(!is_object_id("svc@corp.example"));
        assert!(!is_object_id("arn:aws:iam::1:user/x"));
        let oid = "33361d06-a301-4ece-a45e-d689386f7c4b";
        let a = alert(1, 3, "Risky Sign-in", Level::High, oid, "185.156.73.54");
        let incident = IncidentRecord {
            id: 1,
            key: oid.into(),
            entity: oid.into(),
            account: None,
            title: "t".into(),
            level: Level::High,
            status: AlertStatus::Open,
            first_seen: a.first_seen,
            last_seen: a.last_seen,
            created: a.first_seen,
            updated: a.first_seen,
            alert_count: 1,
            tactics: vec![],
            techniques: vec![],
            assignee: None,
            severity: None,
            close_reason: None,
            join_keys: vec![],
        };
        let names = HashMap::from([(oid.to_string(), "svc-automation@corp.example".to_string())]);
        let n = narrate(&incident, &[a], &names);
        assert!(
            n.summary
                .contains(", svc-automation@corp.example from 185.156.73.54"),
            "{}",
            n.summary
        );
    }
}
