//! The dashboard in a real browser: Debian's headless Chromium driven over WebDriver
//! (chromedriver), against the real binary. Screenshots of every page go to
//! `target/ui-screenshots/` (look at them: a page that renders but looks broken is not done).
//!
//! Needs `/usr/bin/chromium` and `/usr/bin/chromedriver` (Debian's `chromium` and
//! `chromium-driver`; `.ci/run` installs them). Without them the test fails, saying so, unless
//! `CLOUDSENTINEL_SKIP_BROWSER=1` is set.

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use support::*;

const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A WebDriver session in headless Chromium, ended when dropped.
struct Browser {
    driver: Child,
    url: String,
    agent: ureq::Agent,
    shots: PathBuf,
}

impl Browser {
    fn start(width: u32, height: u32) -> Option<Browser> {
        if !std::path::Path::new(CHROMEDRIVER).exists() || !std::path::Path::new(CHROMIUM).exists()
        {
            if std::env::var("CLOUDSENTINEL_SKIP_BROWSER").as_deref() == Ok("1") {
                eprintln!(
                    "SKIPPED: no {CHROMIUM} / {CHROMEDRIVER} and CLOUDSENTINEL_SKIP_BROWSER=1"
                );
                return None;
            }
            panic!(
                "the dashboard test needs Debian's chromium and chromium-driver \
                 (apt-get install -y chromium chromium-driver; .ci/run does it), \
                 or CLOUDSENTINEL_SKIP_BROWSER=1 to skip it"
            );
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        // The browser runs in a time zone other than UTC, so that times shown in "the
        // browser's time zone" differ from UTC.
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .env("TZ", "Asia/Kolkata")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(60)))
            .build()
            .into();
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(mut r) = agent.get(&format!("{base}/status")).call()
                && read_json(r.body_mut())["value"]["ready"] == json!(true)
            {
                break;
            }
            assert!(Instant::now() < deadline, "chromedriver did not get ready");
            std::thread::sleep(Duration::from_millis(100));
        }
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                         format!("--window-size={width},{height}"), "--lang=en-US"]
            }
        }}});
        let mut resp = post_json(&agent, &format!("{base}/session"), &caps).expect("new session");
        let v = read_json(resp.body_mut());
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}"))
            .to_string();
        let shots = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
        std::fs::create_dir_all(&shots).unwrap();
        Some(Browser {
            driver,
            url: format!("{base}/session/{id}"),
            agent,
            shots,
        })
    }

    fn cmd(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}{path}", self.url);
        let mut resp = match method {
            "GET" => self.agent.get(&url).call(),
            "DELETE" => self.agent.delete(&url).call(),
            _ => post_json(&self.agent, &url, &body.unwrap_or_else(|| json!({}))),
        }
        .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = resp.status().as_u16();
        let v = read_json(resp.body_mut());
        assert!(status < 300, "{method} {path}: {status} {v}");
        v["value"].clone()
    }

    fn goto(&self, url: &str) {
        self.cmd("POST", "/url", Some(json!({"url": url})));
    }

    fn js(&self, script: &str) -> Value {
        self.cmd(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
    }

    fn try_find(&self, css: &str) -> Option<String> {
        let url = format!("{}/element", self.url);
        let mut resp = post_json(
            &self.agent,
            &url,
            &json!({"using": "css selector", "value": css}),
        )
        .ok()?;
        if resp.status().as_u16() != 200 {
            return None;
        }
        let v = read_json(resp.body_mut());
        v["value"]
            .as_object()?
            .values()
            .next()?
            .as_str()
            .map(str::to_string)
    }

    /// Waits up to 15 s for an element.
    fn find(&self, css: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(e) = self.try_find(css) {
                return e;
            }
            if Instant::now() > deadline {
                self.screenshot("failure");
                panic!(
                    "no element {css} on {}",
                    self.js("return location.href").as_str().unwrap_or("")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn click(&self, css: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/click"), None);
    }

    fn type_into(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.cmd("POST", &format!("/element/{e}/clear"), None);
        self.cmd(
            "POST",
            &format!("/element/{e}/value"),
            Some(json!({"text": text})),
        );
    }

    fn text(&self, css: &str) -> String {
        let e = self.find(css);
        self.cmd("GET", &format!("/element/{e}/text"), None)
            .as_str()
            .unwrap_or("")
            .to_string()
    }

    /// Waits up to 15 s for a script to return true.
    fn wait_until(&self, what: &str, script: &str) {
        let deadline = Instant::now() + Duration::from_secs(15);
        while self.js(script) != json!(true) {
            if Instant::now() > deadline {
                self.screenshot("failure");
                panic!("timed out waiting for {what}");
            }
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Types keys into whatever has the focus (the page itself if nothing does).
    fn keys(&self, text: &str) {
        let mut actions = Vec::new();
        for c in text.chars() {
            actions.push(json!({"type": "keyDown", "value": c.to_string()}));
            actions.push(json!({"type": "keyUp", "value": c.to_string()}));
        }
        self.cmd(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]})),
        );
    }

    fn screenshot(&self, name: &str) {
        use base64::Engine;
        let png = self.cmd("GET", "/screenshot", None);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(png.as_str().unwrap_or(""))
            .unwrap();
        std::fs::write(self.shots.join(format!("{name}.png")), bytes).unwrap();
    }

    /// Full-page screenshot: the window grows to the page's height first.
    fn screenshot_full(&self, name: &str) {
        let h = self
            .js("return Math.min(document.documentElement.scrollHeight, 4000)")
            .as_u64()
            .unwrap_or(900);
        let rect = self.cmd("GET", "/window/rect", None);
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": rect["width"], "height": h.max(900)})),
        );
        self.screenshot(name);
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": rect["width"], "height": rect["height"]})),
        );
    }

    fn no_horizontal_scroll(&self, page: &str) {
        let v = self.js(
            "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
        );
        let (sw, cw) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
        assert!(
            sw <= cw,
            "{page} scrolls sideways: {sw} px wide in a {cw} px window"
        );
    }
}

fn post_json(
    agent: &ureq::Agent,
    url: &str,
    body: &Value,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    agent
        .post(url)
        .header("Content-Type", "application/json")
        .send(body.to_string().as_bytes())
}

fn read_json(body: &mut ureq::Body) -> Value {
    body.read_to_string()
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.agent.delete(&self.url).call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// CloudTrail records at times just before now, so the overview's last 24 hours fill.
fn recent(prefix: &str, n: usize) -> Vec<Value> {
    let now = chrono::Utc::now();
    records(prefix, n)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            let t = now - chrono::Duration::minutes(((n - i) * 5) as i64);
            r["eventTime"] = json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            r
        })
        .collect()
}

fn sign_in(b: &Browser, s: &Server, user: &str, password: &str) {
    b.goto(&format!("{}/ui", s.base));
    b.find("#username");
    b.type_into("#username", user);
    b.type_into("#password", password);
    b.click("#sign-in");
    b.find("#whoami");
}

#[test]
fn an_analyst_watches_an_attack_arrive_triages_it_and_signs_out() {
    let Some(b) = Browser::start(1366, 900) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    for (user, role) in [("ana", "analyst"), ("vic", "viewer")] {
        let (st, v, _) = s.req(
            "POST",
            "/api/v1/auth/register",
            Some(&admin),
            Some(
                json!({"username": user, "password": "password-for-tests-1", "role": role})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(st, 201, "{v}");
    }
    let key = s.api_key(&admin);
    let lines = story_lines().join("\n");
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(lines.as_bytes()),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(&jsonl(&recent("bg", 200))),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");

    // Signing in: the dashboard sends a stranger to the sign-in page, then back.
    b.goto(&format!("{}/ui/alerts", s.base));
    b.find("#username");
    assert!(b.js("return location.pathname").as_str() == Some("/ui/login"));
    b.screenshot("01-login");
    b.type_into("#username", "ana");
    b.type_into("#password", "wrong password, twelve+");
    b.click("#sign-in");
    assert!(
        b.text(".flash.error")
            .contains("wrong user name or password")
    );
    b.type_into("#password", "password-for-tests-1");
    b.click("#sign-in");
    b.find("#alerts-table");
    assert_eq!(b.text("#role"), "analyst");
    assert_eq!(b.text("#whoami"), "ana");

    // The overview fills.
    b.goto(&format!("{}/ui", s.base));
    b.find("#by-level");
    let high: u64 = b
        .js("return document.querySelector('#by-level [data-level=high] .n').textContent")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(high >= 1, "the story raised high alerts");
    assert!(
        b.text("#top-rules").contains("CloudTrail"),
        "{}",
        b.text("#top-rules")
    );
    assert!(
        b.text("#top-principals").contains("u"),
        "{}",
        b.text("#top-principals")
    );
    b.wait_until(
        "the live stream",
        "return document.getElementById('live').classList.contains('on')",
    );
    // The overview follows new alerts without a reload.
    let mut eve = records("eve", 8).remove(7);
    eve["eventID"] = json!("eve-stoplogging");
    eve["eventTime"] = json!(chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string());
    eve["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/eve");
    eve["userIdentity"]["userName"] = json!("eve");
    eve["userIdentity"]["accessKeyId"] = json!("AKIAEVEEXAMPLE000001");
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(eve.to_string().as_bytes()),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
    b.wait_until(
        "the overview's high count to go up",
        &format!(
            "return document.querySelector('#by-level [data-level=high] .n').textContent === '{}'",
            high + 1
        ),
    );
    assert!(b.text("#top-principals").contains("eve"));
    b.no_horizontal_scroll("overview");
    b.screenshot_full("02-overview");

    // An attack arrives through the API and appears in the queue without a reload.
    b.goto(&format!("{}/ui/alerts", s.base));
    b.wait_until(
        "the live stream",
        "return document.getElementById('live').classList.contains('on')",
    );
    b.js("window.__noReload = 'still here'; return true");
    let before = b
        .js("return document.querySelectorAll('tr[data-alert]').length")
        .as_u64()
        .unwrap();
    let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let mut attack = records("mal", 8).remove(7);
    attack["eventID"] = json!("mallory-stoplogging");
    attack["eventTime"] = json!(now);
    attack["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/mallory");
    attack["userIdentity"]["userName"] = json!("mallory");
    attack["userIdentity"]["accessKeyId"] = json!("AKIAMALLORYEXAMPLE01");
    attack["sourceIPAddress"] = json!("198.51.100.77");
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(attack.to_string().as_bytes()),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
    b.wait_until(
        "mallory's alert in the queue",
        "return [...document.querySelectorAll('#queue-rows tr')].some(r => r.textContent.includes('mallory'))",
    );
    assert_eq!(
        b.js("return window.__noReload"),
        json!("still here"),
        "the page reloaded"
    );
    let after = b
        .js("return document.querySelectorAll('tr[data-alert]').length")
        .as_u64()
        .unwrap();
    assert_eq!(after, before + 1);
    assert!(
        b.text("#toast").contains("mallory"),
        "the new alert is announced"
    );
    b.no_horizontal_scroll("alerts");
    b.screenshot("03-alerts-live");
    // Keyboard: "/" goes to the search box, j and k move through the alerts.
    b.keys("/");
    assert_eq!(b.js("return document.activeElement.id"), json!("q"));
    b.js("document.activeElement.blur(); return true");
    b.keys("jj");
    assert_eq!(
        b.js("return document.activeElement === document.querySelectorAll('[data-row-link]')[1]"),
        json!(true)
    );

    // Open it: words, explanation, ATT&CK, evidence with the raw record, entity tree.
    b.click("#queue-rows tr:first-child a[data-row-link]");
    b.find("#alert-title");
    assert!(b.text("#what").contains("mallory"));
    assert!(b.text("#explanation").len() > 10);
    assert!(
        b.text("#techniques").contains("T1562"),
        "{}",
        b.text("#techniques")
    );
    let href = b.js("return document.querySelector('#techniques a').href");
    assert!(
        href.as_str()
            .unwrap()
            .starts_with("https://attack.mitre.org/techniques/T1562"),
        "{href}"
    );
    assert!(b.text("#entity").contains("198.51.100.77"));
    assert!(
        b.text("#entity").contains("main-trail"),
        "resources come from the raw record: {}",
        b.text("#entity")
    );
    b.click("#evidence details.raw summary");
    assert!(
        b.text("#evidence details.raw pre")
            .contains("mallory-stoplogging")
    );
    b.no_horizontal_scroll("alert detail");
    b.screenshot_full("04-alert-detail");
    let alert_id: i64 = b
        .js("return location.pathname.split('/').pop()")
        .as_str()
        .unwrap()
        .parse()
        .unwrap();

    // A colleague's comment through the API shows up on the open page, without a reload, and
    // without touching the half-typed reason.
    b.wait_until(
        "the live stream",
        "return document.getElementById('live').classList.contains('on')",
    );
    b.js("window.__noReload = 'still here'; return true");
    b.type_into("#reason", "half-typed");
    let (st, v, _) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{alert_id}"),
        Some(&admin),
        Some(
            json!({"comment": "seen this before: the platform team rotates trails"})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(st, 200, "{v}");
    b.wait_until(
        "the comment on the page",
        "return document.getElementById('history').textContent.includes('rotates trails')",
    );
    assert_eq!(b.js("return window.__noReload"), json!("still here"));
    assert_eq!(
        b.js("return document.getElementById('reason').value"),
        json!("half-typed")
    );

    // Mark it a false positive, with a reason.
    b.type_into(
        "#reason",
        "change window: trail rotation by the platform team",
    );
    b.click("#mark-fp");
    assert!(
        b.text("#flash").contains("Marked false positive"),
        "{}",
        b.text("#flash")
    );
    assert!(b.text("#verdict").contains("false positive"));
    let v = s.get(&format!("/api/v1/alerts/{alert_id}"), &admin);
    assert_eq!(v["alert"]["verdict"], json!("false_positive"));
    assert_eq!(v["alert"]["status"], json!("closed"));
    assert_eq!(v["feedback"][0]["author"], json!("ana"));

    // Filter the queue: the closed alert is out of the active queue, found with status any.
    b.goto(&format!("{}/ui/alerts", s.base));
    b.type_into("#q", "mallory");
    b.click("#apply");
    b.wait_until(
        "the filtered queue, empty",
        "return location.search.includes('q=mallory') \
         && document.querySelector('#queue-total').dataset.total === '0'",
    );
    b.js("document.getElementById('status').value = 'all'; return true");
    b.click("#apply");
    b.wait_until(
        "one row",
        "return document.querySelectorAll('#queue-rows tr').length === 1",
    );
    assert!(b.text("#queue-rows").contains("closed"));
    b.screenshot("05-alerts-filtered");

    // Bulk: acknowledge two alerts of the queue.
    b.goto(&format!("{}/ui/alerts", s.base));
    b.js("document.querySelectorAll('input[name=id]')[0].click(); document.querySelectorAll('input[name=id]')[1].click(); return true");
    assert_eq!(b.text("#selected-count"), "2 selected");
    b.click("#bulk-ack");
    assert!(
        b.text("#flash").contains("2 alerts acknowledged"),
        "{}",
        b.text("#flash")
    );

    // The ATT&CK matrix, by rules and by alerts.
    b.click("nav.side a[href='/ui/coverage']");
    b.find("#matrix");
    assert!(
        b.js("return document.querySelectorAll('#matrix .tech.c1, #matrix .tech.c2').length > 10")
            == json!(true)
    );
    b.no_horizontal_scroll("coverage");
    b.screenshot_full("06-coverage");
    b.goto(&format!("{}/ui/coverage?by=hits", s.base));
    assert!(
        b.js("return document.querySelector('#matrix [data-technique=\"T1562.008\"]').className")
            .as_str()
            .unwrap()
            .contains("h1")
    );
    b.screenshot_full("07-coverage-hits");

    // Every other page renders without sideways scrolling; screenshots to look at.
    for (path, name) in [
        ("/ui/incidents", "08-incidents"),
        ("/ui/events?q=mallory", "09-events"),
        ("/ui/rules", "10-rules"),
        ("/ui/models", "11-models"),
        ("/ui/settings", "12-settings"),
    ] {
        b.goto(&format!("{}{path}", s.base));
        b.find("main h1");
        b.no_horizontal_scroll(path);
        b.screenshot_full(name);
    }
    b.click("#theme");
    assert_eq!(
        b.js("return document.documentElement.dataset.theme"),
        json!("dark")
    );
    b.goto(&format!("{}/ui", s.base));
    assert_eq!(
        b.js("return document.documentElement.dataset.theme"),
        json!("dark"),
        "the theme sticks"
    );
    b.screenshot_full("13-overview-dark");
    let inc = b.js("return document.querySelector('a[href^=\"/ui/incidents\"]') !== null");
    assert_eq!(inc, json!(true));

    // Sign out: the session is over, even for a copy of its cookie.
    b.click("#logout");
    assert!(b.text(".flash").contains("signed out"));
    b.goto(&format!("{}/ui/alerts", s.base));
    b.find("#username");

    // A viewer sees no buttons it cannot use, and no admin pages.
    sign_in(&b, &s, "vic", "password-for-tests-1");
    assert_eq!(b.text("#role"), "viewer");
    b.goto(&format!("{}/ui/alerts?status=all", s.base));
    b.find("#alerts-table");
    assert!(b.try_find("#bulk").is_none() && b.try_find("input[name=id]").is_none());
    b.goto(&format!("{}/ui/alerts/{alert_id}", s.base));
    b.find("#alert-title");
    assert!(b.try_find("#mark-fp").is_none() && b.try_find("#status-form").is_none());
    assert!(b.try_find("nav.side a[href='/ui/users']").is_none());
    b.screenshot_full("14-viewer-alert");
    b.goto(&format!("{}/ui/rules", s.base));
    b.find("#rules-table");
    assert!(b.try_find("#rules-table button").is_none());

    // An admin's pages.
    b.click("#logout");
    sign_in(&b, &s, "admin", ADMIN_PASSWORD);
    for (path, name) in [("/ui/audit", "15-audit"), ("/ui/users", "16-users")] {
        b.goto(&format!("{}{path}", s.base));
        b.find("main h1");
        b.no_horizontal_scroll(path);
        b.screenshot_full(name);
        if path == "/ui/audit" {
            assert!(b.text("#audit-table").contains("alert.feedback"));
        }
    }
}

/// axe-core from the npm registry (`.ci/run` installs it under target/npm).
fn axe_source() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target/npm/node_modules/axe-core/axe.min.js");
    std::fs::read_to_string(&path).unwrap_or_else(|e| {
        panic!(
            "{}: {e}: the accessibility check needs axe-core \
             (npm install --prefix target/npm axe-core@4.14.1; .ci/run does it)",
            path.display()
        )
    })
}

impl Browser {
    /// axe-core's serious and critical violations on the current page, one line each.
    fn axe(&self, axe: &str) -> Vec<String> {
        self.js(&format!("{axe}; return true"));
        self.cmd("POST", "/timeouts", Some(json!({"script": 60000})));
        let v = self.cmd(
            "POST",
            "/execute/async",
            Some(
                json!({"script": "const done = arguments[arguments.length - 1];
                axe.run(document, {resultTypes: ['violations']})
                  .then(r => done(r.violations
                    .filter(v => v.impact === 'serious' || v.impact === 'critical')
                    .map(v => v.impact + ' ' + v.id + ' x' + v.nodes.length + ': '
                      + v.nodes.slice(0, 3).map(n => n.target.join(' ')).join(' | '))))
                  .catch(e => done(['axe failed: ' + e]));", "args": []}),
            ),
        );
        v.as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect()
    }

    fn resize(&self, width: u32, height: u32) {
        self.cmd(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }
}

#[test]
fn every_page_fits_a_phone_and_passes_axe_and_the_small_things_work() {
    let Some(b) = Browser::start(1440, 900) else {
        return;
    };
    let axe = axe_source();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let mut body = story_lines().join("\n").into_bytes();
    body.push(b'\n');
    body.extend(jsonl(&recent("bg", 300)));
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(&body),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
    let alerts = s.get("/api/v1/alerts?limit=1&sort=level&order=desc", &admin);
    let alert = &alerts["items"][0];
    let incidents = s.get("/api/v1/incidents?limit=1", &admin);
    let events = s.get("/api/v1/events?limit=1", &admin);
    let ip = events["items"][0]["source_ip"]
        .as_str()
        .unwrap_or("198.51.100.7");

    // Signed out: the sign-in page, and it keeps where the user was going, even past a wrong
    // password.
    b.resize(390, 844);
    b.goto(&format!("{}/ui/events?q=StopLogging", s.base));
    b.find("#username");
    b.no_horizontal_scroll("/ui/login");
    let found = b.axe(&axe);
    assert!(found.is_empty(), "/ui/login at 390 px: {found:#?}");
    b.type_into("#username", "admin");
    b.type_into("#password", "not the password, twelve+");
    b.click("#sign-in");
    b.find(".flash.error");
    b.type_into("#password", ADMIN_PASSWORD);
    b.click("#sign-in");
    b.find("main h1");
    assert_eq!(
        b.js("return location.pathname + location.search"),
        json!("/ui/events?q=StopLogging"),
        "sign-in goes back to where the user was going"
    );

    let enc = urlenc;
    let pages = [
        "/ui".to_string(),
        "/ui/alerts".into(),
        format!("/ui/alerts/{}", alert["id"]),
        "/ui/incidents".into(),
        format!("/ui/incidents/{}", incidents["items"][0]["id"]),
        "/ui/events".into(),
        "/ui/events?q=StopLogging".into(),
        "/ui/rules".into(),
        format!("/ui/rules/{}", enc(alert["rule_id"].as_str().unwrap())),
        "/ui/coverage".into(),
        "/ui/coverage?by=hits".into(),
        format!(
            "/ui/entity/principal?v={}",
            enc(alert["entity"].as_str().unwrap())
        ),
        format!("/ui/entity/ip?v={}", enc(ip)),
        "/ui/entity/account?v=111122223333".into(),
        "/ui/models".into(),
        "/ui/sources".into(),
        "/ui/notifications".into(),
        "/ui/audit".into(),
        "/ui/users".into(),
        "/ui/settings".into(),
        "/ui/nowhere".into(),
    ];
    let mut problems = Vec::new();
    for (width, theme) in [(390, "light"), (1440, "light"), (1440, "dark")] {
        b.resize(width, 900);
        if b.js("return document.documentElement.dataset.theme")
            .as_str()
            != Some(theme)
        {
            b.click("#theme");
        }
        for path in &pages {
            b.goto(&format!("{}{path}", s.base));
            b.find("main h1");
            let v = b.js(
                "return [document.documentElement.scrollWidth, document.documentElement.clientWidth]",
            );
            let (sw, cw) = (v[0].as_u64().unwrap(), v[1].as_u64().unwrap());
            if sw > cw {
                problems.push(format!(
                    "{path} at {width} px scrolls sideways: {sw} > {cw}"
                ));
            }
            for f in b.axe(&axe) {
                problems.push(format!("{path} at {width} px, {theme}: {f}"));
            }
            if theme == "light" {
                let name: String = path
                    .trim_start_matches("/ui")
                    .chars()
                    .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                    .take(60)
                    .collect();
                b.screenshot_full(&format!("w{width}{name}"));
            }
        }
    }
    assert!(problems.is_empty(), "{problems:#?}");

    // The 404 page highlights nothing in the navigation.
    b.goto(&format!("{}/ui/nowhere", s.base));
    assert!(b.text("main h1").contains("404"));
    assert_eq!(
        b.js("return document.querySelectorAll('nav.side [aria-current]').length"),
        json!(0)
    );

    // The live indicator says what it is.
    b.goto(&format!("{}/ui/alerts", s.base));
    b.wait_until(
        "the live stream",
        "return document.getElementById('live').classList.contains('on')",
    );
    assert_eq!(b.text("#live"), "Live updates: on");

    // "?" opens the keyboard help, Escape closes it; j marks the row it selects.
    b.keys("?");
    b.find("#help");
    assert!(b.text("#help").contains("next row"));
    b.keys("\u{E00C}");
    assert_eq!(
        b.js("return document.getElementById('help').hidden"),
        json!(true)
    );
    b.keys("j");
    assert_eq!(
        b.js(
            "return document.querySelectorAll('tr.selected').length === 1 \
              && document.querySelector('tr.selected').contains(document.activeElement)"
        ),
        json!(true)
    );

    // Times in the browser's time zone: the browser runs in UTC+05:30 here.
    b.goto(&format!("{}/ui/audit", s.base));
    let utc = b.text("#audit-table time.abs");
    assert!(utc.ends_with('Z'), "{utc}");
    b.goto(&format!("{}/ui/settings", s.base));
    b.click("#tz-form input[value=local]");
    b.click("#tz-form button[type=submit]");
    assert!(b.text("#flash").contains("this browser's time zone"));
    b.goto(&format!("{}/ui/audit", s.base));
    let local = b.text("#audit-table time.abs");
    let offset = b
        .js("return -new Date().getTimezoneOffset()")
        .as_i64()
        .unwrap();
    assert_eq!(offset, 330, "the browser runs in Asia/Kolkata");
    let utc_t =
        chrono::NaiveDateTime::parse_from_str(utc.trim_end_matches('Z'), "%Y-%m-%d %H:%M:%S")
            .unwrap();
    let shown = chrono::NaiveDateTime::parse_from_str(&local[..19], "%Y-%m-%d %H:%M:%S").unwrap();
    assert_eq!(
        (shown - utc_t).num_minutes(),
        offset,
        "{utc} shown as {local}"
    );
    assert!(local.contains("UTC"), "{local} names its offset");
}
