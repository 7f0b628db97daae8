//! Pulling logs from the cloud, against an emulator: CloudTrail from S3 through SQS on moto's
//! server (PyPI: `moto[server]`, which `.ci/run` installs), driven by
//! `tests/support/aws_emulator.py` (boto3).

mod support;

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// A CloudTrail delivery file's key for account 111122223333 in `region`.
fn trail_key(region: &str, name: &str) -> String {
    trail_key_on(region, 20, name)
}

/// The same, delivered on 2026-11-`day` at 10:00.
fn trail_key_on(region: &str, day: u32, name: &str) -> String {
    format!(
        "AWSLogs/111122223333/CloudTrail/{region}/2026/11/{day:02}/111122223333_CloudTrail_{region}_202611{day:02}T1000Z_{name}.json.gz"
    )
}

fn delivery(prefix: &str, n: usize) -> String {
    json!({"Records": records(prefix, n)}).to_string()
}

/// A service reading the queue through the emulator, with the emulator's fake credentials.
fn start_service(dir: &std::path::Path, moto: &Moto, queue_url: &str) -> Server {
    start_service_with(dir, moto, queue_url, "")
}

/// The same, with more keys for the source.
fn start_service_with(dir: &std::path::Path, moto: &Moto, queue_url: &str, extra: &str) -> Server {
    let config = dir.join("cs.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"aws-s3-sqs\"\nname = \"trail\"\nqueue_url = {queue_url:?}\n\
             region = \"eu-west-1\"\nendpoint_url = {:?}\nwait_secs = 1\nvisibility_secs = 10\n{extra}",
            moto.endpoint
        ),
    )
    .unwrap();
    Server::start(
        &dir.join("data"),
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &["--config", config.to_str().unwrap()],
    )
}

fn wait_for(what: &str, secs: u64, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn cloudtrail_is_pulled_from_s3_through_sqs_and_bad_input_is_counted() {
    let moto = Moto::start();
    let q = moto.run(json!({"op": "setup", "bucket": "trail", "queue": "ct", "max_receives": 3}));
    let queue_url = q["queue_url"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let s = start_service(dir.path(), &moto, &queue_url);
    let admin = s.admin();
    // Two accounts' worth of regions, a digest file, an object that is not audit logs, a
    // message that is no notification, and an object announced through SNS.
    moto.run(json!({"op": "put", "bucket": "trail", "objects": [
        {"key": trail_key("eu-west-1", "a"), "gzip_text": delivery("s3a", 40)},
        {"key": trail_key("us-east-1", "b"), "gzip_text": delivery("s3b", 30)},
        {"key": "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/20/111122223333_CloudTrail-Digest_eu-west-1_x.json.gz",
         "gzip_text": "{\"awsAccountId\":\"111122223333\",\"digestStartTime\":\"2026-11-20T09:00:00Z\"}"},
        {"key": "AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/notes.json.gz",
         "gzip_text": "this is not JSON"},
        {"key": "sns/111122223333_CloudTrail_eu-west-1_20261120T1005Z_c.json.gz",
         "gzip_text": delivery("s3c", 20)},
    ]}));
    let s3_event = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "trail"},
        "object": {"key": "sns/111122223333_CloudTrail_eu-west-1_20261120T1005Z_c.json.gz", "size": 1}}}]});
    moto.run(json!({"op": "send", "queue_url": queue_url, "bodies": [
        json!({"Type": "Notification", "MessageId": "sns-1", "Message": s3_event.to_string()}).to_string(),
        "hello, not a notification",
    ]}));
    wait_for("90 events", 60, || {
        s.get("/api/v1/dashboard/stats", &admin)["events_total"] == 90
    });
    // Every message is handled and deleted: nothing waits, nothing is in flight.
    wait_for("an empty queue", 30, || {
        let st = moto.run(json!({"op": "stats", "queue_url": queue_url}));
        st["waiting"] == 0 && st["in_flight"] == 0
    });
    let health = s.get("/api/v1/sources", &admin);
    let src = &health["sources"][0];
    assert_eq!(src["name"], "trail", "{health:#}");
    assert_eq!(src["kind"], "aws-s3-sqs");
    assert_eq!(src["events"], 90, "{src:#}");
    // The three delivery files and the one that is not logs; the digest is skipped unread.
    assert_eq!(src["objects"], 4, "{src:#}");
    assert_eq!(
        src["errors"], 2,
        "the bad object and the bad message: {src:#}"
    );
    let streams: Vec<(String, String, u64)> = src["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| {
            (
                x["account"].as_str().unwrap().to_string(),
                x["region"].as_str().unwrap().to_string(),
                x["events"].as_u64().unwrap(),
            )
        })
        .collect();
    assert!(
        streams.contains(&("111122223333".into(), "eu-west-1".into(), 40))
            && streams.contains(&("111122223333".into(), "us-east-1".into(), 30)),
        "{streams:?}"
    );
    assert!(src["lag_secs"].as_i64().unwrap() > 0, "{src:#}");
    let (_, _, metrics) = s.req("GET", "/metrics", None, None);
    assert!(
        metrics.contains("cloudsentinel_source_events_total{source=\"trail\"} 90"),
        "{metrics}"
    );
    // The StopLogging records in the files alert as they would over HTTP.
    let alerts = s.get("/api/v1/alerts?limit=200", &admin);
    assert!(
        alerts["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["title"].as_str().unwrap_or("").contains("Trail")
                || a["title"].as_str().unwrap_or("").contains("Logging")),
        "{alerts:#}"
    );
}

#[test]
fn a_killed_collector_loses_nothing_and_stores_nothing_twice() {
    let moto = Moto::start();
    let q = moto.run(json!({"op": "setup", "bucket": "trail", "queue": "ct", "max_receives": 20}));
    let queue_url = q["queue_url"].as_str().unwrap().to_string();
    let objects: Vec<Value> = (0..60)
        .map(|i| {
            json!({"key": trail_key("eu-west-1", &format!("k{i:02}")),
                   "gzip_text": delivery(&format!("kill{i:02}"), 500)})
        })
        .collect();
    moto.run(json!({"op": "put", "bucket": "trail", "objects": objects}));
    let total = 60 * 500;
    let dir = tempfile::tempdir().unwrap();
    let mut s = start_service(dir.path(), &moto, &queue_url);
    let admin = s.admin();
    let mut at_kill = 0;
    wait_for("the first events", 60, || {
        at_kill = s.get("/api/v1/dashboard/stats", &admin)["events_total"]
            .as_u64()
            .unwrap();
        at_kill > 0
    });
    s.child.kill().unwrap(); // SIGKILL: no shutdown, messages in flight not deleted
    s.child.wait().unwrap();
    drop(s);
    assert!(
        at_kill < total,
        "the collector finished before it was killed ({at_kill} events): the test proves nothing"
    );
    // Restarted on the same data: the messages in flight come back after their visibility
    // timeout and their events, read again, are stored once.
    let s = start_service(dir.path(), &moto, &queue_url);
    let admin = s.admin();
    wait_for("every event", 120, || {
        s.get("/api/v1/dashboard/stats", &admin)["events_total"] == total
    });
    wait_for("an empty queue", 60, || {
        let st = moto.run(json!({"op": "stats", "queue_url": queue_url}));
        st["waiting"] == 0 && st["in_flight"] == 0
    });
    std::thread::sleep(Duration::from_secs(1));
    let stats = s.get("/api/v1/dashboard/stats", &admin);
    assert_eq!(stats["events_total"], total, "nothing lost, nothing twice");
    // The attack records (one in 50) raise one alert per principal, not one per reading.
    let alerts = s.get("/api/v1/alerts?limit=500", &admin);
    let count: u64 = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["title"] == "CloudTrail Logging Stopped On A Trail")
        .map(|a| a["count"].as_u64().unwrap())
        .sum();
    assert_eq!(count, total / 50, "{alerts:#}");
}

/// Our SigV4 signatures equal botocore's for the requests the collector makes: an S3 object
/// whose key needs encoding, a listing with a query, an SQS JSON call, with and without a
/// session token.
#[test]
fn our_signatures_match_botocores() {
    use cloudsentinel_cloud::aws::{Credentials, sigv4};
    let time = "20261120T101500Z";
    let now = chrono::DateTime::parse_from_rfc3339("2026-11-20T10:15:00Z")
        .unwrap()
        .with_timezone(&chrono::Utc);
    struct Case {
        method: &'static str,
        host: &'static str,
        path: &'static str,
        query: Vec<(&'static str, &'static str)>,
        body: &'static str,
        service: &'static str,
        token: Option<&'static str>,
    }
    let cases = vec![
        Case {
            method: "GET",
            host: "trail.s3.eu-west-1.amazonaws.com",
            path: "/AWSLogs/111122223333/CloudTrail/eu-west-1/2026/11/20/a%20b%2Bc%3D.json.gz",
            query: vec![],
            body: "",
            service: "s3",
            token: None,
        },
        Case {
            method: "GET",
            host: "s3.eu-west-1.amazonaws.com",
            path: "/trail/",
            query: vec![
                ("list-type", "2"),
                ("prefix", "AWSLogs/111122223333/"),
                ("delimiter", "/"),
            ],
            body: "",
            service: "s3",
            token: Some("session-token/with+chars="),
        },
        Case {
            method: "POST",
            host: "sqs.eu-west-1.amazonaws.com",
            path: "/",
            query: vec![],
            body: r#"{"QueueUrl":"https://sqs.eu-west-1.amazonaws.com/111122223333/ct","MaxNumberOfMessages":10}"#,
            service: "sqs",
            token: None,
        },
    ];
    let mut ours = Vec::new();
    let mut requests = Vec::new();
    for Case {
        method,
        host,
        path,
        query,
        body,
        service,
        token,
    } in cases
    {
        let creds = Credentials {
            access_key_id: "AKIAEXAMPLEKEY".into(),
            secret_access_key: "secret/Example+Key".into(),
            session_token: token.map(str::to_string),
            expires: None,
        };
        let query: Vec<(String, String)> = query
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut headers: Vec<(String, String)> = Vec::new();
        if service == "sqs" {
            headers.push(("content-type".into(), "application/x-amz-json-1.0".into()));
            headers.push(("x-amz-target".into(), "AmazonSQS.ReceiveMessage".into()));
        }
        let hash = sigv4::payload_hash(body.as_bytes());
        let signed = sigv4::sign(
            &sigv4::Request {
                method,
                path,
                query: &query,
                headers: &headers,
                host,
                payload_hash: &hash,
            },
            &creds,
            "eu-west-1",
            service,
            now,
        );
        let auth = signed
            .iter()
            .find(|(k, _)| k == "authorization")
            .unwrap()
            .1
            .clone();
        ours.push(auth);
        let url_query: Vec<String> = query
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    sigv4::uri_encode(k, true),
                    sigv4::uri_encode(v, true)
                )
            })
            .collect();
        let mut url = format!("https://{host}{path}");
        if !url_query.is_empty() {
            url.push('?');
            url.push_str(&url_query.join("&"));
        }
        let mut hdrs = serde_json::Map::new();
        for (k, v) in &headers {
            hdrs.insert(k.clone(), json!(v));
        }
        // We sign the payload hash on every request; botocore does when the header is there.
        hdrs.insert("X-Amz-Content-SHA256".into(), json!(hash));
        requests.push(
            json!({"method": method, "url": url, "headers": hdrs, "body": body,
            "service": service, "region": "eu-west-1", "time": time,
            "access_key": creds.access_key_id, "secret_key": creds.secret_access_key,
            "token": creds.session_token}),
        );
    }
    let out = python("sigv4_check.py", json!(requests).to_string().as_bytes());
    assert!(
        out.status.success(),
        "sigv4_check.py (needs botocore: python3 -m pip install 'moto[server]'):\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let theirs: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(ours, theirs);
}

/// `hunt s3://...` reads a time range of a trail's bucket directly: the days asked for, in every
/// region, digests skipped, nothing copied to disk.
#[test]
fn hunt_reads_a_time_range_of_a_bucket() {
    let moto = Moto::start();
    moto.run(json!({"op": "setup", "bucket": "trail", "queue": "ct", "max_receives": 3}));
    let mut objects = Vec::new();
    for day in [19, 20, 21] {
        for region in ["eu-west-1", "us-east-1"] {
            objects.push(json!({"key": trail_key_on(region, day, "x"),
                "gzip_text": delivery(&format!("d{day}-{region}"), 10 + day as usize)}));
        }
    }
    objects.push(json!({"key": "AWSLogs/111122223333/CloudTrail-Digest/eu-west-1/2026/11/20/111122223333_CloudTrail-Digest_eu-west-1_20261120T1000Z.json.gz",
        "gzip_text": "{}"}));
    moto.run(json!({"op": "put", "bucket": "trail", "objects": objects}));
    let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .args([
            "hunt",
            "s3://trail/AWSLogs/",
            "--since",
            "2026-11-20",
            "--until",
            "2026-11-21",
            "--region",
            "eu-west-1",
            "--endpoint-url",
            &moto.endpoint,
            "--format",
            "jsonl",
            "--no-anomaly",
        ])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success() || out.status.code() == Some(1),
        "{stderr}"
    );
    // Two regions of one day: 2 files, 2 x 30 events.
    assert!(
        stderr.contains("summary: 2 files, 60 events read"),
        "{stderr}"
    );
    let alerts: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let ids: Vec<&str> = alerts
        .iter()
        .flat_map(|a| a["event_ids"].as_array().unwrap())
        .filter_map(Value::as_str)
        .collect();
    assert!(!ids.is_empty(), "{alerts:?}");
    assert!(ids.iter().all(|id| id.starts_with("d20-")), "{ids:?}");
}

/// An account and region that delivered regularly and stops raises "Log source went silent",
/// once; the others are left alone.
#[test]
fn a_stream_that_stops_delivering_raises_a_finding() {
    let moto = Moto::start();
    let q = moto.run(json!({"op": "setup", "bucket": "trail", "queue": "ct", "max_receives": 3}));
    let queue_url = q["queue_url"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let s = start_service_with(dir.path(), &moto, &queue_url, "silence_secs = 3\n");
    let admin = s.admin();
    // Four deliveries a little apart for eu-west-1; one for us-east-1 (too little history to
    // have a usual gap).
    for i in 0..4 {
        moto.run(json!({"op": "put", "bucket": "trail", "objects": [
            {"key": trail_key("eu-west-1", &format!("s{i}")), "gzip_text": delivery(&format!("quiet{i}"), 5)}]}));
        wait_for("a delivery", 30, || {
            s.get("/api/v1/dashboard/stats", &admin)["events_total"] == 5 * (i + 1)
        });
    }
    moto.run(json!({"op": "put", "bucket": "trail", "objects": [
        {"key": trail_key("us-east-1", "once"), "gzip_text": delivery("once", 5)}]}));
    let silent = |s: &Server| -> Vec<Value> {
        s.get("/api/v1/alerts?limit=100", &admin)["items"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["rule_id"] == "cloudsentinel-source-silent")
            .cloned()
            .collect()
    };
    wait_for("the silence finding", 60, || !silent(&s).is_empty());
    std::thread::sleep(Duration::from_secs(5));
    let found = silent(&s);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0]["entity"], "cloudtrail:111122223333/eu-west-1");
    assert_eq!(found[0]["count"], 1, "reported once");
    assert!(
        found[0]["explanation"]
            .as_str()
            .unwrap()
            .contains("no log file from account 111122223333 in eu-west-1"),
        "{found:#?}"
    );
    let health = s.get("/api/v1/sources", &admin);
    let streams = health["sources"][0]["streams"].as_array().unwrap();
    let eu = streams.iter().find(|x| x["region"] == "eu-west-1").unwrap();
    assert!(eu["silent_since"].is_string(), "{health:#}");
    let us = streams.iter().find(|x| x["region"] == "us-east-1").unwrap();
    assert!(us["silent_since"].is_null(), "{health:#}");
}

/// The Azurite Blob emulator on a free port (npm: azurite, which `.ci/run` installs under
/// target/npm), killed when dropped.
struct Azurite {
    child: Child,
    endpoint: String,
    _dir: tempfile::TempDir,
}

impl Azurite {
    fn start() -> Azurite {
        let bin = std::env::var("AZURITE_BLOB").unwrap_or_else(|_| {
            format!(
                "{}/target/npm/node_modules/.bin/azurite-blob",
                env!("CARGO_MANIFEST_DIR")
            )
        });
        assert!(
            std::path::Path::new(&bin).exists(),
            "{bin} is missing: npm install --prefix target/npm azurite@3.35.0 (.ci/run does)"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(&bin)
            .args([
                "--blobHost",
                "127.0.0.1",
                "--blobPort",
                &port.to_string(),
                "--silent",
                "--skipApiVersionCheck",
                "--location",
            ])
            .arg(dir.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("azurite starts");
        let endpoint = format!("http://127.0.0.1:{port}/devstoreaccount1");
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpListener::bind(("127.0.0.1", port)).is_ok() {
            assert!(Instant::now() < deadline, "azurite did not start");
            std::thread::sleep(Duration::from_millis(200));
        }
        Azurite {
            child,
            endpoint,
            _dir: dir,
        }
    }

    fn run(&self, mut cmd: Value) -> Value {
        cmd["endpoint"] = json!(self.endpoint);
        let out = python("azure_emulator.py", cmd.to_string().as_bytes());
        assert!(
            out.status.success(),
            "azure_emulator.py {cmd} (needs python3 -m pip install azure-storage-blob; .ci/run does): {}",
            String::from_utf8_lossy(&out.stdout)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Azure Activity Log records as a diagnostic setting exports them, one per line.
fn activity_lines(prefix: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            json!({"time": format!("2026-11-20T10:{:02}:00.0000000Z", i % 60),
                "resourceId": "/subscriptions/6b1f1c1e-3b0a-4d6e-9a55-0c2f1a7d9e01/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/sa1",
                "operationName": "MICROSOFT.STORAGE/STORAGEACCOUNTS/LISTKEYS/ACTION",
                "category": "Administrative", "resultType": "Success", "callerIpAddress": "203.0.113.9",
                "correlationId": format!("{prefix}-c{i}"),
                "identity": {"claims": {"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn": "ops@contoso.com",
                    "http://schemas.microsoft.com/identity/claims/objectidentifier": "oid-ops"}},
                "properties": {"eventDataId": format!("{prefix}-{i}")}})
            .to_string()
                + "\n"
        })
        .collect()
}

/// Diagnostic-settings exports read from Blob Storage (Azurite): new lines of a growing append
/// blob only, a half-written line left until it is whole, positions kept across a restart; a
/// shared key and a SAS token both work.
#[test]
fn azure_exports_are_read_from_blob_storage_as_they_grow() {
    let az = Azurite::start();
    az.run(
        json!({"op": "setup", "containers": ["insights-activity-logs", "insights-logs-auditlogs"]}),
    );
    let now = chrono::Utc::now();
    let blob = format!(
        "resourceId=/SUBSCRIPTIONS/6B1F1C1E-3B0A-4D6E-9A55-0C2F1A7D9E01/{}/PT1H.json",
        now.format("y=%Y/m=%m/d=%d/h=%H/m=00")
    );
    az.run(json!({"op": "append", "container": "insights-activity-logs", "blob": blob, "text": activity_lines("az1", 30)}));
    let sas = az.run(json!({"op": "sas"}))["sas"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cs.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"azure-blob\"\nname = \"activity\"\naccount = \"devstoreaccount1\"\n\
             endpoint = {e:?}\nkey_env = \"TEST_AZURE_KEY\"\ncontainers = [\"insights-activity-logs\"]\npoll_secs = 1\n\n\
             [[sources]]\nkind = \"azure-blob\"\nname = \"audit\"\naccount = \"devstoreaccount1\"\n\
             endpoint = {e:?}\nsas_env = \"TEST_AZURE_SAS\"\ncontainers = [\"insights-logs-auditlogs\"]\npoll_secs = 1\n",
            e = az.endpoint
        ),
    )
    .unwrap();
    let env = [
        (
            "TEST_AZURE_KEY",
            "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
        ),
        ("TEST_AZURE_SAS", sas.as_str()),
    ];
    let args = ["--config", config.to_str().unwrap()];
    let s = Server::start(&dir.path().join("data"), &env, &args);
    let admin = s.admin();
    let events = |s: &Server| s.get("/api/v1/dashboard/stats", &admin)["events_total"].clone();
    wait_for("the first 30 events", 60, || events(&s) == 30);
    // The blob grows: ten whole lines and half of the eleventh.
    let more = activity_lines("az2", 11);
    let cut = more.len() - 40;
    az.run(json!({"op": "append", "container": "insights-activity-logs", "blob": blob, "text": &more[..cut]}));
    wait_for("ten more events", 30, || events(&s) == 40);
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(events(&s), 40, "the half-written line waits");
    az.run(json!({"op": "append", "container": "insights-activity-logs", "blob": blob, "text": &more[cut..]}));
    wait_for("the completed line", 30, || events(&s) == 41);
    // The SAS-authorised source reads its container too.
    let audit_blob = format!(
        "tenantId=8e2b4f6a-1c3d-4e5f-9a7b-0c2d4e6f8a91/{}/PT1H.json",
        now.format("y=%Y/m=%m/d=%d/h=%H/m=00")
    );
    az.run(json!({"op": "append", "container": "insights-logs-auditlogs", "blob": audit_blob, "text": activity_lines("az3", 5)}));
    wait_for("the audit container's events", 30, || events(&s) == 46);
    let health = s.get("/api/v1/sources", &admin);
    let activity = &health["sources"][0];
    assert_eq!(activity["kind"], "azure-blob", "{health:#}");
    assert_eq!(activity["events"], 41, "{health:#}");
    assert_eq!(activity["errors"], 0, "{health:#}");
    assert_eq!(
        activity["streams"][0]["account"], "6B1F1C1E-3B0A-4D6E-9A55-0C2F1A7D9E01",
        "{health:#}"
    );
    drop(s);
    // Restarted: what was read is not read again (positions are kept), new lines are.
    az.run(json!({"op": "append", "container": "insights-activity-logs", "blob": blob, "text": activity_lines("az4", 4)}));
    let s = Server::start(&dir.path().join("data"), &env, &args);
    let admin = s.admin();
    wait_for("the four new events", 30, || {
        s.get("/api/v1/dashboard/stats", &admin)["events_total"] == 50
    });
    let health = s.get("/api/v1/sources", &admin);
    assert_eq!(
        health["sources"][0]["events"], 4,
        "only the new lines: {health:#}"
    );
}

/// The Pub/Sub stand-in (tests/support/pubsub_standin.py) on a free port, checking RS256
/// assertions against `public_key`, killed when dropped.
struct PubSub {
    child: Child,
    endpoint: String,
}

impl PubSub {
    fn start(port: u16, public_key: &std::path::Path) -> PubSub {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(format!(
                "{}/tests/support/pubsub_standin.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(port.to_string())
            .arg(public_key)
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the Pub/Sub stand-in did not start");
        PubSub {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    fn post(&self, path: &str, body: Value) -> Value {
        let mut resp = ureq::post(&format!("{}{path}", self.endpoint))
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
        serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn publish(&self, messages: &[Vec<u8>]) {
        use base64::Engine;
        let messages: Vec<Value> = messages
            .iter()
            .map(|m| json!({"data": base64::engine::general_purpose::STANDARD.encode(m)}))
            .collect();
        self.post(
            "/v1/projects/shop-prod/topics/audit:publish",
            json!({ "messages": messages }),
        );
    }

    fn stats(&self) -> Value {
        let mut resp = ureq::get(&format!("{}/test/stats", self.endpoint))
            .call()
            .unwrap();
        let v: Value = serde_json::from_str(&resp.body_mut().read_to_string().unwrap()).unwrap();
        v["projects/shop-prod/subscriptions/cloudsentinel"].clone()
    }
}

impl Drop for PubSub {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A Cloud Audit Logs entry as a log sink publishes it.
fn audit_entry(id: &str) -> Vec<u8> {
    json!({"insertId": id, "logName": "projects/shop-prod/logs/cloudaudit.googleapis.com%2Factivity",
        "timestamp": "2026-11-20T10:00:00Z", "resource": {"type": "service_account", "labels": {"project_id": "shop-prod"}},
        "severity": "NOTICE", "protoPayload": {"@type": "type.googleapis.com/google.cloud.audit.AuditLog",
        "serviceName": "iam.googleapis.com", "methodName": "google.iam.admin.v1.CreateServiceAccountKey",
        "resourceName": "projects/-/serviceAccounts/1234", "authenticationInfo": {"principalEmail": "eve@example.com"},
        "requestMetadata": {"callerIp": "198.51.100.7", "callerSuppliedUserAgent": "gcloud/470.0.0"}, "status": {}}})
    .to_string()
    .into_bytes()
}

/// A service account key (RSA, PKCS#8) whose token endpoint is the stand-in, and its public key.
fn service_account_key(
    dir: &std::path::Path,
    token_uri: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("sa.json");
    let public = dir.join("sa.pub.pem");
    let script = format!(
        "import json\nfrom cryptography.hazmat.primitives.asymmetric import rsa\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
         pem = k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode()\n\
         open({public:?}, 'wb').write(k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))\n\
         json.dump({{'type': 'service_account', 'project_id': 'shop-prod', 'private_key_id': 'k1', 'private_key': pem,\n\
           'client_email': 'reader@shop-prod.iam.gserviceaccount.com', 'token_uri': {token_uri:?}}}, open({key:?}, 'w'))\n",
        public = public.display().to_string(),
        key = key.display().to_string(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (key, public)
}

/// GCP audit logs pulled from a Pub/Sub subscription with a service account key (a signed JWT
/// the stand-in verifies), acknowledged only after they are committed: a message that is no
/// log entry is counted and acknowledged, and a kill -9 loses nothing and stores nothing twice.
#[test]
fn gcp_audit_logs_are_pulled_from_pubsub() {
    let dir = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (key, public) = service_account_key(dir.path(), &format!("http://127.0.0.1:{port}/token"));
    let ps = PubSub::start(port, &public);
    ps.post(
        "/test/subscriptions",
        json!({"topic": "projects/shop-prod/topics/audit",
               "subscription": "projects/shop-prod/subscriptions/cloudsentinel", "ack_deadline": 10}),
    );
    let mut first: Vec<Vec<u8>> = (0..30).map(|i| audit_entry(&format!("ps-{i}"))).collect();
    first.push(b"not a log entry".to_vec());
    ps.publish(&first);
    let config = dir.path().join("cs.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\nkind = \"gcp-pubsub\"\nname = \"audit\"\n\
             subscription = \"projects/shop-prod/subscriptions/cloudsentinel\"\nendpoint = {:?}\n\
             credentials_file = {:?}\npoll_secs = 1\nack_deadline_secs = 10\n",
            ps.endpoint,
            key.display().to_string()
        ),
    )
    .unwrap();
    let args = ["--config", config.to_str().unwrap()];
    let mut s = Server::start(&dir.path().join("data"), &[], &args);
    let admin = s.admin();
    wait_for("30 events", 30, || {
        s.get("/api/v1/dashboard/stats", &admin)["events_total"] == 30
    });
    wait_for("every message acknowledged", 30, || {
        ps.stats()["acked"] == 31
    });
    let health = s.get("/api/v1/sources", &admin);
    assert_eq!(
        health["sources"][0]["errors"], 1,
        "the bad message: {health:#}"
    );
    assert_eq!(health["sources"][0]["messages"], 31, "{health:#}");
    // The service account key creation raises its alert, as from any other path.
    let alerts = s.get("/api/v1/alerts?limit=100", &admin);
    assert!(alerts["total"].as_u64().unwrap() >= 1, "{alerts:#}");
    // A big batch, and the service killed in the middle of it.
    let many: Vec<Vec<u8>> = (0..3000)
        .map(|i| audit_entry(&format!("ps-big-{i}")))
        .collect();
    ps.publish(&many);
    let mut at_kill = 0;
    wait_for("the batch to start", 60, || {
        at_kill = s.get("/api/v1/dashboard/stats", &admin)["events_total"]
            .as_u64()
            .unwrap();
        at_kill > 30
    });
    s.child.kill().unwrap();
    s.child.wait().unwrap();
    drop(s);
    assert!(
        at_kill < 3030,
        "finished before the kill ({at_kill}): the test proves nothing"
    );
    let s = Server::start(&dir.path().join("data"), &[], &args);
    let admin = s.admin();
    wait_for("every event after the restart", 120, || {
        s.get("/api/v1/dashboard/stats", &admin)["events_total"] == 3030
    });
    wait_for("an empty subscription", 60, || {
        let st = ps.stats();
        st["waiting"] == 0 && st["in_flight"] == 0
    });
    assert_eq!(
        s.get("/api/v1/dashboard/stats", &admin)["events_total"],
        3030,
        "nothing lost, nothing twice"
    );
}

/// A message whose object cannot be read (its bucket does not exist) is left in the queue, tried
/// again, and moved to the dead-letter queue by the queue's redrive policy; the failure is
/// counted. The source assumes a role for its calls (moto's STS answers AssumeRole).
#[test]
fn a_message_that_keeps_failing_reaches_the_dead_letter_queue() {
    let moto = Moto::start();
    let q = moto.run(json!({"op": "setup", "bucket": "trail", "queue": "ct", "max_receives": 2}));
    let queue_url = q["queue_url"].as_str().unwrap().to_string();
    let dlq_url = q["dlq_url"].as_str().unwrap().to_string();
    let dir = tempfile::tempdir().unwrap();
    let s = start_service_with(
        dir.path(),
        &moto,
        &queue_url,
        "role_arn = \"arn:aws:iam::123456789012:role/cloudsentinel-reader\"\n",
    );
    let admin = s.admin();
    let missing = json!({"Records": [{"eventVersion": "2.1", "eventSource": "aws:s3",
        "eventName": "ObjectCreated:Put", "s3": {"bucket": {"name": "no-such-bucket"},
        "object": {"key": trail_key("eu-west-1", "gone"), "size": 1}}}]});
    moto.run(json!({"op": "send", "queue_url": queue_url, "bodies": [missing.to_string()]}));
    // Readable objects still flow meanwhile.
    moto.run(json!({"op": "put", "bucket": "trail", "objects": [
        {"key": trail_key("eu-west-1", "ok"), "gzip_text": delivery("ok", 10)}]}));
    wait_for("the readable object", 30, || {
        s.get("/api/v1/dashboard/stats", &admin)["events_total"] == 10
    });
    wait_for("the failing message in the dead-letter queue", 90, || {
        moto.run(json!({"op": "stats", "queue_url": dlq_url}))["waiting"] == 1
    });
    let health = s.get("/api/v1/sources", &admin);
    assert!(
        health["sources"][0]["errors"].as_u64().unwrap() >= 2,
        "each try counted: {health:#}"
    );
    assert!(
        health["sources"][0]["last_error"]
            .as_str()
            .unwrap()
            .contains("s3://no-such-bucket/"),
        "{health:#}"
    );
}
