//! What a message on a trail's queue says: which objects were written. Four shapes reach an SQS
//! queue in practice, all read here:
//!
//! - an S3 event notification (`{"Records": [{"eventSource": "aws:s3", "s3": {...}}]}`), keys
//!   URL-encoded with `+` for spaces;
//! - the same wrapped by SNS (`{"Type": "Notification", "Message": "<the JSON as a string>"}`);
//! - CloudTrail's own SNS notification (`{"s3Bucket": ..., "s3ObjectKey": [...]}`), wrapped by SNS;
//! - an EventBridge "Object Created" event (`{"detail-type": "Object Created", "detail": {...}}`).
//!
//! S3 sends `s3:TestEvent` when a notification is configured: it names no object.

use serde_json::Value;

/// An object a message announces.
#[derive(Debug, Clone, PartialEq)]
pub struct ObjectRef {
    pub bucket: String,
    pub key: String,
    pub size: Option<u64>,
}

/// What a message says.
#[derive(Debug, PartialEq)]
pub enum Notice {
    Objects(Vec<ObjectRef>),
    /// S3's test message (or another message about no object): nothing to read.
    Nothing,
}

/// Reads a message body; an error says why it is not a notification we know.
pub fn parse(body: &str) -> Result<Notice, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("not JSON: {e}"))?;
    parse_value(&v, 0)
}

fn parse_value(v: &Value, depth: u8) -> Result<Notice, String> {
    if depth > 2 {
        return Err("notification nested too deeply".into());
    }
    // SNS envelope.
    if v["Type"] == "Notification"
        && let Some(inner) = v["Message"].as_str()
    {
        let inner: Value =
            serde_json::from_str(inner).map_err(|e| format!("SNS message is not JSON: {e}"))?;
        return parse_value(&inner, depth + 1);
    }
    if v["Event"] == "s3:TestEvent" {
        return Ok(Notice::Nothing);
    }
    if let Some(records) = v["Records"].as_array() {
        let mut out = Vec::new();
        for r in records {
            if r["eventSource"] != "aws:s3" {
                return Err(format!(
                    "a record from {} (expected aws:s3)",
                    r["eventSource"].as_str().unwrap_or("nowhere")
                ));
            }
            if !r["eventName"]
                .as_str()
                .is_some_and(|n| n.starts_with("ObjectCreated"))
            {
                continue; // deletions, restores: nothing to read
            }
            let bucket = r["s3"]["bucket"]["name"].as_str().ok_or("no bucket name")?;
            let key = r["s3"]["object"]["key"].as_str().ok_or("no object key")?;
            out.push(ObjectRef {
                bucket: bucket.to_string(),
                key: url_decode_plus(key)?,
                size: r["s3"]["object"]["size"].as_u64(),
            });
        }
        return Ok(if out.is_empty() {
            Notice::Nothing
        } else {
            Notice::Objects(out)
        });
    }
    if let (Some(bucket), Some(keys)) = (v["s3Bucket"].as_str(), v["s3ObjectKey"].as_array()) {
        return Ok(Notice::Objects(
            keys.iter()
                .filter_map(Value::as_str)
                .map(|k| ObjectRef {
                    bucket: bucket.to_string(),
                    key: k.to_string(),
                    size: None,
                })
                .collect(),
        ));
    }
    if v["detail-type"] == "Object Created" {
        let d = &v["detail"];
        return Ok(Notice::Objects(vec![ObjectRef {
            bucket: d["bucket"]["name"]
                .as_str()
                .ok_or("no detail.bucket.name")?
                .to_string(),
            key: d["object"]["key"]
                .as_str()
                .ok_or("no detail.object.key")?
                .to_string(),
            size: d["object"]["size"].as_u64(),
        }]));
    }
    Err("not an S3, SNS, CloudTrail or EventBridge notification".into())
}

/// S3 notifications URL-encode keys, spaces as `+`.
fn url_decode_plus(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = s
                    .get(i + 1..i + 3)
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| format!("bad escape in key {s:?}"))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out).map_err(|_| format!("key {s:?} is not UTF-8"))
}

/// CloudTrail's digest files (`.../CloudTrail-Digest/...`) prove integrity; they hold no events.
pub fn is_digest(key: &str) -> bool {
    key.contains("/CloudTrail-Digest/")
}

/// The account and region of a CloudTrail key (`AWSLogs/[o-org/]<account>/CloudTrail/<region>/...`).
pub fn account_and_region(key: &str) -> Option<(&str, &str)> {
    let parts: Vec<&str> = key.split('/').collect();
    let at = parts.iter().position(|p| *p == "CloudTrail")?;
    let account = *parts.get(at.checked_sub(1)?)?;
    let region = *parts.get(at + 1)?;
    Some((account, region))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(key: &str) -> Notice {
        Notice::Objects(vec![ObjectRef {
            bucket: "trail".into(),
            key: key.into(),
            size: Some(7),
        }])
    }

    #[test]
    fn reads_every_shape() {
        let s3 = r#"{"Records":[{"eventVersion":"2.1","eventSource":"aws:s3","eventName":"ObjectCreated:Put",
            "s3":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs/1/a+b%2Bc.json.gz","size":7}}}]}"#;
        assert_eq!(parse(s3).unwrap(), object("AWSLogs/1/a b+c.json.gz"));
        let sns = serde_json::json!({"Type": "Notification", "MessageId": "m", "Message": s3})
            .to_string();
        assert_eq!(parse(&sns).unwrap(), object("AWSLogs/1/a b+c.json.gz"));
        let trail = serde_json::json!({"Type": "Notification",
            "Message": r#"{"s3Bucket":"trail","s3ObjectKey":["AWSLogs/1/x.json.gz"]}"#})
        .to_string();
        assert_eq!(
            parse(&trail).unwrap(),
            Notice::Objects(vec![ObjectRef {
                bucket: "trail".into(),
                key: "AWSLogs/1/x.json.gz".into(),
                size: None
            }])
        );
        let eb = r#"{"detail-type":"Object Created","source":"aws.s3","detail":{"bucket":{"name":"trail"},"object":{"key":"AWSLogs/1/a b+c.json.gz","size":7}}}"#;
        assert_eq!(parse(eb).unwrap(), object("AWSLogs/1/a b+c.json.gz"));
        assert_eq!(
            parse(r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"trail"}"#).unwrap(),
            Notice::Nothing
        );
        assert!(parse("hello").unwrap_err().contains("not JSON"));
        assert!(parse(r#"{"hello":1}"#).is_err());
    }

    #[test]
    fn cloudtrail_keys_name_account_and_region() {
        let k = "AWSLogs/o-abc123/111122223333/CloudTrail/eu-west-1/2026/11/20/111122223333_CloudTrail_eu-west-1_20261120T1000Z_x.json.gz";
        assert_eq!(account_and_region(k), Some(("111122223333", "eu-west-1")));
        assert!(is_digest(
            "AWSLogs/1/CloudTrail-Digest/eu-west-1/2026/11/20/1_CloudTrail-Digest_x.json.gz"
        ));
        assert!(!is_digest(k));
    }
}
