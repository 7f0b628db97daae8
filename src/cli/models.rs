//! `cloudsentinel models`: the model registry of a running service, over its REST API: list,
//! show, train (in the background, optionally waiting), activate, roll back.
//!
//! Signs in as a user (admin for train, activate and rollback; any role to read). The password
//! comes from `CLOUDSENTINEL_PASSWORD` or `--password-file`, never from the command line, where
//! other users of the machine could read it; `CLOUDSENTINEL_TOKEN` may hold an access token instead.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::Value;

use super::{EXIT_FAILED, EXIT_OK};

#[derive(Args)]
pub struct ModelsArgs {
    #[command(flatten)]
    pub conn: Connection,
    #[command(subcommand)]
    pub command: ModelsCommand,
}

#[derive(Args)]
pub struct Connection {
    /// The service's address.
    #[arg(
        long,
        global = true,
        env = "CLOUDSENTINEL_URL",
        default_value = "http://127.0.0.1:8000"
    )]
    pub url: String,
    /// Who signs in.
    #[arg(
        long,
        global = true,
        env = "CLOUDSENTINEL_USER",
        default_value = "admin"
    )]
    pub user: String,
    /// A file holding the password (its first line). Otherwise CLOUDSENTINEL_PASSWORD.
    #[arg(long, global = true, value_name = "PATH")]
    pub password_file: Option<PathBuf>,
    /// Print the API's JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
}

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// The models in the registry, newest first, and which are active.
    List {
        /// Only `anomaly` or `feedback` models.
        #[arg(long)]
        name: Option<String>,
    },
    /// One model: its training window, metrics and parameters.
    Show { id: i64 },
    /// Train a model in the background from the stored events (anomaly) or feedback (feedback).
    Train {
        /// `anomaly` or `feedback`.
        name: String,
        /// Start of the training window (RFC 3339); default: all stored events.
        #[arg(long)]
        since: Option<String>,
        #[arg(long)]
        until: Option<String>,
        /// Activate the model as soon as it is ready.
        #[arg(long)]
        activate: bool,
        /// Wait until training ends, showing progress; fail if training fails.
        #[arg(long)]
        wait: bool,
    },
    /// Make a ready model the one the pipeline uses, at once.
    Activate { id: i64 },
    /// Go back to the previously active model of this name (or to none).
    Rollback {
        /// `anomaly` or `feedback`.
        name: String,
    },
    /// The feature schema the models are trained on.
    Schema,
}

struct Api {
    agent: ureq::Agent,
    url: String,
    token: String,
}

impl Api {
    fn connect(c: &Connection) -> anyhow::Result<Api> {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            // A handful of requests: a fresh connection each, never one the server has closed.
            .max_idle_connections_per_host(0)
            .build()
            .into();
        let url = c.url.trim_end_matches('/').to_string();
        if let Ok(token) = std::env::var("CLOUDSENTINEL_TOKEN")
            && !token.is_empty()
        {
            return Ok(Api { agent, url, token });
        }
        let password = match &c.password_file {
            Some(p) => std::fs::read_to_string(p)
                .with_context(|| format!("--password-file {}", p.display()))?
                .lines()
                .next()
                .unwrap_or_default()
                .to_string(),
            None => std::env::var("CLOUDSENTINEL_PASSWORD").map_err(|_| {
                anyhow::anyhow!(
                    "no password: set CLOUDSENTINEL_PASSWORD or pass --password-file (or CLOUDSENTINEL_TOKEN)"
                )
            })?,
        };
        let api = Api {
            agent,
            url,
            token: String::new(),
        };
        let v = api.call(
            "POST",
            "/api/v1/auth/login",
            Some(serde_json::json!({"username": c.user, "password": password})),
        )?;
        let token = v["access_token"]
            .as_str()
            .context("the login answer has no access_token")?
            .to_string();
        Ok(Api { token, ..api })
    }

    /// One request; a non-2xx answer is an error carrying the service's message.
    fn call(&self, method: &str, path: &str, body: Option<Value>) -> anyhow::Result<Value> {
        let url = format!("{}{path}", self.url);
        let auth = format!("Bearer {}", self.token);
        let mut resp = match method {
            "GET" => self.agent.get(&url).header("authorization", &auth).call(),
            _ => self
                .agent
                .post(&url)
                .header("authorization", &auth)
                .header("content-type", "application/json")
                .send(body.unwrap_or(Value::Null).to_string()),
        }
        .with_context(|| format!("cannot reach {} (is the service running? --url)", self.url))?;
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::String(text.clone()));
        if !(200..300).contains(&status) {
            let msg = v
                .get("error")
                .and_then(|e| e.get("message").or(Some(e)))
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or(text);
            anyhow::bail!("{method} {path}: {status}: {msg}");
        }
        Ok(v)
    }
}

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn run(args: ModelsArgs) -> anyhow::Result<ExitCode> {
    let api = Api::connect(&args.conn)?;
    let json = args.conn.json;
    let print = |v: &Value| println!("{}", serde_json::to_string_pretty(v).unwrap_or_default());
    match args.command {
        ModelsCommand::List { name } => {
            let path = match &name {
                Some(n) => format!("/api/v1/models?model_name={}", enc(n)),
                None => "/api/v1/models".into(),
            };
            let v = api.call("GET", &path, None)?;
            if json {
                print(&v);
            } else {
                table(&v);
            }
        }
        ModelsCommand::Show { id } => {
            let v = api.call("GET", &format!("/api/v1/models/{id}"), None)?;
            if json {
                print(&v);
            } else {
                show(&v);
            }
        }
        ModelsCommand::Schema => print(&api.call("GET", "/api/v1/models/schema", None)?),
        ModelsCommand::Train {
            name,
            since,
            until,
            activate,
            wait,
        } => {
            let mut q = vec![format!("model_name={}", enc(&name))];
            if let Some(s) = since {
                q.push(format!("since={}", enc(&s)));
            }
            if let Some(u) = until {
                q.push(format!("until={}", enc(&u)));
            }
            if activate {
                q.push("activate=true".into());
            }
            let v = api.call(
                "POST",
                &format!("/api/v1/models/train?{}", q.join("&")),
                None,
            )?;
            let id = v["id"].as_i64().context("the answer has no model id")?;
            if !wait {
                if json {
                    print(&v);
                } else {
                    println!(
                        "training {name} model {id} (version {}) in the background: `cloudsentinel models show {id}` follows it",
                        v["version"]
                    );
                }
                return Ok(EXIT_OK);
            }
            let started = Instant::now();
            let mut last = -1.0;
            let done = loop {
                let m = api.call("GET", &format!("/api/v1/models/{id}"), None)?;
                if m["status"] != "training" {
                    break m;
                }
                let p = m["progress"].as_f64().unwrap_or(0.0);
                if !json && (p - last).abs() >= 0.05 {
                    eprintln!("training {name} model {id}: {:.0}%", p * 100.0);
                    last = p;
                }
                std::thread::sleep(Duration::from_millis(500));
            };
            if json {
                print(&done);
            } else {
                eprintln!("finished in {:.1}s", started.elapsed().as_secs_f64());
                show(&done);
            }
            if done["status"] != "ready" {
                return Ok(EXIT_FAILED);
            }
        }
        ModelsCommand::Activate { id } => {
            let v = api.call("POST", &format!("/api/v1/models/{id}/activate"), None)?;
            if json {
                print(&v);
            } else {
                println!(
                    "{} model {id} (version {}) is active",
                    v["name"].as_str().unwrap_or("?"),
                    v["version"]
                );
            }
        }
        ModelsCommand::Rollback { name } => {
            let v = api.call(
                "POST",
                &format!("/api/v1/models/rollback?model_name={}", enc(&name)),
                None,
            )?;
            if json {
                print(&v);
            } else {
                match v.get("active").filter(|a| !a.is_null()) {
                    Some(m) => println!(
                        "{name}: model {} (version {}) is active again",
                        m["id"], m["version"]
                    ),
                    None => println!("{name}: no model is active now"),
                }
            }
        }
    }
    Ok(EXIT_OK)
}

fn text(v: &Value) -> String {
    match v {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn metrics_line(m: &Value) -> String {
    let keys = [
        "auc",
        "precision",
        "recall",
        "threshold",
        "trained_on",
        "target_rate",
        "labels",
    ];
    keys.iter()
        .filter_map(|k| {
            m.get(*k)
                .filter(|x| !x.is_null())
                .map(|x| match x.as_f64() {
                    Some(f) if f.fract() != 0.0 => format!("{k} {f:.3}"),
                    _ => format!("{k} {}", text(x)),
                })
        })
        .collect::<Vec<_>>()
        .join(", ")
}

fn table(v: &Value) {
    let items = v["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!(
            "no models yet: `cloudsentinel models train anomaly` trains one from the stored events"
        );
        return;
    }
    println!(
        "{:>4}  {:<9} {:>3}  {:<8} {:<6} {:>8}  {:<20} {:<10} metrics",
        "id", "name", "ver", "status", "active", "samples", "created", "by"
    );
    for m in &items {
        println!(
            "{:>4}  {:<9} {:>3}  {:<8} {:<6} {:>8}  {:<20} {:<10} {}",
            text(&m["id"]),
            text(&m["name"]),
            text(&m["version"]),
            text(&m["status"]),
            if m["active"] == true { "yes" } else { "" },
            text(&m["samples"]),
            text(&m["created"]).chars().take(19).collect::<String>(),
            text(&m["trained_by"]),
            if m["status"] == "failed" {
                text(&m["message"])
            } else {
                metrics_line(&m["metrics"])
            }
        );
    }
    let training = v["training"].as_array().cloned().unwrap_or_default();
    if !training.is_empty() {
        println!(
            "training now: {}",
            training.iter().map(text).collect::<Vec<_>>().join(", ")
        );
    }
}

fn show(m: &Value) {
    for k in [
        "id",
        "name",
        "version",
        "status",
        "progress",
        "message",
        "active",
        "activated",
        "created",
        "finished",
        "trained_by",
        "window_from",
        "window_to",
        "samples",
        "schema",
    ] {
        println!("{k:<12} {}", text(&m[k]));
    }
    println!(
        "metrics      {}",
        serde_json::to_string(&m["metrics"]).unwrap_or_default()
    );
    println!(
        "params       {}",
        serde_json::to_string(&m["params"]).unwrap_or_default()
    );
}
