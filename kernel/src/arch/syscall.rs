//! The `syscall`/`sysret` path: the MSRs (EFER.SCE, STAR, LSTAR, SFMASK), the entry stub that
//! moves to the task's kernel stack and saves the user registers, the first entry into ring 3
//! (`iretq`), and copying from user memory the caller has already validated.

use core::arch::global_asm;
use core::sync::atomic::{AtomicPtr, Ordering};

use super::gdt;

/// Registers saved by the entry stub, lowest address first. `rax` holds the result on return.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct SyscallFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub rbp: u64,
    pub rbx: u64,
    pub r9: u64,
    pub r8: u64,
    pub r10: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub rax: u64,
    pub user_rflags: u64,
    pub user_rip: u64,
    pub user_rsp: u64,
}

global_asm!(
    r#"
    .section .text
    .global echos_syscall_entry
    /* SFMASK cleared IF, so nothing interrupts us until sysret; one CPU, so the scratch word
       and the kernel stack pointer need no per-CPU area. */
echos_syscall_entry:
    mov [rip + echos_syscall_user_rsp], rsp
    mov rsp, [rip + echos_syscall_kernel_rsp]
    push qword ptr [rip + echos_syscall_user_rsp]
    push rcx
    push r11
    push rax
    push rdi
    push rsi
    push rdx
    push r10
    push r8
    push r9
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call echos_syscall_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    pop r9
    pop r8
    pop r10
    pop rdx
    pop rsi
    pop rdi
    pop rax
    pop r11
    pop rcx
    pop rsp
    sysretq

    /* enter_user(rip: rdi, rsp: rsi, arg: rdx): the first entry of a task into ring 3. */
    .global echos_enter_user
echos_enter_user:
    push {user_ss}
    push rsi
    push 0x202
    push {user_cs}
    push rdi
    mov rdi, rdx
    xor eax, eax
    xor ebx, ebx
    xor ecx, ecx
    xor edx, edx
    xor esi, esi
    xor ebp, ebp
    xor r8d, r8d
    xor r9d, r9d
    xor r10d, r10d
    xor r11d, r11d
    xor r12d, r12d
    xor r13d, r13d
    xor r14d, r14d
    xor r15d, r15d
    iretq

    .section .bss
    .balign 8
    .global echos_syscall_user_rsp
echos_syscall_user_rsp:
    .quad 0
    .global echos_syscall_kernel_rsp
echos_syscall_kernel_rsp:
    .quad 0
    "#,
    user_ss = const gdt::USER_DATA as u64,
    user_cs = const gdt::USER_CODE as u64,
);

extern "C" {
    fn echos_syscall_entry();
    fn echos_enter_user(rip: u64, rsp: u64, arg: u64) -> !;
    static mut echos_syscall_kernel_rsp: u64;
}

pub type SyscallHandler = fn(&mut SyscallFrame);
static HANDLER: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

pub fn set_handler(h: SyscallHandler) {
    HANDLER.store(h as *mut (), Ordering::Release);
}

#[no_mangle]
extern "C" fn echos_syscall_dispatch(frame: &mut SyscallFrame) {
    let h = HANDLER.load(Ordering::Acquire);
    if h.is_null() {
        frame.rax = echos_abi::Errno::BadSyscall.code() as u64;
        return;
    }
    // SAFETY: only `SyscallHandler` values are stored in HANDLER.
    let h: SyscallHandler = unsafe { core::mem::transmute(h) };
    h(frame);
}

const IA32_EFER: u32 = 0xc000_0080;
const IA32_STAR: u32 = 0xc000_0081;
const IA32_LSTAR: u32 = 0xc000_0082;
const IA32_FMASK: u32 = 0xc000_0084;
const EFER_SCE: u64 = 1;
/// Cleared on entry: IF (no interrupt before the stack switch), TF, DF, AC.
const SFMASK: u64 = 0x200 | 0x100 | 0x400 | 0x4_0000;

pub fn init() {
    // SAFETY: standard MSRs of every x86_64 CPU; STAR's selectors match the GDT's order
    // (checked in gdt::init) and LSTAR points at the entry stub above.
    unsafe {
        let efer = x86_64::registers::model_specific::Msr::new(IA32_EFER).read();
        x86_64::registers::model_specific::Msr::new(IA32_EFER).write(efer | EFER_SCE);
        let star = (u64::from(gdt::KERNEL_DATA) << 48) | (u64::from(gdt::KERNEL_CODE) << 32);
        x86_64::registers::model_specific::Msr::new(IA32_STAR).write(star);
        x86_64::registers::model_specific::Msr::new(IA32_LSTAR)
            .write(echos_syscall_entry as *const () as u64);
        x86_64::registers::model_specific::Msr::new(IA32_FMASK).write(SFMASK);
    }
}

pub(super) fn set_kernel_stack(top: u64) {
    // SAFETY: written with interrupts off (gdt::set_kernel_stack asserts it) and read only by
    // the syscall entry, which runs with interrupts off too: no concurrent access.
    unsafe { *core::ptr::addr_of_mut!(echos_syscall_kernel_rsp) = top };
}

/// Enters ring 3 at `rip` with `rsp` and `arg` in `rdi`; the current CR3 must map them.
pub fn enter_user(rip: u64, rsp: u64, arg: u64) -> ! {
    // SAFETY: the caller built the address space now in CR3 with user pages at `rip` and below
    // `rsp`; iretq switches to ring 3 with interrupts on, and the kernel stack is abandoned.
    unsafe { echos_enter_user(rip, rsp, arg) }
}

/// Copies `dst.len()` bytes from user address `src` (in the current address space).
pub fn copy_from_user(dst: &mut [u8], src: u64) {
    // SAFETY: the caller checked `[src, src + dst.len())` against the task's address space
    // (mapped, user-readable, in the lower half), which is the one in CR3.
    unsafe { core::ptr::copy_nonoverlapping(src as *const u8, dst.as_mut_ptr(), dst.len()) };
}

/// Copies `src` to user address `dst` (in the current address space).
pub fn copy_to_user(dst: u64, src: &[u8]) {
    // SAFETY: the caller checked `[dst, dst + src.len())` against the task's address space
    // (mapped, user-writable, in the lower half), which is the one in CR3.
    unsafe { core::ptr::copy_nonoverlapping(src.as_ptr(), dst as *mut u8, src.len()) };
}
