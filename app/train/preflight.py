"""Everything a user can get wrong, checked before TensorFlow is imported or a run dir exists.

A new run: the config, a safe run id, a writable output directory, a run directory that
does not exist yet. A resume: the run's own config and manifest, a status that can be
resumed, and the run's lock (so a second writer is refused before it writes anything).
Both: the data folders, listed (each image is checked when it is decoded into the cache).
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path

from app import architectures, manifest, run_lock, settings
from app.config import Config, load_config
from app.manifest import RunRecord, Status
from app.train.errors import UserError
from app.train.files import Plan, plan_dataset
from app.train.outputs import CONFIG_NAME


@dataclass(frozen=True)
class TrainRequest:
    """`python -m app train` as typed: the flags, with the directories already resolved."""

    data_dir: Path
    output_dir: Path
    config_file: str | None = None
    overrides: tuple[str, ...] = ()
    run_id: str | None = None
    resume: str | None = None
    cache_dir: Path | None = None  # decoded images; None: <output dir>/.cache

    @property
    def cache(self) -> Path:
        return self.cache_dir or settings.default_cache_dir(self.output_dir)


@dataclass
class Preflight:
    config: Config
    run_id: str
    run_dir: Path
    record: RunRecord | None  # the run's manifest when resuming
    plan: Plan


def preflight(request: TrainRequest, lock: contextlib.ExitStack | None) -> Preflight:
    """Check the request; a resume holds the run's lock in `lock` from here on.

    `lock` is None in a process that never writes the run directory (a worker other than
    the chief): it only reads the run.
    """
    if request.resume:
        run_id = request.resume
        config, record = check_resume(request, lock)
    else:
        config = load_config(request.config_file, request.overrides)
        run_id = request.run_id or manifest.new_run_id()
        check_new_run(request.output_dir, run_id, writes=lock is not None)
        record = None
    check_model_inputs(config, request.data_dir)
    plan = plan_dataset(request.data_dir, config.data, config.seed)
    return Preflight(config, run_id, request.output_dir / run_id, record, plan)


def check_model_inputs(config: Config, data_dir: Path) -> None:
    """The model file baked into the image and the weights file in the data directory exist."""
    for missing in (
        architectures.missing_model_file(config.model.architecture, settings.REPO_ROOT),
        architectures.missing_weights_file(config.model.weights, data_dir),
    ):
        if missing:
            raise UserError(missing)


def check_new_run(output_dir: Path, run_id: str, writes: bool) -> None:
    if not manifest.is_valid_run_id(run_id):
        raise UserError(f"run id {run_id!r} is not a safe folder name (letters, digits, '-', '_', '.')")
    if not writes:
        return
    check_writable(output_dir)
    run_dir = output_dir / run_id
    if run_dir.exists():
        raise UserError(f"run directory {run_dir} already exists; run directories are never reused")


def check_writable(output_dir: Path) -> None:
    try:
        output_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=output_dir, prefix=".write-test-"):
            pass
    except OSError as error:
        raise UserError(f"output directory {output_dir} is not writable: {error.strerror or error}") from None


def check_resume(request: TrainRequest, lock: contextlib.ExitStack | None) -> tuple[Config, RunRecord]:
    """The run's config and manifest; the run's lock is taken before anything is written."""
    run_id = request.resume
    if request.config_file or request.overrides:
        raise UserError("--resume reads the run's own config.yaml; drop --config/--set")
    if request.run_id and request.run_id != run_id:
        raise UserError("--run-id and --resume name different runs")
    if not manifest.is_valid_run_id(run_id):
        raise UserError(f"--resume {run_id!r} is not a run id")
    run_dir = request.output_dir / run_id
    if not (run_dir / CONFIG_NAME).is_file():
        raise UserError(f"--resume {run_id}: no such run in {request.output_dir}")
    resumable_record(run_dir, run_id)  # refuses a completed run without taking its lock
    if lock is not None:
        hold_lock(lock, run_dir, f"--resume {run_id}")
    # Read again under the lock: the writer that held it may have finished meanwhile.
    return load_config(run_dir / CONFIG_NAME), resumable_record(run_dir, run_id)


def resumable_record(run_dir: Path, run_id: str) -> RunRecord:
    try:
        record = manifest.read_record(run_dir)
    except ValueError as error:
        raise UserError(f"--resume {run_id}: {error}") from None
    if record is None:
        raise UserError(f"--resume {run_id}: no such run in {run_dir.parent}")
    if record.status is Status.COMPLETED:
        raise UserError(f"--resume {run_id}: that run already completed; start a new one")
    return record


def hold_lock(lock: contextlib.ExitStack, run_dir: Path, what: str) -> None:
    """Hold the run's lock until `lock` closes (this process' end); one line if someone else has it."""
    try:
        lock.enter_context(run_lock.hold(run_dir))
    except run_lock.RunLocked as error:
        raise UserError(f"{what}: {error}") from None
    except OSError as error:
        raise UserError(f"{what}: cannot write the run directory {run_dir}: {error.strerror}") from None
