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
use core::hint::select_unpredictable;

const ADDR_Y: u16 = 0x0;
const ADDR_X: u16 = 0x2;
const VECT_BASE_X: u16 = 0x3;
const VECT_12: u16 = 0x4;
const VECT_8: u16 = 0x5;
const TIME_LOW: u16 = 0x6;
const TIME_HIGH: u16 = 0x8;
const EXT_TRIGGER: u16 = 0xA;

/// The fast loop's packed state: time low in bits 0..12, time high in 12..24, y in 32..43.
/// Per word type: the state bits kept, the word's value bits and where they go.
const HIGH_BITS: u64 = 0xFFF << 12;
const FAST_KEEP: [u64; 16] = {
    let mut k = [u64::MAX; 16];
    k[ADDR_Y as usize] = !(0x7FF << 32);
    k[TIME_LOW as usize] = !0xFFF;
    k[TIME_HIGH as usize] = !HIGH_BITS;
    k
};
const FAST_VALUE: [u64; 16] = {
    let mut v = [0; 16];
    v[ADDR_Y as usize] = 0x7FF;
    v[TIME_LOW as usize] = 0xFFF;
    v[TIME_HIGH as usize] = 0xFFF;
    v
};
const FAST_SHIFT: [u32; 16] = {
    let mut s = [0; 16];
    s[ADDR_Y as usize] = 32;
    s[TIME_HIGH as usize] = 12;
    s
};

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

    /// The common words (ADDR_Y, an in-bounds ADDR_X, TIME_LOW, a forward TIME_HIGH and the
    /// skipped types) in a branch-light loop once the time base is known: the state updates
    /// are selects, every word stores a candidate event at `events[*n]` and only an ADDR_X
    /// advances `n`. Every other word (vectors, triggers, a TIME_HIGH that steps back, an
    /// ADDR_X outside the sensor) and a full output go through [`Self::word`], so the results
    /// are those of the word-by-word loop.
    #[inline(always)]
    fn records(
        &mut self,
        recs: &[[u8; 2]],
        base: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) -> (usize, Step) {
        // types handled only by `word`: VECT_BASE_X, VECT_12, VECT_8, EXT_TRIGGER
        const SLOW: u32 = 1 << VECT_BASE_X | 1 << VECT_12 | 1 << VECT_8 | 1 << EXT_TRIGGER;
        const SKIPPED: u32 =
            !(1 << ADDR_Y | 1 << ADDR_X | 1 << TIME_LOW | 1 << TIME_HIGH | SLOW) & 0xFFFF;
        let (width, height) = (self.width, self.height);
        let mut i = 0;
        while i < recs.len() {
            if self.have_high && *n < events.len() {
                let t_base = self.t_offset.wrapping_add(self.wraps << 24);
                // y, the time high and the time low packed in one register (see `FAST_*`)
                let mut st = (self.y as u64) << 32 | (self.high as u64) << 12 | self.low as u64;
                let mut seen = [0u32; 16];
                let out = &mut events[*n..];
                // each word of this loop stores at most one event
                let end = i + (recs.len() - i).min(out.len());
                let mut k = 0;
                let mut stop = end;
                let mut j = i;
                while j < end {
                    // The common shape of a recording: TIME_LOW, ADDR_Y, ADDR_X per event,
                    // sometimes after a TIME_HIGH. Taken whole: one test, one event.
                    if j + 4 <= end {
                        let v = recs[j..j + 4]
                            .iter()
                            .rev()
                            .fold(0u64, |a, r| a << 16 | u16::from_le_bytes(*r) as u64);
                        let has_high = (v & 0xF000) == 0x8000;
                        let new_high = v & 0xFFF;
                        let cur_high = (st >> 12) & 0xFFF;
                        let u = v >> (16 * has_high as u32);
                        let x = ((u >> 32) & 0x7FF) as u16;
                        let y = ((u >> 16) & 0x7FF) as u16;
                        if (u & 0xF000_F000_F000) == 0x2000_0000_6000
                            && !(has_high & (new_high < cur_high))
                            && (x < width) & (y < height)
                        {
                            let high = select_unpredictable(has_high, new_high, cur_high);
                            st = (y as u64) << 32 | high << 12 | (u & 0xFFF);
                            out[k] = DvsEvent {
                                t: t_base.wrapping_add(st & 0xFF_FFFF),
                                x,
                                y,
                                p: ((u >> 43) & 1) as u8,
                            };
                            k += 1;
                            seen[TIME_HIGH as usize] += has_high as u32;
                            j += 3 + has_high as usize;
                            continue;
                        }
                        // the sensor's OTHERS + CONTINUED_12 × 2 + CONTINUED_4 records: skipped
                        if (v & 0xF000_F000_F000_F000) == 0x7000_F000_F000_E000 {
                            seen[0xE] += 1;
                            seen[0xF] += 2;
                            seen[0x7] += 1;
                            j += 4;
                            continue;
                        }
                    }
                    let w = u16::from_le_bytes(recs[j]);
                    let ty = (w >> 12) as usize;
                    let x = w & 0x7FF;
                    let y = (st >> 32) as u16;
                    // the word types come in no predictable order: the state update is a
                    // table lookup and masks, not a branch per type
                    let next =
                        (st & FAST_KEEP[ty]) | ((w as u64 & FAST_VALUE[ty]) << FAST_SHIFT[ty]);
                    let is_x = ty == ADDR_X as usize;
                    // rare words, a TIME_HIGH that steps back and an ADDR_X outside the sensor
                    // leave for `word`
                    let rare = ((SLOW >> ty) & 1 != 0)
                        | ((next & HIGH_BITS) < (st & HIGH_BITS))
                        | (is_x & ((x >= width) | (y >= height)));
                    if rare {
                        stop = j;
                        break;
                    }
                    st = next;
                    out[k] = DvsEvent {
                        t: t_base.wrapping_add(st & 0xFF_FFFF),
                        x,
                        y,
                        p: ((w >> 11) & 1) as u8,
                    };
                    k += is_x as usize;
                    seen[ty] += 1;
                    j += 1;
                }
                i = stop;
                *n += k;
                let stats = &mut self.stream.stats;
                for (ty, c) in seen.iter().enumerate() {
                    if (SKIPPED >> ty) & 1 != 0 {
                        stats.skipped_words[ty] += *c as u64;
                    }
                }
                self.y = (st >> 32) as u16;
                self.high = ((st >> 12) & 0xFFF) as u16;
                self.low = (st & 0xFFF) as u16;
                self.update_time();
                if i >= recs.len() {
                    break;
                }
            }
            let w = u16::from_le_bytes(recs[i]);
            match self.word(w, base + 2 * i as u64, events, n, triggers, nt) {
                Step::Done => i += 1,
                Step::Blocked => return (i, Step::Blocked),
                Step::Filled => return (i + 1, Step::Filled),
            }
        }
        (recs.len(), Step::Done)
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

    /// The plain loop the fast one must match: every word through `word`, output never full.
    fn reference(
        words: &[u16],
        width: u16,
        height: u16,
    ) -> (Vec<DvsEvent>, Vec<TriggerEvent>, Stats) {
        let mut d = Evt3Decoder::new(width, height);
        let mut ev = vec![DvsEvent::default(); words.len() * 12 + 1];
        let mut tr = vec![TriggerEvent::default(); words.len() + 1];
        let (mut n, mut nt) = (0, 0);
        for (i, &w) in words.iter().enumerate() {
            let step = d.word(w, 2 * i as u64, &mut ev, &mut n, &mut tr, &mut nt);
            assert_eq!(step, Step::Done);
        }
        d.stream.stats.events = n as u64;
        d.stream.stats.triggers = nt as u64;
        d.stream.stats.bytes = 2 * words.len() as u64;
        ev.truncate(n);
        tr.truncate(nt);
        (ev, tr, d.stream.stats)
    }

    #[test]
    fn fast_loop_matches_word_by_word() {
        // streams in the shape of real recordings (TIME_LOW, ADDR_Y, ADDR_X runs, TIME_HIGH
        // steps) mixed with every other type, backward TIME_HIGHs, coordinates beyond the
        // sensor; decoded whole and through small output buffers
        let mut rng = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        for round in 0..200 {
            let mut ws = Vec::new();
            let mut high = 0u16;
            for _ in 0..(50 + round * 5) {
                let r = next();
                match r % 16 {
                    0..=8 => {
                        if r % 7 == 0 {
                            high = (high + 1) & 0xFFF;
                            ws.push(0x8000 | high);
                        }
                        let x = (r >> 8) as u16 % 70;
                        let y = (r >> 20) as u16 % 40;
                        let p = ((r >> 40) & 1) as u16;
                        ws.extend([0x6000 | (r >> 44) as u16 & 0xFFF, y, 0x2000 | p << 11 | x]);
                    }
                    9 => ws.push(0x8000 | (r >> 8) as u16 & 0xFFF),
                    15 => ws.extend([0xE000 | (r >> 8) as u16 & 0xFFF, 0xF123, 0xF456, 0x7001]),
                    10 => ws.push(0x8000 | high),
                    _ => ws.push((r >> 16) as u16),
                }
            }
            let want = reference(&ws, 64, 32);
            let bytes = words(&ws);
            for chunk_events in [1usize, 3, 7, 1 << 14] {
                let mut d = Evt3Decoder::new(64, 32);
                let mut ev = vec![DvsEvent::default(); chunk_events];
                let mut tr = vec![TriggerEvent::default(); 2];
                let (mut got, mut trig) = (Vec::new(), Vec::new());
                let mut rest = &bytes[..];
                loop {
                    let p = d.decode(rest, &mut ev, &mut tr).unwrap();
                    got.extend_from_slice(&ev[..p.events]);
                    trig.extend_from_slice(&tr[..p.triggers]);
                    rest = &rest[p.consumed..];
                    if rest.is_empty() && !p.output_full {
                        break;
                    }
                }
                let st = d.finish().unwrap();
                assert_eq!(got, want.0, "round {round}, {chunk_events}-event buffer");
                assert_eq!(trig, want.1, "round {round}, {chunk_events}-event buffer");
                assert_eq!(st, want.2, "round {round}, {chunk_events}-event buffer");
            }
        }
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
