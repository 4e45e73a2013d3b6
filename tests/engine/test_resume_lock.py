"""One writer per run directory: `invoke train --resume` of a run still being written is refused.

The writer here is what no label or container name gives away: a plain `docker run` of the
image (as a user would start one by hand, or Slurm with the docker runtime) holding the
run's lock through the bind-mounted output directory.
"""

from __future__ import annotations

import json
import os
import time

import pytest

from app import manifest, settings
from tests.helpers import assert_one_line_error, invoke

pytestmark = pytest.mark.docker

RUN_ID = "20261126-101010-10c4ed"
WRITER = f"""
import time
from app import manifest, run_lock
run_dir = "{settings.OUTPUTS_MOUNT}/{RUN_ID}"
with run_lock.hold(run_dir):
    manifest.write_manifest(run_dir, {{"run_id": "{RUN_ID}", "status": "running", "epochs_completed": 1}})
    print("writing", flush=True)
    time.sleep(120)
"""


@pytest.fixture
def live_writer(engine, cpu_image, tmp_path):
    outputs = tmp_path / "outputs"
    (outputs / RUN_ID).mkdir(parents=True)
    container = engine.containers.run(
        cpu_image.id, ["python", "-c", WRITER], detach=True, user=f"{os.getuid()}:{os.getgid()}",
        volumes={str(outputs): {"bind": settings.OUTPUTS_MOUNT, "mode": "rw"}},
        labels={"trainbox.test": "resume-lock"},  # not the project's: invoke must not rely on labels
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while b"writing" not in container.logs():
            assert time.monotonic() < deadline, container.logs()
            container.reload()
            assert container.status == "running", container.logs()
            time.sleep(0.2)
        yield outputs, container
    finally:
        container.remove(force=True)


def test_resume_of_a_run_written_by_a_plain_docker_run_is_refused_and_leaves_it_alone(live_writer, engine):
    outputs, writer = live_writer
    before = (outputs / RUN_ID / manifest.MANIFEST_NAME).read_bytes()
    result = invoke("train", "--resume", RUN_ID, "--output-dir", str(outputs), timeout=300)
    line = assert_one_line_error(result, f"--resume {RUN_ID}: the run is still being written by process")
    assert result.returncode == 2, line
    assert (outputs / RUN_ID / manifest.MANIFEST_NAME).read_bytes() == before
    assert json.loads(before)["status"] == "running"
    writer.reload()
    assert writer.status == "running"
    started = engine.containers.list(all=True, filters={"label": f"{settings.RUN_ID_LABEL}={RUN_ID}"})
    assert started == []
