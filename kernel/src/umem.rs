//! User memory: the address space bound to each task slot (page-table root and the regions the
//! loader mapped, an `echos_kpolicy::uaccess::AddressSpace`), against which every user pointer
//! is checked before the kernel copies from or to it, and read-only mappings added to it. Every
//! kernel object that takes user buffers reaches them through here.
//!
//! Every function takes the table's lock with interrupts off, so a call may use them from the
//! preemptible part of a syscall (a copy itself runs with interrupts as the caller has them).

use spin::Mutex;

use echos_abi::Errno;
use echos_kpolicy::uaccess::{Access, AddressSpace, Perms};

use crate::arch::{syscall, uspace};
use crate::config::{MAX_REGIONS, MAX_THREADS};

const PAGE: u64 = 4096;

/// The address space a task slot's pointers are checked against.
struct Space {
    root: u64,
    regions: AddressSpace<MAX_REGIONS>,
}

static SPACES: Mutex<[Option<Space>; MAX_THREADS]> = Mutex::new([const { None }; MAX_THREADS]);

fn with<R>(f: impl FnOnce(&mut [Option<Space>; MAX_THREADS]) -> R) -> R {
    x86_64::instructions::interrupts::without_interrupts(|| f(&mut SPACES.lock()))
}

/// Checks `[ptr, ptr + len)` against the task's regions for `access`.
fn check(slot: usize, ptr: u64, len: u64, access: Access) -> Result<(), Errno> {
    with(|spaces| {
        spaces[slot]
            .as_ref()
            .ok_or(Errno::BadPointer)?
            .regions
            .check(ptr, len, access)
            .map(|_| ())
    })
}

/// Binds task slot `slot` to the address space with page-table root `root` and `regions`.
pub fn bind(slot: usize, root: u64, regions: AddressSpace<MAX_REGIONS>) {
    with(|spaces| spaces[slot] = Some(Space { root, regions }));
}

/// Unbinds every slot: no pointer passes a check until the next [`bind`].
pub fn unbind_all() {
    with(|spaces| {
        for s in spaces.iter_mut() {
            *s = None;
        }
    });
}

/// Maps `frames` read-only at `vaddr` in the task's address space (the window's tables exist);
/// mapping the same place again is a no-op. Returns `vaddr`.
pub fn map_read_only(slot: usize, vaddr: u64, frames: &[u64]) -> Result<u64, Errno> {
    with(|spaces| map_in(spaces, slot, vaddr, frames))
}

fn map_in(
    spaces: &mut [Option<Space>; MAX_THREADS],
    slot: usize,
    vaddr: u64,
    frames: &[u64],
) -> Result<u64, Errno> {
    let s = spaces[slot].as_mut().ok_or(Errno::BadPointer)?;
    let len = frames.len() as u64 * PAGE;
    if s.regions.check(vaddr, len, Access::Read).is_ok() {
        return Ok(vaddr);
    }
    s.regions
        .map(vaddr, len, Perms::R)
        .map_err(|_| Errno::NoMemory)?;
    for (i, &frame) in frames.iter().enumerate() {
        uspace::map_user_page(
            s.root,
            vaddr + i as u64 * PAGE,
            frame,
            false,
            false,
            &mut || None,
        )
        .map_err(|_| Errno::NoMemory)?;
    }
    Ok(vaddr)
}

/// Copies `buf.len()` bytes in from user address `ptr` after checking it against the task's
/// address space.
pub fn copy_in(slot: usize, ptr: u64, buf: &mut [u8]) -> Result<(), Errno> {
    check(slot, ptr, buf.len() as u64, Access::Read)?;
    syscall::copy_from_user(buf, ptr);
    Ok(())
}

/// Whether the task in `slot` has `[ptr, ptr + len)` mapped readable.
pub fn is_readable(slot: usize, ptr: u64, len: u64) -> bool {
    check_readable(slot, ptr, len).is_ok()
}

/// Checks that the task may read `len` bytes at `ptr` (before a call reads them piecewise).
pub fn check_readable(slot: usize, ptr: u64, len: u64) -> Result<(), Errno> {
    check(slot, ptr, len, Access::Read)
}

/// Checks that the task may write `len` bytes at `ptr` (before a call changes anything).
pub fn check_writable(slot: usize, ptr: u64, len: u64) -> Result<(), Errno> {
    check(slot, ptr, len, Access::Write)
}

/// Copies `bytes` out to user address `ptr` after checking that the task may write there.
pub fn copy_out(slot: usize, ptr: u64, bytes: &[u8]) -> Result<(), Errno> {
    check(slot, ptr, bytes.len() as u64, Access::Write)?;
    syscall::copy_to_user(ptr, bytes);
    Ok(())
}
