//! The simulated organisation's address plan as an IP-to-AS table (the iptoasn.com TSV format
//! `cloudsentinel_context::netdb` reads), so the demo can place addresses by network and country:
//! offices, people's home networks, the CI runners and cloud services, and the hosting networks
//! the attack stories come from. The AS numbers are those of real networks of the kind, the
//! assignment of the simulation's addresses to them is made up.

use crate::org;

/// (prefix, AS, country, description); a prefix is a /16 (two octets) or /24 (three).
fn fixed() -> Vec<(String, u32, &'static str, &'static str)> {
    let mut v: Vec<(String, u32, &str, &str)> = vec![
        (
            slash24(org::BERLIN_OFFICE),
            3320,
            "DE",
            "DTAG Deutsche Telekom AG (Berlin office)",
        ),
        (
            slash24(org::LONDON_OFFICE),
            2856,
            "GB",
            "BT-UK-AS British Telecommunications (London office)",
        ),
        (
            slash24(org::SF_OFFICE),
            7018,
            "US",
            "ATT-INTERNET4 AT&T (San Francisco office)",
        ),
        (
            slash24(crate::stories::LEAK_IP),
            20473,
            "US",
            "AS-CHOOPA Vultr",
        ),
        (
            slash24(crate::stories::SPRAY_IP),
            211252,
            "NL",
            "Delis LLC hosting",
        ),
        (
            slash24(crate::stories::GCP_ATTACK_IP),
            14061,
            "SG",
            "DIGITALOCEAN-ASN",
        ),
        (
            slash24(crate::azure::BUILD_SERVER_IP),
            8075,
            "NL",
            "MICROSOFT-CORP Azure (West Europe)",
        ),
        (
            slash24(crate::gcp::LOOKER_IP),
            396982,
            "BE",
            "GOOGLE-CLOUD-PLATFORM (europe-west1)",
        ),
        ("52.16".into(), 16509, "IE", "AMAZON-02 (eu-west-1)"),
        ("34.248".into(), 16509, "IE", "AMAZON-02 (eu-west-1)"),
    ];
    for p in org::RUNNER_PREFIXES {
        v.push((
            p.to_string(),
            8075,
            "US",
            "MICROSOFT-CORP GitHub Actions runners",
        ));
    }
    const HOSTING: &[(&str, u32, &str, &str)] = &[
        ("45.77", 20473, "NL", "AS-CHOOPA Vultr"),
        ("139.59", 14061, "SG", "DIGITALOCEAN-ASN"),
        ("164.90", 14061, "US", "DIGITALOCEAN-ASN"),
        ("51.15", 16276, "GB", "OVH SAS"),
        ("5.161", 24940, "DE", "HETZNER-AS"),
        ("95.216", 24940, "DE", "HETZNER-AS"),
        ("116.203", 24940, "DE", "HETZNER-AS"),
        ("172.105", 63949, "JP", "AKAMAI-LINODE-AP"),
        ("45.79", 63949, "US", "AKAMAI-LINODE"),
        ("103.152", 135377, "HK", "UCLOUD hosting"),
        ("194.87", 48282, "RU", "VDSINA hosting"),
        ("91.219", 49505, "RU", "SELECTEL"),
        ("193.149", 9009, "GB", "M247 Europe"),
        ("198.98", 53667, "US", "PONYNET FranTech"),
        ("207.148", 20473, "US", "AS-CHOOPA Vultr"),
        ("66.42", 20473, "US", "AS-CHOOPA Vultr"),
        ("157.245", 14061, "IN", "DIGITALOCEAN-ASN"),
        ("178.128", 14061, "SG", "DIGITALOCEAN-ASN"),
        ("188.166", 14061, "NL", "DIGITALOCEAN-ASN"),
        ("209.97", 14061, "US", "DIGITALOCEAN-ASN"),
        ("46.101", 14061, "GB", "DIGITALOCEAN-ASN"),
        ("128.199", 14061, "SG", "DIGITALOCEAN-ASN"),
        ("134.209", 14061, "US", "DIGITALOCEAN-ASN"),
        ("37.120", 9009, "RO", "M247 Europe"),
        ("89.40", 9009, "DE", "M247 Europe"),
        ("141.98", 9009, "NL", "M247 Europe"),
        ("185.243", 9009, "SE", "M247 Europe"),
    ];
    for (p, asn, cc, name) in HOSTING {
        v.push((p.to_string(), *asn, cc, name));
    }
    v
}

fn slash24(ip: &str) -> String {
    ip.rsplit_once('.')
        .map(|(p, _)| p.to_string())
        .unwrap_or_default()
}

/// Home broadband networks by country (AS, description).
fn residential(country: &str) -> (u32, &'static str) {
    match country {
        "US" => (7922, "COMCAST-7922 residential"),
        "GB" => (2856, "BT-UK-AS residential"),
        "DE" => (3209, "VODANET Vodafone residential"),
        "JP" => (4713, "OCN NTT residential"),
        "ES" => (3352, "TELEFONICA_DE_ESPANA residential"),
        "SE" => (3301, "TELIANET-SWEDEN residential"),
        "FR" => (3215, "Orange residential"),
        "NL" => (1136, "KPN residential"),
        _ => (64512, "residential broadband"),
    }
}

/// The table, one range per line, sorted by address.
pub fn table() -> String {
    let mut rows: Vec<(u32, String)> = Vec::new();
    let mut push = |prefix: &str, asn: u32, cc: &str, name: &str| {
        let octets: Vec<u32> = prefix.split('.').filter_map(|o| o.parse().ok()).collect();
        let (start, end) = match octets[..] {
            [a, b] => (format!("{a}.{b}.0.0"), format!("{a}.{b}.255.255")),
            [a, b, c] => (format!("{a}.{b}.{c}.0"), format!("{a}.{b}.{c}.255")),
            _ => return,
        };
        let key = octets.iter().fold(0u32, |k, o| (k << 8) | o) << (8 * (4 - octets.len()));
        rows.push((key, format!("{start}\t{end}\t{asn}\t{cc}\t{name}")));
    };
    for (prefix, asn, cc, name) in fixed() {
        push(&prefix, asn, cc, name);
    }
    for p in org::PEOPLE {
        let (asn, name) = residential(p.country);
        push(&slash24(p.home_ip), asn, p.country, name);
    }
    rows.sort();
    rows.dedup_by(|a, b| a.0 == b.0);
    let mut out = String::from(
        "# The demo organisation's address plan (cloudsentinel demo): start\tend\tAS\tcountry\tname\n",
    );
    for (_, line) in rows {
        out.push_str(&line);
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_address_the_scenario_uses_is_placed_once() {
        let t = table();
        let db = parse_lines(&t);
        for p in org::PEOPLE {
            assert!(
                db.iter()
                    .any(|(s, e, cc)| in_range(p.home_ip, *s, *e) && cc == p.country),
                "{}",
                p.home_ip
            );
        }
        for ip in [
            crate::stories::LEAK_IP,
            crate::stories::SPRAY_IP,
            org::BERLIN_OFFICE,
            "45.77.175.196",
        ] {
            assert_eq!(
                db.iter().filter(|(s, e, _)| in_range(ip, *s, *e)).count(),
                1,
                "{ip}"
            );
        }
    }

    fn ip(s: &str) -> u32 {
        s.parse::<std::net::Ipv4Addr>().map(u32::from).unwrap()
    }

    fn in_range(a: &str, s: u32, e: u32) -> bool {
        (s..=e).contains(&ip(a))
    }

    /// (start, end, country) of each line.
    fn parse_lines(t: &str) -> Vec<(u32, u32, String)> {
        t.lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let c: Vec<&str> = l.split('\t').collect();
                assert_eq!(c.len(), 5, "{l}");
                (ip(c[0]), ip(c[1]), c[3].to_string())
            })
            .collect()
    }
}
