//! Event file writers chosen by extension: `.raw` (EVT 3.0 by default, EVT 2.0 on request),
//! `.dat` (DAT v2 CD events), `.npy` (a structured array `t` u64, `x` u16, `y` u16, `p` u8)
//! and `.csv` (`t,x,y,p`). Every file is written through [`crate::atomic::AtomicFile`]: a
//! reader sees the old file or the whole new one.
//!
//! Time origin: the EVT and DAT writers store relative times, so a recording whose first time
//! is 2^32 µs or later (AEDAT 4 files carry Unix-epoch microseconds) is written relative to its
//! first event with the origin in the header (`% t0`), which our readers add back; earlier
//! times are written as they are.

use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use echos_core::events::{
    DatRecordKind, DatVersion, DatWriter, DvsEvent, Evt2Writer, Evt3Writer, TriggerEvent,
    WriteError,
};
use echos_npy::Dtype;

use super::EventsError;
use crate::atomic::AtomicFile;

/// The `.npy` record layout of an event.
pub const NPY_FIELDS: &[(&str, Dtype)] = &[
    ("t", Dtype::U8),
    ("x", Dtype::U2),
    ("y", Dtype::U2),
    ("p", Dtype::U1),
];

/// Which EVT encoding a `.raw` file gets.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RawEncoding {
    Evt2,
    #[default]
    Evt3,
}

/// What the writers need beyond the events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriteOptions {
    /// Sensor size written into EVT/DAT headers (events outside it are refused).
    pub width: u16,
    pub height: u16,
    pub raw: RawEncoding,
}

/// Output file kinds, by extension.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputKind {
    Raw,
    Dat,
    Npy,
    Csv,
}

impl OutputKind {
    pub fn of(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "raw" => Self::Raw,
            "dat" => Self::Dat,
            "npy" => Self::Npy,
            "csv" => Self::Csv,
            _ => return None,
        })
    }

    /// Whether the format stores trigger events.
    pub fn keeps_triggers(self) -> bool {
        matches!(self, Self::Raw)
    }
}

/// Origins at or past this are written as `% t0` (see the module note).
const ORIGIN_THRESHOLD: u64 = 1 << 32;

enum Encoder {
    /// Not begun: the origin is chosen from the first time written.
    Pending,
    Evt2(Evt2Writer),
    Evt3(Evt3Writer),
    Dat(DatWriter),
    Npy,
    Csv,
}

/// What a finished write stored.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteSummary {
    pub events: u64,
    pub triggers: u64,
    /// Triggers the format cannot store (`.dat`, `.npy`, `.csv`).
    pub triggers_dropped: u64,
}

/// A streaming event file writer: [`write`](Self::write) chunks in time order, then
/// [`finish`](Self::finish). Dropped without `finish`, nothing replaces the target file.
pub struct EventWriter {
    path: PathBuf,
    kind: OutputKind,
    options: WriteOptions,
    file: AtomicFile,
    encoder: Encoder,
    buf: Vec<u8>,
    summary: WriteSummary,
}

impl EventWriter {
    /// A writer for `path`, its format chosen by the extension.
    pub fn create(path: &Path, options: WriteOptions) -> Result<Self, EventsError> {
        let kind = OutputKind::of(path).ok_or_else(|| EventsError::UnknownOutput {
            path: path.to_path_buf(),
        })?;
        let file = AtomicFile::create(path).map_err(|source| EventsError::Write {
            path: path.to_path_buf(),
            source,
        })?;
        let mut w = Self {
            path: path.to_path_buf(),
            kind,
            options,
            file,
            encoder: Encoder::Pending,
            buf: Vec::with_capacity(1 << 16),
            summary: WriteSummary::default(),
        };
        match kind {
            OutputKind::Npy => {
                w.buf
                    .extend_from_slice(&echos_npy::structured_header(NPY_FIELDS, 0));
                w.encoder = Encoder::Npy;
            }
            OutputKind::Csv => {
                w.buf.extend_from_slice(b"t,x,y,p\n");
                w.encoder = Encoder::Csv;
            }
            OutputKind::Raw | OutputKind::Dat => {}
        }
        Ok(w)
    }

    fn encode_error(&self, error: WriteError) -> EventsError {
        EventsError::Encode {
            path: self.path.clone(),
            error,
        }
    }

    fn begin(&mut self, t: u64) -> Result<(), EventsError> {
        if !matches!(self.encoder, Encoder::Pending) {
            return Ok(());
        }
        let origin = if t >= ORIGIN_THRESHOLD { t } else { 0 };
        let WriteOptions { width, height, raw } = self.options;
        let made = match (self.kind, raw) {
            (OutputKind::Raw, RawEncoding::Evt3) => {
                Evt3Writer::new(width, height).map(|w| Encoder::Evt3(w.with_origin(origin)))
            }
            (OutputKind::Raw, RawEncoding::Evt2) => {
                Evt2Writer::new(width, height).map(|w| Encoder::Evt2(w.with_origin(origin)))
            }
            _ => DatWriter::new(DatVersion::V2, DatRecordKind::Cd, width, height)
                .map(|w| Encoder::Dat(w.with_origin(origin))),
        };
        self.encoder = made.map_err(|e| self.encode_error(e))?;
        Ok(())
    }

    /// Append events and the triggers among them, each in time order (merged here by time;
    /// a trigger at an event's time goes first).
    pub fn write(
        &mut self,
        events: &[DvsEvent],
        triggers: &[TriggerEvent],
    ) -> Result<(), EventsError> {
        let first = match (events.first(), triggers.first()) {
            (Some(e), Some(t)) => e.t.min(t.t),
            (Some(e), None) => e.t,
            (None, Some(t)) => t.t,
            (None, None) => return Ok(()),
        };
        self.begin(first)?;
        let keeps = self.kind.keeps_triggers();
        let mut ti = 0;
        let mut ei = 0;
        while ei < events.len() || ti < triggers.len() {
            // the run of events before the next trigger, then that trigger
            let run = match triggers.get(ti) {
                Some(t) => events[ei..].partition_point(|e| e.t < t.t),
                None => events.len() - ei,
            };
            self.events(&events[ei..ei + run])?;
            ei += run;
            if ti < triggers.len() {
                if keeps {
                    self.trigger(&triggers[ti..ti + 1])?;
                    self.summary.triggers += 1;
                } else {
                    self.summary.triggers_dropped += 1;
                }
                ti += 1;
            }
        }
        if self.buf.len() >= 1 << 20 {
            self.flush_buf()?;
        }
        Ok(())
    }

    fn events(&mut self, events: &[DvsEvent]) -> Result<(), EventsError> {
        if events.is_empty() {
            return Ok(());
        }
        let buf = &mut self.buf;
        let r = match &mut self.encoder {
            Encoder::Evt3(w) => w.write_events(events, buf),
            Encoder::Evt2(w) => w.write_events(events, buf),
            Encoder::Dat(w) => w.write_events(events, buf),
            Encoder::Npy => {
                for e in events {
                    buf.extend_from_slice(&e.t.to_le_bytes());
                    buf.extend_from_slice(&e.x.to_le_bytes());
                    buf.extend_from_slice(&e.y.to_le_bytes());
                    buf.push(e.p);
                }
                Ok(())
            }
            Encoder::Csv => {
                use std::fmt::Write as _;
                let mut line = String::with_capacity(64);
                for e in events {
                    line.clear();
                    let _ = writeln!(line, "{},{},{},{}", e.t, e.x, e.y, e.p);
                    buf.extend_from_slice(line.as_bytes());
                }
                Ok(())
            }
            Encoder::Pending => Ok(()),
        };
        r.map_err(|e| self.encode_error(e))?;
        self.summary.events += events.len() as u64;
        Ok(())
    }

    fn trigger(&mut self, t: &[TriggerEvent]) -> Result<(), EventsError> {
        let buf = &mut self.buf;
        let r = match &mut self.encoder {
            Encoder::Evt3(w) => w.write_triggers(t, buf),
            Encoder::Evt2(w) => w.write_triggers(t, buf),
            _ => Ok(()),
        };
        r.map_err(|e| self.encode_error(e))
    }

    fn flush_buf(&mut self) -> Result<(), EventsError> {
        let r = self.file.write_all(&self.buf);
        self.buf.clear();
        r.map_err(|source| EventsError::Write {
            path: self.path.clone(),
            source,
        })
    }

    /// Write what is buffered, patch the `.npy` count, and put the file in place.
    pub fn finish(mut self) -> Result<WriteSummary, EventsError> {
        if matches!(self.encoder, Encoder::Pending) {
            // no events at all: still a valid (empty) file with its header
            self.begin(0)?;
        }
        let mut tail = Vec::new();
        match &mut self.encoder {
            Encoder::Evt3(w) => w.finish(&mut tail),
            Encoder::Evt2(w) => w.finish(&mut tail),
            Encoder::Dat(w) => w.finish(&mut tail),
            _ => {}
        }
        self.buf.extend_from_slice(&tail);
        self.flush_buf()?;
        let io = |source| EventsError::Write {
            path: self.path.clone(),
            source,
        };
        if self.kind == OutputKind::Npy {
            let header = echos_npy::structured_header(NPY_FIELDS, self.summary.events as usize);
            self.file.seek(SeekFrom::Start(0)).map_err(io)?;
            self.file.write_all(&header).map_err(io)?;
        }
        let summary = self.summary;
        let path = self.path.clone();
        self.file
            .commit()
            .map_err(|source| EventsError::Write { path, source })?;
        Ok(summary)
    }
}

/// Write a whole recording to `path` (format by extension).
pub fn write_events(
    path: &Path,
    events: &[DvsEvent],
    triggers: &[TriggerEvent],
    options: WriteOptions,
) -> Result<WriteSummary, EventsError> {
    let mut w = EventWriter::create(path, options)?;
    let mut ti = 0;
    for chunk in events.chunks(1 << 16) {
        // triggers go with the chunk whose time span they fall in
        let last = chunk.last().map_or(0, |e| e.t);
        let n = triggers[ti..].partition_point(|t| t.t <= last);
        w.write(chunk, &triggers[ti..ti + n])?;
        ti += n;
    }
    w.write(&[], &triggers[ti..])?;
    w.finish()
}
