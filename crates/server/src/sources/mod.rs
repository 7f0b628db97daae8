//! Where logs come from besides HTTP ingest: a watched directory ([`directory`]), CloudTrail
//! pulled from S3 through SQS ([`s3_sqs`]), Azure's exports read from Blob Storage
//! ([`azure_blob`]) and GCP audit logs pulled from Pub/Sub ([`gcp_pubsub`]). Every source decodes through the shared stage
//! (`cloudsentinel_detect::Stage`), hands its events to the pipeline with
//! [`crate::ingest_events`] (which waits for room rather than refusing), and reports how it is
//! doing to [`health::SourceHealth`]. A watcher raises "Log source went silent" when an account
//! and region that delivered regularly stops ([`watch_silence`]).

pub mod azure_blob;
pub mod directory;
pub mod gcp_pubsub;
pub mod health;
pub mod s3_sqs;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use cloudsentinel_alert::Context;
use cloudsentinel_core::{Level, Signal, SignalKind};

use crate::AppState;
use crate::config::SourceSpec;

/// Counts and logs a failure of source `index` (the details already in `what`).
pub(crate) fn failed(state: &AppState, index: usize, name: &str, what: String) {
    state.metrics.error("source");
    tracing::warn!(source = %name, "{what}");
    state.sources.error(index, what);
}

/// An object's events, as the shared stage decoded and enriched them.
pub(crate) struct Decoded {
    pub events: Vec<cloudsentinel_core::Event>,
    /// Records that could not be read, and where the first one was.
    pub errors: u64,
    pub first_error: Option<String>,
}

impl Decoded {
    /// The failure to report, when records could not be read (`at` names the object).
    pub fn error_report(&self, at: &str) -> Option<String> {
        (self.errors > 0).then(|| {
            format!(
                "{at}: {} records could not be read, e.g. {}",
                self.errors,
                self.first_error.as_deref().unwrap_or("")
            )
        })
    }
}

/// Decodes an object (an S3 object, new lines of a blob) on a blocking thread through the
/// shared stage; `None` when that thread failed.
pub(crate) async fn decode(
    state: &AppState,
    bytes: Vec<u8>,
    origin: cloudsentinel_core::Origin,
) -> Option<Decoded> {
    let (rules, net) = (Arc::clone(&state.rules), state.learning.net.clone());
    tokio::task::spawn_blocking(move || {
        let stage = cloudsentinel_detect::Stage::new(&rules, &net);
        let mut out = Decoded {
            events: Vec::new(),
            errors: 0,
            first_error: None,
        };
        stage.decode_bytes(
            &bytes,
            origin,
            cloudsentinel_ingest::ReadOptions::default(),
            &mut |item| match item {
                cloudsentinel_ingest::Item::Event(e) => out.events.push(*e),
                cloudsentinel_ingest::Item::Error(e) => {
                    out.errors += 1;
                    out.first_error.get_or_insert_with(|| where_in(&e));
                }
                cloudsentinel_ingest::Item::Digest | cloudsentinel_ingest::Item::Insight => {}
            },
        );
        out
    })
    .await
    .ok()
}

/// Hands events to the pipeline in batches of [`CHUNK`], each waiting for its commit.
pub(crate) async fn commit(
    state: &AppState,
    mut events: Vec<cloudsentinel_core::Event>,
) -> anyhow::Result<()> {
    while !events.is_empty() {
        let rest = events.split_off(events.len().min(CHUNK));
        let chunk = std::mem::replace(&mut events, rest);
        crate::ingest_events(state, chunk).await?;
    }
    Ok(())
}

/// Where in an object a record could not be read, and why (the object itself is named beside).
pub(crate) fn where_in(e: &cloudsentinel_ingest::DecodeError) -> String {
    match (e.origin.line, e.origin.record_index) {
        (Some(line), _) => format!("line {line}: {}", e.reason),
        (None, Some(i)) => format!("record {i}: {}", e.reason),
        (None, None) => e.reason.clone(),
    }
}

/// Events per batch handed to the pipeline.
pub(crate) const CHUNK: usize = 5000;

/// The rule id of the finding about a silent source (a built-in finding, not a Sigma rule).
pub const SOURCE_SILENT_RULE: &str = "cloudsentinel-source-silent";

/// Starts the configured sources, and the silence watcher when there are any; each runs until
/// `stop` turns true.
pub fn spawn(
    state: &AppState,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut tasks: Vec<_> = state
        .config
        .sources
        .iter()
        .map(|spec| {
            let (state, stop) = (Arc::clone(state), stop.clone());
            let silence = spec.silence_secs() as i64;
            match spec.clone() {
                SourceSpec::Directory(d) => {
                    let i = state.sources.add(
                        d.name.clone(),
                        "directory",
                        d.path.display().to_string(),
                        silence,
                    );
                    tokio::spawn(directory::watch_dir(state, i, d, stop))
                }
                SourceSpec::S3Sqs(s) => {
                    let i = state.sources.add(
                        s.name.clone(),
                        "aws-s3-sqs",
                        s.queue_url.clone(),
                        silence,
                    );
                    tokio::spawn(s3_sqs::run(state, i, s, stop))
                }
                SourceSpec::AzureBlob(a) => {
                    let target = format!("{} ({})", a.account, a.containers.join(", "));
                    let i = state
                        .sources
                        .add(a.name.clone(), "azure-blob", target, silence);
                    tokio::spawn(azure_blob::run(state, i, a, stop))
                }
                SourceSpec::GcpPubSub(g) => {
                    let i = state.sources.add(
                        g.name.clone(),
                        "gcp-pubsub",
                        g.subscription.clone(),
                        silence,
                    );
                    tokio::spawn(gcp_pubsub::run(state, i, g, stop))
                }
            }
        })
        .collect();
    if let Some(shortest) = state
        .config
        .sources
        .iter()
        .map(SourceSpec::silence_secs)
        .min()
    {
        // Checked four times per shortest silence, at most every minute.
        let every = Duration::from_secs((shortest / 4).clamp(1, 60));
        tasks.push(tokio::spawn(watch_silence(
            Arc::clone(state),
            every,
            stop.clone(),
        )));
    }
    tasks
}

/// Every `every`, raises a finding for each account and region that stopped delivering.
pub async fn watch_silence(
    state: AppState,
    every: Duration,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let mut pending: Vec<(Signal, Context)> = Vec::new();
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => return,
        }
        let now = Utc::now();
        for s in state.sources.newly_silent(now) {
            tracing::warn!(source = %s.source, account = %s.account, region = %s.region,
                last_delivery = %s.last_delivery, "log source went silent");
            pending.push(silence_signal(&s, now));
        }
        let Some(submitter) = state.submitter.as_ref() else {
            return;
        };
        if !pending.is_empty() {
            match submitter.signals(std::mem::take(&mut pending)) {
                Ok(()) => {}
                Err(crate::pipeline::SubmitError::Saturated) => {
                    // Kept for the next round.
                    tracing::debug!("pipeline full: the silence findings wait");
                }
                Err(crate::pipeline::SubmitError::Stopped) => return,
            }
        }
    }
}

/// The finding: who stopped, since when, and what it usually does.
fn silence_signal(s: &health::Silence, now: chrono::DateTime<Utc>) -> (Signal, Context) {
    let entity = format!("cloudtrail:{}/{}", s.account, s.region);
    let minutes = |secs: i64| ((secs + 59) / 60).max(1);
    let signal = Signal {
        kind: SignalKind::Rule,
        rule_id: SOURCE_SILENT_RULE.into(),
        title: "Log source went silent".into(),
        level: Level::Medium,
        techniques: vec!["T1562.008".into()],
        tactics: vec!["defense-evasion".into()],
        entity: entity.clone(),
        account: Some(s.account.clone()),
        first_seen: s.last_delivery,
        last_seen: now,
        event_ids: Vec::new(),
        explanation: format!(
            "source {}: no log file from account {} in {} for {} min (since {}); before that one came at least every {} min. \
             A stopped or deleted trail, a changed bucket policy or notification, or a broken pipeline: \
             check `aws cloudtrail get-trail-status` for the account and region, the bucket's notification and the queue.",
            s.source,
            s.account,
            s.region,
            minutes((now - s.last_delivery).num_seconds()),
            s.last_delivery.format("%Y-%m-%d %H:%M UTC"),
            minutes(s.usual_gap_secs),
        ),
    };
    let context = Context {
        access_key: None,
        source_ip: None,
        principal: entity,
        created: Vec::new(),
        name: None,
    };
    (signal, context)
}
