//! Azure Blob Storage: the calls an export reader makes (list a container by prefix, read a
//! blob from an offset), authorised with the account's shared key, a SAS token, or an Entra ID
//! application's client credentials (REST API, version 2021-08-06).
//!
//! Diagnostic settings export the Activity Log and Entra ID sign-in and audit logs to hourly
//! append blobs (`.../y=2026/m=11/d=20/h=10/m=00/PT1H.json`) that grow through the hour: a
//! reader remembers how far it read each blob and reads only the new bytes.

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;

use crate::aws::sigv4::uri_encode;
use crate::xml;

/// The storage REST API version the calls speak.
const VERSION: &str = "2021-08-06";

/// How a call is authorised.
#[derive(Clone)]
pub enum Auth {
    /// The account key (base64, as the portal shows it).
    SharedKey(String),
    /// A SAS token (`sv=...&sig=...`), appended to every URL.
    Sas(String),
    /// An Entra ID application: tenant, client id, client secret.
    ClientCredentials {
        tenant: String,
        client_id: String,
        secret: String,
    },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Auth::SharedKey(_) => "SharedKey(<redacted>)",
            Auth::Sas(_) => "Sas(<redacted>)",
            Auth::ClientCredentials { .. } => "ClientCredentials(<redacted>)",
        })
    }
}

/// What went wrong with a call.
#[derive(Debug, thiserror::Error)]
pub enum AzureError {
    /// Azure answered with an error (its `x-ms-error-code` or the document's `Code`).
    #[error("blob {operation}: {code}: {message} (HTTP {status})")]
    Api {
        operation: &'static str,
        status: u16,
        code: String,
        message: String,
    },
    #[error("blob {operation}: {message}")]
    Transport {
        operation: &'static str,
        message: String,
    },
    #[error("blob {operation}: unexpected answer: {message}")]
    Answer {
        operation: &'static str,
        message: String,
    },
    #[error("credentials: {0}")]
    Credentials(String),
}

impl AzureError {
    /// Worth trying again: no answer, throttling, or a server-side error.
    pub fn retryable(&self) -> bool {
        match self {
            AzureError::Transport { .. } => true,
            AzureError::Api { status, .. } => *status >= 500 || *status == 429,
            _ => false,
        }
    }
}

/// A blob in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct BlobItem {
    pub name: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct BlobListing {
    pub blobs: Vec<BlobItem>,
    /// With a delimiter: the "folders" under the prefix.
    pub prefixes: Vec<String>,
    pub next: Option<String>,
}

/// A client for one storage account.
pub struct BlobClient {
    http: ureq::Agent,
    account: String,
    /// `https://<account>.blob.core.windows.net`, or an emulator's
    /// `http://127.0.0.1:10000/<account>`.
    endpoint: String,
    auth: Auth,
    token: crate::auth::TokenCache,
}

impl std::fmt::Debug for BlobClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BlobClient")
            .field("account", &self.account)
            .field("endpoint", &self.endpoint)
            .field("auth", &self.auth)
            .finish()
    }
}

type HmacSha256 = Hmac<Sha256>;

impl BlobClient {
    /// `endpoint` defaults to the account's public endpoint.
    pub fn new(account: &str, endpoint: Option<&str>, auth: Auth, timeout: Duration) -> BlobClient {
        BlobClient {
            http: crate::auth::agent(timeout),
            account: account.to_string(),
            endpoint: endpoint
                .map(|e| e.trim_end_matches('/').to_string())
                .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net")),
            auth,
            token: Default::default(),
        }
    }

    pub fn account(&self) -> &str {
        &self.account
    }

    /// One page of blobs under `prefix` in `container`.
    pub fn list(
        &self,
        container: &str,
        prefix: &str,
        delimiter: Option<&str>,
        marker: Option<&str>,
    ) -> Result<BlobListing, AzureError> {
        let mut query = vec![
            ("restype".to_string(), "container".to_string()),
            ("comp".to_string(), "list".to_string()),
            ("prefix".to_string(), prefix.to_string()),
            ("maxresults".to_string(), "5000".to_string()),
        ];
        if let Some(d) = delimiter {
            query.push(("delimiter".into(), d.into()));
        }
        if let Some(m) = marker {
            query.push(("marker".into(), m.into()));
        }
        let (_, body) = self.call(
            "List Blobs",
            &format!("/{}", uri_encode(container, true)),
            query,
            Vec::new(),
            16 * 1024 * 1024,
        )?;
        parse_listing(&String::from_utf8_lossy(&body)).map_err(|message| AzureError::Answer {
            operation: "List Blobs",
            message,
        })
    }

    /// Every blob under `prefix`, all pages.
    pub fn list_all(&self, container: &str, prefix: &str) -> Result<Vec<BlobItem>, AzureError> {
        let mut out = Vec::new();
        let mut marker = None;
        loop {
            let page = self.list(container, prefix, None, marker.as_deref())?;
            out.extend(page.blobs);
            match page.next {
                Some(m) => marker = Some(m),
                None => return Ok(out),
            }
        }
    }

    /// The bytes of a blob from `offset` to its end, at most `max` of them.
    pub fn read_from(
        &self,
        container: &str,
        blob: &str,
        offset: u64,
        max: u64,
    ) -> Result<Vec<u8>, AzureError> {
        let path = format!(
            "/{}/{}",
            uri_encode(container, true),
            uri_encode(blob, false)
        );
        let range = format!("bytes={offset}-{}", offset + max.max(1) - 1);
        let (status, body) = self.call(
            "Get Blob",
            &path,
            Vec::new(),
            vec![("x-ms-range".into(), range)],
            max,
        )?;
        if status != 206 && status != 200 {
            return Err(AzureError::Answer {
                operation: "Get Blob",
                message: format!("HTTP {status} for a range read"),
            });
        }
        Ok(body)
    }

    /// Sends a GET (every call an export reader makes is one).
    fn call(
        &self,
        operation: &'static str,
        path: &str,
        mut query: Vec<(String, String)>,
        mut headers: Vec<(String, String)>,
        limit: u64,
    ) -> Result<(u16, Vec<u8>), AzureError> {
        let transport = |message: String| AzureError::Transport { operation, message };
        headers.push(("x-ms-version".into(), VERSION.into()));
        headers.push((
            "x-ms-date".into(),
            Utc::now().format("%a, %d %b %Y %H:%M:%S GMT").to_string(),
        ));
        let mut url_query: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{}={}", uri_encode(k, true), uri_encode(v, true)))
            .collect();
        match &self.auth {
            Auth::SharedKey(key) => {
                let sig = self.shared_key_signature(key, "GET", path, &query, &headers)?;
                headers.push((
                    "authorization".into(),
                    format!("SharedKey {}:{sig}", self.account),
                ));
            }
            Auth::Sas(token) => url_query.push(token.trim_start_matches('?').to_string()),
            Auth::ClientCredentials { .. } => {
                let token = self.bearer()?;
                headers.push(("authorization".into(), format!("Bearer {token}")));
            }
        }
        query.clear();
        let mut url = format!("{}{path}", self.endpoint);
        if !url_query.is_empty() {
            url.push('?');
            url.push_str(&url_query.join("&"));
        }
        let mut req = self.http.get(&url);
        for (k, v) in &headers {
            req = req.header(k.as_str(), v.as_str());
        }
        let mut resp = req.call().map_err(|e| transport(e.to_string()))?;
        let status = resp.status().as_u16();
        let code = resp
            .headers()
            .get("x-ms-error-code")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = resp
            .body_mut()
            .with_config()
            .limit(limit.max(64 * 1024))
            .read_to_vec()
            .map_err(|e| transport(format!("reading the answer: {e}")))?;
        if status >= 300 {
            let text = String::from_utf8_lossy(&body);
            let leaves = xml::leaves(&text).unwrap_or_default();
            return Err(AzureError::Api {
                operation,
                status,
                code: code
                    .or_else(|| xml::first(&leaves, "Code").map(str::to_string))
                    .unwrap_or_else(|| "Unknown".into()),
                message: xml::first(&leaves, "Message")
                    .unwrap_or("")
                    .lines()
                    .next()
                    .unwrap_or("")
                    .to_string(),
            });
        }
        Ok((status, body))
    }

    /// The Shared Key signature of a request (no body, no standard headers but the `x-ms-*`).
    fn shared_key_signature(
        &self,
        key: &str,
        verb: &str,
        path: &str,
        query: &[(String, String)],
        headers: &[(String, String)],
    ) -> Result<String, AzureError> {
        let key = B64
            .decode(key.trim())
            .map_err(|_| AzureError::Credentials("the account key is not base64".into()))?;
        let to_sign = string_to_sign(&self.account, &self.endpoint, verb, path, query, headers);
        let mut mac = HmacSha256::new_from_slice(&key).expect("HMAC takes any key length");
        mac.update(to_sign.as_bytes());
        Ok(B64.encode(mac.finalize().into_bytes()))
    }

    /// An Entra ID access token for storage (`AZURE_AUTHORITY_HOST` overrides the authority).
    fn bearer(&self) -> Result<String, AzureError> {
        let Auth::ClientCredentials {
            tenant,
            client_id,
            secret,
        } = &self.auth
        else {
            unreachable!("bearer tokens are for client credentials")
        };
        let authority = std::env::var("AZURE_AUTHORITY_HOST")
            .unwrap_or_else(|_| "https://login.microsoftonline.com".into());
        self.token.get(|| {
            crate::auth::entra_token(
                &self.http,
                &authority,
                tenant,
                client_id,
                secret,
                "https://storage.azure.com/.default",
            )
            .map_err(AzureError::Credentials)
        })
    }
}

/// The Shared Key string to sign: the verb, the standard headers (all empty for our GETs but a
/// range we send as `x-ms-range`), the canonical `x-ms-*` headers and the canonical resource.
/// Against an emulator whose URLs carry the account in the path the account appears twice in
/// the resource, as the emulators expect.
fn string_to_sign(
    account: &str,
    endpoint: &str,
    verb: &str,
    path: &str,
    query: &[(String, String)],
    headers: &[(String, String)],
) -> String {
    let mut ms: Vec<(String, String)> = headers
        .iter()
        .filter(|(k, _)| k.to_ascii_lowercase().starts_with("x-ms-"))
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    ms.sort();
    let mut canonical_headers = String::new();
    for (k, v) in &ms {
        canonical_headers.push_str(&format!("{k}:{v}\n"));
    }
    // The path of the endpoint itself (an emulator's `/<account>`) is part of the resource.
    let endpoint_path = endpoint
        .split_once("://")
        .map(|(_, rest)| rest)
        .and_then(|rest| rest.find('/').map(|i| &rest[i..]))
        .unwrap_or("");
    let mut resource = format!("/{account}{endpoint_path}{path}");
    let mut q: Vec<(String, String)> = query
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect();
    q.sort();
    for (k, v) in q {
        resource.push_str(&format!("\n{k}:{v}"));
    }
    format!("{verb}\n\n\n\n\n\n\n\n\n\n\n\n{canonical_headers}{resource}")
}

fn parse_listing(text: &str) -> Result<BlobListing, String> {
    let leaves = xml::leaves(text)?;
    let mut out = BlobListing::default();
    for (path, value) in &leaves {
        match path.strip_prefix("EnumerationResults/") {
            Some("Blobs/Blob/Name") => out.blobs.push(BlobItem {
                name: value.clone(),
                size: 0,
                last_modified: None,
            }),
            Some("Blobs/Blob/Properties/Content-Length") => {
                if let Some(b) = out.blobs.last_mut() {
                    b.size = value.parse().unwrap_or(0);
                }
            }
            Some("Blobs/Blob/Properties/Last-Modified") => {
                if let Some(b) = out.blobs.last_mut() {
                    b.last_modified = DateTime::parse_from_rfc2822(value)
                        .ok()
                        .map(|t| t.with_timezone(&Utc));
                }
            }
            Some("Blobs/BlobPrefix/Name") => out.prefixes.push(value.clone()),
            Some("NextMarker") if !value.is_empty() => out.next = Some(value.clone()),
            _ => {}
        }
    }
    Ok(out)
}

/// Where an export blob's name says its hour is: `.../y=2026/m=11/d=20/h=10/m=00/PT1H.json`.
pub fn hour_of(name: &str) -> Option<DateTime<Utc>> {
    let field = |key: &str| -> Option<u32> {
        let at = name.find(key)? + key.len();
        name[at..].split('/').next()?.parse().ok()
    };
    let (y, mo, d, h) = (field("/y=")?, field("/m=")?, field("/d=")?, field("/h=")?);
    chrono::NaiveDate::from_ymd_opt(y as i32, mo, d)?
        .and_hms_opt(h, 0, 0)
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented example form: a List Blobs call's string to sign, for a public endpoint
    /// and for an emulator that carries the account in its path.
    #[test]
    fn strings_to_sign_carry_headers_and_resource() {
        let query = vec![
            ("restype".to_string(), "container".to_string()),
            ("comp".to_string(), "list".to_string()),
            ("prefix".to_string(), "a b/".to_string()),
        ];
        let headers = vec![
            ("x-ms-version".to_string(), VERSION.to_string()),
            (
                "x-ms-date".to_string(),
                "Fri, 20 Nov 2026 10:00:00 GMT".to_string(),
            ),
        ];
        let s = string_to_sign(
            "acct",
            "https://acct.blob.core.windows.net",
            "GET",
            "/insights-activity-logs",
            &query,
            &headers,
        );
        assert_eq!(
            s,
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:Fri, 20 Nov 2026 10:00:00 GMT\nx-ms-version:2021-08-06\n\
             /acct/insights-activity-logs\ncomp:list\nprefix:a b/\nrestype:container"
        );
        let e = string_to_sign(
            "devstoreaccount1",
            "http://127.0.0.1:10000/devstoreaccount1",
            "GET",
            "/c",
            &[],
            &headers,
        );
        assert!(e.ends_with("\n/devstoreaccount1/devstoreaccount1/c"), "{e}");
    }

    #[test]
    fn listings_and_hours_parse() {
        let doc = r#"<?xml version="1.0" encoding="utf-8"?><EnumerationResults ServiceEndpoint="x" ContainerName="c"><Prefix>r</Prefix><Blobs>
<Blob><Name>resourceId=/SUBSCRIPTIONS/S1/y=2026/m=11/d=20/h=10/m=00/PT1H.json</Name><Properties><Last-Modified>Fri, 20 Nov 2026 10:05:00 GMT</Last-Modified><Content-Length>1234</Content-Length><BlobType>AppendBlob</BlobType></Properties></Blob>
<BlobPrefix><Name>tenantId=T/</Name></BlobPrefix></Blobs><NextMarker>m2</NextMarker></EnumerationResults>"#;
        let l = parse_listing(doc).unwrap();
        assert_eq!(l.blobs.len(), 1);
        assert_eq!(l.blobs[0].size, 1234);
        assert!(l.blobs[0].last_modified.is_some());
        assert_eq!(l.prefixes, ["tenantId=T/"]);
        assert_eq!(l.next.as_deref(), Some("m2"));
        assert_eq!(
            hour_of(&l.blobs[0].name).unwrap().to_rfc3339(),
            "2026-11-20T10:00:00+00:00"
        );
        assert_eq!(hour_of("no/time/here.json"), None);
    }
}
