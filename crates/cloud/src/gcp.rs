//! Google Cloud: the credentials every Google API call of this crate shares ([`Credentials`],
//! turned into access tokens by `GcpAuth`: a service account's key, a signed JWT exchanged for
//! a token; the metadata server's token, workload identity or Compute Engine; or none against
//! an emulator), Google's error shape ([`GcpError`]), and Pub/Sub: pulling a subscription a log
//! sink publishes to (REST API v1). The IAM calls containment makes are in
//! [`gcp_iam`](crate::gcp_iam).

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use chrono::Utc;
use serde_json::{Value, json};

/// How calls are authorised.
#[derive(Clone)]
pub enum Credentials {
    /// A service account key file's JSON (`type: service_account`).
    ServiceAccount(String),
    /// The metadata server's token for the attached service account (GKE workload identity,
    /// Compute Engine, Cloud Run).
    Metadata,
    /// None: an emulator.
    None,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Credentials::ServiceAccount(_) => "ServiceAccount(<redacted>)",
            Credentials::Metadata => "Metadata",
            Credentials::None => "None",
        })
    }
}

/// What a Google API call answered, or why it could not be made.
#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error("{service} {operation}: {status_text}: {message} (HTTP {status})")]
    Api {
        /// `pubsub`, `iam`, `cloudresourcemanager`.
        service: &'static str,
        /// The API method (`pull`, `projects.setIamPolicy`, ...).
        operation: &'static str,
        status: u16,
        /// Google's status name (`PERMISSION_DENIED`, `NOT_FOUND`, ...).
        status_text: String,
        message: String,
    },
    #[error("{service} {operation}: {message}")]
    Transport {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    #[error("credentials: {0}")]
    Credentials(String),
}

impl GcpError {
    pub fn retryable(&self) -> bool {
        match self {
            GcpError::Transport { .. } => true,
            GcpError::Api { status, .. } => *status >= 500 || *status == 429,
            GcpError::Credentials(_) => false,
        }
    }

    /// Google's status name of an answered error (`PERMISSION_DENIED`, `ABORTED`, ...).
    pub fn status_text(&self) -> Option<&str> {
        match self {
            GcpError::Api { status_text, .. } => Some(status_text),
            _ => None,
        }
    }
}

/// The OAuth scope of Pub/Sub.
const PUBSUB_SCOPE: &str = "https://www.googleapis.com/auth/pubsub";

/// Access tokens for one set of [`Credentials`] and one OAuth scope, cached until five minutes
/// before they expire: what every Google client of this crate authorises its calls with.
pub(crate) struct GcpAuth {
    http: ureq::Agent,
    credentials: Credentials,
    /// `https://www.googleapis.com/auth/pubsub`, `.../cloud-platform`: asked for in a service
    /// account's JWT (the metadata server's token has the scopes of the instance).
    scope: &'static str,
    token: crate::auth::TokenCache,
}

impl std::fmt::Debug for GcpAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpAuth")
            .field("credentials", &self.credentials)
            .field("scope", &self.scope)
            .finish()
    }
}

impl GcpAuth {
    pub fn new(http: ureq::Agent, credentials: Credentials, scope: &'static str) -> GcpAuth {
        GcpAuth {
            http,
            credentials,
            scope,
            token: Default::default(),
        }
    }

    /// An access token, cached until five minutes before it expires; `None` without
    /// credentials.
    pub fn token(&self) -> Result<Option<String>, GcpError> {
        if let Credentials::None = self.credentials {
            return Ok(None);
        }
        self.token
            .get(|| match &self.credentials {
                Credentials::ServiceAccount(key) => self.service_account_token(key),
                Credentials::Metadata => self.metadata_token(),
                Credentials::None => unreachable!("handled above"),
            })
            .map(Some)
    }

    /// One call of a Google REST API: `GET`, or `POST` with a JSON body, authorised with the
    /// token; answers the JSON body, or Google's error (`{"error": {"code", "message",
    /// "status"}}`) as [`GcpError::Api`].
    pub fn call(
        &self,
        service: &'static str,
        operation: &'static str,
        method: &str,
        url: &str,
        body: Option<Value>,
    ) -> Result<Value, GcpError> {
        let transport = |message: String| GcpError::Transport {
            service,
            operation,
            message,
        };
        let token = self.token()?;
        let auth = token.map(|t| format!("Bearer {t}"));
        let result = if method == "GET" {
            let mut req = self.http.get(url);
            if let Some(a) = &auth {
                req = req.header("authorization", a.as_str());
            }
            req.call()
        } else {
            let mut req = self
                .http
                .post(url)
                .header("content-type", "application/json");
            if let Some(a) = &auth {
                req = req.header("authorization", a.as_str());
            }
            req.send(body.unwrap_or_else(|| json!({})).to_string().as_bytes())
        };
        let mut resp = result.map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| transport(format!("reading the answer: {e}")))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status >= 300 {
            return Err(GcpError::Api {
                service,
                operation,
                status,
                status_text: v["error"]["status"]
                    .as_str()
                    .unwrap_or("UNKNOWN")
                    .to_string(),
                message: v["error"]["message"]
                    .as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| text.chars().take(200).collect()),
            });
        }
        Ok(v)
    }

    /// A JWT signed with the key (RS256), exchanged at the key's `token_uri`.
    fn service_account_token(&self, key_json: &str) -> Result<(String, i64), GcpError> {
        let err = |m: String| GcpError::Credentials(format!("service account key: {m}"));
        let key: Value = serde_json::from_str(key_json).map_err(|e| err(e.to_string()))?;
        let field = |k: &str| {
            key[k]
                .as_str()
                .map(str::to_string)
                .ok_or_else(|| err(format!("no {k}")))
        };
        let (email, pem) = (field("client_email")?, field("private_key")?);
        let token_uri = key["token_uri"]
            .as_str()
            .unwrap_or("https://oauth2.googleapis.com/token")
            .to_string();
        let now = Utc::now().timestamp();
        let claims = json!({
            "iss": email, "sub": email, "aud": token_uri, "iat": now, "exp": now + 3600,
            "scope": self.scope,
        });
        let header = json!({"alg": "RS256", "typ": "JWT", "kid": key["private_key_id"]});
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = rs256(&pem, signing_input.as_bytes()).map_err(err)?;
        let assertion = format!("{signing_input}.{}", URL_SAFE_NO_PAD.encode(signature));
        let body = format!(
            "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer&assertion={assertion}"
        );
        let mut resp = self
            .http
            .post(&token_uri)
            .header("content-type", "application/x-www-form-urlencoded")
            .send(body.as_bytes())
            .map_err(|e| err(format!("{token_uri}: {e}")))?;
        let status = resp.status().as_u16();
        let text = resp
            .body_mut()
            .with_config()
            .limit(256 * 1024)
            .read_to_string()
            .map_err(|e| err(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status != 200 {
            return Err(err(format!(
                "{token_uri}: HTTP {status}: {}",
                v["error_description"].as_str().unwrap_or(&text)
            )));
        }
        Ok((
            v["access_token"]
                .as_str()
                .ok_or_else(|| err("no access_token in the answer".into()))?
                .to_string(),
            v["expires_in"].as_i64().unwrap_or(3600),
        ))
    }

    /// The metadata server's token for the attached service account.
    fn metadata_token(&self) -> Result<(String, i64), GcpError> {
        let host = std::env::var("GCE_METADATA_HOST")
            .unwrap_or_else(|_| "metadata.google.internal".into());
        let url =
            format!("http://{host}/computeMetadata/v1/instance/service-accounts/default/token");
        let err = |m: String| GcpError::Credentials(format!("metadata server {url}: {m}"));
        let text = self
            .http
            .get(&url)
            .header("metadata-flavor", "Google")
            .call()
            .and_then(|mut r| r.body_mut().with_config().limit(64 * 1024).read_to_string())
            .map_err(|e| err(e.to_string()))?;
        let v: Value = serde_json::from_str(&text).map_err(|e| err(e.to_string()))?;
        Ok((
            v["access_token"]
                .as_str()
                .ok_or_else(|| err("no access_token".into()))?
                .to_string(),
            v["expires_in"].as_i64().unwrap_or(3600),
        ))
    }
}

/// One pulled message.
#[derive(Debug, Clone)]
pub struct Received {
    pub ack_id: String,
    pub message_id: String,
    /// The message's data, decoded from base64.
    pub data: Vec<u8>,
    pub delivery_attempt: Option<u32>,
}

/// A subscriber to one subscription.
pub struct Subscriber {
    /// `https://pubsub.googleapis.com`, or an emulator's address.
    endpoint: String,
    /// `projects/<project>/subscriptions/<name>`.
    subscription: String,
    auth: GcpAuth,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("endpoint", &self.endpoint)
            .field("subscription", &self.subscription)
            .field("credentials", &self.auth.credentials)
            .finish()
    }
}

impl Subscriber {
    pub fn new(
        subscription: &str,
        endpoint: Option<&str>,
        credentials: Credentials,
        timeout: Duration,
    ) -> Subscriber {
        Subscriber {
            endpoint: endpoint
                .unwrap_or("https://pubsub.googleapis.com")
                .trim_end_matches('/')
                .to_string(),
            subscription: subscription.to_string(),
            auth: GcpAuth::new(crate::auth::agent(timeout), credentials, PUBSUB_SCOPE),
        }
    }

    pub fn subscription(&self) -> &str {
        &self.subscription
    }

    /// Up to `max` messages (fewer, or none, when fewer wait).
    pub fn pull(&self, max: u32) -> Result<Vec<Received>, GcpError> {
        let v = self.call("pull", json!({"maxMessages": max.clamp(1, 1000)}))?;
        let mut out = Vec::new();
        for m in v["receivedMessages"].as_array().into_iter().flatten() {
            let data = m["message"]["data"].as_str().unwrap_or("");
            out.push(Received {
                ack_id: m["ackId"].as_str().unwrap_or_default().to_string(),
                message_id: m["message"]["messageId"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
                data: STANDARD
                    .decode(data)
                    .unwrap_or_else(|_| data.as_bytes().to_vec()),
                delivery_attempt: m["deliveryAttempt"].as_u64().map(|n| n as u32),
            });
        }
        Ok(out)
    }

    /// Acknowledges messages: they will not be delivered again.
    pub fn acknowledge(&self, ack_ids: &[String]) -> Result<(), GcpError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.call("acknowledge", json!({"ackIds": ack_ids}))?;
        Ok(())
    }

    /// Keeps messages from redelivery for `secs` more from now.
    pub fn modify_ack_deadline(&self, ack_ids: &[String], secs: u32) -> Result<(), GcpError> {
        if ack_ids.is_empty() {
            return Ok(());
        }
        self.call(
            "modifyAckDeadline",
            json!({"ackIds": ack_ids, "ackDeadlineSeconds": secs.min(600)}),
        )?;
        Ok(())
    }

    fn call(&self, operation: &'static str, body: Value) -> Result<Value, GcpError> {
        let url = format!("{}/v1/{}:{operation}", self.endpoint, self.subscription);
        self.auth
            .call("pubsub", operation, "POST", &url, Some(body))
    }
}

/// An RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature with a PKCS#8 PEM key.
fn rs256(pem: &str, message: &[u8]) -> Result<Vec<u8>, String> {
    let b64: String = pem
        .lines()
        .filter(|l| !l.starts_with("-----"))
        .map(str::trim)
        .collect();
    let der = STANDARD
        .decode(b64)
        .map_err(|_| "private_key is not PEM".to_string())?;
    let pair = ring::signature::RsaKeyPair::from_pkcs8(&der)
        .map_err(|e| format!("private_key is not a PKCS#8 RSA key: {e}"))?;
    let mut signature = vec![0; pair.public().modulus_len()];
    pair.sign(
        &ring::signature::RSA_PKCS1_SHA256,
        &ring::rand::SystemRandom::new(),
        message,
        &mut signature,
    )
    .map_err(|_| "signing failed".to_string())?;
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_that_are_not_pem_rsa_are_refused_with_a_reason() {
        assert!(rs256("aGVsbG8=", b"x").unwrap_err().contains("PKCS#8"));
        assert!(
            rs256(
                "-----BEGIN PRIVATE KEY-----\n!!!\n-----END PRIVATE KEY-----",
                b"x"
            )
            .unwrap_err()
            .contains("PEM")
        );
    }
}
