"""The benchmark tasks of echos-host (the ones `echos esn task NAME` runs): NARMA10, linear
memory capacity, Mackey-Glass 84-step free run (Jaeger's setup) and Santa Fe. Each returns the
CLI's JSON report as a dict: the setup used, the time taken, the figure averaged over runs,
per-run values and their standard deviation.
"""

from __future__ import annotations

import json
import os
from typing import Any, Dict, Optional, Union

from . import _echos

__all__ = ["run", "TASKS"]

TASKS = ("narma10", "memory-capacity", "mackey-glass", "santafe")


def run(
    name: str,
    *,
    units: Optional[int] = None,
    seed: int = 0,
    runs: Optional[int] = None,
    shared_data: Union[str, os.PathLike, None] = None,
) -> Dict[str, Any]:
    """Runs task `name` (one of TASKS) with reservoirs of `units` neurons (the task's default
    when None), seeds seed, seed+1, ... for `runs` independent runs (the task's default when
    None). `shared_data` locates the Santa Fe series. The GIL is released while it runs."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; tasks: {', '.join(TASKS)}")
    path = None if shared_data is None else os.fspath(shared_data)
    return json.loads(_echos._run_task(name, units, seed, runs, path))
