//! CloudTrail from S3 through SQS: the standard delivery (S3 object-created notifications to a
//! queue, directly, through SNS, or as EventBridge events).
//!
//! Each message names objects; each object is read, decoded and enriched by the shared stage and
//! handed to the pipeline, which answers once its events are committed. Only then is the message
//! deleted: a crash at any point leaves it in the queue, it comes back after its visibility
//! timeout, and the events it repeats are recognised by their event ids and stored once. While
//! an object is processed the message's visibility is extended. What cannot succeed however
//! often it is tried (a message that is no notification, an object that is not audit logs, an
//! object that no longer exists) is logged with its message id or bucket and key, counted, and
//! the message deleted; what may succeed later (throttling, a network error, a denied call, the
//! pipeline refusing) leaves the message for another try, and the queue's redrive policy moves
//! it to the dead-letter queue after its maximum receive count.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use cloudsentinel_cloud::aws::notification::{self, Notice, ObjectRef};
use cloudsentinel_cloud::aws::sqs::Message;
use cloudsentinel_cloud::aws::{Aws, AwsError};
use cloudsentinel_core::Origin;

use crate::AppState;
use crate::config::S3SqsSource;

/// The backlog is asked for at most this often.
const BACKLOG_EVERY: Duration = Duration::from_secs(30);

/// How handling a message ended.
enum Handled {
    /// Done (or never doable): delete the message.
    Done,
    /// Try again later: leave the message.
    Retry,
}

pub async fn run(
    state: AppState,
    index: usize,
    spec: S3SqsSource,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let aws = Arc::new(Aws::new(cloudsentinel_cloud::aws::Config {
        region: spec.region.clone(),
        endpoint_url: spec.endpoint_url.clone(),
        role_arn: spec.role_arn.clone(),
        external_id: spec.external_id.clone(),
        timeout: Duration::from_secs(u64::from(spec.wait_secs) + 30),
    }));
    tracing::info!(source = %spec.name, queue = %spec.queue_url, region = %spec.region, "reading CloudTrail notifications");
    let mut backoff = Duration::from_secs(1);
    let mut last_backlog: Option<std::time::Instant> = None;
    loop {
        if *stop.borrow() {
            return;
        }
        if last_backlog.is_none_or(|t| t.elapsed() >= BACKLOG_EVERY) {
            last_backlog = Some(std::time::Instant::now());
            let (a, q) = (Arc::clone(&aws), spec.queue_url.clone());
            match tokio::task::spawn_blocking(move || a.queue_backlog(&q)).await {
                Ok(Ok((waiting, in_flight))) => state.sources.backlog(index, waiting, in_flight),
                Ok(Err(e)) => tracing::debug!(source = %spec.name, error = %e, "queue backlog"),
                Err(_) => {}
            }
        }
        state.sources.polled(index);
        let (a, q) = (Arc::clone(&aws), spec.queue_url.clone());
        let (wait, visibility) = (spec.wait_secs, spec.visibility_secs);
        let receive =
            tokio::task::spawn_blocking(move || a.receive_messages(&q, 10, wait, visibility));
        let received = tokio::select! {
            r = receive => r,
            _ = stop.changed() => return,
        };
        let messages = match received {
            Ok(Ok(m)) => {
                backoff = Duration::from_secs(1);
                m
            }
            Ok(Err(e)) => {
                failed(
                    &state,
                    index,
                    &spec,
                    format!("receiving from the queue: {e}"),
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
        let handled = futures_util::future::join_all(
            messages
                .iter()
                .map(|m| handle(&state, index, &spec, &aws, m)),
        )
        .await;
        for (m, h) in messages.iter().zip(handled) {
            state.sources.message(index);
            if let Handled::Done = h {
                let (a, q, r) = (Arc::clone(&aws), spec.queue_url.clone(), m.receipt.clone());
                match tokio::task::spawn_blocking(move || a.delete_message(&q, &r)).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => failed(
                        &state,
                        index,
                        &spec,
                        format!(
                            "deleting message {}: {e} (it will be read again; its events are stored once)",
                            m.id
                        ),
                    ),
                    Err(_) => {}
                }
            }
        }
    }
}

/// Counts and logs a failure.
fn failed(state: &AppState, index: usize, spec: &S3SqsSource, what: String) {
    super::failed(state, index, &spec.name, what)
}

async fn handle(
    state: &AppState,
    index: usize,
    spec: &S3SqsSource,
    aws: &Arc<Aws>,
    m: &Message,
) -> Handled {
    let objects = match notification::parse(&m.body) {
        Ok(Notice::Objects(o)) => o,
        Ok(Notice::Nothing) => return Handled::Done,
        Err(reason) => {
            let shown: String = m.body.chars().take(200).collect();
            failed(
                state,
                index,
                spec,
                format!(
                    "message {}: {reason}; deleted (body starts {shown:?})",
                    m.id
                ),
            );
            return Handled::Done;
        }
    };
    // Keep the message hidden while its objects are read and committed.
    let keeper = {
        let (a, q, r) = (Arc::clone(aws), spec.queue_url.clone(), m.receipt.clone());
        let secs = spec.visibility_secs;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(u64::from(secs / 2).max(1))).await;
                let (a, q, r) = (Arc::clone(&a), q.clone(), r.clone());
                let _ =
                    tokio::task::spawn_blocking(move || a.change_visibility(&q, &r, secs)).await;
            }
        })
    };
    let mut outcome = Handled::Done;
    for o in objects {
        if notification::is_digest(&o.key) {
            continue;
        }
        if let Handled::Retry = object(state, index, spec, aws, &o).await {
            outcome = Handled::Retry;
            break;
        }
    }
    keeper.abort();
    outcome
}

/// Reads, decodes and commits one object.
async fn object(
    state: &AppState,
    index: usize,
    spec: &S3SqsSource,
    aws: &Arc<Aws>,
    o: &ObjectRef,
) -> Handled {
    let at = format!("s3://{}/{}", o.bucket, o.key);
    let (a, bucket, key, max) = (
        Arc::clone(aws),
        o.bucket.clone(),
        o.key.clone(),
        spec.max_object_bytes,
    );
    let got = tokio::task::spawn_blocking(move || a.get_object(&bucket, &key, max)).await;
    let bytes = match got {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            let permanent = e.code() == Some("NoSuchKey");
            failed(
                state,
                index,
                spec,
                format!(
                    "{at}: {e}{}",
                    if permanent {
                        "; skipped"
                    } else {
                        "; will be tried again"
                    }
                ),
            );
            return if permanent || matches!(e, AwsError::Answer { .. }) {
                Handled::Done
            } else {
                Handled::Retry
            };
        }
        Err(_) => return Handled::Retry,
    };
    let origin = Origin {
        source: "s3".into(),
        path: Some(at.clone()),
        ..Origin::default()
    };
    let Some(decoded) = super::decode(state, bytes, origin).await else {
        return Handled::Retry;
    };
    if let Some(report) = decoded.error_report(&at) {
        failed(state, index, spec, report);
    }
    let n = decoded.events.len() as u64;
    let newest: Option<DateTime<Utc>> = decoded.events.iter().map(|e| e.time).max();
    if let Err(e) = super::commit(state, decoded.events).await {
        failed(
            state,
            index,
            spec,
            format!("{at}: not committed: {e:#}; will be tried again"),
        );
        return Handled::Retry;
    }
    state
        .sources
        .object(index, notification::account_and_region(&o.key), n, newest);
    tracing::debug!(source = %spec.name, object = %at, events = n, "read object");
    Handled::Done
}
