//! The overview: what needs someone now (new high and critical alerts nobody owns, open
//! incidents, silent log sources), then, over the chosen range, alert counts, alerts and events
//! over time, top rules, principals, accounts, addresses and tactics, and the map of where
//! alerted activity came from. Every count links to the queue or the events search it counts.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord};
use cloudsentinel_core::Level;
use cloudsentinel_store::{AlertCounts, AlertKey, KeyCount, Page};
use maud::{Markup, html};

use super::{
    Kind, Nav, Q, Session, age, attack, fail, level_badge, map, page, pivot, plural, search_url,
    urlenc,
};
use crate::routes::Op;
use crate::sources::health::SourceStatus;
use crate::{AppState, blocking};

/// A range a page offers: its parameter, its label, its length in hours, the width of a bar in
/// its charts and the distance between two labelled ticks on their time axis (seconds).
#[derive(Clone, Copy, Debug)]
pub(super) struct Range {
    pub id: &'static str,
    pub label: &'static str,
    pub hours: i64,
    pub bucket: i64,
    pub tick: i64,
}

const HOUR: i64 = 3600;
const DAY: i64 = 86_400;

/// The overview's ranges.
pub(super) const RANGES: &[Range] = &[
    Range {
        id: "24h",
        label: "24 hours",
        hours: 24,
        bucket: HOUR,
        tick: 6 * HOUR,
    },
    Range {
        id: "7d",
        label: "7 days",
        hours: 24 * 7,
        bucket: 4 * HOUR,
        tick: DAY,
    },
    Range {
        id: "30d",
        label: "30 days",
        hours: 24 * 30,
        bucket: 12 * HOUR,
        tick: 5 * DAY,
    },
    Range {
        id: "90d",
        label: "90 days",
        hours: 24 * 90,
        bucket: DAY,
        tick: 15 * DAY,
    },
];

impl Range {
    /// Where the range starts: its length before `now`, moved back to the start of a bar so
    /// that bars are whole hours or days (UTC).
    pub fn since(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        let t = (now - Duration::hours(self.hours)).timestamp();
        DateTime::from_timestamp(t - t.rem_euclid(self.bucket), 0).unwrap_or(now)
    }
}

/// A time as a query parameter of the queue or the events page.
pub(super) fn param_time(t: &DateTime<Utc>) -> String {
    urlenc(&t.to_rfc3339_opts(SecondsFormat::Secs, true))
}

/// Open high and critical alerts listed in "needs you now".
const NEEDS_ALERTS: u32 = 6;
/// Open incidents listed there.
const NEEDS_INCIDENTS: u32 = 5;
/// A source whose last error is younger than this is listed there (as on the Sources page).
const RECENT_ERROR_SECS: i64 = 24 * 3600;

pub(super) async fn overview(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let range = q.get("range").map(String::as_str).unwrap_or("24h");
    let Some(&range) = RANGES.iter().find(|r| r.id == range) else {
        return fail(&s, crate::error::bad("range: expected 24h, 7d, 30d or 90d"));
    };
    let until = Utc::now();
    let since = range.since(until);
    let data = blocking(&state, move |st| {
        Ok((
            st.alert_counts(Some(since))?,
            st.trends(since, until, range.bucket)?,
            st.top_rules(Some(since), 8)?,
            st.alert_top(AlertKey::Entity, Some(since), 8)?,
            st.alert_top(AlertKey::Account, Some(since), 8)?,
            st.alert_top(AlertKey::Tactic, Some(since), 20)?,
            st.alert_top(AlertKey::SourceIp, Some(since), 300)?,
            st.unassigned_alerts(Level::High, NEEDS_ALERTS)?,
            st.incidents(
                &[
                    AlertStatus::Open,
                    AlertStatus::Acknowledged,
                    AlertStatus::Investigating,
                ],
                NEEDS_INCIDENTS,
                0,
            )?,
        ))
    })
    .await;
    let (counts, trend, rules, principals, accounts, tactics, sources, unowned, incidents) =
        match data {
            Ok(d) => d,
            Err(e) => return fail(&s, e),
        };
    let ids: Vec<String> = unowned.items.iter().map(|a| a.entity.clone()).collect();
    let names = blocking(&state, move |st| {
        st.actor_names(&crate::api::object_ids(ids))
    })
    .await
    .unwrap_or_default();
    let feeds = if s.can(Op::ListSources) {
        Some(state.sources.snapshot())
    } else {
        None
    };
    let range_q = format!("since={}", param_time(&since));
    let queue = |filter: &str| format!("/ui/alerts?{filter}&status=all&{range_q}");

    // Over time.
    let ev_total: u64 = trend.iter().map(|p| p.events).sum();
    let al_total: u64 = trend.iter().map(|p| p.alerts).sum();
    let alerts_series: Vec<_> = trend.iter().map(|p| (p.start, p.alerts)).collect();
    let events_series: Vec<_> = trend.iter().map(|p| (p.start, p.events)).collect();
    let alerts_chart = Chart {
        points: &alerts_series,
        range,
        until,
        class: "al",
        one: "alert raised",
        many: "alerts raised",
    };
    let events_chart = Chart {
        points: &events_series,
        range,
        until,
        class: "ev",
        one: "event",
        many: "events",
    };
    let events_url = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "/ui/events?since={}&until={}",
            param_time(&from),
            param_time(&to)
        )
    };
    let alerts_url = |from: DateTime<Utc>, to: DateTime<Utc>| {
        format!(
            "/ui/alerts?status=all&since={}&until={}",
            param_time(&from),
            param_time(&to)
        )
    };

    // Tops.
    let rule_items: Vec<Top> = rules
        .iter()
        .map(|r| Top {
            label: html! {
                (level_badge(r.level)) " "
                a href={ "/ui/rules/" (urlenc(&r.rule_id)) } { (r.title) }
            },
            count: r.alerts,
            href: queue(&format!("rule={}", urlenc(&r.rule_id))),
            what: format!("alerts of {}", r.title),
        })
        .collect();
    let entity_items = |v: &[KeyCount], kind: Kind, param: &str| -> Vec<Top> {
        v.iter()
            .map(|k| Top {
                label: pivot(kind, &k.key),
                count: k.count,
                href: queue(&format!("{param}={}", urlenc(&k.key))),
                what: format!("alerts about {}", k.key),
            })
            .collect()
    };
    let address_items: Vec<Top> = sources
        .iter()
        .take(8)
        .map(|k| Top {
            label: pivot(Kind::Ip, &k.key),
            count: k.count,
            href: search_url("ip", &k.key),
            what: format!("events from {}", k.key),
        })
        .collect();
    // Tactics in matrix order.
    let by_tactic: BTreeMap<&str, u64> =
        tactics.iter().map(|k| (k.key.as_str(), k.count)).collect();
    let tactic_items: Vec<Top> = attack::TACTICS
        .iter()
        .filter_map(|(id, name)| {
            by_tactic.get(id).map(|n| Top {
                label: html! { a href="/ui/coverage?by=hits" { (name) } },
                count: *n,
                href: "/ui/coverage?by=hits".to_string(),
                what: format!("alerts under {name}"),
            })
        })
        .collect();
    // Where from.
    let (dots, located, unlocated) = locate(&state, &sources);

    let body = html! {
        div.row.between {
            h1 { "Overview" }
            nav.row aria-label="Time range" {
                @for r in RANGES {
                    @let current = r.id == range.id;
                    a.button.primary[current] aria-current=[current.then_some("true")]
                        href={ "/ui?range=" (r.id) } { (r.label) }
                }
            }
        }
        div id="overview" data-region {
            (needs_you(&unowned, &names, &incidents, feeds.as_deref(), until))
            h2.muted.small {
                "Alerts by level, last seen in the last " (range.label)
            }
            div.cards id="by-level" {
                @for l in Level::ALL.iter().rev() {
                    a.card href=(queue(&format!("level={}", l.as_str()))) data-level=(l.as_str()) {
                        div.l { (l.as_str()) }
                        div.n { (level_count(&counts, *l)) }
                    }
                }
            }
            h2.muted.small { "By status (low and above), and incidents and events, in the range" }
            div.cards id="by-status" {
                @for st in AlertStatus::ALL {
                    a.card href={ "/ui/alerts?status=" (st.as_str()) "&" (range_q) }
                        data-status=(st.as_str()) {
                        div.l { (st.as_str()) }
                        div.n { (status_count(&counts, st)) }
                    }
                }
                a.card href="/ui/incidents" {
                    div.l { "active incidents" }
                    div.n id="open-incidents" { (active_incidents(&counts)) }
                }
                a.card href=(events_url(since, until)) {
                    div.l { "events" }
                    div.n id="events-total" { (ev_total) }
                }
            }
            section.panel id="over-time" {
                div.row.between {
                    h2 { "Over the last " (range.label) }
                    div.legend {
                        span { span.sw.al {} "alerts raised: " (al_total) }
                        span { span.sw.ev {} "events: " (ev_total) }
                    }
                }
                (time_chart(&alerts_chart, &alerts_url))
                (time_chart(&events_chart, &events_url))
                p.small.muted {
                    "One bar per " (in_bucket(range.bucket)) " (UTC); point at a bar for its count, \
                     click it for its alerts or events."
                }
            }
            div.grid {
                section.panel id="top-rules" { h2 { "Top rules" } (top_list(&rule_items)) }
                section.panel id="top-principals" {
                    h2 { "Top principals" }
                    (top_list(&entity_items(&principals, Kind::Principal, "principal")))
                }
                section.panel id="top-accounts" {
                    h2 { "Top accounts" }
                    (top_list(&entity_items(&accounts, Kind::Account, "account")))
                }
                section.panel id="top-addresses" {
                    h2 { "Top source addresses" }
                    (top_list(&address_items))
                }
                section.panel id="tactics" { h2 { "ATT&CK tactics seen" } (top_list(&tactic_items)) }
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

fn level_count(c: &AlertCounts, l: Level) -> u64 {
    c.alerts.iter().filter(|x| x.0 == l).map(|x| x.2).sum()
}

/// Alerts of a status at low level or above: what the queue lists for that status.
fn status_count(c: &AlertCounts, st: AlertStatus) -> u64 {
    c.alerts
        .iter()
        .filter(|x| x.1 == st && x.0 >= Level::Low)
        .map(|x| x.2)
        .sum()
}

fn active_incidents(c: &AlertCounts) -> u64 {
    c.incidents
        .iter()
        .filter(|x| {
            matches!(
                x.0,
                AlertStatus::Open | AlertStatus::Acknowledged | AlertStatus::Investigating
            )
        })
        .map(|x| x.1)
        .sum()
}

/// "hour", "4 hours", "day".
fn in_bucket(secs: i64) -> String {
    match secs {
        HOUR => "hour".into(),
        DAY => "day".into(),
        s if s % DAY == 0 => format!("{} days", s / DAY),
        s => format!("{} hours", s / HOUR),
    }
}

/// What waits for someone now, whatever the range: new high and critical alerts nobody owns,
/// open incidents, and log sources gone silent or failing (for roles that may see sources).
fn needs_you(
    unowned: &Page<AlertRecord>,
    names: &std::collections::HashMap<String, String>,
    incidents: &Page<IncidentRecord>,
    feeds: Option<&[SourceStatus]>,
    now: DateTime<Utc>,
) -> Markup {
    let silent: Vec<(&SourceStatus, &crate::sources::health::StreamStatus)> = feeds
        .unwrap_or_default()
        .iter()
        .flat_map(|s| s.streams.iter().map(move |st| (s, st)))
        .filter(|(_, st)| st.silent_since.is_some())
        .collect();
    let failing: Vec<&SourceStatus> = feeds
        .unwrap_or_default()
        .iter()
        .filter(|s| {
            s.last_error_at
                .is_some_and(|t| (now - t).num_seconds() < RECENT_ERROR_SECS)
        })
        .collect();
    let nothing =
        unowned.total == 0 && incidents.total == 0 && silent.is_empty() && failing.is_empty();
    html! {
        section.panel id="needs-you" aria-labelledby="needs-you-h" {
            h2 id="needs-you-h" { "Needs you now" }
            @if nothing {
                p.empty {
                    "Nothing waits: no open high or critical alert without an owner, no open \
                     incident"
                    @if feeds.is_some() { ", no silent or failing log source" }
                    "."
                }
            } @else {
                div.needs {
                    @if unowned.total > 0 {
                        div id="needs-alerts" {
                            h3 {
                                (plural(unowned.total, "new high or critical alert", "new high and critical alerts"))
                                " nobody is assigned to"
                            }
                            ul.needs-list {
                                @for a in &unowned.items {
                                    li data-alert=(a.id) {
                                        (level_badge(a.level)) " "
                                        a href={ "/ui/alerts/" (a.id) } { (a.title) } " "
                                        span.small.muted { "#" (a.id) " · arrived " (age(&a.created)) " ago · " }
                                        span.small {
                                            @match names.get(&a.entity) {
                                                Some(n) => { (n) " (" (pivot(Kind::Principal, &a.entity)) ")" }
                                                None => (pivot(Kind::Principal, &a.entity)),
                                            }
                                        }
                                    }
                                }
                            }
                            @if unowned.total > unowned.items.len() as u64 {
                                p.small {
                                    a href="/ui/alerts?min_level=high&status=open&owner=none" {
                                        "All open high and critical alerts nobody owns"
                                    }
                                    " (" (unowned.total - unowned.items.len() as u64) " more unowned)"
                                }
                            }
                        }
                    }
                    @if incidents.total > 0 {
                        div id="needs-incidents" {
                            h3 { (plural(incidents.total, "open incident", "open incidents")) }
                            ul.needs-list {
                                @for i in &incidents.items {
                                    li data-incident=(i.id) {
                                        (level_badge(i.severity.unwrap_or(i.level))) " "
                                        a href={ "/ui/incidents/" (i.id) } { (i.title) } " "
                                        span.small.muted {
                                            "#" (i.id) " · " (i.status.as_str()) " · "
                                            (plural(i.alert_count, "alert", "alerts"))
                                            " · last seen " (age(&i.last_seen)) " ago · "
                                            @match &i.assignee {
                                                Some(a) if !a.is_empty() => { "owner " (a) }
                                                _ => { "no owner" }
                                            }
                                        }
                                    }
                                }
                            }
                            @if incidents.total > incidents.items.len() as u64 {
                                p.small { a href="/ui/incidents" { "All open incidents" } }
                            }
                        }
                    }
                    @if !silent.is_empty() || !failing.is_empty() {
                        div id="needs-sources" {
                            h3 { "Log sources" }
                            ul.needs-list {
                                @for (src, st) in &silent {
                                    li {
                                        span.lvl.high { "silent" } " "
                                        a href="/ui/sources" { (src.name) } ": account "
                                        (pivot(Kind::Account, &st.account)) ", " (st.region)
                                        @if let Some(t) = st.silent_since {
                                            span.small.muted { " · no delivery for " (age(&t)) }
                                        }
                                    }
                                }
                                @for src in &failing {
                                    li {
                                        span.lvl.medium { "errors" } " "
                                        a href="/ui/sources" { (src.name) } ": "
                                        span.small { (src.last_error.as_deref().unwrap_or("failed")) }
                                        @if let Some(t) = src.last_error_at {
                                            span.small.muted { " · " (age(&t)) " ago" }
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

/// One line of a top list: a label (with its own links), a count and where the count leads.
struct Top {
    label: Markup,
    count: u64,
    href: String,
    /// What the count counts, for its link's title.
    what: String,
}

/// Horizontal bars for a top list; each count links to what it counts.
fn top_list(items: &[Top]) -> Markup {
    let max = items.iter().map(|i| i.count).max().unwrap_or(1).max(1);
    html! {
        @if items.is_empty() {
            p.empty { "Nothing in this range." }
        } @else {
            ul.bars {
                @for t in items {
                    li {
                        span.lab { (t.label) }
                        a.num href=(t.href) title=(format!("{}: {}", t.what, t.count)) { (t.count) }
                        svg viewBox="0 0 100 4" preserveAspectRatio="none" aria-hidden="true" {
                            rect width=(format!("{:.1}", (t.count as f64 / max as f64 * 100.0).max(0.5))) height="4" {}
                        }
                    }
                }
            }
        }
    }
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

/// A series over time to draw: one value per bar of `range.bucket` seconds from the range's
/// start.
pub(super) struct Chart<'a> {
    pub points: &'a [(DateTime<Utc>, u64)],
    pub range: Range,
    /// Where the range ends (now): the last bar is cut there.
    pub until: DateTime<Utc>,
    /// The bars' class (`al` alerts, `ev` events).
    pub class: &'a str,
    pub one: &'a str,
    pub many: &'a str,
}

/// Height of a chart, where its bars stand, and where its tick labels are (pixels).
const CHART_H: u32 = 150;
const PLOT_TOP: f64 = 16.0;
const BASE: f64 = 122.0;

/// "2026-12-07 14:00–15:00Z", "2026-12-07", "2026-11-30 – 2026-12-06".
fn bar_span(start: DateTime<Utc>, bucket: i64, until: DateTime<Utc>) -> String {
    let end = (start + Duration::seconds(bucket)).min(until);
    if bucket < DAY {
        format!(
            "{}–{}Z",
            start.format("%Y-%m-%d %H:%M"),
            end.format("%H:%M")
        )
    } else if bucket == DAY {
        start.format("%Y-%m-%d").to_string()
    } else {
        format!(
            "{} – {}",
            start.format("%Y-%m-%d"),
            (end - Duration::seconds(1)).format("%Y-%m-%d")
        )
    }
}

/// A tick's label: the time of day, or the date at midnight and for ticks a day or more apart.
fn tick_label(t: DateTime<Utc>, tick: i64) -> String {
    if tick < DAY && (t.hour() != 0 || t.minute() != 0) {
        t.format("%H:%M").to_string()
    } else {
        t.format("%b %-d").to_string()
    }
}

/// A bar chart over time: a time axis with labelled ticks, the highest value marked, each bar a
/// link (to `link(start, end)`) whose title gives its time and value. Drawn in pixels and
/// percentages, without a viewBox, so that labels keep their size at any width.
pub(super) fn time_chart(
    c: &Chart<'_>,
    link: &dyn Fn(DateTime<Utc>, DateTime<Utc>) -> String,
) -> Markup {
    let max = c.points.iter().map(|p| p.1).max().unwrap_or(0);
    let total: u64 = c.points.iter().map(|p| p.1).sum();
    let n = c.points.len().max(1) as f64;
    let w = 100.0 / n;
    let bucket = c.range.bucket;
    let first = c.points.first().map(|p| p.0);
    // Ticks where a bar starts on a whole tick (6 h, a day, ...).
    let ticks: Vec<(f64, String)> = c
        .points
        .iter()
        .enumerate()
        .filter(|(_, p)| p.0.timestamp().rem_euclid(c.range.tick) == 0)
        .map(|(i, p)| (i as f64 * w, tick_label(p.0, c.range.tick)))
        // A label right at the start is drawn from there; one just after it or near the end
        // would run into its neighbour or over the edge.
        .filter(|(x, _)| *x == 0.0 || (5.0..=95.0).contains(x))
        .collect();
    let label = format!(
        "{} per {} over the last {}: {} in all, at most {} in one bar",
        c.many,
        in_bucket(bucket),
        c.range.label,
        total,
        max
    );
    html! {
        svg.tchart width="100%" height=(CHART_H) role="group" aria-label=(label) {
            line.gl x1="0" y1=(PLOT_TOP) x2="100%" y2=(PLOT_TOP) {}
            text.ymax x="0" y="11" {
                (plural(max, c.one, c.many)) " at most per " (in_bucket(bucket))
            }
            @for (x, _) in &ticks {
                line.tick x1=(format!("{x:.3}%")) y1=(PLOT_TOP) x2=(format!("{x:.3}%")) y2=(BASE + 4.0) {}
            }
            line.axis x1="0" y1=(BASE) x2="100%" y2=(BASE) {}
            @for (x, t) in &ticks {
                @let anchor = if *x == 0.0 { "start" } else { "middle" };
                text.tl x=(format!("{x:.3}%")) y=(BASE + 18.0) text-anchor=(anchor) { (t) }
            }
            @for (i, (t, v)) in c.points.iter().enumerate() {
                @let x = i as f64 * w;
                @let end = (*t + Duration::seconds(bucket)).min(c.until);
                @let h = if max == 0 { 0.0 } else { (*v as f64 / max as f64) * (BASE - PLOT_TOP) };
                a.b href=(link(*t, end)) tabindex="-1" {
                    title { (bar_span(*t, bucket, c.until)) ": " (plural(*v, c.one, c.many)) }
                    rect.hit x=(format!("{x:.3}%")) y="0" width=(format!("{w:.3}%")) height=(BASE) {}
                    @if *v > 0 {
                        rect class=(c.class) x=(format!("{:.3}%", x + w * 0.1))
                            y=(format!("{:.1}", BASE - h.max(1.5)))
                            width=(format!("{:.3}%", w * 0.8)) height=(format!("{:.1}", h.max(1.5))) {}
                    }
                }
            }
            @if first.is_none() {
                text.tl x="50%" y="70" text-anchor="middle" { "no data" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn ranges_start_on_whole_bars_and_bars_say_their_time() {
        let now = t("2026-12-07T14:36:34Z");
        assert_eq!(RANGES[0].since(now), t("2026-12-06T14:00:00Z"));
        assert_eq!(RANGES[1].since(now), t("2026-11-30T12:00:00Z"));
        assert_eq!(RANGES[3].since(now), t("2026-09-08T00:00:00Z"));
        assert_eq!(
            bar_span(t("2026-12-07T14:00:00Z"), HOUR, now),
            "2026-12-07 14:00–14:36Z"
        );
        assert_eq!(
            bar_span(t("2026-12-07T13:00:00Z"), HOUR, now),
            "2026-12-07 13:00–14:00Z"
        );
        assert_eq!(bar_span(t("2026-12-01T00:00:00Z"), DAY, now), "2026-12-01");
        assert_eq!(tick_label(t("2026-12-07T06:00:00Z"), 6 * HOUR), "06:00");
        assert_eq!(tick_label(t("2026-12-07T00:00:00Z"), 6 * HOUR), "Dec 7");
        assert_eq!(param_time(&now), "2026-12-07T14%3A36%3A34Z");
    }

    #[test]
    fn a_chart_has_ticks_and_a_title_and_link_per_bar() {
        let now = t("2026-12-07T14:36:34Z");
        let since = RANGES[0].since(now);
        let points: Vec<_> = (0..25)
            .map(|i| (since + Duration::hours(i), if i == 3 { 7 } else { 0 }))
            .collect();
        let c = Chart {
            points: &points,
            range: RANGES[0],
            until: now,
            class: "al",
            one: "alert",
            many: "alerts",
        };
        let html = time_chart(&c, &|a, b| {
            format!("/x?a={}&b={}", a.timestamp(), b.timestamp())
        })
        .into_string();
        assert!(
            html.contains("<title>2026-12-06 17:00–18:00Z: 7 alerts</title>"),
            "{html}"
        );
        assert!(
            html.contains("<title>2026-12-06 18:00–19:00Z: 0 alerts</title>"),
            "{html}"
        );
        assert_eq!(html.matches("<a class=\"b\"").count(), 25);
        // Ticks every 6 hours: 18:00, Dec 7 (midnight), 06:00, 12:00.
        for label in [">18:00<", ">Dec 7<", ">06:00<", ">12:00<"] {
            assert!(html.contains(label), "{label}: {html}");
        }
        assert!(html.contains("7 alerts at most per hour"), "{html}");
        assert!(!html.contains("style="));
    }
}
