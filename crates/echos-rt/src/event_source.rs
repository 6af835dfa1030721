//! The event-recording source: an event file (any format `echos_host::events::open` reads)
//! replayed at its own timestamps — in real time, or scaled by `speed` — through the engine's
//! temporal event queue (`echos_core::events::EventQueue`, SPSC, with its overflow and late
//! policies and counters) into an encoder stage (counts on a pooled grid, time surface or voxel
//! grid: `echos_host::events::bins`' encoders) that writes each period's input vector.
//!
//! Timing model. Recording time `t0` (the first event) is aligned with the loop's first
//! release; a period of `P` µs covers a bin of `bin_us = P × speed` recording µs. A reader
//! thread of its own (SCHED_OTHER, never the loop's) decodes the file and pushes each event
//! once its time has come — `t ≤ t0 + (now − start) × speed`, like a live camera — then
//! publishes a *watermark*: every event before it has been offered to the queue. The job of
//! period k encodes bin k − 1 (the bin that ended at release k) once the watermark has passed
//! its end; if the reader is late the period is idle and the bin waits for the next one. Bins
//! are never skipped, so the frames are those of encoding the file offline with the same bin
//! (`echos events encode`), whatever the timing, unless events were dropped (counted).

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use echos_core::events::{
    Consumer, DvsEvent, EventEncoder, EventQueue, LatePolicy, OverflowPolicy, Producer, PushError,
    PushOutcome, TimeBin,
};
use echos_host::events::bins::{self, BinSpec, Representation};
use echos_host::events::EventReader;

use crate::source::{Poll, Source, SourceError, Tick};

/// Events decoded per read on the reader thread.
const READ_CHUNK_EVENTS: usize = 4096;
/// Largest queue accepted (16 bytes per event: 256 MiB).
pub const MAX_QUEUE_EVENTS: usize = 1 << 24;

/// What the reader does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Overflow {
    /// Drop the new event and count it: the recording keeps real time.
    Drop,
    /// Wait on the reader thread until the loop frees room: nothing is lost, the replay falls
    /// behind real time instead (periods go idle).
    Wait,
}

/// A checked event-source description.
#[derive(Clone, Debug, PartialEq)]
pub struct EventSourceSpec {
    pub path: PathBuf,
    /// Recording µs per wall-clock µs.
    pub speed: f64,
    pub representation: Representation,
    /// Pooled grid; `None`: the sensor size.
    pub grid: Option<(u16, u16)>,
    pub merge_polarity: bool,
    /// Sensor size when the file's header does not give it.
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub queue_events: usize,
    pub overflow: Overflow,
}

/// Counters shared by the reader and the loop.
#[derive(Debug, Default)]
struct Shared {
    /// Recording time (µs, exclusive) before which every event has been offered to the queue;
    /// `u64::MAX` once the file is exhausted.
    watermark: AtomicU64,
    /// CLOCK_MONOTONIC of the loop's first release, set by the first poll (0: not yet).
    start_ns: AtomicU64,
    stop: AtomicBool,
    done: AtomicBool,
    offered: AtomicU64,
    /// Events of a bin that did not fit the bin buffer (the loop's side).
    bin_overflow: AtomicU64,
}

/// An event recording replayed through the event queue into an encoder (module docs).
pub struct EventSource {
    consumer: Consumer<'static>,
    shared: Arc<Shared>,
    error: Arc<Mutex<Option<SourceError>>>,
    reader: Option<std::thread::JoinHandle<()>>,
    encoder: Box<dyn EventEncoder + Send>,
    /// The events of the bin being gathered (capacity: the queue's).
    bin: Vec<DvsEvent>,
    bin_len: usize,
    frame: Vec<f32>,
    t0: u64,
    bin_us: u64,
    /// Index of the next bin to emit.
    next_bin: u64,
    /// The bin holding the last event, once the reader has finished (`u64::MAX` before).
    last_bin: u64,
    last_event_t: Arc<AtomicU64>,
    what: String,
    inputs: usize,
}

fn read_err(what: &str, e: impl std::fmt::Display) -> SourceError {
    SourceError::Events {
        what: what.to_string(),
        reason: e.to_string(),
    }
}

impl EventSource {
    /// Opens the recording, reads its first events (to learn `t0`), builds the encoder and
    /// the queue and starts the reader thread (which waits for the loop's first release).
    /// `period_ns` is the loop's period; `inputs` the model's input count.
    pub fn open(
        spec: &EventSourceSpec,
        period_ns: u64,
        inputs: usize,
    ) -> Result<Self, SourceError> {
        let what = format!("events {}", spec.path.display());
        let mut reader = echos_host::events::open(&spec.path)
            .map_err(|e| read_err(&what, e))?
            .with_chunk_events(READ_CHUNK_EVENTS);
        let info = reader.info().clone();
        let (width, height) = match (spec.width.or(info.width), spec.height.or(info.height)) {
            (Some(w), Some(h)) => (w, h),
            _ => {
                return Err(SourceError::Events {
                    what,
                    reason: format!(
                        "the {} header gives no sensor size: set source.width and source.height",
                        info.format.name()
                    ),
                })
            }
        };
        let grid = spec.grid.unwrap_or((width, height));
        if grid.0 > width || grid.1 > height || grid.0 == 0 || grid.1 == 0 {
            return Err(SourceError::Events {
                what,
                reason: format!(
                    "source.grid {}x{} does not fit the {width}x{height} sensor",
                    grid.0, grid.1
                ),
            });
        }
        let bin_us = ((period_ns as f64 / 1000.0) * spec.speed).round();
        if !(1.0..1e15).contains(&bin_us) {
            return Err(SourceError::Events {
                what,
                reason: format!(
                    "source.speed {} makes a bin of {bin_us} recording µs per period; it must be at least 1 µs",
                    spec.speed
                ),
            });
        }
        let bin_us = bin_us as u64;
        let bspec = BinSpec {
            representation: spec.representation,
            bin_us,
            width,
            height,
            grid,
            merge_polarity: spec.merge_polarity,
        };
        let encoder = bins::encoder(&bspec).map_err(|e| read_err(&what, e))?;
        let cols = encoder.output_len();
        if cols != inputs {
            return Err(SourceError::Columns {
                what: format!(
                    "{what} ({} on a {}x{} grid)",
                    repr_name(&spec.representation),
                    grid.0,
                    grid.1
                ),
                expected: inputs,
                got: cols,
            });
        }
        if spec.queue_events == 0 || spec.queue_events > MAX_QUEUE_EVENTS {
            return Err(SourceError::Events {
                what,
                reason: format!(
                    "source.queue_events {} must be from 1 to {MAX_QUEUE_EVENTS}",
                    spec.queue_events
                ),
            });
        }
        // The first events, read here so an empty or unreadable file fails before the loop.
        let mut first = Vec::with_capacity(READ_CHUNK_EVENTS);
        reader
            .next_chunk(&mut first)
            .map_err(|e| read_err(&what, e))?;
        let Some(t0) = first.first().map(|e| e.t) else {
            return Err(SourceError::Empty { what });
        };
        let overflow = match spec.overflow {
            Overflow::Drop => OverflowPolicy::DropNewest,
            Overflow::Wait => OverflowPolicy::Refuse,
        };
        let queue = EventQueue::new(spec.queue_events, overflow, LatePolicy::Drop)
            .map_err(|e| read_err(&what, e))?;
        // The queue lives as long as the process: the producer moves to the reader thread and
        // the consumer to the loop thread, both needing a 'static borrow. One allocation per
        // configured source (16 bytes per slot), released at exit.
        let queue: &'static mut EventQueue = Box::leak(Box::new(queue));
        let (producer, consumer) = queue.split();
        // `split` borrows the queue for the handles' lifetime: its counters are read through
        // the consumer.
        let shared = Arc::new(Shared::default());
        shared.watermark.store(t0, Ordering::Relaxed);
        let error = Arc::new(Mutex::new(None));
        let last_event_t = Arc::new(AtomicU64::new(t0));
        let (shared2, error2, last2) = (shared.clone(), error.clone(), last_event_t.clone());
        let bin_ns = period_ns;
        let what2 = what.clone();
        let reader = std::thread::Builder::new()
            .name("echos-rt-events".into())
            .spawn(move || {
                let r = replay(
                    reader, first, producer, &shared2, &last2, t0, bin_us, bin_ns,
                );
                if let Err(e) = r {
                    if let Ok(mut slot) = error2.lock() {
                        *slot = Some(read_err(&what2, e));
                    }
                }
                shared2.watermark.store(u64::MAX, Ordering::Release);
                shared2.done.store(true, Ordering::Release);
            })
            .map_err(SourceError::Io)?;
        Ok(Self {
            consumer,
            shared,
            error,
            reader: Some(reader),
            encoder,
            bin: vec![DvsEvent::default(); spec.queue_events],
            bin_len: 0,
            frame: vec![0.0; cols],
            t0,
            bin_us,
            next_bin: 0,
            last_bin: u64::MAX,
            last_event_t,
            what: format!(
                "{what} ({}, {}x{} grid{}, {bin_us} µs bins, speed {})",
                repr_name(&spec.representation),
                grid.0,
                grid.1,
                if spec.merge_polarity {
                    ", polarities merged"
                } else {
                    ""
                },
                spec.speed
            ),
            inputs,
        })
    }

    /// Recording µs per period.
    pub fn bin_us(&self) -> u64 {
        self.bin_us
    }

    /// Events dropped by the queue (full, overflow = "drop") plus those of a bin larger than
    /// the queue.
    pub fn dropped(&self) -> u64 {
        self.consumer.queue().dropped() + self.shared.bin_overflow.load(Ordering::Relaxed)
    }

    /// Out-of-order events dropped by the queue.
    pub fn late(&self) -> u64 {
        self.consumer.queue().late()
    }

    /// Events the reader offered to the queue.
    pub fn offered(&self) -> u64 {
        self.shared.offered.load(Ordering::Relaxed)
    }

    /// Bins emitted so far.
    pub fn frames(&self) -> u64 {
        self.next_bin
    }

    /// Events the encoder ignored (outside the sensor).
    pub fn ignored(&self) -> u64 {
        self.encoder.ignored()
    }

    fn stop_reader(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        if let Some(h) = self.reader.take() {
            let _ = h.join();
        }
    }
}

fn repr_name(r: &Representation) -> String {
    match r {
        Representation::Counts => "counts".into(),
        Representation::TimeSurface { tau_us } => format!("time surface, tau {tau_us} µs"),
        Representation::Voxel { bins } => format!("voxel grid, {bins} bins"),
    }
}

fn now_ns() -> u64 {
    crate::clock::now_ns()
}

/// The reader thread: push each event once its time has come, publish the watermark.
#[allow(clippy::too_many_arguments)]
fn replay(
    mut reader: EventReader,
    mut chunk: Vec<DvsEvent>,
    mut producer: Producer<'static>,
    shared: &Shared,
    last_t: &AtomicU64,
    t0: u64,
    bin_us: u64,
    period_ns: u64,
) -> Result<(), echos_host::events::EventsError> {
    // Wait for the loop's first release.
    let start = loop {
        if shared.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        let s = shared.start_ns.load(Ordering::Acquire);
        if s != 0 {
            break s;
        }
        std::thread::sleep(std::time::Duration::from_micros(200));
    };
    // Wake four times a period (at least every 10 µs apart, at most every 1 ms).
    let nap = std::time::Duration::from_nanos((period_ns / 4).clamp(10_000, 1_000_000));
    let horizon = |now: u64| -> u64 {
        let el = now.saturating_sub(start) as u128;
        t0.saturating_add((el * bin_us as u128 / period_ns as u128).min(u64::MAX as u128) as u64)
    };
    let mut at = 0;
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return Ok(());
        }
        if at == chunk.len() {
            if reader.next_chunk(&mut chunk)? == 0 {
                return Ok(());
            }
            at = 0;
        }
        let h = horizon(now_ns());
        while at < chunk.len() && chunk[at].t <= h {
            let e = chunk[at];
            match producer.push(e) {
                Ok(o) => {
                    if o != PushOutcome::DroppedLate {
                        last_t.fetch_max(e.t, Ordering::Relaxed);
                    }
                    shared.offered.fetch_add(1, Ordering::Relaxed);
                    at += 1;
                }
                Err(PushError::Full) => {
                    if shared.stop.load(Ordering::Acquire) {
                        return Ok(());
                    }
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
            }
        }
        if at < chunk.len() {
            // Every event before the next one's time, and before the present, has been
            // offered (the file is in time order; late events were offered already).
            let mark = chunk[at].t.min(h.saturating_add(1));
            shared.watermark.fetch_max(mark, Ordering::Release);
            std::thread::sleep(nap);
        }
        // A used-up chunk: read the next one at once (its first event bounds the watermark).
    }
}

impl Source for EventSource {
    fn inputs(&self) -> usize {
        self.inputs
    }

    fn poll(&mut self, tick: &Tick, u: &mut [f64]) -> Poll {
        if self.next_bin == 0 && self.shared.start_ns.load(Ordering::Relaxed) == 0 {
            self.shared
                .start_ns
                .store(tick.start_ns.max(1), Ordering::Release);
        }
        if self.next_bin > self.last_bin {
            return Poll::End;
        }
        let end = self
            .t0
            .saturating_add((self.next_bin + 1).saturating_mul(self.bin_us));
        // Read the watermark before popping: every event before it is in the queue (or was
        // dropped) by then.
        let mark = self.shared.watermark.load(Ordering::Acquire);
        loop {
            let room = self.bin.len() - self.bin_len;
            if room == 0 {
                // A bin with more events than the queue holds: the excess is dropped, counted.
                let mut one = [DvsEvent::default(); 1];
                let mut n = 0;
                while self.consumer.pop_until(end, &mut one) == 1 {
                    n += 1;
                }
                self.shared.bin_overflow.fetch_add(n, Ordering::Relaxed);
                break;
            }
            let got = self.consumer.pop_until(end, &mut self.bin[self.bin_len..]);
            self.bin_len += got;
            if got < room {
                break;
            }
        }
        if mark < end {
            return Poll::Idle;
        }
        if mark == u64::MAX && self.last_bin == u64::MAX {
            let last = self.last_event_t.load(Ordering::Relaxed);
            self.last_bin = last.saturating_sub(self.t0) / self.bin_us;
            if self.next_bin > self.last_bin {
                return Poll::End;
            }
        }
        let bin = TimeBin {
            start: end - self.bin_us,
            end,
        };
        if self
            .encoder
            .encode(&self.bin[..self.bin_len], bin, &mut self.frame)
            .is_err()
        {
            // Sizes were checked when the source was made; a failure here cannot happen.
            return Poll::End;
        }
        for (o, &f) in u.iter_mut().zip(&self.frame) {
            *o = f as f64;
        }
        self.bin_len = 0;
        self.next_bin += 1;
        Poll::Ready
    }

    fn describe(&self) -> String {
        self.what.clone()
    }

    fn note(&self) -> Option<String> {
        Some(format!(
            "events: {} frames, {} events offered, {} dropped (queue full or bin larger than the queue), {} late, {} outside the sensor",
            self.frames(),
            self.offered(),
            self.dropped(),
            self.late(),
            self.ignored()
        ))
    }

    fn finish(&mut self) -> Result<(), SourceError> {
        self.stop_reader();
        match self.error.lock().ok().and_then(|mut e| e.take()) {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

impl Drop for EventSource {
    fn drop(&mut self) {
        self.stop_reader();
    }
}
