//! IAM's Query API (form-encoded POST, XML answers): the calls containment makes. IAM is a
//! global service signed for `us-east-1`.

use super::{Aws, AwsError, Call};
use crate::xml;

/// An access key of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccessKey {
    pub id: String,
    /// `Active` or `Inactive`.
    pub status: String,
}

/// A login profile (console password) of a user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoginProfile {
    pub password_reset_required: bool,
}

impl Aws {
    /// One IAM action; answers the leaves of the XML answer.
    pub fn iam(
        &self,
        action: &'static str,
        params: &[(&str, &str)],
    ) -> Result<Vec<(String, String)>, AwsError> {
        let mut form = vec![
            ("Action".to_string(), action.to_string()),
            ("Version".to_string(), "2010-05-08".to_string()),
        ];
        form.extend(params.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        let body: Vec<String> = form
            .iter()
            .map(|(k, v)| {
                format!(
                    "{}={}",
                    super::sigv4::uri_encode(k, true),
                    super::sigv4::uri_encode(v, true)
                )
            })
            .collect();
        let body = body.join("&");
        let origin = match &self.config.endpoint_url {
            Some(e) => e.clone(),
            None => "https://iam.amazonaws.com".into(),
        };
        let resp = self.send_global(Call {
            service: "iam",
            operation: action,
            method: "POST",
            origin,
            path: "/".into(),
            query: Vec::new(),
            headers: vec![(
                "content-type".into(),
                "application/x-www-form-urlencoded; charset=utf-8".into(),
            )],
            body: body.as_bytes(),
            limit: 4 * 1024 * 1024,
        })?;
        xml::leaves(&String::from_utf8_lossy(&resp.body)).map_err(|message| AwsError::Answer {
            service: "iam",
            operation: action,
            message,
        })
    }

    pub fn list_access_keys(&self, user: &str) -> Result<Vec<AccessKey>, AwsError> {
        let leaves = self.iam("ListAccessKeys", &[("UserName", user)])?;
        let mut out: Vec<AccessKey> = Vec::new();
        for (path, value) in leaves {
            if path.ends_with("AccessKeyMetadata/member/AccessKeyId") {
                out.push(AccessKey {
                    id: value,
                    status: String::new(),
                });
            } else if path.ends_with("AccessKeyMetadata/member/Status")
                && let Some(k) = out.last_mut()
            {
                k.status = value;
            }
        }
        Ok(out)
    }

    pub fn set_access_key_status(
        &self,
        user: &str,
        key: &str,
        status: &str,
    ) -> Result<(), AwsError> {
        self.iam(
            "UpdateAccessKey",
            &[("UserName", user), ("AccessKeyId", key), ("Status", status)],
        )?;
        Ok(())
    }

    /// An inline policy's document (URL-decoded JSON), `None` when there is none of that name.
    /// `kind` is `User` or `Role`.
    pub fn inline_policy(
        &self,
        kind: &str,
        name: &str,
        policy: &str,
    ) -> Result<Option<String>, AwsError> {
        let (action, key) = match kind {
            "Role" => ("GetRolePolicy", "RoleName"),
            _ => ("GetUserPolicy", "UserName"),
        };
        match self.iam(action, &[(key, name), ("PolicyName", policy)]) {
            Ok(leaves) => Ok(xml::first(&leaves, "PolicyDocument").map(percent_decode)),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn put_inline_policy(
        &self,
        kind: &str,
        name: &str,
        policy: &str,
        document: &str,
    ) -> Result<(), AwsError> {
        let (action, key) = match kind {
            "Role" => ("PutRolePolicy", "RoleName"),
            _ => ("PutUserPolicy", "UserName"),
        };
        self.iam(
            action,
            &[
                (key, name),
                ("PolicyName", policy),
                ("PolicyDocument", document),
            ],
        )?;
        Ok(())
    }

    pub fn delete_inline_policy(
        &self,
        kind: &str,
        name: &str,
        policy: &str,
    ) -> Result<(), AwsError> {
        let (action, key) = match kind {
            "Role" => ("DeleteRolePolicy", "RoleName"),
            _ => ("DeleteUserPolicy", "UserName"),
        };
        self.iam(action, &[(key, name), ("PolicyName", policy)])?;
        Ok(())
    }

    pub fn login_profile(&self, user: &str) -> Result<Option<LoginProfile>, AwsError> {
        match self.iam("GetLoginProfile", &[("UserName", user)]) {
            Ok(leaves) => Ok(Some(LoginProfile {
                password_reset_required: xml::first(&leaves, "PasswordResetRequired")
                    == Some("true"),
            })),
            Err(e) if e.code() == Some("NoSuchEntity") => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub fn delete_login_profile(&self, user: &str) -> Result<(), AwsError> {
        self.iam("DeleteLoginProfile", &[("UserName", user)])?;
        Ok(())
    }

    pub fn create_login_profile(
        &self,
        user: &str,
        password: &str,
        reset_required: bool,
    ) -> Result<(), AwsError> {
        self.iam(
            "CreateLoginProfile",
            &[
                ("UserName", user),
                ("Password", password),
                (
                    "PasswordResetRequired",
                    if reset_required { "true" } else { "false" },
                ),
            ],
        )?;
        Ok(())
    }
}

/// IAM returns policy documents URL-encoded.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_documents_are_decoded() {
        assert_eq!(
            percent_decode("%7B%22Version%22%3A%222012-10-17%22%7D"),
            r#"{"Version":"2012-10-17"}"#
        );
        assert_eq!(percent_decode("{\"a\":1}"), "{\"a\":1}");
    }
}
