//! Kernel-thread context switch: saves the callee-saved registers and RFLAGS on the old stack,
//! stores its stack pointer and resumes the new one. Everything else a thread owns (caller-saved
//! registers, the interrupted state of a preempted thread) is already on its stack by then.

use core::arch::global_asm;
use core::cell::UnsafeCell;

global_asm!(
    r#"
    .section .text
    .global echos_switch_context
    /* rdi: where to store the old stack pointer; rsi: the stack pointer to resume. */
echos_switch_context:
    push rbp
    push rbx
    push r12
    push r13
    push r14
    push r15
    pushfq
    mov [rdi], rsp
    mov rsp, rsi
    popfq
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbx
    pop rbp
    ret

    /* First code of every thread: entry(arg) from the registers its initial frame set, with
       interrupts on (the switch into a new thread happens with them off). */
    .global echos_thread_start
echos_thread_start:
    sti
    mov rdi, r12
    call r13
    ud2
    "#
);

extern "C" {
    fn echos_switch_context(save_rsp: *mut u64, next_rsp: u64);
    fn echos_thread_start();
}

/// A thread entry point: never returns (a thread ends by asking the scheduler to stop it).
pub type ThreadEntry = extern "C" fn(u64) -> !;

/// The saved stack pointer of one thread that is not running.
pub struct Context(UnsafeCell<u64>);

// SAFETY: one CPU; the slot is only read or written by `switch` and `prepare` with interrupts
// disabled, so no two accesses overlap.
unsafe impl Sync for Context {}

impl Context {
    pub const fn new() -> Self {
        Self(UnsafeCell::new(0))
    }

    /// Lays out a fresh frame at the top of `[bottom, top)` so that the first switch to this
    /// context calls `entry(arg)` with interrupts enabled and a correctly aligned stack.
    pub fn prepare(&self, bottom: u64, top: u64, entry: ThreadEntry, arg: u64) {
        assert!(
            !x86_64::instructions::interrupts::are_enabled(),
            "contexts are prepared with interrupts off"
        );
        let top = top & !0xf;
        // rflags, r15, r14, r13, r12, rbx, rbp, return address; after the pops rsp = top - 16,
        // so `call r13` leaves the entry with the ABI's rsp ≡ 8 (mod 16).
        let rsp = top - 80;
        assert!(rsp >= bottom, "stack too small for the initial frame");
        let frame: [u64; 8] = [
            0x2,
            0,
            0,
            entry as usize as u64,
            arg,
            0,
            0,
            echos_thread_start as *const () as u64,
        ];
        for (i, word) in frame.iter().enumerate() {
            // SAFETY: `[rsp, rsp + 64)` lies inside the caller's stack (checked above), which no
            // thread is running on while it is being prepared.
            unsafe { ((rsp + 8 * i as u64) as *mut u64).write(*word) };
        }
        // SAFETY: interrupts are off (asserted), so no switch reads the slot concurrently.
        unsafe { *self.0.get() = rsp };
    }
}

/// Saves the running thread into `from` and resumes `to`; returns when something switches back
/// to `from`. Interrupts must be off, and no lock may be held across the call.
pub fn switch(from: &Context, to: &Context) {
    assert!(
        !x86_64::instructions::interrupts::are_enabled(),
        "context switch with interrupts on"
    );
    // SAFETY: `to` holds a stack pointer saved by a previous switch or laid out by `prepare`,
    // on a stack nothing else runs on; interrupts are off so nothing observes the half-switched
    // state; the assembly saves every callee-saved register the Rust ABI expects preserved.
    unsafe { echos_switch_context(from.0.get(), *to.0.get()) };
}
