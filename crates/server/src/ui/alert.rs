//! One alert's page: what happened, the detection, triage, the entity, the principal's activity
//! around it, the evidence and who was told; and the actions on it.

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use chrono::{DateTime, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus};
use cloudsentinel_store::{DeliveryRecord, EventRow};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::events::events_table;
use super::incidents::named;
use super::{
    Nav, Session, action_form, attack, csrf_field, done, fail, field, level_badge, outcome, page,
    status_badge, time_cell, urlenc, when,
};
use crate::error::ApiError;
use crate::routes::Op;
use crate::{AppState, api, blocking};

/// This page's own routes, merged into the dashboard's (behind sign-in).
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}

pub(super) async fn alert(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    let detail = match api::alert_detail(&state, id).await {
        Ok(d) => d,
        Err(e) => return fail(&s, e),
    };
    let a = &detail.alert;
    let (evidence, around) = (&detail.evidence, &detail.around.items);
    let entity = a.entity.clone();
    let names = blocking(&state, move |st| {
        st.actor_names(&api::object_ids(vec![entity]))
    })
    .await
    .unwrap_or_default();
    // Who was told, and whether it arrived.
    let deliveries = if !state.notifier.is_empty() && s.can(Op::ListDeliveries) {
        let alert_id = a.id;
        let found = blocking(&state, move |st| {
            st.deliveries(&cloudsentinel_store::DeliveryQuery {
                alert_id: Some(alert_id),
                limit: 50,
                ..Default::default()
            })
        })
        .await
        .map(|p| p.items)
        .unwrap_or_default();
        Some(found)
    } else {
        None
    };
    // What containment the playbooks propose, and what was done.
    let responses = api::alert_responses_of(&state, a.id).await.ok();
    let body = html! {
        p.small { a href="/ui/alerts" { "← Alerts" } }
        div.row { (level_badge(a.level)) h1 id="alert-title" { (a.title) } }
        p.row id="alert-state" data-region {
            (status_badge(a.status))
            " " span.kind { (a.kind) " alert" }
            " " span.muted { "#" (a.id) }
            @if let Some(assignee) = &a.assignee {
                " " span { "assigned to " strong { (assignee) } }
            }
            @if let Some(v) = a.verdict {
                " " span.tag id="verdict" { (v.as_str().replace('_', " ")) }
            }
        }
        div.grid {
            (what_happened(a, &detail, names.get(&a.entity).map(String::as_str)))
            (detection(a, &detail))
            (triage(&s, a, &detail))
            section.panel id="entity" { h2 { "Entity" } (entity_tree(a, evidence, around)) }
        }
        // Containment: what the playbooks propose and what was done, next to the triage.
        @if let Some(r) = &responses
            && (!r.proposals.is_empty() || !r.responses.is_empty())
        {
            (response_panel(&s, a.id, r))
        }
        // Timeline of the principal around it.
        section.panel id="timeline" {
            h2 { (a.entity) "'s activity around it" }
            (activity_timeline(a, evidence, around, &detail))
        }
        // The principal's other findings around it, informational signals included.
        section.panel id="signals" {
            h2 { "Other findings about " (a.entity) " around it" }
            (signals_list(&detail.signals))
        }
        section.panel id="evidence" {
            h2 { "Evidence (" (evidence.len()) " of " (a.count) " events)" }
            (events_table(evidence, true))
        }
        @if let Some(deliveries) = &deliveries {
            (notified(deliveries))
        }
    };
    page(
        &s,
        &format!("Alert #{}", a.id),
        Nav::Alerts,
        Some(&format!("alert:{}", a.id)),
        body,
    )
}

/// Who, where from, when, why, and the incident it is part of.
fn what_happened(a: &AlertRecord, detail: &api::AlertDetail, name: Option<&str>) -> Markup {
    let span = if a.first_seen == a.last_seen {
        format!("at {}", when(&a.first_seen))
    } else {
        format!("between {} and {}", when(&a.first_seen), when(&a.last_seen))
    };
    let heading = if a.kind == "anomaly" {
        "Why this is unusual"
    } else {
        "Why it fired"
    };
    html! {
        section.panel id="what" {
            h2 { "What happened" }
            p {
                strong { (named(&a.entity, name)) }
                @if let Some(account) = &a.account { " in " strong { (account) } }
                @if let Some(ip) = &a.source_ip {
                    " from " a href={ "/ui/events?source_ip=" (urlenc(ip)) } { (ip) }
                }
                " — " (a.count) " matching event" @if a.count != 1 { "s" } " " (span) "."
            }
            h3 { (heading) }
            p id="explanation" { (a.explanation) }
            @if let Some(score) = a.tp_score {
                p.small.muted {
                    "Feedback model: " (format!("{:.0}", score * 100.0)) "% likely a true positive."
                }
            }
            @if let Some(inc) = a.incident_id {
                p {
                    "Part of " a href={ "/ui/incidents/" (inc) } { "incident #" (inc) }
                    @if let Some(i) = &detail.incident { ": " (i.title) }
                    "."
                }
            }
        }
    }
}

/// The rule, its ATT&CK techniques and remedy.
fn detection(a: &AlertRecord, detail: &api::AlertDetail) -> Markup {
    let remedy = detail.rule.as_ref().and_then(|r| r.remedy.as_deref());
    html! {
        section.panel id="rule" {
            h2 { "Detection" }
            @if let Some(rule) = &detail.rule {
                dl.kv {
                    dt { "Rule" } dd { (rule.title) " " code { (a.rule_id) } }
                    dt { "Source" } dd { (rule.source) }
                }
                @if let Some(d) = &rule.description { p { (d) } }
                @if !rule.false_positives.is_empty() {
                    h3 { "Known false positives" }
                    ul { @for f in &rule.false_positives { li { (f) } } }
                }
            } @else {
                p {
                    code { (a.rule_id) } ": "
                    @if a.kind == "anomaly" {
                        "behaviour model: this principal's activity against its own learned "
                        "baseline"
                    } @else {
                        "the rule is no longer loaded"
                    }
                }
            }
            h3 { "ATT&CK" }
            ul id="techniques" {
                @for t in &a.techniques { (technique(t)) }
                @if a.techniques.is_empty() { li.muted { "none mapped" } }
            }
            @if let Some(remedy) = remedy {
                h3 { "Remedy" }
                p id="remedy" {
                    @for (i, line) in remedy.split('\n').enumerate() {
                        @if i > 0 { br; }
                        (line)
                    }
                }
            }
        }
    }
}

/// A technique with its name and tactics, linked to its page at MITRE.
fn technique(t: &str) -> Markup {
    let tactics: Vec<&str> = attack::TECHNIQUES
        .iter()
        .find(|x| x.0 == t)
        .map(|x| x.2.iter().filter_map(|t| attack::tactic_name(t)).collect())
        .unwrap_or_default();
    html! {
        li {
            a href=(attack::url(t)) rel="noopener noreferrer" target="_blank" { (t) }
            " " (attack::name(t).unwrap_or(""))
            @if !tactics.is_empty() {
                " " span.small.muted { "(" (tactics.join(", ")) ")" }
            }
        }
    }
}

/// Feedback, status, assignment, comments.
fn triage(s: &Session, a: &AlertRecord, detail: &api::AlertDetail) -> Markup {
    let (feedback, comments) = (&detail.feedback, &detail.comments);
    html! {
        section.panel id="triage" {
            h2 { "Triage" }
            @if s.can(Op::AlertFeedback) {
                form method="post" action={ "/ui/alerts/" (a.id) "/feedback" } id="feedback" {
                    (csrf_field(s))
                    label {
                        "Reason "
                        input type="text" name="reason" id="reason" maxlength="2000"
                            placeholder="why (kept for the feedback model)";
                    }
                    div.row {
                        button type="submit" name="verdict" value="true_positive" id="mark-tp" {
                            "True positive"
                        }
                        button type="submit" name="verdict" value="false_positive" id="mark-fp" {
                            "False positive"
                        }
                        button type="submit" name="verdict" value="benign" id="mark-benign" {
                            "Benign"
                        }
                    }
                }
            }
            @if s.can(Op::EditAlert) {
                form.row method="post" action={ "/ui/alerts/" (a.id) } id="status-form" {
                    (csrf_field(s))
                    label {
                        "Status"
                        select name="status" id="status" {
                            @for st in AlertStatus::ALL {
                                option value=(st.as_str()) selected[st == a.status] {
                                    (st.as_str())
                                }
                            }
                        }
                    }
                    label {
                        "Assignee"
                        input type="text" name="assignee" id="assignee" size="12"
                            value=(a.assignee.as_deref().unwrap_or(""));
                    }
                    button type="submit" { "Save" }
                }
                form method="post" action={ "/ui/alerts/" (a.id) } id="comment-form" {
                    (csrf_field(s))
                    label {
                        "Comment"
                        textarea name="comment" id="comment" maxlength="10000" required {}
                    }
                    button type="submit" { "Add comment" }
                }
            }
            @if s.can(Op::Suppress) {
                details id="suppress" {
                    summary { "Suppress this rule for this entity" }
                    form method="post" action={ "/ui/alerts/" (a.id) "/suppress" } {
                        (csrf_field(s))
                        p.small.muted {
                            "New matches of " code { (a.rule_id) } " for " strong { (a.entity) }
                            " raise no alert until it expires (events are still stored)."
                        }
                        label {
                            "For (hours, at most 2160)"
                            input type="text" name="hours" value="24" inputmode="numeric" size="5";
                        }
                        label {
                            "Reason"
                            input type="text" name="reason" required maxlength="2000"
                                placeholder="e.g. planned migration, change 4711";
                        }
                        button type="submit" { "Suppress" }
                    }
                }
            }
            // Live: another analyst's verdict or comment shows up here (the forms above are
            // left alone).
            div id="history" data-region {
                @if feedback.is_empty() && comments.is_empty() {
                    p.muted.small { "No verdicts or comments yet." }
                } @else {
                    h3 { "History" }
                    ul {
                        @for f in feedback {
                            li {
                                strong { (f.verdict.as_str().replace('_', " ")) }
                                " by " (f.author) " " span.muted.small { (when(&f.time)) }
                                @if !f.reason.is_empty() { ": " (f.reason) }
                            }
                        }
                        @for c in comments {
                            li { (c.author) " " span.muted.small { (when(&c.time)) } ": " (c.text) }
                        }
                    }
                }
            }
        }
    }
}

/// Resources an event's original record names: CloudTrail's `resources` and the names,
/// ARNs and ids in its request; GCP's `resourceName`; Azure's `resourceId`.
fn resources(raw: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rs) = raw["resources"].as_array() {
        out.extend(
            rs.iter()
                .filter_map(|r| r["ARN"].as_str().map(str::to_string)),
        );
    }
    if let Some(req) = raw["requestParameters"].as_object() {
        for (k, v) in req {
            let k = k.to_ascii_lowercase();
            if (k.ends_with("name") || k.ends_with("arn") || k.ends_with("id"))
                && let Some(v) = v.as_str()
                && v.len() <= 200
            {
                out.push(v.to_string());
            }
        }
    }
    for p in [
        "/protoPayload/resourceName",
        "/resourceId",
        "/properties/targetResources/0/displayName",
    ] {
        if let Some(v) = raw.pointer(p).and_then(Value::as_str) {
            out.push(v.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// principal → sessions / access keys → source addresses → operations and resources.
fn entity_tree(a: &AlertRecord, evidence: &[EventRow], around: &[EventRow]) -> Markup {
    type Leaf = BTreeMap<String, (u64, BTreeSet<String>)>;
    let mut tree: BTreeMap<String, BTreeMap<String, Leaf>> = BTreeMap::new();
    let evidence_ids: BTreeSet<&str> = evidence.iter().map(|e| e.id.as_str()).collect();
    for e in evidence.iter().chain(
        around
            .iter()
            .filter(|e| !evidence_ids.contains(e.id.as_str())),
    ) {
        let session = match (&e.actor_name, &e.access_key) {
            (Some(n), Some(k)) => format!("session {n} · key {k}"),
            (Some(n), None) => format!("session {n}"),
            (None, Some(k)) => format!("key {k}"),
            (None, None) => "no session or key recorded".to_string(),
        };
        let ip = e.source_ip.clone().unwrap_or_else(|| "no address".into());
        let leaf = tree
            .entry(session)
            .or_default()
            .entry(ip)
            .or_default()
            .entry(format!("{} {}", e.service, e.operation))
            .or_default();
        leaf.0 += 1;
        if let Some(raw) = &e.raw {
            leaf.1.extend(resources(raw));
        }
    }
    html! {
        ul.tree {
            li {
                span.nodekind { "principal" }
                strong { (a.entity) }
                ul {
                    @for (session, ips) in tree.iter().take(12) {
                        li {
                            span.nodekind { "credential" }
                            (session)
                            ul {
                                @for (ip, ops) in ips.iter().take(12) {
                                    li {
                                        span.nodekind { "from" }
                                        a href={ "/ui/events?source_ip=" (urlenc(ip)) } { (ip) }
                                        ul {
                                            @for (op, (n, res)) in ops.iter().take(20) {
                                                li {
                                                    span.nodekind { "did" }
                                                    (op) " ×" (n)
                                                    @if !res.is_empty() {
                                                        ul {
                                                            @for r in res.iter().take(8) {
                                                                li {
                                                                    span.nodekind { "on" }
                                                                    code { (r) }
                                                                }
                                                            }
                                                        }
                                                    }
                                                }
                                            }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
        p.small.muted {
            "From the evidence and this principal's events an hour either side; "
            "resources from the evidence's original records."
        }
    }
}

/// The principal's other alerts and informational signals (change records, findings routine
/// for it) an hour either side of the alert, oldest first.
fn signals_list(signals: &[AlertRecord]) -> Markup {
    html! {
        @if signals.is_empty() {
            p.small { "None in the hour before or after." }
        } @else {
            ul.signals {
                @for s in signals {
                    li {
                        (when(&s.first_seen)) " " (level_badge(s.level)) " "
                        a href={ "/ui/alerts/" (s.id) } { (s.title) }
                        " " span.small { (s.explanation) }
                    }
                }
            }
        }
    }
}

/// The principal's events an hour either side of the alert, on a time axis, evidence marked.
fn activity_timeline(
    a: &AlertRecord,
    evidence: &[EventRow],
    around: &[EventRow],
    detail: &api::AlertDetail,
) -> Markup {
    let (from, to, total) = (detail.around_from, detail.around_to, detail.around.total);
    let span = (to - from).num_seconds().max(1) as f64;
    let x =
        |t: &DateTime<Utc>| ((*t - from).num_seconds() as f64 / span * 1000.0).clamp(0.0, 1000.0);
    let ids: BTreeSet<&str> = evidence.iter().map(|e| e.id.as_str()).collect();
    html! {
        div.legend {
            span { span.sw.al {} "evidence" }
            span {
                span.sw.ev {}
                "other events (" (total) " in the window"
                @if total as usize > around.len() { ", first " (around.len()) " drawn" }
                ")"
            }
        }
        svg.chart viewBox="0 0 1000 60" preserveAspectRatio="none" role="img"
            aria-label="Events over time; evidence in red" {
            line.axis x1="0" y1="30" x2="1000" y2="30" {}
            rect.ev x=(format!("{:.1}", x(&a.first_seen))) y="5"
                width=(format!("{:.1}", (x(&a.last_seen) - x(&a.first_seen)).max(2.0)))
                height="50" opacity="0.25" {}
            @for e in around.iter().chain(evidence.iter()) {
                @let is_ev = ids.contains(e.id.as_str());
                rect class=(if is_ev { "al" } else { "ev" }) x=(format!("{:.1}", x(&e.time)))
                    y=(if is_ev { 8 } else { 18 }) width="3" height=(if is_ev { 44 } else { 24 }) {
                    title {
                        (when(&e.time)) " " (e.operation) " "
                        (if e.success { "" } else { "(failed)" })
                    }
                }
            }
        }
        div.axislabels { span { (when(&from)) } span { (when(&to)) } }
        details { summary { "The events in the window" } (events_table(around, false)) }
        p.small {
            a href={
                "/ui/events?principal=" (urlenc(&a.entity)) "&since=" (urlenc(&from.to_rfc3339()))
                "&until=" (urlenc(&to.to_rfc3339()))
            } { "Search these events" }
        }
    }
}

/// The notification sinks that took the alert, and whether it arrived.
fn notified(deliveries: &[DeliveryRecord]) -> Markup {
    html! {
        section.panel id="notified" {
            h2 { "Notified" }
            @if deliveries.is_empty() {
                p.muted { "No sink took this alert (below their levels or outside their filters)." }
            } @else {
                table {
                    thead {
                        tr {
                            th { "Sink" } th { "Change" } th { "Status" } th { "Tries" }
                            th { "Sent" } th { "Last error" }
                        }
                    }
                    tbody {
                        @for d in deliveries {
                            @let status = d.status.as_str();
                            @let level = match status {
                                "sent" => "low",
                                "dead" => "critical",
                                _ => "medium",
                            };
                            tr {
                                td {
                                    a href={ "/ui/notifications?sink=" (urlenc(&d.sink)) } {
                                        (d.sink)
                                    }
                                }
                                td { (d.change) }
                                td { span class={ "lvl " (level) } { (status) } }
                                td { (d.attempts) }
                                td.nowrap {
                                    @match &d.sent {
                                        Some(t) => { (time_cell(t)) }
                                        None => { "—" }
                                    }
                                }
                                td.small { (d.last_error.as_deref().unwrap_or("")) }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn alert_update(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, Op::EditAlert) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut patch = serde_json::Map::new();
    if let Some(st) = field(&fields, "status") {
        patch.insert("status".into(), json!(st));
    }
    if let Some(a) = field(&fields, "assignee") {
        let a = a.trim();
        patch.insert(
            "assignee".into(),
            if a.is_empty() { Value::Null } else { json!(a) },
        );
    }
    if let Some(c) = field(&fields, "comment") {
        patch.insert("comment".into(), json!(c));
    }
    let back = format!("/ui/alerts/{id}");
    let result = api::update_alert(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(Value::Object(patch).to_string()),
    )
    .await;
    outcome(&back, result, |_| "Saved.".to_string())
}

pub(super) async fn alert_feedback(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, Op::AlertFeedback) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let verdict = field(&fields, "verdict").unwrap_or("");
    let body = json!({"verdict": verdict, "reason": field(&fields, "reason").unwrap_or("")});
    let back = format!("/ui/alerts/{id}");
    let result = api::alert_feedback(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(body.to_string()),
    )
    .await;
    let closed = if verdict == "true_positive" {
        ""
    } else {
        "; the alert is closed"
    };
    outcome(&back, result, |_| {
        format!("Marked {}{closed}.", verdict.replace('_', " "))
    })
}

pub(super) async fn alert_suppress(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, Op::Suppress) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = format!("/ui/alerts/{id}");
    let alert = match blocking(&state, move |st| st.alert(id)).await {
        Ok(Some(a)) => a,
        Ok(None) => return fail(&s, ApiError::NotFound(format!("alert {id}"))),
        Err(e) => return fail(&s, e),
    };
    let Some(hours) = field(&fields, "hours")
        .and_then(|h| h.trim().parse::<u32>().ok())
        .filter(|h| (1..=2160).contains(h))
    else {
        return done(&back, "error: hours: a whole number from 1 to 2160");
    };
    let body = json!({"rule_id": alert.rule_id, "entity": alert.entity,
                      "reason": field(&fields, "reason").unwrap_or(""), "duration_hours": hours});
    let result = api::create_suppression(
        State(state),
        Extension(s.caller.clone()),
        Bytes::from(body.to_string()),
    )
    .await;
    outcome(&back, result, |_| {
        format!("Suppressed for {hours} hours: see Rules for active suppressions.")
    })
}

/// Containment for this alert: the playbooks' proposals with the exact calls, and the recorded
/// responses with the step each awaits (propose, approve, run, undo) for the roles that may.
fn response_panel(s: &Session, alert_id: i64, r: &api::AlertResponses) -> Markup {
    let form = |step: &str,
                response: Option<i64>,
                action: Option<&Value>,
                playbook: Option<&str>,
                label: &str,
                class: &str| {
        html! {
            form.inline method="post" action={ "/ui/alerts/" (alert_id) "/respond" } {
                (csrf_field(s))
                input type="hidden" name="step" value=(step);
                @if let Some(id) = response { input type="hidden" name="response" value=(id); }
                @if let Some(a) = action { input type="hidden" name="action" value=(a.to_string()); }
                @if let Some(p) = playbook { input type="hidden" name="playbook" value=(p); }
                button type="submit" class=(class) { (label) }
            }
        }
    };
    html! {
        section.panel id="response" {
            h2 { "Response" }
            @for p in r.proposals.iter().filter(|p| p.response_id.is_none()) {
                div.proposal {
                    p {
                        strong { (p.title) } " "
                        span.muted.small { "playbook " (p.playbook) " · " (p.mode) }
                    }
                    @match &p.describe {
                        Some(d) => {
                            p { "Proposes: " (d) @if p.reversible == Some(false) { " " span.tag { "not exactly reversible" } } }
                            pre.calls { @for c in &p.calls { (c) "\n" } }
                            @if s.can(Op::ProposeResponse) {
                                (form("propose", None, p.action.as_ref(), Some(&p.playbook), "Propose this action", "primary"))
                            }
                        }
                        None => {
                            p.muted { "Not proposed: " (p.missing.as_deref().unwrap_or("")) }
                        }
                    }
                }
            }
            @if !r.responses.is_empty() {
                table {
                    thead { tr { th { "#" } th { "Action" } th { "Status" } th { "Who" } th { "Next" } } }
                    tbody {
                        @for v in &r.responses {
                            @let rec = &v.record;
                            tr data-response=(rec.id) {
                                td { (rec.id) }
                                td {
                                    (v.describe)
                                    @if !v.calls.is_empty() {
                                        details { summary.small { @if rec.status == "done" || rec.status == "failed" { "Undo would call" } @else { "Calls" } }
                                            pre.calls { @for c in &v.calls { (c) "\n" } } }
                                    }
                                    @if let Some(res) = &rec.result { p.small.muted { (res) } }
                                }
                                td {
                                    span class={ "lvl " (match rec.status.as_str() { "done" => "low", "failed" | "refused" => "critical", "undone" => "informational", _ => "medium" }) } { (rec.status) }
                                    @if rec.verified == Some(true) { " " span.small { "verified" } }
                                }
                                td.small {
                                    "proposed by " (rec.proposed_by)
                                    @if let Some(b) = &rec.approved_by { br; "approved by " (b) }
                                    @if let Some(b) = &rec.second_approved_by { br; "second approval by " (b) }
                                    @if let Some(b) = &rec.run_by { br; "run by " (b) }
                                    @if let Some(b) = &rec.undone_by { br; "undone by " (b) }
                                }
                                td {
                                    @let status = rec.status.as_str();
                                    @if status == "proposed" {
                                        @if s.can(Op::ApproveResponse) && !(r.four_eyes && rec.proposed_by == s.caller.name) {
                                            (form("approve", Some(rec.id), None, None, "Approve", "primary"))
                                        } @else if r.four_eyes {
                                            span.small.muted { "awaits another responder's approval" }
                                        }
                                        @if !r.four_eyes && s.can(Op::RunResponse) {
                                            (form("run", Some(rec.id), None, None, "Run", ""))
                                        }
                                    } @else if let (true, Some(why)) = (status == "approved", &v.second_approval) {
                                        p.small { (why) }
                                        @if s.can(Op::ApproveResponse)
                                            && rec.approved_by.as_deref() != Some(s.caller.name.as_str())
                                            && !(r.four_eyes && rec.proposed_by == s.caller.name)
                                        {
                                            (form("approve", Some(rec.id), None, None, "Second approval", "primary"))
                                        } @else {
                                            span.small.muted { "awaits a second responder's approval" }
                                        }
                                    } @else if status == "approved" && s.can(Op::RunResponse) {
                                        (form("run", Some(rec.id), None, None, "Run", "primary"))
                                    } @else if (status == "done" || status == "failed")
                                        && rec.before.is_some()
                                        && s.can(Op::UndoResponse)
                                    {
                                        (form("undo", Some(rec.id), None, None, "Undo", ""))
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

pub(super) async fn alert_respond(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match super::form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = format!("/ui/alerts/{id}");
    let response: i64 = field(&fields, "response")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let (op, step) = match field(&fields, "step") {
        Some("propose") => (Op::ProposeResponse, None),
        Some("approve") => (Op::ApproveResponse, Some(api::Step::Approve)),
        Some("run") => (Op::RunResponse, Some(api::Step::Run)),
        Some("undo") => (Op::UndoResponse, Some(api::Step::Undo)),
        _ => return done(&back, "error: unknown step"),
    };
    if let Err(r) = s.require(op) {
        return r;
    }
    match step {
        None => {
            let action: Value = match field(&fields, "action").map(serde_json::from_str) {
                Some(Ok(a)) => a,
                _ => return done(&back, "error: no action to propose"),
            };
            let body = api::ProposeBody {
                action,
                playbook: field(&fields, "playbook").map(str::to_string),
            };
            outcome(
                &back,
                api::propose(&state, &s.caller, id, body).await,
                |v| format!("Proposed: {} (response {}).", v.describe, v.record.id),
            )
        }
        Some(step) => match api::step(&state, &s.caller, response, step).await {
            Ok(answer) => match answer.secret {
                // A new console password: shown once, on this page, never in a redirect.
                Some(secret) => page(
                    &s,
                    "Undone",
                    Nav::Alerts,
                    None,
                    html! {
                        h1 { "Undone" }
                        div.flash role="status" { (answer.response.record.result.clone().unwrap_or_default()) }
                        p { "The new console password (shown once): " code id="new-secret" { (secret) } }
                        p { a href=(back) { "Back to the alert" } }
                    },
                ),
                None => done(
                    &back,
                    format!(
                        "Response {}: {}{}.",
                        answer.response.record.id,
                        answer.response.record.status,
                        answer
                            .response
                            .record
                            .result
                            .as_deref()
                            .map(|r| format!(" ({r})"))
                            .unwrap_or_default()
                    ),
                ),
            },
            Err(e) => done(&back, format!("error: {}", super::error_text(e).1)),
        },
    }
}
