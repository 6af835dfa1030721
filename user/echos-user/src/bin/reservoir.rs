//! A reservoir through capabilities from ring 3: create, step with a readout, read the state,
//! introspect; and every refusal the capabilities promise (missing write right, revoked,
//! forged, bad pointers, wrong dimensions). Exits with the number of answers that were wrong.
#![no_std]
#![no_main]

use echos_user::abi::{
    CapHandle, Errno, ReservoirCreateArgs, Rights, Topology, WeightMatrix, Q16_ONE,
};
use echos_user::reservoir as r;

echos_user::entry!(main);

pub const UNITS: usize = 50;
pub const STEPS: usize = 21;
const KERNEL_ADDR: u64 = 0x10_0000;

/// The input stream the kernel test reproduces: a sawtooth in [-1, 1), Q16.16.
pub fn input(k: usize) -> i32 {
    ((k as i64 * 7919) % 131_072 - 65_536) as i32
}

static READ_ONLY: [i32; 1] = [0];

fn main(_: u64) -> i64 {
    let mut wrong = 0i64;
    let mut check = |ok: bool| {
        if !ok {
            wrong += 1;
        }
    };
    let args = ReservoirCreateArgs {
        seed: 42,
        units: UNITS as u32,
        inputs: 1,
        outputs: 1,
        topology: Topology::SparseRandom,
        spectral_radius_q16: Q16_ONE * 9 / 10,
        leak_rate_q16: Q16_ONE * 3 / 10,
        input_scaling_q16: Q16_ONE / 2,
        density_q16: Q16_ONE / 10,
    };
    let h = match r::create(&args) {
        Ok(h) => h,
        Err(e) => return 1000 + e.code().abs(),
    };
    check(r::create_at(KERNEL_ADDR) == Err(Errno::BadPointer));
    check(
        r::create(&ReservoirCreateArgs {
            topology: Topology::Ring,
            ..args
        }) == Err(Errno::InvalidArgument),
    );

    // A narrowed capability may step and read, never write.
    let step_only = r::derive(h, Rights::READ | Rights::STEP).unwrap_or(h);
    check(step_only != h);
    let half = [Q16_ONE as i32 / 2; UNITS];
    check(
        r::modify_weights(step_only, WeightMatrix::Readout, 0, &half)
            == Err(Errno::PermissionDenied),
    );
    check(r::modify_weights(h, WeightMatrix::Readout, 0, &half) == Ok(UNITS as u64));
    check(r::modify_weights(h, WeightMatrix::Readout, 1, &half) == Err(Errno::DimensionMismatch));
    check(
        r::modify_weights(h, WeightMatrix::Input, 0, &[Q16_ONE as i32 * 2])
            == Err(Errno::InvalidArgument),
    );

    let mut y = [0i32; 1];
    for k in 0..STEPS {
        let cap = if k == STEPS - 1 { step_only } else { h };
        check(r::step(cap, &[input(k)], &mut y) == Ok(0));
    }
    // The readout is 0.5 on every unit: y = 0.5 · Σ x, and the state comes back in Q16.16.
    let mut state = [0i32; UNITS];
    check(r::read_state(h, &mut state) == Ok(UNITS as u64));
    let sum: i64 = state.iter().map(|&x| i64::from(x)).sum();
    check(i64::from(y[0]) == sum / 2);

    match r::introspect(h) {
        Ok(info) => {
            check(info.context.step == STEPS as u64);
            check(info.context.units == UNITS as u32);
            check(info.context.spectral_radius_q16 == args.spectral_radius_q16);
            check(info.trajectory_len == 16);
            check(info.state[..info.state_len as usize] == state[..info.state_len as usize]);
            let last = (info.trajectory_len as usize - 1) * 4;
            check(info.trajectory[last..last + 4] == state[..4]);
        }
        Err(_) => check(false),
    }

    // Revoked, forged, bad pointers, wrong dimensions.
    check(r::revoke(step_only).is_ok());
    check(r::step(step_only, &[0], &mut y) == Err(Errno::Revoked));
    check(r::read_state(step_only, &mut state) == Err(Errno::Revoked));
    let read_only = r::derive(h, Rights::READ).unwrap_or(h);
    let forged_rights = CapHandle::new(read_only.index, read_only.generation, Rights::ALL);
    check(
        r::modify_weights(forged_rights, WeightMatrix::Readout, 0, &half)
            == Err(Errno::PermissionDenied),
    );
    check(r::step(CapHandle::new(9, 0, Rights::ALL), &[0], &mut y) == Err(Errno::BadHandle));
    check(r::step(read_only, &[0], &mut y) == Err(Errno::PermissionDenied));
    check(r::step(h, &[0, 0], &mut y) == Err(Errno::DimensionMismatch));
    check(r::step_raw(h, KERNEL_ADDR, 1, y.as_mut_ptr() as u64, 1) == Err(Errno::BadPointer));
    check(
        r::step_raw(
            h,
            READ_ONLY.as_ptr() as u64,
            1,
            READ_ONLY.as_ptr() as u64,
            1,
        ) == Err(Errno::BadPointer),
    );
    check(r::read_state(h, &mut state[..10]) == Err(Errno::DimensionMismatch));
    // The refused calls did not step it.
    check(r::introspect(h).map(|i| i.context.step) == Ok(STEPS as u64));
    let _ = echos_user::log(
        "reservoir through capabilities: 21 steps, readout checked, refusals checked",
    );
    wrong
}
