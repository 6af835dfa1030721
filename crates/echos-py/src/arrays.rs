//! NumPy input and output plumbing: validates a 2-D float array and lends it to the engine without
//! a copy when its dtype and layout allow, and hands Rust buffers to NumPy without a copy.

use std::sync::atomic::{AtomicU64, Ordering};

use numpy::ndarray::Array2;
use numpy::{
    Element, IntoPyArray, PyArray1, PyArray2, PyArrayMethods, PyUntypedArray, PyUntypedArrayMethods,
};
use pyo3::exceptions::{PyTypeError, PyValueError};
use pyo3::prelude::*;

/// How many inputs had to be copied (dtype conversion or a non-contiguous layout) since the
/// module was loaded. Exposed to Python as `echos._echos._input_copies()` so the tests can check
/// that the zero-copy path really is taken.
static INPUT_COPIES: AtomicU64 = AtomicU64::new(0);

pub fn input_copies() -> u64 {
    INPUT_COPIES.load(Ordering::Relaxed)
}

/// The float types the engine computes in.
pub trait Float: Element + Copy + Send + Sync + 'static {
    const NAME: &'static str;
    fn from_f32(v: f32) -> Self;
    fn from_f64(v: f64) -> Self;
    fn is_finite(self) -> bool;
}

impl Float for f32 {
    const NAME: &'static str = "float32";
    fn from_f32(v: f32) -> Self {
        v
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
    fn is_finite(self) -> bool {
        f32::is_finite(self)
    }
}

impl Float for f64 {
    const NAME: &'static str = "float64";
    fn from_f32(v: f32) -> Self {
        f64::from(v)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
    fn is_finite(self) -> bool {
        f64::is_finite(self)
    }
}

/// A validated (rows × cols) row-major matrix of `T`, borrowed from NumPy or copied.
pub struct Matrix<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
}

fn type_name(obj: &Bound<'_, PyAny>) -> String {
    obj.get_type()
        .name()
        .map(|n| n.to_string())
        .unwrap_or_else(|_| "?".to_owned())
}

/// Checks `obj` is a 2-D float32/float64 array with at least one row and one column and only
/// finite values, then calls `f` with it as a row-major slice of `T`. The slice points into the
/// array itself when it is C-contiguous with dtype `T`; otherwise it is a converted copy.
pub fn with_matrix<T: Float, R>(
    obj: &Bound<'_, PyAny>,
    name: &str,
    f: impl FnOnce(Matrix<'_, T>) -> PyResult<R>,
) -> PyResult<R> {
    let arr = obj.cast::<PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of shape (timesteps, features), got {}",
            type_name(obj)
        ))
    })?;
    if arr.ndim() != 2 {
        return Err(PyValueError::new_err(format!(
            "{name} must have shape (timesteps, features), got an array of shape {:?}{}",
            arr.shape(),
            if arr.ndim() == 1 {
                " (for one feature use x.reshape(-1, 1))"
            } else {
                ""
            }
        )));
    }
    let (rows, cols) = (arr.shape()[0], arr.shape()[1]);
    if rows == 0 || cols == 0 {
        return Err(PyValueError::new_err(format!(
            "{name} is empty: shape ({rows}, {cols}); it needs at least one time step and one feature"
        )));
    }
    if let Ok(typed) = arr.cast::<PyArray2<T>>() {
        let view = typed
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))?;
        // as_slice also accepts Fortran order, whose memory order is not row-major.
        if typed.is_c_contiguous() {
            if let Ok(data) = view.as_slice() {
                check_finite(name, data, cols)?;
                return f(Matrix { data, rows, cols });
            }
        }
        let copy: Vec<T> = view.as_array().iter().copied().collect();
        return copied(name, copy, rows, cols, f);
    }
    let copy: Vec<T> = if let Ok(a) = arr.cast::<PyArray2<f32>>() {
        let view = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))?;
        view.as_array().iter().map(|&v| T::from_f32(v)).collect()
    } else if let Ok(a) = arr.cast::<PyArray2<f64>>() {
        let view = a
            .try_readonly()
            .map_err(|e| PyValueError::new_err(format!("{name} cannot be read: {e}")))?;
        view.as_array().iter().map(|&v| T::from_f64(v)).collect()
    } else {
        let dtype = arr
            .dtype()
            .str()
            .map(|s| s.to_string())
            .unwrap_or_else(|_| "?".to_owned());
        return Err(PyTypeError::new_err(format!(
            "{name} must have dtype float32 or float64, got {dtype}; convert it with {name}.astype(numpy.float64)"
        )));
    };
    copied(name, copy, rows, cols, f)
}

fn copied<T: Float, R>(
    name: &str,
    copy: Vec<T>,
    rows: usize,
    cols: usize,
    f: impl FnOnce(Matrix<'_, T>) -> PyResult<R>,
) -> PyResult<R> {
    INPUT_COPIES.fetch_add(1, Ordering::Relaxed);
    check_finite(name, &copy, cols)?;
    f(Matrix {
        data: &copy,
        rows,
        cols,
    })
}

/// NaN or an infinity anywhere in the input poisons every later state, so reject it up front
/// and say where it is.
fn check_finite<T: Float>(name: &str, data: &[T], cols: usize) -> PyResult<()> {
    match data.iter().position(|v| !v.is_finite()) {
        None => Ok(()),
        Some(i) => Err(PyValueError::new_err(format!(
            "{name} contains a NaN or infinite value at row {}, column {} ({} after conversion)",
            i / cols,
            i % cols,
            T::NAME
        ))),
    }
}

/// Hands a row-major buffer to NumPy as a (rows × cols) array without copying it.
pub fn to_numpy2<T: Float>(
    py: Python<'_>,
    data: Vec<T>,
    rows: usize,
    cols: usize,
) -> PyResult<Bound<'_, PyArray2<T>>> {
    let arr = Array2::from_shape_vec((rows, cols), data)
        .map_err(|e| PyValueError::new_err(format!("internal shape error: {e}")))?;
    Ok(arr.into_pyarray(py))
}

/// Hands a vector to NumPy as a 1-D array without copying it.
pub fn to_numpy1<T: Float>(py: Python<'_>, data: Vec<T>) -> Bound<'_, PyArray1<T>> {
    data.into_pyarray(py)
}
