//! Incidents: the list, one incident with its story, analysts' changes and comments.

use cloudsentinel_store::IncidentComment;

use super::*;

pub async fn list_incidents(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<NamedPage<IncidentRecord>>> {
    let st = q
        .get("status")
        .map(|v| statuses(v))
        .transpose()?
        .unwrap_or_default();
    let limit = num(&q, "limit", 50)?.clamp(1, 500) as u32;
    let offset = num(&q, "offset", 0)?;
    let page = blocking(&state, move |s| s.incidents(&st, limit, offset)).await?;
    let ids: Vec<String> = page.items.iter().map(|i| i.entity.clone()).collect();
    let names = blocking(&state, move |s| s.actor_names(&object_ids(ids))).await?;
    Ok(Json(NamedPage {
        total: page.total,
        limit,
        offset,
        items: page.items,
        names: names.into_iter().collect(),
    }))
}

/// The entities that are object ids (Entra ID users and service principals are known by one):
/// the ones worth a name beside them.
pub(crate) fn object_ids(entities: Vec<String>) -> Vec<String> {
    let mut v: Vec<String> = entities
        .into_iter()
        .filter(|e| cloudsentinel_alert::is_object_id(e))
        .collect();
    v.sort();
    v.dedup();
    v
}

/// One incident: its alerts on a timeline, and the story they tell in words.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IncidentAnswer {
    pub incident: IncidentRecord,
    /// Object id → the principal's name, for the principals that are known by one.
    pub names: BTreeMap<String, String>,
    pub narrative: IncidentNarrative,
    /// Analysts' notes.
    pub comments: Vec<IncidentComment>,
    /// The alerts in time order, in short.
    pub timeline: Vec<TimelineEntry>,
    /// The alerts in time order (at most 1000).
    pub alerts: Vec<AlertRecord>,
}

/// The incident told in words: its sentences, and all of them as one text.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IncidentNarrative {
    #[serde(flatten)]
    pub narrative: crate::narrative::Narrative,
    /// Summary, steps and notes, one per line.
    pub text: String,
}

/// An alert on an incident's timeline.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TimelineEntry {
    /// When the alert was first seen.
    pub time: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub alert_id: i64,
    pub title: String,
    pub level: Level,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
    /// Matching events.
    pub count: u64,
}

impl From<&AlertRecord> for TimelineEntry {
    fn from(a: &AlertRecord) -> TimelineEntry {
        TimelineEntry {
            time: a.first_seen,
            last_seen: a.last_seen,
            alert_id: a.id,
            title: a.title.clone(),
            level: a.level,
            tactics: a.tactics.clone(),
            techniques: a.techniques.clone(),
            count: a.count,
        }
    }
}

pub async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<IncidentAnswer>> {
    let incident: IncidentRecord = blocking(&state, move |s| s.incident(id))
        .await?
        .ok_or_else(|| not_found(format!("incident {id}")))?;
    let alerts = blocking(&state, move |s| {
        s.alerts(&AlertQuery {
            incident_id: Some(id),
            sort: AlertSort::FirstSeen,
            descending: false,
            limit: 1000,
            ..Default::default()
        })
    })
    .await?;
    let timeline = alerts.items.iter().map(TimelineEntry::from).collect();
    let entities = alerts
        .items
        .iter()
        .map(|a| a.entity.clone())
        .chain([incident.entity.clone()])
        .collect();
    let names = blocking(&state, move |s| s.actor_names(&object_ids(entities))).await?;
    let narrative = crate::narrative::narrate(&incident, &alerts.items, &names);
    let comments = blocking(&state, move |s| s.incident_comments(id)).await?;
    Ok(Json(IncidentAnswer {
        incident,
        names: names.into_iter().collect(),
        narrative: IncidentNarrative {
            text: narrative.text(),
            narrative,
        },
        comments,
        timeline,
        alerts: alerts.items,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct IncidentPatch {
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assignee: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    severity: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    close_reason: Option<Option<String>>,
    comment: Option<String>,
}

/// Changes an incident: status, assignee, severity, close reason, and a comment. Resolving or
/// closing it needs a close reason (given now or before): the next analyst must know why.
pub async fn update_incident(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<IncidentRecord>> {
    let b: IncidentPatch = json_body(&body)?;
    let status = parse_status(b.status.as_deref())?;
    check_assignee(&b.assignee)?;
    let severity = match &b.severity {
        None => None,
        Some(None) => Some(None),
        Some(Some(l)) => Some(Some(l.parse::<Level>().map_err(|_| {
            bad(format!(
                "severity={l}: expected informational, low, medium, high or critical, or null"
            ))
        })?)),
    };
    if let Some(Some(r)) = &b.close_reason
        && (r.trim().is_empty() || r.len() > 2000)
    {
        return Err(bad("close_reason: 1 to 2000 characters, or null"));
    }
    check_comment(b.comment.as_deref())?;
    if status.is_none()
        && b.assignee.is_none()
        && severity.is_none()
        && b.close_reason.is_none()
        && b.comment.is_none()
    {
        return Err(bad(
            "nothing to change: send status, assignee, severity, close_reason or comment",
        ));
    }
    let before = blocking(&state, move |s| s.incident(id))
        .await?
        .ok_or_else(|| not_found(format!("incident {id}")))?;
    let closing = matches!(status, Some(AlertStatus::Resolved | AlertStatus::Closed));
    let reason_after = match &b.close_reason {
        Some(r) => r.clone(),
        None => before.close_reason.clone(),
    };
    if closing && reason_after.is_none() {
        return Err(bad(
            "close_reason: required to resolve or close an incident (why: false positive, contained, duplicate, ...)",
        ));
    }
    let deliveries = match status {
        Some(st) if st != before.status && state.notifier.has_incident_sinks() => {
            let mut after = before.clone();
            after.status = st;
            if let Some(r) = &b.close_reason {
                after.close_reason = r.clone();
            }
            if let Some(sev) = severity {
                after.severity = sev;
            }
            let latest = blocking(&state, move |s| {
                s.alerts(&cloudsentinel_store::AlertQuery {
                    incident_id: Some(id),
                    sort: cloudsentinel_store::AlertSort::LastSeen,
                    descending: true,
                    limit: 1,
                    ..Default::default()
                })
            })
            .await?
            .items
            .into_iter()
            .next();
            match latest {
                Some(a) => state.notifier.route_incident_status(&after, &a),
                None => Vec::new(),
            }
        }
        _ => Vec::new(),
    };
    let update = IncidentUpdate {
        status,
        assignee: b.assignee.clone(),
        severity,
        close_reason: b.close_reason.clone(),
        deliveries,
    };
    let inc = blocking(&state, move |s| s.update_incident(id, &update))
        .await?
        .ok_or_else(|| not_found(format!("incident {id}")))?;
    state.notifier.wake();
    if let Some(c) = b.comment.clone() {
        let author = caller.name.clone();
        blocking(&state, move |s| s.add_incident_comment(id, &author, &c)).await?;
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "incident.updated",
        format!("incident:{id}"),
        json!({"status": status.map(|s| s.as_str()), "previous_status": before.status.as_str(),
               "assignee": b.assignee, "severity": b.severity, "close_reason": b.close_reason,
               "comment": b.comment}),
    )
    .await?;
    Ok(Json(inc))
}
