//! `cloudsentinel serve`, `demo`, `config check` and `audit verify`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::{Args, Subcommand};
use cloudsentinel_server::config::{Config, Validated};
use cloudsentinel_server::{DataDir, Service};

use super::{EXIT_FAILED, EXIT_OK, exit_usage, load_rules};

#[derive(Args)]
pub struct ServeArgs {
    /// TOML configuration file (see cloudsentinel.example.toml); defaults apply without one.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on (overrides server.listen).
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Data directory (overrides storage.data_dir).
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// What this process does: `all` (everything, the default), or one part of a scaled-out
    /// deployment sharing PostgreSQL and RabbitMQ: `ingest` (takes batches, publishes them),
    /// `detect` (consumes them: detection, alerting, notifications, sources), `api` (the API and
    /// the dashboard). See docs/SCALING.md.
    #[arg(long, value_name = "ROLE", default_value = "all", value_parser = ["all", "ingest", "detect", "api"])]
    pub role: String,
}

#[derive(Args)]
pub struct DemoArgs {
    /// Address to listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8000")]
    pub listen: String,
    /// Where the demo keeps its data; a previous demo's data there is replaced.
    #[arg(long, value_name = "DIR", default_value = "./demo-data")]
    pub data_dir: PathBuf,
    /// Days of simulated activity (at least 4: the baselines learn from the days before the
    /// attacks of the last two).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(4..))]
    pub days: u32,
    /// Behaviour-only attacks (stolen credentials used at night from a hosting network) woven
    /// into the last two days, beside the five built-in stories.
    #[arg(long, default_value_t = 3)]
    pub stealth: usize,
    /// Seed of the simulation: the same seed gives the same story.
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// Load the scenario, print what it raised, and exit instead of serving.
    #[arg(long)]
    pub load_only: bool,
}

#[derive(Subcommand)]
pub enum ConfigCommand {
    /// Parse and validate a configuration file (with CLOUDSENTINEL_* overrides applied).
    Check { file: PathBuf },
}

#[derive(Subcommand)]
pub enum NotifyCommand {
    /// Send a test message to one `[[notify]]` sink of a configuration file, and say how it went.
    Test {
        /// The sink's name.
        name: String,
        /// The configuration file (secrets from the environment, as for `serve`).
        #[arg(long)]
        config: PathBuf,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Check the audit log's HMAC chain: finds edited, deleted and truncated entries.
    Verify {
        /// Data directory (as the service's storage.data_dir).
        #[arg(long, value_name = "DIR", default_value = "./data")]
        data_dir: PathBuf,
    },
}

/// Logs to stderr: human-readable, or JSON lines with CLOUDSENTINEL_LOG_FORMAT=json; the level
/// filter comes from CLOUDSENTINEL_LOG (default `info`).
fn init_logging() {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("CLOUDSENTINEL_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("CLOUDSENTINEL_LOG_FORMAT").is_ok_and(|v| v == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    if json {
        let _ = builder.json().try_init();
    } else {
        let _ = builder.try_init();
    }
}

fn load_config(
    file: Option<&Path>,
    listen: Option<&str>,
    data_dir: Option<&Path>,
) -> Result<Validated, ExitCode> {
    let mut config = match Config::load(file, std::env::vars()) {
        Ok(v) => v.config,
        Err(e) => {
            eprintln!("error: config: {e}");
            return Err(exit_usage());
        }
    };
    if let Some(l) = listen {
        config.server.listen = l.to_string();
    }
    if let Some(d) = data_dir {
        config.storage.data_dir = d.to_path_buf();
    }
    config.validate().map_err(|e| {
        eprintln!("error: config: {e}");
        exit_usage()
    })
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_name("cs-worker")
        .build()
        .context("starting the async runtime")
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
    tracing::info!("shutdown requested");
}

fn print_admin(service: &Service) {
    if let Some((user, password)) = &service.generated_admin {
        println!("admin user:     {user}");
        println!("admin password: {password}");
        println!(
            "(shown once: it is stored only as an Argon2id hash; create named users and change it)"
        );
    }
}

pub fn serve(args: ServeArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    let v = match load_config(
        args.config.as_deref(),
        args.listen.as_deref(),
        args.data_dir.as_deref(),
    ) {
        Ok(v) => v,
        Err(code) => return Ok(code),
    };
    let role = cloudsentinel_server::config::ProcessRole::parse(&args.role)
        .expect("clap checked the role");
    let v = match v.for_role(role) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: config: {e}");
            return Ok(exit_usage());
        }
    };
    let d = &v.config.detection;
    let rules = match load_rules(&d.rules, !d.builtin_rules, false) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: config: detection.rules: {e}");
            return Ok(exit_usage());
        }
    };
    let rt = runtime()?;
    rt.block_on(async move {
        let service = Service::open(v, rules)?;
        let listener = tokio::net::TcpListener::bind(service.listen())
            .await
            .with_context(|| format!("listening on {}", service.listen()))?;
        println!(
            "CloudSentinel listening on http://{}",
            listener.local_addr()?
        );
        print_admin(&service);
        std::io::stdout().flush()?;
        service.run(listener, shutdown_signal()).await
    })?;
    Ok(EXIT_OK)
}

/// Marks a directory as the demo's own, so that the next demo may replace it.
const DEMO_MARKER: &str = ".cloudsentinel-demo";

fn fresh_demo_dir(dir: &Path) -> anyhow::Result<()> {
    if dir.exists() {
        let empty = std::fs::read_dir(dir)?.next().is_none();
        if !empty && !dir.join(DEMO_MARKER).exists() {
            anyhow::bail!(
                "{} exists and is not a demo directory: choose another with --data-dir",
                dir.display()
            );
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join(DEMO_MARKER),
        "data written by `cloudsentinel demo`\n",
    )?;
    Ok(())
}

pub fn demo(args: DemoArgs) -> anyhow::Result<ExitCode> {
    init_logging();
    fresh_demo_dir(&args.data_dir)?;
    let mut config = Config::default();
    config.server.listen = args.listen.clone();
    config.storage.data_dir = args.data_dir.clone();
    // Demo data lives in a throw-away directory: speed over surviving a power cut.
    config.storage.synchronous = "normal".into();
    config.storage.retention_days = 0;
    // The simulated organisation's address plan, so the dashboard's map and the behaviour
    // features can place addresses by network and country.
    let netdb = args.data_dir.join("netdb.tsv");
    std::fs::write(&netdb, cloudsentinel_sim::netdb::table())
        .with_context(|| format!("writing {}", netdb.display()))?;
    config.detection.netdb = Some(netdb);
    let v = match config.validate() {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_usage());
        }
    };
    let rules = load_rules(&[], false, false).map_err(|e| anyhow::anyhow!("{e}"))?;
    let rt = runtime()?;
    rt.block_on(async move {
        let service = Service::open(v, rules)?;
        let listener = if args.load_only {
            None
        } else {
            Some(
                tokio::net::TcpListener::bind(service.listen())
                    .await
                    .with_context(|| format!("listening on {}", service.listen()))?,
            )
        };
        let started = Instant::now();
        let end = now_minute();
        let scenario = cloudsentinel_sim::generate(&cloudsentinel_sim::SimConfig {
            seed: args.seed,
            days: args.days,
            end,
            scale: 1.0,
            stealth: args.stealth,
        });
        let total = scenario.records.len();
        eprintln!(
            "loading the demo scenario: {total} events over {} days, {} attack stories",
            args.days,
            scenario.stories.len()
        );
        // The days before the attacks first, so that the baselines learn them; then an anomaly
        // model trained on them and activated, as an analyst would with `models train`; then
        // the last two days, scored by it as they arrive.
        let cut = end - chrono::Duration::hours(47);
        let at = scenario.times.partition_point(|t| *t < cut);
        let (before, after) = scenario.records.split_at(at);
        for chunk in before.chunks(2000) {
            service.ingest(chunk.join("\n").into_bytes(), None, "demo").await?;
        }
        let (store, learning) = (
            std::sync::Arc::clone(&service.state.store),
            std::sync::Arc::clone(&service.state.learning),
        );
        let model = tokio::task::spawn_blocking(move || {
            let rec = cloudsentinel_server::learning::start_training(
                store.clone(),
                learning.clone(),
                "anomaly",
                "demo",
                (None, None),
                true,
            )
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            while learning.is_training("anomaly") {
                std::thread::sleep(std::time::Duration::from_millis(100));
            }
            anyhow::Ok(store.model(rec.id, false)?)
        })
        .await??;
        match model {
            Some(m) if m.status == "ready" => eprintln!(
                "anomaly model {} trained on the first {} days ({} scored events) and activated",
                m.version,
                args.days.saturating_sub(2),
                m.samples
            ),
            Some(m) => eprintln!("anomaly model not trained: {}", m.message),
            None => eprintln!("anomaly model not trained"),
        }
        for chunk in after.chunks(2000) {
            service.ingest(chunk.join("\n").into_bytes(), None, "demo").await?;
        }
        let stats = cloudsentinel_server::blocking(&service.state, |s| s.stats())
            .await
            .map_err(|e| anyhow::anyhow!("{e:?}"))?;
        eprintln!(
            "loaded in {:.1} s: {} events, {} alerts, {} incidents",
            started.elapsed().as_secs_f64(),
            stats.events_total,
            stats.alerts_total,
            stats.incidents_total
        );
        for s in &scenario.stories {
            eprintln!("  story: {} ({}): {}", s.name, s.principal, s.summary);
        }
        let Some(listener) = listener else {
            return anyhow::Ok(());
        };
        let addr = listener.local_addr()?;
        println!(
            "CloudSentinel demo dashboard: http://{addr}/ui  (sign in as the admin below; API docs: http://{addr}/docs)"
        );
        print_admin(&service);
        println!("try: curl -s -X POST http://{addr}/api/v1/auth/login -H 'content-type: application/json' -d '{{\"username\":\"USER\",\"password\":\"PASSWORD\"}}'");
        std::io::stdout().flush()?;
        service.run(listener, shutdown_signal()).await
    })?;
    Ok(EXIT_OK)
}

/// Now, to the minute (the scenario's end).
fn now_minute() -> chrono::DateTime<chrono::Utc> {
    let now = chrono::Utc::now();
    chrono::DurationRound::duration_trunc(now, chrono::Duration::minutes(1)).unwrap_or(now)
}

pub fn config(cmd: ConfigCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        ConfigCommand::Check { file } => match Config::load(Some(&file), std::env::vars()) {
            Ok(v) => {
                let c = &v.config;
                println!(
                    "{}: ok (listen {}, data in {}, {} source(s), {} notification sink(s), retention {} days)",
                    file.display(),
                    v.listen,
                    c.storage.data_dir.display(),
                    c.sources.len(),
                    v.sinks.len(),
                    c.storage.retention_days
                );
                for s in &v.sinks {
                    println!(
                        "  notify {}: {} to {} (min level {})",
                        s.name,
                        s.kind.as_str(),
                        s.destination(),
                        s.filter.min_level
                    );
                }
                Ok(EXIT_OK)
            }
            Err(e) => {
                eprintln!("error: {e}");
                Ok(exit_usage())
            }
        },
    }
}

pub fn notify(cmd: NotifyCommand) -> anyhow::Result<ExitCode> {
    let NotifyCommand::Test { name, config } = cmd;
    let v = match Config::load(Some(&config), std::env::vars()) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {e}");
            return Ok(exit_usage());
        }
    };
    let Some(sink) = v.sinks.iter().find(|s| s.name == name) else {
        let names: Vec<&str> = v.sinks.iter().map(|s| s.name.as_str()).collect();
        eprintln!(
            "error: {}: no [[notify]] sink named {name:?} (there are: {})",
            config.display(),
            if names.is_empty() {
                "none".to_string()
            } else {
                names.join(", ")
            }
        );
        return Ok(exit_usage());
    };
    let notice = cloudsentinel_server::notify::test_notice();
    let ctx = cloudsentinel_notify::Context {
        public_url: v.config.server.public_url.as_deref(),
        network: &|_| None,
    };
    let started = std::time::Instant::now();
    let outcome = cloudsentinel_notify::send(sink, &notice, 0, &ctx);
    let ms = started.elapsed().as_secs_f64() * 1000.0;
    // Recorded in the service's audit log when its data directory is here.
    let dir = DataDir(v.config.storage.data_dir.clone());
    if dir.database().exists() && dir.audit_key().exists() {
        let store = dir.open_store(true)?;
        dir.audit_log()?.record(
            &store,
            "cli",
            "notify.test",
            &format!("notify:{name}"),
            serde_json::json!({"kind": sink.kind.as_str(), "destination": sink.destination(), "outcome": format!("{outcome:?}")}),
            None,
        )?;
    }
    match outcome {
        cloudsentinel_notify::Outcome::Sent => {
            println!(
                "{name}: test message delivered to {} ({:.0} ms)",
                sink.destination(),
                ms
            );
            Ok(EXIT_OK)
        }
        cloudsentinel_notify::Outcome::Retry { error, .. } => {
            eprintln!(
                "error: {name}: not delivered to {} (a failure that may pass; the service would retry): {error}",
                sink.destination()
            );
            Ok(EXIT_FAILED)
        }
        cloudsentinel_notify::Outcome::Failed { error } => {
            eprintln!("error: {name}: refused by {}: {error}", sink.destination());
            Ok(EXIT_FAILED)
        }
    }
}

pub fn audit(cmd: AuditCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        AuditCommand::Verify { data_dir } => {
            let dir = DataDir(data_dir);
            if !dir.database().exists() {
                eprintln!("error: no database at {}", dir.database().display());
                return Ok(exit_usage());
            }
            if !dir.audit_key().exists() {
                eprintln!("error: no audit key at {}", dir.audit_key().display());
                return Ok(exit_usage());
            }
            let store = dir.open_store(true)?;
            let log = dir.audit_log()?;
            let v = log.verify(&store)?;
            if v.problems.is_empty() {
                println!("audit log intact: {} entries, chain verified", v.entries);
                Ok(EXIT_OK)
            } else {
                println!(
                    "audit log TAMPERED: {} entries checked, {} problem(s):",
                    v.entries,
                    v.problems.len()
                );
                for p in &v.problems {
                    println!("  {p}");
                }
                Ok(EXIT_FAILED)
            }
        }
    }
}
