"""The user's folders on the host: resolved once, created by the user (never by the engine, as root)."""

from __future__ import annotations

import os
from pathlib import Path

from app.launch.errors import TrainboxError


def resolve_dir(path: str | None, default: Path) -> Path:
    return Path(path).expanduser().resolve() if path else default


def ensure_writable_dir(path: Path, what: str) -> None:
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TrainboxError(f"{what} {path} cannot be created: {error.strerror}") from None
    if not path.is_dir() or not os.access(path, os.W_OK | os.X_OK):
        raise TrainboxError(f"{what} {path} is not writable by you (uid {os.getuid()})")
