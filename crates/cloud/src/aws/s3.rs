//! The S3 calls a collector makes: list a prefix (`s3:ListBucket`) and read an object
//! (`s3:GetObject`); and the ones containment makes: a bucket's public access block.

use base64::Engine;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

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

/// A bucket's public access block: the four settings of `PutPublicAccessBlock`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicAccessBlock {
    pub block_public_acls: bool,
    pub ignore_public_acls: bool,
    pub block_public_policy: bool,
    pub restrict_public_buckets: bool,
}

impl PublicAccessBlock {
    /// Every setting on: no public ACL or policy applies, new ones are refused.
    pub const ALL: PublicAccessBlock = PublicAccessBlock {
        block_public_acls: true,
        ignore_public_acls: true,
        block_public_policy: true,
        restrict_public_buckets: true,
    };

    /// The request body of `PutPublicAccessBlock`.
    pub fn to_xml(&self) -> String {
        format!(
            "<PublicAccessBlockConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
             <BlockPublicAcls>{}</BlockPublicAcls><IgnorePublicAcls>{}</IgnorePublicAcls>\
             <BlockPublicPolicy>{}</BlockPublicPolicy><RestrictPublicBuckets>{}</RestrictPublicBuckets>\
             </PublicAccessBlockConfiguration>",
            self.block_public_acls,
            self.ignore_public_acls,
            self.block_public_policy,
            self.restrict_public_buckets
        )
    }

    /// `BlockPublicAcls=true IgnorePublicAcls=false ...`, as plans show it.
    pub fn to_params(&self) -> [(&'static str, &'static str); 4] {
        let b = |v: bool| if v { "true" } else { "false" };
        [
            ("BlockPublicAcls", b(self.block_public_acls)),
            ("IgnorePublicAcls", b(self.ignore_public_acls)),
            ("BlockPublicPolicy", b(self.block_public_policy)),
            ("RestrictPublicBuckets", b(self.restrict_public_buckets)),
        ]
    }

    fn from_xml(text: &str) -> Result<PublicAccessBlock, String> {
        let leaves = xml::leaves(text)?;
        // A setting left out is false (S3 answers all four).
        let get =
            |name: &str| xml::first(&leaves, name).is_some_and(|v| v.eq_ignore_ascii_case("true"));
        if !leaves
            .iter()
            .any(|(p, _)| p.starts_with("PublicAccessBlockConfiguration"))
        {
            return Err("not a PublicAccessBlockConfiguration".into());
        }
        Ok(PublicAccessBlock {
            block_public_acls: get("BlockPublicAcls"),
            ignore_public_acls: get("IgnorePublicAcls"),
            block_public_policy: get("BlockPublicPolicy"),
            restrict_public_buckets: get("RestrictPublicBuckets"),
        })
    }
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

impl Aws {
    /// A bucket's public access block (`s3:GetBucketPublicAccessBlock`); `None` when it has
    /// none (S3's `NoSuchPublicAccessBlockConfiguration`).
    pub fn public_access_block(&self, bucket: &str) -> Result<Option<PublicAccessBlock>, AwsError> {
        let (origin, path) = self.bucket_origin_and_path(bucket, "");
        let resp = self.send(Call {
            service: "s3",
            operation: "GetPublicAccessBlock",
            method: "GET",
            origin,
            path,
            query: vec![("publicAccessBlock".into(), String::new())],
            headers: Vec::new(),
            body: b"",
            limit: 64 * 1024,
        });
        match resp {
            Ok(r) => PublicAccessBlock::from_xml(&String::from_utf8_lossy(&r.body))
                .map(Some)
                .map_err(|message| AwsError::Answer {
                    service: "s3",
                    operation: "GetPublicAccessBlock",
                    message,
                }),
            Err(e) if e.code() == Some("NoSuchPublicAccessBlockConfiguration") => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Sets a bucket's public access block (`s3:PutBucketPublicAccessBlock`). S3 wants a
    /// checksum of the body: `x-amz-checksum-sha256`, which it takes in place of `Content-MD5`.
    pub fn put_public_access_block(
        &self,
        bucket: &str,
        config: &PublicAccessBlock,
    ) -> Result<(), AwsError> {
        let (origin, path) = self.bucket_origin_and_path(bucket, "");
        let body = config.to_xml();
        let checksum =
            base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body.as_bytes()));
        self.send(Call {
            service: "s3",
            operation: "PutPublicAccessBlock",
            method: "PUT",
            origin,
            path,
            query: vec![("publicAccessBlock".into(), String::new())],
            headers: vec![
                ("content-type".into(), "application/xml".into()),
                ("x-amz-checksum-sha256".into(), checksum),
                ("x-amz-sdk-checksum-algorithm".into(), "SHA256".into()),
            ],
            body: body.as_bytes(),
            limit: 64 * 1024,
        })?;
        Ok(())
    }

    /// Removes a bucket's public access block (`s3:PutBucketPublicAccessBlock`).
    pub fn delete_public_access_block(&self, bucket: &str) -> Result<(), AwsError> {
        let (origin, path) = self.bucket_origin_and_path(bucket, "");
        self.send(Call {
            service: "s3",
            operation: "DeletePublicAccessBlock",
            method: "DELETE",
            origin,
            path,
            query: vec![("publicAccessBlock".into(), String::new())],
            headers: Vec::new(),
            body: b"",
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

    #[test]
    fn public_access_blocks_read_back_what_is_written() {
        let partial = PublicAccessBlock {
            block_public_acls: true,
            ignore_public_acls: false,
            block_public_policy: true,
            restrict_public_buckets: false,
        };
        assert_eq!(PublicAccessBlock::from_xml(&partial.to_xml()), Ok(partial));
        assert_eq!(
            PublicAccessBlock::from_xml(&PublicAccessBlock::ALL.to_xml()),
            Ok(PublicAccessBlock::ALL)
        );
        // S3's answer has no namespace prefix issues; missing settings are false.
        let answer = r#"<?xml version="1.0" encoding="UTF-8"?>
<PublicAccessBlockConfiguration><BlockPublicAcls>TRUE</BlockPublicAcls></PublicAccessBlockConfiguration>"#;
        let got = PublicAccessBlock::from_xml(answer).unwrap();
        assert!(got.block_public_acls && !got.ignore_public_acls);
        assert!(PublicAccessBlock::from_xml("<Error><Code>x</Code></Error>").is_err());
    }
}
