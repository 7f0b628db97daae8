//! Dashboard counts: stats, trends, top rules, where alerts came from, ATT&CK coverage.

use super::*;

pub async fn dashboard_stats(State(state): State<AppState>) -> ApiResult<Json<Value>> {
    let s = blocking(&state, |s| s.stats()).await?;
    Ok(Json(json!({
        "events_total": s.events_total,
        "alerts_total": s.alerts_total,
        "incidents_total": s.incidents_total,
        "open_incidents": s.open_incidents,
        "alerts_by_level": s.alerts_by_level.into_iter().collect::<BTreeMap<_, _>>(),
        "alerts_by_status": s.alerts_by_status.into_iter().collect::<BTreeMap<_, _>>(),
        "events_last_24h": s.events_last_24h,
        "alerts_last_24h": s.alerts_last_24h,
        "last_event": s.last_event,
        "rules_loaded": state.rules.len(),
        "queue_events": state.metrics.queued_events.load(std::sync::atomic::Ordering::Relaxed).max(0),
        // A sink that fails does not stop ingest: it is named here and on the dashboard.
        "notifications": {
            "sinks": state.notifier.sinks.len(),
            "failing": state.notifier.failing(),
        },
    })))
}

pub async fn dashboard_trends(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let hours = num(&q, "hours", 24)?.clamp(1, 2160) as i64;
    // A bucket wider than the range is the range.
    let bucket = num(&q, "bucket", (hours as u64 * 3600 / 48).max(60))?
        .clamp(60, hours as u64 * 3600) as i64;
    let until = Utc::now();
    let since = until - Duration::hours(hours);
    let points = blocking(&state, move |s| s.trends(since, until, bucket)).await?;
    Ok(Json(
        json!({"since": since, "until": until, "bucket_secs": bucket, "points": points}),
    ))
}

pub async fn dashboard_top_threats(
    State(state): State<AppState>,
    Query(q): Q,
) -> ApiResult<Json<Value>> {
    let since = match q.get("hours") {
        Some(_) => Some(Utc::now() - Duration::hours(num(&q, "hours", 24)?.min(100_000) as i64)),
        None => None,
    };
    let limit = num(&q, "limit", 10)?.clamp(1, 100) as u32;
    let rules = blocking(&state, move |s| s.top_rules(since, limit)).await?;
    let items: Vec<Value> = rules
        .into_iter()
        .map(|r| {
            let meta = state.rules.rule(&r.rule_id);
            json!({"rule_id": r.rule_id, "title": r.title, "level": r.level, "alerts": r.alerts,
                   "events": r.events, "last_seen": r.last_seen,
                   "techniques": meta.map(|m| m.techniques.clone()).unwrap_or_default()})
        })
        .collect();
    Ok(Json(json!({"items": items})))
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

pub async fn dashboard_geo(State(state): State<AppState>, Query(q): Q) -> ApiResult<Json<Value>> {
    let since = match q.get("hours") {
        Some(_) => Some(Utc::now() - Duration::hours(num(&q, "hours", 24)?.min(100_000) as i64)),
        None => None,
    };
    let limit = num(&q, "limit", 50)?.clamp(1, 500) as u32;
    let sources = blocking(&state, move |s| {
        s.alert_top(AlertKey::SourceIp, since, limit)
    })
    .await?;
    let items: Vec<Value> = sources
        .into_iter()
        .map(|k| json!({"source": k.key, "class": address_class(&k.key), "alerts": k.count, "country": null, "asn": null}))
        .collect();
    Ok(Json(json!({
        "items": items,
        "geoip": false,
        "note": "no GeoIP database is configured: sources are listed by address; country and ASN come with the enrichment stage",
    })))
}

pub async fn dashboard_coverage(State(state): State<AppState>) -> ApiResult<Json<Value>> {
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
    let items: Vec<Value> = techniques
        .iter()
        .map(|(t, (rules, tactics))| {
            json!({"technique": t, "tactics": tactics, "rules": rules.len(), "rule_ids": rules,
                   "alerts": hits.get(t).copied().unwrap_or(0)})
        })
        .collect();
    let mut tactics: BTreeMap<String, u64> = BTreeMap::new();
    for (_, tacs) in techniques.values() {
        for t in tacs {
            *tactics.entry(t.clone()).or_default() += 1;
        }
    }
    Ok(Json(json!({
        "techniques_covered": techniques.len(),
        "techniques_alerted": hits.len(),
        "by_tactic": tactics,
        "items": items,
        "alerted_techniques": hits,
    })))
}
