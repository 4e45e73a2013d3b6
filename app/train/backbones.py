"""A Keras Applications backbone with a new classifier head, taking raw 0..255 images.

The backbone's own preprocessing (app/architectures.py says which) is built from plain
Keras layers inside the model, so model.keras needs no code of ours to load and predict.
Grey images are repeated to three channels inside the model: every backbone (and its
ImageNet weights) expects RGB.
"""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from app import architectures
from app.config import Config
from app.train.errors import UserError
from app.train.model import augment

# ImageNet statistics as Keras' imagenet_utils.preprocess_input uses them (RGB order).
_CAFFE_MEAN_BGR = (103.939, 116.779, 123.68)
_TORCH_MEAN = (0.485, 0.456, 0.406)
_TORCH_STD = (0.229, 0.224, 0.225)


def build_backbone_model(
    config: Config, input_shape: tuple[int, int, int], num_classes: int, weights: str | None
) -> keras.Model:
    """`weights`: None, "imagenet" or the path of a weights file for the backbone."""
    architecture = config.model.architecture
    keras.mixed_precision.set_dtype_policy(config.training.precision)
    inputs = keras.Input(shape=input_shape, name="image")
    x = augment(inputs) if config.model.augmentation else inputs
    if input_shape[-1] == 1:
        x = keras.layers.Concatenate(name="grey_to_rgb", dtype="float32")([x, x, x])
    x = preprocess(x, architectures.BACKBONES[architecture])
    backbone = make_backbone(architecture, (input_shape[0], input_shape[1], 3), weights)
    x = backbone(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    if config.model.dropout_rate > 0:
        x = keras.layers.Dropout(config.model.dropout_rate, name="dropout_features")(x)
    # float32 softmax and loss whatever the policy: float16 would round small probabilities to 0.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name=f"trainbox_{architecture.lower()}")


def make_backbone(architecture: str, input_shape: tuple[int, int, int], weights: str | None) -> keras.Model:
    constructor = getattr(keras.applications, architecture)
    try:
        return constructor(include_top=False, weights=weights, input_shape=input_shape)
    except (ValueError, OSError) as error:  # Keras' word on shapes and on a weights file that does not fit
        source = f"weights {Path(weights).name}" if weights not in (None, "imagenet") else architecture
        reason = " ".join(str(error).split())
        raise UserError(f"model.architecture {architecture}: {source}: {reason}") from None


def preprocess(x, mode: str):
    """Keras' preprocess_input for `mode`, as layers (float32: the means must not be rounded)."""
    if mode == architectures.TF:
        return keras.layers.Rescaling(1.0 / 127.5, offset=-1.0, name="preprocess", dtype="float32")(x)
    if mode == architectures.TORCH:
        x = keras.layers.Rescaling(1.0 / 255.0, name="preprocess_scale", dtype="float32")(x)
        variance = [std**2 for std in _TORCH_STD]
        return keras.layers.Normalization(
            mean=list(_TORCH_MEAN), variance=variance, name="preprocess", dtype="float32"
        )(x)
    if mode == architectures.CAFFE:
        # RGB -> BGR and minus the means as one fixed 1x1 map: exact (weights 0 and 1),
        # and plain Dense weights, so the saved model needs no custom layer.
        to_bgr = np.eye(3, dtype="float32")[::-1]
        return keras.layers.Dense(
            3,
            kernel_initializer=keras.initializers.Constant(to_bgr),
            bias_initializer=keras.initializers.Constant(-np.asarray(_CAFFE_MEAN_BGR, dtype="float32")),
            trainable=False,
            name="preprocess",
            dtype="float32",
        )(x)
    return x  # included: the backbone rescales by itself
