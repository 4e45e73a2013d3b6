"""TF-free data checks: list image folders, split, fingerprint.

Runs before TensorFlow is imported, so a user's data mistake costs a second and prints
one clean line. Whether each file really is an image is found out while decoding it
(app/train/cache_build.py), in parallel and only once per cache.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from app import settings
from app.config import DataConfig
from app.progress import progress
from app.train.errors import UserError

READ_CHUNK = 1 << 20


@dataclass
class FileList:
    paths: list[Path]
    labels: np.ndarray  # int32 class index per path

    def __len__(self) -> int:
        return len(self.paths)


@dataclass
class Plan:
    class_names: list[str]
    train: FileList
    validation: FileList | None
    test: FileList | None
    folders: dict[str, Path] = field(default_factory=dict)
    data_dir: Path = Path(".")

    def splits(self) -> dict[str, FileList]:
        named = {"train": self.train, "validation": self.validation, "test": self.test}
        return {name: files for name, files in named.items() if files is not None}

    def folder_of(self, split: str) -> Path:
        """The folder a split's files come from (a validation_split comes from data.train)."""
        return self.folders.get(split, self.folders["train"])


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
            if path.name.startswith(".") or not settings.is_image_name(path.name) or not path.is_file():
                continue
            if root not in path.resolve().parents:
                raise UserError(f"data.{key}: {path} is a link that resolves outside the data directory")
            paths.append(path)
            labels.append(index)
    if not paths:
        raise UserError(f"data.{key}: no images ({settings.IMAGE_KINDS}) under {folder}")
    return FileList(paths, np.asarray(labels, dtype=np.int32))


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


def fingerprint(data_dir: Path, folders: dict[str, Path]) -> tuple[str, dict[Path, str]]:
    """(sha256 over every file's path, relative to the data dir, and bytes, in sorted order;
    the sha256 of each file's bytes). One read per file serves both: the first is the
    manifest's `data.fingerprint`, the others key the decoded-image cache.
    """
    root = data_dir.resolve()
    digest = hashlib.sha256()
    files = sorted({p for folder in folders.values() for p in folder.rglob("*") if p.is_file()})
    each: dict[Path, str] = {}
    with progress(sum(p.stat().st_size for p in files), "fingerprinting the data", "B") as bar:
        for path in files:
            relative = os.fsencode(path.relative_to(root).as_posix())  # any bytes a file name holds
            digest.update(len(relative).to_bytes(8, "big") + relative)
            digest.update(path.stat().st_size.to_bytes(8, "big"))
            own = hashlib.sha256()
            with open(path, "rb") as handle:
                while chunk := handle.read(READ_CHUNK):
                    digest.update(chunk)
                    own.update(chunk)
                    bar.advance(len(chunk))
            each[path] = own.hexdigest()
    return digest.hexdigest(), each


def epoch_order(seed: int, epoch: int, size: int) -> np.ndarray:
    """The training order of one epoch: a pure function of (seed, epoch)."""
    return np.random.default_rng([seed, epoch]).permutation(size).astype(np.int32)


def plan_dataset(data_dir: Path, config: DataConfig, seed: int) -> Plan:
    if not data_dir.is_dir():
        raise UserError(f"data directory not found: {data_dir} (run `python -m app data {data_dir}`)")
    train_dir = resolve_folder(data_dir, config.train, "train")
    class_names = class_folders(train_dir, "train")
    if len(class_names) < 2:
        raise UserError(f"data.train: {train_dir} has a single class '{class_names[0]}'; need at least 2")
    train_files = list_images(data_dir, train_dir, class_names, "train")
    present = sorted({class_names[i] for i in np.unique(train_files.labels)})
    if len(present) < 2:
        raise UserError(
            f"data.train: only class '{present[0]}' under {train_dir} has images; need at least 2"
        )
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
    return Plan(class_names, train_files, validation_files, test_files, folders, data_dir)
