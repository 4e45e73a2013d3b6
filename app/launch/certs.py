"""The extra CA bundle given to image builds, for TLS-intercepting proxies."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from app.launch.errors import UsageError

CA_ENV_VAR = "TRAINBOX_CA_BUNDLE"


def pip_configured_ca() -> Path | None:
    """The bundle the host's pip trusts (PIP_CERT or `cert` in pip's config), if any."""
    if os.environ.get("PIP_CERT"):
        return Path(os.environ["PIP_CERT"])
    try:
        listing = subprocess.run(
            [sys.executable, "-m", "pip", "config", "list"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        ).stdout
    except (OSError, subprocess.TimeoutExpired):
        return None
    for line in listing.splitlines():
        key, _, value = line.partition("=")
        if key.endswith(".cert") and value:
            return Path(value.strip().strip("'\""))
    return None


def find_ca_bundle(explicit: str | None = None) -> Path | None:
    """Explicit setting, else $TRAINBOX_CA_BUNDLE, else the host pip's bundle, else none."""
    chosen = explicit or os.environ.get(CA_ENV_VAR)
    if chosen:
        path = Path(chosen).expanduser()
        if not path.is_file():
            raise UsageError(f"CA bundle not found: {path} (set by --ca-bundle or ${CA_ENV_VAR})")
        return path
    configured = pip_configured_ca()
    return configured if configured is not None and configured.is_file() else None


def read_ca_bundle(path: Path | None) -> bytes:
    if path is None:
        return b""
    data = path.read_bytes()
    if b"BEGIN CERTIFICATE" not in data:
        raise UsageError(f"{path} holds no PEM certificate (expected '-----BEGIN CERTIFICATE-----')")
    return data
