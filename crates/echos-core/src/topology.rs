//! Reservoir connectivity: how the recurrent matrix W is generated (random sparse with a
//! weight distribution, or one of the deterministic structured topologies) and how it is stored.
//!
//! Structured topologies (unit i receives from unit i−1):
//! - `Cycle` — simple cycle reservoir (Rodan & Tino 2011): W[i][i−1 mod N] = w. Its eigenvalues
//!   are w times the N-th roots of unity, so its spectral radius is exactly |w|.
//! - `DelayLine` — W[i][i−1] = w for i ≥ 1: nilpotent, spectral radius 0 whatever w; the
//!   engine uses the configured `spectral_radius` as the weight w.
//! - `CycleJumps { jump }` — cycle reservoir with regular jumps (Rodan & Tino 2012): the cycle
//!   plus bidirectional jump edges of weight w_j between units 0, ℓ, 2ℓ, … (each jump unit to the
//!   next jump unit, no wrap-around). The engine starts from w_c = w_j = 1, computes the
//!   spectral radius numerically (Arnoldi) and scales both weights to the target.
//!
//! These are stored in O(1) parameters and multiplied in O(N). Random reservoirs are stored
//! dense or CSR (see `MatrixFormat`).

use alloc::vec::Vec;

use crate::matrix::{Csr, Dense};
use crate::rng::Rng;
use crate::scalar::Scalar;

/// How the recurrent weights are laid out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Topology {
    /// Random sparse reservoir; `EsnConfig::connectivity` and `distribution` apply.
    #[default]
    Random,
    Cycle,
    DelayLine,
    /// Cycle with bidirectional jumps every `jump` units (2 ≤ jump < units).
    CycleJumps {
        jump: usize,
    },
}

/// Distribution of the nonzero weights before scaling (ReservoirPy's choices).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum WeightDistribution {
    /// N(0, 1).
    #[default]
    Normal,
    /// U(−1, 1).
    Uniform,
    /// ±1 with equal probability.
    Bernoulli,
}

impl WeightDistribution {
    pub fn sample(self, rng: &mut Rng) -> f64 {
        match self {
            Self::Normal => rng.normal(),
            Self::Uniform => rng.uniform(-1.0, 1.0),
            Self::Bernoulli => {
                if rng.bernoulli(0.5) {
                    1.0
                } else {
                    -1.0
                }
            }
        }
    }
}

/// Storage chosen for a random reservoir.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum MatrixFormat {
    /// Dense when `units ≤ DENSE_MAX_UNITS` or `connectivity ≥ DENSE_MIN_CONNECTIVITY`, where
    /// a dense row is as cheap as a sparse one and has no index traffic; CSR otherwise.
    #[default]
    Auto,
    Dense,
    Csr,
}

/// Up to this many units a random reservoir is stored dense under `MatrixFormat::Auto`.
pub const DENSE_MAX_UNITS: usize = 64;
/// From this connectivity on a random reservoir is stored dense under `MatrixFormat::Auto`.
pub const DENSE_MIN_CONNECTIVITY: f64 = 0.3;

impl MatrixFormat {
    /// Resolves `Auto` to `Dense` or `Csr` for the given size.
    pub fn resolve(self, units: usize, connectivity: f64) -> MatrixFormat {
        match self {
            Self::Auto if units <= DENSE_MAX_UNITS || connectivity >= DENSE_MIN_CONNECTIVITY => {
                Self::Dense
            }
            Self::Auto => Self::Csr,
            other => other,
        }
    }
}

/// Nonzeros per row of a random reservoir: round(connectivity · units), at least 1.
pub fn nonzeros_per_row(units: usize, connectivity: f64) -> usize {
    let k = libm::round(connectivity * units as f64);
    (k as usize).clamp(1, units.max(1))
}

/// A random sparse `rows × cols` matrix in f64 with exactly `per_row` nonzeros in every row.
///
/// Each row's columns are drawn without replacement (a partial Fisher–Yates shuffle of a column
/// permutation carried from row to row), then sorted; the weights are drawn in ascending column
/// order. Draw order is part of the determinism contract: row by row, first the columns, then
/// the weights. The caller checks `rows·per_row` fits `u32`.
pub fn random_sparse(
    rows: usize,
    cols: usize,
    per_row: usize,
    distribution: WeightDistribution,
    rng: &mut Rng,
) -> Csr<f64> {
    let per_row = per_row.min(cols);
    let mut perm: Vec<u32> = (0..cols as u32).collect();
    let mut indptr = Vec::with_capacity(rows + 1);
    let mut indices = Vec::with_capacity(rows * per_row);
    let mut values = Vec::with_capacity(rows * per_row);
    indptr.push(0u32);
    for _ in 0..rows {
        for k in 0..per_row {
            let j = k + rng.below((cols - k) as u64) as usize;
            perm.swap(k, j);
        }
        let start = indices.len();
        indices.extend_from_slice(&perm[..per_row]);
        indices[start..].sort_unstable();
        for _ in 0..per_row {
            values.push(distribution.sample(rng));
        }
        indptr.push(indices.len() as u32);
    }
    Csr {
        rows,
        cols,
        indptr,
        indices,
        values,
    }
}

/// The recurrent matrix W of a reservoir, in the storage its structure allows.
#[derive(Clone, Debug, PartialEq)]
pub enum ReservoirMatrix<T> {
    Dense(Dense<T>),
    Csr(Csr<T>),
    /// W[i][i−1 mod N] = weight.
    Cycle {
        units: usize,
        weight: T,
    },
    /// W[i][i−1] = weight for i ≥ 1.
    DelayLine {
        units: usize,
        weight: T,
    },
    /// Cycle of `cycle_weight` plus bidirectional `jump_weight` edges between consecutive
    /// multiples of `jump`.
    CycleJumps {
        units: usize,
        cycle_weight: T,
        jump_weight: T,
        jump: usize,
    },
}

impl<T: Scalar> ReservoirMatrix<T> {
    /// Number of units (W is units × units).
    pub fn units(&self) -> usize {
        match self {
            Self::Dense(d) => d.rows,
            Self::Csr(c) => c.rows,
            Self::Cycle { units, .. }
            | Self::DelayLine { units, .. }
            | Self::CycleJumps { units, .. } => *units,
        }
    }

    /// y = W x.
    pub fn matvec(&self, x: &[T], y: &mut [T]) {
        match self {
            Self::Dense(d) => d.matvec(x, y),
            Self::Csr(c) => c.matvec(x, y),
            _ => {
                y.fill(T::zero());
                self.structured_matvec_add(x, y);
            }
        }
    }

    /// y += W x.
    pub fn matvec_add(&self, x: &[T], y: &mut [T]) {
        match self {
            Self::Dense(d) => d.matvec_add(x, y),
            Self::Csr(c) => c.matvec_add(x, y),
            _ => self.structured_matvec_add(x, y),
        }
    }

    fn structured_matvec_add(&self, x: &[T], y: &mut [T]) {
        let n = self.units();
        assert!(
            x.len() == n && y.len() == n,
            "matvec: {n}-unit reservoir with x of {} and y of {}",
            x.len(),
            y.len()
        );
        if n == 0 {
            return;
        }
        match *self {
            Self::Cycle { weight, .. } => {
                y[0] = weight.mul_add(x[n - 1], y[0]);
                for i in 1..n {
                    y[i] = weight.mul_add(x[i - 1], y[i]);
                }
            }
            Self::DelayLine { weight, .. } => {
                for i in 1..n {
                    y[i] = weight.mul_add(x[i - 1], y[i]);
                }
            }
            Self::CycleJumps {
                cycle_weight,
                jump_weight,
                jump,
                ..
            } => {
                y[0] = cycle_weight.mul_add(x[n - 1], y[0]);
                for i in 1..n {
                    y[i] = cycle_weight.mul_add(x[i - 1], y[i]);
                }
                if jump >= 1 {
                    let mut i = 0;
                    while i < n {
                        if i >= jump {
                            y[i] = jump_weight.mul_add(x[i - jump], y[i]);
                        }
                        if i + jump < n {
                            y[i] = jump_weight.mul_add(x[i + jump], y[i]);
                        }
                        i += jump;
                    }
                }
            }
            Self::Dense(_) | Self::Csr(_) => unreachable!("dense and CSR take their own path"),
        }
    }

    /// y = W x in f64 whatever T is: used to estimate the spectral radius of the stored weights.
    pub fn matvec_f64(&self, x: &[f64], y: &mut [f64]) {
        match self {
            Self::Dense(d) => {
                for (r, yr) in y.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for (a, b) in d.row(r).iter().zip(x) {
                        acc += a.to_f64() * b;
                    }
                    *yr = acc;
                }
            }
            Self::Csr(c) => {
                for (r, yr) in y.iter_mut().enumerate() {
                    let mut acc = 0.0;
                    for k in c.indptr[r] as usize..c.indptr[r + 1] as usize {
                        acc += c.values[k].to_f64() * x[c.indices[k] as usize];
                    }
                    *yr = acc;
                }
            }
            Self::Cycle { units, weight } => ReservoirMatrix::Cycle {
                units: *units,
                weight: weight.to_f64(),
            }
            .matvec(x, y),
            Self::DelayLine { units, weight } => ReservoirMatrix::DelayLine {
                units: *units,
                weight: weight.to_f64(),
            }
            .matvec(x, y),
            Self::CycleJumps {
                units,
                cycle_weight,
                jump_weight,
                jump,
            } => ReservoirMatrix::CycleJumps {
                units: *units,
                cycle_weight: cycle_weight.to_f64(),
                jump_weight: jump_weight.to_f64(),
                jump: *jump,
            }
            .matvec(x, y),
        }
    }

    /// Multiplies every weight by `factor` (computed in f64, rounded once to T).
    pub fn scale(&mut self, factor: f64) {
        let s = |v: &mut T| *v = T::from_f64(v.to_f64() * factor);
        match self {
            Self::Dense(d) => d.data.iter_mut().for_each(s),
            Self::Csr(c) => c.values.iter_mut().for_each(s),
            Self::Cycle { weight, .. } | Self::DelayLine { weight, .. } => s(weight),
            Self::CycleJumps {
                cycle_weight,
                jump_weight,
                ..
            } => {
                s(cycle_weight);
                s(jump_weight);
            }
        }
    }

    /// Stored nonzero weights (for the structured kinds: the number of edges they represent).
    pub fn nnz(&self) -> usize {
        match self {
            Self::Dense(d) => d.nnz(),
            Self::Csr(c) => c.nnz(),
            Self::Cycle { units, .. } => *units,
            Self::DelayLine { units, .. } => units.saturating_sub(1),
            Self::CycleJumps { units, jump, .. } => {
                let jump_units = if *jump == 0 { 0 } else { units.div_ceil(*jump) };
                units + 2 * jump_units.saturating_sub(1)
            }
        }
    }

    /// Bytes of weight storage (O(1) for the structured kinds).
    pub fn bytes(&self) -> usize {
        match self {
            Self::Dense(d) => d.bytes(),
            Self::Csr(c) => c.bytes(),
            Self::Cycle { .. } | Self::DelayLine { .. } => core::mem::size_of::<T>(),
            Self::CycleJumps { .. } => 2 * core::mem::size_of::<T>(),
        }
    }

    /// The weights as a dense matrix (for tests, export and small reservoirs).
    pub fn to_dense(&self) -> Dense<T> {
        match self {
            Self::Dense(d) => d.clone(),
            Self::Csr(c) => c.to_dense(),
            _ => {
                let n = self.units();
                let mut d = Dense {
                    rows: n,
                    cols: n,
                    data: alloc::vec![T::zero(); n * n],
                };
                let mut e = alloc::vec![T::zero(); n];
                let mut col = alloc::vec![T::zero(); n];
                for j in 0..n {
                    e[j] = T::one();
                    self.matvec(&e, &mut col);
                    for (i, &v) in col.iter().enumerate() {
                        d.data[i * n + j] = v;
                    }
                    e[j] = T::zero();
                }
                d
            }
        }
    }

    /// Short name of the storage kind, for reports.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Dense(_) => "dense",
            Self::Csr(_) => "csr",
            Self::Cycle { .. } => "cycle",
            Self::DelayLine { .. } => "delay_line",
            Self::CycleJumps { .. } => "cycle_jumps",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloc::vec;

    #[test]
    fn random_sparse_has_exact_row_counts_without_repeats() {
        let mut rng = Rng::new(5);
        let c = random_sparse(200, 200, 20, WeightDistribution::Normal, &mut rng);
        assert!(Csr::new(
            c.rows,
            c.cols,
            c.indptr.clone(),
            c.indices.clone(),
            c.values.clone()
        )
        .is_ok());
        for r in 0..200 {
            assert_eq!(c.indptr[r + 1] - c.indptr[r], 20);
        }
        assert_eq!(nonzeros_per_row(1000, 0.1), 100);
        assert_eq!(nonzeros_per_row(10, 0.01), 1);
        assert_eq!(nonzeros_per_row(10, 1.0), 10);
        // Columns must be used roughly uniformly: 200·20 draws over 200 columns.
        let mut col_counts = vec![0u32; 200];
        for &j in &c.indices {
            col_counts[j as usize] += 1;
        }
        let max = *col_counts.iter().max().unwrap();
        assert!(max < 45, "column counts too uneven: max {max}");
    }

    #[test]
    fn weight_distributions_have_their_moments() {
        let mut rng = Rng::new(6);
        let n = 100_000;
        for (dist, var) in [
            (WeightDistribution::Normal, 1.0),
            (WeightDistribution::Uniform, 1.0 / 3.0),
            (WeightDistribution::Bernoulli, 1.0),
        ] {
            let xs: Vec<f64> = (0..n).map(|_| dist.sample(&mut rng)).collect();
            let mean = xs.iter().sum::<f64>() / n as f64;
            let v = xs.iter().map(|x| x * x).sum::<f64>() / n as f64 - mean * mean;
            assert!(mean.abs() < 0.02, "{dist:?} mean {mean}");
            assert!((v - var).abs() < 0.03 * var, "{dist:?} var {v}");
            if dist == WeightDistribution::Bernoulli {
                assert!(xs.iter().all(|&x| x == 1.0 || x == -1.0));
            }
            if dist == WeightDistribution::Uniform {
                assert!(xs.iter().all(|&x| (-1.0..1.0).contains(&x)));
            }
        }
    }

    #[test]
    fn structured_matvecs_match_their_dense_form() {
        let n = 10;
        let x: Vec<f64> = (0..n).map(|i| (i as f64) * 0.5 - 2.0).collect();
        let cases = [
            ReservoirMatrix::Cycle {
                units: n,
                weight: 0.9,
            },
            ReservoirMatrix::DelayLine {
                units: n,
                weight: 0.7,
            },
            ReservoirMatrix::CycleJumps {
                units: n,
                cycle_weight: 0.6,
                jump_weight: 0.3,
                jump: 3,
            },
        ];
        for w in &cases {
            let d = w.to_dense();
            let (mut y1, mut y2) = (vec![0.0; n], vec![0.0; n]);
            w.matvec(&x, &mut y1);
            d.matvec(&x, &mut y2);
            for i in 0..n {
                assert!((y1[i] - y2[i]).abs() < 1e-15);
            }
        }
        // Hand-checked entries.
        let cyc = cases[0].to_dense();
        assert_eq!(cyc.get(0, n - 1), 0.9);
        assert_eq!(cyc.get(3, 2), 0.9);
        assert_eq!(cyc.nnz(), n * n);
        let dl = cases[1].to_dense();
        assert_eq!(dl.get(0, n - 1), 0.0);
        assert_eq!(dl.get(5, 4), 0.7);
        let cj = cases[2].to_dense();
        // Jump units 0, 3, 6, 9: edges 0↔3, 3↔6, 6↔9.
        assert_eq!(cj.get(3, 0), 0.3);
        assert_eq!(cj.get(0, 3), 0.3);
        assert_eq!(cj.get(9, 6), 0.3);
        assert_eq!(cj.get(6, 9), 0.3);
        assert_eq!(cj.get(1, 4), 0.0);
        assert_eq!(cj.get(0, 9), 0.6);
        let nonzero = cj.data.iter().filter(|&&v| v != 0.0).count();
        assert_eq!(cases[2].nnz(), nonzero);
        assert_eq!(cases[0].bytes(), 8);
    }
}
