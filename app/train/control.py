"""Training control as pure functions of the config, the epoch and the history so far.

Nothing here keeps state of its own: the learning rate is a function of the epoch, the
best epoch and the decision to stop early are functions of the recorded history. A run
resumed from a checkpoint (which carries the history) therefore takes exactly the
decisions the uninterrupted run took. TF-free: unit-tested on the host.
"""

from __future__ import annotations

import math

import numpy as np

from app.config import TrainingConfig

MONITOR = "val_loss"


def learning_rate(training: TrainingConfig, epoch: int) -> float:
    """The learning rate of epoch `epoch` (0-based)."""
    base = training.learning_rate
    if training.lr_schedule == "cosine":
        progress = epoch / training.epochs
        return training.lr_min + (base - training.lr_min) * 0.5 * (1 + math.cos(math.pi * progress))
    if training.lr_schedule == "step":
        return base * training.lr_step_factor ** (epoch // training.lr_step_epochs)
    return base


def balanced_class_weights(labels: np.ndarray, num_classes: int) -> np.ndarray:
    """n_images / (n_classes * n_images_of_class), as scikit-learn's "balanced" (float32).

    A class without training images gets weight 0: it contributes no loss anyway.
    """
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes).astype(np.float64)
    present = counts > 0
    weights = np.zeros(num_classes)
    weights[present] = len(labels) / (present.sum() * counts[present])
    return weights.astype(np.float32)


def watches_validation(training: TrainingConfig) -> bool:
    return training.early_stopping_patience is not None or training.restore_best


def best_epoch(history: list[dict]) -> int | None:
    """The epoch (1-based) with the lowest validation loss; the earliest of equal ones."""
    best, best_loss = None, math.inf
    for row in history:
        loss = row.get(MONITOR)
        if loss is not None and not math.isnan(loss) and loss < best_loss:
            best, best_loss = row["epoch"], loss
    return best


def stops_early(history: list[dict], patience: int | None) -> bool:
    """True once `patience` epochs in a row have not lowered the best validation loss."""
    if patience is None or not history:
        return False
    best = best_epoch(history)
    return history[-1]["epoch"] - (best if best is not None else 0) >= patience
