//! The S3 calls a collector makes: list a prefix (`s3:ListBucket`) and read an object
//! (`s3:GetObject`).

use chrono::{DateTime, Utc};

use super::{Aws, AwsError, Call, sigv4::uri_encode};
use crate::xml;

/// An object in a listing.
#[derive(Debug, Clone, PartialEq)]
pub struct Object {
    pub key: String,
    pub size: u64,
    pub last_modified: Option<DateTime<Utc>>,
}

/// One page of a listing.
#[derive(Debug, Default)]
pub struct Listing {
    pub objects: Vec<Object>,
    /// With a delimiter: the "folders" under the prefix.
    pub prefixes: Vec<String>,
    /// Where the next page starts, when there is one.
    pub next: Option<String>,
}

impl Aws {
    /// Where a bucket's objects are: virtual-hosted style on AWS, path style on an endpoint
    /// (emulators) and for bucket names with dots (TLS names cannot hold them).
    fn bucket_origin_and_path(&self, bucket: &str, key: &str) -> (String, String) {
        let key = uri_encode(key, false);
        match &self.config.endpoint_url {
            None if !bucket.contains('.') => (
                format!("https://{bucket}.s3.{}.amazonaws.com", self.config.region),
                format!("/{key}"),
            ),
            _ => (self.origin("s3"), format!("/{bucket}/{key}")),
        }
    }

    /// One page (up to 1,000 keys) of `ListObjectsV2` under `prefix`.
    pub fn list_objects(
        &self,
        bucket: &str,
        prefix: &str,
        delimiter: Option<&str>,
        continuation: Option<&str>,
    ) -> Result<Listing, AwsError> {
        let (origin, path) = self.bucket_origin_and_path(bucket, "");
        let mut query = vec![
            ("list-type".to_string(), "2".to_string()),
            ("prefix".to_string(), prefix.to_string()),
        ];
        if let Some(d) = delimiter {
            query.push(("delimiter".into(), d.into()));
        }
        if let Some(c) = continuation {
            query.push(("continuation-token".into(), c.into()));
        }
        let resp = self.send(Call {
            service: "s3",
            operation: "ListObjectsV2",
            method: "GET",
            origin,
            path,
            query,
            headers: Vec::new(),
            body: b"",
            limit: 16 * 1024 * 1024,
        })?;
        parse_listing(&String::from_utf8_lossy(&resp.body)).map_err(|message| AwsError::Answer {
            service: "s3",
            operation: "ListObjectsV2",
            message,
        })
    }

    /// Every key under `prefix`, all pages.
    pub fn list_all(&self, bucket: &str, prefix: &str) -> Result<Vec<Object>, AwsError> {
        let mut out = Vec::new();
        let mut next = None;
        loop {
            let page = self.list_objects(bucket, prefix, None, next.as_deref())?;
            out.extend(page.objects);
            match page.next {
                Some(n) => next = Some(n),
                None => return Ok(out),
            }
        }
    }

    /// An object's bytes, refusing one larger than `max_bytes`.
    pub fn get_object(&self, bucket: &str, key: &str, max_bytes: u64) -> Result<Vec<u8>, AwsError> {
        let (origin, path) = self.bucket_origin_and_path(bucket, key);
        let resp = self.send(Call {
            service: "s3",
            operation: "GetObject",
            method: "GET",
            origin,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body: b"",
            limit: max_bytes,
        })?;
        Ok(resp.body)
    }

    /// Writes an object (tests and tools; the collector never writes).
    pub fn put_object(&self, bucket: &str, key: &str, body: &[u8]) -> Result<(), AwsError> {
        let (origin, path) = self.bucket_origin_and_path(bucket, key);
        self.send(Call {
            service: "s3",
            operation: "PutObject",
            method: "PUT",
            origin,
            path,
            query: Vec::new(),
            headers: Vec::new(),
            body,
            limit: 64 * 1024,
        })?;
        Ok(())
    }
}

fn parse_listing(text: &str) -> Result<Listing, String> {
    let leaves = xml::leaves(text)?;
    let mut listing = Listing::default();
    let mut truncated = false;
    for (path, value) in &leaves {
        match path.rsplit_once("ListBucketResult/").map(|(_, p)| p) {
            Some("Contents/Key") => listing.objects.push(Object {
                key: value.clone(),
                size: 0,
                last_modified: None,
            }),
            Some("Contents/Size") => {
                if let Some(o) = listing.objects.last_mut() {
                    o.size = value.parse().unwrap_or(0);
                }
            }
            Some("Contents/LastModified") => {
                if let Some(o) = listing.objects.last_mut() {
                    o.last_modified = DateTime::parse_from_rfc3339(value)
                        .ok()
                        .map(|t| t.with_timezone(&Utc));
                }
            }
            Some("CommonPrefixes/Prefix") => listing.prefixes.push(value.clone()),
            Some("IsTruncated") => truncated = value == "true",
            Some("NextContinuationToken") => listing.next = Some(value.clone()),
            _ => {}
        }
    }
    if !truncated {
        listing.next = None;
    } else if listing.next.is_none() {
        return Err("a truncated listing without NextContinuationToken".into());
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_give_keys_sizes_prefixes_and_the_next_page() {
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>trail</Name><Prefix>AWSLogs/</Prefix>
<KeyCount>2</KeyCount><MaxKeys>1000</MaxKeys><IsTruncated>true</IsTruncated><NextContinuationToken>abc=</NextContinuationToken>
<Contents><Key>AWSLogs/1/CloudTrail/eu-west-1/2026/11/20/1_CloudTrail_eu-west-1_20261120T1000Z_x.json.gz</Key>
<LastModified>2026-11-20T10:05:00.000Z</LastModified><ETag>&quot;e&quot;</ETag><Size>1234</Size><StorageClass>STANDARD</StorageClass></Contents>
<CommonPrefixes><Prefix>AWSLogs/2/</Prefix></CommonPrefixes></ListBucketResult>"#;
        let l = parse_listing(doc).unwrap();
        assert_eq!(l.objects.len(), 1);
        assert_eq!(l.objects[0].size, 1234);
        assert!(l.objects[0].key.ends_with("_x.json.gz"));
        assert!(l.objects[0].last_modified.is_some());
        assert_eq!(l.prefixes, ["AWSLogs/2/"]);
        assert_eq!(l.next.as_deref(), Some("abc="));
    }
}
