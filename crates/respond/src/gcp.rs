//! The GCP actions: IAM and Resource Manager calls through `cloudsentinel_cloud::gcp_iam`.
//!
//! An IAM policy is read, edited and written back with the etag of the read, so a change made
//! by someone else in between is refused (`ABORTED`) instead of overwritten; the edit is then
//! made once more on a fresh read.

use cloudsentinel_cloud::gcp::GcpError;
use cloudsentinel_cloud::gcp_iam::{Condition, GcpIamClient, Policy};

use crate::{Action, ApiCall, Before, Outcome, RespondError, Undone};

/// The IAM permission an operation of `cloudsentinel_cloud::gcp_iam` needs.
fn permission(operation: &str) -> Option<&'static str> {
    Some(match operation {
        "projects.serviceAccounts.keys.get" => "iam.serviceAccountKeys.get",
        "projects.serviceAccounts.keys.disable" => "iam.serviceAccountKeys.disable",
        "projects.serviceAccounts.keys.enable" => "iam.serviceAccountKeys.enable",
        "projects.getIamPolicy" => "resourcemanager.projects.getIamPolicy",
        "projects.setIamPolicy" => "resourcemanager.projects.setIamPolicy",
        _ => return None,
    })
}

impl From<GcpError> for RespondError {
    fn from(e: GcpError) -> RespondError {
        match &e {
            GcpError::Api {
                service,
                operation,
                status_text,
                message,
                ..
            } if status_text == "PERMISSION_DENIED" => RespondError::Denied {
                action: permission(operation)
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{service} {operation}")),
                message: message.clone(),
            },
            _ => RespondError::Cloud(e.to_string()),
        }
    }
}

fn key_name(project: &str, service_account: &str, key_id: &str) -> String {
    format!("projects/{project}/serviceAccounts/{service_account}/keys/{key_id}")
}

fn key_call(operation: &str, project: &str, service_account: &str, key_id: &str) -> ApiCall {
    ApiCall::owned(
        "iam",
        operation,
        vec![("name".into(), key_name(project, service_account, key_id))],
    )
}

fn get_policy_call(project: &str) -> ApiCall {
    ApiCall::new(
        "cloudresourcemanager",
        "projects.getIamPolicy",
        &[
            ("resource", project),
            ("options.requestedPolicyVersion", "3"),
        ],
    )
}

fn set_policy_call(project: &str, policy: &str) -> ApiCall {
    ApiCall::new(
        "cloudresourcemanager",
        "projects.setIamPolicy",
        &[("resource", project), ("policy", policy)],
    )
}

pub fn plan(a: &Action) -> Vec<ApiCall> {
    match a {
        Action::GcpDisableServiceAccountKey {
            project,
            service_account,
            key_id,
        } => vec![
            key_call(
                "projects.serviceAccounts.keys.get",
                project,
                service_account,
                key_id,
            ),
            key_call(
                "projects.serviceAccounts.keys.disable",
                project,
                service_account,
                key_id,
            ),
        ],
        Action::GcpRemoveIamBinding {
            project,
            role,
            member,
        } => vec![
            get_policy_call(project),
            set_policy_call(
                project,
                &format!(
                    "<the policy read, without {member} in the bindings of {role} (a binding left empty dropped), with the etag read>"
                ),
            ),
        ],
        _ => unreachable!("not a GCP action"),
    }
}

/// Reads the project's policy, edits it and writes it with the etag read; when the write is
/// refused because the policy changed meanwhile (`ABORTED`), once more from a new read. `edit`
/// answers what the caller records and whether there is anything to write (`Err`: nothing to
/// do, with why). Answers what the edit of the last read recorded (`None` when nothing could
/// be read) and the result.
fn edit_policy<T>(
    c: &GcpIamClient,
    project: &str,
    mut edit: impl FnMut(&mut Policy) -> Result<(T, bool), RespondError>,
) -> (Option<T>, Result<(), RespondError>) {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let mut policy = match c.get_iam_policy(project) {
            Ok(p) => p,
            Err(e) => return (None, Err(e.into())),
        };
        let (recorded, write) = match edit(&mut policy) {
            Ok(r) => r,
            Err(e) => return (None, Err(e)),
        };
        if !write {
            return (Some(recorded), Ok(()));
        }
        match c.set_iam_policy(project, &policy) {
            Ok(_) => return (Some(recorded), Ok(())),
            // Changed since the read: what this read recorded was never written.
            Err(e) if attempt == 1 && e.status_text() == Some("ABORTED") => continue,
            Err(e) => return (Some(recorded), Err(e.into())),
        }
    }
}

pub fn execute(a: &Action, c: &GcpIamClient) -> Outcome {
    match a {
        Action::GcpDisableServiceAccountKey {
            project,
            service_account,
            key_id,
        } => {
            let before = match c.key_disabled(project, service_account, key_id) {
                Ok(disabled) => Before::KeyDisabled { disabled },
                Err(e) => {
                    return Outcome {
                        before: None,
                        result: Err(e.into()),
                    };
                }
            };
            Outcome {
                before: Some(before),
                result: c
                    .set_key_disabled(project, service_account, key_id, true)
                    .map_err(Into::into),
            }
        }
        Action::GcpRemoveIamBinding {
            project,
            role,
            member,
        } => {
            let (before, result) = edit_policy(c, project, |policy| {
                let conditions = policy.remove_member(role, member);
                if conditions.is_empty() {
                    return Err(RespondError::State(format!(
                        "{member} does not hold {role} in project {project}: nothing to remove"
                    )));
                }
                Ok((
                    Before::IamBinding {
                        role: role.clone(),
                        member: member.clone(),
                        conditions,
                    },
                    true,
                ))
            });
            Outcome { before, result }
        }
        _ => unreachable!("not a GCP action"),
    }
}

pub fn verify(a: &Action, c: &GcpIamClient) -> Result<bool, RespondError> {
    match a {
        Action::GcpDisableServiceAccountKey {
            project,
            service_account,
            key_id,
        } => Ok(c.key_disabled(project, service_account, key_id)?),
        Action::GcpRemoveIamBinding {
            project,
            role,
            member,
        } => Ok(!c.get_iam_policy(project)?.holds(role, member)),
        _ => unreachable!("not a GCP action"),
    }
}

/// How a binding's condition reads in a plan.
fn describe_conditions(conditions: &[Option<Condition>]) -> String {
    conditions
        .iter()
        .map(|c| match c {
            None => "without a condition".to_string(),
            Some(c) => format!(
                "with condition {:?} ({})",
                c.title.as_deref().unwrap_or(""),
                c.expression
            ),
        })
        .collect::<Vec<_>>()
        .join(", ")
}

pub fn undo_plan(a: &Action, before: &Before) -> Vec<ApiCall> {
    match (a, before) {
        (
            Action::GcpDisableServiceAccountKey {
                project,
                service_account,
                key_id,
            },
            Before::KeyDisabled { disabled: false },
        ) => vec![key_call(
            "projects.serviceAccounts.keys.enable",
            project,
            service_account,
            key_id,
        )],
        (
            Action::GcpRemoveIamBinding {
                project,
                role,
                member,
            },
            Before::IamBinding { conditions, .. },
        ) => vec![
            get_policy_call(project),
            set_policy_call(
                project,
                &format!(
                    "<the policy read, with {member} back in {role} {}, with the etag read>",
                    describe_conditions(conditions)
                ),
            ),
        ],
        _ => Vec::new(),
    }
}

pub fn undo(a: &Action, c: &GcpIamClient, before: &Before) -> Result<Undone, RespondError> {
    let done = |message: String| {
        Ok(Undone {
            message,
            secret: None,
        })
    };
    match (a, before) {
        (
            Action::GcpDisableServiceAccountKey {
                service_account,
                key_id,
                ..
            },
            Before::KeyDisabled { disabled: true },
        ) => done(format!(
            "key {key_id} of {service_account} was disabled before: left disabled"
        )),
        (
            Action::GcpDisableServiceAccountKey {
                project,
                service_account,
                key_id,
            },
            Before::KeyDisabled { disabled: false },
        ) => {
            c.set_key_disabled(project, service_account, key_id, false)?;
            done(format!(
                "key {key_id} of {service_account} is enabled again"
            ))
        }
        (
            Action::GcpRemoveIamBinding {
                project,
                role,
                member,
            },
            Before::IamBinding {
                role: r,
                member: m,
                conditions,
            },
        ) if r == role && m == member => {
            let (added, result) = edit_policy(c, project, |policy| {
                let mut added = 0;
                for condition in conditions {
                    if policy.add_member(role, member, condition.as_ref()) {
                        added += 1;
                    }
                }
                Ok((added, added > 0))
            });
            result?;
            done(match added.unwrap_or(0) {
                0 => format!(
                    "{member} holds {role} in project {project} as before already: nothing to restore"
                ),
                _ => format!(
                    "{member} holds {role} in project {project} again, {}",
                    describe_conditions(conditions)
                ),
            })
        }
        _ => Err(RespondError::State(
            "the recorded state does not belong to this action".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(calls: Vec<ApiCall>) -> Vec<String> {
        calls.iter().map(ToString::to_string).collect()
    }

    #[test]
    fn plans_show_the_key_read_then_its_disabling() {
        let a = Action::GcpDisableServiceAccountKey {
            project: "nw-prod-4821".into(),
            service_account: "etl@nw-prod-4821.iam.gserviceaccount.com".into(),
            key_id: "5f2c0a8e".into(),
        };
        assert_eq!(
            strings(a.plan()),
            [
                "iam:projects.serviceAccounts.keys.get name=projects/nw-prod-4821/serviceAccounts/etl@nw-prod-4821.iam.gserviceaccount.com/keys/5f2c0a8e",
                "iam:projects.serviceAccounts.keys.disable name=projects/nw-prod-4821/serviceAccounts/etl@nw-prod-4821.iam.gserviceaccount.com/keys/5f2c0a8e",
            ]
        );
        assert_eq!(
            strings(a.undo_plan(&Before::KeyDisabled { disabled: false })),
            [
                "iam:projects.serviceAccounts.keys.enable name=projects/nw-prod-4821/serviceAccounts/etl@nw-prod-4821.iam.gserviceaccount.com/keys/5f2c0a8e"
            ]
        );
        assert!(
            a.undo_plan(&Before::KeyDisabled { disabled: true })
                .is_empty(),
            "a key disabled before stays disabled"
        );
        assert!(a.reversible());
        assert_eq!(
            a.targets(),
            ["serviceAccount/etl@nw-prod-4821.iam.gserviceaccount.com"]
        );
    }

    #[test]
    fn plans_show_the_policy_read_then_the_write_with_its_etag() {
        let a = Action::GcpRemoveIamBinding {
            project: "nw-prod-4821".into(),
            role: "roles/owner".into(),
            member: "user:eve@gmail.com".into(),
        };
        let plan = strings(a.plan());
        assert_eq!(
            plan[0],
            "cloudresourcemanager:projects.getIamPolicy resource=nw-prod-4821 options.requestedPolicyVersion=3"
        );
        assert!(
            plan[1].starts_with("cloudresourcemanager:projects.setIamPolicy resource=nw-prod-4821 policy=<the policy read, without user:eve@gmail.com in the bindings of roles/owner"),
            "{}",
            plan[1]
        );
        assert!(plan[1].contains("etag"), "{}", plan[1]);
        let before = Before::IamBinding {
            role: "roles/owner".into(),
            member: "user:eve@gmail.com".into(),
            conditions: vec![
                None,
                Some(Condition {
                    expression: "request.time < timestamp(\"2027-01-01T00:00:00Z\")".into(),
                    title: Some("until 2027".into()),
                    description: None,
                    location: None,
                }),
            ],
        };
        let undo = strings(a.undo_plan(&before));
        assert_eq!(undo[0], plan[0]);
        assert!(
            undo[1].contains("with user:eve@gmail.com back in roles/owner without a condition, with condition \"until 2027\""),
            "{}",
            undo[1]
        );
        assert_eq!(
            a.targets(),
            ["member/user:eve@gmail.com", "user/eve@gmail.com"]
        );
        let public = Action::GcpRemoveIamBinding {
            project: "p".into(),
            role: "roles/viewer".into(),
            member: "allUsers".into(),
        };
        assert_eq!(public.targets(), ["member/allUsers"]);
        assert_eq!(
            public.describe(),
            "remove allUsers from roles/viewer in the IAM policy of GCP project p"
        );
        // The record survives a round trip through JSON, conditions included.
        let back: Before = serde_json::from_value(serde_json::to_value(&before).unwrap()).unwrap();
        assert_eq!(back, before);
    }

    #[test]
    fn denials_name_the_iam_permission() {
        let denied = |service, operation: &'static str, status_text: &str| {
            RespondError::from(GcpError::Api {
                service,
                operation,
                status: 403,
                status_text: status_text.into(),
                message: "Permission denied".into(),
            })
            .to_string()
        };
        assert_eq!(
            denied(
                "iam",
                "projects.serviceAccounts.keys.disable",
                "PERMISSION_DENIED"
            ),
            "iam.serviceAccountKeys.disable was denied: Permission denied"
        );
        assert!(
            denied(
                "cloudresourcemanager",
                "projects.setIamPolicy",
                "PERMISSION_DENIED"
            )
            .starts_with("resourcemanager.projects.setIamPolicy was denied")
        );
        assert_eq!(
            denied("iam", "projects.serviceAccounts.keys.get", "NOT_FOUND"),
            "iam projects.serviceAccounts.keys.get: NOT_FOUND: Permission denied (HTTP 403)"
        );
    }
}
