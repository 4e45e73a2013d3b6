"""Under a CPU quota below the host's cores: TensorFlow's own thread pools (sized from the
host) against pools sized from the quota (app/train/threads.py)."""

from __future__ import annotations

from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.fits import images_per_s, paired_fits
from bench.step import Context, Step

QUOTA_CPUS = 1.0


def measure(ctx: Context) -> list[Figure]:
    rounds = paired_fits(
        ctx,
        f"thread pools under --cpus {QUOTA_CPUS}: host-sized vs quota-sized",
        {"host": ["--threads", "host"], "quota": ["--threads", "quota"]},
        cpus=QUOTA_CPUS,
    )
    for sizing, result in rounds[0].items():  # the same pools in every repetition
        ctx.notes.append(f"--cpus {QUOTA_CPUS}, {sizing} threads: {result['threads']}")
    host = [images_per_s(pair["host"]) for pair in rounds]
    return [
        Figure(
            name="quota_threads_speedup",
            unit="x",
            samples=paired_ratios([images_per_s(pair["quota"]) for pair in rounds], host),
            goal=Goal(at_least=1.0),
            baseline=Baseline(label=f"images/s, --cpus {QUOTA_CPUS}, TF default pools", samples=tuple(host)),
            definition=f"images/s with pools sized from the cgroup quota (app/train/threads.py) / "
            f"TensorFlow's default (host cores), container limited to --cpus {QUOTA_CPUS}",
        )
    ]


STEP = Step(name="quota_threads", figures=("quota_threads_speedup",), measure=measure)
