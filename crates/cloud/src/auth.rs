//! What every client of this crate shares: the HTTP agent, a cached bearer token, and Entra
//! ID's client-credentials grant (Blob Storage and Microsoft Graph differ only in the scope).

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::aws::sigv4::uri_encode;

/// The HTTP client: rustls, no redirects (AWS answers a wrong region with a redirect; following
/// it would sign for the wrong region; a token endpoint that redirects is misconfigured), errors
/// read as answers.
pub(crate) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(timeout))
        .max_redirects(0)
        .user_agent(concat!("CloudSentinel/", env!("CARGO_PKG_VERSION")))
        .build()
        .into()
}

/// A bearer token, kept until five minutes before it expires.
#[derive(Default)]
pub(crate) struct TokenCache(Mutex<Option<(String, DateTime<Utc>)>>);

impl TokenCache {
    /// The cached token, or a new one from `fetch` (the token and its lifetime in seconds).
    pub fn get<E>(&self, fetch: impl FnOnce() -> Result<(String, i64), E>) -> Result<String, E> {
        let mut cached = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((t, expires)) = cached.as_ref()
            && *expires - chrono::Duration::minutes(5) > Utc::now()
        {
            return Ok(t.clone());
        }
        let (token, lifetime) = fetch()?;
        *cached = Some((
            token.clone(),
            Utc::now() + chrono::Duration::seconds(lifetime),
        ));
        Ok(token)
    }
}

/// Entra ID's client-credentials grant at `authority` (`https://login.microsoftonline.com`):
/// the token and its lifetime, or what went wrong in words.
pub(crate) fn entra_token(
    http: &ureq::Agent,
    authority: &str,
    tenant: &str,
    client_id: &str,
    secret: &str,
    scope: &str,
) -> Result<(String, i64), String> {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("client_secret", secret),
        ("scope", scope),
    ];
    let body: Vec<String> = form
        .iter()
        .map(|(k, v)| format!("{k}={}", uri_encode(v, true)))
        .collect();
    let url = format!(
        "{}/{}/oauth2/v2.0/token",
        authority.trim_end_matches('/'),
        uri_encode(tenant, true)
    );
    let err = |m: String| format!("Entra ID token for {client_id}: {m}");
    let mut resp = http
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .send(body.join("&").as_bytes())
        .map_err(|e| err(e.to_string()))?;
    let status = resp.status().as_u16();
    let text = resp
        .body_mut()
        .with_config()
        .limit(256 * 1024)
        .read_to_string()
        .map_err(|e| err(e.to_string()))?;
    let v: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
    if status != 200 {
        return Err(err(format!(
            "HTTP {status}: {}",
            v["error_description"].as_str().unwrap_or(&text)
        )));
    }
    let token = v["access_token"]
        .as_str()
        .ok_or_else(|| err("no access_token".into()))?
        .to_string();
    Ok((token, v["expires_in"].as_i64().unwrap_or(3600)))
}
