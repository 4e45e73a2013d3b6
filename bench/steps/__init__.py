"""The registry: every measured step, in the order the suite runs them.

A new figure is one new module here that defines `STEP = Step(name=..., figures=(...),
measure=...)`, added to STEPS below (a TensorFlow workload it needs inside the image goes
into bench/workloads/ and needs no registration).
"""

from __future__ import annotations

from bench.step import Step
from bench.steps import (
    backbones,
    cache_throughput,
    checkpoint,
    container_vs_native,
    data_memory,
    determinism,
    first_pass_decode,
    image_size,
    launch,
    multiworker,
    pipeline,
    portable_determinism,
    quota_threads,
    rebuild,
    startup,
    sweep_parallel,
    training_options,
)

STEPS: tuple[Step, ...] = (
    image_size.STEP,
    rebuild.STEP,
    launch.STEP,
    container_vs_native.STEP,
    backbones.STEP,
    pipeline.STEP,
    cache_throughput.STEP,
    first_pass_decode.STEP,
    data_memory.STEP,
    startup.STEP,
    checkpoint.STEP,
    determinism.STEP,
    portable_determinism.STEP,
    training_options.STEP,
    quota_threads.STEP,
    multiworker.STEP,
    sweep_parallel.STEP,
)
