"""Bad input from Python: every case raises a Python exception with a clear message, never a crash."""

from __future__ import annotations

import numpy as np
import pytest

import echos


def esn(**kw):
    args = dict(neurons=20, seed=1)
    args.update(kw)
    return echos.ESN(**args)


@pytest.mark.parametrize(
    "kwargs, exc, pattern",
    [
        (dict(neurons=0), ValueError, "neurons"),
        (dict(neurons=-3), ValueError, "neurons"),
        (dict(neurons="10"), TypeError, "neurons"),
        (dict(neurons=2.5), TypeError, "neurons"),
        (dict(spectral_radius=float("nan")), ValueError, "spectral"),
        (dict(spectral_radius=-1.0), ValueError, "spectral"),
        (dict(leak_rate=0.0), ValueError, "leak"),
        (dict(leak_rate=1.5), ValueError, "leak"),
        (dict(connectivity=0.0), ValueError, "connectivity"),
        (dict(connectivity=2.0), ValueError, "connectivity"),
        (dict(input_scaling=float("inf")), ValueError, "input"),
        (dict(activation="softmax"), ValueError, "softmax"),
        (dict(activation=3), TypeError, "activation"),
        (dict(dtype="int8"), ValueError, "float32 or float64"),
        (dict(dtype=np.int32), ValueError, "float32 or float64"),
        (dict(seed=-1), ValueError, "seed"),
        (dict(seed="a"), TypeError, "seed"),
    ],
)
def test_bad_hyperparameters(kwargs, exc, pattern):
    with pytest.raises(exc, match=pattern):
        e = esn(**kwargs)
        e.update(np.zeros((3, 1)))  # configuration is checked on build, at the latest here


@pytest.mark.parametrize(
    "x, exc, pattern",
    [
        ([[1.0], [2.0]], TypeError, "numpy.ndarray"),
        (np.zeros(10), ValueError, r"reshape\(-1, 1\)"),
        (np.zeros((2, 3, 1)), ValueError, "shape"),
        (np.zeros((0, 1)), ValueError, "empty"),
        (np.zeros((5, 0)), ValueError, "empty"),
        (np.zeros((5, 1), dtype=np.int64), TypeError, "int64|<i8"),
        (np.zeros((5, 1), dtype=np.complex128), TypeError, "float32 or float64"),
        (np.array([[0.0], [np.nan]]), ValueError, "row 1, column 0"),
        (np.array([[0.0, np.inf]]), ValueError, "row 0, column 1"),
        (np.array([[1e300]]).astype(np.float64), None, None),
    ],
)
def test_bad_sequences(x, exc, pattern):
    e = esn()
    if exc is None:  # huge but finite: fine in float64
        assert e.update(x).shape == (1, 20)
        return
    with pytest.raises(exc, match=pattern):
        e.update(x)


def test_float64_overflowing_float32_is_reported():
    with pytest.raises(ValueError, match="float32"):
        esn(dtype="float32").update(np.array([[1e300]]))


def test_feature_count_must_match_the_built_reservoir():
    e = esn()
    e.update(np.zeros((4, 2)))
    with pytest.raises(ValueError, match="2 features"):
        e.update(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="2 features"):
        esn(inputs=2).update(np.zeros((4, 1)))


def test_fit_argument_checks():
    e = esn()
    x, y = np.zeros((50, 1)), np.zeros((50, 1))
    with pytest.raises(ValueError, match="rows"):
        e.fit(x, y[:40])
    with pytest.raises(ValueError, match="washout"):
        e.fit(x, y, washout=50)
    with pytest.raises(ValueError, match="ridge"):
        e.fit(x, y, ridge=-1.0)
    with pytest.raises(ValueError, match="ridge"):
        e.fit(x, y, ridge=float("nan"))
    with pytest.raises(TypeError):
        e.fit(x, y, washout="10")
    with pytest.raises(ValueError, match="washout"):
        e.fit(x, y, washout=-1)
    with pytest.raises(ValueError, match=r"row 3"):
        bad = y.copy()
        bad[3, 0] = np.nan
        e.fit(x, bad)


def test_use_before_fit_is_a_clear_error():
    e = esn()
    with pytest.raises(RuntimeError, match="fit"):
        e.predict(np.zeros((3, 1)))
    with pytest.raises(RuntimeError, match="fit"):
        e.run(5)


def test_closed_loop_needs_outputs_equal_to_inputs():
    e = esn()
    e.fit(np.random.default_rng(0).normal(size=(100, 2)), np.zeros((100, 1)))
    with pytest.raises(ValueError, match="closed loop"):
        e.run(5)
    one = esn()
    one.fit(np.random.default_rng(0).normal(size=(100, 1)), np.zeros((100, 1)))
    with pytest.raises(ValueError, match="initial"):
        one.run(5, initial=np.zeros(3))
    with pytest.raises(ValueError, match="NaN"):
        one.run(5, initial=np.array([np.nan]))
    with pytest.raises(TypeError, match="initial"):
        one.run(5, initial=[0.0])


def test_metrics_reject_mismatched_shapes_and_nan():
    with pytest.raises(ValueError, match="shape"):
        echos.nrmse(np.zeros((5, 1)), np.zeros((4, 1)))
    with pytest.raises(ValueError, match="NaN"):
        echos.nrmse(np.array([[0.0], [np.nan]]), np.zeros((2, 1)))
    with pytest.raises(TypeError):
        echos.mse("a", np.zeros((2, 1)))


def test_sizes_the_machine_cannot_hold_are_memory_errors_not_aborts():
    with pytest.raises(MemoryError, match="GiB"):
        esn(neurons=150_000, connectivity=0.1).update(np.zeros((1, 1)))
    with pytest.raises(ValueError, match="units"):
        esn(neurons=100_000_000).update(np.zeros((1, 1)))
    e = esn()
    e.fit(np.zeros((30, 1)) + np.arange(30)[:, None] / 30, np.arange(30.0)[:, None])
    with pytest.raises(MemoryError, match="output"):
        e.run(10**11)
    big = esn(neurons=120_000, topology="cycle")  # O(N) to build, but XᵀX would be 107 GiB
    x = np.random.default_rng(0).normal(size=(3, 1))
    with pytest.raises(MemoryError, match="ridge"):
        big.fit(x, x)
    with pytest.raises(MemoryError, match="online"):
        big.fit_online(x, x)
