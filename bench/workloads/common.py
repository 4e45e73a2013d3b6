"""What every workload shares: its arguments, the config and data as a training run gets
them, the app's model and pipeline, per-epoch timing, and the JSON it prints."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras
import numpy as np
import tensorflow as tf

from app.config import load_config
from app.train import data, files, numerics
from app.train.determinism import set_determinism
from app.train.model import build_model, compile_model
from app.train.threads import cgroup_cpu_limit


class EpochTimer(keras.callbacks.Callback):
    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._started)


def parser(description: str) -> argparse.ArgumentParser:
    """The arguments every workload takes (the step passes them; see bench.runs)."""
    arguments = argparse.ArgumentParser(description=description)
    arguments.add_argument("--config", required=True)
    arguments.add_argument("--data-dir", required=True, type=Path)
    arguments.add_argument("--output-dir", required=True, type=Path)
    arguments.add_argument("--result", required=True, type=Path, help="where to write the JSON answer")
    arguments.add_argument("--epochs", type=int, default=6)
    arguments.add_argument("--set", action="append", default=[], help="config override KEY=VALUE")
    return arguments


def load(args, extra_overrides=()):
    """The config and decoded data exactly as `python -m app train` gets them, seeded."""
    config = load_config(args.config, [*args.set, *extra_overrides])
    plan = files.plan_dataset(args.data_dir, config.data, config.seed)
    set_determinism(config.seed, config.deterministic)
    np.random.seed(0)
    # The decoded-image cache goes with the container (--output-dir is removed by the suite).
    return config, data.load_dataset(plan, config.data, args.output_dir / ".cache")


def fresh_model(config, dataset):
    model = build_model(
        config.model, dataset.image_shape, len(dataset.class_names), config.training.precision
    )
    compile_model(model, config.training, jit_compile=numerics.jit_compile(config))
    return model


def fit_pipeline(config, dataset, epochs: int, model=None) -> list[float]:
    """The app's path: image folders decoded into memory, then its per-epoch tf.data
    pipeline; returns the seconds of each epoch."""
    model, timer = model or fresh_model(config, dataset), EpochTimer()
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


def threads() -> dict:
    """The thread pools TensorFlow ended up with, and the CPU quota it ran under."""
    return {
        "intra_op": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op": tf.config.threading.get_inter_op_parallelism_threads(),
        "cpu_count": os.cpu_count(),
        "cgroup_cpu_limit": cgroup_cpu_limit(),
    }


def emit(result: dict, args) -> int:
    """The workload's answer, one JSON object where --result says (bench.runs reads it)."""
    args.result.write_text(json.dumps(result) + "\n")
    return 0
