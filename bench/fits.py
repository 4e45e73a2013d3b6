"""Paired runs of `bench.workloads.fit` in the image: one container per side per
repetition, so a setting that cannot be undone in-process (op determinism, thread pools)
is measured cleanly."""

from __future__ import annotations

import statistics
from collections.abc import Sequence

from bench import runs
from bench.pairing import alternating
from bench.step import Context


def paired_fits(
    ctx: Context, what: str, sides: dict[str, Sequence[str]], cpus: float | None = None
) -> list[dict[str, dict]]:
    """Each side's extra workload arguments -> one {side: result} per repetition."""
    pairs, epochs = ctx.plan.choose(quick=1, full=5), ctx.plan.choose(quick=3, full=10)
    ctx.echo(f"{what}, {pairs} pair(s) of {epochs} epochs in the image ...")

    def fit(side: str, extra: Sequence[str]):
        return lambda: runs.workload_in_image(
            "fit", ["--epochs", str(epochs), *extra], ctx.data_dir, ctx.outputs(side), cpus=cpus
        )

    return alternating(pairs, {side: fit(side, extra) for side, extra in sides.items()})


def steady_epoch_s(result: dict) -> float:
    """Median epoch time after the first (tracing) epoch."""
    return statistics.median(result["seconds"][1:])


def images_per_s(result: dict) -> float:
    return result["train_images"] / steady_epoch_s(result)
