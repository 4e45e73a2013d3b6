"""One project container: hardened, labelled, run in the foreground with its logs followed,
always stopped and removed at the end (repo2docker's wait_for_container pattern).

The public pieces here (`start`, `exit_status`, `stop`, `remove_quietly`, `interruptible`)
are also what the group runner in app/launch/group.py is built from.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import docker.errors
import docker.types

from app import settings
from app.launch import engines
from app.launch.engine import client
from app.launch.errors import TrainboxError

STOP_TIMEOUT_S = 10
EXIT_INTERRUPTED = 130
EXIT_OOM = 137
DEFAULT_SHM_SIZE = "1g"
EXITED = ("exited", "dead")


@dataclass(frozen=True)
class Limits:
    cpus: float | None = None
    memory: str | None = None
    shm_size: str = DEFAULT_SHM_SIZE
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
    network_mode: str | None = None  # "none", "container:<name>"; None: the engine's default network


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
        "labels": settings.project_labels(**{settings.ROLE_LABEL: spec.role}, **spec.labels),
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
    if spec.network_mode:
        kwargs["network_mode"] = spec.network_mode
    if spec.gpu:
        kwargs["device_requests"] = [docker.types.DeviceRequest(count=-1, capabilities=[["gpu"]])]
    return kwargs


class Terminated(KeyboardInterrupt):
    """SIGTERM to invoke, raised like Ctrl-C so the same code stops and removes the container."""


@contextlib.contextmanager
def interruptible(hangup: bool = False) -> Iterator[None]:
    """Within the block SIGTERM raises Terminated (a KeyboardInterrupt), as Ctrl-C does; with
    `hangup`, so does SIGHUP (the terminal closed), unless it is ignored (`nohup`).

    Only the main thread can take signals: in another thread (a sweep's parallel trials) the
    main thread stops the containers instead.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated

    taken = [signal.SIGTERM]
    if hangup and signal.getsignal(signal.SIGHUP) is not signal.SIG_IGN:
        taken.append(signal.SIGHUP)
    previous = {signum: signal.signal(signum, handler) for signum in taken}
    try:
        yield
    finally:
        for signum, handler_before in previous.items():
            signal.signal(signum, handler_before)


def check_engine_supports(gpu: bool, limits: Limits) -> None:
    """Refuse early (before an image is built) what this engine would silently ignore."""
    engines.refuse_unsupported(engines.current(), gpu, bool(limits.cpus), bool(limits.memory))


def start(spec: ContainerSpec):
    """Create, then start; a container that cannot start (no GPU runtime, busy port) is removed.

    The one place containers are created: the arguments are adapted to the engine here.
    """
    kwargs = engines.adapt_run_kwargs(run_kwargs(spec), engines.current())
    del kwargs["detach"]
    container = client().containers.create(**kwargs)
    try:
        container.start()
    except BaseException:
        remove_quietly(container)
        raise
    return container


def exit_status(container) -> int | None:
    """The exit status once the container has exited, else None."""
    container.reload()
    if container.status in EXITED:
        return container.attrs["State"]["ExitCode"]
    return None


def stop(container) -> None:
    """SIGTERM, then SIGKILL after STOP_TIMEOUT_S; a container already gone is stopped."""
    with contextlib.suppress(docker.errors.NotFound):
        container.stop(timeout=STOP_TIMEOUT_S)


def remove_quietly(container) -> None:
    """Remove, running or not; one already removed (by us or someone else) counts as removed."""
    try:
        container.remove(force=True)
    except docker.errors.NotFound:
        pass
    except docker.errors.APIError as error:
        if "already in progress" not in str(error):
            raise


def follow_logs(container, watch: DecodingWatch | None = None) -> None:
    """Copy the container's output to ours as it comes."""
    for chunk in container.logs(stream=True, follow=True):
        # What was printed before (text still held by sys.stdout) comes first: with stdout
        # a pipe (`| tee log`), print's text waits in a buffer these bytes would overtake.
        sys.stdout.flush()
        sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
        if watch is not None:
            watch.feed(chunk)


def run_foreground(
    spec: ContainerSpec,
    echo=print,
    on_start: Callable[[object], None] | None = None,
    stop_on_hangup: bool = False,
) -> int:
    """Start the container, stream its output, return its exit status.

    Ctrl-C or SIGTERM (and SIGHUP with `stop_on_hangup`) stops it (SIGTERM, then SIGKILL after
    STOP_TIMEOUT_S) so the program inside can record that it was interrupted; it is removed in
    every case. `on_start(container)` runs once it has started (a watcher that may stop it, e.g.).
    """
    with interruptible(hangup=stop_on_hangup):
        container = start(spec)
        phase = DecodingWatch()
        try:
            try:
                if on_start is not None:
                    on_start(container)
                follow_logs(container, phase)
                status = container.wait()["StatusCode"]
            except KeyboardInterrupt:
                echo(f"\nstopping {container.name} (up to {STOP_TIMEOUT_S} s) ...")
                stop(container)
                container.wait()
                return EXIT_INTERRUPTED
            if status == EXIT_OOM:
                _explain_oom(container, spec, decoding=phase.decoding)
            return status
        finally:
            remove_quietly(container)


def run_captured(spec: ContainerSpec, echo=print) -> tuple[int, bytes, bytes]:
    """Start the container, wait for it, return (exit status, stdout, stderr); removed in every case.

    Ctrl-C or SIGTERM stops it first, as in run_foreground (status EXIT_INTERRUPTED).
    """
    with interruptible():
        container = start(spec)
        try:
            try:
                status = container.wait()["StatusCode"]
            except KeyboardInterrupt:
                echo(f"\nstopping {container.name} (up to {STOP_TIMEOUT_S} s) ...")
                stop(container)
                container.wait()
                return EXIT_INTERRUPTED, b"", b""
            output = container.logs(stdout=True, stderr=False)
            return status, output, container.logs(stdout=False, stderr=True)
        finally:
            remove_quietly(container)


class DecodingWatch:
    """Whether the training was filling its image cache when its output stopped."""

    def __init__(self) -> None:
        self.decoding = False
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *lines, self._partial = (self._partial + chunk).split(b"\n")
        for line in lines:
            if line.startswith(settings.CACHE_DECODING.encode()):
                self.decoding = True
            elif line.startswith(settings.CACHE_WRITTEN.encode()):
                self.decoding = False


def _explain_oom(container, spec: ContainerSpec, decoding: bool = False) -> None:
    container.reload()
    engine = engines.current()
    verdict = engines.oom_killed(engine, container.attrs.get("State", {}), spec.limits.memory)
    limit = spec.limits.memory or "the host's memory"
    if verdict == "killed":
        what = f"the container ran out of memory (limit {limit}) and was killed (exit 137)"
    elif verdict == "probably":
        what = (
            f"the container was killed (exit 137) under its memory limit {limit}, probably for "
            f"running out of memory ({engine.name} {engine.version} does not report it)"
        )
    else:
        return
    if decoding:
        raise TrainboxError(
            f"{what} while decoding photos into the cache: the photos are the cause, not the batch "
            "(each decoding process holds one full-size photo) - raise --memory or lower --cpus (one "
            "process per CPU), then run again: the images decoded so far are kept",
            exit_code=EXIT_OOM,
        )
    raise TrainboxError(
        f"{what}: raise --memory or lower training.batch_size / data.image_size", exit_code=EXIT_OOM
    )
