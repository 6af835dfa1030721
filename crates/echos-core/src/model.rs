//! The one trained-model driver: a reservoir with its trained readout, teacher-forced training
//! passes, teacher-forced and free runs over whole series (in chunks through `Esn::run_into`),
//! and closed-loop (generative) runs in which the model's own output is fed back as input and/or
//! through the feedback weights. The host's `EsnModel`, the CLI, the Python `ESN` and the
//! kernel demo all wrap this type; none of them steps a trained model by itself.
//!
//! Time convention: at step t the state x(t) is computed from u(t) and the previous output
//! y(t−1) (feedback), then ŷ(t) = W_out·[1; z(t)] with features z(t) = [u(t); x(t)] or [x(t)].
//! In a training pass y(t−1) is the true target (zero before the first step); in a
//! teacher-forced run it is the teacher series (the model's last output before the first
//! step); in closed loop it is the model's own ŷ(t−1).
//!
//! Memory: the driver's buffers (features, one chunk of states and feedback) are sized once,
//! when first needed; `step` and the runs allocate nothing after that.

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::esn::{Esn, StepError};
use crate::readout::{Linear, ReadoutError, Ridge};
use crate::rng::Rng;
use crate::scalar::Scalar;

/// Steps per engine call when a whole series runs through `Esn::run_into`: bounds the states
/// buffer at this many × units values.
pub const RUN_CHUNK_STEPS: usize = 256;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelError {
    Step(StepError),
    Readout(ReadoutError),
    /// A series or buffer has the wrong number of values.
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// Inputs and targets (or teacher) have different numbers of time steps.
    LengthMismatch {
        input: usize,
        target: usize,
    },
    /// The washout leaves no samples to train on.
    WashoutTooLong {
        washout: usize,
        steps: usize,
    },
    /// Closed-loop generation of a model trained for neither kind of feedback.
    NotGenerative,
    /// Generation through the input needs as many inputs as outputs.
    GenerativeShape {
        inputs: usize,
        outputs: usize,
    },
    /// A hyperparameter of training is out of range.
    Parameter {
        name: &'static str,
        requirement: &'static str,
        value: f64,
    },
    /// The output became NaN or infinite (a closed loop or an input drove it out of range).
    NonFiniteOutput {
        step: usize,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step(e) => write!(f, "reservoir step failed: {e}"),
            Self::Readout(e) => write!(f, "readout: {e}"),
            Self::Shape {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected {expected} values, got {got}"),
            Self::LengthMismatch { input, target } => write!(
                f,
                "input has {input} time steps but target has {target}; they must match"
            ),
            Self::WashoutTooLong { washout, steps } => write!(
                f,
                "washout ({washout}) must be smaller than the number of time steps ({steps})"
            ),
            Self::NotGenerative => f.write_str(
                "closed-loop generation needs a model trained with --generative (output fed back as input) or with output feedback",
            ),
            Self::GenerativeShape { inputs, outputs } => write!(
                f,
                "generation through the input needs as many input columns as output columns ({inputs} vs {outputs})"
            ),
            Self::Parameter {
                name,
                requirement,
                value,
            } => write!(f, "{name} must be {requirement} (got {value})"),
            Self::NonFiniteOutput { step } => write!(
                f,
                "the model's output became NaN or infinite at step {step} (the closed loop or the input drove it out of range)"
            ),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ModelError {}

impl From<StepError> for ModelError {
    fn from(e: StepError) -> Self {
        Self::Step(e)
    }
}

impl From<ReadoutError> for ModelError {
    fn from(e: ReadoutError) -> Self {
        Self::Readout(e)
    }
}

fn shape(what: &'static str, expected: usize, got: usize) -> Result<(), ModelError> {
    if expected == got {
        Ok(())
    } else {
        Err(ModelError::Shape {
            what,
            expected,
            got,
        })
    }
}

/// Number of steps in a row-major series of `dim`-vectors, checking the length divides.
fn steps_of(what: &'static str, series: &[impl Copy], dim: usize) -> Result<usize, ModelError> {
    if dim == 0 {
        return shape(what, 0, series.len()).map(|_| 0);
    }
    if !series.len().is_multiple_of(dim) {
        return Err(ModelError::Shape {
            what,
            expected: (series.len() / dim + 1) * dim,
            got: series.len(),
        });
    }
    Ok(series.len() / dim)
}

/// What closed-loop generation feeds the model's output back into.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Generative {
    /// Not trained for generation (an input-to-output mapping).
    #[default]
    None,
    /// The output becomes the next input (one-step-ahead prediction, inputs == outputs).
    Input,
    /// The output goes through the feedback weights W_fb (Jaeger's output feedback); the input
    /// stays at the last training input (his constant bias input).
    Feedback,
}

/// How a teacher-forced training pass runs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TrainingPass {
    /// Steps at the start whose states are not used (the reservoir forgets its start).
    pub washout: usize,
    /// Features are [u(t), x(t)] rather than [x(t)].
    pub input_features: bool,
    /// State noise U[−noise, noise] added after each step (Jaeger's regulariser for output
    /// feedback models); 0 for none. With noise the pass runs one step at a time.
    pub noise: f64,
    /// Seed of the noise's generator.
    pub noise_seed: u64,
}

impl Default for TrainingPass {
    fn default() -> Self {
        Self {
            washout: 0,
            input_features: false,
            noise: 0.0,
            noise_seed: 0,
        }
    }
}

/// Writes the readout features of one step into `z`: [u, x] or [x].
#[inline]
fn fill_features<T: Copy>(input_features: bool, u: &[T], x: &[T], z: &mut [T]) {
    if input_features {
        let (zu, zx) = z.split_at_mut(u.len());
        zu.copy_from_slice(u);
        zx.copy_from_slice(x);
    } else {
        z.copy_from_slice(x);
    }
}

/// The feature dimension of a readout over `esn`.
pub fn feature_dim<T: Scalar>(esn: &Esn<T>, input_features: bool) -> usize {
    esn.units() + if input_features { esn.inputs() } else { 0 }
}

/// Runs `esn` from its current state over `inputs` (steps × inputs) with teacher forcing —
/// feedback of step t is target(t−1), zero at t = 0 — and calls `sink(features, target(t))`
/// for every step t ≥ `pass.washout`. Returns the number of steps the sink saw. Without
/// noise the reservoir runs whole chunks per engine call (bit-identical to stepping).
///
/// The one training loop of the workspace: ridge, QR, RLS and LMS readouts are all fed by it.
pub fn teacher_forced_pass<T: Scalar, E: From<ModelError>>(
    esn: &mut Esn<T>,
    inputs: &[T],
    targets: &[T],
    pass: &TrainingPass,
    mut sink: impl FnMut(&[T], &[T]) -> Result<(), E>,
) -> Result<usize, E> {
    let ni = esn.inputs();
    let steps = steps_of("inputs", inputs, ni)?;
    if steps == 0 {
        return Err(ModelError::WashoutTooLong {
            washout: pass.washout,
            steps,
        }
        .into());
    }
    if !targets.len().is_multiple_of(steps) {
        return Err(ModelError::Shape {
            what: "targets (a whole number of values per input step)",
            expected: steps * (targets.len() / steps + 1),
            got: targets.len(),
        }
        .into());
    }
    let no = targets.len() / steps;
    if pass.washout >= steps {
        return Err(ModelError::WashoutTooLong {
            washout: pass.washout,
            steps,
        }
        .into());
    }
    if !(pass.noise.is_finite() && pass.noise >= 0.0) {
        return Err(ModelError::Parameter {
            name: "noise",
            requirement: "finite and >= 0",
            value: pass.noise,
        }
        .into());
    }
    let fb_dim = esn.outputs();
    if fb_dim > 0 {
        shape("targets (feedback dimension)", fb_dim, no)?;
    }
    let n = esn.units();
    let mut z = vec![T::zero(); feature_dim(esn, pass.input_features)];
    let zeros = vec![T::zero(); fb_dim];
    let target = |t: usize| &targets[t * no..(t + 1) * no];
    let feedback_of = |t: usize| if t == 0 { &zeros[..] } else { target(t - 1) };
    if pass.noise > 0.0 {
        // The noise enters the state between steps, so this runs one step at a time.
        let mut rng = Rng::new(pass.noise_seed);
        let mut noisy = vec![T::zero(); n];
        for t in 0..steps {
            let u = &inputs[t * ni..(t + 1) * ni];
            let fb = (fb_dim > 0).then(|| feedback_of(t));
            esn.step(u, fb).map_err(ModelError::from)?;
            for (v, &x) in noisy.iter_mut().zip(esn.state()) {
                *v = T::from_f64(x.to_f64() + rng.uniform(-pass.noise, pass.noise));
            }
            esn.set_state(&noisy).map_err(ModelError::from)?;
            if t >= pass.washout {
                fill_features(pass.input_features, u, esn.state(), &mut z);
                sink(&z, target(t))?;
            }
        }
    } else {
        let chunk = RUN_CHUNK_STEPS.min(steps);
        let mut states = vec![T::zero(); chunk * n];
        let mut feedback = vec![T::zero(); chunk * fb_dim];
        for first in (0..steps).step_by(chunk) {
            let len = chunk.min(steps - first);
            let fb = (fb_dim > 0).then(|| {
                for (k, row) in feedback[..len * fb_dim]
                    .chunks_exact_mut(fb_dim)
                    .enumerate()
                {
                    row.copy_from_slice(feedback_of(first + k));
                }
                &feedback[..len * fb_dim]
            });
            let us = &inputs[first * ni..(first + len) * ni];
            esn.run_into(us, fb, &mut states[..len * n])
                .map_err(ModelError::from)?;
            for (k, (u, x)) in us
                .chunks_exact(ni)
                .zip(states[..len * n].chunks_exact(n))
                .enumerate()
            {
                if first + k >= pass.washout {
                    fill_features(pass.input_features, u, x, &mut z);
                    sink(&z, target(first + k))?;
                }
            }
        }
    }
    Ok(steps - pass.washout)
}

/// A reservoir and the readout trained on it, with the outputs and input it last saw.
#[derive(Clone, Debug)]
pub struct Trained<T> {
    esn: Esn<T>,
    readout: Linear,
    input_features: bool,
    generative: Generative,
    /// ŷ(t−1): the next closed-loop feedback (and input, when generating through the input).
    last_output: Vec<T>,
    /// The last input seen: the constant input of generation through output feedback.
    last_input: Vec<T>,
    /// Features of the current step, sized once.
    features: Vec<T>,
    /// One chunk of states and of feedback rows for the chunked runs (sized on first use).
    states: Vec<T>,
    feedback: Vec<T>,
}

impl<T: Scalar> Trained<T> {
    /// Pairs a reservoir with a readout over features [u; x] (`input_features`) or [x],
    /// checking that their dimensions fit each other and the generative mode. The last output
    /// and input start at zero.
    pub fn new(
        esn: Esn<T>,
        readout: Linear,
        input_features: bool,
        generative: Generative,
    ) -> Result<Self, ModelError> {
        let dim = feature_dim(&esn, input_features);
        shape(
            "readout features (1 + state [+ inputs])",
            dim + 1,
            readout.units() + 1,
        )?;
        let outputs = readout.outputs();
        if esn.outputs() > 0 {
            shape("readout outputs (feedback)", esn.outputs(), outputs)?;
        }
        match generative {
            Generative::Input if esn.inputs() != outputs => {
                return Err(ModelError::GenerativeShape {
                    inputs: esn.inputs(),
                    outputs,
                })
            }
            Generative::Feedback if esn.outputs() == 0 => {
                return Err(ModelError::Shape {
                    what: "feedback weights (generation through output feedback)",
                    expected: outputs,
                    got: 0,
                })
            }
            _ => {}
        }
        let inputs = esn.inputs();
        Ok(Self {
            esn,
            readout,
            input_features,
            generative,
            last_output: vec![T::zero(); outputs],
            last_input: vec![T::zero(); inputs],
            features: vec![T::zero(); dim],
            states: Vec::new(),
            feedback: Vec::new(),
        })
    }

    /// Trains a ridge readout (λ = `ridge`) on one teacher-forced pass over `inputs`
    /// (steps × inputs) and `targets` (steps × outputs). The reservoir state is left where the
    /// pass ended, and the last target and input are remembered, so generation continues
    /// from there.
    pub fn fit_ridge(
        mut esn: Esn<T>,
        inputs: &[T],
        targets: &[T],
        pass: &TrainingPass,
        ridge: f64,
        generative: Generative,
    ) -> Result<Self, ModelError> {
        let steps = steps_of("inputs", inputs, esn.inputs())?;
        let outputs = targets.len().checked_div(steps).unwrap_or(0);
        let mut solver = Ridge::new(feature_dim(&esn, pass.input_features), outputs, ridge)?;
        teacher_forced_pass(&mut esn, inputs, targets, pass, |z, y| {
            solver.accumulate(z, y).map_err(ModelError::from)
        })?;
        let mut model = Self::new(esn, solver.fit()?, pass.input_features, generative)?;
        model.remember_series_end(inputs, targets)?;
        Ok(model)
    }

    /// Remembers the last row of `inputs` and `targets` (the end of a training series) as the
    /// last input and output.
    pub fn remember_series_end(&mut self, inputs: &[T], targets: &[T]) -> Result<(), ModelError> {
        let (ni, no) = (self.inputs(), self.outputs());
        if inputs.len() < ni || targets.len() < no {
            return Err(ModelError::Shape {
                what: "series end",
                expected: ni.max(no),
                got: inputs.len().min(targets.len()),
            });
        }
        self.last_input
            .copy_from_slice(&inputs[inputs.len() - ni..]);
        self.last_output
            .copy_from_slice(&targets[targets.len() - no..]);
        Ok(())
    }

    pub fn esn(&self) -> &Esn<T> {
        &self.esn
    }
    /// The reservoir, e.g. to reset or set its state.
    pub fn esn_mut(&mut self) -> &mut Esn<T> {
        &mut self.esn
    }
    pub fn readout(&self) -> &Linear {
        &self.readout
    }
    pub fn input_features(&self) -> bool {
        self.input_features
    }
    pub fn generative(&self) -> Generative {
        self.generative
    }
    pub fn inputs(&self) -> usize {
        self.esn.inputs()
    }
    pub fn outputs(&self) -> usize {
        self.readout.outputs()
    }
    /// The output the next closed-loop step feeds back.
    pub fn last_output(&self) -> &[T] {
        &self.last_output
    }
    /// The input the next closed-loop step through output feedback is driven with.
    pub fn last_input(&self) -> &[T] {
        &self.last_input
    }
    /// The reservoir and readout back.
    pub fn into_parts(self) -> (Esn<T>, Linear) {
        (self.esn, self.readout)
    }

    /// Sets the output the next closed-loop step feeds back (e.g. the last true value).
    pub fn set_last_output(&mut self, y: &[T]) -> Result<(), ModelError> {
        shape("last output", self.last_output.len(), y.len())?;
        if !y.iter().all(|v| v.is_finite()) {
            return Err(ModelError::Step(StepError::NonFiniteInput));
        }
        self.last_output.copy_from_slice(y);
        Ok(())
    }

    /// Sets the input of closed-loop steps through output feedback.
    pub fn set_last_input(&mut self, u: &[T]) -> Result<(), ModelError> {
        shape("last input", self.last_input.len(), u.len())?;
        if !u.iter().all(|v| v.is_finite()) {
            return Err(ModelError::Step(StepError::NonFiniteInput));
        }
        self.last_input.copy_from_slice(u);
        Ok(())
    }

    /// Readout of the current features into `y`, remembered as the last output.
    fn read_out(&mut self, u: &[T], y: &mut [T], step: usize) -> Result<(), ModelError> {
        fill_features(self.input_features, u, self.esn.state(), &mut self.features);
        self.readout.predict(&self.features, y)?;
        if !y.iter().all(|v| v.is_finite()) {
            return Err(ModelError::NonFiniteOutput { step });
        }
        self.last_output.copy_from_slice(y);
        self.last_input.copy_from_slice(u);
        Ok(())
    }

    /// One step: x(t) from u(t) and `feedback` (y(t−1); required iff the reservoir has
    /// feedback), then ŷ(t) into `y`. No allocation.
    pub fn step(&mut self, u: &[T], feedback: Option<&[T]>, y: &mut [T]) -> Result<(), ModelError> {
        shape("output", self.outputs(), y.len())?;
        self.esn.step(u, feedback)?;
        self.read_out(u, y, 0)
    }

    /// Predictions for `inputs` (steps × inputs) into `outputs` (steps × outputs), from the
    /// current state. A reservoir with output feedback is fed `teacher(t−1)` when a teacher
    /// series (steps × outputs) is given — the last output before the first step — and its own
    /// previous prediction otherwise; a reservoir without feedback ignores `teacher`.
    /// Whenever the states do not depend on the predictions the reservoir runs whole chunks
    /// per engine call.
    pub fn run(
        &mut self,
        inputs: &[T],
        teacher: Option<&[T]>,
        outputs: &mut [T],
    ) -> Result<(), ModelError> {
        let (ni, no) = (self.inputs(), self.outputs());
        let steps = steps_of("inputs", inputs, ni)?;
        shape("outputs", steps * no, outputs.len())?;
        let fb_dim = self.esn.outputs();
        let teacher = teacher.filter(|_| fb_dim > 0);
        if let Some(tch) = teacher {
            if tch.len() != steps * fb_dim {
                return Err(ModelError::LengthMismatch {
                    input: steps,
                    target: tch.len() / fb_dim,
                });
            }
        }
        if steps == 0 {
            return Ok(());
        }
        if fb_dim > 0 && teacher.is_none() {
            // The feedback is the model's own prediction: one step at a time.
            for t in 0..steps {
                let u = &inputs[t * ni..(t + 1) * ni];
                let (done, rest) = outputs.split_at_mut(t * no);
                let prev = if t == 0 {
                    &self.last_output[..]
                } else {
                    &done[(t - 1) * no..]
                };
                self.esn.step(u, Some(prev))?;
                self.read_out(u, &mut rest[..no], t)?;
            }
            return Ok(());
        }
        let n = self.esn.units();
        let chunk = RUN_CHUNK_STEPS.min(steps);
        self.states.resize(chunk * n, T::zero());
        self.feedback.resize(chunk * fb_dim, T::zero());
        for first in (0..steps).step_by(chunk) {
            let len = chunk.min(steps - first);
            let fb = match teacher {
                Some(tch) => {
                    for (k, row) in self.feedback[..len * fb_dim]
                        .chunks_exact_mut(fb_dim)
                        .enumerate()
                    {
                        let t = first + k;
                        row.copy_from_slice(if t == 0 {
                            &self.last_output
                        } else {
                            &tch[(t - 1) * fb_dim..t * fb_dim]
                        });
                    }
                    Some(&self.feedback[..len * fb_dim])
                }
                None => None,
            };
            let us = &inputs[first * ni..(first + len) * ni];
            self.esn.run_into(us, fb, &mut self.states[..len * n])?;
            let ys = &mut outputs[first * no..(first + len) * no];
            for (k, ((u, x), y)) in us
                .chunks_exact(ni)
                .zip(self.states[..len * n].chunks_exact(n))
                .zip(ys.chunks_exact_mut(no))
                .enumerate()
            {
                fill_features(self.input_features, u, x, &mut self.features);
                self.readout.predict(&self.features, y)?;
                if !y.iter().all(|v| v.is_finite()) {
                    return Err(ModelError::NonFiniteOutput { step: first + k });
                }
            }
        }
        self.last_output
            .copy_from_slice(&outputs[(steps - 1) * no..]);
        self.last_input.copy_from_slice(&inputs[(steps - 1) * ni..]);
        Ok(())
    }

    /// Closed-loop (generative) run of `outputs.len() / outputs()` steps from the current state
    /// and `last_output()`, as the model was trained: through the input (u(t) = ŷ(t−1), also
    /// fed back if the reservoir has feedback) or through the feedback weights (y(t−1) = ŷ(t−1)
    /// with the input held at `last_input()`). Continues from where it stops, so a long
    /// generation can be written out chunk by chunk in constant memory. On an error the run
    /// stops where it failed.
    pub fn generate(&mut self, outputs: &mut [T]) -> Result<(), ModelError> {
        let no = self.outputs();
        if self.generative == Generative::None {
            return Err(ModelError::NotGenerative);
        }
        let steps = steps_of("outputs", outputs, no)?;
        let has_fb = self.esn.outputs() > 0;
        for t in 0..steps {
            let (done, rest) = outputs.split_at_mut(t * no);
            let prev = if t == 0 {
                &self.last_output[..]
            } else {
                &done[(t - 1) * no..]
            };
            if self.generative == Generative::Input {
                self.last_input.copy_from_slice(prev);
            }
            self.esn.step(&self.last_input, has_fb.then_some(prev))?;
            fill_features(
                self.input_features,
                &self.last_input,
                self.esn.state(),
                &mut self.features,
            );
            let y = &mut rest[..no];
            self.readout.predict(&self.features, y)?;
            if !y.iter().all(|v| v.is_finite()) {
                return Err(ModelError::NonFiniteOutput { step: t });
            }
        }
        if steps > 0 {
            self.last_output
                .copy_from_slice(&outputs[(steps - 1) * no..]);
        }
        Ok(())
    }

    /// Closed-loop run driven by `inputs` (steps × inputs): u(t) from `inputs`, the model's own
    /// ŷ(t−1) through the feedback weights. Needs a reservoir with output feedback.
    pub fn generate_driven(&mut self, inputs: &[T], outputs: &mut [T]) -> Result<(), ModelError> {
        if self.esn.outputs() == 0 {
            return Err(ModelError::NotGenerative);
        }
        self.run(inputs, None, outputs)
    }
}

/// How memory capacity is measured (Jaeger 2001): after `washout` steps of an i.i.d. input,
/// one ridge readout per delay k = 1..=`max_delay` learns u(t−k) from x(t) on the next `train`
/// steps, and MC = Σₖ r²(u(t−k), ŷₖ(t)) over the `test` steps after those.
///
/// The delay range is k = 1..=max_delay, the customary one: x(t) has already seen u(t), so
/// k = 0 (the current input) is not memory and is left out. Its bound is the number of units.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MemoryCapacity {
    pub washout: usize,
    pub train: usize,
    pub test: usize,
    pub max_delay: usize,
    pub ridge: f64,
}

impl MemoryCapacity {
    /// Steps of input the measurement needs.
    pub fn steps(&self) -> usize {
        self.washout + self.train + self.test
    }

    /// Measures the memory capacity of a reservoir of `units` units whose states come from
    /// `step`: called once per time step, in order, with u(t) and a buffer for x(t). `input`
    /// holds `steps()` values. The one definition of memory capacity in the workspace: float,
    /// quantized and fixed-point reservoirs differ only in the `step` they pass.
    pub fn measure<E: From<ModelError>>(
        &self,
        input: &[f64],
        units: usize,
        mut step: impl FnMut(f64, &mut [f64]) -> Result<(), E>,
    ) -> Result<f64, E> {
        let d = self.max_delay;
        if d == 0 || self.washout < d || self.test < 2 {
            return Err(ModelError::Parameter {
                name: "memory capacity setup",
                requirement: "max_delay >= 1, washout >= max_delay and test >= 2",
                value: self.washout as f64,
            }
            .into());
        }
        shape("memory capacity input", self.steps(), input.len())?;
        let mut ridge = Ridge::new(units, d, self.ridge).map_err(ModelError::from)?;
        let mut x = vec![0.0; units];
        let mut delayed = vec![0.0; d];
        let fit_end = self.washout + self.train;
        for (t, &ut) in input[..fit_end].iter().enumerate() {
            step(ut, &mut x)?;
            if t >= self.washout {
                for (k, v) in delayed.iter_mut().enumerate() {
                    *v = input[t - k - 1];
                }
                ridge.accumulate(&x, &delayed).map_err(ModelError::from)?;
            }
        }
        let readout = ridge.fit().map_err(ModelError::from)?;
        // Recall rows of the test segment, preceded by the d inputs its first recalls refer to.
        let test_u = &input[fit_end - d..];
        let mut recall = vec![0.0; test_u.len() * d];
        for (i, &ut) in input[fit_end..].iter().enumerate() {
            step(ut, &mut x)?;
            let row = (i + d) * d;
            readout
                .predict(&x, &mut recall[row..row + d])
                .map_err(ModelError::from)?;
        }
        crate::metrics::memory_capacity(test_u, &recall, d).map_err(|_| {
            ModelError::Readout(ReadoutError::NonFinite {
                what: "memory capacity recall",
            })
            .into()
        })
    }

    /// [`MemoryCapacity::measure`] on a single-input reservoir without feedback, from its
    /// current state.
    pub fn of_esn<T: Scalar>(&self, esn: &mut Esn<T>, input: &[f64]) -> Result<f64, ModelError> {
        shape("memory capacity input dimension", 1, esn.inputs())?;
        shape("memory capacity feedback dimension", 0, esn.outputs())?;
        self.measure(input, esn.units(), |u, x| {
            let state = esn.step(&[T::from_f64(u)], None)?;
            for (o, &s) in x.iter_mut().zip(state) {
                *o = s.to_f64();
            }
            Ok::<(), ModelError>(())
        })
    }
}
