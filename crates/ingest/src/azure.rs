//! Azure: the Activity Log and Entra ID sign-in, audit and risk logs.
//!
//! Every record is brought to the **diagnostic-settings shape** (what a diagnostic setting writes
//! to a storage account or an Event Hub), because that is the one shape rules are written
//! against: `time`, `resourceId`, `operationName`, `category`, `resultType`, `callerIpAddress`,
//! `identity`, `properties`, ... Records in the Microsoft Graph shape (a `signIn` or a
//! `directoryAudit` object) and in the Activity Log REST API shape (`eventTimestamp`,
//! `operationName.value`) are wrapped into it, the original object kept whole under
//! `properties` where the diagnostic shape puts it. Top-level keys are written in their canonical
//! case (some exports lower-case them).

use std::sync::Arc;

use cloudsentinel_core::raw::Scalar;
use cloudsentinel_core::{
    Action, Actor, ActorKind, Event, LogKind, Outcome, Provider, RawRecord, Resource,
};
use serde_json::{Value, json};

use crate::cloudtrail::parse_time;
use crate::formats::{synthetic_id, text};

/// Top-level keys of the diagnostic-settings shape, in their canonical case.
const CANONICAL_KEYS: [&str; 18] = [
    "time",
    "resourceId",
    "operationName",
    "operationVersion",
    "category",
    "resultType",
    "resultSignature",
    "resultDescription",
    "durationMs",
    "callerIpAddress",
    "correlationId",
    "identity",
    "level",
    "location",
    "properties",
    "tenantId",
    "Level",
    "callerIdentity",
];

fn key_ci<'a>(r: &'a RawRecord, key: &str) -> Option<&'a str> {
    r.keys().find(|k| k.eq_ignore_ascii_case(key))
}

/// Whether an object is an Azure diagnostic-settings record.
pub fn is_diagnostic(r: &RawRecord) -> bool {
    key_ci(r, "operationName").is_some()
        && (key_ci(r, "time").is_some()
            || key_ci(r, "resourceId").is_some()
            || key_ci(r, "category").is_some())
        && !r.contains_key("eventTimestamp")
}

/// Whether an object is a Microsoft Graph `signIn`.
pub fn is_graph_sign_in(r: &RawRecord) -> bool {
    r.contains_key("createdDateTime")
        && r.contains_key("status")
        && (r.contains_key("userPrincipalName")
            || r.contains_key("appId")
            || r.contains_key("servicePrincipalId"))
}

/// Whether an object is a Microsoft Graph `directoryAudit`.
pub fn is_graph_audit(r: &RawRecord) -> bool {
    r.contains_key("activityDateTime") && r.contains_key("activityDisplayName")
}

/// Whether an object is an Activity Log event from the REST API (`eventTimestamp`, object-valued
/// `operationName`).
pub fn is_rest_activity(r: &RawRecord) -> bool {
    r.contains_key("eventTimestamp")
        && r.raw_field("operationName")
            .is_some_and(|t| t.starts_with('{'))
}

/// The log a diagnostic record belongs to.
pub fn kind_of(r: &RawRecord) -> LogKind {
    let category = key_ci(r, "category")
        .and_then(|k| r.str_field(k))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let operation = key_ci(r, "operationName")
        .and_then(|k| r.str_field(k))
        .unwrap_or_default()
        .to_ascii_lowercase();
    if category.ends_with("signinlogs") || operation == "sign-in activity" {
        return LogKind::EntraSignIn;
    }
    if matches!(
        category.as_str(),
        "userriskevents" | "riskyusers" | "serviceprincipalriskevents" | "riskyserviceprincipals"
    ) {
        return LogKind::EntraRisk;
    }
    let resource = key_ci(r, "resourceId")
        .and_then(|k| r.str_field(k))
        .unwrap_or_default()
        .to_ascii_lowercase();
    let directory_audit = r
        .value(key_ci(r, "properties").unwrap_or("properties"))
        .is_some_and(|p| {
            p.get("activityDisplayName").is_some()
                || p.get("initiatedBy").is_some()
                || p.get("loggedByService").is_some()
        });
    // Activity Log categories: an operation on Entra's own resource provider (deleting its
    // diagnostic setting) is still an Activity Log record.
    let activity_category = matches!(
        category.as_str(),
        "administrative"
            | "security"
            | "servicehealth"
            | "alert"
            | "recommendation"
            | "autoscale"
            | "resourcehealth"
    );
    if category == "auditlogs"
        || directory_audit
        || (resource.contains("/providers/microsoft.aadiam")
            && !category.is_empty()
            && !activity_category)
    {
        return LogKind::EntraAudit;
    }
    LogKind::AzureActivity
}

/// Rewrites top-level keys to their canonical case when an export lower-cased them. `None` when
/// nothing needs changing (the original text is kept).
pub fn canonicalize(r: &RawRecord) -> Option<RawRecord> {
    let canonical = crate::formats::canonical_keys(r, &CANONICAL_KEYS);
    let r = canonical.as_ref().unwrap_or(r);
    // Some exports keep the REST API's `{"value": ..., "localizedValue": ...}` objects in a
    // diagnostic-shaped record: rules compare these fields with strings.
    let objects = ["operationName", "category", "resultType", "resultSignature"]
        .into_iter()
        .filter(|k| r.raw_field(k).is_some_and(|t| t.starts_with('{')))
        .count();
    if objects == 0 {
        return canonical;
    }
    let mut v = r.to_value().clone();
    if let Value::Object(map) = &mut v {
        for k in ["operationName", "category", "resultType", "resultSignature"] {
            if let Some(inner) = map.get(k).and_then(|o| o.get("value")).cloned() {
                map.insert(k.to_string(), inner);
            }
        }
    }
    RawRecord::from_value(&v).ok()
}

/// A Graph `signIn` in the diagnostic-settings shape.
pub fn wrap_sign_in(r: &RawRecord) -> Option<RawRecord> {
    let obj = r.to_value();
    let status = obj.get("status");
    let code = status.and_then(|s| s.get("errorCode")).map(|c| match c {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    });
    let category = match obj.get("signInEventTypes").and_then(Value::as_array) {
        Some(types) if types.iter().any(|t| t == "servicePrincipal") => {
            "ServicePrincipalSignInLogs"
        }
        Some(types) if types.iter().any(|t| t == "managedIdentity") => "ManagedIdentitySignInLogs",
        Some(types) if types.iter().any(|t| t == "nonInteractiveUser") => {
            "NonInteractiveUserSignInLogs"
        }
        _ if obj.get("isInteractive") == Some(&Value::Bool(false)) => {
            "NonInteractiveUserSignInLogs"
        }
        _ => "SignInLogs",
    };
    let wrapped = json!({
        "time": obj.get("createdDateTime"),
        "operationName": "Sign-in activity",
        "category": category,
        "resultType": code.unwrap_or_else(|| "0".into()),
        "resultDescription": status.and_then(|s| s.get("failureReason")),
        "callerIpAddress": obj.get("ipAddress"),
        "correlationId": obj.get("correlationId"),
        "location": obj.get("location").and_then(|l| l.get("countryOrRegion")),
        "properties": obj,
    });
    RawRecord::from_value(&strip_nulls(wrapped)).ok()
}

/// A Log Analytics column holding JSON (`dynamic`), exported as a string: parsed back.
fn dynamic(v: &Value) -> Value {
    match v {
        Value::String(t) if t.starts_with('{') || t.starts_with('[') => {
            serde_json::from_str(t).unwrap_or_else(|_| v.clone())
        }
        other => other.clone(),
    }
}

/// `UserPrincipalName` -> `userPrincipalName`; the Graph names that differ from the column's.
fn graph_name(column: &str) -> String {
    match column {
        "IPAddress" => "ipAddress".into(),
        "LocationDetails" => "location".into(),
        "ConditionalAccessPolicies" => "appliedConditionalAccessPolicies".into(),
        "RiskEventTypes_V2" => "riskEventTypes_v2".into(),
        "ResourceIdentity" => "resourceId".into(),
        "Id" => "id".into(),
        _ => {
            let mut c = column.chars();
            match c.next() {
                Some(first) => first.to_lowercase().collect::<String>() + c.as_str(),
                None => String::new(),
            }
        }
    }
}

/// The Log Analytics tables we read.
const LOG_ANALYTICS_TABLES: [&str; 7] = [
    "SigninLogs",
    "AADNonInteractiveUserSignInLogs",
    "AADServicePrincipalSignInLogs",
    "AADManagedIdentitySignInLogs",
    "AuditLogs",
    "AzureActivity",
    "AzureDiagnostics",
];

/// The Log Analytics table a row comes from: its `Type` column, or what its columns say.
fn log_analytics_table(r: &RawRecord) -> Option<String> {
    if !r.contains_key("TimeGenerated") {
        // A row of a table we know by its Type column still is one (and gets a clear error).
        return r
            .str_field("Type")
            .filter(|t| LOG_ANALYTICS_TABLES.contains(&t.as_ref()))
            .map(|t| t.into_owned());
    }
    if let Some(t) = r.str_field("Type") {
        return Some(t.into_owned());
    }
    if r.contains_key("OperationNameValue") {
        Some("AzureActivity".into())
    } else if r.contains_key("ResourceProvider")
        && r.contains_key("Category")
        && r.contains_key("OperationName")
    {
        Some("AzureDiagnostics".into())
    } else if r.contains_key("InitiatedBy") || r.contains_key("TargetResources") {
        Some("AuditLogs".into())
    } else if r.contains_key("UserPrincipalName") && r.contains_key("ResultType") {
        Some("SigninLogs".into())
    } else {
        None
    }
}

/// A row of a Microsoft Sentinel / Log Analytics table (`SigninLogs`,
/// `AADNonInteractiveUserSignInLogs`, `AADServicePrincipalSignInLogs`,
/// `AADManagedIdentitySignInLogs`, `AuditLogs`, `AzureActivity`), as a KQL query's JSON results or
/// `az monitor log-analytics query` give it (dynamic columns as JSON strings), in the
/// diagnostic-settings shape the rules read. `None` when the object is not such a row; an error
/// names a table we do not read.
pub fn from_log_analytics(r: &RawRecord) -> Option<Result<(RawRecord, LogKind), String>> {
    let table = log_analytics_table(r)?;
    if !r.contains_key("TimeGenerated") {
        return Some(Err(format!(
            "a Log Analytics row of table {table} without its TimeGenerated column (include it in the query's output)"
        )));
    }
    let obj = r.to_value();
    let Value::Object(row) = &obj else {
        return None;
    };
    let time = row.get("TimeGenerated").cloned();
    let wrapped = match table.as_str() {
        "SigninLogs"
        | "AADNonInteractiveUserSignInLogs"
        | "AADServicePrincipalSignInLogs"
        | "AADManagedIdentitySignInLogs" => {
            let mut graph = serde_json::Map::new();
            for (k, v) in row {
                if matches!(
                    k.as_str(),
                    "TimeGenerated" | "Type" | "TenantId" | "SourceSystem"
                ) || k.starts_with('_')
                {
                    continue;
                }
                let v = match (k.as_str(), dynamic(v)) {
                    ("IsInteractive" | "IsRisky", Value::String(b)) => {
                        Value::Bool(b.eq_ignore_ascii_case("true"))
                    }
                    (_, v) => v,
                };
                graph.insert(graph_name(k), v);
            }
            graph
                .entry("createdDateTime")
                .or_insert_with(|| time.clone().unwrap_or(Value::Null));
            if !graph.contains_key("status") {
                let code = row.get("ResultType").cloned().unwrap_or(Value::from("0"));
                graph.insert("status".into(), json!({"errorCode": code}));
            }
            let types = match table.as_str() {
                "AADNonInteractiveUserSignInLogs" => Some("nonInteractiveUser"),
                "AADServicePrincipalSignInLogs" => Some("servicePrincipal"),
                "AADManagedIdentitySignInLogs" => Some("managedIdentity"),
                _ => None,
            };
            if let Some(t) = types {
                graph.insert("signInEventTypes".into(), json!([t]));
            }
            let graph = RawRecord::from_value(&Value::Object(graph)).ok()?;
            wrap_sign_in(&graph).map(|w| (w, LogKind::EntraSignIn))
        }
        "AuditLogs" => {
            let get = |k: &str| row.get(k).map(dynamic).unwrap_or(Value::Null);
            let audit = json!({
                "id": get("Id"),
                "category": get("Category"),
                "correlationId": get("CorrelationId"),
                "result": get("Result"),
                "resultReason": get("ResultReason"),
                "activityDisplayName": row.get("ActivityDisplayName").or(row.get("OperationName")),
                "activityDateTime": row.get("ActivityDateTime").or(time.as_ref()),
                "loggedByService": get("LoggedByService"),
                "operationType": get("OperationType"),
                "initiatedBy": get("InitiatedBy"),
                "targetResources": get("TargetResources"),
                "additionalDetails": get("AdditionalDetails"),
            });
            let audit = RawRecord::from_value(&strip_nulls(audit)).ok()?;
            wrap_audit(&audit).map(|w| (w, LogKind::EntraAudit))
        }
        "AzureActivity" => {
            let get = |k: &str| row.get(k).map(dynamic).unwrap_or(Value::Null);
            let either = |a: &str, b: &str| {
                let v = get(a);
                if v.is_null() { get(b) } else { v }
            };
            let record = json!({
                "time": time,
                "resourceId": either("_ResourceId", "ResourceId"),
                "operationName": get("OperationNameValue"),
                "category": get("CategoryValue"),
                "resultType": get("ActivityStatusValue"),
                "resultSignature": get("ActivitySubstatusValue"),
                "callerIpAddress": get("CallerIpAddress"),
                "correlationId": get("CorrelationId"),
                "identity": {"authorization": either("Authorization_d", "Authorization"),
                             "claims": either("Claims_d", "Claims")},
                "level": get("Level"),
                "caller": get("Caller"),
                "eventDataId": get("EventDataId"),
                "properties": either("Properties_d", "Properties"),
            });
            let record = RawRecord::from_value(&strip_nulls(record)).ok()?;
            let kind = kind_of(&record);
            Some((record, kind))
        }
        "AzureDiagnostics" => from_azure_diagnostics(row, time).map(|r| {
            let kind = kind_of(&r);
            (r, kind)
        }),
        other => {
            return Some(Err(format!(
                "a Log Analytics row of table {other}, which is not read (SigninLogs, the AAD*SignInLogs tables, AuditLogs, AzureActivity and AzureDiagnostics are)"
            )));
        }
    };
    Some(wrapped.ok_or_else(|| {
        format!("a {table} row that could not be brought to the diagnostic-settings shape")
    }))
}

/// `AzureDiagnostics` columns that are the diagnostic record's own top-level fields.
const DIAGNOSTICS_COLUMNS: [(&str, &str); 11] = [
    ("ResourceId", "resourceId"),
    ("_ResourceId", "resourceId"),
    ("OperationName", "operationName"),
    ("OperationVersion", "operationVersion"),
    ("Category", "category"),
    ("ResultType", "resultType"),
    ("ResultSignature", "resultSignature"),
    ("ResultDescription", "resultDescription"),
    ("DurationMs", "durationMs"),
    ("CallerIPAddress", "callerIpAddress"),
    ("CorrelationId", "correlationId"),
];

/// A row of the legacy `AzureDiagnostics` table (resource logs sent to Log Analytics in "Azure
/// diagnostics" mode: Key Vault's AuditEvent, storage, ...) in the diagnostic-settings shape.
/// The table flattens the record: `properties` fields become columns with a type suffix
/// (`id_s`, `requestUri_s`, `httpStatusCode_d`), the caller's claims `identity_claim_*` columns;
/// both are put back where the record had them, so rules and the decoder read one shape.
fn from_azure_diagnostics(
    row: &serde_json::Map<String, Value>,
    time: Option<Value>,
) -> Option<RawRecord> {
    let mut record = serde_json::Map::new();
    record.insert("time".into(), time.unwrap_or(Value::Null));
    let mut properties = serde_json::Map::new();
    let mut claim = serde_json::Map::new();
    for (k, v) in row {
        if v.is_null() || v.as_str() == Some("") {
            continue;
        }
        if let Some((_, field)) = DIAGNOSTICS_COLUMNS.iter().find(|(c, _)| c == k) {
            record.entry(field.to_string()).or_insert_with(|| v.clone());
            continue;
        }
        if matches!(
            k.as_str(),
            "TimeGenerated"
                | "Type"
                | "TenantId"
                | "SourceSystem"
                | "MG"
                | "ManagementGroupName"
                | "Computer"
                | "RawData"
                | "Resource"
                | "ResourceGroup"
                | "ResourceProvider"
                | "ResourceType"
                | "SubscriptionId"
        ) || k.starts_with('_')
        {
            continue;
        }
        let name = strip_type_suffix(k);
        if let Some(c) = name.strip_prefix("identity_claim_") {
            claim.insert(claim_uri(c), v.clone());
        } else {
            properties.insert(name.to_string(), v.clone());
        }
    }
    if !claim.is_empty() {
        record.insert("identity".into(), json!({ "claim": claim }));
    }
    if !properties.is_empty() {
        record.insert("properties".into(), Value::Object(properties));
    }
    RawRecord::from_value(&Value::Object(record)).ok()
}

/// `requestUri_s` -> `requestUri` (Log Analytics adds `_s`, `_d`, `_g`, `_b`, `_t` by type).
fn strip_type_suffix(column: &str) -> &str {
    match column.rsplit_once('_') {
        Some((name, "s" | "d" | "g" | "b" | "t")) if !name.is_empty() => name,
        _ => column,
    }
}

/// `http_schemas_microsoft_com_identity_claims_objectidentifier` -> the claim's URI; short names
/// (`upn`, `oid`, `appid`) as the token has them.
fn claim_uri(column: &str) -> String {
    match column {
        "http_schemas_microsoft_com_identity_claims_objectidentifier" | "oid" => CLAIM_OID.into(),
        "http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn" | "upn" => CLAIM_UPN.into(),
        "http_schemas_xmlsoap_org_ws_2005_05_identity_claims_name" => CLAIM_NAME.into(),
        "http_schemas_xmlsoap_org_ws_2005_05_identity_claims_emailaddress" => CLAIM_EMAIL.into(),
        other => other.to_string(),
    }
}

/// A Graph `directoryAudit` in the diagnostic-settings shape.
pub fn wrap_audit(r: &RawRecord) -> Option<RawRecord> {
    let obj = r.to_value();
    let initiated_ip = obj
        .pointer("/initiatedBy/user/ipAddress")
        .or_else(|| obj.pointer("/initiatedBy/app/ipAddress"))
        .cloned();
    let wrapped = json!({
        "time": obj.get("activityDateTime"),
        "operationName": obj.get("activityDisplayName"),
        "category": "AuditLogs",
        "resultType": obj.get("result"),
        "resultDescription": obj.get("resultReason"),
        "callerIpAddress": initiated_ip,
        "correlationId": obj.get("correlationId"),
        "properties": obj,
    });
    RawRecord::from_value(&strip_nulls(wrapped)).ok()
}

/// An Activity Log REST API event in the diagnostic-settings shape.
pub fn wrap_rest_activity(r: &RawRecord) -> Option<RawRecord> {
    let obj = r.to_value();
    let value_of = |k: &str| {
        obj.get(k).and_then(|v| {
            v.get("value")
                .cloned()
                .or_else(|| v.as_str().map(|s| Value::String(s.into())))
        })
    };
    let wrapped = json!({
        "time": obj.get("eventTimestamp"),
        "resourceId": obj.get("resourceId"),
        "operationName": value_of("operationName"),
        "category": value_of("category"),
        "resultType": value_of("status"),
        "resultSignature": value_of("subStatus"),
        "callerIpAddress": obj.pointer("/httpRequest/clientIpAddress"),
        "correlationId": obj.get("correlationId"),
        "identity": {"authorization": obj.get("authorization"), "claims": obj.get("claims")},
        "level": obj.get("level"),
        "tenantId": obj.get("tenantId"),
        "caller": obj.get("caller"),
        "eventDataId": obj.get("eventDataId"),
        "properties": obj.get("properties"),
    });
    RawRecord::from_value(&strip_nulls(wrapped)).ok()
}

fn strip_nulls(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, strip_nulls(v)))
                .collect(),
        ),
        other => other,
    }
}

const CLAIM_UPN: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn";
const CLAIM_NAME: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name";
const CLAIM_EMAIL: &str = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress";
const CLAIM_OID: &str = "http://schemas.microsoft.com/identity/claims/objectidentifier";

/// Drops a `:port` suffix from an IPv4 address (storage logs write `1.2.3.4:443`).
fn ip_only(ip: String) -> String {
    match ip.rsplit_once(':') {
        Some((host, port)) if host.contains('.') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_string()
        }
        _ => ip,
    }
}

fn subscription_of(resource_id: &str) -> Option<String> {
    let lower = resource_id.to_ascii_lowercase();
    let at = lower.find("/subscriptions/")? + "/subscriptions/".len();
    let rest = &resource_id[at..];
    Some(rest.split('/').next()?.to_string()).filter(|s| !s.is_empty())
}

/// The record's own id: the sign-in's or audit entry's `id` in the Entra logs, the Activity Log's
/// `eventDataId`. Resource logs (Key Vault `AuditEvent`, storage, ...) have none: their
/// `properties.id` is the object's URI, which every read of it shares, so they get a stable hash
/// of the record (one record, one id; a copy of the same record, the same id).
fn record_id(record: &RawRecord, props: &Value, kind: LogKind) -> String {
    let own = match kind {
        LogKind::EntraSignIn | LogKind::EntraAudit | LogKind::EntraRisk => text(props.get("id")),
        _ => None,
    };
    own.or_else(|| record.str_field("eventDataId").map(|s| s.into_owned()))
        .or_else(|| text(props.get("eventDataId")))
        .unwrap_or_else(|| synthetic_id(record))
}

/// Turns a diagnostic-settings record into an [`Event`].
pub fn normalize(record: RawRecord, kind: LogKind) -> Result<Event, String> {
    let time = match record.scalar("time") {
        Some(Scalar::Str(s)) => {
            parse_time(&s).ok_or_else(|| format!("field time: '{s}' is not a time"))?
        }
        Some(_) => return Err("field time: not a string".into()),
        None => return Err("field time: missing".into()),
    };
    let operation = record
        .str_field("operationName")
        .filter(|s| !s.is_empty())
        .ok_or("field operationName: missing or empty")?
        .into_owned();
    static NULL: Value = Value::Null;
    let props = record.value("properties").unwrap_or(&NULL);
    let identity = record.value("identity").unwrap_or(&NULL);
    let resource_id = record.str_field("resourceId").map(|s| s.into_owned());
    let result_type = record
        .str_field("resultType")
        .map(|s| s.into_owned())
        .or_else(|| match record.scalar("resultType") {
            Some(Scalar::Int(i)) => Some(i.to_string()),
            _ => None,
        });
    let id = record_id(&record, props, kind);
    let mut actor = Actor::default();
    let (service, read_only, outcome);
    match kind {
        LogKind::EntraSignIn => {
            let category = record
                .str_field("category")
                .unwrap_or_default()
                .to_ascii_lowercase();
            actor.kind = Some(if category.starts_with("serviceprincipal") {
                ActorKind::ServicePrincipal
            } else if category.starts_with("managedidentity") {
                ActorKind::ManagedIdentity
            } else {
                ActorKind::User
            });
            actor.name = text(props.get("userPrincipalName"))
                .or_else(|| text(props.get("servicePrincipalName")))
                .or_else(|| text(props.get("appDisplayName")));
            actor.id = text(props.get("userId"))
                .or_else(|| text(props.get("servicePrincipalId")))
                .or_else(|| text(props.get("appId")));
            let requirement = text(props.get("authenticationRequirement")).unwrap_or_default();
            actor.mfa = if requirement.eq_ignore_ascii_case("multiFactorAuthentication") {
                Some(true)
            } else if requirement.eq_ignore_ascii_case("singleFactorAuthentication") {
                Some(false)
            } else {
                None
            };
            service = "entra".to_string();
            read_only = Some(false);
            let code = result_type
                .clone()
                .or_else(|| text(props.pointer("/status/errorCode")))
                .unwrap_or_else(|| "0".into());
            outcome = Outcome {
                success: code == "0",
                error_message: record
                    .str_field("resultDescription")
                    .map(|s| s.into_owned())
                    .or_else(|| text(props.pointer("/status/failureReason"))),
                error_code: (code != "0").then_some(code),
            };
        }
        LogKind::EntraAudit | LogKind::EntraRisk => {
            let user = props.pointer("/initiatedBy/user");
            let app = props.pointer("/initiatedBy/app");
            if let Some(u) =
                user.filter(|u| u.get("userPrincipalName").is_some() || u.get("id").is_some())
            {
                actor.kind = Some(ActorKind::User);
                actor.name =
                    text(u.get("userPrincipalName")).or_else(|| text(u.get("displayName")));
                actor.id = text(u.get("id"));
            } else if let Some(a) = app {
                actor.kind = Some(ActorKind::ServicePrincipal);
                actor.name = text(a.get("displayName"));
                actor.id = text(a.get("servicePrincipalId")).or_else(|| text(a.get("appId")));
            } else if kind == LogKind::EntraRisk {
                actor.kind = Some(ActorKind::User);
                actor.name = text(props.get("userPrincipalName"));
                actor.id = text(props.get("userId"));
            }
            service = "entra".to_string();
            read_only = Some(false);
            let result = text(props.get("result"))
                .or(result_type.clone())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let failed = matches!(result.as_str(), "failure" | "failed" | "timeout");
            outcome = Outcome {
                success: !failed,
                error_code: failed.then(|| result.clone()),
                error_message: text(props.get("resultReason")).or_else(|| {
                    record
                        .str_field("resultDescription")
                        .map(|s| s.into_owned())
                }),
            };
        }
        _ => {
            // The Activity Log writes `claims`; Key Vault and other resource logs `claim`.
            let claims = identity.get("claims").or_else(|| identity.get("claim"));
            actor.name = claims
                .and_then(|c| {
                    text(c.get(CLAIM_UPN))
                        .or_else(|| text(c.get(CLAIM_NAME)))
                        .or_else(|| text(c.get(CLAIM_EMAIL)))
                })
                .or_else(|| record.str_field("caller").map(|s| s.into_owned()));
            actor.id = claims.and_then(|c| text(c.get(CLAIM_OID)).or_else(|| text(c.get("appid"))));
            actor.kind = Some(if claims.is_some_and(|c| c.get(CLAIM_UPN).is_some()) {
                ActorKind::User
            } else {
                ActorKind::ServicePrincipal
            });
            // Storage resource logs: an OAuth caller is `identity.requester` (a SAS or account key
            // names nobody).
            if let (None, Some(req)) = (claims, identity.get("requester")) {
                actor.name = text(req.get("upn"));
                actor.id = text(req.get("objectId")).or_else(|| text(req.get("appId")));
                actor.kind = Some(if actor.name.is_some() {
                    ActorKind::User
                } else {
                    ActorKind::ServicePrincipal
                });
            }
            if actor.name.is_none() && actor.id.is_none() {
                actor.kind = None;
            }
            service = operation.split('/').next().unwrap_or_default().to_string();
            let op = operation.to_ascii_lowercase();
            read_only = if op.ends_with("/read") || op.starts_with("get") || op.starts_with("list")
            {
                Some(true)
            } else if op.ends_with("/write") || op.ends_with("/delete") || op.ends_with("/action") {
                Some(false)
            } else {
                None
            };
            let result = result_type.clone().unwrap_or_default();
            let failed = result.eq_ignore_ascii_case("failure")
                || result.eq_ignore_ascii_case("failed")
                || text(props.get("metricResponseType"))
                    .is_some_and(|m| !m.eq_ignore_ascii_case("success"));
            outcome = Outcome {
                success: !failed,
                error_code: failed.then(|| {
                    record
                        .str_field("resultSignature")
                        .map(|s| s.into_owned())
                        .unwrap_or(result)
                }),
                error_message: record
                    .str_field("resultDescription")
                    .map(|s| s.into_owned()),
            };
        }
    }
    let source_ip = record
        .str_field("callerIpAddress")
        .filter(|s| !s.is_empty())
        .map(|s| ip_only(s.into_owned()))
        .or_else(|| text(props.get("ipAddress")));
    let user_agent = text(props.get("userAgent"))
        .or_else(|| text(props.get("userAgentHeader")))
        .or_else(|| text(props.get("clientAppUsed")));
    let account = resource_id
        .as_deref()
        .and_then(subscription_of)
        .or_else(|| record.str_field("tenantId").map(|s| s.into_owned()))
        .or_else(|| text(props.get("tenantId")));
    // A sign-in's `location` is the country it came from, not a cloud region.
    let region = record
        .str_field("location")
        .filter(|s| !s.is_empty() && kind != LogKind::EntraSignIn)
        .map(|s| s.into_owned());
    let resources = resource_id
        .into_iter()
        .map(|id| Resource { id, kind: None })
        .collect();
    let provider = Provider::Azure;
    Ok(Event {
        id,
        time,
        provider,
        kind,
        account,
        region,
        actor,
        source_ip,
        user_agent,
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

    fn rr(v: Value) -> RawRecord {
        RawRecord::from_value(&v).unwrap()
    }

    #[test]
    fn activity_log_role_assignment() {
        let r = rr(json!({
            "time": "2024-12-17T10:30:00.0000000Z",
            "resourceId": "/subscriptions/1111-2222/resourceGroups/rg/providers/Microsoft.Authorization/roleAssignments/abc",
            "operationName": "MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE",
            "category": "Administrative", "resultType": "Success", "callerIpAddress": "203.0.113.9",
            "identity": {"claims": {CLAIM_UPN: "mallory@contoso.com", CLAIM_OID: "oid-1"}},
            "location": "global", "properties": {"eventDataId": "evt-1"}
        }));
        assert_eq!(kind_of(&r), LogKind::AzureActivity);
        let ev = normalize(r, LogKind::AzureActivity).unwrap();
        assert_eq!(ev.id, "evt-1");
        assert_eq!(ev.account.as_deref(), Some("1111-2222"));
        assert_eq!(ev.actor.name.as_deref(), Some("mallory@contoso.com"));
        assert_eq!(ev.actor.kind, Some(ActorKind::User));
        assert_eq!(ev.action.service, "MICROSOFT.AUTHORIZATION");
        assert_eq!(ev.action.read_only, Some(false));
        assert!(ev.outcome.success);
        assert_eq!(ev.entity(), "oid-1");
    }

    #[test]
    fn sign_in_in_both_shapes() {
        let graph = rr(json!({
            "id": "si-1", "createdDateTime": "2025-01-15T09:30:45Z", "userPrincipalName": "alice@contoso.com",
            "userId": "u-1", "appDisplayName": "Azure Portal", "ipAddress": "198.51.100.4", "clientAppUsed": "Browser",
            "status": {"errorCode": 50126, "failureReason": "Invalid username or password."},
            "authenticationRequirement": "singleFactorAuthentication", "isInteractive": true
        }));
        assert!(is_graph_sign_in(&graph));
        let wrapped = wrap_sign_in(&graph).unwrap();
        assert_eq!(kind_of(&wrapped), LogKind::EntraSignIn);
        assert_eq!(wrapped.str_field("resultType").as_deref(), Some("50126"));
        let ev = normalize(wrapped, LogKind::EntraSignIn).unwrap();
        assert_eq!(ev.id, "si-1");
        assert!(!ev.outcome.success);
        assert_eq!(ev.outcome.error_code.as_deref(), Some("50126"));
        assert_eq!(ev.actor.mfa, Some(false));
        assert_eq!(ev.source_ip.as_deref(), Some("198.51.100.4"));
        assert_eq!(
            ev.region, None,
            "a sign-in's location is a country, not a region"
        );

        let diag = rr(json!({
            "time": "2025-01-15 09:30:45.123", "operationname": "Sign-in activity", "category": "ServicePrincipalSignInLogs",
            "resultType": "0", "calleripaddress": "12.12.12.12", "properties": {"appId": "app-1", "servicePrincipalName": "ci-bot"}
        }));
        let canon = canonicalize(&diag).unwrap();
        assert!(canon.contains_key("operationName") && canon.contains_key("callerIpAddress"));
        assert_eq!(kind_of(&canon), LogKind::EntraSignIn);
        let ev = normalize(canon, LogKind::EntraSignIn).unwrap();
        assert_eq!(ev.actor.kind, Some(ActorKind::ServicePrincipal));
        assert_eq!(ev.actor.name.as_deref(), Some("ci-bot"));
        assert!(ev.outcome.success);
    }

    #[test]
    fn directory_audit_in_graph_shape() {
        let graph = rr(json!({
            "id": "Directory_1", "activityDateTime": "2025-01-15T08:45:30Z", "activityDisplayName": "Add member to role",
            "category": "RoleManagement", "result": "success", "loggedByService": "Core Directory",
            "initiatedBy": {"user": {"id": "u-9", "userPrincipalName": "admin@contoso.com", "ipAddress": "192.0.2.1"}},
            "targetResources": [{"userPrincipalName": "mallory@contoso.com", "modifiedProperties": [{"displayName": "Role.DisplayName", "newValue": "\"Global Administrator\""}]}]
        }));
        assert!(is_graph_audit(&graph));
        let wrapped = wrap_audit(&graph).unwrap();
        assert_eq!(kind_of(&wrapped), LogKind::EntraAudit);
        assert_eq!(
            wrapped.str_field("operationName").as_deref(),
            Some("Add member to role")
        );
        let ev = normalize(wrapped, LogKind::EntraAudit).unwrap();
        assert_eq!(ev.actor.name.as_deref(), Some("admin@contoso.com"));
        assert_eq!(ev.source_ip.as_deref(), Some("192.0.2.1"));
        assert!(ev.outcome.success);
    }

    #[test]
    fn rest_api_activity_event_is_wrapped() {
        let rest = rr(json!({
            "eventTimestamp": "2024-03-01T10:00:00Z", "eventDataId": "e-7", "correlationId": "c-1",
            "operationName": {"value": "Microsoft.Network/networkSecurityGroups/securityRules/write", "localizedValue": "Create or Update Security Rule"},
            "category": {"value": "Administrative"}, "status": {"value": "Succeeded"},
            "resourceId": "/subscriptions/sub-9/resourceGroups/rg/providers/Microsoft.Network/networkSecurityGroups/nsg/securityRules/ssh",
            "caller": "bob@contoso.com", "httpRequest": {"clientIpAddress": "203.0.113.5"}, "claims": {}
        }));
        assert!(is_rest_activity(&rest));
        let wrapped = wrap_rest_activity(&rest).unwrap();
        assert_eq!(
            wrapped.str_field("operationName").as_deref(),
            Some("Microsoft.Network/networkSecurityGroups/securityRules/write")
        );
        let ev = normalize(wrapped, LogKind::AzureActivity).unwrap();
        assert_eq!(ev.id, "e-7");
        assert_eq!(ev.actor.name.as_deref(), Some("bob@contoso.com"));
        assert_eq!(ev.source_ip.as_deref(), Some("203.0.113.5"));
        assert_eq!(ev.account.as_deref(), Some("sub-9"));
    }

    #[test]
    fn activity_on_entras_own_provider_stays_activity_and_value_objects_flatten() {
        let r = rr(
            json!({"time": "2024-12-24T15:45:00Z", "resourceId": "/providers/microsoft.aadiam/diagnosticSettings/to-siem",
            "operationName": "microsoft.aadiam/diagnosticSettings/delete", "category": "Administrative", "resultType": "Success"}),
        );
        assert_eq!(kind_of(&r), LogKind::AzureActivity);
        let r = rr(
            json!({"time": "2024-12-24T15:45:00Z", "resourceId": "/providers/Microsoft.Authorization",
            "operationName": {"value": "Microsoft.Authorization/elevateAccess/action", "localizedValue": "Assigns the caller to User Access Administrator role"},
            "category": "Administrative", "resultType": "Success"}),
        );
        assert!(is_diagnostic(&r));
        let c = canonicalize(&r).unwrap();
        assert_eq!(
            c.str_field("operationName").as_deref(),
            Some("Microsoft.Authorization/elevateAccess/action")
        );
        assert!(normalize(c, LogKind::AzureActivity).is_ok());
    }

    /// A Key Vault `AuditEvent` in the documented shape: the caller is under `identity.claim`
    /// (singular), and `properties.id` is the secret's URI, which two reads share.
    fn key_vault_read(time: &str, ip: &str) -> RawRecord {
        rr(json!({
            "time": time,
            "resourceId": "/SUBSCRIPTIONS/361DA5D4-A47A-4C79-AFDD-0123456789AB/RESOURCEGROUPS/SEC/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/CONTOSO-KV",
            "operationName": "SecretGet", "operationVersion": "7.4", "category": "AuditEvent",
            "resultType": "Success", "resultSignature": "OK", "durationMs": "12", "callerIpAddress": ip,
            "correlationId": "",
            "identity": {"claim": {CLAIM_OID: "d9da5048-2737-4770-bd64-0123456789ab", CLAIM_UPN: "alice@contoso.com", "appid": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"}},
            "properties": {"id": "https://contoso-kv.vault.azure.net/secrets/db-password/0b1c", "clientInfo": "azsdk-python-keyvault-secrets/4.7.0", "httpStatusCode": 200, "requestUri": "https://contoso-kv.vault.azure.net/secrets/db-password/0b1c?api-version=7.4"}
        }))
    }

    #[test]
    fn key_vault_audit_event_has_an_actor_and_an_id_per_record() {
        let first = key_vault_read("2025-02-03T10:00:00.1234567Z", "198.51.100.7");
        assert_eq!(kind_of(&first), LogKind::AzureActivity);
        let a = normalize(first, LogKind::AzureActivity).unwrap();
        assert_eq!(a.actor.name.as_deref(), Some("alice@contoso.com"));
        assert_eq!(
            a.actor.id.as_deref(),
            Some("d9da5048-2737-4770-bd64-0123456789ab")
        );
        assert_eq!(a.actor.kind, Some(ActorKind::User));
        assert_eq!(
            a.account.as_deref(),
            Some("361DA5D4-A47A-4C79-AFDD-0123456789AB")
        );
        assert!(a.id.starts_with("synthetic-"), "{}", a.id);
        assert!(!a.id.contains("vault.azure.net"));
        // The same secret read again: another record, another id; the same record, the same id.
        let b = normalize(
            key_vault_read("2025-02-03T10:00:01.0000000Z", "198.51.100.7"),
            LogKind::AzureActivity,
        )
        .unwrap();
        assert_ne!(a.id, b.id);
        let again = key_vault_read("2025-02-03T10:00:00.1234567Z", "198.51.100.7");
        assert_eq!(normalize(again, LogKind::AzureActivity).unwrap().id, a.id);
        // A service principal's claims (object id and app id, no UPN).
        let sp = rr(json!({
            "time": "2025-02-03T10:00:00Z", "operationName": "SecretList", "category": "AuditEvent",
            "resourceId": "/SUBSCRIPTIONS/S1/RESOURCEGROUPS/SEC/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV",
            "identity": {"claim": {CLAIM_OID: "oid-sp", "appid": "app-1"}}, "properties": {"id": "https://kv.vault.azure.net/secrets"}
        }));
        let ev = normalize(sp, LogKind::AzureActivity).unwrap();
        assert_eq!(ev.actor.id.as_deref(), Some("oid-sp"));
        assert_eq!(ev.actor.kind, Some(ActorKind::ServicePrincipal));
    }

    /// Every Azure category we read gets an id that names its record: two records of one
    /// category never share one.
    #[test]
    fn every_azure_category_has_a_unique_id_per_record() {
        let cases = [
            (
                LogKind::EntraSignIn,
                json!({"time": "T", "operationName": "Sign-in activity", "category": "SignInLogs", "properties": {"id": "ID"}}),
            ),
            (
                LogKind::EntraSignIn,
                json!({"time": "T", "operationName": "Sign-in activity", "category": "ServicePrincipalSignInLogs", "properties": {"id": "ID"}}),
            ),
            (
                LogKind::EntraAudit,
                json!({"time": "T", "operationName": "Add member to role", "category": "AuditLogs", "properties": {"id": "ID", "activityDisplayName": "Add member to role"}}),
            ),
            (
                LogKind::EntraRisk,
                json!({"time": "T", "operationName": "User Risk Detection", "category": "UserRiskEvents", "properties": {"id": "ID"}}),
            ),
            (
                LogKind::AzureActivity,
                json!({"time": "T", "operationName": "MICROSOFT.RESOURCES/DEPLOYMENTS/WRITE", "category": "Administrative", "properties": {"eventDataId": "ID"}}),
            ),
            (
                LogKind::AzureActivity,
                json!({"time": "T", "operationName": "SecretGet", "category": "AuditEvent", "properties": {"id": "https://kv.vault.azure.net/secrets/s"}}),
            ),
            (
                LogKind::AzureActivity,
                json!({"time": "T", "operationName": "GetBlob", "category": "StorageRead", "properties": {"accountName": "acct"}}),
            ),
            (
                LogKind::AzureActivity,
                json!({"time": "T", "operationName": "MICROSOFT.NETWORK/NETWORKSECURITYGROUPS/WRITE", "category": "Administrative"}),
            ),
        ];
        for (kind, template) in cases {
            let mut ids = std::collections::HashSet::new();
            for i in 0..3 {
                let text = template
                    .to_string()
                    .replace("\"T\"", &format!("\"2025-02-03T10:00:0{i}Z\""))
                    .replace("\"ID\"", &format!("\"rec-{i}\""));
                let ev = normalize(rr(serde_json::from_str(&text).unwrap()), kind).unwrap();
                assert!(!ev.id.contains("vault.azure.net"), "{kind:?}: {}", ev.id);
                assert!(
                    ids.insert(ev.id.clone()),
                    "{kind:?} {template}: id {} repeats",
                    ev.id
                );
            }
        }
    }

    #[test]
    fn an_azure_diagnostics_row_of_key_vault_reads_like_the_audit_event() {
        let row = rr(json!({
            "TenantId": "t-1", "TimeGenerated": "2025-02-03T10:00:00.123Z", "Type": "AzureDiagnostics",
            "ResourceId": "/SUBSCRIPTIONS/S-1/RESOURCEGROUPS/SEC/PROVIDERS/MICROSOFT.KEYVAULT/VAULTS/KV-1",
            "Category": "AuditEvent", "ResourceProvider": "MICROSOFT.KEYVAULT", "OperationName": "SecretGet",
            "ResultType": "Success", "ResultSignature": "OK", "DurationMs": 12, "CallerIPAddress": "198.51.100.7",
            "CorrelationId": "", "id_s": "https://kv-1.vault.azure.net/secrets/db-password/0b1c",
            "requestUri_s": "https://kv-1.vault.azure.net/secrets/db-password/0b1c?api-version=7.4",
            "clientInfo_s": "azsdk-python-keyvault-secrets/4.8.0", "httpStatusCode_d": 200,
            "identity_claim_http_schemas_microsoft_com_identity_claims_objectidentifier_g": "oid-ana",
            "identity_claim_http_schemas_xmlsoap_org_ws_2005_05_identity_claims_upn_s": "ana@contoso.com",
            "identity_claim_appid_g": "04b07795-8ddb-461a-bbee-02f9e1bf7b46"
        }));
        let (record, kind) = from_log_analytics(&row).unwrap().unwrap();
        assert_eq!(kind, LogKind::AzureActivity);
        assert_eq!(record.str_field("category").as_deref(), Some("AuditEvent"));
        assert_eq!(
            record.str_field("callerIpAddress").as_deref(),
            Some("198.51.100.7")
        );
        assert_eq!(
            record.value("properties").and_then(|p| p.get("id")),
            Some(&json!(
                "https://kv-1.vault.azure.net/secrets/db-password/0b1c"
            ))
        );
        let ev = normalize(record, kind).unwrap();
        assert_eq!(ev.actor.name.as_deref(), Some("ana@contoso.com"));
        assert_eq!(ev.actor.id.as_deref(), Some("oid-ana"));
        assert_eq!(ev.action.operation, "SecretGet");
        assert_eq!(ev.account.as_deref(), Some("S-1"));
        assert!(ev.id.starts_with("synthetic-"));
        assert_eq!(strip_type_suffix("httpStatusCode_d"), "httpStatusCode");
        // A row the query left TimeGenerated out of: said so, not an unknown format.
        let no_time =
            rr(json!({"Type": "SigninLogs", "UserPrincipalName": "a@b.c", "ResultType": "0"}));
        let err = from_log_analytics(&no_time).unwrap().unwrap_err();
        assert!(
            err.contains("SigninLogs") && err.contains("TimeGenerated"),
            "{err}"
        );
        assert_eq!(strip_type_suffix("is_s_"), "is_s_");
    }

    #[test]
    fn storage_log_oauth_requester_is_the_actor() {
        let r = rr(
            json!({"time": "2024-12-19T16:37:59.255Z", "operationName": "GetBlob", "category": "StorageRead",
            "callerIpAddress": "5.5.5.5:28915",
            "identity": {"type": "OAuth", "requester": {"objectId": "oid-7", "appId": "app-7", "upn": "bob@contoso.com"}},
            "properties": {"metricResponseType": "Success"}}),
        );
        let ev = normalize(r, LogKind::AzureActivity).unwrap();
        assert_eq!(ev.actor.name.as_deref(), Some("bob@contoso.com"));
        assert_eq!(ev.actor.id.as_deref(), Some("oid-7"));
        assert_eq!(ev.actor.kind, Some(ActorKind::User));
        let sas = rr(
            json!({"time": "2024-12-19T16:37:59.255Z", "operationName": "GetBlob", "category": "StorageRead",
            "identity": {"type": "SAS", "tokenHash": "x"}}),
        );
        assert_eq!(
            normalize(sas, LogKind::AzureActivity).unwrap().actor.kind,
            None
        );
    }

    #[test]
    fn storage_log_ip_loses_its_port() {
        let r = rr(
            json!({"time": "2024-12-19T16:37:59.255Z", "operationName": "DeleteBlob", "category": "StorageWrite",
            "callerIpAddress": "5.5.5.5:28915", "properties": {"metricResponseType": "Success", "userAgentHeader": "curl/8"}}),
        );
        let ev = normalize(r, LogKind::AzureActivity).unwrap();
        assert_eq!(ev.source_ip.as_deref(), Some("5.5.5.5"));
        assert_eq!(ev.user_agent.as_deref(), Some("curl/8"));
    }
}
