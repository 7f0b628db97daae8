//! Users and ingest API keys: roles, enabling, deleting, adding; creating and revoking keys.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use cloudsentinel_store::ApiKeyRecord;
use maud::{Markup, html};
use serde_json::json;

use super::{Nav, Session, at, csrf_field, done, error_text, fail, field, form, outcome, page};
use crate::error::{ApiError, bad};
use crate::routes::Op;
use crate::{AppState, api};

/// The roles a user may have, least first.
const ROLES: [&str; 4] = ["viewer", "analyst", "responder", "admin"];

/// The page, with `notice` (a new key's secret) above the lists.
async fn users_page(state: AppState, s: &Session, notice: Option<Markup>) -> Response {
    if let Err(r) = s.require(Op::ListUsers) {
        return r;
    }
    let users = match api::list_users(State(state.clone())).await {
        Ok(axum::Json(list)) => list.items,
        Err(e) => return fail(s, e),
    };
    let keys = match api::list_api_keys(State(state)).await {
        Ok(axum::Json(list)) => list.items,
        Err(e) => return fail(s, e),
    };
    let body = html! {
        h1 { "Users & API keys" }
        @if let Some(n) = notice { (n) }
        section.panel {
            h2 { "Users" }
            table.cards id="users-table" {
                thead {
                    tr { th { "User" } th { "Role" } th { "State" } th { "Created" } th {} }
                }
                tbody {
                    @for u in &users {
                        (user_row(s, u))
                    }
                }
            }
            h3 { "Add a user" }
            form method="post" action="/ui/users" class="filters" id="add-user" {
                (csrf_field(s))
                input type="hidden" name="action" value="create";
                label {
                    "User name"
                    input type="text" name="username" required maxlength="64" autocomplete="off";
                }
                label {
                    "Password (12+)"
                    input type="password" name="password" required minlength="12"
                        autocomplete="new-password";
                }
                label {
                    "Role"
                    select name="role" {
                        @for r in ROLES { option value=(r) { (r) } }
                    }
                }
                button.primary type="submit" { "Add" }
            }
        }
        section.panel {
            h2 { "Ingest API keys" }
            table.cards id="keys-table" {
                thead {
                    tr { th { "Name" } th { "Prefix" } th { "Created" } th { "Last used" } th {} }
                }
                tbody {
                    @for k in &keys {
                        (key_row(s, k))
                    }
                }
            }
            h3 { "New key" }
            form method="post" action="/ui/users" class="filters" {
                (csrf_field(s))
                input type="hidden" name="action" value="key";
                label {
                    "Name"
                    input type="text" name="name" required maxlength="64"
                        placeholder="e.g. cloudtrail-forwarder";
                }
                button.primary type="submit" { "Create" }
            }
        }
    };
    page(s, "Users & API keys", Nav::Users, None, body)
}

/// One user: role to change, state, and the buttons to enable or disable and to delete.
fn user_row(s: &Session, u: &api::User) -> Markup {
    let (id, name, role, disabled) = (u.id, &u.username, &u.role, u.disabled);
    html! {
        tr {
            td data-label="User" { strong { (name) } }
            td data-label="Role" {
                form method="post" action="/ui/users" class="row" {
                    (csrf_field(s))
                    input type="hidden" name="action" value="role";
                    input type="hidden" name="id" value=(id);
                    select name="role" aria-label={ "Role of " (name) } {
                        @for r in ROLES { option value=(r) selected[r == role] { (r) } }
                    }
                    button type="submit" { "Set" }
                }
            }
            td data-label="State" { @if disabled { strong { "disabled" } } @else { "active" } }
            td.small data-label="Created" { (at(&u.created)) }
            td.row data-label="Actions" {
                form method="post" action="/ui/users" {
                    (csrf_field(s))
                    input type="hidden" name="action"
                        value=(if disabled { "enable" } else { "disable" });
                    input type="hidden" name="id" value=(id);
                    button type="submit" { (if disabled { "Enable" } else { "Disable" }) }
                }
                form method="post" action="/ui/users" {
                    (csrf_field(s))
                    input type="hidden" name="action" value="delete";
                    input type="hidden" name="id" value=(id);
                    button type="submit" class="danger"
                        data-confirm={ "Delete user " (name) "? This cannot be undone." } {
                        "Delete"
                    }
                }
            }
        }
    }
}

/// One API key, with its revoke button until it is revoked.
fn key_row(s: &Session, k: &ApiKeyRecord) -> Markup {
    html! {
        tr {
            td data-label="Name" { (k.name) }
            td data-label="Prefix" { code { (k.prefix) "…" } }
            td.small data-label="Created" { (at(&k.created)) " by " (k.created_by) }
            td.small data-label="Last used" {
                @match &k.last_used {
                    Some(t) => { (at(t)) }
                    None => { "never" }
                }
            }
            td data-label="State" {
                @if k.revoked {
                    "revoked"
                } @else {
                    form method="post" action="/ui/users" {
                        (csrf_field(s))
                        input type="hidden" name="action" value="revoke";
                        input type="hidden" name="id" value=(k.id);
                        button type="submit" class="danger"
                            data-confirm="Revoke this key? \
                                Clients using it can no longer send events." {
                            "Revoke"
                        }
                    }
                }
            }
        }
    }
}

/// A new key's secret, shown once.
fn new_key_notice(k: &api::NewApiKey) -> Markup {
    html! {
        div.flash role="status" {
            "Key " strong { (k.name) }
            " created. Copy it now: it is not shown again."
            pre id="new-key" tabindex="0" { (k.key) }
        }
    }
}

pub(super) async fn users(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
) -> Response {
    users_page(state, &s, None).await
}

pub(super) async fn users_action(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match form(&s, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    // Each action is allowed when the role may call its own API route.
    let op = match field(&fields, "action") {
        Some("create") => Op::CreateUser,
        Some("role" | "disable" | "enable") => Op::EditUser,
        Some("delete") => Op::DeleteUser,
        Some("key") => Op::CreateApiKey,
        Some("revoke") => Op::RevokeApiKey,
        _ => return done("/ui/users", "error: unknown action"),
    };
    if let Err(r) = s.require(op) {
        return r;
    }
    let id: i64 = field(&fields, "id")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let f = |k: &str| field(&fields, k).unwrap_or("").to_string();
    let caller = Extension(s.caller.clone());
    let st = State(state.clone());
    let result: Result<String, ApiError> = match field(&fields, "action") {
        Some("create") => api::register(
            st,
            caller,
            Bytes::from(
                json!({"username": f("username"), "password": f("password"), "role": f("role")})
                    .to_string(),
            ),
        )
        .await
        .map(|_| format!("User {} added.", f("username"))),
        Some("role") => api::update_user(
            st,
            caller,
            Path(id),
            Bytes::from(json!({"role": f("role")}).to_string()),
        )
        .await
        .map(|_| "Role changed; the user's sessions were ended.".to_string()),
        Some(a @ ("disable" | "enable")) => api::update_user(
            st,
            caller,
            Path(id),
            Bytes::from(json!({"disabled": a == "disable"}).to_string()),
        )
        .await
        .map(|_| format!("User {a}d.")),
        Some("delete") => api::delete_user(st, caller, Path(id))
            .await
            .map(|_| "User deleted.".to_string()),
        Some("revoke") => api::revoke_api_key(st, caller, Path(id))
            .await
            .map(|_| "Key revoked.".to_string()),
        Some("key") => {
            // The secret is shown once, on this page, never in a redirect or a cookie.
            return match api::create_api_key(
                st,
                caller,
                Bytes::from(json!({"name": f("name")}).to_string()),
            )
            .await
            {
                Ok((_, axum::Json(key))) => users_page(state, &s, Some(new_key_notice(&key))).await,
                Err(e) => done("/ui/users", format!("error: {}", error_text(e).1)),
            };
        }
        _ => Err(bad("unknown action")),
    };
    outcome("/ui/users", result, |msg| msg)
}
