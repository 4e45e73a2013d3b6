"""`invoke train` end to end against the real engine, as a user runs it."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from PIL import Image

from app import settings
from tests.helpers import REPO_ROOT, invoke

pytestmark = pytest.mark.docker

TINY = ["--set", "data.image_size=[8,8]", "--set", "model.conv_filters=[8]", "--set", "model.dense_units=16"]
USER = (4321, 4321)


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def run_dir_from(stdout: str) -> Path:
    return Path(re.findall(r"^run directory: (/\S+)$", stdout, re.M)[-1])


@pytest.fixture(scope="module")
def user_home():
    """A home for a non-root user, outside pytest's tmp (kept 0700 for root)."""
    home = Path(tempfile.mkdtemp(prefix="trainbox-user-"))
    home.chmod(0o755)
    os.chown(home, *USER)
    yield home
    shutil.rmtree(home)


@pytest.fixture
def leftover_roots(user_home) -> list[Path]:
    return [user_home]  # the fresh clone's containers mount it


@pytest.fixture(scope="module")
def fresh_clone(user_home, cpu_image) -> Path:
    """A `git clone` of the committed tree, owned by a non-root user, as a user would have it."""
    clone = user_home / "trainbox"
    subprocess.run(["git", "clone", "-q", str(REPO_ROOT), str(clone)], check=True)
    subprocess.run(["chown", "-R", f"{USER[0]}:{USER[1]}", str(clone)], check=True)
    return clone


@pytest.fixture(scope="module")
def user_venv(user_home) -> Path:
    """The host requirements in a venv of Debian's python3, usable by a non-root user.

    (The interpreter running the tests may live under /root, which other users cannot enter.)
    """
    venv = user_home / "venv"
    subprocess.run(["/usr/bin/python3", "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "docker", "invoke", "pyyaml", "pydantic"],
        check=True,
        capture_output=True,
    )
    return venv


def test_default_train_on_a_fresh_clone_as_a_non_root_user(fresh_clone, user_venv, no_leftovers):
    docker_gid = os.stat("/var/run/docker.sock").st_gid
    result = subprocess.run(
        [str(user_venv / "bin" / "invoke"), "train"],
        cwd=fresh_clone,
        capture_output=True,
        text=True,
        timeout=1800,
        user=USER[0],
        group=USER[1],
        extra_groups=[docker_gid],
        env={"PATH": f"{user_venv}/bin:/usr/bin:/bin", "HOME": str(fresh_clone)},
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    run_dir = run_dir_from(result.stdout)
    assert run_dir.parent == fresh_clone / "outputs"
    record = manifest(run_dir)
    assert record["status"] == "completed"
    assert record["metrics"]["test_accuracy"] >= 0.95
    assert re.search(r"test accuracy: 0\.9[5-9]|test accuracy: 1\.0", result.stdout)
    # Keras progress reached the terminal as the container printed it.
    assert "Epoch 1/" in result.stdout and "val_accuracy" in result.stdout

    for top in (fresh_clone / "data", fresh_clone / "outputs"):
        paths = [top, *top.rglob("*")]
        assert len(paths) > 10
        owners = {(path.lstat().st_uid, path.lstat().st_gid) for path in paths}
        assert owners == {USER}, f"files in {top} owned by {owners}"


def test_a_user_outside_the_docker_group_gets_one_line(
    fresh_clone, user_venv, tmp_path, engine, no_leftovers
):
    """Permission denied on the Docker socket, produced for real: the same user, no docker group."""
    output_dir = user_venv.parent / "outputs-no-docker"
    result = subprocess.run(
        [str(user_venv / "bin" / "invoke"), "train", "--output-dir", str(output_dir), *TINY],
        cwd=fresh_clone,
        capture_output=True,
        text=True,
        timeout=600,
        user=USER[0],
        group=USER[1],
        extra_groups=[],
        env={"PATH": f"{user_venv}/bin:/usr/bin:/bin", "HOME": str(fresh_clone)},
    )
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("trainbox: ")]
    assert "permission denied on the Docker socket" in line and "docker' group" in line, line
    assert not [path for path in output_dir.glob("*/manifest.json")]


def test_set_overrides_land_in_config_yaml(engine, tmp_path, cpu_image, no_leftovers):
    result = invoke(
        "train",
        "--output-dir",
        str(tmp_path),
        *TINY,
        "--set",
        "training.epochs=2",
        "--set",
        "seed=7",
        "--set",
        "training.learning_rate=1e-3",
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    run_dir = run_dir_from(result.stdout)
    resolved = yaml.safe_load((run_dir / "config.yaml").read_text())
    assert resolved["training"]["epochs"] == 2
    assert resolved["seed"] == 7
    assert resolved["training"]["learning_rate"] == 1e-3
    assert resolved["model"]["conv_filters"] == [8]
    record = manifest(run_dir)
    assert record["config"] == resolved
    assert record["epochs_completed"] == 2
    # The image the run used (earlier tests may have rebuilt trainbox:cpu since the fixture).
    assert record["image"]["id"] == engine.images.get(settings.image_tag()).id
    assert record["image"]["tag"] == settings.image_tag()
    # The run ends with what a user needs next, and its plot says which run it shows.
    accuracy = record["metrics"]["test_accuracy"]
    assert re.search(
        rf"^status: completed, test accuracy: {accuracy:.4f}; took \d+ (s|min \d\d s)$", result.stdout, re.M
    ), result.stdout[-1000:]
    assert f"plot: {run_dir / 'learning_curves.png'}" in result.stdout.splitlines()
    title = Image.open(run_dir / "learning_curves.png").text["Title"]
    assert title.startswith(f"run {run_dir.name} · test accuracy {accuracy:.4f}\nconfig: "), title
    assert "training.epochs=2" in title and "seed=7" in title and "training.batch_size" not in title


def test_data_is_read_only_inside_and_sigint_leaves_an_interrupted_run(
    engine, tmp_path, cpu_image, no_leftovers
):
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "invoke",
            "train",
            "--output-dir",
            str(tmp_path),
            *TINY,
            "--set",
            "training.epochs=200",
            "--set",
            "training.batch_size=4",
        ],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        container = wait_for_training_container(engine, tmp_path, process)
        attempt = container.exec_run(["sh", "-c", "touch /data/written-from-inside"])
        assert attempt.exit_code != 0
        assert b"Read-only file system" in attempt.output
        mounts = {mount["Destination"]: mount for mount in container.attrs["Mounts"]}
        assert mounts["/data"]["RW"] is False and mounts["/outputs"]["RW"] is True

        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 130, output[-2000:]
    assert not engine.containers.list(all=True, filters={"id": container.id})
    (run_dir,) = [path for path in tmp_path.iterdir() if path.is_dir() and not path.name.startswith(".")]
    record = manifest(run_dir)
    assert record["status"] == "interrupted"
    assert record["epochs_completed"] >= 1
    assert any((run_dir / "checkpoints").iterdir())
    assert f"continue with: invoke train --resume {run_dir.name} --output-dir {tmp_path}" in output


def wait_for_training_container(engine, output_dir: Path, process, timeout: float = 300):
    """The run's container, once it has finished at least one epoch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()[-2000:]
        runs = [path for path in output_dir.iterdir() if (path / "manifest.json").exists()]
        if runs and manifest(runs[0]).get("epochs_completed", 0) >= 1:
            (container,) = engine.containers.list(filters={"label": f"trainbox.run_id={runs[0].name}"})
            return container
        time.sleep(0.5)
    raise AssertionError("training did not finish an epoch in time")
