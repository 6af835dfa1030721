//! Pipeline sinks: where each period's output goes. The shared region's ring is the loop's
//! own (see `pipeline`); these are the others. A sink's `write` runs on the loop thread and
//! must not allocate, lock or block: it either takes the output or counts it dropped. Slow
//! work — formatting, writing to disk — happens on the sink's own thread or after the loop.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use echos_host::atomic::AtomicFile;

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    #[error("writing outputs to {}: {source}", path.display())]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{} outputs were dropped (the sink fell behind): the file would have gaps, so it was not written", dropped)]
    Dropped { dropped: u64 },
    #[error("the output writer thread failed")]
    Thread,
}

/// `Any` lets a caller take a concrete sink back out of a finished pipeline
/// (`Box<dyn Sink>` upcasts to `Box<dyn Any>`).
pub trait Sink: Send + std::any::Any {
    /// Takes output `y` of reservoir step `step`; false if it had to drop it. Loop thread:
    /// no allocation, lock or blocking.
    fn write(&mut self, step: u64, time_ns: u64, y: &[f64]) -> bool;
    /// After the loop: flush, write, report.
    fn finish(&mut self) -> Result<(), SinkError> {
        Ok(())
    }
    fn describe(&self) -> String;
    /// After `finish`: one line for the report (rows written, a score), if the sink has one.
    fn note(&self) -> Option<String> {
        None
    }
    /// A scoring sink's target for output 0 of the last step written and its running NRMSE,
    /// published in the shared region (loop thread: no allocation).
    fn score(&self) -> Option<Score> {
        None
    }
}

/// What [`Sink::score`] publishes (NaN: not known yet).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Score {
    pub target: f64,
    pub nrmse: f64,
}

/// Outputs kept in memory, with room for `capacity_rows` rows reserved up front (a row past
/// it is dropped, never reallocated).
pub struct MemorySink {
    values: Vec<f64>,
    cols: usize,
    capacity_rows: usize,
    dropped: u64,
}

impl MemorySink {
    pub fn new(cols: usize, capacity_rows: usize) -> Self {
        Self {
            values: Vec::with_capacity(cols * capacity_rows),
            cols,
            capacity_rows,
            dropped: 0,
        }
    }

    pub fn values(&self) -> &[f64] {
        &self.values
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
    }
}

impl Sink for MemorySink {
    #[inline]
    fn write(&mut self, _step: u64, _time_ns: u64, y: &[f64]) -> bool {
        if self.values.len() + y.len() > self.cols * self.capacity_rows {
            self.dropped += 1;
            return false;
        }
        self.values.extend_from_slice(y);
        true
    }

    fn describe(&self) -> String {
        format!("memory ({} rows)", self.capacity_rows)
    }
}

/// Scores outputs against a known target series as they arrive (one-step-ahead prediction in
/// the demo): running sums only, so the loop neither allocates nor stores outputs.
pub struct ScoreSink {
    target: Vec<f64>,
    cols: usize,
    rows: usize,
    next: usize,
    n: u64,
    sse: f64,
    sum: f64,
    sum_sq: f64,
    last_target: f64,
}

impl ScoreSink {
    /// `target` is rows × `cols`, row k the wanted output of step k (wrapping around).
    pub fn new(target: Vec<f64>, cols: usize) -> Self {
        let rows = target.len().checked_div(cols).unwrap_or(0);
        Self {
            target,
            cols,
            rows,
            next: 0,
            n: 0,
            sse: 0.0,
            sum: 0.0,
            sum_sq: 0.0,
            last_target: f64::NAN,
        }
    }

    /// Normalised root mean square error: RMSE / standard deviation of the targets seen.
    pub fn nrmse(&self) -> Option<f64> {
        if self.n == 0 {
            return None;
        }
        let n = self.n as f64;
        let var = self.sum_sq / n - (self.sum / n).powi(2);
        (var > 0.0).then(|| libm::sqrt(self.sse / n) / libm::sqrt(var))
    }
}

impl Sink for ScoreSink {
    #[inline]
    fn write(&mut self, _step: u64, _time_ns: u64, y: &[f64]) -> bool {
        if self.rows == 0 {
            return true;
        }
        let want = &self.target[self.next * self.cols..(self.next + 1) * self.cols];
        self.last_target = want.first().copied().unwrap_or(f64::NAN);
        for (&p, &t) in y.iter().zip(want) {
            self.sse += (p - t) * (p - t);
            self.sum += t;
            self.sum_sq += t * t;
            self.n += 1;
        }
        self.next = (self.next + 1) % self.rows;
        true
    }

    fn describe(&self) -> String {
        "score against the known next value".into()
    }

    fn note(&self) -> Option<String> {
        self.nrmse()
            .map(|e| format!("one-step prediction NRMSE {e:.4} over {} values", self.n))
    }

    fn score(&self) -> Option<Score> {
        Some(Score {
            target: self.last_target,
            nrmse: self.nrmse().unwrap_or(f64::NAN),
        })
    }
}

/// Outputs to a `.npy` or `.csv` file: the loop hands values to a writer thread through a
/// wait-free `rtrb` ring; the file appears atomically (temp + rename) when the run ends. A
/// `.npy` needs its row count in the header, so its rows go to an unnamed temp file first.
/// If any output was dropped the file is not written (a file with gaps would misalign rows).
pub struct FileSink {
    tx: rtrb::Producer<f64>,
    cols: usize,
    closing: Arc<AtomicBool>,
    writer: Option<std::thread::JoinHandle<Result<(), SinkError>>>,
    dropped: u64,
    path: PathBuf,
    rows: u64,
    rows_written: Option<u64>,
}

/// Values that may wait between the loop and the writer thread.
pub const FILE_QUEUE_VALUES: usize = 1 << 18;

impl FileSink {
    pub fn create(path: &Path, cols: usize) -> Result<Self, SinkError> {
        let npy = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("npy"));
        let err = |source| SinkError::Write {
            path: path.to_path_buf(),
            source,
        };
        // Open now, so a missing directory is an error before the loop starts.
        let file = AtomicFile::create(path).map_err(err)?;
        let raw = if npy {
            Some(tempfile::tempfile().map_err(err)?)
        } else {
            None
        };
        let (tx, mut rx) = rtrb::RingBuffer::<f64>::new(FILE_QUEUE_VALUES.max(cols * 16));
        let closing = Arc::new(AtomicBool::new(false));
        let closing2 = closing.clone();
        let path2 = path.to_path_buf();
        let writer = std::thread::Builder::new()
            .name("echos-rt-file".into())
            .spawn(move || write_rows(&mut rx, cols, file, raw, &closing2, &path2))
            .map_err(err)?;
        Ok(Self {
            tx,
            cols,
            closing,
            writer: Some(writer),
            dropped: 0,
            path: path.to_path_buf(),
            rows: 0,
            rows_written: None,
        })
    }
}

fn write_rows(
    rx: &mut rtrb::Consumer<f64>,
    cols: usize,
    mut file: AtomicFile,
    raw: Option<std::fs::File>,
    closing: &AtomicBool,
    path: &Path,
) -> Result<(), SinkError> {
    let err = |source| SinkError::Write {
        path: path.to_path_buf(),
        source,
    };
    let mut raw = raw.map(std::io::BufWriter::new);
    let mut rows = 0usize;
    let mut line = String::new();
    let mut row = vec![0.0; cols];
    loop {
        // Read `closing` before looking: once it is set, everything pushed is visible.
        let last = closing.load(Ordering::Acquire);
        let mut moved = false;
        while let Ok(chunk) = rx.read_chunk(cols) {
            let (a, b) = chunk.as_slices();
            row[..a.len()].copy_from_slice(a);
            row[a.len()..].copy_from_slice(b);
            chunk.commit_all();
            moved = true;
            rows += 1;
            match raw.as_mut() {
                Some(r) => {
                    for v in &row {
                        r.write_all(&v.to_le_bytes()).map_err(err)?;
                    }
                }
                None => {
                    line.clear();
                    echos_host::csv_table::push_row(&mut line, &row);
                    file.write_all(line.as_bytes()).map_err(err)?;
                }
            }
        }
        if last {
            break;
        }
        if !moved {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
    if let Some(r) = raw {
        let mut r = r.into_inner().map_err(|e| err(e.into_error()))?;
        use std::io::Seek;
        r.seek(std::io::SeekFrom::Start(0)).map_err(err)?;
        file.write_all(&echos_host::npy::header(rows, cols))
            .map_err(err)?;
        std::io::copy(&mut r, &mut file).map_err(err)?;
    }
    file.commit().map_err(err)
}

impl Sink for FileSink {
    #[inline]
    fn write(&mut self, _step: u64, _time_ns: u64, y: &[f64]) -> bool {
        match self.tx.write_chunk_uninit(self.cols) {
            Ok(chunk) => {
                chunk.fill_from_iter(y.iter().copied());
                self.rows += 1;
                true
            }
            Err(_) => {
                self.dropped += 1;
                false
            }
        }
    }

    fn finish(&mut self) -> Result<(), SinkError> {
        self.closing.store(true, Ordering::Release);
        let result = match self.writer.take() {
            Some(h) => h.join().map_err(|_| SinkError::Thread)?,
            None => Ok(()),
        };
        if self.dropped > 0 {
            // The committed file would have gaps: remove it rather than leave misaligned rows.
            let _ = std::fs::remove_file(&self.path);
            return Err(SinkError::Dropped {
                dropped: self.dropped,
            });
        }
        result?;
        self.rows_written = Some(self.rows);
        Ok(())
    }

    fn describe(&self) -> String {
        format!("file {}", self.path.display())
    }

    fn note(&self) -> Option<String> {
        self.rows_written
            .map(|rows| format!("wrote {rows} rows to {}", self.path.display()))
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Not finished (an error before the run): stop the writer; its AtomicFile is dropped
        // uncommitted, so no partial file appears.
        if let Some(h) = self.writer.take() {
            self.closing.store(true, Ordering::Release);
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn memory_sink_never_grows_past_its_reservation() {
        let mut s = MemorySink::new(2, 2);
        let cap = s.values.capacity();
        assert!(s.write(0, 0, &[1., 2.]));
        assert!(s.write(1, 0, &[3., 4.]));
        assert!(!s.write(2, 0, &[5., 6.]));
        assert_eq!(s.values(), &[1., 2., 3., 4.]);
        assert_eq!((s.dropped(), s.values.capacity()), (1, cap));
    }

    #[test]
    fn file_sinks_write_the_same_bytes_as_write_array() {
        let dir = tempfile::tempdir().unwrap();
        let rows: Vec<[f64; 2]> = (0..1000)
            .map(|i| [i as f64 * 0.1, -(i as f64).sqrt()])
            .collect();
        let a = echos_host::Array2::new(1000, 2, rows.iter().flatten().copied().collect()).unwrap();
        for ext in ["npy", "csv"] {
            let ours = dir.path().join(format!("ours.{ext}"));
            let theirs = dir.path().join(format!("theirs.{ext}"));
            let mut s = FileSink::create(&ours, 2).unwrap();
            for (k, r) in rows.iter().enumerate() {
                assert!(s.write(k as u64, 0, r));
            }
            s.finish().unwrap();
            echos_host::write_array(&theirs, &a).unwrap();
            assert_eq!(
                std::fs::read(&ours).unwrap(),
                std::fs::read(&theirs).unwrap(),
                "{ext}"
            );
        }
    }

    #[test]
    fn a_sink_into_a_missing_directory_fails_before_the_run() {
        let e = FileSink::create(Path::new("/nonexistent-dir-echos/y.npy"), 1)
            .err()
            .unwrap();
        assert!(e.to_string().contains("nonexistent-dir-echos"), "{e}");
    }
}
