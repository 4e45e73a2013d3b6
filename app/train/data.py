"""Image folders -> the decoded-image cache -> tf.data pipelines that stream from it.

Files are listed in Python (sorted, so stable) and decoded once into the on-disk cache
(app/train/cache.py); a split is a list of rows of a cache entry. Every batch is gathered
from the entry's memory map, so memory does not grow with the dataset: the page cache
holds what fits. Each epoch's order is a permutation drawn from a NumPy RNG seeded by
(seed, epoch), so a resumed run sees exactly the batches it would have seen.

Loading the data imports no TensorFlow: a bad image costs seconds, not TensorFlow's
start-up. The pipeline functions import it when they are called.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app.config import DataConfig
from app.train import cache, cache_build
from app.train.decode import Pixels, unreadable_line
from app.train.errors import UserError
from app.train.files import FileList, Plan, epoch_order, fingerprint

PREFETCH_BATCHES = 4  # a fixed, small read-ahead: memory stays flat whatever the image size


@dataclass
class Split:
    images: np.ndarray  # the cache entry's rows: read-only memory map (rows, height, width, channels)
    rows: np.ndarray  # int64: row of `images` of each example
    labels: np.ndarray  # int32, (n,)

    def __len__(self) -> int:
        return len(self.labels)

    def take(self, positions) -> tuple[np.ndarray, np.ndarray]:
        """The examples at `positions` (in that order) as (uint8 images, int32 labels)."""
        positions = np.asarray(positions, dtype=np.int64)
        return self.images[self.rows[positions]], self.labels[positions]


@dataclass
class Dataset:
    class_names: list[str]
    train: Split
    validation: Split | None
    test: Split | None
    folders: dict[str, Path] = field(default_factory=dict)
    fingerprint: str = ""
    skipped: list[dict] = field(default_factory=list)  # {"file", "reason"} of unreadable files
    cache: dict = field(default_factory=dict)  # what the manifest says about the cache

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(int(side) for side in self.train.images.shape[1:])

    def counts(self) -> dict[str, int]:
        splits = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: len(split) for name, split in splits.items() if split is not None}

    def manifest_record(self) -> dict:
        record = {
            "fingerprint": self.fingerprint,
            "class_names": self.class_names,
            "counts": self.counts(),
            "image_shape": list(self.image_shape),
            "cache": self.cache,
        }
        if self.skipped:
            record["skipped"] = self.skipped
        return record


def pixels_for(config: DataConfig) -> Pixels:
    height, width = config.image_size
    return Pixels(height, width, 1 if config.color_mode == "grayscale" else 3, config.resize)


def load_dataset(plan: Plan, config: DataConfig, cache_dir: Path) -> Dataset:
    """The planned files, decoded into (or found in) the cache, as splits of cache rows."""
    pixels = pixels_for(config)
    digest, digests = fingerprint(plan.data_dir, plan.folders)
    root = plan.data_dir.resolve()
    splits = plan.splits()
    by_folder: dict[Path, list[Path]] = {}
    for name, files in splits.items():
        by_folder.setdefault(plan.folder_of(name), []).extend(files.paths)
    entries, record = {}, {"dir": str(cache_dir), "entries": []}
    for folder, paths in by_folder.items():
        paths = sorted(set(paths))
        source = cache.Source(
            folder=folder.relative_to(root).as_posix(),
            paths=tuple(paths),
            relative=tuple(p.relative_to(root).as_posix() for p in paths),
            digests=tuple(digests[p] for p in paths),
        )
        entry, reused = open_or_build(source, pixels, cache_dir, config.skip_unreadable)
        entries[folder] = (source, entry)
        record["entries"].append(
            {"folder": source.folder, "name": entry.path.name, "reused": reused, "bytes": entry.nbytes}
        )
    skipped: dict[str, dict] = {}
    built = {
        name: _split(files, *entries[plan.folder_of(name)], config, skipped) for name, files in splits.items()
    }
    for item in skipped.values():
        print(f"skipped unreadable: {item['file']} ({item['reason']})", flush=True)
    return Dataset(
        class_names=plan.class_names,
        train=built["train"],
        validation=built.get("validation"),
        test=built.get("test"),
        folders=plan.folders,
        fingerprint=digest,
        skipped=list(skipped.values()),
        cache=record,
    )


def open_or_build(
    source: cache.Source, pixels: Pixels, cache_dir: Path, skip_unreadable: bool
) -> tuple[cache.Entry, bool]:
    """(the checked entry, whether it was there already)."""
    key = source.key(pixels)
    path = cache_dir / source.entry_name(pixels, key)
    if path.is_dir():
        try:
            entry = cache.open_entry(path, key, pixels, len(source))
        except cache.Damaged as damage:
            try:
                cache.remove_damaged(path, str(damage))
            except OSError as error:
                raise UserError(
                    f"cache entry {path} is damaged ({damage}) and cannot be removed "
                    f"({error.strerror}): delete it, or choose another --cache-dir"
                ) from None
        else:
            print(
                f"cache: reusing {source.folder} ({len(source):,} images, {_gb(entry.nbytes)}) from {path}",
                flush=True,
            )
            return entry, True
    path = cache_build.build(source, pixels, cache_dir, skip_unreadable)
    return cache.open_entry(path, key, pixels, len(source)), False


def _split(
    files: FileList, source: cache.Source, entry: cache.Entry, config: DataConfig, skipped: dict[str, dict]
) -> Split:
    row_of = {path: row for row, path in enumerate(source.paths)}
    rows = np.fromiter((row_of[path] for path in files.paths), dtype=np.int64, count=len(files))
    bad = [row for row in rows if int(row) in entry.unreadable]
    if bad and not config.skip_unreadable:
        row = int(bad[0])
        raise UserError(unreadable_line(source.paths[row], entry.unreadable[row]))
    for row in bad:
        skipped[source.relative[row]] = {"file": source.relative[row], "reason": entry.unreadable[int(row)]}
    keep = np.array([int(row) not in entry.unreadable for row in rows], dtype=bool)
    if not keep.any():
        raise UserError(f"data: every image of {source.folder} in this split is unreadable")
    return Split(entry.images, rows[keep], files.labels[keep])


def _gb(count: int) -> str:
    return f"{count / 1e9:.2f} GB" if count >= 1e8 else f"{count / 1e6:.1f} MB"


# --- tf.data pipelines ------------------------------------------------------------------


def lookup(split: Split):
    """A tf.data map function: a vector of positions in the split -> (images, labels)."""
    import tensorflow as tf

    shape = split.images.shape[1:]

    def read(positions):
        images, labels = tf.numpy_function(split.take, [positions], (tf.uint8, tf.int32), stateful=False)
        images.set_shape((None, *shape))
        labels.set_shape((None,))
        return images, labels

    return read


def with_class_weights(dataset, class_weights: np.ndarray | None):
    """(images, labels) batches -> (images, labels, per-example weights of their class)."""
    if class_weights is None:
        return dataset
    import tensorflow as tf

    table = tf.constant(class_weights, dtype=tf.float32)
    return dataset.map(lambda images, labels: (images, labels, tf.gather(table, labels)))


def training_pipeline(
    split: Split,
    batch_size: int,
    seed: int,
    first_epoch: int,
    epochs: int,
    class_weights: np.ndarray | None = None,
):
    """All remaining epochs back to back; fit() consumes batches_per_epoch batches per epoch."""
    import tensorflow as tf

    size = len(split)

    def order(epoch):
        return epoch_order(seed, int(epoch), size)

    def epoch_batches(epoch):
        positions = tf.numpy_function(order, [epoch], tf.int32, stateful=False)
        positions.set_shape((size,))
        return tf.data.Dataset.from_tensor_slices(positions).batch(batch_size)

    batches = (
        tf.data.Dataset.range(first_epoch, epochs)
        .flat_map(epoch_batches)
        .map(lookup(split), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    )
    return with_class_weights(batches, class_weights).prefetch(PREFETCH_BATCHES)


def batches_per_epoch(split: Split, batch_size: int) -> int:
    return -(-len(split) // batch_size)


def eval_pipeline(split: Split, batch_size: int):
    """The split in its own order, in batches."""
    import tensorflow as tf

    size = len(split)
    return (
        tf.data.Dataset.range(0, size, batch_size)
        .map(lambda start: tf.range(start, tf.minimum(start + batch_size, size)))
        .map(lookup(split), num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        .prefetch(PREFETCH_BATCHES)
    )


def sample_batch(split: Split, count: int) -> tuple[np.ndarray, np.ndarray]:
    """The first `count` examples as NumPy arrays (to build a model, or to look at)."""
    return split.take(np.arange(min(count, len(split))))
