//! Ring-3 tasks: loading the user programs embedded in the kernel image (ELF, validated by
//! `echos_kpolicy::elf`) into their own address spaces, entering them, and the syscall handler,
//! which decodes every call with `echos_abi::Request` and checks every user pointer against the
//! calling task's address space before touching it.

use spin::Mutex;

use echos_abi::{Errno, Request, MAX_LOG_LEN};
use echos_kpolicy::elf::{self, ElfError};
use echos_kpolicy::frames::FrameAllocator;
use echos_kpolicy::uaccess::{Access, AddressSpace, Perms};

use crate::arch::{syscall, uspace};
use crate::kprintln;
use crate::sched::{self, MAX_THREADS};

/// The user programs, built from user/echos-user by kernel/build.rs.
pub mod programs {
    pub static HELLO: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/hello"));
    pub static BAD_CALLS: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/bad_calls"));
    pub static FAULT: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/fault"));
    pub static YIELDER: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/yielder"));
    pub static RESERVOIR: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/reservoir"));
    pub static PREDICTOR: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/predictor"));
    pub static FPU: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/fpu"));
    pub static MUTEXER: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/mutexer"));
    pub static SPINNER: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/spinner"));
    pub static WEIGHTS: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/weights"));
    pub static STAGE0: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/stage0"));
    pub static STAGE1: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/stage1"));
}

/// Loadable segments per program at most.
const MAX_SEGMENTS: usize = 8;
/// Regions per address space: the segments, the stack and mapped reservoir weights.
const MAX_REGIONS: usize = MAX_SEGMENTS + 1 + crate::reservoir::MAX_OBJECTS;
const PAGE: u64 = 4096;
/// The user stack: 16 KiB ending at 513 GiB (PML4 slot 1, above the programs at 512 GiB).
pub const STACK_TOP: u64 = 0x80_4000_0000;
pub const STACK_SIZE: u64 = 16 * 1024;
/// Where reservoir weights are mapped read-only: a 2 MiB window at 514 GiB whose page tables
/// exist from load on, so mapping in a syscall needs no allocation; 256 KiB per object slot.
pub const WEIGHTS_BASE: u64 = 0x80_8000_0000;
pub const WEIGHTS_PER_OBJECT: u64 = 256 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadError {
    Elf(ElfError),
    OutOfFrames,
    /// A page the program asks for cannot be mapped (kernel slot, or mapped twice).
    Map {
        vaddr: u64,
    },
    Layout,
}

impl core::fmt::Display for LoadError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Self::Elf(e) => write!(f, "bad program image: {e}"),
            Self::OutOfFrames => write!(f, "no frame left for the task's pages"),
            Self::Map { vaddr } => write!(f, "cannot map the page at {vaddr:#x}"),
            Self::Layout => write!(f, "the task's regions overlap or are too many"),
        }
    }
}

impl From<uspace::MapError> for LoadError {
    fn from(e: uspace::MapError) -> Self {
        match e {
            uspace::MapError::OutOfFrames => Self::OutOfFrames,
            uspace::MapError::Refused { vaddr } => Self::Map { vaddr },
        }
    }
}

/// A loaded program: its page-table root, entry point and address-space layout.
pub struct UserTask {
    pub root: u64,
    pub entry: u64,
    pub space: AddressSpace<MAX_REGIONS>,
}

/// Loads `image` into a fresh address space. On an error every frame taken is given back.
pub fn load(frames: &mut FrameAllocator<'static>, image: &[u8]) -> Result<UserTask, LoadError> {
    let parsed = elf::parse::<MAX_SEGMENTS>(image).map_err(LoadError::Elf)?;
    let kernel_root = uspace::kernel_root();
    let mut alloc = || frames.alloc().ok();
    let root = uspace::new_root(&mut alloc, kernel_root)?;
    let mut space = AddressSpace::<MAX_REGIONS>::new();
    let result = (|| {
        for seg in parsed.segments() {
            let first = seg.vaddr & !(PAGE - 1);
            let end = (seg.vaddr + seg.mem_size).div_ceil(PAGE) * PAGE;
            space
                .map(first, end - first, seg.perms)
                .map_err(|_| (LoadError::Layout, None))?;
            let mut page = first;
            while page < end {
                let frame = alloc().ok_or((LoadError::OutOfFrames, None))?;
                uspace::zero_frame(frame);
                // The file bytes that land in this page.
                let file_start = seg.vaddr;
                let file_end = seg.vaddr + seg.file_size;
                let lo = page.max(file_start);
                let hi = (page + PAGE).min(file_end);
                if lo < hi {
                    let off = (seg.file_offset + (lo - file_start)) as usize;
                    let bytes = &image[off..off + (hi - lo) as usize];
                    uspace::fill_frame(frame, (lo - page) as usize, bytes);
                }
                if let Err(e) = uspace::map_user_page(
                    root,
                    page,
                    frame,
                    seg.perms.write,
                    seg.perms.execute,
                    &mut alloc,
                ) {
                    // Not in the tables yet, so the cleanup walk would miss it.
                    return Err((e.into(), Some(frame)));
                }
                page += PAGE;
            }
        }
        uspace::ensure_tables(root, WEIGHTS_BASE, &mut alloc).map_err(|e| (e.into(), None))?;
        let stack_base = STACK_TOP - STACK_SIZE;
        space
            .map(stack_base, STACK_SIZE, Perms::RW)
            .map_err(|_| (LoadError::Layout, None))?;
        let mut page = stack_base;
        while page < STACK_TOP {
            let frame = alloc().ok_or((LoadError::OutOfFrames, None))?;
            uspace::zero_frame(frame);
            if let Err(e) = uspace::map_user_page(root, page, frame, true, false, &mut alloc) {
                return Err((e.into(), Some(frame)));
            }
            page += PAGE;
        }
        Ok(())
    })();
    match result {
        Ok(()) => Ok(UserTask {
            root,
            entry: parsed.entry,
            space,
        }),
        Err((e, unmapped)) => {
            if let Some(f) = unmapped {
                let _ = frames.free(f);
            }
            uspace::for_each_user_frame(root, &mut |f| {
                let _ = frames.free(f);
            });
            Err(e)
        }
    }
}

/// Gives every frame of `task`'s address space back (it must not be running).
pub fn unload(frames: &mut FrameAllocator<'static>, task: UserTask) -> Result<(), String> {
    // Mapped weights belong to their reservoir objects, not to the task.
    uspace::unmap_window(task.root, WEIGHTS_BASE);
    let mut bad = 0usize;
    uspace::for_each_user_frame(task.root, &mut |f| {
        if frames.free(f).is_err() {
            bad += 1;
        }
    });
    if bad == 0 {
        Ok(())
    } else {
        Err(alloc::format!(
            "{bad} frames of the task could not be freed"
        ))
    }
}

use alloc::string::String;

/// What each thread slot runs in ring 3 (entry, argument) and checks pointers against.
struct Slot {
    entry: u64,
    arg: u64,
    root: u64,
    space: AddressSpace<MAX_REGIONS>,
}

static SLOTS: Mutex<[Option<Slot>; MAX_THREADS]> = Mutex::new([const { None }; MAX_THREADS]);

/// Makes thread slot `slot` run `task` with `arg`; returns the thread spec fields to use.
pub fn prepare(slot: usize, task: &UserTask, arg: u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        SLOTS.lock()[slot] = Some(Slot {
            entry: task.entry,
            arg,
            root: task.root,
            space: task.space,
        });
    });
    syscall::set_handler(handle);
}

pub fn clear_slots() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        for s in SLOTS.lock().iter_mut() {
            *s = None;
        }
    });
}

/// Thread entry of a user task: `slot` is its thread slot; the scheduler already switched to
/// its address space and kernel stack.
pub extern "C" fn user_thread(slot: u64) -> ! {
    let start = x86_64::instructions::interrupts::without_interrupts(|| {
        SLOTS
            .lock()
            .get(slot as usize)
            .and_then(|s| s.as_ref().map(|s| (s.entry, s.arg)))
    });
    match start {
        // `_start` is entered as if called: rsp ≡ 8 (mod 16).
        Some((entry, arg)) => syscall::enter_user(entry, STACK_TOP - 8, arg),
        None => sched::exit_with(-1),
    }
}

/// Maps `frames` read-only at `vaddr` in the task's address space (the window's tables exist);
/// mapping the same place again is a no-op. Returns `vaddr`.
pub fn map_read_only(slot: usize, vaddr: u64, frames: &[u64]) -> Result<u64, Errno> {
    let mut slots = SLOTS.lock();
    let s = slots[slot].as_mut().ok_or(Errno::BadPointer)?;
    let len = frames.len() as u64 * PAGE;
    if s.space.check(vaddr, len, Access::Read).is_ok() {
        return Ok(vaddr);
    }
    s.space
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
    SLOTS.lock()[slot]
        .as_ref()
        .ok_or(Errno::BadPointer)?
        .space
        .check(ptr, buf.len() as u64, Access::Read)?;
    syscall::copy_from_user(buf, ptr);
    Ok(())
}

/// Whether the task in `slot` has `[ptr, ptr + len)` mapped readable.
pub fn is_readable(slot: usize, ptr: u64, len: u64) -> bool {
    SLOTS.lock()[slot]
        .as_ref()
        .is_some_and(|s| s.space.check(ptr, len, Access::Read).is_ok())
}

/// Checks that the task may write `len` bytes at `ptr` (before a call changes anything).
pub fn check_writable(slot: usize, ptr: u64, len: u64) -> Result<(), Errno> {
    SLOTS.lock()[slot]
        .as_ref()
        .ok_or(Errno::BadPointer)?
        .space
        .check(ptr, len, Access::Write)
        .map(|_| ())
}

/// Copies `bytes` out to user address `ptr` after checking that the task may write there.
pub fn copy_out(slot: usize, ptr: u64, bytes: &[u8]) -> Result<(), Errno> {
    SLOTS.lock()[slot]
        .as_ref()
        .ok_or(Errno::BadPointer)?
        .space
        .check(ptr, bytes.len() as u64, Access::Write)?;
    syscall::copy_to_user(ptr, bytes);
    Ok(())
}

/// Copies and checks a log message; the result is the byte count or the refusal.
fn log_write(slot: usize, ptr: u64, len: u64) -> Result<u64, Errno> {
    if len > MAX_LOG_LEN {
        return Err(Errno::BadLength);
    }
    let checked = SLOTS.lock()[slot]
        .as_ref()
        .ok_or(Errno::BadPointer)?
        .space
        .check(ptr, len, Access::Read);
    checked?;
    let mut buf = [0u8; MAX_LOG_LEN as usize];
    let buf = &mut buf[..len as usize];
    syscall::copy_from_user(buf, ptr);
    let text = core::str::from_utf8(buf).map_err(|_| Errno::BadUtf8)?;
    kprintln!("user[{slot}]: {text}");
    Ok(len)
}

/// The syscall handler (interrupts are off throughout).
fn handle(frame: &mut syscall::SyscallFrame) {
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let Some(slot) = sched::current() else {
        frame.rax = Errno::BadSyscall.code() as u64;
        return;
    };
    let result = match Request::decode(frame.rax, args) {
        Err(e) => Err(e),
        Ok(Request::Exit { code }) => sched::exit_with(code),
        Ok(Request::Yield) => {
            sched::yield_now();
            Ok(0)
        }
        Ok(Request::LogWrite { ptr, len }) => log_write(slot, ptr, len),
        Ok(Request::SleepUntilNextPeriod) => sched::sleep_until_next_period(),
        Ok(Request::MutexLock { mutex }) => sched::lock(mutex).map(|()| 0),
        Ok(Request::MutexUnlock { mutex }) => sched::unlock(mutex).map(|()| 0),
        Ok(Request::ReservoirCreate { args }) => crate::reservoir::create(slot, args),
        Ok(Request::ReservoirStep { args }) => crate::reservoir::step(slot, args),
        Ok(Request::ReservoirReadState { args }) => crate::reservoir::read_state(slot, args),
        Ok(Request::ReservoirModifyWeights { args }) => {
            crate::reservoir::modify_weights(slot, args)
        }
        Ok(Request::ReservoirIntrospect { args }) => crate::reservoir::introspect(slot, args),
        Ok(Request::CapDerive { handle, rights }) => crate::reservoir::derive(slot, handle, rights),
        Ok(Request::CapRevoke { handle }) => crate::reservoir::revoke(slot, handle),
        Ok(Request::ReservoirMapWeights { handle }) => crate::reservoir::map_weights(slot, handle),
    };
    frame.rax = match result {
        Ok(v) => v,
        Err(e) => e.code() as u64,
    };
}
