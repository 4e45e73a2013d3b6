"""Training throughput inside the container against the same training natively."""

from __future__ import annotations

from bench import runs
from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.pairing import alternating
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    # 40 epochs in full mode: with 25 the pair ratios were at the mercy of the machine's load
    pairs, epochs = ctx.plan.choose(quick=1, full=5), ctx.plan.choose(quick=3, full=40)
    overrides = [f"training.epochs={epochs}"]
    ctx.echo(f"training throughput, container vs native, {pairs} pair(s) of {epochs} epochs ...")
    rounds = alternating(
        pairs,
        {
            "native": lambda: runs.native_train(ctx.data_dir, ctx.outputs("native"), overrides),
            "container": lambda: runs.invoke_train(ctx.data_dir, ctx.outputs("container"), overrides),
        },
    )
    native = [pair["native"].steady_images_per_s for pair in rounds]
    container = [pair["container"].steady_images_per_s for pair in rounds]
    return [
        Figure(
            name="container_vs_native_throughput",
            unit="x",
            samples=paired_ratios(container, native),
            goal=Goal(at_least=0.98),
            baseline=Baseline(label="native images/s", samples=tuple(native)),
            definition="images/s in `invoke train` / natively (`python -m app train`), same config and "
            "data, median epoch time after the first; one ratio per back-to-back pair",
        )
    ]


STEP = Step(name="container_vs_native", figures=("container_vs_native_throughput",), measure=measure)
