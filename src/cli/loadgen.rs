//! `cloudsentinel loadgen`: drives a running service's API and reports what it achieved.
//!
//! - `--mode ingest`: POSTs batches of synthetic CloudTrail records (unique event ids, times
//!   spread over `--span-days`) at a target rate (0 = as fast as the service answers) from
//!   several connections; reports events/s accepted, 429s, and request latency percentiles. A
//!   202 comes back only after the batch's events and alerts are committed, so the request
//!   latency is the ingest-to-alert latency.
//! - `--mode alerts`: signs in and GETs alert lists with a rotation of filters, sorts and pages;
//!   reports latency percentiles.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::Utc;
use clap::{Args, ValueEnum};

use super::EXIT_OK;
use super::generate::record;
use cloudsentinel_core::rng::Rng;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Mode {
    Ingest,
    Alerts,
    /// Write synthetic alerts straight into a stopped service's store (to measure alert queries
    /// at a given size).
    SeedAlerts,
}

#[derive(Args)]
pub struct LoadgenArgs {
    /// The service, e.g. http://127.0.0.1:8000
    #[arg(long, default_value = "http://127.0.0.1:8000")]
    pub url: String,
    #[arg(long, value_enum, default_value = "ingest")]
    pub mode: Mode,
    /// Ingest API key (ingest mode); or use --user/--password.
    #[arg(long)]
    pub api_key: Option<String>,
    #[arg(long)]
    pub user: Option<String>,
    #[arg(long)]
    pub password: Option<String>,
    /// Target events per second over all connections (0: as fast as possible).
    #[arg(long, default_value_t = 0)]
    pub rate: u64,
    /// Records per request.
    #[arg(long, default_value_t = 1000)]
    pub batch: usize,
    /// Seconds to run.
    #[arg(long, default_value_t = 30)]
    pub duration: u64,
    /// Stop after this many events (0: no limit).
    #[arg(long, default_value_t = 0)]
    pub events: u64,
    /// Concurrent connections.
    #[arg(long, default_value_t = 4)]
    pub connections: usize,
    /// Event times spread at random over this many days before now; 0 (default) stamps each
    /// batch like a CloudTrail delivery file: its events one after another over about a minute,
    /// starting up to 15 minutes before now.
    #[arg(long, default_value_t = 0.0)]
    pub span_days: f64,
    /// Gzip request bodies.
    #[arg(long)]
    pub gzip: bool,
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// seed-alerts: the stopped service's data directory.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<std::path::PathBuf>,
    /// seed-alerts: how many alerts to write.
    #[arg(long, default_value_t = 10_000)]
    pub alerts: usize,
}

#[derive(Default)]
struct Tally {
    latencies_ms: Vec<f64>,
    accepted: u64,
    rejected_429: u64,
    errors: u64,
    other_status: Vec<u16>,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into()
}

fn login(agent: &ureq::Agent, url: &str, user: &str, password: &str) -> anyhow::Result<String> {
    let mut resp = agent
        .post(&format!("{url}/api/v1/auth/login"))
        .header("content-type", "application/json")
        .send(serde_json::json!({"username": user, "password": password}).to_string())
        .context("login request")?;
    let body = resp.body_mut().read_to_string()?;
    if resp.status() != 200 {
        anyhow::bail!("login failed: {} {body}", resp.status());
    }
    let v: serde_json::Value = serde_json::from_str(&body)?;
    Ok(v["access_token"].as_str().unwrap_or_default().to_string())
}

/// A pool of records as text, each with its event id at a known place so that a fresh id can
/// be stamped in cheaply.
struct Pool {
    /// (record text, its event id, its event time as written)
    records: Vec<(String, String, String)>,
    live: bool,
}

impl Pool {
    fn new(seed: u64, n: usize, span_days: f64) -> Pool {
        let mut rng = Rng::new(seed);
        let now = Utc::now();
        let span_ms = (span_days * 86_400_000.0) as u64;
        let records = (0..n)
            .map(|_| {
                let t =
                    now - chrono::Duration::milliseconds((rng.next_u64() % span_ms.max(1)) as i64);
                let v = record(&mut rng, t);
                let id = v["eventID"].as_str().unwrap_or_default().to_string();
                let time = v["eventTime"].as_str().unwrap_or_default().to_string();
                (v.to_string(), id, time)
            })
            .collect();
        Pool {
            records,
            live: span_days <= 0.0,
        }
    }
}

pub fn run(args: LoadgenArgs) -> anyhow::Result<ExitCode> {
    let url = args.url.trim_end_matches('/').to_string();
    match args.mode {
        Mode::Ingest => ingest(&args, &url),
        Mode::Alerts => alerts(&args, &url),
        Mode::SeedAlerts => seed_alerts(&args),
    }
}

fn ingest(args: &LoadgenArgs, url: &str) -> anyhow::Result<ExitCode> {
    let auth = match (&args.api_key, &args.user, &args.password) {
        (Some(k), _, _) => ("x-api-key".to_string(), k.clone()),
        (None, Some(u), Some(p)) => (
            "authorization".to_string(),
            format!("Bearer {}", login(&agent(), url, u, p)?),
        ),
        _ => anyhow::bail!("give --api-key, or --user and --password"),
    };
    eprintln!("preparing records...");
    let pool = Arc::new(Pool::new(args.seed, 20_000, args.span_days));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let sent = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let per_conn_rate = args.rate as f64 / args.connections as f64;
    let mut handles = Vec::new();
    for c in 0..args.connections {
        let (pool, tally, sent, stop, auth) = (
            Arc::clone(&pool),
            Arc::clone(&tally),
            Arc::clone(&sent),
            Arc::clone(&stop),
            auth.clone(),
        );
        let (url, batch, gzip, limit) = (url.to_string(), args.batch, args.gzip, args.events);
        let run_id = format!(
            "{:08x}",
            args.seed.wrapping_mul(0x9E37) ^ Utc::now().timestamp() as u64
        );
        handles.push(std::thread::spawn(move || {
            let agent = agent();
            let mut n = 0u64;
            let conn_start = Instant::now();
            let mut at = c * 7919;
            while !stop.load(Ordering::Relaxed) && Instant::now() < deadline {
                if limit > 0 && sent.fetch_add(batch as u64, Ordering::SeqCst) >= limit {
                    break;
                }
                let mut body = String::with_capacity(batch * 1400);
                // A delivery file's window: starts 1 to 15 minutes ago, lasts a minute.
                let file_start = Utc::now()
                    - chrono::Duration::milliseconds(
                        60_000 + ((n.wrapping_mul(2_654_435_761)) % 840_000) as i64,
                    );
                let step_ms = 60_000 / batch.max(1) as i64;
                for k in 0..batch {
                    let (text, id, time) = &pool.records[at % pool.records.len()];
                    at += 1;
                    // A fresh, unique id: run, connection, sequence.
                    let fresh = format!("{run_id}-{c:04x}-{:012x}-lg", n);
                    n += 1;
                    let mut rec =
                        text.replacen(id.as_str(), &fresh[..id.len().min(fresh.len())], 1);
                    if pool.live {
                        let t = (file_start + chrono::Duration::milliseconds(k as i64 * step_ms))
                            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
                        rec = rec.replacen(time.as_str(), &t, 1);
                    }
                    body.push_str(&rec);
                    body.push('\n');
                }
                let bytes = if gzip {
                    use std::io::Write;
                    let mut e =
                        flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
                    let _ = e.write_all(body.as_bytes());
                    e.finish().unwrap_or_default()
                } else {
                    body.into_bytes()
                };
                let t0 = Instant::now();
                let r = agent
                    .post(&format!("{url}/api/v1/ingest"))
                    .header(auth.0.as_str(), auth.1.as_str())
                    .header("content-type", "application/x-ndjson")
                    .send(&bytes[..]);
                let ms = t0.elapsed().as_secs_f64() * 1000.0;
                let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
                match r {
                    Ok(mut resp) => {
                        let status = resp.status().as_u16();
                        let _ = resp.body_mut().read_to_string();
                        match status {
                            202 => {
                                t.accepted += batch as u64;
                                t.latencies_ms.push(ms);
                            }
                            429 => t.rejected_429 += 1,
                            s => {
                                t.errors += 1;
                                if t.other_status.len() < 10 {
                                    t.other_status.push(s);
                                }
                            }
                        }
                    }
                    Err(_) => t.errors += 1,
                }
                drop(t);
                if per_conn_rate > 0.0 {
                    let due = conn_start + Duration::from_secs_f64(n as f64 / per_conn_rate);
                    let now = Instant::now();
                    if due > now {
                        std::thread::sleep(due - now);
                    }
                }
            }
        }));
    }
    for h in handles {
        let _ = h.join();
    }
    stop.store(true, Ordering::Relaxed);
    let secs = started.elapsed().as_secs_f64();
    let mut t = tally.lock().unwrap_or_else(|e| e.into_inner());
    t.latencies_ms.sort_by(|a, b| a.total_cmp(b));
    let l = &t.latencies_ms;
    let summary = serde_json::json!({
        "mode": "ingest",
        "seconds": (secs * 10.0).round() / 10.0,
        "target_rate": args.rate,
        "batch": args.batch,
        "connections": args.connections,
        "events_accepted": t.accepted,
        "events_per_sec": (t.accepted as f64 / secs).round(),
        "requests_429": t.rejected_429,
        "errors": t.errors,
        "error_statuses": t.other_status,
        "latency_ms": {"p50": percentile(l, 0.5), "p95": percentile(l, 0.95), "p99": percentile(l, 0.99), "max": l.last().copied().unwrap_or(f64::NAN)},
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(EXIT_OK)
}

fn alerts(args: &LoadgenArgs, url: &str) -> anyhow::Result<ExitCode> {
    let (Some(user), Some(password)) = (&args.user, &args.password) else {
        anyhow::bail!("alerts mode needs --user and --password");
    };
    let agent = agent();
    let token = login(&agent, url, user, password)?;
    let queries = [
        "limit=50",
        "limit=50&offset=500",
        "status=open&limit=50",
        "min_level=high&limit=50",
        "sort=level&limit=50",
        "q=root&limit=50",
        "technique=T1078&limit=50",
        "level=medium,high&status=open,acknowledged&sort=count&order=desc&limit=100",
    ];
    let started = Instant::now();
    let deadline = started + Duration::from_secs(args.duration);
    let mut lat = Vec::new();
    let mut total = 0u64;
    let mut i = 0usize;
    while Instant::now() < deadline {
        let q = queries[i % queries.len()];
        i += 1;
        let t0 = Instant::now();
        let mut resp = agent
            .get(&format!("{url}/api/v1/alerts?{q}"))
            .header("authorization", &format!("Bearer {token}"))
            .call()?;
        let body = resp.body_mut().read_to_string()?;
        lat.push(t0.elapsed().as_secs_f64() * 1000.0);
        if resp.status() != 200 {
            anyhow::bail!("GET /api/v1/alerts?{q}: {} {body}", resp.status());
        }
        if total == 0 {
            let v: serde_json::Value = serde_json::from_str(&body)?;
            total = v["total"].as_u64().unwrap_or(0);
        }
    }
    lat.sort_by(|a, b| a.total_cmp(b));
    let summary = serde_json::json!({
        "mode": "alerts",
        "requests": lat.len(),
        "alerts_stored": total,
        "latency_ms": {"p50": percentile(&lat, 0.5), "p95": percentile(&lat, 0.95), "p99": percentile(&lat, 0.99), "max": lat.last().copied().unwrap_or(f64::NAN)},
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(EXIT_OK)
}

fn seed_alerts(args: &LoadgenArgs) -> anyhow::Result<ExitCode> {
    use cloudsentinel_alert::{AlertRecord, AlertStatus};
    use cloudsentinel_core::Level;
    use cloudsentinel_store::{Derived, prelude::*};
    let dir = args
        .data_dir
        .clone()
        .context("seed-alerts needs --data-dir (of a stopped service)")?;
    let store = cloudsentinel_server::DataDir(dir).open_store(false)?;
    let (max_alert, _) = store.max_ids()?;
    let mut rng = Rng::new(args.seed);
    let rules = [
        (
            "seed-console-login-no-mfa",
            "Console Sign-in Without MFA",
            "T1078.004",
            "initial-access",
        ),
        (
            "seed-access-key-created",
            "IAM Access Key Created For A Different User",
            "T1098.001",
            "persistence",
        ),
        (
            "seed-trail-stopped",
            "CloudTrail Logging Stopped On A Trail",
            "T1562.008",
            "defense-evasion",
        ),
        (
            "seed-enumeration",
            "Enumeration Burst Of Many Different Read-Only APIs",
            "T1580",
            "discovery",
        ),
        (
            "seed-snapshot-shared",
            "EBS Snapshot Shared With Another Account",
            "T1537",
            "exfiltration",
        ),
        (
            "seed-root-usage",
            "Root Account Used",
            "T1078.004",
            "privilege-escalation",
        ),
    ];
    let now = Utc::now();
    let mut written = 0usize;
    while written < args.alerts {
        let n = (args.alerts - written).min(1000);
        let mut batch = Vec::with_capacity(n);
        for k in 0..n {
            let id = max_alert + (written + k) as i64 + 1;
            let (rule, title, technique, tactic) = *rng.pick(&rules);
            let first = now - chrono::Duration::minutes((rng.next_u64() % (60 * 24 * 60)) as i64);
            batch.push(AlertRecord {
                id,
                kind: "rule".into(),
                rule_id: rule.into(),
                title: title.into(),
                level: Level::ALL[rng.below(5)],
                techniques: vec![technique.into()],
                tactics: vec![tactic.into()],
                entity: format!(
                    "arn:aws:iam::111122223333:user/user{} (AKIAEXAMPLE{:08})",
                    rng.below(500),
                    rng.below(2000)
                ),
                account: Some("111122223333".into()),
                access_key: None,
                source_ip: Some(format!("198.51.100.{}", rng.below(250))),
                first_seen: first,
                last_seen: first + chrono::Duration::minutes(rng.below(60) as i64),
                created: now,
                updated: now,
                count: 1 + rng.below(20) as u64,
                event_ids: vec![rng.uuid()],
                explanation: format!("matched selection: eventName={title}"),
                status: AlertStatus::ALL[rng.below(5)],
                assignee: None,
                incident_id: None,
                verdict: None,
                tp_score: None,
            });
        }
        let mut batch = Some(batch);
        store.commit(&[], &mut |_| Derived {
            alerts: batch.take().unwrap_or_default(),
            ..Derived::default()
        })?;
        written += n;
    }
    println!(
        "{}",
        serde_json::json!({"mode": "seed-alerts", "alerts_written": written})
    );
    Ok(EXIT_OK)
}
