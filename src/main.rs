//! `cloudsentinel`: threat detection for cloud audit logs.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod cli;

/// Detection allocates many small, short-lived strings on several threads; mimalloc handles that
/// markedly better than the system allocator (see BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Finds attacks in cloud audit logs (AWS CloudTrail, Azure, GCP) with Sigma rules mapped to MITRE ATT&CK.
#[derive(Parser)]
#[command(name = "cloudsentinel", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Hunt through log files offline and print the alerts.
    Hunt(cli::hunt::HuntArgs),
    /// Check, test and list Sigma rules.
    #[command(subcommand)]
    Rules(cli::rules::RulesCommand),
    /// Measure detection quality on labelled events.
    Eval(cli::eval::EvalArgs),
    /// Write a synthetic audit-log corpus (CloudTrail, Azure or GCP) for benchmarks.
    Generate(cli::generate::GenerateArgs),
    /// Run the service: ingest API, detection pipeline, alerts and incidents, on SQLite.
    Serve(cli::serve::ServeArgs),
    /// Run the service on a fresh built-in scenario (days of activity with attacks woven in).
    Demo(cli::serve::DemoArgs),
    /// Check a configuration file.
    #[command(subcommand)]
    Config(cli::serve::ConfigCommand),
    /// Audit log tools.
    #[command(subcommand)]
    Audit(cli::serve::AuditCommand),
    /// Notification sinks: send a test message.
    #[command(subcommand)]
    Notify(cli::serve::NotifyCommand),
    /// Load generator: drive a running service's ingest API and report throughput and latency.
    Loadgen(cli::loadgen::LoadgenArgs),
    /// The model registry of a running service: list, show, train, activate, roll back.
    Models(cli::models::ModelsArgs),
    /// Containment actions: plan, run (guardrails, execute, verify, record), undo.
    #[command(subcommand)]
    Respond(cli::respond::RespondCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Hunt(args) => cli::hunt::run(args),
        Command::Rules(cmd) => cli::rules::run(cmd),
        Command::Eval(args) => cli::eval::run(args),
        Command::Generate(args) => cli::generate::run(args),
        Command::Serve(args) => cli::serve::serve(args),
        Command::Demo(args) => cli::serve::demo(args),
        Command::Config(cmd) => cli::serve::config(cmd),
        Command::Audit(cmd) => cli::serve::audit(cmd),
        Command::Notify(cmd) => cli::serve::notify(cmd),
        Command::Loadgen(args) => cli::loadgen::run(args),
        Command::Models(args) => cli::models::run(args),
        Command::Respond(cmd) => cli::respond::run(cmd),
    };
    match result {
        Ok(code) => code,
        // A reader that went away (`| head`) is not an error of ours.
        Err(e)
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) =>
        {
            cli::EXIT_OK
        }
        Err(e) => {
            eprintln!("error: {e:#}");
            cli::EXIT_FAILED
        }
    }
}
