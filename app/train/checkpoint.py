"""Per-epoch checkpoints: model + optimizer (model.keras) and RNG state + epoch (state.json),
and with `training.restore_best` the best epoch's weights so far (best.npz).

Each checkpoint is a folder written under a temporary name, fsynced, then renamed into
place, so `checkpoints/epoch-NNNN/` is complete or absent. The last KEEP are kept.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from app.manifest import fsync_dir
from app.train.model import rng_variables

KEEP = 2
PREFIX = "epoch-"
MODEL_FILE = "model.keras"
STATE_FILE = "state.json"
BEST_FILE = "best.npz"


@dataclass
class Best:
    """The weights of the epoch with the lowest validation loss so far (model.get_weights order)."""

    epoch: int
    weights: list[np.ndarray]


@dataclass
class Restored:
    model: keras.Model
    epoch: int  # epochs completed
    history: list[dict]
    name: str
    best: Best | None = None


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as handle:
        os.fsync(handle.fileno())


def save(
    directory: Path, model: keras.Model, epoch: int, history: list[dict], best: Best | None = None
) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    name = f"{PREFIX}{epoch:04d}"
    final = directory / name
    staging = directory / f".tmp-{name}-{os.getpid()}"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        model.save(staging / MODEL_FILE)
        state = {
            "epoch": epoch,
            "rng_state": [keras.ops.convert_to_numpy(v).tolist() for v in rng_variables(model)],
            "history": history,
        }
        written = [staging / MODEL_FILE, staging / STATE_FILE]
        if best is not None:
            state["best_epoch"] = best.epoch
            np.savez(staging / BEST_FILE, *best.weights)
            written.append(staging / BEST_FILE)
        (staging / STATE_FILE).write_text(json.dumps(state), encoding="utf-8")
        for path in written:
            _fsync_file(path)
        fsync_dir(staging)
        if final.exists():  # a previous attempt at this epoch (resumed after a kill): replace it
            shutil.rmtree(final)
        os.rename(staging, final)
        fsync_dir(directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    for old in candidates(directory)[KEEP:]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def candidates(directory: Path) -> list[Path]:
    """Complete checkpoint folders, newest first."""
    if not directory.is_dir():
        return []
    found = [p for p in directory.iterdir() if p.is_dir() and p.name.startswith(PREFIX)]
    return sorted(found, key=lambda p: p.name, reverse=True)


def load(path: Path) -> Restored:
    state = json.loads((path / STATE_FILE).read_text(encoding="utf-8"))
    epoch = int(state["epoch"])
    if path.name != f"{PREFIX}{epoch:04d}":
        raise ValueError(f"state.json says epoch {epoch}")
    model = keras.models.load_model(path / MODEL_FILE, compile=True)
    variables = rng_variables(model)
    saved = state["rng_state"]
    if len(saved) != len(variables):
        raise ValueError(f"{len(saved)} RNG states saved, model has {len(variables)}")
    for variable, value in zip(variables, saved, strict=True):
        variable.assign(np.asarray(value, dtype=variable.dtype))
    if model.optimizer is None or (int(model.optimizer.iterations.numpy()) == 0 and epoch > 0):
        raise ValueError("optimizer state missing")
    history = state["history"]
    if len(history) != epoch:
        raise ValueError(f"history has {len(history)} epochs, expected {epoch}")
    return Restored(model=model, epoch=epoch, history=history, name=path.name, best=_load_best(path, state))


def _load_best(path: Path, state: dict) -> Best | None:
    if "best_epoch" not in state:
        return None
    with np.load(path / BEST_FILE, allow_pickle=False) as arrays:
        weights = [arrays[f"arr_{index}"] for index in range(len(arrays.files))]
    return Best(epoch=int(state["best_epoch"]), weights=weights)


def load_newest(directory: Path) -> tuple[Restored | None, list[dict]]:
    """The newest checkpoint that loads cleanly, and the ones skipped (torn/corrupt) with why."""
    skipped = []
    for path in candidates(directory):
        try:
            return load(path), skipped
        except Exception as error:
            reason = str(error).splitlines()[0] if str(error) else type(error).__name__
            skipped.append({"checkpoint": path.name, "error": f"{type(error).__name__}: {reason}"[:300]})
    return None, skipped
