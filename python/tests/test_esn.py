"""echos.ESN from Python: shapes, dtypes, state handling, determinism, zero-copy and the GIL."""

from __future__ import annotations

import threading

import numpy as np
import pytest

import echos
from echos import _echos


def make(**kw) -> echos.ESN:
    args = dict(neurons=50, spectral_radius=0.9, leak_rate=0.5, seed=3)
    args.update(kw)
    return echos.ESN(**args)


def test_update_returns_states_of_shape_timesteps_by_neurons(sine):
    esn = make()
    states = esn.update(sine)
    assert isinstance(states, np.ndarray)
    assert states.shape == (400, 50)
    assert states.dtype == np.float64
    assert states.flags["C_CONTIGUOUS"]
    assert np.all(np.abs(states) <= 1.0)  # tanh reservoir, leaky average of values in [-1, 1]
    np.testing.assert_array_equal(esn.state, states[-1])
    assert esn.neurons == 50 and esn.inputs == 1


def test_update_carries_state_between_calls_and_reset_clears_it(sine):
    esn = make()
    whole = esn.update(sine)
    esn.reset()
    assert not esn.state.any()
    first = esn.update(sine[:150])
    second = esn.update(sine[150:])
    np.testing.assert_array_equal(np.vstack([first, second]), whole)


def test_state_setter_validates_and_is_used(sine):
    esn = make()
    esn.update(sine[:10])
    s = esn.state.copy()
    after = esn.update(sine[10:20])
    esn.state = s
    np.testing.assert_array_equal(esn.update(sine[10:20]), after)
    with pytest.raises(ValueError, match="50"):
        esn.state = np.zeros(49)
    with pytest.raises(ValueError, match="NaN"):
        esn.state = np.full(50, np.nan)


def test_same_seed_same_arrays_other_seed_other_arrays(two_features):
    a = make(seed=11).update(two_features)
    b = make(seed=11).update(two_features)
    c = make(seed=12).update(two_features)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_float32_really_computes_in_float32(sine):
    s64 = make(dtype="float64").update(sine)
    s32 = make(dtype=np.float32).update(sine.astype(np.float32))
    assert s32.dtype == np.float32
    assert make(dtype="float32").dtype == "float32"
    # Same reservoir, so close; but computed in f32, so not the f64 trajectory rounded at the end.
    np.testing.assert_allclose(s32, s64, atol=1e-4)
    assert not np.array_equal(s32, s64.astype(np.float32))


def test_zero_copy_when_dtype_and_layout_allow(sine):
    esn64, esn32 = make(), make(dtype="float32")
    x32 = sine.astype(np.float32)
    esn64.update(sine[:5])
    esn32.update(x32[:5])
    before = _echos._input_copies()
    esn64.update(sine)
    esn32.update(x32)
    assert _echos._input_copies() == before, "contiguous input of the ESN's dtype was copied"
    esn64.update(x32)  # float32 into a float64 reservoir: converted, so copied
    assert _echos._input_copies() == before + 1


def test_non_contiguous_and_fortran_inputs_give_the_same_states(two_features):
    wide = np.zeros((300, 4))
    wide[:, ::2] = two_features
    strided = wide[:, ::2]
    fortran = np.asfortranarray(two_features)
    assert not strided.flags["C_CONTIGUOUS"] and not fortran.flags["C_CONTIGUOUS"]
    ref = make().update(two_features)
    np.testing.assert_array_equal(make().update(strided), ref)
    np.testing.assert_array_equal(make().update(fortran), ref)
    reversed_rows = two_features[::-1]
    np.testing.assert_array_equal(
        make().update(reversed_rows), make().update(np.ascontiguousarray(reversed_rows))
    )


def test_fit_predict_learns_a_delayed_copy():
    rng = np.random.default_rng(0)
    u = rng.uniform(-0.5, 0.5, size=(2000, 1))
    y = np.roll(u, 2, axis=0)
    esn = make(neurons=100, spectral_radius=0.5, input_scaling=0.5, leak_rate=1.0)
    ret = esn.fit(u[:1500], y[:1500], washout=100, ridge=1e-8)
    assert ret is esn  # chainable like ReservoirPy's fit
    assert esn.outputs == 1
    pred = esn.predict(u[1500:])
    assert pred.shape == (500, 1) and pred.dtype == np.float64
    assert echos.nrmse(y[1500:], pred) < 0.05


def test_run_closed_loop_generates_a_sine():
    t = np.arange(1200)
    x = np.sin(2 * np.pi * t / 40.0)[:, None]
    esn = make(neurons=100, spectral_radius=0.8, leak_rate=1.0, input_scaling=0.5)
    esn.fit(x[:-1][:1000], x[1:][:1000], washout=100, ridge=1e-9)
    gen = esn.run(100)
    assert gen.shape == (100, 1)
    # fit ended at input x[999]; the first generated output predicts x[1001]
    truth = x[1001:1101]
    assert echos.nrmse(truth, gen) < 0.1
    with pytest.raises(ValueError, match="steps"):
        esn.run(0)


def test_run_closed_loop_from_an_explicit_initial_input():
    t = np.arange(1100)
    x = np.sin(2 * np.pi * t / 40.0)[:, None]
    esn = make(neurons=100, spectral_radius=0.8, leak_rate=1.0, input_scaling=0.5)
    esn.fit(x[:-1][:1000], x[1:][:1000], washout=100, ridge=1e-9)
    a = esn.run(20)
    esn.reset()
    esn.update(x[:1000])  # the inputs fit saw, from the same zero state
    b = esn.run(20, initial=x[1000])  # fit leaves the last target, x[1000], as the next input
    np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)


def test_gil_is_released_during_long_runs():
    esn = make(neurons=400, connectivity=0.2)
    x = np.random.default_rng(1).uniform(-1, 1, size=(10_000, 1))
    esn.update(x[:10])
    count = 0
    done = threading.Event()

    def work():
        esn.update(x)
        done.set()

    th = threading.Thread(target=work)
    th.start()
    while not done.is_set():
        # A getter needs a shared borrow of the ESN, which fails exactly while the worker is
        # inside update(): each failure is this thread running Python during the call, which
        # it can only do if update() released the GIL. (Counting loop turns alone would also
        # count the turns before the call started.)
        try:
            esn.neurons
        except RuntimeError:
            count += 1
    th.join()
    assert count > 100, f"main thread ran only {count} times while update() ran"


def test_threads_running_separate_esns_get_the_serial_results(two_features):
    serial = [make(seed=s).update(two_features) for s in range(4)]
    results: list = [None] * 4

    def work(i):
        results[i] = make(seed=i).update(two_features)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    for a, b in zip(serial, results):
        np.testing.assert_array_equal(a, b)


def test_repr_names_the_hyperparameters():
    r = repr(make())
    assert "ESN(" in r and "neurons=50" in r and "spectral_radius=0.9" in r


def test_one_esn_from_two_threads_is_an_error_not_a_race():
    esn = make(neurons=300, connectivity=0.2)
    x = np.random.default_rng(2).uniform(-1, 1, size=(30_000, 1))
    esn.update(x[:5])
    errors: list = []
    started = threading.Event()

    def long_run():
        started.set()
        esn.update(x)

    th = threading.Thread(target=long_run)
    th.start()
    started.wait()
    hits = 0
    while th.is_alive():
        try:
            esn.update(x[:1])
        except RuntimeError as e:  # the borrow held by the running update
            errors.append(str(e))
            hits += 1
            break
        except Exception as e:  # noqa: BLE001 - anything else is a bug
            errors.append(repr(e))
            break
    th.join()
    assert hits == 1 and all("borrow" in e.lower() for e in errors), errors
