//! CLOCK_MONOTONIC in nanoseconds and absolute sleeps on it: the loop's only clock. Releases
//! are absolute times (`clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME)`), so a late wake-up
//! never shifts the next period.

use rustix::thread::ClockId as SleepClock;
use rustix::time::{clock_gettime, ClockId, Timespec};

/// Nanoseconds on CLOCK_MONOTONIC (since boot; fits u64 for 584 years).
#[inline]
pub fn now_ns() -> u64 {
    let t = clock_gettime(ClockId::Monotonic);
    (t.tv_sec as u64)
        .wrapping_mul(1_000_000_000)
        .wrapping_add(t.tv_nsec as u64)
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline_ns`. Returns early (false) when a signal
/// interrupted the sleep, so the caller can look at its stop flag; true when the time came.
#[inline]
pub fn sleep_until(deadline_ns: u64) -> bool {
    let t = Timespec {
        tv_sec: (deadline_ns / 1_000_000_000) as i64,
        tv_nsec: (deadline_ns % 1_000_000_000) as i64,
    };
    match rustix::thread::clock_nanosleep_absolute(SleepClock::Monotonic, &t) {
        Ok(()) => true,
        // EINTR: a signal. Any other error (EINVAL cannot happen with a normalised timespec)
        // is treated the same way: the caller re-checks the time.
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_sleep_wakes_at_or_after_the_deadline() {
        let start = now_ns();
        let target = start + 2_000_000;
        while !sleep_until(target) {}
        let woke = now_ns();
        assert!(woke >= target, "woke {} ns early", target - woke);
        // A deadline in the past returns at once.
        let t0 = now_ns();
        assert!(sleep_until(t0 - 1_000));
        assert!(now_ns() - t0 < 50_000_000);
    }
}
