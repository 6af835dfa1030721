//! Matrix storage for reservoirs and readouts: row-major dense and CSR sparse, with the one
//! scalar matrix–vector product the engine uses. Each row's sum runs in storage (column index)
//! order, starting from the existing `y` value, so results are bit-reproducible; a SIMD kernel
//! (src/kernels/) may replace `dot_dense_row` / `dot_csr_row` as a separate, documented variant.

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

/// The dot product of one stored row with `x`, in index order. The single place the scalar
/// dense kernel lives.
#[inline]
fn dot_dense_row<T: Scalar>(row: &[T], x: &[T], init: T) -> T {
    let mut acc = init;
    for (&a, &b) in row.iter().zip(x) {
        acc = a.mul_add(b, acc);
    }
    acc
}

/// The dot product of one CSR row with `x`, in stored (ascending column) order.
#[inline]
fn dot_csr_row<T: Scalar>(indices: &[u32], values: &[T], x: &[T], init: T) -> T {
    let mut acc = init;
    for (&j, &v) in indices.iter().zip(values) {
        acc = v.mul_add(x[j as usize], acc);
    }
    acc
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
        let len = rows
            .checked_mul(cols)
            .ok_or(MatrixError::DimensionOverflow { rows, cols })?;
        if data.len() != len {
            return Err(MatrixError::DataLength {
                rows,
                cols,
                len: data.len(),
            });
        }
        if let Some(k) = data.iter().position(|v| !v.is_finite()) {
            return Err(MatrixError::NonFinite {
                row: k / cols.max(1),
                col: k % cols.max(1),
            });
        }
        Ok(Self { rows, cols, data })
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
        for (r, yr) in y.iter_mut().enumerate() {
            *yr = dot_dense_row(self.row(r), x, T::zero());
        }
    }

    /// y += A x (each row's sum starts from the existing y value).
    pub fn matvec_add(&self, x: &[T], y: &mut [T]) {
        self.check_dims(x, y);
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
        Ok(Self {
            rows,
            cols,
            indptr,
            indices,
            values,
        })
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
        for (r, yr) in y.iter_mut().enumerate() {
            let k = self.row_range(r);
            *yr = dot_csr_row(&self.indices[k.clone()], &self.values[k], x, T::zero());
        }
    }

    /// y += A x.
    pub fn matvec_add(&self, x: &[T], y: &mut [T]) {
        self.check_dims(x, y);
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
        // Zeros add exactly, so the two orders give the same bits.
        assert_eq!(yd, yc);
        // Against a naive triple loop.
        for r in 0..37 {
            let naive: f64 = (0..53).map(|j| d.get(r, j) * x[j]).sum();
            assert!((naive - yd[r]).abs() < 1e-12);
        }
        let (mut ad, mut ac) = (vec![1.5; 37], vec![1.5; 37]);
        d.matvec_add(&x, &mut ad);
        c.matvec_add(&x, &mut ac);
        assert_eq!(ad, ac);
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
