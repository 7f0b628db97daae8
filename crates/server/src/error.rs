//! The one API error type: a client's mistake is a JSON 4xx that says what to fix; an internal
//! error is logged and answered with a generic 500.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug)]
pub enum ApiError {
    BadRequest(String, Option<serde_json::Value>),
    Unauthorized(String),
    Forbidden(String),
    NotFound(String),
    Conflict(String),
    TooLarge(String),
    UnsupportedMediaType(String),
    TooManyRequests { message: String, retry_after: u64 },
    Unavailable(String),
    Internal(anyhow::Error),
}

pub type ApiResult<T> = Result<T, ApiError>;

pub fn bad(msg: impl Into<String>) -> ApiError {
    ApiError::BadRequest(msg.into(), None)
}

pub fn not_found(what: impl Into<String>) -> ApiError {
    ApiError::NotFound(what.into())
}

impl From<cloudsentinel_store::StoreError> for ApiError {
    fn from(e: cloudsentinel_store::StoreError) -> Self {
        match e {
            cloudsentinel_store::StoreError::Conflict(m) => ApiError::Conflict(m),
            cloudsentinel_store::StoreError::Unavailable(m) => {
                tracing::warn!(error = m, "storage unavailable");
                ApiError::Unavailable("storage is unavailable; try again shortly".into())
            }
            other => ApiError::Internal(other.into()),
        }
    }
}

impl From<anyhow::Error> for ApiError {
    fn from(e: anyhow::Error) -> Self {
        ApiError::Internal(e)
    }
}

impl ApiError {
    /// The status, the machine-readable code, the message and any details. An internal error is
    /// logged here and answered with a generic message.
    pub fn parts(self) -> (StatusCode, &'static str, String, Option<serde_json::Value>) {
        match self {
            ApiError::BadRequest(m, d) => (StatusCode::BAD_REQUEST, "bad_request", m, d),
            ApiError::Unauthorized(m) => (StatusCode::UNAUTHORIZED, "unauthorized", m, None),
            ApiError::Forbidden(m) => (StatusCode::FORBIDDEN, "forbidden", m, None),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, "not_found", m, None),
            ApiError::Conflict(m) => (StatusCode::CONFLICT, "conflict", m, None),
            ApiError::TooLarge(m) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", m, None),
            ApiError::UnsupportedMediaType(m) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                m,
                None,
            ),
            ApiError::TooManyRequests { message, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_requests",
                message,
                None,
            ),
            ApiError::Unavailable(m) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", m, None),
            ApiError::Internal(e) => {
                tracing::error!(error = format!("{e:#}"), "internal error");
                (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "internal error; the server log has the details".to_string(),
                    None,
                )
            }
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let retry_after = match &self {
            ApiError::TooManyRequests { retry_after, .. } => Some(*retry_after),
            _ => None,
        };
        let (status, code, message, details) = self.parts();
        let mut body = json!({"error": code, "message": message});
        if let Some(d) = details {
            body["details"] = d;
        }
        let mut r = (status, Json(body)).into_response();
        if let Some(wait) = retry_after {
            r.headers_mut().insert(
                header::RETRY_AFTER,
                HeaderValue::from_str(&wait.to_string()).expect("digits"),
            );
        }
        if status == StatusCode::UNAUTHORIZED {
            r.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        r
    }
}
