//! End-to-end tests of `cloudsentinel serve`: the real binary, a real SQLite file in a temporary
//! directory, HTTP over 127.0.0.1.

mod support;

use std::io::Write;
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

#[test]
fn ingest_accepts_every_shape_refuses_bad_input_and_never_duplicates() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);

    // A broken line: 400 naming the line, and nothing stored.
    let broken = std::fs::read(testdata("cloudtrail/attack_story.jsonl")).unwrap();
    let (status, v, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(&broken),
    );
    assert_eq!(status, 400, "{text}");
    assert!(
        v["message"].as_str().unwrap().starts_with("line 5:"),
        "{text}"
    );
    assert_eq!(v["details"]["errors"][0]["line"], 5);
    assert_eq!(s.get("/api/v1/dashboard/stats", &admin)["events_total"], 0);

    // JSON Lines.
    let lines = story_lines();
    let body = lines.join("\n");
    let (status, v, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    assert_eq!(v["accepted"], lines.len());
    let alerts = s.get("/api/v1/alerts", &admin);
    assert!(total(&alerts) > 0, "the story raises alerts: {alerts}");
    let alert_count = total(&alerts);
    let signals: u64 = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["count"].as_u64().unwrap())
        .sum();

    // The same batch again: all duplicates, and the alerts do not count them twice.
    let (status, v, _) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 202);
    assert_eq!(
        (v["accepted"].as_u64(), v["duplicates"].as_u64()),
        (Some(0), Some(lines.len() as u64))
    );
    let again = s.get("/api/v1/alerts", &admin);
    assert_eq!(total(&again), alert_count);
    let signals_again: u64 = again["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["count"].as_u64().unwrap())
        .sum();
    assert_eq!(signals_again, signals);

    // {"Records": [...]}, a JSON array, gzip with and without Content-Encoding.
    let recs = records("shape", 30);
    let wrapped = json!({"Records": recs[..10]}).to_string();
    let (status, v, text) = s.req(
        "POST",
        "/api/v1/ingest?format=aws",
        Some(&key),
        Some(wrapped.as_bytes()),
    );
    assert_eq!((status, v["accepted"].as_u64()), (202, Some(10)), "{text}");
    let array = Value::Array(recs[10..20].to_vec()).to_string();
    let (status, v, _) = s.req("POST", "/api/v1/ingest", Some(&key), Some(array.as_bytes()));
    assert_eq!((status, v["accepted"].as_u64()), (202, Some(10)));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&jsonl(&recs[20..])).unwrap();
    let gz = gz.finish().unwrap();
    let (status, v, text) = s.req_h(
        "POST",
        "/api/v1/ingest",
        Some(&key),
        Some(&gz),
        &[("content-encoding", "gzip")],
    );
    assert_eq!((status, v["accepted"].as_u64()), (202, Some(10)), "{text}");
    let stats = s.get("/api/v1/dashboard/stats", &admin);
    assert_eq!(
        stats["events_total"].as_u64(),
        Some(lines.len() as u64 + 30)
    );

    // An Azure record sent to the AWS route is refused with its index.
    let azure = br#"{"time":"2026-11-20T10:00:00Z","resourceId":"/subscriptions/x","operationName":"MICROSOFT.AUTHORIZATION/ROLEASSIGNMENTS/WRITE","category":"Administrative","resultType":"Success","callerIpAddress":"203.0.113.9","identity":{}}"#;
    let (status, v, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(azure),
    );
    assert_eq!(status, 400, "{text}");
    assert_eq!(v["details"]["errors"][0]["index"], 0, "{text}");
    let (status, _, _) = s.req(
        "POST",
        "/api/v1/ingest?format=oracle",
        Some(&key),
        Some(b"{}"),
    );
    assert_eq!(status, 400);
    let (status, _, _) = s.req("POST", "/api/v1/ingest", Some(&key), Some(b""));
    assert_eq!(status, 400);

    // analyze: detections for a record, nothing stored.
    let stop = &lines.iter().find(|l| l.contains("StopLogging")).unwrap();
    let (status, v, text) = s.req(
        "POST",
        "/api/v1/threats/analyze",
        Some(&admin),
        Some(stop.as_bytes()),
    );
    assert_eq!(status, 200, "{text}");
    assert!(!v["detections"].as_array().unwrap().is_empty(), "{text}");
    assert!(
        v["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["explanation"]
                .as_str()
                .unwrap()
                .contains("eventName=StopLogging")),
        "{text}"
    );
    assert_eq!(
        s.get("/api/v1/dashboard/stats", &admin)["events_total"],
        stats["events_total"]
    );

    // Metrics count what happened.
    let (status, _, metrics) = s.req("GET", "/metrics", None, None);
    assert_eq!(status, 200);
    assert!(
        metrics.contains(&format!(
            "cloudsentinel_events_ingested_total{{provider=\"aws\"}} {}",
            lines.len() + 30
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "cloudsentinel_events_duplicate_total {}",
            lines.len()
        )),
        "{metrics}"
    );
    assert!(
        metrics.contains("cloudsentinel_errors_total{kind=\"malformed\"} 3"),
        "{metrics}"
    );
    assert!(
        metrics.contains("cloudsentinel_pipeline_latency_seconds_count 5"),
        "{metrics}"
    );
    assert_eq!(
        s.stop().code(),
        Some(0),
        "SIGTERM stops the service cleanly"
    );
}

#[test]
fn limits_answer_413_and_429() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("CLOUDSENTINEL_SERVER__MAX_BODY_BYTES", "4000"),
            ("CLOUDSENTINEL_SERVER__MAX_DECOMPRESSED_BYTES", "8000"),
            ("CLOUDSENTINEL_PIPELINE__MAX_CONCURRENT_INGESTS", "1"),
        ],
        &[],
    );
    let key = s.api_key(&s.admin());
    let big = jsonl(&records("big", 20));
    let (status, _, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&big));
    assert_eq!(status, 413, "{text}");
    // Small when compressed, too big when not: a gzip bomb is cut off.
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(&vec![b' '; 100_000]).unwrap();
    let gz = gz.finish().unwrap();
    assert!(gz.len() < 4000);
    let (status, _, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&gz));
    assert_eq!(status, 413, "{text}");

    // One slow client holds the only ingest slot: the next request is refused at once with 429.
    let mut slow = TcpStream::connect(s.addr()).unwrap();
    write!(
        slow,
        "POST /api/v1/ingest HTTP/1.1\r\nhost: x\r\nx-api-key: {key}\r\ncontent-type: application/json\r\ncontent-length: 3000\r\n\r\n{{"
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let one = jsonl(&records("small", 1));
    let (status, v, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&one));
    assert_eq!(status, 429, "{text}");
    assert_eq!(v["error"], "too_many_requests");
    drop(slow);
    // Once the slot is free, the same request goes through.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (status, _, _) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&one));
        if status == 202 {
            break;
        }
        assert!(Instant::now() < deadline, "the slot was never released");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_route_enforces_its_role() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let roles = ["viewer", "analyst", "responder", "admin"];
    let password = "a-long-enough-password";
    for r in roles {
        let body =
            json!({"username": format!("u-{r}"), "password": password, "role": r}).to_string();
        let (status, _, text) = s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&admin),
            Some(body.as_bytes()),
        );
        assert_eq!(status, 201, "{text}");
    }
    let (_, doc, _) = s.req("GET", "/api/openapi.json", None, None);
    let paths = doc["paths"].as_object().expect("paths");
    assert!(paths.len() >= 30, "{} paths", paths.len());
    let rank = |r: &str| roles.iter().position(|x| *x == r);
    let mut tried = 0;
    for (path, ops) in paths {
        for (method, op) in ops.as_object().unwrap() {
            let method = method.to_uppercase();
            let need = op["x-required-role"]
                .as_str()
                .expect("every operation names its role");
            let concrete = path.replace("{id}", "999999");
            if need == "public" {
                continue;
            }
            let (status, _, text) = s.req(&method, &concrete, None, Some(b"{}"));
            assert_eq!(status, 401, "{method} {path} without a token: {text}");
            let (status, _, _) = s.req(&method, &concrete, Some("not-a-token"), Some(b"{}"));
            assert_eq!(status, 401, "{method} {path} with a bad token");
            for r in roles {
                // Sign in afresh: some routes (logout) revoke the token.
                let token = s.login(&format!("u-{r}"), password);
                let (status, _, text) = s.req(&method, &concrete, Some(&token), Some(b"{}"));
                let allowed = match need {
                    "ingest" => r == "admin",
                    n => rank(r) >= rank(n),
                };
                if allowed {
                    assert!(
                        status != 401 && status != 403,
                        "{method} {path} as {r}: {status} {text}"
                    );
                    // Every answer is one the document lists (what schemathesis checks).
                    assert!(
                        op["responses"].get(status.to_string()).is_some(),
                        "{method} {path} as {r}: {status} is not documented: {text}"
                    );
                } else {
                    assert_eq!(status, 403, "{method} {path} as {r} (needs {need}): {text}");
                }
                tried += 1;
            }
            let (status, _, text) = s.req(&method, &concrete, Some(&key), Some(b"{}"));
            if need == "ingest" {
                assert!(
                    status != 401 && status != 403,
                    "{method} {path} with an API key: {status} {text}"
                );
            } else {
                assert_eq!(status, 403, "{method} {path} with an ingest key: {text}");
            }
        }
    }
    assert!(tried > 100, "{tried}");
    // Trailing slashes answer like the plain path (the seed's clients call /alerts/).
    let token = s.login("u-viewer", password);
    let (status, _, _) = s.req("GET", "/api/v1/alerts/", Some(&token), None);
    assert_eq!(status, 200);
}

#[test]
fn accounts_tokens_and_login_limits() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[("CLOUDSENTINEL_AUTH__LOGIN_MAX_FAILURES", "3")],
        &[],
    );
    // OAuth2 password form.
    let (status, v, text) = s.req_h(
        "POST",
        "/api/v1/auth/login",
        None,
        Some(format!("grant_type=password&username={ADMIN}&password={ADMIN_PASSWORD}").as_bytes()),
        &[("content-type", "application/x-www-form-urlencoded")],
    );
    assert_eq!(status, 200, "{text}");
    for k in ["access_token", "refresh_token", "token_type", "expires_in"] {
        assert!(!v[k].is_null(), "{k} in {text}");
    }
    let access = v["access_token"].as_str().unwrap().to_string();
    let me = s.get("/api/v1/auth/me", &access);
    assert_eq!(
        (me["username"].as_str(), me["role"].as_str()),
        (Some(ADMIN), Some("admin"))
    );

    // Refresh gives working tokens; a refresh token is not an access token.
    let body = json!({"refresh_token": v["refresh_token"]}).to_string();
    let (status, r, _) = s.req("POST", "/api/v1/auth/refresh", None, Some(body.as_bytes()));
    assert_eq!(status, 200);
    s.get("/api/v1/auth/me", r["access_token"].as_str().unwrap());
    let (status, _, _) = s.req(
        "GET",
        "/api/v1/auth/me",
        Some(v["refresh_token"].as_str().unwrap()),
        None,
    );
    assert_eq!(status, 401);

    // Weak passwords and duplicate names are refused; the password is stored as argon2id.
    let weak = json!({"username": "ann", "password": "short", "role": "analyst"}).to_string();
    assert_eq!(
        s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&access),
            Some(weak.as_bytes())
        )
        .0,
        400
    );
    let ann = json!({"username": "ann", "password": "ann-has-a-long-password", "role": "analyst"})
        .to_string();
    assert_eq!(
        s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&access),
            Some(ann.as_bytes())
        )
        .0,
        201
    );
    assert_eq!(
        s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&access),
            Some(ann.as_bytes())
        )
        .0,
        409
    );

    // Logout revokes every token of that user.
    let ann_token = s.login("ann", "ann-has-a-long-password");
    assert_eq!(
        s.req("POST", "/api/v1/auth/logout", Some(&ann_token), None)
            .0,
        200
    );
    assert_eq!(
        s.req("GET", "/api/v1/auth/me", Some(&ann_token), None).0,
        401
    );

    // Disabling a user locks them out.
    let users = s.get("/api/v1/users", &access);
    let ann_id = users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == "ann")
        .unwrap()["id"]
        .as_i64()
        .unwrap();
    let (status, _, _) = s.req(
        "PATCH",
        &format!("/api/v1/users/{ann_id}"),
        Some(&access),
        Some(br#"{"disabled":true}"#),
    );
    assert_eq!(status, 200);
    let body = json!({"username": "ann", "password": "ann-has-a-long-password"}).to_string();
    assert_eq!(
        s.req("POST", "/api/v1/auth/login", None, Some(body.as_bytes()))
            .0,
        401
    );

    // Repeated failures are rate limited, even with the right password afterwards.
    let wrong = json!({"username": ADMIN, "password": "wrong-wrong-wrong"}).to_string();
    for _ in 0..2 {
        assert_eq!(
            s.req("POST", "/api/v1/auth/login", None, Some(wrong.as_bytes()))
                .0,
            401
        );
    }
    let (status, _, _) = s.req("POST", "/api/v1/auth/login", None, Some(wrong.as_bytes()));
    assert!(status == 401 || status == 429);
    let right = json!({"username": ADMIN, "password": ADMIN_PASSWORD}).to_string();
    let (status, _, text) = s.req("POST", "/api/v1/auth/login", None, Some(right.as_bytes()));
    assert_eq!(status, 429, "{text}");

    // No secret reaches the database in clear.
    drop(s);
    // The database and its write-ahead log.
    let mut db = std::fs::read(dir.path().join("cloudsentinel.db")).unwrap();
    db.extend(std::fs::read(dir.path().join("cloudsentinel.db-wal")).unwrap_or_default());
    let hay = String::from_utf8_lossy(&db);
    assert!(!hay.contains(ADMIN_PASSWORD) && !hay.contains("ann-has-a-long-password"));
    assert!(hay.contains("$argon2id$"));
}

#[test]
fn alerts_incidents_feedback_suppressions_and_dashboard() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let body = story_lines().join("\n");
    assert_eq!(
        s.req(
            "POST",
            "/api/v1/threats/ingest/aws",
            Some(&key),
            Some(body.as_bytes())
        )
        .0,
        202
    );

    let all = s.get("/api/v1/alerts?limit=100", &admin);
    let items = all["items"].as_array().unwrap();
    assert!(items.len() >= 2, "{all}");
    // Sorted newest first by default; ascending on request.
    let last: Vec<&str> = items
        .iter()
        .map(|a| a["last_seen"].as_str().unwrap())
        .collect();
    assert!(last.windows(2).all(|w| w[0] >= w[1]), "{last:?}");
    let asc = s.get("/api/v1/alerts?sort=last_seen&order=asc&limit=100", &admin);
    assert_eq!(asc["items"][0]["id"], items.last().unwrap()["id"]);
    // Filters narrow.
    let a0 = &items[0];
    let by_rule = s.get(
        &format!("/api/v1/alerts?rule={}", a0["rule_id"].as_str().unwrap()),
        &admin,
    );
    assert!(
        by_rule["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["rule_id"] == a0["rule_id"])
    );
    let high = s.get("/api/v1/alerts?min_level=high", &admin);
    assert!(
        high["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["level"] == "high" || a["level"] == "critical")
    );
    let page = s.get("/api/v1/alerts?limit=1&offset=1", &admin);
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert_eq!(page["items"][0]["id"], items[1]["id"]);
    assert_eq!(total(&s.get("/api/v1/alerts?q=zzzz-nothing", &admin)), 0);
    let (status, v, _) = s.req("GET", "/api/v1/alerts?level=severe", Some(&admin), None);
    assert_eq!(status, 400);
    assert!(v["message"].as_str().unwrap().contains("level=severe"));

    // Detail: evidence with raw records, explanation, remedy, surrounding activity.
    let id = a0["id"].as_i64().unwrap();
    let d = s.get(&format!("/api/v1/alerts/{id}"), &admin);
    assert!(!d["evidence"].as_array().unwrap().is_empty());
    assert!(d["evidence"][0]["raw"]["eventID"].is_string(), "{d}");
    assert!(!d["explanation"].as_str().unwrap().is_empty());
    assert!(
        !d["surrounding_activity"]["events"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert!(
        d["incident"]["id"].is_i64(),
        "every alert belongs to an incident: {d}"
    );

    // Triage.
    let analyst = {
        let b =
            json!({"username": "ann", "password": "ann-has-a-long-password", "role": "analyst"})
                .to_string();
        s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&admin),
            Some(b.as_bytes()),
        );
        s.login("ann", "ann-has-a-long-password")
    };
    let (status, v, text) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{id}"),
        Some(&analyst),
        Some(br#"{"status":"investigating","assignee":"ann","comment":"looking at it"}"#),
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        (v["status"].as_str(), v["assignee"].as_str()),
        (Some("investigating"), Some("ann"))
    );
    let d = s.get(&format!("/api/v1/alerts/{id}"), &admin);
    assert_eq!(d["comments"][0]["text"], "looking at it");
    assert_eq!(
        s.req(
            "PATCH",
            &format!("/api/v1/alerts/{id}"),
            Some(&analyst),
            Some(br#"{"status":"done"}"#)
        )
        .0,
        400
    );

    // A confirmed attack cannot be suppressed.
    let (status, _, text) = s.req(
        "POST",
        &format!("/api/v1/alerts/{id}/feedback"),
        Some(&analyst),
        Some(br#"{"verdict":"true_positive","reason":"confirmed with the owner"}"#),
    );
    assert_eq!(status, 201, "{text}");
    let sup = json!({"rule_id": a0["rule_id"], "entity": a0["entity"], "reason": "noisy", "duration_hours": 24}).to_string();
    let (status, v, text) = s.req(
        "POST",
        "/api/v1/suppressions",
        Some(&analyst),
        Some(sup.as_bytes()),
    );
    assert_eq!(status, 409, "{text}");
    assert!(v["message"].as_str().unwrap().contains("true positive"));

    // A false positive closes the alert; a suppression then holds new matches back.
    let other = items.iter().find(|a| a["id"] != a0["id"]).unwrap();
    let oid = other["id"].as_i64().unwrap();
    let (status, _, _) = s.req(
        "POST",
        &format!("/api/v1/alerts/{oid}/feedback"),
        Some(&analyst),
        Some(br#"{"verdict":"false_positive","reason":"the change window"}"#),
    );
    assert_eq!(status, 201);
    assert_eq!(
        s.get(&format!("/api/v1/alerts/{oid}"), &admin)["alert"]["status"],
        "closed"
    );
    assert_eq!(
        s.get(&format!("/api/v1/alerts/{oid}"), &admin)["alert"]["verdict"],
        "false_positive"
    );
    let (status, _, _) = s.req(
        "POST",
        &format!("/api/v1/alerts/{oid}/feedback"),
        Some(&analyst),
        Some(br#"{"verdict":"maybe"}"#),
    );
    assert_eq!(status, 400);

    // Incidents: alerts of one principal grouped, with tactics and a timeline.
    let inc = s.get("/api/v1/incidents", &admin);
    assert!(total(&inc) >= 1);
    let biggest = inc["items"]
        .as_array()
        .unwrap()
        .iter()
        .max_by_key(|i| i["alert_count"].as_u64())
        .unwrap();
    let detail = s.get(&format!("/api/v1/incidents/{}", biggest["id"]), &admin);
    let timeline = detail["timeline"].as_array().unwrap();
    assert_eq!(
        timeline.len() as u64,
        biggest["alert_count"].as_u64().unwrap()
    );
    let times: Vec<&str> = timeline
        .iter()
        .map(|t| t["time"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "timeline in time order: {times:?}"
    );
    assert!(!detail["incident"]["tactics"].as_array().unwrap().is_empty());
    // ...and the story in words, its first alert first.
    let story = detail["narrative"]["text"].as_str().unwrap();
    assert!(!detail["narrative"]["steps"].as_array().unwrap().is_empty());
    let first = timeline
        .iter()
        .find(|t| t["level"] != "informational")
        .unwrap();
    let first_title = first["title"].as_str().unwrap();
    assert!(story.starts_with("From "), "{story}");
    assert!(
        detail["narrative"]["steps"][0]
            .as_str()
            .unwrap()
            .contains(&first["time"].as_str().unwrap()[11..16]),
        "{story}"
    );
    assert!(
        story.contains(first_title.trim_end_matches('.')),
        "{story}\n{first_title}"
    );

    // An incident is worked: resolving it needs a reason; assignee, severity and notes stick.
    let iid = biggest["id"].as_i64().unwrap();
    let path = format!("/api/v1/incidents/{iid}");
    let (status, _, text) = s.req(
        "PATCH",
        &path,
        Some(&analyst),
        Some(br#"{"status":"resolved"}"#),
    );
    assert_eq!(status, 400, "{text}");
    assert!(text.contains("close_reason"), "{text}");
    let (status, _, text) = s.req(
        "PATCH",
        &path,
        Some(&analyst),
        Some(br#"{"severity":"severe"}"#),
    );
    assert_eq!(status, 400, "{text}");
    let (status, _, text) = s.req(
        "PATCH",
        &path,
        Some(&analyst),
        Some(br#"{"status":"resolved","assignee":"kim","severity":"critical","close_reason":"contained: key disabled","comment":"rotated the key at 10:02"}"#),
    );
    assert_eq!(status, 200, "{text}");
    let worked = s.get(&path, &admin);
    assert_eq!(worked["incident"]["status"], "resolved");
    assert_eq!(worked["incident"]["assignee"], "kim");
    assert_eq!(worked["incident"]["severity"], "critical");
    assert_eq!(
        worked["incident"]["close_reason"],
        "contained: key disabled"
    );
    assert_eq!(worked["comments"][0]["text"], "rotated the key at 10:02");
    assert_eq!(worked["comments"][0]["author"], "ann");

    // Dashboard data.
    let stats = s.get("/api/v1/dashboard/stats", &admin);
    assert_eq!(
        stats["events_total"].as_u64(),
        Some(story_lines().len() as u64)
    );
    assert_eq!(stats["alerts_total"], all["total"]);
    let trends = s.get("/api/v1/dashboard/trends?hours=24", &admin);
    assert!(!trends["points"].as_array().unwrap().is_empty());
    let top = s.get("/api/v1/dashboard/top-threats", &admin);
    assert!(!top["items"].as_array().unwrap().is_empty());
    let geo = s.get("/api/v1/dashboard/geographic-distribution", &admin);
    assert!(
        geo["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["source"] == "203.0.113.50"),
        "{geo}"
    );
    let cov = s.get("/api/v1/dashboard/attack-coverage", &admin);
    assert!(
        cov["techniques_covered"].as_u64().unwrap() > 50,
        "{}",
        cov["techniques_covered"]
    );
    assert!(cov["techniques_alerted"].as_u64().unwrap() >= 1);

    // Event search.
    let ev = s.get("/api/v1/events?operation=StopLogging&raw=true", &admin);
    assert!(total(&ev) >= 1);
    assert_eq!(ev["items"][0]["raw"]["eventName"], "StopLogging");
    let (status, _, _) = s.req("GET", "/api/v1/events?since=yesterday", Some(&admin), None);
    assert_eq!(status, 400);

    // The audit log has every change, newest first, with who and from where.
    let audit = s.get("/api/v1/audit", &admin);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    for a in [
        "alert.updated",
        "alert.feedback",
        "user.created",
        "api_key.created",
        "auth.login",
    ] {
        assert!(actions.contains(&a), "{a} in {actions:?}");
    }
    assert_eq!(audit["items"][0]["source_ip"], "127.0.0.1");

    // API docs served from the binary.
    let (status, _, html) = s.req("GET", "/docs", None, None);
    assert_eq!(status, 200);
    assert!(
        html.contains("/api/v1/alerts") && !html.contains("https://"),
        "no CDN"
    );
    let (status, health, _) = s.req("GET", "/health", None, None);
    assert_eq!((status, health["status"].as_str()), (200, Some("ok")));
}

#[test]
fn audit_verify_detects_edits_and_deletions() {
    let dir = tempfile::tempdir().unwrap();
    {
        let s = Server::start(dir.path(), &[], &[]);
        let admin = s.admin();
        s.api_key(&admin);
        s.api_key(&admin);
        assert_eq!(s.stop().code(), Some(0));
    }
    let verify = || {
        Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .args(["audit", "verify", "--data-dir"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    let out = verify();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("intact: 4 entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );

    let db = rusqlite::Connection::open(dir.path().join("cloudsentinel.db")).unwrap();
    db.execute("UPDATE audit SET actor = 'mallory' WHERE seq = 2", [])
        .unwrap();
    let out = verify();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("entry 2: contents changed"), "{text}");
    db.execute("UPDATE audit SET actor = 'admin' WHERE seq = 2", [])
        .unwrap();
    assert!(verify().status.success(), "restored");

    db.execute("DELETE FROM audit WHERE seq = 3", []).unwrap();
    let out = verify();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1));
    assert!(text.contains("entries 3..3 are missing"), "{text}");

    // Deleting the newest entry leaves the chain consistent but not the head.
    let dir2 = tempfile::tempdir().unwrap();
    {
        let s = Server::start(dir2.path(), &[], &[]);
        s.admin();
    }
    let db2 = rusqlite::Connection::open(dir2.path().join("cloudsentinel.db")).unwrap();
    db2.execute(
        "DELETE FROM audit WHERE seq = (SELECT MAX(seq) FROM audit)",
        [],
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .args(["audit", "verify", "--data-dir"])
        .arg(dir2.path())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("newest entries deleted"));
}

#[test]
fn kill_9_during_ingest_keeps_every_acknowledged_batch_exactly_once() {
    let dir = tempfile::tempdir().unwrap();
    let batches: Vec<Vec<u8>> = (0..40)
        .map(|b| jsonl(&records(&format!("k{b}"), 500)))
        .collect();
    let mut acked = Vec::new();
    {
        let s = Server::start(dir.path(), &[], &[]);
        let key = s.api_key(&s.admin());
        let (tx, rx) = std::sync::mpsc::channel();
        let sender = {
            let base = s.base.clone();
            let batches = batches.clone();
            std::thread::spawn(move || {
                let agent: ureq::Agent = ureq::Agent::config_builder()
                    .http_status_as_error(false)
                    .build()
                    .into();
                for (i, b) in batches.iter().enumerate() {
                    match agent
                        .post(&format!("{base}/api/v1/ingest"))
                        .header("x-api-key", &key)
                        .send(&b[..])
                    {
                        Ok(r) if r.status() == 202 => {
                            let _ = tx.send(i);
                        }
                        _ => return,
                    }
                }
            })
        };
        // Kill while batches are still arriving.
        while acked.len() < 10 {
            acked.push(
                rx.recv_timeout(Duration::from_secs(60))
                    .expect("batches are acknowledged"),
            );
        }
        let mut s = s;
        s.child.kill().unwrap(); // SIGKILL: no chance to flush anything
        s.child.wait().unwrap();
        let _ = sender.join();
        while let Ok(i) = rx.try_recv() {
            acked.push(i);
        }
    }
    assert!(acked.len() < batches.len(), "the kill came before the end");
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    for i in &acked {
        for n in [0, 250, 499] {
            let found = s.get(&format!("/api/v1/events?q=k{i}-{n}"), &admin);
            assert_eq!(total(&found), 1, "event {n} of acknowledged batch {i}");
        }
    }
    // Sending everything again stores each event once.
    let key = s.api_key(&admin);
    let mut accepted = 0;
    let mut duplicates = 0;
    for b in &batches {
        let (status, v, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(b));
        assert_eq!(status, 202, "{text}");
        accepted += v["accepted"].as_u64().unwrap();
        duplicates += v["duplicates"].as_u64().unwrap();
    }
    assert!(duplicates >= acked.len() as u64 * 500);
    assert_eq!(accepted + duplicates, 40 * 500);
    let stats = s.get("/api/v1/dashboard/stats", &admin);
    assert_eq!(
        stats["events_total"].as_u64(),
        Some(40 * 500),
        "nothing lost, nothing twice"
    );
}

#[test]
fn a_watched_directory_is_ingested_once() {
    let dir = tempfile::tempdir().unwrap();
    let incoming = dir.path().join("incoming");
    let sub = incoming.join("AWSLogs/111122223333/CloudTrail/us-east-1/2026/11/20");
    std::fs::create_dir_all(&sub).unwrap();
    let config = dir.path().join("cs.toml");
    std::fs::write(
        &config,
        format!(
            "[[sources]]\npath = {:?}\nprovider = \"aws\"\npoll_secs = 1\n",
            incoming.display().to_string()
        ),
    )
    .unwrap();
    // Beside the generated records, an instance profile's session calling from AWS's own address
    // space (a NAT gateway's address) and the same session from an address outside AWS. Only the
    // second is "instance credentials used outside AWS": the source enriches addresses the way
    // `hunt` and the HTTP ingest do. (Before it went through the shared stage it did not, and
    // both fired.)
    let instance_call = |id: &str, ip: &str| {
        json!({
            "eventVersion": "1.09",
            "userIdentity": {"type": "AssumedRole", "principalId": "AROAEXAMPLEROLE:i-0123456789abcdef0",
                             "arn": "arn:aws:sts::111122223333:assumed-role/web/i-0123456789abcdef0",
                             "accountId": "111122223333", "accessKeyId": "ASIAEXAMPLEINSTANCE"},
            "eventTime": "2026-11-20T10:30:00Z", "eventSource": "s3.amazonaws.com",
            "eventName": "ListBuckets", "awsRegion": "us-east-1", "sourceIPAddress": ip,
            "userAgent": "aws-sdk-go/1.44", "eventID": id, "readOnly": true,
            "eventType": "AwsApiCall", "managementEvent": true,
            "recipientAccountId": "111122223333", "eventCategory": "Management"
        })
    };
    let mut all = records("dir", 23);
    all.push(instance_call("dir-inside-aws", "52.94.76.1"));
    all.push(instance_call("dir-outside-aws", "185.220.101.4"));
    let file = sub.join("111122223333_CloudTrail_us-east-1_20261120T1000Z_a.json");
    std::fs::write(&file, json!({"Records": all}).to_string()).unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &[],
        &["--config", config.to_str().unwrap()],
    );
    let admin = s.admin();
    let deadline = Instant::now() + Duration::from_secs(30);
    while s.get("/api/v1/dashboard/stats", &admin)["events_total"] != 25 {
        assert!(Instant::now() < deadline, "the file was not ingested");
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        s.get("/api/v1/dashboard/stats", &admin)["events_total"],
        25,
        "read once"
    );
    let alerts = s.get("/api/v1/alerts?limit=200", &admin);
    assert!(total(&alerts) >= 1, "the StopLogging records alert");
    let outside: Vec<&Value> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["rule_id"] == "d20378ae-de42-4912-b461-aa73fb9485c0")
        .collect();
    assert_eq!(outside.len(), 1, "{outside:#?}");
    assert_eq!(
        outside[0]["event_ids"],
        json!(["dir-outside-aws"]),
        "only the call from outside AWS: {outside:#?}"
    );
}

#[test]
fn config_check_names_the_bad_key() {
    let bin = env!("CARGO_BIN_EXE_cloudsentinel");
    let example = Path::new(env!("CARGO_MANIFEST_DIR")).join("cloudsentinel.example.toml");
    let out = Command::new(bin)
        .args(["config", "check"])
        .arg(&example)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.toml");
    std::fs::write(&bad, "[storage]\nretention_dayz = 3\n").unwrap();
    let out = Command::new(bin)
        .args(["config", "check"])
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("retention_dayz"));
    let out = Command::new(bin)
        .args(["config", "check"])
        .arg(&example)
        .env("CLOUDSENTINEL_STORAGE__SYNCHRONOUS", "sometimes")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("storage.synchronous"));
}

#[test]
fn demo_loads_a_scenario_that_raises_alerts_and_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("demo");
    let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .args([
            "demo",
            "--load-only",
            "--days",
            "5",
            "--stealth",
            "2",
            "--data-dir",
        ])
        .arg(&data)
        .env("CLOUDSENTINEL_LOG", "warn")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    let line = err
        .lines()
        .find(|l| l.starts_with("loaded in"))
        .unwrap_or_else(|| panic!("{err}"));
    // "loaded in 1.2 s: 23000 events, 30 alerts, 12 incidents"
    let numbers: Vec<u64> = line
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|n| n.parse().ok())
        .collect();
    let (events, alerts, incidents) = (
        numbers[numbers.len() - 3],
        numbers[numbers.len() - 2],
        numbers[numbers.len() - 1],
    );
    assert!(events > 10_000, "{line}");
    assert!(alerts >= 15, "{line}");
    assert!(incidents >= 5, "{line}");
    assert_eq!(err.matches("  story: ").count(), 7, "{err}");
    // The anomaly model was trained on the days before the attacks and scored the rest: anomaly
    // alerts with their explanations are in the store.
    assert!(err.contains("anomaly model 1 trained"), "{err}");
    let db = rusqlite::Connection::open(data.join("cloudsentinel.db")).unwrap();
    let anomalies: Vec<String> = db
        .prepare(
            "SELECT explanation FROM alerts WHERE kind = 'anomaly' AND rule_id = 'cloudsentinel.anomaly.behaviour'",
        )
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(!anomalies.is_empty(), "{err}");
    assert!(
        anomalies.iter().all(|e| e.starts_with("anomaly score ")),
        "{anomalies:?}"
    );
    assert!(
        anomalies.iter().any(|e| e.contains("first time from")),
        "{anomalies:?}"
    );
    // The explained behavioural detectors run in the service too, and say what they compared.
    let detected: Vec<String> = db
        .prepare("SELECT explanation FROM alerts WHERE rule_id LIKE 'cloudsentinel.behaviour.%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert!(
        detected
            .iter()
            .any(|e| e.contains("an AS no other principal uses")),
        "{detected:?}"
    );

    // A directory that is not a demo's is never wiped.
    let precious = dir.path().join("precious");
    std::fs::create_dir_all(&precious).unwrap();
    std::fs::write(precious.join("keep.txt"), "x").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .args(["demo", "--load-only", "--data-dir"])
        .arg(&precious)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(precious.join("keep.txt").exists());
}

/// One CloudTrail StopLogging record by `user` at `time`.
fn stop_logging(id: &str, user: &str, time: &str) -> Value {
    let mut r = records(id, 8).remove(7);
    r["eventID"] = json!(id);
    r["eventTime"] = json!(time);
    r["userIdentity"]["arn"] = json!(format!("arn:aws:iam::111122223333:user/{user}"));
    r["userIdentity"]["userName"] = json!(user);
    r["userIdentity"]["accessKeyId"] = json!("AKIAEXAMPLESUPPRESS1");
    r
}

#[test]
fn a_suppression_holds_back_new_alerts_until_it_is_removed() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let post = |r: Value| {
        let (status, _, text) = s.req(
            "POST",
            "/api/v1/ingest",
            Some(&key),
            Some(r.to_string().as_bytes()),
        );
        assert_eq!(status, 202, "{text}");
    };
    post(stop_logging("sup-1", "ops", "2026-11-20T10:00:00Z"));
    let first = s.get("/api/v1/alerts?q=StopLogging", &admin);
    let trail_alert = first["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("CloudTrail"))
        .unwrap_or_else(|| panic!("{first}"))
        .clone();
    let body = json!({"rule_id": trail_alert["rule_id"], "entity": trail_alert["entity"],
                      "reason": "planned trail migration", "duration_hours": 24})
    .to_string();
    let (status, sup, text) = s.req(
        "POST",
        "/api/v1/suppressions",
        Some(&admin),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 201, "{text}");

    // Hours later (a new alert window), the same rule and entity: suppressed.
    post(stop_logging("sup-2", "ops", "2026-11-20T15:00:00Z"));
    let trail_alerts = |s: &Server| {
        s.get(
            &format!(
                "/api/v1/alerts?rule={}",
                trail_alert["rule_id"].as_str().unwrap()
            ),
            &admin,
        )
    };
    assert_eq!(total(&trail_alerts(&s)), 1, "suppressed: no second alert");
    let (_, _, metrics) = s.req("GET", "/metrics", None, None);
    assert!(
        metrics.contains("cloudsentinel_signals_suppressed_total 1"),
        "{metrics}"
    );
    // A suppression hides alerts, not evidence: the event is stored.
    assert_eq!(total(&s.get("/api/v1/events?q=sup-2", &admin)), 1);

    // Removed: the next match alerts again.
    let (status, _, _) = s.req(
        "DELETE",
        &format!("/api/v1/suppressions/{}", sup["id"]),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200);
    post(stop_logging("sup-3", "ops", "2026-11-20T20:00:00Z"));
    assert_eq!(total(&trail_alerts(&s)), 2);
}

/// One CloudTrail call by the user `dana` with her access key.
fn dana_call(
    id: &str,
    time: &str,
    ip: &str,
    ua: &str,
    source: &str,
    name: &str,
    read_only: bool,
) -> Value {
    json!({
        "eventVersion": "1.09",
        "eventID": id,
        "eventTime": time,
        "eventSource": source,
        "eventName": name,
        "awsRegion": "eu-west-1",
        "sourceIPAddress": ip,
        "userAgent": ua,
        "readOnly": read_only,
        "recipientAccountId": "111122223333",
        "eventType": "AwsApiCall",
        "userIdentity": {
            "type": "IAMUser",
            "principalId": "AIDAEXAMPLEDANA00001",
            "arn": "arn:aws:iam::111122223333:user/dana",
            "accountId": "111122223333",
            "accessKeyId": "AKIAEXAMPLEDANA00001",
            "userName": "dana"
        }
    })
}

fn wait_for_model(s: &Server, admin: &str, id: i64) -> Value {
    for _ in 0..600 {
        let m = s.get(&format!("/api/v1/models/{id}"), admin);
        // Done once it has an outcome and the run (activation included) has let go.
        let busy = s.get("/api/v1/models", admin)["training"]
            .as_array()
            .is_some_and(|t| !t.is_empty());
        if m["status"] != "training" && !busy {
            return s.get(&format!("/api/v1/models/{id}"), admin);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!("model {id} still training after 60 s");
}

#[test]
fn models_train_activate_score_and_roll_back_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);

    // A fresh install says plainly that there is nothing to train on.
    let (status, m, text) = s.req(
        "POST",
        "/api/v1/models/train?model_name=anomaly",
        Some(&admin),
        None,
    );
    assert_eq!(status, 202, "{text}");
    let m = wait_for_model(&s, &admin, m["id"].as_i64().unwrap());
    assert_eq!(m["status"], "failed");
    assert!(
        m["message"]
            .as_str()
            .unwrap()
            .contains("no events are stored"),
        "{m}"
    );
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/models/train?model_name=forest",
        Some(&admin),
        None,
    );
    assert_eq!(status, 400, "{text}");

    // Ten weekdays of dana reading S3 from her office during office hours.
    let mut history = Vec::new();
    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap();
    for day in 0..14 {
        if day % 7 >= 5 {
            continue;
        }
        for i in 0..40 {
            let t =
                start + chrono::Duration::days(day) + chrono::Duration::minutes(8 * 60 + i * 12);
            let name = ["GetObject", "ListBuckets", "PutObject", "HeadObject"][i as usize % 4];
            history.push(dana_call(
                &format!("h-{day}-{i}"),
                &t.to_rfc3339(),
                "198.51.100.23",
                "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64",
                "s3.amazonaws.com",
                name,
                name != "PutObject",
            ));
        }
    }
    let (status, _, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&jsonl(&history)));
    assert_eq!(status, 202, "{text}");

    let (status, m, text) = s.req(
        "POST",
        "/api/v1/models/train?model_name=anomaly&activate=true",
        Some(&admin),
        None,
    );
    assert_eq!(status, 202, "{text}");
    let v1 = wait_for_model(&s, &admin, m["id"].as_i64().unwrap());
    assert_eq!(v1["status"], "ready", "{v1}");
    assert!(v1["metrics"]["threshold"].as_f64().unwrap() >= 0.5, "{v1}");
    let list = s.get("/api/v1/models", &admin);
    assert_eq!(list["active"]["anomaly"], v1["id"], "{list}");

    // Her key, from a hosting provider at night, with a different tool: discovery, then a new
    // access key. The running pipeline scores it with the model just activated.
    let night = start + chrono::Duration::days(14) + chrono::Duration::hours(3);
    let attack: Vec<Value> = (0..6)
        .map(|i| {
            let t = night + chrono::Duration::minutes(i);
            let (src, name, ro) = if i < 5 {
                ("iam.amazonaws.com", "ListRoles", true)
            } else {
                ("iam.amazonaws.com", "CreateAccessKey", false)
            };
            dana_call(
                &format!("a-{i}"),
                &t.to_rfc3339(),
                "146.190.77.5",
                "python-requests/2.31.0",
                src,
                name,
                ro,
            )
        })
        .collect();
    let (status, _, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&jsonl(&attack)));
    assert_eq!(status, 202, "{text}");
    let alerts = s.get(
        "/api/v1/alerts?rule=cloudsentinel.anomaly.behaviour",
        &admin,
    );
    let items = alerts["items"].as_array().unwrap();
    assert!(!items.is_empty(), "no anomaly alert: {alerts}");
    let a = &items[0];
    assert_eq!(a["kind"], "anomaly");
    let why = a["explanation"].as_str().unwrap();
    assert!(why.contains("first time from 146.190.77.5"), "{why}");
    assert!(
        a["techniques"]
            .as_array()
            .unwrap()
            .contains(&json!("T1078.004")),
        "{a}"
    );
    assert!(
        a["event_ids"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e.as_str().unwrap().starts_with("a-")),
        "{a}"
    );
    // Her usual work raises nothing.
    let usual = dana_call(
        "u-1",
        &(start + chrono::Duration::days(14) + chrono::Duration::hours(10)).to_rfc3339(),
        "198.51.100.23",
        "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64",
        "s3.amazonaws.com",
        "GetObject",
        true,
    );
    s.req("POST", "/api/v1/ingest", Some(&key), Some(&jsonl(&[usual])));
    let after = s.get(
        "/api/v1/alerts?rule=cloudsentinel.anomaly.behaviour",
        &admin,
    );
    assert!(
        after["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| !a["event_ids"].to_string().contains("u-1")),
        "{after}"
    );

    // A second version, activated by hand; rollback returns to the first, at once.
    let (_, m, _) = s.req(
        "POST",
        "/api/v1/models/train?model_name=anomaly",
        Some(&admin),
        None,
    );
    let v2 = wait_for_model(&s, &admin, m["id"].as_i64().unwrap());
    assert_eq!(
        (v2["status"].as_str(), v2["version"].as_i64()),
        (Some("ready"), Some(v1["version"].as_i64().unwrap() + 1))
    );
    let (status, on, text) = s.req(
        "POST",
        &format!("/api/v1/models/{}/activate", v2["id"]),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(on["active"], true);
    assert_eq!(
        s.get("/api/v1/models", &admin)["active"]["anomaly"],
        v2["id"]
    );
    let (status, back, text) = s.req(
        "POST",
        "/api/v1/models/rollback?model_name=anomaly",
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{text}");
    assert_eq!(back["active"]["id"], v1["id"], "{back}");
    assert_eq!(
        s.get("/api/v1/models", &admin)["active"]["anomaly"],
        v1["id"]
    );

    // The feedback model needs labels, and says how many.
    let (_, m, _) = s.req(
        "POST",
        "/api/v1/models/train?model_name=feedback",
        Some(&admin),
        None,
    );
    let f = wait_for_model(&s, &admin, m["id"].as_i64().unwrap());
    assert_eq!(f["status"], "failed");
    assert!(
        f["message"].as_str().unwrap().contains("labelled alerts"),
        "{f}"
    );

    // Every change is in the audit log.
    let audit = s.get("/api/v1/audit?limit=100", &admin).to_string();
    for action in ["model.train", "model.activate", "model.rollback"] {
        assert!(audit.contains(action), "{action} not audited");
    }
    // And the model survives a restart as the active one.
    s.stop();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    assert_eq!(
        s.get("/api/v1/models", &admin)["active"]["anomaly"],
        v1["id"]
    );
}

/// `cloudsentinel models ...` against the running service: train (waiting), list, activate,
/// roll back; a wrong password and a missing one are clear errors.
#[test]
fn models_cli_trains_activates_and_rolls_back_against_the_running_service() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let cli = |args: &[&str], password: Option<&str>| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_cloudsentinel"));
        cmd.arg("models").args(args).args(["--url", &s.base]);
        cmd.env_remove("CLOUDSENTINEL_PASSWORD")
            .env_remove("CLOUDSENTINEL_TOKEN");
        if let Some(p) = password {
            cmd.env("CLOUDSENTINEL_PASSWORD", p);
        }
        let out = cmd.output().expect("the binary runs");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };
    let ok = |args: &[&str]| {
        let (code, out, err) = cli(args, Some(ADMIN_PASSWORD));
        assert_eq!(code, Some(0), "models {args:?}: {out}{err}");
        out
    };
    assert!(ok(&["list"]).contains("no models yet"));
    let (code, _, err) = cli(&["list"], None);
    assert_ne!(code, Some(0));
    assert!(err.contains("CLOUDSENTINEL_PASSWORD"), "{err}");
    let (code, _, err) = cli(&["list"], Some("wrong"));
    assert_ne!(code, Some(0));
    assert!(err.contains("401"), "{err}");

    // A fresh install: training fails and says why; the command fails with it.
    let (code, out, err) = cli(&["train", "anomaly", "--wait"], Some(ADMIN_PASSWORD));
    assert_ne!(code, Some(0), "{out}{err}");
    assert!(
        out.contains("failed") && out.contains("no events are stored"),
        "{out}"
    );

    let start = chrono::DateTime::parse_from_rfc3339("2026-03-02T00:00:00Z").unwrap();
    let history: Vec<Value> = (0..10)
        .flat_map(|day| (0..40).map(move |i| (day, i)))
        .map(|(day, i)| {
            let t =
                start + chrono::Duration::days(day) + chrono::Duration::minutes(8 * 60 + i * 12);
            dana_call(
                &format!("h-{day}-{i}"),
                &t.to_rfc3339(),
                "198.51.100.23",
                "aws-cli/2.15.0 Python/3.11.6 Linux/6.1.0 exe/x86_64",
                "s3.amazonaws.com",
                "GetObject",
                true,
            )
        })
        .collect();
    let (status, _, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&jsonl(&history)));
    assert_eq!(status, 202, "{text}");

    let out = ok(&["train", "anomaly", "--wait", "--activate", "--json"]);
    let v1: Value = serde_json::from_str(&out).expect("JSON");
    assert_eq!(v1["status"], "ready", "{v1}");
    let id1 = v1["id"].as_i64().unwrap();
    let listed: Value = serde_json::from_str(&ok(&["list", "--json"])).unwrap();
    assert_eq!(listed["active"]["anomaly"], id1, "{listed}");
    assert_eq!(s.get("/api/v1/models", &admin)["active"]["anomaly"], id1);

    let v2: Value = serde_json::from_str(&ok(&["train", "anomaly", "--wait", "--json"])).unwrap();
    let id2 = v2["id"].as_i64().unwrap();
    assert_eq!(s.get("/api/v1/models", &admin)["active"]["anomaly"], id1);
    let table = ok(&["list"]);
    assert!(table.contains("threshold"), "{table}");
    assert!(ok(&["activate", &id2.to_string()]).contains(&format!("model {id2}")));
    assert_eq!(s.get("/api/v1/models", &admin)["active"]["anomaly"], id2);
    assert!(ok(&["show", &id2.to_string()]).contains("active       true"));
    let back = ok(&["rollback", "anomaly"]);
    assert!(back.contains(&format!("model {id1}")), "{back}");
    assert_eq!(s.get("/api/v1/models", &admin)["active"]["anomaly"], id1);
    // Activating what does not exist is the service's 404, said plainly.
    let (code, _, err) = cli(&["activate", "999"], Some(ADMIN_PASSWORD));
    assert_ne!(code, Some(0));
    assert!(err.contains("404"), "{err}");
}

/// The actions of the last 100 audit entries.
fn audit_actions(s: &Server, admin: &str) -> Vec<String> {
    s.get("/api/v1/audit?limit=100", admin)["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().map(str::to_string))
        .collect()
}

/// One dashboard request without following redirects: (status, Location, Set-Cookie values,
/// headers of interest, body).
struct UiResponse {
    status: u16,
    location: String,
    cookies: Vec<String>,
    csp: String,
    body: String,
}

fn ui(
    s: &Server,
    method: &str,
    path: &str,
    cookies: &str,
    form: Option<&str>,
    origin: Option<&str>,
) -> UiResponse {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let url = format!("{}{path}", s.base);
    let result = if method == "GET" {
        let mut r = agent.get(&url).header("cookie", cookies);
        if let Some(o) = origin {
            r = r.header("accept", o);
        }
        r.call()
    } else {
        let mut r = agent
            .post(&url)
            .header("cookie", cookies)
            .header("content-type", "application/x-www-form-urlencoded");
        if let Some(o) = origin {
            r = r.header("origin", o);
        }
        r.send(form.unwrap_or("").as_bytes())
    };
    let mut resp = result.unwrap();
    let h = |k: &str| {
        resp.headers()
            .get(k)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_string()
    };
    let (location, csp) = (h("location"), h("content-security-policy"));
    let cookies = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok().map(str::to_string))
        .collect();
    UiResponse {
        status: resp.status().as_u16(),
        location,
        cookies,
        csp,
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// `name=value; name=value` from a response's Set-Cookie headers.
fn jar(cookies: &[String]) -> String {
    cookies
        .iter()
        .filter_map(|c| c.split(';').next())
        .collect::<Vec<_>>()
        .join("; ")
}

fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

fn ui_sign_in(s: &Server, user: &str) -> (String, String) {
    let r = ui(
        s,
        "POST",
        "/ui/login",
        "",
        Some(&format!(
            "username={user}&password=password-for-tests-1&next=%2Fui%2Falerts"
        )),
        None,
    );
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/ui/alerts"),
        "{}",
        r.body
    );
    for c in &r.cookies {
        assert!(
            c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Path=/ui"),
            "{c}"
        );
    }
    let cookies = jar(&r.cookies);
    let page = ui(s, "GET", "/ui", &cookies, None, None);
    assert_eq!(page.status, 200);
    assert!(page.body.contains(&format!(
        "id=\"role\">{}",
        if user == "ana" { "analyst" } else { "viewer" }
    )));
    (cookies, csrf_of(&page.body))
}

#[test]
fn dashboard_sessions_expire_renew_and_end_and_forms_need_token_origin_and_role() {
    let dir = tempfile::tempdir().unwrap();
    // An address table that places the test records' source (TEST-NET-3) in the Netherlands.
    let netdb = dir.path().join("netdb.tsv");
    std::fs::write(
        &netdb,
        "203.0.113.0\t203.0.113.255\t64500\tNL\tTEST-NET-3\n",
    )
    .unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("CLOUDSENTINEL_AUTH__ACCESS_TOKEN_SECS", "2"),
            ("CLOUDSENTINEL_DETECTION__NETDB", netdb.to_str().unwrap()),
        ],
        &[],
    );
    let admin = s.admin();
    for (user, role) in [("ana", "analyst"), ("vic", "viewer")] {
        let body =
            json!({"username": user, "password": "password-for-tests-1", "role": role}).to_string();
        let (st, v, _) = s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&admin),
            Some(body.as_bytes()),
        );
        assert_eq!(st, 201, "{v}");
    }
    let key = s.api_key(&admin);
    let (st, _, _) = s.req(
        "POST",
        "/api/v1/ingest",
        Some(&key),
        Some(&jsonl(&records("ui", 8))),
    );
    assert_eq!(st, 202);
    let alert = s.get("/api/v1/alerts", &admin)["items"][0]["id"]
        .as_i64()
        .unwrap();

    // A stranger is sent to sign in, and back afterwards; scripts get a 401.
    let r = ui(&s, "GET", "/ui/alerts?status=all", "", None, None);
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/ui/login?next=%2Fui%2Falerts%3Fstatus%3Dall")
    );
    let r = ui(&s, "GET", "/ui/live", "", None, Some("text/event-stream"));
    assert_eq!(r.status, 401);
    let r = ui(
        &s,
        "POST",
        "/ui/login",
        "",
        Some("username=ana&password=wrong-password-123"),
        None,
    );
    assert_eq!(r.status, 401);
    assert!(r.body.contains("wrong user name or password") && r.cookies.is_empty());
    let r = ui(&s, "GET", "/ui/login", "", None, None);
    assert!(
        r.csp.contains("default-src 'self'") && r.csp.contains("frame-ancestors 'none'"),
        "{}",
        r.csp
    );
    // An open redirect is not followed.
    let r = ui(
        &s,
        "POST",
        "/ui/login",
        "",
        Some("username=ana&password=password-for-tests-1&next=%2F%2Fevil.example"),
        None,
    );
    assert_eq!(r.location, "/ui");

    // Behind a TLS proxy that says so, the cookies are Secure.
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let resp = agent
        .post(&format!("{}/ui/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("x-forwarded-proto", "https")
        .send("username=ana&password=password-for-tests-1".as_bytes())
        .unwrap();
    let secure: Vec<&str> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        secure.len() == 2 && secure.iter().all(|c| c.ends_with("; Secure")),
        "{secure:?}"
    );

    // A viewer may look but not act, even with a valid form token.
    let (vic, vic_csrf) = ui_sign_in(&s, "vic");
    let page = ui(&s, "GET", &format!("/ui/alerts/{alert}"), &vic, None, None);
    assert_eq!(page.status, 200);
    assert!(
        !page.body.contains("mark-fp")
            && !page.body.contains("status-form")
            && !page.body.contains("/suppress")
    );
    let r = ui(
        &s,
        "POST",
        &format!("/ui/alerts/{alert}/feedback"),
        &vic,
        Some(&format!("csrf={vic_csrf}&verdict=false_positive&reason=x")),
        None,
    );
    assert_eq!(r.status, 403, "{}", r.body);
    assert_eq!(ui(&s, "GET", "/ui/users", &vic, None, None).status, 403);

    // An analyst's form needs its token and our origin.
    let (ana, csrf) = ui_sign_in(&s, "ana");
    let fp = |cookies: &str, token: &str, origin: Option<&str>| {
        ui(
            &s,
            "POST",
            &format!("/ui/alerts/{alert}/feedback"),
            cookies,
            Some(&format!(
                "csrf={token}&verdict=false_positive&reason=maintenance"
            )),
            origin,
        )
    };
    assert_eq!(fp(&ana, "forged", None).status, 403);
    assert_eq!(
        fp(&ana, &vic_csrf, None).status,
        403,
        "another user's token"
    );
    assert_eq!(fp(&ana, &csrf, Some("http://evil.example")).status, 403);
    let origin = s.base.clone();
    let r = fp(&ana, &csrf, Some(&origin));
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, &*format!("/ui/alerts/{alert}"))
    );
    let v = s.get(&format!("/api/v1/alerts/{alert}"), &admin);
    assert_eq!(v["alert"]["verdict"], json!("false_positive"));
    assert_eq!(v["feedback"][0]["author"], json!("ana"));
    // The flash says so once.
    let flash = jar(&r.cookies);
    let page = ui(
        &s,
        "GET",
        &format!("/ui/alerts/{alert}"),
        &format!("{ana}; {flash}"),
        None,
        None,
    );
    assert!(page.body.contains("Marked false positive"), "{}", page.body);

    // The overview's map places the alert's source by the address table.
    let overview = ui(&s, "GET", "/ui?range=90d", &ana, None, None);
    assert!(
        overview.body.contains("class=\"dot\"")
            && overview.body.contains("NL: 1 alert from 1 address"),
        "{}",
        overview.body
    );

    // Suppressing from the alert's page, listed and removed on the rules page.
    let suppressions = || {
        s.get("/api/v1/suppressions", &admin)["items"]
            .as_array()
            .unwrap()
            .len()
    };
    let suppress = |form: &str| {
        let path = format!("/ui/alerts/{alert}/suppress");
        ui(
            &s,
            "POST",
            &path,
            &ana,
            Some(&format!("csrf={csrf}&{form}")),
            None,
        )
        .status
    };
    assert_eq!(suppress("hours=5000&reason=x"), 303);
    assert_eq!(suppressions(), 0, "5000 hours is refused");
    assert_eq!(suppress("hours=12&reason=planned+trail+migration"), 303);
    let sups = s.get("/api/v1/suppressions", &admin);
    assert_eq!(sups["items"][0]["reason"], json!("planned trail migration"));
    assert_eq!(sups["items"][0]["author"], json!("ana"));
    let rules_page = ui(&s, "GET", "/ui/rules", &ana, None, None);
    assert!(
        rules_page.body.contains("Active suppressions (1)")
            && rules_page.body.contains("planned trail migration")
    );
    let sid = sups["items"][0]["id"].as_i64().unwrap();
    let r = ui(
        &s,
        "POST",
        &format!("/ui/suppressions/{sid}"),
        &ana,
        Some(&format!("csrf={csrf}")),
        None,
    );
    assert_eq!(r.status, 303);
    assert_eq!(suppressions(), 0);

    // Hunting: the CSV export has a header and a row per event, defused against formulas.
    let r = ui(
        &s,
        "GET",
        "/ui/events.csv?operation=StopLogging",
        &ana,
        None,
        None,
    );
    assert_eq!(r.status, 200);
    let lines: Vec<&str> = r.body.lines().collect();
    assert!(
        lines[0].starts_with("time,id,provider,account"),
        "{}",
        r.body
    );
    assert_eq!(lines.len(), 2, "{}", r.body);
    assert!(lines[1].contains("StopLogging") && lines[1].contains("ui-7"));
    // The hunt form takes UTC times as typed, and says when one is not a time.
    let r = ui(
        &s,
        "GET",
        "/ui/events?since=2026-11-20T10:00&until=2026-11-20T11:00&operation=StopLogging&q=",
        &ana,
        None,
        None,
    );
    assert!(r.body.contains("Matching events: 1."), "{}", r.body);
    let r = ui(
        &s,
        "GET",
        "/ui/events?since=2026-11-20T10:01",
        &ana,
        None,
        None,
    );
    assert!(r.body.contains("Matching events: 0."), "{}", r.body);
    let r = ui(&s, "GET", "/ui/events?since=yesterday", &ana, None, None);
    assert_eq!(r.status, 400);
    assert!(
        r.body.contains("since=yesterday: expected a time like"),
        "{}",
        r.body
    );
    // Errors are pages that say what is wrong.
    let r = ui(&s, "GET", "/ui/alerts?kind=worm", &ana, None, None);
    assert_eq!(r.status, 400);
    assert!(
        r.body
            .contains("kind=worm: expected rule, correlation or anomaly")
            && r.body.contains("id=\"whoami\"")
    );
    assert_eq!(
        ui(&s, "GET", "/ui/alerts/999999", &ana, None, None).status,
        404
    );
    let r = ui(
        &s,
        "GET",
        "/ui/alerts?kind=rule&status=all",
        &ana,
        None,
        None,
    );
    assert!(r.body.contains("data-total=\"1\""), "{}", r.body);

    // The access token expires (2 s here): the refresh token renews the session on the way ...
    std::thread::sleep(Duration::from_millis(2500));
    let r = ui(&s, "GET", "/ui", &ana, None, None);
    assert_eq!(r.status, 200);
    assert!(
        r.cookies
            .iter()
            .any(|c| c.starts_with("cs_at=") && !c.starts_with("cs_at=;")),
        "{:?}",
        r.cookies
    );
    let renewed = jar(&r.cookies);
    // ... and without it, the user is told the session expired.
    let at_only: String = ana
        .split("; ")
        .filter(|c| c.starts_with("cs_at="))
        .collect();
    let r = ui(&s, "GET", "/ui", &at_only, None, None);
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/ui/login?next=%2Fui&expired=1")
    );

    // Signing out ends every copy of the session.
    let r = ui(
        &s,
        "POST",
        "/ui/logout",
        &renewed,
        Some(&format!("csrf={csrf}")),
        None,
    );
    assert_eq!(
        (r.status, r.location.as_str()),
        (303, "/ui/login?signed_out=1")
    );
    for cookies in [&ana, &renewed] {
        let r = ui(&s, "GET", "/ui", cookies, None, None);
        assert_eq!(r.status, 303, "{cookies}");
        assert!(r.location.contains("expired=1"));
    }
    let actions = audit_actions(&s, &s.admin());
    assert!(
        actions.iter().any(|a| a == "alert.feedback") && actions.iter().any(|a| a == "auth.logout"),
        "{actions:?}"
    );
}

#[test]
fn a_disabled_rule_raises_nothing_until_enabled_again_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let post = |s: &Server, r: Value| {
        let (status, _, text) = s.req(
            "POST",
            "/api/v1/ingest",
            Some(&key),
            Some(r.to_string().as_bytes()),
        );
        assert_eq!(status, 202, "{text}");
    };
    post(&s, stop_logging("dis-1", "ops", "2026-11-20T10:00:00Z"));
    let rule = s.get("/api/v1/alerts", &admin)["items"][0]["rule_id"]
        .as_str()
        .unwrap()
        .to_string();
    let alerts =
        |s: &Server, admin: &str| total(&s.get(&format!("/api/v1/alerts?rule={rule}"), admin));
    assert_eq!(alerts(&s, &admin), 1);

    let patch = |s: &Server, token: &str, id: &str, body: Value| {
        s.req(
            "PATCH",
            &format!("/api/v1/rules/{id}"),
            Some(token),
            Some(body.to_string().as_bytes()),
        )
    };
    let (st, _, text) = patch(&s, &admin, "no-such-rule", json!({"enabled": false}));
    assert_eq!(st, 404, "{text}");
    let (st, _, text) = patch(&s, &admin, &rule, json!({"enabled": "no"}));
    assert_eq!(st, 400, "{text}");
    let (st, v, text) = patch(
        &s,
        &admin,
        &rule,
        json!({"enabled": false, "reason": "noisy during the migration"}),
    );
    assert_eq!(st, 200, "{text}");
    assert_eq!(v["enabled"], json!(false));
    let listed = s.get("/api/v1/rules", &admin);
    let entry = listed["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(rule))
        .unwrap()
        .clone();
    assert_eq!(entry["enabled"], json!(false));

    // Disabled, and still disabled after a restart: the event is stored, no alert is raised.
    post(&s, stop_logging("dis-2", "ops2", "2026-11-20T15:00:00Z"));
    drop(s);
    s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    post(&s, stop_logging("dis-3", "ops3", "2026-11-20T16:00:00Z"));
    assert_eq!(alerts(&s, &admin), 1);
    assert_eq!(
        total(&s.get("/api/v1/events?operation=StopLogging", &admin)),
        3
    );

    let (st, _, _) = patch(&s, &admin, &rule, json!({"enabled": true}));
    assert_eq!(st, 200);
    post(&s, stop_logging("dis-4", "ops4", "2026-11-20T17:00:00Z"));
    assert_eq!(alerts(&s, &admin), 2);
    let actions = audit_actions(&s, &admin);
    assert!(
        actions.iter().any(|a| a == "rule.disabled") && actions.iter().any(|a| a == "rule.enabled"),
        "{actions:?}"
    );
}

/// One CloudTrail call of `name` on EC2 by `user`, as `stop_logging` builds them.
fn ec2_call(id: &str, user: &str, time: &str, name: &str) -> Value {
    let mut r = stop_logging(id, user, time);
    r["eventSource"] = json!("ec2.amazonaws.com");
    r["eventName"] = json!(name);
    r["requestParameters"] =
        json!({"instancesSet": {"items": [{"instanceId": "i-0a1b2c3d4e5f67890"}]}});
    r["responseElements"] = Value::Null;
    r["readOnly"] = json!(false);
    if user != "ops" {
        r["userIdentity"]["accessKeyId"] = json!("AKIAEXAMPLEOTHERUSR1");
    }
    r
}

/// Issue 14, item 5: informational signals (change records, findings routine for their actor)
/// are stored and shown beside the principal's alerts, but stay out of the default queue and
/// never open an incident.
#[test]
fn informational_signals_stay_out_of_the_queue_and_incidents_but_show_beside_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let body = [
        ec2_call("info-1", "ops", "2026-11-20T10:00:00Z", "StopInstances"),
        stop_logging("info-2", "ops", "2026-11-20T10:10:00Z"),
        ec2_call("info-3", "eve", "2026-11-20T10:20:00Z", "StopInstances"),
    ]
    .iter()
    .map(Value::to_string)
    .collect::<Vec<_>>()
    .join("\n");
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(body.as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    let levels = |v: &Value| -> Vec<String> {
        v["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["level"].as_str().unwrap().to_string())
            .collect()
    };
    let queue = s.get("/api/v1/alerts", &admin);
    assert!(!levels(&queue).is_empty(), "{queue}");
    assert!(
        levels(&queue).iter().all(|l| l != "informational"),
        "the default queue starts at low: {queue}"
    );
    let all = s.get("/api/v1/alerts?min_level=informational", &admin);
    let records: Vec<&Value> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["level"] == "informational")
        .collect();
    assert_eq!(
        records.len(),
        2,
        "both instance changes are recorded: {all}"
    );
    assert!(records.iter().all(|a| a["incident_id"].is_null()), "{all}");
    let incidents = s.get("/api/v1/incidents", &admin);
    assert_eq!(
        total(&incidents),
        1,
        "only the trail stop opens one: {incidents}"
    );

    // The trail alert's page lists the same principal's change record beside it.
    let trail = queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["title"].as_str().unwrap().contains("CloudTrail"))
        .unwrap_or_else(|| panic!("{queue}"));
    let detail = s.get(&format!("/api/v1/alerts/{}", trail["id"]), &admin);
    let around: Vec<&Value> = detail["signals_around"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["level"] == "informational")
        .collect();
    assert_eq!(around.len(), 1, "{detail}");
    assert!(
        around[0]["title"]
            .as_str()
            .unwrap()
            .contains("EC2 Instance"),
        "{detail}"
    );
}

#[test]
fn hunt_and_the_service_raise_the_same_alerts_from_the_same_events() {
    same_alerts_as_hunt(&[]);
}

#[test]
fn the_service_on_postgresql_raises_the_alerts_hunt_raises() {
    let db = PgDb::create();
    let env = db.env();
    let mut env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    // The scenario's days are in the past: keep them, to look at them below.
    env.push(("CLOUDSENTINEL_STORAGE__RETENTION_DAYS", "0"));
    same_alerts_as_hunt(&env);
    // The events went to PostgreSQL, into day partitions.
    let events: u64 = db
        .scalar("SELECT COUNT(*) FROM events")
        .unwrap()
        .parse()
        .unwrap();
    assert!(events > 1000, "{events} events in PostgreSQL");
    let days: u64 = db
        .scalar("SELECT COUNT(*) FROM pg_inherits WHERE inhparent = 'events'::regclass")
        .unwrap()
        .parse()
        .unwrap();
    assert!(days >= 2, "a day partition besides the default one: {days}");
}

/// Sends a day of the demo organisation to `hunt` and to the service (with `env` added) and
/// compares their alerts.
fn same_alerts_as_hunt(env: &[(&str, &str)]) {
    // A day of the demo organisation, all three clouds and its attack stories, read by `hunt`
    // and sent in the same order to the running service. Behaviour is left out of both: the
    // service learns it as events arrive and `hunt` over the whole period, by design.
    let dir = tempfile::tempdir().unwrap();
    let scenario = Scenario::day(dir.path());
    let offline = scenario.hunt_alerts();

    let store = dir.path().join("store");
    let mut env = env.to_vec();
    env.push(("CLOUDSENTINEL_DETECTION__ANOMALY", "false"));
    let s = Server::start(&store, &env, &[]);
    let key = s.api_key(&s.admin());
    for (p, body) in scenario.batches() {
        let (status, _, text) = s.req(
            "POST",
            &format!("/api/v1/threats/ingest/{p}"),
            Some(&key),
            Some(body.as_bytes()),
        );
        assert_eq!(status, 202, "{text}");
    }
    // A graceful stop commits what the correlations still hold; the restarted service shows it.
    assert!(s.stop().success());
    let s = Server::start(&store, &env, &[]);
    let online = s.all_alerts(&s.admin());
    assert_same_alerts(&offline, &online);
}

#[test]
fn the_openapi_document_is_valid_and_answers_match_its_schemas() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    // Real answers of (nearly) every JSON route, each checked against the schema the document
    // gives for its route and status: a route answering something else than it documents, or
    // with another status, fails here.
    let mut samples = Vec::new();
    let mut call =
        |method: &str, route: &str, path: &str, auth: Option<&str>, body: Option<&str>| {
            let (status, answer, text) = s.req(method, path, auth, body.map(str::as_bytes));
            assert!(
                (200..300).contains(&status),
                "{method} {path}: {status} {text}"
            );
            samples
                .push(json!({"method": method, "path": route, "status": status, "body": answer}));
            answer
        };
    let body = story_lines().join("\n");
    call(
        "POST",
        "/api/v1/threats/ingest/aws",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(&body),
    );
    call(
        "POST",
        "/api/v1/ingest",
        "/api/v1/ingest",
        Some(&key),
        Some(&story_lines()[0]),
    );
    call(
        "POST",
        "/api/v1/threats/analyze",
        "/api/v1/threats/analyze",
        Some(&admin),
        Some(&story_lines()[0]),
    );
    let alerts = call(
        "GET",
        "/api/v1/alerts",
        "/api/v1/alerts?min_level=informational",
        Some(&admin),
        None,
    );
    let alert_id = alerts["items"][0]["id"].as_i64().unwrap();
    let rule_id = alerts["items"][0]["rule_id"].as_str().unwrap().to_string();
    let entity = alerts["items"][0]["entity"].as_str().unwrap().to_string();
    call(
        "GET",
        "/api/v1/alerts/{id}",
        &format!("/api/v1/alerts/{alert_id}"),
        Some(&admin),
        None,
    );
    call(
        "PATCH",
        "/api/v1/alerts/{id}",
        &format!("/api/v1/alerts/{alert_id}"),
        Some(&admin),
        Some(r#"{"status":"acknowledged","assignee":"kim"}"#),
    );
    call(
        "POST",
        "/api/v1/alerts/{id}/feedback",
        &format!("/api/v1/alerts/{alert_id}/feedback"),
        Some(&admin),
        Some(r#"{"verdict":"benign","reason":"an approved change"}"#),
    );
    let incidents = call(
        "GET",
        "/api/v1/incidents",
        "/api/v1/incidents",
        Some(&admin),
        None,
    );
    let incident_id = incidents["items"][0]["id"].as_i64().unwrap();
    call(
        "GET",
        "/api/v1/incidents/{id}",
        &format!("/api/v1/incidents/{incident_id}"),
        Some(&admin),
        None,
    );
    call(
        "PATCH",
        "/api/v1/incidents/{id}",
        &format!("/api/v1/incidents/{incident_id}"),
        Some(&admin),
        Some(r#"{"severity":"critical"}"#),
    );
    let sup =
        json!({"rule_id": rule_id, "entity": entity, "reason": "a test", "duration_hours": 1})
            .to_string();
    let created = call(
        "POST",
        "/api/v1/suppressions",
        "/api/v1/suppressions",
        Some(&admin),
        Some(&sup),
    );
    call(
        "GET",
        "/api/v1/suppressions",
        "/api/v1/suppressions",
        Some(&admin),
        None,
    );
    let sup_id = created["id"].as_i64().unwrap();
    call(
        "DELETE",
        "/api/v1/suppressions/{id}",
        &format!("/api/v1/suppressions/{sup_id}"),
        Some(&admin),
        None,
    );
    call(
        "GET",
        "/api/v1/events",
        "/api/v1/events?raw=true",
        Some(&admin),
        None,
    );
    call("GET", "/api/v1/rules", "/api/v1/rules", Some(&admin), None);
    call(
        "PATCH",
        "/api/v1/rules/{id}",
        &format!("/api/v1/rules/{rule_id}"),
        Some(&admin),
        Some(r#"{"enabled":true}"#),
    );
    for route in [
        "/api/v1/dashboard/stats",
        "/api/v1/dashboard/trends",
        "/api/v1/dashboard/top-threats",
        "/api/v1/dashboard/geographic-distribution",
        "/api/v1/dashboard/attack-coverage",
        "/api/v1/audit",
        "/api/v1/notifications",
        "/api/v1/notifications/deliveries",
        "/api/v1/models",
        "/api/v1/models/schema",
        "/api/v1/users",
        "/api/v1/api-keys",
        "/api/v1/auth/me",
        "/health",
    ] {
        call("GET", route, route, Some(&admin), None);
    }
    let model = call(
        "POST",
        "/api/v1/models/train",
        "/api/v1/models/train?model_name=anomaly",
        Some(&admin),
        None,
    );
    let model_id = model["id"].as_i64().unwrap();
    call(
        "GET",
        "/api/v1/models/{id}",
        &format!("/api/v1/models/{model_id}"),
        Some(&admin),
        None,
    );
    let user = call(
        "POST",
        "/api/v1/auth/register",
        "/api/v1/auth/register",
        Some(&admin),
        Some(r#"{"username":"schema-check","password":"password-for-tests-1","role":"viewer"}"#),
    );
    let user_id = user["id"].as_i64().unwrap();
    call(
        "PATCH",
        "/api/v1/users/{id}",
        &format!("/api/v1/users/{user_id}"),
        Some(&admin),
        Some(r#"{"role":"analyst"}"#),
    );
    let tokens = call(
        "POST",
        "/api/v1/auth/login",
        "/api/v1/auth/login",
        None,
        Some(r#"{"username":"schema-check","password":"password-for-tests-1"}"#),
    );
    let refresh = json!({"refresh_token": tokens["refresh_token"]}).to_string();
    let access = tokens["access_token"].as_str().unwrap().to_string();
    call(
        "POST",
        "/api/v1/auth/refresh",
        "/api/v1/auth/refresh",
        Some(&access),
        Some(&refresh),
    );
    call(
        "POST",
        "/api/v1/auth/password",
        "/api/v1/auth/password",
        Some(&access),
        Some(
            r#"{"current_password":"password-for-tests-1","new_password":"password-for-tests-2"}"#,
        ),
    );
    call(
        "DELETE",
        "/api/v1/users/{id}",
        &format!("/api/v1/users/{user_id}"),
        Some(&admin),
        None,
    );
    let new_key = call(
        "POST",
        "/api/v1/api-keys",
        "/api/v1/api-keys",
        Some(&admin),
        Some(r#"{"name":"schema-check"}"#),
    );
    let key_id = new_key["id"].as_i64().unwrap();
    call(
        "DELETE",
        "/api/v1/api-keys/{id}",
        &format!("/api/v1/api-keys/{key_id}"),
        Some(&admin),
        None,
    );
    call(
        "POST",
        "/api/v1/auth/logout",
        "/api/v1/auth/logout",
        Some(&admin),
        None,
    );
    let (_, doc, _) = s.req("GET", "/api/openapi.json", None, None);
    assert!(
        doc["components"]["schemas"]["AlertRecord"]["properties"]["level"].is_object(),
        "record schemas are generated from the types: {}",
        doc["components"]["schemas"]
    );
    assert!(samples.len() >= 40, "{} samples", samples.len());
    let out = python(
        "openapi_check.py",
        json!({"doc": doc, "samples": samples})
            .to_string()
            .as_bytes(),
    );
    assert!(
        out.status.success(),
        "OpenAPI check (needs python3 -m pip install openapi-spec-validator; .ci/run does it):\n{}",
        String::from_utf8_lossy(&out.stdout)
    );
}

/// A failed console sign-in of alice, the `n`th.
fn failed_login(n: u32) -> String {
    json!({
        "eventVersion": "1.08",
        "eventTime": chrono::Utc::now()
            .checked_sub_signed(chrono::Duration::minutes(10 - n as i64))
            .unwrap()
            .to_rfc3339(),
        "eventSource": "signin.amazonaws.com",
        "eventName": "ConsoleLogin",
        "eventID": format!("failed-login-{n}"),
        "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.9",
        "recipientAccountId": "111122223333",
        "userIdentity": {"type": "IAMUser", "userName": "alice", "accountId": "111122223333"},
        "responseElements": {"ConsoleLogin": "Failure"}
    })
    .to_string()
}

#[test]
fn a_restart_goes_on_with_the_correlation_windows_that_were_open() {
    let dir = tempfile::tempdir().unwrap();
    let brute_force = "52a79d1a-b0f1-48bd-aa13-a0832d1ce8f9";
    let s = Server::start(dir.path(), &[], &[]);
    let key = s.api_key(&s.admin());
    let body: Vec<String> = (0..4).map(failed_login).collect();
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(body.join("\n").as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    // Four failures: the window is open, nothing raised yet.
    assert!(s.stop().success());
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/threats/ingest/aws",
        Some(&key),
        Some(failed_login(4).as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    // The fifth, after the restart, completes the window the first process had open.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let alerts = s.get(&format!("/api/v1/alerts?rule={brute_force}"), &admin);
        if alerts["items"].as_array().unwrap().len() == 1 {
            break;
        }
        assert!(Instant::now() < deadline, "no brute-force alert: {alerts}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
