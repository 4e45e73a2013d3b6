"""`invoke bench` for real: every registered figure measured, each baseline from the same run."""

from __future__ import annotations

import json
import math
import re

import pytest

from app import settings
from bench.steps import STEPS
from tests.helpers import assert_one_line_error, invoke

pytestmark = [pytest.mark.docker, pytest.mark.slow]


def test_quick_bench_measures_every_registered_figure(cpu_image, engine, tmp_path, no_leftovers):
    results_path = tmp_path / "results.json"
    # Asked before the bench starts: the GPU image may be building in the background meanwhile
    # (tests/engine/background_build.py), and quick mode measures it only if it is there already.
    gpu_before = bool(engine.images.list(name=settings.image_tag(gpu=True)))
    # a guard against a hang, not a speed check: on a shared machine at load 12 it took over 20 min
    result = invoke("bench", "--quick", "--results", str(results_path), timeout=2400)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    results = json.loads(results_path.read_text())
    assert results["mode"] == "quick" and results["errors"] == []
    declared = [name for step in STEPS for name in step.figures]
    assert list(results["figures"]) == declared  # no step dropped or renamed a figure
    table = result.stdout.split("\nmachine:")[0]
    for name, figure in results["figures"].items():
        assert re.search(rf"^{name}\s", table, re.MULTILINE), f"{name} is not in the printed table"
        assert results[name] == figure["value"], name
        if name == "gpu_image_mb" and figure["value"] is None:  # quick mode never builds it; it says why
            assert not gpu_before and "not on this engine" in results["gpu_image_mb_reason"]
            continue
        assert figure["samples"] and all(math.isfinite(sample) for sample in figure["samples"]), name
        if figure["baseline_label"]:  # its baseline was measured in this run, not carried over
            assert figure["baseline_samples"], name
            assert all(math.isfinite(b) and b > 0 for b in figure["baseline_samples"]), name
        if figure["unit"] == "x":  # a ratio: one baseline sample per pair, both sides ran
            assert len(figure["baseline_samples"]) == len(figure["samples"]), name
            assert all(sample > 0 for sample in figure["samples"]), name

    assert results["cpu_image_mb"] == pytest.approx(cpu_image.attrs["Size"] / 1e6)
    assert 0.5 < results["default_test_accuracy"] <= 1  # the default run learned the digits
    assert results["machine"]["cpus"] >= 1 and results["machine"]["storage_driver"]
    # the code-rebuild figure builds a copy of the repo under its own tag, removed afterwards
    assert not engine.images.list(name=f"{settings.IMAGE_REPOSITORY}:bench-rebuild")


def test_only_runs_the_named_step(cpu_image, tmp_path, no_leftovers):
    results_path = tmp_path / "results.json"
    result = invoke("bench", "--quick", "--only", "cpu_image_mb", "--results", str(results_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    results = json.loads(results_path.read_text())
    assert results["steps"] == ["image_size"]
    assert list(results["figures"]) == ["cpu_image_mb", "gpu_image_mb"]
    assert results["cpu_image_mb"] == pytest.approx(cpu_image.attrs["Size"] / 1e6)


def test_only_with_an_unknown_name_is_a_usage_error(tmp_path):
    results_path = tmp_path / "results.json"
    result = invoke("bench", "--only", "launch", "--only", "nosuch", "--results", str(results_path))
    assert_one_line_error(result, "no benchmark named nosuch", "launch")
    assert result.returncode == 2
    assert not results_path.exists()
