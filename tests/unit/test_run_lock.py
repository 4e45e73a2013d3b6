"""One writer per run directory: the lock is seen by other processes and dies with its holder."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from app import run_lock

HOLD_SCRIPT = """
import sys, time
from app import run_lock
with run_lock.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""


def test_a_free_run_has_no_holder(tmp_path):
    assert run_lock.holder(tmp_path) is None
    with run_lock.hold(tmp_path):
        pass
    assert run_lock.holder(tmp_path) is None


def test_another_process_holding_the_run_is_named_and_refused(tmp_path):
    process = subprocess.Popen(
        [sys.executable, "-c", HOLD_SCRIPT, str(tmp_path)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout.readline().strip() == "held"
        holder = run_lock.holder(tmp_path)
        assert holder is not None and f"process {process.pid} on " in holder
        refused = pytest.raises(run_lock.RunLocked, match=f"run {tmp_path.name} is being written by process")
        with refused, run_lock.hold(tmp_path):
            pass
        process.kill()
        process.wait(timeout=10)
        deadline = time.monotonic() + 5
        while run_lock.holder(tmp_path) is not None:  # the kernel releases it with the process
            assert time.monotonic() < deadline
            time.sleep(0.05)
    finally:
        process.kill()
    with run_lock.hold(tmp_path):
        assert run_lock.holder(tmp_path) is not None  # held by us: others see it


def test_no_run_directory_has_no_holder(tmp_path):
    assert run_lock.holder(tmp_path / "missing") is None
