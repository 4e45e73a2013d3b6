"""Multi-worker training (MultiWorkerMirroredStrategy) through `invoke train --workers 2` and Compose."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, invoke

pytestmark = pytest.mark.docker

ACCURACY_BAR = 0.95  # the one-worker bar of the default config (test_train.py)


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def run_dir_from(stdout: str) -> Path:
    return Path(re.findall(r"^run directory: (/\S+)$", stdout, re.M)[-1])


def run_containers(engine, run_id: str) -> list[str]:
    """This run's containers and networks (the engine is shared: others' objects are not ours)."""
    found = engine.containers.list(all=True, filters={"label": f"trainbox.run_id={run_id}"})
    networks = engine.networks.list(filters={"label": f"trainbox.run_id={run_id}"})
    return [c.name for c in found] + [n.name for n in networks]


def test_two_workers_reach_the_one_worker_bar(cpu_image, engine, tmp_path):
    result = invoke("train", "--workers", "2", "--output-dir", str(tmp_path))
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    run_dir = run_dir_from(result.stdout)
    record = manifest(run_dir)
    print(f"2 workers: test accuracy {record['metrics']['test_accuracy']:.4f}")
    assert record["status"] == "completed"
    assert record["metrics"]["test_accuracy"] >= ACCURACY_BAR
    assert record["cluster"]["workers"] == 2
    assert record["cluster"]["strategy"] == "MultiWorkerMirroredStrategy"
    assert record["cluster"]["global_batch_size"] == 2 * record["config"]["training"]["batch_size"]
    assert "[worker 0] " in result.stdout and "[worker 1] " in result.stdout
    # Only the chief's run directory is kept (besides .cache, the decoded images).
    assert [p.name for p in tmp_path.iterdir() if not p.name.startswith(".")] == [run_dir.name]
    assert not run_containers(engine, record["run_id"])


def test_a_killed_worker_stops_the_other_and_the_run_resumes(cpu_image, engine, tmp_path):
    epochs = 10
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "train",
            "--workers",
            "2",
            "--output-dir",
            str(tmp_path),
            "--set",
            f"training.epochs={epochs}",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        run_dir = wait_for_epoch(tmp_path, process, epoch=2)
        engine.containers.get(f"trainbox-train-{run_dir.name}-w1").kill()
        stdout, _ = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode != 0, stdout[-3000:]
    assert "worker 1 exited with status 137" in stdout
    record = manifest(run_dir)
    assert record["status"] in ("interrupted", "failed"), record["status"]
    assert record["epochs_completed"] < epochs
    assert record["cluster_failure"] == "worker 1 exited with status 137"
    assert not run_containers(engine, run_dir.name)

    resumed = invoke("train", "--resume", run_dir.name, "--output-dir", str(tmp_path))
    assert resumed.returncode == 0, resumed.stdout[-4000:] + resumed.stderr[-2000:]
    assert "[worker 1] " in resumed.stdout  # the recorded worker count is used again
    record = manifest(run_dir)
    assert record["status"] == "completed"
    assert record["epochs_completed"] == epochs
    assert record["resumes"][-1]["from_epoch"] >= 2
    assert record["resumes"][-1]["cluster"]["workers"] == 2
    assert not run_containers(engine, run_dir.name)


def wait_for_epoch(output_dir: Path, process: subprocess.Popen, epoch: int, timeout: float = 300) -> Path:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.communicate()[0][-3000:]
        for run_dir in output_dir.iterdir():
            try:
                if manifest(run_dir).get("epochs_completed", 0) >= epoch:
                    return run_dir
            except (OSError, ValueError):
                pass
        time.sleep(0.2)
    raise AssertionError(f"no run reached epoch {epoch} in {timeout} s")


def test_compose_multiworker_profile(cpu_image, engine, tmp_path):
    tmp_path.chmod(0o755)
    project = f"trainbox-mw-{os.getpid()}"
    env = {
        **os.environ,
        "UID": str(os.getuid()),
        "GID": str(os.getgid()),
        "TRAINBOX_OUTPUT_DIR": str(tmp_path),
        "TRAINBOX_DATA_DIR": str(REPO_ROOT / "data"),
    }
    compose = ["docker", "compose", "-p", project, "--profile", "multiworker"]
    (REPO_ROOT / "data").mkdir(exist_ok=True)
    try:
        result = subprocess.run(
            [*compose, "up", "--abort-on-container-failure", "worker-0", "worker-1"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=1200,
        )
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
        states = subprocess.run(
            [*compose, "ps", "-a", "--format", "json"],
            cwd=REPO_ROOT,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        services = [json.loads(line) for line in states.splitlines() if line.strip()]
        exits = {service["Service"]: service["ExitCode"] for service in services}
        assert exits["worker-0"] == 0 and exits["worker-1"] == 0, exits
    finally:
        subprocess.run(
            [*compose, "down", "--remove-orphans"], cwd=REPO_ROOT, env=env, capture_output=True, timeout=120
        )
    compose_label = {"label": f"com.docker.compose.project={project}"}
    assert not engine.containers.list(all=True, filters=compose_label)
    assert not engine.networks.list(filters=compose_label)
    (run_dir,) = [p for p in tmp_path.iterdir() if not p.name.startswith(".")]  # worker-1 kept nothing
    record = manifest(run_dir)
    print(f"compose, 2 workers: test accuracy {record['metrics']['test_accuracy']:.4f}")
    assert record["status"] == "completed"
    assert record["metrics"]["test_accuracy"] >= ACCURACY_BAR
    assert record["cluster"] == {**record["cluster"], "workers": 2, "resolver": "TF_CONFIG"}
