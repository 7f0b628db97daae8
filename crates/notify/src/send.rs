//! Sending one message to one sink, and what to do when it fails.
//!
//! Every sender answers an [`Outcome`]: sent; try again (network errors, timeouts, 408, 429 with
//! its `Retry-After`, 5xx), or failed for good (any other 4xx: the receiver refuses this message
//! and would refuse it again). The caller (the service's dispatcher) keeps the retry schedule
//! ([`backoff`]) and the record of every try.

use std::io::Write;
use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::{Value, json};
use sha2::Sha256;

use crate::config::{Sink, Target};
use crate::render::{self, Context, clip};
use crate::route::{Change, Notice};

/// How one try ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    Sent,
    /// Worth another try, after at least `after` when the receiver said so.
    Retry {
        error: String,
        after: Option<Duration>,
    },
    /// The receiver refused this message; trying again would not help.
    Failed {
        error: String,
    },
}

/// The wait before try `attempt + 1` (attempt counts from 1): 2, 4, 8 ... seconds, at most five
/// minutes, each drawn between half and all of that (jitter, so that many deliveries failing
/// together do not come back together); a `Retry-After` longer than that wins, up to an hour.
pub fn backoff(attempt: u32, retry_after: Option<Duration>) -> Duration {
    let cap = 300.0f64;
    let base = 2f64.powi(attempt.min(16) as i32).min(cap);
    let mut b = [0u8; 8];
    let unit = match getrandom::fill(&mut b) {
        Ok(()) => (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64,
        Err(_) => 0.5,
    };
    let wait = Duration::from_secs_f64(base * (0.5 + 0.5 * unit));
    match retry_after {
        Some(r) => wait.max(r.min(Duration::from_secs(3600))),
        None => wait,
    }
}

/// The webhook signature: `v1=` and the hex HMAC-SHA256 of `timestamp + "." + body` under the
/// sink's secret.
pub fn signature(secret: &str, timestamp: i64, body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(3 + tag.len() * 2);
    hex.push_str("v1=");
    for b in tag {
        hex.push_str(&format!("{b:02x}"));
    }
    hex
}

/// Sends `notice` (delivery `delivery_id`) to `sink`.
pub fn send(sink: &Sink, notice: &Notice, delivery_id: i64, ctx: &Context<'_>) -> Outcome {
    let http = Http::new(sink.timeout);
    match &sink.target {
        Target::Webhook { url, secret } => {
            let body = webhook_body(notice, delivery_id, ctx);
            let ts = chrono::Utc::now().timestamp();
            let sig = signature(secret.expose(), ts, &body);
            http.call(
                "POST",
                url,
                &[
                    ("x-cloudsentinel-timestamp", ts.to_string()),
                    ("x-cloudsentinel-signature", sig),
                    ("x-cloudsentinel-delivery", delivery_id.to_string()),
                    (
                        "x-cloudsentinel-event",
                        format!("alert.{}", notice.change.as_str()),
                    ),
                ],
                Some(&body),
            )
            .outcome()
        }
        Target::Slack { url } => {
            let body = serde_json::to_vec(&slack_message(notice, ctx)).expect("JSON");
            http.call("POST", url.expose(), &[], Some(&body)).outcome()
        }
        Target::PagerDuty { url, routing_key } => {
            let body = serde_json::to_vec(&pagerduty_event(notice, routing_key.expose(), ctx))
                .expect("JSON");
            http.call("POST", url, &[], Some(&body)).outcome()
        }
        Target::ServiceNow {
            base,
            username,
            password,
            close_code,
        } => servicenow(
            &http,
            base,
            username,
            password.expose(),
            close_code,
            notice,
            ctx,
        ),
        Target::OcsfHttp { url, token } => {
            let mut line =
                serde_json::to_vec(&crate::ocsf::from_notice(notice, render::link(notice, ctx)))
                    .expect("JSON");
            line.push(b'\n');
            let mut headers = vec![("content-type", "application/x-ndjson".to_string())];
            if let Some(t) = token {
                headers.push(("authorization", format!("Bearer {}", t.expose())));
            }
            http.call("POST", url, &headers, Some(&line)).outcome()
        }
        Target::OcsfFile { path } => {
            let mut line =
                serde_json::to_vec(&crate::ocsf::from_notice(notice, render::link(notice, ctx)))
                    .expect("JSON");
            line.push(b'\n');
            let written = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| {
                    f.write_all(&line)?;
                    f.sync_data()
                });
            match written {
                Ok(()) => Outcome::Sent,
                Err(e) => Outcome::Retry {
                    error: format!("{}: {e}", path.display()),
                    after: None,
                },
            }
        }
        Target::Email { .. } => crate::email::send(sink, notice, ctx),
    }
}

/// The webhook's JSON body.
pub fn webhook_body(notice: &Notice, delivery_id: i64, ctx: &Context<'_>) -> Vec<u8> {
    let network = notice
        .alert
        .source_ip
        .as_deref()
        .and_then(|ip| (ctx.network)(ip))
        .map(|n| {
            json!({
                "asn": n.asn,
                "as_name": n.as_name.as_deref(),
                "country": n.country.map(|c| c.to_string()),
                "cloud": n.cloud.map(|c| c.as_str()),
            })
        });
    serde_json::to_vec(&json!({
        "type": format!("alert.{}", notice.change.as_str()),
        "delivery_id": delivery_id,
        "sent_at": chrono::Utc::now().to_rfc3339(),
        "summary": render::summary(notice),
        "url": render::link(notice, ctx),
        "principal_name": notice.name,
        "network": network,
        "alert": notice.alert,
        "incident": notice.incident,
    }))
    .expect("JSON")
}

/// Escapes text for Slack's mrkdwn: `&`, `<` and `>` (so log fields cannot mention `@channel`
/// or forge links).
pub fn slack_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The Block Kit message: a header, the facts as fields, why it fired, and a link.
pub fn slack_message(n: &Notice, ctx: &Context<'_>) -> Value {
    let emoji = match n.level() {
        cloudsentinel_core::Level::Critical => ":rotating_light:",
        cloudsentinel_core::Level::High => ":red_circle:",
        cloudsentinel_core::Level::Medium => ":large_orange_circle:",
        _ => ":large_blue_circle:",
    };
    let header = clip(&format!("{} {}", render::headline(n), n.title()), 150);
    let fields: Vec<Value> = render::facts(n, ctx)
        .into_iter()
        .filter(|(k, _)| *k != "Rule")
        .take(10)
        .map(|(k, v)| json!({"type": "mrkdwn", "text": format!("*{k}*\n{}", slack_escape(&clip(&v, 1900)))}))
        .collect();
    let mut blocks = vec![
        json!({"type": "header", "text": {"type": "plain_text", "text": header, "emoji": true}}),
        json!({"type": "section", "fields": fields}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": format!("{emoji} *Why:* {}", slack_escape(&clip(&n.explanation(), 2800)))}}),
    ];
    let mut context = vec![json!({"type": "mrkdwn", "text": match &n.incident {
        None => format!("rule `{}` · alert {}", slack_escape(&clip(&n.alert.rule_id, 120)), n.alert.id),
        Some(i) => format!("incident {} · latest alert {}", i.id, n.alert.id),
    }})];
    if let Some(url) = render::link(n, ctx) {
        context.push(json!({"type": "mrkdwn", "text": format!("<{url}|Open in CloudSentinel>")}));
    }
    blocks.push(json!({"type": "context", "elements": context}));
    json!({
        // The notification text phones and screen readers show.
        "text": slack_escape(&render::summary(n)),
        "blocks": blocks,
    })
}

/// The dedup key at PagerDuty and the correlation id at ServiceNow: one per alert, or per
/// incident for a sink that hears of incidents.
pub fn alert_key(n: &Notice) -> String {
    n.key()
}

/// An Events API v2 event: `trigger` (created, updated: the same `dedup_key`, so PagerDuty
/// updates its incident instead of opening another), `acknowledge`, `resolve`.
pub fn pagerduty_event(n: &Notice, routing_key: &str, ctx: &Context<'_>) -> Value {
    let action = match n.change {
        Change::Created | Change::Updated | Change::Test => "trigger",
        Change::Acknowledged => "acknowledge",
        Change::Resolved => "resolve",
    };
    let mut e = json!({
        "routing_key": routing_key,
        "event_action": action,
        "dedup_key": alert_key(n),
    });
    if action == "trigger" {
        let details: serde_json::Map<String, Value> = render::facts(n, ctx)
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v)))
            .chain([(
                "Why".to_string(),
                Value::String(clip(&n.explanation(), 2000)),
            )])
            .collect();
        e["payload"] = json!({
            "summary": clip(&render::summary(n), 1024),
            "source": clip(&render::who(n), 255),
            "severity": render::pagerduty_severity(n.level()),
            "timestamp": n.first_seen().to_rfc3339(),
            "component": clip(if n.incident.is_some() { "incident" } else { &n.alert.rule_id }, 255),
            "group": n.account().map(|x| clip(x, 255)),
            "class": n.tactics().first(),
            "custom_details": details,
        });
        e["client"] = json!("CloudSentinel");
        if let Some(url) = render::link(n, ctx) {
            e["client_url"] = json!(url);
            e["links"] = json!([{"href": url, "text": "Open in CloudSentinel"}]);
        }
    }
    e
}

/// ServiceNow's urgency and impact (1 high, 2 medium, 3 low) for a level.
fn servicenow_priority(l: cloudsentinel_core::Level) -> (u8, u8) {
    match l {
        cloudsentinel_core::Level::Critical => (1, 1),
        cloudsentinel_core::Level::High => (1, 2),
        cloudsentinel_core::Level::Medium => (2, 2),
        _ => (3, 3),
    }
}

fn plain_facts(n: &Notice, ctx: &Context<'_>) -> String {
    let mut s = String::new();
    for (k, v) in render::facts(n, ctx) {
        s.push_str(&format!("{k}: {v}\n"));
    }
    s.push_str(&format!("Why: {}\n", clip(&n.explanation(), 4000)));
    if let Some(url) = render::link(n, ctx) {
        s.push_str(&format!("Alert: {url}\n"));
    }
    s
}

/// The Table API: find the incident by correlation id (so that a retried create after a crash
/// does not open a second one), create it or update it; resolve it when the alert is closed.
fn servicenow(
    http: &Http,
    base: &str,
    user: &str,
    password: &str,
    close_code: &str,
    n: &Notice,
    ctx: &Context<'_>,
) -> Outcome {
    let auth = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
    );
    let headers = [
        ("authorization", auth),
        ("accept", "application/json".to_string()),
    ];
    let key = alert_key(n);
    let find = http.call(
        "GET",
        &format!(
            "{base}/api/now/table/incident?sysparm_query=correlation_id%3D{key}&sysparm_fields=sys_id%2Cstate&sysparm_limit=1"
        ),
        &headers,
        None,
    );
    if !matches!(find.outcome(), Outcome::Sent) {
        return find.outcome();
    }
    let existing = find
        .json()
        .and_then(|v| v["result"][0]["sys_id"].as_str().map(str::to_string));
    let (urgency, impact) = servicenow_priority(n.level());
    let mut body = match n.change {
        Change::Created | Change::Updated | Change::Test => json!({
            "short_description": clip(&render::summary(n), 160),
            "description": plain_facts(n, ctx),
            "urgency": urgency.to_string(),
            "impact": impact.to_string(),
            "category": "security",
            "correlation_id": key,
            "correlation_display": "CloudSentinel",
        }),
        Change::Acknowledged => json!({
            "state": "2",
            "work_notes": format!("Acknowledged in CloudSentinel ({}).", n.status().as_str()),
        }),
        Change::Resolved => json!({
            "state": "6",
            "close_code": close_code,
            "close_notes": format!(
                "{} in CloudSentinel{}.",
                if n.status() == cloudsentinel_alert::AlertStatus::Closed { "Closed" } else { "Resolved" },
                match &n.incident {
                    Some(i) => i.close_reason.as_ref().map(|r| format!(": {r}")).unwrap_or_default(),
                    None => n.alert.verdict.map(|v| format!(" as {}", v.as_str())).unwrap_or_default(),
                }
            ),
        }),
    };
    match existing {
        Some(sys_id) => {
            if n.change == Change::Updated {
                body["work_notes"] = json!(format!(
                    "Updated by CloudSentinel: count {}, last seen {}.",
                    n.count(),
                    n.last_seen().to_rfc3339()
                ));
            }
            http.call(
                "PATCH",
                &format!("{base}/api/now/table/incident/{sys_id}"),
                &headers,
                Some(&serde_json::to_vec(&body).expect("JSON")),
            )
            .outcome()
        }
        // Nothing to close or acknowledge: the incident was never opened (or was deleted there).
        None if matches!(n.change, Change::Resolved | Change::Acknowledged) => Outcome::Sent,
        None => http
            .call(
                "POST",
                &format!("{base}/api/now/table/incident"),
                &headers,
                Some(&serde_json::to_vec(&body).expect("JSON")),
            )
            .outcome(),
    }
}

/// A small HTTP client: one agent per sink try, no redirects followed (a receiver that redirects
/// is misconfigured, and following could send alerts somewhere else), bodies read up to 64 KiB.
struct Http {
    agent: ureq::Agent,
}

/// The answer to one request.
struct Reply {
    result: Result<(u16, Option<Duration>, String), String>,
}

impl Http {
    fn new(timeout: Duration) -> Http {
        Http {
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .timeout_global(Some(timeout))
                .max_redirects(0)
                .user_agent(concat!("CloudSentinel/", env!("CARGO_PKG_VERSION")))
                .build()
                .into(),
        }
    }

    fn call(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: Option<&[u8]>,
    ) -> Reply {
        let result = match method {
            "GET" => {
                let mut r = self.agent.get(url);
                for (k, v) in headers {
                    r = r.header(*k, v.as_str());
                }
                r.call()
            }
            _ => {
                let mut r = match method {
                    "PATCH" => self.agent.patch(url),
                    "PUT" => self.agent.put(url),
                    _ => self.agent.post(url),
                };
                let mut typed = false;
                for (k, v) in headers {
                    typed |= k.eq_ignore_ascii_case("content-type");
                    r = r.header(*k, v.as_str());
                }
                if !typed {
                    r = r.header("content-type", "application/json");
                }
                r.send(body.unwrap_or_default())
            }
        };
        Reply {
            result: match result {
                Ok(mut resp) => {
                    let status = resp.status().as_u16();
                    let retry_after = resp
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs);
                    let text = resp
                        .body_mut()
                        .with_config()
                        .limit(64 * 1024)
                        .read_to_string()
                        .unwrap_or_default();
                    Ok((status, retry_after, text))
                }
                Err(e) => Err(e.to_string()),
            },
        }
    }
}

impl Reply {
    fn outcome(&self) -> Outcome {
        match &self.result {
            Err(e) => Outcome::Retry {
                error: e.clone(),
                after: None,
            },
            Ok((s, _, _)) if (200..300).contains(s) => Outcome::Sent,
            Ok((s, after, text)) => {
                let error = format!("HTTP {s}: {}", clip(text.trim(), 300));
                if *s == 408 || *s == 429 || *s >= 500 {
                    Outcome::Retry {
                        error,
                        after: *after,
                    }
                } else {
                    Outcome::Failed { error }
                }
            }
        }
    }

    fn json(&self) -> Option<Value> {
        match &self.result {
            Ok((_, _, text)) => serde_json::from_str(text).ok(),
            Err(_) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // HMAC-SHA256("secret", "1700000000.{}"), computed independently (Python's hmac module).
        assert_eq!(
            signature("secret", 1_700_000_000, b"{}"),
            "v1=b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn backoff_grows_with_jitter_and_honours_retry_after() {
        for attempt in 1..20 {
            let d = backoff(attempt, None).as_secs_f64();
            let base = 2f64.powi(attempt.min(16) as i32).min(300.0);
            assert!(d >= base * 0.5 && d <= base, "attempt {attempt}: {d}");
        }
        assert!(backoff(1, Some(Duration::from_secs(120))) >= Duration::from_secs(120));
        assert_eq!(
            backoff(1, Some(Duration::from_secs(86_400))),
            Duration::from_secs(3600),
            "a Retry-After of a day waits an hour"
        );
    }

    #[test]
    fn slack_text_cannot_mention_everyone_or_forge_links() {
        assert_eq!(
            slack_escape("<!channel> <https://evil|click> & co"),
            "&lt;!channel&gt; &lt;https://evil|click&gt; &amp; co"
        );
    }
}
