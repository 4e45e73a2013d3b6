"""The decoded-image cache (issue 14): training streamed from it against the in-memory
pipeline it replaced, in the image, on photos made here."""

from __future__ import annotations

import statistics

from bench import photos, runs
from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.step import Context, Step


def throughput(ctx: Context) -> list[Figure]:
    per_class, rounds = ctx.plan.choose(quick=60, full=600), ctx.plan.choose(quick=1, full=3)
    epochs = ctx.plan.choose(quick=3, full=5)
    data_dir = ctx.work / "cache-throughput"
    photos.make_photos(data_dir / "photos" / "train", per_class, sizes=(48, 160))
    ctx.echo(f"cache vs in-memory pipeline, {3 * per_class} photos, {rounds} round(s) of {epochs} epochs ...")
    overrides = [*photos.PHOTO_OVERRIDES, "data.test=null", "data.image_size=[64,64]"]
    result = runs.workload_in_image(
        "cache",
        ["throughput", "--epochs", str(epochs), "--rounds", str(rounds), *runs.set_arguments(overrides)],
        data_dir,
        ctx.outputs("cache-throughput"),
    )

    def images_per_s(side: str) -> list[float]:
        return [result["train_images"] / statistics.median(r[side][1:]) for r in result["rounds"]]

    in_memory = images_per_s("in_memory")
    return [
        Figure(
            name="cached_vs_in_memory_throughput",
            unit="x",
            samples=paired_ratios(images_per_s("cached"), in_memory),
            goal=Goal(at_least=0.9),
            baseline=Baseline(label="in-memory images/s", samples=tuple(in_memory)),
            definition=f"model.fit images/s, default model on {result['train_images']} photos at 64x64 "
            "RGB, batches streamed from the decoded-image cache (memory map) / the same batches from "
            "one in-memory tf.constant (the pipeline before the cache); in the image, epochs after "
            "the first",
        )
    ]


STEP = Step(name="cache_throughput", figures=("cached_vs_in_memory_throughput",), measure=throughput)
