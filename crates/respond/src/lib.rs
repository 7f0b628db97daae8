//! Containment: actions that change a cloud account's state to stop an attack, safe by
//! construction. Each [`Action`]:
//!
//! - **plans**: says the exact API calls it will make before it makes any ([`Action::plan`]);
//! - **executes**: reads the state it is about to change, records it ([`Before`]), then changes
//!   it; a failure half-way still answers what was recorded ([`Outcome`]);
//! - **verifies**: reads the state back and says whether it is as asked;
//! - **undoes**: restores exactly the recorded state ([`Action::undo`]), or, where the cloud
//!   cannot (a deleted console password), says plainly what it did instead (the forensic
//!   snapshots a quarantine took are left, and undo says so).
//!
//! The actions act on AWS (`aws.*`), Entra ID through Microsoft Graph (`entra.*`) and Google
//! Cloud IAM (`gcp.*`), each with the client [`Clients`] hands it.
//!
//! [`Guard`] refuses actions on protected principals and resources (break-glass users, the roles
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
mod entra;
mod gcp;
mod guard;
pub mod playbook;

use serde::{Deserialize, Serialize};

pub use guard::Guard;

/// The inline policy name of the deny-all action.
pub const DENY_ALL_POLICY: &str = "CloudSentinelDenyAll";
/// The inline policy name AWS's console uses to revoke a role's sessions.
pub const REVOKE_SESSIONS_POLICY: &str = "AWSRevokeOlderSessions";
/// The name of the isolation security group a quarantine creates is this and the instance id.
pub const QUARANTINE_GROUP_PREFIX: &str = "cloudsentinel-quarantine-";

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
    /// Turn on all four settings of a bucket's public access block (undo: the configuration
    /// before, or none).
    #[serde(rename = "aws.block-s3-public-access")]
    AwsBlockS3PublicAccess { bucket: String },
    /// Stop sharing an EBS snapshot: with one account, with the public (`account` `all`), or,
    /// without `account`, with every account and the public (undo: share again with exactly
    /// the ones removed).
    #[serde(rename = "aws.remove-snapshot-share")]
    AwsRemoveSnapshotShare {
        snapshot_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        account: Option<String>,
    },
    /// Snapshot an instance's EBS volumes, then move it (each network interface) into an
    /// isolation security group: the one given, or a new one without rules (undo: the groups
    /// before; the snapshots are left as evidence).
    #[serde(rename = "aws.quarantine-instance")]
    AwsQuarantineInstance {
        instance_id: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        isolation_group: Option<String>,
    },
    /// Start a CloudTrail trail's logging (undo: stop it, if it was not logging before).
    #[serde(rename = "aws.enable-trail-logging")]
    AwsEnableTrailLogging { trail: String },
    /// Enable a GuardDuty detector (undo: disable it, if it was disabled before).
    #[serde(rename = "aws.enable-guardduty")]
    AwsEnableGuardDuty { detector_id: String },
    /// Block an Entra ID user's sign-ins (undo: the state before).
    #[serde(rename = "entra.disable-user")]
    EntraDisableUser { user: String },
    /// Revoke an Entra ID user's refresh tokens and session cookies (undo: none possible; the
    /// user signs in again).
    #[serde(rename = "entra.revoke-sessions")]
    EntraRevokeSessions { user: String },
    /// Remove a password credential from an application (undo: a new secret, same name and
    /// expiry: the removed one cannot come back).
    #[serde(rename = "entra.remove-app-password")]
    EntraRemoveAppPassword { application: String, key_id: String },
    /// Disable a GCP service account's key (undo: enable it again, if it was enabled before).
    #[serde(rename = "gcp.disable-service-account-key")]
    GcpDisableServiceAccountKey {
        project: String,
        /// The service account's e-mail.
        service_account: String,
        key_id: String,
    },
    /// Remove a member from a role in a GCP project's IAM policy: from every binding of the
    /// role, with or without a condition (undo: the member back in each of those bindings).
    #[serde(rename = "gcp.remove-iam-binding")]
    GcpRemoveIamBinding {
        project: String,
        /// `roles/owner`, ...
        role: String,
        /// As IAM writes it: `user:eve@gmail.com`, `serviceAccount:<e-mail>`, `group:...`.
        member: String,
    },
}

/// The names of the actions, as playbooks and the CLI write them.
pub const ACTIONS: [&str; 14] = [
    "aws.deactivate-access-key",
    "aws.deny-all",
    "aws.revoke-role-sessions",
    "aws.delete-login-profile",
    "aws.block-s3-public-access",
    "aws.remove-snapshot-share",
    "aws.quarantine-instance",
    "aws.enable-trail-logging",
    "aws.enable-guardduty",
    "entra.disable-user",
    "entra.revoke-sessions",
    "entra.remove-app-password",
    "gcp.disable-service-account-key",
    "gcp.remove-iam-binding",
];

/// The actions whose undo cannot restore exactly what was there: a deleted console password
/// (undo sets a new one), revoked sessions (nothing to restore), a removed application secret
/// (undo adds a new one).
pub const IRREVERSIBLE: [&str; 3] = [
    "aws.delete-login-profile",
    "entra.revoke-sessions",
    "entra.remove-app-password",
];

/// Whether undo of the action of this name restores exactly what was there (only those may
/// run without a person).
pub fn reversible(action: &str) -> bool {
    ACTIONS.contains(&action) && !IRREVERSIBLE.contains(&action)
}

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

    fn owned(service: &str, operation: &str, params: Vec<(String, String)>) -> ApiCall {
        ApiCall {
            service: service.into(),
            operation: operation.into(),
            params,
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
    /// A bucket's public access block: its four settings, or none.
    PublicAccessBlock {
        configuration: Option<cloudsentinel_cloud::aws::s3::PublicAccessBlock>,
    },
    /// Who could create volumes from a snapshot: accounts, and whether anyone could (`all`).
    SnapshotPermissions { accounts: Vec<String>, public: bool },
    /// A quarantine: the instance's security groups before (the instance's, and each network
    /// interface's), then what it did so far, recorded step by step so that undo works after
    /// a failure half-way.
    Quarantine {
        /// The instance's groups (of its primary interface).
        groups: Vec<String>,
        /// Each network interface's groups, by device index.
        interfaces: Vec<InterfaceGroups>,
        /// The snapshots taken of its volumes (left by undo: evidence).
        #[serde(default)]
        snapshots: Vec<SnapshotTaken>,
        /// The isolation group this run created, if it created one (undo deletes it).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created_group: Option<String>,
    },
    /// Whether a trail was logging.
    TrailLogging { logging: bool },
    /// Whether a GuardDuty detector was enabled.
    DetectorEnabled { enabled: bool },
    /// Whether an Entra ID user could sign in.
    AccountEnabled { enabled: bool },
    /// A removed application password's name and expiry (its secret is never readable).
    AppPassword {
        display_name: Option<String>,
        end: Option<String>,
    },
    /// Whether a GCP service account key was disabled.
    KeyDisabled { disabled: bool },
    /// A member's place in a role of a GCP project's IAM policy: one entry per binding of the
    /// role that listed it, the binding's condition (`null`: the binding without one).
    IamBinding {
        role: String,
        member: String,
        conditions: Vec<Option<cloudsentinel_cloud::gcp_iam::Condition>>,
    },
    /// Nothing can be recorded or restored (revoked sessions).
    Nothing,
}

/// A network interface's security groups.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceGroups {
    pub network_interface_id: String,
    pub groups: Vec<String>,
}

/// A snapshot a quarantine took of a volume.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SnapshotTaken {
    pub volume_id: String,
    pub snapshot_id: String,
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

/// The IAM action that allows an API operation, where the two names differ (S3's).
fn iam_action(service: &str, operation: &str) -> String {
    let action = match (service, operation) {
        ("s3", "GetPublicAccessBlock") => "GetBucketPublicAccessBlock",
        ("s3", "PutPublicAccessBlock" | "DeletePublicAccessBlock") => "PutBucketPublicAccessBlock",
        ("s3", "ListObjectsV2") => "ListBucket",
        _ => operation,
    };
    format!("{service}:{action}")
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
                    action: iam_action(service, operation),
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
            Action::AwsBlockS3PublicAccess { .. } => ACTIONS[4],
            Action::AwsRemoveSnapshotShare { .. } => ACTIONS[5],
            Action::AwsQuarantineInstance { .. } => ACTIONS[6],
            Action::AwsEnableTrailLogging { .. } => ACTIONS[7],
            Action::AwsEnableGuardDuty { .. } => ACTIONS[8],
            Action::EntraDisableUser { .. } => ACTIONS[9],
            Action::EntraRevokeSessions { .. } => ACTIONS[10],
            Action::EntraRemoveAppPassword { .. } => ACTIONS[11],
            Action::GcpDisableServiceAccountKey { .. } => ACTIONS[12],
            Action::GcpRemoveIamBinding { .. } => ACTIONS[13],
        }
    }

    /// Whether undo restores exactly what was there (only those may run without a person). A
    /// quarantine's undo restores the groups and removes the group it created; the snapshots
    /// it took stay, as evidence, changing nothing the instance could do.
    pub fn reversible(&self) -> bool {
        reversible(self.name())
    }

    /// What the action touches (for guardrails): `user/<name>`, `role/<name>`,
    /// `instance/<id>`, `bucket/<name>`, `snapshot/<id>`, `trail/<name>`, `detector/<id>`,
    /// `application/<id>`, `serviceAccount/<e-mail>`; a GCP IAM member as `member/<member>`
    /// (`member/user:eve@gmail.com`) and, for users, service accounts, groups and domains, also
    /// as `<kind>/<id>` (`user/eve@gmail.com`), so that one pattern covers a principal
    /// everywhere.
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
            Action::AwsBlockS3PublicAccess { bucket } => vec![format!("bucket/{bucket}")],
            Action::AwsRemoveSnapshotShare { snapshot_id, .. } => {
                vec![format!("snapshot/{snapshot_id}")]
            }
            Action::AwsQuarantineInstance { instance_id, .. } => {
                vec![format!("instance/{instance_id}")]
            }
            // A trail is named by its name or its ARN (`arn:aws:cloudtrail:...:trail/<name>`).
            Action::AwsEnableTrailLogging { trail } => vec![format!(
                "trail/{}",
                trail
                    .rsplit_once(":trail/")
                    .map_or(trail.as_str(), |(_, n)| n)
            )],
            Action::AwsEnableGuardDuty { detector_id } => vec![format!("detector/{detector_id}")],
            Action::EntraDisableUser { user } | Action::EntraRevokeSessions { user } => {
                vec![format!("user/{user}")]
            }
            Action::EntraRemoveAppPassword { application, .. } => {
                vec![format!("application/{application}")]
            }
            Action::GcpDisableServiceAccountKey {
                service_account, ..
            } => vec![format!("serviceAccount/{service_account}")],
            Action::GcpRemoveIamBinding { member, .. } => {
                let mut targets = vec![format!("member/{member}")];
                if let Some((kind, id)) = member.split_once(':')
                    && ["user", "serviceAccount", "group", "domain"].contains(&kind)
                {
                    targets.push(format!("{kind}/{id}"));
                }
                targets
            }
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
            Action::AwsBlockS3PublicAccess { bucket } => {
                format!("block all public access to S3 bucket {bucket}")
            }
            Action::AwsRemoveSnapshotShare {
                snapshot_id,
                account,
            } => match account.as_deref() {
                Some("all") => format!("stop sharing EBS snapshot {snapshot_id} publicly"),
                Some(a) => format!("stop sharing EBS snapshot {snapshot_id} with account {a}"),
                None => format!(
                    "stop sharing EBS snapshot {snapshot_id} with every account and the public"
                ),
            },
            Action::AwsQuarantineInstance {
                instance_id,
                isolation_group,
            } => format!(
                "snapshot the EBS volumes of EC2 instance {instance_id}, then isolate it in {}",
                match isolation_group {
                    Some(g) => format!("security group {g}"),
                    None => format!(
                        "a new security group without rules ({QUARANTINE_GROUP_PREFIX}{instance_id})"
                    ),
                }
            ),
            Action::AwsEnableTrailLogging { trail } => {
                format!("start logging of CloudTrail trail {trail}")
            }
            Action::AwsEnableGuardDuty { detector_id } => {
                format!("enable GuardDuty detector {detector_id}")
            }
            Action::EntraDisableUser { user } => format!("block sign-ins of Entra ID user {user}"),
            Action::EntraRevokeSessions { user } => {
                format!("revoke the sign-in sessions of Entra ID user {user}")
            }
            Action::EntraRemoveAppPassword {
                application,
                key_id,
            } => format!("remove password credential {key_id} of application {application}"),
            Action::GcpDisableServiceAccountKey {
                project,
                service_account,
                key_id,
            } => format!(
                "disable key {key_id} of GCP service account {service_account} (project {project})"
            ),
            Action::GcpRemoveIamBinding {
                project,
                role,
                member,
            } => format!("remove {member} from {role} in the IAM policy of GCP project {project}"),
        }
    }

    fn cloud(&self) -> Cloud {
        match self.name().split_once('.').map(|(c, _)| c) {
            Some("entra") => Cloud::Entra,
            Some("gcp") => Cloud::Gcp,
            _ => Cloud::Aws,
        }
    }

    /// The calls [`execute`](Action::execute) makes, in order: the reads that record the state
    /// before, then the change.
    pub fn plan(&self) -> Vec<ApiCall> {
        match self.cloud() {
            Cloud::Aws => aws::plan(self),
            Cloud::Entra => entra::plan(self),
            Cloud::Gcp => gcp::plan(self),
        }
    }

    /// Records the state before, then changes it.
    pub fn execute(&self, clients: &Clients<'_>) -> Outcome {
        let result = match self.cloud() {
            Cloud::Aws => clients.aws().map(|a| aws::execute(self, a)),
            Cloud::Entra => clients.graph().map(|g| entra::execute(self, g)),
            Cloud::Gcp => clients.gcp().map(|g| gcp::execute(self, g)),
        };
        result.unwrap_or_else(|e| Outcome {
            before: None,
            result: Err(e),
        })
    }

    /// Whether the state is now as the action asked.
    pub fn verify(&self, clients: &Clients<'_>) -> Result<bool, RespondError> {
        match self.cloud() {
            Cloud::Aws => aws::verify(self, clients.aws()?),
            Cloud::Entra => entra::verify(self, clients.graph()?),
            Cloud::Gcp => gcp::verify(self, clients.gcp()?),
        }
    }

    /// The calls [`undo`](Action::undo) makes to restore `before`.
    pub fn undo_plan(&self, before: &Before) -> Vec<ApiCall> {
        match self.cloud() {
            Cloud::Aws => aws::undo_plan(self, before),
            Cloud::Entra => entra::undo_plan(self, before),
            Cloud::Gcp => gcp::undo_plan(self, before),
        }
    }

    /// Restores `before`.
    pub fn undo(&self, clients: &Clients<'_>, before: &Before) -> Result<Undone, RespondError> {
        match self.cloud() {
            Cloud::Aws => aws::undo(self, clients.aws()?, before),
            Cloud::Entra => entra::undo(self, clients.graph()?, before),
            Cloud::Gcp => gcp::undo(self, clients.gcp()?, before),
        }
    }
}

/// Which cloud an action acts on, and so which client it needs.
#[derive(Clone, Copy)]
enum Cloud {
    Aws,
    Entra,
    Gcp,
}

/// The clients an action may need: AWS for `aws.*`, Microsoft Graph for `entra.*`, Google
/// Cloud IAM for `gcp.*`.
#[derive(Default, Clone, Copy)]
pub struct Clients<'a> {
    pub aws: Option<&'a cloudsentinel_cloud::aws::Aws>,
    pub graph: Option<&'a cloudsentinel_cloud::graph::GraphClient>,
    pub gcp: Option<&'a cloudsentinel_cloud::gcp_iam::GcpIamClient>,
}

impl<'a> Clients<'a> {
    fn aws(&self) -> Result<&'a cloudsentinel_cloud::aws::Aws, RespondError> {
        self.aws
            .ok_or_else(|| RespondError::Refused("no AWS client: this is an AWS action".into()))
    }

    fn graph(&self) -> Result<&'a cloudsentinel_cloud::graph::GraphClient, RespondError> {
        self.graph.ok_or_else(|| {
            RespondError::Refused(
                "no Microsoft Graph credentials are configured (respond.entra)".into(),
            )
        })
    }

    fn gcp(&self) -> Result<&'a cloudsentinel_cloud::gcp_iam::GcpIamClient, RespondError> {
        self.gcp.ok_or_else(|| {
            RespondError::Refused("no GCP credentials are configured (respond.gcp)".into())
        })
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
        let quarantine: Action = serde_json::from_str(
            r#"{"action": "aws.quarantine-instance", "instance_id": "i-0abc"}"#,
        )
        .unwrap();
        assert_eq!(
            quarantine,
            Action::AwsQuarantineInstance {
                instance_id: "i-0abc".into(),
                isolation_group: None
            }
        );
        assert_eq!(quarantine.targets(), ["instance/i-0abc"]);
        assert!(quarantine.reversible());
        let trail = Action::AwsEnableTrailLogging {
            trail: "arn:aws:cloudtrail:eu-west-1:111122223333:trail/main".into(),
        };
        assert_eq!(trail.targets(), ["trail/main"]);
        // Every name in ACTIONS reads as an action of that name, with its parameters, and every
        // action has a target, a description and a plan.
        let examples = [
            r#""user": "u", "access_key_id": "AKIA1""#,
            r#""kind": "User", "name": "u""#,
            r#""role": "r""#,
            r#""user": "u""#,
            r#""bucket": "b""#,
            r#""snapshot_id": "snap-1", "account": "111122223333""#,
            r#""instance_id": "i-1", "isolation_group": "sg-1""#,
            r#""trail": "main""#,
            r#""detector_id": "d1""#,
            r#""user": "mallory@contoso.com""#,
            r#""user": "mallory@contoso.com""#,
            r#""application": "app-1", "key_id": "k-1""#,
            r#""project": "p-1", "service_account": "sa@p-1.iam.gserviceaccount.com", "key_id": "k1""#,
            r#""project": "p-1", "role": "roles/owner", "member": "user:eve@gmail.com""#,
        ];
        for (name, params) in ACTIONS.iter().zip(examples) {
            let action: Action =
                serde_json::from_str(&format!(r#"{{"action": "{name}", {params}}}"#))
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(action.name(), *name);
            assert!(!action.targets().is_empty(), "{name}");
            assert!(!action.describe().is_empty() && !action.plan().is_empty());
            let back: Action =
                serde_json::from_value(serde_json::to_value(&action).unwrap()).unwrap();
            assert_eq!(back, action, "{name} survives a record");
            assert_eq!(
                action.reversible(),
                ![
                    "aws.delete-login-profile",
                    "entra.revoke-sessions",
                    "entra.remove-app-password"
                ]
                .contains(name),
                "{name}"
            );
        }
        assert_eq!(ACTIONS.len(), examples.len());
    }

    #[test]
    fn denials_name_the_iam_action() {
        use cloudsentinel_cloud::aws::AwsError;
        let denied = |service, operation, code: &str| {
            RespondError::from(AwsError::Api {
                service,
                operation,
                status: 403,
                code: code.into(),
                message: "no".into(),
            })
            .to_string()
        };
        assert_eq!(
            denied("ec2", "ModifyInstanceAttribute", "UnauthorizedOperation"),
            "ec2:ModifyInstanceAttribute was denied: no"
        );
        assert!(
            denied("s3", "PutPublicAccessBlock", "AccessDenied")
                .starts_with("s3:PutBucketPublicAccessBlock was denied")
        );
        assert!(
            denied("cloudtrail", "StartLogging", "AccessDeniedException")
                .starts_with("cloudtrail:StartLogging was denied")
        );
        assert!(
            !denied("ec2", "DescribeInstances", "InvalidInstanceID.NotFound").contains("denied")
        );
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
