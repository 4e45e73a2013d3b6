"""A user's mistake costs a second: everything checked before training leaves TensorFlow unloaded."""

import subprocess
import sys

import pytest
from image_helpers import REPO, app_env

pytestmark = pytest.mark.image

MAIN_THEN_IMPORTS = """
import sys
from app.__main__ import main
status = main(sys.argv[1:])
print("tensorflow" in sys.modules, status)
"""


@pytest.mark.parametrize(
    "mistake",
    [
        ["--set", "model.widht=3"],
        ["--set", "data.train=nowhere/train"],
        ["--resume", "20260101-000000-abcdef"],
        ["--run-id", "../escape"],
    ],
)
def test_a_mistake_is_found_before_tensorflow_loads(digits_dir, tmp_path, mistake):
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            MAIN_THEN_IMPORTS,
            "train",
            "--data-dir",
            str(digits_dir),
            "--output-dir",
            str(tmp_path),
            *mistake,
        ],
        cwd=REPO,
        env=app_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.split() == ["False", "2"], result.stdout + result.stderr
    assert result.stderr.startswith("trainbox: ") and len(result.stderr.splitlines()) == 1
