//! Long kernel calls: creates the largest reservoir the kernel accepts (1024 units, 59
//! connections a row, 64 readout outputs: about 250 KiB of weights), steps it and rewrites all
//! its recurrent and readout weights — each call milliseconds of kernel work, which must not
//! hold up another partition. Exits with the number of calls that failed.
#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU32, Ordering};

use echos_user::abi::{ReservoirCreateArgs, Topology, WeightMatrix, Q16_ONE};
use echos_user::reservoir as r;

echos_user::entry!(main);

const UNITS: u32 = 1024;
const OUTPUTS: u32 = 64;
/// 58 ‰ gives (1024 · 58 + 500) / 1000 = 59 connections a row: weights just under the 256 KiB
/// a reservoir object may map.
const DENSITY_Q16: u32 = 3802;
const NNZ: u32 = UNITS * 59;
const STEPS: usize = 10;
const CHUNK: usize = 4096;

/// New weights, Q16.16 (a static: too large for the 16 KiB stack).
static VALUES: [AtomicU32; CHUNK] = [const { AtomicU32::new(0) }; CHUNK];

fn main(_: u64) -> i64 {
    let h = match r::create(&ReservoirCreateArgs {
        seed: 16,
        units: UNITS,
        inputs: 1,
        outputs: OUTPUTS,
        topology: Topology::SparseRandom,
        spectral_radius_q16: Q16_ONE * 9 / 10,
        leak_rate_q16: Q16_ONE / 2,
        input_scaling_q16: Q16_ONE / 2,
        density_q16: DENSITY_Q16,
    }) {
        Ok(h) => h,
        Err(e) => return 1000 + e.code().abs(),
    };
    let mut failed = 0i64;
    let mut out = [0i32; OUTPUTS as usize];
    for k in 0..STEPS {
        if r::step(h, &[(k as i32 - 5) * (Q16_ONE as i32 / 8)], &mut out) != Ok(0) {
            failed += 1;
        }
    }
    for (i, v) in VALUES.iter().enumerate() {
        v.store((i as u32 % 64) * 256, Ordering::Relaxed);
    }
    for (matrix, len) in [
        (WeightMatrix::Recurrent, NNZ),
        (WeightMatrix::Readout, UNITS * OUTPUTS),
    ] {
        let mut offset = 0;
        while offset < len {
            let n = (len - offset).min(CHUNK as u32);
            let ptr = VALUES.as_ptr() as u64;
            if r::modify_weights_raw(h, matrix, offset, ptr, n) != Ok(u64::from(n)) {
                failed += 1;
            }
            offset += n;
        }
    }
    if r::step(h, &[Q16_ONE as i32 / 2], &mut out) != Ok(0) {
        failed += 1;
    }
    failed
}
