"""Fixtures for tests against the real Docker engine."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

import docker
from app import settings
from tests.engine.background_build import GpuBuild
from tests.engine.service_support import mounts_under
from tests.helpers import REPO_ROOT, invoke

PROJECT_FILTER = {"label": "trainbox.project=trainbox"}


@pytest.fixture(scope="session")
def engine() -> docker.DockerClient:
    return docker.from_env()


@pytest.fixture(scope="session")
def gpu_build() -> GpuBuild:
    """The GPU image's build, started in the background by cpu_image when the session has
    GPU tests (they run last: tests/conftest.py), so it overlaps with the other tests."""
    started = GpuBuild()
    yield started
    if started.build is not None:  # the session ended before the GPU tests waited for it
        started.build.stop()


@pytest.fixture(scope="session")
def cpu_image(engine, request, gpu_build, tmp_path_factory):
    """trainbox:cpu, built through `invoke build` exactly as a user builds it."""
    result = invoke("build")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    gpu_build.start(engine, request.session, tmp_path_factory.mktemp("gpu-build") / "build.log")
    return engine.images.get(settings.image_tag())


def project_leftovers(engine, roots: list[Path] | None = None) -> list[str]:
    """The project's containers, networks and volumes; with `roots`, only the containers that
    are this session's: those bind-mounting something under one of them."""
    containers = engine.containers.list(all=True, filters=PROJECT_FILTER, ignore_removed=True)
    if roots is not None:
        containers = [c for c in containers if mounts_under(c, roots)]
    networks = engine.networks.list(filters=PROJECT_FILTER)
    volumes = engine.volumes.list(filters=PROJECT_FILTER)
    return [c.name for c in containers] + [n.name for n in networks] + [v.name for v in volumes]


@pytest.fixture
def leftover_roots() -> list[Path]:
    """Folders besides pytest's temporary ones and the repository whose containers are this
    test's (a module overrides it, e.g. for a clone made outside pytest's temporary folder)."""
    return []


@pytest.fixture
def no_leftovers(engine, tmp_path_factory, leftover_roots):
    """Fails the test if it leaves any project container, network or volume behind.

    Only this session's containers count (those that mount its temporary folders, the
    repository or leftover_roots): other work on the same engine cannot fail the test.
    """
    roots = [tmp_path_factory.getbasetemp(), Path(REPO_ROOT), *leftover_roots]
    before = set(project_leftovers(engine, roots))
    yield
    left = set(project_leftovers(engine, roots)) - before
    assert not left, f"left behind: {sorted(left)}"


@pytest.fixture
def nothing_left(engine, tmp_path_factory):
    """No project container that mounts a folder under pytest's tmp remains after the test.

    Narrower than no_leftovers: containers only, all of them this session's (no networks,
    volumes or containers that mount the repository), and none excused for existing before.
    """
    yield
    roots = [tmp_path_factory.getbasetemp()]
    containers = engine.containers.list(all=True, filters=PROJECT_FILTER, ignore_removed=True)
    left = [container.name for container in containers if mounts_under(container, roots)]
    assert not left, f"left behind: {left}"


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
