//! Interrupt and exception entry: the IDT, one assembly stub per vector, the common save/restore
//! path, and the dispatcher. Exceptions print the faulting state and stop; an exception at an
//! instruction listed in the fixup table (the `probe_*` functions) instead resumes at its fixup
//! with the vector in `rax`, which is how tests check that a fault happened.
//!
//! External interrupts (vectors 32..=254) run their handler with interrupts enabled: the local
//! APIC only delivers a vector whose priority class (vector >> 4) is above every class in
//! service, so a higher-priority interrupt preempts a lower one and never the reverse.

use core::arch::{asm, global_asm};
use core::sync::atomic::{AtomicBool, AtomicPtr, AtomicU64, Ordering};

use super::{apic, gdt};

/// Registers saved on entry, in stack order (lowest address first).
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct TrapFrame {
    pub r15: u64,
    pub r14: u64,
    pub r13: u64,
    pub r12: u64,
    pub r11: u64,
    pub r10: u64,
    pub r9: u64,
    pub r8: u64,
    pub rbp: u64,
    pub rdi: u64,
    pub rsi: u64,
    pub rdx: u64,
    pub rcx: u64,
    pub rbx: u64,
    pub rax: u64,
    pub vector: u64,
    pub error_code: u64,
    pub rip: u64,
    pub cs: u64,
    pub rflags: u64,
    pub rsp: u64,
    pub ss: u64,
}

/// The spurious-interrupt vector the APIC is programmed with; it needs no EOI.
pub const SPURIOUS_VECTOR: u8 = 0xff;

global_asm!(
    r#"
    .section .text
    .balign 16
    .global trap_stubs
trap_stubs:
    .set vec, 0
    .rept 256
    .balign 16
    .if (vec == 8) || (vec == 10) || (vec == 11) || (vec == 12) || (vec == 13) || (vec == 14) || (vec == 17) || (vec == 21) || (vec == 29) || (vec == 30)
    .else
    push 0
    .endif
    push vec
    jmp trap_common
    .set vec, vec + 1
    .endr

trap_common:
    push rax
    push rbx
    push rcx
    push rdx
    push rsi
    push rdi
    push rbp
    push r8
    push r9
    push r10
    push r11
    push r12
    push r13
    push r14
    push r15
    mov rdi, rsp
    cld
    call trap_dispatch
    pop r15
    pop r14
    pop r13
    pop r12
    pop r11
    pop r10
    pop r9
    pop r8
    pop rbp
    pop rdi
    pop rsi
    pop rdx
    pop rcx
    pop rbx
    pop rax
    add rsp, 16
    iretq

    /* Probes: each faulting instruction has a fixup that returns the vector + 1 in rax. */
    .global probe_read_u64
probe_read_u64:
    xor eax, eax
10: mov rdx, [rdi]
    mov [rsi], rdx
    ret
11: ret
    .pushsection .exception_fixups, "a"
    .quad 10b, 11b
    .popsection

    .global probe_write_u64
probe_write_u64:
    xor eax, eax
12: mov [rdi], rsi
    ret
13: ret
    .pushsection .exception_fixups, "a"
    .quad 12b, 13b
    .popsection

    .global probe_ud2
probe_ud2:
    xor eax, eax
14: ud2
    ret
15: ret
    .pushsection .exception_fixups, "a"
    .quad 14b, 15b
    .popsection

    .global probe_divide_by_zero
probe_divide_by_zero:
    xor eax, eax
    xor edx, edx
    xor ecx, ecx
16: div rcx
    xor eax, eax
    ret
17: ret
    .pushsection .exception_fixups, "a"
    .quad 16b, 17b
    .popsection

    /* Runs rsi() on the stack whose top is rdi. Returns 0 if it returned, 1 if a double fault
       (its stack overflowed into the guard page) was caught and unwound to here. */
    .global run_on_stack_catch_double_fault
run_on_stack_catch_double_fault:
    push rbx
    push rbp
    push r12
    push r13
    push r14
    push r15
    mov [rip + double_fault_saved_rsp], rsp
    mov rsp, rdi
    call rsi
    mov rsp, [rip + double_fault_saved_rsp]
    xor eax, eax
    jmp 18f
    .global double_fault_recover
double_fault_recover:
    mov rsp, [rip + double_fault_saved_rsp]
    mov eax, 1
18:
    pop r15
    pop r14
    pop r13
    pop r12
    pop rbp
    pop rbx
    ret

    .section .bss
    .balign 8
    .global double_fault_saved_rsp
double_fault_saved_rsp:
    .quad 0
    "#
);

extern "C" {
    static trap_stubs: u8;
    static __exception_fixups_start: u8;
    static __exception_fixups_end: u8;
    static double_fault_saved_rsp: u64;
    fn double_fault_recover();
    fn probe_read_u64(addr: u64, out: *mut u64) -> u64;
    fn probe_write_u64(addr: u64, value: u64) -> u64;
    fn probe_ud2() -> u64;
    fn probe_divide_by_zero() -> u64;
    fn run_on_stack_catch_double_fault(stack_top: u64, f: extern "C" fn()) -> u64;
}

/// A 64-bit interrupt gate.
#[repr(C)]
#[derive(Clone, Copy)]
struct Gate {
    offset_low: u16,
    selector: u16,
    ist: u8,
    type_attr: u8,
    offset_mid: u16,
    offset_high: u32,
    reserved: u32,
}

#[repr(C, align(16))]
struct Idt([Gate; 256]);

static mut IDT: Idt = Idt([Gate {
    offset_low: 0,
    selector: 0,
    ist: 0,
    type_attr: 0,
    offset_mid: 0,
    offset_high: 0,
    reserved: 0,
}; 256]);

/// IST slot per vector: NMI, double fault and machine check get their own stacks.
pub fn ist_of(vector: u8) -> u8 {
    match vector {
        2 => gdt::IST_NMI,
        8 => gdt::IST_DOUBLE_FAULT,
        18 => gdt::IST_MACHINE_CHECK,
        _ => 0,
    }
}

pub fn init() {
    let base = core::ptr::addr_of!(trap_stubs) as u64;
    let cs = <x86_64::instructions::segmentation::CS as x86_64::instructions::segmentation::Segment>::get_reg().0;
    // SAFETY: runs once at boot, before interrupts are enabled, so nothing reads the IDT while
    // it is written; afterwards it is only read (by the CPU).
    unsafe {
        let idt = &mut *core::ptr::addr_of_mut!(IDT);
        for (v, gate) in idt.0.iter_mut().enumerate() {
            let addr = base + 16 * v as u64;
            *gate = Gate {
                offset_low: addr as u16,
                selector: cs,
                ist: ist_of(v as u8),
                // present, DPL 0, 64-bit interrupt gate (clears IF on entry)
                type_attr: 0x8e,
                offset_mid: (addr >> 16) as u16,
                offset_high: (addr >> 32) as u32,
                reserved: 0,
            };
        }
        let ptr = x86_64::structures::DescriptorTablePointer {
            limit: (core::mem::size_of::<Idt>() - 1) as u16,
            base: x86_64::VirtAddr::new(idt as *const Idt as u64),
        };
        x86_64::instructions::tables::lidt(&ptr);
    }
}

/// The IST slot the loaded IDT gives `vector` (read back from the table, for the tests).
pub fn idt_ist(vector: u8) -> u8 {
    // SAFETY: a plain read of a table written only during `init`.
    unsafe { (*core::ptr::addr_of!(IDT)).0[vector as usize].ist }
}

pub type Handler = fn(&mut TrapFrame);

static HANDLERS: [AtomicPtr<()>; 256] = [const { AtomicPtr::new(core::ptr::null_mut()) }; 256];

/// Installs the handler of an external-interrupt vector (32..=254).
pub fn set_handler(vector: u8, handler: Handler) {
    assert!(
        (32..SPURIOUS_VECTOR).contains(&vector),
        "vector {vector} is not an external interrupt"
    );
    HANDLERS[vector as usize].store(handler as *mut (), Ordering::Release);
}

/// TSC at the entry of the most recent external interrupt, read first thing in the dispatcher.
pub static LAST_ENTRY_TSC: AtomicU64 = AtomicU64::new(0);

/// Hook for NMIs (the tests use it to see which stack an NMI ran on).
static NMI_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());
pub fn set_nmi_hook(hook: Handler) {
    NMI_HOOK.store(hook as *mut (), Ordering::Release);
}

/// The last fault that a fixup or the double-fault catcher resumed from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultRecord {
    pub vector: u64,
    pub error_code: u64,
    pub cr2: u64,
    pub rip: u64,
    pub rsp: u64,
}

static LAST_FAULT: spin::Mutex<FaultRecord> = spin::Mutex::new(FaultRecord {
    vector: 0,
    error_code: 0,
    cr2: 0,
    rip: 0,
    rsp: 0,
});
static BREAKPOINTS: AtomicU64 = AtomicU64::new(0);

/// Exceptions raised in ring 0 since boot (other than NMIs, breakpoints and the overflow test's
/// caught double fault): the fault probes' deliberate ones, and any other is fatal. A test that
/// hands the kernel hostile input counts them across its run.
static KERNEL_EXCEPTIONS: AtomicU64 = AtomicU64::new(0);

pub fn kernel_exceptions() -> u64 {
    KERNEL_EXCEPTIONS.load(Ordering::Acquire)
}
static DOUBLE_FAULT_CATCH: AtomicBool = AtomicBool::new(false);

pub fn last_fault() -> FaultRecord {
    *LAST_FAULT.lock()
}
pub fn breakpoint_count() -> u64 {
    BREAKPOINTS.load(Ordering::Acquire)
}

fn record_fault(frame: &TrapFrame) {
    // Faults are only recorded with interrupts off and nothing else holds this lock then.
    if let Some(mut f) = LAST_FAULT.try_lock() {
        *f = FaultRecord {
            vector: frame.vector,
            error_code: frame.error_code,
            cr2: x86_64::registers::control::Cr2::read_raw(),
            rip: frame.rip,
            rsp: frame.rsp,
        };
    }
}

fn fixup_for(rip: u64) -> Option<u64> {
    let start = core::ptr::addr_of!(__exception_fixups_start) as *const [u64; 2];
    let end = core::ptr::addr_of!(__exception_fixups_end) as *const [u64; 2];
    let n = (end as usize - start as usize) / 16;
    // SAFETY: the linker script places only `.quad insn, fixup` pairs between these symbols.
    let table = unsafe { core::slice::from_raw_parts(start, n) };
    table.iter().find(|e| e[0] == rip).map(|e| e[1])
}

pub const EXCEPTION_NAMES: [&str; 32] = [
    "divide error (#DE)",
    "debug (#DB)",
    "non-maskable interrupt (NMI)",
    "breakpoint (#BP)",
    "overflow (#OF)",
    "bound range exceeded (#BR)",
    "invalid opcode (#UD)",
    "device not available (#NM)",
    "double fault (#DF)",
    "coprocessor segment overrun",
    "invalid TSS (#TS)",
    "segment not present (#NP)",
    "stack-segment fault (#SS)",
    "general protection fault (#GP)",
    "page fault (#PF)",
    "reserved 15",
    "x87 floating-point error (#MF)",
    "alignment check (#AC)",
    "machine check (#MC)",
    "SIMD floating-point error (#XM)",
    "virtualization exception (#VE)",
    "control protection (#CP)",
    "reserved 22",
    "reserved 23",
    "reserved 24",
    "reserved 25",
    "reserved 26",
    "reserved 27",
    "hypervisor injection (#HV)",
    "VMM communication (#VC)",
    "security exception (#SX)",
    "reserved 31",
];

fn fatal_exception(frame: &TrapFrame) -> ! {
    let cr2 = x86_64::registers::control::Cr2::read_raw();
    let name = EXCEPTION_NAMES[(frame.vector & 31) as usize];
    super::serial::write_panic(format_args!(
        "\nFATAL EXCEPTION: {name}, vector {v}, error code {ec:#x}\n  rip {rip:#018x}  cs {cs:#x}  rflags {fl:#x}  rsp {rsp:#018x}  ss {ss:#x}\n  cr2 (fault address) {cr2:#018x}\n  rax {rax:#x} rbx {rbx:#x} rcx {rcx:#x} rdx {rdx:#x} rsi {rsi:#x} rdi {rdi:#x} rbp {rbp:#x}\n  r8 {r8:#x} r9 {r9:#x} r10 {r10:#x} r11 {r11:#x} r12 {r12:#x} r13 {r13:#x} r14 {r14:#x} r15 {r15:#x}\n",
        v = frame.vector,
        ec = frame.error_code,
        rip = frame.rip,
        cs = frame.cs,
        fl = frame.rflags,
        rsp = frame.rsp,
        ss = frame.ss,
        rax = frame.rax,
        rbx = frame.rbx,
        rcx = frame.rcx,
        rdx = frame.rdx,
        rsi = frame.rsi,
        rdi = frame.rdi,
        rbp = frame.rbp,
        r8 = frame.r8,
        r9 = frame.r9,
        r10 = frame.r10,
        r11 = frame.r11,
        r12 = frame.r12,
        r13 = frame.r13,
        r14 = frame.r14,
        r15 = frame.r15,
    ));
    if frame.vector == 14 {
        let ec = frame.error_code;
        super::serial::write_panic(format_args!(
            "  page fault: {} page, {}, {} mode{}\n",
            if ec & 1 != 0 {
                "protection violation on a present"
            } else {
                "not-present"
            },
            if ec & 2 != 0 { "write" } else { "read" },
            if ec & 4 != 0 { "user" } else { "supervisor" },
            if ec & 16 != 0 {
                ", instruction fetch"
            } else {
                ""
            },
        ));
    }
    if frame.vector == 8 || frame.vector == 14 {
        if let Some(stack) = super::stacks::all()
            .iter()
            .find(|s| (s.guard_page..s.guard_page + 4096).contains(&cr2))
        {
            super::serial::write_panic(format_args!(
                "  the fault address is in the guard page of the {} stack: stack overflow\n",
                stack.name
            ));
        }
    }
    super::qemu::exit(super::qemu::EXIT_FAILURE)
}

#[no_mangle]
extern "C" fn trap_dispatch(frame: &mut TrapFrame) {
    let entry_tsc = super::tsc::read();
    let vector = frame.vector as u8;
    if vector < 32 {
        match vector {
            2 => {
                let hook = NMI_HOOK.load(Ordering::Acquire);
                if !hook.is_null() {
                    // SAFETY: only `Handler` values are stored in NMI_HOOK.
                    let hook: Handler = unsafe { core::mem::transmute(hook) };
                    hook(frame);
                }
                return;
            }
            3 => {
                BREAKPOINTS.fetch_add(1, Ordering::AcqRel);
                return;
            }
            8 if DOUBLE_FAULT_CATCH.swap(false, Ordering::AcqRel) => {
                record_fault(frame);
                frame.rip = double_fault_recover as *const () as u64;
                // SAFETY: a plain read of a value written by the catcher before the fault.
                frame.rsp = unsafe { core::ptr::addr_of!(double_fault_saved_rsp).read_volatile() };
                return;
            }
            _ => {}
        }
        if frame.cs & 3 == 0 {
            KERNEL_EXCEPTIONS.fetch_add(1, Ordering::AcqRel);
        }
        if frame.cs & 3 == 3 {
            // A fault in ring 3 stops that task only; the hook never returns to it.
            let hook = USER_FAULT_HOOK.load(Ordering::Acquire);
            if !hook.is_null() {
                // SAFETY: only `UserFaultHook` values are stored in USER_FAULT_HOOK.
                let hook: UserFaultHook = unsafe { core::mem::transmute(hook) };
                hook(frame, x86_64::registers::control::Cr2::read_raw());
            }
        }
        if let Some(fixup) = fixup_for(frame.rip) {
            record_fault(frame);
            frame.rip = fixup;
            frame.rax = frame.vector + 1;
            return;
        }
        fatal_exception(frame);
    }
    if vector == SPURIOUS_VECTOR {
        return;
    }
    LAST_ENTRY_TSC.store(entry_tsc, Ordering::Relaxed);
    if frame.cs & 3 == 3 {
        USER_MODE_INTERRUPTS.fetch_add(1, Ordering::Relaxed);
    }
    let depth = NESTING.fetch_add(1, Ordering::AcqRel);
    let handler = HANDLERS[vector as usize].load(Ordering::Acquire);
    if !handler.is_null() {
        // SAFETY: only `Handler` values are stored in HANDLERS.
        let handler: Handler = unsafe { core::mem::transmute(handler) };
        // Let higher priority classes preempt this handler (the APIC holds back equal and lower).
        x86_64::instructions::interrupts::enable();
        handler(frame);
        x86_64::instructions::interrupts::disable();
    }
    apic::eoi();
    NESTING.fetch_sub(1, Ordering::AcqRel);
    // Only the outermost interrupt may switch threads: a nested one would leave the handler it
    // interrupted half done on another thread's behalf. After the EOI, so the APIC delivers the
    // next interrupt to whichever thread runs.
    if depth == 0 {
        let hook = PREEMPT_HOOK.load(Ordering::Acquire);
        if !hook.is_null() {
            // SAFETY: only `fn()` values are stored in PREEMPT_HOOK.
            let hook: fn() = unsafe { core::mem::transmute(hook) };
            hook();
        }
    }
}

/// Called for an exception raised in ring 3 with the frame and CR2; must not return.
pub type UserFaultHook = fn(&TrapFrame, u64);
static USER_FAULT_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

pub fn set_user_fault_hook(hook: UserFaultHook) {
    USER_FAULT_HOOK.store(hook as *mut (), Ordering::Release);
}

/// External interrupts that arrived while ring 3 ran (for the preemption tests).
static USER_MODE_INTERRUPTS: AtomicU64 = AtomicU64::new(0);

pub fn user_mode_interrupts() -> u64 {
    USER_MODE_INTERRUPTS.load(Ordering::Relaxed)
}

/// External interrupts being handled right now (nesting depth).
static NESTING: core::sync::atomic::AtomicU32 = core::sync::atomic::AtomicU32::new(0);
/// Called with interrupts off at the end of every outermost external interrupt: the scheduler's
/// preemption point.
static PREEMPT_HOOK: AtomicPtr<()> = AtomicPtr::new(core::ptr::null_mut());

pub fn set_preempt_hook(hook: Option<fn()>) {
    let p = hook.map_or(core::ptr::null_mut(), |h| h as *mut ());
    PREEMPT_HOOK.store(p, Ordering::Release);
}

/// Reads a u64 at `addr`, returning the exception vector instead if the read faulted.
pub fn probe_read(addr: u64) -> Result<u64, u8> {
    let mut out = 0u64;
    // SAFETY: a fault in the read is caught by the fixup table; a successful read of any mapped
    // address is harmless (tests only point it at addresses they own or guard pages).
    let status = unsafe { probe_read_u64(addr, &mut out) };
    if status == 0 {
        Ok(out)
    } else {
        Err((status - 1) as u8)
    }
}

/// Reads the u64 at `addr` and writes the same value back, returning the vector of the first
/// access that faulted: tells whether memory is writable without changing it.
pub fn probe_rewrite(addr: u64) -> Result<(), u8> {
    x86_64::instructions::interrupts::without_interrupts(|| {
        let value = probe_read(addr)?;
        // SAFETY: stores the value just read from the same address with interrupts off on the
        // only CPU, so memory is unchanged; a fault is caught by the fixup table.
        let status = unsafe { probe_write_u64(addr, value) };
        if status == 0 {
            Ok(())
        } else {
            Err((status - 1) as u8)
        }
    })
}

/// Executes `ud2` and returns the vector it raised.
pub fn probe_invalid_opcode() -> Result<(), u8> {
    // SAFETY: the fault is caught by the fixup table.
    let status = unsafe { probe_ud2() };
    if status == 0 {
        Ok(())
    } else {
        Err((status - 1) as u8)
    }
}

/// Divides by zero and returns the vector it raised.
pub fn probe_divide_error() -> Result<(), u8> {
    // SAFETY: the fault is caught by the fixup table.
    let status = unsafe { probe_divide_by_zero() };
    if status == 0 {
        Ok(())
    } else {
        Err((status - 1) as u8)
    }
}

/// Reads `addr` with no fixup, so a fault there is fatal: the boot's `fault` mode uses it to show
/// the fatal-exception report end to end.
pub fn read_without_fixup(addr: u64) -> u64 {
    // SAFETY: a plain read; on an unmapped address the #PF handler finds no fixup, prints the
    // faulting state and stops the machine, so execution never continues with a bad value.
    unsafe { core::ptr::read_volatile(addr as *const u64) }
}

/// Executes `int3`; the handler counts it and resumes after the instruction.
pub fn breakpoint() {
    // SAFETY: the #BP handler returns to the next instruction.
    unsafe { asm!("int3") };
}

/// Runs `f` on the overflow-test stack. Returns true when it overflowed into the guard page and
/// the resulting double fault was caught.
pub fn run_catching_stack_overflow(stack_top: u64, f: extern "C" fn()) -> bool {
    DOUBLE_FAULT_CATCH.store(true, Ordering::Release);
    // SAFETY: `stack_top` is the top of a dedicated, otherwise unused stack; the catcher saves
    // and restores every callee-saved register, and the double-fault handler unwinds to it.
    let caught = unsafe { run_on_stack_catch_double_fault(stack_top, f) } == 1;
    DOUBLE_FAULT_CATCH.store(false, Ordering::Release);
    caught
}
