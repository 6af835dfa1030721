//! The kernel's page tables: an identity map of the first 4 GiB with 2 MiB pages, except the
//! first 2 MiB chunks holding the kernel image, which use 4 KiB pages so that
//! - page 0 is unmapped (a null dereference faults),
//! - every stack's guard page is unmapped (an overflow faults instead of corrupting memory),
//! - code is read-only and executable, read-only data is read-only, the rest is non-executable.

use super::phys::{kernel_layout, IDENTITY_LIMIT};
use super::stacks;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const HUGE: u64 = 1 << 7;
const NO_EXECUTE: u64 = 1 << 63;
const PAGE: u64 = 4096;
const HUGE_PAGE: u64 = 2 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PagingError {
    /// No frame left for a page table.
    OutOfFrames,
}

/// What `init` built, for the boot report and the tests.
#[derive(Debug, Clone, Copy)]
pub struct PagingReport {
    pub table_frames: usize,
    #[expect(
        dead_code,
        reason = "kept in the report; no test or boot line reads it yet"
    )]
    pub small_page_limit: u64,
    pub guard_pages: usize,
}

fn table(frame: u64) -> &'static mut [u64; 512] {
    // SAFETY: `frame` was just handed out by the frame allocator for this table alone, is
    // identity-mapped under the current tables, page-aligned, and zeroed before use.
    unsafe {
        core::ptr::write_bytes(frame as *mut u8, 0, PAGE as usize);
        &mut *(frame as *mut [u64; 512])
    }
}

/// Builds the tables with frames from `alloc_frame` and switches CR3 to them.
pub fn init(
    nx: bool,
    alloc_frame: &mut dyn FnMut() -> Option<u64>,
) -> Result<PagingReport, PagingError> {
    let nx_bit = if nx { NO_EXECUTE } else { 0 };
    let k = kernel_layout();
    let small_limit = k.end.div_ceil(HUGE_PAGE) * HUGE_PAGE;
    let mut frames = 0usize;
    let mut new_table = || {
        frames += 1;
        alloc_frame().ok_or(PagingError::OutOfFrames)
    };
    let pml4_frame = new_table()?;
    let pml4 = table(pml4_frame);
    let pdpt_frame = new_table()?;
    let pdpt = table(pdpt_frame);
    pml4[0] = pdpt_frame | PRESENT | WRITABLE;
    let guards = stacks::all();
    for (gi, pdpt_entry) in pdpt
        .iter_mut()
        .enumerate()
        .take((IDENTITY_LIMIT >> 30) as usize)
    {
        let pd_frame = new_table()?;
        let pd = table(pd_frame);
        *pdpt_entry = pd_frame | PRESENT | WRITABLE;
        for (di, pd_entry) in pd.iter_mut().enumerate() {
            let base = ((gi as u64) << 30) | ((di as u64) << 21);
            if base >= small_limit {
                *pd_entry = base | PRESENT | WRITABLE | HUGE | nx_bit;
                continue;
            }
            let pt_frame = new_table()?;
            let pt = table(pt_frame);
            *pd_entry = pt_frame | PRESENT | WRITABLE;
            for (ti, pt_entry) in pt.iter_mut().enumerate() {
                let addr = base | ((ti as u64) << 12);
                let flags = if addr == 0 || guards.iter().any(|s| s.guard_page == addr) {
                    0
                } else if addr >= k.start && addr < k.text_end {
                    PRESENT
                } else if addr >= k.rodata_start && addr < k.rodata_end {
                    PRESENT | nx_bit
                } else {
                    PRESENT | WRITABLE | nx_bit
                };
                *pt_entry = if flags == 0 { 0 } else { addr | flags };
            }
        }
    }
    // SAFETY: the new tables map everything the kernel touches exactly as the boot tables did
    // (identity, first 4 GiB), minus page 0 and the guard pages, which nothing uses; the kernel
    // image keeps its addresses, so execution continues seamlessly after the switch.
    unsafe {
        core::arch::asm!("mov cr3, {}", in(reg) pml4_frame, options(nostack, preserves_flags));
    }
    Ok(PagingReport {
        table_frames: frames,
        small_page_limit: small_limit,
        guard_pages: guards.len(),
    })
}
