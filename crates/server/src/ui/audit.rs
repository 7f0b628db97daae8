//! The audit log: every change and sign-in, newest first.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::response::Response;
use maud::html;

use super::{Nav, Q, Session, fail, page, pager};
use crate::{AppState, api};

pub(super) async fn audit(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    if let Err(r) = s.require("GET", "/api/v1/audit") {
        return r;
    }
    let mut params = BTreeMap::new();
    params.insert("limit".to_string(), "100".to_string());
    if let Some(o) = q.get("offset") {
        params.insert("offset".into(), o.clone());
    }
    let v = match api::audit_log(State(state), Query(params)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let body = html! {
        h1 { "Audit log" }
        p.muted {
            "Every change and sign-in, newest first; each entry is chained to the one before \
             by hash."
        }
        table id="audit-table" {
            thead {
                tr { th { "Time" } th { "Who" } th { "Action" } th { "Target" } th { "Detail" } }
            }
            tbody {
                @for e in v["items"].as_array().into_iter().flatten() {
                    @let str_of = |k: &str| e[k].as_str().unwrap_or("");
                    tr {
                        td.nowrap.small { (str_of("time")) }
                        td.nowrap {
                            (str_of("actor"))
                            br;
                            span.small.muted { (str_of("source_ip")) }
                        }
                        td.nowrap { code { (str_of("action")) } }
                        td { (str_of("target")) }
                        td.small.mono { (str_of("detail")) }
                    }
                }
            }
        }
        (pager(
            "/ui/audit",
            "",
            v["total"].as_u64().unwrap_or(0),
            v["offset"].as_u64().unwrap_or(0),
            100,
        ))
    };
    page(&s, "Audit log", Nav::Audit, None, body)
}
