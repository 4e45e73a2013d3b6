"""A Keras Applications backbone (MobileNetV3Small, 224x224 RGB) trained in the container
against the same training natively: the default small CNN on 16x16 digits says little about
what a user training a real backbone on photos pays for the container."""

from __future__ import annotations

from bench import photos, runs
from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.pairing import alternating
from bench.step import Context, Step

BACKBONE = "MobileNetV3Small"
FIGURE = "mobilenetv3small_container_vs_native"


def measure(ctx: Context) -> list[Figure]:
    # steady images/s needs two epochs at least; quick stays at 48 photos (CI runs it)
    pairs, epochs = ctx.plan.choose(quick=1, full=3), ctx.plan.choose(quick=2, full=4)
    per_class = ctx.plan.choose(quick=16, full=64)
    data_dir = ctx.work / "backbone-photos"
    photos.make_photos(data_dir / "photos" / "train", per_class, sizes=(200, 640))
    overrides = [
        *photos.PHOTO_OVERRIDES,
        "data.test=null",
        "data.validation_split=0.0",
        "data.image_size=[224,224]",
        f"model.architecture={BACKBONE}",
        "model.weights=none",
        f"training.epochs={epochs}",
    ]
    ctx.echo(f"{BACKBONE} 224x224, container vs native, {pairs} pair(s) of {epochs} epochs ...")
    rounds = alternating(
        pairs,
        {
            "native": lambda: runs.native_train(data_dir, ctx.outputs("backbone-native"), overrides),
            "container": lambda: runs.invoke_train(data_dir, ctx.outputs("backbone-container"), overrides),
        },
    )
    native = [pair["native"].steady_images_per_s for pair in rounds]
    container = [pair["container"].steady_images_per_s for pair in rounds]
    return [
        Figure(
            name=FIGURE,
            unit="x",
            samples=paired_ratios(container, native),
            goal=Goal(at_least=0.98),
            baseline=Baseline(label=f"native {BACKBONE} images/s", samples=tuple(native)),
            definition=f"images/s in `invoke train` / natively (`python -m app train`), {BACKBONE} "
            f"(weights none) on {3 * per_class} RGB photos at 224x224, median epoch time after the "
            "first; one ratio per back-to-back pair",
        )
    ]


STEP = Step(name="backbones", figures=(FIGURE,), measure=measure)
