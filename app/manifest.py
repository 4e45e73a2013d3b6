"""Run ids and the run manifest: the TF-free pieces shared by the host and the container.

`RunRecord` is the manifest's schema: the keys DESIGN.md promises, typed, plus whatever
else a run wrote (unknown keys are kept and written back as they were read), so older
manifests still load and the JSON keeps its shape. Imported by host code, so nothing here
may import tensorflow, numpy or docker.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import tempfile
import time
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

MANIFEST_NAME = "manifest.json"


class Status(StrEnum):
    """A run's `status` in its manifest (a str: it compares and serialises as its value)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


STATUSES = tuple(Status)
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def new_run_id(now: float | None = None) -> str:
    """'20261125-180512-3fa9c2': sortable by start time, unique by its random suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def is_valid_run_id(run_id: str) -> bool:
    """A safe folder name: no separators, no '..', not hidden."""
    return bool(_RUN_ID.fullmatch(run_id)) and ".." not in run_id


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def fsync_dir(path: str | Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # some file systems refuse fsync on directories; the rename is still atomic
    finally:
        os.close(fd)


def _umask() -> int:
    current = os.umask(0o022)
    os.umask(current)
    return current


def write_bytes_atomic(path: str | Path, data: bytes) -> None:
    """Readers see the old file or the new one, never a torn one (tmp + fsync + rename)."""
    path = Path(path)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the user's usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_json_atomic(path: str | Path, payload: Any) -> None:
    text = json.dumps(payload, indent=2, sort_keys=False, allow_nan=False, default=str) + "\n"
    write_bytes_atomic(path, text.encode("utf-8"))


class _Record(BaseModel):
    # Unknown keys are kept (older or newer code wrote them); only the keys set are written,
    # so a record read and written back is the same JSON.
    model_config = ConfigDict(extra="allow", validate_assignment=True)


class LayerRecord(_Record):
    digest: str  # sha256 of the uncompressed layer (the image config's diff_id)
    step: str | None = None  # the Dockerfile step that made it, as the image's history says


class ImageRecord(_Record):
    id: str
    tag: str
    code_sha256: str | None = None  # the image's trainbox.code_sha256 label (what it was built from)
    # Oldest first. Two builds of one commit share the venv and code layers
    # (docs/reproducible-images.md); the image id differs with the base and apt layers.
    layers: list[LayerRecord] | None = None


class GitRecord(_Record):
    commit: str
    dirty: bool | None


class EnvironmentRecord(_Record):
    python: str
    tensorflow: str
    packages_sha256: str


class DataRecord(_Record):
    fingerprint: str


class ClusterRecord(_Record):
    workers: int = 1


class NumericsRecord(_Record):
    """What decides the weights besides config and data (app/train/numerics.py writes it)."""

    mode: bool | str  # the config's `deterministic`: true, false or "portable"
    cpu_model: str
    cpu_isa_flags: list[str]
    onednn_isa: str | None  # None: not an x86 CPU
    onednn_isa_cap: str | None = None
    onednn_isa_source: str | None = None
    onednn_opts: bool
    intra_op_threads: int
    inter_op_threads: int
    tensorflow: str
    keras: str
    numpy: str
    jit_compile: bool | str
    precision: str
    gpu: dict[str, Any] | None = None  # model, compute_capability, driver, cuda, cudnn


class SweepRecord(_Record):
    id: str
    trial: int


class RunRecord(_Record):
    """One run's manifest.json. Keys in the order a completed run writes them."""

    run_id: str
    status: Status
    created_at: str | None = None
    reproduces: str | None = None  # the run this one re-runs (`invoke reproduce`)
    sweep: SweepRecord | None = None  # the sweep this run is a trial of (`invoke sweep`)
    config: dict[str, Any] | None = None
    seed: int | None = None
    determinism: dict[str, Any] | None = None
    data: DataRecord | None = None
    model: dict[str, Any] | None = (
        None  # architecture, parameters; weights file / model code and their sha256
    )
    epochs_completed: int = 0
    metrics: dict[str, Any] | None = None
    cluster: ClusterRecord | None = None
    image: ImageRecord | None = None
    git: GitRecord | None = None
    environment: EnvironmentRecord | None = None
    numerics: NumericsRecord | None = None
    started_at: str | None = None
    updated_at: str | None = None
    resumes: list[dict[str, Any]] | None = None  # one entry per --resume, oldest first
    resumed_from: dict[str, Any] | None = None  # the latest of them
    weights_sha256: str | None = None
    finished_at: str | None = None
    error: str | None = None  # why a run failed, in one line
    interrupted_by: str | None = None  # SIGTERM, SIGINT, ...

    @property
    def workers(self) -> int:
        return self.cluster.workers if self.cluster is not None else 1

    def to_json(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)

    def forget(self, key: str) -> None:
        """Drop a key from the manifest, as if it had never been written."""
        if key in type(self).model_fields:
            setattr(self, key, type(self).model_fields[key].get_default())
            self.model_fields_set.discard(key)
        elif self.model_extra is not None:
            self.model_extra.pop(key, None)


def _one_line(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first["loc"]) or "the top level"
    return f"'{where}': {first['msg']}"


def parse_record(payload: Any, source: str = MANIFEST_NAME) -> RunRecord:
    """A manifest's JSON as a RunRecord; ValueError (one line) when it does not fit the schema."""
    try:
        return RunRecord.model_validate(payload)
    except ValidationError as error:
        raise ValueError(f"{source} is not a run manifest: {_one_line(error)}") from None


def read_record(run_dir: str | Path) -> RunRecord | None:
    """The run's manifest, or None when the run directory or its manifest does not exist."""
    path = Path(run_dir) / MANIFEST_NAME
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, NotADirectoryError):
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None
    return parse_record(payload, str(path))


def write_record(run_dir: str | Path, record: RunRecord) -> None:
    """Replace the run's manifest atomically, stamping `updated_at`."""
    record.updated_at = utc_now()
    write_json_atomic(Path(run_dir) / MANIFEST_NAME, record.to_json())


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """`read_record` as a plain dict, for callers that edit the JSON as a mapping."""
    record = read_record(run_dir)
    return None if record is None else record.to_json()


def write_manifest(run_dir: str | Path, payload: dict[str, Any]) -> None:
    """`write_record` from a plain dict (checked against the schema first)."""
    write_record(run_dir, parse_record(payload))
