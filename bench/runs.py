"""One measurement each: a training natively, through `invoke train`, through plain
`docker run`, a workload inside the image, a build. Host side: no TensorFlow here."""

from __future__ import annotations

import json
import os
import re
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import docker.errors

from app import settings
from app.launch import containers, engine

BENCH_DIR = Path(__file__).resolve().parent
# Mounted read-only where the image's PYTHONPATH (its app root) finds it: `python -m bench.workloads.X`.
BENCH_IN_IMAGE = f"{settings.APP_ROOT_IN_IMAGE}/bench"
CONFIG_IN_IMAGE = f"{settings.APP_ROOT_IN_IMAGE}/configs/default.yaml"
WORKLOAD_RESULT = "result.json"  # written by the workload into its output folder
RUN_DIRECTORY = re.compile(r"^run directory: (\S+)", re.MULTILINE)
RUN_ID = re.compile(r"^run (\S+): training in ", re.MULTILINE)


class BenchError(RuntimeError):
    """A measurement that could not be taken; the message says which and why."""


def image() -> str:
    """The CPU image every step measures (TRAINBOX_IMAGE_REPOSITORY decides its name)."""
    return settings.image_tag()


@dataclass
class Training:
    """What one training run tells: wall time seen by the caller, and what it recorded."""

    wall_s: float
    run_dir: Path
    manifest: dict
    history: list[dict]
    container_s: float | None = None  # from the engine's start/die events

    @property
    def train_images(self) -> int:
        return int(self.manifest["data"]["counts"]["train"])

    @property
    def steady_images_per_s(self) -> float:
        """Images/s over the epochs after the first (median epoch time, so one hiccup does not count)."""
        seconds = [row["seconds"] for row in self.history[1:]]
        if not seconds:
            raise BenchError(f"{self.run_dir}: needs at least two epochs for a steady throughput")
        return self.train_images / statistics.median(seconds)

    @property
    def test_accuracy(self) -> float | None:
        return (self.manifest.get("metrics") or {}).get("test_accuracy")


def _run(
    command: list[str],
    what: str,
    env: dict | None = None,
    cwd: Path = settings.REPO_ROOT,
    timeout: int = 3600,
) -> tuple[float, str]:
    started = time.perf_counter()
    result = subprocess.run(
        command,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    wall = time.perf_counter() - started
    if result.returncode != 0:
        tail = (result.stdout + result.stderr).strip().splitlines()[-5:]
        raise BenchError(f"{what} exited {result.returncode}: " + " | ".join(tail))
    return wall, result.stdout


def _read_run(run_dir: Path, wall: float) -> Training:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    history = json.loads((run_dir / "history.json").read_text())
    if manifest.get("status") != "completed":
        raise BenchError(f"{run_dir}: status {manifest.get('status')}")
    return Training(wall_s=wall, run_dir=run_dir, manifest=manifest, history=history)


def _run_dir(output: str, what: str) -> Path:
    found = RUN_DIRECTORY.findall(output)
    if not found:
        raise BenchError(f"{what}: no 'run directory:' line in its output")
    return Path(found[-1])


class ContainerClock:
    """Start and die times of containers, from the engine's event stream (the containers
    themselves are removed by the time we ask)."""

    def __init__(self) -> None:
        self._client = docker.from_env()
        self._times: dict[str, dict[str, float]] = {}
        self._stream = self._client.events(
            decode=True, filters={"type": "container", "event": ["start", "die"]}
        )
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        try:
            for event in self._stream:
                name = event.get("Actor", {}).get("Attributes", {}).get("name")
                if name:
                    self._times.setdefault(name, {})[event["Action"]] = event["timeNano"] / 1e9
        except Exception:  # the stream is closed at the end of the suite
            return

    def lifetime(self, name: str, wait_s: float = 5.0) -> float:
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            times = self._times.get(name, {})
            if "start" in times and "die" in times:
                return times["die"] - times["start"]
            time.sleep(0.05)
        raise BenchError(f"no start/die events seen for container {name}")

    def close(self) -> None:
        self._stream.close()


def _image_id() -> str | None:
    try:
        return engine.client().images.get(image()).id
    except docker.errors.ImageNotFound:
        return None


def _train_command(
    module_args: list[str], data_dir: Path, output_dir: Path, overrides: Sequence[str], extra=()
) -> list[str]:
    """`python -m <module_args> --data-dir D --output-dir O [extra] --set ...`."""
    command = [sys.executable, "-m", *module_args, "--data-dir", str(data_dir)]
    command += ["--output-dir", str(output_dir), *extra]
    for override in overrides:
        command += ["--set", override]
    return command


def native_train(data_dir: Path, output_dir: Path, overrides: Sequence[str]) -> Training:
    """`python -m app train` on the host: same code, same TensorFlow version, no container."""
    command = _train_command(
        ["app", "train", "--config", str(settings.DEFAULT_CONFIG)], data_dir, output_dir, overrides
    )
    wall, output = _run(
        command,
        "native training",
        env={"PYTHONPATH": str(settings.REPO_ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return _read_run(_run_dir(output, "native training"), wall)


def invoke_train(
    data_dir: Path,
    output_dir: Path,
    overrides: Sequence[str],
    clock: ContainerClock | None = None,
    extra: Sequence[str] = (),
) -> Training:
    """`invoke train` exactly as a user types it (image present); with a clock, the
    training container's own life is taken from the engine's events."""
    command = _train_command(["invoke", "train"], data_dir, output_dir, overrides, extra)
    before = _image_id()
    wall, output = _run(command, "invoke train")
    if _image_id() != before:  # the code changed under us and invoke rebuilt the image: measure again
        wall, output = _run(command, "invoke train")
    run = _read_run(_run_dir(output, "invoke train"), wall)
    run_id = RUN_ID.findall(output)
    if clock and run_id:
        run.container_s = clock.lifetime(f"trainbox-train-{run_id[0]}")
    return run


def invoke_sweep(
    sweep_file: Path, data_dir: Path, output_dir: Path, overrides: Sequence[str], extra: Sequence[str] = ()
) -> float:
    """`invoke sweep FILE` as a user types it (image present); its wall time."""
    command = _train_command(["invoke", "sweep", str(sweep_file)], data_dir, output_dir, overrides, extra)
    wall, _ = _run(command, "invoke sweep")
    return wall


def docker_run_train(
    data_dir: Path, output_dir: Path, clock: ContainerClock, overrides: Sequence[str] = ()
) -> Training:
    """The baseline: the same image and training through a plain `docker run --rm`."""
    name = f"trainbox-bench-{uuid.uuid4().hex[:8]}"
    command = [
        "docker", "run", "--rm", "--name", name,
        "--label", f"{settings.PROJECT_LABEL}={settings.PROJECT_NAME}",
        "--label", f"{settings.ROLE_LABEL}=bench",
        "--user", containers.invoking_user(),
        "-v", f"{data_dir}:{settings.DATA_MOUNT}:ro",
        "-v", f"{output_dir}:{settings.OUTPUTS_MOUNT}",
        image(),
        "python", "-m", "app", "train", "--config", CONFIG_IN_IMAGE,
        "--data-dir", settings.DATA_MOUNT, "--output-dir", settings.OUTPUTS_MOUNT, *set_arguments(overrides),
    ]  # fmt: skip
    wall, output = _run(command, "docker run")
    inside = _run_dir(output, "docker run")
    run = _read_run(output_dir / inside.name, wall)
    run.container_s = clock.lifetime(name)
    return run


def workload_in_image(
    workload: str, args: Sequence[str], data_dir: Path, output_dir: Path, cpus: float | None = None
) -> dict:
    """`python -m bench.workloads.<workload>` inside the image, hardened like every project
    container; returns the JSON object it wrote into its output folder."""
    spec = containers.ContainerSpec(
        image=image(),
        command=[
            "python",
            "-m",
            f"bench.workloads.{workload}",
            *args,
            "--config",
            CONFIG_IN_IMAGE,
            "--data-dir",
            settings.DATA_MOUNT,
            "--output-dir",
            settings.OUTPUTS_MOUNT,
            "--result",
            f"{settings.OUTPUTS_MOUNT}/{WORKLOAD_RESULT}",
        ],
        role="bench",
        mounts=[
            containers.bind(str(BENCH_DIR), BENCH_IN_IMAGE, read_only=True),
            containers.bind(str(data_dir), settings.DATA_MOUNT, read_only=True),
            containers.bind(str(output_dir), settings.OUTPUTS_MOUNT, read_only=False),
        ],
        limits=containers.Limits(cpus=cpus),
    )
    container = containers.start(spec)
    try:
        status = container.wait()["StatusCode"]
    except docker.errors.NotFound:
        status = None
    result = output_dir / WORKLOAD_RESULT
    try:
        if status != 0 or not result.is_file():
            raise BenchError(f"workload {workload} exited {status}: {_last_lines(container)}")
        return json.loads(result.read_text())
    finally:
        containers.remove_quietly(container)


def _last_lines(container) -> str:
    """The end of a failed container's stderr, or why there is none (on this shared engine
    another checkout's `invoke clean` may remove our containers)."""
    try:
        return " | ".join(container.logs(stdout=False, stderr=True).decode().strip().splitlines()[-3:])
    except docker.errors.APIError as error:
        return f"its logs are gone, the container was removed from outside ({error.explanation})"


def invoke_build(args: Sequence[str] = (), cwd: Path = settings.REPO_ROOT, timeout: int = 7200) -> float:
    wall, _ = _run(
        [sys.executable, "-m", "invoke", "build", *args],
        "invoke build " + " ".join(args),
        cwd=cwd,
        timeout=timeout,
    )
    return wall


def write_data(data_dir: Path) -> None:
    """The default digits, written as users get them: by `invoke data`, in the image."""
    _run([sys.executable, "-m", "invoke", "data", "--data-dir", str(data_dir)], "writing the digits")


def set_arguments(overrides: Sequence[str]) -> list[str]:
    """Config overrides as `--set KEY=VALUE` arguments (every workload and training takes them)."""
    return [arg for override in overrides for arg in ("--set", override)]
