//! Rules: the loaded rules with their alert counts, turning a rule on or off, and the active
//! suppressions.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use maud::{Markup, html};
use serde_json::{Value, json};

use super::{
    Nav, Q, Session, action_form, csrf_field, fail, field, level_badge, outcome, page,
    technique_tags, urlenc,
};
use crate::error::ApiError;
use crate::{AppState, api, blocking};

/// Alerts per rule id.
async fn rule_hits(state: &AppState) -> Result<BTreeMap<String, u64>, ApiError> {
    let top = blocking(state, |st| st.top_rules(None, 100_000)).await?;
    Ok(top.into_iter().map(|r| (r.rule_id, r.alerts)).collect())
}

pub(super) async fn rules(
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
    // Active suppressions.
    let sups = match api::list_suppressions(State(state)).await {
        Ok(axum::Json(v)) => v["items"].as_array().cloned().unwrap_or_default(),
        Err(e) => return fail(&s, e),
    };
    let can_toggle = s.can("PATCH", "/api/v1/rules/{id}");
    let body = html! {
        h1 { "Rules" }
        p.muted {
            (items.len()) " rules loaded, " (disabled) " disabled. "
            a href="/ui/coverage" { "ATT&CK coverage →" }
        }
        form.panel.filters method="get" action="/ui/rules" role="search" {
            label {
                "Search"
                input type="search" name="q" value=(q.get("q").map(String::as_str).unwrap_or(""))
                    placeholder="title, id, description";
            }
            label { "Technique" input type="text" name="technique" value=(technique) size="10"; }
            label {
                "Source"
                input type="text" name="source" value=(source) size="14"
                    placeholder="file or folder";
            }
            button.primary type="submit" { "Filter" }
        }
        p.muted.small { (shown.len()) " shown." }
        table id="rules-table" {
            thead {
                tr {
                    th { "Level" }
                    th { "Rule" }
                    th { "Techniques" }
                    th.num { "Alerts" }
                    th { "State" }
                }
            }
            tbody {
                @for r in shown {
                    (rule_row(&s, r, &hits, can_toggle))
                }
            }
        }
        (suppressions(&s, &sups))
    };
    page(&s, "Rules", Nav::Rules, None, body)
}

/// One rule: level, name and where it comes from, techniques, alerts, and its switch.
fn rule_row(s: &Session, r: &Value, hits: &BTreeMap<String, u64>, can_toggle: bool) -> Markup {
    let id = r["id"].as_str().unwrap_or("");
    let enabled = r["enabled"] != json!(false);
    let level = r["level"]
        .as_str()
        .and_then(|l| l.parse().ok())
        .map(level_badge);
    let techniques: Vec<String> = r["techniques"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|t| t.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    let n = hits.get(id).copied().unwrap_or(0);
    html! {
        tr data-rule=(id) {
            td { @if let Some(l) = level { (l) } }
            td {
                strong { (r["title"].as_str().unwrap_or("")) } " "
                span.kind { (r["kind"].as_str().unwrap_or("")) }
                br;
                code.small { (id) } " "
                span.small.muted { (r["source"].as_str().unwrap_or("")) }
            }
            td { (technique_tags(&techniques)) }
            td.num {
                @if n > 0 {
                    a href={ "/ui/alerts?rule=" (urlenc(id)) "&status=all" } { (n) }
                } @else {
                    "0"
                }
            }
            td {
                @if can_toggle {
                    form method="post" action={ "/ui/rules/" (urlenc(id)) } {
                        (csrf_field(s))
                        input type="hidden" name="enabled" value=(!enabled);
                        button type="submit" class=(if enabled { "" } else { "primary" })
                            aria-label={
                                (if enabled { "Disable" } else { "Enable" }) " "
                                (r["title"].as_str().unwrap_or(id))
                            } {
                            (if enabled { "Enabled · disable" } else { "Disabled · enable" })
                        }
                    }
                } @else if enabled {
                    "enabled"
                } @else {
                    strong { "disabled" }
                }
            }
        }
    }
}

/// The panel of active suppressions, each with its remove button for those who may.
fn suppressions(s: &Session, sups: &[Value]) -> Markup {
    let can_remove = s.can("DELETE", "/api/v1/suppressions/{id}");
    html! {
        section.panel id="suppressions" {
            h2 { "Active suppressions (" (sups.len()) ")" }
            @if sups.is_empty() {
                p.empty { "None. Suppress a rule for one entity from an alert's page." }
            } @else {
                table {
                    thead {
                        tr { th { "Rule" } th { "Entity" } th { "Reason" } th { "Until" } th {} }
                    }
                    tbody {
                        @for x in sups {
                            @let str_of = |k: &str| x[k].as_str().unwrap_or("");
                            tr {
                                td { code { (str_of("rule_id")) } }
                                td { (str_of("entity")) }
                                td {
                                    (str_of("reason")) " "
                                    span.small.muted { "by " (str_of("author")) }
                                }
                                td.small { (str_of("expires")) }
                                td {
                                    @if can_remove {
                                        form method="post"
                                            action={ "/ui/suppressions/" (x["id"]) } {
                                            (csrf_field(s))
                                            button type="submit" { "Remove" }
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

pub(super) async fn suppression_delete(
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

pub(super) async fn rule_toggle(
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
