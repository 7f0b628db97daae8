//! Alert delivery end to end: the real service with `[[notify]]` sinks pointed at local stand-ins
//! that speak each receiver's protocol (tests/support/standins.py: a signature-checking
//! webhook receiver, Slack's incoming webhook, PagerDuty's Events API v2, ServiceNow's Table
//! API, an OCSF collector) and a real SMTP server (aiosmtpd, STARTTLS and AUTH).
//!
//! Needs python3 with aiosmtpd, pydantic and py-ocsf-models (.ci/run installs them).

mod support;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const SECRET: &str = "whsec-test-0123456789";
const PD_KEY: &str = "R0123456789abcdef0123456789abcde";
const SNOW_PASSWORD: &str = "snow-pass-123";

/// A Python stand-in, killed when dropped.
struct Standin {
    child: Child,
    port: u16,
}

impl Standin {
    fn start(script: &str, args: &[&str]) -> Standin {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/support")
            .join(script);
        let mut child = Command::new("python3")
            .arg(&path)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line
            .trim()
            .strip_prefix("listening on ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| {
                panic!(
                    "{script} did not start ({line:?}); it needs python3 with aiosmtpd, pydantic and py-ocsf-models: python3 -m pip install aiosmtpd py-ocsf-models (.ci/run does it)"
                )
            });
        Standin { child, port }
    }

    /// The HTTP receivers (webhook, Slack, PagerDuty, ServiceNow, OCSF collector).
    fn receivers() -> Standin {
        Standin::start(
            "standins.py",
            &[
                "--secret",
                SECRET,
                "--user",
                "cs",
                "--password",
                SNOW_PASSWORD,
            ],
        )
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    fn received(&self) -> Value {
        ureq::get(&self.url("/_received"))
            .call()
            .unwrap()
            .body_mut()
            .read_to_string()
            .map(|t| serde_json::from_str(&t).unwrap())
            .unwrap()
    }

    fn set_down(&self, down: bool) {
        ureq::post(&self.url(if down { "/_down" } else { "/_up" }))
            .send("")
            .unwrap();
    }
}

impl Drop for Standin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &Path, s: &Standin) -> PathBuf {
    let path = dir.join("notify.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
public_url = "https://cloudsentinel.example.com"

[[notify]]
name = "soc"
kind = "webhook"
url = "{webhook}"
secret_env = "CS_TEST_HOOK_SECRET"
min_level = "low"

[[notify]]
name = "chat"
kind = "slack"
url_env = "CS_TEST_SLACK_URL"

[[notify]]
name = "pager"
kind = "pagerduty"
url = "{pd}"
secret_env = "CS_TEST_PD_KEY"
min_level = "high"

[[notify]]
name = "pager-incidents"
kind = "pagerduty"
url = "{pd}"
secret_env = "CS_TEST_PD_KEY"
incidents = true

[[notify]]
name = "itsm"
kind = "servicenow"
url = "{snow}"
username = "cs"
secret_env = "CS_TEST_SNOW_PASSWORD"

[[notify]]
name = "lake"
kind = "ocsf"
path = "{lake}"
min_level = "low"

[[notify]]
name = "collector"
kind = "ocsf"
url = "{collector}"
secret_env = "CS_TEST_HOOK_SECRET"
min_level = "low"
"#,
            webhook = s.url("/webhook"),
            pd = s.url("/v2/enqueue"),
            snow = s.url(""),
            lake = dir.join("findings.jsonl").display(),
            collector = s.url("/ocsf"),
        ),
    )
    .unwrap();
    path
}

fn env(s: &Standin) -> Vec<(&'static str, String)> {
    vec![
        ("CS_TEST_HOOK_SECRET", SECRET.to_string()),
        ("CS_TEST_SLACK_URL", s.url("/slack/T000/B000/XXXXXXXX")),
        ("CS_TEST_PD_KEY", PD_KEY.to_string()),
        ("CS_TEST_SNOW_PASSWORD", SNOW_PASSWORD.to_string()),
        // The failures these tests cause on purpose are logged as warnings.
        ("CLOUDSENTINEL_LOG", "error".to_string()),
    ]
}

fn start(dir: &Path, config: &Path, s: &Standin) -> Server {
    let env = env(s);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Server::start(
        &dir.join("data"),
        &env,
        &["--config", config.to_str().unwrap()],
    )
}

/// Waits until no sink has pending deliveries (and at least `min_sent` were sent).
fn settle(s: &Server, token: &str, min_sent: u64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = s.get("/api/v1/notifications", token);
        let sinks = v["sinks"].as_array().unwrap();
        let pending: u64 = sinks.iter().map(|x| x["pending"].as_u64().unwrap()).sum();
        let sent: u64 = sinks.iter().map(|x| x["sent"].as_u64().unwrap()).sum();
        if pending == 0 && sent >= min_sent {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "deliveries did not settle: {v:#}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn alerts(s: &Server, token: &str, min_level: &str) -> Vec<Value> {
    s.get(
        &format!("/api/v1/alerts?min_level={min_level}&limit=500"),
        token,
    )["items"]
        .as_array()
        .unwrap()
        .clone()
}

fn ids(v: &[Value]) -> Vec<i64> {
    let mut ids: Vec<i64> = v.iter().map(|a| a["id"].as_i64().unwrap()).collect();
    ids.sort();
    ids
}

fn validate_ocsf(lines: &str) {
    let out = python("ocsf_validate.py", lines.as_bytes());
    assert!(
        out.status.success(),
        "OCSF validation: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}

#[test]
fn every_sink_hears_of_alert_changes_once_in_its_own_protocol() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::receivers();
    let config = write_config(dir.path(), &standin);
    let s = start(dir.path(), &config, &standin);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let body = story_lines().join("\n");
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    let low = alerts(&s, &admin, "low");
    let medium = alerts(&s, &admin, "medium");
    let high = alerts(&s, &admin, "high");
    assert!(
        !high.is_empty() && medium.len() < low.len() + 1,
        "the story raises alerts at several levels"
    );
    settle(&s, &admin, low.len() as u64);
    let got = standin.received();
    assert_eq!(
        got["refused"],
        json!([]),
        "a receiver refused a message: {got:#}"
    );

    // The webhook: one signed `alert.created` per alert at low and above, each delivery once.
    let hooks = got["webhook"].as_array().unwrap();
    let created: Vec<Value> = hooks
        .iter()
        .filter(|h| h["event"] == "alert.created")
        .map(|h| h["body"]["alert"].clone())
        .collect();
    assert_eq!(ids(&created), ids(&low));
    let mut deliveries: Vec<&str> = hooks
        .iter()
        .map(|h| h["delivery"].as_str().unwrap())
        .collect();
    deliveries.sort();
    deliveries.dedup();
    assert_eq!(deliveries.len(), hooks.len(), "a delivery arrived twice");
    let first = &hooks[0]["body"];
    assert_eq!(
        first["url"],
        format!(
            "https://cloudsentinel.example.com/ui/alerts/{}",
            first["alert"]["id"]
        )
    );
    // Slack (default level medium), ServiceNow (medium), PagerDuty (high).
    assert_eq!(got["slack"].as_array().unwrap().len(), medium.len());
    let slack = &got["slack"][0];
    assert!(
        slack["blocks"][1]["fields"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["text"].as_str().unwrap().starts_with("*Who*"))
    );
    let snow: Vec<&Value> = got["servicenow"].as_object().unwrap().values().collect();
    assert_eq!(
        snow.len(),
        medium.len(),
        "one ServiceNow incident per alert"
    );
    let pd = got["pagerduty_incidents"].as_object().unwrap();
    let per_alert: Vec<&Value> = pd
        .iter()
        .filter(|(k, _)| k.starts_with("cloudsentinel-alert-"))
        .map(|(_, v)| v)
        .collect();
    assert_eq!(per_alert.len(), high.len());
    assert!(
        per_alert
            .iter()
            .all(|i| i["status"] == "triggered" && i["triggers"] == 1)
    );
    // The incident sink pages once per incident at medium and above, however many alerts it has.
    let incidents = s.get("/api/v1/incidents?limit=100", &admin)["items"]
        .as_array()
        .unwrap()
        .clone();
    let paged: Vec<i64> = incidents
        .iter()
        .filter(|i| ["medium", "high", "critical"].contains(&i["level"].as_str().unwrap()))
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert!(!paged.is_empty());
    for id in &paged {
        let page = &pd[&format!("cloudsentinel-incident-{id}")];
        assert_eq!(page["status"], "triggered", "incident {id}: {pd:#?}");
    }
    assert_eq!(
        pd.keys()
            .filter(|k| k.starts_with("cloudsentinel-incident-"))
            .count(),
        paged.len()
    );
    // OCSF: the file and the collector got the same findings, valid against the schema.
    let lake = std::fs::read_to_string(dir.path().join("findings.jsonl")).unwrap();
    assert_eq!(lake.lines().count(), low.len());
    assert_eq!(got["ocsf"].as_array().unwrap().len(), low.len());
    validate_ocsf(&lake);

    // An analyst resolves a high alert: PagerDuty resolves, ServiceNow closes with a code,
    // the webhook and OCSF say so; nobody hears of it twice.
    let target = high[0]["id"].as_i64().unwrap();
    let (status, _, text) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{target}"),
        Some(&admin),
        Some(br#"{"status":"resolved"}"#),
    );
    assert_eq!(status, 200, "{text}");
    let (status, _, _) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{target}"),
        Some(&admin),
        Some(br#"{"status":"resolved","comment":"same status again"}"#),
    );
    assert_eq!(status, 200);
    settle(&s, &admin, low.len() as u64 + 5);
    let got = standin.received();
    assert_eq!(got["refused"], json!([]), "{got:#}");
    let resolved: Vec<&Value> = got["webhook"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["event"] == "alert.resolved")
        .collect();
    assert_eq!(resolved.len(), 1);
    assert_eq!(resolved[0]["body"]["alert"]["id"], target);
    assert_eq!(
        got["pagerduty_incidents"][format!("cloudsentinel-alert-{target}")]["status"],
        "resolved"
    );
    let closed: Vec<&Value> = got["servicenow"]
        .as_object()
        .unwrap()
        .values()
        .filter(|i| i["correlation_id"] == format!("cloudsentinel-alert-{target}"))
        .collect();
    assert_eq!(closed.len(), 1);
    assert_eq!(closed[0]["state"], "6");
    assert_eq!(closed[0]["close_code"], "Solution provided");
    let lake = std::fs::read_to_string(dir.path().join("findings.jsonl")).unwrap();
    assert_eq!(
        lake.lines()
            .filter(|l| l.contains("\"activity_id\":3"))
            .count(),
        1
    );
    validate_ocsf(&lake);

    // An analyst closes an incident: its page resolves.
    let incident = paged[0];
    let (status, _, text) = s.req(
        "PATCH",
        &format!("/api/v1/incidents/{incident}"),
        Some(&admin),
        Some(br#"{"status":"closed","close_reason":"contained: key disabled"}"#),
    );
    assert_eq!(status, 200, "{text}");
    settle(&s, &admin, 0);
    assert_eq!(
        standin.received()["pagerduty_incidents"][format!("cloudsentinel-incident-{incident}")]["status"],
        "resolved"
    );

    // The dashboard shows who was told on the alert's page, and every sink's state.
    let cookies = s.ui_cookies();
    let (status, _, page) = s.req_h(
        "GET",
        &format!("/ui/alerts/{target}"),
        None,
        None,
        &[("cookie", &cookies)],
    );
    assert_eq!(status, 200);
    let notified = &page[page.find("id=\"notified\"").expect("a Notified section")..];
    assert!(
        notified.contains(">pager<")
            && notified.contains(">resolved<")
            && notified.contains(">sent<"),
        "{notified}"
    );
    let (status, _, page) = s.req_h(
        "GET",
        "/ui/notifications",
        None,
        None,
        &[("cookie", &cookies)],
    );
    assert_eq!(status, 200);
    for sink in [
        "soc",
        "chat",
        "pager",
        "pager-incidents",
        "itsm",
        "lake",
        "collector",
    ] {
        assert!(page.contains(&format!(">{sink}<")), "{sink} listed");
    }

    // The test button: a delivery like any other, in the audit log.
    let (status, v, text) = s.req("POST", "/api/v1/notifications/soc/test", Some(&admin), None);
    assert_eq!(status, 200, "{text}");
    assert_eq!(v["status"], "sent", "{v}");
    let audit = s.get("/api/v1/audit?limit=50", &admin);
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "notify.test")
    );
    assert!(
        audit["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["action"] == "notify.sinks_changed")
    );
    let metrics = s
        .agent
        .get(format!("{}/metrics", s.base))
        .call()
        .unwrap()
        .body_mut()
        .read_to_string()
        .unwrap();
    assert!(
        metrics.contains("cloudsentinel_notify_sent_total{sink=\"soc\",kind=\"webhook\"}"),
        "{metrics}"
    );
    // Every sent message is in the latency histogram.
    let count = metrics
        .lines()
        .find_map(|l| {
            l.strip_prefix(
                "cloudsentinel_notify_latency_seconds_count{sink=\"soc\",kind=\"webhook\"} ",
            )
        })
        .and_then(|v| v.parse::<u64>().ok())
        .expect("a latency count for soc");
    assert!(count >= low.len() as u64, "{count}");
    assert!(metrics.contains(
        "cloudsentinel_notify_latency_seconds_bucket{sink=\"soc\",kind=\"webhook\",le=\"+Inf\"}"
    ));

    // The receiver goes down: ingest goes on, /health names the failing sinks, the deliveries say
    // why; back up, the message arrives.
    standin.set_down(true);
    let (status, _, _) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{}", low[0]["id"]),
        Some(&admin),
        Some(br#"{"status":"acknowledged"}"#),
    );
    assert_eq!(status, 200);
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let h = s.get("/health", &admin);
        if h["notifications"]["failing"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x == "soc")
        {
            assert_eq!(
                h["status"], "ok",
                "a failing sink does not make the service unhealthy"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the failing sink never showed: {h}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let d = s.get(
        "/api/v1/notifications/deliveries?sink=soc&status=pending",
        &admin,
    );
    assert!(
        d["items"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("503"),
        "{d}"
    );
    let (status, _, _) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(&jsonl(&records("down", 20))),
    );
    assert_eq!(status, 202, "ingest goes on while a sink is down");
    standin.set_down(false);
    settle(&s, &admin, 0);
    let got = standin.received();
    assert!(
        got["webhook"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event"] == "alert.acknowledged")
    );
    assert!(
        s.get("/health", &admin)["notifications"]["failing"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn messages_queued_while_the_sink_is_down_survive_a_kill_and_arrive_once() {
    let dir = tempfile::tempdir().unwrap();
    let standin = Standin::receivers();
    standin.set_down(true);
    let config = write_config(dir.path(), &standin);
    let mut s = start(dir.path(), &config, &standin);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let body = story_lines().join("\n");
    let (status, _, _) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 202);
    let (status, _, _) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(&jsonl(&records("k", 200))),
    );
    assert_eq!(status, 202);
    let low = alerts(&s, &admin, "low");
    // Tried at least once and failing: then the process dies.
    let deadline = Instant::now() + Duration::from_secs(30);
    while !s.get(
        "/api/v1/notifications/deliveries?sink=soc&status=pending&limit=500",
        &admin,
    )["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|d| d["attempts"].as_u64().unwrap() > 0)
    {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(100));
    }
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(s);
    standin.set_down(false);
    let s = start(dir.path(), &config, &standin);
    let admin = s.admin();
    settle(&s, &admin, low.len() as u64);
    let got = standin.received();
    let hooks = got["webhook"].as_array().unwrap();
    let mut seen: Vec<(i64, String)> = hooks
        .iter()
        .map(|h| {
            (
                h["body"]["alert"]["id"].as_i64().unwrap(),
                h["event"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    seen.sort();
    let n = seen.len();
    seen.dedup();
    assert_eq!(seen.len(), n, "an alert change arrived twice: {hooks:#?}");
    let created: Vec<i64> = seen
        .iter()
        .filter(|(_, e)| e == "alert.created")
        .map(|(id, _)| *id)
        .collect();
    assert_eq!(
        created,
        ids(&low),
        "every alert's first message arrived after the restart"
    );
    assert_eq!(
        got["pagerduty_incidents"]
            .as_object()
            .unwrap()
            .values()
            .map(|i| i["triggers"].as_u64().unwrap())
            .max(),
        Some(1)
    );
}

#[test]
fn email_goes_out_over_starttls_with_auth_as_text_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mail.jsonl");
    let tls = dir.path().join("tls");
    let smtp = Standin::start(
        "smtp_standin.py",
        &[
            "--tls-dir",
            tls.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--user",
            "alerts",
            "--password",
            "mail-pass-1",
        ],
    );
    let config = dir.path().join("mail.toml");
    std::fs::write(
        &config,
        format!(
            r#"
[storage]
data_dir = "{data}"
[server]
public_url = "https://cs.example.com"
[[notify]]
name = "mail"
kind = "email"
smtp_host = "127.0.0.1"
smtp_port = {port}
ca_file = "{ca}"
username = "alerts"
secret_env = "CS_TEST_SMTP_PASSWORD"
from = "CloudSentinel <cloudsentinel@example.com>"
to = ["soc@example.com", "oncall@example.com"]
"#,
            data = dir.path().join("data").display(),
            port = smtp.port,
            ca = tls.join("ca.pem").display()
        ),
    )
    .unwrap();
    let run = |password: &str| {
        Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .args(["notify", "test", "mail", "--config"])
            .arg(&config)
            .env("CS_TEST_SMTP_PASSWORD", password)
            .output()
            .unwrap()
    };
    let ok = run("mail-pass-1");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let mail: Value = serde_json::from_str(
        std::fs::read_to_string(&out)
            .unwrap()
            .lines()
            .next()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(mail["tls"], true, "STARTTLS was used");
    assert_eq!(mail["authenticated"], true);
    assert_eq!(mail["to"], json!(["soc@example.com", "oncall@example.com"]));
    assert_eq!(mail["content_type"], "multipart/alternative");
    assert_eq!(mail["parts"], json!(["text/plain", "text/html"]));
    assert!(
        mail["subject"]
            .as_str()
            .unwrap()
            .starts_with("[INFORMATIONAL] Test message")
    );
    assert!(mail["html"].as_str().unwrap().contains("<table"));
    // A wrong password is refused for good (no point retrying), and said so.
    let bad = run("wrong");
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("refused"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

#[test]
fn bad_sink_configuration_fails_config_check_and_startup_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[[notify]]\nname = \"x\"\nkind = \"fax\"\n",
            "notify[0].kind",
        ),
        (
            "[[notify]]\nname = \"x\"\nkind = \"webhook\"\nurl = \"https://soc.example/h\"\nsecret_env = \"CS_TEST_NOT_SET_ANYWHERE\"\n",
            "notify[0].secret_env",
        ),
        (
            "[[notify]]\nname = \"x\"\nkind = \"pagerduty\"\nurl = \"not a url\"\nsecret_env = \"PATH\"\n",
            "notify[0].url",
        ),
    ];
    for (text, key) in cases {
        let path = dir.path().join("bad.toml");
        std::fs::write(&path, text).unwrap();
        let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .args(["config", "check"])
            .arg(&path)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{text}: {err}");
        assert!(err.contains(key), "{text}: {err}");
        let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&path)
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "serve refuses to start: {text}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(key));
    }
}
