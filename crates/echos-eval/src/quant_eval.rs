//! Accuracy of the int8 / int16 quantized reservoirs next to float32 on the same weights:
//! NARMA10 (NRMSE on a held-out segment) and Jaeger's memory capacity, each with a ridge readout
//! fitted in f64 on the (dequantized) states the format produces at deploy time.
//!
//! Protocol (docs/performance.md, "Accuracy of reduced precision"): reservoirs and data are
//! generated as in [`echos_host::tasks`] (the float32 task figures), figures are the mean ± std
//! over evaluation seeds 0, 1, 2; anything chosen — the ridge λ of each format, and in the
//! per-format tuned comparison the reservoir hyperparameters — is chosen on tuning seeds 1000,
//! 1001, 1002 only, by the same rule for every format, float32 included.

use echos_core::esn::{Esn, EsnConfig, StepKernel};
use echos_core::kernels::quant::{calibrate_state_ranges, QuantLevel, QuantReservoir};
use echos_core::kernels::reservoir::FusedReservoir;
use echos_core::kernels::{Kernel, KernelError, Variant};
use echos_core::metrics;
use echos_core::model::{MemoryCapacity, ModelError};
use echos_core::readout::{ReadoutError, Ridge};
use echos_core::rng::Rng;
use echos_core::topology::Topology;
use echos_host::datasets;
use echos_host::tasks::{MemoryCapacitySetup, Narma10Setup};

/// Seeds the figures are reported on.
pub const EVAL_SEEDS: [u64; 3] = [0, 1, 2];
/// Seeds every choice (ridge, hyperparameters) is made on.
pub const TUNING_SEEDS: [u64; 3] = [1000, 1001, 1002];
/// Ridge λ candidates for NARMA10 (the float32 task searched 1e-10..1e-5 and kept 1e-10).
pub const NARMA_RIDGES: [f64; 6] = [1e-12, 1e-10, 1e-8, 1e-7, 1e-6, 1e-4];

/// Why an accuracy run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum QuantEvalError {
    #[error("reservoir configuration refused: {0}")]
    Config(echos_core::esn::ConfigError),
    #[error(transparent)]
    Kernel(#[from] KernelError),
    #[error(transparent)]
    Dataset(#[from] datasets::DatasetError),
    #[error("the ridge system for {format} (λ = {ridge:e}) is not positive definite")]
    Singular { format: &'static str, ridge: f64 },
    #[error("metric failed: {0}")]
    Metric(metrics::MetricError),
    #[error("memory capacity run failed: {0}")]
    Model(ModelError),
    #[error("{what} = {value} is out of range: {why}")]
    Parameter {
        what: &'static str,
        value: String,
        why: &'static str,
    },
}

/// A reservoir in one storage format, stepped on one input.
pub trait Stepper {
    /// Format name.
    fn name(&self) -> &'static str;
    /// One step, then the (dequantized) state into `out`.
    fn step_into(&mut self, u: f32, out: &mut [f32]);
    /// Bytes held per reservoir (weights + state).
    fn bytes(&self) -> usize;
}

impl Stepper for FusedReservoir {
    fn name(&self) -> &'static str {
        "float32"
    }
    fn step_into(&mut self, u: f32, out: &mut [f32]) {
        let s = self
            .step(Kernel::best(), &[u])
            .expect("one input, checked at construction");
        out.copy_from_slice(s);
    }
    fn bytes(&self) -> usize {
        // The scalar/CSR form: the SELL copy is a speed cache, not part of the format.
        self.bytes_per_step() + self.units() * 4
    }
}

impl<W: QuantLevel, S: QuantLevel> Stepper for QuantReservoir<W, S> {
    fn name(&self) -> &'static str {
        self.format_name()
    }
    fn step_into(&mut self, u: f32, out: &mut [f32]) {
        self.step(&[u]).expect("one input, checked at construction");
        self.state_f32(out).expect("buffer of `units`");
    }
    fn bytes(&self) -> usize {
        QuantReservoir::bytes(self)
    }
}

/// The storage formats compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
pub enum Format {
    Float32,
    Int16,
    /// int8 weights, int16 states.
    Int8WeightsInt16States,
    /// int8 weights and int8 states.
    Int8,
    /// Diagnostic, not a storage format: float32 dynamics, with only the states the readout
    /// sees rounded to int8's grid (the readout's share of int8's error).
    Float32DynamicsInt8Readout,
    /// Diagnostic: int16 weights, int8 states (the states' share, weights nearly exact).
    Int16WeightsInt8States,
}

impl Format {
    pub const ALL: [Format; 4] = [
        Format::Float32,
        Format::Int16,
        Format::Int8WeightsInt16States,
        Format::Int8,
    ];

    /// The steps from float32 to int8, one error source at a time.
    pub const INT8_ERROR_BUDGET: [Format; 4] = [
        Format::Float32,
        Format::Float32DynamicsInt8Readout,
        Format::Int16WeightsInt8States,
        Format::Int8,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Format::Float32 => "float32",
            Format::Int16 => "int16",
            Format::Int8WeightsInt16States => "int8w/int16s",
            Format::Int8 => "int8",
            Format::Float32DynamicsInt8Readout => "float32, int8 readout",
            Format::Int16WeightsInt8States => "int16w/int8s",
        }
    }

    /// The float reservoir `r` in this format; quantized state ranges are calibrated on the
    /// training input `calibration` (after `washout` steps) only.
    pub fn stepper(
        self,
        r: &FusedReservoir,
        calibration: &[f32],
        washout: usize,
    ) -> Result<Box<dyn Stepper>, QuantEvalError> {
        if self == Format::Float32 {
            return Ok(Box::new(r.clone()));
        }
        let (lo, hi) = calibrate_state_ranges(r, calibration, washout)?;
        Ok(match self {
            Format::Int16 => Box::new(QuantReservoir::<i16>::from_fused_with_ranges(r, &lo, &hi)?),
            Format::Int8WeightsInt16States => Box::new(
                QuantReservoir::<i8, i16>::from_fused_with_ranges(r, &lo, &hi)?,
            ),
            Format::Int16WeightsInt8States => Box::new(
                QuantReservoir::<i16, i8>::from_fused_with_ranges(r, &lo, &hi)?,
            ),
            Format::Float32DynamicsInt8Readout => Box::new(RoundedReadout {
                r: r.clone(),
                offset: lo.iter().zip(&hi).map(|(a, b)| 0.5 * (a + b)).collect(),
                step: lo
                    .iter()
                    .zip(&hi)
                    .map(|(a, b)| 0.5 * (b - a) / 127.0)
                    .collect(),
            }),
            // Float32 returned above.
            Format::Int8 | Format::Float32 => {
                Box::new(QuantReservoir::<i8>::from_fused_with_ranges(r, &lo, &hi)?)
            }
        })
    }
}

/// A float32 reservoir whose output states are rounded to the int8 grid `QuantReservoir`
/// would use (the same calibrated ranges), while its own dynamics stay float.
struct RoundedReadout {
    r: FusedReservoir,
    offset: Vec<f32>,
    step: Vec<f32>,
}

impl Stepper for RoundedReadout {
    fn name(&self) -> &'static str {
        Format::Float32DynamicsInt8Readout.name()
    }
    fn step_into(&mut self, u: f32, out: &mut [f32]) {
        self.r.step_into(u, out);
        for ((o, &c), &h) in out.iter_mut().zip(&self.offset).zip(&self.step) {
            *o = c + h * ((*o - c) / h).round().clamp(-127.0, 127.0);
        }
    }
    fn bytes(&self) -> usize {
        Stepper::bytes(&self.r)
    }
}

/// The f32 reservoir the engine's `Esn` generates for `config` (same draws as the float task
/// figures), as the engine's own fused builder makes it (the scalar variant).
pub fn fused_from_config(config: &EsnConfig) -> Result<FusedReservoir, QuantEvalError> {
    let config = EsnConfig {
        kernel: StepKernel::Fused(Variant::Scalar),
        ..config.clone()
    };
    let esn = Esn::<f32>::new(&config).map_err(QuantEvalError::Config)?;
    Ok(esn
        .fused_reservoir()
        .expect("a fused kernel was configured")
        .clone())
}

/// Ridge regression in f64 over [1, x] for every λ in `lambdas`, by the engine's one solver
/// (`Ridge::fit_path`: one accumulation, one Cholesky per λ); the bias column is not
/// regularised. Per λ: weights per output, (1 + features) each, or None where the system is
/// not positive definite.
pub fn ridge_path(x: &[Vec<f64>], y: &[Vec<f64>], lambdas: &[f64]) -> Vec<Option<Vec<Vec<f64>>>> {
    let (Some(x0), Some(y0)) = (x.first(), y.first()) else {
        return vec![None; lambdas.len()];
    };
    let Ok(mut solver) = Ridge::new(x0.len(), y0.len(), 0.0) else {
        return vec![None; lambdas.len()];
    };
    for (xs, ys) in x.iter().zip(y) {
        if solver.accumulate(xs, ys).is_err() {
            return vec![None; lambdas.len()];
        }
    }
    lambdas
        .iter()
        .map(|&lambda| {
            let fit = solver.fit_with(lambda).ok()?;
            let w = &fit.weights;
            Some((0..w.rows).map(|o| w.row(o).to_vec()).collect())
        })
        .collect()
}

/// Ridge regression for one λ (see [`ridge_path`]).
pub fn ridge(x: &[Vec<f64>], y: &[Vec<f64>], lambda: f64) -> Option<Vec<Vec<f64>>> {
    ridge_path(x, y, &[lambda]).pop().flatten()
}

fn predict(w: &[f64], x: &[f64]) -> f64 {
    w[0] + w[1..].iter().zip(x).map(|(a, b)| a * b).sum::<f64>()
}

/// Sample mean and standard deviation (n − 1).
pub fn mean_std(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let m = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (m, 0.0);
    }
    let var = v.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, var.sqrt())
}

/// Reservoir hyperparameters of a NARMA10 run (connectivity 0.1, leak rate 1, normal weights,
/// uniform inputs, as in [`Narma10Setup`]).
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize)]
pub struct NarmaHyper {
    pub spectral_radius: f64,
    pub input_scaling: f64,
    pub bias_scaling: f64,
    /// Layout of W (the float task uses `Random`).
    pub topology: Topology,
}

impl NarmaHyper {
    /// float32's tuned setup ([`Narma10Setup::for_units`]).
    pub fn float32_tuned(units: usize) -> Self {
        let s = Narma10Setup::for_units(units);
        NarmaHyper {
            spectral_radius: s.spectral_radius,
            input_scaling: s.input_scaling,
            bias_scaling: s.bias_scaling,
            topology: Topology::Random,
        }
    }

    /// Each format's own best point of the grid in the `quant_tune` example (tuning seeds only;
    /// float32 searched on the same grid). `None` for sizes the grid was not run at.
    pub fn tuned_for(format: Format, units: usize) -> Option<Self> {
        let h = |spectral_radius, input_scaling, bias_scaling| NarmaHyper {
            spectral_radius,
            input_scaling,
            bias_scaling,
            topology: Topology::Random,
        };
        TUNED
            .iter()
            .find(|t| t.0 == format && t.1 == units)
            .map(|t| h(t.2, t.3, t.4))
    }
}

/// (format, units, spectral radius, input scaling, bias scaling): the per-format grid optimum of
/// `cargo run --release -p echos-eval --example quant_tune -- 100 200` (spectral radius
/// 0.9–1.4, input scaling 0.05–1, bias 0.25–1, λ from [`NARMA_RIDGES`]; mean NRMSE over the
/// tuning seeds in the comments). Every linear-ish format prefers float32's weakly driven
/// regime; int8 prefers a strongly driven one, where the nonlinear terms NARMA10 needs are
/// larger than its state step.
const TUNED: [(Format, usize, f64, f64, f64); 8] = [
    (Format::Float32, 100, 0.95, 0.05, 0.75), // 0.2166, λ 1e-12
    (Format::Int16, 100, 1.0, 0.05, 0.75),    // 0.2248, λ 1e-12
    (Format::Int8WeightsInt16States, 100, 1.0, 0.05, 0.75), // 0.2252, λ 1e-12
    (Format::Int8, 100, 1.1, 0.6, 0.5),       // 0.3692, λ 1e-4
    (Format::Float32, 200, 0.95, 0.05, 0.5),  // 0.1584, λ 1e-10
    (Format::Int16, 200, 0.95, 0.05, 0.5),    // 0.1621, λ 1e-10
    (Format::Int8WeightsInt16States, 200, 0.95, 0.05, 0.5), // 0.1619, λ 1e-10
    (Format::Int8, 200, 1.1, 0.6, 0.5),       // 0.2563, λ 1e-12
];

/// NARMA10 split, as in [`Narma10Setup`]: washout, train, test (the test continues the state).
const NARMA_SPLIT: (usize, usize, usize) = (200, 2000, 3000);

/// The run of one format on one seed.
struct NarmaRun {
    /// Readout features [u(t), x(t)] per step.
    features: Vec<Vec<f64>>,
    targets: Vec<f64>,
    bytes: usize,
}

fn narma10_features(
    format: Format,
    units: usize,
    hyper: NarmaHyper,
    seed: u64,
) -> Result<NarmaRun, QuantEvalError> {
    let (washout, train, test) = NARMA_SPLIT;
    let (u, y) = datasets::narma10(washout + train + test, seed)?;
    let config = EsnConfig {
        units,
        inputs: 1,
        spectral_radius: hyper.spectral_radius,
        leak_rate: 1.0,
        input_scaling: hyper.input_scaling,
        bias_scaling: hyper.bias_scaling,
        connectivity: 0.1,
        topology: hyper.topology,
        seed: seed ^ 0x5eed_0000_0000_0000,
        ..EsnConfig::default()
    };
    let r = fused_from_config(&config)?;
    let calibration: Vec<f32> = u[..washout + train].iter().map(|&v| v as f32).collect();
    let mut stepper = format.stepper(&r, &calibration, washout)?;
    let bytes = stepper.bytes();
    let mut x = vec![0.0f32; units];
    let features = u
        .iter()
        .map(|&ut| {
            stepper.step_into(ut as f32, &mut x);
            let mut f = Vec::with_capacity(units + 1);
            f.push(ut);
            f.extend(x.iter().map(|&v| v as f64));
            f
        })
        .collect();
    Ok(NarmaRun {
        features,
        targets: y,
        bytes,
    })
}

/// NARMA10 test NRMSE of one format on one seed for every λ in `ridges` (NaN where the
/// system is singular), and the bytes of the reservoir.
pub fn narma10_nrmse_per_ridge(
    format: Format,
    units: usize,
    hyper: NarmaHyper,
    seed: u64,
    ridges: &[f64],
) -> Result<(Vec<f64>, usize), QuantEvalError> {
    let (washout, train, _) = NARMA_SPLIT;
    let NarmaRun {
        features: x,
        targets: y,
        bytes,
    } = narma10_features(format, units, hyper, seed)?;
    let fit = washout..washout + train;
    let targets: Vec<Vec<f64>> = y[fit.clone()].iter().map(|&v| vec![v]).collect();
    let test = washout + train..y.len();
    let scores = ridge_path(&x[fit], &targets, ridges)
        .into_iter()
        .map(|w| match w {
            None => Ok(f64::NAN),
            Some(w) => {
                let pred: Vec<f64> = test.clone().map(|t| predict(&w[0], &x[t])).collect();
                metrics::nrmse(&pred, &y[test.clone()]).map_err(QuantEvalError::Metric)
            }
        })
        .collect::<Result<Vec<f64>, _>>()?;
    Ok((scores, bytes))
}

/// One format's NARMA10 figure.
#[derive(Clone, Debug, serde::Serialize)]
pub struct NarmaRow {
    pub format: &'static str,
    pub units: usize,
    pub hyper: NarmaHyper,
    /// λ chosen on the tuning seeds.
    pub ridge: f64,
    /// Mean NRMSE over the tuning seeds at that λ.
    pub tuning_nrmse: f64,
    /// NRMSE per evaluation seed.
    pub nrmse: Vec<f64>,
    pub mean: f64,
    pub std: f64,
    pub bytes: usize,
}

/// The λ of `ridges` with the lowest mean NRMSE over the tuning seeds, and that mean.
pub fn select_ridge(
    format: Format,
    units: usize,
    hyper: NarmaHyper,
    ridges: &[f64],
) -> Result<(f64, f64), QuantEvalError> {
    let mut sum = vec![0.0f64; ridges.len()];
    for &seed in &TUNING_SEEDS {
        let (scores, _) = narma10_nrmse_per_ridge(format, units, hyper, seed, ridges)?;
        for (s, v) in sum.iter_mut().zip(scores) {
            // A singular λ must never win.
            *s += if v.is_nan() { f64::INFINITY } else { v };
        }
    }
    let (best, total) = sum
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .ok_or(QuantEvalError::Parameter {
            what: "ridges",
            value: "[]".into(),
            why: "need at least one candidate",
        })?;
    Ok((ridges[best], total / TUNING_SEEDS.len() as f64))
}

/// NARMA10 of one format: λ chosen on the tuning seeds, NRMSE on the evaluation seeds.
pub fn narma10_row(
    format: Format,
    units: usize,
    hyper: NarmaHyper,
) -> Result<NarmaRow, QuantEvalError> {
    let (ridge, tuning_nrmse) = select_ridge(format, units, hyper, &NARMA_RIDGES)?;
    let mut nrmse = Vec::new();
    let mut bytes = 0;
    for &seed in &EVAL_SEEDS {
        let (s, b) = narma10_nrmse_per_ridge(format, units, hyper, seed, &[ridge])?;
        nrmse.push(s[0]);
        bytes = b;
    }
    let (mean, std) = mean_std(&nrmse);
    Ok(NarmaRow {
        format: format.name(),
        units,
        hyper,
        ridge,
        tuning_nrmse,
        nrmse,
        mean,
        std,
        bytes,
    })
}

/// Memory capacity of one format on one seed, in float32's tuned setup
/// ([`MemoryCapacitySetup::default`]: cycle reservoir, ridge 1e-12) at `units`; state ranges
/// calibrated on the training part.
pub fn memory_capacity(format: Format, units: usize, seed: u64) -> Result<f64, QuantEvalError> {
    let s = MemoryCapacitySetup {
        units,
        ..MemoryCapacitySetup::default()
    };
    let d = s.max_delay;
    if s.washout < d {
        return Err(QuantEvalError::Parameter {
            what: "washout",
            value: s.washout.to_string(),
            why: "must be at least max_delay",
        });
    }
    let setup = MemoryCapacity {
        washout: s.washout,
        train: s.train,
        test: s.test,
        max_delay: d,
        ridge: s.ridge,
    };
    let mut rng = Rng::new(seed);
    let u: Vec<f64> = (0..setup.steps())
        .map(|_| rng.uniform(-s.input_range, s.input_range))
        .collect();
    let config = EsnConfig {
        units,
        inputs: 1,
        spectral_radius: s.spectral_radius,
        leak_rate: 1.0,
        input_scaling: s.input_scaling,
        input_distribution: s.input_distribution,
        bias_scaling: 0.0,
        connectivity: s.connectivity,
        topology: s.topology,
        seed: seed ^ 0x5eed_0000_0000_0000,
        ..EsnConfig::default()
    };
    let r = fused_from_config(&config)?;
    let n_fit = s.washout + s.train;
    let calibration: Vec<f32> = u[..n_fit].iter().map(|&v| v as f32).collect();
    let mut stepper = format.stepper(&r, &calibration, s.washout)?;
    let mut x32 = vec![0.0f32; units];
    // The one definition of memory capacity; only the states come from this format.
    setup
        .measure(&u, units, |ut, x| {
            stepper.step_into(ut as f32, &mut x32);
            for (o, &v) in x.iter_mut().zip(&x32) {
                *o = f64::from(v);
            }
            Ok::<(), ModelError>(())
        })
        .map_err(|e| match e {
            ModelError::Readout(ReadoutError::NotPositiveDefinite) => QuantEvalError::Singular {
                format: format.name(),
                ridge: s.ridge,
            },
            other => QuantEvalError::Model(other),
        })
}

/// One format's memory capacity over the evaluation seeds: (per seed, mean, std).
pub fn memory_capacity_row(
    format: Format,
    units: usize,
) -> Result<(Vec<f64>, f64, f64), QuantEvalError> {
    let mc = EVAL_SEEDS
        .iter()
        .map(|&seed| memory_capacity(format, units, seed))
        .collect::<Result<Vec<f64>, _>>()?;
    let (m, s) = mean_std(&mc);
    Ok((mc, m, s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ridge_recovers_a_linear_map() {
        let x: Vec<Vec<f64>> = (0..50)
            .map(|i| vec![(i as f64 * 0.3).sin(), (i as f64 * 0.7).cos()])
            .collect();
        let y: Vec<Vec<f64>> = x
            .iter()
            .map(|v| vec![0.5 + 2.0 * v[0] - 3.0 * v[1]])
            .collect();
        let w = ridge(&x, &y, 1e-10).unwrap();
        assert!(
            (w[0][0] - 0.5).abs() < 1e-6
                && (w[0][1] - 2.0).abs() < 1e-6
                && (w[0][2] + 3.0).abs() < 1e-6
        );
    }

    fn rows(units: usize, formats: &[Format], own: bool) -> Vec<NarmaRow> {
        formats
            .iter()
            .map(|&f| {
                let hyper = if own {
                    NarmaHyper::tuned_for(f, units).expect("tuned at this size")
                } else {
                    NarmaHyper::float32_tuned(units)
                };
                let r = narma10_row(f, units, hyper).unwrap();
                eprintln!(
                    "{:13} N {units:4} {hyper:?} ridge {:e}: NARMA10 NRMSE {:.4} ± {:.4} {:?}",
                    r.format, r.ridge, r.mean, r.std, r.nrmse
                );
                r
            })
            .collect()
    }

    /// On float32's own tuned NARMA10 setup (weakly driven, nearly linear reservoir), int16
    /// states keep the figure (measured +2.2% / +1.8% at N = 100, +1.9% / +2.0% at N = 200).
    fn int16_states_keep_float32_narma10(units: usize) {
        let r = rows(
            units,
            &[
                Format::Float32,
                Format::Int16,
                Format::Int8WeightsInt16States,
            ],
            false,
        );
        assert!(
            r[0].mean < 0.3,
            "float32 should learn NARMA10: {}",
            r[0].mean
        );
        for q in &r[1..] {
            assert!(
                q.mean <= 1.05 * r[0].mean,
                "{} {} vs float32 {}",
                q.format,
                q.mean,
                r[0].mean
            );
        }
        assert!(r[2].bytes < r[1].bytes && r[1].bytes < r[0].bytes);
    }

    #[test]
    fn int16_states_keep_float32_narma10_at_100_units() {
        int16_states_keep_float32_narma10(100);
    }

    #[test]
    fn int16_states_keep_float32_narma10_at_200_units() {
        int16_states_keep_float32_narma10(200);
    }

    /// Memory capacity on float32's tuned setup (cycle reservoir, 200 delays): int8 states
    /// keep most of it (measured 93.7 vs 97.4 at N = 100).
    #[test]
    fn int8_keeps_most_of_the_memory_capacity() {
        let (_, f, _) = memory_capacity_row(Format::Float32, 100).unwrap();
        let (_, q, _) = memory_capacity_row(Format::Int8, 100).unwrap();
        eprintln!("memory capacity N 100: float32 {f:.2}, int8 {q:.2}");
        assert!(f > 90.0, "float32 memory capacity {f}");
        assert!(q >= 0.93 * f, "int8 {q} vs float32 {f}");
    }

    /// Why int8 misses: on float32's tuned setup nearly all of int8's loss is already there
    /// when only the states the readout sees are rounded to int8's grid (measured 94% of it at
    /// N = 100), i.e. it is the 8-bit resolution of the features, not the integer step. At
    /// int8's own tuned (strongly driven) point, float32 on the same weights is only a little
    /// better (measured +8.8%), but 57% worse than float32 at its own optimum.
    #[test]
    fn int8_loss_is_the_readout_resolution() {
        let budget = |hyper: NarmaHyper| -> Vec<f64> {
            Format::INT8_ERROR_BUDGET
                .iter()
                .map(|&f| narma10_row(f, 100, hyper).unwrap().mean)
                .collect()
        };
        let b = budget(NarmaHyper::float32_tuned(100));
        eprintln!("error budget N 100, float32-tuned: {b:?}");
        let (float, readout_only, int8) = (b[0], b[1], b[3]);
        assert!(int8 > 1.5 * float, "int8 {int8} vs float32 {float}");
        assert!(
            readout_only - float >= 0.8 * (int8 - float),
            "readout-only rounding {readout_only}, int8 {int8}, float32 {float}"
        );
        let own = budget(NarmaHyper::tuned_for(Format::Int8, 100).unwrap());
        eprintln!("error budget N 100, int8-tuned: {own:?}");
        assert!(
            own[3] <= 1.15 * own[0],
            "int8 {} vs float32 {}",
            own[3],
            own[0]
        );
    }

    /// The figure for full int8 (weights and states): NARMA10 NRMSE within 10% of
    /// float32, both on float32's tuned hyperparameters and with each format tuned on its own
    /// (tuning seeds only). Not reached — see docs/performance.md for the measured gap and why
    /// (8-bit state resolution at the readout) — so it does not run by default:
    /// `cargo test -p echos-eval --lib quant_eval -- --ignored --nocapture`.
    #[test]
    #[ignore = "figure not reached: int8 states cost +89% NARMA10 NRMSE on float32's tuned setup and +70% with each format tuned, N = 100"]
    fn int8_narma10_within_ten_percent_of_float32() {
        for own in [false, true] {
            let r = rows(100, &[Format::Float32, Format::Int8], own);
            assert!(
                r[1].mean <= 1.10 * r[0].mean,
                "own-tuned {own}: int8 {} vs float32 {}",
                r[1].mean,
                r[0].mean
            );
        }
    }
}
