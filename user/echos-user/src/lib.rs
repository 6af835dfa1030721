//! The echo-os user library: typed syscalls over the `echos-abi` contract (the same
//! `Request` encoding the kernel decodes), the program entry macro and the panic handler.
#![no_std]

pub use echos_abi as abi;
use echos_abi::{Errno, Request};

/// Issues a raw syscall: number in `rax`, arguments in `rdi, rsi, rdx, r10, r8, r9`.
pub fn raw_syscall(number: u64, a: [u64; 6]) -> i64 {
    let ret: i64;
    // SAFETY: `syscall` enters the kernel, which preserves every register but `rax` (the
    // result), `rcx` and `r11` (declared clobbered) and validates every argument itself.
    unsafe {
        core::arch::asm!(
            "syscall",
            inlateout("rax") number as i64 => ret,
            in("rdi") a[0],
            in("rsi") a[1],
            in("rdx") a[2],
            in("r10") a[3],
            in("r8") a[4],
            in("r9") a[5],
            lateout("rcx") _,
            lateout("r11") _,
            options(nostack),
        );
    }
    ret
}

/// Issues a typed call and decodes its result.
pub fn call(req: Request) -> Result<u64, Errno> {
    let (number, a) = req.encode();
    decode(raw_syscall(number, a))
}

/// A raw result: `>= 0` is a value, `< 0` an error code (an unknown code maps to `BadSyscall`
/// so the caller still sees a failure).
pub fn decode(ret: i64) -> Result<u64, Errno> {
    Errno::decode_return(ret).map_err(|e| e.unwrap_or(Errno::BadSyscall))
}

pub fn exit(code: i64) -> ! {
    let _ = call(Request::Exit { code });
    // The kernel never returns from exit; should it, spin rather than run off the end.
    loop {
        core::hint::spin_loop();
    }
}

pub fn yield_now() -> Result<u64, Errno> {
    call(Request::Yield)
}

pub fn log(msg: &str) -> Result<u64, Errno> {
    log_bytes(msg.as_ptr() as u64, msg.len() as u64)
}

/// `log_write` on any pointer: how the tests hand the kernel bad ones.
pub fn log_bytes(ptr: u64, len: u64) -> Result<u64, Errno> {
    call(Request::LogWrite { ptr, len })
}

/// Defines `_start(arg)` calling `main(arg) -> i64` and exiting with its result.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        #[link_section = ".text._start"]
        pub extern "C" fn _start(arg: u64) -> ! {
            $crate::exit($main(arg))
        }
    };
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    exit(-100)
}
