//! Pipeline stage 0: each period, steps the shared reservoir (its handle is the argument) on the
//! next input sample, then sleeps until the next period. Exits after 50 periods (once stage 1
//! is done with the last) with 0, or with the error code of a failed call.
#![no_std]
#![no_main]

use echos_user::abi::CapHandle;
use echos_user::reservoir as r;

echos_user::entry!(main);

pub const PERIODS: u64 = 50;

fn main(handle: u64) -> i64 {
    let Ok(h) = CapHandle::from_raw(handle) else {
        return -100;
    };
    let mut none: [i32; 0] = [];
    for k in 0..PERIODS {
        let input = ((k as i64 * 7919) % 131_072 - 65_536) as i32;
        if let Err(e) = r::step(h, &[input], &mut none) {
            return e.code();
        }
        // Also after the last step: stage 0 holds the capability stage 1's grant hangs on, so
        // it must outlive stage 1's last period (it wakes once stage 1 finished it).
        if let Err(e) = echos_user::sleep_until_next_period() {
            return e.code();
        }
    }
    0
}
