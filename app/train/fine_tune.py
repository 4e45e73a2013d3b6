"""training.freeze_backbone_epochs: the new head first, then the whole network.

While frozen, the backbone's weights do not change and its BatchNorm layers run in
inference mode (Keras does both for a layer with trainable=False). At the switch, the
backbone is unfrozen and the model compiled again with a fresh optimizer at
training.fine_tune_learning_rate.

Resumable bit for bit: each checkpoint holds the model with its frozen flag and its
optimizer, and `enter_stage` only acts when the flag disagrees with the epoch. A run
resumed from the checkpoint taken at the switch therefore switches exactly as the
uninterrupted run did (same weights, fresh optimizer); one resumed later keeps its
restored optimizer.
"""

from __future__ import annotations

import itertools

import keras

from app.config import Config
from app.train import numerics
from app.train.model import compile_model


def backbone_of(model: keras.Model) -> keras.Model | None:
    """The Keras Applications model nested in a backbone network (None for other networks)."""
    nested = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested[0] if len(nested) == 1 else None


def stages(config: Config, first_epoch: int) -> list[tuple[int, int]]:
    """The (first, end) epochs still to train, split where the backbone is unfrozen."""
    epochs, switch = config.training.epochs, config.training.freeze_backbone_epochs
    bounds = [first_epoch, *([switch] if first_epoch < switch < epochs else []), epochs]
    return [(start, end) for start, end in itertools.pairwise(bounds) if start < end]


def enter_stage(model: keras.Model, config: Config, first_epoch: int) -> bool:
    """Freeze or unfreeze the backbone for the epochs from first_epoch; True when it changed
    (the model is then compiled again: call this inside the distribution strategy's scope)."""
    freeze = config.training.freeze_backbone_epochs
    backbone = backbone_of(model) if freeze else None
    if backbone is None:
        return False
    trainable = first_epoch >= freeze
    if backbone.trainable == trainable:
        return False
    backbone.trainable = trainable
    rate = config.training.unfrozen_learning_rate if trainable else config.training.learning_rate
    compile_model(model, config.training, learning_rate=rate, jit_compile=numerics.jit_compile(config))
    what = f"whole network at learning rate {rate:g}" if trainable else "head only, backbone frozen"
    print(f"epoch {first_epoch + 1}: training the {what}", flush=True)
    return True


def rate_scale(config: Config, first_epoch: int) -> float:
    """What training.lr_schedule's rates are multiplied by from first_epoch: after the switch,
    fine_tune_learning_rate / learning_rate, so the schedule keeps its shape at the new rate."""
    training = config.training
    if not training.freeze_backbone_epochs or first_epoch < training.freeze_backbone_epochs:
        return 1.0
    return training.unfrozen_learning_rate / training.learning_rate
