//! The demo's periodic reservoir task: each period it steps its kernel reservoir (a capability
//! the kernel created, with a readout trained on the host by xtask) on the next sample of a
//! signal; the step returns the readout's prediction of the following sample. It logs prediction
//! and target, the mean squared error per block and over the run, and at the end the kernel's
//! introspection. Exits with the FNV-1a digest of the readout outputs (halved, so non-negative),
//! which the kernel compares with the host's, or with a negative error code.
#![no_std]
#![no_main]

use echos_user::abi::{CapHandle, Errno};
use echos_user::logln;
use echos_user::reservoir as r;

echos_user::entry!(main);

const BLOCK: u64 = 250;
/// Periods left out of the error while the state forgets its zero start (xtask's WASHOUT).
const WASHOUT: u64 = 100;
/// The readout was fitted to target / 2^4 to fit Q1.15 (xtask's READOUT_SHIFT).
const READOUT_SHIFT: u32 = 4;

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

/// The argument: the reservoir handle in the low 52 bits, the period count above.
fn main(arg: u64) -> i64 {
    let Ok(h) = CapHandle::from_raw(arg & ((1 << 52) - 1)) else {
        return -100;
    };
    let periods = arg >> 52;
    let mut digest: u64 = 0xcbf2_9ce4_8422_2325;
    let (mut total_err, mut block_err) = (0i64, 0i64);
    for k in 0..periods {
        let mut out = [0i32; 1];
        if let Err(e) = r::step(h, &[signal(k) as i32], &mut out) {
            return e.code();
        }
        for b in out[0].to_le_bytes() {
            digest = (digest ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
        let y = i64::from(out[0]) << READOUT_SHIFT;
        let target = signal(k + 1);
        let err = target - y;
        if k >= WASHOUT {
            total_err += (err * err) >> 16;
        }
        block_err += (err * err) >> 16;
        if (k + 1) % BLOCK == 0 {
            let _ = logln!(
                "predictor: periods {}..{}: prediction {:.4} for {:.4}, mean squared error {:.6}",
                k + 1 - BLOCK,
                k + 1,
                FixedQ16(y),
                FixedQ16(target),
                FixedQ16(block_err / BLOCK as i64)
            );
            block_err = 0;
        }
        match echos_user::sleep_until_next_period() {
            Ok(_) => {}
            Err(Errno::NotPeriodic) => return -2,
            Err(e) => return e.code(),
        }
    }
    if periods > WASHOUT {
        let _ = logln!(
            "predictor: mean squared error over periods {}..{}: {:.6} (readout trained on the host)",
            WASHOUT,
            periods,
            FixedQ16(total_err / (periods - WASHOUT) as i64)
        );
    }
    if let Ok(info) = r::introspect(h) {
        let _ = logln!(
            "predictor: introspection: step {}, units {}, spectral radius {:.3}, leak rate {:.3}, memory capacity {:.2} (host-measured)",
            info.context.step,
            info.context.units,
            FixedQ16(i64::from(info.context.spectral_radius_q16)),
            FixedQ16(i64::from(info.context.leak_rate_q16)),
            FixedQ16(i64::from(info.memory_capacity_q16))
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
    (digest >> 1) as i64
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
