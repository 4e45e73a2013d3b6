"""The few lines that end `invoke train` and `invoke reproduce`: what a user needs next.

Where the run is, how it ended, how good it is, how long it took, where its plots are, and
for a run that did not finish the exact command that continues it. Pure formatting: the
caller reads the manifest and measures the time.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

from app import settings
from app.launch.containers import DEFAULT_SHM_SIZE, Limits
from app.manifest import Status

RESUMABLE = (Status.FAILED, Status.INTERRUPTED, Status.RUNNING)


@dataclass(frozen=True)
class Invocation:
    """The options of the `invoke train` that ran, as far as `--resume` needs them again."""

    data_dir: Path = settings.DEFAULT_DATA_DIR
    output_dir: Path = settings.DEFAULT_OUTPUT_DIR
    cache_dir: Path | None = None
    gpu: bool = False
    image: str | None = None
    limits: Limits = field(default_factory=Limits)


def resume_command(run_id: str, invocation: Invocation) -> str:
    """`invoke train --resume RUN_ID` with every option that was not the default."""
    words = ["invoke", "train", "--resume", run_id]
    if invocation.gpu:
        words.append("--gpu")
    for option, value, default in (
        ("--data-dir", invocation.data_dir, settings.DEFAULT_DATA_DIR),
        ("--output-dir", invocation.output_dir, settings.DEFAULT_OUTPUT_DIR),
        ("--cache-dir", invocation.cache_dir, None),
        ("--image", invocation.image, None),
        ("--cpus", invocation.limits.cpus, None),  # another CPU count gives other weights
        ("--memory", invocation.limits.memory, None),
        ("--shm-size", invocation.limits.shm_size, DEFAULT_SHM_SIZE),
    ):
        if value is not None and value != default:
            words += [option, f"{value:g}" if isinstance(value, float) else str(value)]
    return shlex.join(words)


def duration(seconds: float) -> str:
    """48 s, 3 min 05 s, 2 h 07 min."""
    whole = round(seconds)
    if whole < 60:
        return f"{whole} s"
    minutes, secs = divmod(whole, 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def _outcome(record: dict) -> str:
    status = record.get("status")
    text = f"status: {status}"
    accuracy = (record.get("metrics") or {}).get("test_accuracy")
    if status == Status.COMPLETED:
        return text if accuracy is None else f"{text}, test accuracy: {accuracy:.4f}"
    if record.get("interrupted_by"):
        text += f" by {record['interrupted_by']}"
    planned = ((record.get("config") or {}).get("training") or {}).get("epochs")
    done = record.get("epochs_completed", 0)
    return f"{text} after {done} of {planned} epochs" if planned else f"{text} after {done} epochs"


def end_of_run(run_dir: Path, record: dict | None, seconds: float, invocation: Invocation) -> list[str]:
    """The lines printed when a run ends (`record` is its manifest, None when none was written)."""
    if record is None:
        return [f"run directory: {run_dir} (no manifest was written)", f"took {duration(seconds)}"]
    lines = [f"run directory: {run_dir}", f"{_outcome(record)}; took {duration(seconds)}"]
    lines += [f"plot: {path}" for path in sorted(run_dir.glob("*.png"))]
    if record.get("status") in RESUMABLE:
        lines.append(f"continue with: {resume_command(run_dir.name, invocation)}")
    return lines
