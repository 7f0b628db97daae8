//! Users and API keys (admin).

use cloudsentinel_store::ApiKeyRecord;

use super::*;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct NewUser {
    username: String,
    password: String,
    role: String,
}

/// A user account (without its password hash and token secrets).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct User {
    pub id: i64,
    pub username: String,
    /// `admin`, `responder`, `analyst` or `viewer`.
    pub role: String,
    pub created: DateTime<Utc>,
    /// A disabled user cannot sign in.
    pub disabled: bool,
}

impl From<cloudsentinel_store::UserRecord> for User {
    fn from(u: cloudsentinel_store::UserRecord) -> User {
        User {
            id: u.id,
            username: u.username,
            role: u.role,
            created: u.created,
            disabled: u.disabled,
        }
    }
}

/// The users.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct UserList {
    pub items: Vec<User>,
}

/// The answer to deleting a user.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DeletedUser {
    /// The deleted user's id.
    pub deleted: i64,
}

/// The API keys, revoked ones too.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ApiKeyList {
    pub items: Vec<ApiKeyRecord>,
}

/// A new API key, with its secret: shown this once.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct NewApiKey {
    pub id: i64,
    pub name: String,
    /// The first characters of the key, to recognise it in a list.
    pub prefix: String,
    pub role: String,
    /// The key itself, for `X-API-Key`.
    pub key: String,
    pub note: &'static str,
}

/// The answer to revoking an API key.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct RevokedApiKey {
    /// The revoked key's id.
    pub revoked: i64,
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
) -> ApiResult<(StatusCode, Json<User>)> {
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
    Ok((StatusCode::CREATED, Json(User::from(user))))
}

pub async fn list_users(State(state): State<AppState>) -> ApiResult<Json<UserList>> {
    let users = blocking(&state, |s| s.users()).await?;
    Ok(Json(UserList {
        items: users.into_iter().map(User::from).collect(),
    }))
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
) -> ApiResult<Json<User>> {
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
    Ok(Json(User::from(user)))
}

pub async fn delete_user(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<DeletedUser>> {
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
    Ok(Json(DeletedUser { deleted: id }))
}

pub async fn list_api_keys(State(state): State<AppState>) -> ApiResult<Json<ApiKeyList>> {
    let items = blocking(&state, |s| s.api_keys()).await?;
    Ok(Json(ApiKeyList { items }))
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
) -> ApiResult<(StatusCode, Json<NewApiKey>)> {
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
        Json(NewApiKey {
            id: rec.id,
            name: rec.name,
            prefix: rec.prefix,
            role: rec.role,
            key,
            note: "store the key now: it is not shown again",
        }),
    ))
}

pub async fn revoke_api_key(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<i64>,
) -> ApiResult<Json<RevokedApiKey>> {
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
    Ok(Json(RevokedApiKey { revoked: id }))
}
