"""Issue 5 for real: same config => same weights; killed and resumed => the same weights again."""

import signal

import pytest
from image_helpers import (
    TINY,
    read_history,
    read_manifest,
    resume,
    run_app,
    signal_after_epochs,
    start_training,
    train_args,
)

pytestmark = pytest.mark.image


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
    status = signal_after_epochs(process, run_dir, 1, signal.SIGTERM)
    assert status == 143, (tmp_path / "log.txt").read_text()[-2000:]
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
    assert [row["epoch"] for row in read_history(run_dir)] == [1, 2, 3, 4, 5, 6]


def test_sigkill_with_torn_latest_checkpoint_falls_back_and_matches(digits_dir, reference_run, tmp_path):
    run_dir = tmp_path / "killed"
    process = start_training(digits_dir, tmp_path, "killed", tmp_path / "log.txt")
    signal_after_epochs(process, run_dir, 2, signal.SIGKILL)  # what `docker kill` does: no handler runs
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
