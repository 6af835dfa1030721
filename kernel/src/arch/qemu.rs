//! Leaving QEMU with a status: the `isa-debug-exit` device turns a write of `v` to port 0xf4 into
//! the process exit status `(v << 1) | 1`. On real hardware (no such device) we halt instead.

use x86_64::instructions::port::Port;

/// Exit status 33 for the test runner: everything passed.
pub const EXIT_SUCCESS: u32 = 0x10;
/// Exit status 35: a test failed, the kernel panicked or met a fatal fault.
pub const EXIT_FAILURE: u32 = 0x11;

pub fn exit(code: u32) -> ! {
    // SAFETY: port 0xf4 is the isa-debug-exit device on our QEMU command lines; on a machine
    // without it the write goes nowhere and we fall through to the halt loop.
    unsafe { Port::<u32>::new(0xf4).write(code) };
    halt_forever()
}

pub fn halt_forever() -> ! {
    loop {
        x86_64::instructions::interrupts::disable();
        x86_64::instructions::hlt();
    }
}
