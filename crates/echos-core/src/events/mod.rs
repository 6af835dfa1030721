//! Neuromorphic event streams in the engine (`no_std` + `alloc`): the DVS event type, streaming
//! decoders and writers for the Prophesee formats (EVT 2.0, 2.1, 3.0, DAT) and N-MNIST, a
//! lock-free temporal event queue, and encoders that turn time bins of events into reservoir
//! input vectors. docs/events.md describes the formats, the rules chosen where specs are silent,
//! and how the golden values in the tests were made.
//!
//! Decoders share one contract ([`EventDecoder`]): they take bytes in chunks of any size (a record
//! split across chunks is carried over in a few bytes of state), write into the caller's buffers,
//! stop when a buffer is full and resume on the next call, use constant memory and do bounded
//! work per input byte. They never panic on any input: oddities are counted in [`Stats`], and
//! only a truncated final record or a structurally impossible stream is an error.

pub mod dat;
pub mod encode;
pub mod evt2;
pub mod evt3;
pub mod header;
pub mod nmnist;
pub mod queue;

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;

pub use dat::{DatDecoder, DatRecordKind, DatVersion, DatWriter};
pub use encode::{
    dvs_process_events, Crop, Denoise, Downsample, EncodeError, EventCounts, EventEncoder,
    EventFilter, Grid, MergePolarity, TimeBin, TimeSurface, TimeWindows, VoxelGrid,
};
pub use evt2::{Evt21Decoder, Evt21Layout, Evt2Decoder, Evt2Writer};
pub use evt3::{Evt3Decoder, Evt3Writer};
pub use header::{Format, Header, HeaderError};
pub use nmnist::NmnistDecoder;
pub use queue::{
    Consumer, EventQueue, LatePolicy, OverflowPolicy, Producer, PushError, PushOutcome, QueueError,
};

/// One change-detection event: `struct dvs_event` of the vision. `t` in microseconds from the
/// stream's time origin, `p` 1 for ON (brighter), 0 for OFF.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct DvsEvent {
    pub t: u64,
    pub x: u16,
    pub y: u16,
    pub p: u8,
}

impl DvsEvent {
    pub const fn new(t: u64, x: u16, y: u16, p: u8) -> Self {
        Self { t, x, y, p }
    }
}

/// An external-trigger edge: `channel` is the trigger input's id, `value` 1 for a rising edge.
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct TriggerEvent {
    pub t: u64,
    pub channel: u8,
    pub value: u8,
}

/// What one [`EventDecoder::decode`] call did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Progress {
    /// Input bytes used; the next call must start at `input[consumed..]`.
    pub consumed: usize,
    /// Events written to the front of the event buffer.
    pub events: usize,
    /// Triggers written to the front of the trigger buffer.
    pub triggers: usize,
    /// The call stopped because an output buffer was full: call again (with the rest of the
    /// input, or an empty slice) before [`EventDecoder::finish`].
    pub output_full: bool,
}

/// Counters kept over a whole stream. Every record a decoder does not turn into an event is
/// counted somewhere here, so a caller can tell a clean file from a damaged one.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Input bytes consumed (header bytes are the caller's; they are not fed to decoders).
    pub bytes: u64,
    pub events: u64,
    pub triggers: u64,
    /// Words skipped, by their 4-bit type (EVT formats): OTHERS, CONTINUED and reserved types.
    pub skipped_words: [u64; 16],
    /// Events whose coordinates lie outside the declared sensor: dropped.
    pub out_of_bounds: u64,
    /// Byte offset (from the start of the decoder's input) of the first such record.
    pub first_out_of_bounds: Option<u64>,
    /// Events before the first complete time base (EVT formats): dropped, since their time is
    /// unknown.
    pub before_time_base: u64,
    /// Timestamp wraps carried into the 64-bit time.
    pub time_wraps: u64,
    /// Timestamps that went back by less than half the counter range (not a wrap): kept as
    /// they are, so the output is not monotonic there.
    pub time_jumps_back: u64,
    pub first_time_jump_back: Option<u64>,
    /// Triggers dropped because the decoder was told to discard them.
    pub triggers_discarded: u64,
    /// N-MNIST timestamp-overflow markers (`y == 240`).
    pub overflow_markers: u64,
    /// Records of other kinds that a decoder counts but does not decode (frames, IMU samples,
    /// other packets in AEDAT files).
    pub other_records: u64,
}

impl Stats {
    pub fn skipped_total(&self) -> u64 {
        self.skipped_words.iter().sum()
    }
}

/// Why a stream cannot be decoded.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// The stream ended inside a record.
    Truncated {
        offset: u64,
        have: usize,
        record_len: usize,
    },
    /// `finish` was called while decoded events still wait for output space.
    PendingOutput { events: usize },
    /// A DAT stream's type/size bytes name a record this decoder does not read.
    UnsupportedRecord {
        offset: u64,
        event_type: u8,
        event_size: u8,
    },
    /// A structure the format defines is broken at `offset` (a container's size field, a
    /// compressed frame, a table): the std-side AEDAT decoders name what with `what`.
    Corrupt { offset: u64, what: &'static str },
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Truncated { offset, have, record_len } => write!(
                f,
                "the stream ends inside a record at byte {offset}: {have} of its {record_len} bytes are present"
            ),
            Self::PendingOutput { events } => write!(
                f,
                "{events} decoded events are still waiting for output space; call decode again before finish"
            ),
            Self::UnsupportedRecord { offset, event_type, event_size } => write!(
                f,
                "DAT record type {event_type:#04x} of size {event_size} at byte {offset} is not a CD or trigger record of 8 bytes"
            ),
            Self::Corrupt { offset, what } => write!(f, "corrupt data at byte {offset}: {what}"),
        }
    }
}

/// A streaming decoder of one event format. AEDAT decoders on the std side implement the same
/// trait, so readers and the CLI drive every format alike.
pub trait EventDecoder {
    /// Decode as much of `input` as fits into `events` and `triggers`.
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError>;

    /// End of stream: an error if a record was cut or output is still pending; else the counters.
    fn finish(&mut self) -> Result<Stats, DecodeError>;

    /// The counters so far.
    fn stats(&self) -> &Stats;
}

/// Where writers put bytes: a `Vec<u8>` or any `FnMut(&[u8])` (a file, a socket, a hash).
pub trait ByteSink {
    fn put(&mut self, bytes: &[u8]);
}

impl ByteSink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

impl<F: FnMut(&[u8])> ByteSink for F {
    fn put(&mut self, bytes: &[u8]) {
        self(bytes)
    }
}

/// Why a writer refused events.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WriteError {
    /// Event `index` of the call lies outside the writer's sensor (or the format's range).
    OutOfBounds {
        index: usize,
        x: u16,
        y: u16,
        width: u16,
        height: u16,
    },
    /// Event `index` is earlier than the one before it (or than the writer's origin): the
    /// formats' relative time bases need non-decreasing timestamps.
    NotMonotonic { index: usize, t: u64, previous: u64 },
    /// DAT stores 32-bit times: a step of 2^31 µs or more cannot be told from a wrap, and the
    /// first time must fit in 32 bits (set an origin).
    TimeNotRepresentable { index: usize, t: u64 },
    /// The sensor size is larger than the format can address.
    Geometry { width: u16, height: u16, max: u16 },
    /// This DAT writer holds the other record kind (a DAT file holds CD events or triggers).
    WrongRecordKind,
    /// A trigger channel beyond the format's field.
    TriggerChannel { index: usize, channel: u8, max: u8 },
}

impl fmt::Display for WriteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::OutOfBounds { index, x, y, width, height } => write!(
                f,
                "event {index} at ({x}, {y}) lies outside the {width}x{height} sensor"
            ),
            Self::NotMonotonic { index, t, previous } => write!(
                f,
                "event {index} at t = {t} µs is earlier than the previous one ({previous} µs); sort the events first"
            ),
            Self::TimeNotRepresentable { index, t } => write!(
                f,
                "event {index} at t = {t} µs cannot be stored in DAT's 32-bit time (first time ≥ 2^32 µs or a step ≥ 2^31 µs); set an origin"
            ),
            Self::Geometry { width, height, max } => write!(
                f,
                "a {width}x{height} sensor exceeds this format's largest coordinate {max}"
            ),
            Self::WrongRecordKind => write!(
                f,
                "a DAT file holds one record kind: this writer was made for the other one"
            ),
            Self::TriggerChannel { index, channel, max } => write!(
                f,
                "trigger {index} names channel {channel}; this format stores channels 0..={max}"
            ),
        }
    }
}

/// FNV-1a 64 over each event's `t` (u64), `x`, `y` (u16) little-endian and `p` (u8), in order:
/// the digest the golden tests pin (bench/events_golden.py computes the same over peers' output).
pub fn events_digest(events: &[DvsEvent]) -> u64 {
    let mut d = EventsDigest::new();
    d.update(events);
    d.finish()
}

/// [`events_digest`] over a stream of chunks.
#[derive(Clone, Copy, Debug, Default)]
pub struct EventsDigest(crate::integer::Fnv1a);

impl EventsDigest {
    pub const fn new() -> Self {
        Self(crate::integer::Fnv1a::new())
    }
    pub fn update(&mut self, events: &[DvsEvent]) {
        for e in events {
            let mut b = [0u8; 13];
            b[..8].copy_from_slice(&e.t.to_le_bytes());
            b[8..10].copy_from_slice(&e.x.to_le_bytes());
            b[10..12].copy_from_slice(&e.y.to_le_bytes());
            b[12] = e.p;
            self.0.write(&b);
        }
    }
    pub fn finish(&self) -> u64 {
        self.0.finish()
    }
}

/// What a decoder did with one record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Step {
    Done,
    /// No room for its output: the record was not consumed.
    Blocked,
    /// Consumed, but some of its events wait in the decoder's pending vector.
    Filled,
}

/// The part of a decoder's state every fixed-size-record format shares: the carried partial
/// record, the stream offset and the counters.
#[derive(Clone, Debug)]
pub(crate) struct Stream<const N: usize> {
    pub(crate) carry: Carry<N>,
    /// Stream offset of the next input byte (everything before it has been consumed).
    pub(crate) offset: u64,
    pub(crate) stats: Stats,
}

impl<const N: usize> Stream<N> {
    pub(crate) fn new() -> Self {
        Self {
            carry: Carry::new(),
            offset: 0,
            stats: Stats::default(),
        }
    }

    pub(crate) fn finish(&self, pending: usize) -> Result<Stats, DecodeError> {
        if pending > 0 {
            return Err(DecodeError::PendingOutput { events: pending });
        }
        if self.carry.len() > 0 {
            return Err(DecodeError::Truncated {
                offset: self.offset - self.carry.len() as u64,
                have: self.carry.len(),
                record_len: N,
            });
        }
        Ok(self.stats.clone())
    }
}

/// A decoder of fixed-size records, driven by [`drive`].
pub(crate) trait Records<const N: usize> {
    fn stream(&mut self) -> &mut Stream<N>;
    /// Decode one record found at stream offset `off`.
    fn record(
        &mut self,
        rec: &[u8; N],
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> Step;
    /// Decode whole records from `recs`, the first at stream offset `base`: how many were
    /// consumed, and [`Step::Done`] when all were, else the step of the last one tried (a
    /// blocked record is not consumed, a filled one is). Decoders with a faster loop for their
    /// common records override it; it must behave as this record-by-record loop does.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn records(
        &mut self,
        recs: &[[u8; N]],
        base: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> (usize, Step) {
        for (i, rec) in recs.iter().enumerate() {
            match self.record(rec, base + (i * N) as u64, events, n, triggers, nt) {
                Step::Done => {}
                Step::Blocked => return (i, Step::Blocked),
                Step::Filled => return (i + 1, Step::Filled),
            }
        }
        (recs.len(), Step::Done)
    }
    /// Events of a vector record still waiting for room.
    fn pending(&self) -> usize {
        0
    }
    fn drain(&mut self, _events: &mut [DvsEvent], _n: &mut usize) {}
}

/// The chunk loop every decoder shares: pending vector events first, then a record completed
/// from the carried bytes, then whole records, then the tail is carried. Stops (without
/// consuming the record) when an output buffer is full.
#[inline(always)]
pub(crate) fn drive<const N: usize, D: Records<N>>(
    d: &mut D,
    input: &[u8],
    events: &mut [DvsEvent],
    triggers: &mut [TriggerEvent],
) -> Progress {
    let mut n = 0;
    let mut nt = 0;
    let mut pos = 0;
    let mut full = false;
    if d.pending() > 0 {
        d.drain(events, &mut n);
        full = d.pending() > 0;
    }
    if !full && d.stream().carry.len() > 0 {
        let s = d.stream();
        let start = s.offset - s.carry.len() as u64;
        let (took, rec) = s.carry.fill(input);
        pos = took;
        if rec.is_none() {
            // The whole input went into the carried record, which is still incomplete.
            s.offset += pos as u64;
            s.stats.bytes = s.offset;
            s.stats.events += n as u64;
            return Progress {
                consumed: pos,
                events: n,
                triggers: 0,
                output_full: false,
            };
        }
        if let Some(b) = rec {
            match d.record(&b, start, events, &mut n, triggers, &mut nt) {
                Step::Done => {}
                Step::Blocked => {
                    d.stream().carry.restore(b);
                    full = true;
                }
                Step::Filled => full = true,
            }
        }
    }
    if !full {
        let body = &input[pos..];
        let (records, tail) = body.as_chunks::<N>();
        let base = d.stream().offset + pos as u64;
        let (i, step) = d.records(records, base, events, &mut n, triggers, &mut nt);
        full = step != Step::Done;
        if full {
            pos += i * N;
        } else {
            d.stream().carry.stash(tail);
            pos = input.len();
        }
    }
    let s = d.stream();
    s.offset += pos as u64;
    s.stats.bytes = s.offset;
    s.stats.events += n as u64;
    s.stats.triggers += nt as u64;
    Progress {
        consumed: pos,
        events: n,
        triggers: nt,
        output_full: full,
    }
}

/// A few bytes of a record cut by a chunk boundary, kept until the rest arrives.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Carry<const N: usize> {
    buf: [u8; N],
    len: usize,
}

impl<const N: usize> Carry<N> {
    pub(crate) const fn new() -> Self {
        Self {
            buf: [0; N],
            len: 0,
        }
    }
    pub(crate) fn len(&self) -> usize {
        self.len
    }
    /// Top the carried bytes up from `input`; returns how many input bytes it took and the
    /// record once complete (the carry is then empty).
    pub(crate) fn fill(&mut self, input: &[u8]) -> (usize, Option<[u8; N]>) {
        let take = (N - self.len).min(input.len());
        self.buf[self.len..self.len + take].copy_from_slice(&input[..take]);
        self.len += take;
        if self.len == N {
            self.len = 0;
            (take, Some(self.buf))
        } else {
            (take, None)
        }
    }
    /// Put back a record that could not be processed (no output room): it stays carried.
    pub(crate) fn restore(&mut self, record: [u8; N]) {
        self.buf = record;
        self.len = N;
    }
    /// Keep a short tail (fewer than N bytes) for the next call.
    pub(crate) fn stash(&mut self, tail: &[u8]) {
        debug_assert!(tail.len() < N && self.len == 0);
        let n = tail.len().min(N - 1);
        self.buf[..n].copy_from_slice(&tail[..n]);
        self.len = n;
    }
}

/// Events of one vector word (EVT 3 VECT_12/VECT_8, EVT 2.1 CD) that did not fit the output:
/// emitted first on the next call.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct PendingVector {
    pub(crate) mask: u32,
    pub(crate) x: u16,
    pub(crate) y: u16,
    pub(crate) p: u8,
    pub(crate) t: u64,
    pub(crate) offset: u64,
}

impl PendingVector {
    pub(crate) fn count(&self) -> usize {
        self.mask.count_ones() as usize
    }
}

/// Emit the set bits of `mask` (LSB first, bit i at x + i) into `events[*n..]`, dropping and
/// counting coordinates outside the sensor; what does not fit is returned as the remaining mask.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
pub(crate) fn emit_vector(
    mut mask: u32,
    x: u16,
    y: u16,
    p: u8,
    t: u64,
    width: u16,
    height: u16,
    offset: u64,
    events: &mut [DvsEvent],
    n: &mut usize,
    stats: &mut Stats,
) -> u32 {
    let y_ok = y < height;
    while mask != 0 {
        if *n >= events.len() {
            return mask;
        }
        let bit = mask.trailing_zeros();
        mask &= mask - 1;
        let ex = x as u32 + bit;
        if y_ok && ex < width as u32 {
            events[*n] = DvsEvent {
                t,
                x: ex as u16,
                y,
                p,
            };
            *n += 1;
        } else {
            note_out_of_bounds(stats, offset);
        }
    }
    0
}

#[cold]
pub(crate) fn note_out_of_bounds(stats: &mut Stats, offset: u64) {
    stats.out_of_bounds += 1;
    if stats.first_out_of_bounds.is_none() {
        stats.first_out_of_bounds = Some(offset);
    }
}

#[cold]
pub(crate) fn note_jump_back(stats: &mut Stats, offset: u64) {
    stats.time_jumps_back += 1;
    if stats.first_time_jump_back.is_none() {
        stats.first_time_jump_back = Some(offset);
    }
}

/// The decoder for a recognised format, set up from its header: sensor size (the format's
/// largest when the header declares none), `% t0`, EVT 2.1 word order, DAT layout. `None` for
/// the AEDAT formats, whose decoders live on the std side.
pub fn decoder_for(format: Format, header: &Header) -> Option<Box<dyn EventDecoder + Send>> {
    let t0 = header.t0.unwrap_or(0);
    let size = |max: u16| (header.width.unwrap_or(max), header.height.unwrap_or(max));
    Some(match format {
        Format::Evt3 => {
            let (w, h) = size(evt3::MAX_SIZE);
            Box::new(Evt3Decoder::new(w, h).with_time_offset(t0))
        }
        Format::Evt2 => {
            let (w, h) = size(evt2::MAX_SIZE);
            Box::new(Evt2Decoder::new(w, h).with_time_offset(t0))
        }
        Format::Evt21 => {
            let (w, h) = size(evt2::MAX_SIZE);
            Box::new(
                Evt21Decoder::new(w, h)
                    .with_layout(header.evt21_layout)
                    .with_time_offset(t0),
            )
        }
        Format::Dat => {
            let v = header.dat_version();
            let (mw, mh) = v.max_size();
            let w = header.width.unwrap_or(mw.min(u16::MAX as u32) as u16);
            let h = header.height.unwrap_or(mh.min(u16::MAX as u32) as u16);
            Box::new(DatDecoder::new(v, w, h).with_time_offset(t0))
        }
        Format::Nmnist => Box::new(NmnistDecoder::default()),
        Format::Aedat2 | Format::Aedat31 | Format::Aedat4 => return None,
    })
}

/// Decode a whole in-memory payload (header already stripped) into vectors: a convenience for
/// tests and hosts; streaming callers drive [`EventDecoder::decode`] themselves.
pub fn decode_all<D: EventDecoder + ?Sized>(
    decoder: &mut D,
    payload: &[u8],
) -> Result<(Vec<DvsEvent>, Vec<TriggerEvent>, Stats), DecodeError> {
    let mut events = Vec::new();
    let mut triggers = Vec::new();
    let mut ev_buf = alloc::vec![DvsEvent::default(); 1 << 14];
    let mut tr_buf = alloc::vec![TriggerEvent::default(); 256];
    let mut rest = payload;
    loop {
        let p = decoder.decode(rest, &mut ev_buf, &mut tr_buf)?;
        events.extend_from_slice(&ev_buf[..p.events]);
        triggers.extend_from_slice(&tr_buf[..p.triggers]);
        rest = &rest[p.consumed..];
        if rest.is_empty() && !p.output_full {
            break;
        }
    }
    let stats = decoder.finish()?;
    Ok((events, triggers, stats))
}
