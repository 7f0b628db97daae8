//! ATT&CK coverage: the cloud matrix, each technique coloured by the rules that detect it or by
//! its alerts.

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::{Markup, html};

use super::{Nav, Q, Session, attack, fail, page, urlenc};
use crate::{AppState, api};

/// Per technique: (rules, alerts, tactics, the ids of its rules).
type Coverage = BTreeMap<String, (u64, u64, Vec<String>, Vec<String>)>;

pub(super) async fn coverage(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let by_hits = q.get("by").map(String::as_str) == Some("hits");
    let v = match api::dashboard_coverage(State(state)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let mut cov: Coverage = BTreeMap::new();
    for it in &v.items {
        cov.insert(
            it.technique.clone(),
            (
                it.rules as u64,
                it.alerts,
                it.tactics.clone(),
                it.rule_ids.clone(),
            ),
        );
    }
    for (t, n) in &v.alerted_techniques {
        cov.entry(t.clone()).or_default().1 = *n;
    }
    let covered_known = attack::TECHNIQUES
        .iter()
        .filter(|t| cov.get(t.0).is_some_and(|c| c.0 > 0))
        .count();
    let body = html! {
        div.row.between {
            h1 { "ATT&CK coverage" }
            nav.row aria-label="Colour by" {
                a.button.primary[!by_hits] href="/ui/coverage"
                    aria-current=[(!by_hits).then_some("true")] { "By rules" }
                a.button.primary[by_hits] href="/ui/coverage?by=hits"
                    aria-current=[by_hits.then_some("true")] { "By alerts" }
            }
        }
        p.muted id="coverage-summary" {
            "Rules cover " (covered_known) " of the " (attack::TECHNIQUES.len())
            " cloud techniques drawn here (" (v.techniques_covered)
            " techniques in all, counting those outside the cloud matrix); "
            (v.techniques_alerted) " techniques have alerts."
        }
        (legend(by_hits))
        div.matrix id="matrix" {
            @for (tid, tname) in attack::TACTICS {
                (tactic(&cov, tid, tname, by_hits))
            }
        }
        p.small.muted {
            "Tactics and techniques: MITRE ATT&CK® Enterprise, cloud platforms. \
             © The MITRE Corporation."
        }
    };
    page(&s, "ATT&CK coverage", Nav::Coverage, None, body)
}

/// What the colours mean.
fn legend(by_hits: bool) -> Markup {
    let entries: &[(&str, &str)] = if by_hits {
        &[
            ("c0", "no alerts"),
            ("h1", "1–9"),
            ("h2", "10–99"),
            ("h3", "100+"),
        ]
    } else {
        &[("c0", "no rule"), ("c1", "1 rule"), ("c2", "2+ rules")]
    };
    html! {
        div.legend {
            @for (class, label) in entries {
                span { span class={ "sw " (class) } {} (label) }
            }
        }
    }
}

/// One tactic's column: its techniques, with those our rules name under it from outside the
/// cloud matrix (named from [`attack::OTHER_TECHNIQUES`]).
fn tactic(cov: &Coverage, tid: &str, tname: &str, by_hits: bool) -> Markup {
    let known: BTreeSet<&str> = attack::TECHNIQUES.iter().map(|t| t.0).collect();
    let mut cells: Vec<(String, &str, bool)> = attack::TECHNIQUES
        .iter()
        .filter(|t| t.2.contains(&tid))
        .map(|t| (t.0.to_string(), t.1, true))
        .collect();
    for (t, (_, _, tactics, _)) in cov {
        if !known.contains(t.as_str()) && tactics.iter().any(|x| x == tid) {
            cells.push((t.clone(), attack::name(t).unwrap_or(""), false));
        }
    }
    let covered = cells
        .iter()
        .filter(|c| cov.get(&c.0).is_some_and(|x| x.0 > 0))
        .count();
    html! {
        section.tactic aria-label=(tname) {
            h3 { (tname) " " span.muted { (covered) "/" (cells.len()) } }
            @for (id, name, in_matrix) in &cells {
                (technique(cov, id, name, *in_matrix, by_hits))
            }
        }
    }
}

/// One technique's cell, linking to its alerts, or to its rule (its page when there is one, the
/// rules list filtered to the technique when there are several).
fn technique(cov: &Coverage, id: &str, name: &str, in_matrix: bool, by_hits: bool) -> Markup {
    let (rules, alerts, _, rule_ids) = cov.get(id).cloned().unwrap_or_default();
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
        format!("/ui/alerts?technique={}&status=all", urlenc(id))
    } else if let [only] = rule_ids.as_slice() {
        format!("/ui/rules/{}", urlenc(only))
    } else {
        format!("/ui/rules?technique={}", urlenc(id))
    };
    let outside = if in_matrix {
        ""
    } else {
        "; outside the cloud matrix"
    };
    html! {
        a class={ "tech" (class) } href=(href) data-technique=(id)
            title={ (rules) " rules, " (alerts) " alerts" (outside) } {
            span.id { (id) " · " (rules) "r · " (alerts) "a" }
            @if name.is_empty() { (id) } @else { (name) }
        }
    }
}
