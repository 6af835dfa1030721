//! What defines an ESN and what can go wrong: the configuration (with its validation), the
//! activation, the step kernel, and the configuration and step errors.

use core::fmt;

use crate::kernels::{Kernel, KernelError, Variant};
use crate::matrix::MatrixError;
use crate::scalar::Scalar;
use crate::topology::{self, BlockError, MatrixFormat, Topology, WeightDistribution};

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
