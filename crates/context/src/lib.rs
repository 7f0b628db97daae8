//! Enrichment: what the world knows about an event's source address.
//!
//! [`NetContext`] puts an AS number, AS name, country and "cloud provider address" on every
//! [`Event`] with an IP address ([`Event::network`]), offline: the IP-to-AS and IP-to-country
//! table ships inside the binary ([`netdb::NetDb::builtin`]), and the cloud providers' published
//! ranges are read from files the operator names ([`cloud::CloudRanges`]), with the providers'
//! AS numbers standing in when there are none. Rules read the result as the fields
//! `cloudsentinel.source.asn`, `.as_name`, `.country` and `.cloud`; the behavioural detectors
//! use it for "new AS", "new country" and travel speed.
//!
//! ```
//! use cloudsentinel_context::NetContext;
//! let ctx = NetContext::builtin();
//! let n = ctx.network("52.94.76.1").unwrap();
//! assert_eq!(n.asn, Some(16509));
//! assert_eq!(n.cloud, Some(cloudsentinel_core::Provider::Aws));
//! assert!(ctx.network("10.0.0.1").is_none());
//! ```

pub mod cloud;
pub mod netdb;

use std::net::IpAddr;
use std::sync::Arc;

use cloudsentinel_core::{Country, Event, Network};

pub use cloud::CloudRanges;
pub use netdb::NetDb;

/// The address tables one process enriches with.
#[derive(Debug, Clone)]
pub struct NetContext {
    db: Arc<NetDb>,
    ranges: Arc<CloudRanges>,
}

impl NetContext {
    /// The shipped table, no ranges files: the default.
    pub fn builtin() -> NetContext {
        NetContext::new(NetDb::builtin(), CloudRanges::default())
    }

    pub fn new(db: Arc<NetDb>, ranges: CloudRanges) -> NetContext {
        NetContext {
            db,
            ranges: Arc::new(ranges),
        }
    }

    pub fn db(&self) -> &Arc<NetDb> {
        &self.db
    }

    /// What is known about an address; `None` for text that is not an address (AWS writes a
    /// service's host name, e.g. `ec2.amazonaws.com`) and for private or unrouted addresses.
    pub fn network(&self, addr: &str) -> Option<Network> {
        let ip: IpAddr = addr.trim().parse().ok()?;
        if !is_public(ip) {
            return None;
        }
        let info = self.db.lookup(ip);
        let asn = info.map(|i| i.asn).filter(|a| *a != 0);
        let cloud = self.ranges.classify(ip, asn);
        if info.is_none() && cloud.is_none() {
            return None;
        }
        Some(Network {
            asn,
            as_name: asn.and_then(|a| self.db.name(a)).cloned(),
            country: info.and_then(|i| i.country).and_then(|c| Country::new(&c)),
            cloud,
        })
    }

    /// Sets [`Event::network`] from the event's source address.
    pub fn enrich(&self, event: &mut Event) {
        event.network = event.source_ip.as_deref().and_then(|ip| self.network(ip));
    }
}

/// Whether an address can be on the internet: not private, loopback, link-local, shared
/// (carrier-grade NAT), documentation, multicast or otherwise reserved. Whois-derived country
/// data places some of these (192.168.0.0/16 in "AU"), so they are decided here, not by the table.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            !(v4.is_private()
                || v4.is_loopback()
                || v4.is_link_local()
                || v4.is_multicast()
                || v4.is_broadcast()
                || v4.is_documentation()
                || v4.is_unspecified()
                || o[0] == 0
                || o[0] >= 240
                || (o[0] == 100 && (64..128).contains(&o[1]))
                || (o[0] == 192 && o[1] == 0 && o[2] == 0)
                || (o[0] == 198 && (18..20).contains(&o[1])))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_public(IpAddr::V4(v4));
            }
            let s = v6.segments();
            !(v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00
                || (s[0] & 0xffc0) == 0xfe80
                || (s[0] == 0x2001 && s[1] == 0x0db8))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudsentinel_core::Provider;

    #[test]
    fn names_the_network_of_public_addresses_only() {
        let ctx = NetContext::builtin();
        let n = ctx.network("8.8.8.8").unwrap();
        assert_eq!(n.asn, Some(15169));
        assert_eq!(n.country.map(|c| c.to_string()).as_deref(), Some("US"));
        assert_eq!(n.cloud, Some(Provider::Gcp));
        assert!(n.as_name.unwrap().contains("Google"));
        let n = ctx.network("1.1.1.1").unwrap();
        assert_eq!((n.asn, n.cloud), (Some(13335), None));
        for not_public in [
            "10.1.2.3",
            "192.168.0.1",
            "100.64.1.1",
            "fd00::1",
            "ec2.amazonaws.com",
            "AWS Internal",
            "",
            "::1",
        ] {
            assert!(ctx.network(not_public).is_none(), "{not_public}");
        }
    }

    /// What enrichment costs per event: `cargo test -p cloudsentinel-context --release --
    /// --ignored --nocapture enrich_timing` (a timing, so not a pass/fail test).
    #[test]
    #[ignore]
    fn enrich_timing() {
        let started = std::time::Instant::now();
        let ctx = NetContext::builtin();
        let load = started.elapsed();
        // Addresses spread over the whole space, IPv4 and some IPv6, as text (as events hold them).
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let addrs: Vec<String> = (0..200_000)
            .map(|i| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                if i % 10 == 0 {
                    std::net::Ipv6Addr::from(
                        ((0x2000u128 | (x as u128 & 0xfff)) << 112) | x as u128,
                    )
                    .to_string()
                } else {
                    std::net::Ipv4Addr::from(x as u32).to_string()
                }
            })
            .collect();
        let started = std::time::Instant::now();
        let mut found = 0usize;
        for a in &addrs {
            found += usize::from(ctx.network(a).is_some());
        }
        let per = started.elapsed().as_nanos() as f64 / addrs.len() as f64;
        println!(
            "table load {load:?}; {per:.0} ns per address (parse, lookup, cloud check, name); {found} of {} placed",
            addrs.len()
        );
    }
}
