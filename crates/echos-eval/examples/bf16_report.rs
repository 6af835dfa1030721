//! NARMA10 accuracy of the opt-in bf16-products batch format against f32, on the same block
//! reservoirs: `cargo run --release -p echos-eval --example bf16_report [units…]` (default
//! 200 1000). Protocol as the block accuracy figures (`Narma10Setup::for_units`
//! hyperparameters, block size 16, evaluation seeds 0–2) with the readout of the quantization
//! figures (ridge in f64 over [1, u(t), x(t)], λ per format chosen on seeds 1000–1002); every
//! format runs the fused block step through `BatchRunner` (f32 block kernel, or the bf16
//! format with one of three centres), so the only difference is the bf16 rounding.

use echos_core::esn::{Esn, EsnConfig};
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::Kernel;
use echos_core::metrics;
use echos_core::topology::{ReservoirMatrix, Topology};
use echos_eval::quant_eval::{mean_std, ridge_path, EVAL_SEEDS, NARMA_RIDGES, TUNING_SEEDS};
use echos_host::datasets;
use echos_host::ensemble::BatchRunner;
use echos_host::tasks::Narma10Setup;

type Res<T> = Result<T, Box<dyn std::error::Error>>;

/// (spectral radius, input scaling, bias scaling).
type Hyper = (f64, f64, f64);

fn setup_hyper(units: usize) -> Hyper {
    let s = Narma10Setup::for_units(units);
    (s.spectral_radius, s.input_scaling, s.bias_scaling)
}

/// The engine's block reservoir for the NARMA10 setup at `units`, seed `seed`, as a fused
/// f32 block reservoir.
fn reservoir(units: usize, seed: u64, h: Hyper) -> Res<FusedReservoir> {
    let s = Narma10Setup::for_units(units);
    let config = EsnConfig {
        units,
        inputs: 1,
        spectral_radius: h.0,
        leak_rate: s.leak_rate,
        input_scaling: h.1,
        bias_scaling: h.2,
        connectivity: s.connectivity,
        topology: Topology::Block { size: 16 },
        seed: seed ^ 0x5eed_0000_0000_0000,
        ..EsnConfig::default()
    };
    let esn = Esn::<f32>::new(&config)?;
    let ReservoirMatrix::Block(b) = esn.w() else {
        return Err("block topology did not give a block matrix".into());
    };
    Ok(FusedReservoir::new_block(
        units,
        1,
        b.size,
        b.per_group,
        &b.indices,
        &b.values,
        esn.w_in().data.clone(),
        esn.bias().to_vec(),
        s.leak_rate as f32,
    )?)
}

/// The formats compared.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    F32,
    /// bf16 products, centre zero (states rounded as they are).
    Bf16Uncentred,
    /// bf16 products around the zero-input operating point (`BatchRunner::new_bf16`).
    Bf16ZeroInputCentre,
    /// bf16 products around the mean f32 state over the training input after the washout.
    Bf16MeanCentre,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::F32 => "f32",
            Format::Bf16Uncentred => "bf16 products, no centre",
            Format::Bf16ZeroInputCentre => "bf16 products, zero-input centre (default)",
            Format::Bf16MeanCentre => "bf16 products, mean-state centre (calibrated)",
        }
    }
}

/// Test NRMSE for every λ of `ridges`, one format, one seed.
fn nrmse_per_ridge(
    units: usize,
    format: Format,
    h: Hyper,
    seed: u64,
    ridges: &[f64],
) -> Res<Vec<f64>> {
    let s = Narma10Setup::for_units(units);
    let total = s.washout + s.train + s.test;
    let (u, y) = datasets::narma10(total, seed)?;
    let r = reservoir(units, seed, h)?;
    let kernel = Kernel::best();
    let mut runner = match format {
        Format::F32 => BatchRunner::new(&r, kernel, 1, 1)?,
        Format::Bf16Uncentred => {
            BatchRunner::new_bf16_with_centre(&r, &vec![0.0; units], kernel, 1, 1)?
        }
        Format::Bf16ZeroInputCentre => BatchRunner::new_bf16(&r, kernel, 1, 1)?,
        Format::Bf16MeanCentre => {
            // Calibration on the training input only, after the washout (as the quantized
            // formats' state ranges), with the f32 step.
            let mut f = r.clone();
            let mut mean = vec![0.0f64; units];
            for (t, &ut) in u[..s.washout + s.train].iter().enumerate() {
                let x = f.step(kernel, &[ut as f32])?;
                if t >= s.washout {
                    for (m, &v) in mean.iter_mut().zip(x) {
                        *m += f64::from(v) / s.train as f64;
                    }
                }
            }
            let centre: Vec<f32> = mean.iter().map(|&v| v as f32).collect();
            BatchRunner::new_bf16_with_centre(&r, &centre, kernel, 1, 1)?
        }
    };
    let mut x = vec![0.0f32; units];
    let mut features = Vec::with_capacity(total);
    for &ut in &u {
        runner.run(1, &[ut as f32])?;
        runner.copy_state(0, &mut x)?;
        let mut f = Vec::with_capacity(units + 1);
        f.push(ut);
        f.extend(x.iter().map(|&v| f64::from(v)));
        features.push(f);
    }
    let fit = s.washout..s.washout + s.train;
    let targets: Vec<Vec<f64>> = y[fit.clone()].iter().map(|&v| vec![v]).collect();
    let test = s.washout + s.train..total;
    ridge_path(&features[fit], &targets, ridges)
        .into_iter()
        .map(|w| match w {
            None => Ok(f64::NAN),
            Some(w) => {
                let pred: Vec<f64> = test
                    .clone()
                    .map(|t| {
                        w[0][0]
                            + w[0][1..]
                                .iter()
                                .zip(&features[t])
                                .map(|(a, b)| a * b)
                                .sum::<f64>()
                    })
                    .collect();
                Ok(metrics::nrmse(&pred, &y[test.clone()])?)
            }
        })
        .collect()
}

/// The λ of `NARMA_RIDGES` with the lowest mean NRMSE over the tuning seeds, and that mean.
fn tune_ridge(units: usize, format: Format, h: Hyper) -> Res<(f64, f64)> {
    let mut sum = vec![0.0f64; NARMA_RIDGES.len()];
    for &seed in &TUNING_SEEDS {
        for (acc, v) in sum
            .iter_mut()
            .zip(nrmse_per_ridge(units, format, h, seed, &NARMA_RIDGES)?)
        {
            *acc += if v.is_nan() { f64::INFINITY } else { v };
        }
    }
    let best = (0..sum.len())
        .min_by(|&a, &b| sum[a].total_cmp(&sum[b]))
        .ok_or("no ridge")?;
    Ok((NARMA_RIDGES[best], sum[best] / TUNING_SEEDS.len() as f64))
}

fn main() -> Res<()> {
    let mut sizes: Vec<usize> = std::env::args()
        .skip(1)
        .map(|a| a.parse())
        .collect::<Result<_, _>>()?;
    if sizes.is_empty() {
        sizes = vec![200, 1000];
    }
    // BF16_REPORT_GRID=1: each format also at its own best point of a small grid (spectral
    // radius × input scaling, bias 0.5), chosen on the tuning seeds only.
    let grid = std::env::var("BF16_REPORT_GRID").is_ok_and(|v| v == "1");
    let formats = [
        Format::F32,
        Format::Bf16Uncentred,
        Format::Bf16ZeroInputCentre,
        Format::Bf16MeanCentre,
    ];
    println!("| format | N | sr / input / bias | λ (chosen on seeds 1000-1002) | NRMSE seeds 0-2 | per seed | vs f32 |");
    println!("|---|---|---|---|---|---|---|");
    for &units in &sizes {
        let mut f32_mean = f64::INFINITY;
        for format in formats {
            let mut points = vec![(setup_hyper(units), "setup")];
            if grid {
                for sr in [0.95, 1.1, 1.25] {
                    for input in [0.05, 0.2, 0.6, 1.0] {
                        points.push(((sr, input, 0.5), "own-tuned"));
                    }
                }
            }
            let mut rows = Vec::new();
            let (h, lambda, _) = points
                .iter()
                .map(|&(h, _)| tune_ridge(units, format, h).map(|(l, t)| (h, l, t)))
                .collect::<Res<Vec<_>>>()?
                .into_iter()
                .min_by(|a, b| a.2.total_cmp(&b.2))
                .ok_or("no grid point")?;
            rows.push((h, lambda, if grid { "own-tuned" } else { "setup" }));
            if grid {
                let h0 = setup_hyper(units);
                rows.insert(0, (h0, tune_ridge(units, format, h0)?.0, "setup"));
            }
            for (h, lambda, label) in rows {
                let per_seed = EVAL_SEEDS
                    .iter()
                    .map(|&seed| Ok(nrmse_per_ridge(units, format, h, seed, &[lambda])?[0]))
                    .collect::<Res<Vec<f64>>>()?;
                let (mean, std) = mean_std(&per_seed);
                let vs = if format == Format::F32 {
                    // Every bf16 row is compared with f32's best row.
                    f32_mean = f32_mean.min(mean);
                    "—".into()
                } else {
                    format!("{:+.1}%", 100.0 * (mean / f32_mean - 1.0))
                };
                println!(
                    "| {} | {units} | {label} {:.2} / {:.2} / {:.2} | {lambda:e} | {mean:.4} ± {std:.4} | {per_seed:.4?} | {vs} |",
                    format.name(),
                    h.0,
                    h.1,
                    h.2
                );
            }
        }
    }
    Ok(())
}
