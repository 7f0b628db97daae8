//! Routine: is what a rule found new for this actor, or what it does every day?
//!
//! A nightly security scanner sweeps hundreds of read-only APIs, a CI plan reads a module's worth
//! of resources, NAT gateways carry every instance's calls: each trips a burst or threshold rule
//! every day. A rule that opts in (`routine:` in its YAML) has each of its findings compared with
//! its own history for the same actor, and a finding that repeats that history is kept as an
//! informational signal, with the history named in its explanation, instead of an alert:
//!
//! - `routine: actor`: routine when the same rule found the same of the actor (the role behind a
//!   session, or the user) on an earlier day within [`HISTORY_DAYS`], from the same autonomous
//!   system, within [`HOUR_SLACK`] hours of the same time of day. The same burst from a new
//!   actor, a new AS or at a new hour still alerts at the rule's level.
//! - `routine: shared-egress`: for findings about one session's source addresses. Routine when
//!   every address the session used in the window is an address of the account's own egress:
//!   used by at least two other sessions of the same account (instances behind one NAT gateway).
//!   Credentials replayed from an attacker's host use an address no other session uses.
//! - `routine: peers`: for changes a whole team makes, each person now and then (developers
//!   deleting their sandbox resource groups, engineers reading a storage account's keys). Routine
//!   as with `actor`, or when at least [`PEERS`] other actors of the same account had the same
//!   finding within [`HISTORY_DAYS`]. The same change in an account where nobody makes it still
//!   alerts.
//!
//! Findings must reach the judge in event-time order (the correlation stage's order), so that
//! "earlier" means earlier. Memory is bounded: history older than [`HISTORY_DAYS`] is dropped,
//! and each actor keeps at most [`MAX_OCCURRENCES`] occurrences per rule.

use std::collections::HashMap;
use std::net::IpAddr;

use chrono::{DateTime, Timelike, Utc};
use cloudsentinel_core::{Event, Level, Signal};

/// How far back an actor's history reaches.
pub const HISTORY_DAYS: i64 = 14;
/// How many hours apart two times of day still count as the same.
pub const HOUR_SLACK: u32 = 3;
/// The widest span of hours (first to last, UTC) that counts as the actor's usual time of day.
pub const MAX_SPAN_H: u32 = 14;
/// Occurrences kept per rule and actor.
pub const MAX_OCCURRENCES: usize = 64;
/// Sessions an egress address needs besides the one judged to count as the account's own.
const SHARED_BY: usize = 2;
/// Other actors of the account that make a `peers` finding routine.
pub const PEERS: usize = 2;
/// Actors remembered per rule and account for `peers` rules.
const MAX_PEERS: usize = 64;

/// How a rule's findings are compared with history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RoutineKind {
    Actor,
    SharedEgress,
    Peers,
}

impl RoutineKind {
    /// The `routine:` attribute of a rule, if it names a known kind.
    pub fn parse(s: &str) -> Option<RoutineKind> {
        match s.trim() {
            "actor" => Some(RoutineKind::Actor),
            "shared-egress" => Some(RoutineKind::SharedEgress),
            "peers" => Some(RoutineKind::Peers),
            _ => None,
        }
    }
}

/// What the judge needs to know of an event.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The role behind a session, or the user / service principal.
    pub actor: String,
    /// The session (role session, key) when there is one; else the actor.
    pub session: String,
    pub asn: Option<u32>,
    pub as_name: Option<std::sync::Arc<str>>,
    pub ip: Option<IpAddr>,
}

impl Facts {
    pub fn of(e: &Event) -> Facts {
        let a = &e.actor;
        let actor = a
            .role_arn
            .clone()
            .or_else(|| a.id.clone())
            .or_else(|| a.name.clone())
            .unwrap_or_else(|| e.entity());
        let session = a.id.clone().unwrap_or_else(|| actor.clone());
        let network = e.network.as_ref();
        Facts {
            actor,
            session,
            asn: network.and_then(|n| n.asn),
            as_name: network.and_then(|n| n.as_name.clone()),
            ip: e.source_ip.as_deref().and_then(|s| s.parse().ok()),
        }
    }
}

#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Occurrence {
    day: i64,
    hour: u32,
    asn: Option<u32>,
}

/// An egress address's recent sessions.
#[derive(Debug, Default, Clone, serde::Serialize, serde::Deserialize)]
struct Egress {
    /// (session, first day, last day).
    sessions: Vec<(u64, i64, i64)>,
}

/// The history findings are judged against.
#[derive(Debug, Default)]
pub struct Routine {
    /// (rule id, actor) -> occurrences, oldest first.
    seen: HashMap<(String, String), Vec<Occurrence>>,
    /// (account, address) -> sessions that used it, with the day they last did.
    egress: HashMap<(String, IpAddr), Egress>,
    /// session -> addresses it used, with when (for `shared-egress` rules' inputs).
    recent: HashMap<String, Vec<(IpAddr, DateTime<Utc>)>>,
    /// session -> its recent addresses as last handed out ([`Routine::addresses_of`]): one copy
    /// shared by every finding held with the same addresses.
    handed_out: HashMap<String, std::sync::Arc<[IpAddr]>>,
    /// (rule id, account) -> actors (hashed) with a finding, and the last day they had one.
    peers: HashMap<(String, String), Vec<(u64, i64)>>,
    last_prune_day: i64,
}

fn day_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(86_400)
}

fn date_of(day: i64) -> String {
    DateTime::from_timestamp(day * 86_400, 0)
        .map(|t| t.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// A routine finding becomes an informational signal whose explanation names its history.
fn demote(signal: &mut Signal, note: Option<String>) -> bool {
    match note {
        Some(n) if signal.level > Level::Informational => {
            signal.level = Level::Informational;
            signal.explanation = format!("{}; routine, not raised: {n}", signal.explanation);
            true
        }
        _ => false,
    }
}

/// The days (in order, once each) of the occurrences at the same time of day as `hour`: near
/// one of them, or inside the span of hours they cover (a CI pipeline through the working day).
fn same_time_of_day<'a>(occurrences: impl Iterator<Item = &'a Occurrence>, hour: u32) -> Vec<i64> {
    let list: Vec<&Occurrence> = occurrences.collect();
    let lo = list.iter().map(|o| o.hour).min();
    let hi = list.iter().map(|o| o.hour).max();
    let in_span = matches!((lo, hi), (Some(lo), Some(hi)) if hi - lo <= MAX_SPAN_H && (lo..=hi).contains(&hour));
    let mut days: Vec<i64> = list
        .iter()
        .filter(|o| in_span || hours_apart(o.hour, hour) <= HOUR_SLACK)
        .map(|o| o.day)
        .collect();
    days.dedup();
    days
}

/// "…role/X did the same on 3 earlier days within 14 (2026-11-03 to 2026-11-05), from AS…
/// around 02:00 UTC", or `None` without days.
fn history_note(facts: &Facts, days: &[i64], which: &str, hour: u32) -> Option<String> {
    let (first, last) = (days.first()?, days.last()?);
    Some(format!(
        "{} did the same on {} {which} day{} within {HISTORY_DAYS} ({}{}), from {} around {hour:02}:00 UTC",
        facts.actor,
        days.len(),
        if days.len() == 1 { "" } else { "s" },
        date_of(*first),
        if first != last {
            format!(" to {}", date_of(*last))
        } else {
            String::new()
        },
        as_words(facts),
    ))
}

fn as_words(facts: &Facts) -> String {
    match (facts.asn, &facts.as_name) {
        (Some(a), Some(n)) if !n.is_empty() => format!("AS{a} ({n})"),
        (Some(a), _) => format!("AS{a}"),
        _ => "an address outside any AS".to_string(),
    }
}

fn hours_apart(a: u32, b: u32) -> u32 {
    let d = a.abs_diff(b);
    d.min(24 - d)
}

fn hash(s: &str) -> u64 {
    // FNV-1a: stable across runs, so that the same input gives the same judgement.
    cloudsentinel_core::hash::fnv1a(s.as_bytes())
}

/// Addresses a session used, with when.
type Addresses = Vec<(IpAddr, DateTime<Utc>)>;
/// Actors (hashed) with a finding, and the last day they had one.
type Peers = Vec<(u64, i64)>;

/// [`Routine`]'s history as it is kept between runs (maps keyed by tuples become lists of
/// pairs, which JSON can hold).
#[derive(Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct RoutineState {
    seen: Vec<((String, String), Vec<Occurrence>)>,
    egress: Vec<((String, IpAddr), Egress)>,
    recent: Vec<(String, Addresses)>,
    peers: Vec<((String, String), Peers)>,
    last_prune_day: i64,
}

impl Routine {
    /// The history, to keep ([`Routine::restore`] takes it back).
    pub fn export(&self) -> RoutineState {
        let mut state = RoutineState {
            seen: self
                .seen
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            egress: self
                .egress
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            recent: self
                .recent
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            peers: self
                .peers
                .iter()
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
            last_prune_day: self.last_prune_day,
        };
        // The same history gives the same bytes.
        state.seen.sort_by(|a, b| a.0.cmp(&b.0));
        state.egress.sort_by(|a, b| a.0.cmp(&b.0));
        state.recent.sort_by(|a, b| a.0.cmp(&b.0));
        state.peers.sort_by(|a, b| a.0.cmp(&b.0));
        state
    }

    /// A history kept by [`Routine::export`].
    pub fn restore(state: RoutineState) -> Routine {
        Routine {
            seen: state.seen.into_iter().collect(),
            egress: state.egress.into_iter().collect(),
            recent: state.recent.into_iter().collect(),
            handed_out: HashMap::new(),
            peers: state.peers.into_iter().collect(),
            last_prune_day: state.last_prune_day,
        }
    }

    pub fn new() -> Routine {
        Routine::default()
    }

    /// Records an input of a `shared-egress` rule: which session used which address.
    pub fn observe_egress(&mut self, account: Option<&str>, time: DateTime<Utc>, facts: &Facts) {
        let Some(ip) = facts.ip else { return };
        self.prune(time);
        let day = day_of(time);
        let key = hash(&facts.session);
        let e = self
            .egress
            .entry((account.unwrap_or_default().to_string(), ip))
            .or_default();
        if let Some(i) = e.sessions.iter().position(|(k, _, _)| *k == key) {
            e.sessions[i].2 = day;
        } else if e.sessions.len() < 8 {
            e.sessions.push((key, day, day));
        } else if let Some(oldest) = e.sessions.iter_mut().min_by_key(|(_, _, d)| *d) {
            // Replace the session seen longest ago.
            *oldest = (key, day, day);
        }
        let list = self.recent.entry(facts.session.clone()).or_default();
        let before = list.len();
        list.retain(|(_, t)| time - *t <= chrono::Duration::hours(2));
        let mut changed = list.len() != before;
        if let Some(i) = list.iter().position(|(a, _)| *a == ip) {
            list[i].1 = time;
        } else if list.len() < 32 {
            list.push((ip, time));
            changed = true;
        }
        if changed {
            self.handed_out.remove(&facts.session);
        }
    }

    /// Judges a finding of a rule that opted in; a routine one becomes informational, with its
    /// history in the explanation. Returns whether it was routine.
    pub fn judge(
        &mut self,
        kind: RoutineKind,
        signal: &mut Signal,
        account: Option<&str>,
        facts: &Facts,
    ) -> bool {
        self.prune(signal.first_seen);
        let note = match kind {
            RoutineKind::Actor => self.judge_actor(&signal.rule_id, signal.first_seen, facts),
            RoutineKind::SharedEgress => self.judge_egress(signal.last_seen, account, facts),
            RoutineKind::Peers => {
                self.record_peer(&signal.rule_id, signal.first_seen, account, facts);
                let own = self.judge_actor(&signal.rule_id, signal.first_seen, facts);
                own.or_else(|| {
                    self.peers_note(&signal.rule_id, signal.first_seen, account, facts, false)
                })
            }
        };
        demote(signal, note)
    }

    fn record_peer(&mut self, rule: &str, t: DateTime<Utc>, account: Option<&str>, facts: &Facts) {
        let day = day_of(t);
        let me = hash(&facts.actor);
        let list = self
            .peers
            .entry((rule.to_string(), account.unwrap_or_default().to_string()))
            .or_default();
        if let Some(i) = list.iter().position(|(k, _)| *k == me) {
            list[i].1 = list[i].1.max(day);
        } else {
            if list.len() >= MAX_PEERS
                && let Some(i) = (0..list.len()).min_by_key(|&i| list[i].1)
            {
                list.remove(i);
            }
            list.push((me, day));
        }
    }

    /// "3 other principals of account X had the same finding within 14 days", when at least
    /// [`PEERS`] did (before `t`; with `hindsight`, after it too).
    fn peers_note(
        &self,
        rule: &str,
        t: DateTime<Utc>,
        account: Option<&str>,
        facts: &Facts,
        hindsight: bool,
    ) -> Option<String> {
        let day = day_of(t);
        let me = hash(&facts.actor);
        let account = account.unwrap_or_default();
        let others = self
            .peers
            .get(&(rule.to_string(), account.to_string()))?
            .iter()
            .filter(|(k, d)| {
                *k != me && (day - d).abs() <= HISTORY_DAYS && (hindsight || *d <= day)
            })
            .count();
        (others >= PEERS).then(|| {
            format!(
                "{others} other principals of account {account} had the same finding within {HISTORY_DAYS} days (a team's routine)"
            )
        })
    }

    fn judge_actor(&mut self, rule: &str, t: DateTime<Utc>, facts: &Facts) -> Option<String> {
        let day = day_of(t);
        let hour = t.hour();
        let list = self
            .seen
            .entry((rule.to_string(), facts.actor.clone()))
            .or_default();
        let days = same_time_of_day(
            list.iter()
                .filter(|o| o.day < day && day - o.day <= HISTORY_DAYS && o.asn == facts.asn),
            hour,
        );
        let note = history_note(facts, &days, "earlier", hour);
        let known = list
            .iter()
            .any(|o| o.day == day && o.asn == facts.asn && o.hour == hour);
        if !known {
            if list.len() >= MAX_OCCURRENCES {
                list.remove(0);
            }
            list.push(Occurrence {
                day,
                hour,
                asn: facts.asn,
            });
        }
        note
    }

    fn judge_egress(
        &self,
        t: DateTime<Utc>,
        account: Option<&str>,
        facts: &Facts,
    ) -> Option<String> {
        let used: Vec<IpAddr> = self
            .recent
            .get(&facts.session)?
            .iter()
            .map(|(ip, _)| *ip)
            .collect();
        self.egress_note(t, account, facts, &used, false)
    }

    /// Whether every address is the account's egress: shared by [`SHARED_BY`] other sessions of
    /// the account within [`HISTORY_DAYS`], or the session's own on other days (before `t`; with
    /// `hindsight`, after it too).
    fn egress_note(
        &self,
        t: DateTime<Utc>,
        account: Option<&str>,
        facts: &Facts,
        addresses: &[IpAddr],
        hindsight: bool,
    ) -> Option<String> {
        let me = hash(&facts.session);
        let day = day_of(t);
        let near = |d: i64| {
            if hindsight {
                (day - d).abs() <= HISTORY_DAYS
            } else {
                d <= day && day - d <= HISTORY_DAYS
            }
        };
        let mut shared = Vec::new();
        for ip in addresses {
            let e = self
                .egress
                .get(&(account.unwrap_or_default().to_string(), *ip))?;
            let others = e
                .sessions
                .iter()
                .filter(|(k, _, d)| *k != me && near(*d))
                .count();
            let own = e.sessions.iter().find(|(k, _, _)| *k == me);
            if others >= SHARED_BY {
                shared.push(format!(
                    "{ip} (used by {others} other sessions of the account)"
                ));
            } else if let Some((_, first, last)) = own
                && (*first < day || (hindsight && *last > day))
            {
                shared.push(format!(
                    "{ip} (this session's own address, {} to {})",
                    date_of(*first),
                    date_of(*last)
                ));
            } else {
                return None;
            }
        }
        (!shared.is_empty()).then(|| {
            format!(
                "every address is this account's egress: {}",
                shared.join(", ")
            )
        })
    }

    /// What a finding judged new was compared with, for its explanation.
    pub fn describe_new(&self, kind: RoutineKind, signal: &Signal, facts: &Facts) -> String {
        match kind {
            RoutineKind::Actor => {
                let day = day_of(signal.first_seen);
                let mut days: Vec<i64> = self
                    .seen
                    .get(&(signal.rule_id.clone(), facts.actor.clone()))
                    .map(|l| {
                        l.iter()
                            .filter(|o| o.day != day && (o.day - day).abs() <= HISTORY_DAYS)
                            .map(|o| o.day)
                            .collect()
                    })
                    .unwrap_or_default();
                days.sort_unstable();
                days.dedup();
                if days.is_empty() {
                    format!(
                        "new for {}: not seen of it within {HISTORY_DAYS} days",
                        facts.actor
                    )
                } else {
                    format!(
                        "new for {}: seen of it on {} other day{} within {HISTORY_DAYS} days, never from {} around {:02}:00 UTC",
                        facts.actor,
                        days.len(),
                        if days.len() == 1 { "" } else { "s" },
                        as_words(facts),
                        signal.first_seen.hour()
                    )
                }
            }
            RoutineKind::SharedEgress => format!(
                "new: not every address {} used is an address the account's other sessions use or it used on other days",
                facts.session
            ),
            RoutineKind::Peers => format!(
                "{}; and fewer than {PEERS} other principals of the account had the same finding within {HISTORY_DAYS} days",
                self.describe_new(RoutineKind::Actor, signal, facts)
            ),
        }
    }

    /// The addresses a session used lately (for judging a held finding later).
    pub fn addresses_of(&mut self, session: &str) -> std::sync::Arc<[IpAddr]> {
        if let Some(a) = self.handed_out.get(session) {
            return std::sync::Arc::clone(a);
        }
        let list: std::sync::Arc<[IpAddr]> = self
            .recent
            .get(session)
            .map(|v| v.iter().map(|(ip, _)| *ip).collect())
            .unwrap_or_default();
        self.handed_out
            .insert(session.to_string(), std::sync::Arc::clone(&list));
        list
    }

    /// Judges again, with hindsight, a finding that was new when it came: routine when the
    /// actor did the same on a *later* day within [`HISTORY_DAYS`] (same AS, same time of day),
    /// or when each address it used turned out to be the account's egress (shared with other
    /// sessions, or used by the same session on other days). For a retrospective hunt over a
    /// period: the nightly scanner's first night recurs on the nights after it; an intruder's
    /// one-off burst does not.
    pub fn judge_hindsight(
        &mut self,
        kind: RoutineKind,
        signal: &mut Signal,
        account: Option<&str>,
        facts: &Facts,
        addresses: &[IpAddr],
    ) -> bool {
        let note = match kind {
            RoutineKind::Actor => self.later_actor(&signal.rule_id, signal.first_seen, facts),
            RoutineKind::SharedEgress => {
                self.egress_note(signal.last_seen, account, facts, addresses, true)
            }
            RoutineKind::Peers => self
                .later_actor(&signal.rule_id, signal.first_seen, facts)
                .or_else(|| {
                    self.peers_note(&signal.rule_id, signal.first_seen, account, facts, true)
                }),
        };
        demote(signal, note)
    }

    fn later_actor(&self, rule: &str, t: DateTime<Utc>, facts: &Facts) -> Option<String> {
        let day = day_of(t);
        let hour = t.hour();
        let list = self.seen.get(&(rule.to_string(), facts.actor.clone()))?;
        let days = same_time_of_day(
            list.iter()
                .filter(|o| o.day > day && o.day - day <= HISTORY_DAYS && o.asn == facts.asn),
            hour,
        );
        history_note(facts, &days, "later", hour)
    }

    /// Drops history older than [`HISTORY_DAYS`], once a day of event time.
    fn prune(&mut self, now: DateTime<Utc>) {
        let day = day_of(now);
        if day <= self.last_prune_day {
            return;
        }
        self.last_prune_day = day;
        self.seen.retain(|_, v| {
            v.retain(|o| day - o.day <= HISTORY_DAYS);
            !v.is_empty()
        });
        self.egress.retain(|_, e| {
            e.sessions.retain(|(_, _, d)| day - d <= HISTORY_DAYS);
            !e.sessions.is_empty()
        });
        self.recent.retain(|_, v| {
            v.iter()
                .any(|(_, t)| now - *t <= chrono::Duration::hours(2))
        });
        let recent = &self.recent;
        self.handed_out.retain(|k, _| recent.contains_key(k));
        self.peers.retain(|_, v| {
            v.retain(|(_, d)| day - d <= HISTORY_DAYS);
            !v.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use cloudsentinel_core::SignalKind;

    fn at(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, day, hour, 10, 0).unwrap()
    }

    fn signal(t: DateTime<Utc>) -> Signal {
        Signal {
            kind: SignalKind::Correlation,
            rule_id: "burst".into(),
            title: "Enumeration burst".into(),
            level: Level::Medium,
            techniques: vec![],
            tactics: vec![],
            entity: "session".into(),
            account: Some("111122223333".into()),
            first_seen: t,
            last_seen: t,
            event_ids: vec!["e".into()],
            explanation: "30 APIs".into(),
        }
    }

    fn facts(actor: &str, asn: u32) -> Facts {
        Facts {
            actor: actor.into(),
            session: format!("{actor}/s"),
            asn: Some(asn),
            as_name: Some("EXAMPLE".into()),
            ip: None,
        }
    }

    #[test]
    fn a_change_the_team_makes_is_routine_in_its_account_only() {
        let mut r = Routine::new();
        let dev = "sub-dev";
        // Two developers delete their sandboxes: both new (one peer is not a team).
        for (day, who) in [(1, "ana@corp"), (2, "ben@corp")] {
            let mut s = signal(at(day, 10));
            assert!(!r.judge(RoutineKind::Peers, &mut s, Some(dev), &facts(who, 3320)));
            assert_eq!(s.level, Level::Medium);
        }
        // The third, from anywhere at any hour: routine, with the peers named.
        let mut third = signal(at(4, 22));
        assert!(r.judge(
            RoutineKind::Peers,
            &mut third,
            Some(dev),
            &facts("cy@corp", 14061)
        ));
        assert_eq!(third.level, Level::Informational);
        assert!(
            third
                .explanation
                .contains("2 other principals of account sub-dev"),
            "{}",
            third.explanation
        );
        // The same change in another account, where nobody makes it: new.
        let mut prod = signal(at(4, 22));
        assert!(!r.judge(
            RoutineKind::Peers,
            &mut prod,
            Some("sub-prod"),
            &facts("cy@corp", 14061)
        ));
        // Peers more than two weeks before do not count.
        let mut later = signal(at(25, 10));
        assert!(!r.judge(
            RoutineKind::Peers,
            &mut later,
            Some(dev),
            &facts("dee@corp", 3320)
        ));
        // With hindsight, the first developer's finding was a team's routine: two others followed.
        let mut first = signal(at(1, 10));
        let mut r2 = Routine::new();
        for (day, who) in [(1, "ana@corp"), (2, "ben@corp"), (3, "cy@corp")] {
            let mut s = signal(at(day, 10));
            r2.judge(RoutineKind::Peers, &mut s, Some(dev), &facts(who, 3320));
        }
        assert!(r2.judge_hindsight(
            RoutineKind::Peers,
            &mut first,
            Some(dev),
            &facts("ana@corp", 3320),
            &[]
        ));
    }

    #[test]
    fn a_nightly_burst_is_routine_from_its_second_night_and_a_stranger_still_alerts() {
        let mut r = Routine::new();
        let scanner = facts("arn:aws:iam::1:role/SecurityAudit", 16509);
        let mut first = signal(at(1, 2));
        assert!(!r.judge(RoutineKind::Actor, &mut first, None, &scanner));
        assert_eq!(first.level, Level::Medium);
        let mut second = signal(at(2, 3));
        assert!(r.judge(RoutineKind::Actor, &mut second, None, &scanner));
        assert_eq!(second.level, Level::Informational);
        assert!(
            second.explanation.contains("1 earlier day"),
            "{}",
            second.explanation
        );
        assert!(
            second.explanation.contains("2026-11-01"),
            "{}",
            second.explanation
        );
        assert!(
            second.explanation.contains("AS16509"),
            "{}",
            second.explanation
        );
        // Another actor, the same burst: new.
        let mut other = signal(at(2, 3));
        assert!(!r.judge(
            RoutineKind::Actor,
            &mut other,
            None,
            &facts("arn:aws:iam::1:user/dev", 16509)
        ));
        // The scanner's role from another AS, or at another hour: new.
        let mut moved = signal(at(3, 2));
        assert!(!r.judge(
            RoutineKind::Actor,
            &mut moved,
            None,
            &facts("arn:aws:iam::1:role/SecurityAudit", 14061)
        ));
        let mut late = signal(at(3, 14));
        assert!(!r.judge(RoutineKind::Actor, &mut late, None, &scanner));
        // The same day again is not "earlier": a second burst on the first day alerts too.
        let mut again = signal(at(1, 3));
        let mut r2 = Routine::new();
        assert!(!r2.judge(RoutineKind::Actor, &mut signal(at(1, 2)), None, &scanner));
        assert!(!r2.judge(RoutineKind::Actor, &mut again, None, &scanner));
    }

    #[test]
    fn history_fades_after_two_weeks() {
        let mut r = Routine::new();
        let f = facts("arn:aws:iam::1:role/ci", 8075);
        r.judge(RoutineKind::Actor, &mut signal(at(1, 10)), None, &f);
        let mut later = signal(at(1, 10) + chrono::Duration::days(HISTORY_DAYS + 1));
        assert!(!r.judge(RoutineKind::Actor, &mut later, None, &f));
    }

    #[test]
    fn an_address_shared_by_the_accounts_instances_is_egress_and_a_lone_one_is_not() {
        let mut r = Routine::new();
        let nat: IpAddr = "52.49.1.1".parse().unwrap();
        let nat2: IpAddr = "52.49.1.2".parse().unwrap();
        let attacker: IpAddr = "18.236.253.47".parse().unwrap();
        let t = at(5, 10);
        let session = |s: &str, ip: IpAddr| Facts {
            actor: "arn:aws:iam::1:role/app".into(),
            session: s.into(),
            ip: Some(ip),
            ..Facts::default()
        };
        for s in ["i-1", "i-2", "i-3"] {
            r.observe_egress(Some("1"), t, &session(s, nat));
            r.observe_egress(Some("1"), t, &session(s, nat2));
        }
        let mut sig = signal(t);
        assert!(r.judge(
            RoutineKind::SharedEgress,
            &mut sig,
            Some("1"),
            &session("i-1", nat2)
        ));
        assert!(
            sig.explanation.contains("account's egress"),
            "{}",
            sig.explanation
        );
        // The instance's key used from an address no other session uses.
        r.observe_egress(Some("1"), t, &session("i-1", attacker));
        let mut stolen = signal(t);
        assert!(!r.judge(
            RoutineKind::SharedEgress,
            &mut stolen,
            Some("1"),
            &session("i-1", attacker)
        ));
        assert_eq!(stolen.level, Level::Medium);
        // A lone instance's own two addresses: new on its first day, its own from the next.
        let lone = |ip: IpAddr| session("i-9", ip);
        let a: IpAddr = "52.49.2.1".parse().unwrap();
        let b: IpAddr = "52.49.2.2".parse().unwrap();
        r.observe_egress(Some("1"), t, &lone(a));
        r.observe_egress(Some("1"), t, &lone(b));
        assert!(!r.judge(
            RoutineKind::SharedEgress,
            &mut signal(t),
            Some("1"),
            &lone(b)
        ));
        let next = t + chrono::Duration::days(1);
        r.observe_egress(Some("1"), next, &lone(a));
        r.observe_egress(Some("1"), next, &lone(b));
        let mut own = signal(next);
        assert!(r.judge(RoutineKind::SharedEgress, &mut own, Some("1"), &lone(b)));
        assert!(
            own.explanation.contains("own address"),
            "{}",
            own.explanation
        );
        // With hindsight, the first day is routine too: the same addresses on the day after.
        let mut first = signal(t);
        assert!(r.judge_hindsight(
            RoutineKind::SharedEgress,
            &mut first,
            Some("1"),
            &lone(b),
            &[a, b]
        ));
        // The same addresses in another account are not that account's egress.
        let mut elsewhere = signal(t);
        assert!(!r.judge(
            RoutineKind::SharedEgress,
            &mut elsewhere,
            Some("2"),
            &session("i-1", nat)
        ));
    }
}
