//! Which provider and log a JSON object comes from, and the one entry point that turns any record
//! into an [`Event`].
//!
//! Detection is by shape, so a directory can mix CloudTrail, Azure and GCP files; a [`Hint`]
//! restricts it to one provider when the caller knows better.

use cloudsentinel_core::{Event, LogKind, Provider, RawRecord};

use crate::{azure, cloudtrail, gcp};

/// What one JSON object turned out to be.
#[derive(Debug)]
pub enum Shape {
    /// One record of a known log.
    Record(RawRecord, LogKind),
    /// A container of records (`{"Records": [...]}`, `{"records": [...]}`, `{"value": [...]}`);
    /// an element that is not an object is an error with its reason.
    Records(Vec<Result<RawRecord, String>>),
    /// A CloudTrail digest file: recognised, carries no events.
    Digest,
    /// A CloudTrail Insights event: recognised, not an API call.
    Insight,
    /// Not something we know, with the reason.
    Unknown(String),
}

/// Restricts format detection to one provider (`--format-hint`).
pub type Hint = Option<Provider>;

fn allows(hint: Hint, p: Provider) -> bool {
    hint.is_none_or(|h| h == p)
}

/// Works out what an object is.
pub fn classify(r: RawRecord, hint: Hint) -> Shape {
    match direct(r, hint) {
        Ok(shape) => shape,
        Err(r) => inside_a_field(r, hint),
    }
}

/// Search and export results that list documents: an Elasticsearch / OpenSearch `_search`
/// response (`hits.hits[]`, each with `_source`), and `aws logs filter-log-events` output
/// (`events[]`, each with the record as a JSON string in `message`). The elements are classified
/// one by one, their record found inside a field.
fn export_list(r: &RawRecord) -> Option<Shape> {
    let list = match r.value("hits") {
        Some(serde_json::Value::Object(h)) => h.get("hits").filter(|v| v.is_array()),
        _ => None,
    };
    if let Some(serde_json::Value::Array(items)) = list {
        return Some(Shape::Records(
            items
                .iter()
                .map(|v| RawRecord::from_value(v).map_err(|e| format!("hits.hits: {e}")))
                .collect(),
        ));
    }
    let events = r.raw_field("events").filter(|t| t.starts_with('['))?;
    // CloudWatch Logs events: objects with a `message` (not, say, a list of event names).
    if !(r.contains_key("searchedLogStreams")
        || r.contains_key("nextToken")
        || events.contains("\"message\""))
    {
        return None;
    }
    Some(match cloudtrail::parse_array(events) {
        Ok(items) => Shape::Records(items),
        Err(e) => Shape::Unknown(format!("field events: {e}")),
    })
}

/// The object itself is a record or a container.
fn direct(r: RawRecord, hint: Hint) -> Result<Shape, RawRecord> {
    let r = if allows(hint, Provider::Gcp) {
        let r = gcp::canonicalize(&r).unwrap_or(r);
        gcp::from_bigquery(&r).unwrap_or(r)
    } else {
        r
    };
    if allows(hint, Provider::Gcp) {
        if gcp::is_audit_entry(&r) {
            return Ok(Shape::Record(r, LogKind::GcpAudit));
        }
        if let Some(inner) = gcp::unwrap_pubsub(&r) {
            return Ok(match inner {
                Ok(inner) if gcp::is_audit_entry(&inner) => Shape::Record(inner, LogKind::GcpAudit),
                Ok(_) => Shape::Unknown(
                    "the Pub/Sub message does not hold a Cloud Audit Logs entry".into(),
                ),
                Err(e) => Shape::Unknown(e),
            });
        }
        if gcp::is_other_entry(&r) {
            return Ok(Shape::Unknown(
                "a Cloud Logging entry without an audit protoPayload (flow, load-balancer or application log) is not an audit log".into(),
            ));
        }
    }
    let r = if allows(hint, Provider::Aws) {
        match cloudtrail::classify_direct(r) {
            Ok(shape) => return Ok(shape),
            Err(r) => r,
        }
    } else {
        r
    };
    if let Some(shape) = export_list(&r) {
        return Ok(shape);
    }
    if allows(hint, Provider::Azure) {
        for key in ["records", "value"] {
            if let Some(list) = r.raw_field(key).filter(|t| t.starts_with('[')) {
                return Ok(match cloudtrail::parse_array(list) {
                    Ok(items) => Shape::Records(items),
                    Err(e) => Shape::Unknown(format!("field {key}: {e}")),
                });
            }
        }
        if let Some(row) = azure::from_log_analytics(&r) {
            return Ok(match row {
                Ok((record, kind)) => Shape::Record(record, kind),
                Err(e) => Shape::Unknown(e),
            });
        }
        let wrapped = if azure::is_rest_activity(&r) {
            Some((azure::wrap_rest_activity(&r), LogKind::AzureActivity))
        } else if azure::is_graph_sign_in(&r) {
            Some((azure::wrap_sign_in(&r), LogKind::EntraSignIn))
        } else if azure::is_graph_audit(&r) {
            Some((azure::wrap_audit(&r), LogKind::EntraAudit))
        } else {
            None
        };
        if let Some((w, kind)) = wrapped {
            return Ok(match w {
                Some(w) => Shape::Record(w, kind),
                None => Shape::Unknown(
                    "an Azure record that could not be brought to the diagnostic-settings shape"
                        .into(),
                ),
            });
        }
        if azure::is_diagnostic(&r) {
            let r = azure::canonicalize(&r).unwrap_or(r);
            let kind = azure::kind_of(&r);
            return Ok(Shape::Record(r, kind));
        }
    }
    if allows(hint, Provider::Aws) && r.contains_key("eventName") {
        // Looks like CloudTrail but lacks what a record needs: let normalization say what.
        return Ok(Shape::Record(r, LogKind::CloudTrail));
    }
    Err(r)
}

/// Exports that put the record in a field: CloudTrail Lake (`eventData`, `eventJson`), SIEM and
/// test-case exports (`event`, `record`, `_source`, `message`, ...), and one level further down:
/// Splunk's export (`result._raw`), Elastic's ECS documents (`event.original`).
fn inside_a_field(r: RawRecord, hint: Hint) -> Shape {
    if let Some(shape) = record_in_fields(&r, hint, 2) {
        return shape;
    }
    let expected = match hint {
        Some(Provider::Aws) => {
            "a CloudTrail record (eventName, eventSource), a Records list or an EventBridge envelope"
        }
        Some(Provider::Azure) => {
            "an Azure Activity Log or Entra ID record (operationName, time, category) or a records/value list"
        }
        Some(Provider::Gcp) => "a Cloud Audit Logs entry (protoPayload) or a Pub/Sub push envelope",
        None => "a CloudTrail, Azure or GCP audit record",
    };
    Shape::Unknown(format!("not {expected}"))
}

/// The first field of `r` (down to `depth` levels of objects) that holds a record, as an object
/// or as a JSON string.
fn record_in_fields(r: &RawRecord, hint: Hint, depth: usize) -> Option<Shape> {
    for key in r.keys() {
        let Some(raw) = r.raw_field(key) else {
            continue;
        };
        let inner = if raw.starts_with('{') {
            RawRecord::parse(raw).ok()
        } else if raw.starts_with("\"{") {
            r.str_field(key)
                .and_then(|s| RawRecord::parse(s.as_ref()).ok())
        } else {
            None
        };
        let Some(inner) = inner else { continue };
        match direct(inner, hint) {
            Ok(Shape::Unknown(_)) => {}
            Ok(shape) => return Some(shape),
            Err(inner) if depth > 1 => {
                if let Some(shape) = record_in_fields(&inner, hint, depth - 1) {
                    return Some(shape);
                }
            }
            Err(_) => {}
        }
    }
    None
}

/// Rewrites top-level keys that an export lower-cased (`logname`, `calleripaddress`) to their
/// canonical spelling in `canonical`. `None` when nothing needs changing, so that the original text
/// is kept.
pub fn canonical_keys(r: &RawRecord, canonical: &[&str]) -> Option<RawRecord> {
    let lowered =
        |k: &str| !canonical.contains(&k) && canonical.iter().any(|c| c.eq_ignore_ascii_case(k));
    if !r.keys().any(lowered) {
        return None;
    }
    let mut map = serde_json::Map::new();
    for k in r.keys() {
        let name = if lowered(k) {
            canonical
                .iter()
                .find(|c| c.eq_ignore_ascii_case(k))
                .copied()
                .unwrap_or(k)
        } else {
            k
        };
        let v = r.value(k).cloned().unwrap_or(serde_json::Value::Null);
        map.entry(name.to_string()).or_insert(v);
    }
    RawRecord::from_value(&serde_json::Value::Object(map)).ok()
}

/// A stable id for a record that carries none of its own (trimmed test events, some exports):
/// FNV-1a over the record's text, the same across runs and platforms.
pub(crate) fn synthetic_id(r: &RawRecord) -> String {
    let h = cloudsentinel_core::hash::fnv1a(r.text().as_bytes());
    format!("synthetic-{h:016x}")
}

/// A JSON string or number as text; `None` for anything else or an empty string.
pub(crate) fn text(v: Option<&serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// Turns a record of a known log into an [`Event`].
pub fn normalize(record: RawRecord, kind: LogKind) -> Result<Event, String> {
    match kind {
        LogKind::CloudTrail => cloudtrail::normalize(record),
        LogKind::GcpAudit => gcp::normalize(record),
        LogKind::AzureActivity
        | LogKind::EntraSignIn
        | LogKind::EntraAudit
        | LogKind::EntraRisk => azure::normalize(record, kind),
    }
}
