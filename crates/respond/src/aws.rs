//! The AWS actions: IAM calls through `cloudsentinel_cloud::aws`.

use chrono::{SecondsFormat, Utc};
use cloudsentinel_cloud::aws::Aws;

use crate::{
    Action, ApiCall, Before, DENY_ALL_POLICY, Outcome, PrincipalKind, REVOKE_SESSIONS_POLICY,
    RespondError, Undone,
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
        _ => unreachable!("inline-policy actions are planned above"),
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
        _ => unreachable!("inline-policy actions are handled above"),
    }
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
        _ => Vec::new(),
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
}
