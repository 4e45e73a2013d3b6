"""One writer per run directory: an advisory lock held for as long as a process writes the run.

The writer (the training process in the container, or the chief worker) holds an
exclusive `flock` on `<run dir>/.lock` from before its first write to its exit; the kernel
releases it when the process dies, however it dies, so a lock is never stale. Anyone
else (`invoke train --resume`, the host recording an unrecorded end) asks `holder()`
first and leaves a held run alone. The same file works across the bind mount between
host and container, and on NFS v4 shared storage (Linux maps flock to POSIX locks there).

Pure and TF-free: used on both sides.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

LOCK_NAME = ".lock"


class RunLocked(Exception):
    """Another process is writing this run; the message says who, in one line."""


def _describe(lock_path: Path) -> str:
    try:
        facts = json.loads(lock_path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        facts = {}
    if not facts:
        return "another process"
    return f"process {facts.get('pid')} on {facts.get('host')} (since {facts.get('since')})"


def _try_lock(handle) -> bool:
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def holder(run_dir: str | Path) -> str | None:
    """Who is writing the run right now, or None when nobody is (or there is no run)."""
    lock_path = Path(run_dir) / LOCK_NAME
    try:
        handle = open(lock_path, "rb")  # noqa: SIM115 - closed below, after the probe
    except (FileNotFoundError, NotADirectoryError):
        return None
    with handle:
        if _try_lock(handle):
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
            return None
    return _describe(lock_path)


@contextlib.contextmanager
def hold(run_dir: str | Path) -> Iterator[None]:
    """Hold the run's lock for the duration of the block; RunLocked if someone else has it."""
    lock_path = Path(run_dir) / LOCK_NAME
    handle = open(lock_path, "a+b")  # noqa: SIM115 - must stay open while the lock is held
    try:
        if not _try_lock(handle):
            raise RunLocked(f"run {Path(run_dir).name} is being written by {_describe(lock_path)}")
        facts = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "since": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        handle.truncate(0)
        handle.write(json.dumps(facts).encode("utf-8"))
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
