//! A syscall as a typed value: the kernel's entry decodes `rax` and the argument registers into a
//! [`Request`] (refusing unknown numbers and malformed scalars before any handler runs), and the
//! user library encodes a `Request` into registers, so both sides use one mapping.

use crate::{CapHandle, Errno, Rights, Syscall, MAX_LOG_LEN};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Request {
    Exit {
        code: i64,
    },
    Yield,
    SleepUntilNextPeriod,
    LogWrite {
        ptr: u64,
        len: u64,
    },
    MutexLock {
        mutex: u16,
    },
    MutexUnlock {
        mutex: u16,
    },
    /// The pointer is to the call's argument struct; it is checked against the address space
    /// and the struct decoded by the handler.
    ReservoirCreate {
        args: u64,
    },
    ReservoirStep {
        args: u64,
    },
    ReservoirReadState {
        args: u64,
    },
    ReservoirModifyWeights {
        args: u64,
    },
    ReservoirIntrospect {
        args: u64,
    },
    ReservoirMapWeights {
        handle: CapHandle,
    },
    CapDerive {
        handle: CapHandle,
        rights: Rights,
    },
    CapRevoke {
        handle: CapHandle,
    },
}

fn mutex_id(raw: u64) -> Result<u16, Errno> {
    u16::try_from(raw).map_err(|_| Errno::InvalidArgument)
}

impl Request {
    /// Decodes `rax` and `[rdi, rsi, rdx, r10, r8, r9]`. Registers a call does not use are
    /// ignored.
    pub fn decode(number: u64, a: [u64; 6]) -> Result<Self, Errno> {
        Ok(match Syscall::try_from(number)? {
            Syscall::Exit => Self::Exit { code: a[0] as i64 },
            Syscall::Yield => Self::Yield,
            Syscall::SleepUntilNextPeriod => Self::SleepUntilNextPeriod,
            Syscall::LogWrite => {
                if a[1] == 0 || a[1] > MAX_LOG_LEN {
                    return Err(Errno::BadLength);
                }
                Self::LogWrite {
                    ptr: a[0],
                    len: a[1],
                }
            }
            Syscall::MutexLock => Self::MutexLock {
                mutex: mutex_id(a[0])?,
            },
            Syscall::MutexUnlock => Self::MutexUnlock {
                mutex: mutex_id(a[0])?,
            },
            Syscall::ReservoirCreate => Self::ReservoirCreate { args: a[0] },
            Syscall::ReservoirStep => Self::ReservoirStep { args: a[0] },
            Syscall::ReservoirReadState => Self::ReservoirReadState { args: a[0] },
            Syscall::ReservoirModifyWeights => Self::ReservoirModifyWeights { args: a[0] },
            Syscall::ReservoirIntrospect => Self::ReservoirIntrospect { args: a[0] },
            Syscall::ReservoirMapWeights => Self::ReservoirMapWeights {
                handle: CapHandle::from_raw(a[0])?,
            },
            Syscall::CapDerive => Self::CapDerive {
                handle: CapHandle::from_raw(a[0])?,
                rights: Rights::from_bits(a[1])?,
            },
            Syscall::CapRevoke => Self::CapRevoke {
                handle: CapHandle::from_raw(a[0])?,
            },
        })
    }

    /// The registers the user library loads before `syscall`: `(rax, [rdi, rsi, rdx, r10, r8,
    /// r9])`.
    pub fn encode(&self) -> (u64, [u64; 6]) {
        let (call, a0, a1) = match *self {
            Self::Exit { code } => (Syscall::Exit, code as u64, 0),
            Self::Yield => (Syscall::Yield, 0, 0),
            Self::SleepUntilNextPeriod => (Syscall::SleepUntilNextPeriod, 0, 0),
            Self::LogWrite { ptr, len } => (Syscall::LogWrite, ptr, len),
            Self::MutexLock { mutex } => (Syscall::MutexLock, mutex as u64, 0),
            Self::MutexUnlock { mutex } => (Syscall::MutexUnlock, mutex as u64, 0),
            Self::ReservoirCreate { args } => (Syscall::ReservoirCreate, args, 0),
            Self::ReservoirStep { args } => (Syscall::ReservoirStep, args, 0),
            Self::ReservoirReadState { args } => (Syscall::ReservoirReadState, args, 0),
            Self::ReservoirModifyWeights { args } => (Syscall::ReservoirModifyWeights, args, 0),
            Self::ReservoirIntrospect { args } => (Syscall::ReservoirIntrospect, args, 0),
            Self::ReservoirMapWeights { handle } => {
                (Syscall::ReservoirMapWeights, handle.to_raw(), 0)
            }
            Self::CapDerive { handle, rights } => {
                (Syscall::CapDerive, handle.to_raw(), rights.bits() as u64)
            }
            Self::CapRevoke { handle } => (Syscall::CapRevoke, handle.to_raw(), 0),
        };
        (call as u64, [a0, a1, 0, 0, 0, 0])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_request_round_trips_through_registers() {
        let h = CapHandle::new(5, 77, Rights::READ | Rights::MAP);
        let all = [
            Request::Exit { code: -3 },
            Request::Yield,
            Request::SleepUntilNextPeriod,
            Request::LogWrite {
                ptr: 0x1000,
                len: MAX_LOG_LEN,
            },
            Request::MutexLock { mutex: 9 },
            Request::MutexUnlock { mutex: u16::MAX },
            Request::ReservoirCreate { args: 0x2000 },
            Request::ReservoirStep { args: 0x2008 },
            Request::ReservoirReadState { args: 0x2010 },
            Request::ReservoirModifyWeights { args: 0x2018 },
            Request::ReservoirIntrospect { args: 0x2020 },
            Request::ReservoirMapWeights { handle: h },
            Request::CapDerive {
                handle: h,
                rights: Rights::READ,
            },
            Request::CapRevoke { handle: h },
        ];
        assert_eq!(all.len(), Syscall::ALL.len());
        for r in all {
            let (n, a) = r.encode();
            assert_eq!(Request::decode(n, a), Ok(r));
        }
    }

    #[test]
    fn malformed_registers_are_refused() {
        let z = [0u64; 6];
        assert_eq!(Request::decode(14, z), Err(Errno::BadSyscall));
        assert_eq!(Request::decode(u64::MAX, z), Err(Errno::BadSyscall));
        let log = Syscall::LogWrite as u64;
        assert_eq!(
            Request::decode(log, [0x1000, 0, 0, 0, 0, 0]),
            Err(Errno::BadLength)
        );
        assert_eq!(
            Request::decode(log, [0x1000, MAX_LOG_LEN + 1, 0, 0, 0, 0]),
            Err(Errno::BadLength)
        );
        let lock = Syscall::MutexLock as u64;
        assert_eq!(
            Request::decode(lock, [1 << 16, 0, 0, 0, 0, 0]),
            Err(Errno::InvalidArgument)
        );
        let revoke = Syscall::CapRevoke as u64;
        assert_eq!(
            Request::decode(revoke, [1 << 60, 0, 0, 0, 0, 0]),
            Err(Errno::BadHandle)
        );
        let derive = Syscall::CapDerive as u64;
        assert_eq!(
            Request::decode(derive, [1, 0x10, 0, 0, 0, 0]),
            Err(Errno::InvalidArgument)
        );
    }
}
