"""echos.RWKV: logits against the reference, generation settings, state files, bad input."""

from __future__ import annotations

import numpy as np
import pytest

import echos

from conftest import require_shared_data


def _random_model(version: str, test: str):
    data = require_shared_data(test)
    ref = np.load(data / "rwkv" / "random" / f"random-v{version}-reference.npz")
    return echos.RWKV(str(data / "rwkv" / "random" / f"random-v{version}.pth")), ref


@pytest.mark.parametrize("version", ["4", "5", "6", "7"])
def test_forward_matches_the_reference_logits(version):
    # Reference: PyPI rwkv 0.8.32, cpu fp32, RNN mode (../shared/data/README.md); the same
    # 1e-4 bound as the Rust tests (docs/rwkv.md).
    m, ref = _random_model(version, "test_forward_matches_the_reference_logits")
    logits = m.forward(ref["tokens"])
    assert logits.dtype == np.float32 and logits.shape == ref["logits"].shape
    assert np.max(np.abs(logits - ref["logits"])) < 1e-4
    # In two calls, the state carries over.
    m.reset()
    a = m.forward(list(map(int, ref["tokens"][:20])))
    b = m.forward(ref["tokens"][20:].astype(np.int64))
    assert np.max(np.abs(np.vstack([a, b]) - ref["logits"])) < 1e-4


def _tiny(test: str):
    data = require_shared_data(test)
    return echos.RWKV(str(data / "rwkv" / "trained" / "tiny-rwkv-5v2-730K.pth"))


def test_generate_is_greedy_at_temperature_zero_and_stops_before_a_stop_string():
    m = _tiny("test_generate_is_greedy_at_temperature_zero_and_stops_before_a_stop_string")
    # The CLI's pinned greedy continuation (crates/echos-cli/tests/rwkv_cli.rs).
    assert m.generate('"in the beginning', max_tokens=20, temperature=0) == " of the stress and t"
    m.reset()
    assert m.generate('"in the beginning', max_tokens=20, temperature=0, stop=["stress"]) == " of the "
    m.reset()
    # top_k=1 is greedy at any temperature; the same seed gives the same sample.
    assert m.generate('"in the beginning', max_tokens=20, temperature=1.5, top_k=1) == " of the stress and t"
    draws = []
    for _ in range(2):
        m.reset()
        draws.append(m.generate("in the", max_tokens=30, seed=7, presence_penalty=0.4,
                                frequency_penalty=0.4, penalty_decay=0.996))
    assert draws[0] == draws[1] and len(draws[0]) > 0
    assert m.decode(m.encode("hello")) == "hello"


def test_state_files_resume_exactly(tmp_path):
    m = _tiny("test_state_files_resume_exactly")
    m.forward(m.encode("in the beginning"))
    path = tmp_path / "s.safetensors"
    m.save_state(str(path))
    want = m.forward(m.encode(" was"))
    m.reset()
    m.load_state(str(path))
    got = m.forward(m.encode(" was"))
    assert np.array_equal(got, want)
    with pytest.raises(ValueError, match="prompt is empty"):
        m.load_state(str(path))
        m.generate("")


def test_bad_input_is_a_named_error(tmp_path):
    m = _tiny("test_bad_input_is_a_named_error")
    for kwargs, name in [
        ({"temperature": -1.0}, "temperature"),
        ({"top_p": 0.0}, "top_p"),
        ({"top_p": 1.5}, "top_p"),
        ({"top_k": 0}, "top_k"),
        ({"penalty_decay": 0.0}, "penalty_decay"),
        ({"frequency_penalty": float("nan")}, "frequency_penalty"),
        ({"stop": [""]}, "stop"),
        ({"stop_tokens": [10**6]}, "outside the vocabulary"),
    ]:
        with pytest.raises(ValueError, match=name):
            m.generate("x", **kwargs)
    with pytest.raises(TypeError):
        m.generate("x", stop=3)
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m.forward([1, 300])
    with pytest.raises(ValueError, match="outside the vocabulary"):
        m.forward([-1])
    with pytest.raises(ValueError, match="empty"):
        m.forward([])
    with pytest.raises(TypeError, match="encode"):
        m.forward("text")
    with pytest.raises(ValueError, match="at most"):
        m.forward(np.zeros(20_000, dtype=np.int64))
    with pytest.raises(ValueError, match="threads"):
        echos.RWKV("x.pth", threads=0)
    with pytest.raises(OSError):
        echos.RWKV(str(tmp_path / "missing.pth"))
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a model at all")
    with pytest.raises(ValueError):
        echos.RWKV(str(junk))
    other = tmp_path / "other.safetensors"
    v7, _ = _random_model("7", "test_bad_input_is_a_named_error")
    v7.forward([1, 2])
    v7.save_state(str(other))
    with pytest.raises(ValueError, match="state for"):
        m.load_state(str(other))
