"""XLA and mixed bfloat16 on this CPU, each against the default float32 step (record only:
the GPU figures these options are for cannot be measured without a GPU)."""

from __future__ import annotations

from bench.figure import Baseline, Figure, paired_ratios
from bench.fits import images_per_s, paired_fits
from bench.step import Context, Step

OPTIONS = {
    "xla_speedup_cpu": ("training.jit_compile=true", "XLA-compiled training step"),
    "mixed_bfloat16_speedup_cpu": ("training.precision=mixed_bfloat16", "mixed_bfloat16 policy"),
}


def option_figure(ctx: Context, name: str, override: str, what: str) -> Figure:
    ctx.echo(f"{what} vs the default step, {ctx.plan.fit_pairs} pair(s) ...")
    rounds = paired_fits(ctx, {"default": [], "option": ["--set", override]}, "options")
    default = [images_per_s(pair["default"]) for pair in rounds]
    return Figure(
        name=name,
        unit="x",
        samples=paired_ratios([images_per_s(pair["option"]) for pair in rounds], default),
        baseline=Baseline(label="images/s, default float32 step", samples=tuple(default)),
        definition=f"images/s with {override} / without, default model, CPU image, epochs after the first",
    )


def measure(ctx: Context) -> list[Figure]:
    return [option_figure(ctx, name, override, what) for name, (override, what) in OPTIONS.items()]


STEP = Step(name="training_options", figures=tuple(OPTIONS), measure=measure)
