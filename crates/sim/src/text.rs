//! A JSON object written straight to text, keys in the order given.
//!
//! The hot records (CloudTrail calls, Entra sign-ins, GCP entries) are written with this rather
//! than built as `serde_json::Value` trees: a `Value` map allocates every key, sorts the keys and
//! costs more than everything else the generator does. Nested parts that vary (request
//! parameters, identities) are still `Value`s, serialized in place.

use serde_json::Value;

pub struct Obj(Vec<u8>);

impl Obj {
    pub fn new() -> Obj {
        let mut v = Vec::with_capacity(1600);
        v.push(b'{');
        Obj(v)
    }

    fn comma(&mut self) {
        if !matches!(self.0.last(), Some(b'{' | b'[' | b':')) {
            self.0.push(b',');
        }
    }

    /// Opens `"key":` (with the comma before it when needed).
    pub fn key(&mut self, k: &str) -> &mut Obj {
        self.comma();
        self.0.push(b'"');
        self.0.extend_from_slice(k.as_bytes());
        self.0.extend_from_slice(b"\":");
        self
    }

    /// Already valid JSON text, as a value.
    pub fn raw(&mut self, json: &str) -> &mut Obj {
        self.0.extend_from_slice(json.as_bytes());
        self
    }

    pub fn str(&mut self, k: &str, v: &str) -> &mut Obj {
        self.key(k);
        // Writing to a Vec cannot fail.
        let _ = serde_json::to_writer(&mut self.0, v);
        self
    }

    pub fn num(&mut self, k: &str, v: impl std::fmt::Display) -> &mut Obj {
        self.key(k);
        self.0.extend_from_slice(v.to_string().as_bytes());
        self
    }

    pub fn bool(&mut self, k: &str, v: bool) -> &mut Obj {
        self.key(k);
        self.0.extend_from_slice(if v { b"true" } else { b"false" });
        self
    }

    pub fn value(&mut self, k: &str, v: &Value) -> &mut Obj {
        self.key(k);
        let _ = serde_json::to_writer(&mut self.0, v);
        self
    }

    /// A nested object.
    pub fn obj(&mut self, k: &str, f: impl FnOnce(&mut Obj)) -> &mut Obj {
        self.key(k);
        self.0.push(b'{');
        f(self);
        self.0.push(b'}');
        self
    }

    /// An array of strings.
    pub fn strs(&mut self, k: &str, items: &[&str]) -> &mut Obj {
        self.key(k);
        self.0.push(b'[');
        for (i, s) in items.iter().enumerate() {
            if i > 0 {
                self.0.push(b',');
            }
            let _ = serde_json::to_writer(&mut self.0, s);
        }
        self.0.push(b']');
        self
    }

    pub fn finish(mut self) -> String {
        self.0.push(b'}');
        String::from_utf8(self.0).unwrap_or_default()
    }
}
