//! Google Cloud IAM, the calls GCP containment makes: a service account key's state (IAM API
//! v1: get, disable, enable) and a project's IAM policy (Resource Manager API v1: getIamPolicy,
//! setIamPolicy with the etag read, so a change made meanwhile is refused with `ABORTED` rather
//! than overwritten). Credentials as for Pub/Sub ([`Credentials`]), with the `cloud-platform`
//! scope.
//!
//! ```
//! use cloudsentinel_cloud::gcp_iam::Policy;
//! let mut p = Policy::from_json(serde_json::json!({"version": 1, "etag": "BwX1",
//!     "bindings": [{"role": "roles/owner", "members": ["user:eve@gmail.com"]}]}));
//! assert_eq!(p.remove_member("roles/owner", "user:eve@gmail.com"), vec![None]);
//! assert!(!p.holds("roles/owner", "user:eve@gmail.com"));
//! assert_eq!(p.as_json()["bindings"], serde_json::json!([]), "a binding left empty is dropped");
//! ```

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::aws::sigv4::uri_encode;
use crate::gcp::{Credentials, GcpAuth, GcpError};

/// The OAuth scope of the IAM and Resource Manager APIs.
const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// An IAM condition (a CEL expression with its title), as a policy's binding carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Condition {
    pub expression: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
}

/// A project's IAM policy as Resource Manager answers it, kept whole (its version, etag, audit
/// configs and any field this crate does not know survive a read, edit and write); its
/// bindings are read and edited through the methods.
#[derive(Debug, Clone, PartialEq)]
pub struct Policy(Value);

impl Policy {
    pub fn from_json(v: Value) -> Policy {
        Policy(v)
    }

    pub fn as_json(&self) -> &Value {
        &self.0
    }

    /// The etag of the read: setIamPolicy with it fails with `ABORTED` if the policy changed
    /// since.
    pub fn etag(&self) -> Option<&str> {
        self.0["etag"].as_str()
    }

    fn bindings(&self) -> impl Iterator<Item = &Value> {
        self.0["bindings"].as_array().into_iter().flatten()
    }

    /// The conditions of the bindings of `role` that list `member` (`None`: the binding without
    /// a condition), in the policy's order.
    pub fn conditions_of(&self, role: &str, member: &str) -> Vec<Option<Condition>> {
        self.bindings()
            .filter(|b| b["role"] == role && lists(b, member))
            .map(binding_condition)
            .collect()
    }

    /// Whether `member` holds `role` (with or without a condition).
    pub fn holds(&self, role: &str, member: &str) -> bool {
        !self.conditions_of(role, member).is_empty()
    }

    /// Removes `member` from every binding of `role`, dropping a binding it leaves empty;
    /// answers the conditions of the bindings it was removed from (empty: it held none).
    pub fn remove_member(&mut self, role: &str, member: &str) -> Vec<Option<Condition>> {
        let removed = self.conditions_of(role, member);
        if let Some(bindings) = self.0["bindings"].as_array_mut() {
            for b in bindings.iter_mut().filter(|b| b["role"] == role) {
                if let Some(members) = b["members"].as_array_mut() {
                    members.retain(|m| m != member);
                }
            }
            bindings.retain(|b| b["members"].as_array().is_some_and(|m| !m.is_empty()));
        }
        removed
    }

    /// Adds `member` to the binding of `role` with `condition` (a new binding when there is
    /// none); `false` when it is listed there already. A condition needs policy version 3.
    pub fn add_member(&mut self, role: &str, member: &str, condition: Option<&Condition>) -> bool {
        if !self.0.is_object() {
            self.0 = json!({});
        }
        if condition.is_some() {
            self.0["version"] = json!(3);
        }
        if !self.0["bindings"].is_array() {
            self.0["bindings"] = json!([]);
        }
        let bindings = self.0["bindings"]
            .as_array_mut()
            .expect("made an array above");
        let same = |b: &Value| b["role"] == role && binding_condition(b).as_ref() == condition;
        match bindings.iter_mut().find(|b| same(b)) {
            Some(b) if lists(b, member) => false,
            Some(b) => {
                if !b["members"].is_array() {
                    b["members"] = json!([]);
                }
                if let Some(members) = b["members"].as_array_mut() {
                    members.push(json!(member));
                }
                true
            }
            None => {
                let mut b = json!({"role": role, "members": [member]});
                if let Some(c) = condition {
                    b["condition"] = serde_json::to_value(c).unwrap_or_default();
                }
                bindings.push(b);
                true
            }
        }
    }
}

fn lists(binding: &Value, member: &str) -> bool {
    binding["members"]
        .as_array()
        .is_some_and(|m| m.iter().any(|x| x == member))
}

fn binding_condition(binding: &Value) -> Option<Condition> {
    match &binding["condition"] {
        Value::Null => None,
        c => Some(
            serde_json::from_value(c.clone()).unwrap_or_else(|_| Condition {
                expression: c["expression"].as_str().unwrap_or_default().to_string(),
                title: c["title"].as_str().map(str::to_string),
                description: None,
                location: None,
            }),
        ),
    }
}

/// A client of the IAM and Resource Manager APIs.
pub struct GcpIamClient {
    /// `https://iam.googleapis.com`, or a stand-in.
    iam: String,
    /// `https://cloudresourcemanager.googleapis.com`, or a stand-in.
    resource_manager: String,
    auth: GcpAuth,
}

impl std::fmt::Debug for GcpIamClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GcpIamClient")
            .field("iam", &self.iam)
            .field("resource_manager", &self.resource_manager)
            .field("auth", &self.auth)
            .finish()
    }
}

impl GcpIamClient {
    /// `endpoint`: one address serving both APIs' paths instead of Google's (a stand-in).
    pub fn new(credentials: Credentials, endpoint: Option<&str>) -> GcpIamClient {
        let base = |default: &str| {
            endpoint
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_string()
        };
        GcpIamClient {
            iam: base("https://iam.googleapis.com"),
            resource_manager: base("https://cloudresourcemanager.googleapis.com"),
            auth: GcpAuth::new(
                crate::auth::agent(Duration::from_secs(30)),
                credentials,
                CLOUD_PLATFORM_SCOPE,
            ),
        }
    }

    fn key_url(&self, project: &str, service_account: &str, key_id: &str) -> String {
        format!(
            "{}/v1/projects/{}/serviceAccounts/{}/keys/{}",
            self.iam,
            uri_encode(project, true),
            uri_encode(service_account, true),
            uri_encode(key_id, true)
        )
    }

    /// Whether a service account's key is disabled.
    pub fn key_disabled(
        &self,
        project: &str,
        service_account: &str,
        key_id: &str,
    ) -> Result<bool, GcpError> {
        let v = self.auth.call(
            "iam",
            "projects.serviceAccounts.keys.get",
            "GET",
            &self.key_url(project, service_account, key_id),
            None,
        )?;
        Ok(v["disabled"].as_bool().unwrap_or(false))
    }

    /// Disables a key (`disabled`) or enables it again.
    pub fn set_key_disabled(
        &self,
        project: &str,
        service_account: &str,
        key_id: &str,
        disabled: bool,
    ) -> Result<(), GcpError> {
        let (operation, verb) = if disabled {
            ("projects.serviceAccounts.keys.disable", "disable")
        } else {
            ("projects.serviceAccounts.keys.enable", "enable")
        };
        let url = format!("{}:{verb}", self.key_url(project, service_account, key_id));
        self.auth
            .call("iam", operation, "POST", &url, Some(json!({})))?;
        Ok(())
    }

    /// A project's IAM policy, version 3 (conditions included).
    pub fn get_iam_policy(&self, project: &str) -> Result<Policy, GcpError> {
        let v = self.auth.call(
            "cloudresourcemanager",
            "projects.getIamPolicy",
            "POST",
            &format!(
                "{}/v1/projects/{}:getIamPolicy",
                self.resource_manager,
                uri_encode(project, true)
            ),
            Some(json!({"options": {"requestedPolicyVersion": 3}})),
        )?;
        Ok(Policy(v))
    }

    /// Writes a project's IAM policy (with the etag it was read with: `ABORTED` when it
    /// changed since); answers the policy written.
    pub fn set_iam_policy(&self, project: &str, policy: &Policy) -> Result<Policy, GcpError> {
        let v = self.auth.call(
            "cloudresourcemanager",
            "projects.setIamPolicy",
            "POST",
            &format!(
                "{}/v1/projects/{}:setIamPolicy",
                self.resource_manager,
                uri_encode(project, true)
            ),
            Some(json!({"policy": policy.0})),
        )?;
        Ok(Policy(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cond(title: &str) -> Condition {
        Condition {
            expression: "request.time < timestamp(\"2027-01-01T00:00:00Z\")".into(),
            title: Some(title.into()),
            description: None,
            location: None,
        }
    }

    #[test]
    fn removing_a_member_keeps_the_rest_and_answers_each_bindings_condition() {
        let mut p = Policy::from_json(json!({
            "version": 3, "etag": "BwX1", "auditConfigs": [{"service": "allServices"}],
            "bindings": [
                {"role": "roles/owner", "members": ["group:admins@x.com", "user:eve@gmail.com"]},
                {"role": "roles/owner", "members": ["user:eve@gmail.com"], "condition": cond("until 2027")},
                {"role": "roles/viewer", "members": ["user:eve@gmail.com"]},
            ]
        }));
        assert_eq!(
            p.remove_member("roles/owner", "user:eve@gmail.com"),
            vec![None, Some(cond("until 2027"))]
        );
        assert!(!p.holds("roles/owner", "user:eve@gmail.com"));
        assert!(
            p.holds("roles/viewer", "user:eve@gmail.com"),
            "other roles stay"
        );
        assert!(p.holds("roles/owner", "group:admins@x.com"));
        assert_eq!(p.as_json()["bindings"].as_array().unwrap().len(), 2);
        assert_eq!(p.etag(), Some("BwX1"));
        assert_eq!(p.as_json()["auditConfigs"][0]["service"], "allServices");
        assert!(
            p.remove_member("roles/owner", "user:eve@gmail.com")
                .is_empty()
        );
    }

    #[test]
    fn adding_back_restores_the_bindings_as_they_were() {
        let original = json!({
            "version": 3, "etag": "BwX1",
            "bindings": [
                {"role": "roles/owner", "members": ["group:admins@x.com", "user:eve@gmail.com"]},
                {"role": "roles/owner", "members": ["user:eve@gmail.com"], "condition": cond("until 2027")},
            ]
        });
        let mut p = Policy::from_json(original.clone());
        let removed = p.remove_member("roles/owner", "user:eve@gmail.com");
        for c in &removed {
            assert!(p.add_member("roles/owner", "user:eve@gmail.com", c.as_ref()));
        }
        assert_eq!(p.as_json(), &original);
        assert!(
            !p.add_member("roles/owner", "user:eve@gmail.com", None),
            "already there"
        );
        let mut empty = Policy::from_json(json!({"version": 1, "etag": "BwX2"}));
        assert!(empty.add_member("roles/editor", "user:a@x.com", Some(&cond("t"))));
        assert_eq!(empty.as_json()["version"], 3, "a condition needs version 3");
        assert_eq!(
            empty.conditions_of("roles/editor", "user:a@x.com"),
            vec![Some(cond("t"))]
        );
    }

    #[test]
    fn key_and_policy_urls_encode_what_the_evidence_gave() {
        let c = GcpIamClient::new(Credentials::None, Some("http://127.0.0.1:9/"));
        assert_eq!(
            c.key_url("p-1", "sa@p-1.iam.gserviceaccount.com", "../x"),
            "http://127.0.0.1:9/v1/projects/p-1/serviceAccounts/sa%40p-1.iam.gserviceaccount.com/keys/..%2Fx"
        );
        let g = GcpIamClient::new(Credentials::Metadata, None);
        assert_eq!(
            g.resource_manager,
            "https://cloudresourcemanager.googleapis.com"
        );
    }
}
