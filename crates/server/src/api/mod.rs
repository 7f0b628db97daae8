//! The route handlers. Each takes the [`Caller`] the authorization layer established, validates
//! its input into typed values, does one thing through the store or the pipeline, records state
//! changes in the audit log, and answers JSON.

use std::collections::BTreeMap;
use std::io::Read;
use std::sync::Arc;
use std::time::Instant;

use axum::Extension;
use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Duration, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus, IncidentRecord, Verdict};
use cloudsentinel_core::text::SHOWN_FIELD_CHARS;
use cloudsentinel_core::{Level, Provider};
use cloudsentinel_detect::Stage;
use cloudsentinel_store::{
    AlertKey, AlertQuery, AlertSort, CommentRecord, EventQuery, EventRow, FeedbackRecord,
    IncidentUpdate,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::auth::{self, Caller, Claims, Role};
use crate::error::{ApiError, ApiResult, bad, not_found};
use crate::pipeline::{self, PrepareError, SubmitError};
use crate::routes::ClientAddr;
use crate::{AppState, blocking};

pub(super) type Q = Query<BTreeMap<String, String>>;

/// One page of a list route.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Page<T> {
    /// How many match (all pages).
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    pub items: Vec<T>,
}

/// A page of alerts or incidents, with the names of the principals among them that are known
/// by an object id (Entra ID users and service principals).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NamedPage<T> {
    pub total: u64,
    pub limit: u32,
    pub offset: u64,
    pub items: Vec<T>,
    /// Object id → the principal's name.
    pub names: BTreeMap<String, String>,
}

pub(super) fn audit(
    state: &AppState,
    caller: &str,
    addr: Option<String>,
    action: &'static str,
    target: String,
    detail: Value,
) -> impl std::future::Future<Output = ApiResult<()>> + Send + 'static {
    let state = Arc::clone(state);
    let caller = caller.to_string();
    async move {
        let s2 = Arc::clone(&state);
        tokio::task::spawn_blocking(move || {
            s2.audit.record(
                s2.store.as_ref(),
                &caller,
                action,
                &target,
                detail,
                addr.as_deref(),
            )
        })
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
        Ok(())
    }
}

mod alerts;
mod dashboard;
mod events;
mod incidents;
mod ingest;
mod models;
mod notifications;
mod ops;
mod responses;
mod session;
mod suppressions;
mod users;

pub use alerts::*;
pub use dashboard::*;
pub use events::*;
pub use incidents::*;
pub use ingest::*;
pub use models::*;
pub use notifications::*;
pub use ops::*;
pub use responses::*;
pub use session::*;
pub use suppressions::*;
pub use users::*;
