"""The benchmark suite: every figure with its baseline measured in the same run.

    invoke bench [--quick]        (or: python -m bench [--quick])

Prints a table and writes bench/results.json. Host side only; TensorFlow runs in the
image (and natively for the container-vs-native baseline).
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import docker.errors

import docker
from app import settings
from bench import measure

RESULTS = measure.BENCH_DIR / "results.json"
REBUILD_TAG = "trainbox:bench-rebuild"
GPU_IMAGE = settings.image_tag(gpu=True)
BASE_IMAGE = "trainbox-base:bookworm"
QUOTA_CPUS = 1.0
OFFICIAL_SIZES = "tensorflow/tensorflow (published): CPU 1760-2070 MB, GPU ~6500 MB"


@dataclass(frozen=True)
class Plan:
    """How much to repeat; quick mode is what CI runs."""

    name: str
    throughput_reps: int
    throughput_epochs: int
    launch_reps: int
    pipeline_reps: int
    pipeline_epochs: int
    determinism_reps: int
    determinism_epochs: int
    checkpoints: int
    build_gpu_if_missing: bool


FULL = Plan(
    name="full",
    throughput_reps=5,
    throughput_epochs=40,
    launch_reps=3,
    pipeline_reps=3,
    pipeline_epochs=8,
    determinism_reps=5,
    determinism_epochs=10,
    checkpoints=10,
    build_gpu_if_missing=True,
)
QUICK = Plan(
    name="quick",
    throughput_reps=1,
    throughput_epochs=8,
    launch_reps=1,
    pipeline_reps=1,
    pipeline_epochs=4,
    determinism_reps=1,
    determinism_epochs=5,
    checkpoints=3,
    build_gpu_if_missing=False,
)


@dataclass
class Figure:
    key: str
    samples: list[float]
    unit: str
    goal: str | None = None  # e.g. ">= 0.98"
    baseline: float | None = None
    baseline_label: str = ""
    definition: str = ""
    reason: str | None = None  # why there is no value

    @property
    def value(self) -> float | None:
        return statistics.median(self.samples) if self.samples else None

    @property
    def spread(self) -> list[float] | None:
        return [min(self.samples), max(self.samples)] if self.samples else None

    def meets_goal(self) -> bool | None:
        if self.goal is None or self.value is None:
            return None
        operator, target = self.goal.split()
        return self.value >= float(target) if operator == ">=" else self.value <= float(target)

    def as_dict(self) -> dict:
        return {
            "value": self.value,
            "unit": self.unit,
            "goal": self.goal,
            "meets_goal": self.meets_goal(),
            "baseline": self.baseline,
            "baseline_label": self.baseline_label,
            "spread": self.spread,
            "samples": self.samples,
            "definition": self.definition,
            **({"reason": self.reason} if self.reason else {}),
        }


@dataclass
class Context:
    plan: Plan
    work: Path
    data_dir: Path
    clock: measure.ContainerClock
    client: docker.DockerClient
    figures: list[Figure] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def outputs(self, name: str) -> Path:
        path = Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.work))
        path.chmod(0o755)
        return path


def median(values: list[float]) -> float:
    return statistics.median(values)


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


# --- the measurements ----------------------------------------------------------------------------


def image_sizes(ctx: Context) -> None:
    say("making sure trainbox:cpu is current (invoke build) ...")
    ctx.notes.append(f"invoke build before measuring (incremental): {measure.invoke_build():.1f} s")
    cpu = ctx.client.images.get(measure.IMAGE)
    base_mb = _size_mb(ctx.client, BASE_IMAGE)
    ctx.figures.append(
        Figure(
            "cpu_image_mb",
            [cpu.attrs["Size"] / 1e6],
            "MB",
            "<= 1300",
            base_mb,
            f"{BASE_IMAGE} MB",
            f"uncompressed size of {measure.IMAGE} (image.attrs['Size']); {OFFICIAL_SIZES}",
        )
    )
    gpu = _image_or_none(ctx.client, GPU_IMAGE)
    reason = None
    if gpu is None and ctx.plan.build_gpu_if_missing:
        say("trainbox:gpu is absent: building it (invoke build --gpu) ...")
        seconds = measure.invoke_build(["--gpu"])
        ctx.notes.append(f"invoke build --gpu (image was absent): {seconds:.0f} s")
        gpu = ctx.client.images.get(GPU_IMAGE)
    elif gpu is None:
        reason = f"{GPU_IMAGE} is not on this engine and this run was not allowed to build it (~6 GB)"
    ctx.figures.append(
        Figure(
            "gpu_image_mb",
            [gpu.attrs["Size"] / 1e6] if gpu else [],
            "MB",
            "<= 6000",
            cpu.attrs["Size"] / 1e6,
            f"{measure.IMAGE} MB",
            f"uncompressed size of {GPU_IMAGE}",
            reason,
        )
    )


def _image_or_none(client, tag: str):
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None


def _size_mb(client, tag: str) -> float | None:
    image = _image_or_none(client, tag)
    return image.attrs["Size"] / 1e6 if image else None


def code_rebuild(ctx: Context) -> None:
    """`invoke build` after a code-only change, in a throwaway copy of the repository."""
    from tests.helpers import copy_repo

    say("code-only rebuild in a copy of the repository ...")
    copy = copy_repo(ctx.work / "repo")
    tag_args = ["--tag", REBUILD_TAG]
    made = []
    try:
        unchanged = measure.invoke_build(tag_args, cwd=copy)  # warm: the layers come from the cache
        made.append(ctx.client.images.get(REBUILD_TAG).id)
        samples = []
        for attempt in range(1 if ctx.plan.name == "quick" else 2):
            marker = copy / "app" / "train" / "__init__.py"
            marker.write_text(marker.read_text() + f"# bench code change {attempt} {time.time()}\n")
            samples.append(measure.invoke_build(tag_args, cwd=copy))
            made.append(ctx.client.images.get(REBUILD_TAG).id)
    finally:
        for image_id in [REBUILD_TAG, *reversed(made)]:
            with contextlib.suppress(docker.errors.APIError):
                ctx.client.images.remove(image_id, force=False)
        shutil.rmtree(copy, ignore_errors=True)
    ctx.figures.append(
        Figure(
            "code_rebuild_s",
            samples,
            "s",
            "<= 10",
            unchanged,
            "invoke build, nothing changed (s)",
            "wall time of `invoke build` after editing one file under app/ (copy of the repo, own tag)",
        )
    )


def launch_overhead(ctx: Context) -> None:
    say(f"default `invoke train` vs plain `docker run`, {ctx.plan.launch_reps} time(s) each ...")
    invoked, plain = [], []
    for _ in range(ctx.plan.launch_reps):
        invoked.append(measure.invoke_train(ctx.data_dir, ctx.outputs("invoke"), [], ctx.clock))
        plain.append(measure.docker_run_train(ctx.data_dir, ctx.outputs("docker-run"), ctx.clock))
    docker_overhead = [run.wall_s - run.container_s for run in plain]
    ctx.figures.append(
        Figure(
            "launch_overhead_s",
            [run.wall_s - run.container_s for run in invoked],
            "s",
            "<= 3",
            median(docker_overhead),
            "plain docker run overhead (s)",
            "wall time of `invoke train` minus the training container's own life (engine start->die events)",
        )
    )
    ctx.figures.append(
        Figure(
            "docker_run_overhead_s",
            docker_overhead,
            "s",
            None,
            None,
            "",
            "wall time of `docker run --rm trainbox:cpu python -m app train` minus the container's life",
        )
    )
    ctx.figures.append(
        Figure(
            "default_train_s",
            [run.wall_s for run in invoked],
            "s",
            None,
            median([r.wall_s for r in plain]),
            "docker run, same training (s)",
            "wall time of the default `invoke train` on digits (image present)",
        )
    )
    accuracies = [run.test_accuracy for run in invoked if run.test_accuracy is not None]
    ctx.figures.append(
        Figure(
            "default_test_accuracy",
            accuracies,
            "",
            None,
            None,
            "",
            "test accuracy of the default `invoke train` (deterministic: every repetition is identical)",
        )
    )


def container_vs_native(ctx: Context) -> None:
    plan = ctx.plan
    overrides = [f"training.epochs={plan.throughput_epochs}"]
    say(
        f"training throughput, container vs native, {plan.throughput_reps} pair(s) of "
        f"{plan.throughput_epochs} epochs ..."
    )
    ratios, native_rates, container_rates = [], [], []
    for rep in range(plan.throughput_reps):
        # Alternate who goes first so a slow drift of the machine's load favours neither.
        order = ("native", "container") if rep % 2 == 0 else ("container", "native")
        rates = {}
        for side in order:
            if side == "native":
                run = measure.native_train(ctx.data_dir, ctx.outputs("native"), overrides)
            else:
                run = measure.invoke_train(ctx.data_dir, ctx.outputs("container"), overrides, ctx.clock)
            rates[side] = run.steady_images_per_s
        native_rates.append(rates["native"])
        container_rates.append(rates["container"])
        ratios.append(rates["container"] / rates["native"])
    ctx.figures.append(
        Figure(
            "container_vs_native_throughput",
            ratios,
            "x",
            ">= 0.98",
            median(native_rates),
            "native images/s",
            "images/s in `invoke train` / natively (`python -m app train`), same config and data, "
            "median epoch time after the first; one ratio per back-to-back pair",
        )
    )
    ctx.figures.append(
        Figure(
            "container_images_per_s",
            container_rates,
            "images/s",
            None,
            median(native_rates),
            "native images/s",
            "steady training throughput inside the container",
        )
    )


def pipeline_and_checkpoint(ctx: Context) -> None:
    plan = ctx.plan
    say(f"pipeline vs in-memory arrays in the image, {plan.pipeline_reps} round(s) ...")
    result = measure.workload_in_image(
        [
            "pipeline",
            "--epochs",
            str(plan.pipeline_epochs),
            "--reps",
            str(plan.pipeline_reps),
            "--checkpoints",
            str(plan.checkpoints),
            "--output-dir",
            "/outputs",
        ],
        ctx.data_dir,
        ctx.outputs("pipeline"),
    )
    images = result["train_images"]

    def rate(seconds: list[float]) -> float:
        return images / median(seconds[1:])

    rounds = result["rounds"]
    in_memory = [rate(r["in_memory"]) for r in rounds]
    ctx.figures.append(
        Figure(
            "pipeline_vs_in_memory_throughput",
            [rate(r["pipeline"]) / rate(r["in_memory"]) for r in rounds],
            "x",
            ">= 0.95",
            median(in_memory),
            "in-memory images/s",
            "app.train image-folder pipeline (decode once, tf.data per epoch) / model.fit on NumPy arrays, "
            "same model, in the image, epochs after the first",
        )
    )
    ctx.figures.append(
        Figure(
            "streaming_vs_in_memory_throughput",
            [rate(r["streaming"]) / rate(r["in_memory"]) for r in rounds],
            "x",
            None,
            median(in_memory),
            "in-memory images/s",
            "for contrast: image_dataset_from_directory decoding every PNG every epoch / in-memory",
        )
    )
    steady_epoch = median([median(r["pipeline"][1:]) for r in rounds])
    ctx.figures.append(
        Figure(
            "checkpoint_s_per_epoch",
            result["checkpoint_s"],
            "s",
            None,
            steady_epoch,
            "epoch time (s)",
            "checkpoint.save (model + RNG state, atomic) as EpochRecorder does after every epoch, "
            "to a bind-mounted output dir",
        )
    )
    ctx.notes.append(f"threads in the image: {result['threads']}")


def paired_fits(
    ctx: Context, sides: dict[str, list[str]], outputs: str, cpus: float | None = None
) -> list[dict]:
    """`workload.py fit` once per side per repetition, back to back, alternating which side
    goes first; one {side: result} per repetition, in the order the sides ran."""
    plan, names = ctx.plan, list(sides)
    rounds = []
    for rep in range(plan.determinism_reps):
        order = names if rep % 2 == 0 else names[::-1]
        rounds.append({
            name: measure.workload_in_image(
                ["fit", "--epochs", str(plan.determinism_epochs), *sides[name]],
                ctx.data_dir, ctx.outputs(outputs), cpus=cpus,
            )
            for name in order
        })
    return rounds


def steady_epoch_s(result: dict) -> float:
    return median(result["seconds"][1:])


def images_per_s(result: dict) -> float:
    return result["train_images"] / steady_epoch_s(result)


def determinism_cost(ctx: Context) -> None:
    say(f"deterministic vs non-deterministic epochs, {ctx.plan.determinism_reps} pair(s) ...")
    rounds = paired_fits(
        ctx, {"on": ["--deterministic", "1"], "off": ["--deterministic", "0"]}, "determinism"
    )
    free = [steady_epoch_s(pair["off"]) for pair in rounds]
    ctx.figures.append(
        Figure(
            "determinism_cost",
            [steady_epoch_s(pair["on"]) / steady_epoch_s(pair["off"]) - 1 for pair in rounds],
            "",
            "<= 0.10",
            median(free),
            "non-deterministic epoch (s)",
            "median epoch time with op determinism / without - 1, default model, in the image",
        )
    )


def training_options(ctx: Context) -> None:
    """XLA and mixed bfloat16 on this CPU, each against the default float32 step (record only).

    The GPU figures these options are for cannot be measured here: there is no GPU.
    """
    options = {
        "xla_speedup_cpu": ("training.jit_compile=true", "XLA-compiled training step"),
        "mixed_bfloat16_speedup_cpu": ("training.precision=mixed_bfloat16", "mixed_bfloat16 policy"),
    }
    for key, (override, what) in options.items():
        say(f"{what} vs the default step, {ctx.plan.determinism_reps} pair(s) ...")
        rounds = paired_fits(ctx, {"default": [], "option": ["--set", override]}, "options")
        ctx.figures.append(
            Figure(
                key,
                [images_per_s(pair["option"]) / images_per_s(pair["default"]) for pair in rounds],
                "x",
                None,
                median([images_per_s(pair["default"]) for pair in rounds]),
                "images/s, default float32 step",
                f"images/s with {override} / without, default model, CPU image, epochs after the first",
            )
        )


def quota_threads(ctx: Context) -> None:
    """Under `--cpus 1` on this 2-core host: TensorFlow's own pool sizes vs sized from the quota."""
    say(
        f"thread pools under --cpus {QUOTA_CPUS}: host-sized vs quota-sized, "
        f"{ctx.plan.determinism_reps} pair(s) ..."
    )
    rounds = paired_fits(
        ctx, {"host": ["--threads", "host"], "quota": ["--threads", "quota"]}, "threads", cpus=QUOTA_CPUS
    )
    for pair in rounds:
        for sizing, result in pair.items():
            ctx.notes.append(f"--cpus {QUOTA_CPUS}, {sizing} threads: {result['threads']}")
    ctx.figures.append(
        Figure(
            "quota_threads_speedup",
            [images_per_s(pair["quota"]) / images_per_s(pair["host"]) for pair in rounds],
            "x",
            ">= 1.0",
            median([images_per_s(pair["host"]) for pair in rounds]),
            f"images/s, --cpus {QUOTA_CPUS}, TF default pools",
            f"images/s with pools sized from the cgroup quota (app/train/threads.py) / TensorFlow's "
            f"default (host cores), container limited to --cpus {QUOTA_CPUS}",
        )
    )


STEPS: list[Callable[[Context], None]] = [
    image_sizes,
    code_rebuild,
    launch_overhead,
    container_vs_native,
    pipeline_and_checkpoint,
    determinism_cost,
    training_options,
    quota_threads,
]
REQUIRED = [
    "container_vs_native_throughput",
    "pipeline_vs_in_memory_throughput",
    "launch_overhead_s",
    "code_rebuild_s",
    "cpu_image_mb",
    "gpu_image_mb",
    "determinism_cost",
    "checkpoint_s_per_epoch",
    "default_train_s",
    "default_test_accuracy",
]


# --- reporting -----------------------------------------------------------------------------------


def machine(client) -> dict:
    info = client.info()
    return {
        "cpus": os.cpu_count(),
        "memory_gib": round(info.get("MemTotal", 0) / 2**30, 1),
        "docker": client.version().get("Version"),
        "storage_driver": info.get("Driver"),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def busy(client) -> dict:
    others = [c.name for c in client.containers.list()]
    return {"load_average": [round(x, 2) for x in os.getloadavg()], "running_containers": others}


def fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"


def table(figures: list[Figure]) -> str:
    rows = [("figure", "value", "goal", "met", "baseline (same run)", "spread (min-max)", "n")]
    for f in figures:
        met = {True: "yes", False: "NO", None: ""}[f.meets_goal()]
        baseline = f"{fmt(f.baseline)} {f.baseline_label}" if f.baseline is not None else "-"
        spread = f"{fmt(f.spread[0])}-{fmt(f.spread[1])}" if f.spread else (f.reason or "-")
        rows.append((f.key, fmt(f.value), f.goal or "", met, baseline, spread, str(len(f.samples))))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


def results(ctx: Context, started: float, before: dict, after: dict, errors: list[str]) -> dict:
    by_key = {f.key: f for f in ctx.figures}
    record = {key: (by_key[key].value if key in by_key else None) for key in REQUIRED}
    for figure in ctx.figures:
        record.setdefault(figure.key, figure.value)
        if figure.reason:
            record[f"{figure.key}_reason"] = figure.reason
    record.update(
        mode=ctx.plan.name,
        plan=ctx.plan.__dict__,
        finished_at=datetime.now(UTC).isoformat(timespec="seconds"),
        seconds=round(time.perf_counter() - started, 1),
        machine=machine(ctx.client),
        busy_before=before,
        busy_after=after,
        notes=ctx.notes,
        errors=errors,
        figures={f.key: f.as_dict() for f in ctx.figures},
    )
    return record


def run(quick: bool = False, results_path: Path = RESULTS, build_gpu: bool = True) -> int:
    """Run every step (one failing step is recorded, the others still run); 0 when all ran."""
    started = time.perf_counter()
    client = docker.from_env()
    before = busy(client)
    say(
        f"{'quick' if quick else 'full'} mode; load {before['load_average']}, "
        f"{len(before['running_containers'])} container(s) running"
    )
    work = Path(tempfile.mkdtemp(prefix="trainbox-bench-"))
    work.chmod(0o755)
    clock = measure.ContainerClock()
    plan = QUICK if quick else FULL
    if not build_gpu:
        plan = dataclasses.replace(plan, build_gpu_if_missing=False)
    ctx = Context(plan, work, work / "data", clock, client)
    errors = []
    try:
        measure.write_data(ctx.data_dir)
        for step in STEPS:
            try:
                step(ctx)
            except (measure.BenchError, docker.errors.DockerException, OSError) as error:
                errors.append(f"{step.__name__}: {error}")
                say(f"FAILED {step.__name__}: {error}")
    finally:
        clock.close()
        shutil.rmtree(work, ignore_errors=True)
    record = results(ctx, started, before, busy(client), errors)
    results_path.write_text(json.dumps(record, indent=2) + "\n")
    print()
    print(table(ctx.figures))
    print(f"\nmachine: {record['machine']}")
    print(f"load before/after: {before['load_average']} / {record['busy_after']['load_average']}")
    for note in ctx.notes:
        print(f"note: {note}")
    print(f"wrote {results_path} ({record['seconds']:.0f} s)")
    if errors:
        print("errors:\n  " + "\n  ".join(errors), file=sys.stderr)
    return 1 if errors else 0
