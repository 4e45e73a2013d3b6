"""What op determinism costs per epoch, against the same training without it."""

from __future__ import annotations

from bench.figure import Baseline, Figure, Goal
from bench.fits import paired_fits, steady_epoch_s
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    rounds = paired_fits(
        ctx,
        "deterministic vs non-deterministic epochs",
        {"on": ["--set", "deterministic=true"], "off": ["--set", "deterministic=false"]},
    )
    on = [steady_epoch_s(pair["on"]) for pair in rounds]
    off = [steady_epoch_s(pair["off"]) for pair in rounds]
    return [
        Figure(
            name="determinism_cost",
            unit="",
            samples=tuple(a / b - 1 for a, b in zip(on, off, strict=True)),
            goal=Goal(at_most=0.10),
            baseline=Baseline(label="non-deterministic epoch (s)", samples=tuple(off)),
            definition="median epoch time with op determinism / without - 1, default model, in the image",
        )
    ]


STEP = Step(name="determinism", figures=("determinism_cost",), measure=measure)
