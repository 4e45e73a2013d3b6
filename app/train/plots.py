"""Figures of a run, shared by the training (PNG files) and the notebooks.

Every PNG the project writes says what it shows: `run_title` makes the text (run id, test
accuracy, the config keys that differ from the defaults) and `png_bytes` puts it above the
figure and into the PNG's `Title` text chunk, where tools (and tests) read it back.
"""

from __future__ import annotations

import io
import json
import textwrap

import numpy as np

from app.config import changed_from_defaults

TITLE_WIDTH = 110  # characters per title line: fits a 10-inch figure at font size 10


def config_changes(config: dict) -> list[str]:
    """`key=value` for every config key whose value differs from the schema's default."""
    return [f"{key}={json.dumps(value)}" for key, value in changed_from_defaults(config).items()]


def run_title(run_id: str, metrics: dict | None, config: dict) -> str:
    """Two lines: which run and how good it is; what its config changed."""
    accuracy = (metrics or {}).get("test_accuracy")
    head = f"run {run_id}" + ("" if accuracy is None else f" · test accuracy {accuracy:.4f}")
    changes = config_changes(config)
    tail = "config: defaults" if not changes else "config: " + ", ".join(changes)
    return "\n".join([head, *textwrap.wrap(tail, TITLE_WIDTH)])


def png_bytes(figure, title: str | None = None, dpi: int = 100) -> bytes:
    """The figure as PNG, with `title` above it and in the PNG's `Title` text chunk."""
    if title:
        figure.suptitle(title, fontsize=10)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi, metadata={"Title": title} if title else None)
    return buffer.getvalue()


def learning_curves_figure(history: list[dict], title: str | None = None):
    """Loss and accuracy per epoch, train and validation, as a matplotlib Figure."""
    import matplotlib.pyplot as plt

    epochs = [row["epoch"] for row in history]
    figure, axes = plt.subplots(1, 2, figsize=(10, 4.5), layout="constrained")
    for axis, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for key, label in ((metric, "train"), (f"val_{metric}", "validation")):
            values = [row.get(key) for row in history]
            if any(value is not None for value in values):
                axis.plot(epochs, [np.nan if v is None else v for v in values], marker="o", label=label)
        axis.set(xlabel="epoch", title=metric)
        axis.grid(alpha=0.3)
        axis.legend()
    if title:
        figure.suptitle(title, fontsize=10)
    return figure


def confusion_matrix_figure(confusion: np.ndarray, class_names: list[str], title: str):
    """Counts per (true, predicted) class, darker for more; every count written when it fits."""
    import matplotlib.pyplot as plt

    classes = len(class_names)
    side = min(4 + 0.5 * classes, 24)
    figure, axis = plt.subplots(figsize=(side + 1.5, side))
    image = axis.imshow(confusion, cmap="Blues", interpolation="nearest")
    figure.colorbar(image, ax=axis, fraction=0.046, pad=0.04)
    axis.set(
        xticks=range(classes),
        yticks=range(classes),
        xlabel="predicted class",
        ylabel="true class",
        title=title,
    )
    axis.set_xticklabels(class_names, rotation=45, ha="right")
    axis.set_yticklabels(class_names)
    if classes <= 30:  # beyond that the numbers overlap; the JSON has them
        threshold = confusion.max() / 2 if confusion.size else 0
        for true in range(classes):
            for predicted in range(classes):
                count = int(confusion[true, predicted])
                colour = "white" if count > threshold else "black"
                axis.text(predicted, true, str(count), ha="center", va="center", color=colour, fontsize=8)
    figure.tight_layout()
    return figure


def mistakes_figure(images: list[np.ndarray], captions: list[str], title: str, columns: int = 4):
    """A grid of images with a caption each (true and predicted class); a note when there are none."""
    import matplotlib.pyplot as plt

    rows = max(1, -(-len(images) // columns))
    figure, axes = plt.subplots(rows, columns, figsize=(2.6 * columns, 2.8 * rows + 0.6), squeeze=False)
    for axis in axes.ravel():
        axis.axis("off")
    for axis, image, caption in zip(axes.ravel(), images, captions, strict=False):
        axis.imshow(
            image[..., 0] if image.shape[-1] == 1 else image,
            cmap="gray",
            vmin=0,
            vmax=255,
            interpolation="nearest",
        )
        axis.set_title(caption, fontsize=8)
    if not images:
        axes[0, 0].text(0, 0.5, "no wrong predictions", fontsize=12)
    figure.suptitle(title, fontsize=10)
    figure.tight_layout()
    return figure
