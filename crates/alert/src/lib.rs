//! Alerting: signals in, alerts and incidents out.
//!
//! One folding rule, two ways to apply it:
//! - [`Folder`] (`hunt`, a period at once): folds signals from many threads in any order and
//!   gives the alerts at the end, in memory proportional to the alerts, not the events.
//! - [`Alerter`] (`serve`, online): folds signals as they arrive into alerts with ids, groups the
//!   alerts into incidents (shared principal or access key, public source address, person across
//!   clouds, identities a principal created: [`lineage`]), and hands what changed to the store.
//!
//! The rule: signals of one rule about one entity whose gaps are at most the dedup window form
//! one alert; its level is its most severe signal's; the earliest signal speaks for it
//! (first time, account, explanation); its evidence ids are listed in order of (time, id). Fed
//! the same signals in time order, both give the same alerts (a test in [`online`], and the
//! `hunt`/`serve` comparison in the binary's tests).
//!
//! The alert and incident records ([`record`]) live here too: the store keeps them, the API,
//! dashboard and sinks show them. No IO in this crate.

pub mod fold;
pub mod lineage;
pub mod online;
pub mod record;

pub use fold::{Folder, dedup};
pub use online::{Alerter, Context, Counts, LINEAGE_DAYS, Resume, Windows, tactic_rank};
pub use record::{AlertRecord, AlertStatus, IncidentRecord, MAX_EVIDENCE, Verdict};

/// Whether a principal is an Entra object id (a GUID), which people know by a name instead.
pub fn is_object_id(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.iter().map(|p| p.len()).eq([8, 4, 4, 4, 12])
        && parts
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_hexdigit()))
}
