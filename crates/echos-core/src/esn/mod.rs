//! The echo state network: configuration, generation of the weights from a seed, and the
//! allocation-free leaky-integrator state update
//!
//! x(t) = (1 − a)·x(t−1) + a·f(W·x(t−1) + W_in·u(t) + W_fb·y(t−1) + b)
//!
//! with leak rate a, activation f, input u, optional output feedback y and bias b.
//!
//! Generation (the determinism contract): one `Rng` seeded with `seed` draws, in this order,
//! W (row by row: columns, then weights; see `topology::random_sparse`), W_in (same scheme with
//! `input_distribution`, then × `input_scaling`), b (U(−1, 1) × `bias_scaling`, one draw per unit)
//! and W_fb (dense U(−1, 1) × `feedback_scaling`). Weights are generated and scaled in f64 and
//! rounded once to the reservoir's scalar type, so an `Esn<f32>` holds the f32 rounding of the
//! `Esn<f64>` weights of the same seed.
//!
//! Step kernel (`EsnConfig::kernel`, part of the configuration because it decides the bits):
//! `Exact` is the model path below (libm activation, the portable reduction order, in `T`);
//! `Fused(variant)` runs the engine's fused f32 kernel (`kernels::reservoir::FusedReservoir`:
//! SELL-16 or dense, rational tanh) of that variant, with W_fb·y entering as extra input
//! columns. The fused kernel computes in f32 whatever `T` is: an `Esn<f64>` with a fused
//! kernel (how the f64 host, CLI and model files carry such a reservoir) holds the f32 results
//! widened exactly, so it gives the same states as the `Esn<f32>` of the same config.

mod config;
mod fused;
mod generate;
#[cfg(test)]
mod tests;

use alloc::vec;
use alloc::vec::Vec;

pub use config::{
    Activation, ConfigError, EsnConfig, StepError, StepKernel, UnknownStepKernel,
    MAX_DENSE_WEIGHTS, MAX_IO, MAX_UNITS,
};
use fused::{fill_drive, Fused};

use crate::kernels::reservoir::FusedReservoir;
use crate::matrix::Dense;
use crate::scalar::Scalar;
use crate::topology::{ReservoirMatrix, ReservoirMatrixError};

/// An echo state network running in scalar type `T`.
#[derive(Clone, Debug)]
pub struct Esn<T> {
    config: EsnConfig,
    w: ReservoirMatrix<T>,
    w_in: Dense<T>,
    w_fb: Option<Dense<T>>,
    bias: Vec<T>,
    state: Vec<T>,
    /// Pre-activation scratch, sized in `new` so `step` never allocates.
    pre: Vec<T>,
    leak: T,
    retain: T,
    /// The fused kernel and its f32 copy of the weights, when `config.kernel` is `Fused`.
    fused: Option<Fused>,
}

impl<T: Scalar> Esn<T> {
    /// Generates all weights from `config.seed` (see the module docs for the draw order).
    pub fn new(config: &EsnConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let w = generate::weights::<T>(config)?;
        Self::assemble(config.clone(), w.w, w.w_in, w.w_fb, w.bias)
    }

    /// Rebuilds a reservoir from saved weights, checking shapes and values against `config`.
    pub fn from_parts(
        config: EsnConfig,
        w: ReservoirMatrix<T>,
        w_in: Dense<T>,
        w_fb: Option<Dense<T>>,
        bias: Vec<T>,
    ) -> Result<Self, ConfigError> {
        config.validate()?;
        let n = config.units;
        let shape = |what, expected: (usize, usize), got: (usize, usize)| {
            if expected == got {
                Ok(())
            } else {
                Err(ConfigError::ShapeMismatch {
                    what,
                    expected,
                    got,
                })
            }
        };
        w.validate(n).map_err(|e| match e {
            ReservoirMatrixError::Shape { expected, got } => ConfigError::ShapeMismatch {
                what: "W",
                expected: (expected, expected),
                got,
            },
            ReservoirMatrixError::Matrix(error) => ConfigError::Matrix { what: "W", error },
            ReservoirMatrixError::Block(e) => ConfigError::BlockMatrix(e),
            ReservoirMatrixError::NonFinite => ConfigError::NonFinite { what: "W" },
            ReservoirMatrixError::Jump { jump, units } => ConfigError::BadJump { jump, units },
        })?;
        shape("W_in", (n, config.inputs), (w_in.rows, w_in.cols))?;
        w_in.validate().map_err(|error| ConfigError::Matrix {
            what: "W_in",
            error,
        })?;
        match (&w_fb, config.outputs) {
            (None, 0) => {}
            (Some(fb), o) if o > 0 => {
                shape("W_fb", (n, o), (fb.rows, fb.cols))?;
                fb.validate().map_err(|error| ConfigError::Matrix {
                    what: "W_fb",
                    error,
                })?;
            }
            (None, o) => {
                return Err(ConfigError::ShapeMismatch {
                    what: "W_fb",
                    expected: (n, o),
                    got: (0, 0),
                })
            }
            (Some(fb), _) => {
                return Err(ConfigError::ShapeMismatch {
                    what: "W_fb",
                    expected: (0, 0),
                    got: (fb.rows, fb.cols),
                })
            }
        }
        shape("bias", (n, 1), (bias.len(), 1))?;
        if bias.iter().any(|v| !v.is_finite()) {
            return Err(ConfigError::NonFinite { what: "bias" });
        }
        Self::assemble(config, w, w_in, w_fb, bias)
    }

    fn assemble(
        config: EsnConfig,
        w: ReservoirMatrix<T>,
        w_in: Dense<T>,
        w_fb: Option<Dense<T>>,
        bias: Vec<T>,
    ) -> Result<Self, ConfigError> {
        let n = config.units;
        let leak = T::from_f64(config.leak_rate);
        let fused = match config.kernel {
            StepKernel::Exact => None,
            StepKernel::Fused(variant) => Some(Fused::build(
                variant,
                &config,
                &w,
                &w_in,
                w_fb.as_ref(),
                &bias,
            )?),
        };
        Ok(Self {
            fused,
            leak,
            retain: T::from_f64(1.0 - config.leak_rate),
            config,
            w,
            w_in,
            w_fb,
            bias,
            state: vec![T::zero(); n],
            pre: vec![T::zero(); n],
        })
    }

    /// One time step: updates and returns the state x(t) from input u(t) and, if the reservoir
    /// has feedback, the previous output y(t−1). Allocates nothing; its time depends only on
    /// the dimensions. Arguments are checked first, and an error leaves the state unchanged.
    pub fn step(&mut self, u: &[T], feedback: Option<&[T]>) -> Result<&[T], StepError> {
        if u.len() != self.config.inputs {
            return Err(StepError::InputLength {
                expected: self.config.inputs,
                got: u.len(),
            });
        }
        match (&self.w_fb, feedback) {
            (Some(_), None) => return Err(StepError::FeedbackMissing),
            (None, Some(_)) => return Err(StepError::UnexpectedFeedback),
            (Some(fb), Some(y)) if y.len() != fb.cols => {
                return Err(StepError::FeedbackLength {
                    expected: fb.cols,
                    got: y.len(),
                })
            }
            _ => {}
        }
        // Every value is checked (no early exit) so the step's time does not depend on the data.
        let finite = u
            .iter()
            .chain(feedback.unwrap_or(&[]))
            .fold(true, |ok, v| ok & v.is_finite());
        if !finite {
            return Err(StepError::NonFiniteInput);
        }
        if let Some(f) = &mut self.fused {
            // Exact for f32; an f64 value beyond f32's range becomes infinite, caught below.
            fill_drive(&mut f.drive, u, feedback);
            if !f.drive.iter().fold(true, |ok, v| ok & v.is_finite()) {
                return Err(StepError::NonFiniteInput);
            }
            let x = f
                .reservoir
                .step(f.kernel, &f.drive)
                .map_err(|_| StepError::KernelRefused)?;
            for (s, &v) in self.state.iter_mut().zip(x) {
                *s = T::from_f64(f64::from(v));
            }
            return Ok(&self.state);
        }
        self.exact_step(u, feedback);
        Ok(&self.state)
    }

    /// The model path's update of `state`, on checked arguments.
    fn exact_step(&mut self, u: &[T], feedback: Option<&[T]>) {
        self.pre.copy_from_slice(&self.bias);
        self.w.matvec_add(&self.state, &mut self.pre);
        self.w_in.matvec_add(u, &mut self.pre);
        if let (Some(fb), Some(y)) = (&self.w_fb, feedback) {
            fb.matvec_add(y, &mut self.pre);
        }
        let (leak, retain) = (self.leak, self.retain);
        let act = self.config.activation;
        for (x, &p) in self.state.iter_mut().zip(&self.pre) {
            *x = retain.mul_add(*x, leak * act.apply(p));
        }
    }

    /// Runs a whole sequence: `inputs` holds steps × `inputs()` values (row-major, row t is
    /// u(t)), and state x(t) goes to row t of `states_out` (steps × `units()`). A reservoir
    /// with output feedback takes the teacher-forced `feedback` (steps × `outputs()`, row t is
    /// y(t−1)); one without takes `None`.
    ///
    /// Bit-identical to calling [`Esn::step`] once per row, but every argument is checked once
    /// up front (shapes, and every value finite, representable in f32 for a fused kernel) and
    /// the loop then runs the kernel without re-checking. Allocates nothing. On an argument
    /// error nothing has run: state and `states_out` are unchanged.
    pub fn run_into(
        &mut self,
        inputs: &[T],
        feedback: Option<&[T]>,
        states_out: &mut [T],
    ) -> Result<(), StepError> {
        let (ni, no, n) = (self.config.inputs, self.config.outputs, self.config.units);
        if !inputs.len().is_multiple_of(ni) {
            return Err(StepError::RaggedInputs {
                len: inputs.len(),
                inputs: ni,
            });
        }
        let steps = inputs.len() / ni;
        match (no, feedback) {
            (0, Some(_)) => return Err(StepError::UnexpectedFeedback),
            (o, None) if o > 0 => return Err(StepError::FeedbackMissing),
            (o, Some(y)) if y.len() != steps * o => {
                return Err(StepError::SequenceLength {
                    what: "feedback",
                    expected: steps * o,
                    got: y.len(),
                })
            }
            _ => {}
        }
        if states_out.len() != steps * n {
            return Err(StepError::SequenceLength {
                what: "states",
                expected: steps * n,
                got: states_out.len(),
            });
        }
        // A fused kernel computes in f32, so every value must also survive rounding to f32.
        let fused = self.fused.is_some();
        let usable = |v: &T| v.is_finite() && (!fused || (v.to_f64() as f32).is_finite());
        for (t, u) in inputs.chunks_exact(ni).enumerate() {
            let y = feedback.map_or(&[][..], |y| &y[t * no..(t + 1) * no]);
            if !u.iter().chain(y).all(usable) {
                return Err(StepError::NonFiniteInputAt { step: t });
            }
        }
        if steps == 0 {
            return Ok(());
        }
        let rows = inputs.chunks_exact(ni).zip(states_out.chunks_exact_mut(n));
        if let Some(f) = &mut self.fused {
            for (t, (u, out)) in rows.enumerate() {
                let y = feedback.map(|y| &y[t * no..(t + 1) * no]);
                fill_drive(&mut f.drive, u, y);
                let x = f
                    .reservoir
                    .step(f.kernel, &f.drive)
                    .map_err(|_| StepError::KernelRefused)?;
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = T::from_f64(f64::from(v));
                }
            }
        } else {
            for (t, (u, out)) in rows.enumerate() {
                let y = feedback.map(|y| &y[t * no..(t + 1) * no]);
                self.exact_step(u, y);
                out.copy_from_slice(&self.state);
            }
        }
        let last = &states_out[(steps - 1) * n..];
        self.state.copy_from_slice(last);
        Ok(())
    }

    pub fn state(&self) -> &[T] {
        &self.state
    }

    /// Replaces the state (e.g. from a snapshot); it must have `units` finite values.
    pub fn set_state(&mut self, x: &[T]) -> Result<(), StepError> {
        if x.len() != self.state.len() {
            return Err(StepError::StateLength {
                expected: self.state.len(),
                got: x.len(),
            });
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(StepError::NonFiniteInput);
        }
        if let Some(f) = &mut self.fused {
            // The kernel's state is f32: round once, and keep `state` equal to what it holds.
            for (r, &v) in f.rounded.iter_mut().zip(x) {
                *r = v.to_f64() as f32;
            }
            if f.rounded.iter().any(|v| !v.is_finite()) {
                return Err(StepError::NonFiniteInput);
            }
            f.reservoir
                .set_state(&f.rounded)
                .map_err(|_| StepError::KernelRefused)?;
            for (s, &r) in self.state.iter_mut().zip(&f.rounded) {
                *s = T::from_f64(f64::from(r));
            }
            return Ok(());
        }
        self.state.copy_from_slice(x);
        Ok(())
    }

    /// Sets the state to zero.
    pub fn reset(&mut self) {
        self.state.fill(T::zero());
        if let Some(f) = &mut self.fused {
            f.reservoir.reset();
        }
    }

    /// The step kernel that runs `step` (as configured).
    pub fn step_kernel(&self) -> StepKernel {
        self.config.kernel
    }

    /// The fused step code that runs, e.g. `avx512-sell16`; None on the exact path.
    pub fn fused_step_name(&self) -> Option<&'static str> {
        self.fused
            .as_ref()
            .map(|f| f.reservoir.step_kernel_name(f.kernel))
    }

    /// The fused reservoir behind `step` (its f32 weights), when the kernel is fused.
    pub fn fused_reservoir(&self) -> Option<&FusedReservoir> {
        self.fused.as_ref().map(|f| &f.reservoir)
    }

    pub fn config(&self) -> &EsnConfig {
        &self.config
    }
    pub fn units(&self) -> usize {
        self.config.units
    }
    pub fn inputs(&self) -> usize {
        self.config.inputs
    }
    /// Feedback dimension (0 when the reservoir has no feedback).
    pub fn outputs(&self) -> usize {
        self.config.outputs
    }
    pub fn w(&self) -> &ReservoirMatrix<T> {
        &self.w
    }
    pub fn w_in(&self) -> &Dense<T> {
        &self.w_in
    }
    pub fn w_fb(&self) -> Option<&Dense<T>> {
        self.w_fb.as_ref()
    }
    pub fn bias(&self) -> &[T] {
        &self.bias
    }
}
