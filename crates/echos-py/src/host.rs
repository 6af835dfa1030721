//! Built-in datasets and benchmark tasks from echos-host, for `echos.datasets` and
//! `echos.tasks` (the pure-Python modules document them; these are their native halves).

use std::path::PathBuf;

use echos_host::datasets::{self, Integrator, MackeyGlass};
use echos_host::tasks::{self, TaskName, TaskOptions};
use numpy::PyArray2;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;

use crate::arrays::to_numpy2;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

fn count(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&n| n > 0 && n <= 100_000_000)
        .ok_or_else(|| {
            PyValueError::new_err(format!("{name} must be between 1 and 100,000,000, got {v}"))
        })
}

fn seed_of(v: i64) -> PyResult<u64> {
    u64::try_from(v).map_err(|_| PyValueError::new_err(format!("seed must be ≥ 0, got {v}")))
}

#[pyfunction]
#[pyo3(signature = (n, tau, beta, gamma, exponent, dt, subsample, integrator, discard, seed))]
#[allow(clippy::too_many_arguments)]
pub fn _mackey_glass<'py>(
    py: Python<'py>,
    n: i64,
    tau: f64,
    beta: f64,
    gamma: f64,
    exponent: f64,
    dt: f64,
    subsample: i64,
    integrator: &str,
    discard: i64,
    seed: i64,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = count("n", n)?;
    let mg = MackeyGlass {
        tau,
        beta,
        gamma,
        n: exponent,
        dt,
        subsample: count("subsample", subsample)?,
        integrator: match integrator {
            "euler" => Integrator::Euler,
            "rk4" => Integrator::Rk4,
            other => {
                return Err(PyValueError::new_err(format!(
                    "integrator must be \"euler\" or \"rk4\", got {other:?}"
                )))
            }
        },
        discard: usize::try_from(discard)
            .map_err(|_| PyValueError::new_err(format!("discard must be ≥ 0, got {discard}")))?,
        seed: seed_of(seed)?,
    };
    let data = py.detach(|| mg.generate(n)).map_err(value_error)?;
    to_numpy2(py, data, n, 1)
}

/// NARMA10's (input, target) arrays.
type ArrayPair<'py> = (Bound<'py, PyArray2<f64>>, Bound<'py, PyArray2<f64>>);

#[pyfunction]
pub fn _narma10<'py>(py: Python<'py>, n: i64, seed: i64) -> PyResult<ArrayPair<'py>> {
    let n = count("n", n)?;
    let seed = seed_of(seed)?;
    let (u, y) = py
        .detach(|| datasets::narma10(n, seed))
        .map_err(value_error)?;
    Ok((to_numpy2(py, u, n, 1)?, to_numpy2(py, y, n, 1)?))
}

#[pyfunction]
pub fn _lorenz<'py>(
    py: Python<'py>,
    n: i64,
    dt: f64,
    start: [f64; 3],
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let n = count("n", n)?;
    let a = py
        .detach(|| datasets::lorenz(n, dt, start))
        .map_err(value_error)?;
    let (rows, cols) = (a.rows(), a.cols());
    to_numpy2(py, a.into_data(), rows, cols)
}

#[pyfunction]
pub fn _santafe(py: Python<'_>, shared_data: PathBuf) -> PyResult<Bound<'_, PyArray2<f64>>> {
    if !shared_data.is_dir() {
        return Err(PyOSError::new_err(format!(
            "shared data directory {} does not exist",
            shared_data.display()
        )));
    }
    let a = datasets::santafe(&shared_data).map_err(|e| PyOSError::new_err(e.to_string()))?;
    let (rows, cols) = (a.rows(), a.cols());
    to_numpy2(py, a.into_data(), rows, cols)
}

/// Runs a named task and returns its report as JSON text (the CLI's `--json` object).
#[pyfunction]
#[pyo3(signature = (name, units, seed, runs, shared_data))]
pub fn _run_task(
    py: Python<'_>,
    name: &str,
    units: Option<i64>,
    seed: i64,
    runs: Option<i64>,
    shared_data: Option<PathBuf>,
) -> PyResult<String> {
    let task: TaskName = name.parse().map_err(value_error)?;
    let opts = TaskOptions {
        units: units.map(|u| count("units", u)).transpose()?,
        seed: seed_of(seed)?,
        runs: runs.map(|r| count("runs", r)).transpose()?,
        shared_data,
    };
    let report = py
        .detach(|| tasks::run(task, &opts, &mut |_| {}))
        .map_err(value_error)?;
    serde_json::to_string(&report).map_err(value_error)
}
