//! Alert delivery: who hears of which alert change, and sending it.
//!
//! - [`config`]: the `[[notify]]` sinks (webhook, Slack, e-mail, PagerDuty, ServiceNow, OCSF),
//!   checked, with their secrets read from the environment or a file.
//! - [`route`]: the [`Router`] decides which sinks hear of an alert change ([`Change`]): a new
//!   alert at once, a higher level or a status change at once, an alert that only keeps counting
//!   at most every `update_every_secs`; the [`Notice`] is what the message says, stored in the
//!   service's outbox with the alert's commit.
//! - [`send`]: one try of one message ([`send::send`] answers sent, retry, failed) and the retry
//!   schedule ([`send::backoff`]); each sink's shape is in [`send`], [`email`] and [`ocsf`].
//!
//! The service's dispatcher (in the server crate) owns the outbox loop; `hunt --format ocsf` uses
//! [`ocsf::from_alert`].

pub mod config;
pub mod email;
pub mod ocsf;
pub mod render;
pub mod route;
pub mod send;

pub use config::{ConfigIssue, Kind, Sink, SinkConfig, resolve_all};
pub use render::Context;
pub use route::{Change, Notice, Router};
pub use send::{Outcome, backoff, send};
