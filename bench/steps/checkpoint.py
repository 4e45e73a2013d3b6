"""What writing a checkpoint after every epoch costs, against the epoch itself."""

from __future__ import annotations

from bench import runs
from bench.figure import Baseline, Figure
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    epochs, checkpoints = ctx.plan.choose(quick=3, full=10), ctx.plan.choose(quick=2, full=10)
    ctx.echo(f"{checkpoints} checkpoint(s) after {epochs} epochs, in the image ...")
    result = runs.workload_in_image(
        "checkpoint",
        ["--epochs", str(epochs), "--checkpoints", str(checkpoints)],
        ctx.data_dir,
        ctx.outputs("checkpoint"),
    )
    return [
        Figure(
            name="checkpoint_s_per_epoch",
            unit="s",
            samples=tuple(result["checkpoint_seconds"]),
            baseline=Baseline(label="epoch time (s)", samples=tuple(result["epoch_seconds"][1:])),
            definition="checkpoint.save (model + RNG state, atomic) as EpochRecorder does after every "
            "epoch, to a bind-mounted output dir; baseline: the same model's epochs after the first",
        )
    ]


STEP = Step(name="checkpoint", figures=("checkpoint_s_per_epoch",), measure=measure)
