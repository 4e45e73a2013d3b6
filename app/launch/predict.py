"""`invoke predict RUN_ID PATH...`: a run's model on image files, in the run's image, as the user.

The model runs in the image the run recorded (its id in the manifest): the code that built
and saved it (Keras, TensorFlow, a models/ file) loads it, whatever was built since. An
engine without that image uses one with the same lock and code hashes, or rebuilds it from
the run's commit as `invoke reproduce` does (app/launch/rebuild.py); `--image` picks another
image on purpose, and says how it differs from the run's.

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
from app.launch import containers, images, rebuild, runs
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


def completed_run(output_dir: Path, run_id: str) -> tuple[Path, dict]:
    run_dir, record = runs.find_run(output_dir, run_id)
    if record.get("status") != Status.COMPLETED or not (run_dir / "model.keras").is_file():
        raise UsageError(
            f"run {run_id} is {record.get('status')}, not completed: it has no model to predict with"
        )
    return run_dir, record


def other_image_hint(record: dict) -> str:
    gpu = (record.get("environment") or {}).get("variant") == "gpu"
    tag = settings.image_tag(gpu)
    return f"predict in another image with --image {tag} (its code may differ from the run's)"


def run_image(record: dict, run_id: str, tag: str | None, echo=print):
    """The image to predict in: `tag` when given (said when it is not the run's), else the
    run's recorded image, an equivalent one, or the run's image rebuilt from its commit."""
    recorded_id = str((record.get("image") or {}).get("id", ""))
    if not images.is_image_id(recorded_id):  # not made by a launcher that records it
        image = images.ensure_image(gpu=tag == settings.image_tag(gpu=True), tag=tag, echo=echo)
        echo(f"note: run {run_id} recorded no image: predicting in {tag or settings.image_tag()}")
        return image
    if tag is not None:
        image = images.ensure_image(gpu=tag == settings.image_tag(gpu=True), tag=tag, echo=echo)
        if image.id != recorded_id:
            differing = rebuild.mismatches(image.labels or {}, record)
            how = f"it differs: {', '.join(differing)}" if differing else "the same lock and code hashes"
            theirs = f"run {run_id}'s image {recorded_id[:19]}"
            echo(f"note: predicting in {tag} ({image.id[:19]}), not in {theirs}: {how}")
        return image
    image = images.find(recorded_id)
    if image is not None:
        return image
    found = rebuild.matching_image(record)  # the same lock and code load the model the same way
    if found is not None:
        echo(
            f"image {recorded_id[:19]} of run {run_id} is not on this engine; "
            f"using {found.id[:19]}, built from the same lock and code"
        )
        return found
    return rebuild.rebuild(record, run_id, echo=echo, hint=other_image_hint(record))


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
    run_dir, record = completed_run(output_dir, request.run_id)
    given = check_paths(request.paths)

    def note(message: str) -> None:  # stdout carries the results only
        print(message, file=sys.stderr, flush=True)

    with contextlib.redirect_stdout(sys.stderr):  # a build's progress, if one is needed
        image = run_image(record, request.run_id, request.image, echo=note)
    status, stdout, stderr = containers.run_captured(predict_spec(image.id, run_dir, given), echo=note)
    if status == containers.EXIT_INTERRUPTED:
        return status
    if status != 0:
        raise TrainboxError(failure_line(stderr, status, given), exit_code=status)
    rows = json.loads(stdout)["predictions"]
    rows = [{**row, "file": shown_as(row["file"], given)} for row in rows]
    echo(predictions.to_json(rows) if request.as_json else predictions.format_table(rows))
    return 0
