"""The error catalogue, signals, concurrency and hardening, each produced for real through `invoke`.

Every user mistake must end in one `trainbox:` line, a non-zero exit, no traceback, nothing
left running and no run directory that claims to be complete.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, assert_gone_within, assert_one_line_error, fill, invoke

pytestmark = pytest.mark.docker

TINY = ["--set", "data.image_size=[8,8]", "--set", "model.conv_filters=[8]"]
STOP_TIMEOUT_S = 10
EXIT_INTERRUPTED = 130  # what invoke returns after Ctrl-C or SIGTERM (app/launch/containers.py)
# Values a user may have in their shell: none may reach a container, a manifest or a log.
SECRETS = {
    "JUPYTER_TOKEN": "jt-3b1f9c0d7e6a5b4c",
    "GITHUB_TOKEN": "ghp_Zx9QwErTy1234567890abcdefGHIJ",
    "AWS_SECRET_ACCESS_KEY": "wJalrXUtnFEMI-K7MDENG-bPxRfiCYEXAMPLEKEY",
}
TOKEN_LIKE = re.compile(r"(ghp_[A-Za-z0-9]{20,}|AKIA[A-Z0-9]{16}|token=[0-9a-f]{16,})")


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def runs(output_dir: Path) -> list[Path]:
    return sorted(path for path in output_dir.iterdir() if (path / "manifest.json").exists())


def assert_nothing_claims_completion(output_dir: Path) -> None:
    if output_dir.is_dir():
        statuses = {run.name: manifest(run).get("status") for run in runs(output_dir)}
        assert "completed" not in statuses.values(), statuses


def training_containers(engine, output_dir: Path) -> list:
    """This test's training containers: role label, and its own output dir mounted.

    ignore_removed: a container removed between listing and inspecting is not an error.
    """
    found = []
    for container in engine.containers.list(
        all=True, filters={"label": "trainbox.role=train"}, ignore_removed=True
    ):
        if any(mount.get("Source") == str(output_dir) for mount in container.attrs.get("Mounts", [])):
            found.append(container)
    return found


def start_training(output_dir: Path, *extra: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "train", "--output-dir", str(output_dir), *TINY, *extra],
        cwd=REPO_ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )


def stop(process: subprocess.Popen) -> None:
    """Ctrl-C, as a user would, so invoke removes the container; kill only if that hangs."""
    if process.poll() is None:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=STOP_TIMEOUT_S + 30)
        except subprocess.TimeoutExpired:
            process.kill()


def wait_until_training(engine, output_dir: Path, process: subprocess.Popen, timeout: float = 300):
    """The run's container once it has checkpointed an epoch (so the run has something to lose)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(process.stdout.read()[-3000:])
        found = runs(output_dir)
        if found and manifest(found[0]).get("epochs_completed", 0) >= 1:
            (container,) = training_containers(engine, output_dir)
            return found[0], container
        time.sleep(0.5)
    raise AssertionError("training did not finish an epoch in time")


# --- user mistakes caught on the host, before any container starts ------------------------------


@pytest.fixture(scope="module")
def bad_yaml(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("configs") / "bad.yaml"
    path.write_text("seed: 1\ntraining:\n  epochs: 3\n   batch_size: 4\n")
    return path


HOST_ERRORS = {
    # a path under a regular file cannot be created, even by root (CI runs as root)
    "output dir not writable": (["--output-dir", "/etc/hostname/outputs"], 1, ["/etc/hostname/outputs"]),
    "data dir missing": (
        ["--data-dir", "/nonexistent/data", "--set", "data.train=mine/train", "--set", "data.test=null"],
        2,
        ["data directory not found", "/nonexistent/data"],
    ),
    "image missing": (["--image", "trainbox:nope"], 2, ["trainbox:nope not found"]),
    "invalid yaml": (["--config", "{bad_yaml}"], 2, ["invalid YAML", "line 4", "column"]),
    "wrong type": (["--set", "training.epochs=abc"], 2, ["training.epochs", "integer"]),
    "out of range": (["--set", "training.epochs=-1"], 2, ["training.epochs", "greater than or equal to 1"]),
    "unknown key": (["--set", "training.epoch=3"], 2, ["training.epoch"]),
    "--set without =": (["--set", "training.epochs"], 2, ["--set", "dotted.key=value"]),
    "--set without key": (["--set", "=3"], 2, ["--set", "dotted.key=value"]),
    "resume unknown run": (["--resume", "20990101-000000-abcdef"], 2, ["no such run"]),
    "resume not a run id": (["--resume", "../etc"], 2, ["not a run id"]),
    "data path escapes": (["--set", "data.train=../.."], 2, ["data.train", "escapes the data directory"]),
    "data path escapes inside": (["--set", "data.test=digits/../../x"], 2, ["data.test", "escapes"]),
}


@pytest.mark.parametrize("case", HOST_ERRORS)
def test_user_mistake_is_one_line(case, tmp_path, bad_yaml, engine, no_leftovers):
    args, exit_code, fragments = HOST_ERRORS[case]
    args = [arg.replace("{bad_yaml}", str(bad_yaml)) for arg in args]
    output_dir = tmp_path / "outputs"
    if "--output-dir" not in args:
        args = ["--output-dir", str(output_dir), *args]
    result = invoke("train", *args, timeout=120)
    assert_one_line_error(result, *fragments)
    assert result.returncode == exit_code, result.stderr
    assert not training_containers(engine, output_dir)
    assert_nothing_claims_completion(output_dir)
    assert not output_dir.exists() or not runs(output_dir)


def test_escape_through_a_symlink_in_the_data_dir(tmp_path, no_leftovers):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (data_dir / "elsewhere").symlink_to("/etc")
    result = invoke(
        "train",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(tmp_path / "out"),
        "--set",
        "data.train=elsewhere",
        "--set",
        "data.test=null",
        timeout=120,
    )
    assert_one_line_error(result, "data.train", "escapes the data directory")
    assert result.returncode == 2
    assert_nothing_claims_completion(tmp_path / "out")


# --- failures of a running container ---------------------------------------------------------------


def test_container_killed_for_memory_is_explained_and_the_run_marked_failed(
    tmp_path, cpu_image, no_leftovers
):
    # A small model (it builds and the run is claimed) whose batches of 128 images at 256x256
    # need about 1 GB of activations in the first epoch; TF starts in less than 600 MB.
    overrides = ["data.image_size=[256,256]", "model.conv_filters=[32]", "model.dense_units=8",
                 "training.batch_size=128", "training.epochs=2"]  # fmt: skip
    sets = [arg for override in overrides for arg in ("--set", override)]
    result = invoke("train", "--output-dir", str(tmp_path), "--memory", "600m", *sets, timeout=600)
    line = assert_one_line_error(result, "out of memory", "limit 600m", "exit 137", "--memory")
    assert result.returncode == 137, line
    (run_dir,) = runs(tmp_path)
    record = manifest(run_dir)
    assert record["status"] == "failed"
    assert "out of memory" in record["error"]


def checkpoint_files(run_dir: Path) -> dict[str, str]:
    """Every file under checkpoints/, by relative path, with its sha256."""
    root = run_dir / "checkpoints"
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def assert_checkpoints_complete(run_dir: Path, epochs_completed: int) -> None:
    """No staging folder left, every checkpoint whole, the newest one the last recorded epoch."""
    folders = sorted((run_dir / "checkpoints").iterdir())
    assert folders and all(folder.name.startswith("epoch-") for folder in folders), folders
    for folder in folders:
        assert {path.name for path in folder.iterdir()} == {"model.keras", "state.json"}, folder
        assert json.loads((folder / "state.json").read_text())["epoch"] == int(folder.name[6:])
    assert folders[-1].name == f"epoch-{epochs_completed:04d}"


def assert_resumes_to_completion(output_dir: Path, run_dir: Path) -> None:
    """Nothing was lost: `--resume` goes on from the last checkpoint and completes."""
    last_epoch = manifest(run_dir)["epochs_completed"]
    result = invoke("train", "--output-dir", str(output_dir), "--resume", run_dir.name, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"from epoch-{last_epoch:04d} (epoch {last_epoch})" in result.stdout, result.stdout[-3000:]
    record = manifest(run_dir)
    assert record["status"] == "completed"
    assert record["resumed_from"]["from_epoch"] == last_epoch


# Short runs with many steps per epoch: time to act after the first checkpoint, and quick to resume.
RESUMABLE = ["--set", "training.epochs=20", "--set", "training.batch_size=4"]


def interrupted_run(engine, output_dir: Path) -> Path:
    """A run stopped with Ctrl-C after at least one epoch: resumable, with checkpoints."""
    process = start_training(output_dir, *RESUMABLE)
    try:
        run_dir, _ = wait_until_training(engine, output_dir, process)
    finally:
        stop(process)
    assert manifest(run_dir)["status"] == "interrupted"
    return run_dir


# Below what TensorFlow needs to start: the resumed container dies for memory before training.
TINY_MEMORY = "200m"


def test_run_killed_for_memory_keeps_the_checkpoints_from_before(tmp_path, engine, cpu_image, no_leftovers):
    run_dir = interrupted_run(engine, tmp_path)
    before = checkpoint_files(run_dir)
    epochs = manifest(run_dir)["epochs_completed"]

    result = invoke(
        "train", "--output-dir", str(tmp_path), "--resume", run_dir.name, "--memory", TINY_MEMORY, timeout=600
    )
    line = assert_one_line_error(result, "out of memory", f"limit {TINY_MEMORY}", "exit 137")
    assert result.returncode == 137, line
    record = manifest(run_dir)
    assert record["status"] == "failed" and "out of memory" in record["error"], record
    assert checkpoint_files(run_dir) == before
    assert_checkpoints_complete(run_dir, epochs)

    assert_resumes_to_completion(tmp_path, run_dir)


# Room for the manifest and history files, not for another checkpoint (~1.8 MB with this model).
DISK_MARGIN = 256 * 1024
BIG_CHECKPOINT = ["--set", "model.dense_units=1024"]


def test_disk_full_during_a_run_marks_it_failed_and_keeps_its_checkpoints(
    small_disk, engine, cpu_image, no_leftovers
):
    output_dir = small_disk / "outputs"
    output_dir.mkdir()
    process = start_training(output_dir, *RESUMABLE, *BIG_CHECKPOINT)
    try:
        run_dir, _ = wait_until_training(engine, output_dir, process)
        checkpoint_size = sum(f.stat().st_size for f in (run_dir / "checkpoints").rglob("*") if f.is_file())
        assert checkpoint_size > 2 * DISK_MARGIN, checkpoint_size
        filler = fill(small_disk, leave=DISK_MARGIN)
        output, _ = process.communicate(timeout=300)
    finally:
        stop(process)
    assert process.returncode == 1, output[-3000:]
    assert "Traceback" not in output
    errors = [line for line in output.splitlines() if line.startswith("trainbox: ")]
    assert len(errors) == 1, output[-3000:]
    assert "is full" in errors[0] and f"--resume {run_dir.name}" in errors[0], errors[0]
    record = manifest(run_dir)
    assert record["status"] == "failed" and "is full" in record["error"], record
    assert "No space left on device" in record["error"], record["error"]  # the OS's own words
    assert_checkpoints_complete(run_dir, record["epochs_completed"])
    assert not training_containers(engine, output_dir)

    filler.unlink()  # once there is room again, the run goes on from its last checkpoint
    assert_resumes_to_completion(output_dir, run_dir)


# --- concurrency ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def three_runs(tmp_path_factory, engine, cpu_image):
    """Three `invoke train` started at once into one output dir; names of the containers seen."""
    output_dir = tmp_path_factory.mktemp("concurrent")
    processes = [start_training(output_dir, "--set", "training.epochs=2") for _ in range(3)]
    names = set()
    try:
        while any(process.poll() is None for process in processes):
            names |= {container.name for container in training_containers(engine, output_dir)}
            time.sleep(0.3)
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
    outputs = [process.stdout.read() for process in processes]
    return output_dir, processes, outputs, names


def test_three_concurrent_runs_are_three_distinct_runs(three_runs, engine, no_leftovers):
    output_dir, processes, outputs, names = three_runs
    for process, output in zip(processes, outputs, strict=True):
        assert process.returncode == 0, output[-3000:]
    printed = [re.findall(r"^run directory: (/\S+)$", output, re.M)[-1] for output in outputs]
    assert len(set(printed)) == 3
    found = runs(output_dir)
    assert sorted(map(str, found)) == sorted(printed)
    assert {manifest(run)["status"] for run in found} == {"completed"}
    assert len({manifest(run)["run_id"] for run in found}) == 3
    assert len(names) == 3, names
    assert not training_containers(engine, output_dir)


def test_resume_of_a_completed_run_is_refused(three_runs, no_leftovers):
    output_dir = three_runs[0]
    completed = runs(output_dir)[0]
    before = (completed / "manifest.json").read_text()
    result = invoke("train", "--output-dir", str(output_dir), "--resume", completed.name, timeout=120)
    assert_one_line_error(result, completed.name, "already completed")
    assert result.returncode == 2
    assert (completed / "manifest.json").read_text() == before


# --- signals, hardening, secrets -------------------------------------------------------------------


def assert_hardened(container, output_dir: Path) -> None:
    container.reload()
    host = container.attrs["HostConfig"]
    assert "no-new-privileges" in host["SecurityOpt"]
    assert host["CapDrop"] == ["ALL"]
    assert not host.get("CapAdd")
    assert host["Init"] is True
    assert host["Privileged"] is False
    assert container.attrs["Config"]["User"] == f"{os.getuid()}:{os.getgid()}"
    mounts = {mount["Destination"]: mount for mount in container.attrs["Mounts"]}
    assert mounts["/data"]["RW"] is False
    assert mounts["/outputs"]["Source"] == str(output_dir)
    assert not any("docker.sock" in (m.get("Source", "") + m["Destination"]) for m in mounts.values())
    environment = "\n".join(container.attrs["Config"]["Env"] or [])
    for value in SECRETS.values():
        assert value not in environment


LIMITS = ("--cpus", "1.5", "--shm-size", "300m")
# The CPU quota (cgroup v2 or v1) and the size of /dev/shm, as the training process sees them.
SEEN_INSIDE = """
import os
def read(path):
    try:
        return open(path).read().split()
    except OSError:
        return None
v2 = read("/sys/fs/cgroup/cpu.max")
quota, period = v2 if v2 else (read("/sys/fs/cgroup/cpu/cpu.cfs_quota_us")[0],
                               read("/sys/fs/cgroup/cpu/cpu.cfs_period_us")[0])
shm = os.statvfs("/dev/shm")
print(int(quota) / int(period), shm.f_blocks * shm.f_frsize)
"""


def assert_limits_seen_inside(container) -> None:
    """--cpus and --shm-size reach the running container, not just its configuration."""
    assert container.attrs["HostConfig"]["NanoCpus"] == 1_500_000_000
    assert container.attrs["HostConfig"]["ShmSize"] == 300 << 20
    exit_code, output = container.exec_run(["python", "-c", SEEN_INSIDE])
    assert exit_code == 0, output
    cpus, shm_bytes = output.decode().split()
    assert (float(cpus), int(shm_bytes)) == (1.5, 300 << 20)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_signal_stops_the_hardened_container_and_marks_the_run_interrupted(
    signum, tmp_path, engine, cpu_image, no_leftovers
):
    process = start_training(
        tmp_path, "--set", "training.epochs=500", "--set", "training.batch_size=4", *LIMITS, env=SECRETS
    )
    try:
        run_dir, container = wait_until_training(engine, tmp_path, process)
        assert_hardened(container, tmp_path)
        assert_limits_seen_inside(container)
        process.send_signal(signum)
        assert_gone_within(engine, container.id, STOP_TIMEOUT_S + 2)
        output, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == EXIT_INTERRUPTED, output[-2000:]  # SIGTERM is handled as Ctrl-C is
    assert "Traceback" not in output
    record = manifest(run_dir)
    assert record["status"] == "interrupted"
    assert any((run_dir / "checkpoints").iterdir())
    for path in [p for p in run_dir.rglob("*") if p.is_file() and p.stat().st_size < 5_000_000]:
        text = path.read_bytes().decode("utf-8", "replace")
        assert not any(value in text for value in SECRETS.values()), path
        if path.name in ("manifest.json", "config.yaml") or path.suffix in (".log", ".txt", ".json"):
            assert not TOKEN_LIKE.search(text), path
