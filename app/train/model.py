"""A small, configurable Functional CNN; rescaling (and optional augmentation) inside the model."""

from __future__ import annotations

import hashlib

import keras

from app.config import ModelConfig, TrainingConfig


def build_model(
    config: ModelConfig, input_shape: tuple[int, int, int], num_classes: int, precision: str = "float32"
) -> keras.Model:
    # Layers take the global policy when built; compile() then adds loss scaling for float16.
    keras.mixed_precision.set_dtype_policy(precision)
    inputs = keras.Input(shape=input_shape, name="image")
    x = augment(inputs) if config.augmentation else inputs
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(x)
    height, width = input_shape[0], input_shape[1]
    for block, filters in enumerate(config.conv_filters):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu", name=f"conv{block}")(x)
        if min(height, width) >= 4:  # pool while the feature map stays at least 2x2
            x = keras.layers.MaxPooling2D(2, name=f"pool{block}")(x)
            height, width = height // 2, width // 2
    x = keras.layers.Flatten(name="flatten")(x)
    if config.dropout_rate > 0:
        x = keras.layers.Dropout(config.dropout_rate, name="dropout_features")(x)
    x = keras.layers.Dense(config.dense_units, activation="relu", name="dense")(x)
    if config.dropout_rate > 0:
        x = keras.layers.Dropout(config.dropout_rate, name="dropout_dense")(x)
    # float32 softmax and loss whatever the policy: float16 would round small probabilities to 0.
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name="trainbox_cnn")


def augment(x):
    # Small shifts and rotations only: flips would turn digits and letters into other classes.
    x = keras.layers.RandomTranslation(0.1, 0.1, fill_mode="constant", name="augment_translate")(x)
    return keras.layers.RandomRotation(0.05, fill_mode="constant", name="augment_rotate")(x)


def make_optimizer(config: TrainingConfig, learning_rate: float | None = None) -> keras.optimizers.Optimizer:
    rate = config.learning_rate if learning_rate is None else learning_rate
    if config.optimizer == "adam":
        return keras.optimizers.Adam(rate)
    if config.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(rate)
    return keras.optimizers.SGD(rate, momentum=0.9)


def compile_model(
    model: keras.Model,
    config: TrainingConfig,
    learning_rate: float | None = None,
    jit_compile: bool | str | None = None,
) -> None:
    """`jit_compile` overrides the config's (a portable run never uses XLA)."""
    model.compile(
        optimizer=make_optimizer(config, learning_rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
        jit_compile=config.jit_compile if jit_compile is None else jit_compile,
    )


def weights_sha256(model: keras.Model) -> str:
    """Digest of the weight values in model.weights order: path, dtype, shape, raw bytes."""
    digest = hashlib.sha256()
    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable)
        header = f"{variable.path}|{value.dtype.str}|{value.shape}\n".encode()
        digest.update(header)
        digest.update(value.tobytes(order="C"))
    return digest.hexdigest()


def rng_variables(model: keras.Model) -> list:
    """Variables that are state but not weights: the seed generators of dropout/augmentation.

    keras.models.load_model does not restore these, so checkpoints carry them separately.
    """
    weight_ids = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weight_ids]
