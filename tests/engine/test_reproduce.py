"""Same config + same image => same weights; killed anywhere => resumed => same weights;
`invoke reproduce` says identical or what differs. Real engine, real CLI, tiny configs.

Everything runs from a throwaway clean copy of the repository (its own commit), so other
people's commits or edits in the shared work tree cannot change HEAD under `invoke reproduce`,
and against the image id built for the session, so a concurrent rebuild of trainbox:cpu
does not change the image mid-module.
"""

from __future__ import annotations

import hashlib
import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from app import numerics
from tests.helpers import REPO_ROOT, assert_one_line_error, copy_repo, invoke, skip_or_fail

pytestmark = pytest.mark.docker

DATA_DIR = REPO_ROOT / "data"
TINY = [
    "--set", "training.epochs=4", "--set", "training.batch_size=4",
    "--set", "data.image_size=[8,8]", "--set", "model.conv_filters=[8]", "--set", "model.dense_units=16",
]  # fmt: skip


def git(repo: Path, *args: str) -> str:
    command = ["git", "-C", str(repo), "-c", "user.name=test", "-c", "user.email=test@example.org", *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def run_dir_from(stdout: str) -> Path:
    return Path(re.findall(r"^run directory: (/\S+)$", stdout, re.M)[-1])


@pytest.fixture(scope="module")
def repo(tmp_path_factory, cpu_image) -> Path:
    """A clean copy of the work tree, committed, so its HEAD is what the runs record."""
    copy = copy_repo(tmp_path_factory.mktemp("repo") / "trainbox")
    (copy / ".git" / "index.lock").unlink(missing_ok=True)
    git(copy, "add", "-A", "--", "app", "configs", "tests", "models", "tasks.py")
    if git(copy, "status", "--porcelain", "--untracked-files=no"):
        git(copy, "commit", "-q", "-m", "test snapshot")
    return copy


@pytest.fixture(scope="module")
def cli(repo, cpu_image):
    """`invoke ...` from the copy; train/resume get the session's image id and the data dir."""

    def run(*args: str, **kwargs) -> subprocess.CompletedProcess:
        if args[0] == "train":
            args = (*args, "--image", cpu_image.id, "--data-dir", str(DATA_DIR))
        return invoke(*args, cwd=repo, **kwargs)

    return run


@pytest.fixture(scope="module")
def outputs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("outputs")


@pytest.fixture(scope="module")
def reference(cli, outputs) -> Path:
    """The uninterrupted run every other run is compared with."""
    result = cli("train", "--output-dir", str(outputs), *TINY)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = run_dir_from(result.stdout)
    assert manifest(run_dir)["status"] == "completed"
    return run_dir


def digest(run_dir: Path) -> str:
    return manifest(run_dir)["weights_sha256"]


def start_training(repo: Path, image_id: str, output_dir: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "invoke", "train", "--output-dir", str(output_dir), *TINY,
         "--image", image_id, "--data-dir", str(DATA_DIR)],
        cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip


def wait_for_epochs(output_dir: Path, epochs: int, process: subprocess.Popen, timeout=300) -> Path:
    """The run directory, once its manifest says `epochs` epochs are done."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()[-2000:]
        runs = [path for path in output_dir.iterdir() if (path / "manifest.json").is_file()]
        if runs:
            try:
                if manifest(runs[0]).get("epochs_completed", 0) >= epochs:
                    return runs[0]
            except ValueError:
                pass  # never torn (atomic), but be safe against a reader race on odd file systems
        time.sleep(0.2)
    raise AssertionError(f"training did not finish {epochs} epoch(s) in time")


def mid_epoch_delay(run_dir: Path) -> float:
    """A random point inside the next epoch, from how long the last one took."""
    seconds = json.loads((run_dir / "history.json").read_text())[-1]["seconds"]
    return random.uniform(0.05, 0.8) * seconds


def docker_kill(engine, run_id: str) -> None:
    (container,) = engine.containers.list(filters={"label": f"trainbox.run_id={run_id}"})
    container.kill()  # SIGKILL: nothing inside gets to record anything


def resume(cli, output_dir: Path, run_id: str) -> dict:
    result = cli("train", "--output-dir", str(output_dir), "--resume", run_id)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    record = manifest(output_dir / run_id)
    assert record["status"] == "completed"
    return record


def test_same_config_same_weights_other_seed_other_weights(cli, reference, outputs, no_leftovers):
    again = cli("train", "--output-dir", str(outputs), *TINY)
    other_seed = cli("train", "--output-dir", str(outputs), *TINY, "--set", "seed=7")
    for result in (again, other_seed):
        assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert digest(run_dir_from(again.stdout)) == digest(reference)
    assert digest(run_dir_from(other_seed.stdout)) != digest(reference)
    assert re.fullmatch(r"[0-9a-f]{64}", digest(reference))


def test_docker_kill_mid_epoch_then_resume_gives_the_same_weights(
    engine, repo, cpu_image, cli, reference, tmp_path, no_leftovers
):
    process = start_training(repo, cpu_image.id, tmp_path)
    try:
        run_dir = wait_for_epochs(tmp_path, 1, process)
        delay = mid_epoch_delay(run_dir)
        time.sleep(delay)
        docker_kill(engine, run_dir.name)
        output, _ = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    print(f"killed {delay:.2f} s into epoch 2 or later; invoke exited {process.returncode}")
    assert process.returncode == 137, output[-2000:]
    killed = manifest(run_dir)
    # The container could not record its end; the host did.
    assert killed["status"] == "interrupted" and killed["interrupted_by"] == "SIGKILL"
    assert 1 <= killed["epochs_completed"] < 4

    record = resume(cli, tmp_path, run_dir.name)
    assert record["weights_sha256"] == digest(reference)


def test_invoke_sigkilled_then_container_killed_then_resume(
    engine, repo, cpu_image, cli, reference, tmp_path, no_leftovers
):
    process = start_training(repo, cpu_image.id, tmp_path)
    try:
        run_dir = wait_for_epochs(tmp_path, 1, process)
        delay = mid_epoch_delay(run_dir) / 2
        process.kill()  # SIGKILL of the invoking process: the container trains on, unwatched
        process.communicate(timeout=30)

        refused = cli("train", "--output-dir", str(tmp_path), "--resume", run_dir.name)
        assert_one_line_error(refused, "still going", f"trainbox-train-{run_dir.name}")

        time.sleep(delay)
        docker_kill(engine, run_dir.name)
    finally:
        if process.poll() is None:
            process.kill()
    # Nobody was left to record the end: the manifest still says running.
    assert manifest(run_dir)["status"] == "running"
    assert manifest(run_dir)["epochs_completed"] < 4, "the run finished before it could be killed"

    record = resume(cli, tmp_path, run_dir.name)
    assert record["weights_sha256"] == digest(reference)


def test_truncated_latest_checkpoint_falls_back_and_still_matches(
    engine, repo, cpu_image, cli, reference, tmp_path, no_leftovers
):
    process = start_training(repo, cpu_image.id, tmp_path)
    try:
        run_dir = wait_for_epochs(tmp_path, 2, process)
        docker_kill(engine, run_dir.name)
        process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    checkpoints = sorted((run_dir / "checkpoints").glob("epoch-*"))
    assert len(checkpoints) == 2, checkpoints
    newest = checkpoints[-1] / "model.keras"
    with open(newest, "r+b") as handle:
        handle.truncate(newest.stat().st_size // 2)

    record = resume(cli, tmp_path, run_dir.name)
    assert record["weights_sha256"] == digest(reference)
    assert record["resumed_from"]["from_checkpoint"] == checkpoints[0].name
    assert [s["checkpoint"] for s in record["resumed_from"]["skipped_checkpoints"]] == [checkpoints[-1].name]


def test_reproduce_an_untouched_run_is_identical(cli, reference, outputs, no_leftovers):
    result = cli("reproduce", reference.name, "--output-dir", str(outputs), "--data-dir", str(DATA_DIR))
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert re.search(rf"^identical: \S+ reproduces {reference.name}", result.stdout, re.M)
    record = manifest(run_dir_from(result.stdout))
    assert record["reproduces"] == reference.name
    assert record["weights_sha256"] == digest(reference)
    assert json.loads((run_dir_from(result.stdout) / "reproduction.json").read_text())["identical"] is True


def test_reproduce_a_run_of_a_model_file_runs_the_same_code(repo, cli, outputs, no_leftovers):
    template = "models/template.py"
    result = cli("train", "--output-dir", str(outputs), *TINY, "--set", "training.epochs=1",
                 "--set", f"model.architecture={template}")  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    run_dir = run_dir_from(result.stdout)
    source = (repo / template).read_bytes()
    code = {"file": template, "sha256": hashlib.sha256(source).hexdigest()}
    assert manifest(run_dir)["model"]["code"] == code
    assert (run_dir / template).read_bytes() == source

    again = cli("reproduce", run_dir.name, "--output-dir", str(outputs), "--data-dir", str(DATA_DIR))
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert re.search(rf"^identical: \S+ reproduces {run_dir.name}", again.stdout, re.M)
    rerun = manifest(run_dir_from(again.stdout))
    assert rerun["model"]["code"] == code
    assert rerun["weights_sha256"] == digest(run_dir)


def test_reproduce_after_the_config_changed_shows_what_differs(cli, reference, outputs, no_leftovers):
    edited = outputs / f"{reference.name}-edited"
    shutil.copytree(reference, edited)
    config = yaml.safe_load((edited / "config.yaml").read_text())
    config["seed"] = 7
    (edited / "config.yaml").write_text(yaml.safe_dump(config))

    result = cli("reproduce", edited.name, "--output-dir", str(outputs), "--data-dir", str(DATA_DIR))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Traceback" not in result.stdout + result.stderr
    assert f"does not reproduce {edited.name}" in result.stdout
    assert re.search(r"^  weights_sha256: [0-9a-f]{64} -> [0-9a-f]{64}$", result.stdout, re.M)
    assert re.search(r"^  config seed: 42 -> 7$", result.stdout, re.M)
    assert re.search(r"^  metrics\.test_accuracy: \S+ -> \S+ \(delta [-+]", result.stdout, re.M)


def test_reproduce_after_the_code_changed_says_which_commit(repo, cli, reference, outputs, no_leftovers):
    recorded = manifest(reference)["git"]["commit"]
    readme = repo / "README.md"
    readme.write_text(readme.read_text() + "\nA change after the run.\n")
    git(repo, "commit", "-q", "-am", "change after the run")
    try:
        before = set(outputs.iterdir())
        result = cli("reproduce", reference.name, "--output-dir", str(outputs))
        assert_one_line_error(result, f"git checkout {recorded}", reference.name)
        assert set(outputs.iterdir()) == before  # nothing was started
    finally:
        git(repo, "reset", "-q", "--hard", "HEAD~1")


def test_reproduce_replays_the_recorded_pools_and_names_the_isa_it_cannot(
    cli, reference, outputs, no_leftovers
):
    """A run recorded on a CPU with AMX (its weights from there) and one thread, reproduced
    here: the re-run gets one thread, and the verdict names the ISA this CPU lacks."""
    host = numerics.cpu_facts(numerics.read_cpuinfo())
    if "amx_tile" in host["cpu_isa_flags"]:
        skip_or_fail("this CPU has AMX: it can replay the recorded ISA")
    host_isa = numerics.highest_isa(host["cpu_isa_flags"])
    edited = outputs / f"{reference.name}-amx"
    shutil.copytree(reference, edited)
    record = manifest(edited)
    record["numerics"].update(onednn_isa="AVX512_CORE_AMX", intra_op_threads=1)
    record["weights_sha256"] = "0" * 64  # what that machine got
    (edited / "manifest.json").write_text(json.dumps(record))

    result = cli("reproduce", edited.name, "--output-dir", str(outputs), "--data-dir", str(DATA_DIR))
    assert result.returncode == 1, result.stdout[-2000:] + result.stderr[-2000:]
    assert (
        f"note: this host cannot replay run {edited.name} exactly: the run used oneDNN ISA " in result.stdout
    )
    assert f"offers at most {host_isa}" in result.stdout
    assert re.search(rf"^  numerics\.onednn_isa: AVX512_CORE_AMX -> {host_isa}$", result.stdout, re.M)
    rerun = manifest(run_dir_from(result.stdout))["numerics"]
    assert rerun["intra_op_threads"] == 1  # replayed, where the quota-less host would give 2
    assert rerun["onednn_isa_cap"] is None  # no cap it cannot honour
