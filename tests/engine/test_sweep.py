"""`invoke sweep` and `invoke runs` on the real engine: a 4-trial sweep at --parallel 2 gives
the same weights as the same trials one by one, also when invoke is SIGKILLed in the middle
and the sweep resumed; every trial is an ordinary run that `invoke runs` lists.

Shared to keep CI short: one parallel sweep, one sequential sweep that is killed and resumed.
Both give each trial one CPU (--cpus 2 / --parallel 2 and --cpus 1 / --parallel 1): the CPU
share sizes TensorFlow's thread pools, and with them the weights.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.engine.conftest import PROJECT_FILTER
from tests.helpers import REPO_ROOT, assert_one_line_error, invoke
from tests.photos import PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker

EPOCHS = 5
BASE = [
    f"training.epochs={EPOCHS}", "training.batch_size=4", "data.image_size=[8,8]",
    "model.conv_filters=[8]", "model.dense_units=16", *PHOTO_OVERRIDES,
]  # fmt: skip
SWEEP = {
    "grid": {"model.dropout_rate": [0.1, 0.3], "training.learning_rate": [0.001, 0.003]},
    "metric": "test_accuracy",
    "goal": "maximize",
}


@pytest.fixture
def no_leftovers(engine, tmp_path_factory):
    """No container of this module's runs remains (each mounts a folder under pytest's tmp);
    as in test_reproduce.py, narrower than conftest's, which counts other sessions' containers."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    left = [
        container.name
        for container in engine.containers.list(all=True, filters=PROJECT_FILTER, ignore_removed=True)
        if any(mount.get("Source", "").startswith(base) for mount in container.attrs.get("Mounts", []))
    ]
    assert not left, f"left behind: {left}"


def manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def sweep_args(data_dir: Path, output_dir: Path, *extra: str) -> list[str]:
    sets = [arg for key in BASE for arg in ("--set", key)]
    return ["--data-dir", str(data_dir), "--output-dir", str(output_dir), *sets, *extra]


@pytest.fixture(scope="module")
def photos(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data"), train_per_class=12, test_per_class=3)


@pytest.fixture(scope="module")
def sweep_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("sweep") / "lr-dropout.yaml"
    path.write_text(yaml.safe_dump(SWEEP))
    return path


def results(output_dir: Path) -> dict:
    (path,) = output_dir.glob("sweeps/*/results.json")
    return json.loads(path.read_text())


def digests(output_dir: Path) -> dict[int, str]:
    return {trial["trial"]: trial["weights_sha256"] for trial in results(output_dir)["trials"]}


@pytest.fixture(scope="module")
def parallel(cpu_image, photos, sweep_file, tmp_path_factory):
    output_dir = tmp_path_factory.mktemp("parallel")
    started = time.monotonic()
    result = invoke(
        "sweep", str(sweep_file), "--parallel", "2", "--cpus", "2", *sweep_args(photos, output_dir)
    )
    print(f"4 trials at --parallel 2: {time.monotonic() - started:.0f} s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return output_dir, result


def test_a_parallel_sweep_runs_every_trial_as_a_run_and_ends_with_a_table_and_a_plot(parallel, no_leftovers):
    output_dir, result = parallel
    summary = results(output_dir)
    assert [trial["status"] for trial in summary["trials"]] == ["completed"] * 4
    accuracies = [trial["test_accuracy"] for trial in summary["trials"]]
    assert accuracies == sorted(accuracies, reverse=True)
    assert len(set(digests(output_dir).values())) == 4  # four different configs, four different models
    for trial in summary["trials"]:
        record = manifest(output_dir / trial["run_id"])
        assert record["sweep"] == {"id": summary["sweep_id"], "trial": trial["trial"]}
        assert record["config"]["model"]["dropout_rate"] == trial["params"]["model.dropout_rate"]
        assert record["config"]["training"]["epochs"] == EPOCHS
    table = result.stdout[result.stdout.index(f"sweep {summary['sweep_id']}, by test_accuracy") :]
    assert [line.split()[1] for line in table.splitlines()[2:6]] == [t["run_id"] for t in summary["trials"]]
    plot = output_dir / "sweeps" / summary["sweep_id"] / "test_accuracy.png"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_invoke_runs_lists_the_trials_and_reports_a_truncated_manifest(parallel, no_leftovers):
    output_dir, _ = parallel
    broken = output_dir / "20261207-000000-badbad"
    broken.mkdir(exist_ok=True)
    (broken / "manifest.json").write_text('{"run_id": "20261207-000000-badbad", "status": "comp')
    try:
        listed = invoke("runs", "--output-dir", str(output_dir), "--json")
        table = invoke("runs", "--output-dir", str(output_dir))
    finally:
        (broken / "manifest.json").unlink()
        broken.rmdir()
    assert listed.returncode == 0 and table.returncode == 0, listed.stderr + table.stderr
    rows = {row["run_id"]: row for row in json.loads(listed.stdout)}
    assert rows[broken.name]["status"] == "corrupt"
    trials = [row for row in rows.values() if row["sweep"]]
    assert len(trials) == 4
    assert all(row["status"] == "completed" and row["epochs"] == f"{EPOCHS}/{EPOCHS}" for row in trials)
    assert all(row["changed"]["training.epochs"] == EPOCHS for row in trials)
    (line,) = [line for line in table.stdout.splitlines() if line.startswith(broken.name)]
    assert line.split()[1] == "corrupt" and "Traceback" not in table.stdout + table.stderr

    first, second = sorted(row["run_id"] for row in trials)[:2]
    compared = invoke("runs", "--output-dir", str(output_dir), "--compare", f"{first},{second}")
    assert compared.returncode == 0, compared.stderr
    assert any(
        line.split()[:2] == ["weights_sha256", manifest(output_dir / first)["weights_sha256"][:27] + "…"]
        for line in compared.stdout.splitlines()
    )


def wait_for_a_trial_mid_run(output_dir: Path, process: subprocess.Popen, timeout: float = 600) -> Path:
    """The run directory of a trial that has checkpointed an epoch but not finished (not the first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, process.stdout.read()[-3000:]
        for run_dir in sorted(output_dir.glob("*-trial0[2-4]")):
            try:
                record = manifest(run_dir)
            except (OSError, ValueError):
                continue
            if record["status"] == "running" and 1 <= record["epochs_completed"] < EPOCHS:
                return run_dir
        time.sleep(0.05)
    raise AssertionError("no trial was caught mid-run")


def stop_paused(engine, run_dir: Path) -> None:
    for container in engine.containers.list(all=True, filters={"label": f"trainbox.run_id={run_dir.name}"}):
        if container.status == "paused":
            container.unpause()
        if container.status in ("running", "paused"):
            container.kill()


def test_kill_9_mid_sweep_then_resume_gives_the_same_weights_one_by_one(
    parallel, engine, photos, sweep_file, tmp_path, no_leftovers
):
    process = subprocess.Popen(
        [sys.executable, "-m", "invoke", "sweep", str(sweep_file), "--cpus", "1",
         *sweep_args(photos, tmp_path)],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    run_dir = None
    try:
        run_dir = wait_for_a_trial_mid_run(tmp_path, process)
        (container,) = engine.containers.list(filters={"label": f"trainbox.run_id={run_dir.name}"})
        container.pause()  # tiny epochs are quick: hold the trial mid-run while invoke is killed
        process.kill()  # SIGKILL: invoke records nothing; the trial's container is left unwatched
        process.communicate(timeout=30)
        (sweep_id,) = [path.name for path in (tmp_path / "sweeps").iterdir()]
        refused = invoke("sweep", str(sweep_file), "--resume", sweep_id, "--output-dir", str(tmp_path))
        still_going = f"--resume {run_dir.name}: the run is still going in container {container.name}"
        assert_one_line_error(refused, still_going)
    finally:
        if process.poll() is None:
            process.kill()
        if run_dir is not None:
            stop_paused(engine, run_dir)  # as a reboot would; also when an assertion above failed
    killed = manifest(run_dir)
    assert killed["status"] == "running" and killed["epochs_completed"] < EPOCHS

    resumed = invoke("sweep", str(sweep_file), "--resume", sweep_id, "--cpus", "1",
                     "--data-dir", str(photos), "--output-dir", str(tmp_path))  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-2000:]
    assert digests(tmp_path) == digests(parallel[0])
    record = manifest(run_dir)
    assert record["status"] == "completed" and record["resumed_from"]["from_epoch"] >= 1
    assert "completed, skipped" in resumed.stdout  # the trials done before the kill were not re-run
    assert not engine.containers.list(all=True, filters={"label": [f"trainbox.run_id={run_dir.name}"]})


def test_a_bad_sweep_is_one_line_before_anything_starts(photos, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("grid:\n  model.dropout_rate: [0.1]\n  training.learning_rte: [0.01]\n")
    result = invoke("sweep", str(bad), *sweep_args(photos, tmp_path / "out"))
    assert result.returncode == 2
    assert_one_line_error(result, "trial 1: unknown config key 'training.learning_rte'")
    assert not (tmp_path / "out" / "sweeps").exists()
