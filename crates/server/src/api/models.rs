//! The model registry: training, activation, rollback.

use cloudsentinel_learn::anomaly::FeatureSchema;
use cloudsentinel_store::ModelRecord;

use super::*;

pub(super) fn model_name(
    q: &BTreeMap<String, String>,
    required: bool,
) -> ApiResult<Option<String>> {
    match q.get("model_name").map(String::as_str) {
        Some(n @ ("anomaly" | "feedback")) => Ok(Some(n.to_string())),
        Some(other) => Err(bad(format!(
            "model_name={other}: expected anomaly or feedback"
        ))),
        None if required => Err(bad("model_name is required: anomaly or feedback")),
        None => Ok(None),
    }
}

pub(super) fn only_params(q: &BTreeMap<String, String>, known: &[&str]) -> ApiResult<()> {
    match q.keys().find(|k| !known.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "unknown query parameter {k}; known: {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// The model registry and what is running.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ModelList {
    pub items: Vec<ModelRecord>,
    pub active: ActiveModels,
    /// The names of the models training now.
    pub training: Vec<&'static str>,
    /// The behaviour feature schema version this service computes.
    pub schema_version: u32,
    /// Whether behaviour scoring is on (`detection.anomaly`).
    pub anomaly_scoring: bool,
}

/// The id of the model running under each name (null: none).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ActiveModels {
    pub anomaly: Option<i64>,
    pub feedback: Option<i64>,
}

pub async fn list_models(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<ModelList>> {
    only_params(&q, &["model_name"])?;
    let name = model_name(&q, false)?;
    let items = blocking(&state, move |s| s.models(name.as_deref())).await?;
    let l = &state.learning;
    Ok(Json(ModelList {
        items,
        active: ActiveModels {
            anomaly: l.anomaly().map(|a| a.id),
            feedback: l.feedback().map(|a| a.id),
        },
        training: crate::learning::MODEL_NAMES
            .into_iter()
            .filter(|n| l.is_training(n))
            .collect(),
        schema_version: cloudsentinel_learn::behaviour::SCHEMA_VERSION,
        anomaly_scoring: l.enabled,
    }))
}

pub async fn model_schema() -> Json<FeatureSchema> {
    Json(cloudsentinel_learn::anomaly::feature_schema())
}

pub async fn get_model(
    State(state): State<AppState>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ModelRecord>> {
    let m = blocking(&state, move |s| s.model(id, false))
        .await?
        .ok_or_else(|| not_found(format!("model {id}")))?;
    Ok(Json(m))
}

pub async fn train_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<(StatusCode, Json<ModelRecord>)> {
    only_params(&q, &["model_name", "since", "until", "activate"])?;
    let name = model_name(&q, true)?.unwrap_or_default();
    let window = (time_param(&q, "since")?, time_param(&q, "until")?);
    if let (Some(a), Some(b)) = window
        && a >= b
    {
        return Err(bad("since must be before until"));
    }
    let activate = match q.get("activate").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(v) => return Err(bad(format!("activate={v}: expected true or false"))),
    };
    if name == "anomaly" && !state.learning.enabled {
        return Err(ApiError::Conflict(
            "anomaly scoring is off (detection.anomaly = false): turn it on to train an anomaly model".into(),
        ));
    }
    let (store, learning, by) = (
        Arc::clone(&state.store),
        Arc::clone(&state.learning),
        caller.name.clone(),
    );
    let n = name.clone();
    let rec = tokio::task::spawn_blocking(move || {
        crate::learning::start_training(store, learning, &n, &by, window, activate)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| match e {
        crate::learning::StartError::UnknownName(n) => bad(format!("unknown model name {n}")),
        crate::learning::StartError::Busy(m) => ApiError::Conflict(m),
        crate::learning::StartError::Store(e) => e.into(),
    })?;
    audit(&state, &caller.name, caller.source_ip.clone(), "model.train", format!("model:{}", rec.id),
          json!({"name": name, "version": rec.version, "since": window.0, "until": window.1, "activate": activate})).await?;
    Ok((StatusCode::ACCEPTED, Json(rec)))
}

pub async fn activate_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<ModelRecord>> {
    let (store, learning) = (Arc::clone(&state.store), Arc::clone(&state.learning));
    let m = tokio::task::spawn_blocking(move || {
        crate::learning::activate_and_install(store.as_ref(), &learning, id)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(|e| match e.downcast::<cloudsentinel_store::StoreError>() {
        Ok(s) => ApiError::from(s),
        Err(e) => ApiError::Conflict(format!("{e:#}")),
    })?
    .ok_or_else(|| not_found(format!("model {id}")))?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "model.activate",
        format!("model:{id}"),
        json!({"name": m.name, "version": m.version}),
    )
    .await?;
    Ok(Json(m))
}

/// The answer to a rollback: which model stopped and which runs now.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RolledBack {
    /// The model name (`anomaly` or `feedback`).
    pub name: String,
    /// The id of the model that was active (null: none was).
    pub deactivated: Option<i64>,
    /// The model active now (null: none).
    pub active: Option<ModelRecord>,
    /// Empty, or why no model is active now.
    pub note: String,
}

pub async fn rollback_model(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Query(q): Q,
) -> ApiResult<Json<RolledBack>> {
    only_params(&q, &["model_name"])?;
    let name = model_name(&q, true)?.unwrap_or_default();
    let (store, learning) = (Arc::clone(&state.store), Arc::clone(&state.learning));
    let n = name.clone();
    let (from, to) = tokio::task::spawn_blocking(
        move || -> anyhow::Result<(Option<i64>, Option<ModelRecord>)> {
            let models = store.models(Some(&n))?;
            let current = models.iter().find(|m| m.active).map(|m| m.id);
            // The model activated most recently before the current one.
            let previous = models
                .iter()
                .filter(|m| !m.active && m.status == "ready" && m.activated.is_some())
                .max_by_key(|m| m.activated)
                .map(|m| m.id);
            match previous {
                Some(p) => Ok((
                    current,
                    crate::learning::activate_and_install(store.as_ref(), &learning, p)?,
                )),
                None => {
                    store.deactivate_models(&n)?;
                    learning.remove(&n);
                    Ok((current, None))
                }
            }
        },
    )
    .await
    .map_err(|e| ApiError::Internal(e.into()))?
    .map_err(ApiError::Internal)?;
    if from.is_none() && to.is_none() {
        return Err(ApiError::Conflict(format!(
            "no {name} model is active: nothing to roll back"
        )));
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "model.rollback",
        format!("model:{}", from.unwrap_or(0)),
        json!({"name": name, "from": from, "to": to.as_ref().map(|m| m.id)}),
    )
    .await?;
    let note = if to.is_none() {
        format!("no earlier {name} model was ever active: none is active now")
    } else {
        String::new()
    };
    Ok(Json(RolledBack {
        name,
        deactivated: from,
        active: to,
        note,
    }))
}
