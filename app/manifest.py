"""Run ids and the run manifest: the TF-free pieces shared by the host and the container.

Imported by host code, so nothing here may import tensorflow, numpy or docker.
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

MANIFEST_NAME = "manifest.json"


class Status(StrEnum):
    """A run's `status` in its manifest (a str: it compares and serialises as its value)."""

    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    INTERRUPTED = "interrupted"


STATUSES = tuple(Status)
_RUN_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")


def new_run_id(now: float | None = None) -> str:
    """'20261125-180512-3fa9c2': sortable by start time, unique by its random suffix."""
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(time.time() if now is None else now))
    return f"{stamp}-{secrets.token_hex(3)}"


def is_valid_run_id(run_id: str) -> bool:
    """A safe folder name: no separators, no '..', not hidden."""
    return bool(_RUN_ID.match(run_id)) and ".." not in run_id


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


def read_manifest(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's manifest, or None when the run directory or its manifest does not exist."""
    path = Path(run_dir) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except NotADirectoryError:
        return None
    except (OSError, ValueError) as error:
        raise ValueError(f"cannot read {path}: {error}") from None


def write_manifest(run_dir: str | Path, record: dict[str, Any]) -> None:
    record["updated_at"] = utc_now()
    write_json_atomic(Path(run_dir) / MANIFEST_NAME, record)
