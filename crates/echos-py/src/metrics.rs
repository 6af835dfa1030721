//! `echos.mse`, `rmse`, `nrmse`, `r2` and `memory_capacity`: the engine's metrics
//! (echos_core::metrics, computed in f64) on NumPy arrays.

use echos_core::metrics;
use numpy::{PyUntypedArray, PyUntypedArrayMethods};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::with_matrix;

/// Shape of a 1-D or 2-D array, checked; the values are read by `with_series`.
fn shape_of(obj: &Bound<'_, PyAny>, name: &str) -> PyResult<Vec<usize>> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray, got {}",
            obj.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    if arr.ndim() == 0 || arr.ndim() > 2 {
        return Err(PyValueError::new_err(format!(
            "{name} must be 1-D (timesteps,) or 2-D (timesteps, outputs), got shape {:?}",
            arr.shape()
        )));
    }
    Ok(arr.shape().to_vec())
}

/// Calls `f` with the values of a 1-D or 2-D float array in row-major order (as f64).
fn with_series<R>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    f: impl FnOnce(&[f64]) -> PyResult<R>,
) -> PyResult<R> {
    let shape = shape_of(obj, name)?;
    if shape.len() == 1 {
        let as2d = obj.call_method1("reshape", (-1, 1))?;
        with_matrix::<f64, _>(&as2d, name, |m| f(m.data))
    } else {
        with_matrix::<f64, _>(obj, name, |m| f(m.data))
    }
}

fn scored(
    y_true: &Bound<'_, PyAny>,
    y_pred: &Bound<'_, PyAny>,
    metric: fn(&[f64], &[f64]) -> Result<f64, metrics::MetricError>,
) -> PyResult<f64> {
    let (st, sp) = (shape_of(y_true, "y_true")?, shape_of(y_pred, "y_pred")?);
    if st != sp {
        return Err(PyValueError::new_err(format!(
            "y_true and y_pred must have the same shape, got {st:?} and {sp:?}"
        )));
    }
    with_series(y_true, "y_true", |t| {
        with_series(y_pred, "y_pred", |p| {
            metric(p, t).map_err(|e| PyValueError::new_err(e.to_string()))
        })
    })
}

/// Mean squared error over all values (outputs pooled).
#[pyfunction]
pub fn mse(y_true: &Bound<'_, PyAny>, y_pred: &Bound<'_, PyAny>) -> PyResult<f64> {
    scored(y_true, y_pred, metrics::mse)
}

/// Root mean squared error.
#[pyfunction]
pub fn rmse(y_true: &Bound<'_, PyAny>, y_pred: &Bound<'_, PyAny>) -> PyResult<f64> {
    scored(y_true, y_pred, metrics::rmse)
}

/// RMSE divided by the (population) standard deviation of `y_true`. (ReservoirPy's `nrmse`
/// divides by max − min by default; docs/python.md compares the conventions.)
#[pyfunction]
pub fn nrmse(y_true: &Bound<'_, PyAny>, y_pred: &Bound<'_, PyAny>) -> PyResult<f64> {
    scored(y_true, y_pred, metrics::nrmse)
}

/// Coefficient of determination 1 − SSE/SST (can be negative).
#[pyfunction]
pub fn r2(y_true: &Bound<'_, PyAny>, y_pred: &Bound<'_, PyAny>) -> PyResult<f64> {
    scored(y_true, y_pred, metrics::r2)
}

/// Jaeger's linear memory capacity Σ_k r²(u(t−k), y_k(t)) from an input series `u`
/// (shape (T,) or (T, 1)) and the recall outputs `recall` (shape (T, max_delay)), column k−1
/// being the readout trained to output u(t−k). The first max_delay steps are skipped.
#[pyfunction]
pub fn memory_capacity(u: &Bound<'_, PyAny>, recall: &Bound<'_, PyAny>) -> PyResult<f64> {
    let su = shape_of(u, "u")?;
    if su.len() == 2 && su[1] != 1 {
        return Err(PyValueError::new_err(format!(
            "u must be one input series, shape (T,) or (T, 1), got {su:?}"
        )));
    }
    let sr = shape_of(recall, "recall")?;
    if sr.len() != 2 || sr[0] != su[0] {
        return Err(PyValueError::new_err(format!(
            "recall must have shape (T, max_delay) with T = {} (the length of u), got {sr:?}",
            su[0]
        )));
    }
    let max_delay = sr[1];
    if su[0] <= max_delay {
        return Err(PyValueError::new_err(format!(
            "u has {} steps; it needs more than max_delay = {max_delay}",
            su[0]
        )));
    }
    with_series(u, "u", |uu| {
        with_series(recall, "recall", |rr| {
            metrics::memory_capacity(uu, rr, max_delay)
                .map_err(|e| PyValueError::new_err(e.to_string()))
        })
    })
}
