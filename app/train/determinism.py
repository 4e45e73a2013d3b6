"""Seeds and op determinism: what makes the same config give the same weights on one host."""

from __future__ import annotations

import os

import keras
import tensorflow as tf


def set_determinism(seed: int, deterministic: bool) -> dict:
    """Seed every RNG and, when asked, make TensorFlow's ops deterministic; returns the record."""
    keras.utils.set_random_seed(seed)  # Python, NumPy, TensorFlow and Keras' own seed
    record = {
        "enabled": deterministic,
        "seeded": ["python.random", "numpy", "tensorflow", "keras"],
        "data_order": "numpy default_rng([seed, epoch]).permutation per epoch",
        "validation_split": "numpy default_rng([seed, 0x5EED]), stratified",
        "dropout_rng": "Keras SeedGenerator state saved in every checkpoint",
        "intra_op_threads": tf.config.threading.get_intra_op_parallelism_threads(),
        "inter_op_threads": tf.config.threading.get_inter_op_parallelism_threads(),
        "pythonhashseed": os.environ.get("PYTHONHASHSEED"),
    }
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        record["op_determinism"] = True
        record["tf_data"] = "deterministic=True maps (op determinism also forces it)"
    else:
        record["op_determinism"] = False
    return record
