//! `cloudsentinel hunt`: decode files, run the rules, print deduplicated alerts.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cloudsentinel_alert::Folder;
use cloudsentinel_cloud::aws::Aws;
use cloudsentinel_context::{CloudRanges, NetContext, NetDb};
use cloudsentinel_core::text::{csv_safe, printable};
use cloudsentinel_core::{Alert, Level, Origin};
use cloudsentinel_detect::sigma::CorrelationInput;
use cloudsentinel_detect::{RuleSet, Stage};
use cloudsentinel_ingest::{DEFAULT_MAX_RECORD_BYTES, DecodeError, DecodeStats, Item, ReadOptions};
use cloudsentinel_learn::anomaly::TrainParams;
use cloudsentinel_learn::behaviour::Settings;
use cloudsentinel_learn::offline;
use cloudsentinel_learn::offline::{Interner, Observed};
use indicatif::{ProgressBar, ProgressStyle};

use super::s3::RemoteObject;
use super::{EXIT_FAILED, EXIT_OK, exit_usage, load_rules, usage_or};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
    /// OCSF Detection Findings (class 2004), one per line, for SIEMs and data lakes.
    Ocsf,
}

/// A provider, for `--format-hint`.
#[derive(Clone, Copy, ValueEnum)]
pub enum FormatHint {
    Aws,
    Azure,
    Gcp,
}

impl FormatHint {
    pub fn provider(self) -> cloudsentinel_core::Provider {
        match self {
            FormatHint::Aws => cloudsentinel_core::Provider::Aws,
            FormatHint::Azure => cloudsentinel_core::Provider::Azure,
            FormatHint::Gcp => cloudsentinel_core::Provider::Gcp,
        }
    }
}

#[derive(Args)]
pub struct HuntArgs {
    /// Files or directories of audit logs: CloudTrail (S3 delivery trees, .json, .json.gz, .jsonl),
    /// Azure Activity Log / Entra ID exports, GCP Cloud Audit Logs exports. Mixed is fine. An
    /// `s3://bucket/prefix` reads a trail's bucket directly (credentials from the standard AWS
    /// chain), limited to --since/--until.
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// With s3:// inputs: only objects delivered at or after this date (2026-11-01) or time.
    #[arg(long, value_name = "TIME", value_parser = super::s3::parse_time)]
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// With s3:// inputs: only objects delivered before this date or time.
    #[arg(long, value_name = "TIME", value_parser = super::s3::parse_time)]
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// With s3:// inputs: the bucket's region (default: AWS_REGION or AWS_DEFAULT_REGION).
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// With s3:// inputs: send the calls here instead of AWS (an emulator).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// With s3:// inputs: a role to assume with the credentials the chain finds.
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Extra Sigma rule files or directories, added to the built-in pack.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Do not load the built-in rule pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only report alerts at or above this level. Informational signals (inventory and
    /// change-audit events, findings judged routine for their actor, unusual activity nothing
    /// corroborates) are left out unless this is `informational`.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level, default_value = "low")]
    pub min_level: Level,
    /// Signals of one rule about one entity closer than this many seconds become one alert.
    #[arg(long, value_name = "SECONDS", default_value_t = 3600)]
    pub dedup_window: i64,
    /// Worker threads (default: one per core).
    #[arg(long)]
    pub threads: Option<usize>,
    /// Write the alerts to this file instead of standard output.
    #[arg(long, short = 'o')]
    pub output: Option<PathBuf>,
    /// No progress bar and no summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Read every input as this provider's logs instead of detecting the format per record.
    #[arg(long, value_enum, value_name = "PROVIDER")]
    pub format_hint: Option<FormatHint>,
    /// Print how long each phase took (to stderr).
    #[arg(long)]
    pub timings: bool,
    /// Do not run the behavioural detectors (baselines and the isolation forest).
    #[arg(long)]
    pub no_anomaly: bool,
    /// Judge findings only against the days before them, as the service does; by default a
    /// hunt, which reads a whole period, also judges them against the two weeks after them (a
    /// nightly job's first night is routine because it recurs).
    #[arg(long)]
    pub no_hindsight: bool,
    /// History to learn the baselines from and train the forest on before the input is scored
    /// (files or directories, like the inputs). Without it, both come from the input itself.
    #[arg(long, value_name = "PATH", conflicts_with = "no_anomaly")]
    pub baseline: Vec<PathBuf>,
    /// Share of training events the forest's threshold lets through.
    #[arg(long, value_name = "RATE", default_value_t = 0.0005)]
    pub anomaly_rate: f64,
    /// An IP-to-AS table in iptoasn.com's TSV format (ip2asn-v4.tsv, ip2asn-v6.tsv or both
    /// joined) to use instead of the table that ships inside CloudSentinel.
    #[arg(long, value_name = "PATH")]
    pub netdb: Option<PathBuf>,
    /// A cloud provider's published address ranges (AWS ip-ranges.json, Azure service tags
    /// JSON, GCP cloud.json), to say which addresses are that cloud's more exactly than its AS
    /// numbers do. Repeat for several providers.
    #[arg(long, value_name = "PATH")]
    pub cloud_ranges: Vec<PathBuf>,
    /// Longest record read, in bytes: a longer line, array element or document is reported as
    /// a skipped record and never held in memory whole.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_MAX_RECORD_BYTES as u64, value_parser = clap::value_parser!(u64).range(1024..=1 << 30))]
    pub max_record_bytes: u64,
    /// Evidence event ids listed per alert: the earliest this many (0: all of them). The
    /// count is exact either way; the default is what the service keeps.
    #[arg(long, value_name = "N", default_value_t = cloudsentinel_alert::MAX_EVIDENCE)]
    pub max_evidence: usize,
}

pub fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// What a hunt found, before the alerts are folded and formatted.
pub struct HuntOutcome {
    /// Rule and correlation signals; add the anomaly signals, then `finish`.
    pub alerts: Folder,
    /// Wall time of each phase.
    pub timings: Vec<(&'static str, std::time::Duration)>,
    /// Events handed to the correlation stage.
    pub correlation_inputs: usize,
    /// Of those, how many arrived earlier in event time than one already fed (unordered input).
    pub late_correlation_inputs: usize,
    /// The behavioural stage, fed every event in time order (when asked for).
    pub behaviour: Option<offline::Stream>,
    pub stats: DecodeStats,
    pub files: usize,
    pub errors: Vec<DecodeError>,
}

/// Errors kept for printing; the rest are only counted.
const MAX_KEPT_ERRORS: usize = 1000;

struct WorkerOut {
    alerts: Folder,
    stats: DecodeStats,
    errors: Vec<DecodeError>,
}

/// What workers tell a thread that needs their output in time order (correlation, behaviour).
enum Piece<T> {
    /// One batch of a worker's items, sorted by (time, event id).
    Batch(usize, Vec<T>),
    /// The worker has no more files.
    Done(usize),
}

/// Items merged into one stream in (time, event id) order.
trait Timed {
    fn key(&self) -> (chrono::DateTime<chrono::Utc>, &str);
}

impl Timed for CorrelationInput {
    fn key(&self) -> (chrono::DateTime<chrono::Utc>, &str) {
        (self.time, &self.event_id)
    }
}

impl Timed for Observed {
    fn key(&self) -> (chrono::DateTime<chrono::Utc>, &str) {
        (self.time, &self.id)
    }
}

/// How the behavioural stage takes the events of a run.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Feed {
    /// History: learned from, never scored.
    Learn,
    /// The input: checked against the baselines, then learned from.
    Score,
}

/// Size of the pieces a big JSON Lines file is cut into for the threads.
const UNIT_BYTES: u64 = 32 * 1024 * 1024;

/// Inputs in batches of at most this many, so that a huge file streams too.
const CORRELATION_BATCH: usize = 1024;

/// Event time the correlation stage holds inputs back to put them in order (see
/// [`correlate_stream`]): CloudTrail delivers a file about every five minutes per account and
/// region, and one file's records can span a quarter of an hour. Files whose layout says they
/// span longer (Azure's hourly `PT1H.json` blobs, a Cloud Logging sink's hourly files) add their
/// span ([`reorder_secs`]).
const REORDER_SECS: i64 = 900;

/// The hold-back for these inputs: [`REORDER_SECS`] plus the longest span their layout shows.
pub fn reorder_secs(inputs: &Inputs) -> i64 {
    let span = inputs
        .files
        .iter()
        .cloned()
        .chain(inputs.objects.iter().map(|o| PathBuf::from(&o.key)))
        .filter_map(|p| cloudsentinel_ingest::span_in_name(&p))
        .max()
        .unwrap_or(0);
    REORDER_SECS + span as i64
}

/// What a hunt reads: local files, and objects in S3 with the client that reads them.
#[derive(Default)]
pub struct Inputs {
    pub files: Vec<PathBuf>,
    pub objects: Vec<RemoteObject>,
    pub aws: Option<std::sync::Arc<Aws>>,
}

impl Inputs {
    pub fn files(files: Vec<PathBuf>) -> Inputs {
        Inputs {
            files,
            ..Inputs::default()
        }
    }

    pub fn len(&self) -> usize {
        self.files.len() + self.objects.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One piece of work for a decode thread.
enum Work<'a> {
    Unit(&'a cloudsentinel_ingest::Unit),
    Object(&'a RemoteObject),
}

/// The largest S3 object a hunt reads (CloudTrail files are a few MiB).
const MAX_OBJECT_BYTES: u64 = 512 * 1024 * 1024;

/// An item ordered by (time, event id), for the reorder heap.
struct Held<T>(T);

impl<T: Timed> PartialEq for Held<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == std::cmp::Ordering::Equal
    }
}
impl<T: Timed> Eq for Held<T> {}
impl<T: Timed> PartialOrd for Held<T> {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl<T: Timed> Ord for Held<T> {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.key().cmp(&other.0.key())
    }
}

/// Merges the workers' time-ordered streams into one time-ordered stream (a k-way merge: an
/// item is fed once every worker still running has shown something at least as late), holds
/// the merged stream back by `reorder_secs` of event time to put overlapping files in order, and
/// feeds it as the workers go. Memory is bounded by how far apart in time the workers are and by
/// the event rate over the hold-back, not by the input size. Items still earlier than what was
/// already fed are fed anyway and counted as late. Answers (fed, late).
fn merge_in_time_order<T: Timed>(
    workers: usize,
    rx: std::sync::mpsc::Receiver<Piece<T>>,
    reorder_secs: i64,
    mut feed: impl FnMut(T),
) -> (usize, usize) {
    // Files of one delivery window overlap in time (one per account and region), so a
    // worker's stream steps back a few minutes at each new file: hold items for this much
    // event time and release them in order, which bounds memory by the event rate.
    let horizon = chrono::Duration::seconds(reorder_secs);
    let mut held: std::collections::BinaryHeap<std::cmp::Reverse<Held<T>>> = Default::default();
    let mut newest: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut queues: Vec<std::collections::VecDeque<T>> =
        (0..workers).map(|_| Default::default()).collect();
    let mut done = vec![false; workers];
    let mut fed = 0usize;
    let mut late = 0usize;
    let mut last: Option<chrono::DateTime<chrono::Utc>> = None;
    let mut feed = |item: T| {
        let time = item.key().0;
        if last.is_some_and(|l| time < l) {
            late += 1;
        } else {
            last = Some(time);
        }
        fed += 1;
        feed(item);
    };
    loop {
        match rx.recv() {
            Ok(Piece::Batch(w, items)) => queues[w].extend(items),
            Ok(Piece::Done(w)) => done[w] = true,
            Err(_) => done.iter_mut().for_each(|d| *d = true),
        }
        // Feed while every worker that may still send has something queued.
        loop {
            let blocked = (0..workers).any(|w| !done[w] && queues[w].is_empty());
            if blocked {
                break;
            }
            let next = (0..workers)
                .filter(|&w| !queues[w].is_empty())
                .min_by(|&a, &b| queues[a][0].key().cmp(&queues[b][0].key()));
            let Some(w) = next else { break };
            let item = queues[w].pop_front().expect("non-empty queue");
            newest = newest.max(Some(item.key().0));
            held.push(std::cmp::Reverse(Held(item)));
            let until = newest.expect("set above") - horizon;
            while held.peek().is_some_and(|h| h.0.0.key().0 <= until) {
                let std::cmp::Reverse(Held(item)) = held.pop().expect("peeked");
                feed(item);
            }
        }
        if done.iter().all(|d| *d) && queues.iter().all(|q| q.is_empty()) {
            break;
        }
    }
    while let Some(std::cmp::Reverse(Held(item))) = held.pop() {
        feed(item);
    }
    (fed, late)
}

/// The correlation stage: the workers' correlation inputs in time order
/// ([`merge_in_time_order`]), fed to the Sigma correlations as the workers go.
fn correlate_stream(
    rules: &RuleSet,
    workers: usize,
    window: chrono::Duration,
    max_evidence: usize,
    rx: std::sync::mpsc::Receiver<Piece<CorrelationInput>>,
    hindsight: bool,
    reorder_secs: i64,
) -> (Folder, usize, usize) {
    let mut alerts = Folder::new(window).with_max_evidence(max_evidence);
    let Some(correlator) = rules.correlator() else {
        for _ in rx {}
        return (alerts, 0, 0);
    };
    // A hunt looks back over a period: findings are judged against the days after them too.
    let mut correlator = if hindsight {
        correlator.with_hindsight()
    } else {
        correlator
    };
    let (fed, late) = merge_in_time_order(workers, rx, reorder_secs, |input| {
        for signal in correlator.feed(input) {
            alerts.add(signal);
        }
    });
    correlator.finish(&mut |signal| alerts.add(signal));
    (alerts, fed, late)
}

/// The address tables: the shipped one unless `netdb` names another, plus the cloud ranges files.
pub fn net_context(netdb: Option<&Path>, cloud_ranges: &[PathBuf]) -> Result<NetContext, String> {
    let db = match netdb {
        None => NetDb::builtin(),
        Some(p) => std::sync::Arc::new(NetDb::load(p).map_err(|e| format!("--netdb {e}"))?),
    };
    let mut ranges = CloudRanges::default();
    for p in cloud_ranges {
        ranges
            .add_file(p)
            .map_err(|e| format!("--cloud-ranges {e}"))?;
    }
    Ok(NetContext::new(db, ranges))
}

/// Decodes the inputs on `threads` threads, runs detection, streams what correlations need to a
/// correlation thread in time order, and folds everything into alerts. Shared by `hunt` and the
/// benchmarks.
#[allow(clippy::too_many_arguments)] // each is one independent input of the run
pub fn hunt_files(
    rules: &RuleSet,
    inputs: &Inputs,
    threads: usize,
    window_secs: i64,
    max_evidence: usize,
    read: ReadOptions,
    net: &NetContext,
    progress: &ProgressBar,
    behaviour: Option<(offline::Stream, Feed)>,
    hindsight: bool,
) -> HuntOutcome {
    let started = Instant::now();
    let window = chrono::Duration::seconds(window_secs);
    let threads = threads.max(1);
    // Big JSON Lines files are shared between threads in pieces of this size.
    let units = if threads > 1 {
        cloudsentinel_ingest::plan_units(&inputs.files, UNIT_BYTES)
    } else {
        inputs
            .files
            .iter()
            .map(|p| cloudsentinel_ingest::Unit {
                path: p.clone(),
                range: None,
            })
            .collect()
    };
    let work: Vec<Work> = units
        .iter()
        .map(Work::Unit)
        .chain(inputs.objects.iter().map(Work::Object))
        .collect();
    let work = &work;
    let threads = threads.min(work.len().max(1));
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    let (tx, rx) = std::sync::mpsc::sync_channel::<Piece<CorrelationInput>>(2 * threads);
    let (btx, brx) = std::sync::mpsc::sync_channel::<Piece<Observed>>(2 * threads);
    let observe = behaviour.is_some();
    let reorder = reorder_secs(inputs);
    let stage = Stage::new(rules, net);
    let stage = &stage;
    let (mut alerts, correlation_inputs, late, behaviour) = std::thread::scope(|scope| {
        let correlation = std::thread::Builder::new()
            .name("correlate".into())
            .spawn_scoped(scope, || {
                correlate_stream(rules, threads, window, max_evidence, rx, hindsight, reorder)
            })
            .expect("spawn correlation thread");
        // The behavioural stage learns and scores in event-time order on its own thread.
        let behaviour = std::thread::Builder::new()
            .name("behaviour".into())
            .spawn_scoped(scope, move || {
                let (mut stream, feed) = behaviour?;
                merge_in_time_order(threads, brx, reorder, |o| match feed {
                    Feed::Learn => stream.learn(&o),
                    Feed::Score => stream.push(o),
                });
                Some(stream)
            })
            .expect("spawn behaviour thread");
        for w in 0..threads {
            let tx = tx.clone();
            let btx = btx.clone();
            let next = &next;
            let results = &results;
            let worker = std::thread::Builder::new().name(format!("detect-{w}"));
            worker
                .spawn_scoped(scope, move || {
                    let mut out = WorkerOut {
                        alerts: Folder::new(window).with_max_evidence(max_evidence),
                        stats: DecodeStats::default(),
                        errors: Vec::new(),
                    };
                    let mut interner = Interner::default();
                    let mut batch: Vec<CorrelationInput> = Vec::new();
                    let mut observed: Vec<Observed> = Vec::new();
                    let send = |batch: &mut Vec<CorrelationInput>| {
                        if !batch.is_empty() {
                            let mut b = std::mem::take(batch);
                            b.sort_by(|x, y| x.key().cmp(&y.key()));
                            let _ = tx.send(Piece::Batch(w, b));
                        }
                    };
                    let send_observed = |observed: &mut Vec<Observed>| {
                        if !observed.is_empty() {
                            let mut b = std::mem::take(observed);
                            b.sort_by(|x, y| x.key().cmp(&y.key()));
                            let _ = btx.send(Piece::Batch(w, b));
                        }
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(piece) = work.get(i) else { break };
                        let mut on_item = |item: Item| {
                            out.stats.count(&item);
                            match item {
                                Item::Event(ev) => {
                                    if observe {
                                        observed.push(Observed::of_event(&ev, &mut interner));
                                        if observed.len() >= CORRELATION_BATCH {
                                            send_observed(&mut observed);
                                        }
                                    }
                                    let d = stage.detect(&ev);
                                    for m in &d.matches {
                                        out.alerts.add_match(m, &ev);
                                    }
                                    if let Some(input) = d.for_correlation {
                                        batch.push(input);
                                        if batch.len() >= CORRELATION_BATCH {
                                            send(&mut batch);
                                        }
                                    }
                                }
                                Item::Error(e) => {
                                    if out.errors.len() < MAX_KEPT_ERRORS {
                                        out.errors.push(e);
                                    }
                                }
                                Item::Digest | Item::Insight => {}
                            }
                        };
                        let size = match piece {
                            Work::Unit(unit) => {
                                stage.decode_unit(unit, read, &mut on_item);
                                unit.len()
                            }
                            Work::Object(o) => {
                                let aws = inputs.aws.as_ref().expect("objects come with a client");
                                let origin = Origin {
                                    source: "s3".into(),
                                    path: Some(o.url()),
                                    ..Origin::default()
                                };
                                match aws.get_object(&o.bucket, &o.key, MAX_OBJECT_BYTES) {
                                    Ok(bytes) => {
                                        stage.decode_bytes(&bytes, origin, read, &mut on_item)
                                    }
                                    Err(e) => on_item(Item::Error(DecodeError {
                                        origin,
                                        reason: e.to_string(),
                                    })),
                                }
                                o.size
                            }
                        };
                        send(&mut batch);
                        send_observed(&mut observed);
                        progress.inc(size);
                    }
                    let _ = tx.send(Piece::Done(w));
                    let _ = btx.send(Piece::Done(w));
                    results.lock().expect("worker results").push(out);
                })
                .expect("spawn detection thread");
        }
        drop(tx);
        drop(btx);
        let (alerts, fed, late) = correlation.join().expect("correlation thread");
        let behaviour = behaviour.join().expect("behaviour thread");
        (alerts, fed, late, behaviour)
    });
    let detect_done = Instant::now();
    let mut stats = DecodeStats::default();
    let mut errors = Vec::new();
    for out in results.into_inner().expect("worker results") {
        stats.add(&out.stats);
        alerts.merge(out.alerts);
        errors.extend(out.errors);
    }
    errors.sort_by(|a, b| {
        (&a.origin.path, a.origin.record_index).cmp(&(&b.origin.path, b.origin.record_index))
    });
    let merged = Instant::now();
    let timings = vec![
        ("decode+detect+correlate", detect_done - started),
        ("merge", merged - detect_done),
    ];
    HuntOutcome {
        alerts,
        timings,
        correlation_inputs,
        late_correlation_inputs: late,
        behaviour,
        stats,
        files: inputs.len(),
        errors,
    }
}

pub fn run(args: HuntArgs) -> anyhow::Result<ExitCode> {
    let started = Instant::now();
    let rules = match usage_or(load_rules(&args.rules, args.no_builtin, args.quiet)) {
        Ok(r) => r,
        Err(code) => return Ok(code),
    };
    if rules.is_empty() {
        eprintln!("error: no rules loaded (use the built-in pack or --rules DIR)");
        return Ok(exit_usage());
    }
    let inputs = match inputs_of(&args) {
        Ok(i) => i,
        Err(code) => return Ok(code),
    };
    if inputs.is_empty() {
        // Nothing to read is no all-clear.
        eprintln!(
            "error: no input files found in {} (hidden files are skipped)",
            looked_at(&args.paths)
        );
        return Ok(EXIT_FAILED);
    }
    let threads = args.threads.unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    });
    let total_bytes: u64 = inputs
        .files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum::<u64>()
        + inputs.objects.iter().map(|o| o.size).sum::<u64>();
    let progress = if !args.quiet && std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(total_bytes);
        pb.set_style(
            ProgressStyle::with_template(
                "{spinner} [{elapsed_precise}] {wide_bar} {bytes}/{total_bytes} ({eta})",
            )
            .expect("progress template"),
        );
        pb
    } else {
        ProgressBar::hidden()
    };
    if !(args.anomaly_rate > 0.0 && args.anomaly_rate < 1.0) {
        eprintln!("error: --anomaly-rate must be between 0 and 1");
        return Ok(exit_usage());
    }
    let history_files = match args.baseline.is_empty() {
        true => Vec::new(),
        false => match cloudsentinel_ingest::discover(&args.baseline) {
            Ok(f) => f,
            Err(e) => {
                eprintln!("error: --baseline: {e}");
                return Ok(exit_usage());
            }
        },
    };
    let net = match net_context(args.netdb.as_deref(), &args.cloud_ranges) {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_usage());
        }
    };
    let hint = args.format_hint.map(FormatHint::provider);
    let read = ReadOptions {
        hint,
        max_record_bytes: args.max_record_bytes as usize,
        ..ReadOptions::default()
    };
    // The behavioural stage: baselines from the history first (when given), then the input.
    let learned = Instant::now();
    let (stream, history_events) = if args.no_anomaly {
        (None, None)
    } else {
        let params = TrainParams {
            target_rate: args.anomaly_rate,
            ..TrainParams::default()
        };
        let stream = offline::Stream::new(
            Settings::default(),
            &params,
            Some(std::sync::Arc::clone(net.db())),
        );
        if history_files.is_empty() {
            (Some(stream), None)
        } else {
            let (stream, n) = learn_history(history_files, threads, read, stream);
            (Some(stream), Some(n))
        }
    };
    let history_time = learned.elapsed();
    let mut outcome = hunt_files(
        &rules,
        &inputs,
        threads,
        args.dedup_window,
        args.max_evidence,
        read,
        &net,
        &progress,
        stream.map(|s| (s, Feed::Score)),
        !args.no_hindsight,
    );
    if history_events.is_some() {
        outcome.timings.insert(0, ("history", history_time));
    }
    progress.finish_and_clear();
    let mut notes = Vec::new();
    if let Some(stream) = outcome.behaviour.take() {
        let started = Instant::now();
        let (signals, note) = behaviour(stream, history_events, !args.no_hindsight);
        for s in signals {
            outcome.alerts.add(s);
        }
        notes.push(note);
        outcome
            .timings
            .push(("behaviour (finish)", started.elapsed()));
    }
    let folded = Instant::now();
    let all_alerts = std::mem::replace(
        &mut outcome.alerts,
        Folder::new(chrono::Duration::seconds(args.dedup_window)),
    )
    .finish(&rules);
    outcome.timings.push(("fold", folded.elapsed()));

    let alerts: Vec<&Alert> = all_alerts
        .iter()
        .filter(|a| a.level >= args.min_level)
        .collect();
    let below = all_alerts.len() - alerts.len();

    if outcome.stats.events == 0 {
        // No event read is no all-clear: say what was looked at, and why nothing came of it.
        if !args.quiet {
            for e in outcome.errors.iter().take(20) {
                eprintln!("warning: skipped {}", printable(&e.to_string()));
            }
        }
        eprintln!(
            "error: no event could be read from {} files in {} ({} records skipped, {} digest files, {} insight events)",
            outcome.files,
            looked_at(&args.paths),
            outcome.stats.errors,
            outcome.stats.digests,
            outcome.stats.insights
        );
        return Ok(EXIT_FAILED);
    }
    let mut out: Box<dyn Write> = match &args.output {
        Some(p) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(p).with_context(|| format!("cannot create {}", p.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    write_alerts(&mut out, args.format, &alerts).context("cannot write alerts")?;
    out.flush().context("cannot write alerts")?;

    if !args.quiet {
        for e in outcome.errors.iter().take(20) {
            eprintln!("warning: skipped {}", printable(&e.to_string()));
        }
        if outcome.stats.errors as usize > outcome.errors.len().min(20) {
            eprintln!(
                "warning: ... {} more skipped records not shown",
                outcome.stats.errors as usize - outcome.errors.len().min(20)
            );
        }
        let elapsed = started.elapsed().as_secs_f64();
        let mut by_level: BTreeMap<Level, usize> = BTreeMap::new();
        for a in &alerts {
            *by_level.entry(a.level).or_default() += 1;
        }
        let levels: Vec<String> = by_level
            .iter()
            .rev()
            .map(|(l, n)| format!("{l} {n}"))
            .collect();
        eprintln!(
            "summary: {} files, {} events read, {} skipped, {} digest files, {} insight events; {} rules loaded ({} failed); {} alerts{}{}; {:.2}s ({:.0} events/s)",
            outcome.files,
            outcome.stats.events,
            outcome.stats.errors,
            outcome.stats.digests,
            outcome.stats.insights,
            rules.len(),
            rules.failures().len(),
            alerts.len(),
            if levels.is_empty() {
                String::new()
            } else {
                format!(" ({})", levels.join(", "))
            },
            if below > 0 {
                format!(
                    ", {below} below {} not shown (--min-level informational shows them)",
                    args.min_level
                )
            } else {
                String::new()
            },
            elapsed,
            outcome.stats.events as f64 / elapsed.max(1e-9),
        );
    }
    if !args.quiet {
        for n in &notes {
            eprintln!("{n}");
        }
    }
    if !args.quiet && outcome.late_correlation_inputs > 0 {
        eprintln!(
            "warning: {} of {} events reached the correlation rules out of time order (the input files overlap in time); counts over time windows may differ from a time-sorted input",
            outcome.late_correlation_inputs, outcome.correlation_inputs
        );
    }
    if args.timings {
        let phases: Vec<String> = outcome
            .timings
            .iter()
            .map(|(n, d)| format!("{n} {:.2}s", d.as_secs_f64()))
            .collect();
        eprintln!(
            "timings: {}; {} events went to correlation ({} out of time order)",
            phases.join(", "),
            outcome.correlation_inputs,
            outcome.late_correlation_inputs
        );
    }
    Ok(EXIT_OK)
}

/// The local files and the S3 objects the arguments name.
fn inputs_of(args: &HuntArgs) -> Result<Inputs, ExitCode> {
    let (remote, local): (Vec<&PathBuf>, Vec<&PathBuf>) = args
        .paths
        .iter()
        .partition(|p| p.to_string_lossy().starts_with("s3://"));
    let local: Vec<PathBuf> = local.into_iter().cloned().collect();
    let mut inputs = Inputs::files(if local.is_empty() {
        Vec::new()
    } else {
        cloudsentinel_ingest::discover(&local).map_err(|e| {
            eprintln!("error: {}", printable(&e.to_string()));
            EXIT_FAILED
        })?
    });
    if remote.is_empty() {
        if args.since.is_some() || args.until.is_some() {
            eprintln!("error: --since and --until select objects of s3:// inputs");
            return Err(exit_usage());
        }
        return Ok(inputs);
    }
    let region = args
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .filter(|r| !r.is_empty());
    let Some(region) = region else {
        eprintln!("error: s3:// inputs need the bucket's region: --region or AWS_REGION");
        return Err(exit_usage());
    };
    let aws = std::sync::Arc::new(Aws::new(cloudsentinel_cloud::aws::Config {
        region,
        endpoint_url: args.endpoint_url.clone(),
        role_arn: args.role_arn.clone(),
        external_id: None,
        timeout: std::time::Duration::from_secs(120),
    }));
    for url in remote {
        let url = url.to_string_lossy();
        let Some((bucket, prefix)) = super::s3::parse_url(&url) else {
            eprintln!("error: {url}: expected s3://bucket/prefix");
            return Err(exit_usage());
        };
        match super::s3::list(&aws, &bucket, &prefix, args.since, args.until) {
            Ok(objects) => inputs.objects.extend(objects),
            Err(e) => {
                eprintln!("error: listing {url}: {e}");
                return Err(EXIT_FAILED);
            }
        }
    }
    inputs.aws = Some(aws);
    Ok(inputs)
}

/// The paths given, for an error message.
fn looked_at(paths: &[PathBuf]) -> String {
    let shown: Vec<String> = paths
        .iter()
        .map(|p| printable(&p.display().to_string()).into_owned())
        .collect();
    shown.join(", ")
}

/// Reads the `--baseline` history into the behavioural stage's baselines (and the forest's
/// training sample); answers the stage and how many events it learned from.
fn learn_history(
    files: Vec<PathBuf>,
    threads: usize,
    read: ReadOptions,
    stream: offline::Stream,
) -> (offline::Stream, u64) {
    let empty = cloudsentinel_detect::RuleSetBuilder::new().build();
    let out = hunt_files(
        &empty,
        &Inputs::files(files),
        threads,
        3600,
        0,
        read,
        &NetContext::new(std::sync::Arc::default(), CloudRanges::default()),
        &ProgressBar::hidden(),
        Some((stream, Feed::Learn)),
        false,
    );
    (
        out.behaviour.expect("the stage comes back"),
        out.stats.events,
    )
}

/// Finishes the behavioural detectors; returns their signals and a line saying what they did.
fn behaviour(
    stream: offline::Stream,
    from_history: Option<u64>,
    hindsight: bool,
) -> (Vec<cloudsentinel_core::Signal>, String) {
    match stream.finish(hindsight) {
        Ok(o) => {
            let note = format!(
                "anomaly: baselines of {} principals learned from {}; forest trained on {} scored events, threshold {:.3}; {} input events scored ({} still in their principal's learning period), {} above the threshold",
                o.baselines.principals(),
                match from_history {
                    Some(n) => format!("{n} history events then the input"),
                    None => "the input".into(),
                },
                o.model.trained_on,
                o.model.threshold,
                o.scored_events,
                o.learning,
                o.signals.len()
            );
            (o.signals, note)
        }
        Err(e) => {
            let n = e.signals.len();
            (
                e.signals,
                format!(
                    "anomaly: forest not trained: {} (give more history with --baseline PATH, or --no-anomaly); the explained detectors ran and gave {n} signals",
                    e.error
                ),
            )
        }
    }
}

/// Writes alerts in the chosen format.
pub fn write_alerts(out: &mut dyn Write, format: Format, alerts: &[&Alert]) -> anyhow::Result<()> {
    match format {
        Format::Jsonl => {
            for a in alerts {
                serde_json::to_writer(&mut *out, a)?;
                out.write_all(b"\n")?;
            }
        }
        Format::Json => {
            serde_json::to_writer_pretty(&mut *out, alerts)?;
            out.write_all(b"\n")?;
        }
        Format::Ocsf => {
            for a in alerts {
                serde_json::to_writer(&mut *out, &cloudsentinel_notify::ocsf::from_alert(a))?;
                out.write_all(b"\n")?;
            }
        }
        Format::Csv => {
            let mut w = csv::Writer::from_writer(out);
            w.write_record([
                "first_seen",
                "last_seen",
                "level",
                "rule_id",
                "title",
                "techniques",
                "tactics",
                "entity",
                "account",
                "count",
                "event_ids",
                "explanation",
            ])?;
            for a in alerts {
                // Log fields are attacker input: no cell may start a spreadsheet formula or carry a
                // terminal escape.
                let cells = [
                    a.first_seen.to_rfc3339(),
                    a.last_seen.to_rfc3339(),
                    a.level.to_string(),
                    a.rule_id.clone(),
                    a.title.clone(),
                    a.techniques.join(";"),
                    a.tactics.join(";"),
                    a.entity.clone(),
                    a.account.clone().unwrap_or_default(),
                    a.count.to_string(),
                    a.event_ids.join(";"),
                    a.explanation.clone(),
                ];
                w.write_record(cells.iter().map(|c| csv_safe(&printable(c)).into_owned()))?;
            }
            w.flush()?;
        }
        Format::Table => {
            if alerts.is_empty() {
                writeln!(out, "no alerts")?;
            }
            // Log fields are attacker input: no terminal escapes or forged lines reach the
            // screen.
            for a in alerts {
                writeln!(
                    out,
                    "{:<13} {}  {}  [{}]",
                    a.level.as_str().to_uppercase(),
                    a.first_seen.format("%Y-%m-%d %H:%M:%S"),
                    printable(&a.title),
                    printable(&a.techniques.join(", "))
                )?;
                writeln!(
                    out,
                    "              entity: {}   account: {}   count: {}",
                    printable(&a.entity),
                    printable(a.account.as_deref().unwrap_or("-")),
                    a.count
                )?;
                writeln!(out, "              why: {}", printable(&a.explanation))?;
                let shown: Vec<String> = a
                    .event_ids
                    .iter()
                    .take(5)
                    .map(|id| printable(id).into_owned())
                    .collect();
                let more = a.event_ids.len().saturating_sub(5);
                writeln!(
                    out,
                    "              events: {}{}",
                    shown.join(", "),
                    if more > 0 {
                        format!(" (+{more} more)")
                    } else {
                        String::new()
                    }
                )?;
            }
        }
    }
    Ok(())
}
