//! The AWS actions: IAM, S3, EC2, CloudTrail and GuardDuty calls through
//! `cloudsentinel_cloud::aws`.

use chrono::{SecondsFormat, Utc};
use cloudsentinel_cloud::aws::ec2::{self, Rule, SnapshotPermissions};
use cloudsentinel_cloud::aws::s3::PublicAccessBlock;
use cloudsentinel_cloud::aws::{Aws, AwsError};

use crate::{
    Action, ApiCall, Before, DENY_ALL_POLICY, InterfaceGroups, Outcome, PrincipalKind,
    QUARANTINE_GROUP_PREFIX, REVOKE_SESSIONS_POLICY, RespondError, SnapshotTaken, Undone,
};

/// The deny-all document.
fn deny_all() -> String {
    r#"{"Version":"2012-10-17","Statement":[{"Sid":"CloudSentinelContainment","Effect":"Deny","Action":"*","Resource":"*"}]}"#
        .to_string()
}

/// The document that denies sessions issued before `now` (what the console's "Revoke active
/// sessions" puts on a role).
fn revoke_before(now: &str) -> String {
    format!(
        r#"{{"Version":"2012-10-17","Statement":[{{"Effect":"Deny","Action":["*"],"Resource":["*"],"Condition":{{"DateLessThan":{{"aws:TokenIssueTime":"{now}"}}}}}}]}}"#
    )
}

fn now_text() -> String {
    Utc::now().to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// The inline policy an action writes: (principal kind, principal name, policy name, document).
fn inline(a: &Action, now: &str) -> Option<(PrincipalKind, String, &'static str, String)> {
    match a {
        Action::AwsDenyAll { kind, name } => {
            Some((*kind, name.clone(), DENY_ALL_POLICY, deny_all()))
        }
        Action::AwsRevokeRoleSessions { role } => Some((
            PrincipalKind::Role,
            role.clone(),
            REVOKE_SESSIONS_POLICY,
            revoke_before(now),
        )),
        _ => None,
    }
}

fn policy_calls(kind: PrincipalKind) -> (&'static str, &'static str, &'static str, &'static str) {
    match kind {
        PrincipalKind::User => (
            "GetUserPolicy",
            "PutUserPolicy",
            "DeleteUserPolicy",
            "UserName",
        ),
        PrincipalKind::Role => (
            "GetRolePolicy",
            "PutRolePolicy",
            "DeleteRolePolicy",
            "RoleName",
        ),
    }
}

pub fn plan(a: &Action) -> Vec<ApiCall> {
    let now = now_text();
    if let Some((kind, name, policy, doc)) = inline(a, &now) {
        let (get, put, _, key) = policy_calls(kind);
        return vec![
            ApiCall::new("iam", get, &[(key, &name), ("PolicyName", policy)]),
            ApiCall::new(
                "iam",
                put,
                &[
                    (key, &name),
                    ("PolicyName", policy),
                    ("PolicyDocument", &doc),
                ],
            ),
        ];
    }
    match a {
        Action::AwsDeactivateAccessKey {
            user,
            access_key_id,
        } => vec![
            ApiCall::new("iam", "ListAccessKeys", &[("UserName", user)]),
            ApiCall::new(
                "iam",
                "UpdateAccessKey",
                &[
                    ("UserName", user),
                    ("AccessKeyId", access_key_id),
                    ("Status", "Inactive"),
                ],
            ),
        ],
        Action::AwsDeleteLoginProfile { user } => vec![
            ApiCall::new("iam", "GetLoginProfile", &[("UserName", user)]),
            ApiCall::new("iam", "DeleteLoginProfile", &[("UserName", user)]),
        ],
        Action::AwsBlockS3PublicAccess { bucket } => vec![
            ApiCall::new("s3", "GetPublicAccessBlock", &[("Bucket", bucket)]),
            put_pab_call(bucket, &PublicAccessBlock::ALL),
        ],
        Action::AwsRemoveSnapshotShare {
            snapshot_id,
            account,
        } => {
            let (accounts, public) = match account.as_deref() {
                Some("all") => (Vec::new(), true),
                Some(a) => (vec![a.to_string()], false),
                None => (vec!["<each account it is shared with>".to_string()], true),
            };
            let mut change = ApiCall::owned(
                "ec2",
                "ModifySnapshotAttribute",
                ec2::snapshot_permission_params(snapshot_id, "remove", &accounts, public),
            );
            if account.is_none() {
                for (k, v) in &mut change.params {
                    if k == "UserId.1" {
                        *k = "UserId.N".into();
                    } else if k == "UserGroup.1" {
                        *v = "all (if it is public)".into();
                    }
                }
            }
            vec![describe_snapshot_call(snapshot_id), change]
        }
        Action::AwsQuarantineInstance {
            instance_id,
            isolation_group,
        } => {
            let mut calls = vec![
                ApiCall::new("ec2", "DescribeInstances", &[("InstanceId.1", instance_id)]),
                ApiCall::new(
                    "ec2",
                    "CreateSnapshot",
                    &[
                        ("VolumeId", "<each EBS volume of the instance>"),
                        (
                            "Description",
                            &snapshot_description(instance_id, "<the volume>"),
                        ),
                    ],
                ),
            ];
            let group = match isolation_group {
                Some(g) => {
                    calls.push(ApiCall::new(
                        "ec2",
                        "DescribeSecurityGroups",
                        &[("GroupId.1", g)],
                    ));
                    g.clone()
                }
                None => {
                    let new = "<the new group>";
                    calls.push(ApiCall::new(
                        "ec2",
                        "CreateSecurityGroup",
                        &[
                            ("GroupName", &quarantine_group_name(instance_id)),
                            ("GroupDescription", &group_description(instance_id)),
                            ("VpcId", "<the instance's VPC>"),
                        ],
                    ));
                    calls.push(ApiCall::new(
                        "ec2",
                        "DescribeSecurityGroups",
                        &[("GroupId.1", new)],
                    ));
                    calls.push(ApiCall::owned(
                        "ec2",
                        "RevokeSecurityGroupEgress",
                        ec2::revoke_egress_params(new, &[Rule::all_outbound()]),
                    ));
                    new.to_string()
                }
            };
            calls.push(ApiCall::owned(
                "ec2",
                "ModifyInstanceAttribute",
                ec2::instance_groups_params(instance_id, std::slice::from_ref(&group)),
            ));
            calls.push(ApiCall::owned(
                "ec2",
                "ModifyNetworkInterfaceAttribute",
                ec2::interface_groups_params(
                    "<each interface, instead of ModifyInstanceAttribute, when it has several>",
                    &[group],
                ),
            ));
            calls
        }
        Action::AwsEnableTrailLogging { trail } => vec![
            ApiCall::new("cloudtrail", "GetTrailStatus", &[("Name", trail)]),
            ApiCall::new("cloudtrail", "StartLogging", &[("Name", trail)]),
        ],
        Action::AwsEnableGuardDuty { detector_id } => vec![
            ApiCall::new("guardduty", "GetDetector", &[("DetectorId", detector_id)]),
            ApiCall::new(
                "guardduty",
                "UpdateDetector",
                &[("DetectorId", detector_id), ("Enable", "true")],
            ),
        ],
        Action::AwsDenyAll { .. } | Action::AwsRevokeRoleSessions { .. } => {
            unreachable!("inline-policy actions are planned above")
        }
        Action::EntraDisableUser { .. }
        | Action::EntraRevokeSessions { .. }
        | Action::EntraRemoveAppPassword { .. } => unreachable!("an Entra ID action: entra.rs"),
        Action::GcpDisableServiceAccountKey { .. } | Action::GcpRemoveIamBinding { .. } => {
            unreachable!("a GCP action: gcp.rs")
        }
    }
}

fn put_pab_call(bucket: &str, config: &PublicAccessBlock) -> ApiCall {
    let mut params = vec![("Bucket", bucket)];
    params.extend(config.to_params());
    ApiCall::new("s3", "PutPublicAccessBlock", &params)
}

fn describe_snapshot_call(snapshot: &str) -> ApiCall {
    ApiCall::new(
        "ec2",
        "DescribeSnapshotAttribute",
        &[
            ("SnapshotId", snapshot),
            ("Attribute", "createVolumePermission"),
        ],
    )
}

/// The isolation group a quarantine creates: one name per instance, so that verify finds it.
fn quarantine_group_name(instance: &str) -> String {
    format!("{QUARANTINE_GROUP_PREFIX}{instance}")
}

fn group_description(instance: &str) -> String {
    format!("CloudSentinel quarantine of {instance}: no inbound or outbound traffic")
}

fn snapshot_description(instance: &str, volume: &str) -> String {
    format!(
        "CloudSentinel quarantine of {instance}: forensic snapshot of {volume} before isolation"
    )
}

/// What removing a snapshot's share takes away, given who it was shared with: the account
/// asked (if it was there; `all` is the public), or every account and the public.
fn shares_removed(account: Option<&str>, before: &SnapshotPermissions) -> (Vec<String>, bool) {
    match account {
        Some("all") => (Vec::new(), before.public),
        Some(a) => (
            before
                .accounts
                .iter()
                .filter(|x| x.as_str() == a)
                .cloned()
                .collect(),
            false,
        ),
        None => (before.accounts.clone(), before.public),
    }
}

pub fn execute(a: &Action, aws: &Aws) -> Outcome {
    let fail = |before: Option<Before>, e: RespondError| Outcome {
        before,
        result: Err(e),
    };
    let now = now_text();
    if let Some((kind, name, policy, doc)) = inline(a, &now) {
        let before = match aws.inline_policy(kind.as_str(), &name, policy) {
            Ok(document) => Before::InlinePolicy { document },
            Err(e) => return fail(None, e.into()),
        };
        let result = aws
            .put_inline_policy(kind.as_str(), &name, policy, &doc)
            .map_err(RespondError::from);
        return Outcome {
            before: Some(before),
            result,
        };
    }
    match a {
        Action::AwsDeactivateAccessKey {
            user,
            access_key_id,
        } => {
            let keys = match aws.list_access_keys(user) {
                Ok(k) => k,
                Err(e) => return fail(None, e.into()),
            };
            let Some(key) = keys.iter().find(|k| &k.id == access_key_id) else {
                return fail(
                    None,
                    RespondError::State(format!(
                        "IAM user {user} has no access key {access_key_id} (its keys: {})",
                        keys.iter()
                            .map(|k| k.id.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )),
                );
            };
            let before = Before::AccessKeyStatus {
                status: key.status.clone(),
            };
            let result = aws
                .set_access_key_status(user, access_key_id, "Inactive")
                .map_err(RespondError::from);
            Outcome {
                before: Some(before),
                result,
            }
        }
        Action::AwsBlockS3PublicAccess { bucket } => {
            let before = match aws.public_access_block(bucket) {
                Ok(configuration) => Before::PublicAccessBlock { configuration },
                Err(e) => return fail(None, e.into()),
            };
            let result = aws
                .put_public_access_block(bucket, &PublicAccessBlock::ALL)
                .map_err(RespondError::from);
            Outcome {
                before: Some(before),
                result,
            }
        }
        Action::AwsRemoveSnapshotShare {
            snapshot_id,
            account,
        } => {
            let now = match aws.snapshot_permissions(snapshot_id) {
                Ok(p) => p,
                Err(e) => return fail(None, e.into()),
            };
            let (accounts, public) = shares_removed(account.as_deref(), &now);
            let result = if accounts.is_empty() && !public {
                Ok(()) // not shared that way: nothing to remove
            } else {
                aws.modify_snapshot_permissions(snapshot_id, "remove", &accounts, public)
                    .map_err(RespondError::from)
            };
            Outcome {
                before: Some(Before::SnapshotPermissions {
                    accounts: now.accounts,
                    public: now.public,
                }),
                result,
            }
        }
        Action::AwsQuarantineInstance {
            instance_id,
            isolation_group,
        } => quarantine(aws, instance_id, isolation_group.as_deref()),
        Action::AwsEnableTrailLogging { trail } => {
            let before = match aws.trail_is_logging(trail) {
                Ok(logging) => Before::TrailLogging { logging },
                Err(e) => return fail(None, e.into()),
            };
            let result = aws.start_logging(trail).map_err(RespondError::from);
            Outcome {
                before: Some(before),
                result,
            }
        }
        Action::AwsEnableGuardDuty { detector_id } => {
            let before = match aws.detector_enabled(detector_id) {
                Ok(enabled) => Before::DetectorEnabled { enabled },
                Err(e) => return fail(None, e.into()),
            };
            let result = aws
                .set_detector_enabled(detector_id, true)
                .map_err(RespondError::from);
            Outcome {
                before: Some(before),
                result,
            }
        }
        Action::AwsDeleteLoginProfile { user } => {
            let before = match aws.login_profile(user) {
                Ok(p) => Before::LoginProfile {
                    existed: p.is_some(),
                    password_reset_required: p.is_some_and(|p| p.password_reset_required),
                },
                Err(e) => return fail(None, e.into()),
            };
            let result = match before {
                Before::LoginProfile { existed: false, .. } => Ok(()), // nothing to delete
                _ => aws.delete_login_profile(user).map_err(RespondError::from),
            };
            Outcome {
                before: Some(before),
                result,
            }
        }
        Action::AwsDenyAll { .. } | Action::AwsRevokeRoleSessions { .. } => {
            unreachable!("inline-policy actions are handled above")
        }
        Action::EntraDisableUser { .. }
        | Action::EntraRevokeSessions { .. }
        | Action::EntraRemoveAppPassword { .. } => unreachable!("an Entra ID action: entra.rs"),
        Action::GcpDisableServiceAccountKey { .. } | Action::GcpRemoveIamBinding { .. } => {
            unreachable!("a GCP action: gcp.rs")
        }
    }
}

/// Quarantine, step by step: the groups before, the snapshots, the isolation group, the move.
/// Each step extends the record first, so that a failure returns everything undo needs.
fn quarantine(aws: &Aws, instance_id: &str, isolation_group: Option<&str>) -> Outcome {
    let instance = match aws.instance(instance_id) {
        Ok(i) => i,
        Err(e) => {
            return Outcome {
                before: None,
                result: Err(e.into()),
            };
        }
    };
    let mut before = Before::Quarantine {
        groups: instance.groups.clone(),
        interfaces: instance
            .interfaces
            .iter()
            .map(|i| InterfaceGroups {
                network_interface_id: i.id.clone(),
                groups: i.groups.clone(),
            })
            .collect(),
        snapshots: Vec::new(),
        created_group: None,
    };
    let result = quarantine_steps(aws, &instance, isolation_group, &mut before);
    Outcome {
        before: Some(before),
        result,
    }
}

fn quarantine_steps(
    aws: &Aws,
    instance: &ec2::Instance,
    isolation_group: Option<&str>,
    before: &mut Before,
) -> Result<(), RespondError> {
    let Before::Quarantine {
        snapshots,
        created_group,
        interfaces,
        ..
    } = before
    else {
        unreachable!("a quarantine records Before::Quarantine")
    };
    let Some(vpc) = instance.vpc_id.as_deref() else {
        return Err(RespondError::State(format!(
            "{} is not in a VPC: security groups cannot isolate it",
            instance.id
        )));
    };
    // Evidence first: a snapshot of every volume, before anything changes.
    for volume in &instance.volumes {
        let snapshot_id =
            aws.create_snapshot(volume, &snapshot_description(&instance.id, volume))?;
        snapshots.push(SnapshotTaken {
            volume_id: volume.clone(),
            snapshot_id,
        });
    }
    let group = match isolation_group {
        Some(g) => {
            let sg = aws.security_group(g)?;
            if sg.vpc_id.as_deref() != Some(vpc) {
                return Err(RespondError::State(format!(
                    "security group {g} is in {}, not in {vpc}, the VPC of {}",
                    sg.vpc_id.as_deref().unwrap_or("no VPC"),
                    instance.id
                )));
            }
            g.to_string()
        }
        None => {
            let name = quarantine_group_name(&instance.id);
            let id = match aws.create_security_group(&name, &group_description(&instance.id), vpc) {
                Ok(id) => id,
                Err(e) if e.code() == Some("InvalidGroup.Duplicate") => {
                    return Err(RespondError::State(format!(
                        "a security group named {name} already exists in {vpc} (an earlier \
                         quarantine not undone?): pass its id as isolation_group to use it"
                    )));
                }
                Err(e) => return Err(e.into()),
            };
            *created_group = Some(id.clone());
            // A new group allows all outbound traffic: revoke what it has.
            let sg = aws.security_group(&id)?;
            if !sg.egress.is_empty() {
                aws.revoke_egress(&id, &sg.egress)?;
            }
            id
        }
    };
    let only = std::slice::from_ref(&group);
    if interfaces.len() > 1 {
        for i in interfaces.iter() {
            aws.set_interface_groups(&i.network_interface_id, only)?;
        }
    } else {
        aws.set_instance_groups(&instance.id, only)?;
    }
    Ok(())
}

/// The isolation group of a quarantine: the one given, or the one it creates (found by name).
/// `None` when there is none (the quarantine did not get that far).
fn isolation_group_of(
    aws: &Aws,
    instance: &ec2::Instance,
    given: Option<&str>,
) -> Result<Option<String>, AwsError> {
    if let Some(g) = given {
        return Ok(Some(g.to_string()));
    }
    let Some(vpc) = instance.vpc_id.as_deref() else {
        return Ok(None);
    };
    let Some(sg) = aws.security_group_named(vpc, &quarantine_group_name(&instance.id))? else {
        return Ok(None);
    };
    // A group CloudSentinel created must still have no rules.
    Ok((sg.ingress.is_empty() && sg.egress.is_empty()).then_some(sg.id))
}

pub fn verify(a: &Action, aws: &Aws) -> Result<bool, RespondError> {
    match a {
        Action::AwsDeactivateAccessKey {
            user,
            access_key_id,
        } => Ok(aws
            .list_access_keys(user)?
            .iter()
            .any(|k| &k.id == access_key_id && k.status == "Inactive")),
        Action::AwsDenyAll { kind, name } => Ok(aws
            .inline_policy(kind.as_str(), name, DENY_ALL_POLICY)?
            .is_some_and(|d| d.contains("\"Deny\"") && d.contains("\"*\""))),
        Action::AwsRevokeRoleSessions { role } => Ok(aws
            .inline_policy("Role", role, REVOKE_SESSIONS_POLICY)?
            .is_some_and(|d| d.contains("aws:TokenIssueTime"))),
        Action::AwsDeleteLoginProfile { user } => Ok(aws.login_profile(user)?.is_none()),
        Action::AwsBlockS3PublicAccess { bucket } => {
            Ok(aws.public_access_block(bucket)? == Some(PublicAccessBlock::ALL))
        }
        Action::AwsRemoveSnapshotShare {
            snapshot_id,
            account,
        } => {
            let now = aws.snapshot_permissions(snapshot_id)?;
            Ok(shares_removed(account.as_deref(), &now) == (Vec::new(), false))
        }
        Action::AwsQuarantineInstance {
            instance_id,
            isolation_group,
        } => {
            let instance = aws.instance(instance_id)?;
            let Some(group) = isolation_group_of(aws, &instance, isolation_group.as_deref())?
            else {
                return Ok(false);
            };
            let only = std::slice::from_ref(&group);
            Ok(if instance.interfaces.len() > 1 {
                instance.interfaces.iter().all(|i| i.groups == only)
            } else {
                instance.groups == only
            })
        }
        Action::AwsEnableTrailLogging { trail } => Ok(aws.trail_is_logging(trail)?),
        Action::AwsEnableGuardDuty { detector_id } => Ok(aws.detector_enabled(detector_id)?),
        Action::EntraDisableUser { .. }
        | Action::EntraRevokeSessions { .. }
        | Action::EntraRemoveAppPassword { .. } => unreachable!("an Entra ID action: entra.rs"),
        Action::GcpDisableServiceAccountKey { .. } | Action::GcpRemoveIamBinding { .. } => {
            unreachable!("a GCP action: gcp.rs")
        }
    }
}

pub fn undo_plan(a: &Action, before: &Before) -> Vec<ApiCall> {
    match (a, before) {
        (
            Action::AwsDeactivateAccessKey {
                user,
                access_key_id,
            },
            Before::AccessKeyStatus { status },
        ) => vec![ApiCall::new(
            "iam",
            "UpdateAccessKey",
            &[
                ("UserName", user),
                ("AccessKeyId", access_key_id),
                ("Status", status),
            ],
        )],
        (_, Before::InlinePolicy { document }) => {
            let Some((kind, name, policy, _)) = inline(a, "") else {
                return Vec::new();
            };
            let (_, put, delete, key) = policy_calls(kind);
            match document {
                Some(doc) => vec![ApiCall::new(
                    "iam",
                    put,
                    &[
                        (key, &name),
                        ("PolicyName", policy),
                        ("PolicyDocument", doc),
                    ],
                )],
                None => vec![ApiCall::new(
                    "iam",
                    delete,
                    &[(key, &name), ("PolicyName", policy)],
                )],
            }
        }
        (Action::AwsDeleteLoginProfile { user }, Before::LoginProfile { existed: true, .. }) => {
            vec![ApiCall::new(
                "iam",
                "CreateLoginProfile",
                &[
                    ("UserName", user),
                    ("Password", "<a new random password>"),
                    ("PasswordResetRequired", "true"),
                ],
            )]
        }
        (
            Action::AwsBlockS3PublicAccess { bucket },
            Before::PublicAccessBlock { configuration },
        ) => {
            vec![match configuration {
                Some(c) => put_pab_call(bucket, c),
                None => ApiCall::new("s3", "DeletePublicAccessBlock", &[("Bucket", bucket)]),
            }]
        }
        (
            Action::AwsRemoveSnapshotShare {
                snapshot_id,
                account,
            },
            Before::SnapshotPermissions { accounts, public },
        ) => {
            let (accounts, public) = shares_removed(
                account.as_deref(),
                &SnapshotPermissions {
                    accounts: accounts.clone(),
                    public: *public,
                },
            );
            if accounts.is_empty() && !public {
                return Vec::new();
            }
            vec![ApiCall::owned(
                "ec2",
                "ModifySnapshotAttribute",
                ec2::snapshot_permission_params(snapshot_id, "add", &accounts, public),
            )]
        }
        (
            Action::AwsQuarantineInstance { instance_id, .. },
            Before::Quarantine {
                groups,
                interfaces,
                created_group,
                ..
            },
        ) => {
            let mut calls: Vec<ApiCall> = if interfaces.len() > 1 {
                interfaces
                    .iter()
                    .map(|i| {
                        ApiCall::owned(
                            "ec2",
                            "ModifyNetworkInterfaceAttribute",
                            ec2::interface_groups_params(&i.network_interface_id, &i.groups),
                        )
                    })
                    .collect()
            } else {
                vec![ApiCall::owned(
                    "ec2",
                    "ModifyInstanceAttribute",
                    ec2::instance_groups_params(instance_id, instance_groups(groups, interfaces)),
                )]
            };
            if let Some(g) = created_group {
                calls.push(ApiCall::new(
                    "ec2",
                    "DeleteSecurityGroup",
                    &[("GroupId", g)],
                ));
            }
            calls
        }
        (Action::AwsEnableTrailLogging { trail }, Before::TrailLogging { logging: false }) => {
            vec![ApiCall::new(
                "cloudtrail",
                "StopLogging",
                &[("Name", trail)],
            )]
        }
        (
            Action::AwsEnableGuardDuty { detector_id },
            Before::DetectorEnabled { enabled: false },
        ) => {
            vec![ApiCall::new(
                "guardduty",
                "UpdateDetector",
                &[("DetectorId", detector_id), ("Enable", "false")],
            )]
        }
        _ => Vec::new(),
    }
}

/// The groups of an instance with one interface: the instance's, or its interface's.
fn instance_groups<'a>(groups: &'a [String], interfaces: &'a [InterfaceGroups]) -> &'a [String] {
    match interfaces {
        [only] if groups.is_empty() => &only.groups,
        _ => groups,
    }
}

pub fn undo(a: &Action, aws: &Aws, before: &Before) -> Result<Undone, RespondError> {
    match (a, before) {
        (
            Action::AwsDeactivateAccessKey {
                user,
                access_key_id,
            },
            Before::AccessKeyStatus { status },
        ) => {
            aws.set_access_key_status(user, access_key_id, status)?;
            Ok(Undone {
                message: format!("access key {access_key_id} of {user} is {status} again"),
                secret: None,
            })
        }
        (_, Before::InlinePolicy { document }) => {
            let (kind, name, policy, _) = inline(a, "")
                .ok_or_else(|| RespondError::State("not an inline-policy action".into()))?;
            match document {
                Some(doc) => {
                    aws.put_inline_policy(kind.as_str(), &name, policy, doc)?;
                    Ok(Undone {
                        message: format!(
                            "inline policy {policy} of {name} is the one it was before"
                        ),
                        secret: None,
                    })
                }
                None => {
                    match aws.delete_inline_policy(kind.as_str(), &name, policy) {
                        Ok(()) => {}
                        // Already gone (the change never happened, or someone removed it).
                        Err(e) if e.code() == Some("NoSuchEntity") => {}
                        Err(e) => return Err(e.into()),
                    }
                    Ok(Undone {
                        message: format!(
                            "inline policy {policy} removed from {name}, which had none of that name"
                        ),
                        secret: None,
                    })
                }
            }
        }
        (Action::AwsDeleteLoginProfile { user }, Before::LoginProfile { existed, .. }) => {
            if !existed {
                return Ok(Undone {
                    message: format!("{user} had no console password: nothing to restore"),
                    secret: None,
                });
            }
            if aws.login_profile(user)?.is_some() {
                return Ok(Undone {
                    message: format!(
                        "{user} has a console password again (set by someone else): left as it is"
                    ),
                    secret: None,
                });
            }
            let password = random_password();
            aws.create_login_profile(user, &password, true)?;
            Ok(Undone {
                message: format!(
                    "{user} has a console password again, but not the old one (AWS cannot restore a deleted password): \
                     a new random one, to be changed at the next sign-in. Hand it over through a trusted channel; it is shown once."
                ),
                secret: Some(password),
            })
        }
        (
            Action::AwsBlockS3PublicAccess { bucket },
            Before::PublicAccessBlock { configuration },
        ) => match configuration {
            Some(c) => {
                aws.put_public_access_block(bucket, c)?;
                Ok(Undone {
                    message: format!(
                        "the public access block of {bucket} is the one it was before"
                    ),
                    secret: None,
                })
            }
            None => {
                match aws.delete_public_access_block(bucket) {
                    Ok(()) => {}
                    Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => {}
                    Err(e) => return Err(e.into()),
                }
                Ok(Undone {
                    message: format!("public access block removed from {bucket}, which had none"),
                    secret: None,
                })
            }
        },
        (
            Action::AwsRemoveSnapshotShare {
                snapshot_id,
                account,
            },
            Before::SnapshotPermissions { accounts, public },
        ) => {
            let (accounts, public) = shares_removed(
                account.as_deref(),
                &SnapshotPermissions {
                    accounts: accounts.clone(),
                    public: *public,
                },
            );
            if accounts.is_empty() && !public {
                return Ok(Undone {
                    message: format!("{snapshot_id} was not shared that way: nothing to restore"),
                    secret: None,
                });
            }
            aws.modify_snapshot_permissions(snapshot_id, "add", &accounts, public)?;
            let mut with: Vec<String> = accounts.iter().map(|a| format!("account {a}")).collect();
            if public {
                with.push("the public".into());
            }
            Ok(Undone {
                message: format!("{snapshot_id} is shared again with {}", with.join(", ")),
                secret: None,
            })
        }
        (
            Action::AwsQuarantineInstance { instance_id, .. },
            Before::Quarantine {
                groups,
                interfaces,
                snapshots,
                created_group,
            },
        ) => {
            if interfaces.len() > 1 {
                for i in interfaces {
                    aws.set_interface_groups(&i.network_interface_id, &i.groups)?;
                }
            } else {
                aws.set_instance_groups(instance_id, instance_groups(groups, interfaces))?;
            }
            let mut message = format!("{instance_id} has the security groups it had before");
            if let Some(g) = created_group {
                match aws.delete_security_group(g) {
                    Ok(()) => message.push_str(&format!("; isolation group {g} deleted")),
                    Err(e) if e.code() == Some("InvalidGroup.NotFound") => {
                        message.push_str(&format!("; isolation group {g} was already gone"))
                    }
                    // The groups are back, which is what matters; the empty group is harmless.
                    Err(e) => message.push_str(&format!(
                        "; isolation group {g} could not be deleted ({e}): delete it later"
                    )),
                }
            }
            if !snapshots.is_empty() {
                let ids: Vec<&str> = snapshots.iter().map(|s| s.snapshot_id.as_str()).collect();
                message.push_str(&format!(
                    "; the forensic snapshots taken are kept as evidence (delete them when the \
                     investigation no longer needs them): {}",
                    ids.join(", ")
                ));
            }
            Ok(Undone {
                message,
                secret: None,
            })
        }
        (Action::AwsEnableTrailLogging { trail }, Before::TrailLogging { logging }) => {
            if *logging {
                return Ok(Undone {
                    message: format!("trail {trail} was logging before: left logging"),
                    secret: None,
                });
            }
            aws.stop_logging(trail)?;
            Ok(Undone {
                message: format!("trail {trail} is not logging, as before"),
                secret: None,
            })
        }
        (Action::AwsEnableGuardDuty { detector_id }, Before::DetectorEnabled { enabled }) => {
            if *enabled {
                return Ok(Undone {
                    message: format!("detector {detector_id} was enabled before: left enabled"),
                    secret: None,
                });
            }
            aws.set_detector_enabled(detector_id, false)?;
            Ok(Undone {
                message: format!("detector {detector_id} is disabled, as before"),
                secret: None,
            })
        }
        _ => Err(RespondError::State(
            "the recorded state does not belong to this action".into(),
        )),
    }
}

/// 24 characters from upper, lower, digits and symbols (IAM's default password policy accepts
/// it, stricter ones usually too).
fn random_password() -> String {
    const SETS: [&[u8]; 4] = [
        b"ABCDEFGHJKLMNPQRSTUVWXYZ",
        b"abcdefghijkmnopqrstuvwxyz",
        b"23456789",
        b"!@#%^&*-_=+",
    ];
    let mut bytes = [0u8; 24];
    getrandom::fill(&mut bytes).expect("the OS has randomness");
    bytes
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let set = SETS[i % SETS.len()];
            set[*b as usize % set.len()] as char
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_mix_every_class() {
        let p = random_password();
        assert_eq!(p.len(), 24);
        assert!(p.chars().any(|c| c.is_ascii_uppercase()));
        assert!(p.chars().any(|c| c.is_ascii_lowercase()));
        assert!(p.chars().any(|c| c.is_ascii_digit()));
        assert!(p.chars().any(|c| !c.is_ascii_alphanumeric()));
        assert_ne!(p, random_password());
    }

    #[test]
    fn undo_puts_back_what_was_there() {
        let a = Action::AwsDenyAll {
            kind: PrincipalKind::User,
            name: "mallory".into(),
        };
        let none = undo_plan(&a, &Before::InlinePolicy { document: None });
        assert_eq!(none[0].operation, "DeleteUserPolicy");
        let some = undo_plan(
            &a,
            &Before::InlinePolicy {
                document: Some("{\"old\":1}".into()),
            },
        );
        assert_eq!(some[0].operation, "PutUserPolicy");
        assert_eq!(
            some[0].params[2],
            ("PolicyDocument".into(), "{\"old\":1}".into())
        );
    }

    fn shown(calls: &[ApiCall]) -> Vec<String> {
        calls.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn snapshot_shares_removed_are_the_ones_added_back() {
        let before = SnapshotPermissions {
            accounts: vec!["111122223333".into(), "444455556666".into()],
            public: true,
        };
        assert_eq!(
            shares_removed(Some("444455556666"), &before),
            (vec!["444455556666".to_string()], false)
        );
        assert_eq!(
            shares_removed(Some("999999999999"), &before),
            (vec![], false)
        );
        assert_eq!(shares_removed(Some("all"), &before), (vec![], true));
        assert_eq!(
            shares_removed(None, &before),
            (before.accounts.clone(), true)
        );
        let all = Action::AwsRemoveSnapshotShare {
            snapshot_id: "snap-1".into(),
            account: None,
        };
        let recorded = Before::SnapshotPermissions {
            accounts: before.accounts.clone(),
            public: true,
        };
        assert_eq!(
            shown(&undo_plan(&all, &recorded)),
            [
                "ec2:ModifySnapshotAttribute SnapshotId=snap-1 Attribute=createVolumePermission \
              OperationType=add UserId.1=111122223333 UserId.2=444455556666 UserGroup.1=all"
            ]
        );
        let one = Action::AwsRemoveSnapshotShare {
            snapshot_id: "snap-1".into(),
            account: Some("999999999999".into()),
        };
        assert!(undo_plan(&one, &recorded).is_empty(), "nothing was removed");
        assert!(
            shown(&plan(&all))[1]
                .contains("OperationType=remove UserId.N=<each account it is shared with>")
        );
    }

    #[test]
    fn quarantine_undo_restores_the_groups_deletes_its_group_and_keeps_the_snapshots() {
        let a = Action::AwsQuarantineInstance {
            instance_id: "i-1".into(),
            isolation_group: None,
        };
        let one = Before::Quarantine {
            groups: vec!["sg-a".into(), "sg-b".into()],
            interfaces: vec![InterfaceGroups {
                network_interface_id: "eni-1".into(),
                groups: vec!["sg-b".into(), "sg-a".into()],
            }],
            snapshots: vec![SnapshotTaken {
                volume_id: "vol-1".into(),
                snapshot_id: "snap-1".into(),
            }],
            created_group: Some("sg-iso".into()),
        };
        assert_eq!(
            shown(&undo_plan(&a, &one)),
            [
                "ec2:ModifyInstanceAttribute InstanceId=i-1 GroupId.1=sg-a GroupId.2=sg-b",
                "ec2:DeleteSecurityGroup GroupId=sg-iso",
            ]
        );
        // Several interfaces, and a failure before any group was created: each interface's
        // groups, nothing to delete, no snapshot call either way.
        let two = Before::Quarantine {
            groups: vec!["sg-a".into()],
            interfaces: vec![
                InterfaceGroups {
                    network_interface_id: "eni-1".into(),
                    groups: vec!["sg-a".into()],
                },
                InterfaceGroups {
                    network_interface_id: "eni-2".into(),
                    groups: vec!["sg-c".into(), "sg-d".into()],
                },
            ],
            snapshots: Vec::new(),
            created_group: None,
        };
        assert_eq!(
            shown(&undo_plan(&a, &two)),
            [
                "ec2:ModifyNetworkInterfaceAttribute NetworkInterfaceId=eni-1 SecurityGroupId.1=sg-a",
                "ec2:ModifyNetworkInterfaceAttribute NetworkInterfaceId=eni-2 SecurityGroupId.1=sg-c SecurityGroupId.2=sg-d",
            ]
        );
        // A record written before the snapshots field existed still reads.
        let old: Before =
            serde_json::from_str(r#"{"kind": "quarantine", "groups": ["sg-a"], "interfaces": []}"#)
                .unwrap();
        assert_eq!(
            shown(&undo_plan(&a, &old)),
            ["ec2:ModifyInstanceAttribute InstanceId=i-1 GroupId.1=sg-a"]
        );
    }

    #[test]
    fn quarantine_plans_evidence_first_then_isolation() {
        let a = Action::AwsQuarantineInstance {
            instance_id: "i-1".into(),
            isolation_group: None,
        };
        let p = shown(&plan(&a));
        let ops: Vec<&str> = p
            .iter()
            .map(|c| c.split_whitespace().next().unwrap())
            .collect();
        assert_eq!(
            ops,
            [
                "ec2:DescribeInstances",
                "ec2:CreateSnapshot",
                "ec2:CreateSecurityGroup",
                "ec2:DescribeSecurityGroups",
                "ec2:RevokeSecurityGroupEgress",
                "ec2:ModifyInstanceAttribute",
                "ec2:ModifyNetworkInterfaceAttribute",
            ]
        );
        assert!(
            p[2].contains("GroupName=cloudsentinel-quarantine-i-1 "),
            "{}",
            p[2]
        );
        assert!(
            p[4].ends_with(
                "IpPermissions.1.IpProtocol=-1 IpPermissions.1.IpRanges.1.CidrIp=0.0.0.0/0"
            ),
            "{}",
            p[4]
        );
        let given = Action::AwsQuarantineInstance {
            instance_id: "i-1".into(),
            isolation_group: Some("sg-iso".into()),
        };
        let p = shown(&plan(&given));
        assert_eq!(p[2], "ec2:DescribeSecurityGroups GroupId.1=sg-iso");
        assert_eq!(
            p[3],
            "ec2:ModifyInstanceAttribute InstanceId=i-1 GroupId.1=sg-iso"
        );
    }

    #[test]
    fn toggles_undo_only_what_they_changed() {
        let trail = Action::AwsEnableTrailLogging {
            trail: "main".into(),
        };
        assert_eq!(
            shown(&undo_plan(&trail, &Before::TrailLogging { logging: false })),
            ["cloudtrail:StopLogging Name=main"]
        );
        assert!(undo_plan(&trail, &Before::TrailLogging { logging: true }).is_empty());
        let gd = Action::AwsEnableGuardDuty {
            detector_id: "d1".into(),
        };
        assert_eq!(
            shown(&undo_plan(&gd, &Before::DetectorEnabled { enabled: false })),
            ["guardduty:UpdateDetector DetectorId=d1 Enable=false"]
        );
        assert!(undo_plan(&gd, &Before::DetectorEnabled { enabled: true }).is_empty());
        let bucket = Action::AwsBlockS3PublicAccess { bucket: "b".into() };
        assert_eq!(
            shown(&plan(&bucket))[1],
            "s3:PutPublicAccessBlock Bucket=b BlockPublicAcls=true IgnorePublicAcls=true \
             BlockPublicPolicy=true RestrictPublicBuckets=true"
        );
        assert_eq!(
            shown(&undo_plan(
                &bucket,
                &Before::PublicAccessBlock {
                    configuration: None
                }
            )),
            ["s3:DeletePublicAccessBlock Bucket=b"]
        );
        let partial = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: false,
            block_public_policy: false,
            restrict_public_buckets: false,
        };
        assert_eq!(
            shown(&undo_plan(
                &bucket,
                &Before::PublicAccessBlock {
                    configuration: Some(partial)
                }
            )),
            [
                "s3:PutPublicAccessBlock Bucket=b BlockPublicAcls=true IgnorePublicAcls=false \
              BlockPublicPolicy=false RestrictPublicBuckets=false"
            ]
        );
    }
}
