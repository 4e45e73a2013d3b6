"""Fixtures for tests against the real Docker engine."""

from __future__ import annotations

import subprocess

import pytest

import docker
from app import settings
from tests.helpers import invoke

PROJECT_FILTER = {"label": "trainbox.project=trainbox"}


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def cpu_image(engine):
    """trainbox:cpu, built through `invoke build` exactly as a user builds it."""
    result = invoke("build")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    return engine.images.get(settings.image_tag())


def project_leftovers(engine) -> list[str]:
    containers = engine.containers.list(all=True, filters=PROJECT_FILTER)
    networks = engine.networks.list(filters=PROJECT_FILTER)
    volumes = engine.volumes.list(filters=PROJECT_FILTER)
    return [c.name for c in containers] + [n.name for n in networks] + [v.name for v in volumes]


@pytest.fixture
def no_leftovers(engine):
    """Fails the test if it leaves any project container, network or volume behind."""
    before = set(project_leftovers(engine))
    yield
    left = set(project_leftovers(engine)) - before
    assert not left, f"left behind: {sorted(left)}"


@pytest.fixture
def small_disk(tmp_path):
    """A 32 MB tmpfs the test can fill while a run writes to it (CI runs as root)."""
    mount_point = tmp_path / "small-disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=32m,mode=0755", "tmpfs", str(mount_point)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert mounted.returncode == 0, f"this test mounts a tmpfs and needs root: {mounted.stderr}"
    yield mount_point
    subprocess.run(["umount", "--lazy", str(mount_point)], check=False)
