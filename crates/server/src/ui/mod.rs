//! The analyst's dashboard: server-rendered HTML pages under `/ui`, behind the same users and
//! roles as the API.
//!
//! - **Sessions**: signing in at `/ui/login` puts the API's access and refresh tokens in
//!   `HttpOnly`, `SameSite=Strict` cookies scoped to `/ui`. Every page checks the access token
//!   exactly as the API checks a bearer token ([`crate::routes::user_caller`]); when it has
//!   expired, the refresh token renews both on the way. Logout revokes every token of the user.
//! - **Actions** are plain HTML forms posted to `/ui/...`. Each carries a form token tied to the
//!   user's token version (void after logout) and is refused if the request comes from another
//!   origin. The action runs the API's own handler, so validation, audit entries and live
//!   updates are the API's, and it is allowed only when the user's role may call that API route
//!   ([`Session::can`]); a button the role may not use is not drawn.
//! - **Live**: `/ui/live` is a server-sent event stream of new and changed alerts; the small
//!   script re-fetches the page and swaps its live regions.
//! - Nothing is loaded from elsewhere: one stylesheet and one script, served from the binary, and
//!   a Content-Security-Policy that allows only them.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use cloudsentinel_alert::AlertStatus;
use cloudsentinel_core::Level;
use maud::{DOCTYPE, Markup, html};

use crate::AppState;
use crate::auth::{Caller, Role};
use crate::error::ApiError;
use crate::routes::{ClientAddr, Op};

// One module per page (and its actions); `map` and `attack` are shared pieces.
mod alert;
mod attack;
mod audit;
mod coverage;
mod entity;
mod events;
mod incidents;
mod map;
mod models;
mod notifications;
mod overview;
mod queue;
mod rules;
mod settings;
mod sources;
mod users;

/// A page's query parameters.
type Q = axum::extract::Query<BTreeMap<String, String>>;

/// An API error as a page in the frame.
fn fail(s: &Session, e: ApiError) -> Response {
    error_page(s, e)
}

/// One stylesheet and one script, each written as a shared part and a part per area of the
/// dashboard (search, entities, alerts and queue, overview and rules), served as one file.
const CSS: &str = concat!(
    include_str!("../../assets/ui.css"),
    include_str!("../../assets/ui-search.css"),
    include_str!("../../assets/ui-entity.css"),
    include_str!("../../assets/ui-alert.css"),
    include_str!("../../assets/ui-overview.css"),
);
const JS: &str = concat!(
    include_str!("../../assets/ui.js"),
    include_str!("../../assets/ui-search.js"),
    include_str!("../../assets/ui-entity.js"),
    include_str!("../../assets/ui-alert.js"),
    include_str!("../../assets/ui-overview.js"),
);

/// Changes with the stylesheet and script, so that browsers fetch new ones after an upgrade
/// (they are cached for an hour).
const ASSETS_VERSION: u64 = cloudsentinel_core::hash::fnv1a(CSS.as_bytes())
    ^ cloudsentinel_core::hash::fnv1a(JS.as_bytes()).rotate_left(1);

/// The signed-in user of a dashboard request.
#[derive(Clone)]
pub struct Session {
    pub caller: Caller,
    pub role: Role,
    /// The form token every POST must carry.
    pub csrf: String,
    pub theme: &'static str,
    /// `utc`, or `local`: the script shows times in the browser's time zone.
    pub tz: &'static str,
    /// A one-shot message from the previous action.
    pub flash: Option<String>,
}

impl Session {
    /// Whether this user's role may call the API route of `op` (its `need` in
    /// [`ROUTES`](crate::routes::ROUTES)). Buttons and actions of the dashboard follow the API's
    /// table.
    pub fn can(&self, op: Op) -> bool {
        self.caller.may(op.spec().need)
    }

    #[allow(clippy::result_large_err)] // a response, returned as is
    fn require(&self, op: Op) -> Result<(), Response> {
        if self.can(op) {
            return Ok(());
        }
        Err(error_page(
            self,
            ApiError::Forbidden(format!(
                "{} has the {} role, which may not do this",
                self.caller.name,
                self.role.as_str()
            )),
        ))
    }
}

pub fn router(state: AppState) -> Router<AppState> {
    let pages = Router::new()
        .route("/ui", get(overview::overview))
        .route("/ui/", get(overview::overview))
        .route("/ui/logout", post(logout))
        .route("/ui/session", get(session_info))
        .route("/ui/live", get(live))
        .route("/ui/alerts", get(queue::alerts))
        .route("/ui/alerts/bulk", post(queue::alerts_bulk))
        .route(
            "/ui/alerts/{id}",
            get(alert::alert).post(alert::alert_update),
        )
        .route("/ui/alerts/{id}/feedback", post(alert::alert_feedback))
        .route("/ui/alerts/{id}/respond", post(alert::alert_respond))
        .route("/ui/alerts/{id}/suppress", post(alert::alert_suppress))
        .route("/ui/suppressions/{id}", post(rules::suppression_delete))
        .route("/ui/incidents", get(incidents::incidents))
        .route(
            "/ui/incidents/{id}",
            get(incidents::incident).post(incidents::incident_update),
        )
        .route("/ui/events", get(events::events))
        .route("/ui/events.csv", get(events::events_csv))
        .route("/ui/events/raw", get(events::event_raw))
        .route("/ui/rules", get(rules::rules))
        .route("/ui/rules/{id}", post(rules::rule_toggle))
        .route("/ui/coverage", get(coverage::coverage))
        .route(
            "/ui/models",
            get(models::models).post(models::models_action),
        )
        .route("/ui/audit", get(audit::audit))
        .route("/ui/sources", get(sources::sources))
        .route(
            "/ui/notifications",
            get(notifications::notifications).post(notifications::notifications_action),
        )
        .route("/ui/users", get(users::users).post(users::users_action))
        .route(
            "/ui/settings",
            get(settings::settings).post(settings::settings_action),
        )
        .route("/ui/{*rest}", get(not_found))
        .merge(events::routes())
        .merge(entity::routes())
        .merge(alert::routes())
        .merge(rules::routes())
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            signed_in,
        ));
    Router::new()
        .route("/ui/login", get(login_page).post(login))
        .route(
            "/ui/static/ui.css",
            get(|| async { asset(CSS, "text/css") }),
        )
        .route(
            "/ui/static/ui.js",
            get(|| async { asset(JS, "text/javascript") }),
        )
        .merge(pages)
        .layer(middleware::from_fn(headers))
}

fn asset(body: &'static str, kind: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "public, max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// Security headers on every dashboard response. Behind a TLS-terminating proxy that says so
/// (`X-Forwarded-Proto: https`), cookies are also marked `Secure`.
async fn headers(req: Request, next: Next) -> Response {
    let https = req
        .headers()
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    if https {
        let cookies: Vec<HeaderValue> = h
            .get_all(header::SET_COOKIE)
            .iter()
            .filter_map(|c| c.to_str().ok())
            .filter_map(|c| HeaderValue::from_str(&format!("{c}; Secure")).ok())
            .collect();
        h.remove(header::SET_COOKIE);
        for c in cookies {
            h.append(header::SET_COOKIE, c);
        }
    }
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(
        header::REFERRER_POLICY,
        HeaderValue::from_static("same-origin"),
    );
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

// ---- sessions --------------------------------------------------------------------------------

const ACCESS_COOKIE: &str = "cs_at";
const REFRESH_COOKIE: &str = "cs_rt";
const FLASH_COOKIE: &str = "cs_flash";

fn cookies(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for v in headers.get_all(header::COOKIE) {
        let Ok(v) = v.to_str() else { continue };
        for part in v.split(';') {
            if let Some((k, val)) = part.trim().split_once('=') {
                out.insert(k.to_string(), val.to_string());
            }
        }
    }
    out
}

fn cookie(name: &str, value: &str, max_age: Option<i64>) -> HeaderValue {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    HeaderValue::from_str(&format!(
        "{name}={value}; Path=/ui; HttpOnly; SameSite=Strict{age}"
    ))
    .expect("cookie values are token characters")
}

fn token_cookies(state: &AppState, tokens: &crate::api::Tokens) -> Vec<HeaderValue> {
    let age = Some(state.config.config.auth.refresh_token_secs);
    vec![
        cookie(ACCESS_COOKIE, &tokens.access_token, age),
        cookie(REFRESH_COOKIE, &tokens.refresh_token, age),
    ]
}

fn client_addr(state: &AppState, req: &Request) -> Option<String> {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    crate::routes::client_ip(state, req.headers(), peer)
}

/// Whether the request comes from a page of ours (fetch or EventSource) rather than a
/// navigation: those get a 401 to act on, not a redirect to the sign-in page.
fn is_script(req: &Request) -> bool {
    req.headers().contains_key("x-requested-with")
        || req
            .headers()
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("text/event-stream"))
}

/// A request that would change something must come from our own pages.
fn same_origin(headers: &HeaderMap) -> bool {
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    match (headers.get(header::ORIGIN), host) {
        (None, _) => true, // not sent by every browser on same-origin form posts
        (Some(o), Some(host)) => o
            .to_str()
            .ok()
            .and_then(|o| o.split_once("://").map(|(_, rest)| rest == host))
            .unwrap_or(false),
        (Some(_), None) => false,
    }
}

async fn signed_in(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let addr = client_addr(&state, &req);
    let jar = cookies(req.headers());
    let mut renewed = Vec::new();
    let mut found = None;
    if let Some(at) = jar.get(ACCESS_COOKIE) {
        found = crate::routes::user_caller(&state, at, addr.clone())
            .await
            .ok();
    }
    if found.is_none()
        && let Some(rt) = jar.get(REFRESH_COOKIE)
        && let Ok(axum::Json(tokens)) = crate::api::refresh(
            State(Arc::clone(&state)),
            Bytes::from(serde_json::json!({ "refresh_token": rt }).to_string()),
        )
        .await
    {
        found = crate::routes::user_caller(&state, &tokens.access_token, addr.clone())
            .await
            .ok();
        renewed = token_cookies(&state, &tokens);
    }
    let Some((caller, claims)) = found else {
        let had_session = jar.contains_key(ACCESS_COOKIE) || jar.contains_key(REFRESH_COOKIE);
        if is_script(&req) {
            return ApiError::Unauthorized("signed out: sign in again".into()).into_response();
        }
        let next = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/ui".into());
        let mut to = format!("/ui/login?next={}", urlenc(&next));
        if had_session {
            to.push_str("&expired=1");
        }
        let mut resp = Redirect::to(&to).into_response();
        if had_session {
            clear_session(&mut resp);
        }
        return resp;
    };
    if req.method() != Method::GET && !same_origin(req.headers()) {
        return ApiError::Forbidden("cross-origin form post refused".into()).into_response();
    }
    let Some(role) = caller.role else {
        return ApiError::Forbidden("no role".into()).into_response();
    };
    req.extensions_mut().insert(ClientAddr(addr));
    let flash = jar
        .get(FLASH_COOKIE)
        .map(|f| urldec(f))
        .filter(|f| !f.is_empty());
    let session = Session {
        csrf: state.tokens.csrf(&claims),
        theme: theme(&jar),
        tz: time_zone(&jar),
        flash: flash.clone(),
        role,
        caller,
    };
    req.extensions_mut().insert(session);
    let mut resp = next.run(req).await;
    for c in renewed {
        resp.headers_mut().append(header::SET_COOKIE, c);
    }
    // A flash is shown once: by the page that rendered it, not by a redirect.
    if flash.is_some() && resp.status() == StatusCode::OK {
        resp.headers_mut()
            .append(header::SET_COOKIE, cookie(FLASH_COOKIE, "", Some(0)));
    }
    resp
}

fn clear_session(resp: &mut Response) {
    for name in [ACCESS_COOKIE, REFRESH_COOKIE] {
        resp.headers_mut()
            .append(header::SET_COOKIE, cookie(name, "", Some(0)));
    }
}

fn time_zone(jar: &BTreeMap<String, String>) -> &'static str {
    match jar.get("cs_tz").map(String::as_str) {
        Some("local") => "local",
        _ => "utc",
    }
}

fn theme(jar: &BTreeMap<String, String>) -> &'static str {
    match jar.get("cs_theme").map(String::as_str) {
        Some("dark") => "dark",
        _ => "light",
    }
}

/// Redirects back after an action, with a message for the next page.
fn done(to: &str, message: impl AsRef<str>) -> Response {
    let mut resp = Redirect::to(to).into_response();
    resp.headers_mut().append(
        header::SET_COOKIE,
        cookie(FLASH_COOKIE, &urlenc(message.as_ref()), Some(60)),
    );
    resp
}

/// The fields of a posted form, after checking its form token.
#[allow(clippy::result_large_err)] // a response, returned as is
fn form(session: &Session, body: &Bytes) -> Result<Vec<(String, String)>, Response> {
    if body.len() > 64 * 1024 {
        return Err(crate::error::bad("form larger than 64 KiB").into_response());
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
        .map_err(|e| crate::error::bad(format!("form: {e}")).into_response())?;
    let token = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v);
    if token != Some(&session.csrf) {
        return Err(ApiError::Forbidden(
            "the form is stale (signed out since it was shown): reload the page".into(),
        )
        .into_response());
    }
    Ok(fields)
}

/// The fields of a form that asks for the API operation `op`: its form token checked and the
/// user's role allowed to.
#[allow(clippy::result_large_err)] // a response, returned as is
fn action_form(s: &Session, body: &Bytes, op: Op) -> Result<Vec<(String, String)>, Response> {
    let fields = form(s, body)?;
    s.require(op)?;
    Ok(fields)
}

/// Back to `to`, saying how an API call went.
fn outcome<T>(to: &str, r: Result<T, ApiError>, ok: impl FnOnce(T) -> String) -> Response {
    match r {
        Ok(v) => done(to, ok(v)),
        Err(e) => done(to, format!("error: {}", error_text(e).1)),
    }
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> Option<&'a str> {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The status and message of an API error, for a page or a flash.
fn error_text(e: ApiError) -> (StatusCode, String) {
    let (status, _, message, _) = e.parts();
    (status, message)
}

/// An error as a page in the frame, with its status.
pub fn error_page(s: &Session, e: ApiError) -> Response {
    let (status, msg) = error_text(e);
    let body = html! {
        h1 { (status.as_u16()) " " (status.canonical_reason().unwrap_or("")) }
        div.flash.error role="alert" { (msg) }
        p { a href="/ui" { "Overview" } " · " a href="/ui/alerts" { "Alerts" } }
    };
    let mut resp = page(
        s,
        status.canonical_reason().unwrap_or("Error"),
        Nav::None,
        None,
        body,
    );
    *resp.status_mut() = status;
    resp
}

/// A dashboard address that names no page: a 404 in the frame, nothing highlighted.
async fn not_found(axum::Extension(s): axum::Extension<Session>, uri: axum::http::Uri) -> Response {
    error_page(
        &s,
        ApiError::NotFound(format!("there is no page at {}", uri.path())),
    )
}

// ---- sign in and out -------------------------------------------------------------------------

async fn login_page(headers: HeaderMap, uri: axum::http::Uri) -> Response {
    let q: BTreeMap<String, String> =
        serde_urlencoded::from_str(uri.query().unwrap_or("")).unwrap_or_default();
    let note = if q.contains_key("expired") {
        Some((
            "Your session has expired or was ended. Sign in again.",
            false,
        ))
    } else if q.contains_key("signed_out") {
        Some(("You are signed out.", false))
    } else {
        None
    };
    let next = q.get("next").cloned().unwrap_or_default();
    login_form(theme(&cookies(&headers)), &next, note, "", StatusCode::OK)
}

fn login_form(
    theme: &str,
    next: &str,
    note: Option<(&str, bool)>,
    username: &str,
    status: StatusCode,
) -> Response {
    let html = html! {
        (DOCTYPE)
        html lang="en" data-theme=(theme) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { "Sign in · CloudSentinel" }
                link rel="stylesheet" href=(asset_url("ui.css"));
            }
            body {
                main.login {
                    div.panel {
                        h1 { span.brand { "Cloud" span { "Sentinel" } } }
                        @if let Some((text, error)) = note { (flash(text, error)) }
                        form method="post" action="/ui/login" {
                            input type="hidden" name="next" value=(next);
                            label { "User name" input type="text" name="username" id="username"
                                autocomplete="username" required autofocus value=(username); }
                            label { "Password" input type="password" name="password" id="password"
                                autocomplete="current-password" required; }
                            button.primary type="submit" id="sign-in" { "Sign in" }
                        }
                    }
                    p.muted.small {
                        "Same accounts and roles as the API. " a href="/docs" { "API documentation" }
                    }
                }
            }
        }
    };
    (status, axum::response::Html(html.into_string())).into_response()
}

fn safe_next(next: &str) -> &str {
    if next.starts_with("/ui") && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/ui"
    }
}

async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    // Login CSRF: another site must not sign a browser in to an account of its choosing.
    if !same_origin(&headers) {
        return ApiError::Forbidden("cross-origin form post refused".into()).into_response();
    }
    let fields: Vec<(String, String)> = serde_urlencoded::from_bytes(&body).unwrap_or_default();
    let username = field(&fields, "username").unwrap_or("").to_string();
    let next = safe_next(field(&fields, "next").unwrap_or("/ui")).to_string();
    let th = theme(&cookies(&headers));
    // The API's sign-in reads the same form (and ignores `next`).
    match crate::api::login(
        State(Arc::clone(&state)),
        axum::Extension(ClientAddr(crate::routes::client_ip(
            &state,
            &headers,
            Some(peer.ip()),
        ))),
        headers,
        body,
    )
    .await
    {
        Ok(axum::Json(tokens)) => {
            let mut resp = Redirect::to(&next).into_response();
            for c in token_cookies(&state, &tokens) {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => {
            let (status, msg) = error_text(e);
            login_form(th, &next, Some((&msg, true)), &username, status)
        }
    }
}

async fn logout(
    State(state): State<AppState>,
    axum::Extension(s): axum::Extension<Session>,
    body: Bytes,
) -> Response {
    if let Err(r) = form(&s, &body) {
        return r;
    }
    let _ = crate::api::logout(State(state), axum::Extension(s.caller.clone())).await;
    let mut resp = Redirect::to("/ui/login?signed_out=1").into_response();
    clear_session(&mut resp);
    resp
}

/// Who is signed in (the script's way to renew the session when the live stream ends).
async fn session_info(axum::Extension(s): axum::Extension<Session>) -> Response {
    axum::Json(serde_json::json!({"username": s.caller.name, "role": s.role})).into_response()
}

// ---- live stream ---------------------------------------------------------------------------------

/// New and changed alerts as server-sent events, until the access token expires or the server
/// shuts down (the script reconnects, renewing the session).
async fn live(
    State(state): State<AppState>,
    axum::Extension(_): axum::Extension<Session>,
) -> Response {
    use axum::response::sse::{Event, KeepAlive, Sse};
    let ttl =
        std::time::Duration::from_secs(state.config.config.auth.access_token_secs.max(1) as u64);
    let deadline = tokio::time::Instant::now() + ttl;
    let rx = state.live.subscribe();
    let closing = state.closing.subscribe();
    let stream =
        futures_util::stream::unfold((rx, closing), move |(mut rx, mut closing)| async move {
            if *closing.borrow() {
                return None;
            }
            tokio::select! {
                _ = tokio::time::sleep_until(deadline) => None,
                _ = closing.changed() => None,
                got = rx.recv() => {
                    let data = match got {
                        Ok(a) => serde_json::json!({
                            "id": a.id, "title": a.title, "level": a.level, "entity": a.entity,
                            "status": a.status, "count": a.count,
                            "new": a.created == a.updated,
                        }),
                        // Missed some: the page refreshes all the same.
                        Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            serde_json::json!({"lagged": true})
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
                    };
                    let ev = Event::default().event("alert").data(data.to_string());
                    Some((Ok::<_, std::convert::Infallible>(ev), (rx, closing)))
                }
            }
        });
    Sse::new(stream)
        .keep_alive(KeepAlive::default())
        .into_response()
}

// ---- rendering -------------------------------------------------------------------------------------

pub fn urlenc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn urldec(s: &str) -> String {
    serde_urlencoded::from_str::<Vec<(String, String)>>(&format!("v={s}"))
        .ok()
        .and_then(|v| v.into_iter().next().map(|(_, v)| v))
        .unwrap_or_default()
}

/// What a value on a page stands for: each kind has a page of its own (`/ui/entity/<kind>`) with
/// its events, alerts and incidents, and a field in the events search.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    Principal,
    Ip,
    Account,
    Resource,
    /// An autonomous system, by number.
    As,
}

impl Kind {
    pub const ALL: [Kind; 5] = [
        Kind::Principal,
        Kind::Ip,
        Kind::Account,
        Kind::Resource,
        Kind::As,
    ];

    /// Its name in URLs and its field in the events search (`ip:203.0.113.9`).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Principal => "principal",
            Kind::Ip => "ip",
            Kind::Account => "account",
            Kind::Resource => "resource",
            Kind::As => "as",
        }
    }

    pub fn parse(s: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// The page of an entity: `/ui/entity/ip?v=203.0.113.9`.
pub fn entity_url(kind: Kind, value: &str) -> String {
    format!("/ui/entity/{}?v={}", kind.as_str(), urlenc(value))
}

/// One term of the events search language: `field:value`, the value quoted when it holds a
/// space, a quote or nothing (`principal:"a b"`, inner quotes and backslashes escaped).
pub fn search_term(field: &str, value: &str) -> String {
    if !value.is_empty() && !value.contains([' ', '"', '\\', '\t']) {
        return format!("{field}:{value}");
    }
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{field}:\"{escaped}\"")
}

/// The events page searching for one value: `/ui/events?q=ip%3A203.0.113.9`.
pub fn search_url(field: &str, value: &str) -> String {
    format!("/ui/events?q={}", urlenc(&search_term(field, value)))
}

/// A value as a link to its entity page (where its events, alerts and incidents are).
pub fn pivot(kind: Kind, value: &str) -> Markup {
    html! {
        a.pv href=(entity_url(kind, value)) title={ "Everything about " (value) } { (value) }
    }
}

/// "1 alert", "2 alerts".
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// `2026-11-22 14:03:27Z`.
pub fn when(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%SZ").to_string()
}

/// "4 min", "3 h", "2 d" before now.
pub fn age(t: &DateTime<Utc>) -> String {
    in_words((Utc::now() - *t).num_seconds())
}

/// A length of time in its largest whole unit: "40 s", "4 min", "3 h", "2 d" (none below 0).
pub fn in_words(secs: i64) -> String {
    let s = secs.max(0);
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h", s / 3600),
        _ => format!("{} d", s / 86_400),
    }
}

/// A time as the API writes it: `2026-11-22T14:03:27.123Z`.
pub fn rfc3339(t: &DateTime<Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
}

/// A time written out (`2026-11-22 14:03:27Z`, or in the browser's time zone when the user chose
/// that in the settings: the script rewrites `time.abs`).
pub fn at(t: &DateTime<Utc>) -> Markup {
    html! { time.abs datetime=(rfc3339(t)) { (when(t)) } }
}

/// A time with its age, for tables.
pub fn time_cell(t: &DateTime<Utc>) -> Markup {
    html! { time datetime=(t.to_rfc3339()) title=(when(t)) { (age(t)) " ago" } }
}

pub fn level_badge(l: Level) -> Markup {
    html! { span class={ "lvl " (l.as_str()) } { (l.as_str()) } }
}

pub fn status_badge(s: AlertStatus) -> Markup {
    html! { span class={ "st " (s.as_str()) } { (s.as_str()) } }
}

/// ATT&CK technique ids as links to the technique's page at MITRE, with its name as the title.
pub fn technique_tags(ids: &[String]) -> Markup {
    html! {
        @for t in ids {
            a.tag href=(attack::url(t)) title=(attack::name(t).unwrap_or(""))
                rel="noopener noreferrer" target="_blank" { (t) }
        }
    }
}

/// The CSRF hidden field.
pub fn csrf_field(s: &Session) -> Markup {
    html! { input type="hidden" name="csrf" value=(s.csrf); }
}

/// A one-shot message: an error (`role=alert`) or a status.
pub fn flash(text: &str, error: bool) -> Markup {
    html! {
        div.flash.error[error] role=(if error { "alert" } else { "status" }) id="flash" { (text) }
    }
}

/// Which entry of the side navigation a page belongs to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// Error pages and pages outside the navigation: nothing is highlighted.
    None,
    Overview,
    Alerts,
    Incidents,
    Events,
    Rules,
    Coverage,
    Models,
    Sources,
    Audit,
    Notifications,
    Users,
    Settings,
}

/// Where the stylesheet or script is, with the version that busts caches after an upgrade.
fn asset_url(name: &str) -> String {
    format!("/ui/static/{name}?v={ASSETS_VERSION:x}")
}

/// A whole page: frame, navigation for this role, and `body`. `live` names what the live
/// stream refreshes (regions marked `data-region`), if anything.
pub fn page(s: &Session, title: &str, nav: Nav, live: Option<&str>, body: Markup) -> Response {
    let mut links = vec![
        (Nav::Overview, "/ui", "Overview"),
        (Nav::Alerts, "/ui/alerts", "Alerts"),
        (Nav::Incidents, "/ui/incidents", "Incidents"),
        (Nav::Events, "/ui/events", "Events"),
        (Nav::Rules, "/ui/rules", "Rules"),
        (Nav::Coverage, "/ui/coverage", "ATT&CK coverage"),
        (Nav::Models, "/ui/models", "Models"),
    ];
    if s.can(Op::ListSources) {
        links.push((Nav::Sources, "/ui/sources", "Sources"));
    }
    if s.can(Op::ListNotifiers) {
        links.push((Nav::Notifications, "/ui/notifications", "Notifications"));
    }
    if s.can(Op::ReadAudit) {
        links.push((Nav::Audit, "/ui/audit", "Audit log"));
    }
    if s.can(Op::ListUsers) {
        links.push((Nav::Users, "/ui/users", "Users & API keys"));
    }
    links.push((Nav::Settings, "/ui/settings", "Settings"));
    let html = html! {
        (DOCTYPE)
        html lang="en" data-theme=(s.theme) data-tz=(s.tz) {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · CloudSentinel" }
                link rel="stylesheet" href=(asset_url("ui.css"));
                script src=(asset_url("ui.js")) defer {}
            }
            body data-live=[live] {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/ui" { "Cloud" span { "Sentinel" } }
                    @if live.is_some() {
                        span.live id="live" role="status" title="Live updates: this page follows new and changed alerts" {
                            "Live updates: connecting"
                        }
                    }
                    span.spacer {}
                    span.who {
                        span.prefix { "Signed in as " } strong id="whoami" { (s.caller.name) } " "
                        span.role id="role" { (s.role.as_str()) }
                    }
                    button type="button" id="keys" aria-haspopup="dialog"
                        title="Keyboard shortcuts (press ?)" { "Keys" }
                    button type="button" id="theme" aria-pressed=(s.theme == "dark")
                        title="Switch between light and dark" { "Theme" }
                    form.inline method="post" action="/ui/logout" {
                        (csrf_field(s))
                        button type="submit" id="logout" { "Sign out" }
                    }
                }
                div.frame {
                    nav.side aria-label="Pages" {
                        @for (i, (n, href, label)) in links.iter().enumerate() {
                            @if i == 6 { div.sep role="separator" {} }
                            a href=(href) aria-current=[(*n == nav).then_some("page")] { (label) }
                        }
                    }
                    main id="main" tabindex="-1" {
                        @if let Some(f) = &s.flash {
                            (flash(f.trim_start_matches("error:").trim(), f.starts_with("error:")))
                        }
                        (body)
                    }
                }
                div.toast id="toast" role="status" aria-live="polite" hidden {}
            }
        }
    };
    axum::response::Html(html.into_string()).into_response()
}

/// Previous / next links for a paged list. `base` is the page's query without `offset`.
pub fn pager(path: &str, base: &str, total: u64, offset: u64, limit: u64) -> Markup {
    let sep = if base.is_empty() { "" } else { "&" };
    let last = (offset + limit).min(total);
    html! {
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a.button rel="prev" href={ (path) "?" (base) (sep) "offset=" (offset.saturating_sub(limit)) } { "← Newer" }
            }
            span.muted { (if total == 0 { 0 } else { offset + 1 }) "–" (last) " of " (total) }
            @if last < total {
                a.button rel="next" href={ (path) "?" (base) (sep) "offset=" (offset + limit) } { "Older →" }
            }
        }
    }
}

/// Horizontal bars for a top-N list: (label, count).
pub fn bars(items: &[(Markup, u64)]) -> Markup {
    let max = items.iter().map(|i| i.1).max().unwrap_or(1).max(1);
    html! {
        @if items.is_empty() {
            p.empty { "Nothing yet." }
        } @else {
            ul.bars {
                @for (label, n) in items {
                    li {
                        span.lab { (label) }
                        span.num { (n) }
                        svg viewBox="0 0 100 4" preserveAspectRatio="none" aria-hidden="true" {
                            rect width=(format!("{:.1}", (*n as f64 / max as f64 * 100.0).max(0.5))) height="4" {}
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_urls_encoded() {
        let hostile = "<a href=\"x\">'&'</a>";
        let shown = flash(hostile, true).into_string();
        assert!(
            shown.contains("&lt;a href=&quot;x&quot;&gt;'&amp;'&lt;/a&gt;"),
            "{shown}"
        );
        assert!(!shown.contains("<a"), "{shown}");
        assert_eq!(urlenc("a b&c=/ü"), "a%20b%26c%3D%2F%C3%BC");
        assert_eq!(urldec(&urlenc("alert 4 closed: ok")), "alert 4 closed: ok");
    }

    #[test]
    fn only_local_dashboard_paths_are_followed_after_sign_in() {
        assert_eq!(
            safe_next("/ui/alerts?status=open"),
            "/ui/alerts?status=open"
        );
        assert_eq!(safe_next("//evil.example/ui"), "/ui");
        assert_eq!(safe_next("https://evil.example/ui"), "/ui");
        assert_eq!(safe_next("/api/v1/users"), "/ui");
        assert_eq!(safe_next("/ui\\..\\x"), "/ui");
    }

    #[test]
    fn search_terms_quote_what_would_split_them() {
        assert_eq!(search_term("ip", "203.0.113.9"), "ip:203.0.113.9");
        assert_eq!(search_term("principal", "a b"), r#"principal:"a b""#);
        assert_eq!(search_term("resource", r#"x"y\z"#), r#"resource:"x\"y\\z""#);
        assert_eq!(search_term("as", ""), r#"as:"""#);
        assert_eq!(
            entity_url(Kind::Principal, "arn:aws:iam::1:user/a b"),
            "/ui/entity/principal?v=arn%3Aaws%3Aiam%3A%3A1%3Auser%2Fa%20b"
        );
        assert!(
            Kind::ALL
                .iter()
                .all(|k| Kind::parse(k.as_str()) == Some(*k))
        );
    }

    #[test]
    fn pager_links_step_by_the_page_size() {
        let p = pager("/ui/alerts", "status=open", 120, 50, 50).into_string();
        assert!(p.contains("offset=0\">← Newer"), "{p}");
        assert!(p.contains("offset=100\">Older →"), "{p}");
        assert!(p.contains("51–100 of 120"), "{p}");
        let last = pager("/ui/alerts", "", 120, 100, 50).into_string();
        assert!(!last.contains("Older"), "{last}");
    }
}
