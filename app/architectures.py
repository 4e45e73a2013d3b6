"""What `model.architecture` may name: small_cnn, a Keras Applications backbone, or models/<file>.py.

Pure (no TensorFlow): the host validates a config with it before any container starts.
Each backbone is listed with how its ImageNet weights expect pixels, so the model can
take raw 0..255 images and do the backbone's own preprocessing inside itself.
"""

from __future__ import annotations

import difflib
import re
from pathlib import Path, PurePosixPath

SMALL_CNN = "small_cnn"
MODELS_FOLDER = "models"

# How Keras' preprocess_input treats 0..255 pixels for each family:
#   included  the model rescales by itself (include_preprocessing / a Rescaling layer)
#   tf        x / 127.5 - 1
#   caffe     RGB -> BGR, minus the ImageNet channel means (no scaling)
#   torch     x / 255, then (x - ImageNet mean) / ImageNet std per channel
INCLUDED, TF, CAFFE, TORCH = "included", "tf", "caffe", "torch"

_FAMILIES: dict[str, tuple[str, ...]] = {
    INCLUDED: (
        "MobileNetV3Small",
        "MobileNetV3Large",
        "EfficientNetB0",
        "EfficientNetB1",
        "EfficientNetB2",
        "EfficientNetB3",
        "EfficientNetB4",
        "EfficientNetB5",
        "EfficientNetB6",
        "EfficientNetB7",
        "EfficientNetV2B0",
        "EfficientNetV2B1",
        "EfficientNetV2B2",
        "EfficientNetV2B3",
        "EfficientNetV2S",
        "EfficientNetV2M",
        "EfficientNetV2L",
        "ConvNeXtTiny",
        "ConvNeXtSmall",
        "ConvNeXtBase",
        "ConvNeXtLarge",
        "ConvNeXtXLarge",
    ),
    TF: (
        "MobileNet",
        "MobileNetV2",
        "ResNet50V2",
        "ResNet101V2",
        "ResNet152V2",
        "InceptionV3",
        "InceptionResNetV2",
        "Xception",
    ),
    CAFFE: ("ResNet50", "ResNet101", "ResNet152", "VGG16", "VGG19"),
    TORCH: ("DenseNet121", "DenseNet169", "DenseNet201"),
}
# NASNet is left out: with ImageNet weights it accepts only its one training size.

BACKBONES: dict[str, str] = {name: mode for mode, names in _FAMILIES.items() for name in names}

# The smallest image side Keras accepts for a backbone without its classifier top.
_MIN_SIDE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71}
DEFAULT_MIN_SIDE = 32

_MODEL_FILE = re.compile(rf"{MODELS_FOLDER}/[A-Za-z_][A-Za-z0-9_]*\.py")
WEIGHT_SUFFIXES = (".h5", ".hdf5")
NO_WEIGHTS, IMAGENET = "none", "imagenet"


def is_backbone(architecture: str) -> bool:
    return architecture in BACKBONES


def is_model_file(architecture: str) -> bool:
    return bool(_MODEL_FILE.fullmatch(architecture))


def min_side(architecture: str) -> int:
    return _MIN_SIDE.get(architecture, DEFAULT_MIN_SIDE)


def check_architecture(architecture: str) -> str:
    """The name as given when it is one of the three kinds; ValueError (one line) otherwise."""
    if architecture == SMALL_CNN or is_backbone(architecture) or is_model_file(architecture):
        return architecture
    if architecture.endswith(".py"):
        raise ValueError(
            f"a model file must be {MODELS_FOLDER}/<name>.py, a Python file directly in the "
            f"repository's {MODELS_FOLDER}/ folder (its name: letters, digits, '_')"
        )
    close = difflib.get_close_matches(architecture, [SMALL_CNN, *BACKBONES], n=1, cutoff=0.6)
    close += [name for name in BACKBONES if name.lower() == architecture.lower()]
    hint = f"; did you mean {close[-1]}?" if close else ""
    raise ValueError(
        f"must be {SMALL_CNN}, a Keras Applications name as Keras spells it (MobileNetV3Small, "
        f"EfficientNetB0, ResNet50, ...: see the README) or {MODELS_FOLDER}/<name>.py{hint}"
    )


def check_weights(weights: str) -> str:
    """none, imagenet, or a .h5 file relative to the data directory; ValueError otherwise."""
    if weights in (NO_WEIGHTS, IMAGENET):
        return weights
    if not weights.lower().endswith(WEIGHT_SUFFIXES):
        raise ValueError(
            f"must be {NO_WEIGHTS}, {IMAGENET} or a Keras weights file (.h5, .weights.h5) "
            "relative to the data directory"
        )
    return weights


def model_file_path(architecture: str, repo_root: Path) -> Path:
    """Where models/<name>.py lives: in the work tree on the host, baked into the image inside it."""
    return repo_root.joinpath(*PurePosixPath(architecture).parts)


def missing_model_file(architecture: str, repo_root: Path) -> str | None:
    """One line when a models/ file named by the config is not there; None when it is."""
    if not is_model_file(architecture):
        return None
    path = model_file_path(architecture, repo_root)
    if path.is_file():
        return None
    return (
        f"model.architecture: {architecture} not found ({path}): put a file defining "
        f"build_model(input_shape, num_classes, config) there (see {MODELS_FOLDER}/template.py)"
    )


def missing_weights_file(weights: str, data_dir: Path) -> str | None:
    """One line when model.weights names a file that is not in the data directory; None otherwise."""
    if weights in (NO_WEIGHTS, IMAGENET):
        return None
    path = (data_dir / weights).resolve()
    if not path.is_relative_to(data_dir.resolve()):
        return f"model.weights: '{weights}' escapes the data directory {data_dir}"
    if not path.is_file():
        return f"model.weights: weights file not found: {path} (the path is relative to the data directory)"
    return None
