"""Running one project container in the foreground: hardened, labelled, logs followed,
always stopped and removed at the end (repo2docker's wait_for_container pattern)."""

from __future__ import annotations

import os
import signal
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import docker.errors
import docker.types

from app.launch.engine import client
from app.launch.errors import TrainboxError, describe_docker_error, docker_errors
from app.launch.images import PROJECT_LABEL

STOP_TIMEOUT_S = 10
EXIT_INTERRUPTED = 130
EXIT_OOM = 137


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory: str | None = None
    shm_size: str = "1g"
    pids: int = 4096


@dataclass(frozen=True)
class ContainerSpec:
    image: str
    command: list[str]
    role: str
    mounts: list[docker.types.Mount] = field(default_factory=list)
    environment: dict[str, str] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    ports: dict[str, tuple[str, int]] | None = None
    gpu: bool = False
    limits: Limits = Limits()
    name: str | None = None


def invoking_user() -> str:
    """Containers run as the caller's UID:GID, so what they write belongs to the caller."""
    return f"{os.getuid()}:{os.getgid()}"


def bind(source: str, target: str, read_only: bool) -> docker.types.Mount:
    return docker.types.Mount(target=target, source=str(source), type="bind", read_only=read_only)


def run_kwargs(spec: ContainerSpec) -> dict:
    """The docker-py arguments for a spec: every project container is hardened the same way."""
    name = spec.name or f"trainbox-{spec.role}-{uuid.uuid4().hex[:8]}"
    kwargs = {
        "image": spec.image,
        "command": spec.command,
        "name": name,
        "detach": True,
        "user": invoking_user(),
        "init": True,  # docker-init as PID 1 forwards SIGTERM/SIGINT to Python
        "security_opt": ["no-new-privileges"],
        "cap_drop": ["ALL"],
        "labels": {PROJECT_LABEL: "trainbox", "trainbox.role": spec.role, **spec.labels},
        "mounts": spec.mounts,
        "environment": spec.environment,
        "shm_size": spec.limits.shm_size,
        "pids_limit": spec.limits.pids,
    }
    if spec.limits.cpus:
        kwargs["nano_cpus"] = int(spec.limits.cpus * 1e9)
    if spec.limits.memory:
        kwargs["mem_limit"] = spec.limits.memory
        kwargs["memswap_limit"] = spec.limits.memory  # no swap: over the limit is a clear OOM
    if spec.ports:
        kwargs["ports"] = spec.ports
    if spec.gpu:
        kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return kwargs


class _Terminated(Exception):
    """SIGTERM to invoke: handled like Ctrl-C so the container is stopped and removed."""


@contextmanager
def _sigterm_as_exception() -> Iterator[None]:
    def handler(signum, frame):
        raise _Terminated

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def start(spec: ContainerSpec):
    """Create, then start; a container that cannot start (no GPU runtime, busy port) is removed."""
    kwargs = run_kwargs(spec)
    del kwargs["detach"]
    with docker_errors():
        container = client().containers.create(**kwargs)
        try:
            container.start()
        except BaseException:
            remove_quietly(container)
            raise
        return container


def remove_quietly(container) -> None:
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if "already in progress" not in str(error):
            raise


def run_foreground(spec: ContainerSpec, echo=print) -> int:
    """Start the container, stream its output, return its exit status.

    Ctrl-C or SIGTERM stops it (SIGTERM, then SIGKILL after STOP_TIMEOUT_S) so the
    program inside can record that it was interrupted; it is removed in every case.
    """
    with _sigterm_as_exception():
        container = start(spec)
        interrupted = False
        try:
            try:
                for chunk in container.logs(stream=True, follow=True):
                    sys.stdout.buffer.write(chunk)
                    sys.stdout.flush()
                status = container.wait()["StatusCode"]
            except (KeyboardInterrupt, _Terminated):
                interrupted = True
                echo(f"\nstopping {container.name} (up to {STOP_TIMEOUT_S} s) ...")
                container.stop(timeout=STOP_TIMEOUT_S)
                status = container.wait()["StatusCode"]
            if status == EXIT_OOM:
                _explain_oom(container, spec)
        except docker.errors.DockerException as error:
            raise TrainboxError(describe_docker_error(error)) from None
        finally:
            with docker_errors():
                remove_quietly(container)
    return EXIT_INTERRUPTED if interrupted else status


def _explain_oom(container, spec: ContainerSpec) -> None:
    container.reload()
    if container.attrs.get("State", {}).get("OOMKilled"):
        limit = spec.limits.memory or "the host's memory"
        raise TrainboxError(
            f"the container ran out of memory (limit {limit}) and was killed (exit 137): "
            "raise --memory or lower training.batch_size / data.image_size",
            exit_code=EXIT_OOM,
        )
