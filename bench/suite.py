"""The benchmark suite: every registered step (bench/steps/), every figure with its
baseline measured in the same run.

    invoke bench [--quick] [--only NAME ...]        (or: python -m bench ...)

Prints a table and writes bench/results.json. Host side only; TensorFlow runs in the
image (and natively for the container-vs-native baseline).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import docker.errors

from app.launch.engine import client as engine_client
from app.launch.errors import TrainboxError
from bench import report, runs
from bench.figure import Figure
from bench.step import FULL, QUICK, Context, Step
from bench.steps import STEPS

RESULTS = runs.BENCH_DIR / "results.json"
# What a measurement can run into on a shared machine; a step that fails this way is
# recorded (its figures say why) and the other steps still run.
MEASUREMENT_FAILURES = (
    runs.BenchError,
    TrainboxError,
    docker.errors.DockerException,
    OSError,
    subprocess.SubprocessError,
    ValueError,
)


def say(text: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {text}", flush=True)


def select(only: Sequence[str]) -> tuple[Step, ...]:
    """The steps to run: all, or those named (by step or by one of their figures)."""
    if not only:
        return STEPS
    known = {step.name for step in STEPS} | {name for step in STEPS for name in step.figures}
    unknown = [name for name in only if name not in known]
    if unknown:
        raise TrainboxError(
            f"no benchmark named {', '.join(unknown)}: --only takes a step "
            f"({', '.join(step.name for step in STEPS)}) or one of their figures",
            exit_code=2,
        )
    return tuple(step for step in STEPS if step.name in only or set(step.figures) & set(only))


def measure_step(step: Step, ctx: Context) -> tuple[list[Figure], str | None]:
    """The step's figures, or, when it fails, one figure per declared name saying why."""
    try:
        figures = step.measure(ctx)
        reported = tuple(figure.name for figure in figures)
        if reported != step.figures:
            raise runs.BenchError(f"reported {reported} but declares {step.figures}")
        return figures, None
    except MEASUREMENT_FAILURES as error:
        reason = f"step {step.name} failed: {error}"
        ctx.echo(f"FAILED {step.name}: {error}")
        return [Figure(name=name, unit="", definition="", reason=reason) for name in step.figures], reason


def run(
    quick: bool = False,
    only: Sequence[str] = (),
    results_path: Path = RESULTS,
    build_gpu: bool = True,
    echo: Callable[[str], None] = say,
) -> int:
    """Run the chosen steps (a failing step is recorded, the others still run); 0 when all ran."""
    steps = select(only)
    started = time.perf_counter()
    client = engine_client()
    plan = QUICK if quick else FULL
    if not build_gpu:
        plan = dataclasses.replace(plan, build_gpu_if_missing=False)
    before = report.busy(client)
    echo(
        f"{plan.mode} mode, steps: {', '.join(step.name for step in steps)}; load {before['load_average']}, "
        f"{len(before['running_containers'])} container(s) running"
    )
    work = Path(tempfile.mkdtemp(prefix="trainbox-bench-"))
    work.chmod(0o755)
    ctx = Context(plan=plan, work=work, client=client, clock=runs.ContainerClock(), echo=echo)
    figures, errors = [], []
    try:
        echo(f"making sure {runs.image()} is current (invoke build) ...")
        ctx.notes.append(f"invoke build before measuring (incremental): {runs.invoke_build():.1f} s")
        for step in steps:
            step_figures, error = measure_step(step, ctx)
            figures += step_figures
            errors += [error] if error else []
    finally:
        ctx.clock.close()
        shutil.rmtree(work, ignore_errors=True)
    after = report.busy(client)
    record = report.record(
        figures,
        report.Run(
            plan=plan,
            steps=[step.name for step in steps],
            seconds=time.perf_counter() - started,
            machine=report.machine(client),
            busy_before=before,
            busy_after=after,
            notes=ctx.notes,
            errors=errors,
        ),
    )
    results_path.write_text(json.dumps(record, indent=2) + "\n")
    print()
    print(report.table(figures))
    print(f"\nmachine: {record['machine']}")
    print(f"load before/after: {before['load_average']} / {after['load_average']}")
    for note in ctx.notes:
        print(f"note: {note}")
    print(f"wrote {results_path} ({record['seconds']:.0f} s)")
    if errors:
        print("errors:\n  " + "\n  ".join(errors), file=sys.stderr)
    return 1 if errors else 0
