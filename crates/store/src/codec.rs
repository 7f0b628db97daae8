//! What every backend shares: how values are encoded in columns (times as milliseconds,
//! levels as numbers, lists as JSON text, index keys as a stable hash) and the compressed blocks
//! that raw records are kept in.

use chrono::{DateTime, TimeZone, Utc};
use cloudsentinel_core::Level;

use crate::{Result, StoreError};

/// FNV-1a, 64 bits: a stable hash for index keys (stored, so it must never change).
pub(crate) fn key_hash(s: &str) -> i64 {
    cloudsentinel_core::hash::fnv1a(s.as_bytes()) as i64
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(crate) fn time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

pub(crate) fn level_num(l: Level) -> i64 {
    l as i64
}

pub(crate) fn level_of(n: i64) -> Level {
    Level::ALL
        .get(n.clamp(0, 4) as usize)
        .copied()
        .unwrap_or(Level::Informational)
}

pub(crate) fn json_list(v: &[String]) -> String {
    serde_json::to_string(v).unwrap_or_else(|_| "[]".into())
}

pub(crate) fn list_of(s: &str) -> Vec<String> {
    serde_json::from_str(s).unwrap_or_default()
}

pub(crate) fn escape_like(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('%');
    for c in s.chars() {
        if matches!(c, '%' | '_' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('%');
    out
}

/// Packs records into one block: for each, its length (u32, little endian) then its bytes.
pub(crate) fn pack_block(records: &[&str]) -> Vec<u8> {
    let mut plain = Vec::with_capacity(records.iter().map(|r| r.len() + 4).sum());
    for r in records {
        plain.extend_from_slice(&(r.len() as u32).to_le_bytes());
        plain.extend_from_slice(r.as_bytes());
    }
    lz4_flex::compress_prepend_size(&plain)
}

pub(crate) fn unpack_block(data: &[u8]) -> Result<Vec<String>> {
    let plain = lz4_flex::decompress_size_prepended(data)
        .map_err(|e| StoreError::Corrupt(format!("raw block: {e}")))?;
    let mut out = Vec::new();
    let mut at = 0usize;
    while at + 4 <= plain.len() {
        let len = u32::from_le_bytes(plain[at..at + 4].try_into().expect("4 bytes")) as usize;
        at += 4;
        let Some(bytes) = plain.get(at..at + len) else {
            return Err(StoreError::Corrupt("raw block: truncated record".into()));
        };
        out.push(String::from_utf8_lossy(bytes).into_owned());
        at += len;
    }
    Ok(out)
}

/// Whether events over `from..to` (milliseconds) in buckets of `bucket` ms can be counted from
/// the counts per minute: when `from` and `bucket` are whole minutes, the whole minutes to count
/// (`first..last`, minute numbers) and where the last part minute starts (ms; events from there
/// to `to` are counted one by one).
pub(crate) fn minute_span(from: i64, to: i64, bucket: i64) -> (Option<(i64, i64)>, i64) {
    if from % 60_000 != 0 || bucket % 60_000 != 0 || to <= from {
        return (None, to);
    }
    let (first, last) = (from / 60_000, to.div_euclid(60_000));
    (Some((first, last)), last * 60_000)
}

#[cfg(test)]
mod minute_tests {
    use super::minute_span;

    #[test]
    fn whole_minutes_come_from_the_counts_and_the_rest_from_the_events() {
        // An hour from a whole hour, to 90 s into its last minute... and a bit.
        let from = 1_700_000_040_000 - 1_700_000_040_000 % 3_600_000;
        assert_eq!(
            minute_span(from, from + 3_630_000, 3_600_000),
            (Some((from / 60_000, from / 60_000 + 60)), from + 3_600_000)
        );
        // Not from a whole minute, or buckets of part minutes: every event is counted.
        assert_eq!(
            minute_span(from + 1, from + 90_000, 60_000),
            (None, from + 90_000)
        );
        assert_eq!(
            minute_span(from, from + 90_000, 90_000 + 1),
            (None, from + 90_000)
        );
    }
}
