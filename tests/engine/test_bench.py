"""`invoke bench --quick` for real: every figure the issue asks for lands in the results file."""

from __future__ import annotations

import json

import pytest

from bench.suite import REQUIRED
from tests.helpers import invoke

pytestmark = [pytest.mark.docker, pytest.mark.slow]

RATIOS = ("container_vs_native_throughput", "pipeline_vs_in_memory_throughput")


def test_quick_bench_writes_every_figure(cpu_image, engine, tmp_path, no_leftovers):
    results_path = tmp_path / "results.json"
    result = invoke("bench", "--quick", "--results", str(results_path), timeout=1200)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "figure" in result.stdout and "container_vs_native_throughput" in result.stdout  # the table

    results = json.loads(results_path.read_text())
    assert results["mode"] == "quick"
    assert results["errors"] == []
    for key in REQUIRED:
        assert key in results, key
        value = results[key]
        if key == "gpu_image_mb" and value is None:
            assert results["gpu_image_mb_reason"], "a missing GPU image size must say why"
            continue
        assert isinstance(value, (int, float)), (key, value)
    for key in RATIOS:
        assert results[key] > 0, key
    for key, figure in results["figures"].items():
        if figure["value"] is not None:
            low, high = figure["spread"]
            assert low <= figure["value"] <= high, key
    assert 0 < results["default_test_accuracy"] <= 1
    assert results["machine"]["cpus"] >= 1 and results["machine"]["storage_driver"]
    # the code-rebuild figure builds a copy of the repo under its own tag, removed afterwards
    assert not engine.images.list(name="trainbox:bench-rebuild")

