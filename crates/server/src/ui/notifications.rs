//! Notifications: the configured sinks and how they stand, their deliveries, and a test message.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};
use serde_json::Value;

use super::{
    Nav, Q, Session, csrf_field, fail, field, form, outcome, page, pager, time_cell, urlenc,
};
use crate::error::bad;
use crate::{AppState, api};

/// An RFC 3339 time from the API as "3 minutes ago", or a dash.
fn ago_cell(v: &Value) -> Markup {
    match v
        .as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
    {
        Some(t) => time_cell(&t.with_timezone(&Utc)),
        None => html! { "—" },
    }
}

pub(super) async fn notifications(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    if let Err(r) = s.require("GET", "/api/v1/notifications") {
        return r;
    }
    let sinks = match api::list_notifications(State(state.clone())).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let mut params = BTreeMap::new();
    params.insert("limit".to_string(), "50".to_string());
    for k in ["sink", "status", "offset"] {
        if let Some(v) = q.get(k).filter(|v| !v.is_empty()) {
            params.insert(k.to_string(), v.clone());
        }
    }
    let deliveries = match api::list_deliveries(State(state), Query(params)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let list = sinks["sinks"].as_array().cloned().unwrap_or_default();
    let filter: String = ["sink", "status"]
        .iter()
        .filter_map(|k| {
            q.get(*k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("&{k}={}", urlenc(v)))
        })
        .collect();
    let status = q.get("status").map(String::as_str);
    let body = html! {
        h1 { "Notifications" }
        p.muted {
            "Where alerts are delivered (the " code { "[[notify]]" }
            " sinks of the configuration), how their deliveries stand, and each message with \
             its tries. A sink that fails is retried with backoff; ingest goes on."
        }
        @if list.is_empty() {
            p.panel {
                "No sinks are configured. Add " code { "[[notify]]" }
                " tables to the configuration file (see "
                code { "cloudsentinel.example.toml" } ") and restart."
            }
        } @else {
            table id="sinks-table" {
                thead {
                    tr {
                        th { "Sink" }
                        th { "Kind" }
                        th { "Destination" }
                        th { "From level" }
                        th { "State" }
                        th { "Pending" }
                        th { "Sent" }
                        th { "Retried" }
                        th { "Dead" }
                        th { "Last success" }
                        th { "Last failure" }
                        th {}
                    }
                }
                tbody {
                    @for x in &list {
                        (sink_row(&s, x))
                    }
                }
            }
        }
        h2 { "Deliveries" }
        form.panel.filters method="get" action="/ui/notifications" role="search" {
            label {
                "Sink "
                input name="sink" value=(q.get("sink").map(String::as_str).unwrap_or(""));
            }
            label {
                "Status "
                select name="status" {
                    @for o in ["", "pending", "sent", "dead"] {
                        option value=(o) selected[status == Some(o)] {
                            (if o.is_empty() { "any" } else { o })
                        }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        table id="deliveries-table" {
            thead {
                tr {
                    th { "#" }
                    th { "Sink" }
                    th { "Alert" }
                    th { "Change" }
                    th { "Status" }
                    th { "Tries" }
                    th { "Queued" }
                    th { "Sent" }
                    th { "Latency" }
                    th { "Last error" }
                }
            }
            tbody {
                @for d in deliveries["items"].as_array().into_iter().flatten() {
                    (delivery_row(d))
                }
            }
        }
        (pager(
            "/ui/notifications",
            &filter,
            deliveries["total"].as_u64().unwrap_or(0),
            deliveries["offset"].as_u64().unwrap_or(0),
            50,
        ))
    };
    page(&s, "Notifications", Nav::Notifications, None, body)
}

/// One sink: where it sends, how it stands, and its test button for those who may.
fn sink_row(s: &Session, x: &Value) -> Markup {
    let name = x["name"].as_str().unwrap_or("");
    let str_of = |k: &str| x[k].as_str().unwrap_or("");
    html! {
        tr {
            td.nowrap { a href={ "/ui/notifications?sink=" (urlenc(name)) } { strong { (name) } } }
            td.nowrap { (str_of("kind")) }
            td.small.mono { (str_of("destination")) }
            td { (str_of("min_level")) }
            td {
                @if x["failing"].as_bool().unwrap_or(false) {
                    span.lvl.high { "failing" }
                    br;
                    span.small { (str_of("last_error")) }
                } @else {
                    span.lvl.low { "ok" }
                }
            }
            td { (x["pending"]) }
            td { (x["sent"]) }
            td { (x["retried"]) }
            td { (x["dead"]) }
            td.nowrap { (ago_cell(&x["last_success"])) }
            td.nowrap { (ago_cell(&x["last_failure"])) }
            td.nowrap {
                @if s.can("POST", "/api/v1/notifications/{name}/test") {
                    form method="post" action="/ui/notifications" {
                        (csrf_field(s))
                        input type="hidden" name="action" value="test";
                        input type="hidden" name="name" value=(name);
                        button type="submit" title="Send a test message to this sink now" {
                            "Send test"
                        }
                    }
                }
            }
        }
    }
}

/// One delivery: its alert (or a test), change, status, tries and timing.
fn delivery_row(d: &Value) -> Markup {
    let str_of = |k: &str| d[k].as_str().unwrap_or("");
    let status = str_of("status");
    let class = match status {
        "sent" => "low",
        "dead" => "critical",
        _ => "medium",
    };
    html! {
        tr {
            td { (d["id"]) }
            td { (str_of("sink")) }
            td {
                @match d["alert_id"].as_i64() {
                    Some(id) => { a href={ "/ui/alerts/" (id) } { "#" (id) } }
                    None => { "test" }
                }
            }
            td { (str_of("change")) }
            td { span class={ "lvl " (class) } { (status) } }
            td { (d["attempts"]) }
            td.nowrap { (ago_cell(&d["created"])) }
            td.nowrap { (ago_cell(&d["sent"])) }
            td {
                @match d["latency_ms"].as_i64() {
                    Some(ms) => { (ms) " ms" }
                    None => { "—" }
                }
            }
            td.small { (str_of("last_error")) }
        }
    }
}

pub(super) async fn notifications_action(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    if let Err(r) = s.require("POST", "/api/v1/notifications/{name}/test") {
        return r;
    }
    let result = match (field(&fields, "action"), field(&fields, "name")) {
        (Some("test"), Some(name)) => {
            api::send_test(&state, &s.caller, name)
                .await
                .map(|d| match d.status {
                    cloudsentinel_store::DeliveryStatus::Sent => {
                        format!("Test message #{} delivered to {name}.", d.id)
                    }
                    _ => format!(
                        "Test message #{} to {name} not delivered yet: {}",
                        d.id,
                        d.last_error.unwrap_or_else(|| "no answer yet".into())
                    ),
                })
        }
        _ => Err(bad("unknown action")),
    };
    outcome("/ui/notifications", result, |msg| msg)
}
