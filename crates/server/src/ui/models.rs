//! Models: behaviour scoring's trained models, training, activating and rolling back.

use std::collections::BTreeMap;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use cloudsentinel_store::ModelRecord;
use maud::{Markup, html};
use serde_json::Value;

use super::{Nav, Session, at, csrf_field, fail, field, form, outcome, page};
use crate::error::bad;
use crate::routes::Op;
use crate::{AppState, api};

pub(super) async fn models(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    let v = match api::list_models(State(state), Query(BTreeMap::new())).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let admin = s.can(Op::TrainModel);
    let training = (!v.training.is_empty()).then(|| v.training.join(", "));
    let body = html! {
        h1 { "Models" }
        p.muted {
            "Behaviour scoring is "
            @if v.anomaly_scoring {
                "on"
            } @else {
                "off (detection.anomaly = false)"
            }
            ". Feature schema version " (v.schema_version) ". "
            @if let Some(t) = training { "Training now: " (t) "." }
        }
        @if admin {
            form.panel.row method="post" action="/ui/models" id="train" {
                (csrf_field(&s))
                input type="hidden" name="action" value="train";
                label {
                    "Model"
                    select name="model_name" {
                        option value="anomaly" { "anomaly (isolation forest over behaviour)" }
                        option value="feedback" { "feedback (from analysts' verdicts)" }
                    }
                }
                label.check {
                    input type="checkbox" name="activate" value="true";
                    " activate when trained"
                }
                button.primary type="submit" { "Train" }
            }
        }
        @if v.items.is_empty() {
            p.empty { "No model has been trained yet." }
        } @else {
            table.cards id="models-table" {
                thead {
                    tr {
                        th { "Model" }
                        th { "Status" }
                        th.num { "Samples" }
                        th { "Metrics" }
                        th { "Trained" }
                        th {}
                    }
                }
                tbody {
                    @for m in &v.items {
                        (model_rows(&s, m, admin))
                    }
                }
            }
        }
    };
    page(&s, "Models", Nav::Models, None, body)
}

/// A model's row, and a second with its message if it has one.
fn model_rows(s: &Session, m: &ModelRecord, admin: bool) -> Markup {
    let (id, active, name) = (m.id, m.active, &m.name);
    let progress = if m.status == "training" {
        format!(" {:.0}%", m.progress * 100.0)
    } else {
        String::new()
    };
    html! {
        tr {
            td data-label="Model" {
                strong { (name) " v" (m.version) } " "
                span.small.muted { "#" (id) }
                @if active { " " span.tag { "active" } }
            }
            td data-label="Status" { (m.status) (progress) }
            td.num data-label="Samples" { (m.samples) }
            td.small data-label="Metrics" { (metrics(&m.metrics)) }
            td.small data-label="Trained" { (at(&m.created)) " by " (m.trained_by) }
            td {
                @if admin && !active && m.status == "ready" {
                    form method="post" action="/ui/models" {
                        (csrf_field(s))
                        input type="hidden" name="action" value="activate";
                        input type="hidden" name="id" value=(id);
                        button type="submit" { "Activate" }
                    }
                } @else if admin && active {
                    form method="post" action="/ui/models" {
                        (csrf_field(s))
                        input type="hidden" name="action" value="rollback";
                        input type="hidden" name="model_name" value=(name);
                        button type="submit" { "Roll back" }
                    }
                }
            }
        }
        @if !m.message.is_empty() {
            tr { td {} td colspan="5" class="small muted" { (m.message) } }
        }
    }
}

/// Up to six of a model's metrics, one a line.
fn metrics(metrics: &Value) -> Markup {
    let shown: Vec<(&String, String)> = metrics
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, v)| v.is_number() || v.is_string())
        .take(6)
        .map(|(k, v)| {
            let text = match v.as_f64() {
                Some(f) if f.fract() != 0.0 => format!("{f:.3}"),
                _ => v.to_string().trim_matches('"').to_string(),
            };
            (k, text)
        })
        .collect();
    html! {
        @for (i, (k, v)) in shown.iter().enumerate() {
            @if i > 0 { br; }
            (k) ": " (v)
        }
    }
}

pub(super) async fn models_action(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let caller = Extension(s.caller.clone());
    let result = match field(&fields, "action") {
        Some("train") => {
            if let Err(r) = s.require(Op::TrainModel) {
                return r;
            }
            let mut q = BTreeMap::new();
            q.insert(
                "model_name".to_string(),
                field(&fields, "model_name").unwrap_or("").to_string(),
            );
            if field(&fields, "activate") == Some("true") {
                q.insert("activate".into(), "true".into());
            }
            api::train_model(State(state), caller, Query(q))
                .await
                .map(|_| "Training started.".to_string())
        }
        Some("activate") => {
            if let Err(r) = s.require(Op::ActivateModel) {
                return r;
            }
            let id = field(&fields, "id")
                .and_then(|v| v.parse().ok())
                .unwrap_or(0);
            api::activate_model(State(state), caller, Path(id))
                .await
                .map(|_| format!("Model #{id} is active."))
        }
        Some("rollback") => {
            if let Err(r) = s.require(Op::RollbackModel) {
                return r;
            }
            let mut q = BTreeMap::new();
            q.insert(
                "model_name".to_string(),
                field(&fields, "model_name").unwrap_or("").to_string(),
            );
            api::rollback_model(State(state), caller, Query(q))
                .await
                .map(|_| "Rolled back.".to_string())
        }
        _ => Err(bad("unknown action")),
    };
    outcome("/ui/models", result, |msg| msg)
}
