//! Behavioural baselines per principal and per account, and the features an event has against
//! them.
//!
//! A baseline remembers what a principal usually does: operations and services, source
//! addresses, /24 networks, autonomous systems (or /16 prefixes without an AS table), countries,
//! regions, user-agent families, hours of the day (weekday and weekend apart), its call rate,
//! recent failures and its last location. Every memory decays with a half-life, so old habits
//! fade; every set is bounded (a capped map of decayed weights that drops its lightest entry,
//! a heavy-hitters sketch), so memory stays bounded however long a principal lives.
//!
//! [`Baselines::observe`] answers the event's features *before* the event is learned, then
//! learns it. Features are versioned: [`SCHEMA_VERSION`] and [`FEATURES`] describe the vector.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use chrono::{DateTime, Datelike, Timelike, Utc};
use cloudsentinel_core::Event;
use cloudsentinel_core::row::{EventRow, NewEvent};
use serde::{Deserialize, Serialize};

use cloudsentinel_context::netdb::{self, NetDb};

/// Version of the feature vector. Models record it; a model of another version is not used.
pub const SCHEMA_VERSION: u32 = 1;

/// One feature of the vector: its name and what it measures.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FeatureDef {
    pub name: &'static str,
    pub doc: &'static str,
}

/// The feature vector, in order.
pub const FEATURES: &[FeatureDef] = &[
    FeatureDef {
        name: "new_operation",
        doc: "1 when the principal has not called this operation before (within its memory)",
    },
    FeatureDef {
        name: "new_service",
        doc: "1 when the principal has not used this service before",
    },
    FeatureDef {
        name: "new_ip",
        doc: "1 when the source address is new for the principal",
    },
    FeatureDef {
        name: "new_network",
        doc: "1 when the source /24 (IPv6: /48) is new for the principal",
    },
    FeatureDef {
        name: "new_asn",
        doc: "1 when the source autonomous system (without an AS table: the /16, IPv6 /32) is new for the principal",
    },
    FeatureDef {
        name: "new_country",
        doc: "1 when the source country is new for the principal (needs an AS table with countries)",
    },
    FeatureDef {
        name: "new_region",
        doc: "1 when the cloud region is new for the principal",
    },
    FeatureDef {
        name: "new_user_agent",
        doc: "1 when the user-agent family (product and OS) is new for the principal",
    },
    FeatureDef {
        name: "operation_rarity",
        doc: "how rare the operation is across all principals: -log10 of its share of all calls, divided by 6, at most 1",
    },
    FeatureDef {
        name: "sensitivity",
        doc: "how sensitive the operation is: identity and credentials, keys, logging, sharing, secrets (0 to 1)",
    },
    FeatureDef {
        name: "write",
        doc: "1 when the call changes something (not read-only)",
    },
    FeatureDef {
        name: "failed",
        doc: "1 when the call failed",
    },
    FeatureDef {
        name: "error_burst",
        doc: "ln(1 + failed calls by the principal in the last 10 minutes)",
    },
    FeatureDef {
        name: "rate_deviation",
        doc: "ln((calls this hour + 1) / (usual calls per active hour + 1)), 0 to 5",
    },
    FeatureDef {
        name: "hour_rarity",
        doc: "share of the principal's activity at hours more usual than this one (weekday and weekend apart): 0.97 means outside 97% of its activity",
    },
    FeatureDef {
        name: "geo_velocity",
        doc: "speed between the previous source country and this one, in 1000 km/h, at most 5 (needs an AS table with countries)",
    },
];

/// Number of features.
pub const DIMS: usize = 16;

/// The largest value each feature takes (all start at 0).
pub const DOMAIN: [f32; DIMS] = [
    1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 4.2, 5.0, 1.0, 5.0,
];

/// Feature indices, for code that reads one.
pub mod f {
    pub const NEW_OPERATION: usize = 0;
    pub const NEW_SERVICE: usize = 1;
    pub const NEW_IP: usize = 2;
    pub const NEW_NETWORK: usize = 3;
    pub const NEW_ASN: usize = 4;
    pub const NEW_COUNTRY: usize = 5;
    pub const NEW_REGION: usize = 6;
    pub const NEW_USER_AGENT: usize = 7;
    pub const OPERATION_RARITY: usize = 8;
    pub const SENSITIVITY: usize = 9;
    pub const WRITE: usize = 10;
    pub const FAILED: usize = 11;
    pub const ERROR_BURST: usize = 12;
    pub const RATE_DEVIATION: usize = 13;
    pub const HOUR_RARITY: usize = 14;
    pub const GEO_VELOCITY: usize = 15;
}

/// One event, as the baselines see it (borrowed from a stored row or a decoded event).
#[derive(Debug, Clone)]
pub struct Observation<'a> {
    pub id: &'a str,
    pub time: DateTime<Utc>,
    pub provider: &'a str,
    pub account: Option<&'a str>,
    pub region: Option<&'a str>,
    /// The entity alerts are about ([`Event::entity`]).
    pub entity: &'a str,
    /// The actor's name; for AWS role sessions `role/session`.
    pub actor_name: Option<&'a str>,
    pub access_key: Option<&'a str>,
    pub source_ip: Option<&'a str>,
    pub user_agent: Option<&'a str>,
    pub service: &'a str,
    pub operation: &'a str,
    pub read_only: Option<bool>,
    pub success: bool,
}

/// The stored row and the row about to be stored name the same columns alike.
macro_rules! observation {
    ($r:expr) => {
        Observation {
            id: &$r.id,
            time: $r.time,
            provider: &$r.provider,
            account: $r.account.as_deref(),
            region: $r.region.as_deref(),
            entity: &$r.principal,
            actor_name: $r.actor_name.as_deref(),
            access_key: $r.access_key.as_deref(),
            source_ip: $r.source_ip.as_deref(),
            user_agent: $r.user_agent.as_deref(),
            service: &$r.service,
            operation: &$r.operation,
            read_only: $r.read_only,
            success: $r.success,
        }
    };
}

impl<'a> Observation<'a> {
    pub fn of_row(r: &'a NewEvent) -> Observation<'a> {
        observation!(r)
    }

    pub fn of_stored(r: &'a EventRow) -> Observation<'a> {
        observation!(r)
    }

    pub fn of_observed(r: &'a crate::offline::Observed) -> Observation<'a> {
        observation!(r)
    }

    /// `entity` must be `e.entity()`, computed by the caller so that it can be borrowed.
    pub fn of_event(e: &'a Event, entity: &'a str) -> Observation<'a> {
        Observation {
            id: &e.id,
            time: e.time,
            provider: e.provider.as_str(),
            account: e.account.as_deref(),
            region: e.region.as_deref(),
            entity,
            actor_name: e.actor.name.as_deref(),
            access_key: e.actor.access_key_id.as_deref(),
            source_ip: e.source_ip.as_deref(),
            user_agent: e.user_agent.as_deref(),
            service: &e.action.service,
            operation: &e.action.operation,
            read_only: e.action.read_only,
            success: e.outcome.success,
        }
    }

    /// Whom the baseline is about: the entity without its access key, so that the many
    /// short-lived keys of one role or user share one baseline.
    pub fn principal(&self) -> &'a str {
        if let Some(k) = self.access_key
            && let Some(p) = self
                .entity
                .strip_suffix(')')
                .and_then(|s| s.strip_suffix(k))
                .and_then(|s| s.strip_suffix(" ("))
        {
            return p;
        }
        self.entity
    }

    /// Whom the baseline is about: the [`principal`](Self::principal), and for a role session
    /// whose name is a person (`alice@example.com`, as Identity Center names them) or an EC2
    /// instance (`i-0abc...`), that session: each engineer behind one shared role, and each
    /// instance behind one instance profile, has habits of their own. Sessions with made-up
    /// names (CI runs, SDK defaults) share the role's baseline.
    pub fn baseline_key(&self) -> std::borrow::Cow<'a, str> {
        let principal = self.principal();
        if let Some((_, session)) = self.actor_name.and_then(|n| n.rsplit_once('/'))
            && (session.contains('@') || is_instance_id(session))
            && principal.contains(":role/")
        {
            return std::borrow::Cow::Owned(format!("{principal}/{session}"));
        }
        std::borrow::Cow::Borrowed(principal)
    }

    /// Whether the call changes something (its read-only flag, or its name when there is none).
    pub fn is_write_call(&self) -> bool {
        self.is_write()
    }

    fn is_write(&self) -> bool {
        match self.read_only {
            Some(r) => !r,
            None => !is_read_name(self.operation),
        }
    }
}

fn is_instance_id(s: &str) -> bool {
    s.strip_prefix("i-")
        .is_some_and(|h| (8..=17).contains(&h.len()) && h.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn is_read_name(op: &str) -> bool {
    let op = op.rsplit(['.', '/', ':']).next().unwrap_or(op);
    let lower = op.to_ascii_lowercase();
    [
        "get", "list", "describe", "head", "lookup", "search", "read", "query", "batchget", "view",
    ]
    .iter()
    .any(|p| lower.starts_with(p))
}

/// How the baselines learn.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Settings {
    /// After this many days without being seen again, a habit weighs half as much.
    pub half_life_days: f64,
    /// A principal is scored only once it has been seen this long...
    pub learning_days: f64,
    /// ...and this many times.
    pub learning_events: u32,
    /// Principals remembered at most; the least recently seen are forgotten first.
    pub max_principals: usize,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            half_life_days: 14.0,
            learning_days: 2.0,
            learning_events: 30,
            max_principals: 100_000,
        }
    }
}

/// A decayed weight below this is forgotten: one sighting fades out after about 3.3 half-lives.
const FORGOTTEN: f32 = 0.1;

/// A bounded set of decayed weights, keyed by a 64-bit hash of the value.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Seen {
    /// hash → (weight at `hour`, hour since the epoch it was last seen)
    m: HashMap<u64, (f32, u32)>,
}

impl Seen {
    fn weight(&self, key: u64, hour: u32, half_life_h: f32) -> f32 {
        self.m
            .get(&key)
            .map(|(w, h)| decay(*w, hour.saturating_sub(*h), half_life_h))
            .unwrap_or(0.0)
    }

    fn known(&self, key: u64, hour: u32, half_life_h: f32) -> bool {
        self.weight(key, hour, half_life_h) >= FORGOTTEN
    }

    fn add(&mut self, key: u64, hour: u32, half_life_h: f32, cap: usize) {
        let w = self.weight(key, hour, half_life_h) + 1.0;
        self.m.insert(key, (w, hour));
        if self.m.len() > cap {
            // Drop the lightest tenth at once, so that eviction is rare.
            let mut ws: Vec<(u64, f32)> = self
                .m
                .iter()
                .map(|(k, (w, h))| (*k, decay(*w, hour.saturating_sub(*h), half_life_h)))
                .collect();
            // The lightest, ties broken by key: which values are forgotten must not depend on the
            // map's order. Only which ones matters, not their order among themselves.
            let lightest = (cap / 10 + 1).min(ws.len());
            ws.select_nth_unstable_by(lightest - 1, |a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)));
            for (k, _) in &ws[..lightest] {
                if *k != key {
                    self.m.remove(k);
                }
            }
        }
    }
}

fn decay(w: f32, hours: u32, half_life_h: f32) -> f32 {
    if hours == 0 {
        w
    } else {
        w * (0.5f32).powf(hours as f32 / half_life_h)
    }
}

/// Caps per set.
const CAP_OPS: usize = 512;
const CAP_SERVICES: usize = 128;
const CAP_IPS: usize = 64;
const CAP_NETS: usize = 64;
const CAP_ASNS: usize = 32;
const CAP_SMALL: usize = 24;
const CAP_ERRORS: usize = 64;
const CAP_GLOBAL_OPS: usize = 50_000;

/// What one principal usually does.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct Profile {
    first: i64,
    last: i64,
    events: u64,
    ops: Seen,
    services: Seen,
    ips: Seen,
    nets: Seen,
    asns: Seen,
    countries: Seen,
    regions: Seen,
    agents: Seen,
    /// Decayed activity per hour of the day, weekdays then weekends.
    hours: Vec<f32>,
    hours_at: u32,
    /// The hour being counted and its count.
    rate_hour: u32,
    rate_count: u32,
    /// Mean calls per active hour (exponentially weighted) once an hour is complete.
    rate_mean: f32,
    rate_hours: u32,
    /// Times (seconds) of recent failed calls.
    errors: VecDeque<i64>,
    /// Last known country and when.
    place: Option<([u8; 2], i64)>,
}

/// Learned behaviour of every principal, plus how often each operation is called overall.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Baselines {
    pub settings: Settings,
    principals: HashMap<String, Profile>,
    /// Per (provider, service, operation): decayed call count and its hour.
    global_ops: Seen,
    global_total: (f32, u32),
    /// The latest event time seen, for decay and eviction.
    pub now: i64,
    pub events: u64,
    #[serde(skip)]
    netdb: Option<std::sync::Arc<NetDb>>,
    /// The AS of the last observed event's address (for the detectors, so that it is looked up
    /// once).
    #[serde(skip)]
    last_asn: Option<u32>,
}

/// The numbers behind one event's features, for its explanation.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Detail {
    pub asn: Option<u32>,
    pub country: Option<[u8; 2]>,
    pub prev_country: Option<[u8; 2]>,
    pub km: f32,
    pub hours_apart: f32,
    pub errors: u32,
    pub rate_count: u32,
    pub rate_mean: f32,
    pub op_share: f32,
    pub hour_mass: f32,
    /// Hours from this time of day to the nearest hour the principal is usually active at (at
    /// least 5% of its busiest hour's activity; weekdays and weekends apart).
    pub hour_gap: u32,
}

/// An event's features, or why it is not scored.
#[derive(Debug, Clone, PartialEq)]
pub enum Scored {
    /// The principal is still being learned (or the event names no principal).
    Learning,
    Features(Features),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub values: [f32; DIMS],
    pub detail: Detail,
}

impl Baselines {
    pub fn new(settings: Settings) -> Baselines {
        Baselines {
            settings,
            principals: HashMap::new(),
            global_ops: Seen::default(),
            global_total: (0.0, 0),
            now: 0,
            events: 0,
            netdb: None,
            last_asn: None,
        }
    }

    /// Uses an AS table for the AS and country features.
    pub fn set_netdb(&mut self, db: Option<std::sync::Arc<NetDb>>) {
        self.netdb = db;
    }

    /// A baseline's first and last event time (Unix seconds) and its event count.
    pub fn seen(&self, key: &str) -> Option<(i64, i64, u64)> {
        self.principals
            .get(key)
            .map(|p| (p.first, p.last, p.events))
    }

    pub fn principals(&self) -> usize {
        self.principals.len()
    }

    fn half_life_h(&self) -> f32 {
        (self.settings.half_life_days * 24.0).max(1.0) as f32
    }

    /// The event's features against what was learned before it, then learns it.
    pub fn observe(&mut self, o: &Observation<'_>) -> Scored {
        self.last_asn = None;
        let t = o.time.timestamp();
        self.now = self.now.max(t);
        self.events += 1;
        let hour = (t.max(0) / 3600) as u32;
        let hl = self.half_life_h();
        let op_key = hash3(o.provider, o.service, o.operation);
        let key = o.baseline_key();
        let principal: &str = &key;
        // Global rarity, before this call counts.
        let total = decay(
            self.global_total.0,
            hour.saturating_sub(self.global_total.1),
            hl,
        );
        let op_w = self.global_ops.weight(op_key, hour, hl);
        let op_share = (op_w + 1.0) / (total + 1.0);
        self.global_total = (total + 1.0, hour);
        self.global_ops.add(op_key, hour, hl, CAP_GLOBAL_OPS);

        if principal.is_empty() || principal == "unknown" {
            return Scored::Learning;
        }
        let net = self.network(o.source_ip);
        self.last_asn = net.asn;
        if !self.principals.contains_key(principal) {
            if self.principals.len() >= self.settings.max_principals {
                self.evict();
            }
            self.principals.insert(
                principal.to_string(),
                Profile {
                    first: t,
                    hours: vec![0.0; 48],
                    ..Profile::default()
                },
            );
        }
        let learning = &self.settings;
        let p = self.principals.get_mut(principal).expect("inserted above");
        let mature = p.events >= learning.learning_events as u64
            && (t - p.first) as f64 >= learning.learning_days * 86_400.0;

        let svc_key = hash2(o.provider, o.service);
        let agent = o.user_agent.map(agent_family);
        let region = o.region.filter(|r| !r.is_empty() && *r != "global");
        let slot = hour_slot(o.time);

        let mut v = [0f32; DIMS];
        let mut d = Detail {
            op_share,
            asn: net.asn,
            country: net.country,
            ..Detail::default()
        };
        if mature {
            let flag = |b: bool| if b { 1.0 } else { 0.0 };
            v[f::NEW_OPERATION] = flag(!p.ops.known(op_key, hour, hl));
            v[f::NEW_SERVICE] = flag(!p.services.known(svc_key, hour, hl));
            if let Some(ip) = net.ip {
                v[f::NEW_IP] = flag(!p.ips.known(ip, hour, hl));
            }
            if let Some(n) = net.net {
                v[f::NEW_NETWORK] = flag(!p.nets.known(n, hour, hl));
            }
            if let Some(a) = net.asn_key {
                v[f::NEW_ASN] = flag(!p.asns.known(a, hour, hl));
            }
            if let Some(c) = net.country {
                v[f::NEW_COUNTRY] = flag(!p.countries.known(country_key(c), hour, hl));
            }
            if let Some(r) = region {
                v[f::NEW_REGION] = flag(!p.regions.known(hash1(r), hour, hl));
            }
            if let Some(a) = &agent {
                v[f::NEW_USER_AGENT] = flag(!p.agents.known(hash1(a), hour, hl));
            }
            v[f::OPERATION_RARITY] = ((-(op_share.max(1e-9)).log10()) / 6.0).clamp(0.0, 1.0);
            v[f::SENSITIVITY] = sensitivity(o.service, o.operation).0;
            v[f::WRITE] = flag(o.is_write());
            v[f::FAILED] = flag(!o.success);
            // Hour of day: the share of activity at hours more usual than this one.
            let hours = decayed_hours(p, hour, hl);
            let here = hours[slot];
            let sum: f32 = hours.iter().sum();
            if sum > 0.0 {
                let more: f32 = hours.iter().filter(|w| **w > here).sum();
                v[f::HOUR_RARITY] = (more / sum).clamp(0.0, 1.0);
                d.hour_mass = v[f::HOUR_RARITY];
                d.hour_gap = hour_gap(&hours, slot);
            }
        }
        // Rate: calls in this hour against the usual calls per active hour.
        if p.rate_hour != hour {
            if p.rate_count > 0 {
                let a = if p.rate_hours < 10 {
                    1.0 / (p.rate_hours as f32 + 1.0)
                } else {
                    0.1
                };
                p.rate_mean += a * (p.rate_count as f32 - p.rate_mean);
                p.rate_hours += 1;
            }
            p.rate_hour = hour;
            p.rate_count = 0;
        }
        p.rate_count += 1;
        // Failures in the last ten minutes.
        while p.errors.front().is_some_and(|e| t - *e > 600) {
            p.errors.pop_front();
        }
        if !o.success {
            p.errors.push_back(t);
            if p.errors.len() > CAP_ERRORS {
                p.errors.pop_front();
            }
        }
        // Speed between the previous country and this one.
        if let (Some(c), Some((pc, pt))) = (net.country, p.place)
            && c != pc
            && let (Some(a), Some(b)) = (netdb::centroid(pc), netdb::centroid(c))
        {
            let km = netdb::distance_km(a, b) as f32;
            let h = ((t - pt).max(0) as f32 / 3600.0).max(0.25);
            d.km = km;
            d.hours_apart = (t - pt).max(0) as f32 / 3600.0;
            d.prev_country = Some(pc);
            if mature {
                v[f::GEO_VELOCITY] = (km / h / 1000.0).clamp(0.0, 5.0);
            }
        }
        if mature {
            d.errors = p.errors.len() as u32;
            v[f::ERROR_BURST] = (1.0 + d.errors as f32).ln() * if o.success { 0.0 } else { 1.0 };
            d.rate_count = p.rate_count;
            d.rate_mean = p.rate_mean;
            if p.rate_hours >= 3 {
                v[f::RATE_DEVIATION] = ((p.rate_count as f32 + 1.0) / (p.rate_mean + 1.0))
                    .ln()
                    .clamp(0.0, 5.0);
            }
        }

        // Learn the event.
        p.last = p.last.max(t);
        p.events += 1;
        p.ops.add(op_key, hour, hl, CAP_OPS);
        p.services.add(svc_key, hour, hl, CAP_SERVICES);
        if let Some(ip) = net.ip {
            p.ips.add(ip, hour, hl, CAP_IPS);
        }
        if let Some(n) = net.net {
            p.nets.add(n, hour, hl, CAP_NETS);
        }
        if let Some(a) = net.asn_key {
            p.asns.add(a, hour, hl, CAP_ASNS);
        }
        if let Some(c) = net.country {
            p.countries.add(country_key(c), hour, hl, CAP_SMALL);
            p.place = Some((c, t));
        }
        if let Some(r) = region {
            p.regions.add(hash1(r), hour, hl, CAP_SMALL);
        }
        if let Some(a) = &agent {
            p.agents.add(hash1(a), hour, hl, CAP_SMALL);
        }
        // Decay the histogram in place to this hour, then count the event.
        let k = decay(1.0, hour.saturating_sub(p.hours_at), hl);
        p.hours.iter_mut().for_each(|w| *w *= k);
        p.hours[slot] += 1.0;
        p.hours_at = hour;

        if mature {
            Scored::Features(Features {
                values: v,
                detail: d,
            })
        } else {
            Scored::Learning
        }
    }

    /// Forgets the tenth of principals seen least recently.
    fn evict(&mut self) {
        let mut lasts: Vec<i64> = self.principals.values().map(|p| p.last).collect();
        let k = (lasts.len() / 10 + 1).min(lasts.len() - 1);
        lasts.select_nth_unstable(k);
        let cut = lasts[k];
        self.principals.retain(|_, p| p.last > cut);
    }

    /// Forgets principals not seen for ten half-lives (their habits weigh nothing by then).
    pub fn prune(&mut self) {
        let horizon = (self.settings.half_life_days * 10.0 * 86_400.0) as i64;
        let now = self.now;
        self.principals.retain(|_, p| now - p.last <= horizon);
    }

    /// The AS of the address of the event [`Baselines::observe`] saw last.
    pub fn last_asn(&self) -> Option<u32> {
        self.last_asn
    }

    fn network(&self, ip: Option<&str>) -> Net {
        let Some(ip) = ip.and_then(|s| s.parse::<IpAddr>().ok()) else {
            return Net::default();
        };
        match ip {
            IpAddr::V4(v4) => {
                let a = u32::from(v4);
                let info = self.netdb.as_ref().and_then(|db| db.lookup(v4));
                Net {
                    ip: Some(0x4000_0000_0000_0000 | a as u64),
                    net: Some(0x2400_0000_0000_0000 | (a >> 8) as u64),
                    asn_key: Some(match info.filter(|i| i.asn != 0) {
                        Some(i) => 0xa500_0000_0000_0000 | i.asn as u64,
                        None => 0x1600_0000_0000_0000 | (a >> 16) as u64,
                    }),
                    asn: info.map(|i| i.asn).filter(|a| *a != 0),
                    country: info.and_then(|i| i.country),
                }
            }
            IpAddr::V6(v6) => {
                let x = u128::from(v6);
                let info = self.netdb.as_ref().and_then(|db| db.lookup(v6));
                Net {
                    ip: Some(hash1(&v6.to_string())),
                    net: Some(hash1(&format!("{:x}/48", x >> 80))),
                    asn_key: Some(match info.filter(|i| i.asn != 0) {
                        Some(i) => 0xa500_0000_0000_0000 | i.asn as u64,
                        None => hash1(&format!("{:x}/32", x >> 96)),
                    }),
                    asn: info.map(|i| i.asn).filter(|a| *a != 0),
                    country: info.and_then(|i| i.country),
                }
            }
        }
    }

    /// The baselines as a compressed blob, to keep through the `Store`.
    pub fn to_bytes(&self) -> Vec<u8> {
        let json = serde_json::to_vec(self).expect("baselines serialise");
        lz4_flex::compress_prepend_size(&json)
    }

    pub fn from_bytes(b: &[u8]) -> Result<Baselines, String> {
        let json = lz4_flex::decompress_size_prepended(b).map_err(|e| format!("baselines: {e}"))?;
        serde_json::from_slice(&json).map_err(|e| format!("baselines: {e}"))
    }

    /// A one-line summary of a principal's baseline, for explanations and the API.
    pub fn describe(&self, principal: &str) -> Option<serde_json::Value> {
        let p = self.principals.get(principal)?;
        Some(serde_json::json!({
            "first_seen": DateTime::<Utc>::from_timestamp(p.first, 0),
            "last_seen": DateTime::<Utc>::from_timestamp(p.last, 0),
            "events": p.events,
            "operations": p.ops.m.len(),
            "addresses": p.ips.m.len(),
            "networks": p.nets.m.len(),
            "user_agents": p.agents.m.len(),
            "calls_per_active_hour": p.rate_mean,
        }))
    }
}

#[derive(Default)]
struct Net {
    ip: Option<u64>,
    net: Option<u64>,
    asn_key: Option<u64>,
    asn: Option<u32>,
    country: Option<[u8; 2]>,
}

fn decayed_hours(p: &Profile, hour: u32, hl: f32) -> [f32; 48] {
    let mut out = [0f32; 48];
    let k = decay(1.0, hour.saturating_sub(p.hours_at), hl);
    for (o, w) in out.iter_mut().zip(&p.hours) {
        *o = w * k;
    }
    out
}

/// Hours from `slot`'s time of day to the nearest usual one of a 48-slot histogram (weekdays and
/// weekends together: a weekend at the usual hours is not an unusual time); 12 when there is no
/// activity at all.
fn hour_gap(hours: &[f32; 48], slot: usize) -> u32 {
    let day: Vec<f32> = (0..24).map(|i| hours[i] + hours[24 + i]).collect();
    let max = day.iter().copied().fold(0.0f32, f32::max);
    if max <= 0.0 {
        return 12;
    }
    let h = slot % 24;
    (0..24)
        .filter(|i| day[*i] >= 0.05 * max)
        .map(|i| {
            let d = h.abs_diff(i) as u32;
            d.min(24 - d)
        })
        .min()
        .unwrap_or(12)
}

/// Hour of the day, weekdays in 0..24 and weekends in 24..48 (UTC).
fn hour_slot(t: DateTime<Utc>) -> usize {
    let weekend = t.weekday().number_from_monday() >= 6;
    t.hour() as usize + if weekend { 24 } else { 0 }
}

fn country_key(c: [u8; 2]) -> u64 {
    ((c[0] as u64) << 8) | c[1] as u64
}

/// FNV-1a over several parts, separated.
fn fnv(parts: &[&str]) -> u64 {
    use cloudsentinel_core::hash::{FNV_OFFSET, fnv1a_extend};
    parts.iter().fold(FNV_OFFSET, |h, p| {
        fnv1a_extend(fnv1a_extend(h, p.as_bytes()), &[0xff])
    })
}

fn hash1(a: &str) -> u64 {
    fnv(&[a])
}

fn hash2(a: &str, b: &str) -> u64 {
    fnv(&[a, b])
}

fn hash3(a: &str, b: &str, c: &str) -> u64 {
    fnv(&[a, b, c])
}

/// The product and operating system of a user agent: `aws-cli/2.15.0 Python/3.11 Linux/6.1`
/// is `aws-cli linux`; a browser is `browser windows`. Versions change too often to be habits.
pub fn agent_family(ua: &str) -> String {
    let lower = ua.to_ascii_lowercase();
    let trimmed = lower.trim_start_matches(['[', '(', ' ']);
    let product = if trimmed.starts_with("mozilla/") {
        "browser"
    } else {
        trimmed
            .split(['/', ' ', ',', ';', '(', ')', '['])
            .next()
            .unwrap_or("")
    };
    let os = if lower.contains("kali") {
        "kali"
    } else if lower.contains("windows") {
        "windows"
    } else if lower.contains("android") {
        "android"
    } else if lower.contains("iphone") || lower.contains("ipad") || lower.contains(" ios") {
        "ios"
    } else if lower.contains("darwin") || lower.contains("mac os") || lower.contains("macos") {
        "macos"
    } else if lower.contains("linux") {
        "linux"
    } else {
        ""
    };
    let product = if product.is_empty() { "other" } else { product };
    if os.is_empty() {
        product.to_string()
    } else {
        format!("{product} {os}")
    }
}

/// How sensitive an operation is, and its category: identity and credentials, encryption
/// keys, logging, sharing, secrets. 0 for everything else.
pub fn sensitivity(service: &str, operation: &str) -> (f32, Option<&'static str>) {
    let svc = service
        .trim_end_matches(".amazonaws.com")
        .trim_end_matches(".googleapis.com")
        .to_ascii_lowercase();
    let op = operation.to_ascii_lowercase();
    let last = op.rsplit(['.', '/']).next().unwrap_or(&op).to_string();
    let read = is_read_name(&last) || op.ends_with("/read");
    let has = |s: &str| op.contains(s);
    // Logging and monitoring switched off or redirected.
    if has("stoplogging")
        || has("deletetrail")
        || has("updatetrail")
        || has("puteventselectors")
        || has("deletesink")
        || has("updatesink")
        || has("deleteflowlogs")
        || has("deletedetector")
        || has("disablesecurityhub")
        || has("diagnosticsettings/delete")
        || (svc == "logging" && (last.starts_with("delete") || last.starts_with("update")))
    {
        return (1.0, Some("logging"));
    }
    // Taking up a role (AssumeRole*, GetSessionToken) is how every session starts: a sign-in,
    // not a change.
    if svc == "sts" {
        return (0.0, None);
    }
    // Identity: credentials, roles, policies, memberships.
    let identity_svc = matches!(
        svc.as_str(),
        "iam" | "sso" | "identitystore" | "organizations" | "cloudresourcemanager"
    ) || has("microsoft.authorization")
        || has("serviceprincipal")
        || has("application")
        || has("role")
        || has("member");
    if identity_svc && !read {
        let credential = has("accesskey")
            || has("loginprofile")
            || has("credential")
            || has("serviceaccountkey")
            || has("password")
            || has("secret");
        let power = has("policy") || has("role") || has("admin") || has("member") || has("group");
        if credential || power {
            return (1.0, Some("identity"));
        }
        return (0.7, Some("identity"));
    }
    if (svc == "kms" || has("cryptokey") || has("microsoft.keyvault/vaults/keys"))
        && (has("disable")
            || has("schedulekeydeletion")
            || has("destroy")
            || has("putkeypolicy")
            || has("creategrant")
            || has("delete"))
    {
        return (1.0, Some("encryption keys"));
    }
    if has("modifysnapshotattribute")
        || has("modifyimageattribute")
        || has("modifydbsnapshotattribute")
        || has("putbucketpolicy")
        || has("putbucketacl")
        || has("deletepublicaccessblock")
        || has("putpublicaccessblock")
        || has("sharedaccesssignature")
        || has("listkeys")
        || (svc == "storage" && has("setiampolicy"))
    {
        return (0.9, Some("sharing"));
    }
    if has("getsecretvalue")
        || has("getparameter")
        || has("secretversions.access")
        || has("vaults/secrets")
        || (svc == "kms" && last == "decrypt")
    {
        return (0.5, Some("secrets"));
    }
    if has("setiampolicy") {
        return (1.0, Some("identity"));
    }
    (0.0, None)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn a_full_set_forgets_its_lightest_tenth_ties_by_key_and_never_the_value_just_added() {
        let mut s = Seen::default();
        // 20 values seen twice (weight 2), then 20 seen once (weight 1), keys in both orders.
        for k in (100..120).rev() {
            s.add(k, 0, 24.0, 1_000);
            s.add(k, 0, 24.0, 1_000);
        }
        for k in [
            17, 13, 29, 11, 25, 21, 15, 27, 19, 23, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28,
        ] {
            s.add(k, 0, 24.0, 1_000);
        }
        // Past a cap of 40: the lightest 40 / 10 + 1 = 5 are 1 (just added) and 10 to 13, lowest
        // keys first among equals; all but the value just added go.
        s.add(1, 0, 24.0, 40);
        let mut kept: Vec<u64> = s.m.keys().copied().collect();
        kept.sort_unstable();
        let expected: Vec<u64> = [1].into_iter().chain(14..30).chain(100..120).collect();
        assert_eq!(kept, expected);
    }

    fn obs<'a>(t: DateTime<Utc>, ip: &'a str, op: &'a str, ua: &'a str) -> Observation<'a> {
        Observation {
            id: "x",
            time: t,
            provider: "aws",
            account: Some("111122223333"),
            region: Some("eu-west-1"),
            entity: "arn:aws:iam::111122223333:user/alice (AKIAEXAMPLE)",
            actor_name: Some("alice"),
            access_key: Some("AKIAEXAMPLE"),
            source_ip: Some(ip),
            user_agent: Some(ua),
            service: "s3",
            operation: op,
            read_only: Some(true),
            success: true,
        }
    }

    fn trained() -> (Baselines, DateTime<Utc>) {
        let mut b = Baselines::new(Settings::default());
        // Ten weekdays of office hours from one address.
        let start = Utc.with_ymd_and_hms(2026, 3, 2, 0, 0, 0).unwrap();
        for day in 0..14 {
            let d = start + chrono::Duration::days(day);
            if d.weekday().number_from_monday() >= 6 {
                continue;
            }
            for i in 0..20 {
                let t = d + chrono::Duration::minutes(9 * 60 + i * 20);
                let op = if i % 2 == 0 {
                    "ListBuckets"
                } else {
                    "GetObject"
                };
                b.observe(&obs(
                    t,
                    "203.0.113.10",
                    op,
                    "aws-cli/2.15.0 Python/3.11 Linux/6.1",
                ));
            }
        }
        (b, start + chrono::Duration::days(14))
    }

    #[test]
    fn the_access_key_is_not_part_of_the_principal() {
        let t = Utc::now();
        let o = obs(t, "1.2.3.4", "GetObject", "x");
        assert_eq!(o.principal(), "arn:aws:iam::111122223333:user/alice");
        let o = Observation {
            access_key: None,
            ..o
        };
        assert_eq!(
            o.principal(),
            "arn:aws:iam::111122223333:user/alice (AKIAEXAMPLE)"
        );
    }

    #[test]
    fn people_and_instances_behind_one_role_have_baselines_of_their_own() {
        let t = Utc::now();
        let role = "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1 (ASIAEXAMPLE)";
        let base = Observation {
            entity: role,
            access_key: Some("ASIAEXAMPLE"),
            actor_name: Some("AWSReservedSSO_Admin_1/alice@example.com"),
            ..obs(t, "1.2.3.4", "GetObject", "x")
        };
        assert_eq!(
            base.baseline_key(),
            "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1/alice@example.com"
        );
        // Incidents still join on the role.
        assert_eq!(
            base.principal(),
            "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_Admin_1"
        );
        let instance = Observation {
            actor_name: Some("app-server-role/i-0f3c9a2b7d1e4a5c6"),
            ..base.clone()
        };
        assert!(instance.baseline_key().ends_with("/i-0f3c9a2b7d1e4a5c6"));
        for made_up in [
            "ci/GitHubActions",
            "lambda/botocore-session-1712345678",
            "x/i-notanid",
        ] {
            let o = Observation {
                actor_name: Some(made_up),
                ..base.clone()
            };
            assert_eq!(o.baseline_key(), o.principal(), "{made_up}");
        }
        // A user is a user, whatever its name.
        let user = obs(t, "1.2.3.4", "GetObject", "x");
        assert_eq!(user.baseline_key(), "arn:aws:iam::111122223333:user/alice");
    }

    #[test]
    fn taking_up_a_role_is_not_a_sensitive_change() {
        assert_eq!(sensitivity("sts", "AssumeRoleWithWebIdentity"), (0.0, None));
        assert_eq!(sensitivity("sts", "AssumeRole"), (0.0, None));
        assert_eq!(
            sensitivity("iam", "UpdateAssumeRolePolicy").1,
            Some("identity")
        );
    }

    #[test]
    fn a_new_principal_is_learned_before_it_is_scored() {
        let mut b = Baselines::new(Settings::default());
        let t = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        for i in 0..40 {
            let s = b.observe(&obs(
                t + chrono::Duration::minutes(i),
                "203.0.113.10",
                "GetObject",
                "aws-cli",
            ));
            assert_eq!(
                s,
                Scored::Learning,
                "event {i} is within the learning period"
            );
        }
        let later = t + chrono::Duration::days(3);
        assert!(matches!(
            b.observe(&obs(later, "203.0.113.10", "GetObject", "aws-cli")),
            Scored::Features(_)
        ));
    }

    #[test]
    fn usual_behaviour_has_no_first_seen_flags_and_a_stranger_has_them_all() {
        let (mut b, end) = trained();
        let usual = end + chrono::Duration::hours(10); // a Monday, 10:00
        let Scored::Features(x) = b.observe(&obs(
            usual,
            "203.0.113.10",
            "GetObject",
            "aws-cli/2.16.0 Python/3.12 Linux/6.2",
        )) else {
            panic!("a mature principal is scored");
        };
        for i in [
            f::NEW_OPERATION,
            f::NEW_SERVICE,
            f::NEW_IP,
            f::NEW_NETWORK,
            f::NEW_ASN,
            f::NEW_USER_AGENT,
            f::NEW_REGION,
        ] {
            assert_eq!(
                x.values[i], 0.0,
                "{} is set for usual behaviour",
                FEATURES[i].name
            );
        }
        assert!(x.values[f::HOUR_RARITY] < 0.9, "{:?}", x.values);
        let night = end + chrono::Duration::hours(3);
        let Scored::Features(y) = b.observe(&obs(
            night,
            "146.190.3.4",
            "ListRoles",
            "python-requests/2.31",
        )) else {
            panic!()
        };
        for i in [
            f::NEW_OPERATION,
            f::NEW_IP,
            f::NEW_NETWORK,
            f::NEW_ASN,
            f::NEW_USER_AGENT,
        ] {
            assert_eq!(
                y.values[i], 1.0,
                "{} is not set for a stranger",
                FEATURES[i].name
            );
        }
        assert!(
            y.values[f::HOUR_RARITY] > 0.95,
            "03:00 is outside the principal's hours: {:?}",
            y.values
        );
        assert!(y.values[f::OPERATION_RARITY] > x.values[f::OPERATION_RARITY]);
    }

    #[test]
    fn habits_fade_with_time() {
        let (mut b, end) = trained();
        // The address was seen 200 times. 60 days later (over four half-lives) it is still
        // known; 200 days later (over fourteen) it is forgotten.
        let later = end + chrono::Duration::days(60) + chrono::Duration::hours(10);
        let Scored::Features(x) =
            b.clone()
                .observe(&obs(later, "203.0.113.10", "GetObject", "aws-cli/2 Linux"))
        else {
            panic!()
        };
        assert_eq!(x.values[f::NEW_IP], 0.0);
        let much_later = end + chrono::Duration::days(200) + chrono::Duration::hours(10);
        let Scored::Features(x) = b.observe(&obs(
            much_later,
            "203.0.113.10",
            "GetObject",
            "aws-cli/2 Linux",
        )) else {
            panic!()
        };
        assert_eq!(x.values[f::NEW_IP], 1.0);
    }

    #[test]
    fn sets_stay_bounded() {
        let mut b = Baselines::new(Settings::default());
        let t = Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap();
        for i in 0..5000u32 {
            let ip = format!("10.{}.{}.{}", i % 200, (i / 200) % 250, i % 250);
            b.observe(&obs(
                t + chrono::Duration::seconds(i as i64),
                &ip,
                "GetObject",
                "x",
            ));
        }
        let p = b.principals.values().next().unwrap();
        assert!(p.ips.m.len() <= CAP_IPS, "{}", p.ips.m.len());
        assert!(p.nets.m.len() <= CAP_NETS);
    }

    #[test]
    fn a_rate_burst_and_an_error_burst_show() {
        let (mut b, end) = trained();
        let t = end + chrono::Duration::hours(10);
        let mut last = None;
        for i in 0..300 {
            let mut o = obs(
                t + chrono::Duration::seconds(i),
                "203.0.113.10",
                "GetObject",
                "aws-cli/2 Linux",
            );
            o.success = false;
            last = Some(b.observe(&o));
        }
        let Some(Scored::Features(x)) = last else {
            panic!()
        };
        assert!(x.values[f::RATE_DEVIATION] > 2.0, "{:?}", x.values);
        assert!(x.values[f::ERROR_BURST] > 3.0, "{:?}", x.values);
        assert_eq!(x.detail.errors, CAP_ERRORS as u32);
    }

    #[test]
    fn baselines_survive_serialisation() {
        let (b, end) = trained();
        let mut c = Baselines::from_bytes(&b.to_bytes()).unwrap();
        assert!(Baselines::from_bytes(b"garbage").is_err());
        let mut b = b;
        let o = obs(
            end + chrono::Duration::hours(3),
            "146.190.3.4",
            "ListRoles",
            "curl/8",
        );
        assert_eq!(b.observe(&o), c.observe(&o));
    }

    #[test]
    fn impossible_travel_needs_countries() {
        let db = NetDb::parse("203.0.113.0\t203.0.113.255\t64500\tDE\tHOME\n146.190.0.0\t146.190.255.255\t14061\tSG\tDO\n").unwrap();
        let (mut b, end) = trained();
        b.set_netdb(Some(std::sync::Arc::new(db)));
        b.observe(&obs(
            end + chrono::Duration::hours(9),
            "203.0.113.10",
            "GetObject",
            "aws-cli/2 Linux",
        ));
        let Scored::Features(x) = b.observe(&obs(
            end + chrono::Duration::hours(10),
            "146.190.3.4",
            "GetObject",
            "aws-cli/2 Linux",
        )) else {
            panic!()
        };
        assert_eq!(x.values[f::NEW_COUNTRY], 1.0);
        assert!(
            x.values[f::GEO_VELOCITY] > 5.0 - 1e-6,
            "DE to SG in an hour: {:?}",
            x.values
        );
        assert_eq!(x.detail.prev_country, Some(*b"DE"));
        assert_eq!(x.detail.asn, Some(14061));
    }

    #[test]
    fn sensitive_operations_are_recognised() {
        assert_eq!(
            sensitivity("iam", "CreateAccessKey"),
            (1.0, Some("identity"))
        );
        assert_eq!(
            sensitivity("cloudtrail", "StopLogging"),
            (1.0, Some("logging"))
        );
        assert_eq!(
            sensitivity("ec2", "ModifySnapshotAttribute").1,
            Some("sharing")
        );
        assert_eq!(
            sensitivity("kms", "ScheduleKeyDeletion").1,
            Some("encryption keys")
        );
        assert_eq!(
            sensitivity("secretsmanager", "GetSecretValue").1,
            Some("secrets")
        );
        assert_eq!(
            sensitivity(
                "iam.googleapis.com",
                "google.iam.admin.v1.CreateServiceAccountKey"
            )
            .1,
            Some("identity")
        );
        assert_eq!(sensitivity("s3", "GetObject"), (0.0, None));
        assert_eq!(sensitivity("iam", "ListRoles"), (0.0, None));
        assert_eq!(sensitivity("ec2", "DescribeInstances"), (0.0, None));
    }

    #[test]
    fn agent_families_ignore_versions() {
        assert_eq!(
            agent_family("aws-cli/2.15.0 Python/3.11.6 Linux/6.1 exe/x86_64"),
            "aws-cli linux"
        );
        assert_eq!(
            agent_family("aws-cli/2.16.1 Python/3.12 Linux/6.5"),
            "aws-cli linux"
        );
        assert_eq!(
            agent_family("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"),
            "browser windows"
        );
        assert_eq!(
            agent_family("Boto3/1.34.0 md/Botocore#1.34.0 os/linux#6.1-kali"),
            "boto3 kali"
        );
        assert_eq!(agent_family("[aws-sdk-go/1.44]"), "aws-sdk-go");
    }
}
