"""The host's view of a run: can it be resumed, which containers of it are dead, recording
an end its container could not record (app/launch/report.py prints how it ended).

A run directory has one writer at a time (app/run_lock.py): the host never touches a run
that someone else (a container, Compose, Slurm, another shell) is writing.
"""

from __future__ import annotations

import contextlib
import signal
from pathlib import Path

from app import manifest, run_lock, settings
from app.launch import containers
from app.launch.engine import client, label_filter
from app.launch.errors import UsageError
from app.manifest import Status

ALIVE = ("running", "restarting", "paused", "created")


def read_record(run_dir: Path, what: str) -> dict | None:
    """The run's manifest, or None; an unreadable one is a one-line error, not a traceback."""
    try:
        return manifest.read_manifest(run_dir)
    except ValueError as error:
        raise UsageError(f"{what}: {error}") from None


def run_containers(run_id: str) -> list:
    """Every container of the run the engine knows, alive or dead."""
    return client().containers.list(all=True, filters=label_filter(**{settings.RUN_ID_LABEL: run_id}))


def resumable_run_dir(output_dir: Path, run_id: str) -> Path:
    """The directory of a run that `--resume` may continue; dead containers of it are removed.

    Refused: a run id that is not one, no such run, a completed run, a run that some
    process is writing (its lock is held), a run with a live container.
    """
    if not manifest.is_valid_run_id(run_id):
        raise UsageError(f"--resume {run_id!r} is not a run id like 20261125-180512-3fa9c2")
    run_dir = output_dir / run_id
    record = read_record(run_dir, f"--resume {run_id}")
    if record is None:
        raise UsageError(f"--resume {run_id}: no such run in {output_dir}")
    if record.get("status") == Status.COMPLETED:
        raise UsageError(f"--resume {run_id}: that run already completed; start a new one")
    # Our own container first: its name tells the user what to stop. The lock also catches
    # writers this engine cannot see (Slurm, another host on shared storage).
    found = run_containers(run_id)
    for container in found:
        if container.status in ALIVE:
            raise UsageError(
                f"--resume {run_id}: the run is still going in container {container.name}: "
                f"wait for it, or stop it (docker stop {container.name}) and resume then"
            )
    writer = run_lock.holder(run_dir)
    if writer:
        raise UsageError(
            f"--resume {run_id}: the run is still being written by {writer}: "
            "wait for it to end, or stop it, and resume then"
        )
    # A manifest that says `running` with nobody writing it: the invoking process was
    # SIGKILLed and its container killed afterwards. The new container reuses the names.
    for container in found:
        containers.remove_quietly(container)
    return run_dir


def recorded_workers(run_dir: Path) -> int:
    """How many workers the run was started with (1 when it says nothing)."""
    record = read_record(run_dir, "run directory") or {}
    return int((record.get("cluster") or {}).get("workers") or 1)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


def _ended(record: dict, status: int, reason: str | None) -> dict:
    if reason:
        record.update(status=Status.FAILED, error=reason)
    elif status > 128:
        record.update(status=Status.INTERRUPTED, interrupted_by=_signal_name(status - 128))
    else:
        record.update(
            status=Status.FAILED, error=f"the container exited with status {status} without recording why"
        )
    record.update(finished_at=manifest.utc_now(), exit_status=status, recorded_by="host")
    return record


def record_unrecorded_end(run_dir: Path, status: int, reason: str | None = None) -> None:
    """Mark a run whose container died without updating its manifest (SIGKILL, OOM, crash).

    Only a manifest still saying `running` is touched, and only while the host holds the
    run's lock: a run someone else is writing is theirs to record. With a `reason` the host
    knows the container could not record it (killed for memory), so an earlier
    `interrupted`/`failed` of a run being resumed is replaced too: the last attempt is what
    the manifest must tell.
    """
    replaceable = (Status.RUNNING, Status.INTERRUPTED, Status.FAILED) if reason else (Status.RUNNING,)
    _update_unless_written(
        run_dir,
        lambda record: _ended(record, status, reason) if record.get("status") in replaceable else None,
    )


def note_failure(run_dir: Path, failure: str) -> None:
    """Say in the manifest why a group of workers stopped (the chief only knew it was stopped)."""

    def noted(record: dict) -> dict | None:
        return None if record.get("status") == Status.COMPLETED else {**record, "cluster_failure": failure}

    _update_unless_written(run_dir, noted)


def _update_unless_written(run_dir: Path, change) -> None:
    """Apply `change(record) -> new record or None` while holding the run's lock.

    Best effort: the caller's exit status still tells what happened when the manifest
    cannot be read or written, or when another process is writing the run.
    """
    if not (run_dir / manifest.MANIFEST_NAME).is_file():
        return
    with contextlib.suppress(run_lock.RunLocked, OSError, ValueError), run_lock.hold(run_dir):
        record = manifest.read_manifest(run_dir)
        updated = change(record) if record is not None else None
        if updated is not None:
            manifest.write_manifest(run_dir, updated)


def find_run(output_dir: Path, run_id: str) -> tuple[Path, dict]:
    """A run named by the user: its directory and record; a usage error when there is none."""
    if not manifest.is_valid_run_id(run_id):
        raise UsageError(f"{run_id!r} is not a run id like 20261125-180512-3fa9c2")
    run_dir = output_dir / run_id
    record = read_record(run_dir, f"run {run_id}")
    if record is None:
        raise UsageError(f"no run {run_id} in {output_dir}: pass --output-dir if it is elsewhere")
    return run_dir, record
