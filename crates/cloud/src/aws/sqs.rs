//! The SQS calls a collector makes (AWS JSON 1.0 protocol): receive (`sqs:ReceiveMessage`),
//! delete after commit (`sqs:DeleteMessage`), extend the visibility timeout while an object is
//! processed (`sqs:ChangeMessageVisibility`), and the backlog (`sqs:GetQueueAttributes`).

use serde_json::{Value, json};

use super::{Aws, AwsError, Call};

/// One received message.
#[derive(Debug, Clone)]
pub struct Message {
    pub id: String,
    /// What deletes it or changes its visibility (valid for this receipt only).
    pub receipt: String,
    pub body: String,
    /// How many times it was received, this time included.
    pub receive_count: u32,
}

impl Aws {
    /// The region of a queue URL (`https://sqs.eu-west-1.amazonaws.com/...`), if it says.
    pub fn region_of_queue(queue_url: &str) -> Option<String> {
        let host = queue_url.split("://").nth(1)?.split('/').next()?;
        let mut parts = host.split('.');
        match (parts.next(), parts.next()) {
            (Some("sqs"), Some(region)) => Some(region.to_string()),
            (Some(region), Some("queue")) => Some(region.to_string()), // legacy form
            _ => None,
        }
    }

    fn sqs(&self, operation: &'static str, body: Value) -> Result<Value, AwsError> {
        let body = body.to_string();
        let resp = self.send(Call {
            service: "sqs",
            operation,
            method: "POST",
            origin: self.origin("sqs"),
            path: "/".into(),
            query: Vec::new(),
            headers: vec![
                ("content-type".into(), "application/x-amz-json-1.0".into()),
                ("x-amz-target".into(), format!("AmazonSQS.{operation}")),
            ],
            body: body.as_bytes(),
            limit: 16 * 1024 * 1024,
        })?;
        if resp.body.is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_slice(&resp.body).map_err(|e| AwsError::Answer {
            service: "sqs",
            operation,
            message: e.to_string(),
        })
    }

    /// Up to `max` (1..10) messages, waiting up to `wait_secs` (long polling) for the first,
    /// hidden from other consumers for `visibility_secs`.
    pub fn receive_messages(
        &self,
        queue_url: &str,
        max: u32,
        wait_secs: u32,
        visibility_secs: u32,
    ) -> Result<Vec<Message>, AwsError> {
        let v = self.sqs(
            "ReceiveMessage",
            json!({
                "QueueUrl": queue_url,
                "MaxNumberOfMessages": max.clamp(1, 10),
                "WaitTimeSeconds": wait_secs.min(20),
                "VisibilityTimeout": visibility_secs,
                "MessageSystemAttributeNames": ["ApproximateReceiveCount"],
                "AttributeNames": ["ApproximateReceiveCount"],
            }),
        )?;
        let mut out = Vec::new();
        for m in v["Messages"].as_array().into_iter().flatten() {
            let field = |k: &str| m[k].as_str().unwrap_or_default().to_string();
            out.push(Message {
                id: field("MessageId"),
                receipt: field("ReceiptHandle"),
                body: field("Body"),
                receive_count: m["Attributes"]["ApproximateReceiveCount"]
                    .as_str()
                    .and_then(|c| c.parse().ok())
                    .unwrap_or(1),
            });
        }
        Ok(out)
    }

    pub fn delete_message(&self, queue_url: &str, receipt: &str) -> Result<(), AwsError> {
        self.sqs(
            "DeleteMessage",
            json!({"QueueUrl": queue_url, "ReceiptHandle": receipt}),
        )?;
        Ok(())
    }

    /// Keeps a message hidden for `secs` more from now.
    pub fn change_visibility(
        &self,
        queue_url: &str,
        receipt: &str,
        secs: u32,
    ) -> Result<(), AwsError> {
        self.sqs(
            "ChangeMessageVisibility",
            json!({"QueueUrl": queue_url, "ReceiptHandle": receipt, "VisibilityTimeout": secs}),
        )?;
        Ok(())
    }

    /// Messages waiting (visible) and in flight (received, not yet deleted).
    pub fn queue_backlog(&self, queue_url: &str) -> Result<(u64, u64), AwsError> {
        let v = self.sqs(
            "GetQueueAttributes",
            json!({"QueueUrl": queue_url, "AttributeNames": [
                "ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]}),
        )?;
        let n = |k: &str| {
            v["Attributes"][k]
                .as_str()
                .and_then(|c| c.parse().ok())
                .unwrap_or(0)
        };
        Ok((
            n("ApproximateNumberOfMessages"),
            n("ApproximateNumberOfMessagesNotVisible"),
        ))
    }

    /// Sends a message (tests and tools).
    pub fn send_message(&self, queue_url: &str, body: &str) -> Result<(), AwsError> {
        self.sqs(
            "SendMessage",
            json!({"QueueUrl": queue_url, "MessageBody": body}),
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queue_urls_name_their_region() {
        assert_eq!(
            Aws::region_of_queue(
                "https://sqs.eu-west-1.amazonaws.com/111122223333/cloudtrail-events"
            )
            .as_deref(),
            Some("eu-west-1")
        );
        assert_eq!(
            Aws::region_of_queue("https://us-east-2.queue.amazonaws.com/1/q").as_deref(),
            Some("us-east-2")
        );
        assert_eq!(Aws::region_of_queue("http://127.0.0.1:5000/1/q"), None);
    }
}
