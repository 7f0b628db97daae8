//! Where logs come from besides HTTP ingest: a watched directory ([`directory`]) and CloudTrail
//! pulled from S3 through SQS ([`s3_sqs`]). Every source decodes through the shared stage
//! (`cloudsentinel_detect::Stage`), hands its events to the pipeline with
//! [`crate::ingest_events`] (which waits for room rather than refusing), and reports how it is
//! doing to [`health::SourceHealth`].

pub mod directory;
pub mod health;
pub mod s3_sqs;

use crate::AppState;
use crate::config::SourceSpec;

/// Events per batch handed to the pipeline.
pub(crate) const CHUNK: usize = 5000;

/// Starts the configured sources; each runs until `stop` turns true.
pub fn spawn(
    state: &AppState,
    stop: &tokio::sync::watch::Receiver<bool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    state
        .config
        .sources
        .iter()
        .map(|spec| {
            let (state, stop) = (std::sync::Arc::clone(state), stop.clone());
            match spec.clone() {
                SourceSpec::Directory(d) => {
                    let i = state.sources.add(
                        d.name.clone(),
                        "directory",
                        d.path.display().to_string(),
                    );
                    tokio::spawn(directory::watch_dir(state, i, d, stop))
                }
                SourceSpec::S3Sqs(s) => {
                    let i = state
                        .sources
                        .add(s.name.clone(), "aws-s3-sqs", s.queue_url.clone());
                    tokio::spawn(s3_sqs::run(state, i, s, stop))
                }
            }
        })
        .collect()
}
