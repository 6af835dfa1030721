//! The engine side of `echos.ESN`: a reservoir (`echos_core::esn::Esn<T>`) with its readout,
//! driven over whole series. The per-step work is the engine's (`Esn::step`, `Ridge`, `Rls`,
//! `Lms`, `Linear::predict`); this module only arranges rows and feature vectors. Runs with the
//! GIL released, so it holds no Python objects.

use echos_core::esn::{Activation, ConfigError, Esn, EsnConfig, StepKernel};
use echos_core::readout::{Linear, Lms, ReadoutError, Ridge, Rls};
use echos_core::scalar::Scalar;
use echos_core::topology::{ReservoirMatrix, Topology, WeightDistribution};
use echos_host::array::Array2;
use echos_host::model_file;
use echos_host::training::{self, EsnModel, Generative, ReadoutSetup, Solver};
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
    }
}

fn cast<T: Scalar, U: Scalar>(v: T) -> U {
    U::from_f64(v.to_f64())
}

fn cast_matrix<T: Scalar, U: Scalar>(w: &ReservoirMatrix<T>) -> ReservoirMatrix<U> {
    match w {
        ReservoirMatrix::Dense(d) => ReservoirMatrix::Dense(d.cast()),
        ReservoirMatrix::Csr(c) => ReservoirMatrix::Csr(c.cast()),
        ReservoirMatrix::Cycle { units, weight } => ReservoirMatrix::Cycle {
            units: *units,
            weight: cast(*weight),
        },
        ReservoirMatrix::DelayLine { units, weight } => ReservoirMatrix::DelayLine {
            units: *units,
            weight: cast(*weight),
        },
        ReservoirMatrix::CycleJumps {
            units,
            cycle_weight,
            jump_weight,
            jump,
        } => ReservoirMatrix::CycleJumps {
            units: *units,
            cycle_weight: cast(*cycle_weight),
            jump_weight: cast(*jump_weight),
            jump: *jump,
        },
        ReservoirMatrix::Block(b) => ReservoirMatrix::Block(b.cast()),
    }
}

/// The same reservoir (weights and state) in another float type. f32 → f64 → f32 is exact,
/// which is what lets float32 models travel through the f64 model file unchanged.
fn cast_esn<T: Scalar, U: Scalar>(esn: &Esn<T>) -> RunResult<Esn<U>> {
    let mut out = Esn::from_parts(
        esn.config().clone(),
        cast_matrix(esn.w()),
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
    let settings = settings_of(m.esn.config(), m.setup.input_features);
    let esn = cast_esn::<f64, T>(&m.esn).map_err(PyValueError::new_err)?;
    let last: Vec<T> = m.last_output.iter().map(|&v| cast(v)).collect();
    let mut model = Model::from_parts(esn, Some(m.readout.clone()), m.setup.input_features, last);
    model.fit_setup = Some((m.setup.ridge, m.setup.washout));
    model.last_input = m.last_input.iter().map(|&v| cast(v)).collect();
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

/// The engine configuration for `inputs` input features.
pub fn config_of(s: &Settings, inputs: usize) -> PyResult<EsnConfig> {
    Ok(EsnConfig {
        units: s.neurons,
        inputs,
        outputs: 0,
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
    config_of(s, 1)?
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

/// A reservoir, its readout (once trained) and the last output it produced.
pub struct Model<T> {
    esn: Esn<T>,
    readout: Option<Linear>,
    input_to_readout: bool,
    /// ŷ(t−1): the next closed-loop input, and the feedback of reservoirs that have it.
    last_output: Vec<T>,
    online: Option<Online>,
    /// Readout features [u, x] or [x] of the current step, sized once.
    features: Vec<T>,
    /// Ridge parameter and washout of the last `fit`, recorded in the model file.
    fit_setup: Option<(f64, usize)>,
    /// The last input seen (the model file keeps it: the constant input of closed-loop
    /// generation through output feedback).
    last_input: Vec<T>,
}

fn fill_features<T: Copy>(input_to_readout: bool, u: &[T], x: &[T], z: &mut Vec<T>) {
    z.clear();
    if input_to_readout {
        z.extend_from_slice(u);
    }
    z.extend_from_slice(x);
}

/// Copies `u` into `last` (sized on first use, so the step itself does not allocate).
fn remember<T: Copy>(last: &mut Vec<T>, u: &[T]) {
    if last.len() == u.len() {
        last.copy_from_slice(u);
    } else {
        *last = u.to_vec();
    }
}

/// Steps per engine call of an open-loop `predict` and of the teacher-forced runs of `fit` and
/// `fit_online` (their states buffer: 256 × units values).
const PREDICT_CHUNK_STEPS: usize = 256;

/// Errors of a run, reported to Python as ValueError (the arguments were checked before).
pub type RunResult<R> = Result<R, String>;

fn msg(e: impl std::fmt::Display) -> String {
    e.to_string()
}

impl<T: Scalar + Float> Model<T> {
    pub fn new(settings: &Settings, inputs: usize) -> PyResult<Self> {
        let config = config_of(settings, inputs)?;
        config.validate().map_err(value_error)?;
        check_memory(reservoir_bytes(settings, inputs), "this reservoir")?;
        let esn = Esn::new(&config).map_err(value_error)?;
        Ok(Self::from_parts(
            esn,
            None,
            settings.input_to_readout,
            Vec::new(),
        ))
    }

    pub fn from_parts(
        esn: Esn<T>,
        readout: Option<Linear>,
        input_to_readout: bool,
        last_output: Vec<T>,
    ) -> Self {
        let dim = esn.units() + if input_to_readout { esn.inputs() } else { 0 };
        Model {
            esn,
            readout,
            input_to_readout,
            last_output,
            online: None,
            features: Vec::with_capacity(dim),
            fit_setup: None,
            last_input: Vec::new(),
        }
    }

    pub fn inputs(&self) -> usize {
        self.esn.inputs()
    }

    /// The model file's bytes (f64 tensors; see docs/model-format.md). Needs a readout.
    pub fn to_model_bytes(&self) -> PyResult<Vec<u8>> {
        let readout = self.readout.clone().ok_or_else(|| {
            PyRuntimeError::new_err("this ESN has no readout yet: call fit() before saving it")
        })?;
        let esn = cast_esn::<T, f64>(&self.esn).map_err(PyValueError::new_err)?;
        let generative = if esn.outputs() > 0 {
            Generative::Feedback
        } else if esn.inputs() == readout.outputs() {
            Generative::Input
        } else {
            Generative::None
        };
        let (ridge, washout) = self.fit_setup.unwrap_or((0.0, 0));
        let setup = ReadoutSetup {
            ridge,
            washout,
            input_features: self.input_to_readout,
            generative,
            // `fit` uses the engine's Ridge (normal equations by Cholesky).
            solver: Solver::NormalEquations,
        };
        let mut last: Vec<f64> = self.last_output.iter().map(|&v| cast(v)).collect();
        last.resize(readout.outputs(), 0.0);
        let mut last_input: Vec<f64> = self.last_input.iter().map(|&v| cast(v)).collect();
        last_input.resize(esn.inputs(), 0.0);
        let model =
            EsnModel::from_parts(esn, readout, setup, last, last_input).map_err(value_error)?;
        model_file::to_bytes(&model).map_err(value_error)
    }

    pub fn units(&self) -> usize {
        self.esn.units()
    }

    pub fn outputs(&self) -> Option<usize> {
        self.readout.as_ref().map(Linear::outputs)
    }

    /// Bytes of a readout solver's (1 + features)² matrix (ridge XᵀX, RLS's P) and XᵀY.
    pub fn solver_bytes(&self, outputs: usize) -> f64 {
        let d = self.feature_dim() as f64 + 1.0;
        8.0 * d * (d + outputs as f64)
    }

    fn feature_dim(&self) -> usize {
        self.units()
            + if self.input_to_readout {
                self.inputs()
            } else {
                0
            }
    }

    pub fn state(&self) -> &[T] {
        self.esn.state()
    }

    pub fn set_state(&mut self, x: &[T]) -> RunResult<()> {
        self.esn.set_state(x).map_err(msg)
    }

    pub fn reset(&mut self) {
        self.esn.reset();
        self.last_output.fill(T::zero());
    }

    pub fn readout_weights(&self) -> Option<(Vec<f64>, usize, usize)> {
        self.readout
            .as_ref()
            .map(|r| (r.weights.data.clone(), r.weights.rows, r.weights.cols))
    }

    /// One step from input `u`; with a readout, ŷ goes to `y` and becomes `last_output`.
    fn step_once(&mut self, u: &[T], y: Option<&mut [T]>) -> RunResult<()> {
        let fb = if self.esn.outputs() > 0 {
            Some(&self.last_output[..])
        } else {
            None
        };
        let x = self.esn.step(u, fb).map_err(msg)?;
        remember(&mut self.last_input, u);
        if let (Some(r), Some(y)) = (&self.readout, y) {
            fill_features(self.input_to_readout, u, x, &mut self.features);
            r.predict(&self.features, y).map_err(msg)?;
            self.last_output.copy_from_slice(y);
        }
        Ok(())
    }

    /// All states of a run over `x` (rows × inputs), row-major rows × units.
    pub fn update(&mut self, x: &[T], rows: usize) -> RunResult<Vec<T>> {
        let (ni, n) = (self.inputs(), self.units());
        if self.is_open_loop() {
            let mut out = vec![T::zero(); rows * n];
            self.update_into(x, &mut out)?;
            return Ok(out);
        }
        let mut out = Vec::with_capacity(rows * n);
        // Reservoirs with output feedback need ŷ every step, so they run their readout too.
        let mut y = vec![T::zero(); self.outputs().unwrap_or(0)];
        if self.esn.outputs() > 0 && self.readout.is_none() {
            return Err("this reservoir has output feedback, so it needs a trained readout to run: call fit() first".into());
        }
        for u in x.chunks_exact(ni) {
            let feedback_run = self.esn.outputs() > 0;
            self.step_once(u, if feedback_run { Some(&mut y) } else { None })?;
            out.extend_from_slice(self.esn.state());
        }
        Ok(out)
    }

    /// Whether the reservoir runs without the readout's output (no output feedback), so its
    /// states can be computed for a whole sequence at once (`update_into`).
    pub fn is_open_loop(&self) -> bool {
        self.esn.outputs() == 0
    }

    /// The states of an open-loop run over `x` into `out` (rows × units): one engine call for
    /// the whole sequence, checked once (`Esn::run_into`).
    pub fn update_into(&mut self, x: &[T], out: &mut [T]) -> RunResult<()> {
        self.esn.run_into(x, None, out).map_err(msg)?;
        let ni = self.inputs();
        if x.len() >= ni {
            remember(&mut self.last_input, &x[x.len() - ni..]);
        }
        Ok(())
    }

    /// Ridge readout on the states of a teacher-forced run (see `PyEsn::fit`).
    pub fn fit(
        &mut self,
        x: &[T],
        y: &[T],
        outputs: usize,
        washout: usize,
        ridge: f64,
    ) -> RunResult<()> {
        let mut solver = Ridge::new(self.feature_dim(), outputs, ridge).map_err(msg)?;
        self.teacher_forced(x, y, outputs, |t, z, target| {
            if t >= washout {
                solver.accumulate(z, target)?;
            }
            Ok(())
        })?;
        self.readout = Some(solver.fit().map_err(msg)?);
        self.online = None;
        self.fit_setup = Some((ridge, washout));
        Ok(())
    }

    /// Runs over `x` with the targets `y` as feedback (one step behind) and hands each step's
    /// readout features and target to `visit`; leaves `last_output` at the last target.
    fn teacher_forced(
        &mut self,
        x: &[T],
        y: &[T],
        outputs: usize,
        mut visit: impl FnMut(usize, &[T], &[T]) -> Result<(), ReadoutError>,
    ) -> RunResult<()> {
        let ni = self.inputs();
        let fb_dim = self.esn.outputs();
        if fb_dim > 0 && fb_dim != outputs {
            return Err(format!(
                "y has {outputs} columns but this reservoir feeds back {fb_dim} outputs"
            ));
        }
        if self.last_output.len() != outputs {
            self.last_output = vec![T::zero(); outputs];
        }
        // The states do not depend on the readout (the feedback is the target), so the
        // reservoir runs chunks of the sequence per engine call; step t's feedback is
        // target(t−1), and the first step's is the previous call's last target.
        let (n, rows) = (self.units(), x.len() / ni);
        let chunk = PREDICT_CHUNK_STEPS.min(rows.max(1));
        let mut states = vec![T::zero(); chunk * n];
        let mut feedback = vec![T::zero(); chunk * fb_dim];
        for first in (0..rows).step_by(chunk) {
            let len = chunk.min(rows - first);
            let xs = &x[first * ni..(first + len) * ni];
            let ys = &y[first * outputs..(first + len) * outputs];
            let fb = if fb_dim > 0 {
                let fb = &mut feedback[..len * fb_dim];
                fb[..fb_dim].copy_from_slice(&self.last_output);
                fb[fb_dim..].copy_from_slice(&ys[..(len - 1) * outputs]);
                Some(&fb[..])
            } else {
                None
            };
            let states = &mut states[..len * n];
            self.esn.run_into(xs, fb, states).map_err(msg)?;
            for (k, ((u, state), target)) in xs
                .chunks_exact(ni)
                .zip(states.chunks_exact(n))
                .zip(ys.chunks_exact(outputs))
                .enumerate()
            {
                fill_features(self.input_to_readout, u, state, &mut self.features);
                visit(first + k, &self.features, target).map_err(msg)?;
            }
            remember(&mut self.last_input, &xs[(len - 1) * ni..]);
            self.last_output.copy_from_slice(&ys[(len - 1) * outputs..]);
        }
        Ok(())
    }

    /// Online readout training; returns the a-priori predictions (before each update).
    pub fn fit_online(
        &mut self,
        x: &[T],
        y: &[T],
        outputs: usize,
        kind: OnlineKind,
        washout: usize,
    ) -> RunResult<Vec<T>> {
        let dim = self.feature_dim();
        let reuse = matches!(
            (&self.online, kind),
            (Some(Online::Rls(r)), OnlineKind::Rls { forgetting, .. })
                if r.forgetting == forgetting && r.readout().outputs() == outputs
        ) || matches!(
            (&self.online, kind),
            (Some(Online::Lms(l)), OnlineKind::Lms { learning_rate })
                if l.learning_rate == learning_rate && l.readout().outputs() == outputs
        );
        if !reuse {
            self.online = Some(match kind {
                OnlineKind::Rls { forgetting, delta } => {
                    Online::Rls(Rls::new(dim, outputs, forgetting, delta).map_err(msg)?)
                }
                OnlineKind::Lms { learning_rate } => {
                    Online::Lms(Lms::new(dim, outputs, learning_rate).map_err(msg)?)
                }
            });
        }
        let mut online = self.online.take().ok_or("online readout missing")?;
        let mut pred = vec![T::zero(); x.len() / self.inputs() * outputs];
        let result = self.teacher_forced(x, y, outputs, |t, z, target| {
            online
                .readout()
                .predict(z, &mut pred[t * outputs..(t + 1) * outputs])?;
            if t >= washout {
                match &mut online {
                    Online::Rls(r) => r.update(z, target)?,
                    Online::Lms(l) => l.update(z, target)?,
                }
            }
            Ok(())
        });
        self.readout = Some(online.readout().clone());
        self.online = Some(online);
        result.map(|_| pred)
    }

    /// Readout outputs of a run driven by `x`, row-major rows × outputs.
    pub fn predict(&mut self, x: &[T], rows: usize) -> RunResult<Vec<T>> {
        let no = self.outputs().ok_or("no readout: call fit() first")?;
        let ni = self.inputs();
        let mut out = vec![T::zero(); rows * no];
        if self.esn.outputs() > 0 {
            // The readout's output is the next step's feedback: one step at a time.
            for (u, y) in x.chunks_exact(ni).zip(out.chunks_exact_mut(no)) {
                self.step_once(u, Some(y))?;
            }
            return Ok(out);
        }
        // Open loop: the reservoir runs chunks of the sequence in one engine call each (the
        // chunk bounds the states buffer), then the readout reads each chunk's states.
        let n = self.units();
        let chunk = PREDICT_CHUNK_STEPS.min(rows.max(1));
        let mut states = vec![T::zero(); chunk * n];
        let readout = self
            .readout
            .as_ref()
            .ok_or("no readout: call fit() first")?;
        for (xs, ys) in x.chunks(chunk * ni).zip(out.chunks_mut(chunk * no)) {
            let steps = xs.len() / ni;
            let states = &mut states[..steps * n];
            self.esn.run_into(xs, None, states).map_err(msg)?;
            for ((u, state), y) in xs
                .chunks_exact(ni)
                .zip(states.chunks_exact(n))
                .zip(ys.chunks_exact_mut(no))
            {
                fill_features(self.input_to_readout, u, state, &mut self.features);
                readout.predict(&self.features, y).map_err(msg)?;
            }
        }
        if rows > 0 {
            remember(&mut self.last_input, &x[(rows - 1) * ni..]);
            remember(&mut self.last_output, &out[(rows - 1) * no..]);
        }
        Ok(out)
    }

    /// Closed loop: each output is the next input. Starts from `first` or `last_output`.
    pub fn generate(&mut self, steps: usize, first: Option<&[T]>) -> RunResult<Vec<T>> {
        let no = self.outputs().ok_or("no readout: call fit() first")?;
        if let Some(f) = first {
            self.last_output = f.to_vec();
        }
        if self.last_output.len() != no {
            return Err("no previous output to start the closed loop from: call fit() or predict() first, or pass initial=".into());
        }
        let mut out = vec![T::zero(); steps * no];
        let mut u = self.last_output.clone();
        for y in out.chunks_exact_mut(no) {
            self.step_once(&u, Some(y))?;
            u.copy_from_slice(y);
        }
        Ok(out)
    }
}

impl Model<f64> {
    /// Ridge readout solved by Householder QR (echos-host's `training::fit` with
    /// `Solver::Qr`): accurate for tiny ridge parameters where the normal equations lose
    /// digits. It keeps every state of the run in memory and copies the inputs once.
    pub fn fit_qr(
        &mut self,
        x: &[f64],
        y: &[f64],
        outputs: usize,
        washout: usize,
        ridge: f64,
    ) -> RunResult<()> {
        if self.esn.outputs() > 0 {
            return Err(
                "the QR solver does not teacher-force output feedback here; use solver=\"normal\""
                    .into(),
            );
        }
        let rows = x.len() / self.inputs();
        let input = Array2::new(rows, self.inputs(), x.to_vec()).map_err(msg)?;
        let target = Array2::new(rows, outputs, y.to_vec()).map_err(msg)?;
        let setup = ReadoutSetup {
            ridge,
            washout,
            input_features: self.input_to_readout,
            generative: Generative::None,
            solver: Solver::Qr,
        };
        let trained =
            training::fit(self.esn.clone(), setup, &input, &target, 0.0, 0).map_err(msg)?;
        self.esn = trained.esn;
        self.readout = Some(trained.readout);
        self.last_output = trained.last_output;
        self.last_input = trained.last_input;
        self.online = None;
        self.fit_setup = Some((ridge, washout));
        Ok(())
    }
}
