"""echos.rt.attach: another process's view of a running hosted-runtime loop. A demo loop runs
in a subprocess (`echos rt run --demo` under its own region name); attaching shows its step
count advance, read-only views of its state and its timing counters. Missing, foreign, too
small and other-version regions are refused with ValueError naming the problem."""

from __future__ import annotations

import os
import struct
import subprocess
import time

import numpy as np
import pytest

import echos
from conftest import cli_path

SHM = "/dev/shm"


def _attach_when_ready(name: str, proc: subprocess.Popen, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while True:
        try:
            return echos.rt.attach(name)
        except ValueError as e:
            if "no region" not in str(e):
                raise
        if proc.poll() is not None:
            pytest.fail(f"the demo ended before its region appeared: {proc.stderr.read()}")
        if time.monotonic() > deadline:
            pytest.fail("the demo's region did not appear")
        time.sleep(0.05)


def test_attach_sees_the_demo_advance():
    cli = cli_path("test_attach_sees_the_demo_advance")
    name = f"pytest-rt-{os.getpid()}"
    proc = subprocess.Popen(
        [str(cli), "rt", "run", "--demo", "--seconds", "20", "--region", name],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        with _attach_when_ready(name, proc) as r:
            assert r.owner_running()
            assert r.units == 100 and r.state.shape == (100,)
            assert r.header["layout_version"] == 2
            assert not r.state.flags.writeable
            with pytest.raises(ValueError):
                r.state[0] = 1.0
            first = r.step()
            time.sleep(0.3)
            counters, state, output = r.snapshot()
            assert counters["step"] > first, (first, counters["step"])
            assert counters["version"] % 2 == 0 and counters["periods"] >= counters["step"]
            assert state.shape == (100,) and output.shape == (1,)
            assert np.all(np.isfinite(state)) and np.any(state != 0)
            # The live view moves with the loop.
            before = r.state.copy()
            time.sleep(0.05)
            assert not np.array_equal(before, r.state)
            t = r.timing()
            assert t["periods"] > 0 and t["wakeup"]["samples"] > 0, t
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    assert not os.path.exists(f"{SHM}/echos.{name}"), "the region was not removed at exit"


def _write_region(name: str, data: bytes) -> str:
    path = f"{SHM}/echos.{name}"
    with open(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize(
    "data, message",
    [
        (b"", "too small"),
        (b"\0" * 100, "too small"),
        (b"NOTECHOS" + b"\0" * 248, "not an echos region"),
        (b"ECHOSRT\0" + struct.pack("<Q", 99) + b"\0" * 240, "layout version 99"),
    ],
)
def test_bad_regions_are_refused(data, message):
    name = f"pytest-bad-{os.getpid()}"
    path = _write_region(name, data)
    try:
        with pytest.raises(ValueError, match=message):
            echos.rt.attach(name)
    finally:
        os.unlink(path)


def test_missing_region_and_bad_name():
    with pytest.raises(ValueError, match="no region"):
        echos.rt.attach(f"pytest-none-{os.getpid()}")
    with pytest.raises(ValueError, match="region name"):
        echos.rt.attach("../etc")
