"""Issue 5 for real: same config => same weights; killed and resumed => the same weights again."""

import os
import signal
import subprocess
from pathlib import Path

import pytest
from image_helpers import (
    REPO,
    TINY,
    app_command,
    app_env,
    read_manifest,
    run_app,
    train_args,
    wait_for_epochs,
)

pytestmark = pytest.mark.image


def start_training(data_dir: Path, output_dir: Path, run_id: str, log: Path) -> subprocess.Popen:
    with log.open("w") as handle:
        return subprocess.Popen(
            app_command(*train_args(data_dir, output_dir, run_id)),
            cwd=REPO,
            env=app_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def resume(data_dir: Path, output_dir: Path, run_id: str) -> subprocess.CompletedProcess:
    return run_app("train", "--resume", run_id, "--data-dir", str(data_dir), "--output-dir", str(output_dir))


def test_same_config_same_digest_and_other_seed_differs(digits_dir, reference_run, tmp_path):
    again = run_app(*train_args(digits_dir, tmp_path, "again"))
    assert again.returncode == 0, again.stderr[-2000:]
    other = run_app(*train_args(digits_dir, tmp_path, "other-seed", [*TINY, "seed=7"]))
    assert other.returncode == 0, other.stderr[-2000:]
    reference = read_manifest(reference_run)
    assert read_manifest(tmp_path / "again")["weights_sha256"] == reference["weights_sha256"]
    assert read_manifest(tmp_path / "again")["metrics"] == reference["metrics"]
    assert read_manifest(tmp_path / "other-seed")["weights_sha256"] != reference["weights_sha256"]


def test_sigterm_marks_interrupted_then_resume_matches(digits_dir, reference_run, tmp_path):
    run_dir = tmp_path / "stopped"
    process = start_training(digits_dir, tmp_path, "stopped", tmp_path / "log.txt")
    try:
        wait_for_epochs(run_dir, 1, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143, (tmp_path / "log.txt").read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    record = read_manifest(run_dir)
    assert record["status"] == "interrupted" and record["interrupted_by"] == "SIGTERM"
    assert 1 <= record["epochs_completed"] < 6
    assert any((run_dir / "checkpoints").iterdir()), "the last checkpoint is kept"
    assert not (run_dir / "model.keras").exists()

    result = resume(digits_dir, tmp_path, "stopped")
    assert result.returncode == 0, result.stderr[-2000:]
    resumed = read_manifest(run_dir)
    assert resumed["status"] == "completed" and resumed["epochs_completed"] == 6
    assert resumed["resumes"][0]["from_epoch"] == record["epochs_completed"]
    assert resumed["weights_sha256"] == read_manifest(reference_run)["weights_sha256"]
    assert [row["epoch"] for row in resumed_history(run_dir)] == [1, 2, 3, 4, 5, 6]


def resumed_history(run_dir: Path) -> list[dict]:
    import json

    return json.loads((run_dir / "history.json").read_text())


def test_sigkill_with_torn_latest_checkpoint_falls_back_and_matches(digits_dir, reference_run, tmp_path):
    run_dir = tmp_path / "killed"
    process = start_training(digits_dir, tmp_path, "killed", tmp_path / "log.txt")
    try:
        wait_for_epochs(run_dir, 2, process)
        os.kill(process.pid, signal.SIGKILL)  # what `docker kill` does: no handler runs
        process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert read_manifest(run_dir)["status"] == "running"
    newest, previous = sorted((run_dir / "checkpoints").glob("epoch-*"), reverse=True)[:2]
    model_file = newest / "model.keras"
    model_file.write_bytes(model_file.read_bytes()[: model_file.stat().st_size // 2])  # torn write

    result = resume(digits_dir, tmp_path, "killed")
    assert result.returncode == 0, result.stderr[-2000:]
    record = read_manifest(run_dir)
    resumed = record["resumed_from"]
    assert resumed["from_checkpoint"] == previous.name
    assert [s["checkpoint"] for s in resumed["skipped_checkpoints"]] == [newest.name]
    assert record["weights_sha256"] == read_manifest(reference_run)["weights_sha256"]
