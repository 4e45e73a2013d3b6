"""Helpers shared by the image tests: run `python -m app` for real, read what it wrote."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]

# Tiny but slow enough per epoch (many small batches) that a signal can land mid-run.
TINY = [
    "data.image_size=[8,8]",
    "model.conv_filters=[4]",
    "model.dense_units=16",
    "training.batch_size=2",
    "training.epochs=6",
]


def app_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "app", *args]


def app_env() -> dict[str, str]:
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", PYTHONUNBUFFERED="1")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def run_app(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        app_command(*args), cwd=REPO, env=app_env(), capture_output=True, text=True, timeout=timeout
    )


def train_args(data_dir: Path, output_dir: Path, run_id: str, overrides=TINY, *extra: str) -> list[str]:
    args = ["train", "--data-dir", str(data_dir), "--output-dir", str(output_dir), "--run-id", run_id]
    for override in overrides:
        args += ["--set", override]
    return [*args, *extra]


def start_training(
    data_dir: Path, output_dir: Path, run_id: str, log: Path, overrides=TINY
) -> subprocess.Popen:
    """`python -m app train` in the background, its output into `log`."""
    with log.open("w") as handle:
        return subprocess.Popen(
            app_command(*train_args(data_dir, output_dir, run_id, overrides)),
            cwd=REPO,
            env=app_env(),
            stdout=handle,
            stderr=subprocess.STDOUT,
        )


def resume(data_dir: Path, output_dir: Path, run_id: str) -> subprocess.CompletedProcess:
    return run_app("train", "--resume", run_id, "--data-dir", str(data_dir), "--output-dir", str(output_dir))


def read_manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text())


def read_history(run_dir: Path) -> list[dict]:
    return json.loads((run_dir / "history.json").read_text())


def wait_for_epochs(run_dir: Path, epochs: int, process: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"training ended (exit {process.returncode}) before epoch {epochs}")
        try:
            if read_manifest(run_dir).get("epochs_completed", 0) >= epochs:
                return
        except (FileNotFoundError, json.JSONDecodeError):
            pass
        time.sleep(0.02)
    raise AssertionError(f"no epoch {epochs} within {timeout}s")


def signal_after_epochs(process: subprocess.Popen, run_dir: Path, epochs: int, signum: int) -> int:
    """Send `signum` once the run has recorded `epochs` epochs; the exit status. Never leaves
    the process running (killed if the wait fails)."""
    try:
        wait_for_epochs(run_dir, epochs, process)
        process.send_signal(signum)
        return process.wait(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
