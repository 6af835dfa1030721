//! cAER/libcaer's AEDAT 3.1: a `#` text header (`#!AER-DAT3.1`, `#Source N: <camera>`,
//! `#!END-HEADER`), then packets, each a 28-byte little-endian header (i16 event type, i16
//! source, i32 event size, i32 timestamp offset, i32 timestamp overflow, i32 capacity, i32
//! number, i32 valid) and `capacity × size` bytes of events. Read from libcaer's published
//! format description (no shared sample exists: the tests use small files written from it):
//! - type 1, polarity, 8 bytes: u32 data (bit 0 valid, bit 1 polarity, bits 2–16 y,
//!   bits 17–31 x), i32 timestamp; time = overflow · 2^31 + timestamp µs. Coordinates are
//!   libcaer's (origin top left), as tonic reads them.
//! - type 0, special, 8 bytes: u32 data (bit 0 valid, bits 1–7 kind), i32 timestamp; kinds 2,
//!   3, 4 (external input rising, falling, pulse) become triggers on channel 0 (value 1, 0, 1),
//!   the others are counted.
//! - other types (frames, IMU samples, …) are counted per element and passed over unread.
//!
//! Events whose valid bit is clear are skipped and counted (`Stats::skipped_words[0]`).
//! Nothing is buffered: records are decoded as they stream through.

use echos_core::events::{DecodeError, DvsEvent, EventDecoder, Progress, Stats, TriggerEvent};

/// A packet whose events take more than this is refused: libcaer's packets hold at most a few
/// thousand events, and a corrupt header must not make a reader skip or wait for gigabytes.
pub const MAX_PACKET_BYTES: u64 = 256 << 20;

#[derive(Clone, Copy, Debug)]
enum State {
    Head,
    /// Inside a packet's events: `left` bytes remain, `record` bytes per event.
    Body {
        kind: i16,
        record: usize,
        left: u64,
        overflow: u64,
    },
}

/// What an AEDAT 3.1 stream held besides polarity events.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Aedat31Counts {
    pub packets: u64,
    /// Elements of packets of other types, by type (index = event type, up to 15).
    pub other_elements: [u64; 16],
}

/// Streaming decoder of AEDAT 3.1 packets (the bytes after the header).
#[derive(Clone, Debug)]
pub struct Aedat31Decoder {
    width: u16,
    height: u16,
    state: State,
    head: [u8; 28],
    head_len: usize,
    rec: [u8; 8],
    rec_len: usize,
    offset: u64,
    packet_offset: u64,
    last_t: Option<u64>,
    stats: Stats,
    counts: Aedat31Counts,
}

fn corrupt(offset: u64, what: &'static str) -> DecodeError {
    DecodeError::Corrupt { offset, what }
}

impl Aedat31Decoder {
    /// Events outside `width × height` are dropped and counted (the largest 15-bit size when
    /// the header names no known camera).
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            state: State::Head,
            head: [0; 28],
            head_len: 0,
            rec: [0; 8],
            rec_len: 0,
            offset: 0,
            packet_offset: 0,
            last_t: None,
            stats: Stats::default(),
            counts: Aedat31Counts::default(),
        }
    }

    pub fn counts(&self) -> &Aedat31Counts {
        &self.counts
    }

    fn start_packet(&mut self) -> Result<State, DecodeError> {
        let h = &self.head;
        let i16_at = |i: usize| i16::from_le_bytes([h[i], h[i + 1]]);
        let i32_at = |i: usize| i32::from_le_bytes([h[i], h[i + 1], h[i + 2], h[i + 3]]);
        let (kind, size, overflow, capacity, number) =
            (i16_at(0), i32_at(4), i32_at(12), i32_at(16), i32_at(20));
        let at = self.packet_offset;
        if size <= 0 || capacity < 0 || number < 0 || overflow < 0 || number > capacity {
            return Err(corrupt(
                at,
                "an AEDAT 3.1 packet header has a negative or inconsistent size",
            ));
        }
        let bytes = size as u64 * capacity as u64;
        if bytes > MAX_PACKET_BYTES {
            return Err(corrupt(at, "an AEDAT 3.1 packet claims more than 256 MiB"));
        }
        if matches!(kind, 0 | 1) && size != 8 {
            return Err(corrupt(
                at,
                "an AEDAT 3.1 polarity or special event is not 8 bytes",
            ));
        }
        self.counts.packets += 1;
        if !matches!(kind, 0 | 1) {
            self.counts.other_elements[(kind as usize).min(15)] += number as u64;
            self.stats.other_records += number as u64;
        }
        Ok(State::Body {
            kind,
            record: size as usize,
            left: bytes,
            overflow: overflow as u64,
        })
    }

    /// One 8-byte polarity or special record.
    #[allow(clippy::too_many_arguments)]
    fn record(
        &mut self,
        kind: i16,
        overflow: u64,
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        triggers: &mut [TriggerEvent],
        nt: &mut usize,
    ) {
        let r = self.rec;
        let data = u32::from_le_bytes([r[0], r[1], r[2], r[3]]);
        let ts = i32::from_le_bytes([r[4], r[5], r[6], r[7]]);
        if data & 1 == 0 {
            self.stats.skipped_words[0] += 1;
            return;
        }
        // libcaer keeps the low 31 bits and carries wraps into the packet's overflow counter
        let t = (overflow << 31) + (ts as u32 & 0x7FFF_FFFF) as u64;
        if kind == 0 {
            let value = match (data >> 1) & 0x7F {
                2 | 4 => 1,
                3 => 0,
                _ => {
                    self.stats.other_records += 1;
                    return;
                }
            };
            triggers[*nt] = TriggerEvent {
                t,
                channel: 0,
                value,
            };
            *nt += 1;
            return;
        }
        let x = (data >> 17) & 0x7FFF;
        let y = (data >> 2) & 0x7FFF;
        if x >= self.width as u32 || y >= self.height as u32 {
            self.stats.out_of_bounds += 1;
            self.stats.first_out_of_bounds.get_or_insert(off);
            return;
        }
        if self.last_t.is_some_and(|l| t < l) {
            self.stats.time_jumps_back += 1;
            self.stats.first_time_jump_back.get_or_insert(off);
        }
        self.last_t = Some(t);
        events[*n] = DvsEvent {
            t,
            x: x as u16,
            y: y as u16,
            p: ((data >> 1) & 1) as u8,
        };
        *n += 1;
    }
}

impl EventDecoder for Aedat31Decoder {
    fn decode(
        &mut self,
        input: &[u8],
        events: &mut [DvsEvent],
        triggers: &mut [TriggerEvent],
    ) -> Result<Progress, DecodeError> {
        let (mut n, mut nt, mut pos) = (0, 0, 0);
        let mut full = false;
        let mut result = Ok(());
        while pos < input.len() {
            let here = self.offset + pos as u64;
            match self.state {
                State::Head => {
                    if self.head_len == 0 {
                        self.packet_offset = here;
                    }
                    let take = (28 - self.head_len).min(input.len() - pos);
                    self.head[self.head_len..self.head_len + take]
                        .copy_from_slice(&input[pos..pos + take]);
                    self.head_len += take;
                    pos += take;
                    if self.head_len == 28 {
                        self.head_len = 0;
                        match self.start_packet() {
                            Ok(s) => self.state = s,
                            Err(e) => {
                                result = Err(e);
                                break;
                            }
                        }
                    }
                }
                State::Body { left: 0, .. } => self.state = State::Head,
                State::Body {
                    kind,
                    record,
                    left,
                    overflow,
                } => {
                    if !matches!(kind, 0 | 1) {
                        let take = left.min((input.len() - pos) as u64);
                        pos += take as usize;
                        self.state = State::Body {
                            kind,
                            record,
                            left: left - take,
                            overflow,
                        };
                        continue;
                    }
                    if self.rec_len == 0 && (n >= events.len() || nt >= triggers.len()) {
                        full = true;
                        break;
                    }
                    let take = (8 - self.rec_len).min(input.len() - pos);
                    self.rec[self.rec_len..self.rec_len + take]
                        .copy_from_slice(&input[pos..pos + take]);
                    self.rec_len += take;
                    pos += take;
                    if self.rec_len < 8 {
                        break;
                    }
                    self.rec_len = 0;
                    let off = here + take as u64 - 8;
                    self.record(kind, overflow, off, events, &mut n, triggers, &mut nt);
                    self.state = State::Body {
                        kind,
                        record,
                        left: left - 8,
                        overflow,
                    };
                }
            }
        }
        if let State::Body { left: 0, .. } = self.state {
            self.state = State::Head;
        }
        self.offset += pos as u64;
        self.stats.bytes = self.offset;
        self.stats.events += n as u64;
        self.stats.triggers += nt as u64;
        result?;
        Ok(Progress {
            consumed: pos,
            events: n,
            triggers: nt,
            output_full: full,
        })
    }

    fn finish(&mut self) -> Result<Stats, DecodeError> {
        match self.state {
            State::Head if self.head_len > 0 => Err(DecodeError::Truncated {
                offset: self.packet_offset,
                have: self.head_len,
                record_len: 28,
            }),
            State::Body { left, .. } if left > 0 => Err(DecodeError::Truncated {
                offset: self.packet_offset,
                have: (self.offset - self.packet_offset) as usize,
                // the bytes of a record cut short are counted in `have` and still in `left`
                record_len: (self.offset - self.packet_offset + left - self.rec_len as u64)
                    as usize,
            }),
            _ => Ok(self.stats.clone()),
        }
    }

    fn stats(&self) -> &Stats {
        &self.stats
    }
}

#[cfg(test)]
pub(crate) mod testfile {
    /// A packet of `kind` with `records` of 8 bytes (data, timestamp) and `overflow`.
    pub fn packet(kind: i16, overflow: i32, records: &[(u32, i32)]) -> Vec<u8> {
        let n = records.len() as i32;
        let mut out = Vec::new();
        out.extend_from_slice(&kind.to_le_bytes());
        out.extend_from_slice(&1i16.to_le_bytes());
        for v in [8i32, 4, overflow, n, n, n] {
            out.extend_from_slice(&v.to_le_bytes());
        }
        for &(d, t) in records {
            out.extend_from_slice(&d.to_le_bytes());
            out.extend_from_slice(&t.to_le_bytes());
        }
        out
    }

    pub fn polarity(x: u32, y: u32, on: bool) -> u32 {
        (x << 17) | (y << 2) | ((on as u32) << 1) | 1
    }
}

#[cfg(test)]
mod tests {
    use super::testfile::*;
    use super::*;

    fn run(
        bytes: &[u8],
        chunk: usize,
        cap: usize,
    ) -> Result<(Vec<DvsEvent>, Vec<TriggerEvent>, Stats), DecodeError> {
        let mut d = Aedat31Decoder::new(128, 128);
        let mut ev = vec![DvsEvent::default(); cap];
        let mut tr = vec![TriggerEvent::default(); cap];
        let (mut e, mut t) = (Vec::new(), Vec::new());
        let mut rest = bytes;
        loop {
            let k = chunk.min(rest.len());
            let p = d.decode(&rest[..k], &mut ev, &mut tr)?;
            e.extend_from_slice(&ev[..p.events]);
            t.extend_from_slice(&tr[..p.triggers]);
            rest = &rest[p.consumed..];
            if rest.is_empty() && !p.output_full {
                break;
            }
        }
        let s = d.finish()?;
        Ok((e, t, s))
    }

    fn sample() -> Vec<u8> {
        let mut b = packet(
            1,
            0,
            &[
                (polarity(3, 4, true), 10),
                (polarity(127, 0, false), 11),
                (polarity(3, 4, true) & !1, 12),
                (polarity(200, 0, true), 13),
            ],
        );
        b.extend(packet(
            0,
            0,
            &[((2 << 1) | 1, 14), ((3 << 1) | 1, 15), ((1 << 1) | 1, 16)],
        ));
        // a frame packet (type 2) of 2 elements of 8 bytes: counted, passed over
        let mut frames = packet(2, 0, &[(0, 0), (0, 0)]);
        frames[0] = 2;
        b.extend(frames);
        b.extend(packet(1, 1, &[(polarity(1, 2, false), 5)]));
        b
    }

    #[test]
    fn polarity_special_and_other_packets_in_any_chunking() {
        let bytes = sample();
        for (chunk, cap) in [(bytes.len(), 100), (1, 1), (5, 2), (29, 3)] {
            let (e, t, s) = run(&bytes, chunk, cap).unwrap();
            assert_eq!(
                e,
                vec![
                    DvsEvent::new(10, 3, 4, 1),
                    DvsEvent::new(11, 127, 0, 0),
                    DvsEvent::new((1 << 31) + 5, 1, 2, 0),
                ],
                "chunk {chunk}"
            );
            assert_eq!(
                t,
                vec![
                    TriggerEvent {
                        t: 14,
                        channel: 0,
                        value: 1
                    },
                    TriggerEvent {
                        t: 15,
                        channel: 0,
                        value: 0
                    },
                ]
            );
            assert_eq!((s.skipped_words[0], s.out_of_bounds), (1, 1));
            assert_eq!(s.other_records, 1 + 2, "a timestamp reset and two frames");
        }
    }

    #[test]
    fn damaged_packets_are_errors() {
        let bytes = sample();
        // cut inside a packet header and inside a packet's events
        for cut in [10, 28 + 12] {
            assert!(matches!(
                run(&bytes[..cut], 7, 4),
                Err(DecodeError::Truncated { offset: 0, .. })
            ));
        }
        let mut bad = bytes.clone();
        bad[16..20].copy_from_slice(&i32::MAX.to_le_bytes()); // capacity
        bad[20..24].copy_from_slice(&i32::MAX.to_le_bytes()); // number
        assert_eq!(
            run(&bad, 64, 4).unwrap_err(),
            DecodeError::Corrupt {
                offset: 0,
                what: "an AEDAT 3.1 packet claims more than 256 MiB"
            }
        );
        let mut bad = bytes.clone();
        bad[4..8].copy_from_slice(&(-8i32).to_le_bytes());
        assert!(matches!(
            run(&bad, 64, 4),
            Err(DecodeError::Corrupt { offset: 0, .. })
        ));
        let mut bad = bytes.clone();
        bad[4..8].copy_from_slice(&16i32.to_le_bytes());
        assert!(
            matches!(run(&bad, 64, 4), Err(DecodeError::Corrupt { what, .. }) if what.contains("8 bytes"))
        );
        // every single-byte change decodes or fails, never panics
        for i in 0..bytes.len() {
            for v in [0u8, 0xFF, 0x80] {
                let mut b = bytes.clone();
                b[i] = v;
                let _ = run(&b, 11, 3);
            }
        }
    }
}
