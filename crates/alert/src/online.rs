//! Alerts and incidents as signals arrive (`serve`): the same folding rule as [`crate::Folder`]
//! (signals of one rule about one entity whose gaps are at most the window form one alert; the
//! earliest signal speaks for it; evidence in order of time, then id), applied online to alerts
//! with ids that the store keeps, and the alerts grouped into incidents.
//!
//! Pure logic, no IO: the caller resumes it from stored records ([`Resume`]), feeds signals with
//! the [`Context`] of their event ([`Alerter::add`]), and takes what changed
//! ([`Alerter::take_dirty`]) to commit.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Duration, Utc};
use cloudsentinel_core::{Event, Level, Signal};

use crate::fold::{joins, speaks_before};
use crate::record::{AlertRecord, AlertStatus, IncidentRecord, MAX_EVIDENCE};

/// What alerts and incidents key on, taken from the event a signal came from.
#[derive(Debug, Clone)]
pub struct Context {
    pub access_key: Option<String>,
    pub source_ip: Option<String>,
    /// The principal without the access key (incidents join on either).
    pub principal: String,
    /// Identities the event created or gave credentials to ([`crate::lineage`]).
    pub created: Vec<String>,
    /// The actor's name when the event gave one (a user principal name beside an object id).
    pub name: Option<String>,
}

impl Context {
    /// The context of the event a signal came from.
    pub fn of(e: &Event) -> Context {
        Context {
            access_key: e.actor.access_key_id.clone(),
            source_ip: e.source_ip.clone(),
            principal: e
                .principal()
                .map(str::to_string)
                .unwrap_or_else(|| e.entity()),
            created: crate::lineage::created_identities(e),
            name: e.actor.name.clone(),
        }
    }
}

/// Folds signals into alerts and alerts into incidents, in memory, remembering what changed.
pub struct Alerter {
    window: Duration,
    incident_window: Duration,
    /// (rule id, entity) -> open alert ids.
    open: HashMap<(String, String), Vec<i64>>,
    alerts: HashMap<i64, AlertRecord>,
    /// Principal or access key -> incident ids.
    incident_keys: HashMap<String, Vec<i64>>,
    incidents: HashMap<i64, IncidentRecord>,
    /// The keys each kept incident is filed under.
    incident_key_of: HashMap<i64, Vec<String>>,
    next_alert: i64,
    next_incident: i64,
    dirty_alerts: HashSet<i64>,
    dirty_incidents: HashSet<i64>,
    /// Latest event time seen, for pruning.
    horizon: DateTime<Utc>,
    /// Identity an incident's principal created -> (that incident, when).
    links: HashMap<String, (i64, DateTime<Utc>)>,
    /// Incident -> the name of its principal when that is known by an object id.
    incident_names: HashMap<i64, String>,
    /// Per kept alert, the time of each evidence id (the signal's first time), in the order of
    /// `event_ids`: evidence is kept in order of (time, id), like [`crate::Folder`]'s.
    evidence_at: HashMap<i64, Vec<DateTime<Utc>>>,
    counts: Counts,
}

/// How long signals fold into one alert and alerts into one incident.
#[derive(Debug, Clone, Copy)]
pub struct Windows {
    /// The largest gap between signals of one alert.
    pub dedup: Duration,
    /// The largest gap between alerts of one incident.
    pub incident: Duration,
}

impl Windows {
    /// Alerts last seen since the first time, and incidents since the second, are the ones a
    /// new signal can still join: what [`Alerter::resume`] needs.
    pub fn resume_since(&self, now: DateTime<Utc>) -> (DateTime<Utc>, DateTime<Utc>) {
        let since = now - self.dedup.max(self.incident) * 2;
        // Incidents as far back as an identity one of them created still leads to it.
        (since, since.min(now - Duration::days(LINEAGE_DAYS)))
    }
}

/// What the alerter starts from: the stored alerts and incidents a new signal can still join
/// (see [`Windows::resume_since`]) and the largest ids given so far.
#[derive(Debug, Default)]
pub struct Resume {
    pub max_alert_id: i64,
    pub max_incident_id: i64,
    pub alerts: Vec<AlertRecord>,
    pub incidents: Vec<IncidentRecord>,
}

/// What the alerter did since the counts were last taken, for the caller's metrics.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub alerts_new: u64,
    pub alerts_updated: u64,
    pub incidents_new: u64,
    pub auto_closed: u64,
}

/// Open alerts and incidents kept in memory at most; older ones are forgotten first.
const MAX_KEPT: usize = 50_000;
/// How long an identity an incident's principal created leads back to that incident.
pub const LINEAGE_DAYS: i64 = 7;
/// Keys (principals, access keys, addresses) one incident answers to at most.
const MAX_INCIDENT_KEYS: usize = 64;

/// Adds an evidence id at its time to an alert's list kept in order of (time, id), at most
/// [`MAX_EVIDENCE`] long (the earliest); an id already listed keeps its earliest time.
fn add_evidence(
    ids: &mut Vec<String>,
    times: &mut Vec<DateTime<Utc>>,
    id: String,
    t: DateTime<Utc>,
) {
    if times.len() != ids.len() {
        // Resumed without times: the stored order stands, at the alert's first time.
        times.resize(ids.len(), t);
    }
    if let Some(i) = ids.iter().position(|x| *x == id) {
        if t >= times[i] {
            return;
        }
        ids.remove(i);
        times.remove(i);
    }
    let (mut at, mut hi) = (0, ids.len());
    while at < hi {
        let mid = (at + hi) / 2;
        if (times[mid], &ids[mid]) < (t, &id) {
            at = mid + 1;
        } else {
            hi = mid;
        }
    }
    if at >= MAX_EVIDENCE {
        return;
    }
    ids.insert(at, id);
    times.insert(at, t);
    if ids.len() > MAX_EVIDENCE {
        ids.truncate(MAX_EVIDENCE);
        times.truncate(MAX_EVIDENCE);
    }
}

/// What an alert can join an incident by.
struct Joins {
    access_key: Option<String>,
    principal: String,
    /// The public source address, when the event had one.
    address: Option<std::net::IpAddr>,
    created: Vec<String>,
    /// The principal's name, when it is known by an object id.
    name: Option<String>,
}

/// The person behind a principal, by e-mail: an Entra user's name, a Google account, an AWS
/// Identity Center (or SAML) session named after its user. Service accounts and roles are no
/// person.
fn person_of(principal: &str, name: Option<&str>) -> Option<String> {
    let email = |s: &str| {
        let s = s.trim();
        (s.contains('@') && !s.contains(' ') && !s.ends_with(".gserviceaccount.com"))
            .then(|| s.to_ascii_lowercase())
    };
    if let Some(rest) = principal.strip_prefix("arn:aws:sts::") {
        return rest.rsplit('/').next().and_then(email);
    }
    if principal.starts_with("arn:") {
        return None;
    }
    email(principal).or_else(|| name.and_then(email))
}

/// A source address worth grouping by: public (not a VPC's, a loopback or link-local address,
/// which many unrelated callers share).
fn public_address(s: &str) -> Option<std::net::IpAddr> {
    let ip: std::net::IpAddr = s.parse().ok()?;
    let shared = match ip {
        std::net::IpAddr::V4(v) => {
            v.is_private()
                || v.is_loopback()
                || v.is_link_local()
                || v.is_unspecified()
                || v.is_broadcast()
        }
        std::net::IpAddr::V6(v) => {
            v.is_loopback()
                || v.is_unspecified()
                || (v.segments()[0] & 0xfe00) == 0xfc00
                || (v.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    (!shared).then_some(ip)
}

impl Alerter {
    /// An alerter that goes on from what was stored.
    pub fn resume(windows: Windows, from: Resume) -> Alerter {
        let mut a = Alerter {
            window: windows.dedup,
            incident_window: windows.incident,
            open: HashMap::new(),
            alerts: HashMap::new(),
            incident_keys: HashMap::new(),
            incidents: HashMap::new(),
            incident_key_of: HashMap::new(),
            next_alert: from.max_alert_id + 1,
            next_incident: from.max_incident_id + 1,
            dirty_alerts: HashSet::new(),
            dirty_incidents: HashSet::new(),
            horizon: DateTime::<Utc>::MIN_UTC,
            links: HashMap::new(),
            incident_names: HashMap::new(),
            evidence_at: HashMap::new(),
            counts: Counts::default(),
        };
        for i in from.incidents {
            a.file_incident(i);
        }
        for r in from.alerts {
            a.open
                .entry((r.rule_id.clone(), r.entity.clone()))
                .or_default()
                .push(r.id);
            a.horizon = a.horizon.max(r.last_seen);
            // The stored order stands: its evidence counts as seen when the alert began.
            a.evidence_at
                .insert(r.id, vec![r.first_seen; r.event_ids.len()]);
            a.alerts.insert(r.id, r);
        }
        a
    }

    /// A kept alert.
    pub fn alert(&self, id: i64) -> Option<&AlertRecord> {
        self.alerts.get(&id)
    }

    /// A kept incident.
    pub fn incident(&self, id: i64) -> Option<&IncidentRecord> {
        self.incidents.get(&id)
    }

    /// What was done since the last call.
    pub fn take_counts(&mut self) -> Counts {
        std::mem::take(&mut self.counts)
    }

    /// Files the incident under one more key (a principal or address that joined it).
    fn add_incident_key(&mut self, id: i64, key: &str) {
        let keys = self.incident_key_of.entry(id).or_default();
        if keys.iter().any(|k| k == key) || keys.len() >= MAX_INCIDENT_KEYS {
            return;
        }
        keys.push(key.to_string());
        self.incident_keys
            .entry(key.to_string())
            .or_default()
            .push(id);
    }

    /// Files an incident under its key, its entity and what else it answers to (resumed from
    /// the store: the identities its principal created lead back to it again).
    fn file_incident(&mut self, i: IncidentRecord) {
        let mut keys = vec![i.key.clone()];
        if i.entity != i.key {
            keys.push(i.entity.clone());
        }
        for k in &i.join_keys {
            if !keys.contains(k) && keys.len() < MAX_INCIDENT_KEYS {
                keys.push(k.clone());
            }
        }
        for k in &keys {
            self.incident_keys.entry(k.clone()).or_default().push(i.id);
            if let Some(identity) = k.strip_prefix("created:") {
                self.links.insert(identity.to_string(), (i.id, i.last_seen));
            }
        }
        self.incident_key_of.insert(i.id, keys);
        self.incidents.insert(i.id, i);
    }

    /// Folds a signal into an open alert or opens one; answers the id of a new alert. `now` is
    /// the wall time recorded as the alert's creation or update.
    pub fn add(&mut self, s: Signal, ctx: Context, now: DateTime<Utc>) -> Option<i64> {
        let Context {
            access_key,
            source_ip,
            principal,
            created,
            name,
        } = ctx;
        self.horizon = self.horizon.max(s.last_seen);
        let w = self.window;
        let key = (s.rule_id.clone(), s.entity.clone());
        let existing = self.open.get(&key).and_then(|ids| {
            ids.iter().copied().find(|id| {
                self.alerts.get(id).is_some_and(|a| {
                    joins(w, (a.first_seen, a.last_seen), (s.first_seen, s.last_seen))
                })
            })
        });
        let created_ids = created;
        let mut created = None;
        let id = if let Some(id) = existing {
            let a = self.alerts.get_mut(&id).expect("listed alerts are kept");
            a.count += 1;
            // A routine (informational) signal folded with one that is not: the alert is as
            // severe as its most severe signal.
            a.level = a.level.max(s.level);
            if speaks_before(
                (s.first_seen, &s.account, &s.explanation),
                (a.first_seen, &a.account, &a.explanation),
            ) {
                a.first_seen = s.first_seen;
                a.explanation = s.explanation;
                a.account = s.account;
                // Anomaly titles say what was unusual in their signal: the speaking one's, as
                // `hunt` keeps (`fold::Partial`).
                a.title = s.title;
            }
            a.last_seen = a.last_seen.max(s.last_seen);
            let times = self.evidence_at.entry(id).or_default();
            for e in s.event_ids {
                add_evidence(&mut a.event_ids, times, e, s.first_seen);
            }
            a.updated = now;
            self.counts.alerts_updated += 1;
            id
        } else {
            let id = self.next_alert;
            self.next_alert += 1;
            let mut event_ids = Vec::with_capacity(s.event_ids.len().min(MAX_EVIDENCE));
            let mut times = Vec::with_capacity(event_ids.capacity());
            for e in s.event_ids {
                add_evidence(&mut event_ids, &mut times, e, s.first_seen);
            }
            let a = AlertRecord {
                id,
                kind: s.kind.as_str().to_string(),
                rule_id: s.rule_id,
                title: s.title,
                level: s.level,
                techniques: s.techniques,
                tactics: s.tactics,
                entity: s.entity,
                account: s.account,
                access_key: access_key.clone(),
                source_ip: source_ip.clone(),
                first_seen: s.first_seen,
                last_seen: s.last_seen,
                created: now,
                updated: now,
                count: 1,
                event_ids,
                explanation: s.explanation,
                status: AlertStatus::Open,
                assignee: None,
                incident_id: None,
                verdict: None,
                tp_score: None,
            };
            self.open.entry(key).or_default().push(id);
            self.alerts.insert(id, a);
            self.evidence_at.insert(id, times);
            self.counts.alerts_new += 1;
            created = Some(id);
            id
        };
        self.dirty_alerts.insert(id);
        let joins = Joins {
            access_key,
            principal,
            address: source_ip.as_deref().and_then(public_address),
            created: created_ids,
            name,
        };
        self.attach_incident(id, joins, now);
        created
    }

    /// Records the feedback model's chance that a new alert is a true positive, and closes the
    /// alert when the analysts asked for likely false positives to be closed and the chance is
    /// below their bar.
    pub fn set_tp_score(&mut self, id: i64, p: f64, auto_close_below: Option<f64>) {
        let Some(a) = self.alerts.get_mut(&id) else {
            return;
        };
        a.tp_score = Some(p);
        self.dirty_alerts.insert(id);
        if let Some(bar) = auto_close_below
            && p < bar
        {
            a.status = AlertStatus::Resolved;
            a.explanation = format!(
                "{} [closed automatically: the feedback model gives it a {:.0}% chance of being a true positive, below the configured {:.0}%]",
                a.explanation,
                p * 100.0,
                bar * 100.0
            );
            self.counts.auto_closed += 1;
        }
    }

    /// Files the alert under an incident whose time is within the incident window and that
    /// shares its access key, its principal or (for alerts, not informational signals) its public
    /// source address; else under the incident of whoever created the principal within
    /// [`LINEAGE_DAYS`] ([`crate::lineage`]); else opens one. The incident then answers to the
    /// alert's keys too, and to the identities the alert's event created.
    fn attach_incident(&mut self, alert_id: i64, joins: Joins, now: DateTime<Utc>) {
        let a = self.alerts[&alert_id].clone();
        let iw = self.incident_window;
        // Informational signals (change records, routine findings) join the incident their
        // principal already has, as context, but never open one, and do not join by address
        // (an organisation's own egress carries everyone's routine).
        let may_open = a.level > Level::Informational;
        let Joins {
            access_key,
            principal,
            address,
            created,
            name,
        } = joins;
        let address = address.filter(|_| may_open).map(|ip| format!("ip:{ip}"));
        // One person across clouds: the e-mail an Entra user, a Google account and an Identity
        // Center session share.
        let person = person_of(&principal, name.as_deref()).map(|p| format!("person:{p}"));
        let keys: Vec<String> = access_key
            .into_iter()
            .chain([principal.clone()])
            .chain(person)
            .collect();
        let in_window = |i: &IncidentRecord| {
            a.first_seen <= i.last_seen + iw && a.last_seen + iw >= i.first_seen
        };
        let incident_id = match a.incident_id {
            Some(id) if self.incidents.contains_key(&id) => Some(id),
            _ => keys.iter().chain(address.iter()).find_map(|k| {
                self.incident_keys.get(k).and_then(|ids| {
                    ids.iter()
                        .rev()
                        .copied()
                        .find(|id| self.incidents.get(id).is_some_and(in_window))
                })
            }),
        };
        // The identity was created by an incident's principal: its later doings are that story.
        let incident_id = incident_id.or_else(|| {
            keys.iter().find_map(|k| {
                let (id, at) = self.links.get(k)?;
                (a.first_seen >= *at - iw
                    && a.first_seen <= *at + chrono::Duration::days(LINEAGE_DAYS)
                    && self.incidents.contains_key(id))
                .then_some(*id)
            })
        });
        let id = match incident_id {
            Some(id) => id,
            None if !may_open => return,
            None => {
                let id = self.next_incident;
                self.next_incident += 1;
                self.counts.incidents_new += 1;
                self.file_incident(IncidentRecord {
                    id,
                    key: keys[0].clone(),
                    entity: principal.clone(),
                    account: a.account.clone(),
                    title: a.title.clone(),
                    level: a.level,
                    status: AlertStatus::Open,
                    first_seen: a.first_seen,
                    last_seen: a.last_seen,
                    created: now,
                    updated: now,
                    alert_count: 0,
                    tactics: Vec::new(),
                    techniques: Vec::new(),
                    assignee: None,
                    severity: None,
                    close_reason: None,
                    join_keys: Vec::new(),
                });
                id
            }
        };
        if let Some(n) = name.filter(|n| *n != principal)
            && self.incidents[&id].entity == principal
            && crate::is_object_id(&principal)
            && self.incident_names.len() < MAX_KEPT
        {
            self.incident_names.insert(id, n);
        }
        let newly_attached = a.incident_id != Some(id);
        if newly_attached {
            self.alerts.get_mut(&alert_id).expect("kept").incident_id = Some(id);
        }
        for k in keys.iter().chain(address.iter()) {
            self.add_incident_key(id, k);
        }
        for c in created {
            self.add_incident_key(id, &format!("created:{c}"));
            if self.links.len() >= MAX_KEPT {
                self.links
                    .retain(|_, (_, at)| *at + chrono::Duration::days(LINEAGE_DAYS) >= a.last_seen);
            }
            if self.links.len() < MAX_KEPT {
                self.links.insert(c, (id, a.last_seen));
            }
        }
        let inc = self.incidents.get_mut(&id).expect("filed");
        if newly_attached {
            inc.alert_count += 1;
        }
        inc.first_seen = inc.first_seen.min(a.first_seen);
        inc.last_seen = inc.last_seen.max(a.last_seen);
        inc.updated = now;
        if a.level > inc.level {
            inc.level = a.level;
        }
        for t in &a.tactics {
            if !inc.tactics.contains(t) {
                inc.tactics.push(t.clone());
            }
        }
        inc.tactics.sort_by_key(|t| tactic_rank(t));
        for t in &a.techniques {
            if !inc.techniques.contains(t) {
                inc.techniques.push(t.clone());
            }
        }
        inc.techniques.sort();
        inc.title = incident_title(inc, &a, self.incident_names.get(&id));
        self.dirty_incidents.insert(id);
    }

    /// The alerts and incidents changed since the last call, by id, to be committed.
    pub fn take_dirty(&mut self) -> (Vec<AlertRecord>, Vec<IncidentRecord>) {
        let mut alerts: Vec<AlertRecord> = self
            .dirty_alerts
            .drain()
            .filter_map(|id| self.alerts.get(&id).cloned())
            .collect();
        alerts.sort_by_key(|a| a.id);
        let mut incidents: Vec<IncidentRecord> = self
            .dirty_incidents
            .drain()
            .filter_map(|id| {
                let mut i = self.incidents.get(&id).cloned()?;
                i.join_keys = self.incident_key_of.get(&id).cloned().unwrap_or_default();
                Some(i)
            })
            .collect();
        incidents.sort_by_key(|i| i.id);
        (alerts, incidents)
    }

    /// Forgets alerts and incidents too old to take new signals (by event time), and the
    /// oldest ones beyond [`MAX_KEPT`].
    pub fn prune(&mut self) {
        if self.alerts.len() + self.incidents.len() < MAX_KEPT / 4 {
            return;
        }
        let alert_cut = self.horizon - self.window * 2;
        let mut old: Vec<(DateTime<Utc>, i64)> =
            self.alerts.values().map(|a| (a.last_seen, a.id)).collect();
        old.sort();
        let excess = self.alerts.len().saturating_sub(MAX_KEPT);
        for (i, (t, id)) in old.into_iter().enumerate() {
            if t >= alert_cut && i >= excess {
                break;
            }
            self.evidence_at.remove(&id);
            if let Some(a) = self.alerts.remove(&id)
                && let Some(list) = self.open.get_mut(&(a.rule_id.clone(), a.entity.clone()))
            {
                list.retain(|x| *x != id);
                if list.is_empty() {
                    self.open.remove(&(a.rule_id, a.entity));
                }
            }
        }
        let horizon = self.horizon;
        self.links
            .retain(|_, (_, at)| *at + chrono::Duration::days(LINEAGE_DAYS) >= horizon);
        let incident_cut = self.horizon - self.incident_window * 2;
        let mut old: Vec<(DateTime<Utc>, i64)> = self
            .incidents
            .values()
            .map(|i| (i.last_seen, i.id))
            .collect();
        old.sort();
        let excess = self.incidents.len().saturating_sub(MAX_KEPT);
        for (n, (t, id)) in old.into_iter().enumerate() {
            if t >= incident_cut && n >= excess {
                break;
            }
            self.incidents.remove(&id);
            self.incident_names.remove(&id);
            for k in self.incident_key_of.remove(&id).unwrap_or_default() {
                if let Some(list) = self.incident_keys.get_mut(&k) {
                    list.retain(|x| *x != id);
                    if list.is_empty() {
                        self.incident_keys.remove(&k);
                    }
                }
            }
        }
    }
}

/// ATT&CK's tactic order (the kill chain), for incident timelines.
pub fn tactic_rank(t: &str) -> usize {
    cloudsentinel_core::TACTICS
        .iter()
        .position(|x| *x == t)
        .unwrap_or(cloudsentinel_core::TACTICS.len())
}

fn incident_title(inc: &IncidentRecord, latest: &AlertRecord, name: Option<&String>) -> String {
    if inc.alert_count <= 1 {
        return latest.title.clone();
    }
    let who = name.unwrap_or(&inc.entity);
    if inc.tactics.is_empty() {
        format!("{} alerts about {who}", inc.alert_count)
    } else {
        format!(
            "{} alerts about {who}: {}",
            inc.alert_count,
            inc.tactics.join(" → ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cloudsentinel_core::SignalKind;

    fn windows() -> Windows {
        Windows {
            dedup: Duration::hours(1),
            incident: Duration::hours(1),
        }
    }

    fn alerter() -> Alerter {
        Alerter::resume(windows(), Resume::default())
    }

    /// Folds a signal with its context into the alerter; the id of the alert it made or joined.
    fn raise(a: &mut Alerter, s: Signal, c: Context) -> i64 {
        let key = (s.rule_id.clone(), s.entity.clone());
        if let Some(id) = a.add(s, c, Utc::now()) {
            return id;
        }
        *a.open[&key].last().expect("an open alert")
    }

    fn at(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, minute, 0)
            .unwrap()
    }

    fn signal(rule: &str, entity: &str, level: Level, t: DateTime<Utc>) -> Signal {
        Signal {
            kind: SignalKind::Rule,
            rule_id: rule.into(),
            title: rule.into(),
            level,
            techniques: vec![],
            tactics: vec![],
            entity: entity.into(),
            account: None,
            first_seen: t,
            last_seen: t,
            event_ids: vec![format!("{rule}-{entity}-{}", t.timestamp())],
            explanation: String::new(),
        }
    }

    fn ctx(principal: &str, ip: &str, created: &[&str]) -> Context {
        Context {
            access_key: None,
            source_ip: Some(ip.into()),
            principal: principal.into(),
            created: created.iter().map(|s| s.to_string()).collect(),
            name: None,
        }
    }

    fn incident_of(a: &Alerter, id: i64) -> i64 {
        a.alerts[&id].incident_id.expect("in an incident")
    }

    #[test]
    fn one_address_against_many_principals_and_what_an_intruder_created_make_one_incident() {
        let mut a = alerter();
        let attacker = "185.156.73.54";
        // A spray from one address, then the accounts it broke into, each from that address.
        let spray = raise(
            &mut a,
            signal("spray", attacker, Level::High, at(5, 3, 0)),
            ctx(attacker, attacker, &[]),
        );
        let user = raise(
            &mut a,
            signal("risky-sign-in", "svc@corp", Level::Medium, at(5, 3, 20)),
            ctx("svc@corp", attacker, &["sp-1"]),
        );
        assert_eq!(incident_of(&a, spray), incident_of(&a, user));
        // The service principal the account armed, two days later from another address.
        let sp = raise(
            &mut a,
            signal("run-command", "sp-1", Level::Medium, at(7, 9, 0)),
            ctx("sp-1", "159.223.44.182", &[]),
        );
        assert_eq!(
            incident_of(&a, sp),
            incident_of(&a, spray),
            "the identity it created"
        );
        // Another principal from a private address (a VPC endpoint many share), meanwhile: its own.
        let other = raise(
            &mut a,
            signal("burst", "dev@corp", Level::Medium, at(5, 3, 10)),
            ctx("dev@corp", "10.0.3.7", &[]),
        );
        let other2 = raise(
            &mut a,
            signal("burst", "ops@corp", Level::Medium, at(5, 3, 15)),
            ctx("ops@corp", "10.0.3.7", &[]),
        );
        assert_ne!(incident_of(&a, other), incident_of(&a, spray));
        assert_ne!(
            incident_of(&a, other),
            incident_of(&a, other2),
            "a private address joins nothing"
        );
        // An informational record from the attacker's address joins no one by address.
        let info = a.add(
            signal(
                "change-record",
                "someone@corp",
                Level::Informational,
                at(5, 3, 30),
            ),
            ctx("someone@corp", attacker, &[]),
            Utc::now(),
        );
        assert!(info.is_some_and(|id| a.alerts[&id].incident_id.is_none()));
        // What the created identity does after a week is a new story.
        let late = raise(
            &mut a,
            signal("run-command2", "sp-1", Level::Medium, at(20, 9, 0)),
            ctx("sp-1", "159.223.44.183", &[]),
        );
        assert_ne!(incident_of(&a, late), incident_of(&a, spray));
    }

    #[test]
    fn one_person_across_clouds_is_one_incident() {
        let mut a = alerter();
        let mut entra = ctx("9d2f7a1c-4b3e-4c5d-8e6f-0a1b2c3d4e5f", "198.51.100.4", &[]);
        entra.name = Some("Alice@Corp.example".into());
        let first = raise(
            &mut a,
            signal(
                "entra-risky",
                "9d2f7a1c-4b3e-4c5d-8e6f-0a1b2c3d4e5f",
                Level::High,
                at(5, 9, 0),
            ),
            entra,
        );
        let gcp = raise(
            &mut a,
            signal("gcp-owner", "alice@corp.example", Level::High, at(5, 9, 20)),
            ctx("alice@corp.example", "203.0.113.9", &[]),
        );
        let sso =
            "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_Admin_0a1b/alice@corp.example";
        let aws = raise(
            &mut a,
            signal("aws-burst", sso, Level::Medium, at(5, 9, 40)),
            ctx(sso, "192.0.2.77", &[]),
        );
        assert_eq!(incident_of(&a, gcp), incident_of(&a, first));
        assert_eq!(incident_of(&a, aws), incident_of(&a, first));
        assert_eq!(
            a.incidents[&incident_of(&a, first)].entity,
            "9d2f7a1c-4b3e-4c5d-8e6f-0a1b2c3d4e5f",
            "an incident is about its first principal, not a join key"
        );
        // A role or a service account is nobody's person.
        assert_eq!(person_of("arn:aws:iam::1:role/ci", None), None);
        assert_eq!(person_of("etl@p.iam.gserviceaccount.com", None), None);
        assert_eq!(
            person_of("arn:aws:sts::1:assumed-role/app-server-role/i-0abc", None),
            None
        );
        let bob = raise(
            &mut a,
            signal("gcp-owner", "bob@corp.example", Level::High, at(5, 9, 30)),
            ctx("bob@corp.example", "203.0.113.10", &[]),
        );
        assert_ne!(incident_of(&a, bob), incident_of(&a, first));
    }

    #[test]
    fn grouping_survives_a_restart() {
        let t0 = Utc::now() - Duration::hours(30);
        let attacker = "185.156.73.54";
        let mut a = alerter();
        let first = raise(
            &mut a,
            signal("spray", "svc@corp", Level::High, t0),
            ctx("svc@corp", attacker, &["sp-9"]),
        );
        let incident = a.alerts[&first].incident_id.unwrap();
        // What was committed, read back after a restart.
        let (alerts, incidents) = a.take_dirty();
        let mut b = Alerter::resume(
            windows(),
            Resume {
                max_alert_id: first,
                max_incident_id: incident,
                alerts,
                incidents,
            },
        );
        let same_address = raise(
            &mut b,
            signal(
                "risky",
                "ops@corp",
                Level::Medium,
                t0 + Duration::minutes(20),
            ),
            ctx("ops@corp", attacker, &[]),
        );
        assert_eq!(b.alerts[&same_address].incident_id, Some(incident));
        assert!(same_address > first, "ids go on from the stored ones");
        let created_later = raise(
            &mut b,
            signal(
                "run-command",
                "sp-9",
                Level::Medium,
                t0 + Duration::hours(26),
            ),
            ctx("sp-9", "159.223.44.182", &[]),
        );
        assert_eq!(b.alerts[&created_later].incident_id, Some(incident));
    }

    #[test]
    fn online_folding_gives_the_batch_folders_alerts_for_signals_in_time_order() {
        // Minutes 0, 50, 100 chain into one alert with a 60-minute window; 200 stands alone; the
        // evidence of a multi-event signal is ordered by (time, id) in both.
        let t = |m: i64| at(5, 0, 0) + Duration::minutes(m);
        let mut signals = vec![
            signal("r", "a", Level::Low, t(0)),
            signal("r", "a", Level::High, t(50)),
            signal("r", "a", Level::Low, t(100)),
            signal("r", "a", Level::Low, t(200)),
            signal("r", "b", Level::Low, t(10)),
        ];
        signals[1].event_ids = vec!["z".into(), "b".into()];
        let mut folder = crate::Folder::new(Duration::hours(1));
        let mut online = alerter();
        for s in signals.clone() {
            folder.add(s.clone());
            let p = s.entity.clone();
            online.add(s, ctx(&p, "10.0.0.1", &[]), Utc::now());
        }
        let batch = folder.finish(&cloudsentinel_detect::RuleSetBuilder::new().build());
        let (mut alerts, _) = online.take_dirty();
        alerts.sort_by(|x, y| (x.first_seen, &x.entity).cmp(&(y.first_seen, &y.entity)));
        assert_eq!(batch.len(), 3);
        assert_eq!(alerts.len(), batch.len());
        for (o, b) in alerts.iter().zip(&batch) {
            assert_eq!(
                (
                    &o.rule_id,
                    &o.entity,
                    o.first_seen,
                    o.last_seen,
                    o.count,
                    &o.event_ids,
                    o.level
                ),
                (
                    &b.rule_id,
                    &b.entity,
                    b.first_seen,
                    b.last_seen,
                    b.count,
                    &b.event_ids,
                    b.level
                )
            );
        }
        assert_eq!(batch[0].count, 3);
        assert_eq!(batch[0].event_ids[1..3], ["b".to_string(), "z".to_string()]);
    }

    #[test]
    fn evidence_keeps_the_earliest_ids_up_to_the_cap() {
        let mut ids = Vec::new();
        let mut times = Vec::new();
        let t0 = at(5, 0, 0);
        for i in (0..MAX_EVIDENCE + 10).rev() {
            add_evidence(
                &mut ids,
                &mut times,
                format!("e{i:04}"),
                t0 + Duration::seconds(i as i64),
            );
        }
        assert_eq!(ids.len(), MAX_EVIDENCE);
        assert_eq!(ids[0], "e0000");
        assert_eq!(ids[MAX_EVIDENCE - 1], format!("e{:04}", MAX_EVIDENCE - 1));
        // Seen again earlier: moves to its earlier place, listed once.
        add_evidence(
            &mut ids,
            &mut times,
            "e0005".into(),
            t0 - Duration::seconds(1),
        );
        assert_eq!(ids[0], "e0005");
        assert_eq!(ids.iter().filter(|x| *x == "e0005").count(), 1);
    }
}
