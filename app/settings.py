"""Names and defaults that the host and the container agree on, written once.

Pure: no TensorFlow, no docker, no I/O. Imported by app/launch (host), app/train
(container), tasks.py, tests and bench.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]

# --- images and labels ------------------------------------------------------------------
# Several checkouts can share one engine without rebuilding each other's images:
# TRAINBOX_IMAGE_REPOSITORY=trainbox-dev makes the tags trainbox-dev:cpu / trainbox-dev:gpu.
IMAGE_REPOSITORY = os.environ.get("TRAINBOX_IMAGE_REPOSITORY", "").strip() or "trainbox"
BASE_IMAGE = "trainbox-base:bookworm"
VARIANTS = ("cpu", "gpu")

PROJECT_LABEL = "trainbox.project"
PROJECT_NAME = "trainbox"
ROLE_LABEL = "trainbox.role"
RUN_ID_LABEL = "trainbox.run_id"
WORKER_LABEL = "trainbox.worker"
CODE_LABEL = "trainbox.code_sha256"
LOCK_LABEL = "trainbox.lock_sha256"
VARIANT_LABEL = "trainbox.variant"
GIT_DIRTY_LABEL = "trainbox.git_dirty"
REVISION_LABEL = "org.opencontainers.image.revision"


def image_tag(gpu: bool = False) -> str:
    """The default tag of the CPU or GPU image: trainbox:cpu / trainbox:gpu."""
    return f"{IMAGE_REPOSITORY}:{'gpu' if gpu else 'cpu'}"


def project_labels(**extra: str) -> dict[str, str]:
    """The labels every object the project creates carries (plus any extra ones)."""
    return {PROJECT_LABEL: PROJECT_NAME, **extra}


# --- folders on the host ----------------------------------------------------------------
DEFAULT_CONFIG = REPO_ROOT / "configs" / "default.yaml"
DEFAULT_DATA_DIR = REPO_ROOT / "data"
DEFAULT_OUTPUT_DIR = REPO_ROOT / "outputs"
DEFAULT_EXPORT_DIR = REPO_ROOT / "export"
DEFAULT_NOTEBOOK_DIR = REPO_ROOT / "notebooks"

# --- mount points inside the container --------------------------------------------------
DATA_MOUNT = "/data"
OUTPUTS_MOUNT = "/outputs"
CONFIG_MOUNT = "/trainbox/config.yaml"
APP_ROOT_IN_IMAGE = "/opt/trainbox"
NOTEBOOK_MOUNT = f"{APP_ROOT_IN_IMAGE}/notebooks"  # the image's own copy of notebooks/
# JupyterLab's file browser starts at LAB_ROOT, which holds the three folders a user works
# with: their notebooks (read-write), the runs (read-write) and the data (read-only).
LAB_ROOT = "/lab"
LAB_NOTEBOOKS = f"{LAB_ROOT}/notebooks"
LAB_OUTPUTS = f"{LAB_ROOT}/outputs"
LAB_DATA = f"{LAB_ROOT}/data"

# --- ports ------------------------------------------------------------------------------
NOTEBOOK_PORT = 8888
TENSORBOARD_PORT = 6006
WORKER_PORT = 2222  # worker i of a run listens for gRPC on WORKER_PORT + i (one shared namespace)
LOCALHOST = "127.0.0.1"

# --- the bundled default dataset --------------------------------------------------------
DEFAULT_DATASET = "digits"

# --- image files and the decoded-image cache --------------------------------------------
# Which files in a class folder are photos (case-insensitive). Pillow reads each by its
# content, so a GIF named .jpg is still decoded as the GIF it is.
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")
IMAGE_KINDS = "JPEG, PNG, GIF, BMP, WebP"
# Decoded images are kept here unless --cache-dir says otherwise: inside the output
# directory, so the cache survives runs and sits on a disk the user already chose for
# large files; hidden, so it never looks like (or collides with) a run directory.
CACHE_DIR_NAME = ".cache"
SWEEPS_DIR_NAME = "sweeps"  # <output dir>/sweeps/<sweep id>/: a sweep's state, trial configs, results
CACHE_MOUNT = "/cache"
# The training prints these while it fills the cache; the host reads them to tell an
# out-of-memory kill while decoding photos from one while training.
CACHE_DECODING = "cache: decoding "
CACHE_WRITTEN = "cache: wrote "


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def default_cache_dir(output_dir: Path) -> Path:
    return output_dir / CACHE_DIR_NAME


# --- invoke predict -----------------------------------------------------------------------
RUN_MOUNT = "/trainbox/run"  # the run directory, read-only
PREDICT_MOUNT = "/trainbox/predict"  # the i-th path given is mounted at PREDICT_MOUNT/i, read-only

# --- Keras' download cache (ImageNet weights) --------------------------------------------
# `model.weights: imagenet` lets Keras download into $KERAS_HOME/models/. One host folder is
# mounted there, so each file is fetched once per machine and every later run and worker
# reuses it. TRAINBOX_KERAS_CACHE moves it (e.g. to a shared disk).
KERAS_CACHE_MOUNT = "/keras"
KERAS_CACHE_VARIABLE = "TRAINBOX_KERAS_CACHE"


def keras_cache_dir() -> Path:
    """The host folder for Keras' downloads: $TRAINBOX_KERAS_CACHE, else ~/.cache/trainbox/keras."""
    configured = os.environ.get(KERAS_CACHE_VARIABLE, "").strip()
    if configured:
        return Path(configured).expanduser().resolve()
    cache_home = os.environ.get("XDG_CACHE_HOME", "").strip() or str(Path.home() / ".cache")
    return Path(cache_home).expanduser().resolve() / "trainbox" / "keras"
