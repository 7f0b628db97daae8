//! Containment actions against moto's AWS emulator (PyPI: `moto[server]`): each changes what the
//! emulator reports, verify sees it, undo restores the state before exactly; guardrails refuse
//! before any call; a run that fails half-way records what undo needs.

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::{Value, json};
use support::*;

fn respond(args: &[&str], moto: &Moto) -> Output {
    respond_as(args, moto, ("testing", "testing"))
}

/// `cloudsentinel respond` with this (access key id, secret) in the environment.
fn respond_as(args: &[&str], moto: &Moto, (key_id, secret): (&str, &str)) -> Output {
    Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
        .arg("respond")
        .args(args)
        .args(["--endpoint-url", &moto.endpoint])
        .env("AWS_ACCESS_KEY_ID", key_id)
        .env("AWS_SECRET_ACCESS_KEY", secret)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        // The region aws_emulator.py makes EC2, S3, CloudTrail and GuardDuty resources in (IAM
        // is global).
        .env("AWS_REGION", "eu-west-1")
        .output()
        .unwrap()
}

/// Asserts a command succeeded, showing its standard error when it did not.
fn succeeded(out: &Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn state(moto: &Moto) -> Value {
    moto.run(json!({"op": "iam-state", "user": "mallory", "role": "app-server-role"}))
}

fn run_and_undo(moto: &Moto, dir: &Path, action: &str, params: &[&str], check: impl Fn(&Value)) {
    run_and_undo_with(moto, dir, action, params, &|| state(moto), check);
}

/// Runs an action through the CLI, checks the emulator reports the change (`state` reads it),
/// undoes it and checks the state is the one before, exactly; answers the record.
fn run_and_undo_with(
    moto: &Moto,
    dir: &Path,
    action: &str,
    params: &[&str],
    state: &dyn Fn() -> Value,
    check: impl Fn(&Value),
) -> Value {
    let before = state();
    let record = dir.join(format!(
        "{action}-{}.json",
        params.join(",").replace('/', "_")
    ));
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
    let after = state();
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
    assert_eq!(state(), after, "an undo dry run changes nothing");
    let out = respond(&["undo", "--record", record.to_str().unwrap()], moto);
    assert!(
        out.status.success(),
        "undo {action}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let restored = state();
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
    assert!(
        !String::from_utf8_lossy(&out.stderr).is_empty(),
        "undo says what it did"
    );
    let mut rec = rec;
    rec["undo_message"] = json!(String::from_utf8_lossy(&out.stderr).to_string());
    rec["undo_plan"] = json!(planned);
    rec
}

#[test]
fn bucket_snapshot_trail_and_detector_actions_change_verify_and_undo_exactly() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    // A bucket with some of its public access block on, and one with none.
    let partial = json!({"BlockPublicAcls": true, "IgnorePublicAcls": false,
                         "BlockPublicPolicy": false, "RestrictPublicBuckets": false});
    moto.run(
        json!({"op": "bucket-setup", "bucket": "partly-open", "public_access_block": partial}),
    );
    moto.run(json!({"op": "bucket-setup", "bucket": "wide-open"}));
    let all_on = json!({"BlockPublicAcls": true, "IgnorePublicAcls": true,
                        "BlockPublicPolicy": true, "RestrictPublicBuckets": true});
    for bucket in ["partly-open", "wide-open"] {
        let bucket_state = || moto.run(json!({"op": "bucket-state", "bucket": bucket}));
        let rec = run_and_undo_with(
            &moto,
            dir.path(),
            "aws.block-s3-public-access",
            &[&format!("bucket={bucket}")],
            &bucket_state,
            |s| assert_eq!(s["public_access_block"], all_on, "{s:#}"),
        );
        let planned = rec["undo_plan"].as_str().unwrap();
        if bucket == "wide-open" {
            assert!(
                planned.contains("s3:DeletePublicAccessBlock Bucket=wide-open"),
                "{planned}"
            );
        } else {
            assert!(planned.contains("s3:PutPublicAccessBlock Bucket=partly-open BlockPublicAcls=true IgnorePublicAcls=false"), "{planned}");
        }
    }

    // A snapshot shared with two accounts and the public: one account removed, then all.
    let snap = moto.run(json!({"op": "snapshot-setup", "accounts": ["111122223333", "444455556666"], "public": true}))
        ["snapshot_id"]
        .as_str()
        .unwrap()
        .to_string();
    let snap_state = || moto.run(json!({"op": "snapshot-state", "snapshot_id": snap}));
    let snap_param = format!("snapshot_id={snap}");
    run_and_undo_with(
        &moto,
        dir.path(),
        "aws.remove-snapshot-share",
        &[&snap_param, "account=444455556666"],
        &snap_state,
        |s| assert_eq!(*s, json!({"accounts": ["111122223333"], "public": true})),
    );
    run_and_undo_with(
        &moto,
        dir.path(),
        "aws.remove-snapshot-share",
        &[&snap_param, "account=all"],
        &snap_state,
        |s| {
            assert_eq!(
                *s,
                json!({"accounts": ["111122223333", "444455556666"], "public": false})
            )
        },
    );
    let rec = run_and_undo_with(
        &moto,
        dir.path(),
        "aws.remove-snapshot-share",
        &[&snap_param],
        &snap_state,
        |s| assert_eq!(*s, json!({"accounts": [], "public": false})),
    );
    assert_eq!(
        rec["before"],
        json!({"kind": "snapshot_permissions", "accounts": ["111122223333", "444455556666"], "public": true})
    );

    // A trail that is not logging; then one that is, which undo leaves logging.
    moto.run(json!({"op": "trail-setup", "bucket": "trail-bucket", "trail": "main"}));
    let trail_state = || moto.run(json!({"op": "trail-state", "trail": "main"}));
    let rec = run_and_undo_with(
        &moto,
        dir.path(),
        "aws.enable-trail-logging",
        &["trail=main"],
        &trail_state,
        |s| assert_eq!(s["is_logging"], true),
    );
    assert!(
        rec["undo_plan"]
            .as_str()
            .unwrap()
            .contains("cloudtrail:StopLogging Name=main")
    );
    moto.run(
        json!({"op": "trail-setup", "bucket": "trail-bucket-2", "trail": "org", "logging": true}),
    );
    let record = dir.path().join("org.json");
    let out = respond(
        &[
            "run",
            "aws.enable-trail-logging",
            "-p",
            "trail=org",
            "--record",
            record.to_str().unwrap(),
        ],
        &moto,
    );
    succeeded(&out);
    let out = respond(&["undo", "--record", record.to_str().unwrap()], &moto);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("left logging"));
    assert_eq!(
        moto.run(json!({"op": "trail-state", "trail": "org"}))["is_logging"],
        true
    );

    // A disabled GuardDuty detector.
    let detector = moto.run(json!({"op": "guardduty-setup", "enabled": false}))["detector_id"]
        .as_str()
        .unwrap()
        .to_string();
    run_and_undo_with(
        &moto,
        dir.path(),
        "aws.enable-guardduty",
        &[&format!("detector_id={detector}")],
        &|| moto.run(json!({"op": "guardduty-state", "detector_id": detector})),
        |s| assert_eq!(s["status"], "ENABLED"),
    );
}

/// The snapshots of the instance's volumes that a quarantine took.
fn quarantine_snapshots(moto: &Moto, instance: &str) -> Vec<String> {
    let snaps = moto.run(json!({"op": "ec2-snapshots", "instance_id": instance}));
    snaps
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, s)| {
            s["description"].as_str().is_some_and(|d| {
                d.starts_with("CloudSentinel quarantine of ") && d.contains(instance)
            })
        })
        .map(|(id, _)| id.clone())
        .collect()
}

#[test]
fn quarantine_takes_snapshots_isolates_each_interface_and_undo_restores_the_groups() {
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    // One network interface, a new isolation group: ModifyInstanceAttribute. (moto reports
    // an interface's groups together with the instance's, so the instance's are what changes.)
    let one = moto.run(json!({"op": "ec2-setup", "interfaces": 1}));
    let id = one["instance_id"].as_str().unwrap().to_string();
    let ec2_state = |id: &str| moto.run(json!({"op": "ec2-state", "instance_id": id}));
    let refused = respond(
        &[
            "run",
            "aws.quarantine-instance",
            "-p",
            &format!("instance_id={id}"),
            "--protect",
            "instance/i-*",
        ],
        &moto,
    );
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains(&format!("instance/{id} is protected"))
    );
    let rec = run_and_undo_with(
        &moto,
        dir.path(),
        "aws.quarantine-instance",
        &[&format!("instance_id={id}")],
        &|| ec2_state(&id),
        |s| {
            let groups = s["instance_groups"].as_array().unwrap();
            assert_eq!(groups.len(), 1, "{s:#}");
            let iso = &s["security_groups"][groups[0].as_str().unwrap()];
            assert_eq!(iso["name"], format!("cloudsentinel-quarantine-{id}"));
            assert_eq!(iso["ingress"], json!([]), "no inbound rule");
            assert_eq!(
                iso["egress"],
                json!([]),
                "the default outbound rule revoked"
            );
        },
    );
    let before = &rec["before"];
    assert_eq!(before["kind"], "quarantine");
    assert_eq!(
        before["groups"].as_array().unwrap().len(),
        2,
        "the groups before: {before:#}"
    );
    let taken: Vec<String> = before["snapshots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["snapshot_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        taken.len(),
        2,
        "one snapshot per volume, taken first: {before:#}"
    );
    let mut left = quarantine_snapshots(&moto, &id);
    left.sort();
    let mut sorted = taken.clone();
    sorted.sort();
    assert_eq!(left, sorted, "the snapshots stay after undo: evidence");
    let said = rec["undo_message"].as_str().unwrap();
    assert!(
        said.contains("kept as evidence") && said.contains(&taken[0]),
        "{said}"
    );
    assert!(
        said.contains("deleted"),
        "the group it created is gone: {said}"
    );
    assert!(
        rec["undo_plan"].as_str().unwrap().contains(&format!(
            "ec2:ModifyInstanceAttribute InstanceId={id} GroupId.1="
        )),
        "{rec:#}"
    );

    // Three network interfaces and a given isolation group: each interface moved into it.
    let three = moto.run(json!({"op": "ec2-setup", "interfaces": 3, "isolation": true}));
    let id = three["instance_id"].as_str().unwrap().to_string();
    let forensics = three["groups"]["forensics"].as_str().unwrap().to_string();
    let rec = run_and_undo_with(
        &moto,
        dir.path(),
        "aws.quarantine-instance",
        &[
            &format!("instance_id={id}"),
            &format!("isolation_group={forensics}"),
        ],
        &|| ec2_state(&id),
        |s| {
            let interfaces = s["interfaces"].as_object().unwrap();
            assert_eq!(interfaces.len(), 3);
            for groups in interfaces.values() {
                assert_eq!(*groups, json!([forensics]), "{s:#}");
            }
        },
    );
    assert_eq!(rec["before"]["interfaces"].as_array().unwrap().len(), 3);
    assert!(
        rec["before"].get("created_group").is_none(),
        "the group was given: kept"
    );
    assert_eq!(
        rec["undo_plan"]
            .as_str()
            .unwrap()
            .matches("ec2:ModifyNetworkInterfaceAttribute")
            .count(),
        3
    );
    assert_eq!(quarantine_snapshots(&moto, &id).len(), 2);
}

#[test]
fn a_quarantine_that_fails_half_way_keeps_its_snapshots_in_the_record_and_undo_restores_the_groups()
{
    let moto = Moto::start();
    let dir = tempfile::tempdir().unwrap();
    let setup = moto.run(json!({"op": "ec2-setup", "interfaces": 1, "leftover": true}));
    let id = setup["instance_id"].as_str().unwrap().to_string();
    let ec2_state = || moto.run(json!({"op": "ec2-state", "instance_id": id}));
    let before = ec2_state();
    // The snapshots are taken, then the isolation group given does not exist: the run fails
    // after changing the account (new snapshots), before moving the instance.
    let record = dir.path().join("half.json");
    let out = respond(
        &[
            "run",
            "aws.quarantine-instance",
            "-p",
            &format!("instance_id={id}"),
            "-p",
            "isolation_group=sg-0123456789abcdef0",
            "--record",
            record.to_str().unwrap(),
        ],
        &moto,
    );
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("InvalidGroup.NotFound"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["changed"], false, "{rec:#}");
    assert_eq!(rec["before"]["kind"], "quarantine");
    let mut recorded: Vec<String> =
        serde_json::from_value(rec["before"]["groups"].clone()).unwrap();
    recorded.sort();
    assert_eq!(
        json!(recorded),
        before["instance_groups"],
        "the groups before are recorded: {rec:#}"
    );
    let taken = rec["before"]["snapshots"].as_array().unwrap();
    assert_eq!(taken.len(), 2, "the snapshots taken are recorded: {rec:#}");
    assert_eq!(quarantine_snapshots(&moto, &id).len(), 2);
    let out = respond(&["undo", "--record", record.to_str().unwrap()], &moto);
    succeeded(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("kept as evidence"));
    assert_eq!(ec2_state(), before, "undo puts back the groups recorded");

    // A group of the name a quarantine creates is already there (one not undone): refused
    // after the snapshots, saying how to go on; the record again carries what undo needs.
    let out = respond(
        &[
            "run",
            "aws.quarantine-instance",
            "-p",
            &format!("instance_id={id}"),
            "--record",
            record.to_str().unwrap(),
        ],
        &moto,
    );
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        said.contains("already exists") && said.contains("isolation_group"),
        "{said}"
    );
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(rec["before"]["snapshots"].as_array().unwrap().len(), 2);
    assert!(rec["before"].get("created_group").is_none(), "{rec:#}");
    let out = respond(&["undo", "--record", record.to_str().unwrap()], &moto);
    succeeded(&out);
    assert_eq!(ec2_state(), before);
    assert_eq!(
        quarantine_snapshots(&moto, &id).len(),
        4,
        "two runs, two snapshots each"
    );
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
    succeeded(&out);
    assert_eq!(state(&moto), before);
}

/// With IAM enforced (moto checks each request's signature and the signer's policies), a
/// responder allowed to read the state but not to change it is told which IAM action was
/// denied; the run exits with failure, its record keeps the state it read and says nothing
/// changed, and the account is as it was. The same runs with an administrator's key succeed:
/// the denials come from the policies, not from the signing.
#[test]
fn a_denied_change_names_the_iam_action_and_changes_nothing() {
    let moto = Moto::start_enforcing();
    let admin = moto.admin.clone().expect("an administrator");
    let admin = (admin.0.as_str(), admin.1.as_str());
    let dir = tempfile::tempdir().unwrap();
    let user = |name: &str, actions: &[&str]| {
        Moto::key_of(&moto.run(json!({"op": "iam-limited-user", "user": name, "actions": actions})))
    };
    let record_of =
        |who: (&str, &str), action: &str| dir.path().join(format!("{action}-{}.json", who.0));
    // Runs an action as `who`; answers (exit status, stderr, record).
    let run = |who: (&str, &str), action: &str, params: &[String]| {
        let record = record_of(who, action);
        let mut args = vec!["run", action, "--record", record.to_str().unwrap()];
        for p in params {
            args.extend(["--param", p]);
        }
        let out = respond_as(&args, &moto, who);
        let rec: Value = serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
        (
            out.status,
            String::from_utf8_lossy(&out.stderr).to_string(),
            rec,
        )
    };
    let expect_denied = |who: (&str, &str), action: &str, params: &[String], denied: &str| {
        let (status, stderr, rec) = run(who, action, params);
        assert_eq!(status.code(), Some(1), "{action}: {stderr}");
        assert!(
            stderr.contains(&format!("{denied} was denied")),
            "{action}: {stderr}"
        );
        assert!(
            rec["error"]
                .as_str()
                .unwrap()
                .starts_with(&format!("{denied} was denied: ")),
            "{rec:#}"
        );
        assert_eq!(rec["changed"], false, "{rec:#}");
        assert!(rec["verified"].is_null(), "{rec:#}");
        rec
    };

    // IAM: allowed the read the plan makes (iam:ListAccessKeys), not iam:UpdateAccessKey.
    let key = moto.run(json!({"op": "iam-setup", "user": "mallory", "role": "app-server-role"}))
        ["access_key_id"]
        .as_str()
        .unwrap()
        .to_string();
    let params = ["user=mallory".to_string(), format!("access_key_id={key}")];
    let before = state(&moto);
    assert_eq!(before["keys"][&key], "Active");
    let responder = user("responder", &["iam:ListAccessKeys"]);
    let rec = expect_denied(
        (&responder.0, &responder.1),
        "aws.deactivate-access-key",
        &params,
        "iam:UpdateAccessKey",
    );
    assert!(
        rec["error"].as_str().unwrap().contains(
            "User: arn:aws:iam::123456789012:user/responder is not authorized to perform: iam:UpdateAccessKey"
        ),
        "AWS's own words follow: {rec:#}"
    );
    assert_eq!(
        rec["before"],
        json!({"kind": "access_key_status", "status": "Active"})
    );
    assert_eq!(state(&moto), before, "the key is still Active");
    // Not even allowed the read: the read is named, and there is no state before to undo to.
    let nobody = user("nobody", &["sts:GetCallerIdentity"]);
    let rec = expect_denied(
        (&nobody.0, &nobody.1),
        "aws.deactivate-access-key",
        &params,
        "iam:ListAccessKeys",
    );
    assert!(rec["before"].is_null(), "{rec:#}");
    let record = record_of((&nobody.0, &nobody.1), "aws.deactivate-access-key");
    let out = respond_as(
        &["undo", "--record", record.to_str().unwrap()],
        &moto,
        admin,
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("nothing to undo"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(state(&moto), before);
    let (status, stderr, _) = run(admin, "aws.deactivate-access-key", &params);
    assert!(status.success(), "the administrator may: {stderr}");
    assert_eq!(state(&moto)["keys"][&key], "Inactive");

    // S3: the IAM action (s3:PutBucketPublicAccessBlock) is not the operation's name
    // (PutPublicAccessBlock). moto 5.1 checks these requests under other names (its S3
    // ACTION_MAP's key `public_access_block` never matches the `?publicAccessBlock` query, so a
    // bucket request's defaults apply: s3:ListBucket for the read, s3:CreateBucket for the
    // change): the responder is allowed the read under both names, the change under neither.
    moto.run(json!({"op": "bucket-setup", "bucket": "wide-open"}));
    let bucket_state = || moto.run(json!({"op": "bucket-state", "bucket": "wide-open"}));
    let before = bucket_state();
    let s3_reader = user(
        "s3-reader",
        &["s3:GetBucketPublicAccessBlock", "s3:ListBucket"],
    );
    let params = ["bucket=wide-open".to_string()];
    let rec = expect_denied(
        (&s3_reader.0, &s3_reader.1),
        "aws.block-s3-public-access",
        &params,
        "s3:PutBucketPublicAccessBlock",
    );
    assert_eq!(
        rec["before"],
        json!({"kind": "public_access_block", "configuration": null})
    );
    assert_eq!(bucket_state(), before, "no public access block yet");
    let (status, stderr, _) = run(admin, "aws.block-s3-public-access", &params);
    assert!(status.success(), "the administrator may: {stderr}");
    assert!(bucket_state()["public_access_block"].is_object());

    // EC2 (moto answers AccessDenied where AWS says UnauthorizedOperation; both are denials).
    let snap =
        moto.run(json!({"op": "snapshot-setup", "accounts": ["111122223333"]}))["snapshot_id"]
            .as_str()
            .unwrap()
            .to_string();
    let snap_state = || moto.run(json!({"op": "snapshot-state", "snapshot_id": snap}));
    let before = snap_state();
    let ec2_reader = user("ec2-reader", &["ec2:DescribeSnapshotAttribute"]);
    let params = [
        format!("snapshot_id={snap}"),
        "account=111122223333".to_string(),
    ];
    let rec = expect_denied(
        (&ec2_reader.0, &ec2_reader.1),
        "aws.remove-snapshot-share",
        &params,
        "ec2:ModifySnapshotAttribute",
    );
    assert_eq!(rec["before"]["accounts"], json!(["111122223333"]));
    assert_eq!(snap_state(), before, "still shared");
}

/// The workflow in the service: an alert's playbook proposes an action with the exact calls;
/// a responder proposes it, another approves it (four eyes), it runs against the account
/// (moto) and is verified, and undo restores the account; guardrails refuse a protected
/// principal; every step is in the audit log.
#[test]
fn alerts_propose_actions_that_responders_approve_run_and_undo() {
    let moto = Moto::start();
    moto.run(json!({"op": "iam-setup", "user": "mallory", "role": "app-server-role"}));
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("cs.toml");
    std::fs::write(
        &config,
        format!(
            "[respond]\nendpoint_url = {:?}\nprotected = [\"user/break-glass\"]\nfour_eyes = true\n",
            moto.endpoint
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
    let [ann, bob] = ["ann", "bob"].map(|n| s.user(&admin, n, "responder"));
    // alice sets a console password on mallory's IAM user.
    let record = json!({"eventVersion": "1.09", "eventTime": "2026-11-20T10:00:00Z",
        "eventSource": "iam.amazonaws.com", "eventName": "CreateLoginProfile", "awsRegion": "us-east-1",
        "sourceIPAddress": "198.51.100.7", "userAgent": "aws-cli/2.15.30", "eventID": "resp-1",
        "readOnly": false, "eventType": "AwsApiCall", "managementEvent": true, "recipientAccountId": "123456789012",
        "userIdentity": {"type": "IAMUser", "principalId": "AIDAALICE", "arn": "arn:aws:iam::123456789012:user/alice",
            "accountId": "123456789012", "accessKeyId": "AKIAALICE00000000000", "userName": "alice"},
        "requestParameters": {"userName": "mallory", "passwordResetRequired": false},
        "responseElements": {"loginProfile": {"userName": "mallory", "passwordResetRequired": false}}});
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
    let responses = s.get(&format!("/api/v1/alerts/{alert_id}/responses"), &ann);
    let p = &responses["proposals"][0];
    assert_eq!(p["playbook"], "aws-console-takeover", "{responses:#}");
    assert_eq!(
        p["action"],
        json!({"action": "aws.delete-login-profile", "user": "mallory"})
    );
    assert_eq!(p["calls"][1], "iam:DeleteLoginProfile UserName=mallory");
    // ann proposes; ann may not approve her own proposal; bob approves and runs.
    let (status, proposed, text) = s.req(
        "POST",
        &format!("/api/v1/alerts/{alert_id}/responses"),
        Some(&ann),
        Some(
            json!({"action": p["action"], "playbook": p["playbook"]})
                .to_string()
                .as_bytes(),
        ),
    );
    assert_eq!(status, 201, "{text}");
    let rid = proposed["id"].as_i64().unwrap();
    let step = |id: i64, what: &str, who: &str| {
        s.req(
            "POST",
            &format!("/api/v1/responses/{id}/{what}"),
            Some(who),
            None,
        )
    };
    let (status, _, text) = step(rid, "approve", &ann);
    assert_eq!(status, 409, "four eyes: {text}");
    let (status, _, text) = step(rid, "run", &bob);
    assert_eq!(status, 409, "not approved yet: {text}");
    let (status, _, text) = step(rid, "approve", &bob);
    assert_eq!(status, 200, "{text}");
    let (status, ran, text) = step(rid, "run", &bob);
    assert_eq!(status, 200, "{text}");
    assert_eq!(ran["status"], "done", "{ran:#}");
    assert_eq!(ran["verified"], true);
    assert_eq!(
        ran["before"],
        json!({"kind": "login_profile", "existed": true, "password_reset_required": false})
    );
    let st = moto.run(json!({"op": "iam-state", "user": "mallory", "role": "app-server-role"}));
    assert!(
        st["login_profile"].is_null(),
        "the password is gone: {st:#}"
    );
    let (status, again, _) = step(rid, "run", &bob);
    assert_eq!(status, 409, "it runs once: {again}");
    let (status, undone, text) = step(rid, "undo", &ann);
    assert_eq!(status, 200, "{text}");
    assert_eq!(undone["status"], "undone");
    assert_eq!(
        undone["secret"].as_str().unwrap().len(),
        24,
        "the new password, once"
    );
    let st = moto.run(json!({"op": "iam-state", "user": "mallory", "role": "app-server-role"}));
    assert!(st["login_profile"].is_object(), "{st:#}");
    // A protected principal is refused when it would run, and says why.
    let (_, protected, _) = s.req(
        "POST",
        &format!("/api/v1/alerts/{alert_id}/responses"),
        Some(&ann),
        Some(br#"{"action": {"action": "aws.deny-all", "kind": "User", "name": "break-glass"}}"#),
    );
    let pid = protected["id"].as_i64().unwrap();
    step(pid, "approve", &bob);
    let (status, _, text) = step(pid, "run", &bob);
    assert_eq!(status, 409);
    assert!(text.contains("user/break-glass is protected"), "{text}");
    // The alert page shows the Response panel; its incident's page lists what was done.
    let cookies = s.ui_cookies();
    let (status, _, page) = s.req_h(
        "GET",
        &format!("/ui/alerts/{alert_id}"),
        None,
        None,
        &[("cookie", &cookies)],
    );
    assert_eq!(status, 200);
    let panel = &page[page.find("id=\"response\"").expect("a Response panel")..];
    assert!(
        panel.contains("delete the console password of IAM user mallory")
            && panel.contains(">undone<"),
        "{panel}"
    );
    let incident = s.get(&format!("/api/v1/alerts/{alert_id}"), &admin)["alert"]["incident_id"]
        .as_i64()
        .expect("an incident");
    let (status, _, page) = s.req_h(
        "GET",
        &format!("/ui/incidents/{incident}"),
        None,
        None,
        &[("cookie", &cookies)],
    );
    assert_eq!(status, 200);
    let section = &page[page
        .find("id=\"responses\"")
        .expect("a Containment section")..];
    assert!(section.contains("aws.delete-login-profile"), "{section}");
    // Every step is audited.
    let audit = s.get("/api/v1/audit?limit=100", &admin);
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .filter(|a| a.starts_with("response."))
        .collect();
    for step in [
        "response.propose",
        "response.approve",
        "response.run",
        "response.undo",
        "response.refused",
    ] {
        assert!(actions.contains(&step), "{step} not audited: {actions:?}");
    }
}

/// The Entra ID actions against a Microsoft Graph stand-in (tests/support/graph_standin.py):
/// disable a user and undo it exactly; revoke sessions (no undo possible, said so); remove an
/// application's password (undo: a new secret, shown once); a denied call names what was denied.
#[test]
fn entra_actions_change_the_tenant_and_undo() {
    use std::io::BufRead;
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = std::process::Command::new("python3")
        .arg(format!(
            "{}/tests/support/graph_standin.py",
            env!("CARGO_MANIFEST_DIR")
        ))
        .arg(port.to_string())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    assert_eq!(line.trim(), "ready");
    let base = format!("http://127.0.0.1:{port}");
    let state = || -> Value {
        let mut r = ureq::get(&format!("{base}/test/state")).call().unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    };
    let dir = tempfile::tempdir().unwrap();
    let entra = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .arg("respond")
            .args(args)
            .args(["--entra-tenant", "contoso", "--entra-client-id", "cs-app"])
            .args(["--graph-endpoint", &base, "--entra-authority", &base])
            .env("AZURE_CLIENT_SECRET", "cs-secret")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .unwrap()
    };
    let record = dir.path().join("disable.json");
    let out = entra(&[
        "run",
        "entra.disable-user",
        "-p",
        "user=mallory@contoso.com",
        "--record",
        record.to_str().unwrap(),
    ]);
    succeeded(&out);
    assert_eq!(
        state()["users"]["mallory@contoso.com"]["accountEnabled"],
        false
    );
    let out = entra(&["undo", "--record", record.to_str().unwrap()]);
    succeeded(&out);
    assert_eq!(
        state()["users"]["mallory@contoso.com"]["accountEnabled"],
        true,
        "as before"
    );

    let record = dir.path().join("revoke.json");
    let out = entra(&[
        "run",
        "entra.revoke-sessions",
        "-p",
        "user=mallory@contoso.com",
        "--record",
        record.to_str().unwrap(),
    ]);
    succeeded(&out);
    assert_eq!(state()["revoked"], json!(["mallory@contoso.com"]));
    let out = entra(&["undo", "--record", record.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be given back"));

    let record = dir.path().join("password.json");
    let out = entra(&[
        "run",
        "entra.remove-app-password",
        "-p",
        "application=app-1",
        "-p",
        "key_id=k-1",
        "--record",
        record.to_str().unwrap(),
    ]);
    succeeded(&out);
    assert_eq!(state()["apps"]["app-1"], json!([]));
    let out = entra(&["undo", "--record", record.to_str().unwrap()]);
    succeeded(&out);
    assert_eq!(
        state()["apps"]["app-1"].as_array().unwrap().len(),
        1,
        "a new password"
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("not the removed one"));
    assert!(
        String::from_utf8_lossy(&out.stdout).trim().len() >= 30,
        "the new secret, once"
    );

    let out = entra(&["run", "entra.disable-user", "-p", "user=denied@contoso.com"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("was denied"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let _ = child.kill();
    let _ = child.wait();
}

/// The GCP stand-in (tests/support/gcp_standin.py) on a free port, checking the RS256
/// assertions of the service account key it was given; killed when dropped.
struct GcpStandin {
    child: std::process::Child,
    base: String,
}

impl GcpStandin {
    fn start(port: u16, public_key: &Path) -> GcpStandin {
        use std::io::BufRead;
        let mut child = Command::new("python3")
            .arg(format!(
                "{}/tests/support/gcp_standin.py",
                env!("CARGO_MANIFEST_DIR")
            ))
            .arg(port.to_string())
            .arg(public_key)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        assert_eq!(line.trim(), "ready", "the GCP stand-in did not start");
        GcpStandin {
            child,
            base: format!("http://127.0.0.1:{port}"),
        }
    }

    fn state(&self) -> Value {
        let mut r = ureq::get(&format!("{}/test/state", self.base))
            .call()
            .unwrap();
        serde_json::from_str(&r.body_mut().read_to_string().unwrap()).unwrap()
    }

    fn post(&self, path: &str, body: Value) {
        ureq::post(&format!("{}{path}", self.base))
            .header("content-type", "application/json")
            .send(body.to_string().as_bytes())
            .unwrap();
    }
}

impl Drop for GcpStandin {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A service account key (RSA, PKCS#8) whose token endpoint is `token_uri`, and its public key.
fn gcp_service_account_key(
    dir: &Path,
    token_uri: &str,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let key = dir.join("responder.json");
    let public = dir.join("responder.pub.pem");
    let script = format!(
        "import json\nfrom cryptography.hazmat.primitives.asymmetric import rsa\n\
         from cryptography.hazmat.primitives import serialization as s\n\
         k = rsa.generate_private_key(public_exponent=65537, key_size=2048)\n\
         pem = k.private_bytes(s.Encoding.PEM, s.PrivateFormat.PKCS8, s.NoEncryption()).decode()\n\
         open({public:?}, 'wb').write(k.public_key().public_bytes(s.Encoding.PEM, s.PublicFormat.SubjectPublicKeyInfo))\n\
         json.dump({{'type': 'service_account', 'project_id': 'nw-prod-4821', 'private_key_id': 'r1', 'private_key': pem,\n\
           'client_email': 'responder@nw-sec-tools.iam.gserviceaccount.com', 'token_uri': {token_uri:?}}}, open({key:?}, 'w'))\n",
        public = public.display().to_string(),
        key = key.display().to_string(),
    );
    let out = Command::new("python3")
        .args(["-c", &script])
        .output()
        .unwrap();
    succeeded(&out);
    (key, public)
}

/// A policy's bindings in a stable order (members sorted), to compare two policies' content.
fn bindings(policy: &Value) -> Vec<String> {
    let mut out: Vec<String> = policy["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            let mut b = b.clone();
            let mut members: Vec<Value> = b["members"].as_array().unwrap().clone();
            members.sort_by_key(|m| m.to_string());
            b["members"] = Value::Array(members);
            b.to_string()
        })
        .collect();
    out.sort();
    out
}

/// The GCP actions against a stand-in of the IAM and Resource Manager APIs
/// (tests/support/gcp_standin.py), acting with a service account key (a signed JWT the stand-in
/// verifies): disabling a key and removing a member from a role change what the stand-in
/// reports, verify sees it, undo restores the state before exactly (a key disabled before
/// stays disabled; the member is back in each binding it was in, its condition included, and
/// a change someone made meanwhile survives: the write with a stale etag is refused and made
/// again from a new read); a denied call names the IAM permission; a protected service account
/// is refused before any call.
#[test]
fn gcp_actions_change_the_project_and_undo() {
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let (key, public) =
        gcp_service_account_key(dir.path(), &format!("http://127.0.0.1:{port}/token"));
    let standin = GcpStandin::start(port, &public);
    let gcp = |args: &[&str]| -> Output {
        Command::new(env!("CARGO_BIN_EXE_cloudsentinel"))
            .arg("respond")
            .args(args)
            .args(["--gcp-credentials", key.to_str().unwrap()])
            .args(["--gcp-endpoint", &standin.base])
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .output()
            .unwrap()
    };
    let ok = |out: &Output| {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let record_of = |path: &Path| -> Value {
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
    };
    let billing = "billing-exporter@nw-prod-4821.iam.gserviceaccount.com";
    let key_name = |id: &str| format!("projects/nw-prod-4821/serviceAccounts/{billing}/keys/{id}");
    let enabled_key = "5f2c0a8e4b1d9c7f3e6a2b0d8c4f1e9a7b3c5d20";
    let disabled_key = "0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f5a6b7c8d9e";

    // Disable a key; undo enables it again.
    let record = dir.path().join("key.json");
    let sa = format!("service_account={billing}");
    let key_param = format!("key_id={enabled_key}");
    let out = gcp(&[
        "run",
        "gcp.disable-service-account-key",
        "-p",
        "project=nw-prod-4821",
        "-p",
        &sa,
        "-p",
        &key_param,
        "--record",
        record.to_str().unwrap(),
    ]);
    ok(&out);
    assert_eq!(standin.state()["keys"][key_name(enabled_key)], true);
    let r = record_of(&record);
    assert_eq!(
        r["before"],
        json!({"kind": "key_disabled", "disabled": false})
    );
    assert_eq!(r["verified"], true);
    let out = gcp(&["undo", "--record", record.to_str().unwrap(), "--dry-run"]);
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout).contains(&format!(
            "iam:projects.serviceAccounts.keys.enable name={}",
            key_name(enabled_key)
        )),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    ok(&gcp(&["undo", "--record", record.to_str().unwrap()]));
    assert_eq!(
        standin.state()["keys"][key_name(enabled_key)],
        false,
        "enabled, as before"
    );

    // A key disabled before stays disabled after undo.
    let record = dir.path().join("disabled-key.json");
    let key_param = format!("key_id={disabled_key}");
    ok(&gcp(&[
        "run",
        "gcp.disable-service-account-key",
        "-p",
        "project=nw-prod-4821",
        "-p",
        &sa,
        "-p",
        &key_param,
        "--record",
        record.to_str().unwrap(),
    ]));
    let out = gcp(&["undo", "--record", record.to_str().unwrap()]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("left disabled"));
    assert_eq!(standin.state()["keys"][key_name(disabled_key)], true);

    // Remove the contractor from roles/owner while someone else changes the policy: the write
    // with the etag read is refused (409 ABORTED) and made again from a new read.
    let contractor = "user:d.ferreira.contractor@gmail.com";
    let concurrent =
        json!({"role": "roles/logging.viewer", "members": ["group:sre@northwind-labs.com"]});
    standin.post(
        "/test/concurrent-change",
        json!({"project": "nw-prod-4821", "binding": concurrent}),
    );
    let before = standin.state()["policies"]["nw-prod-4821"].clone();
    let calls_before = standin.state()["calls"].as_array().unwrap().len();
    let record = dir.path().join("binding.json");
    let member = format!("member={contractor}");
    let out = gcp(&[
        "run",
        "gcp.remove-iam-binding",
        "-p",
        "project=nw-prod-4821",
        "-p",
        "role=roles/owner",
        "-p",
        &member,
        "--record",
        record.to_str().unwrap(),
    ]);
    ok(&out);
    let st = standin.state();
    let calls: Vec<&str> = st["calls"].as_array().unwrap()[calls_before..]
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(
        calls,
        [
            "POST /v1/projects/nw-prod-4821:getIamPolicy",
            "POST /v1/projects/nw-prod-4821:setIamPolicy",
            "POST /v1/projects/nw-prod-4821:getIamPolicy",
            "POST /v1/projects/nw-prod-4821:setIamPolicy",
            "POST /v1/projects/nw-prod-4821:getIamPolicy",
        ],
        "read, refused write, read again, write, verify"
    );
    let policy = &st["policies"]["nw-prod-4821"];
    let owners: Vec<&Value> = policy["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|b| b["role"] == "roles/owner")
        .collect();
    assert_eq!(
        owners,
        [&json!({"role": "roles/owner", "members": ["group:gcp-admins@northwind-labs.com"]})],
        "the conditional binding left empty is dropped: {policy:#}"
    );
    assert!(
        policy["bindings"].as_array().unwrap().contains(&concurrent),
        "the change made meanwhile survives: {policy:#}"
    );
    assert_eq!(policy["auditConfigs"], before["auditConfigs"]);
    let r = record_of(&record);
    assert_eq!(r["verified"], true);
    assert_eq!(
        r["before"],
        json!({"kind": "iam_binding", "role": "roles/owner", "member": contractor, "conditions": [
            null,
            {"title": "until 2027", "expression": "request.time < timestamp(\"2027-01-01T00:00:00Z\")"}]})
    );
    ok(&gcp(&["undo", "--record", record.to_str().unwrap()]));
    let after = standin.state()["policies"]["nw-prod-4821"].clone();
    let mut expected = before.clone();
    expected["bindings"]
        .as_array_mut()
        .unwrap()
        .push(concurrent.clone());
    assert_eq!(
        bindings(&after),
        bindings(&expected),
        "the bindings before, and the change made meanwhile: {after:#}"
    );
    assert_eq!(after["version"], 3);
    // Undone twice: nothing left to restore, nothing written.
    let out = gcp(&["undo", "--record", record.to_str().unwrap()]);
    ok(&out);
    assert!(String::from_utf8_lossy(&out.stderr).contains("nothing to restore"));
    assert_eq!(
        standin.state()["policies"]["nw-prod-4821"]["etag"],
        after["etag"]
    );
    // A member who does not hold the role: nothing is changed, and it says so.
    let out = gcp(&[
        "run",
        "gcp.remove-iam-binding",
        "-p",
        "project=nw-prod-4821",
        "-p",
        "role=roles/editor",
        "-p",
        &member,
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not hold roles/editor"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // Denied calls name the IAM permission.
    standin.post(
        "/test/deny",
        json!({"permissions": ["iam.serviceAccountKeys.disable", "resourcemanager.projects.setIamPolicy"]}),
    );
    let key_param = format!("key_id={enabled_key}");
    let out = gcp(&[
        "run",
        "gcp.disable-service-account-key",
        "-p",
        "project=nw-prod-4821",
        "-p",
        &sa,
        "-p",
        &key_param,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("iam.serviceAccountKeys.disable was denied: Permission 'iam.serviceAccountKeys.disable' denied"),
        "{stderr}"
    );
    assert_eq!(standin.state()["keys"][key_name(enabled_key)], false);
    let out = gcp(&[
        "run",
        "gcp.remove-iam-binding",
        "-p",
        "project=nw-prod-4821",
        "-p",
        "role=roles/viewer",
        "-p",
        &member,
    ]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("resourcemanager.projects.setIamPolicy was denied"),
        "{stderr}"
    );
    standin.post("/test/deny", json!({"permissions": []}));

    // A protected service account is refused before any call, in either action.
    let calls_before = standin.state()["calls"].as_array().unwrap().len();
    let out = gcp(&[
        "run",
        "gcp.disable-service-account-key",
        "-p",
        "project=nw-prod-4821",
        "-p",
        "service_account=cloudsentinel@nw-prod-4821.iam.gserviceaccount.com",
        "-p",
        "key_id=7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c",
        "--protect",
        "serviceAccount/cloudsentinel@*",
    ]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(
            "serviceAccount/cloudsentinel@nw-prod-4821.iam.gserviceaccount.com is protected"
        ),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = gcp(&[
        "run",
        "gcp.remove-iam-binding",
        "-p",
        "project=nw-prod-4821",
        "-p",
        "role=roles/editor",
        "-p",
        "member=serviceAccount:cloudsentinel@nw-prod-4821.iam.gserviceaccount.com",
        "--protect",
        "serviceAccount/cloudsentinel@*",
    ]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("is protected"));
    // And a dry run shows the calls, making none.
    let out = gcp(&[
        "run",
        "gcp.remove-iam-binding",
        "-p",
        "project=nw-prod-4821",
        "-p",
        "role=roles/viewer",
        "-p",
        &member,
        "--dry-run",
    ]);
    ok(&out);
    assert!(
        String::from_utf8_lossy(&out.stdout)
            .contains("cloudresourcemanager:projects.getIamPolicy resource=nw-prod-4821"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert_eq!(
        standin.state()["calls"].as_array().unwrap().len(),
        calls_before,
        "no call for a refused action or a dry run"
    );
    let cloudsentinel_key = "projects/nw-prod-4821/serviceAccounts/cloudsentinel@nw-prod-4821.iam.gserviceaccount.com/keys/7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c";
    assert_eq!(standin.state()["keys"][cloudsentinel_key], false);
}
