//! Pipeline sources: what feeds the reservoir one input vector per period.
//!
//! A source is polled once per period with the period's timing ([`Tick`]) and either writes
//! the input, says it has none yet, or says it has ended; it must not allocate, lock or block.
//! Anything slow — reading a file, parsing stdin — happens before the loop (a series is loaded
//! whole) or on a thread of the source's own that hands rows over through `rtrb`, the
//! wait-free in-process ring. The event-recording source (`crate::event_source`) is one
//! more: a reader thread replays the file's events through the engine's event queue, and
//! `poll` encodes the bin that ended into `u`.

use std::io::{BufRead, Read};
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use echos_host::Array2;

/// The timing of one period, as the loop sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Index of the period (job) being run.
    pub period: u64,
    /// CLOCK_MONOTONIC of the first release.
    pub start_ns: u64,
    /// When this period was released.
    pub release_ns: u64,
    /// When the loop woke for it.
    pub now_ns: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Poll {
    /// `u` holds this period's input.
    Ready,
    /// No input this period (counted as source idle; the reservoir does not step).
    Idle,
    /// No more input: the run ends.
    End,
}

#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    #[error("{what}: {source}")]
    Read {
        what: String,
        source: echos_host::DataError,
    },
    #[error("{what} has {got} columns but the model takes {expected} inputs")]
    Columns {
        what: String,
        expected: usize,
        got: usize,
    },
    #[error("{what} has no rows")]
    Empty { what: String },
    #[error("standard input, line {line}: {reason}")]
    Line { line: u64, reason: String },
    #[error("standard input: {0}")]
    Io(std::io::Error),
    #[error("source.path: {what}: {reason}")]
    Events { what: String, reason: String },
}

pub trait Source: Send {
    /// Values per input vector.
    fn inputs(&self) -> usize;
    /// This period's input into `u` (`inputs()` long). Called on the loop thread: no
    /// allocation, lock or blocking call.
    fn poll(&mut self, tick: &Tick, u: &mut [f64]) -> Poll;
    /// Words for reports ("series x.npy (500 rows)").
    fn describe(&self) -> String;
    /// Words for the final report (events replayed, dropped), if any.
    fn note(&self) -> Option<String> {
        None
    }
    /// After the loop: an error the source met (a bad stdin line), if any.
    fn finish(&mut self) -> Result<(), SourceError> {
        Ok(())
    }
}

/// A series held in memory, one row per period; optionally repeated.
pub struct SeriesSource {
    data: Vec<f64>,
    cols: usize,
    rows: usize,
    next: usize,
    repeat: bool,
    what: String,
}

impl SeriesSource {
    pub fn new(series: Array2, repeat: bool, what: impl Into<String>) -> Result<Self, SourceError> {
        let what = what.into();
        if series.rows() == 0 || series.cols() == 0 {
            return Err(SourceError::Empty { what });
        }
        Ok(Self {
            cols: series.cols(),
            rows: series.rows(),
            data: series.into_data(),
            next: 0,
            repeat,
            what,
        })
    }

    /// Loads a `.npy`/`.csv` series.
    pub fn open(path: &Path, repeat: bool) -> Result<Self, SourceError> {
        let what = format!("series {}", path.display());
        let a = echos_host::read_array(path).map_err(|source| SourceError::Read {
            what: what.clone(),
            source,
        })?;
        Self::new(a, repeat, what)
    }

    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Checks the series against the model's input count.
    pub fn expect_inputs(&self, inputs: usize) -> Result<(), SourceError> {
        if self.cols != inputs {
            return Err(SourceError::Columns {
                what: self.what.clone(),
                expected: inputs,
                got: self.cols,
            });
        }
        Ok(())
    }
}

impl Source for SeriesSource {
    fn inputs(&self) -> usize {
        self.cols
    }

    #[inline]
    fn poll(&mut self, _tick: &Tick, u: &mut [f64]) -> Poll {
        if self.next == self.rows {
            if !self.repeat {
                return Poll::End;
            }
            self.next = 0;
        }
        let at = self.next * self.cols;
        u.copy_from_slice(&self.data[at..at + self.cols]);
        self.next += 1;
        Poll::Ready
    }

    fn describe(&self) -> String {
        format!(
            "{} ({} rows × {}{})",
            self.what,
            self.rows,
            self.cols,
            if self.repeat { ", repeated" } else { "" }
        )
    }
}

/// Longest stdin line accepted (a row of numbers), so a hostile input cannot grow a buffer.
pub const MAX_LINE_BYTES: u64 = 1 << 20;

/// Rows read from a byte stream (standard input) by a thread of its own: one row of
/// `inputs` numbers per line, separated by commas or white space; empty lines and lines
/// starting with '#' are skipped. A period with no row ready is idle; end of input ends
/// the run once every row read has been used.
pub struct StdinSource {
    rows: rtrb::Consumer<f64>,
    inputs: usize,
    done: Arc<AtomicBool>,
    error: Arc<Mutex<Option<SourceError>>>,
    reader: Option<std::thread::JoinHandle<()>>,
}

impl StdinSource {
    /// Reads the process's standard input.
    pub fn stdin(inputs: usize) -> Result<Self, SourceError> {
        Self::from_reader(std::io::stdin(), inputs, 4096)
    }

    /// Reads `reader`; up to `buffered_rows` rows wait between the reader and the loop.
    pub fn from_reader<R: Read + Send + 'static>(
        reader: R,
        inputs: usize,
        buffered_rows: usize,
    ) -> Result<Self, SourceError> {
        let slots = inputs
            .max(1)
            .checked_mul(buffered_rows.max(1))
            .filter(|&n| n <= 1 << 24)
            .ok_or(SourceError::Line {
                line: 0,
                reason: "the row buffer would be too large".into(),
            })?;
        let (mut tx, rx) = rtrb::RingBuffer::<f64>::new(slots);
        let done = Arc::new(AtomicBool::new(false));
        let error = Arc::new(Mutex::new(None));
        let (done2, error2) = (done.clone(), error.clone());
        let reader = std::thread::Builder::new()
            .name("echos-rt-stdin".into())
            .spawn(move || {
                let result = read_rows(reader, inputs, &mut tx);
                if let Err(e) = result {
                    if let Ok(mut slot) = error2.lock() {
                        *slot = Some(e);
                    }
                }
                done2.store(true, Ordering::Release);
            })
            .map_err(SourceError::Io)?;
        Ok(Self {
            rows: rx,
            inputs,
            done,
            error,
            reader: Some(reader),
        })
    }
}

fn read_rows<R: Read>(
    reader: R,
    inputs: usize,
    tx: &mut rtrb::Producer<f64>,
) -> Result<(), SourceError> {
    let mut reader = std::io::BufReader::new(reader);
    let mut line = Vec::new();
    let mut row = Vec::with_capacity(inputs);
    let mut number = 0u64;
    loop {
        line.clear();
        let n = (&mut reader)
            .take(MAX_LINE_BYTES + 1)
            .read_until(b'\n', &mut line)
            .map_err(SourceError::Io)?;
        if n == 0 {
            return Ok(());
        }
        number += 1;
        if n as u64 > MAX_LINE_BYTES {
            return Err(SourceError::Line {
                line: number,
                reason: format!("longer than {MAX_LINE_BYTES} bytes"),
            });
        }
        let text = std::str::from_utf8(&line).map_err(|_| SourceError::Line {
            line: number,
            reason: "not UTF-8 text".into(),
        })?;
        let text = text.trim();
        if text.is_empty() || text.starts_with('#') {
            continue;
        }
        row.clear();
        for field in text
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|f| !f.is_empty())
        {
            let v: f64 = field.parse().map_err(|_| SourceError::Line {
                line: number,
                reason: format!("{field:?} is not a number"),
            })?;
            if !v.is_finite() {
                return Err(SourceError::Line {
                    line: number,
                    reason: format!("{field} is not finite"),
                });
            }
            if row.len() == inputs {
                return Err(SourceError::Line {
                    line: number,
                    reason: format!("more than the model's {inputs} inputs"),
                });
            }
            row.push(v);
        }
        if row.len() != inputs {
            return Err(SourceError::Line {
                line: number,
                reason: format!("{} values; the model takes {inputs}", row.len()),
            });
        }
        // Wait (on this thread, never the loop's) for room for the whole row.
        loop {
            if tx.slots() >= inputs {
                if let Ok(chunk) = tx.write_chunk_uninit(inputs) {
                    chunk.fill_from_iter(row.iter().copied());
                    break;
                }
            }
            if tx.is_abandoned() {
                return Ok(());
            }
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }
}

impl Source for StdinSource {
    fn inputs(&self) -> usize {
        self.inputs
    }

    #[inline]
    fn poll(&mut self, _tick: &Tick, u: &mut [f64]) -> Poll {
        // Read `done` first: if the reader had finished, every row it wrote is visible now.
        let done = self.done.load(Ordering::Acquire);
        match self.rows.read_chunk(self.inputs) {
            Ok(chunk) => {
                let (a, b) = chunk.as_slices();
                u[..a.len()].copy_from_slice(a);
                u[a.len()..].copy_from_slice(b);
                chunk.commit_all();
                Poll::Ready
            }
            Err(_) if done => Poll::End,
            Err(_) => Poll::Idle,
        }
    }

    fn describe(&self) -> String {
        format!("standard input ({} values per line)", self.inputs)
    }

    fn finish(&mut self) -> Result<(), SourceError> {
        // The reader may still be blocked in read(2) on a terminal: do not join it then.
        if self.done.load(Ordering::Acquire) {
            if let Some(h) = self.reader.take() {
                let _ = h.join();
            }
        }
        match self.error.lock().ok().and_then(|mut e| e.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TICK: Tick = Tick {
        period: 0,
        start_ns: 0,
        release_ns: 0,
        now_ns: 0,
    };

    #[test]
    fn series_rows_in_order_then_end_or_repeat() {
        let a = Array2::new(3, 2, vec![1., 2., 3., 4., 5., 6.]).unwrap();
        let mut s = SeriesSource::new(a.clone(), false, "s").unwrap();
        let mut u = [0.0; 2];
        for want in [[1., 2.], [3., 4.], [5., 6.]] {
            assert_eq!(s.poll(&TICK, &mut u), Poll::Ready);
            assert_eq!(u, want);
        }
        assert_eq!(s.poll(&TICK, &mut u), Poll::End);
        let mut r = SeriesSource::new(a, true, "s").unwrap();
        for _ in 0..3 {
            r.poll(&TICK, &mut u);
        }
        assert_eq!(r.poll(&TICK, &mut u), Poll::Ready);
        assert_eq!(u, [1., 2.]);
        assert!(matches!(
            r.expect_inputs(3),
            Err(SourceError::Columns {
                expected: 3,
                got: 2,
                ..
            })
        ));
    }

    fn drain(s: &mut StdinSource, u: &mut [f64]) -> (Vec<Vec<f64>>, Poll) {
        let mut rows = Vec::new();
        loop {
            match s.poll(&TICK, u) {
                Poll::Ready => rows.push(u.to_vec()),
                Poll::Idle => std::thread::sleep(std::time::Duration::from_millis(1)),
                Poll::End => return (rows, Poll::End),
            }
        }
    }

    #[test]
    fn stdin_rows_arrive_whole_and_in_order() {
        let text = "# header\n1, 2\n\n3 4\n5,\t6\n";
        let mut s = StdinSource::from_reader(std::io::Cursor::new(text), 2, 1).unwrap();
        let mut u = [0.0; 2];
        let (rows, end) = drain(&mut s, &mut u);
        assert_eq!(rows, vec![vec![1., 2.], vec![3., 4.], vec![5., 6.]]);
        assert_eq!(end, Poll::End);
        assert!(s.finish().is_ok());
    }

    #[test]
    fn bad_stdin_lines_end_the_run_with_the_line_named() {
        for (text, reason) in [
            ("1,2\n3\n", "1 values"),
            ("1,2\n1,2,3\n", "more than"),
            ("1,x\n", "\"x\" is not a number"),
            ("nan,1\n", "not finite"),
        ] {
            let mut s = StdinSource::from_reader(std::io::Cursor::new(text), 2, 4).unwrap();
            let mut u = [0.0; 2];
            drain(&mut s, &mut u);
            let e = s.finish().unwrap_err().to_string();
            assert!(e.contains(reason) && e.contains("line"), "{text:?}: {e}");
        }
        let long = "1,".repeat(MAX_LINE_BYTES as usize);
        let mut s = StdinSource::from_reader(std::io::Cursor::new(long), 2, 4).unwrap();
        let mut u = [0.0; 2];
        drain(&mut s, &mut u);
        assert!(s.finish().unwrap_err().to_string().contains("longer than"));
    }
}
