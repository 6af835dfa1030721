//! The kernel's build-time sizes and the user address-space layout, in one place. Modules that
//! must agree on a size (the scheduler's thread slots are also the task slots of the address
//! spaces and capability tables; an address space has room for every reservoir object's
//! weights) read it here instead of from each other, so sizes do not chain module to module.
//! Sizes only one module uses stay with it (the memory pools in `memory`, timers in `time`).

use crate::arch::stacks::THREAD_STACK_COUNT;

/// Threads per scheduler run, one guarded kernel stack each; a user task runs in one, so this
/// is also the number of task slots (address spaces, capability tables).
pub const MAX_THREADS: usize = THREAD_STACK_COUNT;
/// Partition windows per major frame.
pub const MAX_WINDOWS: usize = 4;
/// Priority-inheritance mutexes ring 3 may name (`mutex_lock`, `mutex_unlock`).
pub const USER_MUTEXES: usize = 4;
/// Priority-inheritance mutexes per run: the user ones, then one per reservoir object (held by
/// a call working on that object, so the call can be preempted without another reaching it).
pub const MAX_MUTEXES: usize = USER_MUTEXES + MAX_OBJECTS;

/// Reservoir objects alive at once.
pub const MAX_OBJECTS: usize = 8;
/// Capability slots per task.
pub const CAPS_PER_TASK: usize = 16;

/// Loadable segments per program at most.
pub const MAX_SEGMENTS: usize = 8;
/// Regions per address space: the segments, the stack and mapped reservoir weights.
pub const MAX_REGIONS: usize = MAX_SEGMENTS + 1 + MAX_OBJECTS;

/// The user stack: 16 KiB ending at 513 GiB (PML4 slot 1, above the programs at 512 GiB).
pub const STACK_TOP: u64 = 0x80_4000_0000;
pub const STACK_SIZE: u64 = 16 * 1024;
/// Where reservoir weights are mapped read-only: a 2 MiB window at 514 GiB whose page tables
/// exist from load on, so mapping in a syscall needs no allocation; 256 KiB per object slot.
pub const WEIGHTS_BASE: u64 = 0x80_8000_0000;
pub const WEIGHTS_WINDOW: u64 = 2 << 20;
pub const WEIGHTS_PER_OBJECT: u64 = 256 * 1024;

// Every object slot's weights must fall inside the window whose tables the loader made.
const _: () = assert!(MAX_OBJECTS as u64 * WEIGHTS_PER_OBJECT <= WEIGHTS_WINDOW);
