//! CPU and interrupt tests: exceptions report and resume through fixups, guard pages and IST
//! stacks are in place, and APIC priorities nest interrupts the right way round.

use alloc::string::String;
use core::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};

use super::{Kernel, FAIL_AFTER_NS};
use crate::arch::{self, apic, gdt, stacks, traps};
use crate::{ensure, kernel_test, time};

const PF: u8 = 14;

fn breakpoint_is_counted_and_resumes(_: &mut Kernel) -> Result<(), String> {
    if arch::cpu::hypervisor_is_kvm() {
        // The nested "kvm-pvm" of these machines aborts the VM on a ring-0 int3.
        return Err(alloc::format!(
            "{}int3 in ring 0 aborts the nested KVM",
            super::SKIPPED
        ));
    }
    let before = traps::breakpoint_count();
    traps::breakpoint();
    traps::breakpoint();
    ensure!(
        traps::breakpoint_count() == before + 2,
        "expected two #BP, counted {}",
        traps::breakpoint_count() - before
    );
    Ok(())
}
kernel_test!(breakpoint_is_counted_and_resumes);

fn invalid_opcode_raises_ud(_: &mut Kernel) -> Result<(), String> {
    let r = traps::probe_invalid_opcode();
    ensure!(r == Err(6), "ud2 gave {r:?}, expected #UD (6)");
    ensure!(
        traps::last_fault().vector == 6,
        "recorded vector {}",
        traps::last_fault().vector
    );
    Ok(())
}
kernel_test!(invalid_opcode_raises_ud);

fn divide_by_zero_raises_de(_: &mut Kernel) -> Result<(), String> {
    let r = traps::probe_divide_error();
    ensure!(r == Err(0), "div by zero gave {r:?}, expected #DE (0)");
    Ok(())
}
kernel_test!(divide_by_zero_raises_de);

fn non_canonical_access_raises_gp(_: &mut Kernel) -> Result<(), String> {
    let r = traps::probe_read(0x8000_0000_0000_0000);
    ensure!(
        r == Err(13),
        "non-canonical read gave {r:?}, expected #GP (13)"
    );
    ensure!(
        traps::last_fault().error_code == 0,
        "error code {:#x}",
        traps::last_fault().error_code
    );
    Ok(())
}
kernel_test!(non_canonical_access_raises_gp);

fn null_read_page_faults_with_address(_: &mut Kernel) -> Result<(), String> {
    let r = traps::probe_read(8);
    ensure!(r == Err(PF), "read of address 8 gave {r:?}, expected #PF");
    let f = traps::last_fault();
    ensure!(f.cr2 == 8, "fault address (cr2) {:#x}, expected 0x8", f.cr2);
    // not present (bit 0 clear), read (bit 1 clear), supervisor (bit 2 clear)
    ensure!(f.error_code & 0b111 == 0, "error code {:#x}", f.error_code);
    ensure!(f.rip != 0, "no instruction pointer recorded");
    Ok(())
}
kernel_test!(null_read_page_faults_with_address);

fn kernel_code_is_read_only(_: &mut Kernel) -> Result<(), String> {
    let k = arch::phys::kernel_layout();
    let target = k.text_start + 64;
    ensure!(
        traps::probe_read(target).is_ok(),
        "kernel code is not readable"
    );
    let r = traps::probe_rewrite(target);
    ensure!(
        r == Err(PF),
        "write to kernel code gave {r:?}, expected #PF"
    );
    let f = traps::last_fault();
    // present (bit 0) + write (bit 1): a protection violation, not a missing page
    ensure!(
        f.error_code & 0b11 == 0b11,
        "error code {:#x}",
        f.error_code
    );
    ensure!(f.cr2 == target, "cr2 {:#x}, expected {target:#x}", f.cr2);
    Ok(())
}
kernel_test!(kernel_code_is_read_only);

fn every_stack_has_an_unmapped_guard_page(_: &mut Kernel) -> Result<(), String> {
    for s in stacks::all() {
        ensure!(
            s.top > s.bottom + 4096 && s.top.is_multiple_of(16),
            "{} stack: top {:#x}",
            s.name,
            s.top
        );
        ensure!(
            s.guard_page + 4096 == s.bottom,
            "{} stack: guard {:#x} not directly below {:#x}",
            s.name,
            s.guard_page,
            s.bottom
        );
        let r = traps::probe_read(s.guard_page + 8);
        ensure!(r == Err(PF), "{} stack guard page read gave {r:?}", s.name);
        ensure!(
            traps::last_fault().cr2 == s.guard_page + 8,
            "{} stack: cr2 {:#x}",
            s.name,
            traps::last_fault().cr2
        );
        ensure!(
            traps::probe_read(s.bottom).is_ok(),
            "{} stack bottom is not mapped",
            s.name
        );
    }
    Ok(())
}
kernel_test!(every_stack_has_an_unmapped_guard_page);

fn nmi_double_fault_machine_check_use_own_stacks(_: &mut Kernel) -> Result<(), String> {
    let expect = [
        (2u8, gdt::IST_NMI, stacks::NMI_STACK.top()),
        (8, gdt::IST_DOUBLE_FAULT, stacks::DOUBLE_FAULT_STACK.top()),
        (
            18,
            gdt::IST_MACHINE_CHECK,
            stacks::MACHINE_CHECK_STACK.top(),
        ),
    ];
    for (vector, slot, top) in expect {
        ensure!(
            traps::idt_ist(vector) == slot,
            "vector {vector} uses IST {}, expected {slot}",
            traps::idt_ist(vector)
        );
        ensure!(
            gdt::ist_top(slot) == top,
            "IST {slot} top {:#x}, expected {top:#x}",
            gdt::ist_top(slot)
        );
    }
    ensure!(
        traps::idt_ist(14) == 0 && traps::idt_ist(0xe0) == 0,
        "ordinary vectors must stay on the current stack"
    );
    Ok(())
}
kernel_test!(nmi_double_fault_machine_check_use_own_stacks);

#[inline(never)]
fn recurse(depth: u64) -> u64 {
    let frame = [depth; 32];
    let frame = core::hint::black_box(frame);
    if core::hint::black_box(depth) == u64::MAX {
        return frame[1];
    }
    recurse(depth + 1).wrapping_add(frame[0])
}

extern "C" fn overflow_stack() {
    core::hint::black_box(recurse(0));
}

fn stack_overflow_hits_guard_page_and_double_faults(_: &mut Kernel) -> Result<(), String> {
    let caught =
        traps::run_catching_stack_overflow(stacks::OVERFLOW_TEST_STACK.top(), overflow_stack);
    ensure!(caught, "the recursion returned instead of overflowing");
    let f = traps::last_fault();
    ensure!(
        f.vector == 8,
        "expected a double fault (8), got vector {}",
        f.vector
    );
    let guard = stacks::OVERFLOW_TEST_STACK.guard_page();
    ensure!(
        (guard..guard + 4096).contains(&f.cr2),
        "fault address {:#x} not in the guard page at {guard:#x}",
        f.cr2
    );
    Ok(())
}
kernel_test!(stack_overflow_hits_guard_page_and_double_faults);

static NMI_RSP: AtomicU64 = AtomicU64::new(0);
fn nmi_hook(frame: &mut traps::TrapFrame) {
    NMI_RSP.store(frame as *const _ as u64, Ordering::SeqCst);
}

fn nmi_runs_on_its_interrupt_stack(_: &mut Kernel) -> Result<(), String> {
    NMI_RSP.store(0, Ordering::SeqCst);
    traps::set_nmi_hook(nmi_hook);
    apic::send_self_nmi();
    let seen = time::spin_until(FAIL_AFTER_NS, || NMI_RSP.load(Ordering::SeqCst) != 0);
    ensure!(seen, "no NMI within 2 s of the self-NMI");
    let rsp = NMI_RSP.load(Ordering::SeqCst);
    let (lo, hi) = (stacks::NMI_STACK.bottom(), stacks::NMI_STACK.top());
    ensure!(
        (lo..hi).contains(&rsp),
        "NMI frame at {rsp:#x}, outside the NMI stack {lo:#x}..{hi:#x}"
    );
    Ok(())
}
kernel_test!(nmi_runs_on_its_interrupt_stack);

// Priority classes are vector >> 4: LOW is class 4, HIGH class 8.
const LOW: u8 = 0x40;
const HIGH: u8 = 0x80;
static STEP: AtomicU32 = AtomicU32::new(0);
static ORDER: [AtomicU32; 4] = [const { AtomicU32::new(0) }; 4];
static LOW_ACTIVE: AtomicBool = AtomicBool::new(false);
static HIGH_ACTIVE: AtomicBool = AtomicBool::new(false);
static NESTED: AtomicBool = AtomicBool::new(false);
static LOW_IN_SERVICE_SEEN: AtomicBool = AtomicBool::new(false);

fn note(event: u32) {
    let i = STEP.fetch_add(1, Ordering::SeqCst) as usize;
    if i < ORDER.len() {
        ORDER[i].store(event, Ordering::SeqCst);
    }
}

fn reset_order() {
    STEP.store(0, Ordering::SeqCst);
    for o in &ORDER {
        o.store(0, Ordering::SeqCst);
    }
    NESTED.store(false, Ordering::SeqCst);
    LOW_IN_SERVICE_SEEN.store(false, Ordering::SeqCst);
}

// Events: 1 low starts, 2 low ends, 3 high starts, 4 high ends.
fn low_raises_high(_: &mut traps::TrapFrame) {
    LOW_ACTIVE.store(true, Ordering::SeqCst);
    LOW_IN_SERVICE_SEEN.store(apic::in_service(LOW), Ordering::SeqCst);
    note(1);
    apic::send_self_ipi(HIGH);
    // Interrupts are on here: the higher class must run before this loop ends.
    let done = time::spin_until(FAIL_AFTER_NS, || STEP.load(Ordering::SeqCst) >= 3);
    let _ = done;
    note(2);
    LOW_ACTIVE.store(false, Ordering::SeqCst);
}
fn high_notes(_: &mut traps::TrapFrame) {
    NESTED.store(LOW_ACTIVE.load(Ordering::SeqCst), Ordering::SeqCst);
    note(3);
    note(4);
}

fn order() -> [u32; 4] {
    [0, 1, 2, 3].map(|i| ORDER[i].load(Ordering::SeqCst))
}

fn higher_priority_interrupt_preempts_lower(_: &mut Kernel) -> Result<(), String> {
    reset_order();
    traps::set_handler(LOW, low_raises_high);
    traps::set_handler(HIGH, high_notes);
    apic::send_self_ipi(LOW);
    let done = time::spin_until(FAIL_AFTER_NS, || STEP.load(Ordering::SeqCst) >= 4);
    ensure!(done, "handlers did not finish; order so far {:?}", order());
    ensure!(
        order() == [1, 3, 4, 2],
        "order {:?}, expected low-start, high-start, high-end, low-end",
        order()
    );
    ensure!(
        NESTED.load(Ordering::SeqCst),
        "the high-priority handler did not run inside the low one"
    );
    ensure!(
        LOW_IN_SERVICE_SEEN.load(Ordering::SeqCst),
        "the low vector was not in service during its handler"
    );
    ensure!(
        !apic::in_service(LOW) && !apic::in_service(HIGH),
        "a vector is still in service after EOI"
    );
    Ok(())
}
kernel_test!(higher_priority_interrupt_preempts_lower);

fn high_raises_low(_: &mut traps::TrapFrame) {
    HIGH_ACTIVE.store(true, Ordering::SeqCst);
    note(3);
    apic::send_self_ipi(LOW);
    // The low class must wait: spin a while with interrupts on and see that it does.
    let early = time::spin_until(200_000, || STEP.load(Ordering::SeqCst) >= 2);
    NESTED.store(early, Ordering::SeqCst);
    note(4);
    HIGH_ACTIVE.store(false, Ordering::SeqCst);
}
fn low_notes(_: &mut traps::TrapFrame) {
    note(1);
    note(2);
}

fn lower_priority_interrupt_waits_for_higher(_: &mut Kernel) -> Result<(), String> {
    reset_order();
    traps::set_handler(LOW, low_notes);
    traps::set_handler(HIGH, high_raises_low);
    apic::send_self_ipi(HIGH);
    let done = time::spin_until(FAIL_AFTER_NS, || STEP.load(Ordering::SeqCst) >= 4);
    ensure!(done, "handlers did not finish; order so far {:?}", order());
    ensure!(
        !NESTED.load(Ordering::SeqCst),
        "the low-priority interrupt ran inside the high one"
    );
    ensure!(
        order() == [3, 4, 1, 2],
        "order {:?}, expected high-start, high-end, low-start, low-end",
        order()
    );
    Ok(())
}
kernel_test!(lower_priority_interrupt_waits_for_higher);

static MASKED_RAN: AtomicU32 = AtomicU32::new(0);
fn count_masked(_: &mut traps::TrapFrame) {
    MASKED_RAN.fetch_add(1, Ordering::SeqCst);
}

fn task_priority_holds_back_lower_classes_until_lowered(_: &mut Kernel) -> Result<(), String> {
    MASKED_RAN.store(0, Ordering::SeqCst);
    traps::set_handler(LOW, count_masked);
    apic::set_task_priority(LOW >> 4);
    apic::send_self_ipi(LOW);
    let ran_while_masked = time::spin_until(200_000, || MASKED_RAN.load(Ordering::SeqCst) > 0);
    // Higher classes still get through while the lower one waits.
    reset_order();
    traps::set_handler(HIGH, high_notes);
    apic::send_self_ipi(HIGH);
    let high_ran = time::spin_until(FAIL_AFTER_NS, || STEP.load(Ordering::SeqCst) >= 2);
    apic::set_task_priority(0);
    let delivered = time::spin_until(FAIL_AFTER_NS, || MASKED_RAN.load(Ordering::SeqCst) > 0);
    ensure!(
        !ran_while_masked,
        "class {} ran with the task priority at its class",
        LOW >> 4
    );
    ensure!(
        high_ran,
        "a higher class was held back by the task priority"
    );
    ensure!(
        delivered,
        "the held-back interrupt was lost after lowering the task priority"
    );
    ensure!(
        MASKED_RAN.load(Ordering::SeqCst) == 1,
        "delivered {} times",
        MASKED_RAN.load(Ordering::SeqCst)
    );
    Ok(())
}
kernel_test!(task_priority_holds_back_lower_classes_until_lowered);
