"""One error type for the host side, and one place that translates engine failures."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker.errors
import requests.exceptions


class TrainboxError(Exception):
    """A failure the user can act on. The message is one line: what is wrong, and the fix."""

    def __init__(self, message: str, exit_code: int = 1):
        super().__init__(message)
        self.exit_code = exit_code


def describe_docker_error(error: Exception) -> str:
    text = str(getattr(error, "explanation", None) or error)
    lowered = text.lower()
    # docker-py words it "('Connection aborted.', PermissionError(13, 'Permission denied'))"
    if "permission denied" in lowered and ("sock" in lowered or "permissionerror(13" in lowered):
        return (
            "permission denied on the Docker socket: add yourself to the 'docker' group "
            "(sudo usermod -aG docker $USER, then log in again) or use rootless Docker"
        )
    if "could not select device driver" in lowered:
        return (
            "GPUs were requested but this Docker engine has no NVIDIA runtime: install the "
            "NVIDIA Container Toolkit (nvidia-ctk runtime configure) or drop --gpu"
        )
    if "port is already allocated" in lowered or "address already in use" in lowered:
        return f"the port is already in use: choose another with --port ({text.splitlines()[0]})"
    if isinstance(error, (requests.exceptions.ConnectionError, FileNotFoundError)) or (
        "connection aborted" in lowered or "connection refused" in lowered
    ):
        return "cannot reach the Docker daemon: is it running? (check with `docker info`)"
    return f"Docker engine error: {text.splitlines()[0] if text else type(error).__name__}"


@contextlib.contextmanager
def docker_errors() -> Iterator[None]:
    """Turn any engine failure inside the block into a one-line TrainboxError."""
    try:
        yield
    except TrainboxError:
        raise
    except (docker.errors.DockerException, requests.exceptions.RequestException) as error:
        raise TrainboxError(describe_docker_error(error)) from None
