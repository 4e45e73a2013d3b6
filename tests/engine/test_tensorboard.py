"""`invoke tensorboard` against the real engine: a finished run's scalars over HTTP, 127.0.0.1 only."""

from __future__ import annotations

import pytest
import requests

from app.launch.ports import choose_port, port_is_free
from tests.engine.service_support import (
    Server,
    assert_nothing_left,
    finished_run,
    project_objects,
    session_roots,
)

pytestmark = pytest.mark.docker

READY_PATTERN = r"TensorBoard is ready: open\s+http://127\.0\.0\.1:(?P<port>\d+)/"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, cpu_image):
    return finished_run(tmp_path_factory.mktemp("tiny-run"))


def test_tensorboard_serves_the_runs_scalars(tiny_run, tmp_path_factory):
    _, output_dir, run_id = tiny_run
    roots = session_roots(tmp_path_factory)
    baseline = project_objects(roots)
    server = Server(["tensorboard", "--output-dir", str(output_dir)], READY_PATTERN)
    try:
        base = f"http://127.0.0.1:{server.port}"
        container = server.container("tensorboard")
        assert container.attrs["HostConfig"]["PortBindings"] == {
            "6006/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(server.port)}]
        }
        mounts = {m["Destination"]: m["RW"] for m in container.attrs["Mounts"]}
        assert mounts == {"/outputs": False}

        tags = requests.get(f"{base}/data/plugin/scalars/tags", timeout=30).json()
        train_run = f"{run_id}/tensorboard/train"
        assert train_run in tags, sorted(tags)
        assert {"epoch_loss", "epoch_accuracy"} <= set(tags[train_run]), tags[train_run]
        scalars = requests.get(
            f"{base}/data/plugin/scalars/scalars", params={"run": train_run, "tag": "epoch_loss"}, timeout=30
        ).json()
        assert [step for _, step, _ in scalars] == [0, 1]  # the tiny run trains two epochs
    finally:
        status = server.interrupt()
    assert status == 130, server.output[-2000:]
    assert_nothing_left(baseline, roots=roots)


def test_default_port_moves_to_the_next_free_one_and_says_so():
    import socket

    said = []
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        busy = holder.getsockname()[1]
        chosen = choose_port(None, busy, "127.0.0.1", echo=said.append)
    assert chosen > busy and port_is_free("127.0.0.1", chosen)
    assert said == [f"port {busy} is busy; using port {chosen} instead"]


def test_listening_beyond_localhost_is_explicit_and_warned():
    from app.launch.errors import TrainboxError
    from app.launch.ports import check_listen

    said = []
    assert check_listen("127.0.0.1", echo=said.append) == "127.0.0.1" and said == []
    assert check_listen("0.0.0.0", echo=said.append) == "0.0.0.0"
    assert len(said) == 1 and said[0].startswith("WARNING: listening on 0.0.0.0")
    with pytest.raises(TrainboxError, match="not an IPv4 address"):
        check_listen("everywhere")
