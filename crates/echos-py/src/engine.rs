//! The engine side of `echos.ESN`: a reservoir (`echos_core::esn::Esn<T>`) with its readout,
//! driven over whole series. The per-step work is the engine's (`Esn::step`, `Ridge`, `Rls`,
//! `Lms`, `Linear::predict`); this module only arranges rows and feature vectors. Runs with the
//! GIL released, so it holds no Python objects.

use echos_core::esn::{Activation, ConfigError, Esn, EsnConfig, StepKernel};
use echos_core::model::{self, Generative, ModelError, Trained, TrainingPass};
use echos_core::readout::{Linear, Lms, Ridge, Rls};
use echos_core::scalar::Scalar;
use echos_core::topology::{Topology, WeightDistribution};
use echos_host::array::Array2;
use echos_host::model_file;
use echos_host::training::{self, EsnModel, ReadoutSetup, Solver};
use pyo3::exceptions::{PyMemoryError, PyRuntimeError, PyValueError};
use pyo3::PyResult;

use crate::arrays::Float;

/// The Python-facing hyperparameters, kept by name for `repr` and the model file.
#[derive(Clone, Debug)]
pub struct Settings {
    pub neurons: usize,
    pub spectral_radius: f64,
    pub leak_rate: f64,
    pub input_scaling: f64,
    pub connectivity: f64,
    pub bias: f64,
    pub activation: String,
    pub seed: u64,
    pub input_connectivity: f64,
    pub topology: String,
    pub jump: usize,
    /// Rows per group of the block topology (used when `topology` is "block").
    pub block_size: usize,
    pub distribution: String,
    pub input_to_readout: bool,
    /// Resolved step kernel (`fast` already turned into this CPU's variant).
    pub kernel: StepKernel,
    /// The output is fed back through W_fb (Jaeger's output feedback); the feedback dimension
    /// is the number of target columns of the first `fit`.
    pub feedback: bool,
    /// W_fb ~ U(−1, 1) × feedback_scaling.
    pub feedback_scaling: f64,
}

fn value_error(e: impl std::fmt::Display) -> pyo3::PyErr {
    PyValueError::new_err(e.to_string())
}

pub fn activation_of(name: &str) -> PyResult<Activation> {
    match name {
        "tanh" => Ok(Activation::Tanh),
        "sigmoid" => Ok(Activation::Sigmoid),
        "relu" => Ok(Activation::Relu),
        "identity" => Ok(Activation::Identity),
        other => Err(PyValueError::new_err(format!(
            "activation must be \"tanh\", \"sigmoid\", \"relu\" or \"identity\", got {other:?}"
        ))),
    }
}

pub fn activation_name(a: Activation) -> &'static str {
    match a {
        Activation::Tanh => "tanh",
        Activation::Sigmoid => "sigmoid",
        Activation::Relu => "relu",
        Activation::Identity => "identity",
    }
}

fn distribution_name(d: WeightDistribution) -> &'static str {
    match d {
        WeightDistribution::Normal => "normal",
        WeightDistribution::Uniform => "uniform",
        WeightDistribution::Bernoulli => "bernoulli",
    }
}

/// The Python-facing hyperparameters of a loaded reservoir.
pub fn settings_of(c: &EsnConfig, input_to_readout: bool) -> Settings {
    // Parameters of the other topologies keep their Python defaults (they are unused).
    let (topology, jump, block_size) = match c.topology {
        Topology::Random => ("random", DEFAULT_JUMP, DEFAULT_BLOCK_SIZE),
        Topology::Cycle => ("cycle", DEFAULT_JUMP, DEFAULT_BLOCK_SIZE),
        Topology::DelayLine => ("delay_line", DEFAULT_JUMP, DEFAULT_BLOCK_SIZE),
        Topology::CycleJumps { jump } => ("cycle_jumps", jump, DEFAULT_BLOCK_SIZE),
        Topology::Block { size } => ("block", DEFAULT_JUMP, size),
    };
    Settings {
        neurons: c.units,
        spectral_radius: c.spectral_radius,
        leak_rate: c.leak_rate,
        input_scaling: c.input_scaling,
        connectivity: c.connectivity,
        bias: c.bias_scaling,
        activation: activation_name(c.activation).to_owned(),
        seed: c.seed,
        input_connectivity: c.input_connectivity,
        topology: topology.to_owned(),
        jump,
        block_size,
        distribution: distribution_name(c.distribution).to_owned(),
        input_to_readout,
        kernel: c.kernel,
        feedback: c.outputs > 0,
        feedback_scaling: c.feedback_scaling,
    }
}

fn cast<T: Scalar, U: Scalar>(v: T) -> U {
    U::from_f64(v.to_f64())
}

/// The same reservoir (weights and state) in another float type. f32 → f64 → f32 is exact,
/// which is what lets float32 models travel through the f64 model file unchanged.
fn cast_esn<T: Scalar, U: Scalar>(esn: &Esn<T>) -> RunResult<Esn<U>> {
    let mut out = Esn::from_parts(
        esn.config().clone(),
        esn.w().cast(),
        esn.w_in().cast(),
        esn.w_fb().map(|d| d.cast()),
        esn.bias().iter().map(|&b| cast(b)).collect(),
    )
    .map_err(msg)?;
    let state: Vec<U> = esn.state().iter().map(|&x| cast(x)).collect();
    out.set_state(&state).map_err(msg)?;
    Ok(out)
}

/// Parses model-file bytes (written by `Model::to_model_bytes` or the CLI). Corrupt or foreign
/// files are ValueErrors naming the problem.
pub fn parse_model(bytes: &[u8], origin: &str) -> PyResult<EsnModel> {
    model_file::from_bytes(bytes, std::path::Path::new(origin)).map_err(value_error)
}

/// A parsed model file as a model of float type `T`.
pub fn model_from_file<T: Scalar + Float>(m: &EsnModel) -> PyResult<(Settings, Model<T>)> {
    let settings = settings_of(m.esn().config(), m.setup.input_features);
    let esn = cast_esn::<f64, T>(m.esn()).map_err(PyValueError::new_err)?;
    let mut trained = Trained::new(
        esn,
        m.readout().clone(),
        m.setup.input_features,
        m.setup.generative,
    )
    .map_err(value_error)?;
    let last: Vec<T> = m.last_output().iter().map(|&v| cast(v)).collect();
    let last_input: Vec<T> = m.last_input().iter().map(|&v| cast(v)).collect();
    trained.set_last_output(&last).map_err(value_error)?;
    trained.set_last_input(&last_input).map_err(value_error)?;
    let mut model = Model::from_core(Core::Trained(trained), m.setup.input_features);
    model.fit_setup = Some((m.setup.ridge, m.setup.washout));
    Ok((settings, model))
}

/// `jump` of `ESN(...)` when not given (used by topology "cycle_jumps" only).
pub const DEFAULT_JUMP: usize = 2;
/// `block_size` of `ESN(...)` when not given (used by topology "block" only): one 16-row
/// group fills an AVX-512 register.
pub const DEFAULT_BLOCK_SIZE: usize = echos_core::topology::DEFAULT_BLOCK_SIZE;

fn topology_of(s: &Settings) -> PyResult<Topology> {
    match s.topology.as_str() {
        "random" => Ok(Topology::Random),
        "cycle" => Ok(Topology::Cycle),
        "delay_line" => Ok(Topology::DelayLine),
        "cycle_jumps" => Ok(Topology::CycleJumps { jump: s.jump }),
        "block" => {
            // Checked here so the message uses the Python names (the engine says "group size").
            if s.block_size == 0 || s.block_size > s.neurons {
                return Err(PyValueError::new_err(format!(
                    "block_size must satisfy 1 <= block_size <= neurons ({}), got {}",
                    s.neurons, s.block_size
                )));
            }
            Ok(Topology::Block {
                size: s.block_size,
            })
        }
        other => Err(PyValueError::new_err(format!(
            "topology must be \"random\", \"cycle\", \"delay_line\", \"cycle_jumps\" or \"block\", got {other:?}"
        ))),
    }
}

fn distribution_of(name: &str) -> PyResult<WeightDistribution> {
    match name {
        "normal" => Ok(WeightDistribution::Normal),
        "uniform" => Ok(WeightDistribution::Uniform),
        "bernoulli" => Ok(WeightDistribution::Bernoulli),
        other => Err(PyValueError::new_err(format!(
            "distribution must be \"normal\", \"uniform\" or \"bernoulli\", got {other:?}"
        ))),
    }
}

/// The engine configuration for `inputs` input features and `outputs` fed-back outputs.
pub fn config_of(s: &Settings, inputs: usize, outputs: usize) -> PyResult<EsnConfig> {
    Ok(EsnConfig {
        units: s.neurons,
        inputs,
        outputs,
        feedback_scaling: s.feedback_scaling,
        spectral_radius: s.spectral_radius,
        leak_rate: s.leak_rate,
        input_scaling: s.input_scaling,
        bias_scaling: s.bias,
        connectivity: s.connectivity,
        input_connectivity: s.input_connectivity,
        distribution: distribution_of(&s.distribution)?,
        topology: topology_of(s)?,
        activation: activation_of(&s.activation)?,
        seed: s.seed,
        kernel: s.kernel,
        ..EsnConfig::default()
    })
}

/// Parses `exact`, `fast` (resolved to this CPU's best fused variant), `scalar`, `avx2` or
/// `avx512`.
pub fn kernel_of(name: &str) -> PyResult<StepKernel> {
    StepKernel::parse(name).map_err(value_error)
}

/// Checks every hyperparameter (with a placeholder input count) so a bad one fails at once.
pub fn validate(s: &Settings) -> PyResult<()> {
    config_of(s, 1, usize::from(s.feedback))?
        .validate()
        .map_err(|e: ConfigError| value_error(e))
}

/// The machine's memory in bytes (MemTotal), or 8 GiB when it cannot be read.
fn memory_total() -> f64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map(|kb| kb * 1024.0)
        .unwrap_or(8.0 * 1024.0 * 1024.0 * 1024.0)
}

/// An allocation the engine would make but the machine cannot hold would abort the process
/// (Rust cannot report a failed allocation as an error), so refuse it up front as MemoryError.
pub fn check_memory(bytes: f64, what: &str) -> PyResult<()> {
    let limit = memory_total() / 2.0;
    if bytes <= limit {
        Ok(())
    } else {
        Err(PyMemoryError::new_err(format!(
            "{what} would need about {:.1} GiB, more than half of this machine's {:.1} GiB",
            bytes / f64::from(1u32 << 30),
            2.0 * limit / f64::from(1u32 << 30)
        )))
    }
}

/// Peak bytes of building a reservoir (weights are generated in f64, then converted).
fn reservoir_bytes(s: &Settings, inputs: usize) -> f64 {
    let n = s.neurons as f64;
    let dense = s.topology == "random"
        && (s.neurons <= echos_core::topology::DENSE_MAX_UNITS
            || s.connectivity >= echos_core::topology::DENSE_MIN_CONNECTIVITY);
    let per_row = echos_core::topology::nonzeros_per_row(s.neurons, s.connectivity) as f64;
    let w = if s.topology == "block" {
        // f64 values padded to whole groups, one u32 column per group and nonzero slot.
        let padded = (s.neurons.div_ceil(s.block_size.max(1)) * s.block_size.max(1)) as f64;
        padded * per_row * 8.0 + n * per_row * 4.0
    } else if s.topology != "random" {
        n * 16.0
    } else if dense {
        n * n * 8.0
    } else {
        n * per_row * 12.0
    };
    // A fused kernel adds its f32 copy of W (CSR and its SELL-16 layout, or dense).
    let fused = match s.kernel {
        StepKernel::Exact => 0.0,
        StepKernel::Fused(_) if dense => n * n * 4.0,
        StepKernel::Fused(_) => w / 12.0 * 16.0,
    };
    2.0 * (w + n * inputs as f64 * 8.0) + fused
}

/// Which online readout `fit_online` trains.
#[derive(Clone, Copy, Debug)]
pub enum OnlineKind {
    Rls { forgetting: f64, delta: f64 },
    Lms { learning_rate: f64 },
}

enum Online {
    Rls(Rls),
    Lms(Lms),
}

impl Online {
    fn readout(&self) -> &Linear {
        match self {
            Online::Rls(r) => r.readout(),
            Online::Lms(l) => l.readout(),
        }
    }
}

/// The reservoir before its first fit, or the engine's model driver after it.
pub enum Core<T> {
    /// No readout yet: the reservoir alone, and the last input it saw.
    Reservoir(Esn<T>),
    /// Reservoir and readout: every run goes through the driver.
    Trained(Trained<T>),
}

impl<T: Scalar> Core<T> {
    fn esn(&self) -> &Esn<T> {
        match self {
            Core::Reservoir(e) => e,
            Core::Trained(t) => t.esn(),
        }
    }
    fn esn_mut(&mut self) -> &mut Esn<T> {
        match self {
            Core::Reservoir(e) => e,
            Core::Trained(t) => t.esn_mut(),
        }
    }
}

/// A reservoir and, once trained, its readout: the Python side of the engine's one model
/// driver (`echos_core::model::Trained`), plus the online readouts being trained.
pub struct Model<T> {
    /// `None` only while `fit` moves the reservoir into a new driver.
    core: Option<Core<T>>,
    input_to_readout: bool,
    online: Option<Online>,
    /// Ridge parameter and washout of the last `fit`, recorded in the model file.
    fit_setup: Option<(f64, usize)>,
    /// The reservoir waits for `fit` to learn its feedback dimension (feedback ESNs).
    pending_feedback: bool,
}

/// Errors of a run, reported to Python as ValueError (the arguments were checked before).
pub type RunResult<R> = Result<R, String>;

fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

const NOT_FITTED: &str = "no readout: call fit() first";

/// How generation feeds a model trained on `outputs` outputs back.
fn generative_of<T: Scalar>(esn: &Esn<T>, outputs: usize) -> Generative {
    if esn.outputs() > 0 {
        Generative::Feedback
    } else if esn.inputs() == outputs {
        Generative::Input
    } else {
        Generative::None
    }
}

impl<T: Scalar + Float> Model<T> {
    /// A reservoir for `inputs` input features. A feedback ESN is built at its first `fit`,
    /// when the number of outputs is known: until then it holds a reservoir without W_fb
    /// whose only use is to answer questions about its size.
    pub fn new(settings: &Settings, inputs: usize) -> PyResult<Self> {
        let config = config_of(settings, inputs, 0)?;
        config.validate().map_err(value_error)?;
        check_memory(reservoir_bytes(settings, inputs), "this reservoir")?;
        let esn = Esn::new(&config).map_err(value_error)?;
        let mut model = Self::from_core(Core::Reservoir(esn), settings.input_to_readout);
        model.pending_feedback = settings.feedback;
        Ok(model)
    }

    pub fn from_core(core: Core<T>, input_to_readout: bool) -> Self {
        Model {
            core: Some(core),
            input_to_readout,
            online: None,
            fit_setup: None,
            pending_feedback: false,
        }
    }

    fn core(&self) -> &Core<T> {
        self.core
            .as_ref()
            .expect("model core is present outside fit")
    }
    fn core_mut(&mut self) -> &mut Core<T> {
        self.core
            .as_mut()
            .expect("model core is present outside fit")
    }
    fn esn(&self) -> &Esn<T> {
        self.core().esn()
    }
    fn trained(&mut self) -> RunResult<&mut Trained<T>> {
        match self.core_mut() {
            Core::Trained(t) => Ok(t),
            Core::Reservoir(_) => Err(NOT_FITTED.into()),
        }
    }

    pub fn inputs(&self) -> usize {
        self.esn().inputs()
    }

    /// The model file's bytes (f64 tensors; see docs/model-format.md). Needs a readout.
    pub fn to_model_bytes(&self) -> PyResult<Vec<u8>> {
        let Core::Trained(t) = self.core() else {
            return Err(PyRuntimeError::new_err(
                "this ESN has no readout yet: call fit() before saving it",
            ));
        };
        let esn = cast_esn::<T, f64>(t.esn()).map_err(PyValueError::new_err)?;
        let (ridge, washout) = self.fit_setup.unwrap_or((0.0, 0));
        let setup = ReadoutSetup {
            ridge,
            washout,
            input_features: self.input_to_readout,
            generative: t.generative(),
            // `fit` uses the engine's Ridge (normal equations by Cholesky).
            solver: Solver::NormalEquations,
        };
        let last: Vec<f64> = t.last_output().iter().map(|&v| cast(v)).collect();
        let last_input: Vec<f64> = t.last_input().iter().map(|&v| cast(v)).collect();
        let model = EsnModel::from_parts(esn, t.readout().clone(), setup, last, last_input)
            .map_err(value_error)?;
        model_file::to_bytes(&model).map_err(value_error)
    }

    pub fn units(&self) -> usize {
        self.esn().units()
    }

    pub fn outputs(&self) -> Option<usize> {
        match self.core() {
            Core::Trained(t) => Some(t.outputs()),
            Core::Reservoir(_) => None,
        }
    }

    /// Bytes of a readout solver's (1 + features)² matrix (ridge XᵀX, RLS's P) and XᵀY.
    pub fn solver_bytes(&self, outputs: usize) -> f64 {
        let d = model::feature_dim(self.esn(), self.input_to_readout) as f64 + 1.0;
        8.0 * d * (d + outputs as f64)
    }

    pub fn state(&self) -> &[T] {
        self.esn().state()
    }

    pub fn set_state(&mut self, x: &[T]) -> RunResult<()> {
        self.core_mut().esn_mut().set_state(x).map_err(msg)
    }

    /// Zero state and zero last output.
    pub fn reset(&mut self) {
        match self.core_mut() {
            Core::Reservoir(e) => e.reset(),
            Core::Trained(t) => {
                t.esn_mut().reset();
                let zeros = vec![T::zero(); t.outputs()];
                // Cannot fail: the length is the model's own and zero is finite.
                let _ = t.set_last_output(&zeros);
            }
        }
    }

    pub fn readout_weights(&self) -> Option<(Vec<f64>, usize, usize)> {
        match self.core() {
            Core::Trained(t) => {
                let r = &t.readout().weights;
                Some((r.data.clone(), r.rows, r.cols))
            }
            Core::Reservoir(_) => None,
        }
    }

    /// Whether the reservoir runs without the readout's output (no output feedback), so its
    /// states can be computed for a whole sequence at once (`update_into`).
    pub fn is_open_loop(&self) -> bool {
        self.esn().outputs() == 0 && !self.pending_feedback
    }

    /// All states of a run over `x` (rows × inputs), row-major rows × units. A reservoir with
    /// output feedback runs its readout too: ŷ(t−1) is the next step's feedback.
    pub fn update(&mut self, x: &[T], rows: usize) -> RunResult<Vec<T>> {
        let n = self.units();
        if self.is_open_loop() {
            let mut out = vec![T::zero(); rows * n];
            self.update_into(x, &mut out)?;
            return Ok(out);
        }
        let t = self.trained().map_err(|_| {
            "this reservoir has output feedback, so it needs a trained readout to run: call fit() first"
                .to_owned()
        })?;
        let (ni, no) = (t.inputs(), t.outputs());
        let mut out = Vec::with_capacity(rows * n);
        let mut y = vec![T::zero(); no];
        let mut prev = t.last_output().to_vec();
        for u in x.chunks_exact(ni) {
            t.step(u, Some(&prev), &mut y).map_err(msg)?;
            prev.copy_from_slice(&y);
            out.extend_from_slice(t.esn().state());
        }
        Ok(out)
    }

    /// The states of an open-loop run over `x` into `out` (rows × units): one engine call for
    /// the whole sequence, checked once (`Esn::run_into`).
    pub fn update_into(&mut self, x: &[T], out: &mut [T]) -> RunResult<()> {
        match self.core_mut() {
            Core::Reservoir(e) => e.run_into(x, None, out).map_err(msg),
            Core::Trained(t) => {
                t.esn_mut().run_into(x, None, out).map_err(msg)?;
                let ni = t.inputs();
                if x.len() >= ni {
                    t.set_last_input(&x[x.len() - ni..]).map_err(msg)?;
                }
                Ok(())
            }
        }
    }

    /// The reservoir, out of whatever holds it, ready for a new driver; a feedback ESN that
    /// has waited for its output dimension is built now with `outputs` feedback columns.
    fn take_esn(&mut self, settings: Option<&Settings>, outputs: usize) -> RunResult<Esn<T>> {
        let fb = self.esn().outputs();
        if fb > 0 && fb != outputs {
            return Err(format!(
                "y has {outputs} columns but this reservoir feeds back {fb} outputs"
            ));
        }
        if self.pending_feedback {
            let s = settings.ok_or("feedback reservoir settings missing")?;
            let config = config_of(s, self.inputs(), outputs).map_err(|e| e.to_string())?;
            let esn = Esn::new(&config).map_err(msg)?;
            self.core = Some(Core::Reservoir(esn));
            self.pending_feedback = false;
        }
        Ok(match self.core.take().ok_or("model core missing")? {
            Core::Reservoir(e) => e,
            Core::Trained(t) => t.into_parts().0,
        })
    }

    /// Ridge readout on the states of one teacher-forced pass (see `PyEsn::fit`).
    pub fn fit(
        &mut self,
        settings: &Settings,
        x: &[T],
        y: &[T],
        outputs: usize,
        washout: usize,
        ridge: f64,
    ) -> RunResult<()> {
        let mut esn = self.take_esn(Some(settings), outputs)?;
        let pass = TrainingPass {
            washout,
            input_features: self.input_to_readout,
            ..TrainingPass::default()
        };
        let generative = generative_of(&esn, outputs);
        let result = Ridge::new(
            model::feature_dim(&esn, pass.input_features),
            outputs,
            ridge,
        )
        .map_err(msg)
        .and_then(|mut solver| {
            model::teacher_forced_pass(&mut esn, x, y, &pass, |z, t| {
                solver.accumulate(z, t).map_err(ModelError::from)
            })
            .map_err(msg)?;
            solver.fit().map_err(msg)
        });
        self.install(esn, result, generative, x, y)?;
        self.online = None;
        self.fit_setup = Some((ridge, washout));
        Ok(())
    }

    /// Puts `esn` back with the readout `result` produced (or as a bare reservoir when it
    /// failed, so a failed fit leaves a usable reservoir), remembering the series' end.
    fn install(
        &mut self,
        esn: Esn<T>,
        result: RunResult<Linear>,
        generative: Generative,
        x: &[T],
        y: &[T],
    ) -> RunResult<()> {
        let readout = match result {
            Ok(r) => r,
            Err(e) => {
                self.core = Some(Core::Reservoir(esn));
                return Err(e);
            }
        };
        let mut t = Trained::new(esn, readout, self.input_to_readout, generative).map_err(msg)?;
        t.remember_series_end(x, y).map_err(msg)?;
        self.core = Some(Core::Trained(t));
        Ok(())
    }

    /// Online readout training; returns the a-priori predictions (before each update).
    pub fn fit_online(
        &mut self,
        settings: &Settings,
        x: &[T],
        y: &[T],
        outputs: usize,
        kind: OnlineKind,
        washout: usize,
    ) -> RunResult<Vec<T>> {
        let reuse = matches!(
            (&self.online, kind),
            (Some(Online::Rls(r)), OnlineKind::Rls { forgetting, .. })
                if r.forgetting == forgetting && r.readout().outputs() == outputs
        ) || matches!(
            (&self.online, kind),
            (Some(Online::Lms(l)), OnlineKind::Lms { learning_rate })
                if l.learning_rate == learning_rate && l.readout().outputs() == outputs
        );
        let mut esn = self.take_esn(Some(settings), outputs)?;
        let dim = model::feature_dim(&esn, self.input_to_readout);
        if !reuse {
            let fresh = match kind {
                OnlineKind::Rls { forgetting, delta } => {
                    Rls::new(dim, outputs, forgetting, delta).map(Online::Rls)
                }
                OnlineKind::Lms { learning_rate } => {
                    Lms::new(dim, outputs, learning_rate).map(Online::Lms)
                }
            };
            match fresh {
                Ok(o) => self.online = Some(o),
                Err(e) => {
                    self.core = Some(Core::Reservoir(esn));
                    return Err(msg(e));
                }
            }
        }
        let mut online = self.online.take().ok_or("online readout missing")?;
        let steps = x.len() / esn.inputs().max(1);
        let mut pred = vec![T::zero(); steps * outputs];
        let pass = TrainingPass {
            washout: 0,
            input_features: self.input_to_readout,
            ..TrainingPass::default()
        };
        let generative = generative_of(&esn, outputs);
        let mut t = 0usize;
        let result = model::teacher_forced_pass(&mut esn, x, y, &pass, |z, target| {
            online
                .readout()
                .predict(z, &mut pred[t * outputs..(t + 1) * outputs])?;
            if t >= washout {
                match &mut online {
                    Online::Rls(r) => r.update(z, target)?,
                    Online::Lms(l) => l.update(z, target)?,
                }
            }
            t += 1;
            Ok::<(), ModelError>(())
        })
        .map(|_| online.readout().clone())
        .map_err(msg);
        self.online = Some(online);
        self.install(esn, result, generative, x, y)?;
        Ok(pred)
    }

    /// Readout outputs of a run driven by `x`, row-major rows × outputs (a feedback model is
    /// fed its own previous prediction).
    pub fn predict(&mut self, x: &[T], rows: usize) -> RunResult<Vec<T>> {
        let t = self.trained()?;
        let mut out = vec![T::zero(); rows * t.outputs()];
        t.run(x, None, &mut out).map_err(msg)?;
        Ok(out)
    }

    /// Closed loop from the current state, as the model was trained: a model whose outputs
    /// are its inputs feeds each output back as the next input; a feedback model feeds it back
    /// through W_fb with the input held at the last one seen. `first` replaces the last output
    /// the loop starts from.
    pub fn generate(&mut self, steps: usize, first: Option<&[T]>) -> RunResult<Vec<T>> {
        let t = self.trained()?;
        if t.generative() == Generative::None {
            return Err(format!(
                "a closed loop feeds each output back as the next input or through feedback weights; this ESN has {} inputs and {} outputs and no output feedback (build it with feedback=True, or fit it to predict its own input)",
                t.inputs(),
                t.outputs()
            ));
        }
        if let Some(f) = first {
            t.set_last_output(f).map_err(msg)?;
        }
        let mut out = vec![T::zero(); steps * t.outputs()];
        t.generate(&mut out).map_err(msg)?;
        Ok(out)
    }
}

impl Model<f64> {
    /// Ridge readout solved by Householder QR (echos-host's `training::fit` with
    /// `Solver::Qr`): accurate for tiny ridge parameters where the normal equations lose
    /// digits. It keeps every state of the run in memory and copies the inputs once.
    pub fn fit_qr(
        &mut self,
        settings: &Settings,
        x: &[f64],
        y: &[f64],
        outputs: usize,
        washout: usize,
        ridge: f64,
    ) -> RunResult<()> {
        let rows = x.len() / self.inputs();
        let input = Array2::new(rows, self.inputs(), x.to_vec()).map_err(msg)?;
        let target = Array2::new(rows, outputs, y.to_vec()).map_err(msg)?;
        let esn = self.take_esn(Some(settings), outputs)?;
        let setup = ReadoutSetup {
            ridge,
            washout,
            input_features: self.input_to_readout,
            generative: generative_of(&esn, outputs),
            solver: Solver::Qr,
        };
        let keep = esn.clone();
        match training::fit(esn, setup, &input, &target, 0.0, 0) {
            Ok(trained) => {
                self.core = Some(Core::Trained(trained.driver().clone()));
                self.online = None;
                self.fit_setup = Some((ridge, washout));
                Ok(())
            }
            Err(e) => {
                self.core = Some(Core::Reservoir(keep));
                Err(msg(e))
            }
        }
    }
}
