//! Entity pages: a principal, an IP address, an account, a resource or an autonomous system,
//! with its timeline, its baseline in words, its alerts and incidents and the identities linked
//! to it (`GET /ui/entity/<kind>?v=<value>`; every other page links here through
//! [`super::pivot`]).
//!
//! The baseline is computed from the entity's stored events, not read from the behaviour stage:
//! the learned baselines live in the process that runs the pipeline (an `api` process of a
//! scale-out deployment has none) and keep hashes of the values they saw, not the values. A page
//! reads the entity's newest events (at most [`SAMPLE_CAP`], through the store's indexes) and
//! describes the [`WINDOW_DAYS`] days before its latest one, so that a backfilled or quiet entity
//! has a baseline too, and says so on the page.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::IpAddr;

use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use axum::{Extension, Router};
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord};
use cloudsentinel_context::NetContext;
use cloudsentinel_core::Network;
use cloudsentinel_store::{
    AlertQuery, AlertSort, EventField, EventQuery, EventRow, EventTerm, Store,
};
use maud::{Markup, html};

use super::{
    Kind, Nav, Q, Session, at, entity_url, error_page, level_badge, page, pivot, plural,
    search_term, status_badge, urlenc,
};
use crate::error::{ApiError, bad};
use crate::{AppState, blocking};

/// The entity pages' routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new().route("/ui/entity/{kind}", get(entity))
}

/// Events of an entity a page reads at most (its newest), for the baseline and the chart.
pub const SAMPLE_CAP: u32 = 10_000;
/// The days before the entity's latest event that its baseline describes.
pub const WINDOW_DAYS: i64 = 30;
/// Events listed in the timeline.
const TIMELINE_ROWS: usize = 20;
/// Alerts listed per group (open, then the others).
const ALERTS_SHOWN: u32 = 40;
/// Values named per list of the baseline.
const TOP: usize = 8;
/// Rows of a "seen with it" table.
const SEEN_ROWS: usize = 25;

/// What a page is about: its kind and its value, checked.
#[derive(Debug, Clone)]
struct Subject {
    kind: Kind,
    /// As given (an AS by its number, digits only).
    value: String,
    /// For an AS, its number.
    asn: Option<u32>,
}

impl Subject {
    fn parse(kind: Kind, v: Option<&String>) -> Result<Subject, ApiError> {
        let value = v.map(|v| v.trim()).unwrap_or("");
        if value.is_empty() {
            return Err(bad(format!(
                "name the {} to show: /ui/entity/{}?v=<value>",
                noun(kind),
                kind.as_str()
            )));
        }
        if value.chars().count() > 2048 {
            return Err(bad("the value is longer than 2,048 characters"));
        }
        if kind == Kind::As {
            let digits = value
                .strip_prefix("AS")
                .or_else(|| value.strip_prefix("as"))
                .unwrap_or(value);
            let asn: u32 = digits.parse().map_err(|_| {
                bad(format!(
                    "{value} is not an AS number: write its digits, with or without AS before them"
                ))
            })?;
            return Ok(Subject {
                kind,
                value: asn.to_string(),
                asn: Some(asn),
            });
        }
        Ok(Subject {
            kind,
            value: value.to_string(),
            asn: None,
        })
    }

    /// A principal without the access key its events name it with (`arn (AKIA…)` → `arn`), and
    /// that key.
    fn principal_parts(&self) -> (&str, Option<&str>) {
        split_key(&self.value)
    }

    /// How the page's events are found: the search's own field for this kind.
    fn events(&self) -> EventQuery {
        let mut q = EventQuery::default();
        match self.kind {
            // Its display string, bare id or ARN, access key or name.
            Kind::Principal => q.terms.push(EventTerm {
                field: EventField::Principal,
                value: self.value.clone(),
                negate: false,
            }),
            Kind::Ip => q.source_ip = Some(self.value.clone()),
            Kind::Account => q.account = Some(self.value.clone()),
            Kind::Resource => q.resource = Some(self.value.clone()),
            Kind::As => q.asn = self.asn,
        }
        q
    }

    /// The events search for this entity (`principal:"…"`), to which another term may be added.
    fn term(&self) -> String {
        search_term(self.kind.as_str(), &self.value)
    }

    /// How it is shown: `AS16509`, or the value.
    fn shown(&self) -> String {
        match self.asn {
            Some(a) => format!("AS{a}"),
            None => self.value.clone(),
        }
    }
}

/// `arn (AKIA…)` → (`arn`, `AKIA…`); anything else as it is.
fn split_key(v: &str) -> (&str, Option<&str>) {
    if let Some(inner) = v.strip_suffix(')')
        && let Some((p, k)) = inner.rsplit_once(" (")
        && !p.is_empty()
        && is_access_key(k)
    {
        return (p, Some(k));
    }
    (v, None)
}

/// An AWS access key id: `AKIA`/`ASIA` and the like, then upper-case letters and digits.
fn is_access_key(k: &str) -> bool {
    (16..=128).contains(&k.len())
        && ["AKIA", "ASIA", "AIDA", "AROA", "ABIA", "ACCA"]
            .iter()
            .any(|p| k.starts_with(p))
        && k.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Principal => "principal",
        Kind::Ip => "address",
        Kind::Account => "account",
        Kind::Resource => "resource",
        Kind::As => "autonomous system",
    }
}

fn title_noun(kind: Kind) -> &'static str {
    match kind {
        Kind::Principal => "Principal",
        Kind::Ip => "Address",
        Kind::Account => "Account",
        Kind::Resource => "Resource",
        Kind::As => "Autonomous system",
    }
}

// ---- what is read ------------------------------------------------------------------------------

/// How an alert is related to the entity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Relation {
    /// The alert is about it (its entity).
    About,
    /// The alert's first evidence came from it (an address) or from one of its addresses (an AS).
    From,
    /// The alert is in it (an account).
    In,
    /// Its title or explanation names it.
    Names,
}

impl Relation {
    fn words(self, kind: Kind) -> &'static str {
        match (self, kind) {
            (Relation::About, _) => "about it",
            (Relation::From, Kind::As) => "from one of its addresses",
            (Relation::From, _) => "from it",
            (Relation::In, _) => "in it",
            (Relation::Names, _) => "names it",
        }
    }
}

/// Everything a page shows, read in one go on a blocking thread.
struct Found {
    /// It has more events than were read.
    more_events: bool,
    /// Its newest events, newest first, at most [`SAMPLE_CAP`].
    sample: Vec<EventRow>,
    /// Open alerts first, each group newest first.
    alerts: Vec<(AlertRecord, Relation)>,
    /// More alerts than listed were found.
    more_alerts: bool,
    /// Open incidents first, each group newest first.
    incidents: Vec<IncidentRecord>,
}

const OPEN: [AlertStatus; 3] = [
    AlertStatus::Open,
    AlertStatus::Acknowledged,
    AlertStatus::Investigating,
];
const DONE: [AlertStatus; 2] = [AlertStatus::Resolved, AlertStatus::Closed];

fn is_open(s: AlertStatus) -> bool {
    OPEN.contains(&s)
}

fn gather(st: &dyn Store, s: &Subject) -> cloudsentinel_store::Result<Found> {
    let q = s.events();
    // One more than the cap says whether there are more than were read (counting them all
    // would read them all).
    let mut sample = st.latest_events(&q, SAMPLE_CAP + 1)?;
    let more_events = sample.len() > SAMPLE_CAP as usize;
    sample.truncate(SAMPLE_CAP as usize);

    // Alerts: about it, from it, in it, or naming it.
    let mut alerts: Vec<(AlertRecord, Relation)> = Vec::new();
    let mut more_alerts = false;
    let mut seen: HashSet<i64> = HashSet::new();
    let mut add = |list: Vec<AlertRecord>, rel: &dyn Fn(&AlertRecord) -> Option<Relation>| {
        for a in list {
            if let Some(r) = rel(&a)
                && seen.insert(a.id)
            {
                alerts.push((a, r));
            }
        }
    };
    let by = |statuses: &[AlertStatus], f: &dyn Fn(&mut AlertQuery)| {
        let mut aq = AlertQuery {
            statuses: statuses.to_vec(),
            sort: AlertSort::LastSeen,
            descending: true,
            limit: ALERTS_SHOWN,
            ..AlertQuery::default()
        };
        f(&mut aq);
        st.alerts(&aq)
    };
    match s.kind {
        Kind::Principal | Kind::Resource => {
            let (bare, _) = s.principal_parts();
            let bare = bare.to_string();
            for statuses in [&OPEN[..], &DONE[..]] {
                let page = by(statuses, &|aq| aq.text = Some(bare.clone()))?;
                more_alerts |= page.total > page.items.len() as u64;
                let kind = s.kind;
                add(page.items, &|a| {
                    if kind == Kind::Principal && split_key(&a.entity).0 == bare {
                        Some(Relation::About)
                    } else if names(&a.title, &bare) || names(&a.explanation, &bare) {
                        Some(Relation::Names)
                    } else {
                        None
                    }
                });
            }
        }
        Kind::Account => {
            for statuses in [&OPEN[..], &DONE[..]] {
                let page = by(statuses, &|aq| aq.account = Some(s.value.clone()))?;
                more_alerts |= page.total > page.items.len() as u64;
                add(page.items, &|_| Some(Relation::In));
            }
        }
        Kind::Ip => {
            let from =
                st.alerts_from_addresses(std::slice::from_ref(&s.value), ALERTS_SHOWN * 2)?;
            more_alerts |= from.len() as u32 >= ALERTS_SHOWN * 2;
            add(from, &|_| Some(Relation::From));
            for statuses in [&OPEN[..], &DONE[..]] {
                let page = by(statuses, &|aq| aq.text = Some(s.value.clone()))?;
                add(page.items, &|a| {
                    (names(&a.title, &s.value)
                        || names(&a.explanation, &s.value)
                        || names(&a.entity, &s.value))
                    .then_some(Relation::Names)
                });
            }
        }
        Kind::As => {
            // Its busiest addresses among the events read.
            let mut counts: HashMap<&str, u64> = HashMap::new();
            for e in &sample {
                if let Some(ip) = e.source_ip.as_deref() {
                    *counts.entry(ip).or_default() += 1;
                }
            }
            let mut addresses: Vec<(&str, u64)> = counts.into_iter().collect();
            addresses.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
            let list: Vec<String> = addresses
                .into_iter()
                .take(100)
                .map(|a| a.0.to_string())
                .collect();
            let from = st.alerts_from_addresses(&list, ALERTS_SHOWN * 2)?;
            more_alerts |= from.len() as u32 >= ALERTS_SHOWN * 2;
            add(from, &|_| Some(Relation::From));
        }
    }
    alerts.sort_by(|a, b| {
        is_open(b.0.status)
            .cmp(&is_open(a.0.status))
            .then(b.0.last_seen.cmp(&a.0.last_seen))
    });

    // Incidents: those that answer to it, and those of its alerts.
    let keys: Vec<String> = match s.kind {
        Kind::Principal => {
            let (bare, key) = s.principal_parts();
            let mut keys = vec![bare.to_string(), format!("created:{bare}")];
            if bare != s.value {
                keys.push(s.value.clone());
            }
            keys.extend(key.map(str::to_string));
            keys
        }
        Kind::Ip => vec![format!("ip:{}", s.value)],
        _ => Vec::new(),
    };
    let mut incidents = st.incidents_with_keys(&keys, 30)?;
    let mut known: HashSet<i64> = incidents.iter().map(|i| i.id).collect();
    let mut wanted: Vec<i64> = Vec::new();
    for (a, _) in &alerts {
        if let Some(id) = a.incident_id
            && known.insert(id)
        {
            wanted.push(id);
        }
    }
    for id in wanted.into_iter().take(20) {
        if let Some(i) = st.incident(id)? {
            incidents.push(i);
        }
    }
    incidents.sort_by(|a, b| {
        is_open(b.status)
            .cmp(&is_open(a.status))
            .then(b.last_seen.cmp(&a.last_seen))
    });
    Ok(Found {
        more_events,
        sample,
        alerts,
        more_alerts,
        incidents,
    })
}

/// Whether `hay` names `needle` as a whole value: not as part of a longer name or number
/// (`user/bob` is not named by `user/bobby`, `10.0.0.1` not by `10.0.0.12`).
fn names(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let part = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '-');
    let mut from = 0;
    while let Some(i) = hay[from..].find(needle) {
        let start = from + i;
        let end = start + needle.len();
        let before = hay[..start].chars().next_back();
        let mut after = hay[end..].chars();
        let next = after.next();
        let dotted_on = next == Some('.') && after.next().is_some_and(|c| c.is_ascii_digit());
        if !part(before) && !part(next) && !dotted_on {
            return true;
        }
        from = start + needle.chars().next().map_or(1, char::len_utf8);
    }
    false
}

// ---- the page ------------------------------------------------------------------------------------

async fn entity(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(kind): Path<String>,
    axum::extract::Query(q): Q,
) -> Response {
    let Some(kind) = Kind::parse(&kind) else {
        return error_page(
            &s,
            ApiError::NotFound(format!(
                "there are no pages for \"{kind}\": an entity is a principal, an ip, an account, \
                 a resource or an as (/ui/entity/principal?v=…)"
            )),
        );
    };
    let subject = match Subject::parse(kind, q.get("v")) {
        Ok(v) => v,
        Err(e) => return error_page(&s, e),
    };
    let found = {
        let subject = subject.clone();
        blocking(&state, move |st| gather(st, &subject)).await
    };
    let found = match found {
        Ok(f) => f,
        Err(e) => return error_page(&s, e),
    };
    let net = state.learning.net.clone();
    let profile = Profile::of(&found.sample, found.more_events, &net);
    let title = format!("{} {}", title_noun(kind), subject.shown());
    let body = html! {
        (header(&subject, &found, &profile, &net))
        section.panel aria-labelledby="alerts-h" {
            h2 id="alerts-h" { "Alerts and incidents" }
            (alerts_part(&subject, &found))
        }
        section.panel aria-labelledby="timeline-h" {
            h2 id="timeline-h" { "Timeline" }
            (timeline(&subject, &found, &profile))
        }
        div.entity-grid {
            section.panel aria-labelledby="baseline-h" {
                h2 id="baseline-h" { "Baseline" }
                (baseline(&subject, &profile))
            }
            section.panel aria-labelledby="linked-h" {
                h2 id="linked-h" { "Linked identities" }
                (linked(&subject, &found, &profile))
            }
        }
    };
    page(&s, &title, Nav::None, None, body)
}

// ---- the baseline: what its events say -----------------------------------------------------------

/// How often a value occurs among the events read, and when first and last.
#[derive(Debug, Clone, Copy)]
struct Stat {
    n: u64,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
}

/// Values and their [`Stat`]s.
#[derive(Debug, Default)]
struct Tally {
    m: HashMap<String, Stat>,
}

impl Tally {
    fn add(&mut self, k: &str, t: DateTime<Utc>) {
        if k.is_empty() {
            return;
        }
        match self.m.get_mut(k) {
            Some(s) => {
                s.n += 1;
                s.first = s.first.min(t);
                s.last = s.last.max(t);
            }
            None => {
                self.m.insert(
                    k.to_string(),
                    Stat {
                        n: 1,
                        first: t,
                        last: t,
                    },
                );
            }
        }
    }

    /// The most frequent values first (ties by value), at most `n`.
    fn top(&self, n: usize) -> Vec<(&str, Stat)> {
        let mut v: Vec<(&str, Stat)> = self.m.iter().map(|(k, s)| (k.as_str(), *s)).collect();
        v.sort_by(|a, b| b.1.n.cmp(&a.1.n).then(a.0.cmp(b.0)));
        v.truncate(n);
        v
    }

    fn len(&self) -> usize {
        self.m.len()
    }
}

/// What an entity's events of the window say: volume, hours, addresses and networks, actions,
/// who.
#[derive(Debug, Default)]
struct Profile {
    /// Events in the window.
    n: u64,
    /// The latest event (the window's end).
    to: Option<DateTime<Utc>>,
    /// The window's start: [`WINDOW_DAYS`] before the latest, or the oldest event read when
    /// the cap was reached first.
    from: Option<DateTime<Utc>>,
    /// The cap was reached before the window's start: older events of the window were not read.
    capped: bool,
    /// Per hour of the day (UTC): weekdays, then weekends.
    hours: [[u64; 24]; 2],
    /// Per hour of the day (UTC), the events before the last day.
    hours_before: [u64; 24],
    days: BTreeMap<NaiveDate, u64>,
    /// Per hour (its start), for the chart of a short span.
    by_hour: BTreeMap<DateTime<Utc>, u64>,
    ips: Tally,
    asns: Tally,
    countries: Tally,
    actions: Tally,
    services: Tally,
    principals: Tally,
    accounts: Tally,
    keys: Tally,
    names: Tally,
    regions: Tally,
    providers: Tally,
    failures: u64,
    writes: u64,
    /// What the address tables say about each address seen.
    nets: HashMap<String, Option<Network>>,
}

impl Profile {
    /// `sample`: the entity's newest events, newest first; `more`: it has older ones too.
    fn of(sample: &[EventRow], more: bool, net: &NetContext) -> Profile {
        let mut p = Profile::default();
        let Some(latest) = sample.first().map(|e| e.time) else {
            return p;
        };
        let start = latest - Duration::days(WINDOW_DAYS);
        p.to = Some(latest);
        p.from = Some(start);
        let oldest = sample.last().map(|e| e.time).unwrap_or(latest);
        if more && oldest > start {
            p.capped = true;
            p.from = Some(oldest);
        }
        for e in sample.iter().filter(|e| e.time >= start) {
            let t = e.time;
            p.n += 1;
            let weekend = t.weekday().number_from_monday() >= 6;
            p.hours[weekend as usize][t.hour() as usize] += 1;
            if t <= latest - Duration::days(1) {
                p.hours_before[t.hour() as usize] += 1;
            }
            *p.days.entry(t.date_naive()).or_default() += 1;
            if t >= latest - Duration::hours(48) {
                let hour = t
                    - Duration::minutes(t.minute() as i64)
                    - Duration::seconds(t.second() as i64)
                    - Duration::nanoseconds(t.nanosecond() as i64);
                *p.by_hour.entry(hour).or_default() += 1;
            }
            if let Some(ip) = e.source_ip.as_deref() {
                p.ips.add(ip, t);
                let info = p
                    .nets
                    .entry(ip.to_string())
                    .or_insert_with(|| net.network(ip));
                if let Some(n) = info {
                    if let Some(a) = n.asn {
                        p.asns.add(&a.to_string(), t);
                    }
                    if let Some(c) = n.country {
                        p.countries.add(c.as_str(), t);
                    }
                }
            }
            p.actions.add(&format!("{} {}", e.service, e.operation), t);
            p.services.add(&e.service, t);
            p.principals.add(&e.principal, t);
            if let Some(a) = e.account.as_deref() {
                p.accounts.add(a, t);
            }
            if let Some(k) = e.access_key.as_deref() {
                p.keys.add(k, t);
            }
            if let Some(n) = e.actor_name.as_deref()
                && n != e.principal
            {
                p.names.add(n, t);
            }
            if let Some(r) = e.region.as_deref() {
                p.regions.add(r, t);
            }
            p.providers.add(&e.provider, t);
            if !e.success {
                p.failures += 1;
            }
            if e.read_only == Some(false) {
                p.writes += 1;
            }
        }
        p
    }

    /// Whether a value first seen at `first` is new in the last day: first seen in the day
    /// before the latest event, while the window holds older activity.
    fn is_new(&self, first: DateTime<Utc>) -> bool {
        let Some(to) = self.to else { return false };
        let day = to - Duration::days(1);
        first > day
            && self
                .days
                .keys()
                .next()
                .is_some_and(|d| *d < day.date_naive())
    }

    /// Events in the day before the latest.
    fn last_day(&self) -> u64 {
        let Some(to) = self.to else { return 0 };
        let day = to - Duration::days(1);
        self.by_hour
            .iter()
            .filter(|(h, _)| **h + Duration::hours(1) > day)
            .map(|(_, n)| n)
            .sum()
    }
}

/// The shortest run of hours of the day (wrapping past midnight) that holds at least `share`
/// of `per_hour`: (first hour, hours). `None` without activity.
fn usual_hours(per_hour: &[u64; 24], share: f64) -> Option<(usize, usize)> {
    let total: u64 = per_hour.iter().sum();
    if total == 0 {
        return None;
    }
    let need = (total as f64 * share).ceil() as u64;
    for len in 1..=24 {
        let mut best: Option<(usize, u64)> = None;
        for start in 0..24 {
            let sum: u64 = (0..len).map(|i| per_hour[(start + i) % 24]).sum();
            if sum >= need && best.is_none_or(|b| sum > b.1) {
                best = Some((start, sum));
            }
        }
        if let Some((start, _)) = best {
            return Some((start, len));
        }
    }
    Some((0, 24))
}

/// "08:00–18:00 UTC" for (8, 10).
fn hours_words(start: usize, len: usize) -> String {
    if len >= 24 {
        return "at every hour of the day".into();
    }
    format!("{:02}:00–{:02}:00 UTC", start, (start + len) % 24)
}

fn pct(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "0%".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p > 0.0 && p < 1.0 {
        "under 1%".into()
    } else {
        format!("{p:.0}%")
    }
}

/// Thousands separated: 12,345.
fn num(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

// ---- header --------------------------------------------------------------------------------------

fn header(s: &Subject, f: &Found, p: &Profile, net: &NetContext) -> Markup {
    html! {
        header.entity-head {
            p.kind { (title_noun(s.kind)) }
            h1 { (s.shown()) }
            p.lede { (what_it_is(s, p, net)) }
            dl.kv {
                (facts(s, f, p, net))
            }
        }
    }
}

/// What the entity is, in words.
fn what_it_is(s: &Subject, p: &Profile, net: &NetContext) -> Markup {
    match s.kind {
        Kind::Principal => {
            let (bare, key) = s.principal_parts();
            html! {
                (identity_words(bare))
                @if let Some(k) = key {
                    ", using access key " (pivot(Kind::Principal, k))
                    " (" (key_words(k)) "); the principal with all its keys: "
                    (pivot(Kind::Principal, bare))
                }
                "."
            }
        }
        Kind::Ip => html! { (address_words(&s.value, net)) "." },
        Kind::As => {
            let name = s.asn.and_then(|a| net.db().name(a).cloned());
            html! {
                "An autonomous system: a network that announces its own addresses"
                @if let Some(n) = name { ", registered as " strong { (n) } }
                "."
            }
        }
        Kind::Account => {
            let providers: Vec<&str> = p.providers.top(3).into_iter().map(|x| x.0).collect();
            html! {
                @match providers.first().copied() {
                    Some("aws") => "An AWS account",
                    Some("azure") => "An Azure subscription or Entra ID tenant",
                    Some("gcp") => "A Google Cloud project",
                    _ => "A cloud account",
                }
                @if p.n > 0 {
                    ", where " (plural(p.principals.len() as u64, "principal", "principals"))
                    " acted in the window below"
                }
                "."
            }
        }
        Kind::Resource => html! { (resource_words(&s.value)) "." },
    }
}

/// The kind of identity a principal is, from the shape of its name.
fn identity_words(p: &str) -> Markup {
    let account_of = |arn: &str| arn.split(':').nth(4).map(str::to_string);
    let last = |s: &str| s.rsplit('/').next().unwrap_or(s).to_string();
    if let Some(rest) = p.strip_prefix("arn:aws:iam::") {
        let account = account_of(p).unwrap_or_default();
        let res = rest.split_once(':').map(|x| x.1).unwrap_or("");
        let (what, name) = if res == "root" {
            ("the root user", String::new())
        } else if res.starts_with("user/") {
            ("an IAM user", last(res))
        } else if res.starts_with("role/") {
            ("an IAM role", last(res))
        } else if res.starts_with("federated-user/") {
            ("a federated user", last(res))
        } else {
            ("an IAM identity", res.to_string())
        };
        return html! {
            "AWS: " (what) @if !name.is_empty() { " " strong { (name) } }
            " of account " (pivot(Kind::Account, &account))
        };
    }
    if let Some(rest) = p.strip_prefix("arn:aws:sts::") {
        let account = account_of(p).unwrap_or_default();
        let res = rest.split_once(':').map(|x| x.1).unwrap_or("");
        if let Some(r) = res.strip_prefix("assumed-role/") {
            let (role, session) = r.split_once('/').unwrap_or((r, ""));
            let role_arn = format!("arn:aws:iam::{account}:role/{role}");
            return html! {
                "AWS: a session of role " (pivot(Kind::Principal, &role_arn))
                @if !session.is_empty() { " named " strong { (session) } }
                " in account " (pivot(Kind::Account, &account))
            };
        }
        return html! { "AWS: a temporary identity in account " (pivot(Kind::Account, &account)) };
    }
    if let Some((service, account)) = p.split_once(" in ")
        && !service.contains(' ')
        && !account.is_empty()
    {
        return html! {
            "An AWS service, " strong { (service) } ", acting in account "
            (pivot(Kind::Account, account))
        };
    }
    if p.ends_with(".gserviceaccount.com") {
        let project = p
            .split_once('@')
            .and_then(|(_, d)| d.strip_suffix(".iam.gserviceaccount.com"));
        return html! {
            "Google Cloud: a service account"
            @if let Some(pr) = project { " of project " (pivot(Kind::Account, pr)) }
        };
    }
    if p.contains('@') {
        return html! { "A person's account, known by e-mail (Entra ID, Google or IAM Identity Center)" };
    }
    if is_object_id(p) {
        return html! { "Entra ID: an object (a user, a service principal or a managed identity) known by its id" };
    }
    if is_access_key(p) {
        return html! { "An AWS access key (" (key_words(p)) ")" };
    }
    html! { "A principal" }
}

fn is_object_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| {
            if [8, 13, 18, 23].contains(&i) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        })
}

fn key_words(k: &str) -> &'static str {
    if k.starts_with("ASIA") {
        "temporary credentials"
    } else if k.starts_with("AKIA") {
        "a long-term key"
    } else {
        "an AWS key id"
    }
}

/// What the address tables say about an address.
fn address_words(ip: &str, net: &NetContext) -> Markup {
    let Ok(addr) = ip.parse::<IpAddr>() else {
        return html! {
            "Not an IP address: a cloud writes a service's host name here when the service made \
             the call on someone's behalf"
        };
    };
    match net.network(ip) {
        Some(n) => html! {
            @if addr.is_ipv4() { "An IPv4 address" } @else { "An IPv6 address" }
            @if let Some(a) = n.asn {
                " in " (as_pivot(&a.to_string()))
                @if let Some(name) = &n.as_name { " (" (name) ")" }
            }
            @if let Some(c) = n.country { ", " (country_link(c.as_str())) }
            @if let Some(cloud) = n.cloud {
                ", in " (cloud_name(cloud.as_str())) "'s address space (a cloud resource or service, \
                 not a person's network)"
            }
        },
        None => html! {
            @if cloudsentinel_context::is_public(addr) {
                "A public address the address tables do not place"
            } @else {
                "A private or reserved address (private, loopback, documentation or the like): \
                 not routed on the internet"
            }
        },
    }
}

/// An AS number as a link to its page, written `AS16509`.
fn as_pivot(asn: &str) -> Markup {
    html! {
        a.pv href=(entity_url(Kind::As, asn)) title={ "Everything about AS" (asn) } { "AS" (asn) }
    }
}

fn cloud_name(provider: &str) -> &'static str {
    match provider {
        "aws" => "AWS",
        "azure" => "Azure",
        "gcp" => "Google Cloud",
        _ => "a cloud provider",
    }
}

/// A country as a link to its events.
fn country_link(c: &str) -> Markup {
    html! {
        a.pv href=(search(&[("country", c)])) title={ "Events from " (c) } { (c) }
    }
}

/// The events search for several terms at once.
fn search(terms: &[(&str, &str)]) -> String {
    let q: Vec<String> = terms.iter().map(|(f, v)| search_term(f, v)).collect();
    format!("/ui/events?q={}", urlenc(&q.join(" ")))
}

/// What a resource is, from the shape of its name.
fn resource_words(r: &str) -> Markup {
    let parts: Vec<&str> = r.splitn(6, ':').collect();
    if parts.len() == 6 && parts[0] == "arn" {
        let (service, region, account, res) = (parts[2], parts[3], parts[4], parts[5]);
        let kind = res
            .split_once(['/', ':'])
            .map(|x| x.0)
            .filter(|k| !k.is_empty());
        return html! {
            "An AWS " strong { (service) } " resource"
            @if let Some(k) = kind { " (" (k) ")" }
            @if !account.is_empty() { " of account " (pivot(Kind::Account, account)) }
            @if !region.is_empty() { " in " (region) }
        };
    }
    if r.starts_with("//") || r.starts_with("projects/") {
        return html! { "A Google Cloud resource" };
    }
    if r.starts_with("/subscriptions/") {
        let sub = r.split('/').nth(2).unwrap_or("");
        return html! {
            "An Azure resource of subscription " (pivot(Kind::Account, sub))
        };
    }
    html! { "A resource named in events' requests (a bucket, a user, a key, a trail…)" }
}

/// The facts under the header.
fn facts(s: &Subject, f: &Found, p: &Profile, net: &NetContext) -> Markup {
    let all = search(&[(s.kind.as_str(), &s.value)]);
    html! {
        dt { "Events" }
        dd {
            @if f.sample.is_empty() {
                "none stored"
            } @else {
                a href=(all) { (all_events(f.sample.len(), f.more_events)) }
                @if let Some(to) = p.to { "; the latest " (at(&to)) }
            }
        }
        @match s.kind {
            Kind::Principal => {
                @if p.accounts.len() > 0 {
                    dt { "Account" }
                    dd { (list(&p.accounts, 4, |v| pivot(Kind::Account, v))) }
                }
                @if p.names.len() > 0 {
                    dt { "Known as" }
                    dd { (list(&p.names, 4, |v| pivot(Kind::Principal, v))) }
                }
                @if p.keys.len() > 0 {
                    dt { "Access keys" }
                    dd { (list(&p.keys, 6, |v| pivot(Kind::Principal, v))) }
                }
                @let people = persons(&f.incidents);
                @if !people.is_empty() {
                    dt { "Person" }
                    dd {
                        @for (i, e) in people.iter().enumerate() {
                            @if i > 0 { ", " }
                            (pivot(Kind::Principal, e))
                        }
                        span.small.muted { " (the e-mail its incidents join identities by)" }
                    }
                }
            }
            Kind::Ip => {
                @if let Some(n) = net.network(&s.value) {
                    @if let Some(a) = n.asn {
                        dt { "Network" }
                        dd {
                            (as_pivot(&a.to_string()))
                            @if let Some(name) = &n.as_name { " " (name) }
                        }
                    }
                    @if let Some(c) = n.country {
                        dt { "Country" }
                        dd { (country_link(c.as_str())) }
                    }
                    dt { "Cloud" }
                    dd {
                        @match n.cloud {
                            Some(c) => { (cloud_name(c.as_str())) " address space" }
                            None => "not a cloud provider's address",
                        }
                    }
                }
                @if p.n > 0 {
                    dt { "Used by" }
                    dd {
                        (plural(p.principals.len() as u64, "principal", "principals"))
                        @if p.accounts.len() > 1 {
                            " in " (p.accounts.len()) " accounts"
                        }
                        @if p.principals.len() >= 5 {
                            span.small.muted {
                                " (many identities behind one address: a NAT gateway, an office or a \
                                 VPN egress, or one actor with many keys)"
                            }
                        }
                    }
                }
            }
            Kind::As => {
                dt { "Name" }
                dd {
                    @match s.asn.and_then(|a| net.db().name(a).cloned()) {
                        Some(n) => (n),
                        None => span.muted { "not in the address tables" },
                    }
                }
                @if p.n > 0 {
                    dt { "Addresses seen" }
                    dd { (p.ips.len()) }
                }
                @if p.countries.len() > 0 {
                    dt { "Countries" }
                    dd { (list(&p.countries, 6, country_link)) }
                }
            }
            Kind::Account => {
                @if p.n > 0 {
                    dt { "Principals" }
                    dd { (p.principals.len()) }
                }
                @if p.regions.len() > 0 {
                    dt { "Regions" }
                    dd { (list(&p.regions, 6, |v| html! { (v) })) }
                }
            }
            Kind::Resource => {
                @if p.n > 0 {
                    dt { "Named by" }
                    dd { (plural(p.principals.len() as u64, "principal", "principals")) }
                }
            }
        }
    }
}

/// "all 1,204 events", "all its events (more than 10,000)".
fn all_events(read: usize, more: bool) -> String {
    if more {
        format!("all its events (more than {})", num(SAMPLE_CAP as u64))
    } else {
        format!("all {}", plural_num(read as u64, "event", "events"))
    }
}

fn plural_num(n: u64, one: &str, many: &str) -> String {
    format!("{} {}", num(n), if n == 1 { one } else { many })
}

/// The e-mails incidents joined its identities by.
fn persons(incidents: &[IncidentRecord]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for i in incidents {
        for k in &i.join_keys {
            if let Some(e) = k.strip_prefix("person:")
                && !out.iter().any(|x| x == e)
            {
                out.push(e.to_string());
            }
        }
    }
    out
}

/// The most frequent values of a tally, each drawn by `show`, comma-separated, with "and N more".
fn list(t: &Tally, n: usize, show: impl Fn(&str) -> Markup) -> Markup {
    let top = t.top(n);
    let rest = t.len().saturating_sub(top.len());
    html! {
        @for (i, (v, _)) in top.iter().enumerate() {
            @if i > 0 { ", " }
            (show(v))
        }
        @if rest > 0 { span.muted { " and " (rest) " more" } }
    }
}

// ---- timeline ------------------------------------------------------------------------------------

fn timeline(s: &Subject, f: &Found, p: &Profile) -> Markup {
    if f.sample.is_empty() {
        return html! {
            p.empty {
                "No stored events " (match s.kind {
                    Kind::Principal => "by this principal",
                    Kind::Ip => "from this address",
                    Kind::Account => "in this account",
                    Kind::Resource => "name this resource (events stored before resources were \
                                       indexed are not found by it)",
                    Kind::As => "come from this autonomous system (its number is recorded as \
                                 events are stored)",
                }) "."
            }
        };
    }
    let shown = f.sample.len().min(TIMELINE_ROWS);
    html! {
        (chart(p))
        p.small.muted {
            "The newest " (shown) " of "
            a href=(search(&[(s.kind.as_str(), &s.value)])) { (all_events(f.sample.len(), f.more_events)) }
            ", newest first."
        }
        table.cards.entity-events {
            thead {
                tr {
                    th scope="col" { "Time" }
                    th scope="col" { "Action" }
                    @if s.kind != Kind::Principal { th scope="col" { "Principal" } }
                    @if s.kind != Kind::Ip { th scope="col" { "Source" } }
                    th scope="col" { "Outcome" }
                }
            }
            tbody {
                @for e in f.sample.iter().take(TIMELINE_ROWS) {
                    (event_row(s, e, p))
                }
            }
        }
    }
}

fn event_row(s: &Subject, e: &EventRow, p: &Profile) -> Markup {
    let term = s.term();
    let action_q = format!("{term} {}", search_term("action", &e.operation));
    html! {
        tr {
            td data-label="Time" { (at(&e.time)) }
            td data-label="Action" {
                a.pv href={ "/ui/events?q=" (urlenc(&action_q)) }
                    title={ "Its " (e.operation) " events" } { strong { (e.operation) } }
                " " span.small.muted { (e.service) }
            }
            @if s.kind != Kind::Principal {
                td data-label="Principal" {
                    (pivot(Kind::Principal, &e.principal))
                    @if let Some(a) = e.account.as_deref() {
                        @if s.kind != Kind::Account {
                            " " span.small { "in " (pivot(Kind::Account, a)) }
                        }
                    }
                }
            }
            @if s.kind != Kind::Ip {
                td data-label="Source" {
                    @if let Some(ip) = e.source_ip.as_deref() {
                        (pivot(Kind::Ip, ip))
                        (net_note(p.nets.get(ip).and_then(Option::as_ref)))
                    } @else {
                        span.muted { "none recorded" }
                    }
                }
            }
            td data-label="Outcome" {
                @if e.success {
                    "success"
                } @else {
                    span.st.open { "failed" }
                    @if let Some(c) = e.error_code.as_deref() { " " span.small { (c) } }
                }
            }
        }
    }
}

/// AS and country after an address, small.
fn net_note(n: Option<&Network>) -> Markup {
    html! {
        @if let Some(n) = n {
            @if n.asn.is_some() || n.country.is_some() {
                " " span.small.muted.netnote {
                    @if let Some(a) = n.asn { (as_pivot(&a.to_string())) }
                    @if let Some(c) = n.country { " " (country_link(c.as_str())) }
                }
            }
        }
    }
}

/// Events per day over the window, or per hour over the last two days when its events span
/// less than that: bars with their values on hover.
fn chart(p: &Profile) -> Markup {
    let (Some(from), Some(to)) = (p.from, p.to) else {
        return html! {};
    };
    let first_day = p.days.keys().next().copied().unwrap_or(to.date_naive());
    let daily = (to.date_naive() - first_day).num_days() >= 2;
    let mut points: Vec<(String, u64, bool)> = Vec::new();
    if daily {
        for back in (0..WINDOW_DAYS).rev() {
            let d = to.date_naive() - Duration::days(back);
            let known = d >= from.date_naive();
            points.push((
                d.format("%Y-%m-%d").to_string(),
                p.days.get(&d).copied().unwrap_or(0),
                known,
            ));
        }
    } else {
        let last = p.by_hour.keys().next_back().copied().unwrap_or(to);
        for back in (0..48).rev() {
            let h = last - Duration::hours(back);
            points.push((
                h.format("%Y-%m-%d %H:00Z").to_string(),
                p.by_hour.get(&h).copied().unwrap_or(0),
                true,
            ));
        }
    }
    let max = points.iter().map(|x| x.1).max().unwrap_or(0).max(1);
    let w = 1000.0 / points.len() as f64;
    let unit = if daily { "day" } else { "hour" };
    let label = format!(
        "Events per {unit}, {} to {}: at most {} in one {unit}",
        points.first().map(|x| x.0.as_str()).unwrap_or(""),
        points.last().map(|x| x.0.as_str()).unwrap_or(""),
        num(max)
    );
    html! {
        figure.entity-chart {
            svg.chart viewBox="0 0 1000 120" preserveAspectRatio="none" role="img" aria-label=(label) {
                line.axis x1="0" y1="110" x2="1000" y2="110" {}
                @for (i, (at, v, known)) in points.iter().enumerate() {
                    @let h = if *v == 0 { 0.0 } else { (*v as f64 / max as f64 * 100.0).max(2.0) };
                    @let x = i as f64 * w;
                    // A full-height hit area per bar, so that hovering anywhere in its column
                    // gives its value.
                    g {
                        title {
                            (at) ": "
                            @if *known { (plural_num(*v, "event", "events")) } @else { "not read (older than the events read)" }
                        }
                        rect.hit x=(format!("{x:.1}")) y="0" width=(format!("{w:.1}")) height="110" {}
                        @if *v > 0 {
                            rect.ev x=(format!("{:.1}", x + w * 0.1)) y=(format!("{:.1}", 110.0 - h))
                                width=(format!("{:.1}", w * 0.8)) height=(format!("{h:.1}")) {}
                        }
                    }
                }
            }
            figcaption.axislabels {
                span { (points.first().map(|x| x.0.as_str()).unwrap_or("")) }
                span { "events per " (unit) ", at most " (num(max)) }
                span { (points.last().map(|x| x.0.as_str()).unwrap_or("")) }
            }
        }
    }
}

// ---- baseline ------------------------------------------------------------------------------------

fn baseline(s: &Subject, p: &Profile) -> Markup {
    let (Some(from), Some(to)) = (p.from, p.to) else {
        return html! {
            p.empty { "No events to describe: a baseline needs its events." }
        };
    };
    let days = p.days.len() as u64;
    let per_day = p.n as f64 / days.max(1) as f64;
    let busiest = p.days.iter().max_by(|a, b| a.1.cmp(b.1).then(b.0.cmp(a.0)));
    let span_days = (to - from).num_days().max(1);
    let mut day24 = [0u64; 24];
    for (i, n) in day24.iter_mut().enumerate() {
        *n = p.hours[0][i] + p.hours[1][i];
    }
    let weekend: u64 = p.hours[1].iter().sum();
    let usual = usual_hours(&day24, 0.8);
    let new = |first: DateTime<Utc>| p.is_new(first);
    html! {
        p.small.muted.source {
            @if p.capped {
                "From its newest " (num(SAMPLE_CAP as u64)) " stored events, "
                (at(&from)) " to " (at(&to))
                " (it has more in the " (WINDOW_DAYS) " days before its latest)."
            } @else {
                "From the last " (WINDOW_DAYS) " days of its stored events, to its latest at "
                (at(&to)) "."
            }
            " Computed from events, not read from the behaviour stage's learned baseline. "
            span.new { "new" } " marks what first showed in the last day."
        }
        @if p.n < 20 {
            p { "Only " (plural(p.n, "event", "events")) ": too few for habits; this is what they show." }
        }
        dl.kv.baseline {
            dt { "Volume" }
            dd {
                (plural_num(p.n, "event", "events")) " on "
                (plural(days, "day", "days")) " of " (span_days)
                @if days > 1 {
                    ": about " (format!("{per_day:.0}")) " a day when active"
                    @if let Some((d, n)) = busiest {
                        ", the most on " (d.format("%Y-%m-%d")) " (" (num(*n)) ")"
                    }
                    ". In the last day: " (num(p.last_day())) "."
                } @else {
                    ", all on " (to.format("%Y-%m-%d")) "."
                }
            }
            dt { "Hours" }
            dd {
                @if let Some((start, len)) = usual {
                    @if len >= 20 {
                        "Around the clock: no run of hours shorter than " (len) " holds 80% of its events"
                    } @else {
                        "80% of its events fall between " (hours_words(start, len))
                    }
                    @if span_days >= 7 && days >= 3 {
                        @if weekend == 0 {
                            ", on weekdays only"
                        } @else if weekend * 10 < p.n {
                            ", mostly on weekdays (weekends: " (pct(weekend, p.n)) ")"
                        } @else {
                            ", weekdays and weekends alike (weekends: " (pct(weekend, p.n)) ")"
                        }
                    }
                    "."
                    @let odd = odd_hours(p);
                    @if odd > 0 {
                        " " span.new { "new" } " "
                        (plural(odd, "event", "events"))
                        " in the last day at hours of the day it had not been active at before."
                    }
                }
            }
            @if s.kind != Kind::Ip {
                dt { "Addresses" }
                dd {
                    @if p.ips.len() == 0 {
                        span.muted { "none recorded" }
                    } @else {
                        (plural(p.ips.len() as u64, "address", "addresses")) ": "
                        (values(&p.ips, TOP, &new, |v| pivot(Kind::Ip, v)))
                    }
                }
            }
            @if s.kind != Kind::As {
                dt { "Networks" }
                dd {
                    @if p.asns.len() == 0 {
                        span.muted { "none placed by the address tables" }
                    } @else {
                        (values(&p.asns, TOP, &new, as_pivot))
                    }
                }
            }
            dt { "Countries" }
            dd {
                @if p.countries.len() == 0 {
                    span.muted { "none placed by the address tables" }
                } @else {
                    (values(&p.countries, TOP, &new, country_link))
                }
            }
            dt { "Actions" }
            dd {
                (plural(p.actions.len() as u64, "operation", "operations")) " on "
                (plural(p.services.len() as u64, "service", "services")) ": "
                (values(&p.actions, TOP, &new, |v| action_link(s, v)))
            }
            dt { "Outcome" }
            dd {
                (pct(p.failures, p.n)) " failed"
                @if p.failures > 0 {
                    " (" a href=(format!("/ui/events?q={}", urlenc(&format!("{} outcome:failure", s.term())))) {
                        (plural_num(p.failures, "failure", "failures"))
                    } ")"
                }
                "; " (pct(p.writes, p.n)) " changed something."
            }
            @if s.kind != Kind::Principal {
                dt { "Principals" }
                dd { (values(&p.principals, TOP, &new, |v| pivot(Kind::Principal, v))) }
            }
        }
    }
}

/// Events of the last day at hours of the day its earlier events never used (none when it has
/// no earlier events).
fn odd_hours(p: &Profile) -> u64 {
    let Some(to) = p.to else { return 0 };
    let day = to - Duration::days(1);
    if p.hours_before.iter().all(|n| *n == 0) {
        return 0;
    }
    p.by_hour
        .iter()
        .filter(|(h, _)| **h + Duration::hours(1) > day && p.hours_before[h.hour() as usize] == 0)
        .map(|(_, n)| n)
        .sum()
}

/// An action (`service operation`) as a link to the entity's events doing it.
fn action_link(s: &Subject, v: &str) -> Markup {
    let (service, op) = v.split_once(' ').unwrap_or(("", v));
    let q = format!("{} {}", s.term(), search_term("action", op));
    html! {
        a.pv href={ "/ui/events?q=" (urlenc(&q)) } title={ "Its " (op) " events (" (service) ")" } { (op) }
    }
}

/// The most frequent values with their counts, the new ones marked.
fn values(
    t: &Tally,
    n: usize,
    new: &dyn Fn(DateTime<Utc>) -> bool,
    show: impl Fn(&str) -> Markup,
) -> Markup {
    let top = t.top(n);
    let rest = t.len().saturating_sub(top.len());
    html! {
        @for (i, (v, st)) in top.iter().enumerate() {
            @if i > 0 { ", " }
            span.val {
                (show(v)) " " span.small.muted { "(" (num(st.n)) ")" }
                @if new(st.first) { " " span.new { "new" } }
            }
        }
        @if rest > 0 { span.muted { " and " (rest) " more" } }
        @let fresh = t.m.values().filter(|st| new(st.first)).count();
        @let fresh_hidden = fresh - top.iter().filter(|(_, st)| new(st.first)).count();
        @if fresh_hidden > 0 { " (" (fresh_hidden) " more new)" }
    }
}

// ---- alerts and incidents ----------------------------------------------------------------------

fn alerts_part(s: &Subject, f: &Found) -> Markup {
    let open = f.alerts.iter().filter(|a| is_open(a.0.status)).count();
    html! {
        h3 { "Alerts" }
        @if f.alerts.is_empty() {
            p.empty {
                "No alerts " (match s.kind {
                    Kind::Principal => "about this principal or naming it",
                    Kind::Ip => "from this address or naming it",
                    Kind::Account => "in this account",
                    Kind::Resource => "naming this resource",
                    Kind::As => "from this network's addresses",
                }) "."
            }
        } @else {
            p.small.muted {
                (plural(f.alerts.len() as u64, "alert", "alerts")) ", " (open) " of them open; open ones first."
                @if f.more_alerts {
                    " There are more: "
                    a href={ "/ui/alerts?q=" (urlenc(&alert_text(s))) } { "search the queue" } "."
                }
            }
            table.cards.entity-alerts {
                thead {
                    tr {
                        th scope="col" { "Level" }
                        th scope="col" { "Alert" }
                        th scope="col" { "Status" }
                        th scope="col" { "How" }
                        th scope="col" { "Last seen" }
                    }
                }
                tbody {
                    @for (a, rel) in &f.alerts {
                        tr {
                            td data-label="Level" { (level_badge(a.level)) }
                            td data-label="Alert" {
                                a href={ "/ui/alerts/" (a.id) } { (a.title) }
                                " " span.small.muted { "#" (a.id) }
                                @if s.kind != Kind::Principal {
                                    br;
                                    span.small { (pivot(Kind::Principal, &a.entity)) }
                                }
                            }
                            td data-label="Status" { (status_badge(a.status)) }
                            td data-label="How" { (rel.words(s.kind)) }
                            td data-label="Last seen" { (at(&a.last_seen)) }
                        }
                    }
                }
            }
        }
        h3 { "Incidents" }
        @if f.incidents.is_empty() {
            p.empty { "No incidents hold it or its alerts." }
        } @else {
            table.cards.entity-incidents {
                thead {
                    tr {
                        th scope="col" { "Level" }
                        th scope="col" { "Incident" }
                        th scope="col" { "Status" }
                        th scope="col" { "Why here" }
                        th scope="col" { "Span" }
                    }
                }
                tbody {
                    @for i in &f.incidents {
                        tr {
                            td data-label="Level" { (level_badge(i.severity.unwrap_or(i.level))) }
                            td data-label="Incident" {
                                a href={ "/ui/incidents/" (i.id) } { (i.title) }
                                " " span.small.muted { "#" (i.id) }
                            }
                            td data-label="Status" { (status_badge(i.status)) }
                            td data-label="Why here" { (why_incident(s, i, &f.alerts)) }
                            td data-label="Span" { (at(&i.first_seen)) " → " (at(&i.last_seen)) }
                        }
                    }
                }
            }
        }
    }
}

/// What the queue's search looks for to find the rest of the alerts.
fn alert_text(s: &Subject) -> String {
    s.principal_parts().0.to_string()
}

/// How an incident holds the entity.
fn why_incident(s: &Subject, i: &IncidentRecord, alerts: &[(AlertRecord, Relation)]) -> String {
    let holds_alert = alerts.iter().any(|(a, _)| a.incident_id == Some(i.id));
    match s.kind {
        Kind::Principal => {
            let (bare, key) = s.principal_parts();
            if i.entity == bare {
                "its principal".into()
            } else if i.join_keys.iter().any(|k| k == &format!("created:{bare}")) {
                format!("{} created it", i.entity)
            } else if key.is_some_and(|k| i.key == k || i.join_keys.iter().any(|j| j == k)) {
                "holds its access key".into()
            } else if i.join_keys.iter().any(|k| k == bare || k == &s.value) {
                "joined it (a shared address, person or key)".into()
            } else if holds_alert {
                "holds an alert naming it".into()
            } else {
                "answers to it".into()
            }
        }
        Kind::Ip if i.join_keys.iter().any(|k| k == &format!("ip:{}", s.value)) => {
            "joins its alerts by this address".into()
        }
        _ => format!(
            "holds an alert {}",
            alerts
                .iter()
                .find(|(a, _)| a.incident_id == Some(i.id))
                .map(|(_, r)| r.words(s.kind))
                .unwrap_or("of it")
        ),
    }
}

// ---- linked identities ---------------------------------------------------------------------------

/// An identity or address linked to the entity, and why.
struct Link {
    kind: Kind,
    value: String,
    why: Markup,
}

/// What the incidents that hold the entity join to it: the other principals and keys they hold,
/// the identities their principals created, the person behind them and the addresses they join
/// by.
fn incident_links(s: &Subject, incidents: &[IncidentRecord], own_keys: &Tally) -> Vec<Link> {
    let (bare, key) = s.principal_parts();
    let mine = |k: &str| match s.kind {
        Kind::Principal => k == bare || k == s.value || Some(k) == key || split_key(k).0 == bare,
        Kind::Ip => k == s.value,
        _ => false,
    };
    let mut out: Vec<Link> = Vec::new();
    let mut seen: HashSet<(&'static str, String)> = HashSet::new();
    let mut push = |out: &mut Vec<Link>, kind: Kind, value: &str, why: Markup| {
        if !mine(value) && seen.insert((kind.as_str(), value.to_string())) {
            out.push(Link {
                kind,
                value: value.to_string(),
                why,
            });
        }
    };
    for i in incidents.iter().take(30) {
        let inc = html! { a href={ "/ui/incidents/" (i.id) } { "incident #" (i.id) } };
        let addresses: Vec<&str> = i
            .join_keys
            .iter()
            .filter_map(|k| k.strip_prefix("ip:"))
            .collect();
        let people: Vec<&str> = i
            .join_keys
            .iter()
            .filter_map(|k| k.strip_prefix("person:"))
            .collect();
        let created: Vec<&str> = i
            .join_keys
            .iter()
            .filter_map(|k| k.strip_prefix("created:"))
            .collect();
        let created_me = s.kind == Kind::Principal && created.contains(&bare);
        let mut plain: Vec<&str> = vec![i.key.as_str(), i.entity.as_str()];
        for k in &i.join_keys {
            if !k.starts_with("ip:")
                && !k.starts_with("person:")
                && !k.starts_with("created:")
                && !plain.contains(&k.as_str())
            {
                plain.push(k);
            }
        }
        for k in plain {
            let why = if created.contains(&k) {
                html! { "created or given credentials by " (pivot(Kind::Principal, &i.entity)) " (" (inc) ")" }
            } else if created_me && k == i.entity {
                html! { "created it or gave it credentials (" (inc) ")" }
            } else if is_access_key(k) {
                if s.kind == Kind::Principal && own_keys.m.contains_key(k) {
                    html! { "its access key (" (inc) ")" }
                } else {
                    html! { "an access key of " (pivot(Kind::Principal, &i.entity)) " (" (inc) ")" }
                }
            } else if let Some(p) = people.first() {
                html! { "the same person, " (p) ", in another identity (" (inc) ")" }
            } else if let Some(a) = addresses.first() {
                html! { "acted from an address it shares, " (pivot(Kind::Ip, a)) " (" (inc) ")" }
            } else {
                html! { "grouped with it in " (inc) }
            };
            push(&mut out, Kind::Principal, k, why);
        }
        for c in &created {
            push(
                &mut out,
                Kind::Principal,
                c,
                html! { "created or given credentials by " (pivot(Kind::Principal, &i.entity)) " (" (inc) ")" },
            );
        }
        for p in &people {
            push(
                &mut out,
                Kind::Principal,
                p,
                html! { "the person behind it: one e-mail across clouds (" (inc) ")" },
            );
        }
        for a in &addresses {
            push(
                &mut out,
                Kind::Ip,
                a,
                html! { "an address " (inc) " joins its alerts by" },
            );
        }
    }
    out
}

fn linked(s: &Subject, f: &Found, p: &Profile) -> Markup {
    let links = incident_links(s, &f.incidents, &p.keys);
    let (title, kind, tally): (&str, Kind, &Tally) = match s.kind {
        Kind::Principal => ("Addresses it used", Kind::Ip, &p.ips),
        Kind::Ip => ("Principals seen from it", Kind::Principal, &p.principals),
        Kind::Account => ("Its principals", Kind::Principal, &p.principals),
        Kind::As => ("Its addresses", Kind::Ip, &p.ips),
        Kind::Resource => ("Principals that named it", Kind::Principal, &p.principals),
    };
    let rows = tally.top(SEEN_ROWS);
    html! {
        h3 { "Through incidents" }
        @if links.is_empty() {
            p.empty { "No incident joins other identities to it." }
        } @else {
            ul.links {
                @for l in &links {
                    li { (pivot(l.kind, &l.value)) span.why { " — " (l.why) } }
                }
            }
        }
        h3 { (title) }
        @if rows.is_empty() {
            p.empty { "None in its events." }
        } @else {
            p.small.muted {
                "In its events of the baseline's window"
                @if tally.len() > rows.len() { "; the " (rows.len()) " busiest of " (tally.len()) }
                "."
            }
            table.cards.entity-seen {
                thead {
                    tr {
                        th scope="col" { (if kind == Kind::Ip { "Address" } else { "Principal" }) }
                        @if kind == Kind::Ip { th scope="col" { "Network" } }
                        th.num scope="col" { "Events" }
                        th scope="col" { "First" }
                        th scope="col" { "Last" }
                    }
                }
                tbody {
                    @for (v, st) in &rows {
                        tr {
                            td data-label=(if kind == Kind::Ip { "Address" } else { "Principal" }) {
                                (pivot(kind, v))
                                @if p.is_new(st.first) { " " span.new { "new" } }
                            }
                            @if kind == Kind::Ip {
                                td data-label="Network" {
                                    @match p.nets.get(*v).and_then(Option::as_ref) {
                                        Some(n) => {
                                            @if let Some(a) = n.asn { (as_pivot(&a.to_string())) }
                                            @if let Some(name) = &n.as_name { " " span.small { (name) } }
                                            @if let Some(c) = n.country { " " (country_link(c.as_str())) }
                                        }
                                        None => span.muted { "not placed" },
                                    }
                                }
                            }
                            td.num data-label="Events" {
                                a href=(search(&[(s.kind.as_str(), &s.value), (kind.as_str(), v)]))
                                    title="These events" { (num(st.n)) }
                            }
                            td data-label="First" { (at(&st.first)) }
                            td data-label="Last" { (at(&st.last)) }
                        }
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_split_off_principals() {
        assert_eq!(
            split_key("arn:aws:iam::1:user/bob (AKIAEXAMPLEBOB00001)"),
            ("arn:aws:iam::1:user/bob", Some("AKIAEXAMPLEBOB00001"))
        );
        assert_eq!(split_key("svc (not a key)"), ("svc (not a key)", None));
        assert_eq!(
            split_key("AKIAEXAMPLEBOB00001"),
            ("AKIAEXAMPLEBOB00001", None)
        );
    }

    #[test]
    fn names_match_whole_values_only() {
        assert!(names(
            "StopLogging by arn:aws:iam::1:user/bob.",
            "arn:aws:iam::1:user/bob"
        ));
        assert!(!names(
            "by arn:aws:iam::1:user/bobby",
            "arn:aws:iam::1:user/bob"
        ));
        assert!(names("from 10.0.0.1, twice", "10.0.0.1"));
        assert!(!names("from 10.0.0.12", "10.0.0.1"));
        assert!(!names("from 110.0.0.1", "10.0.0.1"));
        assert!(!names("from 10.0.0.1.5", "10.0.0.1"));
        assert!(names("10.0.0.1", "10.0.0.1"));
    }

    #[test]
    fn usual_hours_find_the_shortest_run_and_wrap_past_midnight() {
        let mut h = [0u64; 24];
        for (i, n) in h.iter_mut().enumerate().take(18).skip(8) {
            *n = 10 + i as u64;
        }
        assert_eq!(usual_hours(&h, 1.0), Some((8, 10)));
        assert_eq!(hours_words(8, 10), "08:00–18:00 UTC");
        let mut night = [0u64; 24];
        night[22] = 5;
        night[23] = 5;
        night[0] = 5;
        night[1] = 5;
        assert_eq!(usual_hours(&night, 1.0), Some((22, 4)));
        assert_eq!(hours_words(22, 4), "22:00–02:00 UTC");
        assert_eq!(usual_hours(&[0; 24], 0.8), None);
    }

    #[test]
    fn values_are_parsed_per_kind() {
        let v = |s: &str| Some(s.to_string());
        let a = Subject::parse(Kind::As, v(" AS16509 ").as_ref()).unwrap();
        assert_eq!((a.value.as_str(), a.asn), ("16509", Some(16509)));
        assert!(Subject::parse(Kind::As, v("amazon").as_ref()).is_err());
        assert!(Subject::parse(Kind::Ip, v("  ").as_ref()).is_err());
        assert!(Subject::parse(Kind::Ip, None).is_err());
        let p = Subject::parse(Kind::Principal, v("arn:aws:iam::1:user/a b").as_ref()).unwrap();
        assert_eq!(p.term(), r#"principal:"arn:aws:iam::1:user/a b""#);
    }

    #[test]
    fn numbers_read_in_thousands() {
        assert_eq!(num(0), "0");
        assert_eq!(num(999), "999");
        assert_eq!(num(1000), "1,000");
        assert_eq!(num(1234567), "1,234,567");
        assert_eq!(all_events(1, false), "all 1 event");
        assert_eq!(all_events(1234, false), "all 1,234 events");
        assert_eq!(
            all_events(10_000, true),
            "all its events (more than 10,000)"
        );
    }
}
