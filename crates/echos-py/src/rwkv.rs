//! `echos.RWKV`: RWKV v4–v7 models for Python — load (BlinkDL `.pth`, safetensors, rwkv.cpp
//! `.bin`), `forward(tokens)` to NumPy logits, `generate(prompt, ...)` with the sampler, stop
//! strings and penalties of `echos_rwkv_io::generate` (the one home of generation; the CLI's
//! `echos rwkv generate/chat` use the same code), state save/load. The object holds one
//! recurrent state that every call advances; `reset()` starts over.
//!
//! The GIL is released while the model runs. Worker threads (`threads > 1`) are started per
//! call and end with it: an idle `RWKV` object costs no CPU.

use std::path::PathBuf;

use echos_rwkv_io::generate::{self, GenerateError, Request, Sampler, Sampling};
use echos_rwkv_io::tokenizer::Tokenizer;
use echos_rwkv_io::{load_model, state_io, Model, Parallel, Scratch, Serial, SpinPool, State};
use numpy::{IntoPyArray, PyArray2, PyReadonlyArray1};
use pyo3::exceptions::{PyOSError, PyTypeError, PyValueError};
use pyo3::prelude::*;

fn value_error(e: impl std::fmt::Display) -> PyErr {
    PyValueError::new_err(e.to_string())
}

/// A generation setting out of range, named as the keyword argument that sets it.
fn generate_error(e: GenerateError) -> PyErr {
    match e {
        GenerateError::OutOfRange {
            name,
            expected,
            value,
        } => PyValueError::new_err(format!("{name} must be {expected}, got {value}")),
        GenerateError::EmptyStop { .. }
        | GenerateError::LongStop { .. }
        | GenerateError::TooManyStops { .. } => PyValueError::new_err(format!("stop: {e}")),
        other => value_error(other),
    }
}

/// Most tokens one `forward` call takes, so the logits it returns stay within 4 GiB at the
/// world vocabulary (65,536 × 4 bytes per token).
const MAX_FORWARD_TOKENS: usize = 16_384;

/// RWKV(path, threads=1, int8=False): an RWKV v4–v7 model (BlinkDL .pth, safetensors or
/// rwkv.cpp .bin; version and shapes read from the weights) with one recurrent state that every
/// call advances (`reset()` starts over). `forward(tokens)` returns float32 logits per token;
/// `generate(prompt, ...)` samples as rwkv.cpp and ChatRWKV (penalties, softmax, top-p, top-k,
/// temperature; 0 is greedy) and stops at `max_tokens`, end of text, `stop_tokens` or before a
/// `stop` string. `threads` worker threads run the matrix products during a call; `int8=True`
/// quantizes the large matrices after loading. The GIL is released while the model runs.
#[pyclass(module = "echos._echos", name = "RWKV")]
pub struct PyRwkv {
    model: Model,
    state: State,
    start: State,
    tokenizer: Tokenizer,
    /// The state's next-token logits (empty until a call has fed a token).
    logits: Vec<f32>,
    threads: usize,
    path: PathBuf,
}

impl PyRwkv {
    /// Runs `f` with a pool of `self.threads` (the caller is thread 0), GIL released.
    fn run<R: Send>(
        &mut self,
        py: Python<'_>,
        f: impl FnOnce(&mut Self, &dyn Parallel) -> R + Send,
    ) -> R {
        let threads = self.threads;
        py.detach(|| {
            if threads == 1 {
                f(self, &Serial)
            } else {
                let pool = SpinPool::new(threads);
                f(self, &pool)
            }
        })
    }

    fn check_tokens(&self, tokens: &[i64]) -> PyResult<Vec<u32>> {
        let vocab = self.model.dims.vocab;
        tokens
            .iter()
            .enumerate()
            .map(|(i, &t)| {
                u32::try_from(t)
                    .ok()
                    .filter(|&u| (u as usize) < vocab)
                    .ok_or_else(|| {
                        PyValueError::new_err(format!(
                            "tokens[{i}] = {t} is outside the vocabulary (0..{vocab})"
                        ))
                    })
            })
            .collect()
    }
}

/// Token ids from a list of ints or a 1-D integer array.
fn token_list(tokens: &Bound<'_, PyAny>) -> PyResult<Vec<i64>> {
    if let Ok(a) = tokens.extract::<PyReadonlyArray1<'_, i64>>() {
        return Ok(a.as_array().to_vec());
    }
    if let Ok(a) = tokens.extract::<PyReadonlyArray1<'_, i32>>() {
        return Ok(a.as_array().iter().map(|&t| i64::from(t)).collect());
    }
    if tokens.is_instance_of::<pyo3::types::PyString>() {
        return Err(PyTypeError::new_err(
            "tokens must be integer ids (a list or a 1-D int32/int64 array); encode text with \
             RWKV.encode first",
        ));
    }
    tokens.extract::<Vec<i64>>().map_err(|_| {
        PyTypeError::new_err("tokens must be a list of ints or a 1-D int32/int64 array")
    })
}

/// Stop strings from `None`, one string or a list of strings.
fn stop_list(stop: Option<&Bound<'_, PyAny>>) -> PyResult<Vec<String>> {
    match stop {
        None => Ok(Vec::new()),
        Some(s) if s.is_none() => Ok(Vec::new()),
        Some(s) => {
            if let Ok(one) = s.extract::<String>() {
                return Ok(vec![one]);
            }
            s.extract::<Vec<String>>()
                .map_err(|_| PyTypeError::new_err("stop must be a string or a list of strings"))
        }
    }
}

#[pymethods]
impl PyRwkv {
    /// Loads an RWKV v4–v7 model (BlinkDL .pth, safetensors, rwkv.cpp .bin; the version and
    /// shapes are read from the weights). ``threads`` worker threads run the matrix products;
    /// ``int8=True`` quantizes the large matrices to int8 after loading. Raises OSError when
    /// the file cannot be read and ValueError when it is not a valid model.
    #[new]
    #[pyo3(signature = (path, threads = 1, int8 = false), text_signature = "(path, threads=1, int8=False)")]
    fn new(py: Python<'_>, path: PathBuf, threads: usize, int8: bool) -> PyResult<Self> {
        if threads == 0 || threads > 256 {
            return Err(PyValueError::new_err(format!(
                "threads must be between 1 and 256, got {threads}"
            )));
        }
        let loaded = py.detach(|| load_model(&path)).map_err(|e| match e {
            echos_rwkv_io::LoadError::Io(..) => PyOSError::new_err(e.to_string()),
            other => value_error(format!("{}: {other}", path.display())),
        })?;
        let mut model = loaded.model;
        if int8 {
            model.quantize_int8();
        }
        let tokenizer = Tokenizer::for_vocab(model.dims.vocab).map_err(value_error)?;
        let state = State::new(&model);
        Ok(PyRwkv {
            start: state.clone(),
            state,
            model,
            tokenizer,
            logits: Vec::new(),
            threads,
            path,
        })
    }

    /// Vocabulary size.
    #[getter]
    fn vocab_size(&self) -> usize {
        self.model.dims.vocab
    }

    /// The architecture version, e.g. "7" or "5.2".
    #[getter]
    fn version(&self) -> &'static str {
        self.model.version.name()
    }

    #[getter]
    fn n_layer(&self) -> usize {
        self.model.dims.n_layer
    }

    #[getter]
    fn n_embd(&self) -> usize {
        self.model.dims.n_embd
    }

    fn __repr__(&self) -> String {
        let d = self.model.dims;
        format!(
            "RWKV(path={:?}, version={}, n_layer={}, n_embd={}, vocab_size={})",
            self.path.display().to_string(),
            self.model.version.name(),
            d.n_layer,
            d.n_embd,
            d.vocab
        )
    }

    /// The model's tokenizer (the RWKV world vocabulary, or bytes for a 256-token model).
    fn encode(&self, text: &str) -> Vec<u32> {
        self.tokenizer.encode(text)
    }

    /// Text of token ids; bytes that are not valid UTF-8 become U+FFFD.
    fn decode(&self, tokens: &Bound<'_, PyAny>) -> PyResult<String> {
        let ids = self.check_tokens(&token_list(tokens)?)?;
        let bytes = self.tokenizer.decode_bytes(&ids).map_err(value_error)?;
        Ok(String::from_utf8_lossy(&bytes).into_owned())
    }

    /// Feeds ``tokens`` (a list of ints or a 1-D int32/int64 array, at most 16,384 per call)
    /// and returns the logits after each one, float32 of shape (len(tokens), vocab_size). The
    /// state advances: a later call continues from here.
    fn forward<'py>(
        &mut self,
        py: Python<'py>,
        tokens: &Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyArray2<f32>>> {
        let ids = self.check_tokens(&token_list(tokens)?)?;
        if ids.is_empty() {
            return Err(PyValueError::new_err(
                "tokens is empty: give at least one token",
            ));
        }
        if ids.len() > MAX_FORWARD_TOKENS {
            return Err(PyValueError::new_err(format!(
                "{} tokens in one call; at most {MAX_FORWARD_TOKENS} (call forward per chunk)",
                ids.len()
            )));
        }
        let vocab = self.model.dims.vocab;
        let all = self
            .run(
                py,
                |me, pool| -> Result<Vec<f32>, echos_rwkv_io::RwkvError> {
                    let block = ids.len().min(256);
                    let mut scratch = Scratch::new(&me.model, block);
                    let mut all = Vec::with_capacity(ids.len() * vocab);
                    for chunk in ids.chunks(block) {
                        all.extend_from_slice(me.model.prefill(
                            &mut me.state,
                            chunk,
                            &mut scratch,
                            pool,
                            true,
                        )?);
                    }
                    me.logits.clear();
                    me.logits.extend_from_slice(&all[all.len() - vocab..]);
                    Ok(all)
                },
            )
            .map_err(value_error)?;
        let rows = ids.len();
        let arr =
            numpy::ndarray::Array2::from_shape_vec((rows, vocab), all).map_err(value_error)?;
        Ok(arr.into_pyarray(py))
    }

    /// Continues ``prompt`` (or, with an empty prompt, the text fed so far) and returns the
    /// generated text. Sampling as rwkv.cpp and ChatRWKV: penalties on the logits, softmax, the
    /// top-p nucleus, at most ``top_k`` candidates, then temperature (0 is greedy). The text
    /// ends at ``max_tokens``, at the end-of-text token, at a token in ``stop_tokens`` or before
    /// the first string of ``stop`` (a string or a list; never part of the result). Every drawn
    /// token is fed back, so the state continues where the text stopped. ``seed`` makes the
    /// draws reproducible on every machine. Settings out of range raise ValueError naming them.
    #[pyo3(signature = (
        prompt = "",
        max_tokens = 100,
        temperature = 1.0,
        top_p = 0.85,
        top_k = None,
        presence_penalty = 0.0,
        frequency_penalty = 0.0,
        penalty_decay = 1.0,
        stop = None,
        stop_tokens = None,
        seed = 42,
    ))]
    #[allow(clippy::too_many_arguments)]
    fn generate(
        &mut self,
        py: Python<'_>,
        prompt: &str,
        max_tokens: usize,
        temperature: f32,
        top_p: f32,
        top_k: Option<usize>,
        presence_penalty: f32,
        frequency_penalty: f32,
        penalty_decay: f32,
        stop: Option<&Bound<'_, PyAny>>,
        stop_tokens: Option<Vec<i64>>,
        seed: u64,
    ) -> PyResult<String> {
        let sampling = Sampling {
            temperature,
            top_p,
            top_k,
            presence_penalty,
            frequency_penalty,
            penalty_decay,
        };
        let mut sampler =
            Sampler::new(sampling, self.model.dims.vocab, seed).map_err(generate_error)?;
        let req = Request {
            max_tokens,
            stop_tokens: self.check_tokens(&stop_tokens.unwrap_or_default())?,
            stop_strings: stop_list(stop)?,
            ban_end_of_text: false,
        };
        generate::StopScan::new(&req.stop_strings).map_err(generate_error)?;
        let prompt_tokens = self.tokenizer.encode(prompt);
        if prompt_tokens.is_empty() && self.logits.is_empty() {
            return Err(PyValueError::new_err(
                "prompt is empty and nothing was fed yet: give a prompt to continue from",
            ));
        }
        let out = self.run(py, |me, pool| {
            let mut scratch = Scratch::new(&me.model, prompt_tokens.len().clamp(1, 64));
            let mut text = String::new();
            let mut logits = std::mem::take(&mut me.logits);
            let result = generate::generate(
                &me.model,
                &mut me.state,
                &mut scratch,
                pool,
                &me.tokenizer,
                &mut sampler,
                &prompt_tokens,
                &mut logits,
                &req,
                |piece: &str| -> Result<(), GenerateError> {
                    text.push_str(piece);
                    Ok(())
                },
            );
            me.logits = logits;
            result.map(|_| text)
        });
        out.map_err(generate_error)
    }

    /// Back to the empty state (as after loading).
    fn reset(&mut self) {
        self.state = self.start.clone();
        self.logits.clear();
    }

    /// Saves the state (safetensors, atomically) for load_state or ``echos rwkv --state-in``.
    fn save_state(&self, path: PathBuf) -> PyResult<()> {
        state_io::save_state(&path, &self.model, &self.state).map_err(|e| match e {
            state_io::StateFileError::Io(..) => PyOSError::new_err(e.to_string()),
            other => value_error(other),
        })
    }

    /// Loads a state saved for this model's shape (another shape raises ValueError). The next
    /// generate needs a prompt: the saved state carries no logits.
    fn load_state(&mut self, path: PathBuf) -> PyResult<()> {
        let state = state_io::load_state(&path, &self.model).map_err(|e| match e {
            state_io::StateFileError::Io(..) => PyOSError::new_err(e.to_string()),
            other => value_error(other),
        })?;
        self.state = state;
        self.logits.clear();
        Ok(())
    }
}
