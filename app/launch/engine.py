"""Connecting to the Docker engine (or Podman's Docker-compatible service: app/launch/engines.py)."""

from __future__ import annotations

import functools
import os

import docker
from app import settings

ENGINE_TIMEOUT_S = 300


@functools.cache
def client() -> docker.DockerClient:
    """The engine from the environment (DOCKER_HOST etc.), checked to answer.

    Failures are the SDK's own exceptions: the host's error boundary (app/launch/errors.py)
    turns them into one line.
    """
    engine = docker.from_env(timeout=ENGINE_TIMEOUT_S)
    engine.ping()
    return engine


def chosen_address() -> str | None:
    """The engine address the user chose ($DOCKER_HOST, which the SDK reads), or None."""
    return os.environ.get("DOCKER_HOST") or None


def label_filter(**extra: str) -> dict[str, list[str]]:
    """The engine's filter for objects carrying the project label (and the `extra` labels)."""
    return {"label": [f"{key}={value}" for key, value in settings.project_labels(**extra).items()]}
