"""echos: echo state networks on the echo-os engine (Rust), with a NumPy interface.

The reservoir, readouts, metrics, datasets and tasks run in the engine (crates/echos-core and
crates/echos-host); this package adds NumPy plumbing (zero-copy where the layout allows) and a
ReservoirPy-like vocabulary, and RWKV v4–v7 models (`echos.RWKV`). See docs/python.md.
"""

from . import datasets, events, rt, tasks
from ._echos import ESN, RWKV, __version__, memory_capacity, mse, nrmse, r2, rmse

__all__ = [
    "ESN",
    "RWKV",
    "__version__",
    "datasets",
    "events",
    "memory_capacity",
    "mse",
    "nrmse",
    "r2",
    "rmse",
    "rt",
    "tasks",
]
