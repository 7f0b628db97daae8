//! Which cloud's address space an address is in.
//!
//! The providers publish their ranges: AWS's `ip-ranges.json`
//! (<https://ip-ranges.amazonaws.com/ip-ranges.json>), Azure's service tags
//! (`ServiceTags_Public_*.json` from the Microsoft download centre) and Google Cloud's
//! `cloud.json` (<https://www.gstatic.com/ipranges/cloud.json>). Nothing is downloaded: the
//! operator names copies (`detection.cloud_ranges`, `hunt --cloud-ranges`) and the format is
//! recognised from the content. For a provider without a file, its AS numbers stand in: the
//! shipped AS table places every address the provider announces, which includes the ranges above
//! (and, for Microsoft and Google, their other services: a coarser answer, said so here).

use std::net::IpAddr;
use std::path::Path;

use cloudsentinel_core::Provider;
use serde_json::Value;

/// AS numbers the providers announce their cloud ranges from.
const AWS_ASNS: &[u32] = &[16509, 14618, 8987, 7224, 38895, 39111, 10124, 135630, 17493];
const AZURE_ASNS: &[u32] = &[8075, 8068, 8069, 12076];
const GCP_ASNS: &[u32] = &[396982, 15169, 19527, 139070, 139190];

/// The provider an AS belongs to, from the lists above.
pub fn provider_of_asn(asn: u32) -> Option<Provider> {
    if AWS_ASNS.contains(&asn) {
        Some(Provider::Aws)
    } else if AZURE_ASNS.contains(&asn) {
        Some(Provider::Azure)
    } else if GCP_ASNS.contains(&asn) {
        Some(Provider::Gcp)
    } else {
        None
    }
}

/// Published ranges of the providers whose files were given.
#[derive(Debug, Clone, Default)]
pub struct CloudRanges {
    /// (first, last, provider), IPv4 mapped into IPv6 space, sorted by first address.
    ranges: Vec<(u128, u128, Provider)>,
    /// Providers with a file: for them the ranges decide, not the AS numbers.
    covered: Vec<Provider>,
}

/// A ranges file that could not be read.
#[derive(Debug, thiserror::Error)]
pub enum RangesError {
    #[error("{path}: {message}")]
    Read { path: String, message: String },
}

impl CloudRanges {
    /// Reads one provider's file and adds its ranges.
    pub fn add_file(&mut self, path: &Path) -> Result<Provider, RangesError> {
        let fail = |message: String| RangesError::Read {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let doc: Value = serde_json::from_slice(&text).map_err(|e| fail(e.to_string()))?;
        self.add_document(&doc).map_err(fail)
    }

    /// Adds the ranges of one provider's document, recognised from its shape.
    pub fn add_document(&mut self, doc: &Value) -> Result<Provider, String> {
        let (provider, prefixes) = if doc.get("prefixes").is_some()
            && (doc.get("createDate").is_some() || doc.get("ipv6_prefixes").is_some())
        {
            // AWS: prefixes[].ip_prefix, ipv6_prefixes[].ipv6_prefix
            let mut p = strings(&doc["prefixes"], "ip_prefix");
            p.extend(strings(&doc["ipv6_prefixes"], "ipv6_prefix"));
            (Provider::Aws, p)
        } else if doc.get("values").is_some() && doc.get("cloud").is_some() {
            // Azure service tags: values[].properties.addressPrefixes[]
            let mut p = Vec::new();
            for v in doc["values"].as_array().into_iter().flatten() {
                for a in v["properties"]["addressPrefixes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                {
                    p.extend(a.as_str().map(str::to_string));
                }
            }
            (Provider::Azure, p)
        } else if doc.get("prefixes").is_some() && doc.get("creationTime").is_some() {
            // GCP cloud.json: prefixes[].ipv4Prefix / ipv6Prefix
            let mut p = strings(&doc["prefixes"], "ipv4Prefix");
            p.extend(strings(&doc["prefixes"], "ipv6Prefix"));
            (Provider::Gcp, p)
        } else {
            return Err("not AWS ip-ranges.json, Azure service tags or GCP cloud.json".into());
        };
        if prefixes.is_empty() {
            return Err(format!("no {} prefixes in the file", provider.as_str()));
        }
        for p in &prefixes {
            let (first, last) = cidr(p).ok_or_else(|| format!("`{p}` is not a CIDR prefix"))?;
            self.ranges.push((first, last, provider));
        }
        self.ranges.sort_by_key(|r| r.0);
        if !self.covered.contains(&provider) {
            self.covered.push(provider);
        }
        Ok(provider)
    }

    /// The provider whose published range holds the address, if a file was given for it.
    fn provider_of(&self, ip: IpAddr) -> Option<Provider> {
        let a = as_v6(ip);
        // Ranges may nest (a /16 and a /24 inside it): look back over every range that starts
        // at or before the address until one holds it.
        let end = self.ranges.partition_point(|r| r.0 <= a);
        self.ranges[..end]
            .iter()
            .rev()
            .find(|r| r.1 >= a)
            .map(|r| r.2)
    }

    /// Whether the address is in a cloud's address space: the published ranges of a provider
    /// with a file decide for it; the AS numbers decide for the others.
    pub fn classify(&self, ip: IpAddr, asn: Option<u32>) -> Option<Provider> {
        if let Some(p) = self.provider_of(ip) {
            return Some(p);
        }
        let p = provider_of_asn(asn?)?;
        (!self.covered.contains(&p)).then_some(p)
    }

    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }
}

fn strings(list: &Value, key: &str) -> Vec<String> {
    list.as_array()
        .into_iter()
        .flatten()
        .filter_map(|v| v[key].as_str().map(str::to_string))
        .collect()
}

fn as_v6(ip: IpAddr) -> u128 {
    match ip {
        IpAddr::V4(v4) => u128::from(v4.to_ipv6_mapped()),
        IpAddr::V6(v6) => u128::from(v6),
    }
}

/// First and last address of a CIDR prefix, in IPv6 space.
fn cidr(p: &str) -> Option<(u128, u128)> {
    let (addr, len) = p.split_once('/')?;
    let ip: IpAddr = addr.parse().ok()?;
    let len: u32 = len.parse().ok()?;
    // In IPv6 space an IPv4 prefix is 96 bits longer.
    let len = match ip {
        IpAddr::V4(_) if len <= 32 => len + 96,
        IpAddr::V6(_) if len <= 128 => len,
        _ => return None,
    };
    let first = as_v6(ip);
    let host = if len == 0 {
        u128::MAX
    } else {
        u128::MAX >> len
    };
    Some((first & !host, (first & !host) | host))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn reads_each_providers_file_and_prefers_it_to_as_numbers() {
        let mut r = CloudRanges::default();
        let aws = json!({"syncToken": "1", "createDate": "x",
            "prefixes": [{"ip_prefix": "3.5.140.0/22", "region": "ap-northeast-2", "service": "AMAZON"},
                         {"ip_prefix": "3.5.140.0/24", "region": "ap-northeast-2", "service": "S3"}],
            "ipv6_prefixes": [{"ipv6_prefix": "2600:1f18::/33", "region": "us-east-1", "service": "AMAZON"}]});
        let azure = json!({"changeNumber": 1, "cloud": "Public",
            "values": [{"name": "AzureCloud", "properties": {"addressPrefixes": ["20.190.128.0/18"]}}]});
        let gcp = json!({"syncToken": "1", "creationTime": "x",
            "prefixes": [{"ipv4Prefix": "34.1.208.0/20", "service": "Google Cloud"}]});
        assert_eq!(r.add_document(&aws).unwrap(), Provider::Aws);
        assert_eq!(r.add_document(&azure).unwrap(), Provider::Azure);
        assert_eq!(r.add_document(&gcp).unwrap(), Provider::Gcp);
        assert_eq!(r.classify(ip("3.5.141.9"), None), Some(Provider::Aws));
        assert_eq!(
            r.classify(ip("3.5.140.9"), None),
            Some(Provider::Aws),
            "nested"
        );
        assert_eq!(r.classify(ip("2600:1f18::5"), None), Some(Provider::Aws));
        assert_eq!(r.classify(ip("20.190.130.1"), None), Some(Provider::Azure));
        assert_eq!(r.classify(ip("34.1.210.1"), None), Some(Provider::Gcp));
        // With a file for AWS, an address AWS announces but does not list is not AWS's cloud.
        assert_eq!(r.classify(ip("3.5.144.1"), Some(16509)), None);
        assert_eq!(r.classify(ip("8.8.8.8"), Some(13335)), None);
        assert!(r.add_document(&json!({"a": 1})).is_err());
        let bad = json!({"syncToken": "1", "createDate": "x", "prefixes": [{"ip_prefix": "3.5.140.0/40"}], "ipv6_prefixes": []});
        assert!(r.add_document(&bad).unwrap_err().contains("3.5.140.0/40"));
    }

    #[test]
    fn without_files_the_as_numbers_decide() {
        let r = CloudRanges::default();
        assert_eq!(
            r.classify(ip("52.94.76.1"), Some(16509)),
            Some(Provider::Aws)
        );
        assert_eq!(
            r.classify(ip("20.190.128.1"), Some(8075)),
            Some(Provider::Azure)
        );
        assert_eq!(
            r.classify(ip("34.120.0.1"), Some(396982)),
            Some(Provider::Gcp)
        );
        assert_eq!(r.classify(ip("1.1.1.1"), Some(13335)), None);
        assert_eq!(r.classify(ip("10.0.0.1"), None), None);
    }
}
