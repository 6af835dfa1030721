//! `echos.rt`'s native half: a hosted-runtime loop's shared region (/dev/shm/echos.NAME) opened
//! read-only through `echos_rt::shm::Attached` — the one reader that checks magic, layout
//! version, size and offsets — with consistent seqlock copies of the snapshot and the timing
//! counters. The zero-copy NumPy view of the live state is made by python/echos/rt.py from the
//! offsets given here.

use echos_rt::shm::{Attached, ShmError, SNAPSHOT_HEAD_WORDS};
use numpy::PyArray1;
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

fn shm_err(e: ShmError) -> PyErr {
    match e {
        ShmError::Io { .. } => PyOSError::new_err(e.to_string()),
        // Missing, not ours, another layout version, too small, inconsistent, bad name, busy.
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn json_err(e: serde_json::Error) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// (counters, state, output) of one consistent copy.
type SnapshotParts<'py> = (
    Bound<'py, PyDict>,
    Bound<'py, PyArray1<f64>>,
    Bound<'py, PyArray1<f64>>,
);

/// An attached region (read-only).
#[pyclass(module = "echos._echos", name = "_RtRegion")]
pub struct PyRtRegion {
    a: Attached,
}

#[pymethods]
impl PyRtRegion {
    /// The region file's path.
    #[getter]
    fn path(&self) -> String {
        self.a.path().display().to_string()
    }

    /// The header (JSON text: magic, layout_version, total_bytes, generation, owner_pid, …).
    fn header_json(&self) -> PyResult<String> {
        serde_json::to_string(self.a.header()).map_err(json_err)
    }

    /// Byte offsets of the live state and last output inside the file, and their lengths.
    fn state_location(&self) -> (usize, usize, usize, usize) {
        let l = self.a.layout();
        let state_word = l.snapshot_offset + 1 + SNAPSHOT_HEAD_WORDS;
        (
            state_word * 8,
            l.units,
            (state_word + l.units) * 8,
            l.outputs,
        )
    }

    fn owner_running(&self) -> bool {
        self.a.owner_running()
    }

    /// A consistent seqlock copy: (counters as JSON text, state, output).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<SnapshotParts<'py>> {
        let s = py.detach(|| self.a.snapshot()).map_err(shm_err)?;
        let d = PyDict::new(py);
        d.set_item("version", s.version)?;
        let h = &s.head;
        for (k, v) in [
            ("step", h.step),
            ("time_ns", h.time_ns),
            ("periods", h.periods),
            ("deadline_misses", h.deadline_misses),
            ("overruns", h.overruns),
            ("skipped_jobs", h.skipped_jobs),
            ("source_idle", h.source_idle),
            ("wakeup_last_ns", h.wakeup_last_ns),
            ("wakeup_max_ns", h.wakeup_max_ns),
            ("step_last_ns", h.step_last_ns),
            ("step_max_ns", h.step_max_ns),
            ("sink_drops", h.sink_drops),
        ] {
            d.set_item(k, v)?;
        }
        d.set_item("spectral_radius", h.spectral_radius)?;
        d.set_item("leak_rate", h.leak_rate)?;
        // 0: the loop counts no hardware events (no PMU here, or perf_event_open refused).
        d.set_item("hw_cycles_per_step", h.hw_cycles_per_step)?;
        d.set_item("hw_cache_hit_rate", h.hw_cache_hit_rate)?;
        let traj: Vec<(u64, Vec<f64>)> = s
            .trajectory
            .iter()
            .map(|r| (r.step, r.units.clone()))
            .collect();
        d.set_item("trajectory", traj)?;
        Ok((
            d,
            PyArray1::from_vec(py, s.state),
            PyArray1::from_vec(py, s.output),
        ))
    }

    /// The `/timing` answer of `echos rt serve` (JSON text): periods, misses, overruns and
    /// the wake-up and step percentiles and histograms.
    fn timing_json(&self, py: Python<'_>) -> PyResult<String> {
        let v = py
            .detach(|| echos_rt::introspect::timing(&self.a))
            .map_err(shm_err)?;
        serde_json::to_string(&v).map_err(json_err)
    }
}

/// Maps region `name` read-only; ValueError names what is wrong with a missing or foreign one.
#[pyfunction]
pub fn _rt_attach(py: Python<'_>, name: String) -> PyResult<PyRtRegion> {
    let a = py.detach(|| Attached::open(&name)).map_err(shm_err)?;
    Ok(PyRtRegion { a })
}
