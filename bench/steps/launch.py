"""What `invoke train` adds on top of the training container's own life, against a plain
`docker run` of the same image and training; and the default run as a user sees it."""

from __future__ import annotations

from bench import runs
from bench.figure import Baseline, Figure, Goal
from bench.pairing import alternating
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    pairs = ctx.plan.choose(quick=1, full=3)
    ctx.echo(f"default `invoke train` vs plain `docker run`, {pairs} pair(s) ...")
    rounds = alternating(
        pairs,
        {
            "invoke": lambda: runs.invoke_train(ctx.data_dir, ctx.outputs("invoke"), [], ctx.clock),
            "docker_run": lambda: runs.docker_run_train(ctx.data_dir, ctx.outputs("docker-run"), ctx.clock),
        },
    )
    invoked = [pair["invoke"] for pair in rounds]
    plain = [pair["docker_run"] for pair in rounds]
    return [
        Figure(
            name="launch_overhead_s",
            unit="s",
            samples=tuple(run.wall_s - run.container_s for run in invoked),
            goal=Goal(at_most=3),
            baseline=Baseline(
                label="plain docker run overhead (s)",
                samples=tuple(run.wall_s - run.container_s for run in plain),
            ),
            definition="wall time of `invoke train` minus the training container's own life (engine "
            "start->die events); baseline: the same for `docker run --rm <image> python -m app train`",
        ),
        Figure(
            name="default_train_s",
            unit="s",
            samples=tuple(run.wall_s for run in invoked),
            baseline=Baseline(label="docker run, same training (s)", samples=tuple(r.wall_s for r in plain)),
            definition="wall time of the default `invoke train` on digits (image present)",
        ),
        Figure(
            name="default_test_accuracy",
            unit="",
            samples=tuple(run.test_accuracy for run in invoked),
            definition="test accuracy of the default `invoke train` (deterministic: every repetition "
            "is identical)",
        ),
    ]


STEP = Step(
    name="launch",
    figures=("launch_overhead_s", "default_train_s", "default_test_accuracy"),
    measure=measure,
)
