"""What `invoke train` adds on top of the training container's own life, against a plain
`docker run` of the same image and training; and the default run as a user sees it."""

from __future__ import annotations

from bench import runs
from bench.figure import Baseline, Figure, Goal
from bench.pairing import alternating
from bench.step import Context, Step

QUICK_EPOCHS = 2


def measure(ctx: Context) -> list[Figure]:
    pairs = ctx.plan.choose(quick=1, full=3)
    # Quick (CI) trains 2 of the default's 12 epochs: the overhead is outside the training,
    # and 2 epochs still learn the digits. Full mode measures the default as users run it.
    overrides = [] if ctx.plan.mode == "full" else [f"training.epochs={QUICK_EPOCHS}"]
    what = "default" if not overrides else f"default ({QUICK_EPOCHS} epochs)"
    ctx.echo(f"{what} `invoke train` vs plain `docker run`, {pairs} pair(s) ...")
    rounds = alternating(
        pairs,
        {
            "invoke": lambda: runs.invoke_train(ctx.data_dir, ctx.outputs("invoke"), overrides, ctx.clock),
            "docker_run": lambda: runs.docker_run_train(
                ctx.data_dir, ctx.outputs("docker-run"), ctx.clock, overrides
            ),
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
            definition=f"wall time of the {what} `invoke train` on digits (image present)",
        ),
        Figure(
            name="default_test_accuracy",
            unit="",
            samples=tuple(run.test_accuracy for run in invoked),
            definition=f"test accuracy of the {what} `invoke train` (deterministic: every repetition "
            "is identical)",
        ),
    ]


STEP = Step(
    name="launch",
    figures=("launch_overhead_s", "default_train_s", "default_test_accuracy"),
    measure=measure,
)
