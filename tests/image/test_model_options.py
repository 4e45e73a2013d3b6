"""The README's model and training options take effect: the optimizer asked for, with its
learning rate; augmentation that moves pixels while training and never at inference."""

import numpy as np
import pytest

from app.config import load_config

pytestmark = pytest.mark.image


@pytest.mark.parametrize(("name", "keras_class"), [("adam", "Adam"), ("sgd", "SGD"), ("rmsprop", "RMSprop")])
def test_the_optimizer_and_learning_rate_asked_for(name, keras_class):
    from app.train.model import build_model, compile_model

    config = load_config(None, [f"training.optimizer={name}", "training.learning_rate=0.0125"])
    model = build_model(config.model, (8, 8, 1), 3)
    compile_model(model, config.training)
    assert type(model.optimizer).__name__ == keras_class
    assert float(model.optimizer.learning_rate) == pytest.approx(0.0125)


def test_augmentation_moves_pixels_while_training_only():
    import keras

    from app.train.model import build_model

    images = np.random.default_rng(0).integers(0, 256, (4, 16, 16, 3)).astype("float32")
    plain = build_model(load_config(None, []).model, (16, 16, 3), 3)
    augmented = build_model(load_config(None, ["model.augmentation=true"]).model, (16, 16, 3), 3)
    assert len(augmented.layers) > len(plain.layers)
    before_rescaling = keras.Model(augmented.input, augmented.get_layer("rescale").input)
    assert np.array_equal(keras.ops.convert_to_numpy(before_rescaling(images, training=False)), images)
    moved = keras.ops.convert_to_numpy(before_rescaling(images, training=True))
    assert moved.shape == images.shape and not np.array_equal(moved, images)
