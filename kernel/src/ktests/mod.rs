//! The in-kernel test suite: every `kernel_test!` in these modules runs in one boot, prints one
//! line per test and closes with `N passed, M failed`; measured figures print as
//! `metric <name> <value> <unit>`. `cargo xtask test` boots it under `-icount` and reads them.

use alloc::string::String;

use crate::arch::ktest::{KernelSuite, Suite};
use crate::bootinfo::BootInfo;
use crate::{arch, kprintln};

mod bootinfo;
mod cpu;
mod engine;
mod hostile;
mod memory;
mod sched;
mod time;
mod user;

/// Everything the kernel set up at boot: what each test, and the default boot's figures, get.
pub struct Kernel {
    pub boot: BootInfo,
    pub memory: crate::memory::Memory,
    #[expect(
        dead_code,
        reason = "handed over with the rest of the boot; no test reads it yet"
    )]
    pub features: arch::cpu::Features,
    pub time: &'static crate::time::TimeBase,
}

impl Suite for KernelSuite {
    type Context = Kernel;
}

/// Fails the current test with a formatted message unless `cond` holds.
#[macro_export]
macro_rules! ensure {
    ($cond:expr, $($fmt:tt)*) => {
        if !$cond {
            return Err(alloc::format!("{} (line {})", alloc::format!($($fmt)*), line!()));
        }
    };
}

/// A test that cannot run on this machine returns `Err` starting with this; it is reported as
/// skipped (never under the TCG configuration `cargo xtask test` uses).
pub const SKIPPED: &str = "skipped: ";

/// How long a test waits for an event before calling it lost. Generous: ring 0 under the nested
/// KVM runs about 1.5 M instructions/s; in passing runs the wait ends long before.
pub const FAIL_AFTER_NS: u64 = 2_000_000_000;

/// Whether the clock is QEMU's deterministic virtual time (`-icount`, which `cargo xtask`
/// announces with `icount` on the command line): only then do timing bounds mean anything.
pub fn virtual_time(k: &Kernel) -> bool {
    let on = k.boot.arg("icount").is_some();
    if !on {
        kprintln!("note: not under -icount: timing bounds reported, not checked");
    }
    on
}

fn short_name(name: &str) -> &str {
    name.strip_prefix("echos_kernel::ktests::").unwrap_or(name)
}

/// Runs every registered test; true if all passed.
pub fn run_all(kernel: &mut Kernel) -> bool {
    let tests = arch::ktest::registered();
    let filter = String::from(kernel.boot.arg("test").unwrap_or(""));
    kprintln!("running {} kernel tests", tests.len());
    let (mut passed, mut failed, mut skipped) = (0u32, 0u32, 0u32);
    for t in tests {
        let name = short_name(t.name);
        if !name.contains(filter.as_str()) {
            continue;
        }
        let result: Result<(), String> = (t.run)(kernel);
        // A test must leave interrupts on and the timer queue empty for the next one.
        x86_64::instructions::interrupts::enable();
        match result {
            Ok(()) => {
                passed += 1;
                kprintln!("test {name} ... ok");
            }
            Err(msg) if msg.starts_with(SKIPPED) => {
                skipped += 1;
                kprintln!("test {name} ... {msg}");
            }
            Err(msg) => {
                failed += 1;
                kprintln!("test {name} ... FAILED: {msg}");
            }
        }
    }
    if skipped == 0 {
        kprintln!("{passed} passed, {failed} failed");
    } else {
        kprintln!("{passed} passed, {failed} failed, {skipped} skipped");
    }
    failed == 0
}

/// The default boot: the figures only (no pass/fail lines).
pub fn report(kernel: &mut Kernel) -> bool {
    let mut brand = [0u8; 64];
    kprintln!("cpu: {}", arch::cpu::vendor_and_brand(&mut brand));
    let mut ok = true;
    for r in [
        engine::integer_esn_digest_matches_host(kernel),
        engine::fixed_esn_digest_matches_host(kernel),
        memory::pool_stress_report(kernel),
        time::timer_latency_report(kernel),
        sched::ten_khz_report(kernel).map(|_| ()),
        user::predictor_demo(kernel).map(|_| ()),
    ] {
        if let Err(e) = r {
            kprintln!("error: {e}");
            ok = false;
        }
    }
    kprintln!(
        "timer interrupts since boot: {}",
        crate::time::timer_interrupts()
    );
    ok
}
