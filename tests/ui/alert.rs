//! The alert page and the queue: key facts from the evidence, the remedy filled in, why it fired
//! in words, addresses with their AS, the queue's order, age, owners and "assign to me", and a
//! true positive moving the alert on.

#[allow(unused_imports)]
use super::*;

use serde_json::json;

/// An EBS snapshot shared with a foreign account from an AWS address: the built-in pack's
/// high "snapshot shared" rule.
fn snapshot_share(id: &str, time: &str, snapshot: &str) -> Value {
    json!({
        "eventVersion": "1.09",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAMALLORY",
            "arn": "arn:aws:iam::111122223333:user/mallory", "accountId": "111122223333",
            "accessKeyId": "AKIAMALLORY00000001", "userName": "mallory"},
        "eventTime": time,
        "eventSource": "ec2.amazonaws.com",
        "eventName": "ModifySnapshotAttribute",
        "awsRegion": "eu-west-1",
        "sourceIPAddress": "52.94.76.1",
        "userAgent": "aws-cli/2.15.30",
        "requestParameters": {
            "snapshotId": snapshot,
            "attributeType": "CREATE_VOLUME_PERMISSION",
            "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}
        },
        "responseElements": {"_return": true},
        "eventID": id,
        "readOnly": false,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": "111122223333",
        "eventCategory": "Management"
    })
}

/// The id of the first alert of a rule, waiting for the pipeline.
fn alert_of(s: &Server, rule_part: &str) -> i64 {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let all = api(
            s,
            "/api/v1/alerts?status=open,acknowledged,investigating,resolved,closed&limit=500",
        );
        if let Some(a) = all["items"].as_array().unwrap().iter().find(|a| {
            a["title"]
                .as_str()
                .unwrap_or("")
                .to_ascii_lowercase()
                .contains(rule_part)
        }) {
            return a["id"].as_i64().unwrap();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no {rule_part} alert: {all}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

fn ingest(s: &Server, records: &[Value]) {
    let key = s.api_key(&s.admin());
    let (st, v, _) = s.req_h(
        "POST",
        "/api/v1/ingest",
        None,
        Some(&jsonl(records)),
        &[("X-API-Key", &key)],
    );
    assert_eq!(st, 202, "{v}");
}

#[test]
fn the_alert_page_reads_the_evidence_for_the_analyst() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    // Mallory's usual: reads in us-east-1 from one address; then the share, from elsewhere.
    let usual = |id: &str, time: &str| {
        let mut r = snapshot_share(id, time, "-");
        r["eventName"] = json!("DescribeInstances");
        r["awsRegion"] = json!("us-east-1");
        r["sourceIPAddress"] = json!("203.0.113.9");
        r["requestParameters"] = Value::Null;
        r["readOnly"] = json!(true);
        r
    };
    ingest(
        &s,
        &[
            usual("usual-1", "2026-11-20T09:00:00Z"),
            usual("usual-2", "2026-11-20T09:30:00Z"),
            snapshot_share("share-1", "2026-11-20T10:00:00Z", "snap-0abc1234"),
        ],
    );
    let id = alert_of(&s, "snapshot");
    let page = get_page(&s, &cookies, &format!("/ui/alerts/{id}"));
    assert_eq!(page.status, 200);
    let b = &page.body;
    // The key fact: the account it was shared with, as a pivot, and the snapshot.
    let facts = &b[b.find("id=\"key-facts\"").expect("key facts")..];
    let facts = &facts[..facts.find("</dl>").unwrap()];
    assert!(facts.contains("Shared with account"), "{facts}");
    assert!(
        facts.contains("href=\"/ui/entity/account?v=999988887777\""),
        "{facts}"
    );
    assert!(
        facts.contains("href=\"/ui/entity/resource?v=snap-0abc1234\""),
        "{facts}"
    );
    // The remedy is filled from the evidence; a placeholder it does not tell stays visible.
    let remedy = &b[b.find("id=\"remedy\"").expect("a remedy")..];
    let remedy = &remedy[..remedy.find("</p>").unwrap()];
    assert!(
        remedy.contains("--snapshot-id <mark class=\"filled\"")
            && remedy.contains(">snap-0abc1234</mark>"),
        "{remedy}"
    );
    assert!(!remedy.contains("&lt;snapshotId&gt;</code>"), "{remedy}");
    // `--user-ids <id>`: the account the snapshot went to, by the flag it is given to.
    assert!(
        remedy.contains("--user-ids <mark class=\"filled\"")
            && remedy.contains(">999988887777</mark>"),
        "{remedy}"
    );
    assert!(!remedy.contains("&lt;id&gt;</code>"), "{remedy}");
    // Why it fired in words, the condition folded away with the rule's Sigma detection.
    assert!(
        b.contains("It fired because the call is ModifySnapshotAttribute")
            && b.contains("the permission was added for account 999988887777"),
        "{b}"
    );
    let cond = &b[b
        .find("<details class=\"condition\"")
        .expect("the condition")..];
    assert!(
        cond.contains("detection:") && cond.contains("condition:"),
        "{cond}"
    );
    // The address with its AS, both pivots; the principal and its account too.
    assert!(
        b.contains("href=\"/ui/entity/ip?v=52.94.76.1\"")
            && b.contains("href=\"/ui/entity/as?v=16509\""),
        "{b}"
    );
    assert!(b.contains(
        "href=\"/ui/entity/principal?v=arn%3Aaws%3Aiam%3A%3A111122223333%3Auser%2Fmallory"
    ));
    assert!(b.contains("href=\"/ui/entity/account?v=111122223333\""));
    // The owner is one of the users.
    let owner = &b[b
        .find("<select name=\"assignee\" id=\"assignee\"")
        .expect("owner select")..];
    let owner = &owner[..owner.find("</select>").unwrap()];
    assert!(
        owner.contains(&format!("<option value=\"{ADMIN}\">{ADMIN}</option>"))
            && owner.contains("<option value=\"\" selected>nobody</option>"),
        "{owner}"
    );
    assert!(b.contains("id=\"assign-me\""), "assign to me, one click");

    // The anomaly beside it says what was unusual, in its title and against the baseline.
    let anomaly = alert_of(&s, "first change in eu-west-1");
    let page = get_page(&s, &cookies, &format!("/ui/alerts/{anomaly}"));
    let b = &page.body;
    assert!(
        b.contains("First change in eu-west-1 in the organisation, by mallory"),
        "{b}"
    );
    let base = &b[b.find("id=\"baseline\"").expect("the baseline comparison")..];
    let base = &base[..base.find("</section>").unwrap()];
    let row = |aspect: &str| {
        let r = &base[base
            .find(&format!(">{aspect}</th>"))
            .unwrap_or_else(|| panic!("{aspect}: {base}"))..];
        r[..r.find("</tr>").unwrap()].to_string()
    };
    let region = row("Region");
    assert!(
        region.contains("us-east-1 <span class=\"small muted\">×2</span>")
            && region.contains("eu-west-1 <span class=\"tag new\">new</span>"),
        "{region}"
    );
    let address = row("Address");
    assert!(
        address.contains("href=\"/ui/entity/ip?v=203.0.113.9\"")
            && address.contains("52.94.76.1</a> <span class=\"tag new\">new</span>"),
        "{address}"
    );
    assert!(
        row("Operation").contains("ec2:ModifySnapshotAttribute <span class=\"tag new\">new</span>")
    );
}

#[test]
fn a_true_positive_moves_the_alert_on_to_investigating_from_the_page_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    ingest(
        &s,
        &[
            snapshot_share("tp-1", "2026-11-20T10:00:00Z", "snap-1"),
            // Another principal's share: another alert, for the API.
            {
                let mut r = snapshot_share("tp-2", "2026-11-20T10:00:00Z", "snap-2");
                r["userIdentity"]["arn"] = json!("arn:aws:iam::111122223333:user/trent");
                r["userIdentity"]["userName"] = json!("trent");
                r
            },
        ],
    );
    let all = api(&s, "/api/v1/alerts?q=snapshot&kind=rule");
    let ids: Vec<i64> = all["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids.len(), 2, "{all}");
    // From the page: marked, moved on, and said so.
    let page = get_page(&s, &cookies, &format!("/ui/alerts/{}", ids[0]));
    let csrf = csrf_of(&page.body);
    let r = post_form(
        &s,
        &cookies,
        &format!("/ui/alerts/{}/feedback", ids[0]),
        &format!("csrf={csrf}&verdict=true_positive&reason=confirmed"),
    );
    assert_eq!(r.status, 303);
    let a = api(&s, &format!("/api/v1/alerts/{}", ids[0]));
    assert_eq!(
        (
            a["alert"]["status"].as_str(),
            a["alert"]["verdict"].as_str()
        ),
        (Some("investigating"), Some("true_positive"))
    );
    // From the API: the same.
    let (st, _, text) = s.req(
        "POST",
        &format!("/api/v1/alerts/{}/feedback", ids[1]),
        Some(&s.admin()),
        Some(br#"{"verdict":"true_positive"}"#),
    );
    assert_eq!(st, 201, "{text}");
    let a = api(&s, &format!("/api/v1/alerts/{}", ids[1]));
    assert_eq!(a["alert"]["status"], "investigating");
    // A resolved alert stays resolved; a false positive still closes.
    let (st, _, _) = s.req(
        "PATCH",
        &format!("/api/v1/alerts/{}", ids[1]),
        Some(&s.admin()),
        Some(br#"{"status":"resolved"}"#),
    );
    assert_eq!(st, 200);
    s.req(
        "POST",
        &format!("/api/v1/alerts/{}/feedback", ids[1]),
        Some(&s.admin()),
        Some(br#"{"verdict":"true_positive"}"#),
    );
    assert_eq!(
        api(&s, &format!("/api/v1/alerts/{}", ids[1]))["alert"]["status"],
        "resolved"
    );
    s.req(
        "POST",
        &format!("/api/v1/alerts/{}/feedback", ids[0]),
        Some(&s.admin()),
        Some(br#"{"verdict":"false_positive"}"#),
    );
    assert_eq!(
        api(&s, &format!("/api/v1/alerts/{}", ids[0]))["alert"]["status"],
        "closed"
    );
}

#[test]
fn the_queue_puts_what_needs_attention_first_and_assigns_in_one_click() {
    let dir = tempfile::tempdir().unwrap();
    let (s, cookies) = service_with_story(dir.path(), 0);
    let admin = s.admin();
    s.user(&admin, "ana", "analyst");
    s.user(&admin, "vic", "viewer");
    // A high alert about last year's events arrives after the story's: it comes first among
    // the highs, though its events are the oldest.
    ingest(
        &s,
        &[snapshot_share("old-1", "2025-01-05T03:00:00Z", "snap-old")],
    );
    let backfilled = alert_of(&s, "snapshot");
    let q = api(&s, "/api/v1/alerts?sort=attention&limit=500");
    let items = q["items"].as_array().unwrap();
    let rank = |l: &str| {
        ["informational", "low", "medium", "high", "critical"]
            .iter()
            .position(|x| *x == l)
            .unwrap()
    };
    let levels: Vec<usize> = items
        .iter()
        .map(|a| rank(a["level"].as_str().unwrap()))
        .collect();
    assert!(
        levels.windows(2).all(|w| w[0] >= w[1]),
        "level first: {levels:?}"
    );
    let level = items.iter().find(|a| a["id"] == backfilled).unwrap()["level"].clone();
    let first_of_level = items.iter().find(|a| a["level"] == level).unwrap();
    assert_eq!(
        first_of_level["id"], backfilled,
        "the newest arrival of its level first"
    );
    assert_eq!(
        s.req("GET", "/api/v1/alerts?sort=nope", Some(&admin), None)
            .0,
        400
    );

    // The page's default order is the same; rows are cards with their labels, with an age.
    let page = get_page(&s, &cookies, "/ui/alerts");
    let b = &page.body;
    assert!(
        b.contains("<table class=\"cards\" id=\"alerts-table\""),
        "{b}"
    );
    let first_row = &b[b.find("<tr data-alert=\"").unwrap() + "<tr data-alert=\"".len()..];
    let first_id: i64 = first_row[..first_row.find('"').unwrap()].parse().unwrap();
    let api_first = api(
        &s,
        "/api/v1/alerts?sort=attention&status=open,acknowledged,investigating",
    )["items"][0]["id"]
        .as_i64()
        .unwrap();
    assert_eq!(first_id, api_first);
    for label in [
        "Level",
        "Alert",
        "Entity",
        "Events",
        "Status and owner",
        "Age",
        "Last seen",
    ] {
        assert!(b.contains(&format!("data-label=\"{label}\"")), "{label}");
    }
    assert_eq!(
        b.matches("aria-sort=").count(),
        b.matches("<th scope=\"col\" aria-sort=").count()
            + b.matches("<th scope=\"col\" class=\"num\" aria-sort=")
                .count(),
        "aria-sort only on column headers"
    );
    assert!(
        b.contains("<th scope=\"col\" aria-sort=\"descending\">"),
        "the current sort"
    );
    // The owners offered are the users who may triage.
    let bulk = &b[b.find("id=\"bulk-assignee\"").expect("owner select")..];
    let bulk = &bulk[..bulk.find("</select>").unwrap()];
    assert!(
        bulk.contains(">ana</option>") && !bulk.contains(">vic</option>"),
        "{bulk}"
    );

    // One click: the row's "Assign to me".
    let csrf = csrf_of(b);
    let r = post_form(
        &s,
        &cookies,
        "/ui/alerts/bulk",
        &format!("csrf={csrf}&back=%2Fui%2Falerts&action=me%3A{backfilled}"),
    );
    assert_eq!(r.status, 303);
    let me = api(&s, &format!("/api/v1/alerts/{backfilled}"))["alert"]["assignee"].clone();
    assert!(me.as_str().is_some_and(|m| !m.is_empty()), "{me}");
    // In bulk, to me, and to another owner.
    let ids: Vec<i64> = items
        .iter()
        .take(2)
        .map(|a| a["id"].as_i64().unwrap())
        .collect();
    let form = format!(
        "csrf={csrf}&back=%2Fui%2Falerts&action=assign&assignee=ana&id={}&id={}",
        ids[0], ids[1]
    );
    assert_eq!(
        post_form(&s, &cookies, "/ui/alerts/bulk", &form).status,
        303
    );
    for id in &ids {
        assert_eq!(
            api(&s, &format!("/api/v1/alerts/{id}"))["alert"]["assignee"],
            "ana"
        );
    }
    let form = format!(
        "csrf={csrf}&back=%2Fui%2Falerts&action=assign_me&id={}",
        ids[0]
    );
    assert_eq!(
        post_form(&s, &cookies, "/ui/alerts/bulk", &form).status,
        303
    );
    assert_eq!(
        api(&s, &format!("/api/v1/alerts/{}", ids[0]))["alert"]["assignee"],
        me
    );
    // The owner filter: mine, nobody's, and the API's own parameters.
    let total = |path: &str| -> u64 {
        let b = get_page(&s, &cookies, path).body;
        let at = b.find("data-total=\"").expect("a total") + 12;
        b[at..at + b[at..].find('"').unwrap()].parse().unwrap()
    };
    let all = total("/ui/alerts?status=all");
    let mine = total("/ui/alerts?status=all&owner=me");
    let nobodys = total("/ui/alerts?status=all&owner=none");
    let anas = api(&s, "/api/v1/alerts?assignee=ana&limit=500");
    let admins = api(
        &s,
        &format!("/api/v1/alerts?limit=500&assignee={}", me.as_str().unwrap()),
    );
    assert!(mine >= 1, "the admin took alerts");
    assert_eq!(admins["total"].as_u64(), Some(mine), "{admins}");
    assert_eq!(anas["total"], 1, "{anas}");
    assert_eq!(anas["items"][0]["id"], ids[1]);
    assert_eq!(nobodys, all - mine - 1, "every other alert is nobody's");
    let unassigned = api(&s, "/api/v1/alerts?unassigned=true&limit=500");
    assert!(
        unassigned["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["assignee"].is_null()),
        "{unassigned}"
    );
    // The other orders are still there.
    let by_seen = get_page(&s, &cookies, "/ui/alerts?sort=last_seen");
    assert!(
        by_seen
            .body
            .contains("<option value=\"last_seen\" selected"),
        "the chosen order"
    );
}

#[test]
fn a_viewer_sees_the_queue_without_owner_controls() {
    let dir = tempfile::tempdir().unwrap();
    let (s, _) = service_with_story(dir.path(), 0);
    let admin = s.admin();
    s.user(&admin, "vic", "viewer");
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .build()
        .into();
    let mut resp = agent
        .post(&format!("{}/ui/login", s.base))
        .header("content-type", "application/x-www-form-urlencoded")
        .send("username=vic&password=password-for-tests-1".as_bytes())
        .unwrap();
    let cookies: Vec<String> = resp
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .map(|c| c.split(';').next().unwrap().to_string())
        .collect();
    let _ = resp.body_mut().read_to_string();
    let page = get_page(&s, &cookies.join("; "), "/ui/alerts");
    assert_eq!(page.status, 200);
    assert!(page.body.contains("id=\"alerts-table\""));
    assert!(
        !page.body.contains("Assign to me") && !page.body.contains("bulk-assignee"),
        "{}",
        page.body
    );
}
