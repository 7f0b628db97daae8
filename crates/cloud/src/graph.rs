//! Microsoft Graph (v1.0), the calls Entra ID containment makes, with an application's client
//! credentials (`https://graph.microsoft.com/.default`).

use std::time::Duration;

use serde_json::{Value, json};

use crate::aws::sigv4::uri_encode;

#[derive(Debug, thiserror::Error)]
pub enum GraphError {
    /// Graph answered with an error (its `error.code`: `Authorization_RequestDenied`, ...).
    #[error("graph {operation}: {code}: {message} (HTTP {status})")]
    Api {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("graph {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("credentials: {0}")]
    Credentials(String),
}

impl GraphError {
    pub fn code(&self) -> Option<&str> {
        match self {
            GraphError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// A password credential of an application (the secret itself is never readable).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordCredential {
    pub key_id: String,
    pub display_name: Option<String>,
    pub end: Option<String>,
}

/// A Graph client for one tenant.
pub struct GraphClient {
    http: ureq::Agent,
    tenant: String,
    client_id: String,
    secret: String,
    /// `https://graph.microsoft.com`, or a stand-in.
    endpoint: String,
    /// `https://login.microsoftonline.com`, or a stand-in.
    authority: String,
    token: crate::auth::TokenCache,
}

impl std::fmt::Debug for GraphClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GraphClient")
            .field("tenant", &self.tenant)
            .field("client_id", &self.client_id)
            .field("endpoint", &self.endpoint)
            .finish()
    }
}

impl GraphClient {
    pub fn new(
        tenant: &str,
        client_id: &str,
        secret: &str,
        endpoint: Option<&str>,
        authority: Option<&str>,
    ) -> GraphClient {
        GraphClient {
            http: crate::auth::agent(Duration::from_secs(30)),
            tenant: tenant.into(),
            client_id: client_id.into(),
            secret: secret.into(),
            endpoint: endpoint
                .unwrap_or("https://graph.microsoft.com")
                .trim_end_matches('/')
                .into(),
            authority: authority
                .unwrap_or("https://login.microsoftonline.com")
                .trim_end_matches('/')
                .into(),
            token: Default::default(),
        }
    }

    fn bearer(&self) -> Result<String, GraphError> {
        self.token.get(|| {
            crate::auth::entra_token(
                &self.http,
                &self.authority,
                &self.tenant,
                &self.client_id,
                &self.secret,
                "https://graph.microsoft.com/.default",
            )
            .map_err(GraphError::Credentials)
        })
    }

    /// One call; answers the JSON body (`Null` for 204).
    pub fn call(
        &self,
        operation: &'static str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, GraphError> {
        let transport = |message: String| GraphError::Transport { operation, message };
        let token = self.bearer()?;
        let url = format!("{}/v1.0{path}", self.endpoint);
        let auth = format!("Bearer {token}");
        let result = match method {
            "GET" => self
                .http
                .get(&url)
                .header("authorization", auth.as_str())
                .call(),
            _ => {
                let req = match method {
                    "PATCH" => self.http.patch(&url),
                    _ => self.http.post(&url),
                };
                req.header("authorization", auth.as_str())
                    .header("content-type", "application/json")
                    .send(body.unwrap_or(json!({})).to_string().as_bytes())
            }
        };
        let mut resp = result.map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(4 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| transport(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 300 {
            return Err(GraphError::Api {
                operation,
                status,
                code: v["error"]["code"].as_str().unwrap_or("Unknown").to_string(),
                message: v["error"]["message"].as_str().unwrap_or(&text).to_string(),
            });
        }
        Ok(v)
    }

    /// Whether a user (object id or user principal name) may sign in.
    pub fn account_enabled(&self, user: &str) -> Result<bool, GraphError> {
        let v = self.call(
            "get user",
            "GET",
            &format!(
                "/users/{}?$select=id,accountEnabled",
                uri_encode(user, true)
            ),
            None,
        )?;
        Ok(v["accountEnabled"].as_bool().unwrap_or(false))
    }

    pub fn set_account_enabled(&self, user: &str, enabled: bool) -> Result<(), GraphError> {
        self.call(
            "update user",
            "PATCH",
            &format!("/users/{}", uri_encode(user, true)),
            Some(json!({"accountEnabled": enabled})),
        )?;
        Ok(())
    }

    pub fn revoke_sign_in_sessions(&self, user: &str) -> Result<(), GraphError> {
        self.call(
            "revokeSignInSessions",
            "POST",
            &format!("/users/{}/revokeSignInSessions", uri_encode(user, true)),
            None,
        )?;
        Ok(())
    }

    pub fn password_credentials(
        &self,
        application: &str,
    ) -> Result<Vec<PasswordCredential>, GraphError> {
        let v = self.call(
            "get application",
            "GET",
            &format!(
                "/applications/{}?$select=id,passwordCredentials",
                uri_encode(application, true)
            ),
            None,
        )?;
        Ok(v["passwordCredentials"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| PasswordCredential {
                key_id: c["keyId"].as_str().unwrap_or_default().to_string(),
                display_name: c["displayName"].as_str().map(str::to_string),
                end: c["endDateTime"].as_str().map(str::to_string),
            })
            .collect())
    }

    pub fn remove_password(&self, application: &str, key_id: &str) -> Result<(), GraphError> {
        self.call(
            "removePassword",
            "POST",
            &format!(
                "/applications/{}/removePassword",
                uri_encode(application, true)
            ),
            Some(json!({"keyId": key_id})),
        )?;
        Ok(())
    }

    /// Adds a password; answers its key id and the secret (readable only in this answer).
    pub fn add_password(
        &self,
        application: &str,
        display_name: Option<&str>,
        end: Option<&str>,
    ) -> Result<(String, String), GraphError> {
        let mut cred = json!({"displayName": display_name.unwrap_or("restored by CloudSentinel")});
        if let Some(end) = end {
            cred["endDateTime"] = json!(end);
        }
        let v = self.call(
            "addPassword",
            "POST",
            &format!(
                "/applications/{}/addPassword",
                uri_encode(application, true)
            ),
            Some(json!({"passwordCredential": cred})),
        )?;
        Ok((
            v["keyId"].as_str().unwrap_or_default().to_string(),
            v["secretText"].as_str().unwrap_or_default().to_string(),
        ))
    }
}
