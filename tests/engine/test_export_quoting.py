"""`invoke export` of an image whose labels hold shell code: the written scripts run none of it.

A tiny image FROM the base image gets hostile provenance labels; the real `invoke export`
writes the tarball and scripts; bash runs them with `srun` and the container runtime
replaced by stubs that record their arguments (tests/unit/test_export_script_quoting.py).
"""

from __future__ import annotations

import io
import shutil
import subprocess
import uuid

import pytest

from app import settings
from tests.helpers import invoke
from tests.unit.test_export_script_quoting import calls, stubs

pytestmark = pytest.mark.docker


@pytest.fixture
def hostile_image(engine, cpu_image, tmp_path):
    marker = tmp_path / "pwned"
    tag = f"trainbox-hostile-{uuid.uuid4().hex[:8]}:cpu"
    dockerfile = (
        f"FROM {settings.BASE_IMAGE}\n"
        f'LABEL {settings.REVISION_LABEL}="$(touch {marker})" {settings.GIT_DIRTY_LABEL}="`touch {marker}`"\n'
    )
    engine.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    yield tag, marker
    engine.images.remove(tag, force=True)


def test_exported_scripts_run_none_of_the_shell_in_the_images_labels(hostile_image, tmp_path):
    tag, marker = hostile_image
    out = tmp_path / "export"
    result = invoke("export", "--image", tag, "--output-dir", str(out), timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    try:
        env = {**stubs(tmp_path), "TRAINBOX_RUNTIME": "docker", "TRAINBOX_OUTPUT_DIR": str(tmp_path / "runs")}
        ran = subprocess.run(["bash", str(out / "trainbox-cpu.sbatch")], cwd=tmp_path, env=env,
                             capture_output=True, text=True, timeout=60, check=False)  # fmt: skip
        assert ran.returncode == 0, ran.stderr
        built = subprocess.run(["sh", str(out / "build-sif.sh")], env=env, capture_output=True, text=True,
                               timeout=60, check=False)  # fmt: skip
        assert built.returncode == 0, built.stderr
        assert not marker.exists()
        run, build = calls(tmp_path)
        assert f"TRAINBOX_GIT_COMMIT=$(touch {marker})" in run and "TRAINBOX_GIT_DIRTY=unknown" in run
        assert build == ["build", "trainbox-cpu.sif", "trainbox-cpu.def"]
        definition = (out / "trainbox-cpu.def").read_text()
        assert [line for line in definition.splitlines() if line.startswith("%")] == ["%labels", "%help"]
    finally:
        shutil.rmtree(out, ignore_errors=True)
