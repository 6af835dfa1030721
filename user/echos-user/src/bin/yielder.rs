//! Yields `arg` times: two of these at one priority switch back and forth, which is how the
//! kernel measures a user-to-user context switch.
#![no_std]
#![no_main]

echos_user::entry!(main);

fn main(arg: u64) -> i64 {
    for _ in 0..arg {
        if let Err(e) = echos_user::yield_now() {
            return e.code();
        }
    }
    0
}
