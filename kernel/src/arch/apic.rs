//! The local APIC: x2APIC (MSRs) when the CPU has it, else xAPIC (MMIO at the base the
//! IA32_APIC_BASE MSR names). Provides EOI, self-IPIs, self-NMIs and the timer in TSC-deadline or
//! one-shot mode.

use core::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use x86_64::registers::model_specific::Msr;

const IA32_APIC_BASE: u32 = 0x1b;
const IA32_TSC_DEADLINE: u32 = 0x6e0;

const REG_ID: u32 = 0x20;
const REG_TPR: u32 = 0x80;
const REG_EOI: u32 = 0xb0;
const REG_SVR: u32 = 0xf0;
const REG_ISR0: u32 = 0x100;
const REG_ICR_LOW: u32 = 0x300;
const REG_ICR_HIGH: u32 = 0x310;
const REG_LVT_TIMER: u32 = 0x320;
const REG_LVT_LINT0: u32 = 0x350;
const REG_LVT_LINT1: u32 = 0x360;
const REG_LVT_ERROR: u32 = 0x370;
const REG_TIMER_INITIAL: u32 = 0x380;
const REG_TIMER_CURRENT: u32 = 0x390;
const REG_TIMER_DIVIDE: u32 = 0x3e0;

const LVT_MASKED: u32 = 1 << 16;
const TIMER_MODE_ONE_SHOT: u32 = 0;
const TIMER_MODE_TSC_DEADLINE: u32 = 0b10 << 17;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    XApic,
    X2Apic,
}

static MODE: AtomicU8 = AtomicU8::new(0);
static MMIO_BASE: AtomicU64 = AtomicU64::new(0);

pub fn mode() -> Mode {
    if MODE.load(Ordering::Relaxed) == 2 {
        Mode::X2Apic
    } else {
        Mode::XApic
    }
}

fn read(reg: u32) -> u32 {
    match mode() {
        // SAFETY: x2APIC registers are MSRs 0x800 + reg/16; reading them has no side effects.
        Mode::X2Apic => unsafe { Msr::new(0x800 + (reg >> 4)).read() as u32 },
        Mode::XApic => {
            let addr = MMIO_BASE.load(Ordering::Relaxed) + reg as u64;
            // SAFETY: the APIC page is identity-mapped; registers are 32-bit, 16-byte aligned.
            unsafe { core::ptr::read_volatile(addr as *const u32) }
        }
    }
}

fn write(reg: u32, value: u32) {
    match mode() {
        // SAFETY: as in `read`; writes are the documented way to program the APIC.
        Mode::X2Apic => unsafe { Msr::new(0x800 + (reg >> 4)).write(value as u64) },
        Mode::XApic => {
            let addr = MMIO_BASE.load(Ordering::Relaxed) + reg as u64;
            // SAFETY: as in `read`.
            unsafe { core::ptr::write_volatile(addr as *mut u32, value) }
        }
    }
}

/// Enables the local APIC (x2APIC if `use_x2apic`), spurious vector 0xff, everything masked,
/// task priority 0 (accept all classes).
pub fn init(use_x2apic: bool) -> Mode {
    let mut base = Msr::new(IA32_APIC_BASE);
    // SAFETY: IA32_APIC_BASE exists on every CPU with an APIC (CPUID.1:EDX.APIC, checked by the
    // caller); setting EN (bit 11) and EXTD (bit 10) is the documented enabling sequence.
    unsafe {
        let value = base.read();
        MMIO_BASE.store(value & 0x000f_ffff_ffff_f000, Ordering::Relaxed);
        let mut v = value | (1 << 11);
        if use_x2apic {
            v |= 1 << 10;
        }
        base.write(v);
    }
    MODE.store(if use_x2apic { 2 } else { 1 }, Ordering::Relaxed);
    write(REG_TPR, 0);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_LVT_LINT0, LVT_MASKED);
    write(REG_LVT_LINT1, LVT_MASKED);
    write(REG_LVT_ERROR, LVT_MASKED);
    write(REG_SVR, 0x100 | super::traps::SPURIOUS_VECTOR as u32);
    mode()
}

pub fn id() -> u32 {
    match mode() {
        Mode::X2Apic => read(REG_ID),
        Mode::XApic => read(REG_ID) >> 24,
    }
}

/// Sets the task priority: interrupts of priority class (vector >> 4) at or below `class` are
/// held pending until it is lowered. How a critical section masks only the less urgent sources.
pub fn set_task_priority(class: u8) {
    write(REG_TPR, u32::from(class & 0xf) << 4);
}

pub fn eoi() {
    write(REG_EOI, 0);
}

/// Whether `vector` is in service (its ISR bit set).
pub fn in_service(vector: u8) -> bool {
    let reg = REG_ISR0 + 0x10 * (vector as u32 / 32);
    read(reg) & (1 << (vector % 32)) != 0
}

fn write_icr(dest: u32, low: u32) {
    match mode() {
        // SAFETY: ICR is a single 64-bit MSR in x2APIC mode.
        Mode::X2Apic => unsafe { Msr::new(0x830).write(((dest as u64) << 32) | low as u64) },
        Mode::XApic => {
            write(REG_ICR_HIGH, dest << 24);
            write(REG_ICR_LOW, low);
        }
    }
}

/// Sends this CPU a fixed interrupt of `vector`.
pub fn send_self_ipi(vector: u8) {
    // fixed delivery, level assert, shorthand "self"
    write_icr(0, (1 << 14) | (0b01 << 18) | vector as u32);
}

/// Sends this CPU an NMI (addressed to our own APIC id).
pub fn send_self_nmi() {
    write_icr(id(), (1 << 14) | (0b100 << 8));
}

/// Timer in TSC-deadline mode: it fires when the TSC reaches the value written to the deadline
/// MSR.
pub fn timer_tsc_deadline_mode(vector: u8) {
    write(REG_LVT_TIMER, TIMER_MODE_TSC_DEADLINE | vector as u32);
}

pub fn set_tsc_deadline(tsc: u64) {
    // SAFETY: IA32_TSC_DEADLINE exists when CPUID.1:ECX.TSC_DEADLINE is set (checked by the
    // caller before choosing this mode); 0 disarms.
    unsafe { Msr::new(IA32_TSC_DEADLINE).write(tsc) };
}

/// Timer in one-shot mode, counting the bus clock divided by 1.
pub fn timer_one_shot_mode(vector: u8) {
    write(REG_TIMER_DIVIDE, 0b1011);
    write(REG_LVT_TIMER, TIMER_MODE_ONE_SHOT | vector as u32);
}

/// Starts a one-shot count of `ticks` timer ticks (0 stops the timer).
pub fn set_timer_count(ticks: u32) {
    write(REG_TIMER_INITIAL, ticks);
}

/// Measures the APIC timer frequency (Hz) against the calibrated TSC over `window_tsc` ticks.
pub fn calibrate_timer(tsc_hz: u64, window_tsc: u64) -> u64 {
    write(REG_TIMER_DIVIDE, 0b1011);
    write(REG_LVT_TIMER, LVT_MASKED);
    write(REG_TIMER_INITIAL, u32::MAX);
    let start = super::tsc::read();
    while super::tsc::read().wrapping_sub(start) < window_tsc {
        core::hint::spin_loop();
    }
    let counted = u32::MAX - read(REG_TIMER_CURRENT);
    write(REG_TIMER_INITIAL, 0);
    (counted as u128 * tsc_hz as u128 / window_tsc as u128) as u64
}
