//! Batch training of an echo state network and its ridge readout on whole series, and the
//! trained model's teacher-forced run, closed-loop generation and evaluation. The per-step work
//! is the engine's (`Esn::step`, `Ridge::accumulate`, `Linear::predict`); this module arranges
//! series, feature vectors and errors.

use echos_core::esn::{ConfigError, Esn, EsnConfig, StepError, StepKernel};
use echos_core::metrics::{self, MetricError};
pub use echos_core::model::Generative;
use echos_core::model::{self, ModelError, Trained, TrainingPass};
use echos_core::readout::{Linear, ReadoutError, Ridge};
use echos_core::topology::Topology;
use serde::{Deserialize, Serialize};

use crate::array::Array2;

/// Why training, running or evaluating failed.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error("invalid reservoir configuration: {0}")]
    Config(#[from] ConfigError),
    #[error("reservoir step failed: {0}")]
    Step(#[from] StepError),
    #[error("{0}")]
    Model(ModelError),
    #[error("readout: {0}")]
    Readout(#[from] ReadoutError),
    #[error("metric: {0}")]
    Metric(#[from] MetricError),
    #[error("input has {input} time steps but target has {target}; they must match")]
    LengthMismatch { input: usize, target: usize },
    #[error("{what} has {got} columns, the model expects {expected}")]
    Columns {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("washout ({washout}) must be smaller than the number of time steps ({steps})")]
    WashoutTooLong { washout: usize, steps: usize },
    #[error("the model's output became NaN or infinite (the closed loop or the input drove it out of range)")]
    NonFiniteOutput,
    #[error("closed-loop generation needs a model trained with --generative (output fed back as input) or with output feedback")]
    NotGenerative,
    #[error(
        "generative training needs as many input columns as target columns ({inputs} vs {outputs})"
    )]
    GenerativeShape { inputs: usize, outputs: usize },
    #[error("{name} must be {requirement} (got {value})")]
    Parameter {
        name: &'static str,
        requirement: &'static str,
        value: f64,
    },
}

impl From<ModelError> for TrainError {
    /// The driver's errors as the host's own variants where they mean the same thing.
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Step(e) => Self::Step(e),
            ModelError::Readout(e) => Self::Readout(e),
            ModelError::LengthMismatch { input, target } => Self::LengthMismatch { input, target },
            ModelError::WashoutTooLong { washout, steps } => {
                Self::WashoutTooLong { washout, steps }
            }
            ModelError::NotGenerative => Self::NotGenerative,
            ModelError::GenerativeShape { inputs, outputs } => {
                Self::GenerativeShape { inputs, outputs }
            }
            ModelError::Parameter {
                name,
                requirement,
                value,
            } => Self::Parameter {
                name,
                requirement,
                value,
            },
            ModelError::NonFiniteOutput { .. } => Self::NonFiniteOutput,
            e @ ModelError::Shape { .. } => Self::Model(e),
        }
    }
}

/// The readout side of a trained model, stored with it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ReadoutSetup {
    pub ridge: f64,
    pub washout: usize,
    /// Features are [1, u(t), x(t)] rather than [1, x(t)].
    pub input_features: bool,
    pub generative: Generative,
    /// How the readout's least-squares problem is solved.
    #[serde(default)]
    pub solver: Solver,
}

/// The least-squares method of the readout.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Solver {
    /// The engine's ridge regression: normal equations XᵀX + λI by Cholesky, accumulated
    /// step by step (memory O(features²)). Loses accuracy once λ is below ~1e-12·‖XᵀX‖.
    #[default]
    NormalEquations,
    /// Householder QR of the stacked [X; √λ·I] (memory O(steps·features)): error grows with
    /// cond(X) instead of cond(X)², so tiny λ (near least squares, as Jaeger's pseudo-inverse)
    /// stays accurate. For output-feedback models, whose free runs amplify readout error.
    Qr,
}

/// How the CLI trains a model: the reservoir hyperparameters that matter most, by name.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TrainOptions {
    pub units: usize,
    pub spectral_radius: f64,
    pub leak_rate: f64,
    pub input_scaling: f64,
    pub bias_scaling: f64,
    pub connectivity: f64,
    pub topology: Topology,
    pub ridge: f64,
    pub washout: usize,
    pub input_features: bool,
    pub generative: Generative,
    /// W_fb ~ U[−feedback_scaling, feedback_scaling] when `generative` is `Feedback`.
    pub feedback_scaling: f64,
    /// State noise U[−noise, noise] added during training (regularises feedback models).
    pub noise: f64,
    pub solver: Solver,
    pub seed: u64,
    /// The reservoir's step kernel (exact, or a fused f32 variant; see `echos_core::esn`).
    #[serde(default)]
    pub kernel: StepKernel,
}

/// Scores of a prediction against a target (all outputs pooled).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Scores {
    pub mse: f64,
    pub rmse: f64,
    pub nrmse: f64,
    pub r2: f64,
    pub steps: usize,
}

impl Scores {
    pub fn of(pred: &[f64], target: &[f64], steps: usize) -> Result<Self, TrainError> {
        Ok(Self {
            mse: metrics::mse(pred, target)?,
            rmse: metrics::rmse(pred, target)?,
            nrmse: metrics::nrmse(pred, target)?,
            r2: metrics::r2(pred, target)?,
            steps,
        })
    }
}

/// A trained model as the host keeps it: the engine's one model driver
/// (`echos_core::model::Trained`) with the readout setup it was trained with and its
/// training-set fit. Every run, evaluation and generation goes through the driver.
#[derive(Clone, Debug)]
pub struct EsnModel {
    model: Trained<f64>,
    pub setup: ReadoutSetup,
    /// Training-set fit (after washout), for reports; NaN for a loaded model.
    pub training_fit: Scores,
}

/// Trains on `input` (steps × inputs) and `target` (steps × outputs) with teacher forcing.
pub fn train(opts: &TrainOptions, input: &Array2, target: &Array2) -> Result<EsnModel, TrainError> {
    let config = EsnConfig {
        units: opts.units,
        inputs: input.cols(),
        outputs: if opts.generative == Generative::Feedback {
            target.cols()
        } else {
            0
        },
        spectral_radius: opts.spectral_radius,
        leak_rate: opts.leak_rate,
        input_scaling: opts.input_scaling,
        bias_scaling: opts.bias_scaling,
        connectivity: opts.connectivity,
        topology: opts.topology,
        feedback_scaling: opts.feedback_scaling,
        seed: opts.seed,
        kernel: opts.kernel,
        ..EsnConfig::default()
    };
    let esn = Esn::new(&config)?;
    let setup = ReadoutSetup {
        ridge: opts.ridge,
        washout: opts.washout,
        input_features: opts.input_features,
        generative: opts.generative,
        solver: opts.solver,
    };
    fit(esn, setup, input, target, opts.noise, opts.seed)
}

/// Teacher-forced training of `esn` (from its current state) with optional state noise
/// U[−noise, noise] added after each step (Jaeger's regulariser for output-feedback models):
/// one pass of the engine's `teacher_forced_pass`, solved by the setup's solver.
pub fn fit(
    mut esn: Esn<f64>,
    setup: ReadoutSetup,
    input: &Array2,
    target: &Array2,
    noise: f64,
    noise_seed: u64,
) -> Result<EsnModel, TrainError> {
    let steps = input.rows();
    if target.rows() != steps {
        return Err(TrainError::LengthMismatch {
            input: steps,
            target: target.rows(),
        });
    }
    if esn.inputs() != input.cols() {
        return Err(TrainError::Columns {
            what: "input",
            expected: esn.inputs(),
            got: input.cols(),
        });
    }
    let outputs = target.cols();
    match setup.generative {
        Generative::Input if input.cols() != outputs => {
            return Err(TrainError::GenerativeShape {
                inputs: input.cols(),
                outputs,
            })
        }
        Generative::Feedback if esn.outputs() != outputs => {
            return Err(TrainError::Columns {
                what: "target (feedback)",
                expected: esn.outputs(),
                got: outputs,
            })
        }
        _ => {}
    }
    let pass = TrainingPass {
        washout: setup.washout,
        input_features: setup.input_features,
        noise,
        noise_seed,
    };
    let n_features = model::feature_dim(&esn, setup.input_features);
    let mut ridge = Ridge::new(n_features, outputs, setup.ridge)?;
    let kept = steps.saturating_sub(setup.washout);
    let mut all_states = Vec::with_capacity(kept.saturating_mul(n_features));
    model::teacher_forced_pass(&mut esn, input.data(), target.data(), &pass, |z, y| {
        if setup.solver == Solver::NormalEquations {
            ridge.accumulate(z, y)?;
        }
        all_states.extend_from_slice(z);
        Ok::<(), TrainError>(())
    })?;
    let readout = match setup.solver {
        Solver::NormalEquations => ridge.fit()?,
        Solver::Qr => qr_least_squares(
            &all_states,
            &target.data()[setup.washout * outputs..],
            n_features,
            outputs,
            setup.ridge,
        )?,
    };
    // Training fit from the states seen, so reports can compare train and test error.
    let mut pred = vec![0.0; kept * outputs];
    for (s, y) in pred.chunks_exact_mut(outputs).enumerate() {
        readout.predict(&all_states[s * n_features..(s + 1) * n_features], y)?;
    }
    let truth = &target.data()[setup.washout * outputs..];
    let training_fit = Scores::of(&pred, truth, kept)?;
    let mut model = Trained::new(esn, readout, setup.input_features, setup.generative)?;
    model.remember_series_end(input.data(), target.data())?;
    Ok(EsnModel {
        model,
        setup,
        training_fit,
    })
}

/// Ridge readout by QR: minimises ‖[1, z]·wᵀ − y‖² + λ‖w without bias‖² for the rows of `z`
/// (`features` columns) and `y` (`outputs` columns).
fn qr_least_squares(
    z: &[f64],
    y: &[f64],
    features: usize,
    outputs: usize,
    ridge: f64,
) -> Result<Linear, TrainError> {
    use nalgebra::DMatrix;
    let rows = z.len() / features;
    let d = features + 1;
    let extra = if ridge > 0.0 { features } else { 0 };
    let mut a = DMatrix::<f64>::zeros(rows + extra, d);
    let mut b = DMatrix::<f64>::zeros(rows + extra, outputs);
    for r in 0..rows {
        a[(r, 0)] = 1.0;
        for j in 0..features {
            a[(r, j + 1)] = z[r * features + j];
        }
        for o in 0..outputs {
            b[(r, o)] = y[r * outputs + o];
        }
    }
    let sqrt_ridge = ridge.sqrt();
    for j in 0..extra {
        a[(rows + j, j + 1)] = sqrt_ridge;
    }
    let qr = a.qr();
    let qtb = qr.q().transpose() * b;
    let w = qr
        .r()
        .solve_upper_triangular(&qtb)
        .ok_or(TrainError::Readout(ReadoutError::NotPositiveDefinite))?;
    let mut weights = echos_core::matrix::Dense::zeros(outputs, d).map_err(|_| {
        TrainError::Readout(ReadoutError::BadParameter {
            what: "readout size",
            value: d as f64,
        })
    })?;
    for o in 0..outputs {
        for i in 0..d {
            weights.data[o * d + i] = w[(i, o)];
        }
    }
    Ok(Linear::from_weights(weights)?)
}

impl EsnModel {
    /// Reassembles a loaded model, checking that the readout fits the reservoir.
    pub fn from_parts(
        esn: Esn<f64>,
        readout: Linear,
        setup: ReadoutSetup,
        last_output: Vec<f64>,
        last_input: Vec<f64>,
    ) -> Result<Self, TrainError> {
        let mut model = Trained::new(esn, readout, setup.input_features, setup.generative)?;
        model.set_last_output(&last_output)?;
        model.set_last_input(&last_input)?;
        let nan = f64::NAN;
        Ok(Self {
            model,
            setup,
            training_fit: Scores {
                mse: nan,
                rmse: nan,
                nrmse: nan,
                r2: nan,
                steps: 0,
            },
        })
    }

    /// The engine's model driver behind this model.
    pub fn driver(&self) -> &Trained<f64> {
        &self.model
    }
    pub fn driver_mut(&mut self) -> &mut Trained<f64> {
        &mut self.model
    }
    pub fn esn(&self) -> &Esn<f64> {
        self.model.esn()
    }
    pub fn esn_mut(&mut self) -> &mut Esn<f64> {
        self.model.esn_mut()
    }
    pub fn readout(&self) -> &Linear {
        self.model.readout()
    }
    /// The output the next closed-loop step feeds back.
    pub fn last_output(&self) -> &[f64] {
        self.model.last_output()
    }
    /// The constant input of closed-loop generation through output feedback.
    pub fn last_input(&self) -> &[f64] {
        self.model.last_input()
    }
    pub fn outputs(&self) -> usize {
        self.model.outputs()
    }

    /// One step with input `u` and (if the reservoir has feedback) the previous output `fb`;
    /// the prediction goes to `y`.
    pub fn step(&mut self, u: &[f64], fb: Option<&[f64]>, y: &mut [f64]) -> Result<(), TrainError> {
        Ok(self.model.step(u, fb, y)?)
    }

    /// Predictions for `input`, continuing from the current state. A model with output
    /// feedback is fed its own previous prediction (there is no teacher here); use
    /// [`EsnModel::run_teacher`] to feed a known series.
    pub fn run(&mut self, input: &Array2) -> Result<Array2, TrainError> {
        self.run_teacher(input, None)
    }

    /// Predictions for `input`; with `teacher`, a feedback model is fed teacher(t−1).
    pub fn run_teacher(
        &mut self,
        input: &Array2,
        teacher: Option<&Array2>,
    ) -> Result<Array2, TrainError> {
        if input.cols() != self.esn().inputs() {
            return Err(TrainError::Columns {
                what: "input",
                expected: self.esn().inputs(),
                got: input.cols(),
            });
        }
        let fb_dim = self.esn().outputs();
        if let Some(tch) = teacher.filter(|_| fb_dim > 0) {
            if tch.rows() != input.rows() {
                return Err(TrainError::LengthMismatch {
                    input: input.rows(),
                    target: tch.rows(),
                });
            }
            if tch.cols() != fb_dim {
                return Err(TrainError::Columns {
                    what: "teacher (feedback)",
                    expected: fb_dim,
                    got: tch.cols(),
                });
            }
        }
        let no = self.outputs();
        let mut out = vec![0.0; input.rows() * no];
        self.model
            .run(input.data(), teacher.map(Array2::data), &mut out)?;
        Array2::new(input.rows(), no, out).map_err(|_| TrainError::NonFiniteOutput)
    }

    /// `steps` closed-loop steps from the current state and last output. Call it again to
    /// continue (a long generation can be written out in chunks).
    pub fn generate(&mut self, steps: usize) -> Result<Array2, TrainError> {
        let no = self.outputs();
        if self.setup.generative == Generative::None {
            return Err(TrainError::NotGenerative);
        }
        let len = steps.checked_mul(no).ok_or(TrainError::Parameter {
            name: "steps",
            requirement: "small enough that steps × outputs fits in memory",
            value: steps as f64,
        })?;
        let mut out = vec![0.0; len];
        self.model.generate(&mut out)?;
        Array2::new(steps, no, out).map_err(|_| TrainError::NonFiniteOutput)
    }

    /// Predicts `input` and scores it against `target`, skipping the first `washout` steps.
    pub fn evaluate(
        &mut self,
        input: &Array2,
        target: &Array2,
        washout: usize,
    ) -> Result<Scores, TrainError> {
        if input.rows() != target.rows() {
            return Err(TrainError::LengthMismatch {
                input: input.rows(),
                target: target.rows(),
            });
        }
        if target.cols() != self.outputs() {
            return Err(TrainError::Columns {
                what: "target",
                expected: self.outputs(),
                got: target.cols(),
            });
        }
        if washout >= input.rows() {
            return Err(TrainError::WashoutTooLong {
                washout,
                steps: input.rows(),
            });
        }
        let teacher = (self.esn().outputs() > 0).then_some(target);
        let pred = self.run_teacher(input, teacher)?;
        let no = self.outputs();
        Scores::of(
            &pred.data()[washout * no..],
            &target.data()[washout * no..],
            input.rows() - washout,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(generative: Generative, kernel: StepKernel) -> TrainOptions {
        TrainOptions {
            units: 40,
            spectral_radius: 0.8,
            leak_rate: 0.5,
            input_scaling: 1.0,
            bias_scaling: 0.2,
            connectivity: 0.2,
            topology: Topology::Block { size: 8 },
            ridge: 1e-6,
            washout: 20,
            input_features: true,
            generative,
            feedback_scaling: 0.5,
            noise: 0.0,
            solver: Solver::NormalEquations,
            seed: 4,
            kernel,
        }
    }

    fn series(rows: usize, phase: f64) -> Array2 {
        let data = (0..rows)
            .map(|t| libm::sin(t as f64 * 0.21 + phase) * 0.5)
            .collect();
        Array2::new(rows, 1, data).unwrap()
    }

    /// The chunked runs (`Esn::run_into`, 256 steps per call) give the predictions of the
    /// step-by-step loop they replaced, bit for bit, with and without a teacher-forced feedback.
    #[test]
    fn chunked_runs_equal_stepping() {
        for kernel in [StepKernel::Exact, StepKernel::fast()] {
            for generative in [Generative::None, Generative::Feedback] {
                let (x, y) = (series(300, 0.0), series(300, 0.4));
                let model = train(&options(generative, kernel), &x, &y).unwrap();
                // 600 rows: the run crosses two chunk seams.
                let (input, teacher) = (series(600, 1.0), series(600, 1.3));
                let tch = (generative == Generative::Feedback).then_some(&teacher);
                let mut chunked = model.clone();
                let got = chunked.run_teacher(&input, tch).unwrap();
                let mut stepped = model.clone();
                let no = stepped.outputs();
                let mut want = vec![0.0; 600 * no];
                let mut prev = stepped.last_output().to_vec();
                for t in 0..600 {
                    if t > 0 {
                        prev.copy_from_slice(teacher.row(t - 1));
                    }
                    let fb = tch.map(|_| &prev[..]);
                    stepped
                        .step(input.row(t), fb, &mut want[t * no..(t + 1) * no])
                        .unwrap();
                }
                let what = format!("{kernel} {generative:?}");
                assert!(
                    got.data()
                        .iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{what}"
                );
                assert_eq!(chunked.esn().state(), stepped.esn().state(), "{what}");
                assert_eq!(chunked.last_output(), stepped.last_output(), "{what}");
            }
        }
    }

    /// Training without noise runs chunks too (teacher-forced feedback included): the readout
    /// and final state equal those of the step-by-step loop it replaced.
    #[test]
    fn chunked_training_equals_stepping() {
        for generative in [Generative::None, Generative::Feedback] {
            let opts = options(generative, StepKernel::Exact);
            let (x, y) = (series(700, 0.0), series(700, 0.4));
            let model = train(&opts, &x, &y).unwrap();
            let mut esn = Esn::<f64>::new(&EsnConfig {
                units: opts.units,
                inputs: 1,
                outputs: usize::from(generative == Generative::Feedback),
                spectral_radius: opts.spectral_radius,
                leak_rate: opts.leak_rate,
                input_scaling: opts.input_scaling,
                bias_scaling: opts.bias_scaling,
                connectivity: opts.connectivity,
                topology: opts.topology,
                feedback_scaling: opts.feedback_scaling,
                seed: opts.seed,
                ..EsnConfig::default()
            })
            .unwrap();
            assert_eq!(esn.config(), model.esn().config(), "same reservoir config");
            let mut ridge = Ridge::new(opts.units + 1, 1, opts.ridge).unwrap();
            let mut z = Vec::new();
            for t in 0..700 {
                let prev = if t == 0 { [0.0] } else { [y.row(t - 1)[0]] };
                let fb = (esn.outputs() > 0).then_some(&prev[..]);
                esn.step(x.row(t), fb).unwrap();
                if t >= opts.washout {
                    z.clear();
                    z.extend_from_slice(x.row(t));
                    z.extend_from_slice(esn.state());
                    ridge.accumulate(&z, y.row(t)).unwrap();
                }
            }
            let readout = ridge.fit().unwrap();
            assert_eq!(
                readout.weights.data,
                model.readout().weights.data,
                "{generative:?}"
            );
            assert_eq!(esn.state(), model.esn().state(), "{generative:?}");
        }
    }
}
