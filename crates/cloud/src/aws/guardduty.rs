//! GuardDuty's REST API: whether a detector is enabled, and enabling or disabling it.

use serde_json::{Value, json};

use super::{Aws, AwsError, Call, sigv4::uri_encode};

impl Aws {
    fn guardduty(
        &self,
        operation: &'static str,
        method: &'static str,
        detector: &str,
        body: Option<&Value>,
    ) -> Result<Value, AwsError> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let resp = self.send(Call {
            service: "guardduty",
            operation,
            method,
            origin: self.origin("guardduty"),
            path: format!("/detector/{}", uri_encode(detector, true)),
            query: Vec::new(),
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.as_bytes(),
            limit: 1024 * 1024,
        })?;
        let text = String::from_utf8_lossy(&resp.body);
        if text.trim().is_empty() {
            return Ok(Value::Object(Default::default()));
        }
        serde_json::from_str(&text).map_err(|e| AwsError::Answer {
            service: "guardduty",
            operation,
            message: e.to_string(),
        })
    }

    /// Whether a detector is enabled (`GetDetector` `status` is `ENABLED`).
    pub fn detector_enabled(&self, detector: &str) -> Result<bool, AwsError> {
        let v = self.guardduty("GetDetector", "GET", detector, None)?;
        match v["status"].as_str() {
            Some(s) => Ok(s.eq_ignore_ascii_case("ENABLED")),
            None => Err(AwsError::Answer {
                service: "guardduty",
                operation: "GetDetector",
                message: "no status".into(),
            }),
        }
    }

    /// Enables or disables a detector (`UpdateDetector` `enable`), nothing else changed.
    pub fn set_detector_enabled(&self, detector: &str, enable: bool) -> Result<(), AwsError> {
        self.guardduty(
            "UpdateDetector",
            "POST",
            detector,
            Some(&json!({ "enable": enable })),
        )?;
        Ok(())
    }
}
