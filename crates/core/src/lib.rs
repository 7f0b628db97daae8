//! The vocabulary of CloudSentinel: the types that travel between stages.
//!
//! No IO lives here. Decoders produce [`Event`]s, detectors produce [`Signal`]s, alerting turns
//! signals into [`Alert`]s.
//!
//! - [`RawBatch`]: bytes plus where they came from, so that an error can point at them.
//! - [`Event`]: one normalized audit record, with the provider's original record kept beside it
//!   (Sigma rules are written against the provider's own field names).
//! - [`Signal`]: one detector's finding on one or more events.
//! - [`Alert`]: signals about one rule and entity after deduplication, what a person sees.
//!
//! ```
//! use cloudsentinel_core::{Level, Provider};
//! assert!(Level::High > Level::Medium);
//! assert_eq!(Provider::Aws.as_str(), "aws");
//! assert_eq!("critical".parse::<Level>().unwrap(), Level::Critical);
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod attack;
pub mod compact;
pub mod hash;
pub mod intern;
pub mod raw;
pub mod rng;
pub mod row;
pub mod text;
pub use raw::RawRecord;

/// Bytes read from a source, with their origin.
#[derive(Debug, Clone)]
pub struct RawBatch {
    /// Where the bytes came from.
    pub origin: Origin,
    /// The bytes, possibly gzip-compressed.
    pub bytes: Vec<u8>,
}

/// Where a record came from: enough to point a person at it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Origin {
    /// The source kind and name, e.g. `file` or `http`.
    pub source: String,
    /// File path or object key, when there is one.
    pub path: Option<String>,
    /// Index of the record inside the file (0-based), when known.
    pub record_index: Option<u64>,
    /// Line number (1-based), when the input is line oriented.
    pub line: Option<u64>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.path {
            Some(p) => write!(f, "{p}")?,
            None => write!(f, "{}", self.source)?,
        }
        if let Some(line) = self.line {
            write!(f, " line {line}")?;
        }
        if let Some(i) = self.record_index {
            write!(f, " record {i}")?;
        }
        Ok(())
    }
}

/// The cloud a record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Aws,
    Azure,
    Gcp,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Aws => "aws",
            Provider::Azure => "azure",
            Provider::Gcp => "gcp",
        }
    }
}

/// Which log of the provider the record comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogKind {
    /// AWS CloudTrail management and data events.
    CloudTrail,
    /// Azure Activity Log (control plane) and resource logs.
    AzureActivity,
    /// Entra ID sign-in logs (interactive, non-interactive, service principal, managed identity).
    EntraSignIn,
    /// Entra ID audit logs (directory changes).
    EntraAudit,
    /// Entra ID Protection risk detections.
    EntraRisk,
    /// GCP Cloud Audit Logs (admin activity, data access, system event, policy denied).
    GcpAudit,
}

impl LogKind {
    pub fn as_str(self) -> &'static str {
        match self {
            LogKind::CloudTrail => "cloudtrail",
            LogKind::AzureActivity => "azure_activity",
            LogKind::EntraSignIn => "entra_signin",
            LogKind::EntraAudit => "entra_audit",
            LogKind::EntraRisk => "entra_risk",
            LogKind::GcpAudit => "gcp_audit",
        }
    }
}

/// What kind of identity performed the action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// An IAM user with long-term credentials.
    User,
    /// The account's root user.
    Root,
    /// A role session (assumed role, instance profile, SSO permission set).
    AssumedRole,
    /// A federated user (GetFederationToken).
    FederatedUser,
    /// An AWS service acting on the account's behalf.
    Service,
    /// Another AWS account (cross-account call).
    Account,
    /// An IAM Identity Center user.
    IdentityCenterUser,
    /// A GCP service account.
    ServiceAccount,
    /// An Entra ID application (service principal).
    ServicePrincipal,
    /// An Azure managed identity.
    ManagedIdentity,
    /// Anything the decoder could not classify.
    Unknown,
}

/// Who performed the action.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Actor {
    /// Stable identifier (ARN, principal id, object id).
    pub id: Option<String>,
    /// Human-readable name (user name, role name, session name).
    pub name: Option<String>,
    pub kind: Option<ActorKind>,
    /// The access key used, when the provider records one.
    pub access_key_id: Option<String>,
    /// For role sessions: the role's ARN.
    pub role_arn: Option<String>,
    /// For role sessions: the session name.
    pub session_name: Option<String>,
    /// The source identity carried through role chaining, if set.
    pub source_identity: Option<String>,
    /// The identity that issued the session (for chains: role that assumed this role).
    pub issuer_arn: Option<String>,
    /// Whether the session or login was authenticated with MFA, when known.
    pub mfa: Option<bool>,
    /// The service that invoked the call on the actor's behalf (`invokedBy`).
    pub invoked_by: Option<String>,
}

/// What was done.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Action {
    /// Service, e.g. `iam` (from `iam.amazonaws.com`).
    pub service: String,
    /// Operation, e.g. `CreateAccessKey`.
    pub operation: String,
    /// True for calls that only read.
    pub read_only: Option<bool>,
}

/// Whether the action succeeded.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    pub success: bool,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
}

/// A resource touched by the action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// ARN or provider resource id.
    pub id: String,
    /// Resource type, e.g. `AWS::S3::Bucket`.
    pub kind: Option<String>,
}

/// One normalized audit record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    /// The provider's own id of the record (CloudTrail `eventID`).
    pub id: String,
    pub time: DateTime<Utc>,
    pub provider: Provider,
    pub kind: LogKind,
    /// AWS account id, Azure subscription, GCP project.
    pub account: Option<String>,
    pub region: Option<String>,
    pub actor: Actor,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub action: Action,
    pub resources: Vec<Resource>,
    pub outcome: Outcome,
    /// Where the source address is (AS, country, cloud), filled in by enrichment; `None`
    /// until then, and for records without an address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<Network>,
    /// The provider's original record, kept as received and parsed lazily.
    pub raw: Arc<RawRecord>,
}

/// What the address tables say about an event's source address.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Network {
    /// Autonomous system number; `None` when the address is not routed (private, reserved).
    pub asn: Option<u32>,
    pub as_name: Option<Arc<str>>,
    pub country: Option<Country>,
    /// The cloud whose address space holds the address (a NAT gateway, an instance's public
    /// IP, a cloud service), from the provider's published ranges or its AS numbers.
    pub cloud: Option<Provider>,
}

/// An ISO 3166-1 alpha-2 country code, upper case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Country([u8; 2]);

impl Country {
    /// Two ASCII letters, in either case; anything else is not a country.
    pub fn new(code: &[u8]) -> Option<Country> {
        match code {
            [a, b] if a.is_ascii_alphabetic() && b.is_ascii_alphabetic() => {
                Some(Country([a.to_ascii_uppercase(), b.to_ascii_uppercase()]))
            }
            _ => None,
        }
    }
    pub fn code(self) -> [u8; 2] {
        self.0
    }
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).unwrap_or("??")
    }
}

impl std::fmt::Display for Country {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Country {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Country {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Country, D::Error> {
        let s = String::deserialize(d)?;
        Country::new(s.as_bytes())
            .ok_or_else(|| serde::de::Error::custom(format!("`{s}` is not a country code")))
    }
}

impl Event {
    /// The entity an alert about this event is about: the access key when one was used,
    /// otherwise the principal's id, otherwise its name, otherwise the source IP.
    /// An AWS service acting on an account's behalf is named with the account, since the same
    /// service name stands for a different actor in every account.
    pub fn entity(&self) -> String {
        if self.actor.kind == Some(ActorKind::Service)
            && let (Some(name), Some(account)) = (&self.actor.name, &self.account)
        {
            return format!("{name} in {account}");
        }
        if let Some(k) = &self.actor.access_key_id
            && !k.is_empty()
        {
            if let Some(id) = self.actor.role_arn.as_ref().or(self.actor.id.as_ref()) {
                return format!("{id} ({k})");
            }
            return k.clone();
        }
        if let Some(id) = self.actor.role_arn.as_ref().or(self.actor.id.as_ref()) {
            return id.clone();
        }
        if let Some(n) = &self.actor.name {
            return n.clone();
        }
        if let Some(ip) = &self.source_ip {
            return ip.clone();
        }
        "unknown".to_string()
    }

    /// The principal the event is about: role ARN for role sessions, else the actor id or name.
    pub fn principal(&self) -> Option<&str> {
        self.actor
            .role_arn
            .as_deref()
            .or(self.actor.id.as_deref())
            .or(self.actor.name.as_deref())
    }
}

/// Severity of a finding, ordered from least to most severe.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Informational,
    Low,
    Medium,
    High,
    Critical,
}

impl Level {
    pub const ALL: [Level; 5] = [
        Level::Informational,
        Level::Low,
        Level::Medium,
        Level::High,
        Level::Critical,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Level::Informational => "informational",
            Level::Low => "low",
            Level::Medium => "medium",
            Level::High => "high",
            Level::Critical => "critical",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text did not name a level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownLevel(pub String);

impl fmt::Display for UnknownLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown level '{}' (expected informational, low, medium, high or critical)",
            self.0
        )
    }
}

impl std::error::Error for UnknownLevel {}

impl FromStr for Level {
    type Err = UnknownLevel;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "informational" | "info" => Ok(Level::Informational),
            "low" => Ok(Level::Low),
            "medium" => Ok(Level::Medium),
            "high" => Ok(Level::High),
            "critical" => Ok(Level::Critical),
            _ => Err(UnknownLevel(s.to_string())),
        }
    }
}

/// Which detector produced a signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignalKind {
    /// A Sigma detection rule matched one event.
    Rule,
    /// A Sigma correlation rule fired over several events.
    Correlation,
    /// The behavioural model found an event unlike the principal's baseline.
    Anomaly,
}

impl SignalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::Rule => "rule",
            SignalKind::Correlation => "correlation",
            SignalKind::Anomaly => "anomaly",
        }
    }
}

/// One detector's finding on one or more events.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Signal {
    pub kind: SignalKind,
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    /// ATT&CK technique ids, e.g. `T1562.008`.
    pub techniques: Vec<String>,
    /// ATT&CK tactics, e.g. `defense-evasion`.
    pub tactics: Vec<String>,
    /// Who or what the finding is about.
    pub entity: String,
    pub account: Option<String>,
    /// Time of the first and last evidence event.
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// The provider's ids of the evidence events.
    pub event_ids: Vec<String>,
    /// Why it fired: the fields and values that matched, or the correlation's condition.
    pub explanation: String,
}

/// Signals about one rule and one entity within a window, deduplicated.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Alert {
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    pub entity: String,
    pub account: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// How many signals were folded into this alert.
    pub count: u64,
    /// The provider's ids of all evidence events.
    pub event_ids: Vec<String>,
    pub explanation: String,
    pub description: Option<String>,
    pub remedy: Option<String>,
    pub false_positives: Vec<String>,
}

/// Normalizes an ATT&CK tag (`attack.t1562.008`) to a technique id (`T1562.008`).
pub fn technique_from_tag(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("attack.")?;
    let bytes = rest.as_bytes();
    if bytes.len() >= 5
        && (bytes[0] == b't' || bytes[0] == b'T')
        && bytes[1..5].iter().all(u8::is_ascii_digit)
    {
        let tail = &rest[5..];
        let valid_tail = tail.is_empty()
            || (tail.len() == 4
                && tail.starts_with('.')
                && tail[1..].bytes().all(|b| b.is_ascii_digit()));
        if valid_tail {
            return Some(rest.to_ascii_uppercase());
        }
    }
    None
}

/// ATT&CK's enterprise tactics in kill-chain order.
pub const TACTICS: [&str; 14] = [
    "reconnaissance",
    "resource-development",
    "initial-access",
    "execution",
    "persistence",
    "privilege-escalation",
    "defense-evasion",
    "credential-access",
    "discovery",
    "lateral-movement",
    "collection",
    "command-and-control",
    "exfiltration",
    "impact",
];

/// The ATT&CK tactic named by a tag (`attack.defense-evasion` -> `defense-evasion`).
pub fn tactic_from_tag(tag: &str) -> Option<String> {
    let rest = tag.strip_prefix("attack.")?.replace('_', "-");
    TACTICS
        .iter()
        .find(|t| **t == rest)
        .map(|t| (*t).to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn technique_tags_are_normalized() {
        assert_eq!(
            technique_from_tag("attack.t1562.008").as_deref(),
            Some("T1562.008")
        );
        assert_eq!(technique_from_tag("attack.T1078").as_deref(), Some("T1078"));
        assert_eq!(technique_from_tag("attack.defense-evasion"), None);
        assert_eq!(technique_from_tag("attack.t15"), None);
        assert_eq!(technique_from_tag("cve.2021.1234"), None);
    }

    #[test]
    fn tactic_tags_are_recognised() {
        assert_eq!(
            tactic_from_tag("attack.defense_evasion").as_deref(),
            Some("defense-evasion")
        );
        assert_eq!(tactic_from_tag("attack.t1078"), None);
        assert_eq!(tactic_from_tag("attack.g0016"), None);
    }

    #[test]
    fn levels_parse_and_order() {
        assert!("nope".parse::<Level>().is_err());
        assert_eq!("HIGH".parse::<Level>(), Ok(Level::High));
        let mut v = Level::ALL.to_vec();
        v.reverse();
        v.sort();
        assert_eq!(v, Level::ALL.to_vec());
    }
}
