//! Kernel time: TSC ticks ↔ nanoseconds with a calibrated frequency, a monotonic clock that
//! never runs backwards, and one-shot / periodic timer bookkeeping in a fixed-capacity queue.
//!
//! Conversion is `ns = (ticks · mult) >> shift` with a 128-bit product, so it cannot overflow for
//! any tick count whose result fits in 64 bits of nanoseconds (584 years; beyond, it saturates).
//! `mult` keeps 63 significant bits, so a result is the exact floor or 1 ns above it up to
//! 2⁶² ns (146 years), and at most 4 ns above it up to 2⁶⁴ ns.
#![forbid(unsafe_code)]

use core::fmt;

pub const NANOS_PER_SEC: u64 = 1_000_000_000;

/// Frequencies outside this range are refused: below it the calibration must have failed, above
/// it no x86_64 TSC runs.
pub const MIN_TSC_HZ: u64 = 1_000_000;
pub const MAX_TSC_HZ: u64 = 100_000_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeError {
    /// The calibrated TSC frequency is outside [`MIN_TSC_HZ`, `MAX_TSC_HZ`].
    FrequencyOutOfRange { hz: u64 },
    /// A calibration interval of zero ticks or zero nanoseconds.
    EmptyCalibration { ticks: u64, nanos: u64 },
    /// A periodic timer with period zero would fire forever.
    ZeroPeriod,
    /// The timer queue is full.
    QueueFull { capacity: usize },
    /// The handle names no armed timer (already fired, cancelled, or from another queue).
    StaleHandle { slot: u16, generation: u32 },
    /// A deadline so late that the next period would overflow 64-bit nanoseconds.
    DeadlineOverflow { deadline_ns: u64, period_ns: u64 },
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Self::FrequencyOutOfRange { hz } => write!(
                f,
                "TSC frequency {hz} Hz is outside {MIN_TSC_HZ}..={MAX_TSC_HZ} Hz: calibration failed"
            ),
            Self::EmptyCalibration { ticks, nanos } => write!(
                f,
                "calibration interval of {ticks} ticks over {nanos} ns cannot give a frequency"
            ),
            Self::ZeroPeriod => write!(f, "a periodic timer needs a period above zero"),
            Self::QueueFull { capacity } => {
                write!(f, "timer queue is full ({capacity} timers armed)")
            }
            Self::StaleHandle { slot, generation } => write!(
                f,
                "timer handle (slot {slot}, generation {generation}) names no armed timer"
            ),
            Self::DeadlineOverflow {
                deadline_ns,
                period_ns,
            } => write!(
                f,
                "deadline {deadline_ns} ns plus period {period_ns} ns overflows the clock"
            ),
        }
    }
}

/// A fixed-point linear map `y = (x · mult) >> shift` with `2⁶² ≤ mult < 2⁶³`: the product of a
/// 64-bit `x` stays below 2¹²⁷ and `mult` overestimates the ratio by less than 2⁻⁶² relative,
/// so `y` is the exact floor or at most `1 + y / 2⁶²` above it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scale {
    mult: u64,
    shift: u32,
}

impl Scale {
    /// Scale for `y = x · num / den`, `num` and `den` nonzero.
    fn new(num: u64, den: u64) -> Self {
        // Start where `num << shift` still fits 127 bits, then step down until mult < 2⁶³.
        let mut shift = num.leading_zeros() + 63;
        loop {
            // Rounded up, so ratios that are whole numbers (hz ticks → 1 s) convert exactly.
            let mult = ((num as u128) << shift).div_ceil(den as u128);
            if mult < (1u128 << 63) || shift == 0 {
                return Self {
                    mult: mult as u64,
                    shift,
                };
            }
            shift -= 1;
        }
    }

    /// Saturates at `u64::MAX` when the result does not fit.
    fn apply(self, x: u64) -> u64 {
        let y = ((x as u128) * (self.mult as u128)) >> self.shift;
        u64::try_from(y).unwrap_or(u64::MAX)
    }
}

/// TSC ↔ nanosecond conversion for one calibrated TSC frequency.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TscClock {
    hz: u64,
    to_ns: Scale,
    to_ticks: Scale,
}

impl TscClock {
    /// From a frequency in Hz (CPUID leaf 0x15/0x16, or [`TscClock::calibrate`]).
    pub fn from_hz(hz: u64) -> Result<Self, TimeError> {
        if !(MIN_TSC_HZ..=MAX_TSC_HZ).contains(&hz) {
            return Err(TimeError::FrequencyOutOfRange { hz });
        }
        Ok(Self {
            hz,
            to_ns: Scale::new(NANOS_PER_SEC, hz),
            to_ticks: Scale::new(hz, NANOS_PER_SEC),
        })
    }

    /// From a calibration run: `ticks` TSC ticks elapsed while a reference clock (PIT, HPET,
    /// ACPI PM timer) measured `nanos` nanoseconds.
    pub fn calibrate(ticks: u64, nanos: u64) -> Result<Self, TimeError> {
        if ticks == 0 || nanos == 0 {
            return Err(TimeError::EmptyCalibration { ticks, nanos });
        }
        let hz = (ticks as u128 * NANOS_PER_SEC as u128 + nanos as u128 / 2) / nanos as u128;
        Self::from_hz(u64::try_from(hz).unwrap_or(u64::MAX))
    }

    pub fn hz(&self) -> u64 {
        self.hz
    }

    /// Nanoseconds for a tick count (saturating at `u64::MAX`, 584 years).
    pub fn ticks_to_ns(&self, ticks: u64) -> u64 {
        self.to_ns.apply(ticks)
    }

    /// Ticks for a nanosecond count (saturating).
    pub fn ns_to_ticks(&self, ns: u64) -> u64 {
        self.to_ticks.apply(ns)
    }
}

/// A point on the kernel's monotonic clock, in nanoseconds since boot.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Instant(pub u64);

impl Instant {
    pub const fn as_nanos(self) -> u64 {
        self.0
    }
    pub fn checked_add(self, ns: u64) -> Option<Instant> {
        self.0.checked_add(ns).map(Instant)
    }
    pub fn saturating_add(self, ns: u64) -> Instant {
        Instant(self.0.saturating_add(ns))
    }
    /// Nanoseconds from `earlier` to `self`, zero if `earlier` is later.
    pub fn saturating_since(self, earlier: Instant) -> u64 {
        self.0.saturating_sub(earlier.0)
    }
}

/// Turns raw TSC readings into a monotonic [`Instant`]: readings are taken relative to the boot
/// reading, and a reading below the last one (unsynchronised TSCs, a migrated task) is clamped
/// so time never runs backwards.
#[derive(Clone, Copy, Debug)]
pub struct MonotonicClock {
    tsc: TscClock,
    boot_tsc: u64,
    last: Instant,
}

impl MonotonicClock {
    pub fn new(tsc: TscClock, boot_tsc: u64) -> Self {
        Self {
            tsc,
            boot_tsc,
            last: Instant(0),
        }
    }

    pub fn tsc(&self) -> &TscClock {
        &self.tsc
    }

    /// The instant for a TSC reading, never earlier than any instant returned before.
    pub fn observe(&mut self, tsc_now: u64) -> Instant {
        let now = Instant(self.tsc.ticks_to_ns(tsc_now.saturating_sub(self.boot_tsc)));
        if now > self.last {
            self.last = now;
        }
        self.last
    }

    /// The TSC value at which `at` is reached, for programming a TSC-deadline timer.
    pub fn tsc_deadline(&self, at: Instant) -> u64 {
        self.boot_tsc
            .saturating_add(self.tsc.ns_to_ticks(at.0))
            // Rounding the conversion down could fire a timer one tick early; one tick later is
            // always safe.
            .saturating_add(1)
    }
}

/// Names one armed timer. The generation makes a handle to a fired or cancelled timer stale, even
/// after its slot is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct TimerHandle {
    slot: u16,
    generation: u32,
}

/// What an expired timer reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Expiry {
    pub handle: TimerHandle,
    /// The caller's tag given when arming (a task id, a reservoir id).
    pub tag: u32,
    /// The deadline that expired.
    pub deadline: Instant,
    /// For a periodic timer: whole periods that passed unserved before `now` (0 when on time).
    pub missed: u64,
    /// For a periodic timer: the next deadline, `deadline + (missed + 1) · period`, so the
    /// schedule never drifts. `None` for one-shot timers (now disarmed).
    pub next: Option<Instant>,
}

#[derive(Clone, Copy, Debug)]
struct Slot {
    armed: bool,
    generation: u32,
    deadline: u64,
    /// 0 = one-shot.
    period: u64,
    tag: u32,
    /// Arming order, to expire equal deadlines first-armed first (determinism).
    seq: u64,
}

const IDLE: Slot = Slot {
    armed: false,
    generation: 0,
    deadline: 0,
    period: 0,
    tag: 0,
    seq: 0,
};

/// Up to `N` armed timers kept in deadline order in a fixed array. Arm, cancel and re-arm are
/// O(N) (a bounded shift in the order array); `next_deadline` is O(1). For the tens of timers a
/// reservoir kernel runs this beats a wheel, and the cost is bounded by `N`, chosen at build.
pub struct TimerQueue<const N: usize> {
    slots: [Slot; N],
    /// Slot indices of armed timers sorted by (deadline, seq).
    order: [u16; N],
    len: usize,
    next_seq: u64,
}

impl<const N: usize> Default for TimerQueue<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> TimerQueue<N> {
    /// `N` must fit the 16-bit slot numbers of [`TimerHandle`].
    pub const fn new() -> Self {
        assert!(N <= u16::MAX as usize, "timer queue capacity above 65535");
        Self {
            slots: [IDLE; N],
            order: [0; N],
            len: 0,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The earliest armed deadline, for programming the hardware timer.
    pub fn next_deadline(&self) -> Option<Instant> {
        (self.len > 0).then(|| Instant(self.slots[self.order[0] as usize].deadline))
    }

    /// Arms a one-shot timer.
    pub fn arm_oneshot(&mut self, deadline: Instant, tag: u32) -> Result<TimerHandle, TimeError> {
        self.arm(deadline.0, 0, tag)
    }

    /// Arms a periodic timer whose first expiry is `first`, then every `period_ns` after it.
    pub fn arm_periodic(
        &mut self,
        first: Instant,
        period_ns: u64,
        tag: u32,
    ) -> Result<TimerHandle, TimeError> {
        if period_ns == 0 {
            return Err(TimeError::ZeroPeriod);
        }
        self.arm(first.0, period_ns, tag)
    }

    fn arm(&mut self, deadline: u64, period: u64, tag: u32) -> Result<TimerHandle, TimeError> {
        let Some(slot) = self.slots.iter().position(|s| !s.armed) else {
            return Err(TimeError::QueueFull { capacity: N });
        };
        let s = &mut self.slots[slot];
        s.armed = true;
        s.generation = s.generation.wrapping_add(1);
        s.deadline = deadline;
        s.period = period;
        s.tag = tag;
        s.seq = self.next_seq;
        self.next_seq += 1;
        let generation = s.generation;
        self.insert_ordered(slot as u16);
        Ok(TimerHandle {
            slot: slot as u16,
            generation,
        })
    }

    fn key(&self, slot: u16) -> (u64, u64) {
        let s = &self.slots[slot as usize];
        (s.deadline, s.seq)
    }

    fn insert_ordered(&mut self, slot: u16) {
        let key = self.key(slot);
        let mut i = self.len;
        while i > 0 && self.key(self.order[i - 1]) > key {
            self.order[i] = self.order[i - 1];
            i -= 1;
        }
        self.order[i] = slot;
        self.len += 1;
    }

    fn remove_ordered(&mut self, slot: u16) {
        if let Some(pos) = self.order[..self.len].iter().position(|&s| s == slot) {
            self.order.copy_within(pos + 1..self.len, pos);
            self.len -= 1;
        }
    }

    fn check(&self, h: TimerHandle) -> Result<(), TimeError> {
        match self.slots.get(h.slot as usize) {
            Some(s) if s.armed && s.generation == h.generation => Ok(()),
            _ => Err(TimeError::StaleHandle {
                slot: h.slot,
                generation: h.generation,
            }),
        }
    }

    /// Disarms a timer; a stale handle is an error, so a double cancel is caught.
    pub fn cancel(&mut self, h: TimerHandle) -> Result<(), TimeError> {
        self.check(h)?;
        self.slots[h.slot as usize].armed = false;
        self.remove_ordered(h.slot);
        Ok(())
    }

    /// Whether the handle names an armed timer.
    pub fn is_armed(&self, h: TimerHandle) -> bool {
        self.check(h).is_ok()
    }

    /// Pops the earliest timer if its deadline is at or before `now`. Periodic timers are re-armed
    /// at `deadline + (missed + 1) · period` (never `now + period`, which would drift). Call in a
    /// loop until `Ok(None)`; each timer is returned at most once per `now`, so the loop runs at
    /// most `N` times.
    pub fn pop_expired(&mut self, now: Instant) -> Result<Option<Expiry>, TimeError> {
        if self.len == 0 {
            return Ok(None);
        }
        let slot = self.order[0];
        let s = self.slots[slot as usize];
        if s.deadline > now.0 {
            return Ok(None);
        }
        let handle = TimerHandle {
            slot,
            generation: s.generation,
        };
        self.remove_ordered(slot);
        if s.period == 0 {
            self.slots[slot as usize].armed = false;
            return Ok(Some(Expiry {
                handle,
                tag: s.tag,
                deadline: Instant(s.deadline),
                missed: 0,
                next: None,
            }));
        }
        let missed = (now.0 - s.deadline) / s.period;
        let next = (missed + 1)
            .checked_mul(s.period)
            .and_then(|step| s.deadline.checked_add(step));
        let Some(next) = next else {
            // The schedule ran off the clock: disarm rather than fire forever at u64::MAX.
            self.slots[slot as usize].armed = false;
            return Err(TimeError::DeadlineOverflow {
                deadline_ns: s.deadline,
                period_ns: s.period,
            });
        };
        let sl = &mut self.slots[slot as usize];
        sl.deadline = next;
        sl.seq = self.next_seq;
        self.next_seq += 1;
        self.insert_ordered(slot);
        Ok(Some(Expiry {
            handle,
            tag: s.tag,
            deadline: Instant(s.deadline),
            missed,
            next: Some(Instant(next)),
        }))
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::stress::SplitMix64;

    const YEAR_NS: u64 = 365 * 24 * 3600 * NANOS_PER_SEC;

    fn exact_ns(ticks: u64, hz: u64) -> u128 {
        ticks as u128 * NANOS_PER_SEC as u128 / hz as u128
    }

    #[test]
    fn conversion_is_exact_to_a_nanosecond_at_extremes() {
        for hz in [
            MIN_TSC_HZ,
            3_000_000_000,
            2_345_678_901,
            4_999_999_999,
            MAX_TSC_HZ,
        ] {
            let c = TscClock::from_hz(hz).unwrap();
            assert_eq!(c.ticks_to_ns(hz), NANOS_PER_SEC, "{hz} Hz: one second");
            // 100 years of uptime, or as much as 64-bit ticks hold at this rate.
            let ticks = (100 * YEAR_NS) as u128 * hz as u128 / NANOS_PER_SEC as u128;
            let ticks = u64::try_from(ticks).unwrap_or(u64::MAX);
            let want = exact_ns(ticks, hz);
            let got = c.ticks_to_ns(ticks) as u128;
            assert!(got - want <= 1, "{hz} Hz, {ticks} ticks: {got} vs {want}");
            if hz <= 5_000_000_000 {
                assert!(got >= 100 * YEAR_NS as u128, "{hz} Hz must cover 100 years");
            }
            let mut rng = SplitMix64::new(hz);
            for _ in 0..10_000 {
                let t = rng.next_u64() >> rng.below(64);
                let want = exact_ns(t, hz).min(u64::MAX as u128);
                let got = c.ticks_to_ns(t) as u128;
                let tolerance = 1 + (want >> 62);
                assert!(
                    got >= want && got - want <= tolerance,
                    "{hz} Hz, {t} ticks: {got} vs {want}"
                );
                let ns = rng.next_u64() >> rng.below(64);
                let ticks = c.ns_to_ticks(ns);
                let exact_ticks = ns as u128 * hz as u128 / NANOS_PER_SEC as u128;
                let ticks = ticks as u128;
                assert!(ticks >= exact_ticks.min(u64::MAX as u128));
                assert!(ticks - exact_ticks.min(u64::MAX as u128) <= 1 + (exact_ticks >> 62));
                if ticks < u64::MAX as u128 {
                    let back = c.ticks_to_ns(ticks as u64) as i128;
                    // Flooring to whole ticks loses under one tick; rounding up adds a few ns.
                    let tick_ns = NANOS_PER_SEC.div_ceil(hz) as i128;
                    let diff = back - ns as i128;
                    assert!(-tick_ns <= diff && diff <= tick_ns + 8, "{ns} -> {back}");
                }
            }
        }
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let c = TscClock::from_hz(MIN_TSC_HZ).unwrap();
        assert_eq!(c.ticks_to_ns(u64::MAX), u64::MAX);
        let c = TscClock::from_hz(MAX_TSC_HZ).unwrap();
        assert_eq!(c.ns_to_ticks(u64::MAX), u64::MAX);
    }

    #[test]
    fn calibration_and_its_errors() {
        let c = TscClock::calibrate(29_999_999, 10_000_000).unwrap();
        assert_eq!(c.hz(), 2_999_999_900);
        assert_eq!(
            TscClock::calibrate(0, 5),
            Err(TimeError::EmptyCalibration { ticks: 0, nanos: 5 })
        );
        assert_eq!(
            TscClock::from_hz(999_999),
            Err(TimeError::FrequencyOutOfRange { hz: 999_999 })
        );
        assert!(matches!(
            TscClock::calibrate(u64::MAX, 1),
            Err(TimeError::FrequencyOutOfRange { .. })
        ));
    }

    #[test]
    fn monotonic_clock_never_goes_back() {
        let mut m = MonotonicClock::new(TscClock::from_hz(2_000_000_000).unwrap(), 1000);
        assert_eq!(m.observe(1000), Instant(0));
        assert_eq!(m.observe(3000), Instant(1000));
        assert_eq!(m.observe(2000), Instant(1000), "backwards TSC clamped");
        assert_eq!(m.observe(0), Instant(1000), "TSC below boot clamped");
        assert_eq!(m.observe(5000), Instant(2000));
        let d = m.tsc_deadline(Instant(2000));
        assert!(d > 5000 && m.tsc().ticks_to_ns(d - 1000) >= 2000);
    }

    #[test]
    fn oneshot_order_ties_and_cancel() {
        let mut q = TimerQueue::<4>::new();
        let a = q.arm_oneshot(Instant(300), 1).unwrap();
        let _b = q.arm_oneshot(Instant(100), 2).unwrap();
        let _c = q.arm_oneshot(Instant(300), 3).unwrap();
        let d = q.arm_oneshot(Instant(200), 4).unwrap();
        assert_eq!(
            q.arm_oneshot(Instant(1), 5),
            Err(TimeError::QueueFull { capacity: 4 })
        );
        assert_eq!(q.next_deadline(), Some(Instant(100)));
        q.cancel(d).unwrap();
        assert_eq!(
            q.cancel(d),
            Err(TimeError::StaleHandle {
                slot: 3,
                generation: 1
            })
        );
        let mut tags = std::vec::Vec::new();
        while let Some(e) = q.pop_expired(Instant(1000)).unwrap() {
            assert_eq!(e.next, None);
            tags.push(e.tag);
        }
        // Equal deadlines fire in arming order.
        assert_eq!(tags, [2, 1, 3]);
        assert!(q.is_empty());
        assert!(!q.is_armed(a));
        // A reused slot does not revive the old handle.
        let e = q.arm_oneshot(Instant(5), 9).unwrap();
        assert!(q.is_armed(e) && !q.is_armed(a));
    }

    #[test]
    fn nothing_expires_early() {
        let mut q = TimerQueue::<2>::new();
        q.arm_oneshot(Instant(100), 0).unwrap();
        assert_eq!(q.pop_expired(Instant(99)), Ok(None));
        assert!(q.pop_expired(Instant(100)).unwrap().is_some());
    }

    #[test]
    fn periodic_rearms_without_drift_and_counts_misses() {
        let mut q = TimerQueue::<2>::new();
        let h = q.arm_periodic(Instant(1000), 250, 7).unwrap();
        // Served late by 30 ns: next stays on the grid, not now + period.
        let e = q.pop_expired(Instant(1030)).unwrap().unwrap();
        assert_eq!(
            (e.deadline, e.missed, e.next),
            (Instant(1000), 0, Some(Instant(1250)))
        );
        assert_eq!(q.pop_expired(Instant(1030)), Ok(None), "fires once per now");
        // Served at 1980: deadlines 1250 fires, 1500 and 1750 were missed, next 2000.
        let e = q.pop_expired(Instant(1980)).unwrap().unwrap();
        assert_eq!(
            (e.deadline, e.missed, e.next),
            (Instant(1250), 2, Some(Instant(2000)))
        );
        assert_eq!(q.next_deadline(), Some(Instant(2000)));
        assert!(q.is_armed(h));
        // Exactly on a later deadline: that deadline counts as missed, next is one period on.
        let e = q.pop_expired(Instant(2500)).unwrap().unwrap();
        assert_eq!((e.missed, e.next), (2, Some(Instant(2750))));
        // After 10^6 periods the schedule is still exactly on the grid.
        let mut now = 2750;
        for _ in 0..1_000_000 {
            let e = q.pop_expired(Instant(now)).unwrap().unwrap();
            assert_eq!(e.missed, 0);
            now = e.next.unwrap().0;
        }
        assert_eq!(now, 2750 + 1_000_000 * 250);
        q.cancel(h).unwrap();
        assert_eq!(q.arm_periodic(Instant(0), 0, 0), Err(TimeError::ZeroPeriod));
    }

    #[test]
    fn periodic_overflow_disarms_with_an_error() {
        let mut q = TimerQueue::<1>::new();
        let h = q.arm_periodic(Instant(u64::MAX - 10), 100, 0).unwrap();
        assert_eq!(
            q.pop_expired(Instant(u64::MAX)),
            Err(TimeError::DeadlineOverflow {
                deadline_ns: u64::MAX - 10,
                period_ns: 100
            })
        );
        assert!(!q.is_armed(h) && q.is_empty());
    }

    /// Random arm/cancel/expire against a brute-force model of (deadline, seq) order.
    #[test]
    fn random_queue_matches_model() {
        let mut rng = SplitMix64::new(11);
        let mut q = TimerQueue::<16>::new();
        let mut model: std::vec::Vec<(u64, u64, TimerHandle)> = std::vec::Vec::new();
        let mut seq = 0u64;
        let mut now = 0u64;
        for _ in 0..20_000 {
            match rng.below(3) {
                0 if model.len() < 16 => {
                    let d = now + rng.below(1000);
                    let h = q.arm_oneshot(Instant(d), 0).unwrap();
                    model.push((d, seq, h));
                    seq += 1;
                }
                1 if !model.is_empty() => {
                    let (_, _, h) = model.swap_remove(rng.below(model.len() as u64) as usize);
                    q.cancel(h).unwrap();
                }
                _ => {
                    now += rng.below(100);
                    model.sort_by_key(|m| (m.0, m.1));
                    while let Some(e) = q.pop_expired(Instant(now)).unwrap() {
                        let (d, _, h) = model.remove(0);
                        assert_eq!((e.deadline.0, e.handle), (d, h));
                    }
                    assert!(model.first().is_none_or(|m| m.0 > now));
                }
            }
            assert_eq!(q.len(), model.len());
        }
    }
}
