//! Syscall dispatch: decodes every call with `echos_abi::Request` and hands it to the module
//! that owns it — the scheduler (yield, periods, mutexes), the task lifecycle (exit), the
//! reservoir objects and their capabilities — or writes the log line itself; the result or the
//! error code goes back in `rax`. The boot installs [`dispatch`] as the `syscall` entry's handler.
//!
//! A test may have the results of one task's calls tallied ([`tally_start`]): per error code,
//! as returned, with the longest call — what the hostile-task test compares with the task's own
//! count.

use core::fmt;

use spin::Mutex;

use echos_abi::{Errno, Request, MAX_LOG_LEN};

use crate::arch::syscall::SyscallFrame;
use crate::config::USER_MUTEXES;
use crate::kprintln;
use crate::{reservoir, sched, task, time, umem};

/// A user's log line as it goes to the console, `user[slot]: text`, with control characters
/// (line breaks above all) and backslashes escaped as `\u{..}` and `\\`: a task can neither
/// start a console line of its own — forging the `test ... ok` or `metric` lines `cargo xtask`
/// reads — nor send terminal control sequences.
pub struct LogLine<'a> {
    pub slot: usize,
    pub text: &'a str,
}

impl fmt::Display for LogLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "user[{}]: ", self.slot)?;
        let mut rest = self.text;
        while let Some(at) = rest.find(|c: char| c == '\\' || c.is_control()) {
            f.write_str(&rest[..at])?;
            let c = rest[at..].chars().next().unwrap_or('\\');
            if c == '\\' {
                f.write_str("\\\\")?;
            } else {
                write!(f, "\\u{{{:x}}}", u32::from(c))?;
            }
            rest = &rest[at + c.len_utf8()..];
        }
        f.write_str(rest)
    }
}

/// Copies and checks a log message; the result is the byte count or the refusal.
fn log_write(slot: usize, ptr: u64, len: u64) -> Result<u64, Errno> {
    if len > MAX_LOG_LEN {
        return Err(Errno::BadLength);
    }
    let mut buf = [0u8; MAX_LOG_LEN as usize];
    let buf = &mut buf[..len as usize];
    umem::copy_in(slot, ptr, buf)?;
    let text = core::str::from_utf8(buf).map_err(|_| Errno::BadUtf8)?;
    kprintln!("{}", LogLine { slot, text });
    Ok(len)
}

/// The mutexes above the user ones belong to reservoir objects: ring 3 cannot name them.
fn user_mutex(mutex: u16) -> Result<u16, Errno> {
    if usize::from(mutex) < USER_MUTEXES {
        Ok(mutex)
    } else {
        Err(Errno::InvalidArgument)
    }
}

/// Result classes of a tally: success, then each error code (-1, -2, ...), then codes that are
/// no `Errno` (which the kernel must never return).
pub const TALLY_CLASSES: usize = Errno::ALL.len() + 2;

/// The results one task's calls got, counted as the kernel returned them.
#[derive(Clone, Copy, Debug)]
pub struct Tally {
    pub results: [u64; TALLY_CLASSES],
    /// The longest call that never gave the processor up (all but yield, sleep and the mutex
    /// calls), entry to return, and its number.
    pub longest_ns: u64,
    pub longest_number: u64,
}

impl Tally {
    pub fn calls(&self) -> u64 {
        self.results.iter().sum()
    }

    fn count(&mut self, rax: u64) {
        let v = rax as i64;
        let class = if v >= 0 {
            0
        } else if Errno::from_code(v).is_some() {
            v.unsigned_abs() as usize
        } else {
            TALLY_CLASSES - 1
        };
        self.results[class] += 1;
    }
}

static TALLY: Mutex<Option<(usize, Tally)>> = Mutex::new(None);

/// Counts the results of the calls the task in `slot` makes from now on.
pub fn tally_start(slot: usize) {
    x86_64::instructions::interrupts::without_interrupts(|| {
        *TALLY.lock() = Some((
            slot,
            Tally {
                results: [0; TALLY_CLASSES],
                longest_ns: 0,
                longest_number: 0,
            },
        ));
    });
}

/// Stops counting and returns the tally.
pub fn tally_take() -> Option<Tally> {
    x86_64::instructions::interrupts::without_interrupts(|| TALLY.lock().take().map(|(_, t)| t))
}

fn tallied(slot: usize) -> bool {
    TALLY.lock().as_ref().is_some_and(|(s, _)| *s == slot)
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
    let number = frame.rax;
    let start = tallied(slot).then(time::now);
    let request = Request::decode(number, args);
    let result = match request {
        Err(e) => Err(e),
        Ok(Request::Exit { code }) => task::exit(code),
        Ok(Request::Yield) => {
            sched::yield_now();
            Ok(0)
        }
        Ok(Request::LogWrite { ptr, len }) => log_write(slot, ptr, len),
        Ok(Request::SleepUntilNextPeriod) => sched::sleep_until_next_period(),
        Ok(Request::MutexLock { mutex }) => user_mutex(mutex).and_then(sched::lock).map(|()| 0),
        Ok(Request::MutexUnlock { mutex }) => user_mutex(mutex).and_then(sched::unlock).map(|()| 0),
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
    if let Some(start) = start {
        let gives_up_processor = matches!(
            request,
            Ok(Request::Yield
                | Request::SleepUntilNextPeriod
                | Request::MutexLock { .. }
                | Request::MutexUnlock { .. })
        );
        let took = time::now().0.saturating_sub(start.0);
        if let Some((s, t)) = TALLY.lock().as_mut() {
            if *s == slot {
                t.count(frame.rax);
                if !gives_up_processor && took > t.longest_ns {
                    t.longest_ns = took;
                    t.longest_number = number;
                }
            }
        }
    }
}
