"""Who can reach a worker's gRPC port (docs/cluster.md): the host can, other networks cannot.

The workers are started by the same group runner as `invoke train --workers N`, each
listening on the worker port like TensorFlow's gRPC server, so the network is the real one.
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
import socket, time
server = socket.socket()
server.bind(("0.0.0.0", {settings.WORKER_PORT}))
server.listen()
print("listening", flush=True)
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


def probe_from_another_network(engine, image_id: str, address: str, run: str) -> int:
    """Exit status of a connection attempt from a container on the default bridge."""
    code = f"import socket; socket.create_connection(({address!r}, {settings.WORKER_PORT}), timeout=3)"
    probe = engine.containers.run(
        image_id, ["python", "-c", code], labels={"trainbox.test": run}, detach=True
    )
    try:
        return probe.wait(timeout=60)["StatusCode"]
    finally:
        probe.remove(force=True)


def observe(engine, image_id: str, run: str, seen: dict) -> None:
    """While the worker runs: what it publishes, and who can connect; then end it."""
    worker = wait_for(lambda: engine.containers.list(filters={"label": f"{settings.RUN_ID_LABEL}={run}"}))[0]
    try:
        wait_for(lambda: b"listening" in worker.logs())
        worker.reload()
        network = engine.networks.get(f"trainbox-run-{run}")
        address = worker.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]
        seen.update(
            published=worker.attrs["HostConfig"]["PortBindings"],
            exposed=worker.attrs["Config"].get("ExposedPorts"),
            internal=network.attrs["Internal"],
            from_host=can_connect(address, settings.WORKER_PORT),
            from_other_network=probe_from_another_network(engine, image_id, address, run),
        )
    finally:
        worker.kill()


def test_a_worker_is_reachable_from_the_host_only(engine, cpu_image):
    run = f"reach-{uuid.uuid4().hex[:8]}"
    spec = ContainerSpec(image=cpu_image.id, command=["python", "-c", LISTENER], role="train",
                         name=f"trainbox-test-{run}", labels={settings.RUN_ID_LABEL: run})  # fmt: skip
    seen = {}
    observer = threading.Thread(target=observe, args=(engine, cpu_image.id, run, seen), daemon=True)
    observer.start()
    outcome = group.run_group(
        [group.Member(spec, "")], f"trainbox-run-{run}", {settings.RUN_ID_LABEL: run}, echo=print
    )
    observer.join(timeout=60)
    assert seen["published"] in ({}, None) and not seen["exposed"]
    assert seen["internal"] is True
    assert seen["from_host"] is True  # the host, hence any local user, reaches the worker
    assert seen["from_other_network"] != 0  # a container on another network does not
    assert outcome.status == 137  # ended by the observer
    assert not engine.networks.list(names=[f"trainbox-run-{run}"])
