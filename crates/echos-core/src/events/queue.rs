//! A temporal event queue: lock-free, single producer / single consumer, fixed capacity, safe
//! code only. Each slot is two `AtomicU64` (time; x | y << 16 | p << 32), published by a
//! release store of the producer's count and freed by a release store of the consumer's, so an
//! interrupt handler or a reader thread can feed a reservoir task without a lock or allocation.
//!
//! The queue keeps events in time order: an event earlier than the last accepted one is *late*;
//! it is counted and, by [`LatePolicy`], dropped or given the last accepted time. When the queue
//! is full, [`OverflowPolicy`] drops the new event (counted) or refuses it (the producer retries).

use super::DvsEvent;
use alloc::boxed::Box;
use alloc::vec::Vec;
use core::fmt;
use core::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a full queue does with a new event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverflowPolicy {
    /// Drop it and count it ([`EventQueue::dropped`]): the producer never waits.
    DropNewest,
    /// Return [`PushError::Full`]: the producer decides (retry, or drop).
    Refuse,
}

/// What the queue does with an event earlier than the last accepted one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LatePolicy {
    /// Drop it (counted in [`EventQueue::late`]).
    Drop,
    /// Keep it with the last accepted time (counted too), so the order stays monotonic.
    Clamp,
}

/// What happened to a pushed event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushOutcome {
    Queued,
    /// Queued with its time raised to the last accepted one ([`LatePolicy::Clamp`]).
    Clamped,
    /// Dropped: it was late ([`LatePolicy::Drop`]).
    DroppedLate,
    /// Dropped: the queue was full ([`OverflowPolicy::DropNewest`]).
    DroppedFull,
}

/// A push the queue refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PushError {
    /// Full, under [`OverflowPolicy::Refuse`]; nothing was stored.
    Full,
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the event queue is full (overflow policy: refuse)")
    }
}

/// Why a queue cannot be made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum QueueError {
    ZeroCapacity,
}

impl fmt::Display for QueueError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an event queue needs a capacity of at least one event")
    }
}

/// Keeps the producer's and consumer's counters on separate cache lines.
#[repr(align(64))]
#[derive(Debug)]
struct Padded<T>(T);

/// The queue's storage; [`EventQueue::split`] hands out its only producer and consumer.
#[derive(Debug)]
pub struct EventQueue {
    slots: Box<[[AtomicU64; 2]]>,
    overflow: OverflowPolicy,
    late_policy: LatePolicy,
    /// Events ever pushed (written by the producer).
    tail: Padded<AtomicU64>,
    /// Events ever popped (written by the consumer).
    head: Padded<AtomicU64>,
    dropped: AtomicU64,
    late: AtomicU64,
    last_t: AtomicU64,
    has_last: AtomicBool,
}

fn pack(e: &DvsEvent) -> u64 {
    e.x as u64 | (e.y as u64) << 16 | (e.p as u64) << 32
}

fn unpack(t: u64, w: u64) -> DvsEvent {
    DvsEvent {
        t,
        x: w as u16,
        y: (w >> 16) as u16,
        p: (w >> 32) as u8,
    }
}

impl EventQueue {
    /// A queue holding up to `capacity` events (allocated here, once).
    pub fn new(
        capacity: usize,
        overflow: OverflowPolicy,
        late_policy: LatePolicy,
    ) -> Result<Self, QueueError> {
        if capacity == 0 {
            return Err(QueueError::ZeroCapacity);
        }
        let slots: Vec<[AtomicU64; 2]> = (0..capacity)
            .map(|_| [AtomicU64::new(0), AtomicU64::new(0)])
            .collect();
        Ok(Self {
            slots: slots.into_boxed_slice(),
            overflow,
            late_policy,
            tail: Padded(AtomicU64::new(0)),
            head: Padded(AtomicU64::new(0)),
            dropped: AtomicU64::new(0),
            late: AtomicU64::new(0),
            last_t: AtomicU64::new(0),
            has_last: AtomicBool::new(false),
        })
    }

    /// The producer and consumer handles. Borrowing the queue mutably makes them the only ones
    /// (single producer, single consumer); each may move to its own thread (scoped threads).
    pub fn split(&mut self) -> (Producer<'_>, Consumer<'_>) {
        let tail = self.tail.0.load(Ordering::Relaxed);
        let head = self.head.0.load(Ordering::Relaxed);
        let cap = self.slots.len() as u64;
        let last_t = self
            .has_last
            .load(Ordering::Relaxed)
            .then(|| self.last_t.load(Ordering::Relaxed));
        let q: &EventQueue = self;
        (
            Producer {
                q,
                tail,
                idx: (tail % cap) as usize,
                head_seen: head,
                last_t,
            },
            Consumer {
                q,
                head,
                idx: (head % cap) as usize,
                tail_seen: tail,
            },
        )
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Events waiting (a snapshot when the other side is running).
    pub fn len(&self) -> usize {
        let tail = self.tail.0.load(Ordering::Acquire);
        let head = self.head.0.load(Ordering::Acquire);
        tail.saturating_sub(head) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Events dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Late (out-of-order) events seen, dropped or clamped.
    pub fn late(&self) -> u64 {
        self.late.load(Ordering::Relaxed)
    }
}

/// The producing side.
#[derive(Debug)]
pub struct Producer<'q> {
    q: &'q EventQueue,
    tail: u64,
    idx: usize,
    head_seen: u64,
    last_t: Option<u64>,
}

impl Producer<'_> {
    /// Push one event; O(1), no lock, no allocation.
    pub fn push(&mut self, mut e: DvsEvent) -> Result<PushOutcome, PushError> {
        let mut outcome = PushOutcome::Queued;
        if let Some(last) = self.last_t {
            if e.t < last {
                self.q.late.fetch_add(1, Ordering::Relaxed);
                match self.q.late_policy {
                    LatePolicy::Drop => return Ok(PushOutcome::DroppedLate),
                    LatePolicy::Clamp => {
                        e.t = last;
                        outcome = PushOutcome::Clamped;
                    }
                }
            }
        }
        let cap = self.q.slots.len() as u64;
        if self.tail - self.head_seen >= cap {
            self.head_seen = self.q.head.0.load(Ordering::Acquire);
            if self.tail - self.head_seen >= cap {
                return match self.q.overflow {
                    OverflowPolicy::DropNewest => {
                        self.q.dropped.fetch_add(1, Ordering::Relaxed);
                        Ok(PushOutcome::DroppedFull)
                    }
                    OverflowPolicy::Refuse => Err(PushError::Full),
                };
            }
        }
        let slot = &self.q.slots[self.idx];
        slot[0].store(e.t, Ordering::Relaxed);
        slot[1].store(pack(&e), Ordering::Relaxed);
        self.tail += 1;
        self.idx += 1;
        if self.idx == self.q.slots.len() {
            self.idx = 0;
        }
        self.q.tail.0.store(self.tail, Ordering::Release);
        self.last_t = Some(e.t);
        Ok(outcome)
    }

    /// Push events in order; returns how many were offered before a refusal (all of them
    /// unless the policy is [`OverflowPolicy::Refuse`] and the queue filled up).
    pub fn push_slice(&mut self, events: &[DvsEvent]) -> usize {
        for (i, e) in events.iter().enumerate() {
            if self.push(*e).is_err() {
                return i;
            }
        }
        events.len()
    }

    pub fn queue(&self) -> &EventQueue {
        self.q
    }
}

impl Drop for Producer<'_> {
    fn drop(&mut self) {
        // The next split's producer keeps judging lateness against what this one accepted.
        if let Some(t) = self.last_t {
            self.q.last_t.store(t, Ordering::Relaxed);
            self.q.has_last.store(true, Ordering::Relaxed);
        }
    }
}

/// The consuming side.
#[derive(Debug)]
pub struct Consumer<'q> {
    q: &'q EventQueue,
    head: u64,
    idx: usize,
    tail_seen: u64,
}

impl Consumer<'_> {
    #[inline]
    fn available(&mut self) -> u64 {
        if self.tail_seen == self.head {
            self.tail_seen = self.q.tail.0.load(Ordering::Acquire);
        }
        self.tail_seen - self.head
    }

    #[inline]
    fn read(&self, idx: usize) -> DvsEvent {
        let slot = &self.q.slots[idx];
        unpack(
            slot[0].load(Ordering::Relaxed),
            slot[1].load(Ordering::Relaxed),
        )
    }

    fn advance(&mut self, k: usize) {
        if k == 0 {
            return;
        }
        self.head += k as u64;
        self.idx = ((self.idx + k) as u64 % self.q.slots.len() as u64) as usize;
        self.q.head.0.store(self.head, Ordering::Release);
    }

    /// The oldest event, without removing it.
    pub fn peek(&mut self) -> Option<DvsEvent> {
        (self.available() > 0).then(|| self.read(self.idx))
    }

    pub fn pop(&mut self) -> Option<DvsEvent> {
        let e = self.peek()?;
        self.advance(1);
        Some(e)
    }

    /// Pop up to `out.len()` events; returns how many.
    pub fn pop_into(&mut self, out: &mut [DvsEvent]) -> usize {
        self.pop_before(None, out)
    }

    /// Pop events with `t < until` (a time window's exclusive end), up to `out.len()`; returns
    /// how many. Events at or after `until` stay for the next window.
    pub fn pop_until(&mut self, until: u64, out: &mut [DvsEvent]) -> usize {
        self.pop_before(Some(until), out)
    }

    fn pop_before(&mut self, until: Option<u64>, out: &mut [DvsEvent]) -> usize {
        let mut avail = self.available();
        if avail < out.len() as u64 {
            // Refresh once more: the producer may have published since.
            self.tail_seen = self.q.tail.0.load(Ordering::Acquire);
            avail = self.tail_seen - self.head;
        }
        let cap = self.q.slots.len();
        let mut idx = self.idx;
        let mut k = 0;
        while k < out.len() && (k as u64) < avail {
            let e = self.read(idx);
            if until.is_some_and(|u| e.t >= u) {
                break;
            }
            out[k] = e;
            k += 1;
            idx += 1;
            if idx == cap {
                idx = 0;
            }
        }
        self.advance(k);
        k
    }

    pub fn queue(&self) -> &EventQueue {
        self.q
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(t: u64) -> DvsEvent {
        DvsEvent::new(t, (t % 1280) as u16, (t % 720) as u16, (t % 2) as u8)
    }

    #[test]
    fn overflow_policies() {
        let mut q = EventQueue::new(3, OverflowPolicy::DropNewest, LatePolicy::Drop).unwrap();
        let (mut p, mut c) = q.split();
        for t in 0..5 {
            p.push(ev(t)).unwrap();
        }
        assert_eq!(p.queue().dropped(), 2);
        let mut out = [DvsEvent::default(); 8];
        assert_eq!(c.pop_into(&mut out), 3);
        assert_eq!(out[2], ev(2));

        let mut q = EventQueue::new(2, OverflowPolicy::Refuse, LatePolicy::Drop).unwrap();
        let (mut p, mut c) = q.split();
        assert_eq!(p.push_slice(&[ev(1), ev(2), ev(3)]), 2);
        assert_eq!(p.push(ev(3)), Err(PushError::Full));
        assert_eq!(c.pop(), Some(ev(1)));
        assert_eq!(p.push(ev(3)), Ok(PushOutcome::Queued));
        assert_eq!(p.queue().dropped(), 0);
    }

    #[test]
    fn pop_into_takes_events_at_the_end_of_time() {
        let mut q = EventQueue::new(2, OverflowPolicy::Refuse, LatePolicy::Drop).unwrap();
        let (mut p, mut c) = q.split();
        p.push(ev(u64::MAX)).unwrap();
        let mut out = [DvsEvent::default(); 2];
        assert_eq!(c.pop_until(u64::MAX, &mut out), 0);
        assert_eq!(c.pop_into(&mut out), 1);
        assert_eq!(out[0].t, u64::MAX);
    }

    #[test]
    fn late_events_counted() {
        let mut q = EventQueue::new(8, OverflowPolicy::Refuse, LatePolicy::Drop).unwrap();
        {
            let (mut p, _) = q.split();
            p.push(ev(10)).unwrap();
            assert_eq!(p.push(ev(9)), Ok(PushOutcome::DroppedLate));
        }
        {
            // lateness is judged across splits too
            let (mut p, mut c) = q.split();
            assert_eq!(p.push(ev(5)), Ok(PushOutcome::DroppedLate));
            assert_eq!(c.pop(), Some(ev(10)));
            assert_eq!(c.pop(), None);
        }
        assert_eq!(q.late(), 2);
        let mut q = EventQueue::new(8, OverflowPolicy::Refuse, LatePolicy::Clamp).unwrap();
        let (mut p, mut c) = q.split();
        p.push(ev(10)).unwrap();
        assert_eq!(p.push(ev(9)), Ok(PushOutcome::Clamped));
        c.pop();
        assert_eq!(c.pop().map(|e| e.t), Some(10));
    }

    #[test]
    fn pop_until_windows_and_wraparound() {
        let mut q = EventQueue::new(5, OverflowPolicy::Refuse, LatePolicy::Drop).unwrap();
        let (mut p, mut c) = q.split();
        let mut out = [DvsEvent::default(); 16];
        let mut next = 0u64;
        let mut got = Vec::new();
        for window_end in (10..=200).step_by(10) {
            while next < window_end + 7 && p.push(ev(next)).is_ok() {
                next += 3;
            }
            let k = c.pop_until(window_end, &mut out);
            assert!(out[..k].iter().all(|e| e.t < window_end));
            got.extend(out[..k].iter().map(|e| e.t));
            assert!(c.peek().is_none_or(|e| e.t >= window_end));
        }
        let want: Vec<u64> = (0..200).step_by(3).collect();
        assert_eq!(got, want);
        assert!(EventQueue::new(0, OverflowPolicy::Refuse, LatePolicy::Drop).is_err());
    }
}
