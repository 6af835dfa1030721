"""Type stubs for the native half of echos (built from crates/echos-py)."""

__version__: str


