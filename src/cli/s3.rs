//! `hunt s3://bucket/prefix`: the objects of a trail's bucket, listed and read directly.
//!
//! With `--since`/`--until` the listing does not walk the whole bucket: it descends the key
//! layout (`AWSLogs/[o-org/]<account>/CloudTrail/<region>/YYYY/MM/DD/`) one level at a time and,
//! once it reaches the year folders, lists only the days of the range. Objects are then kept
//! when the time in their name (the delivery time) falls in the range, and read in time order.

use std::path::Path;

use chrono::{DateTime, Datelike, Duration, NaiveDate, Utc};
use cloudsentinel_cloud::aws::notification::is_digest;
use cloudsentinel_cloud::aws::{Aws, AwsError};
use cloudsentinel_ingest::time_in_name;

/// An object to read.
#[derive(Debug, Clone)]
pub struct RemoteObject {
    pub bucket: String,
    pub key: String,
    pub size: u64,
}

impl RemoteObject {
    pub fn url(&self) -> String {
        format!("s3://{}/{}", self.bucket, self.key)
    }
}

/// `s3://bucket/prefix` → (bucket, prefix).
pub fn parse_url(url: &str) -> Option<(String, String)> {
    let rest = url.strip_prefix("s3://")?;
    let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
    (!bucket.is_empty()).then(|| (bucket.to_string(), prefix.to_string()))
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 time.
pub fn parse_time(s: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        return Ok(d.and_hms_opt(0, 0, 0).expect("midnight").and_utc());
    }
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| format!("{s:?}: expected a date (2026-11-01) or an RFC 3339 time"))
}

/// Levels the listing descends at most before it lists everything below.
const MAX_DEPTH: usize = 8;

/// The objects under `prefix` whose names put them in `[since, until)`, in time order; digests
/// left out.
pub fn list(
    aws: &Aws,
    bucket: &str,
    prefix: &str,
    since: Option<DateTime<Utc>>,
    until: Option<DateTime<Utc>>,
) -> Result<Vec<RemoteObject>, AwsError> {
    let mut objects = Vec::new();
    if since.is_none() && until.is_none() {
        objects = aws.list_all(bucket, prefix)?;
    } else {
        let first = since.unwrap_or(DateTime::<Utc>::MIN_UTC);
        let last = until.unwrap_or_else(Utc::now);
        walk(aws, bucket, prefix, first, last, 0, &mut objects)?;
    }
    // Names carry the time as YYYYMMDDHHMM digits.
    let digits =
        |t: DateTime<Utc>| -> u64 { t.format("%Y%m%d%H%M").to_string().parse().expect("digits") };
    let in_range = |key: &str| match time_in_name(Path::new(key)) {
        Some(t) => since.is_none_or(|s| t >= digits(s)) && until.is_none_or(|u| t < digits(u)),
        // A name without a time: kept when no range is asked for.
        None => since.is_none() && until.is_none(),
    };
    let mut out: Vec<RemoteObject> = objects
        .into_iter()
        .filter(|o| !is_digest(&o.key) && !o.key.ends_with('/') && in_range(&o.key))
        .map(|o| RemoteObject {
            bucket: bucket.to_string(),
            key: o.key,
            size: o.size,
        })
        .collect();
    out.sort_by_cached_key(|o| (time_in_name(Path::new(&o.key)), o.key.clone()));
    Ok(out)
}

/// Descends folder by folder; at a level of year folders, lists only the range's days.
fn walk(
    aws: &Aws,
    bucket: &str,
    prefix: &str,
    first: DateTime<Utc>,
    last: DateTime<Utc>,
    depth: usize,
    out: &mut Vec<cloudsentinel_cloud::aws::s3::Object>,
) -> Result<(), AwsError> {
    if depth >= MAX_DEPTH {
        out.extend(aws.list_all(bucket, prefix)?);
        return Ok(());
    }
    let mut next = None;
    loop {
        let page = aws.list_objects(bucket, prefix, Some("/"), next.as_deref())?;
        out.extend(page.objects);
        for p in &page.prefixes {
            let segment = p.trim_end_matches('/').rsplit('/').next().unwrap_or("");
            if segment == "CloudTrail-Digest" {
                continue;
            }
            match segment.parse::<i32>() {
                Ok(year) if segment.len() == 4 => {
                    if year < first.date_naive().year() || year > last.date_naive().year() {
                        continue;
                    }
                    let mut day = first
                        .date_naive()
                        .max(NaiveDate::from_ymd_opt(year, 1, 1).expect("January the first"));
                    let end = last.date_naive();
                    while day <= end && day.format("%Y").to_string() == segment {
                        let day_prefix = format!("{p}{}/", day.format("%m/%d"));
                        out.extend(aws.list_all(bucket, &day_prefix)?);
                        day += Duration::days(1);
                    }
                }
                _ => walk(aws, bucket, p, first, last, depth + 1, out)?,
            }
        }
        match page.next {
            Some(n) => next = Some(n),
            None => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_times_parse() {
        assert_eq!(
            parse_url("s3://trail/AWSLogs/1/"),
            Some(("trail".into(), "AWSLogs/1/".into()))
        );
        assert_eq!(parse_url("s3://trail"), Some(("trail".into(), "".into())));
        assert_eq!(parse_url("s3:///x"), None);
        assert_eq!(parse_url("/tmp/x"), None);
        assert_eq!(
            parse_time("2026-11-01").unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(parse_time("2026-11-01T10:00:00Z").is_ok());
        assert!(parse_time("yesterday").is_err());
    }
}
