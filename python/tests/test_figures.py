"""The foundation issue's figures, reached from Python through echos.tasks (the same runs and
seeds as `echos esn task NAME --seed 0`): NARMA10 NRMSE <= 0.33 at 100 units and <= 0.26 at 200,
linear memory capacity >= 37, Mackey-Glass 84-step free-run NRMSE <= 3e-4."""

from __future__ import annotations

import pytest

import echos


@pytest.mark.parametrize("units, bound", [(100, 0.33), (200, 0.26)])
def test_figure_narma10(units, bound):
    report = echos.tasks.run("narma10", units=units, seed=0)
    assert len(report["per_run"]) >= 3
    assert report["nrmse"] <= bound, report


def test_figure_memory_capacity():
    report = echos.tasks.run("memory-capacity", units=100, seed=0)
    assert report["memory_capacity"] >= 37.0, report


def test_figure_mackey_glass_84_step_free_run():
    report = echos.tasks.run("mackey-glass", seed=0)
    assert report["nrmse84"] <= 3e-4, report
