//! Zero-copy weights: maps a reservoir's weights read-only, reads the CSR structure through the
//! mapping, changes a recurrent weight through the syscall and sees it change in place; a
//! capability without the map right is refused. With argument 1 it then writes to the mapping,
//! which must fault (the pages are read-only). Exits with the number of wrong answers.
#![no_std]
#![no_main]

use echos_user::abi::{Errno, ReservoirCreateArgs, Rights, Topology, WeightMatrix, Q16_ONE};
use echos_user::reservoir as r;

echos_user::entry!(main);

const UNITS: usize = 50;

fn main(arg: u64) -> i64 {
    let mut wrong = 0i64;
    let mut check = |ok: bool| {
        if !ok {
            wrong += 1;
        }
    };
    let h = match r::create(&ReservoirCreateArgs {
        seed: 3,
        units: UNITS as u32,
        inputs: 1,
        outputs: 0,
        topology: Topology::SparseRandom,
        spectral_radius_q16: Q16_ONE * 9 / 10,
        leak_rate_q16: Q16_ONE / 2,
        input_scaling_q16: Q16_ONE / 2,
        density_q16: Q16_ONE / 10,
    }) {
        Ok(h) => h,
        Err(e) => return 1000 + e.code().abs(),
    };
    let no_map = r::derive(h, Rights::READ | Rights::STEP).unwrap_or(h);
    check(r::map_weights(no_map) == Err(Errno::PermissionDenied));
    let Ok(addr) = r::map_weights(h) else {
        return 2000;
    };
    check(r::map_weights(h) == Ok(addr));
    let row_offsets = addr as *const u32;
    // SAFETY: the kernel mapped the weights readable at `addr` in the layout the library
    // documents; every index stays inside the arrays (nnz comes from the mapping itself).
    let (first, nnz) = unsafe {
        (
            row_offsets.read_volatile(),
            row_offsets.add(UNITS).read_volatile() as usize,
        )
    };
    check(first == 0);
    // 10 % of 50 units: 5 per row.
    check(nnz == 5 * UNITS);
    let values = (addr + 4 * (UNITS as u64 + 1) + 2 * nnz as u64) as *mut i16;
    check(r::modify_weights(h, WeightMatrix::Recurrent, 0, &[Q16_ONE as i32 / 4]) == Ok(1));
    // SAFETY: as above; values[0] is inside the mapping.
    check(unsafe { values.read_volatile() } == 8192);
    check(r::modify_weights(h, WeightMatrix::Recurrent, 0, &[-(Q16_ONE as i32) / 2]) == Ok(1));
    // SAFETY: as above.
    check(unsafe { values.read_volatile() } == -16384);
    let _ = echos_user::logln!(
        "weights: mapped at {addr:#x}, nnz {nnz}, recurrent weight 0 changed in place"
    );
    if arg == 1 {
        // SAFETY: none; the page is read-only for ring 3, so this write must fault.
        unsafe { values.write_volatile(1) };
        return 3000;
    }
    wrong
}
