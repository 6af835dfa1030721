//! Time tests: the calibrated clock, one-shot and periodic timers through the APIC timer, and the
//! interrupt-to-handler latency over 10,000 timer interrupts.

use alloc::string::String;

use echos_kpolicy::stress::SplitMix64;
use echos_kpolicy::time::{Instant, TimeError};

use super::{Kernel, FAIL_AFTER_NS};
use crate::time::{self, Fired, FIRED_LOG_LEN, MAX_TIMERS};
use crate::{arch, ensure, kernel_test, kprintln};

fn fired_now() -> ([Fired; FIRED_LOG_LEN], usize) {
    let mut log = [Fired::default(); FIRED_LOG_LEN];
    let n = time::fired(&mut log);
    (log, n)
}

fn tsc_calibration_is_repeatable(k: &mut Kernel) -> Result<(), String> {
    let (hz, _) =
        arch::tsc::calibrate().map_err(|e| alloc::format!("recalibration failed: {e:?}"))?;
    let boot_hz = k.time.clock.hz();
    let diff = hz.abs_diff(boot_hz);
    // 0.5 %: the PIT window is 10 ms, so a sane clock agrees far better than this.
    ensure!(
        diff * 200 <= boot_hz,
        "recalibrated {hz} Hz vs {boot_hz} Hz at boot"
    );
    Ok(())
}
kernel_test!(tsc_calibration_is_repeatable);

fn monotonic_clock_never_goes_back_and_advances(_: &mut Kernel) -> Result<(), String> {
    let start = time::now();
    let mut last = start;
    for i in 0..10_000 {
        let t = time::now();
        ensure!(t >= last, "reading {i}: {} ns after {} ns", t.0, last.0);
        last = t;
    }
    ensure!(
        last > start,
        "the clock did not advance over 10,000 readings"
    );
    Ok(())
}
kernel_test!(monotonic_clock_never_goes_back_and_advances);

fn clock_agrees_with_tsc_ticks(k: &mut Kernel) -> Result<(), String> {
    let c = k.time.clock;
    for ns in [1u64, 1_000, 1_000_000_000, 3_600 * 1_000_000_000] {
        let back = c.ticks_to_ns(c.ns_to_ticks(ns));
        // One tick of rounding at most.
        let tick_ns = 1_000_000_000 / c.hz() + 1;
        ensure!(
            back.abs_diff(ns) <= tick_ns,
            "{ns} ns -> ticks -> {back} ns"
        );
    }
    Ok(())
}
kernel_test!(clock_agrees_with_tsc_ticks);

fn oneshot_timer_fires_once_not_before_deadline(_: &mut Kernel) -> Result<(), String> {
    time::reset_records();
    let deadline = time::now().saturating_add(50_000);
    let h = time::arm_oneshot(deadline, 7).map_err(|e| alloc::format!("{e}"))?;
    let done = time::spin_until(FAIL_AFTER_NS, || fired_now().1 >= 1);
    ensure!(done, "one-shot timer did not fire within 2 s");
    // Wait as long again: it must not fire twice.
    time::spin_until(100_000, || false);
    let (log, n) = fired_now();
    ensure!(n == 1, "fired {n} times");
    ensure!(
        log[0].tag == 7 && log[0].deadline == deadline.0,
        "fired {:?}",
        log[0]
    );
    ensure!(
        log[0].handled_at >= deadline.0,
        "handled at {} ns, before the deadline {} ns",
        log[0].handled_at,
        deadline.0
    );
    ensure!(!time::is_armed(h), "a fired one-shot timer is still armed");
    Ok(())
}
kernel_test!(oneshot_timer_fires_once_not_before_deadline);

fn periodic_timer_keeps_its_schedule_without_drift(_: &mut Kernel) -> Result<(), String> {
    time::reset_records();
    let period = 100_000;
    let first = time::now().saturating_add(period);
    let h = time::arm_periodic(first, period, 9).map_err(|e| alloc::format!("{e}"))?;
    let done = time::spin_until(FAIL_AFTER_NS, || fired_now().1 >= 20);
    time::cancel(h).map_err(|e| alloc::format!("cancel: {e}"))?;
    ensure!(done, "only {} expiries within 2 s", fired_now().1);
    let (log, n) = fired_now();
    let mut expected = first.0;
    for f in &log[..n.min(20)] {
        ensure!(f.tag == 9, "unexpected tag {}", f.tag);
        ensure!(
            f.deadline == expected,
            "deadline {} ns, expected {expected} ns",
            f.deadline
        );
        ensure!(f.handled_at >= f.deadline, "handled before its deadline");
        // Missed periods (a late handler) are skipped, never accumulated as drift.
        expected += (f.missed + 1) * period;
    }
    let after_cancel = fired_now().1;
    time::spin_until(300_000, || false);
    ensure!(
        fired_now().1 == after_cancel,
        "the cancelled periodic timer fired again"
    );
    Ok(())
}
kernel_test!(periodic_timer_keeps_its_schedule_without_drift);

fn cancelled_timer_never_fires_and_double_cancel_is_refused(_: &mut Kernel) -> Result<(), String> {
    time::reset_records();
    let h = time::arm_oneshot(time::now().saturating_add(50_000), 3)
        .map_err(|e| alloc::format!("{e}"))?;
    time::cancel(h).map_err(|e| alloc::format!("{e}"))?;
    time::spin_until(200_000, || false);
    ensure!(fired_now().1 == 0, "a cancelled timer fired");
    let again = time::cancel(h);
    ensure!(
        matches!(again, Err(TimeError::StaleHandle { .. })),
        "second cancel gave {again:?}"
    );
    Ok(())
}
kernel_test!(cancelled_timer_never_fires_and_double_cancel_is_refused);

fn timers_fire_in_deadline_order(_: &mut Kernel) -> Result<(), String> {
    time::reset_records();
    let base = time::now().saturating_add(100_000);
    // Armed out of order, all at once (a stall between two arms must not let the earlier ones
    // fire first); tags are the expected firing order.
    x86_64::instructions::interrupts::without_interrupts(|| {
        for (offset, tag) in [
            (40_000u64, 4u32),
            (10_000, 1),
            (50_000, 5),
            (20_000, 2),
            (30_000, 3),
        ] {
            time::arm_oneshot(base.saturating_add(offset), tag)
                .map_err(|e| alloc::format!("{e}"))?;
        }
        Ok::<(), String>(())
    })?;
    let done = time::spin_until(FAIL_AFTER_NS, || fired_now().1 >= 5);
    ensure!(done, "only {} of 5 timers fired", fired_now().1);
    let (log, _) = fired_now();
    let tags = [0, 1, 2, 3, 4].map(|i| log[i].tag);
    ensure!(tags == [1, 2, 3, 4, 5], "fired in order {tags:?}");
    Ok(())
}
kernel_test!(timers_fire_in_deadline_order);

fn full_timer_queue_is_an_error_not_a_hang(_: &mut Kernel) -> Result<(), String> {
    let far = time::now().saturating_add(3_600_000_000_000);
    let mut handles = alloc::vec::Vec::new();
    let start = time::armed_count();
    for i in 0..(MAX_TIMERS - start) {
        handles
            .push(time::arm_oneshot(far, i as u32).map_err(|e| alloc::format!("arming {i}: {e}"))?);
    }
    let extra = time::arm_oneshot(far, 999);
    for h in handles {
        time::cancel(h).map_err(|e| alloc::format!("{e}"))?;
    }
    ensure!(
        matches!(extra, Err(TimeError::QueueFull { .. })),
        "arming past capacity gave {extra:?}"
    );
    ensure!(
        time::armed_count() == start,
        "{} timers left armed",
        time::armed_count()
    );
    Ok(())
}
kernel_test!(full_timer_queue_is_an_error_not_a_hang);

pub const LATENCY_INTERRUPTS: u64 = 10_000;

/// 10,000 one-shot timer interrupts at pseudo-random 5–15 µs intervals; returns the figures.
fn measure_timer_latency() -> Result<time::LatencyStats, String> {
    time::reset_records();
    let mut rng = SplitMix64::new(0x7e57_7173_e400_0001);
    for i in 0..LATENCY_INTERRUPTS {
        let before = time::latency();
        let at: Instant = time::now().saturating_add(5_000 + rng.below(10_000));
        time::arm_oneshot(at, 1).map_err(|e| alloc::format!("arming {i}: {e}"))?;
        let done = time::spin_until(FAIL_AFTER_NS, || {
            let l = time::latency();
            l.count + l.early > before.count + before.early
        });
        ensure!(done, "timer interrupt {i} did not arrive within 2 s");
    }
    Ok(time::latency())
}

fn timer_interrupt_latency_over_10k_interrupts(k: &mut Kernel) -> Result<(), String> {
    let l = measure_timer_latency()?;
    print_latency(&l);
    ensure!(
        l.count + l.early == LATENCY_INTERRUPTS,
        "{} interrupts handled",
        l.count + l.early
    );
    ensure!(
        l.early == 0,
        "{} handlers ran before their deadline",
        l.early
    );
    // A sanity bound, far above what we see: a handler 100 µs late means the path is broken.
    // Only in virtual time: under wall time the host may stall the VM for milliseconds.
    if crate::ktests::virtual_time(k) {
        ensure!(l.max_ns < 100_000, "worst-case latency {} ns", l.max_ns);
    }
    Ok(())
}
kernel_test!(timer_interrupt_latency_over_10k_interrupts);

fn print_latency(l: &time::LatencyStats) {
    kprintln!("metric timer_irq_latency_max_ns {} ns", l.max_ns);
    kprintln!(
        "metric timer_irq_latency_min_ns {} ns",
        if l.count == 0 { 0 } else { l.min_ns }
    );
    kprintln!(
        "metric timer_irq_latency_mean_ns {} ns",
        l.sum_ns.checked_div(l.count).unwrap_or(0)
    );
    kprintln!("metric timer_irq_count {} interrupts", l.count + l.early);
}

/// The latency figures for the default (non-test) boot.
pub fn timer_latency_report(_: &mut Kernel) -> Result<(), String> {
    let l = measure_timer_latency()?;
    print_latency(&l);
    Ok(())
}
