//! The scaled-out service (docs/SCALING.md): processes of the `api`, `ingest` and `detect` roles
//! sharing the real PostgreSQL and meeting on the real RabbitMQ of this machine (`.ci/run`
//! starts both). Each test has a database and a queue of its own.

mod support;

use std::sync::Mutex;
use std::time::{Duration, Instant};

use support::*;

/// One test at a time: one restarts the broker and the database, which the others use.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// One deployment: a database, a queue, the shared data directory (the key files), and the
/// processes.
struct Cluster {
    db: PgDb,
    queue: String,
    dir: tempfile::TempDir,
}

impl Cluster {
    fn new(name: &str) -> Cluster {
        Cluster {
            db: PgDb::create(),
            queue: format!("cs.test.{}.{name}", std::process::id()),
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn env(&self) -> Vec<(String, String)> {
        let mut env = self.db.env();
        env.extend(
            [
                ("CLOUDSENTINEL_BUS__KIND", "amqp"),
                ("CLOUDSENTINEL_BUS__URL", "amqp://guest@127.0.0.1:5672/%2f"),
                ("CLOUDSENTINEL_BUS__QUEUE", self.queue.as_str()),
                ("CLOUDSENTINEL_DETECTION__ANOMALY", "false"),
                // The scenario's days are in the past: keep them.
                ("CLOUDSENTINEL_STORAGE__RETENTION_DAYS", "0"),
            ]
            .map(|(k, v)| (k.to_string(), v.to_string())),
        );
        env
    }

    /// Starts a process of `role`.
    fn start(&self, role: &str) -> Server {
        let env = self.env();
        let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        Server::start(self.dir.path(), &env, &["--role", role])
    }

    fn events(&self) -> u64 {
        self.db
            .scalar("SELECT COUNT(*) FROM events")
            .unwrap()
            .parse()
            .unwrap()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for q in [self.queue.clone(), format!("{}.dead", self.queue)] {
            let _ = std::process::Command::new("rabbitmqctl")
                .args(["-q", "delete_queue", &q])
                .output();
        }
    }
}

/// Sends every batch to the ingest process; each must be confirmed (202 with `queued`).
fn send(ingest: &Server, key: &str, batches: &[(&'static str, String)]) {
    for (p, body) in batches {
        let (status, answer, text) = ingest.req(
            "POST",
            &format!("/api/v1/threats/ingest/{p}"),
            Some(key),
            Some(body.as_bytes()),
        );
        assert_eq!(status, 202, "{text}");
        assert!(answer["queued"].as_u64().unwrap() > 0, "{text}");
        assert!(
            answer.get("accepted").is_none(),
            "an ingest process does not know yet what is stored: {text}"
        );
    }
}

/// Waits until the detect processes have committed every batch the ingest process published.
fn drain(ingest: &Server, detect: &[&Server]) {
    let published = ingest.metric("cloudsentinel_bus_published_total");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let committed: u64 = detect
            .iter()
            .map(|d| d.metric("cloudsentinel_bus_committed_total"))
            .sum();
        if committed >= published {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{committed} of {published} batches committed after 120 s"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_two_or_four_detect_processes_raise_the_alerts_hunt_raises() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::day(dir.path());
    let offline = scenario.hunt_alerts();
    let batches = scenario.batches();
    let mut stored = Vec::new();
    for workers in [1, 2, 4] {
        let c = Cluster::new(&format!("w{workers}"));
        let api = c.start("api");
        let admin = api.admin();
        let key = api.api_key(&admin);
        let detect: Vec<Server> = (0..workers).map(|_| c.start("detect")).collect();
        let ingest = c.start("ingest");
        // Each role answers its own routes only.
        let (status, _, _) = ingest.req("GET", "/api/v1/alerts", Some(&admin), None);
        assert_eq!(status, 404, "an ingest process serves no alert list");
        let (status, _, _) = api.req(
            "POST",
            "/api/v1/threats/ingest/aws",
            Some(&key),
            Some(b"{}"),
        );
        assert_eq!(status, 404, "an API process takes no batches");
        send(&ingest, &key, &batches);
        drain(&ingest, &detect.iter().collect::<Vec<_>>());
        // One process consumes at a time (the queue's single active consumer).
        let busy = detect
            .iter()
            .filter(|d| d.metric("cloudsentinel_bus_committed_total") > 0)
            .count();
        assert_eq!(busy, 1, "{workers} detect processes");
        // A graceful stop commits what the correlations still hold.
        for d in detect {
            assert!(d.stop().success());
        }
        let online = api.all_alerts(&admin);
        assert_same_alerts(&offline, &online);
        stored.push(c.events());
        if workers == 1 {
            // The dashboard over PostgreSQL, from the API process.
            let cookies = api.ui_cookies();
            let first = &api.get("/api/v1/alerts?limit=1", &admin)["items"][0];
            let alert_page = format!("/ui/alerts/{}", first["id"]);
            for page in [
                "/ui",
                "/ui/alerts",
                "/ui/incidents",
                "/ui/events",
                "/ui/rules",
                &alert_page,
            ] {
                let (status, _, text) =
                    api.req_h("GET", page, None, None, &[("cookie", cookies.as_str())]);
                assert_eq!(status, 200, "{page}: {text:.300}");
                if page == alert_page {
                    let rule = first["rule_id"].as_str().unwrap();
                    assert!(text.contains(rule), "{page} names its alert's rule");
                }
            }
        }
    }
    assert!(stored[0] > 1000, "{stored:?}");
    assert!(stored.iter().all(|n| *n == stored[0]), "{stored:?}");
}

#[test]
fn a_killed_detect_process_loses_no_event_and_its_successor_duplicates_no_alert() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::day(dir.path());
    let offline = scenario.hunt_alerts();
    let batches = scenario.batches();
    let c = Cluster::new("kill");
    let api = c.start("api");
    let admin = api.admin();
    let key = api.api_key(&admin);
    let mut first = c.start("detect");
    let second = c.start("detect");
    let ingest = c.start("ingest");
    let half = batches.len() / 2;
    send(&ingest, &key, &batches[..half]);
    // Mid-stream: once the first has committed some batches, it dies without a word.
    let deadline = Instant::now() + Duration::from_secs(60);
    while first.metric("cloudsentinel_bus_committed_total") < 3 {
        assert!(
            Instant::now() < deadline,
            "the first detect process took nothing"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    send(&ingest, &key, &batches[half..]);
    // The second takes the queue over, with what the first left unacknowledged.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let (status, _, text) = api.req("GET", "/api/v1/events?limit=1", Some(&admin), None);
        assert_eq!(status, 200, "{text}");
        if second.metric("cloudsentinel_bus_committed_total") > 0
            && second.metric("cloudsentinel_queue_events") == 0
            && queue_is_empty(&c.queue)
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the second detect process did not take over"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(second.stop().success());
    let online = alerts_by_kind(&api, &admin);
    // The same events through one detect process that nobody kills.
    let reference = Cluster::new("kill-ref");
    let expected = {
        let api = reference.start("api");
        let admin = api.admin();
        let key = api.api_key(&admin);
        let detect = reference.start("detect");
        let ingest = reference.start("ingest");
        send(&ingest, &key, &batches);
        drain(&ingest, &[&detect]);
        assert!(detect.stop().success());
        alerts_by_kind(&api, &admin)
    };
    // Every event once: a redelivered batch's events are known by id.
    assert_eq!(c.events(), reference.events(), "events stored");
    // Alerts of single-event rules exactly: the successor resumed the open alerts from the
    // store, so none is raised twice nor counts an event twice.
    let single = |a: &[(String, AlertKey)]| -> Vec<AlertKey> {
        a.iter()
            .filter(|(k, _)| k != "correlation")
            .map(|(_, a)| a.clone())
            .collect()
    };
    assert_same_alerts(&single(&expected), &single(&online));
    assert_same_alerts(&single(&expected), &{
        let mut hunt: Vec<AlertKey> = offline
            .iter()
            .filter(|a| single(&expected).contains(a))
            .cloned()
            .collect();
        hunt.sort();
        hunt
    });
    // Correlations: the windows the killed process held in memory are lost (docs/SCALING.md),
    // so one spanning the kill may be missing; none is raised twice.
    let correlations: Vec<&AlertKey> = online
        .iter()
        .filter(|(k, _)| k == "correlation")
        .map(|(_, a)| a)
        .collect();
    for (i, a) in correlations.iter().enumerate() {
        for b in &correlations[i + 1..] {
            assert!(
                !(a.0 == b.0 && a.1 == b.1 && a.2 <= b.3 && b.2 <= a.3),
                "a correlation alert raised twice: {a:?} {b:?}"
            );
        }
    }
}

/// Every alert with its kind (`rule`, `correlation`, `anomaly`), sorted.
fn alerts_by_kind(api: &Server, token: &str) -> Vec<(String, AlertKey)> {
    let mut all: Vec<(String, AlertKey)> = api
        .all_alert_records(token)
        .iter()
        .map(|a| (a["kind"].as_str().unwrap().to_string(), alert_key(a)))
        .collect();
    all.sort();
    all
}

/// Whether the broker's queue holds no message (ready or unacknowledged).
fn queue_is_empty(queue: &str) -> bool {
    let out = std::process::Command::new("rabbitmqctl")
        .args(["-q", "list_queues", "name", "messages"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).lines().any(|l| {
        let mut f = l.split_whitespace();
        f.next() == Some(queue) && f.next() == Some("0")
    })
}

/// Runs a command of this machine's service tools; fails the test when it fails.
fn run(cmd: &str, args: &[&str]) {
    let out = std::process::Command::new(cmd).args(args).output().unwrap();
    assert!(out.status.success(), "{cmd} {args:?}: {out:?}");
}

/// Posts a batch until it is taken (202), for at most 90 s; answers the refusals seen before.
fn post_until_taken(ingest: &Server, key: &str, p: &str, body: &str) -> Vec<u16> {
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut refused = Vec::new();
    loop {
        let (status, _, text) = ingest.req(
            "POST",
            &format!("/api/v1/threats/ingest/{p}"),
            Some(key),
            Some(body.as_bytes()),
        );
        if status == 202 {
            return refused;
        }
        assert!(
            matches!(status, 503 | 429),
            "refused with {status}, not as unavailable: {text}"
        );
        refused.push(status);
        assert!(
            Instant::now() < deadline,
            "not taken after 90 s: {status} {text}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn the_broker_or_the_database_restarting_is_answered_503_and_loses_nothing() {
    let _one = serial();
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::day(dir.path());
    let offline = scenario.hunt_alerts();
    let batches = scenario.batches();
    let c = Cluster::new("restart");
    let api = c.start("api");
    let admin = api.admin();
    let key = api.api_key(&admin);
    let detect = c.start("detect");
    let ingest = c.start("ingest");
    let third = batches.len() / 3;
    send(&ingest, &key, &batches[..third]);

    // RabbitMQ goes down: ingest says so (503), and takes the batch once it is back.
    run("rabbitmqctl", &["-q", "stop_app"]);
    let (p, body) = &batches[third];
    let (status, _, text) = ingest.req(
        "POST",
        &format!("/api/v1/threats/ingest/{p}"),
        Some(&key),
        Some(body.as_bytes()),
    );
    run("rabbitmqctl", &["-q", "start_app"]);
    assert_eq!(status, 503, "{text}");
    post_until_taken(&ingest, &key, p, body);
    send(&ingest, &key, &batches[third + 1..2 * third]);

    // PostgreSQL goes down: the batches wait in the queue, and what ingest cannot check (the
    // API key lives in the database) is refused as unavailable.
    run("pg_ctlcluster", &["15", "main", "stop", "-m", "fast"]);
    let (p, body) = &batches[2 * third];
    let (status, _, text) = ingest.req(
        "POST",
        &format!("/api/v1/threats/ingest/{p}"),
        Some(&key),
        Some(body.as_bytes()),
    );
    run("pg_ctlcluster", &["15", "main", "start"]);
    assert_eq!(status, 503, "{text}");
    post_until_taken(&ingest, &key, p, body);
    send(&ingest, &key, &batches[2 * third + 1..]);

    drain(&ingest, &[&detect]);
    assert!(detect.stop().success());
    // Nothing lost, nothing twice: the alerts hunt raises from the same events.
    assert_same_alerts(&offline, &api.all_alerts(&admin));
    assert_eq!(
        c.db.scalar("SELECT COUNT(*) FROM (SELECT DISTINCT id FROM events) e")
            .unwrap(),
        c.db.scalar("SELECT COUNT(*) FROM events").unwrap(),
        "no event stored twice"
    );
}
