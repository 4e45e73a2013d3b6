"""Fixtures for tests that run where TensorFlow is installed (natively or inside the image)."""

from __future__ import annotations

from pathlib import Path

import pytest
from image_helpers import run_app, train_args


@pytest.fixture(scope="session")
def digits_dir(tmp_path_factory) -> Path:
    data_dir = tmp_path_factory.mktemp("data")
    result = run_app("data", str(data_dir))
    assert result.returncode == 0, result.stderr
    return data_dir


@pytest.fixture(scope="session")
def reference_run(digits_dir, tmp_path_factory) -> Path:
    """One uninterrupted TINY run: the digest every other run is compared with."""
    output_dir = tmp_path_factory.mktemp("reference")
    result = run_app(*train_args(digits_dir, output_dir, "reference"))
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir / "reference"
