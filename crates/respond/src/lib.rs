//! Containment: actions that change a cloud account's state to stop an attack, safe by
//! construction. Each [`Action`]:
//!
//! - **plans**: says the exact API calls it will make before it makes any ([`Action::plan`]);
//! - **executes**: reads the state it is about to change, records it ([`Before`]), then changes
//!   it; a failure half-way still answers what was recorded ([`Outcome`]);
//! - **verifies**: reads the state back and says whether it is as asked;
//! - **undoes**: restores exactly the recorded state ([`Action::undo`]), or, where the cloud
//!   cannot (a deleted console password), says plainly what it did instead.
//!
//! [`Guard`] refuses actions on protected principals (break-glass users, the roles
//! CloudSentinel runs with, organisation admin roles) before any call is made.
//!
//! ```
//! use cloudsentinel_respond::Action;
//! let a: Action = serde_json::from_str(
//!     r#"{"action": "aws.deactivate-access-key", "user": "alice", "access_key_id": "AKIAEXAMPLE"}"#,
//! ).unwrap();
//! let calls: Vec<String> = a.plan().iter().map(ToString::to_string).collect();
//! assert_eq!(calls[1], "iam:UpdateAccessKey UserName=alice AccessKeyId=AKIAEXAMPLE Status=Inactive");
//! ```

mod aws;
mod guard;
pub mod playbook;

use serde::{Deserialize, Serialize};

pub use guard::Guard;

/// The inline policy name of the deny-all action.
pub const DENY_ALL_POLICY: &str = "CloudSentinelDenyAll";
/// The inline policy name AWS's console uses to revoke a role's sessions.
pub const REVOKE_SESSIONS_POLICY: &str = "AWSRevokeOlderSessions";

/// Whether a principal is an IAM user or a role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PrincipalKind {
    User,
    Role,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "User",
            PrincipalKind::Role => "Role",
        }
    }
}

/// A containment action and its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", deny_unknown_fields)]
pub enum Action {
    /// Set an IAM user's access key to Inactive (undo: its status before).
    #[serde(rename = "aws.deactivate-access-key")]
    AwsDeactivateAccessKey { user: String, access_key_id: String },
    /// Attach an inline policy denying every action to a user or role (undo: remove it, or put
    /// back the document of that name that was there).
    #[serde(rename = "aws.deny-all")]
    AwsDenyAll { kind: PrincipalKind, name: String },
    /// Deny a role's sessions issued before now (`aws:TokenIssueTime`), as the console's
    /// "Revoke active sessions" does (undo: remove the policy, or put back the one there was).
    #[serde(rename = "aws.revoke-role-sessions")]
    AwsRevokeRoleSessions { role: String },
    /// Delete a user's console password (undo: a new password the user must reset at the
    /// next sign-in: the old one cannot be restored).
    #[serde(rename = "aws.delete-login-profile")]
    AwsDeleteLoginProfile { user: String },
}

/// The names of the actions, as playbooks and the CLI write them.
pub const ACTIONS: [&str; 4] = [
    "aws.deactivate-access-key",
    "aws.deny-all",
    "aws.revoke-role-sessions",
    "aws.delete-login-profile",
];

/// One API call, as shown before it is made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiCall {
    /// `iam`, `ec2`, ...
    pub service: String,
    pub operation: String,
    pub params: Vec<(String, String)>,
}

impl ApiCall {
    fn new(service: &str, operation: &str, params: &[(&str, &str)]) -> ApiCall {
        ApiCall {
            service: service.into(),
            operation: operation.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }
}

impl std::fmt::Display for ApiCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.service, self.operation)?;
        for (k, v) in &self.params {
            // Policy documents are long: shown whole, on one line.
            write!(f, " {k}={v}")?;
        }
        Ok(())
    }
}

/// The state an action found before it changed anything: what undo restores.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Before {
    /// An access key's status (`Active` or `Inactive`).
    AccessKeyStatus { status: String },
    /// An inline policy of the action's name: its document, or none.
    InlinePolicy { document: Option<String> },
    /// A console password: whether there was one, and whether it had to be reset.
    LoginProfile {
        existed: bool,
        password_reset_required: bool,
    },
}

/// What went wrong.
#[derive(Debug, thiserror::Error)]
pub enum RespondError {
    /// The cloud refused a call for lack of permission: names the IAM action.
    #[error("{action} was denied: {message}")]
    Denied { action: String, message: String },
    #[error("{0}")]
    Cloud(String),
    /// A guardrail refused the action before any call.
    #[error("refused: {0}")]
    Refused(String),
    /// The state is not what the action needs (a key that does not belong to the user).
    #[error("{0}")]
    State(String),
}

impl From<cloudsentinel_cloud::aws::AwsError> for RespondError {
    fn from(e: cloudsentinel_cloud::aws::AwsError) -> RespondError {
        use cloudsentinel_cloud::aws::AwsError;
        match &e {
            AwsError::Api {
                service,
                operation,
                code,
                message,
                ..
            } if matches!(
                code.as_str(),
                "AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation"
            ) =>
            {
                RespondError::Denied {
                    action: format!("{service}:{operation}"),
                    message: message.clone(),
                }
            }
            _ => RespondError::Cloud(e.to_string()),
        }
    }
}

/// How an execution ended: what was recorded before the change, and whether the change was
/// made. A failure after the state was read still carries it, so undo can restore it.
#[derive(Debug)]
pub struct Outcome {
    pub before: Option<Before>,
    pub result: Result<(), RespondError>,
}

/// What undo did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Undone {
    /// In words, plainly (for a console password: that a new one was set and must be reset).
    pub message: String,
    /// A secret the person undoing must hand over (a new console password), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::AwsDeactivateAccessKey { .. } => ACTIONS[0],
            Action::AwsDenyAll { .. } => ACTIONS[1],
            Action::AwsRevokeRoleSessions { .. } => ACTIONS[2],
            Action::AwsDeleteLoginProfile { .. } => ACTIONS[3],
        }
    }

    /// Whether undo restores exactly what was there (only those may run without a person).
    pub fn reversible(&self) -> bool {
        !matches!(self, Action::AwsDeleteLoginProfile { .. })
    }

    /// The principals the action touches, as `user/<name>` or `role/<name>` (for guardrails).
    pub fn targets(&self) -> Vec<String> {
        match self {
            Action::AwsDeactivateAccessKey { user, .. }
            | Action::AwsDeleteLoginProfile { user } => {
                vec![format!("user/{user}")]
            }
            Action::AwsDenyAll { kind, name } => {
                vec![format!("{}/{name}", kind.as_str().to_ascii_lowercase())]
            }
            Action::AwsRevokeRoleSessions { role } => vec![format!("role/{role}")],
        }
    }

    /// A one-line description for people.
    pub fn describe(&self) -> String {
        match self {
            Action::AwsDeactivateAccessKey {
                user,
                access_key_id,
            } => format!("deactivate access key {access_key_id} of IAM user {user}"),
            Action::AwsDenyAll { kind, name } => format!(
                "attach a deny-all inline policy ({DENY_ALL_POLICY}) to IAM {} {name}",
                kind.as_str().to_ascii_lowercase()
            ),
            Action::AwsRevokeRoleSessions { role } => {
                format!("revoke the sessions of IAM role {role} issued before now")
            }
            Action::AwsDeleteLoginProfile { user } => {
                format!("delete the console password of IAM user {user}")
            }
        }
    }

    /// The calls [`execute`](Action::execute) makes, in order: the reads that record the state
    /// before, then the change.
    pub fn plan(&self) -> Vec<ApiCall> {
        aws::plan(self)
    }

    /// Records the state before, then changes it.
    pub fn execute(&self, cloud: &cloudsentinel_cloud::aws::Aws) -> Outcome {
        aws::execute(self, cloud)
    }

    /// Whether the state is now as the action asked.
    pub fn verify(&self, cloud: &cloudsentinel_cloud::aws::Aws) -> Result<bool, RespondError> {
        aws::verify(self, cloud)
    }

    /// The calls [`undo`](Action::undo) makes to restore `before`.
    pub fn undo_plan(&self, before: &Before) -> Vec<ApiCall> {
        aws::undo_plan(self, before)
    }

    /// Restores `before`.
    pub fn undo(
        &self,
        cloud: &cloudsentinel_cloud::aws::Aws,
        before: &Before,
    ) -> Result<Undone, RespondError> {
        aws::undo(self, cloud, before)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actions_read_from_json_and_refuse_unknown_fields() {
        let a: Action = serde_json::from_str(
            r#"{"action": "aws.deny-all", "kind": "Role", "name": "app-server-role"}"#,
        )
        .unwrap();
        assert_eq!(a.targets(), ["role/app-server-role"]);
        assert!(a.reversible());
        assert!(
            serde_json::from_str::<Action>(
                r#"{"action": "aws.deny-all", "kind": "Role", "name": "x", "extra": 1}"#
            )
            .is_err()
        );
        assert!(serde_json::from_str::<Action>(r#"{"action": "aws.nuke"}"#).is_err());
        let login = Action::AwsDeleteLoginProfile { user: "bob".into() };
        assert!(!login.reversible(), "a deleted password cannot be put back");
        for name in ACTIONS {
            assert!(
                [
                    a.name(),
                    login.name(),
                    "aws.deactivate-access-key",
                    "aws.revoke-role-sessions"
                ]
                .contains(&name)
            );
        }
    }

    #[test]
    fn plans_show_reads_then_the_change() {
        let a = Action::AwsRevokeRoleSessions {
            role: "app-server-role".into(),
        };
        let plan: Vec<String> = a.plan().iter().map(ToString::to_string).collect();
        assert!(plan[0].starts_with(
            "iam:GetRolePolicy RoleName=app-server-role PolicyName=AWSRevokeOlderSessions"
        ));
        assert!(plan[1].starts_with("iam:PutRolePolicy RoleName=app-server-role PolicyName=AWSRevokeOlderSessions PolicyDocument="));
        assert!(plan[1].contains("aws:TokenIssueTime"), "{}", plan[1]);
    }
}
