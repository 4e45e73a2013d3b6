"""The app's input pipeline against the same model fed from NumPy arrays, and against
the naive image-folder pipeline that decodes every file every epoch.

    python -m bench.workloads.pipeline --epochs E --rounds R
"""

from __future__ import annotations

import sys

import keras
import tensorflow as tf

from app.train import data
from bench.pairing import alternating
from bench.workloads import common


def fit_in_memory(config, dataset, epochs: int) -> list[float]:
    """The same model fed straight from NumPy arrays (Keras slices and shuffles them)."""
    model, timer = common.fresh_model(config, dataset), common.EpochTimer()
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


def fit_streaming(config, dataset, args) -> list[float]:
    """For contrast: image_dataset_from_directory, decoding every image every epoch."""
    stream = keras.utils.image_dataset_from_directory(
        str(args.data_dir / config.data.train),
        image_size=tuple(config.data.image_size),
        color_mode=config.data.color_mode,
        batch_size=config.training.batch_size,
        seed=config.seed,
        verbose=False,
    ).prefetch(tf.data.AUTOTUNE)
    model, timer = common.fresh_model(config, dataset), common.EpochTimer()
    model.fit(stream, epochs=args.epochs, callbacks=[timer], verbose=0)
    return timer.seconds


def main(argv: list[str] | None = None) -> int:
    arguments = common.parser(__doc__.splitlines()[0])
    arguments.add_argument("--rounds", type=int, default=1)
    args = arguments.parse_args(argv)
    config, dataset = common.load(args)
    rounds = alternating(
        args.rounds,
        {
            "pipeline": lambda: common.fit_pipeline(config, dataset, args.epochs),
            "in_memory": lambda: fit_in_memory(config, dataset, args.epochs),
            "streaming": lambda: fit_streaming(config, dataset, args),
        },
    )
    result = {"train_images": len(dataset.train), "rounds": rounds, "threads": common.threads()}
    return common.emit(result, args)


if __name__ == "__main__":
    sys.exit(main())
