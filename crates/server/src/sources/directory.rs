//! A directory source: scans a directory (recursively, e.g. CloudTrail's S3 delivery tree) for
//! files not ingested yet and feeds them through the same pipeline as the HTTP API, waiting for
//! room instead of refusing. A file is marked done (by path, size and modification time) only
//! after all of its events are committed, so a restart re-reads a half-read file and the event
//! ids keep the result free of duplicates.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cloudsentinel_cloud::aws::notification::account_and_region;
use cloudsentinel_core::{Event, Provider};
use cloudsentinel_detect::Stage;
use cloudsentinel_ingest::{Item, ReadOptions, discover};

use super::CHUNK;
use crate::config::DirectorySource;
use crate::{AppState, blocking, ingest_events};

/// A file changed less than this long ago may still be being written.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn watch_dir(
    state: AppState,
    index: usize,
    source: DirectorySource,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    tracing::info!(source = %source.name, path = %source.path.display(), "watching directory");
    loop {
        state.sources.polled(index);
        if let Err(e) = scan(&state, index, &source, &stop).await {
            state.metrics.error("source");
            tracing::warn!(source = %source.name, path = %source.path.display(), error = %e, "directory scan failed");
            state.sources.error(index, format!("{e:#}"));
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(source.poll_secs)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn scan(
    state: &AppState,
    index: usize,
    source: &DirectorySource,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
    let provider = source.provider;
    if !source.path.exists() {
        return Ok(());
    }
    let root = source.path.clone();
    let files = tokio::task::spawn_blocking(move || discover(&[root])).await??;
    for file in files {
        if *stop.borrow() {
            return Ok(());
        }
        let meta = match std::fs::metadata(&file) {
            Ok(m) => m,
            Err(_) => continue,
        };
        let modified = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
        if modified.elapsed().unwrap_or_default() < SETTLE {
            continue;
        }
        let mtime = modified
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let size = meta.len();
        let path = file.display().to_string();
        let p2 = path.clone();
        if blocking(state, move |s| s.source_file_done(&p2, size, mtime))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?
        {
            continue;
        }
        ingest_file(state, index, &file, provider).await?;
        let p2 = path.clone();
        blocking(state, move |s| s.mark_source_file(&p2, size, mtime))
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        tracing::info!(file = %path, "ingested file");
    }
    Ok(())
}

async fn ingest_file(
    state: &AppState,
    index: usize,
    file: &std::path::Path,
    provider: Option<Provider>,
) -> anyhow::Result<()> {
    // Decode (and enrich) on a blocking thread, handing chunks of events to detection as they
    // come.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Vec<Event>>(2);
    let path = file.to_path_buf();
    let metrics = Arc::clone(&state.metrics);
    let (rules, net) = (Arc::clone(&state.rules), state.learning.net.clone());
    let reader = tokio::task::spawn_blocking(move || {
        let mut chunk = Vec::with_capacity(CHUNK);
        let stage = Stage::new(&rules, &net);
        let read = ReadOptions {
            hint: provider,
            ..ReadOptions::default()
        };
        let mut errors = 0u64;
        stage.decode_file(&path, read, &mut |item| match item {
            Item::Event(e) => {
                chunk.push(*e);
                if chunk.len() >= CHUNK {
                    let _ = tx.blocking_send(std::mem::take(&mut chunk));
                }
            }
            Item::Error(e) => {
                errors += 1;
                metrics.error("source");
                tracing::warn!(error = %e, "skipped a record that could not be decoded");
            }
            Item::Digest | Item::Insight => {}
        });
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
        errors
    });
    let (mut events, mut newest) = (0u64, None);
    while let Some(chunk) = rx.recv().await {
        events += chunk.len() as u64;
        newest = newest.max(chunk.iter().map(|e| e.time).max());
        ingest_events(state, chunk)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", file.display()))?;
    }
    let errors = reader.await?;
    if errors > 0 {
        state.sources.error(
            index,
            format!("{}: {errors} records could not be read", file.display()),
        );
    }
    let shown = file.display().to_string();
    state
        .sources
        .object(index, account_and_region(&shown), events, newest);
    Ok(())
}
