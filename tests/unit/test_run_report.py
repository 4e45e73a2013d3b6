"""The lines that end a run: where it is, how it ended, how long, its plots, how to continue."""

from __future__ import annotations

from pathlib import Path

from app import settings
from app.launch.containers import Limits
from app.launch.report import Invocation, duration, end_of_run, resume_command

RUN_ID = "20261125-180512-3fa9c2"


def completed(tmp_path: Path) -> Path:
    run_dir = tmp_path / RUN_ID
    run_dir.mkdir()
    for name in ("learning_curves.png", "confusion_matrix.png"):
        (run_dir / name).write_bytes(b"\x89PNG")
    return run_dir


def test_a_completed_run_ends_with_its_accuracy_duration_and_plots(tmp_path):
    run_dir = completed(tmp_path)
    record = {"run_id": RUN_ID, "status": "completed", "metrics": {"test_accuracy": 0.98331}}
    assert end_of_run(run_dir, record, 72.4, Invocation()) == [
        f"run directory: {run_dir}",
        "status: completed, test accuracy: 0.9833; took 1 min 12 s",
        f"plot: {run_dir / 'confusion_matrix.png'}",
        f"plot: {run_dir / 'learning_curves.png'}",
    ]


def test_an_interrupted_run_ends_with_the_command_that_continues_it(tmp_path):
    run_dir = tmp_path / RUN_ID
    record = {
        "run_id": RUN_ID,
        "status": "interrupted",
        "interrupted_by": "SIGINT",
        "epochs_completed": 3,
        "config": {"training": {"epochs": 12}},
    }
    lines = end_of_run(run_dir, record, 41, Invocation(output_dir=tmp_path))
    assert lines == [
        f"run directory: {run_dir}",
        "status: interrupted by SIGINT after 3 of 12 epochs; took 41 s",
        f"continue with: invoke train --resume {RUN_ID} --output-dir {tmp_path}",
    ]


def test_the_resume_command_repeats_only_what_was_not_the_default():
    assert resume_command(RUN_ID, Invocation()) == f"invoke train --resume {RUN_ID}"
    unusual = Invocation(
        data_dir=Path("/home/me/my photos"),
        output_dir=settings.DEFAULT_OUTPUT_DIR,
        cache_dir=Path("/scratch/cache"),
        gpu=True,
        limits=Limits(cpus=1.0, memory="4g"),
    )
    assert resume_command(RUN_ID, unusual) == (
        f"invoke train --resume {RUN_ID} --gpu --data-dir '/home/me/my photos' "
        "--cache-dir /scratch/cache --cpus 1 --memory 4g"
    )


def test_a_failed_run_without_epochs_and_a_run_without_manifest(tmp_path):
    record = {"run_id": RUN_ID, "status": "failed", "epochs_completed": 0}
    lines = end_of_run(tmp_path / RUN_ID, record, 3, Invocation())
    assert lines[1] == "status: failed after 0 epochs; took 3 s"
    assert lines[-1] == f"continue with: invoke train --resume {RUN_ID}"
    assert end_of_run(tmp_path / RUN_ID, None, 3, Invocation()) == [
        f"run directory: {tmp_path / RUN_ID} (no manifest was written)",
        "took 3 s",
    ]


def test_durations_read_like_a_person_says_them():
    assert [duration(s) for s in (0.4, 59.6, 185, 7620)] == ["0 s", "1 min 00 s", "3 min 05 s", "2 h 07 min"]
