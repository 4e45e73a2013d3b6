"""`python -m app predict RUN_DIR PATH...`: a run's model on image files, decoded as training did.

Each file is decoded by the training's own decoder (app/train/decode.py) with the run's
`data` settings (size, colour mode, resize mode, EXIF orientation), a batch at a time,
so memory stays flat however many images there are.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from app import predictions
from app.config import ConfigError, load_config
from app.train.data import pixels_for
from app.train.decode import Unreadable, decode
from app.train.errors import UserError
from app.train.outputs import CLASS_NAMES_NAME, CONFIG_NAME, MODEL_NAME


def run_files(run_dir: Path) -> tuple:
    """The run's config, class names and model path; UserError when the run has no model."""
    model_path = run_dir / MODEL_NAME
    if not model_path.is_file():
        raise UserError(f"{run_dir} has no {MODEL_NAME}: only a completed run can predict")
    try:
        config = load_config(run_dir / CONFIG_NAME)
        class_names = json.loads((run_dir / CLASS_NAMES_NAME).read_text(encoding="utf-8"))
    except (ConfigError, OSError, ValueError) as error:
        raise UserError(f"{run_dir}: cannot read the run's config or class names ({error})") from None
    return config, class_names, model_path


def decode_batch(files: list[Path], pixels) -> np.ndarray:
    images = []
    for path in files:
        try:
            images.append(decode(path, pixels))
        except Unreadable as reason:
            raise UserError(f"not an image: {path} ({reason})") from None
    return np.stack(images)


def predict(run_dir: Path, paths: list[str], batch_size: int = 32) -> list[dict]:
    """One row per image: file (as listed), predicted class name, its probability."""
    config, class_names, model_path = run_files(run_dir)
    try:
        files = predictions.all_image_files(paths)
    except ValueError as error:
        raise UserError(str(error)) from None
    pixels = pixels_for(config.data)
    first = decode_batch(files[:batch_size], pixels)  # a bad file costs no TensorFlow start-up
    import keras  # TensorFlow loads here, after the cheap checks

    model = keras.models.load_model(model_path, compile=False)
    rows = []
    for start in range(0, len(files), batch_size):
        chunk = files[start : start + batch_size]
        images = first if start == 0 else decode_batch(chunk, pixels)
        output = model(keras.ops.convert_to_tensor(images.astype(np.float32)), training=False)
        probabilities = keras.ops.convert_to_numpy(output)
        for path, row in zip(chunk, probabilities, strict=True):
            best = int(row.argmax())
            rows.append({"file": str(path), "class": class_names[best], "probability": float(row[best])})
    return rows
