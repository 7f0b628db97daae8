//! The row shape of an event: the indexed columns the store writes ([`NewEvent`]) and reads
//! back ([`EventRow`]), which the behaviour stage learns from too. Here rather than in the store,
//! so that what learns from events does not depend on where they are kept.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::Event;

/// The indexed columns of an event: what the store writes ([`NewEvent`]) and reads back
/// ([`EventRow`]), the one list of them.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct EventFields {
    pub id: String,
    pub time: DateTime<Utc>,
    pub provider: String,
    pub kind: String,
    pub account: Option<String>,
    pub region: Option<String>,
    /// The entity the event is about ([`Event::entity`]), what alerts and baselines key on.
    pub principal: String,
    pub actor_name: Option<String>,
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    pub user_agent: Option<String>,
    pub service: String,
    pub operation: String,
    pub read_only: Option<bool>,
    pub success: bool,
    pub error_code: Option<String>,
}

impl EventFields {
    /// An event's columns, copied.
    pub fn of(e: &Event) -> EventFields {
        EventFields {
            id: e.id.clone(),
            time: e.time,
            provider: e.provider.as_str().to_string(),
            kind: e.kind.as_str().to_string(),
            account: e.account.clone(),
            region: e.region.clone(),
            principal: e.entity(),
            actor_name: e.actor.name.clone(),
            access_key: e.actor.access_key_id.clone(),
            source_ip: e.source_ip.clone(),
            user_agent: e.user_agent.clone(),
            service: e.action.service.clone(),
            operation: e.action.operation.clone(),
            read_only: e.action.read_only,
            success: e.outcome.success,
            error_code: e.outcome.error_code.clone(),
        }
    }
}

/// One event as written: the indexed columns plus the original record's text, and what the
/// search finds it by ([`index_words`]).
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub fields: EventFields,
    pub raw: String,
    /// The autonomous system of the source address, when the address tables knew it.
    pub asn: Option<u32>,
    /// The country of the source address (two letters, upper case), when known.
    pub country: Option<String>,
    /// The search index's tokens for the event, separated by spaces ([`index_words`]).
    pub words: String,
}

impl std::ops::Deref for NewEvent {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.fields
    }
}

impl std::ops::DerefMut for NewEvent {
    fn deref_mut(&mut self) -> &mut EventFields {
        &mut self.fields
    }
}

impl NewEvent {
    /// Takes the event apart instead of copying it (the raw text moves when nothing else holds
    /// the record).
    pub fn from_owned(e: Event) -> NewEvent {
        let principal = e.entity();
        let words = index_words(&e, &principal);
        let asn = e.network.as_ref().and_then(|n| n.asn);
        let country = e
            .network
            .as_ref()
            .and_then(|n| n.country)
            .map(|c| c.as_str().to_string());
        let raw = match std::sync::Arc::try_unwrap(e.raw) {
            Ok(r) => r.into_text().into_string(),
            Err(shared) => shared.text().to_string(),
        };
        NewEvent {
            fields: EventFields {
                id: e.id,
                time: e.time,
                provider: e.provider.as_str().to_string(),
                kind: e.kind.as_str().to_string(),
                account: e.account,
                region: e.region,
                principal,
                actor_name: e.actor.name,
                access_key: e.actor.access_key_id,
                source_ip: e.source_ip,
                user_agent: e.user_agent,
                service: e.action.service,
                operation: e.action.operation,
                read_only: e.action.read_only,
                success: e.outcome.success,
                error_code: e.outcome.error_code,
            },
            raw,
            asn,
            country,
            words,
        }
    }

    /// An event's row, copied, with its search tokens.
    pub fn of(e: &Event) -> NewEvent {
        let fields = EventFields::of(e);
        let words = index_words(e, &fields.principal);
        NewEvent {
            raw: e.raw.text().to_string(),
            asn: e.network.as_ref().and_then(|n| n.asn),
            country: e
                .network
                .as_ref()
                .and_then(|n| n.country)
                .map(|c| c.as_str().to_string()),
            words,
            fields,
        }
    }
}

// ---- the search index's tokens ----------------------------------------------------------------
//
// An event is found by tokens: the words of every string (and number) in its original record,
// each pair of neighbouring words in one value (so that `sup-2` finds the value `sup-2`, not a
// record holding `sup` in one place and `2` in another), and keys for its principal and
// resources (the source address's AS and country are columns). Words are runs of letters and digits, lower case, at most
// [`MAX_WORD_CHARS`] characters; pairs and keys are written as `x` + a letter + 16 hex digits of
// their hash, so the tokens are plain words in any index (SQLite FTS5, a PostgreSQL array).
// Both the stored events and the searches are tokenized here, so they always agree.

/// Longer words are cut to this many characters (in the index and in searches alike).
pub const MAX_WORD_CHARS: usize = 64;
/// Tokens kept per event at most.
const MAX_TOKENS: usize = 1500;
/// Resource keys kept per event at most.
const MAX_RESOURCES: usize = 64;

/// What an index key stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IndexKey {
    /// The principal: its display string, id, ARN, role ARN, access key or name.
    Principal,
    /// A resource the event names.
    Resource,
}

impl IndexKey {
    fn letter(self) -> char {
        match self {
            IndexKey::Principal => 'p',
            IndexKey::Resource => 'r',
        }
    }
}

/// The token of a key: the same for any letter case of `value`.
pub fn key_token(key: IndexKey, value: &str) -> String {
    let h = crate::hash::fnv1a_extend(
        crate::hash::fnv1a(&[key.letter() as u8]),
        value.trim().to_lowercase().as_bytes(),
    );
    format!("x{}{h:016x}", key.letter())
}

fn pair_token(a: &str, b: &str) -> String {
    let h = crate::hash::fnv1a_extend(
        crate::hash::fnv1a_extend(crate::hash::fnv1a(b"b"), a.as_bytes()),
        format!(" {b}").as_bytes(),
    );
    format!("xb{h:016x}")
}

/// The words of a text: runs of letters and digits, lower case, cut at [`MAX_WORD_CHARS`].
pub fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            w.chars()
                .take(MAX_WORD_CHARS)
                .collect::<String>()
                .to_lowercase()
        })
        .collect()
}

/// The tokens a search for `text` must find all of: its words and each pair of neighbouring
/// words. Empty when the text has no letters or digits.
pub fn text_tokens(text: &str) -> Vec<String> {
    let words = words_of(text);
    let mut out: Vec<String> = Vec::with_capacity(words.len() * 2);
    for w in &words {
        if !out.contains(w) {
            out.push(w.clone());
        }
    }
    for p in words.windows(2) {
        let t = pair_token(&p[0], &p[1]);
        if !out.contains(&t) {
            out.push(t);
        }
    }
    out
}

/// Keys of the record whose values are not worth a word in the index (times are searched by
/// range, versions and categories are on every record).
const SKIPPED_KEYS: &[&str] = &[
    "eventTime",
    "eventVersion",
    "eventType",
    "eventCategory",
    "managementEvent",
    "readOnly",
    "time",
    "timestamp",
    "receiveTimestamp",
    "tlsDetails",
];

/// Parts of a record that are about who acted (the principal's keys come from the event), not
/// about what was acted on.
const IDENTITY_KEYS: &[&str] = &[
    "userIdentity",
    "identity",
    "authenticationInfo",
    "requestMetadata",
    "claims",
    "caller",
    "initiatedBy",
];

/// Keys ending like a resource's name, id or ARN that are not resources.
const NOT_RESOURCES: &[&str] = &[
    "eventid",
    "requestid",
    "sharedeventid",
    "recipientaccountid",
    "principalid",
    "accesskeyid",
    "accountid",
    "eventname",
    "eventsource",
    "operationname",
    "correlationid",
    "tenantid",
    "insertid",
    "vpcendpointid",
    "methodname",
    "servicename",
    "callerip",
    "sessionname",
    "rolesessionname",
    "clientrequestid",
    "activityid",
];

fn resource_key(key: &str) -> bool {
    let k = key.to_ascii_lowercase();
    let k = k.trim_end_matches('s');
    (k.ends_with("name") || k.ends_with("id") || k.ends_with("arn")) && !NOT_RESOURCES.contains(&k)
}

struct Tokens {
    seen: std::collections::HashSet<String>,
    out: String,
    resources: usize,
}

impl Tokens {
    fn push(&mut self, t: String) {
        if self.seen.len() < MAX_TOKENS && !self.seen.contains(&t) {
            if !self.out.is_empty() {
                self.out.push(' ');
            }
            self.out.push_str(&t);
            self.seen.insert(t);
        }
    }

    fn text(&mut self, text: &str) {
        let words = words_of(text);
        for p in words.windows(2) {
            self.push(pair_token(&p[0], &p[1]));
        }
        for w in words {
            self.push(w);
        }
    }

    fn key(&mut self, key: IndexKey, value: &str) {
        if !value.trim().is_empty() {
            self.push(key_token(key, value));
        }
    }

    fn resource(&mut self, value: &str) {
        if self.resources < MAX_RESOURCES && !value.trim().is_empty() && value.len() <= 1024 {
            self.resources += 1;
            self.key(IndexKey::Resource, value);
        }
    }

    /// Words of every value; resource keys for values under resource-like keys and for ARNs,
    /// outside the identity parts.
    fn walk(&mut self, key: Option<&str>, v: &serde_json::Value, identity: bool, depth: usize) {
        use serde_json::Value;
        if depth > 32 || self.seen.len() >= MAX_TOKENS {
            return;
        }
        match v {
            Value::String(s) => {
                self.text(s);
                if !identity && (s.starts_with("arn:") || key.is_some_and(resource_key)) {
                    self.resource(s);
                }
            }
            Value::Number(n) => self.text(&n.to_string()),
            Value::Array(items) => {
                for item in items {
                    self.walk(key, item, identity, depth + 1);
                }
            }
            Value::Object(map) => {
                for (k, item) in map {
                    if SKIPPED_KEYS.contains(&k.as_str()) {
                        continue;
                    }
                    let identity = identity || IDENTITY_KEYS.contains(&k.as_str());
                    self.walk(Some(k), item, identity, depth + 1);
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

/// The search tokens of an event (see the section's comment), separated by spaces.
pub fn index_words(e: &Event, principal: &str) -> String {
    let a = &e.actor;
    let mut keys: Vec<(IndexKey, String)> = [
        Some(principal),
        a.id.as_deref(),
        a.role_arn.as_deref(),
        a.access_key_id.as_deref(),
        a.name.as_deref(),
    ]
    .into_iter()
    .flatten()
    .map(|p| (IndexKey::Principal, p.to_string()))
    .collect();
    keys.extend(
        e.resources
            .iter()
            .map(|r| (IndexKey::Resource, r.id.clone())),
    );
    index_record(&keys, e.raw.to_value())
}

/// The search tokens of an original record with the given keys (see the section's comment).
pub fn index_record(keys: &[(IndexKey, String)], record: &serde_json::Value) -> String {
    let mut t = Tokens {
        seen: std::collections::HashSet::with_capacity(256),
        out: String::with_capacity(4096),
        resources: 0,
    };
    for (k, v) in keys {
        match k {
            IndexKey::Resource => t.resource(v),
            IndexKey::Principal => t.key(*k, v),
        }
    }
    t.walk(None, record, false, 0);
    t.out
}

/// One stored event.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, schemars::JsonSchema)]
pub struct EventRow {
    #[serde(flatten)]
    pub fields: EventFields,
    pub ingested: DateTime<Utc>,
    /// The autonomous system of the source address, as known when the event was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub asn: Option<u32>,
    /// The country of the source address (two letters), as known when the event was stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
    /// The provider's original record, when asked for.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub raw: Option<serde_json::Value>,
}

impl std::ops::Deref for EventRow {
    type Target = EventFields;
    fn deref(&self) -> &EventFields {
        &self.fields
    }
}

impl std::ops::DerefMut for EventRow {
    fn deref_mut(&mut self) -> &mut EventFields {
        &mut self.fields
    }
}

impl EventRow {
    /// Cuts every text field longer than `max` characters (see
    /// [`crate::text::clip`]) and answers the names of the fields it cut. The
    /// original record (`raw`) is left whole: that is where the full values are.
    pub fn clip_fields(&mut self, max: usize) -> Vec<&'static str> {
        use crate::text::clip;
        let f = &mut self.fields;
        let mut cut = Vec::new();
        let mut one = |name: &'static str, v: &mut String| {
            if let std::borrow::Cow::Owned(c) = clip(v, max) {
                *v = c;
                cut.push(name);
            }
        };
        one("id", &mut f.id);
        one("principal", &mut f.principal);
        one("service", &mut f.service);
        one("operation", &mut f.operation);
        for (name, v) in [
            ("account", &mut f.account),
            ("region", &mut f.region),
            ("actor_name", &mut f.actor_name),
            ("access_key", &mut f.access_key),
            ("source_ip", &mut f.source_ip),
            ("user_agent", &mut f.user_agent),
            ("error_code", &mut f.error_code),
        ] {
            if let Some(v) = v {
                one(name, v);
            }
        }
        cut
    }

    /// A copy without the original record.
    pub fn without_raw(&self) -> EventRow {
        EventRow {
            fields: self.fields.clone(),
            ingested: self.ingested,
            asn: self.asn,
            country: self.country.clone(),
            raw: None,
        }
    }

    /// The row of an event that is read but not stored (offline hunting): no original record,
    /// and `ingested` is when it was read.
    pub fn unstored(e: &Event) -> EventRow {
        EventRow {
            fields: EventFields::of(e),
            ingested: Utc::now(),
            asn: e.network.as_ref().and_then(|n| n.asn),
            country: e
                .network
                .as_ref()
                .and_then(|n| n.country)
                .map(|c| c.as_str().to_string()),
            raw: None,
        }
    }
}

#[cfg(test)]
mod index_tests {
    use super::*;

    fn tokens(keys: &[(IndexKey, String)], record: &str) -> Vec<String> {
        index_record(keys, &serde_json::from_str(record).unwrap())
            .split(' ')
            .map(str::to_string)
            .collect()
    }

    #[test]
    fn a_record_is_found_by_its_words_phrases_and_keys() {
        let record = r#"{"eventTime":"2026-11-20T10:00:00Z","eventID":"sup-2",
            "userIdentity":{"arn":"arn:aws:iam::111122223333:user/ops","userName":"ops"},
            "userAgent":"aws-cli/2.15.30","requestParameters":{"userName":"Mallory",
            "policyArn":"arn:aws:iam::aws:policy/AdministratorAccess","count":3000}}"#;
        let t = tokens(
            &[(
                IndexKey::Principal,
                "arn:aws:iam::111122223333:user/ops".into(),
            )],
            record,
        );
        let has_all = |q: &str| text_tokens(q).iter().all(|x| t.contains(x));
        assert!(has_all("sup-2"));
        assert!(has_all("SUP 2"), "case and separators do not matter");
        assert!(!has_all("sup-1"));
        assert!(
            !has_all("2 sup"),
            "words in another order are another phrase"
        );
        assert!(has_all("mallory"));
        assert!(has_all("3000"));
        assert!(!has_all("2026"), "times are searched by range, not words");
        assert!(t.contains(&key_token(IndexKey::Resource, "mallory")));
        assert!(t.contains(&key_token(
            IndexKey::Resource,
            "arn:aws:iam::aws:policy/AdministratorAccess"
        )));
        // The principal is a key of its own, not a resource of its own event.
        assert!(t.contains(&key_token(
            IndexKey::Principal,
            "ARN:aws:iam::111122223333:user/ops"
        )));
        assert!(!t.contains(&key_token(IndexKey::Resource, "ops")));
        assert!(text_tokens("::").is_empty());
    }
}
