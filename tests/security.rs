//! The holes found when the service was attacked, each with the test that would have caught it:
//! the real binary on 127.0.0.1 with a SQLite file in a temporary directory.

mod support;

use std::io::Write;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

/// A hostile body: name, bytes, headers, expected status, expected text in the answer.
type Case<'a> = (&'a str, Vec<u8>, &'a [(&'a str, &'a str)], u16, &'a str);

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

fn register(s: &Server, admin: &str, name: &str, role: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": name, "password": password, "role": role}).to_string();
    let (status, v, _) = s.req(
        "POST",
        "/api/v1/auth/register",
        Some(admin),
        Some(body.as_bytes()),
    );
    (status, v)
}

fn login_full(s: &Server, user: &str, password: &str) -> (u16, Value) {
    let body = json!({"username": user, "password": password}).to_string();
    let (status, v, _) = s.req("POST", "/api/v1/auth/login", None, Some(body.as_bytes()));
    (status, v)
}

fn user_id(s: &Server, admin: &str, name: &str) -> i64 {
    let users = s.get("/api/v1/users", admin);
    users["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["username"] == name)
        .unwrap_or_else(|| panic!("user {name}"))["id"]
        .as_i64()
        .unwrap()
}

/// Peak resident memory of a process, from the kernel (KiB).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM")
}

/// Finding 1: a deleted user's tokens answered for the next user who got the same id, and its
/// refresh token minted that user's tokens.
#[test]
fn a_deleted_users_tokens_never_stand_for_a_later_user() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    assert_eq!(
        register(&s, &admin, "vera", "viewer", "vera-views-the-queue").0,
        201
    );
    let (status, tokens) = login_full(&s, "vera", "vera-views-the-queue");
    assert_eq!(status, 200);
    let (access, refresh) = (
        tokens["access_token"].as_str().unwrap().to_string(),
        tokens["refresh_token"].as_str().unwrap().to_string(),
    );
    let old_id = user_id(&s, &admin, "vera");
    let (status, _, text) = s.req(
        "DELETE",
        &format!("/api/v1/users/{old_id}"),
        Some(&admin),
        None,
    );
    assert_eq!(status, 200, "{text}");
    // The next users: one under the same name, with more rights, and another one.
    assert_eq!(
        register(&s, &admin, "vera", "admin", "vera-is-now-an-admin").0,
        201
    );
    assert_eq!(
        register(&s, &admin, "otto", "admin", "otto-is-an-admin-too").0,
        201
    );
    let new_ids = [user_id(&s, &admin, "vera"), user_id(&s, &admin, "otto")];
    assert!(
        !new_ids.contains(&old_id),
        "ids are never reused: {old_id} in {new_ids:?}"
    );
    let (status, _, text) = s.req("GET", "/api/v1/auth/me", Some(&access), None);
    assert_eq!(status, 401, "the old access token still answers: {text}");
    let body = json!({ "refresh_token": refresh }).to_string();
    let (status, _, text) = s.req("POST", "/api/v1/auth/refresh", None, Some(body.as_bytes()));
    assert_eq!(
        status, 401,
        "the old refresh token still mints tokens: {text}"
    );
    // The new vera's own tokens work, and say who she is.
    let (status, tokens) = login_full(&s, "vera", "vera-is-now-an-admin");
    assert_eq!(status, 200);
    let me = s.get("/api/v1/auth/me", tokens["access_token"].as_str().unwrap());
    assert_eq!(
        (me["role"].as_str(), me["user_id"].as_i64()),
        (Some("admin"), Some(new_ids[0]))
    );
}

/// Finding 4: ten failures locked a user out from everywhere, and one address's failures
/// locked out everyone behind it. With a trusted proxy's header, addresses are the clients'.
#[test]
fn login_limits_stop_the_guesser_and_not_the_owner() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("CLOUDSENTINEL_AUTH__LOGIN_MAX_FAILURES", "3"),
            ("CLOUDSENTINEL_SERVER__CLIENT_IP_HEADER", "x-forwarded-for"),
        ],
        &[],
    );
    let admin = s.admin();
    assert_eq!(
        register(&s, &admin, "ana", "analyst", "ana-triages-alerts").0,
        201
    );
    let attempt = |user: &str, password: &str, from: &str| {
        let body = json!({"username": user, "password": password}).to_string();
        s.req_h(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(body.as_bytes()),
            // A client-supplied entry first: only the proxy's own (last) entry counts.
            &[("x-forwarded-for", &format!("1.2.3.4, {from}"))],
        )
        .0
    };
    for _ in 0..3 {
        assert_eq!(attempt("ana", "guess-guess-guess", "198.51.100.66"), 401);
    }
    // The guessing address is refused, for every name, even with the right password.
    assert_eq!(attempt("ana", "ana-triages-alerts", "198.51.100.66"), 429);
    assert_eq!(attempt(ADMIN, ADMIN_PASSWORD, "198.51.100.66"), 429);
    // The owner, from her own address, gets in after a short wait.
    let started = Instant::now();
    assert_eq!(attempt("ana", "ana-triages-alerts", "203.0.113.10"), 200);
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "slowed, not refused"
    );
    // Everyone else behind the proxy is untouched.
    let started = Instant::now();
    assert_eq!(attempt(ADMIN, ADMIN_PASSWORD, "203.0.113.11"), 200);
    assert!(started.elapsed() < Duration::from_secs(5));
    // The audit log names the client's address, not the proxy's.
    let audit = s.get("/api/v1/audit?limit=50", &admin);
    let failed: Vec<&Value> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["action"] == "auth.login_failed")
        .collect();
    assert!(!failed.is_empty());
    assert!(
        failed.iter().all(|e| e["source_ip"] == "198.51.100.66"),
        "{failed:?}"
    );

    // Password changes are behind the limiter too.
    let ana = login_full(&s, "ana", "ana-triages-alerts").1["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let change = |current: &str| {
        let body =
            json!({"current_password": current, "new_password": "ana-has-a-new-one-1"}).to_string();
        s.req_h(
            "POST",
            "/api/v1/auth/password",
            Some(&ana),
            Some(body.as_bytes()),
            &[("x-forwarded-for", "192.0.2.77")],
        )
        .0
    };
    let codes: Vec<u16> = (0..4).map(|_| change("not-the-password")).collect();
    assert_eq!(codes, [403, 403, 403, 429]);
}

/// Without a configured header, a client cannot pick its own address.
#[test]
fn forwarded_headers_are_ignored_unless_configured() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[("CLOUDSENTINEL_AUTH__LOGIN_MAX_FAILURES", "2")],
        &[],
    );
    let attempt = |password: &str, from: &str| {
        let body = json!({"username": ADMIN, "password": password}).to_string();
        s.req_h(
            "POST",
            "/api/v1/auth/login",
            None,
            Some(body.as_bytes()),
            &[("x-forwarded-for", from)],
        )
        .0
    };
    assert_eq!(attempt("wrong-wrong-wrong", "10.9.9.1"), 401);
    assert_eq!(attempt("wrong-wrong-wrong", "10.9.9.2"), 401);
    // Both failures counted against 127.0.0.1, whatever the header said.
    assert_eq!(attempt(ADMIN_PASSWORD, "10.9.9.3"), 429);
}

/// Finding 5: only the length of a password was checked.
#[test]
fn weak_passwords_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    for (password, why) in [
        ("            ", "only spaces"),
        ("aaaaaaaaaaaa", "different characters"),
        ("vincent-the-user", "user name"),
        ("Password1234", "common passwords"),
    ] {
        let name = if why == "user name" {
            "vincent-the-user"
        } else {
            "vincent"
        };
        let (status, v) = register(&s, &admin, name, "viewer", password);
        assert_eq!(status, 400, "{password:?}: {v}");
        assert!(
            v["message"].as_str().unwrap().contains(why),
            "{password:?}: {v}"
        );
    }
    assert_eq!(
        register(&s, &admin, "vincent", "viewer", "plum-cactus-orbit-42").0,
        201
    );
}

/// Finding 6: numbers past i64 answered 500, panicked or wrapped round.
#[test]
fn numbers_past_i64_are_refused_or_clamped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    for path in [
        "/api/v1/audit?offset=9223372036854775808",
        "/api/v1/audit?offset=18446744073709551615",
        "/api/v1/alerts?page=18446744073709551616",
        "/api/v1/events?offset=99999999999999999999",
        "/api/v1/dashboard/trends?bucket=9223372036854775808",
        "/api/v1/incidents?offset=-1",
    ] {
        let (status, v, text) = s.req("GET", path, Some(&admin), None);
        assert_eq!(status, 400, "{path}: {text}");
        assert!(
            v["message"]
                .as_str()
                .unwrap()
                .contains("non-negative integer"),
            "{path}: {text}"
        );
    }
    for path in [
        "/api/v1/audit?offset=9223372036854775807",
        "/api/v1/alerts?page=9223372036854775807",
        "/api/v1/alerts?page=9223372036854775807&page_size=500",
        "/api/v1/events?offset=9223372036854775807",
        "/api/v1/dashboard/trends?bucket=2305843009213693952",
        "/api/v1/dashboard/trends?bucket=0&hours=18446744073709551",
    ] {
        let (status, v, text) = s.req("GET", path, Some(&admin), None);
        assert_eq!(status, 200, "{path}: {text}");
        if path.contains("trends") {
            let b = v["bucket_secs"].as_i64().unwrap();
            assert!((60..=2160 * 3600).contains(&b), "{path}: bucket {b}");
            assert!(!v["points"].as_array().unwrap().is_empty(), "{path}");
        } else {
            assert_eq!(v["items"].as_array().map(Vec::len), Some(0), "{path}");
        }
    }
}

/// Finding 8: the database was readable by every local user, and the sign-in form took posts
/// from other sites (login CSRF).
#[test]
fn data_files_are_private_and_sign_in_refuses_other_sites() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    assert_eq!(
        s.req(
            "POST",
            "/api/v1/ingest",
            Some(&key),
            Some(&jsonl(&records("p", 5)))
        )
        .0,
        202
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700, "data directory");
    let mut files = 0;
    for entry in std::fs::read_dir(&data).unwrap() {
        let p = entry.unwrap().path();
        if p.file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("cloudsentinel.db")
        {
            assert_eq!(mode(&p), 0o600, "{}", p.display());
            files += 1;
        }
    }
    assert!(files >= 2, "the database and its write-ahead log");

    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let post = |origin: &str| {
        agent
            .post(&format!("{}/ui/login", s.base))
            .header("content-type", "application/x-www-form-urlencoded")
            .header("origin", origin)
            .send(format!("username={ADMIN}&password={ADMIN_PASSWORD}").as_bytes())
            .unwrap()
    };
    let r = post("https://evil.example");
    assert_eq!(r.status().as_u16(), 403);
    assert!(
        r.headers().get("set-cookie").is_none(),
        "no session for a foreign origin"
    );
    assert_eq!(
        post(&s.base).status().as_u16(),
        303,
        "the service's own page signs in"
    );
}

/// Finding 9: a backfill past the retention period was acknowledged and silently deleted.
#[test]
fn events_past_retention_are_announced_in_the_answer() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[("CLOUDSENTINEL_STORAGE__RETENTION_DAYS", "30")],
        &[],
    );
    let key = s.api_key(&s.admin());
    let mut batch = records("old", 3);
    batch[0]["eventTime"] = json!("2025-01-10T10:00:00Z");
    batch[1]["eventTime"] = json!("2025-01-10T10:00:01Z");
    batch[2]["eventTime"] = json!(chrono::Utc::now().to_rfc3339());
    let (status, v, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(&jsonl(&batch)));
    assert_eq!(status, 202, "{text}");
    assert_eq!(
        (v["accepted"].as_u64(), v["past_retention"].as_u64()),
        (Some(3), Some(2))
    );
    let warning = v["warning"].as_str().expect("a warning");
    assert!(warning.contains("retention_days (30 days)"), "{warning}");
    let (status, v, _) = s.req(
        "POST",
        "/api/v1/ingest",
        Some(&key),
        Some(&jsonl(&records("new", 2))),
    );
    assert_eq!((status, v["past_retention"].as_u64()), (202, Some(0)));
    assert!(v.get("warning").is_none());
}

/// Finding 7 (second half): one 2 MB user agent made the events page megabytes of HTML.
#[test]
fn long_fields_are_cut_in_lists_and_pages_and_whole_on_demand() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let mut r = records("long", 1);
    let ua = format!("Mozilla/5.0 {}", "A".repeat(2_000_000));
    r[0]["userAgent"] = json!(ua);
    r[0]["eventTime"] = json!(chrono::Utc::now().to_rfc3339());
    assert_eq!(
        s.req("POST", "/api/v1/ingest", Some(&key), Some(&jsonl(&r)))
            .0,
        202
    );
    let list = s.get("/api/v1/events", &admin);
    let e = &list["items"][0];
    let shown = e["user_agent"].as_str().unwrap();
    assert_eq!(shown.chars().count(), 1024);
    assert!(shown.ends_with('…') && ua.starts_with(shown.trim_end_matches('…')));
    assert_eq!(e["truncated"], json!(["user_agent"]));
    let full = s.get("/api/v1/events?raw=true", &admin);
    assert_eq!(
        full["items"][0]["raw"]["userAgent"].as_str(),
        Some(ua.as_str())
    );

    let cookies = s.ui_cookies();
    let (status, _, page) = s.req_h("GET", "/ui/events", None, None, &[("cookie", &cookies)]);
    assert_eq!(status, 200);
    assert!(page.contains("Mozilla/5.0 AAAA"), "the event is listed");
    assert!(page.len() < 200_000, "events page is {} bytes", page.len());
}

/// The table of hostile bodies, on every ingest route: each gets a clear 4xx, nothing
/// acknowledged is lost, nothing of a refused batch is stored, and the server's memory stays
/// within a bound set by its limits.
#[test]
fn hostile_bodies_on_every_ingest_route_are_refused_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(
        dir.path(),
        &[
            ("CLOUDSENTINEL_SERVER__MAX_BODY_BYTES", "4000000"),
            ("CLOUDSENTINEL_SERVER__MAX_DECOMPRESSED_BYTES", "32000000"),
        ],
        &[],
    );
    let admin = s.admin();
    let key = s.api_key(&admin);
    let good = records("good", 1)[0].clone();
    let good_line = good.to_string();
    let with = |extra: &str| format!("{good_line}\n{extra}\n").into_bytes();
    let deep = format!(
        "{{\"eventName\":{}1{}}}",
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut many = serde_json::Map::new();
    for i in 0..50_000 {
        many.insert(format!("f{i}"), json!(i));
    }
    let many = Value::Object(many).to_string();
    let huge = json!({"eventName": "X", "blob": "B".repeat(3_500_000)}).to_string();
    let mut dup = good_line.replacen(
        "\"eventName\"",
        "\"eventName\":\"StopLogging\",\"eventName\"",
        1,
    );
    dup = dup.replacen("good-0", "dup-0", 1);
    let bomb = gzip(&vec![b' '; 200_000_000]);
    let nested = gzip(&gzip(&vec![b' '; 200_000_000]));
    let mut invalid_utf8 = with("{\"eventName\":\"");
    invalid_utf8.extend_from_slice(&[0xff, 0xfe, b'"', b'}', b'\n']);
    let cases: Vec<Case> = vec![
        (
            "truncated",
            with("{\"Records\":[{\"eventName\":"),
            &[],
            400,
            "nothing was stored",
        ),
        ("invalid utf-8", invalid_utf8, &[], 400, "UTF-8"),
        ("deep nesting", with(&deep), &[], 400, "nested deeper"),
        ("50k fields", with(&many), &[], 400, "nothing was stored"),
        ("huge string", with(&huge), &[], 400, "nothing was stored"),
        ("duplicate keys", with(&dup), &[], 400, "duplicate key"),
        (
            "number out of range",
            with("{\"eventName\":\"X\",\"n\":1e400}"),
            &[],
            400,
            "out of range",
        ),
        ("gzip bomb", bomb.clone(), &[], 413, "decompressed body"),
        (
            "gzip inside gzip",
            nested.clone(),
            &[("content-encoding", "gzip")],
            400,
            "gzip inside gzip",
        ),
        (
            "wrong encoding: gzip header, plain body",
            with("{}"),
            &[("content-encoding", "gzip")],
            400,
            "gzip body",
        ),
        (
            "unsupported encoding",
            with("{}"),
            &[("content-encoding", "br")],
            415,
            "not supported",
        ),
    ];
    assert!(bomb.len() < 4_000_000 && nested.len() < 4_000_000);
    let routes = [
        "/api/v1/ingest",
        "/api/v1/threats/ingest/aws",
        "/api/v1/threats/ingest/azure",
        "/api/v1/threats/ingest/gcp",
        "/api/v1/threats/analyze",
    ];
    let mut accepted = 0u64;
    for route in routes {
        let auth = if route.ends_with("analyze") {
            &admin
        } else {
            &key
        };
        for (name, body, headers, want, says) in &cases {
            let (status, v, text) = s.req_h("POST", route, Some(auth), Some(body), headers);
            assert_eq!(status, *want, "{route} {name}: {text:.300}");
            let message = format!("{} {}", v["message"], v["details"]);
            assert!(message.contains(says), "{route} {name}: {message:.300}");
        }
        // A good batch still goes through after all that.
        if route.ends_with("/ingest") || route.ends_with("/aws") {
            let batch = records(&format!("ok-{}", route.len()), 10);
            let (status, v, text) = s.req_h("POST", route, Some(auth), Some(&jsonl(&batch)), &[]);
            assert_eq!(status, 202, "{route}: {text}");
            accepted += v["accepted"].as_u64().unwrap();
        }
    }
    // Exactly the acknowledged events are stored: none of the refused batches' good records.
    let stored = s.get("/api/v1/events?limit=1000", &admin);
    assert_eq!(total(&stored), accepted);
    assert!(
        stored["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["id"].as_str().unwrap().starts_with("ok-"))
    );
    let rss = peak_rss_kib(s.child.id());
    // Limits: 4 MB bodies, 32 MB decompressed, four ingests at once. The bombs alone would
    // have taken 200 MB to 2 GB.
    assert!(rss < 450 * 1024, "peak RSS {rss} KiB");
    eprintln!("hostile bodies: server peak RSS {} MiB", rss / 1024);
}
