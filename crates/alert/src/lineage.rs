//! Which identities an event created or armed: the IAM user a leaked key creates, the access key
//! or console password it gives that user, the service-account key a stolen session mints, the
//! secret added to a service principal. An incident about the creator takes in what the created
//! identity does later (the backdoor user coming back from another address two days on).
//!
//! The names are the principals the created identity's own events will carry ([`Event::principal`]
//! or its entity): an IAM user's ARN, a service account's e-mail, a service principal's object id.

use cloudsentinel_core::{Event, Provider};
use serde_json::Value;

/// AWS calls that create an identity or give one credentials, by the request field naming it.
const AWS_CREATING: [&str; 7] = [
    "CreateUser",
    "CreateAccessKey",
    "CreateLoginProfile",
    "UpdateLoginProfile",
    "AttachUserPolicy",
    "PutUserPolicy",
    "AddUserToGroup",
];

/// Entra ID audit activities that create or arm an application's identity.
const ENTRA_CREATING: [&str; 5] = [
    "Add service principal",
    "Add service principal credentials",
    "Update application – Certificates and secrets management",
    "Add application",
    "Add owner to service principal",
];

/// GCP methods that create a service account or a key for one.
const GCP_CREATING: [&str; 3] = [
    "google.iam.admin.v1.CreateServiceAccount",
    "google.iam.admin.v1.CreateServiceAccountKey",
    "google.iam.admin.v1.UploadServiceAccountKey",
];

/// The identities `e` created or gave credentials to (none when it failed).
pub fn created_identities(e: &Event) -> Vec<String> {
    if !e.outcome.success {
        return Vec::new();
    }
    let op = e.action.operation.as_str();
    match e.provider {
        Provider::Aws if AWS_CREATING.contains(&op) => {
            let user = e
                .raw
                .value("requestParameters")
                .and_then(|p| p.get("userName"))
                .and_then(Value::as_str);
            match (user, e.account.as_deref()) {
                (Some(u), Some(account)) if !u.is_empty() => {
                    vec![format!("arn:aws:iam::{account}:user/{u}")]
                }
                _ => Vec::new(),
            }
        }
        Provider::Azure if ENTRA_CREATING.iter().any(|a| op.starts_with(a.trim_end())) => e
            .raw
            .value("properties")
            .and_then(|p| p.get("targetResources"))
            .and_then(Value::as_array)
            .map(|targets| {
                targets
                    .iter()
                    .filter(|t| {
                        t.get("type")
                            .and_then(Value::as_str)
                            .is_some_and(|k| k == "ServicePrincipal" || k == "Application")
                    })
                    .filter_map(|t| t.get("id").and_then(Value::as_str))
                    .filter(|id| !id.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default(),
        Provider::Gcp if GCP_CREATING.contains(&op) => {
            // `projects/-/serviceAccounts/<email>` (a key) or the new account's e-mail in the
            // response.
            let payload = e.raw.value("protoPayload");
            let from_name = payload
                .and_then(|p| p.get("request"))
                .and_then(|r| r.get("name"))
                .or_else(|| payload.and_then(|p| p.get("resourceName")))
                .and_then(Value::as_str)
                .and_then(|n| n.rsplit_once("/serviceAccounts/"))
                .map(|(_, rest)| rest.split('/').next().unwrap_or(rest).to_string());
            let from_response = payload
                .and_then(|p| p.get("response"))
                .and_then(|r| r.get("email"))
                .and_then(Value::as_str)
                .map(str::to_string);
            from_name
                .into_iter()
                .chain(from_response)
                .filter(|s| s.contains('@'))
                .collect()
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudsentinel_ingest::decode_bytes;

    fn event(json: &str) -> Event {
        let mut out = None;
        decode_bytes(json.as_bytes(), Default::default(), &mut |item| {
            if let cloudsentinel_ingest::Item::Event(e) = item {
                out = Some(*e);
            }
        });
        out.expect("decodes")
    }

    #[test]
    fn the_identities_an_intruder_creates_are_named_as_their_own_events_name_them() {
        let create_user = event(
            r#"{"eventVersion":"1.09","eventTime":"2025-03-11T22:10:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","recipientAccountId":"111122223333","eventID":"e1","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/dmitri","accountId":"111122223333","accessKeyId":"AKIAX"},"requestParameters":{"userName":"backup-svc"}}"#,
        );
        assert_eq!(
            created_identities(&create_user),
            vec!["arn:aws:iam::111122223333:user/backup-svc"]
        );
        let denied = event(
            r#"{"eventVersion":"1.09","eventTime":"2025-03-11T22:10:00Z","eventSource":"iam.amazonaws.com","eventName":"CreateUser","recipientAccountId":"111122223333","eventID":"e2","errorCode":"AccessDenied","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/dmitri","accountId":"111122223333"},"requestParameters":{"userName":"x"}}"#,
        );
        assert!(
            created_identities(&denied).is_empty(),
            "a failed call created nothing"
        );
        let sa_key = event(
            r#"{"protoPayload":{"@type":"type.googleapis.com/google.cloud.audit.AuditLog","authenticationInfo":{"principalEmail":"hiro@corp.example"},"serviceName":"iam.googleapis.com","methodName":"google.iam.admin.v1.CreateServiceAccountKey","resourceName":"projects/-/serviceAccounts/etl@p.iam.gserviceaccount.com","request":{"name":"projects/-/serviceAccounts/etl@p.iam.gserviceaccount.com"}},"insertId":"g1","resource":{"type":"service_account","labels":{"project_id":"p"}},"timestamp":"2025-03-12T17:45:00Z","logName":"projects/p/logs/cloudaudit.googleapis.com%2Factivity"}"#,
        );
        assert_eq!(
            created_identities(&sa_key),
            vec!["etl@p.iam.gserviceaccount.com"]
        );
        let sp_secret = event(
            r#"{"time":"2025-03-12T04:10:00Z","resourceId":"/tenants/t/providers/Microsoft.aadiam","operationName":"Add service principal credentials","category":"AuditLogs","properties":{"id":"a1","activityDisplayName":"Add service principal credentials","result":"success","initiatedBy":{"user":{"id":"u1","userPrincipalName":"svc@corp.example"}},"targetResources":[{"id":"sp-obj-1","type":"ServicePrincipal","displayName":"backdoor"}]}}"#,
        );
        assert_eq!(created_identities(&sp_secret), vec!["sp-obj-1"]);
        let read = event(
            r#"{"eventVersion":"1.09","eventTime":"2025-03-11T22:10:00Z","eventSource":"iam.amazonaws.com","eventName":"GetUser","recipientAccountId":"111122223333","eventID":"e3","userIdentity":{"type":"IAMUser","arn":"arn:aws:iam::111122223333:user/dmitri","accountId":"111122223333"},"requestParameters":{"userName":"backup-svc"}}"#,
        );
        assert!(created_identities(&read).is_empty());
    }
}
