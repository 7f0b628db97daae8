//! The anomaly model: an isolation forest over the behaviour features, a threshold chosen from
//! a target alert rate, and the words that explain a score.

use std::sync::Arc;

use chrono::{DateTime, Timelike, Utc};
use cloudsentinel_core::{Level, Signal, SignalKind};
use serde::{Deserialize, Serialize};

use crate::behaviour::{
    self, Baselines, DIMS, FEATURES, Features, Observation, SCHEMA_VERSION, Scored, f,
};
use crate::forest::{Chain, Forest, ForestParams};
use crate::metrics::quantile;

/// The rule id anomaly signals and alerts carry.
pub const RULE_ID: &str = "cloudsentinel.anomaly.behaviour";

/// A trained isolation forest and its threshold.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnomalyModel {
    pub schema: u32,
    pub forest: Forest,
    /// Scores at or above this raise a signal.
    pub threshold: f64,
    /// The share of training events the threshold lets through.
    pub target_rate: f64,
    pub trained_on: usize,
}

/// How to train.
#[derive(Debug, Clone)]
pub struct TrainParams {
    /// Share of (benign) events that may score above the threshold: 0.0005 is 5 in 10,000.
    pub target_rate: f64,
    pub trees: usize,
    pub sample_size: usize,
    pub seed: u64,
}

impl Default for TrainParams {
    fn default() -> TrainParams {
        TrainParams {
            target_rate: 0.0005,
            trees: 100,
            sample_size: 256,
            seed: 7,
        }
    }
}

/// Most vectors kept for training (a uniform sample of the rest).
pub const MAX_TRAINING_VECTORS: usize = 200_000;

impl AnomalyModel {
    /// Trains on the feature vectors of a time window of (mostly benign) events.
    pub fn train(vectors: &[[f32; DIMS]], p: &TrainParams) -> Result<AnomalyModel, String> {
        if vectors.len() < 100 {
            return Err(format!(
                "{} scored events are too few to train on: at least 100 are needed (principals are scored only after their learning period)",
                vectors.len()
            ));
        }
        // Benign history rarely varies every feature: a flag that is always 0 in training is
        // never split on, so an event that sets it would look ordinary. A sprinkle of points
        // drawn uniformly over each feature's domain (2%, at least 50) makes every feature
        // splittable while the dense benign mass still decides the paths. The threshold is
        // set on the real vectors only.
        let mut rng = cloudsentinel_core::rng::Rng::new(p.seed ^ 0xa5a5);
        let sprinkle: Vec<[f32; DIMS]> = (0..(vectors.len() / 50).max(50))
            .map(|_| std::array::from_fn(|i| (rng.unit() as f32) * crate::behaviour::DOMAIN[i]))
            .collect();
        let data = Chain(vectors, &sprinkle[..]);
        let forest = Forest::fit(
            &data,
            &ForestParams {
                trees: p.trees,
                sample_size: p.sample_size,
                seed: p.seed,
            },
        )
        .map_err(|e| e.to_string())?;
        let mut scores: Vec<f64> = vectors.iter().map(|v| forest.score(v)).collect();
        let threshold = quantile(&mut scores, 1.0 - p.target_rate).unwrap_or(1.0);
        Ok(AnomalyModel {
            schema: SCHEMA_VERSION,
            forest,
            // Never below 0.5: an isolation score under 0.5 is not unusual whatever the rate.
            threshold: threshold.max(0.5) + 1e-9,
            target_rate: p.target_rate,
            trained_on: vectors.len(),
        })
    }

    pub fn score(&self, v: &[f32; DIMS]) -> f64 {
        self.forest.score(v)
    }

    /// How much each feature adds to the score: the drop when that feature alone is set back
    /// to its usual value (0), largest first, only the features that raise it.
    pub fn attribution(&self, v: &[f32; DIMS]) -> Vec<(usize, f64)> {
        let base = self.score(v);
        let mut out = Vec::new();
        for i in 0..DIMS {
            if v[i] == 0.0 {
                continue;
            }
            let mut w = *v;
            w[i] = 0.0;
            let drop = base - self.score(&w);
            if drop > 0.0 {
                out.push((i, drop));
            }
        }
        out.sort_by(|a, b| b.1.total_cmp(&a.1));
        out
    }
}

/// The baselines and, once one is active, the anomaly model: what the pipeline and `hunt`
/// run on every event in order.
pub struct Behaviour {
    pub baselines: Baselines,
    pub model: Option<Arc<AnomalyModel>>,
    pub detectors: crate::detectors::Detectors,
}

/// What one event gave.
pub struct Observed {
    pub features: Option<Features>,
    pub score: Option<f64>,
    pub signal: Option<Signal>,
    /// The explained detectors' signals ([`crate::detectors`]).
    pub detected: Vec<Signal>,
}

impl Behaviour {
    pub fn new(baselines: Baselines, model: Option<Arc<AnomalyModel>>) -> Behaviour {
        Behaviour {
            baselines,
            model,
            detectors: crate::detectors::Detectors::new(),
        }
    }

    pub fn observe(&mut self, o: &Observation<'_>) -> Observed {
        let mut detected = self.detectors.before(&self.baselines, o, true);
        let scored = self.baselines.observe(o);
        self.detectors.learned(&self.baselines, o);
        let Scored::Features(x) = scored else {
            return Observed {
                features: None,
                score: None,
                signal: None,
                detected,
            };
        };
        detected.extend(self.detectors.after(o, &x));
        let Some(model) = &self.model else {
            return Observed {
                features: Some(x),
                score: None,
                signal: None,
                detected,
            };
        };
        let score = model.score(&x.values);
        let signal = (score >= model.threshold).then(|| {
            let mut s = signal(o, &x, score, model);
            if !self.detectors.corroborates(o, &x) {
                informational(&mut s);
            }
            s
        });
        Observed {
            features: Some(x),
            score: Some(score),
            signal,
            detected,
        }
    }
}

/// An anomaly signal: ATT&CK Valid Accounts: Cloud Accounts, plus what the operation implies.
pub fn signal(o: &Observation<'_>, x: &Features, score: f64, model: &AnomalyModel) -> Signal {
    let (_, category) = behaviour::sensitivity(o.service, o.operation);
    let mut techniques = vec!["T1078.004".to_string()];
    let mut tactics = vec![
        "initial-access".to_string(),
        "persistence".to_string(),
        "privilege-escalation".to_string(),
        "defense-evasion".to_string(),
    ];
    match category {
        Some("identity") => techniques.push("T1098".into()),
        Some("logging") => techniques.push("T1562.008".into()),
        Some("sharing") => {
            techniques.push("T1537".into());
            tactics.push("exfiltration".into());
        }
        Some("secrets") => {
            techniques.push("T1555.006".into());
            tactics.push("credential-access".into());
        }
        Some("encryption keys") => {
            techniques.push("T1485".into());
            tactics.push("impact".into());
        }
        _ => {}
    }
    if x.values[f::NEW_OPERATION] > 0.0 && x.values[f::WRITE] == 0.0 {
        techniques.push("T1580".into());
        tactics.push("discovery".into());
    }
    let level = if x.values[f::SENSITIVITY] >= 0.7 && x.values[f::WRITE] > 0.0 {
        Level::High
    } else {
        Level::Medium
    };
    let attribution = model.attribution(&x.values);
    let title = title(o, x, &attribution);
    let why = explain(o, x, &attribution);
    Signal {
        kind: SignalKind::Anomaly,
        rule_id: RULE_ID.to_string(),
        title,
        level,
        techniques,
        tactics,
        entity: o.entity.to_string(),
        account: o.account.map(str::to_string),
        first_seen: o.time,
        last_seen: o.time,
        event_ids: vec![o.id.to_string()],
        explanation: format!(
            "anomaly score {score:.3} (threshold {:.3}): {why}",
            model.threshold
        ),
    }
}

/// Who a title names: the actor's name (for an AWS role session `role/session`), else the last
/// part of the principal's ARN or id.
pub fn short_name(o: &Observation<'_>) -> String {
    if let Some(n) = o.actor_name.filter(|n| !n.is_empty()) {
        return n.to_string();
    }
    o.entity
        .rsplit(['/', ':'])
        .find(|p| !p.is_empty())
        .unwrap_or(o.entity)
        .to_string()
}

/// A service as titles write it: `iam.amazonaws.com` is `iam`, `compute.googleapis.com` is
/// `compute`.
pub fn short_service(service: &str) -> &str {
    service
        .strip_suffix(".amazonaws.com")
        .or_else(|| service.strip_suffix(".googleapis.com"))
        .unwrap_or(service)
}

/// Whether the call is a sign-in (a console or directory sign-in), for titles.
fn is_sign_in(o: &Observation<'_>) -> bool {
    matches!(o.operation, "ConsoleLogin" | "Sign-in activity" | "SignIn")
        || o.service == "signin.amazonaws.com"
}

/// A title that says what was unusual, from the feature that weighed most ("First sign-in from
/// RO for carol", "First use of iam:CreateUser by ci-deploy"); an address's features count as
/// one, named by the widest thing new about it (country, then AS, then address).
pub fn title(o: &Observation<'_>, x: &Features, attribution: &[(usize, f64)]) -> String {
    let who = short_name(o);
    let v = &x.values;
    let d = &x.detail;
    let cc = |c: [u8; 2]| String::from_utf8_lossy(&c).into_owned();
    let what = if is_sign_in(o) { "sign-in" } else { "activity" };
    let mut order: Vec<usize> = attribution.iter().map(|(i, _)| *i).collect();
    for (i, value) in v.iter().enumerate() {
        if *value > 0.0 && !order.contains(&i) {
            order.push(i);
        }
    }
    for i in order {
        let t = match i {
            f::NEW_COUNTRY | f::NEW_ASN | f::NEW_NETWORK | f::NEW_IP => {
                if v[f::NEW_COUNTRY] > 0.0
                    && let Some(c) = d.country
                {
                    format!("First {what} from {} for {who}", cc(c))
                } else if v[f::NEW_ASN] > 0.0
                    && let Some(a) = d.asn
                {
                    match d.country {
                        Some(c) => format!("First {what} from AS{a} ({}) for {who}", cc(c)),
                        None => format!("First {what} from AS{a} for {who}"),
                    }
                } else if let Some(ip) = o.source_ip {
                    format!("First {what} from {ip} for {who}")
                } else {
                    continue;
                }
            }
            f::NEW_OPERATION => format!(
                "First use of {}:{} by {who}",
                short_service(o.service),
                o.operation
            ),
            f::NEW_SERVICE => format!("First use of {} by {who}", short_service(o.service)),
            f::NEW_REGION => match o.region {
                Some(r) => format!("First {what} in {r} for {who}"),
                None => continue,
            },
            f::NEW_USER_AGENT => match o.user_agent {
                Some(ua) => format!(
                    "First use of client {} by {who}",
                    behaviour::agent_family(ua)
                ),
                None => continue,
            },
            f::GEO_VELOCITY => match (d.prev_country, d.country) {
                (Some(a), Some(b)) => format!(
                    "Impossible travel {} to {} for {who} ({:.0} km in {:.1} h)",
                    cc(a),
                    cc(b),
                    d.km,
                    d.hours_apart
                ),
                _ => continue,
            },
            f::HOUR_RARITY if v[i] >= 0.8 => format!(
                "{who} active at {} UTC, outside its usual hours",
                hhmm(o.time)
            ),
            f::RATE_DEVIATION if v[i] >= 0.7 => format!(
                "{} calls in an hour by {who} against a usual {:.0}",
                d.rate_count, d.rate_mean
            ),
            f::ERROR_BURST => format!("{} failed calls in 10 minutes by {who}", d.errors),
            f::OPERATION_RARITY if v[i] >= 0.5 => {
                format!("Rare call {} by {who}", o.operation)
            }
            _ => continue,
        };
        return t;
    }
    match behaviour::sensitivity(o.service, o.operation).1 {
        Some(c) if v[f::WRITE] > 0.0 => format!("Unusual {c} change by {who}: {}", o.operation),
        _ => format!("{} by {who}, unlike its baseline", o.operation),
    }
}

/// Keeps a forest finding that nothing corroborates as an informational signal.
pub fn informational(s: &mut Signal) {
    s.level = Level::Informational;
    s.explanation.push_str(
        "; informational: no network new to the principal and to the organisation, no sensitive change, no impossible travel",
    );
}

/// The features that drove a score, in words, strongest first.
pub fn explain(o: &Observation<'_>, x: &Features, attribution: &[(usize, f64)]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut order: Vec<usize> = attribution.iter().map(|(i, _)| *i).collect();
    // Features the model did not single out still belong in the story when they are set.
    for i in 0..DIMS {
        if x.values[i] > 0.0 && !order.contains(&i) {
            order.push(i);
        }
    }
    let d = &x.detail;
    let cc = |c: [u8; 2]| String::from_utf8_lossy(&c).into_owned();
    let new_ip = x.values[f::NEW_IP] > 0.0;
    let v6 = o.source_ip.is_some_and(|ip| ip.contains(':'));
    for i in order {
        let v = x.values[i];
        let text = match i {
            f::NEW_OPERATION => format!(
                "first call of {}:{} by this principal",
                o.service, o.operation
            ),
            f::NEW_SERVICE => format!("first use of {} by this principal", o.service),
            f::NEW_IP => {
                // One phrase for the address and the new networks around it.
                let mut around = Vec::new();
                if x.values[f::NEW_NETWORK] > 0.0 {
                    around.push(if v6 { "/48" } else { "/24" });
                }
                if x.values[f::NEW_ASN] > 0.0 && d.asn.is_none() {
                    around.push(if v6 { "/32" } else { "/16" });
                }
                match around.as_slice() {
                    [] => format!("first time from {}", o.source_ip.unwrap_or("?")),
                    nets => format!(
                        "first time from {} (a new {} too)",
                        o.source_ip.unwrap_or("?"),
                        nets.join(" and ")
                    ),
                }
            }
            f::NEW_NETWORK if new_ip => continue,
            f::NEW_ASN if new_ip && d.asn.is_none() => continue,
            f::NEW_NETWORK => match o.source_ip.and_then(|ip| ip.rsplit_once('.')) {
                Some((net, _)) if !o.source_ip.unwrap_or("").contains(':') => {
                    format!("first time from network {net}.0/24")
                }
                _ => "first time from this network".to_string(),
            },
            f::NEW_ASN => match (d.asn, d.country) {
                (Some(a), Some(c)) => format!("first time from AS{a} in {}", cc(c)),
                (Some(a), None) => format!("first time from AS{a}"),
                _ => match o.source_ip.and_then(|ip| {
                    ip.split('.')
                        .nth(1)
                        .map(|b| (ip.split('.').next().unwrap_or(""), b))
                }) {
                    Some((a, b)) if !o.source_ip.unwrap_or("").contains(':') => {
                        format!("first time from {a}.{b}.0.0/16")
                    }
                    _ => "first time from this address block".to_string(),
                },
            },
            f::NEW_COUNTRY => format!("first time from {}", d.country.map(cc).unwrap_or_default()),
            f::NEW_REGION => format!("first activity in region {}", o.region.unwrap_or("?")),
            f::NEW_USER_AGENT => format!(
                "first time with user agent {}",
                o.user_agent
                    .map(behaviour::agent_family)
                    .unwrap_or_default()
            ),
            f::OPERATION_RARITY if v >= 0.5 => format!(
                "{} is rare across all principals (about 1 call in {:.0})",
                o.operation,
                1.0 / d.op_share.max(1e-9)
            ),
            f::SENSITIVITY => match behaviour::sensitivity(o.service, o.operation).1 {
                Some(c) => format!("{c} operation"),
                None => continue,
            },
            f::FAILED => "the call failed".to_string(),
            f::ERROR_BURST => format!("{} failed calls in 10 minutes", d.errors),
            f::RATE_DEVIATION if v >= 0.7 => format!(
                "{} calls this hour against a usual {:.0}",
                d.rate_count, d.rate_mean
            ),
            f::HOUR_RARITY if v >= 0.8 => format!(
                "{} UTC, outside {:.0}% of its activity",
                hhmm(o.time),
                v * 100.0
            ),
            f::GEO_VELOCITY => format!(
                "{:.0} km from its previous location ({} to {}) in {:.1} h",
                d.km,
                d.prev_country.map(cc).unwrap_or_default(),
                d.country.map(cc).unwrap_or_default(),
                d.hours_apart
            ),
            _ => continue,
        };
        parts.push(text);
    }
    if parts.is_empty() {
        "an unusual combination of otherwise ordinary features".to_string()
    } else {
        parts.join("; ")
    }
}

fn hhmm(t: DateTime<Utc>) -> String {
    format!("{:02}:{:02}", t.hour(), t.minute())
}

/// The behaviour feature vector described: its version and each feature, in order.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct FeatureSchema {
    /// Feature schema version (models record it).
    pub version: u32,
    pub features: &'static [behaviour::FeatureDef],
}

/// Names of the features, for documents and the API.
pub fn feature_schema() -> FeatureSchema {
    FeatureSchema {
        version: SCHEMA_VERSION,
        features: FEATURES,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::behaviour::Detail;
    use chrono::TimeZone;

    fn obs(ip: &str) -> Observation<'_> {
        Observation {
            id: "e1",
            time: Utc.with_ymd_and_hms(2026, 3, 2, 3, 12, 0).unwrap(),
            provider: "aws",
            account: Some("111122223333"),
            region: Some("eu-west-1"),
            entity: "arn:aws:iam::111122223333:user/alice",
            actor_name: Some("alice"),
            access_key: None,
            source_ip: Some(ip),
            user_agent: Some("python-requests/2.31"),
            service: "iam",
            operation: "CreateAccessKey",
            read_only: Some(false),
            success: true,
        }
    }

    fn features(set: &[usize], detail: Detail) -> Features {
        let mut values = [0f32; DIMS];
        for &i in set {
            values[i] = 1.0;
        }
        Features { values, detail }
    }

    #[test]
    fn a_new_address_and_its_new_networks_are_one_phrase() {
        let o = obs("45.77.175.196");
        let x = features(
            &[f::NEW_IP, f::NEW_NETWORK, f::NEW_ASN, f::NEW_OPERATION],
            Detail::default(),
        );
        let why = explain(&o, &x, &[]);
        assert!(
            why.contains("first time from 45.77.175.196 (a new /24 and /16 too)"),
            "{why}"
        );
        assert_eq!(why.matches("first time from").count(), 1, "{why}");
        assert!(why.contains("first call of iam:CreateAccessKey"), "{why}");
        // A known AS is worth its own words.
        let x = features(
            &[f::NEW_IP, f::NEW_ASN],
            Detail {
                asn: Some(20473),
                country: Some(*b"NL"),
                ..Detail::default()
            },
        );
        let why = explain(&o, &x, &[]);
        assert!(why.contains("first time from 45.77.175.196;"), "{why}");
        assert!(why.contains("first time from AS20473 in NL"), "{why}");
        // A new network from a known address cannot happen; a new network alone is named.
        let x = features(&[f::NEW_NETWORK], Detail::default());
        assert!(explain(&o, &x, &[]).contains("first time from network 45.77.175.0/24"));
    }

    #[test]
    fn titles_say_what_was_unusual_by_the_feature_that_weighed_most() {
        let mut o = obs("45.77.175.196");
        let ro = Detail {
            asn: Some(9050),
            country: Some(*b"RO"),
            ..Detail::default()
        };
        // An address's features are one: named by the widest thing new about it.
        let x = features(
            &[f::NEW_IP, f::NEW_ASN, f::NEW_COUNTRY, f::NEW_OPERATION],
            ro,
        );
        assert_eq!(
            title(&o, &x, &[(f::NEW_IP, 0.2), (f::NEW_OPERATION, 0.1)]),
            "First activity from RO for alice"
        );
        let x = features(&[f::NEW_IP, f::NEW_ASN], ro);
        assert_eq!(
            title(&o, &x, &[(f::NEW_ASN, 0.2)]),
            "First activity from AS9050 (RO) for alice"
        );
        // The strongest feature decides.
        let x = features(&[f::NEW_IP, f::NEW_OPERATION], ro);
        assert_eq!(
            title(&o, &x, &[(f::NEW_OPERATION, 0.3), (f::NEW_IP, 0.1)]),
            "First use of iam:CreateAccessKey by alice"
        );
        // A sign-in says so; a principal without a name goes by the end of its ARN.
        o.operation = "ConsoleLogin";
        o.service = "signin.amazonaws.com";
        o.actor_name = None;
        let x = features(&[f::NEW_COUNTRY], ro);
        assert_eq!(title(&o, &x, &[]), "First sign-in from RO for alice");
        // Nothing new to name: the operation, unlike the baseline.
        let x = features(&[], Detail::default());
        assert_eq!(
            title(&o, &x, &[]),
            "ConsoleLogin by alice, unlike its baseline"
        );
    }
}
