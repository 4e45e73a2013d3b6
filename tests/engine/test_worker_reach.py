"""Who can reach a worker's gRPC port (docs/cluster.md): the run's other workers, and nobody else.

The members are started by the same group runner as `invoke train --workers N`. The first
listens on the worker port like TensorFlow's gRPC server; the second connects to it over
loopback, as a peer worker does. Meanwhile the host tries the same port.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from app import settings
from app.launch import group
from app.launch.containers import ContainerSpec

pytestmark = pytest.mark.docker

LISTENER = f"""
import os, socket, time
server = socket.socket()
server.bind(("0.0.0.0", {settings.WORKER_PORT}))
server.listen()
print("interfaces", sorted(os.listdir("/sys/class/net")), flush=True)
print("listening", flush=True)
server.accept()
print("peer connected", flush=True)
time.sleep(45)
"""

PEER = f"""
import socket, time
for attempt in range(100):
    try:
        socket.create_connection(("127.0.0.1", {settings.WORKER_PORT}), timeout=3)
        break
    except OSError:
        time.sleep(0.3)
print("reached the worker", flush=True)
time.sleep(45)
"""


def wait_for(find, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = find()
        if found:
            return found
        time.sleep(0.3)
    raise AssertionError("not in time")


def can_connect(address: str, port: int) -> bool:
    with socket.socket() as probe:
        probe.settimeout(3)
        return probe.connect_ex((address, port)) == 0


def observe(engine, run: str, seen: dict) -> None:
    """While the group runs: what the listening worker has and publishes, who reaches it; then end it."""
    by_name = {}
    wait_for(lambda: by_name.update({c.name: c for c in engine.containers.list(
        filters={"label": f"{settings.RUN_ID_LABEL}={run}"})}) or len(by_name) == 2)  # fmt: skip
    worker, peer = by_name[f"trainbox-test-{run}-0"], by_name[f"trainbox-test-{run}-1"]
    try:
        wait_for(lambda: b"peer connected" in worker.logs() and b"reached" in peer.logs())
        worker.reload()
        joined_modes = (f"container:{worker.name}", f"container:{worker.id}")  # Docker records the id
        seen.update(
            logs=worker.logs().decode(),
            networks=worker.attrs["NetworkSettings"]["Networks"],
            published=worker.attrs["HostConfig"]["PortBindings"],
            exposed=worker.attrs["Config"].get("ExposedPorts"),
            peer_joined=peer.attrs["HostConfig"]["NetworkMode"] in joined_modes,
            from_host=can_connect(settings.LOCALHOST, settings.WORKER_PORT),
        )
    finally:
        worker.kill()


def test_a_worker_is_reachable_from_its_group_only(engine, cpu_image):
    assert not can_connect(settings.LOCALHOST, settings.WORKER_PORT), (
        f"something on this host already listens on port {settings.WORKER_PORT}: the test cannot tell"
    )
    run = f"reach-{uuid.uuid4().hex[:8]}"
    members = [
        group.Member(ContainerSpec(image=cpu_image.id, command=["python", "-c", code], role="train",
                                   name=f"trainbox-test-{run}-{index}", labels={settings.RUN_ID_LABEL: run}),
                     f"[{index}] ")
        for index, code in enumerate((LISTENER, PEER))
    ]  # fmt: skip
    seen = {}
    observer = threading.Thread(target=observe, args=(engine, run, seen), daemon=True)
    observer.start()
    outcome = group.run_group(members, echo=print)
    observer.join(timeout=60)
    assert "interfaces ['lo']" in seen["logs"]  # no address anything outside could route to
    assert seen["peer_joined"]  # the peer reached it on loopback, in the worker's namespace
    assert list(seen["networks"]) == ["none"] and not seen["networks"]["none"].get("IPAddress")
    assert seen["published"] in ({}, None) and not seen["exposed"]
    assert seen["from_host"] is False  # the host's loopback is another namespace: local users cannot
    assert outcome.status == 137  # ended by the observer; the peer was stopped with it
    assert not engine.containers.list(all=True, filters={"label": f"{settings.RUN_ID_LABEL}={run}"})
    assert not engine.networks.list(filters={"label": f"{settings.RUN_ID_LABEL}={run}"})
