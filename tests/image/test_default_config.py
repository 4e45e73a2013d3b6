"""The promise: the default config reaches >= 0.95 test accuracy on digits. (Its time, "about a
minute", is measured by the bench, `default_train_s` in full mode: no timing assertion here, where
the host suite runs beside it on the same cores.)"""

import time

import pytest
from image_helpers import REPO, read_manifest, run_app

pytestmark = pytest.mark.image


def test_default_config_reaches_the_accuracy_bar(digits_dir, tmp_path):
    started = time.monotonic()
    result = run_app(
        "train",
        "--config",
        str(REPO / "configs" / "default.yaml"),
        "--data-dir",
        str(digits_dir),
        "--output-dir",
        str(tmp_path),
        "--run-id",
        "default",
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 0, result.stderr[-2000:]
    record = read_manifest(tmp_path / "default")
    print(f"default config: {elapsed:.1f}s wall, test accuracy {record['metrics']['test_accuracy']:.4f}")
    assert record["metrics"]["test_accuracy"] >= 0.95
