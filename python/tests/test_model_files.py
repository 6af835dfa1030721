"""Model files and pickling (one format: the engine's safetensors model file), and determinism
against the `echos` CLI: the same seed gives the same arrays from Python and from the CLI."""

from __future__ import annotations

import pickle
import subprocess

import numpy as np
import pytest

import echos
from conftest import cli_path


def series(n=600, seed=0):
    rng = np.random.default_rng(seed)
    u = rng.uniform(-1, 1, size=(n, 1))
    y = np.hstack([np.roll(u, 1, axis=0), np.roll(u, 3, axis=0) ** 2])
    return u, y


def trained(dtype="float64", **kw):
    u, y = series()
    args = dict(neurons=60, spectral_radius=0.9, leak_rate=0.3, bias=0.0, seed=5, dtype=dtype)
    args.update(kw)
    esn = echos.ESN(**args)
    esn.fit(u[:400], y[:400], washout=100, ridge=1e-6)
    return esn, u[400:]


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_save_load_round_trip_is_bit_identical(tmp_path, dtype):
    esn, u = trained(dtype)
    path = tmp_path / "m.safetensors"
    esn.save(path)
    back = echos.ESN.load(path, dtype=dtype)
    assert back.dtype == dtype and back.neurons == 60 and back.outputs == 2
    np.testing.assert_array_equal(back.state, esn.state)
    np.testing.assert_array_equal(back.readout_weights, esn.readout_weights)
    np.testing.assert_array_equal(back.predict(u), esn.predict(u))
    again = echos.ESN.from_bytes(esn.to_bytes(), dtype=dtype)
    np.testing.assert_array_equal(again.predict(u), back.predict(u))


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_pickle_round_trips(dtype):
    esn, u = trained(dtype)
    back = pickle.loads(pickle.dumps(esn))
    assert back.dtype == dtype
    np.testing.assert_array_equal(back.predict(u), esn.predict(u))
    np.testing.assert_array_equal(back.state, esn.state)


def test_pickled_generator_continues_the_same_closed_loop():
    t = np.arange(700)
    x = np.sin(2 * np.pi * t / 30.0)[:, None]
    esn = echos.ESN(neurons=80, spectral_radius=0.8, leak_rate=1.0, seed=2)
    esn.fit(x[:-1], x[1:], washout=100, ridge=1e-9)
    back = pickle.loads(pickle.dumps(esn))
    np.testing.assert_array_equal(back.run(25), esn.run(25))


def test_pickle_of_untrained_networks():
    fresh = echos.ESN(neurons=30, seed=9, topology="cycle", leak_rate=0.5, dtype="float32")
    back = pickle.loads(pickle.dumps(fresh))
    assert repr(back) == repr(fresh) and back.inputs is None
    x = np.random.default_rng(0).normal(size=(50, 2))
    fresh.update(x[:20])
    back2 = pickle.loads(pickle.dumps(fresh))  # built, state carried, no readout
    np.testing.assert_array_equal(back2.state, fresh.state)
    np.testing.assert_array_equal(back2.update(x[20:]), fresh.update(x[20:]))


def test_untrained_network_cannot_be_saved(tmp_path):
    with pytest.raises(RuntimeError, match="fit"):
        echos.ESN(neurons=10).save(tmp_path / "m.safetensors")


def test_missing_and_corrupt_model_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors"):
        echos.ESN.load(tmp_path / "nope.safetensors")
    esn, _ = trained()
    good = esn.to_bytes()
    cases = {
        "truncated": good[: len(good) // 2],
        "empty": b"",
        "garbage": b"\x00\x01not a model at all" * 10,
        "header only": good[:8],
    }
    for name, data in cases.items():
        p = tmp_path / f"{name.replace(' ', '_')}.safetensors"
        p.write_bytes(data)
        with pytest.raises(ValueError) as info:
            echos.ESN.load(p)
        assert str(p) in str(info.value) or "model" in str(info.value), name
    # A flipped byte in the JSON header makes it invalid JSON or a wrong key.
    bad = bytearray(good)
    bad[12] = ord("#")
    p = tmp_path / "flipped.safetensors"
    p.write_bytes(bytes(bad))
    with pytest.raises(ValueError):
        echos.ESN.load(p)
    with pytest.raises(TypeError):
        echos.ESN.from_bytes("not bytes")
    with pytest.raises(ValueError, match="float32 or float64"):
        echos.ESN.from_bytes(good, dtype="int8")


def test_corrupt_pickles_are_value_errors():
    esn, _ = trained()
    fn, (state,) = esn.__reduce__()
    broken = dict(state, format=99)
    with pytest.raises(ValueError, match="format"):
        fn(broken)
    broken = dict(state, model=b"junk")
    with pytest.raises(ValueError):
        fn(broken)


def _cli(*args):
    exe = cli_path("cli determinism")
    proc = subprocess.run([str(exe), *map(str, args)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc


def test_same_seed_same_arrays_as_the_cli(tmp_path):
    u, y = series()
    np.save(tmp_path / "u.npy", u[:400])
    np.save(tmp_path / "y.npy", y[:400])
    np.save(tmp_path / "test.npy", u[400:])
    _cli("esn", "train", "--input", tmp_path / "u.npy", "--target", tmp_path / "y.npy",
         "--model", tmp_path / "cli.safetensors", "--units", 60, "--spectral-radius", 0.9,
         "--leak-rate", 0.3, "--input-scaling", 1.0, "--bias-scaling", 0.0,
         "--connectivity", 0.1, "--ridge", 1e-6, "--washout", 100, "--seed", 5)
    esn, test = trained()  # the same hyperparameters and seed, trained from Python
    from_cli = echos.ESN.load(tmp_path / "cli.safetensors")
    np.testing.assert_array_equal(from_cli.readout_weights, esn.readout_weights)
    np.testing.assert_array_equal(from_cli.state, esn.state)
    # A Python-trained model run by the CLI gives the arrays Python gives.
    esn.save(tmp_path / "py.safetensors")
    _cli("esn", "run", "--model", tmp_path / "py.safetensors", "--input", tmp_path / "test.npy",
         "--output", tmp_path / "pred.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "pred.npy"), esn.predict(test))


def test_cli_generate_continues_a_python_model_exactly(tmp_path):
    t = np.arange(800)
    x = np.sin(2 * np.pi * t / 30.0)[:, None]
    esn = echos.ESN(neurons=80, spectral_radius=0.8, leak_rate=1.0, seed=2)
    esn.fit(x[:-1], x[1:], washout=100, ridge=1e-9)
    esn.save(tmp_path / "gen.safetensors")
    _cli("esn", "generate", "--model", tmp_path / "gen.safetensors", "--steps", 40,
         "--output", tmp_path / "gen.npy")
    np.testing.assert_array_equal(np.load(tmp_path / "gen.npy"), esn.run(40))


def _sine_generator_data(tmp_path):
    """Jaeger's sine generator: a constant input, the target fed back through W_fb."""
    t = np.arange(1200)
    y = (0.5 * np.sin(t * 0.25))[:, None]
    u = np.zeros_like(y)
    np.save(tmp_path / "u.npy", u)
    np.save(tmp_path / "y.npy", y)
    return u, y


def test_feedback_model_from_the_cli_generates_in_python_as_in_the_cli(tmp_path):
    # Defect: ESN.run(steps) on a CLI --feedback model fed the output back as the input
    # (values in the thousands) instead of through W_fb; the one model driver makes the
    # Python closed loop the CLI's, bit for bit.
    _sine_generator_data(tmp_path)
    _cli("esn", "train", "--input", tmp_path / "u.npy", "--target", tmp_path / "y.npy",
         "--model", tmp_path / "fb.safetensors", "--units", 60, "--feedback",
         "--spectral-radius", 0.8, "--ridge", 1e-8, "--washout", 100, "--seed", 3)
    _cli("esn", "generate", "--model", tmp_path / "fb.safetensors", "--steps", 50,
         "--output", tmp_path / "gen.npy")
    from_cli = np.load(tmp_path / "gen.npy")
    esn = echos.ESN.load(tmp_path / "fb.safetensors")
    ours = esn.run(50)
    np.testing.assert_array_equal(ours, from_cli)
    assert np.abs(ours).max() < 1.0


def test_python_feedback_esn_learns_a_sine_generator(tmp_path):
    u, y = _sine_generator_data(tmp_path)
    esn = echos.ESN(neurons=100, spectral_radius=0.8, bias=0.2, input_scaling=0.0,
                    seed=3, feedback=True, feedback_scaling=1.0)
    esn.fit(u[:1100], y[:1100], washout=100, ridge=1e-9)
    generated = esn.run(100)
    err = np.sqrt(np.mean((generated - y[1100:1200]) ** 2)) / np.std(y)
    assert err < 0.1, err
    # The same model saved and loaded, and run by the CLI, continues identically.
    esn.save(tmp_path / "py-fb.safetensors")
    loaded = echos.ESN.load(tmp_path / "py-fb.safetensors")
    _cli("esn", "generate", "--model", tmp_path / "py-fb.safetensors", "--steps", 30,
         "--output", tmp_path / "cli.npy")
    from_cli = np.load(tmp_path / "cli.npy")
    np.testing.assert_array_equal(loaded.run(30), from_cli)
    np.testing.assert_array_equal(esn.run(30), from_cli)


def test_seed_none_draws_a_fresh_seed_and_reports_it():
    a, b = echos.ESN(neurons=20), echos.ESN(neurons=20)
    assert isinstance(a.seed, int) and a.seed != b.seed
    again = echos.ESN(neurons=20, seed=a.seed)
    x = np.linspace(-1, 1, 50)[:, None]
    np.testing.assert_array_equal(a.update(x), again.update(x))
