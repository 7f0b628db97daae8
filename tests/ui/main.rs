//! The dashboard's pages as HTML over HTTP, against the real binary (no browser; the browser
//! test is tests/dashboard.rs): the events search, entity pages, the alert page and queue, the
//! overview and rule pages. Each area's tests are a module of their own.

#[path = "../support/mod.rs"]
mod support;

mod alert;
mod entity;
mod overview;
mod search;

use std::time::Duration;

use serde_json::Value;
use support::*;

/// One dashboard answer, redirects not followed.
pub struct Page {
    pub status: u16,
    pub location: String,
    pub body: String,
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(60)))
        .max_idle_connections_per_host(0)
        .build()
        .into()
}

fn answer(result: Result<ureq::http::Response<ureq::Body>, ureq::Error>) -> Page {
    let mut resp = result.expect("the server answers");
    let location = resp
        .headers()
        .get("location")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    Page {
        status: resp.status().as_u16(),
        location,
        body: resp.body_mut().read_to_string().unwrap_or_default(),
    }
}

/// `GET path` with the session's cookies.
pub fn get_page(s: &Server, cookies: &str, path: &str) -> Page {
    answer(
        agent()
            .get(&format!("{}{path}", s.base))
            .header("cookie", cookies)
            .call(),
    )
}

/// A form posted from the dashboard itself (same origin), `form` already URL-encoded. Add the
/// page's form token (`csrf=...`, see [`csrf_of`]) to `form`.
pub fn post_form(s: &Server, cookies: &str, path: &str, form: &str) -> Page {
    answer(
        agent()
            .post(&format!("{}{path}", s.base))
            .header("cookie", cookies)
            .header("origin", &s.base)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(form.as_bytes()),
    )
}

/// The form token of a page.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token") + 19;
    page[at..at + page[at..].find('"').unwrap()].to_string()
}

/// A service with the attack story and `background` ordinary records ingested, and the admin's
/// dashboard cookies.
pub fn service_with_story(dir: &std::path::Path, background: usize) -> (Server, String) {
    let s = Server::start(dir, &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let mut body = story_lines().join("\n").into_bytes();
    if background > 0 {
        body.push(b'\n');
        body.extend(jsonl(&records("bg", background)));
    }
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(&body),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
    let cookies = s.ui_cookies();
    (s, cookies)
}

/// The JSON of an API answer, for checks the page makes against the API.
pub fn api(s: &Server, path: &str) -> Value {
    s.get(path, &s.admin())
}
