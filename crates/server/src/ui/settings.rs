//! Settings: the signed-in user (theme, password) and how the service is configured.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde_json::json;

use super::{Nav, Session, csrf_field, done, error_text, field, form, page, time_cell};
use crate::{AppState, api};

pub(super) async fn settings(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    let c = &state.config.config;
    let body = html! {
        h1 { "Settings" }
        div.grid {
            section.panel {
                h2 { "You" }
                dl.kv {
                    dt { "User" } dd { (s.caller.name) }
                    dt { "Role" } dd { (s.role.as_str()) }
                    dt { "Session" }
                    dd {
                        "renewed while you use it; ends " (c.auth.refresh_token_secs / 3600)
                        " hours after your last sign-in, or when you sign out"
                    }
                }
                h3 { "Theme" }
                form method="post" action="/ui/settings" class="row" {
                    (csrf_field(&s))
                    input type="hidden" name="action" value="theme";
                    label.check {
                        input type="radio" name="theme" value="light" checked[s.theme == "light"];
                        " light"
                    }
                    label.check {
                        input type="radio" name="theme" value="dark" checked[s.theme == "dark"];
                        " dark"
                    }
                    button type="submit" { "Save" }
                }
                h3 { "Time zone" }
                form method="post" action="/ui/settings" class="row" id="tz-form" {
                    (csrf_field(&s))
                    input type="hidden" name="action" value="tz";
                    label.check {
                        input type="radio" name="tz" value="utc" checked[s.tz == "utc"];
                        " UTC"
                    }
                    label.check {
                        input type="radio" name="tz" value="local" checked[s.tz == "local"];
                        " this browser's time zone"
                        span.muted id="browser-tz" {}
                    }
                    button type="submit" { "Save" }
                }
                p.muted.small {
                    "Times written out on every page follow this; the API and exports always use UTC."
                }
                h3 { "Change password" }
                form method="post" action="/ui/settings" class="filters" {
                    (csrf_field(&s))
                    input type="hidden" name="action" value="password";
                    label {
                        "Current"
                        input type="password" name="current_password" required
                            autocomplete="current-password";
                    }
                    label {
                        "New (12+)"
                        input type="password" name="new_password" required minlength="12"
                            autocomplete="new-password";
                    }
                    button type="submit" { "Change" }
                }
            }
            section.panel {
                h2 { "Service" }
                dl.kv {
                    dt { "Version" } dd { (env!("CARGO_PKG_VERSION")) }
                    dt { "Started" } dd { (time_cell(&state.started)) }
                    dt { "Rules loaded" } dd { (state.rules.len()) }
                    dt { "Behaviour scoring" }
                    dd { @if state.learning.enabled { "on" } @else { "off" } }
                    dt { "Address table" } dd { (state.learning.netdb_source) }
                    dt { "Dedup window" } dd { (c.pipeline.dedup_window_secs) " s" }
                    dt { "Incident window" } dd { (c.pipeline.incident_window_secs) " s" }
                    dt { "Access token" } dd { (c.auth.access_token_secs) " s" }
                }
                p.small.muted {
                    "Configuration is read from the config file and " code { "CLOUDSENTINEL_*" }
                    " variables at start; see " a href="/docs" { "the API docs" } "."
                }
            }
        }
    };
    page(&s, "Settings", Nav::Settings, None, body)
}

pub(super) async fn settings_action(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    match field(&fields, "action") {
        Some("theme") => {
            let theme = if field(&fields, "theme") == Some("dark") {
                "dark"
            } else {
                "light"
            };
            let mut resp = done("/ui/settings", format!("Theme: {theme}."));
            resp.headers_mut().append(
                header::SET_COOKIE,
                axum::http::HeaderValue::from_str(&format!(
                    "cs_theme={theme}; Path=/; Max-Age=31536000; SameSite=Strict"
                ))
                .expect("ascii"),
            );
            resp
        }
        Some("tz") => {
            let (tz, words) = if field(&fields, "tz") == Some("local") {
                ("local", "this browser's time zone")
            } else {
                ("utc", "UTC")
            };
            let mut resp = done("/ui/settings", format!("Times are shown in {words}."));
            resp.headers_mut().append(
                header::SET_COOKIE,
                axum::http::HeaderValue::from_str(&format!(
                    "cs_tz={tz}; Path=/; Max-Age=31536000; SameSite=Strict"
                ))
                .expect("ascii"),
            );
            resp
        }
        Some("password") => {
            let body = json!({
                "current_password": field(&fields, "current_password").unwrap_or(""),
                "new_password": field(&fields, "new_password").unwrap_or(""),
            });
            match api::change_password(
                State(state),
                Extension(s.caller.clone()),
                Bytes::from(body.to_string()),
            )
            .await
            {
                // Changing the password ends every session, this one too.
                Ok(_) => {
                    let mut resp =
                        axum::response::Redirect::to("/ui/login?expired=1").into_response();
                    super::clear_session(&mut resp);
                    resp
                }
                Err(e) => done("/ui/settings", format!("error: {}", error_text(e).1)),
            }
        }
        _ => (StatusCode::BAD_REQUEST, "unknown action").into_response(),
    }
}
