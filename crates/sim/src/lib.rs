//! The built-in demo scenario of `cloudsentinel demo`: several days of a small organisation's cloud
//! audit activity, with a few labelled attack stories woven in.
//!
//! The organisation (Ridgeline, see `org.rs`) runs three AWS accounts (prod, dev, security), an
//! Entra ID tenant with two Azure subscriptions, and two GCP projects. Its benign activity is
//! regular per principal, as real activity is: every engineer has a timezone and working hours,
//! an office and a home address, an OS and tools (console, CLI, scripts, Terraform), favourite
//! services and a pace; CI jobs run on merges and pull requests from GitHub's runners; EC2
//! instances, Lambda functions and ECS tasks call the same few APIs around the clock; AWS services
//! act on their behalf. Everything comes out in the providers' own record shapes (CloudTrail,
//! Azure diagnostic settings for the Activity Log and Entra ID, GCP Cloud Audit Logs LogEntry),
//! so the records go through the same decoders as real logs.
//!
//! Five attack stories, each by one principal in a bounded time, are spread over the last two
//! days, the latest ending a little over an hour before `end` so that a dashboard opened on the
//! scenario looks live. Each [`Story`] lists the ids of its records (the ids the decoders give
//! the events: CloudTrail `eventID`, Entra `properties.id`, Activity Log
//! `properties.eventDataId`, GCP `insertId`), so that detections can be scored against them.
//!
//! [`stealth_attacks`] writes behaviour-only attacks (stolen credentials used at night from a
//! hosting network, ordinary reads, one sensitive write) to measure the anomaly detector.
//!
//! Main types: [`SimConfig`] (seed, end, days, volume), [`generate`] -> [`Scenario`] (records
//! sorted by time, and the [`Story`] labels). The same config gives the same scenario.
//!
//! ```
//! use chrono::{TimeZone, Utc};
//! use cloudsentinel_sim::{SimConfig, generate};
//!
//! let cfg = SimConfig {
//!     end: Utc.with_ymd_and_hms(2025, 3, 14, 12, 0, 0).unwrap(),
//!     days: 1,
//!     scale: 0.2,
//!     ..SimConfig::default()
//! };
//! let scenario = generate(&cfg);
//! assert!(!scenario.records.is_empty());
//! assert!(scenario.stories.iter().all(|s| !s.event_ids.is_empty()));
//! // One compact JSON record per entry, ready to be written as JSON Lines.
//! let first: serde_json::Value = serde_json::from_str(&scenario.records[0]).unwrap();
//! assert!(first.is_object());
//! ```

use std::collections::HashSet;
use std::hash::{BuildHasherDefault, Hasher};

use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc, Weekday};
use serde_json::{Value, json};

pub use stealth::stealth_attacks;

mod aws;
mod azure;
mod cloudtrail;
mod gcp;
pub mod netdb;
mod org;
mod rng;
mod stealth;
mod stories;
mod text;

/// What to generate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The same seed gives the same scenario.
    pub seed: u64,
    /// The scenario ends here (exclusive): the latest records are just before it.
    pub end: DateTime<Utc>,
    /// How many days of activity, ending at `end` (0 is taken as 1).
    pub days: u32,
    /// Benign volume: 1.0 is the default (about 14,000 records on a weekday, 9,000 on a weekend
    /// day); 0 leaves only the attack stories, which do not scale.
    pub scale: f64,
    /// Behaviour-only attack stories ([`stealth_attacks`]) to weave into the last two days as
    /// well (0 by default).
    pub stealth: usize,
}

impl Default for SimConfig {
    /// Seed 7, four days ending now (rounded down to the minute), default volume.
    fn default() -> SimConfig {
        let now = Utc::now();
        let end = now
            .with_second(0)
            .and_then(|t| t.with_nanosecond(0))
            .unwrap_or(now);
        SimConfig {
            seed: 7,
            end,
            days: 4,
            scale: 1.0,
            stealth: 0,
        }
    }
}

/// A generated scenario.
#[derive(Debug, Clone)]
pub struct Scenario {
    /// One compact JSON record per entry (CloudTrail, Azure diagnostic-settings or GCP LogEntry),
    /// sorted by event time.
    pub records: Vec<String>,
    /// The event time of each record.
    pub times: Vec<DateTime<Utc>>,
    /// The attack stories woven in.
    pub stories: Vec<Story>,
}

impl Scenario {
    /// The records as JSON Lines.
    pub fn jsonl(&self) -> String {
        let mut out = String::with_capacity(self.records.iter().map(|r| r.len() + 1).sum());
        for r in &self.records {
            out.push_str(r);
            out.push('\n');
        }
        out
    }
}

/// One labelled attack story.
#[derive(Debug, Clone, PartialEq)]
pub struct Story {
    /// Short identifier (`aws-leaked-access-key`).
    pub name: String,
    /// What happens, in a few sentences.
    pub summary: String,
    /// `aws`, `azure` or `gcp`.
    pub provider: &'static str,
    /// The principal the story is about (an ARN, a user principal name, an email).
    pub principal: String,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// MITRE ATT&CK technique ids (`T1078.004`).
    pub techniques: Vec<String>,
    /// Ids of the records that belong to the attack, as the decoders read them.
    pub event_ids: Vec<String>,
}

impl Story {
    /// The story as a JSON object (for a labels file).
    pub fn to_json(&self) -> Value {
        json!({
            "name": self.name,
            "summary": self.summary,
            "provider": self.provider,
            "principal": self.principal,
            "start": self.start.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "end": self.end.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            "techniques": self.techniques,
            "event_ids": self.event_ids,
        })
    }
}

/// Generates the scenario.
pub fn generate(cfg: &SimConfig) -> Scenario {
    let days = i64::from(cfg.days.max(1));
    let scale = if cfg.scale.is_finite() {
        cfg.scale.max(0.0)
    } else {
        1.0
    };
    let ctx = Ctx {
        seed: cfg.seed,
        scale,
        start: cfg.end - Duration::days(days),
        end: cfg.end,
    };
    let mut sink = Sink::new(ctx.start, ctx.end);
    if scale > 0.0 {
        aws::benign(&mut sink, &ctx);
        azure::benign(&mut sink, &ctx);
        gcp::benign(&mut sink, &ctx);
    }
    let mut stories = stories::weave(&mut sink, &ctx);
    if cfg.stealth > 0 {
        let from = (ctx.end - Duration::days(2)).max(ctx.start);
        stories.extend(stealth::weave(
            &mut sink,
            cfg.seed,
            cfg.stealth,
            from,
            ctx.end,
        ));
        stories.sort_by_key(|s| s.start);
    }
    let (times, records) = sink.finish();
    Scenario {
        records,
        times,
        stories,
    }
}

/// The generation context shared by the activity generators.
pub(crate) struct Ctx {
    pub seed: u64,
    pub scale: f64,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Where records go: kept with their time (those outside the window are dropped), ids checked
/// for uniqueness.
pub(crate) struct Sink {
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    records: Vec<(DateTime<Utc>, String)>,
    /// Hashes of the ids handed out: equal ids have equal hashes, so a new id whose hash is
    /// known is redrawn (now and then needlessly, never wrongly).
    ids: HashSet<u64, BuildHasherDefault<Fnv>>,
}

impl Sink {
    fn new(start: DateTime<Utc>, end: DateTime<Utc>) -> Sink {
        Sink {
            start,
            end,
            records: Vec::with_capacity(65_536),
            ids: HashSet::with_capacity_and_hasher(65_536, BuildHasherDefault::default()),
        }
    }

    /// A new id from `make`, different from every id handed out so far.
    pub fn fresh_id(
        &mut self,
        rng: &mut rng::Rng,
        make: impl Fn(&mut rng::Rng) -> String,
    ) -> String {
        loop {
            let id = make(rng);
            if self.ids.insert(rng::fnv(&id)) {
                return id;
            }
        }
    }

    pub fn push(&mut self, t: DateTime<Utc>, record: &Value) {
        if t >= self.start && t < self.end {
            self.records
                .push((t, serde_json::to_string(record).unwrap_or_default()));
        }
    }

    /// A record already written as JSON text.
    pub fn push_text(&mut self, t: DateTime<Utc>, record: String) {
        if t >= self.start && t < self.end {
            self.records.push((t, record));
        }
    }

    /// The records in time order (ties keep the order they were made in), and their times.
    fn finish(mut self) -> (Vec<DateTime<Utc>>, Vec<String>) {
        self.records.sort_by_key(|r| r.0);
        self.records.into_iter().unzip()
    }
}

/// FNV-1a: the id set needs no protection against crafted keys, only speed.
#[derive(Default)]
pub(crate) struct Fnv(u64);

impl Hasher for Fnv {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        let h = if self.0 == 0 {
            cloudsentinel_core::hash::FNV_OFFSET
        } else {
            self.0
        };
        self.0 = cloudsentinel_core::hash::fnv1a_extend(h, bytes);
    }
}

/// A day in someone's local time.
pub(crate) struct Day {
    pub date: NaiveDate,
    /// Local midnight, in UTC.
    pub midnight: DateTime<Utc>,
    pub weekend: bool,
}

impl Day {
    /// The instant at `hours` after local midnight.
    pub fn at(&self, hours: f64) -> DateTime<Utc> {
        self.midnight + secs(hours * 3600.0)
    }
}

/// The local days (at offset `tz_min` minutes from UTC) that overlap `[start, end)`.
pub(crate) fn local_days(start: DateTime<Utc>, end: DateTime<Utc>, tz_min: i32) -> Vec<Day> {
    let offset = Duration::minutes(i64::from(tz_min));
    let first = (start + offset).date_naive();
    let last = (end + offset).date_naive();
    first
        .iter_days()
        .take_while(|d| *d <= last)
        .map(|date| Day {
            date,
            midnight: date.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc() - offset,
            weekend: matches!(date.weekday(), Weekday::Sat | Weekday::Sun),
        })
        .collect()
}

/// A duration of (fractional) seconds, to the microsecond.
pub(crate) fn secs(s: f64) -> Duration {
    Duration::microseconds((s * 1e6) as i64)
}

/// `2025-03-14T12:00:00` (no zone), written without a format string.
pub(crate) fn iso_seconds(t: DateTime<Utc>, out: &mut String) {
    fn two(out: &mut String, n: u32) {
        out.push(char::from(b'0' + (n / 10 % 10) as u8));
        out.push(char::from(b'0' + (n % 10) as u8));
    }
    let y = t.year().clamp(0, 9999) as u32;
    two(out, y / 100);
    two(out, y % 100);
    out.push('-');
    two(out, t.month());
    out.push('-');
    two(out, t.day());
    out.push('T');
    two(out, t.hour());
    out.push(':');
    two(out, t.minute());
    out.push(':');
    two(out, t.second());
}

/// `t`'s fraction of a second as `digits` digits (up to 9).
pub(crate) fn fraction(t: DateTime<Utc>, digits: u32, out: &mut String) {
    let nanos = t.nanosecond() % 1_000_000_000;
    let mut div = 100_000_000;
    out.push('.');
    for _ in 0..digits.min(9) {
        out.push(char::from(b'0' + ((nanos / div) % 10) as u8));
        div /= 10;
    }
}

/// `t` without its fraction of a second (CloudTrail's precision).
pub(crate) fn trunc_secs(t: DateTime<Utc>) -> DateTime<Utc> {
    t.with_nanosecond(0).unwrap_or(t)
}

/// `t` to the microsecond (Azure and GCP precision here).
pub(crate) fn trunc_micros(t: DateTime<Utc>) -> DateTime<Utc> {
    let n = t.nanosecond();
    t.with_nanosecond(n - n % 1000).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::OnceLock;

    use chrono::TimeZone;

    use super::*;

    /// A Thursday noon (a window with a weekend in it is quieter: about 44,000 records).
    fn end() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 3, 13, 12, 0, 0).unwrap()
    }

    fn config(seed: u64, days: u32, scale: f64) -> SimConfig {
        SimConfig {
            seed,
            end: end(),
            days,
            scale,
            stealth: 0,
        }
    }

    /// The default-volume scenario, made once for the tests that only read it.
    fn full() -> &'static Scenario {
        static FULL: OnceLock<Scenario> = OnceLock::new();
        FULL.get_or_init(|| generate(&config(7, 4, 1.0)))
    }

    /// (time, id as the decoders read it, source address) of a record.
    fn facts(record: &str) -> (DateTime<Utc>, String, String) {
        let v: Value = serde_json::from_str(record).expect("every record is JSON");
        assert!(v.is_object(), "a record is a JSON object: {record}");
        let text = |p: &str| v.pointer(p).and_then(Value::as_str).map(str::to_string);
        let (time, id, ip) = if v.get("eventName").is_some() {
            (
                text("/eventTime"),
                text("/eventID"),
                text("/sourceIPAddress"),
            )
        } else if v.get("protoPayload").is_some() {
            (
                text("/timestamp"),
                text("/insertId"),
                text("/protoPayload/requestMetadata/callerIp"),
            )
        } else {
            (
                text("/time"),
                text("/properties/id").or_else(|| text("/properties/eventDataId")),
                text("/callerIpAddress"),
            )
        };
        let time = DateTime::parse_from_rfc3339(&time.expect("a time"))
            .expect("an RFC 3339 time")
            .with_timezone(&Utc);
        (time, id.expect("an id"), ip.unwrap_or_default())
    }

    #[test]
    fn stealth_stories_are_night_reads_then_one_write_from_networks_the_benign_days_never_use() {
        let benign = full();
        let nets: HashSet<String> = benign
            .records
            .iter()
            .map(|r| facts(r).2)
            .filter_map(|ip| {
                ip.rsplit_once('.')
                    .and_then(|(a, _)| a.rsplit_once('.'))
                    .map(|(n, _)| n.to_string())
            })
            .collect();
        let (from, to) = (end() - Duration::days(4), end());
        let s = stealth_attacks(&config(7, 4, 1.0), 8, from, to);
        assert_eq!(s.stories.len(), 8);
        let by_id: std::collections::HashMap<String, (DateTime<Utc>, String)> = s
            .records
            .iter()
            .map(|r| {
                let (t, id, ip) = facts(r);
                (id, (t, ip))
            })
            .collect();
        assert_eq!(by_id.len(), s.records.len(), "ids are unique");
        let mut kinds = HashSet::new();
        for story in &s.stories {
            kinds.insert(
                story
                    .name
                    .rsplit_once("-aws-")
                    .map_or("gcp", |_| story.name.split('-').nth(3).unwrap_or(""))
                    .to_string(),
            );
            assert!(
                story.event_ids.len() >= 4,
                "{}: reads and a write",
                story.name
            );
            assert!(story.start >= from && story.end < to);
            let mut ips = HashSet::new();
            for id in &story.event_ids {
                let (t, ip) = by_id.get(id).expect("every story id is a record");
                assert!(*t >= story.start && *t <= story.end);
                ips.insert(ip.clone());
            }
            assert_eq!(ips.len(), 1, "{}: one address", story.name);
            let ip = ips.into_iter().next().unwrap();
            let net: Vec<&str> = ip.split('.').take(2).collect();
            assert!(
                !nets.contains(&net.join(".")),
                "{}: {ip} is in a benign network",
                story.name
            );
        }
        assert!(kinds.len() >= 3, "the kinds take turns: {kinds:?}");
        // The same config gives the same stories.
        assert_eq!(
            stealth_attacks(&config(7, 4, 1.0), 8, from, to).records,
            s.records
        );
    }

    #[test]
    fn the_same_seed_gives_the_same_scenario() {
        let a = generate(&config(11, 2, 0.2));
        let b = generate(&config(11, 2, 0.2));
        assert_eq!(a.records, b.records);
        assert_eq!(a.stories, b.stories);
        let c = generate(&config(12, 2, 0.2));
        assert_ne!(a.records, c.records);
    }

    #[test]
    fn records_are_json_sorted_by_time_with_unique_ids() {
        let s = full();
        let mut ids = HashSet::new();
        let mut last: Option<DateTime<Utc>> = None;
        for r in &s.records {
            let (t, id, _) = facts(r);
            assert!(
                t >= end() - Duration::days(4) && t < end(),
                "{t} outside the window"
            );
            if let Some(l) = last {
                assert!(t >= l, "{t} comes after {l}");
            }
            last = Some(t);
            assert!(ids.insert(id.clone()), "duplicate id {id}");
        }
    }

    #[test]
    fn volume_is_within_bounds() {
        let s = full();
        let n = s.records.len();
        assert!((40_000..=60_000).contains(&n), "{n} records");
        let aws = s
            .records
            .iter()
            .filter(|r| r.contains("\"eventName\""))
            .count();
        let share = aws as f64 / n as f64;
        assert!((0.78..=0.92).contains(&share), "AWS share {share}");
    }

    #[test]
    fn stories_are_labelled_and_their_records_present() {
        let s = full();
        let mut by_id = std::collections::HashMap::new();
        for r in &s.records {
            let (t, id, ip) = facts(r);
            by_id.insert(id, (t, ip));
        }
        assert!((4..=6).contains(&s.stories.len()));
        let providers: HashSet<&str> = s.stories.iter().map(|st| st.provider).collect();
        assert_eq!(providers, HashSet::from(["aws", "azure", "gcp"]));
        let mut attacker_ips = HashSet::new();
        for st in &s.stories {
            assert!(!st.event_ids.is_empty(), "{}", st.name);
            assert!(!st.principal.is_empty() && !st.summary.is_empty());
            assert!(st.start <= st.end);
            assert!(
                st.start >= end() - Duration::hours(49),
                "{} starts too early",
                st.name
            );
            for t in &st.techniques {
                let ok = t.len() >= 5
                    && t.starts_with('T')
                    && t[1..5].bytes().all(|b| b.is_ascii_digit());
                assert!(ok, "technique {t}");
            }
            for id in &st.event_ids {
                let (t, ip) = by_id
                    .get(id)
                    .unwrap_or_else(|| panic!("{} lists {id}, not a record", st.name));
                assert!(*t >= st.start && *t <= st.end, "{id} outside {}", st.name);
                attacker_ips.insert(ip.clone());
            }
        }
        // The dashboard looks live: the latest story ends within two hours of the end.
        let latest = s.stories.iter().map(|st| st.end).max().unwrap();
        assert!(end() - latest < Duration::hours(2));
        // Attack infrastructure appears only in the stories' records.
        let labelled: HashSet<&String> = s.stories.iter().flat_map(|st| &st.event_ids).collect();
        attacker_ips.retain(|ip| !ip.starts_with("10.") && !ip.ends_with(".amazonaws.com"));
        attacker_ips.remove(azure::BUILD_SERVER_IP);
        for r in &s.records {
            let (_, id, ip) = facts(r);
            if attacker_ips.contains(&ip) {
                assert!(labelled.contains(&id), "{ip} in an unlabelled record {id}");
            }
        }
    }

    #[test]
    fn short_and_empty_windows_still_hold_the_stories() {
        let s = generate(&config(5, 1, 0.0));
        assert!(
            s.records.len() < 300,
            "only the stories: {}",
            s.records.len()
        );
        assert_eq!(s.stories.len(), 5);
        let ids: HashSet<String> = s.records.iter().map(|r| facts(r).1).collect();
        for st in &s.stories {
            assert!(st.start >= end() - Duration::days(1));
            assert!(st.event_ids.iter().all(|id| ids.contains(id)));
        }
    }

    #[test]
    fn local_days_cover_the_window() {
        let start = Utc.with_ymd_and_hms(2025, 3, 10, 23, 30, 0).unwrap();
        let days = local_days(start, start + Duration::hours(2), 60);
        assert_eq!(days.len(), 1);
        assert_eq!(days[0].date, NaiveDate::from_ymd_opt(2025, 3, 11).unwrap());
        assert_eq!(
            days[0].at(0.0),
            Utc.with_ymd_and_hms(2025, 3, 10, 23, 0, 0).unwrap()
        );
    }
}
