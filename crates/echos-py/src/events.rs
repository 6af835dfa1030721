//! Event-camera files for `echos.events` (python/echos/events.py is the documented half):
//! reading whole files or chunks, writing, file summaries and the time-binned encoders, all
//! from echos_host::events.
//!
//! Whole files (`_events_read`): the decoder fills a 256 KiB batch that stays in cache and each
//! batch is written once, as words, into an output reserved from the reader's size hint; that
//! output becomes the NumPy array's memory (no zero-fill, no rewrite pass over the array).
//! Chunks (`_EventStream`): the decoder writes events straight into a `Vec<DvsEvent>`; that allocation,
//! rewritten in place as two little-endian u64 words per event (`t`, then `x | y << 16 |
//! p << 32` with the padding bytes zeroed, which is `DvsEvent`'s `#[repr(C)]` layout), becomes
//! the NumPy array's memory, and Python views it with a 16-byte structured dtype. Safe code
//! only: the in-place rewrite is std's allocation-reusing `collect` (a test checks that the
//! pointer stays the same) and `Vec::into_flattened`.

use std::path::PathBuf;
use std::sync::Mutex;

use echos_core::events::{DvsEvent, TriggerEvent};
use echos_host::events::bins::{self, BinSpec, Representation};
use echos_host::events::{self, EventReader, RawEncoding, Summary, WriteOptions};
use numpy::{IntoPyArray, PyArray1, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyOSError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::PyDict;

use crate::arrays::to_numpy2;

fn py_err(e: events::EventsError) -> PyErr {
    match e {
        events::EventsError::Read { .. } | events::EventsError::Write { .. } => {
            PyOSError::new_err(e.to_string())
        }
        _ => PyValueError::new_err(e.to_string()),
    }
}

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// One event as the two u64 words of its `#[repr(C)]` layout, padding zeroed.
#[inline(always)]
fn event_words(e: &DvsEvent) -> [u64; 2] {
    let w = e.x as u64 | (e.y as u64) << 16 | (e.p as u64) << 32;
    [e.t.to_le(), w.to_le()]
}

/// The events' own allocation as `2 · len` u64 words (see the module note).
pub(crate) fn into_words(events: Vec<DvsEvent>) -> Vec<u64> {
    let pairs: Vec<[u64; 2]> = events.into_iter().map(|e| event_words(&e)).collect();
    pairs.into_flattened()
}

/// Events decoded per batch by [`read_words`]: 256 KiB, so the batch stays in L2 between the
/// decoder writing it and its move into the output.
const BATCH_EVENTS: usize = 1 << 14;

/// The rest of `reader`'s events as words. The decoder fills a cache-resident batch and each
/// batch is written once into the output, reserved up front from the reader's size hint: no
/// zero-filling of the output, no whole-array rewrite pass, no reallocation when the hint holds.
fn read_words(reader: &mut EventReader) -> Result<Vec<u64>, events::EventsError> {
    let mut batch = vec![DvsEvent::default(); BATCH_EVENTS];
    let mut words: Vec<[u64; 2]> = Vec::with_capacity(reader.events_hint().min(1 << 26));
    loop {
        let n = reader.read_into(&mut batch)?;
        if n == 0 {
            break;
        }
        words.extend(batch[..n].iter().map(event_words));
    }
    Ok(words.into_flattened())
}

/// Events from `2 · n` words laid out as [`into_words`] writes them.
fn from_words(words: &[u64]) -> PyResult<Vec<DvsEvent>> {
    if !words.len().is_multiple_of(2) {
        return Err(PyValueError::new_err(
            "events must be a structured array of 16-byte records (t, x, y, p)",
        ));
    }
    Ok(words
        .chunks_exact(2)
        .map(|w| {
            let v = u64::from_le(w[1]);
            DvsEvent {
                t: u64::from_le(w[0]),
                x: v as u16,
                y: (v >> 16) as u16,
                p: ((v >> 32) & 0xFF != 0) as u8,
            }
        })
        .collect())
}

fn triggers_array<'py>(py: Python<'py>, triggers: &[TriggerEvent]) -> Bound<'py, PyArray2<u64>> {
    let data: Vec<u64> = triggers
        .iter()
        .flat_map(|t| [t.t, t.channel as u64, t.value as u64])
        .collect();
    let n = triggers.len();
    numpy::ndarray::Array2::from_shape_vec((n, 3), data)
        .map(|a| a.into_pyarray(py))
        .unwrap_or_else(|_| PyArray2::zeros(py, (0, 3), false))
}

fn header_dict<'py>(py: Python<'py>, info: &events::HeaderInfo) -> PyResult<Bound<'py, PyDict>> {
    let d = PyDict::new(py);
    d.set_item("format", info.format.name())?;
    d.set_item("version", info.version.clone())?;
    d.set_item("width", info.width)?;
    d.set_item("height", info.height)?;
    d.set_item("date", info.date.clone())?;
    let h = PyDict::new(py);
    for (k, v) in &info.entries {
        h.set_item(k, v)?;
    }
    d.set_item("header", h)?;
    Ok(d)
}

/// Event words, triggers (n × 3: t, channel, value) and the header of a file.
type ReadResult<'py> = (
    Bound<'py, PyArray1<u64>>,
    Bound<'py, PyArray2<u64>>,
    Bound<'py, PyDict>,
);

/// A whole file.
#[pyfunction]
pub fn _events_read(py: Python<'_>, path: PathBuf) -> PyResult<ReadResult<'_>> {
    let (words, triggers, info) = py
        .detach(|| -> Result<_, events::EventsError> {
            let mut reader = events::open(&path)?;
            let words = read_words(&mut reader)?;
            Ok((words, reader.take_triggers(), reader.info().clone()))
        })
        .map_err(py_err)?;
    let header = header_dict(py, &info)?;
    let triggers = triggers_array(py, &triggers);
    Ok((words.into_pyarray(py), triggers, header))
}

/// One chunk's event words and triggers.
type ChunkResult<'py> = (Bound<'py, PyArray1<u64>>, Bound<'py, PyArray2<u64>>);

/// A file read chunk by chunk (Python's `echos.events.stream`).
#[pyclass(module = "echos._echos", name = "_EventStream")]
pub struct PyEventStream {
    /// `None` once exhausted or failed. A mutex because Python objects may be shared between
    /// threads; the reader itself is used by one call at a time.
    reader: Mutex<Option<EventReader>>,
}

#[pymethods]
impl PyEventStream {
    #[new]
    fn new(py: Python<'_>, path: PathBuf, chunk_events: i64) -> PyResult<Self> {
        let n = usize::try_from(chunk_events)
            .ok()
            .filter(|&n| n > 0 && n <= 1 << 30)
            .ok_or_else(|| {
                PyValueError::new_err(format!(
                    "chunk_events must be between 1 and 2**30, got {chunk_events}"
                ))
            })?;
        let reader = py
            .detach(|| events::open(&path))
            .map_err(py_err)?
            .with_chunk_events(n);
        Ok(Self {
            reader: Mutex::new(Some(reader)),
        })
    }

    /// The next chunk's words and its triggers, or `None` at the end.
    fn next_chunk<'py>(&self, py: Python<'py>) -> PyResult<Option<ChunkResult<'py>>> {
        let mut guard = self
            .reader
            .lock()
            .map_err(|_| PyValueError::new_err("the event stream failed in another thread"))?;
        let Some(reader) = guard.as_mut() else {
            return Ok(None);
        };
        let got = py.detach(|| -> Result<_, events::EventsError> {
            let mut buf = Vec::new();
            let n = reader.next_chunk(&mut buf)?;
            Ok((n, into_words(buf), reader.take_triggers()))
        });
        match got {
            Ok((0, _, _)) => {
                *guard = None;
                Ok(None)
            }
            Ok((_, words, triggers)) => Ok(Some((
                words.into_pyarray(py),
                triggers_array(py, &triggers),
            ))),
            Err(e) => {
                *guard = None;
                Err(py_err(e))
            }
        }
    }

    fn header<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyDict>>> {
        let guard = self
            .reader
            .lock()
            .map_err(|_| PyValueError::new_err("the event stream failed in another thread"))?;
        guard
            .as_ref()
            .map(|r| header_dict(py, r.info()))
            .transpose()
    }
}

/// Write `2 · n` event words (and no triggers) to `path`, the format by its extension.
#[pyfunction]
#[pyo3(signature = (path, words, width, height, evt2))]
pub fn _events_write(
    py: Python<'_>,
    path: PathBuf,
    words: PyReadonlyArray1<'_, u64>,
    width: u16,
    height: u16,
    evt2: bool,
) -> PyResult<u64> {
    let words = words.as_slice().map_err(value_error)?;
    let ev = from_words(words)?;
    let opts = WriteOptions {
        width,
        height,
        raw: if evt2 {
            RawEncoding::Evt2
        } else {
            RawEncoding::Evt3
        },
    };
    let s = py
        .detach(|| events::write_events(&path, &ev, &[], opts))
        .map_err(py_err)?;
    Ok(s.events)
}

/// The summary `echos events info --json` prints, as a dict.
#[pyfunction]
pub fn _events_info(py: Python<'_>, path: PathBuf) -> PyResult<Bound<'_, PyDict>> {
    let s: Summary = py
        .detach(|| events::open(&path).and_then(|r| Summary::of(r, |_| {})))
        .map_err(py_err)?;
    let d = header_dict(py, &s.info)?;
    let t = &s.tally;
    d.set_item("events", t.events)?;
    d.set_item("events_on", t.on)?;
    d.set_item("events_off", t.events - t.on)?;
    d.set_item("triggers", s.triggers)?;
    d.set_item("t_first_us", t.first_t)?;
    d.set_item("t_last_us", t.first_t.map(|_| t.last_t))?;
    d.set_item("duration_us", t.duration_us())?;
    d.set_item("mean_rate_hz", t.mean_rate_hz())?;
    d.set_item("peak_rate_hz", t.peak_rate_hz())?;
    d.set_item("out_of_bounds", s.stats.out_of_bounds)?;
    d.set_item("time_jumps_back", s.stats.time_jumps_back)?;
    if let Some(c) = s.aedat4 {
        d.set_item("frames", c.frames)?;
        d.set_item("imu_samples", c.imu_samples)?;
        d.set_item("trigger_records", c.trigger_records)?;
    }
    Ok(d)
}

/// One row per time bin of `bin_us` through the named encoder (float64, rows × cols).
#[pyfunction]
#[pyo3(signature = (words, repr, bin_us, grid, width, height, merge_polarity, tau_us, bins))]
#[allow(clippy::too_many_arguments)]
pub fn _events_encode<'py>(
    py: Python<'py>,
    words: PyReadonlyArray1<'py, u64>,
    repr: &str,
    bin_us: u64,
    grid: (u16, u16),
    width: u16,
    height: u16,
    merge_polarity: bool,
    tau_us: f32,
    bins: usize,
) -> PyResult<Bound<'py, PyArray2<f64>>> {
    let representation = match repr {
        "counts" => Representation::Counts,
        "timesurface" => Representation::TimeSurface { tau_us },
        "voxel" => Representation::Voxel { bins },
        other => {
            return Err(PyValueError::new_err(format!(
                "repr must be \"counts\", \"timesurface\" or \"voxel\", got {other:?}"
            )))
        }
    };
    let ev = from_words(words.as_slice().map_err(value_error)?)?;
    let spec = BinSpec {
        representation,
        bin_us,
        width,
        height,
        grid,
        merge_polarity,
    };
    let b = py
        .detach(|| bins::encode(&ev, &spec))
        .map_err(value_error)?;
    to_numpy2(py, b.values, b.rows, b.cols)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The words are the events' own memory, rewritten in place: the same allocation.
    #[test]
    fn words_reuse_the_event_allocation() {
        let ev: Vec<DvsEvent> = (0..1000)
            .map(|i| DvsEvent::new(i * 7, i as u16, (i * 3) as u16, (i % 2) as u8))
            .collect();
        let owned = ev.clone();
        let ptr = owned.as_ptr() as usize;
        let words = into_words(owned);
        assert_eq!(words.as_ptr() as usize, ptr, "into_words copied the events");
        assert_eq!(words.len(), 2000);
        assert_eq!(from_words(&words).unwrap(), ev);
        // the layout NumPy's structured dtype reads: t at 0, x at 8, y at 10, p at 12, zeros
        let bytes: Vec<u8> = words[2..4].iter().flat_map(|w| w.to_le_bytes()).collect();
        assert_eq!(&bytes[0..8], &7u64.to_le_bytes());
        assert_eq!(&bytes[8..16], &[1, 0, 3, 0, 1, 0, 0, 0]);
    }
}
