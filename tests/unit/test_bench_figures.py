"""The benchmark suite's pure parts: figures, goals, the paired design and the registry
(no engine needed; what bench/ may import is in test_layering.py)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from app.launch.errors import TrainboxError
from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.pairing import alternating
from bench.steps import STEPS
from bench.suite import select

BENCH = Path(__file__).resolve().parents[2] / "bench"


def test_every_step_module_is_registered_once_and_figure_names_are_unique():
    modules = {path.stem for path in (BENCH / "steps").glob("*.py")} - {"__init__"}
    registered = [step.measure.__module__.rsplit(".", 1)[1] for step in STEPS]
    assert sorted(registered) == sorted(modules)
    assert len({step.name for step in STEPS}) == len(STEPS)
    figures = [name for step in STEPS for name in step.figures]
    assert len(set(figures)) == len(figures)


def test_goal_has_a_direction():
    assert Goal(at_least=0.98).met_by(0.98) and not Goal(at_least=0.98).met_by(0.97)
    assert Goal(at_most=10).met_by(9.5) and not Goal(at_most=10).met_by(10.5)
    assert (str(Goal(at_least=0.98)), str(Goal(at_most=1300))) == (">= 0.98", "<= 1300")
    for neither_or_both in ({}, {"at_least": 1.0, "at_most": 2.0}):
        with pytest.raises(ValueError, match="exactly one"):
            Goal(**neither_or_both)


def test_figure_fields_are_keyword_only():
    with pytest.raises(TypeError):
        Figure("launch_overhead_s", "s", "what it measures", (0.7,))


def test_figure_without_samples_must_say_why_and_samples_must_be_finite():
    with pytest.raises(ValueError, match="must say why"):
        Figure(name="gpu_image_mb", unit="MB", definition="size")
    with pytest.raises(ValueError, match="not a finite number"):
        Figure(name="ratio", unit="x", definition="d", samples=(1.0, math.nan))
    with pytest.raises(ValueError, match="not a finite number"):
        Figure(name="accuracy", unit="", definition="d", samples=(None,))
    absent = Figure(name="gpu_image_mb", unit="MB", definition="size", reason="no GPU image")
    assert absent.value is None and absent.meets_goal is None and absent.record()["reason"] == "no GPU image"


def test_paired_figure_records_its_baseline_from_the_same_pairs():
    measured, baseline = [6000.0, 5400.0, 6600.0], [6000.0, 6000.0, 6000.0]
    figure = Figure(
        name="container_vs_native_throughput",
        unit="x",
        definition="container / native",
        samples=paired_ratios(measured, baseline),
        goal=Goal(at_least=0.98),
        baseline=Baseline(label="native images/s", samples=tuple(baseline)),
    )
    record = figure.record()
    assert record["samples"] == pytest.approx([1.0, 0.9, 1.1])
    assert record["value"] == pytest.approx(1.0) and record["spread"] == pytest.approx([0.9, 1.1])
    assert record["meets_goal"] is True and record["goal"] == ">= 0.98"
    assert record["baseline"] == 6000.0 and record["baseline_samples"] == baseline
    with pytest.raises(ValueError):
        paired_ratios([1.0, 2.0], [1.0])  # a ratio without its own baseline sample


def test_alternating_reverses_the_order_every_other_repetition():
    calls = []
    rounds = alternating(3, {"a": lambda: calls.append("a") or 1, "b": lambda: calls.append("b") or 2})
    assert calls == ["a", "b", "b", "a", "a", "b"]
    assert [list(pair) for pair in rounds] == [["a", "b"], ["b", "a"], ["a", "b"]]
    assert all(pair == {"a": 1, "b": 2} for pair in rounds)


def test_only_selects_by_step_or_figure_in_registry_order():
    assert select([]) == STEPS
    chosen = select(["determinism_cost", "launch"])
    assert [step.name for step in chosen] == ["launch", "determinism"]
    with pytest.raises(TrainboxError, match="no benchmark named nosuch: --only takes a step") as raised:
        select(["launch", "nosuch"])
    assert raised.value.exit_code == 2
