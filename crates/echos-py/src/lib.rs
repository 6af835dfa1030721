//! The native half of the `echos` Python package (`echos._echos`): PyO3 bindings over the echo-os
//! engine. Thin by design: validation and NumPy plumbing here, numerics in echos-core/echos-host.
#![deny(unsafe_code)]

use pyo3::prelude::*;

#[pymodule]
fn _echos(m: &Bound<'_, PyModule>) -> PyResult<()> {
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    Ok(())
}
