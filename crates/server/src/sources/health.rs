//! How each source is doing: what it read, when its newest event happened (lag), what failed,
//! and per account and region for a trail that delivers for many. Kept in memory (a restart
//! starts it again), shown by `GET /api/v1/sources`, the dashboard and `/metrics`.

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The health of every configured source, in configuration order.
#[derive(Default)]
pub struct SourceHealth {
    sources: Mutex<Vec<SourceStatus>>,
}

/// One source's counters.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct SourceStatus {
    /// The source's name (`name` in its configuration, else its kind and position).
    pub name: String,
    /// `directory` or `aws-s3-sqs`.
    pub kind: String,
    /// What it reads: a directory or a queue URL.
    pub target: String,
    /// When it last looked for new input.
    pub last_poll: Option<DateTime<Utc>>,
    /// Notifications (queue messages) handled.
    pub messages: u64,
    /// Files or objects read.
    pub objects: u64,
    /// Events handed to the pipeline (duplicates of stored events included).
    pub events: u64,
    /// Inputs that failed: unreadable objects, records that are not audit events, messages that
    /// are no notification, denied calls.
    pub errors: u64,
    pub last_error: Option<String>,
    pub last_error_at: Option<DateTime<Utc>>,
    /// Messages waiting in the queue, and received but not yet deleted.
    pub backlog: Option<u64>,
    pub in_flight: Option<u64>,
    /// The newest event time read, over all streams.
    pub newest_event: Option<DateTime<Utc>>,
    /// Seconds from the newest event to now, when it last read one.
    pub lag_secs: Option<i64>,
    /// Per account and region (CloudTrail keys name both).
    pub streams: Vec<StreamStatus>,
    /// A stream is silent after this long without a delivery at least.
    #[serde(skip)]
    silence_after: i64,
}

/// One account and region of a source.
#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct StreamStatus {
    pub account: String,
    pub region: String,
    pub objects: u64,
    pub events: u64,
    /// When the last object of this stream was read.
    pub last_delivery: DateTime<Utc>,
    pub newest_event: Option<DateTime<Utc>>,
    pub lag_secs: Option<i64>,
    /// Since when no file came for longer than its usual gap, while that lasts.
    pub silent_since: Option<DateTime<Utc>>,
    /// The last gaps between deliveries, in seconds.
    #[serde(skip)]
    gaps: VecDeque<i64>,
}

/// Gaps between deliveries remembered per stream.
const GAPS_KEPT: usize = 20;

/// Deliveries seen before a stream's usual gap is trusted.
const GAPS_NEEDED: usize = 3;

/// A stream that stopped delivering.
#[derive(Debug, Clone, PartialEq)]
pub struct Silence {
    pub source: String,
    pub account: String,
    pub region: String,
    pub last_delivery: DateTime<Utc>,
    /// The longest of its recent gaps between deliveries, in seconds.
    pub usual_gap_secs: i64,
}

impl SourceHealth {
    /// Registers a source; answers its index. A stream of it is silent after `silence_after`
    /// seconds without a delivery at least (and three times its usual gap).
    pub fn add(&self, name: String, kind: &str, target: String, silence_after: i64) -> usize {
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        s.push(SourceStatus {
            name,
            kind: kind.to_string(),
            target,
            last_poll: None,
            messages: 0,
            objects: 0,
            events: 0,
            errors: 0,
            last_error: None,
            last_error_at: None,
            backlog: None,
            in_flight: None,
            newest_event: None,
            lag_secs: None,
            streams: Vec::new(),
            silence_after,
        });
        s.len() - 1
    }

    fn with(&self, i: usize, f: impl FnOnce(&mut SourceStatus)) {
        let mut s = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(st) = s.get_mut(i) {
            f(st);
        }
    }

    pub fn polled(&self, i: usize) {
        self.with(i, |s| s.last_poll = Some(Utc::now()));
    }

    pub fn message(&self, i: usize) {
        self.with(i, |s| s.messages += 1);
    }

    pub fn backlog(&self, i: usize, waiting: u64, in_flight: u64) {
        self.with(i, |s| {
            s.backlog = Some(waiting);
            s.in_flight = Some(in_flight);
        });
    }

    /// An object (or file) read: its stream, its event count and its newest event time.
    pub fn object(
        &self,
        i: usize,
        stream: Option<(&str, &str)>,
        events: u64,
        newest: Option<DateTime<Utc>>,
    ) {
        let now = Utc::now();
        self.with(i, |s| {
            s.objects += 1;
            s.events += events;
            s.newest_event = s.newest_event.max(newest);
            if let Some((account, region)) = stream {
                let at = s
                    .streams
                    .iter()
                    .position(|x| x.account == account && x.region == region);
                let st = match at {
                    Some(at) => &mut s.streams[at],
                    None => {
                        s.streams.push(StreamStatus {
                            account: account.to_string(),
                            region: region.to_string(),
                            objects: 0,
                            events: 0,
                            last_delivery: now,
                            newest_event: None,
                            lag_secs: None,
                            silent_since: None,
                            gaps: VecDeque::new(),
                        });
                        s.streams
                            .sort_by(|a, b| (&a.account, &a.region).cmp(&(&b.account, &b.region)));
                        let at = s
                            .streams
                            .iter()
                            .position(|x| x.account == account && x.region == region)
                            .expect("just added");
                        &mut s.streams[at]
                    }
                };
                if st.objects > 0 {
                    if st.gaps.len() == GAPS_KEPT {
                        st.gaps.pop_front();
                    }
                    st.gaps.push_back((now - st.last_delivery).num_seconds());
                }
                if st.silent_since.take().is_some() {
                    tracing::info!(source = %s.name, account = %st.account, region = %st.region, "the stream delivers again");
                }
                st.objects += 1;
                st.events += events;
                st.last_delivery = now;
                st.newest_event = st.newest_event.max(newest);
            }
        });
    }

    /// A failure, logged by the caller with its details.
    pub fn error(&self, i: usize, what: String) {
        self.with(i, |s| {
            s.errors += 1;
            s.last_error = Some(what);
            s.last_error_at = Some(Utc::now());
        });
    }

    /// The streams that went silent since the last check: no delivery for three times their
    /// longest recent gap and at least their source's `silence_after`. Each is reported once,
    /// until it delivers again.
    pub fn newly_silent(&self, now: DateTime<Utc>) -> Vec<Silence> {
        let mut out = Vec::new();
        let mut sources = self.sources.lock().unwrap_or_else(|e| e.into_inner());
        for s in sources.iter_mut() {
            for st in &mut s.streams {
                if st.silent_since.is_some() || st.gaps.len() < GAPS_NEEDED {
                    continue;
                }
                let usual = st.gaps.iter().copied().max().unwrap_or(0);
                let quiet = (now - st.last_delivery).num_seconds();
                if quiet > (3 * usual).max(s.silence_after) {
                    st.silent_since = Some(now);
                    out.push(Silence {
                        source: s.name.clone(),
                        account: st.account.clone(),
                        region: st.region.clone(),
                        last_delivery: st.last_delivery,
                        usual_gap_secs: usual,
                    });
                }
            }
        }
        out
    }

    /// Every source as it stands, lags computed now.
    pub fn snapshot(&self) -> Vec<SourceStatus> {
        let now = Utc::now();
        let mut out = self
            .sources
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        for s in &mut out {
            s.lag_secs = s.newest_event.map(|t| (now - t).num_seconds());
            for st in &mut s.streams {
                st.lag_secs = st.newest_event.map(|t| (now - t).num_seconds());
            }
        }
        out
    }

    /// Prometheus lines: events, objects, errors, lag and backlog per source.
    pub fn render_metrics(&self, out: &mut String) {
        let sources = self.snapshot();
        if sources.is_empty() {
            return;
        }
        let label = |s: &SourceStatus| s.name.replace(['\\', '"', '\n'], "_");
        for (metric, kind, help, value) in [
            (
                "cloudsentinel_source_events_total",
                "counter",
                "Events a source handed to the pipeline",
                (|s: &SourceStatus| Some(s.events as f64)) as fn(&SourceStatus) -> Option<f64>,
            ),
            (
                "cloudsentinel_source_objects_total",
                "counter",
                "Files or objects a source read",
                |s| Some(s.objects as f64),
            ),
            (
                "cloudsentinel_source_errors_total",
                "counter",
                "Inputs a source could not read",
                |s| Some(s.errors as f64),
            ),
            (
                "cloudsentinel_source_lag_seconds",
                "gauge",
                "Seconds from a source's newest event to now",
                |s| s.lag_secs.map(|l| l as f64),
            ),
            (
                "cloudsentinel_source_backlog_messages",
                "gauge",
                "Messages waiting in a source's queue",
                |s| s.backlog.map(|b| b as f64),
            ),
        ] {
            let _ = writeln!(out, "# HELP {metric} {help}\n# TYPE {metric} {kind}");
            for s in &sources {
                if let Some(v) = value(s) {
                    let _ = writeln!(out, "{metric}{{source=\"{}\"}} {v}", label(s));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stream_is_silent_after_three_usual_gaps_and_once() {
        let h = SourceHealth::default();
        let i = h.add("trail".into(), "aws-s3-sqs", "q".into(), 60);
        for _ in 0..4 {
            h.object(i, Some(("111122223333", "eu-west-1")), 10, None);
        }
        // Deliveries a moment apart: the floor of 60 s decides.
        let now = Utc::now();
        assert!(
            h.newly_silent(now + chrono::Duration::seconds(30))
                .is_empty()
        );
        let silent = h.newly_silent(now + chrono::Duration::seconds(61));
        assert_eq!(silent.len(), 1);
        assert_eq!(
            (silent[0].account.as_str(), silent[0].region.as_str()),
            ("111122223333", "eu-west-1")
        );
        assert!(
            h.newly_silent(now + chrono::Duration::seconds(600))
                .is_empty(),
            "reported once"
        );
        assert!(h.snapshot()[0].streams[0].silent_since.is_some());
        // A delivery ends the silence.
        h.object(i, Some(("111122223333", "eu-west-1")), 10, None);
        assert!(h.snapshot()[0].streams[0].silent_since.is_none());
        // A stream with too little history is never called silent.
        h.object(i, Some(("111122223333", "us-east-1")), 1, None);
        assert!(
            h.newly_silent(now + chrono::Duration::days(1))
                .iter()
                .all(|s| s.region != "us-east-1")
        );
    }
}
