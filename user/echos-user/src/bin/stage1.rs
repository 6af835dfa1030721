//! Pipeline stage 1: maps the shared reservoir's state page (read and map rights only, granted
//! by the kernel) and, each period, checks that stage 0 has already stepped this period (the
//! step count is the period + 1) and that the state read in place through the mapping equals
//! the state read by syscall. Exits with the number of periods that failed either check.
#![no_std]
#![no_main]

use echos_user::abi::{CapHandle, Errno, Rights, WeightMatrix};
use echos_user::reservoir as r;

echos_user::entry!(main);

const PERIODS: u64 = 50;
const UNITS: usize = 50;

fn main(handle: u64) -> i64 {
    let Ok(h) = CapHandle::from_raw(handle) else {
        return -100;
    };
    // This stage only reads: writing and stepping are refused.
    if h.rights.contains(Rights::WRITE)
        || r::modify_weights(h, WeightMatrix::Input, 0, &[0]) != Err(Errno::PermissionDenied)
    {
        return -101;
    }
    if r::map_weights(h).is_err() {
        return -102;
    }
    let state_addr = match r::introspect(h) {
        Ok(info) if info.context.state_addr != 0 => info.context.state_addr,
        _ => return -103,
    };
    let shared = state_addr as *const i16;
    let mut wrong = 0;
    let mut state = [0i32; UNITS];
    for k in 0..PERIODS {
        let fresh = r::introspect(h).map(|i| i.context.step) == Ok(k + 1);
        let read = r::read_state(h, &mut state).is_ok();
        // SAFETY: the kernel mapped the state page (i16 × UNITS) readable at `state_addr`.
        let same = (0..UNITS)
            .all(|u| i32::from(unsafe { shared.add(u).read_volatile() }) << 1 == state[u]);
        if !(fresh && read && same) {
            wrong += 1;
            if wrong == 1 {
                let _ = echos_user::logln!(
                    "stage 1: period {k} (first failure): step count current {fresh}, state read {read}, mapped state equal {same}"
                );
            }
        }
        if k + 1 < PERIODS {
            if let Err(e) = echos_user::sleep_until_next_period() {
                return e.code();
            }
        }
    }
    wrong
}
