//! jAER's AEDAT 2.0: a `#` text header (`#!AER-DAT2.0`, `# AEChip: <class>`), then 8-byte
//! big-endian records (u32 address, u32 timestamp in µs). The address layout depends on the
//! chip the header names (jAER's extractors, read from its source; no shared sample exists,
//! so the tests use small files written from this description):
//! - DVS128 (`Tmpdiff128`, `DVS128`): bit 0 raw polarity (0 = ON), bits 1–7 x, bits 8–14 y,
//!   bit 15 an external sync (falling edge).
//! - DAVIS (240, 346, 640): bit 31 set is an APS (frame) sample; else bit 10 set is a special
//!   external-input event; else a DVS event: bit 11 polarity (1 = ON), bits 12–21 x,
//!   bits 22–30 y.
//!
//! Coordinates are jAER's as displayed (it mirrors the chip's x) with the row counted from
//! the top, like every other format here: `x = W−1−raw_x`, `y = H−1−raw_y`. Timestamps are
//! 32-bit µs: a step back by more than 2^31 is a wrap (carried into 64 bits), a smaller one is
//! kept and counted. Sync/special events become triggers on channel 0 (value 0 for the
//! DVS128's falling-edge sync, 1 for DAVIS external inputs); APS samples are counted in
//! `Stats::other_records`. A file without an `AEChip` line is read as DVS128, the format's
//! original chip.

use echos_core::events::{DecodeError, DvsEvent, EventDecoder, Progress, Stats, TriggerEvent};

/// Which address layout the records use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Aedat2Layout {
    Dvs128,
    Davis { width: u16, height: u16 },
}

impl Aedat2Layout {
    pub fn size(self) -> (u16, u16) {
        match self {
            Self::Dvs128 => (128, 128),
            Self::Davis { width, height } => (width, height),
        }
    }
}

/// Streaming decoder of AEDAT 2.0 records (the bytes after the header).
#[derive(Clone, Debug)]
pub struct Aedat2Decoder {
    layout: Aedat2Layout,
    carry: [u8; 8],
    carry_len: usize,
    offset: u64,
    last_ts: Option<u32>,
    high: u64,
    stats: Stats,
}

impl Aedat2Decoder {
    pub fn new(layout: Aedat2Layout) -> Self {
        Self {
            layout,
            carry: [0; 8],
            carry_len: 0,
            offset: 0,
            last_ts: None,
            high: 0,
            stats: Stats::default(),
        }
    }

    fn time(&mut self, ts: u32, off: u64) -> u64 {
        if let Some(last) = self.last_ts {
            if ts < last {
                if last - ts > 1 << 31 {
                    self.high += 1 << 32;
                    self.stats.time_wraps += 1;
                } else {
                    self.stats.time_jumps_back += 1;
                    self.stats.first_time_jump_back.get_or_insert(off);
                }
            }
        }
        self.last_ts = Some(ts);
        self.high + ts as u64
    }

    /// One record; `Some(true)` an event was written, `Some(false)` a trigger, `None` neither.
    fn record(
        &mut self,
        r: &[u8; 8],
        off: u64,
        ev: &mut DvsEvent,
        tr: &mut TriggerEvent,
    ) -> Option<bool> {
        let addr = u32::from_be_bytes([r[0], r[1], r[2], r[3]]);
        let ts = u32::from_be_bytes([r[4], r[5], r[6], r[7]]);
        let t = self.time(ts, off);
        let (w, h) = self.layout.size();
        let (rx, ry, p) = match self.layout {
            Aedat2Layout::Dvs128 => {
                if addr & 0x8000 != 0 {
                    *tr = TriggerEvent {
                        t,
                        channel: 0,
                        value: 0,
                    };
                    return Some(false);
                }
                (
                    (addr >> 1) & 0x7F,
                    (addr >> 8) & 0x7F,
                    (addr & 1 == 0) as u8,
                )
            }
            Aedat2Layout::Davis { .. } => {
                if addr & 0x8000_0000 != 0 {
                    self.stats.other_records += 1;
                    return None;
                }
                if addr & 0x400 != 0 {
                    *tr = TriggerEvent {
                        t,
                        channel: 0,
                        value: 1,
                    };
                    return Some(false);
                }
                (
                    (addr >> 12) & 0x3FF,
                    (addr >> 22) & 0x1FF,
                    ((addr >> 11) & 1) as u8,
                )
            }
        };
        if rx >= w as u32 || ry >= h as u32 {
            self.stats.out_of_bounds += 1;
            self.stats.first_out_of_bounds.get_or_insert(off);
            return None;
        }
        *ev = DvsEvent {
            t,
            x: (w as u32 - 1 - rx) as u16,
            y: (h as u32 - 1 - ry) as u16,
            p,
        };
        Some(true)
    }
}

impl EventDecoder for Aedat2Decoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        let (mut n, mut nt, mut pos) = (0, 0, 0);
        let mut full = false;
        while pos < input.len() {
            if n >= events.len() || nt >= triggers.len() {
                full = true;
                break;
            }
            let off = self.offset + pos as u64 - self.carry_len as u64;
            let take = (8 - self.carry_len).min(input.len() - pos);
            self.carry[self.carry_len..self.carry_len + take]
                .copy_from_slice(&input[pos..pos + take]);
            self.carry_len += take;
            pos += take;
            if self.carry_len < 8 {
                break;
            }
            self.carry_len = 0;
            let rec = self.carry;
            let (mut ev, mut tr) = (DvsEvent::default(), TriggerEvent::default());
            match self.record(&rec, off, &mut ev, &mut tr) {
                Some(true) => {
                    events[n] = ev;
                    n += 1;
                }
                Some(false) => {
                    triggers[nt] = tr;
                    nt += 1;
                }
                None => {}
            }
        }
        self.offset += pos as u64;
        self.stats.bytes = self.offset;
        self.stats.events += n as u64;
        self.stats.triggers += nt as u64;
        Ok(Progress {
            consumed: pos,
            events: n,
            triggers: nt,
            output_full: full,
        })
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        if self.carry_len > 0 {
            return Err(DecodeError::Truncated {
                offset: self.offset - self.carry_len as u64,
                have: self.carry_len,
                record_len: 8,
            });
        }
        Ok(self.stats.clone())
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use echos_core::events::decode_all;

    fn rec(addr: u32, ts: u32) -> [u8; 8] {
        let mut r = [0; 8];
        r[..4].copy_from_slice(&addr.to_be_bytes());
        r[4..].copy_from_slice(&ts.to_be_bytes());
        r
    }

    fn davis(x: u32, y: u32, on: bool) -> u32 {
        (y << 22) | (x << 12) | ((on as u32) << 11)
    }

    #[test]
    fn davis346_records() {
        let recs = [
            rec(davis(0, 0, true), 10),
            rec(davis(345, 259, false), 11),
            rec(0x8000_0000 | 123, 12),   // APS sample
            rec(0x400, 13),               // external input
            rec(davis(346, 0, true), 14), // outside the sensor
            rec(davis(5, 7, true), 5),    // back by 9 µs
            rec(davis(1, 1, false), 3_000_000_000),
            rec(davis(2, 2, true), 100), // wrapped
        ];
        let bytes: Vec<u8> = recs.concat();
        let mut d = Aedat2Decoder::new(Aedat2Layout::Davis {
            width: 346,
            height: 260,
        });
        let (ev, tr, s) = decode_all(&mut d, &bytes).unwrap();
        assert_eq!(
            ev,
            vec![
                DvsEvent::new(10, 345, 259, 1),
                DvsEvent::new(11, 0, 0, 0),
                DvsEvent::new(5, 340, 252, 1),
                DvsEvent::new(3_000_000_000, 344, 258, 0),
                DvsEvent::new((1 << 32) + 100, 343, 257, 1),
            ]
        );
        assert_eq!(
            tr,
            vec![TriggerEvent {
                t: 13,
                channel: 0,
                value: 1
            }]
        );
        assert_eq!(
            (s.other_records, s.out_of_bounds, s.first_out_of_bounds),
            (1, 1, Some(32))
        );
        assert_eq!((s.time_jumps_back, s.time_wraps), (1, 1));
    }

    #[test]
    fn dvs128_records_and_a_cut_record() {
        let dvs = |x: u32, y: u32, on: bool| (y << 8) | (x << 1) | (!on as u32);
        let mut bytes = [
            rec(dvs(0, 0, true), 1),
            rec(dvs(127, 100, false), 2),
            rec(0x8000, 3),
        ]
        .concat();
        let mut d = Aedat2Decoder::new(Aedat2Layout::Dvs128);
        let (ev, tr, _) = decode_all(&mut d, &bytes).unwrap();
        assert_eq!(
            ev,
            vec![DvsEvent::new(1, 127, 127, 1), DvsEvent::new(2, 0, 27, 0)]
        );
        assert_eq!(
            tr,
            vec![TriggerEvent {
                t: 3,
                channel: 0,
                value: 0
            }]
        );
        bytes.truncate(20);
        let mut d = Aedat2Decoder::new(Aedat2Layout::Dvs128);
        assert_eq!(
            decode_all(&mut d, &bytes).unwrap_err(),
            DecodeError::Truncated {
                offset: 16,
                have: 4,
                record_len: 8
            }
        );
    }
}
