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
    /// A value searched only whole ([`whole_value`]).
    Value,
}

impl IndexKey {
    fn letter(self) -> char {
        match self {
            IndexKey::Principal => 'p',
            IndexKey::Resource => 'r',
            IndexKey::Value => 'v',
        }
    }
}

/// The token of a key: the same for any letter case of `value`.
pub fn key_token(key: IndexKey, value: &str) -> String {
    let v = value.trim();
    let start = crate::hash::fnv1a(&[key.letter() as u8]);
    let h = if v.is_ascii() {
        v.bytes().fold(start, |h, b| {
            crate::hash::fnv1a_extend(h, &[b.to_ascii_lowercase()])
        })
    } else {
        crate::hash::fnv1a_extend(start, v.to_lowercase().as_bytes())
    };
    let mut t = [0u8; 18];
    t[0] = b'x';
    t[1] = key.letter() as u8;
    hex16(h, &mut t[2..]);
    String::from_utf8_lossy(&t).into_owned()
}

fn pair_hash(a: &str, b: &str) -> u64 {
    let h = crate::hash::fnv1a_extend(crate::hash::fnv1a(b"b"), a.as_bytes());
    crate::hash::fnv1a_extend(crate::hash::fnv1a_extend(h, b" "), b.as_bytes())
}

fn pair_token(a: &str, b: &str) -> String {
    format!("xb{:016x}", pair_hash(a, b))
}

/// The words of a text: runs of letters and digits, lower case, cut at [`MAX_WORD_CHARS`].
pub fn words_of(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| {
            let mut word = String::new();
            lower_into(w, &mut word);
            word
        })
        .collect()
}

/// Whether a value is indexed (and searched) only whole, as one key: a UUID or an IP address.
/// Their parts alone find nothing useful, and each part of a unique id would be one more term
/// for the index to keep (the event and request ids alone were a sixth of all tokens and
/// nearly half the distinct ones, and FTS5's cost grows with both).
pub fn whole_value(s: &str) -> bool {
    let b = s.as_bytes();
    let uuid = b.len() == 36
        && b.iter().enumerate().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => *c == b'-',
            _ => c.is_ascii_hexdigit(),
        });
    uuid || (s.len() <= 45
        && s.contains(['.', ':'])
        && s.bytes().any(|c| c.is_ascii_alphanumeric())
        && s.parse::<std::net::IpAddr>().is_ok())
}

/// The tokens a search for `text` must find all of: its words and each pair of neighbouring
/// words, or its key when it is a [`whole_value`]. Empty when the text has no letters or digits.
pub fn text_tokens(text: &str) -> Vec<String> {
    if whole_value(text.trim()) {
        return vec![key_token(IndexKey::Value, text)];
    }
    phrase_tokens(text)
}

/// The words of `text` and each pair of neighbouring words, [`whole_value`] or not (how events
/// stored before whole values were keys are found by one).
pub fn phrase_tokens(text: &str) -> Vec<String> {
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
    // More times: a session's start (CloudTrail), Azure's and Entra ID's event times.
    "creationDate",
    "eventTimestamp",
    "submissionTimestamp",
    "createdDateTime",
    "activityDateTime",
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

/// The tokens of one event as they are found: deduplicated (by their hash), in `out`
/// separated by spaces.
/// The tokens seen, by hash.
type Seen = std::collections::HashSet<u64, std::hash::BuildHasherDefault<SeenHasher>>;

/// Writes `h` as 16 lower-case hex digits into `out`.
fn hex16(h: u64, out: &mut [u8]) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, o) in out.iter_mut().take(16).enumerate() {
        *o = HEX[((h >> (60 - 4 * i)) & 0xf) as usize];
    }
}

struct Tokens {
    seen: Seen,
    out: String,
    resources: usize,
    /// The current word and the one before it in the same value, lower case.
    word: String,
    prev: String,
}

/// The set of seen tokens holds their FNV-1a hashes; this spreads them over the table's bits.
#[derive(Default)]
struct SeenHasher(u64);

impl std::hash::Hasher for SeenHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        self.0 = crate::hash::fnv1a_extend(self.0, bytes);
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = (n ^ (n >> 29)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    }
}

/// Lower-cases `w` cut at [`MAX_WORD_CHARS`] into `out` (as [`words_of`] does).
fn lower_into(w: &str, out: &mut String) {
    out.clear();
    if w.is_ascii() {
        let cut = &w[..w.len().min(MAX_WORD_CHARS)];
        out.extend(cut.bytes().map(|b| b.to_ascii_lowercase() as char));
    } else {
        let cut: String = w.chars().take(MAX_WORD_CHARS).collect();
        out.push_str(&cut.to_lowercase());
    }
}

impl Tokens {
    fn new() -> Tokens {
        Tokens {
            seen: Seen::with_capacity_and_hasher(512, Default::default()),
            out: String::with_capacity(4096),
            resources: 0,
            word: String::new(),
            prev: String::new(),
        }
    }

    fn full(&self) -> bool {
        self.seen.len() >= MAX_TOKENS
    }

    /// Adds token `t` unless seen; `h` identifies it (its hash).
    fn push_to(seen: &mut Seen, out: &mut String, h: u64, t: &str) {
        if seen.len() < MAX_TOKENS && seen.insert(h) {
            if !out.is_empty() {
                out.push(' ');
            }
            out.push_str(t);
        }
    }

    fn push(&mut self, t: &str) {
        Self::push_to(
            &mut self.seen,
            &mut self.out,
            crate::hash::fnv1a(t.as_bytes()),
            t,
        );
    }

    /// Each word of `text` (as [`words_of`] splits it) and each pair of neighbouring words.
    fn text(&mut self, text: &str) {
        self.prev.clear();
        for w in text
            .split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
        {
            lower_into(w, &mut self.word);
            self.next_word();
        }
    }

    /// Adds `word` and its pair with `prev`, then makes it `prev`.
    fn next_word(&mut self) {
        if !self.prev.is_empty() {
            let h = pair_hash(&self.prev, &self.word);
            let mut t = [0u8; 18];
            t[0] = b'x';
            t[1] = b'b';
            hex16(h, &mut t[2..]);
            // The pair's own hash tells pairs apart (with a tag, so that it cannot be a word's).
            let id = h ^ 0x9e37_79b9_7f4a_7c15;
            Self::push_to(
                &mut self.seen,
                &mut self.out,
                id,
                std::str::from_utf8(&t).unwrap_or_default(),
            );
        }
        let h = crate::hash::fnv1a(self.word.as_bytes());
        Self::push_to(&mut self.seen, &mut self.out, h, &self.word);
        std::mem::swap(&mut self.prev, &mut self.word);
    }

    fn key(&mut self, key: IndexKey, value: &str) {
        if !value.trim().is_empty() {
            self.push(&key_token(key, value));
        }
    }

    fn resource(&mut self, value: &str) {
        if self.resources < MAX_RESOURCES && !value.trim().is_empty() && value.len() <= 1024 {
            self.resources += 1;
            self.key(IndexKey::Resource, value);
        }
    }

    /// A string value under `key`: its words, and a resource key when it is one.
    fn string(&mut self, key: Option<&str>, s: &str, identity: bool) {
        if whole_value(s) {
            self.key(IndexKey::Value, s);
        } else {
            self.text(s);
        }
        if !identity && (s.starts_with("arn:") || key.is_some_and(resource_key)) {
            self.resource(s);
        }
    }
}

/// Walks a record (JSON text or a `Value`, without building a tree of the text) giving
/// [`Tokens`] the words of every value, and resource keys for values under resource-like keys
/// and for ARNs, outside the identity parts.
struct Walk<'a, 't> {
    t: &'t mut Tokens,
    key: Option<&'a str>,
    identity: bool,
    depth: usize,
}

impl<'de> serde::de::DeserializeSeed<'de> for Walk<'_, '_> {
    type Value = ();
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        if self.depth > 32 || self.t.full() {
            return serde::de::IgnoredAny::deserialize(d).map(|_| ());
        }
        d.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Walk<'_, '_> {
    type Value = ();
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_str<E>(self, s: &str) -> Result<(), E> {
        self.t.string(self.key, s, self.identity);
        Ok(())
    }
    fn visit_u64<E>(self, n: u64) -> Result<(), E> {
        self.t.text(&n.to_string());
        Ok(())
    }
    fn visit_i64<E>(self, n: i64) -> Result<(), E> {
        self.t.text(&n.to_string());
        Ok(())
    }
    fn visit_f64<E>(self, n: f64) -> Result<(), E> {
        if let Some(n) = serde_json::Number::from_f64(n) {
            self.t.text(&n.to_string());
        }
        Ok(())
    }
    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let (key, identity, depth) = (self.key, self.identity, self.depth + 1);
        while seq
            .next_element_seed(Walk {
                t: &mut *self.t,
                key,
                identity,
                depth,
            })?
            .is_some()
        {}
        Ok(())
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(k) = map.next_key_seed(KeyStr)? {
            if SKIPPED_KEYS.contains(&k.as_ref()) {
                map.next_value::<serde::de::IgnoredAny>()?;
                continue;
            }
            let identity = self.identity || IDENTITY_KEYS.contains(&k.as_ref());
            map.next_value_seed(Walk {
                t: &mut *self.t,
                key: Some(&k),
                identity,
                depth: self.depth + 1,
            })?;
        }
        Ok(())
    }
}

/// A map's key, borrowed from the text when it can be.
struct KeyStr;

impl<'de> serde::de::DeserializeSeed<'de> for KeyStr {
    type Value = std::borrow::Cow<'de, str>;
    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> serde::de::Visitor<'de> for KeyStr {
    type Value = std::borrow::Cow<'de, str>;
    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a key")
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Borrowed(s))
    }
    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(std::borrow::Cow::Owned(s.to_string()))
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
    index_text(&keys, e.raw.text())
}

fn keyed(keys: &[(IndexKey, String)]) -> Tokens {
    let mut t = Tokens::new();
    for (k, v) in keys {
        match k {
            IndexKey::Resource => t.resource(v),
            IndexKey::Principal | IndexKey::Value => t.key(*k, v),
        }
    }
    t
}

fn walk<'de, D: serde::Deserializer<'de>>(t: &mut Tokens, d: D) {
    use serde::de::DeserializeSeed;
    // A record that stops being JSON part way keeps the tokens found before.
    let _ = Walk {
        t,
        key: None,
        identity: false,
        depth: 0,
    }
    .deserialize(d);
}

/// The search tokens of an original record's JSON text with the given keys (see the section's
/// comment), read from the text without building a tree of it.
pub fn index_text(keys: &[(IndexKey, String)], record: &str) -> String {
    let mut t = keyed(keys);
    walk(&mut t, &mut serde_json::Deserializer::from_str(record));
    t.out
}

/// The search tokens of an original record with the given keys (see the section's comment).
pub fn index_record(keys: &[(IndexKey, String)], record: &serde_json::Value) -> String {
    let mut t = keyed(keys);
    walk(&mut t, record);
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

    /// The tokens of a record, which must be the same read from its text or from its tree.
    fn tokens(keys: &[(IndexKey, String)], record: &str) -> Vec<String> {
        let split = |s: String| s.split(' ').map(str::to_string).collect::<Vec<_>>();
        let from_tree = split(index_record(keys, &serde_json::from_str(record).unwrap()));
        let from_text = split(index_text(keys, record));
        let set = |v: &Vec<String>| v.iter().cloned().collect::<std::collections::BTreeSet<_>>();
        assert_eq!(set(&from_tree), set(&from_text));
        assert_eq!(from_text.len(), set(&from_text).len(), "each token once");
        from_text
    }

    #[test]
    fn tokens_are_spelled_as_the_stored_index_has_them() {
        use crate::hash::{fnv1a, fnv1a_extend};
        // Events already stored keep these tokens: the spelling must not change.
        assert_eq!(
            key_token(IndexKey::Principal, " ARN:aws:iam::1:user/Ops "),
            format!(
                "xp{:016x}",
                fnv1a_extend(fnv1a(b"p"), b"arn:aws:iam::1:user/ops")
            )
        );
        assert_eq!(
            key_token(IndexKey::Resource, "Straße"),
            format!("xr{:016x}", fnv1a_extend(fnv1a(b"r"), "straße".as_bytes()))
        );
        let pair = format!(
            "xb{:016x}",
            fnv1a_extend(fnv1a_extend(fnv1a(b"b"), b"access"), b" denied")
        );
        assert_eq!(pair_token("access", "denied"), pair);
        let t = tokens(&[], r#"{"errorMessage":"Access Denied"}"#);
        assert_eq!(t, ["access", pair.as_str(), "denied"]);
    }

    #[test]
    fn the_text_and_the_tree_give_the_same_tokens_for_any_shape() {
        let record = r#"{"a":[1,-2,3.5,1e20,{"ÄrnId":"Straße-ŒUF x"}],"b":null,"c":true,
            "requestParameters":{"bucketName":"logs","tags":[["k","v"]],"s":"a\"b\u00e9"},
            "userIdentity":{"arn":"arn:aws:iam::1:user/x","deep":{"userName":"ops"}}}"#;
        let t = tokens(&[(IndexKey::Principal, "p".into())], record);
        assert!(t.contains(&"straße".to_string()));
        assert!(t.contains(&"ŒUF".to_lowercase()));
        assert!(t.contains(&key_token(IndexKey::Resource, "logs")));
        assert!(
            !t.contains(&key_token(IndexKey::Resource, "ops")),
            "identity is not a resource"
        );
        // Ids and addresses are found whole, not by their parts.
        let record = r#"{"eventID":"E65635FF-3ef6-477b-aa3b-261168b9ead6","sourceIPAddress":"203.0.113.9",
            "requestParameters":{"ipv6":"2001:db8::1","notIp":"1.2.3"}}"#;
        let t = tokens(&[], record);
        let has_all = |q: &str| text_tokens(q).iter().all(|x| t.contains(x));
        assert!(has_all("e65635ff-3ef6-477b-aa3b-261168b9ead6"));
        assert!(has_all(" 203.0.113.9 "));
        assert!(has_all("2001:DB8::1"));
        assert!(!has_all("e65635ff"), "a part of an id is not a word of it");
        assert!(!has_all("203"));
        assert!(
            has_all("1.2.3") && has_all("2 3"),
            "not an address: words and phrases"
        );
        assert_eq!(
            t.len(),
            3 + 5,
            "the id and two addresses whole, 1.2.3's words and pairs: {t:?}"
        );
        // Text that stops being JSON keeps what was read before.
        let cut = index_text(&[], r#"{"requestParameters":{"userName":"mallory"},"x":"#);
        assert!(cut.split(' ').any(|w| w == "mallory"));
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
