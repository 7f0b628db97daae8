//! Ingest: the provider routes, auto-detection, and analyzing a record without storing it.

use super::*;

pub(super) fn provider_param(q: &BTreeMap<String, String>) -> ApiResult<Option<Provider>> {
    match q.get("format").map(|s| s.to_ascii_lowercase()).as_deref() {
        None | Some("auto") | Some("") => Ok(None),
        Some("aws") | Some("cloudtrail") => Ok(Some(Provider::Aws)),
        Some("azure") => Ok(Some(Provider::Azure)),
        Some("gcp") => Ok(Some(Provider::Gcp)),
        Some(other) => Err(bad(format!(
            "format={other}: expected aws, azure, gcp or auto"
        ))),
    }
}

/// Reads the body within the limits, decompressing gzip.
pub(super) async fn read_body(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
) -> ApiResult<Vec<u8>> {
    let s = &state.config.config.server;
    let too_large = |what: &str, limit: usize| {
        state.metrics.error("too_large");
        ApiError::TooLarge(format!("{what} is larger than the limit of {limit} bytes"))
    };
    if let Some(len) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        && len > s.max_body_bytes
    {
        return Err(too_large("the body", s.max_body_bytes));
    }
    let bytes = axum::body::to_bytes(body, s.max_body_bytes)
        .await
        .map_err(|_| too_large("the body", s.max_body_bytes))?;
    let encoding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    let gzip_header = match encoding.as_deref() {
        None | Some("") | Some("identity") => false,
        Some("gzip") | Some("x-gzip") => true,
        Some(other) => {
            state.metrics.error("malformed");
            return Err(ApiError::UnsupportedMediaType(format!(
                "Content-Encoding {other:.40} is not supported: send gzip or no encoding"
            )));
        }
    };
    if gzip_header || bytes.starts_with(&[0x1f, 0x8b]) {
        let limit = s.max_decompressed_bytes;
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&bytes[..])
            .take(limit as u64 + 1)
            .read_to_end(&mut out)
            .map_err(|e| bad(format!("gzip body: {e}")))?;
        if out.len() > limit {
            return Err(too_large("the decompressed body", limit));
        }
        // Decompressed once, within the limit; the decoder does not unpack again.
        if out.starts_with(&[0x1f, 0x8b]) {
            state.metrics.error("malformed");
            return Err(bad(
                "the body is gzip inside gzip: compress it once".to_string()
            ));
        }
        return Ok(out);
    }
    Ok(bytes.to_vec())
}

/// Reads and discards a body (up to the size limit) so that a refused client sees the answer
/// instead of a connection reset; nothing is kept.
pub(super) async fn discard(state: &AppState, body: Body) {
    use http_body_util::BodyExt;
    let mut body = body;
    let mut seen = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        if let Some(d) = frame.data_ref() {
            seen += d.len();
        }
        if seen > state.config.config.server.max_body_bytes {
            break;
        }
    }
}

/// A refused body as an answer: 400 with the records' errors, 413 for too many records.
pub(super) fn prepare_error(state: &AppState, e: PrepareError) -> ApiError {
    match e {
        PrepareError::Malformed(ref errors) => {
            state.metrics.error("malformed");
            ApiError::BadRequest(
                format!("{e}; nothing was stored"),
                Some(json!({"errors": errors})),
            )
        }
        PrepareError::TooManyRecords { .. } => {
            state.metrics.error("too_large");
            ApiError::TooLarge(e.to_string())
        }
        PrepareError::Empty => {
            state.metrics.error("malformed");
            bad(e.to_string())
        }
        PrepareError::Internal(m) => ApiError::Internal(anyhow::anyhow!(m)),
    }
}

pub(super) fn saturated(state: &AppState) -> ApiError {
    state.metrics.error("saturated");
    ApiError::TooManyRequests {
        message: "the pipeline is saturated; retry later".into(),
        retry_after: 1,
    }
}

/// What an ingest request stored and detected. A process that hands batches to the bus (role
/// `ingest`, or `[bus] kind = "amqp"`) answers once the broker has the batch: it gives `queued`
/// and not what only the commit knows (`accepted`, `duplicates`, `detections`).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct IngestAnswer {
    /// Events stored.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accepted: Option<u64>,
    /// Events already stored before (ignored).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duplicates: Option<u64>,
    /// Events handed to the bus (written by the broker; detection and storage follow).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queued: Option<u64>,
    /// Records recognised and skipped (CloudTrail digests, Insights).
    pub skipped: u64,
    /// Detections on these events (before they are merged into alerts).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<u64>,
    /// Events older than the retention period (stored, and deleted by the next retention pass).
    pub past_retention: u64,
    /// Says what happens to events past retention, when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warning: Option<String>,
}

/// What the ingest routes answer: 202, the events are committed and alerts follow from them.
type Accepted = (StatusCode, Json<IngestAnswer>);

pub(super) async fn ingest(
    state: AppState,
    provider: Option<Provider>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Accepted> {
    let received = Instant::now();
    // Refuse at once, before reading the body, when too many requests are already in hand.
    let Ok(_permit) = Arc::clone(&state.ingest_slots).try_acquire_owned() else {
        discard(&state, body).await;
        return Err(saturated(&state));
    };
    let bytes = read_body(&state, &headers, body).await?;
    if let Some(publisher) = state.publisher.clone() {
        return publish(&state, &publisher, provider, bytes, received).await;
    }
    let Some(submitter) = state.submitter.as_ref() else {
        return Err(ApiError::Unavailable(
            "this process neither runs the pipeline nor has a bus to hand batches to".into(),
        ));
    };
    let rules = Arc::clone(&state.rules);
    let max = state.config.config.server.max_records;
    let prepared = pipeline::prepare_async(
        &state.workers,
        bytes,
        provider,
        "http".into(),
        rules,
        state.learning.net.clone(),
        max,
        received,
    )
    .await
    .map_err(|e| prepare_error(&state, e))?;
    let past_retention = crate::past_retention(&state, prepared.rows.iter().map(|r| r.time));
    let rx = match submitter.try_submit(prepared) {
        Ok(rx) => rx,
        Err(SubmitError::Saturated) => return Err(saturated(&state)),
        Err(SubmitError::Stopped) => {
            return Err(ApiError::Unavailable("the service is shutting down".into()));
        }
    };
    match rx.await {
        Ok(Ok(c)) => {
            let answer = IngestAnswer {
                accepted: Some(c.accepted),
                duplicates: Some(c.duplicates),
                queued: None,
                skipped: c.skipped,
                detections: Some(c.signals),
                past_retention,
                warning: retention_warning(&state, past_retention),
            };
            Ok((StatusCode::ACCEPTED, Json(answer)))
        }
        Ok(Err(e)) => Err(ApiError::Unavailable(format!(
            "{e}; nothing was acknowledged, retry the batch"
        ))),
        Err(_) => Err(ApiError::Unavailable(
            "the service is shutting down; retry the batch".into(),
        )),
    }
}

/// Says what happens to events older than the retention period, when there are any.
fn retention_warning(state: &AppState, past_retention: u64) -> Option<String> {
    (past_retention > 0).then(|| {
        let days = state.config.config.storage.retention_days;
        format!(
            "{past_retention} events are older than storage.retention_days ({days} days): \
             they were stored and detected on, and the next retention pass (hourly, and at \
             every start) deletes them; raise storage.retention_days to keep a backfill"
        )
    })
}

/// Checks a batch as the pipeline would read it (a bad record is refused here, with its place)
/// and hands it to the bus; answers once the broker has written it.
async fn publish(
    state: &AppState,
    publisher: &crate::bus::Publisher,
    provider: Option<Provider>,
    bytes: Vec<u8>,
    received: Instant,
) -> ApiResult<Accepted> {
    let max = state.config.config.server.max_records;
    let (rules, net) = (Arc::clone(&state.rules), state.learning.net.clone());
    let checked = {
        let bytes = bytes.clone();
        state
            .workers
            .run(move || {
                let stage = cloudsentinel_detect::Stage::new(&rules, &net);
                pipeline::decode(&bytes, provider, "http", max, stage).map(|(events, skipped)| {
                    (events.iter().map(|e| e.time).collect::<Vec<_>>(), skipped)
                })
            })
            .await
            .map_err(|e| prepare_error(state, e))?
            .map_err(|e| prepare_error(state, e))?
    };
    let (times, skipped) = checked;
    let past_retention = crate::past_retention(state, times.iter().copied());
    let header = crate::bus::Header {
        provider: crate::bus::Header::provider_name(provider),
        source: "http".into(),
        records: times.len() as u64,
        received_ms: Utc::now().timestamp_millis(),
        error: None,
    };
    match publisher
        .publish(crate::bus::encode(&header, &bytes), None)
        .await
    {
        Ok(()) => {
            state
                .metrics
                .bus_published
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            tracing::debug!(
                ms = received.elapsed().as_secs_f64() * 1000.0,
                "batch handed to the bus"
            );
            Ok((
                StatusCode::ACCEPTED,
                Json(IngestAnswer {
                    accepted: None,
                    duplicates: None,
                    queued: Some(times.len() as u64),
                    skipped,
                    detections: None,
                    past_retention,
                    warning: retention_warning(state, past_retention),
                }),
            ))
        }
        Err(e) => {
            state.metrics.error("bus");
            tracing::warn!(error = %e, "a batch was not handed to the bus");
            Err(ApiError::Unavailable(format!(
                "{e}; nothing was acknowledged, retry the batch"
            )))
        }
    }
}

pub async fn ingest_aws(State(s): State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Accepted> {
    ingest(s, Some(Provider::Aws), h, b).await
}

pub async fn ingest_azure(State(s): State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Accepted> {
    ingest(s, Some(Provider::Azure), h, b).await
}

pub async fn ingest_gcp(State(s): State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Accepted> {
    ingest(s, Some(Provider::Gcp), h, b).await
}

pub async fn ingest_any(
    State(s): State<AppState>,
    Query(q): Q,
    h: HeaderMap,
    b: Body,
) -> ApiResult<Accepted> {
    let p = provider_param(&q)?;
    ingest(s, p, h, b).await
}

/// What `POST /api/v1/threats/analyze` found in the records (nothing is stored).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AnalyzeAnswer {
    pub events: Vec<AnalyzedEvent>,
    pub detections: Vec<AnalyzedDetection>,
    /// What was not evaluated (correlation rules need a stream of events), or empty.
    pub note: &'static str,
}

/// A record as the detection rules see it.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AnalyzedEvent {
    /// The provider's own id of the record.
    pub id: String,
    pub time: DateTime<Utc>,
    /// `aws`, `azure` or `gcp`.
    pub provider: &'static str,
    /// Which log of the provider the record comes from: `cloudtrail`, `azure_activity`,
    /// `entra_signin`, `entra_audit`, `entra_risk` or `gcp_audit`.
    pub kind: &'static str,
    /// The entity the event is about, what alerts key on.
    pub principal: String,
    /// AWS account id, Azure subscription, GCP project.
    pub account: Option<String>,
    pub source_ip: Option<String>,
    pub service: String,
    pub operation: String,
    pub success: bool,
    pub error_code: Option<String>,
}

/// A rule that matched a record.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AnalyzedDetection {
    /// The id of the event it matched.
    pub event_id: String,
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    /// Who or what the finding is about.
    pub entity: String,
    /// Why it fired: the fields and values that matched.
    pub explanation: String,
    /// What to do about it, from the rule.
    pub remedy: Option<String>,
}

pub async fn analyze(
    State(state): State<AppState>,
    Query(q): Q,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<AnalyzeAnswer>> {
    let provider = provider_param(&q)?;
    let bytes = read_body(&state, &headers, body).await?;
    let (rules, net) = (Arc::clone(&state.rules), state.learning.net.clone());
    let (events, _) = state
        .workers
        .run(move || {
            let stage = Stage::new(&rules, &net);
            pipeline::decode(&bytes, provider, "analyze", 100, stage)
        })
        .await
        .and_then(|r| r)
        .map_err(|e| prepare_error(&state, e))?;
    let mut detections = Vec::new();
    for e in &events {
        for s in state.rules.detect(e).single_event_signals(e) {
            let meta = state.rules.rule(&s.rule_id);
            detections.push(AnalyzedDetection {
                event_id: e.id.clone(),
                remedy: meta.and_then(|m| m.remedy.clone()),
                rule_id: s.rule_id,
                title: s.title,
                level: s.level,
                techniques: s.techniques,
                tactics: s.tactics,
                entity: s.entity,
                explanation: s.explanation,
            });
        }
    }
    let events = events
        .iter()
        .map(|e| AnalyzedEvent {
            id: e.id.clone(),
            time: e.time,
            provider: e.provider.as_str(),
            kind: e.kind.as_str(),
            principal: e.entity(),
            account: e.account.clone(),
            source_ip: e.source_ip.clone(),
            service: e.action.service.clone(),
            operation: e.action.operation.clone(),
            success: e.outcome.success,
            error_code: e.outcome.error_code.clone(),
        })
        .collect();
    Ok(Json(AnalyzeAnswer {
        events,
        detections,
        note: if state.rules.has_correlations() {
            "correlation rules need a stream of events and are not evaluated here"
        } else {
            ""
        },
    }))
}
