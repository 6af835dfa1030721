//! The demo's periodic reservoir task: each period it steps a kernel reservoir (through its
//! capability) on the next sample of a signal, reads the state, predicts the following sample
//! with a linear readout trained online in ring 3 (normalised LMS, integer arithmetic) and
//! sleeps until the next period. It logs the prediction error per block of periods and, at the
//! end, the kernel's introspection of its reservoir. Exits with 0 when the error fell.
#![no_std]
#![no_main]

use echos_user::abi::{Errno, ReservoirCreateArgs, Topology, Q16_ONE};
use echos_user::logln;
use echos_user::reservoir as r;

echos_user::entry!(main);

const UNITS: usize = 50;
const BLOCK: u64 = 250;

/// A triangle wave of period 40 samples plus one of period 14 at a third the amplitude, Q16.16
/// in about [-0.8, 0.8]: deterministic and predictable from its recent past.
fn signal(k: u64) -> i64 {
    let tri = |k: u64, p: u64| -> i64 {
        let ph = (k % p) as i64 * 4 * 65_536 / p as i64; // 0 .. 4.0
        if ph < 2 * 65_536 {
            ph - 65_536
        } else {
            3 * 65_536 - ph
        }
    };
    (tri(k, 40) * 6 + tri(k, 14) * 2) / 10
}

fn main(periods: u64) -> i64 {
    let args = ReservoirCreateArgs {
        seed: 7,
        units: UNITS as u32,
        inputs: 1,
        outputs: 0,
        topology: Topology::SparseRandom,
        spectral_radius_q16: Q16_ONE * 9 / 10,
        leak_rate_q16: Q16_ONE / 2,
        input_scaling_q16: Q16_ONE / 2,
        density_q16: Q16_ONE / 10,
    };
    let h = match r::create(&args) {
        Ok(h) => h,
        Err(e) => return e.code(),
    };
    // Readout weights Q16.16 over [state (Q16.16) ; bias 1.0].
    let mut w = [0i64; UNITS + 1];
    let mut x = [0i32; UNITS];
    let (mut first_block, mut last_block, mut block_err) = (0i64, 0i64, 0i64);
    let mut no_out: [i32; 0] = [];
    for k in 0..periods {
        if let Err(e) = r::step(h, &[signal(k) as i32], &mut no_out) {
            return e.code();
        }
        if let Err(e) = r::read_state(h, &mut x) {
            return e.code();
        }
        let feature = |i: usize| if i < UNITS { i64::from(x[i]) } else { 65_536 };
        let y: i64 = (0..=UNITS).map(|i| (w[i] * feature(i)) >> 16).sum();
        let target = signal(k + 1);
        let err = target - y;
        // Normalised LMS: w += mu · err · f / (|f|² + eps), mu = 1/2.
        let norm: i64 = (0..=UNITS)
            .map(|i| (feature(i) * feature(i)) >> 16)
            .sum::<i64>()
            + 655;
        for (i, wi) in w.iter_mut().enumerate() {
            *wi += (err * feature(i) / norm) / 2;
        }
        block_err += (err * err) >> 16;
        if (k + 1) % BLOCK == 0 {
            let mse = block_err / BLOCK as i64;
            if k + 1 == BLOCK {
                first_block = mse;
            }
            last_block = mse;
            let _ = logln!(
                "predictor: periods {}..{}: prediction {:.4} for {:.4}, mean squared error {:.6}",
                k + 1 - BLOCK,
                k + 1,
                FixedQ16(y),
                FixedQ16(target),
                FixedQ16(mse)
            );
            block_err = 0;
        }
        match echos_user::sleep_until_next_period() {
            Ok(_) => {}
            Err(Errno::NotPeriodic) => return -2,
            Err(e) => return e.code(),
        }
    }
    if let Ok(info) = r::introspect(h) {
        let _ = logln!(
            "predictor: introspection: step {}, units {}, spectral radius {:.3}, leak rate {:.3}, memory capacity {}",
            info.context.step,
            info.context.units,
            FixedQ16(i64::from(info.context.spectral_radius_q16)),
            FixedQ16(i64::from(info.context.leak_rate_q16)),
            if info.memory_capacity_q16 == u32::MAX { "not measured" } else { "measured" }
        );
        let t = info.trajectory_len as usize;
        let _ = logln!(
            "predictor: state[0..4] {:.4} {:.4} {:.4} {:.4}; trajectory of unit 0 over the last {} steps: {:.3} {:.3} {:.3} {:.3} ...",
            FixedQ16(i64::from(info.state[0])),
            FixedQ16(i64::from(info.state[1])),
            FixedQ16(i64::from(info.state[2])),
            FixedQ16(i64::from(info.state[3])),
            t,
            FixedQ16(i64::from(info.trajectory[0])),
            FixedQ16(i64::from(info.trajectory[4])),
            FixedQ16(i64::from(info.trajectory[8])),
            FixedQ16(i64::from(info.trajectory[12])),
        );
    }
    // The online readout must have learned: the last block's error well below the first's.
    if last_block * 4 < first_block {
        0
    } else {
        1
    }
}

/// Prints a Q16.16 value in decimal without floating point (this target has no FPU state).
struct FixedQ16(i64);

impl core::fmt::Display for FixedQ16 {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let digits = f.precision().unwrap_or(4).min(6) as u32;
        let scale = 10i64.pow(digits);
        let neg = self.0 < 0;
        let v = self.0.unsigned_abs() as i128;
        let scaled = (v * scale as i128 + 32_768) >> 16;
        let (int, frac) = (scaled / scale as i128, scaled % scale as i128);
        write!(
            f,
            "{}{}.{:0width$}",
            if neg { "-" } else { "" },
            int,
            frac,
            width = digits as usize
        )
    }
}
