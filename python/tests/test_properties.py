"""Property-based tests (hypothesis) of the public Python API: ESN constructor arguments,
update/fit/predict/run over random shapes, dtypes and values, and the echos.events encoders and
writers. Whatever the arguments, the outcome is a result or a ValueError / TypeError /
MemoryError with a message: never a crash, a hang or another exception type (issue 12's bad
input, issue 16)."""

from __future__ import annotations

import numpy as np
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from hypothesis.extra import numpy as hnp  # noqa: E402

import echos  # noqa: E402

ALLOWED = (ValueError, TypeError, MemoryError)
SETTINGS = settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)

# Any Python value a caller might pass where a number or a name is expected.
odd = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=3),
)


def outcome(f, *args, **kwargs):
    """Calls f; returns its result or None when it raised an allowed error with a message."""
    try:
        return f(*args, **kwargs)
    except ALLOWED as e:
        assert str(e), f"{type(e).__name__} without a message"
        return None


@SETTINGS
@given(
    neurons=st.one_of(st.integers(min_value=-5, max_value=64), odd),
    spectral_radius=st.one_of(st.floats(min_value=-2, max_value=3), odd),
    leak_rate=st.one_of(st.floats(min_value=-1, max_value=2), odd),
    connectivity=st.one_of(st.floats(min_value=-1, max_value=2), odd),
    activation=st.one_of(st.sampled_from(["tanh", "sigmoid", "relu", "identity", "x"]), odd),
    topology=st.one_of(
        st.sampled_from(["random", "cycle", "delay_line", "cycle_jumps", "block", "ring"]), odd
    ),
    dtype=st.one_of(st.sampled_from([None, "float32", "float64", np.float32, "int8"]), odd),
    seed=st.one_of(st.integers(min_value=-3, max_value=2**64 + 3), odd),
)
def test_esn_constructor_arguments(
    neurons, spectral_radius, leak_rate, connectivity, activation, topology, dtype, seed
):
    def build():
        e = echos.ESN(
            neurons=neurons,
            spectral_radius=spectral_radius,
            leak_rate=leak_rate,
            connectivity=connectivity,
            activation=activation,
            topology=topology,
            dtype=dtype,
            seed=seed,
        )
        # configuration is checked on build at the latest, which the first update does
        return e.update(np.zeros((2, 1)))

    states = outcome(build)
    if states is not None:
        assert states.shape[0] == 2


arrays = hnp.arrays(
    dtype=st.sampled_from(
        [np.float64, np.float32, np.float16, np.int64, np.int8, np.bool_, np.complex64]
    ),
    shape=hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=6),
    elements=None,
)


@SETTINGS
@given(x=arrays, y=arrays, washout=st.integers(min_value=-2, max_value=8), steps=odd)
def test_esn_calls_on_random_arrays(x, y, washout, steps):
    e = echos.ESN(neurons=12, seed=3)
    outcome(e.update, x)
    fitted = outcome(e.fit, x, y, washout=washout)
    if fitted is None:
        # calling predict before a fit is a state error (RuntimeError naming fit, as
        # test_bad_input.py checks), not bad input
        with pytest.raises(RuntimeError, match="fit"):
            e.predict(np.zeros((2, 1)))
    else:
        outcome(e.predict, x)
        out = outcome(e.run, steps)
        if out is not None:
            assert out.dtype.kind == "f"
    outcome(e.fit_online, x, y)


event_arrays = hnp.arrays(
    dtype=np.dtype([("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")]),
    shape=st.integers(min_value=0, max_value=40),
    elements=st.fixed_dictionaries(
        {
            "t": st.integers(min_value=0, max_value=10_000),
            "x": st.integers(min_value=0, max_value=70),
            "y": st.integers(min_value=0, max_value=70),
            "p": st.integers(min_value=0, max_value=3),
        }
    ).map(lambda d: (d["t"], d["x"], d["y"], d["p"])),
)


@SETTINGS
@given(
    events=event_arrays,
    bin_us=st.one_of(st.integers(min_value=-2, max_value=5_000), odd),
    grid=st.one_of(st.tuples(st.integers(-1, 10), st.integers(-1, 10)), odd),
    size=st.one_of(st.none(), st.integers(min_value=-1, max_value=80)),
    tau=st.one_of(st.floats(min_value=-10, max_value=1e6), odd),
    bins=st.one_of(st.integers(min_value=-1, max_value=12), odd),
)
def test_event_encoders(events, bin_us, grid, size, tau, bins):
    for f, extra in (
        (echos.events.counts, ()),
        (echos.events.timesurface, (tau,)),
        (echos.events.voxel, (bins,)),
    ):
        out = outcome(f, events, bin_us, *extra, grid=grid, width=size, height=size)
        if out is not None:
            assert out.ndim == 2 and out.dtype == np.float64


@SETTINGS
@given(
    events=event_arrays,
    ext=st.sampled_from(["raw", "dat", "npy", "csv", "txt", "aedat4"]),
    evt2=st.booleans(),
    size=st.one_of(st.none(), st.integers(min_value=-1, max_value=80)),
)
def test_event_write_then_read(tmp_path_factory, events, ext, evt2, size):
    path = tmp_path_factory.mktemp("ev") / f"e.{ext}"
    n = outcome(echos.events.write, path, events, width=size, height=size, evt2=evt2)
    if n is not None:
        back = echos.events.read(path)
        assert len(back) == n
        outcome(echos.events.info, path)


@SETTINGS
@given(blob=st.binary(max_size=600), ext=st.sampled_from(["raw", "dat", "bin", "aedat", "aedat4", "npy", "csv"]))
def test_event_read_of_random_bytes(tmp_path_factory, blob, ext):
    path = tmp_path_factory.mktemp("rb") / f"r.{ext}"
    path.write_bytes(blob)
    outcome(echos.events.read, path)
    outcome(echos.events.info, path)
    outcome(lambda: list(echos.events.stream(path, chunk_events=7)))
