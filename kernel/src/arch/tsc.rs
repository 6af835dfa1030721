//! The time stamp counter and its calibration. Under `-icount shift=0` QEMU's TSC counts one per
//! instruction (a virtual nanosecond), so the calibration there gives 1 GHz and every reading is
//! repeatable run to run.

use x86_64::instructions::port::Port;

#[inline(always)]
pub fn read() -> u64 {
    // SAFETY: rdtsc has no side effects; the kernel runs with CR4.TSD clear.
    unsafe { core::arch::x86_64::_rdtsc() }
}

/// Where the TSC frequency came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationSource {
    /// CPUID leaf 0x15 (crystal clock times the TSC/crystal ratio).
    CpuidLeaf15,
    /// Counted against the 8254 PIT (1.193182 MHz).
    Pit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CalibrationError {
    /// No CPUID frequency leaf and the PIT counter never moved (no PIT on this machine).
    NoReferenceClock,
    /// The TSC did not advance while the reference clock did.
    TscNotAdvancing,
}

const PIT_HZ: u64 = 1_193_182;

/// TSC frequency in Hz from CPUID leaf 0x15, if the CPU states it.
fn from_cpuid() -> Option<u64> {
    let cpuid = raw_cpuid::CpuId::new();
    let info = cpuid.get_tsc_info()?;
    let hz = info.tsc_frequency()?;
    (hz > 0).then_some(hz)
}

fn pit_read(cmd: &mut Port<u8>, ch0: &mut Port<u8>) -> u16 {
    // SAFETY: latch command then two reads of channel 0: the PIT's documented read-back.
    unsafe {
        cmd.write(0x00);
        let lo = ch0.read() as u16;
        let hi = ch0.read() as u16;
        (hi << 8) | lo
    }
}

/// Counts TSC ticks over `pit_ticks` periods of PIT channel 0 (mode 2, reload 0x10000).
fn from_pit(pit_ticks: u64) -> Result<u64, CalibrationError> {
    let mut cmd = Port::<u8>::new(0x43);
    let mut ch0 = Port::<u8>::new(0x40);
    // SAFETY: programs PIT channel 0 to free-run (mode 2); its interrupt is masked at the PIC
    // and the I/O APIC, so it only serves as a counter here.
    unsafe {
        cmd.write(0x34);
        ch0.write(0x00);
        ch0.write(0x00);
    }
    let mut last = pit_read(&mut cmd, &mut ch0);
    // If the counter does not move over a few thousand reads there is no PIT.
    let mut moved = false;
    for _ in 0..100_000 {
        let now = pit_read(&mut cmd, &mut ch0);
        if now != last {
            moved = true;
            last = now;
            break;
        }
    }
    if !moved {
        return Err(CalibrationError::NoReferenceClock);
    }
    let tsc_start = read();
    let mut elapsed: u64 = 0;
    while elapsed < pit_ticks {
        let now = pit_read(&mut cmd, &mut ch0);
        // Counts down and wraps at 0x10000.
        elapsed += last.wrapping_sub(now) as u64;
        last = now;
    }
    let tsc_end = read();
    let tsc_ticks = tsc_end.wrapping_sub(tsc_start);
    if tsc_ticks == 0 {
        return Err(CalibrationError::TscNotAdvancing);
    }
    Ok((tsc_ticks as u128 * PIT_HZ as u128 / elapsed as u128) as u64)
}

/// The TSC frequency in Hz: CPUID when it says, else 10 ms counted against the PIT.
pub fn calibrate() -> Result<(u64, CalibrationSource), CalibrationError> {
    if let Some(hz) = from_cpuid() {
        return Ok((hz, CalibrationSource::CpuidLeaf15));
    }
    from_pit(PIT_HZ / 100).map(|hz| (hz, CalibrationSource::Pit))
}

/// Masks every line of both legacy 8259 PICs: all our interrupts come from the local APIC.
pub fn mask_legacy_pic() {
    // SAFETY: writing the interrupt mask registers of the 8259s has no other effect.
    unsafe {
        Port::<u8>::new(0x21).write(0xff);
        Port::<u8>::new(0xa1).write(0xff);
    }
}
