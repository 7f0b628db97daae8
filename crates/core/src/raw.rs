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
        let mut fields: Vec<Field> = Vec::with_capacity(24);
        while let Some(key) = map.next_key_seed(KeySeed(self.0))? {
            let raw: &'de RawValue = map.next_value()?;
            let start = offset_in(self.0, raw.get());
            let name = match &key {
                Key::Span(r) => &self.0[r.clone()],
                Key::Owned(k) => k,
            };
            let tag = tag_of(name);
            // A repeated key would be read one way by the index (first) and another by a
            // full parse (last): what is detected and what is shown must be the same record.
            let repeated = fields.iter().any(|f| {
                f.tag == tag
                    && match &f.key {
                        Key::Span(r) => &self.0[r.clone()] == name,
                        Key::Owned(k) => &**k == name,
                    }
            });
            if repeated {
                return Err(de::Error::custom(format!("duplicate key {name:?}")));
            }
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

/// Deepest nesting of objects and arrays accepted in a record (JSON parsers commonly stop at
/// 128; audit records nest a dozen levels at most).
pub const MAX_DEPTH: usize = 100;

/// One pass over a JSON text for what a syntax check lets through but a full parse refuses:
/// nesting past [`MAX_DEPTH`], numbers that overflow a float, lone surrogate escapes. The text
/// is assumed to be otherwise valid JSON (the parse that follows checks that).
fn check_text(text: &str) -> Result<(), String> {
    let b = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0usize;
    while i < b.len() {
        match b[i] {
            b'"' => {
                i += 1;
                while i < b.len() {
                    // Most of a record is inside strings: jump to the next quote or escape.
                    let Some(k) = memchr::memchr2(b'"', b'\\', &b[i..]) else {
                        i = b.len();
                        break;
                    };
                    i += k;
                    if b[i] == b'"' {
                        break;
                    }
                    // An escape.
                    if b.get(i + 1) != Some(&b'u') {
                        i += 2;
                        continue;
                    }
                    match hex4(b, i + 2) {
                        Some(0xD800..=0xDBFF) => {
                            let low = if b.get(i + 6) == Some(&b'\\') && b.get(i + 7) == Some(&b'u')
                            {
                                hex4(b, i + 8)
                            } else {
                                None
                            };
                            if !matches!(low, Some(0xDC00..=0xDFFF)) {
                                return Err(format!("lone surrogate escape at byte {i}"));
                            }
                            i += 12;
                        }
                        Some(0xDC00..=0xDFFF) => {
                            return Err(format!("lone surrogate escape at byte {i}"));
                        }
                        _ => i += 6,
                    }
                }
                i += 1;
            }
            b'{' | b'[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!("nested deeper than {MAX_DEPTH} levels at byte {i}"));
                }
                i += 1;
            }
            b'}' | b']' => {
                depth = depth.saturating_sub(1);
                i += 1;
            }
            b'-' | b'0'..=b'9' => {
                let start = i;
                let mut exponent = false;
                while i < b.len() && matches!(b[i], b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')
                {
                    exponent |= matches!(b[i], b'e' | b'E');
                    i += 1;
                }
                let token = &text[start..i];
                if (exponent || token.len() > 300)
                    && !token.parse::<f64>().is_ok_and(f64::is_finite)
                {
                    return Err(format!(
                        "number {token:.40} at byte {start} is out of range"
                    ));
                }
            }
            _ => i += 1,
        }
    }
    Ok(())
}

fn hex4(b: &[u8], at: usize) -> Option<u32> {
    let digits = b.get(at..at + 4)?;
    let s = std::str::from_utf8(digits).ok()?;
    u32::from_str_radix(s, 16).ok()
}

impl RawRecord {
    /// Indexes a JSON object. Fails when the text is not valid JSON or not an object.
    ///
    /// Also refused, so that every stored record can be read back and shown exactly as it was
    /// detected on: a repeated top-level key, nesting deeper than [`MAX_DEPTH`], a number
    /// outside the range of a 64-bit float, and a lone UTF-16 surrogate escape.
    pub fn parse(text: impl Into<Box<str>>) -> Result<RawRecord, NotAnObject> {
        let text: Box<str> = text.into();
        check_text(&text).map_err(NotAnObject)?;
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

    /// Guards the "stored evidence that cannot be read back" finding: every record accepted
    /// must parse back into the same value that is shown.
    #[test]
    fn records_that_could_not_be_read_back_are_refused_with_the_reason() {
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(200), "]".repeat(200));
        let err = RawRecord::parse(deep).unwrap_err().to_string();
        assert!(err.contains("nested deeper than 100"), "{err}");
        let err = RawRecord::parse(r#"{"n":1e400}"#).unwrap_err().to_string();
        assert!(
            err.contains("number 1e400") && err.contains("out of range"),
            "{err}"
        );
        let err = RawRecord::parse(r#"{"n":-1E+999}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("out of range"), "{err}");
        let err = RawRecord::parse(r#"{"s":"a\ud800b"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lone surrogate"), "{err}");
        let err = RawRecord::parse(r#"{"s":"\udc00"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("lone surrogate"), "{err}");
        let err = RawRecord::parse(r#"{"eventName":"A","x":1,"eventName":"B"}"#)
            .unwrap_err()
            .to_string();
        assert!(err.contains("duplicate key \"eventName\""), "{err}");
        let err = RawRecord::parse(r#"{"k\u0065y":1,"key":2}"#)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("duplicate key"),
            "an escaped repeat is a repeat: {err}"
        );
        // What stays accepted: a proper surrogate pair, big but finite numbers, 100 levels,
        // brackets and escapes inside strings, repeated keys in different objects.
        let fine = [
            r#"{"s":"\ud83d\ude00","n":1.5e308,"m":-12345678901234567890123,"t":"[[[{\"\\"}"#
                .to_string(),
            format!("{{\"a\":{}1{}}}", "[".repeat(99), "]".repeat(99)),
            r#"{"a":{"k":1},"b":{"k":2}}"#.to_string(),
        ];
        for text in fine {
            let r = RawRecord::parse(text.clone()).unwrap_or_else(|e| panic!("{text}: {e}"));
            let back: Value = serde_json::from_str(r.text()).expect("reads back");
            assert!(back.is_object());
        }
    }

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
