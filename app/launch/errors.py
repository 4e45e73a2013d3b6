"""The host's errors, and the one place where engine failures become messages a user can act on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker.errors
import requests.exceptions

from app.launch.engine import chosen_address

EXIT_FAILURE = 1
EXIT_USAGE = 2

# What the Docker SDK raises: its own errors, and the HTTP client's below them.
ENGINE_ERRORS = (docker.errors.DockerException, requests.exceptions.RequestException)


class TrainboxError(Exception):
    """A failure the user can act on. The message is one line: what is wrong, and the fix."""

    def __init__(self, message: str, exit_code: int = EXIT_FAILURE):
        super().__init__(" ".join(str(message).split()) or "failed (no message)")
        self.exit_code = exit_code


class UsageError(TrainboxError):
    """The command asks for something that cannot be: fix the command (exit status 2)."""

    def __init__(self, message: str):
        super().__init__(message, exit_code=EXIT_USAGE)


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")


def translate(error: BaseException) -> TrainboxError:
    """The one-line TrainboxError for an engine failure (the SDK's or its HTTP client's)."""
    text = str(getattr(error, "explanation", None) or error)
    lowered = text.lower()
    # docker-py words it "('Connection aborted.', PermissionError(13, 'Permission denied'))"
    if "permission denied" in lowered and ("sock" in lowered or "permissionerror(13" in lowered):
        return TrainboxError(
            "permission denied on the Docker socket: add yourself to the 'docker' group "
            "(sudo usermod -aG docker $USER, then log in again) or use rootless Docker"
        )
    if "could not select device driver" in lowered:
        return TrainboxError(
            "GPUs were requested but this Docker engine has no NVIDIA runtime: install the "
            "NVIDIA Container Toolkit (nvidia-ctk runtime configure) or drop --gpu"
        )
    if "container-init binary not found" in lowered:  # Podman without catatonit
        return TrainboxError(
            "Podman needs the catatonit package to give containers an init process: "
            "sudo apt-get install catatonit"
        )
    if "error setting rlimit" in lowered:  # Podman without CAP_SYS_RESOURCE, asked for more
        return TrainboxError(
            "the engine may not raise the container's open-files limit to yours: lower it "
            f"(ulimit -n) or set default_ulimits in containers.conf ({_first_line(text)})"
        )
    if "port is already allocated" in lowered or "address already in use" in lowered:
        return UsageError(f"the port is already in use: choose another with --port ({_first_line(text)})")
    if isinstance(error, docker.errors.ImageNotFound):
        return UsageError(f"{_first_line(text)}: build it first (invoke build), or pick another image")
    if isinstance(error, (requests.exceptions.ConnectionError, FileNotFoundError)) or (
        "connection aborted" in lowered or "connection refused" in lowered
    ):
        return TrainboxError(_unreachable())
    return TrainboxError(f"Docker engine error: {_first_line(text) or type(error).__name__}")


def _unreachable() -> str:
    address = chosen_address()
    if address is None:
        return "cannot reach the Docker daemon: is it running? (check with `docker info`)"
    return (
        f"cannot reach the Docker daemon at {address} (DOCKER_HOST): is it running? "
        f"For Podman, start its API service: podman system service --time=0 {address} &"
    )


@contextlib.contextmanager
def boundary() -> Iterator[None]:
    """The host's error boundary: engine failures inside the block leave it as TrainboxError."""
    try:
        yield
    except ENGINE_ERRORS as error:
        raise translate(error) from None
