//! The feedback model: how likely a new alert is a true positive, learned from analysts'
//! verdicts. Logistic regression over the alert's behaviour features, its anomaly score, its
//! rule's own record of verdicts (smoothed), its level, kind and size.

use std::collections::HashMap;

use cloudsentinel_core::Level;
use serde::{Deserialize, Serialize};

use crate::behaviour::{DIMS, SCHEMA_VERSION};
use crate::logistic::Logistic;
use crate::metrics::{CvReport, cross_validate};

/// Labels needed before a model is trained, and of each verdict.
pub const MIN_LABELS: usize = 10;
pub const MIN_PER_CLASS: usize = 3;

/// What the model reads of an alert.
#[derive(Debug, Clone)]
pub struct AlertFacts {
    pub rule_id: String,
    /// `rule`, `correlation` or `anomaly`.
    pub kind: String,
    pub level: Level,
    pub count: u64,
    /// The behaviour features of the alert's first event, when it was scored.
    pub features: Option<Vec<f32>>,
    pub anomaly_score: Option<f64>,
}

/// Extra columns after the behaviour features.
const EXTRA: [&str; 7] = [
    "rule_true_positive_rate",
    "level",
    "log_count",
    "is_anomaly",
    "is_correlation",
    "anomaly_score",
    "scored",
];

/// Names of the model's inputs, in order.
pub fn input_names() -> Vec<String> {
    crate::behaviour::FEATURES
        .iter()
        .map(|f| f.name.to_string())
        .chain(EXTRA.iter().map(|s| s.to_string()))
        .collect()
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeedbackModel {
    pub schema: u32,
    pub logistic: Logistic,
    /// Per rule: (true positives, labelled alerts).
    pub rules: HashMap<String, (u32, u32)>,
    pub prior: f64,
}

/// Smoothing weight of the prior in a rule's rate.
const SMOOTH: f64 = 2.0;

fn rate(t: Option<&(u32, u32)>, prior: f64) -> f64 {
    let (tp, n) = t.copied().unwrap_or((0, 0));
    (tp as f64 + prior * SMOOTH) / (n as f64 + SMOOTH)
}

fn row(a: &AlertFacts, rule_rate: f64) -> Vec<f64> {
    let mut v: Vec<f64> = match &a.features {
        Some(x) if x.len() == DIMS => x.iter().map(|f| *f as f64).collect(),
        _ => vec![0.0; DIMS],
    };
    v.push(rule_rate);
    v.push(match a.level {
        Level::Informational => 0.0,
        Level::Low => 1.0,
        Level::Medium => 2.0,
        Level::High => 3.0,
        Level::Critical => 4.0,
    });
    v.push((1.0 + a.count as f64).ln());
    v.push(if a.kind == "anomaly" { 1.0 } else { 0.0 });
    v.push(if a.kind == "correlation" { 1.0 } else { 0.0 });
    v.push(a.anomaly_score.unwrap_or(0.0));
    v.push(if a.features.is_some() { 1.0 } else { 0.0 });
    v
}

/// The rule column is filled per fold from that fold's training labels only, so that
/// cross-validation does not see the verdict it predicts through the rule's rate.
struct Fitted {
    logistic: Logistic,
    rules: HashMap<usize, (u32, u32)>,
    prior: f64,
}

const RULE_COL: usize = DIMS;

fn rate_table(x: &[Vec<f64>], y: &[bool]) -> (HashMap<usize, (u32, u32)>, f64) {
    let mut t: HashMap<usize, (u32, u32)> = HashMap::new();
    for (r, l) in x.iter().zip(y) {
        let e = t.entry(r[RULE_COL] as usize).or_default();
        e.0 += *l as u32;
        e.1 += 1;
    }
    let prior = (y.iter().filter(|l| **l).count() as f64 + 1.0) / (y.len() as f64 + 2.0);
    (t, prior)
}

fn with_rate(r: &[f64], t: &HashMap<usize, (u32, u32)>, prior: f64) -> Vec<f64> {
    let mut v = r.to_vec();
    v[RULE_COL] = rate(t.get(&(r[RULE_COL] as usize)), prior);
    v
}

/// L2 penalty; labels are few, so the model is kept simple.
const L2: f64 = 1.0;

fn fit(x: &[Vec<f64>], y: &[bool]) -> Result<Fitted, crate::FitError> {
    let (rules, prior) = rate_table(x, y);
    let xs: Vec<Vec<f64>> = x.iter().map(|r| with_rate(r, &rules, prior)).collect();
    Ok(Fitted {
        logistic: Logistic::fit(&xs, y, L2, None)?,
        rules,
        prior,
    })
}

fn predict(m: &Fitted, r: &[f64]) -> f64 {
    m.logistic.predict(&with_rate(r, &m.rules, m.prior))
}

/// Trains on labelled alerts (true when an analyst called it a true positive) and measures the
/// model by k-fold cross-validation on the same labels.
pub fn train(
    labelled: &[(AlertFacts, bool)],
    folds: usize,
    seed: u64,
) -> Result<(FeedbackModel, CvReport), String> {
    let pos = labelled.iter().filter(|(_, l)| *l).count();
    let neg = labelled.len() - pos;
    if labelled.len() < MIN_LABELS || pos < MIN_PER_CLASS || neg < MIN_PER_CLASS {
        return Err(format!(
            "{} labelled alerts ({pos} true positive, {neg} false positive or benign): at least {MIN_LABELS}, with {MIN_PER_CLASS} of each, are needed to train the feedback model",
            labelled.len()
        ));
    }
    let mut ids: HashMap<&str, usize> = HashMap::new();
    let x: Vec<Vec<f64>> = labelled
        .iter()
        .map(|(a, _)| {
            let n = ids.len();
            let id = *ids.entry(&a.rule_id).or_insert(n);
            let mut r = row(a, 0.0);
            r[RULE_COL] = id as f64;
            r
        })
        .collect();
    let y: Vec<bool> = labelled.iter().map(|(_, l)| *l).collect();
    let report =
        cross_validate(&x, &y, folds, seed, 0.5, fit, predict).map_err(|e| e.to_string())?;
    let fitted = fit(&x, &y).map_err(|e| e.to_string())?;
    let names: HashMap<usize, &str> = ids.iter().map(|(k, v)| (*v, *k)).collect();
    let rules = fitted
        .rules
        .iter()
        .map(|(i, c)| (names[i].to_string(), *c))
        .collect();
    Ok((
        FeedbackModel {
            schema: SCHEMA_VERSION,
            logistic: fitted.logistic,
            rules,
            prior: fitted.prior,
        },
        report,
    ))
}

impl FeedbackModel {
    /// Probability that the alert is a true positive.
    pub fn score(&self, a: &AlertFacts) -> f64 {
        let r = row(a, rate(self.rules.get(&a.rule_id), self.prior));
        self.logistic.predict(&r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(rule: &str, level: Level, novel: bool) -> AlertFacts {
        let mut f = vec![0.0; DIMS];
        if novel {
            f[crate::behaviour::f::NEW_IP] = 1.0;
            f[crate::behaviour::f::NEW_ASN] = 1.0;
        }
        AlertFacts {
            rule_id: rule.into(),
            kind: "rule".into(),
            level,
            count: 1,
            features: Some(f),
            anomaly_score: None,
        }
    }

    #[test]
    fn too_few_labels_are_refused_plainly() {
        let e = train(&[(facts("a", Level::Low, false), true)], 5, 1).unwrap_err();
        assert!(
            e.contains("1 labelled alerts") && e.contains("at least 10"),
            "{e}"
        );
    }

    #[test]
    fn learns_that_a_noisy_rule_is_noise() {
        // Rule "noisy" is always a false positive from known places; rule "real" is a true
        // positive from new places.
        let mut l = Vec::new();
        for i in 0..30 {
            l.push((facts("noisy", Level::Medium, i % 10 == 0), false));
            l.push((facts("real", Level::High, i % 10 != 0), true));
        }
        let (m, cv) = train(&l, 5, 1).unwrap();
        assert!(cv.auc.unwrap() > 0.9, "{cv:?}");
        assert_eq!(cv.samples, 60);
        assert!(m.score(&facts("real", Level::High, true)) > 0.8);
        assert!(m.score(&facts("noisy", Level::Medium, false)) < 0.2);
        // An unseen rule sits in between, pulled by what its features say.
        let unseen = m.score(&facts("new", Level::Medium, false));
        assert!(unseen > m.score(&facts("noisy", Level::Medium, false)));
        let text = serde_json::to_string(&m).unwrap();
        let back: FeedbackModel = serde_json::from_str(&text).unwrap();
        assert_eq!(
            back.score(&facts("real", Level::High, true)),
            m.score(&facts("real", Level::High, true))
        );
    }
}
