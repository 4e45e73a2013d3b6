"""`invoke train` and `invoke data`: validate on the host, then run the container(s)."""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from app import architectures, manifest, settings
from app.config import Config, ConfigError, load_config
from app.container_env import LaunchFacts
from app.launch import cluster, containers, images, report, runs
from app.launch.errors import TrainboxError, UsageError, boundary
from app.launch.folders import ensure_writable_dir, resolve_dir
from app.launch.provenance import git_state

DATA_LOCK = ".trainbox-data.lock"


@dataclass(frozen=True)
class TrainRequest:
    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    gpu: bool = False
    resume: str | None = None
    data_dir: str | None = None
    output_dir: str | None = None
    cache_dir: str | None = None  # decoded images; default <output dir>/.cache (no extra mount)
    image: str | None = None
    limits: containers.Limits = field(default_factory=containers.Limits)
    run_id: str | None = None  # a new run's id chosen by the caller (e.g. `invoke reproduce`)
    reproduces: str | None = None  # recorded in the new manifest as `reproduces`
    workers: int | None = None  # > 1: MultiWorkerMirroredStrategy over N containers
    replay: dict[str, Any] = field(default_factory=dict)  # `invoke reproduce`: LaunchFacts' threads, isa_cap
    sweep: tuple[str, int] | None = None  # `invoke sweep`: (sweep id, trial number), recorded in the manifest


def load_request_config(request: TrainRequest, output_dir: Path) -> tuple[Path, Config]:
    """The config file to mount and the validated config, before anything starts."""
    try:
        if request.resume:
            if request.config_file or request.overrides:
                raise UsageError("--resume continues a run with its own config: drop --config/--set")
            run_dir = runs.resumable_run_dir(output_dir, request.resume)
            return run_dir / "config.yaml", load_config(run_dir / "config.yaml")
        config_file = resolve_dir(request.config_file, settings.DEFAULT_CONFIG)
        return config_file, load_config(config_file, request.overrides)
    except ConfigError as error:
        raise UsageError(str(error)) from None


def _class_folders(folder: Path) -> list[str]:
    return [
        child.name
        for child in sorted(folder.iterdir())
        if child.is_dir() and any(settings.is_image_name(p.name) for p in child.iterdir())
    ]


def check_data(config: Config, data_dir: Path) -> None:
    """Catch the data mistakes a user makes most, on the host, in a second."""
    for key in ("train", "validation", "test"):
        relative = getattr(config.data, key)
        if relative is None:
            continue
        folder = (data_dir / relative).resolve()
        if not folder.is_relative_to(data_dir.resolve()):
            raise UsageError(f"data.{key}: '{relative}' escapes the data directory {data_dir}")
        if not folder.is_dir():
            raise UsageError(f"data.{key}: folder not found: {folder}")
        classes = _class_folders(folder)
        if not classes:
            raise UsageError(
                f"data.{key}: {folder} has no class sub-folders with images ({settings.IMAGE_KINDS})"
            )
        if key == "train" and len(classes) < 2:
            raise UsageError(
                f"data.train: {folder} has a single class ({classes[0]}); two or more are needed"
            )


def check_model_inputs(config: Config, data_dir: Path) -> None:
    """The model file (models/<name>.py) and a weights file exist, on the host, in a second."""
    missing = architectures.missing_model_file(config.model.architecture, settings.REPO_ROOT)
    if missing:
        raise UsageError(missing)
    missing = architectures.missing_weights_file(config.model.weights, data_dir)
    if missing:
        raise UsageError(missing)


def keras_cache(config: Config) -> Path | None:
    """Keras' download cache on the host, created by the user, when the run wants ImageNet weights."""
    if config.model.weights != architectures.IMAGENET:
        return None
    cache = settings.keras_cache_dir()
    ensure_writable_dir(cache, "Keras cache directory")
    return cache


def uses_default_dataset(config: Config) -> bool:
    paths = [config.data.train, config.data.validation, config.data.test]
    return all(path is None or path.split("/")[0] == settings.DEFAULT_DATASET for path in paths)


@contextlib.contextmanager
def _writing_data(data_dir: Path) -> Iterator[None]:
    """One writer of the default dataset at a time: concurrent first runs wait for the first."""
    with open(data_dir / DATA_LOCK, "a") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)  # released when the file is closed
        yield


def prepare_data(data_dir: Path, gpu: bool = False, image: str | None = None, echo=print) -> None:
    """Write the bundled digits dataset into data_dir (done inside the image, which carries it)."""
    if (data_dir / settings.DEFAULT_DATASET).is_dir():
        echo(f"{data_dir / settings.DEFAULT_DATASET} already exists")
        return
    ensure_writable_dir(data_dir, "data directory")
    with _writing_data(data_dir):
        if (data_dir / settings.DEFAULT_DATASET).is_dir():
            return  # written meanwhile by a run started at the same time
        _write_default_dataset(data_dir, gpu, image, echo)


def _write_default_dataset(data_dir: Path, gpu: bool, image: str | None, echo) -> None:
    built = images.ensure_image(gpu=gpu, tag=image, echo=echo)
    status = containers.run_foreground(
        containers.ContainerSpec(
            image=built.id,
            command=["python", "-m", "app", "data", settings.DATA_MOUNT],
            role="data",
            mounts=[containers.bind(str(data_dir), settings.DATA_MOUNT, read_only=False)],
        ),
        echo=echo,
    )
    if status != 0:
        raise TrainboxError(f"writing the default dataset into {data_dir} failed (exit {status})", status)


def train_command(request: TrainRequest, run_id: str) -> list[str]:
    command = [
        "python",
        "-m",
        "app",
        "train",
        "--data-dir",
        settings.DATA_MOUNT,
        "--output-dir",
        settings.OUTPUTS_MOUNT,
    ]
    if request.resume:  # a resumed run reads its own config.yaml; the container refuses --config
        return [*command, "--resume", run_id]
    command += ["--config", settings.CONFIG_MOUNT, "--run-id", run_id]
    for override in request.overrides:
        command += ["--set", override]
    return command


def launch_facts(request: TrainRequest, image) -> LaunchFacts:
    """What the host tells the training container about the run (its TRAINBOX_* variables)."""
    git = git_state()
    return LaunchFacts(
        image_id=image.id,
        image_tag=images.display_tag(image, request.image or settings.image_tag(request.gpu)),
        image_code_sha256=(image.labels or {}).get(settings.CODE_LABEL),
        image_layers=images.image_layers(image),
        git_commit=git.commit,
        git_dirty=git.dirty,
        launched_by_invoke=True,  # the host reports the run directory itself
        reproduces=request.reproduces,
        **request.replay,
        sweep_id=request.sweep[0] if request.sweep else None,
        sweep_trial=request.sweep[1] if request.sweep else None,
    )


def training_spec(
    request: TrainRequest,
    run_id: str,
    facts: LaunchFacts,
    dirs: tuple[Path, Path, Path],
    cache_dir: Path | None = None,
    keras_cache_dir: Path | None = None,
) -> containers.ContainerSpec:
    """The container of one run: data read-only, outputs writable, the config file mounted,
    a chosen cache dir writable (without one, the cache is in the outputs), and Keras'
    download cache writable when the run uses ImageNet weights."""
    data_dir, output_dir, config_file = dirs
    command = train_command(request, run_id)
    mounts = [
        containers.bind(str(data_dir), settings.DATA_MOUNT, read_only=True),
        containers.bind(str(output_dir), settings.OUTPUTS_MOUNT, read_only=False),
        containers.bind(str(config_file), settings.CONFIG_MOUNT, read_only=True),
    ]
    environment = facts.to_environment()
    if cache_dir is not None:
        mounts.append(containers.bind(str(cache_dir), settings.CACHE_MOUNT, read_only=False))
        command += ["--cache-dir", settings.CACHE_MOUNT]
    if keras_cache_dir is not None:
        mounts.append(containers.bind(str(keras_cache_dir), settings.KERAS_CACHE_MOUNT, read_only=False))
        environment["KERAS_HOME"] = settings.KERAS_CACHE_MOUNT  # where Keras looks and downloads
    return containers.ContainerSpec(
        image=facts.image_id,
        command=command,
        role="train",
        name=f"trainbox-train-{run_id}",
        labels={settings.RUN_ID_LABEL: run_id},
        mounts=mounts,
        environment=environment,
        gpu=request.gpu,
        limits=request.limits,
    )


def prepare(request: TrainRequest, echo) -> tuple[Path, Path, Path, Config]:
    data_dir = resolve_dir(request.data_dir, settings.DEFAULT_DATA_DIR)
    output_dir = resolve_dir(request.output_dir, settings.DEFAULT_OUTPUT_DIR)
    config_file, config = load_request_config(request, output_dir)  # a typo costs a second, no engine
    containers.check_engine_supports(request.gpu, request.limits)
    ensure_writable_dir(output_dir, "output directory")
    if not data_dir.is_dir() and request.data_dir and not uses_default_dataset(config):
        raise UsageError(f"data directory not found: {data_dir}")
    if uses_default_dataset(config) and not (data_dir / settings.DEFAULT_DATASET).exists():
        prepare_data(data_dir, gpu=request.gpu, image=request.image, echo=echo)
    check_data(config, data_dir)
    check_model_inputs(config, data_dir)
    return data_dir, output_dir, config_file, config


def worker_count(request: TrainRequest, run_dir: Path) -> int:
    """--workers, or on --resume without it the run's own worker count."""
    if request.workers is not None:
        if request.workers < 1:
            raise UsageError(f"--workers {request.workers}: give 1 or more")
        return request.workers
    return runs.recorded_workers(run_dir) if request.resume else 1


def _run(spec: containers.ContainerSpec, run_id: str, workers: int, echo) -> tuple[int, str | None]:
    if workers > 1:
        outcome = cluster.run_workers(spec, run_id, workers, echo=echo)
        return outcome.status, outcome.failure
    return containers.run_foreground(spec, echo=echo), None


def train(request: TrainRequest, echo=print) -> int:
    """Validate, run the training container (or N workers), record what it could not, report."""
    data_dir, output_dir, config_file, config = prepare(request, echo)
    cache_dir = resolve_dir(request.cache_dir, output_dir) if request.cache_dir else None
    if cache_dir is not None:
        ensure_writable_dir(cache_dir, "cache directory")
    keras_cache_dir = keras_cache(config)
    image = images.ensure_image(gpu=request.gpu, tag=request.image, echo=echo)
    run_id = request.resume or request.run_id or manifest.new_run_id()
    run_dir = output_dir / run_id
    facts = launch_facts(request, image)
    if keras_cache_dir is not None:
        facts = dataclasses.replace(facts, keras_cache_host=str(keras_cache_dir))
    dirs = (data_dir, output_dir, config_file)
    spec = training_spec(request, run_id, facts, dirs, cache_dir, keras_cache_dir)
    echo(f"run {run_id}: training in {facts.image_tag} ({image.short_id})")
    workers = worker_count(request, run_dir)
    started = time.monotonic()
    try:
        with boundary():
            status, failure = _run(spec, run_id, workers, echo)
    except TrainboxError as error:  # e.g. OOM-killed: the container could not record it
        runs.record_unrecorded_end(run_dir, error.exit_code, reason=str(error))
        raise
    runs.record_unrecorded_end(run_dir, status)
    if failure:
        runs.note_failure(run_dir, failure)
    if failure and status != containers.EXIT_INTERRUPTED:
        echo(f"trainbox: {failure}")
    invocation = report.Invocation(
        data_dir, output_dir, cache_dir, gpu=request.gpu, image=request.image, limits=request.limits
    )
    record = runs.read_record(run_dir, "run directory")
    for line in report.end_of_run(run_dir, record, time.monotonic() - started, invocation):
        echo(line)
    return status
