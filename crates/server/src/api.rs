//! The route handlers. Each takes the [`Caller`] the authorization layer established, validates
//! its input into typed values, does one thing through the store or the pipeline, records state
//! changes in the audit log, and answers JSON.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord, Verdict};
use cloudsentinel_core::text::SHOWN_FIELD_CHARS;
use cloudsentinel_core::{Level, Provider};
use cloudsentinel_store::{
    AlertKey, AlertQuery, AlertSort, CommentRecord, EventQuery, EventRow, FeedbackRecord,
    IncidentUpdate,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::{self, Caller, Claims, Role};
use crate::error::{ApiError, ApiResult, bad, not_found};
use crate::pipeline::{self, PrepareError, SubmitError};
use crate::routes::ClientAddr;
use crate::{AppState, blocking};

type Q = Query<BTreeMap<String, String>>;

fn audit(
    state: &AppState,
    caller: &str,
    addr: Option<String>,
    action: &'static str,
    target: String,
    detail: Value,
) -> impl std::future::Future<Output = ApiResult<()>> + Send + 'static {
    let state = Arc::clone(state);
    let caller = caller.to_string();
    async move {
        let s2 = Arc::clone(&state);
        tokio::task::spawn_blocking(move || {
            s2.audit.record(
                s2.store.as_ref(),
                &caller,
                action,
                &target,
                detail,
                addr.as_deref(),
            )
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
        Ok(())
    }
}

// ---- operations -----------------------------------------------------------------------------

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

// ---- auth -----------------------------------------------------------------------------------

#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
}

pub(crate) fn issue(state: &AppState, user: &cloudsentinel_store::UserRecord) -> ApiResult<Value> {
    let role = Role::parse(&user.role).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "user {} has role {}",
            user.username,
            user.role
        ))
    })?;
    let now = Utc::now().timestamp();
    let a = &state.config.config.auth;
    let claims = |typ: &str, ttl: i64| Claims {
        sub: user.username.clone(),
        uid: user.id,
        role,
        ver: user.token_version,
        sid: user.token_secret.clone(),
        typ: typ.to_string(),
        iat: now,
        exp: now + ttl,
    };
    Ok(json!({
        "access_token": state.tokens.sign(&claims("access", a.access_token_secs)),
        "refresh_token": state.tokens.sign(&claims("refresh", a.refresh_token_secs)),
        "token_type": "bearer",
        "expires_in": a.access_token_secs,
        "role": role,
        "username": user.username,
    }))
}

pub async fn login(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: LoginForm = if form_encoded {
        serde_urlencoded::from_bytes(&body).map_err(|e| bad(format!("login form: {e}")))?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| bad(format!("expected {{\"username\", \"password\"}}: {e}")))?
    };
    if form.username.len() > 128 || form.password.len() > 1024 {
        return Err(bad("username or password too long"));
    }
    let from = addr.clone().unwrap_or_default();
    login_gate(&state, &from, &form.username).await?;
    let name = form.username.clone();
    let user = blocking(&state, move |s| s.user_by_name(&name)).await?;
    let password = form.password;
    let (ok, user) = tokio::task::spawn_blocking(move || {
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .unwrap_or(auth::dummy_hash());
        let ok = auth::verify_password(&password, hash);
        (ok, user)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            state.limiter.failed(&from, &form.username);
            audit(
                &state,
                &form.username,
                addr,
                "auth.login_failed",
                format!("user:{}", form.username),
                json!({}),
            )
            .await?;
            return Err(ApiError::Unauthorized("wrong user name or password".into()));
        }
    };
    state.limiter.succeeded(&form.username);
    audit(
        &state,
        &user.username,
        addr,
        "auth.login",
        format!("user:{}", user.username),
        json!({}),
    )
    .await?;
    Ok(Json(issue(&state, &user)?))
}

/// Holds a sign-in attempt (or a password check) back as the login limiter says: refused
/// with 429 for a guessing address, delayed for a user name under attack.
async fn login_gate(state: &AppState, addr: &str, user: &str) -> ApiResult<()> {
    match state.limiter.gate(addr, user) {
        auth::Gate::Open => Ok(()),
        auth::Gate::Wait(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        auth::Gate::Refuse(wait) => Err(ApiError::TooManyRequests {
            message: format!("too many failed sign-ins; try again in {wait} s"),
            retry_after: wait,
        }),
    }
}

#[derive(Deserialize)]
struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Value>> {
    let b: RefreshBody = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("expected {{\"refresh_token\"}}: {e}")))?;
    let claims = state
        .tokens
        .verify(&b.refresh_token, "refresh", Utc::now().timestamp())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let uid = claims.uid;
    let user = blocking(&state, move |s| s.user(uid)).await?;
    match user {
        Some(u) if auth::claims_match(&claims, &u) => Ok(Json(issue(&state, &u)?)),
        _ => Err(ApiError::Unauthorized(
            "refresh token revoked: sign in again".into(),
        )),
    }
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<Value>> {
    let uid = caller
        .user_id
        .ok_or_else(|| bad("API keys do not sign out"))?;
    blocking(&state, move |s| s.bump_token_version(uid)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "auth.logout",
        format!("user:{}", caller.name),
        json!({}),
    )
    .await?;
    Ok(Json(json!({"signed_out": true})))
}

pub async fn me(Extension(caller): Extension<Caller>) -> Json<Value> {
    Json(json!({"username": caller.name, "user_id": caller.user_id, "role": caller.role}))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PasswordChange {
    current_password: String,
    new_password: String,
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: PasswordChange = json_body(&body)?;
    if b.current_password.len() > 1024 {
        return Err(bad("current_password is longer than 1024 bytes"));
    }
    auth::check_password_policy(&b.new_password, &caller.name).map_err(bad)?;
    let uid = caller
        .user_id
        .ok_or_else(|| bad("API keys have no password"))?;
    let user = blocking(&state, move |s| s.user(uid))
        .await?
        .ok_or_else(|| not_found("user"))?;
    // A stolen session must not buy unlimited guesses at the password.
    let from = caller.source_ip.clone().unwrap_or_default();
    login_gate(&state, &from, &caller.name).await?;
    let (ok, hash) = tokio::task::spawn_blocking(move || {
        (
            auth::verify_password(&b.current_password, &user.password_hash),
            auth::hash_password(&b.new_password),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    if !ok {
        state.limiter.failed(&from, &caller.name);
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    state.limiter.succeeded(&caller.name);
    let hash = hash?;
    blocking(&state, move |s| s.update_user(uid, None, Some(&hash), None)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.password_changed",
        format!("user:{}", caller.name),
        json!({}),
    )
    .await?;
    Ok(Json(
        json!({"changed": true, "note": "sign in again: older tokens are revoked"}),
    ))
}

fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| bad(format!("request body: {e}")))
}

// ---- users and API keys ---------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewUser {
    username: String,
    password: String,
    role: String,
}

fn user_json(u: &cloudsentinel_store::UserRecord) -> Value {
    json!({"id": u.id, "username": u.username, "role": u.role, "created": u.created, "disabled": u.disabled})
}

fn check_username(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "username: 1 to 64 characters of letters, digits, . _ - @",
        ))
    }
}

pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewUser = json_body(&body)?;
    check_username(&b.username)?;
    let role = Role::parse(&b.role)
        .ok_or_else(|| bad("role: expected admin, responder, analyst or viewer"))?;
    auth::check_password_policy(&b.password, &b.username).map_err(bad)?;
    let password = b.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let name = b.username.clone();
    let user = blocking(&state, move |s| s.create_user(&name, &hash, role.as_str())).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.created",
        format!("user:{}", user.username),
        json!({"role": role}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

pub async fn list_users(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let users = blocking(&state, |s| s.users()).await?;
    Ok(Json(
        json!({"items": users.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: UserPatch = json_body(&body)?;
    let role = match &b.role {
        Some(r) => Some(
            Role::parse(r)
                .ok_or_else(|| bad("role: expected admin, responder, analyst or viewer"))?,
        ),
        None => None,
    };
    if caller.user_id == Some(id)
        && (b.disabled == Some(true) || role.is_some_and(|r| r != Role::Admin))
    {
        return Err(ApiError::Conflict(
            "you cannot demote or disable yourself".into(),
        ));
    }
    let hash = match b.password.clone() {
        Some(p) => {
            let target = blocking(&state, move |s| s.user(id))
                .await?
                .ok_or_else(|| not_found(format!("user {id}")))?;
            auth::check_password_policy(&p, &target.username).map_err(bad)?;
            Some(
                tokio::task::spawn_blocking(move || auth::hash_password(&p))
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))??,
            )
        }
        None => None,
    };
    let disabled = b.disabled;
    let user = blocking(&state, move |s| {
        s.update_user(id, role.map(Role::as_str), hash.as_deref(), disabled)
    })
    .await?
    .ok_or_else(|| not_found(format!("user {id}")))?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.updated",
        format!("user:{}", user.username),
        json!({"role": b.role, "disabled": b.disabled, "password_changed": b.password.is_some()}),
    )
    .await?;
    Ok(Json(user_json(&user)))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    if caller.user_id == Some(id) {
        return Err(ApiError::Conflict("you cannot delete yourself".into()));
    }
    let user = blocking(&state, move |s| s.user(id))
        .await?
        .ok_or_else(|| not_found(format!("user {id}")))?;
    blocking(&state, move |s| s.delete_user(id)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.deleted",
        format!("user:{}", user.username),
        json!({}),
    )
    .await?;
    Ok(Json(json!({"deleted": id})))
}

pub async fn list_api_keys(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let keys = blocking(&state, |s| s.api_keys()).await?;
    Ok(Json(json!({"items": keys})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewKey = json_body(&body)?;
    if b.name.trim().is_empty() || b.name.len() > 100 {
        return Err(bad("name: 1 to 100 characters"));
    }
    let (key, prefix, hash) = auth::new_api_key();
    let by = caller.name.clone();
    let name = b.name.clone();
    let rec = blocking(&state, move |s| {
        s.create_api_key(&name, &prefix, &hash, "ingest", &by)
    })
    .await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "api_key.created",
        format!("api_key:{}", rec.id),
        json!({"name": rec.name, "prefix": rec.prefix}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": rec.id, "name": rec.name, "prefix": rec.prefix, "role": rec.role, "key": key,
                    "note": "store the key now: it is not shown again"})),
    )
        .into_response())
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    if !blocking(&state, move |s| s.revoke_api_key(id)).await? {
        return Err(not_found(format!("active API key {id}")));
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "api_key.revoked",
        format!("api_key:{id}"),
        json!({}),
    )
    .await?;
    Ok(Json(json!({"revoked": id})))
}

// ---- ingest ---------------------------------------------------------------------------------

fn provider_param(q: &BTreeMap<String, String>) -> ApiResult<Option<Provider>> {
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
async fn read_body(state: &AppState, headers: &HeaderMap, body: Body) -> ApiResult<Vec<u8>> {
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
async fn discard(state: &AppState, body: Body) {
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
fn prepare_error(state: &AppState, e: PrepareError) -> ApiError {
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

fn saturated(state: &AppState) -> ApiError {
    state.metrics.error("saturated");
    ApiError::TooManyRequests {
        message: "the pipeline is saturated; retry later".into(),
        retry_after: 1,
    }
}

async fn ingest(
    state: AppState,
    provider: Option<Provider>,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Response> {
    let received = Instant::now();
    // Refuse at once, before reading the body, when too many requests are already in hand.
    let Ok(_permit) = Arc::clone(&state.ingest_slots).try_acquire_owned() else {
        discard(&state, body).await;
        return Err(saturated(&state));
    };
    let bytes = read_body(&state, &headers, body).await?;
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
    let rx = match state.submitter.try_submit(prepared) {
        Ok(rx) => rx,
        Err(SubmitError::Saturated) => return Err(saturated(&state)),
        Err(SubmitError::Stopped) => {
            return Err(ApiError::Unavailable("the service is shutting down".into()));
        }
    };
    match rx.await {
        Ok(Ok(c)) => {
            let mut answer = json!({
                "accepted": c.accepted,
                "duplicates": c.duplicates,
                "skipped": c.skipped,
                "detections": c.signals,
                "past_retention": past_retention,
            });
            if past_retention > 0 {
                let days = state.config.config.storage.retention_days;
                answer["warning"] = json!(format!(
                    "{past_retention} events are older than storage.retention_days ({days} days): \
                     they were stored and detected on, and the next retention pass (hourly, and at \
                     every start) deletes them; raise storage.retention_days to keep a backfill"
                ));
            }
            Ok((StatusCode::ACCEPTED, Json(answer)).into_response())
        }
        Ok(Err(e)) => Err(ApiError::Unavailable(format!(
            "{e}; nothing was acknowledged, retry the batch"
        ))),
        Err(_) => Err(ApiError::Unavailable(
            "the service is shutting down; retry the batch".into(),
        )),
    }
}

pub async fn ingest_aws(State(s): State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Response> {
    ingest(s, Some(Provider::Aws), h, b).await
}

pub async fn ingest_azure(State(s): State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Response> {
    ingest(s, Some(Provider::Azure), h, b).await
}

pub async fn ingest_gcp(State(s): State<AppState>, h: HeaderMap, b: Body) -> ApiResult<Response> {
    ingest(s, Some(Provider::Gcp), h, b).await
}

pub async fn ingest_any(
    State(s): State<AppState>,
    Query(q): Q,
    h: HeaderMap,
    b: Body,
) -> ApiResult<Response> {
    let p = provider_param(&q)?;
    ingest(s, p, h, b).await
}

pub async fn analyze(
    State(state): State<AppState>,
    Query(q): Q,
    headers: HeaderMap,
    body: Body,
) -> ApiResult<Json<Value>> {
    let provider = provider_param(&q)?;
    let bytes = read_body(&state, &headers, body).await?;
    let net = state.learning.net.clone();
    let (events, _) = state
        .workers
        .run(move || pipeline::decode(&bytes, provider, "analyze", 100, &net))
        .await
        .and_then(|r| r)
        .map_err(|e| prepare_error(&state, e))?;
    let mut detections = Vec::new();
    for e in &events {
        for s in state.rules.detect(e).single_event_signals(e) {
            let meta = state.rules.rule(&s.rule_id);
            detections.push(
                json!({"event_id": e.id, "rule_id": s.rule_id, "title": s.title, "level": s.level,
                   "techniques": s.techniques, "tactics": s.tactics, "entity": s.entity,
                   "explanation": s.explanation,
                   "remedy": meta.and_then(|m| m.remedy.clone())}),
            );
        }
    }
    let events: Vec<Value> = events
        .iter()
        .map(|e| {
            json!({"id": e.id, "time": e.time, "provider": e.provider.as_str(), "kind": e.kind.as_str(),
                   "principal": e.entity(), "account": e.account, "source_ip": e.source_ip,
                   "service": e.action.service, "operation": e.action.operation,
                   "success": e.outcome.success, "error_code": e.outcome.error_code})
        })
        .collect();
    Ok(Json(json!({
        "events": events,
        "detections": detections,
        "note": if state.rules.has_correlations() { "correlation rules need a stream of events and are not evaluated here" } else { "" },
    })))
}

// ---- alerts ---------------------------------------------------------------------------------

/// A non-negative integer query parameter, at most `i64::MAX` (what the store can take).
fn num(q: &BTreeMap<String, String>, key: &str, default: u64) -> ApiResult<u64> {
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

fn time_param(q: &BTreeMap<String, String>, key: &str) -> ApiResult<Option<DateTime<Utc>>> {
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

fn text_param(q: &BTreeMap<String, String>, key: &str) -> ApiResult<Option<String>> {
    match q.get(key) {
        Some(v) if v.len() > 512 => Err(bad(format!("{key}: longer than 512 characters"))),
        Some(v) if v.is_empty() => Ok(None),
        Some(v) => Ok(Some(v.clone())),
        None => Ok(None),
    }
}

fn levels(v: &str, key: &str) -> ApiResult<Vec<Level>> {
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

fn statuses(v: &str) -> ApiResult<Vec<AlertStatus>> {
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

const KNOWN_ALERT_PARAMS: &[&str] = &[
    "kind",
    "level",
    "min_level",
    "status",
    "rule",
    "technique",
    "principal",
    "account",
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
        incident_id: q
            .get("incident")
            .map(|_| num(q, "incident", 0))
            .transpose()?
            .map(|v| v as i64),
        since: time_param(q, "since")?,
        until: time_param(q, "until")?,
        text: text_param(q, "q")?,
        sort: match q.get("sort").map(String::as_str) {
            None | Some("last_seen") => AlertSort::LastSeen,
            Some("first_seen") => AlertSort::FirstSeen,
            Some("level") => AlertSort::Level,
            Some("count") => AlertSort::Count,
            Some("id") => AlertSort::Id,
            Some("tp_score") => AlertSort::TpScore,
            Some(o) => {
                return Err(bad(format!(
                    "sort={o}: expected last_seen, first_seen, level, count, id or tp_score"
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

pub async fn list_alerts(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    let query = alert_query(&q)?;
    let (limit, offset) = (query.limit, query.offset);
    let page = blocking(&state, move |s| s.alerts(&query)).await?;
    let ids: Vec<String> = page.items.iter().map(|a| a.entity.clone()).collect();
    let names = blocking(&state, move |s| s.actor_names(&object_ids(ids))).await?;
    Ok(Json(
        json!({"total": page.total, "limit": limit, "offset": offset, "items": page.items, "names": names}),
    ))
}

/// Events shown as evidence on an alert page at most.
const EVIDENCE_SHOWN: usize = 25;

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
const SIGNALS_SHOWN: u32 = 50;

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

pub async fn get_alert(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let d = alert_detail(&state, id).await?;
    let rule = d.rule.as_ref().map(|m| {
        json!({"id": m.id, "title": m.title, "description": m.description, "remedy": m.remedy,
               "false_positives": m.false_positives, "source": m.source, "level": m.level,
               "techniques": m.techniques, "tactics": m.tactics})
    });
    Ok(Json(json!({
        "alert": d.alert,
        "explanation": d.alert.explanation,
        "remedy": d.rule.as_ref().and_then(|m| m.remedy.clone()),
        "rule": rule,
        "evidence": d.evidence,
        "surrounding_activity": {"from": d.around_from, "to": d.around_to, "total": d.around.total, "events": d.around.items},
        "comments": d.comments,
        "feedback": d.feedback,
        "incident": d.incident,
        "signals_around": d.signals,
    })))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AlertPatch {
    status: Option<String>,
    #[serde(default, deserialize_with = "double_option")]
    assignee: Option<Option<String>>,
    comment: Option<String>,
}

/// Tells `"assignee": null` (unassign) from no `assignee` key (leave as is).
fn double_option<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> Result<Option<Option<String>>, D::Error> {
    Ok(Some(Option::deserialize(d)?))
}

/// A status an analyst sets on an alert or an incident.
fn parse_status(s: Option<&str>) -> ApiResult<Option<AlertStatus>> {
    s.map(|s| {
        AlertStatus::parse(s).ok_or_else(|| {
            bad(format!(
                "status={s}: expected open, acknowledged, investigating, resolved or closed"
            ))
        })
    })
    .transpose()
}

fn check_assignee(a: &Option<Option<String>>) -> ApiResult<()> {
    match a {
        Some(Some(a)) if a.is_empty() || a.len() > 64 => {
            Err(bad("assignee: 1 to 64 characters, or null to unassign"))
        }
        _ => Ok(()),
    }
}

fn check_comment(c: Option<&str>) -> ApiResult<()> {
    match c {
        Some(c) if c.trim().is_empty() || c.len() > 10_000 => {
            Err(bad("comment: 1 to 10000 characters"))
        }
        _ => Ok(()),
    }
}

/// The messages a status change makes for the notification sinks (none when the status stays).
fn status_messages(
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
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!(alert)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FeedbackBody {
    verdict: String,
    #[serde(default)]
    reason: String,
}

pub async fn alert_feedback(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Response> {
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
    // A false positive or benign verdict takes the alert out of the queue.
    if matches!(verdict, Verdict::FalsePositive | Verdict::Benign)
        && let Some(before) = blocking(&state, move |s| s.alert(id)).await?
    {
        let mut before = before;
        before.verdict = Some(verdict);
        let deliveries = status_messages(&state, &before, Some(AlertStatus::Closed));
        blocking(&state, move |s| {
            s.update_alert(id, Some(AlertStatus::Closed), None, &deliveries)
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
    Ok((StatusCode::CREATED, Json(json!(fb))).into_response())
}

// ---- incidents --------------------------------------------------------------------------------

pub async fn list_incidents(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
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
    Ok(Json(
        json!({"total": page.total, "limit": limit, "offset": offset, "items": page.items, "names": names}),
    ))
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

pub async fn get_incident(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
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
    let timeline: Vec<Value> = alerts
        .items
        .iter()
        .map(|a| json!({"time": a.first_seen, "last_seen": a.last_seen, "alert_id": a.id, "title": a.title,
                        "level": a.level, "tactics": a.tactics, "techniques": a.techniques, "count": a.count}))
        .collect();
    let entities = alerts
        .items
        .iter()
        .map(|a| a.entity.clone())
        .chain([incident.entity.clone()])
        .collect();
    let names = blocking(&state, move |s| s.actor_names(&object_ids(entities))).await?;
    let narrative = crate::narrative::narrate(&incident, &alerts.items, &names);
    let comments = blocking(&state, move |s| s.incident_comments(id)).await?;
    let mut narrative_json = json!(narrative);
    narrative_json["text"] = json!(narrative.text());
    Ok(Json(
        json!({"incident": incident, "names": names, "narrative": narrative_json, "comments": comments,
               "timeline": timeline, "alerts": alerts.items}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct IncidentPatch {
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
) -> ApiResult<Json<Value>> {
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
    Ok(Json(json!(inc)))
}

// ---- suppressions -----------------------------------------------------------------------------

pub async fn list_suppressions(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let list = blocking(&state, |s| s.suppressions(Utc::now())).await?;
    Ok(Json(json!({"items": list})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewSuppression {
    rule_id: String,
    entity: String,
    reason: String,
    expires_at: Option<DateTime<Utc>>,
    duration_hours: Option<u32>,
}

/// Suppressions last at most this long.
const MAX_SUPPRESSION_DAYS: i64 = 90;

async fn refresh_suppressions(state: &AppState) -> ApiResult<()> {
    let list = blocking(state, |s| s.suppressions(Utc::now())).await?;
    state
        .suppressions
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .suppressions = list;
    Ok(())
}

pub async fn create_suppression(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewSuppression = json_body(&body)?;
    if b.reason.trim().is_empty() || b.reason.len() > 2000 {
        return Err(bad("reason: say why (1 to 2000 characters)"));
    }
    if state.rules.rule(&b.rule_id).is_none() && b.rule_id != cloudsentinel_learn::anomaly::RULE_ID
    {
        return Err(bad(format!(
            "rule_id {}: no such rule is loaded",
            b.rule_id
        )));
    }
    if b.entity.is_empty() || b.entity.len() > 512 {
        return Err(bad("entity: 1 to 512 characters"));
    }
    let now = Utc::now();
    let expires = match (b.expires_at, b.duration_hours) {
        (Some(t), None) => t,
        (None, Some(h)) => now + Duration::hours(h as i64),
        _ => {
            return Err(bad(
                "give exactly one of expires_at (RFC 3339) or duration_hours",
            ));
        }
    };
    if expires <= now {
        return Err(bad("expires_at is in the past"));
    }
    if expires > now + Duration::days(MAX_SUPPRESSION_DAYS) {
        return Err(bad(format!(
            "a suppression lasts at most {MAX_SUPPRESSION_DAYS} days"
        )));
    }
    let (rule, entity, reason, author) = (
        b.rule_id.clone(),
        b.entity.clone(),
        b.reason.clone(),
        caller.name.clone(),
    );
    let rec = blocking(&state, move |s| {
        s.add_suppression(&rule, &entity, &reason, &author, expires)
    })
    .await?;
    refresh_suppressions(&state).await?;
    audit(&state, &caller.name, caller.source_ip.clone(), "suppression.created", format!("suppression:{}", rec.id),
          json!({"rule_id": rec.rule_id, "entity": rec.entity, "reason": rec.reason, "expires": rec.expires})).await?;
    Ok((StatusCode::CREATED, Json(json!(rec))).into_response())
}

pub async fn delete_suppression(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    if !blocking(&state, move |s| s.delete_suppression(id)).await? {
        return Err(not_found(format!("suppression {id}")));
    }
    refresh_suppressions(&state).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "suppression.deleted",
        format!("suppression:{id}"),
        json!({}),
    )
    .await?;
    Ok(Json(json!({"deleted": id})))
}

// ---- events and rules ---------------------------------------------------------------------------

const KNOWN_EVENT_PARAMS: &[&str] = &[
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
fn clipped(events: Vec<EventRow>) -> Vec<Value> {
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
struct RulePatch {
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

// ---- dashboard ------------------------------------------------------------------------------------

pub async fn dashboard_stats(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let s = blocking(&state, |s| s.stats()).await?;
    Ok(Json(json!({
        "events_total": s.events_total,
        "alerts_total": s.alerts_total,
        "incidents_total": s.incidents_total,
        "open_incidents": s.open_incidents,
        "alerts_by_level": s.alerts_by_level.into_iter().collect::<BTreeMap<_, _>>(),
        "alerts_by_status": s.alerts_by_status.into_iter().collect::<BTreeMap<_, _>>(),
        "events_last_24h": s.events_last_24h,
        "alerts_last_24h": s.alerts_last_24h,
        "last_event": s.last_event,
        "rules_loaded": state.rules.len(),
        "queue_events": state.metrics.queued_events.load(std::sync::atomic::Ordering::Relaxed).max(0),
        // A sink that fails does not stop ingest: it is named here and on the dashboard.
        "notifications": {
            "sinks": state.notifier.sinks.len(),
            "failing": state.notifier.failing(),
        },
    })))
}

pub async fn dashboard_trends(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let hours = num(&q, "hours", 24)?.clamp(1, 2160) as i64;
    // A bucket wider than the range is the range.
    let bucket = num(&q, "bucket", (hours as u64 * 3600 / 48).max(60))?
        .clamp(60, hours as u64 * 3600) as i64;
    let until = Utc::now();
    let since = until - Duration::hours(hours);
    let points = blocking(&state, move |s| s.trends(since, until, bucket)).await?;
    Ok(Json(
        json!({"since": since, "until": until, "bucket_secs": bucket, "points": points}),
    ))
}

pub async fn dashboard_top_threats(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let since = match q.get("hours") {
        Some(_) => Some(Utc::now() - Duration::hours(num(&q, "hours", 24)?.min(100_000) as i64)),
        None => None,
    };
    let limit = num(&q, "limit", 10)?.clamp(1, 100) as u32;
    let rules = blocking(&state, move |s| s.top_rules(since, limit)).await?;
    let items: Vec<Value> = rules
        .into_iter()
        .map(|r| {
            let meta = state.rules.rule(&r.rule_id);
            json!({"rule_id": r.rule_id, "title": r.title, "level": r.level, "alerts": r.alerts,
                   "events": r.events, "last_seen": r.last_seen,
                   "techniques": meta.map(|m| m.techniques.clone()).unwrap_or_default()})
        })
        .collect();
    Ok(Json(json!({"items": items})))
}

/// What kind of address this is, without a GeoIP database.
fn address_class(ip: &str) -> &'static str {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4))
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() =>
        {
            "private"
        }
        Ok(std::net::IpAddr::V6(v6))
            if v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 =>
        {
            "private"
        }
        Ok(_) => "public",
        Err(_) => "service", // e.g. "ec2.amazonaws.com", "AWS Internal"
    }
}

pub async fn dashboard_geo(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    let since = match q.get("hours") {
        Some(_) => Some(Utc::now() - Duration::hours(num(&q, "hours", 24)?.min(100_000) as i64)),
        None => None,
    };
    let limit = num(&q, "limit", 50)?.clamp(1, 500) as u32;
    let sources = blocking(&state, move |s| {
        s.alert_top(AlertKey::SourceIp, since, limit)
    })
    .await?;
    let items: Vec<Value> = sources
        .into_iter()
        .map(|k| json!({"source": k.key, "class": address_class(&k.key), "alerts": k.count, "country": null, "asn": null}))
        .collect();
    Ok(Json(json!({
        "items": items,
        "geoip": false,
        "note": "no GeoIP database is configured: sources are listed by address; country and ASN come with the enrichment stage",
    })))
}

pub async fn dashboard_coverage(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let hits = blocking(&state, |s| s.alert_top(AlertKey::Technique, None, u32::MAX)).await?;
    let hits: BTreeMap<String, u64> = hits.into_iter().map(|k| (k.key, k.count)).collect();
    let mut techniques: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for m in state.rules.rules() {
        for t in &m.techniques {
            let e = techniques.entry(t.clone()).or_default();
            e.0.push(m.id.clone());
            for tac in &m.tactics {
                if !e.1.contains(tac) {
                    e.1.push(tac.clone());
                }
            }
        }
    }
    let items: Vec<Value> = techniques
        .iter()
        .map(|(t, (rules, tactics))| {
            json!({"technique": t, "tactics": tactics, "rules": rules.len(), "rule_ids": rules,
                   "alerts": hits.get(t).copied().unwrap_or(0)})
        })
        .collect();
    let mut tactics: BTreeMap<String, u64> = BTreeMap::new();
    for (_, tacs) in techniques.values() {
        for t in tacs {
            *tactics.entry(t.clone()).or_default() += 1;
        }
    }
    Ok(Json(json!({
        "techniques_covered": techniques.len(),
        "techniques_alerted": hits.len(),
        "by_tactic": tactics,
        "items": items,
        "alerted_techniques": hits,
    })))
}

// ---- models ---------------------------------------------------------------------------------

fn model_name(q: &BTreeMap<String, String>, required: bool) -> ApiResult<Option<String>> {
    match q.get("model_name").map(String::as_str) {
        Some(n @ ("anomaly" | "feedback")) => Ok(Some(n.to_string())),
        Some(other) => Err(bad(format!(
            "model_name={other}: expected anomaly or feedback"
        ))),
        None if required => Err(bad("model_name is required: anomaly or feedback")),
        None => Ok(None),
    }
}

fn only_params(q: &BTreeMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "unknown query parameter {k}; known: {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

pub async fn list_models(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    only_params(&q, &["model_name"])?;
    let name = model_name(&q, false)?;
    let items = blocking(&state, move |s| s.models(name.as_deref())).await?;
    let l = &state.learning;
    Ok(Json(json!({
        "items": items,
        "active": {
            "anomaly": l.anomaly().map(|a| a.id),
            "feedback": l.feedback().map(|a| a.id),
        },
        "training": crate::learning::MODEL_NAMES.iter().filter(|n| l.is_training(n)).collect::<Vec<_>>(),
        "schema_version": cloudsentinel_learn::behaviour::SCHEMA_VERSION,
        "anomaly_scoring": l.enabled,
    })))
}

pub async fn model_schema() -> Json<Value> {
    Json(cloudsentinel_learn::anomaly::feature_schema())
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let m = blocking(&state, move |s| s.model(id, false))
        .await?
        .ok_or_else(|| not_found(format!("model {id}")))?;
    Ok(Json(json!(m)))
}

pub async fn train_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Response> {
    only_params(&q, &["model_name", "since", "until", "activate"])?;
    let name = model_name(&q, true)?.unwrap_or_default();
    let window = (time_param(&q, "since")?, time_param(&q, "until")?);
    if let (Some(a), Some(b)) = window
        && a >= b
    {
        return Err(bad("since must be before until"));
    }
    let activate = match q.get("activate").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(bad(format!("activate={v}: expected true or false"))),
    };
    if name == "anomaly" && !state.learning.enabled {
        return Err(ApiError::Conflict(
            "anomaly scoring is off (detection.anomaly = false): turn it on to train an anomaly model".into(),
        ));
    }
    let (store, learning, by) = (
        Arc::clone(&state.store),
        Arc::clone(&state.learning),
        caller.name.clone(),
    );
    let n = name.clone();
    let rec = tokio::task::spawn_blocking(move || {
        crate::learning::start_training(store, learning, &n, &by, window, activate)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| match e {
        crate::learning::StartError::UnknownName(n) => bad(format!("unknown model name {n}")),
        crate::learning::StartError::Busy(m) => ApiError::Conflict(m),
        crate::learning::StartError::Store(e) => e.into(),
    })?;
    audit(&state, &caller.name, caller.source_ip.clone(), "model.train", format!("model:{}", rec.id),
          json!({"name": name, "version": rec.version, "since": window.0, "until": window.1, "activate": activate})).await?;
    Ok((StatusCode::ACCEPTED, Json(json!(rec))).into_response())
}

pub async fn activate_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    let (store, learning) = (Arc::clone(&state.store), Arc::clone(&state.learning));
    let m = tokio::task::spawn_blocking(move || {
        crate::learning::activate_and_install(store.as_ref(), &learning, id)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| match e.downcast::<cloudsentinel_store::StoreError>() {
        Ok(s) => ApiError::from(s),
        Err(e) => ApiError::Conflict(format!("{e:#}")),
    })?
    .ok_or_else(|| not_found(format!("model {id}")))?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "model.activate",
        format!("model:{id}"),
        json!({"name": m.name, "version": m.version}),
    )
    .await?;
    Ok(Json(json!(m)))
}

pub async fn rollback_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    only_params(&q, &["model_name"])?;
    let name = model_name(&q, true)?.unwrap_or_default();
    let (store, learning) = (Arc::clone(&state.store), Arc::clone(&state.learning));
    let n = name.clone();
    let (from, to) = tokio::task::spawn_blocking(
        move || -> anyhow::Result<(Option<i64>, Option<cloudsentinel_store::ModelRecord>)> {
            let models = store.models(Some(&n))?;
            let current = models.iter().find(|m| m.active).map(|m| m.id);
            // The model activated most recently before the current one.
            let previous = models
                .iter()
                .filter(|m| !m.active && m.status == "ready" && m.activated.is_some())
                .max_by_key(|m| m.activated)
                .map(|m| m.id);
            match previous {
                Some(p) => Ok((
                    current,
                    crate::learning::activate_and_install(store.as_ref(), &learning, p)?,
                )),
                None => {
                    store.deactivate_models(&n)?;
                    learning.remove(&n);
                    Ok((current, None))
                }
            }
        },
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(ApiError::Internal)?;
    if from.is_none() && to.is_none() {
        return Err(ApiError::Conflict(format!(
            "no {name} model is active: nothing to roll back"
        )));
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "model.rollback",
        format!("model:{}", from.unwrap_or(0)),
        json!({"name": name, "from": from, "to": to.as_ref().map(|m| m.id)}),
    )
    .await?;
    Ok(Json(json!({
        "name": name,
        "deactivated": from,
        "active": to,
        "note": if to.is_none() { format!("no earlier {name} model was ever active: none is active now") } else { String::new() },
    })))
}

// ---- notifications --------------------------------------------------------------------------

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

const KNOWN_DELIVERY_PARAMS: [&str; 5] = ["sink", "alert", "status", "limit", "offset"];

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
