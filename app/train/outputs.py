"""What a run leaves beside its manifest, each file written atomically (tmp + fsync + rename).

config.yaml, class_names.json, history.json and history.csv, learning_curves.png, model.keras.
"""

from __future__ import annotations

import csv
import io
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from app import manifest
from app.config import Config

if TYPE_CHECKING:  # importing Keras loads TensorFlow: the preflight reads the names below first
    import keras

CONFIG_NAME = "config.yaml"
CLASS_NAMES_NAME = "class_names.json"
MODEL_NAME = "model.keras"
LEARNING_CURVES_NAME = "learning_curves.png"


def json_safe(value):
    """Metrics as JSON allows them: NaN/inf become None, NumPy scalars Python numbers."""
    if isinstance(value, dict):
        return {key: json_safe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [json_safe(item) for item in value]
    if isinstance(value, (np.floating, float)):
        value = float(value)
        return value if math.isfinite(value) else None
    if isinstance(value, np.integer):
        return int(value)
    return value


def write_config(run_dir: Path, config: Config) -> None:
    manifest.write_bytes_atomic(run_dir / CONFIG_NAME, config.to_yaml().encode("utf-8"))


def write_class_names(run_dir: Path, class_names: list[str]) -> None:
    manifest.write_json_atomic(run_dir / CLASS_NAMES_NAME, class_names)


def write_history(run_dir: Path, history: list[dict]) -> None:
    manifest.write_json_atomic(run_dir / "history.json", history)
    columns = list(dict.fromkeys(key for row in history for key in row))
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns or ["epoch"], lineterminator="\n")
    writer.writeheader()
    writer.writerows(history)
    manifest.write_bytes_atomic(run_dir / "history.csv", buffer.getvalue().encode("utf-8"))


def save_learning_curves(run_dir: Path, history: list[dict], title: str) -> None:
    """learning_curves.png: loss and accuracy per epoch, titled with the run (plots.run_title)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from app.train.plots import learning_curves_figure, png_bytes

    figure = learning_curves_figure(history)
    try:
        png = png_bytes(figure, title)
    finally:
        plt.close(figure)
    manifest.write_bytes_atomic(run_dir / LEARNING_CURVES_NAME, png)


def save_model(model: keras.Model, run_dir: Path) -> None:
    """model.keras, complete or absent: Keras writes a temporary file, renamed once synced."""
    path = run_dir / MODEL_NAME
    tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.keras")
    try:
        model.save(tmp)
        with open(tmp, "rb") as handle:
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    manifest.fsync_dir(path.parent)
