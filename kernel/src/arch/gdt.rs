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

static TSS: Once<TaskStateSegment> = Once::new();
static GDT: Once<(
    GlobalDescriptorTable,
    SegmentSelector,
    SegmentSelector,
    SegmentSelector,
)> = Once::new();

pub fn init() {
    let tss = TSS.call_once(|| {
        let mut tss = TaskStateSegment::new();
        tss.interrupt_stack_table[(IST_DOUBLE_FAULT - 1) as usize] =
            VirtAddr::new(stacks::DOUBLE_FAULT_STACK.top());
        tss.interrupt_stack_table[(IST_NMI - 1) as usize] = VirtAddr::new(stacks::NMI_STACK.top());
        tss.interrupt_stack_table[(IST_MACHINE_CHECK - 1) as usize] =
            VirtAddr::new(stacks::MACHINE_CHECK_STACK.top());
        tss
    });
    let (gdt, code, data, tss_sel) = GDT.call_once(|| {
        let mut gdt = GlobalDescriptorTable::new();
        let code = gdt.append(Descriptor::kernel_code_segment());
        let data = gdt.append(Descriptor::kernel_data_segment());
        let tss_sel = gdt.append(Descriptor::tss_segment(tss));
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
    TSS.get()
        .map(|t| t.interrupt_stack_table[(slot - 1) as usize].as_u64())
        .unwrap_or(0)
}
