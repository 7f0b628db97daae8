//! CloudTrail records: identities, the record itself, request parameters and error shapes.

use std::rc::Rc;

use chrono::{DateTime, Duration, Utc};
use serde_json::{Value, json};

use crate::Sink;
use crate::org::{self, PermissionSet};
use crate::rng::{Rng, aws_id, stable_hex, stable_uuid};
use crate::text::Obj;

/// CloudTrail's time format (whole seconds).
pub fn ct_time(t: DateTime<Utc>) -> String {
    let mut s = String::with_capacity(20);
    crate::iso_seconds(t, &mut s);
    s.push('Z');
    s
}

/// A `userIdentity`, kept with its JSON text (written into every record of the principal).
#[derive(Clone, Debug)]
pub struct Ident {
    value: Rc<Value>,
    text: Rc<str>,
}

impl From<Value> for Ident {
    fn from(value: Value) -> Ident {
        let text: Rc<str> = Rc::from(value.to_string());
        Ident {
            value: Rc::new(value),
            text,
        }
    }
}

impl std::ops::Deref for Ident {
    type Target = Value;
    fn deref(&self) -> &Value {
        &self.value
    }
}

/// Who makes a call: the `userIdentity` plus where the call comes from.
#[derive(Clone, Debug)]
pub struct Who {
    pub identity: Ident,
    /// The principal's own account (the default recipient).
    pub account: &'static str,
    pub ip: String,
    pub ua: String,
    /// The call was made from the console with the console's session credentials.
    pub console: bool,
    /// Calls through a VPC interface endpoint.
    pub vpce: Option<&'static str>,
}

impl Who {
    pub fn arn(&self) -> String {
        self.identity["arn"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }
    pub fn with_ua(&self, ua: impl Into<String>) -> Who {
        Who {
            ua: ua.into(),
            ..self.clone()
        }
    }
}

/// An IAM user calling with a long-lived access key.
pub fn iam_user(account: &str, name: &str) -> Value {
    json!({
        "type": "IAMUser",
        "principalId": format!("AIDA{}", aws_id(&format!("user/{account}/{name}"), 17)),
        "arn": format!("arn:aws:iam::{account}:user/{name}"),
        "accountId": account,
        "accessKeyId": iam_user_key(account, name),
        "userName": name,
    })
}

/// An IAM user's long-lived access key id.
pub fn iam_user_key(account: &str, name: &str) -> String {
    format!("AKIA{}", aws_id(&format!("key/{account}/{name}"), 16))
}

/// An IAM user in the console (temporary console credentials, MFA).
pub fn iam_user_console(account: &str, name: &str, key: &str, since: DateTime<Utc>) -> Value {
    let mut v = iam_user(account, name);
    v["accessKeyId"] = json!(key);
    v["sessionContext"] = json!({
        "sessionIssuer": {},
        "webIdFederationData": {},
        "attributes": {"creationDate": ct_time(since), "mfaAuthenticated": "true"}
    });
    v
}

pub fn role_arn(account: &str, role: &str) -> String {
    if role.starts_with("AWSReservedSSO_") {
        format!(
            "arn:aws:iam::{account}:role/aws-reserved/sso.amazonaws.com/{}/{role}",
            org::SSO_REGION
        )
    } else if role.starts_with("AWSServiceRoleFor") {
        let service = match role {
            "AWSServiceRoleForConfig" => "config.amazonaws.com",
            "AWSServiceRoleForAutoScaling" => "autoscaling.amazonaws.com",
            _ => "dlm.amazonaws.com",
        };
        format!("arn:aws:iam::{account}:role/aws-service-role/{service}/{role}")
    } else {
        format!("arn:aws:iam::{account}:role/{role}")
    }
}

pub fn role_principal(account: &str, role: &str) -> String {
    format!("AROA{}", aws_id(&format!("role/{account}/{role}"), 17))
}

/// How a role session came to be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionKind {
    Plain,
    /// AssumeRoleWithWebIdentity through GitHub's OIDC provider.
    GitHubOidc,
    /// EC2 instance profile credentials.
    Ec2,
}

/// An assumed-role session.
pub fn role_session(
    account: &str,
    role: &str,
    session: &str,
    key: &str,
    since: DateTime<Utc>,
    kind: SessionKind,
    mfa: bool,
) -> Value {
    let principal = role_principal(account, role);
    let web = match kind {
        SessionKind::GitHubOidc => json!({
            "federatedProvider": format!("arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com"),
            "attributes": {}
        }),
        _ => json!({}),
    };
    let mut v = json!({
        "type": "AssumedRole",
        "principalId": format!("{principal}:{session}"),
        "arn": format!("arn:aws:sts::{account}:assumed-role/{role}/{session}"),
        "accountId": account,
        "accessKeyId": key,
        "sessionContext": {
            "sessionIssuer": {
                "type": "Role",
                "principalId": principal,
                "arn": role_arn(account, role),
                "accountId": account,
                "userName": role
            },
            "webIdFederationData": web,
            "attributes": {"creationDate": ct_time(since), "mfaAuthenticated": if mfa { "true" } else { "false" }}
        }
    });
    if kind == SessionKind::Ec2 {
        v["sessionContext"]["ec2RoleDelivery"] = json!("2.0");
    }
    v
}

/// An Identity Center (SSO) session of a person.
pub fn sso_session(
    account: &str,
    set: PermissionSet,
    email: &str,
    key: &str,
    since: DateTime<Utc>,
) -> Value {
    role_session(
        account,
        set.role_name(),
        email,
        key,
        since,
        SessionKind::Plain,
        false,
    )
}

/// A call an AWS service makes itself.
pub fn aws_service(invoked_by: &str) -> Value {
    json!({"type": "AWSService", "invokedBy": invoked_by})
}

/// A call a service makes with a principal's credentials (KMS for S3, CloudFormation for a stack).
pub fn on_behalf(identity: &Value, service: &str) -> Who {
    let mut id = identity.clone();
    id["invokedBy"] = json!(service);
    Who {
        identity: id.into(),
        account: "",
        ip: service.to_string(),
        ua: service.to_string(),
        console: false,
        vpce: None,
    }
}

/// A temporary access key id, stable for `label`.
pub fn temp_key(label: &str) -> String {
    format!("ASIA{}", aws_id(label, 16))
}

/// One API call.
#[derive(Debug)]
pub struct Call {
    pub svc: &'static str,
    pub name: String,
    pub region: &'static str,
    pub read_only: bool,
    pub req: Value,
    pub resp: Value,
    pub error: Option<(String, String)>,
    pub event_type: &'static str,
    pub recipient: Option<&'static str>,
    pub additional: Option<Value>,
    pub category: &'static str,
}

impl Call {
    pub fn new(svc: &'static str, name: &str, region: &'static str, read_only: bool) -> Call {
        Call {
            svc,
            name: name.to_string(),
            region,
            read_only,
            req: Value::Null,
            resp: Value::Null,
            error: None,
            event_type: "AwsApiCall",
            recipient: None,
            additional: None,
            category: "Management",
        }
    }
    pub fn req(mut self, v: Value) -> Call {
        self.req = v;
        self
    }
    pub fn resp(mut self, v: Value) -> Call {
        self.resp = v;
        self
    }
    pub fn err(mut self, code: &str, message: impl Into<String>) -> Call {
        self.error = Some((code.to_string(), message.into()));
        self
    }
    pub fn recorded_in(mut self, account: &'static str) -> Call {
        self.recipient = Some(account);
        self
    }
}

/// Services whose calls CloudTrail records in us-east-1 whatever the caller's region.
fn global(svc: &str, name: &str) -> bool {
    matches!(
        svc,
        "iam" | "cloudfront" | "route53" | "organizations" | "signin"
    ) || (svc == "s3" && name == "ListBuckets")
}

/// Writes one CloudTrail record; returns its eventID.
pub fn emit(sink: &mut Sink, rng: &mut Rng, t: DateTime<Utc>, who: &Who, c: Call) -> String {
    let t = crate::trunc_secs(t);
    let event_id = sink.fresh_id(rng, Rng::uuid);
    let region = if global(c.svc, &c.name) {
        "us-east-1"
    } else {
        c.region
    };
    let recipient = c.recipient.unwrap_or(if who.account.is_empty() {
        who.identity["accountId"]
            .as_str()
            .map_or(org::PROD, account_static)
    } else {
        who.account
    });
    // Written as text, in CloudTrail's own key order.
    let mut o = Obj::new();
    o.str(
        "eventVersion",
        if c.svc == "signin" { "1.08" } else { "1.09" },
    );
    o.key("userIdentity").raw(&who.identity.text);
    o.str("eventTime", &ct_time(t));
    o.key("eventSource")
        .raw("\"")
        .raw(c.svc)
        .raw(".amazonaws.com\"");
    o.str("eventName", &c.name);
    o.str("awsRegion", region);
    o.str("sourceIPAddress", &who.ip);
    o.str("userAgent", &who.ua);
    if let Some((code, message)) = &c.error {
        if !code.is_empty() {
            o.str("errorCode", code);
        }
        o.str("errorMessage", message);
    }
    o.value("requestParameters", &c.req);
    o.value("responseElements", &c.resp);
    if let Some(a) = &c.additional {
        o.value("additionalEventData", a);
    }
    if c.event_type == "AwsApiCall" {
        o.str("requestID", &rng.uuid());
    }
    o.str("eventID", &event_id);
    o.bool("readOnly", c.read_only);
    o.str("eventType", c.event_type);
    o.bool("managementEvent", true);
    o.str("recipientAccountId", recipient);
    if let Some(vpce) = who.vpce {
        o.str("vpcEndpointId", vpce);
        o.str("vpcEndpointAccountId", recipient);
    }
    o.str("eventCategory", c.category);
    let internal = who.ip.ends_with(".amazonaws.com") || who.ua == "AWS Internal";
    if c.event_type == "AwsApiCall" && !internal {
        o.obj("tlsDetails", |o| {
            o.str("tlsVersion", "TLSv1.3");
            o.str("cipherSuite", "TLS_AES_128_GCM_SHA256");
            o.key("clientProvidedHostHeader").raw("\"").raw(c.svc);
            if !(region == "us-east-1" && global(c.svc, &c.name)) {
                o.raw(".").raw(region);
            }
            o.raw(".amazonaws.com\"");
        });
    }
    if who.console {
        o.str("sessionCredentialFromConsole", "true");
    }
    sink.push_text(t, o.finish());
    event_id
}

fn account_static(a: &str) -> &'static str {
    match a {
        org::DEV => org::DEV,
        org::SEC => org::SEC,
        _ => org::PROD,
    }
}

/// The error CloudTrail records for a call the principal may not make.
pub fn denied(svc: &str, name: &str, arn: &str, scp: bool) -> (String, String) {
    let why = if scp {
        "with an explicit deny in a service control policy".to_string()
    } else {
        format!("because no identity-based policy allows the {svc}:{name} action")
    };
    let action = format!("{svc}:{}", api_action(name));
    match svc {
        "ec2" => (
            "Client.UnauthorizedOperation".into(),
            format!(
                "You are not authorized to perform this operation. User: {arn} is not authorized to perform: {action} {why}"
            ),
        ),
        "iam" | "s3" | "sts" | "cloudtrail" | "organizations" | "account" => (
            "AccessDenied".into(),
            format!("User: {arn} is not authorized to perform: {action} {why}"),
        ),
        _ => (
            "AccessDeniedException".into(),
            format!("User: {arn} is not authorized to perform: {action} {why}"),
        ),
    }
}

/// `GetFunction20150331v2` -> `GetFunction`: the IAM action behind a versioned event name.
pub fn api_action(name: &str) -> &str {
    let cut = name
        .find(|c: char| c.is_ascii_digit())
        .unwrap_or(name.len());
    &name[..cut]
}

/// `DescribeInstances` -> `describe-instances` (for the CLI's `md/command#`).
pub fn kebab(name: &str) -> String {
    let mut out = String::new();
    for (i, c) in api_action(name).chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('-');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// A not-found (or similar benign) error that this call can meet, with its message.
pub fn benign_error(svc: &str, name: &str, req: &Value) -> Option<(String, String)> {
    let bucket = req["bucketName"].as_str().unwrap_or("");
    Some(match (svc, name) {
        ("s3", "GetBucketPolicy") => (
            "NoSuchBucketPolicy".into(),
            "The bucket policy does not exist".into(),
        ),
        ("s3", "GetBucketTagging") => ("NoSuchTagSet".into(), "The TagSet does not exist".into()),
        ("s3", "GetBucketWebsite") => (
            "NoSuchWebsiteConfiguration".into(),
            "The specified bucket does not have a website configuration".into(),
        ),
        ("s3", "GetBucketCors") => (
            "NoSuchCORSConfiguration".into(),
            format!("The CORS configuration does not exist for bucket {bucket}"),
        ),
        ("iam", "GetRole") => (
            "NoSuchEntityException".into(),
            format!(
                "The role with name {} cannot be found.",
                req["roleName"].as_str().unwrap_or("unknown")
            ),
        ),
        ("secretsmanager", _) => (
            "ResourceNotFoundException".into(),
            "Secrets Manager can't find the specified secret.".into(),
        ),
        ("lambda", _) => (
            "ResourceNotFoundException".into(),
            "The resource you requested does not exist.".into(),
        ),
        ("logs", "DescribeLogStreams" | "GetLogEvents" | "FilterLogEvents") => (
            "ResourceNotFoundException".into(),
            "The specified log group does not exist.".into(),
        ),
        ("ssm", "GetParameter") => ("ParameterNotFound".into(), String::new()),
        ("ecr", "DescribeImages") => (
            "ImageNotFoundException".into(),
            "The image requested does not exist in the specified repository.".into(),
        ),
        ("ec2", n) if n.starts_with("Describe") => (
            "Client.RequestLimitExceeded".into(),
            "Request limit exceeded.".into(),
        ),
        _ => return None,
    })
}

fn pick_str(rng: &mut Rng, items: &[&'static str]) -> &'static str {
    items[rng.below(items.len())]
}

fn date_path(t: DateTime<Utc>) -> String {
    t.format("%Y/%m/%d").to_string()
}

/// Request parameters (and response elements) a call of this kind carries in `account`.
pub fn params(
    rng: &mut Rng,
    t: DateTime<Utc>,
    account: &'static str,
    region: &'static str,
    svc: &str,
    name: &str,
) -> (Value, Value) {
    let env = org::env_of(account);
    let bucket = pick_str(rng, org::buckets(account));
    let req = match (svc, name) {
        ("ec2", "DescribeInstances") => match rng.below(3) {
            0 => json!({"instancesSet": {}, "filterSet": {}}),
            1 => {
                json!({"instancesSet": {"items": [{"instanceId": pick_str(rng, org::APP_SERVERS)}]}, "filterSet": {}})
            }
            _ => {
                json!({"instancesSet": {}, "filterSet": {"items": [{"name": "tag:Environment", "valueSet": {"items": [{"value": env}]}}]}})
            }
        },
        ("ec2", "DescribeInstanceStatus") => {
            json!({"instancesSet": {}, "filterSet": {}, "includeAllInstances": false})
        }
        ("ec2", "DescribeSecurityGroups") => {
            json!({"securityGroupSet": {}, "securityGroupIdSet": {}, "filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": vpc(account)}]}}]}})
        }
        ("ec2", "DescribeVpcs") => json!({"vpcSet": {}, "filterSet": {}}),
        ("ec2", "DescribeSubnets") => {
            json!({"subnetSet": {}, "filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": vpc(account)}]}}]}})
        }
        ("ec2", "DescribeVolumes") => json!({"volumeSet": {}, "filterSet": {}}),
        ("ec2", "DescribeSnapshots") => {
            json!({"snapshotSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "sharedUsersSet": {}, "filterSet": {}})
        }
        ("ec2", "DescribeImages") => {
            json!({"executableBySet": {}, "imagesSet": {}, "ownersSet": {"items": [{"owner": "self"}]}, "filterSet": {}})
        }
        ("ec2", "DescribeLaunchTemplates" | "DescribeLaunchTemplateVersions") => {
            json!({"LaunchTemplateName": format!("{env}-app-server")})
        }
        ("ec2", "CreateTags") => {
            json!({"resourcesSet": {"items": [{"resourceId": pick_str(rng, org::APP_SERVERS)}]}, "tagSet": {"items": [{"key": pick_str(rng, &["Owner", "CostCenter", "Patch"]), "value": pick_str(rng, &["platform", "eng-42", "2024-q3"])}]}})
        }
        ("ec2", "DescribeRouteTables" | "DescribeInternetGateways" | "DescribeNatGateways") => {
            json!({"filterSet": {"items": [{"name": "vpc-id", "valueSet": {"items": [{"value": vpc(account)}]}}]}})
        }
        ("ec2", "DescribeVpcAttribute") => {
            json!({"vpcId": vpc(account), "attribute": pick_str(rng, &["enableDnsSupport", "enableDnsHostnames"])})
        }
        ("ecs", "ListServices" | "ListTasks" | "DescribeClusters") => {
            json!({"cluster": env})
        }
        ("ecs", "DescribeServices") => {
            json!({"cluster": env, "services": [pick_str(rng, org::ECS_SERVICES)]})
        }
        ("ecs", "DescribeTasks") => {
            json!({"cluster": env, "tasks": [stable_hex(&format!("task{}", rng.below(6)), 32)]})
        }
        ("ecs", "DescribeTaskDefinition") => {
            json!({"taskDefinition": format!("{env}-{}", pick_str(rng, org::ECS_SERVICES))})
        }
        ("ecs", "UpdateService") => {
            json!({"cluster": env, "service": pick_str(rng, org::ECS_SERVICES), "forceNewDeployment": true})
        }
        ("ecr", "DescribeRepositories") => json!({"repositoryNames": []}),
        ("ecr", "DescribeImages" | "ListImages") => {
            json!({"repositoryName": format!("ridgeline/{}", pick_str(rng, org::ECS_SERVICES)), "maxResults": 100})
        }
        ("lambda", n) if n.starts_with("ListFunctions") => json!({"maxItems": 50}),
        ("lambda", n) if n.starts_with("UpdateFunctionConfiguration") => {
            json!({"functionName": pick_str(rng, org::LAMBDAS), "environment": {}, "timeout": pick_str(rng, &["30", "60"]).parse::<u32>().unwrap_or(30)})
        }
        ("lambda", n) if n.starts_with("ListEventSourceMappings") => {
            json!({"functionName": pick_str(rng, org::LAMBDAS)})
        }
        ("lambda", _) => json!({"functionName": pick_str(rng, org::LAMBDAS)}),
        ("logs", "FilterLogEvents") => {
            json!({"logGroupName": pick_str(rng, org::LOG_GROUPS), "startTime": (t - Duration::minutes(30)).timestamp_millis(), "filterPattern": pick_str(rng, &["ERROR", "\"timed out\"", "?ERROR ?WARN", "order_id"]), "interleaved": true})
        }
        ("logs", "GetLogEvents" | "DescribeLogStreams") => {
            json!({"logGroupName": pick_str(rng, org::LOG_GROUPS), "descending": true, "orderBy": "LastEventTime", "limit": 50})
        }
        ("logs", "DescribeLogGroups") => {
            json!({"logGroupNamePrefix": pick_str(rng, &["/aws/lambda/", "/ecs/"])})
        }
        ("logs", "StartQuery") => {
            json!({"logGroupNames": [pick_str(rng, org::LOG_GROUPS)], "startTime": (t - Duration::hours(1)).timestamp(), "endTime": t.timestamp(), "queryString": "fields @timestamp, @message | filter @message like /ERROR/ | sort @timestamp desc | limit 100"})
        }
        ("logs", "GetQueryResults") => json!({"queryId": rng.uuid()}),
        ("logs", "PutRetentionPolicy") => {
            json!({"logGroupName": pick_str(rng, org::LOG_GROUPS), "retentionInDays": 30})
        }
        ("dynamodb", "DescribeTable" | "DescribeTimeToLive" | "DescribeContinuousBackups") => {
            json!({"tableName": format!("{env}-{}", pick_str(rng, org::TABLES))})
        }
        ("sqs", "GetQueueAttributes") => {
            json!({"queueUrl": format!("https://sqs.{region}.amazonaws.com/{account}/{env}-{}", pick_str(rng, org::QUEUES)), "attributeNames": ["All"]})
        }
        ("sqs", "ListQueues") => json!({"queueNamePrefix": env}),
        ("ssm", "GetParameter") => {
            json!({"name": format!("/{env}/{}", pick_str(rng, org::PARAMS)), "withDecryption": false})
        }
        ("ssm", "GetParameters") => {
            json!({"names": [format!("/{env}/{}", pick_str(rng, org::PARAMS)), format!("/{env}/{}", pick_str(rng, org::PARAMS))], "withDecryption": false})
        }
        ("ssm", "PutParameter") => {
            json!({"name": format!("/{env}/{}", pick_str(rng, org::PARAMS)), "type": "String", "overwrite": true})
        }
        ("ssm", "StartSession") => {
            json!({"target": if account == org::PROD { pick_str(rng, org::APP_SERVERS) } else { org::DEV_BOX }})
        }
        ("ssm", "DescribeInstanceInformation") => json!({"maxResults": 50}),
        ("secretsmanager", "DescribeSecret" | "GetSecretValue") => {
            json!({"secretId": format!("{env}/{}", pick_str(rng, org::SECRETS))})
        }
        ("secretsmanager", "ListSecrets") => json!({"maxResults": 100}),
        ("kms", "DescribeKey" | "GetKeyPolicy" | "GetKeyRotationStatus") => {
            json!({"keyId": kms_key(account, region, pick_str(rng, &["app", "s3", "rds"]))})
        }
        ("s3", "ListBuckets") => json!({"Host": "s3.amazonaws.com"}),
        ("s3", n) if n.starts_with("GetBucket") => {
            let sub = n.trim_start_matches("GetBucket").to_ascii_lowercase();
            let sub = match sub.as_str() {
                "publicaccessblock" => "publicAccessBlock".to_string(),
                "location" => "location".to_string(),
                other => other.to_string(),
            };
            json!({"bucketName": bucket, "Host": format!("{bucket}.s3.{region}.amazonaws.com"), sub: ""})
        }
        ("iam", "GetRole" | "ListAttachedRolePolicies" | "ListRolePolicies") => {
            json!({"roleName": pick_str(rng, org::ROLES)})
        }
        ("iam", "GetPolicy" | "GetPolicyVersion") => {
            let p = pick_str(rng, &["app-server-s3-access", "deploy-ecs", "read-secrets"]);
            if name == "GetPolicy" {
                json!({"policyArn": format!("arn:aws:iam::{account}:policy/{p}")})
            } else {
                json!({"policyArn": format!("arn:aws:iam::{account}:policy/{p}"), "versionId": format!("v{}", 1 + rng.below(4))})
            }
        }
        ("iam", "ListAccessKeys" | "GetUser") => {
            json!({"userName": pick_str(rng, &["dmitri.volkov", "deploy-legacy", "backup-exporter"])})
        }
        ("iam", "GetAccessKeyLastUsed") => {
            json!({"accessKeyId": iam_user_key(account, pick_str(rng, &["dmitri.volkov", "deploy-legacy", "backup-exporter"]))})
        }
        ("iam", "ListRoles" | "ListUsers" | "ListPolicies") => json!({"maxItems": 100}),
        ("elasticloadbalancing", "DescribeTargetHealth") => {
            json!({"targetGroupArn": format!("arn:aws:elasticloadbalancing:{region}:{account}:targetgroup/{env}-{}/{}", pick_str(rng, org::ECS_SERVICES), stable_hex(env, 16))})
        }
        ("elasticloadbalancing", "DescribeLoadBalancers") => {
            json!({"names": [format!("{env}-public")]})
        }
        ("autoscaling", "DescribeAutoScalingGroups" | "DescribeScalingActivities") => {
            json!({"autoScalingGroupNames": [format!("{env}-app-server")]})
        }
        ("autoscaling", "SetDesiredCapacity") => {
            json!({"autoScalingGroupName": format!("{env}-app-server"), "desiredCapacity": 2 + rng.below(2), "honorCooldown": false})
        }
        ("rds", "DescribeDBInstances") => {
            json!({"dBInstanceIdentifier": format!("{env}-orders-db")})
        }
        ("rds", "DescribeEvents") => json!({"duration": 1440, "sourceType": "db-instance"}),
        ("monitoring", "DescribeAlarms") => {
            json!({"stateValue": pick_str(rng, &["ALARM", "OK", "INSUFFICIENT_DATA"]), "maxRecords": 100})
        }
        ("monitoring", "DescribeAlarmHistory") => {
            json!({"alarmName": format!("{env}-{}", pick_str(rng, &["api-5xx", "orders-db-cpu", "queue-depth", "p99-latency"])), "historyItemType": "StateUpdate"})
        }
        ("monitoring", "GetDashboard") => {
            json!({"dashboardName": format!("{env}-{}", pick_str(rng, &["overview", "orders", "ecs"]))})
        }
        ("monitoring", "PutMetricAlarm") => {
            json!({"alarmName": format!("{env}-{}", pick_str(rng, &["api-5xx", "queue-depth", "p99-latency"])), "metricName": "HTTPCode_Target_5XX_Count", "namespace": "AWS/ApplicationELB", "statistic": "Sum", "period": 60, "evaluationPeriods": 5, "threshold": 25.0, "comparisonOperator": "GreaterThanThreshold"})
        }
        ("route53", "ListResourceRecordSets") => {
            json!({"hostedZoneId": format!("Z{}", aws_id("zone", 13))})
        }
        ("cloudformation", "DescribeStacks" | "DescribeStackEvents" | "GetTemplate") => {
            json!({"stackName": format!("{env}-{}", pick_str(rng, &["lambdas", "network", "data"]))})
        }
        ("cloudfront", "GetDistribution" | "GetDistributionConfig") => {
            json!({"id": format!("E{}", aws_id("distribution", 13))})
        }
        ("cloudfront", "CreateInvalidation") => {
            json!({"distributionId": format!("E{}", aws_id("distribution", 13)), "invalidationBatch": {"paths": {"quantity": 1, "items": ["/*"]}, "callerReference": format!("cli-{}", t.timestamp())}})
        }
        ("athena", "StartQueryExecution") => {
            json!({"queryString": pick_str(rng, &["SELECT date, count(*) FROM orders WHERE date > current_date - interval '7' day GROUP BY 1", "SELECT sku, sum(qty) FROM order_lines GROUP BY sku ORDER BY 2 DESC LIMIT 50", "SELECT * FROM events WHERE dt = '2024-07-29' LIMIT 100"]), "queryExecutionContext": {"database": "analytics"}, "workGroup": "primary"})
        }
        ("athena", "GetQueryExecution" | "GetQueryResults") => {
            json!({"queryExecutionId": rng.uuid()})
        }
        ("glue", "GetTable" | "GetPartitions") => {
            json!({"databaseName": "analytics", "name": pick_str(rng, &["orders", "order_lines", "events", "customers"])})
        }
        ("glue", "GetTables") => json!({"databaseName": "analytics"}),
        ("glue", "StartCrawler") => json!({"name": "analytics-raw-crawler"}),
        ("sagemaker", "DescribeTrainingJob") => {
            json!({"trainingJobName": format!("recsys-{}", stable_hex(&format!("job{}", rng.below(5)), 8))})
        }
        (
            "sagemaker",
            "DescribeNotebookInstance" | "StartNotebookInstance" | "StopNotebookInstance",
        ) => {
            json!({"notebookInstanceName": "hiro-research"})
        }
        ("sagemaker", "DescribeEndpoint") => json!({"endpointName": "recsys-staging"}),
        ("guardduty", "ListFindings" | "GetFindingsStatistics" | "GetDetector") => {
            json!({"detectorId": stable_hex(&format!("gd{account}"), 32)})
        }
        ("guardduty", "GetFindings" | "ArchiveFindings") => {
            json!({"detectorId": stable_hex(&format!("gd{account}"), 32), "findingIds": [rng.hex(32)]})
        }
        ("securityhub", "GetFindings") => {
            json!({"filters": {"RecordState": [{"Value": "ACTIVE", "Comparison": "EQUALS"}], "WorkflowStatus": [{"Value": "NEW", "Comparison": "EQUALS"}]}, "maxResults": 100})
        }
        ("cloudtrail", "LookupEvents") => {
            json!({"lookupAttributes": [{"attributeKey": pick_str(rng, &["EventName", "Username", "ResourceName"]), "attributeValue": pick_str(rng, &["ConsoleLogin", "CreateAccessKey", "deploy-legacy"])}], "startTime": ct_time(t - Duration::days(1)), "endTime": ct_time(t)})
        }
        ("cloudtrail", "GetTrailStatus" | "GetEventSelectors") => {
            json!({"name": format!("arn:aws:cloudtrail:eu-west-1:{}:trail/org-trail", org::SEC)})
        }
        ("access-analyzer", "ListFindings" | "ListFindingsV2") => {
            json!({"analyzerArn": format!("arn:aws:access-analyzer:eu-west-1:{account}:analyzer/org-analyzer")})
        }
        ("config", "DescribeComplianceByConfigRule") => {
            json!({"complianceTypes": ["NON_COMPLIANT"]})
        }
        ("acm", "DescribeCertificate") => {
            json!({"certificateArn": format!("arn:aws:acm:us-east-1:{account}:certificate/{}", stable_uuid("cert"))})
        }
        _ => Value::Null,
    };
    let resp = match (svc, name) {
        ("sts", "GetCallerIdentity") => Value::Null,
        ("logs", "StartQuery") => json!({"queryId": rng.uuid()}),
        ("athena", "StartQueryExecution") => json!({"queryExecutionId": rng.uuid()}),
        ("ssm", "StartSession") => json!({
            "sessionId": format!("{}-{}", "user", rng.hex(17)),
            "tokenValue": "Value hidden due to security reasons.",
            "streamUrl": format!("wss://ssmmessages.{region}.amazonaws.com/v1/data-channel/{}", rng.hex(17))
        }),
        ("cloudfront", "CreateInvalidation") => json!({
            "location": format!("https://cloudfront.amazonaws.com/2020-05-31/distribution/E{}/invalidation/I{}", aws_id("distribution", 13), aws_id(&rng.hex(8), 13)),
            "invalidation": {"id": format!("I{}", aws_id(&rng.hex(8), 13)), "status": "InProgress", "createTime": ct_time(t)}
        }),
        ("ecs", "UpdateService") => {
            json!({"service": {"serviceName": req["service"].clone(), "status": "ACTIVE", "desiredCount": 2, "launchType": "FARGATE"}})
        }
        _ => Value::Null,
    };
    (req, resp)
}

pub fn vpc(account: &str) -> String {
    format!("vpc-{}", stable_hex(&format!("vpc{account}"), 17))
}

pub fn kms_key(account: &str, region: &str, alias: &str) -> String {
    format!(
        "arn:aws:kms:{region}:{account}:key/{}",
        stable_uuid(&format!("kms/{account}/{alias}"))
    )
}

/// A CloudWatch Logs stream name as Lambda writes it.
pub fn lambda_stream(t: DateTime<Utc>, rng: &mut Rng) -> String {
    format!("{}/[$LATEST]{}", date_path(t), rng.hex(32))
}
