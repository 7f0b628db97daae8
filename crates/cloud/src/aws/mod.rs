//! AWS: signed requests to S3, SQS, STS, IAM, EC2, CloudTrail and GuardDuty with the standard
//! credential chain.
//!
//! [`Aws`] is one account-and-region's client: it finds credentials ([`credentials`]), assumes a
//! role when configured, signs each request ([`sigv4`]) and turns AWS's error documents into
//! [`AwsError::Api`] with the service's error code (`AccessDenied`, `NoSuchKey`, ...). An
//! `endpoint_url` sends every call to one address instead (a local emulator such as moto).

pub mod cloudtrail;
pub mod credentials;
pub mod ec2;
pub mod guardduty;
pub mod iam;
pub mod notification;
pub mod s3;
pub mod sigv4;
pub mod sqs;

use std::sync::Mutex;
use std::time::Duration;

use chrono::{DateTime, Utc};

use crate::xml;

pub use credentials::Credentials;

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum AwsError {
    /// AWS answered with an error document.
    #[error("{service} {operation}: {code}: {message} (HTTP {status})")]
    Api {
        service: &'static str,
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    /// The call did not get an answer (connection, timeout, TLS).
    #[error("{service} {operation}: {message}")]
    Transport {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    /// An answer that is not what the operation returns.
    #[error("{service} {operation}: unexpected answer: {message}")]
    Answer {
        service: &'static str,
        operation: &'static str,
        message: String,
    },
    /// No credentials could be found or obtained.
    #[error("credentials: {0}")]
    Credentials(String),
}

impl AwsError {
    /// Worth trying again later: no answer, throttling, or a server-side error.
    pub fn retryable(&self) -> bool {
        match self {
            AwsError::Transport { .. } => true,
            AwsError::Api { status, code, .. } => {
                *status >= 500
                    || *status == 429
                    || matches!(
                        code.as_str(),
                        "Throttling"
                            | "ThrottlingException"
                            | "RequestThrottled"
                            | "SlowDown"
                            | "RequestTimeout"
                            | "ExpiredToken"
                    )
            }
            AwsError::Answer { .. } | AwsError::Credentials(_) => false,
        }
    }

    /// The error code AWS gave, if it answered.
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Api { code, .. } => Some(code),
            _ => None,
        }
    }
}

/// How to reach an account.
#[derive(Debug, Clone, Default)]
pub struct Config {
    /// The region the calls go to (`eu-west-1`).
    pub region: String,
    /// Send every call here instead of AWS (`http://127.0.0.1:5000` for moto).
    pub endpoint_url: Option<String>,
    /// A role to assume with the credentials the chain finds.
    pub role_arn: Option<String>,
    /// The external id the role's trust policy asks for, if any.
    pub external_id: Option<String>,
    /// Timeout of one call.
    pub timeout: Duration,
}

/// One answer.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: Vec<u8>,
}

/// One request, before signing.
pub(crate) struct Call<'a> {
    pub service: &'static str,
    pub operation: &'static str,
    pub method: &'static str,
    /// `https://host[:port]`, no path.
    pub origin: String,
    /// Percent-encoded path, starting with `/`.
    pub path: String,
    pub query: Vec<(String, String)>,
    /// Extra headers to send and sign (lowercase names).
    pub headers: Vec<(String, String)>,
    pub body: &'a [u8],
    /// Largest answer read.
    pub limit: u64,
}

/// A client for one account and region.
pub struct Aws {
    http: ureq::Agent,
    pub(crate) config: Config,
    creds: Mutex<Option<Credentials>>,
}

impl std::fmt::Debug for Aws {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Aws").field("config", &self.config).finish()
    }
}

/// Credentials are renewed this long before they expire.
const RENEW_BEFORE: chrono::Duration = chrono::Duration::minutes(5);

impl Aws {
    pub fn new(mut config: Config) -> Aws {
        if config.timeout.is_zero() {
            config.timeout = Duration::from_secs(30);
        }
        if let Some(e) = &mut config.endpoint_url {
            *e = e.trim_end_matches('/').to_string();
        }
        Aws {
            http: crate::auth::agent(config.timeout),
            config,
            creds: Mutex::new(None),
        }
    }

    pub fn region(&self) -> &str {
        &self.config.region
    }

    /// The origin of a service's regional endpoint, or the configured endpoint.
    pub(crate) fn origin(&self, service: &str) -> String {
        match &self.config.endpoint_url {
            Some(e) => e.clone(),
            None => format!("https://{service}.{}.amazonaws.com", self.config.region),
        }
    }

    /// Current credentials: cached until five minutes before they expire, then found again
    /// (and the role assumed again).
    pub fn credentials(&self) -> Result<Credentials, AwsError> {
        let mut cached = self.creds.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = cached.as_ref()
            && c.expires.is_none_or(|t| t - RENEW_BEFORE > Utc::now())
        {
            return Ok(c.clone());
        }
        let base = credentials::from_chain(&self.http, &self.config)?;
        let creds = match &self.config.role_arn {
            Some(role) => credentials::assume_role(self, &base, role)?,
            None => base,
        };
        *cached = Some(creds.clone());
        Ok(creds)
    }

    /// Signs and sends a call; an error document becomes [`AwsError::Api`].
    pub(crate) fn send(&self, call: Call<'_>) -> Result<Response, AwsError> {
        let creds = self.credentials()?;
        self.send_with(call, Some(&creds), Utc::now())
    }

    /// Signs and sends a call to a global service (IAM), signed for `us-east-1`.
    pub(crate) fn send_global(&self, call: Call<'_>) -> Result<Response, AwsError> {
        let creds = self.credentials()?;
        self.send_signed(call, Some(&creds), Utc::now(), "us-east-1")
    }

    /// Sends a call signed with `creds` (unsigned with `None`: STS web identity).
    pub(crate) fn send_with(
        &self,
        call: Call<'_>,
        creds: Option<&Credentials>,
        now: DateTime<Utc>,
    ) -> Result<Response, AwsError> {
        let region = self.config.region.clone();
        self.send_signed(call, creds, now, &region)
    }

    fn send_signed(
        &self,
        call: Call<'_>,
        creds: Option<&Credentials>,
        now: DateTime<Utc>,
        region: &str,
    ) -> Result<Response, AwsError> {
        let transport = |message: String| AwsError::Transport {
            service: call.service,
            operation: call.operation,
            message,
        };
        let host = call
            .origin
            .split_once("://")
            .map(|(_, h)| h)
            .unwrap_or(&call.origin)
            .to_string();
        let mut url = format!("{}{}", call.origin, call.path);
        if !call.query.is_empty() {
            let q: Vec<String> = call
                .query
                .iter()
                .map(|(k, v)| {
                    format!(
                        "{}={}",
                        sigv4::uri_encode(k, true),
                        sigv4::uri_encode(v, true)
                    )
                })
                .collect();
            url.push('?');
            url.push_str(&q.join("&"));
        }
        let mut headers = call.headers.clone();
        if let Some(creds) = creds {
            let hash = sigv4::payload_hash(call.body);
            let req = sigv4::Request {
                method: call.method,
                path: &call.path,
                query: &call.query,
                headers: &call.headers,
                host: &host,
                payload_hash: &hash,
            };
            headers.extend(sigv4::sign(&req, creds, region, call.service, now));
        }
        let mut builder = ureq::http::Request::builder()
            .method(call.method)
            .uri(&url)
            .header("host", &host);
        for (k, v) in &headers {
            builder = builder.header(k.as_str(), v.as_str());
        }
        let request = builder
            .body(call.body.to_vec())
            .map_err(|e| transport(format!("bad request: {e}")))?;
        let mut resp = self
            .http
            .run(request)
            .map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let body = resp
            .body_mut()
            .with_config()
            .limit(call.limit)
            .read_to_vec()
            .map_err(|e| transport(format!("reading the answer: {e}")))?;
        if status >= 300 {
            let (code, message) = error_of(&body);
            return Err(AwsError::Api {
                service: call.service,
                operation: call.operation,
                status,
                code,
                message,
            });
        }
        Ok(Response { status, body })
    }
}

/// The code and message of an error document: XML (`<Error><Code>`, S3, STS) or JSON
/// (`__type`, SQS and other JSON services).
fn error_of(body: &[u8]) -> (String, String) {
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
        let code = v["__type"]
            .as_str()
            .or(v["code"].as_str())
            .map(|t| t.rsplit('#').next().unwrap_or(t).to_string())
            .unwrap_or_else(|| "Unknown".into());
        let message = v["message"]
            .as_str()
            .or(v["Message"].as_str())
            .unwrap_or("")
            .to_string();
        return (code, message);
    }
    match xml::leaves(text) {
        Ok(l) => (
            xml::first(&l, "Code").unwrap_or("Unknown").to_string(),
            xml::first(&l, "Message").unwrap_or("").to_string(),
        ),
        Err(_) => ("Unknown".into(), text.chars().take(200).collect::<String>()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_documents_give_their_code() {
        assert_eq!(
            error_of(b"<Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>"),
            ("AccessDenied".into(), "Access Denied".into())
        );
        assert_eq!(
            error_of(
                br#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>User: x is not authorized to perform: sts:AssumeRole</Message></Error></ErrorResponse>"#
            )
            .0,
            "AccessDenied"
        );
        assert_eq!(
            error_of(
                br#"{"__type":"com.amazonaws.sqs#QueueDoesNotExist","message":"The specified queue does not exist."}"#
            ),
            (
                "QueueDoesNotExist".into(),
                "The specified queue does not exist.".into()
            )
        );
    }
}
