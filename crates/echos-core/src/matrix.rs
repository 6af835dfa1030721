//! Matrix storage for reservoirs and readouts: row-major dense and CSR sparse, with the one
//! scalar matrix–vector product the engine uses.
//!
//! Reduction order (part of the determinism contract): the k-th stored entry of a row (k-th
//! column for dense, k-th nonzero for CSR) is multiplied and added, unfused, into partial sum
//! `k % LANES`, each lane in storage order; the lanes are then combined as an 8-lane register
//! would be, ((s0+s4)+(s2+s6)) + ((s1+s5)+(s3+s7)), and added to the existing `y` value (or 0).
//! Independent lanes let the scalar code run without a serial add chain, and a SIMD kernel
//! (src/kernels/) that keeps this order reproduces the scalar bits exactly. `dot_dense_row` and
//! `dot_csr_row` are the only places a kernel needs to replace.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::scalar::Scalar;

/// A malformed matrix (from a model file or a caller), with the reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MatrixError {
    /// `data.len()` is not `rows × cols`.
    DataLength {
        rows: usize,
        cols: usize,
        len: usize,
    },
    /// `rows × cols` (or an index) does not fit the index type.
    DimensionOverflow { rows: usize, cols: usize },
    /// `indptr` does not have `rows + 1` entries, start at 0, rise monotonically and end at nnz.
    BadIndptr { row: usize },
    /// A column index is out of range or not strictly increasing within its row.
    BadColumnIndex { row: usize, col: u32 },
    /// `indices` and `values` lengths differ.
    IndicesValuesMismatch { indices: usize, values: usize },
    /// A weight is NaN or infinite.
    NonFinite { row: usize, col: usize },
}

impl fmt::Display for MatrixError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::DataLength { rows, cols, len } => write!(
                f,
                "matrix data has {len} values but a {rows}x{cols} matrix needs {}",
                rows.saturating_mul(*cols)
            ),
            Self::DimensionOverflow { rows, cols } => {
                write!(f, "a {rows}x{cols} matrix is too large to index")
            }
            Self::BadIndptr { row } => write!(
                f,
                "CSR indptr is malformed at row {row} (must have rows+1 entries, start at 0, never decrease, end at nnz)"
            ),
            Self::BadColumnIndex { row, col } => write!(
                f,
                "CSR column index {col} in row {row} is out of range or not strictly increasing"
            ),
            Self::IndicesValuesMismatch { indices, values } => write!(
                f,
                "CSR has {indices} column indices but {values} values"
            ),
            Self::NonFinite { row, col } => {
                write!(f, "matrix weight at ({row}, {col}) is NaN or infinite")
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for MatrixError {}

/// Number of partial sums per row (see the module docs).
pub const LANES: usize = 8;

/// Combines the lanes in the order of an 8-lane horizontal reduction, then adds `init`.
#[inline]
fn reduce_lanes<T: Scalar>(acc: [T; LANES], init: T) -> T {
    let h = [
        acc[0] + acc[4],
        acc[1] + acc[5],
        acc[2] + acc[6],
        acc[3] + acc[7],
    ];
    init + ((h[0] + h[2]) + (h[1] + h[3]))
}

/// `init` + the dense row · `x`, in the lane order of the module docs.
#[inline]
fn dot_dense_row<T: Scalar>(row: &[T], x: &[T], init: T) -> T {
    let mut acc = [T::zero(); LANES];
    let (row_chunks, x_chunks) = (row.chunks_exact(LANES), x.chunks_exact(LANES));
    let (row_tail, x_tail) = (row_chunks.remainder(), x_chunks.remainder());
    for (r, xs) in row_chunks.zip(x_chunks) {
        for l in 0..LANES {
            acc[l] = r[l].mul_add(xs[l], acc[l]);
        }
    }
    for (l, (&a, &b)) in row_tail.iter().zip(x_tail).enumerate() {
        acc[l] = a.mul_add(b, acc[l]);
    }
    reduce_lanes(acc, init)
}

/// `init` + the CSR row · `x`, in the lane order of the module docs.
#[inline]
fn dot_csr_row<T: Scalar>(indices: &[u32], values: &[T], x: &[T], init: T) -> T {
    let mut acc = [T::zero(); LANES];
    let (idx_chunks, val_chunks) = (indices.chunks_exact(LANES), values.chunks_exact(LANES));
    let (idx_tail, val_tail) = (idx_chunks.remainder(), val_chunks.remainder());
    for (js, vs) in idx_chunks.zip(val_chunks) {
        for l in 0..LANES {
            acc[l] = vs[l].mul_add(x[js[l] as usize], acc[l]);
        }
    }
    for (l, (&j, &v)) in idx_tail.iter().zip(val_tail).enumerate() {
        acc[l] = v.mul_add(x[j as usize], acc[l]);
    }
    reduce_lanes(acc, init)
}

/// Row-major dense matrix.
#[derive(Clone, Debug, PartialEq)]
pub struct Dense<T> {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<T>,
}

impl<T: Scalar> Dense<T> {
    pub fn zeros(rows: usize, cols: usize) -> Result<Self, MatrixError> {
        let len = rows
            .checked_mul(cols)
            .ok_or(MatrixError::DimensionOverflow { rows, cols })?;
        Ok(Self {
            rows,
            cols,
            data: vec![T::zero(); len],
        })
    }

    /// Wraps row-major `data`, checking its length and that every value is finite.
    pub fn new(rows: usize, cols: usize, data: Vec<T>) -> Result<Self, MatrixError> {
        let d = Self { rows, cols, data };
        d.validate()?;
        Ok(d)
    }

    /// Checks the invariants `new` establishes (for a matrix whose public fields were set
    /// directly, e.g. by a loader).
    pub fn validate(&self) -> Result<(), MatrixError> {
        let (rows, cols) = (self.rows, self.cols);
        let len = rows
            .checked_mul(cols)
            .ok_or(MatrixError::DimensionOverflow { rows, cols })?;
        if self.data.len() != len {
            return Err(MatrixError::DataLength {
                rows,
                cols,
                len: self.data.len(),
            });
        }
        if let Some(k) = self.data.iter().position(|v| !v.is_finite()) {
            return Err(MatrixError::NonFinite {
                row: k / cols.max(1),
                col: k % cols.max(1),
            });
        }
        Ok(())
    }

    #[inline]
    pub fn get(&self, row: usize, col: usize) -> T {
        self.data[row * self.cols + col]
    }

    #[inline]
    pub fn set(&mut self, row: usize, col: usize, value: T) {
        self.data[row * self.cols + col] = value;
    }

    pub fn row(&self, row: usize) -> &[T] {
        &self.data[row * self.cols..(row + 1) * self.cols]
    }

    /// y = A x. Panics if `x.len() != cols` or `y.len() != rows` (a programming error: the
    /// engine checks dimensions where user input enters).
    pub fn matvec(&self, x: &[T], y: &mut [T]) {
        self.check_dims(x, y);
        y.fill(T::zero());
        if T::dense_matvec_add_simd(self.cols, &self.data, x, y) {
            return;
        }
        for (r, yr) in y.iter_mut().enumerate() {
            *yr = dot_dense_row(self.row(r), x, T::zero());
        }
    }

    /// y += A x (each row's sum starts from the existing y value).
    pub fn matvec_add(&self, x: &[T], y: &mut [T]) {
        self.check_dims(x, y);
        if T::dense_matvec_add_simd(self.cols, &self.data, x, y) {
            return;
        }
        for (r, yr) in y.iter_mut().enumerate() {
            *yr = dot_dense_row(self.row(r), x, *yr);
        }
    }

    fn check_dims(&self, x: &[T], y: &[T]) {
        assert!(
            x.len() == self.cols && y.len() == self.rows,
            "matvec: {}x{} matrix with x of {} and y of {}",
            self.rows,
            self.cols,
            x.len(),
            y.len()
        );
    }

    /// Converts every entry to another scalar type.
    pub fn cast<U: Scalar>(&self) -> Dense<U> {
        Dense {
            rows: self.rows,
            cols: self.cols,
            data: self.data.iter().map(|v| U::from_f64(v.to_f64())).collect(),
        }
    }

    pub fn nnz(&self) -> usize {
        self.data.len()
    }

    pub fn bytes(&self) -> usize {
        self.data.len() * core::mem::size_of::<T>()
    }
}

/// Compressed sparse row matrix; column indices ascend within each row.
#[derive(Clone, Debug, PartialEq)]
pub struct Csr<T> {
    pub rows: usize,
    pub cols: usize,
    /// `rows + 1` offsets into `indices` / `values`.
    pub indptr: Vec<u32>,
    pub indices: Vec<u32>,
    pub values: Vec<T>,
}

impl<T: Scalar> Csr<T> {
    /// Checks every structural invariant `matvec` relies on, so a loaded file cannot make it
    /// index out of bounds.
    pub fn new(
        rows: usize,
        cols: usize,
        indptr: Vec<u32>,
        indices: Vec<u32>,
        values: Vec<T>,
    ) -> Result<Self, MatrixError> {
        let c = Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        };
        c.validate()?;
        Ok(c)
    }

    /// Checks the invariants `new` establishes (for a matrix whose public fields were set
    /// directly).
    pub fn validate(&self) -> Result<(), MatrixError> {
        let (rows, cols) = (self.rows, self.cols);
        let (indptr, indices, values) = (&self.indptr, &self.indices, &self.values);
        if rows >= u32::MAX as usize || cols >= u32::MAX as usize {
            return Err(MatrixError::DimensionOverflow { rows, cols });
        }
        if indices.len() != values.len() {
            return Err(MatrixError::IndicesValuesMismatch {
                indices: indices.len(),
                values: values.len(),
            });
        }
        if indptr.len() != rows + 1 || indptr[0] != 0 {
            return Err(MatrixError::BadIndptr { row: 0 });
        }
        for r in 0..rows {
            let (start, end) = (indptr[r] as usize, indptr[r + 1] as usize);
            if end < start || end > indices.len() {
                return Err(MatrixError::BadIndptr { row: r });
            }
            let mut prev: Option<u32> = None;
            for k in start..end {
                let c = indices[k];
                if c as usize >= cols || prev.is_some_and(|p| c <= p) {
                    return Err(MatrixError::BadColumnIndex { row: r, col: c });
                }
                if !values[k].is_finite() {
                    return Err(MatrixError::NonFinite {
                        row: r,
                        col: c as usize,
                    });
                }
                prev = Some(c);
            }
        }
        if indptr[rows] as usize != indices.len() {
            return Err(MatrixError::BadIndptr { row: rows });
        }
        Ok(())
    }

    /// Keeps the nonzero entries of a dense matrix.
    pub fn from_dense(d: &Dense<T>) -> Result<Self, MatrixError> {
        if d.rows >= u32::MAX as usize || d.cols >= u32::MAX as usize {
            return Err(MatrixError::DimensionOverflow {
                rows: d.rows,
                cols: d.cols,
            });
        }
        let mut indptr = Vec::with_capacity(d.rows + 1);
        let mut indices = Vec::new();
        let mut values = Vec::new();
        indptr.push(0u32);
        for r in 0..d.rows {
            for (c, &v) in d.row(r).iter().enumerate() {
                if v != T::zero() {
                    indices.push(c as u32);
                    values.push(v);
                }
            }
            let nnz = u32::try_from(indices.len()).map_err(|_| MatrixError::DimensionOverflow {
                rows: d.rows,
                cols: d.cols,
            })?;
            indptr.push(nnz);
        }
        Ok(Self {
            rows: d.rows,
            cols: d.cols,
            indptr,
            indices,
            values,
        })
    }

    pub fn to_dense(&self) -> Dense<T> {
        let mut data = vec![T::zero(); self.rows * self.cols];
        for r in 0..self.rows {
            let (s, e) = (self.indptr[r] as usize, self.indptr[r + 1] as usize);
            for k in s..e {
                data[r * self.cols + self.indices[k] as usize] = self.values[k];
            }
        }
        Dense {
            rows: self.rows,
            cols: self.cols,
            data,
        }
    }

    #[inline]
    fn row_range(&self, r: usize) -> core::ops::Range<usize> {
        self.indptr[r] as usize..self.indptr[r + 1] as usize
    }

    /// y = A x. Panics on a dimension mismatch (see `Dense::matvec`).
    pub fn matvec(&self, x: &[T], y: &mut [T]) {
        self.check_dims(x, y);
        y.fill(T::zero());
        if T::csr_matvec_add_simd(self.cols, &self.indptr, &self.indices, &self.values, x, y) {
            return;
        }
        for (r, yr) in y.iter_mut().enumerate() {
            let k = self.row_range(r);
            *yr = dot_csr_row(&self.indices[k.clone()], &self.values[k], x, T::zero());
        }
    }

    /// y += A x.
    pub fn matvec_add(&self, x: &[T], y: &mut [T]) {
        self.check_dims(x, y);
        if T::csr_matvec_add_simd(self.cols, &self.indptr, &self.indices, &self.values, x, y) {
            return;
        }
        for (r, yr) in y.iter_mut().enumerate() {
            let k = self.row_range(r);
            *yr = dot_csr_row(&self.indices[k.clone()], &self.values[k], x, *yr);
        }
    }

    fn check_dims(&self, x: &[T], y: &[T]) {
        assert!(
            x.len() == self.cols && y.len() == self.rows,
            "matvec: {}x{} CSR matrix with x of {} and y of {}",
            self.rows,
            self.cols,
            x.len(),
            y.len()
        );
    }

    pub fn cast<U: Scalar>(&self) -> Csr<U> {
        Csr {
            rows: self.rows,
            cols: self.cols,
            indptr: self.indptr.clone(),
            indices: self.indices.clone(),
            values: self
                .values
                .iter()
                .map(|v| U::from_f64(v.to_f64()))
                .collect(),
        }
    }

    pub fn nnz(&self) -> usize {
        self.values.len()
    }

    pub fn bytes(&self) -> usize {
        self.values.len() * core::mem::size_of::<T>()
            + (self.indices.len() + self.indptr.len()) * core::mem::size_of::<u32>()
    }
}

#[cfg(test)]
#[allow(clippy::needless_range_loop)] // index loops read like the formulas they check
mod tests {
    use super::*;
    use crate::rng::Rng;

    fn random_sparse_dense(rows: usize, cols: usize, density: f64, seed: u64) -> Dense<f64> {
        let mut rng = Rng::new(seed);
        let mut d = Dense::zeros(rows, cols).unwrap();
        for v in d.data.iter_mut() {
            if rng.bernoulli(density) {
                *v = rng.normal();
            }
        }
        d
    }

    #[test]
    fn csr_and_dense_matvec_agree() {
        let d = random_sparse_dense(37, 53, 0.2, 11);
        let c = Csr::from_dense(&d).unwrap();
        assert_eq!(c.to_dense(), d);
        let mut rng = Rng::new(12);
        let x: Vec<f64> = (0..53).map(|_| rng.uniform(-1.0, 1.0)).collect();
        let (mut yd, mut yc) = (vec![0.0; 37], vec![0.0; 37]);
        d.matvec(&x, &mut yd);
        c.matvec(&x, &mut yc);
        // Dense and CSR put a term in different lanes, so they agree to rounding, not bits.
        for r in 0..37 {
            assert!((yd[r] - yc[r]).abs() < 1e-12);
        }
        // Against a naive triple loop.
        for r in 0..37 {
            let naive: f64 = (0..53).map(|j| d.get(r, j) * x[j]).sum();
            assert!((naive - yd[r]).abs() < 1e-12);
        }
        let (mut ad, mut ac) = (vec![1.5; 37], vec![1.5; 37]);
        d.matvec_add(&x, &mut ad);
        c.matvec_add(&x, &mut ac);
        for r in 0..37 {
            assert!((ad[r] - 1.5 - yd[r]).abs() < 1e-12);
        }
        let c32: Csr<f32> = c.cast();
        let x32: Vec<f32> = x.iter().map(|&v| v as f32).collect();
        let mut y32 = vec![0.0f32; 37];
        c32.matvec(&x32, &mut y32);
        for r in 0..37 {
            assert!((f64::from(y32[r]) - yd[r]).abs() < 1e-4);
        }
    }

    #[test]
    fn rows_are_reduced_in_the_documented_lane_order() {
        // 11 entries: lanes 0..2 get two terms, lanes 3..7 one. Values chosen so that a
        // different order would round differently.
        let mut row = vec![1.0f64; 11];
        row[0] = 1e16;
        row[4] = -1e16;
        let x = vec![1.0f64; 11];
        let mut lanes = [0.0f64; LANES];
        for k in 0..11 {
            lanes[k % LANES] += row[k] * x[k];
        }
        let s = lanes;
        let want = 0.5 + (((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7])));
        let d = Dense::new(1, 11, row.clone()).unwrap();
        let c = Csr::from_dense(&d).unwrap();
        let (mut yd, mut yc) = ([0.5], [0.5]);
        d.matvec_add(&x, &mut yd);
        c.matvec_add(&x, &mut yc);
        assert_eq!(yd[0].to_bits(), want.to_bits());
        assert_eq!(yc[0].to_bits(), want.to_bits());
        let sequential = row.iter().zip(&x).fold(0.5, |acc, (a, b)| a * b + acc);
        assert_ne!(
            sequential.to_bits(),
            want.to_bits(),
            "test values do not tell orders apart"
        );
    }

    #[test]
    fn csr_validation_names_the_problem() {
        assert_eq!(
            Csr::<f64>::new(2, 2, vec![0, 1], vec![0], vec![1.0]),
            Err(MatrixError::BadIndptr { row: 0 })
        );
        assert_eq!(
            Csr::<f64>::new(2, 2, vec![0, 1, 2], vec![0, 2], vec![1.0, 1.0]),
            Err(MatrixError::BadColumnIndex { row: 1, col: 2 })
        );
        assert_eq!(
            Csr::<f64>::new(1, 3, vec![0, 2], vec![1, 1], vec![1.0, 1.0]),
            Err(MatrixError::BadColumnIndex { row: 0, col: 1 })
        );
        assert_eq!(
            Csr::<f64>::new(2, 2, vec![0, 2, 1], vec![0, 1], vec![1.0, 1.0]),
            Err(MatrixError::BadIndptr { row: 1 })
        );
        assert_eq!(
            Csr::<f64>::new(1, 2, vec![0, 1], vec![0], vec![f64::NAN]),
            Err(MatrixError::NonFinite { row: 0, col: 0 })
        );
        assert_eq!(
            Csr::<f64>::new(1, 2, vec![0, 1], vec![0], vec![1.0, 2.0]),
            Err(MatrixError::IndicesValuesMismatch {
                indices: 1,
                values: 2
            })
        );
        assert!(Csr::<f64>::new(2, 2, vec![0, 1, 2], vec![1, 0], vec![1.0, 2.0]).is_ok());
        assert_eq!(
            Dense::<f32>::new(2, 2, vec![1.0; 3]),
            Err(MatrixError::DataLength {
                rows: 2,
                cols: 2,
                len: 3
            })
        );
        assert!(matches!(
            Dense::<f32>::zeros(usize::MAX, 2),
            Err(MatrixError::DimensionOverflow { .. })
        ));
    }
}
