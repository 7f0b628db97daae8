//! Evaluation helpers: ROC AUC, confusion counts, stratified k-fold
//! cross-validation and quantiles (for turning a target alert rate into a
//! score threshold).

use serde::Serialize;

use crate::FitError;
use cloudsentinel_core::rng::Rng;

/// Area under the ROC curve, computed as the Mann–Whitney statistic: the
/// probability that a random positive scores higher than a random negative,
/// with ties counted as 0.5.
///
/// Returns `None` if either class is missing or any score is NaN.
///
/// # Panics
/// Panics if `scores` and `labels` have different lengths.
pub fn auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    assert_eq!(
        scores.len(),
        labels.len(),
        "auc: scores and labels differ in length"
    );
    if scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|l| **l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }

    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let average_rank = (start + end + 1) as f64 / 2.0; // mean of start+1..=end
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        rank_sum += average_rank * tied_positives as f64;
        start = end;
    }
    let (p, n) = (positives as f64, negatives as f64);
    let u = rank_sum - p * (p + 1.0) / 2.0;
    Some(u / (p * n))
}

/// Confusion-matrix counts for a binary decision.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Confusion {
    pub tp: u64,
    pub fp: u64,
    pub tn: u64,
    pub fn_: u64,
}

impl Confusion {
    /// `tp / (tp + fp)`; `None` if nothing was predicted positive.
    pub fn precision(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fp)
    }

    /// `tp / (tp + fn)`; `None` if there are no actual positives.
    pub fn recall(&self) -> Option<f64> {
        ratio(self.tp, self.tp + self.fn_)
    }

    /// `2tp / (2tp + fp + fn)` (the harmonic mean of precision and recall
    /// where both are defined); `None` if there are no predicted and no
    /// actual positives.
    pub fn f1(&self) -> Option<f64> {
        ratio(2 * self.tp, 2 * self.tp + self.fp + self.fn_)
    }
}

fn ratio(num: u64, den: u64) -> Option<f64> {
    (den > 0).then(|| num as f64 / den as f64)
}

/// Counts outcomes when `score >= threshold` is predicted positive (a NaN
/// score is predicted negative).
///
/// # Panics
/// Panics if `scores` and `labels` have different lengths.
pub fn confusion(scores: &[f64], labels: &[bool], threshold: f64) -> Confusion {
    assert_eq!(
        scores.len(),
        labels.len(),
        "confusion: scores and labels differ in length"
    );
    let mut c = Confusion::default();
    for (&s, &label) in scores.iter().zip(labels) {
        match (s >= threshold, label) {
            (true, true) => c.tp += 1,
            (true, false) => c.fp += 1,
            (false, false) => c.tn += 1,
            (false, true) => c.fn_ += 1,
        }
    }
    c
}

/// Assigns each sample a fold index in `0..k` so that each class is spread
/// evenly (counts per fold differ by at most one) and fold sizes differ by at
/// most one. The assignment within each class is random but deterministic
/// for a given `seed`.
///
/// # Panics
/// Panics if `k == 0`.
pub fn stratified_folds(labels: &[bool], k: usize, seed: u64) -> Vec<usize> {
    assert!(k > 0, "stratified_folds: k must be at least 1");
    let mut rng = Rng::new(seed);
    let mut folds = vec![0; labels.len()];
    // Deal the shuffled members of each class round-robin; the counter runs
    // on across classes so the total fold sizes stay balanced too.
    let mut next = 0;
    for class in [true, false] {
        let mut members: Vec<usize> = (0..labels.len()).filter(|&i| labels[i] == class).collect();
        rng.shuffle(&mut members);
        for i in members {
            folds[i] = next % k;
            next += 1;
        }
    }
    folds
}

/// Summary of a cross-validation run, computed on the pooled out-of-fold
/// predictions.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CvReport {
    /// Number of folds actually used (may be less than requested).
    pub folds: usize,
    pub samples: usize,
    pub positives: usize,
    pub auc: Option<f64>,
    /// Precision at `threshold`.
    pub precision: Option<f64>,
    /// Recall at `threshold`.
    pub recall: Option<f64>,
    pub threshold: f64,
}

/// Stratified k-fold cross-validation.
///
/// Every sample is predicted by a model fitted on the other folds; AUC,
/// precision and recall (at `score >= threshold`) are computed on the pooled
/// out-of-fold predictions. `k` is reduced to `min(k, positives, negatives)`
/// so that every fold holds both classes.
///
/// Errors if `x` is empty, lengths differ, `k < 2`, the reduced `k` is below
/// 2 (fewer than 2 samples of some class), or `fit` fails.
pub fn cross_validate<M>(
    x: &[Vec<f64>],
    y: &[bool],
    k: usize,
    seed: u64,
    threshold: f64,
    fit: impl Fn(&[Vec<f64>], &[bool]) -> Result<M, FitError>,
    predict: impl Fn(&M, &[f64]) -> f64,
) -> Result<CvReport, FitError> {
    if x.is_empty() {
        return Err(FitError::Empty);
    }
    if y.len() != x.len() {
        return Err(FitError::LengthMismatch {
            what: "labels",
            expected: x.len(),
            found: y.len(),
        });
    }
    if k < 2 {
        return Err(FitError::InvalidParam(
            "cross-validation needs k >= 2 folds",
        ));
    }
    let positives = y.iter().filter(|l| **l).count();
    let minority = positives.min(y.len() - positives);
    if minority < 2 {
        return Err(FitError::TooFew {
            what: "samples in the minority class for cross-validation",
            needed: 2,
            found: minority,
        });
    }
    let k = k.min(minority);

    let folds = stratified_folds(y, k, seed);
    let mut oof = vec![0.0; x.len()];
    for fold in 0..k {
        let mut train_x = Vec::new();
        let mut train_y = Vec::new();
        for i in 0..x.len() {
            if folds[i] != fold {
                train_x.push(x[i].clone());
                train_y.push(y[i]);
            }
        }
        let model = fit(&train_x, &train_y)?;
        for i in 0..x.len() {
            if folds[i] == fold {
                oof[i] = predict(&model, &x[i]);
            }
        }
    }

    let c = confusion(&oof, y, threshold);
    Ok(CvReport {
        folds: k,
        samples: x.len(),
        positives,
        auc: auc(&oof, y),
        precision: c.precision(),
        recall: c.recall(),
        threshold,
    })
}

/// The `q`-quantile of `values` (linear interpolation between order
/// statistics, like numpy's default). Sorts `values` in place.
///
/// To flag roughly a fraction `rate` of events, use
/// `threshold = quantile(scores, 1 - rate)` with `score >= threshold`.
///
/// Returns `None` if `values` is empty, contains NaN, or `q` is outside
/// `[0, 1]`.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() || !(0.0..=1.0).contains(&q) || values.iter().any(|v| v.is_nan()) {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let pos = q * (values.len() - 1) as f64;
    let lo = pos.floor() as usize;
    let hi = pos.ceil() as usize;
    let frac = pos - lo as f64;
    Some(values[lo] + (values[hi] - values[lo]) * frac)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::logistic::Logistic;

    #[test]
    fn auc_perfect_reversed_ties_and_partial() {
        let labels = [false, false, true, true];
        assert_eq!(auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(auc(&[0.5; 4], &labels), Some(0.5));
        // Pairs (pos, neg): (0.8,0.1)✓ (0.8,0.9)✗ (0.3,0.1)✓ (0.3,0.9)✗ → 0.5;
        // with a tie: pos 0.5 vs negs 0.5 and 0.1 → (0.5 + 1) / 2 = 0.75.
        assert_eq!(auc(&[0.1, 0.9, 0.8, 0.3], &labels), Some(0.5));
        assert_eq!(auc(&[0.5, 0.1, 0.5], &[false, false, true]), Some(0.75));
    }

    #[test]
    fn auc_matches_brute_force_pair_count() {
        let mut rng = Rng::new(1);
        let scores: Vec<f64> = (0..200).map(|_| rng.below(20) as f64).collect();
        let labels: Vec<bool> = (0..200).map(|_| rng.unit() < 0.3).collect();
        let mut wins = 0.0;
        let mut pairs = 0.0;
        for i in 0..200 {
            for j in 0..200 {
                if labels[i] && !labels[j] {
                    pairs += 1.0;
                    if scores[i] > scores[j] {
                        wins += 1.0;
                    } else if scores[i] == scores[j] {
                        wins += 0.5;
                    }
                }
            }
        }
        let got = auc(&scores, &labels).unwrap();
        assert!(
            (got - wins / pairs).abs() < 1e-12,
            "{got} vs {}",
            wins / pairs
        );
    }

    #[test]
    fn auc_none_when_undefined() {
        assert_eq!(auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(auc(&[0.1, 0.2], &[false, false]), None);
        assert_eq!(auc(&[], &[]), None);
        assert_eq!(auc(&[f64::NAN, 0.2], &[true, false]), None);
    }

    #[test]
    fn confusion_counts_and_derived_metrics() {
        let scores = [0.9, 0.8, 0.7, 0.4, 0.3, 0.5];
        let labels = [true, false, true, true, false, false];
        let c = confusion(&scores, &labels, 0.5);
        assert_eq!(
            c,
            Confusion {
                tp: 2,
                fp: 2,
                tn: 1,
                fn_: 1
            }
        );
        assert_eq!(c.precision(), Some(0.5));
        assert_eq!(c.recall(), Some(2.0 / 3.0));
        let f1 = c.f1().unwrap();
        assert!((f1 - 2.0 * 0.5 * (2.0 / 3.0) / (0.5 + 2.0 / 3.0)).abs() < 1e-12);
        // NaN is never >= threshold.
        assert_eq!(confusion(&[f64::NAN], &[true], 0.0).fn_, 1);
    }

    #[test]
    fn undefined_metrics_are_none() {
        let nothing_flagged = Confusion {
            tp: 0,
            fp: 0,
            tn: 5,
            fn_: 2,
        };
        assert_eq!(nothing_flagged.precision(), None);
        assert_eq!(nothing_flagged.recall(), Some(0.0));
        assert_eq!(nothing_flagged.f1(), Some(0.0));
        let no_positives = Confusion {
            tp: 0,
            fp: 0,
            tn: 5,
            fn_: 0,
        };
        assert_eq!(no_positives.recall(), None);
        assert_eq!(no_positives.f1(), None);
    }

    #[test]
    fn stratified_folds_balance_each_class() {
        let labels: Vec<bool> = (0..103).map(|i| i % 10 == 0).collect(); // 11 positives
        let folds = stratified_folds(&labels, 5, 7);
        assert_eq!(folds.len(), 103);
        for class in [true, false] {
            let mut counts = [0usize; 5];
            for (f, l) in folds.iter().zip(&labels) {
                if *l == class {
                    counts[*f] += 1;
                }
            }
            let (min, max) = (counts.iter().min().unwrap(), counts.iter().max().unwrap());
            assert!(max - min <= 1, "class {class}: {counts:?}");
        }
        let mut sizes = [0usize; 5];
        for f in &folds {
            sizes[*f] += 1;
        }
        assert!(
            sizes.iter().max().unwrap() - sizes.iter().min().unwrap() <= 1,
            "{sizes:?}"
        );
        assert_eq!(folds, stratified_folds(&labels, 5, 7));
        assert_ne!(folds, stratified_folds(&labels, 5, 8));
    }

    fn learnable(n: usize, seed: u64, random_labels: bool) -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut rng = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row = vec![rng.unit() * 2.0 - 1.0, rng.unit() * 2.0 - 1.0];
            let label = if random_labels {
                rng.unit() < 0.3
            } else {
                row[0] + 0.5 * row[1] + 0.2 * (rng.unit() - 0.5) > 0.3
            };
            x.push(row);
            y.push(label);
        }
        (x, y)
    }

    fn cv(x: &[Vec<f64>], y: &[bool], k: usize) -> Result<CvReport, FitError> {
        cross_validate(
            x,
            y,
            k,
            3,
            0.5,
            |x, y| Logistic::fit(x, y, 1.0, None),
            |m, row| m.predict(row),
        )
    }

    #[test]
    fn cross_validation_learns_a_learnable_problem() {
        let (x, y) = learnable(600, 1, false);
        let r = cv(&x, &y, 5).unwrap();
        assert_eq!(r.folds, 5);
        assert_eq!(r.samples, 600);
        assert_eq!(r.positives, y.iter().filter(|l| **l).count());
        assert!(r.auc.unwrap() > 0.9, "{r:?}");
        assert!(
            r.precision.unwrap() > 0.8 && r.recall.unwrap() > 0.8,
            "{r:?}"
        );
        let json = serde_json::to_string(&r).unwrap();
        assert!(json.contains("\"folds\":5"), "{json}");
    }

    #[test]
    fn cross_validation_on_random_labels_is_near_chance() {
        let (x, y) = learnable(1000, 2, true);
        let r = cv(&x, &y, 5).unwrap();
        let a = r.auc.unwrap();
        assert!((a - 0.5).abs() < 0.15, "auc {a}");
    }

    #[test]
    fn cross_validation_reduces_k_and_errors_when_too_few() {
        let (x, mut y) = learnable(50, 3, false);
        y.iter_mut().for_each(|l| *l = false);
        y[0] = true;
        y[1] = true;
        y[2] = true;
        let r = cv(&x, &y, 10).unwrap();
        assert_eq!(r.folds, 3);
        y[2] = false;
        y[1] = false;
        assert_eq!(
            cv(&x, &y, 10).unwrap_err(),
            FitError::TooFew {
                what: "samples in the minority class for cross-validation",
                needed: 2,
                found: 1
            }
        );
        assert!(matches!(cv(&x, &y, 1), Err(FitError::InvalidParam(_))));
        assert_eq!(cv(&[], &[], 5).unwrap_err(), FitError::Empty);
    }

    #[test]
    fn cross_validation_uses_only_out_of_fold_predictions() {
        // A "model" that memorises its training rows and scores 1 for a seen
        // row: if held-out rows leaked into training, AUC would differ from
        // the all-ties value 0.5.
        let (x, y) = learnable(100, 4, false);
        let r = cross_validate(
            &x,
            &y,
            4,
            1,
            0.5,
            |x, _| Ok(x.to_vec()),
            |seen, row| {
                if seen.iter().any(|s| s == row) {
                    1.0
                } else {
                    0.0
                }
            },
        )
        .unwrap();
        assert_eq!(r.auc, Some(0.5));
        assert_eq!(r.precision, None);
        assert_eq!(r.recall, Some(0.0));
    }

    #[test]
    fn quantile_interpolates() {
        let mut v: Vec<f64> = (1..=100).rev().map(f64::from).collect();
        assert_eq!(quantile(&mut v, 0.0), Some(1.0));
        assert_eq!(quantile(&mut v, 1.0), Some(100.0));
        assert_eq!(quantile(&mut v, 0.5), Some(50.5));
        assert!((quantile(&mut v, 0.99).unwrap() - 99.01).abs() < 1e-9);
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [1.0], 1.5), None);
        assert_eq!(quantile(&mut [1.0, f64::NAN], 0.5), None);
        assert_eq!(quantile(&mut [3.0], 0.7), Some(3.0));
    }

    #[test]
    fn quantile_threshold_hits_target_alert_rate() {
        let mut rng = Rng::new(5);
        let scores: Vec<f64> = (0..10_000).map(|_| rng.unit()).collect();
        let t = quantile(&mut scores.clone(), 1.0 - 0.02).unwrap();
        let flagged = scores.iter().filter(|s| **s >= t).count();
        assert!((195..=205).contains(&flagged), "{flagged}");
    }
}
