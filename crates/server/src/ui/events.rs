//! Event hunting: the search form and its results, the CSV export, and one event's original
//! record.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cloudsentinel_core::text::SHOWN_FIELD_CHARS;
use cloudsentinel_store::{EventQuery, EventRow};
use maud::{Markup, html};

use super::{Nav, Q, Session, error_text, fail, page, pager, urlenc, when};
use crate::error::{ApiError, bad};
use crate::{AppState, api, blocking};

/// This page's own routes, merged into the dashboard's (behind sign-in).
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}

const EVENT_FIELDS: &[(&str, &str)] = &[
    ("q", "Free text"),
    ("principal", "Principal (exact)"),
    ("source_ip", "Source address"),
    ("account", "Account"),
    ("service", "Service"),
    ("operation", "Operation"),
];

/// A time from the form: RFC 3339, or the browser's `datetime-local` value read as UTC.
fn form_time(q: &BTreeMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = q.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    }
    Err(bad(format!(
        "{key}={v}: expected a time like 2026-11-22T10:00 (UTC) or RFC 3339"
    )))
}

/// The form's search as the API's: empty fields dropped, times as RFC 3339.
fn event_query(q: &BTreeMap<String, String>, limit: u32) -> Result<EventQuery, ApiError> {
    let mut p = BTreeMap::new();
    for (k, v) in q {
        let v = v.trim();
        if v.is_empty() {
            continue;
        }
        let v = match k.as_str() {
            "since" | "until" => form_time(q, k)?.map(|t| t.to_rfc3339()).unwrap_or_default(),
            _ => v.to_string(),
        };
        p.insert(k.clone(), v);
    }
    p.insert("limit".into(), limit.to_string());
    p.remove("raw");
    api::event_query(&p)
}

/// The search's parameters as a URL query (without `offset`), for the export and the pager.
fn kept_params(q: &BTreeMap<String, String>) -> String {
    q.iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "offset")
        .map(|(k, v)| format!("{}={}", urlenc(k), urlenc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) async fn events(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    const PAGE: u32 = 50;
    let query = match event_query(&q, PAGE) {
        Ok(x) => x,
        Err(e) => return fail(&s, e),
    };
    let offset = query.offset;
    let found = match blocking(&state, move |st| st.events(&query)).await {
        Ok(p) => p,
        Err(e) => return fail(&s, e),
    };
    let keep = kept_params(&q);
    let body = html! {
        h1 { "Events" }
        (hunt_form(&q))
        div.row.between {
            p.muted.small id="events-total" { "Matching events: " (found.total) "." }
            a.button id="export-csv" href={ "/ui/events.csv?" (keep) } download {
                "Export CSV (up to " (CSV_MAX) ")"
            }
        }
        (events_table(&found.items, false))
        (pager("/ui/events", &keep, found.total, offset, PAGE as u64))
    };
    page(&s, "Events", Nav::Events, None, body)
}

/// The search form, filled in with the current search.
fn hunt_form(q: &BTreeMap<String, String>) -> Markup {
    let val = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    html! {
        form.panel.filters method="get" action="/ui/events" role="search" id="hunt" {
            @for (k, label) in EVENT_FIELDS {
                label {
                    (label)
                    input type=(if *k == "q" { "search" } else { "text" }) name=(k)
                        id={ "ev-" (k) } value=(val(k)) size="14";
                }
            }
            label {
                "Outcome"
                select name="outcome" id="ev-outcome" {
                    @for (v, l) in [("", "any"), ("success", "success"), ("failure", "failure")] {
                        option value=(v) selected[val("outcome") == v] { (l) }
                    }
                }
            }
            label {
                "From (UTC)"
                input type="text" name="since" value=(val("since"))
                    placeholder="2026-11-22T10:00" size="16";
            }
            label {
                "Until (UTC)"
                input type="text" name="until" value=(val("until"))
                    placeholder="2026-11-22T12:00" size="16";
            }
            button.primary type="submit" id="hunt-go" { "Search" }
        }
    }
}

/// Largest original record embedded in a page; a larger one is fetched when opened.
const RAW_INLINE_MAX: usize = 64 * 1024;

/// A table of events; `raw_inline` shows each original record (already loaded) in a
/// disclosure, otherwise it is fetched on demand. Fields are cut at
/// [`SHOWN_FIELD_CHARS`]; the original record has them whole.
pub(super) fn events_table(events: &[EventRow], raw_inline: bool) -> Markup {
    if events.is_empty() {
        return html! { p.empty { "No events." } };
    }
    html! {
        table.events {
            colgroup {
                col class="c-time";
                col class="c-op";
                col class="c-who";
                col class="c-src";
                col class="c-out";
            }
            thead {
                tr {
                    th scope="col" { "Time" }
                    th scope="col" { "Operation" }
                    th scope="col" { "Principal" }
                    th scope="col" { "Source" }
                    th scope="col" { "Outcome" }
                }
            }
            tbody {
                @for e in events {
                    (event_row(e, raw_inline))
                }
            }
        }
    }
}

/// One event's two rows: its fields, then its original record.
fn event_row(e: &EventRow, raw_inline: bool) -> Markup {
    let raw = raw_record(e, raw_inline);
    let mut shown = e.without_raw();
    shown.clip_fields(SHOWN_FIELD_CHARS);
    let e = &shown;
    let ua = e.user_agent.as_deref().unwrap_or("");
    html! {
        tr {
            td.nowrap { (when(&e.time)) }
            td { strong { (e.operation) } " " span.small.muted { (e.service) } }
            td {
                (e.principal)
                @if let Some(account) = &e.account {
                    br;
                    span.small.muted { (account) }
                }
            }
            td {
                (e.source_ip.as_deref().unwrap_or(""))
                span.small.muted.ua title=(ua) { (ua) }
            }
            td {
                @if e.success {
                    "success"
                } @else {
                    span.st.open { "failed" } " " (e.error_code.as_deref().unwrap_or(""))
                }
            }
        }
        tr.rawrow { td colspan="5" { (raw) } }
    }
}

/// The disclosure with an event's original record: embedded when `raw_inline` and it is small
/// enough, otherwise fetched when opened (nothing when it was loaded and there is none).
fn raw_record(e: &EventRow, raw_inline: bool) -> Markup {
    // A record too big to embed is fetched on demand like the others.
    let inline = raw_inline
        .then_some(e.raw.as_ref())
        .flatten()
        .map(|r| serde_json::to_string_pretty(r).unwrap_or_default())
        .filter(|text| text.len() <= RAW_INLINE_MAX);
    html! {
        @if let Some(text) = inline {
            details.raw { summary { "original record" } pre { (text) } }
        } @else if !(raw_inline && e.raw.is_none()) {
            details.raw data-raw={
                "/ui/events/raw?id=" (urlenc(&e.id)) "&time=" (urlenc(&e.time.to_rfc3339()))
            } {
                summary { "original record" }
                pre {}
            }
        }
    }
}

/// Rows an export holds at most.
const CSV_MAX: u64 = 100_000;

fn csv_cell(v: &str) -> String {
    // Cells that a spreadsheet would run as a formula are quoted and prefixed.
    let v = cloudsentinel_core::text::csv_safe(v).into_owned();
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv_row(e: &EventRow) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        e.time.to_rfc3339(),
        e.id.clone(),
        e.provider.clone(),
        o(&e.account),
        o(&e.region),
        e.principal.clone(),
        o(&e.actor_name),
        o(&e.access_key),
        o(&e.source_ip),
        o(&e.user_agent),
        e.service.clone(),
        e.operation.clone(),
        if e.success { "success" } else { "failure" }.to_string(),
        o(&e.error_code),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The search as CSV, read from the store a page at a time.
pub(super) async fn events_csv(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let mut query = match event_query(&q, 1000) {
        Ok(x) => x,
        Err(e) => return fail(&s, e),
    };
    query.offset = 0;
    let mut out = String::from(
        "time,id,provider,account,region,principal,actor_name,access_key,source_ip,user_agent,service,operation,outcome,error_code\r\n",
    );
    let mut written = 0u64;
    loop {
        let qq = query.clone();
        let page = match blocking(&state, move |st| st.events(&qq)).await {
            Ok(p) => p,
            Err(e) => return fail(&s, e),
        };
        let n = page.items.len() as u64;
        for e in &page.items {
            if written >= CSV_MAX {
                break;
            }
            out.push_str(&csv_row(e));
            written += 1;
        }
        if n < query.limit as u64 || written >= CSV_MAX {
            break;
        }
        query.offset += n;
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cloudsentinel-events.csv\"",
            ),
        ],
        Body::from(out),
    )
        .into_response()
}

/// An error as plain text (for the script that shows raw records).
fn plain(e: ApiError) -> Response {
    let (status, msg) = error_text(e);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// One event's original record, pretty-printed.
pub(super) async fn event_raw(
    State(state): State<AppState>,
    Extension(_): Extension<Session>,
    Query(q): Q,
) -> Response {
    let (Some(id), Some(time)) = (q.get("id").cloned(), q.get("time")) else {
        return plain(bad("id and time are required"));
    };
    let Ok(t) = DateTime::parse_from_rfc3339(time) else {
        return plain(bad("time: RFC 3339"));
    };
    let t = t.with_timezone(&Utc);
    let found = blocking(&state, move |st| st.events_by_id(&[id], (t, t), true)).await;
    match found {
        Ok(v) => match v.into_iter().next().and_then(|e| e.raw) {
            Some(raw) => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                serde_json::to_string_pretty(&raw).unwrap_or_default(),
            )
                .into_response(),
            None => plain(ApiError::NotFound(
                "no original record is stored for this event".into(),
            )),
        },
        Err(e) => plain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn form_times_read_as_utc() {
        let mut q = BTreeMap::new();
        q.insert("since".to_string(), "2026-11-22T10:00".to_string());
        assert_eq!(
            form_time(&q, "since").unwrap().unwrap().to_rfc3339(),
            "2026-11-22T10:00:00+00:00"
        );
        q.insert("since".to_string(), "yesterday".to_string());
        assert!(form_time(&q, "since").is_err());
    }
}
