"""How big the CPU and GPU images are, against what they are built on."""

from __future__ import annotations

import docker.errors

from app import settings
from bench import runs
from bench.figure import Baseline, Figure, Goal
from bench.step import Context, Step

OFFICIAL_SIZES = "tensorflow/tensorflow (published): CPU 1760-2070 MB, GPU ~6500 MB"


def _megabytes(client, tag: str) -> float | None:
    try:
        return client.images.get(tag).attrs["Size"] / 1e6
    except docker.errors.ImageNotFound:
        return None


def _gpu_image_mb(ctx: Context) -> float | None:
    gpu_tag = settings.image_tag(gpu=True)
    size = _megabytes(ctx.client, gpu_tag)
    if size is None and ctx.plan.build_gpu_if_missing:
        ctx.echo(f"{gpu_tag} is absent: building it (invoke build --gpu) ...")
        ctx.notes.append(f"invoke build --gpu (image was absent): {runs.invoke_build(['--gpu']):.0f} s")
        size = _megabytes(ctx.client, gpu_tag)
    return size


def measure(ctx: Context) -> list[Figure]:
    cpu_tag, gpu_tag = runs.image(), settings.image_tag(gpu=True)
    cpu_mb = _megabytes(ctx.client, cpu_tag)
    if cpu_mb is None:
        raise runs.BenchError(f"{cpu_tag} is not on this engine (the suite builds it first)")
    base_mb = _megabytes(ctx.client, settings.BASE_IMAGE)
    gpu_mb = _gpu_image_mb(ctx)
    return [
        Figure(
            name="cpu_image_mb",
            unit="MB",
            samples=(cpu_mb,),
            goal=Goal(at_most=1300),
            baseline=Baseline(label=f"{settings.BASE_IMAGE} MB", samples=(base_mb,)) if base_mb else None,
            definition=f"uncompressed size of {cpu_tag} (image.attrs['Size']); {OFFICIAL_SIZES}",
        ),
        Figure(
            name="gpu_image_mb",
            unit="MB",
            samples=(gpu_mb,) if gpu_mb else (),
            goal=Goal(at_most=6000),
            baseline=Baseline(label=f"{cpu_tag} MB", samples=(cpu_mb,)),
            definition=f"uncompressed size of {gpu_tag}",
            reason=None
            if gpu_mb
            else f"{gpu_tag} is not on this engine and this run may not build it (~6 GB)",
        ),
    ]


STEP = Step(name="image_size", figures=("cpu_image_mb", "gpu_image_mb"), measure=measure)
