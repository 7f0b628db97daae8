//! Entity pages: a principal, an IP address, an account, a resource or an autonomous system,
//! with its timeline, its baseline in words, its alerts and incidents and the identities linked
//! to it.

use axum::Router;

use crate::AppState;

/// The entity pages' routes.
pub(super) fn routes() -> Router<AppState> {
    Router::new()
}
