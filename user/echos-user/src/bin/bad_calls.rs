//! Hands the kernel bad syscalls and checks each is refused with the right error code. Exits
//! with the number of calls that were not refused as expected (0: all were).
#![no_std]
#![no_main]

use echos_user::abi::{Errno, MAX_LOG_LEN};

echos_user::entry!(main);

/// In the kernel's identity map (its image at 1 MiB): mapped, but not for ring 3.
const KERNEL_ADDR: u64 = 0x10_0000;
/// In the user half but mapped by nothing.
const UNMAPPED_ADDR: u64 = 0x90_0000_0000;

static TEXT: [u8; 600] = [b'x'; 600];
static NOT_UTF8: [u8; 2] = [0xc3, 0x28];

fn main(_: u64) -> i64 {
    let mut wrong = 0;
    let mut expect = |got: Result<u64, Errno>, want: Errno| {
        if got != Err(want) {
            wrong += 1;
        }
    };
    expect(
        echos_user::decode(echos_user::raw_syscall(999, [0; 6])),
        Errno::BadSyscall,
    );
    expect(echos_user::log_bytes(KERNEL_ADDR, 8), Errno::BadPointer);
    expect(echos_user::log_bytes(UNMAPPED_ADDR, 8), Errno::BadPointer);
    expect(echos_user::log_bytes(0, 8), Errno::BadPointer);
    expect(echos_user::log_bytes(u64::MAX - 2, 8), Errno::BadLength);
    expect(
        echos_user::log_bytes(TEXT.as_ptr() as u64, MAX_LOG_LEN + 1),
        Errno::BadLength,
    );
    expect(
        echos_user::log_bytes(NOT_UTF8.as_ptr() as u64, 2),
        Errno::BadUtf8,
    );
    // And a good call still works afterwards.
    if echos_user::log("bad calls refused; still running") != Ok(32) {
        wrong += 1;
    }
    wrong
}
