//! Rules: the loaded rules with their alert counts, turning a rule on or off, and the active
//! suppressions.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::SecondsFormat;
use cloudsentinel_detect::RuleKind;
use cloudsentinel_store::SuppressionRecord;
use maud::{Markup, html};
use serde_json::json;

use super::{
    Nav, Q, Session, action_form, csrf_field, fail, field, level_badge, outcome, page,
    technique_tags, urlenc,
};
use crate::api::ListedRule;
use crate::error::ApiError;
use crate::routes::Op;
use crate::{AppState, api, blocking};

/// This page's own routes, merged into the dashboard's (behind sign-in).
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
}

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
    let items = &list.items;
    let shown: Vec<&ListedRule> = items
        .iter()
        .filter(|r| {
            (text.is_empty()
                || r.title.to_lowercase().contains(&text)
                || r.id.to_lowercase().contains(&text)
                || r.description
                    .as_deref()
                    .unwrap_or("")
                    .to_lowercase()
                    .contains(&text))
                && (technique.is_empty()
                    || r.techniques
                        .iter()
                        .any(|x| *x == technique || x.starts_with(&format!("{technique}."))))
                && (source.is_empty() || r.source.to_lowercase().contains(&source.to_lowercase()))
        })
        .collect();
    let disabled = items.iter().filter(|r| !r.enabled).count();
    // Active suppressions.
    let sups = match api::list_suppressions(State(state)).await {
        Ok(axum::Json(list)) => list.items,
        Err(e) => return fail(&s, e),
    };
    let can_toggle = s.can(Op::ToggleRule);
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
fn rule_row(s: &Session, r: &ListedRule, hits: &BTreeMap<String, u64>, can_toggle: bool) -> Markup {
    let id = r.id.as_str();
    let n = hits.get(id).copied().unwrap_or(0);
    html! {
        tr data-rule=(id) {
            td { (level_badge(r.level)) }
            td {
                strong { (r.title) } " "
                span.kind { (rule_kind(r.kind)) }
                br;
                code.small { (id) } " "
                span.small.muted { (r.source) }
            }
            td { (technique_tags(&r.techniques)) }
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
                        input type="hidden" name="enabled" value=(!r.enabled);
                        button type="submit" class=(if r.enabled { "" } else { "primary" })
                            aria-label={
                                (if r.enabled { "Disable" } else { "Enable" }) " " (r.title)
                            } {
                            (if r.enabled { "Enabled · disable" } else { "Disabled · enable" })
                        }
                    }
                } @else if r.enabled {
                    "enabled"
                } @else {
                    strong { "disabled" }
                }
            }
        }
    }
}

/// A rule's kind as the API names it.
fn rule_kind(kind: RuleKind) -> &'static str {
    match kind {
        RuleKind::Detection => "detection",
        RuleKind::Correlation => "correlation",
    }
}

/// The panel of active suppressions, each with its remove button for those who may.
fn suppressions(s: &Session, sups: &[SuppressionRecord]) -> Markup {
    let can_remove = s.can(Op::Unsuppress);
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
                            tr {
                                td { code { (x.rule_id) } }
                                td { (x.entity) }
                                td {
                                    (x.reason) " "
                                    span.small.muted { "by " (x.author) }
                                }
                                td.small { (x.expires.to_rfc3339_opts(SecondsFormat::AutoSi, true)) }
                                td {
                                    @if can_remove {
                                        form method="post"
                                            action={ "/ui/suppressions/" (x.id) } {
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
    if let Err(r) = action_form(&s, &body, Op::Unsuppress) {
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
    let fields = match action_form(&s, &body, Op::ToggleRule) {
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
