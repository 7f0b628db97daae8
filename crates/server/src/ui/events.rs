//! Event hunting: the search form and its results, the CSV export, and one event's original
//! record.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, Duration, Utc};
use cloudsentinel_core::text::SHOWN_FIELD_CHARS;
use cloudsentinel_store::{
    EVENT_COUNT_CAP, EventDigest, EventField, EventQuery, EventRow, EventTerm, Histogram,
};
use maud::{Markup, html};

use super::{
    Kind, Nav, Q, Session, csrf_field, done, error_text, fail, field, flash, form, page, pager,
    pivot, search_term, urlenc, when,
};
use crate::error::{ApiError, bad};
use crate::search::{self, FIELDS, field_name};
use crate::{AppState, api, blocking};

/// This page's own routes, merged into the dashboard's (behind sign-in).
pub(super) fn routes() -> axum::Router<AppState> {
    axum::Router::new()
        .route("/ui/events/saved", post(save_search))
        .route("/ui/events/saved/delete", post(delete_search))
}

/// The time ranges offered, by how far back they reach (`None`: all time).
const RANGES: &[(&str, &str, Option<i64>)] = &[
    ("1h", "Last hour", Some(3600)),
    ("24h", "Last 24 hours", Some(86_400)),
    ("7d", "Last 7 days", Some(7 * 86_400)),
    ("30d", "Last 30 days", Some(30 * 86_400)),
    ("all", "All time", None),
];
/// The range a search without one covers.
const DEFAULT_RANGE: &str = "30d";
/// Matches the histogram and the facets count at most (the newest).
const DIGEST_CAP: u32 = 50_000;
/// Bars of the histogram.
const BUCKETS: u32 = 48;
/// Values shown per facet.
const FACET_TOP: u32 = 8;

/// A time from the form: RFC 3339, or the browser's `datetime-local` value read as UTC.
fn form_time(q: &BTreeMap<String, String>, key: &str) -> Result<Option<DateTime<Utc>>, ApiError> {
    let Some(v) = q.get(key).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    if let Ok(t) = DateTime::parse_from_rfc3339(v) {
        return Ok(Some(t.with_timezone(&Utc)));
    }
    for fmt in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(v, fmt) {
            return Ok(Some(t.and_utc()));
        }
    }
    if let Ok(d) = chrono::NaiveDate::parse_from_str(v, "%Y-%m-%d") {
        return Ok(Some(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc()));
    }
    Err(bad(format!(
        "{key}={v}: expected a time like 2026-11-22T10:00 (UTC) or RFC 3339"
    )))
}

/// The form's search as the API's: empty fields dropped, times as RFC 3339, the range preset
/// as a start time (the default range when no time is given), `q` read as the search language.
fn event_query(q: &BTreeMap<String, String>, limit: u32) -> Result<EventQuery, ApiError> {
    let mut p = BTreeMap::new();
    for (k, v) in q {
        let v = v.trim();
        if v.is_empty() || k == "range" {
            continue;
        }
        let v = match k.as_str() {
            "since" | "until" => form_time(q, k)?.map(|t| t.to_rfc3339()).unwrap_or_default(),
            _ => v.to_string(),
        };
        p.insert(k.clone(), v);
    }
    if !p.contains_key("since") && !p.contains_key("until") {
        let range = q.get("range").map(String::as_str).unwrap_or(DEFAULT_RANGE);
        let Some((_, _, back)) = RANGES.iter().find(|r| r.0 == range) else {
            return Err(bad(format!(
                "range={range}: expected one of {}",
                RANGES.iter().map(|r| r.0).collect::<Vec<_>>().join(", ")
            )));
        };
        if let Some(secs) = back {
            p.insert(
                "since".into(),
                (Utc::now() - Duration::seconds(*secs)).to_rfc3339(),
            );
        }
    }
    p.insert("limit".into(), limit.to_string());
    p.remove("raw");
    api::event_query(&p)
}

/// The search's parameters as a URL query (without `offset`), for the export and the pager.
fn kept_params(q: &BTreeMap<String, String>) -> String {
    q.iter()
        .filter(|(k, v)| !v.is_empty() && !["offset", "csrf", "name"].contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}", urlenc(k), urlenc(v)))
        .collect::<Vec<_>>()
        .join("&")
}

pub(super) async fn events(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    const PAGE: u32 = 50;
    let user = s.caller.name.clone();
    let saved = blocking(&state, move |st| load_saved(st, &user))
        .await
        .unwrap_or_default();
    let query = match event_query(&q, PAGE) {
        Ok(x) => x,
        Err(e) => {
            // The form stays, with what is wrong above it.
            let (status, msg) = error_text(e);
            let body = html! {
                h1 { "Events" }
                (hunt_form(&q))
                (flash(&msg, true))
                (saved_panel(&s, &q, &saved))
            };
            let mut resp = page(&s, "Events", Nav::Events, None, body);
            *resp.status_mut() = status;
            return resp;
        }
    };
    let offset = query.offset;
    let (since, until) = (query.since, query.until);
    let digest_query = query.clone();
    let found = match blocking(&state, move |st| {
        let page = st.events(&query)?;
        let digest = st.event_digest(
            &digest_query,
            DIGEST_CAP,
            Some(Histogram {
                from: since,
                // A range reaching back from now ends now; all time ends with the newest match.
                to: until.or_else(|| since.map(|_| Utc::now())),
                buckets: BUCKETS,
            }),
            FACET_TOP,
        )?;
        Ok((page, digest))
    })
    .await
    {
        Ok(p) => p,
        Err(e) => return fail(&s, e),
    };
    let (found, digest) = found;
    let keep = kept_params(&q);
    let more = found.total > EVENT_COUNT_CAP;
    let body = html! {
        h1 { "Events" }
        (hunt_form(&q))
        div.row.between {
            p.muted.small id="events-total" {
                "Matching events: "
                @if more { "more than " (thousands(EVENT_COUNT_CAP)) } @else { (thousands(found.total)) }
                "."
            }
            a.button id="export-csv" href={ "/ui/events.csv?" (keep) } download {
                "Export CSV (up to " (thousands(CSV_MAX)) ")"
            }
        }
        @if found.total > 0 {
            (histogram(&q, &digest))
            (facets(&q, &digest))
        }
        (events_table(&found.items, false))
        @if more {
            (capped_pager(&keep, offset, PAGE as u64, found.items.len() as u64))
        } @else {
            (pager("/ui/events", &keep, found.total, offset, PAGE as u64))
        }
        (saved_panel(&s, &q, &saved))
    };
    page(&s, "Events", Nav::Events, None, body)
}

/// Previous / next links when more events match than are counted: the count is not shown as
/// a number it is not.
fn capped_pager(base: &str, offset: u64, limit: u64, shown: u64) -> Markup {
    let sep = if base.is_empty() { "" } else { "&" };
    html! {
        nav.pager aria-label="Pages" {
            @if offset > 0 {
                a.button rel="prev" href={ "/ui/events?" (base) (sep) "offset=" (offset.saturating_sub(limit)) } { "← Newer" }
            }
            span.muted {
                (thousands(offset + 1)) "–" (thousands(offset + shown)) " of more than "
                (thousands(EVENT_COUNT_CAP))
            }
            @if shown == limit && offset + limit < EVENT_COUNT_CAP {
                a.button rel="next" href={ "/ui/events?" (base) (sep) "offset=" (offset + limit) } { "Older →" }
            }
        }
    }
}

/// `123,456`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The current search with `term` added, as an events page URL (the range kept, from the first
/// page).
fn adding(q: &BTreeMap<String, String>, term: &EventTerm) -> String {
    let mut next = q.clone();
    next.remove("offset");
    let current = q.get("q").map(String::as_str).unwrap_or("");
    next.insert("q".into(), search::with_term(current, term));
    format!("/ui/events?{}", kept_params(&next))
}

fn term(field: EventField, value: &str) -> EventTerm {
    EventTerm {
        field,
        value: value.to_string(),
        negate: false,
    }
}

/// The matches over time: a bar per slice of the range, each with its count on hover and a link
/// to the search over that slice.
fn histogram(q: &BTreeMap<String, String>, d: &EventDigest) -> Markup {
    let Some((from, to)) = d.histogram_range else {
        return html! {};
    };
    let n = d.histogram.len().max(1) as i64;
    let width_ms = ((to - from).num_milliseconds() / n).max(1);
    let max = d.histogram.iter().copied().max().unwrap_or(0).max(1);
    let slice = |i: usize| {
        let a = from + Duration::milliseconds(width_ms * i as i64);
        let b = if i as i64 == n - 1 {
            to
        } else {
            a + Duration::milliseconds(width_ms)
        };
        (a, b)
    };
    let href = |a: DateTime<Utc>, b: DateTime<Utc>| {
        let mut next = q.clone();
        next.remove("offset");
        next.remove("range");
        next.insert(
            "since".into(),
            a.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        next.insert(
            "until".into(),
            b.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        );
        format!("/ui/events?{}", kept_params(&next))
    };
    let bar_w = 10;
    html! {
        figure.hist id="events-histogram" {
            figcaption.small.muted {
                "Matches over time, " (when(&from)) " to " (when(&to))
                @if d.capped { " (the newest " (thousands(d.counted)) " matches)" }
                ". Select a bar to search its slice."
            }
            svg viewBox={ "0 0 " (n * bar_w) " 100" } preserveAspectRatio="none" role="group"
                aria-label="Matches over time" {
                @for (i, c) in d.histogram.iter().enumerate() {
                    @let (a, b) = slice(i);
                    @let h = if *c == 0 { 0.0 } else { (*c as f64 / max as f64 * 96.0).max(3.0) };
                    @let label = format!("{c} {} from {} to {}", if *c == 1 { "event" } else { "events" }, when(&a), when(&b));
                    a href=(href(a, b)) aria-label=(label) {
                        title { (label) }
                        rect.hit x=(i as i64 * bar_w) y="0" width=(bar_w) height="100" {}
                        rect.bar x=(format!("{}", i as i64 * bar_w + 1)) y=(format!("{:.1}", 100.0 - h))
                            width=(bar_w - 2) height=(format!("{h:.1}")) {}
                    }
                }
            }
        }
    }
}

/// The facet of a field: its label and how a value is shown.
fn facet_label(f: EventField) -> &'static str {
    match f {
        EventField::Principal => "Principal",
        EventField::Ip => "Source address",
        EventField::Action => "Action",
        EventField::Account => "Account",
        EventField::As => "AS",
        EventField::Country => "Country",
        EventField::Outcome => "Outcome",
        _ => "",
    }
}

/// Counts per value of the fields an analyst pivots on, each value a link adding its term.
fn facets(q: &BTreeMap<String, String>, d: &EventDigest) -> Markup {
    html! {
        section.facets aria-label="Counts per value" id="events-facets" {
            @for f in &d.facets {
                @if !f.values.is_empty() {
                    div.facet {
                        h2.small { (facet_label(f.field)) " " span.muted { "(" (f.distinct) ")" } }
                        ul {
                            @for v in &f.values {
                                @let shown = if f.field == EventField::As { format!("AS{}", v.key) } else { v.key.clone() };
                                li {
                                    a.term href=(adding(q, &term(f.field, &v.key)))
                                        title={ "Add " (search_term(field_name(f.field), &v.key)) " to the search" } { (shown) }
                                    span.num { (thousands(v.count)) }
                                }
                            }
                        }
                    }
                }
            }
            @if d.capped {
                p.small.muted.note { "Counted over the newest " (thousands(d.counted)) " matches." }
            }
        }
    }
}

/// The search form, filled in with the current search.
fn hunt_form(q: &BTreeMap<String, String>) -> Markup {
    let val = |k: &str| q.get(k).map(String::as_str).unwrap_or("");
    let custom = !val("since").is_empty() || !val("until").is_empty();
    let range = if custom {
        ""
    } else {
        q.get("range").map(String::as_str).unwrap_or(DEFAULT_RANGE)
    };
    // Filters of older links (`?operation=...`) stay in force, shown as hidden fields.
    let legacy = [
        "principal",
        "source_ip",
        "account",
        "service",
        "operation",
        "outcome",
    ];
    html! {
        form.panel.search method="get" action="/ui/events" role="search" id="hunt" {
            div.qrow {
                label for="ev-q" { "Search" }
                input type="search" name="q" id="ev-q" value=(val("q"))
                    placeholder="principal:alice action:CreateUser -outcome:success \"access denied\""
                    autocomplete="off" spellcheck="false";
            }
            div.trow {
                label {
                    "Range"
                    select name="range" id="ev-range" {
                        @if custom { option value="" selected { "From–until below" } }
                        @for (v, l, _) in RANGES {
                            option value=(v) selected[range == *v] { (l) }
                        }
                    }
                }
                label {
                    "From (UTC)"
                    input type="text" name="since" id="ev-since" value=(val("since"))
                        placeholder="2026-11-22T10:00" size="16";
                }
                label {
                    "Until (UTC)"
                    input type="text" name="until" id="ev-until" value=(val("until"))
                        placeholder="2026-11-22T12:00" size="16";
                }
                @for k in legacy {
                    @if !val(k).is_empty() { input type="hidden" name=(k) value=(val(k)); }
                }
                button.primary type="submit" id="hunt-go" { "Search" }
            }
            details.syntax {
                summary { "How to search" }
                p.small {
                    "Terms separated by spaces must all hold. Free text finds words of the whole \
                     record (request parameters, resources, every value), in order; quote several \
                     words: " code { "\"access denied\"" } ". Put " code { "-" } " before a term \
                     to exclude it. Fields:"
                }
                dl.small {
                    @for (name, _, help) in FIELDS {
                        dt { code { (name) ":" } }
                        dd { (help) }
                    }
                }
            }
        }
    }
}

// ---- saved searches ---------------------------------------------------------------------------

/// Saved searches a user keeps at most.
const SAVED_MAX: usize = 50;

/// A search a user saved: its name and the page's parameters.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
struct SavedSearch {
    name: String,
    /// The events page's query (`q=...&range=...`).
    params: String,
}

fn saved_key(user: &str) -> String {
    format!("ui.saved_searches.{user}")
}

fn load_saved(
    st: &dyn cloudsentinel_store::Store,
    user: &str,
) -> cloudsentinel_store::Result<Vec<SavedSearch>> {
    Ok(st
        .get_state(&saved_key(user))?
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default())
}

fn store_saved(
    st: &dyn cloudsentinel_store::Store,
    user: &str,
    list: &[SavedSearch],
) -> cloudsentinel_store::Result<()> {
    st.put_state(
        &saved_key(user),
        &serde_json::to_vec(list).unwrap_or_default(),
    )
}

/// The user's saved searches, and a form to save the current one.
fn saved_panel(s: &Session, q: &BTreeMap<String, String>, saved: &[SavedSearch]) -> Markup {
    let current = kept_params(q);
    html! {
        section.panel.saved id="saved-searches" aria-labelledby="saved-h" {
            h2 id="saved-h" { "Saved searches" }
            @if saved.is_empty() {
                p.muted.small { "None yet: name the current search below to keep it." }
            } @else {
                ul.saved-list {
                    @for x in saved {
                        li {
                            a href={ "/ui/events?" (x.params) } { (x.name) }
                            form.inline method="post" action="/ui/events/saved/delete" {
                                (csrf_field(s))
                                input type="hidden" name="name" value=(x.name);
                                button.link type="submit" { "Delete " span.vh { (x.name) } }
                            }
                        }
                    }
                }
            }
            form.inline.save method="post" action="/ui/events/saved" id="save-search" {
                (csrf_field(s))
                input type="hidden" name="params" value=(current);
                label { "Name" input type="text" name="name" id="saved-name" maxlength="80" required; }
                button type="submit" { "Save search" }
            }
        }
    }
}

/// Saves the search in `params` under `name` (replacing one of that name).
async fn save_search(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = field(&fields, "name").unwrap_or("").trim().to_string();
    let params = field(&fields, "params").unwrap_or("").to_string();
    let back = format!("/ui/events?{params}");
    if name.is_empty() || name.chars().count() > 80 {
        return done(
            &back,
            "error: a saved search needs a name of 1 to 80 characters",
        );
    }
    // Only a search that reads is kept.
    let parsed: BTreeMap<String, String> = serde_urlencoded::from_str(&params).unwrap_or_default();
    if let Err(e) = event_query(&parsed, 1) {
        return done(&back, format!("error: {}", error_text(e).1));
    }
    let params = kept_params(&parsed);
    let back = format!("/ui/events?{params}");
    let user = s.caller.name.clone();
    let (n, p) = (name.clone(), params.clone());
    let r = blocking(&state, move |st| {
        let mut list = load_saved(st, &user)?;
        list.retain(|x| x.name != n);
        if list.len() >= SAVED_MAX {
            return Ok(false);
        }
        list.push(SavedSearch { name: n, params: p });
        list.sort_by_key(|x| x.name.to_lowercase());
        store_saved(st, &user, &list)?;
        Ok(true)
    })
    .await;
    match r {
        Ok(true) => done(
            &back,
            format!("Saved the search as \u{201c}{name}\u{201d}."),
        ),
        Ok(false) => done(
            &back,
            format!("error: at most {SAVED_MAX} saved searches: delete one first"),
        ),
        Err(e) => done(&back, format!("error: {}", error_text(e).1)),
    }
}

/// Deletes the user's saved search `name`.
async fn delete_search(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let name = field(&fields, "name").unwrap_or("").to_string();
    let user = s.caller.name.clone();
    let n = name.clone();
    let r = blocking(&state, move |st| {
        let mut list = load_saved(st, &user)?;
        let before = list.len();
        list.retain(|x| x.name != n);
        store_saved(st, &user, &list)?;
        Ok(before != list.len())
    })
    .await;
    match r {
        Ok(true) => done(
            "/ui/events",
            format!("Deleted the saved search \u{201c}{name}\u{201d}."),
        ),
        Ok(false) => done(
            "/ui/events",
            format!("error: no saved search is named \u{201c}{name}\u{201d}"),
        ),
        Err(e) => done("/ui/events", format!("error: {}", error_text(e).1)),
    }
}

/// Largest original record embedded in a page; a larger one is fetched when opened.
const RAW_INLINE_MAX: usize = 64 * 1024;

/// A table of events; `raw_inline` shows each original record (already loaded) in a
/// disclosure, otherwise it is fetched on demand. Fields are cut at
/// [`SHOWN_FIELD_CHARS`]; the original record has them whole.
pub(super) fn events_table(events: &[EventRow], raw_inline: bool) -> Markup {
    if events.is_empty() {
        return html! { p.empty { "No events." } };
    }
    html! {
        table.events.cards {
            colgroup {
                col class="c-time";
                col class="c-op";
                col class="c-who";
                col class="c-src";
                col class="c-out";
            }
            thead {
                tr {
                    th scope="col" { "Time" }
                    th scope="col" { "Action" }
                    th scope="col" { "Principal" }
                    th scope="col" { "Source" }
                    th scope="col" { "Outcome" }
                }
            }
            tbody {
                @for e in events {
                    (event_row(e, raw_inline))
                }
            }
        }
    }
}

/// A link to the events search for one `field:value`.
fn search_link(field: &str, value: &str, shown: &str) -> Markup {
    html! {
        a.term href=(super::search_url(field, value)) title={ "Search " (search_term(field, value)) } { (shown) }
    }
}

/// One event's two rows: its fields, then its original record. Every value is a pivot to its
/// entity page or a search for it.
fn event_row(e: &EventRow, raw_inline: bool) -> Markup {
    let raw = raw_record(e, raw_inline);
    let full = e;
    let mut shown = e.without_raw();
    shown.clip_fields(SHOWN_FIELD_CHARS);
    let e = &shown;
    let ua = e.user_agent.as_deref().unwrap_or("");
    let action = format!("{}:{}", full.service, full.operation);
    html! {
        tr {
            td.nowrap data-label="Time" { (when(&e.time)) }
            td data-label="Action" {
                a.term href=(super::search_url("action", &action)) title={ "Search " (search_term("action", &action)) } {
                    strong { (e.operation) } " " span.small.muted { (e.service) }
                }
            }
            td.who data-label="Principal" {
                a.pv href=(super::entity_url(Kind::Principal, &full.principal)) title={ "Everything about " (full.principal) } { (e.principal) }
                @if let Some(key) = &full.access_key {
                    @if !full.principal.contains(key.as_str()) {
                        " " span.small { "key " (pivot(Kind::Principal, key)) }
                    }
                }
                @if let Some(account) = &full.account {
                    br;
                    span.small { "account " (pivot(Kind::Account, account)) }
                }
            }
            td.src data-label="Source" {
                @if let Some(ip) = &full.source_ip { (pivot(Kind::Ip, ip)) }
                @if full.asn.is_some() || full.country.is_some() {
                    br;
                    span.small {
                        @if let Some(asn) = full.asn { a.pv href=(super::entity_url(Kind::As, &asn.to_string())) title={ "Everything about AS" (asn) } { "AS" (asn) } " " }
                        @if let Some(c) = &full.country { (search_link("country", c, c)) }
                    }
                }
                @if !ua.is_empty() {
                    span.small.muted.ua title=(ua) { (ua) }
                }
            }
            td data-label="Outcome" {
                @if e.success {
                    (search_link("outcome", "success", "success"))
                } @else {
                    span.st.open { (search_link("outcome", "failure", "failed")) } " " (e.error_code.as_deref().unwrap_or(""))
                }
            }
        }
        tr.rawrow { td colspan="5" data-label="Record" { (raw) } }
    }
}

/// The disclosure with an event's original record: embedded when `raw_inline` and it is small
/// enough, otherwise fetched when opened (nothing when it was loaded and there is none).
fn raw_record(e: &EventRow, raw_inline: bool) -> Markup {
    // A record too big to embed is fetched on demand like the others.
    let inline = raw_inline
        .then_some(e.raw.as_ref())
        .flatten()
        .map(|r| serde_json::to_string_pretty(r).unwrap_or_default())
        .filter(|text| text.len() <= RAW_INLINE_MAX);
    html! {
        @if let Some(text) = inline {
            details.raw { summary { "original record" } pre tabindex="0" { (text) } }
        } @else if !(raw_inline && e.raw.is_none()) {
            details.raw data-raw={
                "/ui/events/raw?id=" (urlenc(&e.id)) "&time=" (urlenc(&e.time.to_rfc3339()))
            } {
                summary { "original record" }
                pre tabindex="0" {}
            }
        }
    }
}

/// Rows an export holds at most.
const CSV_MAX: u64 = 100_000;

fn csv_cell(v: &str) -> String {
    // Cells that a spreadsheet would run as a formula are quoted and prefixed.
    let v = cloudsentinel_core::text::csv_safe(v).into_owned();
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v
    }
}

fn csv_row(e: &EventRow) -> String {
    let o = |v: &Option<String>| v.clone().unwrap_or_default();
    let cells = [
        e.time.to_rfc3339(),
        e.id.clone(),
        e.provider.clone(),
        o(&e.account),
        o(&e.region),
        e.principal.clone(),
        o(&e.actor_name),
        o(&e.access_key),
        o(&e.source_ip),
        o(&e.user_agent),
        e.service.clone(),
        e.operation.clone(),
        if e.success { "success" } else { "failure" }.to_string(),
        o(&e.error_code),
    ];
    let mut line = cells
        .iter()
        .map(|c| csv_cell(c))
        .collect::<Vec<_>>()
        .join(",");
    line.push_str("\r\n");
    line
}

/// The search as CSV, read from the store a page at a time.
pub(super) async fn events_csv(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let mut query = match event_query(&q, 1000) {
        Ok(x) => x,
        Err(e) => return fail(&s, e),
    };
    query.offset = 0;
    let mut out = String::from(
        "time,id,provider,account,region,principal,actor_name,access_key,source_ip,user_agent,service,operation,outcome,error_code\r\n",
    );
    let mut written = 0u64;
    loop {
        let qq = query.clone();
        let page = match blocking(&state, move |st| st.events(&qq)).await {
            Ok(p) => p,
            Err(e) => return fail(&s, e),
        };
        let n = page.items.len() as u64;
        for e in &page.items {
            if written >= CSV_MAX {
                break;
            }
            out.push_str(&csv_row(e));
            written += 1;
        }
        if n < query.limit as u64 || written >= CSV_MAX {
            break;
        }
        query.offset += n;
    }
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                header::CONTENT_DISPOSITION,
                "attachment; filename=\"cloudsentinel-events.csv\"",
            ),
        ],
        Body::from(out),
    )
        .into_response()
}

/// An error as plain text (for the script that shows raw records).
fn plain(e: ApiError) -> Response {
    let (status, msg) = error_text(e);
    (
        status,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        msg,
    )
        .into_response()
}

/// One event's original record, pretty-printed.
pub(super) async fn event_raw(
    State(state): State<AppState>,
    Extension(_): Extension<Session>,
    Query(q): Q,
) -> Response {
    let (Some(id), Some(time)) = (q.get("id").cloned(), q.get("time")) else {
        return plain(bad("id and time are required"));
    };
    let Ok(t) = DateTime::parse_from_rfc3339(time) else {
        return plain(bad("time: RFC 3339"));
    };
    let t = t.with_timezone(&Utc);
    let found = blocking(&state, move |st| st.events_by_id(&[id], (t, t), true)).await;
    match found {
        Ok(v) => match v.into_iter().next().and_then(|e| e.raw) {
            Some(raw) => (
                [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
                serde_json::to_string_pretty(&raw).unwrap_or_default(),
            )
                .into_response(),
            None => plain(ApiError::NotFound(
                "no original record is stored for this event".into(),
            )),
        },
        Err(e) => plain(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_defused() {
        assert_eq!(csv_cell("plain"), "plain");
        assert_eq!(csv_cell("a,b"), "\"a,b\"");
        assert_eq!(csv_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_cell("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_cell("-1"), "'-1");
    }

    #[test]
    fn a_capped_total_is_never_shown_as_a_count() {
        assert_eq!(thousands(100_000), "100,000");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1_234_567), "1,234,567");
        let html = capped_pager("q=x", 50, 50, 50).into_string();
        assert!(html.contains("51–100 of more than 100,000"), "{html}");
        assert!(
            html.contains("offset=100") && html.contains("offset=0"),
            "{html}"
        );
        assert!(!html.contains("100000"));
    }

    #[test]
    fn form_times_read_as_utc() {
        let mut q = BTreeMap::new();
        q.insert("since".to_string(), "2026-11-22T10:00".to_string());
        assert_eq!(
            form_time(&q, "since").unwrap().unwrap().to_rfc3339(),
            "2026-11-22T10:00:00+00:00"
        );
        q.insert("since".to_string(), "yesterday".to_string());
        assert!(form_time(&q, "since").is_err());
    }
}
