//! Containment in the service, against moto: automatic playbooks.

mod support;

use serde_json::json;
use support::*;

/// A `mode: auto` playbook whose actions are reversible runs them as the alert arrives, under
/// the guardrails, and records them like a person's; a protected principal is refused.
#[test]
fn an_automatic_playbook_contains_as_the_alert_arrives() {
    let moto = Moto::start();
    let key = moto.run(json!({"op": "iam-setup", "user": "mallory", "role": "app-server-role"}))
        ["access_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let books = dir.path().join("playbooks");
    std::fs::create_dir(&books).unwrap();
    std::fs::write(
        books.join("auto_key.yml"),
        "id: auto-disable-key\ntitle: Disable the key that set another user's console password\n\
         when:\n  rules: [2cd0df6e-527e-4a3e-9eb6-396414627484]\nmode: auto\nactions:\n\
         \x20 - action: aws.deactivate-access-key\n    user: \"{userIdentity.userName}\"\n    access_key_id: \"{userIdentity.accessKeyId}\"\n",
    )
    .unwrap();
    let config = dir.path().join("cs.toml");
    std::fs::write(
        &config,
        format!(
            "[respond]\nendpoint_url = {:?}\nplaybooks = [{:?}]\n",
            moto.endpoint,
            books.display().to_string()
        ),
    )
    .unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &["--config", config.to_str().unwrap()],
    );
    let admin = s.admin();
    let record = |id: &str, user: &str, key: &str| {
        json!({"eventVersion": "1.09", "eventTime": "2026-11-20T10:00:00Z",
            "eventSource": "iam.amazonaws.com", "eventName": "CreateLoginProfile", "awsRegion": "us-east-1",
            "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "eventID": id,
            "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "123456789012",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAX", "arn": format!("arn:aws:iam::123456789012:user/{user}"),
                "accountId": "123456789012", "accessKeyId": key, "userName": user},
            "requestParameters": {"userName": "victim", "passwordResetRequired": false}})
    };
    let api_key = s.api_key(&admin);
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/ingest",
        Some(&api_key),
        Some(record("auto-1", "mallory", &key).to_string().as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let st = moto.run(json!({"op": "iam-state", "user": "mallory", "role": "app-server-role"}));
        if st["keys"][&key] == "Inactive" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the key was not disabled: {st:#}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let alerts = s.get(
        "/api/v1/alerts?rule=2cd0df6e-527e-4a3e-9eb6-396414627484",
        &admin,
    );
    let alert_id = alerts["items"][0]["id"].as_i64().unwrap();
    let responses = s.get(&format!("/api/v1/alerts/{alert_id}/responses"), &admin);
    let r = &responses["responses"][0];
    assert_eq!(r["status"], "done", "{responses:#}");
    assert_eq!(r["run_by"], "cloudsentinel (auto)");
    assert_eq!(r["verified"], true);
    assert_eq!(responses["responses"].as_array().unwrap().len(), 1, "once");
}

/// One quarantine per incident is what one approval buys: a second quarantine in the same
/// incident waits (not refused) until a second responder, not the first approver, approves it.
#[test]
fn a_second_quarantine_in_one_incident_needs_a_second_approval() {
    let moto = Moto::start();
    let first = moto.run(json!({"op": "ec2-setup", "interfaces": 1}))["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    let second = moto.run(json!({"op": "ec2-setup", "interfaces": 1}))["instance_id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cs.toml");
    std::fs::write(
        &config,
        format!("[respond]\nendpoint_url = {:?}\n", moto.endpoint),
    )
    .unwrap();
    let s = Server::start(
        &dir.path().join("data"),
        &[
            ("AWS_ACCESS_KEY_ID", "testing"),
            ("AWS_SECRET_ACCESS_KEY", "testing"),
            ("AWS_EC2_METADATA_DISABLED", "true"),
        ],
        &["--config", config.to_str().unwrap()],
    );
    let admin = s.admin();
    let [ann, bob, cid] = ["ann", "bob", "cid"].map(|n| s.user(&admin, n, "responder"));
    // The same stolen key sets a console password and stops a trail: two alerts, one incident.
    // In eu-west-1, where aws_emulator.py makes the instances: the calls go to the alert's
    // region, not the configured default (us-east-1).
    let event = |id: &str, source: &str, name: &str, params: serde_json::Value| {
        json!({"eventVersion": "1.09", "eventTime": "2026-11-20T10:00:00Z",
            "eventSource": source, "eventName": name, "awsRegion": "eu-west-1",
            "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "eventID": id,
            "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "123456789012",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDAMALLORY", "arn": "arn:aws:iam::123456789012:user/mallory",
                "accountId": "123456789012", "accessKeyId": "AKIAMALLORY000000000", "userName": "mallory"},
            "requestParameters": params})
    };
    let body = [
        event(
            "q-1",
            "iam.amazonaws.com",
            "CreateLoginProfile",
            json!({"userName": "victim", "passwordResetRequired": false}),
        ),
        event(
            "q-2",
            "cloudtrail.amazonaws.com",
            "StopLogging",
            json!({"name": "org-trail"}),
        ),
    ]
    .iter()
    .map(|e| e.to_string())
    .collect::<Vec<_>>()
    .join("\n");
    let key = s.api_key(&admin);
    let (status, _, text) = s.req("POST", "/api/v1/ingest", Some(&key), Some(body.as_bytes()));
    assert_eq!(status, 202, "{text}");
    let alerts = s.get("/api/v1/alerts?limit=50", &admin);
    let items = alerts["items"].as_array().unwrap();
    assert!(items.len() >= 2, "two alerts: {alerts:#}");
    let (a1, a2) = (&items[0], &items[1]);
    assert!(
        a1["incident_id"].is_i64() && a1["incident_id"] == a2["incident_id"],
        "one incident: {alerts:#}"
    );
    let propose = |alert: &serde_json::Value, instance: &str| {
        let (status, v, text) = s.req(
            "POST",
            &format!("/api/v1/alerts/{}/responses", alert["id"]),
            Some(&ann),
            Some(
                json!({"action": {"action": "aws.quarantine-instance", "instance_id": instance}})
                    .to_string()
                    .as_bytes(),
            ),
        );
        assert_eq!(status, 201, "{text}");
        v["id"].as_i64().unwrap()
    };
    let step = |id: i64, what: &str, who: &str| {
        s.req(
            "POST",
            &format!("/api/v1/responses/{id}/{what}"),
            Some(who),
            None,
        )
    };
    let r1 = propose(a1, &first);
    let r2 = propose(a2, &second);
    // The first quarantine needs one approval.
    assert_eq!(step(r1, "approve", &bob).0, 200);
    let (status, ran, text) = step(r1, "run", &bob);
    assert_eq!((status, &ran["status"]), (200, &json!("done")), "{text}");
    // The second: approved once, it does not run, and says why; it is not refused.
    assert_eq!(step(r2, "approve", &bob).0, 200);
    let (status, _, text) = step(r2, "run", &bob);
    assert_eq!(status, 409, "{text}");
    assert!(
        text.contains(&format!("response #{r1} already quarantined {first}")),
        "{text}"
    );
    let listed = s.get(&format!("/api/v1/alerts/{}/responses", a2["id"]), &admin);
    let rec = &listed["responses"][0];
    assert_eq!(rec["status"], "approved", "{listed:#}");
    assert!(rec["second_approval"].is_string(), "{listed:#}");
    // The alert page says why it waits and offers the second approval (to the admin, who is
    // neither the proposer nor the first approver).
    let cookies = s.ui_cookies();
    let (status, _, page) = s.req_h(
        "GET",
        &format!("/ui/alerts/{}", a2["id"]),
        None,
        None,
        &[("cookie", &cookies)],
    );
    assert_eq!(status, 200);
    let panel = &page[page.find("id=\"response\"").expect("a Response panel")..];
    assert!(
        panel.contains(&format!("response #{r1} already quarantined {first}"))
            && panel.contains(">Second approval<"),
        "{panel}"
    );
    // Not by the first approver again, nor by the proposer (four eyes); cid gives it.
    let (status, _, text) = step(r2, "approve", &bob);
    assert_eq!(status, 409, "{text}");
    let (status, _, text) = step(r2, "approve", &ann);
    assert_eq!(status, 409, "{text}");
    let (status, v, text) = step(r2, "approve", &cid);
    assert_eq!(status, 200, "{text}");
    assert_eq!(v["second_approved_by"], "cid");
    assert!(v["second_approval"].is_null(), "{v:#}");
    let (status, ran, text) = step(r2, "run", &bob);
    assert_eq!((status, &ran["status"]), (200, &json!("done")), "{text}");
    let state = moto.run(json!({"op": "ec2-state", "instance_id": second}));
    assert!(
        state.to_string().contains("cloudsentinel-quarantine-"),
        "isolated: {state:#}"
    );
    // The audit log has both approvals.
    let audit = s.get("/api/v1/audit?limit=100", &admin);
    let seconds = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| {
            e["action"] == "response.approve"
                && e["actor"] == "cid"
                && e["target"] == format!("response:{r2}")
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("\"second_approval\":true")
        })
        .count();
    assert_eq!(seconds, 1, "{audit:#}");
}

/// Admins set a playbook's mode over the API (kept across a restart, audited); everyone sees the
/// playbooks; `off` stops its proposals; `auto` is refused for an action undo cannot restore.
#[test]
fn admins_set_playbook_modes_and_off_stops_the_proposals() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let s = Server::start(&data, &[], &[]);
    let admin = s.admin();
    let rita = s.user(&admin, "rita", "responder");
    let listed = s.get("/api/v1/playbooks", &rita);
    let takeover = listed["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "aws-console-takeover")
        .expect("the built-in playbook")
        .clone();
    assert_eq!(takeover["mode"], "propose");
    assert_eq!(takeover["reversible"], false, "{takeover:#}");
    let patch = |who: &str, id: &str, mode: &str| {
        s.req(
            "PATCH",
            &format!("/api/v1/playbooks/{id}"),
            Some(who),
            Some(
                json!({"mode": mode, "reason": "test"})
                    .to_string()
                    .as_bytes(),
            ),
        )
    };
    assert_eq!(patch(&rita, "aws-console-takeover", "off").0, 403);
    let (status, _, text) = patch(&admin, "aws-console-takeover", "auto");
    assert_eq!(status, 409, "{text}");
    assert!(text.contains("aws.delete-login-profile"), "{text}");
    assert_eq!(patch(&admin, "no-such-playbook", "off").0, 404);
    // An alert the playbook is for: proposed while on, not once off.
    let record = json!({"eventVersion": "1.09", "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "iam.amazonaws.com", "eventName": "CreateLoginProfile", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "eventID": "pb-1",
        "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAALICE", "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012", "accessKeyId": "AKIAALICE00000000000", "userName": "alice"},
        "requestParameters": {"userName": "mallory", "passwordResetRequired": false}});
    let key = s.api_key(&admin);
    let (status, _, text) = s.req(
        "POST",
        "/api/v1/ingest",
        Some(&key),
        Some(record.to_string().as_bytes()),
    );
    assert_eq!(status, 202, "{text}");
    let alerts = s.get(
        "/api/v1/alerts?rule=2cd0df6e-527e-4a3e-9eb6-396414627484",
        &admin,
    );
    let alert_id = alerts["items"][0]["id"].as_i64().expect("the alert");
    let proposed = |token: &str| -> Vec<String> {
        s.get(&format!("/api/v1/alerts/{alert_id}/responses"), token)["proposals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["playbook"].as_str().unwrap().to_string())
            .collect()
    };
    assert!(proposed(&rita).contains(&"aws-console-takeover".to_string()));
    let (status, v, text) = patch(&admin, "aws-console-takeover", "off");
    assert_eq!(status, 200, "{text}");
    assert_eq!(
        (&v["mode"], &v["file_mode"]),
        (&json!("off"), &json!("propose"))
    );
    assert!(!proposed(&rita).contains(&"aws-console-takeover".to_string()));
    let audit = s.get("/api/v1/audit?limit=50", &admin);
    assert!(
        audit["items"].as_array().unwrap().iter().any(|e| {
            e["action"] == "playbook.mode"
                && e["target"] == "playbook:aws-console-takeover"
                && e["detail"]
                    .as_str()
                    .unwrap_or("")
                    .contains("\"after\":\"off\"")
        }),
        "{audit:#}"
    );
    // Kept across a restart.
    assert!(s.stop().success());
    let s = Server::start(&data, &[], &[]);
    let admin = s.admin();
    let listed = s.get("/api/v1/playbooks", &admin);
    let mode = listed["playbooks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"] == "aws-console-takeover")
        .unwrap()["mode"]
        .clone();
    assert_eq!(mode, "off");
}
