"""The block-sparse topology from Python (`ESN(topology="block", block_size=...)`): typed
errors for bad sizes, the fused block step against the exact path, determinism, reporting
(repr, getters) and save/load/pickle; plus the whole-sequence open-loop path (`update`,
`predict` run the engine's `Esn::run_into`) against the readout applied to the states."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

import echos
from test_kernels import available, drive, trained


def block(kernel="fast", **kw):
    args = dict(neurons=200, spectral_radius=0.9, leak_rate=0.3, connectivity=0.1, seed=11,
                topology="block")
    args.update(kw)
    return echos.ESN(kernel=kernel, **args)


@pytest.mark.parametrize("size", [16, 8, 7, 1, 200])
def test_block_fused_stays_within_2e_6_of_exact_over_1000_steps(size):
    x = drive()
    exact = block("exact", dtype="float32", block_size=size).update(x)
    for name in available():
        fused = block(name, block_size=size).update(x)
        assert fused.dtype == np.float32 and fused.shape == (1000, 200)
        diff = np.abs(fused - exact).max()
        # Same bound as the random reservoir (test_kernels.py): rational tanh + f32 order.
        assert 0 < diff < 2e-6, (name, size, diff)


def test_block_step_is_deterministic_and_the_same_on_every_variant():
    x = drive(400)
    ref = block("scalar", block_size=8).update(x)
    for name in available():
        a = block(name, block_size=8).update(x)
        np.testing.assert_array_equal(a, block(name, block_size=8).update(x))
        np.testing.assert_array_equal(a, ref)  # the block step's order is variant-independent
    # The block size changes the reservoir, and a block reservoir is not the random one.
    assert not np.array_equal(ref, block("scalar", block_size=16).update(x))
    assert not np.array_equal(ref, block("scalar", topology="random").update(x))


@pytest.mark.parametrize("bad", [0, -3, 201, 10**30])
def test_bad_block_sizes_are_value_errors_naming_the_bound(bad):
    with pytest.raises(ValueError, match="block_size") as e:
        block(block_size=bad)
    if bad > 0 and bad < 10**18:
        assert "<= neurons (200)" in str(e.value)


@pytest.mark.parametrize("bad", [2.0, True, "16"])
def test_block_size_must_be_an_int(bad):
    with pytest.raises(TypeError, match="block_size"):
        block(block_size=bad)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"block_size": 8}, "block_size"),
        ({"topology": "cycle", "block_size": 8}, "block_size"),
        ({"jump": 3}, "jump"),
        ({"topology": "block", "jump": 3}, "jump"),
    ],
)
def test_a_topology_parameter_with_another_topology_is_a_value_error(kwargs, name):
    with pytest.raises(ValueError, match=f"{name} applies to topology"):
        echos.ESN(**kwargs)


@pytest.mark.parametrize("bad", [2.0, "3"])
def test_jump_must_be_an_int(bad):
    with pytest.raises(TypeError, match="jump"):
        echos.ESN(topology="cycle_jumps", jump=bad)


def test_block_models_report_their_block_size():
    esn = block(block_size=8)
    assert esn.topology == "block" and esn.block_size == 8
    assert "topology='block', block_size=8" in repr(esn).replace('"', "'")
    assert echos.ESN().block_size == 16 and echos.ESN().topology == "random"
    jumps = echos.ESN(topology="cycle_jumps", jump=5)
    assert jumps.jump == 5 and "jump=5" in repr(jumps)
    assert "block_size" not in repr(jumps) and "jump" not in repr(esn)


def test_save_load_and_pickle_keep_the_block_size(tmp_path):
    u, y = np.random.default_rng(0).uniform(-1, 1, size=(2, 500, 1))
    for kernel in ["exact", "fast"]:
        esn = block(kernel, block_size=8, neurons=100)
        esn.fit(u[:300], y[:300], washout=50)
        esn.save(tmp_path / "b.safetensors")
        start = esn.state
        for back in (echos.ESN.load(tmp_path / "b.safetensors"),
                     echos.ESN.from_bytes(esn.to_bytes()),
                     pickle.loads(pickle.dumps(esn))):
            assert back.topology == "block" and back.block_size == 8, repr(back)
            assert back.kernel == esn.kernel
            esn.state = start
            np.testing.assert_array_equal(back.predict(u[300:]), esn.predict(u[300:]))
        untrained = pickle.loads(pickle.dumps(block(kernel, block_size=5, inputs=1)))
        assert untrained.block_size == 5
        np.testing.assert_array_equal(untrained.update(u[:50]),
                                      block(kernel, block_size=5).update(u[:50]))


@pytest.mark.parametrize("kernel", ["exact", "fast"])
def test_open_loop_predict_is_the_readout_of_update_s_states(kernel):
    # Longer than one engine call of predict (256 steps), so the chunk seams are crossed.
    esn, u = trained(kernel)
    u = np.tile(u, (4, 1))  # 800 steps
    start = esn.state
    states = esn.update(u)
    esn.state = start
    pred = esn.predict(u)
    w = esn.readout_weights
    want = states.astype(np.float64) @ w[:, 1:].T + w[:, 0]
    tol = 1e-12 if esn.dtype == "float64" else 1e-5
    np.testing.assert_allclose(pred, want, rtol=tol, atol=tol)
    np.testing.assert_array_equal(esn.state, states[-1])
    # Split runs continue where the previous call stopped.
    esn.state = start
    halves = np.vstack([esn.update(u[:333]), esn.update(u[333:])])
    np.testing.assert_array_equal(halves, states)


def test_block_models_match_the_cli_s(tmp_path):
    from test_kernels import _cli, series

    u, y = series()
    np.save(tmp_path / "u.npy", u[:400])
    np.save(tmp_path / "y.npy", y[:400])
    for kernel in ["exact", "scalar"]:
        _cli("esn", "train", "--input", tmp_path / "u.npy", "--target", tmp_path / "y.npy",
             "--model", tmp_path / "cli.safetensors", "--units", 120, "--spectral-radius", 0.9,
             "--leak-rate", 0.3, "--input-scaling", 1.0, "--bias-scaling", 0.0,
             "--connectivity", 0.1, "--ridge", 1e-6, "--washout", 100, "--seed", 5,
             "--topology", "block", "--block-size", 8, "--kernel", kernel)
        from_cli = echos.ESN.load(tmp_path / "cli.safetensors")
        assert from_cli.topology == "block" and from_cli.block_size == 8
        esn = echos.ESN(neurons=120, spectral_radius=0.9, leak_rate=0.3, bias=0.0, seed=5,
                        topology="block", block_size=8, kernel=kernel)
        esn.fit(u[:400], y[:400], washout=100, ridge=1e-6)
        np.testing.assert_array_equal(from_cli.readout_weights, esn.readout_weights)
        np.testing.assert_array_equal(from_cli.state, esn.state)


@pytest.mark.parametrize("kernel", ["exact", "scalar"])
def test_teacher_forced_fit_of_a_feedback_model_matches_the_cli_s_training(tmp_path, kernel):
    # Python cannot build output-feedback reservoirs, but it trains loaded ones: its fit runs
    # the reservoir in 256-step chunks with the targets as feedback, the CLI's train in its own
    # chunks; from a zero state both must give the same readout, byte for byte.
    from test_kernels import _cli

    t = np.arange(700)
    x = np.full((700, 1), 0.25)
    y = (np.sin(t * 0.25) * 0.5).reshape(-1, 1).astype(np.float32).astype(np.float64)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y)
    _cli("esn", "train", "--feedback", "--units", 60, "--leak-rate", 0.5, "--spectral-radius",
         0.8, "--ridge", 1e-6, "--washout", 50, "--input", tmp_path / "x.npy", "--target",
         tmp_path / "y.npy", "--model", tmp_path / "fb.safetensors", "--kernel", kernel)
    cli = echos.ESN.load(tmp_path / "fb.safetensors", dtype="float32" if kernel != "exact"
                         else None)
    again = echos.ESN.load(tmp_path / "fb.safetensors", dtype="float32" if kernel != "exact"
                           else None)
    again.reset()
    again.fit(x, y, washout=50, ridge=1e-6)
    np.testing.assert_array_equal(again.readout_weights, cli.readout_weights)
    np.testing.assert_array_equal(again.state, cli.state)
