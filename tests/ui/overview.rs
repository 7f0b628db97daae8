//! The overview and the rules pages, over HTTP: tiles that follow the range and link to what they
//! count, "needs you now", a page per rule, the rules list's filters, the noisiest rules, and
//! technique names in the coverage matrix.

use serde_json::json;

use super::*;

/// The rule that fires on `StopLogging` (the attack in [`records`]).
const STOP_LOGGING: &str = "d4b66037-1945-4342-a7c4-d49273dd19df";

/// `n` ordinary records by `user`, `ago` before now (a minute apart), with a `StopLogging` among
/// them.
fn at(prefix: &str, user: &str, n: usize, ago: chrono::Duration) -> Vec<u8> {
    let start = chrono::Utc::now() - ago;
    let recs: Vec<serde_json::Value> = records(prefix, n)
        .into_iter()
        .enumerate()
        .map(|(i, mut r)| {
            let t = start + chrono::Duration::minutes(i as i64);
            r["eventTime"] = json!(t.format("%Y-%m-%dT%H:%M:%SZ").to_string());
            r["userIdentity"]["arn"] = json!(format!("arn:aws:iam::111122223333:user/{user}"));
            r["userIdentity"]["userName"] = json!(user);
            r
        })
        .collect();
    jsonl(&recs)
}

fn ingest(s: &Server, body: &[u8]) {
    let key = s.api_key(&s.admin());
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(body),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
}

/// The story, then a `StopLogging` by `recent` now and one by `older` three days ago.
fn service(dir: &std::path::Path) -> (Server, String) {
    let (s, cookies) = service_with_story(dir, 0);
    ingest(&s, &at("rc", "recent", 10, chrono::Duration::minutes(30)));
    ingest(&s, &at("ol", "older", 10, chrono::Duration::days(3)));
    // Wait for both alerts to be stored.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let v = api(
            &s,
            &format!(
                "/api/v1/alerts?rule={STOP_LOGGING}&status=open,acknowledged,investigating,resolved,closed"
            ),
        );
        if v["total"].as_u64() >= Some(2) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{v}");
        std::thread::sleep(Duration::from_millis(200));
    }
    (s, cookies)
}

/// HTML attribute text back to a URL (`&amp;` → `&`).
fn unescape(v: &str) -> String {
    v.replace("&amp;", "&")
}

/// The part of a page from the element with `id` on (to the end of the page).
fn from_id<'a>(body: &'a str, id: &str) -> &'a str {
    let at = body
        .find(&format!("id=\"{id}\""))
        .unwrap_or_else(|| panic!("#{id} in {body}"));
    &body[at..]
}

/// A level card's link and count: `<a class="card" href="..." data-level="high"><div
/// class="l">high</div><div class="n">N</div>`.
fn level_card(body: &str, level: &str) -> (String, u64) {
    let cards = from_id(body, "by-level");
    let at = cards
        .find(&format!("data-level=\"{level}\""))
        .expect("the card");
    let open = cards[..at].rfind("<a ").unwrap();
    let tag = &cards[open..at];
    let href = tag
        .split("href=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap();
    let n = cards[at..]
        .split("class=\"n\">")
        .nth(1)
        .unwrap()
        .split('<')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    (unescape(href), n)
}

/// The queue's total for a link of the overview.
fn queue_total(s: &Server, cookies: &str, href: &str) -> u64 {
    let p = get_page(s, cookies, href);
    assert_eq!(p.status, 200, "{href}: {}", p.body);
    p.body
        .split("data-total=\"")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn the_overview_follows_its_range_and_links_to_what_it_counts() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service(dir.path());
    let day = get_page(&s, &cookies, "/ui?range=24h");
    let week = get_page(&s, &cookies, "/ui?range=7d");
    assert_eq!((day.status, week.status), (200, 200));
    // The tiles count what the range holds: the older StopLogging only over the week.
    let (day_href, day_high) = level_card(&day.body, "high");
    let (week_href, week_high) = level_card(&week.body, "high");
    assert!(day_high >= 1, "{}", day.body);
    assert!(week_high > day_high, "{day_high} {week_high}");
    // A card leads to the queue filtered to the same alerts.
    assert!(
        day_href.starts_with("/ui/alerts?level=high&status=all&since="),
        "{day_href}"
    );
    assert_eq!(queue_total(&s, &cookies, &day_href), day_high);
    assert_eq!(queue_total(&s, &cookies, &week_href), week_high);
    // Top principals follow the range too, each a pivot with its count leading to the queue.
    let top = |body: &str| {
        let t = from_id(body, "top-principals");
        t[..t.find("</section>").unwrap()].to_string()
    };
    let older = "arn:aws:iam::111122223333:user/older";
    assert!(!top(&day.body).contains(older), "{}", top(&day.body));
    let week_top = top(&week.body);
    assert!(
        week_top.contains(
            "href=\"/ui/entity/principal?v=arn%3Aaws%3Aiam%3A%3A111122223333%3Auser%2Folder%20"
        ),
        "{week_top}"
    );
    let count_link = week_top
        .split("href=\"")
        .map(|h| unescape(h.split('"').next().unwrap()))
        .find(|h| h.starts_with("/ui/alerts?principal=") && h.contains("user%2Folder"))
        .expect("a count linking to the queue");
    assert!(count_link.contains("&since="), "{count_link}");
    assert_eq!(queue_total(&s, &cookies, &count_link), 1);
    // Top rules lead to the rule's page, their counts to its alerts in the range.
    let rules = from_id(&day.body, "top-rules");
    assert!(rules.contains(&format!("href=\"/ui/rules/{STOP_LOGGING}\"")));
    assert!(rules.contains(&format!(
        "/ui/alerts?rule={STOP_LOGGING}&amp;status=all&amp;since="
    )));
    // Charts with a time axis and a title (time and value) and a link per bar.
    let chart = from_id(&day.body, "over-time");
    assert!(chart.contains("class=\"tchart\""), "{chart}");
    assert!(chart.contains("class=\"tl\""), "tick labels: {chart}");
    let now_hour = chrono::Utc::now().format("%Y-%m-%d %H:00").to_string();
    assert!(chart.contains(&format!("<title>{now_hour}")), "{chart}");
    assert!(chart.contains("alerts raised</title>") || chart.contains("alert raised</title>"));
    assert!(chart.contains("href=\"/ui/alerts?status=all&amp;since="));
    assert!(chart.contains("href=\"/ui/events?since="));
    assert!(!day.body.contains("style="), "no inline style (CSP)");
    // Ranges are links; an unknown one is refused.
    assert!(day.body.contains("href=\"/ui?range=90d\""));
    assert_eq!(get_page(&s, &cookies, "/ui?range=1000d").status, 400);
}

#[test]
fn needs_you_now_lists_new_unowned_high_alerts_until_someone_takes_them() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service(dir.path());
    let needs = |body: &str| {
        let n = from_id(body, "needs-you");
        n[..n.find("</section>").unwrap()].to_string()
    };
    let p = get_page(&s, &cookies, "/ui");
    let panel = needs(&p.body);
    let id: i64 = panel
        .split("data-alert=\"")
        .nth(1)
        .expect("an alert waiting")
        .split('"')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let a = api(&s, &format!("/api/v1/alerts/{id}"));
    let a = if a["alert"].is_object() {
        &a["alert"]
    } else {
        &a
    };
    assert!(
        ["high", "critical"].contains(&a["level"].as_str().unwrap()),
        "{a}"
    );
    assert_eq!(a["status"], json!("open"));
    assert!(a["assignee"].is_null(), "{a}");
    assert!(
        panel.contains(&format!("href=\"/ui/alerts/{id}\"")),
        "{panel}"
    );
    // Open incidents are there too, each linking to its page.
    let incidents = api(&s, "/api/v1/incidents?status=open");
    if incidents["total"].as_u64() > Some(0) {
        assert!(panel.contains("href=\"/ui/incidents/"), "{panel}");
    }
    // Someone takes it: it is no longer waiting.
    let (st, v, _) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{id}"),
        Some(&s.admin()),
        Some(br#"{"assignee":"admin"}"#),
    );
    assert_eq!(st, 200, "{v}");
    let panel = needs(&get_page(&s, &cookies, "/ui").body);
    assert!(!panel.contains(&format!("data-alert=\"{id}\"")), "{panel}");
}

#[test]
fn a_rule_has_a_page_with_its_logic_techniques_verdicts_and_switch() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service(dir.path());
    let path = format!("/ui/rules/{STOP_LOGGING}");
    let p = get_page(&s, &cookies, &path);
    assert_eq!(p.status, 200, "{}", p.body);
    let b = &p.body;
    assert!(b.contains("CloudTrail Logging Stopped On A Trail"), "{b}");
    assert!(
        b.contains("cloudtrail:StopLogging was called on a trail."),
        "{b}"
    );
    // Techniques with their names, its logic and where its fixtures are.
    assert!(b.contains("data-technique=\"T1562.008\""), "{b}");
    assert!(
        b.contains("Impair Defenses: Disable or Modify Cloud Logs"),
        "{b}"
    );
    assert!(from_id(b, "rule-logic").contains("eventName: StopLogging"));
    let fixtures = from_id(b, "fixture-counts");
    assert!(
        fixtures.contains("defense_evasion_cloudtrail_logging_stopped.fixtures.json"),
        "{fixtures}"
    );
    // Alerts over time, each bar with its time and count, linking to the queue.
    let trend = from_id(b, "rule-trend");
    assert!(trend.contains("<title>"), "{trend}");
    assert!(trend.contains(&format!(
        "/ui/alerts?rule={STOP_LOGGING}&amp;status=all&amp;since="
    )));
    // No verdict yet; one false positive of one judged makes 100 %.
    assert!(from_id(b, "fp-rate").starts_with("id=\"fp-rate\">—"), "{b}");
    let alert = api(
        &s,
        &format!("/api/v1/alerts?rule={STOP_LOGGING}&status=open,acknowledged,investigating,resolved,closed"),
    )["items"][0]["id"]
        .as_i64()
        .unwrap();
    let (st, _, text) = s.req(
        "POST",
        &format!("/api/v1/alerts/{alert}/feedback"),
        Some(&s.admin()),
        Some(br#"{"verdict":"false_positive","reason":"a planned migration"}"#),
    );
    assert_eq!(st, 201, "{text}");
    let b = get_page(&s, &cookies, &path).body;
    assert!(
        from_id(&b, "fp-rate").starts_with("id=\"fp-rate\">100 %"),
        "{b}"
    );
    assert!(
        b.contains("1 alert marked false positive of 1 judged"),
        "{b}"
    );
    // The switch asks first, and its name holds what it shows.
    let state = from_id(&b, "rule-state");
    assert!(
        state.contains("data-confirm=\"Disable the rule “CloudTrail Logging Stopped On A Trail”?"),
        "{state}"
    );
    assert!(state.contains("aria-label=\"Disable CloudTrail Logging Stopped On A Trail\""));
    let form = format!(
        "csrf={}&enabled=false&back={}",
        csrf_of(&b),
        path.replace('/', "%2F")
    );
    let r = post_form(&s, &cookies, &path, &form);
    assert_eq!((r.status, r.location.as_str()), (303, path.as_str()));
    let rules = api(&s, "/api/v1/rules");
    let listed = rules["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == json!(STOP_LOGGING))
        .unwrap()
        .clone();
    assert_eq!(listed["enabled"], json!(false));
    let b = get_page(&s, &cookies, &path).body;
    assert!(
        from_id(&b, "rule-state").contains(">Enable</button>"),
        "{b}"
    );
    // A rule that is neither loaded nor alerted on has no page.
    assert_eq!(get_page(&s, &cookies, "/ui/rules/no-such-rule").status, 404);
}

#[test]
fn the_rules_list_narrows_by_its_filters_and_names_techniques() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service(dir.path());
    let shown = |query: &str| -> (u64, String) {
        let p = get_page(&s, &cookies, &format!("/ui/rules{query}"));
        assert_eq!(p.status, 200, "{query}: {}", p.body);
        let n = p
            .body
            .split("data-shown=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap()
            .parse()
            .unwrap();
        (n, p.body)
    };
    let (all, body) = shown("");
    assert!(all > 100, "{all}");
    // Rows are cards on narrow screens, rule names lead to their pages, and every switch's
    // accessible name holds its visible text.
    assert!(
        body.contains("<table class=\"cards\" id=\"rules-table\">"),
        "{body}"
    );
    assert!(body.contains("data-label=\"FP rate\""));
    assert!(body.contains(&format!("href=\"/ui/rules/{STOP_LOGGING}\"")));
    let table = from_id(&body, "rules-table");
    let table = &table[..table.find("</table>").unwrap()];
    let buttons: Vec<&str> = table.split("<button").skip(1).collect();
    assert!(buttons.len() as u64 >= all, "{}", buttons.len());
    for b in &buttons {
        let label = b
            .split("aria-label=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        let text = b.split('>').nth(1).unwrap().split('<').next().unwrap();
        assert!(
            label.starts_with(text) && !text.is_empty(),
            "{label} / {text}"
        );
        assert!(b.contains("data-confirm=\""), "{b}");
    }
    // Each filter narrows.
    let (critical, body) = shown("?level=critical");
    assert!(critical > 0 && critical < all, "{critical}");
    let table = from_id(&body, "rules-table");
    let table = &table[..table.find("</table>").unwrap()];
    assert!(!table.contains("class=\"lvl high\""), "{table}");
    let (gcp, body) = shown("?pack=built-in+gcp");
    assert!(gcp > 0 && gcp < all);
    assert!(
        !body.contains("builtin:aws/"),
        "no AWS rule in the GCP pack"
    );
    let (t, body) = shown("?technique=T1562.008");
    assert!(t > 0 && t < all);
    assert!(body.contains(&format!("data-rule=\"{STOP_LOGGING}\"")));
    let (text, _) = shown("?q=logging+stopped");
    assert!(text > 0 && text < all, "{text}");
    assert_eq!(shown("?enabled=no").0, 0);
    let (st, v, _) = s.req(
        "PATCH",
        &format!("/api/v1/rules/{STOP_LOGGING}"),
        Some(&s.admin()),
        Some(br#"{"enabled":false}"#),
    );
    assert_eq!(st, 200, "{v}");
    let (off, body) = shown("?enabled=no");
    assert_eq!(off, 1);
    assert!(body.contains(&format!("data-rule=\"{STOP_LOGGING}\"")));
    assert_eq!(shown("?enabled=yes").0, all - 1);

    // The noisiest rules over a range, with their false-positive rate.
    let p = get_page(&s, &cookies, "/ui/rules?view=noisy&range=24h");
    assert_eq!(p.status, 200);
    let noisy = from_id(&p.body, "noisy-table");
    assert!(
        noisy.contains(&format!("href=\"/ui/rules/{STOP_LOGGING}\"")),
        "{noisy}"
    );
    assert!(noisy.contains("data-label=\"FP rate\""));
    // Only what the range holds: the story (2024) is not among the last 24 hours' rules.
    let week = get_page(&s, &cookies, "/ui/rules?view=noisy&range=7d").body;
    assert!(
        from_id(&week, "noisy-table")
            .matches("<tr data-rule")
            .count()
            >= 1
    );

    // The coverage matrix names techniques outside the cloud matrix, and a technique with one
    // rule leads to that rule's page.
    let cov = get_page(&s, &cookies, "/ui/coverage").body;
    assert!(!cov.contains("not in the cloud matrix"), "{cov}");
    assert!(cov.contains("Service Stop"), "T1489: {cov}");
    assert!(cov.contains("href=\"/ui/rules/"), "{cov}");
}
