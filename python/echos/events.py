"""Event-camera recordings: read, stream, write and summarise them, and turn them into
reservoir input.

Formats read (recognised from the content, the extension as a fallback): Prophesee EVT 2.0,
2.1 and 3.0 (.raw), DAT (.dat), N-MNIST (.bin), iniVation AEDAT 4.0 (.aedat4), and the .npy /
.csv tables `write` makes. Formats written, by extension: .raw (EVT 3.0, or EVT 2.0 with
``evt2=True``), .dat (DAT v2), .npy (structured t u64, x u16, y u16, p u8) and .csv (t,x,y,p).
Decoding runs in the engine (crates/echos-core, crates/echos-host) with the GIL released.

Events are NumPy structured arrays with fields ``t`` (µs, uint64), ``x``, ``y`` (uint16) and
``p`` (uint8: 1 ON, 0 OFF), 16 bytes per event (``EVENT_DTYPE``: the engine's own layout, so
the array *is* the decoder's output buffer, not a copy of it). Times are those of the file:
EVT/DAT/N-MNIST times from the recording's start, AEDAT 4 times in absolute microseconds as
the DV software writes them.
"""

from __future__ import annotations

import os
from typing import Any, Dict, Iterator, Optional, Tuple, Union

import numpy as np

from . import _echos

__all__ = [
    "EVENT_DTYPE",
    "TRIGGER_DTYPE",
    "counts",
    "info",
    "read",
    "stream",
    "timesurface",
    "voxel",
    "write",
]

#: One event: the engine's ``DvsEvent`` (``#[repr(C)]`` u64, u16, u16, u8 and 3 padding bytes).
EVENT_DTYPE = np.dtype(
    {
        "names": ["t", "x", "y", "p"],
        "formats": ["<u8", "<u2", "<u2", "u1"],
        "offsets": [0, 8, 10, 12],
        "itemsize": 16,
    }
)

#: One external trigger: time, input channel, value (1 rising edge, 0 falling edge).
TRIGGER_DTYPE = np.dtype([("t", "<u8"), ("channel", "u1"), ("value", "u1")])

_PathLike = Union[str, "os.PathLike[str]"]


def _events(words: np.ndarray) -> np.ndarray:
    """The engine's event words viewed as events (no copy)."""
    return words.view(EVENT_DTYPE)


def _triggers(rows: np.ndarray) -> np.ndarray:
    out = np.zeros(len(rows), dtype=TRIGGER_DTYPE)
    if len(rows):
        out["t"], out["channel"], out["value"] = rows[:, 0], rows[:, 1], rows[:, 2]
    return out


def read(path: _PathLike, *, with_triggers: bool = False):
    """All events of the file at `path` as an ``EVENT_DTYPE`` array (the decoder's buffer
    itself). With ``with_triggers=True``, returns ``(events, triggers)``, triggers as a
    ``TRIGGER_DTYPE`` array. Raises ValueError for a damaged file (the message names the byte
    offset) and OSError when it cannot be read."""
    words, triggers, _header = _echos._events_read(os.fspath(path))
    events = _events(words)
    return (events, _triggers(triggers)) if with_triggers else events


def stream(path: _PathLike, chunk_events: int = 1 << 16) -> Iterator[np.ndarray]:
    """The file's events as consecutive ``EVENT_DTYPE`` arrays of at most `chunk_events`
    events each (the last may be shorter), decoded as they are asked for: memory stays at
    one chunk whatever the file size."""
    s = _echos._EventStream(os.fspath(path), int(chunk_events))
    while True:
        chunk = s.next_chunk()
        if chunk is None:
            return
        yield _events(chunk[0])


def _as_event_words(events: Any) -> np.ndarray:
    """`events` (any structured array with fields t, x, y and p or on) as the engine's words."""
    a = np.asarray(events)
    names = a.dtype.names or ()
    pname = "p" if "p" in names else "on" if "on" in names else None
    if a.ndim != 1 or not {"t", "x", "y"} <= set(names) or pname is None:
        raise ValueError(
            "events must be a 1-D structured array with fields t, x, y and p (or on), got "
            f"dtype {a.dtype} and shape {a.shape}"
        )
    if a.dtype == EVENT_DTYPE and a.flags.c_contiguous:
        return a.view(np.uint64)
    for f in ("t", "x", "y"):
        col = a[f]
        if col.dtype.kind not in "ui" or (len(col) and col.min() < 0):
            raise ValueError(f"events field {f!r} must hold non-negative integers")
    if len(a) and (a["x"].max() > 0xFFFF or a["y"].max() > 0xFFFF):
        raise ValueError("events x and y must fit in 16 bits")
    out = np.zeros(len(a), dtype=EVENT_DTYPE)
    out["t"], out["x"], out["y"] = a["t"], a["x"], a["y"]
    out["p"] = a[pname] != 0
    return out.view(np.uint64)


def _size(events: np.ndarray, width: Optional[int], height: Optional[int]) -> Tuple[int, int]:
    ev = _events(events)
    w = width if width is not None else (int(ev["x"].max()) + 1 if len(ev) else 1)
    h = height if height is not None else (int(ev["y"].max()) + 1 if len(ev) else 1)
    for name, v in (("width", w), ("height", h)):
        if not 1 <= v <= 0xFFFF:
            raise ValueError(f"{name} must be between 1 and 65535, got {v}")
    return w, h


def write(
    path: _PathLike,
    events: Any,
    *,
    width: Optional[int] = None,
    height: Optional[int] = None,
    evt2: bool = False,
) -> int:
    """Write `events` to `path`, the format chosen by its extension (.raw EVT 3.0, or EVT 2.0
    with ``evt2=True``; .dat; .npy; .csv), atomically: the file is whole or not replaced.
    `width` × `height` is the sensor size the .raw/.dat header declares (default: the largest
    coordinates + 1). EVT and DAT need events in time order. Returns the events written."""
    words = _as_event_words(events)
    w, h = _size(words, width, height)
    return _echos._events_write(os.fspath(path), words, w, h, bool(evt2))


def info(path: _PathLike) -> Dict[str, Any]:
    """What ``echos events info --json`` prints: format, version, width, height, date, the
    header's keys, events (and per polarity), triggers, t_first_us, t_last_us, duration_us,
    mean_rate_hz and peak_rate_hz (over 1 ms bins); frames and IMU samples for AEDAT 4."""
    return _echos._events_info(os.fspath(path))


def _int(name: str, v: Any, lo: int, hi: int) -> int:
    """`v` as an int in lo..=hi: a ValueError naming `name` when it is out of range or not
    finite (``int(inf)`` would be an OverflowError), a TypeError when it is not a number."""
    try:
        n = int(v)
    except OverflowError:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {v}") from None
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be an integer, got {v!r}") from None
    if not lo <= n <= hi:
        raise ValueError(f"{name} must be between {lo} and {hi}, got {v}")
    return n


def _encode(events, repr_, bin_us, grid, width, height, merge_polarity, tau_us, bins):
    words = _as_event_words(events)
    w, h = _size(words, width, height)
    bin_us = _int("bin_us", bin_us, 1, 2**63 - 1)
    try:
        gx, gy = (_int("grid", g, -(2**63), 2**63) for g in grid)
    except (TypeError, ValueError) as e:
        if isinstance(e, TypeError) and "grid" not in str(e):
            raise TypeError(f"grid must be a pair of integers, got {grid!r}") from None
        raise
    if not (1 <= gx <= w and 1 <= gy <= h):
        raise ValueError(f"grid {gx}x{gy} must be between 1x1 and the {w}x{h} sensor")
    return _echos._events_encode(
        words, repr_, int(bin_us), (gx, gy), w, h, bool(merge_polarity), float(tau_us), int(bins)
    )


def counts(
    events: Any,
    bin_us: int,
    *,
    grid: Tuple[int, int] = (16, 16),
    width: Optional[int] = None,
    height: Optional[int] = None,
    merge_polarity: bool = False,
) -> np.ndarray:
    """Events per cell of a `grid` (gx, gy) pooling of the sensor, OFF plane then ON plane,
    for each `bin_us` bin from the first event to the last: float64 (bins, 2·gx·gy), one row
    per time step for ``echos.ESN``. Empty bins are zero rows. Matches tonic's ``ToFrame``."""
    return _encode(events, "counts", bin_us, grid, width, height, merge_polarity, 1.0, 1)


def timesurface(
    events: Any,
    bin_us: int,
    tau_us: float,
    *,
    grid: Tuple[int, int] = (16, 16),
    width: Optional[int] = None,
    height: Optional[int] = None,
    merge_polarity: bool = False,
) -> np.ndarray:
    """``exp(-(bin end - latest event of the cell) / tau_us)`` per cell and polarity at the end
    of each bin (0 where a cell never fired), carried across bins: float64 (bins, 2·gx·gy).
    Matches tonic's ``ToTimesurface``."""
    if not (tau_us > 0 and np.isfinite(tau_us)):
        raise ValueError(f"tau_us must be a positive number, got {tau_us}")
    return _encode(events, "timesurface", bin_us, grid, width, height, merge_polarity, tau_us, 1)


def voxel(
    events: Any,
    bin_us: int,
    bins: int,
    *,
    grid: Tuple[int, int] = (16, 16),
    width: Optional[int] = None,
    height: Optional[int] = None,
) -> np.ndarray:
    """Each `bin_us` bin as a voxel grid of `bins` sub-bins per cell, polarity ±1 spread
    bilinearly in time: float64 (time bins, bins·gx·gy). Matches tonic's ``ToVoxelGrid``."""
    bins = _int("bins", bins, 1, 1024)
    return _encode(events, "voxel", bin_us, grid, width, height, False, 1.0, bins)
