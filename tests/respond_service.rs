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
