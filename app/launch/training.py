"""`invoke train` and `invoke data`: validate on the host, then run the container."""

from __future__ import annotations

import contextlib
import os
import signal
from dataclasses import dataclass, field
from pathlib import Path

from app import manifest
from app.config import Config, ConfigError, load_config
from app.launch import containers, images
from app.launch.engine import client
from app.launch.errors import TrainboxError, docker_errors
from app.launch.provenance import REPO_ROOT, git_state

DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "outputs"
CONFIG_IN_CONTAINER = "/trainbox/config.yaml"
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg"}
DEFAULT_DATASET = "digits"


@dataclass(frozen=True)
class TrainRequest:
    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    gpu: bool = False
    resume: str | None = None
    data_dir: str | None = None
    output_dir: str | None = None
    image: str | None = None
    limits: containers.Limits = field(default_factory=containers.Limits)
    run_id: str | None = None  # a new run's id chosen by the caller (e.g. `invoke reproduce`)
    reproduces: str | None = None  # recorded in the new manifest as `reproduces`
    workers: int | None = None  # > 1: MultiWorkerMirroredStrategy over N containers (app/launch/cluster.py)


def resolve_dir(path: str | None, default: Path) -> Path:
    return Path(path).expanduser().resolve() if path else default


def ensure_writable_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainboxError(f"{what} {path} cannot be created: {error.strerror}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise TrainboxError(f"{what} {path} is not writable by you (uid {os.getuid()})")


def load_request_config(request: TrainRequest, output_dir: Path) -> tuple[Path, Config]:
    """The config file to mount and the validated config, before anything starts."""
    try:
        if request.resume:
            if request.config_file or request.overrides:
                raise TrainboxError("--resume continues a run with its own config: drop --config/--set")
            run_dir = resumable_run_dir(output_dir, request.resume)
            return run_dir / "config.yaml", load_config(run_dir / "config.yaml")
        config_file = (
            Path(request.config_file).expanduser().resolve() if request.config_file else DEFAULT_CONFIG
        )
        return config_file, load_config(config_file, request.overrides)
    except ConfigError as error:
        raise TrainboxError(str(error), exit_code=2) from None


def read_record(run_dir: Path, what: str) -> dict | None:
    """The run's manifest; an unreadable one is a one-line error, not a traceback."""
    try:
        return manifest.read_manifest(run_dir)
    except ValueError as error:
        raise TrainboxError(f"{what}: {' '.join(str(error).split())}", exit_code=2) from None


def resumable_run_dir(output_dir: Path, run_id: str) -> Path:
    if not manifest.is_valid_run_id(run_id):
        raise TrainboxError(f"--resume {run_id!r} is not a run id like 20261125-180512-3fa9c2", exit_code=2)
    run_dir = output_dir / run_id
    record = read_record(run_dir, f"--resume {run_id}")
    if record is None:
        raise TrainboxError(f"--resume {run_id}: no such run in {output_dir}", exit_code=2)
    if record.get("status") == "completed":
        raise TrainboxError(f"--resume {run_id}: that run already completed; start a new one", exit_code=2)
    clear_dead_containers(run_id)
    return run_dir


def clear_dead_containers(run_id: str) -> None:
    """A run is resumable only when no container of it is alive.

    A manifest that still says `running` may be stale: the invoking process was SIGKILLed
    and the container killed afterwards, so nobody recorded the end. The engine knows.
    Dead containers of the run are removed (the new one reuses the name).
    """
    with docker_errors():
        found = client().containers.list(
            all=True, filters={"label": [f"{images.PROJECT_LABEL}=trainbox", f"trainbox.run_id={run_id}"]}
        )
        for container in found:
            if container.status in ("running", "restarting", "paused", "created"):
                raise TrainboxError(
                    f"--resume {run_id}: the run is still going in container {container.name}: "
                    f"wait for it, or stop it (docker stop {container.name}) and resume then",
                    exit_code=2,
                )
        for container in found:
            containers.remove_quietly(container)


def check_data(config: Config, data_dir: Path) -> None:
    """Catch the data mistakes a user makes most, on the host, in a second."""
    for key in ("train", "validation", "test"):
        relative = getattr(config.data, key)
        if relative is None:
            continue
        folder = (data_dir / relative).resolve()
        if not folder.is_relative_to(data_dir.resolve()):
            raise TrainboxError(
                f"data.{key}: '{relative}' escapes the data directory {data_dir}", exit_code=2
            )
        if not folder.is_dir():
            raise TrainboxError(f"data.{key}: folder not found: {folder}", exit_code=2)
        classes = [
            child.name
            for child in sorted(folder.iterdir())
            if child.is_dir() and any(p.suffix.lower() in IMAGE_SUFFIXES for p in child.iterdir())
        ]
        if not classes:
            raise TrainboxError(
                f"data.{key}: {folder} has no class sub-folders with PNG/JPEG images", exit_code=2
            )
        if key == "train" and len(classes) < 2:
            raise TrainboxError(
                f"data.train: {folder} has a single class ({classes[0]}); at least two are needed",
                exit_code=2,
            )


def uses_default_dataset(config: Config) -> bool:
    paths = [config.data.train, config.data.validation, config.data.test]
    return all(path is None or path.split("/")[0] == DEFAULT_DATASET for path in paths)


def prepare_data(data_dir: Path, gpu: bool = False, image: str | None = None, echo=print) -> None:
    """Write the bundled digits dataset into data_dir (done inside the image: it has scikit-learn)."""
    if (data_dir / DEFAULT_DATASET).is_dir():
        echo(f"{data_dir / DEFAULT_DATASET} already exists")
        return
    ensure_writable_dir(data_dir, "data directory")
    built = images.ensure_image(gpu=gpu, tag=image, echo=echo)
    status = containers.run_foreground(
        containers.ContainerSpec(
            image=built.id,
            command=["python", "-m", "app", "data", "/data"],
            role="data",
            mounts=[containers.bind(str(data_dir), "/data", read_only=False)],
        ),
        echo=echo,
    )
    if status != 0:
        raise TrainboxError(f"writing the default dataset into {data_dir} failed (exit {status})", status)


def train(request: TrainRequest, echo=print) -> int:
    data_dir = resolve_dir(request.data_dir, DEFAULT_DATA_DIR)
    output_dir = resolve_dir(request.output_dir, DEFAULT_OUTPUT_DIR)
    config_file, config = load_request_config(request, output_dir)
    ensure_writable_dir(output_dir, "output directory")
    if not data_dir.is_dir() and request.data_dir and not uses_default_dataset(config):
        raise TrainboxError(f"data directory not found: {data_dir}", exit_code=2)
    if uses_default_dataset(config) and not (data_dir / DEFAULT_DATASET).exists():
        prepare_data(data_dir, gpu=request.gpu, image=request.image, echo=echo)
    check_data(config, data_dir)

    image = images.ensure_image(gpu=request.gpu, tag=request.image, echo=echo)
    run_id = request.resume or request.run_id or manifest.new_run_id()
    command = ["python", "-m", "app", "train", "--data-dir", "/data", "--output-dir", "/outputs"]
    # A resumed run reads its own config.yaml; the container refuses --config with --resume.
    if request.resume:
        command += ["--resume", run_id]
    else:
        command += ["--config", CONFIG_IN_CONTAINER, "--run-id", run_id]
    for override in () if request.resume else request.overrides:
        command += ["--set", override]
    git = git_state()
    spec = containers.ContainerSpec(
        image=image.id,
        command=command,
        role="train",
        name=f"trainbox-train-{run_id}",
        labels={"trainbox.run_id": run_id},
        mounts=[
            containers.bind(str(data_dir), "/data", read_only=True),
            containers.bind(str(output_dir), "/outputs", read_only=False),
            containers.bind(str(config_file), CONFIG_IN_CONTAINER, read_only=True),
        ],
        environment={
            "TRAINBOX_LAUNCHER": "invoke",  # the host reports the run directory itself
            "TRAINBOX_IMAGE_ID": image.id,
            "TRAINBOX_IMAGE_TAG": images.display_tag(image, request.image or images.default_tag(request.gpu)),
            "TRAINBOX_GIT_COMMIT": git.commit,
            "TRAINBOX_GIT_DIRTY": str(git.dirty).lower(),
            **({"TRAINBOX_REPRODUCES": request.reproduces} if request.reproduces else {}),
        },
        gpu=request.gpu,
        limits=request.limits,
    )
    echo(f"run {run_id}: training in {spec.environment['TRAINBOX_IMAGE_TAG']} ({image.short_id})")
    workers = cluster_size(request, output_dir / run_id)
    if workers > 1:
        from app.launch import cluster

        return cluster.train_cluster(spec, run_id, workers, output_dir / run_id, echo=echo)
    try:
        status = containers.run_foreground(spec, echo=echo)
    except TrainboxError as error:  # e.g. OOM-killed: the container could not record it
        record_unrecorded_end(output_dir / run_id, error.exit_code, reason=str(error))
        raise
    record_unrecorded_end(output_dir / run_id, status)
    report_run(output_dir / run_id, echo)
    return status


def cluster_size(request: TrainRequest, run_dir: Path) -> int:
    """--workers, or on --resume without it the run's own worker count."""
    if request.workers is not None:
        if request.workers < 1:
            raise TrainboxError(f"--workers {request.workers}: give 1 or more", exit_code=2)
        return request.workers
    if request.resume:
        return int(((read_record(run_dir, "run directory") or {}).get("cluster") or {}).get("workers") or 1)
    return 1


def record_unrecorded_end(run_dir: Path, status: int, reason: str | None = None) -> None:
    """Mark a run whose container died without updating its manifest (SIGKILL, OOM, crash).

    Only a manifest still saying `running` is touched, and the container is gone by now,
    so nothing else writes it concurrently. With a `reason` the host knows the container
    could not record it (killed for memory), so an earlier `interrupted`/`failed` of a run
    being resumed is replaced too: the last attempt is what the manifest must tell.
    """
    try:
        record = manifest.read_manifest(run_dir)
    except ValueError:
        return  # report_run says so in one line
    replaceable = ("running", "interrupted", "failed") if reason else ("running",)
    if record is None or record.get("status") not in replaceable:
        return
    if reason:
        record.update(status="failed", error=reason)
    elif status > 128:
        record.update(status="interrupted", interrupted_by=_signal_name(status - 128))
    else:
        record.update(
            status="failed", error=f"the container exited with status {status} without recording why"
        )
    record["finished_at"] = manifest.utc_now()
    record["exit_status"] = status
    record["recorded_by"] = "host"
    with contextlib.suppress(OSError):  # the exit status still tells
        manifest.write_manifest(run_dir, record)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def report_run(run_dir: Path, echo=print) -> None:
    record = read_record(run_dir, "run directory")
    if record is None:
        echo(f"run directory: {run_dir} (no manifest was written)")
        return
    accuracy = (record.get("metrics") or {}).get("test_accuracy")
    echo(f"run directory: {run_dir}")
    echo(
        f"status: {record.get('status')}"
        + (f", test accuracy: {accuracy:.4f}" if accuracy is not None else "")
    )
