"""Image folders -> decoded in-memory arrays -> per-epoch tf.data pipelines.

Files are listed in Python (sorted, so stable), decoded once in parallel by tf.data and
kept in memory (the cache); each epoch's order is a permutation drawn from a NumPy RNG
seeded by (seed, epoch), so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tensorflow as tf

from app.config import DataConfig
from app.train.errors import UserError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
DECODE_BATCH = 256


@dataclass
class FileList:
    paths: list[Path]
    labels: np.ndarray  # int32 class index per path


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

    def counts(self) -> dict[str, int]:
        splits = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: len(split) for name, split in splits.items() if split is not None}


def resolve_folder(data_dir: Path, relative: str, key: str) -> Path:
    root = data_dir.resolve()
    folder = (data_dir / relative).resolve()
    if folder != root and root not in folder.parents:
        raise UserError(f"data.{key} '{relative}' resolves outside the data directory {data_dir}")
    if not folder.exists():
        raise UserError(f"data.{key}: folder not found: {data_dir / relative}")
    if not folder.is_dir():
        raise UserError(f"data.{key}: not a folder: {data_dir / relative}")
    return folder


def class_folders(folder: Path, key: str) -> list[str]:
    names = sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not names:
        raise UserError(f"data.{key}: {folder} has no class sub-folders (expected <class>/<image>.png)")
    return names


def list_images(data_dir: Path, folder: Path, class_names: list[str], key: str) -> FileList:
    root = data_dir.resolve()
    paths: list[Path] = []
    labels: list[int] = []
    for index, name in enumerate(class_names):
        class_dir = folder / name
        if not class_dir.is_dir():
            continue
        for path in sorted(class_dir.rglob("*")):
            if path.name.startswith(".") or path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            if root not in path.resolve().parents:
                raise UserError(f"data.{key}: {path} is a link that resolves outside the data directory")
            paths.append(path)
            labels.append(index)
    if not paths:
        raise UserError(f"data.{key}: no PNG/JPEG images under {folder}")
    return FileList(paths, np.asarray(labels, dtype=np.int32))


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
        tf.data.Dataset.from_tensor_slices([str(p) for p in files.paths])
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
            decode(tf.constant(str(path)))
        except tf.errors.OpError:
            return str(path)
    return "one of the images (could not tell which)"


def stratified_split(files: FileList, fraction: float, seed: int) -> tuple[FileList, FileList]:
    """Hold out `fraction` of every class (at least one image each), fixed by the seed."""
    rng = np.random.default_rng([seed, 0x5EED])
    keep, hold = [], []
    for label in np.unique(files.labels):
        members = np.flatnonzero(files.labels == label)
        members = members[rng.permutation(len(members))]
        count = max(1, round(len(members) * fraction)) if len(members) > 1 else 0
        hold.extend(members[:count])
        keep.extend(members[count:])
    keep, hold = sorted(keep), sorted(hold)
    pick = lambda idx: FileList([files.paths[i] for i in idx], files.labels[idx])  # noqa: E731
    return pick(np.asarray(keep, dtype=np.int64)), pick(np.asarray(hold, dtype=np.int64))


def load_dataset(data_dir: Path, config: DataConfig, seed: int) -> Dataset:
    if not data_dir.is_dir():
        raise UserError(f"data directory not found: {data_dir} (run `python -m app data {data_dir}`)")
    train_dir = resolve_folder(data_dir, config.train, "train")
    class_names = class_folders(train_dir, "train")
    if len(class_names) < 2:
        raise UserError(f"data.train: {train_dir} has a single class '{class_names[0]}'; need at least 2")
    train_files = list_images(data_dir, train_dir, class_names, "train")
    present = sorted({class_names[i] for i in np.unique(train_files.labels)})
    if len(present) < 2:
        raise UserError(f"data.train: only class '{present[0]}' under {train_dir} has images; need at least 2")
    folders = {"train": train_dir}

    def other_split(key: str) -> FileList:
        folder = resolve_folder(data_dir, getattr(config, key), key)
        unknown = sorted(set(class_folders(folder, key)) - set(class_names))
        if unknown:
            raise UserError(f"data.{key}: classes {unknown} in {folder} are not in data.train")
        folders[key] = folder
        return list_images(data_dir, folder, class_names, key)

    validation_files = None
    if config.validation is not None:
        validation_files = other_split("validation")
    elif config.validation_split > 0:
        train_files, validation_files = stratified_split(train_files, config.validation_split, seed)
        if not validation_files.paths:
            validation_files = None
    test_files = other_split("test") if config.test is not None else None

    return Dataset(
        class_names=class_names,
        train=decode_files(train_files, config),
        validation=decode_files(validation_files, config) if validation_files else None,
        test=decode_files(test_files, config) if test_files else None,
        folders=folders,
    )


def fingerprint(data_dir: Path, folders: dict[str, Path]) -> str:
    """sha256 over every file's path (relative to the data dir) and bytes, in sorted order."""
    root = data_dir.resolve()
    digest = hashlib.sha256()
    files = sorted({p for folder in folders.values() for p in folder.rglob("*") if p.is_file()})
    for path in files:
        relative = path.relative_to(root).as_posix().encode("utf-8")
        content = path.read_bytes()
        digest.update(len(relative).to_bytes(8, "big") + relative)
        digest.update(len(content).to_bytes(8, "big") + content)
    return digest.hexdigest()


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """The training order of one epoch: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(size).astype(np.int32)


def training_pipeline(split: Split, batch_size: int, seed: int, first_epoch: int, epochs: int) -> tf.data.Dataset:
    """All remaining epochs back to back; fit() consumes steps_per_epoch batches per epoch."""
    orders = np.stack([epoch_order(seed, e, len(split)) for e in range(first_epoch, epochs)])
    images = tf.constant(split.images)
    labels = tf.constant(split.labels)
    return (
        tf.data.Dataset.from_tensor_slices(orders)
        .flat_map(lambda order: tf.data.Dataset.from_tensor_slices(order).batch(batch_size))
        .map(lambda idx: (tf.gather(images, idx), tf.gather(labels, idx)), num_parallel_calls=tf.data.AUTOTUNE)
        .prefetch(tf.data.AUTOTUNE)
    )


def steps_per_epoch(split: Split, batch_size: int) -> int:
    return -(-len(split) // batch_size)


def eval_pipeline(split: Split, batch_size: int) -> tf.data.Dataset:
    return (
        tf.data.Dataset.from_tensor_slices((split.images, split.labels)).batch(batch_size).prefetch(tf.data.AUTOTUNE)
    )
