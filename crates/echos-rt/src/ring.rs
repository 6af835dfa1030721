//! The cross-process single-producer single-consumer ring of fixed-size records, laid out in
//! 64-bit words of the shared region. `rtrb` is the ring inside a process; it cannot live in
//! shared memory (its buffer is a heap allocation behind pointers), so this is the one ring
//! written by hand.
//!
//! Layout: `head` (records pushed), `tail` (records popped) and `drops` each on its own
//! 64-byte cache line so producer and consumer never share a line they write; then
//! `capacity × record_words` slot words. Counters are free-running u64s; slot = counter mod
//! capacity (a power of two).
//!
//! Ordering: the producer stores a record's words relaxed, then `head` with release; the
//! consumer loads `head` with acquire before reading the words, and stores `tail` with release
//! after it has read them; the producer loads `tail` with acquire before reusing a slot. A full
//! ring drops the new record (counted) instead of waiting: a consumer that stops or falls
//! behind costs the producer one relaxed increment per record.

use std::sync::atomic::{AtomicU64, Ordering};

/// Words between the control counters: one 64-byte cache line each.
pub const LINE_WORDS: usize = 8;
/// Control words before the slots: head, tail, drops, consumer pid — a line each.
pub const CONTROL_WORDS: usize = 4 * LINE_WORDS;
const HEAD: usize = 0;
const TAIL: usize = LINE_WORDS;
const DROPS: usize = 2 * LINE_WORDS;
/// Pid of the process that holds the consumer role (0: none), so two readers cannot both pop.
pub const CONSUMER: usize = 3 * LINE_WORDS;

/// A view of the ring's words.
#[derive(Clone, Copy)]
pub struct Ring<'a> {
    control: &'a [AtomicU64],
    slots: &'a [AtomicU64],
    mask: u64,
    record_words: usize,
}

/// What the producer remembers between pushes (it alone writes `head`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ProducerCursor {
    head: u64,
    cached_tail: u64,
}

/// What the consumer remembers between pops (it alone writes `tail`).
#[derive(Clone, Copy, Debug, Default)]
pub struct ConsumerCursor {
    tail: u64,
    cached_head: u64,
}

impl<'a> Ring<'a> {
    /// `control` holds `CONTROL_WORDS` words and `slots` `capacity × record_words`;
    /// `capacity` is a power of two. `None` if the sizes do not fit together.
    pub fn new(
        control: &'a [AtomicU64],
        slots: &'a [AtomicU64],
        capacity: u64,
        record_words: usize,
    ) -> Option<Self> {
        let fits = control.len() == CONTROL_WORDS
            && capacity.is_power_of_two()
            && record_words > 0
            && (capacity as usize).checked_mul(record_words) == Some(slots.len());
        fits.then_some(Self {
            control,
            slots,
            mask: capacity - 1,
            record_words,
        })
    }

    pub fn capacity(&self) -> u64 {
        self.mask + 1
    }

    pub fn record_words(&self) -> usize {
        self.record_words
    }

    /// A producer cursor that continues from the ring's current counters (for a fresh ring,
    /// zero).
    pub fn producer(&self) -> ProducerCursor {
        ProducerCursor {
            head: self.control[HEAD].load(Ordering::Relaxed),
            cached_tail: self.control[TAIL].load(Ordering::Acquire),
        }
    }

    /// A consumer cursor starting at the oldest record still in the ring.
    pub fn consumer(&self) -> ConsumerCursor {
        ConsumerCursor {
            tail: self.control[TAIL].load(Ordering::Relaxed),
            cached_head: self.control[HEAD].load(Ordering::Acquire),
        }
    }

    /// Pushes one record written by `fill` (relaxed stores into its `record_words` words).
    /// Returns false, counting a drop, if the ring is full. Never waits.
    #[inline]
    pub fn push(&self, cur: &mut ProducerCursor, fill: impl FnOnce(&[AtomicU64])) -> bool {
        let cap = self.mask + 1;
        if cur.head.wrapping_sub(cur.cached_tail) >= cap {
            cur.cached_tail = self.control[TAIL].load(Ordering::Acquire);
            if cur.head.wrapping_sub(cur.cached_tail) >= cap {
                let drops = &self.control[DROPS];
                drops.store(drops.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
                return false;
            }
        }
        let at = (cur.head & self.mask) as usize * self.record_words;
        fill(&self.slots[at..at + self.record_words]);
        cur.head = cur.head.wrapping_add(1);
        self.control[HEAD].store(cur.head, Ordering::Release);
        true
    }

    /// Pops the oldest record into `out` (`record_words` long); false if the ring is empty.
    #[inline]
    pub fn pop(&self, cur: &mut ConsumerCursor, out: &mut [u64]) -> bool {
        if cur.tail == cur.cached_head {
            cur.cached_head = self.control[HEAD].load(Ordering::Acquire);
            if cur.tail == cur.cached_head {
                return false;
            }
        }
        let at = (cur.tail & self.mask) as usize * self.record_words;
        for (o, w) in out.iter_mut().zip(&self.slots[at..at + self.record_words]) {
            *o = w.load(Ordering::Relaxed);
        }
        cur.tail = cur.tail.wrapping_add(1);
        self.control[TAIL].store(cur.tail, Ordering::Release);
        true
    }

    /// Records dropped because the ring was full.
    pub fn drops(&self) -> u64 {
        self.control[DROPS].load(Ordering::Relaxed)
    }

    /// Records pushed and not yet popped (a reader's estimate; exact when both sides rest).
    pub fn len(&self) -> u64 {
        let head = self.control[HEAD].load(Ordering::Acquire);
        let tail = self.control[TAIL].load(Ordering::Acquire);
        head.wrapping_sub(tail).min(self.capacity())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn pushed(&self) -> u64 {
        self.control[HEAD].load(Ordering::Acquire)
    }

    /// The consumer-role word (pid of the consumer, 0 for none).
    pub fn consumer_word(&self) -> &'a AtomicU64 {
        &self.control[CONSUMER]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    fn words(n: usize) -> Vec<AtomicU64> {
        (0..n).map(|_| AtomicU64::new(0)).collect()
    }

    #[test]
    fn sizes_that_do_not_fit_are_refused() {
        let c = words(CONTROL_WORDS);
        let s = words(24);
        assert!(Ring::new(&c, &s, 8, 3).is_some());
        assert!(
            Ring::new(&c, &s, 6, 4).is_none(),
            "capacity not a power of two"
        );
        assert!(Ring::new(&c, &s, 8, 4).is_none(), "slots too short");
        assert!(Ring::new(&c[1..], &s, 8, 3).is_none(), "control too short");
        assert!(Ring::new(&c, &s, 24, 0).is_none(), "empty records");
    }

    #[test]
    fn full_ring_drops_and_counts_then_recovers() {
        let c = words(CONTROL_WORDS);
        let s = words(4 * 2);
        let ring = Ring::new(&c, &s, 4, 2).unwrap();
        let (mut p, mut q) = (ring.producer(), ring.consumer());
        let put = |p: &mut ProducerCursor, k: u64| {
            ring.push(p, |r| {
                r[0].store(k, Ordering::Relaxed);
                r[1].store(!k, Ordering::Relaxed);
            })
        };
        for k in 0..4 {
            assert!(put(&mut p, k));
        }
        assert!(!put(&mut p, 99));
        assert!(!put(&mut p, 100));
        assert_eq!(ring.drops(), 2);
        assert_eq!(ring.len(), 4);
        let mut out = [0u64; 2];
        assert!(ring.pop(&mut q, &mut out));
        assert_eq!(out, [0, !0]);
        assert!(put(&mut p, 4));
        for k in 1..=4 {
            assert!(ring.pop(&mut q, &mut out));
            assert_eq!(out, [k, !k]);
        }
        assert!(!ring.pop(&mut q, &mut out));
    }

    #[test]
    fn stress_two_threads_every_record_arrives_once_in_order_or_is_counted_dropped() {
        const REC: usize = 5;
        const N: u64 = 300_000;
        let c: Arc<Vec<AtomicU64>> = Arc::new(words(CONTROL_WORDS));
        let s: Arc<Vec<AtomicU64>> = Arc::new(words(64 * REC));
        let consumer = {
            let (c, s) = (c.clone(), s.clone());
            std::thread::spawn(move || {
                let ring = Ring::new(&c, &s, 64, REC).unwrap();
                let mut cur = ring.consumer();
                let mut out = [0u64; REC];
                let (mut got, mut next_min) = (0u64, 0u64);
                loop {
                    if ring.pop(&mut cur, &mut out) {
                        let k = out[0];
                        if k == u64::MAX {
                            break;
                        }
                        for (i, &w) in out.iter().enumerate().skip(1) {
                            assert_eq!(
                                w,
                                k.wrapping_mul(31).wrapping_add(i as u64),
                                "torn record {k}"
                            );
                        }
                        assert!(
                            k >= next_min,
                            "record {k} after {next_min}: out of order or twice"
                        );
                        next_min = k + 1;
                        got += 1;
                    } else {
                        std::hint::spin_loop();
                    }
                }
                got
            })
        };
        let ring = Ring::new(&c, &s, 64, REC).unwrap();
        let mut cur = ring.producer();
        let fill = |k: u64| {
            move |r: &[AtomicU64]| {
                r[0].store(k, Ordering::Relaxed);
                for (i, w) in r.iter().enumerate().skip(1) {
                    w.store(k.wrapping_mul(31).wrapping_add(i as u64), Ordering::Relaxed);
                }
            }
        };
        for k in 0..N {
            ring.push(&mut cur, fill(k));
        }
        let data_drops = ring.drops();
        // The end marker must arrive: retry until there is room.
        while !ring.push(&mut cur, |r| r[0].store(u64::MAX, Ordering::Relaxed)) {
            std::hint::spin_loop();
        }
        let got = consumer.join().unwrap();
        // Exact accounting: every record either arrived (once, in order) or was counted.
        assert_eq!(got + data_drops, N, "got {got}, dropped {data_drops}");
        assert!(got > 0);
    }
}
