//! The native half of the `echos` Python package (`echos._echos`): PyO3 bindings over the echo-os
//! engine. Thin by design: validation and NumPy plumbing here, numerics in echos-core/echos-host.
#![deny(unsafe_code)]

mod arrays;
mod engine;
mod esn;
mod events;
mod host;
mod metrics;
mod rt;
mod rwkv;

use pyo3::prelude::*;

/// Number of input arrays copied (dtype conversion or non-contiguous layout) since import; a
/// diagnostic for checking that the zero-copy path is taken.
#[pyfunction]
fn _input_copies() -> u64 {
    arrays::input_copies()
}

#[pymodule]
fn _echos(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_function(wrap_pyfunction!(_input_copies, m)?)?;
    m.add_class::<esn::PyEsn>()?;
    m.add_function(wrap_pyfunction!(esn::_esn_from_pickle, m)?)?;
    m.add_function(wrap_pyfunction!(host::_mackey_glass, m)?)?;
    m.add_function(wrap_pyfunction!(host::_narma10, m)?)?;
    m.add_function(wrap_pyfunction!(host::_lorenz, m)?)?;
    m.add_function(wrap_pyfunction!(host::_santafe, m)?)?;
    m.add_function(wrap_pyfunction!(host::_run_task, m)?)?;
    m.add_class::<events::PyEventStream>()?;
    m.add_function(wrap_pyfunction!(events::_events_read, m)?)?;
    m.add_function(wrap_pyfunction!(events::_events_write, m)?)?;
    m.add_function(wrap_pyfunction!(events::_events_info, m)?)?;
    m.add_function(wrap_pyfunction!(events::_events_encode, m)?)?;
    m.add_class::<rwkv::PyRwkv>()?;
    m.add_class::<rt::PyRtRegion>()?;
    m.add_function(wrap_pyfunction!(rt::_rt_attach, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::mse, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::rmse, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::nrmse, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::r2, m)?)?;
    m.add_function(wrap_pyfunction!(metrics::memory_capacity, m)?)?;
    Ok(())
}
