//! Notification sinks, their deliveries and test messages.

use cloudsentinel_store::DeliveryRecord;

use super::*;

/// A notification sink as configured (no secrets), with how its deliveries stand.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SinkStatus {
    pub name: String,
    /// `webhook`, `slack`, `email`, `pagerduty`, `servicenow` or `ocsf`.
    pub kind: &'static str,
    /// Where it sends, without credentials.
    pub destination: String,
    /// Alerts below this level are not sent.
    pub min_level: Level,
    /// Only these rule ids (all when empty).
    pub rules: Vec<String>,
    /// Only alerts with one of these ATT&CK techniques (all when empty).
    pub techniques: Vec<String>,
    /// Only alerts about these accounts (all when empty).
    pub accounts: Vec<String>,
    /// Only these kinds of alert (all when empty).
    pub kinds: Vec<String>,
    /// An alert that keeps counting is sent again at most this often (seconds).
    pub update_every_secs: i64,
    /// Tries before a delivery is given up (dead).
    pub max_attempts: u32,
    /// The last try failed.
    pub failing: bool,
    pub pending: u64,
    pub sent: u64,
    pub dead: u64,
    /// Deliveries that needed more than one try.
    pub retried: u64,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
    pub last_error: Option<String>,
}

/// The notification sinks.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SinkList {
    pub sinks: Vec<SinkStatus>,
}

/// The sinks as configured (no secrets) with how their deliveries stand.
pub(crate) async fn sink_status(state: &AppState) -> ApiResult<Vec<SinkStatus>> {
    let summary = blocking(state, |s| s.delivery_summary()).await?;
    let n = &state.notifier;
    Ok(n.sinks
        .iter()
        .zip(&n.metrics)
        .map(|(s, m)| {
            let st = summary
                .iter()
                .find(|x| x.sink == s.name)
                .cloned()
                .unwrap_or_default();
            SinkStatus {
                name: s.name.clone(),
                kind: s.kind.as_str(),
                destination: s.destination(),
                min_level: s.filter.min_level,
                rules: s.filter.rules.clone(),
                techniques: s.filter.techniques.clone(),
                accounts: s.filter.accounts.clone(),
                kinds: s.filter.kinds.clone(),
                update_every_secs: s.update_every.num_seconds(),
                max_attempts: s.max_attempts,
                failing: m.failing.load(std::sync::atomic::Ordering::Relaxed),
                pending: st.pending,
                sent: st.sent,
                dead: st.dead,
                retried: st.retried,
                last_success: st.last_success,
                last_failure: st.last_failure,
                last_error: st.last_error,
            }
        })
        .collect())
}

pub async fn list_notifications(State(state): State<AppState>) -> ApiResult<Json<SinkList>> {
    Ok(Json(SinkList {
        sinks: sink_status(&state).await?,
    }))
}

pub(crate) const KNOWN_DELIVERY_PARAMS: [&str; 5] = ["sink", "alert", "status", "limit", "offset"];

pub(crate) fn delivery_query(
    q: &BTreeMap<String, String>,
) -> ApiResult<cloudsentinel_store::DeliveryQuery> {
    if let Some(k) = q
        .keys()
        .find(|k| !KNOWN_DELIVERY_PARAMS.contains(&k.as_str()))
    {
        return Err(bad(format!(
            "unknown query parameter {k}; known: {}",
            KNOWN_DELIVERY_PARAMS.join(", ")
        )));
    }
    Ok(cloudsentinel_store::DeliveryQuery {
        sink: text_param(q, "sink")?,
        alert_id: q
            .get("alert")
            .map(|_| num(q, "alert", 0))
            .transpose()?
            .map(|v| v.min(i64::MAX as u64) as i64),
        status: match q.get("status").map(String::as_str) {
            None | Some("") => None,
            Some(s) => Some(
                cloudsentinel_store::DeliveryStatus::parse(s)
                    .ok_or_else(|| bad(format!("status={s}: expected pending, sent or dead")))?,
            ),
        },
        limit: num(q, "limit", 50)?.clamp(1, 500) as u32,
        offset: num(q, "offset", 0)?,
    })
}

pub async fn list_deliveries(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Page<DeliveryRecord>>> {
    let query = delivery_query(&q)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(&state, move |s| s.deliveries(&query)).await?;
    Ok(Json(Page {
        total: page.total,
        limit,
        offset,
        items: page.items,
    }))
}

/// Queues a test message for a sink, wakes its dispatcher and waits (up to the sink's timeout
/// and a few seconds) for the first try; answers the delivery as it then stands.
pub(crate) async fn send_test(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ApiResult<DeliveryRecord> {
    let Some((_, sink)) = state.notifier.sink(name) else {
        return Err(not_found(format!("notification sink {name}")));
    };
    let wait = sink.timeout + std::time::Duration::from_secs(3);
    let notice = crate::notify::test_notice();
    let d = cloudsentinel_store::NewDelivery {
        sink: name.to_string(),
        alert_id: None,
        change: "test".into(),
        payload: serde_json::to_string(&notice).map_err(|e| ApiError::Internal(e.into()))?,
    };
    let ids = blocking(state, move |s| s.enqueue_deliveries(&[d])).await?;
    let id = ids[0];
    state.notifier.wake();
    audit(
        state,
        &caller.name,
        caller.source_ip.clone(),
        "notify.test",
        format!("notify:{name}"),
        json!({"delivery": id, "kind": sink.kind.as_str(), "destination": sink.destination()}),
    )
    .await?;
    let started = std::time::Instant::now();
    loop {
        let d = blocking(state, move |s| s.delivery(id))
            .await?
            .ok_or_else(|| not_found(format!("delivery {id}")))?;
        if d.attempts > 0 || started.elapsed() >= wait {
            return Ok(d);
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub async fn test_notification(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(name): Path<String>,
) -> ApiResult<Json<DeliveryRecord>> {
    Ok(Json(send_test(&state, &caller, &name).await?))
}
