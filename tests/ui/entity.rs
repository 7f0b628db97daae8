//! Entity pages: a principal, an address, an account, a resource and an AS, over HTTP.

use super::*;

const BOB: &str = "arn:aws:iam::111122223333:user/bob";
const BOB_KEY: &str = "AKIAEXAMPLEBOB00001";
const CAROL: &str = "arn:aws:iam::111122223333:user/carol";
const STORY_IP: &str = "203.0.113.50";

fn entity(s: &Server, cookies: &str, kind: &str, value: &str) -> Page {
    get_page(
        s,
        cookies,
        &format!("/ui/entity/{kind}?v={}", urlenc(value)),
    )
}

/// A pivot link to an entity page, as the page writes it in HTML (`&` escaped).
fn pivot_href(kind: &str, value: &str) -> String {
    format!("href=\"/ui/entity/{kind}?v={}\"", urlenc(value))
}

/// The ids of the alerts the API lists for a query.
fn alert_ids(s: &Server, query: &str) -> Vec<i64> {
    api(
        s,
        &format!("/api/v1/alerts?limit=200&level=informational,low,medium,high,critical&{query}"),
    )["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect()
}

#[test]
fn the_attackers_page_shows_its_alerts_addresses_baseline_and_incidents() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    let shown = format!("{BOB} ({BOB_KEY})");
    let p = entity(&s, &cookies, "principal", &shown);
    assert_eq!(p.status, 200, "{}", p.body);
    let b = &p.body;
    // What it is, in words, with its account and key as pivots.
    assert!(b.contains("an IAM user"), "{b}");
    assert!(b.contains(&pivot_href("account", "111122223333")), "{b}");
    assert!(b.contains(&pivot_href("principal", BOB_KEY)), "{b}");
    assert!(
        b.contains(&pivot_href("principal", BOB)),
        "the principal with all its keys: {b}"
    );
    // Its alerts, each linking to its page: every alert the API has about it is listed.
    let ids = alert_ids(&s, &format!("principal={}", urlenc(&shown)));
    assert!(!ids.is_empty(), "the story raises alerts about bob");
    for id in &ids {
        assert!(
            b.contains(&format!("href=\"/ui/alerts/{id}\"")),
            "alert {id}: {b}"
        );
    }
    // Its incident.
    let incidents = api(&s, "/api/v1/incidents?limit=50");
    let bobs: Vec<i64> = incidents["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["entity"] == BOB)
        .map(|i| i["id"].as_i64().unwrap())
        .collect();
    assert!(!bobs.is_empty(), "{incidents}");
    for id in bobs {
        assert!(
            b.contains(&format!("href=\"/ui/incidents/{id}\"")),
            "incident {id}: {b}"
        );
    }
    // Its address as a pivot, and the baseline in words.
    assert!(b.contains(&pivot_href("ip", STORY_IP)), "{b}");
    assert!(
        b.contains("From the last 30 days of its stored events"),
        "{b}"
    );
    assert!(
        b.contains("80% of its events fall between 20:00–22:00 UTC"),
        "{b}"
    );
    assert!(b.contains("7 events on 1 day"), "{b}");
    // The timeline: newest first, the chart with hover values, a link to all its events.
    let delete = b.find("DeleteTrail").expect("its last call");
    let caller = b.find(">GetCallerIdentity<").expect("its first call");
    assert!(delete < caller, "newest first");
    assert!(
        b.contains("<title>2024-07-30 21:00Z: 5 events</title>"),
        "{b}"
    );
    assert!(b.contains("all 7 events"), "{b}");
    // Carol shares the address and joined the incident: a linked identity with the reason.
    assert!(b.contains(&pivot_href("principal", CAROL)), "{b}");
    assert!(b.contains("acted from an address it shares"), "{b}");
    // No inline style or script.
    assert!(!b.contains("style=") && !b.contains("<script>"), "{b}");
}

#[test]
fn an_address_page_shows_who_used_it_and_its_alerts() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    let p = entity(&s, &cookies, "ip", STORY_IP);
    assert_eq!(p.status, 200, "{}", p.body);
    let b = &p.body;
    assert!(
        b.contains("A private or reserved address"),
        "a documentation address: {b}"
    );
    assert!(b.contains("Principals seen from it"), "{b}");
    assert!(
        b.contains(&pivot_href("principal", &format!("{BOB} ({BOB_KEY})"))),
        "{b}"
    );
    assert!(b.contains(&pivot_href("principal", CAROL)), "{b}");
    assert!(b.contains("2 principals"), "{b}");
    // Alerts whose first evidence came from it.
    let alerts = api(&s, "/api/v1/alerts?limit=200");
    let from: Vec<i64> = alerts["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["source_ip"] == STORY_IP)
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert!(!from.is_empty(), "{alerts}");
    for id in from {
        assert!(
            b.contains(&format!("href=\"/ui/alerts/{id}\"")),
            "alert {id}: {b}"
        );
    }
    assert!(b.contains(">from it<"), "{b}");
}

#[test]
fn an_account_page_lists_its_principals() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    let p = entity(&s, &cookies, "account", "111122223333");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("An AWS account"), "{}", p.body);
    assert!(p.body.contains("Its principals"), "{}", p.body);
    assert!(
        p.body.contains(&pivot_href("principal", CAROL)),
        "{}",
        p.body
    );
    assert!(p.body.contains(">in it<"), "its alerts: {}", p.body);
}

#[test]
fn unknown_kinds_are_404_and_bad_values_400() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let cookies = s.ui_cookies();
    let p = get_page(&s, &cookies, "/ui/entity/planet?v=mars");
    assert_eq!(p.status, 404, "{}", p.body);
    assert!(p.body.contains("there are no pages for"), "{}", p.body);
    let p = get_page(&s, &cookies, "/ui/entity/as?v=amazon");
    assert_eq!(p.status, 400, "{}", p.body);
    assert!(p.body.contains("not an AS number"), "{}", p.body);
    let p = get_page(&s, &cookies, "/ui/entity/ip");
    assert_eq!(p.status, 400, "{}", p.body);
    // Signed out: to the sign-in page, and back here after.
    let p = get_page(&s, "", "/ui/entity/ip?v=1.2.3.4");
    assert_eq!(p.status, 303, "{}", p.body);
    assert!(p.location.starts_with("/ui/login?next="), "{}", p.location);
}

#[test]
fn an_entity_without_data_gets_an_honest_empty_page_and_values_are_escaped() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let cookies = s.ui_cookies();
    let hostile = "<script>alert(1)</script>\"'&";
    for kind in ["principal", "ip", "account", "resource"] {
        let p = entity(&s, &cookies, kind, hostile);
        assert_eq!(p.status, 200, "{kind}: {}", p.body);
        assert!(!p.body.contains("<script>alert"), "{kind}: {}", p.body);
        assert!(
            p.body.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{kind}: {}",
            p.body
        );
        assert!(p.body.contains("No stored events"), "{kind}: {}", p.body);
        assert!(p.body.contains("No alerts"), "{kind}: {}", p.body);
    }
    let p = entity(&s, &cookies, "as", "AS16509");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("<h1>AS16509</h1>"), "{}", p.body);
    assert!(
        p.body.contains("Amazon"),
        "the AS's name from the address tables: {}",
        p.body
    );
}

#[test]
fn a_principal_is_found_by_its_bare_arn_and_a_resource_by_its_name() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    // The bare ARN (as incidents name it) finds the events of all its keys.
    let p = entity(&s, &cookies, "principal", BOB);
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("all 7 events"), "{}", p.body);
    assert!(
        p.body.contains(&pivot_href("principal", BOB_KEY)),
        "{}",
        p.body
    );
    assert!(p.body.contains("its principal"), "its incident: {}", p.body);
    // The trail bob stopped and deleted: its events, and the principal that named it.
    let trail = "arn:aws:cloudtrail:us-east-1:111122223333:trail/main";
    let p = entity(&s, &cookies, "resource", trail);
    assert_eq!(p.status, 200, "{}", p.body);
    let b = &p.body;
    assert!(
        b.contains("An AWS <strong>cloudtrail</strong> resource (trail)"),
        "{b}"
    );
    assert!(
        b.contains("all 2 events"),
        "StopLogging and DeleteTrail: {b}"
    );
    assert!(b.contains("Principals that named it"), "{b}");
    assert!(
        b.contains(&pivot_href("principal", &format!("{BOB} ({BOB_KEY})"))),
        "{b}"
    );
    assert!(
        !b.contains(">GetCallerIdentity<"),
        "only the events naming it: {b}"
    );
}

#[test]
fn an_address_page_says_what_the_address_tables_know_and_its_as_lists_it() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(dir.path(), &[], &[]);
    let admin = s.admin();
    let key = s.api_key(&admin);
    let mut recs = records("aws-net", 3);
    for r in &mut recs {
        r["sourceIPAddress"] = "52.94.76.1".into();
    }
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(&jsonl(&recs)),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
    let cookies = s.ui_cookies();
    let p = entity(&s, &cookies, "ip", "52.94.76.1");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains(&pivot_href("as", "16509")), "{}", p.body);
    assert!(p.body.contains("AWS address space"), "{}", p.body);
    assert!(p.body.contains("3 principals"), "{}", p.body);
    let p = entity(&s, &cookies, "as", "16509");
    assert_eq!(p.status, 200, "{}", p.body);
    assert!(p.body.contains("Its addresses"), "{}", p.body);
    assert!(
        p.body.contains(&pivot_href("ip", "52.94.76.1")),
        "{}",
        p.body
    );
    assert!(p.body.contains("all 3 events"), "{}", p.body);
}
