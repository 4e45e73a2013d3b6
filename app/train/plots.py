"""Learning-curve figures, shared by the training run (PNG) and the notebooks."""

from __future__ import annotations

import numpy as np


def learning_curves_figure(history: list[dict]):
    """Loss and accuracy per epoch, train and validation, as a matplotlib Figure."""
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = [row.get(key) for row in history]
            if any(value is not None for value in values):
                axis.plot(epochs, [np.nan if v is None else v for v in values], marker="o", label=label)
        axis.set(xlabel="epoch", title=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    figure.tight_layout()
    return figure
