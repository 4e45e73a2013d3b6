"""The app's input pipeline against the same model fed from in-memory NumPy arrays (and,
for contrast, against decoding every image every epoch), inside the image."""

from __future__ import annotations

import statistics

from bench import runs
from bench.figure import Baseline, Figure, Goal, paired_ratios
from bench.step import Context, Step


def measure(ctx: Context) -> list[Figure]:
    rounds, epochs = ctx.plan.choose(quick=1, full=3), ctx.plan.choose(quick=3, full=8)
    ctx.echo(f"pipeline vs in-memory arrays in the image, {rounds} round(s) of {epochs} epochs ...")
    result = runs.workload_in_image(
        "pipeline",
        ["--epochs", str(epochs), "--rounds", str(rounds)],
        ctx.data_dir,
        ctx.outputs("pipeline"),
    )
    ctx.notes.append(f"threads in the image: {result['threads']}")

    def images_per_s(side: str) -> list[float]:
        return [result["train_images"] / statistics.median(r[side][1:]) for r in result["rounds"]]

    in_memory = images_per_s("in_memory")
    baseline = Baseline(label="in-memory images/s", samples=tuple(in_memory))
    return [
        Figure(
            name="pipeline_vs_in_memory_throughput",
            unit="x",
            samples=paired_ratios(images_per_s("pipeline"), in_memory),
            goal=Goal(at_least=0.95),
            baseline=baseline,
            definition="app.train image-folder pipeline (decode once, tf.data per epoch) / model.fit on "
            "NumPy arrays, same model, in the image, epochs after the first",
        ),
        Figure(
            name="streaming_vs_in_memory_throughput",
            unit="x",
            samples=paired_ratios(images_per_s("streaming"), in_memory),
            baseline=baseline,
            definition="for contrast: image_dataset_from_directory decoding every image every epoch / "
            "in-memory",
        ),
    ]


STEP = Step(
    name="pipeline",
    figures=("pipeline_vs_in_memory_throughput", "streaming_vs_in_memory_throughput"),
    measure=measure,
)
