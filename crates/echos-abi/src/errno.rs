//! Syscall error codes: negative `rax` values, one per distinct reason a call is refused, so a
//! task (and a test) can tell a forged handle from a revoked one or a bad pointer.

use core::fmt;

#[repr(i64)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Errno {
    /// `rax` held a number that names no syscall.
    BadSyscall = -1,
    /// A user pointer points into kernel memory, into an unmapped page, or at memory without the
    /// needed permission (e.g. a write into read-only weights).
    BadPointer = -2,
    /// A length is zero where data is needed, above the call's limit, or makes `ptr + len`
    /// overflow.
    BadLength = -3,
    /// A capability handle whose index names no slot, an empty slot, or reserved bits set.
    BadHandle = -4,
    /// A capability handle whose generation is stale: the capability was revoked.
    Revoked = -5,
    /// The handle is valid but lacks the right the call needs (or claims rights its slot does
    /// not hold).
    PermissionDenied = -6,
    /// A field of an argument struct is out of range (e.g. zero units, unknown enum value,
    /// nonzero padding).
    InvalidArgument = -7,
    /// The kernel pool or a fixed table is full.
    NoMemory = -8,
    /// Taking the mutex would close a cycle of tasks waiting on each other.
    Deadlock = -9,
    /// Priority inheritance would have to follow a longer chain of blocked owners than the
    /// kernel allows; the lock is refused rather than walked without bound.
    ChainTooDeep = -10,
    /// The caller does not hold the mutex it tried to unlock (or already holds the one it tried
    /// to lock).
    NotOwner = -11,
    /// Buffer lengths do not match the reservoir's dimensions.
    DimensionMismatch = -12,
    /// `sleep_until_next_period` from a task that has no period.
    NotPeriodic = -13,
    /// The log message is not valid UTF-8.
    BadUtf8 = -14,
    /// A user program image is not a valid static x86_64 ELF executable for user space
    /// (truncated, wrong class or machine, segments in kernel memory or overlapping, ...).
    BadElf = -15,
}

impl Errno {
    pub const ALL: [Errno; 15] = [
        Self::BadSyscall,
        Self::BadPointer,
        Self::BadLength,
        Self::BadHandle,
        Self::Revoked,
        Self::PermissionDenied,
        Self::InvalidArgument,
        Self::NoMemory,
        Self::Deadlock,
        Self::ChainTooDeep,
        Self::NotOwner,
        Self::DimensionMismatch,
        Self::NotPeriodic,
        Self::BadUtf8,
        Self::BadElf,
    ];

    /// The `rax` value the kernel returns for this error.
    pub const fn code(self) -> i64 {
        self as i64
    }

    /// The error a negative `rax` names; `None` for success values and unknown codes.
    pub fn from_code(code: i64) -> Option<Self> {
        Self::ALL.iter().copied().find(|e| e.code() == code)
    }

    /// Splits a raw `rax` into success value or error, as the user library does after `syscall`.
    /// An unknown negative code comes back as `Err(Err(code))`: reported, never taken for success.
    pub fn decode_return(rax: i64) -> Result<u64, Result<Self, i64>> {
        if rax >= 0 {
            Ok(rax as u64)
        } else {
            Err(Self::from_code(rax).ok_or(rax))
        }
    }
}

impl fmt::Display for Errno {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::BadSyscall => "no syscall has this number",
            Self::BadPointer => {
                "user pointer is outside the task's mapped memory or lacks permission"
            }
            Self::BadLength => "length is zero, above the limit, or overflows the address",
            Self::BadHandle => "capability handle names no capability",
            Self::Revoked => "capability was revoked (stale generation)",
            Self::PermissionDenied => "capability lacks the right this call needs",
            Self::InvalidArgument => "an argument field is out of range",
            Self::NoMemory => "kernel pool or table is full",
            Self::Deadlock => "locking would deadlock",
            Self::ChainTooDeep => "priority-inheritance chain is longer than the kernel allows",
            Self::NotOwner => "caller does not own this mutex (or already owns it)",
            Self::DimensionMismatch => "buffer length does not match the reservoir's dimensions",
            Self::NotPeriodic => "the task has no period",
            Self::BadUtf8 => "log message is not UTF-8",
            Self::BadElf => "program image is not a valid static x86_64 user executable",
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_distinct_negative_and_round_trip() {
        for (i, e) in Errno::ALL.iter().enumerate() {
            assert!(e.code() < 0);
            assert_eq!(Errno::from_code(e.code()), Some(*e));
            for other in &Errno::ALL[i + 1..] {
                assert_ne!(e.code(), other.code());
            }
        }
        assert_eq!(Errno::from_code(0), None);
        assert_eq!(Errno::from_code(-1000), None);
    }

    #[test]
    fn decode_return_separates_success_known_and_unknown_errors() {
        assert_eq!(Errno::decode_return(7), Ok(7));
        assert_eq!(Errno::decode_return(-6), Err(Ok(Errno::PermissionDenied)));
        assert_eq!(Errno::decode_return(-999), Err(Err(-999)));
    }
}
