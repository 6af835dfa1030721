//! Latency histogram with logarithmic buckets in nanoseconds: fixed size, allocation-free
//! `record`, percentiles to within 1/16 of an octave (≤ 6.25 %) and an exact maximum.
//!
//! Values below 16 ns get a bucket each; above, every octave [2^o, 2^(o+1)) is cut into 16
//! equal sub-buckets (the HDR-histogram layout with 4 significant bits). A percentile is
//! reported as the upper edge of the bucket holding it, clamped to the exact maximum, so it
//! never under-states a latency. `hdrhistogram` would do the same but allocates its counts and
//! is not `#[repr(C)]`; this one is copied word by word into the shared region.

use serde::Serialize;

/// Sub-buckets per octave (4 significant bits).
const SUB: usize = 16;
/// Buckets: 16 exact ones below 16 ns, then 16 per octave for octaves 4..=63.
pub const BUCKETS: usize = SUB + (64 - 4) * SUB;

/// Bucket index of `v` nanoseconds.
pub fn bucket_of(v: u64) -> usize {
    if v < SUB as u64 {
        return v as usize;
    }
    let octave = 63 - v.leading_zeros() as usize; // >= 4
    let sub = ((v >> (octave - 4)) as usize) - SUB; // in 0..16
    SUB + (octave - 4) * SUB + sub
}

/// Largest value that falls in bucket `i` (its upper edge, inclusive).
pub fn bucket_upper(i: usize) -> u64 {
    if i < SUB {
        return i as u64;
    }
    let octave = (i - SUB) / SUB + 4;
    let sub = ((i - SUB) % SUB + SUB) as u64;
    // Bucket holds [sub << (octave-4), (sub+1) << (octave-4)).
    ((sub + 1) << (octave - 4)).wrapping_sub(1)
}

#[derive(Clone, Debug, PartialEq, Eq)]
#[repr(C)]
pub struct LogHistogram {
    counts: [u64; BUCKETS],
    samples: u64,
    min_ns: u64,
    max_ns: u64,
    sum_ns: u64,
}

impl Default for LogHistogram {
    fn default() -> Self {
        Self::new()
    }
}

/// The percentiles a report shows (`None` for an empty histogram).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub samples: u64,
    pub min_ns: Option<u64>,
    pub p50_ns: Option<u64>,
    pub p99_ns: Option<u64>,
    pub p999_ns: Option<u64>,
    pub max_ns: Option<u64>,
    pub mean_ns: Option<u64>,
}

impl LogHistogram {
    pub const fn new() -> Self {
        Self {
            counts: [0; BUCKETS],
            samples: 0,
            min_ns: u64::MAX,
            max_ns: 0,
            sum_ns: 0,
        }
    }

    #[inline]
    pub fn record(&mut self, ns: u64) {
        self.counts[bucket_of(ns)] += 1;
        self.samples += 1;
        self.min_ns = self.min_ns.min(ns);
        self.max_ns = self.max_ns.max(ns);
        self.sum_ns = self.sum_ns.saturating_add(ns);
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    pub fn max_ns(&self) -> Option<u64> {
        (self.samples > 0).then_some(self.max_ns)
    }

    pub fn counts(&self) -> &[u64; BUCKETS] {
        &self.counts
    }

    /// Rebuilds a histogram from bucket counts and its exact extremes (as published in the
    /// shared region).
    pub fn from_parts(counts: [u64; BUCKETS], min_ns: u64, max_ns: u64, sum_ns: u64) -> Self {
        let samples = counts.iter().fold(0u64, |a, &c| a.saturating_add(c));
        Self {
            counts,
            samples,
            min_ns,
            max_ns,
            sum_ns,
        }
    }

    /// Exact minimum, maximum and sum (the parts `counts` does not carry).
    pub fn extremes(&self) -> (u64, u64, u64) {
        (self.min_ns, self.max_ns, self.sum_ns)
    }

    /// The value at quantile `q` in [0, 1]: the upper edge of the bucket holding the sample of
    /// rank ⌈q·n⌉ (at least 1), clamped to the exact maximum.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.samples == 0 {
            return None;
        }
        let q = if q.is_nan() { 1.0 } else { q.clamp(0.0, 1.0) };
        let rank = ((q * self.samples as f64).ceil() as u64).clamp(1, self.samples);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Some(bucket_upper(i).min(self.max_ns).max(self.min_ns));
            }
        }
        Some(self.max_ns)
    }

    pub fn percentiles(&self) -> Percentiles {
        Percentiles {
            samples: self.samples,
            min_ns: (self.samples > 0).then_some(self.min_ns),
            p50_ns: self.quantile(0.5),
            p99_ns: self.quantile(0.99),
            p999_ns: self.quantile(0.999),
            max_ns: self.max_ns(),
            mean_ns: (self.samples > 0).then(|| self.sum_ns / self.samples),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_tile_the_u64_range_in_order() {
        // Every bucket's upper edge + 1 is the next bucket's first value.
        for i in 0..BUCKETS - 1 {
            let hi = bucket_upper(i);
            assert_eq!(bucket_of(hi), i, "upper edge of {i}");
            assert_eq!(bucket_of(hi + 1), i + 1, "first value after {i}");
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
        assert_eq!(bucket_upper(BUCKETS - 1), u64::MAX);
    }

    #[test]
    fn relative_bucket_width_is_at_most_one_sixteenth() {
        for v in [16u64, 17, 100, 1_000, 12_345, 1 << 40, u64::MAX / 3] {
            let hi = bucket_upper(bucket_of(v));
            assert!(hi >= v);
            assert!((hi - v) as f64 <= v as f64 / 16.0, "{v} -> {hi}");
        }
    }

    #[test]
    fn percentiles_of_a_known_distribution() {
        let mut h = LogHistogram::new();
        // 1..=1000 µs, one sample each.
        for us in 1..=1000u64 {
            h.record(us * 1000);
        }
        let p = h.percentiles();
        assert_eq!(p.samples, 1000);
        assert_eq!(p.min_ns, Some(1000));
        assert_eq!(p.max_ns, Some(1_000_000));
        // True p50 is 500 µs, p99 990 µs; bucket edges over-state by at most 1/16.
        let p50 = p.p50_ns.unwrap();
        assert!((500_000..=500_000 + 500_000 / 16).contains(&p50), "{p50}");
        let p99 = p.p99_ns.unwrap();
        assert!((990_000..=1_000_000).contains(&p99), "{p99}");
        assert_eq!(p.p999_ns, Some(1_000_000));
        assert_eq!(p.mean_ns, Some(500_500));
    }

    #[test]
    fn empty_and_single_sample() {
        let h = LogHistogram::new();
        assert_eq!(h.percentiles(), Percentiles::default());
        let mut h = LogHistogram::new();
        h.record(7_777);
        let p = h.percentiles();
        // One sample: every percentile is that sample exactly (clamped to min and max).
        assert_eq!(p.p50_ns, Some(7_777));
        assert_eq!(p.p999_ns, Some(7_777));
    }

    #[test]
    fn from_parts_round_trips() {
        let mut h = LogHistogram::new();
        for v in [5, 50, 500, 5_000, 50_000] {
            h.record(v);
        }
        let (min, max, sum) = h.extremes();
        assert_eq!(LogHistogram::from_parts(*h.counts(), min, max, sum), h);
    }
}
