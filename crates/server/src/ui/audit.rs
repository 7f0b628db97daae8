//! The audit log: every change and sign-in, newest first.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

use super::{Nav, Q, Session, at, fail, page, pager};
use crate::routes::Op;
use crate::{AppState, api};

pub(super) async fn audit(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    if let Err(r) = s.require(Op::ReadAudit) {
        return r;
    }
    let mut params = BTreeMap::new();
    params.insert("limit".to_string(), "100".to_string());
    if let Some(o) = q.get("offset") {
        params.insert("offset".into(), o.clone());
    }
    let log = match api::audit_log(State(state), Query(params)).await {
        Ok(axum::Json(log)) => log,
        Err(e) => return fail(&s, e),
    };
    let body = html! {
        h1 { "Audit log" }
        p.muted {
            "Every change and sign-in, newest first; each entry is chained to the one before \
             by hash."
        }
        table.cards id="audit-table" {
            thead {
                tr { th { "Time" } th { "Who" } th { "Action" } th { "Target" } th { "Detail" } }
            }
            tbody {
                @for e in &log.items {
                    tr {
                        td.nowrap.small data-label="Time" { (at(&e.time)) }
                        td.nowrap data-label="Who" {
                            (e.actor)
                            br;
                            span.small.muted { (e.source_ip.as_deref().unwrap_or("")) }
                        }
                        td.nowrap data-label="Action" { code { (e.action) } }
                        td data-label="Target" { (e.target) }
                        td.small.mono data-label="Detail" { (e.detail) }
                    }
                }
            }
        }
        (pager(
            "/ui/audit",
            "",
            log.total,
            log.offset,
            100,
        ))
    };
    page(&s, "Audit log", Nav::Audit, None, body)
}
