//! Task lifecycle: the user programs embedded in the kernel image, loading one (ELF validated by
//! `echos_kpolicy::elf`) into a fresh address space and unloading it, binding a loaded program
//! to a thread slot, the thread entry that enters ring 3, and a task's end — by `exit` or by a
//! fault — which revokes its capabilities before the scheduler stops its thread.

use alloc::string::String;
use spin::Mutex;

use echos_kpolicy::elf::{self, ElfError};
use echos_kpolicy::frames::FrameAllocator;
use echos_kpolicy::uaccess::{AddressSpace, Perms};

use crate::arch::traps::TrapFrame;
use crate::arch::{syscall, uspace};
use crate::config::{MAX_REGIONS, MAX_SEGMENTS, MAX_THREADS, STACK_SIZE, STACK_TOP, WEIGHTS_BASE};
use crate::sched::{self, UserFault};
use crate::{reservoir, umem};

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
    pub static HOSTILE: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/hostile"));
    pub static HEAVY: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/heavy"));
    pub static REFUSALS: &[u8] = include_bytes!(concat!(env!("ECHOS_USER_BIN"), "/refusals"));
}

const PAGE: u64 = 4096;

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

/// Where each thread slot enters ring 3 (entry, argument).
struct Start {
    entry: u64,
    arg: u64,
}

static STARTS: Mutex<[Option<Start>; MAX_THREADS]> = Mutex::new([const { None }; MAX_THREADS]);

/// Makes thread slot `slot` run `task` with `arg`: its entry for [`user_thread`], its address
/// space for the pointer checks of `umem`.
pub fn prepare(slot: usize, task: &UserTask, arg: u64) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        STARTS.lock()[slot] = Some(Start {
            entry: task.entry,
            arg,
        });
    });
    umem::bind(slot, task.root, task.space);
}

pub fn clear_slots() {
    x86_64::instructions::interrupts::without_interrupts(|| {
        for s in STARTS.lock().iter_mut() {
            *s = None;
        }
    });
    umem::unbind_all();
}

/// Thread entry of a user task: `slot` is its thread slot; the scheduler already switched to
/// its address space and kernel stack.
pub extern "C" fn user_thread(slot: u64) -> ! {
    let start = x86_64::instructions::interrupts::without_interrupts(|| {
        STARTS
            .lock()
            .get(slot as usize)
            .and_then(|s| s.as_ref().map(|s| (s.entry, s.arg)))
    });
    match start {
        // `_start` is entered as if called: rsp ≡ 8 (mod 16).
        Some((entry, arg)) => syscall::enter_user(entry, STACK_TOP - 8, arg),
        None => exit(-1),
    }
}

/// The running task ends with `code` (its `exit` call): its capabilities go, and everything
/// derived from them, then the scheduler stops its thread.
pub fn exit(code: i64) -> ! {
    release_current();
    sched::exit_with(code)
}

/// A user task raised an exception (the trap layer's user-fault hook, set at boot): it is
/// stopped as by [`exit`] and the fault recorded; the kernel and the other tasks go on. Runs on
/// the task's kernel stack with interrupts off and never returns.
pub fn user_fault(frame: &TrapFrame, cr2: u64) {
    release_current();
    sched::stop_faulted(UserFault {
        vector: frame.vector,
        error_code: frame.error_code,
        rip: frame.rip,
        cr2,
    })
}

fn release_current() {
    x86_64::instructions::interrupts::disable();
    if let Some(slot) = sched::current() {
        reservoir::task_stopped(slot);
    }
}
