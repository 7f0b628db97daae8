//! An event search as conditions both backends write as SQL the same way ([`Cond`], [`conds`]),
//! and the counting of a search's matches for its digest ([`Digest`]).
//!
//! What the search language finds beyond the columns (words of the record, resources, the
//! principal's other names) is in a token index: SQLite's FTS5 table
//! `event_words` (by event `seq`), PostgreSQL's `events.words` array (GIN). The tokens are
//! computed by `cloudsentinel_core::row` for stored events and searches alike.

use std::collections::HashMap;

use cloudsentinel_core::row::{IndexKey, key_token, phrase_tokens, text_tokens, whole_value};

use crate::*;

/// A value compared with a column.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Val {
    Int(i64),
    Text(String),
    Bool(bool),
}

/// A condition on an event.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Cond {
    /// `column = value`.
    Eq(&'static str, Val),
    /// `column = value`, ignoring ASCII case.
    EqNoCase(&'static str, String),
    /// The principal's display string, exact (by its hash, indexed).
    Principal(String),
    /// The token index holds all of these.
    Tokens(Vec<String>),
    Any(Vec<Cond>),
    All(Vec<Cond>),
    Not(Box<Cond>),
    /// Matches nothing.
    Never,
}

/// How a backend writes conditions.
pub(crate) trait Dialect {
    /// Adds a parameter; answers its placeholder.
    fn param(&mut self, v: Val) -> String;
    /// `column = $p` ignoring ASCII case.
    fn eq_nocase(&mut self, column: &str, value: String) -> String;
    /// The token index holds all `tokens` (never empty).
    fn tokens(&mut self, tokens: &[String]) -> String;
    fn false_sql(&self) -> &'static str;
}

/// The SQL of a condition.
pub(crate) fn sql(c: &Cond, d: &mut dyn Dialect) -> String {
    match c {
        Cond::Eq(col, v) => format!("{col} = {}", d.param(v.clone())),
        Cond::EqNoCase(col, v) => d.eq_nocase(col, v.clone()),
        Cond::Principal(p) => {
            let h = d.param(Val::Int(codec::key_hash(p)));
            let v = d.param(Val::Text(p.clone()));
            format!("(principal_hash = {h} AND principal = {v})")
        }
        Cond::Tokens(t) if t.is_empty() => d.false_sql().to_string(),
        Cond::Tokens(t) => d.tokens(t),
        Cond::Any(cs) if cs.is_empty() => d.false_sql().to_string(),
        Cond::Any(cs) => format!(
            "({})",
            cs.iter()
                .map(|c| sql(c, d))
                .collect::<Vec<_>>()
                .join(" OR ")
        ),
        Cond::All(cs) if cs.is_empty() => format!("NOT {}", d.false_sql()),
        Cond::All(cs) => format!(
            "({})",
            cs.iter()
                .map(|c| sql(c, d))
                .collect::<Vec<_>>()
                .join(" AND ")
        ),
        // A missing value (NULL) does not match, so its negation does.
        Cond::Not(c) => format!("NOT COALESCE({}, {})", sql(c, d), d.false_sql()),
        Cond::Never => d.false_sql().to_string(),
    }
}

fn text(v: &str) -> Val {
    Val::Text(v.to_string())
}

/// The condition of one term of the search language.
pub(crate) fn term_cond(field: EventField, value: &str) -> Cond {
    let v = value.trim();
    match field {
        EventField::Principal => Cond::Any(vec![
            Cond::Principal(v.to_string()),
            Cond::Tokens(vec![key_token(IndexKey::Principal, v)]),
        ]),
        EventField::Ip => Cond::Eq("source_ip", text(v)),
        EventField::Account => Cond::Eq("account", text(v)),
        EventField::As => {
            let digits = v.trim_start_matches(['A', 'a', 'S', 's']);
            match digits.parse::<u32>() {
                Ok(n) => Cond::Eq("asn", Val::Int(n as i64)),
                Err(_) => Cond::Never,
            }
        }
        EventField::Country => Cond::Eq("country", text(&v.to_ascii_uppercase())),
        EventField::Action => match v.split_once(':') {
            Some((service, op)) if !service.is_empty() && !op.is_empty() => Cond::All(vec![
                Cond::EqNoCase("service", service.to_string()),
                Cond::EqNoCase("operation", op.to_string()),
            ]),
            _ => Cond::EqNoCase("operation", v.to_string()),
        },
        EventField::Resource => Cond::Tokens(vec![key_token(IndexKey::Resource, v)]),
        EventField::Outcome => match v.to_ascii_lowercase().as_str() {
            "success" => Cond::Eq("success", Val::Bool(true)),
            "failure" => Cond::Eq("success", Val::Bool(false)),
            _ => Cond::Never,
        },
        // An id or address is a key of its own; events stored before it was have its words.
        EventField::Text if whole_value(v) => Cond::Any(vec![
            Cond::Tokens(text_tokens(v)),
            Cond::Tokens(phrase_tokens(v)),
        ]),
        EventField::Text => Cond::Tokens(text_tokens(v)),
    }
}

/// The conditions of a search, all of which must hold (the time range excluded). The tokens of
/// all the plain (not negated) token conditions are merged into one lookup.
pub(crate) fn conds(q: &EventQuery) -> Vec<Cond> {
    let mut out = Vec::new();
    if let Some(p) = &q.principal {
        out.push(Cond::Principal(p.clone()));
    }
    if let Some(a) = &q.account {
        out.push(Cond::Eq("account", text(a)));
    }
    if let Some(ip) = &q.source_ip {
        out.push(Cond::Eq("source_ip", text(ip)));
    }
    if let Some(s) = &q.service {
        out.push(Cond::Eq("service", text(s)));
    }
    if let Some(o) = &q.operation {
        out.push(Cond::Eq("operation", text(o)));
    }
    if let Some(s) = q.success {
        out.push(Cond::Eq("success", Val::Bool(s)));
    }
    if let Some(t) = &q.text {
        out.push(term_cond(EventField::Text, t));
    }
    if let Some(r) = &q.resource {
        out.push(term_cond(EventField::Resource, r));
    }
    if let Some(a) = q.asn {
        out.push(term_cond(EventField::As, &a.to_string()));
    }
    if let Some(c) = &q.country {
        out.push(term_cond(EventField::Country, c));
    }
    for t in &q.terms {
        let c = term_cond(t.field, &t.value);
        out.push(if t.negate { Cond::Not(Box::new(c)) } else { c });
    }
    // One index lookup for all plain tokens.
    let mut tokens: Vec<String> = Vec::new();
    let mut rest = Vec::new();
    for c in out {
        match c {
            Cond::Tokens(t) if !t.is_empty() => {
                for x in t {
                    if !tokens.contains(&x) {
                        tokens.push(x);
                    }
                }
            }
            c => rest.push(c),
        }
    }
    if !tokens.is_empty() {
        rest.insert(0, Cond::Tokens(tokens));
    }
    rest
}

/// The columns a digest reads, in this order.
pub(crate) const DIGEST_COLUMNS: &str =
    "time, principal, source_ip, service, operation, account, asn, country, success";

/// One counted match: the digest's columns, borrowed from the result row.
pub(crate) struct DigestRow<'a> {
    pub time: i64,
    pub principal: &'a str,
    pub source_ip: Option<&'a str>,
    pub service: &'a str,
    pub operation: &'a str,
    pub account: Option<&'a str>,
    pub asn: Option<i64>,
    pub country: Option<&'a str>,
    pub success: bool,
}

/// Counts matches as they are read, newest first.
pub(crate) struct Digest {
    cap: u64,
    histogram: Option<Histogram>,
    counted: u64,
    capped: bool,
    newest: Option<i64>,
    oldest: Option<i64>,
    times: Vec<i64>,
    counts: [HashMap<String, u64>; 7],
    /// The action being counted (`service:operation`), reused.
    buf: String,
}

const FACET_FIELDS: [EventField; 7] = [
    EventField::Principal,
    EventField::Ip,
    EventField::Action,
    EventField::Account,
    EventField::As,
    EventField::Country,
    EventField::Outcome,
];

/// Counts one value, allocating only for a value not seen before.
fn count(map: &mut HashMap<String, u64>, v: &str) {
    match map.get_mut(v) {
        Some(n) => *n += 1,
        None => {
            map.insert(v.to_string(), 1);
        }
    }
}

impl Digest {
    pub(crate) fn new(cap: u32, histogram: Option<Histogram>) -> Digest {
        Digest {
            cap: cap as u64,
            histogram,
            counted: 0,
            capped: false,
            newest: None,
            oldest: None,
            times: Vec::new(),
            counts: Default::default(),
            buf: String::new(),
        }
    }

    /// Counts one match; false once the cap is passed (the caller reads one past it to know).
    pub(crate) fn add(&mut self, r: DigestRow<'_>) -> bool {
        if self.counted >= self.cap {
            self.capped = true;
            return false;
        }
        self.counted += 1;
        self.newest = Some(self.newest.map_or(r.time, |t| t.max(r.time)));
        self.oldest = Some(self.oldest.map_or(r.time, |t| t.min(r.time)));
        self.times.push(r.time);
        let c = &mut self.counts;
        count(&mut c[0], r.principal);
        if let Some(v) = r.source_ip {
            count(&mut c[1], v);
        }
        self.buf.clear();
        self.buf.push_str(r.service);
        self.buf.push(':');
        self.buf.push_str(r.operation);
        count(&mut c[2], &self.buf);
        if let Some(v) = r.account {
            count(&mut c[3], v);
        }
        if let Some(v) = r.asn {
            count(&mut c[4], itoa(v).as_str());
        }
        if let Some(v) = r.country {
            count(&mut c[5], v);
        }
        count(&mut c[6], if r.success { "success" } else { "failure" });
        true
    }

    pub(crate) fn finish(self, top: u32) -> EventDigest {
        let mut histogram = Vec::new();
        let mut histogram_range = None;
        if let Some(h) = self.histogram {
            let n = h.buckets.max(1) as usize;
            histogram = vec![0u64; n];
            let from = h.from.map(codec::ms).or(self.oldest).unwrap_or(0);
            // The newest match falls in the last bucket when the range ends with it.
            let to =
                h.to.map(codec::ms)
                    .or(self.newest.map(|t| t + 1))
                    .unwrap_or(from + 1)
                    .max(from + 1);
            histogram_range = Some((codec::time(from), codec::time(to)));
            let width = ((to - from) as f64 / n as f64).max(1.0);
            for t in &self.times {
                if *t >= from && *t < to {
                    let i = (((*t - from) as f64) / width) as usize;
                    histogram[i.min(n - 1)] += 1;
                }
            }
        }
        let facets = FACET_FIELDS
            .iter()
            .zip(self.counts)
            .map(|(field, counts)| {
                let distinct = counts.len() as u64;
                let mut values: Vec<KeyCount> = counts
                    .into_iter()
                    .map(|(key, count)| KeyCount { key, count })
                    .collect();
                values.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.key.cmp(&b.key)));
                values.truncate(top as usize);
                Facet {
                    field: *field,
                    values,
                    distinct,
                }
            })
            .collect();
        EventDigest {
            counted: self.counted,
            capped: self.capped,
            span: self
                .oldest
                .zip(self.newest)
                .map(|(a, b)| (codec::time(a), codec::time(b))),
            histogram,
            histogram_range,
            facets,
        }
    }
}

fn itoa(v: i64) -> String {
    v.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_tokens_are_looked_up_once_and_negations_alone() {
        let q = EventQuery {
            text: Some("sup-2".into()),
            terms: vec![
                EventTerm {
                    field: EventField::Resource,
                    value: "Bucket".into(),
                    negate: false,
                },
                EventTerm {
                    field: EventField::Country,
                    value: "DE".into(),
                    negate: true,
                },
                EventTerm {
                    field: EventField::Ip,
                    value: "10.0.0.1".into(),
                    negate: false,
                },
            ],
            ..Default::default()
        };
        let c = conds(&q);
        assert_eq!(c.len(), 3);
        let Cond::Tokens(t) = &c[0] else {
            panic!("{c:?}")
        };
        assert_eq!(t.len(), 4, "two words, their pair, the resource key");
        assert!(t.contains(&key_token(IndexKey::Resource, "bucket")));
        assert!(matches!(&c[1], Cond::Not(_)));
        assert_eq!(c[2], Cond::Eq("source_ip", Val::Text("10.0.0.1".into())));
    }
}
