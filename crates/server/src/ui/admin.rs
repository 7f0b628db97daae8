//! The other pages: event hunting, rules and ATT&CK coverage, models, audit log, users and API
//! keys, settings.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use cloudsentinel_store::{EventQuery, EventRow};
use serde_json::{Value, json};

use super::{
    Nav, Session, action_form, attack, csrf_field, done, error_text, esc, field, form, level_badge,
    outcome, page, pager, pages::events_table, technique_tags, time_cell, urlenc,
};
use crate::error::{ApiError, bad};
use crate::{AppState, api, blocking};

type Q = Query<BTreeMap<String, String>>;

fn fail(s: &Session, e: ApiError) -> Response {
    super::error_page(s, e)
}

// ---- events -------------------------------------------------------------------------------------

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

fn kept_params(q: &BTreeMap<String, String>) -> String {
    q.iter()
        .filter(|(k, v)| !v.is_empty() && k.as_str() != "offset")
        .map(|(k, v)| format!("{}={}", urlenc(k), urlenc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub async fn events(
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
    let val = |k: &str| esc(q.get(k).map(String::as_str).unwrap_or(""));
    let mut b = String::from(
        "<h1>Events</h1><form class=\"panel filters\" method=\"get\" action=\"/ui/events\" role=\"search\" id=\"hunt\">",
    );
    for (k, label) in EVENT_FIELDS {
        let kind = if *k == "q" { "search" } else { "text" };
        let _ = write!(
            b,
            "<label>{label}<input type=\"{kind}\" name=\"{k}\" id=\"ev-{k}\" value=\"{}\" size=\"14\"></label>",
            val(k)
        );
    }
    b.push_str("<label>Outcome<select name=\"outcome\" id=\"ev-outcome\">");
    for (v, l) in [("", "any"), ("success", "success"), ("failure", "failure")] {
        let sel = if q.get("outcome").map(String::as_str).unwrap_or("") == v {
            " selected"
        } else {
            ""
        };
        let _ = write!(b, "<option value=\"{v}\"{sel}>{l}</option>");
    }
    let _ = write!(
        b,
        "</select></label><label>From (UTC)<input type=\"text\" name=\"since\" value=\"{}\" placeholder=\"2026-11-22T10:00\" size=\"16\"></label>\
<label>Until (UTC)<input type=\"text\" name=\"until\" value=\"{}\" placeholder=\"2026-11-22T12:00\" size=\"16\"></label>\
<button class=\"primary\" type=\"submit\" id=\"hunt-go\">Search</button></form>",
        val("since"),
        val("until")
    );
    let keep = kept_params(&q);
    let _ = write!(
        b,
        "<div class=\"row between\"><p class=\"muted small\" id=\"events-total\">Matching events: {}.</p>\
<a class=\"button\" id=\"export-csv\" href=\"/ui/events.csv?{}\" download>Export CSV (up to {CSV_MAX})</a></div>",
        found.total,
        esc(&keep)
    );
    b.push_str(&events_table(&found.items, false));
    b.push_str(&pager(
        "/ui/events",
        &esc(&keep),
        found.total,
        offset,
        PAGE as u64,
    ));
    page(&s, "Events", Nav::Events, None, &b)
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
pub async fn events_csv(
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
    let (status, msg) = super::error_text(e);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// One event's original record, pretty-printed.
pub async fn event_raw(
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

// ---- rules and coverage ------------------------------------------------------------------------------

async fn rule_hits(state: &AppState) -> Result<BTreeMap<String, u64>, ApiError> {
    let top = blocking(state, |st| st.top_rules(None, 100_000)).await?;
    Ok(top.into_iter().map(|r| (r.rule_id, r.alerts)).collect())
}

pub async fn rules(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let axum::Json(list) = api::list_rules(State(state.clone())).await;
    let hits = match rule_hits(&state).await {
        Ok(h) => h,
        Err(e) => return fail(&s, e),
    };
    let text = q.get("q").map(|v| v.to_lowercase()).unwrap_or_default();
    let technique = q.get("technique").cloned().unwrap_or_default();
    let source = q.get("source").cloned().unwrap_or_default();
    let can_toggle = s.can("PATCH", "/api/v1/rules/{id}");
    let items = list["items"].as_array().cloned().unwrap_or_default();
    let shown: Vec<&Value> = items
        .iter()
        .filter(|r| {
            let str_of = |k: &str| r[k].as_str().unwrap_or("").to_lowercase();
            (text.is_empty()
                || str_of("title").contains(&text)
                || str_of("id").contains(&text)
                || str_of("description").contains(&text))
                && (technique.is_empty()
                    || r["techniques"].as_array().is_some_and(|t| {
                        t.iter().any(|x| {
                            x.as_str().is_some_and(|x| {
                                x == technique || x.starts_with(&format!("{technique}."))
                            })
                        })
                    }))
                && (source.is_empty() || str_of("source").contains(&source.to_lowercase()))
        })
        .collect();
    let disabled = items
        .iter()
        .filter(|r| r["enabled"] == json!(false))
        .count();
    let mut b = format!(
        "<h1>Rules</h1><p class=\"muted\">{} rules loaded, {} disabled. <a href=\"/ui/coverage\">ATT&amp;CK coverage →</a></p>\
<form class=\"panel filters\" method=\"get\" action=\"/ui/rules\" role=\"search\">\
<label>Search<input type=\"search\" name=\"q\" value=\"{}\" placeholder=\"title, id, description\"></label>\
<label>Technique<input type=\"text\" name=\"technique\" value=\"{}\" size=\"10\"></label>\
<label>Source<input type=\"text\" name=\"source\" value=\"{}\" size=\"14\" placeholder=\"file or folder\"></label>\
<button class=\"primary\" type=\"submit\">Filter</button></form>",
        items.len(),
        disabled,
        esc(q.get("q").map(String::as_str).unwrap_or("")),
        esc(&technique),
        esc(&source),
    );
    let _ = write!(
        b,
        "<p class=\"muted small\">{} shown.</p><table id=\"rules-table\"><thead><tr><th>Level</th><th>Rule</th><th>Techniques</th><th class=\"num\">Alerts</th><th>State</th></tr></thead><tbody>",
        shown.len()
    );
    for r in shown {
        let id = r["id"].as_str().unwrap_or("");
        let enabled = r["enabled"] != json!(false);
        let level = r["level"]
            .as_str()
            .and_then(|l| l.parse().ok())
            .map(level_badge)
            .unwrap_or_default();
        let techniques: Vec<String> = r["techniques"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|t| t.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let n = hits.get(id).copied().unwrap_or(0);
        let state_cell = if can_toggle {
            format!(
                "<form method=\"post\" action=\"/ui/rules/{}\">{}<input type=\"hidden\" name=\"enabled\" value=\"{}\">\
<button type=\"submit\" class=\"{}\" aria-label=\"{} {}\">{}</button></form>",
                urlenc(id),
                csrf_field(&s),
                !enabled,
                if enabled { "" } else { "primary" },
                if enabled { "Disable" } else { "Enable" },
                esc(r["title"].as_str().unwrap_or(id)),
                if enabled {
                    "Enabled · disable"
                } else {
                    "Disabled · enable"
                },
            )
        } else if enabled {
            "enabled".into()
        } else {
            "<strong>disabled</strong>".into()
        };
        let _ = write!(
            b,
            "<tr data-rule=\"{}\"><td>{level}</td><td><strong>{}</strong> <span class=\"kind\">{}</span><br><code class=\"small\">{}</code> <span class=\"small muted\">{}</span></td>\
<td>{}</td><td class=\"num\">{}</td><td>{state_cell}</td></tr>",
            esc(id),
            esc(r["title"].as_str().unwrap_or("")),
            esc(r["kind"].as_str().unwrap_or("")),
            esc(id),
            esc(r["source"].as_str().unwrap_or("")),
            technique_tags(&techniques),
            if n > 0 {
                format!(
                    "<a href=\"/ui/alerts?rule={}&amp;status=all\">{n}</a>",
                    urlenc(id)
                )
            } else {
                "0".into()
            },
        );
    }
    b.push_str("</tbody></table>");
    // Active suppressions.
    let sups = match api::list_suppressions(State(state)).await {
        Ok(axum::Json(v)) => v["items"].as_array().cloned().unwrap_or_default(),
        Err(e) => return fail(&s, e),
    };
    let can_remove = s.can("DELETE", "/api/v1/suppressions/{id}");
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"suppressions\"><h2>Active suppressions ({})</h2>",
        sups.len()
    );
    if sups.is_empty() {
        b.push_str(
            "<p class=\"empty\">None. Suppress a rule for one entity from an alert's page.</p>",
        );
    } else {
        b.push_str("<table><thead><tr><th>Rule</th><th>Entity</th><th>Reason</th><th>Until</th><th></th></tr></thead><tbody>");
        for x in &sups {
            let str_of = |k: &str| esc(x[k].as_str().unwrap_or(""));
            let remove = if can_remove {
                format!(
                    "<form method=\"post\" action=\"/ui/suppressions/{}\">{}<button type=\"submit\">Remove</button></form>",
                    x["id"],
                    csrf_field(&s)
                )
            } else {
                String::new()
            };
            let _ = write!(
                b,
                "<tr><td><code>{}</code></td><td>{}</td><td>{} <span class=\"small muted\">by {}</span></td><td class=\"small\">{}</td><td>{remove}</td></tr>",
                str_of("rule_id"),
                str_of("entity"),
                str_of("reason"),
                str_of("author"),
                str_of("expires"),
            );
        }
        b.push_str("</tbody></table>");
    }
    b.push_str("</section>");
    page(&s, "Rules", Nav::Rules, None, &b)
}

pub async fn suppression_delete(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    if let Err(r) = action_form(&s, &body, "DELETE", "/api/v1/suppressions/{id}") {
        return r;
    }
    let result = api::delete_suppression(State(state), Extension(s.caller.clone()), Path(id)).await;
    outcome("/ui/rules#suppressions", result, |_| {
        "Suppression removed.".to_string()
    })
}

pub async fn rule_toggle(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "PATCH", "/api/v1/rules/{id}") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let enabled = field(&fields, "enabled") == Some("true");
    let back = format!("/ui/rules?q={}", urlenc(&id));
    let result = api::update_rule(
        State(state),
        Extension(s.caller.clone()),
        Path(id.clone()),
        Bytes::from(json!({"enabled": enabled, "reason": "from the dashboard"}).to_string()),
    )
    .await;
    let state_word = if enabled { "enabled" } else { "disabled" };
    outcome(&back, result, |_| format!("Rule {id} {state_word}."))
}

pub async fn coverage(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let by_hits = q.get("by").map(String::as_str) == Some("hits");
    let v = match api::dashboard_coverage(State(state)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    // technique → (rules, alerts, tactics)
    let mut cov: BTreeMap<String, (u64, u64, Vec<String>)> = BTreeMap::new();
    for it in v["items"].as_array().into_iter().flatten() {
        let t = it["technique"].as_str().unwrap_or("").to_string();
        let tactics = it["tactics"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        cov.insert(
            t,
            (
                it["rules"].as_u64().unwrap_or(0),
                it["alerts"].as_u64().unwrap_or(0),
                tactics,
            ),
        );
    }
    for (t, n) in v["alerted_techniques"].as_object().into_iter().flatten() {
        cov.entry(t.clone()).or_insert((0, 0, Vec::new())).1 = n.as_u64().unwrap_or(0);
    }
    let known: BTreeSet<&str> = attack::TECHNIQUES.iter().map(|t| t.0).collect();
    let covered_known = attack::TECHNIQUES
        .iter()
        .filter(|t| cov.get(t.0).is_some_and(|c| c.0 > 0))
        .count();
    let mut b = format!(
        "<div class=\"row between\"><h1>ATT&amp;CK coverage</h1><nav class=\"row\" aria-label=\"Colour by\">\
<a class=\"button{}\" href=\"/ui/coverage\"{}>By rules</a><a class=\"button{}\" href=\"/ui/coverage?by=hits\"{}>By alerts</a></nav></div>\
<p class=\"muted\" id=\"coverage-summary\">Rules cover {covered_known} of the {} cloud techniques drawn here ({} techniques in all, counting those outside the cloud matrix); {} techniques have alerts.</p>",
        if by_hits { "" } else { " primary" },
        if by_hits {
            ""
        } else {
            " aria-current=\"true\""
        },
        if by_hits { " primary" } else { "" },
        if by_hits {
            " aria-current=\"true\""
        } else {
            ""
        },
        attack::TECHNIQUES.len(),
        v["techniques_covered"].as_u64().unwrap_or(0),
        v["techniques_alerted"].as_u64().unwrap_or(0),
    );
    if by_hits {
        b.push_str("<div class=\"legend\"><span><span class=\"sw c0\"></span>no alerts</span><span><span class=\"sw h1\"></span>1–9</span><span><span class=\"sw h2\"></span>10–99</span><span><span class=\"sw h3\"></span>100+</span></div>");
    } else {
        b.push_str("<div class=\"legend\"><span><span class=\"sw c0\"></span>no rule</span><span><span class=\"sw c1\"></span>1 rule</span><span><span class=\"sw c2\"></span>2+ rules</span></div>");
    }
    b.push_str("<div class=\"matrix\" id=\"matrix\">");
    for (tid, tname) in attack::TACTICS {
        let mut cells: Vec<(String, &str)> = attack::TECHNIQUES
            .iter()
            .filter(|t| t.2.contains(tid))
            .map(|t| (t.0.to_string(), t.1))
            .collect();
        // Techniques our rules name under this tactic that the table does not list.
        for (t, (_, _, tactics)) in &cov {
            if !known.contains(t.as_str()) && tactics.iter().any(|x| x == tid) {
                cells.push((t.clone(), ""));
            }
        }
        let covered = cells
            .iter()
            .filter(|c| cov.get(&c.0).is_some_and(|x| x.0 > 0))
            .count();
        let _ = write!(
            b,
            "<section class=\"tactic\" aria-label=\"{tname}\"><h3>{tname} <span class=\"muted\">{covered}/{}</span></h3>",
            cells.len()
        );
        for (id, name) in cells {
            let (rules, alerts, _) = cov.get(&id).cloned().unwrap_or_default();
            let class = if by_hits {
                match alerts {
                    0 => "",
                    1..10 => " h1",
                    10..100 => " h2",
                    _ => " h3",
                }
            } else {
                match rules {
                    0 => "",
                    1 => " c1",
                    _ => " c2",
                }
            };
            let href = if by_hits {
                format!("/ui/alerts?technique={}&amp;status=all", urlenc(&id))
            } else {
                format!("/ui/rules?technique={}", urlenc(&id))
            };
            let _ = write!(
                b,
                "<a class=\"tech{class}\" href=\"{href}\" data-technique=\"{id}\" title=\"{rules} rules, {alerts} alerts\"><span class=\"id\">{id} · {rules}r · {alerts}a</span>{}</a>",
                if name.is_empty() {
                    "(not in the cloud matrix)".to_string()
                } else {
                    esc(name)
                },
                id = esc(&id),
            );
        }
        b.push_str("</section>");
    }
    b.push_str("</div><p class=\"small muted\">Tactics and techniques: MITRE ATT&amp;CK® Enterprise, cloud platforms. © The MITRE Corporation.</p>");
    page(&s, "ATT&CK coverage", Nav::Coverage, None, &b)
}

// ---- models ------------------------------------------------------------------------------------------

pub async fn models(State(state): State<AppState>, Extension(s): Extension<Session>) -> Response {
    let v = match api::list_models(State(state), Query(BTreeMap::new())).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let admin = s.can("POST", "/api/v1/models/train");
    let mut b = format!(
        "<h1>Models</h1><p class=\"muted\">Behaviour scoring is {}. Feature schema version {}. {}</p>",
        if v["anomaly_scoring"] == json!(true) {
            "on"
        } else {
            "off (detection.anomaly = false)"
        },
        v["schema_version"],
        match v["training"].as_array() {
            Some(t) if !t.is_empty() => format!(
                "Training now: {}.",
                esc(&t
                    .iter()
                    .filter_map(Value::as_str)
                    .collect::<Vec<_>>()
                    .join(", "))
            ),
            _ => String::new(),
        }
    );
    if admin {
        let _ = write!(
            b,
            "<form class=\"panel row\" method=\"post\" action=\"/ui/models\" id=\"train\">{}<input type=\"hidden\" name=\"action\" value=\"train\">\
<label>Model<select name=\"model_name\"><option value=\"anomaly\">anomaly (isolation forest over behaviour)</option><option value=\"feedback\">feedback (from analysts' verdicts)</option></select></label>\
<label class=\"check\"><input type=\"checkbox\" name=\"activate\" value=\"true\"> activate when trained</label>\
<button class=\"primary\" type=\"submit\">Train</button></form>",
            csrf_field(&s)
        );
    }
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        b.push_str("<p class=\"empty\">No model has been trained yet.</p>");
    } else {
        b.push_str("<table id=\"models-table\"><thead><tr><th>Model</th><th>Status</th><th class=\"num\">Samples</th><th>Metrics</th><th>Trained</th><th></th></tr></thead><tbody>");
        for m in &items {
            let id = m["id"].as_i64().unwrap_or(0);
            let active = m["active"] == json!(true);
            let metrics = m["metrics"]
                .as_object()
                .map(|o| {
                    o.iter()
                        .filter(|(_, v)| v.is_number() || v.is_string())
                        .take(6)
                        .map(|(k, v)| {
                            format!(
                                "{}: {}",
                                esc(k),
                                esc(&match v.as_f64() {
                                    Some(f) if f.fract() != 0.0 => format!("{f:.3}"),
                                    _ => v.to_string().trim_matches('"').to_string(),
                                })
                            )
                        })
                        .collect::<Vec<_>>()
                        .join("<br>")
                })
                .unwrap_or_default();
            let action = if admin && !active && m["status"] == json!("ready") {
                format!(
                    "<form method=\"post\" action=\"/ui/models\">{}<input type=\"hidden\" name=\"action\" value=\"activate\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\">Activate</button></form>",
                    csrf_field(&s)
                )
            } else if admin && active {
                format!(
                    "<form method=\"post\" action=\"/ui/models\">{}<input type=\"hidden\" name=\"action\" value=\"rollback\"><input type=\"hidden\" name=\"model_name\" value=\"{}\"><button type=\"submit\">Roll back</button></form>",
                    csrf_field(&s),
                    esc(m["name"].as_str().unwrap_or(""))
                )
            } else {
                String::new()
            };
            let _ = write!(
                b,
                "<tr><td><strong>{} v{}</strong> <span class=\"small muted\">#{id}</span>{}</td><td>{}{}</td><td class=\"num\">{}</td><td class=\"small\">{metrics}</td><td class=\"small\">{} by {}</td><td>{action}</td></tr>",
                esc(m["name"].as_str().unwrap_or("")),
                m["version"],
                if active {
                    " <span class=\"tag\">active</span>"
                } else {
                    ""
                },
                esc(m["status"].as_str().unwrap_or("")),
                match m["progress"].as_f64() {
                    Some(p) if m["status"] == json!("training") => format!(" {:.0}%", p * 100.0),
                    _ => String::new(),
                },
                m["samples"],
                esc(m["created"].as_str().unwrap_or("")),
                esc(m["trained_by"].as_str().unwrap_or("")),
            );
            if let Some(msg) = m["message"].as_str().filter(|x| !x.is_empty()) {
                let _ = write!(
                    b,
                    "<tr><td></td><td colspan=\"5\" class=\"small muted\">{}</td></tr>",
                    esc(msg)
                );
            }
        }
        b.push_str("</tbody></table>");
    }
    page(&s, "Models", Nav::Models, None, &b)
}

pub async fn models_action(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let caller = Extension(s.caller.clone());
    let result = match field(&fields, "action") {
        Some("train") => {
            if let Err(r) = s.require("POST", "/api/v1/models/train") {
                return r;
            }
            let mut q = BTreeMap::new();
            q.insert(
                "model_name".to_string(),
                field(&fields, "model_name").unwrap_or("").to_string(),
            );
            if field(&fields, "activate") == Some("true") {
                q.insert("activate".into(), "true".into());
            }
            api::train_model(State(state), caller, Query(q))
                .await
                .map(|_| "Training started.".to_string())
        }
        Some("activate") => {
            if let Err(r) = s.require("POST", "/api/v1/models/{id}/activate") {
                return r;
            }
            let id = field(&fields, "id")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            api::activate_model(State(state), caller, Path(id))
                .await
                .map(|_| format!("Model #{id} is active."))
        }
        Some("rollback") => {
            if let Err(r) = s.require("POST", "/api/v1/models/rollback") {
                return r;
            }
            let mut q = BTreeMap::new();
            q.insert(
                "model_name".to_string(),
                field(&fields, "model_name").unwrap_or("").to_string(),
            );
            api::rollback_model(State(state), caller, Query(q))
                .await
                .map(|_| "Rolled back.".to_string())
        }
        _ => Err(bad("unknown action")),
    };
    outcome("/ui/models", result, |msg| msg)
}

// ---- audit ---------------------------------------------------------------------------------------------

pub async fn audit(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    if let Err(r) = s.require("GET", "/api/v1/audit") {
        return r;
    }
    let mut params = BTreeMap::new();
    params.insert("limit".to_string(), "100".to_string());
    if let Some(o) = q.get("offset") {
        params.insert("offset".into(), o.clone());
    }
    let v = match api::audit_log(State(state), Query(params)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let mut b = String::from(
        "<h1>Audit log</h1><p class=\"muted\">Every change and sign-in, newest first; each entry is chained to the one before by hash.</p>",
    );
    b.push_str("<table id=\"audit-table\"><thead><tr><th>Time</th><th>Who</th><th>Action</th><th>Target</th><th>Detail</th></tr></thead><tbody>");
    for e in v["items"].as_array().into_iter().flatten() {
        let _ = write!(
            b,
            "<tr><td class=\"nowrap small\">{}</td><td class=\"nowrap\">{}<br><span class=\"small muted\">{}</span></td><td class=\"nowrap\"><code>{}</code></td><td>{}</td><td class=\"small mono\">{}</td></tr>",
            esc(e["time"].as_str().unwrap_or("")),
            esc(e["actor"].as_str().unwrap_or("")),
            esc(e["source_ip"].as_str().unwrap_or("")),
            esc(e["action"].as_str().unwrap_or("")),
            esc(e["target"].as_str().unwrap_or("")),
            esc(e["detail"].as_str().unwrap_or("")),
        );
    }
    b.push_str("</tbody></table>");
    b.push_str(&pager(
        "/ui/audit",
        "",
        v["total"].as_u64().unwrap_or(0),
        v["offset"].as_u64().unwrap_or(0),
        100,
    ));
    page(&s, "Audit log", Nav::Audit, None, &b)
}

// ---- users and API keys -------------------------------------------------------------------------------

async fn users_page(state: AppState, s: &Session, notice: Option<String>) -> Response {
    if let Err(r) = s.require("GET", "/api/v1/users") {
        return r;
    }
    let users = match api::list_users(State(state.clone())).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(s, e),
    };
    let keys = match api::list_api_keys(State(state)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(s, e),
    };
    let csrf = csrf_field(s);
    let mut b = String::from("<h1>Users &amp; API keys</h1>");
    if let Some(n) = notice {
        b.push_str(&n);
    }
    let roles = ["viewer", "analyst", "responder", "admin"];
    b.push_str("<section class=\"panel\"><h2>Users</h2><table id=\"users-table\"><thead><tr><th>User</th><th>Role</th><th>State</th><th>Created</th><th></th></tr></thead><tbody>");
    for u in users["items"].as_array().into_iter().flatten() {
        let id = u["id"].as_i64().unwrap_or(0);
        let role = u["role"].as_str().unwrap_or("");
        let disabled = u["disabled"] == json!(true);
        let opts: String = roles
            .iter()
            .map(|r| {
                format!(
                    "<option value=\"{r}\"{}>{r}</option>",
                    if *r == role { " selected" } else { "" }
                )
            })
            .collect();
        let _ = write!(
            b,
            "<tr><td><strong>{name}</strong></td><td><form method=\"post\" action=\"/ui/users\" class=\"row\">{csrf}<input type=\"hidden\" name=\"action\" value=\"role\"><input type=\"hidden\" name=\"id\" value=\"{id}\">\
<select name=\"role\" aria-label=\"Role of {name}\">{opts}</select><button type=\"submit\">Set</button></form></td>\
<td>{}</td><td class=\"small\">{}</td><td class=\"row\"><form method=\"post\" action=\"/ui/users\">{csrf}<input type=\"hidden\" name=\"action\" value=\"{}\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\">{}</button></form>\
<form method=\"post\" action=\"/ui/users\">{csrf}<input type=\"hidden\" name=\"action\" value=\"delete\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\" class=\"danger\" data-confirm=\"Delete user {name}? This cannot be undone.\">Delete</button></form></td></tr>",
            if disabled {
                "<strong>disabled</strong>"
            } else {
                "active"
            },
            esc(u["created"].as_str().unwrap_or("")),
            if disabled { "enable" } else { "disable" },
            if disabled { "Enable" } else { "Disable" },
            name = esc(u["username"].as_str().unwrap_or("")),
        );
    }
    let role_opts: String = roles
        .iter()
        .map(|r| format!("<option value=\"{r}\">{r}</option>"))
        .collect();
    let _ = write!(
        b,
        "</tbody></table><h3>Add a user</h3><form method=\"post\" action=\"/ui/users\" class=\"filters\" id=\"add-user\">{csrf}<input type=\"hidden\" name=\"action\" value=\"create\">\
<label>User name<input type=\"text\" name=\"username\" required maxlength=\"64\" autocomplete=\"off\"></label>\
<label>Password (12+)<input type=\"password\" name=\"password\" required minlength=\"12\" autocomplete=\"new-password\"></label>\
<label>Role<select name=\"role\">{role_opts}</select></label><button class=\"primary\" type=\"submit\">Add</button></form></section>"
    );
    b.push_str("<section class=\"panel\"><h2>Ingest API keys</h2><table id=\"keys-table\"><thead><tr><th>Name</th><th>Prefix</th><th>Created</th><th>Last used</th><th></th></tr></thead><tbody>");
    for k in keys["items"].as_array().into_iter().flatten() {
        let id = k["id"].as_i64().unwrap_or(0);
        let revoked = k["revoked"] == json!(true);
        let _ = write!(
            b,
            "<tr><td>{}</td><td><code>{}…</code></td><td class=\"small\">{} by {}</td><td class=\"small\">{}</td><td>{}</td></tr>",
            esc(k["name"].as_str().unwrap_or("")),
            esc(k["prefix"].as_str().unwrap_or("")),
            esc(k["created"].as_str().unwrap_or("")),
            esc(k["created_by"].as_str().unwrap_or("")),
            esc(k["last_used"].as_str().unwrap_or("never")),
            if revoked {
                "revoked".to_string()
            } else {
                format!(
                    "<form method=\"post\" action=\"/ui/users\">{csrf}<input type=\"hidden\" name=\"action\" value=\"revoke\"><input type=\"hidden\" name=\"id\" value=\"{id}\"><button type=\"submit\" class=\"danger\" data-confirm=\"Revoke this key? Clients using it can no longer send events.\">Revoke</button></form>"
                )
            }
        );
    }
    let _ = write!(
        b,
        "</tbody></table><h3>New key</h3><form method=\"post\" action=\"/ui/users\" class=\"filters\">{csrf}<input type=\"hidden\" name=\"action\" value=\"key\">\
<label>Name<input type=\"text\" name=\"name\" required maxlength=\"64\" placeholder=\"e.g. cloudtrail-forwarder\"></label><button class=\"primary\" type=\"submit\">Create</button></form></section>"
    );
    page(s, "Users & API keys", Nav::Users, None, &b)
}

pub async fn users(State(state): State<AppState>, Extension(s): Extension<Session>) -> Response {
    users_page(state, &s, None).await
}

pub async fn users_action(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "GET", "/api/v1/users") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let id: i64 = field(&fields, "id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let f = |k: &str| field(&fields, k).unwrap_or("").to_string();
    let caller = Extension(s.caller.clone());
    let st = State(state.clone());
    let result: Result<String, ApiError> = match field(&fields, "action") {
        Some("create") => api::register(
            st,
            caller,
            Bytes::from(
                json!({"username": f("username"), "password": f("password"), "role": f("role")})
                    .to_string(),
            ),
        )
        .await
        .map(|_| format!("User {} added.", f("username"))),
        Some("role") => api::update_user(
            st,
            caller,
            Path(id),
            Bytes::from(json!({"role": f("role")}).to_string()),
        )
        .await
        .map(|_| "Role changed; the user's sessions were ended.".to_string()),
        Some(a @ ("disable" | "enable")) => api::update_user(
            st,
            caller,
            Path(id),
            Bytes::from(json!({"disabled": a == "disable"}).to_string()),
        )
        .await
        .map(|_| format!("User {a}d.")),
        Some("delete") => api::delete_user(st, caller, Path(id))
            .await
            .map(|_| "User deleted.".to_string()),
        Some("revoke") => api::revoke_api_key(st, caller, Path(id))
            .await
            .map(|_| "Key revoked.".to_string()),
        Some("key") => {
            // The secret is shown once, on this page, never in a redirect or a cookie.
            return match api::create_api_key(
                st,
                caller,
                Bytes::from(json!({"name": f("name")}).to_string()),
            )
            .await
            {
                Ok(resp) => {
                    let bytes = axum::body::to_bytes(resp.into_body(), 64 * 1024)
                        .await
                        .unwrap_or_default();
                    let v: Value = serde_json::from_slice(&bytes).unwrap_or_default();
                    let notice = format!(
                        "<div class=\"flash\" role=\"status\">Key <strong>{}</strong> created. Copy it now: it is not shown again.<pre id=\"new-key\">{}</pre></div>",
                        esc(v["name"].as_str().unwrap_or("")),
                        esc(v["key"].as_str().unwrap_or(""))
                    );
                    users_page(state, &s, Some(notice)).await
                }
                Err(e) => done("/ui/users", format!("error: {}", error_text(e).1)),
            };
        }
        _ => Err(bad("unknown action")),
    };
    outcome("/ui/users", result, |msg| msg)
}

// ---- settings --------------------------------------------------------------------------------------------

pub async fn settings(State(state): State<AppState>, Extension(s): Extension<Session>) -> Response {
    let c = &state.config.config;
    let mut b = format!(
        "<h1>Settings</h1><div class=\"grid\"><section class=\"panel\"><h2>You</h2><dl class=\"kv\"><dt>User</dt><dd>{}</dd><dt>Role</dt><dd>{}</dd>\
<dt>Session</dt><dd>renewed while you use it; ends {} hours after your last sign-in, or when you sign out</dd></dl>\
<h3>Theme</h3><form method=\"post\" action=\"/ui/settings\" class=\"row\">{csrf}<input type=\"hidden\" name=\"action\" value=\"theme\">\
<label class=\"check\"><input type=\"radio\" name=\"theme\" value=\"light\"{}> light</label><label class=\"check\"><input type=\"radio\" name=\"theme\" value=\"dark\"{}> dark</label><button type=\"submit\">Save</button></form>\
<h3>Change password</h3><form method=\"post\" action=\"/ui/settings\" class=\"filters\">{csrf}<input type=\"hidden\" name=\"action\" value=\"password\">\
<label>Current<input type=\"password\" name=\"current_password\" required autocomplete=\"current-password\"></label>\
<label>New (12+)<input type=\"password\" name=\"new_password\" required minlength=\"12\" autocomplete=\"new-password\"></label><button type=\"submit\">Change</button></form></section>",
        esc(&s.caller.name),
        s.role.as_str(),
        c.auth.refresh_token_secs / 3600,
        if s.theme == "light" { " checked" } else { "" },
        if s.theme == "dark" { " checked" } else { "" },
        csrf = csrf_field(&s),
    );
    let _ = write!(
        b,
        "<section class=\"panel\"><h2>Service</h2><dl class=\"kv\"><dt>Version</dt><dd>{}</dd><dt>Started</dt><dd>{}</dd><dt>Rules loaded</dt><dd>{}</dd>\
<dt>Behaviour scoring</dt><dd>{}</dd><dt>Address table</dt><dd>{}</dd><dt>Dedup window</dt><dd>{} s</dd><dt>Incident window</dt><dd>{} s</dd>\
<dt>Access token</dt><dd>{} s</dd></dl><p class=\"small muted\">Configuration is read from the config file and <code>CLOUDSENTINEL_*</code> variables at start; see <a href=\"/docs\">the API docs</a>.</p></section></div>",
        env!("CARGO_PKG_VERSION"),
        time_cell(&state.started),
        state.rules.len(),
        if state.learning.enabled { "on" } else { "off" },
        esc(&state.learning.netdb_source),
        c.pipeline.dedup_window_secs,
        c.pipeline.incident_window_secs,
        c.auth.access_token_secs,
    );
    page(&s, "Settings", Nav::Settings, None, &b)
}

pub async fn settings_action(
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

// ---- notifications ----------------------------------------------------------------------------

/// An RFC 3339 time from the API as "3 minutes ago", or a dash.
fn ago_cell(v: &Value) -> String {
    v.as_str()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| time_cell(&t.with_timezone(&Utc)))
        .unwrap_or_else(|| "—".into())
}

pub async fn notifications(
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
    let can_test = s.can("POST", "/api/v1/notifications/{name}/test");
    let mut b = String::from(
        "<h1>Notifications</h1><p class=\"muted\">Where alerts are delivered (the <code>[[notify]]</code> sinks of the configuration), \
         how their deliveries stand, and each message with its tries. A sink that fails is retried with backoff; ingest goes on.</p>",
    );
    let list = sinks["sinks"].as_array().cloned().unwrap_or_default();
    if list.is_empty() {
        b.push_str("<p class=\"panel\">No sinks are configured. Add <code>[[notify]]</code> tables to the configuration file (see <code>cloudsentinel.example.toml</code>) and restart.</p>");
    } else {
        b.push_str("<table id=\"sinks-table\"><thead><tr><th>Sink</th><th>Kind</th><th>Destination</th><th>From level</th><th>State</th><th>Pending</th><th>Sent</th><th>Retried</th><th>Dead</th><th>Last success</th><th>Last failure</th><th></th></tr></thead><tbody>");
        for x in &list {
            let name = x["name"].as_str().unwrap_or("");
            let state_cell = if x["failing"].as_bool().unwrap_or(false) {
                format!(
                    "<span class=\"lvl high\">failing</span><br><span class=\"small\">{}</span>",
                    esc(x["last_error"].as_str().unwrap_or(""))
                )
            } else {
                "<span class=\"lvl low\">ok</span>".into()
            };
            let test = if can_test {
                format!(
                    "<form method=\"post\" action=\"/ui/notifications\">{}<input type=\"hidden\" name=\"action\" value=\"test\"><input type=\"hidden\" name=\"name\" value=\"{}\"><button type=\"submit\" title=\"Send a test message to this sink now\">Send test</button></form>",
                    csrf_field(&s),
                    esc(name)
                )
            } else {
                String::new()
            };
            let _ = write!(
                b,
                "<tr><td class=\"nowrap\"><a href=\"/ui/notifications?sink={}\"><strong>{}</strong></a></td><td class=\"nowrap\">{}</td><td class=\"small mono\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td></tr>",
                urlenc(name),
                esc(name),
                esc(x["kind"].as_str().unwrap_or("")),
                esc(x["destination"].as_str().unwrap_or("")),
                esc(x["min_level"].as_str().unwrap_or("")),
                state_cell,
                x["pending"],
                x["sent"],
                x["retried"],
                x["dead"],
                ago_cell(&x["last_success"]),
                ago_cell(&x["last_failure"]),
                test
            );
        }
        b.push_str("</tbody></table>");
    }
    let _ = write!(
        b,
        "<h2>Deliveries</h2><form class=\"panel filters\" method=\"get\" action=\"/ui/notifications\" role=\"search\">\
         <label>Sink <input name=\"sink\" value=\"{}\"></label>\
         <label>Status <select name=\"status\">{}</select></label><button type=\"submit\">Filter</button></form>",
        esc(q.get("sink").map(String::as_str).unwrap_or("")),
        ["", "pending", "sent", "dead"]
            .iter()
            .map(|o| format!(
                "<option value=\"{o}\"{}>{}</option>",
                if q.get("status").map(String::as_str) == Some(*o) {
                    " selected"
                } else {
                    ""
                },
                if o.is_empty() { "any" } else { o }
            ))
            .collect::<String>()
    );
    b.push_str("<table id=\"deliveries-table\"><thead><tr><th>#</th><th>Sink</th><th>Alert</th><th>Change</th><th>Status</th><th>Tries</th><th>Queued</th><th>Sent</th><th>Latency</th><th>Last error</th></tr></thead><tbody>");
    for d in deliveries["items"].as_array().into_iter().flatten() {
        let alert = match d["alert_id"].as_i64() {
            Some(id) => format!("<a href=\"/ui/alerts/{id}\">#{id}</a>"),
            None => "test".into(),
        };
        let status = d["status"].as_str().unwrap_or("");
        let _ = write!(
            b,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td><span class=\"lvl {}\">{}</span></td><td>{}</td><td class=\"nowrap\">{}</td><td class=\"nowrap\">{}</td><td>{}</td><td class=\"small\">{}</td></tr>",
            d["id"],
            esc(d["sink"].as_str().unwrap_or("")),
            alert,
            esc(d["change"].as_str().unwrap_or("")),
            match status {
                "sent" => "low",
                "dead" => "critical",
                _ => "medium",
            },
            esc(status),
            d["attempts"],
            ago_cell(&d["created"]),
            ago_cell(&d["sent"]),
            d["latency_ms"]
                .as_i64()
                .map(|ms| format!("{ms} ms"))
                .unwrap_or_else(|| "—".into()),
            esc(d["last_error"].as_str().unwrap_or("")),
        );
    }
    b.push_str("</tbody></table>");
    let filter: String = ["sink", "status"]
        .iter()
        .filter_map(|k| {
            q.get(*k)
                .filter(|v| !v.is_empty())
                .map(|v| format!("&{k}={}", urlenc(v)))
        })
        .collect();
    b.push_str(&pager(
        "/ui/notifications",
        &filter,
        deliveries["total"].as_u64().unwrap_or(0),
        deliveries["offset"].as_u64().unwrap_or(0),
        50,
    ));
    page(&s, "Notifications", Nav::Notifications, None, &b)
}

pub async fn notifications_action(
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
