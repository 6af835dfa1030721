//! Pure kernel policy for echo-os: what the kernel decides about memory and time, kept free of
//! hardware access so every rule is unit-tested on the host and linked unchanged into ring 0.
//!
//! - [`memmap`]: firmware memory map → sorted, disjoint regions and page-aligned usable ranges.
//! - [`frames`]: physical frame allocator bookkeeping (O(1) alloc/free, double-free detection).
//! - [`pool`]: TLSF reservoir pools (O(1) alloc/free, statistics) and [`stress`], their
//!   occupancy-bucketed cost driver.
//! - [`time`]: TSC ↔ ns conversion, monotonic clock, one-shot/periodic timer queue.
//! - [`sched`]: O(1) fixed-priority ready queues (bitmap + index-linked FIFOs); [`dispatch`]
//!   composes them with periodic budgets and partitions into the scheduler the kernel calls.
//! - [`mutex`]: mutexes with transitive priority inheritance, bounded chains, deadlock detection.
//! - [`periodic`]: periodic task releases, deadlines, budgets, miss/overrun counters, jitter.
//! - [`partition`]: time-partition table (major frame of windows) and its lookup.
//! - [`caps`]: per-task capability tables with generations, rights, derive and revoke.
//! - [`uaccess`]: user pointer/range validation against a task's address-space layout.
//! - [`elf`]: validating ELF64 loader plan for user programs.
//! - [`pipeline`]: stage order within a period (stage k+1 only after stage k).
//!
//! `unsafe` is denied crate-wide; only [`pool`] allows it, to call `rlsf`'s deallocation and to
//! hand out block memory, each block with its `SAFETY:` argument. The other modules forbid it.
#![no_std]
#![deny(unsafe_code)]

pub mod caps;
pub mod dispatch;
pub mod elf;
pub mod frames;
pub mod memmap;
pub mod mutex;
pub mod partition;
pub mod periodic;
pub mod pipeline;
pub mod pool;
pub mod sched;
pub mod stress;
pub mod time;
pub mod uaccess;
