//! Per-task page tables: the kernel's identity map shared (supervisor-only) in PML4 slot 0, and
//! the task's own pages, user-accessible, elsewhere in the lower half.

use x86_64::registers::control::Cr3;

const PRESENT: u64 = 1 << 0;
const WRITABLE: u64 = 1 << 1;
const USER: u64 = 1 << 2;
const NO_EXECUTE: u64 = 1 << 63;
const ADDR_MASK: u64 = 0x000f_ffff_ffff_f000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MapError {
    OutOfFrames,
    /// The address is in PML4 slot 0 (the kernel's) or the upper half, or already mapped.
    Refused {
        vaddr: u64,
    },
}

fn table(frame: u64) -> &'static mut [u64; 512] {
    // SAFETY: page-table frames are identity-mapped RAM below 4 GiB, owned by this address
    // space alone (handed out by the frame allocator).
    unsafe { &mut *(frame as *mut [u64; 512]) }
}

/// Zeroes a frame through the identity map.
pub fn zero_frame(frame: u64) {
    // SAFETY: `frame` was just allocated (identity-mapped RAM, owned by the caller).
    unsafe { core::ptr::write_bytes(frame as *mut u8, 0, 4096) };
}

/// Copies `bytes` into frame `frame` at `offset` through the identity map.
pub fn fill_frame(frame: u64, offset: usize, bytes: &[u8]) {
    assert!(offset + bytes.len() <= 4096, "copy past the frame");
    // SAFETY: inside one identity-mapped frame the caller owns (checked bound above).
    unsafe {
        core::ptr::copy_nonoverlapping(bytes.as_ptr(), (frame as *mut u8).add(offset), bytes.len())
    };
}

pub fn kernel_root() -> u64 {
    Cr3::read_raw().0.start_address().as_u64()
}

/// A new PML4 sharing the kernel's slot 0.
pub fn new_root(alloc: &mut dyn FnMut() -> Option<u64>, kernel_root: u64) -> Result<u64, MapError> {
    let root = alloc().ok_or(MapError::OutOfFrames)?;
    zero_frame(root);
    table(root)[0] = table(kernel_root)[0];
    Ok(root)
}

/// Maps the 4 KiB page at `vaddr` to `frame` for ring 3.
pub fn map_user_page(
    root: u64,
    vaddr: u64,
    frame: u64,
    writable: bool,
    executable: bool,
    alloc: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), MapError> {
    let idx = [
        (vaddr >> 39) & 511,
        (vaddr >> 30) & 511,
        (vaddr >> 21) & 511,
        (vaddr >> 12) & 511,
    ];
    if idx[0] == 0 || vaddr >= echos_abi::USER_SPACE_END || vaddr & 0xfff != 0 {
        return Err(MapError::Refused { vaddr });
    }
    let mut t = root;
    for &i in &idx[..3] {
        let e = &mut table(t)[i as usize];
        if *e & PRESENT == 0 {
            let f = alloc().ok_or(MapError::OutOfFrames)?;
            zero_frame(f);
            *e = f | PRESENT | WRITABLE | USER;
        }
        t = *e & ADDR_MASK;
    }
    let pte = &mut table(t)[idx[3] as usize];
    if *pte & PRESENT != 0 {
        return Err(MapError::Refused { vaddr });
    }
    let mut flags = PRESENT | USER;
    if writable {
        flags |= WRITABLE;
    }
    if !executable {
        flags |= NO_EXECUTE;
    }
    *pte = frame | flags;
    Ok(())
}

/// Every frame the user half of `root` uses (tables and pages), for freeing the space.
pub fn for_each_user_frame(root: u64, f: &mut dyn FnMut(u64)) {
    for i4 in 1..256 {
        let e4 = table(root)[i4];
        if e4 & PRESENT == 0 {
            continue;
        }
        let pdpt = e4 & ADDR_MASK;
        for e3 in table(pdpt).iter().filter(|e| *e & PRESENT != 0) {
            let pd = e3 & ADDR_MASK;
            for e2 in table(pd).iter().filter(|e| *e & PRESENT != 0) {
                let pt = e2 & ADDR_MASK;
                for e1 in table(pt).iter().filter(|e| *e & PRESENT != 0) {
                    f(e1 & ADDR_MASK);
                }
                f(pt);
            }
            f(pd);
        }
        f(pdpt);
    }
    f(root);
}

/// Switches to the address space `root` (no-op when already there).
pub fn activate(root: u64) {
    let (current, flags) = Cr3::read_raw();
    if current.start_address().as_u64() != root {
        // SAFETY: every root in use maps the kernel identically in slot 0 (`new_root`), so the
        // kernel's code, data and stacks stay where they are across the switch.
        unsafe {
            Cr3::write_raw(
                x86_64::structures::paging::PhysFrame::containing_address(x86_64::PhysAddr::new(
                    root,
                )),
                flags,
            )
        };
    }
}

/// One page of kernel memory that may also be mapped into tasks (reservoir weights): page-aligned
/// so a page of it is a whole frame, which the identity map makes its own physical address.
#[repr(C, align(4096))]
#[derive(Clone, Copy)]
pub struct Page(pub [u8; 4096]);

// SAFETY: a plain byte array with no padding (size 4096, a multiple of its alignment); every bit
// pattern is valid and all-zero is a valid value.
unsafe impl bytemuck::Zeroable for Page {}
// SAFETY: as above; `Copy`, `repr(C)`, no padding, no pointers.
unsafe impl bytemuck::Pod for Page {}

/// Creates the page tables down to the last level for the 2 MiB window at `base` (so later
/// mappings there need no allocation).
pub fn ensure_tables(
    root: u64,
    base: u64,
    alloc: &mut dyn FnMut() -> Option<u64>,
) -> Result<(), MapError> {
    let idx = [(base >> 39) & 511, (base >> 30) & 511, (base >> 21) & 511];
    if idx[0] == 0 || base >= echos_abi::USER_SPACE_END || base & 0x1f_ffff != 0 {
        return Err(MapError::Refused { vaddr: base });
    }
    let mut t = root;
    for &i in &idx {
        let e = &mut table(t)[i as usize];
        if *e & PRESENT == 0 {
            let f = alloc().ok_or(MapError::OutOfFrames)?;
            zero_frame(f);
            *e = f | PRESENT | WRITABLE | USER;
        }
        t = *e & ADDR_MASK;
    }
    Ok(())
}

/// Removes every page mapped in the 2 MiB window at `base` without freeing the frames (they
/// belong to someone else, e.g. a reservoir object's weights).
pub fn unmap_window(root: u64, base: u64) {
    let idx = [(base >> 39) & 511, (base >> 30) & 511, (base >> 21) & 511];
    let mut t = root;
    for &i in &idx {
        let e = table(t)[i as usize];
        if e & PRESENT == 0 {
            return;
        }
        t = e & ADDR_MASK;
    }
    for pte in table(t).iter_mut() {
        *pte = 0;
    }
    flush_tlb();
}

fn flush_tlb() {
    let (frame, flags) = Cr3::read_raw();
    // SAFETY: reloading the current CR3 only drops cached translations.
    unsafe { Cr3::write_raw(frame, flags) };
}
