//! Prophesee EVT 3.0: the streaming decoder and the writer. 16-bit little-endian words, type in
//! the top 4 bits; the decoder keeps the state the format is relative to (time base, row, vector
//! base) and emits events as words arrive.
//!
//! Rules where the spec leaves a choice (docs/events.md):
//! - TIME_HIGH only replaces the top 12 bits of the 24-bit time base; TIME_LOW the bottom 12.
//! - A TIME_HIGH smaller than the previous one by at least half its range (2048 steps of 4096 µs)
//!   is a wrap: 2^24 µs are carried into the 64-bit time. A smaller step back is a time jump,
//!   counted in [`Stats::time_jumps_back`] and decoded as written (no carry).
//! - Events and triggers before the first TIME_HIGH have no time: dropped and counted in
//!   [`Stats::before_time_base`].
//! - Every word is decoded by its own type (a VECT_12 need not be followed by a VECT_8); OTHERS,
//!   CONTINUED_4/12 and reserved types (0x1, 0x9, 0xB, 0xC, 0xD, e.g. 0x9999 padding) are skipped
//!   and counted by type in [`Stats::skipped_words`].
//! - Coordinates outside the declared sensor are dropped and counted ([`Stats::out_of_bounds`],
//!   with the byte offset of the first).

use super::{
    drive, emit_vector, note_jump_back, note_out_of_bounds, ByteSink, DecodeError, DvsEvent,
    EventDecoder, PendingVector, Progress, Records, Stats, Step, Stream, TriggerEvent, WriteError,
};
use alloc::string::String;
use core::fmt::Write as _;

const ADDR_Y: u16 = 0x0;
const ADDR_X: u16 = 0x2;
const VECT_BASE_X: u16 = 0x3;
const VECT_12: u16 = 0x4;
const VECT_8: u16 = 0x5;
const TIME_LOW: u16 = 0x6;
const TIME_HIGH: u16 = 0x8;
const EXT_TRIGGER: u16 = 0xA;

/// Largest coordinate range EVT 3.0 addresses (11-bit x and y).
pub const MAX_SIZE: u16 = 2048;

/// Streaming EVT 3.0 decoder (payload after the `%` header).
#[derive(Clone, Debug)]
pub struct Evt3Decoder {
    width: u16,
    height: u16,
    t_offset: u64,
    discard_triggers: bool,
    have_high: bool,
    high: u16,
    low: u16,
    wraps: u64,
    t: u64,
    y: u16,
    base_x: u16,
    pol: u8,
    pending: PendingVector,
    stream: Stream<2>,
}

impl Default for Evt3Decoder {
    fn default() -> Self {
        Self::new(MAX_SIZE, MAX_SIZE)
    }
}

impl Evt3Decoder {
    /// A decoder for a `width` × `height` sensor (events beyond it are dropped and counted).
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            t_offset: 0,
            discard_triggers: false,
            have_high: false,
            high: 0,
            low: 0,
            wraps: 0,
            t: 0,
            y: 0,
            base_x: 0,
            pol: 0,
            pending: PendingVector::default(),
            stream: Stream::new(),
        }
    }

    /// Add `t0` to every decoded time (the `% t0` header of files written with a time origin).
    pub fn with_time_offset(mut self, t0: u64) -> Self {
        self.t_offset = t0;
        self.update_time();
        self
    }

    /// Count triggers instead of writing them (the trigger buffer may then be empty).
    pub fn discard_triggers(mut self, discard: bool) -> Self {
        self.discard_triggers = discard;
        self
    }

    #[inline(always)]
    fn update_time(&mut self) {
        self.t = self
            .t_offset
            .wrapping_add(self.wraps << 24)
            .wrapping_add(((self.high as u64) << 12) | self.low as u64);
    }

    #[inline(always)]
    fn word(
        &mut self,
        w: u16,
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> Step {
        match w >> 12 {
            ADDR_Y => self.y = w & 0x7FF,
            ADDR_X => {
                if !self.have_high {
                    self.stream.stats.before_time_base += 1;
                    return Step::Done;
                }
                if *n >= events.len() {
                    return Step::Blocked;
                }
                let x = w & 0x7FF;
                if x < self.width && self.y < self.height {
                    events[*n] = DvsEvent {
                        t: self.t,
                        x,
                        y: self.y,
                        p: ((w >> 11) & 1) as u8,
                    };
                    *n += 1;
                } else {
                    note_out_of_bounds(&mut self.stream.stats, off);
                }
            }
            VECT_BASE_X => {
                self.base_x = w & 0x7FF;
                self.pol = ((w >> 11) & 1) as u8;
            }
            ty @ (VECT_12 | VECT_8) => {
                let (bits, advance) = if ty == VECT_12 {
                    ((w & 0xFFF) as u32, 12)
                } else {
                    ((w & 0xFF) as u32, 8)
                };
                if !self.have_high {
                    self.stream.stats.before_time_base += bits.count_ones() as u64;
                    self.base_x = self.base_x.wrapping_add(advance);
                    return Step::Done;
                }
                if bits != 0 && *n >= events.len() {
                    return Step::Blocked;
                }
                let rest = emit_vector(
                    bits,
                    self.base_x,
                    self.y,
                    self.pol,
                    self.t,
                    self.width,
                    self.height,
                    off,
                    events,
                    n,
                    &mut self.stream.stats,
                );
                let x = self.base_x;
                self.base_x = self.base_x.wrapping_add(advance);
                if rest != 0 {
                    self.pending = PendingVector {
                        mask: rest,
                        x,
                        y: self.y,
                        p: self.pol,
                        t: self.t,
                        offset: off,
                    };
                    return Step::Filled;
                }
            }
            TIME_LOW => {
                self.low = w & 0xFFF;
                self.update_time();
            }
            TIME_HIGH => {
                let h = w & 0xFFF;
                if self.have_high && h < self.high {
                    if self.high - h >= 2048 {
                        self.wraps += 1;
                        self.stream.stats.time_wraps += 1;
                    } else {
                        note_jump_back(&mut self.stream.stats, off);
                    }
                }
                self.high = h;
                self.have_high = true;
                self.update_time();
            }
            EXT_TRIGGER => {
                if !self.have_high {
                    self.stream.stats.before_time_base += 1;
                } else if self.discard_triggers {
                    self.stream.stats.triggers_discarded += 1;
                } else if *nt >= triggers.len() {
                    return Step::Blocked;
                } else {
                    triggers[*nt] = TriggerEvent {
                        t: self.t,
                        channel: ((w >> 8) & 0xF) as u8,
                        value: (w & 1) as u8,
                    };
                    *nt += 1;
                }
            }
            ty => self.stream.stats.skipped_words[ty as usize] += 1,
        }
        Step::Done
    }
}

impl Records<2> for Evt3Decoder {
    fn stream(&mut self) -> &mut Stream<2> {
        &mut self.stream
    }

    #[inline(always)]
    fn record(
        &mut self,
        rec: &[u8; 2],
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> Step {
        self.word(u16::from_le_bytes(*rec), off, events, n, triggers, nt)
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

impl EventDecoder for Evt3Decoder {
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

/// Largest forward time step a writer bridges with intermediate time words (about 12.7 days):
/// bounds the words written per event.
pub(crate) const MAX_GAP_US: u64 = 1 << 40;

/// EVT 3.0 writer. Times are written relative to `origin` (recorded as `% t0` when non-zero);
/// the time base starts at 0, so TIME_HIGH words step up from 0 in strides under half the
/// counter range and every reader carries the same wraps. Runs of events with the same time,
/// row and polarity and rising x become VECT_BASE_X + VECT_12 words.
#[derive(Clone, Debug)]
pub struct Evt3Writer {
    width: u16,
    height: u16,
    origin: u64,
    header: bool,
    header_done: bool,
    /// Absolute count of 4096-µs steps last written (its low 12 bits are the word).
    high: u64,
    low: Option<u16>,
    y: Option<u16>,
    /// The reader's vector base after our last vector word.
    base: Option<(u16, u8)>,
    last_t: u64,
    buf: [u8; 2048],
    len: usize,
}

impl Evt3Writer {
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
            high: 0,
            low: None,
            y: None,
            base: None,
            last_t: 0,
            buf: [0; 2048],
            len: 0,
        })
    }

    /// Write times relative to `t0` (events before it are refused); recorded as `% t0`.
    pub fn with_origin(mut self, t0: u64) -> Self {
        self.origin = t0;
        self.last_t = t0;
        self
    }

    /// Write only words: no `%` header (a raw stream, e.g. for a socket or a test).
    pub fn without_header(mut self) -> Self {
        self.header = false;
        self
    }

    fn header_text(&self) -> String {
        let mut h = String::new();
        let _ = write!(
            h,
            "% evt 3.0\n% format EVT3;height={};width={}\n% geometry {}x{}\n",
            self.height, self.width, self.width, self.height
        );
        if self.origin != 0 {
            let _ = writeln!(h, "% t0 {}", self.origin);
        }
        h.push_str("% end\n");
        h
    }

    fn begin(&mut self, sink: &mut dyn ByteSink) {
        if self.header && !self.header_done {
            sink.put(self.header_text().as_bytes());
        }
        self.header_done = true;
    }

    #[inline(always)]
    fn word(&mut self, w: u16, sink: &mut dyn ByteSink) {
        if self.len + 2 > self.buf.len() {
            sink.put(&self.buf[..self.len]);
            self.len = 0;
        }
        self.buf[self.len..self.len + 2].copy_from_slice(&w.to_le_bytes());
        self.len += 2;
    }

    fn flush(&mut self, sink: &mut dyn ByteSink) {
        if self.len > 0 {
            sink.put(&self.buf[..self.len]);
            self.len = 0;
        }
    }

    fn check_time(&self, index: usize, t: u64) -> Result<u64, WriteError> {
        if t < self.last_t {
            return Err(WriteError::NotMonotonic {
                index,
                t,
                previous: self.last_t,
            });
        }
        let rel = t - self.origin;
        let from = if self.low.is_some() {
            self.high << 12
        } else {
            0
        };
        if rel - from.min(rel) > MAX_GAP_US {
            return Err(WriteError::TimeNotRepresentable { index, t });
        }
        Ok(rel)
    }

    fn set_time(&mut self, rel: u64, sink: &mut dyn ByteSink) {
        let hi = rel >> 12;
        let lo = (rel & 0xFFF) as u16;
        if self.low.is_none() || hi != self.high {
            let first = self.low.is_none();
            let mut cur = if first { 0 } else { self.high };
            // Strict readers (faery) carry a wrap only on TIME_HIGH 0xFFF -> 0x000 and take no
            // forward step of half the range: cross every period end exactly, in strides.
            while hi > cur | 0xFFF {
                let end = cur | 0xFFF;
                while end - cur > 1024 {
                    cur += 1024;
                    self.time_high(cur, sink);
                }
                self.time_high(end, sink);
                cur = end + 1;
                self.time_high(cur, sink);
            }
            while hi - cur > 1024 {
                cur += 1024;
                self.time_high(cur, sink);
            }
            if first || hi != cur || self.high != hi {
                self.time_high(hi, sink);
            }
            self.low = None;
        }
        if self.low != Some(lo) {
            self.word(0x6000 | lo, sink);
            self.low = Some(lo);
        }
    }

    fn time_high(&mut self, count: u64, sink: &mut dyn ByteSink) {
        self.word(0x8000 | (count & 0xFFF) as u16, sink);
        self.high = count;
    }

    fn check_event(&self, index: usize, e: &DvsEvent) -> Result<(), WriteError> {
        if e.x >= self.width || e.y >= self.height {
            return Err(WriteError::OutOfBounds {
                index,
                x: e.x,
                y: e.y,
                width: self.width,
                height: self.height,
            });
        }
        Ok(())
    }

    /// Append events (non-decreasing in time, also relative to earlier calls and triggers).
    /// On an error nothing of this call's events from the offending one on is written.
    pub fn write_events(
        &mut self,
        events: &[DvsEvent],
        sink: &mut dyn ByteSink,
    ) -> Result<(), WriteError> {
        self.begin(sink);
        let mut i = 0;
        let result = loop {
            if i >= events.len() {
                break Ok(());
            }
            let e = events[i];
            if let Err(err) = self.check_event(i, &e) {
                break Err(err);
            }
            let rel = match self.check_time(i, e.t) {
                Ok(r) => r,
                Err(err) => break Err(err),
            };
            let mut j = i + 1;
            while j < events.len() {
                let f = &events[j];
                if f.t != e.t || f.y != e.y || f.p != e.p || f.x <= events[j - 1].x {
                    break;
                }
                if f.x >= self.width {
                    break;
                }
                j += 1;
            }
            self.set_time(rel, sink);
            self.last_t = e.t;
            if self.y != Some(e.y) {
                self.word(e.y, sink);
                self.y = Some(e.y);
            }
            self.write_run(&events[i..j], sink);
            i = j;
        };
        self.flush(sink);
        result
    }

    fn write_run(&mut self, run: &[DvsEvent], sink: &mut dyn ByteSink) {
        // Reuse the reader's vector base only inside one run (one time, row and polarity):
        // faery 0.7.1 does not carry it across rows the way the spec's state machine does.
        self.base = None;
        let p = run[0].p & 1;
        let mut k = 0;
        while k < run.len() {
            let x0 = run[k].x;
            let mut mask = 0u16;
            let mut m = k;
            while m < run.len() && run[m].x - x0 < 12 {
                mask |= 1 << (run[m].x - x0);
                m += 1;
            }
            if m - k >= 2 {
                if self.base != Some((x0, p)) {
                    self.word(0x3000 | ((p as u16) << 11) | x0, sink);
                }
                self.word(0x4000 | mask, sink);
                self.base = Some((x0.wrapping_add(12), p));
            } else {
                self.word(0x2000 | ((p as u16) << 11) | x0, sink);
            }
            k = m;
        }
    }

    /// Append triggers (channels 0..=15), in time order with the events.
    pub fn write_triggers(
        &mut self,
        triggers: &[TriggerEvent],
        sink: &mut dyn ByteSink,
    ) -> Result<(), WriteError> {
        self.begin(sink);
        let mut result = Ok(());
        for (i, tr) in triggers.iter().enumerate() {
            if tr.channel > 15 {
                result = Err(WriteError::TriggerChannel {
                    index: i,
                    channel: tr.channel,
                    max: 15,
                });
                break;
            }
            let rel = match self.check_time(i, tr.t) {
                Ok(r) => r,
                Err(e) => {
                    result = Err(e);
                    break;
                }
            };
            self.set_time(rel, sink);
            self.last_t = tr.t;
            self.word(
                0xA000 | ((tr.channel as u16) << 8) | (tr.value & 1) as u16,
                sink,
            );
        }
        self.flush(sink);
        result
    }

    /// Write the header if nothing was written yet (an empty recording is still a valid file).
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

    fn words(ws: &[u16]) -> Vec<u8> {
        ws.iter().flat_map(|w| w.to_le_bytes()).collect()
    }

    #[test]
    fn every_word_type() {
        let bytes = words(&[
            0x2005, // ADDR_X before any time: dropped
            0x8001, // TIME_HIGH 1
            0x6010, // TIME_LOW 0x10 -> t = 4096 + 16
            0x0007, // y = 7
            0x2803, // x = 3, p = 1
            0x3010, // VECT_BASE_X x = 16, p = 0
            0x4005, // VECT_12 bits 0, 2 -> x 16, 18; base -> 28
            0x5081, // VECT_8 bits 0, 7 -> x 28, 35; base -> 36
            0xE123, // OTHERS
            0x7001, // CONTINUED_4
            0xF002, // CONTINUED_12
            0x9999, // reserved (padding)
            0xA301, // trigger channel 3, rising
            0x1000, // reserved type 1
        ]);
        let mut d = Evt3Decoder::new(1280, 720);
        let (ev, tr, st) = decode_all(&mut d, &bytes).unwrap();
        let t = 4096 + 16;
        assert_eq!(
            ev,
            vec![
                DvsEvent::new(t, 3, 7, 1),
                DvsEvent::new(t, 16, 7, 0),
                DvsEvent::new(t, 18, 7, 0),
                DvsEvent::new(t, 28, 7, 0),
                DvsEvent::new(t, 35, 7, 0),
            ]
        );
        assert_eq!(
            tr,
            vec![TriggerEvent {
                t,
                channel: 3,
                value: 1
            }]
        );
        assert_eq!(st.before_time_base, 1);
        assert_eq!(st.skipped_words[0xE], 1);
        assert_eq!(st.skipped_words[0x7], 1);
        assert_eq!(st.skipped_words[0xF], 1);
        assert_eq!(st.skipped_words[0x9], 1);
        assert_eq!(st.skipped_words[0x1], 1);
        assert_eq!(st.events, 5);
        assert_eq!(st.bytes, bytes.len() as u64);
    }

    #[test]
    fn time_high_wrap_and_jump_back() {
        let bytes = words(&[
            0x8FFF, 0x6FFF, 0x0001, 0x2001, // t = 2^24 - 1
            0x8000, 0x6000, 0x2002, // wrap: t = 2^24
            0x8005, 0x6000, 0x2003, // t = 2^24 + 5 * 4096
            0x8003, 0x6000, 0x2004, // back by 2 steps: a jump, not a wrap
        ]);
        let mut d = Evt3Decoder::new(64, 64);
        let (ev, _, st) = decode_all(&mut d, &bytes).unwrap();
        let ts: Vec<u64> = ev.iter().map(|e| e.t).collect();
        assert_eq!(
            ts,
            vec![
                (1 << 24) - 1,
                1 << 24,
                (1 << 24) + 5 * 4096,
                (1 << 24) + 3 * 4096
            ]
        );
        assert_eq!(st.time_wraps, 1);
        assert_eq!(st.time_jumps_back, 1);
        assert_eq!(st.first_time_jump_back, Some(20));
    }

    #[test]
    fn out_of_bounds_dropped_with_offset() {
        let bytes = words(&[0x8000, 0x6000, 0x0002, 0x2009, 0x2001, 0x0010, 0x2001]);
        let mut d = Evt3Decoder::new(8, 8);
        let (ev, _, st) = decode_all(&mut d, &bytes).unwrap();
        assert_eq!(ev, vec![DvsEvent::new(0, 1, 2, 0)]);
        assert_eq!(st.out_of_bounds, 2);
        assert_eq!(st.first_out_of_bounds, Some(6));
    }

    #[test]
    fn odd_trailing_byte_is_truncation() {
        let mut bytes = words(&[0x8000, 0x6000, 0x2001]);
        bytes.push(0x20);
        let mut d = Evt3Decoder::new(8, 8);
        let err = decode_all(&mut d, &bytes).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                offset: 6,
                have: 1,
                record_len: 2
            }
        );
    }

    #[test]
    fn tiny_output_buffers_resume_mid_vector() {
        let bytes = words(&[
            0x8000, 0x6000, 0x0001, 0x3000, 0x4FFF, 0x4FFF, 0xA001, 0xA101,
        ]);
        let mut d = Evt3Decoder::new(64, 64);
        let mut got = Vec::new();
        let mut trig = Vec::new();
        let mut rest = &bytes[..];
        let mut ev = [DvsEvent::default(); 5];
        let mut tr = [TriggerEvent::default(); 1];
        let mut calls = 0;
        loop {
            let p = d.decode(rest, &mut ev, &mut tr).unwrap();
            got.extend_from_slice(&ev[..p.events]);
            trig.extend_from_slice(&tr[..p.triggers]);
            rest = &rest[p.consumed..];
            calls += 1;
            assert!(calls < 100);
            if rest.is_empty() && !p.output_full {
                break;
            }
        }
        d.finish().unwrap();
        let xs: Vec<u16> = got.iter().map(|e| e.x).collect();
        assert_eq!(xs, (0..24).collect::<Vec<u16>>());
        assert_eq!(trig.len(), 2);
        assert_eq!(trig[1].channel, 1);
    }

    #[test]
    fn writer_round_trips_with_vectors_and_gaps() {
        let mut evs = Vec::new();
        // a dense row (vector words), a sparse one (ADDR_X), a gap of an hour and a late wrap
        for x in 0..40u16 {
            evs.push(DvsEvent::new(100, x * 2, 5, 1));
        }
        evs.push(DvsEvent::new(100, 3, 6, 0));
        evs.push(DvsEvent::new(5000, 1279, 719, 1));
        evs.push(DvsEvent::new(3_600_000_000, 10, 10, 0));
        evs.push(DvsEvent::new(3_600_000_000 + (1 << 24) + 7, 11, 10, 0));
        let mut w = Evt3Writer::new(1280, 720).unwrap();
        let mut out = Vec::new();
        w.write_events(&evs, &mut out).unwrap();
        w.write_triggers(
            &[TriggerEvent {
                t: 3_600_000_000 + (1 << 24) + 9,
                channel: 2,
                value: 0,
            }],
            &mut out,
        )
        .unwrap();
        w.finish(&mut out);
        let h = crate::events::Header::parse(&out).unwrap();
        assert_eq!((h.width, h.height), (Some(1280), Some(720)));
        let mut d = Evt3Decoder::new(1280, 720);
        let (ev, tr, st) = decode_all(&mut d, &out[h.len..]).unwrap();
        assert_eq!(ev, evs);
        assert_eq!(tr.len(), 1);
        assert_eq!(tr[0].channel, 2);
        assert_eq!(st.time_jumps_back, 0);
        assert!(st.time_wraps > 0);
    }

    #[test]
    fn writer_uses_vector_words_on_dense_rows() {
        let evs: Vec<DvsEvent> = (0..120u16).map(|x| DvsEvent::new(7, x, 3, 0)).collect();
        let mut w = Evt3Writer::new(1280, 720).unwrap().without_header();
        let mut out = Vec::new();
        w.write_events(&evs, &mut out).unwrap();
        // TIME_HIGH, TIME_LOW, ADDR_Y, VECT_BASE_X, then one VECT_12 per 12 events
        assert_eq!(out.len() / 2, 4 + 10);
        let (ev, _, _) = decode_all(&mut Evt3Decoder::new(1280, 720), &out).unwrap();
        assert_eq!(ev, evs);
    }

    #[test]
    fn writer_refuses_bad_input() {
        let mut w = Evt3Writer::new(16, 16).unwrap();
        let mut out = Vec::new();
        assert!(matches!(
            w.write_events(&[DvsEvent::new(5, 16, 0, 0)], &mut out),
            Err(WriteError::OutOfBounds { index: 0, .. })
        ));
        w.write_events(&[DvsEvent::new(5, 1, 0, 0)], &mut out)
            .unwrap();
        assert!(matches!(
            w.write_events(&[DvsEvent::new(4, 1, 0, 0)], &mut out),
            Err(WriteError::NotMonotonic { index: 0, .. })
        ));
        assert!(Evt3Writer::new(4096, 1).is_err());
    }
}
