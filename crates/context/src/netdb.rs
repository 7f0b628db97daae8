//! Where an address is: autonomous system, its name, and country.
//!
//! Two sources:
//! - the table that ships inside the binary ([`NetDb::builtin`]), derived from the npm packages
//!   `@ip-location-db/asn` (CC BY 4.0: RouteViews, DB-IP, the RIRs) and
//!   `@ip-location-db/geo-whois-asn-country` (CC0) by `scripts/refresh_netdb.py`; attribution
//!   in `crates/context/data/NOTICE`;
//! - a table the operator names (`detection.netdb`, `hunt --netdb`), in the tab-separated format
//!   of iptoasn.com's `ip2asn-v4.tsv` / `ip2asn-v6.tsv`:
//!   `range_start  range_end  AS_number  country_code  AS_description`.
//!
//! IPv6 ranges are kept at /64 granularity (their upper 64 bits): no routed allocation is
//! smaller. Lookups are a binary search over range starts (about 620k IPv4 and 340k IPv6 ranges
//! in the shipped table).

use std::io::Read;
use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, OnceLock};

/// The shipped table, gzip-compressed (see the module docs and `data/NOTICE`).
static BUILTIN: &[u8] = include_bytes!("../data/netdb.bin.gz");

/// Ranges of one address family, as parallel columns sorted by start; a range runs to the next
/// start. AS 0 with no country marks space that is not routed.
#[derive(Debug, Clone, Default)]
struct Family<T> {
    starts: Vec<T>,
    asns: Vec<u32>,
    countries: Vec<[u8; 2]>,
    /// IPv4 only: per top 16 bits `p`, the first range starting at or after `p << 16` (65,537
    /// entries), so that a lookup searches a few ranges instead of the whole table.
    by_prefix: Vec<u32>,
}

impl Family<u32> {
    fn index_prefixes(mut self) -> Self {
        let mut by_prefix = Vec::with_capacity(65_537);
        let mut i = 0usize;
        for p in 0..=65_536u64 {
            while i < self.starts.len() && u64::from(self.starts[i]) < p << 16 {
                i += 1;
            }
            by_prefix.push(i as u32);
        }
        self.by_prefix = by_prefix;
        self
    }

    fn find_v4(&self, a: u32) -> Option<(u32, [u8; 2])> {
        if self.by_prefix.is_empty() {
            return self.find(a); // an empty table (`NetDb::default()`)
        }
        let p = (a >> 16) as usize;
        let (lo, hi) = (self.by_prefix[p] as usize, self.by_prefix[p + 1] as usize);
        let i = (lo + self.starts[lo..hi].partition_point(|s| *s <= a)).checked_sub(1)?;
        self.at(i)
    }
}

impl<T: Ord + Copy> Family<T> {
    fn push(&mut self, start: T, asn: u32, country: [u8; 2]) {
        self.starts.push(start);
        self.asns.push(asn);
        self.countries.push(country);
    }

    fn find(&self, a: T) -> Option<(u32, [u8; 2])> {
        let i = self.starts.partition_point(|s| *s <= a).checked_sub(1)?;
        self.at(i)
    }

    fn at(&self, i: usize) -> Option<(u32, [u8; 2])> {
        let (asn, country) = (self.asns[i], self.countries[i]);
        (asn != 0 || country != NO_COUNTRY).then_some((asn, country))
    }

    /// Sorts by start and closes each range (`end` inclusive) with an unrouted marker when the
    /// next range does not start right after it.
    fn from_ranges(mut ranges: Vec<(T, T, u32, [u8; 2])>, next: impl Fn(T) -> Option<T>) -> Self {
        ranges.sort_by_key(|r| r.0);
        let mut f = Family {
            starts: Vec::with_capacity(ranges.len()),
            asns: Vec::with_capacity(ranges.len()),
            countries: Vec::with_capacity(ranges.len()),
            by_prefix: Vec::new(),
        };
        for (i, &(start, end, asn, country)) in ranges.iter().enumerate() {
            f.push(start, asn, country);
            let after = next(end);
            let gap = match (after, ranges.get(i + 1)) {
                (Some(a), Some(n)) => n.0 > a,
                (Some(_), None) => true,
                (None, _) => false,
            };
            if gap && let Some(a) = after {
                f.push(a, 0, NO_COUNTRY);
            }
        }
        f
    }
}

const NO_COUNTRY: [u8; 2] = *b"--";

/// An IP-to-AS-and-country table.
#[derive(Debug, Clone, Default)]
pub struct NetDb {
    v4: Family<u32>,
    v6: Family<u64>,
    /// AS number to name, sorted by AS number.
    names: Vec<(u32, Arc<str>)>,
}

/// What the table says about one address.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NetInfo<'a> {
    /// 0 when the table knows the country but not the AS.
    pub asn: u32,
    /// ISO 3166 alpha-2, upper case; `None` when the table has none.
    pub country: Option<[u8; 2]>,
    /// The AS's name; empty when unknown.
    pub name: &'a str,
}

/// A malformed table.
#[derive(Debug, thiserror::Error)]
#[error("line {line}: {message}")]
pub struct NetDbError {
    pub line: usize,
    pub message: String,
}

impl NetDb {
    /// The table that ships inside the binary, decoded once per process.
    pub fn builtin() -> Arc<NetDb> {
        static DB: OnceLock<Arc<NetDb>> = OnceLock::new();
        Arc::clone(DB.get_or_init(|| {
            Arc::new(NetDb::decode(BUILTIN).expect("the shipped address table is well formed"))
        }))
    }

    /// Reads a table the operator names: iptoasn.com's TSV format, IPv4 and IPv6 lines.
    pub fn load(path: &Path) -> Result<NetDb, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        NetDb::parse(&text).map_err(|e| format!("{}: {e}", path.display()))
    }

    /// Parses iptoasn.com's TSV format. Lines with AS 0 ("Not routed") are skipped.
    pub fn parse(text: &str) -> Result<NetDb, NetDbError> {
        let mut v4 = Vec::new();
        let mut v6 = Vec::new();
        let mut names: Vec<(u32, Arc<str>)> = Vec::new();
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
            let asn = cols[2].parse::<u32>().map_err(|_| NetDbError {
                line: line_no,
                message: format!("AS number `{}` is not a number", cols[2]),
            })?;
            if asn == 0 {
                continue;
            }
            let c = cols[3].as_bytes();
            let country = if c.len() == 2 && c[0].is_ascii_alphabetic() {
                [c[0].to_ascii_uppercase(), c[1].to_ascii_uppercase()]
            } else {
                NO_COUNTRY
            };
            match (start, end) {
                (IpAddr::V4(s), IpAddr::V4(e)) if s <= e => {
                    v4.push((u32::from(s), u32::from(e), asn, country))
                }
                (IpAddr::V6(s), IpAddr::V6(e)) if s <= e => v6.push((
                    (u128::from(s) >> 64) as u64,
                    (u128::from(e) >> 64) as u64,
                    asn,
                    country,
                )),
                _ => {
                    return Err(NetDbError {
                        line: line_no,
                        message: format!("`{}` to `{}` is not a range", cols[0], cols[1]),
                    });
                }
            }
            let name = cols.get(4).copied().unwrap_or("");
            names.push((asn, Arc::from(name)));
        }
        names.sort_by_key(|(a, _)| *a);
        names.dedup_by_key(|(a, _)| *a);
        Ok(NetDb {
            v4: Family::from_ranges(v4, |e: u32| e.checked_add(1)).index_prefixes(),
            v6: Family::from_ranges(v6, |e: u64| e.checked_add(1)),
            names,
        })
    }

    /// Decodes the shipped binary format (written by `scripts/refresh_netdb.py`).
    fn decode(gz: &[u8]) -> Result<NetDb, String> {
        let mut bytes = Vec::with_capacity(gz.len() * 3);
        flate2::read::GzDecoder::new(gz)
            .read_to_end(&mut bytes)
            .map_err(|e| format!("gzip: {e}"))?;
        let mut r = Cursor { b: &bytes, at: 0 };
        if r.take(8)? != b"CSNETDB1" {
            return Err("not a CSNETDB1 table".into());
        }
        let n = r.u32()? as usize;
        let mut names = Vec::with_capacity(n);
        for _ in 0..n {
            let asn = r.varint()? as u32;
            let len = r.varint()? as usize;
            let name = std::str::from_utf8(r.take(len)?).map_err(|e| e.to_string())?;
            names.push((asn, Arc::from(name)));
        }
        let v4 = read_family::<u32>(&mut r, "IPv4")?;
        let v6 = read_family::<u64>(&mut r, "IPv6")?;
        if r.at != bytes.len() {
            return Err(format!("{} bytes left over", bytes.len() - r.at));
        }
        Ok(NetDb {
            v4: v4.index_prefixes(),
            v6,
            names,
        })
    }

    /// Number of ranges (IPv4 and IPv6, unrouted gaps included).
    pub fn len(&self) -> usize {
        self.v4.starts.len() + self.v6.starts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn lookup(&self, ip: impl Into<IpAddr>) -> Option<NetInfo<'_>> {
        let ip = ip.into();
        let (asn, country) = match ip {
            IpAddr::V4(v4) => self.v4.find_v4(u32::from(v4))?,
            IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
                Some(v4) => self.v4.find_v4(u32::from(v4))?,
                None => self.v6.find((u128::from(v6) >> 64) as u64)?,
            },
        };
        Some(NetInfo {
            asn,
            country: (country != NO_COUNTRY).then_some(country),
            name: self.name_of(asn).unwrap_or(""),
        })
    }

    /// The shared name of an AS, for events to carry without copying it.
    pub fn name(&self, asn: u32) -> Option<&Arc<str>> {
        let i = self.names.binary_search_by_key(&asn, |(a, _)| *a).ok()?;
        Some(&self.names[i].1)
    }

    fn name_of(&self, asn: u32) -> Option<&str> {
        self.name(asn).map(|n| &**n)
    }
}

/// One family's ranges in the shipped format: a count, then per range the start as a delta from
/// the previous start, the AS number and two country bytes.
fn read_family<T: Ord + Copy + TryFrom<u64>>(
    r: &mut Cursor<'_>,
    what: &str,
) -> Result<Family<T>, String> {
    let n = r.u32()? as usize;
    // Sized once (a range takes at least 4 bytes of the table, which bounds a bad count):
    // growing by doubling would briefly hold the table one and a half times over.
    let n_max = n.min(r.b.len().saturating_sub(r.at) / 4);
    let mut f = Family {
        starts: Vec::with_capacity(n_max),
        asns: Vec::with_capacity(n_max),
        countries: Vec::with_capacity(n_max),
        by_prefix: Vec::new(),
    };
    let mut prev = 0u64;
    for _ in 0..n {
        prev = prev
            .checked_add(r.varint()?)
            .ok_or_else(|| format!("{what} start out of range"))?;
        let start = T::try_from(prev).map_err(|_| format!("{what} start out of range"))?;
        let asn = r.varint()? as u32;
        let c = r.take(2)?;
        f.push(start, asn, [c[0], c[1]]);
    }
    Ok(f)
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], String> {
        let end = self.at.checked_add(n).filter(|e| *e <= self.b.len());
        let end = end.ok_or_else(|| format!("truncated at byte {}", self.at))?;
        let s = &self.b[self.at..end];
        self.at = end;
        Ok(s)
    }
    fn u32(&mut self) -> Result<u32, String> {
        let b = self.take(4)?;
        Ok(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }
    fn varint(&mut self) -> Result<u64, String> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.take(1)?[0];
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(format!("varint too long at byte {}", self.at))
    }
}

/// Approximate centre of a country (latitude, longitude), for the speed between two places.
/// Countries not listed give no speed.
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
        2001:db8::\t2001:db8:0:ffff:ffff:ffff:ffff:ffff\t64500\tDE\tV6\n";

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn finds_the_range_an_address_is_in() {
        let db = NetDb::parse(TABLE).unwrap();
        let i = db.lookup(ip("146.190.3.4")).unwrap();
        assert_eq!(
            (i.asn, i.country, i.name),
            (14061, Some(*b"NL"), "DIGITALOCEAN-ASN")
        );
        assert_eq!(db.lookup(ip("1.0.0.7")).unwrap().asn, 13335);
        assert_eq!(db.lookup(ip("146.190.127.255")).unwrap().asn, 14061);
        assert!(db.lookup(ip("1.0.1.0")).is_none(), "just past a range");
        assert!(db.lookup(ip("0.9.9.9")).is_none(), "before every range");
        assert!(db.lookup(ip("5.1.1.1")).is_none(), "unrouted");
        assert!(db.lookup(ip("200.1.1.1")).is_none(), "after every range");
        assert_eq!(db.lookup(ip("2001:db8::1")).unwrap().asn, 64500);
        assert_eq!(db.lookup(ip("::ffff:1.0.0.9")).unwrap().asn, 13335);
        assert!(db.lookup(ip("2001:db8:1::1")).is_none());
    }

    #[test]
    fn the_prefix_index_finds_what_a_search_of_the_whole_table_finds() {
        let db = NetDb::builtin();
        let v4 = &db.v4;
        let mut rng = cloudsentinel_core::rng::Rng::new(7);
        let mut probes: Vec<u32> = (0..200_000).map(|_| rng.next_u64() as u32).collect();
        for &s in v4.starts.iter().step_by(5) {
            probes.extend([s, s.wrapping_sub(1), s.wrapping_add(1)]);
        }
        probes.extend([0, 1, 0xffff, 0x1_0000, u32::MAX - 1, u32::MAX]);
        for a in probes {
            assert_eq!(v4.find_v4(a), v4.find(a), "{}", std::net::Ipv4Addr::from(a));
        }
        let empty = NetDb::default();
        assert!(empty.lookup(ip("1.2.3.4")).is_none());
    }

    #[test]
    fn a_bad_line_is_named() {
        let e = NetDb::parse("1.0.0.0\t1.0.0.255\tAS1\tUS\tX\n").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(e.message.contains("AS1"), "{e}");
        let e = NetDb::parse("\nnot-an-ip\t1.0.0.255\t1\tUS\tX\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = NetDb::parse("1.0.0.9\t1.0.0.1\t1\tUS\tX\n").unwrap_err();
        assert!(e.message.contains("not a range"), "{e}");
    }

    /// Well-known, long-stable allocations, to show the shipped table decodes to real data.
    #[test]
    fn the_shipped_table_places_well_known_networks() {
        let db = NetDb::builtin();
        assert!(db.len() > 500_000, "{} ranges", db.len());
        let cases = [
            ("8.8.8.8", 15169, "US"),      // Google Public DNS
            ("1.1.1.1", 13335, "AU"),      // Cloudflare (APNIC-registered range)
            ("52.94.76.1", 16509, "US"),   // AWS us-east-1
            ("2600:1f18::1", 14618, "US"), // AWS us-east-1 IPv6
            ("2001:4860:4860::8888", 15169, "US"),
        ];
        for (addr, asn, country) in cases {
            let i = db
                .lookup(ip(addr))
                .unwrap_or_else(|| panic!("{addr} not found"));
            assert_eq!(i.asn, asn, "{addr}: {i:?}");
            assert_eq!(
                i.country,
                Some(*country.as_bytes().first_chunk().unwrap()),
                "{addr}"
            );
            assert!(!i.name.is_empty(), "{addr} has a name");
        }
        for unrouted in ["10.1.2.3", "127.0.0.1", "fd00::1"] {
            assert!(db.lookup(ip(unrouted)).is_none(), "{unrouted}");
        }
    }

    #[test]
    fn distances_are_roughly_right() {
        let d = distance_km(centroid(*b"DE").unwrap(), centroid(*b"US").unwrap());
        assert!((7000.0..9000.0).contains(&d), "{d}");
        assert!(distance_km((1.0, 1.0), (1.0, 1.0)) < 1e-9);
    }
}
