"""What the run ran on: image, code, Python/TF versions, the installed package set."""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata


def _env(name: str, default=None):
    value = os.environ.get(name, "").strip()
    return value or default


def packages_sha256() -> tuple[str, int]:
    """sha256 over the sorted `name==version` lines of every installed distribution."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            lines.add(f"{name.lower().replace('_', '-')}=={dist.version}")
    text = "\n".join(sorted(lines)) + "\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), len(lines)


def provenance() -> dict:
    import keras
    import numpy
    import tensorflow as tf

    dirty = _env("TRAINBOX_GIT_DIRTY")
    digest, count = packages_sha256()
    return {
        "image": {"id": _env("TRAINBOX_IMAGE_ID", "unknown"), "tag": _env("TRAINBOX_IMAGE_TAG", "unknown")},
        "git": {
            "commit": _env("TRAINBOX_GIT_COMMIT", "unknown"),
            "dirty": {"true": True, "false": False}.get((dirty or "").lower()),
        },
        "environment": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": numpy.__version__,
            "packages_sha256": digest,
            "packages_count": count,
            "lock_sha256": _env("TRAINBOX_LOCK_SHA256"),
            "variant": _env("TRAINBOX_VARIANT"),
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
    }
