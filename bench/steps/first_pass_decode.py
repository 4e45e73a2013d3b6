"""The decoded-image cache's first decoding pass (issue 14) against a plain Pillow loop,
in the image, on photos made here."""

from __future__ import annotations

from bench import photos, runs
from bench.figure import Baseline, Figure
from bench.step import Context, Step


def first_pass(ctx: Context) -> list[Figure]:
    per_class = ctx.plan.choose(quick=20, full=200)
    data_dir = ctx.work / "cache-decode"
    photos.make_photos(data_dir / "photos" / "train", per_class, sizes=(480, 1600))
    ctx.echo(f"first decoding pass vs a plain Pillow loop, {3 * per_class} photos ...")
    overrides = [
        *photos.PHOTO_OVERRIDES, "data.test=null", "data.validation_split=0.0", "data.image_size=[224,224]",
    ]  # fmt: skip
    result = runs.workload_in_image(
        "cache", ["decode", *runs.set_arguments(overrides)], data_dir, ctx.outputs("cache-decode")
    )
    plain = Baseline(label="plain Pillow loop images/s", samples=(result["plain_images_per_s"],))
    return [
        Figure(
            name="first_pass_decode_speedup",
            unit="x",
            samples=(result["cache_images_per_s"] / result["plain_images_per_s"],),
            baseline=plain,
            definition=f"images/s writing the cache ({result['processes']} decoding processes, one per "
            f"CPU the container may use) / a plain one-process Pillow loop (open, RGB, resize), the same "
            f"{result['images']} JPEG/PNG photos of 480-1600 px, to 224x224, in the image",
        ),
        Figure(
            name="first_pass_decode_images_per_s",
            unit="images/s",
            samples=(result["cache_images_per_s"],),
            baseline=plain,
            definition="first-pass decoding into the cache, the photos of first_pass_decode_speedup",
        ),
    ]


STEP = Step(
    name="first_pass_decode",
    figures=("first_pass_decode_speedup", "first_pass_decode_images_per_s"),
    measure=first_pass,
)
