"""TensorFlow workloads for the benchmarks, run inside the image (or natively).

    python /bench/workload.py pipeline --data-dir D --output-dir O --epochs E --reps R
    python /bench/workload.py fit --data-dir D --epochs E [--deterministic 0|1]

Both reuse app.train (files, data, model) exactly as a training run does, and print
one JSON object on the last line of stdout. Per-epoch times come from a callback;
the first epoch (tracing) is reported but never used for throughput.
"""

from __future__ import annotations

import argparse
import atexit
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from app.config import load_config
from app.train import checkpoint, data, files
from app.train.determinism import set_determinism
from app.train.model import build_model, compile_model


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def load(config_file: str, data_dir: Path, overrides: list[str]):
    """The config and decoded data exactly as `python -m app train` gets them."""
    config = load_config(config_file, overrides)
    plan = files.plan_dataset(data_dir, config.data, config.seed)
    cache_dir = Path(tempfile.mkdtemp(prefix="trainbox-bench-cache-"))
    atexit.register(shutil.rmtree, cache_dir, ignore_errors=True)
    return config, data.load_dataset(plan, config.data, cache_dir)


def fresh_model(config, dataset):
    model = build_model(
        config.model, dataset.image_shape, len(dataset.class_names), config.training.precision
    )
    compile_model(model, config.training)
    return model


def fit_pipeline(config, dataset, epochs: int) -> list[float]:
    """The app's path: image folders decoded into memory, then its per-epoch tf.data pipeline."""
    model, timer = fresh_model(config, dataset), EpochTimer()
    batch_size = config.training.batch_size
    model.fit(
        data.training_pipeline(dataset.train, batch_size, config.seed, 0, epochs),
        epochs=epochs,
        steps_per_epoch=data.batches_per_epoch(dataset.train, batch_size),
        callbacks=[timer],
        shuffle=False,
        verbose=0,
    )
    return timer.seconds


def fit_in_memory(config, dataset, epochs: int) -> list[float]:
    """The same model fed straight from NumPy arrays (Keras slices and shuffles them)."""
    model, timer = fresh_model(config, dataset), EpochTimer()
    images, labels = data.sample_batch(dataset.train, len(dataset.train))
    model.fit(
        images,
        labels,
        batch_size=config.training.batch_size,
        epochs=epochs,
        callbacks=[timer],
        shuffle=True,
        verbose=0,
    )
    return timer.seconds


def fit_streaming(config, dataset, data_dir: Path, epochs: int) -> list[float]:
    """For contrast: the naive image-folder pipeline that decodes every PNG every epoch."""
    channels = 1 if config.data.color_mode == "grayscale" else 3
    stream = keras.utils.image_dataset_from_directory(
        str(data_dir / config.data.train),
        image_size=tuple(config.data.image_size),
        color_mode=config.data.color_mode,
        batch_size=config.training.batch_size,
        seed=config.seed,
        verbose=False,
    ).prefetch(tf.data.AUTOTUNE)
    model = build_model(config.model, (*config.data.image_size, channels), len(dataset.class_names))
    compile_model(model, config.training)
    timer = EpochTimer()
    model.fit(stream, epochs=epochs, callbacks=[timer], verbose=0)
    return timer.seconds


def checkpoint_seconds(config, dataset, output_dir: Path, repeats: int) -> list[float]:
    """What EpochRecorder pays after every epoch to write a checkpoint (model + RNG state)."""
    model = fresh_model(config, dataset)
    model.fit(*data.sample_batch(dataset.train, 64), epochs=1, verbose=0)
    history = [{"epoch": 1}]
    timings = []
    with tempfile.TemporaryDirectory(dir=output_dir) as scratch:
        for epoch in range(1, repeats + 1):
            started = time.perf_counter()
            checkpoint.save(Path(scratch) / "checkpoints", model, epoch, history)
            timings.append(time.perf_counter() - started)
    return timings


def steady(seconds: list[float]) -> float:
    """Median epoch time after the first epoch."""
    return statistics.median(seconds[1:])


def command_pipeline(args) -> dict:
    config, dataset = load(args.config, Path(args.data_dir), args.set)
    set_determinism(config.seed, config.deterministic)
    rounds = []
    for _ in range(args.reps):
        pipeline = fit_pipeline(config, dataset, args.epochs)
        in_memory = fit_in_memory(config, dataset, args.epochs)
        streaming = fit_streaming(config, dataset, Path(args.data_dir), args.epochs)
        rounds.append({"pipeline": pipeline, "in_memory": in_memory, "streaming": streaming})
    return {
        "train_images": len(dataset.train),
        "rounds": rounds,
        "checkpoint_s": checkpoint_seconds(config, dataset, Path(args.output_dir), args.checkpoints),
        "threads": threads(),
    }


def command_fit(args) -> dict:
    if args.threads == "quota":
        from app.train import threads as thread_pools

        thread_pools.configure()
    overrides = [*args.set, f"deterministic={str(args.deterministic).lower()}"]
    config, dataset = load(args.config, Path(args.data_dir), overrides)
    set_determinism(config.seed, config.deterministic)
    seconds = fit_pipeline(config, dataset, args.epochs)
    return {
        "train_images": len(dataset.train),
        "seconds": seconds,
        "deterministic": config.deterministic,
        "threads": threads(),
    }


def threads() -> dict:
    try:
        from app.train.threads import cgroup_cpu_limit
    except ImportError:  # an image built before app/train/threads.py existed

        def cgroup_cpu_limit():
            return None

    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "cpu_count": os.cpu_count(),
        "cgroup_cpu_limit": cgroup_cpu_limit(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/workload.py")
    commands = parser.add_subparsers(dest="command", required=True)
    pipeline = commands.add_parser("pipeline")
    pipeline.add_argument("--output-dir", required=True)
    pipeline.add_argument("--reps", type=int, default=1)
    pipeline.add_argument("--checkpoints", type=int, default=5)
    fit = commands.add_parser("fit")
    fit.add_argument("--deterministic", type=lambda v: v in ("1", "true"), default=True)
    fit.add_argument(
        "--threads",
        choices=("host", "quota"),
        default="host",
        help="host: TensorFlow's own pool sizes; quota: app.train.threads sizes them from the cgroup",
    )
    for sub in (pipeline, fit):
        sub.add_argument("--config", required=True)
        sub.add_argument("--data-dir", required=True)
        sub.add_argument("--epochs", type=int, default=6)
        sub.add_argument("--set", action="append", default=[])
    args = parser.parse_args(argv)
    np.random.seed(0)
    result = command_pipeline(args) if args.command == "pipeline" else command_fit(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
