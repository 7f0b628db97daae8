//! Who is calling and what they may do: roles, Argon2id password hashes, HS256 JWTs, API keys
//! and the login rate limiter.
//!
//! Tokens are signed with a key kept in the data directory (created on first start, mode 0600).
//! A token carries the user's token version; logging out, changing the password or the role
//! bumps it, which invalidates every token issued before.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// A user's role. Each includes what the ones before it may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads alerts, incidents, events and dashboards.
    Viewer,
    /// Also triages: status, assignee, comments, feedback, suppressions.
    Analyst,
    /// Also runs response actions.
    Responder,
    /// Also manages users, API keys and reads the audit log.
    Admin,
}

impl Role {
    pub const ALL: [Role; 4] = [Role::Viewer, Role::Analyst, Role::Responder, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Analyst => "analyst",
            Role::Responder => "responder",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.as_str() == s)
    }
}

/// What a route requires of its caller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Anyone, without credentials.
    Public,
    /// A signed-in user with at least this role.
    Role(Role),
    /// An API key with the `ingest` role, or an admin.
    Ingest,
}

impl Need {
    pub fn describe(self) -> &'static str {
        match self {
            Need::Public => "public",
            Need::Role(r) => r.as_str(),
            Need::Ingest => "ingest",
        }
    }
}

/// The caller of a request, once authenticated.
#[derive(Debug, Clone)]
pub struct Caller {
    /// User name, or `apikey:<name>`.
    pub name: String,
    pub user_id: Option<i64>,
    pub api_key_id: Option<i64>,
    /// `None` for API keys.
    pub role: Option<Role>,
    pub source_ip: Option<String>,
}

impl Caller {
    pub fn may(&self, need: Need) -> bool {
        match need {
            Need::Public => true,
            Need::Role(r) => self.role.is_some_and(|mine| mine >= r),
            Need::Ingest => self.api_key_id.is_some() || self.role == Some(Role::Admin),
        }
    }
}

/// Claims in our tokens.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Claims {
    pub sub: String,
    pub uid: i64,
    pub role: Role,
    /// The user's token version when issued.
    pub ver: i64,
    /// `access` or `refresh`.
    pub typ: String,
    pub iat: i64,
    pub exp: i64,
}

type HmacSha256 = Hmac<Sha256>;

/// Why a token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("malformed token")]
    Malformed,
    #[error("bad token signature")]
    Signature,
    #[error("token expired")]
    Expired,
    #[error("wrong token type")]
    WrongType,
}

const HEADER: &str = r#"{"alg":"HS256","typ":"JWT"}"#;

/// Signs and checks HS256 JSON Web Tokens.
pub struct Tokens {
    key: Vec<u8>,
}

impl Tokens {
    pub fn new(key: Vec<u8>) -> Tokens {
        Tokens { key }
    }

    fn mac(&self) -> HmacSha256 {
        HmacSha256::new_from_slice(&self.key).expect("HMAC takes keys of any length")
    }

    pub fn sign(&self, claims: &Claims) -> String {
        let head = B64.encode(HEADER);
        let body = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
        let mut mac = self.mac();
        mac.update(head.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        let sig = B64.encode(mac.finalize().into_bytes());
        format!("{head}.{body}.{sig}")
    }

    /// The dashboard's form token for a user's sessions: stable across token refreshes, void
    /// after logout or a password or role change (they bump `version`).
    pub fn csrf(&self, uid: i64, version: i64) -> String {
        let mut mac = self.mac();
        mac.update(format!("csrf:{uid}:{version}").as_bytes());
        B64.encode(&mac.finalize().into_bytes()[..18])
    }

    /// Checks signature, algorithm, type and expiry at `now` (unix seconds).
    pub fn verify(&self, token: &str, typ: &str, now: i64) -> Result<Claims, TokenError> {
        let mut parts = token.split('.');
        let (Some(head), Some(body), Some(sig), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(TokenError::Malformed);
        };
        let sig = B64.decode(sig).map_err(|_| TokenError::Malformed)?;
        let mut mac = self.mac();
        mac.update(head.as_bytes());
        mac.update(b".");
        mac.update(body.as_bytes());
        // Constant-time comparison.
        mac.verify_slice(&sig).map_err(|_| TokenError::Signature)?;
        let header: serde_json::Value =
            serde_json::from_slice(&B64.decode(head).map_err(|_| TokenError::Malformed)?)
                .map_err(|_| TokenError::Malformed)?;
        if header.get("alg").and_then(|a| a.as_str()) != Some("HS256") {
            return Err(TokenError::Malformed);
        }
        let claims: Claims =
            serde_json::from_slice(&B64.decode(body).map_err(|_| TokenError::Malformed)?)
                .map_err(|_| TokenError::Malformed)?;
        if claims.typ != typ {
            return Err(TokenError::WrongType);
        }
        if claims.exp <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Hashes a password with Argon2id and a random salt (PHC string).
pub fn hash_password(password: &str) -> anyhow::Result<String> {
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    Ok(Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2: {e}"))?
        .to_string())
}

/// Whether `password` matches the stored PHC string.
pub fn verify_password(password: &str, phc: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok(),
        Err(_) => false,
    }
}

/// A hash to verify against when the user does not exist, so that the answer takes as long as
/// for a real user and does not tell which names exist.
pub fn dummy_hash() -> &'static str {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default())
}

/// Passwords must be at least this long.
pub const MIN_PASSWORD: usize = 12;

pub fn check_password_policy(password: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "password must have at least {MIN_PASSWORD} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("password is longer than 1024 bytes".into());
    }
    Ok(())
}

/// `n` random bytes, URL-safe base64.
pub fn random_token(n: usize) -> String {
    let mut b = vec![0u8; n];
    getrandom::fill(&mut b).expect("the OS has randomness");
    B64.encode(b)
}

/// A new API key: what the client keeps, the prefix shown in lists, and the hash we store.
pub fn new_api_key() -> (String, String, String) {
    let key = format!("csk_{}", random_token(32));
    let prefix = key[..12].to_string();
    let hash = api_key_hash(&key);
    (key, prefix, hash)
}

pub fn api_key_hash(key: &str) -> String {
    hex(&Sha256::digest(key.as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// Counts failed logins per key (address, user name) in a sliding window.
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    failures: Mutex<HashMap<String, VecDeque<Instant>>>,
}

impl LoginLimiter {
    pub fn new(max: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max,
            window,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds until a new attempt is allowed for any of `keys`, or `None` when allowed now.
    pub fn blocked(&self, keys: &[String]) -> Option<u64> {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        let mut wait = None;
        for k in keys {
            if let Some(q) = map.get_mut(k) {
                while q
                    .front()
                    .is_some_and(|t| now.duration_since(*t) > self.window)
                {
                    q.pop_front();
                }
                if q.len() as u32 >= self.max {
                    let oldest = *q.front().expect("non-empty");
                    let secs = self
                        .window
                        .saturating_sub(now.duration_since(oldest))
                        .as_secs()
                        + 1;
                    wait = Some(wait.map_or(secs, |w: u64| w.max(secs)));
                }
            }
        }
        // Keep the map small: drop keys with nothing left in the window.
        if map.len() > 10_000 {
            map.retain(|_, q| {
                q.back()
                    .is_some_and(|t| now.duration_since(*t) <= self.window)
            });
        }
        wait
    }

    pub fn failed(&self, keys: &[String]) {
        let now = Instant::now();
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        for k in keys {
            map.entry(k.clone()).or_default().push_back(now);
        }
    }

    pub fn succeeded(&self, key: &str) {
        let mut map = self.failures.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(exp: i64, typ: &str) -> Claims {
        Claims {
            sub: "ann".into(),
            uid: 1,
            role: Role::Analyst,
            ver: 0,
            typ: typ.into(),
            iat: 0,
            exp,
        }
    }

    #[test]
    fn tokens_round_trip_and_reject_tampering() {
        let t = Tokens::new(b"k1".to_vec());
        let tok = t.sign(&claims(100, "access"));
        assert_eq!(t.verify(&tok, "access", 50).unwrap(), claims(100, "access"));
        assert_eq!(t.verify(&tok, "access", 100), Err(TokenError::Expired));
        assert_eq!(t.verify(&tok, "refresh", 50), Err(TokenError::WrongType));
        assert_eq!(
            Tokens::new(b"k2".to_vec()).verify(&tok, "access", 50),
            Err(TokenError::Signature)
        );
        // A payload claiming admin with the old signature.
        let mut parts: Vec<&str> = tok.split('.').collect();
        let mut forged = claims(100, "access");
        forged.role = Role::Admin;
        let body = B64.encode(serde_json::to_vec(&forged).unwrap());
        parts[1] = &body;
        assert_eq!(
            t.verify(&parts.join("."), "access", 50),
            Err(TokenError::Signature)
        );
        // alg=none is not accepted even with an empty signature.
        let none = format!(
            "{}.{}.",
            B64.encode(r#"{"alg":"none"}"#),
            B64.encode(serde_json::to_vec(&forged).unwrap())
        );
        assert!(t.verify(&none, "access", 50).is_err());
    }

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"), "{h}");
        assert!(verify_password("correct horse battery", &h));
        assert!(!verify_password("wrong horse battery", &h));
        assert!(!verify_password("x", "not a hash"));
    }

    #[test]
    fn roles_include_lower_ones_and_api_keys_only_ingest() {
        let analyst = Caller {
            name: "a".into(),
            user_id: Some(1),
            api_key_id: None,
            role: Some(Role::Analyst),
            source_ip: None,
        };
        assert!(analyst.may(Need::Role(Role::Viewer)));
        assert!(!analyst.may(Need::Role(Role::Responder)));
        assert!(!analyst.may(Need::Ingest));
        let key = Caller {
            name: "apikey:x".into(),
            user_id: None,
            api_key_id: Some(1),
            role: None,
            source_ip: None,
        };
        assert!(key.may(Need::Ingest));
        assert!(!key.may(Need::Role(Role::Viewer)));
    }

    #[test]
    fn limiter_blocks_after_max_failures() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        let keys = vec!["ip:1".to_string()];
        for _ in 0..3 {
            assert_eq!(l.blocked(&keys), None);
            l.failed(&keys);
        }
        assert!(l.blocked(&keys).is_some());
        l.succeeded("ip:1");
        assert_eq!(l.blocked(&keys), None);
    }
}
