"""echos: echo state networks on the echo-os engine (Rust), with a NumPy interface."""

from ._echos import __version__

__all__ = ["__version__"]
