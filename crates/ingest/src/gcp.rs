//! GCP Cloud Audit Logs: `LogEntry` records whose `protoPayload` is an `AuditLog` (admin
//! activity, data access, system event, policy denied), from a Logging export (JSON, JSON Lines,
//! gzip) or a Pub/Sub push envelope (`message.data`, base64).

use std::sync::Arc;

use base64::Engine as _;
use cloudsentinel_core::raw::Scalar;
use cloudsentinel_core::{
    Action, Actor, ActorKind, Event, LogKind, Outcome, Provider, RawRecord, Resource,
};
use serde_json::Value;

use crate::cloudtrail::parse_time;
use crate::formats::{synthetic_id, text};

/// Top-level keys of a LogEntry, in their canonical case.
const CANONICAL_KEYS: [&str; 11] = [
    "insertId",
    "logName",
    "protoPayload",
    "jsonPayload",
    "textPayload",
    "receiveTimestamp",
    "timestamp",
    "resource",
    "severity",
    "operation",
    "labels",
];

/// Rewrites lower-cased LogEntry keys (`logname`, `protopayload`) to their canonical case, when a
/// pipeline lower-cased them. `None` when nothing needs changing.
pub fn canonicalize(r: &RawRecord) -> Option<RawRecord> {
    if !r
        .keys()
        .any(|k| k == "protopayload" || k == "logname" || k == "insertid")
    {
        return None;
    }
    crate::formats::canonical_keys(r, &CANONICAL_KEYS)
}

/// A row of a log sink's BigQuery table (`cloudaudit_googleapis_com_activity`, `..._data_access`),
/// as `bq query --format=json` or the console's JSON download gives it, brought back to the
/// LogEntry shape: `protopayload_auditlog` is the `protoPayload` (its `requestJson`,
/// `responseJson`, `metadataJson` and `serviceDataJson` strings parsed back into `request`,
/// `response`, `metadata` and `serviceData`), and BigQuery's `2026-03-02 10:04:11.204 UTC`
/// timestamps become RFC 3339. `None` when the row is not of that shape.
pub fn from_bigquery(r: &RawRecord) -> Option<RawRecord> {
    use serde_json::Value;
    if !r.contains_key("protopayload_auditlog") {
        return None;
    }
    let Some(Value::Object(payload)) = r.value("protopayload_auditlog") else {
        return None;
    };
    let mut proto = serde_json::Map::new();
    proto.insert(
        "@type".into(),
        Value::from("type.googleapis.com/google.cloud.audit.AuditLog"),
    );
    for (k, v) in payload {
        let parsed = [
            ("requestJson", "request"),
            ("responseJson", "response"),
            ("metadataJson", "metadata"),
            ("serviceDataJson", "serviceData"),
        ]
        .iter()
        .find(|(json_key, _)| json_key == k);
        match (parsed, v) {
            (Some((_, target)), Value::String(text)) => {
                if let Ok(obj) = serde_json::from_str::<Value>(text) {
                    proto.insert((*target).to_string(), obj);
                }
            }
            (Some(_), Value::Null) => {}
            _ => {
                proto.insert(k.clone(), v.clone());
            }
        }
    }
    let mut entry = serde_json::Map::new();
    for k in r.keys() {
        let v = r.value(k).cloned().unwrap_or(Value::Null);
        match k {
            "protopayload_auditlog" => {
                entry.insert("protoPayload".into(), Value::Object(proto.clone()));
            }
            "timestamp" | "receiveTimestamp" => {
                let v = match v.as_str().and_then(bigquery_time) {
                    Some(t) => Value::from(t),
                    None => v,
                };
                entry.insert(k.to_string(), v);
            }
            _ => {
                entry.insert(k.to_string(), v);
            }
        }
    }
    RawRecord::from_value(&Value::Object(entry)).ok()
}

/// `2026-03-02 10:04:11.204 UTC` (BigQuery's TIMESTAMP as JSON) as `2026-03-02T10:04:11.204Z`.
fn bigquery_time(s: &str) -> Option<String> {
    let t = s.strip_suffix(" UTC")?;
    let (date, time) = t.split_once(' ')?;
    Some(format!("{date}T{time}Z"))
}

/// Whether an object is a Cloud Audit Logs entry.
pub fn is_audit_entry(r: &RawRecord) -> bool {
    r.contains_key("protoPayload")
        && (r.contains_key("logName") || r.contains_key("timestamp") || r.contains_key("insertId"))
}

/// Whether an object is some other Cloud Logging entry (flow logs, load balancer logs, ...).
pub fn is_other_entry(r: &RawRecord) -> bool {
    r.contains_key("logName") && (r.contains_key("jsonPayload") || r.contains_key("textPayload"))
}

/// The LogEntry inside a Pub/Sub push envelope (`{"message": {"data": "<base64>"}, ...}`).
pub fn unwrap_pubsub(r: &RawRecord) -> Option<Result<RawRecord, String>> {
    let message = r.value("message")?;
    let data = message.get("data")?.as_str()?;
    if !(r.contains_key("subscription")
        || message.get("messageId").is_some()
        || message.get("message_id").is_some())
    {
        return None;
    }
    let bytes = match base64::engine::general_purpose::STANDARD.decode(data.trim()) {
        Ok(b) => b,
        Err(e) => return Some(Err(format!("field message.data: not base64: {e}"))),
    };
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(_) => return Some(Err("field message.data: not UTF-8 text".into())),
    };
    Some(RawRecord::parse(text).map_err(|e| format!("field message.data: {e}")))
}

/// `projects/p1/logs/cloudaudit.googleapis.com%2Factivity` -> `p1` (also folders/, organizations/).
fn container_of(log_name: &str) -> Option<String> {
    let mut parts = log_name.split('/');
    let kind = parts.next()?;
    let id = parts.next()?;
    match kind {
        "projects" => Some(id.to_string()),
        "folders" | "organizations" | "billingAccounts" => Some(format!("{kind}/{id}")),
        _ => None,
    }
}

/// Turns a Cloud Audit Logs entry into an [`Event`].
pub fn normalize(record: RawRecord) -> Result<Event, String> {
    let time = match record
        .scalar("timestamp")
        .or_else(|| record.scalar("receiveTimestamp"))
    {
        Some(Scalar::Str(s)) => parse_time(&s)
            .ok_or_else(|| format!("field timestamp: '{s}' is not an RFC 3339 time"))?,
        Some(_) => return Err("field timestamp: not a string".into()),
        None => return Err("field timestamp: missing".into()),
    };
    let payload = record
        .value("protoPayload")
        .filter(|p| p.is_object())
        .ok_or("field protoPayload: missing or not an object")?;
    let method = text(payload.get("methodName")).ok_or("field protoPayload.methodName: missing")?;
    let service = text(payload.get("serviceName")).unwrap_or_default();
    let log_name = record
        .str_field("logName")
        .map(|s| s.into_owned())
        .unwrap_or_default();
    let resource = record.value("resource");
    let labels = resource.and_then(|r| r.get("labels"));
    let account = labels
        .and_then(|l| text(l.get("project_id")))
        .or_else(|| container_of(&log_name))
        .or_else(|| {
            labels
                .and_then(|l| text(l.get("organization_id")))
                .map(|o| format!("organizations/{o}"))
        });
    let region = labels.and_then(|l| {
        text(l.get("location"))
            .or_else(|| text(l.get("zone")))
            .or_else(|| text(l.get("region")))
    });
    let auth = payload.get("authenticationInfo");
    let principal = auth
        .and_then(|a| text(a.get("principalEmail")).or_else(|| text(a.get("principalSubject"))));
    let delegation: Vec<String> = auth
        .and_then(|a| a.get("serviceAccountDelegationInfo"))
        .and_then(Value::as_array)
        .map(|chain| {
            chain
                .iter()
                .filter_map(|d| {
                    text(d.pointer("/firstPartyPrincipal/principalEmail"))
                        .or_else(|| text(d.pointer("/thirdPartyPrincipal/thirdPartyClaims/email")))
                })
                .collect()
        })
        .unwrap_or_default();
    let kind = principal.as_deref().map(|p| {
        if p.ends_with(".gserviceaccount.com") {
            ActorKind::ServiceAccount
        } else {
            ActorKind::User
        }
    });
    let actor = Actor {
        id: principal.clone(),
        name: principal,
        kind,
        // The first identity in the delegation chain is where the impersonation started.
        source_identity: delegation.first().cloned(),
        issuer_arn: delegation.last().cloned(),
        ..Actor::default()
    };
    let metadata = payload.get("requestMetadata");
    let status_code = payload
        .pointer("/status/code")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let outcome = Outcome {
        success: status_code == 0,
        error_code: (status_code != 0).then(|| status_code.to_string()),
        error_message: text(payload.pointer("/status/message")),
    };
    let read_only = if log_name.contains("data_access") {
        Some(true)
    } else if log_name.contains("activity") {
        Some(false)
    } else {
        None
    };
    let resources = text(payload.get("resourceName"))
        .map(|id| {
            vec![Resource {
                id,
                kind: resource.and_then(|r| text(r.get("type"))),
            }]
        })
        .unwrap_or_default();
    let id = record
        .str_field("insertId")
        .filter(|s| !s.is_empty())
        .map(|s| s.into_owned())
        .unwrap_or_else(|| synthetic_id(&record));
    Ok(Event {
        id,
        time,
        provider: Provider::Gcp,
        kind: LogKind::GcpAudit,
        account,
        region,
        actor,
        source_ip: metadata.and_then(|m| text(m.get("callerIp"))),
        user_agent: metadata.and_then(|m| text(m.get("callerSuppliedUserAgent"))),
        action: Action {
            service,
            operation: method,
            read_only,
        },
        resources,
        outcome,
        network: None,
        raw: Arc::new(record),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn entry() -> Value {
        json!({
            "insertId": "abc123", "logName": "projects/prod-1/logs/cloudaudit.googleapis.com%2Factivity",
            "timestamp": "2024-05-01T12:00:00.123456Z", "severity": "NOTICE",
            "resource": {"type": "service_account", "labels": {"project_id": "prod-1", "email_id": "ci@prod-1.iam.gserviceaccount.com"}},
            "protoPayload": {
                "@type": "type.googleapis.com/google.cloud.audit.AuditLog",
                "serviceName": "iam.googleapis.com", "methodName": "google.iam.admin.v1.CreateServiceAccountKey",
                "resourceName": "projects/-/serviceAccounts/123",
                "authenticationInfo": {"principalEmail": "deployer@prod-1.iam.gserviceaccount.com",
                    "serviceAccountDelegationInfo": [{"firstPartyPrincipal": {"principalEmail": "alice@example.com"}}]},
                "requestMetadata": {"callerIp": "198.51.100.7", "callerSuppliedUserAgent": "google-cloud-sdk gcloud/470.0.0"},
                "status": {}
            }
        })
    }

    #[test]
    fn audit_entry_normalizes_with_delegation_chain() {
        let r = RawRecord::from_value(&entry()).unwrap();
        assert!(is_audit_entry(&r));
        let ev = normalize(r).unwrap();
        assert_eq!(ev.id, "abc123");
        assert_eq!(ev.account.as_deref(), Some("prod-1"));
        assert_eq!(ev.actor.kind, Some(ActorKind::ServiceAccount));
        assert_eq!(
            ev.actor.source_identity.as_deref(),
            Some("alice@example.com")
        );
        assert_eq!(
            ev.action.operation,
            "google.iam.admin.v1.CreateServiceAccountKey"
        );
        assert_eq!(ev.action.service, "iam.googleapis.com");
        assert_eq!(ev.action.read_only, Some(false));
        assert!(ev.outcome.success);
        assert_eq!(
            ev.user_agent.as_deref(),
            Some("google-cloud-sdk gcloud/470.0.0")
        );
    }

    #[test]
    fn denied_call_is_a_failure() {
        let mut e = entry();
        e["protoPayload"]["status"] = json!({"code": 7, "message": "PERMISSION_DENIED"});
        let ev = normalize(RawRecord::from_value(&e).unwrap()).unwrap();
        assert!(!ev.outcome.success);
        assert_eq!(ev.outcome.error_code.as_deref(), Some("7"));
    }

    #[test]
    fn pubsub_push_envelope_is_unwrapped() {
        let data =
            base64::engine::general_purpose::STANDARD.encode(serde_json::to_vec(&entry()).unwrap());
        let env = RawRecord::from_value(&json!({"message": {"data": data, "messageId": "1"}, "subscription": "projects/p/subscriptions/s"})).unwrap();
        let inner = unwrap_pubsub(&env).unwrap().unwrap();
        assert!(is_audit_entry(&inner));
        let bad =
            RawRecord::from_value(&json!({"message": {"data": "***", "messageId": "1"}})).unwrap();
        assert!(unwrap_pubsub(&bad).unwrap().unwrap_err().contains("base64"));
    }
}
