//! Pure kernel policy for echo-os: what the kernel decides about memory and time, kept free of
//! hardware access so every rule is unit-tested on the host and linked unchanged into ring 0.
//!
//! - [`memmap`]: firmware memory map → sorted, disjoint regions and page-aligned usable ranges.
//! - [`frames`]: physical frame allocator bookkeeping (O(1) alloc/free, double-free detection).
//! - [`pool`]: TLSF reservoir pools (O(1) alloc/free, statistics) and [`stress`], their
//!   occupancy-bucketed cost driver.
//! - [`time`]: TSC ↔ ns conversion, monotonic clock, one-shot/periodic timer queue.
//!
//! `unsafe` is denied crate-wide; only [`pool`] allows it, to call `rlsf`'s deallocation and to
//! hand out block memory, each block with its `SAFETY:` argument. The other modules forbid it.
#![no_std]
#![deny(unsafe_code)]

pub mod frames;
pub mod memmap;
pub mod pool;
pub mod stress;
pub mod time;
