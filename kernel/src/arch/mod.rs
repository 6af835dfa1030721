//! The architecture layer: the only place the kernel uses `unsafe` (boot, descriptor tables,
//! interrupt entry, the local APIC, paging, port and MSR access). Everything above it is safe.
#![allow(unsafe_code)]

pub mod apic;
pub mod boot;
pub mod cpu;
pub mod fpu;
pub mod gdt;
pub mod ktest;
pub mod paging;
pub mod phys;
pub mod qemu;
pub mod serial;
pub mod stacks;
pub mod switch;
pub mod syscall;
pub mod traps;
pub mod tsc;
pub mod uspace;
