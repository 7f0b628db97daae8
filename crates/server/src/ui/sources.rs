//! Sources: the log sources of the configuration and how each is doing since the service
//! started (what it read, how far behind its newest event is, what failed, its queue's
//! backlog), and each account and region a trail delivers for, with the ones gone silent.

use axum::Extension;
use axum::extract::State;
use axum::response::Response;
use chrono::{DateTime, Utc};
use maud::{Markup, html};

use super::{Nav, Session, in_words, page, plural, time_cell, urlenc, when};
use crate::routes::Op;
use crate::sources::SOURCE_SILENT_RULE;
use crate::sources::health::{SourceStatus, StreamStatus};
use crate::{AppState, api};

/// A source whose last error is younger than this needs a look; an older one is history (the
/// counters run from the service's start).
const RECENT_ERROR_SECS: i64 = 24 * 3600;

/// Seconds between refreshes of the page while it is shown: lags and ages change without any
/// alert to trigger the live refresh.
const REFRESH_SECS: u32 = 30;

/// Silent streams named in the summary above the tables.
const SILENT_LISTED: usize = 8;

pub(super) async fn sources(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    if let Err(r) = s.require(Op::ListSources) {
        return r;
    }
    let axum::Json(list) = api::list_sources(State(state)).await;
    let body = html! {
        h1 { "Sources" }
        p.muted {
            "The log sources of the configuration (its " code { "[[sources]]" } " tables) and \
             how each is doing since the service started: when it last polled, how far its \
             newest event is behind now (lag), what it read, what failed, its queue's backlog; \
             then each account and region a trail delivers for. The same as "
            code { "GET /api/v1/sources" } "."
        }
        (health(&list.sources, Utc::now()))
    };
    page(&s, "Sources", Nav::Sources, Some("sources"), body)
}

/// What needs a look: streams gone silent, and sources that failed recently.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Attention {
    pub silent: usize,
    pub failing: usize,
}

impl Attention {
    pub fn any(&self) -> bool {
        self.silent > 0 || self.failing > 0
    }

    /// "1 stream silent, 2 sources with errors in the last 24 hours".
    pub fn text(&self) -> String {
        let mut parts = Vec::new();
        if self.silent > 0 {
            parts.push(format!(
                "{} silent",
                plural(self.silent as u64, "stream", "streams")
            ));
        }
        if self.failing > 0 {
            parts.push(format!(
                "{} with errors in the last 24 hours",
                plural(self.failing as u64, "source", "sources")
            ));
        }
        parts.join(", ")
    }
}

pub(super) fn attention(list: &[SourceStatus], now: DateTime<Utc>) -> Attention {
    Attention {
        silent: list
            .iter()
            .flat_map(|s| &s.streams)
            .filter(|st| st.silent_since.is_some())
            .count(),
        failing: list.iter().filter(|s| failing(s, now)).count(),
    }
}

/// Whether a source's last error is recent.
fn failing(s: &SourceStatus, now: DateTime<Utc>) -> bool {
    s.last_error_at
        .is_some_and(|t| (now - t).num_seconds() < RECENT_ERROR_SECS)
}

/// A lag in words ("40 s", "4 min", "2 h"), or a dash when no event was read yet.
pub(super) fn lag_words(secs: Option<i64>) -> String {
    match secs {
        Some(s) => in_words(s),
        None => "—".into(),
    }
}

/// The alert queue filtered to the findings about silent streams.
fn silent_alerts() -> String {
    format!("/ui/alerts?rule={}&status=all", urlenc(SOURCE_SILENT_RULE))
}

/// Everything below the page's title: the live region.
fn health(list: &[SourceStatus], now: DateTime<Utc>) -> Markup {
    if list.is_empty() {
        return html! {
            div.panel id="sources" data-region {
                p {
                    "No log sources are configured: events arrive only through HTTP ingest. To \
                     have the service read logs itself (a watched directory, or CloudTrail \
                     delivered to S3 and announced on an SQS queue), add "
                    code { "[[sources]]" } " tables to its configuration file and restart; "
                    code { "docs/SOURCES.md" } " describes each kind, its settings and the \
                     permissions it needs. For example:"
                }
                pre tabindex="0" {
                    "[[sources]]\nkind = \"aws-s3-sqs\"\nname = \"org-trail\"\n\
                     queue_url = \"https://sqs.eu-west-1.amazonaws.com/111122223333/cloudtrail-events\""
                }
            }
        };
    }
    let need = attention(list, now);
    let silent: Vec<(&SourceStatus, &StreamStatus)> = list
        .iter()
        .flat_map(|s| s.streams.iter().map(move |st| (s, st)))
        .filter(|(_, st)| st.silent_since.is_some())
        .collect();
    let many = list.len() > 1;
    html! {
        div id="sources" data-region data-refresh=(REFRESH_SECS) {
            @if need.any() {
                div.flash.error id="sources-attention" {
                    strong { "Needs attention: " (need.text()) "." }
                    @if !silent.is_empty() {
                        " No delivery from "
                        @for (i, (src, st)) in silent.iter().take(SILENT_LISTED).enumerate() {
                            @if i > 0 { ", " }
                            span.nowrap {
                                code { (st.account) } " " (st.region)
                                @if many { " (" (src.name) ")" }
                            }
                        }
                        @if silent.len() > SILENT_LISTED {
                            " and " (silent.len() - SILENT_LISTED) " more"
                        }
                        ". Each raised a “Log source went silent” alert: "
                        a href=(silent_alerts()) { "see them in the alert queue" } "."
                    }
                }
            }
            table.stack id="sources-table" {
                thead {
                    tr {
                        th { "Source" }
                        th { "State" }
                        th { "Last poll" }
                        th { abbr title="From the newest event read to now" { "Lag" } }
                        th.num { "Events" }
                        th.num { "Objects" }
                        th.num { "Messages" }
                        th { "Errors" }
                        th { "Queue backlog" }
                    }
                }
                tbody {
                    @for src in list {
                        (source_row(src, now))
                    }
                }
            }
            @for src in list.iter().filter(|s| !s.streams.is_empty()) {
                section.streams {
                    h2 {
                        "Accounts and regions"
                        @if many { " of " (src.name) }
                    }
                    table.streams.stack id={ "streams-" (urlenc(&src.name)) } {
                        thead {
                            tr {
                                th { "Account" }
                                th { "Region" }
                                th { "State" }
                                th.num { "Objects" }
                                th.num { "Events" }
                                th { "Last delivery" }
                                th { abbr title="From the newest event read to now" { "Lag" } }
                            }
                        }
                        tbody {
                            @for st in &src.streams {
                                (stream_row(st, now))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// One source: what it reads, its state, counters and backlog; its last error on a row below,
/// across the table.
fn source_row(s: &SourceStatus, now: DateTime<Utc>) -> Markup {
    let silent = s
        .streams
        .iter()
        .filter(|st| st.silent_since.is_some())
        .count();
    let failing = failing(s, now);
    let attention = silent > 0 || failing;
    html! {
        tr.attention[attention].has-detail[s.last_error.is_some()] {
            td.source {
                strong { (s.name) } " " span.kind { (s.kind) }
                div.small.mono.muted { (s.target) }
            }
            td data-label="State" {
                div.badges {
                    @if silent > 0 {
                        a.lvl.high href=(silent_alerts())
                            title="Streams that stopped delivering: see their alerts" {
                            (plural(silent as u64, "silent stream", "silent streams"))
                        }
                    }
                    @if failing {
                        span.lvl.medium title="An error in the last 24 hours" { "errors" }
                    }
                    @if s.last_poll.is_none() {
                        span.lvl.informational title="It has not looked for input yet" { "starting" }
                    } @else if s.objects == 0 && s.errors == 0 {
                        span.lvl.informational title="It polls, and nothing came yet" { "no input yet" }
                    } @else if !attention {
                        span.lvl.low { "ok" }
                    }
                }
            }
            td.nowrap data-label="Last poll" {
                @match &s.last_poll {
                    Some(t) => { (time_cell(t)) }
                    None => { span.muted { "not yet" } }
                }
            }
            td.nowrap data-label="Lag" { (lag_cell(s.lag_secs, s.newest_event.as_ref())) }
            td.num data-label="Events" { (s.events) }
            td.num data-label="Objects" { (s.objects) }
            td.num data-label="Messages" {
                @if s.backlog.is_none() && s.messages == 0 { span.muted { "—" } } @else { (s.messages) }
            }
            td.nowrap data-label="Errors" {
                @if s.errors == 0 {
                    span.muted { "none" }
                } @else {
                    strong.bad { (s.errors) }
                    @if let Some(at) = &s.last_error_at {
                        span.small.muted { " last " (time_cell(at)) }
                    }
                }
            }
            td.nowrap data-label="Queue backlog" {
                @match (s.backlog, s.in_flight) {
                    (None, None) => { span.muted { "—" } }
                    (waiting, in_flight) => {
                        (waiting.unwrap_or(0)) " waiting"
                        br;
                        span.muted { (in_flight.unwrap_or(0)) " in flight" }
                    }
                }
            }
        }
        @if let Some(e) = &s.last_error {
            tr.detail.attention[attention] {
                td colspan="9" data-label="Last error" {
                    span.small.muted.wide-only { "Last error: " }
                    span.small.mono { (e) }
                }
            }
        }
    }
}

/// One account and region of a source, marked when it went silent.
fn stream_row(st: &StreamStatus, now: DateTime<Utc>) -> Markup {
    html! {
        tr.attention[st.silent_since.is_some()] {
            td.mono data-label="Account" { (st.account) }
            td.nowrap data-label="Region" { (st.region) }
            td data-label="State" {
                @match &st.silent_since {
                    Some(since) => {
                        span.nowrap {
                            span.lvl.high { "silent" } " since "
                            time datetime=(since.to_rfc3339()) title=(when(since)) {
                                (short_time(since, now))
                            }
                        }
                        " "
                        a.small.nowrap href=(silent_alerts()) { "alert" }
                    }
                    None => { span.lvl.low { "delivering" } }
                }
            }
            td.num data-label="Objects" { (st.objects) }
            td.num data-label="Events" { (st.events) }
            td.nowrap data-label="Last delivery" { (time_cell(&st.last_delivery)) }
            td.nowrap data-label="Lag" { (lag_cell(st.lag_secs, st.newest_event.as_ref())) }
        }
    }
}

/// A lag in words, with the newest event's time as its title.
fn lag_cell(lag: Option<i64>, newest: Option<&DateTime<Utc>>) -> Markup {
    html! {
        @match newest {
            Some(t) => {
                span title={ "newest event " (when(t)) } { (lag_words(lag)) }
            }
            None => { span.muted title="No event read yet" { (lag_words(None)) } }
        }
    }
}

/// A time of today as `14:03Z`, of another day as `2026-11-20 14:03Z`.
fn short_time(t: &DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.date_naive() == now.date_naive() {
        t.format("%H:%MZ").to_string()
    } else {
        t.format("%Y-%m-%d %H:%MZ").to_string()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Duration;

    use super::*;
    use crate::sources::health::SourceHealth;

    #[test]
    fn lags_are_said_in_their_largest_unit() {
        assert_eq!(lag_words(None), "—");
        assert_eq!(lag_words(Some(0)), "0 s");
        assert_eq!(lag_words(Some(59)), "59 s");
        assert_eq!(lag_words(Some(60)), "1 min");
        assert_eq!(lag_words(Some(4 * 60 + 59)), "4 min");
        assert_eq!(lag_words(Some(3600)), "1 h");
        assert_eq!(lag_words(Some(2 * 3600 + 1799)), "2 h");
        assert_eq!(lag_words(Some(86_400 * 3)), "3 d");
        // An event stamped ahead of our clock is no lag.
        assert_eq!(lag_words(Some(-30)), "0 s");
    }

    #[test]
    fn silent_streams_and_recent_errors_need_attention() {
        let h = SourceHealth::default();
        let trail = h.add("org-trail".into(), "aws-s3-sqs", "https://q".into(), 60);
        let dir = h.add("inbox".into(), "directory", "/var/inbox".into(), 60);
        let now = Utc::now();
        assert!(!attention(&h.snapshot(), now).any(), "nothing read yet");
        for _ in 0..4 {
            h.object(trail, Some(("111122223333", "eu-west-1")), 5, Some(now));
        }
        h.object(trail, Some(("111122223333", "us-east-1")), 5, Some(now));
        h.error(dir, "<script>alert(1)</script> is not JSON".into());
        assert_eq!(
            attention(&h.snapshot(), now),
            Attention {
                silent: 0,
                failing: 1
            }
        );
        // An error of two days ago is history.
        assert_eq!(attention(&h.snapshot(), now + Duration::days(2)).failing, 0);
        let later = now + Duration::seconds(120);
        assert_eq!(h.newly_silent(later).len(), 1);
        let need = attention(&h.snapshot(), later);
        assert_eq!(
            need,
            Attention {
                silent: 1,
                failing: 1
            }
        );
        assert_eq!(
            need.text(),
            "1 stream silent, 1 source with errors in the last 24 hours"
        );

        let shown = health(&h.snapshot(), later).into_string();
        assert!(shown.contains("id=\"sources\" data-region"), "{shown}");
        assert!(
            shown.contains("Needs attention: 1 stream silent"),
            "{shown}"
        );
        assert!(
            shown.contains("/ui/alerts?rule=cloudsentinel-source-silent&amp;status=all"),
            "{shown}"
        );
        // The silent stream is marked, the other one delivers.
        assert_eq!(
            shown
                .matches("<span class=\"lvl high\">silent</span> since")
                .count(),
            1
        );
        assert!(shown.contains("delivering"), "{shown}");
        // Error text is data, escaped.
        assert!(
            shown.contains("&lt;script&gt;alert(1)&lt;/script&gt; is not JSON"),
            "{shown}"
        );
        assert!(!shown.contains("<script>"), "{shown}");
    }

    #[test]
    fn no_source_says_how_to_configure_one() {
        let shown = health(&[], Utc::now()).into_string();
        assert!(shown.contains("No log sources are configured"), "{shown}");
        assert!(shown.contains("docs/SOURCES.md"), "{shown}");
        assert!(shown.contains("[[sources]]"), "{shown}");
        assert!(!shown.contains("Needs attention"), "{shown}");
    }
}
