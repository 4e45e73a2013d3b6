"""`invoke doctor` and `invoke clean` against the real engine."""

from __future__ import annotations

import io
import uuid
from pathlib import Path

import pytest

from app import settings
from app.launch.clean import clean
from tests.helpers import invoke

pytestmark = pytest.mark.docker


def test_doctor_reports_one_line_per_check_and_passes_here(engine, cpu_image):
    result = invoke("doctor", timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.splitlines()
    checks = [line for line in lines if line.split(" ", 1)[0] in ("OK", "NOTE", "WARN", "FAIL")]
    assert len(checks) == len(lines) - 1 and lines[-1] == "ready to train on the CPU"
    text = result.stdout
    assert "OK   container engine: reachable, Docker Engine" in text
    assert "GiB free in" in text
    assert f"image {settings.image_tag()}:" in text and "revision" in text
    assert "base image trainbox-base:bookworm: present, made by debootstrap" in text
    assert "CA bundle for builds" in text and "proxy" in text
    # What this host has, found independently of the doctor: the engine's runtimes, /dev/nvidia*.
    if "nvidia" in (engine.info().get("Runtimes") or {}):
        assert "OK   NVIDIA runtime: registered with the engine" in text
    else:
        assert "NOTE NVIDIA runtime: not registered" in text
    if list(Path("/dev").glob("nvidia[0-9]*")):
        assert "OK   GPUs: " in text and "visible on this host" in text
    else:
        assert "NOTE GPUs: none visible" in text


def test_doctor_without_a_daemon_fails_in_one_line():
    result = invoke("doctor", env={"DOCKER_HOST": "unix:///nonexistent/docker.sock"}, timeout=120)
    assert result.returncode == 1
    assert "FAIL container engine: cannot reach the Docker daemon" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_clean_removes_exactly_the_project_objects(engine, cpu_image):
    # A marker label narrows clean() to this test's objects: other runs share the engine.
    marker = {"trainbox.test": uuid.uuid4().hex}
    labels = {"trainbox.project": "trainbox", **marker}
    ours = engine.containers.create("trainbox-base:bookworm", ["sleep", "60"], labels=labels)
    ours.start()
    # Another project's container: from an image without the project label (the base image
    # carries it, and a container inherits its image's labels).
    stranger_image, _ = engine.images.build(
        fileobj=io.BytesIO(b"FROM scratch\nLABEL other.project=theirs\n"),
        tag=f"trainbox-stranger-{marker['trainbox.test'][:8]}:x",
        rm=True,
    )
    stranger = engine.containers.create(stranger_image.id, ["true"], labels=marker)
    network = engine.networks.create(f"trainbox-test-{marker['trainbox.test'][:8]}", labels=labels)
    volume = engine.volumes.create(labels=labels)
    dockerfile = (
        "FROM trainbox-base:bookworm\n"
        f"LABEL trainbox.project=trainbox trainbox.test={marker['trainbox.test']}\n"
    )
    tag = f"{settings.IMAGE_REPOSITORY}:cleantest-{marker['trainbox.test'][:8]}"
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    try:
        said = []
        removed = clean(images=True, extra_labels=marker, echo=said.append)
        assert f"container {ours.name}" in removed
        assert f"network {network.name}" in removed
        assert f"volume {volume.name}" in removed
        assert f"image {tag}" in removed
        assert said == [f"removed {item}" for item in removed]
        assert not engine.containers.list(all=True, filters={"id": ours.id})
        assert engine.containers.list(all=True, filters={"id": stranger.id})  # not the project's
        assert engine.images.get(settings.image_tag())  # no marker: kept
        assert clean(extra_labels=marker, echo=said.append) == [] and said[-1] == "nothing to remove"
    finally:
        stranger.remove(force=True)
        engine.images.remove(stranger_image.id, force=True)
