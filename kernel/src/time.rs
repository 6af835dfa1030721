//! Time: a monotonic nanosecond clock from the calibrated TSC, and one-shot and periodic timers
//! driven by the local APIC timer (TSC-deadline mode when the CPU has it, else one-shot counts
//! from the calibrated APIC timer frequency). Timer bookkeeping is `echos_kpolicy::time`.

use core::fmt;
use spin::{Mutex, Once};

use echos_kpolicy::time::{Instant, TimeError, TimerHandle, TimerQueue, TscClock};

use crate::arch;

/// Vector of the timer interrupt: the highest priority class below the spurious vector, so the
/// clock preempts every other interrupt.
pub const TIMER_VECTOR: u8 = 0xe0;
/// Tag of the scheduler's timer: its expiry asks the preemption hook to reschedule.
pub const SCHED_TIMER_TAG: u32 = 0x5c4e_d000;
static SCHED_DUE: core::sync::atomic::AtomicBool = core::sync::atomic::AtomicBool::new(false);

/// Whether the scheduler's timer expired since the last call (and clears it).
pub fn take_sched_due() -> bool {
    SCHED_DUE.swap(false, core::sync::atomic::Ordering::AcqRel)
}

/// Armed timers at most.
pub const MAX_TIMERS: usize = 32;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimerHardware {
    /// IA32_TSC_DEADLINE: the interrupt fires when the TSC reaches the written value.
    TscDeadline,
    /// APIC one-shot count at a calibrated frequency (Hz).
    OneShot { apic_hz: u64 },
}

#[derive(Debug, Clone, Copy)]
pub struct TimeBase {
    pub clock: TscClock,
    pub boot_tsc: u64,
    pub source: arch::tsc::CalibrationSource,
    pub hardware: TimerHardware,
}

#[derive(Debug, Clone, Copy)]
pub enum TimeInitError {
    Calibration(arch::tsc::CalibrationError),
    Frequency(TimeError),
    /// The APIC timer did not count during calibration.
    ApicTimerStopped,
}

impl fmt::Display for TimeInitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Calibration(e) => write!(f, "TSC calibration failed: {e:?}"),
            Self::Frequency(e) => write!(f, "TSC frequency unusable: {e}"),
            Self::ApicTimerStopped => write!(f, "the local APIC timer did not count"),
        }
    }
}

static BASE: Once<TimeBase> = Once::new();

/// Calibrates the TSC (and the APIC timer when there is no TSC-deadline mode) and installs the
/// timer interrupt. `boot_tsc` is the TSC at the first instruction we control.
pub fn init(boot_tsc: u64, tsc_deadline: bool) -> Result<&'static TimeBase, TimeInitError> {
    let (hz, source) = arch::tsc::calibrate().map_err(TimeInitError::Calibration)?;
    let clock = TscClock::from_hz(hz).map_err(TimeInitError::Frequency)?;
    let hardware = if tsc_deadline {
        arch::apic::timer_tsc_deadline_mode(TIMER_VECTOR);
        TimerHardware::TscDeadline
    } else {
        // 1 ms against the TSC; the APIC timer then runs in one-shot mode.
        let apic_hz = arch::apic::calibrate_timer(hz, hz / 1000);
        if apic_hz == 0 {
            return Err(TimeInitError::ApicTimerStopped);
        }
        arch::apic::timer_one_shot_mode(TIMER_VECTOR);
        TimerHardware::OneShot { apic_hz }
    };
    arch::traps::set_handler(TIMER_VECTOR, timer_interrupt);
    Ok(BASE.call_once(|| TimeBase {
        clock,
        boot_tsc,
        source,
        hardware,
    }))
}

/// Nanoseconds since boot. On one CPU with an invariant TSC this never goes backwards.
pub fn now() -> Instant {
    match BASE.get() {
        Some(b) => Instant(tsc_to_instant(b, arch::tsc::read()).0),
        None => Instant(0),
    }
}

fn tsc_to_instant(b: &TimeBase, tsc: u64) -> Instant {
    Instant(b.clock.ticks_to_ns(tsc.saturating_sub(b.boot_tsc)))
}

/// Converts a TSC reading to the clock's instants.
pub fn instant_of_tsc(tsc: u64) -> Instant {
    BASE.get().map_or(Instant(0), |b| tsc_to_instant(b, tsc))
}

/// Interrupt-to-handler figures over all timer expiries since the last reset, in ns: how late the
/// timer handler ran relative to the deadline it was armed for.
#[derive(Debug, Clone, Copy, Default)]
pub struct LatencyStats {
    pub count: u64,
    pub max_ns: u64,
    pub min_ns: u64,
    pub sum_ns: u64,
    /// Expiries whose handler ran before the deadline (a miscalibrated APIC timer).
    pub early: u64,
}

/// A record of a timer expiry, for the tests.
#[derive(Debug, Clone, Copy, Default)]
pub struct Fired {
    pub tag: u32,
    pub deadline: u64,
    pub handled_at: u64,
    pub missed: u64,
}

const LOG_LEN: usize = 64;

struct TimerService {
    queue: TimerQueue<MAX_TIMERS>,
    latency: LatencyStats,
    log: [Fired; LOG_LEN],
    logged: usize,
    interrupts: u64,
}

static TIMERS: Mutex<TimerService> = Mutex::new(TimerService {
    queue: TimerQueue::new(),
    latency: LatencyStats {
        count: 0,
        max_ns: 0,
        min_ns: u64::MAX,
        sum_ns: 0,
        early: 0,
    },
    log: [Fired {
        tag: 0,
        deadline: 0,
        handled_at: 0,
        missed: 0,
    }; LOG_LEN],
    logged: 0,
    interrupts: 0,
});

fn with_timers<R>(f: impl FnOnce(&mut TimerService) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut TIMERS.lock()))
}

/// Programs the hardware for the earliest armed deadline (or stops it).
fn program(svc: &TimerService) {
    let Some(b) = BASE.get() else { return };
    match (svc.queue.next_deadline(), b.hardware) {
        (None, TimerHardware::TscDeadline) => arch::apic::set_tsc_deadline(0),
        (None, TimerHardware::OneShot { .. }) => arch::apic::set_timer_count(0),
        (Some(at), TimerHardware::TscDeadline) => {
            // A deadline already past still fires at once (the MSR value is in the past).
            let tsc = b.boot_tsc.saturating_add(b.clock.ns_to_ticks(at.0)).max(1);
            arch::apic::set_tsc_deadline(tsc);
        }
        (Some(at), TimerHardware::OneShot { apic_hz }) => {
            let delta_ns = at.0.saturating_sub(now().0);
            let ticks = (delta_ns as u128 * apic_hz as u128).div_ceil(1_000_000_000);
            // A long wait is split: the handler finds nothing expired and re-arms.
            arch::apic::set_timer_count(ticks.clamp(1, u32::MAX as u128) as u32);
        }
    }
}

fn timer_interrupt(_frame: &mut arch::traps::TrapFrame) {
    let entry =
        instant_of_tsc(arch::traps::LAST_ENTRY_TSC.load(core::sync::atomic::Ordering::Relaxed));
    let mut svc = TIMERS.lock();
    svc.interrupts += 1;
    let now = now();
    while let Ok(Some(e)) = svc.queue.pop_expired(now) {
        if e.tag == SCHED_TIMER_TAG {
            SCHED_DUE.store(true, core::sync::atomic::Ordering::Release);
        }
        let lat = &mut svc.latency;
        if entry.0 >= e.deadline.0 {
            let late = entry.0 - e.deadline.0;
            lat.count += 1;
            lat.max_ns = lat.max_ns.max(late);
            lat.min_ns = lat.min_ns.min(late);
            lat.sum_ns += late;
        } else {
            lat.early += 1;
        }
        let i = svc.logged % LOG_LEN;
        svc.log[i] = Fired {
            tag: e.tag,
            deadline: e.deadline.0,
            handled_at: entry.0,
            missed: e.missed,
        };
        svc.logged += 1;
    }
    program(&svc);
}

pub fn arm_oneshot(deadline: Instant, tag: u32) -> Result<TimerHandle, TimeError> {
    with_timers(|svc| {
        let h = svc.queue.arm_oneshot(deadline, tag)?;
        program(svc);
        Ok(h)
    })
}

pub fn arm_periodic(first: Instant, period_ns: u64, tag: u32) -> Result<TimerHandle, TimeError> {
    with_timers(|svc| {
        let h = svc.queue.arm_periodic(first, period_ns, tag)?;
        program(svc);
        Ok(h)
    })
}

pub fn cancel(h: TimerHandle) -> Result<(), TimeError> {
    with_timers(|svc| {
        let r = svc.queue.cancel(h);
        program(svc);
        r
    })
}

pub fn is_armed(h: TimerHandle) -> bool {
    with_timers(|svc| svc.queue.is_armed(h))
}

pub fn armed_count() -> usize {
    with_timers(|svc| svc.queue.len())
}

/// Clears the expiry log and latency figures.
pub fn reset_records() {
    with_timers(|svc| {
        svc.latency = LatencyStats {
            min_ns: u64::MAX,
            ..LatencyStats::default()
        };
        svc.logged = 0;
    })
}

pub fn latency() -> LatencyStats {
    with_timers(|svc| svc.latency)
}

pub fn timer_interrupts() -> u64 {
    with_timers(|svc| svc.interrupts)
}

/// Expiries recorded since the last reset (the most recent `LOG_LEN`), oldest first.
pub fn fired(out: &mut [Fired; LOG_LEN]) -> usize {
    with_timers(|svc| {
        let n = svc.logged.min(LOG_LEN);
        let first = svc.logged - n;
        for (k, slot) in out.iter_mut().take(n).enumerate() {
            *slot = svc.log[(first + k) % LOG_LEN];
        }
        n
    })
}

pub const FIRED_LOG_LEN: usize = LOG_LEN;

/// Spins with interrupts enabled until `done()` or until `timeout_ns` passed; true if done.
pub fn spin_until(timeout_ns: u64, mut done: impl FnMut() -> bool) -> bool {
    let limit = now().saturating_add(timeout_ns);
    x86_64::instructions::interrupts::enable();
    loop {
        if done() {
            return true;
        }
        if now() > limit {
            return done();
        }
        core::hint::spin_loop();
    }
}
