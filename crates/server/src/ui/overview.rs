//! The overview: alert counts, trends, top rules, principals, accounts and tactics, and the map
//! of where alerted activity came from.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use cloudsentinel_alert::AlertStatus;
use cloudsentinel_core::Level;
use cloudsentinel_store::{AlertKey, KeyCount};
use maud::{Markup, html};

use super::{Nav, Q, Session, attack, bars, fail, level_badge, map, page, plural, urlenc, when};
use crate::routes::Op;
use crate::{AppState, blocking};

/// The ranges the overview offers: (parameter, label, hours).
const RANGES: &[(&str, &str, i64)] = &[
    ("24h", "24 hours", 24),
    ("7d", "7 days", 24 * 7),
    ("30d", "30 days", 24 * 30),
    ("90d", "90 days", 24 * 90),
];

pub(super) async fn overview(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let range = q.get("range").map(String::as_str).unwrap_or("24h");
    let Some(&(range, range_label, hours)) = RANGES.iter().find(|r| r.0 == range) else {
        return fail(&s, crate::error::bad("range: expected 24h, 7d, 30d or 90d"));
    };
    let until = Utc::now();
    let since = until - Duration::hours(hours);
    let bucket = (hours * 3600 / 48).max(60);
    let data = blocking(&state, move |st| {
        Ok((
            st.stats()?,
            st.trends(since, until, bucket)?,
            st.top_rules(Some(since), 8)?,
            st.alert_top(AlertKey::Entity, Some(since), 8)?,
            st.alert_top(AlertKey::Account, Some(since), 8)?,
            st.alert_top(AlertKey::Tactic, Some(since), 20)?,
            st.alert_top(AlertKey::SourceIp, Some(since), 300)?,
        ))
    })
    .await;
    let (stats, trend, rules, principals, accounts, tactics, sources) = match data {
        Ok(d) => d,
        Err(e) => return fail(&s, e),
    };
    let count =
        |v: &[(String, u64)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, c)| *c).unwrap_or(0);
    // Over time.
    let ev_total: u64 = trend.iter().map(|p| p.events).sum();
    let al_total: u64 = trend.iter().map(|p| p.alerts).sum();
    let alerts_series: Vec<_> = trend.iter().map(|p| (p.start, p.alerts)).collect();
    let events_series: Vec<_> = trend.iter().map(|p| (p.start, p.events)).collect();
    // Tops.
    let rule_items: Vec<(Markup, u64)> = rules
        .iter()
        .map(|r| {
            let label = html! {
                (level_badge(r.level)) " "
                a href={ "/ui/alerts?rule=" (urlenc(&r.rule_id)) "&status=all" } { (r.title) }
            };
            (label, r.alerts)
        })
        .collect();
    // Tactics in matrix order.
    let by_tactic: BTreeMap<&str, u64> =
        tactics.iter().map(|k| (k.key.as_str(), k.count)).collect();
    let tactic_items: Vec<(Markup, u64)> = attack::TACTICS
        .iter()
        .filter_map(|(id, name)| {
            let label = html! { a href="/ui/coverage?by=hits" { (name) } };
            by_tactic.get(id).map(|n| (label, *n))
        })
        .collect();
    // Where from.
    let (dots, located, unlocated) = locate(&state, &sources);
    // Log sources, only when one needs a look.
    let sources_need = if s.can(Op::ListSources) {
        super::sources::attention(&state.sources.snapshot(), Utc::now())
    } else {
        Default::default()
    };
    let body = html! {
        div.row.between {
            h1 { "Overview" }
            nav.row aria-label="Time range" {
                @for (id, label, _) in RANGES {
                    @let current = *id == range;
                    a.button.primary[current] aria-current=[current.then_some("true")]
                        href={ "/ui?range=" (id) } { (label) }
                }
            }
        }
        div id="overview" data-region {
            @if sources_need.any() {
                p.flash.error id="sources-attention" {
                    strong { "Log sources: " } (sources_need.text()) ". "
                    a href="/ui/sources" { "See Sources" }
                }
            }
            h2.muted.small { "Alerts by level (all time)" }
            div.cards id="by-level" {
                @for l in Level::ALL.iter().rev() {
                    a.card href={ "/ui/alerts?level=" (l.as_str()) "&status=all" }
                        data-level=(l.as_str()) {
                        div.l { (l.as_str()) }
                        div.n { (count(&stats.alerts_by_level, l.as_str())) }
                    }
                }
            }
            h2.muted.small { "Alerts by status" }
            div.cards id="by-status" {
                @for st in AlertStatus::ALL {
                    a.card href={ "/ui/alerts?status=" (st.as_str()) } data-status=(st.as_str()) {
                        div.l { (st.as_str()) }
                        div.n { (count(&stats.alerts_by_status, st.as_str())) }
                    }
                }
                a.card href="/ui/incidents" {
                    div.l { "open incidents" }
                    div.n id="open-incidents" { (stats.open_incidents) }
                }
                a.card href="/ui/events" {
                    div.l { "events stored" }
                    div.n id="events-total" { (stats.events_total) }
                }
            }
            div.panel {
                div.row.between {
                    h2 { "Over the last " (range_label) }
                    div.legend {
                        span { span.sw.al {} "alerts raised: " (al_total) }
                        span { span.sw.ev {} "events: " (ev_total) }
                    }
                }
                (series_chart(&alerts_series, "al", "alerts", bucket))
                (series_chart(&events_series, "ev", "events", bucket))
            }
            div.grid {
                section.panel id="top-rules" { h2 { "Top rules" } (bars(&rule_items)) }
                section.panel id="top-principals" {
                    h2 { "Top principals" }
                    (bars(&link_items(&principals, "principal")))
                }
                section.panel id="top-accounts" {
                    h2 { "Top accounts" }
                    (bars(&link_items(&accounts, "account")))
                }
                section.panel id="tactics" { h2 { "ATT&CK tactics seen" } (bars(&tactic_items)) }
                section.panel.wide id="map" {
                    h2 { "Where alerted activity came from" }
                    (map::world(&dots))
                    p.small.muted {
                        (located) " alerted addresses placed by country; " (unlocated)
                        " private, service or unlisted. Address data: "
                        a href="https://db-ip.com" { "IP Geolocation by DB-IP" } ", "
                        a href="https://www.routeviews.org" { "RouteViews" } ", "
                        a href="https://www.nro.net" { "NRO" } " (CC BY 4.0), via ip-location-db."
                    }
                }
            }
        }
    };
    page(&s, "Overview", Nav::Overview, Some("overview"), body)
}

/// Top-N keys as links to the alert queue filtered by `param`.
fn link_items(v: &[KeyCount], param: &str) -> Vec<(Markup, u64)> {
    v.iter()
        .map(|k| {
            let label = html! {
                a href={ "/ui/alerts?" (param) "=" (urlenc(&k.key)) "&status=all" } { (k.key) }
            };
            (label, k.count)
        })
        .collect()
}

/// Places alert sources on the map through the configured address table.
fn locate(state: &AppState, sources: &[KeyCount]) -> (Vec<map::Dot>, usize, usize) {
    let db = state.learning.net.db();
    let mut by_country: BTreeMap<[u8; 2], (u64, usize)> = BTreeMap::new();
    let mut unlocated = 0;
    for k in sources {
        let place = k
            .key
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .and_then(|ip| db.lookup(ip))
            .and_then(|info| info.country);
        match place {
            Some(c) => {
                let e = by_country.entry(c).or_default();
                e.0 += k.count;
                e.1 += 1;
            }
            None => unlocated += 1,
        }
    }
    let mut located = 0;
    let dots = by_country
        .into_iter()
        .filter_map(|(c, (alerts, addrs))| {
            let (lat, lon) = cloudsentinel_context::netdb::centroid(c)?;
            located += addrs;
            Some(map::Dot {
                lat,
                lon,
                count: alerts,
                label: format!(
                    "{}: {} from {}",
                    String::from_utf8_lossy(&c),
                    plural(alerts, "alert", "alerts"),
                    plural(addrs as u64, "address", "addresses")
                ),
            })
        })
        .collect();
    (dots, located, unlocated)
}

/// A bar chart of one series over time.
fn series_chart(points: &[(DateTime<Utc>, u64)], class: &str, what: &str, bucket: i64) -> Markup {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let n = points.len().max(1) as f64;
    let w = 1000.0 / n;
    html! {
        svg.chart viewBox="0 0 1000 120" preserveAspectRatio="none" role="img"
            aria-label={ (what) " over time, at most " (max) " per " (bucket / 60) " minutes" } {
            line.axis x1="0" y1="110" x2="1000" y2="110" {}
            @for (i, (t, v)) in points.iter().enumerate() {
                @if *v != 0 {
                    @let h = (*v as f64 / max.max(1) as f64) * 100.0;
                    rect class=(class) x=(format!("{:.1}", i as f64 * w + w * 0.1))
                        y=(format!("{:.1}", 110.0 - h)) width=(format!("{:.1}", w * 0.8))
                        height=(format!("{h:.1}")) {
                        title { (when(t)) ": " (v) " " (what) }
                    }
                }
            }
            text x="2" y="10" {
                "at most " (plural(max, what.trim_end_matches('s'), what)) " per bar"
            }
        }
    }
}
