//! Prophesee DAT: after the `%` header, one byte of record type and one of record size, then
//! 64-bit little-endian records: a 32-bit timestamp and a 32-bit field word. CD records (type
//! 0x0C, or 0x00 for generic 2D events) hold x, y, p — v2: x bits 0–13, y 14–27, p 28–31; v1: x
//! 0–8, y 9–16, p 17. Trigger records (0x0E) hold p in bits 0–3 and the channel in 26–31.
//!
//! The 32-bit time wraps after 71.6 minutes: a timestamp smaller than the previous one by at
//! least 2^31 µs is a wrap (2^32 carried); a smaller step back is a counted time jump.

use super::{
    drive, note_jump_back, note_out_of_bounds, ByteSink, DecodeError, DvsEvent, EventDecoder,
    Progress, Records, Stats, Step, Stream, TriggerEvent, WriteError,
};
use alloc::string::String;
use core::fmt::Write as _;

const TYPE_2D: u8 = 0x00;
const TYPE_CD: u8 = 0x0C;
const TYPE_TRIGGER: u8 = 0x0E;

/// The DAT field layout (`% Version 2` or later: v2; none or older: v1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum DatVersion {
    V1,
    #[default]
    V2,
}

impl DatVersion {
    /// Largest width / height the layout stores.
    pub fn max_size(self) -> (u32, u32) {
        match self {
            Self::V1 => (512, 256),
            Self::V2 => (16384, 16384),
        }
    }
}

/// What a DAT file's records are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DatRecordKind {
    Cd,
    Trigger,
}

/// Streaming DAT decoder: its input starts at the type and size bytes after the header.
#[derive(Clone, Debug)]
pub struct DatDecoder {
    width: u16,
    height: u16,
    version: DatVersion,
    t_offset: u64,
    discard_triggers: bool,
    kind: Option<DatRecordKind>,
    head: [u8; 2],
    head_len: usize,
    error: Option<DecodeError>,
    have_time: bool,
    last: u32,
    wraps: u64,
    stream: Stream<8>,
}

impl DatDecoder {
    pub fn new(version: DatVersion, width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            version,
            t_offset: 0,
            discard_triggers: false,
            kind: None,
            head: [0; 2],
            head_len: 0,
            error: None,
            have_time: false,
            last: 0,
            wraps: 0,
            stream: Stream::new(),
        }
    }

    pub fn with_time_offset(mut self, t0: u64) -> Self {
        self.t_offset = t0;
        self
    }

    pub fn discard_triggers(mut self, discard: bool) -> Self {
        self.discard_triggers = discard;
        self
    }

    /// The record kind, once the type byte has been read.
    pub fn kind(&self) -> Option<DatRecordKind> {
        self.kind
    }

    #[inline(always)]
    fn time(&mut self, ts: u32, off: u64) -> u64 {
        if self.have_time && ts < self.last {
            if self.last - ts >= 1 << 31 {
                self.wraps += 1;
                self.stream.stats.time_wraps += 1;
            } else {
                note_jump_back(&mut self.stream.stats, off);
            }
        }
        self.have_time = true;
        self.last = ts;
        self.t_offset
            .wrapping_add(self.wraps << 32)
            .wrapping_add(ts as u64)
    }
}

impl Records<8> for DatDecoder {
    fn stream(&mut self) -> &mut Stream<8> {
        &mut self.stream
    }

    #[inline(always)]
    fn record(
        &mut self,
        rec: &[u8; 8],
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> Step {
        let ts = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]);
        let f = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
        match self.kind {
            Some(DatRecordKind::Cd) => {
                if *n >= events.len() {
                    return Step::Blocked;
                }
                let t = self.time(ts, off);
                let (x, y, p) = match self.version {
                    DatVersion::V2 => (f & 0x3FFF, (f >> 14) & 0x3FFF, (f >> 28) != 0),
                    DatVersion::V1 => (f & 0x1FF, (f >> 9) & 0xFF, (f >> 17) & 1 != 0),
                };
                if x < self.width as u32 && y < self.height as u32 {
                    events[*n] = DvsEvent {
                        t,
                        x: x as u16,
                        y: y as u16,
                        p: p as u8,
                    };
                    *n += 1;
                } else {
                    note_out_of_bounds(&mut self.stream.stats, off);
                }
            }
            Some(DatRecordKind::Trigger) => {
                if self.discard_triggers {
                    self.time(ts, off);
                    self.stream.stats.triggers_discarded += 1;
                } else if *nt >= triggers.len() {
                    return Step::Blocked;
                } else {
                    let t = self.time(ts, off);
                    triggers[*nt] = TriggerEvent {
                        t,
                        channel: (f >> 26) as u8,
                        value: (f & 0xF != 0) as u8,
                    };
                    *nt += 1;
                }
            }
            None => {}
        }
        Step::Done
    }
}

impl EventDecoder for DatDecoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut used = 0;
        if self.kind.is_none() {
            let take = (2 - self.head_len).min(input.len());
            self.head[self.head_len..self.head_len + take].copy_from_slice(&input[..take]);
            self.head_len += take;
            used = take;
            if self.head_len < 2 {
                self.stream.offset += take as u64;
                self.stream.stats.bytes = self.stream.offset;
                return Ok(Progress {
                    consumed: take,
                    ..Progress::default()
                });
            }
            let [ty, size] = self.head;
            let kind = match (ty, size) {
                (TYPE_CD | TYPE_2D, 8) => DatRecordKind::Cd,
                (TYPE_TRIGGER, 8) => DatRecordKind::Trigger,
                _ => {
                    let e = DecodeError::UnsupportedRecord {
                        offset: 0,
                        event_type: ty,
                        event_size: size,
                    };
                    self.error = Some(e);
                    return Err(e);
                }
            };
            self.kind = Some(kind);
            self.stream.offset += take as u64;
        }
        let mut p = drive(self, &input[used..], events, triggers);
        p.consumed += used;
        Ok(p)
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        if let Some(e) = self.error {
            return Err(e);
        }
        if self.kind.is_none() {
            return Err(DecodeError::Truncated {
                offset: 0,
                have: self.head_len,
                record_len: 2,
            });
        }
        self.stream.finish(0)
    }

    fn stats(&self) -> &Stats {
        &self.stream.stats
    }
}

/// DAT writer for one record kind. Times are relative to `origin` (`% T0` when non-zero) and
/// must fit DAT's 32-bit field: the first below 2^32 µs, each step under 2^31 µs.
#[derive(Clone, Debug)]
pub struct DatWriter {
    version: DatVersion,
    kind: DatRecordKind,
    width: u16,
    height: u16,
    origin: u64,
    header: bool,
    header_done: bool,
    last: Option<u64>,
    buf: [u8; 4096],
    len: usize,
}

impl DatWriter {
    pub fn new(
        version: DatVersion,
        kind: DatRecordKind,
        width: u16,
        height: u16,
    ) -> Result<Self, WriteError> {
        let (mw, mh) = version.max_size();
        if width as u32 > mw || height as u32 > mh {
            return Err(WriteError::Geometry {
                width,
                height,
                max: (mw.min(mh) - 1) as u16,
            });
        }
        Ok(Self {
            version,
            kind,
            width,
            height,
            origin: 0,
            header: true,
            header_done: false,
            last: None,
            buf: [0; 4096],
            len: 0,
        })
    }

    pub fn with_origin(mut self, t0: u64) -> Self {
        self.origin = t0;
        self
    }

    /// Records only (no text header; the type and size bytes are still written first).
    pub fn without_header(mut self) -> Self {
        self.header = false;
        self
    }

    fn begin(&mut self, sink: &mut dyn ByteSink) {
        if self.header_done {
            return;
        }
        if self.header {
            let mut h = String::new();
            let what = match self.kind {
                DatRecordKind::Cd => "CD",
                DatRecordKind::Trigger => "Trigger",
            };
            let v = match self.version {
                DatVersion::V1 => 1,
                DatVersion::V2 => 2,
            };
            let _ = write!(
                h,
                "% Data file containing {what} events\n% Version {v}\n% Width {}\n% Height {}\n",
                self.width, self.height
            );
            if self.origin != 0 {
                let _ = writeln!(h, "% T0 {}", self.origin);
            }
            sink.put(h.as_bytes());
        }
        let ty = match self.kind {
            DatRecordKind::Cd => TYPE_CD,
            DatRecordKind::Trigger => TYPE_TRIGGER,
        };
        sink.put(&[ty, 8]);
        self.header_done = true;
    }

    fn ts(&mut self, index: usize, t: u64) -> Result<u32, WriteError> {
        let previous = self.last.unwrap_or(self.origin);
        if t < previous {
            return Err(WriteError::NotMonotonic { index, t, previous });
        }
        let ok = match self.last {
            None => t - self.origin < 1 << 32,
            Some(l) => t - l < 1 << 31,
        };
        if !ok {
            return Err(WriteError::TimeNotRepresentable { index, t });
        }
        self.last = Some(t);
        Ok((t - self.origin) as u32)
    }

    fn record(&mut self, ts: u32, f: u32, sink: &mut dyn ByteSink) {
        if self.len + 8 > self.buf.len() {
            sink.put(&self.buf[..self.len]);
            self.len = 0;
        }
        self.buf[self.len..self.len + 4].copy_from_slice(&ts.to_le_bytes());
        self.buf[self.len + 4..self.len + 8].copy_from_slice(&f.to_le_bytes());
        self.len += 8;
    }

    fn flush(&mut self, sink: &mut dyn ByteSink) {
        if self.len > 0 {
            sink.put(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    pub fn write_events(
        &mut self,
        events: &[DvsEvent],
        sink: &mut dyn ByteSink,
    ) -> Result<(), WriteError> {
        if self.kind != DatRecordKind::Cd {
            return Err(WriteError::WrongRecordKind);
        }
        self.begin(sink);
        let mut result = Ok(());
        for (i, e) in events.iter().enumerate() {
            if e.x >= self.width || e.y >= self.height {
                result = Err(WriteError::OutOfBounds {
                    index: i,
                    x: e.x,
                    y: e.y,
                    width: self.width,
                    height: self.height,
                });
                break;
            }
            let ts = match self.ts(i, e.t) {
                Ok(ts) => ts,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            let (x, y, p) = (e.x as u32, e.y as u32, (e.p & 1) as u32);
            let f = match self.version {
                DatVersion::V2 => x | (y << 14) | (p << 28),
                DatVersion::V1 => x | (y << 9) | (p << 17),
            };
            self.record(ts, f, sink);
        }
        self.flush(sink);
        result
    }

    pub fn write_triggers(
        &mut self,
        triggers: &[TriggerEvent],
        sink: &mut dyn ByteSink,
    ) -> Result<(), WriteError> {
        if self.kind != DatRecordKind::Trigger {
            return Err(WriteError::WrongRecordKind);
        }
        self.begin(sink);
        let mut result = Ok(());
        for (i, tr) in triggers.iter().enumerate() {
            if tr.channel > 63 {
                result = Err(WriteError::TriggerChannel {
                    index: i,
                    channel: tr.channel,
                    max: 63,
                });
                break;
            }
            let ts = match self.ts(i, tr.t) {
                Ok(ts) => ts,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            self.record(
                ts,
                ((tr.channel as u32) << 26) | (tr.value & 1) as u32,
                sink,
            );
        }
        self.flush(sink);
        result
    }

    pub fn finish(&mut self, sink: &mut dyn ByteSink) {
        self.begin(sink);
        self.flush(sink);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::{decode_all, Header};
    use alloc::vec;
    use alloc::vec::Vec;

    #[test]
    fn v2_and_v1_round_trip_with_wrap() {
        let evs = vec![
            DvsEvent::new(10, 484, 215, 1),
            DvsEvent::new(11, 0, 0, 0),
            DvsEvent::new((1 << 31) + 5, 3, 4, 1),
            DvsEvent::new((1 << 32) - 1, 300, 200, 1),
            DvsEvent::new((1 << 32) + 3, 511, 255, 0),
        ];
        for v in [DatVersion::V2, DatVersion::V1] {
            let mut w = DatWriter::new(v, DatRecordKind::Cd, 512, 256).unwrap();
            let mut out = Vec::new();
            w.write_events(&evs, &mut out).unwrap();
            let h = Header::parse(&out).unwrap();
            assert_eq!(h.dat_version(), v);
            let mut d = DatDecoder::new(v, 512, 256);
            let (ev, _, st) = decode_all(&mut d, &out[h.len..]).unwrap();
            assert_eq!(ev, evs);
            assert_eq!(st.time_wraps, 1);
        }
    }

    #[test]
    fn triggers_round_trip_and_kinds() {
        let trs = vec![
            TriggerEvent {
                t: 5,
                channel: 0,
                value: 1,
            },
            TriggerEvent {
                t: 9,
                channel: 63,
                value: 0,
            },
        ];
        let mut w = DatWriter::new(DatVersion::V2, DatRecordKind::Trigger, 640, 480).unwrap();
        let mut out = Vec::new();
        assert_eq!(
            w.write_events(&[DvsEvent::default()], &mut out),
            Err(WriteError::WrongRecordKind)
        );
        w.write_triggers(&trs, &mut out).unwrap();
        let h = Header::parse(&out).unwrap();
        let mut d = DatDecoder::new(DatVersion::V2, 640, 480);
        let (_, tr, _) = decode_all(&mut d, &out[h.len..]).unwrap();
        assert_eq!(tr, trs);
        assert_eq!(d.kind(), Some(DatRecordKind::Trigger));
    }

    #[test]
    fn bad_type_and_truncation() {
        let mut d = DatDecoder::new(DatVersion::V2, 64, 64);
        assert_eq!(
            d.decode(&[0x0C, 16], &mut [], &mut []),
            Err(DecodeError::UnsupportedRecord {
                offset: 0,
                event_type: 0x0C,
                event_size: 16
            })
        );
        let mut d = DatDecoder::new(DatVersion::V2, 64, 64);
        let bytes = [0x0C, 8, 1, 0, 0, 0, 1, 0, 0, 0, 9, 9];
        let err = decode_all(&mut d, &bytes).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                offset: 10,
                have: 2,
                record_len: 8
            }
        );
    }

    #[test]
    fn writer_time_limits() {
        let mut w = DatWriter::new(DatVersion::V2, DatRecordKind::Cd, 64, 64).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            w.write_events(&[DvsEvent::new(1 << 32, 0, 0, 0)], &mut out),
            Err(WriteError::TimeNotRepresentable { .. })
        ));
        let mut w = DatWriter::new(DatVersion::V2, DatRecordKind::Cd, 64, 64)
            .unwrap()
            .with_origin(1 << 40);
        let evs = [DvsEvent::new((1 << 40) + 7, 1, 1, 1)];
        let mut out = Vec::new();
        w.write_events(&evs, &mut out).unwrap();
        let h = Header::parse(&out).unwrap();
        assert_eq!(h.t0, Some(1 << 40));
        let mut d = DatDecoder::new(DatVersion::V2, 64, 64).with_time_offset(h.t0.unwrap());
        let (ev, _, _) = decode_all(&mut d, &out[h.len..]).unwrap();
        assert_eq!(ev.as_slice(), &evs);
        assert!(DatWriter::new(DatVersion::V1, DatRecordKind::Cd, 640, 480).is_err());
    }
}
