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

use alloc::vec;
use alloc::vec::Vec;
use core::fmt;

use crate::kernels::reservoir::{FusedReservoir, OwnedWeights};
use crate::kernels::{Kernel, KernelError, Variant};
use crate::matrix::{Dense, MatrixError};
use crate::rng::Rng;
use crate::scalar::Scalar;
use crate::spectral::{self, ScaleError};
use crate::topology::{
    self, BlockError, MatrixFormat, ReservoirMatrix, ReservoirMatrixError, Topology,
    WeightDistribution,
};

/// Largest reservoir the engine builds (CSR indices are u32; this also bounds dense N²).
pub const MAX_UNITS: usize = 1 << 24;
/// Largest input or output dimension.
pub const MAX_IO: usize = 1 << 20;
/// Largest dense weight matrix (entries): 2 GiB of f64.
pub const MAX_DENSE_WEIGHTS: usize = 1 << 28;

/// The nonlinearity f of the state update.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(rename_all = "snake_case"))]
pub enum Activation {
    #[default]
    Tanh,
    /// Logistic 1 / (1 + e^(−x)).
    Sigmoid,
    /// max(0, x).
    Relu,
    Identity,
}

impl Activation {
    #[inline]
    pub fn apply<T: Scalar>(self, x: T) -> T {
        match self {
            Self::Tanh => x.tanh(),
            Self::Sigmoid => T::one() / (T::one() + (-x).exp()),
            Self::Relu => x.max(T::zero()),
            Self::Identity => x,
        }
    }
}

/// Which code runs the state update; see the module docs. Part of the determinism contract:
/// same config, seed and step kernel → bit-identical states.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
#[cfg_attr(
    feature = "serde",
    derive(serde::Serialize, serde::Deserialize),
    serde(into = "alloc::string::String", try_from = "alloc::string::String")
)]
pub enum StepKernel {
    /// The model path: libm activation, portable reduction order, computed in `T`.
    #[default]
    Exact,
    /// The fused f32 kernel of one concrete variant (tanh only).
    Fused(Variant),
}

/// A step-kernel name that is none of `exact`, `fast`, `scalar`, `avx2`, `avx512`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnknownStepKernel(pub alloc::string::String);

impl fmt::Display for UnknownStepKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "unknown step kernel {:?}: expected \"exact\", \"fast\", \"scalar\", \"avx2\" or \"avx512\"",
            self.0
        )
    }
}

#[cfg(feature = "std")]
impl std::error::Error for UnknownStepKernel {}

impl StepKernel {
    /// The fastest fused variant this CPU runs, resolved now (so a saved config names it).
    pub fn fast() -> Self {
        Self::Fused(Kernel::best().variant())
    }

    /// `exact`, or the fused variant's name (`scalar`, `avx2`, `avx512`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Exact => "exact",
            Self::Fused(v) => v.name(),
        }
    }

    /// Parses a concrete name (`exact`, `scalar`, `avx2`, `avx512`); `fast` is resolved to this
    /// CPU's best variant. Whether the CPU runs the variant is checked by `EsnConfig::validate`.
    pub fn parse(name: &str) -> Result<Self, UnknownStepKernel> {
        match name {
            "exact" => Ok(Self::Exact),
            "fast" => Ok(Self::fast()),
            other => Variant::from_name(other)
                .map(Self::Fused)
                .ok_or_else(|| UnknownStepKernel(other.into())),
        }
    }

    pub fn is_exact(&self) -> bool {
        *self == Self::Exact
    }
}

impl fmt::Display for StepKernel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl From<StepKernel> for alloc::string::String {
    fn from(k: StepKernel) -> Self {
        k.name().into()
    }
}

impl TryFrom<alloc::string::String> for StepKernel {
    type Error = UnknownStepKernel;
    /// Stored names only: a file saying `fast` would mean different bits on different CPUs.
    fn try_from(name: alloc::string::String) -> Result<Self, Self::Error> {
        if name == "fast" {
            return Err(UnknownStepKernel(name));
        }
        Self::parse(&name)
    }
}

/// Everything that defines a reservoir; with the seed it determines every weight.
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(feature = "serde", derive(serde::Serialize, serde::Deserialize))]
#[cfg_attr(feature = "serde", serde(default))]
pub struct EsnConfig {
    /// Number of reservoir neurons N.
    pub units: usize,
    /// Input dimension.
    pub inputs: usize,
    /// Dimension of the fed-back output y (0: no feedback, no W_fb).
    pub outputs: usize,
    /// Target spectral radius of W (for `DelayLine`, whose radius is 0, the edge weight).
    pub spectral_radius: f64,
    /// Leak rate a in (0, 1]; 1 means no leaky integration.
    pub leak_rate: f64,
    /// Multiplier of the input weights.
    pub input_scaling: f64,
    /// Bias b ~ U(−1, 1) × bias_scaling (0: no bias).
    pub bias_scaling: f64,
    /// Fraction of nonzeros per row of a random W, in (0, 1]: each row gets exactly
    /// round(connectivity·N) (at least one) distinct columns.
    pub connectivity: f64,
    /// Fraction of inputs each neuron receives, in (0, 1], the same per-row rule.
    pub input_connectivity: f64,
    /// Distribution of the nonzeros of a random W before scaling.
    pub distribution: WeightDistribution,
    /// Distribution of the input weights before scaling (U(−1, 1) by default).
    pub input_distribution: WeightDistribution,
    pub topology: Topology,
    /// Storage of a random W (ignored by the structured topologies).
    pub format: MatrixFormat,
    pub activation: Activation,
    /// W_fb ~ U(−1, 1) × feedback_scaling, used when `outputs > 0`.
    pub feedback_scaling: f64,
    pub seed: u64,
    /// The code that runs the step (absent from serialized configs when `Exact`, so files
    /// written before it existed, and exact models written now, have the same bytes).
    #[cfg_attr(feature = "serde", serde(skip_serializing_if = "StepKernel::is_exact"))]
    pub kernel: StepKernel,
}

impl Default for EsnConfig {
    /// ReservoirPy-like defaults: 100 tanh units, leak rate 1, connectivity 0.1 with normal
    /// weights, dense uniform inputs, spectral radius 0.9.
    fn default() -> Self {
        Self {
            units: 100,
            inputs: 1,
            outputs: 0,
            spectral_radius: 0.9,
            leak_rate: 1.0,
            input_scaling: 1.0,
            bias_scaling: 1.0,
            connectivity: 0.1,
            input_connectivity: 1.0,
            distribution: WeightDistribution::Normal,
            input_distribution: WeightDistribution::Uniform,
            topology: Topology::Random,
            format: MatrixFormat::Auto,
            activation: Activation::Tanh,
            feedback_scaling: 1.0,
            seed: 42,
            kernel: StepKernel::Exact,
        }
    }
}

/// A configuration or a set of weights that cannot make a reservoir; each says what to fix.
#[derive(Clone, Debug, PartialEq)]
pub enum ConfigError {
    ZeroUnits,
    ZeroInputs,
    /// A dimension (or a product of them) is larger than the engine can index.
    DimensionOverflow {
        what: &'static str,
        value: usize,
    },
    BadSpectralRadius(f64),
    BadLeakRate(f64),
    BadConnectivity {
        what: &'static str,
        value: f64,
    },
    BadScaling {
        what: &'static str,
        value: f64,
    },
    /// `CycleJumps { jump }` needs 2 ≤ jump < units.
    BadJump {
        jump: usize,
        units: usize,
    },
    /// `Block { size }` needs 1 ≤ size ≤ units.
    BadBlockSize {
        size: usize,
        units: usize,
    },
    /// A block-sparse W is malformed.
    BlockMatrix(BlockError),
    /// The generated random W has spectral radius 0 (it is nilpotent), so it cannot be scaled.
    DegenerateReservoir,
    /// The Arnoldi estimate of the spectral radius did not converge.
    SpectralRadiusNotConverged {
        estimate: f64,
    },
    /// A weight matrix or vector has the wrong shape for the configuration.
    ShapeMismatch {
        what: &'static str,
        expected: (usize, usize),
        got: (usize, usize),
    },
    /// A weight matrix is malformed.
    Matrix {
        what: &'static str,
        error: MatrixError,
    },
    /// A weight is NaN or infinite.
    NonFinite {
        what: &'static str,
    },
    /// The fused step kernel of this variant needs instructions this CPU/OS lacks.
    KernelUnsupported(Variant),
    /// The configuration asks the fused step kernels for something they do not compute.
    FusedUnsupported {
        what: &'static str,
    },
    /// The fused kernel refused the weights (e.g. a dimension beyond its i32 gather offsets).
    Kernel(KernelError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::ZeroUnits => write!(f, "units must be at least 1"),
            Self::ZeroInputs => write!(f, "inputs must be at least 1"),
            Self::DimensionOverflow { what, value } => {
                write!(f, "{what} = {value} is too large for the engine")
            }
            Self::BadSpectralRadius(v) => {
                write!(f, "spectral_radius must be finite and >= 0, got {v}")
            }
            Self::BadLeakRate(v) => write!(f, "leak_rate must be in (0, 1], got {v}"),
            Self::BadConnectivity { what, value } => {
                write!(f, "{what} must be in (0, 1], got {value}")
            }
            Self::BadScaling { what, value } => {
                write!(f, "{what} must be finite and >= 0, got {value}")
            }
            Self::BadJump { jump, units } => write!(
                f,
                "cycle-with-jumps jump size must satisfy 2 <= jump < units ({units}), got {jump}"
            ),
            Self::BadBlockSize { size, units } => write!(
                f,
                "block topology group size must satisfy 1 <= size <= units ({units}), got {size}"
            ),
            Self::BlockMatrix(e) => write!(f, "W: {e}"),
            Self::DegenerateReservoir => write!(
                f,
                "the random reservoir has spectral radius 0 and cannot be scaled; raise connectivity or change the seed"
            ),
            Self::SpectralRadiusNotConverged { estimate } => write!(
                f,
                "the spectral radius estimate did not converge (last estimate {estimate})"
            ),
            Self::ShapeMismatch {
                what,
                expected,
                got,
            } => write!(
                f,
                "{what} has shape {}x{}, the configuration needs {}x{}",
                got.0, got.1, expected.0, expected.1
            ),
            Self::Matrix { what, error } => write!(f, "{what}: {error}"),
            Self::NonFinite { what } => write!(f, "{what} contains NaN or infinite values"),
            Self::KernelUnsupported(v) => write!(
                f,
                "step kernel `{v}` needs instructions this CPU/OS does not provide; use kernel \"fast\" (this CPU's best) or \"exact\""
            ),
            Self::FusedUnsupported { what } => write!(
                f,
                "{what} is not supported by the fused step kernels; use kernel \"exact\""
            ),
            Self::Kernel(e) => write!(f, "fused step kernel: {e}"),
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for ConfigError {}

/// A step called with arguments that do not fit the reservoir.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StepError {
    InputLength {
        expected: usize,
        got: usize,
    },
    FeedbackLength {
        expected: usize,
        got: usize,
    },
    /// The reservoir has output feedback (`outputs > 0`) but no feedback was passed.
    FeedbackMissing,
    /// Feedback was passed to a reservoir configured without it.
    UnexpectedFeedback,
    /// An input or feedback value is NaN or infinite (or, on a fused `Esn<f64>`, beyond f32).
    NonFiniteInput,
    StateLength {
        expected: usize,
        got: usize,
    },
    /// The fused kernel refused arguments the step had already checked (an engine bug).
    KernelRefused,
    /// A whole-sequence buffer (`what`: inputs, feedback, states) does not fit the run.
    SequenceLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    /// The inputs of a whole-sequence run are not a whole number of rows.
    RaggedInputs {
        len: usize,
        inputs: usize,
    },
    /// An input or feedback value of step `step` of a whole-sequence run is NaN or infinite
    /// (or, on a fused `Esn<f64>`, beyond f32).
    NonFiniteInputAt {
        step: usize,
    },
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InputLength { expected, got } => {
                write!(f, "input has {got} values, the reservoir takes {expected}")
            }
            Self::FeedbackLength { expected, got } => {
                write!(
                    f,
                    "feedback has {got} values, the reservoir takes {expected}"
                )
            }
            Self::FeedbackMissing => write!(
                f,
                "the reservoir is configured with output feedback but none was given"
            ),
            Self::UnexpectedFeedback => write!(
                f,
                "feedback was given but the reservoir has no feedback weights (outputs = 0)"
            ),
            Self::NonFiniteInput => write!(f, "input or feedback contains NaN or infinity"),
            Self::KernelRefused => write!(
                f,
                "the fused step kernel refused checked arguments (an engine bug; please report)"
            ),
            Self::SequenceLength {
                what,
                expected,
                got,
            } => write!(
                f,
                "the {what} buffer has {got} values, the run needs {expected} (steps x width)"
            ),
            Self::RaggedInputs { len, inputs } => write!(
                f,
                "the inputs hold {len} values, not a whole number of steps of {inputs} inputs"
            ),
            Self::NonFiniteInputAt { step } => write!(
                f,
                "input or feedback of step {step} contains NaN or infinity (or, for a fused kernel, a value beyond float32)"
            ),
            Self::StateLength { expected, got } => {
                write!(
                    f,
                    "state has {got} values, the reservoir has {expected} units"
                )
            }
        }
    }
}

#[cfg(feature = "std")]
impl std::error::Error for StepError {}

fn check_fraction(what: &'static str, value: f64) -> Result<(), ConfigError> {
    if value > 0.0 && value <= 1.0 {
        Ok(())
    } else {
        Err(ConfigError::BadConnectivity { what, value })
    }
}

fn check_scaling(what: &'static str, value: f64) -> Result<(), ConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::BadScaling { what, value })
    }
}

impl EsnConfig {
    /// Checks every field, naming the first that is out of range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.units == 0 {
            return Err(ConfigError::ZeroUnits);
        }
        if self.units > MAX_UNITS {
            return Err(ConfigError::DimensionOverflow {
                what: "units",
                value: self.units,
            });
        }
        if self.inputs == 0 {
            return Err(ConfigError::ZeroInputs);
        }
        if self.inputs > MAX_IO {
            return Err(ConfigError::DimensionOverflow {
                what: "inputs",
                value: self.inputs,
            });
        }
        if self.outputs > MAX_IO {
            return Err(ConfigError::DimensionOverflow {
                what: "outputs",
                value: self.outputs,
            });
        }
        if !(self.spectral_radius.is_finite() && self.spectral_radius >= 0.0) {
            return Err(ConfigError::BadSpectralRadius(self.spectral_radius));
        }
        if !(self.leak_rate > 0.0 && self.leak_rate <= 1.0) {
            return Err(ConfigError::BadLeakRate(self.leak_rate));
        }
        check_fraction("connectivity", self.connectivity)?;
        check_fraction("input_connectivity", self.input_connectivity)?;
        check_scaling("input_scaling", self.input_scaling)?;
        check_scaling("bias_scaling", self.bias_scaling)?;
        check_scaling("feedback_scaling", self.feedback_scaling)?;
        if let Topology::CycleJumps { jump } = self.topology {
            if jump < 2 || jump >= self.units {
                return Err(ConfigError::BadJump {
                    jump,
                    units: self.units,
                });
            }
        }
        if let StepKernel::Fused(variant) = self.kernel {
            if self.activation != Activation::Tanh {
                return Err(ConfigError::FusedUnsupported {
                    what: match self.activation {
                        Activation::Sigmoid => "the sigmoid activation",
                        Activation::Relu => "the relu activation",
                        _ => "the identity activation",
                    },
                });
            }
            if !variant.is_supported() {
                return Err(ConfigError::KernelUnsupported(variant));
            }
        }
        if let Topology::Block { size } = self.topology {
            if size == 0 || size > self.units {
                return Err(ConfigError::BadBlockSize {
                    size,
                    units: self.units,
                });
            }
        }
        // Storage sizes: W_in and W_fb are dense; a random W is dense or CSR. Refusing here
        // turns an impossible allocation (which would abort) into an error.
        let overflow = |what, value| ConfigError::DimensionOverflow { what, value };
        let io = self.units.saturating_mul(self.inputs.max(self.outputs));
        if io > MAX_DENSE_WEIGHTS {
            return Err(overflow("units x inputs (dense W_in / W_fb)", io));
        }
        if let Topology::Block { size } = self.topology {
            // Values are stored per group padded to `size` rows.
            let per_row = topology::nonzeros_per_row(self.units, self.connectivity);
            let padded = self.units.div_ceil(size).saturating_mul(size);
            let nnz = padded.saturating_mul(per_row);
            if nnz >= u32::MAX as usize {
                return Err(overflow("nonzeros of W (block)", nnz));
            }
        }
        if self.topology == Topology::Random {
            match self.format.resolve(self.units, self.connectivity) {
                MatrixFormat::Csr => {
                    let per_row = topology::nonzeros_per_row(self.units, self.connectivity);
                    let nnz = self.units.saturating_mul(per_row);
                    if nnz >= u32::MAX as usize {
                        return Err(overflow("nonzeros of W (CSR)", nnz));
                    }
                }
                _ => {
                    let n2 = self.units.saturating_mul(self.units);
                    if n2 > MAX_DENSE_WEIGHTS {
                        return Err(overflow("units x units (dense W; use CSR)", n2));
                    }
                }
            }
        }
        Ok(())
    }
}

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

/// A fused step kernel bound to a reservoir's weights (built once from them).
#[derive(Clone, Debug)]
struct Fused {
    kernel: Kernel,
    reservoir: FusedReservoir,
    /// The kernel's input [u(t), y(t−1)] in f32, sized once.
    drive: Vec<f32>,
    /// A state rounded to f32 by `set_state`, sized once (noisy training sets it every step).
    rounded: Vec<f32>,
}

impl<T: Scalar> Esn<T> {
    /// Generates all weights from `config.seed` (see the module docs for the draw order).
    pub fn new(config: &EsnConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let n = config.units;
        let mut rng = Rng::new(config.seed);
        let w = generate_reservoir::<T>(config, &mut rng)?;

        let per_input = topology::nonzeros_per_row(config.inputs, config.input_connectivity);
        let mut w_in_sparse = topology::random_sparse(
            n,
            config.inputs,
            per_input,
            config.input_distribution,
            &mut rng,
        );
        w_in_sparse
            .values
            .iter_mut()
            .for_each(|v| *v *= config.input_scaling);
        let w_in = w_in_sparse.to_dense().cast::<T>();

        let bias = (0..n)
            .map(|_| T::from_f64(rng.uniform(-1.0, 1.0) * config.bias_scaling))
            .collect();

        let w_fb = if config.outputs > 0 {
            let data = (0..n * config.outputs)
                .map(|_| T::from_f64(rng.uniform(-1.0, 1.0) * config.feedback_scaling))
                .collect();
            Some(Dense {
                rows: n,
                cols: config.outputs,
                data,
            })
        } else {
            None
        };
        Self::assemble(config.clone(), w, w_in, w_fb, bias)
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

impl Fused {
    /// Rounds the weights to f32 once and lays them out for the kernel: W_fb's columns follow
    /// W_in's, so the kernel's input sum Σ_j W_in[i,j]·u[j] also adds W_fb·y(t−1).
    fn build<T: Scalar>(
        variant: Variant,
        config: &EsnConfig,
        w: &ReservoirMatrix<T>,
        w_in: &Dense<T>,
        w_fb: Option<&Dense<T>>,
        bias: &[T],
    ) -> Result<Self, ConfigError> {
        let kernel = Kernel::new(variant).map_err(|_| ConfigError::KernelUnsupported(variant))?;
        let units = config.units;
        let outputs = w_fb.map_or(0, |d| d.cols);
        let drive_len = config.inputs + outputs;
        let f32_of = |v: T| v.to_f64() as f32;
        let finite = |what, xs: &[f32]| {
            if xs.iter().all(|v| v.is_finite()) {
                Ok(())
            } else {
                Err(ConfigError::NonFinite { what })
            }
        };
        let mut w_drive = Vec::with_capacity(units * drive_len);
        for i in 0..units {
            let row_in = &w_in.data[i * config.inputs..(i + 1) * config.inputs];
            w_drive.extend(row_in.iter().map(|&v| f32_of(v)));
            if let Some(fb) = w_fb {
                w_drive.extend(
                    fb.data[i * outputs..(i + 1) * outputs]
                        .iter()
                        .map(|&v| f32_of(v)),
                );
            }
        }
        finite("W_in / W_fb rounded to f32", &w_drive)?;
        let bias: Vec<f32> = bias.iter().map(|&v| f32_of(v)).collect();
        finite("bias rounded to f32", &bias)?;
        let leak_rate = config.leak_rate as f32;
        let reservoir = if let ReservoirMatrix::Block(b) = w {
            // The gather-free block kernel, on the block layout itself (not a CSR copy).
            let values: Vec<f32> = b.values.iter().map(|&v| f32_of(v)).collect();
            finite("W rounded to f32", &values)?;
            FusedReservoir::new_block(
                units,
                drive_len,
                b.size,
                b.per_group,
                &b.indices,
                &values,
                w_drive,
                bias,
                leak_rate,
            )
        } else {
            let weights = fused_weights(w);
            let values = match &weights {
                OwnedWeights::Csr { values, .. } => values,
                OwnedWeights::Dense(d) => d,
            };
            finite("W rounded to f32", values)?;
            FusedReservoir::new(units, drive_len, weights, w_drive, bias, leak_rate)
        }
        .map_err(ConfigError::Kernel)?;
        Ok(Fused {
            kernel,
            reservoir,
            drive: vec![0.0; drive_len],
            rounded: vec![0.0; units],
        })
    }
}

/// The fused kernel's input [u(t), y(t−1)] in f32 (exact for f32; an f64 value beyond f32's
/// range becomes infinite, which callers check).
#[inline]
fn fill_drive<T: Scalar>(drive: &mut [f32], u: &[T], feedback: Option<&[T]>) {
    for (d, v) in drive
        .iter_mut()
        .zip(u.iter().chain(feedback.unwrap_or(&[])))
    {
        *d = v.to_f64() as f32;
    }
}

/// W in the fused kernels' formats: dense stays dense; everything else goes to its CSR form
/// (`ReservoirMatrix::to_csr`: one entry per edge of a structured W), from which the kernel
/// builds SELL-16. (The builder gives block matrices their own kernel instead.)
fn fused_weights<T: Scalar>(w: &ReservoirMatrix<T>) -> OwnedWeights {
    match w {
        ReservoirMatrix::Dense(d) => {
            OwnedWeights::Dense(d.data.iter().map(|&v| v.to_f64() as f32).collect())
        }
        _ => {
            let c = w.to_csr().cast::<f32>();
            OwnedWeights::Csr {
                indptr: c.indptr,
                indices: c.indices,
                values: c.values,
            }
        }
    }
}

/// Builds W for the configured topology and scales it to the target spectral radius.
fn generate_reservoir<T: Scalar>(
    config: &EsnConfig,
    rng: &mut Rng,
) -> Result<ReservoirMatrix<T>, ConfigError> {
    let n = config.units;
    let sr = config.spectral_radius;
    match config.topology {
        Topology::Cycle => Ok(ReservoirMatrix::Cycle {
            units: n,
            weight: T::from_f64(sr),
        }),
        Topology::DelayLine => Ok(ReservoirMatrix::DelayLine {
            units: n,
            weight: T::from_f64(sr),
        }),
        Topology::CycleJumps { jump } => {
            let mut w = ReservoirMatrix::<f64>::CycleJumps {
                units: n,
                cycle_weight: 1.0,
                jump_weight: 1.0,
                jump,
            };
            scale_f64(&mut w, sr)?;
            let ReservoirMatrix::CycleJumps {
                cycle_weight,
                jump_weight,
                ..
            } = w
            else {
                unreachable!("built as CycleJumps above")
            };
            Ok(ReservoirMatrix::CycleJumps {
                units: n,
                cycle_weight: T::from_f64(cycle_weight),
                jump_weight: T::from_f64(jump_weight),
                jump,
            })
        }
        Topology::Block { size } => {
            let per_row = topology::nonzeros_per_row(n, config.connectivity);
            let block = topology::random_block(n, size, per_row, config.distribution, rng);
            let mut w = ReservoirMatrix::Block(block);
            scale_f64(&mut w, sr)?;
            let ReservoirMatrix::Block(block) = w else {
                unreachable!("built as block above")
            };
            Ok(ReservoirMatrix::Block(block.cast()))
        }
        Topology::Random => {
            let per_row = topology::nonzeros_per_row(n, config.connectivity);
            let csr = topology::random_sparse(n, n, per_row, config.distribution, rng);
            let mut w = ReservoirMatrix::Csr(csr);
            scale_f64(&mut w, sr)?;
            let ReservoirMatrix::Csr(csr) = w else {
                unreachable!("built as CSR above")
            };
            Ok(match config.format.resolve(n, config.connectivity) {
                MatrixFormat::Dense => ReservoirMatrix::Dense(csr.to_dense().cast()),
                _ => ReservoirMatrix::Csr(csr.cast()),
            })
        }
    }
}

fn scale_f64(w: &mut ReservoirMatrix<f64>, target: f64) -> Result<(), ConfigError> {
    match spectral::scale_to_spectral_radius(w, target) {
        Ok(_) => Ok(()),
        Err(ScaleError::ZeroRadius) => Err(ConfigError::DegenerateReservoir),
        Err(ScaleError::NotConverged { radius }) => {
            Err(ConfigError::SpectralRadiusNotConverged { estimate: radius })
        }
        Err(ScaleError::BadTarget) => Err(ConfigError::BadSpectralRadius(target)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::matrix::Csr;
    use alloc::vec::Vec;

    fn small_config(activation: Activation, leak_rate: f64, outputs: usize) -> EsnConfig {
        EsnConfig {
            units: 2,
            inputs: 1,
            outputs,
            leak_rate,
            activation,
            ..EsnConfig::default()
        }
    }

    /// W = [[0.5, 0], [0.1, 0.2]], W_in = [1, −1]ᵀ, b = [0.1, 0], x = [0.2, −0.4], u = 0.3.
    fn hand_model(activation: Activation, leak_rate: f64, fb: Option<Dense<f64>>) -> Esn<f64> {
        let outputs = fb.as_ref().map_or(0, |d| d.cols);
        let w = ReservoirMatrix::Dense(Dense::new(2, 2, vec![0.5, 0.0, 0.1, 0.2]).unwrap());
        let w_in = Dense::new(2, 1, vec![1.0, -1.0]).unwrap();
        let mut esn = Esn::from_parts(
            small_config(activation, leak_rate, outputs),
            w,
            w_in,
            fb,
            vec![0.1, 0.0],
        )
        .unwrap();
        esn.set_state(&[0.2, -0.4]).unwrap();
        esn
    }

    #[test]
    fn state_update_matches_hand_computation() {
        // Pre-activations: 0.1 + 0.5·0.2 + 0.3 = 0.5 and 0.1·0.2 + 0.2·(−0.4) − 0.3 = −0.36.
        let (p0, p1) = (0.5f64, -0.36f64);
        let a = 0.3;
        type Reference = fn(f64) -> f64;
        let cases: [(Activation, Reference); 4] = [
            (Activation::Tanh, f64::tanh),
            (Activation::Sigmoid, |x| 1.0 / (1.0 + (-x).exp())),
            (Activation::Relu, |x| x.max(0.0)),
            (Activation::Identity, |x| x),
        ];
        for (act, f) in cases {
            let mut esn = hand_model(act, a, None);
            let x = esn.step(&[0.3], None).unwrap().to_vec();
            let e0 = (1.0 - a) * 0.2 + a * f(p0);
            let e1 = (1.0 - a) * -0.4 + a * f(p1);
            assert!((x[0] - e0).abs() < 1e-15, "{act:?}: {} vs {e0}", x[0]);
            assert!((x[1] - e1).abs() < 1e-15, "{act:?}: {} vs {e1}", x[1]);
        }
        // Leak rate 1: the state is f(pre) and the old state is forgotten.
        let mut esn = hand_model(Activation::Tanh, 1.0, None);
        let x = esn.step(&[0.3], None).unwrap();
        assert!((x[0] - p0.tanh()).abs() < 1e-15);
        assert!((x[1] - p1.tanh()).abs() < 1e-15);
    }

    #[test]
    fn feedback_enters_the_pre_activation() {
        let fb = Dense::new(2, 1, vec![0.5, 2.0]).unwrap();
        let mut esn = hand_model(Activation::Identity, 1.0, Some(fb));
        let x = esn.step(&[0.3], Some(&[0.1])).unwrap();
        assert!((x[0] - (0.5 + 0.05)).abs() < 1e-15);
        assert!((x[1] - (-0.36 + 0.2)).abs() < 1e-15);
        assert_eq!(esn.step(&[0.3], None), Err(StepError::FeedbackMissing));
        assert_eq!(
            esn.step(&[0.3], Some(&[0.1, 0.2])),
            Err(StepError::FeedbackLength {
                expected: 1,
                got: 2
            })
        );
    }

    #[test]
    fn step_errors_leave_the_state_unchanged() {
        let mut esn = hand_model(Activation::Tanh, 0.5, None);
        let before = esn.state().to_vec();
        assert_eq!(
            esn.step(&[0.3, 0.1], None),
            Err(StepError::InputLength {
                expected: 1,
                got: 2
            })
        );
        assert_eq!(esn.step(&[f64::NAN], None), Err(StepError::NonFiniteInput));
        assert_eq!(
            esn.step(&[0.3], Some(&[1.0])),
            Err(StepError::UnexpectedFeedback)
        );
        assert_eq!(esn.state(), &before[..]);
        assert_eq!(
            esn.set_state(&[1.0]),
            Err(StepError::StateLength {
                expected: 2,
                got: 1
            })
        );
        esn.reset();
        assert_eq!(esn.state(), &[0.0, 0.0]);
    }

    #[test]
    fn config_validation_gives_typed_errors() {
        let base = EsnConfig::default();
        assert_eq!(base.validate(), Ok(()));
        let check = |f: &dyn Fn(&mut EsnConfig), want: ConfigError| {
            let mut c = base.clone();
            f(&mut c);
            assert_eq!(c.validate(), Err(want.clone()));
            assert_eq!(Esn::<f32>::new(&c).unwrap_err(), want);
        };
        check(&|c| c.units = 0, ConfigError::ZeroUnits);
        check(&|c| c.inputs = 0, ConfigError::ZeroInputs);
        check(
            &|c| c.connectivity = 0.0,
            ConfigError::BadConnectivity {
                what: "connectivity",
                value: 0.0,
            },
        );
        check(
            &|c| c.connectivity = 1.5,
            ConfigError::BadConnectivity {
                what: "connectivity",
                value: 1.5,
            },
        );
        check(
            &|c| c.input_connectivity = -0.1,
            ConfigError::BadConnectivity {
                what: "input_connectivity",
                value: -0.1,
            },
        );
        check(&|c| c.leak_rate = 0.0, ConfigError::BadLeakRate(0.0));
        check(&|c| c.leak_rate = 1.01, ConfigError::BadLeakRate(1.01));
        check(
            &|c| c.spectral_radius = -1.0,
            ConfigError::BadSpectralRadius(-1.0),
        );
        check(
            &|c| c.spectral_radius = f64::INFINITY,
            ConfigError::BadSpectralRadius(f64::INFINITY),
        );
        check(
            &|c| c.bias_scaling = -1.0,
            ConfigError::BadScaling {
                what: "bias_scaling",
                value: -1.0,
            },
        );
        check(
            &|c| c.units = MAX_UNITS + 1,
            ConfigError::DimensionOverflow {
                what: "units",
                value: MAX_UNITS + 1,
            },
        );
        check(
            &|c| c.topology = Topology::CycleJumps { jump: 1 },
            ConfigError::BadJump {
                jump: 1,
                units: 100,
            },
        );
        // NaN compares unequal to itself, so check those variants by shape.
        let mut c = base.clone();
        c.spectral_radius = f64::NAN;
        assert!(matches!(c.validate(), Err(ConfigError::BadSpectralRadius(v)) if v.is_nan()));
        let mut c = base.clone();
        c.input_scaling = f64::NAN;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::BadScaling { what: "input_scaling", value }) if value.is_nan()
        ));
        // A dense W of MAX_UNITS² entries is refused before any allocation.
        let mut c = base.clone();
        c.units = MAX_UNITS;
        c.format = MatrixFormat::Dense;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::DimensionOverflow { .. })
        ));
        let mut c = base;
        c.units = MAX_UNITS;
        c.connectivity = 1.0;
        c.format = MatrixFormat::Csr;
        assert!(matches!(
            c.validate(),
            Err(ConfigError::DimensionOverflow { .. })
        ));
    }

    #[test]
    fn same_seed_same_weights_and_trajectory_in_process() {
        for topology in [
            Topology::Random,
            Topology::Cycle,
            Topology::DelayLine,
            Topology::CycleJumps { jump: 7 },
        ] {
            let config = EsnConfig {
                units: 150,
                inputs: 2,
                outputs: 1,
                topology,
                leak_rate: 0.7,
                seed: 99,
                ..EsnConfig::default()
            };
            let run = || {
                let mut esn = Esn::<f64>::new(&config).unwrap();
                let mut traj = Vec::new();
                for t in 0..300 {
                    let u = [libm::sin(t as f64 * 0.1), libm::cos(t as f64 * 0.37)];
                    let y = [libm::sin(t as f64 * 0.05)];
                    traj.extend(esn.step(&u, Some(&y)).unwrap().iter().map(|v| v.to_bits()));
                }
                traj
            };
            assert_eq!(run(), run(), "{topology:?}");
            let other = EsnConfig {
                seed: 100,
                ..config.clone()
            };
            let a = Esn::<f64>::new(&config).unwrap();
            let b = Esn::<f64>::new(&other).unwrap();
            assert_ne!(a.w_in(), b.w_in());
        }
    }

    #[test]
    fn dense_and_csr_storage_hold_the_same_reservoir() {
        let base = EsnConfig {
            units: 120,
            connectivity: 0.1,
            seed: 5,
            ..EsnConfig::default()
        };
        let dense = Esn::<f64>::new(&EsnConfig {
            format: MatrixFormat::Dense,
            ..base.clone()
        })
        .unwrap();
        let csr = Esn::<f64>::new(&EsnConfig {
            format: MatrixFormat::Csr,
            ..base.clone()
        })
        .unwrap();
        assert_eq!(dense.w().kind(), "dense");
        assert_eq!(csr.w().kind(), "csr");
        assert_eq!(Esn::<f64>::new(&base).unwrap().w().kind(), "csr");
        assert_eq!(dense.w().to_dense(), csr.w().to_dense());
        assert_eq!(csr.w().nnz(), 120 * 12);
        let (mut a, mut b) = (dense, csr);
        for t in 0..200 {
            let u = [libm::sin(t as f64 * 0.2)];
            let xa = a.step(&u, None).unwrap().to_vec();
            let xb = b.step(&u, None).unwrap();
            for (p, q) in xa.iter().zip(xb) {
                assert!((p - q).abs() < 1e-12);
            }
        }
    }

    #[test]
    fn f32_reservoir_computes_in_f32_close_to_f64() {
        let config = EsnConfig {
            units: 80,
            seed: 3,
            ..EsnConfig::default()
        };
        let mut a = Esn::<f32>::new(&config).unwrap();
        let mut b = Esn::<f64>::new(&config).unwrap();
        assert_eq!(a.w_in(), &b.w_in().cast::<f32>());
        let mut max_diff = 0.0f64;
        for t in 0..100 {
            let u = libm::sin(t as f64 * 0.3);
            let xa = a.step(&[u as f32], None).unwrap().to_vec();
            let xb = b.step(&[u], None).unwrap();
            for (p, q) in xa.iter().zip(xb) {
                max_diff = max_diff.max((f64::from(*p) - q).abs());
            }
        }
        assert!(max_diff > 0.0, "f32 path must really round to f32");
        assert!(max_diff < 1e-4, "f32 drifted {max_diff}");
    }

    #[test]
    fn from_parts_rejects_malformed_weights() {
        let config = small_config(Activation::Tanh, 1.0, 0);
        let w = || ReservoirMatrix::Dense(Dense::new(2, 2, vec![0.5, 0.0, 0.1, 0.2]).unwrap());
        let w_in = || Dense::new(2, 1, vec![1.0, -1.0]).unwrap();
        let ok = Esn::<f64>::from_parts(config.clone(), w(), w_in(), None, vec![0.0; 2]);
        assert!(ok.is_ok());
        let bad_len = Dense {
            rows: 2,
            cols: 1,
            data: vec![1.0],
        };
        assert!(matches!(
            Esn::<f64>::from_parts(config.clone(), w(), bad_len, None, vec![0.0; 2]),
            Err(ConfigError::Matrix {
                what: "W_in",
                error: MatrixError::DataLength { .. }
            })
        ));
        let nan_w = ReservoirMatrix::Dense(Dense {
            rows: 2,
            cols: 2,
            data: vec![0.5, f64::NAN, 0.1, 0.2],
        });
        assert!(matches!(
            Esn::<f64>::from_parts(config.clone(), nan_w, w_in(), None, vec![0.0; 2]),
            Err(ConfigError::Matrix {
                what: "W",
                error: MatrixError::NonFinite { row: 0, col: 1 }
            })
        ));
        let bad_csr = ReservoirMatrix::Csr(Csr {
            rows: 2,
            cols: 2,
            indptr: vec![0, 1, 2],
            indices: vec![0, 5],
            values: vec![1.0, 1.0],
        });
        assert!(matches!(
            Esn::<f64>::from_parts(config.clone(), bad_csr, w_in(), None, vec![0.0; 2]),
            Err(ConfigError::Matrix {
                what: "W",
                error: MatrixError::BadColumnIndex { row: 1, col: 5 }
            })
        ));
        assert!(matches!(
            Esn::<f64>::from_parts(config.clone(), w(), w_in(), None, vec![0.0; 3]),
            Err(ConfigError::ShapeMismatch { what: "bias", .. })
        ));
        let fb = Dense::new(2, 1, vec![1.0, 1.0]).unwrap();
        assert!(matches!(
            Esn::<f64>::from_parts(config, w(), w_in(), Some(fb), vec![0.0; 2]),
            Err(ConfigError::ShapeMismatch { what: "W_fb", .. })
        ));
    }

    #[test]
    fn tiny_and_random_configs_never_panic() {
        for units in 1..=4 {
            for topology in [Topology::Random, Topology::Cycle, Topology::DelayLine] {
                let config = EsnConfig {
                    units,
                    topology,
                    ..EsnConfig::default()
                };
                let mut esn = Esn::<f32>::new(&config).unwrap();
                assert!(esn
                    .step(&[1.0], None)
                    .unwrap()
                    .iter()
                    .all(|v| v.is_finite()));
            }
        }
        // Random (also invalid) configurations: either a typed error or a working reservoir.
        let mut rng = Rng::new(2024);
        let pick = |rng: &mut Rng, xs: &[f64]| xs[rng.below(xs.len() as u64) as usize];
        for _ in 0..300 {
            let config = EsnConfig {
                units: rng.below(40) as usize,
                inputs: rng.below(4) as usize,
                outputs: rng.below(3) as usize,
                spectral_radius: pick(&mut rng, &[-1.0, 0.0, 0.5, 1.5, f64::NAN, 1e300]),
                leak_rate: pick(&mut rng, &[0.0, 0.1, 1.0, 2.0, f64::NAN]),
                connectivity: pick(&mut rng, &[0.0, 0.01, 0.3, 1.0, 1.1]),
                input_connectivity: pick(&mut rng, &[0.0, 0.5, 1.0]),
                input_scaling: pick(&mut rng, &[0.0, 1.0, f64::INFINITY]),
                topology: match rng.below(4) {
                    0 => Topology::Random,
                    1 => Topology::Cycle,
                    2 => Topology::DelayLine,
                    _ => Topology::CycleJumps {
                        jump: rng.below(10) as usize,
                    },
                },
                seed: rng.next_u64(),
                ..EsnConfig::default()
            };
            if let Ok(mut esn) = Esn::<f64>::new(&config) {
                let u = vec![0.5; config.inputs];
                let fb = vec![0.1; config.outputs];
                let fb = (config.outputs > 0).then_some(&fb[..]);
                for _ in 0..5 {
                    esn.step(&u, fb).unwrap();
                }
            }
        }
    }

    #[test]
    fn structured_topologies_get_their_radius() {
        let cfg = |topology| EsnConfig {
            units: 50,
            spectral_radius: 0.8,
            topology,
            ..EsnConfig::default()
        };
        let cyc = Esn::<f64>::new(&cfg(Topology::Cycle)).unwrap();
        assert_eq!(
            cyc.w(),
            &ReservoirMatrix::Cycle {
                units: 50,
                weight: 0.8
            }
        );
        let dl = Esn::<f64>::new(&cfg(Topology::DelayLine)).unwrap();
        assert_eq!(spectral::reservoir_spectral_radius(dl.w()).radius, 0.0);
        let cj = Esn::<f64>::new(&cfg(Topology::CycleJumps { jump: 5 })).unwrap();
        let est = spectral::spectral_radius(cj.w());
        assert!(est.converged);
        assert!((est.radius - 0.8).abs() < 1e-8, "{}", est.radius);
        assert_eq!(cj.w().bytes(), 16);
    }

    fn fused_config(units: usize, outputs: usize, kernel: StepKernel) -> EsnConfig {
        EsnConfig {
            units,
            inputs: 2,
            outputs,
            leak_rate: 0.3,
            connectivity: 0.1,
            format: MatrixFormat::Auto,
            seed: 11,
            kernel,
            ..EsnConfig::default()
        }
    }

    fn drive(t: usize) -> ([f32; 2], [f32; 1]) {
        let t = t as f64;
        (
            [libm::sin(t * 0.13) as f32, libm::cos(t * 0.071) as f32],
            [libm::sin(t * 0.05) as f32 * 0.5],
        )
    }

    #[test]
    fn fused_esn_equals_fused_reservoir_stepped_directly() {
        for k in Kernel::available() {
            for (units, format, outputs) in [
                (150, MatrixFormat::Csr, 0),
                (150, MatrixFormat::Csr, 1),
                (40, MatrixFormat::Dense, 1),
            ] {
                let config = EsnConfig {
                    format,
                    ..fused_config(units, outputs, StepKernel::Fused(k.variant()))
                };
                let mut esn = Esn::<f32>::new(&config).unwrap();
                // The same reservoir built by hand from the exact model's weights.
                let exact = Esn::<f32>::new(&EsnConfig {
                    kernel: StepKernel::Exact,
                    ..config.clone()
                })
                .unwrap();
                let weights = match exact.w() {
                    ReservoirMatrix::Csr(c) => OwnedWeights::Csr {
                        indptr: c.indptr.clone(),
                        indices: c.indices.clone(),
                        values: c.values.clone(),
                    },
                    ReservoirMatrix::Dense(d) => OwnedWeights::Dense(d.data.clone()),
                    other => panic!("unexpected {}", other.kind()),
                };
                let mut w_drive = Vec::new();
                for i in 0..units {
                    w_drive.extend_from_slice(&exact.w_in().data[i * 2..i * 2 + 2]);
                    if let Some(fb) = exact.w_fb() {
                        w_drive.push(fb.data[i]);
                    }
                }
                let mut direct = FusedReservoir::new(
                    units,
                    2 + outputs,
                    weights,
                    w_drive,
                    exact.bias().to_vec(),
                    0.3,
                )
                .unwrap();
                for t in 0..300 {
                    let (u, y) = drive(t);
                    let fb = (outputs > 0).then_some(&y[..]);
                    let mut d = u.to_vec();
                    if outputs > 0 {
                        d.push(y[0]);
                    }
                    let want = direct.step(k, &d).unwrap();
                    let got = esn.step(&u, fb).unwrap();
                    assert!(
                        got.iter()
                            .zip(want)
                            .all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{:?} {format:?} outputs {outputs}: differs at step {t}",
                        k.variant()
                    );
                }
                assert_eq!(
                    esn.fused_step_name(),
                    Some(direct.step_kernel_name(k)),
                    "{format:?}"
                );
            }
        }
    }

    /// Largest |fused − exact| over `steps` steps of the same config (f32 both).
    fn fused_vs_exact(config: &EsnConfig, variant: Variant, steps: usize) -> f32 {
        let mut fused = Esn::<f32>::new(&EsnConfig {
            kernel: StepKernel::Fused(variant),
            ..config.clone()
        })
        .unwrap();
        let mut exact = Esn::<f32>::new(config).unwrap();
        let mut worst = 0.0f32;
        for t in 0..steps {
            let (u, y) = drive(t);
            let fb = (config.outputs > 0).then_some(&y[..]);
            let a = fused.step(&u[..config.inputs], fb).unwrap().to_vec();
            let b = exact.step(&u[..config.inputs], fb).unwrap();
            for (p, q) in a.iter().zip(b) {
                worst = worst.max((p - q).abs());
            }
        }
        worst
    }

    /// The fused kernel differs from the exact path only by its rational tanh (≤ 4.2e-7 from
    /// libm's) and f32 summation order, and a contracting reservoir (radius 0.9) does not
    /// amplify that: over 1,000 steps every state stays within 2e-6 of the exact one (measured
    /// here: at most 3.0e-7, a few f32 ulps, on every variant and topology below).
    #[test]
    fn fused_stays_within_2e_6_of_exact_over_1000_steps() {
        for k in Kernel::available() {
            for (units, outputs, topology) in [
                (200, 0, Topology::Random),
                (200, 1, Topology::Random),
                (50, 1, Topology::Random),
                (100, 0, Topology::Cycle),
                (100, 1, Topology::DelayLine),
                (100, 0, Topology::CycleJumps { jump: 7 }),
                (96, 0, Topology::CycleJumps { jump: 8 }),
                (200, 0, Topology::Block { size: 16 }),
                (200, 1, Topology::Block { size: 8 }),
            ] {
                let config = EsnConfig {
                    topology,
                    ..fused_config(units, outputs, StepKernel::Exact)
                };
                let worst = fused_vs_exact(&config, k.variant(), 1000);
                eprintln!(
                    "{:?} {topology:?} N={units} fb={outputs}: {worst:e}",
                    k.variant()
                );
                assert!(
                    worst < 2e-6,
                    "{:?} {topology:?} N={units} fb={outputs}: {worst}",
                    k.variant()
                );
                assert!(worst > 0.0, "the fused path must really run its own tanh");
            }
        }
    }

    #[test]
    fn sparse_fused_kernels_agree_bit_for_bit_across_variants_and_scalar_types() {
        let run = |variant: Variant| {
            let config = fused_config(300, 1, StepKernel::Fused(variant));
            let mut a = Esn::<f32>::new(&config).unwrap();
            let mut b = Esn::<f64>::new(&config).unwrap();
            let mut bits = Vec::new();
            for t in 0..200 {
                let (u, y) = drive(t);
                let xa = a.step(&u, Some(&y)).unwrap();
                let ub = [f64::from(u[0]), f64::from(u[1])];
                let xb = b.step(&ub, Some(&[f64::from(y[0])])).unwrap();
                // An Esn<f64> with a fused kernel holds the f32 results, widened exactly.
                assert!(xa.iter().zip(xb).all(|(p, q)| f64::from(*p) == *q));
                bits.extend(xa.iter().map(|v| v.to_bits()));
            }
            bits
        };
        let reference = run(Variant::Scalar);
        for k in Kernel::available() {
            assert!(run(k.variant()) == reference, "{:?}", k.variant());
        }
    }

    /// A block reservoir's fused kernel is the gather-free block step (not a CSR copy), and that
    /// step gives the same bits on every variant (its documented order).
    #[test]
    fn block_fused_kernel_runs_the_block_step_identically_on_every_variant() {
        let run = |variant: Variant| {
            let config = EsnConfig {
                topology: Topology::Block { size: 16 },
                ..fused_config(200, 1, StepKernel::Fused(variant))
            };
            let mut esn = Esn::<f32>::new(&config).unwrap();
            assert_eq!(
                esn.fused_step_name(),
                Some(match variant {
                    Variant::Scalar => "scalar-block",
                    Variant::Avx2Fma => "avx2-block",
                    Variant::Avx512 => "avx512-block",
                })
            );
            let mut bits = Vec::new();
            for t in 0..200 {
                let (u, y) = drive(t);
                bits.extend(esn.step(&u, Some(&y)).unwrap().iter().map(|v| v.to_bits()));
            }
            bits
        };
        let reference = run(Variant::Scalar);
        for k in Kernel::available() {
            assert!(run(k.variant()) == reference, "{:?}", k.variant());
        }
    }

    /// `run_into` must give the bits of `step` called row by row, on every kernel (exact in f32
    /// and f64, each fused variant), topology kind and with teacher-forced feedback, and leave
    /// the same state behind.
    fn run_into_matches_stepping<T: Scalar>() {
        let mut kernels = vec![StepKernel::Exact];
        kernels.extend(Kernel::available().map(|k| StepKernel::Fused(k.variant())));
        for kernel in kernels {
            for (units, outputs, topology, format) in [
                (120, 0, Topology::Random, MatrixFormat::Csr),
                (120, 1, Topology::Random, MatrixFormat::Csr),
                (40, 1, Topology::Random, MatrixFormat::Dense),
                (100, 0, Topology::Block { size: 16 }, MatrixFormat::Auto),
                (100, 1, Topology::Block { size: 7 }, MatrixFormat::Auto),
                (60, 0, Topology::CycleJumps { jump: 5 }, MatrixFormat::Auto),
            ] {
                let config = EsnConfig {
                    topology,
                    format,
                    ..fused_config(units, outputs, kernel)
                };
                let steps = 57;
                let mut inputs = Vec::new();
                let mut feedback = Vec::new();
                for t in 0..steps {
                    let (u, y) = drive(t);
                    inputs.extend(u.iter().map(|&v| T::from_f64(f64::from(v))));
                    feedback.extend(y.iter().map(|&v| T::from_f64(f64::from(v))));
                }
                let fb = (outputs > 0).then_some(&feedback[..]);
                let mut stepped = Esn::<T>::new(&config).unwrap();
                let mut run = stepped.clone();
                // Start both from a non-zero state so the run continues a trajectory.
                stepped.step(&inputs[..2], fb.map(|y| &y[..1])).unwrap();
                run.step(&inputs[..2], fb.map(|y| &y[..1])).unwrap();
                let mut want = Vec::new();
                for t in 0..steps {
                    let y = fb.map(|y| &y[t..t + 1]);
                    want.extend_from_slice(stepped.step(&inputs[t * 2..t * 2 + 2], y).unwrap());
                }
                let mut got = vec![T::zero(); steps * units];
                run.run_into(&inputs, fb, &mut got).unwrap();
                let what = alloc::format!("{kernel} {topology:?} {format:?} fb {outputs}");
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_f64().to_bits() == b.to_f64().to_bits()),
                    "{what}: states differ"
                );
                assert_eq!(run.state(), stepped.state(), "{what}: final state");
                // Both continue identically (the fused kernel's own state was advanced too).
                let next = stepped
                    .step(&inputs[..2], fb.map(|y| &y[..1]))
                    .unwrap()
                    .to_vec();
                assert_eq!(
                    run.step(&inputs[..2], fb.map(|y| &y[..1])).unwrap(),
                    &next[..],
                    "{what}"
                );
            }
        }
    }

    #[test]
    fn run_into_is_bit_identical_to_stepping_f32() {
        run_into_matches_stepping::<f32>();
    }

    #[test]
    fn run_into_is_bit_identical_to_stepping_f64() {
        run_into_matches_stepping::<f64>();
    }

    #[test]
    fn run_into_checks_everything_before_running() {
        for kernel in [StepKernel::Exact, StepKernel::fast()] {
            let mut esn = Esn::<f64>::new(&fused_config(30, 0, kernel)).unwrap();
            esn.step(&[0.3, 0.1], None).unwrap();
            let before = esn.state().to_vec();
            let mut out = vec![7.0; 3 * 30];
            let inputs = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6];
            assert_eq!(
                esn.run_into(&inputs[..5], None, &mut out[..]),
                Err(StepError::RaggedInputs { len: 5, inputs: 2 })
            );
            assert_eq!(
                esn.run_into(&inputs, None, &mut out[..60]),
                Err(StepError::SequenceLength {
                    what: "states",
                    expected: 90,
                    got: 60
                })
            );
            assert_eq!(
                esn.run_into(&inputs, Some(&[0.0; 3]), &mut out),
                Err(StepError::UnexpectedFeedback)
            );
            let mut bad = inputs;
            bad[5] = f64::NAN;
            let e = esn.run_into(&bad, None, &mut out).unwrap_err();
            assert_eq!(e, StepError::NonFiniteInputAt { step: 2 });
            assert!(e.to_string().contains("step 2"), "{e}");
            // Beyond f32: refused by a fused kernel, fine for the exact f64 path.
            bad[5] = 1e300;
            let got = esn.run_into(&bad, None, &mut out);
            if kernel.is_exact() {
                assert!(got.is_ok());
                esn.set_state(&before).unwrap();
                out.fill(7.0);
            } else {
                assert_eq!(got, Err(StepError::NonFiniteInputAt { step: 2 }));
            }
            // Nothing ran: the state and the output buffer are untouched.
            assert_eq!(esn.state(), &before[..]);
            assert!(out.iter().all(|&v| v == 7.0));
            // An empty run is a no-op.
            esn.run_into(&[], None, &mut []).unwrap();
            assert_eq!(esn.state(), &before[..]);
        }
        let mut fb = Esn::<f32>::new(&fused_config(30, 2, StepKernel::Exact)).unwrap();
        let mut out = vec![0.0; 60];
        assert_eq!(
            fb.run_into(&[0.0; 4], None, &mut out),
            Err(StepError::FeedbackMissing)
        );
        assert_eq!(
            fb.run_into(&[0.0; 4], Some(&[0.0; 3]), &mut out),
            Err(StepError::SequenceLength {
                what: "feedback",
                expected: 4,
                got: 3
            })
        );
    }

    #[test]
    fn fused_state_set_and_reset_reach_the_kernel() {
        let config = fused_config(64, 0, StepKernel::fast());
        let mut a = Esn::<f32>::new(&config).unwrap();
        let mut b = Esn::<f32>::new(&config).unwrap();
        for t in 0..20 {
            a.step(&drive(t).0, None).unwrap();
        }
        let snapshot = a.state().to_vec();
        b.set_state(&snapshot).unwrap();
        for t in 20..40 {
            let xa = a.step(&drive(t).0, None).unwrap().to_vec();
            assert_eq!(xa, b.step(&drive(t).0, None).unwrap());
        }
        a.reset();
        assert!(a.state().iter().all(|&v| v == 0.0));
        let mut fresh = Esn::<f32>::new(&config).unwrap();
        assert_eq!(
            a.step(&drive(0).0, None).unwrap(),
            fresh.step(&drive(0).0, None).unwrap()
        );
        // Step errors are checked before the kernel runs and leave the state alone.
        let before = a.state().to_vec();
        assert_eq!(
            a.step(&[f32::NAN, 0.0], None),
            Err(StepError::NonFiniteInput)
        );
        assert_eq!(
            a.step(&[0.0], None),
            Err(StepError::InputLength {
                expected: 2,
                got: 1
            })
        );
        assert_eq!(a.state(), &before[..]);
        // An f64 input beyond f32's range cannot reach the f32 kernel.
        let mut wide = Esn::<f64>::new(&config).unwrap();
        assert_eq!(
            wide.step(&[1e300, 0.0], None),
            Err(StepError::NonFiniteInput)
        );
        // An f64 state is rounded to the kernel's f32 once, and `state` says so.
        wide.set_state(&[0.1; 64]).unwrap();
        assert_eq!(wide.state()[0], f64::from(0.1f32));
    }

    #[test]
    fn step_kernel_names_and_errors_are_typed() {
        assert_eq!(StepKernel::parse("exact"), Ok(StepKernel::Exact));
        assert_eq!(
            StepKernel::parse("avx2"),
            Ok(StepKernel::Fused(Variant::Avx2Fma))
        );
        assert_eq!(StepKernel::parse("fast"), Ok(StepKernel::fast()));
        assert_eq!(
            StepKernel::fast(),
            StepKernel::Fused(Kernel::best().variant())
        );
        let e = StepKernel::parse("avx9").unwrap_err();
        assert!(e.to_string().contains("\"avx9\""), "{e}");
        // Stored configs name a concrete variant; "fast" would mean different bits elsewhere.
        assert!(StepKernel::try_from(alloc::string::String::from("fast")).is_err());
        for v in Variant::ALL {
            let config = fused_config(30, 0, StepKernel::Fused(v));
            let got = Esn::<f32>::new(&config);
            if v.is_supported() {
                assert!(got.is_ok(), "{v}");
            } else {
                let e = got.unwrap_err();
                assert_eq!(e, ConfigError::KernelUnsupported(v));
                assert!(e.to_string().contains(v.name()));
            }
        }
        for act in [Activation::Sigmoid, Activation::Relu, Activation::Identity] {
            let config = EsnConfig {
                activation: act,
                ..fused_config(30, 0, StepKernel::Fused(Variant::Scalar))
            };
            let e = Esn::<f32>::new(&config).unwrap_err();
            assert!(matches!(e, ConfigError::FusedUnsupported { .. }), "{e:?}");
            assert!(e.to_string().contains("kernel \"exact\""), "{e}");
            // The exact path keeps every activation.
            assert!(Esn::<f32>::new(&EsnConfig {
                kernel: StepKernel::Exact,
                ..config
            })
            .is_ok());
        }
    }
}
