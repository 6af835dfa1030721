"""Datasets, metrics, online readouts and tasks from Python (the figures are in test_figures.py)."""

from __future__ import annotations

import numpy as np
import pytest

import echos
from conftest import require_shared_data

# Reservoir seed of a NARMA10 run with data seed s (crates/echos-host/src/tasks.rs, Narma10Setup::run).
NARMA_RESERVOIR_SEED_XOR = 0x5EED_0000_0000_0000


def test_datasets_shapes_dtypes_and_determinism():
    mg = echos.datasets.mackey_glass(500)
    assert mg.shape == (500, 1) and mg.dtype == np.float64
    assert 0.2 < mg.min() < mg.max() < 1.5  # the attractor's range for tau = 17
    np.testing.assert_array_equal(mg, echos.datasets.mackey_glass(500))
    assert not np.array_equal(mg, echos.datasets.mackey_glass(500, seed=1))
    assert not np.array_equal(mg, echos.datasets.mackey_glass(500, integrator="rk4"))
    u, y = echos.datasets.narma10(300, seed=4)
    assert u.shape == y.shape == (300, 1)
    assert 0.0 <= u.min() and u.max() <= 0.5
    # the NARMA10 recursion, written out: y[t] holds y(t+1)
    yy = np.zeros(301)
    for t in range(9, 300):
        yy[t + 1] = (0.3 * yy[t] + 0.05 * yy[t] * yy[t - 9 : t + 1].sum()
                     + 1.5 * u[t - 9, 0] * u[t, 0] + 0.1)
    np.testing.assert_allclose(y[:, 0], yy[1:], rtol=1e-12, atol=1e-15)
    lz = echos.datasets.lorenz(200)
    assert lz.shape == (200, 3) and np.isfinite(lz).all()


def test_dataset_arguments_are_checked():
    with pytest.raises(ValueError, match="n must be"):
        echos.datasets.mackey_glass(0)
    with pytest.raises(ValueError, match="tau"):
        echos.datasets.mackey_glass(10, tau=-1.0)
    with pytest.raises(ValueError, match="integrator"):
        echos.datasets.mackey_glass(10, integrator="midpoint")
    with pytest.raises(ValueError, match="seed"):
        echos.datasets.narma10(10, seed=-2)
    with pytest.raises(TypeError):
        echos.datasets.narma10("10")
    with pytest.raises(ValueError, match="3 values"):
        echos.datasets.lorenz(10, start=(1.0, 2.0))
    with pytest.raises(OSError):
        echos.datasets.santafe_laser("/nonexistent/shared/data")
    x = np.arange(10.0)[:, None]
    xtr, xte, ytr, yte = echos.datasets.to_forecasting(x, forecast=2, test_size=3)
    np.testing.assert_array_equal(yte, x[-3:])
    np.testing.assert_array_equal(xte, x[-5:-2])
    with pytest.raises(ValueError, match="forecast"):
        echos.datasets.to_forecasting(x, forecast=0)


def test_santafe_laser_from_shared_data():
    data = require_shared_data("test_santafe_laser_from_shared_data")
    s = echos.datasets.santafe_laser(data)
    assert s.shape == (10093, 1) and s.dtype == np.float64
    np.testing.assert_array_equal(s, np.load(data / "timeseries" / "santafe_laser.npy"))


def test_metrics_on_known_values():
    y = np.array([[1.0], [2.0], [3.0], [4.0]])
    p = np.array([[1.0], [2.0], [3.0], [6.0]])
    assert echos.mse(y, p) == 1.0
    assert echos.rmse(y, p) == 1.0
    assert echos.nrmse(y, p) == pytest.approx(1.0 / np.std(y), rel=1e-15)
    assert echos.r2(y, p) == pytest.approx(1.0 - 4.0 / 5.0, rel=1e-15)
    assert echos.nrmse(y[:, 0], p[:, 0]) == echos.nrmse(y, p)  # 1-D accepted too
    with pytest.raises(ValueError, match="constant"):
        echos.nrmse(np.ones((4, 1)), p)


def test_memory_capacity_metric_of_a_perfect_and_a_useless_recall():
    rng = np.random.default_rng(0)
    u = rng.uniform(-0.8, 0.8, size=(2000, 1))
    perfect = np.hstack([np.roll(u, k, axis=0) for k in range(1, 11)])
    assert echos.memory_capacity(u, perfect) == pytest.approx(10.0, abs=1e-12)
    noise = rng.normal(size=(2000, 10))
    assert echos.memory_capacity(u, noise) < 0.1
    with pytest.raises(ValueError, match="recall"):
        echos.memory_capacity(u, noise[:100])


def test_online_readouts_learn_what_ridge_learns():
    rng = np.random.default_rng(3)
    u = rng.uniform(-0.5, 0.5, size=(3000, 1))
    y = np.roll(u, 1, axis=0)
    ridge = echos.ESN(neurons=40, spectral_radius=0.5, leak_rate=1.0, seed=8)
    ridge.fit(u[:2000], y[:2000], washout=50, ridge=1e-8)
    rls = echos.ESN(neurons=40, spectral_radius=0.5, leak_rate=1.0, seed=8)
    apriori = rls.fit_online(u[:2000], y[:2000], "rls", forgetting=1.0, washout=50)
    assert apriori.shape == (2000, 1)
    # a-priori errors shrink as RLS learns
    assert echos.nrmse(y[1500:2000], apriori[1500:]) < 0.2 * echos.nrmse(y[50:150], apriori[50:150])
    # Near-collinear states leave the weights themselves ill-determined; the maps agree.
    p_rls, p_ridge = rls.predict(u[2000:]), ridge.predict(u[2000:])
    assert echos.nrmse(y[2000:], p_rls) < 0.05
    assert echos.nrmse(p_ridge, p_rls) < 0.05
    lms = echos.ESN(neurons=40, spectral_radius=0.5, leak_rate=1.0, seed=8)
    lms.fit_online(u[:2000], y[:2000], "lms", learning_rate=0.05)
    lms.fit_online(u[:2000], y[:2000], "lms", learning_rate=0.05)  # keeps learning
    assert echos.nrmse(y[2000:], lms.predict(u[2000:])) < 0.5
    with pytest.raises(ValueError, match="rls"):
        lms.fit_online(u, y, "sgd")
    with pytest.raises(ValueError, match="forgetting"):
        rls.fit_online(u, y, "rls", forgetting=1.5)


def test_narma10_through_the_python_api_reproduces_the_task_exactly():
    report = echos.tasks.run("narma10", units=100, seed=3, runs=1)
    s = report["setup"]
    n_fit = s["washout"] + s["train"]
    u, y = echos.datasets.narma10(n_fit + s["test"], seed=3)
    esn = echos.ESN(
        neurons=s["units"], spectral_radius=s["spectral_radius"], leak_rate=s["leak_rate"],
        input_scaling=s["input_scaling"], connectivity=s["connectivity"], bias=s["bias_scaling"],
        seed=3 ^ NARMA_RESERVOIR_SEED_XOR, input_to_readout=s["input_features"],
    )
    esn.fit(u[:n_fit], y[:n_fit], washout=s["washout"], ridge=s["ridge"], solver="qr")
    nrmse = echos.nrmse(y[n_fit:], esn.predict(u[n_fit:]))
    assert nrmse == report["nrmse"]


def test_qr_and_normal_solvers_agree_where_both_are_accurate():
    u, y = echos.datasets.narma10(1500, seed=1)
    a = echos.ESN(neurons=50, seed=4).fit(u[:1000], y[:1000], washout=100, ridge=1e-4)
    b = echos.ESN(neurons=50, seed=4).fit(u[:1000], y[:1000], washout=100, ridge=1e-4,
                                          solver="qr")
    np.testing.assert_allclose(a.readout_weights, b.readout_weights, rtol=1e-6, atol=1e-9)
    np.testing.assert_array_equal(a.state, b.state)
    with pytest.raises(ValueError, match="float64"):
        echos.ESN(neurons=10, dtype="float32").fit(u, y, solver="qr")
    with pytest.raises(ValueError, match="solver"):
        echos.ESN(neurons=10).fit(u, y, solver="svd")


def test_task_arguments_are_checked():
    with pytest.raises(ValueError, match="unknown task"):
        echos.tasks.run("xor")
    with pytest.raises(ValueError, match="units"):
        echos.tasks.run("narma10", units=0)
    with pytest.raises(ValueError, match="runs"):
        echos.tasks.run("narma10", runs=-1)
