//! The standard AWS credential chain, in the SDKs' order: environment variables, web identity
//! (EKS, GitHub Actions), the shared credentials and config files, the container endpoint
//! (ECS, Fargate), the instance metadata service (EC2, IMDSv2); then, when configured, a role
//! assumed with what was found (`sts:AssumeRole`).

use std::path::PathBuf;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{Aws, AwsError, Call, Config};
use crate::xml;

/// An access key, its secret and, for temporary credentials, the session token and expiry.
#[derive(Clone)]
pub struct Credentials {
    pub access_key_id: String,
    pub secret_access_key: String,
    pub session_token: Option<String>,
    pub expires: Option<DateTime<Utc>>,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<redacted>")
            .field(
                "session_token",
                &self.session_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expires", &self.expires)
            .finish()
    }
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The first credentials the chain finds, or what each link said.
pub fn from_chain(http: &ureq::Agent, config: &Config) -> Result<Credentials, AwsError> {
    let mut tried = Vec::new();
    if let (Some(id), Some(secret)) = (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        return Ok(Credentials {
            access_key_id: id,
            secret_access_key: secret,
            session_token: env("AWS_SESSION_TOKEN"),
            expires: None,
        });
    }
    tried.push("environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set".to_string());
    if let (Some(token_file), Some(role)) =
        (env("AWS_WEB_IDENTITY_TOKEN_FILE"), env("AWS_ROLE_ARN"))
    {
        return web_identity(config, &token_file, &role);
    }
    tried.push("web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set".into());
    match profile() {
        Ok(Some(c)) => return Ok(c),
        Ok(None) => tried.push("shared files: no such profile or no keys in it".into()),
        Err(e) => return Err(AwsError::Credentials(e)),
    }
    if let Some(c) = container(http)? {
        return Ok(c);
    }
    tried.push("container: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI not set".into());
    if env("AWS_EC2_METADATA_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        tried.push("instance metadata: disabled (AWS_EC2_METADATA_DISABLED)".into());
    } else {
        match instance_metadata() {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("instance metadata: {e}")),
        }
    }
    Err(AwsError::Credentials(format!(
        "none found; tried {}",
        tried.join("; ")
    )))
}

/// Keys of a profile (`AWS_PROFILE`, else `default`) in the shared credentials file, then the
/// config file.
fn profile() -> Result<Option<Credentials>, String> {
    let name = env("AWS_PROFILE").unwrap_or_else(|| "default".into());
    let home = env("HOME").map(PathBuf::from);
    let credentials_file = env("AWS_SHARED_CREDENTIALS_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/credentials")));
    let config_file = env("AWS_CONFIG_FILE")
        .map(PathBuf::from)
        .or_else(|| home.as_ref().map(|h| h.join(".aws/config")));
    for (file, section) in [
        (credentials_file, name.clone()),
        (
            config_file,
            if name == "default" {
                name.clone()
            } else {
                format!("profile {name}")
            },
        ),
    ] {
        let Some(file) = file else { continue };
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let keys = ini_section(&text, &section);
        let get = |k: &str| {
            keys.iter()
                .find(|(key, _)| key == k)
                .map(|(_, v)| v.clone())
        };
        if let (Some(id), Some(secret)) = (get("aws_access_key_id"), get("aws_secret_access_key")) {
            return Ok(Some(Credentials {
                access_key_id: id,
                secret_access_key: secret,
                session_token: get("aws_session_token"),
                expires: None,
            }));
        }
    }
    Ok(None)
}

/// `key = value` lines of one `[section]` of an INI file.
fn ini_section(text: &str, section: &str) -> Vec<(String, String)> {
    let mut inside = false;
    let mut out = Vec::new();
    for line in text.lines() {
        let line = line.trim();
        if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            inside = name.trim() == section;
        } else if inside && let Some((k, v)) = line.split_once('=') {
            out.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    out
}

/// A short-timeout agent for the link-local endpoints (absent off AWS: fail fast).
fn local_agent() -> ureq::Agent {
    crate::auth::agent(Duration::from_secs(2))
}

/// ECS and Fargate: the task's credentials from the container endpoint.
fn container(http: &ureq::Agent) -> Result<Option<Credentials>, AwsError> {
    let url = match (
        env("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
        env("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
    ) {
        (Some(rel), _) => format!("http://169.254.170.2{rel}"),
        (None, Some(full)) => full,
        (None, None) => return Ok(None),
    };
    let mut req = http.get(&url);
    if let Some(token) = env("AWS_CONTAINER_AUTHORIZATION_TOKEN") {
        req = req.header("authorization", token.as_str());
    }
    let text = req
        .call()
        .and_then(|mut r| r.body_mut().with_config().limit(64 * 1024).read_to_string())
        .map_err(|e| AwsError::Credentials(format!("container endpoint {url}: {e}")))?;
    json_credentials(&text)
        .map(Some)
        .map_err(|e| AwsError::Credentials(format!("container endpoint {url}: {e}")))
}

/// EC2: the instance profile's credentials through IMDSv2.
fn instance_metadata() -> Result<Credentials, String> {
    let http = local_agent();
    let base = "http://169.254.169.254/latest";
    let token = http
        .put(&format!("{base}/api/token"))
        .header("x-aws-ec2-metadata-token-ttl-seconds", "300")
        .send(&b""[..])
        .and_then(|mut r| r.body_mut().read_to_string())
        .map_err(|e| format!("not reachable ({e})"))?;
    let get = |path: &str| {
        http.get(&format!("{base}{path}"))
            .header("x-aws-ec2-metadata-token", token.as_str())
            .call()
            .and_then(|mut r| r.body_mut().with_config().limit(64 * 1024).read_to_string())
            .map_err(|e| e.to_string())
    };
    let role = get("/meta-data/iam/security-credentials/")?;
    let role = role.lines().next().unwrap_or("").trim().to_string();
    if role.is_empty() {
        return Err("the instance has no instance profile".into());
    }
    json_credentials(&get(&format!(
        "/meta-data/iam/security-credentials/{role}"
    ))?)
}

/// The JSON the container and instance endpoints answer.
fn json_credentials(text: &str) -> Result<Credentials, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|e| e.to_string())?;
    let field = |k: &str| v[k].as_str().map(str::to_string);
    Ok(Credentials {
        access_key_id: field("AccessKeyId").ok_or("no AccessKeyId")?,
        secret_access_key: field("SecretAccessKey").ok_or("no SecretAccessKey")?,
        session_token: field("Token"),
        expires: field("Expiration")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    })
}

/// The session name CloudSentinel's sessions carry (CloudTrail shows it).
fn session_name() -> String {
    env("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| "cloudsentinel".into())
}

/// `sts:AssumeRoleWithWebIdentity` with the token in the file (the call is not signed).
fn web_identity(config: &Config, token_file: &str, role: &str) -> Result<Credentials, AwsError> {
    let token = std::fs::read_to_string(token_file).map_err(|e| {
        AwsError::Credentials(format!("AWS_WEB_IDENTITY_TOKEN_FILE {token_file}: {e}"))
    })?;
    let sts = Aws::new(config.clone());
    sts_credentials(
        &sts,
        "AssumeRoleWithWebIdentity",
        &[
            ("RoleArn", role),
            ("RoleSessionName", &session_name()),
            ("WebIdentityToken", token.trim()),
        ],
        None,
    )
}

/// `sts:AssumeRole` with `base`.
pub fn assume_role(aws: &Aws, base: &Credentials, role: &str) -> Result<Credentials, AwsError> {
    let name = session_name();
    let mut params = vec![("RoleArn", role), ("RoleSessionName", name.as_str())];
    if let Some(id) = &aws.config.external_id {
        params.push(("ExternalId", id));
    }
    sts_credentials(aws, "AssumeRole", &params, Some(base))
}

fn sts_credentials(
    aws: &Aws,
    operation: &'static str,
    params: &[(&str, &str)],
    creds: Option<&Credentials>,
) -> Result<Credentials, AwsError> {
    let mut form = vec![
        ("Action".to_string(), operation.to_string()),
        ("Version".to_string(), "2011-06-15".to_string()),
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
    let call = Call {
        service: "sts",
        operation,
        method: "POST",
        origin: aws.origin("sts"),
        path: "/".into(),
        query: Vec::new(),
        headers: vec![(
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        )],
        body: body.as_bytes(),
        limit: 256 * 1024,
    };
    let resp = aws.send_with(call, creds, Utc::now())?;
    let answer = |message: String| AwsError::Answer {
        service: "sts",
        operation,
        message,
    };
    let text = String::from_utf8_lossy(&resp.body);
    let leaves = xml::leaves(&text).map_err(answer)?;
    let get = |k: &str| xml::first(&leaves, &format!("Credentials/{k}")).map(str::to_string);
    Ok(Credentials {
        access_key_id: get("AccessKeyId").ok_or_else(|| answer("no AccessKeyId".into()))?,
        secret_access_key: get("SecretAccessKey")
            .ok_or_else(|| answer("no SecretAccessKey".into()))?,
        session_token: get("SessionToken"),
        expires: get("Expiration")
            .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
            .map(|t| t.with_timezone(&Utc)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profiles_are_read_from_their_section() {
        let text = "[default]\naws_access_key_id = AKIADEFAULT\n\n[profile audit]\n# note\n\
                    aws_access_key_id=AKIAAUDIT\naws_secret_access_key = s3cr3t\n";
        assert_eq!(
            ini_section(text, "profile audit"),
            vec![
                ("aws_access_key_id".to_string(), "AKIAAUDIT".to_string()),
                ("aws_secret_access_key".to_string(), "s3cr3t".to_string())
            ]
        );
        assert_eq!(ini_section(text, "default").len(), 1);
    }

    #[test]
    fn secrets_stay_out_of_debug_output() {
        let c = Credentials {
            access_key_id: "AKIAEXAMPLE".into(),
            secret_access_key: "very-secret".into(),
            session_token: Some("token-secret".into()),
            expires: None,
        };
        let shown = format!("{c:?}");
        assert!(shown.contains("AKIAEXAMPLE"));
        assert!(!shown.contains("very-secret") && !shown.contains("token-secret"));
    }
}
