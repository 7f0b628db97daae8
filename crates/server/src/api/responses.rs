//! Containment from alerts: what the playbooks propose for an alert (with the exact calls), and
//! the responses recorded for it: proposed, approved (by another person with `four_eyes`), run
//! (guardrails, execute, verify; the state before recorded), undone. Every step is in the audit
//! log with who, what, and the state before and after.

use cloudsentinel_respond::playbook::{AlertFacts, Mode, Playbook, proposals};
use cloudsentinel_respond::{Action, Before, Clients, Guard};
use cloudsentinel_store::{NewResponse, ResponseRecord, ResponseStep};

use super::*;

/// A playbook's proposal for an alert.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ProposalView {
    pub playbook: String,
    pub title: String,
    /// `propose`, `auto` or `off`.
    pub mode: String,
    /// The action with its parameters, when the evidence gave them all.
    pub action: Option<Value>,
    pub describe: Option<String>,
    /// The exact API calls it would make.
    pub calls: Vec<String>,
    /// Whether undo restores exactly what was there.
    pub reversible: Option<bool>,
    /// Why it cannot be proposed (a value the evidence does not have).
    pub missing: Option<String>,
    /// The response recorded for the same action, if any.
    pub response_id: Option<i64>,
}

/// A recorded response, described.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ResponseView {
    #[serde(flatten)]
    pub record: ResponseRecord,
    pub describe: String,
    /// The calls its next step makes: the action's (before it ran), undo's (after).
    pub calls: Vec<String>,
    /// Why it needs a second responder's approval before it runs, while it has not had one (a
    /// second quarantine in one incident).
    pub second_approval: Option<String>,
}

/// What can be done about an alert.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertResponses {
    pub proposals: Vec<ProposalView>,
    pub responses: Vec<ResponseView>,
    /// Whether the proposer may not approve.
    pub four_eyes: bool,
}

/// The answer of a step: the record, and a secret to hand over once (undoing a deleted console
/// password sets a new one).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ResponseStepAnswer {
    #[serde(flatten)]
    pub response: ResponseView,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
}

fn action_of(r: &ResponseRecord) -> ApiResult<Action> {
    serde_json::from_value(r.action.clone())
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("response {}: {e}", r.id)))
}

fn view(r: ResponseRecord) -> ResponseView {
    let action: Option<Action> = serde_json::from_value(r.action.clone()).ok();
    let before: Option<Before> = r
        .before
        .clone()
        .and_then(|b| serde_json::from_value(b).ok());
    let calls = match (&action, &before, r.status.as_str()) {
        (Some(a), Some(b), "done" | "failed") => a.undo_plan(b),
        (Some(a), _, "proposed" | "approved") => a.plan(),
        _ => Vec::new(),
    };
    ResponseView {
        describe: action
            .as_ref()
            .map(Action::describe)
            .unwrap_or_else(|| r.action.to_string()),
        calls: calls.iter().map(ToString::to_string).collect(),
        second_approval: None,
        record: r,
    }
}

/// Why a response needs a second approval it has not had: it quarantines an instance, and
/// another quarantine already ran (`others`: the responses of its incident, or of its alert
/// when the alert is in none). Quarantines cut machines off: one per incident is the blast
/// radius a single responder may decide.
fn second_approval_missing(rec: &ResponseRecord, others: &[ResponseRecord]) -> Option<String> {
    let quarantine = |r: &ResponseRecord| r.action["action"] == "aws.quarantine-instance";
    if !quarantine(rec) || rec.second_approved_by.is_some() {
        return None;
    }
    let earlier = others.iter().find(|o| {
        o.id != rec.id && quarantine(o) && matches!(o.status.as_str(), "done" | "failed")
    })?;
    Some(format!(
        "response #{} already quarantined {} in this incident: another quarantine needs a second responder's approval",
        earlier.id,
        earlier.action["instance_id"]
            .as_str()
            .unwrap_or("an instance"),
    ))
}

/// The responses a response's blast radius is judged among: its alert's incident's, or the
/// alert's when it is in none.
async fn responses_around(
    state: &AppState,
    alert_id: i64,
    incident_id: Option<i64>,
) -> ApiResult<Vec<ResponseRecord>> {
    blocking(state, move |s| match incident_id {
        Some(incident) => s.incident_responses(incident),
        None => s.responses(Some(alert_id), 1000),
    })
    .await
}

/// The original records of an alert's evidence.
async fn evidence_records(state: &AppState, alert: &AlertRecord) -> ApiResult<Vec<Value>> {
    let ids: Vec<String> = alert.event_ids.iter().take(25).cloned().collect();
    let within = (alert.first_seen, alert.last_seen);
    let rows = blocking(state, move |s| s.events_by_id(&ids, within, true)).await?;
    Ok(rows.into_iter().filter_map(|r| r.raw).collect())
}

pub(crate) async fn alert_responses_of(
    state: &AppState,
    alert_id: i64,
) -> ApiResult<AlertResponses> {
    let alert = blocking(state, move |s| s.alert(alert_id))
        .await?
        .ok_or_else(|| not_found(format!("alert {alert_id}")))?;
    let evidence = evidence_records(state, &alert).await?;
    let recorded = blocking(state, move |s| s.responses(Some(alert_id), 100)).await?;
    let facts = AlertFacts {
        rule_id: &alert.rule_id,
        techniques: &alert.techniques,
        level: alert.level.as_str(),
        kind: &alert.kind,
    };
    let proposals = proposals(&playbooks(state), &facts, &evidence)
        .into_iter()
        .map(|p| {
            let (action, describe, calls, reversible, missing) = match &p.action {
                Ok(a) => (
                    serde_json::to_value(a).ok(),
                    Some(a.describe()),
                    a.plan().iter().map(ToString::to_string).collect(),
                    Some(a.reversible()),
                    None,
                ),
                Err(m) => (None, None, Vec::new(), None, Some(m.clone())),
            };
            let response_id = action.as_ref().and_then(|v| {
                recorded
                    .iter()
                    .rev()
                    .find(|r| &r.action == v && r.status != "refused")
                    .map(|r| r.id)
            });
            ProposalView {
                playbook: p.playbook,
                title: p.playbook_title,
                mode: format!("{:?}", p.mode).to_lowercase(),
                action,
                describe,
                calls,
                reversible,
                missing,
                response_id,
            }
        })
        .collect();
    let around = responses_around(state, alert_id, alert.incident_id).await?;
    Ok(AlertResponses {
        proposals,
        responses: recorded
            .into_iter()
            .map(|r| {
                let missing = second_approval_missing(&r, &around);
                ResponseView {
                    second_approval: missing,
                    ..view(r)
                }
            })
            .collect(),
        four_eyes: state.config.config.respond.four_eyes,
    })
}

pub async fn alert_responses(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<AlertResponses>> {
    Ok(Json(alert_responses_of(&state, id).await?))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProposeBody {
    pub action: Value,
    #[serde(default)]
    pub playbook: Option<String>,
}

pub(crate) async fn propose(
    state: &AppState,
    caller: &Caller,
    alert_id: i64,
    body: ProposeBody,
) -> ApiResult<ResponseView> {
    let action: Action =
        serde_json::from_value(body.action.clone()).map_err(|e| bad(format!("action: {e}")))?;
    let alert = blocking(state, move |s| s.alert(alert_id))
        .await?
        .ok_or_else(|| not_found(format!("alert {alert_id}")))?;
    let new = NewResponse {
        alert_id,
        playbook: body.playbook.clone(),
        action: serde_json::to_value(&action).map_err(|e| ApiError::Internal(e.into()))?,
        account: alert.account.clone(),
        proposed_by: caller.name.clone(),
    };
    let rec = blocking(state, move |s| s.propose_response(&new)).await?;
    audit(
        state,
        &caller.name,
        caller.source_ip.clone(),
        "response.propose",
        format!("response:{}", rec.id),
        json!({"alert": alert_id, "action": rec.action, "playbook": rec.playbook, "account": rec.account}),
    )
    .await?;
    Ok(view(rec))
}

pub async fn propose_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<(StatusCode, Json<ResponseView>)> {
    let b: ProposeBody = json_body(&body)?;
    Ok((
        StatusCode::CREATED,
        Json(propose(&state, &caller, id, b).await?),
    ))
}

/// The steps a responder takes on a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Approve,
    Run,
    Undo,
}

pub(crate) async fn step(
    state: &AppState,
    caller: &Caller,
    id: i64,
    step: Step,
) -> ApiResult<ResponseStepAnswer> {
    let rec = blocking(state, move |s| s.response(id))
        .await?
        .ok_or_else(|| not_found(format!("response {id}")))?;
    let action = action_of(&rec)?;
    let cfg = &state.config.config.respond;
    let now = Utc::now();
    let alert_id = rec.alert_id;
    let alert = blocking(state, move |s| s.alert(alert_id)).await?;
    let around = if step == Step::Undo {
        Vec::new()
    } else {
        let incident = alert.as_ref().and_then(|a| a.incident_id);
        responses_around(state, alert_id, incident).await?
    };
    let (step_record, from, secret, audit_detail): (
        ResponseStep,
        Vec<&str>,
        Option<String>,
        Value,
    ) = match step {
        Step::Approve if rec.status == "approved" => {
            // Only a response that needs a second approval takes one, from someone else.
            let Some(reason) = second_approval_missing(&rec, &around) else {
                return Err(ApiError::Conflict(format!(
                    "response {id} is already approved"
                )));
            };
            if rec.approved_by.as_deref() == Some(caller.name.as_str())
                || (cfg.four_eyes && rec.proposed_by == caller.name)
            {
                return Err(ApiError::Conflict(format!(
                    "{reason}: {} cannot give it twice (another responder approves)",
                    caller.name
                )));
            }
            (
                ResponseStep::SecondApproval {
                    by: caller.name.clone(),
                },
                vec!["approved"],
                None,
                json!({"action": rec.action, "second_approval": true, "because": reason}),
            )
        }
        Step::Approve => {
            if cfg.four_eyes && rec.proposed_by == caller.name {
                return Err(ApiError::Conflict(format!(
                    "{} proposed this action: another responder approves it (four eyes)",
                    caller.name
                )));
            }
            (
                ResponseStep::Approved {
                    by: caller.name.clone(),
                },
                vec!["proposed"],
                None,
                json!({"action": rec.action}),
            )
        }
        Step::Run => {
            let from = if cfg.four_eyes {
                vec!["approved"]
            } else {
                vec!["proposed", "approved"]
            };
            if !from.contains(&rec.status.as_str()) {
                return Err(ApiError::Conflict(format!(
                    "response {id} is {}: it runs once, after approval",
                    rec.status
                )));
            }
            // Not a refusal: the response waits for the second approval and runs after it.
            if let Some(reason) = second_approval_missing(&rec, &around) {
                return Err(ApiError::Conflict(reason));
            }
            // Guardrails: protected principals; actions per account per hour.
            let account = rec.account.clone();
            let ran = blocking(state, move |s| {
                s.responses_run_since(account.as_deref(), now - chrono::Duration::hours(1))
            })
            .await?;
            let refusal = if ran >= cfg.max_per_hour {
                Some(format!(
                    "{ran} actions ran in account {} in the last hour: the limit (respond.max_per_hour) is {}",
                    rec.account.as_deref().unwrap_or("?"),
                    cfg.max_per_hour
                ))
            } else {
                Guard::new(cfg.protected.clone(), 0)
                    .admit(&action, now)
                    .err()
                    .map(|e| e.to_string())
            };
            if let Some(reason) = refusal {
                let step = ResponseStep::Refused {
                    by: caller.name.clone(),
                    reason: reason.clone(),
                };
                blocking(state, move |s| s.step_response(id, &from, &step, now)).await?;
                audit(
                    state,
                    &caller.name,
                    caller.source_ip.clone(),
                    "response.refused",
                    format!("response:{id}"),
                    json!({"action": rec.action, "reason": reason}),
                )
                .await?;
                return Err(ApiError::Conflict(reason));
            }
            let region = alert_region(state, alert.as_ref()).await?;
            let (aws, graph) = (
                client(state, rec.account.as_deref(), region.as_deref()),
                graph(state),
            );
            let gcp = gcp(state);
            let a2 = action.clone();
            let (outcome, verified) = tokio::task::spawn_blocking(move || {
                let clients = Clients {
                    aws: Some(&aws),
                    graph: graph.as_ref(),
                    gcp: gcp.as_ref(),
                };
                let outcome = a2.execute(&clients);
                let verified = outcome
                    .result
                    .is_ok()
                    .then(|| a2.verify(&clients).unwrap_or(false));
                (outcome, verified)
            })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?;
            let before = outcome
                .before
                .as_ref()
                .and_then(|b| serde_json::to_value(b).ok());
            let result = match (&outcome.result, verified) {
                (Err(e), _) => Some(e.to_string()),
                (Ok(()), Some(false)) => Some("made, but reading it back does not show it".into()),
                _ => None,
            };
            (
                ResponseStep::Ran {
                    by: caller.name.clone(),
                    before: before.clone(),
                    changed: outcome.result.is_ok(),
                    verified,
                    result: result.clone(),
                },
                from,
                None,
                json!({"action": rec.action, "account": rec.account, "region": region, "before": before,
                           "changed": outcome.result.is_ok(), "verified": verified, "error": result}),
            )
        }
        Step::Undo => {
            if !["done", "failed"].contains(&rec.status.as_str()) {
                return Err(ApiError::Conflict(format!(
                    "response {id} is {}: only an action that ran is undone",
                    rec.status
                )));
            }
            let Some(before) = rec
                .before
                .clone()
                .and_then(|b| serde_json::from_value::<Before>(b).ok())
            else {
                return Err(ApiError::Conflict(format!(
                    "response {id} changed nothing (the state before could not be read): nothing to undo"
                )));
            };
            let region = alert_region(state, alert.as_ref()).await?;
            let (aws, graph) = (
                client(state, rec.account.as_deref(), region.as_deref()),
                graph(state),
            );
            let gcp = gcp(state);
            let (a2, b2) = (action.clone(), before.clone());
            let undone = tokio::task::spawn_blocking(move || {
                let clients = Clients {
                    aws: Some(&aws),
                    graph: graph.as_ref(),
                    gcp: gcp.as_ref(),
                };
                a2.undo(&clients, &b2)
            })
            .await
            .map_err(|e| ApiError::Internal(e.into()))?
            .map_err(|e| ApiError::Conflict(format!("undo failed: {e}")))?;
            (
                ResponseStep::Undone {
                    by: caller.name.clone(),
                    result: undone.message.clone(),
                },
                vec!["done", "failed"],
                undone.secret,
                json!({"action": rec.action, "account": rec.account, "restored": before,
                           "message": undone.message}),
            )
        }
    };
    let updated = blocking(state, move |s| {
        s.step_response(id, &from, &step_record, now)
    })
    .await?
    .ok_or_else(|| ApiError::Conflict(format!("response {id} changed meanwhile: reload")))?;
    audit(
        state,
        &caller.name,
        caller.source_ip.clone(),
        match step {
            Step::Approve => "response.approve",
            Step::Run => "response.run",
            Step::Undo => "response.undo",
        },
        format!("response:{id}"),
        audit_detail,
    )
    .await?;
    let missing = second_approval_missing(&updated, &around);
    Ok(ResponseStepAnswer {
        response: ResponseView {
            second_approval: missing,
            ..view(updated)
        },
        secret,
    })
}

/// The Graph client of `respond.entra`, when configured and its secret is set.
fn graph(state: &AppState) -> Option<cloudsentinel_cloud::graph::GraphClient> {
    let e = state.config.config.respond.entra.as_ref()?;
    let secret = std::env::var(&e.client_secret_env).ok()?;
    Some(cloudsentinel_cloud::graph::GraphClient::new(
        &e.tenant_id,
        &e.client_id,
        &secret,
        e.graph_endpoint.as_deref(),
        e.authority.as_deref(),
    ))
}

/// The GCP IAM client of `respond.gcp`, when configured (its credentials read at start).
fn gcp(state: &AppState) -> Option<cloudsentinel_cloud::gcp_iam::GcpIamClient> {
    let g = state.config.config.respond.gcp.as_ref()?;
    let credentials = state.config.respond_gcp.clone()?;
    Some(cloudsentinel_cloud::gcp_iam::GcpIamClient::new(
        credentials,
        g.endpoint.as_deref(),
    ))
}

/// The AWS region of an alert's evidence (`awsRegion` of its first record that has one): EC2,
/// S3, CloudTrail and GuardDuty calls are made there, since the resource the alert is about
/// lives there. `None` for an alert from another cloud or without evidence.
async fn alert_region(state: &AppState, alert: Option<&AlertRecord>) -> ApiResult<Option<String>> {
    let Some(alert) = alert else {
        return Ok(None);
    };
    Ok(evidence_records(state, alert)
        .await?
        .iter()
        .find_map(|r| r["awsRegion"].as_str().map(str::to_string)))
}

/// A client for an alert's account and region: the configured role there, or the standard
/// chain; the alert's region, or `respond.region`.
fn client(
    state: &AppState,
    account: Option<&str>,
    region: Option<&str>,
) -> cloudsentinel_cloud::aws::Aws {
    let cfg = &state.config.config.respond;
    cloudsentinel_cloud::aws::Aws::new(cloudsentinel_cloud::aws::Config {
        region: region.map_or_else(|| cfg.region.clone(), str::to_string),
        endpoint_url: cfg.endpoint_url.clone(),
        role_arn: account.and_then(|a| cfg.roles.get(a).cloned()),
        external_id: None,
        timeout: std::time::Duration::from_secs(30),
    })
}

pub async fn approve_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ResponseStepAnswer>> {
    Ok(Json(step(&state, &caller, id, Step::Approve).await?))
}

pub async fn run_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ResponseStepAnswer>> {
    Ok(Json(step(&state, &caller, id, Step::Run).await?))
}

pub async fn undo_response(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ResponseStepAnswer>> {
    Ok(Json(step(&state, &caller, id, Step::Undo).await?))
}

/// The name automatic responses are recorded under.
pub const AUTO: &str = "cloudsentinel (auto)";

/// Runs what `mode: auto` playbooks propose for an alert, when every such action is reversible:
/// proposed, approved and run under [`AUTO`], with the same guardrails as a person's (four eyes
/// does not apply: the playbook's author and the admin who loaded it are the second pair).
/// Each action runs at most once per alert.
pub async fn auto_respond(state: &AppState, alert_id: i64) -> ApiResult<()> {
    let found = alert_responses_of(state, alert_id).await?;
    let caller = Caller {
        name: AUTO.to_string(),
        user_id: None,
        api_key_id: None,
        role: Some(Role::Responder),
        source_ip: None,
    };
    for p in found.proposals {
        if p.mode != "auto" || p.response_id.is_some() || p.reversible != Some(true) {
            continue;
        }
        let Some(action) = p.action else { continue };
        let rec = propose(
            state,
            &caller,
            alert_id,
            ProposeBody {
                action,
                playbook: Some(p.playbook.clone()),
            },
        )
        .await?;
        let id = rec.record.id;
        blocking(state, move |s| {
            s.step_response(
                id,
                &["proposed"],
                &ResponseStep::Approved { by: AUTO.into() },
                Utc::now(),
            )
        })
        .await?;
        match step(state, &caller, id, Step::Run).await {
            Ok(done) => {
                tracing::info!(alert = alert_id, response = id, status = %done.response.record.status,
                playbook = %p.playbook, "automatic response ran")
            }
            Err(e) => tracing::warn!(alert = alert_id, response = id, playbook = %p.playbook,
                error = %e.parts().2, "automatic response did not run"),
        }
    }
    Ok(())
}

/// Follows new and changed alerts and runs the automatic playbooks' actions for them (an admin
/// may turn a playbook to `auto` at any time).
pub async fn watch_auto(state: AppState, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut live = state.live.subscribe();
    loop {
        let alert = tokio::select! {
            a = live.recv() => a,
            _ = stop.changed() => return,
        };
        match alert {
            Ok(a) => {
                if !playbooks(&state).iter().any(|p| p.mode == Mode::Auto) {
                    continue;
                }
                if let Err(e) = auto_respond(&state, a.id).await {
                    tracing::warn!(alert = a.id, error = %e.parts().2, "automatic responses");
                }
            }
            Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                tracing::warn!(missed = n, "automatic responses fell behind the alerts");
            }
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return,
        }
    }
}

/// Where the playbook modes an admin set are kept in the store's state.
pub const PLAYBOOK_MODES: &str = "playbooks.modes";

/// The loaded playbooks with the modes an admin set.
pub(crate) fn playbooks(state: &AppState) -> Vec<Playbook> {
    let modes = state
        .playbook_modes
        .read()
        .unwrap_or_else(|e| e.into_inner());
    state
        .config
        .playbooks
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if let Some(m) = modes.get(&p.id) {
                p.mode = *m;
            }
            p
        })
        .collect()
}

/// A loaded playbook.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PlaybookView {
    pub id: String,
    pub title: String,
    pub description: Option<String>,
    /// `propose`, `auto` or `off`: the mode in force.
    pub mode: String,
    /// The mode its file says.
    pub file_mode: String,
    /// Which alerts it is for (rules, techniques, min_level, kinds).
    pub when: Value,
    /// Its actions, as templates (`{path}` is read from the alert's evidence).
    pub actions: Vec<Value>,
    /// Whether every action is exactly reversible (`auto` needs it).
    pub reversible: bool,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PlaybookList {
    pub playbooks: Vec<PlaybookView>,
}

fn mode_name(m: Mode) -> String {
    format!("{m:?}").to_lowercase()
}

fn playbook_view(p: &Playbook, file_mode: Mode) -> PlaybookView {
    PlaybookView {
        id: p.id.clone(),
        title: p.title.clone(),
        description: p.description.clone(),
        mode: mode_name(p.mode),
        file_mode: mode_name(file_mode),
        when: serde_json::to_value(&p.when).unwrap_or_default(),
        actions: p.actions.iter().cloned().map(Value::Object).collect(),
        reversible: p.reversible(),
    }
}

pub async fn list_playbooks(State(state): State<AppState>) -> ApiResult<Json<PlaybookList>> {
    let effective = playbooks(&state);
    Ok(Json(PlaybookList {
        playbooks: effective
            .iter()
            .zip(&state.config.playbooks)
            .map(|(p, file)| playbook_view(p, file.mode))
            .collect(),
    }))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlaybookPatch {
    pub mode: Mode,
    #[serde(default)]
    pub reason: String,
}

/// Sets a playbook's mode (kept across restarts, audited): `off` stops its proposals, `auto`
/// (only for a playbook whose every action is exactly reversible) runs them as alerts arrive.
pub async fn update_playbook(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Json<PlaybookView>> {
    let b: PlaybookPatch = json_body(&body)?;
    if b.reason.len() > 2000 {
        return Err(bad("reason: at most 2000 characters"));
    }
    let Some(file) = state.config.playbooks.iter().find(|p| p.id == id) else {
        return Err(not_found(format!("playbook {id}")));
    };
    if b.mode == Mode::Auto && !file.reversible() {
        let irreversible: Vec<&str> = file
            .actions
            .iter()
            .filter_map(|a| a.get("action").and_then(Value::as_str))
            .filter(|a| !cloudsentinel_respond::reversible(a))
            .collect();
        return Err(ApiError::Conflict(format!(
            "playbook {id} has actions undo cannot restore exactly ({}): it cannot run without a person",
            irreversible.join(", ")
        )));
    }
    let (before, stored) = {
        let mut modes = state
            .playbook_modes
            .write()
            .unwrap_or_else(|e| e.into_inner());
        let before = modes.get(&id).copied().unwrap_or(file.mode);
        if b.mode == file.mode {
            modes.remove(&id);
        } else {
            modes.insert(id.clone(), b.mode);
        }
        (
            before,
            serde_json::to_vec(&*modes).map_err(|e| ApiError::Internal(e.into()))?,
        )
    };
    blocking(&state, move |s| s.put_state(PLAYBOOK_MODES, &stored)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "playbook.mode",
        format!("playbook:{id}"),
        json!({"before": mode_name(before), "after": mode_name(b.mode), "reason": b.reason}),
    )
    .await?;
    let mut p = file.clone();
    p.mode = b.mode;
    Ok(Json(playbook_view(&p, file.mode)))
}
