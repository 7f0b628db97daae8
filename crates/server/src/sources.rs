//! A directory source: scans a directory (recursively, e.g. CloudTrail's S3 delivery tree) for
//! files not ingested yet and feeds them through the same pipeline as the HTTP API, waiting for
//! room instead of refusing. A file is marked done (by path, size and modification time) only
//! after all of its events are committed, so a restart re-reads a half-read file and the event
//! ids keep the result free of duplicates.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use cloudsentinel_core::{Event, Provider};
use cloudsentinel_detect::Stage;
use cloudsentinel_ingest::{Item, ReadOptions, discover};

use crate::config::SourceSection;
use crate::{AppState, blocking, ingest_events};

/// Events per batch handed to the pipeline.
const CHUNK: usize = 5000;

/// A file changed less than this long ago may still be being written.
const SETTLE: Duration = Duration::from_secs(2);

pub async fn watch_dir(
    state: AppState,
    index: usize,
    source: SourceSection,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let provider = source.provider.as_deref().map(|p| match p {
        "azure" => Provider::Azure,
        "gcp" => Provider::Gcp,
        _ => Provider::Aws,
    });
    tracing::info!(source = index, path = %source.path.display(), "watching directory");
    loop {
        if let Err(e) = scan(&state, &source, provider, &stop).await {
            state.metrics.error("source");
            tracing::warn!(source = index, path = %source.path.display(), error = %e, "directory scan failed");
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_secs(source.poll_secs)) => {}
            _ = stop.changed() => return,
        }
    }
}

async fn scan(
    state: &AppState,
    source: &SourceSection,
    provider: Option<Provider>,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> anyhow::Result<()> {
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
        ingest_file(state, &file, provider).await?;
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
        stage.decode_file(&path, read, &mut |item| match item {
            Item::Event(e) => {
                chunk.push(*e);
                if chunk.len() >= CHUNK {
                    let _ = tx.blocking_send(std::mem::take(&mut chunk));
                }
            }
            Item::Error(e) => {
                metrics.error("source");
                tracing::warn!(error = %e, "skipped a record that could not be decoded");
            }
            Item::Digest | Item::Insight => {}
        });
        if !chunk.is_empty() {
            let _ = tx.blocking_send(chunk);
        }
    });
    while let Some(events) = rx.recv().await {
        ingest_events(state, events)
            .await
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", file.display()))?;
    }
    reader.await?;
    Ok(())
}
