"""`invoke export`: the tarball loads back to the same image; the batch script runs on real Slurm."""

from __future__ import annotations

import json
import os
import re
import shutil
from pathlib import Path

import pytest

from tests.engine.slurm_cluster import missing_tools, running_cluster
from tests.helpers import invoke, skip_or_fail
from tests.photos import PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker


SWEEP = "grid:\n  model.dropout_rate: [0.1, 0.3]\n"
PRINTED: dict[str, str] = {}  # what `invoke export` printed, by the module's one export


@pytest.fixture(scope="module")
def exported(cpu_image, tmp_path_factory):
    """The export, with a 2-trial sweep's job array (one export serves every test: it is 1.6 GB)."""
    out = tmp_path_factory.mktemp("export")
    sweep_file = tmp_path_factory.mktemp("sweep") / "dropout.yaml"
    sweep_file.write_text(SWEEP)
    base = ["training.epochs=1", "data.image_size=[8,8]", "model.conv_filters=[8]", *PHOTO_OVERRIDES]
    sweep = ["--sweep", str(sweep_file), *(arg for key in base for arg in ("--set", key))]
    result = invoke("export", "--output-dir", str(out), *sweep)
    assert result.returncode == 0, result.stdout + result.stderr
    image_id = re.search(r"trainbox\.image_id (sha256:\w+)", (out / "trainbox-cpu.def").read_text())[1]
    PRINTED["export"] = result.stdout
    yield out, image_id
    shutil.rmtree(out, ignore_errors=True)  # ~1.6 GB: not left to pytest's retention


def test_export_writes_tarball_definition_and_batch_script(exported):
    out, _ = exported
    definition = (out / "trainbox-cpu.def").read_text()
    assert "Bootstrap: docker-archive" in definition and "From: trainbox-cpu.tar" in definition
    script = (out / "trainbox-cpu.sbatch").read_text()
    assert "apptainer exec --nv --contain --cleanenv" in script.replace('"$TRAINBOX_RUNTIME"', "apptainer")
    assert 'TRAINBOX_RUNTIME="${TRAINBOX_RUNTIME:-apptainer}"' in script
    assert os.access(out / "trainbox-cpu.sbatch", os.X_OK)
    assert "apptainer build trainbox-cpu.sif trainbox-cpu.def" in (out / "build-sif.sh").read_text()


def test_export_shows_progress_as_plain_lines_in_a_log(exported):
    """Saving ~1.6 GB takes more than the quiet 2 s; stdout is a pipe, so lines, not a redrawn bar."""
    printed = PRINTED["export"]
    progress = re.findall(r"^saving: [\d.]+ [KMG]?B of [\d.]+ GB \((\d+)%\), \d+ s$", printed, re.M)
    assert progress and progress[-1] == "100" and len(progress) <= 11, printed
    assert "\r" not in printed and "\x1b[" not in printed


def test_export_tarball_loads_back_to_the_same_image_id(exported, engine):
    out, image_id = exported
    with open(out / "trainbox-cpu.tar", "rb") as tarball:
        loaded = engine.images.load(tarball)
    assert [image.id for image in loaded] == [image_id]


def test_export_without_the_image_is_one_clear_line(tmp_path):
    result = invoke("export", "--image", "trainbox:no-such-tag", "--output-dir", str(tmp_path))
    assert result.returncode == 2
    assert "trainbox: image trainbox:no-such-tag not found: build it first (invoke build)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.fixture
def slurm(tmp_path_factory):
    if os.geteuid() != 0 or missing_tools():
        skip_or_fail(f"needs root and Debian's slurm-wlm + munge (missing: {missing_tools()})")
    with running_cluster(tmp_path_factory.mktemp("slurm")) as cluster:
        yield cluster


@pytest.fixture(scope="module")
def digits(cpu_image, tmp_path_factory) -> Path:
    """The default dataset, written here: these tests rely on no other module's data."""
    data_dir = tmp_path_factory.mktemp("slurm-data")
    result = invoke("data", "--data-dir", str(data_dir), timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return data_dir


def test_batch_script_trains_on_a_single_node_slurm_cluster(exported, slurm, digits, tmp_path, engine):
    out, image_id = exported
    outputs = tmp_path / "outputs"
    job = slurm.sbatch(
        out / "trainbox-cpu.sbatch",
        "--set",
        "training.epochs=3",
        cwd=tmp_path,
        # Apptainer is not in Debian's archive: the script's docker runtime, with the exported image.
        env={
            "TRAINBOX_RUNTIME": "docker",
            "TRAINBOX_IMAGE": image_id,
            "TRAINBOX_DATA_DIR": str(digits),
            "TRAINBOX_OUTPUT_DIR": str(outputs),
        },
    )
    state = slurm.wait(job)
    log = (tmp_path / f"trainbox-{job}.out").read_text()
    assert state == "COMPLETED", log[-4000:] + slurm.logs()
    record = json.loads((outputs / f"slurm-{job}" / "manifest.json").read_text())
    print(f"slurm job {job}: test accuracy {record['metrics']['test_accuracy']:.4f}")
    assert record["status"] == "completed"
    assert record["epochs_completed"] == 3
    assert record["image"]["id"] == image_id
    assert record["image"]["code_sha256"] == engine.images.get(image_id).labels["trainbox.code_sha256"]
    assert not engine.containers.list(all=True, filters={"name": f"trainbox-slurm-{job}-"})


def test_batch_script_with_two_tasks_uses_slurm_cluster_resolver(exported, slurm, digits, tmp_path):
    out, image_id = exported
    outputs = tmp_path / "outputs"
    job = slurm.sbatch(
        out / "trainbox-cpu.sbatch",
        "--set",
        "training.epochs=2",
        cwd=tmp_path,
        options=["--ntasks-per-node=2"],
        env={
            "TRAINBOX_RUNTIME": "docker",
            "TRAINBOX_IMAGE": image_id,
            "TRAINBOX_SLURM_PORT_BASE": "23456",
            "TRAINBOX_DATA_DIR": str(digits),
            "TRAINBOX_OUTPUT_DIR": str(outputs),
        },
    )
    state = slurm.wait(job)
    log = (tmp_path / f"trainbox-{job}.out").read_text()
    assert state == "COMPLETED", log[-4000:] + slurm.logs()
    assert "worker 0 of 2 (slurm)" in log and "worker 1 of 2 (slurm)" in log
    # Task 1 kept nothing (.cache holds the decoded images).
    assert [p.name for p in outputs.iterdir() if not p.name.startswith(".")] == [f"slurm-{job}"]
    record = json.loads((outputs / f"slurm-{job}" / "manifest.json").read_text())
    assert record["status"] == "completed"
    assert record["cluster"]["workers"] == 2 and record["cluster"]["resolver"] == "slurm"


def test_the_sweep_job_array_runs_one_trial_per_task_on_slurm(exported, slurm, tmp_path, engine):
    out, image_id = exported
    (script,) = out.glob("sweep-*.sbatch")
    sweep_id = script.stem.removeprefix("sweep-")
    outputs = tmp_path / "outputs"
    photos = make_dataset(tmp_path / "data", train_per_class=8, test_per_class=2)
    job = slurm.sbatch(
        script, cwd=out,  # submitted from the export folder, where sweeps/<id>/ is
        env={"TRAINBOX_RUNTIME": "docker", "TRAINBOX_IMAGE": image_id,
             "TRAINBOX_DATA_DIR": str(photos), "TRAINBOX_OUTPUT_DIR": str(outputs)},
    )  # fmt: skip
    states = [slurm.wait(f"{job}_{task}") for task in (1, 2)]
    logs = "".join(path.read_text() for path in out.glob(f"trainbox-sweep-{job}_*.out"))
    assert states == ["COMPLETED", "COMPLETED"], logs[-4000:] + slurm.logs()
    for trial, dropout in ((1, 0.1), (2, 0.3)):
        record = json.loads((outputs / f"{sweep_id}-trial0{trial}" / "manifest.json").read_text())
        assert record["status"] == "completed"
        assert record["sweep"] == {"id": sweep_id, "trial": trial}
        assert record["config"]["model"]["dropout_rate"] == dropout
        assert record["config"]["training"]["epochs"] == 1
        label = f"trainbox.run_id={record['run_id']}"
        assert not engine.containers.list(all=True, filters={"label": label})
