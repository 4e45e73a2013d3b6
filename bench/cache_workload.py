"""TensorFlow/Pillow side of the cache figures, run inside the image (or natively).

    python /bench/cache_workload.py throughput --data-dir D --epochs E --reps R [--set K=V ...]
    python /bench/cache_workload.py decode --data-dir D [--set K=V ...]

Both print one JSON object on the last line of stdout. The data is listed and decoded
exactly as `python -m app train` does it (app.train.files, app.train.data).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np

from app.config import load_config
from app.train import cache, cache_build, data, files


def plan_and_config(data_dir: Path, overrides: list[str]):
    config = load_config(None, overrides)
    return config, files.plan_dataset(data_dir, config.data, config.seed)


# --- training throughput: streaming from the cache vs the in-memory pipeline -------------


def in_memory_pipeline(images, labels, batch_size: int, seed: int, epochs: int):
    """The pipeline before the cache (trainbox <= issue 14): every image in one tf.constant."""
    import tensorflow as tf

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


def epoch_seconds(config, dataset, pipeline, epochs: int) -> list[float]:
    import keras

    from app.train.model import build_model, compile_model

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            seconds.append(time.perf_counter() - self.started)

    seconds: list[float] = []
    keras.utils.set_random_seed(config.seed)
    model = build_model(config.model, dataset.image_shape, len(dataset.class_names))
    compile_model(model, config.training)
    steps = data.batches_per_epoch(dataset.train, config.training.batch_size)
    model.fit(pipeline, epochs=epochs, steps_per_epoch=steps, callbacks=[Timer()], shuffle=False, verbose=0)
    return seconds


def command_throughput(args) -> dict:
    config, plan = plan_and_config(Path(args.data_dir), args.set)
    dataset = data.load_dataset(plan, config.data, Path(tempfile.mkdtemp(prefix="cache-", dir=args.work_dir)))
    images, labels = data.sample_batch(dataset.train, len(dataset.train))
    batch, seed = config.training.batch_size, config.seed
    rounds = []
    for rep in range(args.reps):
        sides = {
            "cached": lambda: data.training_pipeline(dataset.train, batch, seed, 0, args.epochs),
            "in_memory": lambda: in_memory_pipeline(images, labels, batch, seed, args.epochs),
        }
        order = list(sides) if rep % 2 == 0 else list(sides)[::-1]
        rounds.append({side: epoch_seconds(config, dataset, sides[side](), args.epochs) for side in order})
    return {"train_images": len(dataset.train), "image_shape": list(dataset.image_shape), "rounds": rounds}


# --- first-pass decoding: the cache build vs a plain Pillow loop -------------------------


def plain_pillow_loop(paths: list[Path], size: tuple[int, int]) -> None:
    """What a first script does: open, convert to RGB, resize, to NumPy; one file after another."""
    from PIL import Image

    for path in paths:
        with Image.open(path) as image:
            np.asarray(image.convert("RGB").resize(size, Image.Resampling.BILINEAR))


def command_decode(args) -> dict:
    config, plan = plan_and_config(Path(args.data_dir), args.set)
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
    plain_pillow_loop(paths[:20], (pixels.width, pixels.height))  # warm the page cache for both
    started = time.perf_counter()
    plain_pillow_loop(paths, (pixels.width, pixels.height))
    plain_s = time.perf_counter() - started
    started = time.perf_counter()
    cache_dir = Path(tempfile.mkdtemp(prefix="decode-", dir=args.work_dir))
    cache_build.build(source, pixels, cache_dir, skip_unreadable=False)
    cache_s = time.perf_counter() - started
    return {
        "images": len(paths),
        "plain_images_per_s": len(paths) / plain_s,
        "cache_images_per_s": len(paths) / cache_s,
        "processes": cache_build.decoding_processes(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/cache_workload.py")
    commands = parser.add_subparsers(dest="command", required=True)
    throughput = commands.add_parser("throughput")
    throughput.add_argument("--epochs", type=int, default=4)
    throughput.add_argument("--reps", type=int, default=1)
    decode = commands.add_parser("decode")
    for sub in (throughput, decode):
        sub.add_argument("--data-dir", required=True)
        sub.add_argument("--work-dir", help="where the cache is written (default: a temporary folder)")
        sub.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    result = command_throughput(args) if args.command == "throughput" else command_decode(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
