//! Kernel mutexes from ring 3: the refusals (unknown mutex, unlocking one not held, locking one
//! already held, a raw mutex number too large for the ABI), then 50 rounds of lock / yield /
//! unlock against a twin task, so one blocks in the kernel while the other holds the mutex.
//! Exits with the number of wrong answers.
#![no_std]
#![no_main]

use echos_user::abi::{Errno, Syscall};

echos_user::entry!(main);

fn main(_: u64) -> i64 {
    let mut wrong = 0i64;
    let mut check = |ok: bool| {
        if !ok {
            wrong += 1;
        }
    };
    check(echos_user::mutex_lock(99) == Err(Errno::InvalidArgument));
    check(echos_user::mutex_unlock(1) == Err(Errno::NotOwner));
    check(
        echos_user::decode(echos_user::raw_syscall(
            Syscall::MutexLock as u64,
            [1 << 20, 0, 0, 0, 0, 0],
        )) == Err(Errno::InvalidArgument),
    );
    check(echos_user::mutex_lock(1) == Ok(0));
    check(echos_user::mutex_lock(1) == Err(Errno::NotOwner));
    check(echos_user::mutex_unlock(1) == Ok(0));
    for _ in 0..50 {
        check(echos_user::mutex_lock(0) == Ok(0));
        check(echos_user::yield_now().is_ok());
        check(echos_user::mutex_unlock(0) == Ok(0));
    }
    wrong
}
