//! Google Cloud Pub/Sub: pulling a subscription a log sink publishes to (REST API v1), with a
//! service account's key (a signed JWT exchanged for an access token), the metadata server's
//! token (workload identity, Compute Engine), or no credentials against an emulator.

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

#[derive(Debug, thiserror::Error)]
pub enum GcpError {
    #[error("pubsub {operation}: {status_text}: {message} (HTTP {status})")]
    Api {
        operation: &'static str,
        status: u16,
        /// Google's status name (`PERMISSION_DENIED`, `NOT_FOUND`, ...).
        status_text: String,
        message: String,
    },
    #[error("pubsub {operation}: {message}")]
    Transport {
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
    http: ureq::Agent,
    /// `https://pubsub.googleapis.com`, or an emulator's address.
    endpoint: String,
    /// `projects/<project>/subscriptions/<name>`.
    subscription: String,
    credentials: Credentials,
    token: crate::auth::TokenCache,
}

impl std::fmt::Debug for Subscriber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscriber")
            .field("endpoint", &self.endpoint)
            .field("subscription", &self.subscription)
            .field("credentials", &self.credentials)
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
            http: crate::auth::agent(timeout),
            endpoint: endpoint
                .unwrap_or("https://pubsub.googleapis.com")
                .trim_end_matches('/')
                .to_string(),
            subscription: subscription.to_string(),
            credentials,
            token: Default::default(),
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
        let transport = |message: String| GcpError::Transport { operation, message };
        let url = format!("{}/v1/{}:{operation}", self.endpoint, self.subscription);
        let mut req = self
            .http
            .post(&url)
            .header("content-type", "application/json");
        let token = self.token()?;
        if let Some(t) = &token {
            req = req.header("authorization", format!("Bearer {t}").as_str());
        }
        let mut resp = req
            .send(body.to_string().as_bytes())
            .map_err(|e| transport(e.to_string()))?;
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

    /// An access token, cached until five minutes before it expires; `None` without
    /// credentials.
    fn token(&self) -> Result<Option<String>, GcpError> {
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
            "scope": "https://www.googleapis.com/auth/pubsub",
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
