"""One writer per run directory, for real: a second `train --resume` of a live run is refused."""

import signal

import pytest
from image_helpers import read_manifest, wait_for_epochs
from test_bad_inputs import assert_user_error
from test_reproducible import resume, start_training

pytestmark = pytest.mark.image


def test_resume_of_a_run_being_written_is_refused_and_touches_nothing(digits_dir, tmp_path):
    run_dir = tmp_path / "live"
    writer = start_training(digits_dir, tmp_path, "live", tmp_path / "log.txt")
    try:
        wait_for_epochs(run_dir, 1, writer)
        second = resume(digits_dir, tmp_path, "live")
        assert_user_error(second, f"--resume live: run live is being written by process {writer.pid} on ")
        record = read_manifest(run_dir)
        assert record["status"] == "running" and "resumes" not in record, "the refused writer wrote nothing"
        assert writer.poll() is None, "the first writer is still training"

        writer.send_signal(signal.SIGTERM)
        assert writer.wait(timeout=60) == 143, (tmp_path / "log.txt").read_text()[-2000:]
    finally:
        if writer.poll() is None:
            writer.kill()
    assert read_manifest(run_dir)["status"] == "interrupted", "the first writer recorded its own end"
    # That the lock dies with its writer is shown by test_reproducible: a SIGTERMed run resumes.
