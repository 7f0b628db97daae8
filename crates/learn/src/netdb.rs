//! Where an address is: autonomous system and country, from an IP-to-ASN table.
//!
//! The table is the tab-separated format of iptoasn.com's `ip2asn-v4.tsv` (public domain):
//! `range_start  range_end  AS_number  country_code  AS_description`, one range per line,
//! addresses in dotted form. Nothing is downloaded: the operator points
//! `detection.netdb` at a copy. Without one, the network features fall back to address
//! prefixes (/16 in place of the AS) and the country features stay silent.

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

/// One routed range.
#[derive(Debug, Clone)]
struct Range {
    start: u32,
    end: u32,
    asn: u32,
    country: [u8; 2],
    name: String,
}

/// Address ranges sorted by start.
#[derive(Debug, Clone, Default)]
pub struct NetDb {
    ranges: Vec<Range>,
}

/// What the table says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetInfo<'a> {
    pub asn: u32,
    /// ISO 3166 alpha-2, upper case; `None` when the table has none.
    pub country: Option<[u8; 2]>,
    pub name: &'a str,
}

/// A malformed table line.
#[derive(Debug)]
pub struct NetDbError {
    pub line: usize,
    pub message: String,
}

impl std::fmt::Display for NetDbError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for NetDbError {}

impl NetDb {
    pub fn load(path: &Path) -> Result<NetDb, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        NetDb::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses the table; IPv6 lines are skipped (IPv6 sources fall back to prefixes).
    pub fn parse(text: &str) -> Result<NetDb, NetDbError> {
        let mut ranges = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line_no = n + 1;
            if line.trim().is_empty() || line.starts_with('#') {
                continue;
            }
            let cols: Vec<&str> = line.split('\t').collect();
            if cols.len() < 4 {
                return Err(NetDbError {
                    line: line_no,
                    message: format!("expected 5 tab-separated columns, found {}", cols.len()),
                });
            }
            let (Ok(start), Ok(end)) = (cols[0].parse::<IpAddr>(), cols[1].parse::<IpAddr>())
            else {
                return Err(NetDbError {
                    line: line_no,
                    message: format!("`{}` or `{}` is not an address", cols[0], cols[1]),
                });
            };
            let (IpAddr::V4(start), IpAddr::V4(end)) = (start, end) else {
                continue;
            };
            let asn = cols[2].parse::<u32>().map_err(|_| NetDbError {
                line: line_no,
                message: format!("AS number `{}` is not a number", cols[2]),
            })?;
            if asn == 0 {
                continue; // "Not routed"
            }
            let c = cols[3].as_bytes();
            let country = if c.len() == 2 && c[0].is_ascii_alphabetic() {
                [c[0].to_ascii_uppercase(), c[1].to_ascii_uppercase()]
            } else {
                [b'?', b'?']
            };
            ranges.push(Range {
                start: u32::from(start),
                end: u32::from(end),
                asn,
                country,
                name: cols.get(4).unwrap_or(&"").to_string(),
            });
        }
        ranges.sort_by_key(|r| r.start);
        Ok(NetDb { ranges })
    }

    pub fn len(&self) -> usize {
        self.ranges.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn lookup(&self, ip: Ipv4Addr) -> Option<NetInfo<'_>> {
        let a = u32::from(ip);
        let i = self.ranges.partition_point(|r| r.start <= a);
        let r = self.ranges.get(i.checked_sub(1)?)?;
        (a <= r.end).then(|| NetInfo {
            asn: r.asn,
            country: (r.country != [b'?', b'?']).then_some(r.country),
            name: &r.name,
        })
    }
}

/// Approximate centre of a country (latitude, longitude), for the speed between two sign-in
/// places. Countries not listed give no speed.
pub fn centroid(country: [u8; 2]) -> Option<(f64, f64)> {
    const C: &[(&[u8; 2], f64, f64)] = &[
        (b"US", 39.8, -98.6),
        (b"CA", 56.1, -106.3),
        (b"MX", 23.6, -102.6),
        (b"BR", -14.2, -51.9),
        (b"AR", -38.4, -63.6),
        (b"CL", -35.7, -71.5),
        (b"CO", 4.6, -74.3),
        (b"PE", -9.2, -75.0),
        (b"GB", 54.0, -2.0),
        (b"IE", 53.4, -8.2),
        (b"FR", 46.2, 2.2),
        (b"DE", 51.2, 10.4),
        (b"NL", 52.1, 5.3),
        (b"BE", 50.5, 4.5),
        (b"LU", 49.8, 6.1),
        (b"CH", 46.8, 8.2),
        (b"AT", 47.5, 14.6),
        (b"IT", 41.9, 12.6),
        (b"ES", 40.5, -3.7),
        (b"PT", 39.4, -8.2),
        (b"SE", 60.1, 18.6),
        (b"NO", 60.5, 8.5),
        (b"FI", 61.9, 25.7),
        (b"DK", 56.3, 9.5),
        (b"PL", 51.9, 19.1),
        (b"CZ", 49.8, 15.5),
        (b"HU", 47.2, 19.5),
        (b"RO", 45.9, 25.0),
        (b"BG", 42.7, 25.5),
        (b"GR", 39.1, 21.8),
        (b"UA", 48.4, 31.2),
        (b"RU", 61.5, 105.3),
        (b"TR", 39.0, 35.2),
        (b"IL", 31.0, 34.9),
        (b"AE", 23.4, 53.8),
        (b"SA", 23.9, 45.1),
        (b"IR", 32.4, 53.7),
        (b"EG", 26.8, 30.8),
        (b"NG", 9.1, 8.7),
        (b"ZA", -30.6, 22.9),
        (b"KE", -0.0, 37.9),
        (b"IN", 20.6, 79.0),
        (b"PK", 30.4, 69.3),
        (b"BD", 23.7, 90.4),
        (b"CN", 35.9, 104.2),
        (b"HK", 22.3, 114.2),
        (b"TW", 23.7, 121.0),
        (b"KR", 35.9, 127.8),
        (b"KP", 40.3, 127.5),
        (b"JP", 36.2, 138.3),
        (b"SG", 1.35, 103.8),
        (b"MY", 4.2, 102.0),
        (b"TH", 15.9, 101.0),
        (b"VN", 14.1, 108.3),
        (b"ID", -0.8, 113.9),
        (b"PH", 12.9, 121.8),
        (b"AU", -25.3, 133.8),
        (b"NZ", -40.9, 174.9),
        (b"LT", 55.2, 23.9),
        (b"LV", 56.9, 24.6),
        (b"EE", 58.6, 25.0),
        (b"BY", 53.7, 28.0),
        (b"RS", 44.0, 21.0),
        (b"SK", 48.7, 19.7),
        (b"IS", 65.0, -19.0),
        (b"SC", -4.7, 55.5),
        (b"PA", 8.5, -80.8),
        (b"VG", 18.4, -64.6),
    ];
    C.iter()
        .find(|(c, _, _)| **c == country)
        .map(|(_, lat, lon)| (*lat, *lon))
}

/// Great-circle distance in kilometres.
pub fn distance_km(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, lo1) = (a.0.to_radians(), a.1.to_radians());
    let (la2, lo2) = (b.0.to_radians(), b.1.to_radians());
    let h = ((la2 - la1) / 2.0).sin().powi(2)
        + la1.cos() * la2.cos() * ((lo2 - lo1) / 2.0).sin().powi(2);
    2.0 * 6371.0 * h.sqrt().asin()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TABLE: &str = "1.0.0.0\t1.0.0.255\t13335\tUS\tCLOUDFLARENET\n\
        5.0.0.0\t5.255.255.255\t0\tNone\tNot routed\n\
        146.190.0.0\t146.190.127.255\t14061\tNL\tDIGITALOCEAN-ASN\n\
        2001:db8::\t2001:db8::ffff\t64500\tDE\tV6\n";

    #[test]
    fn finds_the_range_an_address_is_in() {
        let db = NetDb::parse(TABLE).unwrap();
        assert_eq!(db.len(), 2, "unrouted and IPv6 lines are skipped");
        let i = db.lookup("146.190.3.4".parse().unwrap()).unwrap();
        assert_eq!(
            (i.asn, i.country, i.name),
            (14061, Some(*b"NL"), "DIGITALOCEAN-ASN")
        );
        assert_eq!(db.lookup("1.0.0.7".parse().unwrap()).unwrap().asn, 13335);
        assert!(db.lookup("1.0.1.0".parse().unwrap()).is_none());
        assert!(db.lookup("0.9.9.9".parse().unwrap()).is_none());
        assert!(db.lookup("5.1.1.1".parse().unwrap()).is_none());
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = NetDb::parse("1.0.0.0\t1.0.0.255\tAS1\tUS\tX\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("AS1"), "{e}");
        let e = NetDb::parse("\nnot-an-ip\t1.0.0.255\t1\tUS\tX\n").unwrap_err();
        assert_eq!(e.line, 2);
    }

    #[test]
    fn distances_are_roughly_right() {
        let d = distance_km(centroid(*b"DE").unwrap(), centroid(*b"US").unwrap());
        assert!((7000.0..9000.0).contains(&d), "{d}");
        assert!(distance_km((1.0, 1.0), (1.0, 1.0)) < 1e-9);
    }
}
