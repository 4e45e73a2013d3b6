"""Progress of long steps: a live bar on a terminal, plain lines everywhere else.

On a terminal, rich's progress bar redraws in place. When output goes to a file or a
pipe (CI logs, Slurm .out files, `docker logs`, `docker compose` logs) redrawing would
leave thousands of carriage returns, so a plain line is printed every STEP_PERCENT
percent instead — and nothing at all for a step that ends within QUIET_S seconds.

Used on both sides: rich is in the image (Keras needs it) and in the host requirements.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, TypeVar

STEP_PERCENT = 10
QUIET_S = 2.0

T = TypeVar("T")


def _amount(value: float, unit: str) -> str:
    if unit == "B":
        for size, name in ((2**30, "GB"), (2**20, "MB"), (2**10, "KB")):
            if value >= size:
                return f"{value / size:.1f} {name}"
        return f"{int(value)} B"
    return f"{int(value):,}{' ' + unit if unit else ''}"


class PlainProgress:
    """A line every STEP_PERCENT percent, once the step has lasted QUIET_S seconds."""

    def __init__(self, total: float, what: str, unit: str, stream: IO[str], clock=time.monotonic):
        self.total, self.what, self.unit, self.stream, self.clock = total, what, unit, stream, clock
        self.done = 0.0
        self.started = clock()
        self.last_step = 0
        self.printed = False

    def _line(self) -> str:
        elapsed = self.clock() - self.started
        if self.total:
            percent = min(100, int(100 * self.done / self.total))
            amount = f"{_amount(self.done, self.unit)} of {_amount(self.total, self.unit)} ({percent}%)"
        else:
            amount = _amount(self.done, self.unit)
        return f"{self.what}: {amount}, {elapsed:.0f} s"

    def advance(self, amount: float = 1) -> None:
        self.done += amount
        if not self.total or self.clock() - self.started < QUIET_S:
            return
        # capped: a total that was an estimate (an image's size for its tarball) may be passed
        step = min(int(100 * self.done / self.total), 100) // STEP_PERCENT
        if step > self.last_step:
            self.last_step = step
            self.printed = True
            print(self._line(), file=self.stream, flush=True)

    def close(self) -> None:
        noticed = self.printed or self.clock() - self.started >= QUIET_S
        if noticed and self.last_step * STEP_PERCENT < 100:
            print(self._line(), file=self.stream, flush=True)


class BarProgress:
    """rich's live bar (terminal only)."""

    def __init__(self, total: float, what: str, unit: str, stream: IO[str]):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        amount = DownloadColumn() if unit == "B" else MofNCompleteColumn()
        self.bar = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            amount,
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=Console(file=stream),
            transient=False,
        )
        self.task = self.bar.add_task(what, total=total or None)
        self.bar.start()

    def advance(self, amount: float = 1) -> None:
        self.bar.advance(self.task, amount)

    def close(self) -> None:
        self.bar.stop()


@contextlib.contextmanager
def progress(total: float, what: str, unit: str = "", stream: IO[str] | None = None):
    """`with progress(n, "decoding", "images") as bar: bar.advance(k)`; total 0 means unknown."""
    stream = stream or sys.stdout
    terminal = hasattr(stream, "isatty") and stream.isatty()
    tracker = (BarProgress if terminal else PlainProgress)(total, what, unit, stream)
    try:
        yield tracker
    finally:
        tracker.close()


def track(
    items: Iterable[T], total: float, what: str, unit: str = "", stream: IO[str] | None = None
) -> Iterator[T]:
    """Iterate over items, advancing the progress by one per item."""
    with progress(total, what, unit, stream) as bar:
        for item in items:
            yield item
            bar.advance()
