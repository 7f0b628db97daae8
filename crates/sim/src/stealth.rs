//! Behaviour-only attacks, for measuring the anomaly detector: stolen credentials of a
//! principal the scenario knows, used in the victim's night from a hosting network it has never
//! been seen from, calling only ordinary read APIs, then one sensitive write. Nothing in them
//! is an attack by its name alone (no trail stopped, no region sweep, no denial storm); only who,
//! from where, when and in what order gives them away.
//!
//! Four kinds take turns: an engineer's Identity Center session, the legacy IAM user's
//! long-lived key, an EC2 instance profile's credentials used from outside AWS, and an
//! engineer's gcloud credentials. Every story (up to 27) comes from its own /16 network, so that one
//! story's address is never part of another's baseline.

use chrono::{DateTime, Duration, Timelike, Utc};
use serde_json::{Value, json};

use crate::cloudtrail::{self as ct, Call, Who, temp_key};
use crate::gcp::{self, Entry};
use crate::org;
use crate::rng::Rng;
use crate::stories::{Tape, night};
use crate::{Scenario, SimConfig, Sink, Story, secs};

/// Hosting networks (VPS and dedicated-server providers) the attackers rent from, as /16
/// prefixes. None of them appears in the organisation's benign activity.
const HOSTING: &[&str] = &[
    "45.77", "139.59", "164.90", "51.15", "5.161", "95.216", "116.203", "172.105", "45.79",
    "103.152", "194.87", "91.219", "193.149", "198.98", "207.148", "66.42", "157.245", "178.128",
    "188.166", "209.97", "46.101", "128.199", "134.209", "37.120", "89.40", "141.98", "185.243",
];

/// User agents of the tools an intruder with stolen keys runs.
const AWS_TOOLS: &[&str] = &[
    "aws-cli/2.15.30 md/awscrt#0.19.19 ua/2.0 os/linux#6.1.0-18-amd64 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#standard md/installer#exe md/prompt#off",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#5.15.0-101-generic md/arch#x86_64 lang/python#3.10.12 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.26.0 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/sts#1.28.5",
    "aws-sdk-js/3.540.0 ua/2.0 os/linux#5.15.0 lang/js md/nodejs#20.11.1 api/s3#3.540.0",
];

/// Ordinary reads: (service, eventName, request).
fn aws_reads() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        ("sts", "GetCallerIdentity", Value::Null),
        ("s3", "ListBuckets", json!({"Host": "s3.amazonaws.com"})),
        (
            "ec2",
            "DescribeInstances",
            json!({"instancesSet": {}, "filterSet": {}}),
        ),
        (
            "ec2",
            "DescribeVpcs",
            json!({"vpcSet": {}, "filterSet": {}}),
        ),
        (
            "ec2",
            "DescribeSecurityGroups",
            json!({"securityGroupSet": {}, "filterSet": {}}),
        ),
        ("iam", "ListRoles", Value::Null),
        ("lambda", "ListFunctions20150331", Value::Null),
        ("rds", "DescribeDBInstances", Value::Null),
        ("dynamodb", "ListTables", Value::Null),
        ("secretsmanager", "ListSecrets", Value::Null),
        ("logs", "DescribeLogGroups", Value::Null),
        ("cloudformation", "DescribeStacks", Value::Null),
        ("ecs", "ListClusters", Value::Null),
        ("sqs", "ListQueues", Value::Null),
        ("kms", "ListKeys", Value::Null),
    ]
}

/// The one sensitive write that ends an AWS story: (service, eventName, request).
fn aws_write(rng: &mut Rng, account: &str) -> (&'static str, String, Value) {
    let bucket = rng.pick(org::buckets(account)).to_string();
    let role = rng.pick(org::ROLES).to_string();
    match rng.below(6) {
        0 => (
            "iam",
            "CreateAccessKey".into(),
            json!({"userName": "svc-reporting"}),
        ),
        1 => (
            "iam",
            "AttachRolePolicy".into(),
            json!({"roleName": role, "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        ),
        2 => (
            "s3",
            "PutBucketPolicy".into(),
            json!({"bucketName": bucket, "Host": format!("{bucket}.s3.amazonaws.com"), "policy": ""}),
        ),
        3 => (
            "iam",
            "UpdateAssumeRolePolicy".into(),
            json!({"roleName": role}),
        ),
        4 => (
            "kms",
            "CreateGrant".into(),
            json!({"keyId": "alias/prod-data", "operations": ["Decrypt"]}),
        ),
        _ => (
            "iam",
            "PutUserPolicy".into(),
            json!({"userName": "svc-reporting", "policyName": "ops"}),
        ),
    }
}

/// Ordinary GCP reads: (service, method, permission, gcloud command).
const GCP_READS: &[(&str, &str, &str, &str)] = &[
    (
        "storage.googleapis.com",
        "storage.buckets.list",
        "storage.buckets.list",
        "storage.buckets.list",
    ),
    (
        "compute.googleapis.com",
        "v1.compute.instances.aggregatedList",
        "compute.instances.list",
        "compute.instances.list",
    ),
    (
        "bigquery.googleapis.com",
        "google.cloud.bigquery.v2.DatasetService.ListDatasets",
        "bigquery.datasets.get",
        "bq.ls",
    ),
    (
        "iam.googleapis.com",
        "google.iam.admin.v1.ListServiceAccounts",
        "iam.serviceAccounts.list",
        "iam.service-accounts.list",
    ),
    (
        "cloudresourcemanager.googleapis.com",
        "GetProject",
        "resourcemanager.projects.get",
        "projects.describe",
    ),
    (
        "compute.googleapis.com",
        "v1.compute.firewalls.list",
        "compute.firewalls.list",
        "compute.firewall-rules.list",
    ),
];

/// Generates `count` behaviour-only attack stories, evenly spread over `[from, to)`, each moved
/// to its victim's night. Only the attack records are returned: merge them into a benign
/// scenario of the same seed for a labelled stream (or set [`SimConfig::stealth`]).
pub fn stealth_attacks(
    cfg: &SimConfig,
    count: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Scenario {
    let mut sink = Sink::new(from, to);
    let stories = weave(&mut sink, cfg.seed, count, from, to);
    let (times, records) = sink.finish();
    Scenario {
        records,
        times,
        stories,
    }
}

/// Writes the stories into `sink`.
pub(crate) fn weave(
    sink: &mut Sink,
    seed: u64,
    count: usize,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Vec<Story> {
    let mut rng = Rng::derive(seed, "stealth");
    let engineers: Vec<&org::Person> = org::PEOPLE
        .iter()
        .filter(|p| {
            p.aws
                .as_ref()
                .is_some_and(|h| h.sso.iter().any(|s| s.1.can_write()))
        })
        .collect();
    let gcp_people: Vec<&org::Person> = org::PEOPLE.iter().filter(|p| p.gcp).collect();
    let slot = (to - from) / count.max(1) as i32;
    let mut stories = Vec::with_capacity(count);
    for i in 0..count {
        // The victim's night nearest to the middle of the story's slot, within half a day.
        let mid = from + slot * i as i32 + slot / 2;
        let lo = (mid - Duration::hours(12)).max(from);
        let hi = (mid + Duration::hours(12)).min(to - Duration::hours(1));
        let net = HOSTING[i % HOSTING.len()];
        let ip = format!("{net}.{}.{}", rng.below(256), 1 + rng.below(254));
        let story = match i % 4 {
            0 => {
                let p = engineers[rng.below(engineers.len())];
                let t0 = night(mid, lo, hi, p.tz_min, 0.5, 5.0);
                sso_session(sink, &mut rng, p, &ip, t0, i)
            }
            1 => {
                let p = org::person("Dmitri");
                let t0 = night(mid, lo, hi, p.tz_min, 0.5, 5.0);
                iam_user_key(sink, &mut rng, p, &ip, t0, i)
            }
            2 => {
                // Machines have no night; the intruder's clock is what it is.
                let t0 = night(mid, lo, hi, 0, 1.0, 5.0);
                instance_credentials(sink, &mut rng, &ip, t0, i)
            }
            _ => {
                let p = gcp_people[rng.below(gcp_people.len())];
                let t0 = night(mid, lo, hi, p.tz_min, 0.5, 5.0);
                gcloud(sink, &mut rng, p, &ip, t0, i)
            }
        };
        stories.push(story);
    }
    stories
}

/// The credentials of `identity`, used from `ip`.
fn from_outside(identity: Value, account: &'static str, ip: &str) -> Who {
    Who {
        identity: identity.into(),
        account,
        ip: ip.to_string(),
        ua: String::new(),
        console: false,
        vpce: None,
    }
}

/// An AWS story: a few ordinary reads in random order, then the write, all through `who`.
/// `what` says whose credentials these are; `kind` ends the story's name.
#[allow(clippy::too_many_arguments)]
fn aws_story(
    sink: &mut Sink,
    rng: &mut Rng,
    who: &Who,
    region: &'static str,
    t0: DateTime<Utc>,
    i: usize,
    kind: &str,
    what: &str,
    techniques: &[&str],
) -> Story {
    let mut tape = Tape::new();
    let who = who.with_ua(*rng.pick(AWS_TOOLS));
    let mut reads = aws_reads();
    let n = 3 + rng.below(6);
    let mut t = t0;
    for k in 0..n {
        let j = k + rng.below(reads.len() - k);
        reads.swap(k, j);
        let (svc, name, req) = reads[k].clone();
        let c = Call::new(svc, name, region, true).req(req);
        tape.ct(sink, rng, t, &who, c);
        t += secs(2.0 + rng.exp(20.0));
    }
    t += secs(30.0 + rng.exp(120.0));
    let (svc, name, req) = aws_write(rng, who.account);
    let c = Call::new(svc, &name, region, false).req(req);
    tape.ct(sink, rng, t, &who, c);
    let text = summary(what, &who.ip, &tape);
    tape.story(
        &format!("stealth-{i:02}-{kind}"),
        &text,
        "aws",
        who.arn(),
        techniques,
    )
}

fn summary(what: &str, ip: &str, tape: &Tape) -> String {
    format!(
        "{what} used from {ip} (a hosting network) at {:02}:{:02} UTC: {} ordinary reads, then one sensitive write.",
        tape.first.map_or(0, |t| t.hour()),
        tape.first.map_or(0, |t| t.minute()),
        tape.ids.len().saturating_sub(1)
    )
}

fn sso_session(
    sink: &mut Sink,
    rng: &mut Rng,
    p: &org::Person,
    ip: &str,
    t0: DateTime<Utc>,
    i: usize,
) -> Story {
    let h = p.aws.as_ref().expect("an engineer with AWS access");
    let writable: Vec<_> = h.sso.iter().filter(|s| s.1.can_write()).collect();
    let (account, set, _) = **rng.pick(&writable);
    let since = t0 - secs(600.0 + rng.exp(3600.0));
    let key = temp_key(&format!("stealth/{i}/{}", p.handle()));
    let who = from_outside(
        ct::sso_session(account, set, &p.email(), &key, since),
        account,
        ip,
    );
    let region = *rng.weighted(h.regions);
    let what = format!("{}'s stolen Identity Center session", p.display_name());
    // A stolen session token is alternate authentication material, whatever it may do.
    let techniques = ["T1078.004", "T1550.001"];
    aws_story(
        sink,
        rng,
        &who,
        region,
        t0,
        i,
        "aws-sso",
        &what,
        &techniques,
    )
}

fn iam_user_key(
    sink: &mut Sink,
    rng: &mut Rng,
    p: &org::Person,
    ip: &str,
    t0: DateTime<Utc>,
    i: usize,
) -> Story {
    let h = p.aws.as_ref().expect("an engineer with AWS access");
    let account = h.iam_user.expect("a legacy IAM user");
    let who = from_outside(ct::iam_user(account, &p.handle()), account, ip);
    let region = *rng.weighted(h.regions);
    let what = format!("{}'s leaked long-lived access key", p.display_name());
    aws_story(
        sink,
        rng,
        &who,
        region,
        t0,
        i,
        "aws-iam-key",
        &what,
        &["T1078.004"],
    )
}

fn instance_credentials(
    sink: &mut Sink,
    rng: &mut Rng,
    ip: &str,
    t0: DateTime<Utc>,
    i: usize,
) -> Story {
    let instance = *rng.pick(&[org::APP_SERVERS[0], org::APP_SERVERS[1], org::BATCH_WORKER]);
    let mut who = crate::aws::instance_who(instance, t0);
    who.ip = ip.to_string();
    let what = format!("Instance-profile credentials of {instance}");
    let techniques = ["T1078.004", "T1552.005"];
    aws_story(
        sink,
        rng,
        &who,
        "eu-west-1",
        t0,
        i,
        "aws-instance-role",
        &what,
        &techniques,
    )
}

fn gcloud(
    sink: &mut Sink,
    rng: &mut Rng,
    p: &org::Person,
    ip: &str,
    t0: DateTime<Utc>,
    i: usize,
) -> Story {
    let email = p.email();
    let project = org::GCP_DATA;
    let mut tape = Tape::new();
    let mut reads: Vec<_> = GCP_READS.to_vec();
    let n = 3 + rng.below(reads.len() - 2);
    let mut t = t0;
    for k in 0..n {
        let j = k + rng.below(reads.len() - k);
        reads.swap(k, j);
        let (service, method, permission, command) = reads[k];
        let mut e = Entry::new(
            t,
            project,
            &email,
            ip,
            &gcp::gcloud_ua(command),
            service,
            method,
        );
        e.permission = permission;
        let id = gcp::entry(sink, rng, e);
        tape.note(t, id);
        t += secs(3.0 + rng.exp(25.0));
    }
    t += secs(30.0 + rng.exp(120.0));
    let mut e = if rng.chance(0.5) {
        let sa = gcp::sa("etl-runner", project);
        let mut e = Entry::new(
            t,
            project,
            &email,
            ip,
            &gcp::gcloud_ua("iam.service-accounts.keys.create"),
            "iam.googleapis.com",
            "google.iam.admin.v1.CreateServiceAccountKey",
        );
        e.resource_name = format!("projects/-/serviceAccounts/{sa}");
        e.resource_type = "service_account";
        e.labels = json!({"project_id": project, "email_id": sa, "unique_id": ""});
        e.permission = "iam.serviceAccountKeys.create";
        e
    } else {
        let mut e = Entry::new(
            t,
            project,
            &email,
            ip,
            &gcp::gcloud_ua("projects.add-iam-policy-binding"),
            "cloudresourcemanager.googleapis.com",
            "SetIamPolicy",
        );
        e.permission = "resourcemanager.projects.setIamPolicy";
        e.service_data = json!({"@type": "type.googleapis.com/google.iam.v1.logging.AuditData",
            "policyDelta": {"bindingDeltas": [{"action": "ADD", "role": "roles/editor", "member": format!("user:{email}")}]}});
        e
    };
    e.log = "activity";
    let id = gcp::entry(sink, rng, e);
    tape.note(t, id);
    let text = summary(
        &format!("{}'s stolen gcloud credentials", p.display_name()),
        ip,
        &tape,
    );
    tape.story(
        &format!("stealth-{i:02}-gcp-user"),
        &text,
        "gcp",
        email,
        &["T1078.004"],
    )
}
