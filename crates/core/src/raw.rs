//! [`RawRecord`]: a provider's original JSON record, kept as text and parsed only as far as
//! someone looks.
//!
//! Parsing a whole audit record into a `serde_json::Value` costs more than everything else the
//! detection path does. A `RawRecord` indexes the record's top-level fields once (one validating
//! scan, no tree built) and parses a field's value into a `Value` the first time it is asked for,
//! caching it. Top-level strings (`eventName`, `eventSource`, ...) are read straight from the
//! text without allocating.

use std::borrow::Cow;
use std::fmt;
use std::ops::Range;
use std::sync::OnceLock;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::RawValue;

/// One top-level field: its name and where its value sits in the text.
#[derive(Debug)]
struct Field {
    key: Key,
    /// Length and first and last byte of the key: most lookups are rejected on this alone,
    /// without comparing strings.
    tag: u32,
    value: Range<usize>,
    parsed: OnceLock<Value>,
}

fn tag_of(key: &str) -> u32 {
    let b = key.as_bytes();
    let first = b.first().copied().unwrap_or(0) as u32;
    let last = b.last().copied().unwrap_or(0) as u32;
    ((b.len() as u32) << 16) | (first << 8) | last
}

#[derive(Debug)]
enum Key {
    /// The key as it appears in the text (no escapes).
    Span(Range<usize>),
    /// A key that had escapes, unescaped.
    Owned(Box<str>),
}

/// A JSON object record kept as text, with its top-level fields indexed.
pub struct RawRecord {
    text: Box<str>,
    fields: Vec<Field>,
    full: OnceLock<Value>,
}

impl fmt::Debug for RawRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("RawRecord").field(&self.text).finish()
    }
}

/// Why a text is not a record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotAnObject(pub String);

impl fmt::Display for NotAnObject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotAnObject {}

fn offset_in(base: &str, part: &str) -> usize {
    part.as_ptr() as usize - base.as_ptr() as usize
}

struct KeySeed<'t>(&'t str);

impl<'de> DeserializeSeed<'de> for KeySeed<'de> {
    type Value = Key;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Key, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for KeySeed<'de> {
    type Value = Key;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an object key")
    }
    fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key, E> {
        let start = offset_in(self.0, v);
        Ok(Key::Span(start..start + v.len()))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Key, E> {
        Ok(Key::Owned(v.into()))
    }
}

struct TopVisitor<'t>(&'t str);

impl<'de> Visitor<'de> for TopVisitor<'de> {
    type Value = Vec<Field>;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<Field>, A::Error> {
        let mut fields = Vec::with_capacity(24);
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            let raw: &'de RawValue = map.next_value()?;
            let start = offset_in(self.0, raw.get());
            let tag = match &key {
                Key::Span(r) => tag_of(&self.0[r.clone()]),
                Key::Owned(k) => tag_of(k),
            };
            fields.push(Field {
                key,
                tag,
                value: start..start + raw.get().len(),
                parsed: OnceLock::new(),
            });
        }
        Ok(fields)
    }
}

impl RawRecord {
    /// Indexes a JSON object. Fails when the text is not valid JSON or not an object.
    pub fn parse(text: impl Into<Box<str>>) -> Result<RawRecord, NotAnObject> {
        let text: Box<str> = text.into();
        let fields = {
            let mut de = serde_json::Deserializer::from_str(&text);
            let fields = de.deserialize_map(TopVisitor(&text)).map_err(|e| {
                NotAnObject(if e.is_data() {
                    format!("expected a JSON object: {e}")
                } else {
                    e.to_string()
                })
            })?;
            de.end()
                .map_err(|e| NotAnObject(format!("trailing characters after the record: {e}")))?;
            fields
        };
        Ok(RawRecord {
            text,
            fields,
            full: OnceLock::new(),
        })
    }

    /// A record from an already parsed value (tests, fixtures, generated data).
    pub fn from_value(value: &Value) -> Result<RawRecord, NotAnObject> {
        RawRecord::parse(serde_json::to_string(value).map_err(|e| NotAnObject(e.to_string()))?)
    }

    /// The record's JSON text, as received.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// The record's text, without copying it.
    pub fn into_text(self) -> Box<str> {
        self.text
    }

    fn key_of<'a>(&'a self, f: &'a Field) -> &'a str {
        match &f.key {
            Key::Span(r) => &self.text[r.clone()],
            Key::Owned(s) => s,
        }
    }

    fn field(&self, key: &str) -> Option<&Field> {
        let tag = tag_of(key);
        self.fields
            .iter()
            .find(|f| f.tag == tag && self.key_of(f) == key)
    }

    /// Position of a top-level field, for [`RawRecord::value_at`].
    pub fn position(&self, key: &str) -> Option<usize> {
        let tag = tag_of(key);
        self.fields
            .iter()
            .position(|f| f.tag == tag && self.key_of(f) == key)
    }

    /// Number of top-level fields.
    pub fn len(&self) -> usize {
        self.fields.len()
    }

    pub fn is_empty(&self) -> bool {
        self.fields.is_empty()
    }

    /// The value of the field at `position`, parsed on first use and cached.
    pub fn value_at(&self, position: usize) -> Option<&Value> {
        let f = self.fields.get(position)?;
        Some(f.parsed.get_or_init(|| {
            serde_json::from_str(&self.text[f.value.clone()]).unwrap_or(Value::Null)
        }))
    }

    /// Top-level field names, in order.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.fields.iter().map(|f| self.key_of(f))
    }

    pub fn contains_key(&self, key: &str) -> bool {
        self.field(key).is_some()
    }

    /// The JSON text of a top-level field's value.
    pub fn raw_field(&self, key: &str) -> Option<&str> {
        self.field(key).map(|f| &self.text[f.value.clone()])
    }

    /// A top-level field's value, parsed on first use and cached.
    pub fn value(&self, key: &str) -> Option<&Value> {
        self.value_at(self.position(key)?)
    }

    /// A top-level string field, read from the text without building a `Value`. `None` when
    /// absent or not a string.
    pub fn str_field(&self, key: &str) -> Option<Cow<'_, str>> {
        let raw = self.raw_field(key)?;
        json_str(raw)
    }

    /// A top-level scalar, as a small enum; objects and arrays come back as `Scalar::Nested`.
    pub fn scalar(&self, key: &str) -> Option<Scalar<'_>> {
        let raw = self.raw_field(key)?;
        Some(match raw.as_bytes().first() {
            Some(b'"') => match json_str(raw) {
                Some(s) => Scalar::Str(s),
                None => Scalar::Null,
            },
            Some(b't') => Scalar::Bool(true),
            Some(b'f') => Scalar::Bool(false),
            Some(b'n') => Scalar::Null,
            Some(b'{' | b'[') => Scalar::Nested,
            _ => match raw.parse::<i64>() {
                Ok(i) => Scalar::Int(i),
                Err(_) => raw
                    .parse::<f64>()
                    .map(Scalar::Float)
                    .unwrap_or(Scalar::Null),
            },
        })
    }

    /// The whole record as a `Value`, parsed on first use and cached.
    pub fn to_value(&self) -> &Value {
        self.full
            .get_or_init(|| serde_json::from_str(&self.text).unwrap_or(Value::Null))
    }
}

/// A top-level value that needs no tree.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar<'a> {
    Str(Cow<'a, str>),
    Int(i64),
    Float(f64),
    Bool(bool),
    Null,
    /// An object or array: use [`RawRecord::value`].
    Nested,
}

/// The content of a JSON string literal, borrowed when it has no escapes.
fn json_str(raw: &str) -> Option<Cow<'_, str>> {
    let inner = raw.strip_prefix('"')?.strip_suffix('"')?;
    if !inner.contains('\\') {
        return Some(Cow::Borrowed(inner));
    }
    serde_json::from_str::<String>(raw).ok().map(Cow::Owned)
}

impl Serialize for RawRecord {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match serde_json::from_str::<&RawValue>(&self.text) {
            Ok(raw) => raw.serialize(s),
            Err(e) => Err(serde::ser::Error::custom(e)),
        }
    }
}

impl<'de> Deserialize<'de> for RawRecord {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<RawRecord, D::Error> {
        let raw: Box<RawValue> = Deserialize::deserialize(d)?;
        RawRecord::parse(String::from(raw.get())).map_err(de::Error::custom)
    }
}

impl PartialEq for RawRecord {
    fn eq(&self, other: &RawRecord) -> bool {
        self.to_value() == other.to_value()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_found_without_parsing_the_tree() {
        let r = RawRecord::parse(r#"{"eventName":"StopLogging","n":42,"f":1.5,"ok":true,"none":null,"ui":{"type":"Root"},"esc":"a\"b","k\u0065y":1}"#).unwrap();
        assert_eq!(r.str_field("eventName").as_deref(), Some("StopLogging"));
        assert!(matches!(r.str_field("eventName"), Some(Cow::Borrowed(_))));
        assert_eq!(r.str_field("esc").as_deref(), Some("a\"b"));
        assert_eq!(r.scalar("n"), Some(Scalar::Int(42)));
        assert_eq!(r.scalar("f"), Some(Scalar::Float(1.5)));
        assert_eq!(r.scalar("ok"), Some(Scalar::Bool(true)));
        assert_eq!(r.scalar("none"), Some(Scalar::Null));
        assert_eq!(r.scalar("ui"), Some(Scalar::Nested));
        assert_eq!(r.value("ui").unwrap()["type"], "Root");
        assert!(r.contains_key("key"), "escaped keys are unescaped");
        assert_eq!(r.str_field("missing"), None);
        assert_eq!(r.keys().count(), 8);
        assert_eq!(r.to_value()["n"], 42);
    }

    #[test]
    fn non_objects_and_bad_json_are_refused() {
        assert!(RawRecord::parse("[1,2]").unwrap_err().0.contains("object"));
        assert!(RawRecord::parse("{\"a\":").is_err());
        assert!(RawRecord::parse("{\"a\":1} x").is_err());
    }

    #[test]
    fn serializes_as_the_original_json() {
        let text = r#"{"b":1,"a":{"x":[1,2]}}"#;
        let r = RawRecord::parse(text).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), text);
        let back: RawRecord = serde_json::from_str(text).unwrap();
        assert_eq!(back, r);
    }
}
