//! The GDT and TSS: flat kernel segments, and separate interrupt stacks (IST) for the double
//! fault, NMI and machine check, so these run on a known-good stack whatever state the
//! interrupted code left its own stack in.

use spin::Once;
use x86_64::instructions::segmentation::{Segment, CS, DS, ES, SS};
use x86_64::instructions::tables::load_tss;
use x86_64::structures::gdt::{Descriptor, GlobalDescriptorTable, SegmentSelector};
use x86_64::structures::tss::TaskStateSegment;
use x86_64::VirtAddr;

use super::stacks;

/// IST slots (1-based in the IDT, 0-based in the TSS array).
pub const IST_DOUBLE_FAULT: u8 = 1;
pub const IST_NMI: u8 = 2;
pub const IST_MACHINE_CHECK: u8 = 3;

/// The TSS, written after boot only to set `rsp0` (the kernel stack ring 3 enters on).
struct TssCell(core::cell::UnsafeCell<TaskStateSegment>);
// SAFETY: one CPU; `rsp0` is only written with interrupts off (`set_kernel_stack`), and the
// rest only during `init`, before anything else runs.
unsafe impl Sync for TssCell {}
static TSS: TssCell = TssCell(core::cell::UnsafeCell::new(TaskStateSegment::new()));
static GDT: Once<(
    GlobalDescriptorTable,
    SegmentSelector,
    SegmentSelector,
    SegmentSelector,
)> = Once::new();

/// Selectors fixed by the GDT order below (null, kernel code, kernel data, user data, user code,
/// TSS): `syscall` loads CS/SS from STAR[47:32] and `sysret` from STAR[63:48] + 16 / + 8.
pub const KERNEL_CODE: u16 = 0x08;
pub const KERNEL_DATA: u16 = 0x10;
pub const USER_DATA: u16 = 0x18 | 3;
pub const USER_CODE: u16 = 0x20 | 3;

/// The kernel stack ring 3 enters on (interrupts and exceptions through the TSS, `syscall`
/// through the entry stub's copy).
pub fn set_kernel_stack(top: u64) {
    assert!(
        !x86_64::instructions::interrupts::are_enabled(),
        "rsp0 is changed with interrupts off"
    );
    // SAFETY: interrupts are off on the only CPU, so nothing reads the TSS while it changes.
    unsafe { (*TSS.0.get()).privilege_stack_table[0] = VirtAddr::new(top) };
    super::syscall::set_kernel_stack(top);
}

pub fn init() {
    // SAFETY: runs once at boot before interrupts are enabled; nothing else touches the TSS yet.
    let tss = unsafe { &mut *TSS.0.get() };
    {
        tss.interrupt_stack_table[(IST_DOUBLE_FAULT - 1) as usize] =
            VirtAddr::new(stacks::DOUBLE_FAULT_STACK.top());
        tss.interrupt_stack_table[(IST_NMI - 1) as usize] = VirtAddr::new(stacks::NMI_STACK.top());
        tss.interrupt_stack_table[(IST_MACHINE_CHECK - 1) as usize] =
            VirtAddr::new(stacks::MACHINE_CHECK_STACK.top());
    }
    let tss_ptr = TSS.0.get() as *const TaskStateSegment;
    let (gdt, code, data, tss_sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let user_data = gdt.append(Descriptor::user_data_segment());
        let user_code = gdt.append(Descriptor::user_code_segment());
        assert_eq!(
            (code.0, data.0, user_data.0, user_code.0),
            (KERNEL_CODE, KERNEL_DATA, USER_DATA, USER_CODE)
        );
        // SAFETY: the TSS is a static that lives forever; only rsp0 changes later.
        let tss_sel = gdt.append(unsafe { Descriptor::tss_segment_unchecked(tss_ptr) });
        (gdt, code, data, tss_sel)
    });
    gdt.load();
    // SAFETY: the selectors index descriptors of the GDT just loaded, which lives forever.
    unsafe {
        CS::set_reg(*code);
        DS::set_reg(*data);
        ES::set_reg(*data);
        SS::set_reg(*data);
        load_tss(*tss_sel);
    }
}

/// The interrupt stack tops the TSS holds, by IST slot (1..=3), for the tests.
pub fn ist_top(slot: u8) -> u64 {
    // SAFETY: a plain read of IST entries written only during `init`.
    unsafe { (*TSS.0.get()).interrupt_stack_table[(slot - 1) as usize].as_u64() }
}
