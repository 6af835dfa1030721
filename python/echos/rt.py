"""The hosted runtime's live state from another process: ``attach(name)`` maps the shared
region ``/dev/shm/echos.NAME`` of a running ``echos rt run`` read-only.

The region is checked by the engine's own reader (``echos_rt::shm::Attached``: magic, layout
version, size, offsets); a missing region, another layout version or a file too small for its
header or dimensions raises ValueError naming the problem. Reading never blocks or slows the
loop: ``snapshot()`` and ``timing()`` are seqlock copies (retried while the loop writes), and
``state`` / ``output`` are zero-copy read-only NumPy views of the live words — always current,
but a view read while the loop writes may mix two steps (use ``snapshot()`` for one step).
See docs/rt.md for the layout and docs/python.md for this module.
"""

from __future__ import annotations

import json
from typing import Any, Dict, Tuple

import numpy as np

from . import _echos

__all__ = ["Region", "attach"]

#: Header words compared between the engine's checked copy and the NumPy mapping, so a region
#: replaced between the two opens is refused (magic, layout version, size, generation, pid).
_IDENTITY_WORDS = 5


class Region:
    """An attached region (read-only). Use as a context manager or call ``close()``."""

    def __init__(self, native: Any) -> None:
        self._native = native
        self.header: Dict[str, Any] = json.loads(native.header_json())
        state_at, units, output_at, outputs = native.state_location()
        words = np.memmap(native.path, dtype="<u8", mode="r")
        h = self.header
        want = [h["magic"], h["layout_version"], h["total_bytes"], h["generation"], h["owner_pid"]]
        if words.nbytes < h["total_bytes"] or list(words[:_IDENTITY_WORDS]) != want:
            raise ValueError(
                f"region {native.path} changed between the checked open and the mapping "
                "(replaced by a new run): attach again"
            )
        self._words = words
        f64 = words.view("<f8")
        self.state: np.ndarray = f64[state_at // 8 : state_at // 8 + units]
        self.output: np.ndarray = f64[output_at // 8 : output_at // 8 + outputs]

    @property
    def path(self) -> str:
        return self._native.path

    @property
    def units(self) -> int:
        return int(self.header["units"])

    def owner_running(self) -> bool:
        """Whether the loop that owns the region still runs."""
        return bool(self._native.owner_running())

    def snapshot(self) -> Tuple[Dict[str, Any], np.ndarray, np.ndarray]:
        """One consistent copy: (counters, state, output). Counters: ``version``, ``step``,
        ``time_ns``, ``periods``, ``deadline_misses``, ``overruns``, ``skipped_jobs``,
        ``source_idle``, ``wakeup_last_ns``, ``wakeup_max_ns``, ``step_last_ns``,
        ``step_max_ns``, ``sink_drops``, ``spectral_radius``, ``leak_rate``,
        ``hw_cycles_per_step`` and ``hw_cache_hit_rate`` (0: no hardware counters), ``trajectory``
        (``[(step, [first units])]``, oldest first)."""
        return self._native.snapshot()

    def step(self) -> int:
        """The reservoir steps taken so far (from a consistent copy)."""
        return int(self.snapshot()[0]["step"])

    def timing(self) -> Dict[str, Any]:
        """What ``echos rt serve``'s ``/timing`` returns: periods, misses, overruns, skipped
        jobs, wake-up and step percentiles (ns) and their non-empty histogram buckets."""
        return json.loads(self._native.timing_json())

    def close(self) -> None:
        """Drops the mappings (views taken from ``state``/``output`` keep theirs alive)."""
        self.state = self.output = np.empty(0)
        self._words = None
        self._native = None

    def __enter__(self) -> "Region":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def attach(name: str) -> Region:
    """Maps ``/dev/shm/echos.NAME`` read-only (ValueError when missing or not a region of this
    layout version)."""
    return Region(_echos._rt_attach(name))
