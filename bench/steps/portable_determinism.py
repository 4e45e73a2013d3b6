"""What `deterministic: portable` costs per epoch, against `deterministic: true` in the same
run: oneDNN pinned to SSE4.1 and fixed pools (app/numerics.py) against the CPU's best ISA
and pools sized from the quota."""

from __future__ import annotations

from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.fits import paired_fits, steady_epoch_s
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    rounds = paired_fits(
        ctx,
        "portable vs same-host deterministic epochs",
        {
            "true": ["--threads", "quota", "--set", "deterministic=true"],
            "portable": ["--threads", "quota", "--set", "deterministic=portable"],
        },
    )
    for mode, result in rounds[0].items():
        ctx.notes.append(f"deterministic={mode}: threads {result['threads']}")
    same_host = [steady_epoch_s(pair["true"]) for pair in rounds]
    portable = [steady_epoch_s(pair["portable"]) for pair in rounds]
    return [
        Figure(
            name="portable_determinism_cost",
            unit="",
            samples=tuple(ratio - 1 for ratio in paired_ratios(portable, same_host)),
            goal=Goal(at_most=0.10),
            baseline=Baseline(label="deterministic: true epoch (s)", samples=tuple(same_host)),
            definition="median epoch time with deterministic: portable / deterministic: true - 1, "
            "default model, in the image, pools as a training run sizes them",
        )
    ]


STEP = Step(name="portable_determinism", figures=("portable_determinism_cost",), measure=measure)
