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
use super::{
    Kind, Nav, Session, action_form, attack, csrf_field, done, entity_url, fail, field,
    level_badge, outcome, page, pivot, search_url, status_badge, time_cell, urlenc, when,
};
use cloudsentinel_context::NetContext;
use facts::{Fact, Piece};

pub(super) mod facts;
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
    let owners_list = if s.can(Op::EditAlert) {
        super::queue::owners(&state, a.assignee.as_deref()).await
    } else {
        Vec::new()
    };
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
    let net = &state.learning.net;
    let read = Reading::of(a, &detail);
    let baseline = if a.kind == "anomaly" {
        baseline_of(&state, a, evidence).await
    } else {
        None
    };
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
            (what_happened(a, &detail, names.get(&a.entity).map(String::as_str), &read, net))
            (detection(a, &detail, &read))
            (triage(&s, a, &detail, &owners_list))
            section.panel id="entity" { h2 { "Entity" } (entity_tree(a, evidence, around, net)) }
        }
        @if let Some(b) = &baseline {
            (b)
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

/// What the page reads from the alert and its evidence: the key facts, the rule's match in words,
/// the remedy filled in and the rule's detection as written.
struct Reading {
    facts: Vec<Fact>,
    /// How many evidence records the facts come from.
    records: usize,
    /// The rule's match: its selections and field values, when the explanation is one.
    matched: Option<facts::Matched>,
    remedy: Option<Vec<Piece>>,
    detection: Option<String>,
}

impl Reading {
    fn of(a: &AlertRecord, detail: &api::AlertDetail) -> Reading {
        let matched = facts::matched(&a.explanation);
        let fields: &[(String, String)] = matched.as_ref().map_or(&[], |m| &m.1);
        // The facts of every evidence record shown, the first record's first.
        let mut all: Vec<Fact> = Vec::new();
        let mut records = 0;
        for e in &detail.evidence {
            let Some(raw) = &e.raw else { continue };
            records += 1;
            for f in facts::key_facts(raw, e.account.as_deref(), fields) {
                if !all.iter().any(|x| x.label == f.label && x.value == f.value) {
                    all.push(f);
                }
            }
        }
        all.truncate(16);
        let first = detail.evidence.iter().find_map(|e| e.raw.as_ref());
        let remedy = detail
            .rule
            .as_ref()
            .and_then(|r| r.remedy.as_deref())
            .map(|r| {
                facts::fill(
                    r,
                    first,
                    &facts::Context {
                        principal: &a.entity,
                        facts: &all,
                    },
                )
            });
        let detection = detail
            .rule
            .as_ref()
            .and_then(|r| super::rules::rule_text(&r.source, &r.id, &r.title))
            .and_then(|y| facts::detection_block(&y));
        Reading {
            facts: all,
            records,
            matched,
            remedy,
            detection,
        }
    }
}

/// An address with its AS and country (from the service's address tables), each a pivot.
fn address(net: &NetContext, ip: &str) -> Markup {
    let n = net.network(ip);
    html! {
        span.addr {
            (pivot(Kind::Ip, ip))
            @if let Some(n) = n {
                " "
                span.net {
                    "("
                    @if let Some(asn) = n.asn {
                        a.pv href=(entity_url(Kind::As, &asn.to_string())) {
                            "AS" (asn)
                            @if let Some(name) = &n.as_name { " " (name) }
                        }
                    }
                    @if let Some(c) = n.country {
                        @if n.asn.is_some() { ", " }
                        a href=(search_url("country", c.as_str())) { (c.as_str()) }
                    }
                    @if let Some(cloud) = n.cloud {
                        ", " (cloud.as_str()) " address"
                    }
                    ")"
                }
            } @else if ip.parse::<std::net::IpAddr>().is_ok() {
                " " span.small.muted { "(no AS: a private or reserved address)" }
            }
        }
    }
}

/// A fact's value: a pivot when it names something with a page.
fn fact_value(f: &Fact) -> Markup {
    match f.kind {
        Some(k) => pivot(k, &f.value),
        None => html! { code { (f.value) } },
    }
}

/// Who, where from, when, the key facts, why, and the incident it is part of.
fn what_happened(
    a: &AlertRecord,
    detail: &api::AlertDetail,
    name: Option<&str>,
    read: &Reading,
    net: &NetContext,
) -> Markup {
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
                @if let Some(n) = name { strong { (n) } " " }
                (pivot(Kind::Principal, &a.entity))
                @if let Some(account) = &a.account { " in account " (pivot(Kind::Account, account)) }
                @if let Some(ip) = &a.source_ip {
                    " from " (address(net, ip))
                }
                @if let Some(key) = &a.access_key {
                    " with key " a href=(search_url("principal", key)) { (key) }
                }
                " — " (a.count) " matching event" @if a.count != 1 { "s" } " " (span) "."
            }
            @if !read.facts.is_empty() {
                dl.kv id="key-facts" {
                    @for f in &read.facts {
                        dt { (f.label) }
                        dd title={ "from " (f.path) } { (fact_value(f)) }
                    }
                }
                @if read.records > 1 {
                    p.small.muted { "From the " (read.records) " evidence records shown below." }
                }
            }
            h3 { (heading) }
            (why(a, read))
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

/// Why it fired in words, the match as the engine wrote it and the rule's detection folded away.
fn why(a: &AlertRecord, read: &Reading) -> Markup {
    // An anomaly's explanation: `anomaly score 0.71 (threshold 0.62): a; b; c`.
    let anomaly = a
        .explanation
        .strip_prefix("anomaly score ")
        .and_then(|r| r.split_once("): "))
        .map(|(score, parts)| (score, parts.split("; ").collect::<Vec<_>>()));
    html! {
        @if let Some((_, fields)) = &read.matched {
            @let words: Vec<String> = fields
                .iter()
                .map(|(f, v)| facts::field_in_words(f, v))
                .collect();
            p id="explanation" {
                @if words.is_empty() {
                    (a.explanation)
                } @else {
                    "It fired because " (facts::and_list(&words)) "."
                }
            }
        } @else if let Some((_, parts)) = &anomaly {
            p id="explanation" { "Unusual for this principal:" }
            ul.why { @for p in parts { li { (p) } } }
        } @else {
            p id="explanation" { (a.explanation) }
        }
        @if read.matched.is_some() || read.detection.is_some() || anomaly.is_some() {
            details.condition {
                summary { "The matching condition" }
                p.small { "As the detection engine recorded it:" }
                pre tabindex="0" { (a.explanation) }
                @if let Some(d) = &read.detection {
                    p.small { "The rule's Sigma detection:" }
                    pre tabindex="0" { (d) }
                }
            }
        }
    }
}

/// The rule, its ATT&CK techniques and remedy.
fn detection(a: &AlertRecord, detail: &api::AlertDetail, read: &Reading) -> Markup {
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
            @if let Some(pieces) = &read.remedy {
                h3 { "Remedy" }
                p id="remedy" {
                    @for piece in pieces {
                        @match piece {
                            Piece::Text(t) => {
                                @for (i, line) in t.split('\n').enumerate() {
                                    @if i > 0 { br; }
                                    (line)
                                }
                            }
                            Piece::Filled { placeholder, value, path } => {
                                mark.filled title={ (placeholder) " from the evidence: " (path) } {
                                    (value)
                                }
                            }
                            Piece::Unfilled(p) => { code.placeholder { (p) } }
                        }
                    }
                }
                @if pieces.iter().any(|p| matches!(p, Piece::Filled { .. })) {
                    p.small.muted {
                        "Highlighted values are filled in from the first evidence record; "
                        "placeholders left as " code.placeholder { "<name>" } " were not in it."
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
fn triage(s: &Session, a: &AlertRecord, detail: &api::AlertDetail, owners: &[String]) -> Markup {
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
                        "Owner"
                        (super::queue::owner_select("assignee", "assignee", owners,
                            a.assignee.as_deref(), "nobody"))
                    }
                    button type="submit" { "Save" }
                }
                @if a.assignee.as_deref() != Some(s.caller.name.as_str()) {
                    form.inline method="post" action={ "/ui/alerts/" (a.id) } id="assign-me" {
                        (csrf_field(s))
                        input type="hidden" name="assignee" value=(s.caller.name);
                        button type="submit" { "Assign to me" }
                    }
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
fn entity_tree(
    a: &AlertRecord,
    evidence: &[EventRow],
    around: &[EventRow],
    net: &NetContext,
) -> Markup {
    type Leaf = BTreeMap<String, (u64, BTreeSet<String>)>;
    // Keyed by (session name, access key).
    type Credential = (Option<String>, Option<String>);
    let mut tree: BTreeMap<Credential, BTreeMap<String, Leaf>> = BTreeMap::new();
    let evidence_ids: BTreeSet<&str> = evidence.iter().map(|e| e.id.as_str()).collect();
    for e in evidence.iter().chain(
        around
            .iter()
            .filter(|e| !evidence_ids.contains(e.id.as_str())),
    ) {
        let session = (e.actor_name.clone(), e.access_key.clone());
        let ip = e.source_ip.clone().unwrap_or_default();
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
                strong { (pivot(Kind::Principal, &a.entity)) }
                ul {
                    @for ((name, key), ips) in tree.iter().take(12) {
                        li {
                            span.nodekind { "credential" }
                            @if let Some(n) = name { "session " (n) }
                            @if name.is_some() && key.is_some() { " · " }
                            @if let Some(k) = key {
                                "key " a href=(search_url("principal", k)) { (k) }
                            }
                            @if name.is_none() && key.is_none() { "no session or key recorded" }
                            ul {
                                @for (ip, ops) in ips.iter().take(12) {
                                    li {
                                        span.nodekind { "from" }
                                        @if ip.is_empty() {
                                            "no address"
                                        } @else {
                                            (address(net, ip))
                                        }
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
                                                                    (pivot(Kind::Resource, r))
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
    let state_after = state.clone();
    let result = api::alert_feedback(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(body.to_string()),
    )
    .await;
    // What the verdict did to the status (the API's handler decides; this says so).
    let after = blocking(&state_after, move |st| st.alert(id))
        .await
        .ok()
        .flatten()
        .map(|a| a.status.as_str());
    let then = match (verdict, after) {
        ("true_positive", Some("investigating")) => "; the alert is now investigating",
        ("true_positive", _) => "",
        _ => "; the alert is closed",
    };
    outcome(&back, result, |_| {
        format!("Marked {}{then}.", verdict.replace('_', " "))
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
                            pre.calls tabindex="0" { @for c in &p.calls { (c) "\n" } }
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
                                            pre.calls tabindex="0" { @for c in &v.calls { (c) "\n" } } }
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

/// Days of the principal's history an anomaly alert is compared with.
const BASELINE_DAYS: i64 = 14;
/// Events of that history read at most (the latest ones).
const BASELINE_EVENTS: u32 = 2000;

/// What is usual for one aspect of a principal's activity: values and how often.
#[derive(Default)]
struct Usual(BTreeMap<String, u64>);

impl Usual {
    fn add(&mut self, v: String) {
        *self.0.entry(v).or_default() += 1;
    }

    /// The most frequent values, with counts.
    fn top(&self, n: usize) -> Vec<(&str, u64)> {
        let mut v: Vec<(&str, u64)> = self.0.iter().map(|(k, c)| (k.as_str(), *c)).collect();
        v.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }
}

/// Hours of the day as ranges: [8, 9, 10, 14] is "08–10, 14 UTC".
fn hour_ranges(hours: &BTreeSet<u32>) -> String {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<(u32, u32)> = None;
    for h in hours.iter().copied() {
        run = match run {
            Some((a, b)) if h == b + 1 => Some((a, h)),
            Some((a, b)) => {
                out.push(if a == b {
                    format!("{a:02}")
                } else {
                    format!("{a:02}–{b:02}")
                });
                Some((h, h))
            }
            None => Some((h, h)),
        };
    }
    if let Some((a, b)) = run {
        out.push(if a == b {
            format!("{a:02}")
        } else {
            format!("{a:02}–{b:02}")
        });
    }
    if out.is_empty() {
        "none".into()
    } else {
        format!("{} UTC", out.join(", "))
    }
}

/// An anomaly alert's evidence against what is usual for its principal: the principal's
/// events of the [`BASELINE_DAYS`] before the alert (the latest [`BASELINE_EVENTS`]), by
/// country, AS, hour, operation, client and region, each value of the evidence marked when the
/// history never had it.
async fn baseline_of(state: &AppState, a: &AlertRecord, evidence: &[EventRow]) -> Option<Markup> {
    use chrono::Timelike;
    use cloudsentinel_learn::behaviour::agent_family;
    let (since, until) = (
        a.first_seen - chrono::Duration::days(BASELINE_DAYS),
        a.first_seen,
    );
    let principal = a.entity.clone();
    let history = blocking(state, move |st| {
        st.events(&cloudsentinel_store::EventQuery {
            since: Some(since),
            until: Some(until),
            principal: Some(principal),
            limit: BASELINE_EVENTS,
            ..Default::default()
        })
    })
    .await
    .ok()?;
    let net = &state.learning.net;
    let mut nets: BTreeMap<String, (Option<String>, Option<String>)> = BTreeMap::new();
    let mut lookup = |ip: &str| {
        nets.entry(ip.to_string())
            .or_insert_with(|| {
                let n = net.network(ip);
                (
                    n.as_ref().and_then(|n| n.asn).map(|a| format!("AS{a}")),
                    n.as_ref()
                        .and_then(|n| n.country)
                        .map(|c| c.as_str().to_string()),
                )
            })
            .clone()
    };
    #[derive(Default)]
    struct Aspects {
        countries: Usual,
        ases: Usual,
        addresses: Usual,
        operations: Usual,
        agents: Usual,
        regions: Usual,
        hours: [u64; 24],
    }
    let mut of = |rows: &[EventRow]| {
        let mut x = Aspects::default();
        for e in rows {
            if let Some(ip) = &e.source_ip {
                let (asn, country) = lookup(ip);
                x.addresses.add(ip.clone());
                if let Some(a) = asn {
                    x.ases.add(a);
                }
                if let Some(c) = country {
                    x.countries.add(c);
                }
            }
            x.operations.add(format!(
                "{}:{}",
                e.service.trim_end_matches(".amazonaws.com"),
                e.operation
            ));
            if let Some(ua) = &e.user_agent {
                x.agents.add(agent_family(ua));
            }
            if let Some(r) = &e.region {
                x.regions.add(r.clone());
            }
            x.hours[e.time.hour() as usize] += 1;
        }
        x
    };
    let usual = of(&history.items);
    let this = of(evidence);
    let n = history.items.len() as u64;
    let max_hour = usual.hours.iter().copied().max().unwrap_or(0);
    let usual_hours: BTreeSet<u32> = (0..24u32)
        .filter(|h| max_hour > 0 && usual.hours[*h as usize] * 20 >= max_hour)
        .collect();
    let this_hours: BTreeSet<u32> = (0..24u32).filter(|h| this.hours[*h as usize] > 0).collect();
    let row = |label: &str, u: &Usual, t: &Usual, pivot_kind: Option<Kind>| {
        html! {
            tr {
                th scope="row" { (label) }
                td data-label="Usual" {
                    @if u.0.is_empty() {
                        span.muted { "none recorded" }
                    } @else {
                        @for (i, (v, c)) in u.top(5).into_iter().enumerate() {
                            @if i > 0 { ", " }
                            (baseline_value(v, pivot_kind)) " " span.small.muted { "×" (c) }
                        }
                        @if u.0.len() > 5 { span.small.muted { " and " (u.0.len() - 5) " more" } }
                    }
                }
                td data-label="This alert" {
                    @if t.0.is_empty() {
                        span.muted { "—" }
                    } @else {
                        @for (i, (v, _)) in t.top(5).into_iter().enumerate() {
                            @if i > 0 { ", " }
                            (baseline_value(v, pivot_kind))
                            @if !u.0.contains_key(v) { " " span.tag.new { "new" } }
                        }
                    }
                }
            }
        }
    };
    Some(html! {
        section.panel id="baseline" {
            h2 { "Against the baseline" }
            @if n == 0 {
                p {
                    "No events of " (pivot(Kind::Principal, &a.entity)) " are stored in the "
                    (BASELINE_DAYS) " days before the alert: everything it did is new."
                }
            } @else {
                p.small.muted {
                    "Usual: " (pivot(Kind::Principal, &a.entity)) "'s "
                    @if history.total > n { "latest " (n) " of " (history.total) } @else { (n) }
                    " events in the " (BASELINE_DAYS) " days before the alert. "
                    "This alert: its evidence events."
                }
            }
            table.cards.baseline {
                thead { tr { th scope="col" { "Aspect" } th scope="col" { "Usual" } th scope="col" { "This alert" } } }
                tbody {
                    (row("Country", &usual.countries, &this.countries, None))
                    (row("Network (AS)", &usual.ases, &this.ases, Some(Kind::As)))
                    (row("Address", &usual.addresses, &this.addresses, Some(Kind::Ip)))
                    tr {
                        th scope="row" { "Hour of day" }
                        td data-label="Usual" { (hour_ranges(&usual_hours)) }
                        td data-label="This alert" {
                            (hour_ranges(&this_hours))
                            @if n >= 20 && !this_hours.is_empty() && this_hours.iter().any(|h| !usual_hours.contains(h)) {
                                " " span.tag.new { "unusual" }
                            }
                        }
                    }
                    (row("Operation", &usual.operations, &this.operations, None))
                    (row("Client", &usual.agents, &this.agents, None))
                    (row("Region", &usual.regions, &this.regions, None))
                }
            }
        }
    })
}

/// A value of the baseline table, a pivot where it names an address or an AS.
fn baseline_value(v: &str, kind: Option<Kind>) -> Markup {
    match kind {
        Some(Kind::As) => html! {
            a.pv href=(entity_url(Kind::As, v.trim_start_matches("AS"))) { (v) }
        },
        Some(k) => pivot(k, v),
        None => html! { (v) },
    }
}
