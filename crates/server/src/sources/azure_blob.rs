//! Azure diagnostic-settings exports in a storage account: the Activity Log
//! (`insights-activity-logs`) and Entra ID sign-in and audit logs (`insights-logs-signinlogs`,
//! `insights-logs-auditlogs`), as hourly JSON Lines append blobs
//! (`resourceId=/SUBSCRIPTIONS/<id>/y=2026/m=11/d=20/h=10/m=00/PT1H.json`, `tenantId=<id>/...`)
//! that keep growing through their hour.
//!
//! Every poll lists today's and yesterday's blobs under each export root (on the first poll, the
//! last `lookback_hours`), reads each blob from where it was last read up to its last complete
//! line, commits those events, and only then records the new position (in the store's state, so
//! it survives a restart). A crash between the commit and the record reads the lines again, and
//! their event ids store them once.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use cloudsentinel_cloud::azure::{BlobClient, BlobItem, hour_of};
use cloudsentinel_core::Origin;

use crate::config::AzureBlobSource;
use crate::{AppState, blocking};

/// Export roots (the paths above `y=`) are looked for again this often (containers without one,
/// on every poll).
const ROOTS_EVERY: Duration = Duration::from_secs(600);

/// Largest read of one blob in one poll.
const MAX_READ: u64 = 256 * 1024 * 1024;

pub async fn run(
    state: AppState,
    index: usize,
    spec: AzureBlobSource,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let client = Arc::new(BlobClient::new(
        &spec.account,
        spec.endpoint.as_deref(),
        spec.auth.clone(),
        Duration::from_secs(120),
    ));
    tracing::info!(source = %spec.name, account = %spec.account, containers = ?spec.containers, "reading Azure exports");
    let mut roots: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut roots_found: Option<Instant> = None;
    let mut first = true;
    loop {
        state.sources.polled(index);
        // A container with no export yet is looked at on every poll, the others every ten
        // minutes (a new subscription or tenant exporting is rare).
        let some_empty = spec
            .containers
            .iter()
            .any(|c| roots.get(c).is_none_or(Vec::is_empty));
        if some_empty || roots_found.is_none_or(|t| t.elapsed() >= ROOTS_EVERY) {
            match find_roots(&client, &spec.containers).await {
                Ok(r) => {
                    roots = r;
                    roots_found = Some(Instant::now());
                }
                Err(e) => failed(&state, index, &spec, format!("listing the containers: {e}")),
            }
        }
        let now = Utc::now();
        let since = if first {
            now - chrono::Duration::hours(spec.lookback_hours as i64)
        } else {
            now - chrono::Duration::days(1)
        };
        let mut done = true;
        for (container, prefixes) in &roots {
            for root in prefixes {
                if *stop.borrow() {
                    return;
                }
                if !poll_root(&state, index, &spec, &client, container, root, since, first).await {
                    done = false;
                }
            }
        }
        first = first && !done;
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(spec.poll_secs)) => {}
            _ = stop.changed() => return,
        }
    }
}

/// Counts and logs a failure.
fn failed(state: &AppState, index: usize, spec: &AzureBlobSource, what: String) {
    super::failed(state, index, &spec.name, what)
}

/// The export roots of each container: the paths down to the level whose folders are `y=YYYY`.
async fn find_roots(
    client: &Arc<BlobClient>,
    containers: &[String],
) -> Result<BTreeMap<String, Vec<String>>, cloudsentinel_cloud::azure::AzureError> {
    let client = Arc::clone(client);
    let containers = containers.to_vec();
    tokio::task::spawn_blocking(move || {
        let mut out = BTreeMap::new();
        for c in containers {
            let mut roots = BTreeSet::new();
            let mut todo = vec![(String::new(), 0usize)];
            while let Some((prefix, depth)) = todo.pop() {
                let mut marker = None;
                loop {
                    let page = match client.list(&c, &prefix, Some("/"), marker.as_deref()) {
                        Ok(p) => p,
                        // A container that does not exist (yet): nothing exported to it.
                        Err(cloudsentinel_cloud::azure::AzureError::Api {
                            status: 404, ..
                        }) => {
                            break;
                        }
                        Err(e) => return Err(e),
                    };
                    for p in page.prefixes {
                        let segment = p.trim_end_matches('/').rsplit('/').next().unwrap_or("");
                        if segment.starts_with("y=") {
                            roots.insert(prefix.clone());
                        } else if depth < 8 {
                            todo.push((p, depth + 1));
                        }
                    }
                    match page.next {
                        Some(m) => marker = Some(m),
                        None => break,
                    }
                }
            }
            out.insert(c, roots.into_iter().collect());
        }
        Ok(out)
    })
    .await
    .unwrap_or_else(|e| {
        Err(cloudsentinel_cloud::azure::AzureError::Transport {
            operation: "List Blobs",
            message: e.to_string(),
        })
    })
}

/// The stream a root belongs to: its subscription or tenant.
fn stream_of(root: &str) -> String {
    root.trim_end_matches('/')
        .rsplit('/')
        .next()
        .map(|s| s.trim_start_matches("tenantId=").to_string())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| root.to_string())
}

/// The store key of a blob's position.
fn position_key(spec: &AzureBlobSource, container: &str, blob: &str) -> String {
    format!(
        "source.azure-blob.{}.{}/{container}/{blob}",
        spec.name, spec.account
    )
}

/// Reads what is new in one root's blobs of the days since `since`; answers false when
/// something failed (the next poll tries again).
#[allow(clippy::too_many_arguments)] // one poll's context
async fn poll_root(
    state: &AppState,
    index: usize,
    spec: &AzureBlobSource,
    client: &Arc<BlobClient>,
    container: &str,
    root: &str,
    since: DateTime<Utc>,
    first: bool,
) -> bool {
    let mut day = since.date_naive();
    let mut blobs: Vec<BlobItem> = Vec::new();
    while day <= Utc::now().date_naive() {
        let prefix = format!("{root}{}", day.format("y=%Y/m=%m/d=%d/"));
        let (c, cont) = (Arc::clone(client), container.to_string());
        match tokio::task::spawn_blocking(move || c.list_all(&cont, &prefix)).await {
            Ok(Ok(b)) => blobs.extend(b),
            Ok(Err(e)) => {
                failed(
                    state,
                    index,
                    spec,
                    format!("listing {container}/{root}: {e}"),
                );
                return false;
            }
            Err(_) => return false,
        }
        day = day.succ_opt().expect("a next day");
    }
    blobs.sort_by_key(|b| (hour_of(&b.name), b.name.clone()));
    let mut ok = true;
    for blob in blobs {
        let key = position_key(spec, container, &blob.name);
        let k2 = key.clone();
        let stored = blocking(state, move |s| s.get_state(&k2)).await;
        let mut position: u64 = match stored {
            Ok(v) => v
                .and_then(|v| String::from_utf8(v).ok())
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
            Err(e) => {
                failed(state, index, spec, format!("reading a position: {e:?}"));
                return false;
            }
        };
        // On the first look, blobs of hours before the lookback are left alone.
        if first
            && position == 0
            && hour_of(&blob.name).is_some_and(|h| h + chrono::Duration::hours(1) < since)
        {
            continue;
        }
        while blob.size > position {
            match read_more(state, index, spec, client, container, &blob, position).await {
                Some(read) if read > 0 => {
                    position += read;
                    let (k, v) = (key.clone(), position.to_string());
                    if let Err(e) = blocking(state, move |s| s.put_state(&k, v.as_bytes())).await {
                        failed(state, index, spec, format!("recording a position: {e:?}"));
                        return false;
                    }
                }
                Some(_) => break, // no complete line yet
                None => {
                    ok = false;
                    break;
                }
            }
        }
    }
    ok
}

/// Reads a blob from `position`, commits the complete lines' events, and answers how many bytes
/// they took (`None` on a failure).
#[allow(clippy::too_many_arguments)] // one read's context
async fn read_more(
    state: &AppState,
    index: usize,
    spec: &AzureBlobSource,
    client: &Arc<BlobClient>,
    container: &str,
    blob: &BlobItem,
    position: u64,
) -> Option<u64> {
    let at = format!("azure://{}/{container}/{}", spec.account, blob.name);
    let (c, cont, name) = (Arc::clone(client), container.to_string(), blob.name.clone());
    let want = (blob.size - position).min(MAX_READ);
    let bytes = match tokio::task::spawn_blocking(move || c.read_from(&cont, &name, position, want))
        .await
    {
        Ok(Ok(b)) => b,
        Ok(Err(e)) => {
            failed(state, index, spec, format!("{at}: {e}"));
            return None;
        }
        Err(_) => return None,
    };
    // Only whole lines: the blob may be in the middle of an append.
    let Some(end) = bytes.iter().rposition(|&b| b == b'\n').map(|i| i + 1) else {
        return Some(0);
    };
    let mut complete = bytes;
    complete.truncate(end);
    let origin = Origin {
        source: "azure-blob".into(),
        path: Some(format!("{at}@{position}")),
        ..Origin::default()
    };
    let decoded = super::decode(state, complete, origin).await?;
    if let Some(report) = decoded.error_report(&at) {
        failed(state, index, spec, report);
    }
    let n = decoded.events.len() as u64;
    let newest = decoded.events.iter().map(|e| e.time).max();
    if let Err(e) = super::commit(state, decoded.events).await {
        failed(state, index, spec, format!("{at}: not committed: {e:#}"));
        return None;
    }
    let stream = stream_of(blob.name.split("/y=").next().unwrap_or(""));
    state
        .sources
        .object(index, Some((&stream, container)), n, newest);
    Some(end as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roots_name_their_subscription_or_tenant() {
        assert_eq!(stream_of("resourceId=/SUBSCRIPTIONS/S1/"), "S1");
        assert_eq!(stream_of("tenantId=T1/"), "T1");
    }
}
