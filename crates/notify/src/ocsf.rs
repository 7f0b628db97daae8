//! Alerts as OCSF Detection Findings (class 2004, category Findings, schema 1.5.0), one JSON
//! object per line, for SIEMs and data lakes (Security Lake, Splunk, Sentinel's OCSF tables).
//! The same mapping serves the `ocsf` sink and `hunt --format ocsf`.
//!
//! Mapping: the alert is the finding (`finding_info.uid` is `cloudsentinel-alert-<id>` in the
//! service, a stable hash of rule, entity and first time in `hunt`); the rule is the analytic; its
//! ATT&CK techniques and tactics are `attacks`; the principal is a resource and an observable;
//! the source address an observable; the evidence event ids are `related_events`. Creates are
//! activity 1, updates 2, resolutions 3 (type_uid = 2004 * 100 + activity).

use chrono::{DateTime, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus};
use cloudsentinel_core::{Alert, Level};
use serde_json::{Value, json};

use crate::route::Change;

/// The OCSF schema version the findings follow.
pub const OCSF_VERSION: &str = "1.5.0";
/// Evidence event ids listed per finding at most.
const MAX_RELATED: usize = 50;

/// What a finding is made of, from a stored alert or a `hunt` alert.
struct View<'a> {
    uid: String,
    rule_id: &'a str,
    title: &'a str,
    description: Option<&'a str>,
    level: Level,
    kind: &'a str,
    techniques: &'a [String],
    tactics: &'a [String],
    entity: &'a str,
    account: Option<&'a str>,
    source_ip: Option<&'a str>,
    first_seen: DateTime<Utc>,
    last_seen: DateTime<Utc>,
    created: DateTime<Utc>,
    modified: DateTime<Utc>,
    count: u64,
    event_ids: &'a [String],
    explanation: &'a str,
    status: AlertStatus,
    activity: u8,
    url: Option<String>,
}

fn severity(l: Level) -> (u8, &'static str) {
    match l {
        Level::Informational => (1, "Informational"),
        Level::Low => (2, "Low"),
        Level::Medium => (3, "Medium"),
        Level::High => (4, "High"),
        Level::Critical => (5, "Critical"),
    }
}

fn status(s: AlertStatus) -> (u8, &'static str) {
    match s {
        AlertStatus::Open => (1, "New"),
        AlertStatus::Acknowledged | AlertStatus::Investigating => (2, "In Progress"),
        AlertStatus::Resolved | AlertStatus::Closed => (4, "Resolved"),
    }
}

fn activity(change: Change) -> u8 {
    match change {
        Change::Created | Change::Test => 1,
        Change::Updated | Change::Acknowledged => 2,
        Change::Resolved => 3,
    }
}

/// The ATT&CK release the names follow.
const ATTACK_VERSION: &str = "v18";

/// A technique as OCSF's attack object: a sub-technique under its parent, each with its ATT&CK
/// name when known (the schema asks for a name or a uid; techniques outside
/// [`cloudsentinel_core::attack`]'s table go by uid).
fn technique(id: &str) -> Value {
    use cloudsentinel_core::attack::{technique_name, technique_url};
    let named = |uid: &str| {
        let mut o = json!({"uid": uid, "src_url": technique_url(uid)});
        if let Some(n) = technique_name(uid) {
            o["name"] = json!(n);
        }
        o
    };
    match id.split_once('.') {
        Some((parent, _)) => json!({
            "technique": named(parent),
            "sub_technique": named(id),
            "version": ATTACK_VERSION,
        }),
        None => json!({"technique": named(id), "version": ATTACK_VERSION}),
    }
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn finding(v: View<'_>) -> Value {
    let (severity_id, severity) = severity(v.level);
    let (status_id, status) = status(v.status);
    let activity_name = match v.activity {
        1 => "Create",
        2 => "Update",
        _ => "Close",
    };
    // One entry per technique and one per tactic: an alert lists both, not which goes with which.
    let mut attacks: Vec<Value> = v.techniques.iter().map(|t| technique(t)).collect();
    attacks.extend(
        v.tactics
            .iter()
            .map(|t| match cloudsentinel_core::attack::tactic(t) {
                Some((uid, name)) => {
                    json!({"tactic": {"uid": uid, "name": name}, "version": ATTACK_VERSION})
                }
                None => json!({"tactic": {"name": t}, "version": ATTACK_VERSION}),
            }),
    );
    let mut observables = vec![
        json!({"name": "resources[0].uid", "type_id": 10, "type": "Resource UID", "value": v.entity}),
    ];
    if let Some(ip) = v.source_ip {
        observables.push(
            json!({"name": "src_endpoint.ip", "type_id": 2, "type": "IP Address", "value": ip}),
        );
    }
    let mut finding_info = json!({
        "uid": v.uid,
        "title": v.title,
        "desc": v.description.unwrap_or(v.explanation),
        "created_time": ms(v.created),
        "modified_time": ms(v.modified),
        "first_seen_time": ms(v.first_seen),
        "last_seen_time": ms(v.last_seen),
        "types": [v.kind],
        "analytic": {"uid": v.rule_id, "name": v.title, "type_id": 1, "type": "Rule"},
        "related_events": v.event_ids.iter().take(MAX_RELATED).map(|id| json!({"uid": id})).collect::<Vec<_>>(),
    });
    if !attacks.is_empty() {
        finding_info["attacks"] = Value::Array(attacks);
    }
    if let Some(u) = &v.url {
        finding_info["src_url"] = json!(u);
    }
    let mut resource = json!({"uid": v.entity, "type": "Principal"});
    if let Some(acc) = v.account {
        resource["cloud_partition"] = json!(acc);
    }
    json!({
        "activity_id": v.activity,
        "activity_name": activity_name,
        "category_uid": 2,
        "category_name": "Findings",
        "class_uid": 2004,
        "class_name": "Detection Finding",
        "type_uid": 200400 + v.activity as u32,
        "type_name": format!("Detection Finding: {activity_name}"),
        "severity_id": severity_id,
        "severity": severity,
        "status_id": status_id,
        "status": status,
        "time": ms(v.modified),
        "start_time": ms(v.first_seen),
        "end_time": ms(v.last_seen),
        "count": v.count,
        "message": v.explanation,
        "metadata": {
            "version": OCSF_VERSION,
            "product": {"name": "CloudSentinel", "vendor_name": "CloudSentinel", "version": env!("CARGO_PKG_VERSION")},
            "log_name": "alerts",
        },
        "finding_info": finding_info,
        "resources": [resource],
        "observables": observables,
    })
}

/// A stored alert as a finding, for a change to it.
pub fn from_record(a: &AlertRecord, change: Change, url: Option<String>) -> Value {
    finding(View {
        uid: format!("cloudsentinel-alert-{}", a.id),
        rule_id: &a.rule_id,
        title: &a.title,
        description: None,
        level: a.level,
        kind: &a.kind,
        techniques: &a.techniques,
        tactics: &a.tactics,
        entity: &a.entity,
        account: a.account.as_deref(),
        source_ip: a.source_ip.as_deref(),
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        created: a.created,
        modified: a.updated.max(a.created),
        count: a.count,
        event_ids: &a.event_ids,
        explanation: &a.explanation,
        status: a.status,
        activity: activity(change),
        url,
    })
}

/// A message's subject as a finding: the alert, or the incident (its uid
/// `cloudsentinel-incident-<id>`, no analytic, its latest alert's evidence).
pub fn from_notice(n: &crate::route::Notice, url: Option<String>) -> Value {
    let Some(i) = &n.incident else {
        return from_record(&n.alert, n.change, url);
    };
    let explanation = n.explanation();
    let mut f = finding(View {
        uid: n.key(),
        rule_id: "",
        title: &i.title,
        description: None,
        level: n.level(),
        kind: "incident",
        techniques: &i.techniques,
        tactics: &i.tactics,
        entity: &i.entity,
        account: i.account.as_deref(),
        source_ip: n.alert.source_ip.as_deref(),
        first_seen: i.first_seen,
        last_seen: i.last_seen,
        created: i.created,
        modified: i.updated.max(i.created),
        count: i.alert_count,
        event_ids: &n.alert.event_ids,
        explanation: &explanation,
        status: i.status,
        activity: activity(n.change),
        url,
    });
    if let Some(fi) = f["finding_info"].as_object_mut() {
        fi.remove("analytic");
    }
    f
}

/// A `hunt` alert as a finding (created, open; its uid a stable hash of what identifies it).
pub fn from_alert(a: &Alert) -> Value {
    let key = format!(
        "{}\u{1f}{}\u{1f}{}",
        a.rule_id,
        a.entity,
        a.first_seen.to_rfc3339()
    );
    finding(View {
        uid: format!(
            "cloudsentinel-hunt-{:016x}",
            cloudsentinel_core::hash::fnv1a(key.as_bytes())
        ),
        rule_id: &a.rule_id,
        title: &a.title,
        description: a.description.as_deref(),
        level: a.level,
        kind: "alert",
        techniques: &a.techniques,
        tactics: &a.tactics,
        entity: &a.entity,
        account: a.account.as_deref(),
        source_ip: None,
        first_seen: a.first_seen,
        last_seen: a.last_seen,
        created: a.first_seen,
        modified: a.last_seen,
        count: a.count,
        event_ids: &a.event_ids,
        explanation: &a.explanation,
        status: AlertStatus::Open,
        activity: 1,
        url: None,
    })
}
