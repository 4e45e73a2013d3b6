"""The host <-> container contract: every TRAINBOX_* variable a training container reads.

The host builds a `LaunchFacts` and passes `to_environment()` to the container; the
container reads `LaunchFacts.from_environment()`. Nothing else reads or writes these
names. `ImageFacts` are baked into the image by the Dockerfile (ENV), not set per run.
Pure: imported on both sides.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass

LAUNCHER = "TRAINBOX_LAUNCHER"
IMAGE_ID = "TRAINBOX_IMAGE_ID"
IMAGE_TAG = "TRAINBOX_IMAGE_TAG"
IMAGE_CODE_SHA256 = "TRAINBOX_IMAGE_CODE_SHA256"
# The image's layers, oldest first: JSON, [{"digest": "sha256:...", "step": "RUN ..." or null}].
IMAGE_LAYERS = "TRAINBOX_IMAGE_LAYERS"
GIT_COMMIT = "TRAINBOX_GIT_COMMIT"
GIT_DIRTY = "TRAINBOX_GIT_DIRTY"
REPRODUCES = "TRAINBOX_REPRODUCES"
# Keras' cache folder as the user knows it on the host: named when a download is impossible.
KERAS_CACHE_HOST = "TRAINBOX_KERAS_CACHE_HOST"
SWEEP_ID = "TRAINBOX_SWEEP_ID"
SWEEP_TRIAL = "TRAINBOX_SWEEP_TRIAL"
# Set by the Dockerfile (ENV) from its build args.
VARIANT = "TRAINBOX_VARIANT"
LOCK_SHA256 = "TRAINBOX_LOCK_SHA256"
# Set by `invoke reproduce` for a `deterministic: true` run: its recorded pool size and
# oneDNN ISA (oneDNN's own variable: the cap is what replays an ISA).
THREADS = "TRAINBOX_THREADS"
ISA_CAP = "ONEDNN_MAX_CPU_ISA"
# Set by the exported Slurm script.
SLURM_PORT_BASE = "TRAINBOX_SLURM_PORT_BASE"

INVOKE = "invoke"
UNKNOWN = "unknown"


def _read(environ: Mapping[str, str], name: str) -> str | None:
    value = environ.get(name, "").strip()
    return value or None


def _threads(environ: Mapping[str, str]) -> int | None:
    value = _read(environ, THREADS)
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) <= 4096:
        raise ValueError(f"{THREADS}={value!r} is not a thread count between 1 and 4096")
    return int(value)


def _port(environ: Mapping[str, str], name: str) -> int | None:
    value = _read(environ, name)
    if value is None:
        return None
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{name}={value!r} is not a port number")
    return int(value)


def _layers(environ: Mapping[str, str]) -> tuple[tuple[str, str | None], ...]:
    value = _read(environ, IMAGE_LAYERS)
    if value is None:
        return ()
    try:
        entries = json.loads(value)
        layers = tuple((entry["digest"], entry.get("step")) for entry in entries)
    except (ValueError, TypeError, KeyError, AttributeError):
        layers = ()
    if not layers or not all(
        isinstance(digest, str) and digest.startswith("sha256:") and isinstance(step, str | None)
        for digest, step in layers
    ):
        raise ValueError(f'{IMAGE_LAYERS} is not a JSON list of {{"digest": "sha256:...", "step": ...}}')
    return layers


def _trial(environ: Mapping[str, str]) -> int | None:
    value = _read(environ, SWEEP_TRIAL)
    if value is None:
        return None
    if not value.isdigit():
        raise ValueError(f"{SWEEP_TRIAL}={value!r} is not a trial number")
    return int(value)


@dataclass(frozen=True)
class LaunchFacts:
    """What only the host knows about a run: the image it picked, the code it came from."""

    image_id: str = UNKNOWN
    image_tag: str = UNKNOWN
    image_code_sha256: str | None = None  # the image's trainbox.code_sha256 label
    image_layers: tuple[tuple[str, str | None], ...] = ()  # (digest, Dockerfile step), oldest first
    git_commit: str = UNKNOWN
    git_dirty: bool | None = None
    launched_by_invoke: bool = False  # then the host, not the container, reports the outcome
    reproduces: str | None = None  # `invoke reproduce`: the run this one re-runs
    slurm_port_base: int | None = None  # the exported Slurm script: first gRPC port of a job's workers
    threads: int | None = None  # `invoke reproduce`: the recorded thread pool size
    isa_cap: str | None = None  # `invoke reproduce`: the recorded oneDNN ISA, as a cap
    keras_cache_host: str | None = None  # the host folder mounted as Keras' cache (imagenet weights)
    sweep_id: str | None = None  # `invoke sweep`: the sweep this run is a trial of ...
    sweep_trial: int | None = None  # ... and which trial (1, 2, ...)

    def to_environment(self) -> dict[str, str]:
        environment = {
            IMAGE_ID: self.image_id,
            IMAGE_TAG: self.image_tag,
            GIT_COMMIT: self.git_commit,
            GIT_DIRTY: {True: "true", False: "false", None: UNKNOWN}[self.git_dirty],
        }
        if self.image_code_sha256:
            environment[IMAGE_CODE_SHA256] = self.image_code_sha256
        if self.image_layers:
            layers = [{"digest": digest, "step": step} for digest, step in self.image_layers]
            environment[IMAGE_LAYERS] = json.dumps(layers, separators=(",", ":"))
        if self.launched_by_invoke:
            environment[LAUNCHER] = INVOKE
        if self.reproduces:
            environment[REPRODUCES] = self.reproduces
        if self.slurm_port_base is not None:
            environment[SLURM_PORT_BASE] = str(self.slurm_port_base)
        if self.threads is not None:
            environment[THREADS] = str(self.threads)
        if self.isa_cap is not None:
            environment[ISA_CAP] = self.isa_cap
        if self.keras_cache_host:
            environment[KERAS_CACHE_HOST] = self.keras_cache_host
        if self.sweep_id and self.sweep_trial is not None:
            environment[SWEEP_ID] = self.sweep_id
            environment[SWEEP_TRIAL] = str(self.sweep_trial)
        return environment

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> LaunchFacts:
        environ = os.environ if environ is None else environ
        dirty = (_read(environ, GIT_DIRTY) or "").lower()
        return cls(
            image_id=_read(environ, IMAGE_ID) or UNKNOWN,
            image_tag=_read(environ, IMAGE_TAG) or UNKNOWN,
            image_code_sha256=_read(environ, IMAGE_CODE_SHA256),
            image_layers=_layers(environ),
            git_commit=_read(environ, GIT_COMMIT) or UNKNOWN,
            git_dirty={"true": True, "false": False}.get(dirty),
            launched_by_invoke=_read(environ, LAUNCHER) == INVOKE,
            reproduces=_read(environ, REPRODUCES),
            slurm_port_base=_port(environ, SLURM_PORT_BASE),
            threads=_threads(environ),
            isa_cap=_read(environ, ISA_CAP),
            keras_cache_host=_read(environ, KERAS_CACHE_HOST),
            sweep_id=_read(environ, SWEEP_ID),
            sweep_trial=_trial(environ),
        )


@dataclass(frozen=True)
class ImageFacts:
    """What the image says about itself (Dockerfile ENV)."""

    variant: str | None = None
    lock_sha256: str | None = None

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] | None = None) -> ImageFacts:
        environ = os.environ if environ is None else environ
        return cls(variant=_read(environ, VARIANT), lock_sha256=_read(environ, LOCK_SHA256))
