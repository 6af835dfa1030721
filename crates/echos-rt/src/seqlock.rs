//! A seqlock over a slice of 64-bit words: one writer publishes a consistent snapshot without
//! ever waiting; readers retry (a bounded number of times) until they copy a version that no
//! write overlapped. Used for the reservoir-state snapshot and the timing histograms in the
//! shared region.
//!
//! Memory ordering (Boehm, "Can seqlocks get along with programming language memory models?",
//! 2012): the writer makes the sequence odd, issues a release fence, stores the data relaxed,
//! then stores the even sequence with release. A reader loads the sequence with acquire, loads
//! the data relaxed, issues an acquire fence, and re-loads the sequence; equal even values mean
//! no write overlapped. All data are atomics, so the concurrent accesses are not data races.

use std::sync::atomic::{fence, AtomicU64, Ordering};

/// The writer side; `seq` is owned by exactly one writer.
pub struct SeqWriter<'a> {
    seq: &'a AtomicU64,
    data: &'a [AtomicU64],
}

impl<'a> SeqWriter<'a> {
    pub fn new(seq: &'a AtomicU64, data: &'a [AtomicU64]) -> Self {
        Self { seq, data }
    }

    /// Publishes by calling `fill(data)` between the two sequence stores; `fill` must only
    /// store (relaxed) into `data`.
    #[inline]
    pub fn write(&self, fill: impl FnOnce(&[AtomicU64])) {
        let s = self.seq.load(Ordering::Relaxed);
        // An odd value from a writer that died mid-write is left odd by nobody but us: we are
        // the only writer, so `s` is even here.
        self.seq.store(s.wrapping_add(1), Ordering::Relaxed);
        fence(Ordering::Release);
        fill(self.data);
        self.seq.store(s.wrapping_add(2), Ordering::Release);
    }
}

/// Why a read gave up.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadError {
    /// Every attempt overlapped a write (or the writer died half-way, leaving the sequence
    /// odd).
    Busy { attempts: u32 },
}

/// Copies a consistent version of `data` into `out` (same length), retrying up to `attempts`
/// times. Returns the sequence number of the version read (even; 0 = never written).
pub fn read(
    seq: &AtomicU64,
    data: &[AtomicU64],
    out: &mut [u64],
    attempts: u32,
) -> Result<u64, ReadError> {
    debug_assert_eq!(data.len(), out.len());
    for _ in 0..attempts.max(1) {
        let s1 = seq.load(Ordering::Acquire);
        if s1 & 1 == 1 {
            std::hint::spin_loop();
            continue;
        }
        for (o, d) in out.iter_mut().zip(data) {
            *o = d.load(Ordering::Relaxed);
        }
        fence(Ordering::Acquire);
        if seq.load(Ordering::Relaxed) == s1 {
            return Ok(s1);
        }
        std::hint::spin_loop();
    }
    Err(ReadError::Busy { attempts })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;
    use std::sync::Arc;

    #[test]
    fn a_reader_never_sees_a_torn_snapshot() {
        // The writer stores k in every word of version k; a reader that mixes two versions
        // would see different words. The writer goes on until the reader has made 2,000
        // consistent copies (with writes overlapping many others), so both paths are hit.
        const WORDS: usize = 257;
        const WANTED: u64 = 2_000;
        let seq = Arc::new(AtomicU64::new(0));
        let data: Arc<Vec<AtomicU64>> = Arc::new((0..WORDS).map(|_| AtomicU64::new(0)).collect());
        let done = Arc::new(AtomicBool::new(false));
        let good = Arc::new(AtomicU64::new(0));
        let reader = {
            let (seq, data, done, good) = (seq.clone(), data.clone(), done.clone(), good.clone());
            std::thread::spawn(move || {
                let mut out = vec![0u64; WORDS];
                let (mut busy, mut last) = (0u64, 0u64);
                while !done.load(Ordering::Relaxed) {
                    match read(&seq, &data, &mut out, 4) {
                        Ok(s) => {
                            assert!(out.iter().all(|&w| w == out[0]), "torn read at seq {s}");
                            assert!(out[0] >= last, "versions went backwards");
                            assert_eq!(s, 2 * out[0], "sequence and payload disagree");
                            last = out[0];
                            good.fetch_add(1, Ordering::Relaxed);
                        }
                        Err(_) => busy += 1,
                    }
                }
                busy
            })
        };
        let w = SeqWriter::new(&seq, &data);
        let mut k = 0u64;
        while good.load(Ordering::Relaxed) < WANTED && k < 50_000_000 {
            k += 1;
            w.write(|d| d.iter().for_each(|x| x.store(k, Ordering::Relaxed)));
            for _ in 0..(k % 64) {
                std::hint::spin_loop();
            }
        }
        done.store(true, Ordering::Relaxed);
        reader.join().unwrap();
        assert!(
            good.load(Ordering::Relaxed) >= WANTED,
            "only {} consistent copies in {k} writes",
            good.load(Ordering::Relaxed)
        );
    }

    #[test]
    fn a_writer_that_died_mid_write_makes_reads_fail_not_lie() {
        let seq = AtomicU64::new(7); // odd: a write that never finished
        let data = [AtomicU64::new(1), AtomicU64::new(2)];
        let mut out = [0u64; 2];
        assert_eq!(
            read(&seq, &data, &mut out, 3),
            Err(ReadError::Busy { attempts: 3 })
        );
    }
}
