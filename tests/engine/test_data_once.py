"""Runs started at once on a machine without the default data write it once, and all go on."""

from __future__ import annotations

import subprocess
import sys

import pytest

from app import settings
from tests.helpers import REPO_ROOT

pytestmark = pytest.mark.docker


def test_concurrent_invoke_data_writes_the_dataset_once_and_both_succeed(cpu_image, tmp_path, no_leftovers):
    data_dir = tmp_path / "data"
    processes = [
        subprocess.Popen([sys.executable, "-m", "invoke", "data", "--data-dir", str(data_dir)], cwd=REPO_ROOT,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outputs = [process.communicate(timeout=600)[0] for process in processes]
    assert [process.returncode for process in processes] == [0, 0], outputs
    assert "trainbox:" not in "".join(outputs)
    classes = sorted(path.name for path in (data_dir / settings.DEFAULT_DATASET / "train").iterdir())
    assert classes == [str(digit) for digit in range(10)]
