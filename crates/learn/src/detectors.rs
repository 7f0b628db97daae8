//! Behavioural detectors that say in words which baseline an event departs from.
//!
//! The isolation forest scores how unusual an event is overall; these detectors each look for
//! one thing an intruder with valid credentials does and a principal's own history rules out:
//!
//! - **Data volume**: a principal reads objects (S3, Cloud Storage, Blob storage) at many times
//!   its own busiest day of the last two weeks, within one hour ("read 338 objects in 40 min; its
//!   busiest day of the last 14: 5").
//! - **New network at an unusual hour**: the first call from an autonomous system the principal
//!   never used, at an hour outside 90% of its activity.
//! - **Impossible travel**: two consecutive calls from countries further apart than a plane flies
//!   in the time between them, the second from a country new for the principal.
//! - **New region**: a change in a region no principal of the organisation used before today
//!   (with a week of the organisation's history): resources started where no one looks.
//! - **Dormant identity**: a principal with a history, silent for [`DORMANT_DAYS`] or more, comes
//!   back with a sensitive change (a new access key, a policy, logging), as a reactivated,
//!   forgotten identity does.
//! - **New network with a new client**: a person's first Entra ID sign-in from an AS new to them
//!   and to the organisation, made with client software they never signed in with (a token
//!   replayed by a script, a consented app used from a server): not the person at a new place,
//!   who brings their own devices. Their further calls from that AS within the hour join the
//!   alert. (Sign-ins only: in the control-plane logs people switch between console and CLI.)
//! - **Machine identity from a new network**: a GCP service account or an Azure service
//!   principal / managed identity calls from an AS it never used and no other principal of the
//!   organisation uses either, and that is not its own cloud's, at any hour: workloads run where
//!   they always run, so this is a key or secret used from elsewhere. Its further calls from that
//!   AS within the hour join the alert. (A key used from a VM in the same cloud is not seen.)
//!
//! The forest's own findings are alerts only when [`Detectors::corroborates`] says so, and
//! informational signals otherwise.
//!
//! Each needs the principal's history: the first two run only once its baseline is past its
//! learning period; the volume detector needs [`VOLUME_HISTORY_DAYS`] days of it. Memory is
//! bounded per principal, and principals are forgotten with the baselines' own cap.

use std::collections::{HashMap, VecDeque};

use chrono::{DateTime, Utc};
use cloudsentinel_core::{Level, Signal, SignalKind};

use crate::behaviour::{Baselines, Features, Observation, f};

/// What the rule ids of these detectors start with.
pub const RULE_PREFIX: &str = "cloudsentinel.behaviour.";
pub const VOLUME_RULE_ID: &str = "cloudsentinel.behaviour.data-volume";
pub const NEW_NETWORK_RULE_ID: &str = "cloudsentinel.behaviour.new-network-unusual-hour";
pub const TRAVEL_RULE_ID: &str = "cloudsentinel.behaviour.impossible-travel";
pub const DORMANT_RULE_ID: &str = "cloudsentinel.behaviour.dormant-identity";
pub const NEW_REGION_RULE_ID: &str = "cloudsentinel.behaviour.new-region";
pub const MACHINE_NETWORK_RULE_ID: &str = "cloudsentinel.behaviour.machine-identity-new-network";
pub const NEW_CLIENT_RULE_ID: &str = "cloudsentinel.behaviour.new-network-new-client";

/// "AS14061 (RO)", "AS14061", or "a new network" without an AS.
fn network_words(asn: Option<u32>, country: Option<[u8; 2]>) -> String {
    match (asn, country) {
        (Some(a), Some(c)) => format!("AS{a} ({})", String::from_utf8_lossy(&c)),
        (Some(a), None) => format!("AS{a}"),
        (None, Some(c)) => format!("a new network in {}", String::from_utf8_lossy(&c)),
        (None, None) => "a new network".to_string(),
    }
}
/// After an alert about a workload identity on a new network, how long its further calls from
/// that network join the alert (counted from the last one): the intruder's session, not one event.
pub const FOLLOW_SECS: i64 = 3 * 3600;
/// Other principals that taking up a new region within two weeks makes it a rollout.
pub const ROLLOUT_PRINCIPALS: usize = 2;
/// Days of the organisation's history the new-region detector needs.
pub const REGION_HISTORY_DAYS: i64 = 7;

/// Object reads within one hour that can be a volume alert at all.
pub const VOLUME_MIN: usize = 100;
/// ...and how many times the principal's busiest day they must be.
pub const VOLUME_FACTOR: u32 = 10;
/// Days of history the volume detector needs before it judges a principal.
pub const VOLUME_HISTORY_DAYS: i64 = 3;
/// Days of daily counts kept.
const VOLUME_DAYS: usize = 14;
/// Evidence ids kept per principal's hour window.
const WINDOW_CAP: usize = 2000;
/// Hour rarity (share of the principal's activity at more usual hours) that counts as unusual.
pub const UNUSUAL_HOUR: f32 = 0.9;
/// Speed between consecutive countries that no traveller reaches, in km/h.
pub const TRAVEL_KMH: f32 = 1000.0;
/// Sensitivity ([`crate::behaviour::sensitivity`]) of the change a dormant identity comes back
/// with: credentials, keys, logging, sharing, identity (a person's first console sign-in after a
/// holiday is not one).
const SENSITIVE: f32 = 0.7;
/// Silence after which a principal is dormant.
pub const DORMANT_DAYS: i64 = 10;
/// Principals tracked at most by the volume detector.
const MAX_PRINCIPALS: usize = 100_000;
/// Hours from a principal's usual times of day that count as an unusual hour.
pub const UNUSUAL_HOUR_GAP: u32 = 3;
/// Other principals that must have used an AS in the last two weeks for it to be the
/// organisation's own (office, VPN, CI runners, the cloud itself).
pub const ORG_AS_PRINCIPALS: usize = 3;
/// How long who used an AS is remembered.
const ORG_AS_DAYS: i64 = 14;
/// Days an AS must have been in the organisation's use before it counts as the organisation's:
/// an intruder who brings several stolen identities to one hosting provider within days does not
/// make it the organisation's network.
pub const ORG_AS_MIN_AGE_DAYS: i64 = 7;
/// ...unless this many other principals use it already (a new corporate VPN the whole team moved
/// to).
pub const ORG_AS_WIDE_PRINCIPALS: usize = 6;
/// A dormant identity must have had a life: this many calls...
const DORMANT_MIN_EVENTS: u64 = 5;
/// ...over at least this many hours.
const DORMANT_MIN_SPAN_H: i64 = 12;

/// A principal's calls from a network an alert was raised about.
#[derive(Debug, Clone)]
struct Follow {
    asn: u32,
    until: i64,
    /// The alert's rule (one of the network rules), title and the time it was raised.
    rule: &'static str,
    title: String,
    since: i64,
}

/// Operation rarity ([`f::OPERATION_RARITY`]) of a change rare in the organisation: fewer than one
/// call in a thousand.
const RARE_IN_ORG: f32 = 0.5;

/// Principals followed at most.
const MAX_FOLLOWED: usize = 4096;

#[derive(Debug, Default)]
struct Volume {
    first_day: i64,
    /// (day, object reads), oldest first.
    days: VecDeque<(i64, u32)>,
    /// The last hour's reads: (time, event id, source address hashed).
    window: VecDeque<(i64, String, u64)>,
    /// After an alert, reads until then join it (from the surge's address, when it had one).
    alerting_until: i64,
    alert_source: Option<u64>,
}

/// Share of the window's reads from one address that makes the surge that address's: its reads
/// are the evidence, and the principal's usual reads from elsewhere are left out.
const ONE_SOURCE_SHARE: f32 = 0.8;

/// The detectors' state, beside the baselines.
#[derive(Debug, Default)]
pub struct Detectors {
    volume: HashMap<String, Volume>,
    /// Region -> the day the organisation first used it; and the first day seen at all.
    regions: HashMap<String, i64>,
    /// Region -> principals (hashed) that used it, with the first day they did (for hindsight).
    region_users: HashMap<String, Vec<(u64, i64)>>,
    /// New-region findings: (event id, region, principal, day), for [`Detectors::hindsight`].
    region_findings: Vec<(String, String, u64, i64)>,
    first_day: Option<i64>,
    /// AS -> principals (hashed) that used it, with the day they last did. One organisation's
    /// logs go through one detector, so this is the organisation's networks.
    org_as: HashMap<u32, Vec<(u64, i64)>>,
    /// AS -> the first day any principal of the organisation used it.
    org_as_since: HashMap<u32, i64>,
    /// Principal (hashed) -> the new network it was alerted for, and until when its calls from
    /// there join that alert.
    follow: HashMap<u64, Follow>,
}

fn hash(s: &str) -> u64 {
    cloudsentinel_core::hash::fnv1a(s.as_bytes())
}

/// Whether the principal is one person or machine (a user, or a role session named after a
/// person or an instance) rather than a role many people share under made-up session names:
/// only one of those can travel.
fn is_individual(key: &str) -> bool {
    match key.split_once(":role/") {
        None => true,
        Some((_, rest)) => rest.contains('@') || rest.contains("/i-"),
    }
}

/// Whether the principal is a workload rather than a person: a GCP service account, an Azure
/// service principal or managed identity (named without a user principal name).
fn is_machine(o: &Observation<'_>) -> bool {
    match o.provider {
        "gcp" => o.entity.ends_with(".gserviceaccount.com"),
        "azure" => o.actor_name.is_none_or(|n| !n.contains('@')),
        _ => false,
    }
}

/// An Entra ID sign-in (interactive or a token refresh): the log where a client's software is
/// the device a person signs in from.
fn is_sign_in(o: &Observation<'_>) -> bool {
    o.provider == "azure" && o.operation == "Sign-in activity"
}

fn is_object_read(o: &Observation<'_>) -> bool {
    let op = o.operation;
    op == "GetObject"
        || op == "storage.objects.get"
        || op.ends_with("/blobs/read")
        || op == "GetBlob"
}

fn day_of(t: i64) -> i64 {
    t.div_euclid(86_400)
}

impl Detectors {
    pub fn new() -> Detectors {
        Detectors::default()
    }

    /// Looks at one event before `baselines` learn it (call [`Baselines::observe`] after);
    /// `emit` false only learns (history).
    pub fn before(
        &mut self,
        baselines: &Baselines,
        o: &Observation<'_>,
        emit: bool,
    ) -> Vec<Signal> {
        let mut out = Vec::new();
        let key = o.baseline_key();
        self.new_region(o, emit, &mut out);
        if emit
            && o.is_write_call()
            && crate::behaviour::sensitivity(o.service, o.operation).0 >= SENSITIVE
            && let Some((first, last, events)) = baselines.seen(&key)
        {
            let t = o.time.timestamp();
            let idle = t - last;
            if events >= DORMANT_MIN_EVENTS
                && last - first >= DORMANT_MIN_SPAN_H * 3600
                && idle >= DORMANT_DAYS * 86_400
            {
                out.push(signal(
                    o,
                    DORMANT_RULE_ID,
                    &format!(
                        "{} active again after {} days, with {}",
                        crate::anomaly::short_name(o),
                        idle / 86_400,
                        o.operation
                    ),
                    Level::Medium,
                    &["T1078.004"],
                    &["initial-access", "persistence"],
                    format!(
                        "no activity for {} days (last seen {}, first seen {}, {} calls in all); it comes back with {}:{}",
                        idle / 86_400,
                        fmt_time(last),
                        fmt_time(first),
                        events,
                        o.service,
                        o.operation
                    ),
                ));
            }
        }
        if is_object_read(o) {
            // The principal's history, not only its reads: one that never read objects and
            // suddenly reads hundreds is the clearest case.
            let first = baselines.seen(&key).map(|(first, _, _)| day_of(first));
            self.volume(&key, o, emit, first, &mut out);
        }
        out
    }

    /// A change in a region nobody in the organisation used before today, once the organisation
    /// has [`REGION_HISTORY_DAYS`] of history: instances started where no one looks.
    fn new_region(&mut self, o: &Observation<'_>, emit: bool, out: &mut Vec<Signal>) {
        let Some(region) = o.region.filter(|r| !r.is_empty() && *r != "global") else {
            return;
        };
        let day = day_of(o.time.timestamp());
        let org_first = *self.first_day.get_or_insert(day);
        let first = match self.regions.get(region) {
            Some(d) => *d,
            None => {
                if self.regions.len() >= 1024 {
                    return;
                }
                self.regions.insert(region.to_string(), day);
                day
            }
        };
        let who = hash(&o.baseline_key());
        let users = self.region_users.entry(region.to_string()).or_default();
        if users.len() < 32 && !users.iter().any(|(p, _)| *p == who) {
            users.push((who, day));
        }
        if !emit || first != day || day - org_first < REGION_HISTORY_DAYS || !o.is_write_call() {
            return;
        }
        let mut known: Vec<&str> = self
            .regions
            .iter()
            .filter(|(_, d)| **d < day)
            .map(|(r, _)| r.as_str())
            .collect();
        known.sort_unstable();
        self.region_findings
            .push((o.id.to_string(), region.to_string(), who, day));
        out.push(signal(
            o,
            NEW_REGION_RULE_ID,
            &format!(
                "First change in {region} in the organisation, by {}",
                crate::anomaly::short_name(o)
            ),
            Level::Medium,
            &["T1535"],
            &["defense-evasion"],
            format!(
                "{}:{} in {region}, where no principal of the organisation called anything before today; in the {} days before, the organisation used {}",
                o.service,
                o.operation,
                day - org_first,
                known.join(", ")
            ),
        ));
    }

    /// Judges new-region findings again with hindsight, as a retrospective hunt over a period
    /// can: a region that at least [`ROLLOUT_PRINCIPALS`] other principals took up within two
    /// weeks was the organisation rolling out there, and its first changes become informational
    /// signals saying so; a region one principal used alone stays an alert.
    pub fn hindsight(&self, signals: &mut [Signal]) {
        for s in signals
            .iter_mut()
            .filter(|s| s.rule_id == NEW_REGION_RULE_ID)
        {
            let Some((_, region, who, day)) = s
                .event_ids
                .first()
                .and_then(|id| self.region_findings.iter().find(|f| &f.0 == id))
            else {
                continue;
            };
            let others = self.region_users.get(region).map_or(0, |u| {
                u.iter()
                    .filter(|(p, d)| p != who && *d >= *day && *d - day <= ORG_AS_DAYS)
                    .count()
            });
            if others >= ROLLOUT_PRINCIPALS {
                s.level = Level::Informational;
                s.explanation.push_str(&format!(
                    "; routine, not raised: {others} other principals of the organisation took up {region} within {ORG_AS_DAYS} days (a rollout)"
                ));
            }
        }
    }

    /// Remembers which principals use the event's AS; call it right after
    /// [`Baselines::observe`], which looked the AS up (the principal itself never counts for its
    /// own events, so the order against [`Detectors::after`] does not matter).
    pub fn learned(&mut self, baselines: &Baselines, o: &Observation<'_>) {
        let Some(asn) = baselines.last_asn() else {
            return;
        };
        let key = o.baseline_key();
        let day = day_of(o.time.timestamp());
        self.first_day.get_or_insert(day);
        if self.org_as_since.len() < 100_000 {
            self.org_as_since.entry(asn).or_insert(day);
        }
        let list = self.org_as.entry(asn).or_default();
        let k = hash(&key);
        if let Some(i) = list.iter().position(|(p, _)| *p == k) {
            list[i].1 = day;
        } else {
            list.retain(|(_, d)| day - d <= ORG_AS_DAYS);
            if list.len() < 16 {
                list.push((k, day));
            }
        }
    }

    /// How many other principals used this AS in the last two weeks; none while the AS is new to
    /// the organisation (in its use for less than [`ORG_AS_MIN_AGE_DAYS`], and not since the
    /// first days of its history) and fewer than [`ORG_AS_WIDE_PRINCIPALS`] use it.
    fn org_users_of(&self, o: &Observation<'_>, key: &str, asn: u32) -> usize {
        let day = day_of(o.time.timestamp());
        let k = hash(key);
        let since = self.org_as_since.get(&asn).copied().unwrap_or(day);
        // An AS in use from the first days of the history is as old as the history can tell.
        let from_the_start = self.first_day.is_some_and(|f| since - f <= 1);
        let users = self
            .org_as
            .get(&asn)
            .map(|l| {
                l.iter()
                    .filter(|(p, d)| *p != k && day - d <= ORG_AS_DAYS)
                    .count()
            })
            .unwrap_or(0);
        let young = day - since < ORG_AS_MIN_AGE_DAYS && !from_the_start;
        if young && users < ORG_AS_WIDE_PRINCIPALS {
            return 0;
        }
        users
    }

    /// Whether an unusual event (by the isolation forest) has something an intruder brings
    /// with it: a network new to the principal and to the organisation, or a sensitive change
    /// the principal never made before.
    /// Without it, the forest's finding is kept as an informational signal.
    pub fn corroborates(&self, o: &Observation<'_>, x: &Features) -> bool {
        let v = &x.values;
        let new_network = v[f::NEW_ASN] > 0.0
            && x.detail
                .asn
                .is_none_or(|a| self.org_users_of(o, &o.baseline_key(), a) < ORG_AS_PRINCIPALS);
        // A sensitive change the principal makes as part of its job (an admin's daily PIM
        // activation, a pipeline's policy update) is not news, nor one the organisation makes
        // every day (an engineer's first look at storage keys the inventory job lists nightly);
        // a first one, rare in the organisation, is.
        let sensitive_change = v[f::WRITE] > 0.0
            && v[f::SENSITIVITY] >= 0.7
            && v[f::NEW_OPERATION] > 0.0
            && v[f::OPERATION_RARITY] >= RARE_IN_ORG;
        let travel = v[f::GEO_VELOCITY] * 1000.0 >= TRAVEL_KMH && is_individual(&o.baseline_key());
        new_network || sensitive_change || travel
    }

    /// Looks at one event's features (a principal past its learning period); call it after
    /// [`Detectors::before`] and [`Baselines::observe`].
    pub fn after(&mut self, o: &Observation<'_>, x: &Features) -> Vec<Signal> {
        let mut out = Vec::new();
        let v = &x.values;
        let d = &x.detail;
        let key = o.baseline_key();
        if let Some(s) = self.follow_up(o, &key, d.asn) {
            return vec![s];
        }
        // An AS other principals use (the office, the VPN, CI runners) is not news.
        let new_to_org = d
            .asn
            .is_none_or(|a| self.org_users_of(o, &key, a) < ORG_AS_PRINCIPALS);
        if v[f::NEW_ASN] > 0.0
            && v[f::HOUR_RARITY] >= UNUSUAL_HOUR
            && d.hour_gap >= UNUSUAL_HOUR_GAP
            && new_to_org
        {
            out.push(signal(
                o,
                NEW_NETWORK_RULE_ID,
                &format!(
                    "First activity from {} for {} at an unusual hour",
                    network_words(d.asn, d.country),
                    crate::anomaly::short_name(o)
                ),
                Level::Medium,
                &["T1078.004"],
                &["initial-access", "defense-evasion"],
                format!(
                    "first call from {}{}, an AS no other principal uses either; {} UTC is {} h from its usual hours and outside {:.0}% of its activity",
                    d.asn.map(|a| format!("AS{a}")).unwrap_or_else(|| "a new network".into()),
                    d.country
                        .map(|c| format!(" in {}", String::from_utf8_lossy(&c)))
                        .unwrap_or_default(),
                    o.time.format("%H:%M"),
                    d.hour_gap,
                    v[f::HOUR_RARITY] * 100.0
                ),
            ));
        }
        if is_machine(o) {
            self.machine_network(o, x, new_to_org, &mut out);
        } else if out.is_empty()
            && is_sign_in(o)
            && v[f::NEW_ASN] > 0.0
            && v[f::NEW_USER_AGENT] > 0.0
            && new_to_org
            && let Some(asn) = d.asn
        {
            out.push(signal(
                o,
                NEW_CLIENT_RULE_ID,
                &format!(
                    "First sign-in from {} with a new client for {}",
                    network_words(Some(asn), d.country),
                    crate::anomaly::short_name(o)
                ),
                Level::Medium,
                &["T1078.004", "T1550.001"],
                &["initial-access", "defense-evasion"],
                format!(
                    "first call from AS{asn}{}, an AS no other principal of the organisation uses, with client software it never used ({}): someone else's machine with its credentials or tokens, not the principal at a new place",
                    d.country
                        .map(|c| format!(" in {}", String::from_utf8_lossy(&c)))
                        .unwrap_or_default(),
                    o.user_agent
                        .map(crate::behaviour::agent_family)
                        .unwrap_or_else(|| "no user agent".into())
                ),
            ));
        }
        let kmh = v[f::GEO_VELOCITY] * 1000.0;
        if kmh >= TRAVEL_KMH
            && v[f::NEW_COUNTRY] > 0.0
            && new_to_org
            && is_individual(&key)
            && let (Some(from), Some(to)) = (d.prev_country, d.country)
        {
            out.push(signal(
                o,
                TRAVEL_RULE_ID,
                &format!(
                    "Impossible travel {} to {} for {}",
                    String::from_utf8_lossy(&from),
                    String::from_utf8_lossy(&to),
                    crate::anomaly::short_name(o)
                ),
                Level::Medium,
                &["T1078.004"],
                &["initial-access"],
                format!(
                    "from {} to {} (new for it, from an AS no other principal uses): {:.0} km in {:.1} h, {:.0} km/h",
                    String::from_utf8_lossy(&from),
                    String::from_utf8_lossy(&to),
                    d.km,
                    d.hours_apart,
                    kmh
                ),
            ));
        }
        // A workload's calls from a foreign network are all the intruder's; a person's, after a
        // new-network alert, may be the person at a new place, unless it came with software
        // the person never used: workloads are followed, and people on a new network with a new
        // client.
        let followed = if is_machine(o) {
            [NEW_NETWORK_RULE_ID, TRAVEL_RULE_ID, MACHINE_NETWORK_RULE_ID].as_slice()
        } else {
            [NEW_CLIENT_RULE_ID].as_slice()
        };
        if let (Some(asn), Some(first)) = (d.asn, out.first()) {
            let rule = followed.iter().copied().find(|r| *r == first.rule_id);
            // Further calls join the alert under its title.
            let title = first.title.clone();
            if let Some(rule) = rule {
                let t = o.time.timestamp();
                if self.follow.len() >= MAX_FOLLOWED {
                    self.follow.retain(|_, f| f.until >= t);
                }
                if self.follow.len() < MAX_FOLLOWED {
                    self.follow.insert(
                        hash(&key),
                        Follow {
                            asn,
                            until: t + FOLLOW_SECS,
                            rule,
                            title,
                            since: t,
                        },
                    );
                }
            }
        }
        out
    }

    /// A call of a followed principal from the network its alert was about, within
    /// [`FOLLOW_SECS`] of its last: it joins the alert (and keeps following).
    fn follow_up(&mut self, o: &Observation<'_>, key: &str, asn: Option<u32>) -> Option<Signal> {
        let asn = asn?;
        let t = o.time.timestamp();
        let f = self.follow.get_mut(&hash(key))?;
        if f.asn != asn || t > f.until || t < f.since {
            return None;
        }
        f.until = t + FOLLOW_SECS;
        Some(signal(
            o,
            f.rule,
            &f.title.clone(),
            Level::Medium,
            &["T1078.004"],
            &["initial-access"],
            format!(
                "another call from AS{asn}, the network this alert is about (first at {}), within {} min of the last",
                fmt_time(f.since),
                FOLLOW_SECS / 60
            ),
        ))
    }

    /// A workload identity's first call from an AS new to it and to the organisation.
    fn machine_network(
        &mut self,
        o: &Observation<'_>,
        x: &Features,
        new_to_org: bool,
        out: &mut Vec<Signal>,
    ) {
        let Some(asn) = x.detail.asn else {
            return;
        };
        // Its own cloud's network is where a workload runs (another of the provider's ASes is
        // a new zone or service, not a new place).
        let own_cloud = cloudsentinel_context::cloud::provider_of_asn(asn)
            .is_some_and(|p| p.as_str() == o.provider);
        if own_cloud {
            return;
        }
        if !(x.values[f::NEW_ASN] > 0.0 && new_to_org) {
            return;
        }
        let country = x
            .detail
            .country
            .map(|c| format!(" in {}", String::from_utf8_lossy(&c)))
            .unwrap_or_default();
        out.push(signal(
            o,
            MACHINE_NETWORK_RULE_ID,
            &format!(
                "Workload identity {} used from {}",
                crate::anomaly::short_name(o),
                network_words(Some(asn), x.detail.country)
            ),
            Level::Medium,
            &["T1078.004", "T1528"],
            &["initial-access", "credential-access"],
            format!(
                "a workload identity (service account, service principal or managed identity) called from AS{asn}{country}, which it never used and no other principal of the organisation uses: its key, secret or token is being used outside the places it runs"
            ),
        ));
    }

    fn volume(
        &mut self,
        key: &str,
        o: &Observation<'_>,
        emit: bool,
        first_seen_day: Option<i64>,
        out: &mut Vec<Signal>,
    ) {
        let t = o.time.timestamp();
        let day = day_of(t);
        if !self.volume.contains_key(key) && self.volume.len() >= MAX_PRINCIPALS {
            // Forget the principal whose last read is oldest.
            if let Some(old) = self
                .volume
                .iter()
                .min_by_key(|(_, v)| v.days.back().map(|d| d.0))
                .map(|(k, _)| k.clone())
            {
                self.volume.remove(&old);
            }
        }
        let v = self
            .volume
            .entry(key.to_string())
            .or_insert_with(|| Volume {
                first_day: first_seen_day.unwrap_or(day).min(day),
                ..Volume::default()
            });
        // The busiest earlier day, before this read counts.
        let busiest = v
            .days
            .iter()
            .filter(|(d, _)| *d < day && day - d <= VOLUME_DAYS as i64)
            .map(|(_, n)| *n)
            .max()
            .unwrap_or(0);
        match v.days.back_mut() {
            Some((d, n)) if *d == day => *n += 1,
            _ => {
                v.days.push_back((day, 1));
                while v.days.len() > VOLUME_DAYS + 1 {
                    v.days.pop_front();
                }
            }
        }
        while v.window.front().is_some_and(|(w, _, _)| t - *w > 3600) {
            v.window.pop_front();
        }
        let source = hash(o.source_ip.unwrap_or_default());
        if v.window.len() < WINDOW_CAP {
            v.window.push_back((t, o.id.to_string(), source));
        }
        if !emit || day - v.first_day < VOLUME_HISTORY_DAYS {
            return;
        }
        if t <= v.alerting_until {
            // Part of a run already alerted on: this read joins it (when from the surge's
            // address, if it had one; the principal's usual reads beside it do not).
            if v.alert_source.is_none_or(|a| a == source) {
                out.push(volume_signal(
                    o,
                    vec![o.id.to_string()],
                    v.window.len(),
                    0,
                    busiest,
                ));
            }
            return;
        }
        let threshold = (VOLUME_MIN as u32).max(busiest.saturating_mul(VOLUME_FACTOR)) as usize;
        if v.window.len() >= threshold {
            v.alerting_until = t + 3600;
            let span = t - v.window.front().map(|w| w.0).unwrap_or(t);
            let from_source = v.window.iter().filter(|(_, _, s)| *s == source).count();
            let one_source = from_source as f32 >= ONE_SOURCE_SHARE * v.window.len() as f32;
            v.alert_source = one_source.then_some(source);
            let ids = v
                .window
                .iter()
                .filter(|(_, _, s)| !one_source || *s == source)
                .map(|(_, id, _)| id.clone())
                .collect();
            out.push(volume_signal(o, ids, v.window.len(), span, busiest));
        }
    }
}

fn fmt_time(t: i64) -> String {
    DateTime::<Utc>::from_timestamp(t, 0)
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default()
}

fn volume_signal(
    o: &Observation<'_>,
    ids: Vec<String>,
    reads: usize,
    span: i64,
    busiest: u32,
) -> Signal {
    let mut s = signal(
        o,
        VOLUME_RULE_ID,
        &format!(
            "{reads} object reads in {} min by {}, far above its usual volume",
            (span + 59) / 60,
            crate::anomaly::short_name(o)
        ),
        Level::Medium,
        &["T1530"],
        &["collection", "exfiltration"],
        format!(
            "read {reads} objects in {} min; its busiest day of the last {VOLUME_DAYS} days: {busiest} reads",
            (span + 59) / 60
        ),
    );
    s.first_seen = o.time - chrono::Duration::seconds(span);
    s.event_ids = ids;
    s
}

fn signal(
    o: &Observation<'_>,
    rule_id: &str,
    title: &str,
    level: Level,
    techniques: &[&str],
    tactics: &[&str],
    explanation: String,
) -> Signal {
    Signal {
        kind: SignalKind::Anomaly,
        rule_id: rule_id.to_string(),
        title: title.to_string(),
        level,
        techniques: techniques.iter().map(|s| s.to_string()).collect(),
        tactics: tactics.iter().map(|s| s.to_string()).collect(),
        entity: o.entity.to_string(),
        account: o.account.map(str::to_string),
        first_seen: o.time,
        last_seen: o.time,
        event_ids: vec![o.id.to_string()],
        explanation,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::{Scored, Settings};
    use chrono::TimeZone;

    struct Call {
        t: DateTime<Utc>,
        id: String,
        entity: &'static str,
        ip: &'static str,
        region: &'static str,
        service: &'static str,
        op: &'static str,
        read_only: bool,
    }

    impl Call {
        fn obs(&self) -> Observation<'_> {
            Observation {
                id: &self.id,
                time: self.t,
                provider: "aws",
                account: Some("111122223333"),
                region: Some(self.region),
                entity: self.entity,
                actor_name: None,
                access_key: None,
                source_ip: Some(self.ip),
                user_agent: Some("aws-cli/2.15.0"),
                service: self.service,
                operation: self.op,
                read_only: Some(self.read_only),
                success: true,
            }
        }
    }

    fn at(day: u32, hour: u32, minute: u32, second: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, second)
            .unwrap()
    }

    const DEV: &str = "arn:aws:iam::111122223333:user/dev";

    fn call(t: DateTime<Utc>, n: usize, op: &'static str, read_only: bool) -> Call {
        Call {
            t,
            id: format!("e{n}"),
            entity: DEV,
            ip: "198.51.100.7",
            region: "eu-west-1",
            service: if op == "GetObject" { "s3" } else { "iam" },
            op,
            read_only,
        }
    }

    /// Feeds observations as `hunt` and the service do: detectors before, baselines, detectors
    /// after.
    fn feed<'a>(mut b: Baselines, calls: impl Iterator<Item = Observation<'a>>) -> Vec<Signal> {
        let mut d = Detectors::new();
        let mut out = Vec::new();
        for o in calls {
            out.extend(d.before(&b, &o, true));
            let scored = b.observe(&o);
            d.learned(&b, &o);
            if let Scored::Features(x) = scored {
                out.extend(d.after(&o, &x));
            }
        }
        out
    }

    fn run(calls: &[Call]) -> Vec<Signal> {
        feed(
            Baselines::new(Settings::default()),
            calls.iter().map(Call::obs),
        )
    }

    #[test]
    fn hundreds_of_reads_by_a_principal_that_reads_a_few_alert_with_its_usual_day() {
        let mut calls = Vec::new();
        for day in 1..=5 {
            for i in 0..5 {
                calls.push(call(at(day, 10, i, 0), calls.len(), "GetObject", true));
            }
        }
        let quiet = run(&calls);
        assert!(
            quiet.iter().all(|s| s.rule_id != VOLUME_RULE_ID),
            "{quiet:#?}"
        );
        for i in 0..150u32 {
            calls.push(call(
                at(6, 13, i / 6, (i % 6) * 10),
                calls.len(),
                "GetObject",
                true,
            ));
        }
        let out = run(&calls);
        let volume: Vec<&Signal> = out.iter().filter(|s| s.rule_id == VOLUME_RULE_ID).collect();
        assert!(!volume.is_empty());
        assert!(
            volume[0].explanation.contains("read 100 objects")
                && volume[0]
                    .explanation
                    .contains("busiest day of the last 14 days: 5 reads"),
            "{}",
            volume[0].explanation
        );
        assert_eq!(
            volume[0].event_ids.len(),
            100,
            "the hour's reads are the evidence"
        );
        // The same day's volume every day is that principal's usual day.
        let mut pipeline = Vec::new();
        for day in 1..=6 {
            for i in 0..300u32 {
                pipeline.push(call(
                    at(day, 2, i / 10, i % 10),
                    pipeline.len(),
                    "GetObject",
                    true,
                ));
            }
        }
        assert!(run(&pipeline).iter().all(|s| s.rule_id != VOLUME_RULE_ID));
    }

    #[test]
    fn a_surge_from_one_address_has_that_address_reads_as_evidence() {
        let mut calls = Vec::new();
        for day in 1..=5 {
            for i in 0..5 {
                calls.push(call(at(day, 10, i, 0), calls.len(), "GetObject", true));
            }
        }
        // The principal's usual reads, then a stolen key's 150 from elsewhere, then its usual
        // reads again within the hour.
        let usual: Vec<usize> = (0..3).map(|i| calls.len() + i).collect();
        for i in 0..3 {
            calls.push(call(at(6, 12, 50 + i, 0), calls.len(), "GetObject", true));
        }
        for i in 0..150u32 {
            let mut c = call(
                at(6, 13, i / 6, (i % 6) * 10),
                calls.len(),
                "GetObject",
                true,
            );
            c.ip = "146.190.1.1";
            calls.push(c);
        }
        calls.push(call(at(6, 13, 40, 0), calls.len(), "GetObject", true));
        let after = calls.len() - 1;
        let out = run(&calls);
        let ids: Vec<&String> = out
            .iter()
            .filter(|s| s.rule_id == VOLUME_RULE_ID)
            .flat_map(|s| &s.event_ids)
            .collect();
        assert_eq!(ids.len(), 150, "the stolen key's reads, all of them");
        for n in usual.into_iter().chain([after]) {
            assert!(
                !ids.contains(&&format!("e{n}")),
                "usual read e{n} is no evidence"
            );
        }
    }

    #[test]
    fn a_dormant_identity_back_with_a_new_key_alerts_and_a_quiet_reader_does_not() {
        let mut calls = Vec::new();
        for day in 1..=2 {
            for i in 0..5 {
                calls.push(call(at(day, 6, i, 0), calls.len(), "ListBuckets", true));
            }
        }
        calls.push(call(at(20, 9, 0, 0), calls.len(), "ListUsers", true));
        assert!(
            run(&calls).iter().all(|s| s.rule_id != DORMANT_RULE_ID),
            "a read is no change"
        );
        calls.push(call(at(20, 9, 5, 0), calls.len(), "CreateAccessKey", false));
        let out = run(&calls);
        assert!(
            out.iter().all(|s| s.rule_id != DORMANT_RULE_ID),
            "it was active minutes ago"
        );
        calls.remove(calls.len() - 2);
        let out = run(&calls);
        let dormant: Vec<&Signal> = out
            .iter()
            .filter(|s| s.rule_id == DORMANT_RULE_ID)
            .collect();
        assert_eq!(dormant.len(), 1, "{out:#?}");
        assert!(
            dormant[0].explanation.contains("no activity for 18 days"),
            "{}",
            dormant[0].explanation
        );
    }

    #[test]
    fn a_change_in_a_region_nobody_used_alerts_once_the_organisation_has_a_history() {
        let mut calls = Vec::new();
        for day in 1..=8 {
            calls.push(call(at(day, 10, 0, 0), calls.len(), "ListUsers", true));
        }
        let run_in = |region: &'static str, day: u32, n: usize| {
            let mut c = call(at(day, 11, 0, 0), n, "RunInstances", false);
            c.service = "ec2";
            c.region = region;
            c
        };
        calls.push(run_in("sa-east-1", 9, 100));
        calls.push(run_in("sa-east-1", 10, 101));
        let out = run(&calls);
        let region: Vec<&Signal> = out
            .iter()
            .filter(|s| s.rule_id == NEW_REGION_RULE_ID)
            .collect();
        assert_eq!(region.len(), 1, "the first day only: {out:#?}");
        assert!(
            region[0].explanation.contains("in sa-east-1")
                && region[0].explanation.contains("eu-west-1")
        );
        // Too little history: the organisation's third day in a new region is not news yet.
        let early = vec![
            call(at(1, 10, 0, 0), 1, "ListUsers", true),
            run_in("sa-east-1", 3, 2),
        ];
        assert!(run(&early).iter().all(|s| s.rule_id != NEW_REGION_RULE_ID));
    }

    /// A call as a GCP or Azure log gives it, for the network detectors.
    #[derive(Clone)]
    struct Cloud {
        t: DateTime<Utc>,
        id: String,
        provider: &'static str,
        entity: &'static str,
        name: Option<&'static str>,
        ip: &'static str,
        ua: &'static str,
        op: &'static str,
    }

    impl Cloud {
        fn obs(&self) -> Observation<'_> {
            Observation {
                id: &self.id,
                time: self.t,
                provider: self.provider,
                account: Some("tenant"),
                region: None,
                entity: self.entity,
                actor_name: self.name,
                access_key: None,
                source_ip: Some(self.ip),
                user_agent: Some(self.ua),
                service: if self.op == "Sign-in activity" {
                    "entra"
                } else {
                    "storage"
                },
                operation: self.op,
                read_only: Some(true),
                success: true,
            }
        }
    }

    /// Google's, DigitalOcean's and a home ISP's addresses.
    fn netdb() -> std::sync::Arc<cloudsentinel_context::netdb::NetDb> {
        std::sync::Arc::new(
            cloudsentinel_context::netdb::NetDb::parse(
                "34.0.0.0\t34.255.255.255\t396982\tUS\tGOOGLE-CLOUD-PLATFORM\n\
                 35.0.0.0\t35.255.255.255\t15169\tUS\tGOOGLE\n\
                 146.190.0.0\t146.190.255.255\t14061\tSG\tDIGITALOCEAN\n\
                 203.0.113.0\t203.0.113.255\t3320\tDE\tDTAG\n\
                 198.51.100.0\t198.51.100.255\t6805\tDE\tTELEFONICA\n",
            )
            .unwrap(),
        )
    }

    fn run_cloud(calls: &[Cloud]) -> Vec<Signal> {
        let mut b = Baselines::new(Settings::default());
        b.set_netdb(Some(netdb()));
        feed(b, calls.iter().map(Cloud::obs))
    }

    const SA: &str = "reporting@analytics.iam.gserviceaccount.com";

    /// A service account reading from Google's networks for five days.
    fn workload_history() -> Vec<Cloud> {
        let mut calls = Vec::new();
        for day in 1..=5 {
            for h in 0..12 {
                calls.push(Cloud {
                    t: at(day, h * 2, 5, 0),
                    id: format!("w{}", calls.len()),
                    provider: "gcp",
                    entity: SA,
                    name: Some(SA),
                    ip: "34.1.2.3",
                    ua: "gcloud-python/2.16.0",
                    op: "storage.objects.get",
                });
            }
        }
        calls
    }

    #[test]
    fn a_workload_on_a_foreign_network_alerts_and_is_followed_but_not_on_its_own_cloud() {
        let mut calls = workload_history();
        let from = |ip: &'static str, t: DateTime<Utc>| Cloud {
            t,
            id: format!("x{}", t.timestamp()),
            provider: "gcp",
            entity: SA,
            name: Some(SA),
            ip,
            ua: "python-requests/2.31.0",
            op: "storage.objects.get",
        };
        // Google's other AS: another zone or service of its own cloud, not a new place.
        calls.push(from("35.9.9.9", at(6, 10, 0, 0)));
        assert!(
            run_cloud(&calls)
                .iter()
                .all(|s| s.rule_id != MACHINE_NETWORK_RULE_ID),
            "its own cloud"
        );
        // A hosting provider: the key is used elsewhere; its next calls from there join, for
        // three hours after the last one.
        calls.push(from("146.190.1.1", at(6, 11, 0, 0)));
        calls.push(from("146.190.1.2", at(6, 13, 30, 0)));
        calls.push(from("146.190.1.3", at(6, 20, 0, 0)));
        let out = run_cloud(&calls);
        let machine: Vec<&Signal> = out
            .iter()
            .filter(|s| s.rule_id == MACHINE_NETWORK_RULE_ID)
            .collect();
        assert_eq!(
            machine.len(),
            2,
            "the first and the one 2.5 h later: {machine:#?}"
        );
        assert!(
            machine[0].explanation.contains("AS14061 in SG"),
            "{}",
            machine[0].explanation
        );
        assert!(
            machine[1].explanation.contains("another call from AS14061"),
            "{}",
            machine[1].explanation
        );
    }

    #[test]
    fn a_network_new_to_the_organisation_stays_new_for_a_week_unless_many_use_it() {
        let attacked = |others: &[&'static str]| {
            let mut calls = workload_history();
            for (i, who) in others.iter().enumerate() {
                calls.push(Cloud {
                    t: at(5, 12, i as u32, 0),
                    id: format!("o{i}"),
                    provider: "gcp",
                    entity: who,
                    name: Some(who),
                    ip: "146.190.9.9",
                    ua: "curl/8",
                    op: "storage.objects.list",
                });
            }
            calls.push(Cloud {
                t: at(6, 11, 0, 0),
                id: "attack".into(),
                provider: "gcp",
                entity: SA,
                name: Some(SA),
                ip: "146.190.1.1",
                ua: "curl/8",
                op: "storage.objects.get",
            });
            run_cloud(&calls)
                .iter()
                .any(|s| s.rule_id == MACHINE_NETWORK_RULE_ID)
        };
        // Three other principals (an intruder's other stolen identities) used the hosting
        // provider the day before: still not the organisation's network.
        assert!(attacked(&[
            "a@corp.example",
            "b@corp.example",
            "c@corp.example"
        ]));
        // Six did (a team moved there): it is.
        assert!(!attacked(&[
            "a@corp.example",
            "b@corp.example",
            "c@corp.example",
            "d@corp.example",
            "e@corp.example",
            "f@corp.example"
        ]));
    }

    const UPN: &str = "dana@corp.example";

    fn sign_in(n: usize, t: DateTime<Utc>, ip: &'static str, ua: &'static str) -> Cloud {
        Cloud {
            t,
            id: format!("s{n}"),
            provider: "azure",
            entity: "oid-dana",
            name: Some(UPN),
            ip,
            ua,
            op: "Sign-in activity",
        }
    }

    const EDGE: &str = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36 Edg/124.0.0.0";

    #[test]
    fn a_sign_in_from_a_new_network_with_a_new_client_alerts_and_the_person_abroad_does_not() {
        let mut calls = Vec::new();
        for day in 1..=6 {
            for h in [8, 9, 10, 11, 13, 15, 16] {
                calls.push(sign_in(calls.len(), at(day, h, 0, 0), "203.0.113.7", EDGE));
            }
        }
        // At a new place with the usual laptop (another ISP): no new client, no alert.
        let mut abroad = calls.clone();
        abroad.push(sign_in(900, at(7, 10, 0, 0), "198.51.100.9", EDGE));
        assert!(
            run_cloud(&abroad)
                .iter()
                .all(|s| s.rule_id != NEW_CLIENT_RULE_ID),
            "the person's own device"
        );
        // A script on a hosting provider with the person's token: alert, and its next
        // token use from there joins.
        calls.push(sign_in(
            901,
            at(7, 10, 0, 0),
            "146.190.1.1",
            "python-requests/2.31.0",
        ));
        calls.push(sign_in(
            902,
            at(7, 11, 30, 0),
            "146.190.1.1",
            "python-requests/2.31.0",
        ));
        let out = run_cloud(&calls);
        let found: Vec<&Signal> = out
            .iter()
            .filter(|s| s.rule_id == NEW_CLIENT_RULE_ID)
            .collect();
        assert_eq!(found.len(), 2, "{out:#?}");
        assert!(
            found[0].explanation.contains("AS14061"),
            "{}",
            found[0].explanation
        );
    }
}
