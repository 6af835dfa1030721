//! N-MNIST / N-Caltech101 binary: 5 bytes per event — x, y, then polarity (bit 7) with
//! timestamp bits 22–16, then timestamp bits 15–8 and 7–0 (big-endian time), 34×34 pixels.
//!
//! The overflow quirk, as tonic 1.7's `read_mnist_file` applies it: a record with `y == 240` is
//! not an event but a marker that adds 2^13 µs to its own and every later timestamp. Markers are
//! counted in [`Stats::overflow_markers`]; events beyond the sensor are dropped and counted.

use super::{
    drive, note_out_of_bounds, DecodeError, DvsEvent, EventDecoder, Progress, Records, Stats, Step,
    Stream, TriggerEvent,
};

/// N-MNIST's sensor side (the ATIS crop used for the dataset).
pub const NMNIST_SIZE: u16 = 34;

/// Streaming N-MNIST decoder (the files have no header).
#[derive(Clone, Debug)]
pub struct NmnistDecoder {
    width: u16,
    height: u16,
    t_offset: u64,
    stream: Stream<5>,
}

impl Default for NmnistDecoder {
    fn default() -> Self {
        Self::new(NMNIST_SIZE, NMNIST_SIZE)
    }
}

impl NmnistDecoder {
    /// `width` × `height` bounds (34 × 34 for N-MNIST; N-Caltech101 uses up to 240 × 180, but
    /// its y can never be 240, which stays the marker).
    pub fn new(width: u16, height: u16) -> Self {
        Self {
            width,
            height,
            t_offset: 0,
            stream: Stream::new(),
        }
    }
}

impl Records<5> for NmnistDecoder {
    fn stream(&mut self) -> &mut Stream<5> {
        &mut self.stream
    }

    #[inline(always)]
    fn record(
        &mut self,
        rec: &[u8; 5],
        off: u64,
        events: &mut [DvsEvent],
        n: &mut usize,
        _triggers: &mut [TriggerEvent],
        _nt: &mut usize,
    ) -> Step {
        if rec[1] == 240 {
            self.t_offset = self.t_offset.wrapping_add(1 << 13);
            self.stream.stats.overflow_markers += 1;
            return Step::Done;
        }
        if *n >= events.len() {
            return Step::Blocked;
        }
        let (x, y) = (rec[0] as u16, rec[1] as u16);
        if x < self.width && y < self.height {
            let ts = (((rec[2] & 0x7F) as u64) << 16) | ((rec[3] as u64) << 8) | rec[4] as u64;
            events[*n] = DvsEvent {
                t: self.t_offset.wrapping_add(ts),
                x,
                y,
                p: rec[2] >> 7,
            };
            *n += 1;
        } else {
            note_out_of_bounds(&mut self.stream.stats, off);
        }
        Step::Done
    }
}

impl EventDecoder for NmnistDecoder {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::events::decode_all;
    use alloc::vec;

    #[test]
    fn records_and_overflow_marker() {
        let bytes = [
            1,
            2,
            0x80 | 0x01,
            0x02,
            0x03, // ON, t = 0x010203
            0,
            240,
            0,
            0,
            0, // marker: +8192 from here on
            33,
            33,
            0x00,
            0x00,
            0x05, // OFF, t = 5 + 8192
            34,
            0,
            0,
            0,
            0, // x out of the 34x34 sensor
        ];
        let (ev, _, st) = decode_all(&mut NmnistDecoder::default(), &bytes).unwrap();
        assert_eq!(
            ev,
            vec![
                DvsEvent::new(0x010203, 1, 2, 1),
                DvsEvent::new(8197, 33, 33, 0)
            ]
        );
        assert_eq!(st.overflow_markers, 1);
        assert_eq!(st.out_of_bounds, 1);
        assert_eq!(st.first_out_of_bounds, Some(15));
    }

    #[test]
    fn cut_record_is_reported() {
        let err = decode_all(&mut NmnistDecoder::default(), &[1, 2, 3, 4, 5, 6, 7]).unwrap_err();
        assert_eq!(
            err,
            DecodeError::Truncated {
                offset: 5,
                have: 2,
                record_len: 5
            }
        );
    }
}
