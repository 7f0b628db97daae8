//! `cloudsentinel respond plan|run|undo`: containment actions from the command line.
//!
//! `plan` prints the exact API calls an action makes; `run` checks the guardrails, executes,
//! verifies, and writes a record (the action, the state before, what happened) that `undo`
//! reads to restore that state; `run --dry-run` prints the calls and makes none. Credentials
//! come from the standard AWS chain; `--role-arn` assumes a role in the target account. The
//! `entra.*` actions act as an Entra ID application (`--entra-*`), the `gcp.*` ones with a
//! service account key (`--gcp-credentials`) or the metadata server.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Args, Subcommand};
use cloudsentinel_cloud::aws::{Aws, Config};
use cloudsentinel_cloud::gcp::Credentials;
use cloudsentinel_cloud::gcp_iam::GcpIamClient;
use cloudsentinel_cloud::graph::GraphClient;
use cloudsentinel_respond::{Action, Before, Clients, Guard, RespondError};
use serde::{Deserialize, Serialize};

use super::{EXIT_FAILED, EXIT_OK, exit_usage};

#[derive(Subcommand)]
pub enum RespondCommand {
    /// Print the calls an action would make.
    Plan(ActionArgs),
    /// Check the guardrails, execute, verify, and record the state before.
    Run(RunArgs),
    /// Restore the state a run recorded.
    Undo(UndoArgs),
}

#[derive(Args)]
pub struct ActionArgs {
    /// The action (docs/RESPONSE.md): aws.deactivate-access-key, aws.deny-all,
    /// aws.revoke-role-sessions, aws.delete-login-profile, aws.block-s3-public-access,
    /// aws.remove-snapshot-share, aws.quarantine-instance, aws.enable-trail-logging,
    /// aws.enable-guardduty, entra.disable-user, entra.revoke-sessions,
    /// entra.remove-app-password, gcp.disable-service-account-key, gcp.remove-iam-binding
    pub action: String,
    /// The action's parameters, `key=value` (user=alice, access_key_id=AKIA..., kind=Role,
    /// name=..., role=..., bucket=..., snapshot_id=..., instance_id=..., trail=...,
    /// project=..., service_account=..., key_id=..., member=user:...).
    #[arg(long = "param", short = 'p', value_name = "KEY=VALUE")]
    pub params: Vec<String>,
}

#[derive(Args)]
pub struct Target {
    /// The region calls are signed for (IAM is global; default AWS_REGION or us-east-1).
    #[arg(long)]
    pub region: Option<String>,
    /// entra.* actions: the tenant of the Entra ID application acting (its secret in
    /// AZURE_CLIENT_SECRET).
    #[arg(long, value_name = "TENANT", env = "AZURE_TENANT_ID")]
    pub entra_tenant: Option<String>,
    /// entra.* actions: the application (client) id.
    #[arg(long, value_name = "ID", env = "AZURE_CLIENT_ID")]
    pub entra_client_id: Option<String>,
    /// entra.* actions: send Graph calls here instead (a stand-in).
    #[arg(long, value_name = "URL")]
    pub graph_endpoint: Option<String>,
    /// entra.* actions: the token authority (default https://login.microsoftonline.com).
    #[arg(long, value_name = "URL")]
    pub entra_authority: Option<String>,
    /// gcp.* actions: a service account key file (JSON) to act as; without it, the metadata
    /// server's token (on Google Cloud), or none with --gcp-endpoint.
    #[arg(long, value_name = "FILE", env = "GOOGLE_APPLICATION_CREDENTIALS")]
    pub gcp_credentials: Option<PathBuf>,
    /// gcp.* actions: send the IAM and Resource Manager calls here instead (a stand-in).
    #[arg(long, value_name = "URL")]
    pub gcp_endpoint: Option<String>,
    /// Send the calls here instead of AWS (an emulator).
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
    /// A role to assume in the target account.
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
}

#[derive(Args)]
pub struct RunArgs {
    #[command(flatten)]
    pub action: ActionArgs,
    #[command(flatten)]
    pub target: Target,
    /// Print the calls and make none.
    #[arg(long)]
    pub dry_run: bool,
    /// Where to write the record undo needs (default: printed to standard output).
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Principals no action may touch (`user/break-glass`, `role/cloudsentinel-*`); repeat.
    #[arg(long, value_name = "PATTERN")]
    pub protect: Vec<String>,
}

#[derive(Args)]
pub struct UndoArgs {
    /// The record a run wrote.
    #[arg(long, value_name = "FILE")]
    pub record: PathBuf,
    #[command(flatten)]
    pub target: Target,
    /// Print the calls and make none.
    #[arg(long)]
    pub dry_run: bool,
}

/// What a run did: enough for undo, and for a person reading it later.
#[derive(Debug, Serialize, Deserialize)]
pub struct Record {
    pub action: Action,
    pub executed: DateTime<Utc>,
    /// The state found before the change (`null` when it could not be read: nothing changed).
    pub before: Option<Before>,
    /// Whether the change was made.
    pub changed: bool,
    pub error: Option<String>,
    /// Whether reading the state back showed it as asked.
    pub verified: Option<bool>,
}

pub fn run(cmd: RespondCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        RespondCommand::Plan(a) => {
            let Some(action) = parse(&a) else {
                return Ok(exit_usage());
            };
            println!("{}", action.describe());
            for call in action.plan() {
                println!("  {call}");
            }
            Ok(EXIT_OK)
        }
        RespondCommand::Run(r) => run_action(r),
        RespondCommand::Undo(u) => undo(u),
    }
}

/// The action the arguments name, or an error printed.
fn parse(a: &ActionArgs) -> Option<Action> {
    let mut v = serde_json::Map::new();
    v.insert("action".into(), a.action.clone().into());
    for p in &a.params {
        let Some((k, val)) = p.split_once('=') else {
            eprintln!("error: --param {p}: expected key=value");
            return None;
        };
        v.insert(k.to_string(), val.into());
    }
    match serde_json::from_value::<Action>(serde_json::Value::Object(v)) {
        Ok(action) => Some(action),
        Err(e) => {
            eprintln!(
                "error: {}: {e} (actions: {})",
                a.action,
                cloudsentinel_respond::ACTIONS.join(", ")
            );
            None
        }
    }
}

/// The Graph client, when the tenant, the application and its secret are given.
fn graph(t: &Target) -> Option<GraphClient> {
    let secret = std::env::var("AZURE_CLIENT_SECRET").ok()?;
    Some(GraphClient::new(
        t.entra_tenant.as_deref()?,
        t.entra_client_id.as_deref()?,
        &secret,
        t.graph_endpoint.as_deref(),
        t.entra_authority.as_deref(),
    ))
}

/// The GCP IAM client, for a `gcp.*` action: with the key file given, the metadata server's
/// token, or none against a stand-in.
fn gcp(t: &Target, action: &Action) -> anyhow::Result<Option<GcpIamClient>> {
    if !action.name().starts_with("gcp.") {
        return Ok(None);
    }
    let credentials = match &t.gcp_credentials {
        Some(f) => Credentials::ServiceAccount(
            std::fs::read_to_string(f)
                .with_context(|| format!("reading the GCP credentials {}", f.display()))?,
        ),
        None if t.gcp_endpoint.is_some() => Credentials::None,
        None => Credentials::Metadata,
    };
    Ok(Some(GcpIamClient::new(
        credentials,
        t.gcp_endpoint.as_deref(),
    )))
}

fn client(t: &Target) -> Aws {
    Aws::new(Config {
        region: t
            .region
            .clone()
            .or_else(|| std::env::var("AWS_REGION").ok())
            .unwrap_or_else(|| "us-east-1".into()),
        endpoint_url: t.endpoint_url.clone(),
        role_arn: t.role_arn.clone(),
        external_id: None,
        timeout: std::time::Duration::from_secs(30),
    })
}

fn run_action(r: RunArgs) -> anyhow::Result<ExitCode> {
    let Some(action) = parse(&r.action) else {
        return Ok(exit_usage());
    };
    let mut guard = Guard::new(r.protect.clone(), 0);
    if let Err(e) = guard.admit(&action, Utc::now()) {
        eprintln!("error: {e}");
        return Ok(EXIT_FAILED);
    }
    if r.dry_run {
        println!("dry run: {}; would call:", action.describe());
        for call in action.plan() {
            println!("  {call}");
        }
        return Ok(EXIT_OK);
    }
    let (aws, graph) = (client(&r.target), graph(&r.target));
    let gcp = gcp(&r.target, &action)?;
    let clients = Clients {
        aws: Some(&aws),
        graph: graph.as_ref(),
        gcp: gcp.as_ref(),
    };
    let executed = Utc::now();
    let outcome = action.execute(&clients);
    let changed = outcome.result.is_ok();
    let verified = if changed {
        Some(action.verify(&clients).unwrap_or(false))
    } else {
        None
    };
    let record = Record {
        action: action.clone(),
        executed,
        before: outcome.before,
        changed,
        error: outcome.result.as_ref().err().map(RespondError::to_string),
        verified,
    };
    let text = serde_json::to_string_pretty(&record)?;
    match &r.record {
        Some(path) => std::fs::write(path, &text)
            .with_context(|| format!("writing the record to {}", path.display()))?,
        None => println!("{text}"),
    }
    match (&outcome.result, verified) {
        (Ok(()), Some(true)) => {
            eprintln!("done and verified: {}", action.describe());
            Ok(EXIT_OK)
        }
        (Ok(()), _) => {
            eprintln!(
                "error: {}: made, but reading it back does not show it",
                action.describe()
            );
            Ok(EXIT_FAILED)
        }
        (Err(e), _) => {
            eprintln!("error: {}: {e}", action.describe());
            Ok(EXIT_FAILED)
        }
    }
}

fn undo(u: UndoArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&u.record)
        .with_context(|| format!("reading {}", u.record.display()))?;
    let record: Record = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a record of `respond run`", u.record.display()))?;
    let Some(before) = &record.before else {
        eprintln!("nothing to undo: the run changed nothing (it could not read the state before)");
        return Ok(EXIT_OK);
    };
    if u.dry_run {
        println!("dry run: undo {}; would call:", record.action.describe());
        for call in record.action.undo_plan(before) {
            println!("  {call}");
        }
        return Ok(EXIT_OK);
    }
    let (aws, graph) = (client(&u.target), graph(&u.target));
    let gcp = gcp(&u.target, &record.action)?;
    let clients = Clients {
        aws: Some(&aws),
        graph: graph.as_ref(),
        gcp: gcp.as_ref(),
    };
    match record.action.undo(&clients, before) {
        Ok(done) => {
            eprintln!("undone: {}", done.message);
            if let Some(secret) = done.secret {
                println!("{secret}");
            }
            Ok(EXIT_OK)
        }
        Err(e) => {
            eprintln!("error: undo {}: {e}", record.action.describe());
            Ok(EXIT_FAILED)
        }
    }
}
