//! Error and capacity metrics, computed in f64 over flat slices (all outputs pooled).
//!
//! - `mse` = mean (ŷ − y)²; `rmse` = √mse.
//! - `nrmse` = RMSE / σ(y), normalised by the (population) standard deviation of the target —
//!   not by its range, as some papers do.
//! - `r2` = 1 − SSE / SST (coefficient of determination; can be negative).
//! - `memory_capacity` (Jaeger 2001): MC = Σₖ r²(u(t−k), yₖ(t)), the squared correlation
//!   between the input delayed by k steps and the readout trained to recall it, summed over
//!   delays k = 1..K.

use core::fmt;

/// Inputs a metric cannot be computed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MetricError {
    /// Prediction and target lengths differ.
    LengthMismatch {
        predicted: usize,
        target: usize,
    },
    Empty,
    /// The target is constant, so normalising by its spread divides by zero.
    ConstantTarget,
    NonFinite,
}

impl fmt::Display for MetricError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::LengthMismatch { predicted, target } => write!(
                f,
                "prediction has {predicted} values but target has {target}"
            ),
            Self::Empty => write!(f, "no values to score"),
            Self::ConstantTarget => write!(
                f,
                "the target is constant, so a normalised error is undefined"
            ),
            Self::NonFinite => write!(f, "prediction or target contains NaN or infinity"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MetricError {}

fn check(pred: &[f64], target: &[f64]) -> Result<(), MetricError> {
    if pred.len() != target.len() {
        return Err(MetricError::LengthMismatch {
            predicted: pred.len(),
            target: target.len(),
        });
    }
    if pred.is_empty() {
        return Err(MetricError::Empty);
    }
    if pred.iter().chain(target).any(|v| !v.is_finite()) {
        return Err(MetricError::NonFinite);
    }
    Ok(())
}

fn mean(x: &[f64]) -> f64 {
    x.iter().sum::<f64>() / x.len() as f64
}

fn variance(x: &[f64]) -> f64 {
    let m = mean(x);
    x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / x.len() as f64
}

pub fn mse(pred: &[f64], target: &[f64]) -> Result<f64, MetricError> {
    check(pred, target)?;
    Ok(pred
        .iter()
        .zip(target)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>()
        / pred.len() as f64)
}

pub fn rmse(pred: &[f64], target: &[f64]) -> Result<f64, MetricError> {
    Ok(libm::sqrt(mse(pred, target)?))
}

/// RMSE divided by the population standard deviation of the target.
pub fn nrmse(pred: &[f64], target: &[f64]) -> Result<f64, MetricError> {
    let e = rmse(pred, target)?;
    let sd = libm::sqrt(variance(target));
    if sd.is_nan() || sd <= 0.0 {
        return Err(MetricError::ConstantTarget);
    }
    Ok(e / sd)
}

pub fn r2(pred: &[f64], target: &[f64]) -> Result<f64, MetricError> {
    check(pred, target)?;
    let sst = variance(target) * target.len() as f64;
    if sst.is_nan() || sst <= 0.0 {
        return Err(MetricError::ConstantTarget);
    }
    let sse = pred
        .iter()
        .zip(target)
        .map(|(p, t)| (p - t) * (p - t))
        .sum::<f64>();
    Ok(1.0 - sse / sst)
}

/// Squared Pearson correlation of two equal-length series (0 when either is constant).
pub fn squared_correlation(a: &[f64], b: &[f64]) -> Result<f64, MetricError> {
    check(a, b)?;
    let (ma, mb) = (mean(a), mean(b));
    let (mut sab, mut saa, mut sbb) = (0.0, 0.0, 0.0);
    for (x, y) in a.iter().zip(b) {
        sab += (x - ma) * (y - mb);
        saa += (x - ma) * (x - ma);
        sbb += (y - mb) * (y - mb);
    }
    if saa == 0.0 || sbb == 0.0 {
        return Ok(0.0);
    }
    Ok(sab * sab / (saa * sbb))
}

/// Jaeger's linear memory capacity from recall outputs.
///
/// `input` is u(0..T); `recall` is T × `max_delay` row-major, where column k−1 at time t is
/// the readout trained to output u(t−k). Times t < `max_delay` (no delayed input yet) are
/// skipped. Returns Σₖ r²(u(t−k), yₖ(t)) for k = 1..=max_delay.
pub fn memory_capacity(
    input: &[f64],
    recall: &[f64],
    max_delay: usize,
) -> Result<f64, MetricError> {
    let t_len = input.len();
    if max_delay == 0 || t_len <= max_delay {
        return Err(MetricError::Empty);
    }
    if recall.len() != t_len * max_delay {
        return Err(MetricError::LengthMismatch {
            predicted: recall.len(),
            target: t_len * max_delay,
        });
    }
    let mut buf_u = alloc::vec::Vec::with_capacity(t_len);
    let mut buf_y = alloc::vec::Vec::with_capacity(t_len);
    let mut total = 0.0;
    for k in 1..=max_delay {
        buf_u.clear();
        buf_y.clear();
        for t in max_delay..t_len {
            buf_u.push(input[t - k]);
            buf_y.push(recall[t * max_delay + (k - 1)]);
        }
        total += squared_correlation(&buf_u, &buf_y)?;
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_on_known_vectors() {
        let target = [1.0, 2.0, 3.0, 4.0];
        let pred = [1.0, 2.0, 3.0, 6.0];
        // Errors 0,0,0,2: MSE 1, RMSE 1; σ(target) = sqrt(1.25); SST = 5.
        assert_eq!(mse(&pred, &target).unwrap(), 1.0);
        assert_eq!(rmse(&pred, &target).unwrap(), 1.0);
        assert!((nrmse(&pred, &target).unwrap() - 1.0 / libm::sqrt(1.25)).abs() < 1e-15);
        assert!((r2(&pred, &target).unwrap() - (1.0 - 4.0 / 5.0)).abs() < 1e-15);
        assert_eq!(r2(&target, &target).unwrap(), 1.0);
        assert_eq!(nrmse(&target, &target).unwrap(), 0.0);
        // Predicting the mean gives R² = 0 and NRMSE = 1.
        let mean_pred = [2.5; 4];
        assert!(r2(&mean_pred, &target).unwrap().abs() < 1e-15);
        assert!((nrmse(&mean_pred, &target).unwrap() - 1.0).abs() < 1e-15);
    }

    #[test]
    fn metric_errors_are_typed() {
        assert_eq!(
            mse(&[1.0], &[1.0, 2.0]),
            Err(MetricError::LengthMismatch {
                predicted: 1,
                target: 2
            })
        );
        assert_eq!(mse(&[], &[]), Err(MetricError::Empty));
        assert_eq!(
            nrmse(&[1.0, 2.0], &[3.0, 3.0]),
            Err(MetricError::ConstantTarget)
        );
        assert_eq!(r2(&[f64::NAN], &[1.0]), Err(MetricError::NonFinite));
    }

    #[test]
    fn correlation_and_capacity_on_constructed_recall() {
        let a = [1.0, 2.0, 3.0, 4.0];
        assert!((squared_correlation(&a, &[2.0, 4.0, 6.0, 8.0]).unwrap() - 1.0).abs() < 1e-15);
        assert!((squared_correlation(&a, &[-1.0, -2.0, -3.0, -4.0]).unwrap() - 1.0).abs() < 1e-15);
        // Perfect recall of delays 1 and 2, nothing for delay 3: MC = 2.
        let u: alloc::vec::Vec<f64> = (0..50)
            .map(|t| libm::sin(t as f64 * 1.7) + (t % 7) as f64)
            .collect();
        let mut recall = alloc::vec![0.0; 50 * 3];
        for t in 3..50 {
            recall[t * 3] = u[t - 1];
            recall[t * 3 + 1] = 2.0 * u[t - 2] + 1.0;
            recall[t * 3 + 2] = 0.0;
        }
        assert!((memory_capacity(&u, &recall, 3).unwrap() - 2.0).abs() < 1e-12);
        assert_eq!(memory_capacity(&u, &recall, 0), Err(MetricError::Empty));
    }
}
