//! AWS Signature Version 4: the `Authorization` header of a request, computed from its method,
//! path, query, headers and payload hash with the caller's credentials
//! (<https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>).

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::Credentials;

type HmacSha256 = Hmac<Sha256>;

/// The parts of a request that are signed.
pub struct Request<'a> {
    pub method: &'a str,
    /// The path as sent, already percent-encoded (`/bucket/AWSLogs/...`).
    pub path: &'a str,
    /// Query parameters, not encoded.
    pub query: &'a [(String, String)],
    /// Headers to sign besides `host` and `x-amz-*` set here: lowercase names.
    pub headers: &'a [(String, String)],
    /// `host` or `host:port`, as in the URL.
    pub host: &'a str,
    /// Hex SHA-256 of the body ([`payload_hash`]).
    pub payload_hash: &'a str,
}

/// Hex SHA-256 of a body.
pub fn payload_hash(body: &[u8]) -> String {
    hex(&Sha256::digest(body))
}

/// The headers to add to the request: `x-amz-date`, `x-amz-content-sha256`,
/// `x-amz-security-token` (temporary credentials) and `authorization`; not the request's own
/// headers, which it already has (a header sent twice arrives as both values joined by a
/// comma, which is not what was signed: SignatureDoesNotMatch).
pub fn sign(
    req: &Request<'_>,
    creds: &Credentials,
    region: &str,
    service: &str,
    now: DateTime<Utc>,
) -> Vec<(String, String)> {
    let amz_date = now.format("%Y%m%dT%H%M%SZ").to_string();
    let date = &amz_date[..8];
    let mut added = vec![
        ("x-amz-date".to_string(), amz_date.clone()),
        (
            "x-amz-content-sha256".to_string(),
            req.payload_hash.to_string(),
        ),
    ];
    if let Some(token) = &creds.session_token {
        added.push(("x-amz-security-token".into(), token.clone()));
    }
    let mut headers: Vec<(String, String)> = req
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    headers.push(("host".into(), req.host.to_string()));
    headers.extend(added.iter().cloned());
    headers.sort();
    let canonical = canonical_request(req, &headers);
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let key = signing_key(&creds.secret_access_key, date, region, service);
    let signature = hex(&hmac(&key, to_sign.as_bytes()));
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={}, Signature={signature}",
        creds.access_key_id,
        signed.join(";")
    );
    added.push(("authorization".into(), authorization));
    added
}

/// The canonical request: method, path, sorted encoded query, sorted headers, their names, the
/// payload hash.
fn canonical_request(req: &Request<'_>, headers: &[(String, String)]) -> String {
    let mut query: Vec<(String, String)> = req
        .query
        .iter()
        .map(|(k, v)| (uri_encode(k, true), uri_encode(v, true)))
        .collect();
    query.sort();
    let query: Vec<String> = query.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let mut canonical_headers = String::new();
    for (k, v) in headers {
        canonical_headers.push_str(k);
        canonical_headers.push(':');
        canonical_headers.push_str(&collapse_spaces(v));
        canonical_headers.push('\n');
    }
    let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
    format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        req.method,
        if req.path.is_empty() { "/" } else { req.path },
        query.join("&"),
        canonical_headers,
        signed.join(";"),
        req.payload_hash
    )
}

fn collapse_spaces(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = HmacSha256::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 encoding as SigV4 wants it: unreserved characters kept, everything else `%XX`;
/// `/` kept when `slash` is false (an S3 key in a path).
pub fn uri_encode(s: &str, slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            b'/' if !slash => out.push('/'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The example of AWS's documentation ("Examples of the complete Signature Version 4 signing
    /// process": IAM ListUsers, 2015-08-30T12:36:00Z), whose canonical request hash and signature
    /// it prints.
    #[test]
    fn signs_the_documented_example() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY".into(),
            session_token: None,
            expires: None,
        };
        let query = [
            ("Action".to_string(), "ListUsers".to_string()),
            ("Version".to_string(), "2010-05-08".to_string()),
        ];
        let headers = [(
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        )];
        let empty = payload_hash(b"");
        let req = Request {
            method: "GET",
            path: "/",
            query: &query,
            headers: &headers,
            host: "iam.amazonaws.com",
            payload_hash: &empty,
        };
        let now = DateTime::parse_from_rfc3339("2015-08-30T12:36:00Z")
            .unwrap()
            .with_timezone(&Utc);
        // The documented example signs content-type, host and x-amz-date only.
        let amz = [
            ("content-type".to_string(), headers[0].1.clone()),
            ("host".to_string(), "iam.amazonaws.com".to_string()),
            ("x-amz-date".to_string(), "20150830T123600Z".to_string()),
        ];
        let canonical = canonical_request(&req, &amz);
        assert_eq!(
            hex(&Sha256::digest(canonical.as_bytes())),
            "f536975d06c0309214f805bb90ccff089219ecd68b2577efef23edd43b7e1a59"
        );
        let to_sign = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/iam/aws4_request\n{}",
            hex(&Sha256::digest(canonical.as_bytes()))
        );
        let key = signing_key(&creds.secret_access_key, "20150830", "us-east-1", "iam");
        assert_eq!(
            hex(&hmac(&key, to_sign.as_bytes())),
            "5d672d79c15b13162d9279b0855cfba6789a8edb4c82c400e06b5924a6f2b5d7"
        );
        // `sign` adds the payload hash header and signs it too.
        let out = sign(&req, &creds, "us-east-1", "iam", now);
        let auth = &out.iter().find(|(k, _)| k == "authorization").unwrap().1;
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/iam/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-content-sha256;x-amz-date, Signature="
            ),
            "{auth}"
        );
    }

    /// The request's own `x-amz-*` headers (S3's checksum, SQS's target) are signed, not
    /// handed back to be sent a second time.
    #[test]
    fn the_request_s_own_headers_are_signed_not_added_again() {
        let creds = Credentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: "secret".into(),
            session_token: Some("token".into()),
            expires: None,
        };
        let headers = [("x-amz-checksum-sha256".to_string(), "abc=".to_string())];
        let hash = payload_hash(b"<x/>");
        let req = Request {
            method: "PUT",
            path: "/b",
            query: &[],
            headers: &headers,
            host: "s3.amazonaws.com",
            payload_hash: &hash,
        };
        let out = sign(&req, &creds, "eu-west-1", "s3", Utc::now());
        let names: Vec<&str> = out.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "x-amz-date",
                "x-amz-content-sha256",
                "x-amz-security-token",
                "authorization"
            ]
        );
        assert!(out[3].1.contains(
            "SignedHeaders=host;x-amz-checksum-sha256;x-amz-content-sha256;x-amz-date;x-amz-security-token,"
        ));
    }

    #[test]
    fn keys_keep_their_slashes_and_values_are_encoded() {
        assert_eq!(
            uri_encode("AWSLogs/1/a b+c.json.gz", false),
            "AWSLogs/1/a%20b%2Bc.json.gz"
        );
        assert_eq!(uri_encode("a/b=c", true), "a%2Fb%3Dc");
    }
}
