//! A reservoir with its trained readout: teacher-forced training and running, and closed-loop
//! (generative) running in which the model's own output is fed back as input and/or feedback.
//!
//! Time convention: at step t the state x(t) is computed from u(t) and the previous output
//! y(t−1) (feedback), then ŷ(t) = W_out·[1; x(t)]. Under teacher forcing y(t−1) is the true
//! target (zero before the first step); in closed loop it is the model's own ŷ(t−1).

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::esn::{Esn, StepError};
use crate::readout::{Linear, ReadoutError, Ridge};
use crate::scalar::Scalar;

#[derive(Clone, Copy, Debug, PartialEq)]
pub enum ModelError {
    Step(StepError),
    Readout(ReadoutError),
    /// A series has a length that is not steps × its dimension, or dimensions disagree.
    Shape {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The washout leaves no samples to train on.
    WashoutTooLong {
        washout: usize,
        steps: usize,
    },
}

impl fmt::Display for ModelError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Step(e) => write!(f, "{e}"),
            Self::Readout(e) => write!(f, "{e}"),
            Self::Shape {
                what,
                expected,
                got,
            } => write!(f, "{what}: expected {expected} values, got {got}"),
            Self::WashoutTooLong { washout, steps } => write!(
                f,
                "washout of {washout} steps leaves nothing to train on in a series of {steps} steps"
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

/// Runs `esn` over `inputs` (steps × inputs), teacher-forcing `targets` (steps × outputs) as
/// feedback when the reservoir has feedback, and accumulates the states after `washout` into
/// `ridge`. Returns the number of samples added.
pub fn accumulate_states<T: Scalar>(
    esn: &mut Esn<T>,
    inputs: &[T],
    targets: &[T],
    washout: usize,
    ridge: &mut Ridge,
) -> Result<usize, ModelError> {
    let steps = steps_of("inputs", inputs, esn.inputs())?;
    let out_dim = targets.len().checked_div(steps).unwrap_or(0);
    shape("targets", steps * out_dim, targets.len())?;
    if washout >= steps {
        return Err(ModelError::WashoutTooLong { washout, steps });
    }
    let fb_dim = esn.outputs();
    if fb_dim > 0 {
        shape("targets (feedback dimension)", fb_dim, out_dim)?;
    }
    let zeros = vec![T::zero(); fb_dim];
    let ni = esn.inputs();
    for t in 0..steps {
        let u = &inputs[t * ni..(t + 1) * ni];
        let fb = if fb_dim == 0 {
            None
        } else if t == 0 {
            Some(&zeros[..])
        } else {
            Some(&targets[(t - 1) * out_dim..t * out_dim])
        };
        let x = esn.step(u, fb)?;
        if t >= washout {
            ridge.accumulate(x, &targets[t * out_dim..(t + 1) * out_dim])?;
        }
    }
    Ok(steps - washout)
}

/// A reservoir and the readout trained on it.
#[derive(Clone, Debug)]
pub struct Trained<T> {
    pub esn: Esn<T>,
    pub readout: Linear,
    /// Last output ŷ, fed back in closed loop.
    last_output: Vec<T>,
}

impl<T: Scalar> Trained<T> {
    /// Pairs a reservoir with a readout, checking that their dimensions fit.
    pub fn new(esn: Esn<T>, readout: Linear) -> Result<Self, ModelError> {
        shape("readout state dimension", esn.units(), readout.units())?;
        if esn.outputs() > 0 {
            shape(
                "readout outputs (feedback)",
                esn.outputs(),
                readout.outputs(),
            )?;
        }
        let last_output = vec![T::zero(); readout.outputs()];
        Ok(Self {
            esn,
            readout,
            last_output,
        })
    }

    /// Trains a ridge readout with teacher forcing: states after `washout` steps of `inputs`
    /// (steps × inputs) are regressed on `targets` (steps × outputs). The reservoir state is
    /// left where the training run ended, so generation can continue from it.
    pub fn fit_ridge(
        mut esn: Esn<T>,
        inputs: &[T],
        targets: &[T],
        washout: usize,
        ridge_param: f64,
    ) -> Result<Self, ModelError> {
        let steps = steps_of("inputs", inputs, esn.inputs())?;
        if steps == 0 {
            return Err(ModelError::WashoutTooLong { washout, steps });
        }
        let out_dim = targets.len() / steps;
        let mut ridge = Ridge::new(esn.units(), out_dim, ridge_param)?;
        accumulate_states(&mut esn, inputs, targets, washout, &mut ridge)?;
        let readout = ridge.fit()?;
        let mut model = Self::new(esn, readout)?;
        model
            .last_output
            .copy_from_slice(&targets[(steps - 1) * out_dim..]);
        Ok(model)
    }

    pub fn outputs(&self) -> usize {
        self.readout.outputs()
    }

    /// The output the next closed-loop step feeds back.
    pub fn last_output(&self) -> &[T] {
        &self.last_output
    }

    /// Sets the output the next closed-loop step feeds back (e.g. the last true value).
    pub fn set_last_output(&mut self, y: &[T]) -> Result<(), ModelError> {
        shape("last output", self.last_output.len(), y.len())?;
        self.last_output.copy_from_slice(y);
        Ok(())
    }

    /// One step: x(t) from u(t) and `feedback` (y(t−1)), then ŷ(t) into `y`. No allocation.
    pub fn step(&mut self, u: &[T], feedback: Option<&[T]>, y: &mut [T]) -> Result<(), ModelError> {
        let x = self.esn.step(u, feedback)?;
        self.readout.predict(x, y)?;
        self.last_output.copy_from_slice(y);
        Ok(())
    }

    /// Teacher-forced run over `inputs` (steps × inputs): feedback, if the reservoir has it, is
    /// the true `teacher` series (steps × outputs) one step behind. Writes ŷ to `outputs`.
    pub fn run_teacher_forced(
        &mut self,
        inputs: &[T],
        teacher: Option<&[T]>,
        outputs: &mut [T],
    ) -> Result<(), ModelError> {
        let steps = steps_of("inputs", inputs, self.esn.inputs())?;
        let no = self.outputs();
        shape("outputs", steps * no, outputs.len())?;
        let fb_dim = self.esn.outputs();
        let teacher = match (fb_dim, teacher) {
            (0, _) => None,
            (_, Some(t)) => {
                shape("teacher", steps * fb_dim, t.len())?;
                Some(t)
            }
            (_, None) => return Err(ModelError::Step(StepError::FeedbackMissing)),
        };
        let ni = self.esn.inputs();
        let mut prev = vec![T::zero(); fb_dim];
        for t in 0..steps {
            if let (Some(tch), true) = (teacher, t > 0) {
                prev.copy_from_slice(&tch[(t - 1) * fb_dim..t * fb_dim]);
            }
            let fb = if fb_dim > 0 { Some(&prev[..]) } else { None };
            let x = self.esn.step(&inputs[t * ni..(t + 1) * ni], fb)?;
            self.readout
                .predict(x, &mut outputs[t * no..(t + 1) * no])?;
        }
        if steps > 0 {
            self.last_output
                .copy_from_slice(&outputs[(steps - 1) * no..steps * no]);
        }
        Ok(())
    }

    /// Closed-loop (generative) run of `steps` steps from the current state and
    /// `last_output()`: ŷ(t−1) is fed back as feedback (if the reservoir has it) and, when
    /// `inputs` is `None`, also as the input u(t) (which needs inputs == outputs); otherwise
    /// u(t) comes from `inputs` (steps × inputs). Writes ŷ to `outputs` (steps × outputs).
    pub fn run_closed_loop(
        &mut self,
        steps: usize,
        inputs: Option<&[T]>,
        outputs: &mut [T],
    ) -> Result<(), ModelError> {
        let no = self.outputs();
        let ni = self.esn.inputs();
        shape("outputs", steps * no, outputs.len())?;
        match inputs {
            None => shape("inputs (output fed back as input)", ni, no)?,
            Some(u) => shape("inputs", steps * ni, u.len())?,
        }
        let has_fb = self.esn.outputs() > 0;
        for t in 0..steps {
            let (done, rest) = outputs.split_at_mut(t * no);
            let prev: &[T] = if t == 0 {
                &self.last_output
            } else {
                &done[(t - 1) * no..]
            };
            let u = match inputs {
                None => prev,
                Some(u) => &u[t * ni..(t + 1) * ni],
            };
            let fb = if has_fb { Some(prev) } else { None };
            let x = self.esn.step(u, fb)?;
            self.readout.predict(x, &mut rest[..no])?;
        }
        if steps > 0 {
            self.last_output
                .copy_from_slice(&outputs[(steps - 1) * no..steps * no]);
        }
        Ok(())
    }
}

/// Jaeger's linear memory capacity of a single-input reservoir without feedback, measured on
/// `input` (e.g. i.i.d. U(−1, 1)): after `washout` steps, one ridge readout per delay k in
/// `delays` learns u(t−k) from x(t) on the next `train` steps, and MC = Σₖ r²(u(t−k), ŷₖ(t))
/// over the remaining steps. Needs washout ≥ the largest delay.
///
/// Convention: here x(t) already contains u(t), so delay 0 is "the current input". Jaeger
/// writes the update one step shifted, so his Σ over k ≥ 1 (bounded by N, and equal to N for a
/// generic linear reservoir) corresponds to `delays = 0..=K` here; the customary 1..=K
/// excludes the current input and is bounded by N − r²₀.
pub fn memory_capacity<T: Scalar>(
    esn: &mut Esn<T>,
    input: &[T],
    washout: usize,
    train: usize,
    delays: core::ops::RangeInclusive<usize>,
    ridge_param: f64,
) -> Result<f64, ModelError> {
    shape("memory capacity input dimension", 1, esn.inputs())?;
    shape("memory capacity feedback dimension", 0, esn.outputs())?;
    let (min_delay, max_delay) = (*delays.start(), *delays.end());
    if min_delay > max_delay || washout < max_delay {
        return Err(ModelError::Shape {
            what: "washout (must be >= the largest delay, delays non-empty)",
            expected: max_delay,
            got: washout,
        });
    }
    let count = max_delay - min_delay + 1;
    let steps = input.len();
    if washout + train + 2 > steps {
        return Err(ModelError::WashoutTooLong {
            washout: washout + train,
            steps,
        });
    }
    let n = esn.units();
    let mut states = vec![T::zero(); steps * n];
    for t in 0..steps {
        let x = esn.step(&input[t..t + 1], None)?;
        states[t * n..(t + 1) * n].copy_from_slice(x);
    }
    let mut ridge = Ridge::new(n, count, ridge_param)?;
    let mut target = vec![T::zero(); count];
    for t in washout..washout + train {
        for (j, k) in delays.clone().enumerate() {
            target[j] = input[t - k];
        }
        ridge.accumulate(&states[t * n..(t + 1) * n], &target)?;
    }
    let readout = ridge.fit()?;
    let test = washout + train..steps;
    let mut recall = vec![T::zero(); count];
    let mut truth = vec![Vec::with_capacity(test.len()); count];
    let mut predicted = vec![Vec::with_capacity(test.len()); count];
    for t in test {
        readout.predict(&states[t * n..(t + 1) * n], &mut recall)?;
        for (j, k) in delays.clone().enumerate() {
            truth[j].push(input[t - k].to_f64());
            predicted[j].push(recall[j].to_f64());
        }
    }
    let mut total = 0.0;
    for j in 0..count {
        total += crate::metrics::squared_correlation(&truth[j], &predicted[j]).map_err(|_| {
            ModelError::Readout(ReadoutError::NonFinite {
                what: "memory capacity recall",
            })
        })?;
    }
    Ok(total)
}
