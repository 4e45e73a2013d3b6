"""`invoke predict RUN_ID PATH...`: a run's model on image files, in the image, as the user.

The paths are checked on the host first (one line for a path that is not there, a file that
is no image, a folder without images); each is then mounted read-only into a container with
no network, beside the run directory (read-only too), and `python -m app predict` decodes
them exactly as the training did. The host prints the table with the paths as given.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from app import predictions, settings
from app.launch import containers, images, runs
from app.launch.errors import TrainboxError, UsageError
from app.launch.folders import resolve_dir
from app.manifest import Status

ROLE = "predict"


@dataclass(frozen=True)
class PredictRequest:
    run_id: str
    paths: tuple[str, ...]
    output_dir: str | None = None
    as_json: bool = False
    image: str | None = None


@dataclass(frozen=True)
class Given:
    """One path as the user typed it, where it is on the host, and where the container sees it."""

    text: str
    host: Path
    inside: str


def completed_run(output_dir: Path, run_id: str) -> Path:
    run_dir, record = runs.find_run(output_dir, run_id)
    if record.get("status") != Status.COMPLETED or not (run_dir / "model.keras").is_file():
        raise UsageError(
            f"run {run_id} is {record.get('status')}, not completed: it has no model to predict with"
        )
    return run_dir


def check_paths(paths: tuple[str, ...]) -> list[Given]:
    if not paths:
        raise UsageError("give at least one image file or folder")
    given = []
    for index, text in enumerate(paths):
        try:
            predictions.image_files(text)
        except ValueError as error:
            raise UsageError(str(error)) from None
        host = Path(text).expanduser().resolve()
        inside = PurePosixPath(settings.PREDICT_MOUNT, str(index))
        given.append(Given(text, host, str(inside if host.is_dir() else inside / host.name)))
    return given


def predict_spec(image_id: str, run_dir: Path, given: list[Given]) -> containers.ContainerSpec:
    command = ["python", "-m", "app", "predict", settings.RUN_MOUNT, *(g.inside for g in given), "--json"]
    mounts = [containers.bind(str(run_dir), settings.RUN_MOUNT, read_only=True)]
    mounts += [containers.bind(str(g.host), g.inside, read_only=True) for g in given]
    return containers.ContainerSpec(
        image=image_id, command=command, role=ROLE, mounts=mounts, network_mode="none"
    )


def shown_as(path: str, given: list[Given]) -> str:
    """A path inside the container as the user would write it, from the path they gave."""
    for item in given:
        if path == item.inside:
            return item.text
        if path.startswith(item.inside + "/"):
            return os.path.join(item.text, path[len(item.inside) + 1 :])
    return path


def failure_line(stderr: bytes, status: int, given: list[Given]) -> str:
    """The container's one `trainbox:` line, naming the paths as the user gave them."""
    lines = [line for line in stderr.decode(errors="replace").splitlines() if line.startswith("trainbox: ")]
    if not lines:
        return f"predicting failed (exit {status})"
    line = lines[-1].removeprefix("trainbox: ")
    for item in sorted(given, key=lambda g: len(g.inside), reverse=True):
        line = line.replace(item.inside, item.text.rstrip("/") or item.text)
    return line


def predict(request: PredictRequest, echo=print) -> int:
    output_dir = resolve_dir(request.output_dir, settings.DEFAULT_OUTPUT_DIR)
    run_dir = completed_run(output_dir, request.run_id)
    given = check_paths(request.paths)

    def note(message: str) -> None:  # stdout carries the results only
        print(message, file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr):  # a build's progress, if the image is stale
        image = images.ensure_image(gpu=False, tag=request.image, echo=note)
    status, stdout, stderr = containers.run_captured(predict_spec(image.id, run_dir, given), echo=note)
    if status == containers.EXIT_INTERRUPTED:
        return status
    if status != 0:
        raise TrainboxError(failure_line(stderr, status, given), exit_code=status)
    rows = json.loads(stdout)["predictions"]
    rows = [{**row, "file": shown_as(row["file"], given)} for row in rows]
    echo(predictions.to_json(rows) if request.as_json else predictions.format_table(rows))
    return 0
