"""SIGTERM and SIGINT stop training by raising `Interrupted`, but never tear a write.

Inside `critical()` (a checkpoint with its manifest, the final model) a signal is held
back and raised when the section ends, so what is on disk is always whole.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

from app.train.errors import Interrupted

_critical_depth = 0
_pending_signal: int | None = None


def _on_signal(signum, frame) -> None:
    global _pending_signal
    if _critical_depth:
        _pending_signal = signum
        return
    raise Interrupted(signum)


def install() -> None:
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)


@contextmanager
def critical() -> Iterator[None]:
    """Finish the block before honouring a signal that arrives during it."""
    global _critical_depth, _pending_signal
    _critical_depth += 1
    try:
        yield
    finally:
        _critical_depth -= 1
        if not _critical_depth and _pending_signal is not None:
            signum, _pending_signal = _pending_signal, None
            raise Interrupted(signum)


def signal_name(signum: int) -> str:
    """'SIGTERM' for 15; the number itself when it names no signal."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return str(signum)
