//! CloudTrail: recognising the shapes a record arrives in, and normalizing a record to an
//! [`Event`].

use std::sync::Arc;

use chrono::{DateTime, Utc};
use cloudsentinel_core::raw::Scalar;
use cloudsentinel_core::{
    Action, Actor, ActorKind, Event, LogKind, Outcome, Provider, RawRecord, Resource,
};
use serde_json::Value;
use serde_json::value::RawValue;

use crate::formats::{Shape, synthetic_id};

pub(crate) fn is_record(r: &RawRecord) -> bool {
    r.contains_key("eventName") && (r.contains_key("eventSource") || r.contains_key("eventVersion"))
}

pub(crate) fn is_insight(r: &RawRecord) -> bool {
    r.str_field("eventCategory").as_deref() == Some("Insight") || r.contains_key("insightDetails")
}

pub(crate) fn is_digest(r: &RawRecord) -> bool {
    r.contains_key("digestStartTime") || r.contains_key("digestPublicKeyFingerprint")
}

/// Parses the elements of a JSON array text into records.
pub fn parse_array(text: &str) -> Result<Vec<Result<RawRecord, String>>, String> {
    let items: Vec<Box<RawValue>> =
        serde_json::from_str(text).map_err(|e| format!("invalid JSON array: {e}"))?;
    Ok(items
        .into_iter()
        .map(|raw| RawRecord::parse(String::from(raw.get())).map_err(|e| e.to_string()))
        .collect())
}

fn record_or_insight(inner: RawRecord, what: &str) -> Shape {
    if is_insight(&inner) {
        Shape::Insight
    } else if is_record(&inner) || inner.contains_key("eventName") {
        Shape::Record(inner, LogKind::CloudTrail)
    } else {
        Shape::Unknown(format!("{what} is not a CloudTrail record"))
    }
}

/// Recognises a CloudTrail record, S3 delivery file (`{"Records": [...]}`), EventBridge
/// envelope, digest file or Insight event; gives the object back when it is none of these.
pub fn classify_direct(r: RawRecord) -> Result<Shape, RawRecord> {
    if is_record(&r) {
        if is_insight(&r) {
            return Ok(Shape::Insight);
        }
        return Ok(Shape::Record(r, LogKind::CloudTrail));
    }
    // Not a native record: an ECS document of Elastic's AWS integration, brought back.
    let r = if r.contains_key("aws") && r.contains_key("event") {
        from_ecs(&r).unwrap_or(r)
    } else {
        r
    };
    if is_insight(&r) {
        return Ok(Shape::Insight);
    }
    if is_record(&r) {
        return Ok(Shape::Record(r, LogKind::CloudTrail));
    }
    if is_digest(&r) {
        return Ok(Shape::Digest);
    }
    if let Some(list) = r.raw_field("Records").filter(|t| t.starts_with('[')) {
        return Ok(match parse_array(list) {
            Ok(items) => Shape::Records(items),
            Err(e) => Shape::Unknown(format!("field Records: {e}")),
        });
    }
    // EventBridge: {"detail-type": "AWS API Call via CloudTrail", "detail": {record}}
    if r.contains_key("detail-type")
        && let Some(detail) = r.raw_field("detail").filter(|t| t.starts_with('{'))
    {
        return Ok(match RawRecord::parse(detail) {
            Ok(inner) => record_or_insight(inner, "the EventBridge detail"),
            Err(e) => Shape::Unknown(format!("field detail: {e}")),
        });
    }
    Err(r)
}

/// A document of Elastic's AWS integration (ECS fields, `aws.cloudtrail.*`), back in the
/// CloudTrail record shape the rules read: the raw record when `event.original` kept it, else
/// the record rebuilt from the documented field mapping (`event.action` -> `eventName`,
/// `event.provider` -> `eventSource`, `source.address` -> `sourceIPAddress`,
/// `aws.cloudtrail.user_identity.*` -> `userIdentity`, the flattened request and response as
/// objects again, ...). `None` when the object is not such a document.
pub fn from_ecs(r: &RawRecord) -> Option<RawRecord> {
    let event = r.value("event")?;
    let ct = r.value("aws")?.get("cloudtrail")?;
    if let Some(original) = event.get("original").and_then(Value::as_str)
        && let Ok(raw) = RawRecord::parse(original)
        && is_record(&raw)
    {
        return Some(raw);
    }
    let at = |v: &Value, path: &str| -> Option<Value> {
        path.split('.')
            .try_fold(v, |v, k| v.get(k))
            .filter(|v| !v.is_null())
            .cloned()
    };
    let doc = r.to_value();
    let flat = |v: Option<Value>| match v {
        Some(Value::String(s)) if s.starts_with('{') || s.starts_with('[') => {
            serde_json::from_str(&s).ok().or(Some(Value::String(s)))
        }
        other => other,
    };
    let identity = ct.get("user_identity").cloned().unwrap_or(Value::Null);
    let issuer = at(&identity, "session_context.session_issuer");
    let mut user = serde_json::Map::new();
    for (ecs, field) in [
        ("type", "type"),
        ("arn", "arn"),
        ("access_key_id", "accessKeyId"),
        ("invoked_by", "invokedBy"),
    ] {
        if let Some(v) = at(&identity, ecs) {
            user.insert(field.into(), v);
        }
    }
    if let Some(v) = at(doc, "user.id") {
        user.insert("principalId".into(), v);
    }
    if let Some(v) = at(doc, "user.name") {
        user.insert("userName".into(), v);
    }
    if let Some(v) = at(doc, "cloud.account.id") {
        user.insert("accountId".into(), v);
    }
    let mut context = serde_json::Map::new();
    if let Some(i) = issuer {
        let mut si = serde_json::Map::new();
        for (ecs, field) in [
            ("type", "type"),
            ("principal_id", "principalId"),
            ("arn", "arn"),
            ("account_id", "accountId"),
        ] {
            if let Some(v) = at(&i, ecs) {
                si.insert(field.into(), v);
            }
        }
        context.insert("sessionIssuer".into(), Value::Object(si));
    }
    let mut attributes = serde_json::Map::new();
    if let Some(v) = at(&identity, "session_context.mfa_authenticated") {
        attributes.insert("mfaAuthenticated".into(), v);
    }
    if let Some(v) = at(&identity, "session_context.creation_date") {
        attributes.insert("creationDate".into(), v);
    }
    if !attributes.is_empty() {
        context.insert("attributes".into(), Value::Object(attributes));
    }
    if !context.is_empty() {
        user.insert("sessionContext".into(), Value::Object(context));
    }
    let mut record = serde_json::Map::new();
    let mut put = |field: &str, v: Option<Value>| {
        if let Some(v) = v {
            record.insert(field.into(), v);
        }
    };
    put("eventVersion", at(ct, "event_version"));
    put("userIdentity", Some(Value::Object(user)));
    put("eventTime", at(doc, "@timestamp"));
    put("eventSource", at(event, "provider"));
    put("eventName", at(event, "action"));
    put("awsRegion", at(doc, "cloud.region"));
    put(
        "sourceIPAddress",
        at(doc, "source.address").or_else(|| at(doc, "source.ip")),
    );
    put("userAgent", at(doc, "user_agent.original"));
    put("errorCode", at(ct, "error_code"));
    put("errorMessage", at(ct, "error_message"));
    put(
        "requestParameters",
        flat(at(ct, "flattened.request_parameters").or_else(|| at(ct, "request_parameters"))),
    );
    put(
        "responseElements",
        flat(at(ct, "flattened.response_elements").or_else(|| at(ct, "response_elements"))),
    );
    put(
        "additionalEventData",
        flat(at(ct, "flattened.additional_eventdata").or_else(|| at(ct, "additional_eventdata"))),
    );
    put("requestID", at(ct, "request_id"));
    put("eventID", at(event, "id"));
    put("readOnly", at(ct, "read_only"));
    put("eventType", at(ct, "event_type"));
    put("managementEvent", at(ct, "management_event"));
    put("recipientAccountId", at(ct, "recipient_account_id"));
    put("eventCategory", at(ct, "event_category"));
    put(
        "sessionCredentialFromConsole",
        at(ct, "session_credential_from_console"),
    );
    RawRecord::from_value(&Value::Object(record)).ok()
}

fn str_at<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key).and_then(Value::as_str).filter(|s| !s.is_empty())
}

fn top_str(r: &RawRecord, key: &str) -> Option<String> {
    r.str_field(key)
        .filter(|s| !s.is_empty())
        .map(|s| s.into_owned())
}

fn owned(v: &Value, key: &str) -> Option<String> {
    str_at(v, key).map(str::to_string)
}

/// Parses a CloudTrail timestamp (`2024-07-30T21:31:21Z`, with or without fraction or offset).
pub fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .or_else(|_| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f"))
                .ok()
                .map(|n| n.and_utc())
        })
}

fn actor_of(record: &RawRecord, operation: &str) -> Actor {
    let Some(ui) = record.value("userIdentity").filter(|v| v.is_object()) else {
        return Actor::default();
    };
    let kind_str = str_at(ui, "type").unwrap_or("");
    let arn = owned(ui, "arn");
    let session = ui.get("sessionContext");
    let issuer = session.and_then(|s| s.get("sessionIssuer"));
    let mfa_attr = session
        .and_then(|s| s.get("attributes"))
        .and_then(|a| a.get("mfaAuthenticated"))
        .and_then(|v| match v {
            Value::String(s) => Some(s.eq_ignore_ascii_case("true")),
            Value::Bool(b) => Some(*b),
            _ => None,
        });
    let mut actor = Actor {
        id: arn.clone(),
        access_key_id: owned(ui, "accessKeyId"),
        invoked_by: owned(ui, "invokedBy"),
        source_identity: session.and_then(|s| owned(s, "sourceIdentity")),
        issuer_arn: issuer.and_then(|i| owned(i, "arn")),
        mfa: mfa_attr,
        ..Actor::default()
    };
    match kind_str {
        "IAMUser" => {
            actor.kind = Some(ActorKind::User);
            actor.name = owned(ui, "userName").or_else(|| arn.as_deref().and_then(last_segment));
        }
        "Root" => {
            actor.kind = Some(ActorKind::Root);
            actor.name = Some("root".into());
            if actor.id.is_none() {
                actor.id = owned(ui, "accountId").map(|a| format!("arn:aws:iam::{a}:root"));
            }
        }
        "AssumedRole" => {
            actor.kind = Some(ActorKind::AssumedRole);
            actor.role_arn = actor
                .issuer_arn
                .clone()
                .or_else(|| arn.as_deref().and_then(role_arn_from_session));
            actor.session_name = arn.as_deref().and_then(last_segment);
            let role_name = issuer
                .and_then(|i| owned(i, "userName"))
                .or_else(|| actor.role_arn.as_deref().and_then(last_segment));
            actor.name = match (role_name, &actor.session_name) {
                (Some(r), Some(s)) => Some(format!("{r}/{s}")),
                (Some(r), None) => Some(r),
                (None, s) => s.clone(),
            };
        }
        "FederatedUser" => {
            actor.kind = Some(ActorKind::FederatedUser);
            actor.name = arn
                .as_deref()
                .and_then(|a| a.split("federated-user/").nth(1))
                .map(str::to_string)
                .or_else(|| owned(ui, "principalId"));
        }
        "AWSService" => {
            actor.kind = Some(ActorKind::Service);
            actor.name = owned(ui, "invokedBy");
            if actor.id.is_none() {
                actor.id = owned(ui, "invokedBy");
            }
        }
        "AWSAccount" => {
            actor.kind = Some(ActorKind::Account);
            actor.id = actor
                .id
                .or_else(|| owned(ui, "accountId"))
                .or_else(|| owned(ui, "principalId"));
            actor.name = owned(ui, "accountId");
        }
        "IdentityCenterUser" => {
            actor.kind = Some(ActorKind::IdentityCenterUser);
            let user_id = ui.get("onBehalfOf").and_then(|o| owned(o, "userId"));
            actor.id = actor
                .id
                .or_else(|| user_id.clone())
                .or_else(|| owned(ui, "principalId"));
            actor.name = owned(ui, "userName")
                .or_else(|| {
                    record
                        .value("additionalEventData")
                        .and_then(|a| owned(a, "UserName"))
                })
                .or(user_id);
        }
        _ => {
            actor.kind = if kind_str.is_empty() {
                None
            } else {
                Some(ActorKind::Unknown)
            };
            actor.name = owned(ui, "userName").or_else(|| owned(ui, "principalId"));
            if actor.id.is_none() {
                actor.id = owned(ui, "principalId");
            }
        }
    }
    // Console sign-in records MFA use in additionalEventData.
    if operation == "ConsoleLogin"
        && let Some(mfa_used) = record
            .value("additionalEventData")
            .and_then(|a| str_at(a, "MFAUsed"))
    {
        actor.mfa = Some(mfa_used.eq_ignore_ascii_case("yes"));
    }
    actor
}

fn last_segment(arn: &str) -> Option<String> {
    arn.rsplit('/')
        .next()
        .filter(|s| !s.is_empty() && !s.contains(':'))
        .map(str::to_string)
}

/// `arn:aws:sts::123:assumed-role/Role/session` -> `arn:aws:iam::123:role/Role`.
fn role_arn_from_session(arn: &str) -> Option<String> {
    let (prefix, rest) = arn.split_once(":assumed-role/")?;
    let role = rest.split('/').next()?;
    let prefix = prefix.replacen(":sts:", ":iam:", 1);
    Some(format!("{prefix}:role/{role}"))
}

/// The fields an export may carry the event time in when it dropped `eventTime`: Logstash and
/// Elasticsearch (`@timestamp`), Splunk (`_time`).
const TIME_FIELDS: [&str; 3] = ["eventTime", "@timestamp", "_time"];

/// The record's event time, from `eventTime` or the first export spelling present.
fn record_time(record: &RawRecord) -> Result<DateTime<Utc>, String> {
    for field in TIME_FIELDS {
        match record.scalar(field) {
            Some(Scalar::Str(s)) => {
                return parse_time(&s)
                    .ok_or_else(|| format!("field {field}: '{s}' is not an RFC 3339 time"));
            }
            Some(_) => return Err(format!("field {field}: not a string")),
            None => {}
        }
    }
    Err(format!(
        "field eventTime: missing (nor {} as exports spell it)",
        TIME_FIELDS[1..].join(" or ")
    ))
}

/// Turns one CloudTrail record into an [`Event`]. The record is kept as the event's raw value.
pub fn normalize(record: RawRecord) -> Result<Event, String> {
    let time = record_time(&record)?;
    let operation = top_str(&record, "eventName").ok_or("field eventName: missing or empty")?;
    let event_source = record.str_field("eventSource").unwrap_or_default();
    let service = event_source
        .strip_suffix(".amazonaws.com")
        .unwrap_or(&event_source)
        .to_string();
    let id = top_str(&record, "eventID").unwrap_or_else(|| synthetic_id(&record));
    let actor = actor_of(&record, &operation);
    let error_code = top_str(&record, "errorCode");
    let error_message = top_str(&record, "errorMessage");
    // ConsoleLogin failures put the result in responseElements, not errorCode.
    let console_failure = operation == "ConsoleLogin"
        && record
            .value("responseElements")
            .and_then(|r| str_at(r, "ConsoleLogin"))
            .is_some_and(|s| s.eq_ignore_ascii_case("failure"));
    let outcome = Outcome {
        success: error_code.is_none() && !console_failure,
        error_code: error_code
            .or_else(|| console_failure.then(|| "ConsoleLoginFailure".to_string())),
        error_message,
    };
    let read_only = match record.scalar("readOnly") {
        Some(Scalar::Bool(b)) => Some(b),
        Some(Scalar::Str(s)) => Some(s.eq_ignore_ascii_case("true")),
        _ => None,
    };
    let resources = match record.scalar("resources") {
        Some(Scalar::Nested) => record
            .value("resources")
            .and_then(Value::as_array)
            .map(|items| {
                items
                    .iter()
                    .filter_map(|r| {
                        Some(Resource {
                            id: owned(r, "ARN").or_else(|| owned(r, "arn"))?,
                            kind: owned(r, "type"),
                        })
                    })
                    .collect()
            })
            .unwrap_or_default(),
        _ => Vec::new(),
    };
    let account = top_str(&record, "recipientAccountId").or_else(|| {
        record
            .value("userIdentity")
            .and_then(|u| owned(u, "accountId"))
    });
    Ok(Event {
        id,
        time,
        provider: Provider::Aws,
        kind: LogKind::CloudTrail,
        account,
        region: top_str(&record, "awsRegion"),
        actor,
        source_ip: top_str(&record, "sourceIPAddress"),
        user_agent: top_str(&record, "userAgent"),
        action: Action {
            service,
            operation,
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

    fn rr(v: Value) -> RawRecord {
        RawRecord::from_value(&v).unwrap()
    }

    fn normalize_v(v: Value) -> Result<Event, String> {
        normalize(rr(v))
    }

    fn record(identity: Value) -> Value {
        json!({
            "eventVersion": "1.08", "eventTime": "2024-07-30T21:31:21Z",
            "eventSource": "iam.amazonaws.com", "eventName": "CreateAccessKey",
            "awsRegion": "us-east-1", "sourceIPAddress": "198.51.100.7",
            "userAgent": "aws-cli/2.15.0", "eventID": "e-1", "readOnly": false,
            "recipientAccountId": "111122223333", "userIdentity": identity
        })
    }

    #[test]
    fn assumed_role_resolves_role_session_and_mfa() {
        let ev = normalize_v(record(json!({
            "type": "AssumedRole", "principalId": "AROA:dev-session",
            "arn": "arn:aws:sts::111122223333:assumed-role/Deploy/dev-session",
            "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLE",
            "sessionContext": {
                "sessionIssuer": {"type": "Role", "arn": "arn:aws:iam::111122223333:role/Deploy", "userName": "Deploy"},
                "attributes": {"mfaAuthenticated": "true"},
                "sourceIdentity": "alice"
            }
        })))
        .unwrap();
        assert_eq!(ev.actor.kind, Some(ActorKind::AssumedRole));
        assert_eq!(
            ev.actor.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/Deploy")
        );
        assert_eq!(ev.actor.session_name.as_deref(), Some("dev-session"));
        assert_eq!(ev.actor.name.as_deref(), Some("Deploy/dev-session"));
        assert_eq!(ev.actor.source_identity.as_deref(), Some("alice"));
        assert_eq!(ev.actor.mfa, Some(true));
        assert_eq!(ev.action.service, "iam");
        assert_eq!(ev.action.read_only, Some(false));
        assert!(ev.outcome.success);
        assert_eq!(
            ev.entity(),
            "arn:aws:iam::111122223333:role/Deploy (ASIAEXAMPLE)"
        );
    }

    #[test]
    fn assumed_role_without_issuer_derives_role_arn() {
        let ev = normalize_v(record(json!({
            "type": "AssumedRole",
            "arn": "arn:aws:sts::111122223333:assumed-role/Deploy/i-0abc"
        })))
        .unwrap();
        assert_eq!(
            ev.actor.role_arn.as_deref(),
            Some("arn:aws:iam::111122223333:role/Deploy")
        );
    }

    #[test]
    fn root_user_federated_service_account_and_identity_center() {
        let root =
            normalize_v(record(json!({"type": "Root", "accountId": "111122223333"}))).unwrap();
        assert_eq!(root.actor.kind, Some(ActorKind::Root));
        assert_eq!(
            root.actor.id.as_deref(),
            Some("arn:aws:iam::111122223333:root")
        );

        let user = normalize_v(record(
            json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob", "userName": "bob"}),
        ))
        .unwrap();
        assert_eq!(user.actor.kind, Some(ActorKind::User));
        assert_eq!(user.actor.name.as_deref(), Some("bob"));

        let fed = normalize_v(record(
            json!({"type": "FederatedUser", "arn": "arn:aws:sts::1:federated-user/eve"}),
        ))
        .unwrap();
        assert_eq!(fed.actor.name.as_deref(), Some("eve"));

        let svc = normalize_v(record(
            json!({"type": "AWSService", "invokedBy": "cloudtrail.amazonaws.com"}),
        ))
        .unwrap();
        assert_eq!(svc.actor.kind, Some(ActorKind::Service));
        assert_eq!(svc.actor.name.as_deref(), Some("cloudtrail.amazonaws.com"));

        let acct = normalize_v(record(
            json!({"type": "AWSAccount", "accountId": "999988887777", "principalId": "AIDA:x"}),
        ))
        .unwrap();
        assert_eq!(acct.actor.kind, Some(ActorKind::Account));
        assert_eq!(acct.actor.name.as_deref(), Some("999988887777"));

        let idc = normalize_v(record(json!({
            "type": "IdentityCenterUser", "accountId": "1",
            "onBehalfOf": {"userId": "94482488-3041-7026-18f3-be45837cd0e4", "identityStoreArn": "arn:aws:identitystore::1:identitystore/d-1"},
            "credentialId": "abc"
        }))).unwrap();
        assert_eq!(idc.actor.kind, Some(ActorKind::IdentityCenterUser));
        assert_eq!(
            idc.actor.id.as_deref(),
            Some("94482488-3041-7026-18f3-be45837cd0e4")
        );
    }

    #[test]
    fn console_login_records_mfa_and_failure() {
        let mut r =
            record(json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob", "userName": "bob"}));
        r["eventName"] = json!("ConsoleLogin");
        r["eventSource"] = json!("signin.amazonaws.com");
        r["additionalEventData"] =
            json!({"MFAUsed": "No", "LoginTo": "https://console.aws.amazon.com"});
        r["responseElements"] = json!({"ConsoleLogin": "Failure"});
        r["errorMessage"] = json!("Failed authentication");
        let ev = normalize_v(r).unwrap();
        assert_eq!(ev.actor.mfa, Some(false));
        assert!(!ev.outcome.success);
        assert_eq!(
            ev.outcome.error_code.as_deref(),
            Some("ConsoleLoginFailure")
        );
        assert_eq!(
            ev.outcome.error_message.as_deref(),
            Some("Failed authentication")
        );
    }

    #[test]
    fn error_code_is_the_outcome() {
        let mut r = record(json!({"type": "IAMUser", "arn": "arn:aws:iam::1:user/bob"}));
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!("User is not authorized");
        let ev = normalize_v(r).unwrap();
        assert!(!ev.outcome.success);
        assert_eq!(ev.outcome.error_code.as_deref(), Some("AccessDenied"));
    }

    #[test]
    fn bad_time_names_the_field() {
        let mut r = record(json!({"type": "Root"}));
        r["eventTime"] = json!("yesterday");
        let err = normalize_v(r).unwrap_err();
        assert!(err.contains("eventTime"), "{err}");
        let mut r = record(json!({"type": "Root"}));
        r.as_object_mut().unwrap().remove("eventName");
        assert!(normalize_v(r).unwrap_err().contains("eventName"));
    }

    #[test]
    fn missing_event_id_gets_a_stable_synthetic_id() {
        let mut r = record(json!({"type": "Root"}));
        r.as_object_mut().unwrap().remove("eventID");
        let a = normalize_v(r.clone()).unwrap();
        let b = normalize_v(r).unwrap();
        assert!(a.id.starts_with("synthetic-"));
        assert_eq!(a.id, b.id);
    }

    fn classify_v(v: Value) -> Shape {
        crate::formats::classify(rr(v), None)
    }

    #[test]
    fn shapes_are_recognised() {
        let rec = record(json!({"type": "Root"}));
        assert!(matches!(classify_v(rec.clone()), Shape::Record(..)));
        assert!(
            matches!(classify_v(json!({"Records": [rec.clone(), rec.clone()]})), Shape::Records(v) if v.len() == 2)
        );
        let eb = json!({"version": "0", "detail-type": "AWS API Call via CloudTrail", "source": "aws.iam", "detail": rec.clone()});
        assert!(matches!(classify_v(eb), Shape::Record(..)));
        let lake = json!({"eventData": rec.clone()});
        assert!(matches!(classify_v(lake), Shape::Record(..)));
        let as_string = json!({"eventjson": serde_json::to_string(&rec).unwrap()});
        assert!(matches!(classify_v(as_string), Shape::Record(..)));
        let digest = json!({"awsAccountId": "1", "digestStartTime": "2024-01-01T00:00:00Z", "digestPublicKeyFingerprint": "ab"});
        assert!(matches!(classify_v(digest), Shape::Digest));
        let insight = json!({"eventVersion": "1.08", "eventTime": "2024-01-01T00:00:00Z", "eventCategory": "Insight", "insightDetails": {}, "eventName": "x"});
        assert!(matches!(classify_v(insight), Shape::Insight));
        assert!(matches!(classify_v(json!({"hello": 1})), Shape::Unknown(_)));
    }
}
