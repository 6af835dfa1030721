//! `echos.ESN`: an echo state network (reservoir + linear readout) driven from NumPy. The
//! reservoir is built on first use, when the number of input features is known (as ReservoirPy
//! does), and computes in the dtype it was created with.

use numpy::{PyArray2, PyArrayMethods, PyUntypedArrayMethods};
use pyo3::exceptions::{PyRuntimeError, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyType};

use crate::arrays::{to_numpy1, to_numpy2, with_matrix, Float, Matrix};
use crate::engine::{self, model_from_file, parse_model, Model, OnlineKind, Settings};
use echos_core::esn::StepKernel;

/// The float type an ESN computes in.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum DType {
    F32,
    F64,
}

impl DType {
    pub fn name(self) -> &'static str {
        match self {
            DType::F32 => "float32",
            DType::F64 => "float64",
        }
    }

    /// Accepts "float32"/"float64" (and "f4"/"f8"), NumPy scalar types and `numpy.dtype`s.
    fn parse(obj: &Bound<'_, PyAny>) -> PyResult<DType> {
        let name: String = if let Ok(s) = obj.extract::<String>() {
            s
        } else {
            let np = obj.py().import("numpy")?;
            match np.call_method1("dtype", (obj,)) {
                Ok(d) => d.getattr("name")?.extract()?,
                Err(_) => {
                    return Err(PyTypeError::new_err(format!(
                        "dtype must be \"float32\" or \"float64\" (or numpy.float32/numpy.float64), got {}",
                        obj.repr().map(|r| r.to_string()).unwrap_or_default()
                    )))
                }
            }
        };
        match name.as_str() {
            "float32" | "f4" | "<f4" | "single" => Ok(DType::F32),
            "float64" | "f8" | "<f8" | "double" | "float" => Ok(DType::F64),
            other => Err(PyValueError::new_err(format!(
                "dtype must be float32 or float64, got {other}"
            ))),
        }
    }
}

/// The reservoir in one of the two float types.
pub enum Inner {
    F32(Model<f32>),
    F64(Model<f64>),
}

macro_rules! dispatch {
    ($inner:expr, $m:ident => $body:expr) => {
        match $inner {
            Inner::F32($m) => $body,
            Inner::F64($m) => $body,
        }
    };
}

/// The dtype of an ESN: the fused kernels compute in float32, so they default to it and refuse
/// float64 (an f64 array API over f32 arithmetic would misstate the precision).
fn dtype_for(dtype: Option<DType>, kernel: StepKernel) -> PyResult<DType> {
    match (dtype, kernel) {
        (None, StepKernel::Exact) => Ok(DType::F64),
        (None, StepKernel::Fused(_)) => Ok(DType::F32),
        (Some(DType::F64), StepKernel::Fused(v)) => Err(PyValueError::new_err(format!(
            "kernel {:?} is a float32 kernel, so it needs dtype=\"float32\" (or no dtype); use kernel=\"exact\" for float64",
            v.name()
        ))),
        (Some(d), _) => Ok(d),
    }
}

/// An echo state network: a random recurrent reservoir plus a linear readout.
///
/// ESN(neurons=100, spectral_radius=0.9, leak_rate=1.0, input_scaling=1.0, connectivity=0.1,
///     bias=1.0, activation="tanh", seed=None, dtype="float64", *, inputs=None,
///     input_connectivity=1.0, topology="random", jump=2, block_size=16,
///     distribution="normal", input_to_readout=False, kernel="exact", feedback=False,
///     feedback_scaling=1.0)
///
/// The state update is x(t) = (1 - leak_rate) x(t-1) + leak_rate f(W x(t-1) + W_in u(t) +
/// W_fb y(t-1) + b), with W scaled to `spectral_radius`, W_in ~ U(-input_scaling,
/// input_scaling), b ~ U(-bias, bias) and, with `feedback=True`, W_fb ~ U(-feedback_scaling,
/// feedback_scaling) feeding the readout's previous output back (Jaeger's output feedback; the
/// number of outputs is learnt from the first `fit`, which teacher-forces y). The defaults are
/// the engine's (`EsnConfig::default()`), shared with the CLI. `seed=None` draws a fresh seed
/// from the OS and keeps it in `esn.seed`, so any run can be repeated; give an int for a fixed
/// one. The reservoir is built on the first call that sees data (or at once when
/// `inputs` is given) and computes in `dtype` (float32 really computes in float32).
/// `kernel` picks the step code: "exact" (libm tanh, the model path, any dtype) or a fused
/// float32 kernel (SELL-16 sparse or dense, rational tanh, tanh only): "fast" (this CPU's best,
/// resolved at once and shown by `esn.kernel`), "scalar", "avx2" or "avx512". Fused kernels
/// compute in float32, so dtype defaults to "float32" with them and "float64" is refused.
/// `topology="block"` is a random sparse reservoir whose rows come in groups of `block_size`
/// (1 <= block_size <= neurons) sharing their in-neighbour columns (iid weights): the fused
/// kernels step it without gathers. `jump` is the jump size of `topology="cycle_jumps"`
/// (default 2); `jump` or `block_size` given with another topology is a ValueError.
/// Arrays are shaped (timesteps, features), as in ReservoirPy. ReservoirPy names: neurons =
/// units, spectral_radius = sr, leak_rate = lr, connectivity = rc_connectivity.
#[pyclass(module = "echos._echos", name = "ESN")]
pub struct PyEsn {
    settings: Settings,
    dtype: DType,
    inner: Option<Inner>,
}

fn positive_count(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v)
        .ok()
        .filter(|&n| n > 0)
        .ok_or_else(|| PyValueError::new_err(format!("{name} must be a positive integer, got {v}")))
}

fn non_negative(name: &str, v: i64) -> PyResult<usize> {
    usize::try_from(v).map_err(|_| PyValueError::new_err(format!("{name} must be ≥ 0, got {v}")))
}

impl PyEsn {
    fn build(&mut self, inputs: usize) -> PyResult<&mut Inner> {
        if let Some(inner) = &self.inner {
            let built = dispatch!(inner, m => m.inputs());
            if built != inputs {
                return Err(PyValueError::new_err(format!(
                    "x has {inputs} features but this ESN was built for {built} features"
                )));
            }
        } else {
            let inner = match self.dtype {
                DType::F32 => Inner::F32(Model::new(&self.settings, inputs)?),
                DType::F64 => Inner::F64(Model::new(&self.settings, inputs)?),
            };
            self.inner = Some(inner);
        }
        self.inner
            .as_mut()
            .ok_or_else(|| PyRuntimeError::new_err("reservoir not built"))
    }

    fn built(&mut self, what: &str) -> PyResult<&mut Inner> {
        self.inner.as_mut().ok_or_else(|| {
            PyRuntimeError::new_err(format!(
                "this ESN has not seen any data yet: call fit() before {what}"
            ))
        })
    }
}

/// Runs the reservoir over `x` (rows × inputs), returning all states; the GIL is released.
fn update_typed<'py, T: Float + echos_core::scalar::Scalar>(
    py: Python<'py>,
    m: &mut Model<T>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let units = m.units();
    if m.is_open_loop() {
        // The states go straight into an array NumPy allocates: for large outputs NumPy asks
        // for transparent huge pages, and first-touch page faults on a fresh 4 KiB-paged
        // buffer cost about as much as the step itself at 1000 units.
        return with_matrix::<T, _>(x, "x", |x: Matrix<'_, T>| {
            check_cols(m.inputs(), x.cols, "x")?;
            output_fits::<T>(x.rows, units)?;
            let arr = PyArray2::<T>::zeros(py, [x.rows, units], false);
            {
                let mut rw = arr.readwrite();
                let out = rw.as_slice_mut().map_err(|e| {
                    PyRuntimeError::new_err(format!("output array not contiguous: {e}"))
                })?;
                py.detach(|| m.update_into(x.data, out))
                    .map_err(PyValueError::new_err)?;
            }
            Ok(arr.into_any())
        });
    }
    let (out, rows) = with_matrix::<T, _>(x, "x", |x: Matrix<'_, T>| {
        check_cols(m.inputs(), x.cols, "x")?;
        output_fits::<T>(x.rows, units)?;
        let out = py
            .detach(|| m.update(x.data, x.rows))
            .map_err(PyValueError::new_err)?;
        Ok((out, x.rows))
    })?;
    Ok(to_numpy2(py, out, rows, units)?.into_any())
}

/// The (rows × cols) output array must fit in memory (see `engine::check_memory`).
fn output_fits<T>(rows: usize, cols: usize) -> PyResult<()> {
    engine::check_memory(
        rows as f64 * cols as f64 * std::mem::size_of::<T>() as f64,
        "the output array",
    )
}

fn check_cols(expected: usize, got: usize, name: &str) -> PyResult<()> {
    if expected == got {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "{name} has {got} features but this ESN was built for {expected} features"
        )))
    }
}

fn fit_typed<T: Float + echos_core::scalar::Scalar>(
    py: Python<'_>,
    m: &mut Model<T>,
    settings: &Settings,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    washout: usize,
    ridge: f64,
) -> PyResult<()> {
    with_matrix::<T, _>(x, "x", |x| {
        check_cols(m.inputs(), x.cols, "x")?;
        with_matrix::<T, _>(y, "y", |y| {
            check_rows(&x, &y)?;
            check_washout(washout, x.rows)?;
            engine::check_memory(m.solver_bytes(y.cols), "the ridge solve")?;
            py.detach(|| m.fit(settings, x.data, y.data, y.cols, washout, ridge))
                .map_err(PyValueError::new_err)
        })
    })
}

fn fit_qr(
    py: Python<'_>,
    m: &mut Model<f64>,
    settings: &Settings,
    x: &Bound<'_, PyAny>,
    y: &Bound<'_, PyAny>,
    washout: usize,
    ridge: f64,
) -> PyResult<()> {
    with_matrix::<f64, _>(x, "x", |x| {
        check_cols(m.inputs(), x.cols, "x")?;
        with_matrix::<f64, _>(y, "y", |y| {
            check_rows(&x, &y)?;
            check_washout(washout, x.rows)?;
            // QR keeps every state, and the inputs and targets are copied once.
            engine::check_memory(
                (x.rows * (m.units() + x.cols + 2 * y.cols)) as f64 * 16.0,
                "the QR solve over these states",
            )?;
            py.detach(|| m.fit_qr(settings, x.data, y.data, y.cols, washout, ridge))
                .map_err(PyValueError::new_err)
        })
    })
}

fn check_rows<T>(x: &Matrix<'_, T>, y: &Matrix<'_, T>) -> PyResult<()> {
    if x.rows == y.rows {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "x and y must have the same number of rows (timesteps): x has {}, y has {}",
            x.rows, y.rows
        )))
    }
}

fn check_washout(washout: usize, rows: usize) -> PyResult<()> {
    if washout < rows {
        Ok(())
    } else {
        Err(PyValueError::new_err(format!(
            "washout ({washout}) must be smaller than the number of timesteps ({rows})"
        )))
    }
}

fn predict_typed<'py, T: Float + echos_core::scalar::Scalar>(
    py: Python<'py>,
    m: &mut Model<T>,
    x: &Bound<'py, PyAny>,
) -> PyResult<Bound<'py, PyAny>> {
    let outputs = m.outputs().ok_or_else(|| {
        PyRuntimeError::new_err("this ESN has no readout yet: call fit() before predict()")
    })?;
    let (out, rows) = with_matrix::<T, _>(x, "x", |x| {
        check_cols(m.inputs(), x.cols, "x")?;
        output_fits::<T>(x.rows, outputs)?;
        let out = py
            .detach(|| m.predict(x.data, x.rows))
            .map_err(PyValueError::new_err)?;
        Ok((out, x.rows))
    })?;
    Ok(to_numpy2(py, out, rows, outputs)?.into_any())
}

fn initial_vector<T: Float>(obj: &Bound<'_, PyAny>, len: usize) -> PyResult<Vec<T>> {
    let arr = obj.cast::<numpy::PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err("initial must be a numpy.ndarray of shape (features,)")
    })?;
    if arr.len() != len || arr.ndim() > 2 {
        return Err(PyValueError::new_err(format!(
            "initial must hold {len} values (one per output), got shape {:?}",
            arr.shape()
        )));
    }
    let flat = obj.call_method1("reshape", (1, len))?;
    with_matrix::<T, _>(&flat, "initial", |m| Ok(m.data.to_vec()))
}

fn run_typed<'py, T: Float + echos_core::scalar::Scalar>(
    py: Python<'py>,
    m: &mut Model<T>,
    steps: usize,
    initial: Option<&Bound<'py, PyAny>>,
) -> PyResult<Bound<'py, PyAny>> {
    let outputs = m.outputs().ok_or_else(|| {
        PyRuntimeError::new_err("this ESN has no readout yet: call fit() before run()")
    })?;
    output_fits::<T>(steps, outputs)?;
    let first = match initial {
        Some(obj) => Some(initial_vector::<T>(obj, outputs)?),
        None => None,
    };
    let out = py
        .detach(|| m.generate(steps, first.as_deref()))
        .map_err(PyValueError::new_err)?;
    Ok(to_numpy2(py, out, steps, outputs)?.into_any())
}

fn online_typed<'py, T: Float + echos_core::scalar::Scalar>(
    py: Python<'py>,
    m: &mut Model<T>,
    settings: &Settings,
    x: &Bound<'py, PyAny>,
    y: &Bound<'py, PyAny>,
    kind: OnlineKind,
    washout: usize,
) -> PyResult<Bound<'py, PyAny>> {
    let (out, rows, cols) = with_matrix::<T, _>(x, "x", |x| {
        check_cols(m.inputs(), x.cols, "x")?;
        with_matrix::<T, _>(y, "y", |y| {
            check_rows(&x, &y)?;
            check_washout(washout, x.rows)?;
            output_fits::<T>(x.rows, y.cols)?;
            engine::check_memory(m.solver_bytes(y.cols), "the online readout")?;
            let out = py
                .detach(|| m.fit_online(settings, x.data, y.data, y.cols, kind, washout))
                .map_err(PyValueError::new_err)?;
            Ok((out, y.rows, y.cols))
        })
    })?;
    Ok(to_numpy2(py, out, rows, cols)?.into_any())
}

fn set_state_typed<T: Float + echos_core::scalar::Scalar>(
    m: &mut Model<T>,
    value: &Bound<'_, PyAny>,
) -> PyResult<()> {
    let units = m.units();
    let arr = value.cast::<numpy::PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!("state must be a numpy.ndarray of shape ({units},)"))
    })?;
    if arr.ndim() != 1 || arr.len() != units {
        return Err(PyValueError::new_err(format!(
            "state must have shape ({units},), got {:?}",
            arr.shape()
        )));
    }
    let flat = value.call_method1("reshape", (1, units))?;
    with_matrix::<T, _>(&flat, "state", |s| {
        m.set_state(s.data).map_err(PyValueError::new_err)
    })
}

#[pymethods]
impl PyEsn {
    #[new]
    #[pyo3(
        text_signature = "(neurons=100, spectral_radius=0.9, leak_rate=1.0, input_scaling=1.0, connectivity=0.1, bias=1.0, activation='tanh', seed=None, dtype='float64', *, inputs=None, input_connectivity=1.0, topology='random', jump=2, block_size=16, distribution='normal', input_to_readout=False, kernel='exact', feedback=False, feedback_scaling=1.0)"
    )]
    #[pyo3(signature = (
        neurons = None,
        spectral_radius = 0.9,
        leak_rate = 1.0,
        input_scaling = 1.0,
        connectivity = 0.1,
        bias = 1.0,
        activation = None,
        seed = None,
        dtype = None,
        *,
        inputs = None,
        input_connectivity = 1.0,
        topology = "random".to_owned(),
        jump = None,
        block_size = None,
        distribution = "normal".to_owned(),
        input_to_readout = false,
        kernel = None,
        feedback = false,
        feedback_scaling = 1.0,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        neurons: Option<&Bound<'_, PyAny>>,
        spectral_radius: f64,
        leak_rate: f64,
        input_scaling: f64,
        connectivity: f64,
        bias: f64,
        activation: Option<&Bound<'_, PyAny>>,
        seed: Option<&Bound<'_, PyAny>>,
        dtype: Option<&Bound<'_, PyAny>>,
        inputs: Option<&Bound<'_, PyAny>>,
        input_connectivity: f64,
        topology: String,
        jump: Option<&Bound<'_, PyAny>>,
        block_size: Option<&Bound<'_, PyAny>>,
        distribution: String,
        input_to_readout: bool,
        kernel: Option<&Bound<'_, PyAny>>,
        feedback: bool,
        feedback_scaling: f64,
    ) -> PyResult<Self> {
        let neurons = match neurons {
            None => 100,
            Some(n) => positive_count("neurons", int_arg("neurons", n)?)?,
        };
        // A topology's own parameter given with another topology is a mistake, not a no-op.
        for (name, given, owner) in [
            ("jump", jump.is_some(), "cycle_jumps"),
            ("block_size", block_size.is_some(), "block"),
        ] {
            if given && topology != owner {
                return Err(PyValueError::new_err(format!(
                    "{name} applies to topology=\"{owner}\" only, got topology={topology:?}"
                )));
            }
        }
        let jump = match jump {
            None => engine::DEFAULT_JUMP,
            Some(j) => positive_count("jump", int_arg("jump", j)?)?,
        };
        let block_size = match block_size {
            None => engine::DEFAULT_BLOCK_SIZE,
            Some(b) => positive_count("block_size", int_arg("block_size", b)?)?,
        };
        let seed = match seed {
            // No seed: a fresh one from the OS's entropy, kept in `seed` (and the model file)
            // so the run can be repeated.
            None => fresh_seed(),
            Some(s) if s.is_none() => fresh_seed(),
            Some(s) => {
                let v = int_arg("seed", s)?;
                u64::try_from(v)
                    .map_err(|_| PyValueError::new_err(format!("seed must be ≥ 0, got {v}")))?
            }
        };
        let activation: String = match activation {
            None => "tanh".to_owned(),
            Some(a) => a.extract().map_err(|_| {
                PyTypeError::new_err(
                    "activation must be a string: \"tanh\", \"sigmoid\", \"relu\" or \"identity\"",
                )
            })?,
        };
        let kernel = match kernel {
            None => StepKernel::Exact,
            Some(k) => engine::kernel_of(&k.extract::<String>().map_err(|_| {
                PyTypeError::new_err(
                    "kernel must be a string: \"exact\", \"fast\", \"scalar\", \"avx2\" or \"avx512\"",
                )
            })?)?,
        };
        let dtype = dtype_for(
            match dtype {
                None => None,
                Some(d) => Some(DType::parse(d)?),
            },
            kernel,
        )?;
        let inputs = match inputs {
            None => None,
            Some(v) if v.is_none() => None,
            Some(v) => Some(positive_count("inputs", int_arg("inputs", v)?)?),
        };
        let settings = Settings {
            neurons,
            spectral_radius,
            leak_rate,
            input_scaling,
            connectivity,
            bias,
            activation,
            seed,
            input_connectivity,
            topology,
            jump,
            block_size,
            distribution,
            input_to_readout,
            kernel,
            feedback,
            feedback_scaling,
        };
        // Validate now so a bad hyperparameter fails at construction, not at the first call.
        engine::validate(&settings)?;
        let mut esn = PyEsn {
            settings,
            dtype,
            inner: None,
        };
        if let Some(n) = inputs {
            esn.build(n)?;
        }
        Ok(esn)
    }

    /// Runs the reservoir over `x` (shape (timesteps, features)) from its current state and
    /// returns every state, shape (timesteps, neurons). The state is carried over to the next
    /// call; `reset()` clears it. (ReservoirPy: `Reservoir.run`.)
    fn update<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let cols = feature_count(x, "x")?;
        let inner = self.build(cols)?;
        dispatch!(inner, m => update_typed(py, m, x))
    }

    /// Trains the ridge-regression readout: runs the reservoir over `x` from its current state
    /// (feeding `y` back when the ESN has output feedback), drops the first `washout` steps and
    /// solves for W_out on [1, state] with the bias not regularised. `solver="normal"` (the
    /// engine's streaming normal equations, Cholesky) or `"qr"` (Householder QR on all states,
    /// float64 only; accurate for tiny `ridge`). Returns self.
    #[pyo3(signature = (x, y, washout = 0, ridge = 1e-6, *, solver = "normal".to_owned()))]
    fn fit<'py>(
        mut slf: PyRefMut<'py, Self>,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        washout: i64,
        ridge: f64,
        solver: String,
    ) -> PyResult<PyRefMut<'py, Self>> {
        let washout = non_negative("washout", washout)?;
        if !(ridge.is_finite() && ridge >= 0.0) {
            return Err(PyValueError::new_err(format!(
                "ridge must be a finite number ≥ 0, got {ridge}"
            )));
        }
        let qr = match solver.as_str() {
            "normal" => false,
            "qr" => true,
            other => {
                return Err(PyValueError::new_err(format!(
                    "solver must be \"normal\" or \"qr\", got {other:?}"
                )))
            }
        };
        let cols = feature_count(x, "x")?;
        let settings = slf.settings.clone();
        let inner = slf.build(cols)?;
        match (inner, qr) {
            (inner, false) => {
                dispatch!(inner, m => fit_typed(py, m, &settings, x, y, washout, ridge))?
            }
            (Inner::F64(m), true) => fit_qr(py, m, &settings, x, y, washout, ridge)?,
            (Inner::F32(_), true) => {
                return Err(PyValueError::new_err(
                    "solver=\"qr\" is available for float64 networks only; use solver=\"normal\" or dtype=\"float64\"",
                ))
            }
        }
        Ok(slf)
    }

    /// Trains the readout online, one step at a time: recursive least squares
    /// (`readout="rls"`, with `forgetting` in (0, 1]) or least mean squares (`readout="lms"`,
    /// with `learning_rate`). Keeps learning across calls; returns the outputs predicted at each
    /// step before that step's update (shape like `y`).
    #[pyo3(signature = (x, y, readout = "rls".to_owned(), *, forgetting = 1.0, delta = 1e-2, learning_rate = 0.01, washout = 0))]
    #[allow(clippy::too_many_arguments)]
    fn fit_online<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
        y: &Bound<'py, PyAny>,
        readout: String,
        forgetting: f64,
        delta: f64,
        learning_rate: f64,
        washout: i64,
    ) -> PyResult<Bound<'py, PyAny>> {
        let washout = non_negative("washout", washout)?;
        let kind = match readout.as_str() {
            "rls" => OnlineKind::Rls { forgetting, delta },
            "lms" => OnlineKind::Lms { learning_rate },
            other => {
                return Err(PyValueError::new_err(format!(
                    "readout must be \"rls\" or \"lms\", got {other:?}"
                )))
            }
        };
        let cols = feature_count(x, "x")?;
        let settings = self.settings.clone();
        let inner = self.build(cols)?;
        dispatch!(inner, m => online_typed(py, m, &settings, x, y, kind, washout))
    }

    /// Drives the reservoir with `x` (teacher-forced inputs) and returns the readout's outputs,
    /// shape (timesteps, outputs). The state is carried over, as in `update`.
    fn predict<'py>(
        &mut self,
        py: Python<'py>,
        x: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let inner = self.built("predict()")?;
        dispatch!(inner, m => predict_typed(py, m, x))
    }

    /// Runs `steps` steps in closed loop (generative mode), as the ESN was trained: with
    /// `feedback=True` each output is fed back through W_fb while the input stays at the last
    /// input seen (Jaeger's generator); otherwise each output is the next input (a one-step-ahead
    /// predictor, outputs == inputs). Starts from `initial` (the previous output, shape
    /// (outputs,)) or, by default, from the last output of `fit`/`predict`/`run`. Returns shape
    /// (steps, outputs).
    #[pyo3(signature = (steps, initial = None))]
    fn run<'py>(
        &mut self,
        py: Python<'py>,
        steps: i64,
        initial: Option<&Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let steps = positive_count("steps", steps)?;
        let inner = self.built("run()")?;
        dispatch!(inner, m => run_typed(py, m, steps, initial))
    }

    /// Sets the reservoir state back to zeros (and forgets the last output). Weights and the
    /// readout are kept.
    fn reset(&mut self) {
        if let Some(inner) = &mut self.inner {
            dispatch!(inner, m => m.reset());
        }
    }

    /// The current reservoir state, shape (neurons,), a copy. Assign an array of that shape to
    /// set it.
    #[getter]
    fn state<'py>(&self, py: Python<'py>) -> Bound<'py, PyAny> {
        match &self.inner {
            None => match self.dtype {
                DType::F32 => to_numpy1(py, vec![0f32; self.settings.neurons]).into_any(),
                DType::F64 => to_numpy1(py, vec![0f64; self.settings.neurons]).into_any(),
            },
            Some(inner) => dispatch!(inner, m => to_numpy1(py, m.state().to_vec()).into_any()),
        }
    }

    #[setter(state)]
    fn set_state(&mut self, value: &Bound<'_, PyAny>) -> PyResult<()> {
        let inner = self.built("setting the state")?;
        dispatch!(inner, m => set_state_typed(m, value))
    }

    /// Number of reservoir neurons (ReservoirPy: `units`).
    #[getter]
    fn neurons(&self) -> usize {
        self.settings.neurons
    }

    /// Number of input features, or None before the reservoir has seen data.
    #[getter]
    fn inputs(&self) -> Option<usize> {
        self.inner.as_ref().map(|i| dispatch!(i, m => m.inputs()))
    }

    /// Number of readout outputs, or None before `fit`.
    #[getter]
    fn outputs(&self) -> Option<usize> {
        self.inner
            .as_ref()
            .and_then(|i| dispatch!(i, m => m.outputs()))
    }

    /// The dtype the reservoir computes in: "float32" or "float64".
    #[getter]
    fn dtype(&self) -> &'static str {
        self.dtype.name()
    }

    /// The step kernel: "exact", or the fused variant that runs ("scalar", "avx2", "avx512";
    /// "fast" is resolved to one of these when the ESN is created or loaded).
    #[getter]
    fn kernel(&self) -> &'static str {
        self.settings.kernel.name()
    }

    /// Target spectral radius of W (ReservoirPy: `sr`).
    #[getter]
    fn spectral_radius(&self) -> f64 {
        self.settings.spectral_radius
    }

    /// Leak rate a in (0, 1] (ReservoirPy: `lr`).
    #[getter]
    fn leak_rate(&self) -> f64 {
        self.settings.leak_rate
    }

    /// Scale of the input weights W_in.
    #[getter]
    fn input_scaling(&self) -> f64 {
        self.settings.input_scaling
    }

    /// Fraction of nonzero recurrent weights per row (ReservoirPy: `rc_connectivity`).
    #[getter]
    fn connectivity(&self) -> f64 {
        self.settings.connectivity
    }

    /// Scale of the bias b ~ U(-1, 1) · bias.
    #[getter]
    fn bias(&self) -> f64 {
        self.settings.bias
    }

    /// The neurons' nonlinearity.
    #[getter]
    fn activation(&self) -> String {
        self.settings.activation.clone()
    }

    /// Seed of every weight (xoshiro256** seeded through SplitMix64).
    #[getter]
    fn seed(&self) -> u64 {
        self.settings.seed
    }

    /// The reservoir's topology: "random", "cycle", "delay_line", "cycle_jumps" or "block".
    #[getter]
    fn topology(&self) -> String {
        self.settings.topology.clone()
    }

    /// Jump size of the "cycle_jumps" topology (the default, 2, for other topologies).
    #[getter]
    fn jump(&self) -> usize {
        self.settings.jump
    }

    /// Rows per group of the "block" topology (the default, 16, for other topologies).
    #[getter]
    fn block_size(&self) -> usize {
        self.settings.block_size
    }

    /// The readout weights, shape (outputs, 1 + neurons) with the bias in column 0, or None
    /// before training.
    #[getter]
    fn readout_weights<'py>(&self, py: Python<'py>) -> PyResult<Option<Bound<'py, PyArray2<f64>>>> {
        let Some(inner) = &self.inner else {
            return Ok(None);
        };
        match dispatch!(inner, m => m.readout_weights()) {
            None => Ok(None),
            Some((data, rows, cols)) => Ok(Some(to_numpy2(py, data, rows, cols)?)),
        }
    }

    /// Saves the trained network (reservoir weights and state, readout, hyperparameters) to a
    /// model file in the engine's documented format (safetensors + JSON metadata,
    /// docs/model-format.md): the file the `echos` CLI reads. Tensors are float64 in the file;
    /// a float32 network converts to float64 and back exactly. The write is atomic.
    fn save(&self, path: std::path::PathBuf) -> PyResult<()> {
        let bytes = self.to_bytes_inner()?;
        echos_host::atomic::write(&path, &bytes)
            .map_err(|e| io_error(&e, format!("cannot write model {}: {e}", path.display())))
    }

    /// Loads a model file written by `save` or by the `echos` CLI, computing in `dtype`
    /// (float64 by default). A missing file raises FileNotFoundError (an OSError); a corrupt,
    /// truncated or foreign file raises ValueError naming the problem.
    #[classmethod]
    #[pyo3(signature = (path, dtype = None))]
    fn load(
        _cls: &Bound<'_, PyType>,
        path: std::path::PathBuf,
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let dtype = match dtype {
            None => None,
            Some(d) => Some(DType::parse(d)?),
        };
        let bytes = std::fs::read(&path)
            .map_err(|e| io_error(&e, format!("cannot read model {}: {e}", path.display())))?;
        Self::from_model_bytes(&bytes, &path.display().to_string(), dtype)
    }

    /// The model file's bytes: what `save` writes.
    fn to_bytes<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyBytes>> {
        Ok(PyBytes::new(py, &self.to_bytes_inner()?))
    }

    /// Rebuilds a trained network from `to_bytes()` output (or a model file's contents).
    #[classmethod]
    #[pyo3(signature = (data, dtype = None))]
    fn from_bytes(
        _cls: &Bound<'_, PyType>,
        data: &[u8],
        dtype: Option<&Bound<'_, PyAny>>,
    ) -> PyResult<Self> {
        let dtype = match dtype {
            None => None,
            Some(d) => Some(DType::parse(d)?),
        };
        Self::from_model_bytes(data, "<bytes>", dtype)
    }

    /// Pickling: the model-file bytes when trained, else the hyperparameters (weights are a
    /// function of them and the seed) and the state.
    fn __reduce__<'py>(
        &self,
        py: Python<'py>,
    ) -> PyResult<(Bound<'py, PyAny>, (Bound<'py, PyDict>,))> {
        let d = PyDict::new(py);
        d.set_item("format", 1)?;
        d.set_item("dtype", self.dtype.name())?;
        let s = &self.settings;
        let settings = PyDict::new(py);
        settings.set_item("neurons", s.neurons)?;
        settings.set_item("spectral_radius", s.spectral_radius)?;
        settings.set_item("leak_rate", s.leak_rate)?;
        settings.set_item("input_scaling", s.input_scaling)?;
        settings.set_item("connectivity", s.connectivity)?;
        settings.set_item("bias", s.bias)?;
        settings.set_item("activation", &s.activation)?;
        settings.set_item("seed", s.seed)?;
        settings.set_item("input_connectivity", s.input_connectivity)?;
        settings.set_item("topology", &s.topology)?;
        settings.set_item("jump", s.jump)?;
        settings.set_item("block_size", s.block_size)?;
        settings.set_item("distribution", &s.distribution)?;
        settings.set_item("input_to_readout", s.input_to_readout)?;
        settings.set_item("kernel", s.kernel.name())?;
        settings.set_item("feedback", s.feedback)?;
        settings.set_item("feedback_scaling", s.feedback_scaling)?;
        d.set_item("settings", settings)?;
        match &self.inner {
            None => d.set_item("inputs", py.None())?,
            Some(inner) => {
                d.set_item("inputs", dispatch!(inner, m => m.inputs()))?;
                if dispatch!(inner, m => m.outputs()).is_some() {
                    d.set_item("model", PyBytes::new(py, &self.to_bytes_inner()?))?;
                } else {
                    let state: Vec<f64> = dispatch!(inner, m => m.state().iter().map(|&v| echos_core::scalar::Scalar::to_f64(v)).collect());
                    d.set_item("state", state)?;
                }
            }
        }
        let f = py.import("echos._echos")?.getattr("_esn_from_pickle")?;
        Ok((f, (d,)))
    }

    fn __repr__(&self) -> String {
        let s = &self.settings;
        // The topology's own parameter only: jump and block_size mean nothing elsewhere.
        let topology = match s.topology.as_str() {
            "cycle_jumps" => format!("topology={:?}, jump={}", s.topology, s.jump),
            "block" => format!("topology={:?}, block_size={}", s.topology, s.block_size),
            other => format!("topology={other:?}"),
        };
        format!(
            "ESN(neurons={}, spectral_radius={:?}, leak_rate={:?}, input_scaling={:?}, connectivity={:?}, bias={:?}, activation={:?}, seed={}, dtype={:?}, {topology}, kernel={:?})",
            s.neurons,
            s.spectral_radius,
            s.leak_rate,
            s.input_scaling,
            s.connectivity,
            s.bias,
            s.activation,
            s.seed,
            self.dtype.name(),
            s.kernel.name()
        )
    }
}

impl PyEsn {
    fn to_bytes_inner(&self) -> PyResult<Vec<u8>> {
        match &self.inner {
            None => Err(PyRuntimeError::new_err(
                "this ESN has no readout yet: call fit() before saving it",
            )),
            Some(inner) => dispatch!(inner, m => m.to_model_bytes()),
        }
    }

    /// `dtype` None: float32 for a fused model, float64 for an exact one.
    fn from_model_bytes(bytes: &[u8], origin: &str, dtype: Option<DType>) -> PyResult<Self> {
        let file = parse_model(bytes, origin)?;
        let dtype = dtype_for(dtype, file.esn().config().kernel)?;
        let (settings, inner) = match dtype {
            DType::F32 => {
                let (s, m) = model_from_file::<f32>(&file)?;
                (s, Inner::F32(m))
            }
            DType::F64 => {
                let (s, m) = model_from_file::<f64>(&file)?;
                (s, Inner::F64(m))
            }
        };
        Ok(PyEsn {
            settings,
            dtype,
            inner: Some(inner),
        })
    }
}

/// Rebuilds an ESN from the dict `ESN.__reduce__` made.
#[pyfunction]
pub fn _esn_from_pickle(state: &Bound<'_, PyDict>) -> PyResult<PyEsn> {
    let get = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        state
            .get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("pickled ESN lacks '{key}'")))
    };
    let format: i64 = get("format")?.extract()?;
    if format != 1 {
        return Err(PyValueError::new_err(format!(
            "pickled ESN has format {format}; this echos reads format 1"
        )));
    }
    let dtype = DType::parse(&get("dtype")?)?;
    let s = get("settings")?;
    let s = s.cast::<PyDict>()?;
    let item = |key: &str| -> PyResult<Bound<'_, PyAny>> {
        s.get_item(key)?
            .ok_or_else(|| PyValueError::new_err(format!("pickled ESN settings lack '{key}'")))
    };
    let settings = Settings {
        neurons: item("neurons")?.extract()?,
        spectral_radius: item("spectral_radius")?.extract()?,
        leak_rate: item("leak_rate")?.extract()?,
        input_scaling: item("input_scaling")?.extract()?,
        connectivity: item("connectivity")?.extract()?,
        bias: item("bias")?.extract()?,
        activation: item("activation")?.extract()?,
        seed: item("seed")?.extract()?,
        input_connectivity: item("input_connectivity")?.extract()?,
        topology: item("topology")?.extract()?,
        jump: item("jump")?.extract()?,
        // Pickles made before block_size existed could only hold the default block size.
        block_size: match s.get_item("block_size")? {
            None => engine::DEFAULT_BLOCK_SIZE,
            Some(b) => b.extract()?,
        },
        distribution: item("distribution")?.extract()?,
        input_to_readout: item("input_to_readout")?.extract()?,
        // Pickles made before step kernels existed ran the exact path.
        kernel: match s.get_item("kernel")? {
            None => StepKernel::Exact,
            Some(k) => engine::kernel_of(&k.extract::<String>()?)?,
        },
        // Pickles made before Python had output feedback had none.
        feedback: match s.get_item("feedback")? {
            None => false,
            Some(f) => f.extract()?,
        },
        feedback_scaling: match s.get_item("feedback_scaling")? {
            None => 1.0,
            Some(f) => f.extract()?,
        },
    };
    engine::validate(&settings)?;
    let dtype = dtype_for(Some(dtype), settings.kernel)?;
    if let Some(model) = state.get_item("model")? {
        let bytes: Vec<u8> = model.extract()?;
        let mut esn = PyEsn::from_model_bytes(&bytes, "<pickle>", Some(dtype))?;
        esn.settings = settings;
        return Ok(esn);
    }
    let mut esn = PyEsn {
        settings,
        dtype,
        inner: None,
    };
    let inputs: Option<usize> = get("inputs")?.extract()?;
    if let Some(n) = inputs {
        let inner = esn.build(n)?;
        let st: Vec<f64> = match state.get_item("state")? {
            Some(v) => v.extract()?,
            None => Vec::new(),
        };
        dispatch!(inner, m => {
            let st: Vec<_> = st.iter().map(|&v| Float::from_f64(v)).collect();
            m.set_state(&st).map_err(PyValueError::new_err)?
        });
    }
    Ok(esn)
}

/// An OSError of the subclass Python uses for this error kind (FileNotFoundError,
/// PermissionError, ...), with a message naming the file.
fn io_error(e: &std::io::Error, message: String) -> PyErr {
    let typed = PyErr::from(std::io::Error::new(e.kind(), String::new()));
    Python::attach(|py| PyErr::from_type(typed.get_type(py), message))
}

/// A seed nobody chose: std's OS-seeded hasher keys (getrandom underneath), below 2^53 so it
/// survives a round trip through a Python float or JSON number.
fn fresh_seed() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(0x6563_686f_735f_7365);
    h.finish() >> 11
}

/// Integer arguments: a bool or float is a type error here, not a silent truncation.
fn int_arg(name: &str, v: &Bound<'_, PyAny>) -> PyResult<i64> {
    if v.is_instance_of::<pyo3::types::PyBool>() || !v.is_instance_of::<pyo3::types::PyInt>() {
        return Err(PyTypeError::new_err(format!(
            "{name} must be an int, got {}",
            v.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        )));
    }
    v.extract::<i64>()
        .map_err(|_| PyValueError::new_err(format!("{name} is out of range")))
}

/// The feature count of `x` if it is a 2-D array (full validation happens in `with_matrix`).
fn feature_count(x: &Bound<'_, PyAny>, name: &str) -> PyResult<usize> {
    // Validate fully (type, dims, emptiness) before the reservoir is built from its shape.
    let arr = x.cast::<numpy::PyUntypedArray>().map_err(|_| {
        PyTypeError::new_err(format!(
            "{name} must be a numpy.ndarray of shape (timesteps, features), got {}",
            x.get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ))
    })?;
    if arr.ndim() != 2 {
        // Let with_matrix produce the detailed message.
        return with_matrix::<f64, _>(x, name, |m| Ok(m.cols));
    }
    let cols = arr.shape()[1];
    if cols == 0 || arr.shape()[0] == 0 {
        return with_matrix::<f64, _>(x, name, |m| Ok(m.cols));
    }
    Ok(cols)
}
