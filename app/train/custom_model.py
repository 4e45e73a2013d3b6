"""`model.architecture: models/<name>.py`: the user's own network, checked where it can go wrong.

The file defines `build_model(input_shape, num_classes, config)` and returns a Keras model
that takes (height, width, channels) images of 0..255 and gives `num_classes`
probabilities. Everything that can go wrong with it (no such file, no such function, an
exception, a wrong output) is one line naming the file.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import keras
import numpy as np

from app import architectures
from app.config import Config
from app.train.errors import UserError

CONTRACT = "build_model(input_shape, num_classes, config)"


def _squash(error: BaseException) -> str:
    return " ".join(f"{type(error).__name__}: {error}".split())[:300]


def load_module(architecture: str, repo_root: Path) -> ModuleType:
    """Import models/<name>.py (its custom layers register themselves with Keras on import)."""
    missing = architectures.missing_model_file(architecture, repo_root)
    if missing:
        raise UserError(missing)
    path = architectures.model_file_path(architecture, repo_root)
    name = f"trainbox_models.{path.stem}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as error:  # the user's code: whatever it raises is one line
        del sys.modules[name]
        raise UserError(f"model.architecture {architecture}: importing it failed: {_squash(error)}") from None
    if not callable(getattr(module, "build_model", None)):
        del sys.modules[name]
        raise UserError(f"model.architecture {architecture} does not define {CONTRACT}")
    return module


def build_custom_model(
    config: Config, input_shape: tuple[int, int, int], num_classes: int, repo_root: Path
) -> keras.Model:
    architecture = config.model.architecture
    module = load_module(architecture, repo_root)
    keras.mixed_precision.set_dtype_policy(config.training.precision)
    try:
        model = module.build_model(tuple(input_shape), num_classes, config)
    except Exception as error:
        raise UserError(f"model.architecture {architecture}: build_model raised {_squash(error)}") from None
    check_output(model, architecture, input_shape, num_classes)
    return model


def check_output(model, architecture: str, input_shape: tuple[int, int, int], num_classes: int) -> None:
    """One image of zeros through the model: a Keras model, num_classes probabilities out."""
    where = f"model.architecture {architecture}: build_model"
    if not isinstance(model, keras.Model):
        raise UserError(f"{where} returned {type(model).__name__}, not a keras.Model")
    try:
        output = keras.ops.convert_to_numpy(model(np.zeros((1, *input_shape), dtype="float32")))
    except Exception as error:
        raise UserError(f"{where}: the model fails on a {input_shape} image: {_squash(error)}") from None
    if output.shape != (1, num_classes):
        raise UserError(
            f"{where}: the model's output has shape {tuple(output.shape[1:])}, "
            f"expected ({num_classes},): one probability per class"
        )
    sums = output.astype("float64").sum(axis=-1)
    if (output < 0).any() or not np.allclose(sums, 1.0, atol=1e-2):
        raise UserError(f"{where}: the outputs are not probabilities: end the model with a softmax")
