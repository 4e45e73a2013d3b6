"""Shared fixtures. Host tests never import TensorFlow; image tests run inside the image."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


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
