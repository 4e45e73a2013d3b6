"""How a training ends: exception -> exit status, the one `trainbox:` line, the run's status."""

from __future__ import annotations

import errno
import signal

import pytest

from app.config import ConfigError
from app.manifest import Status
from app.train.errors import Interrupted, UserError
from app.train.exits import EXIT_FAILED, EXIT_USAGE, ending_for


@pytest.mark.parametrize(
    "error", [UserError("data.train: folder not found: /data/x"), ConfigError("bad key")]
)
def test_a_user_mistake_exits_2_and_leaves_an_unclaimed_run_alone(error):
    ending = ending_for(error, None, claimed=False)
    assert (ending.exit_status, ending.line, ending.status) == (EXIT_USAGE, str(error), None)
    assert not ending.show_traceback and not ending.show_run_dir


def test_a_user_mistake_after_the_run_started_marks_it_failed():
    ending = ending_for(UserError("--resume r1: the data changed"), "r1", claimed=True)
    assert (ending.exit_status, ending.status) == (EXIT_USAGE, Status.FAILED)
    assert ending.fields == {"error": "--resume r1: the data changed"}


@pytest.mark.parametrize(("signum", "name"), [(signal.SIGTERM, "SIGTERM"), (signal.SIGINT, "SIGINT")])
def test_a_signal_exits_128_plus_n_and_says_how_to_resume(signum, name):
    ending = ending_for(Interrupted(signum), "r1", claimed=True)
    assert ending.exit_status == 128 + signum
    assert ending.line == f"interrupted by {name}; continue with --resume r1"
    assert (ending.status, ending.fields, ending.show_run_dir) == (
        Status.INTERRUPTED,
        {"interrupted_by": name},
        True,
    )


def test_a_signal_before_the_run_started_has_nothing_to_resume():
    ending = ending_for(Interrupted(signal.SIGTERM), None, claimed=False)
    assert (ending.exit_status, ending.line, ending.status) == (143, "interrupted by SIGTERM", None)


def test_a_full_disk_anywhere_in_the_chain_is_failed_and_resumable():
    try:
        try:
            raise OSError(errno.ENOSPC, "No space left on device", "/outputs/r1/checkpoints")
        except OSError as cause:
            raise RuntimeError("saving the checkpoint failed") from cause
    except RuntimeError as wrapped:
        ending = ending_for(wrapped, "r1", claimed=True)
    assert (ending.exit_status, ending.status) == (EXIT_FAILED, Status.FAILED)
    assert (
        ending.line
        == "the disk holding the output directory is full: free space, then continue with --resume r1"
    )
    assert "No space left on device" in ending.fields["error"] and not ending.show_traceback


def test_anything_else_is_a_failed_training_in_one_line_with_its_traceback():
    ending = ending_for(RuntimeError("shapes do not match:\n  (2, 3) vs (3, 2)"), "r1", claimed=True)
    assert ending.exit_status == EXIT_FAILED and ending.status is Status.FAILED
    assert ending.line == "training failed: RuntimeError: shapes do not match: (2, 3) vs (3, 2)"
    assert ending.show_traceback and ending.show_run_dir


def test_a_failure_before_the_run_started_writes_no_manifest():
    ending = ending_for(RuntimeError("boom"), None, claimed=False)
    assert ending.exit_status == EXIT_FAILED and ending.status is None and not ending.show_run_dir
