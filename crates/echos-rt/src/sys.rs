//! The runtime's only `unsafe`: the Linux calls `rustix` does not wrap (scheduling policy,
//! SCHED_DEADLINE's `sched_setattr`, NUMA memory policy, `perf_event_open`) and the shared
//! mapping of a region.
//! Everything else — mlockall, affinity, clocks, shm_open, ftruncate — goes through rustix's
//! safe API. Each function here is a thin wrapper whose safety argument fits in its comment.
#![allow(unsafe_code)]

use std::io;
use std::os::fd::{AsFd, BorrowedFd};
use std::sync::atomic::AtomicU64;

fn check(ret: libc::c_long) -> io::Result<()> {
    if ret < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// SCHED_FIFO at `priority` (1..=99) for the calling thread.
pub fn set_fifo(priority: u8) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: i32::from(priority),
    };
    // SAFETY: `param` is a valid, initialised sched_param that outlives the call; pid 0 names
    // the calling thread. The call reads the struct and touches no other memory of ours.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) }.into())
}

/// SCHED_OTHER (the default time-sharing policy) for the calling thread.
pub fn set_other() -> io::Result<()> {
    let param = libc::sched_param { sched_priority: 0 };
    // SAFETY: as in `set_fifo`.
    check(unsafe { libc::sched_setscheduler(0, libc::SCHED_OTHER, &param) }.into())
}

/// The calling thread's policy (`libc::SCHED_*`) and static priority.
pub fn current_policy() -> io::Result<(i32, i32)> {
    // SAFETY: no pointers; pid 0 is the calling thread.
    let policy = unsafe { libc::sched_getscheduler(0) };
    check(policy.into())?;
    let mut param = libc::sched_param { sched_priority: 0 };
    // SAFETY: `param` is valid for writes of one sched_param for the duration of the call.
    check(unsafe { libc::sched_getparam(0, &mut param) }.into())?;
    Ok((policy, param.sched_priority))
}

/// `struct sched_attr` of sched_setattr(2), version 0 (48 bytes); libc does not define it.
#[repr(C)]
struct SchedAttr {
    size: u32,
    sched_policy: u32,
    sched_flags: u64,
    sched_nice: i32,
    sched_priority: u32,
    sched_runtime: u64,
    sched_deadline: u64,
    sched_period: u64,
}

const SCHED_DEADLINE: u32 = 6;

/// SCHED_DEADLINE with the given runtime ≤ deadline ≤ period (ns) for the calling thread. The
/// kernel refuses it (EPERM) for a thread whose affinity is narrower than its root domain, so
/// it cannot be combined with pinning to one CPU without cpusets.
pub fn set_deadline(runtime_ns: u64, deadline_ns: u64, period_ns: u64) -> io::Result<()> {
    let attr = SchedAttr {
        size: std::mem::size_of::<SchedAttr>() as u32,
        sched_policy: SCHED_DEADLINE,
        sched_flags: 0,
        sched_nice: 0,
        sched_priority: 0,
        sched_runtime: runtime_ns,
        sched_deadline: deadline_ns,
        sched_period: period_ns,
    };
    // SAFETY: `attr` is a fully initialised sched_attr whose `size` field states its true
    // size; the kernel only reads it. pid 0 is the calling thread, flags 0.
    check(unsafe {
        libc::syscall(
            libc::SYS_sched_setattr,
            0 as libc::c_long,
            &attr as *const SchedAttr,
            0 as libc::c_long,
        )
    })
}

const MPOL_BIND: libc::c_long = 2;
/// Bits in the node masks we pass: the machine's nodes must be below this.
pub const MAX_NODES: usize = 64;

/// Binds the calling thread's future allocations to NUMA node `node` (MPOL_BIND).
pub fn bind_memory_to_node(node: usize) -> io::Result<()> {
    if node >= MAX_NODES {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    }
    let mask: u64 = 1 << node;
    // SAFETY: `mask` is one readable u64 (64 bits); maxnode is bits + 1 as the kernel's
    // get_nodes() expects (it decrements it), so it reads exactly that word.
    check(unsafe {
        libc::syscall(
            libc::SYS_set_mempolicy,
            MPOL_BIND,
            &mask as *const u64,
            (MAX_NODES + 1) as libc::c_ulong,
        )
    })
}

/// The calling thread's memory policy mode and node mask.
pub fn memory_policy() -> io::Result<(i32, u64)> {
    let mut mode: libc::c_int = 0;
    let mut mask: u64 = 0;
    // SAFETY: `mode` and `mask` are valid for writes of one int and one u64 (maxnode = 65 bits
    // + 1 as above); addr is null with flags 0, so the kernel reads no address of ours.
    check(unsafe {
        libc::syscall(
            libc::SYS_get_mempolicy,
            &mut mode as *mut libc::c_int,
            &mut mask as *mut u64,
            (MAX_NODES + 1) as libc::c_ulong,
            std::ptr::null_mut::<libc::c_void>(),
            0 as libc::c_ulong,
        )
    })?;
    Ok((mode, mask))
}

/// A shared mapping of a whole shm object, viewed as 64-bit atomic words.
///
/// Every access to region memory goes through `AtomicU64` (relaxed loads and stores compile to
/// plain moves on x86_64), so another process writing the same pages is never a data race in
/// Rust's memory model. Sound because: the mapping is page-aligned (≥ 8), its length is a
/// multiple of 8 (checked), any bit pattern is a valid `AtomicU64`, and the slice borrows
/// `self`, which unmaps only on drop. A process of the same user could shrink the object
/// (ftruncate) under us and turn an access into SIGBUS; regions are created mode 0600, so only
/// their owner (or root) can.
pub struct Mapping {
    ptr: *mut libc::c_void,
    len: usize,
}

// SAFETY: the mapping is plain shared memory accessed only through atomics; it may be used and
// dropped from any thread.
unsafe impl Send for Mapping {}
// SAFETY: as above: `&Mapping` hands out only `&[AtomicU64]`.
unsafe impl Sync for Mapping {}

impl Mapping {
    /// Maps `len` bytes of `fd` shared; `writable` false maps it read-only.
    pub fn shared(fd: BorrowedFd<'_>, len: usize, writable: bool) -> io::Result<Self> {
        if len == 0 || !len.is_multiple_of(8) {
            return Err(io::Error::from_raw_os_error(libc::EINVAL));
        }
        let prot = if writable {
            rustix::mm::ProtFlags::READ | rustix::mm::ProtFlags::WRITE
        } else {
            rustix::mm::ProtFlags::READ
        };
        // SAFETY: a fresh mapping at an address the kernel chooses (null hint) cannot alias
        // any Rust object; `fd` is a valid open descriptor for the call's duration.
        let ptr = unsafe {
            rustix::mm::mmap(
                std::ptr::null_mut(),
                len,
                prot,
                rustix::mm::MapFlags::SHARED,
                fd.as_fd(),
                0,
            )
        }?;
        Ok(Self { ptr, len })
    }

    pub fn words(&self) -> &[AtomicU64] {
        // SAFETY: see the type's comment: aligned, length a multiple of 8, valid for any bits,
        // lives as long as `self`. A read-only mapping is only ever loaded from: the region
        // code takes `&[AtomicU64]` for readers and never stores through a reader's view.
        unsafe { std::slice::from_raw_parts(self.ptr.cast::<AtomicU64>(), self.len / 8) }
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: `ptr`/`len` are exactly what mmap returned, and no borrow of `words()`
        // outlives `self`.
        let _ = unsafe { rustix::mm::munmap(self.ptr, self.len) };
    }
}

/// `struct perf_event_attr` up to `PERF_ATTR_SIZE_VER5` (112 bytes; the kernel accepts any
/// published size and zero-fills the rest). Only the fields set here are named.
#[repr(C)]
#[derive(Default)]
struct PerfEventAttr {
    type_: u32,
    size: u32,
    config: u64,
    sample_period: u64,
    sample_type: u64,
    read_format: u64,
    /// Bit 0 disabled, 1 inherit, 2 pinned, 3 exclusive, 4 exclude_user, 5 exclude_kernel,
    /// 6 exclude_hv, …
    flags: u64,
    wakeup_events: u32,
    bp_type: u32,
    config1: u64,
    config2: u64,
    branch_sample_type: u64,
    sample_regs_user: u64,
    sample_stack_user: u32,
    clockid: i32,
    sample_regs_intr: u64,
    aux_watermark: u32,
    sample_max_stack: u16,
    reserved_2: u16,
}

pub const PERF_TYPE_HARDWARE: u32 = 0;
#[cfg(test)]
pub const PERF_TYPE_SOFTWARE: u32 = 1;
pub const PERF_FORMAT_GROUP: u64 = 1 << 3;
const FLAG_DISABLED: u64 = 1 << 0;
const FLAG_EXCLUDE_KERNEL: u64 = 1 << 5;
const FLAG_EXCLUDE_HV: u64 = 1 << 6;
// <linux/perf_event.h> values libc does not carry.
const PERF_FLAG_FD_CLOEXEC: libc::c_ulong = 1 << 3;
/// `_IO('$', 0)` and `_IO('$', 1)`.
const PERF_EVENT_IOC_ENABLE: libc::c_ulong = 0x2400;
const PERF_EVENT_IOC_DISABLE: libc::c_ulong = 0x2401;
const PERF_IOC_FLAG_GROUP: libc::c_ulong = 1;

/// Opens a counter (`type_` `PERF_TYPE_HARDWARE` with `config` = `PERF_COUNT_HW_*`, or
/// `PERF_TYPE_SOFTWARE` with `PERF_COUNT_SW_*`) for the
/// calling thread, user space only, on any CPU; `group` the leader's fd (-1: a new group, read
/// with `PERF_FORMAT_GROUP`, created disabled). Returns the owned descriptor.
pub fn perf_counter_open(type_: u32, config: u64, group: i32) -> io::Result<std::os::fd::OwnedFd> {
    let leader = group < 0;
    let attr = PerfEventAttr {
        type_,
        size: std::mem::size_of::<PerfEventAttr>() as u32,
        config,
        read_format: PERF_FORMAT_GROUP,
        flags: FLAG_EXCLUDE_KERNEL | FLAG_EXCLUDE_HV | if leader { FLAG_DISABLED } else { 0 },
        ..PerfEventAttr::default()
    };
    // SAFETY: `attr` is a valid, initialised perf_event_attr of the size it declares and
    // outlives the call, which only reads it; pid 0 / cpu -1 is the calling thread on any CPU.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_perf_event_open,
            &attr as *const PerfEventAttr,
            0 as libc::pid_t,
            -1 as libc::c_int,
            group as libc::c_int,
            PERF_FLAG_FD_CLOEXEC,
        )
    };
    check(fd)?;
    // SAFETY: the call returned a new descriptor that nothing else owns.
    Ok(unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd as i32) })
}

/// `PERF_EVENT_IOC_ENABLE`/`DISABLE` on a group leader and all its members.
pub fn perf_group_enable(leader: BorrowedFd<'_>, enable: bool) -> io::Result<()> {
    let req = if enable {
        PERF_EVENT_IOC_ENABLE
    } else {
        PERF_EVENT_IOC_DISABLE
    };
    // SAFETY: no pointer argument (PERF_IOC_FLAG_GROUP is a plain integer); `leader` is a
    // valid perf descriptor for the call's duration.
    let r = unsafe {
        libc::ioctl(
            std::os::fd::AsRawFd::as_raw_fd(&leader),
            req as _,
            PERF_IOC_FLAG_GROUP,
        )
    };
    check(r.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_attr_is_the_kernels_version_5_size() {
        assert_eq!(std::mem::size_of::<PerfEventAttr>(), 112);
    }

    #[test]
    fn sched_attr_is_the_kernels_version_0_size() {
        assert_eq!(std::mem::size_of::<SchedAttr>(), 48);
    }

    #[test]
    fn memory_policy_calls_succeed_on_this_machine() {
        // Node 0 exists on every Linux machine; bind a scratch thread, read it back.
        std::thread::spawn(|| {
            bind_memory_to_node(0).expect("set_mempolicy(MPOL_BIND, node 0)");
            let (mode, mask) = memory_policy().expect("get_mempolicy");
            assert_eq!(mode as libc::c_long, MPOL_BIND);
            assert_eq!(mask, 1);
        })
        .join()
        .unwrap();
        assert!(bind_memory_to_node(MAX_NODES).is_err());
    }
}
