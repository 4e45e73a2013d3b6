"""What the run ran on: image, code, Python/TF versions, the installed package set."""

from __future__ import annotations

import hashlib
import os
import platform
from importlib import metadata

from app.container_env import ImageFacts, LaunchFacts


def packages_sha256() -> tuple[str, int]:
    """sha256 over the sorted `name==version` lines of every installed distribution."""
    lines = set()
    for dist in metadata.distributions():
        name = dist.metadata["Name"]
        if name:
            lines.add(f"{name.lower().replace('_', '-')}=={dist.version}")
    text = "\n".join(sorted(lines)) + "\n"
    return hashlib.sha256(text.encode("utf-8")).hexdigest(), len(lines)


def provenance(launch: LaunchFacts, image: ImageFacts) -> dict:
    """The manifest's `image`, `git` and `environment` records."""
    import keras
    import numpy
    import tensorflow as tf

    digest, count = packages_sha256()
    image_record = {"id": launch.image_id, "tag": launch.image_tag}
    if launch.image_code_sha256:
        image_record["code_sha256"] = launch.image_code_sha256
    if launch.image_layers:
        image_record["layers"] = [{"digest": digest, "step": step} for digest, step in launch.image_layers]
    return {
        "image": image_record,
        "git": {"commit": launch.git_commit, "dirty": launch.git_dirty},
        "environment": {
            "python": platform.python_version(),
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
            "numpy": numpy.__version__,
            "packages_sha256": digest,
            "packages_count": count,
            "lock_sha256": image.lock_sha256,
            "variant": image.variant,
            "platform": platform.platform(),
            "cpu_count": os.cpu_count(),
            "gpus": [d.name for d in tf.config.list_physical_devices("GPU")],
        },
    }
