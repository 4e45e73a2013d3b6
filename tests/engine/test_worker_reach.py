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


def test_a_worker_is_reachable_from_the_host_only(engine, cpu_image):
    run = f"reach-{uuid.uuid4().hex[:8]}"
    spec = ContainerSpec(image=cpu_image.id, command=["python", "-c", LISTENER], role="train",
                         name=f"trainbox-test-{run}", labels={settings.RUN_ID_LABEL: run})  # fmt: skip
    outcome = []

    def run_group():
        labels = {settings.RUN_ID_LABEL: run}
        outcome.append(group.run_group([group.Member(spec, "")], f"trainbox-run-{run}", labels, echo=print))

    runner = threading.Thread(target=run_group, daemon=True)
    runner.start()
    try:
        worker = wait_for(
            lambda: engine.containers.list(filters={"label": f"{settings.RUN_ID_LABEL}={run}"})
        )[0]
        wait_for(lambda: b"listening" in worker.logs())
        worker.reload()
        assert worker.attrs["HostConfig"]["PortBindings"] in ({}, None)
        assert not worker.attrs["Config"].get("ExposedPorts")
        network = engine.networks.get(f"trainbox-run-{run}")
        assert network.attrs["Internal"] is True
        address = worker.attrs["NetworkSettings"]["Networks"][network.name]["IPAddress"]

        assert can_connect(address, settings.WORKER_PORT)  # the host, hence any local user
        probe = engine.containers.run(
            cpu_image.id, ["python", "-c", f"import socket; socket.create_connection(('{address}', "
                           f"{settings.WORKER_PORT}), timeout=3)"],
            labels={"trainbox.test": run}, remove=False, detach=True,
        )  # fmt: skip
        try:
            assert probe.wait(timeout=60)["StatusCode"] != 0  # from the default bridge: dropped
        finally:
            probe.remove(force=True)
        worker.kill()
    finally:
        runner.join(timeout=60)
    assert outcome and outcome[0].status != 0
    assert not engine.networks.list(names=[f"trainbox-run-{run}"])
