"""echos.events: reading, streaming, writing and encoding event-camera files, on the shared
recordings (golden values from bench/events_golden.py and bench/events_aedat4_golden.py, as
pinned in the Rust tests) and on small arrays made here."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest

import echos
from echos import events

from conftest import cli_path, require_shared_data

# (file, format, count, first event, last event, (width, height))
RECORDINGS = [
    ("evt3.raw", "evt3", 1218618, (11200224, 484, 315, 1), (21968221, 471, 350, 0), (1280, 720)),
    ("evt2.raw", "evt2", 521252, (913716224, 35, 443, 1), (913812095, 12, 471, 0), (640, 480)),
    (
        "davis346.aedat4",
        "aedat4",
        78830,
        (1589163147368868, 215, 164, 1),
        (1589163149728813, 233, 205, 1),
        (346, 260),
    ),
    ("sample_nmnist.bin", "nmnist", 4325, (654, 7, 15, 1), (311175, 21, 14, 1), (34, 34)),
]

# FNV-1a 64 over t (u64), x, y (u16) little-endian and p (u8) of each event, in order: the
# digest the Rust tests pin (echos_core::events::events_digest).
DIGESTS = {
    "davis346.aedat4": 0xDD4C7CA0F63E0D40,
}


def fnv(ev: np.ndarray) -> int:
    packed = np.zeros(len(ev), dtype=[("t", "<u8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")])
    for f in "txyp":
        packed[f] = ev[f]
    h = 0xCBF29CE484222325
    for b in packed.tobytes():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def tup(e) -> tuple:
    return (int(e["t"]), int(e["x"]), int(e["y"]), int(e["p"]))


def test_read_matches_the_reference_decoders():
    data = require_shared_data("test_read_matches_the_reference_decoders") / "events"
    for name, fmt, count, first, last, size in RECORDINGS:
        ev = events.read(data / name)
        assert ev.dtype == events.EVENT_DTYPE and ev.dtype.itemsize == 16
        assert ev.dtype.names == ("t", "x", "y", "p")
        assert len(ev) == count, name
        assert tup(ev[0]) == first, name
        assert tup(ev[-1]) == last, name
        assert np.all(np.diff(ev["t"].astype(np.int64)) >= 0), name
        i = events.info(data / name)
        assert (i["format"], i["width"], i["height"], i["events"]) == (fmt, *size, count)
        assert i["t_first_us"] == first[0]
        assert i["events_on"] == int(ev["p"].sum())
    ev = events.read(data / "davis346.aedat4")
    assert fnv(ev) == DIGESTS["davis346.aedat4"]


def test_read_is_the_decoders_buffer_not_a_copy():
    data = require_shared_data("test_read_is_the_decoders_buffer_not_a_copy") / "events"
    ev = events.read(data / "sample_nmnist.bin")
    # a view of the engine's uint64 words: the array owns no memory of its own, and its base
    # is the buffer the decoder wrote (2 words per event)
    assert not ev.flags.owndata
    base = ev.base
    assert base is not None and base.dtype == np.uint64 and base.size == 2 * len(ev)
    assert ev.__array_interface__["data"][0] == base.__array_interface__["data"][0]


def test_stream_gives_the_same_events_in_chunks():
    data = require_shared_data("test_stream_gives_the_same_events_in_chunks") / "events"
    whole = events.read(data / "davis346.aedat4")
    chunks = list(events.stream(data / "davis346.aedat4", chunk_events=10_000))
    assert all(len(c) <= 10_000 for c in chunks)
    assert [len(c) for c in chunks[:-1]] == [10_000] * (len(chunks) - 1)
    joined = np.concatenate(chunks)
    for f in "txyp":
        assert np.array_equal(joined[f], whole[f])
    with pytest.raises(ValueError, match="chunk_events"):
        next(events.stream(data / "evt2.raw", chunk_events=0))


def test_write_round_trips_through_every_format(tmp_path):
    rng = np.random.default_rng(4)
    n = 5000
    ev = np.zeros(n, dtype=events.EVENT_DTYPE)
    ev["t"] = np.cumsum(rng.integers(0, 50, n)) + 10
    ev["x"] = rng.integers(0, 320, n)
    ev["y"] = rng.integers(0, 240, n)
    ev["p"] = rng.integers(0, 2, n)
    for name, kw in [("a.raw", {}), ("b.raw", {"evt2": True}), ("c.dat", {}), ("d.npy", {}), ("e.csv", {})]:
        p = tmp_path / name
        assert events.write(p, ev, width=320, height=240, **kw) == n
        back = events.read(p)
        for f in "txyp":
            assert np.array_equal(back[f], ev[f]), (name, f)
    assert events.info(tmp_path / "b.raw")["format"] == "evt2"
    # our .npy is a plain structured array NumPy loads
    a = np.load(tmp_path / "d.npy")
    assert a.dtype.names == ("t", "x", "y", "p") and a.dtype.itemsize == 13
    assert np.array_equal(a["t"], ev["t"])
    # any structured array with t, x, y and p (or faery's `on`) is accepted
    other = np.zeros(3, dtype=[("x", "<i8"), ("y", "<i8"), ("t", "<i8"), ("on", "?")])
    other["t"], other["x"], other["y"], other["on"] = [1, 2, 3], [4, 5, 6], [0, 1, 2], [1, 0, 1]
    events.write(tmp_path / "o.npy", other)
    back = events.read(tmp_path / "o.npy")
    assert [tup(e) for e in back] == [(1, 4, 0, 1), (2, 5, 1, 0), (3, 6, 2, 1)]


def test_encoders_agree_with_the_cli(tmp_path):
    data = require_shared_data("test_encoders_agree_with_the_cli") / "events"
    cli = cli_path("test_encoders_agree_with_the_cli")
    src = data / "evt3.raw"
    ev = events.read(src)
    i = events.info(src)
    size = dict(width=i["width"], height=i["height"], grid=(16, 9))
    for name, py, args in [
        ("counts", events.counts(ev, 20_000, **size), []),
        ("timesurface", events.timesurface(ev, 20_000, 5000.0, **size), ["--tau-us", "5000"]),
        ("voxel", events.voxel(ev, 20_000, 3, **size), ["--bins", "3"]),
    ]:
        out = tmp_path / f"{name}.npy"
        subprocess.run(
            [str(cli), "events", "encode", str(src), "--repr", name, "--bin-us", "20000",
             "--grid", "16x9", "--out", str(out), *args],
            check=True, capture_output=True,
        )
        x = np.load(out)
        assert py.dtype == np.float64 and py.shape == x.shape, name
        assert np.array_equal(py, x), name
    c = events.counts(ev, 20_000, **size)
    assert c.shape == (539, 2 * 16 * 9) and c.sum() == len(ev)
    # the rows are reservoir input as they are: next-bin activity from this bin's counts
    esn = echos.ESN(neurons=50, seed=1, input_scaling=0.01)
    esn.fit(c[:-1], c[1:].sum(axis=1, keepdims=True), washout=20)
    assert esn.update(c[:10]).shape == (10, 50)


def test_bad_input_raises_with_a_message(tmp_path):
    junk = tmp_path / "junk.xyz"
    junk.write_bytes(b"not an event file at all")
    with pytest.raises(ValueError, match="not a recognised event file"):
        events.read(junk)
    with pytest.raises(OSError):
        events.read(tmp_path / "missing.raw")
    cut = tmp_path / "cut.raw"
    cut.write_bytes(b"% evt 3.0\n% geometry 64x64\n% end\n\x00\x80\x01")
    with pytest.raises(ValueError, match="byte 35"):
        events.read(cut)
    with pytest.raises(ValueError, match="fields t, x, y and p"):
        events.write(tmp_path / "x.npy", np.zeros(3))
    ev = np.zeros(2, dtype=events.EVENT_DTYPE)
    ev["t"] = [5, 1]
    with pytest.raises(ValueError, match="earlier than the previous"):
        events.write(tmp_path / "x.raw", ev, width=4, height=4)
    assert not (tmp_path / "x.raw").exists(), "a failed write leaves no file"
    with pytest.raises(ValueError, match="unknown output type"):
        events.write(tmp_path / "x.txt", ev)
    with pytest.raises(ValueError, match="grid"):
        events.counts(ev, 10, grid=(9, 9), width=4, height=4)
    with pytest.raises(ValueError, match="bin_us"):
        events.counts(ev, 0, grid=(1, 1))
    with pytest.raises(ValueError, match="tau_us"):
        events.timesurface(ev, 10, -1.0, grid=(1, 1))
