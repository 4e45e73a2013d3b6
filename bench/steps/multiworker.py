"""Two workers (MultiWorkerMirroredStrategy, one host) against one worker, through
`invoke train --workers 2`. Record only: on one host both workers share the same cores,
so this shows the cost of the collective all-reduce and of splitting the host, not
scaling (docs/cluster.md says what to expect across nodes)."""

from __future__ import annotations

from bench import runs
from bench.figure import Baseline, Figure, paired_ratios
from bench.pairing import alternating
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    pairs, epochs = ctx.plan.choose(quick=1, full=3), ctx.plan.choose(quick=2, full=6)
    overrides = [f"training.epochs={epochs}"]
    ctx.echo(f"2 workers vs 1 on this host, {pairs} pair(s) of {epochs} epochs ...")

    def train(workers: int):
        return lambda: runs.invoke_train(
            ctx.data_dir, ctx.outputs(f"workers-{workers}"), overrides, extra=["--workers", str(workers)]
        )

    rounds = alternating(pairs, {"one": train(1), "two": train(2)})
    one = [pair["one"].steady_images_per_s for pair in rounds]
    return [
        Figure(
            name="two_workers_vs_one_throughput",
            unit="x",
            samples=paired_ratios([pair["two"].steady_images_per_s for pair in rounds], one),
            baseline=Baseline(label="images/s, 1 worker", samples=tuple(one)),
            definition="training images/s of `invoke train --workers 2` (global batch 2x) / one worker, "
            "both on this host, median epoch after the first",
        )
    ]


STEP = Step(name="multiworker", figures=("two_workers_vs_one_throughput",), measure=measure)
