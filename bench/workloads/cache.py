"""The decoded-image cache inside the image: training throughput streamed from it against
the in-memory pipeline it replaced, and its first decoding pass against a plain Pillow loop.

    python -m bench.workloads.cache throughput --epochs E --rounds R
    python -m bench.workloads.cache decode
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image

from app.config import load_config
from app.train import cache, cache_build, data, files
from bench.pairing import alternating
from bench.workloads import common


def in_memory_pipeline(images, labels, batch_size: int, seed: int, epochs: int) -> tf.data.Dataset:
    """The pipeline before the cache (issue 14): every decoded image in one tf.constant."""
    orders = np.stack([files.epoch_order(seed, epoch, len(labels)) for epoch in range(epochs)])
    images, labels = tf.constant(images), tf.constant(labels)
    return (
        tf.data.Dataset.from_tensor_slices(orders)
        .flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
        .map(
            lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)), num_parallel_calls=tf.data.AUTOTUNE
        )
        .prefetch(tf.data.AUTOTUNE)
    )


def fit_seconds(config, dataset, pipeline, epochs: int) -> list[float]:
    model, timer = common.fresh_model(config, dataset), common.EpochTimer()
    steps = data.batches_per_epoch(dataset.train, config.training.batch_size)
    model.fit(pipeline, epochs=epochs, steps_per_epoch=steps, callbacks=[timer], shuffle=False, verbose=0)
    return timer.seconds


def throughput(args) -> dict:
    config, dataset = common.load(args)
    images, labels = data.sample_batch(dataset.train, len(dataset.train))
    batch, seed = config.training.batch_size, config.seed
    rounds = alternating(
        args.rounds,
        {
            "cached": lambda: fit_seconds(
                config,
                dataset,
                data.training_pipeline(dataset.train, batch, seed, 0, args.epochs),
                args.epochs,
            ),
            "in_memory": lambda: fit_seconds(
                config, dataset, in_memory_pipeline(images, labels, batch, seed, args.epochs), args.epochs
            ),
        },
    )
    return {"train_images": len(dataset.train), "rounds": rounds}


def plain_pillow_loop(paths: list[Path], size: tuple[int, int]) -> None:
    """What a first script does: open, convert to RGB, resize, to NumPy; one file after another."""
    for path in paths:
        with Image.open(path) as image:
            np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))


def decode(args) -> dict:
    config = load_config(args.config, args.set)
    plan = files.plan_dataset(args.data_dir, config.data, config.seed)
    pixels = data.pixels_for(config.data)
    root = plan.data_dir.resolve()
    paths = sorted(plan.train.paths + (plan.validation.paths if plan.validation else []))
    _, digests = files.fingerprint(plan.data_dir, plan.folders)
    source = cache.Source(
        folder="bench",
        paths=tuple(paths),
        relative=tuple(p.relative_to(root).as_posix() for p in paths),
        digests=tuple(digests[p] for p in paths),
    )
    size = (pixels.width, pixels.height)
    plain_pillow_loop(paths[:20], size)  # the page cache warm for both sides
    started = time.perf_counter()
    plain_pillow_loop(paths, size)
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    cache_build.build(source, pixels, Path(tempfile.mkdtemp(dir=args.output_dir)), skip_unreadable=False)
    cache_s = time.perf_counter() - started
    return {
        "images": len(paths),
        "plain_images_per_s": len(paths) / plain_s,
        "cache_images_per_s": len(paths) / cache_s,
        "processes": cache_build.decoding_processes(),
    }


def main(argv: list[str] | None = None) -> int:
    arguments = common.parser(__doc__)
    arguments.add_argument("command", choices=("throughput", "decode"))
    arguments.add_argument("--rounds", type=int, default=1)
    args = arguments.parse_args(argv)
    return common.emit(throughput(args) if args.command == "throughput" else decode(args), args)


if __name__ == "__main__":
    sys.exit(main())
