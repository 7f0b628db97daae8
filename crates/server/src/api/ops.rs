//! Health, metrics and the audit log.

use cloudsentinel_store::AuditRecord;

use super::*;

/// Liveness and readiness: 200 when the store answers, 503 when it does not.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Health {
    /// `ok` or `degraded`.
    pub status: &'static str,
    /// `ok` or `unavailable`.
    pub store: &'static str,
    /// Detection rules loaded.
    pub rules: usize,
    /// Events waiting in the pipeline.
    pub queue_events: i64,
    pub notifications: HealthNotifications,
    pub started: DateTime<Utc>,
    pub version: &'static str,
}

/// The notification sinks in the health answer.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct HealthNotifications {
    /// Sinks configured.
    pub sinks: usize,
    /// The names of the sinks whose last try failed.
    pub failing: Vec<String>,
}

pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let ok = blocking(&state, |s| s.count_users()).await.is_ok();
    let body = Health {
        status: if ok { "ok" } else { "degraded" },
        store: if ok { "ok" } else { "unavailable" },
        rules: state.rules.len(),
        queue_events: state
            .metrics
            .queued_events
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0),
        // A sink that fails does not stop ingest: it is named here and on the dashboard.
        notifications: HealthNotifications {
            sinks: state.notifier.sinks.len(),
            failing: state
                .notifier
                .failing()
                .into_iter()
                .map(String::from)
                .collect(),
        },
        started: state.started,
        version: env!("CARGO_PKG_VERSION"),
    };
    let code = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(body))
}

pub async fn metrics(State(state): State<AppState>) -> Response {
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], {
        let mut m = state.metrics.render();
        state.notifier.render_metrics(&mut m);
        state.sources.render_metrics(&mut m);
        m
    })
        .into_response()
}

pub async fn audit_log(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Page<AuditRecord>>> {
    let limit = num(&q, "limit", 100)?.clamp(1, 1000) as u32;
    let offset = num(&q, "offset", 0)?;
    let page = blocking(&state, move |s| s.audit_page(limit, offset)).await?;
    Ok(Json(Page {
        total: page.total,
        limit,
        offset,
        items: page.items,
    }))
}

/// The configured sources and how each is doing.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SourceList {
    pub sources: Vec<crate::sources::health::SourceStatus>,
}

pub async fn list_sources(State(state): State<AppState>) -> Json<SourceList> {
    Json(SourceList {
        sources: state.sources.snapshot(),
    })
}
