//! Faults on purpose, by argument: 0 reads kernel memory (#PF), 1 divides by zero (#DE),
//! 2 executes a privileged instruction (#GP). The kernel must stop this task only.
#![no_std]
#![no_main]

echos_user::entry!(main);

fn main(arg: u64) -> i64 {
    match arg {
        0 => {
            // SAFETY: none; the read faults (supervisor page), which is the point.
            let v = unsafe { core::ptr::read_volatile(0x10_0000 as *const u64) };
            v as i64
        }
        1 => {
            let zero = core::hint::black_box(0u64);
            let v: u64;
            // SAFETY: none; `div` by zero raises #DE, which is the point (Rust's `/` would
            // check and panic instead).
            unsafe {
                core::arch::asm!("div {z}", z = in(reg) zero, inlateout("rax") 1u64 => v, inlateout("rdx") 0u64 => _);
            }
            v as i64
        }
        _ => {
            // SAFETY: none; `hlt` in ring 3 raises #GP, which is the point.
            unsafe { core::arch::asm!("hlt") };
            0
        }
    }
}
