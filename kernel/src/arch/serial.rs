//! The serial console (COM1, 16550 UART at port 0x3f8): where every line the kernel prints goes.

use core::fmt::{self, Write};
use spin::Mutex;
use uart_16550::SerialPort;

const COM1: u16 = 0x3f8;

static PORT: Mutex<Option<SerialPort>> = Mutex::new(None);

/// Programs the UART (115200 8N1, FIFO on). Safe to call again: later calls do nothing.
pub fn init() {
    let mut port = PORT.lock();
    if port.is_none() {
        // SAFETY: 0x3f8 is COM1 on every PC-compatible machine QEMU models (pc, q35, microvm);
        // nothing else in the kernel touches these ports.
        let mut p = unsafe { SerialPort::new(COM1) };
        p.init();
        *port = Some(p);
    }
}

/// Writes formatted text. Interrupts are masked while the lock is held so a handler that prints
/// cannot deadlock against the code it interrupted; the NMI and fault paths use `write_panic`.
pub fn write_fmt(args: fmt::Arguments) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let mut port = PORT.lock();
        if let Some(p) = port.as_mut() {
            let _ = p.write_fmt(args);
        }
    });
}

/// Writes from a context that may have interrupted a holder of the lock (NMI, panic, fatal
/// exception): steals the port rather than deadlock, accepting interleaved characters.
pub fn write_panic(args: fmt::Arguments) {
    // SAFETY: as in `init`; a second handle to the same UART can only interleave output, which
    // is preferable to losing the report of a fatal error.
    let mut p = unsafe { SerialPort::new(COM1) };
    let _ = p.write_fmt(args);
}
