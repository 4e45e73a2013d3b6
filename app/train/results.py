"""Results to look at, on the test split: what the model gets right and wrong, per class.

Written into the run directory after training (the weights are only read):

test_metrics.json       accuracy, top-5 accuracy (more than 5 classes), per-class precision,
                        recall, F1 and support, macro and weighted averages
confusion_matrix.json   counts per (true, predicted) class, with the class names
confusion_matrix.png    the same as a picture, titled with the run id and test accuracy
confident_mistakes.png  the test images the model got wrong most confidently

and the same figures and table into the run's TensorBoard logs (tensorboard/test).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from app import manifest
from app.train import metrics
from app.train.data import Split

METRICS_NAME = "test_metrics.json"
CONFUSION_JSON = "confusion_matrix.json"
CONFUSION_PNG = "confusion_matrix.png"
MISTAKES_PNG = "confident_mistakes.png"
MISTAKES_SHOWN = 16
TENSORBOARD_DIR = "test"  # beside Keras' train/ and validation/ in <run>/tensorboard/


def probabilities(model, split: Split, batch_size: int) -> np.ndarray:
    """The model's class probabilities for every example of the split, in the split's order.

    A plain forward pass per batch (inference mode): no distribution strategy is involved,
    so only the chief of a multi-worker run needs to do it, and no weight changes.
    """
    import keras

    batches = []
    for start in range(0, len(split), batch_size):
        images, _ = split.take(np.arange(start, min(start + batch_size, len(split))))
        output = model(keras.ops.convert_to_tensor(images.astype(np.float32)), training=False)
        batches.append(keras.ops.convert_to_numpy(output).astype(np.float64))
    return np.concatenate(batches)


def write_results(
    run_dir: Path,
    run_id: str,
    model,
    split: Split,
    class_names: list[str],
    batch_size: int,
    step: int,
    run_title: str,
) -> dict:
    """Write the files above; return what the manifest's metrics add (test_macro_f1, top-5)."""
    import matplotlib

    matplotlib.use("Agg")
    probs = probabilities(model, split, batch_size)
    summary, confusion = metrics.summarize(split.labels, probs, class_names)
    manifest.write_json_atomic(run_dir / METRICS_NAME, {"run_id": run_id, "split": "test", **summary})
    manifest.write_json_atomic(
        run_dir / CONFUSION_JSON,
        {
            "run_id": run_id,
            "split": "test",
            "rows": "true class",
            "columns": "predicted class",
            "class_names": class_names,
            "matrix": confusion.tolist(),
        },
    )
    # What each picture shows, then the run's title (plots.run_title: run id, accuracy, config).
    confusion_title = f"Confusion matrix, {summary['examples']} test images\n{run_title}"
    mistakes_title = f"Confident mistakes (test)\n{run_title}"
    confusion_png = _png(_confusion_figure(confusion, class_names, confusion_title), confusion_title)
    mistakes_png = _png(_mistakes_figure(split, probs, class_names, mistakes_title), mistakes_title)
    manifest.write_bytes_atomic(run_dir / CONFUSION_PNG, confusion_png)
    manifest.write_bytes_atomic(run_dir / MISTAKES_PNG, mistakes_png)
    _tensorboard(run_dir / "tensorboard" / TENSORBOARD_DIR, summary, confusion_png, mistakes_png, step)
    added = {"test_macro_f1": summary["macro"]["f1"]}
    top = f"top_{metrics.TOP_K}_accuracy"
    if top in summary:
        added[f"test_{top}"] = summary[top]
    return added


def _confusion_figure(confusion: np.ndarray, class_names: list[str], title: str):
    from app.train.plots import confusion_matrix_figure

    return confusion_matrix_figure(confusion, class_names, title)


def _short(name: str, limit: int = 18) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


def _mistakes_figure(split: Split, probs: np.ndarray, class_names: list[str], title: str):
    from app.train.plots import mistakes_figure

    positions = metrics.confident_mistakes(split.labels, probs, MISTAKES_SHOWN)
    images, labels = split.take(positions) if len(positions) else ([], [])
    captions = []
    for position, label in zip(positions, labels, strict=True):
        predicted = int(probs[position].argmax())
        captions.append(
            f"true: {_short(class_names[int(label)])}\n"
            f"predicted: {_short(class_names[predicted])} ({probs[position, predicted]:.2f})"
        )
    return mistakes_figure(list(images), captions, title)


def _png(figure, title: str) -> bytes:
    import matplotlib.pyplot as plt

    try:
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=100, metadata={"Software": None, "Title": title})
        return buffer.getvalue()
    finally:
        plt.close(figure)


def markdown_table(summary: dict) -> str:
    """The per-class numbers as a Markdown table (TensorBoard's text dashboard renders it)."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---|---|---|---|"]
    for row in summary["per_class"]:
        lines.append(
            f"| {row['class']} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} "
            f"| {row['support']} |"
        )
    for kind in ("macro", "weighted"):
        average = summary[kind]
        lines.append(
            f"| *{kind} average* | {average['precision']:.4f} | {average['recall']:.4f} "
            f"| {average['f1']:.4f} | {summary['examples']} |"
        )
    return "\n".join(lines)


def _tensorboard(log_dir: Path, summary: dict, confusion_png: bytes, mistakes_png: bytes, step: int) -> None:
    try:
        import tensorboard  # noqa: F401 - the summary ops write through it; the image always has it
    except ImportError:
        return
    import tensorflow as tf

    writer = tf.summary.create_file_writer(str(log_dir))
    try:
        with writer.as_default(step=step):
            for name, png in (("confusion_matrix", confusion_png), ("confident_mistakes", mistakes_png)):
                tf.summary.image(name, tf.image.decode_png(png, channels=4)[None])
            tf.summary.text("per_class_metrics", markdown_table(summary))
            tf.summary.scalar("accuracy", summary["accuracy"])
            top = f"top_{metrics.TOP_K}_accuracy"
            if top in summary:
                tf.summary.scalar(top, summary[top])
        writer.flush()
    finally:
        writer.close()
