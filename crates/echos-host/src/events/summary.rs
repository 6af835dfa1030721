//! What `echos events info` and Python's `echos.events.info` report about a recording: counts
//! per polarity, time span, mean rate and the peak rate over 1 ms bins, gathered in one
//! streaming pass.

use super::{Aedat4Counts, DvsEvent, EventReader, EventsError, HeaderInfo, Stats};

/// Length of the bins the peak rate is measured over.
pub const PEAK_BIN_US: u64 = 1000;

/// Running counts over a stream of events (fed chunk by chunk, in file order).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub events: u64,
    pub on: u64,
    pub first_t: Option<u64>,
    pub last_t: u64,
    pub max_x: u16,
    pub max_y: u16,
    /// Index of the current peak bin (from the first event) and its count so far.
    bin: u64,
    in_bin: u64,
    peak: u64,
}

impl Tally {
    pub fn add(&mut self, events: &[DvsEvent]) {
        for e in events {
            let t0 = *self.first_t.get_or_insert(e.t);
            self.events += 1;
            self.on += e.p as u64;
            self.last_t = e.t;
            self.max_x = self.max_x.max(e.x);
            self.max_y = self.max_y.max(e.y);
            // consecutive events of one bin; a time going back starts a new run
            let b = e.t.saturating_sub(t0) / PEAK_BIN_US;
            if b != self.bin {
                self.peak = self.peak.max(self.in_bin);
                self.bin = b;
                self.in_bin = 0;
            }
            self.in_bin += 1;
        }
    }

    /// Most events in one [`PEAK_BIN_US`] bin.
    pub fn peak_bin_events(&self) -> u64 {
        self.peak.max(self.in_bin)
    }

    /// Last minus first time (µs), once there is an event.
    pub fn duration_us(&self) -> Option<u64> {
        self.first_t.map(|f| self.last_t.saturating_sub(f))
    }

    /// Events per second over the duration (`None` for a zero duration).
    pub fn mean_rate_hz(&self) -> Option<f64> {
        match self.duration_us() {
            Some(d) if d > 0 => Some(self.events as f64 / (d as f64 * 1e-6)),
            _ => None,
        }
    }

    pub fn peak_rate_hz(&self) -> Option<f64> {
        self.first_t
            .map(|_| self.peak_bin_events() as f64 * 1e6 / PEAK_BIN_US as f64)
    }
}

/// A whole file's summary.
#[derive(Clone, Debug)]
pub struct Summary {
    pub info: HeaderInfo,
    pub tally: Tally,
    pub triggers: u64,
    pub stats: Stats,
    pub aedat4: Option<Aedat4Counts>,
}

impl Summary {
    /// Read `reader` to its end; `progress` gets the file position after each chunk.
    pub fn of(mut reader: EventReader, mut progress: impl FnMut(u64)) -> Result<Self, EventsError> {
        let mut tally = Tally::default();
        let mut triggers = 0u64;
        let mut buf = Vec::new();
        while reader.next_chunk(&mut buf)? > 0 {
            tally.add(&buf);
            triggers += reader.take_triggers().len() as u64;
            progress(reader.position());
        }
        triggers += reader.take_triggers().len() as u64;
        Ok(Self {
            info: reader.info().clone(),
            tally,
            triggers,
            stats: reader.stats(),
            aedat4: reader.aedat4_counts().cloned(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rates_and_peak_bin() {
        let mut t = Tally::default();
        assert_eq!((t.mean_rate_hz(), t.peak_rate_hz()), (None, None));
        // bins from the first event (t = 100): 3 events in the first ms, 1 in the second, 2 in the sixth
        t.add(&[DvsEvent::new(100, 1, 2, 1), DvsEvent::new(500, 0, 0, 0)]);
        t.add(&[DvsEvent::new(1099, 7, 1, 1), DvsEvent::new(1100, 0, 9, 0)]);
        t.add(&[DvsEvent::new(5100, 0, 0, 1), DvsEvent::new(6099, 0, 0, 1)]);
        assert_eq!((t.events, t.on, t.max_x, t.max_y), (6, 4, 7, 9));
        assert_eq!(t.peak_bin_events(), 3);
        assert_eq!(t.duration_us(), Some(5999));
        assert_eq!(t.peak_rate_hz(), Some(3000.0));
        assert!((t.mean_rate_hz().unwrap() - 6.0 / 5999e-6).abs() < 1e-9);
    }
}
