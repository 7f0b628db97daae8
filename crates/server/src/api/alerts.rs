//! Alerts: the queue and its query parameters, one alert with its evidence and context, analysts' changes and verdicts.

use super::*;

/// A non-negative integer query parameter, at most `i64::MAX` (what the store can take).
pub(super) fn num(q: &BTreeMap<String, String>, key: &str, default: u64) -> ApiResult<u64> {
    match q.get(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= i64::MAX as u64)
            .ok_or_else(|| {
                bad(format!(
                    "{key}={v:.40}: expected a non-negative integer up to {}",
                    i64::MAX
                ))
            }),
    }
}

pub(super) fn time_param(
    q: &BTreeMap<String, String>,
    key: &str,
) -> ApiResult<Option<DateTime<Utc>>> {
    match q.get(key) {
        None => Ok(None),
        Some(v) => DateTime::parse_from_rfc3339(v)
            .map(|t| Some(t.with_timezone(&Utc)))
            .map_err(|e| {
                bad(format!(
                    "{key}={v}: expected an RFC 3339 time like 2026-11-22T10:00:00Z ({e})"
                ))
            }),
    }
}

pub(super) fn text_param(q: &BTreeMap<String, String>, key: &str) -> ApiResult<Option<String>> {
    match q.get(key) {
        Some(v) if v.len() > 512 => Err(bad(format!("{key}: longer than 512 characters"))),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(v.clone())),
        None => Ok(None),
    }
}

pub(super) fn levels(v: &str, key: &str) -> ApiResult<Vec<Level>> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.trim().parse::<Level>().map_err(|_| {
                bad(format!(
                    "{key}={s}: expected informational, low, medium, high or critical"
                ))
            })
        })
        .collect()
}

pub(super) fn statuses(v: &str) -> ApiResult<Vec<AlertStatus>> {
    v.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| {
            AlertStatus::parse(s.trim()).ok_or_else(|| {
                bad(format!(
                    "status={s}: expected open, acknowledged, investigating, resolved or closed"
                ))
            })
        })
        .collect()
}

pub(crate) const KNOWN_ALERT_PARAMS: &[&str] = &[
    "kind",
    "level",
    "min_level",
    "status",
    "rule",
    "technique",
    "principal",
    "account",
    "assignee",
    "unassigned",
    "incident",
    "since",
    "until",
    "q",
    "sort",
    "order",
    "limit",
    "offset",
    "page",
    "page_size",
];

pub(crate) fn alert_query(q: &BTreeMap<String, String>) -> ApiResult<AlertQuery> {
    if let Some(k) = q.keys().find(|k| !KNOWN_ALERT_PARAMS.contains(&k.as_str())) {
        return Err(bad(format!(
            "unknown query parameter {k}; known: {}",
            KNOWN_ALERT_PARAMS.join(", ")
        )));
    }
    let limit = num(q, "limit", num(q, "page_size", 50)?)?.clamp(1, 500) as u32;
    let offset = match q.get("page") {
        Some(_) => (num(q, "page", 1)?.max(1) - 1)
            .saturating_mul(limit as u64)
            .min(i64::MAX as u64),
        None => num(q, "offset", 0)?,
    };
    let min_level = match q.get("min_level") {
        Some(v) => Some(
            levels(v, "min_level")?
                .into_iter()
                .next()
                .ok_or_else(|| bad("min_level is empty"))?,
        ),
        // Informational signals (change records, findings routine for their actor) stay out
        // of the queue unless asked for by level, or listed as an incident's context.
        None if q.contains_key("level") || q.contains_key("incident") => None,
        None => Some(Level::Low),
    };
    Ok(AlertQuery {
        min_level,
        levels: q
            .get("level")
            .map(|v| levels(v, "level"))
            .transpose()?
            .unwrap_or_default(),
        statuses: q
            .get("status")
            .map(|v| statuses(v))
            .transpose()?
            .unwrap_or_default(),
        rule_id: text_param(q, "rule")?,
        kind: match q.get("kind").map(String::as_str) {
            None | Some("") => None,
            Some(k @ ("rule" | "correlation" | "anomaly")) => Some(k.to_string()),
            Some(k) => {
                return Err(bad(format!(
                    "kind={k}: expected rule, correlation or anomaly"
                )));
            }
        },
        technique: text_param(q, "technique")?,
        principal: text_param(q, "principal")?,
        account: text_param(q, "account")?,
        assignee: match (
            text_param(q, "assignee")?,
            q.get("unassigned").map(String::as_str),
        ) {
            (Some(_), Some("true" | "1")) => {
                return Err(bad("assignee and unassigned=true exclude each other"));
            }
            (_, Some("true" | "1")) => Some(None),
            (user, None | Some("false" | "0" | "")) => user.map(Some),
            (_, Some(v)) => return Err(bad(format!("unassigned={v}: expected true or false"))),
        },
        incident_id: q
            .get("incident")
            .map(|_| num(q, "incident", 0))
            .transpose()?
            .map(|v| v as i64),
        since: time_param(q, "since")?,
        until: time_param(q, "until")?,
        updated_since: None,
        text: text_param(q, "q")?,
        sort: match q.get("sort").map(String::as_str) {
            None | Some("last_seen") => AlertSort::LastSeen,
            Some("first_seen") => AlertSort::FirstSeen,
            Some("level") => AlertSort::Level,
            Some("count") => AlertSort::Count,
            Some("id") => AlertSort::Id,
            Some("tp_score") => AlertSort::TpScore,
            Some("attention") => AlertSort::Attention,
            Some(o) => {
                return Err(bad(format!(
                    "sort={o}: expected last_seen, first_seen, level, count, id, tp_score or attention"
                )));
            }
        },
        descending: match q.get("order").map(String::as_str) {
            None | Some("desc") => true,
            Some("asc") => false,
            Some(o) => return Err(bad(format!("order={o}: expected asc or desc"))),
        },
        limit,
        offset,
    })
}

pub async fn list_alerts(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<NamedPage<AlertRecord>>> {
    let query = alert_query(&q)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(&state, move |s| s.alerts(&query)).await?;
    let ids: Vec<String> = page.items.iter().map(|a| a.entity.clone()).collect();
    let names = blocking(&state, move |s| s.actor_names(&object_ids(ids))).await?;
    Ok(Json(NamedPage {
        total: page.total,
        limit,
        offset,
        items: page.items,
        names: names.into_iter().collect(),
    }))
}

/// Events shown as evidence on an alert page at most.
pub(super) const EVIDENCE_SHOWN: usize = 25;

/// Everything about one alert: what `GET /api/v1/alerts/{id}` answers and its page shows.
pub(crate) struct AlertDetail {
    pub alert: AlertRecord,
    /// The rule that raised it, while it is loaded.
    pub rule: Option<cloudsentinel_detect::RuleMeta>,
    /// The first [`EVIDENCE_SHOWN`] evidence events, with their original records.
    pub evidence: Vec<EventRow>,
    /// The principal's events from an hour before to an hour after.
    pub around_from: DateTime<Utc>,
    pub around_to: DateTime<Utc>,
    pub around: cloudsentinel_store::Page<EventRow>,
    pub comments: Vec<CommentRecord>,
    pub feedback: Vec<FeedbackRecord>,
    pub incident: Option<IncidentRecord>,
    /// The principal's other alerts and informational signals (change records, routine
    /// findings) in the same window: its timeline of findings.
    pub signals: Vec<AlertRecord>,
}

/// Other findings about the principal shown beside an alert at most.
pub(super) const SIGNALS_SHOWN: u32 = 50;

pub(crate) async fn alert_detail(state: &AppState, id: i64) -> ApiResult<AlertDetail> {
    let alert = blocking(state, move |s| s.alert(id))
        .await?
        .ok_or_else(|| not_found(format!("alert {id}")))?;
    let ids: Vec<String> = alert
        .event_ids
        .iter()
        .take(EVIDENCE_SHOWN)
        .cloned()
        .collect();
    let within = (alert.first_seen, alert.last_seen);
    let evidence = blocking(state, move |s| s.events_by_id(&ids, within, true)).await?;
    let (from, to) = (
        alert.first_seen - Duration::hours(1),
        alert.last_seen + Duration::hours(1),
    );
    let principal = alert.entity.clone();
    let around = blocking(state, move |s| {
        s.events(&EventQuery {
            since: Some(from),
            until: Some(to),
            principal: Some(principal),
            limit: 100,
            ..Default::default()
        })
    })
    .await?;
    let principal = alert.entity.clone();
    let signals = blocking(state, move |s| {
        s.alerts(&AlertQuery {
            principal: Some(principal),
            since: Some(from),
            until: Some(to),
            sort: AlertSort::FirstSeen,
            descending: false,
            limit: SIGNALS_SHOWN + 1,
            ..Default::default()
        })
    })
    .await?
    .items
    .into_iter()
    .filter(|a| a.id != id)
    .take(SIGNALS_SHOWN as usize)
    .collect();
    let comments = blocking(state, move |s| s.comments(id)).await?;
    let feedback = blocking(state, move |s| s.feedback(Some(id))).await?;
    let incident = match alert.incident_id {
        Some(iid) => blocking(state, move |s| s.incident(iid)).await?,
        None => None,
    };
    Ok(AlertDetail {
        rule: state.rules.rule(&alert.rule_id).cloned(),
        alert,
        evidence,
        around_from: from,
        around_to: to,
        around,
        comments,
        feedback,
        incident,
        signals,
    })
}

/// One alert with its evidence, explanation, remedy and the activity around it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertAnswer {
    pub alert: AlertRecord,
    /// Why it fired (the alert's `explanation`).
    pub explanation: String,
    /// What to do about it, from the rule.
    pub remedy: Option<String>,
    /// The rule that raised it, while it is loaded.
    pub rule: Option<AlertRule>,
    /// The first 25 evidence events, with their original records.
    pub evidence: Vec<EventRow>,
    /// The principal's events from an hour before the alert to an hour after.
    pub surrounding_activity: SurroundingActivity,
    pub comments: Vec<CommentRecord>,
    /// Analysts' verdicts.
    pub feedback: Vec<FeedbackRecord>,
    /// The incident the alert is part of.
    pub incident: Option<IncidentRecord>,
    /// The principal's other alerts and informational signals in the same window, oldest
    /// first.
    pub signals_around: Vec<AlertRecord>,
}

/// The rule behind an alert, as an analyst reads it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertRule {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    pub remedy: Option<String>,
    /// When the rule matches something harmless.
    pub false_positives: Vec<String>,
    /// Where the rule came from: a file path, or `builtin:<path>`.
    pub source: String,
    pub level: Level,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
}

impl From<&cloudsentinel_detect::RuleMeta> for AlertRule {
    fn from(m: &cloudsentinel_detect::RuleMeta) -> AlertRule {
        AlertRule {
            id: m.id.clone(),
            title: m.title.clone(),
            description: m.description.clone(),
            remedy: m.remedy.clone(),
            false_positives: m.false_positives.clone(),
            source: m.source.clone(),
            level: m.level,
            techniques: m.techniques.clone(),
            tactics: m.tactics.clone(),
        }
    }
}

/// A principal's events in a window around an alert.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SurroundingActivity {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// How many events the window holds.
    pub total: u64,
    /// The first 100 of them (without their original records).
    pub events: Vec<EventRow>,
}

pub async fn get_alert(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AlertAnswer>> {
    let d = alert_detail(&state, id).await?;
    Ok(Json(AlertAnswer {
        explanation: d.alert.explanation.clone(),
        remedy: d.rule.as_ref().and_then(|m| m.remedy.clone()),
        rule: d.rule.as_ref().map(AlertRule::from),
        alert: d.alert,
        evidence: d.evidence,
        surrounding_activity: SurroundingActivity {
            from: d.around_from,
            to: d.around_to,
            total: d.around.total,
            events: d.around.items,
        },
        comments: d.comments,
        feedback: d.feedback,
        incident: d.incident,
        signals_around: d.signals,
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct AlertPatch {
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assignee: Option<Option<String>>,
    comment: Option<String>,
}

/// Tells `"assignee": null` (unassign) from no `assignee` key (leave as is).
pub(super) fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// A status an analyst sets on an alert or an incident.
pub(super) fn parse_status(s: Option<&str>) -> ApiResult<Option<AlertStatus>> {
    s.map(|s| {
        AlertStatus::parse(s).ok_or_else(|| {
            bad(format!(
                "status={s}: expected open, acknowledged, investigating, resolved or closed"
            ))
        })
    })
    .transpose()
}

pub(super) fn check_assignee(a: &Option<Option<String>>) -> ApiResult<()> {
    match a {
        Some(Some(a)) if a.is_empty() || a.len() > 64 => {
            Err(bad("assignee: 1 to 64 characters, or null to unassign"))
        }
        _ => Ok(()),
    }
}

pub(super) fn check_comment(c: Option<&str>) -> ApiResult<()> {
    match c {
        Some(c) if c.trim().is_empty() || c.len() > 10_000 => {
            Err(bad("comment: 1 to 10000 characters"))
        }
        _ => Ok(()),
    }
}

/// The messages a status change makes for the notification sinks (none when the status stays).
pub(super) fn status_messages(
    state: &AppState,
    before: &AlertRecord,
    status: Option<AlertStatus>,
) -> Vec<cloudsentinel_store::NewDelivery> {
    match status {
        Some(s) if s != before.status => {
            let mut after = before.clone();
            after.status = s;
            after.updated = Utc::now();
            state.notifier.route_status(&after)
        }
        _ => Vec::new(),
    }
}

pub async fn update_alert(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<AlertRecord>> {
    let b: AlertPatch = json_body(&body)?;
    let status = parse_status(b.status.as_deref())?;
    check_assignee(&b.assignee)?;
    check_comment(b.comment.as_deref())?;
    if status.is_none() && b.assignee.is_none() && b.comment.is_none() {
        return Err(bad("nothing to change: send status, assignee or comment"));
    }
    let before = blocking(&state, move |s| s.alert(id))
        .await?
        .ok_or_else(|| not_found(format!("alert {id}")))?;
    let assignee = b.assignee.clone();
    let deliveries = status_messages(&state, &before, status);
    let alert = blocking(&state, move |s| {
        s.update_alert(id, status, assignee, &deliveries)
    })
    .await?
    .ok_or_else(|| not_found(format!("alert {id}")))?;
    state.notifier.wake();
    if let Some(c) = b.comment.clone() {
        let author = caller.name.clone();
        blocking(&state, move |s| s.add_comment(id, &author, &c)).await?;
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "alert.updated",
        format!("alert:{id}"),
        json!({"status": status.map(|s| s.as_str()), "previous_status": before.status.as_str(),
               "assignee": b.assignee, "comment": b.comment}),
    )
    .await?;
    let _ = state.live.send(alert.clone());
    Ok(Json(alert))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct FeedbackBody {
    verdict: String,
    #[serde(default)]
    reason: String,
}

pub async fn alert_feedback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<FeedbackRecord>)> {
    let b: FeedbackBody = json_body(&body)?;
    let verdict = Verdict::parse(&b.verdict).ok_or_else(|| {
        bad(format!(
            "verdict={}: expected true_positive, false_positive or benign",
            b.verdict
        ))
    })?;
    if b.reason.len() > 2000 {
        return Err(bad("reason: at most 2000 characters"));
    }
    let author = caller.name.clone();
    let reason = b.reason.clone();
    let fb = blocking(&state, move |s| {
        s.add_feedback(id, verdict, &reason, &author)
    })
    .await?
    .ok_or_else(|| not_found(format!("alert {id}")))?;
    // A false positive or benign verdict takes the alert out of the queue; a true positive moves
    // it on to investigating (from open, acknowledged, or closed by an earlier verdict; a
    // resolved one stays resolved).
    let to = |before: AlertStatus| match verdict {
        Verdict::FalsePositive | Verdict::Benign => Some(AlertStatus::Closed),
        Verdict::TruePositive => matches!(
            before,
            AlertStatus::Open | AlertStatus::Acknowledged | AlertStatus::Closed
        )
        .then_some(AlertStatus::Investigating),
    };
    if let Some(before) = blocking(&state, move |s| s.alert(id)).await?
        && let Some(status) = to(before.status)
    {
        let mut before = before;
        before.verdict = Some(verdict);
        let deliveries = status_messages(&state, &before, Some(status));
        blocking(&state, move |s| {
            s.update_alert(id, Some(status), None, &deliveries)
        })
        .await?;
        state.notifier.wake();
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "alert.feedback",
        format!("alert:{id}"),
        json!({"verdict": verdict.as_str(), "reason": b.reason}),
    )
    .await?;
    if let Some(a) = blocking(&state, move |s| s.alert(id)).await? {
        let _ = state.live.send(a);
    }
    Ok((StatusCode::CREATED, Json(fb)))
}
