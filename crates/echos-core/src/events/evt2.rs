//! Prophesee EVT 2.0 (32-bit words) and EVT 2.1 (64-bit vectorised words): streaming decoders,
//! and the EVT 2.0 writer. Both carry a 34-bit time: 6 low bits in each event word, 28 high bits
//! in TIME_HIGH words.
//!
//! Rules (docs/events.md): a TIME_HIGH smaller than the previous by at least half its range
//! (2^27) is a wrap (2^34 µs carried); a smaller step back is a counted time jump. Events before
//! the first TIME_HIGH are dropped and counted; OTHERS (0xE), CONTINUED (0xF) and reserved types
//! are skipped and counted by type; coordinates beyond the sensor are dropped and counted.

use super::evt3::MAX_GAP_US;
use super::{
    drive, emit_vector, note_jump_back, note_out_of_bounds, ByteSink, DecodeError, DvsEvent,
    EventDecoder, PendingVector, Progress, Records, Stats, Step, Stream, TriggerEvent, WriteError,
};
use alloc::string::String;
use core::fmt::Write as _;

/// Largest coordinate range EVT 2.x addresses (11-bit x and y).
pub const MAX_SIZE: u16 = 2048;

/// The 28-bit TIME_HIGH state shared by EVT 2.0 and 2.1.
#[derive(Clone, Copy, Debug, Default)]
struct TimeHigh {
    have: bool,
    high: u32,
    wraps: u64,
    /// t_offset + wraps · 2^34 + high · 64
    base: u64,
}

impl TimeHigh {
    #[inline(always)]
    fn set(&mut self, h: u32, t_offset: u64, off: u64, stats: &mut Stats) {
        if self.have && h < self.high {
            if self.high - h >= 1 << 27 {
                self.wraps += 1;
                stats.time_wraps += 1;
            } else {
                note_jump_back(stats, off);
            }
        }
        self.high = h;
        self.have = true;
        self.base = t_offset
            .wrapping_add(self.wraps << 34)
            .wrapping_add((h as u64) << 6);
    }
}

/// Streaming EVT 2.0 decoder (payload after the `%` header).
#[derive(Clone, Debug)]
pub struct Evt2Decoder {
    width: u16,
    height: u16,
    t_offset: u64,
    discard_triggers: bool,
    time: TimeHigh,
    stream: Stream<4>,
}

impl Default for Evt2Decoder {
    fn default() -> Self {
        Self::new(MAX_SIZE, MAX_SIZE)
    }
}

impl Evt2Decoder {
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            t_offset: 0,
            discard_triggers: false,
            time: TimeHigh::default(),
            stream: Stream::new(),
        }
    }

    /// Add `t0` to every decoded time.
    pub fn with_time_offset(mut self, t0: u64) -> Self {
        self.t_offset = t0;
        self
    }

    /// Count triggers instead of writing them.
    pub fn discard_triggers(mut self, discard: bool) -> Self {
        self.discard_triggers = discard;
        self
    }
}

impl Records<4> for Evt2Decoder {
    fn stream(&mut self) -> &mut Stream<4> {
        &mut self.stream
    }

    #[inline(always)]
    fn record(
        &mut self,
        rec: &[u8; 4],
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> Step {
        let w = u32::from_le_bytes(*rec);
        let stats = &mut self.stream.stats;
        match w >> 28 {
            ty @ (0x0 | 0x1) => {
                if !self.time.have {
                    stats.before_time_base += 1;
                    return Step::Done;
                }
                if *n >= events.len() {
                    return Step::Blocked;
                }
                let x = ((w >> 11) & 0x7FF) as u16;
                let y = (w & 0x7FF) as u16;
                if x < self.width && y < self.height {
                    events[*n] = DvsEvent {
                        t: self.time.base + ((w >> 22) & 0x3F) as u64,
                        x,
                        y,
                        p: ty as u8,
                    };
                    *n += 1;
                } else {
                    note_out_of_bounds(stats, off);
                }
            }
            0x8 => self.time.set(w & 0x0FFF_FFFF, self.t_offset, off, stats),
            0xA => {
                if !self.time.have {
                    stats.before_time_base += 1;
                } else if self.discard_triggers {
                    stats.triggers_discarded += 1;
                } else if *nt >= triggers.len() {
                    return Step::Blocked;
                } else {
                    triggers[*nt] = TriggerEvent {
                        t: self.time.base + ((w >> 22) & 0x3F) as u64,
                        channel: ((w >> 8) & 0x1F) as u8,
                        value: (w & 1) as u8,
                    };
                    *nt += 1;
                }
            }
            ty => stats.skipped_words[ty as usize] += 1,
        }
        Step::Done
    }
}

impl EventDecoder for Evt2Decoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        Ok(drive(self, input, events, triggers))
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        self.stream.finish(0)
    }

    fn stats(&self) -> &Stats {
        &self.stream.stats
    }
}

/// Byte order of EVT 2.1 words. GenX320 sends each 64-bit word little-endian; IMX636 sends the
/// upper 32-bit half first, each half little-endian (`% format EVT21;endianness=legacy`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Evt21Layout {
    #[default]
    Little64,
    Legacy32,
}

/// Streaming EVT 2.1 decoder: a CD word holds a base x (a multiple of 32 on real sensors), y and
/// a 32-bit mask of the pixels x + i that fired with one polarity.
#[derive(Clone, Debug)]
pub struct Evt21Decoder {
    width: u16,
    height: u16,
    t_offset: u64,
    discard_triggers: bool,
    layout: Evt21Layout,
    time: TimeHigh,
    pending: PendingVector,
    stream: Stream<8>,
}

impl Default for Evt21Decoder {
    fn default() -> Self {
        Self::new(MAX_SIZE, MAX_SIZE)
    }
}

impl Evt21Decoder {
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            t_offset: 0,
            discard_triggers: false,
            layout: Evt21Layout::Little64,
            time: TimeHigh::default(),
            pending: PendingVector::default(),
            stream: Stream::new(),
        }
    }

    pub fn with_layout(mut self, layout: Evt21Layout) -> Self {
        self.layout = layout;
        self
    }

    pub fn with_time_offset(mut self, t0: u64) -> Self {
        self.t_offset = t0;
        self
    }

    pub fn discard_triggers(mut self, discard: bool) -> Self {
        self.discard_triggers = discard;
        self
    }
}

impl Records<8> for Evt21Decoder {
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
        let w = match self.layout {
            Evt21Layout::Little64 => u64::from_le_bytes(*rec),
            Evt21Layout::Legacy32 => {
                let hi = u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]) as u64;
                let lo = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]) as u64;
                (hi << 32) | lo
            }
        };
        let stats = &mut self.stream.stats;
        match (w >> 60) as u8 {
            ty @ (0x0 | 0x1) => {
                let mask = w as u32;
                if !self.time.have {
                    stats.before_time_base += mask.count_ones() as u64;
                    return Step::Done;
                }
                if mask != 0 && *n >= events.len() {
                    return Step::Blocked;
                }
                let t = self.time.base + ((w >> 54) & 0x3F);
                let x = ((w >> 43) & 0x7FF) as u16;
                let y = ((w >> 32) & 0x7FF) as u16;
                let rest = emit_vector(
                    mask,
                    x,
                    y,
                    ty,
                    t,
                    self.width,
                    self.height,
                    off,
                    events,
                    n,
                    stats,
                );
                if rest != 0 {
                    self.pending = PendingVector {
                        mask: rest,
                        x,
                        y,
                        p: ty,
                        t,
                        offset: off,
                    };
                    return Step::Filled;
                }
            }
            0x8 => self
                .time
                .set(((w >> 32) & 0x0FFF_FFFF) as u32, self.t_offset, off, stats),
            0xA => {
                if !self.time.have {
                    stats.before_time_base += 1;
                } else if self.discard_triggers {
                    stats.triggers_discarded += 1;
                } else if *nt >= triggers.len() {
                    return Step::Blocked;
                } else {
                    triggers[*nt] = TriggerEvent {
                        t: self.time.base + ((w >> 54) & 0x3F),
                        channel: ((w >> 40) & 0x1F) as u8,
                        value: ((w >> 32) & 1) as u8,
                    };
                    *nt += 1;
                }
            }
            ty => stats.skipped_words[ty as usize] += 1,
        }
        Step::Done
    }

    fn pending(&self) -> usize {
        self.pending.count()
    }

    fn drain(&mut self, events: &mut [DvsEvent], n: &mut usize) {
        let p = self.pending;
        self.pending.mask = emit_vector(
            p.mask,
            p.x,
            p.y,
            p.p,
            p.t,
            self.width,
            self.height,
            p.offset,
            events,
            n,
            &mut self.stream.stats,
        );
    }
}

impl EventDecoder for Evt21Decoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        Ok(drive(self, input, events, triggers))
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        self.stream.finish(self.pending.count())
    }

    fn stats(&self) -> &Stats {
        &self.stream.stats
    }
}

/// EVT 2.0 writer: one word per event, a TIME_HIGH word whenever t / 64 changes (stepping in
/// strides under half the 28-bit range across long gaps, from a time base of 0, so readers carry
/// the same wraps). Times are relative to `origin` (`% t0` when non-zero).
#[derive(Clone, Debug)]
pub struct Evt2Writer {
    width: u16,
    height: u16,
    origin: u64,
    header: bool,
    header_done: bool,
    high: Option<u64>,
    last_t: u64,
    buf: [u8; 4096],
    len: usize,
}

impl Evt2Writer {
    pub fn new(width: u16, height: u16) -> Result<Self, WriteError> {
        if width > MAX_SIZE || height > MAX_SIZE {
            return Err(WriteError::Geometry {
                width,
                height,
                max: MAX_SIZE,
            });
        }
        Ok(Self {
            width,
            height,
            origin: 0,
            header: true,
            header_done: false,
            high: None,
            last_t: 0,
            buf: [0; 4096],
            len: 0,
        })
    }

    pub fn with_origin(mut self, t0: u64) -> Self {
        self.origin = t0;
        self.last_t = t0;
        self
    }

    pub fn without_header(mut self) -> Self {
        self.header = false;
        self
    }

    fn begin(&mut self, sink: &mut dyn ByteSink) {
        if self.header && !self.header_done {
            let mut h = String::new();
            let _ = write!(
                h,
                "% evt 2.0\n% format EVT2;height={};width={}\n% geometry {}x{}\n",
                self.height, self.width, self.width, self.height
            );
            if self.origin != 0 {
                let _ = writeln!(h, "% t0 {}", self.origin);
            }
            h.push_str("% end\n");
            sink.put(h.as_bytes());
        }
        self.header_done = true;
    }

    #[inline(always)]
    fn word(&mut self, w: u32, sink: &mut dyn ByteSink) {
        if self.len + 4 > self.buf.len() {
            sink.put(&self.buf[..self.len]);
            self.len = 0;
        }
        self.buf[self.len..self.len + 4].copy_from_slice(&w.to_le_bytes());
        self.len += 4;
    }

    fn flush(&mut self, sink: &mut dyn ByteSink) {
        if self.len > 0 {
            sink.put(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    /// Checks the time and writes TIME_HIGH words as needed; returns the 6 low bits.
    fn time(&mut self, index: usize, t: u64, sink: &mut dyn ByteSink) -> Result<u32, WriteError> {
        if t < self.last_t {
            return Err(WriteError::NotMonotonic {
                index,
                t,
                previous: self.last_t,
            });
        }
        let rel = t - self.origin;
        let hi = rel >> 6;
        let mut cur = self.high.unwrap_or(0);
        if (hi - cur) << 6 > MAX_GAP_US {
            return Err(WriteError::TimeNotRepresentable { index, t });
        }
        if self.high != Some(hi) {
            // As for EVT 3: wraps exactly at 0x0FFF_FFFF -> 0, forward steps in strides.
            const PERIOD: u64 = 0x0FFF_FFFF;
            const STRIDE: u64 = 1 << 26;
            while hi > cur | PERIOD {
                let end = cur | PERIOD;
                while end - cur > STRIDE {
                    cur += STRIDE;
                    self.time_high(cur, sink);
                }
                self.time_high(end, sink);
                cur = end + 1;
                self.time_high(cur, sink);
            }
            while hi - cur > STRIDE {
                cur += STRIDE;
                self.time_high(cur, sink);
            }
            self.time_high(hi, sink);
        }
        self.last_t = t;
        Ok((rel & 0x3F) as u32)
    }

    fn time_high(&mut self, count: u64, sink: &mut dyn ByteSink) {
        self.word(0x8000_0000 | (count & 0x0FFF_FFFF) as u32, sink);
        self.high = Some(count);
    }

    pub fn write_events(
        &mut self,
        events: &[DvsEvent],
        sink: &mut dyn ByteSink,
    ) -> Result<(), WriteError> {
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
            let lsb = match self.time(i, e.t, sink) {
                Ok(l) => l,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            let ty = (e.p & 1) as u32;
            self.word(
                (ty << 28) | (lsb << 22) | ((e.x as u32) << 11) | e.y as u32,
                sink,
            );
        }
        self.flush(sink);
        result
    }

    /// Triggers (channels 0..=31), in time order with the events.
    pub fn write_triggers(
        &mut self,
        triggers: &[TriggerEvent],
        sink: &mut dyn ByteSink,
    ) -> Result<(), WriteError> {
        self.begin(sink);
        let mut result = Ok(());
        for (i, tr) in triggers.iter().enumerate() {
            if tr.channel > 31 {
                result = Err(WriteError::TriggerChannel {
                    index: i,
                    channel: tr.channel,
                    max: 31,
                });
                break;
            }
            let lsb = match self.time(i, tr.t, sink) {
                Ok(l) => l,
                Err(err) => {
                    result = Err(err);
                    break;
                }
            };
            self.word(
                0xA000_0000 | (lsb << 22) | ((tr.channel as u32) << 8) | (tr.value & 1) as u32,
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
    use crate::events::decode_all;
    use alloc::vec;
    use alloc::vec::Vec;

    fn words32(ws: &[u32]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn evt2_every_word_type() {
        let bytes = words32(&[
            0x1000_0801,                            // CD before time: dropped
            0x8000_0010,                            // TIME_HIGH 16 -> 1024 µs
            (1 << 28) | (5 << 22) | (3 << 11) | 7,  // ON at t 1029, (3, 7)
            (9 << 22) | (640 << 11) | 1,            // x beyond 640: dropped
            0xA000_0000 | (2 << 22) | (4 << 8) | 1, // trigger ch 4
            0xE000_0000,
            0xF000_0000,
            0x9999_9999,
        ]);
        let mut d = Evt2Decoder::new(640, 480);
        let (ev, tr, st) = decode_all(&mut d, &bytes).unwrap();
        assert_eq!(ev, vec![DvsEvent::new(1029, 3, 7, 1)]);
        assert_eq!(
            tr,
            vec![TriggerEvent {
                t: 1026,
                channel: 4,
                value: 1
            }]
        );
        assert_eq!(st.before_time_base, 1);
        assert_eq!(st.out_of_bounds, 1);
        assert_eq!(st.first_out_of_bounds, Some(12));
        assert_eq!(
            st.skipped_words[0xE] + st.skipped_words[0xF] + st.skipped_words[0x9],
            3
        );
    }

    #[test]
    fn a_word_fed_one_byte_at_a_time() {
        // regression: a carried partial word topped up by a chunk too short to complete it
        // was overwritten by the (empty) tail
        let bytes = words32(&[0x8000_0001, (1 << 28) | (2 << 11) | 3]);
        let mut d = Evt2Decoder::default();
        let mut ev = [DvsEvent::default(); 4];
        let mut got = Vec::new();
        for b in bytes.chunks(1) {
            let p = d.decode(b, &mut ev, &mut []).unwrap();
            assert_eq!(p.consumed, 1);
            got.extend_from_slice(&ev[..p.events]);
        }
        assert_eq!(got, vec![DvsEvent::new(64, 2, 3, 1)]);
        assert_eq!(d.finish().unwrap().bytes, 8);
    }

    #[test]
    fn evt2_wrap_and_jump() {
        let bytes = words32(&[
            0x8FFF_FFFF,
            0x0000_0001,
            0x8000_0000, // wrap
            0x0000_0001,
            0x8000_0010,
            0x8000_0008, // back by 8: a jump
            0x0000_0001,
        ]);
        let (ev, _, st) = decode_all(&mut Evt2Decoder::default(), &bytes).unwrap();
        let ts: Vec<u64> = ev.iter().map(|e| e.t).collect();
        assert_eq!(ts, vec![((1 << 28) - 1) << 6, 1 << 34, (1 << 34) + 8 * 64]);
        assert_eq!((st.time_wraps, st.time_jumps_back), (1, 1));
    }

    #[test]
    fn evt21_vectors_both_layouts() {
        let th = (0x8u64 << 60) | (7 << 32);
        let cd = (0x1u64 << 60) | (3 << 54) | (32 << 43) | (9 << 32) | 0x8000_0005;
        let trig = (0xAu64 << 60) | (1 << 54) | (2 << 40) | (1 << 32);
        let t = (7 << 6) | 3;
        let want = vec![
            DvsEvent::new(t, 32, 9, 1),
            DvsEvent::new(t, 34, 9, 1),
            DvsEvent::new(t, 63, 9, 1),
        ];
        let mut le = Vec::new();
        let mut legacy = Vec::new();
        for w in [th, cd, trig, 0xE000_0000_0000_0000] {
            le.extend_from_slice(&w.to_le_bytes());
            legacy.extend_from_slice(&((w >> 32) as u32).to_le_bytes());
            legacy.extend_from_slice(&(w as u32).to_le_bytes());
        }
        let (ev, tr, st) = decode_all(&mut Evt21Decoder::new(640, 480), &le).unwrap();
        assert_eq!(ev, want);
        assert_eq!(
            tr,
            vec![TriggerEvent {
                t: (7 << 6) | 1,
                channel: 2,
                value: 1
            }]
        );
        assert_eq!(st.skipped_words[0xE], 1);
        let mut d = Evt21Decoder::new(640, 480).with_layout(Evt21Layout::Legacy32);
        let (ev2, _, _) = decode_all(&mut d, &legacy).unwrap();
        assert_eq!(ev2, want);
    }

    #[test]
    fn evt21_pending_across_tiny_buffers() {
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&((0x8u64 << 60) | (1 << 32)).to_le_bytes());
        bytes.extend_from_slice(&((5u64 << 32) | 0xFFFF_FFFF).to_le_bytes()); // type 0x0: OFF
        bytes.extend_from_slice(&((0x1u64 << 60) | (6 << 32) | 0x3).to_le_bytes());
        let mut d = Evt21Decoder::new(64, 64);
        let mut out = Vec::new();
        let mut buf = [DvsEvent::default(); 7];
        let mut rest = &bytes[..];
        loop {
            let p = d.decode(rest, &mut buf, &mut []).unwrap();
            out.extend_from_slice(&buf[..p.events]);
            rest = &rest[p.consumed..];
            if rest.is_empty() && !p.output_full {
                break;
            }
        }
        d.finish().unwrap();
        assert_eq!(out.len(), 34);
        assert_eq!(out[31].x, 31);
        assert_eq!((out[32].y, out[33].x), (6, 1));
    }

    #[test]
    fn evt2_writer_round_trip() {
        let evs = vec![
            DvsEvent::new(913_716_224, 35, 443, 1),
            DvsEvent::new(913_716_224, 36, 443, 0),
            DvsEvent::new(913_716_300, 639, 0, 1),
            DvsEvent::new(913_716_300 + (1u64 << 34) + 5, 1, 2, 0),
        ];
        let mut w = Evt2Writer::new(640, 480).unwrap();
        let mut out = Vec::new();
        w.write_events(&evs[..2], &mut out).unwrap();
        w.write_triggers(
            &[TriggerEvent {
                t: 913_716_250,
                channel: 31,
                value: 1,
            }],
            &mut out,
        )
        .unwrap();
        w.write_events(&evs[2..], &mut out).unwrap();
        w.finish(&mut out);
        let h = crate::events::Header::parse(&out).unwrap();
        assert_eq!(h.format, Some(crate::events::Format::Evt2));
        let (ev, tr, st) = decode_all(&mut Evt2Decoder::new(640, 480), &out[h.len..]).unwrap();
        assert_eq!(ev, evs);
        assert_eq!(tr[0].t, 913_716_250);
        assert_eq!(st.time_wraps, 1);
    }
}
