"""Shared fixtures: small input signals and the location of the shared reference data."""

from __future__ import annotations

import os
import pathlib
import sys

import numpy as np
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]


def shared_data_dir() -> pathlib.Path | None:
    """`$ECHOS_SHARED_DATA`, else `<workspace root>/../shared/data`; None when absent."""
    env = os.environ.get("ECHOS_SHARED_DATA")
    path = pathlib.Path(env) if env else ROOT.parent / "shared" / "data"
    return path if path.is_dir() else None


def require_shared_data(test_name: str) -> pathlib.Path:
    """Skips loudly without the shared data, except under CI where its absence is a failure."""
    path = shared_data_dir()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"shared data missing under CI (set ECHOS_SHARED_DATA): {test_name}")
        print(f"SKIPPED (no shared data): {test_name}", file=sys.stderr)
        pytest.skip(f"SKIPPED (no shared data): {test_name}")
    return path


def cli_path(test_name: str) -> pathlib.Path:
    """The `echos` CLI built from this workspace (`$ECHOS_CLI`, else target/{debug,release})."""
    env = os.environ.get("ECHOS_CLI")
    candidates = [pathlib.Path(env)] if env else [
        ROOT / "target" / "debug" / "echos",
        ROOT / "target" / "release" / "echos",
    ]
    for c in candidates:
        if c.is_file():
            return c
    if os.environ.get("CI"):
        pytest.fail(f"echos CLI not built under CI (cargo build -p echos-cli): {test_name}")
    print(f"SKIPPED (no echos CLI built): {test_name}", file=sys.stderr)
    pytest.skip(f"SKIPPED (no echos CLI built): {test_name}")


@pytest.fixture
def sine() -> np.ndarray:
    """A (400, 1) float64 sine wave: C-contiguous, the zero-copy layout."""
    t = np.arange(400, dtype=np.float64)
    return np.ascontiguousarray(np.sin(0.1 * t)[:, None])


@pytest.fixture
def two_features() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.uniform(-1.0, 1.0, size=(300, 2))
