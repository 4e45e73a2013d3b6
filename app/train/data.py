"""Image folders -> decoded in-memory arrays -> per-epoch tf.data pipelines.

Files are listed in Python (sorted, so stable), decoded once in parallel by tf.data and
kept in memory (the cache); each epoch's order is a permutation drawn from a NumPy RNG
seeded by (seed, epoch), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from app.config import DataConfig
from app.train.errors import UserError
from app.train.files import FileList, Plan, epoch_order

DECODE_BATCH = 256


@dataclass
class Split:
    images: np.ndarray  # uint8, (n, height, width, channels)
    labels: np.ndarray  # int32, (n,)

    def __len__(self) -> int:
        return len(self.labels)


@dataclass
class Dataset:
    class_names: list[str]
    train: Split
    validation: Split | None
    test: Split | None
    folders: dict[str, Path] = field(default_factory=dict)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(height, width, channels) of every decoded image."""
        return tuple(self.train.images.shape[1:])

    def counts(self) -> dict[str, int]:
        splits = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: len(split) for name, split in splits.items() if split is not None}


def _decoder(image_size: list[int], channels: int):
    height, width = image_size

    def decode(path: tf.Tensor) -> tf.Tensor:
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, expand_animations=False)
        image = tf.image.resize(image, (height, width), antialias=True)
        return tf.cast(tf.clip_by_value(tf.round(image), 0.0, 255.0), tf.uint8)

    return decode


def decode_files(files: FileList, config: DataConfig) -> Split:
    channels = 1 if config.color_mode == "grayscale" else 3
    decode = _decoder(config.image_size, channels)
    pipeline = (
        tf.data.Dataset.from_tensor_slices([os.fsencode(p) for p in files.paths])  # any file name
        .map(decode, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .batch(DECODE_BATCH)
        .prefetch(tf.data.AUTOTUNE)
    )
    try:
        images = np.concatenate([batch.numpy() for batch in pipeline])
    except tf.errors.OpError:
        raise UserError(f"unreadable image: {find_unreadable(files.paths, decode)}") from None
    return Split(images, files.labels)


def find_unreadable(paths: list[Path], decode) -> str:
    for path in paths:
        try:
            decode(tf.constant(os.fsencode(path)))
        except tf.errors.OpError:
            return str(path)
    return "one of the images (could not tell which)"


def lookup(split: Split):
    """A tf function from a batch of example indices to (images, labels)."""
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)
    return lambda indices: (tf.gather(images, indices), tf.gather(labels, indices))


def training_pipeline(
    split: Split, batch_size: int, seed: int, first_epoch: int, epochs: int
) -> tf.data.Dataset:
    """All remaining epochs back to back; fit() takes batches_per_epoch batches from it per epoch."""
    orders = np.stack([epoch_order(seed, e, len(split)) for e in range(first_epoch, epochs)])
    return (
        tf.data.Dataset.from_tensor_slices(orders)
        .flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
        .map(lookup(split), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def batches_per_epoch(split: Split, batch_size: int) -> int:
    """Batches in one epoch of `split`, the last one possibly smaller."""
    return -(-len(split) // batch_size)


def sample_batch(split: Split, size: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `size` examples as (images, labels): enough to build a model's variables."""
    return split.images[:size], split.labels[:size]


def eval_pipeline(split: Split, batch_size: int) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices((split.images, split.labels))
        .batch(batch_size)
        .prefetch(tf.data.AUTOTUNE)
    )


def load_dataset(plan: Plan, config: DataConfig) -> Dataset:
    """Decode the planned (already verified) files into memory."""
    return Dataset(
        class_names=plan.class_names,
        train=decode_files(plan.train, config),
        validation=decode_files(plan.validation, config) if plan.validation else None,
        test=decode_files(plan.test, config) if plan.test else None,
        folders=plan.folders,
    )
