//! The alert and incident records: what the alerting stage produces, the store keeps and the API
//! and sinks show.

use chrono::{DateTime, Utc};
use cloudsentinel_core::Level;
use serde::{Deserialize, Serialize};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AlertStatus {
    Open,
    Acknowledged,
    Investigating,
    Resolved,
    Closed,
}

impl AlertStatus {
    pub const ALL: [AlertStatus; 5] = [
        AlertStatus::Open,
        AlertStatus::Acknowledged,
        AlertStatus::Investigating,
        AlertStatus::Resolved,
        AlertStatus::Closed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AlertStatus::Open => "open",
            AlertStatus::Acknowledged => "acknowledged",
            AlertStatus::Investigating => "investigating",
            AlertStatus::Resolved => "resolved",
            AlertStatus::Closed => "closed",
        }
    }

    pub fn parse(s: &str) -> Option<AlertStatus> {
        AlertStatus::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// An alert as stored. The pipeline owns the detection columns (count, times, evidence); analysts
/// own status, assignee and verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct AlertRecord {
    pub id: i64,
    /// `rule`, `correlation` or `anomaly`.
    pub kind: String,
    pub rule_id: String,
    pub title: String,
    pub level: Level,
    pub techniques: Vec<String>,
    pub tactics: Vec<String>,
    pub entity: String,
    pub account: Option<String>,
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub count: u64,
    /// Evidence event ids, the first [`MAX_EVIDENCE`] of them.
    pub event_ids: Vec<String>,
    pub explanation: String,
    pub status: AlertStatus,
    pub assignee: Option<String>,
    pub incident_id: Option<i64>,
    /// The latest analyst verdict, if any.
    pub verdict: Option<Verdict>,
    /// How likely a true positive, by the feedback model active when it was raised or last
    /// rescored; `None` without one.
    #[serde(default)]
    pub tp_score: Option<f64>,
}

/// Evidence ids kept per alert; the count keeps counting past it.
pub const MAX_EVIDENCE: usize = 200;

/// A group of alerts about one principal or access key that tell one story.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct IncidentRecord {
    pub id: i64,
    /// The principal or access key that joins the alerts.
    pub key: String,
    pub entity: String,
    pub account: Option<String>,
    pub title: String,
    pub level: Level,
    pub status: AlertStatus,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    pub created: DateTime<Utc>,
    pub updated: DateTime<Utc>,
    pub alert_count: u64,
    pub tactics: Vec<String>,
    pub techniques: Vec<String>,
    /// Who works it (analyst-owned, like the status).
    #[serde(default)]
    pub assignee: Option<String>,
    /// The severity an analyst gave it, over the level its alerts give (`level`).
    #[serde(default)]
    pub severity: Option<Level>,
    /// Why it was resolved or closed.
    #[serde(default)]
    pub close_reason: Option<String>,
    /// What else it answers to (pipeline-owned): principals and access keys that joined it,
    /// `ip:` addresses, a `person:` e-mail, `created:` identities its principal made.
    #[serde(default)]
    pub join_keys: Vec<String>,
}

/// An analyst's verdict on an alert.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    TruePositive,
    FalsePositive,
    Benign,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::TruePositive => "true_positive",
            Verdict::FalsePositive => "false_positive",
            Verdict::Benign => "benign",
        }
    }

    pub fn parse(s: &str) -> Option<Verdict> {
        [
            Verdict::TruePositive,
            Verdict::FalsePositive,
            Verdict::Benign,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }
}
