//! Dashboard counts: stats, trends, top rules, where alerts came from, ATT&CK coverage.

use super::*;

/// Headline counts.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct DashboardStats {
    pub events_total: u64,
    pub alerts_total: u64,
    pub incidents_total: u64,
    pub open_incidents: u64,
    /// Level → alerts.
    pub alerts_by_level: BTreeMap<String, u64>,
    /// Status → alerts.
    pub alerts_by_status: BTreeMap<String, u64>,
    pub events_last_24h: u64,
    /// Alerts last seen in the last 24 hours.
    pub alerts_last_24h: u64,
    /// When the latest stored event happened.
    pub last_event: Option<DateTime<Utc>>,
    pub rules_loaded: usize,
    /// Events accepted and not yet committed.
    pub queue_events: i64,
    pub notifications: StatsNotifications,
}

/// The notification sinks, and those whose deliveries fail (ingest goes on regardless).
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct StatsNotifications {
    /// How many sinks are configured.
    pub sinks: usize,
    /// The names of the sinks that are failing.
    pub failing: Vec<String>,
}

pub async fn dashboard_stats(State(state): State<AppState>) -> ApiResult<Json<DashboardStats>> {
    let s = blocking(&state, |s| s.stats()).await?;
    Ok(Json(DashboardStats {
        events_total: s.events_total,
        alerts_total: s.alerts_total,
        incidents_total: s.incidents_total,
        open_incidents: s.open_incidents,
        alerts_by_level: s.alerts_by_level.into_iter().collect(),
        alerts_by_status: s.alerts_by_status.into_iter().collect(),
        events_last_24h: s.events_last_24h,
        alerts_last_24h: s.alerts_last_24h,
        last_event: s.last_event,
        rules_loaded: state.rules.len(),
        queue_events: state
            .metrics
            .queued_events
            .load(std::sync::atomic::Ordering::Relaxed)
            .max(0),
        // A sink that fails does not stop ingest: it is named here and on the dashboard.
        notifications: StatsNotifications {
            sinks: state.notifier.sinks.len(),
            failing: state
                .notifier
                .failing()
                .into_iter()
                .map(str::to_string)
                .collect(),
        },
    }))
}

/// Events and alerts per time bucket.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Trends {
    pub since: DateTime<Utc>,
    pub until: DateTime<Utc>,
    /// Seconds per point.
    pub bucket_secs: i64,
    pub points: Vec<cloudsentinel_store::TrendPoint>,
}

pub async fn dashboard_trends(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Trends>> {
    let hours = num(&q, "hours", 24)?.clamp(1, 2160) as i64;
    // A bucket wider than the range is the range.
    let bucket = num(&q, "bucket", (hours as u64 * 3600 / 48).max(60))?
        .clamp(60, hours as u64 * 3600) as i64;
    let until = Utc::now();
    let since = until - Duration::hours(hours);
    let points = blocking(&state, move |s| s.trends(since, until, bucket)).await?;
    Ok(Json(Trends {
        since,
        until,
        bucket_secs: bucket,
        points,
    }))
}

/// The rules with the most alerts.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TopThreats {
    pub items: Vec<TopThreat>,
}

/// A rule's alerts, and the ATT&CK techniques it detects.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct TopThreat {
    #[serde(flatten)]
    pub rule: cloudsentinel_store::RuleCount,
    /// The rule's techniques (none when it is no longer loaded).
    pub techniques: Vec<String>,
}

pub async fn dashboard_top_threats(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<TopThreats>> {
    let since = match q.get("hours") {
        Some(_) => Some(Utc::now() - Duration::hours(num(&q, "hours", 24)?.min(100_000) as i64)),
        None => None,
    };
    let limit = num(&q, "limit", 10)?.clamp(1, 100) as u32;
    let rules = blocking(&state, move |s| s.top_rules(since, limit)).await?;
    let items = rules
        .into_iter()
        .map(|rule| TopThreat {
            techniques: state
                .rules
                .rule(&rule.rule_id)
                .map(|m| m.techniques.clone())
                .unwrap_or_default(),
            rule,
        })
        .collect();
    Ok(Json(TopThreats { items }))
}

/// What kind of address this is, without a GeoIP database.
pub(super) fn address_class(ip: &str) -> &'static str {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(v4))
            if v4.is_private() || v4.is_loopback() || v4.is_link_local() =>
        {
            "private"
        }
        Ok(std::net::IpAddr::V6(v6))
            if v6.is_loopback() || (v6.segments()[0] & 0xfe00) == 0xfc00 =>
        {
            "private"
        }
        Ok(_) => "public",
        Err(_) => "service", // e.g. "ec2.amazonaws.com", "AWS Internal"
    }
}

/// Where alerts came from, by source address.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct GeoDistribution {
    pub items: Vec<AlertSource>,
    /// Whether an address table placed the addresses (the shipped one, or `detection.netdb`).
    pub geoip: bool,
    pub note: &'static str,
}

/// A source address and its alerts.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AlertSource {
    /// The alerts' source address, or a service name.
    pub source: String,
    /// `private`, `public` or `service` (a name such as `ec2.amazonaws.com`).
    pub class: &'static str,
    pub alerts: u64,
    /// ISO 3166-1 alpha-2 country of the address, from the address table.
    pub country: Option<String>,
    /// Autonomous system of the address, from the address table.
    pub asn: Option<u32>,
    pub as_name: Option<String>,
}

pub async fn dashboard_geo(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<GeoDistribution>> {
    let since = match q.get("hours") {
        Some(_) => Some(Utc::now() - Duration::hours(num(&q, "hours", 24)?.min(100_000) as i64)),
        None => None,
    };
    let limit = num(&q, "limit", 50)?.clamp(1, 500) as u32;
    let sources = blocking(&state, move |s| {
        s.alert_top(AlertKey::SourceIp, since, limit)
    })
    .await?;
    let net = &state.learning.net;
    let items = sources
        .into_iter()
        .map(|k| {
            let network = net.network(&k.key);
            AlertSource {
                class: address_class(&k.key),
                alerts: k.count,
                country: network
                    .as_ref()
                    .and_then(|n| n.country)
                    .map(|c| c.as_str().to_string()),
                asn: network.as_ref().and_then(|n| n.asn),
                as_name: network.and_then(|n| n.as_name).map(|a| a.to_string()),
                source: k.key,
            }
        })
        .collect();
    Ok(Json(GeoDistribution {
        items,
        geoip: true,
        note: "addresses placed by the address table events are enriched with (AS and country); private addresses and service names have neither",
    }))
}

/// ATT&CK coverage: the techniques the loaded rules detect, and those alerts were raised for.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AttackCoverage {
    /// Techniques at least one loaded rule detects.
    pub techniques_covered: usize,
    /// Techniques with alerts.
    pub techniques_alerted: usize,
    /// Tactic → covered techniques under it.
    pub by_tactic: BTreeMap<String, u64>,
    /// The covered techniques.
    pub items: Vec<CoveredTechnique>,
    /// Technique → alerts, for every technique with alerts (covered or not).
    pub alerted_techniques: BTreeMap<String, u64>,
}

/// A technique the loaded rules detect.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct CoveredTechnique {
    pub technique: String,
    /// The tactics its rules name.
    pub tactics: Vec<String>,
    /// How many rules detect it.
    pub rules: usize,
    pub rule_ids: Vec<String>,
    pub alerts: u64,
}

pub async fn dashboard_coverage(State(state): State<AppState>) -> ApiResult<Json<AttackCoverage>> {
    let hits = blocking(&state, |s| s.alert_top(AlertKey::Technique, None, u32::MAX)).await?;
    let hits: BTreeMap<String, u64> = hits.into_iter().map(|k| (k.key, k.count)).collect();
    let mut techniques: BTreeMap<String, (Vec<String>, Vec<String>)> = BTreeMap::new();
    for m in state.rules.rules() {
        for t in &m.techniques {
            let e = techniques.entry(t.clone()).or_default();
            e.0.push(m.id.clone());
            for tac in &m.tactics {
                if !e.1.contains(tac) {
                    e.1.push(tac.clone());
                }
            }
        }
    }
    let mut by_tactic: BTreeMap<String, u64> = BTreeMap::new();
    for (_, tacs) in techniques.values() {
        for t in tacs {
            *by_tactic.entry(t.clone()).or_default() += 1;
        }
    }
    let techniques_covered = techniques.len();
    let items = techniques
        .into_iter()
        .map(|(technique, (rule_ids, tactics))| CoveredTechnique {
            alerts: hits.get(&technique).copied().unwrap_or(0),
            rules: rule_ids.len(),
            technique,
            tactics,
            rule_ids,
        })
        .collect();
    Ok(Json(AttackCoverage {
        techniques_covered,
        techniques_alerted: hits.len(),
        by_tactic,
        items,
        alerted_techniques: hits,
    }))
}
