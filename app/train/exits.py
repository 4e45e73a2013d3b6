"""How `python -m app train` ends: exception -> exit status, the one `trainbox:` line, the run's status.

0 completed; 1 the training failed (a full disk says how to resume); 2 the user's mistake;
128+n interrupted by signal n. Pure: the caller prints and writes what an `Ending` says.
"""

from __future__ import annotations

import errno
from dataclasses import dataclass, field

from app.config import ConfigError
from app.manifest import Status
from app.train.errors import Interrupted, UserError
from app.train.signals import signal_name

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
DISK_FULL = "the disk holding the output directory is full"


@dataclass(frozen=True)
class Ending:
    exit_status: int
    line: str  # printed after "trainbox: "
    status: Status | None = None  # what the run's manifest says now; None: leave it as it is
    fields: dict[str, str] = field(default_factory=dict)  # recorded with the status
    show_run_dir: bool = False  # the run directory holds something worth finding
    show_traceback: bool = False  # not the user's mistake: the stack helps whoever debugs it


def squash(text: object, limit: int = 500) -> str:
    """One line of at most `limit` characters."""
    return " ".join(str(text).split())[:limit]


def ending_for(error: BaseException, run_id: str | None, claimed: bool) -> Ending:
    """`claimed`: this process wrote the run's `running` manifest, so it must record the end."""
    if isinstance(error, Interrupted):
        name = signal_name(error.signum)
        if not claimed:
            return Ending(128 + error.signum, f"interrupted by {name}")
        return Ending(
            128 + error.signum,
            f"interrupted by {name}; continue with --resume {run_id}",
            Status.INTERRUPTED,
            {"interrupted_by": name},
            show_run_dir=True,
        )
    if isinstance(error, (UserError, ConfigError)):
        line = squash(error)
        return Ending(EXIT_USAGE, line, Status.FAILED if claimed else None, {"error": line})
    full = disk_full(error)
    if full is not None and claimed:
        # Checkpoints are written under a temporary name and renamed, so the last complete
        # one survives: free space, then resume from it.
        return Ending(
            EXIT_FAILED,
            f"{DISK_FULL}: free space, then continue with --resume {run_id}",
            Status.FAILED,
            {"error": f"{DISK_FULL}: {squash(full, 300)}"},
            show_run_dir=True,
        )
    line = squash(f"{type(error).__name__}: {error}")
    return Ending(
        EXIT_FAILED,
        f"training failed: {line}",
        Status.FAILED if claimed else None,
        {"error": line},
        show_run_dir=claimed,
        show_traceback=True,
    )


def disk_full(error: BaseException | None) -> BaseException | None:
    """The ENOSPC/EDQUOT error anywhere in the chain (Keras and TensorFlow wrap some)."""
    while error is not None:
        if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
            return error
        if "No space left on device" in str(error):
            return error
        error = error.__cause__ or error.__context__
    return None
