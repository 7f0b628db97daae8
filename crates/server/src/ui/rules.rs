//! Rules: the loaded rules (filtered by text, level, pack, state and technique) with their alerts
//! and false-positive rates, the noisiest rules over a range, a page per rule (what it detects,
//! its logic and fixtures, ATT&CK techniques, alerts over time, verdicts, suppressions, its
//! switch), and the active suppressions.

use std::collections::{BTreeMap, BTreeSet};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, SecondsFormat, Utc};
use cloudsentinel_core::Level;
use cloudsentinel_detect::{RuleKind, RuleMeta};
use cloudsentinel_store::{AlertQuery, AlertSort, RuleVerdicts, SuppressionRecord};
use maud::{Markup, html};
use serde_json::{Value, json};

use super::overview::{Chart, RANGES, Range, param_time, time_chart};
use super::{
    Kind, Nav, Q, Session, action_form, age, attack, csrf_field, fail, field, level_badge, outcome,
    page, pivot, plural, technique_tags, urlenc,
};
use crate::api::ListedRule;
use crate::error::ApiError;
use crate::routes::Op;
use crate::{AppState, api, blocking};

/// This page's own routes, merged into the dashboard's (behind sign-in). `POST /ui/rules/{id}`
/// (the switch) is in the dashboard's table.
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new().route("/ui/rules/{id}", get(rule_page))
}

/// The address of a rule's page.
pub(super) fn rule_url(id: &str) -> String {
    format!("/ui/rules/{}", urlenc(id))
}

/// Rules in the noisiest view.
const NOISY_LISTED: usize = 25;

/// Fixture cases shown per side (must match, must not).
const CASES_SHOWN: usize = 3;

/// A fixture case longer than this (pretty JSON) is cut.
const CASE_CHARS: usize = 6000;

/// A rule's logic is shown unfolded up to this many lines.
const LOGIC_UNFOLDED_LINES: usize = 45;

/// The rule page's ranges for its alerts over time.
const RULE_RANGES: &[Range] = &[
    Range {
        id: "7d",
        label: "7 days",
        hours: 24 * 7,
        bucket: 4 * 3600,
        tick: 86_400,
    },
    Range {
        id: "30d",
        label: "30 days",
        hours: 24 * 30,
        bucket: 12 * 3600,
        tick: 5 * 86_400,
    },
    Range {
        id: "90d",
        label: "90 days",
        hours: 24 * 90,
        bucket: 86_400,
        tick: 15 * 86_400,
    },
    Range {
        id: "1y",
        label: "year",
        hours: 24 * 365,
        bucket: 7 * 86_400,
        tick: 56 * 86_400,
    },
];

/// The pack a rule comes from: `built-in aws` for the built-in pack's folders, else the folder of
/// its file.
fn pack(source: &str) -> String {
    match source.strip_prefix("builtin:") {
        Some(path) => match path.split_once('/') {
            Some((dir, _)) => format!("built-in {dir}"),
            None => "built-in".to_string(),
        },
        None => std::path::Path::new(source)
            .parent()
            .map(|p| p.display().to_string())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| source.to_string()),
    }
}

/// "25 %" of judged alerts marked false positive, or a dash.
fn fp_rate_text(v: Option<&RuleVerdicts>) -> String {
    match v.and_then(|v| v.false_positive_rate()) {
        Some(r) => format!("{:.0} %", r * 100.0),
        None => "—".into(),
    }
}

/// Per rule id: its alerts and verdicts, over `since` (or all time).
async fn verdicts(
    state: &AppState,
    since: Option<DateTime<Utc>>,
) -> Result<BTreeMap<String, RuleVerdicts>, ApiError> {
    let v = blocking(state, move |st| st.rule_verdicts(since, None)).await?;
    Ok(v.into_iter().map(|r| (r.rule_id.clone(), r)).collect())
}

/// The list's filters, from the query.
struct Filters {
    text: String,
    level: Option<Level>,
    pack: String,
    enabled: String,
    technique: String,
}

impl Filters {
    fn of(q: &BTreeMap<String, String>) -> Filters {
        let get = |k: &str| q.get(k).map(|v| v.trim().to_string()).unwrap_or_default();
        Filters {
            text: get("q"),
            level: q.get("level").and_then(|l| l.parse().ok()),
            pack: get("pack"),
            enabled: get("enabled"),
            technique: get("technique").to_ascii_uppercase(),
        }
    }

    fn keeps(&self, r: &ListedRule) -> bool {
        let text = self.text.to_lowercase();
        let has = |s: &str| s.to_lowercase().contains(&text);
        (text.is_empty()
            || has(&r.title)
            || has(&r.id)
            || has(&r.source)
            || r.description.as_deref().is_some_and(has)
            || r.techniques
                .iter()
                .any(|t| has(t) || attack::name(t).is_some_and(has)))
            && self.level.is_none_or(|l| r.level == l)
            && (self.pack.is_empty() || pack(&r.source) == self.pack)
            && match self.enabled.as_str() {
                "yes" => r.enabled,
                "no" => !r.enabled,
                _ => true,
            }
            && (self.technique.is_empty()
                || r.techniques.iter().any(|x| {
                    *x == self.technique || x.starts_with(&format!("{}.", self.technique))
                }))
    }

    /// As a query string, for the switch's way back.
    fn query(&self) -> String {
        let mut parts = Vec::new();
        for (k, v) in [
            ("q", self.text.as_str()),
            ("pack", &self.pack),
            ("enabled", &self.enabled),
            ("technique", &self.technique),
        ] {
            if !v.is_empty() {
                parts.push(format!("{k}={}", urlenc(v)));
            }
        }
        if let Some(l) = self.level {
            parts.push(format!("level={}", l.as_str()));
        }
        parts.join("&")
    }
}

/// The two views of the rules page.
fn views(noisy: bool) -> Markup {
    html! {
        nav.row aria-label="Rules views" {
            a.button.primary[!noisy] href="/ui/rules" aria-current=[(!noisy).then_some("true")] {
                "All rules"
            }
            a.button.primary[noisy] href="/ui/rules?view=noisy"
                aria-current=[noisy.then_some("true")] { "Noisiest rules" }
            a.button href="/ui/coverage" { "ATT&CK coverage" }
        }
    }
}

pub(super) async fn rules(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    if q.get("view").map(String::as_str) == Some("noisy") {
        return noisiest(state, s, q).await;
    }
    let axum::Json(list) = api::list_rules(State(state.clone())).await;
    let hits = match verdicts(&state, None).await {
        Ok(h) => h,
        Err(e) => return fail(&s, e),
    };
    let f = Filters::of(&q);
    let items = &list.items;
    let mut shown: Vec<&ListedRule> = items.iter().filter(|r| f.keeps(r)).collect();
    // Most severe first, then by name.
    shown.sort_by(|a, b| b.level.cmp(&a.level).then_with(|| a.title.cmp(&b.title)));
    let disabled = items.iter().filter(|r| !r.enabled).count();
    let packs: BTreeSet<String> = items.iter().map(|r| pack(&r.source)).collect();
    // Active suppressions.
    let sups = match api::list_suppressions(State(state)).await {
        Ok(axum::Json(list)) => list.items,
        Err(e) => return fail(&s, e),
    };
    let can_toggle = s.can(Op::ToggleRule);
    let back = match f.query() {
        q if q.is_empty() => "/ui/rules".to_string(),
        q => format!("/ui/rules?{q}"),
    };
    let body = html! {
        div.row.between {
            h1 { "Rules" }
            (views(false))
        }
        p.muted {
            (items.len()) " rules loaded, " (disabled) " disabled. Alerts and false-positive rates \
             count every alert of a rule; the false-positive rate is the share of alerts analysts \
             judged that they marked false positive."
        }
        form.panel.filters method="get" action="/ui/rules" role="search" aria-label="Filter rules" {
            label {
                "Search"
                input type="search" name="q" value=(f.text)
                    placeholder="title, id, description, technique";
            }
            label {
                "Level"
                select name="level" {
                    option value="" { "any" }
                    @for l in Level::ALL.iter().rev() {
                        option value=(l.as_str()) selected[f.level == Some(*l)] { (l.as_str()) }
                    }
                }
            }
            label {
                "Pack"
                select name="pack" {
                    option value="" { "any" }
                    @for p in &packs {
                        option value=(p) selected[*p == f.pack] { (p) }
                    }
                }
            }
            label {
                "State"
                select name="enabled" {
                    option value="" { "any" }
                    option value="yes" selected[f.enabled == "yes"] { "enabled" }
                    option value="no" selected[f.enabled == "no"] { "disabled" }
                }
            }
            label {
                "Technique"
                input type="text" name="technique" value=(f.technique) size="10"
                    placeholder="T1078";
            }
            button.primary type="submit" { "Filter" }
            @if !f.query().is_empty() { a.button href="/ui/rules" { "Clear" } }
        }
        p.muted.small id="rules-shown" data-shown=(shown.len()) { (shown.len()) " shown." }
        @if shown.is_empty() {
            p.empty { "No rule matches these filters." }
        } @else {
            table.cards id="rules-table" {
                thead {
                    tr {
                        th scope="col" { "Level" }
                        th scope="col" { "Rule" }
                        th scope="col" { "Techniques" }
                        th.num scope="col" { "Alerts" }
                        th.num scope="col" { "FP rate" }
                        th scope="col" { "State" }
                    }
                }
                tbody {
                    @for r in shown {
                        (rule_row(&s, r, hits.get(&r.id), can_toggle, &back))
                    }
                }
            }
        }
        (suppressions(&s, &sups, "Active suppressions"))
    };
    page(&s, "Rules", Nav::Rules, None, body)
}

/// One rule: level, name and where it comes from, techniques, alerts, false-positive rate, and
/// its switch.
fn rule_row(
    s: &Session,
    r: &ListedRule,
    v: Option<&RuleVerdicts>,
    can_toggle: bool,
    back: &str,
) -> Markup {
    let id = r.id.as_str();
    let n = v.map(|v| v.alerts).unwrap_or(0);
    html! {
        tr data-rule=(id) {
            td data-label="Level" { (level_badge(r.level)) }
            td data-label="Rule" {
                a href=(rule_url(id)) { strong { (r.title) } } " "
                span.kind { (rule_kind(r.kind)) }
                br;
                code.small.rule-id { (id) } " "
                span.small.muted { (r.source) }
            }
            td data-label="Techniques" { (technique_tags(&r.techniques)) }
            td.num data-label="Alerts" {
                @if n > 0 {
                    a href={ "/ui/alerts?rule=" (urlenc(id)) "&status=all" } { (n) }
                } @else {
                    "0"
                }
            }
            td.num data-label="FP rate" {
                @match v.filter(|v| v.judged() > 0) {
                    Some(v) => span title={ (v.false_positive) " of " (v.judged()) " judged" } {
                        (fp_rate_text(Some(v)))
                    },
                    None => span.muted { "—" },
                }
            }
            td.toggle data-label="State" {
                (switch(s, id, &r.title, r.enabled, can_toggle, back))
            }
        }
    }
}

/// A rule's state, and the button that turns it off or on (asking first) for those who may.
fn switch(
    s: &Session,
    id: &str,
    title: &str,
    enabled: bool,
    can_toggle: bool,
    back: &str,
) -> Markup {
    let (verb, confirm) = if enabled {
        (
            "Disable",
            format!(
                "Disable the rule “{title}”? Its matches raise no alert until it is enabled again."
            ),
        )
    } else {
        (
            "Enable",
            format!("Enable the rule “{title}”? Its matches raise alerts again."),
        )
    };
    html! {
        @if enabled { span.st.rule-on { "enabled" } } @else { strong.st.rule-off { "disabled" } }
        @if can_toggle {
            " "
            form.inline method="post" action=(rule_url(id)) {
                (csrf_field(s))
                input type="hidden" name="enabled" value=(!enabled);
                input type="hidden" name="back" value=(back);
                button type="submit" class=(if enabled { "danger" } else { "primary" })
                    aria-label={ (verb) " " (title) } data-confirm=(confirm) { (verb) }
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

/// The noisiest rules over a range: most alerts first, with their false-positive rate.
async fn noisiest(state: AppState, s: Session, q: BTreeMap<String, String>) -> Response {
    let range = q.get("range").map(String::as_str).unwrap_or("7d");
    let Some(&range) = RANGES.iter().find(|r| r.id == range) else {
        return fail(&s, crate::error::bad("range: expected 24h, 7d, 30d or 90d"));
    };
    let since = range.since(Utc::now());
    let axum::Json(list) = api::list_rules(State(state.clone())).await;
    let rules: BTreeMap<&str, &ListedRule> =
        list.items.iter().map(|r| (r.id.as_str(), r)).collect();
    let top = match blocking(&state, move |st| st.rule_verdicts(Some(since), None)).await {
        Ok(v) => v,
        Err(e) => return fail(&s, e),
    };
    let total: u64 = top.iter().map(|r| r.alerts).sum();
    let max = top.first().map(|r| r.alerts).unwrap_or(1).max(1);
    let can_toggle = s.can(Op::ToggleRule);
    let back = format!("/ui/rules?view=noisy&range={}", range.id);
    let body = html! {
        div.row.between {
            h1 { "Rules" }
            (views(true))
        }
        div.row.between {
            h2 { "Noisiest rules, last " (range.label) }
            nav.row aria-label="Time range" {
                @for r in RANGES {
                    @let current = r.id == range.id;
                    a.button.primary[current] aria-current=[current.then_some("true")]
                        href={ "/ui/rules?view=noisy&range=" (r.id) } { (r.label) }
                }
            }
        }
        p.muted {
            (plural(total, "alert", "alerts")) " last seen in the range, from "
            (plural(top.len() as u64, "rule", "rules")) ". A noisy rule with a high false-positive \
             rate is one to tune or suppress for the entities it keeps flagging."
        }
        @if top.is_empty() {
            p.empty { "No alerts in this range." }
        } @else {
            table.cards id="noisy-table" {
                thead {
                    tr {
                        th.num scope="col" { "#" }
                        th scope="col" { "Rule" }
                        th.num scope="col" { "Alerts" }
                        th.num scope="col" { "Share" }
                        th.num scope="col" { "FP rate" }
                        th scope="col" { "Verdicts" }
                        th scope="col" { "State" }
                    }
                }
                tbody {
                    @for (i, v) in top.iter().take(NOISY_LISTED).enumerate() {
                        @let r = rules.get(v.rule_id.as_str());
                        tr data-rule=(v.rule_id) {
                            td.num data-label="#" { (i + 1) }
                            td data-label="Rule" {
                                @if let Some(r) = r { (level_badge(r.level)) " " }
                                a href=(rule_url(&v.rule_id)) {
                                    (r.map(|r| r.title.as_str()).unwrap_or(v.rule_id.as_str()))
                                }
                                svg.noisy-bar viewBox="0 0 100 4" preserveAspectRatio="none" aria-hidden="true" {
                                    rect width=(format!("{:.1}", (v.alerts as f64 / max as f64 * 100.0).max(0.5))) height="4" {}
                                }
                            }
                            td.num data-label="Alerts" {
                                a href={ "/ui/alerts?rule=" (urlenc(&v.rule_id)) "&status=all&since=" (param_time(&since)) } {
                                    (v.alerts)
                                }
                            }
                            td.num data-label="Share" {
                                (format!("{:.0} %", v.alerts as f64 / total.max(1) as f64 * 100.0))
                            }
                            td.num data-label="FP rate" { (fp_rate_text(Some(v))) }
                            td.small data-label="Verdicts" { (verdict_words(v)) }
                            td data-label="State" {
                                @match r {
                                    Some(r) => (switch(&s, &r.id, &r.title, r.enabled, can_toggle, &back)),
                                    None => span.muted { "not a loaded rule" },
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    page(&s, "Noisiest rules", Nav::Rules, None, body)
}

/// "2 true, 1 false positive, 1 benign; 8 not judged".
fn verdict_words(v: &RuleVerdicts) -> String {
    if v.judged() == 0 {
        return format!("none of {} judged", v.alerts);
    }
    format!(
        "{} true, {} false positive, {} benign; {} not judged",
        v.true_positive,
        v.false_positive,
        v.benign,
        v.alerts.saturating_sub(v.judged())
    )
}

/// What the page says about a rule that is not in the loaded rule set but raises alerts.
fn builtin_source(id: &str) -> Option<(&'static str, &'static str)> {
    if id == cloudsentinel_learn::anomaly::RULE_ID {
        Some((
            "Behaviour anomaly",
            "Raised by the behaviour model, not by a Sigma rule: a principal's activity unlike \
             its learned baseline (hours, addresses, networks, countries, services, volume). The \
             model is trained and activated on the Models page.",
        ))
    } else if id == crate::sources::SOURCE_SILENT_RULE {
        Some((
            "Log source went silent",
            "Raised by the service itself when an account and region of a log source delivers \
             nothing for much longer than its usual gap: collection may have stopped, or logging \
             been turned off.",
        ))
    } else {
        None
    }
}

async fn rule_page(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<String>,
    Query(q): Q,
) -> Response {
    let range = q.get("range").map(String::as_str).unwrap_or("30d");
    let Some(&range) = RULE_RANGES.iter().find(|r| r.id == range) else {
        return fail(&s, crate::error::bad("range: expected 7d, 30d, 90d or 1y"));
    };
    let until = Utc::now();
    let since = range.since(until);
    let meta: Option<RuleMeta> = state.rules.rule(&id).cloned();
    let enabled = !state
        .suppressions
        .read()
        .unwrap_or_else(|e| e.into_inner())
        .disabled_rules
        .contains(&id);
    let rid = id.clone();
    let data = blocking(&state, move |st| {
        let latest = st.alerts(&AlertQuery {
            rule_id: Some(rid.clone()),
            sort: AlertSort::LastSeen,
            descending: true,
            limit: 1,
            ..Default::default()
        })?;
        Ok((
            st.rule_verdicts(None, Some(&rid))?.pop(),
            st.rule_verdicts(Some(since), Some(&rid))?.pop(),
            st.rule_trend(&rid, since, until, range.bucket)?,
            latest.items.into_iter().next(),
        ))
    })
    .await;
    let (all_time, in_range, trend, latest) = match data {
        Ok(d) => d,
        Err(e) => return fail(&s, e),
    };
    let special = builtin_source(&id);
    if meta.is_none() && special.is_none() && latest.is_none() {
        return fail(
            &s,
            ApiError::NotFound(format!(
                "rule {id}: no such rule is loaded and it has no alerts"
            )),
        );
    }
    let sups: Vec<SuppressionRecord> = match api::list_suppressions(State(state.clone())).await {
        Ok(axum::Json(list)) => list.items.into_iter().filter(|x| x.rule_id == id).collect(),
        Err(e) => return fail(&s, e),
    };
    let source = meta.as_ref().map(|m| m.source.clone());
    let (rid, rtitle) = (id.clone(), meta.as_ref().map(|m| m.title.clone()));
    let files = tokio::task::spawn_blocking(move || {
        source.map(|src| {
            (
                rule_text(&src, &rid, rtitle.as_deref().unwrap_or("")),
                fixtures(&src),
            )
        })
    })
    .await
    .ok()
    .flatten();

    let title = meta
        .as_ref()
        .map(|m| m.title.clone())
        .or_else(|| special.map(|x| x.0.to_string()))
        .or_else(|| latest.as_ref().map(|a| a.title.clone()))
        .unwrap_or_else(|| id.clone());
    let level = meta
        .as_ref()
        .map(|m| m.level)
        .or_else(|| latest.as_ref().map(|a| a.level));
    let techniques: Vec<String> = meta
        .as_ref()
        .map(|m| m.techniques.clone())
        .or_else(|| latest.as_ref().map(|a| a.techniques.clone()))
        .unwrap_or_default();
    let tactics: Vec<String> = meta
        .as_ref()
        .map(|m| m.tactics.clone())
        .or_else(|| latest.as_ref().map(|a| a.tactics.clone()))
        .unwrap_or_default();
    let toggleable = meta.is_some() || id == cloudsentinel_learn::anomaly::RULE_ID;
    let can_toggle = s.can(Op::ToggleRule) && toggleable;
    let queue = format!("/ui/alerts?rule={}&status=all", urlenc(&id));
    let points: Vec<(DateTime<Utc>, u64)> = trend;
    let chart = Chart {
        points: &points,
        range,
        until,
        class: "ru",
        one: "alert",
        many: "alerts",
    };
    let bar_link = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "{queue}&since={}&until={}",
            param_time(&from),
            param_time(&to)
        )
    };
    let in_chart: u64 = points.iter().map(|p| p.1).sum();

    let body = html! {
        p.small { a href="/ui/rules" { "← Rules" } }
        div.rule-head {
            @if let Some(l) = level { (level_badge(l)) }
            h1 id="rule-title" { (title) }
            @if let Some(m) = &meta { span.kind { (rule_kind(m.kind)) } }
        }
        div.row id="rule-state" {
            (switch(&s, &id, &title, enabled, can_toggle, &rule_url(&id)))
            a.button href=(queue) { "Its alerts in the queue" }
        }
        div.rule-facts {
            section.panel id="rule-about" {
                h2 { "What it detects" }
                @if let Some(d) = meta.as_ref().and_then(|m| m.description.as_deref()) {
                    @for para in d.split("\n\n") { p id="rule-description" { (para) } }
                } @else if let Some((_, d)) = special {
                    p id="rule-description" { (d) }
                } @else if meta.is_none() {
                    p.muted { "This rule is not loaded (removed or renamed since); its alerts remain." }
                } @else {
                    p.muted { "The rule has no description." }
                }
                @if let Some(m) = &meta {
                    @if !m.false_positives.is_empty() {
                        h3 { "Known false positives" }
                        ul { @for fp in &m.false_positives { li { (fp) } } }
                    }
                    @if let Some(r) = &m.remedy {
                        h3 { "Remedy" }
                        pre tabindex="0" { (r) }
                    }
                }
                dl.kv {
                    dt { "Id" } dd { code { (id) } }
                    @if let Some(m) = &meta {
                        dt { "Source" } dd { (m.source) " " span.muted { "(" (pack(&m.source)) ")" } }
                        @if m.product.is_some() || m.service.is_some() {
                            dt { "Log source" }
                            dd { (m.product.as_deref().unwrap_or("any")) " / " (m.service.as_deref().unwrap_or("any")) }
                        }
                        @if m.correlation_only {
                            dt { "Alerts" } dd { "none of its own: a correlation uses its matches" }
                        }
                    }
                    @if let Some(a) = &latest {
                        dt { "Last alert" }
                        dd {
                            a href={ "/ui/alerts/" (a.id) } { "#" (a.id) } " about "
                            (pivot(Kind::Principal, &a.entity)) ", last seen " (age(&a.last_seen)) " ago"
                        }
                    }
                }
            }
            section.panel id="rule-attack" {
                h2 { "ATT&CK" }
                @if techniques.is_empty() && tactics.is_empty() {
                    p.empty { "The rule names no ATT&CK technique." }
                } @else {
                    @if !tactics.is_empty() {
                        p {
                            "Tactics: "
                            @for (i, t) in tactics.iter().enumerate() {
                                @if i > 0 { ", " }
                                (attack::tactic_name(t).unwrap_or(t))
                            }
                        }
                    }
                    ul.techniques {
                        @for t in &techniques {
                            li data-technique=(t) {
                                a.tag href=(attack::url(t)) rel="noopener noreferrer" target="_blank" { (t) }
                                " "
                                @match attack::full_name(t) {
                                    Some(n) => span.tech-name { (n) },
                                    None => span.muted { "(name not in our table)" },
                                }
                                " "
                                a.small href={ "/ui/rules?technique=" (urlenc(t)) } { "other rules" }
                            }
                        }
                    }
                }
            }
            section.panel id="rule-verdicts" {
                h2 { "False-positive rate" }
                @match all_time.as_ref().filter(|v| v.judged() > 0) {
                    Some(v) => {
                        div.fp-rate id="fp-rate" { (fp_rate_text(Some(v))) }
                        p {
                            (plural(v.false_positive, "alert", "alerts")) " marked false positive of "
                            (v.judged()) " judged (" (v.true_positive) " true positive, "
                            (v.benign) " benign); "
                            (v.alerts.saturating_sub(v.judged())) " of its " (v.alerts) " alerts not judged."
                        }
                    }
                    None => {
                        div.fp-rate id="fp-rate" { "—" }
                        p.muted {
                            "No verdicts yet"
                            @if let Some(v) = &all_time { " on its " (plural(v.alerts, "alert", "alerts")) }
                            ": mark its alerts true or false positive on their pages."
                        }
                    }
                }
                @if let Some(v) = in_range.as_ref() {
                    p.small.muted {
                        "Last " (range.label) ": " (plural(v.alerts, "alert", "alerts")) ", "
                        (verdict_words(v)) "."
                    }
                }
            }
        }
        section.panel id="rule-trend" {
            div.row.between {
                h2 { "Alerts over the last " (range.label) }
                nav.row aria-label="Time range" {
                    @for r in RULE_RANGES {
                        @let current = r.id == range.id;
                        a.button.primary[current] aria-current=[current.then_some("true")]
                            href={ (rule_url(&id)) "?range=" (r.id) } { (r.label) }
                    }
                }
            }
            div.legend { span { span.sw.ru {} "alerts first seen: " (in_chart) } }
            (time_chart(&chart, &bar_link))
        }
        (suppressions(&s, &sups, "Active suppressions of this rule"))
        @if let Some((logic, fx)) = &files {
            section.panel id="rule-logic" {
                h2 { "Logic" }
                @match logic {
                    Some(text) => {
                        @let lines = text.lines().count();
                        details.logic open[lines <= LOGIC_UNFOLDED_LINES] {
                            summary { "The rule as written (YAML, " (lines) " lines)" }
                            pre tabindex="0" { (text) }
                        }
                    }
                    None => p.muted { "The rule's file could not be read." },
                }
            }
            section.panel id="rule-fixtures" { (fixtures_panel(fx)) }
        }
    };
    page(&s, &title, Nav::Rules, None, body)
}

/// The YAML document that defines rule `id` (a file may hold several: a correlation and the
/// rules it uses), from the built-in pack or the rule's file.
pub(super) fn rule_text(source: &str, id: &str, title: &str) -> Option<String> {
    let text = super::alert::facts::rule_yaml(source)?;
    let docs: Vec<&str> = split_documents(&text);
    if docs.len() <= 1 {
        return Some(text.trim().to_string());
    }
    let names = |d: &str, key: &str, v: &str| {
        d.lines().any(|l| {
            l.strip_prefix(key)
                .map(|rest| rest.trim().trim_matches(['"', '\'']) == v)
                .unwrap_or(false)
        })
    };
    let doc = docs
        .iter()
        .find(|d| names(d, "id:", id))
        .or_else(|| docs.iter().find(|d| names(d, "title:", title)))
        .copied()
        .unwrap_or(&text);
    Some(doc.trim().to_string())
}

/// The documents of a YAML text (separated by `---` lines).
fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut at = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            if !text[start..at].trim().is_empty() {
                docs.push(&text[start..at]);
            }
            start = at + line.len();
        }
        at += line.len();
    }
    if !text[start..].trim().is_empty() {
        docs.push(&text[start..]);
    }
    docs
}

/// Where a rule's fixtures are, and what they hold when that file can be read.
struct Fixtures {
    /// Where they live: `rules/aws/x.fixtures.json` for the built-in pack, else beside the rule.
    path: String,
    /// The cases, when the file was found: (must match, must not match).
    cases: Option<(Vec<Value>, Vec<Value>)>,
}

/// The fixtures of the rule from `source`. The built-in pack's fixtures are not compiled into the
/// binary: they are read from `rules/` under the working directory or the source tree the binary
/// was built from, when there.
fn fixtures(source: &str) -> Fixtures {
    let (path, candidates) = match source.strip_prefix("builtin:") {
        Some(rel) => {
            let fx = cloudsentinel_detect::fixtures::fixtures_path(std::path::Path::new(rel));
            let shown = format!("rules/{}", fx.display());
            let built = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../rules");
            (
                shown.clone(),
                vec![std::path::PathBuf::from(&shown), built.join(&fx)],
            )
        }
        None => {
            let fx = cloudsentinel_detect::fixtures::fixtures_path(std::path::Path::new(source));
            (fx.display().to_string(), vec![fx])
        }
    };
    let cases = candidates.iter().find_map(|p| {
        let text = std::fs::read_to_string(p).ok()?;
        let v: Value = serde_json::from_str(&text).ok()?;
        let list = |k: &str| {
            v.get(k)
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        };
        Some((list("match"), list("no_match")))
    });
    Fixtures { path, cases }
}

/// A fixture case in a few words: what it calls, when, or how many records it streams.
fn case_summary(v: &Value) -> String {
    if let Some(events) = v.get("events").and_then(Value::as_array) {
        return format!(
            "a stream of {}",
            plural(events.len() as u64, "record", "records")
        );
    }
    let op = v
        .get("eventName")
        .or_else(|| v.pointer("/protoPayload/methodName"))
        .or_else(|| v.pointer("/operationName/value"))
        .or_else(|| v.get("operationName"))
        .and_then(Value::as_str);
    let when = v
        .get("eventTime")
        .or_else(|| v.get("timestamp"))
        .or_else(|| v.get("time"))
        .and_then(Value::as_str);
    match (op, when) {
        (Some(op), Some(t)) => format!("{op} at {t}"),
        (Some(op), None) => op.to_string(),
        _ => "a record".to_string(),
    }
}

fn fixtures_panel(fx: &Fixtures) -> Markup {
    let case = |v: &Value, n: usize, kind: &str| {
        let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
        let cut = text.len() > CASE_CHARS;
        if cut {
            let mut end = CASE_CHARS;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
        }
        html! {
            details.fixture {
                summary { (kind) " " (n) ": " (case_summary(v)) }
                pre tabindex="0" { (text) @if cut { "\n… (cut; the whole case is in the file)" } }
            }
        }
    };
    html! {
        h2 { "Fixtures" }
        @match &fx.cases {
            Some((yes, no)) => {
                p id="fixture-counts" {
                    code { (fx.path) } ": "
                    (plural(yes.len() as u64, "case", "cases")) " the rule must match and "
                    (no.len()) " it must not (near misses). "
                    code { "cloudsentinel rules test" } " and the test suite check every one."
                }
                @for (i, v) in yes.iter().take(CASES_SHOWN).enumerate() { (case(v, i + 1, "Must match")) }
                @for (i, v) in no.iter().take(CASES_SHOWN).enumerate() { (case(v, i + 1, "Must not match")) }
                @if yes.len() > CASES_SHOWN || no.len() > CASES_SHOWN {
                    p.small.muted { "The first " (CASES_SHOWN) " of each are shown; the rest are in the file." }
                }
            }
            None => {
                p id="fixture-counts" {
                    "The rule's fixtures (records it must match, and near misses it must not) are in "
                    code { (fx.path) } " in the source repository; "
                    code { "cloudsentinel rules test" } " and the test suite check them. They are not \
                     shipped with the service, and the file is not readable here."
                }
            }
        }
    }
}

/// The panel of active suppressions, each with its remove button for those who may.
fn suppressions(s: &Session, sups: &[SuppressionRecord], heading: &str) -> Markup {
    let can_remove = s.can(Op::Unsuppress);
    html! {
        section.panel id="suppressions" {
            h2 { (heading) " (" (sups.len()) ")" }
            @if sups.is_empty() {
                p.empty { "None. Suppress a rule for one entity from an alert's page." }
            } @else {
                table.cards {
                    thead {
                        tr {
                            th scope="col" { "Rule" } th scope="col" { "Entity" }
                            th scope="col" { "Reason" } th scope="col" { "Until" }
                            th scope="col" { span.vh { "Action" } }
                        }
                    }
                    tbody {
                        @for x in sups {
                            tr {
                                td data-label="Rule" { a href=(rule_url(&x.rule_id)) { code { (x.rule_id) } } }
                                td data-label="Entity" { (pivot(Kind::Principal, &x.entity)) }
                                td data-label="Reason" {
                                    (x.reason) " "
                                    span.small.muted { "by " (x.author) }
                                }
                                td.small data-label="Until" {
                                    (x.expires.to_rfc3339_opts(SecondsFormat::AutoSi, true))
                                }
                                td {
                                    @if can_remove {
                                        form method="post"
                                            action={ "/ui/suppressions/" (x.id) } {
                                            (csrf_field(s))
                                            button type="submit" aria-label={ "Remove suppression of " (x.entity) } {
                                                "Remove"
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

/// Where the switch returns to: the page it was on (the list with its filters, the noisiest view,
/// the rule's page), else the rule's page.
fn back_to(fields: &[(String, String)], id: &str) -> String {
    match field(fields, "back") {
        Some(b)
            if (b == "/ui/rules" || b.starts_with("/ui/rules?") || b.starts_with("/ui/rules/"))
                && !b.contains(['\\', '\r', '\n']) =>
        {
            b.to_string()
        }
        _ => rule_url(id),
    }
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
    let back = back_to(&fields, &id);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packs_documents_and_fixtures_of_the_built_in_pack() {
        assert_eq!(pack("builtin:aws/x.yml"), "built-in aws");
        assert_eq!(pack("/etc/cs/rules/own/x.yml"), "/etc/cs/rules/own");
        let docs = split_documents("title: a\nid: 1\n---\ntitle: b\nid: 2\n---\n");
        assert_eq!(docs, vec!["title: a\nid: 1\n", "title: b\nid: 2\n"]);
        // Every built-in rule's text is found, and its fixtures in the source tree.
        let (path, _) = cloudsentinel_detect::builtin_rules()[0];
        let source = format!("builtin:{path}");
        assert!(rule_text(&source, "none", "none").is_some_and(|t| t.contains("detection")));
        let fx = fixtures(&source);
        assert!(fx.path.starts_with("rules/") && fx.path.ends_with(".fixtures.json"));
        let (yes, no) = fx.cases.expect("the source tree's fixtures");
        assert!(!yes.is_empty() && !no.is_empty());
        assert!(!case_summary(&yes[0]).is_empty());
    }

    #[test]
    fn the_switch_returns_only_to_rules_pages() {
        let f = |b: &str| vec![("back".to_string(), b.to_string())];
        assert_eq!(back_to(&f("/ui/rules?q=x"), "r1"), "/ui/rules?q=x");
        assert_eq!(back_to(&f("/ui/rules/r2"), "r1"), "/ui/rules/r2");
        assert_eq!(
            back_to(&f("https://evil.example/"), "r 1"),
            "/ui/rules/r%201"
        );
        assert_eq!(back_to(&f("/ui/rulesX"), "r1"), "/ui/rules/r1");
        assert_eq!(back_to(&[], "r1"), "/ui/rules/r1");
    }
}
