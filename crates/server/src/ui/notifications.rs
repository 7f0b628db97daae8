//! Notifications: the configured sinks and how they stand, their deliveries, and a test message.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use cloudsentinel_store::{DeliveryRecord, DeliveryStatus};
use maud::{Markup, html};

use super::{
    Nav, Q, Session, csrf_field, fail, field, form, outcome, page, pager, time_cell, urlenc,
};
use crate::error::bad;
use crate::routes::Op;
use crate::{AppState, api};

pub(super) async fn notifications(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    if let Err(r) = s.require(Op::ListNotifiers) {
        return r;
    }
    let list = match api::list_notifications(State(state.clone())).await {
        Ok(axum::Json(list)) => list.sinks,
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
            table.cards id="sinks-table" {
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
        table.cards id="deliveries-table" {
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
                @for d in &deliveries.items {
                    (delivery_row(d))
                }
            }
        }
        (pager(
            "/ui/notifications",
            &filter,
            deliveries.total,
            deliveries.offset,
            50,
        ))
    };
    page(&s, "Notifications", Nav::Notifications, None, body)
}

/// One sink: where it sends, how it stands, and its test button for those who may.
fn sink_row(s: &Session, x: &api::SinkStatus) -> Markup {
    let name = &x.name;
    html! {
        tr {
            td.nowrap data-label="Sink" { a href={ "/ui/notifications?sink=" (urlenc(name)) } { strong { (name) } } }
            td.nowrap data-label="Kind" { (x.kind) }
            td.small.mono data-label="Destination" { (x.destination) }
            td data-label="From level" { (x.min_level.as_str()) }
            td data-label="State" {
                @if x.failing {
                    span.lvl.high { "failing" }
                    br;
                    span.small { (x.last_error.as_deref().unwrap_or("")) }
                } @else {
                    span.lvl.low { "ok" }
                }
            }
            td data-label="Pending" { (x.pending) }
            td data-label="Sent" { (x.sent) }
            td data-label="Retried" { (x.retried) }
            td data-label="Dead" { (x.dead) }
            td.nowrap data-label="Last success" { (optional_time(x.last_success.as_ref())) }
            td.nowrap data-label="Last failure" { (optional_time(x.last_failure.as_ref())) }
            td.nowrap data-label="Test" {
                @if s.can(Op::TestNotifier) {
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
fn delivery_row(d: &DeliveryRecord) -> Markup {
    let class = match d.status {
        DeliveryStatus::Sent => "low",
        DeliveryStatus::Dead => "critical",
        DeliveryStatus::Pending => "medium",
    };
    html! {
        tr {
            td data-label="#" { (d.id) }
            td data-label="Sink" { (d.sink) }
            td data-label="Alert" {
                @match d.alert_id {
                    Some(id) => { a href={ "/ui/alerts/" (id) } { "#" (id) } }
                    None => { "test" }
                }
            }
            td data-label="Change" { (d.change) }
            td data-label="Status" { span class={ "lvl " (class) } { (d.status.as_str()) } }
            td data-label="Tries" { (d.attempts) }
            td.nowrap data-label="Queued" { (time_cell(&d.created)) }
            td.nowrap data-label="Sent" { (optional_time(d.sent.as_ref())) }
            td data-label="Latency" {
                @match d.latency_ms {
                    Some(ms) => { (ms) " ms" }
                    None => { "—" }
                }
            }
            td.small data-label="Last error" { (d.last_error.as_deref().unwrap_or("")) }
        }
    }
}

/// A time with its age, or a dash.
fn optional_time(t: Option<&DateTime<Utc>>) -> Markup {
    match t {
        Some(t) => time_cell(t),
        None => html! { "—" },
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
    if let Err(r) = s.require(Op::TestNotifier) {
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
