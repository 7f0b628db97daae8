//! The alert queue: filters, the sortable table of alerts and bulk actions on them.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use cloudsentinel_alert::{AlertRecord, AlertStatus};
use cloudsentinel_core::Level;
use cloudsentinel_store::AlertSort;
use maud::{Markup, html};
use serde_json::json;

use super::{
    Kind, Nav, Q, Session, action_form, age, csrf_field, done, error_text, fail, field,
    level_badge, page, pager, pivot, status_badge, technique_tags, time_cell, urlenc, when,
};
use crate::routes::Op;
use crate::{AppState, api, blocking};

/// The statuses the queue shows unless asked otherwise.
const ACTIVE: &str = "open,acknowledged,investigating";

/// The queue's query as the API's, without empty form fields; `status` defaults to the
/// active ones and `all` means any.
fn queue_params(q: &BTreeMap<String, String>, me: &str) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = q
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    // The owner filter: nobody, the signed-in user, or (by the API's own parameters) anyone.
    match p.remove("owner").as_deref() {
        Some("none") => {
            p.insert("unassigned".into(), "true".into());
        }
        Some("me") => {
            p.insert("assignee".into(), me.to_string());
        }
        _ => {}
    }
    match p.get("status").map(String::as_str) {
        None => {
            p.insert("status".into(), ACTIVE.into());
        }
        Some("all") => {
            p.remove("status");
        }
        Some("active") => {
            p.insert("status".into(), ACTIVE.into());
        }
        _ => {}
    }
    p.entry("limit".into()).or_insert_with(|| "50".into());
    // What needs attention first unless another order is asked for: level, then the newest
    // arrival (a backfilled high alert is new, whatever its events' time).
    p.entry("sort".into()).or_insert_with(|| "attention".into());
    p
}

/// The sorts the queue offers: (API name, label).
const SORTS: [(&str, &str); 6] = [
    ("attention", "Needs attention (level, newest arrival)"),
    ("last_seen", "Last seen"),
    ("first_seen", "First seen"),
    ("level", "Level"),
    ("count", "Events"),
    ("tp_score", "Feedback model score"),
];

/// Who may own an alert: the users that are enabled and may triage (not viewers), by name;
/// `also` (a current owner no longer in the list) is kept.
pub(super) async fn owners(state: &AppState, also: Option<&str>) -> Vec<String> {
    let mut names: Vec<String> = blocking(state, |st| st.users())
        .await
        .unwrap_or_default()
        .into_iter()
        .filter(|u| !u.disabled && u.role != "viewer")
        .map(|u| u.username)
        .collect();
    if let Some(a) = also
        && !names.iter().any(|n| n == a)
    {
        names.push(a.to_string());
    }
    names.sort();
    names
}

/// A `select` of the owners, `current` selected (the empty value is nobody).
pub(super) fn owner_select(
    name: &str,
    id: &str,
    owners: &[String],
    current: Option<&str>,
    nobody: &str,
) -> Markup {
    html! {
        select name=(name) id=(id) {
            option value="" selected[current.is_none()] { (nobody) }
            @for o in owners {
                option value=(o) selected[current == Some(o.as_str())] { (o) }
            }
        }
    }
}

/// The parameters as a URL query (`a=1&b=2`), leaving out `skip`.
fn query_string(p: &BTreeMap<String, String>, skip: &[&str]) -> String {
    p.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}", urlenc(k), urlenc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) async fn alerts(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let params = queue_params(&q, &s.caller.name);
    let query = match api::alert_query(&params) {
        Ok(query) => query,
        Err(e) => return fail(&s, e),
    };
    let (limit, offset) = (query.limit as u64, query.offset);
    let sort = query.sort;
    let desc = query.descending;
    let page_data = match blocking(&state, move |st| st.alerts(&query)).await {
        Ok(p) => p,
        Err(e) => return fail(&s, e),
    };
    let can_edit = s.can(Op::EditAlert);
    let owners_list = if can_edit {
        owners(&state, None).await
    } else {
        Vec::new()
    };
    let ids: Vec<String> = page_data.items.iter().map(|a| a.entity.clone()).collect();
    let names = blocking(&state, move |st| st.actor_names(&api::object_ids(ids)))
        .await
        .unwrap_or_default();

    // The table, in a form for bulk actions.
    let base = query_string(&params, &["offset", "sort", "order"]);
    let back = format!("/ui/alerts?{}", query_string(&params, &[]));
    // A sortable column's header (`aria-sort` on the header cell, where it is allowed).
    let sort_th = |label: &str, key: &str, this: AlertSort, class: &str| {
        let current = sort == this;
        let next_order = if current && desc { "asc" } else { "desc" };
        let sep = if base.is_empty() { "" } else { "&" };
        let aria_sort = current.then_some(if desc { "descending" } else { "ascending" });
        html! {
            th scope="col" class=[(!class.is_empty()).then_some(class)] aria-sort=[aria_sort] {
                a href={ "/ui/alerts?" (base) (sep) "sort=" (key) "&order=" (next_order) } {
                    (label)
                    @if current { (if desc { " ↓" } else { " ↑" }) }
                }
            }
        }
    };
    let results = html! {
        p.muted.small id="queue-total" data-total=(page_data.total) {
            "Matching alerts: " (page_data.total) "."
        }
        @if page_data.items.is_empty() {
            p.empty { "No alerts match these filters." }
        } @else {
            table.cards id="alerts-table" {
                thead {
                    tr {
                        @if can_edit {
                            th scope="col" {
                                input type="checkbox" id="select-all"
                                    aria-label="Select all on this page";
                            }
                        }
                        (sort_th("Level", "level", AlertSort::Level, ""))
                        th scope="col" { "Alert" }
                        th scope="col" { "Entity" }
                        th scope="col" { "Techniques" }
                        (sort_th("Events", "count", AlertSort::Count, "num"))
                        th scope="col" { "Status and owner" }
                        (sort_th("Age", "attention", AlertSort::Attention, ""))
                        (sort_th("Last seen", "last_seen", AlertSort::LastSeen, ""))
                    }
                }
                tbody id="queue-rows" {
                    @for a in &page_data.items {
                        (alert_row(a, can_edit, &s.caller.name, names.get(&a.entity)))
                    }
                }
            }
        }
        (pager("/ui/alerts", &base, page_data.total, offset, limit))
    };
    let body = html! {
        h1 { "Alerts" }
        (filters(&q))
        div id="queue" data-region {
            @if can_edit {
                form method="post" action="/ui/alerts/bulk" id="bulk" {
                    (csrf_field(&s))
                    input type="hidden" name="back" value=(back);
                    div.bulk role="group" aria-label="Bulk actions" {
                        span.muted id="selected-count" { "none selected" }
                        button type="submit" name="action" value="acknowledge" data-needs-selection
                            id="bulk-ack" { "Acknowledge" }
                        button type="submit" name="action" value="assign_me" data-needs-selection
                            id="bulk-assign-me" { "Assign to me" }
                        label.check {
                            "Assign to "
                            (owner_select("assignee", "bulk-assignee", &owners_list,
                                Some(s.caller.name.as_str()), "nobody (unassign)"))
                        }
                        button type="submit" name="action" value="assign" data-needs-selection
                            id="bulk-assign" { "Assign" }
                        button type="submit" name="action" value="close" data-needs-selection
                            id="bulk-close" { "Close" }
                    }
                    (results)
                }
            } @else {
                (results)
            }
            p.small.muted {
                "Keys: " span.kbd { "/" } " search, " span.kbd { "j" } "/" span.kbd { "k" }
                " next/previous alert."
            }
        }
    };
    page(&s, "Alerts", Nav::Alerts, Some("alerts"), body)
}

/// The filter form, showing the query as asked.
fn filters(q: &BTreeMap<String, String>) -> Markup {
    let val = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    // The status as asked ("" = active).
    let mut status_opts = vec![
        ("", "active (open, acknowledged, investigating)"),
        ("all", "any"),
    ];
    for st in AlertStatus::ALL {
        status_opts.push((st.as_str(), st.as_str()));
    }
    let kinds = [
        ("", "any"),
        ("rule", "rule"),
        ("correlation", "correlation"),
        ("anomaly", "anomaly (behaviour)"),
    ];
    let texts = [
        ("principal", "Principal"),
        ("account", "Account"),
        ("technique", "Technique"),
        ("rule", "Rule id"),
    ];
    html! {
        form.panel.filters method="get" action="/ui/alerts" role="search" id="filters" {
            label {
                "Search "
                input type="search" name="q" id="q" value=(val("q"))
                    placeholder="title, entity, rule, explanation" aria-keyshortcuts="/";
            }
            label {
                "Level"
                select name="min_level" id="min_level" {
                    option value="" { "low and above (informational left out)" }
                    @for l in Level::ALL.iter().rev() {
                        option value=(l.as_str()) selected[val("min_level") == l.as_str()] {
                            (l.as_str()) " and above"
                        }
                    }
                }
            }
            label {
                "Kind"
                select name="kind" id="kind" {
                    @for (v, label) in kinds {
                        option value=(v) selected[val("kind") == v] { (label) }
                    }
                }
            }
            label {
                "Status"
                select name="status" id="status" {
                    @for (v, label) in status_opts {
                        option value=(v) selected[val("status") == v] { (label) }
                    }
                }
            }
            @for (k, label) in texts {
                label { (label) input type="text" name=(k) value=(val(k)) size="14"; }
            }
            label {
                "Owner"
                select name="owner" id="owner" {
                    @for (v, label) in [("", "anyone"), ("none", "nobody"), ("me", "me")] {
                        option value=(v) selected[val("owner") == v] { (label) }
                    }
                }
            }
            label {
                "Order"
                select name="sort" id="sort" {
                    @for (v, label) in SORTS {
                        option value=(v) selected[val("sort") == v || (val("sort").is_empty() && v == "attention")] {
                            (label)
                        }
                    }
                }
            }
            @if let Some(order) = q.get("order") {
                input type="hidden" name="order" value=(order);
            }
            button.primary type="submit" id="apply" { "Filter" }
            " "
            a.button href="/ui/alerts" { "Reset" }
        }
    }
}

/// One alert of the queue; `name` is the name its events gave the entity, `me` who is signed in.
fn alert_row(a: &AlertRecord, can_edit: bool, me: &str, name: Option<&String>) -> Markup {
    html! {
        tr data-alert=(a.id) {
            @if can_edit {
                td data-label="Select" {
                    input type="checkbox" name="id" value=(a.id)
                        aria-label={ "Select alert " (a.id) };
                }
            }
            td data-label="Level" { (level_badge(a.level)) }
            td.alert data-label="Alert" {
                a href={ "/ui/alerts/" (a.id) } data-row-link { (a.title) }
                br;
                span.kind { (a.kind) }
                " "
                span.small.muted { "#" (a.id) }
            }
            td.wrap data-label="Entity" {
                @if let Some(n) = name.filter(|n| **n != a.entity) {
                    (n) br;
                    span.small { (pivot(Kind::Principal, &a.entity)) }
                } @else {
                    (pivot(Kind::Principal, &a.entity))
                }
                @if let Some(account) = &a.account {
                    br;
                    span.small { "account " (pivot(Kind::Account, account)) }
                }
            }
            td data-label="Techniques" { (technique_tags(&a.techniques)) }
            td.num data-label="Events" { (a.count) }
            td data-label="Status and owner" {
                (status_badge(a.status))
                @if let Some(assignee) = &a.assignee {
                    br;
                    span.small.muted { "owner " } span.small { (assignee) }
                } @else if can_edit {
                    br;
                    button.small type="submit" name="action" value={ "me:" (a.id) }
                        data-assign-me { "Assign to me" }
                }
                @if let Some(v) = a.verdict {
                    br;
                    span.small.muted { (v.as_str().replace('_', " ")) }
                }
                @if a.assignee.as_deref() == Some(me) {
                    " " span.tag { "yours" }
                }
            }
            td.nowrap data-label="Age" {
                time datetime=(a.created.to_rfc3339()) title={ "arrived " (when(&a.created)) } {
                    (age(&a.created))
                }
            }
            td.nowrap data-label="Last seen" { (time_cell(&a.last_seen)) }
        }
    }
}

pub(super) async fn alerts_bulk(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, Op::EditAlert) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = field(&fields, "back")
        .filter(|b| b.starts_with("/ui/alerts"))
        .unwrap_or("/ui/alerts")
        .to_string();
    // One alert's own "Assign to me" (`me:<id>`), or the selected ones.
    let action = field(&fields, "action").unwrap_or("");
    let one: Option<i64> = action.strip_prefix("me:").and_then(|v| v.parse().ok());
    let ids: Vec<i64> = match one {
        Some(id) => vec![id],
        None => fields
            .iter()
            .filter(|(k, _)| k == "id")
            .filter_map(|(_, v)| v.parse().ok())
            .take(500)
            .collect(),
    };
    if ids.is_empty() {
        return done(&back, "error: select at least one alert");
    }
    let patch = match action {
        "acknowledge" => json!({"status": "acknowledged"}),
        "close" => json!({"status": "closed"}),
        "assign_me" => json!({"assignee": s.caller.name}),
        _ if one.is_some() => json!({"assignee": s.caller.name}),
        "assign" => match field(&fields, "assignee").map(str::trim) {
            Some("") => json!({"assignee": null}),
            Some(a) => json!({"assignee": a}),
            None => return done(&back, "error: say who to assign them to"),
        },
        _ => return done(&back, "error: unknown action"),
    };
    let mut changed = 0;
    let mut errors = Vec::new();
    for id in &ids {
        match api::update_alert(
            State(state.clone()),
            Extension(s.caller.clone()),
            Path(*id),
            Bytes::from(patch.to_string()),
        )
        .await
        {
            Ok(_) => changed += 1,
            Err(e) => errors.push(format!("#{id}: {}", error_text(e).1)),
        }
    }
    let what = match action {
        "acknowledge" => "acknowledged".to_string(),
        "close" => "closed".to_string(),
        "assign" if patch["assignee"].is_null() => "unassigned".to_string(),
        "assign" => format!("assigned to {}", patch["assignee"].as_str().unwrap_or("")),
        _ => "assigned to you".to_string(),
    };
    if errors.is_empty() {
        let n = super::plural(changed, "alert", "alerts");
        done(&back, format!("{n} {what}."))
    } else {
        done(
            &back,
            format!(
                "error: {changed} alerts {what}; failed: {}",
                errors.join("; ")
            ),
        )
    }
}
