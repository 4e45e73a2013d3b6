"""Shared fixtures. Host tests never import TensorFlow; image tests run inside the image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import ARTIFACTS

REPO = Path(__file__).resolve().parents[1]
# What the image is built from (and trainbox.code_sha256 hashes): no test may write there.
CODE_FOLDERS = ("tests", "app", "configs", "notebooks", "docker", "requirements")


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


def _code_files() -> set[Path]:
    return {
        path
        for folder in CODE_FOLDERS
        for path in (REPO / folder).rglob("*")
        if "__pycache__" not in path.parts
    }


@pytest.fixture(scope="session", autouse=True)
def nothing_written_into_the_code():
    """What a test writes goes to tmp_path or the artifacts fixture, never among the code: there
    it would enter the image and make trainbox:cpu stale (trainbox.code_sha256)."""
    before = _code_files()
    yield
    written = sorted(str(path.relative_to(REPO)) for path in _code_files() - before)
    assert not written, f"tests wrote into the code folders: {written}"


def pytest_collection_modifyitems(config, items):
    """As root, an ownership check proves nothing (root owns what it makes, whatever the
    containers run as): the `ownership` tests are left out and the `ownership_runner` runs
    them as an unprivileged user (tests/engine/test_ownership.py). As anyone else they run
    here, and the runner is the one left out."""
    drop = "ownership" if os.geteuid() == 0 else "ownership_runner"
    left_out = [item for item in items if item.get_closest_marker(drop)]
    if left_out:
        config.hook.pytest_deselected(items=left_out)
        items[:] = [item for item in items if not item.get_closest_marker(drop)]
    # The GPU tests last: their image builds in the background meanwhile (tests/engine/background_build.py).
    items.sort(key=lambda item: item.get_closest_marker("gpu") is not None)
