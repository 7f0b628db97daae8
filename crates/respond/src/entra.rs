//! The Entra ID actions: Microsoft Graph calls through `cloudsentinel_cloud::graph`.

use cloudsentinel_cloud::graph::{GraphClient, GraphError};

use crate::{Action, ApiCall, Before, Outcome, RespondError, Undone};

impl From<GraphError> for RespondError {
    fn from(e: GraphError) -> RespondError {
        match &e {
            GraphError::Api {
                operation,
                code,
                message,
                ..
            } if code == "Authorization_RequestDenied" || code == "Forbidden" => {
                RespondError::Denied {
                    action: format!(
                        "graph {operation} (needs the application permission the docs name)"
                    ),
                    message: message.clone(),
                }
            }
            _ => RespondError::Cloud(e.to_string()),
        }
    }
}

fn call(operation: &str, params: &[(&str, &str)]) -> ApiCall {
    ApiCall::new("graph", operation, params)
}

pub fn plan(a: &Action) -> Vec<ApiCall> {
    match a {
        Action::EntraDisableUser { user } => vec![
            call(
                "GET /users/{id}",
                &[("id", user), ("$select", "accountEnabled")],
            ),
            call(
                "PATCH /users/{id}",
                &[("id", user), ("accountEnabled", "false")],
            ),
        ],
        Action::EntraRevokeSessions { user } => {
            vec![call(
                "POST /users/{id}/revokeSignInSessions",
                &[("id", user)],
            )]
        }
        Action::EntraRemoveAppPassword {
            application,
            key_id,
        } => vec![
            call(
                "GET /applications/{id}",
                &[("id", application), ("$select", "passwordCredentials")],
            ),
            call(
                "POST /applications/{id}/removePassword",
                &[("id", application), ("keyId", key_id)],
            ),
        ],
        _ => unreachable!("not an Entra ID action"),
    }
}

pub fn execute(a: &Action, g: &GraphClient) -> Outcome {
    let fail = |before, e: RespondError| Outcome {
        before,
        result: Err(e),
    };
    match a {
        Action::EntraDisableUser { user } => {
            let before = match g.account_enabled(user) {
                Ok(enabled) => Before::AccountEnabled { enabled },
                Err(e) => return fail(None, e.into()),
            };
            Outcome {
                before: Some(before),
                result: g.set_account_enabled(user, false).map_err(Into::into),
            }
        }
        Action::EntraRevokeSessions { user } => Outcome {
            before: Some(Before::Nothing),
            result: g.revoke_sign_in_sessions(user).map_err(Into::into),
        },
        Action::EntraRemoveAppPassword {
            application,
            key_id,
        } => {
            let creds = match g.password_credentials(application) {
                Ok(c) => c,
                Err(e) => return fail(None, e.into()),
            };
            let Some(c) = creds.iter().find(|c| &c.key_id == key_id) else {
                return fail(
                    None,
                    RespondError::State(format!(
                        "application {application} has no password credential {key_id}"
                    )),
                );
            };
            let before = Before::AppPassword {
                display_name: c.display_name.clone(),
                end: c.end.clone(),
            };
            Outcome {
                before: Some(before),
                result: g.remove_password(application, key_id).map_err(Into::into),
            }
        }
        _ => unreachable!("not an Entra ID action"),
    }
}

pub fn verify(a: &Action, g: &GraphClient) -> Result<bool, RespondError> {
    match a {
        Action::EntraDisableUser { user } => Ok(!g.account_enabled(user)?),
        // Graph cannot show which sessions a user has: the call's success is the evidence.
        Action::EntraRevokeSessions { .. } => Ok(true),
        Action::EntraRemoveAppPassword {
            application,
            key_id,
        } => Ok(!g
            .password_credentials(application)?
            .iter()
            .any(|c| &c.key_id == key_id)),
        _ => unreachable!("not an Entra ID action"),
    }
}

pub fn undo_plan(a: &Action, before: &Before) -> Vec<ApiCall> {
    match (a, before) {
        (Action::EntraDisableUser { user }, Before::AccountEnabled { enabled }) => vec![call(
            "PATCH /users/{id}",
            &[
                ("id", user),
                ("accountEnabled", if *enabled { "true" } else { "false" }),
            ],
        )],
        (Action::EntraRemoveAppPassword { application, .. }, Before::AppPassword { .. }) => {
            vec![call(
                "POST /applications/{id}/addPassword",
                &[
                    ("id", application),
                    ("passwordCredential", "<a new secret, same name and expiry>"),
                ],
            )]
        }
        _ => Vec::new(),
    }
}

pub fn undo(a: &Action, g: &GraphClient, before: &Before) -> Result<Undone, RespondError> {
    match (a, before) {
        (Action::EntraDisableUser { user }, Before::AccountEnabled { enabled }) => {
            g.set_account_enabled(user, *enabled)?;
            Ok(Undone {
                message: format!(
                    "{user} is {} again",
                    if *enabled { "enabled" } else { "disabled" }
                ),
                secret: None,
            })
        }
        (Action::EntraRevokeSessions { user }, _) => Ok(Undone {
            message: format!(
                "revoked sessions cannot be given back: {user} signs in again (nothing to undo)"
            ),
            secret: None,
        }),
        (
            Action::EntraRemoveAppPassword { application, .. },
            Before::AppPassword { display_name, end },
        ) => {
            let (key, secret) =
                g.add_password(application, display_name.as_deref(), end.as_deref())?;
            Ok(Undone {
                message: format!(
                    "application {application} has a password again, but not the removed one (Entra ID cannot restore a secret): \
                     a new one ({key}), same name and expiry. Put it where the application reads it; it is shown once."
                ),
                secret: Some(secret),
            })
        }
        _ => Err(RespondError::State(
            "the recorded state does not belong to this action".into(),
        )),
    }
}
