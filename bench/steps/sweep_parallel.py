"""`invoke sweep --parallel 2`: four tiny trials two at a time (each with one of the two
CPUs) against the same four one after another (each with both). Quick mode (CI) sweeps two
trials: one round at --parallel 2 against two trials in a row, the same ideal ratio of 2."""

from __future__ import annotations

from bench import runs
from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.pairing import alternating
from bench.step import Context, Step

DROPOUT = "grid:\n  model.dropout_rate: [0.1, 0.3]\n"
SWEEP = {"full": DROPOUT + "  training.learning_rate: [0.001, 0.003]\n", "quick": DROPOUT}
TRIALS = {"full": 4, "quick": 2}
OVERRIDES = ["training.epochs=2", "data.image_size=[8,8]", "model.conv_filters=[8]", "model.dense_units=16"]


def _sweep(ctx: Context, name: str, extra: list[str]) -> float:
    sweep_file = ctx.work / "sweep-parallel.yaml"
    sweep_file.write_text(SWEEP[ctx.plan.mode])
    return runs.invoke_sweep(sweep_file, ctx.data_dir, ctx.outputs(name), OVERRIDES, extra)


def measure(ctx: Context) -> list[Figure]:
    pairs, trials = ctx.plan.choose(quick=1, full=2), TRIALS[ctx.plan.mode]
    ctx.echo(f"{trials}-trial sweep at --parallel 2 vs one after another, {pairs} pair(s) ...")
    rounds = alternating(
        pairs,
        {
            "parallel": lambda: _sweep(ctx, "parallel", ["--parallel", "2"]),
            "serial": lambda: _sweep(ctx, "serial", ["--parallel", "1"]),
        },
    )
    serial = [pair["serial"] for pair in rounds]
    return [
        Figure(
            name="sweep_parallel_speedup",
            unit="x",
            samples=paired_ratios(serial, [pair["parallel"] for pair in rounds]),
            goal=Goal(at_least=1.5),
            baseline=Baseline(label=f"{trials} trials one after another (s)", samples=tuple(serial)),
            definition=f"wall time of a {trials}-trial `invoke sweep` (digits, 2 epochs, tiny model) one "
            "after another / the same at --parallel 2 (each trial 1 of the 2 CPUs); image present",
        )
    ]


STEP = Step(name="sweep_parallel", figures=("sweep_parallel_speedup",), measure=measure)
