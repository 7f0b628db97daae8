//! Notification sinks, their deliveries and test messages.

use super::*;

/// The sinks as configured (no secrets) with how their deliveries stand.
pub(crate) async fn sink_status(state: &AppState) -> ApiResult<Vec<Value>> {
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
            json!({
                "name": s.name,
                "kind": s.kind.as_str(),
                "destination": s.destination(),
                "min_level": s.filter.min_level.as_str(),
                "rules": s.filter.rules,
                "techniques": s.filter.techniques,
                "accounts": s.filter.accounts,
                "kinds": s.filter.kinds,
                "update_every_secs": s.update_every.num_seconds(),
                "max_attempts": s.max_attempts,
                "failing": m.failing.load(std::sync::atomic::Ordering::Relaxed),
                "pending": st.pending,
                "sent": st.sent,
                "dead": st.dead,
                "retried": st.retried,
                "last_success": st.last_success,
                "last_failure": st.last_failure,
                "last_error": st.last_error,
            })
        })
        .collect())
}

pub async fn list_notifications(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    Ok(Json(json!({"sinks": sink_status(&state).await?})))
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

pub async fn list_deliveries(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    let query = delivery_query(&q)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(&state, move |s| s.deliveries(&query)).await?;
    Ok(Json(
        json!({"total": page.total, "limit": limit, "offset": offset, "items": page.items}),
    ))
}

/// Queues a test message for a sink, wakes its dispatcher and waits (up to the sink's timeout
/// and a few seconds) for the first try; answers the delivery as it then stands.
pub(crate) async fn send_test(
    state: &AppState,
    caller: &Caller,
    name: &str,
) -> ApiResult<cloudsentinel_store::DeliveryRecord> {
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
) -> ApiResult<Json<Value>> {
    let d = send_test(&state, &caller, &name).await?;
    Ok(Json(json!(d)))
}
