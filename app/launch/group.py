"""A group of containers that live and die together, in one network namespace of their own.

The first member starts with no network at all (network mode "none": loopback only), and
every other member joins its namespace ("container:<first>"). So the members reach each
other on 127.0.0.1, and nothing else reaches them: not the host, not other containers,
not the internet. There is no network object to make, leak or clean up, and it works the
same on Docker, rootful and rootless Podman (no bridge, no firewall rule, no /dev/net/tun).

Each container's output is streamed with its own prefix. When one exits non-zero the
others are stopped, so nobody waits forever for a peer that is gone; Ctrl-C or SIGTERM
stops them all. Every container is removed at the end, whatever happened. Built only on
the public API of app/launch/containers.py.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

import docker.errors

from app.launch import containers

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


def in_shared_namespace(members: Sequence[Member]) -> list[containers.ContainerSpec]:
    """The members' specs: the first isolated (loopback only), the others in its namespace."""
    first = members[0].spec.name
    if not first:
        raise ValueError("the first member of a group needs a name: the others join it by name")
    return [
        replace(member.spec, network_mode="none" if index == 0 else f"container:{first}")
        for index, member in enumerate(members)
    ]


def run_group(members: Sequence[Member], names: Sequence[str] | None = None, echo=print) -> Outcome:
    """Run the members to the end in one shared network namespace; what happened, as an Outcome."""
    names = names or [member.spec.name or f"member {index}" for index, member in enumerate(members)]
    specs = in_shared_namespace(members)
    started, streams = [], []
    lock = threading.Lock()
    try:
        with containers.interruptible():
            try:
                for member, spec in zip(members, specs, strict=True):
                    started.append(containers.start(spec))
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
        # Joined members first: the first member's namespace is theirs too.
        for container in reversed(started):
            containers.remove_quietly(container)
    return outcome
