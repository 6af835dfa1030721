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
//!
//! `Block { size }` is a random sparse reservoir whose rows come in groups of `size`
//! consecutive units that share one set of k = round(connectivity·N) in-neighbour columns
//! (every row still has exactly k nonzeros, every weight iid from `distribution`). Any partition
//! of the units into groups is this one up to relabelling, so the only constraint is the shared
//! in-neighbourhood. It exists for speed: a group's product is k broadcasts of x[col] times
//! `size` contiguous weights, with no gathers (see `BlockSparse` and kernels/block.rs).

use alloc::vec::Vec;

use core::fmt;

use crate::matrix::{Csr, Dense, MatrixError};
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
    /// Random sparse reservoir in groups of `size` consecutive units sharing their in-neighbour
    /// columns (1 ≤ size ≤ units; the last group is shorter when size does not divide units).
    Block {
        #[cfg_attr(feature = "serde", serde(default = "default_block_size"))]
        size: usize,
    },
}

/// Group size of `Topology::Block` when none is given: one AVX-512 register of f32.
pub const DEFAULT_BLOCK_SIZE: usize = 16;

#[cfg(feature = "serde")]
fn default_block_size() -> usize {
    DEFAULT_BLOCK_SIZE
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

/// A malformed block-sparse matrix (from a model file or a caller), with the reason.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockError {
    /// Needs 1 ≤ size ≤ units and 1 ≤ per_group ≤ units.
    Shape {
        units: usize,
        size: usize,
        per_group: usize,
    },
    /// The sizes overflow the index types.
    Overflow { units: usize },
    /// `indices` or `values` has the wrong length.
    Length {
        what: &'static str,
        expected: usize,
        found: usize,
    },
    /// A group's column index is out of range or not strictly increasing.
    ColumnIndex { group: usize, col: u32 },
    /// A weight is NaN or infinite.
    NonFinite { row: usize, col: usize },
    /// A padding row of the ragged last group holds a nonzero weight.
    NonZeroPadding { row: usize },
}

impl fmt::Display for BlockError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape {
                units,
                size,
                per_group,
            } => write!(
                f,
                "block-sparse matrix needs 1 <= size <= units and 1 <= per_group <= units (units {units}, size {size}, per_group {per_group})"
            ),
            Self::Overflow { units } => {
                write!(f, "block-sparse matrix of {units} units is too large to index")
            }
            Self::Length {
                what,
                expected,
                found,
            } => write!(f, "block-sparse {what} has {found} entries, expected {expected}"),
            Self::ColumnIndex { group, col } => write!(
                f,
                "block-sparse column index {col} of group {group} is out of range or not strictly increasing"
            ),
            Self::NonFinite { row, col } => {
                write!(f, "block-sparse weight ({row}, {col}) is NaN or infinite")
            }
            Self::NonZeroPadding { row } => write!(
                f,
                "block-sparse padding row {row} (past the last unit) must hold zero weights"
            ),
        }
    }
}

/// A block-sparse matrix (`Topology::Block`): rows in groups of `size` consecutive rows, each
/// group with `per_group` distinct columns shared by all its rows.
///
/// Layout: group g's columns are `indices[g·k .. (g+1)·k]` (ascending), and the weight of row
/// g·size + r at the group's c-th column is `values[(g·k + c)·size + r]` — the `size` weights
/// of one column are contiguous, so a kernel multiplies them by one broadcast x[col]. The last
/// group is padded to `size` rows with zero weights when `size` does not divide `units`.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockSparse<T> {
    pub units: usize,
    pub size: usize,
    pub per_group: usize,
    pub indices: Vec<u32>,
    pub values: Vec<T>,
}

impl<T: Scalar> BlockSparse<T> {
    /// Number of groups: ceil(units / size).
    pub fn groups(&self) -> usize {
        self.units.div_ceil(self.size.max(1))
    }

    /// Checks sizes, column indices (in range, strictly ascending per group), finiteness and
    /// the zero padding of a ragged last group.
    pub fn validate(&self) -> Result<(), BlockError> {
        let (units, size, k) = (self.units, self.size, self.per_group);
        if units == 0 || size == 0 || size > units || k == 0 || k > units {
            return Err(BlockError::Shape {
                units,
                size,
                per_group: k,
            });
        }
        let groups = self.groups();
        let n_idx = groups.checked_mul(k);
        let n_val = n_idx.and_then(|n| n.checked_mul(size));
        let (Some(n_idx), Some(n_val)) = (n_idx, n_val) else {
            return Err(BlockError::Overflow { units });
        };
        if units >= u32::MAX as usize || n_val >= u32::MAX as usize {
            return Err(BlockError::Overflow { units });
        }
        if self.indices.len() != n_idx {
            return Err(BlockError::Length {
                what: "indices",
                expected: n_idx,
                found: self.indices.len(),
            });
        }
        if self.values.len() != n_val {
            return Err(BlockError::Length {
                what: "values",
                expected: n_val,
                found: self.values.len(),
            });
        }
        for g in 0..groups {
            let cols = &self.indices[g * k..(g + 1) * k];
            for (c, &col) in cols.iter().enumerate() {
                if col as usize >= units || (c > 0 && col <= cols[c - 1]) {
                    return Err(BlockError::ColumnIndex { group: g, col });
                }
            }
        }
        for (p, v) in self.values.iter().enumerate() {
            let (gc, r) = (p / size, p % size);
            let (g, c) = (gc / k, gc % k);
            let row = g * size + r;
            if !v.is_finite() {
                return Err(BlockError::NonFinite {
                    row,
                    col: self.indices[g * k + c] as usize,
                });
            }
            if row >= units && *v != T::zero() {
                return Err(BlockError::NonZeroPadding { row });
            }
        }
        Ok(())
    }

    /// y += W x: per group, column by column in ascending order, y[i] = y[i] + w·x[col]
    /// (unfused), so each row sums in column order after its existing value.
    pub fn matvec_add(&self, x: &[T], y: &mut [T]) {
        let (n, size, k) = (self.units, self.size, self.per_group);
        assert!(
            x.len() == n && y.len() == n,
            "matvec: {n}-unit reservoir with x of {} and y of {}",
            x.len(),
            y.len()
        );
        for (g, cols) in self.indices.chunks_exact(k).enumerate() {
            let first = g * size;
            let live = size.min(n - first);
            let yg = &mut y[first..first + live];
            let wg = &self.values[g * k * size..(g + 1) * k * size];
            for (&col, wc) in cols.iter().zip(wg.chunks_exact(size)) {
                let xc = x[col as usize];
                for (yi, &w) in yg.iter_mut().zip(wc) {
                    *yi = w.mul_add(xc, *yi);
                }
            }
        }
    }

    /// The same matrix in CSR (rows keep their ascending columns).
    pub fn to_csr(&self) -> Csr<T> {
        let (indptr, indices, values) = crate::kernels::block::block_to_csr(
            self.units,
            self.size,
            self.per_group,
            &self.indices,
            &self.values,
        );
        Csr {
            rows: self.units,
            cols: self.units,
            indptr,
            indices,
            values,
        }
    }

    /// The weights converted to another scalar type.
    pub fn cast<U: Scalar>(&self) -> BlockSparse<U> {
        BlockSparse {
            units: self.units,
            size: self.size,
            per_group: self.per_group,
            indices: self.indices.clone(),
            values: self
                .values
                .iter()
                .map(|v| U::from_f64(v.to_f64()))
                .collect(),
        }
    }
}

/// A random block-sparse `units × units` matrix in f64 (see `BlockSparse`).
///
/// Columns are dealt like cards so that every unit is read by as many groups as possible:
/// independent draws would leave units that no group reads when there are few groups (N/size
/// draws of k columns miss about N·(1 − k/N)^(N/size) of them; measured at N = 100, k = 10:
/// 51 unread units for size 16, 30 for size 8), and such units cannot feed back, which costs
/// rank and memory capacity.
///
/// Draw order (part of the determinism contract): a deck holds the N column indices, shuffled
/// by Fisher–Yates (`j = i + below(N − i)` for i = 0..N−1) at the start and again whenever it
/// is used up. Group by group, the group takes its `per_group` columns one by one from the
/// deck's next position; when the card there is already in the group (possible only just after
/// a reshuffle), the first later card not in the group is swapped into that position first.
/// The group's columns are then sorted, and its weights drawn row by row (real rows only), each
/// row in ascending column order. Every column is read by ⌊G·k/N⌋ or ⌈G·k/N⌉ groups
/// (G groups). The caller checks 1 ≤ size ≤ units and that the sizes fit `u32`.
pub fn random_block(
    units: usize,
    size: usize,
    per_group: usize,
    distribution: WeightDistribution,
    rng: &mut Rng,
) -> BlockSparse<f64> {
    let size = size.clamp(1, units.max(1));
    let k = per_group.clamp(1, units.max(1));
    let groups = units.div_ceil(size);
    let shuffle = |deck: &mut [u32], rng: &mut Rng| {
        let n = deck.len();
        for i in 0..n.saturating_sub(1) {
            let j = i + rng.below((n - i) as u64) as usize;
            deck.swap(i, j);
        }
    };
    let mut deck: Vec<u32> = (0..units as u32).collect();
    shuffle(&mut deck, rng);
    let mut pos = 0;
    // in_group[c] == g + 1 marks column c as taken by group g (O(1) membership).
    let mut in_group = alloc::vec![0usize; units];
    let mut indices = Vec::with_capacity(groups * k);
    let mut values = alloc::vec![0.0; groups * k * size];
    for g in 0..groups {
        let start = indices.len();
        for _ in 0..k {
            if pos == units {
                shuffle(&mut deck, rng);
                pos = 0;
            }
            // A card not in the group exists at or after pos: the group holds fewer than k ≤ N
            // columns, and those dealt since the reshuffle sit before pos.
            let mut j = pos;
            while in_group[deck[j] as usize] == g + 1 {
                j += 1;
            }
            deck.swap(pos, j);
            let col = deck[pos];
            pos += 1;
            in_group[col as usize] = g + 1;
            indices.push(col);
        }
        indices[start..].sort_unstable();
        for r in 0..size.min(units - g * size) {
            for c in 0..k {
                values[(g * k + c) * size + r] = distribution.sample(rng);
            }
        }
    }
    BlockSparse {
        units,
        size,
        per_group: k,
        indices,
        values,
    }
}

/// Why a set of weights is not a valid reservoir matrix.
#[derive(Clone, Debug, PartialEq)]
pub enum ReservoirMatrixError {
    /// W is not `expected` × `expected`.
    Shape {
        expected: usize,
        got: (usize, usize),
    },
    /// A dense or CSR matrix breaks an invariant (lengths, row pointers, column indices).
    Matrix(MatrixError),
    /// A block matrix breaks an invariant.
    Block(BlockError),
    /// A structured weight is NaN or infinite.
    NonFinite,
    /// A cycle-with-jumps jump outside 2..units.
    Jump { jump: usize, units: usize },
}

impl fmt::Display for ReservoirMatrixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Shape { expected, got } => write!(
                f,
                "W has shape {}x{}, expected {expected}x{expected}",
                got.0, got.1
            ),
            Self::Matrix(e) => write!(f, "{e}"),
            Self::Block(e) => write!(f, "{e}"),
            Self::NonFinite => f.write_str("W contains NaN or infinite weights"),
            Self::Jump { jump, units } => write!(
                f,
                "jump {jump} of the cycle with jumps must be in 2..{units} (the number of units)"
            ),
        }
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
    /// Random block-sparse (`Topology::Block`).
    Block(BlockSparse<T>),
}

impl<T: Scalar> ReservoirMatrix<T> {
    /// Number of units (W is units × units).
    pub fn units(&self) -> usize {
        match self {
            Self::Dense(d) => d.rows,
            Self::Csr(c) => c.rows,
            Self::Block(b) => b.units,
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
            Self::Block(b) => {
                y.fill(T::zero());
                b.matvec_add(x, y);
            }
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
            Self::Block(b) => b.matvec_add(x, y),
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
        for (i, yi) in y.iter_mut().enumerate() {
            self.structured_row(i, |col, w| *yi = w.mul_add(x[col], *yi));
        }
    }

    /// The in-edges (column, weight) of row `i` of a structured W, in the order every
    /// consumer sums them: the cycle (or delay-line) edge from unit i − 1, then for a jump
    /// node of `CycleJumps` the jump from the previous jump node and then from the next. The
    /// one definition of the structured topologies' edges: the matvec, the CSR form the fused
    /// kernels step and the dense form are all read from it. Dense, CSR and block matrices
    /// have no structured rows and visit nothing.
    #[inline]
    pub fn structured_row(&self, i: usize, mut edge: impl FnMut(usize, T)) {
        match *self {
            Self::Cycle { units, weight } => edge((i + units - 1) % units, weight),
            Self::DelayLine { weight, .. } => {
                if i > 0 {
                    edge(i - 1, weight);
                }
            }
            Self::CycleJumps {
                units,
                cycle_weight,
                jump_weight,
                jump,
            } => {
                edge((i + units - 1) % units, cycle_weight);
                // Jump nodes are the multiples of `jump`, joined to their neighbours, with no
                // wrap-around from the last jump node to unit 0.
                if jump >= 1 && i.is_multiple_of(jump) {
                    if i >= jump {
                        edge(i - jump, jump_weight);
                    }
                    if i + jump < units {
                        edge(i + jump, jump_weight);
                    }
                }
            }
            Self::Dense(_) | Self::Csr(_) | Self::Block(_) => {}
        }
    }

    /// W in CSR: dense entries that are not zero (`Csr::from_dense`), CSR as is, block rows
    /// as `BlockSparse::to_csr` lists them, structured rows one entry per edge. Fails only for
    /// a dense matrix too large for u32 indices.
    pub fn to_csr(&self) -> Result<Csr<T>, MatrixError> {
        Ok(match self {
            Self::Dense(d) => Csr::from_dense(d)?,
            Self::Csr(c) => c.clone(),
            Self::Block(b) => b.to_csr(),
            _ => {
                let n = self.units();
                let mut indptr = Vec::with_capacity(n + 1);
                let mut indices = Vec::with_capacity(n);
                let mut values = Vec::with_capacity(n);
                indptr.push(0u32);
                for i in 0..n {
                    self.structured_row(i, |c, w| {
                        indices.push(c as u32);
                        values.push(w);
                    });
                    indptr.push(indices.len() as u32);
                }
                Csr {
                    rows: n,
                    cols: n,
                    indptr,
                    indices,
                    values,
                }
            }
        })
    }

    /// The same matrix in another scalar type (each weight rounded once through f64).
    pub fn cast<U: Scalar>(&self) -> ReservoirMatrix<U> {
        let c = |v: T| U::from_f64(v.to_f64());
        match self {
            Self::Dense(d) => ReservoirMatrix::Dense(d.cast()),
            Self::Csr(m) => ReservoirMatrix::Csr(m.cast()),
            Self::Block(b) => ReservoirMatrix::Block(b.cast()),
            Self::Cycle { units, weight } => ReservoirMatrix::Cycle {
                units: *units,
                weight: c(*weight),
            },
            Self::DelayLine { units, weight } => ReservoirMatrix::DelayLine {
                units: *units,
                weight: c(*weight),
            },
            Self::CycleJumps {
                units,
                cycle_weight,
                jump_weight,
                jump,
            } => ReservoirMatrix::CycleJumps {
                units: *units,
                cycle_weight: c(*cycle_weight),
                jump_weight: c(*jump_weight),
                jump: *jump,
            },
        }
    }

    /// Checks that W is a valid `units` × `units` reservoir matrix: shapes, indices, finite
    /// weights and a jump in 2..units (what every step path relies on; loaded files go
    /// through here).
    pub fn validate(&self, units: usize) -> Result<(), ReservoirMatrixError> {
        let square = |rows: usize, cols: usize| {
            if (rows, cols) == (units, units) {
                Ok(())
            } else {
                Err(ReservoirMatrixError::Shape {
                    expected: units,
                    got: (rows, cols),
                })
            }
        };
        match self {
            Self::Dense(d) => {
                square(d.rows, d.cols)?;
                d.validate().map_err(ReservoirMatrixError::Matrix)
            }
            Self::Csr(c) => {
                square(c.rows, c.cols)?;
                c.validate().map_err(ReservoirMatrixError::Matrix)
            }
            Self::Block(b) => {
                square(b.units, b.units)?;
                b.validate().map_err(ReservoirMatrixError::Block)
            }
            Self::Cycle { units: n, weight } | Self::DelayLine { units: n, weight } => {
                square(*n, *n)?;
                if weight.is_finite() {
                    Ok(())
                } else {
                    Err(ReservoirMatrixError::NonFinite)
                }
            }
            Self::CycleJumps {
                units: n,
                cycle_weight,
                jump_weight,
                jump,
            } => {
                square(*n, *n)?;
                if *jump < 2 || *jump >= *n {
                    return Err(ReservoirMatrixError::Jump {
                        jump: *jump,
                        units: *n,
                    });
                }
                if cycle_weight.is_finite() && jump_weight.is_finite() {
                    Ok(())
                } else {
                    Err(ReservoirMatrixError::NonFinite)
                }
            }
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
            Self::Block(b) => {
                let (n, size, k) = (b.units, b.size, b.per_group);
                y.fill(0.0);
                for (g, cols) in b.indices.chunks_exact(k).enumerate() {
                    let first = g * size;
                    let live = size.min(n - first);
                    for (c, &col) in cols.iter().enumerate() {
                        let xc = x[col as usize];
                        let wc = &b.values[(g * k + c) * size..(g * k + c) * size + live];
                        for (yi, w) in y[first..first + live].iter_mut().zip(wc) {
                            *yi += w.to_f64() * xc;
                        }
                    }
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
            Self::Block(b) => b.values.iter_mut().for_each(s),
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
            Self::Block(b) => b.units * b.per_group,
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
            Self::Block(b) => b.indices.len() * 4 + b.values.len() * core::mem::size_of::<T>(),
            Self::Cycle { .. } | Self::DelayLine { .. } => core::mem::size_of::<T>(),
            Self::CycleJumps { .. } => 2 * core::mem::size_of::<T>(),
        }
    }

    /// The weights as a dense matrix (for tests, export and small reservoirs).
    pub fn to_dense(&self) -> Dense<T> {
        match self {
            Self::Dense(d) => d.clone(),
            Self::Csr(c) => c.to_dense(),
            Self::Block(b) => b.to_csr().to_dense(),
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
            Self::Block(_) => "block",
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

    #[test]
    fn block_columns_are_dealt_evenly() {
        let mut rng = Rng::new(11);
        for (n, size, k) in [
            (100, 16, 10),
            (100, 8, 10),
            (57, 1, 6),
            (1000, 16, 100),
            (5, 2, 5),
        ] {
            let b = random_block(n, size, k, WeightDistribution::Normal, &mut rng);
            b.validate().unwrap();
            let mut reads = vec![0usize; n];
            b.indices.iter().for_each(|&c| reads[c as usize] += 1);
            let (lo, hi) = (reads.iter().min().unwrap(), reads.iter().max().unwrap());
            let deals = b.groups() * k;
            assert!(
                *lo == deals / n && *hi <= deals.div_ceil(n),
                "N={n} size={size}: reads {lo}..{hi} for {deals} deals"
            );
        }
    }

    #[test]
    fn block_draw_order_known_answer() {
        // Fixed values for seed 3: a change here changes every block reservoir ever saved.
        let mut rng = Rng::new(3);
        let b = random_block(10, 4, 3, WeightDistribution::Uniform, &mut rng);
        b.validate().unwrap();
        assert_eq!(b.groups(), 3);
        assert_eq!(b.indices.len(), 9);
        assert_eq!(b.values.len(), 3 * 3 * 4);
        // The ragged last group (rows 8, 9) has zero padding rows 10, 11.
        for c in 0..3 {
            assert_eq!(b.values[(2 * 3 + c) * 4 + 2], 0.0);
            assert_eq!(b.values[(2 * 3 + c) * 4 + 3], 0.0);
        }
        assert_eq!(b.indices, [0, 3, 6, 1, 2, 4, 5, 7, 9]);
        // Row 0's weights are the first three weight draws, row 1's the next three.
        assert_eq!(b.values[0], -0.6097926758326873);
        assert_eq!(b.values[4], 0.8467228926145467);
        assert_eq!(b.values[8], 0.35975242382003403);
        assert_eq!(b.values[1], 0.2897920132486922);
        // An independent replay of the documented order gives every value: deck shuffled at
        // the start and when used up, cards already in the group swapped past, sorted columns,
        // then weights row by row.
        let mut replay = Rng::new(3);
        let shuffle = |d: &mut Vec<u32>, r: &mut Rng| {
            for i in 0..d.len() - 1 {
                let j = i + r.below((d.len() - i) as u64) as usize;
                d.swap(i, j);
            }
        };
        let mut deck: Vec<u32> = (0..10).collect();
        shuffle(&mut deck, &mut replay);
        let mut pos = 0;
        let mut want = vec![0.0; 36];
        for g in 0..3 {
            let mut cols: Vec<u32> = Vec::new();
            while cols.len() < 3 {
                if pos == 10 {
                    shuffle(&mut deck, &mut replay);
                    pos = 0;
                }
                let j = (pos..10).find(|&j| !cols.contains(&deck[j])).unwrap();
                deck.swap(pos, j);
                cols.push(deck[pos]);
                pos += 1;
            }
            cols.sort_unstable();
            assert_eq!(&b.indices[g * 3..g * 3 + 3], &cols[..]);
            for r in 0..4.min(10 - g * 4) {
                for c in 0..3 {
                    want[(g * 3 + c) * 4 + r] = replay.uniform(-1.0, 1.0);
                }
            }
        }
        assert_eq!(b.values, want);
    }

    #[test]
    fn block_exact_paths_match_the_dense_form() {
        let mut rng = Rng::new(7);
        for (n, size, k) in [(30, 4, 5), (33, 8, 7), (16, 16, 16), (9, 2, 1)] {
            let b = random_block(n, size, k, WeightDistribution::Normal, &mut rng);
            b.validate().unwrap();
            let w = ReservoirMatrix::Block(b.clone());
            let d = w.to_dense();
            // Every row has exactly k nonzeros, shared within its group.
            for i in 0..n {
                let cols: Vec<usize> = (0..n).filter(|&j| d.get(i, j) != 0.0).collect();
                assert_eq!(cols.len(), k, "row {i}");
                let g0 = (i / size) * size;
                let first: Vec<usize> = (0..n).filter(|&j| d.get(g0, j) != 0.0).collect();
                assert_eq!(cols, first, "row {i} shares its group's columns");
            }
            assert_eq!(w.nnz(), n * k);
            let x: Vec<f64> = (0..n).map(|i| libm::sin(i as f64)).collect();
            let (mut y1, mut y2, mut y3) = (vec![0.5; n], vec![0.5; n], vec![0.0; n]);
            w.matvec_add(&x, &mut y1);
            d.matvec_add(&x, &mut y2);
            w.matvec_f64(&x, &mut y3);
            for i in 0..n {
                assert!((y1[i] - y2[i]).abs() < 1e-12, "{} vs {}", y1[i], y2[i]);
                assert!((y3[i] + 0.5 - y2[i]).abs() < 1e-12);
            }
            let f: ReservoirMatrix<f32> = ReservoirMatrix::Block(b.cast());
            assert_eq!(f.kind(), "block");
            assert_eq!(f.bytes(), b.indices.len() * 4 + b.values.len() * 4);
        }
    }

    #[test]
    fn bad_block_matrices_are_typed_errors() {
        let mut rng = Rng::new(1);
        let good = random_block(10, 4, 3, WeightDistribution::Normal, &mut rng);
        let mut b = good.clone();
        b.size = 0;
        assert!(matches!(b.validate(), Err(BlockError::Shape { .. })));
        let mut b = good.clone();
        b.size = 11;
        assert!(matches!(b.validate(), Err(BlockError::Shape { .. })));
        let mut b = good.clone();
        b.indices.pop();
        assert!(matches!(
            b.validate(),
            Err(BlockError::Length {
                what: "indices",
                ..
            })
        ));
        let mut b = good.clone();
        b.indices[1] = b.indices[0];
        assert!(matches!(
            b.validate(),
            Err(BlockError::ColumnIndex { group: 0, .. })
        ));
        let mut b = good.clone();
        b.indices[8] = 10;
        assert!(matches!(
            b.validate(),
            Err(BlockError::ColumnIndex { group: 2, col: 10 })
        ));
        let mut b = good.clone();
        b.values[0] = f64::NAN;
        assert!(matches!(
            b.validate(),
            Err(BlockError::NonFinite { row: 0, .. })
        ));
        let mut b = good.clone();
        b.values[(2 * 3) * 4 + 3] = 1.0;
        assert_eq!(b.validate(), Err(BlockError::NonZeroPadding { row: 11 }));
    }

    /// Why small block reservoirs can remember less (docs/performance.md): W's nonzero columns
    /// are the union of its groups' column sets. Dealing covers min(N, G·k) columns; with
    /// G·k < N (N = 100, k = 10, size 16: 70 deals) some units are read by no group, and the
    /// rank drops below that union.
    #[test]
    fn block_rank_is_capped_by_the_columns_its_groups_read() {
        for (size, union_want) in [(16, 70), (8, 100), (1, 100)] {
            let mut rng = Rng::new(2);
            let b = random_block(100, size, 10, WeightDistribution::Normal, &mut rng);
            let mut read = [false; 100];
            b.indices.iter().for_each(|&c| read[c as usize] = true);
            let union = read.iter().filter(|&&r| r).count();
            let d = ReservoirMatrix::Block(b).to_dense();
            let m = nalgebra::DMatrix::from_row_slice(100, 100, &d.data);
            let rank = m.rank(1e-9);
            std::eprintln!("size {size}: columns read {union}, rank {rank}");
            assert_eq!(union, union_want, "size {size}");
            assert!(rank <= union);
        }
    }
}
