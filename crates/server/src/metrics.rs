//! Counters and a latency histogram, rendered in the Prometheus text format at `/metrics`.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Upper bounds (seconds) of the pipeline latency histogram.
const BUCKETS: [f64; 12] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

#[derive(Default)]
pub struct Metrics {
    pub events_in: [AtomicU64; 3],
    pub duplicates: AtomicU64,
    pub alerts_new: AtomicU64,
    pub alerts_updated: AtomicU64,
    pub signals_suppressed: AtomicU64,
    /// Events the anomaly model scored, anomalies it found, alerts closed by the feedback model.
    pub events_scored: AtomicU64,
    pub anomalies: AtomicU64,
    pub alerts_auto_closed: AtomicU64,
    pub incidents_new: AtomicU64,
    pub commits: AtomicU64,
    /// Batches handed to the bus and confirmed by the broker (ingest).
    pub bus_published: AtomicU64,
    /// Batches taken from the bus and committed (detect).
    pub bus_committed: AtomicU64,
    /// Batches taken from the bus that went to the dead-letter queue.
    pub bus_dead: AtomicU64,
    /// Events accepted but not yet committed.
    pub queued_events: AtomicI64,
    latency: Mutex<Histogram>,
    /// Requests or records refused or failed, by kind.
    errors: Mutex<BTreeMap<&'static str, u64>>,
}

#[derive(Default)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    sum: f64,
    count: u64,
}

impl Metrics {
    pub fn provider_index(provider: &str) -> usize {
        match provider {
            "aws" => 0,
            "azure" => 1,
            _ => 2,
        }
    }

    pub fn observe_latency(&self, secs: f64) {
        let mut h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
        for (i, b) in BUCKETS.iter().enumerate() {
            if secs <= *b {
                h.counts[i] += 1;
            }
        }
        h.sum += secs;
        h.count += 1;
    }

    pub fn error(&self, kind: &'static str) {
        *self
            .errors
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(kind)
            .or_default() += 1;
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        let c = |a: &AtomicU64| a.load(Ordering::Relaxed);
        s.push_str("# HELP cloudsentinel_events_ingested_total Events committed, by provider.\n");
        s.push_str("# TYPE cloudsentinel_events_ingested_total counter\n");
        for (i, p) in ["aws", "azure", "gcp"].iter().enumerate() {
            let _ = writeln!(
                s,
                "cloudsentinel_events_ingested_total{{provider=\"{p}\"}} {}",
                c(&self.events_in[i])
            );
        }
        for (name, help, v) in [
            (
                "cloudsentinel_events_duplicate_total",
                "Events ignored because their id was already stored.",
                c(&self.duplicates),
            ),
            (
                "cloudsentinel_alerts_created_total",
                "Alerts raised.",
                c(&self.alerts_new),
            ),
            (
                "cloudsentinel_alerts_updated_total",
                "Signals folded into an open alert.",
                c(&self.alerts_updated),
            ),
            (
                "cloudsentinel_signals_suppressed_total",
                "Signals dropped by a suppression.",
                c(&self.signals_suppressed),
            ),
            (
                "cloudsentinel_events_scored_total",
                "Events the active anomaly model scored (principals past their learning period).",
                c(&self.events_scored),
            ),
            (
                "cloudsentinel_anomalies_total",
                "Events scored at or above the anomaly threshold.",
                c(&self.anomalies),
            ),
            (
                "cloudsentinel_alerts_auto_closed_total",
                "New alerts closed because the feedback model scored them below detection.auto_close_below.",
                c(&self.alerts_auto_closed),
            ),
            (
                "cloudsentinel_incidents_created_total",
                "Incidents opened.",
                c(&self.incidents_new),
            ),
            (
                "cloudsentinel_commits_total",
                "Pipeline transactions committed.",
                c(&self.commits),
            ),
            (
                "cloudsentinel_bus_published_total",
                "Batches handed to the bus and confirmed by the broker.",
                c(&self.bus_published),
            ),
            (
                "cloudsentinel_bus_committed_total",
                "Batches taken from the bus and committed.",
                c(&self.bus_committed),
            ),
            (
                "cloudsentinel_bus_dead_letters_total",
                "Batches from the bus that could not be processed, sent to the dead-letter queue.",
                c(&self.bus_dead),
            ),
        ] {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        }
        let _ = writeln!(
            s,
            "# HELP cloudsentinel_queue_events Events accepted and waiting to be committed.\n\
             # TYPE cloudsentinel_queue_events gauge\ncloudsentinel_queue_events {}",
            self.queued_events.load(Ordering::Relaxed).max(0)
        );
        {
            let h = self.latency.lock().unwrap_or_else(|e| e.into_inner());
            let name = "cloudsentinel_pipeline_latency_seconds";
            let _ = writeln!(
                s,
                "# HELP {name} From receiving an ingest request to its events and alerts being committed.\n# TYPE {name} histogram"
            );
            for (i, b) in BUCKETS.iter().enumerate() {
                let _ = writeln!(s, "{name}_bucket{{le=\"{b}\"}} {}", h.counts[i]);
            }
            let _ = writeln!(s, "{name}_bucket{{le=\"+Inf\"}} {}", h.count);
            let _ = writeln!(s, "{name}_sum {}\n{name}_count {}", h.sum, h.count);
        }
        let errors = self.errors.lock().unwrap_or_else(|e| e.into_inner());
        s.push_str("# HELP cloudsentinel_errors_total Requests refused and failures, by kind.\n");
        s.push_str("# TYPE cloudsentinel_errors_total counter\n");
        for kind in [
            "malformed",
            "too_large",
            "saturated",
            "unauthorized",
            "forbidden",
            "store",
            "source",
        ] {
            let _ = writeln!(
                s,
                "cloudsentinel_errors_total{{kind=\"{kind}\"}} {}",
                errors.get(kind).copied().unwrap_or(0)
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counters_and_cumulative_buckets() {
        let m = Metrics::default();
        m.events_in[0].fetch_add(3, Ordering::Relaxed);
        m.observe_latency(0.02);
        m.observe_latency(3.0);
        m.error("saturated");
        let text = m.render();
        assert!(text.contains("cloudsentinel_events_ingested_total{provider=\"aws\"} 3"));
        assert!(text.contains("cloudsentinel_pipeline_latency_seconds_bucket{le=\"0.025\"} 1"));
        assert!(text.contains("cloudsentinel_pipeline_latency_seconds_bucket{le=\"5\"} 2"));
        assert!(text.contains("cloudsentinel_pipeline_latency_seconds_count 2"));
        assert!(text.contains("cloudsentinel_errors_total{kind=\"saturated\"} 1"));
    }
}
