//! The named shared region: another process (the CLI's `rt status`, Python, a dashboard, a
//! controller) maps it and reads the loop's live state without a socket copy and without ever
//! blocking the loop.
//!
//! A region is the file `/dev/shm/echos.NAME` (tmpfs), made of 64-bit words:
//!
//! | words | what |
//! |---|---|
//! | 0..32 | [`Header`] (`#[repr(C)]`, 256 bytes): magic, layout version, sizes, offsets, owner pid and start time, generation |
//! | `ring_offset` .. | SPSC ring of output records ([`crate::ring`]): control lines, then `ring_capacity × record_words` (record = step, time_ns, outputs…) |
//! | `snapshot_offset` .. | seqlock word, [`SnapshotHead`] (counters), reservoir state (`units` f64), last output (`outputs` f64) |
//! | `stats_offset` .. | seqlock word, wake-up histogram, step-time histogram ([`crate::hist`] buckets + min, max, sum each) |
//!
//! f64 values are stored as their IEEE bits. Every word is accessed as an atomic.
//!
//! **Born whole or not at all.** The creator opens an unnamed tmpfs file (`O_TMPFILE`), sizes
//! and fills it — header magic last — and only then gives it its name with `linkat`, which fails
//! if the name exists. So a process killed at any moment leaves either no region or a complete
//! one, never a half-initialised file under the name.
//!
//! **Existing names.** A region whose owner is alive is refused. One whose owner pid is dead
//! (or reused: the start time in the header no longer matches `/proc/PID/stat`) is stale: with
//! `reclaim_stale` it is unlinked and replaced (generation + 1), otherwise refused. A file that
//! is not an echos region, has another layout version, or is too small or inconsistent is
//! refused and never reclaimed: it is not ours to delete. On a clean stop the owner unlinks the
//! name if it still names its own file (same inode).

use std::io;
use std::mem::{offset_of, size_of};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use rustix::fs::{AtFlags, Mode, OFlags, CWD};
use serde::Serialize;

use crate::hist::{LogHistogram, BUCKETS};
use crate::ring::{ConsumerCursor, ProducerCursor, Ring, CONTROL_WORDS, LINE_WORDS};
use crate::seqlock::{self, SeqWriter};
use crate::sys::Mapping;

/// "ECHOSRT\0" read as a little-endian u64.
pub const MAGIC: u64 = u64::from_le_bytes(*b"ECHOSRT\0");
/// Bumped on any change of the word layout below.
pub const LAYOUT_VERSION: u64 = 2;
pub const SHM_DIR: &str = "/dev/shm";
/// Words of a ring record before the outputs: step, time_ns.
pub const RECORD_FIXED_WORDS: usize = 2;
/// Largest ring a region may hold (records).
pub const MAX_RING_CAPACITY: u64 = 1 << 20;
/// Largest reservoir or output dimension a region may hold.
pub const MAX_DIM: u64 = 1 << 20;

/// The region's first 256 bytes. Immutable after creation except `owner_state`.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Header {
    pub magic: u64,
    pub layout_version: u64,
    pub total_bytes: u64,
    /// 1 for a new name; a reclaimed stale region's generation + 1.
    pub generation: u64,
    pub owner_pid: u64,
    /// Field 22 of `/proc/PID/stat` (clock ticks after boot): tells a reused pid apart.
    pub owner_start_ticks: u64,
    /// 1 running, 2 stopped cleanly.
    pub owner_state: u64,
    pub units: u64,
    pub inputs: u64,
    pub outputs: u64,
    pub ring_capacity: u64,
    pub record_words: u64,
    /// Word offsets of the sections (readers in other languages use them as they are).
    pub ring_offset: u64,
    pub snapshot_offset: u64,
    /// Words of the snapshot section, its seqlock word included.
    pub snapshot_words: u64,
    pub stats_offset: u64,
    pub stats_words: u64,
    pub period_ns: u64,
    pub hist_buckets: u64,
    /// CLOCK_REALTIME at creation, ns since the Unix epoch.
    pub created_unix_ns: u64,
    pub reserved: [u64; 12],
}

pub const HEADER_WORDS: usize = 32;
const _: () = assert!(size_of::<Header>() == HEADER_WORDS * 8);

pub const OWNER_RUNNING: u64 = 1;
pub const OWNER_STOPPED: u64 = 2;

macro_rules! word {
    ($s:ident, $f:ident) => {
        offset_of!($s, $f) / 8
    };
}

/// The counters of a snapshot (the words after its seqlock word).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct SnapshotHead {
    /// Reservoir steps taken.
    pub step: u64,
    /// CLOCK_MONOTONIC when published.
    pub time_ns: u64,
    /// Periods (jobs) run.
    pub periods: u64,
    pub deadline_misses: u64,
    pub overruns: u64,
    pub skipped_jobs: u64,
    /// Periods in which the source had no input ready.
    pub source_idle: u64,
    pub wakeup_last_ns: u64,
    pub wakeup_max_ns: u64,
    pub step_last_ns: u64,
    pub step_max_ns: u64,
    pub sink_drops: u64,
    pub spectral_radius: f64,
    pub leak_rate: f64,
    /// The target of output 0 for the step just published, from a scoring sink (NaN: none).
    pub target: f64,
    /// The scoring sink's running NRMSE so far (NaN: no scoring sink, or nothing scored yet).
    pub running_nrmse: f64,
    /// The loop thread's user-space cycles per step (`perf_event_open`), refreshed with the
    /// histograms; 0: not counted (no PMU, or a writer without counters).
    pub hw_cycles_per_step: f64,
    /// 1 − cache misses / cache references over the run so far (meaningful only when
    /// `hw_cycles_per_step` is not 0).
    pub hw_cache_hit_rate: f64,
    /// Room for later fields without a new layout version.
    pub reserved: [u64; 2],
}

pub const SNAPSHOT_HEAD_WORDS: usize = 20;
const _: () = assert!(size_of::<SnapshotHead>() == SNAPSHOT_HEAD_WORDS * 8);

/// The trajectory ring of the snapshot: the kernel's introspection shape (echos-abi), the last
/// `TRAJECTORY_STEPS` published steps of the first `TRAJECTORY_UNITS` units, each row
/// `[step, unit 0, …, unit 3]` at index `step % TRAJECTORY_STEPS` (step 0: never written;
/// units beyond the reservoir's are 0).
pub use echos_abi::introspect::{TRAJECTORY_STEPS, TRAJECTORY_UNITS};
pub const TRAJECTORY_ROW_WORDS: usize = 1 + TRAJECTORY_UNITS;
pub const TRAJECTORY_WORDS: usize = TRAJECTORY_STEPS * TRAJECTORY_ROW_WORDS;

/// Words of one published histogram: bucket counts, min, max, sum.
pub const HIST_WORDS: usize = BUCKETS + 3;

/// What a region is sized for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub units: usize,
    pub inputs: usize,
    pub outputs: usize,
    pub ring_capacity: u64,
    pub period_ns: u64,
}

/// Word offsets and sizes derived from a shape: the one computation creator and readers share.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    pub units: usize,
    pub inputs: usize,
    pub outputs: usize,
    pub ring_capacity: u64,
    pub record_words: usize,
    pub ring_offset: usize,
    pub snapshot_offset: usize,
    pub snapshot_words: usize,
    pub stats_offset: usize,
    pub stats_words: usize,
    pub total_bytes: usize,
}

fn align_line(w: usize) -> Option<usize> {
    w.checked_add(LINE_WORDS - 1)
        .map(|v| v / LINE_WORDS * LINE_WORDS)
}

impl Layout {
    pub fn of(units: u64, inputs: u64, outputs: u64, ring_capacity: u64) -> Result<Self, String> {
        if units == 0 || units > MAX_DIM || inputs > MAX_DIM || outputs > MAX_DIM {
            return Err(format!(
                "dimensions out of range: units {units}, inputs {inputs}, outputs {outputs} (units 1..={MAX_DIM})"
            ));
        }
        if !ring_capacity.is_power_of_two() || ring_capacity > MAX_RING_CAPACITY {
            return Err(format!(
                "ring capacity {ring_capacity} must be a power of two up to {MAX_RING_CAPACITY}"
            ));
        }
        let (units, inputs, outputs) = (units as usize, inputs as usize, outputs as usize);
        let record_words = RECORD_FIXED_WORDS + outputs;
        let ring_offset = HEADER_WORDS;
        let slots = (ring_capacity as usize).checked_mul(record_words);
        let snapshot_offset = slots
            .and_then(|s| s.checked_add(ring_offset + CONTROL_WORDS))
            .and_then(align_line);
        let snapshot_words = 1 + SNAPSHOT_HEAD_WORDS + units + outputs + TRAJECTORY_WORDS;
        let stats_offset = snapshot_offset
            .and_then(|o| o.checked_add(snapshot_words))
            .and_then(align_line);
        let stats_words = 1 + 2 * HIST_WORDS;
        let total_bytes = stats_offset
            .and_then(|o| o.checked_add(stats_words))
            .and_then(|w| w.checked_mul(8))
            .map(|b| b.div_ceil(4096) * 4096);
        match (snapshot_offset, stats_offset, total_bytes) {
            (Some(snapshot_offset), Some(stats_offset), Some(total_bytes)) => Ok(Self {
                units,
                inputs,
                outputs,
                ring_capacity,
                record_words,
                ring_offset,
                snapshot_offset,
                snapshot_words,
                stats_offset,
                stats_words,
                total_bytes,
            }),
            _ => Err("the region's size overflows".into()),
        }
    }

    fn header(&self, pid: u64, start_ticks: u64, generation: u64, period_ns: u64) -> Header {
        let created_unix_ns = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        Header {
            magic: MAGIC,
            layout_version: LAYOUT_VERSION,
            total_bytes: self.total_bytes as u64,
            generation,
            owner_pid: pid,
            owner_start_ticks: start_ticks,
            owner_state: OWNER_RUNNING,
            units: self.units as u64,
            inputs: self.inputs as u64,
            outputs: self.outputs as u64,
            ring_capacity: self.ring_capacity,
            record_words: self.record_words as u64,
            ring_offset: self.ring_offset as u64,
            snapshot_offset: self.snapshot_offset as u64,
            snapshot_words: self.snapshot_words as u64,
            stats_offset: self.stats_offset as u64,
            stats_words: self.stats_words as u64,
            period_ns,
            hist_buckets: BUCKETS as u64,
            created_unix_ns,
            reserved: [0; 12],
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    #[error("region name {name:?}: {reason}")]
    BadName { name: String, reason: &'static str },
    #[error("region {}: {reason}", path.display())]
    BadShape { path: PathBuf, reason: String },
    #[error("region {} is in use by running process {pid}: choose another name or stop it", path.display())]
    InUse { path: PathBuf, pid: u64 },
    #[error("region {} was left by process {pid}, which is no longer running; set shm.reclaim_stale = true to replace it, or remove the file", path.display())]
    Stale { path: PathBuf, pid: u64 },
    #[error("{} exists but is not an echos region (bad magic): refusing to map or remove it", path.display())]
    NotOurs { path: PathBuf },
    #[error("region {} has layout version {found}; this echos reads and writes version {expected}: refusing to use it", path.display())]
    OtherVersion {
        path: PathBuf,
        found: u64,
        expected: u64,
    },
    #[error("region {} is {size} bytes, too small for {needed}", path.display())]
    TooSmall {
        path: PathBuf,
        size: u64,
        needed: u64,
    },
    #[error("region {} is inconsistent: {what}", path.display())]
    Inconsistent { path: PathBuf, what: String },
    #[error("no region {} (is the loop running, and is the name right?)", path.display())]
    Missing { path: PathBuf },
    #[error("region {}: the consumer role is held by running process {pid}", path.display())]
    ConsumerTaken { path: PathBuf, pid: u64 },
    #[error("region {}: the snapshot changed during {attempts} read attempts (or its writer died mid-update)", path.display())]
    Busy { path: PathBuf, attempts: u32 },
    #[error("region {}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: &'static str,
        source: io::Error,
    },
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(rustix::io::Errno) -> ShmError + 'a {
    move |e| ShmError::Io {
        path: path.to_path_buf(),
        op,
        source: e.into(),
    }
}

/// `/dev/shm/echos.NAME` after checking NAME: 1–200 of `[A-Za-z0-9._-]`, not starting with '.'.
pub fn region_path(name: &str) -> Result<PathBuf, ShmError> {
    let bad = |reason| ShmError::BadName {
        name: name.to_string(),
        reason,
    };
    if name.is_empty() || name.len() > 200 {
        return Err(bad("must be 1 to 200 characters"));
    }
    if name.starts_with('.') {
        return Err(bad("must not start with '.'"));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
    {
        return Err(bad("may hold only letters, digits, '.', '_' and '-'"));
    }
    Ok(Path::new(SHM_DIR).join(format!("echos.{name}")))
}

/// Field 22 of `/proc/PID/stat`: the process's start time in clock ticks after boot.
pub fn process_start_ticks(pid: u64) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may contain spaces: count after ')'.
    let rest = &text[text.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Whether the process that created a region still runs (same pid and the same start time).
pub fn owner_alive(pid: u64, start_ticks: u64) -> bool {
    let Some(p) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    else {
        return false;
    };
    match rustix::process::test_kill_process(p) {
        Ok(()) | Err(rustix::io::Errno::PERM) => {}
        Err(_) => return false,
    }
    // A pid that exists but started at another time was reused by an unrelated process.
    process_start_ticks(pid).is_none_or(|t| t == start_ticks)
}

fn load_header(words: &[AtomicU64]) -> Header {
    let w = |i: usize| words.get(i).map_or(0, |x| x.load(Ordering::Relaxed));
    // Magic with acquire: the creator stored it last with release (and the link came after).
    let magic = words.first().map_or(0, |x| x.load(Ordering::Acquire));
    let mut reserved = [0u64; 12];
    for (k, r) in reserved.iter_mut().enumerate() {
        *r = w(word!(Header, reserved) + k);
    }
    Header {
        magic,
        layout_version: w(word!(Header, layout_version)),
        total_bytes: w(word!(Header, total_bytes)),
        generation: w(word!(Header, generation)),
        owner_pid: w(word!(Header, owner_pid)),
        owner_start_ticks: w(word!(Header, owner_start_ticks)),
        owner_state: w(word!(Header, owner_state)),
        units: w(word!(Header, units)),
        inputs: w(word!(Header, inputs)),
        outputs: w(word!(Header, outputs)),
        ring_capacity: w(word!(Header, ring_capacity)),
        record_words: w(word!(Header, record_words)),
        ring_offset: w(word!(Header, ring_offset)),
        snapshot_offset: w(word!(Header, snapshot_offset)),
        snapshot_words: w(word!(Header, snapshot_words)),
        stats_offset: w(word!(Header, stats_offset)),
        stats_words: w(word!(Header, stats_words)),
        period_ns: w(word!(Header, period_ns)),
        hist_buckets: w(word!(Header, hist_buckets)),
        created_unix_ns: w(word!(Header, created_unix_ns)),
        reserved,
    }
}

fn store_header(words: &[AtomicU64], h: &Header) {
    let fields: [(usize, u64); 19] = [
        (word!(Header, layout_version), h.layout_version),
        (word!(Header, total_bytes), h.total_bytes),
        (word!(Header, generation), h.generation),
        (word!(Header, owner_pid), h.owner_pid),
        (word!(Header, owner_start_ticks), h.owner_start_ticks),
        (word!(Header, owner_state), h.owner_state),
        (word!(Header, units), h.units),
        (word!(Header, inputs), h.inputs),
        (word!(Header, outputs), h.outputs),
        (word!(Header, ring_capacity), h.ring_capacity),
        (word!(Header, record_words), h.record_words),
        (word!(Header, ring_offset), h.ring_offset),
        (word!(Header, snapshot_offset), h.snapshot_offset),
        (word!(Header, snapshot_words), h.snapshot_words),
        (word!(Header, stats_offset), h.stats_offset),
        (word!(Header, stats_words), h.stats_words),
        (word!(Header, period_ns), h.period_ns),
        (word!(Header, hist_buckets), h.hist_buckets),
        (word!(Header, created_unix_ns), h.created_unix_ns),
    ];
    for (i, v) in fields {
        words[i].store(v, Ordering::Relaxed);
    }
    words[word!(Header, magic)].store(h.magic, Ordering::Release);
}

/// Checks a mapped header against the file size and recomputes the layout it claims.
fn validate(path: &Path, h: &Header, file_size: u64) -> Result<Layout, ShmError> {
    if h.magic != MAGIC {
        return Err(ShmError::NotOurs {
            path: path.to_path_buf(),
        });
    }
    if h.layout_version != LAYOUT_VERSION {
        return Err(ShmError::OtherVersion {
            path: path.to_path_buf(),
            found: h.layout_version,
            expected: LAYOUT_VERSION,
        });
    }
    let inconsistent = |what: String| ShmError::Inconsistent {
        path: path.to_path_buf(),
        what,
    };
    let layout = Layout::of(h.units, h.inputs, h.outputs, h.ring_capacity).map_err(inconsistent)?;
    if file_size < layout.total_bytes as u64 {
        return Err(ShmError::TooSmall {
            path: path.to_path_buf(),
            size: file_size,
            needed: layout.total_bytes as u64,
        });
    }
    let claimed = (
        h.total_bytes,
        h.record_words,
        h.ring_offset,
        h.snapshot_offset,
        h.snapshot_words,
        h.stats_offset,
        h.stats_words,
        h.hist_buckets,
    );
    let derived = (
        layout.total_bytes as u64,
        layout.record_words as u64,
        layout.ring_offset as u64,
        layout.snapshot_offset as u64,
        layout.snapshot_words as u64,
        layout.stats_offset as u64,
        layout.stats_words as u64,
        BUCKETS as u64,
    );
    if claimed != derived {
        return Err(inconsistent(format!(
            "header sizes {claimed:?} differ from those its dimensions give {derived:?}"
        )));
    }
    Ok(layout)
}

/// An existing region's file, mapped and validated.
struct Opened {
    fd: OwnedFd,
    map: Mapping,
    header: Header,
    layout: Layout,
    ino: (u64, u64),
}

fn open_existing(path: &Path, writable: bool) -> Result<Opened, ShmError> {
    let flags = if writable {
        OFlags::RDWR
    } else {
        OFlags::RDONLY
    };
    let fd = rustix::fs::open(
        path,
        flags | OFlags::CLOEXEC | OFlags::NOFOLLOW,
        Mode::empty(),
    )
    .map_err(|e| match e {
        rustix::io::Errno::NOENT => ShmError::Missing {
            path: path.to_path_buf(),
        },
        e => io_err(path, "open")(e),
    })?;
    let st = rustix::fs::fstat(&fd).map_err(io_err(path, "fstat"))?;
    let size = st.st_size as u64;
    let needed = (HEADER_WORDS * 8) as u64;
    if size < needed {
        return Err(ShmError::TooSmall {
            path: path.to_path_buf(),
            size,
            needed,
        });
    }
    let map = Mapping::shared(fd.as_fd(), (size as usize) / 8 * 8, writable).map_err(|e| {
        ShmError::Io {
            path: path.to_path_buf(),
            op: "mmap",
            source: e,
        }
    })?;
    let header = load_header(map.words());
    let layout = validate(path, &header, size)?;
    Ok(Opened {
        fd,
        map,
        header,
        layout,
        ino: (st.st_dev, st.st_ino),
    })
}

/// The loop's own region: it alone writes the ring's head, the snapshot and the statistics.
pub struct Region {
    path: PathBuf,
    _fd: OwnedFd,
    map: Mapping,
    layout: Layout,
    header: Header,
    producer: ProducerCursor,
    ino: (u64, u64),
}

impl Region {
    /// Creates `/dev/shm/echos.NAME` sized for `shape` (see the module docs for what happens
    /// when the name exists).
    pub fn create(name: &str, shape: &Shape, reclaim_stale: bool) -> Result<Self, ShmError> {
        let path = region_path(name)?;
        let layout = Layout::of(
            shape.units as u64,
            shape.inputs as u64,
            shape.outputs as u64,
            shape.ring_capacity,
        )
        .map_err(|reason| ShmError::BadShape {
            path: path.clone(),
            reason,
        })?;
        let pid = u64::from(rustix::process::getpid().as_raw_nonzero().get() as u32);
        let start_ticks = process_start_ticks(pid).unwrap_or(0);
        let mut generation = 1;
        // Two tries: the second after unlinking a stale region.
        for _ in 0..2 {
            let fd = rustix::fs::open(
                SHM_DIR,
                OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
                Mode::RUSR | Mode::WUSR,
            )
            .map_err(io_err(
                &path,
                "open an unnamed file in /dev/shm (O_TMPFILE)",
            ))?;
            rustix::fs::ftruncate(&fd, layout.total_bytes as u64)
                .map_err(io_err(&path, "ftruncate"))?;
            let map = Mapping::shared(fd.as_fd(), layout.total_bytes, true).map_err(|e| {
                ShmError::Io {
                    path: path.clone(),
                    op: "mmap",
                    source: e,
                }
            })?;
            let header = layout.header(pid, start_ticks, generation, shape.period_ns);
            store_header(map.words(), &header);
            let proc_path = format!("/proc/self/fd/{}", fd.as_raw_fd());
            match rustix::fs::linkat(CWD, &proc_path, CWD, &path, AtFlags::SYMLINK_FOLLOW) {
                Ok(()) => {
                    let st = rustix::fs::fstat(&fd).map_err(io_err(&path, "fstat"))?;
                    let mut region = Self {
                        path,
                        _fd: fd,
                        map,
                        layout,
                        header,
                        producer: ProducerCursor::default(),
                        ino: (st.st_dev, st.st_ino),
                    };
                    region.producer = region.ring().producer();
                    return Ok(region);
                }
                Err(rustix::io::Errno::EXIST) => {
                    let old = open_existing(&path, false)?;
                    let h = old.header;
                    if owner_alive(h.owner_pid, h.owner_start_ticks) {
                        return Err(ShmError::InUse {
                            path,
                            pid: h.owner_pid,
                        });
                    }
                    if !reclaim_stale {
                        return Err(ShmError::Stale {
                            path,
                            pid: h.owner_pid,
                        });
                    }
                    // Unlink only the file we judged stale, not one a racing start just made.
                    match rustix::fs::stat(&path) {
                        Ok(st) if (st.st_dev, st.st_ino) == old.ino => {
                            rustix::fs::unlink(&path).map_err(io_err(&path, "unlink stale"))?
                        }
                        _ => {}
                    }
                    drop(old.fd);
                    generation = h.generation.wrapping_add(1).max(1);
                }
                Err(e) => return Err(io_err(&path, "link into /dev/shm")(e)),
            }
        }
        Err(ShmError::InUse { path, pid: 0 })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    fn ring(&self) -> Ring<'_> {
        ring_of(self.map.words(), &self.layout).expect("layout validated at creation")
    }

    /// Pushes one output record; false (counted in the ring's drops) if the consumer is
    /// behind. Never waits, never allocates.
    #[inline]
    pub fn push_output(&mut self, step: u64, time_ns: u64, y: &[f64]) -> bool {
        let mut cur = self.producer;
        let ok = self.ring().push(&mut cur, |r| {
            r[0].store(step, Ordering::Relaxed);
            r[1].store(time_ns, Ordering::Relaxed);
            for (w, v) in r[RECORD_FIXED_WORDS..].iter().zip(y) {
                w.store(v.to_bits(), Ordering::Relaxed);
            }
        });
        self.producer = cur;
        ok
    }

    pub fn ring_drops(&self) -> u64 {
        self.ring().drops()
    }

    /// Publishes the counters, the reservoir state and the last output (seqlock).
    #[inline]
    pub fn publish_snapshot(&self, head: &SnapshotHead, state: &[f64], output: &[f64]) {
        let words = self.map.words();
        let l = &self.layout;
        let (seq, data) = section(words, l.snapshot_offset, l.snapshot_words);
        SeqWriter::new(seq, data).write(|d| {
            let fixed = snapshot_head_words(head);
            for (w, v) in d.iter().zip(fixed) {
                w.store(v, Ordering::Relaxed);
            }
            let rest = &d[SNAPSHOT_HEAD_WORDS..];
            for (w, v) in rest.iter().zip(state.iter().take(l.units)) {
                w.store(v.to_bits(), Ordering::Relaxed);
            }
            for (w, v) in rest[l.units..].iter().zip(output.iter().take(l.outputs)) {
                w.store(v.to_bits(), Ordering::Relaxed);
            }
            if head.step > 0 {
                let traj = &rest[l.units + l.outputs..];
                let at = (head.step as usize % TRAJECTORY_STEPS) * TRAJECTORY_ROW_WORDS;
                let row = &traj[at..at + TRAJECTORY_ROW_WORDS];
                row[0].store(head.step, Ordering::Relaxed);
                for (w, v) in row[1..].iter().zip(state) {
                    w.store(v.to_bits(), Ordering::Relaxed);
                }
            }
        });
    }

    /// Publishes the wake-up and step-time histograms (seqlock).
    pub fn publish_stats(&self, wakeup: &LogHistogram, step: &LogHistogram) {
        let words = self.map.words();
        let (seq, data) = section(words, self.layout.stats_offset, self.layout.stats_words);
        SeqWriter::new(seq, data).write(|d| {
            for (h, part) in [wakeup, step].into_iter().zip(d.chunks_exact(HIST_WORDS)) {
                for (w, &c) in part.iter().zip(h.counts()) {
                    w.store(c, Ordering::Relaxed);
                }
                let (min, max, sum) = h.extremes();
                part[BUCKETS].store(min, Ordering::Relaxed);
                part[BUCKETS + 1].store(max, Ordering::Relaxed);
                part[BUCKETS + 2].store(sum, Ordering::Relaxed);
            }
        });
    }
}

impl std::fmt::Debug for Region {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Region")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl Drop for Region {
    fn drop(&mut self) {
        self.map.words()[word!(Header, owner_state)].store(OWNER_STOPPED, Ordering::Release);
        if let Ok(st) = rustix::fs::stat(&self.path) {
            if (st.st_dev, st.st_ino) == self.ino {
                let _ = rustix::fs::unlink(&self.path);
            }
        }
    }
}

fn section(words: &[AtomicU64], offset: usize, len: usize) -> (&AtomicU64, &[AtomicU64]) {
    (&words[offset], &words[offset + 1..offset + len])
}

fn ring_of<'a>(words: &'a [AtomicU64], l: &Layout) -> Option<Ring<'a>> {
    let control = words.get(l.ring_offset..l.ring_offset + CONTROL_WORDS)?;
    let slots_at = l.ring_offset + CONTROL_WORDS;
    let slots = words.get(slots_at..slots_at + l.ring_capacity as usize * l.record_words)?;
    Ring::new(control, slots, l.ring_capacity, l.record_words)
}

fn snapshot_head_words(h: &SnapshotHead) -> [u64; SNAPSHOT_HEAD_WORDS] {
    [
        h.step,
        h.time_ns,
        h.periods,
        h.deadline_misses,
        h.overruns,
        h.skipped_jobs,
        h.source_idle,
        h.wakeup_last_ns,
        h.wakeup_max_ns,
        h.step_last_ns,
        h.step_max_ns,
        h.sink_drops,
        h.spectral_radius.to_bits(),
        h.leak_rate.to_bits(),
        h.target.to_bits(),
        h.running_nrmse.to_bits(),
        h.hw_cycles_per_step.to_bits(),
        h.hw_cache_hit_rate.to_bits(),
        h.reserved[0],
        h.reserved[1],
    ]
}

fn snapshot_head_from(w: &[u64]) -> SnapshotHead {
    let g = |i: usize| w.get(i).copied().unwrap_or(0);
    SnapshotHead {
        step: g(0),
        time_ns: g(1),
        periods: g(2),
        deadline_misses: g(3),
        overruns: g(4),
        skipped_jobs: g(5),
        source_idle: g(6),
        wakeup_last_ns: g(7),
        wakeup_max_ns: g(8),
        step_last_ns: g(9),
        step_max_ns: g(10),
        sink_drops: g(11),
        spectral_radius: f64::from_bits(g(12)),
        leak_rate: f64::from_bits(g(13)),
        target: f64::from_bits(g(14)),
        running_nrmse: f64::from_bits(g(15)),
        hw_cycles_per_step: f64::from_bits(g(16)),
        hw_cache_hit_rate: f64::from_bits(g(17)),
        reserved: [g(18), g(19)],
    }
}

/// A consistent copy of the live snapshot.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Snapshot {
    /// Seqlock version (0: nothing published yet).
    pub version: u64,
    pub head: SnapshotHead,
    pub state: Vec<f64>,
    pub output: Vec<f64>,
    /// Recent steps of the first units, oldest first.
    pub trajectory: Vec<TrajectoryRow>,
}

#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TrajectoryRow {
    pub step: u64,
    /// The first `min(TRAJECTORY_UNITS, units)` units of the state after that step.
    pub units: Vec<f64>,
}

fn trajectory_of(words: &[u64], units: usize) -> Vec<TrajectoryRow> {
    let shown = units.min(TRAJECTORY_UNITS);
    let mut rows: Vec<TrajectoryRow> = words
        .chunks_exact(TRAJECTORY_ROW_WORDS)
        .filter(|r| r[0] > 0)
        .map(|r| TrajectoryRow {
            step: r[0],
            units: r[1..1 + shown].iter().map(|&b| f64::from_bits(b)).collect(),
        })
        .collect();
    rows.sort_by_key(|r| r.step);
    rows
}

/// One output record popped from the ring.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Record {
    pub step: u64,
    pub time_ns: u64,
    pub output: Vec<f64>,
}

/// Read attempts before a snapshot read gives up (each costs one copy of the section).
pub const READ_ATTEMPTS: u32 = 1000;

/// Another process's view of a region. Reading never blocks or slows the owner.
pub struct Attached {
    path: PathBuf,
    map: Mapping,
    header: Header,
    layout: Layout,
    consumer: Option<ConsumerCursor>,
    pid: u64,
}

impl Attached {
    /// Maps the region read-only: snapshot, statistics and ring counters.
    pub fn open(name: &str) -> Result<Self, ShmError> {
        let path = region_path(name)?;
        let o = open_existing(&path, false)?;
        Ok(Self::from_opened(path, o, None))
    }

    /// Maps the region writable and takes the ring's consumer role (one consumer at a time;
    /// a dead consumer's role is taken over).
    pub fn open_consumer(name: &str) -> Result<Self, ShmError> {
        let path = region_path(name)?;
        let o = open_existing(&path, true)?;
        let me = u64::from(rustix::process::getpid().as_raw_nonzero().get() as u32);
        let ring = ring_of(o.map.words(), &o.layout).ok_or_else(|| ShmError::Inconsistent {
            path: path.clone(),
            what: "ring outside the file".into(),
        })?;
        let role = ring.consumer_word();
        let mut seen = role.load(Ordering::Acquire);
        loop {
            // Our own pid means another `Attached` of this process holds it.
            let held = seen == me
                || (seen != 0 && owner_alive(seen, process_start_ticks(seen).unwrap_or(0)));
            if held {
                return Err(ShmError::ConsumerTaken { path, pid: seen });
            }
            match role.compare_exchange(seen, me, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => seen = now,
            }
        }
        let cursor = ring.consumer();
        let mut a = Self::from_opened(path, o, Some(cursor));
        a.pid = me;
        Ok(a)
    }

    fn from_opened(path: PathBuf, o: Opened, consumer: Option<ConsumerCursor>) -> Self {
        Self {
            path,
            map: o.map,
            header: o.header,
            layout: o.layout,
            consumer,
            pid: 0,
        }
    }

    pub fn header(&self) -> &Header {
        &self.header
    }

    pub fn layout(&self) -> &Layout {
        &self.layout
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the owner is still running (stopped cleanly or dead both count as not).
    pub fn owner_running(&self) -> bool {
        let state = self.map.words()[word!(Header, owner_state)].load(Ordering::Acquire);
        state == OWNER_RUNNING && owner_alive(self.header.owner_pid, self.header.owner_start_ticks)
    }

    fn ring(&self) -> Ring<'_> {
        ring_of(self.map.words(), &self.layout).expect("validated when opened")
    }

    pub fn ring_len(&self) -> u64 {
        self.ring().len()
    }

    pub fn ring_drops(&self) -> u64 {
        self.ring().drops()
    }

    pub fn ring_pushed(&self) -> u64 {
        self.ring().pushed()
    }

    pub fn snapshot(&self) -> Result<Snapshot, ShmError> {
        let l = &self.layout;
        let (seq, data) = section(self.map.words(), l.snapshot_offset, l.snapshot_words);
        let mut buf = vec![0u64; data.len()];
        let version =
            seqlock::read(seq, data, &mut buf, READ_ATTEMPTS).map_err(|_| ShmError::Busy {
                path: self.path.clone(),
                attempts: READ_ATTEMPTS,
            })?;
        let rest = &buf[SNAPSHOT_HEAD_WORDS..];
        Ok(Snapshot {
            version,
            head: snapshot_head_from(&buf[..SNAPSHOT_HEAD_WORDS]),
            state: rest[..l.units].iter().map(|&b| f64::from_bits(b)).collect(),
            output: rest[l.units..l.units + l.outputs]
                .iter()
                .map(|&b| f64::from_bits(b))
                .collect(),
            trajectory: trajectory_of(&rest[l.units + l.outputs..], l.units),
        })
    }

    /// The wake-up latency and step-time histograms as last published.
    pub fn stats(&self) -> Result<(LogHistogram, LogHistogram), ShmError> {
        let l = &self.layout;
        let (seq, data) = section(self.map.words(), l.stats_offset, l.stats_words);
        let mut buf = vec![0u64; data.len()];
        seqlock::read(seq, data, &mut buf, READ_ATTEMPTS).map_err(|_| ShmError::Busy {
            path: self.path.clone(),
            attempts: READ_ATTEMPTS,
        })?;
        let hist = |part: &[u64]| {
            let mut counts = [0u64; BUCKETS];
            counts.copy_from_slice(&part[..BUCKETS]);
            LogHistogram::from_parts(counts, part[BUCKETS], part[BUCKETS + 1], part[BUCKETS + 2])
        };
        Ok((hist(&buf[..HIST_WORDS]), hist(&buf[HIST_WORDS..])))
    }

    /// Pops the oldest output record (consumer role only; `None` when empty or not the
    /// consumer).
    pub fn pop(&mut self) -> Option<Record> {
        let mut cur = self.consumer?;
        let mut buf = vec![0u64; self.layout.record_words];
        let ok = self.ring().pop(&mut cur, &mut buf);
        self.consumer = Some(cur);
        ok.then(|| Record {
            step: buf[0],
            time_ns: buf[1],
            output: buf[RECORD_FIXED_WORDS..]
                .iter()
                .map(|&b| f64::from_bits(b))
                .collect(),
        })
    }
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.consumer.is_some() {
            let _ = self.ring().consumer_word().compare_exchange(
                self.pid,
                0,
                Ordering::AcqRel,
                Ordering::Relaxed,
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape() -> Shape {
        Shape {
            units: 10,
            inputs: 1,
            outputs: 2,
            ring_capacity: 8,
            period_ns: 1_000_000,
        }
    }

    fn unique(tag: &str) -> String {
        format!("test-{tag}-{}", std::process::id())
    }

    #[test]
    fn names_are_checked() {
        assert!(region_path("demo-1.a_b").is_ok());
        for bad in ["", ".hidden", "a/b", "a b", &"x".repeat(201)] {
            assert!(
                matches!(region_path(bad), Err(ShmError::BadName { .. })),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn create_publish_read_and_remove() {
        let name = unique("roundtrip");
        let mut r = Region::create(&name, &shape(), false).unwrap();
        assert!(r.path().exists());
        let a = Attached::open(&name).unwrap();
        assert!(a.owner_running());
        assert_eq!(a.header().generation, 1);
        assert_eq!(a.snapshot().unwrap().version, 0);
        let head = SnapshotHead {
            step: 42,
            deadline_misses: 3,
            spectral_radius: 0.9,
            ..Default::default()
        };
        let state: Vec<f64> = (0..10).map(|i| i as f64 * 0.5).collect();
        r.publish_snapshot(&head, &state, &[1.5, -2.5]);
        let s = a.snapshot().unwrap();
        assert_eq!(s.version, 2);
        assert_eq!(s.head, head);
        assert_eq!(s.state, state);
        assert_eq!(s.output, vec![1.5, -2.5]);
        assert_eq!(s.trajectory.len(), 1);
        assert_eq!(
            (s.trajectory[0].step, s.trajectory[0].units.clone()),
            (42, state[..4].to_vec())
        );
        // 20 more steps: the ring keeps the last 16, oldest first.
        for k in 43..63 {
            let st: Vec<f64> = (0..10).map(|i| (k * 100 + i) as f64).collect();
            r.publish_snapshot(&SnapshotHead { step: k, ..head }, &st, &[0.0, 0.0]);
        }
        let t = a.snapshot().unwrap().trajectory;
        assert_eq!(
            t.iter().map(|r| r.step).collect::<Vec<_>>(),
            (47..63).collect::<Vec<_>>()
        );
        assert_eq!(t[15].units, vec![6200.0, 6201.0, 6202.0, 6203.0]);
        let mut wake = LogHistogram::new();
        wake.record(1234);
        r.publish_stats(&wake, &LogHistogram::new());
        assert_eq!(a.stats().unwrap().0, wake);
        let mut c = Attached::open_consumer(&name).unwrap();
        for k in 0..10 {
            r.push_output(k, 100 + k, &[k as f64, -(k as f64)]);
        }
        assert_eq!(r.ring_drops(), 2);
        let rec = c.pop().unwrap();
        assert_eq!(
            (rec.step, rec.time_ns, rec.output),
            (0, 100, vec![0.0, -0.0])
        );
        // A second consumer is refused while the first lives.
        assert!(matches!(
            Attached::open_consumer(&name),
            Err(ShmError::ConsumerTaken { .. })
        ));
        let path = r.path().to_path_buf();
        drop(r);
        assert!(!path.exists(), "a clean stop removes the region");
        assert!(!a.owner_running());
    }

    #[test]
    fn a_live_region_is_refused_and_a_stale_one_reclaimed_only_when_asked() {
        let name = unique("stale");
        let r = Region::create(&name, &shape(), true).unwrap();
        assert!(matches!(
            Region::create(&name, &shape(), true),
            Err(ShmError::InUse { .. })
        ));
        // Make it look like its owner died: a pid that cannot exist.
        let path = r.path().to_path_buf();
        r.map.words()[word!(Header, owner_pid)].store(u64::from(u32::MAX), Ordering::Relaxed);
        std::mem::forget(r); // as if killed: no clean-up
        assert!(matches!(
            Region::create(&name, &shape(), false),
            Err(ShmError::Stale { pid, .. }) if pid == u64::from(u32::MAX)
        ));
        let r2 = Region::create(&name, &shape(), true).unwrap();
        assert_eq!(r2.header().generation, 2);
        assert_eq!(r2.path(), path);
    }

    #[test]
    fn foreign_small_and_other_version_files_are_refused_not_reclaimed() {
        let name = unique("foreign");
        let path = region_path(&name).unwrap();
        std::fs::write(&path, vec![0u8; 8192]).unwrap();
        assert!(matches!(
            Region::create(&name, &shape(), true),
            Err(ShmError::NotOurs { .. })
        ));
        assert!(matches!(
            Attached::open(&name),
            Err(ShmError::NotOurs { .. })
        ));
        std::fs::write(&path, b"tiny").unwrap();
        assert!(matches!(
            Region::create(&name, &shape(), true),
            Err(ShmError::TooSmall { .. })
        ));
        let mut bytes = vec![0u8; 8192];
        bytes[..8].copy_from_slice(&MAGIC.to_le_bytes());
        bytes[8..16].copy_from_slice(&99u64.to_le_bytes());
        std::fs::write(&path, &bytes).unwrap();
        let e = Region::create(&name, &shape(), true).unwrap_err();
        assert!(matches!(e, ShmError::OtherVersion { found: 99, .. }), "{e}");
        assert!(e.to_string().contains("layout version 99"));
        assert!(path.exists(), "not ours: never removed");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_truncated_region_is_refused() {
        let name = unique("trunc");
        let r = Region::create(&name, &shape(), false).unwrap();
        let bytes = std::fs::read(r.path()).unwrap();
        let copy = unique("trunc-copy");
        let copy_path = region_path(&copy).unwrap();
        std::fs::write(&copy_path, &bytes[..bytes.len() - 4096]).unwrap();
        assert!(matches!(
            Attached::open(&copy),
            Err(ShmError::TooSmall { .. })
        ));
        std::fs::remove_file(&copy_path).unwrap();
        assert!(matches!(
            Attached::open(&unique("absent")),
            Err(ShmError::Missing { .. })
        ));
    }
}
