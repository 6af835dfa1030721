"""echos: echo state networks on the echo-os engine (Rust), with a NumPy interface.

The reservoir, readouts and metrics run in the engine (crates/echos-core); this package adds
NumPy plumbing (zero-copy where the layout allows) and a ReservoirPy-like vocabulary.
"""

from ._echos import ESN, __version__, memory_capacity, mse, nrmse, r2, rmse

__all__ = ["ESN", "__version__", "memory_capacity", "mse", "nrmse", "r2", "rmse"]
