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

from app.config import Config

TITLE_WIDTH = 110  # characters per title line: fits a 10-inch figure at font size 10


def _flat(tree: dict, prefix: str = "") -> dict[str, object]:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def config_changes(config: dict) -> list[str]:
    """`key=value` for every config key whose value differs from the schema's default."""
    defaults = _flat(Config().to_dict())
    return [
        f"{key}={json.dumps(value)}"
        for key, value in _flat(config).items()
        if key not in defaults or defaults[key] != value
    ]


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
