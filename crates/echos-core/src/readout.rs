//! Linear readouts y = W_out·[1; x] and the ways to learn them: ridge regression (offline, f64
//! normal equations by Cholesky, bias not regularised), RLS with a forgetting factor and LMS
//! (online, allocation-free updates).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::matrix::Dense;
use crate::scalar::Scalar;

/// A readout cannot be fitted, updated or applied as asked.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ReadoutError {
    /// `fit` before any sample was accumulated.
    NoSamples,
    /// XᵀX + λI is not positive definite (e.g. λ = 0 with collinear states).
    NotPositiveDefinite,
    DimensionMismatch {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// A state, target or weight is NaN or infinite.
    NonFinite { what: &'static str },
    /// A hyperparameter is out of its range.
    BadParameter { what: &'static str, value: f64 },
}

impl fmt::Display for ReadoutError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NoSamples => write!(f, "no training samples were given to the readout"),
            Self::NotPositiveDefinite => write!(
                f,
                "the ridge system is not positive definite; use a ridge parameter > 0"
            ),
            Self::DimensionMismatch {
                what,
                expected,
                got,
            } => write!(f, "{what} has {got} values, expected {expected}"),
            Self::NonFinite { what } => write!(f, "{what} contains NaN or infinite values"),
            Self::BadParameter { what, value } => write!(f, "{what} is out of range: {value}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ReadoutError {}

fn check_len(what: &'static str, expected: usize, got: usize) -> Result<(), ReadoutError> {
    if expected == got {
        Ok(())
    } else {
        Err(ReadoutError::DimensionMismatch {
            what,
            expected,
            got,
        })
    }
}

/// Writes [1; x] (or x, without the bias feature) into `z` (f64), rejecting non-finite
/// states.
fn augment<T: Scalar>(x: &[T], z: &mut [f64], bias: bool) -> Result<(), ReadoutError> {
    let first = usize::from(bias);
    check_len("state", z.len() - first, x.len())?;
    if bias {
        z[0] = 1.0;
    }
    for (zi, &xi) in z[first..].iter_mut().zip(x) {
        *zi = xi.to_f64();
    }
    if z.iter().any(|v| !v.is_finite()) {
        return Err(ReadoutError::NonFinite { what: "state" });
    }
    Ok(())
}

/// y = W·[1; x]: `weights` is outputs × (1 + units), column 0 the bias.
#[derive(Clone, Debug, PartialEq)]
pub struct Linear {
    pub weights: Dense<f64>,
}

impl Linear {
    pub fn zeros(units: usize, outputs: usize) -> Result<Self, ReadoutError> {
        let weights = Dense::zeros(outputs, units + 1).map_err(|_| ReadoutError::BadParameter {
            what: "readout size",
            value: units as f64,
        })?;
        Ok(Self { weights })
    }

    /// Wraps loaded weights (outputs × (1 + units)), which must be finite.
    pub fn from_weights(weights: Dense<f64>) -> Result<Self, ReadoutError> {
        check_len(
            "readout weights",
            weights.rows * weights.cols,
            weights.data.len(),
        )?;
        if weights.cols == 0 {
            return Err(ReadoutError::DimensionMismatch {
                what: "readout columns",
                expected: 1,
                got: 0,
            });
        }
        if weights.data.iter().any(|v| !v.is_finite()) {
            return Err(ReadoutError::NonFinite {
                what: "readout weights",
            });
        }
        Ok(Self { weights })
    }

    pub fn units(&self) -> usize {
        self.weights.cols - 1
    }
    pub fn outputs(&self) -> usize {
        self.weights.rows
    }

    /// y = W·[1; x], summed in f64 in index order (bias first). No allocation.
    pub fn predict<T: Scalar>(&self, x: &[T], y: &mut [T]) -> Result<(), ReadoutError> {
        check_len("state", self.units(), x.len())?;
        check_len("output", self.outputs(), y.len())?;
        for (o, yo) in y.iter_mut().enumerate() {
            let row = self.weights.row(o);
            let mut acc = row[0];
            for (w, &xi) in row[1..].iter().zip(x) {
                acc += w * xi.to_f64();
            }
            *yo = T::from_f64(acc);
        }
        Ok(())
    }
}

/// Samples buffered before they are added to XᵀX: adding a block at once reads and writes the
/// (1+N)² matrix once per block instead of once per sample, which is what bounds the speed.
pub const RIDGE_BLOCK: usize = 32;

/// Ridge regression on [1; x]: accumulates XᵀX and XᵀY in f64 sample by sample, then solves
/// (XᵀX + λ·diag(0, 1, …, 1))·Wᵀ = XᵀY by Cholesky. The bias is not regularised, so adding a
/// constant to the targets shifts only the bias. [`Ridge::without_bias`] fits W·x alone (for
/// fixed-point readouts that have no bias term). The one least-squares solver of the engine:
/// [`Ridge::fit_with`] and [`Ridge::fit_path`] solve the same accumulated system for other
/// λ, so choosing λ costs one pass over the data.
///
/// `accumulate` allocates nothing. It costs O(N) per sample plus, every `RIDGE_BLOCK`-th sample,
/// O(RIDGE_BLOCK·N²) to fold the buffered block into XᵀX; each entry of XᵀX still receives its
/// products in sample order, so the result is the same as adding sample by sample.
#[derive(Clone, Debug)]
pub struct Ridge {
    units: usize,
    outputs: usize,
    ridge: f64,
    /// The features start with a constant 1 (an unregularised bias).
    bias: bool,
    /// Upper triangle of XᵀX, (1+units)², row-major.
    xtx: Vec<f64>,
    /// XᵀY, (1+units) × outputs.
    xty: Vec<f64>,
    samples: usize,
    /// Buffered z = [1; x] rows not yet in `xtx`, RIDGE_BLOCK × (1+units).
    block: Vec<f64>,
    pending: usize,
}

/// Adds the outer products of the first `pending` rows of `block` to the upper triangle of
/// `xtx`, sample by sample for each entry.
fn add_block(xtx: &mut [f64], block: &[f64], pending: usize, d: usize) {
    for i in 0..d {
        let row = &mut xtx[i * d + i..(i + 1) * d];
        for z in block.chunks_exact(d).take(pending) {
            let zi = z[i];
            for (a, &zj) in row.iter_mut().zip(&z[i..]) {
                *a += zi * zj;
            }
        }
    }
}

fn check_ridge(ridge: f64) -> Result<(), ReadoutError> {
    if ridge.is_finite() && ridge >= 0.0 {
        Ok(())
    } else {
        Err(ReadoutError::BadParameter {
            what: "ridge",
            value: ridge,
        })
    }
}

impl Ridge {
    pub fn new(units: usize, outputs: usize, ridge: f64) -> Result<Self, ReadoutError> {
        Self::with_bias(units, outputs, ridge, true)
    }

    /// Ridge regression of y on x alone (no bias feature, every weight regularised); the
    /// fitted [`Linear`] has a zero bias column.
    pub fn without_bias(units: usize, outputs: usize, ridge: f64) -> Result<Self, ReadoutError> {
        Self::with_bias(units, outputs, ridge, false)
    }

    fn with_bias(
        units: usize,
        outputs: usize,
        ridge: f64,
        bias: bool,
    ) -> Result<Self, ReadoutError> {
        check_ridge(ridge)?;
        let d = units + usize::from(bias);
        let size = d.checked_mul(d).filter(|&s| s <= isize::MAX as usize / 8);
        let Some(size) = size else {
            return Err(ReadoutError::BadParameter {
                what: "readout size",
                value: units as f64,
            });
        };
        Ok(Self {
            units,
            outputs,
            ridge,
            bias,
            xtx: vec![0.0; size],
            xty: vec![0.0; d * outputs],
            samples: 0,
            block: vec![0.0; RIDGE_BLOCK * d],
            pending: 0,
        })
    }

    /// Adds one (state, target) pair. No allocation.
    pub fn accumulate<T: Scalar>(&mut self, x: &[T], y: &[T]) -> Result<(), ReadoutError> {
        check_len("target", self.outputs, y.len())?;
        if y.iter().any(|v| !v.is_finite()) {
            return Err(ReadoutError::NonFinite { what: "target" });
        }
        let d = self.units + usize::from(self.bias);
        let z = &mut self.block[self.pending * d..(self.pending + 1) * d];
        augment(x, z, self.bias)?;
        for (i, &zi) in z.iter().enumerate() {
            for (o, &yo) in y.iter().enumerate() {
                self.xty[i * self.outputs + o] += zi * yo.to_f64();
            }
        }
        self.pending += 1;
        self.samples += 1;
        if self.pending == RIDGE_BLOCK {
            add_block(&mut self.xtx, &self.block, self.pending, d);
            self.pending = 0;
        }
        Ok(())
    }

    pub fn samples(&self) -> usize {
        self.samples
    }

    /// Forgets all samples.
    pub fn reset(&mut self) {
        self.xtx.fill(0.0);
        self.xty.fill(0.0);
        self.samples = 0;
        self.pending = 0;
    }

    /// Solves for the readout with the λ given at creation.
    pub fn fit(&self) -> Result<Linear, ReadoutError> {
        self.fit_with(self.ridge)
    }

    /// Solves the accumulated system for another λ (the samples are not seen again).
    pub fn fit_with(&self, ridge: f64) -> Result<Linear, ReadoutError> {
        check_ridge(ridge)?;
        if self.samples == 0 {
            return Err(ReadoutError::NoSamples);
        }
        let first = usize::from(self.bias);
        let d = self.units + first;
        let mut a = self.xtx.clone();
        add_block(&mut a, &self.block, self.pending, d);
        for i in 0..d {
            for j in i + 1..d {
                a[j * d + i] = a[i * d + j];
            }
            if i >= first {
                a[i * d + i] += ridge;
            }
        }
        cholesky_in_place(&mut a, d)?;
        let cols = self.units + 1;
        let mut weights =
            Dense::zeros(self.outputs, cols).map_err(|_| ReadoutError::BadParameter {
                what: "readout size",
                value: cols as f64,
            })?;
        let mut rhs = vec![0.0; d];
        for o in 0..self.outputs {
            for (i, r) in rhs.iter_mut().enumerate() {
                *r = self.xty[i * self.outputs + o];
            }
            cholesky_solve(&a, d, &mut rhs);
            // Without the bias feature, column 0 (the bias) stays zero.
            weights.data[o * cols + (1 - first)..(o + 1) * cols].copy_from_slice(&rhs);
        }
        Linear::from_weights(weights)
    }

    /// The readouts for each λ in `ridges` (a ridge path for choosing λ on held-out data),
    /// from one pass of accumulation.
    pub fn fit_path(&self, ridges: &[f64]) -> Result<Vec<Linear>, ReadoutError> {
        ridges.iter().map(|&r| self.fit_with(r)).collect()
    }
}

/// Lower Cholesky factor L (A = L·Lᵀ) written over the lower triangle of `a`.
fn cholesky_in_place(a: &mut [f64], d: usize) -> Result<(), ReadoutError> {
    for j in 0..d {
        let mut diag = a[j * d + j];
        for k in 0..j {
            diag -= a[j * d + k] * a[j * d + k];
        }
        // Relative pivot test: a pivot lost to rounding means the system is singular.
        if !diag.is_finite() || diag <= 1e-14 * a[j * d + j].abs().max(f64::MIN_POSITIVE) {
            return Err(ReadoutError::NotPositiveDefinite);
        }
        let ljj = libm::sqrt(diag);
        a[j * d + j] = ljj;
        for i in j + 1..d {
            let mut s = a[i * d + j];
            for k in 0..j {
                s -= a[i * d + k] * a[j * d + k];
            }
            a[i * d + j] = s / ljj;
        }
    }
    Ok(())
}

/// Solves L·Lᵀ·x = b in place.
fn cholesky_solve(l: &[f64], d: usize, b: &mut [f64]) {
    for i in 0..d {
        let mut s = b[i];
        for k in 0..i {
            s -= l[i * d + k] * b[k];
        }
        b[i] = s / l[i * d + i];
    }
    for i in (0..d).rev() {
        let mut s = b[i];
        for k in i + 1..d {
            s -= l[k * d + i] * b[k];
        }
        b[i] = s / l[i * d + i];
    }
}

/// Recursive least squares with forgetting factor λ ∈ (0, 1]: after each sample the readout
/// minimises Σ λ^(t−s)·‖y(s) − W·z(s)‖² + λ^t·δ·‖W‖² with P(0) = I/δ. O(units²) per update,
/// no allocation.
#[derive(Clone, Debug)]
pub struct Rls {
    pub forgetting: f64,
    readout: Linear,
    /// Inverse correlation matrix P, (1+units)².
    p: Vec<f64>,
    z: Vec<f64>,
    pz: Vec<f64>,
}

impl Rls {
    /// `delta` > 0 is the initial regularisation (P(0) = I/δ).
    pub fn new(
        units: usize,
        outputs: usize,
        forgetting: f64,
        delta: f64,
    ) -> Result<Self, ReadoutError> {
        if !(forgetting > 0.0 && forgetting <= 1.0) {
            return Err(ReadoutError::BadParameter {
                what: "forgetting factor (must be in (0, 1])",
                value: forgetting,
            });
        }
        if !(delta > 0.0 && delta.is_finite()) {
            return Err(ReadoutError::BadParameter {
                what: "RLS delta (must be > 0)",
                value: delta,
            });
        }
        let d = units + 1;
        let size = d.checked_mul(d).filter(|&s| s <= isize::MAX as usize / 8);
        let Some(size) = size else {
            return Err(ReadoutError::BadParameter {
                what: "readout size",
                value: units as f64,
            });
        };
        let mut p = vec![0.0; size];
        for i in 0..d {
            p[i * d + i] = 1.0 / delta;
        }
        Ok(Self {
            forgetting,
            readout: Linear::zeros(units, outputs)?,
            p,
            z: vec![0.0; d],
            pz: vec![0.0; d],
        })
    }

    /// One RLS step towards target `y` for state `x`.
    pub fn update<T: Scalar>(&mut self, x: &[T], y: &[T]) -> Result<(), ReadoutError> {
        check_len("target", self.readout.outputs(), y.len())?;
        if y.iter().any(|v| !v.is_finite()) {
            return Err(ReadoutError::NonFinite { what: "target" });
        }
        augment(x, &mut self.z, true)?;
        let d = self.z.len();
        for i in 0..d {
            let row = &self.p[i * d..(i + 1) * d];
            self.pz[i] = row.iter().zip(&self.z).map(|(a, b)| a * b).sum();
        }
        let gamma = self.forgetting + self.z.iter().zip(&self.pz).map(|(a, b)| a * b).sum::<f64>();
        if !gamma.is_finite() || gamma <= 0.0 {
            return Err(ReadoutError::NonFinite {
                what: "RLS gain (P lost positive definiteness)",
            });
        }
        for (o, &yo) in y.iter().enumerate() {
            let row = &mut self.readout.weights.data[o * d..(o + 1) * d];
            let pred: f64 = row.iter().zip(&self.z).map(|(a, b)| a * b).sum();
            let e = yo.to_f64() - pred;
            for (w, &k) in row.iter_mut().zip(&self.pz) {
                *w += e * k / gamma;
            }
        }
        // P stays exactly symmetric: the upper triangle is computed and mirrored, since a P that
        // drifts from symmetry is the classic way RLS loses positive definiteness.
        let inv_l = 1.0 / self.forgetting;
        for i in 0..d {
            let ki = self.pz[i] / gamma;
            for j in i..d {
                let v = (self.p[i * d + j] - ki * self.pz[j]) * inv_l;
                self.p[i * d + j] = v;
                self.p[j * d + i] = v;
            }
        }
        Ok(())
    }

    pub fn readout(&self) -> &Linear {
        &self.readout
    }

    /// The inverse correlation matrix P, (1+units)² row-major (for inspection and tests).
    pub fn inverse_correlation(&self) -> &[f64] {
        &self.p
    }
}

/// Least mean squares: W ← W + μ·(y − W·z)·zᵀ, with z = [1; x]. Converges when
/// 0 < μ < 2/λ_max(E[z·zᵀ]). No allocation.
#[derive(Clone, Debug)]
pub struct Lms {
    pub learning_rate: f64,
    readout: Linear,
    z: Vec<f64>,
}

impl Lms {
    pub fn new(units: usize, outputs: usize, learning_rate: f64) -> Result<Self, ReadoutError> {
        if !(learning_rate > 0.0 && learning_rate.is_finite()) {
            return Err(ReadoutError::BadParameter {
                what: "LMS learning rate (must be > 0)",
                value: learning_rate,
            });
        }
        Ok(Self {
            learning_rate,
            readout: Linear::zeros(units, outputs)?,
            z: vec![0.0; units + 1],
        })
    }

    pub fn update<T: Scalar>(&mut self, x: &[T], y: &[T]) -> Result<(), ReadoutError> {
        check_len("target", self.readout.outputs(), y.len())?;
        if y.iter().any(|v| !v.is_finite()) {
            return Err(ReadoutError::NonFinite { what: "target" });
        }
        augment(x, &mut self.z, true)?;
        let d = self.z.len();
        for (o, &yo) in y.iter().enumerate() {
            let row = &mut self.readout.weights.data[o * d..(o + 1) * d];
            let pred: f64 = row.iter().zip(&self.z).map(|(a, b)| a * b).sum();
            let step = self.learning_rate * (yo.to_f64() - pred);
            for (w, &zi) in row.iter_mut().zip(&self.z) {
                *w += step * zi;
            }
        }
        if self.readout.weights.data.iter().any(|v| !v.is_finite()) {
            return Err(ReadoutError::NonFinite {
                what: "LMS weights (learning rate too large)",
            });
        }
        Ok(())
    }

    pub fn readout(&self) -> &Linear {
        &self.readout
    }
}
