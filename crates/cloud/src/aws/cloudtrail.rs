//! CloudTrail's JSON 1.1 API (`POST /` with `x-amz-target`): whether a trail is logging, and
//! starting or stopping it.

use serde_json::{Value, json};

use super::{Aws, AwsError, Call};

/// The target prefix of every CloudTrail operation.
pub const CLOUDTRAIL_TARGET: &str = "com.amazonaws.cloudtrail.v20131101.CloudTrail_20131101";

impl Aws {
    /// One CloudTrail operation with a JSON body; answers the JSON answer.
    pub fn cloudtrail(&self, operation: &'static str, body: &Value) -> Result<Value, AwsError> {
        let body = body.to_string();
        let resp = self.send(Call {
            service: "cloudtrail",
            operation,
            method: "POST",
            origin: self.origin("cloudtrail"),
            path: "/".into(),
            query: Vec::new(),
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.1".into()),
                (
                    "x-amz-target".into(),
                    format!("{CLOUDTRAIL_TARGET}.{operation}"),
                ),
            ],
            body: body.as_bytes(),
            limit: 1024 * 1024,
        })?;
        let text = String::from_utf8_lossy(&resp.body);
        if text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&text).map_err(|e| AwsError::Answer {
            service: "cloudtrail",
            operation,
            message: e.to_string(),
        })
    }

    /// Whether a trail (its name or ARN) is logging (`GetTrailStatus` `IsLogging`).
    pub fn trail_is_logging(&self, trail: &str) -> Result<bool, AwsError> {
        let v = self.cloudtrail("GetTrailStatus", &json!({ "Name": trail }))?;
        v["IsLogging"].as_bool().ok_or_else(|| AwsError::Answer {
            service: "cloudtrail",
            operation: "GetTrailStatus",
            message: "no IsLogging".into(),
        })
    }

    pub fn start_logging(&self, trail: &str) -> Result<(), AwsError> {
        self.cloudtrail("StartLogging", &json!({ "Name": trail }))?;
        Ok(())
    }

    pub fn stop_logging(&self, trail: &str) -> Result<(), AwsError> {
        self.cloudtrail("StopLogging", &json!({ "Name": trail }))?;
        Ok(())
    }
}
