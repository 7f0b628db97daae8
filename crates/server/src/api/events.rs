//! Event search and the rule list (enable, disable).

use super::*;

pub(crate) const KNOWN_EVENT_PARAMS: &[&str] = &[
    "since",
    "until",
    "principal",
    "account",
    "source_ip",
    "service",
    "operation",
    "outcome",
    "q",
    "raw",
    "limit",
    "offset",
];

/// An event search from query parameters (the API's and the dashboard's).
pub(crate) fn event_query(q: &BTreeMap<String, String>) -> ApiResult<EventQuery> {
    if let Some(k) = q.keys().find(|k| !KNOWN_EVENT_PARAMS.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown query parameter {k}; known: {}",
            KNOWN_EVENT_PARAMS.join(", ")
        )));
    }
    Ok(EventQuery {
        since: time_param(q, "since")?,
        until: time_param(q, "until")?,
        principal: text_param(q, "principal")?,
        account: text_param(q, "account")?,
        source_ip: text_param(q, "source_ip")?,
        service: text_param(q, "service")?,
        operation: text_param(q, "operation")?,
        success: match q.get("outcome").map(String::as_str) {
            None | Some("") => None,
            Some("success") => Some(true),
            Some("failure") => Some(false),
            Some(o) => return Err(bad(format!("outcome={o}: expected success or failure"))),
        },
        text: text_param(q, "q")?,
        with_raw: q.get("raw").is_some_and(|v| v == "true" || v == "1"),
        limit: num(q, "limit", 100)?.clamp(1, 1000) as u32,
        offset: num(q, "offset", 0)?,
    })
}

pub async fn search_events(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    let query = event_query(&q)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(&state, move |s| s.events(&query)).await?;
    Ok(Json(
        json!({"total": page.total, "limit": limit, "offset": offset, "items": clipped(page.items)}),
    ))
}

/// Events for a list: text fields past [`SHOWN_FIELD_CHARS`] are cut, and each event that was
/// cut names the fields in `truncated` (the original record, `raw=true`, has the full values).
pub(super) fn clipped(events: Vec<EventRow>) -> Vec<Value> {
    events
        .into_iter()
        .map(|mut e| {
            let cut = e.clip_fields(SHOWN_FIELD_CHARS);
            let mut v = serde_json::to_value(&e).unwrap_or(Value::Null);
            if !cut.is_empty() {
                v["truncated"] = json!(cut);
            }
            v
        })
        .collect()
}

pub async fn list_rules(State(state): State<AppState>) -> Json<Value> {
    let disabled = state
        .suppressions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .disabled_rules
        .clone();
    let rules: Vec<Value> = state
        .rules
        .rules()
        .map(|m| {
            json!({"id": m.id, "title": m.title, "level": m.level, "kind": format!("{:?}", m.kind).to_lowercase(),
                   "techniques": m.techniques, "tactics": m.tactics, "source": m.source,
                   "product": m.product, "service": m.service, "description": m.description,
                   "enabled": !disabled.contains(&m.id)})
        })
        .collect();
    Json(json!({"total": rules.len(), "items": rules}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RulePatch {
    enabled: bool,
    #[serde(default)]
    reason: String,
}

/// Turns a rule on or off: a disabled rule's matches raise nothing until it is enabled again.
pub async fn update_rule(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: RulePatch = json_body(&body)?;
    if b.reason.len() > 2000 {
        return Err(bad("reason: at most 2000 characters"));
    }
    if state.rules.rule(&id).is_none() && id != cloudsentinel_learn::anomaly::RULE_ID {
        return Err(not_found(format!("rule {id}")));
    }
    let list = {
        let mut tuning = state
            .suppressions
            .write()
            .unwrap_or_else(|e| e.into_inner());
        if b.enabled {
            tuning.disabled_rules.remove(&id);
        } else {
            tuning.disabled_rules.insert(id.clone());
        }
        serde_json::to_vec(&tuning.disabled_rules).map_err(|e| ApiError::Internal(e.into()))?
    };
    blocking(&state, move |s| {
        s.put_state(pipeline::DISABLED_RULES, &list)
    })
    .await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        if b.enabled {
            "rule.enabled"
        } else {
            "rule.disabled"
        },
        format!("rule:{id}"),
        json!({"reason": b.reason}),
    )
    .await?;
    Ok(Json(json!({"id": id, "enabled": b.enabled})))
}
