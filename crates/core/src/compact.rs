//! [`EventId`]: an event's id in little memory, for what holds many ids at once.
//!
//! Provider event ids are mostly UUIDs in canonical lower-case form (CloudTrail's `eventID`,
//! Azure's `eventDataId`, ...): 36 bytes of text, 16 of information. Such an id is kept as its 16
//! bytes; any other id is kept as its text. The id reads back exactly as it was written.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub enum EventId {
    /// A canonical lower-case UUID, as its bytes.
    Uuid([u8; 16]),
    Text(Box<str>),
}

/// Where the dashes of a canonical UUID are.
const DASHES: [usize; 4] = [8, 13, 18, 23];

impl EventId {
    pub fn new(id: &str) -> EventId {
        parse_uuid(id).map_or_else(|| EventId::Text(id.into()), EventId::Uuid)
    }
}

fn parse_uuid(s: &str) -> Option<[u8; 16]> {
    let b = s.as_bytes();
    if b.len() != 36 || DASHES.iter().any(|&i| b[i] != b'-') {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    let mut digits = b.iter().enumerate().filter(|(i, _)| !DASHES.contains(i));
    let mut out = [0u8; 16];
    for byte in &mut out {
        let (_, &hi) = digits.next()?;
        let (_, &lo) = digits.next()?;
        *byte = (nibble(hi)? << 4) | nibble(lo)?;
    }
    Some(out)
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EventId::Text(t) => f.write_str(t),
            EventId::Uuid(bytes) => {
                for (i, byte) in bytes.iter().enumerate() {
                    if matches!(i, 4 | 6 | 8 | 10) {
                        f.write_str("-")?;
                    }
                    write!(f, "{byte:02x}")?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_reads_back_exactly_as_written() {
        for id in [
            "c1fb23c4-d134-4424-ba5b-1ab905dc6bf2",
            "00000000-0000-0000-0000-000000000000",
            "C1FB23C4-D134-4424-BA5B-1AB905DC6BF2", // upper case: kept as text
            "c1fb23c4-d134-4424-ba5b-1ab905dc6bf",  // too short
            "c1fb23c4d-134-4424-ba5b-1ab905dc6bf2", // dash misplaced
            "g1fb23c4-d134-4424-ba5b-1ab905dc6bf2", // not hex
            "1x2y3z",
            "",
        ] {
            assert_eq!(EventId::new(id).to_string(), id);
        }
        assert!(matches!(
            EventId::new("c1fb23c4-d134-4424-ba5b-1ab905dc6bf2"),
            EventId::Uuid(_)
        ));
        assert!(matches!(EventId::new("1x2y3z"), EventId::Text(_)));
        assert_eq!(std::mem::size_of::<EventId>(), 24);
    }
}
