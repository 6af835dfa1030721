//! The kernel demo's trained model: before the kernel is built, the host runs the demo's Q1.15
//! reservoir (the same `echos_core::integer` engine and seed the kernel uses) on the demo signal,
//! fits a ridge readout for one-step-ahead prediction, quantises it to Q1.15 and writes a blob
//! that the kernel embeds (`ECHOS_DEMO_MODEL`, see kernel/build.rs). The host also predicts the
//! run itself, so the kernel can check the ring-3 task's predictions bit for bit.

use std::path::{Path, PathBuf};

use echos_core::integer::{
    quantize_q15, FixedEsn, FixedEsnBuffers, FixedEsnConfig, FixedEsnLayout, Fnv1a,
};
use echos_core::metrics::nrmse;
use echos_core::model::{MemoryCapacity, ModelError};
use echos_core::readout::Ridge;
use echos_core::rng::SplitMix64;

/// Blob layout version; the kernel refuses any other.
pub const MAGIC: &[u8; 8] = b"ECHOSDM1";
/// Periods the demo runs (the kernel's `PREDICTOR_PERIODS`).
pub const PERIODS: u64 = 2_000;
/// Steps left out of the error (and the fit) while the state forgets its zero start; the
/// predictor program uses the same value.
pub const WASHOUT: u64 = 100;
/// The readout is fitted on periods WASHOUT..TRAIN_END; the rest is held out.
pub const TRAIN_END: u64 = 1_000;
/// The kernel's readout is Q1.15 (|w| < 1), so the readout is fitted to target / 2^shift and the
/// predictor shifts the output back; the predictor program uses the same value.
pub const READOUT_SHIFT: u32 = 4;
const RIDGE: f64 = 1e-4;

const SEED: u64 = 7;
const UNITS: usize = 50;
const Q16_ONE: u32 = 1 << 16;
const SPECTRAL_RADIUS_Q16: u32 = Q16_ONE * 9 / 10;
const LEAK_RATE_Q16: u32 = Q16_ONE / 2;
const INPUT_SCALING_Q16: u32 = Q16_ONE / 2;
const DENSITY_Q16: u32 = Q16_ONE / 10;
/// The kernel's bias scaling for reservoir objects (kernel/src/reservoir.rs).
const BIAS_SCALING_Q16: i32 = 6554;

/// The demo signal in Q16.16 (a copy of the predictor program's `signal`): a triangle wave of
/// period 40 plus one of period 14 at a third of its amplitude, in about [-0.8, 0.8].
pub fn signal(k: u64) -> i64 {
    let tri = |k: u64, p: u64| -> i64 {
        let ph = (k % p) as i64 * 4 * 65_536 / p as i64;
        if ph < 2 * 65_536 {
            ph - 65_536
        } else {
            3 * 65_536 - ph
        }
    };
    (tri(k, 40) * 6 + tri(k, 14) * 2) / 10
}

/// The engine configuration the kernel derives from the same create arguments
/// (`reservoir::config_of`).
fn config() -> FixedEsnConfig {
    let permille = ((u64::from(DENSITY_Q16) * 1000) >> 16).max(1) as u32;
    FixedEsnConfig {
        units: UNITS,
        inputs: 1,
        connectivity_permille: permille,
        spectral_radius_q16: SPECTRAL_RADIUS_Q16 as i32,
        input_scaling_q16: INPUT_SCALING_Q16 as i32,
        bias_scaling_q16: BIAS_SCALING_Q16,
        leak_rate_q16: LEAK_RATE_Q16 as i32,
        seed: SEED,
    }
}

/// The trained model and the host's figures on the demo run.
pub struct DemoModel {
    pub readout_q15: Vec<i16>,
    /// FNV-1a of the kernel readout's outputs (i32 little-endian, Q16.16) over every period.
    pub digest: u64,
    /// Mean squared prediction error over periods WASHOUT.., Q16.16, computed as the predictor
    /// computes it.
    pub mse_q16: i64,
    /// NRMSE (RMSE / target standard deviation) on the held-out periods TRAIN_END..PERIODS.
    pub nrmse_q15_held_out: f64,
    /// The same reservoir in f64 (dequantised weights, float tanh) with its own float ridge
    /// readout: NRMSE on the held-out periods.
    pub nrmse_float_held_out: f64,
    /// Memory capacity of the same Q1.15 reservoir (see [`memory_capacity`]).
    pub memory_capacity: f64,
}

/// Ridge regression without a bias (the kernel's Q1.15 readout has none), by the engine's one
/// solver: (AᵀA + λI) w = Aᵀy for the feature rows `a`.
fn ridge(a: &[Vec<f64>], y: &[f64], lambda: f64) -> Result<Vec<f64>, String> {
    let n = a.first().map_or(0, Vec::len);
    let mut solver = Ridge::without_bias(n, 1, lambda).map_err(|e| e.to_string())?;
    for (row, &t) in a.iter().zip(y) {
        solver.accumulate(row, &[t]).map_err(|e| e.to_string())?;
    }
    let fit = solver.fit().map_err(|e| e.to_string())?;
    // Column 0 is the (zero) bias.
    Ok(fit.weights.row(0)[1..].to_vec())
}

fn fit_range() -> std::ops::Range<usize> {
    WASHOUT as usize..TRAIN_END as usize
}

fn held_out() -> std::ops::Range<usize> {
    TRAIN_END as usize..PERIODS as usize
}

/// The demo reservoir's weights, as the kernel generates them.
struct Weights {
    row_offsets: Vec<u32>,
    columns: Vec<u16>,
    values: Vec<i16>,
    w_in: Vec<i16>,
    bias: Vec<i16>,
}

/// Runs the demo's Q1.15 reservoir from a zero state on `inputs` (Q16.16); returns the state
/// after every step and the weights.
fn run_q15(inputs: &[i32]) -> Result<(Vec<Vec<i16>>, Weights), String> {
    let cfg = config();
    let l = FixedEsnLayout::of(&cfg);
    let mut w = Weights {
        row_offsets: vec![0; l.units + 1],
        columns: vec![0; l.nnz],
        values: vec![0; l.nnz],
        w_in: vec![0; l.units * l.inputs],
        bias: vec![0; l.units],
    };
    let (mut state, mut scratch) = (vec![0i16; l.units], vec![0i16; l.units]);
    let mut states = Vec::with_capacity(inputs.len());
    let mut esn = FixedEsn::new(
        cfg,
        FixedEsnBuffers {
            row_offsets: &mut w.row_offsets,
            columns: &mut w.columns,
            values: &mut w.values,
            w_in: &mut w.w_in,
            bias: &mut w.bias,
            state: &mut state,
            scratch: &mut scratch,
        },
    )
    .map_err(|e| format!("demo reservoir: {e}"))?;
    for &u in inputs {
        esn.step(&[u])
            .map_err(|e| format!("demo reservoir step: {e}"))?;
        states.push(esn.state().to_vec());
    }
    Ok((states, w))
}

/// Memory capacity of the demo's Q1.15 reservoir by the engine's one definition
/// (`echos_core::model::MemoryCapacity`: delays 1..=2N, ridge readouts on held-out steps), with
/// inputs uniform in [−1, 1) (Q16.16, from the engine's SplitMix64 seeded with MC_SEED).
fn memory_capacity() -> Result<f64, String> {
    const MC_SEED: u64 = 0x6d63;
    let setup = MemoryCapacity {
        washout: 200,
        train: 2_000,
        test: 1_000,
        max_delay: 2 * UNITS,
        ridge: RIDGE,
    };
    let mut sm = SplitMix64::new(MC_SEED);
    let inputs: Vec<i32> = (0..setup.steps())
        .map(|_| ((sm.next_u64() >> 47) as i64 - 65_536) as i32)
        .collect();
    let (states, _) = run_q15(&inputs)?;
    let u: Vec<f64> = inputs.iter().map(|&v| f64::from(v) / 65_536.0).collect();
    let mut t = 0;
    setup
        .measure(&u, UNITS, |_, x| {
            for (o, &v) in x.iter_mut().zip(&states[t]) {
                *o = f64::from(v) / 32_768.0;
            }
            t += 1;
            Ok::<(), ModelError>(())
        })
        .map_err(|e| e.to_string())
}

/// Trains the readout on the Q1.15 reservoir's states and predicts the run as the kernel will.
pub fn train() -> Result<DemoModel, String> {
    let inputs: Vec<i32> = (0..PERIODS).map(|k| signal(k) as i32).collect();
    let (
        states_q15,
        Weights {
            row_offsets,
            columns,
            values,
            w_in,
            bias,
        },
    ) = run_q15(&inputs)?;
    let target = |k: usize| signal(k as u64 + 1) as f64 / 65_536.0;
    let scale = f64::from(1u32 << READOUT_SHIFT);

    // Q1.15 model: ridge on the integer states, then quantised.
    let feats: Vec<Vec<f64>> = states_q15
        .iter()
        .map(|s| s.iter().map(|&v| f64::from(v) / 32_768.0).collect())
        .collect();
    let ys: Vec<f64> = fit_range().map(|k| target(k) / scale).collect();
    let w = ridge(&feats[fit_range()], &ys, RIDGE)?;
    let mut readout_q15 = vec![0i16; UNITS];
    quantize_q15(&w, &mut readout_q15).map_err(|e| {
        format!("the demo readout does not fit Q1.15 after a shift of {READOUT_SHIFT}: {e}")
    })?;
    let mut fnv = Fnv1a::new();
    let mut sq_err = 0i64;
    let mut preds = Vec::with_capacity(PERIODS as usize);
    for (k, s) in states_q15.iter().enumerate() {
        // The kernel's readout: Q1.15 · Q1.15 summed in i64, >> 14 to Q16.16, saturated.
        let acc: i64 = readout_q15
            .iter()
            .zip(s)
            .map(|(&w, &x)| i64::from(w) * i64::from(x))
            .sum();
        let out = (acc >> 14).clamp(i64::from(i32::MIN), i64::from(i32::MAX)) as i32;
        fnv.write(&out.to_le_bytes());
        let pred = i64::from(out) << READOUT_SHIFT;
        if k as u64 >= WASHOUT {
            let err = signal(k as u64 + 1) - pred;
            sq_err += (err * err) >> 16;
        }
        preds.push(pred as f64 / 65_536.0);
    }
    let targets: Vec<f64> = held_out().map(target).collect();
    let nrmse_q15_held_out = nrmse(&preds[held_out()], &targets).map_err(|e| e.to_string())?;

    // The same reservoir in f64: dequantised weights, float tanh.
    let q = |v: i16| f64::from(v) / 32_768.0;
    let a = f64::from(LEAK_RATE_Q16) / 65_536.0;
    let mut x = vec![0.0f64; UNITS];
    let mut next = vec![0.0f64; UNITS];
    let mut float_states = Vec::with_capacity(PERIODS as usize);
    for k in 0..PERIODS {
        let u = signal(k) as f64 / 65_536.0;
        for i in 0..UNITS {
            let (lo, hi) = (row_offsets[i] as usize, row_offsets[i + 1] as usize);
            let mut pre: f64 = (lo..hi)
                .map(|j| q(values[j]) * x[columns[j] as usize])
                .sum();
            pre += q(w_in[i]) * u + q(bias[i]);
            next[i] = x[i] + a * (pre.tanh() - x[i]);
        }
        x.copy_from_slice(&next);
        float_states.push(x.clone());
    }
    let ys: Vec<f64> = fit_range().map(target).collect();
    let wf = ridge(&float_states[fit_range()], &ys, RIDGE)?;
    let float_preds: Vec<f64> = float_states[held_out()]
        .iter()
        .map(|s| s.iter().zip(&wf).map(|(a, b)| a * b).sum())
        .collect();
    let nrmse_float_held_out = nrmse(&float_preds, &targets).map_err(|e| e.to_string())?;
    let memory_capacity = memory_capacity()?;

    Ok(DemoModel {
        readout_q15,
        digest: fnv.finish(),
        mse_q16: sq_err / (PERIODS - WASHOUT) as i64,
        nrmse_q15_held_out,
        nrmse_float_held_out,
        memory_capacity,
    })
}

impl DemoModel {
    /// Little-endian: magic, seed u64, units, spectral radius, leak rate, input scaling and
    /// density (u32, Q16.16), periods u32, washout u32, readout shift u32, digest u64,
    /// mse u64 (Q16.16), memory capacity u32 (Q16.16), then the readout (i16 × units).
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut b = MAGIC.to_vec();
        b.extend_from_slice(&SEED.to_le_bytes());
        for v in [
            UNITS as u32,
            SPECTRAL_RADIUS_Q16,
            LEAK_RATE_Q16,
            INPUT_SCALING_Q16,
            DENSITY_Q16,
            PERIODS as u32,
            WASHOUT as u32,
            READOUT_SHIFT,
        ] {
            b.extend_from_slice(&v.to_le_bytes());
        }
        b.extend_from_slice(&self.digest.to_le_bytes());
        b.extend_from_slice(&(self.mse_q16 as u64).to_le_bytes());
        b.extend_from_slice(&((self.memory_capacity * 65_536.0).round() as u32).to_le_bytes());
        for w in &self.readout_q15 {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b
    }
}

/// Trains the model, prints the host's figures and writes the blob under `target_dir`.
pub fn write(target_dir: &Path) -> Result<PathBuf, String> {
    let m = train()?;
    println!(
        "xtask: demo model: ridge readout (lambda {RIDGE}) on periods {WASHOUT}..{TRAIN_END}, held out {TRAIN_END}..{PERIODS}: NRMSE Q1.15 {:.4}, float {:.4}; Q1.15 MSE over the run {:.6}; memory capacity {:.2}",
        m.nrmse_q15_held_out,
        m.nrmse_float_held_out,
        m.mse_q16 as f64 / 65_536.0,
        m.memory_capacity
    );
    std::fs::create_dir_all(target_dir)
        .map_err(|e| format!("creating {}: {e}", target_dir.display()))?;
    let path = target_dir.join("demo-model.bin");
    std::fs::write(&path, m.to_bytes()).map_err(|e| format!("writing {}: {e}", path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_trained_readout_predicts_the_held_out_signal() {
        let m = train().expect("training the demo model");
        // A readout that learned nothing scores about 1; the signal is periodic (lcm 280),
        // so a trained reservoir predicts it well in both arithmetics.
        assert!(
            m.nrmse_float_held_out < 0.1,
            "float NRMSE {}",
            m.nrmse_float_held_out
        );
        assert!(
            m.nrmse_q15_held_out < 0.1,
            "Q1.15 NRMSE {}",
            m.nrmse_q15_held_out
        );
        assert_eq!(m.to_bytes().len(), 8 + 8 + 8 * 4 + 16 + 4 + 2 * UNITS);
        // MC is at most N (Jaeger); a 50-unit leaky reservoir keeps a few steps, not none.
        assert!(
            m.memory_capacity > 1.0 && m.memory_capacity <= UNITS as f64,
            "memory capacity {}",
            m.memory_capacity
        );
    }

    #[test]
    fn ridge_solves_a_known_system() {
        let a = vec![vec![1.0, 0.0], vec![0.0, 2.0], vec![1.0, 1.0]];
        let y = [1.0, 4.0, 3.0];
        let w = ridge(&a, &y, 0.0).unwrap();
        assert!(
            (w[0] - 1.0).abs() < 1e-12 && (w[1] - 2.0).abs() < 1e-12,
            "{w:?}"
        );
    }
}
