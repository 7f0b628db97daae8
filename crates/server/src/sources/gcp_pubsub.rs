//! GCP Cloud Audit Logs from a Pub/Sub pull subscription: a log sink publishes each log entry
//! as a message (its data is the LogEntry JSON). Messages are pulled, their entries decoded and
//! enriched by the shared stage and committed, and only then acknowledged; the ack deadline is
//! extended while they are processed. A crash before the acknowledgement gets them delivered
//! again, and their insert ids store them once. A message whose data is not a log entry is
//! logged with its message id, counted and acknowledged (it can never succeed); a failure that
//! may pass (the pipeline refusing) leaves the batch unacknowledged for redelivery.

use std::sync::Arc;
use std::time::Duration;

use cloudsentinel_cloud::gcp::{Received, Subscriber};
use cloudsentinel_core::{Event, Origin};
use cloudsentinel_detect::Stage;
use cloudsentinel_ingest::{Item, ReadOptions};

use crate::AppState;
use crate::config::GcpPubSubSource;

pub async fn run(
    state: AppState,
    index: usize,
    spec: GcpPubSubSource,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let sub = Arc::new(Subscriber::new(
        &spec.subscription,
        spec.endpoint.as_deref(),
        spec.credentials.clone(),
        Duration::from_secs(90),
    ));
    tracing::info!(source = %spec.name, subscription = %spec.subscription, "pulling GCP audit logs");
    let mut backoff = Duration::from_secs(1);
    loop {
        if *stop.borrow() {
            return;
        }
        state.sources.polled(index);
        let (s, max) = (Arc::clone(&sub), spec.max_messages);
        let pulled = tokio::select! {
            r = tokio::task::spawn_blocking(move || s.pull(max)) => r,
            _ = stop.changed() => return,
        };
        let messages = match pulled {
            Ok(Ok(m)) => {
                backoff = Duration::from_secs(1);
                m
            }
            Ok(Err(e)) => {
                failed(
                    &state,
                    index,
                    &spec,
                    format!("pulling {}: {e}", spec.subscription),
                );
                tokio::select! {
                    _ = tokio::time::sleep(backoff) => {}
                    _ = stop.changed() => return,
                }
                backoff = (backoff * 2).min(Duration::from_secs(60));
                continue;
            }
            Err(_) => return,
        };
        if messages.is_empty() {
            tokio::select! {
                _ = tokio::time::sleep(Duration::from_secs(spec.poll_secs)) => {}
                _ = stop.changed() => return,
            }
            continue;
        }
        let ack_ids: Vec<String> = messages.iter().map(|m| m.ack_id.clone()).collect();
        let keeper = {
            let (s, ids, secs) = (Arc::clone(&sub), ack_ids.clone(), spec.ack_deadline_secs);
            tokio::spawn(async move {
                loop {
                    let (s, ids) = (Arc::clone(&s), ids.clone());
                    let _ = tokio::task::spawn_blocking(move || s.modify_ack_deadline(&ids, secs))
                        .await;
                    tokio::time::sleep(Duration::from_secs(u64::from(secs / 2).max(1))).await;
                }
            })
        };
        let committed = process(&state, index, &spec, &messages).await;
        keeper.abort();
        if committed {
            let s = Arc::clone(&sub);
            match tokio::task::spawn_blocking(move || s.acknowledge(&ack_ids)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failed(
                    &state,
                    index,
                    &spec,
                    format!(
                        "acknowledging: {e} (the messages come again; their events are stored once)"
                    ),
                ),
                Err(_) => {}
            }
        }
    }
}

fn failed(state: &AppState, index: usize, spec: &GcpPubSubSource, what: String) {
    super::failed(state, index, &spec.name, what)
}

/// Decodes and commits a pulled batch; answers whether it may be acknowledged.
async fn process(
    state: &AppState,
    index: usize,
    spec: &GcpPubSubSource,
    messages: &[Received],
) -> bool {
    let (rules, net) = (Arc::clone(&state.rules), state.learning.net.clone());
    let batch = messages.to_vec();
    let subscription = spec.subscription.clone();
    let decoded = tokio::task::spawn_blocking(move || {
        let stage = Stage::new(&rules, &net);
        let mut events: Vec<Event> = Vec::new();
        let mut bad: Vec<(String, String)> = Vec::new();
        for m in &batch {
            let origin = Origin {
                source: "gcp-pubsub".into(),
                path: Some(format!("{subscription}#{}", m.message_id)),
                ..Origin::default()
            };
            let mut error = None;
            let before = events.len();
            stage.decode_bytes(
                &m.data,
                origin,
                ReadOptions::default(),
                &mut |item| match item {
                    Item::Event(e) => events.push(*e),
                    Item::Error(e) => {
                        error.get_or_insert(e.reason);
                    }
                    Item::Digest | Item::Insight => {}
                },
            );
            if let Some(reason) = error {
                bad.push((m.message_id.clone(), reason));
            } else if events.len() == before {
                bad.push((m.message_id.clone(), "no log entry in the message".into()));
            }
        }
        (events, bad)
    })
    .await;
    let Ok((events, bad)) = decoded else {
        return false;
    };
    for (id, reason) in bad {
        failed(
            state,
            index,
            spec,
            format!("message {id}: {reason}; acknowledged"),
        );
    }
    let n = events.len() as u64;
    let newest = events.iter().map(|e| e.time).max();
    let project = spec
        .subscription
        .split('/')
        .nth(1)
        .unwrap_or("")
        .to_string();
    let stream_account = events
        .first()
        .and_then(|e| e.account.clone())
        .unwrap_or(project);
    if let Err(e) = super::commit(state, events).await {
        failed(
            state,
            index,
            spec,
            format!("not committed: {e:#}; will come again"),
        );
        return false;
    }
    for _ in messages {
        state.sources.message(index);
    }
    state
        .sources
        .object(index, Some((&stream_account, "pubsub")), n, newest);
    true
}
