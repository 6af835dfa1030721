//! The echo-os syscall contract: numbers, error codes, argument structs and capability handles,
//! shared word for word by the kernel and the ring-3 user library so neither can drift.
//!
//! # Calling convention (x86_64, `syscall`/`sysret`)
//!
//! | register | on entry                         | on return                        |
//! |----------|----------------------------------|----------------------------------|
//! | `rax`    | syscall number ([`Syscall`])      | result: `>= 0` success, `< 0` [`Errno`] |
//! | `rdi`    | argument 0                       | preserved                        |
//! | `rsi`    | argument 1                       | preserved                        |
//! | `rdx`    | argument 2                       | preserved                        |
//! | `r10`    | argument 3 (`rcx` is taken by `syscall`) | preserved               |
//! | `r8`     | argument 4                       | preserved                        |
//! | `r9`     | argument 5                       | preserved                        |
//! | `rcx`, `r11` | —                            | clobbered (return `rip`, `rflags`) |
//!
//! Calls with more than a few scalars pass one user pointer in `rdi` to a `#[repr(C)]` argument
//! struct from [`args`] (the capability handle is inside the struct); see each [`Syscall`]
//! variant. [`Request`] decodes the registers into a typed call. The kernel copies the
//! struct's bytes in after checking the pointer against the task's address space and decodes it
//! with the struct's `from_bytes`, which validates every field; it never reads user memory in
//! place, so a second thread cannot change an argument after it was checked.
//!
//! All multi-byte fields are little-endian. Sizes and alignments are fixed by `const` asserts.
#![no_std]
#![forbid(unsafe_code)]

pub mod args;
pub mod cap;
pub mod errno;
pub mod introspect;
pub mod request;

pub use args::*;
pub use cap::{CapHandle, Rights};
pub use errno::Errno;
pub use introspect::{EchoContext, ReservoirDebugInfo, Topology};
pub use request::Request;

/// First address above the user half: user pointers and ELF segments must end at or below it.
/// On x86_64 with 4-level paging the lower canonical half ends here; everything above is kernel.
pub const USER_SPACE_END: u64 = 0x0000_8000_0000_0000;

/// Longest message one `LogWrite` accepts; longer ones are refused, not truncated, so a task
/// learns its log line was not written whole.
pub const MAX_LOG_LEN: u64 = 512;

/// Largest reservoir a task may create; bounds the kernel's per-step time and pool use.
pub const MAX_RESERVOIR_UNITS: u32 = 1024;
/// Largest input and output width of a reservoir.
pub const MAX_RESERVOIR_IO: u32 = 64;

/// Syscall numbers (`rax` on entry). Numbers are stable: new calls get new numbers.
#[repr(u64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Syscall {
    /// `exit(code: rdi)`: stop the calling task; never returns.
    Exit = 0,
    /// `yield()`: give the processor to the next ready task of the same priority.
    Yield = 1,
    /// `sleep_until_next_period()`: a periodic task finished this period's work; it runs again
    /// at its next release. Returns the number of the period it wakes in.
    SleepUntilNextPeriod = 2,
    /// `log_write(ptr: rdi, len: rsi)`: write UTF-8 bytes to the kernel log (at most
    /// [`MAX_LOG_LEN`]). Returns the number of bytes written.
    LogWrite = 3,
    /// `mutex_lock(mutex: rdi)`: take a kernel mutex, blocking with priority inheritance.
    MutexLock = 4,
    /// `mutex_unlock(mutex: rdi)`: release a mutex the caller holds.
    MutexUnlock = 5,
    /// `reservoir_create(args: rdi -> ReservoirCreateArgs)`: returns a [`CapHandle`] with all
    /// rights as a non-negative `i64`.
    ReservoirCreate = 6,
    /// `reservoir_step(args: rdi -> ReservoirStepArgs)`: needs [`Rights::STEP`].
    ReservoirStep = 7,
    /// `reservoir_read_state(args: rdi -> ReservoirReadStateArgs)`: needs [`Rights::READ`].
    ReservoirReadState = 8,
    /// `reservoir_modify_weights(args: rdi -> ReservoirModifyWeightsArgs)`: needs
    /// [`Rights::WRITE`].
    ReservoirModifyWeights = 9,
    /// `reservoir_introspect(args: rdi -> IntrospectArgs)`: fills a [`ReservoirDebugInfo`];
    /// needs [`Rights::READ`].
    ReservoirIntrospect = 10,
    /// `reservoir_map_weights(handle: rdi)`: maps the weights read-only into the caller and
    /// returns their user address; needs [`Rights::MAP`].
    ReservoirMapWeights = 11,
    /// `cap_derive(handle: rdi, rights: rsi)`: a new handle to the same object with a subset
    /// of the rights.
    CapDerive = 12,
    /// `cap_revoke(handle: rdi)`: invalidate the handle and every handle derived from its slot.
    CapRevoke = 13,
}

impl Syscall {
    /// Every syscall, in number order.
    pub const ALL: [Syscall; 14] = [
        Self::Exit,
        Self::Yield,
        Self::SleepUntilNextPeriod,
        Self::LogWrite,
        Self::MutexLock,
        Self::MutexUnlock,
        Self::ReservoirCreate,
        Self::ReservoirStep,
        Self::ReservoirReadState,
        Self::ReservoirModifyWeights,
        Self::ReservoirIntrospect,
        Self::ReservoirMapWeights,
        Self::CapDerive,
        Self::CapRevoke,
    ];
}

impl TryFrom<u64> for Syscall {
    type Error = Errno;

    /// Unknown numbers are refused with [`Errno::BadSyscall`].
    fn try_from(number: u64) -> Result<Self, Errno> {
        usize::try_from(number)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
            .ok_or(Errno::BadSyscall)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_round_trip_and_unknown_ones_are_refused() {
        for (i, call) in Syscall::ALL.iter().enumerate() {
            assert_eq!(*call as u64, i as u64, "ALL must be in number order");
            assert_eq!(Syscall::try_from(i as u64), Ok(*call));
        }
        for bad in [Syscall::ALL.len() as u64, 99, u64::MAX, 1 << 32] {
            assert_eq!(Syscall::try_from(bad), Err(Errno::BadSyscall));
        }
    }
}
