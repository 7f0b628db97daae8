//! Health, metrics and the audit log.

use super::*;

pub async fn health(State(state): State<AppState>) -> Response {
    let ok = blocking(&state, |s| s.count_users()).await.is_ok();
    let body = json!({
        "status": if ok { "ok" } else { "degraded" },
        "store": if ok { "ok" } else { "unavailable" },
        "rules": state.rules.len(),
        "queue_events": state.metrics.queued_events.load(std::sync::atomic::Ordering::Relaxed).max(0),
        // A sink that fails does not stop ingest: it is named here and on the dashboard.
        "notifications": {
            "sinks": state.notifier.sinks.len(),
            "failing": state.notifier.failing(),
        },
        "started": state.started,
        "version": env!("CARGO_PKG_VERSION"),
    });
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body)).into_response()
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut m = state.metrics.render();
        state.notifier.render_metrics(&mut m);
        m
    })
        .into_response()
}

pub async fn audit_log(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    let limit = num(&q, "limit", 100)?.clamp(1, 1000) as u32;
    let offset = num(&q, "offset", 0)?;
    let page = blocking(&state, move |s| s.audit_page(limit, offset)).await?;
    Ok(Json(
        json!({"total": page.total, "limit": limit, "offset": offset, "items": page.items}),
    ))
}
