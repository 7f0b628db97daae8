//! What a message says, in words common to every sink: who, from where, which ATT&CK, when,
//! how many, and a link to the alert page. Log fields are attacker input: each sink escapes
//! them for its own format (Slack's mrkdwn, HTML e-mail); here they are only clipped.

use cloudsentinel_core::{Level, Network};

use crate::route::{Change, Notice};

/// What the sender adds to a notice at send time.
pub struct Context<'a> {
    /// `[server] public_url`: the dashboard as people reach it (links to alert pages).
    pub public_url: Option<&'a str>,
    /// AS and country of an address.
    pub network: &'a dyn Fn(&str) -> Option<Network>,
}

impl Context<'_> {
    /// No links, no address context.
    pub fn bare() -> Context<'static> {
        Context {
            public_url: None,
            network: &|_| None,
        }
    }
}

/// Cuts `s` to at most `max` characters, marking the cut ([`cloudsentinel_core::text::clip`]).
pub fn clip(s: &str, max: usize) -> String {
    cloudsentinel_core::text::clip(s, max).into_owned()
}

/// A principal as people say it: an ARN's last part, without the access key an AWS entity
/// carries in brackets.
pub fn who(n: &Notice) -> String {
    if let Some(name) = &n.name {
        return clip(name, 200);
    }
    let e = n.entity();
    let e = match e.find(" [") {
        Some(i) => &e[..i],
        None => e,
    };
    let short = match e.strip_prefix("arn:") {
        Some(_) => e.splitn(6, ':').nth(5).unwrap_or(e),
        None => e,
    };
    clip(short, 200)
}

/// The source address with its AS and country when known: `203.0.113.9 (AS14061 DigitalOcean, NL)`.
pub fn origin(n: &Notice, ctx: &Context<'_>) -> Option<String> {
    let ip = n.alert.source_ip.as_deref()?;
    let ip = clip(ip, 64);
    let Some(net) = (ctx.network)(&ip) else {
        return Some(ip);
    };
    let mut parts = Vec::new();
    match (net.asn, net.as_name.as_deref()) {
        (Some(a), Some(name)) => parts.push(format!("AS{a} {}", clip(name, 60))),
        (Some(a), None) => parts.push(format!("AS{a}")),
        _ => {}
    }
    if let Some(c) = net.country {
        parts.push(c.to_string());
    }
    if let Some(cloud) = net.cloud {
        parts.push(format!("{} address space", cloud.as_str()));
    }
    Some(if parts.is_empty() {
        ip
    } else {
        format!("{ip} ({})", parts.join(", "))
    })
}

/// Techniques and tactics: `T1078.004 · initial-access, persistence`.
pub fn attack(n: &Notice) -> Option<String> {
    let (techniques, tactics) = (n.techniques(), n.tactics());
    if techniques.is_empty() && tactics.is_empty() {
        return None;
    }
    let mut s = techniques.join(", ");
    if !tactics.is_empty() {
        if !s.is_empty() {
            s.push_str(" · ");
        }
        s.push_str(&tactics.join(", "));
    }
    Some(clip(&s, 300))
}

/// The alert's (or incident's) page on the dashboard, when the service's public URL is
/// configured.
pub fn link(n: &Notice, ctx: &Context<'_>) -> Option<String> {
    let base = ctx.public_url?.trim_end_matches('/');
    Some(format!("{base}/ui/{}s/{}", n.kind(), n.id()))
}

/// The first words of a message: `[HIGH] New alert`, `[HIGH] Resolved`.
pub fn headline(n: &Notice) -> String {
    let incident = n.incident.is_some();
    let what = match (n.change, incident) {
        (Change::Created, false) => "New alert",
        (Change::Updated, false) => "Alert updated",
        (Change::Acknowledged, false) => "Alert acknowledged",
        (Change::Resolved, false) => "Alert resolved",
        (Change::Created, true) => "New incident",
        (Change::Updated, true) => "Incident updated",
        (Change::Acknowledged, true) => "Incident acknowledged",
        (Change::Resolved, true) => "Incident resolved",
        (Change::Test, _) => "Test message",
    };
    format!("[{}] {what}", n.level().as_str().to_uppercase())
}

/// One line: `[HIGH] New alert: Console login without MFA — alice (count 3)`.
pub fn summary(n: &Notice) -> String {
    let mut s = format!("{}: {} — {}", headline(n), clip(n.title(), 200), who(n));
    match (n.incident.is_some(), n.count()) {
        (true, c) => s.push_str(&format!(" ({c} alert{})", if c == 1 { "" } else { "s" })),
        (false, c) if c > 1 => s.push_str(&format!(" (count {c})")),
        _ => {}
    }
    s
}

/// The facts of a message as (label, value) lines, in the order people read them.
pub fn facts(n: &Notice, ctx: &Context<'_>) -> Vec<(&'static str, String)> {
    let mut out = vec![("Level", n.level().as_str().to_string()), ("Who", who(n))];
    if let Some(o) = origin(n, ctx) {
        out.push(("From", o));
    }
    if let Some(acc) = n.account() {
        out.push(("Account", clip(acc, 100)));
    }
    if let Some(t) = attack(n) {
        out.push(("ATT&CK", t));
    }
    out.push((
        "First seen",
        n.first_seen().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    ));
    out.push((
        "Last seen",
        n.last_seen().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    ));
    out.push((
        if n.incident.is_some() {
            "Alerts"
        } else {
            "Count"
        },
        n.count().to_string(),
    ));
    out.push(("Status", n.status().as_str().to_string()));
    match &n.incident {
        None => out.push(("Rule", clip(&n.alert.rule_id, 120))),
        Some(_) => out.push(("Latest alert", clip(&n.alert.title, 200))),
    }
    out
}

/// PagerDuty's severity for a level.
pub fn pagerduty_severity(l: Level) -> &'static str {
    match l {
        Level::Critical => "critical",
        Level::High => "error",
        Level::Medium => "warning",
        Level::Low | Level::Informational => "info",
    }
}
