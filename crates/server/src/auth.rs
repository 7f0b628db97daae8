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
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
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
    /// The user's token secret ([`cloudsentinel_store::UserRecord::token_secret`]): ties the
    /// token to this user and no later one, even if an id or a name is used again.
    #[serde(default)]
    pub sid: String,
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
    /// after logout or a password or role change (they bump `version`), and never valid for
    /// another user (the user's token secret is part of it).
    pub fn csrf(&self, claims: &Claims) -> String {
        let mut mac = self.mac();
        mac.update(format!("csrf:{}:{}:{}", claims.uid, claims.sid, claims.ver).as_bytes());
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

/// Whether a verified token's claims still stand for `user`: the same user (id, name and token
/// secret), enabled, and not revoked since (token version).
pub fn claims_match(claims: &Claims, user: &cloudsentinel_store::UserRecord) -> bool {
    !user.disabled
        && user.id == claims.uid
        && user.username == claims.sub
        && user.token_version == claims.ver
        && !user.token_secret.is_empty()
        && user.token_secret == claims.sid
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

/// Passwords that guessing lists try first (the most common ones of at least
/// [`MIN_PASSWORD`] characters, and a few shapes specific to this product). Compared without
/// case and with spaces removed.
const COMMON_PASSWORDS: &[&str] = &[
    "123456789012",
    "1234567890123",
    "12345678901234",
    "123456789012345",
    "1234567890qwerty",
    "qwertyuiop123",
    "qwertyuiopasdf",
    "qwertyuiopasdfghjkl",
    "qwerty123456",
    "qwerty12345678",
    "1q2w3e4r5t6y",
    "1q2w3e4r5t6y7u",
    "1qaz2wsx3edc",
    "1qaz2wsx3edc4rfv",
    "zaq12wsxcde3",
    "zxcvbnm123456",
    "asdfghjkl123",
    "abcdefghijkl",
    "abcdefghijklmnop",
    "abc123abc123",
    "password1234",
    "password12345",
    "password123456",
    "password123!",
    "passw0rd1234",
    "p@ssw0rd1234",
    "p@ssword1234",
    "passwordpassword",
    "mypassword123",
    "changeme1234",
    "changemenow!",
    "letmein12345",
    "letmeinletmein",
    "welcome12345",
    "welcome123456",
    "iloveyou1234",
    "iloveyou123456",
    "sunshine1234",
    "princess1234",
    "football1234",
    "baseball1234",
    "superman1234",
    "starwars1234",
    "dragon123456",
    "monkey123456",
    "trustno1trustno1",
    "administrator",
    "administrator1",
    "administrator123",
    "admin1234567",
    "adminadmin123",
    "adminpassword",
    "rootpassword",
    "toortoortoor",
    "secretpassword",
    "topsecret123",
    "correcthorsebatterystaple",
    "thequickbrownfox",
    "aaaaaaaaaaaa",
    "111111111111",
    "000000000000",
    "121212121212",
    "123123123123",
    "987654321098",
    "cloudsentinel",
    "cloudsentinel1",
    "cloudsentinel123",
    "sentinel1234",
    "security1234",
    "summer2024!!",
    "winter2024!!",
    "spring2025!!",
    "autumn2025!!",
    "summer2026!!",
    "winter2026!!",
    "welcome2024!",
    "welcome2025!",
    "welcome2026!",
    "password2024",
    "password2025",
    "password2026",
];

/// Checks a new password: length, not blank, not (a form of) the user name, not a password that
/// guessing lists try first, not one character over and over.
pub fn check_password_policy(password: &str, username: &str) -> Result<(), String> {
    if password.chars().count() < MIN_PASSWORD {
        return Err(format!(
            "password must have at least {MIN_PASSWORD} characters"
        ));
    }
    if password.len() > 1024 {
        return Err("password is longer than 1024 bytes".into());
    }
    if password.trim().is_empty() {
        return Err("password must not be only spaces".into());
    }
    let folded: String = password
        .chars()
        .filter(|c| !c.is_whitespace())
        .flat_map(char::to_lowercase)
        .collect();
    let name: String = username.chars().flat_map(char::to_lowercase).collect();
    if !name.is_empty() && folded.contains(&name) && folded.len() < name.len() + 6 {
        return Err("password must not be the user name".into());
    }
    let mut distinct: Vec<char> = folded.chars().collect();
    distinct.sort_unstable();
    distinct.dedup();
    if distinct.len() < 4 {
        return Err("password must have more than three different characters".into());
    }
    if COMMON_PASSWORDS.contains(&folded.as_str()) {
        return Err("password is on the list of common passwords".into());
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

/// What the login limiter says about one attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Gate {
    /// Go ahead.
    Open,
    /// Go ahead after this long (the user name has had many failures lately).
    Wait(Duration),
    /// Refused for now: try again in this many seconds.
    Refuse(u64),
}

/// Most a login attempt is made to wait before it is refused instead.
const MAX_LOGIN_WAIT: Duration = Duration::from_secs(60);

/// Longest single delay for a user name under attack.
const MAX_USER_DELAY: Duration = Duration::from_secs(30);

/// Limits password guessing without letting an attacker lock a user out:
/// - an **address** with `max` failures in the window (against any user names) is refused until
///   the oldest of them leaves the window: it stops one source's guessing, not anyone else's;
/// - a **user name** with `max` failures in the window (from any addresses) is not refused but
///   slowed: each attempt for it waits 1, 2, 4, ... up to 30 seconds, one after another, so
///   that guesses spread over many addresses stay slow while the owner, signing in from an
///   address of their own, still gets in after a short wait. A correct password clears the
///   user name's failures (never an address's: one valid account must not buy more guesses).
pub struct LoginLimiter {
    max: u32,
    window: Duration,
    state: Mutex<LimiterState>,
}

#[derive(Default)]
struct LimiterState {
    failures: HashMap<String, VecDeque<Instant>>,
    /// Per user name: when the next attempt may run.
    next_slot: HashMap<String, Instant>,
}

impl LimiterState {
    fn recent(&mut self, key: &str, now: Instant, window: Duration) -> Option<&VecDeque<Instant>> {
        let q = self.failures.get_mut(key)?;
        while q.front().is_some_and(|t| now.duration_since(*t) > window) {
            q.pop_front();
        }
        Some(q)
    }
}

impl LoginLimiter {
    pub fn new(max: u32, window: Duration) -> LoginLimiter {
        LoginLimiter {
            max: max.max(1),
            window,
            state: Mutex::new(LimiterState::default()),
        }
    }

    /// Whether an attempt for `user` from `addr` may run now.
    pub fn gate(&self, addr: &str, user: &str) -> Gate {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        // Keep the maps small: drop what has left the window.
        if st.failures.len() > 10_000 {
            let window = self.window;
            st.failures
                .retain(|_, q| q.back().is_some_and(|t| now.duration_since(*t) <= window));
            st.next_slot.retain(|_, t| *t > now);
        }
        let window = self.window;
        if let Some(q) = st.recent(&format!("ip:{addr}"), now, window)
            && q.len() as u32 >= self.max
        {
            let oldest = *q.front().expect("non-empty");
            let secs = window.saturating_sub(now.duration_since(oldest)).as_secs() + 1;
            return Gate::Refuse(secs);
        }
        let user_key = format!("user:{user}");
        let failures = st
            .recent(&user_key, now, window)
            .map_or(0, |q| q.len() as u32);
        if failures < self.max {
            return Gate::Open;
        }
        let doublings = (failures - self.max).min(16);
        let delay = Duration::from_secs(1u64 << doublings).min(MAX_USER_DELAY);
        let slot = st.next_slot.get(&user_key).copied().unwrap_or(now).max(now);
        let wait = slot + delay - now;
        if wait > MAX_LOGIN_WAIT {
            return Gate::Refuse((slot - now).as_secs() + 1);
        }
        st.next_slot.insert(user_key, slot + delay);
        Gate::Wait(wait)
    }

    /// A failed attempt for `user` from `addr`.
    pub fn failed(&self, addr: &str, user: &str) {
        let now = Instant::now();
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        for key in [format!("ip:{addr}"), format!("user:{user}")] {
            st.failures.entry(key).or_default().push_back(now);
        }
    }

    /// A correct password for `user`: its failures and delays are cleared.
    pub fn succeeded(&self, user: &str) {
        let key = format!("user:{user}");
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.failures.remove(&key);
        st.next_slot.remove(&key);
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
            sid: "s1".into(),
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

    /// Guards the finding that only the length was checked.
    #[test]
    fn password_policy_refuses_blank_the_user_name_and_common_passwords() {
        for (pw, why) in [
            ("short", "at least 12"),
            ("aaaaaaaaaaaa", "different characters"),
            ("            ", "only spaces"),
            ("\t\t\t\t\t\t\t\t\t\t\t\t", "only spaces"),
            ("analyst-anna", "user name"),
            ("ANALYST-ANNA1", "user name"),
            ("Password1234", "common"),
            ("correct horse battery staple", "common"),
            ("abababababab", "different characters"),
        ] {
            let err = check_password_policy(pw, "analyst-anna").unwrap_err();
            assert!(err.contains(why), "{pw:?}: {err}");
        }
        check_password_policy("plum-cactus-orbit-42", "analyst-anna").unwrap();
        check_password_policy("analyst-anna travels to lisbon", "analyst-anna")
            .expect("a long passphrase that merely contains the name is fine");
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

    /// Guards "the login limiter can lock anyone out": an address that guesses is refused, the
    /// user name it guessed at is only slowed, and its owner gets in from another address.
    #[test]
    fn limiter_refuses_the_guessing_address_and_only_slows_the_user() {
        let l = LoginLimiter::new(3, Duration::from_secs(60));
        for _ in 0..3 {
            assert_eq!(l.gate("6.6.6.6", "ann"), Gate::Open);
            l.failed("6.6.6.6", "ann");
        }
        assert!(matches!(l.gate("6.6.6.6", "ann"), Gate::Refuse(s) if s > 0 && s <= 61));
        assert!(
            matches!(l.gate("6.6.6.6", "bob"), Gate::Refuse(_)),
            "the address is refused for every name"
        );
        // The owner, from a fresh address: let through after a growing, queued delay.
        assert_eq!(
            l.gate("10.0.0.5", "ann"),
            Gate::Wait(Duration::from_secs(1))
        );
        // The second waits for the first's slot, then its own (a moment has passed since).
        assert!(
            matches!(l.gate("10.0.0.6", "ann"), Gate::Wait(d) if d > Duration::from_millis(1900) && d <= Duration::from_secs(2)),
            "attempts for one name queue one after another"
        );
        l.failed("10.0.0.7", "ann");
        assert!(
            matches!(l.gate("10.0.0.8", "ann"), Gate::Wait(d) if d >= Duration::from_millis(3900))
        );
        // Other users are untouched; a correct password clears the name's delay.
        assert_eq!(l.gate("10.0.0.5", "bob"), Gate::Open);
        l.succeeded("ann");
        assert_eq!(l.gate("10.0.0.5", "ann"), Gate::Open);
        assert!(
            matches!(l.gate("6.6.6.6", "ann"), Gate::Refuse(_)),
            "a success does not clear the guessing address"
        );
        // Delays are capped; past the longest wait, attempts are refused for a while instead.
        let l = LoginLimiter::new(1, Duration::from_secs(600));
        for i in 0..40 {
            l.failed(&format!("10.1.0.{i}"), "carol");
        }
        let mut refused = false;
        for i in 0..10 {
            match l.gate(&format!("10.2.0.{i}"), "carol") {
                Gate::Wait(d) => assert!(d <= MAX_LOGIN_WAIT, "{d:?}"),
                Gate::Refuse(_) => refused = true,
                Gate::Open => panic!("still slowed"),
            }
        }
        assert!(refused);
    }
}
