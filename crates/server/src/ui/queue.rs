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

use super::incidents::named;
use super::{
    Nav, Q, Session, action_form, csrf_field, done, error_text, fail, field, level_badge, page,
    pager, status_badge, technique_tags, time_cell, urlenc,
};
use crate::routes::Op;
use crate::{AppState, api, blocking};

/// The statuses the queue shows unless asked otherwise.
const ACTIVE: &str = "open,acknowledged,investigating";

/// The queue's query as the API's, without empty form fields; `status` defaults to the
/// active ones and `all` means any.
fn queue_params(q: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = q
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
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
    p
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
    let params = queue_params(&q);
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
    let ids: Vec<String> = page_data.items.iter().map(|a| a.entity.clone()).collect();
    let names = blocking(&state, move |st| st.actor_names(&api::object_ids(ids)))
        .await
        .unwrap_or_default();

    // The table, in a form for bulk actions.
    let base = query_string(&params, &["offset", "sort", "order"]);
    let back = format!("/ui/alerts?{}", query_string(&params, &[]));
    let sort_link = |label: &str, key: &str, this: AlertSort| {
        let current = sort == this;
        let next_order = if current && desc { "asc" } else { "desc" };
        let sep = if base.is_empty() { "" } else { "&" };
        let aria_sort = current.then_some(if desc { "descending" } else { "ascending" });
        html! {
            a href={ "/ui/alerts?" (base) (sep) "sort=" (key) "&order=" (next_order) }
                aria-sort=[aria_sort] {
                (label)
                @if current { (if desc { " ↓" } else { " ↑" }) }
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
            table id="alerts-table" {
                thead {
                    tr {
                        @if can_edit {
                            th scope="col" {
                                input type="checkbox" id="select-all"
                                    aria-label="Select all on this page";
                            }
                        }
                        th scope="col" { (sort_link("Level", "level", AlertSort::Level)) }
                        th scope="col" { "Alert" }
                        th scope="col" { "Entity" }
                        th scope="col" { "Techniques" }
                        th.num scope="col" { (sort_link("Events", "count", AlertSort::Count)) }
                        th scope="col" { "Status" }
                        th scope="col" {
                            (sort_link("Last seen", "last_seen", AlertSort::LastSeen))
                        }
                    }
                }
                tbody id="queue-rows" {
                    @for a in &page_data.items {
                        (alert_row(a, can_edit, names.get(&a.entity)))
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
                        label.check {
                            "Assign to "
                            input type="text" name="assignee" size="10" value=(s.caller.name)
                                aria-label="Assignee";
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
            @if let Some(sort) = q.get("sort") {
                input type="hidden" name="sort" value=(sort);
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

/// One alert of the queue; `name` is the name its events gave the entity.
fn alert_row(a: &AlertRecord, can_edit: bool, name: Option<&String>) -> Markup {
    html! {
        tr data-alert=(a.id) {
            @if can_edit {
                td {
                    input type="checkbox" name="id" value=(a.id)
                        aria-label={ "Select alert " (a.id) };
                }
            }
            td { (level_badge(a.level)) }
            td {
                a href={ "/ui/alerts/" (a.id) } data-row-link { (a.title) }
                br;
                span.kind { (a.kind) }
                " "
                span.small.muted { "#" (a.id) }
            }
            td {
                a href={ "/ui/alerts?principal=" (urlenc(&a.entity)) "&status=all" } {
                    (named(&a.entity, name.map(String::as_str)))
                }
                @if let Some(account) = &a.account {
                    br;
                    span.small.muted { (account) }
                }
            }
            td { (technique_tags(&a.techniques)) }
            td.num { (a.count) }
            td {
                (status_badge(a.status))
                @if let Some(assignee) = &a.assignee {
                    br;
                    span.small.muted { "→ " (assignee) }
                }
                @if let Some(v) = a.verdict {
                    br;
                    span.small.muted { (v.as_str().replace('_', " ")) }
                }
            }
            td.nowrap { (time_cell(&a.last_seen)) }
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
    let ids: Vec<i64> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .take(500)
        .collect();
    if ids.is_empty() {
        return done(&back, "error: select at least one alert");
    }
    let patch = match field(&fields, "action") {
        Some("acknowledge") => json!({"status": "acknowledged"}),
        Some("close") => json!({"status": "closed"}),
        Some("assign") => match field(&fields, "assignee").map(str::trim) {
            Some(a) if !a.is_empty() => json!({"assignee": a}),
            _ => return done(&back, "error: say who to assign them to"),
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
    let what = match field(&fields, "action") {
        Some("acknowledge") => "acknowledged",
        Some("close") => "closed",
        _ => "assigned",
    };
    if errors.is_empty() {
        done(&back, format!("{changed} alerts {what}."))
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
