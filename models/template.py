"""Your own network for trainbox: copy this file to models/<name>.py and set
`model.architecture: models/<name>.py` in your config (or --set it).

The contract (checked before a run starts; a mistake is one line naming your file):

    build_model(input_shape, num_classes, config) -> keras.Model

- input_shape: (height, width, channels) from data.image_size and data.color_mode
  (channels 1 for grayscale, 3 for rgb). The model gets raw pixels, floats 0..255:
  rescale inside the model, so model.keras takes the images as they come.
- num_classes: the number of class folders. The model must output one probability per
  class (shape (batch, num_classes), ending in a softmax): trainbox compiles it with
  sparse categorical cross-entropy, its optimizer and training.learning_rate.
- config: the whole validated config (config.model.dropout_rate, config.seed, ...), read-only.

trainbox has already set the seeds and the precision policy (training.precision) when it
calls build_model: build the layers here, with no random state of your own, and the same
config gives the same weights. Keep the last layer in float32 (dtype="float32") so mixed
precision does not round small probabilities to zero.

The file is baked into the image like app/ (`invoke train` rebuilds it after you edit the
file), copied into the run directory and named with its sha256 in the manifest, so
`invoke reproduce` re-runs the very same code. Plain Keras layers keep model.keras
loadable anywhere; a custom layer needs @keras.saving.register_keras_serializable() and
this file imported before keras.models.load_model.
"""

import keras


def build_model(input_shape, num_classes, config):
    inputs = keras.Input(shape=input_shape, name="image")
    x = keras.layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, filters in enumerate((16, 32)):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False, name=f"conv{block}")(x)
        x = keras.layers.BatchNormalization(name=f"norm{block}")(x)
        x = keras.layers.ReLU(name=f"relu{block}")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    x = keras.layers.Dropout(config.model.dropout_rate, name="dropout")(x)
    outputs = keras.layers.Dense(num_classes, activation="softmax", dtype="float32", name="classes")(x)
    return keras.Model(inputs, outputs, name="template_net")
