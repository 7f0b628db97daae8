//! Sign-in, token refresh, sign-out, password changes and the caller's identity.

use super::*;

#[derive(Deserialize)]
pub(super) struct LoginForm {
    username: String,
    password: String,
}

/// A signed-in session: the tokens to send and who they stand for.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Tokens {
    /// Send as `Authorization: Bearer <access_token>`.
    pub access_token: String,
    /// Trade for new tokens at `POST /api/v1/auth/refresh`.
    pub refresh_token: String,
    /// Always `bearer`.
    pub token_type: &'static str,
    /// Seconds the access token is valid.
    pub expires_in: i64,
    pub role: Role,
    pub username: String,
}

pub(crate) fn issue(state: &AppState, user: &cloudsentinel_store::UserRecord) -> ApiResult<Tokens> {
    let role = Role::parse(&user.role).ok_or_else(|| {
        ApiError::Internal(anyhow::anyhow!(
            "user {} has role {}",
            user.username,
            user.role
        ))
    })?;
    let now = Utc::now().timestamp();
    let a = &state.config.config.auth;
    let claims = |typ: &str, ttl: i64| Claims {
        sub: user.username.clone(),
        uid: user.id,
        role,
        ver: user.token_version,
        sid: user.token_secret.clone(),
        typ: typ.to_string(),
        iat: now,
        exp: now + ttl,
    };
    Ok(Tokens {
        access_token: state.tokens.sign(&claims("access", a.access_token_secs)),
        refresh_token: state.tokens.sign(&claims("refresh", a.refresh_token_secs)),
        token_type: "bearer",
        expires_in: a.access_token_secs,
        role,
        username: user.username.clone(),
    })
}

pub async fn login(
    State(state): State<AppState>,
    Extension(ClientAddr(addr)): Extension<ClientAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Json<Tokens>> {
    let form_encoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    let form: LoginForm = if form_encoded {
        serde_urlencoded::from_bytes(&body).map_err(|e| bad(format!("login form: {e}")))?
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| bad(format!("expected {{\"username\", \"password\"}}: {e}")))?
    };
    if form.username.len() > 128 || form.password.len() > 1024 {
        return Err(bad("username or password too long"));
    }
    let from = addr.clone().unwrap_or_default();
    login_gate(&state, &from, &form.username).await?;
    let name = form.username.clone();
    let user = blocking(&state, move |s| s.user_by_name(&name)).await?;
    let password = form.password;
    let (ok, user) = tokio::task::spawn_blocking(move || {
        let hash = user
            .as_ref()
            .map(|u| u.password_hash.as_str())
            .unwrap_or(auth::dummy_hash());
        let ok = auth::verify_password(&password, hash);
        (ok, user)
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        _ => {
            state.limiter.failed(&from, &form.username);
            audit(
                &state,
                &form.username,
                addr,
                "auth.login_failed",
                format!("user:{}", form.username),
                json!({}),
            )
            .await?;
            return Err(ApiError::Unauthorized("wrong user name or password".into()));
        }
    };
    state.limiter.succeeded(&form.username);
    audit(
        &state,
        &user.username,
        addr,
        "auth.login",
        format!("user:{}", user.username),
        json!({}),
    )
    .await?;
    Ok(Json(issue(&state, &user)?))
}

/// Holds a sign-in attempt (or a password check) back as the login limiter says: refused
/// with 429 for a guessing address, delayed for a user name under attack.
pub(super) async fn login_gate(state: &AppState, addr: &str, user: &str) -> ApiResult<()> {
    match state.limiter.gate(addr, user) {
        auth::Gate::Open => Ok(()),
        auth::Gate::Wait(d) => {
            tokio::time::sleep(d).await;
            Ok(())
        }
        auth::Gate::Refuse(wait) => Err(ApiError::TooManyRequests {
            message: format!("too many failed sign-ins; try again in {wait} s"),
            retry_after: wait,
        }),
    }
}

#[derive(Deserialize)]
pub(super) struct RefreshBody {
    refresh_token: String,
}

pub async fn refresh(State(state): State<AppState>, body: Bytes) -> ApiResult<Json<Tokens>> {
    let b: RefreshBody = serde_json::from_slice(&body)
        .map_err(|e| bad(format!("expected {{\"refresh_token\"}}: {e}")))?;
    let claims = state
        .tokens
        .verify(&b.refresh_token, "refresh", Utc::now().timestamp())
        .map_err(|e| ApiError::Unauthorized(e.to_string()))?;
    let uid = claims.uid;
    let user = blocking(&state, move |s| s.user(uid)).await?;
    match user {
        Some(u) if auth::claims_match(&claims, &u) => Ok(Json(issue(&state, &u)?)),
        _ => Err(ApiError::Unauthorized(
            "refresh token revoked: sign in again".into(),
        )),
    }
}

/// The answer to signing out.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SignedOut {
    /// Always true: every token of the user is revoked.
    pub signed_out: bool,
}

pub async fn logout(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
) -> ApiResult<Json<SignedOut>> {
    let uid = caller
        .user_id
        .ok_or_else(|| bad("API keys do not sign out"))?;
    blocking(&state, move |s| s.bump_token_version(uid)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "auth.logout",
        format!("user:{}", caller.name),
        json!({}),
    )
    .await?;
    Ok(Json(SignedOut { signed_out: true }))
}

/// Who the caller is.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Me {
    pub username: String,
    /// Null for a caller that is not a user (an API key).
    pub user_id: Option<i64>,
    /// Null for a caller that is not a user (an API key).
    pub role: Option<Role>,
}

pub async fn me(Extension(caller): Extension<Caller>) -> Json<Me> {
    Json(Me {
        username: caller.name,
        user_id: caller.user_id,
        role: caller.role,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct PasswordChange {
    current_password: String,
    new_password: String,
}

/// The answer to a password change.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct PasswordChanged {
    /// Always true.
    pub changed: bool,
    pub note: &'static str,
}

pub async fn change_password(
    State(state): State<AppState>,
    Extension(caller): Extension<Caller>,
    body: Bytes,
) -> ApiResult<Json<PasswordChanged>> {
    let b: PasswordChange = json_body(&body)?;
    if b.current_password.len() > 1024 {
        return Err(bad("current_password is longer than 1024 bytes"));
    }
    auth::check_password_policy(&b.new_password, &caller.name).map_err(bad)?;
    let uid = caller
        .user_id
        .ok_or_else(|| bad("API keys have no password"))?;
    let user = blocking(&state, move |s| s.user(uid))
        .await?
        .ok_or_else(|| not_found("user"))?;
    // A stolen session must not buy unlimited guesses at the password.
    let from = caller.source_ip.clone().unwrap_or_default();
    login_gate(&state, &from, &caller.name).await?;
    let (ok, hash) = tokio::task::spawn_blocking(move || {
        (
            auth::verify_password(&b.current_password, &user.password_hash),
            auth::hash_password(&b.new_password),
        )
    })
    .await
    .map_err(|e| ApiError::Internal(e.into()))?;
    if !ok {
        state.limiter.failed(&from, &caller.name);
        return Err(ApiError::Forbidden("the current password is wrong".into()));
    }
    state.limiter.succeeded(&caller.name);
    let hash = hash?;
    blocking(&state, move |s| s.update_user(uid, None, Some(&hash), None)).await?;
    audit(
        &state,
        &caller.name,
        caller.source_ip.clone(),
        "user.password_changed",
        format!("user:{}", caller.name),
        json!({}),
    )
    .await?;
    Ok(Json(PasswordChanged {
        changed: true,
        note: "sign in again: older tokens are revoked",
    }))
}

pub(super) fn json_body<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    serde_json::from_slice(body).map_err(|e| bad(format!("request body: {e}")))
}
