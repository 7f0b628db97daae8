//! Incidents: the list, one incident's story across ATT&CK tactics, and its triage.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{
    Kind, Nav, Q, Session, action_form, age, at, attack, csrf_field, fail, field, level_badge,
    outcome, page, pager, pivot, status_badge, technique_tags, urlenc, when,
};
use crate::routes::Op;
use crate::{AppState, api, blocking};

pub(super) async fn incidents(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let mut params: BTreeMap<String, String> = q
        .iter()
        .filter(|(k, v)| !v.is_empty() && ["status", "offset"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params.insert("limit".into(), "50".into());
    let shown = q.get("status").cloned().unwrap_or_default();
    let list = match api::list_incidents(State(state), Query(params)).await {
        Ok(axum::Json(list)) => list,
        Err(e) => return fail(&s, e),
    };
    let (items, total, offset) = (&list.items, list.total, list.offset);
    let base = if shown.is_empty() {
        String::new()
    } else {
        format!("status={}", urlenc(&shown))
    };
    let statuses = [
        ("", "any"),
        ("open", "open"),
        ("acknowledged", "acknowledged"),
        ("investigating", "investigating"),
        ("resolved", "resolved"),
        ("closed", "closed"),
    ];
    let body = html! {
        h1 { "Incidents" }
        form.panel.filters method="get" action="/ui/incidents" {
            label {
                "Status"
                select name="status" {
                    @for (v, label) in statuses {
                        option value=(v) selected[shown == v] { (label) }
                    }
                }
            }
            button type="submit" { "Filter" }
        }
        div id="incidents" data-region {
            @if items.is_empty() {
                p.empty { "No incidents." }
            } @else {
                table.cards {
                    thead {
                        tr {
                            th { "Level" } th { "Incident" } th { "Entity" } th.num { "Alerts" }
                            th { "Tactics" } th { "Status" } th { "Span" }
                        }
                    }
                    tbody {
                        @for i in items { (incident_row(i, &list.names)) }
                    }
                }
            }
            (pager("/ui/incidents", &base, total, offset, 50))
        }
    };
    page(&s, "Incidents", Nav::Incidents, Some("incidents"), body)
}

/// One incident of the list; `names` maps object ids to the names their events gave them.
fn incident_row(i: &IncidentRecord, names: &BTreeMap<String, String>) -> Markup {
    html! {
        tr {
            td data-label="Level" { (level_badge(i.severity.unwrap_or(i.level))) }
            td data-label="Incident" {
                a href={ "/ui/incidents/" (i.id) } data-row-link { (i.title) }
                " " span.small.muted { "#" (i.id) }
            }
            td data-label="Entity" {
                (named(&i.entity, names.get(&i.entity).map(String::as_str)))
                @if let Some(account) = &i.account {
                    br;
                    span.small.muted { "account " (pivot(Kind::Account, account)) }
                }
            }
            td.num data-label="Alerts" { (i.alert_count) }
            td.small data-label="Tactics" { (tactic_names(&i.tactics).join(", ")) }
            td data-label="Status" { (status_badge(i.status)) }
            td.small data-label="Span" { (at(&i.first_seen)) " → " (age(&i.last_seen)) " ago" }
        }
    }
}

/// The names of ATT&CK tactics (their ids when unknown).
fn tactic_names(ids: &[String]) -> Vec<&str> {
    ids.iter()
        .map(|t| attack::tactic_name(t).unwrap_or(t.as_str()))
        .collect()
}

/// An entity with the name its events gave it when it is an object id ("svc@corp
/// (33361d06-...)").
pub(super) fn named(entity: &str, name: Option<&str>) -> Markup {
    html! {
        @match name {
            Some(name) => { (pivot(Kind::Principal, entity)) " " span.small.muted { "(" (name) ")" } }
            None => { (pivot(Kind::Principal, entity)) }
        }
    }
}

pub(super) async fn incident(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    let state2 = std::sync::Arc::clone(&state);
    let answer = match api::get_incident(State(state), Path(id)).await {
        Ok(axum::Json(answer)) => answer,
        Err(e) => return fail(&s, e),
    };
    let (i, alerts) = (&answer.incident, &answer.alerts);
    let narrative = &answer.narrative.narrative;
    // Containment taken or waiting on the incident's alerts (each alert's page acts on them).
    let alert_ids: Vec<i64> = alerts.iter().map(|a| a.id).collect();
    let responses = blocking(&state2, move |st| {
        let mut out = Vec::new();
        for id in alert_ids {
            out.extend(st.responses(Some(id), 100)?);
        }
        Ok(out)
    })
    .await
    .unwrap_or_default();
    let body = html! {
        p.small { a href="/ui/incidents" { "← Incidents" } }
        div.row { (level_badge(i.severity.unwrap_or(i.level))) h1 { (i.title) } }
        p.row {
            (status_badge(i.status)) " " span.muted { "#" (i.id) } " "
            span {
                (i.alert_count) " alerts about "
                strong { (named(&i.entity, answer.names.get(&i.entity).map(String::as_str))) }
                @if let Some(account) = &i.account { " in " (pivot(Kind::Account, account)) }
                " from " (at(&i.first_seen)) " to " (at(&i.last_seen))
            }
        }
        section.panel id="narrative" {
            h2 { "What happened" }
            p { (narrative.summary) }
            ol.steps {
                @for step in &narrative.steps {
                    li { (step) }
                }
            }
            @for note in &narrative.notes {
                p.small { (note) }
            }
        }
        // Who works it, how bad it is, why it was closed, and the analysts' notes.
        p.row.small {
            span { "Assignee: " strong { (i.assignee.as_deref().unwrap_or("nobody")) } }
            span {
                "Severity: "
                @match i.severity {
                    Some(l) => {
                        (level_badge(l)) " "
                        span.muted { "(set by an analyst; its alerts say " (i.level.as_str()) ")" }
                    }
                    None => { (level_badge(i.level)) " " span.muted { "(from its alerts)" } }
                }
            }
            @if let Some(reason) = &i.close_reason { span { "Close reason: " (reason) } }
        }
        @if s.can(Op::EditIncident) {
            (incident_form(&s, i))
        }
        @if !answer.comments.is_empty() {
            section.panel id="comments" {
                h2 { "Notes" }
                ul {
                    @for c in &answer.comments {
                        li {
                            strong { (c.author) } " "
                            span.small.muted { (at(&c.time)) }
                            br;
                            (c.text)
                        }
                    }
                }
            }
        }
        @if !responses.is_empty() {
            section.panel id="responses" {
                h2 { "Containment" }
                table.cards {
                    thead { tr { th { "#" } th { "Alert" } th { "Action" } th { "Status" } th { "Who" } } }
                    tbody {
                        @for r in &responses {
                            tr {
                                td data-label="#" { (r.id) }
                                td data-label="Alert" { a href={ "/ui/alerts/" (r.alert_id) } { "#" (r.alert_id) } }
                                td data-label="Action" { code.small { (r.action) } }
                                td data-label="Status" { span class={ "lvl " (match r.status.as_str() { "done" => "low", "failed" | "refused" => "critical", "undone" => "informational", _ => "medium" }) } { (r.status) } }
                                td.small data-label="Who" {
                                    (r.proposed_by)
                                    @if let Some(b) = &r.run_by { " → " (b) }
                                    @if let Some(b) = &r.undone_by { " (undone by " (b) ")" }
                                }
                            }
                        }
                    }
                }
            }
        }
        (story(i, alerts))
        section.panel {
            h2 { "Alerts in order" }
            ol.story {
                @for a in alerts {
                    li class=(a.level.as_str()) {
                        span.small.muted { (at(&a.first_seen)) } " "
                        (level_badge(a.level)) " "
                        a href={ "/ui/alerts/" (a.id) } { (a.title) } " "
                        (status_badge(a.status))
                        " " span.small { (pivot(Kind::Principal, &a.entity)) }
                        br;
                        span.small { (tactic_names(&a.tactics).join(" · ")) } " "
                        (technique_tags(&a.techniques))
                    }
                }
            }
        }
    };
    page(
        &s,
        &format!("Incident #{}", i.id),
        Nav::Incidents,
        None,
        body,
    )
}

/// Status, assignee, severity, close reason and a comment.
fn incident_form(s: &Session, i: &IncidentRecord) -> Markup {
    html! {
        form.panel method="post" action={ "/ui/incidents/" (i.id) } {
            (csrf_field(s))
            div.row {
                label {
                    "Status"
                    select name="status" {
                        @for st in AlertStatus::ALL {
                            option value=(st.as_str()) selected[st == i.status] { (st.as_str()) }
                        }
                    }
                }
                label {
                    "Assignee"
                    input name="assignee" maxlength="64"
                        value=(i.assignee.as_deref().unwrap_or_default()) placeholder="nobody";
                }
                label {
                    "Severity"
                    select name="severity" {
                        option value="" { "from its alerts" }
                        @for l in ["low", "medium", "high", "critical"] {
                            option value=(l) selected[i.severity.map(|x| x.as_str()) == Some(l)] {
                                (l)
                            }
                        }
                    }
                }
                label {
                    "Close reason"
                    input name="close_reason" maxlength="2000"
                        value=(i.close_reason.as_deref().unwrap_or_default())
                        placeholder="needed to resolve or close";
                }
            }
            label {
                "Comment"
                textarea name="comment" maxlength="10000"
                    placeholder="a note for the next analyst (optional)" {}
            }
            button type="submit" { "Save" }
        }
    }
}

/// The incident's alerts on a time axis, one lane per ATT&CK tactic they have.
fn story(i: &IncidentRecord, alerts: &[AlertRecord]) -> Markup {
    let span = (i.last_seen - i.first_seen).num_seconds().max(1) as f64;
    let x = |t: &DateTime<Utc>| 10.0 + (*t - i.first_seen).num_seconds() as f64 / span * 980.0;
    let mut lanes: Vec<(&str, &str)> = attack::TACTICS.to_vec();
    lanes.push(("", "No tactic"));
    let lanes: Vec<(&str, Vec<&AlertRecord>)> = lanes
        .into_iter()
        .map(|(tid, tname)| {
            let hits: Vec<&AlertRecord> = alerts
                .iter()
                .filter(|a| {
                    if tid.is_empty() {
                        a.tactics.is_empty()
                    } else {
                        a.tactics.iter().any(|t| t == tid)
                    }
                })
                .collect();
            (tname, hits)
        })
        .filter(|(_, hits)| !hits.is_empty())
        .collect();
    html! {
        section.panel id="story" {
            h2 { "The story across ATT&CK tactics" }
            div.lanes {
                @for (tname, hits) in &lanes {
                    div.lane { (tname) }
                    div.lane {
                        svg viewBox="0 0 1000 20" preserveAspectRatio="none" aria-hidden="true" {
                            line x1="0" y1="10" x2="1000" y2="10" {}
                            @for a in hits {
                                rect x=(format!("{:.1}", x(&a.first_seen) - 3.0)) y="3" width="6"
                                    height="14" rx="2" {
                                    title { "#" (a.id) " " (a.title) " at " (when(&a.first_seen)) }
                                }
                            }
                        }
                    }
                }
            }
            div.axislabels { span { (at(&i.first_seen)) } span { (at(&i.last_seen)) } }
        }
    }
}

pub(super) async fn incident_update(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, Op::EditIncident) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut patch = serde_json::Map::new();
    if let Some(st) = field(&fields, "status") {
        patch.insert("status".into(), json!(st));
    }
    for name in ["assignee", "severity", "close_reason"] {
        if let Some(v) = field(&fields, name) {
            let v = v.trim();
            patch.insert(
                name.into(),
                if v.is_empty() { Value::Null } else { json!(v) },
            );
        }
    }
    if let Some(c) = field(&fields, "comment").filter(|c| !c.trim().is_empty()) {
        patch.insert("comment".into(), json!(c));
    }
    let body = Value::Object(patch);
    let back = format!("/ui/incidents/{id}");
    let result = api::update_incident(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(body.to_string()),
    )
    .await;
    outcome(&back, result, |_| "Saved.".to_string())
}
