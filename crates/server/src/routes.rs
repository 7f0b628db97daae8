//! Every route, with the role it requires, in one table. The router, the OpenAPI document and
//! the tests that try every route with every role are built from it.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodFilter, MethodRouter, on};
use chrono::Utc;
use cloudsentinel_alert::{AlertRecord, IncidentRecord};
use cloudsentinel_store::DeliveryRecord;
use schemars::{Schema, SchemaGenerator};
use serde_json::{Value, json};

use crate::api;
use crate::auth::{Caller, Need, Role};
use crate::error::ApiError;
use crate::{AppState, blocking};
use maud::{DOCTYPE, html};

/// One route of the API.
pub struct RouteSpec {
    pub method: &'static str,
    pub path: &'static str,
    pub need: Need,
    pub tag: &'static str,
    pub summary: &'static str,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// What the request body holds, when it has one.
    pub body: Option<&'static str>,
    /// The handler, for the method filter of `method`.
    pub handler: fn(MethodFilter) -> MethodRouter<AppState>,
    /// The schema of the success answer: the type the handler serializes ([`schema_of`]).
    pub answer: Option<fn(&mut SchemaGenerator) -> Schema>,
}

impl RouteSpec {
    /// The same route, answering with the type `answer` describes.
    const fn answers(self, answer: fn(&mut SchemaGenerator) -> Schema) -> RouteSpec {
        RouteSpec {
            answer: Some(answer),
            ..self
        }
    }
}

/// The JSON Schema of `T`, the type a handler answers with (a `$ref` to it under
/// `components/schemas` when it is a named type).
pub fn schema_of<T: schemars::JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

const fn r(
    method: &'static str,
    path: &'static str,
    need: Need,
    tag: &'static str,
    summary: &'static str,
    handler: fn(MethodFilter) -> MethodRouter<AppState>,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        need,
        tag,
        summary,
        query: &[],
        body: None,
        handler,
        answer: None,
    }
}

const VIEWER: Need = Need::Role(Role::Viewer);
const ANALYST: Need = Need::Role(Role::Analyst);
const RESPONDER: Need = Need::Role(Role::Responder);
const ADMIN: Need = Need::Role(Role::Admin);

const ALERT_QUERY: &[(&str, &str)] = &[
    (
        "level",
        "comma-separated levels (informational, low, medium, high, critical)",
    ),
    (
        "min_level",
        "only alerts at or above this level; default low (informational signals, such as change records and findings routine for their actor, are left out unless min_level=informational, a level list or an incident is given)",
    ),
    (
        "status",
        "comma-separated statuses (open, acknowledged, investigating, resolved, closed)",
    ),
    ("rule", "rule id"),
    ("kind", "rule, correlation or anomaly"),
    (
        "technique",
        "ATT&CK technique id; T1078 also finds T1078.004",
    ),
    ("principal", "the entity the alert is about"),
    ("account", "account, subscription or project"),
    ("assignee", "the user the alert is assigned to"),
    ("unassigned", "true: only alerts nobody is assigned to"),
    ("incident", "incident id"),
    ("since", "RFC 3339 time: alerts last seen at or after"),
    ("until", "RFC 3339 time: alerts first seen before"),
    (
        "q",
        "free text in title, rule, entity, account, explanation",
    ),
    (
        "sort",
        "last_seen (default), first_seen, level, count, id, tp_score (the feedback model's true-positive score), attention (level, then the newest arrival in the store: the dashboard queue's order)",
    ),
    ("order", "desc (default) or asc"),
    ("limit", "page size, 1..500 (default 50)"),
    ("offset", "rows to skip"),
    (
        "page",
        "page number from 1 (instead of offset), pages of page_size or limit",
    ),
    ("page_size", "the same as limit"),
];

const EVENT_QUERY: &[(&str, &str)] = &[
    ("since", "RFC 3339 time"),
    ("until", "RFC 3339 time"),
    ("principal", "entity"),
    ("account", "account, subscription or project"),
    ("source_ip", "source address"),
    ("service", "e.g. iam.amazonaws.com"),
    ("operation", "e.g. CreateAccessKey"),
    ("outcome", "success or failure"),
    (
        "q",
        "the events search language: principal:, ip:, as:, country:, action:, resource:, \
         account:, outcome: terms and free text (words of the whole record), all of which must \
         hold; \"quoted values\", -term to exclude",
    ),
    ("raw", "true to include the original records"),
    ("limit", "page size, 1..1000 (default 100)"),
    ("offset", "rows to skip"),
];

const INGEST_BODY: &str = "Audit records: a JSON array, {\"Records\": [...]}, JSON Lines, or one \
    record; gzip-compressed or not (Content-Encoding: gzip or gzip magic bytes).";

/// The API. Paths answer with and without a trailing slash.
pub static ROUTES: &[RouteSpec] = &[
    r(
        "GET",
        "/",
        Need::Public,
        "operations",
        "Where to start: redirects to the dashboard",
        |m| on(m, || async { axum::response::Redirect::to("/ui") }),
    ),
    r(
        "GET",
        "/health",
        Need::Public,
        "operations",
        "Liveness and readiness",
        |m| on(m, api::health),
    ).answers(schema_of::<api::Health>),
    r(
        "GET",
        "/metrics",
        Need::Public,
        "operations",
        "Prometheus metrics",
        |m| on(m, api::metrics),
    ),
    r(
        "GET",
        "/api/openapi.json",
        Need::Public,
        "operations",
        "This API's OpenAPI document",
        |m| on(m, openapi_handler),
    ),
    r(
        "GET",
        "/docs",
        Need::Public,
        "operations",
        "Readable API documentation",
        |m| on(m, docs_handler),
    ),
    RouteSpec {
        body: Some(
            "{\"username\", \"password\"} as JSON, or the OAuth2 password form (application/x-www-form-urlencoded)",
        ),
        ..r(
            "POST",
            "/api/v1/auth/login",
            Need::Public,
            "auth",
            "Sign in: access and refresh tokens",
            |m| on(m, api::login),
        ).answers(schema_of::<api::Tokens>)
    },
    RouteSpec {
        body: Some("{\"refresh_token\"}"),
        ..r(
            "POST",
            "/api/v1/auth/refresh",
            Need::Public,
            "auth",
            "New tokens from a refresh token",
            |m| on(m, api::refresh),
        ).answers(schema_of::<api::Tokens>)
    },
    r(
        "POST",
        "/api/v1/auth/logout",
        VIEWER,
        "auth",
        "Sign out everywhere (revokes this user's tokens)",
        |m| on(m, api::logout),
    ).answers(schema_of::<api::SignedOut>),
    r("GET", "/api/v1/auth/me", VIEWER, "auth", "Who am I", |m| {
        on(m, api::me)
    }).answers(schema_of::<api::Me>),
    RouteSpec {
        body: Some("{\"current_password\", \"new_password\"}"),
        ..r(
            "POST",
            "/api/v1/auth/password",
            VIEWER,
            "auth",
            "Change my password",
            |m| on(m, api::change_password),
        ).answers(schema_of::<api::PasswordChanged>)
    },
    RouteSpec {
        body: Some(
            "{\"username\", \"password\", \"role\": \"admin\"|\"responder\"|\"analyst\"|\"viewer\"}",
        ),
        ..r(
            "POST",
            "/api/v1/auth/register",
            ADMIN,
            "users",
            "Create a user",
            |m| on(m, api::register),
        ).answers(schema_of::<api::User>)
    },
    r("GET", "/api/v1/users", ADMIN, "users", "List users", |m| {
        on(m, api::list_users)
    }).answers(schema_of::<api::UserList>),
    RouteSpec {
        body: Some("{\"role\"?, \"disabled\"?, \"password\"?}"),
        ..r(
            "PATCH",
            "/api/v1/users/{id}",
            ADMIN,
            "users",
            "Change a user's role, password or state",
            |m| on(m, api::update_user),
        ).answers(schema_of::<api::User>)
    },
    r(
        "DELETE",
        "/api/v1/users/{id}",
        ADMIN,
        "users",
        "Delete a user",
        |m| on(m, api::delete_user),
    ).answers(schema_of::<api::DeletedUser>),
    r(
        "GET",
        "/api/v1/api-keys",
        ADMIN,
        "users",
        "List API keys",
        |m| on(m, api::list_api_keys),
    ).answers(schema_of::<api::ApiKeyList>),
    RouteSpec {
        body: Some("{\"name\"}: the key is shown once in the answer"),
        ..r(
            "POST",
            "/api/v1/api-keys",
            ADMIN,
            "users",
            "Create an ingest API key",
            |m| on(m, api::create_api_key),
        ).answers(schema_of::<api::NewApiKey>)
    },
    r(
        "DELETE",
        "/api/v1/api-keys/{id}",
        ADMIN,
        "users",
        "Revoke an API key",
        |m| on(m, api::revoke_api_key),
    ).answers(schema_of::<api::RevokedApiKey>),
    RouteSpec {
        body: Some(INGEST_BODY),
        ..r(
            "POST",
            "/api/v1/threats/ingest/aws",
            Need::Ingest,
            "ingest",
            "Ingest CloudTrail records",
            |m| on(m, api::ingest_aws),
        ).answers(schema_of::<api::IngestAnswer>)
    },
    RouteSpec {
        body: Some(INGEST_BODY),
        ..r(
            "POST",
            "/api/v1/threats/ingest/azure",
            Need::Ingest,
            "ingest",
            "Ingest Azure Activity / Entra ID records",
            |m| on(m, api::ingest_azure),
        ).answers(schema_of::<api::IngestAnswer>)
    },
    RouteSpec {
        body: Some(INGEST_BODY),
        ..r(
            "POST",
            "/api/v1/threats/ingest/gcp",
            Need::Ingest,
            "ingest",
            "Ingest GCP Cloud Audit Log entries",
            |m| on(m, api::ingest_gcp),
        ).answers(schema_of::<api::IngestAnswer>)
    },
    RouteSpec {
        query: &[(
            "format",
            "aws, azure, gcp, or auto (default: detect per record)",
        )],
        body: Some(INGEST_BODY),
        ..r(
            "POST",
            "/api/v1/ingest",
            Need::Ingest,
            "ingest",
            "Ingest audit records of any supported provider",
            |m| on(m, api::ingest_any),
        ).answers(schema_of::<api::IngestAnswer>)
    },
    RouteSpec {
        query: &[("format", "aws, azure, gcp, or auto")],
        body: Some("One record (or up to 100): detections are returned, nothing is stored"),
        ..r(
            "POST",
            "/api/v1/threats/analyze",
            ANALYST,
            "ingest",
            "Detections for a record, without storing it",
            |m| on(m, api::analyze),
        ).answers(schema_of::<api::AnalyzeAnswer>)
    },
    RouteSpec {
        query: ALERT_QUERY,
        ..r(
            "GET",
            "/api/v1/alerts",
            VIEWER,
            "alerts",
            "List alerts",
            |m| on(m, api::list_alerts),
        ).answers(schema_of::<api::NamedPage<AlertRecord>>)
    },
    r(
        "GET",
        "/api/v1/alerts/{id}",
        VIEWER,
        "alerts",
        "One alert with evidence, explanation, remedy and surrounding activity",
        |m| on(m, api::get_alert),
    ).answers(schema_of::<api::AlertAnswer>),
    RouteSpec {
        body: Some("{\"status\"?, \"assignee\"? (null to unassign), \"comment\"?}"),
        ..r(
            "PATCH",
            "/api/v1/alerts/{id}",
            ANALYST,
            "alerts",
            "Change status, assignee; add a comment",
            |m| on(m, api::update_alert),
        ).answers(schema_of::<AlertRecord>)
    },
    RouteSpec {
        body: Some("{\"verdict\": \"true_positive\"|\"false_positive\"|\"benign\", \"reason\"}"),
        ..r(
            "POST",
            "/api/v1/alerts/{id}/feedback",
            ANALYST,
            "alerts",
            "Record an analyst verdict",
            |m| on(m, api::alert_feedback),
        ).answers(schema_of::<cloudsentinel_store::FeedbackRecord>)
    },
    RouteSpec {
        query: &[
            ("status", "comma-separated statuses"),
            ("limit", "page size"),
            ("offset", "rows to skip"),
        ],
        ..r(
            "GET",
            "/api/v1/incidents",
            VIEWER,
            "incidents",
            "List incidents",
            |m| on(m, api::list_incidents),
        ).answers(schema_of::<api::NamedPage<IncidentRecord>>)
    },
    r(
        "GET",
        "/api/v1/incidents/{id}",
        VIEWER,
        "incidents",
        "One incident: its alerts on a timeline, and the story they tell in words (narrative)",
        |m| on(m, api::get_incident),
    ).answers(schema_of::<api::IncidentAnswer>),
    RouteSpec {
        body: Some("{\"status\"?, \"assignee\"?, \"severity\"?, \"close_reason\"?, \"comment\"?}"),
        ..r(
            "PATCH",
            "/api/v1/incidents/{id}",
            ANALYST,
            "incidents",
            "Work an incident: status (resolving or closing needs a close_reason), assignee, severity, close_reason, a comment",
            |m| on(m, api::update_incident),
        ).answers(schema_of::<IncidentRecord>)
    },
    r(
        "GET",
        "/api/v1/suppressions",
        VIEWER,
        "alerts",
        "Active suppressions",
        |m| on(m, api::list_suppressions),
    ).answers(schema_of::<api::SuppressionList>),
    RouteSpec {
        body: Some(
            "{\"rule_id\", \"entity\", \"reason\", \"expires_at\" (RFC 3339) or \"duration_hours\"}",
        ),
        ..r(
            "POST",
            "/api/v1/suppressions",
            ANALYST,
            "alerts",
            "Suppress a rule for an entity until a time",
            |m| on(m, api::create_suppression),
        ).answers(schema_of::<cloudsentinel_store::SuppressionRecord>)
    },
    r(
        "DELETE",
        "/api/v1/suppressions/{id}",
        ANALYST,
        "alerts",
        "Remove a suppression",
        |m| on(m, api::delete_suppression),
    ).answers(schema_of::<api::SuppressionDeleted>),
    RouteSpec {
        query: EVENT_QUERY,
        ..r(
            "GET",
            "/api/v1/events",
            VIEWER,
            "events",
            "Search stored events (newest first; `total` counts up to 100000, and is 100001 when \
             more match)",
            |m| on(m, api::search_events),
        ).answers(schema_of::<api::Page<api::ListedEvent>>)
    },
    r(
        "GET",
        "/api/v1/rules",
        VIEWER,
        "rules",
        "Loaded detection rules",
        |m| on(m, api::list_rules),
    ).answers(schema_of::<api::RuleList>),
    RouteSpec {
        body: Some("{\"enabled\": true|false, \"reason\"?}"),
        ..r(
            "PATCH",
            "/api/v1/rules/{id}",
            ADMIN,
            "rules",
            "Enable or disable a rule (a disabled rule raises no alerts)",
            |m| on(m, api::update_rule),
        ).answers(schema_of::<api::RuleState>)
    },
    r(
        "GET",
        "/api/v1/dashboard/stats",
        VIEWER,
        "dashboard",
        "Headline counts",
        |m| on(m, api::dashboard_stats),
    ).answers(schema_of::<api::DashboardStats>),
    RouteSpec {
        query: &[
            ("hours", "how far back (default 24, at most 2160)"),
            ("bucket", "seconds per point (default: 48 points)"),
        ],
        ..r(
            "GET",
            "/api/v1/dashboard/trends",
            VIEWER,
            "dashboard",
            "Events and alerts over time",
            |m| on(m, api::dashboard_trends),
        ).answers(schema_of::<api::Trends>)
    },
    RouteSpec {
        query: &[
            ("hours", "how far back (default: all)"),
            ("limit", "rules (default 10)"),
        ],
        ..r(
            "GET",
            "/api/v1/dashboard/top-threats",
            VIEWER,
            "dashboard",
            "Rules with the most alerts",
            |m| on(m, api::dashboard_top_threats),
        ).answers(schema_of::<api::TopThreats>)
    },
    RouteSpec {
        query: &[
            ("hours", "how far back (default: all)"),
            ("limit", "addresses (default 50)"),
        ],
        ..r(
            "GET",
            "/api/v1/dashboard/geographic-distribution",
            VIEWER,
            "dashboard",
            "Where alerted activity came from",
            |m| on(m, api::dashboard_geo),
        ).answers(schema_of::<api::GeoDistribution>)
    },
    r(
        "GET",
        "/api/v1/dashboard/attack-coverage",
        VIEWER,
        "dashboard",
        "ATT&CK techniques: rules and alerts per technique",
        |m| on(m, api::dashboard_coverage),
    ).answers(schema_of::<api::AttackCoverage>),
    RouteSpec {
        query: &[
            ("limit", "entries (default 100)"),
            ("offset", "entries to skip"),
        ],
        ..r(
            "GET",
            "/api/v1/audit",
            ADMIN,
            "operations",
            "The audit log, newest first",
            |m| on(m, api::audit_log),
        ).answers(schema_of::<api::Page<cloudsentinel_store::AuditRecord>>)
    },
    r(
        "GET",
        "/api/v1/alerts/{id}/responses",
        VIEWER,
        "respond",
        "What the playbooks propose for an alert (with the exact API calls) and the responses recorded for it",
        |m| on(m, api::alert_responses),
    )
    .answers(schema_of::<api::AlertResponses>),
    RouteSpec {
        body: Some("{\"action\": {\"action\": \"aws.deny-all\", ...parameters}, \"playbook\"?}"),
        ..r(
            "POST",
            "/api/v1/alerts/{id}/responses",
            RESPONDER,
            "respond",
            "Propose a containment action for an alert",
            |m| on(m, api::propose_response),
        )
        .answers(schema_of::<api::ResponseView>)
    },
    r(
        "POST",
        "/api/v1/responses/{id}/approve",
        RESPONDER,
        "respond",
        "Approve a proposed action (with four_eyes, not by its proposer)",
        |m| on(m, api::approve_response),
    )
    .answers(schema_of::<api::ResponseStepAnswer>),
    r(
        "POST",
        "/api/v1/responses/{id}/run",
        RESPONDER,
        "respond",
        "Run an approved action: guardrails, execute (the state before recorded), verify",
        |m| on(m, api::run_response),
    )
    .answers(schema_of::<api::ResponseStepAnswer>),
    r(
        "POST",
        "/api/v1/responses/{id}/undo",
        RESPONDER,
        "respond",
        "Restore the state an action recorded before it ran",
        |m| on(m, api::undo_response),
    )
    .answers(schema_of::<api::ResponseStepAnswer>),
    r(
        "GET",
        "/api/v1/playbooks",
        VIEWER,
        "respond",
        "The response playbooks: which alerts each is for, its actions and the mode in force",
        |m| on(m, api::list_playbooks),
    )
    .answers(schema_of::<api::PlaybookList>),
    RouteSpec {
        body: Some("{\"mode\": \"propose\"|\"auto\"|\"off\", \"reason\"?}"),
        ..r(
            "PATCH",
            "/api/v1/playbooks/{id}",
            ADMIN,
            "respond",
            "Set a playbook's mode (auto only for a playbook whose every action is exactly reversible)",
            |m| on(m, api::update_playbook),
        )
        .answers(schema_of::<api::PlaybookView>)
    },
    r(
        "GET",
        "/api/v1/sources",
        VIEWER,
        "operations",
        "The log sources: what each read, its lag, errors and queue backlog, per account and region",
        |m| on(m, api::list_sources),
    )
    .answers(schema_of::<api::SourceList>),
    r(
        "GET",
        "/api/v1/notifications",
        ANALYST,
        "notifications",
        "The notification sinks (no secrets) and how their deliveries stand: pending, sent, dead, retried, last success and failure",
        |m| on(m, api::list_notifications),
    ).answers(schema_of::<api::SinkList>),
    RouteSpec {
        query: &[
            ("sink", "one sink's deliveries"),
            ("alert", "the deliveries about one alert"),
            ("status", "pending, sent or dead"),
            ("limit", "entries (default 50, at most 500)"),
            ("offset", "entries to skip"),
        ],
        ..r(
            "GET",
            "/api/v1/notifications/deliveries",
            ANALYST,
            "notifications",
            "Deliveries, newest first: sink, alert, change, attempts, status, last error, latency",
            |m| on(m, api::list_deliveries),
        ).answers(schema_of::<api::Page<DeliveryRecord>>)
    },
    r(
        "POST",
        "/api/v1/notifications/{name}/test",
        ADMIN,
        "notifications",
        "Send a test message to a sink (recorded as a delivery and in the audit log); answers the delivery after its first try",
        |m| on(m, api::test_notification),
    ).answers(schema_of::<DeliveryRecord>),
    RouteSpec {
        query: &[("model_name", "anomaly or feedback (default: both)")],
        ..r(
            "GET",
            "/api/v1/models",
            VIEWER,
            "models",
            "The model registry: versions, status and training progress, metrics, which is active",
            |m| on(m, api::list_models),
        ).answers(schema_of::<api::ModelList>)
    },
    r(
        "GET",
        "/api/v1/models/schema",
        VIEWER,
        "models",
        "The behaviour feature schema (version, names, meanings)",
        |m| on(m, api::model_schema),
    ).answers(schema_of::<cloudsentinel_learn::anomaly::FeatureSchema>),
    r(
        "GET",
        "/api/v1/models/{id}",
        VIEWER,
        "models",
        "One model with its metrics",
        |m| on(m, api::get_model),
    ).answers(schema_of::<cloudsentinel_store::ModelRecord>),
    RouteSpec {
        query: &[
            (
                "model_name",
                "anomaly (isolation forest over behaviour features) or feedback (true-positive model from analysts' verdicts)",
            ),
            (
                "since",
                "RFC 3339: train on events from (anomaly; default: all stored)",
            ),
            ("until", "RFC 3339: train on events before (anomaly)"),
            (
                "activate",
                "true: make the model active as soon as it is trained",
            ),
        ],
        ..r(
            "POST",
            "/api/v1/models/train",
            ADMIN,
            "models",
            "Train a model in the background (follow its progress in GET /api/v1/models/{id})",
            |m| on(m, api::train_model),
        ).answers(schema_of::<cloudsentinel_store::ModelRecord>)
    },
    r(
        "POST",
        "/api/v1/models/{id}/activate",
        ADMIN,
        "models",
        "Make a ready model the running one of its name, at once",
        |m| on(m, api::activate_model),
    ).answers(schema_of::<cloudsentinel_store::ModelRecord>),
    RouteSpec {
        query: &[("model_name", "anomaly or feedback")],
        ..r(
            "POST",
            "/api/v1/models/rollback",
            ADMIN,
            "models",
            "Go back to the model of this name that was active before the current one (or to none)",
            |m| on(m, api::rollback_model),
        ).answers(schema_of::<api::RolledBack>)
    },
];

/// An API operation the dashboard checks a role against before it draws a button or runs an
/// action: a typed name for one route of [`ROUTES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `PATCH /api/v1/alerts/{id}`: change an alert's status, assignee or note.
    EditAlert,
    /// `POST /api/v1/alerts/{id}/feedback`: mark an alert a true or false positive.
    AlertFeedback,
    /// `POST /api/v1/suppressions`: suppress findings like an alert's.
    Suppress,
    /// `DELETE /api/v1/suppressions/{id}`: remove a suppression.
    Unsuppress,
    /// `PATCH /api/v1/incidents/{id}`: change an incident.
    EditIncident,
    /// `PATCH /api/v1/rules/{id}`: enable or disable a rule.
    ToggleRule,
    /// `GET /api/v1/notifications`: list the notification channels.
    ListNotifiers,
    /// `GET /api/v1/notifications/deliveries`: read the notification deliveries.
    ListDeliveries,
    /// `POST /api/v1/notifications/{name}/test`: send a test notification.
    TestNotifier,
    /// `GET /api/v1/users`: list users and API keys.
    ListUsers,
    /// `POST /api/v1/auth/register`: add a user.
    CreateUser,
    /// `PATCH /api/v1/users/{id}`: change a user's role or state.
    EditUser,
    /// `DELETE /api/v1/users/{id}`: delete a user.
    DeleteUser,
    /// `POST /api/v1/api-keys`: create an API key.
    CreateApiKey,
    /// `DELETE /api/v1/api-keys/{id}`: revoke an API key.
    RevokeApiKey,
    /// `GET /api/v1/audit`: read the audit log.
    ReadAudit,
    /// `POST /api/v1/models/train`: train a model.
    TrainModel,
    /// `POST /api/v1/models/{id}/activate`: make a model the active one.
    ActivateModel,
    /// `POST /api/v1/models/rollback`: go back to the previously active model.
    RollbackModel,
    /// `POST /api/v1/alerts/{id}/responses`: propose a containment action.
    ProposeResponse,
    /// `POST /api/v1/responses/{id}/approve`: approve one.
    ApproveResponse,
    /// `POST /api/v1/responses/{id}/run`: run one.
    RunResponse,
    /// `POST /api/v1/responses/{id}/undo`: undo one.
    UndoResponse,
    /// `GET /api/v1/sources`: read the log sources' health.
    ListSources,
}

impl Op {
    /// Every operation (the test below fails if one is missing).
    pub const ALL: [Op; 24] = [
        Op::EditAlert,
        Op::AlertFeedback,
        Op::Suppress,
        Op::Unsuppress,
        Op::EditIncident,
        Op::ToggleRule,
        Op::ListNotifiers,
        Op::ListDeliveries,
        Op::TestNotifier,
        Op::ListUsers,
        Op::CreateUser,
        Op::EditUser,
        Op::DeleteUser,
        Op::CreateApiKey,
        Op::RevokeApiKey,
        Op::ReadAudit,
        Op::TrainModel,
        Op::ActivateModel,
        Op::RollbackModel,
        Op::ListSources,
        Op::ProposeResponse,
        Op::ApproveResponse,
        Op::RunResponse,
        Op::UndoResponse,
    ];

    /// The route's method and path, as written in [`ROUTES`].
    pub const fn method_path(self) -> (&'static str, &'static str) {
        match self {
            Op::EditAlert => ("PATCH", "/api/v1/alerts/{id}"),
            Op::AlertFeedback => ("POST", "/api/v1/alerts/{id}/feedback"),
            Op::Suppress => ("POST", "/api/v1/suppressions"),
            Op::Unsuppress => ("DELETE", "/api/v1/suppressions/{id}"),
            Op::EditIncident => ("PATCH", "/api/v1/incidents/{id}"),
            Op::ToggleRule => ("PATCH", "/api/v1/rules/{id}"),
            Op::ListNotifiers => ("GET", "/api/v1/notifications"),
            Op::ListDeliveries => ("GET", "/api/v1/notifications/deliveries"),
            Op::TestNotifier => ("POST", "/api/v1/notifications/{name}/test"),
            Op::ListUsers => ("GET", "/api/v1/users"),
            Op::CreateUser => ("POST", "/api/v1/auth/register"),
            Op::EditUser => ("PATCH", "/api/v1/users/{id}"),
            Op::DeleteUser => ("DELETE", "/api/v1/users/{id}"),
            Op::CreateApiKey => ("POST", "/api/v1/api-keys"),
            Op::RevokeApiKey => ("DELETE", "/api/v1/api-keys/{id}"),
            Op::ReadAudit => ("GET", "/api/v1/audit"),
            Op::TrainModel => ("POST", "/api/v1/models/train"),
            Op::ActivateModel => ("POST", "/api/v1/models/{id}/activate"),
            Op::RollbackModel => ("POST", "/api/v1/models/rollback"),
            Op::ListSources => ("GET", "/api/v1/sources"),
            Op::ProposeResponse => ("POST", "/api/v1/alerts/{id}/responses"),
            Op::ApproveResponse => ("POST", "/api/v1/responses/{id}/approve"),
            Op::RunResponse => ("POST", "/api/v1/responses/{id}/run"),
            Op::UndoResponse => ("POST", "/api/v1/responses/{id}/undo"),
        }
    }

    /// The route in [`ROUTES`] (every operation has one: see the test `every_op_is_a_route`).
    pub fn spec(self) -> &'static RouteSpec {
        let (method, path) = self.method_path();
        ROUTES
            .iter()
            .find(|r| r.method == method && r.path == path)
            .unwrap_or_else(|| panic!("{method} {path} is no route"))
    }
}

fn handler(spec: &RouteSpec) -> MethodRouter<AppState> {
    let method = match spec.method {
        "GET" => MethodFilter::GET,
        "POST" => MethodFilter::POST,
        "PATCH" => MethodFilter::PATCH,
        "DELETE" => MethodFilter::DELETE,
        other => panic!("no method filter for {other}"),
    };
    (spec.handler)(method)
}

/// The client's address, for audit entries and login limits.
#[derive(Clone, Debug)]
pub struct ClientAddr(pub Option<String>);

/// The client's address: the peer's, or, on a connection from a trusted proxy, the one the
/// proxy put in the configured header (for `X-Forwarded-For`, the last entry: the one that
/// proxy added; entries before it are whatever the client claimed).
pub fn client_ip(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<String> {
    let peer = peer?;
    let cfg = &state.config;
    if let Some(name) = &cfg.config.server.client_ip_header
        && cfg.trusted_proxies.contains(&peer)
    {
        let forwarded = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|v| v.trim().parse::<IpAddr>().ok())
            .next_back();
        if let Some(ip) = forwarded {
            return Some(ip.to_string());
        }
    }
    Some(peer.to_string())
}

/// Checks the caller against the route's requirement and hands the handler a [`Caller`].
async fn authorize(
    State((state, need)): State<(AppState, Need)>,
    mut req: Request,
    next: Next,
) -> Response {
    let peer = req
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip());
    let addr = client_ip(&state, req.headers(), peer);
    req.extensions_mut().insert(ClientAddr(addr.clone()));
    if need == Need::Public {
        return next.run(req).await;
    }
    let caller = match authenticate(&state, req.headers(), addr).await {
        Ok(c) => c,
        Err(e) => {
            state.metrics.error("unauthorized");
            return e.into_response();
        }
    };
    if !caller.may(need) {
        state.metrics.error("forbidden");
        return ApiError::Forbidden(format!(
            "this needs the {} role; {} has {}",
            need.describe(),
            caller.name,
            caller.role.map(Role::as_str).unwrap_or("an ingest key")
        ))
        .into_response();
    }
    req.extensions_mut().insert(caller);
    next.run(req).await
}

async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    addr: Option<String>,
) -> Result<Caller, ApiError> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim);
    let api_key = headers
        .get("x-api-key")
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
        .or(bearer.filter(|b| b.starts_with("csk_")));
    if let Some(key) = api_key {
        let hash = crate::auth::api_key_hash(key);
        let rec = blocking(state, move |s| s.api_key_by_hash(&hash)).await?;
        let Some(rec) = rec.filter(|k| !k.revoked) else {
            return Err(ApiError::Unauthorized("unknown or revoked API key".into()));
        };
        let now = Utc::now();
        if rec
            .last_used
            .is_none_or(|t| now - t > chrono::Duration::seconds(60))
        {
            let id = rec.id;
            let _ = blocking(state, move |s| s.touch_api_key(id, now)).await;
        }
        return Ok(Caller {
            name: format!("apikey:{}", rec.name),
            user_id: None,
            api_key_id: Some(rec.id),
            role: None,
            source_ip: addr,
        });
    }
    let Some(token) = bearer else {
        return Err(ApiError::Unauthorized(
            "sign in: send Authorization: Bearer <access token> (or X-API-Key for ingest)".into(),
        ));
    };
    Ok(user_caller(state, token, addr).await?.0)
}

/// The signed-in user an access token stands for, with its claims: checks signature, expiry,
/// that the user still exists and is enabled, and that the token was not revoked.
pub(crate) async fn user_caller(
    state: &AppState,
    token: &str,
    addr: Option<String>,
) -> Result<(Caller, crate::auth::Claims), ApiError> {
    let claims = state
        .tokens
        .verify(token, "access", Utc::now().timestamp())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let uid = claims.uid;
    let user = blocking(state, move |s| s.user(uid)).await?;
    let Some(user) = user else {
        return Err(ApiError::Unauthorized("the user no longer exists".into()));
    };
    if !crate::auth::claims_match(&claims, &user) {
        return Err(ApiError::Unauthorized(
            "token revoked: sign in again".into(),
        ));
    }
    Ok((
        Caller {
            name: user.username,
            user_id: Some(user.id),
            api_key_id: None,
            role: Role::parse(&user.role),
            source_ip: addr,
        },
        claims,
    ))
}

/// The router: every route of [`ROUTES`] behind its requirement, with and without a trailing
/// slash.
/// Whether a process of `role` answers the route: ingest processes the routes that take
/// batches, detect processes none but health and metrics, API processes the rest.
pub fn serves(role: crate::config::ProcessRole, spec: &RouteSpec) -> bool {
    use crate::config::ProcessRole;
    let takes_batches = spec.tag == "ingest" && spec.path != "/api/v1/threats/analyze";
    let always = matches!(spec.path, "/health" | "/metrics");
    match role {
        ProcessRole::All => true,
        ProcessRole::Ingest => takes_batches || always,
        ProcessRole::Detect => always,
        ProcessRole::Api => !takes_batches,
    }
}

pub fn router(state: AppState) -> Router {
    let role = state.config.role;
    let mut by_path: BTreeMap<String, MethodRouter<AppState>> = BTreeMap::new();
    for spec in ROUTES.iter().filter(|s| serves(role, s)) {
        let h = handler(spec).layer(middleware::from_fn_with_state(
            (Arc::clone(&state), spec.need),
            authorize,
        ));
        let mut paths = vec![spec.path.to_string()];
        if spec.path != "/" {
            paths.push(format!("{}/", spec.path));
        }
        for path in paths {
            let merged = match by_path.remove(&path) {
                Some(existing) => existing.merge(h.clone()),
                None => h.clone(),
            };
            by_path.insert(path, merged);
        }
    }
    let mut router = Router::new();
    for (path, mr) in by_path {
        router = router.route(&path, mr);
    }
    if role.serves_api() {
        router = router.merge(crate::ui::router(Arc::clone(&state)));
    }
    router
        .fallback(move || async move {
            ApiError::NotFound(if role == crate::config::ProcessRole::All {
                "no such route".into()
            } else {
                format!("no such route in a process of the {} role", role.as_str())
            })
        })
        .method_not_allowed_fallback(|| async {
            (
                axum::http::StatusCode::METHOD_NOT_ALLOWED,
                axum::Json(json!({"error": "method_not_allowed", "message": "this route does not take that method"})),
            )
        })
        .with_state(state)
}

/// The OpenAPI 3.1 document of [`ROUTES`].
/// The generator of the answers' schemas: JSON Schema 2020-12, named types under
/// `components/schemas`, as the handlers serialize them.
fn schema_generator() -> SchemaGenerator {
    schemars::generate::SchemaSettings::draft2020_12()
        .with(|s| s.definitions_path = "#/components/schemas/".into())
        .for_serialize()
        .into_generator()
}

pub fn openapi() -> Value {
    let mut schemas = schema_generator();
    let mut paths = serde_json::Map::new();
    for spec in ROUTES {
        let mut params: Vec<Value> = Vec::new();
        for seg in spec.path.split('/') {
            if let Some(name) = seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                // Ids are numbers except a rule's (its Sigma id) and a playbook's; names are text.
                let kind = if name == "id"
                    && !spec.path.starts_with("/api/v1/rules/")
                    && !spec.path.starts_with("/api/v1/playbooks/")
                {
                    "integer"
                } else {
                    "string"
                };
                params.push(
                    json!({"name": name, "in": "path", "required": true, "schema": {"type": kind}}),
                );
            }
        }
        for (name, desc) in spec.query {
            params.push(json!({"name": name, "in": "query", "required": false, "description": desc, "schema": {"type": "string"}}));
        }
        let mut responses = serde_json::Map::new();
        let ok = match spec.method {
            "POST" if spec.tag == "ingest" && spec.path != "/api/v1/threats/analyze" => "202",
            "POST" if spec.path == "/api/v1/models/train" => "202",
            "POST"
                if matches!(
                    spec.path,
                    "/api/v1/auth/register"
                        | "/api/v1/api-keys"
                        | "/api/v1/suppressions"
                        | "/api/v1/alerts/{id}/feedback"
                        | "/api/v1/alerts/{id}/responses"
                ) =>
            {
                "201"
            }
            _ => "200",
        };
        let media = match spec.path {
            "/" | "/docs" => "text/html",
            "/metrics" => "text/plain",
            _ => "application/json",
        };
        let content = match spec.answer {
            Some(schema) => json!({media: {"schema": schema(&mut schemas).to_value()}}),
            None => json!({media: {}}),
        };
        if spec.path == "/health" {
            // A store that cannot answer makes the service unready: the same answer, 503.
            responses.insert(
                "503".into(),
                json!({"description": "degraded", "content": content.clone()}),
            );
        }
        responses.insert(
            ok.into(),
            json!({"description": "success", "content": content}),
        );
        if spec.need != Need::Public {
            responses.insert(
                "401".into(),
                json!({"$ref": "#/components/responses/Unauthorized"}),
            );
            responses.insert(
                "403".into(),
                json!({"$ref": "#/components/responses/Forbidden"}),
            );
        }
        let has_path_params = spec.path.contains('{');
        if spec.body.is_some() || !spec.query.is_empty() || has_path_params {
            responses.insert(
                "400".into(),
                json!({"$ref": "#/components/responses/BadRequest"}),
            );
        }
        if has_path_params {
            responses.insert(
                "404".into(),
                json!({"$ref": "#/components/responses/NotFound"}),
            );
        }
        if spec.tag == "ingest" {
            responses.insert(
                "413".into(),
                json!({"description": "body larger than the limit"}),
            );
            responses.insert(
                "429".into(),
                json!({"description": "pipeline saturated: retry after the Retry-After seconds"}),
            );
        }
        let security = match spec.need {
            Need::Public => json!([]),
            Need::Ingest => json!([{"apiKey": []}, {"bearer": []}]),
            Need::Role(_) => json!([{"bearer": []}]),
        };
        let mut op = json!({
            "summary": spec.summary,
            "tags": [spec.tag],
            "operationId": format!("{}_{}", spec.method.to_lowercase(), spec.path.trim_start_matches('/').replace(['/', '{', '}', '-', '.'], "_")),
            "x-required-role": spec.need.describe(),
            "security": security,
            "parameters": params,
            "responses": responses,
        });
        if let Some(body) = spec.body {
            op["requestBody"] = json!({"description": body, "required": true, "content": {"application/json": {"schema": {"type": "object"}}}});
        }
        paths
            .entry(spec.path.to_string())
            .or_insert_with(|| json!({}))
            .as_object_mut()
            .expect("object")
            .insert(spec.method.to_lowercase(), op);
    }
    let mut components = schemas.take_definitions(true);
    components.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"error": {"type": "string"}, "message": {"type": "string"}, "details": {}}}),
    );
    json!({
        "openapi": "3.1.0",
        "info": {
            "title": "CloudSentinel API",
            "version": env!("CARGO_PKG_VERSION"),
            "description": "Threat detection for cloud audit logs. Sign in at /api/v1/auth/login and send the access token as `Authorization: Bearer <token>`; ingest clients send an API key as `X-API-Key`. Every operation lists the role it needs in `x-required-role` (viewer < analyst < responder < admin; `ingest` = an API key or an admin)."
        },
        "paths": paths,
        "components": {
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"}
            },
            "responses": {
                "Unauthorized": {"description": "no valid credentials"},
                "Forbidden": {"description": "the caller's role is not enough"},
                "BadRequest": {"description": "the request is malformed: the message says what to fix"},
                "NotFound": {"description": "nothing has that id"}
            },
            "schemas": components
        }
    })
}

async fn openapi_handler() -> impl IntoResponse {
    axum::Json(openapi())
}

/// The documentation page's style (constant; it holds no character HTML would escape).
const DOCS_STYLE: &str = "body{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#1b1f24}\
code{font-size:.95em}.op{border:1px solid #d0d7de;border-radius:6px;padding:.6rem .8rem;margin:.6rem 0}\
.m{display:inline-block;min-width:4.2em;font-weight:600;font-family:monospace}.GET{color:#0969da}.POST{color:#1a7f37}\
.PATCH{color:#9a6700}.DELETE{color:#cf222e}.role{float:right;font-size:.85em;background:#eaeef2;border-radius:4px;padding:0 .4em}\
table{border-collapse:collapse;font-size:.9em}td,th{text-align:left;padding:.1rem .6rem .1rem 0}.body{font-size:.9em;color:#57606a}";

/// The API documentation as one self-contained page (nothing loaded from elsewhere).
async fn docs_handler() -> Html<String> {
    let mut by_tag: BTreeMap<&str, Vec<&RouteSpec>> = BTreeMap::new();
    for spec in ROUTES {
        by_tag.entry(spec.tag).or_default().push(spec);
    }
    let page = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                title { "CloudSentinel API" }
                meta name="viewport" content="width=device-width, initial-scale=1";
                style { (DOCS_STYLE) }
            }
            body {
                h1 { "CloudSentinel API" }
                p {
                    "Sign in with " code { "POST /api/v1/auth/login" } " and send "
                    code { "Authorization: Bearer <access_token>" }
                    ". Ingest clients send an API key in " code { "X-API-Key" } ". "
                    "The label on each route is the least role it needs (viewer < analyst < responder < admin). "
                    "Machine-readable: " a href="/api/openapi.json" { "/api/openapi.json" } "."
                }
                @for (tag, specs) in &by_tag {
                    h2 id=(tag) { (tag) }
                    @for s in specs {
                        div.op {
                            div {
                                span class={ "m " (s.method) } { (s.method) } " "
                                code { (s.path) } " "
                                span.role { (s.need.describe()) }
                            }
                            p { (s.summary) }
                            @if !s.query.is_empty() {
                                table {
                                    tr { th { "query" } th {} }
                                    @for (name, doc) in s.query {
                                        tr { td { code { (name) } } td { (doc) } }
                                    }
                                }
                            }
                            @if let Some(b) = s.body {
                                p.body { "Body: " (b) }
                            }
                        }
                    }
                }
            }
        }
    };
    Html(page.into_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a list route accepts is what its documentation (and the OpenAPI document) lists.
    #[test]
    fn documented_query_parameters_are_the_accepted_ones() {
        let documented = |method: &str, path: &str| -> std::collections::BTreeSet<&str> {
            ROUTES
                .iter()
                .find(|r| r.method == method && r.path == path)
                .unwrap_or_else(|| panic!("{method} {path}"))
                .query
                .iter()
                .map(|(name, _)| *name)
                .collect()
        };
        for (path, accepted) in [
            ("/api/v1/alerts", api::KNOWN_ALERT_PARAMS),
            ("/api/v1/events", api::KNOWN_EVENT_PARAMS),
            (
                "/api/v1/notifications/deliveries",
                &api::KNOWN_DELIVERY_PARAMS[..],
            ),
        ] {
            let accepted: std::collections::BTreeSet<&str> = accepted.iter().copied().collect();
            assert_eq!(documented("GET", path), accepted, "GET {path}");
        }
    }

    /// Every route that answers JSON says what: the OpenAPI document carries a schema for it,
    /// generated from the type its handler serializes.
    #[test]
    fn every_json_route_documents_its_answer() {
        let not_json = [
            ("GET", "/"),
            ("GET", "/metrics"),
            ("GET", "/docs"),
            ("GET", "/api/openapi.json"),
        ];
        let missing: Vec<String> = ROUTES
            .iter()
            .filter(|r| !not_json.contains(&(r.method, r.path)) && r.answer.is_none())
            .map(|r| format!("{} {}", r.method, r.path))
            .collect();
        assert!(
            missing.is_empty(),
            "routes without an answer schema: {missing:?}"
        );
        let doc = openapi();
        let ok = &doc["paths"]["/api/v1/alerts/{id}"]["patch"]["responses"]["200"];
        assert_eq!(
            ok["content"]["application/json"]["schema"]["$ref"], "#/components/schemas/AlertRecord",
            "{ok}"
        );
        assert!(doc["components"]["schemas"]["AlertRecord"]["properties"]["level"].is_object());
    }

    /// Every operation the dashboard checks is a route of the table, and `Op::ALL` lists each
    /// operation once.
    #[test]
    fn every_op_is_a_route() {
        // Exhaustive: a new variant does not compile until it is added here, and then to ALL.
        fn index(op: Op) -> usize {
            match op {
                Op::EditAlert => 0,
                Op::AlertFeedback => 1,
                Op::Suppress => 2,
                Op::Unsuppress => 3,
                Op::EditIncident => 4,
                Op::ToggleRule => 5,
                Op::ListNotifiers => 6,
                Op::ListDeliveries => 7,
                Op::TestNotifier => 8,
                Op::ListUsers => 9,
                Op::ReadAudit => 10,
                Op::TrainModel => 11,
                Op::ActivateModel => 12,
                Op::RollbackModel => 13,
                Op::CreateUser => 14,
                Op::EditUser => 15,
                Op::DeleteUser => 16,
                Op::CreateApiKey => 17,
                Op::RevokeApiKey => 18,
                Op::ListSources => 19,
                Op::ProposeResponse => 20,
                Op::ApproveResponse => 21,
                Op::RunResponse => 22,
                Op::UndoResponse => 23,
            }
        }
        let mut seen = [false; Op::ALL.len()];
        for op in Op::ALL {
            assert!(
                !std::mem::replace(&mut seen[index(op)], true),
                "{op:?} twice in ALL"
            );
            let (method, path) = op.method_path();
            let spec = op.spec();
            assert_eq!((spec.method, spec.path), (method, path), "{op:?}");
        }
        assert!(seen.iter().all(|s| *s), "a variant is missing from Op::ALL");
    }
}
