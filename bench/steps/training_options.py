"""XLA and mixed bfloat16 on this CPU, each against the default float32 step (record only:
the GPU figures these options are for cannot be measured without a GPU)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.figure import Baseline, Figure, paired_ratios
from bench.fits import images_per_s, paired_fits
from bench.step import Context, Step


@dataclass(frozen=True, kw_only=True)
class Option:
    figure: str
    override: str
    what: str
    both_sides: tuple[str, ...] = ()  # overrides both sides need for the option to take effect


OPTIONS = (
    # Keras silently compiles without XLA while op determinism is on (model_supports_jit),
    # so both sides of this pair run without it.
    Option(
        figure="xla_speedup_cpu",
        override="training.jit_compile=true",
        what="XLA-compiled training step",
        both_sides=("deterministic=false",),
    ),
    Option(
        figure="mixed_bfloat16_speedup_cpu",
        override="training.precision=mixed_bfloat16",
        what="mixed_bfloat16 policy",
    ),
)


def option_figure(ctx: Context, option: Option) -> Figure:
    common = [arg for override in option.both_sides for arg in ("--set", override)]
    rounds = paired_fits(
        ctx,
        f"{option.what} vs the default step",
        {"default": common, "option": [*common, "--set", option.override]},
    )
    default = [images_per_s(pair["default"]) for pair in rounds]
    setting = f" (both with {', '.join(option.both_sides)})" if option.both_sides else ""
    return Figure(
        name=option.figure,
        unit="x",
        samples=paired_ratios([images_per_s(pair["option"]) for pair in rounds], default),
        baseline=Baseline(label="images/s, default float32 step", samples=tuple(default)),
        definition=f"images/s with {option.override} / without{setting}, default model, CPU image, "
        "epochs after the first",
    )


def measure(ctx: Context) -> list[Figure]:
    return [option_figure(ctx, option) for option in OPTIONS]


STEP = Step(name="training_options", figures=tuple(option.figure for option in OPTIONS), measure=measure)
