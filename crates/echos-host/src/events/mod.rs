//! Event-camera files on the host: one reader for every format ([`open`]: Prophesee EVT 2.0,
//! 2.1, 3.0 and DAT, N-MNIST, iniVation AEDAT 4.0, and our own `.npy` / `.csv` tables), the
//! format recognised from the content first and the extension second; writers chosen by
//! extension ([`write`]); and time-binned encodings of a recording into reservoir input rows
//! ([`bins`]). The decoders of the camera formats live in `echos_core::events` (`no_std`);
//! AEDAT 4 needs decompression and lives here ([`aedat4`]).

pub mod aedat2;
pub mod aedat31;
pub mod aedat4;
mod aedat_text;
pub mod bins;
mod flatbuf;
pub mod simulate;
pub mod summary;
pub mod tables;
pub mod task;
pub mod write;

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use echos_core::events::{decoder_for, EventDecoder, Format, Header};
pub use echos_core::events::{DecodeError, DvsEvent, Stats, TriggerEvent, WriteError};

pub use aedat4::{Aedat4Counts, Aedat4Decoder, Aedat4Header};
use aedat_text::TextHeader;
pub use summary::{Summary, Tally};
pub use write::{write_events, EventWriter, OutputKind, RawEncoding, WriteOptions, WriteSummary};

/// Every event file format the host reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventFormat {
    Evt2,
    Evt21,
    Evt3,
    Dat,
    Nmnist,
    Aedat2,
    Aedat31,
    Aedat4,
    Npy,
    Csv,
}

impl EventFormat {
    pub fn name(self) -> &'static str {
        match self {
            Self::Evt2 => "evt2",
            Self::Evt21 => "evt2.1",
            Self::Evt3 => "evt3",
            Self::Dat => "dat",
            Self::Nmnist => "nmnist",
            Self::Aedat2 => "aedat2",
            Self::Aedat31 => "aedat3.1",
            Self::Aedat4 => "aedat4",
            Self::Npy => "npy",
            Self::Csv => "csv",
        }
    }

    fn from_core(f: Format) -> Self {
        match f {
            Format::Evt2 => Self::Evt2,
            Format::Evt21 => Self::Evt21,
            Format::Evt3 => Self::Evt3,
            Format::Dat => Self::Dat,
            Format::Nmnist => Self::Nmnist,
            Format::Aedat2 => Self::Aedat2,
            Format::Aedat31 => Self::Aedat31,
            Format::Aedat4 => Self::Aedat4,
        }
    }

    /// The format a file name suggests (the fallback when the content says nothing).
    pub fn from_extension(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "raw" => Self::Evt3,
            "dat" => Self::Dat,
            "bin" => Self::Nmnist,
            "aedat4" => Self::Aedat4,
            "aedat" => Self::Aedat2,
            "npy" => Self::Npy,
            "csv" => Self::Csv,
            _ => return None,
        })
    }
}

/// What a file's header says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HeaderInfo {
    pub format: EventFormat,
    /// `3.0` (EVT), `2` (DAT), `4.0` (AEDAT 4).
    pub version: Option<String>,
    pub width: Option<u16>,
    pub height: Option<u16>,
    pub date: Option<String>,
    /// Every other key the header carries, in order (`%` lines as written; AEDAT 4:
    /// `compression`, `data_table_position` and `stream.<id>.<key>` for each stream).
    pub entries: Vec<(String, String)>,
    /// Bytes of header before the first record.
    pub len: usize,
}

/// Why an event file cannot be read or written. Offsets are byte positions in the file.
#[derive(Debug, thiserror::Error)]
pub enum EventsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a recognised event file (content matches no format and the extension is not .raw, .dat, .bin, .aedat4, .npy or .csv)")]
    UnknownFormat { path: PathBuf },
    #[error("{path}: {format} files cannot be read yet")]
    Unsupported { path: PathBuf, format: &'static str },
    #[error("{path}: bad header: {message}")]
    Header { path: PathBuf, message: String },
    #[error("{path}: {error}")]
    Decode { path: PathBuf, error: DecodeError },
    #[error("{path}: {error}")]
    Encode { path: PathBuf, error: WriteError },
    #[error("{path}: unknown output type (expected .raw, .dat, .npy or .csv)")]
    UnknownOutput { path: PathBuf },
}

/// `error` with its offsets moved from the decoder's input to the file.
fn at_file_offset(error: DecodeError, base: u64) -> DecodeError {
    match error {
        DecodeError::Truncated {
            offset,
            have,
            record_len,
        } => DecodeError::Truncated {
            offset: offset + base,
            have,
            record_len,
        },
        DecodeError::UnsupportedRecord {
            offset,
            event_type,
            event_size,
        } => DecodeError::UnsupportedRecord {
            offset: offset + base,
            event_type,
            event_size,
        },
        DecodeError::Corrupt { offset, what } => DecodeError::Corrupt {
            offset: offset + base,
            what,
        },
        e @ DecodeError::PendingOutput { .. } => e,
    }
}

/// Read at most this much of a file to recognise it and parse a `%` header.
const PREFIX: usize = echos_core::events::header::MAX_HEADER_LEN + 64;

/// Input read from the file per decoder call.
const READ_CHUNK: usize = 1 << 20;

/// Events [`EventReader::next_chunk`] returns per call unless told otherwise.
pub const DEFAULT_CHUNK_EVENTS: usize = 1 << 16;

enum Decoder {
    Core(Box<dyn EventDecoder + Send>),
    Aedat4(Box<Aedat4Decoder>),
    Npy(tables::NpyEventDecoder),
    Csv(tables::CsvEventDecoder),
}

impl Decoder {
    fn get(&mut self) -> &mut dyn EventDecoder {
        match self {
            Self::Core(d) => d.as_mut(),
            Self::Aedat4(d) => d.as_mut(),
            Self::Npy(d) => d,
            Self::Csv(d) => d,
        }
    }
}

/// A whole recording in memory.
#[derive(Clone, Debug)]
pub struct Recording {
    pub info: HeaderInfo,
    pub events: Vec<DvsEvent>,
    pub triggers: Vec<TriggerEvent>,
    pub stats: Stats,
    /// Frames, IMU samples and packets of an AEDAT 4 file.
    pub aedat4: Option<Aedat4Counts>,
}

/// A streaming reader of one event file ([`open`]).
pub struct EventReader {
    path: PathBuf,
    file: File,
    file_len: u64,
    info: HeaderInfo,
    decoder: Decoder,
    input: Vec<u8>,
    /// Unconsumed bytes are `input[start..end]`.
    start: usize,
    end: usize,
    /// File position of `input[end]`.
    read_pos: u64,
    eof: bool,
    /// CSV: the final newline fed once at the end of the file.
    fed_newline: bool,
    /// The last decode call stopped on a full output buffer (so at the end of the file the
    /// decoder is called once more, with no input, before `finish`).
    output_full: bool,
    finished: Option<Stats>,
    chunk_events: usize,
    trigger_buf: Vec<TriggerEvent>,
    triggers: Vec<TriggerEvent>,
}

/// Open an event file: recognise its format (content, then extension), parse its header and
/// set up its decoder. Nothing beyond the header is read yet.
pub fn open(path: &Path) -> Result<EventReader, EventsError> {
    let read_err = |source| EventsError::Read {
        path: path.to_path_buf(),
        source,
    };
    let mut file = File::open(path).map_err(read_err)?;
    let file_len = file.metadata().map_err(read_err)?.len();
    let mut prefix = Vec::new();
    (&mut file)
        .take(PREFIX as u64)
        .read_to_end(&mut prefix)
        .map_err(read_err)?;
    let format = if prefix.starts_with(echos_npy::MAGIC) {
        Some(EventFormat::Npy)
    } else {
        Format::detect(&prefix)
            .map(EventFormat::from_core)
            .filter(|f| *f != EventFormat::Nmnist || EventFormat::from_extension(path).is_none())
            .or_else(|| EventFormat::from_extension(path))
    };
    let format = format.ok_or_else(|| EventsError::UnknownFormat {
        path: path.to_path_buf(),
    })?;
    let header_err = |message: String| EventsError::Header {
        path: path.to_path_buf(),
        message,
    };
    let (info, decoder) = match format {
        EventFormat::Aedat4 => {
            let h = match Aedat4Header::parse(&prefix) {
                Err(aedat4::Aedat4HeaderError::Incomplete { needed, .. })
                    if needed as u64 <= file_len =>
                {
                    // a description longer than the prefix: read the rest of the header
                    (&mut file)
                        .take(needed as u64 - prefix.len() as u64)
                        .read_to_end(&mut prefix)
                        .map_err(read_err)?;
                    Aedat4Header::parse(&prefix)
                }
                r => r,
            }
            .map_err(|e| header_err(e.to_string()))?;
            let info = aedat4_info(&h);
            let d = Aedat4Decoder::new(&h, None).with_input_len(file_len - h.len as u64);
            (info, Decoder::Aedat4(Box::new(d)))
        }
        EventFormat::Aedat2 => {
            let h = TextHeader::parse(&prefix, "#!AER-DAT2.0", None)
                .map_err(|e| header_err(e.to_string()))?;
            let layout = match h.get("AEChip") {
                None => aedat2::Aedat2Layout::Dvs128,
                Some(chip) => match aedat_text::sensor(chip) {
                    Some((_, _, false)) => aedat2::Aedat2Layout::Dvs128,
                    Some((width, height, true)) => aedat2::Aedat2Layout::Davis { width, height },
                    None => {
                        return Err(header_err(format!(
                            "AEChip {chip:?} has no known address layout (known: DVS128, DAVIS240, DAVIS346, DAVIS640)"
                        )))
                    }
                },
            };
            let (w, hh) = layout.size();
            let info = text_info(format, "2.0", &h, Some((w, hh)), "created");
            (
                info,
                Decoder::Core(Box::new(aedat2::Aedat2Decoder::new(layout))),
            )
        }
        EventFormat::Aedat31 => {
            let h = TextHeader::parse(&prefix, "#!AER-DAT3.1", Some("#!END-HEADER"))
                .map_err(|e| header_err(e.to_string()))?;
            let size = h
                .entries
                .iter()
                .find(|(k, _)| k.starts_with("Source"))
                .and_then(|(_, v)| aedat_text::sensor(v))
                .map(|(w, hh, _)| (w, hh));
            let info = text_info(format, "3.1", &h, size, "Start-Time");
            let (w, hh) = size.unwrap_or((0x7FFF, 0x7FFF));
            (
                info,
                Decoder::Core(Box::new(aedat31::Aedat31Decoder::new(w, hh))),
            )
        }
        EventFormat::Npy => {
            let h =
                echos_npy::RecordsHeader::parse(&prefix).map_err(|e| header_err(e.to_string()))?;
            let data = h.data_len().map_err(|e| header_err(e.to_string()))? as u64;
            let have = file_len.saturating_sub(h.data_start as u64);
            if have != data {
                return Err(header_err(format!(
                    "the header announces {} records ({data} bytes) but {have} bytes follow it",
                    h.len
                )));
            }
            let d = tables::NpyEventDecoder::new(&h.layout).map_err(header_err)?;
            let info = HeaderInfo {
                format,
                version: None,
                width: None,
                height: None,
                date: None,
                entries: vec![("records".into(), h.len.to_string())],
                len: h.data_start,
            };
            (info, Decoder::Npy(d))
        }
        EventFormat::Csv => {
            let info = HeaderInfo {
                format,
                version: None,
                width: None,
                height: None,
                date: None,
                entries: Vec::new(),
                len: 0,
            };
            (info, Decoder::Csv(tables::CsvEventDecoder::new()))
        }
        _ => {
            let core = match format {
                EventFormat::Evt2 => Format::Evt2,
                EventFormat::Evt21 => Format::Evt21,
                EventFormat::Dat => Format::Dat,
                EventFormat::Nmnist => Format::Nmnist,
                _ => Format::Evt3,
            };
            let h = match Header::parse(&prefix) {
                Ok(h) => h,
                Err(e) => return Err(header_err(e.to_string())),
            };
            let mut info = HeaderInfo {
                format,
                version: h.version.clone(),
                width: h.width,
                height: h.height,
                date: h.date.clone(),
                entries: h.entries.clone(),
                len: h.len,
            };
            if format == EventFormat::Nmnist {
                let s = echos_core::events::nmnist::NMNIST_SIZE;
                (info.width, info.height) = (Some(s), Some(s));
            }
            let d = decoder_for(core, &h).ok_or_else(|| EventsError::Unsupported {
                path: path.to_path_buf(),
                format: format.name(),
            })?;
            (info, Decoder::Core(d))
        }
    };
    // the bytes already read past the header are the decoder's first input
    let header_len = info.len.min(prefix.len());
    let read_pos = prefix.len() as u64;
    prefix.drain(..header_len);
    let end = prefix.len();
    Ok(EventReader {
        path: path.to_path_buf(),
        file,
        file_len,
        info,
        decoder,
        input: prefix,
        start: 0,
        end,
        read_pos,
        eof: read_pos >= file_len,
        fed_newline: false,
        output_full: false,
        finished: None,
        chunk_events: DEFAULT_CHUNK_EVENTS,
        trigger_buf: vec![TriggerEvent::default(); 1024],
        triggers: Vec::new(),
    })
}

/// Header info of an AEDAT 2.0 / 3.1 text header; `date_key` names its date line (2.0 writes
/// `# created <date>` without a colon, so a key starting with it counts too).
fn text_info(
    format: EventFormat,
    version: &str,
    h: &TextHeader,
    size: Option<(u16, u16)>,
    date_key: &str,
) -> HeaderInfo {
    let date = h.entries.iter().find_map(|(k, v)| {
        if k == date_key {
            Some(v.clone())
        } else {
            k.strip_prefix(date_key)
                .filter(|rest| rest.starts_with(' '))
                .map(|rest| {
                    format!(
                        "{}{}",
                        rest.trim(),
                        if v.is_empty() {
                            String::new()
                        } else {
                            format!(":{v}")
                        }
                    )
                })
        }
    });
    HeaderInfo {
        format,
        version: Some(version.to_string()),
        width: size.map(|s| s.0),
        height: size.map(|s| s.1),
        date,
        entries: h.entries.clone(),
        len: h.len,
    }
}

fn aedat4_info(h: &Aedat4Header) -> HeaderInfo {
    let mut entries = vec![
        ("compression".to_string(), h.compression.name().to_string()),
        (
            "data_table_position".to_string(),
            h.data_table_position
                .map_or("none".to_string(), |p| p.to_string()),
        ),
    ];
    for s in &h.streams {
        let k = |key: &str| format!("stream.{}.{key}", s.id);
        let kind = String::from_utf8_lossy(s.kind.identifier()).into_owned();
        entries.push((k("type"), kind));
        if let Some(n) = &s.name {
            entries.push((k("name"), n.clone()));
        }
        if let (Some(w), Some(hh)) = (s.width, s.height) {
            entries.push((k("geometry"), format!("{w}x{hh}")));
        }
        if let Some(src) = &s.source {
            entries.push((k("source"), src.clone()));
        }
        if let Some(o) = s.ts_offset {
            entries.push((k("tsOffset"), o.to_string()));
        }
    }
    let ev = h.event_stream();
    HeaderInfo {
        format: EventFormat::Aedat4,
        version: Some("4.0".into()),
        width: ev.and_then(|s| s.width),
        height: ev.and_then(|s| s.height),
        date: None,
        entries,
        len: h.len,
    }
}

impl EventReader {
    pub fn info(&self) -> &HeaderInfo {
        &self.info
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Events per [`next_chunk`](Self::next_chunk) call (at least 1).
    pub fn with_chunk_events(mut self, n: usize) -> Self {
        self.chunk_events = n.max(1);
        self
    }

    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// File bytes decoded so far (for progress bars).
    pub fn position(&self) -> u64 {
        self.read_pos - (self.end - self.start) as u64
    }

    /// The decoder's counters so far (final once the reader is exhausted).
    pub fn stats(&mut self) -> Stats {
        match &self.finished {
            Some(s) => s.clone(),
            None => self.decoder.get().stats().clone(),
        }
    }

    /// AEDAT 4 frame, IMU and packet counts.
    pub fn aedat4_counts(&self) -> Option<&Aedat4Counts> {
        match &self.decoder {
            Decoder::Aedat4(d) => Some(d.counts()),
            _ => None,
        }
    }

    /// Triggers decoded so far and not yet taken.
    pub fn take_triggers(&mut self) -> Vec<TriggerEvent> {
        std::mem::take(&mut self.triggers)
    }

    fn decode_error(&self, error: DecodeError) -> EventsError {
        EventsError::Decode {
            path: self.path.clone(),
            error: at_file_offset(error, self.info.len as u64),
        }
    }

    /// Refill `input` from the file when it is used up.
    fn fill(&mut self) -> Result<(), EventsError> {
        if self.start < self.end || self.eof {
            return Ok(());
        }
        self.input.resize(READ_CHUNK, 0);
        let n = loop {
            match self.file.read(&mut self.input) {
                Ok(n) => break n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(source) => {
                    return Err(EventsError::Read {
                        path: self.path.clone(),
                        source,
                    })
                }
            }
        };
        self.start = 0;
        self.end = n;
        self.read_pos += n as u64;
        if n == 0 {
            self.eof = true;
        }
        Ok(())
    }

    /// Decode into `out[filled..]` until it is full or the file ends (then the decoder's end
    /// checks run); returns the new fill level.
    fn decode_into(
        &mut self,
        out: &mut [DvsEvent],
        mut filled: usize,
    ) -> Result<usize, EventsError> {
        while filled < out.len() && self.finished.is_none() {
            self.fill()?;
            let at_end = self.eof && self.start == self.end;
            // CSV: one newline after the last byte, so a last row without one is a row
            let csv_tail = at_end && matches!(self.decoder, Decoder::Csv(_)) && !self.fed_newline;
            if at_end && !csv_tail && !self.output_full {
                let s = self
                    .decoder
                    .get()
                    .finish()
                    .map_err(|e| self.decode_error(e))?;
                self.finished = Some(s);
                break;
            }
            let input: &[u8] = if csv_tail {
                b"\n"
            } else if at_end {
                &[]
            } else {
                &self.input[self.start..self.end]
            };
            let r = self
                .decoder
                .get()
                .decode(input, &mut out[filled..], &mut self.trigger_buf);
            let p = r.map_err(|e| self.decode_error(e))?;
            self.output_full = p.output_full;
            filled += p.events;
            self.triggers
                .extend_from_slice(&self.trigger_buf[..p.triggers]);
            if csv_tail {
                self.fed_newline = p.consumed == 1;
            } else if !at_end {
                self.start += p.consumed;
            }
        }
        Ok(filled)
    }

    /// Decode the next events straight into `out` (filled up to its length unless the file
    /// ends first); `Ok(0)` once the file is exhausted and its end checked. For callers that
    /// keep one cache-sized buffer and move each batch on (Python's `echos.events.read`).
    pub fn read_into(&mut self, out: &mut [DvsEvent]) -> Result<usize, EventsError> {
        if out.is_empty() {
            return Ok(0);
        }
        self.decode_into(out, 0)
    }

    /// Events the rest of the file likely holds, to reserve output space up front: an upper
    /// bound where the format has one (EVT 2.0 at most one event per 4-byte word, DAT one per
    /// 8-byte record, N-MNIST one per 5 bytes, `.npy` its record count), a typical density
    /// for EVT 3.0 (8 bytes per event; vector words can pack more, then the output grows), and
    /// 0 where the file's size says little (AEDAT, EVT 2.1, CSV).
    pub fn events_hint(&self) -> usize {
        let left = self.file_len.saturating_sub(self.position());
        let per_event = match self.info.format {
            EventFormat::Evt2 => 4,
            EventFormat::Evt3 | EventFormat::Dat => 8,
            EventFormat::Nmnist => 5,
            EventFormat::Npy => self.npy_record_len().unwrap_or(0),
            _ => 0,
        };
        if per_event == 0 {
            return 0;
        }
        usize::try_from(left / per_event as u64).unwrap_or(usize::MAX)
    }

    fn npy_record_len(&self) -> Option<usize> {
        let records: u64 = self
            .info
            .entries
            .iter()
            .find(|(k, _)| k == "records")?
            .1
            .parse()
            .ok()?;
        let data = self.file_len.saturating_sub(self.info.len as u64);
        (records > 0).then(|| (data / records) as usize)
    }

    /// Replace `out` with the next chunk of events (up to the chunk size); `Ok(0)` once the
    /// file is exhausted and its end checked. The decoder writes straight into `out`.
    pub fn next_chunk(&mut self, out: &mut Vec<DvsEvent>) -> Result<usize, EventsError> {
        out.clear();
        out.resize(self.chunk_events, DvsEvent::default());
        let n = self.decode_into(out, 0);
        let n = match n {
            Ok(n) => n,
            Err(e) => {
                out.clear();
                return Err(e);
            }
        };
        out.truncate(n);
        Ok(n)
    }

    /// Decode the rest of the file into one vector.
    pub fn read_all(mut self) -> Result<Recording, EventsError> {
        // Reserve from the hint (capped at 2^26 events, 1 GiB) and grow the initialised part
        // one chunk at a time, so each chunk is zeroed and then decoded while in cache.
        let mut events: Vec<DvsEvent> = Vec::with_capacity(self.events_hint().min(1 << 26));
        let mut filled = 0;
        while self.finished.is_none() {
            events.resize(filled + DEFAULT_CHUNK_EVENTS, DvsEvent::default());
            filled = self.decode_into(&mut events, filled)?;
        }
        events.truncate(filled);
        let stats = self.stats();
        let aedat4 = self.aedat4_counts().cloned();
        Ok(Recording {
            info: self.info,
            events,
            triggers: self.triggers,
            stats,
            aedat4,
        })
    }
}
