"""The host's view of a run: a run some process is writing is refused and left untouched."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from app import manifest
from app.launch import runs
from app.launch.errors import EXIT_USAGE, UsageError

HOLD = """
import sys, time
from app import run_lock
with run_lock.hold(sys.argv[1]):
    print("held", flush=True)
    time.sleep(60)
"""
RUN_ID = "20261125-180512-3fa9c2"


@pytest.fixture
def run_dir(tmp_path):
    folder = tmp_path / RUN_ID
    folder.mkdir()
    manifest.write_manifest(folder, {"run_id": RUN_ID, "status": "running", "epochs_completed": 1})
    return folder


@pytest.fixture
def writer(run_dir):
    """Another process writing the run (as the training in a container does)."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(run_dir)], stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "held"
    yield process
    process.kill()
    process.wait(timeout=10)


def test_resuming_a_run_being_written_is_refused_in_one_line(run_dir, writer):
    before = (run_dir / "manifest.json").read_bytes()
    with pytest.raises(UsageError) as raised:
        runs.resumable_run_dir(run_dir.parent, RUN_ID)
    message = str(raised.value)
    assert raised.value.exit_code == EXIT_USAGE
    assert f"--resume {RUN_ID}: the run is still being written by process {writer.pid} on " in message
    assert (run_dir / "manifest.json").read_bytes() == before


def test_an_unrecorded_end_is_not_recorded_over_a_live_writer(run_dir, writer):
    before = (run_dir / "manifest.json").read_bytes()
    runs.record_unrecorded_end(run_dir, 137)
    runs.record_unrecorded_end(run_dir, 1, reason="killed for memory")
    runs.note_failure(run_dir, "worker 1 exited with status 137")
    assert (run_dir / "manifest.json").read_bytes() == before


def test_an_unrecorded_end_of_a_run_nobody_writes_is_recorded(run_dir):
    runs.record_unrecorded_end(run_dir, 137)
    record = json.loads((run_dir / "manifest.json").read_text())
    assert record["status"] == "interrupted" and record["interrupted_by"] == "SIGKILL"
    assert record["exit_status"] == 137 and record["recorded_by"] == "host"


def test_a_recorded_end_is_kept_unless_the_host_knows_better(run_dir):
    manifest.write_manifest(run_dir, {"run_id": RUN_ID, "status": "interrupted"})
    runs.record_unrecorded_end(run_dir, 1)
    assert json.loads((run_dir / "manifest.json").read_text())["status"] == "interrupted"
    runs.record_unrecorded_end(run_dir, 137, reason="the container ran out of memory")
    record = json.loads((run_dir / "manifest.json").read_text())
    assert record["status"] == "failed" and record["error"] == "the container ran out of memory"


@pytest.mark.parametrize(
    ("run_id", "fragment"),
    [
        ("../etc", "is not a run id"),
        ("20990101-000000-abcdef", "no such run"),
    ],
)
def test_resume_of_what_is_not_a_resumable_run_is_a_usage_error(run_dir, run_id, fragment):
    with pytest.raises(UsageError, match=fragment):
        runs.resumable_run_dir(run_dir.parent, run_id)


def test_resume_of_a_completed_run_is_refused(run_dir):
    manifest.write_manifest(run_dir, {"run_id": RUN_ID, "status": "completed"})
    with pytest.raises(UsageError, match="already completed"):
        runs.resumable_run_dir(run_dir.parent, RUN_ID)
