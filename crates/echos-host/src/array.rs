//! A time series as the host passes it around: `rows` time steps × `cols` features, row-major
//! f64, every value finite (the readers check; [`Array2::new`] checks too).

use crate::error::DataError;

/// Row-major (time steps, features) array of finite f64 values — ReservoirPy's layout.
#[derive(Clone, Debug, PartialEq)]
pub struct Array2 {
    rows: usize,
    cols: usize,
    data: Vec<f64>,
}

impl Array2 {
    /// Wraps `data` as `rows × cols`; rejects a length mismatch and NaN/inf (naming the cell).
    pub fn new(rows: usize, cols: usize, data: Vec<f64>) -> Result<Self, DataError> {
        let expected = rows
            .checked_mul(cols)
            .ok_or(DataError::ShapeOverflow { rows, cols })?;
        if expected != data.len() {
            return Err(DataError::ShapeMismatch {
                rows,
                cols,
                len: data.len(),
            });
        }
        check_finite(&data, cols)?;
        Ok(Self { rows, cols, data })
    }

    /// A single-feature series (`n × 1`).
    pub fn column(data: Vec<f64>) -> Result<Self, DataError> {
        let n = data.len();
        Self::new(n, 1, data)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn cols(&self) -> usize {
        self.cols
    }

    pub fn data(&self) -> &[f64] {
        &self.data
    }

    pub fn into_data(self) -> Vec<f64> {
        self.data
    }

    /// Time step `t` (all features).
    pub fn row(&self, t: usize) -> &[f64] {
        &self.data[t * self.cols..(t + 1) * self.cols]
    }

    /// Feature `j` over all time steps.
    pub fn column_values(&self, j: usize) -> Vec<f64> {
        (0..self.rows)
            .map(|t| self.data[t * self.cols + j])
            .collect()
    }
}

/// First NaN/inf in row-major `data` with `cols` columns, reported as (row, column), 0-based.
pub(crate) fn check_finite(data: &[f64], cols: usize) -> Result<(), DataError> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(DataError::NonFinite {
            row: i / cols.max(1),
            col: i % cols.max(1),
            value: data[i],
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_length_mismatch_and_nan() {
        assert!(matches!(
            Array2::new(2, 2, vec![0.0; 3]),
            Err(DataError::ShapeMismatch { len: 3, .. })
        ));
        let e = Array2::new(2, 2, vec![0.0, 1.0, f64::NAN, 0.0]).unwrap_err();
        assert!(matches!(e, DataError::NonFinite { row: 1, col: 0, .. }));
        let a = Array2::new(2, 2, vec![0.0, 1.0, 2.0, 3.0]).unwrap();
        assert_eq!(a.row(1), &[2.0, 3.0]);
        assert_eq!(a.column_values(1), vec![1.0, 3.0]);
    }
}
