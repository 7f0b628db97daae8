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
        terms: match text_param(q, "q")? {
            Some(text) => crate::search::parse(&text).map_err(bad)?,
            None => Vec::new(),
        },
        with_raw: q.get("raw").is_some_and(|v| v == "true" || v == "1"),
        limit: num(q, "limit", 100)?.clamp(1, 1000) as u32,
        offset: num(q, "offset", 0)?,
        ..EventQuery::default()
    })
}

pub async fn search_events(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Page<ListedEvent>>> {
    let query = event_query(&q)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(&state, move |s| s.events(&query)).await?;
    Ok(Json(Page {
        total: page.total,
        limit,
        offset,
        items: clipped(page.items),
    }))
}

/// An event in a list: its columns, text fields cut at [`SHOWN_FIELD_CHARS`].
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListedEvent {
    #[serde(flatten)]
    pub event: EventRow,
    /// The fields that were cut (the original record, `raw=true`, has them whole).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub truncated: Vec<String>,
}

/// Events for a list: text fields past [`SHOWN_FIELD_CHARS`] are cut, and each event that was
/// cut names the fields in `truncated` (the original record, `raw=true`, has the full values).
pub(super) fn clipped(events: Vec<EventRow>) -> Vec<ListedEvent> {
    events
        .into_iter()
        .map(|mut event| {
            let truncated = event
                .clip_fields(SHOWN_FIELD_CHARS)
                .into_iter()
                .map(str::to_string)
                .collect();
            ListedEvent { event, truncated }
        })
        .collect()
}

/// The loaded detection rules.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RuleList {
    pub total: usize,
    pub items: Vec<ListedRule>,
}

/// A loaded rule, and whether it is enabled.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ListedRule {
    /// The rule's `id`, or `path#title` when it has none.
    pub id: String,
    pub title: String,
    pub level: Level,
    pub kind: cloudsentinel_detect::RuleKind,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    /// Where the rule came from: a file path, or `builtin:<path>`.
    pub source: String,
    /// Logsource `product`, when set.
    pub product: Option<String>,
    /// Logsource `service`, when set.
    pub service: Option<String>,
    pub description: Option<String>,
    /// False when an admin disabled it: its matches raise no alert.
    pub enabled: bool,
}

pub async fn list_rules(State(state): State<AppState>) -> Json<RuleList> {
    let disabled = state
        .suppressions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .disabled_rules
        .clone();
    let items: Vec<ListedRule> = state
        .rules
        .rules()
        .map(|m| ListedRule {
            id: m.id.clone(),
            title: m.title.clone(),
            level: m.level,
            kind: m.kind,
            techniques: m.techniques.clone(),
            tactics: m.tactics.clone(),
            source: m.source.clone(),
            product: m.product.clone(),
            service: m.service.clone(),
            description: m.description.clone(),
            enabled: !disabled.contains(&m.id),
        })
        .collect();
    Json(RuleList {
        total: items.len(),
        items,
    })
}

/// A rule's state after `PATCH /api/v1/rules/{id}`.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RuleState {
    pub id: String,
    pub enabled: bool,
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
) -> ApiResult<Json<RuleState>> {
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
    Ok(Json(RuleState {
        id,
        enabled: b.enabled,
    }))
}
