//! Calls the kernel must refuse as a whole: reading a reservoir's state into a buffer that runs
//! past the top of the stack (nothing of it may be written, though the first part is mapped),
//! and new weights from a range that runs past it (refused for the pointer, whatever the values
//! the kernel would have read first). Exits with the number of wrong answers.
#![no_std]
#![no_main]

use echos_user::abi::{Errno, ReservoirCreateArgs, Topology, WeightMatrix, Q16_ONE};
use echos_user::reservoir as r;

echos_user::entry!(main);

/// The top of the user stack (kernel/src/config.rs); the page above is unmapped.
const STACK_TOP: u64 = 0x80_4000_0000;
/// The 8 bytes under the top: `_start`'s return-address slot. `_start` never returns, so nothing
/// lives there and the program may plant a marker in it.
const SPARE: u64 = STACK_TOP - 8;
/// More than one 64-unit chunk of the kernel's copy loop.
const UNITS: u32 = 100;
const MARKER: u64 = 0x5a5a_5a5a_5a5a_5a5a;

fn main(_: u64) -> i64 {
    padded()
}

/// Keeps the frames of the checks clear of the top 256 bytes, which a kernel that writes part of
/// a refused buffer would overwrite.
#[inline(never)]
fn padded() -> i64 {
    let pad = [0u8; 512];
    core::hint::black_box(&pad);
    checks()
}

fn plant(value: u64) {
    // SAFETY: SPARE is mapped, writable and unused (see above).
    unsafe { (SPARE as *mut u64).write_volatile(value) };
}

fn spare() -> u64 {
    // SAFETY: as above.
    unsafe { (SPARE as *const u64).read_volatile() }
}

#[inline(never)]
fn checks() -> i64 {
    let h = match r::create(&ReservoirCreateArgs {
        seed: 5,
        units: UNITS,
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
    let mut wrong = 0i64;
    if r::step(h, &[Q16_ONE as i32 / 2], &mut []) != Ok(0) {
        wrong += 1;
    }
    // 400 bytes from 256 below the top: the first 256 are the stack's, the rest unmapped.
    plant(MARKER);
    if r::read_state_raw(h, STACK_TOP - 256, UNITS) != Err(Errno::BadPointer) {
        wrong += 1;
    }
    if spare() != MARKER {
        // The kernel wrote into the stack's top: frames above may be gone, so never return.
        echos_user::exit(100 + wrong);
    }
    // 65 values from 256 below the top, the last of the mapped ones out of range.
    plant(u64::from(65_536u32) << 32 | 65_536);
    let modify = r::modify_weights_raw(h, WeightMatrix::Input, 0, STACK_TOP - 256, 65);
    if modify != Err(Errno::BadPointer) {
        wrong += 1;
    }
    // And the reservoir still answers.
    if r::step(h, &[0], &mut []) != Ok(0) {
        wrong += 1;
    }
    echos_user::exit(wrong)
}
