//! The analyst's pages: overview, alert queue, one alert, incidents.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::response::Response;
use chrono::{DateTime, Duration, Utc};
use cloudsentinel_alert::{AlertRecord, AlertStatus};
use cloudsentinel_core::Level;
use cloudsentinel_core::text::SHOWN_FIELD_CHARS;
use cloudsentinel_store::{AlertKey, AlertSort, EventRow};
use serde_json::{Value, json};

use super::{
    Nav, Session, action_form, age, attack, bars, csrf_field, done, error_text, esc, field,
    level_badge, map, outcome, page, pager, plural, status_badge, technique_tags, time_cell,
    urlenc, when,
};
use crate::error::ApiError;
use crate::{AppState, api, blocking};

type Q = Query<BTreeMap<String, String>>;

fn fail(s: &Session, e: ApiError) -> Response {
    super::error_page(s, e)
}

// ---- overview --------------------------------------------------------------------------------

/// The ranges the overview offers: (parameter, label, hours).
const RANGES: &[(&str, &str, i64)] = &[
    ("24h", "24 hours", 24),
    ("7d", "7 days", 24 * 7),
    ("30d", "30 days", 24 * 30),
    ("90d", "90 days", 24 * 90),
];

pub async fn overview(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let range = q.get("range").map(String::as_str).unwrap_or("24h");
    let Some(&(range, range_label, hours)) = RANGES.iter().find(|r| r.0 == range) else {
        return fail(&s, crate::error::bad("range: expected 24h, 7d, 30d or 90d"));
    };
    let until = Utc::now();
    let since = until - Duration::hours(hours);
    let bucket = (hours * 3600 / 48).max(60);
    let data = blocking(&state, move |st| {
        Ok((
            st.stats()?,
            st.trends(since, until, bucket)?,
            st.top_rules(Some(since), 8)?,
            st.alert_top(AlertKey::Entity, Some(since), 8)?,
            st.alert_top(AlertKey::Account, Some(since), 8)?,
            st.alert_top(AlertKey::Tactic, Some(since), 20)?,
            st.alert_top(AlertKey::SourceIp, Some(since), 300)?,
        ))
    })
    .await;
    let (stats, trend, rules, principals, accounts, tactics, sources) = match data {
        Ok(d) => d,
        Err(e) => return fail(&s, e),
    };
    let count =
        |v: &[(String, u64)], k: &str| v.iter().find(|(n, _)| n == k).map(|(_, c)| *c).unwrap_or(0);
    let mut b = String::new();
    let _ = write!(
        b,
        "<div class=\"row between\"><h1>Overview</h1><nav class=\"row\" aria-label=\"Time range\">"
    );
    for (id, label, _) in RANGES {
        let cur = if *id == range {
            " aria-current=\"true\" class=\"button primary\""
        } else {
            " class=\"button\""
        };
        let _ = write!(b, "<a{cur} href=\"/ui?range={id}\">{label}</a>");
    }
    b.push_str("</nav></div><div id=\"overview\" data-region>");
    b.push_str("<h2 class=\"muted small\">Alerts by level (all time)</h2><div class=\"cards\" id=\"by-level\">");
    for l in Level::ALL.iter().rev() {
        let _ = write!(
            b,
            "<a class=\"card\" href=\"/ui/alerts?level={l}&amp;status=all\" data-level=\"{l}\"><div class=\"l\">{l}</div><div class=\"n\">{}</div></a>",
            count(&stats.alerts_by_level, l.as_str()),
            l = l.as_str()
        );
    }
    b.push_str("</div><h2 class=\"muted small\">Alerts by status</h2><div class=\"cards\" id=\"by-status\">");
    for st in AlertStatus::ALL {
        let _ = write!(
            b,
            "<a class=\"card\" href=\"/ui/alerts?status={s}\" data-status=\"{s}\"><div class=\"l\">{s}</div><div class=\"n\">{}</div></a>",
            count(&stats.alerts_by_status, st.as_str()),
            s = st.as_str()
        );
    }
    let _ = write!(
        b,
        "<a class=\"card\" href=\"/ui/incidents\"><div class=\"l\">open incidents</div><div class=\"n\" id=\"open-incidents\">{}</div></a>\
<a class=\"card\" href=\"/ui/events\"><div class=\"l\">events stored</div><div class=\"n\" id=\"events-total\">{}</div></a></div>",
        stats.open_incidents, stats.events_total
    );
    // Over time.
    let ev_total: u64 = trend.iter().map(|p| p.events).sum();
    let al_total: u64 = trend.iter().map(|p| p.alerts).sum();
    let _ = write!(
        b,
        "<div class=\"panel\"><div class=\"row between\"><h2>Over the last {range_label}</h2>\
<div class=\"legend\"><span><span class=\"sw al\"></span>alerts raised: {al_total}</span>\
<span><span class=\"sw ev\"></span>events: {ev_total}</span></div></div>{}{}</div>",
        series_chart(
            &trend
                .iter()
                .map(|p| (p.start, p.alerts))
                .collect::<Vec<_>>(),
            "al",
            "alerts",
            bucket
        ),
        series_chart(
            &trend
                .iter()
                .map(|p| (p.start, p.events))
                .collect::<Vec<_>>(),
            "ev",
            "events",
            bucket
        ),
    );
    // Tops.
    b.push_str("<div class=\"grid\">");
    let rule_items: Vec<(String, u64)> = rules
        .iter()
        .map(|r| {
            (
                format!(
                    "{} <a href=\"/ui/alerts?rule={}&amp;status=all\">{}</a>",
                    level_badge(r.level),
                    urlenc(&r.rule_id),
                    esc(&r.title)
                ),
                r.alerts,
            )
        })
        .collect();
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"top-rules\"><h2>Top rules</h2>{}</section>",
        bars(&rule_items)
    );
    let link_items = |v: &[cloudsentinel_store::KeyCount], param: &str| -> Vec<(String, u64)> {
        v.iter()
            .map(|k| {
                (
                    format!(
                        "<a href=\"/ui/alerts?{param}={}&amp;status=all\">{}</a>",
                        urlenc(&k.key),
                        esc(&k.key)
                    ),
                    k.count,
                )
            })
            .collect()
    };
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"top-principals\"><h2>Top principals</h2>{}</section>\
<section class=\"panel\" id=\"top-accounts\"><h2>Top accounts</h2>{}</section>",
        bars(&link_items(&principals, "principal")),
        bars(&link_items(&accounts, "account")),
    );
    // Tactics in matrix order.
    let by_tactic: BTreeMap<&str, u64> =
        tactics.iter().map(|k| (k.key.as_str(), k.count)).collect();
    let tactic_items: Vec<(String, u64)> = attack::TACTICS
        .iter()
        .filter_map(|(id, name)| {
            by_tactic
                .get(id)
                .map(|n| (format!("<a href=\"/ui/coverage?by=hits\">{name}</a>"), *n))
        })
        .collect();
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"tactics\"><h2>ATT&amp;CK tactics seen</h2>{}</section>",
        bars(&tactic_items)
    );
    // Where from.
    let (dots, located, unlocated) = locate(&state, &sources);
    let _ = write!(
        b,
        "<section class=\"panel wide\" id=\"map\"><h2>Where alerted activity came from</h2>{}<p class=\"small muted\">\
         {located} alerted addresses placed by country; {unlocated} private, service or unlisted. \
         Address data: <a href=\"https://db-ip.com\">IP Geolocation by DB-IP</a>, \
         <a href=\"https://www.routeviews.org\">RouteViews</a>, <a href=\"https://www.nro.net\">NRO</a> \
         (CC BY 4.0), via ip-location-db.</p></section>",
        map::world(&dots),
    );
    b.push_str("</div></div>");
    page(&s, "Overview", Nav::Overview, Some("overview"), &b)
}

/// Places alert sources on the map through the configured address table.
fn locate(
    state: &AppState,
    sources: &[cloudsentinel_store::KeyCount],
) -> (Vec<map::Dot>, usize, usize) {
    let db = state.learning.net.db();
    let mut by_country: BTreeMap<[u8; 2], (u64, usize)> = BTreeMap::new();
    let mut unlocated = 0;
    for k in sources {
        let place = k
            .key
            .parse::<std::net::Ipv4Addr>()
            .ok()
            .and_then(|ip| db.lookup(ip))
            .and_then(|info| info.country);
        match place {
            Some(c) => {
                let e = by_country.entry(c).or_default();
                e.0 += k.count;
                e.1 += 1;
            }
            None => unlocated += 1,
        }
    }
    let mut located = 0;
    let dots = by_country
        .into_iter()
        .filter_map(|(c, (alerts, addrs))| {
            let (lat, lon) = cloudsentinel_context::netdb::centroid(c)?;
            located += addrs;
            Some(map::Dot {
                lat,
                lon,
                count: alerts,
                label: format!(
                    "{}: {} from {}",
                    String::from_utf8_lossy(&c),
                    plural(alerts, "alert", "alerts"),
                    plural(addrs as u64, "address", "addresses")
                ),
            })
        })
        .collect();
    (dots, located, unlocated)
}

/// A bar chart of one series over time.
fn series_chart(points: &[(DateTime<Utc>, u64)], class: &str, what: &str, bucket: i64) -> String {
    let max = points.iter().map(|p| p.1).max().unwrap_or(0);
    let n = points.len().max(1) as f64;
    let w = 1000.0 / n;
    let mut out = format!(
        "<svg class=\"chart\" viewBox=\"0 0 1000 120\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"{what} over time, at most {max} per {} minutes\">",
        bucket / 60
    );
    out.push_str("<line class=\"axis\" x1=\"0\" y1=\"110\" x2=\"1000\" y2=\"110\"/>");
    for (i, (t, v)) in points.iter().enumerate() {
        if *v == 0 {
            continue;
        }
        let h = (*v as f64 / max.max(1) as f64) * 100.0;
        let _ = write!(
            out,
            "<rect class=\"{class}\" x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{h:.1}\"><title>{}: {v} {what}</title></rect>",
            i as f64 * w + w * 0.1,
            110.0 - h,
            w * 0.8,
            when(t)
        );
    }
    let _ = write!(
        out,
        "<text x=\"2\" y=\"10\">at most {} per bar</text></svg>",
        plural(max, what.trim_end_matches('s'), what)
    );
    out
}

// ---- alert queue -------------------------------------------------------------------------------

/// The statuses the queue shows unless asked otherwise.
const ACTIVE: &str = "open,acknowledged,investigating";

/// The queue's query as the API's, without empty form fields; `status` defaults to the
/// active ones and `all` means any.
fn queue_params(q: &BTreeMap<String, String>) -> BTreeMap<String, String> {
    let mut p: BTreeMap<String, String> = q
        .iter()
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    match p.get("status").map(String::as_str) {
        None => {
            p.insert("status".into(), ACTIVE.into());
        }
        Some("all") => {
            p.remove("status");
        }
        Some("active") => {
            p.insert("status".into(), ACTIVE.into());
        }
        _ => {}
    }
    p.entry("limit".into()).or_insert_with(|| "50".into());
    p
}

fn query_string(p: &BTreeMap<String, String>, skip: &[&str]) -> String {
    p.iter()
        .filter(|(k, _)| !skip.contains(&k.as_str()))
        .map(|(k, v)| format!("{}={}", urlenc(k), urlenc(v)))
        .collect::<Vec<_>>()
        .join("&amp;")
}

pub async fn alerts(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    // What the form shows: the status as asked ("" = active).
    let shown_status = q.get("status").cloned().unwrap_or_default();
    let params = queue_params(&q);
    let query = match api::alert_query(&params) {
        Ok(query) => query,
        Err(e) => return fail(&s, e),
    };
    let (limit, offset) = (query.limit as u64, query.offset);
    let sort = query.sort;
    let desc = query.descending;
    let page_data = match blocking(&state, move |st| st.alerts(&query)).await {
        Ok(p) => p,
        Err(e) => return fail(&s, e),
    };
    let can_edit = s.can("PATCH", "/api/v1/alerts/{id}");
    let ids: Vec<String> = page_data.items.iter().map(|a| a.entity.clone()).collect();
    let names = blocking(&state, move |st| st.actor_names(&api::object_ids(ids)))
        .await
        .unwrap_or_default();
    let mut b = String::from("<h1>Alerts</h1>");
    // Filters.
    let val = |k: &str| esc(q.get(k).map(String::as_str).unwrap_or(""));
    let _ = write!(
        b,
        "<form class=\"panel filters\" method=\"get\" action=\"/ui/alerts\" role=\"search\" id=\"filters\">\
<label>Search <input type=\"search\" name=\"q\" id=\"q\" value=\"{}\" placeholder=\"title, entity, rule, explanation\" aria-keyshortcuts=\"/\"></label>",
        val("q")
    );
    b.push_str(
        "<label>Level<select name=\"min_level\" id=\"min_level\"><option value=\"\">low and above (informational left out)</option>",
    );
    for l in Level::ALL.iter().rev() {
        let sel = if q.get("min_level").map(String::as_str) == Some(l.as_str()) {
            " selected"
        } else {
            ""
        };
        let _ = write!(
            b,
            "<option value=\"{0}\"{sel}>{0} and above</option>",
            l.as_str()
        );
    }
    b.push_str("</select></label><label>Kind<select name=\"kind\" id=\"kind\">");
    for (v, label) in [
        ("", "any"),
        ("rule", "rule"),
        ("correlation", "correlation"),
        ("anomaly", "anomaly (behaviour)"),
    ] {
        let sel = if q.get("kind").map(String::as_str).unwrap_or("") == v {
            " selected"
        } else {
            ""
        };
        let _ = write!(b, "<option value=\"{v}\"{sel}>{label}</option>");
    }
    b.push_str("</select></label><label>Status<select name=\"status\" id=\"status\">");
    let mut status_opts = vec![
        ("", "active (open, acknowledged, investigating)"),
        ("all", "any"),
    ];
    for st in AlertStatus::ALL {
        status_opts.push((st.as_str(), st.as_str()));
    }
    for (v, label) in status_opts {
        let sel = if shown_status == v { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{v}\"{sel}>{label}</option>");
    }
    b.push_str("</select></label>");
    for (k, label) in [
        ("principal", "Principal"),
        ("account", "Account"),
        ("technique", "Technique"),
        ("rule", "Rule id"),
    ] {
        let _ = write!(
            b,
            "<label>{label}<input type=\"text\" name=\"{k}\" value=\"{}\" size=\"14\"></label>",
            val(k)
        );
    }
    if let Some(sort) = q.get("sort") {
        let _ = write!(
            b,
            "<input type=\"hidden\" name=\"sort\" value=\"{}\">",
            esc(sort)
        );
    }
    if let Some(order) = q.get("order") {
        let _ = write!(
            b,
            "<input type=\"hidden\" name=\"order\" value=\"{}\">",
            esc(order)
        );
    }
    b.push_str("<button class=\"primary\" type=\"submit\" id=\"apply\">Filter</button> <a class=\"button\" href=\"/ui/alerts\">Reset</a></form>");

    // The table, in a form for bulk actions.
    let base = query_string(&params, &["offset", "sort", "order"]);
    let back = format!(
        "/ui/alerts?{}",
        query_string(&params, &[]).replace("&amp;", "&")
    );
    b.push_str("<div id=\"queue\" data-region>");
    if can_edit {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/alerts/bulk\" id=\"bulk\">{}<input type=\"hidden\" name=\"back\" value=\"{}\">\
<div class=\"bulk\" role=\"group\" aria-label=\"Bulk actions\"><span id=\"selected-count\" class=\"muted\">none selected</span>\
<button type=\"submit\" name=\"action\" value=\"acknowledge\" data-needs-selection id=\"bulk-ack\">Acknowledge</button>\
<label class=\"check\">Assign to <input type=\"text\" name=\"assignee\" size=\"10\" value=\"{}\" aria-label=\"Assignee\"></label>\
<button type=\"submit\" name=\"action\" value=\"assign\" data-needs-selection id=\"bulk-assign\">Assign</button>\
<button type=\"submit\" name=\"action\" value=\"close\" data-needs-selection id=\"bulk-close\">Close</button></div>",
            csrf_field(&s),
            esc(&back),
            esc(&s.caller.name)
        );
    }
    let _ = write!(
        b,
        "<p class=\"muted small\" id=\"queue-total\" data-total=\"{0}\">Matching alerts: {0}.</p>",
        page_data.total
    );
    if page_data.items.is_empty() {
        b.push_str("<p class=\"empty\">No alerts match these filters.</p>");
    } else {
        b.push_str("<table id=\"alerts-table\"><thead><tr>");
        if can_edit {
            b.push_str("<th scope=\"col\"><input type=\"checkbox\" id=\"select-all\" aria-label=\"Select all on this page\"></th>");
        }
        let sort_link = |label: &str, key: &str, this: AlertSort| {
            let current = sort == this;
            let next_order = if current && desc { "asc" } else { "desc" };
            let aria = if current {
                format!(
                    " aria-sort=\"{}\"",
                    if desc { "descending" } else { "ascending" }
                )
            } else {
                String::new()
            };
            let arrow = if current {
                if desc { " ↓" } else { " ↑" }
            } else {
                ""
            };
            format!(
                "<a href=\"/ui/alerts?{base}{}sort={key}&amp;order={next_order}\"{aria}>{label}{arrow}</a>",
                if base.is_empty() { "" } else { "&amp;" }
            )
        };
        let _ = write!(
            b,
            "<th scope=\"col\">{}</th><th scope=\"col\">Alert</th><th scope=\"col\">Entity</th><th scope=\"col\">Techniques</th>\
<th scope=\"col\" class=\"num\">{}</th><th scope=\"col\">Status</th><th scope=\"col\">{}</th></tr></thead><tbody id=\"queue-rows\">",
            sort_link("Level", "level", AlertSort::Level),
            sort_link("Events", "count", AlertSort::Count),
            sort_link("Last seen", "last_seen", AlertSort::LastSeen),
        );
        for a in &page_data.items {
            alert_row(&mut b, a, can_edit, names.get(&a.entity));
        }
        b.push_str("</tbody></table>");
    }
    b.push_str(&pager(
        "/ui/alerts",
        &base.replace("&amp;", "&"),
        page_data.total,
        offset,
        limit,
    ));
    if can_edit {
        b.push_str("</form>");
    }
    b.push_str("<p class=\"small muted\">Keys: <span class=\"kbd\">/</span> search, <span class=\"kbd\">j</span>/<span class=\"kbd\">k</span> next/previous alert.</p></div>");
    page(&s, "Alerts", Nav::Alerts, Some("alerts"), &b)
}

fn alert_row(b: &mut String, a: &AlertRecord, can_edit: bool, name: Option<&String>) {
    let _ = write!(b, "<tr data-alert=\"{}\">", a.id);
    if can_edit {
        let _ = write!(
            b,
            "<td><input type=\"checkbox\" name=\"id\" value=\"{0}\" aria-label=\"Select alert {0}\"></td>",
            a.id
        );
    }
    let assignee = a
        .assignee
        .as_deref()
        .map(|x| format!("<br><span class=\"small muted\">→ {}</span>", esc(x)))
        .unwrap_or_default();
    let verdict = a
        .verdict
        .map(|v| {
            format!(
                "<br><span class=\"small muted\">{}</span>",
                v.as_str().replace('_', " ")
            )
        })
        .unwrap_or_default();
    let _ = write!(
        b,
        "<td>{}</td><td><a href=\"/ui/alerts/{id}\" data-row-link>{}</a><br><span class=\"kind\">{}</span> <span class=\"small muted\">#{id}</span></td>\
<td><a href=\"/ui/alerts?principal={}&amp;status=all\">{}</a>{}</td><td>{}</td><td class=\"num\">{}</td><td>{}{assignee}{verdict}</td><td class=\"nowrap\">{}</td></tr>",
        level_badge(a.level),
        esc(&a.title),
        esc(&a.kind),
        urlenc(&a.entity),
        match name {
            Some(n) => format!(
                "{} <span class=\"small muted\">({})</span>",
                esc(n),
                esc(&a.entity)
            ),
            None => esc(&a.entity),
        },
        a.account
            .as_deref()
            .map(|x| format!("<br><span class=\"small muted\">{}</span>", esc(x)))
            .unwrap_or_default(),
        technique_tags(&a.techniques),
        a.count,
        status_badge(a.status),
        time_cell(&a.last_seen),
        id = a.id,
    );
}

pub async fn alerts_bulk(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "PATCH", "/api/v1/alerts/{id}") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = field(&fields, "back")
        .filter(|b| b.starts_with("/ui/alerts"))
        .unwrap_or("/ui/alerts")
        .to_string();
    let ids: Vec<i64> = fields
        .iter()
        .filter(|(k, _)| k == "id")
        .filter_map(|(_, v)| v.parse().ok())
        .take(500)
        .collect();
    if ids.is_empty() {
        return done(&back, "error: select at least one alert");
    }
    let patch = match field(&fields, "action") {
        Some("acknowledge") => json!({"status": "acknowledged"}),
        Some("close") => json!({"status": "closed"}),
        Some("assign") => match field(&fields, "assignee").map(str::trim) {
            Some(a) if !a.is_empty() => json!({"assignee": a}),
            _ => return done(&back, "error: say who to assign them to"),
        },
        _ => return done(&back, "error: unknown action"),
    };
    let mut changed = 0;
    let mut errors = Vec::new();
    for id in &ids {
        match api::update_alert(
            State(state.clone()),
            Extension(s.caller.clone()),
            Path(*id),
            Bytes::from(patch.to_string()),
        )
        .await
        {
            Ok(_) => changed += 1,
            Err(e) => errors.push(format!("#{id}: {}", error_text(e).1)),
        }
    }
    let what = match field(&fields, "action") {
        Some("acknowledge") => "acknowledged",
        Some("close") => "closed",
        _ => "assigned",
    };
    if errors.is_empty() {
        done(&back, format!("{changed} alerts {what}."))
    } else {
        done(
            &back,
            format!(
                "error: {changed} alerts {what}; failed: {}",
                errors.join("; ")
            ),
        )
    }
}

// ---- one alert -------------------------------------------------------------------------------------

pub async fn alert(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    let detail = match api::alert_detail(&state, id).await {
        Ok(d) => d,
        Err(e) => return fail(&s, e),
    };
    let a = &detail.alert;
    let (evidence, around) = (&detail.evidence, &detail.around.items);
    let entity = a.entity.clone();
    let names = blocking(&state, move |st| {
        st.actor_names(&api::object_ids(vec![entity]))
    })
    .await
    .unwrap_or_default();
    let who = match names.get(&a.entity) {
        Some(n) => format!(
            "{} <span class=\"small muted\">({})</span>",
            esc(n),
            esc(&a.entity)
        ),
        None => esc(&a.entity),
    };
    let mut b = String::new();
    let _ = write!(
        b,
        "<p class=\"small\"><a href=\"/ui/alerts\">← Alerts</a></p><div class=\"row\">{}<h1 id=\"alert-title\">{}</h1></div>\
<p class=\"row\" id=\"alert-state\" data-region>{} <span class=\"kind\">{} alert</span> <span class=\"muted\">#{}</span>{}{}</p>",
        level_badge(a.level),
        esc(&a.title),
        status_badge(a.status),
        esc(&a.kind),
        a.id,
        a.assignee
            .as_deref()
            .map(|x| format!(" <span>assigned to <strong>{}</strong></span>", esc(x)))
            .unwrap_or_default(),
        a.verdict
            .map(|v| format!(
                " <span class=\"tag\" id=\"verdict\">{}</span>",
                v.as_str().replace('_', " ")
            ))
            .unwrap_or_default(),
    );
    b.push_str("<div class=\"grid\">");
    // What happened.
    let span = if a.first_seen == a.last_seen {
        format!("at {}", when(&a.first_seen))
    } else {
        format!("between {} and {}", when(&a.first_seen), when(&a.last_seen))
    };
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"what\"><h2>What happened</h2><p><strong>{}</strong>{}{} — {} matching event{} {span}.</p>",
        who,
        a.account
            .as_deref()
            .map(|x| format!(" in <strong>{}</strong>", esc(x)))
            .unwrap_or_default(),
        a.source_ip
            .as_deref()
            .map(|x| format!(
                " from <a href=\"/ui/events?source_ip={}\">{}</a>",
                urlenc(x),
                esc(x)
            ))
            .unwrap_or_default(),
        a.count,
        if a.count == 1 { "" } else { "s" },
    );
    let heading = if a.kind == "anomaly" {
        "Why this is unusual"
    } else {
        "Why it fired"
    };
    let _ = write!(
        b,
        "<h3>{heading}</h3><p id=\"explanation\">{}</p>",
        esc(&a.explanation)
    );
    if let Some(score) = a.tp_score {
        let _ = write!(
            b,
            "<p class=\"small muted\">Feedback model: {:.0}% likely a true positive.</p>",
            score * 100.0
        );
    }
    if let Some(inc) = a.incident_id {
        let _ = write!(
            b,
            "<p>Part of <a href=\"/ui/incidents/{inc}\">incident #{inc}</a>{}.</p>",
            detail
                .incident
                .as_ref()
                .map(|i| format!(": {}", esc(&i.title)))
                .unwrap_or_default()
        );
    }
    b.push_str("</section>");
    // Rule, techniques, remedy.
    b.push_str("<section class=\"panel\" id=\"rule\"><h2>Detection</h2>");
    if let Some(rule) = &detail.rule {
        let _ = write!(
            b,
            "<dl class=\"kv\"><dt>Rule</dt><dd>{} <code>{}</code></dd><dt>Source</dt><dd>{}</dd></dl>",
            esc(&rule.title),
            esc(&a.rule_id),
            esc(&rule.source)
        );
        if let Some(d) = &rule.description {
            let _ = write!(b, "<p>{}</p>", esc(d));
        }
        if !rule.false_positives.is_empty() {
            b.push_str("<h3>Known false positives</h3><ul>");
            for f in &rule.false_positives {
                let _ = write!(b, "<li>{}</li>", esc(f));
            }
            b.push_str("</ul>");
        }
    } else {
        let _ = write!(
            b,
            "<p><code>{}</code>: {}</p>",
            esc(&a.rule_id),
            if a.kind == "anomaly" {
                "behaviour model: this principal's activity against its own learned baseline"
            } else {
                "the rule is no longer loaded"
            }
        );
    }
    b.push_str("<h3>ATT&amp;CK</h3><ul id=\"techniques\">");
    for t in &a.techniques {
        let tactics: Vec<&str> = attack::TECHNIQUES
            .iter()
            .find(|x| x.0 == t)
            .map(|x| x.2.iter().filter_map(|t| attack::tactic_name(t)).collect())
            .unwrap_or_default();
        let _ = write!(
            b,
            "<li><a href=\"{}\" rel=\"noopener noreferrer\" target=\"_blank\">{}</a> {}{}</li>",
            attack::url(t),
            esc(t),
            esc(attack::name(t).unwrap_or("")),
            if tactics.is_empty() {
                String::new()
            } else {
                format!(
                    " <span class=\"small muted\">({})</span>",
                    tactics.join(", ")
                )
            }
        );
    }
    if a.techniques.is_empty() {
        b.push_str("<li class=\"muted\">none mapped</li>");
    }
    b.push_str("</ul>");
    if let Some(remedy) = detail.rule.as_ref().and_then(|r| r.remedy.as_deref()) {
        let _ = write!(
            b,
            "<h3>Remedy</h3><p id=\"remedy\">{}</p>",
            esc(remedy).replace('\n', "<br>")
        );
    }
    b.push_str("</section>");
    // Triage.
    triage(&mut b, &s, a, &detail);
    // Entity view.
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"entity\"><h2>Entity</h2>{}</section>",
        entity_tree(a, evidence, around)
    );
    b.push_str("</div>");
    // Timeline of the principal around it.
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"timeline\"><h2>{}'s activity around it</h2>{}</section>",
        esc(&a.entity),
        activity_timeline(a, evidence, around, &detail)
    );
    // The principal's other findings around it, informational signals included.
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"signals\"><h2>Other findings about {} around it</h2>{}</section>",
        esc(&a.entity),
        signals_list(&detail.signals)
    );
    // Evidence.
    let _ = write!(
        b,
        "<section class=\"panel\" id=\"evidence\"><h2>Evidence ({} of {} events)</h2>{}</section>",
        evidence.len(),
        a.count,
        events_table(evidence, true)
    );
    // Who was told, and whether it arrived.
    if !state.notifier.is_empty() && s.can("GET", "/api/v1/notifications/deliveries") {
        let alert_id = a.id;
        let deliveries = blocking(&state, move |st| {
            st.deliveries(&cloudsentinel_store::DeliveryQuery {
                alert_id: Some(alert_id),
                limit: 50,
                ..Default::default()
            })
        })
        .await
        .map(|p| p.items)
        .unwrap_or_default();
        b.push_str("<section class=\"panel\" id=\"notified\"><h2>Notified</h2>");
        if deliveries.is_empty() {
            b.push_str("<p class=\"muted\">No sink took this alert (below their levels or outside their filters).</p>");
        } else {
            b.push_str("<table><thead><tr><th>Sink</th><th>Change</th><th>Status</th><th>Tries</th><th>Sent</th><th>Last error</th></tr></thead><tbody>");
            for d in &deliveries {
                let status = d.status.as_str();
                let _ = write!(
                    b,
                    "<tr><td><a href=\"/ui/notifications?sink={}\">{}</a></td><td>{}</td><td><span class=\"lvl {}\">{}</span></td><td>{}</td><td class=\"nowrap\">{}</td><td class=\"small\">{}</td></tr>",
                    urlenc(&d.sink),
                    esc(&d.sink),
                    esc(&d.change),
                    match status {
                        "sent" => "low",
                        "dead" => "critical",
                        _ => "medium",
                    },
                    status,
                    d.attempts,
                    d.sent.as_ref().map(time_cell).unwrap_or_else(|| "—".into()),
                    esc(d.last_error.as_deref().unwrap_or("")),
                );
            }
            b.push_str("</tbody></table>");
        }
        b.push_str("</section>");
    }
    page(
        &s,
        &format!("Alert #{}", a.id),
        Nav::Alerts,
        Some(&format!("alert:{}", a.id)),
        &b,
    )
}

/// Feedback, status, assignment, comments.
fn triage(b: &mut String, s: &Session, a: &AlertRecord, detail: &api::AlertDetail) {
    b.push_str("<section class=\"panel\" id=\"triage\"><h2>Triage</h2>");
    if s.can("POST", "/api/v1/alerts/{id}/feedback") {
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/alerts/{id}/feedback\" id=\"feedback\">{csrf}\
<label>Reason <input type=\"text\" name=\"reason\" id=\"reason\" maxlength=\"2000\" placeholder=\"why (kept for the feedback model)\"></label>\
<div class=\"row\"><button type=\"submit\" name=\"verdict\" value=\"true_positive\" id=\"mark-tp\">True positive</button>\
<button type=\"submit\" name=\"verdict\" value=\"false_positive\" id=\"mark-fp\">False positive</button>\
<button type=\"submit\" name=\"verdict\" value=\"benign\" id=\"mark-benign\">Benign</button></div></form>",
            id = a.id,
            csrf = csrf_field(s)
        );
    }
    if s.can("PATCH", "/api/v1/alerts/{id}") {
        let mut opts = String::new();
        for st in AlertStatus::ALL {
            let sel = if st == a.status { " selected" } else { "" };
            let _ = write!(opts, "<option value=\"{0}\"{sel}>{0}</option>", st.as_str());
        }
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/alerts/{id}\" class=\"row\" id=\"status-form\">{csrf}\
<label>Status<select name=\"status\" id=\"status\">{opts}</select></label>\
<label>Assignee<input type=\"text\" name=\"assignee\" id=\"assignee\" size=\"12\" value=\"{assignee}\"></label>\
<button type=\"submit\">Save</button></form>\
<form method=\"post\" action=\"/ui/alerts/{id}\" id=\"comment-form\">{csrf}\
<label>Comment<textarea name=\"comment\" id=\"comment\" maxlength=\"10000\" required></textarea></label>\
<button type=\"submit\">Add comment</button></form>",
            id = a.id,
            csrf = csrf_field(s),
            assignee = esc(a.assignee.as_deref().unwrap_or("")),
        );
    }
    if s.can("POST", "/api/v1/suppressions") {
        let _ = write!(
            b,
            "<details id=\"suppress\"><summary>Suppress this rule for this entity</summary>\
<form method=\"post\" action=\"/ui/alerts/{id}/suppress\">{csrf}\
<p class=\"small muted\">New matches of <code>{rule}</code> for <strong>{entity}</strong> raise no alert until it expires (events are still stored).</p>\
<label>For (hours, at most 2160)<input type=\"text\" name=\"hours\" value=\"24\" inputmode=\"numeric\" size=\"5\"></label>\
<label>Reason<input type=\"text\" name=\"reason\" required maxlength=\"2000\" placeholder=\"e.g. planned migration, change 4711\"></label>\
<button type=\"submit\">Suppress</button></form></details>",
            id = a.id,
            csrf = csrf_field(s),
            rule = esc(&a.rule_id),
            entity = esc(&a.entity),
        );
    }
    let (feedback, comments) = (&detail.feedback, &detail.comments);
    // Live: another analyst's verdict or comment shows up here (the forms above are left alone).
    b.push_str("<div id=\"history\" data-region>");
    if feedback.is_empty() && comments.is_empty() {
        b.push_str("<p class=\"muted small\">No verdicts or comments yet.</p>");
    } else {
        b.push_str("<h3>History</h3><ul>");
        for f in feedback {
            let _ = write!(
                b,
                "<li><strong>{}</strong> by {} <span class=\"muted small\">{}</span>{}</li>",
                f.verdict.as_str().replace('_', " "),
                esc(&f.author),
                when(&f.time),
                if f.reason.is_empty() {
                    String::new()
                } else {
                    format!(": {}", esc(&f.reason))
                }
            );
        }
        for c in comments {
            let _ = write!(
                b,
                "<li>{} <span class=\"muted small\">{}</span>: {}</li>",
                esc(&c.author),
                when(&c.time),
                esc(&c.text)
            );
        }
        b.push_str("</ul>");
    }
    b.push_str("</div></section>");
}

/// Resources an event's original record names: CloudTrail's `resources` and the names,
/// ARNs and ids in its request; GCP's `resourceName`; Azure's `resourceId`.
fn resources(raw: &Value) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(rs) = raw["resources"].as_array() {
        out.extend(
            rs.iter()
                .filter_map(|r| r["ARN"].as_str().map(str::to_string)),
        );
    }
    if let Some(req) = raw["requestParameters"].as_object() {
        for (k, v) in req {
            let k = k.to_ascii_lowercase();
            if (k.ends_with("name") || k.ends_with("arn") || k.ends_with("id"))
                && let Some(v) = v.as_str()
                && v.len() <= 200
            {
                out.push(v.to_string());
            }
        }
    }
    for p in [
        "/protoPayload/resourceName",
        "/resourceId",
        "/properties/targetResources/0/displayName",
    ] {
        if let Some(v) = raw.pointer(p).and_then(Value::as_str) {
            out.push(v.to_string());
        }
    }
    out.sort();
    out.dedup();
    out
}

/// principal → sessions / access keys → source addresses → operations and resources.
fn entity_tree(a: &AlertRecord, evidence: &[EventRow], around: &[EventRow]) -> String {
    type Leaf = BTreeMap<String, (u64, BTreeSet<String>)>;
    let mut tree: BTreeMap<String, BTreeMap<String, Leaf>> = BTreeMap::new();
    let evidence_ids: BTreeSet<&str> = evidence.iter().map(|e| e.id.as_str()).collect();
    for e in evidence.iter().chain(
        around
            .iter()
            .filter(|e| !evidence_ids.contains(e.id.as_str())),
    ) {
        let session = match (&e.actor_name, &e.access_key) {
            (Some(n), Some(k)) => format!("session {n} · key {k}"),
            (Some(n), None) => format!("session {n}"),
            (None, Some(k)) => format!("key {k}"),
            (None, None) => "no session or key recorded".to_string(),
        };
        let ip = e.source_ip.clone().unwrap_or_else(|| "no address".into());
        let leaf = tree
            .entry(session)
            .or_default()
            .entry(ip)
            .or_default()
            .entry(format!("{} {}", e.service, e.operation))
            .or_default();
        leaf.0 += 1;
        if let Some(raw) = &e.raw {
            leaf.1.extend(resources(raw));
        }
    }
    let mut out = format!(
        "<ul class=\"tree\"><li><span class=\"nodekind\">principal</span><strong>{}</strong><ul>",
        esc(&a.entity)
    );
    for (session, ips) in tree.iter().take(12) {
        let _ = write!(
            out,
            "<li><span class=\"nodekind\">credential</span>{}<ul>",
            esc(session)
        );
        for (ip, ops) in ips.iter().take(12) {
            let _ = write!(
                out,
                "<li><span class=\"nodekind\">from</span><a href=\"/ui/events?source_ip={}\">{}</a><ul>",
                urlenc(ip),
                esc(ip)
            );
            for (op, (n, res)) in ops.iter().take(20) {
                let _ = write!(
                    out,
                    "<li><span class=\"nodekind\">did</span>{} ×{n}",
                    esc(op)
                );
                if !res.is_empty() {
                    out.push_str("<ul>");
                    for r in res.iter().take(8) {
                        let _ = write!(
                            out,
                            "<li><span class=\"nodekind\">on</span><code>{}</code></li>",
                            esc(r)
                        );
                    }
                    out.push_str("</ul>");
                }
                out.push_str("</li>");
            }
            out.push_str("</ul></li>");
        }
        out.push_str("</ul></li>");
    }
    out.push_str("</ul></li></ul><p class=\"small muted\">From the evidence and this principal's events an hour either side; resources from the evidence's original records.</p>");
    out
}

/// The principal's other alerts and informational signals (change records, findings routine
/// for it) an hour either side of the alert, oldest first.
fn signals_list(signals: &[AlertRecord]) -> String {
    if signals.is_empty() {
        return "<p class=\"small\">None in the hour before or after.</p>".into();
    }
    let mut out = String::from("<ul class=\"signals\">");
    for s in signals {
        let _ = write!(
            out,
            "<li>{} {} <a href=\"/ui/alerts/{}\">{}</a> <span class=\"small\">{}</span></li>",
            when(&s.first_seen),
            level_badge(s.level),
            s.id,
            esc(&s.title),
            esc(&s.explanation)
        );
    }
    out.push_str("</ul>");
    out
}

/// The principal's events an hour either side of the alert, on a time axis, evidence marked.
fn activity_timeline(
    a: &AlertRecord,
    evidence: &[EventRow],
    around: &[EventRow],
    detail: &api::AlertDetail,
) -> String {
    let (from, to, total) = (detail.around_from, detail.around_to, detail.around.total);
    let span = (to - from).num_seconds().max(1) as f64;
    let x =
        |t: &DateTime<Utc>| ((*t - from).num_seconds() as f64 / span * 1000.0).clamp(0.0, 1000.0);
    let ids: BTreeSet<&str> = evidence.iter().map(|e| e.id.as_str()).collect();
    let mut svg = String::from(
        "<svg class=\"chart\" viewBox=\"0 0 1000 60\" preserveAspectRatio=\"none\" role=\"img\" aria-label=\"Events over time; evidence in red\">\
<line class=\"axis\" x1=\"0\" y1=\"30\" x2=\"1000\" y2=\"30\"/>",
    );
    let _ = write!(
        svg,
        "<rect class=\"ev\" x=\"{:.1}\" y=\"5\" width=\"{:.1}\" height=\"50\" opacity=\"0.25\"/>",
        x(&a.first_seen),
        (x(&a.last_seen) - x(&a.first_seen)).max(2.0)
    );
    for e in around.iter().chain(evidence.iter()) {
        let is_ev = ids.contains(e.id.as_str());
        let _ = write!(
            svg,
            "<rect class=\"{}\" x=\"{:.1}\" y=\"{}\" width=\"3\" height=\"{}\"><title>{} {} {}</title></rect>",
            if is_ev { "al" } else { "ev" },
            x(&e.time),
            if is_ev { 8 } else { 18 },
            if is_ev { 44 } else { 24 },
            when(&e.time),
            esc(&e.operation),
            if e.success { "" } else { "(failed)" }
        );
    }
    svg.push_str("</svg>");
    format!(
        "<div class=\"legend\"><span><span class=\"sw al\"></span>evidence</span><span><span class=\"sw ev\"></span>other events ({} in the window{})</span></div>{svg}<div class=\"axislabels\"><span>{}</span><span>{}</span></div>\
<details><summary>The events in the window</summary>{}</details>\
<p class=\"small\"><a href=\"/ui/events?principal={}&amp;since={}&amp;until={}\">Search these events</a></p>",
        total,
        if total as usize > around.len() {
            format!(", first {} drawn", around.len())
        } else {
            String::new()
        },
        when(&from),
        when(&to),
        events_table(around, false),
        urlenc(&a.entity),
        urlenc(&from.to_rfc3339()),
        urlenc(&to.to_rfc3339()),
    )
}

/// Largest original record embedded in a page; a larger one is fetched when opened.
const RAW_INLINE_MAX: usize = 64 * 1024;

/// A table of events; `raw_inline` shows each original record (already loaded) in a
/// disclosure, otherwise it is fetched on demand. Fields are cut at
/// [`SHOWN_FIELD_CHARS`]; the original record has them whole.
pub fn events_table(events: &[EventRow], raw_inline: bool) -> String {
    if events.is_empty() {
        return "<p class=\"empty\">No events.</p>".into();
    }
    let mut out = String::from(
        "<table class=\"events\"><colgroup><col class=\"c-time\"><col class=\"c-op\"><col class=\"c-who\"><col class=\"c-src\"><col class=\"c-out\"></colgroup><thead><tr><th scope=\"col\">Time</th><th scope=\"col\">Operation</th><th scope=\"col\">Principal</th>\
<th scope=\"col\">Source</th><th scope=\"col\">Outcome</th></tr></thead><tbody>",
    );
    for e in events {
        // A record too big to embed is fetched on demand like the others.
        let inline = raw_inline
            .then_some(e.raw.as_ref())
            .flatten()
            .map(|r| serde_json::to_string_pretty(r).unwrap_or_default())
            .filter(|text| text.len() <= RAW_INLINE_MAX);
        let raw = if let Some(text) = inline {
            format!(
                "<details class=\"raw\"><summary>original record</summary><pre>{}</pre></details>",
                esc(&text)
            )
        } else if raw_inline && e.raw.is_none() {
            String::new()
        } else {
            format!(
                "<details class=\"raw\" data-raw=\"/ui/events/raw?id={}&amp;time={}\"><summary>original record</summary><pre></pre></details>",
                urlenc(&e.id),
                urlenc(&e.time.to_rfc3339())
            )
        };
        let mut shown = e.without_raw();
        shown.clip_fields(SHOWN_FIELD_CHARS);
        let e = &shown;
        let _ = write!(
            out,
            "<tr><td class=\"nowrap\">{}</td><td><strong>{}</strong> <span class=\"small muted\">{}</span></td>\
<td>{}{}</td><td>{}<span class=\"small muted ua\" title=\"{ua}\">{ua}</span></td><td>{}</td></tr><tr class=\"rawrow\"><td colspan=\"5\">{raw}</td></tr>",
            when(&e.time),
            esc(&e.operation),
            esc(&e.service),
            esc(&e.principal),
            e.account
                .as_deref()
                .map(|x| format!("<br><span class=\"small muted\">{}</span>", esc(x)))
                .unwrap_or_default(),
            esc(e.source_ip.as_deref().unwrap_or("")),
            if e.success {
                "success".to_string()
            } else {
                format!(
                    "<span class=\"st open\">failed</span> {}",
                    esc(e.error_code.as_deref().unwrap_or(""))
                )
            },
            ua = esc(e.user_agent.as_deref().unwrap_or("")),
        );
    }
    out.push_str("</tbody></table>");
    out
}

pub async fn alert_update(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "PATCH", "/api/v1/alerts/{id}") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut patch = serde_json::Map::new();
    if let Some(st) = field(&fields, "status") {
        patch.insert("status".into(), json!(st));
    }
    if let Some(a) = field(&fields, "assignee") {
        let a = a.trim();
        patch.insert(
            "assignee".into(),
            if a.is_empty() { Value::Null } else { json!(a) },
        );
    }
    if let Some(c) = field(&fields, "comment") {
        patch.insert("comment".into(), json!(c));
    }
    let back = format!("/ui/alerts/{id}");
    let result = api::update_alert(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(Value::Object(patch).to_string()),
    )
    .await;
    outcome(&back, result, |_| "Saved.".to_string())
}

pub async fn alert_feedback(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "POST", "/api/v1/alerts/{id}/feedback") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let verdict = field(&fields, "verdict").unwrap_or("");
    let body = json!({"verdict": verdict, "reason": field(&fields, "reason").unwrap_or("")});
    let back = format!("/ui/alerts/{id}");
    let result = api::alert_feedback(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(body.to_string()),
    )
    .await;
    let closed = if verdict == "true_positive" {
        ""
    } else {
        "; the alert is closed"
    };
    outcome(&back, result, |_| {
        format!("Marked {}{closed}.", verdict.replace('_', " "))
    })
}

// ---- incidents ---------------------------------------------------------------------------------------

pub async fn incidents(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Query(q): Q,
) -> Response {
    let mut params: BTreeMap<String, String> = q
        .iter()
        .filter(|(k, v)| !v.is_empty() && ["status", "offset"].contains(&k.as_str()))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    params.insert("limit".into(), "50".into());
    let shown = q.get("status").cloned().unwrap_or_default();
    let list = match api::list_incidents(State(state), Query(params)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let items: Vec<cloudsentinel_alert::IncidentRecord> =
        serde_json::from_value(list["items"].clone()).unwrap_or_default();
    let total = list["total"].as_u64().unwrap_or(0);
    let offset = list["offset"].as_u64().unwrap_or(0);
    let mut b = String::from(
        "<h1>Incidents</h1><form class=\"panel filters\" method=\"get\" action=\"/ui/incidents\"><label>Status<select name=\"status\">",
    );
    for (v, label) in [
        ("", "any"),
        ("open", "open"),
        ("acknowledged", "acknowledged"),
        ("investigating", "investigating"),
        ("resolved", "resolved"),
        ("closed", "closed"),
    ] {
        let sel = if shown == v { " selected" } else { "" };
        let _ = write!(b, "<option value=\"{v}\"{sel}>{label}</option>");
    }
    b.push_str("</select></label><button type=\"submit\">Filter</button></form><div id=\"incidents\" data-region>");
    if items.is_empty() {
        b.push_str("<p class=\"empty\">No incidents.</p>");
    } else {
        b.push_str("<table><thead><tr><th>Level</th><th>Incident</th><th>Entity</th><th class=\"num\">Alerts</th><th>Tactics</th><th>Status</th><th>Span</th></tr></thead><tbody>");
        for i in &items {
            let tactics: Vec<&str> = i
                .tactics
                .iter()
                .map(|t| attack::tactic_name(t).unwrap_or(t.as_str()))
                .collect();
            let _ = write!(
                b,
                "<tr><td>{}</td><td><a href=\"/ui/incidents/{id}\" data-row-link>{}</a> <span class=\"small muted\">#{id}</span></td><td>{}{}</td>\
<td class=\"num\">{}</td><td class=\"small\">{}</td><td>{}</td><td class=\"small\">{} → {}</td></tr>",
                level_badge(i.severity.unwrap_or(i.level)),
                esc(&i.title),
                named(&i.entity, &list["names"]),
                i.account
                    .as_deref()
                    .map(|x| format!("<br><span class=\"small muted\">{}</span>", esc(x)))
                    .unwrap_or_default(),
                i.alert_count,
                esc(&tactics.join(", ")),
                status_badge(i.status),
                when(&i.first_seen),
                age(&i.last_seen) + " ago",
                id = i.id,
            );
        }
        b.push_str("</tbody></table>");
    }
    let base = if shown.is_empty() {
        String::new()
    } else {
        format!("status={}", urlenc(&shown))
    };
    b.push_str(&pager("/ui/incidents", &base, total, offset, 50));
    b.push_str("</div>");
    page(&s, "Incidents", Nav::Incidents, Some("incidents"), &b)
}

/// An entity with the name its events gave it when it is an object id ("svc@corp (33361d06-...)"),
/// escaped.
fn named(entity: &str, names: &serde_json::Value) -> String {
    match names[entity].as_str() {
        Some(name) => format!(
            "{} <span class=\"small muted\">({})</span>",
            esc(name),
            esc(entity)
        ),
        None => esc(entity),
    }
}

pub async fn incident(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
) -> Response {
    let v = match api::get_incident(State(state), Path(id)).await {
        Ok(axum::Json(v)) => v,
        Err(e) => return fail(&s, e),
    };
    let i: cloudsentinel_alert::IncidentRecord = match serde_json::from_value(v["incident"].clone())
    {
        Ok(i) => i,
        Err(e) => return fail(&s, ApiError::Internal(e.into())),
    };
    let alerts: Vec<AlertRecord> = serde_json::from_value(v["alerts"].clone()).unwrap_or_default();
    let mut b = String::new();
    let _ = write!(
        b,
        "<p class=\"small\"><a href=\"/ui/incidents\">← Incidents</a></p><div class=\"row\">{}<h1>{}</h1></div>\
<p class=\"row\">{} <span class=\"muted\">#{}</span> <span>{} alerts about <strong>{}</strong>{} from {} to {}</span></p>",
        level_badge(i.severity.unwrap_or(i.level)),
        esc(&i.title),
        status_badge(i.status),
        i.id,
        i.alert_count,
        named(&i.entity, &v["names"]),
        i.account
            .as_deref()
            .map(|x| format!(" in {}", esc(x)))
            .unwrap_or_default(),
        when(&i.first_seen),
        when(&i.last_seen),
    );
    if let Some(summary) = v["narrative"]["summary"].as_str() {
        let _ = write!(
            b,
            "<section class=\"panel\" id=\"narrative\"><h2>What happened</h2><p>{}</p><ol class=\"steps\">",
            esc(summary)
        );
        for step in v["narrative"]["steps"].as_array().into_iter().flatten() {
            let _ = write!(b, "<li>{}</li>", esc(step.as_str().unwrap_or_default()));
        }
        b.push_str("</ol>");
        for note in v["narrative"]["notes"].as_array().into_iter().flatten() {
            let _ = write!(
                b,
                "<p class=\"small\">{}</p>",
                esc(note.as_str().unwrap_or_default())
            );
        }
        b.push_str("</section>");
    }
    // Who works it, how bad it is, why it was closed, and the analysts' notes.
    let _ = write!(
        b,
        "<p class=\"row small\"><span>Assignee: <strong>{}</strong></span><span>Severity: {}</span>{}</p>",
        i.assignee
            .as_deref()
            .map(esc)
            .unwrap_or_else(|| "nobody".into()),
        i.severity
            .map(|l| format!(
                "{} <span class=\"muted\">(set by an analyst; its alerts say {})</span>",
                level_badge(l),
                i.level.as_str()
            ))
            .unwrap_or_else(|| format!(
                "{} <span class=\"muted\">(from its alerts)</span>",
                level_badge(i.level)
            )),
        i.close_reason
            .as_deref()
            .map(|r| format!("<span>Close reason: {}</span>", esc(r)))
            .unwrap_or_default(),
    );
    if s.can("PATCH", "/api/v1/incidents/{id}") {
        let mut opts = String::new();
        for st in AlertStatus::ALL {
            let sel = if st == i.status { " selected" } else { "" };
            let _ = write!(opts, "<option value=\"{0}\"{sel}>{0}</option>", st.as_str());
        }
        let mut sev = String::from("<option value=\"\">from its alerts</option>");
        for l in ["low", "medium", "high", "critical"] {
            let sel = if i.severity.map(|x| x.as_str()) == Some(l) {
                " selected"
            } else {
                ""
            };
            let _ = write!(sev, "<option value=\"{l}\"{sel}>{l}</option>");
        }
        let _ = write!(
            b,
            "<form method=\"post\" action=\"/ui/incidents/{}\" class=\"panel\">{}<div class=\"row\">\
<label>Status<select name=\"status\">{opts}</select></label>\
<label>Assignee<input name=\"assignee\" maxlength=\"64\" value=\"{}\" placeholder=\"nobody\"></label>\
<label>Severity<select name=\"severity\">{sev}</select></label>\
<label>Close reason<input name=\"close_reason\" maxlength=\"2000\" value=\"{}\" placeholder=\"needed to resolve or close\"></label></div>\
<label>Comment<textarea name=\"comment\" maxlength=\"10000\" placeholder=\"a note for the next analyst (optional)\"></textarea></label>\
<button type=\"submit\">Save</button></form>",
            i.id,
            csrf_field(&s),
            esc(i.assignee.as_deref().unwrap_or_default()),
            esc(i.close_reason.as_deref().unwrap_or_default()),
        );
    }
    let comments = v["comments"].as_array().cloned().unwrap_or_default();
    if !comments.is_empty() {
        b.push_str("<section class=\"panel\" id=\"comments\"><h2>Notes</h2><ul>");
        for c in &comments {
            let _ = write!(
                b,
                "<li><strong>{}</strong> <span class=\"small muted\">{}</span><br>{}</li>",
                esc(c["author"].as_str().unwrap_or_default()),
                esc(c["time"].as_str().unwrap_or_default()),
                esc(c["text"].as_str().unwrap_or_default())
            );
        }
        b.push_str("</ul></section>");
    }
    // Tactic lanes.
    let span = (i.last_seen - i.first_seen).num_seconds().max(1) as f64;
    let x = |t: &DateTime<Utc>| 10.0 + (*t - i.first_seen).num_seconds() as f64 / span * 980.0;
    b.push_str("<section class=\"panel\" id=\"story\"><h2>The story across ATT&amp;CK tactics</h2><div class=\"lanes\">");
    let mut lanes: Vec<(&str, &str)> = attack::TACTICS.to_vec();
    lanes.push(("", "No tactic"));
    for (tid, tname) in lanes {
        let hits: Vec<&AlertRecord> = alerts
            .iter()
            .filter(|a| {
                if tid.is_empty() {
                    a.tactics.is_empty()
                } else {
                    a.tactics.iter().any(|t| t == tid)
                }
            })
            .collect();
        if hits.is_empty() {
            continue;
        }
        let mut svg = String::from(
            "<svg viewBox=\"0 0 1000 20\" preserveAspectRatio=\"none\" aria-hidden=\"true\"><line x1=\"0\" y1=\"10\" x2=\"1000\" y2=\"10\"/>",
        );
        for a in hits {
            let _ = write!(
                svg,
                "<rect x=\"{:.1}\" y=\"3\" width=\"6\" height=\"14\" rx=\"2\"><title>#{} {} at {}</title></rect>",
                x(&a.first_seen) - 3.0,
                a.id,
                esc(&a.title),
                when(&a.first_seen)
            );
        }
        svg.push_str("</svg>");
        let _ = write!(
            b,
            "<div class=\"lane\">{tname}</div><div class=\"lane\">{svg}</div>"
        );
    }
    let _ = write!(
        b,
        "</div><div class=\"axislabels\"><span>{}</span><span>{}</span></div></section>",
        when(&i.first_seen),
        when(&i.last_seen)
    );
    b.push_str("<section class=\"panel\"><h2>Alerts in order</h2><ol class=\"story\">");
    for a in &alerts {
        let tactics: Vec<&str> = a
            .tactics
            .iter()
            .map(|t| attack::tactic_name(t).unwrap_or(t.as_str()))
            .collect();
        let _ = write!(
            b,
            "<li class=\"{}\"><span class=\"small muted\">{}</span> {} <a href=\"/ui/alerts/{}\">{}</a> {}<br><span class=\"small\">{}</span> {}</li>",
            a.level.as_str(),
            when(&a.first_seen),
            level_badge(a.level),
            a.id,
            esc(&a.title),
            status_badge(a.status),
            esc(&tactics.join(" · ")),
            technique_tags(&a.techniques)
        );
    }
    b.push_str("</ol></section>");
    page(&s, &format!("Incident #{}", i.id), Nav::Incidents, None, &b)
}

pub async fn incident_update(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "PATCH", "/api/v1/incidents/{id}") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let mut patch = serde_json::Map::new();
    if let Some(st) = field(&fields, "status") {
        patch.insert("status".into(), json!(st));
    }
    for name in ["assignee", "severity", "close_reason"] {
        if let Some(v) = field(&fields, name) {
            let v = v.trim();
            patch.insert(
                name.into(),
                if v.is_empty() { Value::Null } else { json!(v) },
            );
        }
    }
    if let Some(c) = field(&fields, "comment").filter(|c| !c.trim().is_empty()) {
        patch.insert("comment".into(), json!(c));
    }
    let body = Value::Object(patch);
    let back = format!("/ui/incidents/{id}");
    let result = api::update_incident(
        State(state),
        Extension(s.caller.clone()),
        Path(id),
        Bytes::from(body.to_string()),
    )
    .await;
    outcome(&back, result, |_| "Saved.".to_string())
}

pub async fn alert_suppress(
    State(state): State<AppState>,
    Extension(s): Extension<Session>,
    Path(id): Path<i64>,
    body: Bytes,
) -> Response {
    let fields = match action_form(&s, &body, "POST", "/api/v1/suppressions") {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = format!("/ui/alerts/{id}");
    let alert = match blocking(&state, move |st| st.alert(id)).await {
        Ok(Some(a)) => a,
        Ok(None) => return fail(&s, ApiError::NotFound(format!("alert {id}"))),
        Err(e) => return fail(&s, e),
    };
    let Some(hours) = field(&fields, "hours")
        .and_then(|h| h.trim().parse::<u32>().ok())
        .filter(|h| (1..=2160).contains(h))
    else {
        return done(&back, "error: hours: a whole number from 1 to 2160");
    };
    let body = json!({"rule_id": alert.rule_id, "entity": alert.entity,
                      "reason": field(&fields, "reason").unwrap_or(""), "duration_hours": hours});
    let result = api::create_suppression(
        State(state),
        Extension(s.caller.clone()),
        Bytes::from(body.to_string()),
    )
    .await;
    outcome(&back, result, |_| {
        format!("Suppressed for {hours} hours: see Rules for active suppressions.")
    })
}
