//! The benign AWS activity: engineers (console, CLI, scripts), CI pipelines, EC2 instances, Lambda
//! functions, ECS tasks and the AWS services that act on their behalf.

use chrono::{DateTime, Duration, Timelike, Utc};
use serde_json::{Value, json};

use crate::cloudtrail::{
    self as ct, Call, SessionKind, Who, aws_service, benign_error, denied, emit, kebab, kms_key,
    on_behalf, params, role_arn, role_principal, role_session, temp_key,
};
use crate::org::{self, AwsHabits, DEV, Os, PROD, PermissionSet, Person, SEC, Team};
use crate::rng::{Rng, stable_hex};
use crate::{Ctx, Sink, local_days, secs};

/// One API an engineer uses, with how often.
#[derive(Clone, Copy, Debug)]
struct Op {
    svc: &'static str,
    name: &'static str,
    ro: bool,
    w: u32,
}

const fn r(svc: &'static str, name: &'static str, w: u32) -> Op {
    Op {
        svc,
        name,
        ro: true,
        w,
    }
}
const fn w(svc: &'static str, name: &'static str, w: u32) -> Op {
    Op {
        svc,
        name,
        ro: false,
        w,
    }
}

const PLATFORM: &[Op] = &[
    r("ec2", "DescribeInstances", 10),
    r("ec2", "DescribeSecurityGroups", 5),
    r("ec2", "DescribeVpcs", 3),
    r("ec2", "DescribeSubnets", 3),
    r("ec2", "DescribeLaunchTemplates", 2),
    r("ec2", "DescribeImages", 2),
    r("ecs", "ListServices", 4),
    r("ecs", "DescribeServices", 6),
    r("ecs", "DescribeTasks", 3),
    r("ecs", "DescribeTaskDefinition", 3),
    r("ecr", "DescribeRepositories", 2),
    r("ecr", "DescribeImages", 3),
    r("iam", "GetRole", 4),
    r("iam", "ListAttachedRolePolicies", 3),
    r("iam", "GetPolicyVersion", 2),
    r("sts", "GetCallerIdentity", 4),
    r("elasticloadbalancing", "DescribeTargetHealth", 3),
    r("elasticloadbalancing", "DescribeLoadBalancers", 2),
    r("cloudformation", "DescribeStacks", 3),
    r("cloudformation", "DescribeStackEvents", 2),
    r("s3", "ListBuckets", 2),
    r("s3", "GetBucketPolicy", 1),
    r("logs", "FilterLogEvents", 3),
    w("ecs", "UpdateService", 1),
    w("ec2", "CreateTags", 1),
];

const BACKEND: &[Op] = &[
    r("lambda", "ListFunctions20150331", 3),
    r("lambda", "GetFunction20150331v2", 5),
    r("lambda", "GetFunctionConfiguration20150331v2", 3),
    r("lambda", "ListEventSourceMappings20150331", 2),
    r("logs", "FilterLogEvents", 8),
    r("logs", "GetLogEvents", 5),
    r("logs", "DescribeLogStreams", 4),
    r("logs", "StartQuery", 3),
    r("logs", "GetQueryResults", 5),
    r("dynamodb", "DescribeTable", 4),
    r("dynamodb", "ListTables", 2),
    r("sqs", "GetQueueAttributes", 4),
    r("sqs", "ListQueues", 2),
    r("sns", "ListTopics", 1),
    r("ssm", "GetParameter", 3),
    r("secretsmanager", "DescribeSecret", 1),
    r("apigateway", "GetRestApis", 1),
    r("apigateway", "GetStages", 1),
    r("sts", "GetCallerIdentity", 3),
    w("lambda", "UpdateFunctionConfiguration20150331v2", 1),
    w("ssm", "PutParameter", 1),
];

const DATA: &[Op] = &[
    w("athena", "StartQueryExecution", 6),
    r("athena", "GetQueryExecution", 12),
    r("athena", "GetQueryResults", 6),
    r("athena", "ListWorkGroups", 1),
    r("glue", "GetTables", 3),
    r("glue", "GetTable", 4),
    r("glue", "GetDatabases", 2),
    r("glue", "GetPartitions", 2),
    w("glue", "StartCrawler", 1),
    r("s3", "ListBuckets", 1),
    r("s3", "GetBucketLocation", 3),
    r("sts", "GetCallerIdentity", 1),
];

const SRE: &[Op] = &[
    r("monitoring", "DescribeAlarms", 8),
    r("monitoring", "DescribeAlarmHistory", 3),
    r("monitoring", "GetDashboard", 2),
    r("monitoring", "ListDashboards", 1),
    r("logs", "FilterLogEvents", 6),
    r("logs", "StartQuery", 3),
    r("logs", "GetQueryResults", 5),
    r("ec2", "DescribeInstances", 6),
    r("ec2", "DescribeInstanceStatus", 3),
    r("ec2", "DescribeVolumes", 2),
    r("elasticloadbalancing", "DescribeTargetHealth", 4),
    r("elasticloadbalancing", "DescribeLoadBalancers", 2),
    r("autoscaling", "DescribeAutoScalingGroups", 3),
    r("autoscaling", "DescribeScalingActivities", 2),
    r("rds", "DescribeDBInstances", 4),
    r("rds", "DescribeEvents", 2),
    r("route53", "ListHostedZones", 1),
    r("route53", "ListResourceRecordSets", 2),
    r("ecs", "DescribeServices", 4),
    r("ssm", "DescribeInstanceInformation", 2),
    r("sts", "GetCallerIdentity", 2),
    w("ssm", "StartSession", 1),
    w("monitoring", "PutMetricAlarm", 1),
    w("ecs", "UpdateService", 1),
    w("autoscaling", "SetDesiredCapacity", 1),
];

const SECURITY: &[Op] = &[
    r("guardduty", "ListDetectors", 2),
    r("guardduty", "ListFindings", 6),
    r("guardduty", "GetFindings", 6),
    r("guardduty", "GetFindingsStatistics", 2),
    r("securityhub", "GetFindings", 6),
    r("securityhub", "GetEnabledStandards", 1),
    r("securityhub", "DescribeHub", 1),
    r("cloudtrail", "LookupEvents", 6),
    r("cloudtrail", "DescribeTrails", 2),
    r("cloudtrail", "GetTrailStatus", 2),
    r("cloudtrail", "GetEventSelectors", 1),
    r("iam", "ListUsers", 2),
    r("iam", "ListAccessKeys", 2),
    r("iam", "GetAccessKeyLastUsed", 2),
    r("iam", "GetCredentialReport", 1),
    r("access-analyzer", "ListFindings", 2),
    r("access-analyzer", "ListAnalyzers", 1),
    r("config", "DescribeComplianceByConfigRule", 2),
    w("athena", "StartQueryExecution", 3),
    r("athena", "GetQueryExecution", 6),
    r("athena", "GetQueryResults", 3),
    r("kms", "DescribeKey", 1),
    r("s3", "GetBucketPolicy", 2),
    r("s3", "GetBucketAcl", 1),
    r("s3", "GetBucketPublicAccessBlock", 1),
    w("guardduty", "ArchiveFindings", 1),
    w("securityhub", "BatchUpdateFindings", 2),
];

const FRONTEND: &[Op] = &[
    r("s3", "ListBuckets", 2),
    r("s3", "GetBucketPolicy", 1),
    r("s3", "GetBucketCors", 1),
    r("s3", "GetBucketWebsite", 1),
    r("cloudfront", "ListDistributions", 3),
    r("cloudfront", "GetDistribution", 3),
    r("cloudfront", "GetDistributionConfig", 2),
    w("cloudfront", "CreateInvalidation", 2),
    r("lambda", "GetFunction20150331v2", 1),
    r("logs", "FilterLogEvents", 1),
    r("acm", "ListCertificates", 1),
    r("acm", "DescribeCertificate", 1),
];

const ML: &[Op] = &[
    r("sagemaker", "ListNotebookInstances", 2),
    r("sagemaker", "DescribeNotebookInstance", 2),
    r("sagemaker", "ListTrainingJobs", 4),
    r("sagemaker", "DescribeTrainingJob", 6),
    r("sagemaker", "ListEndpoints", 2),
    r("sagemaker", "DescribeEndpoint", 2),
    w("sagemaker", "StartNotebookInstance", 1),
    w("sagemaker", "StopNotebookInstance", 1),
    r("ecr", "DescribeImages", 2),
    r("s3", "ListBuckets", 1),
    r("s3", "GetBucketLocation", 2),
    r("sts", "GetCallerIdentity", 2),
    r("logs", "GetLogEvents", 3),
    r("logs", "DescribeLogStreams", 2),
];

fn team_ops(team: Team) -> &'static [Op] {
    match team {
        Team::Platform => PLATFORM,
        Team::Backend => BACKEND,
        Team::Data => DATA,
        Team::Sre => SRE,
        Team::Security => SECURITY,
        Team::Frontend => FRONTEND,
        Team::Ml => ML,
    }
}

/// The CLI's name for a service (`aws <name> <command>`).
fn cli_service(svc: &str) -> &str {
    match svc {
        "monitoring" => "cloudwatch",
        "elasticloadbalancing" => "elbv2",
        "access-analyzer" => "accessanalyzer",
        "config" => "configservice",
        "s3" => "s3api",
        other => other,
    }
}

/// A person's own habits: their team's APIs, some dropped, the rest re-weighted.
fn personal_ops(team: Team, rng: &mut Rng) -> Vec<Op> {
    let mut ops: Vec<Op> = Vec::new();
    for o in team_ops(team) {
        if o.w >= 5 || rng.chance(0.75) {
            let w = ((f64::from(o.w) * (0.5 + 1.5 * rng.unit())).round() as u32).max(1);
            ops.push(Op { w, ..*o });
        }
    }
    if ops.is_empty() {
        ops.push(team_ops(team)[0]);
    }
    ops
}

fn weighted_op(rng: &mut Rng, ops: &[Op]) -> Op {
    let total: u32 = ops.iter().map(|o| o.w).sum();
    let mut x = rng.below(total.max(1) as usize) as u32;
    for o in ops {
        if x < o.w {
            return *o;
        }
        x -= o.w;
    }
    ops[ops.len() - 1]
}

pub(crate) fn benign(sink: &mut Sink, ctx: &Ctx) {
    for p in org::PEOPLE {
        if let Some(h) = &p.aws {
            engineer(sink, ctx, p, h);
        }
    }
    pipelines(sink, ctx);
    instances(sink, ctx);
    lambdas(sink, ctx);
    ecs_tasks(sink, ctx);
    config_recorder(sink, ctx);
    inventory(sink, ctx);
    trail_delivery(sink, ctx);
}

/// The address a person works from on a given day and hour.
pub(crate) struct DayPlace {
    pub office: bool,
    pub home_after: f64,
}

impl DayPlace {
    pub fn ip(&self, p: &Person, local_hour: f64) -> &'static str {
        match p.office_ip {
            Some(ip) if self.office && local_hour < self.home_after => ip,
            _ => p.home_ip,
        }
    }
}

/// Where a person is on a local day: office or home (and home again in the evening).
pub(crate) fn day_place(seed: u64, p: &Person, date: chrono::NaiveDate, weekend: bool) -> DayPlace {
    let mut rng = Rng::derive(seed, &format!("place/{}/{date}", p.handle()));
    let office = !weekend && p.office_ip.is_some() && rng.chance(p.office_days);
    let home_after = if rng.chance(0.3) {
        16.0 + 2.0 * rng.unit()
    } else {
        30.0
    };
    DayPlace { office, home_after }
}

fn engineer(sink: &mut Sink, ctx: &Ctx, p: &Person, h: &AwsHabits) {
    let mut rng = Rng::derive(ctx.seed, &format!("aws/engineer/{}", p.handle()));
    let ops = personal_ops(h.team, &mut rng);
    let email = p.email();
    for day in local_days(ctx.start, ctx.end, p.tz_min) {
        let place = day_place(ctx.seed, p, day.date, day.weekend);
        let (from, to, sessions) = if day.weekend {
            if !rng.chance(p.weekend_p) {
                continue;
            }
            let s = 10.0 + 9.0 * rng.unit();
            (s, s + 1.0, 1)
        } else {
            (
                p.start_h + rng.normal(0.0, 0.3),
                p.end_h + rng.normal(0.0, 0.4),
                rng.poisson(h.sessions_per_day * ctx.scale).max(1),
            )
        };
        let mut console_signed_in: Vec<&'static str> = Vec::new();
        let mut starts: Vec<f64> = (0..sessions)
            .map(|_| from + rng.unit() * (to - from - 0.25).max(0.2))
            .map(|s| {
                if (12.4..13.2).contains(&s) {
                    s + 0.9
                } else {
                    s
                }
            })
            .collect();
        starts.sort_by(f64::total_cmp);
        for sh in starts {
            let t0 = day.at(sh);
            if t0 >= ctx.end {
                continue;
            }
            let minutes = (6.0 + rng.exp(25.0)).min(100.0);
            let region = *rng.weighted(h.regions);
            let ip = place.ip(p, sh).to_string();
            // Which credentials: the legacy IAM user's key, or an Identity Center session.
            let (account, set, iam) = match h.iam_user {
                Some(acct) if rng.chance(h.iam_user_share) => (acct, PermissionSet::Admin, true),
                _ => {
                    let (acct, set, _) = *rng.weighted_triple(h.sso);
                    (acct, set, false)
                }
            };
            let console = rng.chance(h.console_share);
            let since = day.at(from.min(sh));
            let sso_key = temp_key(&format!(
                "sso/{email}/{account}/{}/{}",
                day.date,
                set.role_name()
            ));
            let identity = if iam {
                if console {
                    ct::iam_user_console(
                        account,
                        &p.handle(),
                        &temp_key(&format!("console/{email}/{}", day.date)),
                        since,
                    )
                } else {
                    ct::iam_user(account, &p.handle())
                }
            } else {
                ct::sso_session(account, set, &email, &sso_key, since)
            };
            let who = Who {
                identity: identity.into(),
                account,
                ip,
                ua: String::new(),
                console,
                vpce: None,
            };
            let end = t0 + secs(minutes * 60.0);
            if console {
                if !console_signed_in.contains(&account) {
                    console_signed_in.push(account);
                    console_login(sink, &mut rng, t0 - secs(20.0), &who, p.os, iam);
                }
                console_session(
                    sink, &mut rng, ctx, t0, end, &who, &ops, account, region, set,
                );
            } else {
                cli_session(
                    sink, &mut rng, ctx, t0, end, &who, p.os, h, &ops, account, region, set,
                );
            }
        }
    }
}

/// A console sign-in (and now and then a mistyped password first, for IAM users).
fn console_login(sink: &mut Sink, rng: &mut Rng, t: DateTime<Utc>, who: &Who, os: Os, iam: bool) {
    let mut identity = Value::clone(&who.identity);
    if let Some(o) = identity.as_object_mut() {
        o.remove("accessKeyId");
        if iam {
            o.remove("sessionContext");
        }
    }
    let base = Who {
        identity: identity.into(),
        ua: org::browser_ua(os).to_string(),
        console: false,
        ..who.clone()
    };
    let login_to = "https://console.aws.amazon.com/console/home?hashArgs=%23&isauthcode=true&state=hashArgsFromTB_eu-west-1_";
    if iam && rng.chance(0.08) {
        let mut c = Call::new("signin", "ConsoleLogin", "us-east-1", false)
            .resp(json!({"ConsoleLogin": "Failure"}))
            .err("", "Failed authentication");
        c.event_type = "AwsConsoleSignIn";
        c.additional = Some(
            json!({"LoginTo": format!("{login_to}{}", rng.hex(16)), "MobileVersion": "No", "MFAUsed": "No"}),
        );
        emit(sink, rng, t - secs(25.0), &base, c);
    }
    let mut c = Call::new("signin", "ConsoleLogin", "us-east-1", false)
        .resp(json!({"ConsoleLogin": "Success"}));
    c.event_type = "AwsConsoleSignIn";
    c.additional = Some(
        json!({"LoginTo": format!("{login_to}{}", rng.hex(16)), "MobileVersion": "No", "MFAUsed": "Yes"}),
    );
    emit(sink, rng, t, &base, c);
}

#[allow(clippy::too_many_arguments)]
fn console_session(
    sink: &mut Sink,
    rng: &mut Rng,
    ctx: &Ctx,
    t0: DateTime<Utc>,
    end: DateTime<Utc>,
    who: &Who,
    ops: &[Op],
    account: &'static str,
    region: &'static str,
    set: PermissionSet,
) {
    let mut t = t0;
    while t < end && t < ctx.end {
        // One page: a few calls of one service, within a couple of seconds.
        let first = weighted_op(rng, ops);
        let same: Vec<Op> = ops.iter().copied().filter(|o| o.svc == first.svc).collect();
        let n = 1 + rng.below(4);
        for i in 0..n {
            let op = if i == 0 { first } else { *rng.pick(&same) };
            if !op.ro && (i > 0 || rng.chance(0.6)) {
                continue;
            }
            let ua = if op.svc == "ec2" {
                "console.ec2.amazonaws.com"
            } else if rng.chance(0.6) {
                "console.amazonaws.com"
            } else {
                "AWS Internal"
            };
            let t_call = t + secs(rng.unit() * 2.5);
            call(
                sink,
                rng,
                t_call,
                &who.with_ua(ua),
                op,
                account,
                region,
                set,
            );
        }
        t += secs(8.0 + rng.exp(50.0));
    }
}

#[allow(clippy::too_many_arguments)]
fn cli_session(
    sink: &mut Sink,
    rng: &mut Rng,
    ctx: &Ctx,
    t0: DateTime<Utc>,
    end: DateTime<Utc>,
    who: &Who,
    os: Os,
    h: &AwsHabits,
    ops: &[Op],
    account: &'static str,
    region: &'static str,
    set: PermissionSet,
) {
    // How this session talks to AWS: the CLI, the engineer's Python scripts, or Terraform.
    let tool = match h.team {
        Team::Platform | Team::Sre if account == DEV && rng.chance(0.2) => 2,
        Team::Data | Team::Ml | Team::Backend if rng.chance(0.3) => 1,
        _ => 0,
    };
    let mut t = t0;
    let mut last: Option<Op> = None;
    while t < end && t < ctx.end {
        let op = match last {
            Some(l) if rng.chance(0.35) => l,
            _ => weighted_op(rng, ops),
        };
        let ua = match tool {
            0 => org::aws_cli_ua(os, &format!("{}.{}", cli_service(op.svc), kebab(op.name))),
            1 => org::boto3_ua(os).to_string(),
            _ => org::TERRAFORM_UA.to_string(),
        };
        call(sink, rng, t, &who.with_ua(ua), op, account, region, set);
        // Athena queries are polled.
        if op.name == "StartQueryExecution" {
            for k in 0..(2 + rng.below(4)) {
                let poll = Op {
                    svc: "athena",
                    name: "GetQueryExecution",
                    ro: true,
                    w: 1,
                };
                call(
                    sink,
                    rng,
                    t + secs(2.0 * (k + 1) as f64),
                    who,
                    poll,
                    account,
                    region,
                    set,
                );
            }
            t += secs(12.0);
        }
        last = Some(op);
        t += secs(3.0 + rng.exp(60.0 / h.pace));
    }
}

/// One engineer call, with the occasional denial or benign error.
#[allow(clippy::too_many_arguments)]
fn call(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    who: &Who,
    op: Op,
    account: &'static str,
    region: &'static str,
    set: PermissionSet,
) {
    let (req, resp) = params(rng, t, account, region, op.svc, op.name);
    let mut c = Call::new(op.svc, op.name, region, op.ro)
        .req(req)
        .resp(resp);
    if !op.ro && !set.can_write() {
        let (code, message) = denied(op.svc, op.name, &who.arn(), false);
        c = c.err(&code, message).resp(Value::Null);
    } else if rng.chance(0.015) {
        if let Some((code, message)) = benign_error(op.svc, op.name, &c.req) {
            c = c.err(&code, message).resp(Value::Null);
        }
    } else if rng.chance(0.003) {
        let (code, message) = denied(op.svc, op.name, &who.arn(), false);
        c = c.err(&code, message).resp(Value::Null);
    }
    emit(sink, rng, t, who, c);
}

fn runner_ip(rng: &mut Rng) -> String {
    format!(
        "{}.{}.{}",
        rng.pick(org::RUNNER_PREFIXES),
        rng.below(256),
        1 + rng.below(254)
    )
}

const RUNNER_OS: &str =
    "os/linux#6.5.0-1022-azure md/arch#x86_64 lang/python#3.11.8 md/pyimpl#CPython";

fn runner_cli(command: &str) -> String {
    format!(
        "aws-cli/2.15.40 md/awscrt#0.19.19 ua/2.0 {RUNNER_OS} cfg/retry-mode#standard md/installer#exe md/distrib#ubuntu.22 md/prompt#off md/command#{command}"
    )
}

/// A GitHub Actions job's credentials: AssumeRoleWithWebIdentity, then the session.
fn github_session(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    account: &'static str,
    role: &str,
    subject: &str,
) -> Who {
    let ip = runner_ip(rng);
    let key = temp_key(&format!("gha/{account}/{role}/{}", t.timestamp_millis()));
    let provider =
        format!("arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com");
    let web = Who {
        identity: json!({
            "type": "WebIdentityUser",
            "principalId": format!("{provider}:sts.amazonaws.com:{subject}"),
            "userName": subject,
            "identityProvider": provider,
        })
        .into(),
        account,
        ip: ip.clone(),
        ua: "aws-sdk-nodejs/2.1583.0 linux/v20.11.1 configure-aws-credentials-for-github-actions promise".into(),
        console: false,
        vpce: None,
    };
    // `role-session-name: gha-${{ github.run_id }}` in the workflows.
    let session = format!("gha-{}", 8_400_000_000 + rng.below(99_999_999) as u64);
    let session = session.as_str();
    let c = Call::new("sts", "AssumeRoleWithWebIdentity", "eu-west-1", true)
        .req(json!({"roleArn": role_arn(account, role), "roleSessionName": session, "durationSeconds": 3600}))
        .resp(json!({
            "credentials": {"accessKeyId": key, "expiration": ct::ct_time(t + Duration::hours(1))},
            "subjectFromWebIdentityToken": subject,
            "assumedRoleUser": {"assumedRoleId": format!("{}:{session}", role_principal(account, role)), "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}")},
            "provider": provider,
            "audience": "sts.amazonaws.com"
        }));
    emit(sink, rng, t, &web, c);
    Who {
        identity: role_session(
            account,
            role,
            session,
            &key,
            t,
            SessionKind::GitHubOidc,
            false,
        )
        .into(),
        account,
        ip,
        ua: runner_cli("sts.get-caller-identity"),
        console: false,
        vpce: None,
    }
}

/// Merges deploy to dev, then (mostly) to prod; pull requests run `terraform plan` in dev.
fn pipelines(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "aws/ci");
    for day in local_days(ctx.start, ctx.end, 60) {
        let merges = if day.weekend {
            rng.poisson(0.3 * ctx.scale)
        } else {
            rng.poisson(6.0 * ctx.scale)
        };
        for _ in 0..merges {
            let t = day.at(8.0 + 12.0 * rng.unit());
            deploy(sink, &mut rng, ctx, t, DEV);
            if rng.chance(0.8) {
                let t2 = t + secs(60.0 * (18.0 + 25.0 * rng.unit()));
                deploy(sink, &mut rng, ctx, t2, PROD);
            }
        }
        let plans = if day.weekend {
            rng.poisson(0.8 * ctx.scale)
        } else {
            rng.poisson(14.0 * ctx.scale)
        };
        for _ in 0..plans {
            let t = day.at(7.5 + 14.0 * rng.unit());
            terraform_plan(sink, &mut rng, ctx, t);
        }
    }
}

fn deploy(sink: &mut Sink, rng: &mut Rng, ctx: &Ctx, t: DateTime<Utc>, account: &'static str) {
    if t < ctx.start || t >= ctx.end {
        return;
    }
    let env = org::env_of(account);
    let subject = if account == PROD {
        "repo:ridgeline/platform:environment:production"
    } else {
        "repo:ridgeline/platform:ref:refs/heads/main"
    };
    let region = "eu-west-1";
    let who = github_session(sink, rng, t, account, "github-actions-deploy", subject);
    let mut t = t + secs(3.0 + 3.0 * rng.unit());
    emit(
        sink,
        rng,
        t,
        &who,
        Call::new("sts", "GetCallerIdentity", region, true),
    );
    t += secs(4.0 + 4.0 * rng.unit());
    let login = who.with_ua(runner_cli("ecr.get-login-password"));
    emit(
        sink,
        rng,
        t,
        &login,
        Call::new("ecr", "GetAuthorizationToken", region, true),
    );
    let docker = who.with_ua(
        "docker/24.0.9 go/go1.20.13 git-commit/fca702d kernel/6.5.0-1022-azure os/linux arch/amd64 UpstreamClient(Docker-Client/24.0.9 \\(linux\\))",
    );
    let n_services = 1 + rng.below(3);
    let services: Vec<&str> = org::ECS_SERVICES.iter().copied().take(n_services).collect();
    for svc in &services {
        let repo = format!("ridgeline/{svc}");
        t += secs(20.0 + 60.0 * rng.unit());
        emit(
            sink,
            rng,
            t,
            &docker,
            Call::new("ecr", "BatchCheckLayerAvailability", region, true)
                .req(json!({"repositoryName": repo, "registryId": account})),
        );
        for _ in 0..(1 + rng.below(3)) {
            t += secs(2.0 + 6.0 * rng.unit());
            let upload = rng.uuid();
            emit(
                sink,
                rng,
                t,
                &docker,
                Call::new("ecr", "InitiateLayerUpload", region, false)
                    .req(json!({"repositoryName": repo, "registryId": account}))
                    .resp(json!({"uploadId": upload, "partSize": 10485760})),
            );
            t += secs(3.0 + 10.0 * rng.unit());
            let digest = format!("sha256:{}", rng.hex(64));
            emit(sink, rng, t, &docker, Call::new("ecr", "CompleteLayerUpload", region, false).req(json!({"repositoryName": repo, "registryId": account, "uploadId": upload, "layerDigests": [digest]})));
        }
        t += secs(2.0);
        let tag = rng.hex(7);
        emit(sink, rng, t, &docker, Call::new("ecr", "PutImage", region, false).req(json!({"repositoryName": repo, "registryId": account, "imageTag": tag, "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"})));
    }
    for svc in &services {
        let family = format!("{env}-{svc}");
        t += secs(3.0 + 3.0 * rng.unit());
        let w = who.with_ua(runner_cli("ecs.describe-task-definition"));
        emit(
            sink,
            rng,
            t,
            &w,
            Call::new("ecs", "DescribeTaskDefinition", region, true)
                .req(json!({"taskDefinition": family})),
        );
        t += secs(2.0 + 2.0 * rng.unit());
        let w = who.with_ua(runner_cli("ecs.register-task-definition"));
        let tag = rng.hex(7);
        emit(sink, rng, t, &w, Call::new("ecs", "RegisterTaskDefinition", region, false).req(json!({
            "family": family, "taskRoleArn": role_arn(account, &format!("ecs-task-{svc}")),
            "executionRoleArn": role_arn(account, "ecsTaskExecutionRole"), "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"], "cpu": "512", "memory": "1024",
            "containerDefinitions": [{"name": svc, "image": format!("{account}.dkr.ecr.{region}.amazonaws.com/ridgeline/{svc}:{tag}"), "essential": true}]
        })));
        t += secs(2.0 + 2.0 * rng.unit());
        let w = who.with_ua(runner_cli("ecs.update-service"));
        emit(sink, rng, t, &w, Call::new("ecs", "UpdateService", region, false).req(json!({"cluster": env, "service": svc, "taskDefinition": family})).resp(json!({"service": {"serviceName": svc, "status": "ACTIVE", "desiredCount": 2, "launchType": "FARGATE"}})));
    }
    // `aws ecs wait services-stable` polls.
    let w = who.with_ua(runner_cli("ecs.wait.services-stable"));
    for _ in 0..(4 + rng.below(10)) {
        t += secs(15.0);
        emit(
            sink,
            rng,
            t,
            &w,
            Call::new("ecs", "DescribeServices", region, true)
                .req(json!({"cluster": env, "services": services})),
        );
    }
    // Now and then the Lambda stack changes too: CloudFormation updates the functions itself.
    if rng.chance(0.35) {
        let stack = format!("{env}-lambdas");
        let w = who.with_ua(runner_cli("cloudformation.deploy"));
        let change_set = format!("awscli-cloudformation-package-deploy-{}", t.timestamp());
        t += secs(5.0);
        emit(sink, rng, t, &w, Call::new("cloudformation", "CreateChangeSet", region, false).req(json!({"stackName": stack, "changeSetName": change_set, "changeSetType": "UPDATE", "capabilities": ["CAPABILITY_IAM"]})));
        for _ in 0..3 {
            t += secs(5.0);
            emit(
                sink,
                rng,
                t,
                &w,
                Call::new("cloudformation", "DescribeChangeSet", region, true)
                    .req(json!({"stackName": stack, "changeSetName": change_set})),
            );
        }
        t += secs(3.0);
        emit(
            sink,
            rng,
            t,
            &w,
            Call::new("cloudformation", "ExecuteChangeSet", region, false)
                .req(json!({"stackName": stack, "changeSetName": change_set})),
        );
        let cfn = on_behalf(&who.identity, "cloudformation.amazonaws.com");
        for f in org::LAMBDAS.iter().take(1 + rng.below(3)) {
            t += secs(4.0 + 6.0 * rng.unit());
            let key = format!("lambdas/{f}/{}.zip", rng.hex(32));
            emit(sink, rng, t, &cfn, Call::new("lambda", "UpdateFunctionCode20150331v2", region, false).req(json!({"functionName": f, "s3Bucket": format!("ridgeline-{env}-artifacts"), "s3Key": key, "publish": false})));
            t += secs(2.0);
            emit(
                sink,
                rng,
                t,
                &cfn,
                Call::new(
                    "lambda",
                    "UpdateFunctionConfiguration20150331v2",
                    region,
                    false,
                )
                .req(
                    json!({"functionName": f, "memorySize": 512, "timeout": 30, "environment": {}}),
                ),
            );
        }
        for _ in 0..(4 + rng.below(5)) {
            t += secs(10.0);
            emit(
                sink,
                rng,
                t,
                &w,
                Call::new("cloudformation", "DescribeStacks", region, true)
                    .req(json!({"stackName": stack})),
            );
        }
    }
}

const PLAN_READS: &[(&str, &str)] = &[
    ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeRouteTables"),
    ("ec2", "DescribeInternetGateways"),
    ("ec2", "DescribeNatGateways"),
    ("ec2", "DescribeVpcAttribute"),
    ("ec2", "DescribeLaunchTemplates"),
    ("ec2", "DescribeLaunchTemplateVersions"),
    ("iam", "GetRole"),
    ("iam", "ListRolePolicies"),
    ("iam", "ListAttachedRolePolicies"),
    ("iam", "GetPolicy"),
    ("iam", "GetPolicyVersion"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketVersioning"),
    ("s3", "GetBucketEncryption"),
    ("s3", "GetBucketTagging"),
    ("s3", "GetBucketAcl"),
    ("s3", "GetBucketPublicAccessBlock"),
    ("lambda", "GetFunction20150331v2"),
    ("lambda", "ListVersionsByFunction20150331"),
    ("lambda", "GetPolicy20150331v2"),
    ("dynamodb", "DescribeTable"),
    ("dynamodb", "DescribeContinuousBackups"),
    ("dynamodb", "DescribeTimeToLive"),
    ("sqs", "GetQueueAttributes"),
    ("logs", "DescribeLogGroups"),
    ("kms", "DescribeKey"),
    ("kms", "GetKeyPolicy"),
    ("kms", "GetKeyRotationStatus"),
    ("ecs", "DescribeClusters"),
    ("ecs", "DescribeServices"),
    ("rds", "DescribeDBInstances"),
];

/// `terraform plan` on a pull request: a module's worth of reads (never the whole estate).
fn terraform_plan(sink: &mut Sink, rng: &mut Rng, ctx: &Ctx, t: DateTime<Utc>) {
    if t < ctx.start || t >= ctx.end {
        return;
    }
    let who = github_session(
        sink,
        rng,
        t,
        DEV,
        "github-actions-ci",
        "repo:ridgeline/infrastructure:pull_request",
    );
    let who = who.with_ua(org::TERRAFORM_UA);
    let region = "eu-west-1";
    let mut picked: Vec<(&str, &str)> = Vec::new();
    let n = 14 + rng.below(9);
    let offset = rng.below(PLAN_READS.len());
    for i in 0..n {
        picked.push(PLAN_READS[(offset + i * 3) % PLAN_READS.len()]);
    }
    picked.dedup();
    let mut t = t + secs(20.0 + 20.0 * rng.unit());
    for (svc, name) in picked {
        for _ in 0..(1 + rng.below(3)) {
            let svc: &'static str = static_svc(svc);
            let (req, _) = params(rng, t, DEV, region, svc, name);
            let mut c = Call::new(svc, name, region, true).req(req);
            if rng.chance(0.08)
                && let Some((code, message)) = benign_error(svc, name, &c.req)
            {
                c = c.err(&code, message);
            }
            emit(sink, rng, t, &who, c);
            t += secs(0.2 + rng.exp(1.5));
        }
    }
}

fn static_svc(svc: &str) -> &'static str {
    const ALL: &[&str] = &[
        "ec2", "iam", "s3", "lambda", "dynamodb", "sqs", "logs", "kms", "ecs", "rds", "sts",
    ];
    ALL.iter().copied().find(|s| *s == svc).unwrap_or("ec2")
}

/// Customer traffic through the day (UTC): low at night, highest in the European afternoon.
pub(crate) fn traffic(t: DateTime<Utc>) -> f64 {
    let h = f64::from(t.hour()) + f64::from(t.minute()) / 60.0;
    let x = ((h - 15.0) / 24.0 * std::f64::consts::TAU).cos();
    let weekend = matches!(
        chrono::Datelike::weekday(&t),
        chrono::Weekday::Sat | chrono::Weekday::Sun
    );
    (0.25 + 0.75 * (x + 1.0) / 2.0) * if weekend { 0.7 } else { 1.0 }
}

struct Instance {
    id: &'static str,
    account: &'static str,
    role: &'static str,
    ip: &'static str,
    az: &'static str,
}

const INSTANCES: &[Instance] = &[
    Instance {
        id: org::APP_SERVERS[0],
        account: PROD,
        role: "app-server-role",
        ip: "10.20.1.15",
        az: "eu-west-1a",
    },
    Instance {
        id: org::APP_SERVERS[1],
        account: PROD,
        role: "app-server-role",
        ip: "10.20.2.41",
        az: "eu-west-1b",
    },
    Instance {
        id: org::BATCH_WORKER,
        account: PROD,
        role: "batch-worker-role",
        ip: "10.20.3.77",
        az: "eu-west-1c",
    },
    Instance {
        id: org::LEGACY_DB,
        account: PROD,
        role: "legacy-db-role",
        ip: "10.20.1.200",
        az: "eu-west-1a",
    },
    Instance {
        id: org::DEV_BOX,
        account: DEV,
        role: "dev-box-role",
        ip: "10.40.1.23",
        az: "eu-west-1a",
    },
    Instance {
        id: org::BASTION,
        account: PROD,
        role: "bastion-role",
        ip: "10.20.0.10",
        az: "eu-west-1a",
    },
];

pub(crate) const SSM_AGENT_UA: &str =
    "aws-sdk-go/1.44.302 (go1.21.9; linux; amd64) amazon-ssm-agent/3.3.418.0";
pub(crate) const SSM_VPCE: &str = "vpce-0a3b5c7d9e1f20364";
const SECRETS_VPCE: &str = "vpce-05e7a9c1b3d5f7092";

/// The instance-profile credentials of an instance at `t` (rotated hourly).
pub(crate) fn instance_who(id: &str, t: DateTime<Utc>) -> Who {
    let inst = INSTANCES
        .iter()
        .find(|i| i.id == id)
        .unwrap_or(&INSTANCES[0]);
    let period = instance_period(inst, t);
    let since = period_start(inst, period);
    Who {
        identity: role_session(
            inst.account,
            inst.role,
            inst.id,
            &temp_key(&format!("ec2/{}/{period}", inst.id)),
            since,
            SessionKind::Ec2,
            false,
        )
        .into(),
        account: inst.account,
        ip: inst.ip.to_string(),
        ua: String::new(),
        console: false,
        vpce: None,
    }
}

fn instance_phase(inst: &Instance) -> i64 {
    (crate::rng::fnv(inst.id) % 3600) as i64
}
fn instance_period(inst: &Instance, t: DateTime<Utc>) -> i64 {
    (t.timestamp() - instance_phase(inst)).div_euclid(3600)
}
fn period_start(inst: &Instance, period: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(period * 3600 + instance_phase(inst), 0).unwrap_or_default()
}

fn instances(sink: &mut Sink, ctx: &Ctx) {
    for inst in INSTANCES {
        let mut rng = Rng::derive(ctx.seed, &format!("aws/instance/{}", inst.id));
        let region = "eu-west-1";
        // The SSM agent reports in every five minutes (through the VPC endpoint).
        let step = 300.0 / ctx.scale.clamp(0.05, 20.0);
        let mut t = ctx.start + secs(step * rng.unit());
        let mut cached: Option<(i64, Who)> = None;
        while t < ctx.end {
            let period = instance_period(inst, t);
            if cached.as_ref().map(|c| c.0) != Some(period) {
                let mut who = instance_who(inst.id, t);
                who.ua = SSM_AGENT_UA.into();
                who.vpce = Some(SSM_VPCE);
                cached = Some((period, who));
            }
            let Some((_, who)) = &cached else { break };
            let c = Call::new("ssm", "UpdateInstanceInformation", region, false).req(json!({
                "instanceId": inst.id, "agentVersion": "3.3.418.0", "agentStatus": "Active", "platformType": "Linux",
                "platformName": "Amazon Linux", "platformVersion": "2023", "iPAddress": inst.ip,
                "computerName": format!("ip-{}.eu-west-1.compute.internal", inst.ip.replace('.', "-")),
                "agentName": "amazon-ssm-agent", "availabilityZone": inst.az, "availabilityZoneId": format!("euw1-az{}", 1 + (inst.az.as_bytes()[9] - b'a'))
            }));
            emit(sink, &mut rng, t, who, c);
            t += secs(step + rng.normal(0.0, 4.0));
        }
        // EC2 refreshes the instance-profile credentials every hour.
        let first = instance_period(inst, ctx.start);
        for period in first..=instance_period(inst, ctx.end) {
            let t = period_start(inst, period) + secs(rng.unit() * 3.0);
            if t < ctx.start || t >= ctx.end {
                continue;
            }
            let who = Who {
                identity: aws_service("ec2.amazonaws.com").into(),
                account: inst.account,
                ip: "ec2.amazonaws.com".into(),
                ua: "ec2.amazonaws.com".into(),
                console: false,
                vpce: None,
            };
            let key = temp_key(&format!("ec2/{}/{period}", inst.id));
            let c = Call::new("sts", "AssumeRole", region, true)
                .req(json!({"roleArn": role_arn(inst.account, inst.role), "roleSessionName": inst.id}))
                .resp(json!({
                    "credentials": {"accessKeyId": key, "expiration": ct::ct_time(t + Duration::hours(6))},
                    "assumedRoleUser": {"assumedRoleId": format!("{}:{}", role_principal(inst.account, inst.role), inst.id), "arn": format!("arn:aws:sts::{}:assumed-role/{}/{}", inst.account, inst.role, inst.id)}
                }));
            emit(sink, &mut rng, t, &who, c);
        }
        match inst.role {
            "app-server-role" => app_server(sink, &mut rng, ctx, inst),
            "batch-worker-role" => nightly(sink, &mut rng, ctx, inst, 1.0, 30),
            "legacy-db-role" => nightly(sink, &mut rng, ctx, inst, 3.0, 4),
            _ => {}
        }
    }
    snapshots(sink, ctx);
}

/// The application reads its database secret when its cache expires, and stores customer
/// uploads in an SSE-KMS bucket (KMS calls S3 makes with the instance's credentials).
fn app_server(sink: &mut Sink, rng: &mut Rng, ctx: &Ctx, inst: &Instance) {
    let region = "eu-west-1";
    let mut t = ctx.start + secs(rng.unit() * 14_400.0);
    while t < ctx.end {
        let mut who = instance_who(inst.id, t);
        who.ua = "aws-sdk-java/2.25.16 Linux/6.1.84-99.169.amzn2023.x86_64 OpenJDK_64-Bit_Server_VM/17.0.10+7-LTS Java/17.0.10 vendor/Amazon.com_Inc. md/internal".into();
        who.vpce = Some(SECRETS_VPCE);
        let secret = format!(
            "arn:aws:secretsmanager:{region}:{PROD}:secret:prod/orders-db-{}",
            &stable_hex("orders-db", 6)
        );
        emit(
            sink,
            rng,
            t,
            &who,
            Call::new("secretsmanager", "GetSecretValue", region, true)
                .req(json!({"secretId": "prod/orders-db"})),
        );
        let sm = on_behalf(&who.identity, "secretsmanager.amazonaws.com");
        emit(sink, rng, t, &sm, Call::new("kms", "Decrypt", region, true).req(json!({
            "encryptionContext": {"SecretARN": secret, "SecretVersionId": stable_hex("orders-db-v", 32)},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": kms_key(PROD, region, "app")
        })));
        t += secs(14_400.0 + rng.normal(0.0, 300.0));
    }
    let mut cached: Option<(i64, Who)> = None;
    let mut t = ctx.start;
    while t < ctx.end {
        let rate = 5.0 * traffic(t) * ctx.scale;
        t += secs(rng.exp(3600.0 / rate.max(0.01)));
        if t >= ctx.end {
            break;
        }
        let period = instance_period(inst, t);
        if cached.as_ref().map(|c| c.0) != Some(period) {
            let who = instance_who(inst.id, t);
            cached = Some((period, on_behalf(&who.identity, "s3.amazonaws.com")));
        }
        let Some((_, s3)) = &cached else { break };
        let object = format!(
            "arn:aws:s3:::ridgeline-prod-uploads/u/{}/{}.jpg",
            rng.hex(8),
            rng.hex(12)
        );
        emit(
            sink,
            rng,
            t,
            s3,
            Call::new("kms", "GenerateDataKey", region, true).req(json!({
                "encryptionContext": {"aws:s3:arn": object},
                "keySpec": "AES_256", "keyId": kms_key(PROD, region, "s3")
            })),
        );
    }
}

/// A nightly job on an instance: fetch a secret, then write `uploads` encrypted objects.
fn nightly(
    sink: &mut Sink,
    rng: &mut Rng,
    ctx: &Ctx,
    inst: &Instance,
    hour_utc: f64,
    uploads: usize,
) {
    let region = "eu-west-1";
    for day in local_days(ctx.start, ctx.end, 0) {
        let t0 = day.at(hour_utc) + secs(rng.unit() * 120.0);
        if t0 < ctx.start || t0 >= ctx.end {
            continue;
        }
        let mut who = instance_who(inst.id, t0);
        who.ua = org::boto3_ua(Os::Linux).to_string();
        who.vpce = Some(SECRETS_VPCE);
        let secret = if inst.role == "legacy-db-role" {
            "prod/legacy-db-backup"
        } else {
            "prod/orders-db"
        };
        emit(
            sink,
            rng,
            t0,
            &who,
            Call::new("secretsmanager", "GetSecretValue", region, true)
                .req(json!({"secretId": secret})),
        );
        let mut t = t0 + secs(30.0);
        for i in 0..((uploads as f64 * ctx.scale).round() as usize).max(1) {
            t += secs(rng.exp(80.0));
            let who = instance_who(inst.id, t);
            let s3 = on_behalf(&who.identity, "s3.amazonaws.com");
            let key = if inst.role == "legacy-db-role" {
                format!(
                    "arn:aws:s3:::ridgeline-prod-backups/pg_dump/{}/part-{i:03}.gz",
                    day.date
                )
            } else {
                format!(
                    "arn:aws:s3:::ridgeline-prod-reports/exports/{}/{}.parquet",
                    day.date,
                    rng.hex(16)
                )
            };
            emit(sink, rng, t, &s3, Call::new("kms", "GenerateDataKey", region, true).req(json!({
                "encryptionContext": {"aws:s3:arn": key}, "keySpec": "AES_256", "keyId": kms_key(PROD, region, "s3")
            })));
        }
    }
}

/// Data Lifecycle Manager snapshots the legacy database volume every night and keeps seven.
fn snapshots(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "aws/dlm");
    let region = "eu-west-1";
    for day in local_days(ctx.start, ctx.end, 0) {
        let t = day.at(4.0) + secs(rng.unit() * 300.0);
        if t < ctx.start || t >= ctx.end {
            continue;
        }
        let role = "AWSDataLifecycleManagerDefaultRole";
        let id = role_session(
            PROD,
            role,
            "DataLifecycleManager",
            &temp_key(&format!("dlm/{}", day.date)),
            t,
            SessionKind::Plain,
            false,
        );
        let who = on_behalf(&id, "dlm.amazonaws.com");
        let snap = format!("snap-{}", stable_hex(&format!("dlm/{}", day.date), 17));
        emit(sink, &mut rng, t, &who, Call::new("ec2", "CreateSnapshot", region, false)
            .req(json!({"volumeId": org::LEGACY_DB_VOLUME, "description": "Created for policy: policy-0legacydbdaily schedule: Daily", "tagSpecificationSet": {"items": [{"resourceType": "snapshot", "tags": [{"key": "dlm:managed", "value": "true"}]}]}}))
            .resp(json!({"snapshotId": snap, "volumeId": org::LEGACY_DB_VOLUME, "status": "pending", "volumeSize": 200, "encrypted": true})));
        let old = format!(
            "snap-{}",
            stable_hex(&format!("dlm/{}", day.date - chrono::Days::new(7)), 17)
        );
        emit(
            sink,
            &mut rng,
            t + secs(40.0),
            &who,
            Call::new("ec2", "DeleteSnapshot", region, false)
                .req(json!({"snapshotId": old}))
                .resp(json!({"_return": true})),
        );
    }
}

/// A Lambda cold start: the service assumes the execution role, the runtime creates its log
/// stream. Returns the session.
fn cold_start(
    sink: &mut Sink,
    rng: &mut Rng,
    t: DateTime<Utc>,
    account: &'static str,
    function: &str,
    runtime_ua: &str,
) -> Who {
    let role = format!("{function}-role");
    let key = temp_key(&format!(
        "lambda/{account}/{function}/{}",
        t.timestamp_millis()
    ));
    let svc = Who {
        identity: aws_service("lambda.amazonaws.com").into(),
        account,
        ip: "lambda.amazonaws.com".into(),
        ua: "lambda.amazonaws.com".into(),
        console: false,
        vpce: None,
    };
    let region = "eu-west-1";
    emit(sink, rng, t, &svc, Call::new("sts", "AssumeRole", region, true)
        .req(json!({"roleArn": role_arn(account, &role), "roleSessionName": function}))
        .resp(json!({"credentials": {"accessKeyId": key, "expiration": ct::ct_time(t + Duration::hours(12))},
            "assumedRoleUser": {"assumedRoleId": format!("{}:{function}", role_principal(account, &role)), "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{function}")}})));
    let ip_prefix = if account == SEC { "52.16" } else { "34.248" };
    let who = Who {
        identity: role_session(account, &role, function, &key, t, SessionKind::Plain, false).into(),
        account,
        ip: format!(
            "{ip_prefix}.{}.{}",
            (crate::rng::fnv(function) % 200) + 10,
            (crate::rng::fnv(&role) % 250) + 2
        ),
        ua: runtime_ua.to_string(),
        console: false,
        vpce: None,
    };
    let t1 = t + secs(0.4);
    let logs = who.with_ua("awslambda-worker/1.0 rusoto/0.48.0 rust/1.77.2 linux");
    let stream = ct::lambda_stream(t, rng);
    emit(
        sink,
        rng,
        t1,
        &logs,
        Call::new("logs", "CreateLogStream", region, false).req(json!({
            "logGroupName": format!("/aws/lambda/{function}"), "logStreamName": stream
        })),
    );
    who
}

const NODE_UA: &str = "aws-sdk-js/3.556.0 ua/2.0 os/linux#5.10.214-223.860.amzn2.x86_64 lang/js md/nodejs#20.12.2 api/secrets-manager#3.556.0 exec-env/AWS_Lambda_nodejs20.x";
const PY_LAMBDA_UA: &str = "Boto3/1.34.42 md/Botocore#1.34.42 ua/2.0 os/linux#5.10.214-223.860.amzn2.x86_64 md/arch#x86_64 lang/python#3.12.2 md/pyimpl#CPython exec-env/AWS_Lambda_python3.12 cfg/retry-mode#legacy Botocore/1.34.42";

fn lambdas(sink: &mut Sink, ctx: &Ctx) {
    let region = "eu-west-1";
    // orders-handler: cold starts follow customer traffic; warm containers keep KMS busy for
    // the DynamoDB table.
    let mut rng = Rng::derive(ctx.seed, "aws/lambda/orders-handler");
    let mut t = ctx.start;
    let mut current: Option<Who> = None;
    let mut next_kms = ctx.start;
    while t < ctx.end {
        let rate = 9.0 * traffic(t) * ctx.scale;
        let next_cold = t + secs(rng.exp(3600.0 / rate.max(0.01)));
        while next_kms < next_cold.min(ctx.end) {
            if let Some(who) = &current {
                let ddb = on_behalf(&who.identity, "dynamodb.amazonaws.com");
                emit(sink, &mut rng, next_kms, &ddb, Call::new("kms", "Decrypt", region, true).req(json!({
                    "encryptionContext": {"aws:dynamodb:tableName": "prod-orders", "aws:dynamodb:subscriberId": PROD},
                    "encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": kms_key(PROD, region, "app")
                })));
            }
            next_kms += secs(300.0 / ctx.scale.clamp(0.05, 20.0) + rng.normal(0.0, 5.0));
        }
        t = next_cold;
        if t >= ctx.end {
            break;
        }
        let who = cold_start(sink, &mut rng, t, PROD, "orders-handler", NODE_UA);
        let env = on_behalf(&who.identity, "lambda.amazonaws.com");
        emit(sink, &mut rng, t + secs(0.2), &env, Call::new("kms", "Decrypt", region, true).req(json!({
            "encryptionContext": {"aws:lambda:FunctionArn": format!("arn:aws:lambda:{region}:{PROD}:function:orders-handler")},
            "encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": kms_key(PROD, region, "app")
        })));
        emit(
            sink,
            &mut rng,
            t + secs(0.9),
            &who,
            Call::new("secretsmanager", "GetSecretValue", region, true)
                .req(json!({"secretId": "prod/stripe-api-key"})),
        );
        current = Some(who);
    }
    // image-resizer: triggered by uploads, writes resized images to an SSE-KMS bucket.
    let mut rng = Rng::derive(ctx.seed, "aws/lambda/image-resizer");
    let mut t = ctx.start;
    while t < ctx.end {
        let rate = 6.0 * traffic(t) * ctx.scale;
        t += secs(rng.exp(3600.0 / rate.max(0.01)));
        if t >= ctx.end {
            break;
        }
        let who = cold_start(sink, &mut rng, t, PROD, "image-resizer", PY_LAMBDA_UA);
        let s3 = on_behalf(&who.identity, "s3.amazonaws.com");
        for k in 0..(1 + rng.below(4)) {
            let object = format!(
                "arn:aws:s3:::ridgeline-prod-assets/img/{}/{}_w640.webp",
                rng.hex(8),
                rng.hex(12)
            );
            emit(
                sink,
                &mut rng,
                t + secs(1.0 + 5.0 * k as f64),
                &s3,
                Call::new("kms", "GenerateDataKey", region, true).req(json!({
                    "encryptionContext": {"aws:s3:arn": object},
                    "keySpec": "AES_256", "keyId": kms_key(PROD, region, "s3")
                })),
            );
        }
    }
    // nightly-report: Athena queries at 02:00 UTC, results mailed out.
    let mut rng = Rng::derive(ctx.seed, "aws/lambda/nightly-report");
    for day in local_days(ctx.start, ctx.end, 0) {
        let t0 = day.at(2.0) + secs(rng.unit() * 40.0);
        if t0 < ctx.start || t0 >= ctx.end {
            continue;
        }
        let who = cold_start(sink, &mut rng, t0, PROD, "nightly-report", PY_LAMBDA_UA);
        emit(
            sink,
            &mut rng,
            t0 + secs(1.0),
            &who,
            Call::new("secretsmanager", "GetSecretValue", region, true)
                .req(json!({"secretId": "prod/sendgrid"})),
        );
        let mut t = t0 + secs(2.0);
        for q in [
            "daily_orders",
            "revenue_by_country",
            "refunds",
            "inventory_low",
        ] {
            let id = rng.uuid();
            emit(sink, &mut rng, t, &who, Call::new("athena", "StartQueryExecution", region, false)
                .req(json!({"queryString": format!("SELECT * FROM reports.{q} WHERE dt = date '{}'", day.date), "queryExecutionContext": {"database": "reports"}, "workGroup": "reports", "resultConfiguration": {"outputLocation": "s3://ridgeline-prod-reports/athena/"}}))
                .resp(json!({"queryExecutionId": id})));
            for _ in 0..(2 + rng.below(5)) {
                t += secs(2.0);
                emit(
                    sink,
                    &mut rng,
                    t,
                    &who,
                    Call::new("athena", "GetQueryExecution", region, true)
                        .req(json!({"queryExecutionId": id})),
                );
            }
            t += secs(1.0);
            emit(
                sink,
                &mut rng,
                t,
                &who,
                Call::new("athena", "GetQueryResults", region, true)
                    .req(json!({"queryExecutionId": id, "maxResults": 1000})),
            );
            t += secs(1.0);
        }
    }
    // The security account's GuardDuty findings exporter, every five minutes.
    let mut rng = Rng::derive(ctx.seed, "aws/lambda/findings-exporter");
    let step = 300.0 / ctx.scale.clamp(0.05, 20.0);
    let mut t = ctx.start + secs(rng.unit() * step);
    let mut who: Option<Who> = None;
    let mut warm_until = ctx.start;
    let detector = stable_hex(&format!("gd{SEC}"), 32);
    while t < ctx.end {
        if t >= warm_until || who.is_none() {
            who = Some(cold_start(
                sink,
                &mut rng,
                t,
                SEC,
                "findings-exporter",
                PY_LAMBDA_UA,
            ));
            warm_until = t + secs(3600.0 + 3600.0 * rng.unit());
        }
        let w = who.as_ref().expect("set above");
        emit(sink, &mut rng, t + secs(0.5), w, Call::new("guardduty", "ListFindings", region, true).req(json!({
            "detectorId": detector, "findingCriteria": {"criterion": {"updatedAt": {"gte": (t - Duration::minutes(10)).timestamp_millis()}}}, "maxResults": 50
        })));
        if rng.chance(0.15) {
            let finding = rng.hex(32);
            emit(
                sink,
                &mut rng,
                t + secs(1.2),
                w,
                Call::new("guardduty", "GetFindings", region, true)
                    .req(json!({"detectorId": detector, "findingIds": [finding]})),
            );
        }
        t += secs(step + rng.normal(0.0, 3.0));
    }
}

/// Fargate tasks: ECS vends task-role credentials every hour; the API's tasks use the
/// DynamoDB tables and the workers read SQS queues, both encrypted with a customer key (KMS calls
/// the services make on the tasks' behalf, about every five minutes per data key).
fn ecs_tasks(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "aws/ecs");
    let region = "eu-west-1";
    let tasks: &[(&'static str, &str, usize)] = &[
        (PROD, "api", 4),
        (PROD, "web", 2),
        (PROD, "worker", 3),
        (DEV, "api", 1),
        (DEV, "worker", 1),
    ];
    for (account, svc, count) in tasks {
        let account: &'static str = account;
        let env = org::env_of(account);
        for task in 0..*count {
            let task_id = stable_hex(&format!("task/{account}/{svc}/{task}"), 32);
            let role = format!("ecs-task-{svc}");
            let mut t = ctx.start + secs(rng.unit() * 3600.0);
            while t < ctx.end {
                let who = Who {
                    identity: aws_service("ecs-tasks.amazonaws.com").into(),
                    account,
                    ip: "ecs-tasks.amazonaws.com".into(),
                    ua: "ecs-tasks.amazonaws.com".into(),
                    console: false,
                    vpce: None,
                };
                let key = temp_key(&format!("ecs/{task_id}/{}", t.timestamp()));
                emit(sink, &mut rng, t, &who, Call::new("sts", "AssumeRole", region, true)
                    .req(json!({"roleArn": role_arn(account, &role), "roleSessionName": task_id}))
                    .resp(json!({"credentials": {"accessKeyId": key, "expiration": ct::ct_time(t + Duration::hours(6))},
                        "assumedRoleUser": {"assumedRoleId": format!("{}:{task_id}", role_principal(account, &role)), "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{task_id}")}})));
                let task_who =
                    role_session(account, &role, &task_id, &key, t, SessionKind::Plain, false);
                let (service, contexts): (&str, Vec<Value>) = match *svc {
                    "api" => (
                        "dynamodb.amazonaws.com",
                        ["orders", "sessions"].iter().map(|table| json!({"aws:dynamodb:tableName": format!("{env}-{table}"), "aws:dynamodb:subscriberId": account})).collect(),
                    ),
                    "worker" => (
                        "sqs.amazonaws.com",
                        ["orders-events", "email-outbox"].iter().map(|q| json!({"aws:sqs:arn": format!("arn:aws:sqs:{region}:{account}:{env}-{q}")})).collect(),
                    ),
                    _ => ("", Vec::new()),
                };
                if !contexts.is_empty() {
                    let behalf = on_behalf(&task_who, service);
                    let mut k = t + secs(rng.unit() * 60.0);
                    let until = (t + secs(3600.0)).min(ctx.end);
                    let busy = if account == PROD { 1.0 } else { 0.5 };
                    while k < until {
                        let context = rng.pick(&contexts).clone();
                        emit(sink, &mut rng, k, &behalf, Call::new("kms", "Decrypt", region, true).req(json!({
                            "encryptionContext": context,
                            "encryptionAlgorithm": "SYMMETRIC_DEFAULT", "keyId": kms_key(account, region, "app")
                        })));
                        k += secs(
                            300.0 / (busy * ctx.scale).clamp(0.05, 20.0) + rng.normal(0.0, 10.0),
                        );
                    }
                }
                t += secs(3600.0 + rng.normal(0.0, 60.0));
            }
        }
    }
}

/// The organisation trail encrypts its log files with a key in the security account: one
/// GenerateDataKey per delivered file, about every five minutes per account and region.
fn trail_delivery(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "aws/cloudtrail-delivery");
    let who = Who {
        identity: aws_service("cloudtrail.amazonaws.com").into(),
        account: SEC,
        ip: "cloudtrail.amazonaws.com".into(),
        ua: "cloudtrail.amazonaws.com".into(),
        console: false,
        vpce: None,
    };
    let trail = format!("arn:aws:cloudtrail:eu-west-1:{SEC}:trail/org-trail");
    let key = kms_key(SEC, "eu-west-1", "cloudtrail");
    let streams = [
        (PROD, "eu-west-1"),
        (PROD, "us-east-1"),
        (PROD, "eu-central-1"),
        (DEV, "eu-west-1"),
        (DEV, "us-east-1"),
        (SEC, "eu-west-1"),
        (SEC, "us-east-1"),
    ];
    for (account, region) in streams {
        let step = 300.0 / ctx.scale.clamp(0.05, 20.0);
        let mut t = ctx.start + secs(rng.unit() * step);
        while t < ctx.end {
            let mut file = String::with_capacity(160);
            file.push_str("arn:aws:s3:::ridgeline-org-cloudtrail-logs/AWSLogs/o-7rq2x9f3ka/");
            file.push_str(account);
            file.push_str("/CloudTrail/");
            file.push_str(region);
            file.push('/');
            file.push_str(&t.format("%Y/%m/%d/").to_string());
            file.push_str(account);
            file.push_str("_CloudTrail_");
            file.push_str(region);
            file.push_str(&t.format("_%Y%m%dT%H%MZ_").to_string());
            file.push_str(&crate::rng::aws_id(
                &format!("{}{account}{region}", t.timestamp()),
                16,
            ));
            file.push_str(".json.gz");
            emit(
                sink,
                &mut rng,
                t,
                &who,
                Call::new("kms", "GenerateDataKey", "eu-west-1", true).req(json!({
                    "keyId": key, "keySpec": "AES_256",
                    "encryptionContext": {"aws:cloudtrail:arn": trail, "aws:s3:arn": file}
                })),
            );
            t += secs(step + rng.normal(0.0, 15.0));
        }
    }
}

const CONFIG_READS: &[(&str, &str)] = &[
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeVolumes"),
    ("ec2", "DescribeVpcs"),
    ("ec2", "DescribeSubnets"),
    ("ec2", "DescribeNetworkInterfaces"),
    ("ec2", "DescribeRouteTables"),
    ("iam", "GetRole"),
    ("iam", "ListAttachedRolePolicies"),
    ("iam", "GetPolicyVersion"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketEncryption"),
    ("s3", "GetBucketVersioning"),
    ("s3", "GetBucketPublicAccessBlock"),
    ("lambda", "GetFunction20150331v2"),
    ("lambda", "GetPolicy20150331v2"),
    ("rds", "DescribeDBInstances"),
    ("kms", "DescribeKey"),
    ("kms", "GetKeyRotationStatus"),
    ("dynamodb", "DescribeTable"),
];

/// AWS Config records configuration changes with its service-linked role.
fn config_recorder(sink: &mut Sink, ctx: &Ctx) {
    for account in [PROD, DEV, SEC] {
        let mut rng = Rng::derive(ctx.seed, &format!("aws/config/{account}"));
        let region = "eu-west-1";
        let step = 3.0 * 3600.0 / ctx.scale.clamp(0.05, 20.0);
        let mut t = ctx.start + secs(rng.unit() * step);
        while t < ctx.end {
            let id = role_session(
                account,
                "AWSServiceRoleForConfig",
                "AWSConfig-Describe",
                &temp_key(&format!("config/{account}/{}", t.timestamp() / 21_600)),
                t,
                SessionKind::Plain,
                false,
            );
            let who = on_behalf(&id, "config.amazonaws.com");
            let n = if account == SEC { 6 } else { 12 + rng.below(9) };
            let mut k = t;
            for _ in 0..n {
                let (svc, name) = *rng.pick(CONFIG_READS);
                let svc = static_svc(svc);
                let (req, _) = params(&mut rng, k, account, region, svc, name);
                emit(
                    sink,
                    &mut rng,
                    k,
                    &who,
                    Call::new(svc, name, region, true).req(req),
                );
                k += secs(0.3 + rng.exp(2.0));
            }
            t += secs(step + rng.normal(0.0, 600.0));
        }
    }
}

const INVENTORY_READS: &[(&str, &str)] = &[
    ("ec2", "DescribeInstances"),
    ("ec2", "DescribeSecurityGroups"),
    ("ec2", "DescribeVolumes"),
    ("ec2", "DescribeSnapshots"),
    ("ec2", "DescribeImages"),
    ("s3", "ListBuckets"),
    ("s3", "GetBucketPolicy"),
    ("s3", "GetBucketAcl"),
    ("s3", "GetBucketPublicAccessBlock"),
    ("iam", "ListUsers"),
    ("iam", "ListRoles"),
    ("iam", "ListAccessKeys"),
    ("iam", "GetAccessKeyLastUsed"),
    ("rds", "DescribeDBInstances"),
    ("lambda", "ListFunctions20150331"),
    ("kms", "ListKeys"),
];

/// The security team's asset inventory: a Lambda in the security account assumes a read-only
/// role in prod and dev every night and lists what is there.
fn inventory(sink: &mut Sink, ctx: &Ctx) {
    let mut rng = Rng::derive(ctx.seed, "aws/inventory");
    let region = "eu-west-1";
    for day in local_days(ctx.start, ctx.end, 0) {
        for h in [0.25] {
            let t0 = day.at(h) + secs(rng.unit() * 60.0);
            if t0 < ctx.start || t0 >= ctx.end {
                continue;
            }
            let lambda = cold_start(sink, &mut rng, t0, SEC, "asset-inventory", PY_LAMBDA_UA);
            let mut t = t0 + secs(1.0);
            for target in [PROD, DEV] {
                let role = "SecurityInventoryReadOnly";
                let session = "asset-inventory";
                let key = temp_key(&format!("inventory/{target}/{}", t.timestamp()));
                let c = || {
                    Call::new("sts", "AssumeRole", region, true)
                        .req(json!({"roleArn": role_arn(target, role), "roleSessionName": session, "externalId": "ridgeline-inventory"}))
                        .resp(json!({"credentials": {"accessKeyId": key, "expiration": ct::ct_time(t + Duration::hours(1))},
                            "assumedRoleUser": {"assumedRoleId": format!("{}:{session}", role_principal(target, role)), "arn": format!("arn:aws:sts::{target}:assumed-role/{role}/{session}")}}))
                };
                // Recorded in both accounts: the caller's and the role's.
                emit(sink, &mut rng, t, &lambda, c());
                emit(sink, &mut rng, t, &lambda, c().recorded_in(target));
                let who = Who {
                    identity: role_session(
                        target,
                        role,
                        session,
                        &key,
                        t,
                        SessionKind::Plain,
                        false,
                    )
                    .into(),
                    account: target,
                    ip: lambda.ip.clone(),
                    ua: PY_LAMBDA_UA.into(),
                    console: false,
                    vpce: None,
                };
                for (svc, name) in INVENTORY_READS {
                    let svc = static_svc(svc);
                    let reps = if *name == "GetBucketPolicy" || *name == "GetAccessKeyLastUsed" {
                        3
                    } else {
                        1
                    };
                    for _ in 0..reps {
                        t += secs(0.2 + rng.exp(0.8));
                        let (req, _) = params(&mut rng, t, target, region, svc, name);
                        let mut c = Call::new(svc, name, region, true).req(req);
                        if name.starts_with("GetBucketPolicy")
                            && rng.chance(0.3)
                            && let Some((code, message)) = benign_error(svc, name, &c.req)
                        {
                            c = c.err(&code, message);
                        }
                        emit(sink, &mut rng, t, &who, c);
                    }
                }
                t += secs(2.0);
            }
        }
    }
}

trait WeightedTriple<A: Copy, B: Copy> {
    fn weighted_triple<'a>(&mut self, items: &'a [(A, B, u32)]) -> &'a (A, B, u32);
}

impl<A: Copy, B: Copy> WeightedTriple<A, B> for Rng {
    fn weighted_triple<'a>(&mut self, items: &'a [(A, B, u32)]) -> &'a (A, B, u32) {
        let total: u32 = items.iter().map(|i| i.2).sum();
        let mut x = self.below(total.max(1) as usize) as u32;
        for item in items {
            if x < item.2 {
                return item;
            }
            x -= item.2;
        }
        &items[items.len() - 1]
    }
}
