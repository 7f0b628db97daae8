//! `cloudsentinel generate`: a synthetic but realistically shaped CloudTrail corpus for
//! benchmarks: S3 delivery files (`AWSLogs/<account>/CloudTrail/<region>/YYYY/MM/DD/*.json[.gz]`,
//! 5,000 records each by default) and/or one JSON Lines file.
//!
//! The mix follows what a small organisation's trail looks like: mostly read-only calls by
//! engineers, CI roles, instance profiles and AWS services, some writes, failed calls, console
//! sign-ins, and a thin sprinkle (about 0.1%) of attacker behaviour.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use chrono::{DateTime, Duration, TimeZone, Utc};
use clap::{Args, ValueEnum};
use serde_json::{Value, json};

use super::EXIT_OK;

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Layout {
    /// S3 delivery files under AWSLogs/...
    S3,
    /// One JSON Lines file, events.jsonl
    Jsonl,
    /// Both.
    Both,
}

#[derive(Args)]
pub struct GenerateArgs {
    /// Where to write.
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Number of events.
    #[arg(long, default_value_t = 500_000)]
    pub events: usize,
    #[arg(long, value_enum, default_value = "both")]
    pub layout: Layout,
    /// Records per S3 delivery file.
    #[arg(long, default_value_t = 5000)]
    pub per_file: usize,
    /// Gzip the S3 files (as CloudTrail does).
    #[arg(long)]
    pub gzip: bool,
    /// Random seed: the same seed gives the same corpus.
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Whose logs: AWS CloudTrail, Azure (Activity Log and Entra ID sign-in/audit, diagnostic
    /// settings shape) or GCP Cloud Audit Logs.
    #[arg(long, value_enum, default_value = "aws")]
    pub provider: super::hunt::FormatHint,
    /// Instead of a benchmark corpus, write this many days of the demo organisation (all three
    /// clouds, attack stories woven in) to scenario.jsonl, and the stories to stories.jsonl.
    #[arg(long, value_name = "DAYS")]
    pub scenario: Option<u32>,
    /// (--scenario) Also weave in this many behaviour-only attacks (stolen credentials used at
    /// night from a hosting network) in the last two days.
    #[arg(long, value_name = "N", default_value_t = 0, requires = "scenario")]
    pub stealth: usize,
    /// (--scenario) Write history.jsonl (all but the last DAYS) and recent.jsonl (the last DAYS)
    /// instead of scenario.jsonl, for `hunt --baseline history.jsonl recent.jsonl`.
    #[arg(long, value_name = "DAYS", requires = "scenario")]
    pub split: Option<u32>,
}

/// `--scenario`: the demo organisation's days, ending at a fixed Thursday noon so that the same
/// seed gives the same files.
fn scenario(args: &GenerateArgs, days: u32) -> anyhow::Result<ExitCode> {
    let end = Utc
        .with_ymd_and_hms(2025, 3, 13, 12, 0, 0)
        .single()
        .expect("valid date");
    let days = days.max(1);
    if args.split.is_some_and(|k| k == 0 || k >= days) {
        anyhow::bail!("--split must be at least 1 and less than --scenario");
    }
    let cfg = cloudsentinel_sim::SimConfig {
        seed: args.seed,
        end,
        days,
        scale: 1.0,
        stealth: args.stealth,
    };
    let sc = cloudsentinel_sim::generate(&cfg);
    let write = |name: &str, lines: &mut dyn Iterator<Item = &String>| -> anyhow::Result<usize> {
        let path = args.out.join(name);
        let mut w = std::io::BufWriter::new(
            std::fs::File::create(&path)
                .with_context(|| format!("cannot create {}", path.display()))?,
        );
        let mut n = 0;
        for l in lines {
            w.write_all(l.as_bytes())?;
            w.write_all(b"\n")?;
            n += 1;
        }
        w.flush()?;
        Ok(n)
    };
    match args.split {
        None => {
            let n = write("scenario.jsonl", &mut sc.records.iter())?;
            eprintln!(
                "wrote {n} records to {}",
                args.out.join("scenario.jsonl").display()
            );
        }
        Some(k) => {
            let cut = end - Duration::days(i64::from(k));
            let cut_text = cut.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
            // Records are in time order: find the first at or after the cut.
            let at = sc.times.partition_point(|t| *t < cut);
            let h = write("history.jsonl", &mut sc.records[..at].iter())?;
            let r = write("recent.jsonl", &mut sc.records[at..].iter())?;
            eprintln!(
                "wrote {h} records before {cut_text} to history.jsonl and {r} after to recent.jsonl"
            );
        }
    }
    let stories: Vec<String> = sc.stories.iter().map(|s| s.to_json().to_string()).collect();
    write("stories.jsonl", &mut stories.iter())?;
    Ok(EXIT_OK)
}

use cloudsentinel_core::rng::Rng;

const ACCOUNTS: [&str; 3] = ["111122223333", "444455556666", "777788889999"];
const REGIONS: [&str; 4] = ["us-east-1", "us-east-1", "eu-west-1", "us-west-2"];
const USERS: [&str; 6] = ["alice", "bob", "carol", "dave", "erin", "frank"];
const ROLES: [(&str, &str); 4] = [
    ("github-actions-deploy", "GitHubActions"),
    ("ec2-app-server", "i-0a1b2c3d4e5f60718"),
    ("lambda-orders-exec", "orders-handler"),
    (
        "AWSReservedSSO_AdministratorAccess_1a2b3c4d5e6f7a8b",
        "alice@example.com",
    ),
];
const UAS: [&str; 6] = [
    "aws-cli/2.15.30 Python/3.11.8 Linux/6.5.0-1016-aws exe/x86_64.ubuntu.22 prompt/off command/ec2.describe-instances",
    "Boto3/1.34.69 md/Botocore#1.34.69 ua/2.0 os/linux#6.1.0 md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython cfg/retry-mode#legacy Botocore/1.34.69",
    "aws-sdk-go-v2/1.26.1 os/linux lang/go#1.22.1 md/GOOS#linux md/GOARCH#amd64 api/ec2#1.152.0",
    "Terraform/1.7.5 (+https://www.terraform.io) terraform-provider-aws/5.42.0 (+https://registry.terraform.io/providers/hashicorp/aws) aws-sdk-go-v2/1.26.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/123.0.0.0 Safari/537.36",
    "aws-sdk-java/2.25.16 Linux/5.10.213-201.855.amzn2.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. md/internal exec-env/AWS_Lambda_java17",
];

/// (service, operation, read-only, weight)
const OPS: [(&str, &str, bool, u32); 24] = [
    ("ec2", "DescribeInstances", true, 120),
    ("ec2", "DescribeSecurityGroups", true, 40),
    ("ec2", "DescribeVolumes", true, 30),
    ("s3", "ListBuckets", true, 25),
    ("s3", "GetBucketAcl", true, 30),
    ("s3", "GetBucketPolicy", true, 20),
    ("sts", "AssumeRole", true, 80),
    ("sts", "GetCallerIdentity", true, 50),
    ("iam", "GetRole", true, 30),
    ("iam", "ListRoles", true, 15),
    ("iam", "ListAttachedRolePolicies", true, 15),
    ("kms", "Decrypt", true, 120),
    ("kms", "GenerateDataKey", true, 60),
    ("lambda", "GetFunction", true, 20),
    ("logs", "CreateLogStream", false, 40),
    ("logs", "DescribeLogGroups", true, 25),
    ("monitoring", "PutMetricData", false, 30),
    ("monitoring", "DescribeAlarms", true, 20),
    ("ssm", "GetParameter", true, 50),
    ("secretsmanager", "GetSecretValue", true, 15),
    ("ec2", "RunInstances", false, 3),
    ("ec2", "CreateTags", false, 10),
    ("lambda", "UpdateFunctionCode20150331v2", false, 4),
    ("signin", "ConsoleLogin", false, 5),
];

/// Attacker behaviour sprinkled in: (service, operation, request parameters).
fn attack(rng: &mut Rng) -> (&'static str, &'static str, Value) {
    match rng.below(6) {
        0 => (
            "cloudtrail",
            "StopLogging",
            json!({"name": "arn:aws:cloudtrail:us-east-1:111122223333:trail/org-trail"}),
        ),
        1 => (
            "iam",
            "CreateAccessKey",
            json!({"userName": *rng.pick(&USERS)}),
        ),
        2 => (
            "iam",
            "AttachUserPolicy",
            json!({"userName": *rng.pick(&USERS), "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}),
        ),
        3 => (
            "guardduty",
            "DeleteDetector",
            json!({"detectorId": rng.hex(32)}),
        ),
        4 => (
            "ec2",
            "ModifySnapshotAttribute",
            json!({"snapshotId": format!("snap-{}", rng.hex(17)), "attributeType": "CREATE_VOLUME_PERMISSION", "createVolumePermission": {"add": {"items": [{"group": "all"}]}}}),
        ),
        _ => (
            "ec2",
            "GetPasswordData",
            json!({"instanceId": format!("i-{}", rng.hex(17))}),
        ),
    }
}

fn request_parameters(rng: &mut Rng, service: &str, op: &str) -> Value {
    match (service, op) {
        ("ec2", "DescribeInstances") => {
            json!({"instancesSet": {"items": [{"instanceId": format!("i-{}", rng.hex(17))}]}, "filterSet": {}})
        }
        ("ec2", "RunInstances") => {
            json!({"instancesSet": {"items": [{"imageId": format!("ami-{}", rng.hex(17)), "minCount": 1, "maxCount": 1}]}, "instanceType": *rng.pick(&["t3.micro", "m5.large", "c6i.xlarge"]), "blockDeviceMapping": {}, "monitoring": {"enabled": false}, "disableApiTermination": false, "clientToken": rng.uuid()})
        }
        ("s3", op) if op != "ListBuckets" => {
            json!({"bucketName": format!("app-data-{}", rng.hex(6)), "Host": "s3.amazonaws.com", op.to_lowercase(): ""})
        }
        ("sts", "AssumeRole") => {
            json!({"roleArn": format!("arn:aws:iam::{}:role/{}", rng.pick(&ACCOUNTS), rng.pick(&ROLES).0), "roleSessionName": format!("session-{}", rng.hex(8)), "durationSeconds": 3600})
        }
        ("kms", _) => {
            json!({"encryptionContext": {"aws:lambda:FunctionArn": "arn:aws:lambda:us-east-1:111122223333:function:orders-handler"}, "encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": format!("arn:aws:kms:us-east-1:111122223333:key/{}", rng.uuid())})
        }
        ("ssm", _) => {
            json!({"name": format!("/prod/app/{}", rng.pick(&["db_host", "feature_flags", "api_url"])), "withDecryption": false})
        }
        ("secretsmanager", _) => {
            json!({"secretId": format!("prod/app/{}", rng.pick(&["db", "stripe", "sendgrid"]))})
        }
        ("iam", "GetRole") => json!({"roleName": rng.pick(&ROLES).0}),
        ("logs", _) => {
            json!({"logGroupName": "/aws/lambda/orders-handler", "logStreamName": format!("2024/07/30/[$LATEST]{}", rng.hex(32))})
        }
        _ => Value::Null,
    }
}

/// A stable access key id for a principal: users keep their key, role sessions rotate among a few.
fn access_key(prefix: &str, name: &str, variant: usize) -> String {
    use cloudsentinel_core::hash::{fnv1a, fnv1a_extend};
    let h = fnv1a_extend(fnv1a(name.as_bytes()), &[variant as u8]);
    format!("{prefix}{h:016X}")
}

fn identity(rng: &mut Rng, account: &str) -> (Value, Option<bool>) {
    match rng.below(10) {
        0..=2 => {
            let u = rng.pick(&USERS);
            (
                json!({"type": "IAMUser", "principalId": access_key("AIDA", u, 1), "arn": format!("arn:aws:iam::{account}:user/{u}"), "accountId": account, "accessKeyId": access_key("AKIA", u, 0), "userName": u}),
                None,
            )
        }
        3..=8 => {
            let (role, session) = rng.pick(&ROLES);
            let mfa = role.starts_with("AWSReserved");
            (
                json!({"type": "AssumedRole", "principalId": format!("AROA{}:{session}", rng.hex(16).to_uppercase()), "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"), "accountId": account, "accessKeyId": access_key("ASIA", role, rng.below(4)),
                    "sessionContext": {"sessionIssuer": {"type": "Role", "principalId": format!("AROA{}", rng.hex(16).to_uppercase()), "arn": format!("arn:aws:iam::{account}:role/{role}"), "accountId": account, "userName": role},
                        "webIdFederationData": {}, "attributes": {"creationDate": "2024-07-30T20:01:12Z", "mfaAuthenticated": if mfa { "true" } else { "false" }}}}),
                Some(mfa),
            )
        }
        _ => (
            json!({"type": "AWSService", "invokedBy": format!("{}.amazonaws.com", rng.pick(&["lambda", "ec2", "cloudformation", "autoscaling"]))}),
            None,
        ),
    }
}

/// One realistic record at time `t`.
pub fn record(rng: &mut Rng, t: DateTime<Utc>) -> Value {
    let account = *rng.pick(&ACCOUNTS);
    let region = *rng.pick(&REGIONS);
    let (ui, _) = identity(rng, account);
    let is_attack = rng.chance(0.001);
    let (service, op, read_only, params) = if is_attack {
        let (s, o, p) = attack(rng);
        (s, o, false, p)
    } else {
        let total: u32 = OPS.iter().map(|o| o.3).sum();
        let mut x = (rng.next_u64() % u64::from(total)) as u32;
        let mut chosen = OPS[0];
        for o in OPS {
            if x < o.3 {
                chosen = o;
                break;
            }
            x -= o.3;
        }
        (
            chosen.0,
            chosen.1,
            chosen.2,
            request_parameters(rng, chosen.0, chosen.1),
        )
    };
    let source_ip = if ui["type"] == "AWSService" {
        ui["invokedBy"].clone()
    } else {
        json!(format!(
            "{}.{}.{}.{}",
            rng.pick(&[54, 3, 18, 203, 198]),
            rng.below(256),
            rng.below(256),
            1 + rng.below(254)
        ))
    };
    let failed = rng.chance(0.02);
    let mut r = json!({
        "eventVersion": "1.09",
        "userIdentity": ui,
        "eventTime": t.format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        "eventSource": format!("{service}.amazonaws.com"),
        "eventName": op,
        "awsRegion": region,
        "sourceIPAddress": source_ip,
        "userAgent": rng.pick(&UAS),
        "requestParameters": params,
        "responseElements": Value::Null,
        "requestID": rng.uuid(),
        "eventID": rng.uuid(),
        "readOnly": read_only,
        "eventType": "AwsApiCall",
        "managementEvent": true,
        "recipientAccountId": account,
        "eventCategory": "Management",
        "tlsDetails": {"tlsVersion": "TLSv1.3", "cipherSuite": "TLS_AES_128_GCM_SHA256", "clientProvidedHostHeader": format!("{service}.{region}.amazonaws.com")}
    });
    if op == "ConsoleLogin" {
        r["eventType"] = json!("AwsConsoleSignIn");
        r["responseElements"] = json!({"ConsoleLogin": if failed { "Failure" } else { "Success" }});
        r["additionalEventData"] = json!({"LoginTo": "https://console.aws.amazon.com/console/home", "MobileVersion": "No", "MFAUsed": if rng.chance(0.9) { "Yes" } else { "No" }});
    } else if failed {
        r["errorCode"] = json!("AccessDenied");
        r["errorMessage"] = json!(format!("User is not authorized to perform: {service}:{op}"));
    } else if op == "GetCallerIdentity" {
        r["responseElements"] = json!({"userId": "AROAEXAMPLE", "account": account, "arn": r["userIdentity"]["arn"].clone()});
    }
    r
}

pub fn run(args: GenerateArgs) -> anyhow::Result<ExitCode> {
    std::fs::create_dir_all(&args.out)
        .with_context(|| format!("cannot create {}", args.out.display()))?;
    if let Some(days) = args.scenario {
        return scenario(&args, days);
    }
    let mut rng = Rng::new(args.seed);
    let start = Utc
        .with_ymd_and_hms(2024, 7, 1, 0, 0, 0)
        .single()
        .expect("valid date");
    // Spread the events over a week, in time order.
    let step_ms = (7 * 24 * 3600 * 1000) / args.events.max(1) as i64;
    let mut jsonl = match args.layout {
        Layout::Jsonl | Layout::Both => Some(std::io::BufWriter::new(
            std::fs::File::create(args.out.join("events.jsonl"))
                .context("cannot create events.jsonl")?,
        )),
        Layout::S3 => None,
    };
    let s3 = matches!(args.layout, Layout::S3 | Layout::Both);
    let mut batch: Vec<Value> = Vec::with_capacity(args.per_file);
    let mut files = 0usize;
    let mut bytes = 0usize;
    for i in 0..args.events {
        let t = start + Duration::milliseconds(step_ms * i as i64);
        let r = match args.provider {
            super::hunt::FormatHint::Aws => record(&mut rng, t),
            super::hunt::FormatHint::Azure => super::generate_cloud::azure_record(&mut rng, t),
            super::hunt::FormatHint::Gcp => super::generate_cloud::gcp_record(&mut rng, t),
        };
        if let Some(w) = jsonl.as_mut() {
            let line = serde_json::to_vec(&r)?;
            bytes += line.len() + 1;
            w.write_all(&line)?;
            w.write_all(b"\n")?;
        }
        if s3 {
            batch.push(r);
            if batch.len() == args.per_file || i + 1 == args.events {
                match args.provider {
                    super::hunt::FormatHint::Aws => write_s3_file(&args, &batch, t, files)?,
                    p => super::generate_cloud::write_lines_file(
                        &args.out,
                        matches!(p, super::hunt::FormatHint::Azure),
                        &batch,
                        t,
                        files,
                    )?,
                }
                files += 1;
                batch.clear();
            }
        }
    }
    if let Some(mut w) = jsonl {
        w.flush()?;
    }
    eprintln!(
        "wrote {} events{}{} to {}",
        args.events,
        if s3 {
            format!(", {files} S3 delivery files")
        } else {
            String::new()
        },
        if bytes > 0 {
            format!(
                ", events.jsonl ({} bytes, {} bytes/event)",
                bytes,
                bytes / args.events.max(1)
            )
        } else {
            String::new()
        },
        args.out.display()
    );
    Ok(EXIT_OK)
}

fn write_s3_file(
    args: &GenerateArgs,
    batch: &[Value],
    t: DateTime<Utc>,
    n: usize,
) -> anyhow::Result<()> {
    let account = ACCOUNTS[0];
    let region = "us-east-1";
    let dir = args.out.join(format!(
        "AWSLogs/{account}/CloudTrail/{region}/{}",
        t.format("%Y/%m/%d")
    ));
    std::fs::create_dir_all(&dir)?;
    let name = format!(
        "{account}_CloudTrail_{region}_{}_{n:06}.json",
        t.format("%Y%m%dT%H%MZ")
    );
    let doc = serde_json::to_vec(&json!({ "Records": batch }))?;
    if args.gzip {
        let f = std::fs::File::create(dir.join(format!("{name}.gz")))?;
        let mut gz =
            flate2::write::GzEncoder::new(std::io::BufWriter::new(f), flate2::Compression::fast());
        gz.write_all(&doc)?;
        gz.finish()?.flush()?;
    } else {
        std::fs::write(dir.join(name), doc)?;
    }
    Ok(())
}
