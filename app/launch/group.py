"""A group of containers that live and die together, on a private network made for them.

Each container's output is streamed with its own prefix. When one exits non-zero the
others are stopped, so nobody waits forever for a peer that is gone; Ctrl-C or SIGTERM
stops them all. The network and every container are removed at the end, whatever
happened. Built only on the public API of app/launch/containers.py.
"""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import docker.errors

from app import settings
from app.launch import containers
from app.launch.engine import client, label_filter

POLL_S = 0.5
JOIN_LOGS_S = 5


@dataclass(frozen=True)
class Member:
    spec: containers.ContainerSpec
    prefix: str  # put before each line of its output, e.g. "[worker 1] "


@dataclass(frozen=True)
class Outcome:
    status: int  # the first failing member's exit status, 130 when interrupted, else 0
    failure: str | None = None  # why the group stopped early, in words


def _stream(container, prefix: bytes, lock: threading.Lock) -> None:
    """Follow one container's output, line by line, each line prefixed."""
    pending = b""
    try:
        for chunk in container.logs(stream=True, follow=True):
            pending += chunk
            *lines, pending = pending.split(b"\n")
            with lock:
                for line in lines:
                    sys.stdout.buffer.write(prefix + line + b"\n")
                sys.stdout.flush()
    except docker.errors.DockerException:
        pass  # the container was removed under us: its exit status tells what happened
    if pending:
        with lock:
            sys.stdout.buffer.write(prefix + pending + b"\n")
            sys.stdout.flush()


def stop_all(running: Sequence, echo=print) -> None:
    """Stop the containers in parallel (each gets the same grace period)."""
    if not running:
        return
    echo(f"stopping {', '.join(c.name for c in running)} (up to {containers.STOP_TIMEOUT_S} s) ...")
    threads = [threading.Thread(target=containers.stop, args=(c,)) for c in running]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def _wait(started: Sequence, names: Sequence[str], echo) -> Outcome:
    """Poll until every member exited; the first to fail brings the others down."""
    exited: dict[int, int] = {}
    first_failed = None
    while len(exited) < len(started):
        for index, container in enumerate(started):
            code = None if index in exited else containers.exit_status(container)
            if code is None:
                continue
            exited[index] = code
            if code != 0 and first_failed is None:
                first_failed = index
                echo(f"{names[index]} exited with status {code}: stopping the others")
                stop_all([c for i, c in enumerate(started) if i not in exited], echo)
        if len(exited) < len(started):
            time.sleep(POLL_S)
    if first_failed is None:
        return Outcome(0)
    return Outcome(exited[first_failed], f"{names[first_failed]} exited with status {exited[first_failed]}")


def _fresh_network(name: str, labels: dict[str, str]):
    """An internal bridge (members reach each other, nothing outside); a stale one is replaced."""
    engine = client()
    for stale in engine.networks.list(names=[name], filters=label_filter()):
        if stale.name == name:  # `names` matches substrings
            _remove_network(stale)
    return engine.networks.create(
        name, driver="bridge", internal=True, labels=settings.project_labels(**labels)
    )


def _remove_network(network) -> None:
    with contextlib.suppress(docker.errors.NotFound):
        network.remove()


def run_group(
    members: Sequence[Member],
    network_name: str,
    labels: dict[str, str],
    names: Sequence[str] | None = None,
    echo=print,
) -> Outcome:
    """Run the members to the end on a fresh network; what happened, as an Outcome."""
    names = names or [member.spec.name or f"member {index}" for index, member in enumerate(members)]
    network = _fresh_network(network_name, labels)
    started, streams = [], []
    lock = threading.Lock()
    try:
        with containers.interruptible():
            try:
                for member in members:
                    started.append(containers.start(replace(member.spec, network=network.name)))
                    thread = threading.Thread(
                        target=_stream, daemon=True, args=(started[-1], member.prefix.encode(), lock)
                    )
                    thread.start()
                    streams.append(thread)
                outcome = _wait(started, names, echo)
            except KeyboardInterrupt:
                echo("\ninterrupted")
                stop_all([c for c in started if containers.exit_status(c) is None], echo)
                outcome = Outcome(containers.EXIT_INTERRUPTED, "interrupted by the user")
            for thread in streams:
                thread.join(timeout=JOIN_LOGS_S)
    finally:
        for container in started:
            containers.remove_quietly(container)
        _remove_network(network)
    return outcome
