//! What an alert's evidence says, read for the analyst: the key facts of the call (who or what
//! it was done to), the remedy's placeholders filled in from the record, and the rule's match in
//! words.

use serde_json::Value;

use super::super::Kind;

/// One fact taken from an evidence record: "Shared with account: 999988887777".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fact {
    pub label: &'static str,
    pub value: String,
    /// What the value is, for its pivot; `None` for plain values (a role name, a setting).
    pub kind: Option<Kind>,
    /// Where in the record it was found (`requestParameters.roleArn`).
    pub path: String,
}

/// The values at a path of a record: `a.b.c`, with `[]` after a name to go through every item
/// of an array (`items[].userId`). Strings, numbers and booleans only.
pub fn values_at(raw: &Value, path: &str) -> Vec<String> {
    let mut cur: Vec<&Value> = vec![raw];
    for part in path.split('.') {
        let (name, all) = match part.strip_suffix("[]") {
            Some(n) => (n, true),
            None => (part, false),
        };
        let mut next = Vec::new();
        for v in cur {
            let Some(x) = v.get(name) else { continue };
            match (all, x) {
                (true, Value::Array(items)) => next.extend(items.iter()),
                // CloudTrail writes a one-item list as an object now and then.
                (true, x) => next.push(x),
                (false, x) => next.push(x),
            }
        }
        cur = next;
    }
    let mut out = Vec::new();
    for v in cur {
        let s = match v {
            Value::String(s) => s.clone(),
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            _ => continue,
        };
        if !s.is_empty() && s.len() <= 400 && !out.contains(&s) {
            out.push(s);
        }
    }
    out
}

/// The fields that say what a call was done to, per operation: (operations, label, path, kind).
/// The common cases of the rule packs; anything else falls back to [`generic_facts`].
const BY_OPERATION: &[(&[&str], &str, &str, Option<Kind>)] = {
    use Kind::*;
    &[
        // Sharing.
        (
            &["ModifySnapshotAttribute"],
            "Shared with account",
            "requestParameters.createVolumePermission.add.items[].userId",
            Some(Account),
        ),
        (
            &["ModifySnapshotAttribute"],
            "Shared with group",
            "requestParameters.createVolumePermission.add.items[].group",
            None,
        ),
        (
            &["ModifySnapshotAttribute", "ModifySnapshotTier"],
            "Snapshot",
            "requestParameters.snapshotId",
            Some(Resource),
        ),
        (
            &["ModifyImageAttribute"],
            "Shared with account",
            "requestParameters.launchPermission.add.items[].userId",
            Some(Account),
        ),
        (
            &["ModifyImageAttribute"],
            "Shared with group",
            "requestParameters.launchPermission.add.items[].group",
            None,
        ),
        (
            &["ModifyImageAttribute"],
            "Image",
            "requestParameters.imageId",
            Some(Resource),
        ),
        (
            &[
                "ModifyDBSnapshotAttribute",
                "ModifyDBClusterSnapshotAttribute",
            ],
            "Shared with account",
            "requestParameters.valuesToAdd[]",
            Some(Account),
        ),
        (
            &["ModifyDBSnapshotAttribute"],
            "Snapshot",
            "requestParameters.dBSnapshotIdentifier",
            Some(Resource),
        ),
        (
            &["ModifyDBClusterSnapshotAttribute"],
            "Snapshot",
            "requestParameters.dBClusterSnapshotIdentifier",
            Some(Resource),
        ),
        // Roles and identities.
        (
            &[
                "AssumeRole",
                "AssumeRoleWithSAML",
                "AssumeRoleWithWebIdentity",
            ],
            "Role",
            "requestParameters.roleArn",
            Some(Principal),
        ),
        (
            &["AssumeRole"],
            "Session name",
            "requestParameters.roleSessionName",
            None,
        ),
        (
            &[
                "CreateAccessKey",
                "CreateLoginProfile",
                "UpdateLoginProfile",
                "DeleteLoginProfile",
                "CreateUser",
                "DeleteUser",
                "AttachUserPolicy",
                "PutUserPolicy",
                "AddUserToGroup",
                "DeactivateMFADevice",
                "DeleteAccessKey",
                "UpdateAccessKey",
            ],
            "User",
            "requestParameters.userName",
            Some(Principal),
        ),
        (
            &["CreateAccessKey"],
            "New access key",
            "responseElements.accessKey.accessKeyId",
            None,
        ),
        (
            &["DeleteAccessKey", "UpdateAccessKey"],
            "Access key",
            "requestParameters.accessKeyId",
            None,
        ),
        (
            &[
                "AttachUserPolicy",
                "AttachRolePolicy",
                "AttachGroupPolicy",
                "CreatePolicyVersion",
                "SetDefaultPolicyVersion",
            ],
            "Policy",
            "requestParameters.policyArn",
            Some(Resource),
        ),
        (
            &["PutUserPolicy", "PutRolePolicy", "PutGroupPolicy"],
            "Inline policy",
            "requestParameters.policyName",
            None,
        ),
        (
            &[
                "AttachRolePolicy",
                "PutRolePolicy",
                "UpdateAssumeRolePolicy",
                "CreateRole",
                "DeleteRole",
            ],
            "Role",
            "requestParameters.roleName",
            Some(Principal),
        ),
        (
            &["AttachGroupPolicy", "PutGroupPolicy", "AddUserToGroup"],
            "Group",
            "requestParameters.groupName",
            Some(Resource),
        ),
        // Storage.
        (
            &[
                "PutBucketPolicy",
                "DeleteBucketPolicy",
                "PutBucketAcl",
                "PutBucketPublicAccessBlock",
                "DeleteBucketPublicAccessBlock",
                "PutBucketReplication",
                "PutBucketVersioning",
                "PutBucketLogging",
                "PutBucketEncryption",
                "DeleteBucketEncryption",
                "DeleteBucket",
                "PutBucketLifecycle",
                "PutObject",
                "GetObject",
                "DeleteObject",
            ],
            "Bucket",
            "requestParameters.bucketName",
            Some(Resource),
        ),
        (
            &["PutObject", "GetObject", "DeleteObject"],
            "Object",
            "requestParameters.key",
            None,
        ),
        // Logging and monitoring.
        (
            &[
                "StopLogging",
                "DeleteTrail",
                "UpdateTrail",
                "PutEventSelectors",
            ],
            "Trail",
            "requestParameters.name",
            Some(Resource),
        ),
        (
            &["DeleteDetector", "UpdateDetector"],
            "GuardDuty detector",
            "requestParameters.detectorId",
            Some(Resource),
        ),
        (
            &["DeleteFlowLogs"],
            "Flow logs",
            "requestParameters.DeleteFlowLogsRequest.FlowLogId[]",
            Some(Resource),
        ),
        // Network.
        (
            &[
                "AuthorizeSecurityGroupIngress",
                "AuthorizeSecurityGroupEgress",
            ],
            "Security group",
            "requestParameters.groupId",
            Some(Resource),
        ),
        (
            &["AuthorizeSecurityGroupIngress"],
            "Opened to",
            "requestParameters.ipPermissions.items[].ipRanges.items[].cidrIp",
            None,
        ),
        // Secrets and keys.
        (
            &["GetSecretValue", "PutSecretValue", "DeleteSecret"],
            "Secret",
            "requestParameters.secretId",
            Some(Resource),
        ),
        (
            &["GetParameter", "GetParameters"],
            "Parameter",
            "requestParameters.name",
            Some(Resource),
        ),
        (
            &[
                "ScheduleKeyDeletion",
                "DisableKey",
                "PutKeyPolicy",
                "CreateGrant",
            ],
            "KMS key",
            "requestParameters.keyId",
            Some(Resource),
        ),
        // Compute.
        (
            &["RunInstances"],
            "Instance type",
            "requestParameters.instanceType",
            None,
        ),
        (
            &["RunInstances"],
            "Instance",
            "responseElements.instancesSet.items[].instanceId",
            Some(Resource),
        ),
        (
            &["CreateKeyPair", "ImportKeyPair"],
            "Key pair",
            "requestParameters.keyName",
            Some(Resource),
        ),
        (
            &[
                "CreateFunction20150331",
                "UpdateFunctionCode20150331v2",
                "UpdateFunctionConfiguration20150331v2",
                "AddPermission20150331v2",
            ],
            "Function",
            "requestParameters.functionName",
            Some(Resource),
        ),
        // Sign-in.
        (
            &["ConsoleLogin"],
            "Sign-in result",
            "responseElements.ConsoleLogin",
            None,
        ),
        (
            &["ConsoleLogin"],
            "MFA used",
            "additionalEventData.MFAUsed",
            None,
        ),
    ]
};

/// Request fields whose name says they name the target, in whatever call: `...Name`, `...Arn`,
/// `...Id`, `...Identifier`.
fn target_field(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    ["name", "arn", "id", "identifier", "ids"]
        .iter()
        .any(|s| k.ends_with(s))
        && !matches!(
            k.as_str(),
            "clienttoken" | "requestid" | "nexttoken" | "maxresults"
        )
}

/// Facts any record gives when no row of [`BY_OPERATION`] fits: the request's target fields, the
/// resources it lists, GCP's resource and IAM binding changes, Azure's resource and the targets
/// of a directory change.
fn generic_facts(raw: &Value, out: &mut Vec<Fact>) {
    if let Some(req) = raw["requestParameters"].as_object() {
        for (k, v) in req {
            if !target_field(k) {
                continue;
            }
            let path = format!("requestParameters.{k}");
            let kind = if k.to_ascii_lowercase().ends_with("arn") {
                Some(Kind::Resource)
            } else {
                None
            };
            let values = match v {
                Value::Array(_) => values_at(raw, &format!("{path}[]")),
                _ => values_at(raw, &path),
            };
            for value in values {
                out.push(Fact {
                    label: "Target",
                    value,
                    kind: kind.or(Some(Kind::Resource)),
                    path: path.clone(),
                });
            }
        }
    }
    for value in values_at(raw, "resources[].ARN") {
        out.push(Fact {
            label: "Resource",
            value,
            kind: Some(Kind::Resource),
            path: "resources[].ARN".into(),
        });
    }
    // GCP: the resource, and who was granted or lost which role.
    for value in values_at(raw, "protoPayload.resourceName") {
        out.push(Fact {
            label: "Resource",
            value,
            kind: Some(Kind::Resource),
            path: "protoPayload.resourceName".into(),
        });
    }
    if let Some(deltas) = raw
        .pointer("/protoPayload/serviceData/policyDelta/bindingDeltas")
        .and_then(Value::as_array)
    {
        for d in deltas.iter().take(10) {
            let (Some(action), Some(role), Some(member)) = (
                d["action"].as_str(),
                d["role"].as_str(),
                d["member"].as_str(),
            ) else {
                continue;
            };
            let label = if action == "ADD" {
                "Granted"
            } else {
                "Removed"
            };
            out.push(Fact {
                label,
                value: format!("{role} to {member}"),
                kind: None,
                path: "protoPayload.serviceData.policyDelta.bindingDeltas".into(),
            });
            let member = member.split_once(':').map_or(member, |(_, m)| m);
            out.push(Fact {
                label: "Member",
                value: member.to_string(),
                kind: Some(Kind::Principal),
                path: "protoPayload.serviceData.policyDelta.bindingDeltas[].member".into(),
            });
        }
    }
    // Azure: the resource, and the targets of a directory change.
    for value in values_at(raw, "resourceId") {
        out.push(Fact {
            label: "Resource",
            value,
            kind: Some(Kind::Resource),
            path: "resourceId".into(),
        });
    }
    for value in values_at(raw, "properties.targetResources[].userPrincipalName") {
        out.push(Fact {
            label: "Target user",
            value,
            kind: Some(Kind::Principal),
            path: "properties.targetResources[].userPrincipalName".into(),
        });
    }
    for value in values_at(raw, "properties.targetResources[].displayName") {
        out.push(Fact {
            label: "Target",
            value,
            kind: Some(Kind::Resource),
            path: "properties.targetResources[].displayName".into(),
        });
    }
}

/// The operation of a record: CloudTrail's `eventName`, GCP's `protoPayload.methodName`, Azure's
/// `operationName`.
pub fn operation_of(raw: &Value) -> Option<&str> {
    raw["eventName"]
        .as_str()
        .or_else(|| {
            raw.pointer("/protoPayload/methodName")
                .and_then(Value::as_str)
        })
        .or_else(|| raw["operationName"].as_str())
        .or_else(|| raw.pointer("/operationName/value").and_then(Value::as_str))
}

/// The key facts of one evidence record, most telling first: what the operation was done to
/// (by [`BY_OPERATION`], else the record's target fields), and the foreign account it went to.
/// `account` is the account the call was made in; `fields` are the rule's matched `field=value`
/// pairs (from the alert's explanation), whose request fields count as facts too.
pub fn key_facts(raw: &Value, account: Option<&str>, fields: &[(String, String)]) -> Vec<Fact> {
    let mut out = Vec::new();
    let op = operation_of(raw).unwrap_or("");
    let mut known = false;
    for (ops, label, path, kind) in BY_OPERATION {
        if !ops.contains(&op) {
            continue;
        }
        known = true;
        for value in values_at(raw, path) {
            let label = match (*label, value.as_str()) {
                ("Shared with group", "all") => "Made public",
                (l, _) => l,
            };
            let value = if label == "Made public" {
                "everyone (group all)".to_string()
            } else {
                value
            };
            out.push(Fact {
                label,
                value,
                kind: *kind,
                path: path.replace("[]", ""),
            });
        }
    }
    // The rule's own request fields: what it looked at is what matters.
    for (f, v) in fields {
        if (f.starts_with("requestParameters.") || f.starts_with("responseElements."))
            && v != "null"
            && !out.iter().any(|x| &x.value == v)
        {
            out.push(Fact {
                label: "Matched",
                value: v.clone(),
                kind: None,
                path: f.clone(),
            });
        }
    }
    if !known {
        generic_facts(raw, &mut out);
    }
    // A call that reached another account (CloudTrail writes the recipient's copy).
    if let Some(r) = raw["recipientAccountId"].as_str()
        && account.is_some_and(|a| a != r)
    {
        out.push(Fact {
            label: "Recipient account",
            value: r.to_string(),
            kind: Some(Kind::Account),
            path: "recipientAccountId".into(),
        });
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|f| seen.insert((f.label, f.value.clone())));
    out.truncate(12);
    out
}

/// A piece of a remedy: text, a placeholder filled from the evidence, or one left as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Filled {
        placeholder: String,
        value: String,
        path: String,
    },
    Unfilled(String),
}

/// Where a placeholder's value is in a record, for the names the rule packs use: a path
/// (`requestParameters.name`) is itself; a field name is looked up in the request, the response
/// and then anywhere (when the record has one value for it); a few generic names have fixed
/// places.
fn resolve(name: &str, raw: &Value, ctx: &Context<'_>) -> Option<(String, String)> {
    let first = |path: &str| {
        values_at(raw, path)
            .into_iter()
            .next()
            .map(|v| (v, path.replace("[]", "")))
    };
    if name.contains('.') {
        return first(name).or_else(|| first(&format!("protoPayload.{name}")));
    }
    let fixed: &[&str] = match name {
        "user" | "userName" => &["requestParameters.userName"],
        "role" => &[
            "requestParameters.roleName",
            "protoPayload.serviceData.policyDelta.bindingDeltas[].role",
        ],
        "member" => &["protoPayload.serviceData.policyDelta.bindingDeltas[].member"],
        "bucket" | "bucketName" => &[
            "requestParameters.bucketName",
            "resource.labels.bucket_name",
        ],
        "project" => &["resource.labels.project_id"],
        "zone" => &["resource.labels.zone"],
        "email" => &["protoPayload.authenticationInfo.principalEmail"],
        "region" | "awsRegion" => &["awsRegion"],
        "eventTime" => &["eventTime"],
        "keyId" => &["requestParameters.keyId"],
        "policyArn" => &["requestParameters.policyArn"],
        "upn" => &[
            "properties.targetResources[].userPrincipalName",
            "properties.userPrincipalName",
        ],
        _ => &[],
    };
    for p in fixed {
        if let Some(v) = first(p) {
            return Some(v);
        }
    }
    match name {
        "principal" => return Some((ctx.principal.to_string(), "the alert's principal".into())),
        "rg" => {
            let id = raw["resourceId"].as_str()?;
            let lower = id.to_ascii_lowercase();
            let at = lower.find("/resourcegroups/")? + "/resourcegroups/".len();
            let rg = id[at..].split('/').next()?;
            return Some((rg.to_string(), "resourceId".into()));
        }
        "sink" | "instance" | "dataset" | "topic" | "snapshot" => {
            // GCP: the name after its collection in the resource name (`.../sinks/<sink>`).
            let rn = raw.pointer("/protoPayload/resourceName")?.as_str()?;
            let parts: Vec<&str> = rn.split('/').collect();
            let collection = format!("{name}s");
            let at = parts.iter().position(|p| *p == collection)?;
            return parts
                .get(at + 1)
                .map(|v| (v.to_string(), "protoPayload.resourceName".into()));
        }
        "account" => {
            // The foreign account of a sharing call, when there is exactly one.
            let foreign: Vec<&Fact> = ctx
                .facts
                .iter()
                .filter(|f| f.kind == Some(Kind::Account))
                .collect();
            if let [f] = foreign.as_slice() {
                return Some((f.value.clone(), f.path.clone()));
            }
            return None;
        }
        // Too generic to guess (an account id, a key id, a snapshot id...).
        "id" | "ids" | "key" | "arn" | "n" | "c" | "u" | "new" | "value" | "type" => {
            return None;
        }
        _ => {}
    }
    // A field of that name in the request or response, else anywhere in the record, when it
    // has a single value there.
    for scope in [
        "requestParameters",
        "responseElements",
        "protoPayload.request",
        "properties",
    ] {
        if let Some(v) = first(&format!("{scope}.{name}")) {
            return Some(v);
        }
    }
    let mut found = Vec::new();
    find_key(raw, name, "", 0, &mut found);
    found.dedup_by(|a, b| a.0 == b.0);
    match found.as_slice() {
        [(v, path)] => Some((v.clone(), path.clone())),
        _ => None,
    }
}

/// Every string or number value under a key named `name` (case-insensitive), to depth 6.
fn find_key(v: &Value, name: &str, at: &str, depth: usize, out: &mut Vec<(String, String)>) {
    if depth > 6 || out.len() > 4 {
        return;
    }
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let path = if at.is_empty() {
                    k.clone()
                } else {
                    format!("{at}.{k}")
                };
                if k.eq_ignore_ascii_case(name) {
                    match x {
                        Value::String(s) if !s.is_empty() => out.push((s.clone(), path.clone())),
                        Value::Number(n) => out.push((n.to_string(), path.clone())),
                        _ => {}
                    }
                }
                find_key(x, name, &path, depth + 1, out);
            }
        }
        Value::Array(items) => {
            for x in items.iter().take(20) {
                find_key(x, name, at, depth + 1, out);
            }
        }
        _ => {}
    }
}

/// Placeholder names too generic to look up by themselves.
const GENERIC: &[&str] = &[
    "id", "ids", "name", "key", "arn", "n", "c", "u", "new", "value", "type", "account", "user",
    "role",
];

/// The command-line flag right before a placeholder: `--snapshot-id ` or `--member=` gives
/// `snapshot-id` / `member`.
fn flag_before(text: &str) -> Option<&str> {
    let t = text.trim_end_matches(' ');
    let last = t.rsplit([' ', '\n', '(']).next()?;
    let f = last.strip_prefix("--")?.trim_end_matches('=');
    (!f.is_empty() && f.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')).then_some(f)
}

/// A value by the CLI flag it is given to: the accounts a sharing call added for
/// `--user-ids` / `--values-to-remove`, else the request field of the flag's name in camel case
/// (`--db-snapshot-identifier` is `dBSnapshotIdentifier`, letters' case aside).
fn resolve_flag(flag: &str, raw: &Value, ctx: &Context<'_>) -> Option<(String, String)> {
    if matches!(
        flag,
        "user-ids" | "values-to-remove" | "account-ids" | "account-id"
    ) {
        let foreign: Vec<&Fact> = ctx
            .facts
            .iter()
            .filter(|f| f.kind == Some(Kind::Account) && f.label == "Shared with account")
            .collect();
        return match foreign.as_slice() {
            [f] => Some((f.value.clone(), f.path.clone())),
            _ => None,
        };
    }
    let camel: String = flag
        .split('-')
        .map(|w| w.to_string())
        .collect::<Vec<_>>()
        .join("");
    for scope in ["requestParameters", "responseElements"] {
        let Some(m) = raw[scope].as_object() else {
            continue;
        };
        let singular = camel.strip_suffix('s');
        for (k, v) in m {
            let k_l = k.to_ascii_lowercase();
            if k_l == camel || singular.is_some_and(|s| k_l == s) {
                let path = format!("{scope}.{k}");
                let value = match v {
                    Value::String(s) if !s.is_empty() => s.clone(),
                    Value::Number(n) => n.to_string(),
                    _ => continue,
                };
                return Some((value, path));
            }
        }
    }
    None
}

/// What a remedy's placeholders are filled from besides the record.
pub struct Context<'a> {
    pub principal: &'a str,
    pub facts: &'a [Fact],
}

/// A remedy with its `<placeholders>` filled from an evidence record where it tells their value.
pub fn fill(remedy: &str, raw: Option<&Value>, ctx: &Context<'_>) -> Vec<Piece> {
    let mut out = Vec::new();
    let mut text = String::new();
    let mut rest = remedy;
    while let Some(open) = rest.find('<') {
        let after = &rest[open + 1..];
        let close = after.find('>');
        let name = close.map(|c| &after[..c]);
        match name {
            Some(n)
                if !n.is_empty()
                    && n.len() <= 64
                    && n.chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
                    && n.chars().next().is_some_and(|c| c.is_ascii_alphabetic()) =>
            {
                text.push_str(&rest[..open]);
                if !text.is_empty() {
                    out.push(Piece::Text(std::mem::take(&mut text)));
                }
                let placeholder = format!("<{n}>");
                let flag = flag_before(&rest[..open]).or_else(|| flag_before(&text));
                let found = raw.and_then(|r| {
                    // A generic name goes by the command-line flag before it
                    // (`--snapshot-id <id>`); a specific one by itself first.
                    let by_flag = || flag.and_then(|f| resolve_flag(f, r, ctx));
                    if GENERIC.contains(&n) {
                        by_flag().or_else(|| resolve(n, r, ctx))
                    } else {
                        resolve(n, r, ctx).or_else(by_flag)
                    }
                });
                match found {
                    Some((value, path)) => out.push(Piece::Filled {
                        placeholder,
                        value,
                        path,
                    }),
                    None => out.push(Piece::Unfilled(placeholder)),
                }
                rest = &after[n.len() + 1..];
            }
            _ => {
                text.push_str(&rest[..=open]);
                rest = after;
            }
        }
    }
    text.push_str(rest);
    if !text.is_empty() {
        out.push(Piece::Text(text));
    }
    out
}

/// A rule's match: the selections that matched and the field values (`field`, `value`).
pub type Matched = (Vec<String>, Vec<(String, String)>);

/// A rule alert's explanation taken apart: `matched selection, filter: f=v, g=w` gives the
/// selections and the field values. `None` for other explanations.
pub fn matched(explanation: &str) -> Option<Matched> {
    let rest = explanation.strip_prefix("matched ")?;
    // The explanation may carry notes after the match (`; informational: ...`).
    let rest = rest.split("; ").next().unwrap_or(rest);
    let (sels, fields) = match rest.split_once(": ") {
        Some((s, f)) => (s, f),
        None => (rest, ""),
    };
    let selections = sels.split(", ").map(str::to_string).collect();
    // Values may hold ", ": a piece without `=` continues the value before it.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for piece in fields.split(", ").filter(|p| !p.is_empty()) {
        match piece.split_once('=') {
            Some((f, v)) if !f.contains(' ') => pairs.push((f.to_string(), v.to_string())),
            _ => match pairs.last_mut() {
                Some(last) => {
                    last.1.push_str(", ");
                    last.1.push_str(piece);
                }
                None => return None,
            },
        }
    }
    Some((selections, pairs))
}

/// One matched field in words: "the call is ModifySnapshotAttribute".
pub fn field_in_words(field: &str, value: &str) -> String {
    match (field, value) {
        ("eventName", v) => format!("the call is {v}"),
        ("eventSource", v) => format!("the service is {v}"),
        ("errorCode", "null") => "it succeeded (no error code)".to_string(),
        ("errorCode", v) => format!("it failed with {v}"),
        ("protoPayload.methodName", v) => format!("the method is {v}"),
        ("protoPayload.serviceName", v) => format!("the service is {v}"),
        ("operationName", v) | ("operationName.value", v) => format!("the operation is {v}"),
        (f, "null") => format!("{f} is not set"),
        (f, "true") if f.contains("|exists") => {
            format!("{} is set", f.split('|').next().unwrap_or(f))
        }
        (f, v) => {
            let last = f.rsplit('.').next().unwrap_or(f);
            if f.contains("createVolumePermission.add") || f.contains("launchPermission.add") {
                if v == "all" {
                    return "the permission was added for everyone (group all)".to_string();
                }
                if last == "userId" {
                    return format!("the permission was added for account {v}");
                }
            }
            format!("{f} is {v}")
        }
    }
}

/// A list in words: "a", "a and b", "a, b and c".
pub fn and_list(items: &[String]) -> String {
    match items {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

/// The `detection:` block of a rule's YAML, as written.
pub fn detection_block(yaml: &str) -> Option<String> {
    let mut lines = yaml.lines();
    let mut out = String::new();
    for l in lines.by_ref() {
        if l.trim_end() == "detection:" {
            out.push_str(l);
            out.push('\n');
            break;
        }
    }
    if out.is_empty() {
        return None;
    }
    for l in lines {
        if !l.is_empty() && !l.starts_with(' ') && !l.starts_with('\t') && !l.starts_with('#') {
            break;
        }
        out.push_str(l);
        out.push('\n');
    }
    Some(out.trim_end().to_string())
}

/// A rule's YAML, by where it was loaded from: the built-in pack, or a file (at most 256 KiB).
pub fn rule_yaml(source: &str) -> Option<String> {
    if let Some(path) = source.strip_prefix("builtin:") {
        return cloudsentinel_detect::builtin_rules()
            .iter()
            .find(|(p, _)| *p == path)
            .map(|(_, y)| y.to_string());
    }
    let meta = std::fs::metadata(source).ok()?;
    if !meta.is_file() || meta.len() > 256 * 1024 {
        return None;
    }
    std::fs::read_to_string(source).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn snapshot_share() -> Value {
        json!({
            "eventName": "ModifySnapshotAttribute",
            "eventSource": "ec2.amazonaws.com",
            "recipientAccountId": "111122223333",
            "requestParameters": {
                "snapshotId": "snap-0abc",
                "attributeType": "CREATE_VOLUME_PERMISSION",
                "createVolumePermission": {"add": {"items": [{"userId": "999988887777"}]}}
            }
        })
    }

    #[test]
    fn the_account_a_snapshot_went_to_is_the_key_fact() {
        let facts = key_facts(&snapshot_share(), Some("111122223333"), &[]);
        assert_eq!(facts[0].label, "Shared with account");
        assert_eq!(facts[0].value, "999988887777");
        assert_eq!(facts[0].kind, Some(Kind::Account));
        assert!(
            facts
                .iter()
                .any(|f| f.label == "Snapshot" && f.value == "snap-0abc")
        );
        // Public, not an account.
        let public = json!({"eventName": "ModifySnapshotAttribute", "requestParameters": {
            "snapshotId": "snap-1", "createVolumePermission": {"add": {"items": {"group": "all"}}}}});
        let facts = key_facts(&public, None, &[]);
        assert_eq!(facts[0].label, "Made public", "{facts:?}");
    }

    #[test]
    fn roles_users_and_policies_are_facts_and_unknown_calls_fall_back_to_their_targets() {
        let assume = json!({"eventName": "AssumeRole", "requestParameters": {
            "roleArn": "arn:aws:iam::1:role/admin", "roleSessionName": "s"}});
        let f = key_facts(&assume, None, &[]);
        assert_eq!(
            (f[0].label, f[0].value.as_str()),
            ("Role", "arn:aws:iam::1:role/admin")
        );
        let key = json!({"eventName": "CreateAccessKey", "requestParameters": {"userName": "bob"},
            "responseElements": {"accessKey": {"accessKeyId": "AKIANEW"}}});
        let f = key_facts(&key, None, &[]);
        assert_eq!((f[0].label, f[0].value.as_str()), ("User", "bob"));
        assert!(f.iter().any(|x| x.value == "AKIANEW"));
        let attach = json!({"eventName": "AttachUserPolicy", "requestParameters": {
            "userName": "bob", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}});
        let f = key_facts(&attach, None, &[]);
        assert!(
            f.iter()
                .any(|x| x.label == "Policy" && x.value.ends_with("AdministratorAccess"))
        );
        let other = json!({"eventName": "DeleteWidget", "requestParameters": {
            "widgetName": "w1", "clientToken": "x"}});
        let f = key_facts(&other, None, &[]);
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].value, "w1");
    }

    #[test]
    fn placeholders_are_filled_from_the_record_and_unknown_ones_stay() {
        let raw = snapshot_share();
        let facts = key_facts(&raw, Some("111122223333"), &[]);
        let ctx = Context {
            principal: "arn:aws:iam::111122223333:user/mallory",
            facts: &facts,
        };
        let pieces = fill(
            "aws ec2 describe-snapshot-attribute --snapshot-id <snapshotId> --user-ids <id> \
             for <account> by <principal> in <requestParameters.attributeType> key <id> a < b",
            Some(&raw),
            &ctx,
        );
        let filled: Vec<(&str, &str)> = pieces
            .iter()
            .filter_map(|p| match p {
                Piece::Filled {
                    placeholder, value, ..
                } => Some((placeholder.as_str(), value.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(
            filled,
            vec![
                ("<snapshotId>", "snap-0abc"),
                ("<id>", "999988887777"),
                ("<account>", "999988887777"),
                ("<principal>", "arn:aws:iam::111122223333:user/mallory"),
                (
                    "<requestParameters.attributeType>",
                    "CREATE_VOLUME_PERMISSION"
                ),
            ]
        );
        assert!(pieces.contains(&Piece::Unfilled("<id>".into())));
        assert_eq!(pieces.last(), Some(&Piece::Text(" a < b".into())));
        // Without a record nothing is filled.
        assert!(
            fill("x <snapshotId>", None, &ctx)
                .iter()
                .all(|p| !matches!(p, Piece::Filled { .. }))
        );
    }

    #[test]
    fn a_match_reads_as_words() {
        let (sels, fields) = matched(
            "matched selection, selection_add: eventName=ModifySnapshotAttribute, \
             requestParameters.createVolumePermission.add.items.userId=999988887777, errorCode=null",
        )
        .unwrap();
        assert_eq!(sels, vec!["selection", "selection_add"]);
        let words: Vec<String> = fields.iter().map(|(f, v)| field_in_words(f, v)).collect();
        assert_eq!(
            and_list(&words),
            "the call is ModifySnapshotAttribute, the permission was added for account \
             999988887777 and it succeeded (no error code)"
        );
        assert!(matched("anomaly score 0.7").is_none());
        let (_, f) = matched("matched sel: a=x, y, b=z").unwrap();
        assert_eq!(
            f,
            vec![("a".into(), "x, y".into()), ("b".into(), "z".into())]
        );
    }

    #[test]
    fn the_detection_block_is_cut_from_the_rule() {
        let yaml = "title: T\ndetection:\n  selection:\n    eventName: X\n  condition: selection\nlevel: high\n";
        assert_eq!(
            detection_block(yaml).unwrap(),
            "detection:\n  selection:\n    eventName: X\n  condition: selection"
        );
        let builtin = cloudsentinel_detect::builtin_rules()[0];
        assert!(rule_yaml(&format!("builtin:{}", builtin.0)).is_some());
    }
}
