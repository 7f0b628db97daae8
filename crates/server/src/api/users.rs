//! Users and API keys (admin).

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    username: String,
    password: String,
    role: String,
}

pub(super) fn user_json(u: &cloudsentinel_store::UserRecord) -> Value {
    json!({"id": u.id, "username": u.username, "role": u.role, "created": u.created, "disabled": u.disabled})
}

pub(super) fn check_username(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@'));
    if ok {
        Ok(())
    } else {
        Err(bad(
            "username: 1 to 64 characters of letters, digits, . _ - @",
        ))
    }
}

pub async fn register(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewUser = json_body(&body)?;
    check_username(&b.username)?;
    let role = Role::parse(&b.role)
        .ok_or_else(|| bad("role: expected admin, responder, analyst or viewer"))?;
    auth::check_password_policy(&b.password, &b.username).map_err(bad)?;
    let password = b.password;
    let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
        .await
        .map_err(|e| ApiError::Internal(e.into()))??;
    let name = b.username.clone();
    let user = blocking(&state, move |s| s.create_user(&name, &hash, role.as_str())).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.created",
        format!("user:{}", user.username),
        json!({"role": role}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(user_json(&user))).into_response())
}

pub async fn list_users(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let users = blocking(&state, |s| s.users()).await?;
    Ok(Json(
        json!({"items": users.iter().map(user_json).collect::<Vec<_>>()}),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct UserPatch {
    role: Option<String>,
    disabled: Option<bool>,
    password: Option<String>,
}

pub async fn update_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
    body: Bytes,
) -> ApiResult<Json<Value>> {
    let b: UserPatch = json_body(&body)?;
    let role = match &b.role {
        Some(r) => Some(
            Role::parse(r)
                .ok_or_else(|| bad("role: expected admin, responder, analyst or viewer"))?,
        ),
        None => None,
    };
    if caller.user_id == Some(id)
        && (b.disabled == Some(true) || role.is_some_and(|r| r != Role::Admin))
    {
        return Err(ApiError::Conflict(
            "you cannot demote or disable yourself".into(),
        ));
    }
    let hash = match b.password.clone() {
        Some(p) => {
            let target = blocking(&state, move |s| s.user(id))
                .await?
                .ok_or_else(|| not_found(format!("user {id}")))?;
            auth::check_password_policy(&p, &target.username).map_err(bad)?;
            Some(
                tokio::task::spawn_blocking(move || auth::hash_password(&p))
                    .await
                    .map_err(|e| ApiError::Internal(e.into()))??,
            )
        }
        None => None,
    };
    let disabled = b.disabled;
    let user = blocking(&state, move |s| {
        s.update_user(id, role.map(Role::as_str), hash.as_deref(), disabled)
    })
    .await?
    .ok_or_else(|| not_found(format!("user {id}")))?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.updated",
        format!("user:{}", user.username),
        json!({"role": b.role, "disabled": b.disabled, "password_changed": b.password.is_some()}),
    )
    .await?;
    Ok(Json(user_json(&user)))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    if caller.user_id == Some(id) {
        return Err(ApiError::Conflict("you cannot delete yourself".into()));
    }
    let user = blocking(&state, move |s| s.user(id))
        .await?
        .ok_or_else(|| not_found(format!("user {id}")))?;
    blocking(&state, move |s| s.delete_user(id)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.deleted",
        format!("user:{}", user.username),
        json!({}),
    )
    .await?;
    Ok(Json(json!({"deleted": id})))
}

pub async fn list_api_keys(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let keys = blocking(&state, |s| s.api_keys()).await?;
    Ok(Json(json!({"items": keys})))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewKey {
    name: String,
}

pub async fn create_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Response> {
    let b: NewKey = json_body(&body)?;
    if b.name.trim().is_empty() || b.name.len() > 100 {
        return Err(bad("name: 1 to 100 characters"));
    }
    let (key, prefix, hash) = auth::new_api_key();
    let by = caller.name.clone();
    let name = b.name.clone();
    let rec = blocking(&state, move |s| {
        s.create_api_key(&name, &prefix, &hash, "ingest", &by)
    })
    .await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "api_key.created",
        format!("api_key:{}", rec.id),
        json!({"name": rec.name, "prefix": rec.prefix}),
    )
    .await?;
    Ok((
        StatusCode::CREATED,
        Json(json!({"id": rec.id, "name": rec.name, "prefix": rec.prefix, "role": rec.role, "key": key,
                    "note": "store the key now: it is not shown again"})),
    )
        .into_response())
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<Value>> {
    if !blocking(&state, move |s| s.revoke_api_key(id)).await? {
        return Err(not_found(format!("active API key {id}")));
    }
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "api_key.revoked",
        format!("api_key:{id}"),
        json!({}),
    )
    .await?;
    Ok(Json(json!({"revoked": id})))
}
