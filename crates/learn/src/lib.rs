//! Learning for CloudSentinel: behaviour baselines and their features ([`behaviour`]), the
//! anomaly model over them ([`anomaly`]), the feedback model trained from analysts' verdicts
//! ([`feedback`]), the same detectors over files ([`offline`]),
//! and the small toolkit underneath (random draws come from `cloudsentinel_core::rng`):
//!
//! * [`forest`]: isolation forest for unsupervised anomaly scoring.
//! * [`logistic`]: L2-regularised logistic regression for supervised scoring.
//! * [`metrics`]: AUC, confusion counts, stratified cross-validation, quantiles.
//!
//! All fitting functions report bad input through [`FitError`].

pub mod anomaly;
pub mod behaviour;
pub mod detectors;
pub mod feedback;
pub mod forest;
pub mod logistic;
pub mod metrics;

pub mod offline;

use std::fmt;

/// Why a model could not be fitted (or cross-validated).
#[derive(Clone, Debug, PartialEq)]
pub enum FitError {
    /// No training rows were given.
    Empty,
    /// Row `row` has `found` features while row 0 has `expected`.
    Ragged {
        row: usize,
        expected: usize,
        found: usize,
    },
    /// Two inputs that must have one entry per row have different lengths.
    LengthMismatch {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// A feature value is NaN or infinite.
    NonFinite { row: usize, col: usize },
    /// There are not enough samples for the requested operation.
    TooFew {
        what: &'static str,
        needed: usize,
        found: usize,
    },
    /// A parameter is out of its valid range.
    InvalidParam(&'static str),
}

impl fmt::Display for FitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FitError::Empty => write!(f, "no training data: at least one row is required"),
            FitError::Ragged {
                row,
                expected,
                found,
            } => write!(
                f,
                "ragged input: row {row} has {found} features but row 0 has {expected}"
            ),
            FitError::LengthMismatch {
                what,
                expected,
                found,
            } => write!(
                f,
                "length mismatch: expected {expected} {what} (one per row) but found {found}"
            ),
            FitError::NonFinite { row, col } => {
                write!(
                    f,
                    "non-finite value (NaN or infinity) at row {row}, feature {col}"
                )
            }
            FitError::TooFew {
                what,
                needed,
                found,
            } => write!(f, "too few {what}: need at least {needed}, found {found}"),
            FitError::InvalidParam(msg) => write!(f, "invalid parameter: {msg}"),
        }
    }
}

impl std::error::Error for FitError {}

/// Checks that rows are non-empty, rectangular and finite; returns the width.
pub(crate) fn check_rows<T: Copy + Into<f64>, R: AsRef<[T]>>(
    rows: &[R],
) -> Result<usize, FitError> {
    check_row_iter(rows.iter().map(AsRef::as_ref))
}

/// [`check_rows`] over rows however they are held.
pub(crate) fn check_row_iter<'a, T: Copy + Into<f64> + 'a>(
    mut rows: impl Iterator<Item = &'a [T]>,
) -> Result<usize, FitError> {
    let first = rows.next().ok_or(FitError::Empty)?;
    let dims = first.len();
    for (row, values) in std::iter::once(first).chain(rows).enumerate() {
        if values.len() != dims {
            return Err(FitError::Ragged {
                row,
                expected: dims,
                found: values.len(),
            });
        }
        if let Some(col) = values.iter().position(|v| !(*v).into().is_finite()) {
            return Err(FitError::NonFinite { row, col });
        }
    }
    Ok(dims)
}

#[cfg(test)]
mod tests {
    use super::FitError;

    #[test]
    fn display_messages_are_specific() {
        let e = FitError::Ragged {
            row: 3,
            expected: 2,
            found: 5,
        };
        assert_eq!(
            e.to_string(),
            "ragged input: row 3 has 5 features but row 0 has 2"
        );
        let e = FitError::TooFew {
            what: "samples in the minority class",
            needed: 2,
            found: 1,
        };
        assert_eq!(
            e.to_string(),
            "too few samples in the minority class: need at least 2, found 1"
        );
        assert!(FitError::Empty.to_string().contains("no training data"));
        let boxed: Box<dyn std::error::Error> = Box::new(FitError::InvalidParam("k must be >= 2"));
        assert_eq!(boxed.to_string(), "invalid parameter: k must be >= 2");
    }
}
