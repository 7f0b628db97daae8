//! `cloudsentinel hunt`: decode files, run the rules, print deduplicated alerts.

use std::collections::BTreeMap;
use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use anyhow::Context;
use clap::{Args, ValueEnum};
use cloudsentinel_core::{Alert, Level};
use cloudsentinel_detect::RuleSet;
use cloudsentinel_detect::alert::Folder;
use cloudsentinel_detect::sigma::CorrelationInput;
use cloudsentinel_ingest::{DecodeError, DecodeStats, Item};
use indicatif::{ProgressBar, ProgressStyle};

use super::{EXIT_FAILED, EXIT_OK, exit_usage, load_rules, usage_or};

#[derive(Clone, Copy, ValueEnum)]
pub enum Format {
    Table,
    Json,
    Jsonl,
    Csv,
}

#[derive(Args)]
pub struct HuntArgs {
    /// Files or directories of CloudTrail logs (.json, .json.gz, .jsonl; S3 delivery trees).
    #[arg(required = true)]
    pub paths: Vec<PathBuf>,
    /// Extra Sigma rule files or directories, added to the built-in pack.
    #[arg(long = "rules", value_name = "DIR")]
    pub rules: Vec<PathBuf>,
    /// Do not load the built-in rule pack.
    #[arg(long)]
    pub no_builtin: bool,
    /// Output format.
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
    /// Only report alerts at or above this level.
    #[arg(long, value_name = "LEVEL", value_parser = parse_level)]
    pub min_level: Option<Level>,
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
}

pub fn parse_level(s: &str) -> Result<Level, String> {
    s.parse::<Level>().map_err(|e| e.to_string())
}

/// What a hunt found, before formatting.
pub struct HuntOutcome {
    pub alerts: Vec<Alert>,
    pub stats: DecodeStats,
    pub files: usize,
    pub errors: Vec<DecodeError>,
}

/// Errors kept for printing; the rest are only counted.
const MAX_KEPT_ERRORS: usize = 1000;

struct WorkerOut {
    alerts: Folder,
    correlate: Vec<CorrelationInput>,
    stats: DecodeStats,
    errors: Vec<DecodeError>,
}

/// Decodes `files` on `threads` threads, runs detection, then correlation in time order, and
/// deduplicates. Shared by `hunt` and the benchmarks.
pub fn hunt_files(
    rules: &RuleSet,
    files: &[PathBuf],
    threads: usize,
    window_secs: i64,
    progress: &ProgressBar,
) -> HuntOutcome {
    let window = chrono::Duration::seconds(window_secs);
    let next = AtomicUsize::new(0);
    let results = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..threads.max(1) {
            scope.spawn(|| {
                let mut out = WorkerOut {
                    alerts: Folder::new(window),
                    correlate: Vec::new(),
                    stats: DecodeStats::default(),
                    errors: Vec::new(),
                };
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(path) = files.get(i) else { break };
                    cloudsentinel_ingest::decode_file(path, &mut |item| {
                        out.stats.count(&item);
                        match item {
                            Item::Event(ev) => {
                                let d = rules.detect(&ev);
                                for m in &d.matches {
                                    out.alerts.add_match(m, &ev);
                                }
                                if let Some(input) = d.for_correlation {
                                    out.correlate.push(input);
                                }
                            }
                            Item::Error(e) => {
                                if out.errors.len() < MAX_KEPT_ERRORS {
                                    out.errors.push(e);
                                }
                            }
                            Item::Digest | Item::Insight => {}
                        }
                    });
                    progress.inc(std::fs::metadata(path).map(|m| m.len()).unwrap_or(0));
                }
                results.lock().expect("worker results").push(out);
            });
        }
    });
    let mut stats = DecodeStats::default();
    let mut alerts = Folder::new(window);
    let mut correlate = Vec::new();
    let mut errors = Vec::new();
    for out in results.into_inner().expect("worker results") {
        stats.add(&out.stats);
        alerts.merge(out.alerts);
        correlate.extend(out.correlate);
        errors.extend(out.errors);
    }
    if let Some(mut correlator) = rules.correlator() {
        correlate.sort_by(|a, b| (a.time, &a.event_id).cmp(&(b.time, &b.event_id)));
        for input in correlate {
            for signal in correlator.feed(input) {
                alerts.add(signal);
            }
        }
    }
    errors.sort_by(|a, b| {
        (&a.origin.path, a.origin.record_index).cmp(&(&b.origin.path, b.origin.record_index))
    });
    let alerts = alerts.finish(rules);
    HuntOutcome {
        alerts,
        stats,
        files: files.len(),
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
    let files = match cloudsentinel_ingest::discover(&args.paths) {
        Ok(f) => f,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_usage());
        }
    };
    let threads = args
        .threads
        .unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1)
        })
        .min(files.len().max(1));
    let total_bytes: u64 = files
        .iter()
        .filter_map(|f| std::fs::metadata(f).ok())
        .map(|m| m.len())
        .sum();
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
    let outcome = hunt_files(&rules, &files, threads, args.dedup_window, &progress);
    progress.finish_and_clear();

    let alerts: Vec<&Alert> = outcome
        .alerts
        .iter()
        .filter(|a| args.min_level.is_none_or(|min| a.level >= min))
        .collect();

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
            eprintln!("warning: skipped {e}");
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
            "summary: {} files, {} events read, {} skipped, {} digest files, {} insight events; {} rules loaded ({} failed); {} alerts{}; {:.2}s ({:.0} events/s)",
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
            elapsed,
            outcome.stats.events as f64 / elapsed.max(1e-9),
        );
    }
    // A run that could read nothing at all failed.
    if outcome.stats.events == 0 && outcome.stats.errors > 0 {
        eprintln!("error: no event could be read from the input");
        return Ok(EXIT_FAILED);
    }
    Ok(EXIT_OK)
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
                w.write_record([
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
                ])?;
            }
            w.flush()?;
        }
        Format::Table => {
            if alerts.is_empty() {
                writeln!(out, "no alerts")?;
            }
            for a in alerts {
                writeln!(
                    out,
                    "{:<13} {}  {}  [{}]",
                    a.level.as_str().to_uppercase(),
                    a.first_seen.format("%Y-%m-%d %H:%M:%S"),
                    a.title,
                    a.techniques.join(", ")
                )?;
                writeln!(
                    out,
                    "              entity: {}   account: {}   count: {}",
                    a.entity,
                    a.account.as_deref().unwrap_or("-"),
                    a.count
                )?;
                writeln!(out, "              why: {}", a.explanation)?;
                let shown: Vec<&str> = a.event_ids.iter().take(5).map(String::as_str).collect();
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
