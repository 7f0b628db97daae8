//! The harness the service and dashboard tests share: the real binary started on 127.0.0.1 with
//! a temporary data directory, and helpers to talk to it.
#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub const ADMIN: &str = "admin";
pub const ADMIN_PASSWORD: &str = "admin-password-for-tests";

/// A running `cloudsentinel serve`, killed when dropped.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub agent: ureq::Agent,
}

impl Server {
    pub fn start(dir: &Path, env: &[(&str, &str)], extra_args: &[&str]) -> Server {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"));
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir)
            .args(extra_args)
            .env("CLOUDSENTINEL_ADMIN_USER", ADMIN)
            .env("CLOUDSENTINEL_ADMIN_PASSWORD", ADMIN_PASSWORD)
            .env("CLOUDSENTINEL_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("the binary starts");
        let stdout = child.stdout.take().expect("piped");
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).expect("a line");
        let base = line
            .trim()
            .strip_prefix("CloudSentinel listening on ")
            .unwrap_or_else(|| panic!("unexpected first line: {line:?}"))
            .to_string();
        Server {
            child,
            base,
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(Duration::from_secs(60)))
                // A fresh connection per request: a pooled one the server has just closed
                // failed a login with "Peer disconnected" about one run in four under load.
                .max_idle_connections_per_host(0)
                .build()
                .into(),
        }
    }

    pub fn addr(&self) -> String {
        self.base.trim_start_matches("http://").to_string()
    }

    /// Sends a request; answers (status, JSON body or Null, raw text).
    pub fn req(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&[u8]>,
    ) -> (u16, Value, String) {
        self.req_h(method, path, auth, body, &[])
    }

    pub fn req_h(
        &self,
        method: &str,
        path: &str,
        auth: Option<&str>,
        body: Option<&[u8]>,
        headers: &[(&str, &str)],
    ) -> (u16, Value, String) {
        let url = format!("{}{}", self.base, path);
        let auth_header = auth.map(|a| {
            if a.starts_with("csk_") {
                ("x-api-key".to_string(), a.to_string())
            } else {
                ("authorization".to_string(), format!("Bearer {a}"))
            }
        });
        let result = match method {
            "GET" | "DELETE" => {
                let mut r = if method == "GET" {
                    self.agent.get(&url)
                } else {
                    self.agent.delete(&url)
                };
                if let Some((k, v)) = &auth_header {
                    r = r.header(k.as_str(), v.as_str());
                }
                for (k, v) in headers {
                    r = r.header(*k, *v);
                }
                r.call()
            }
            _ => {
                let mut r = match method {
                    "POST" => self.agent.post(&url),
                    "PATCH" => self.agent.patch(&url),
                    "PUT" => self.agent.put(&url),
                    m => panic!("method {m}"),
                };
                if let Some((k, v)) = &auth_header {
                    r = r.header(k.as_str(), v.as_str());
                }
                let mut has_type = false;
                for (k, v) in headers {
                    has_type |= k.eq_ignore_ascii_case("content-type");
                    r = r.header(*k, *v);
                }
                if !has_type {
                    r = r.header("content-type", "application/json");
                }
                r.send(body.unwrap_or(b""))
            }
        };
        let mut resp = result.unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let text = resp.body_mut().read_to_string().unwrap_or_default();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::Null),
            text,
        )
    }

    pub fn get(&self, path: &str, token: &str) -> Value {
        let (status, v, text) = self.req("GET", path, Some(token), None);
        assert_eq!(status, 200, "GET {path}: {text}");
        v
    }

    pub fn login(&self, user: &str, password: &str) -> String {
        let body = json!({"username": user, "password": password}).to_string();
        let (status, v, text) = self.req("POST", "/api/v1/auth/login", None, Some(body.as_bytes()));
        assert_eq!(status, 200, "login {user}: {text}");
        v["access_token"].as_str().expect("a token").to_string()
    }

    pub fn admin(&self) -> String {
        self.login(ADMIN, ADMIN_PASSWORD)
    }

    /// Registers a user with a role (as the admin whose token is `admin`) and signs them in;
    /// answers their token.
    pub fn user(&self, admin: &str, name: &str, role: &str) -> String {
        let password = "password-for-tests-1";
        let body = json!({"username": name, "password": password, "role": role}).to_string();
        let (status, _, text) = self.req(
            "POST",
            "/api/v1/auth/register",
            Some(admin),
            Some(body.as_bytes()),
        );
        assert_eq!(status, 201, "register {name}: {text}");
        self.login(name, password)
    }

    pub fn api_key(&self, admin: &str) -> String {
        let (status, v, text) = self.req(
            "POST",
            "/api/v1/api-keys",
            Some(admin),
            Some(br#"{"name":"test-shipper"}"#),
        );
        assert_eq!(status, 201, "{text}");
        v["key"].as_str().expect("key").to_string()
    }

    pub fn stop(mut self) -> std::process::ExitStatus {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(s) = self.child.try_wait().expect("wait") {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "the server did not stop on SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn testdata(p: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata")
        .join(p)
}

/// The attack story fixture without its deliberately broken line.
pub fn story_lines() -> Vec<String> {
    std::fs::read_to_string(testdata("cloudtrail/attack_story.jsonl"))
        .unwrap()
        .lines()
        .filter(|l| serde_json::from_str::<Value>(l).is_ok())
        .map(str::to_string)
        .collect()
}

/// `n` CloudTrail records with ids `<prefix>-<i>`, a few of them attacks (StopLogging).
pub fn records(prefix: &str, n: usize) -> Vec<Value> {
    (0..n)
        .map(|i| {
            let attack = i % 50 == 7;
            json!({
                "eventVersion": "1.09",
                "userIdentity": {"type": "IAMUser", "principalId": "AIDAEXAMPLE", "arn": format!("arn:aws:iam::111122223333:user/u{}", i % 5),
                                  "accountId": "111122223333", "accessKeyId": format!("AKIAEXAMPLE0000{}", i % 5), "userName": format!("u{}", i % 5)},
                "eventTime": format!("2026-11-20T10:{:02}:{:02}Z", (i / 60) % 60, i % 60),
                "eventSource": if attack { "cloudtrail.amazonaws.com" } else { "ec2.amazonaws.com" },
                "eventName": if attack { "StopLogging" } else { "DescribeInstances" },
                "awsRegion": "us-east-1",
                "sourceIPAddress": "203.0.113.9",
                "userAgent": "aws-cli/2.15.30",
                "requestParameters": if attack { json!({"name": "main-trail"}) } else { Value::Null },
                "responseElements": null,
                "eventID": format!("{prefix}-{i}"),
                "readOnly": !attack,
                "eventType": "AwsApiCall",
                "managementEvent": true,
                "recipientAccountId": "111122223333",
                "eventCategory": "Management"
            })
        })
        .collect()
}

pub fn jsonl(records: &[Value]) -> Vec<u8> {
    records
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n")
        .into_bytes()
}

/// A URL query component, percent-encoded.
pub fn urlenc(v: &str) -> String {
    v.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

pub fn total(v: &Value) -> u64 {
    v["total"].as_u64().expect("a total")
}

impl Server {
    /// Signs in to the dashboard as the admin; answers the session's `Cookie` header.
    pub fn ui_cookies(&self) -> String {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .build()
            .into();
        let mut resp = agent
            .post(&format!("{}/ui/login", self.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .send(format!("username={ADMIN}&password={ADMIN_PASSWORD}").as_bytes())
            .unwrap();
        let cookies: Vec<String> = resp
            .headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok()?.split(';').next().map(str::to_string))
            .collect();
        let _ = resp.body_mut().read_to_string();
        cookies.join("; ")
    }
}

/// Runs a Python helper from tests/support with `input` on its standard input.
pub fn python(script: &str, input: &[u8]) -> std::process::Output {
    use std::io::Write;
    let mut child = Command::new("python3")
        .arg(
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/support")
                .join(script),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    child
        .stdin
        .take()
        .expect("piped")
        .write_all(input)
        .expect("the helper reads its input");
    child.wait_with_output().expect("the helper ends")
}

/// moto's server on a free port, killed when dropped.
pub struct Moto {
    pub child: Child,
    pub endpoint: String,
    /// With IAM enforced ([`Moto::start_enforcing`]): the access key id and secret of an
    /// administrator, which [`Moto::run`] signs with; `testing`/`testing` otherwise.
    pub admin: Option<(String, String)>,
}

impl Moto {
    /// Anyone may do anything: requests need not be signed with a key moto knows.
    pub fn start() -> Moto {
        Moto::start_with(&[])
    }

    /// IAM enforced as AWS does: each request must be signed with an access key that exists in
    /// moto, and the key's user's policies must allow it, or moto answers AccessDenied. moto
    /// lets the first `INITIAL_NO_AUTH_ACTION_COUNT` requests through unchecked (moto/core/
    /// authorization.py); exactly the three the `iam-admin` op makes, which create an
    /// administrator everything else (setup, state reads) then signs with.
    pub fn start_enforcing() -> Moto {
        let mut moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "3")]);
        let admin = moto.run(json!({"op": "iam-admin", "user": "moto-admin"}));
        assert_eq!(
            admin["unknown_key"], "InvalidClientTokenId",
            "moto lets a key it does not know through: {admin}"
        );
        moto.admin = Some(Moto::key_of(&admin));
        moto
    }

    /// The (access key id, secret) an `iam-admin` or `iam-limited-user` op answers.
    pub fn key_of(answer: &Value) -> (String, String) {
        let field = |f: &str| {
            answer[f]
                .as_str()
                .unwrap_or_else(|| panic!("no {f} in {answer}"))
                .to_string()
        };
        (field("access_key_id"), field("secret_access_key"))
    }

    fn start_with(env: &[(&str, &str)]) -> Moto {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("python3 runs");
        let endpoint = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(30);
        // moto's own API: not an AWS request, so not one of the unchecked ones.
        while ureq::get(&format!("{endpoint}/moto-api/")).call().is_err() {
            assert!(
                Instant::now() < deadline,
                "moto's server did not start: python3 -m pip install 'moto[server]' (.ci/run does)"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        Moto {
            child,
            endpoint,
            admin: None,
        }
    }

    pub fn run(&self, mut cmd: Value) -> Value {
        cmd["endpoint"] = json!(self.endpoint);
        if let Some((id, secret)) = &self.admin {
            cmd["credentials"] = json!({"access_key_id": id, "secret_access_key": secret});
        }
        let out = python("aws_emulator.py", cmd.to_string().as_bytes());
        assert!(
            out.status.success(),
            "aws_emulator.py {cmd}: {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A fresh PostgreSQL database on the test server (`CLOUDSENTINEL_TEST_POSTGRES`, by default
/// `postgres://postgres@127.0.0.1:5432/postgres`, which `.ci/run` starts), dropped afterwards.
#[allow(dead_code)]
pub struct PgDb {
    pub name: String,
    admin: String,
}

#[allow(dead_code)]
impl PgDb {
    pub fn create() -> PgDb {
        static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
        let admin = std::env::var("CLOUDSENTINEL_TEST_POSTGRES")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".into());
        let name = format!(
            "cs_it_{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        let mut c = postgres::Client::connect(&admin, postgres::NoTls).unwrap_or_else(|e| {
            panic!(
                "PostgreSQL is not reachable at {admin} ({e}): start it (bash .ci/run does) or \
                 point CLOUDSENTINEL_TEST_POSTGRES at one"
            )
        });
        c.batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            .unwrap();
        c.batch_execute(&format!("CREATE DATABASE {name}")).unwrap();
        PgDb { name, admin }
    }

    /// The database's URL.
    pub fn url(&self) -> String {
        let (base, _) = self.admin.rsplit_once('/').expect("a URL with a database");
        format!("{base}/{}", self.name)
    }

    /// The environment that makes the service use this database.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("CLOUDSENTINEL_STORAGE__BACKEND".into(), "postgres".into()),
            ("CLOUDSENTINEL_STORAGE__POSTGRES_URL".into(), self.url()),
        ]
    }

    /// Runs one query and answers the first column of its first row as text.
    pub fn scalar(&self, sql: &str) -> Option<String> {
        let mut c = postgres::Client::connect(&self.url(), postgres::NoTls).unwrap();
        c.query_opt(&format!("SELECT ({sql})::text"), &[])
            .unwrap()
            .and_then(|r| r.get::<_, Option<String>>(0))
    }
}

impl Drop for PgDb {
    fn drop(&mut self) {
        if let Ok(mut c) = postgres::Client::connect(&self.admin, postgres::NoTls) {
            let _ = c.batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ));
        }
    }
}

/// An alert as (rule, entity, first seen, last seen, count, evidence ids); times to the
/// millisecond, the precision the store keeps.
#[allow(dead_code)]
pub type AlertKey = (String, String, String, String, u64, Vec<String>);

#[allow(dead_code)]
pub fn alert_key(a: &Value) -> AlertKey {
    let time = |v: &Value| {
        chrono::DateTime::parse_from_rfc3339(v.as_str().expect("a time"))
            .expect("an RFC 3339 time")
            .with_timezone(&chrono::Utc)
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    (
        a["rule_id"].as_str().unwrap().to_string(),
        a["entity"].as_str().unwrap().to_string(),
        time(&a["first_seen"]),
        time(&a["last_seen"]),
        a["count"].as_u64().unwrap(),
        a["event_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect(),
    )
}

/// Fails listing the differences when two alert sets differ.
#[allow(dead_code)]
pub fn assert_same_alerts(expected: &[AlertKey], got: &[AlertKey]) {
    let only_expected: Vec<&AlertKey> = expected.iter().filter(|a| !got.contains(a)).collect();
    let only_got: Vec<&AlertKey> = got.iter().filter(|a| !expected.contains(a)).collect();
    assert!(
        only_expected.is_empty() && only_got.is_empty() && expected.len() == got.len(),
        "{} alerts expected, {} got\nonly expected: {only_expected:#?}\nonly got: {only_got:#?}",
        expected.len(),
        got.len()
    );
}

#[allow(dead_code)]
impl Server {
    /// Every alert the service holds (informational ones too), sorted.
    pub fn all_alerts(&self, token: &str) -> Vec<AlertKey> {
        let mut all: Vec<AlertKey> = self
            .all_alert_records(token)
            .iter()
            .map(alert_key)
            .collect();
        all.sort();
        all
    }

    /// Every alert the service holds (informational ones too), as the API gives them.
    pub fn all_alert_records(&self, token: &str) -> Vec<Value> {
        let mut all = Vec::new();
        loop {
            let page = self.get(
                &format!(
                    "/api/v1/alerts?min_level=informational&limit=500&offset={}",
                    all.len()
                ),
                token,
            );
            let items = page["items"].as_array().unwrap();
            if items.is_empty() {
                break;
            }
            all.extend(items.iter().cloned());
        }
        all
    }

    /// A counter of `/metrics`.
    pub fn metric(&self, name: &str) -> u64 {
        let (status, _, text) = self.req("GET", "/metrics", None, None);
        assert_eq!(status, 200, "{text}");
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or_else(|| panic!("no metric {name} in {text}"))
    }
}

/// A day of the demo organisation (all three clouds and its attack stories), seed 11.
#[allow(dead_code)]
pub struct Scenario {
    pub path: PathBuf,
}

#[allow(dead_code)]
impl Scenario {
    pub fn day(dir: &Path) -> Scenario {
        let data = dir.join("scenario");
        let status = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .args(["generate", "--scenario", "1", "--seed", "11", "-o"])
            .arg(&data)
            .output()
            .unwrap();
        assert!(status.status.success(), "{status:?}");
        Scenario {
            path: data.join("scenario.jsonl"),
        }
    }

    /// What `hunt` raises from it, behaviour and hindsight left out (as the service learns
    /// behaviour as events come, and has no hindsight).
    pub fn hunt_alerts(&self) -> Vec<AlertKey> {
        let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .args([
                "hunt",
                "--no-anomaly",
                "--no-hindsight",
                "--min-level",
                "informational",
                "--format",
                "jsonl",
                "--quiet",
            ])
            .arg(&self.path)
            .output()
            .unwrap();
        assert!(out.status.success(), "{out:?}");
        let mut alerts: Vec<AlertKey> = String::from_utf8(out.stdout)
            .unwrap()
            .lines()
            .map(|l| alert_key(&serde_json::from_str(l).unwrap()))
            .collect();
        alerts.sort();
        assert!(
            alerts.len() > 50 && alerts.iter().any(|a| a.4 > 10),
            "a day gives many alerts, some of many signals: {}",
            alerts.len()
        );
        alerts
    }

    /// Its records in file order, in batches (at most 500) of one provider's consecutive
    /// records: (provider, JSON Lines body).
    pub fn batches(&self) -> Vec<(&'static str, String)> {
        let text = std::fs::read_to_string(&self.path).unwrap();
        let provider = |line: &str| {
            let v: Value = serde_json::from_str(line).unwrap();
            if v.get("eventSource").is_some() {
                "aws"
            } else if v.get("protoPayload").is_some() {
                "gcp"
            } else {
                "azure"
            }
        };
        let mut out: Vec<(&'static str, Vec<&str>)> = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let p = provider(line);
            match out.last_mut() {
                Some((q, batch)) if *q == p && batch.len() < 500 => batch.push(line),
                _ => out.push((p, vec![line])),
            }
        }
        out.into_iter().map(|(p, b)| (p, b.join("\n"))).collect()
    }
}
