"""Connecting to the Docker engine."""

from __future__ import annotations

import functools

import docker
from app.launch.errors import TrainboxError, describe_docker_error


@functools.cache
def client() -> docker.DockerClient:
    """The engine from the environment (DOCKER_HOST etc.), checked to answer."""
    try:
        engine = docker.from_env(timeout=300)
        engine.ping()
    except Exception as error:
        raise TrainboxError(describe_docker_error(error)) from None
    return engine
