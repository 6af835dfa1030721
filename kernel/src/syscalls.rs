//! Syscall dispatch: decodes every call with `echos_abi::Request` and hands it to the module
//! that owns it — the scheduler (yield, periods, mutexes), the task lifecycle (exit), the
//! reservoir objects and their capabilities — or writes the log line itself; the result or the
//! error code goes back in `rax`. The boot installs [`dispatch`] as the `syscall` entry's handler.

use echos_abi::{Errno, Request, MAX_LOG_LEN};

use crate::arch::syscall::SyscallFrame;
use crate::kprintln;
use crate::{reservoir, sched, task, umem};

/// Copies and checks a log message; the result is the byte count or the refusal.
fn log_write(slot: usize, ptr: u64, len: u64) -> Result<u64, Errno> {
    if len > MAX_LOG_LEN {
        return Err(Errno::BadLength);
    }
    let mut buf = [0u8; MAX_LOG_LEN as usize];
    let buf = &mut buf[..len as usize];
    umem::copy_in(slot, ptr, buf)?;
    let text = core::str::from_utf8(buf).map_err(|_| Errno::BadUtf8)?;
    kprintln!("user[{slot}]: {text}");
    Ok(len)
}

/// The syscall handler (interrupts are off throughout).
pub fn dispatch(frame: &mut SyscallFrame) {
    let args = [
        frame.rdi, frame.rsi, frame.rdx, frame.r10, frame.r8, frame.r9,
    ];
    let Some(slot) = sched::current() else {
        frame.rax = Errno::BadSyscall.code() as u64;
        return;
    };
    let result = match Request::decode(frame.rax, args) {
        Err(e) => Err(e),
        Ok(Request::Exit { code }) => task::exit(code),
        Ok(Request::Yield) => {
            sched::yield_now();
            Ok(0)
        }
        Ok(Request::LogWrite { ptr, len }) => log_write(slot, ptr, len),
        Ok(Request::SleepUntilNextPeriod) => sched::sleep_until_next_period(),
        Ok(Request::MutexLock { mutex }) => sched::lock(mutex).map(|()| 0),
        Ok(Request::MutexUnlock { mutex }) => sched::unlock(mutex).map(|()| 0),
        Ok(Request::ReservoirCreate { args }) => reservoir::create(slot, args),
        Ok(Request::ReservoirStep { args }) => reservoir::step(slot, args),
        Ok(Request::ReservoirReadState { args }) => reservoir::read_state(slot, args),
        Ok(Request::ReservoirModifyWeights { args }) => reservoir::modify_weights(slot, args),
        Ok(Request::ReservoirIntrospect { args }) => reservoir::introspect(slot, args),
        Ok(Request::CapDerive { handle, rights }) => reservoir::derive(slot, handle, rights),
        Ok(Request::CapRevoke { handle }) => reservoir::revoke(slot, handle),
        Ok(Request::ReservoirMapWeights { handle }) => reservoir::map_weights(slot, handle),
    };
    frame.rax = match result {
        Ok(v) => v,
        Err(e) => e.code() as u64,
    };
}
