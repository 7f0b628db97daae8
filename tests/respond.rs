//! Containment actions against moto's AWS emulator (PyPI: `moto[server]`): each changes what the
//! emulator reports, verify sees it, undo restores the state before exactly; guardrails refuse
//! before any call; a run that fails half-way records what undo needs.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::*;

fn respond(args: &[&str], moto: &Moto) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .arg("respond")
        .args(args)
        .args(["--endpoint-url", &moto.endpoint])
        .env("AWS_ACCESS_KEY_ID", "testing")
        .env("AWS_SECRET_ACCESS_KEY", "testing")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .output()
        .unwrap()
}

fn state(moto: &Moto) -> Value {
    moto.run(json!({"op": "iam-state", "user": "mallory", "role": "app-server-role"}))
}

fn run_and_undo(moto: &Moto, dir: &Path, action: &str, params: &[&str], check: impl Fn(&Value)) {
    let before = state(moto);
    let record = dir.join(format!("{action}.json"));
    let mut args = vec!["run", action, "--record", record.to_str().unwrap()];
    for p in params {
        args.extend(["--param", p]);
    }
    let out = respond(&args, moto);
    assert!(
        out.status.success(),
        "{action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("done and verified"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let after = state(moto);
    assert_ne!(
        after, before,
        "{action} changed nothing the emulator reports"
    );
    check(&after);
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["changed"], true);
    assert_eq!(rec["verified"], true);
    let dry = respond(
        &["undo", "--record", record.to_str().unwrap(), "--dry-run"],
        moto,
    );
    let planned = String::from_utf8_lossy(&dry.stdout).to_string();
    assert_eq!(state(moto), after, "an undo dry run changes nothing");
    let out = respond(&["undo", "--record", record.to_str().unwrap()], moto);
    assert!(
        out.status.success(),
        "undo {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = state(moto);
    if action == "aws.delete-login-profile" {
        // A deleted password cannot come back: a new one, to be reset at the next sign-in, said
        // so plainly. (moto reports PasswordResetRequired false whatever it was given, so the
        // flag is checked in the call shown.)
        assert!(
            planned.contains("iam:CreateLoginProfile UserName=mallory Password=<a new random password> PasswordResetRequired=true"),
            "{planned}"
        );
        assert!(restored["login_profile"].is_object(), "{restored:#}");
        assert!(String::from_utf8_lossy(&out.stderr).contains("not the old one"));
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim().len(),
            24,
            "the new password, once"
        );
    } else {
        assert_eq!(
            restored, before,
            "undo {action} restores the state before exactly"
        );
    }
}

#[test]
fn each_action_changes_the_account_verifies_and_undoes_exactly() {
    let moto = Moto::start();
    let key = moto.run(json!({"op": "iam-setup", "user": "mallory", "role": "app-server-role"}))
        ["access_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let dir = tempfile::tempdir().unwrap();
    let key_param = format!("access_key_id={key}");
    run_and_undo(
        &moto,
        dir.path(),
        "aws.deactivate-access-key",
        &["user=mallory", &key_param],
        |s| assert_eq!(s["keys"][&key], "Inactive"),
    );
    run_and_undo(
        &moto,
        dir.path(),
        "aws.deny-all",
        &["kind=User", "name=mallory"],
        |s| {
            let doc = &s["user_policies"]["CloudSentinelDenyAll"];
            assert_eq!(doc["Statement"][0]["Effect"], "Deny", "{s:#}");
            assert_eq!(
                s["user_policies"]["ReadOnly"]["Statement"][0]["Effect"],
                "Allow"
            );
        },
    );
    run_and_undo(
        &moto,
        dir.path(),
        "aws.revoke-role-sessions",
        &["role=app-server-role"],
        |s| {
            let doc = &s["role_policies"]["AWSRevokeOlderSessions"];
            assert!(
                doc["Statement"][0]["Condition"]["DateLessThan"]["aws:TokenIssueTime"].is_string(),
                "{s:#}"
            );
        },
    );
    run_and_undo(
        &moto,
        dir.path(),
        "aws.delete-login-profile",
        &["user=mallory"],
        |s| {
            assert!(s["login_profile"].is_null(), "{s:#}");
        },
    );
}

#[test]
fn guardrails_refuse_before_any_call_and_dry_runs_call_nothing() {
    let moto = Moto::start();
    moto.run(json!({"op": "iam-setup", "user": "mallory", "role": "app-server-role"}));
    let before = state(&moto);
    let out = respond(
        &[
            "run",
            "aws.deny-all",
            "--param",
            "kind=User",
            "--param",
            "name=mallory",
            "--protect",
            "user/mall*",
        ],
        &moto,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("user/mallory is protected"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = respond(
        &[
            "run",
            "aws.deny-all",
            "--param",
            "kind=Role",
            "--param",
            "name=OrganizationAccountAccessRole",
        ],
        &moto,
    );
    assert!(
        !out.status.success(),
        "organisation admin roles are always protected"
    );
    let out = respond(
        &[
            "run",
            "aws.deny-all",
            "--param",
            "kind=User",
            "--param",
            "name=mallory",
            "--dry-run",
        ],
        &moto,
    );
    assert!(out.status.success());
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        shown.contains("iam:PutUserPolicy UserName=mallory PolicyName=CloudSentinelDenyAll"),
        "{shown}"
    );
    assert_eq!(state(&moto), before, "refusals and dry runs change nothing");
    // An unknown action or parameter is a usage error naming the actions.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .args(["respond", "plan", "aws.nuke-account"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("aws.deactivate-access-key"));
}

#[test]
fn a_run_that_fails_half_way_is_recorded_and_undo_restores_what_it_read() {
    let moto = Moto::start();
    moto.run(json!({"op": "iam-setup", "user": "mallory", "role": "app-server-role"}));
    let dir = tempfile::tempdir().unwrap();
    let record = dir.path().join("r.json");
    // A key the user does not have: the state is read, the change refused, nothing changed.
    let out = respond(
        &[
            "run",
            "aws.deactivate-access-key",
            "--param",
            "user=mallory",
            "--param",
            "access_key_id=AKIANOTMALLORYSKEY00",
            "--record",
            record.to_str().unwrap(),
        ],
        &moto,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("has no access key AKIANOTMALLORYSKEY00")
    );
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["changed"], false, "{rec:#}");
    // The state is read (no such policy), then the change fails (the role does not exist): the
    // record keeps the state before, and undo, run on it, leaves the account as it was.
    let before = state(&moto);
    let out = respond(
        &[
            "run",
            "aws.deny-all",
            "--param",
            "kind=Role",
            "--param",
            "name=no-such-role",
            "--record",
            record.to_str().unwrap(),
        ],
        &moto,
    );
    assert!(!out.status.success());
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["changed"], false, "{rec:#}");
    let out = respond(&["undo", "--record", record.to_str().unwrap()], &moto);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&moto), before);
}
