//! L2-regularised logistic regression, fitted by Newton–Raphson (IRLS).
//!
//! Features are standardised internally with the (weighted) training mean
//! and standard deviation, so the L2 penalty treats all features alike and
//! [`Logistic::contributions`] are comparable between features.
//!
//! The fit minimises
//! `Σ_i s_i · logloss(y_i, bias + w·z_i) + (l2 / 2) · ‖w‖²`,
//! where `z_i` is the standardised row and `s_i` its sample weight (1 by
//! default). The bias is not penalised. Newton steps use a backtracking line
//! search, so the objective never increases.

use serde::{Deserialize, Serialize};

use crate::FitError;

/// Maximum number of Newton iterations.
const MAX_ITER: usize = 100;
/// Stop when no parameter moves by more than this in one step.
const STEP_TOL: f64 = 1e-8;
/// Predicted probabilities are clamped to `[P_MIN, 1 - P_MIN]`.
const P_MIN: f64 = 1e-15;

/// A fitted logistic regression model.
///
/// `predict(x) = sigmoid(bias + Σ_j weights[j] · (x[j] - mean[j]) / scale[j])`.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct Logistic {
    /// Weights on the standardised features.
    pub weights: Vec<f64>,
    /// Intercept (logit at the training mean).
    pub bias: f64,
    /// Per-feature training mean.
    pub mean: Vec<f64>,
    /// Per-feature training standard deviation (1 for constant features).
    pub scale: Vec<f64>,
}

impl Logistic {
    /// Fits the model to rows `x` with labels `y`.
    ///
    /// * `l2`: strength of the L2 penalty on the weights (finite, `>= 0`);
    ///   any `l2 > 0` keeps the weights finite on perfectly separable data.
    /// * `sample_weight`: optional non-negative weight per row; a weight of 2
    ///   is equivalent to duplicating the row.
    ///
    /// If only one class has positive total weight, returns a model with zero
    /// weights that predicts the smoothed base rate `(pos + 1) / (n + 2)`
    /// (`pos` and `n` are weighted counts).
    ///
    /// Errors on empty, ragged or non-finite input, on length mismatches, and
    /// on invalid `l2` or weights.
    pub fn fit(
        x: &[Vec<f64>],
        y: &[bool],
        l2: f64,
        sample_weight: Option<&[f64]>,
    ) -> Result<Logistic, FitError> {
        let dims = check_input(x, y, sample_weight)?;
        if !(l2.is_finite() && l2 >= 0.0) {
            return Err(FitError::InvalidParam("l2 must be finite and >= 0"));
        }
        let ones;
        let sw: &[f64] = match sample_weight {
            Some(w) => w,
            None => {
                ones = vec![1.0; x.len()];
                &ones
            }
        };

        let (mean, scale) = standardisation(x, sw, dims);
        let total: f64 = sw.iter().sum();
        let pos: f64 = sw
            .iter()
            .zip(y)
            .filter(|(_, yi)| **yi)
            .map(|(w, _)| w)
            .sum();
        let base_rate = (pos + 1.0) / (total + 2.0);
        let mut model = Logistic {
            weights: vec![0.0; dims],
            bias: (base_rate / (1.0 - base_rate)).ln(),
            mean,
            scale,
        };
        if pos <= 0.0 || pos >= total {
            // One class only: the intercept-only model is the answer.
            return Ok(model);
        }

        // Parameters: theta[0] is the bias, theta[1..] are the weights.
        let p = dims + 1;
        let mut theta = vec![0.0; p];
        theta[0] = model.bias;
        let mut z = vec![0.0; dims];
        let mut objective = model.objective(x, y, sw, l2, &theta, &mut z);
        for _ in 0..MAX_ITER {
            let (grad, mut hess) = model.gradient_hessian(x, y, sw, l2, &theta, &mut z);
            // Tiny ridge so the system stays solvable when l2 = 0.
            for j in 0..p {
                hess[j * p + j] += 1e-9 * total;
            }
            let Some(step) = solve_cholesky(&mut hess, &grad, p) else {
                break;
            };
            // Backtracking line search: halve the step until the objective
            // does not increase.
            let mut t = 1.0;
            let mut improved = false;
            let mut candidate = vec![0.0; p];
            for _ in 0..40 {
                for j in 0..p {
                    candidate[j] = theta[j] - t * step[j];
                }
                let obj = model.objective(x, y, sw, l2, &candidate, &mut z);
                if obj <= objective {
                    objective = obj;
                    improved = true;
                    break;
                }
                t *= 0.5;
            }
            if !improved {
                break;
            }
            let max_move = step.iter().map(|s| (t * s).abs()).fold(0.0, f64::max);
            theta.copy_from_slice(&candidate);
            if max_move < STEP_TOL {
                break;
            }
        }
        model.bias = theta[0];
        model.weights.copy_from_slice(&theta[1..]);
        Ok(model)
    }

    /// Probability that `x` is positive, in the open interval (0, 1).
    ///
    /// # Panics
    /// Panics if `x.len()` differs from the number of weights.
    pub fn predict(&self, x: &[f64]) -> f64 {
        let logit = self.bias + self.contributions_iter(x).sum::<f64>();
        sigmoid(logit).clamp(P_MIN, 1.0 - P_MIN)
    }

    /// Per-feature contribution to the logit, `weights[j] · standardised x[j]`.
    /// The contributions plus `bias` add up to the logit of [`predict`](Self::predict).
    ///
    /// # Panics
    /// Panics if `x.len()` differs from the number of weights.
    pub fn contributions(&self, x: &[f64]) -> Vec<f64> {
        self.contributions_iter(x).collect()
    }

    fn contributions_iter<'a>(&'a self, x: &'a [f64]) -> impl Iterator<Item = f64> + 'a {
        assert_eq!(x.len(), self.weights.len(), "wrong number of features");
        x.iter()
            .zip(&self.weights)
            .zip(self.mean.iter().zip(&self.scale))
            .map(|((xj, w), (m, s))| w * (xj - m) / s)
    }

    /// Writes the standardised row into `z`.
    fn standardise(&self, row: &[f64], z: &mut [f64]) {
        for j in 0..z.len() {
            z[j] = (row[j] - self.mean[j]) / self.scale[j];
        }
    }

    /// Penalised, weighted negative log-likelihood at `theta`.
    fn objective(
        &self,
        x: &[Vec<f64>],
        y: &[bool],
        sw: &[f64],
        l2: f64,
        theta: &[f64],
        z: &mut [f64],
    ) -> f64 {
        let mut total = 0.0;
        for i in 0..x.len() {
            self.standardise(&x[i], z);
            let eta = theta[0] + dot(&theta[1..], z);
            // logloss = softplus(eta) - y * eta, computed stably.
            let softplus = eta.max(0.0) + (-eta.abs()).exp().ln_1p();
            total += sw[i] * (softplus - if y[i] { eta } else { 0.0 });
        }
        total + 0.5 * l2 * dot(&theta[1..], &theta[1..])
    }

    /// Gradient (length p) and Hessian (p × p, row-major) of the objective.
    fn gradient_hessian(
        &self,
        x: &[Vec<f64>],
        y: &[bool],
        sw: &[f64],
        l2: f64,
        theta: &[f64],
        z: &mut [f64],
    ) -> (Vec<f64>, Vec<f64>) {
        let p = theta.len();
        let mut grad = vec![0.0; p];
        let mut hess = vec![0.0; p * p];
        let mut row = vec![0.0; p]; // [1, z...]
        row[0] = 1.0;
        for i in 0..x.len() {
            if sw[i] == 0.0 {
                continue;
            }
            self.standardise(&x[i], z);
            row[1..].copy_from_slice(z);
            let prob = sigmoid(dot(theta, &row));
            let residual = sw[i] * (prob - if y[i] { 1.0 } else { 0.0 });
            let curvature = sw[i] * prob * (1.0 - prob);
            for a in 0..p {
                grad[a] += residual * row[a];
                // Fill the lower triangle; mirrored below.
                for b in 0..=a {
                    hess[a * p + b] += curvature * row[a] * row[b];
                }
            }
        }
        for a in 1..p {
            grad[a] += l2 * theta[a];
            hess[a * p + a] += l2;
        }
        for a in 0..p {
            for b in 0..a {
                hess[b * p + a] = hess[a * p + b];
            }
        }
        (grad, hess)
    }
}

/// Validates shapes and values; returns the number of features.
fn check_input(x: &[Vec<f64>], y: &[bool], w: Option<&[f64]>) -> Result<usize, FitError> {
    let dims = crate::check_rows(x)?;
    if y.len() != x.len() {
        return Err(FitError::LengthMismatch {
            what: "labels",
            expected: x.len(),
            found: y.len(),
        });
    }
    if let Some(w) = w {
        if w.len() != x.len() {
            return Err(FitError::LengthMismatch {
                what: "sample weights",
                expected: x.len(),
                found: w.len(),
            });
        }
        if w.iter().any(|v| !(v.is_finite() && *v >= 0.0)) {
            return Err(FitError::InvalidParam(
                "sample weights must be finite and >= 0",
            ));
        }
        if w.iter().sum::<f64>() <= 0.0 {
            return Err(FitError::InvalidParam("sample weights must not all be 0"));
        }
    }
    Ok(dims)
}

/// Weighted mean and standard deviation per feature. Constant features (and
/// features with zero weighted spread) get scale 1.
fn standardisation(x: &[Vec<f64>], sw: &[f64], dims: usize) -> (Vec<f64>, Vec<f64>) {
    let total: f64 = sw.iter().sum();
    let mut mean = vec![0.0; dims];
    let mut scale = vec![1.0; dims];
    for j in 0..dims {
        let first = x[0][j];
        if x.iter().all(|row| row[j] == first) {
            mean[j] = first;
            continue;
        }
        let m = x.iter().zip(sw).map(|(row, w)| w * row[j]).sum::<f64>() / total;
        let var = x
            .iter()
            .zip(sw)
            .map(|(row, w)| w * (row[j] - m) * (row[j] - m))
            .sum::<f64>()
            / total;
        mean[j] = m;
        if var > 0.0 {
            scale[j] = var.sqrt();
        }
    }
    (mean, scale)
}

fn sigmoid(t: f64) -> f64 {
    if t >= 0.0 {
        1.0 / (1.0 + (-t).exp())
    } else {
        let e = t.exp();
        e / (1.0 + e)
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Solves `A s = b` for symmetric positive-definite `A` (p × p, row-major;
/// overwritten with its Cholesky factor). Returns `None` if `A` is not
/// positive definite.
fn solve_cholesky(a: &mut [f64], b: &[f64], p: usize) -> Option<Vec<f64>> {
    // Factor A = L Lᵀ, L stored in the lower triangle of `a`.
    for j in 0..p {
        let mut d = a[j * p + j];
        for k in 0..j {
            d -= a[j * p + k] * a[j * p + k];
        }
        if !(d > 0.0 && d.is_finite()) {
            return None;
        }
        let d = d.sqrt();
        a[j * p + j] = d;
        for i in (j + 1)..p {
            let mut v = a[i * p + j];
            for k in 0..j {
                v -= a[i * p + k] * a[j * p + k];
            }
            a[i * p + j] = v / d;
        }
    }
    // Forward substitution L u = b, then back substitution Lᵀ s = u.
    let mut s = b.to_vec();
    for i in 0..p {
        for k in 0..i {
            s[i] -= a[i * p + k] * s[k];
        }
        s[i] /= a[i * p + i];
    }
    for i in (0..p).rev() {
        for k in (i + 1)..p {
            s[i] -= a[k * p + i] * s[k];
        }
        s[i] /= a[i * p + i];
    }
    Some(s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use cloudsentinel_core::rng::Rng;

    /// Rows with 3 features (the second on a much larger scale) and labels
    /// drawn from logit = 2·x0 - 1.5·x1/1000 + 0·x2.
    fn synthetic(n: usize, seed: u64) -> (Vec<Vec<f64>>, Vec<bool>) {
        let mut rng = Rng::new(seed);
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..n {
            let row = vec![
                rng.unit() * 4.0 - 2.0,
                (rng.unit() * 4.0 - 2.0) * 1000.0,
                rng.unit() * 4.0 - 2.0,
            ];
            let logit = 2.0 * row[0] - 1.5 * row[1] / 1000.0;
            y.push(rng.unit() < sigmoid(logit));
            x.push(row);
        }
        (x, y)
    }

    #[test]
    fn recovers_weight_signs_and_rough_magnitudes() {
        let (x, y) = synthetic(4000, 1);
        let m = Logistic::fit(&x, &y, 1e-3, None).unwrap();
        // Convert back to raw-feature coefficients.
        let raw: Vec<f64> = m.weights.iter().zip(&m.scale).map(|(w, s)| w / s).collect();
        assert!((raw[0] - 2.0).abs() < 0.3, "raw {raw:?}");
        assert!((raw[1] * 1000.0 + 1.5).abs() < 0.3, "raw {raw:?}");
        assert!(raw[2].abs() < 0.2, "raw {raw:?}");
        assert!(m.predict(&[2.0, -2000.0, 0.0]) > 0.95);
        assert!(m.predict(&[-2.0, 2000.0, 0.0]) < 0.05);
    }

    #[test]
    fn matches_closed_form_optimum_for_binary_feature() {
        // With one binary feature and no penalty, the MLE reproduces the
        // per-group positive rates: 3/4 for x=1 and 1/4 for x=0.
        let x: Vec<Vec<f64>> = [1.0, 1.0, 1.0, 1.0, 0.0, 0.0, 0.0, 0.0]
            .iter()
            .map(|v| vec![*v])
            .collect();
        let y = [true, true, true, false, true, false, false, false];
        let m = Logistic::fit(&x, &y, 0.0, None).unwrap();
        assert!(
            (m.predict(&[1.0]) - 0.75).abs() < 1e-6,
            "{}",
            m.predict(&[1.0])
        );
        assert!(
            (m.predict(&[0.0]) - 0.25).abs() < 1e-6,
            "{}",
            m.predict(&[0.0])
        );
    }

    #[test]
    fn separable_data_gives_finite_weights_and_correct_labels() {
        let x: Vec<Vec<f64>> = (0..20).map(|i| vec![i as f64, 1.0]).collect();
        let y: Vec<bool> = (0..20).map(|i| i >= 10).collect();
        for l2 in [1.0, 1e-4, 0.0] {
            let m = Logistic::fit(&x, &y, l2, None).unwrap();
            assert!(m.weights.iter().all(|w| w.is_finite()), "l2={l2} {m:?}");
            assert!(m.bias.is_finite());
            for (row, label) in x.iter().zip(&y) {
                let p = m.predict(row);
                assert!(p > 0.0 && p < 1.0);
                assert_eq!(p > 0.5, *label, "l2={l2} row {row:?} p {p}");
            }
        }
        // A stronger penalty gives smaller weights.
        let strong = Logistic::fit(&x, &y, 10.0, None).unwrap();
        let weak = Logistic::fit(&x, &y, 0.1, None).unwrap();
        assert!(strong.weights[0].abs() < weak.weights[0].abs());
    }

    #[test]
    fn one_class_returns_smoothed_base_rate() {
        let x: Vec<Vec<f64>> = (0..8).map(|i| vec![i as f64]).collect();
        let m = Logistic::fit(&x, &[false; 8], 1.0, None).unwrap();
        assert!((m.predict(&[3.0]) - 0.1).abs() < 1e-12); // (0+1)/(8+2)
        assert!((m.predict(&[1e6]) - 0.1).abs() < 1e-12);
        let m = Logistic::fit(&x, &[true; 8], 1.0, None).unwrap();
        assert!((m.predict(&[3.0]) - 0.9).abs() < 1e-12); // (8+1)/(8+2)
        assert_eq!(m.weights, vec![0.0]);
    }

    #[test]
    fn sample_weight_two_equals_duplicating_the_row() {
        let (x, y) = synthetic(200, 2);
        let mut w = vec![1.0; x.len()];
        let (mut x2, mut y2) = (x.clone(), y.clone());
        for i in (0..x.len()).step_by(3) {
            w[i] = 2.0;
            x2.push(x[i].clone());
            y2.push(y[i]);
        }
        let a = Logistic::fit(&x, &y, 0.5, Some(&w)).unwrap();
        let b = Logistic::fit(&x2, &y2, 0.5, None).unwrap();
        let probe = [0.5, -300.0, 1.0];
        assert!((a.predict(&probe) - b.predict(&probe)).abs() < 1e-9);
        let unweighted = Logistic::fit(&x, &y, 0.5, None).unwrap();
        assert!((a.predict(&probe) - unweighted.predict(&probe)).abs() > 1e-6);
    }

    #[test]
    fn contributions_add_up_to_logit() {
        let (x, y) = synthetic(500, 3);
        let m = Logistic::fit(&x, &y, 1.0, None).unwrap();
        let probe = [1.5, 800.0, -0.5];
        let c = m.contributions(&probe);
        assert_eq!(c.len(), 3);
        let logit = m.bias + c.iter().sum::<f64>();
        assert!((sigmoid(logit) - m.predict(&probe)).abs() < 1e-12);
        // Feature 0 pushes up (positive weight, positive value), feature 1
        // pushes down (negative weight, above-mean value).
        assert!(c[0] > 0.0 && c[1] < 0.0, "{c:?}");
    }

    #[test]
    fn constant_feature_gets_unit_scale_and_zero_weight() {
        let x: Vec<Vec<f64>> = (0..50).map(|i| vec![(i % 10) as f64, 4.0]).collect();
        let y: Vec<bool> = (0..50).map(|i| i % 10 >= 5).collect();
        let m = Logistic::fit(&x, &y, 1.0, None).unwrap();
        assert_eq!(m.mean[1], 4.0);
        assert_eq!(m.scale[1], 1.0);
        assert!(m.weights[1].abs() < 1e-12);
        assert!(m.weights[0] > 0.0);
    }

    #[test]
    fn serde_roundtrip() {
        let (x, y) = synthetic(300, 4);
        let m = Logistic::fit(&x, &y, 1.0, None).unwrap();
        let json = serde_json::to_string(&m).unwrap();
        let back: Logistic = serde_json::from_str(&json).unwrap();
        assert_eq!(m, back);
        assert_eq!(m.predict(&x[0]), back.predict(&x[0]));
    }

    #[test]
    fn fit_rejects_bad_input() {
        let x = vec![vec![1.0], vec![2.0]];
        assert_eq!(
            Logistic::fit(&[], &[], 1.0, None).unwrap_err(),
            FitError::Empty
        );
        assert!(matches!(
            Logistic::fit(&x, &[true], 1.0, None),
            Err(FitError::LengthMismatch { what: "labels", .. })
        ));
        assert!(matches!(
            Logistic::fit(&[vec![1.0], vec![]], &[true, false], 1.0, None),
            Err(FitError::Ragged { row: 1, .. })
        ));
        assert!(matches!(
            Logistic::fit(&[vec![f64::NAN]], &[true], 1.0, None),
            Err(FitError::NonFinite { row: 0, col: 0 })
        ));
        assert!(matches!(
            Logistic::fit(&x, &[true, false], -1.0, None),
            Err(FitError::InvalidParam(_))
        ));
        assert!(matches!(
            Logistic::fit(&x, &[true, false], 1.0, Some(&[1.0, -1.0])),
            Err(FitError::InvalidParam(_))
        ));
        assert!(matches!(
            Logistic::fit(&x, &[true, false], 1.0, Some(&[1.0])),
            Err(FitError::LengthMismatch { .. })
        ));
    }

    #[test]
    fn cholesky_solves_a_known_system() {
        // [[4, 2], [2, 3]] s = [2, 1]  =>  s = [0.5, 0]
        let mut a = vec![4.0, 2.0, 2.0, 3.0];
        let s = solve_cholesky(&mut a, &[2.0, 1.0], 2).unwrap();
        assert!((s[0] - 0.5).abs() < 1e-12 && s[1].abs() < 1e-12, "{s:?}");
        let mut singular = vec![1.0, 1.0, 1.0, 1.0];
        assert!(solve_cholesky(&mut singular, &[1.0, 1.0], 2).is_none());
    }
}
