"""Helpers shared by the host-side tests."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
# What tests keep for people to look at (screenshots, executed notebooks): outside tests/ and
# outside the build context, so it never makes the image stale nor enters it.
ARTIFACTS = REPO_ROOT / "test-artifacts"


def skip_or_fail(reason: str) -> None:
    """A check that cannot run here: skipped on a developer's machine, a failure where CI is set.

    CI must prove every claim, so a missing prerequisite there is a broken CI machine, not a pass.
    """
    if os.environ.get("CI"):
        pytest.fail(f"cannot run on this CI machine: {reason}", pytrace=False)
    pytest.skip(reason)


def invoke(
    *args: str,
    cwd: Path = REPO_ROOT,
    env: dict | None = None,
    timeout: int = 1800,
    user: tuple[int, int] | None = None,
) -> subprocess.CompletedProcess:
    """Run the real `invoke` CLI as a user would, capturing what they would see."""
    full_env = {**os.environ, **(env or {})}
    kwargs = {}
    if user is not None:
        kwargs = {"user": user[0], "group": user[1], "extra_groups": [], "umask": 0o022}
    return subprocess.run(
        [sys.executable, "-m", "invoke", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        **kwargs,
    )


def assert_one_line_error(result: subprocess.CompletedProcess, *fragments: str) -> str:
    """A user error: non-zero exit, no traceback, one `trainbox:` line naming the problem."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("trainbox: ")]
    assert len(lines) == 1, result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def copy_repo(destination: Path) -> Path:
    """A throwaway copy of the work tree (no data/outputs), for tests that must edit code."""
    ignore = shutil.ignore_patterns("data", "outputs", "__pycache__", ".pytest_cache", "test-artifacts")
    shutil.copytree(REPO_ROOT, destination, ignore=ignore, symlinks=True)
    return destination


def assert_gone_within(engine, container_id: str, seconds: float) -> None:
    """The container is removed within `seconds` from now (call it right after the signal)."""
    signalled = time.monotonic()
    while engine.containers.list(all=True, filters={"id": container_id}):
        assert time.monotonic() - signalled < seconds, "container still there"
        time.sleep(0.2)


def fill(directory: Path, leave: int = 0) -> Path:
    """Fill the file system under `directory`, then give back `leave` bytes."""
    filler = directory / "filler"
    with open(filler, "wb") as handle:
        try:
            while True:
                handle.write(b"\0" * (1 << 20))
                handle.flush()
        except OSError as error:
            assert error.errno == errno.ENOSPC, error
    size = filler.stat().st_size
    with open(filler, "r+b") as handle:
        handle.truncate(max(0, size - leave))
    return filler


def cache_rows_written(cache_dir: Path) -> int:
    """Rows a cache writer has recorded so far in its partial entry (0 before the first record)."""
    for state in cache_dir.glob(".*.partial/state.json"):
        try:
            return json.loads(state.read_text())["done"]
        except (OSError, ValueError):
            pass
    return 0
