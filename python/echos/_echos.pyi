"""Type stubs for the native half of echos (built from crates/echos-py).

Arrays are shaped (timesteps, features) as in ReservoirPy. Inputs must be numpy.ndarray of dtype
float32 or float64; a C-contiguous array of the ESN's dtype is read in place (no copy), any other
layout or the other float dtype is converted first. NaN or infinite values raise ValueError.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Literal, Optional, Tuple, Union

import numpy as np
import numpy.typing as npt

__version__: str

_FloatArray = npt.NDArray[np.floating[Any]]
_DType = Union[Literal["float32", "float64"], type, np.dtype[Any]]
_PathLike = Union[str, "os.PathLike[str]"]
_Kernel = Literal["exact", "fast", "scalar", "avx2", "avx512"]

class ESN:
    """An echo state network: a random recurrent reservoir plus a linear readout.

    State update (leaky integrator, per time step t):
        x(t) = (1 - leak_rate) x(t-1) + leak_rate f(W x(t-1) + W_in u(t) + b)
    with W scaled to `spectral_radius`, W_in ~ U(-1, 1) * input_scaling and b ~ U(-1, 1) * bias.
    The readout is y(t) = W_out [1; x(t)] (or [1; u(t); x(t)] with input_to_readout=True).

    Step kernel: "exact" (default) is the model path (libm tanh, portable summation order,
    float32 or float64). "fast" (this CPU's best: resolved at once, `esn.kernel` shows which),
    "scalar", "avx2" or "avx512" run the engine's fused float32 kernel (SELL-16 sparse or dense,
    rational tanh, tanh activation only): several times faster, states within a few float32
    ulps of the exact path, bit-identical for the same seed and variant (and, for sparse
    reservoirs, across variants). Fused kernels default to dtype "float32"; "float64" with
    them is a ValueError, as are unknown names and variants this CPU lacks.

    Topology: "random" (round(connectivity * neurons) random in-neighbours per unit), "cycle",
    "delay_line", "cycle_jumps" (a cycle plus bidirectional jumps of `jump` units), or "block":
    a random sparse reservoir whose units come in groups of `block_size` (1 <= block_size <=
    neurons, default 16) sharing their in-neighbour columns, each weight drawn independently.
    Same connectivity and weight distribution as "random"; the fused kernels step it without
    gathers (about 7x the random reservoir's steps/s from Python at 1000 neurons). Out-of-range sizes are
    ValueErrors naming the bound; a non-int is a TypeError. `jump` (default 2) and
    `block_size` (default 16) belong to their topology: giving either with another topology is
    a ValueError.

    The reservoir is built on the first call that sees data (or at once when `inputs` is given)
    and really computes in `dtype`. Weights are a deterministic function of the hyperparameters
    and `seed` (the same as the `echos` CLI's for the same values).

    ReservoirPy names: neurons = units, spectral_radius = sr, leak_rate = lr,
    connectivity = rc_connectivity, bias = bias scaling, input_to_readout = ESN(input_to_readout).
    """

    def __init__(
        self,
        neurons: int = 100,
        spectral_radius: float = 0.9,
        leak_rate: float = 1.0,
        input_scaling: float = 1.0,
        connectivity: float = 0.1,
        bias: float = 1.0,
        activation: Literal["tanh", "sigmoid", "relu", "identity"] = "tanh",
        seed: int = 42,
        dtype: Optional[_DType] = None,
        *,
        inputs: Optional[int] = None,
        input_connectivity: float = 1.0,
        topology: Literal["random", "cycle", "delay_line", "cycle_jumps", "block"] = "random",
        jump: int | None = None,
        block_size: int | None = None,
        distribution: Literal["normal", "uniform", "bernoulli"] = "normal",
        input_to_readout: bool = False,
        kernel: _Kernel = "exact",
    ) -> None: ...
    def update(self, x: _FloatArray) -> np.ndarray:
        """Runs the reservoir over x (timesteps, features) from its current state; returns all
        states (timesteps, neurons) in the ESN's dtype. The state carries over to the next call.
        One native call for the whole sequence with the GIL released; input of the ESN's dtype
        is read in place, other input (e.g. float64 into a fused float32 ESN) is converted once
        per call. ReservoirPy: Reservoir.run(x)."""
    def fit(
        self,
        x: _FloatArray,
        y: _FloatArray,
        washout: int = 0,
        ridge: float = 1e-6,
        *,
        solver: Literal["normal", "qr"] = "normal",
    ) -> ESN:
        """Ridge-regression readout on the states of a run over x (from the current state),
        dropping the first `washout` steps; the bias column is not regularised. Returns self.
        solver="normal": the engine's streaming normal equations (Cholesky); "qr": Householder
        QR on all states (float64 only), accurate for tiny ridge.
        Afterwards the state is where the run ended and the last target of y is the next
        closed-loop input. ReservoirPy: ESN.fit(x, y, warmup=washout) with Ridge(ridge)."""
    def fit_online(
        self,
        x: _FloatArray,
        y: _FloatArray,
        readout: Literal["rls", "lms"] = "rls",
        *,
        forgetting: float = 1.0,
        delta: float = 1e-2,
        learning_rate: float = 0.01,
        washout: int = 0,
    ) -> np.ndarray:
        """Online readout training, one step at a time: recursive least squares (forgetting
        factor in (0, 1], P(0) = I/delta) or least mean squares (learning_rate). Keeps learning
        across calls with the same settings; returns the a-priori predictions (before each
        step's update), shaped like y. ReservoirPy: RLS / LMS nodes' train()."""
    def predict(self, x: _FloatArray) -> np.ndarray:
        """Readout outputs (timesteps, outputs) of a run driven by x. ReservoirPy: ESN.run(x)."""
    def run(self, steps: int, initial: Optional[_FloatArray] = None) -> np.ndarray:
        """Closed loop (generative mode): each output is fed back as the next input, for `steps`
        steps, starting from `initial` (features,) or the last output/target. Needs as many
        outputs as inputs. Returns (steps, outputs)."""
    def reset(self) -> None:
        """Sets the state to zeros; weights and readout are kept."""
    @property
    def state(self) -> np.ndarray:
        """The current reservoir state (neurons,), a copy; assignable."""
    @state.setter
    def state(self, value: _FloatArray) -> None: ...
    @property
    def neurons(self) -> int: ...
    @property
    def inputs(self) -> Optional[int]:
        """Input features, or None before the reservoir has seen data."""
    @property
    def outputs(self) -> Optional[int]:
        """Readout outputs, or None before training."""
    @property
    def dtype(self) -> Literal["float32", "float64"]: ...
    @property
    def spectral_radius(self) -> float: ...
    @property
    def leak_rate(self) -> float: ...
    @property
    def input_scaling(self) -> float: ...
    @property
    def connectivity(self) -> float: ...
    @property
    def bias(self) -> float: ...
    @property
    def activation(self) -> str: ...
    @property
    def seed(self) -> int: ...
    @property
    def topology(self) -> Literal["random", "cycle", "delay_line", "cycle_jumps", "block"]: ...
    @property
    def jump(self) -> int:
        """Jump size of topology "cycle_jumps" (2, unused, otherwise)."""
    @property
    def block_size(self) -> int:
        """Units per group of topology "block" (16, unused, otherwise)."""
    @property
    def kernel(self) -> Literal["exact", "scalar", "avx2", "avx512"]:
        """The step kernel that runs ("fast" already resolved to this CPU's variant)."""
    @property
    def readout_weights(self) -> Optional[np.ndarray]:
        """W_out, (outputs, 1 + features) float64 with the bias in column 0; None before fit."""
    def save(self, path: _PathLike) -> None:
        """Writes the trained network to a model file (safetensors + JSON metadata,
        docs/model-format.md), atomically: the file the `echos` CLI reads."""
    @classmethod
    def load(cls, path: _PathLike, dtype: Optional[_DType] = None) -> ESN:
        """Reads a model file from `save` or the CLI, with the step kernel it was saved with
        (dtype defaults to float32 for a fused kernel, float64 otherwise). FileNotFoundError/
        OSError when it cannot be read; ValueError when it is corrupt, truncated, not an echos
        model, or names a kernel variant this CPU lacks."""
    def to_bytes(self) -> bytes:
        """The model file's bytes."""
    @classmethod
    def from_bytes(cls, data: bytes, dtype: Optional[_DType] = None) -> ESN: ...
    def __reduce__(self) -> Tuple[Any, Tuple[Dict[str, Any]]]: ...

class RWKV:
    """An RWKV v4–v7 model (BlinkDL .pth, safetensors or rwkv.cpp .bin) with one recurrent
    state that every call advances; `reset()` starts over.

    Generation samples as rwkv.cpp and ChatRWKV do: presence/frequency penalties on the logits,
    softmax, the top-p nucleus, at most `top_k` candidates, then temperature (0 is greedy).
    The GIL is released while the model runs.
    """

    def __init__(self, path: _PathLike, threads: int = 1, int8: bool = False) -> None: ...
    @property
    def vocab_size(self) -> int: ...
    @property
    def version(self) -> str: ...
    @property
    def n_layer(self) -> int: ...
    @property
    def n_embd(self) -> int: ...
    def encode(self, text: str) -> list[int]: ...
    def decode(self, tokens: Union[list[int], npt.NDArray[np.integer[Any]]]) -> str: ...
    def forward(
        self, tokens: Union[list[int], npt.NDArray[np.integer[Any]]]
    ) -> npt.NDArray[np.float32]:
        """Logits after each token, float32 (len(tokens), vocab_size); at most 16,384 tokens."""
    def generate(
        self,
        prompt: str = "",
        max_tokens: int = 100,
        temperature: float = 1.0,
        top_p: float = 0.85,
        top_k: Optional[int] = None,
        presence_penalty: float = 0.0,
        frequency_penalty: float = 0.0,
        penalty_decay: float = 1.0,
        stop: Union[None, str, list[str]] = None,
        stop_tokens: Optional[list[int]] = None,
        seed: int = 42,
    ) -> str:
        """Continue `prompt` (or the text fed so far); stop strings are never part of the result."""
    def reset(self) -> None: ...
    def save_state(self, path: _PathLike) -> None: ...
    def load_state(self, path: _PathLike) -> None: ...

def mse(y_true: _FloatArray, y_pred: _FloatArray) -> float:
    """Mean squared error, all outputs pooled."""

def rmse(y_true: _FloatArray, y_pred: _FloatArray) -> float:
    """Root mean squared error."""

def nrmse(y_true: _FloatArray, y_pred: _FloatArray) -> float:
    """RMSE / population standard deviation of y_true (ReservoirPy's default divides by
    max - min instead)."""

def r2(y_true: _FloatArray, y_pred: _FloatArray) -> float:
    """Coefficient of determination 1 - SSE/SST."""

def memory_capacity(u: _FloatArray, recall: _FloatArray) -> float:
    """Jaeger's linear memory capacity sum_k r^2(u(t-k), recall[t, k-1]) for k = 1..max_delay,
    with recall shaped (T, max_delay); the first max_delay steps are skipped."""

def _input_copies() -> int:
    """Inputs converted or copied since import (a diagnostic for the zero-copy path)."""

def _esn_from_pickle(state: Dict[str, Any]) -> ESN: ...
def _mackey_glass(
    n: int,
    tau: float,
    beta: float,
    gamma: float,
    exponent: float,
    dt: float,
    subsample: int,
    integrator: str,
    discard: int,
    seed: int,
) -> np.ndarray: ...
def _narma10(n: int, seed: int) -> Tuple[np.ndarray, np.ndarray]: ...
def _lorenz(n: int, dt: float, start: list[float]) -> np.ndarray: ...
def _santafe(shared_data: _PathLike) -> np.ndarray: ...
def _run_task(
    name: str,
    units: Optional[int],
    seed: int,
    runs: Optional[int],
    shared_data: Optional[str],
) -> str: ...

# Event-camera files (documented in echos/events.py). Event words: 2 uint64 per event, the
# engine's DvsEvent layout (t; x | y << 16 | p << 32); triggers: (n, 3) uint64 [t, channel, value].
def _events_read(path: str) -> Tuple[np.ndarray, np.ndarray, Dict[str, Any]]:
    """A whole event file: (event words, triggers, header dict)."""

class _EventStream:
    """An event file decoded chunk by chunk (at most `chunk_events` events per chunk)."""
    def __init__(self, path: str, chunk_events: int) -> None: ...
    def next_chunk(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        """The next chunk's (event words, triggers), or None at the end of the file."""
    def header(self) -> Optional[Dict[str, Any]]: ...

def _events_write(path: str, words: np.ndarray, width: int, height: int, evt2: bool) -> int:
    """Writes event words to `path` (format by extension); returns the events written."""

def _events_info(path: str) -> Dict[str, Any]:
    """The summary `echos events info --json` prints."""

def _events_encode(
    words: np.ndarray,
    repr: str,
    bin_us: int,
    grid: Tuple[int, int],
    width: int,
    height: int,
    merge_polarity: bool,
    tau_us: float,
    bins: int,
) -> np.ndarray:
    """Time bins of events through an encoder: float64 (bins, features)."""

class _RtRegion:
    """A hosted-runtime shared region, mapped read-only (echos.rt)."""
    @property
    def path(self) -> str: ...
    def header_json(self) -> str:
        """The region header as JSON text."""
    def state_location(self) -> Tuple[int, int, int, int]:
        """(state byte offset, units, output byte offset, outputs) inside the file."""
    def owner_running(self) -> bool: ...
    def snapshot(self) -> Tuple[Dict[str, Any], np.ndarray, np.ndarray]:
        """A consistent seqlock copy: (counters, state, output)."""
    def timing_json(self) -> str:
        """`echos rt serve`'s /timing answer as JSON text."""

def _rt_attach(name: str) -> _RtRegion:
    """Maps /dev/shm/echos.NAME read-only; ValueError when missing or of another layout."""
