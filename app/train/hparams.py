"""A run's hyperparameters and final metrics for TensorBoard's HParams dashboard, written with
TensorBoard's own plugin API (`tensorboard.plugins.hparams.api`) next to the run's curves.

The dashboard groups runs by these values: every resolved config key (a list shown as its
JSON) and every numeric final metric, so the runs of a sweep can be sorted and filtered there.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from app.config import flatten

SCALARS = (bool, int, float, str)


def hparam_values(config: dict) -> dict:
    """The config as the plugin takes it: dotted keys, scalar values (lists as JSON text)."""
    return {
        key: value if isinstance(value, SCALARS) else json.dumps(value)
        for key, value in flatten(config).items()
        if value is not None
    }


def write_hparams(log_dir: Path, run_id: str, config: dict, metrics: dict, step: int) -> bool:
    """Write the session's hparams and metrics into log_dir; False when TensorBoard is absent."""
    try:
        from tensorboard.plugins.hparams import api as hp
    except ImportError:
        return False
    import tensorflow as tf

    with tf.summary.create_file_writer(str(log_dir)).as_default():
        hp.hparams(hparam_values(config), trial_id=run_id)
        for name, value in metrics.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
                tf.summary.scalar(name, value, step=step)
    return True
