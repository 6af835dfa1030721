//! Kernel time: TSC ticks ↔ nanoseconds with a calibrated frequency, a monotonic clock that
//! never runs backwards, and one-shot / periodic timer bookkeeping in a fixed-capacity queue.
//!
//! Conversion is `ns = (ticks · mult) >> shift` with a 128-bit product, so it cannot overflow for
//! any tick count whose result fits in 64 bits of nanoseconds (584 years); `mult` keeps at least
//! 60 significant bits, so the conversion error is below 1 ns per 2⁶⁰ ns (≈ 36 years).
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

/// A fixed-point linear map `y = (x · mult) >> shift` with the largest `shift` (≤ 64) that keeps
/// `mult` below 2⁶³, i.e. the most precision a 128-bit product allows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Scale {
    mult: u64,
    shift: u32,
}

impl Scale {
    /// Scale for `y = x · num / den`.
    fn new(num: u64, den: u64) -> Self {
        let mut shift = 64u32;
        loop {
            let mult = ((num as u128) << shift) / den as u128;
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
