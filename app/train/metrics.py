"""Classification results from labels and predicted probabilities: NumPy only, pure.

The same definitions as scikit-learn's `classification_report` and `confusion_matrix`
(scikit-learn is not in the image at run time): rows of the confusion matrix are the true
class, columns the predicted one; a class never predicted has precision 0, a class with no
test images recall 0 (scikit-learn's `zero_division=0`).
"""

from __future__ import annotations

import numpy as np

TOP_K = 5


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """counts[true, predicted] as int64, (num_classes, num_classes)."""
    labels, predicted = np.asarray(labels, dtype=np.int64), np.asarray(predicted, dtype=np.int64)
    flat = np.bincount(labels * num_classes + predicted, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    numerator, denominator = numerator.astype(np.float64), denominator.astype(np.float64)
    return np.divide(numerator, denominator, out=np.zeros_like(numerator), where=denominator > 0)


def per_class(confusion: np.ndarray, class_names: list[str]) -> list[dict]:
    """Precision, recall, F1 and support of each class, in class order."""
    correct = np.diag(confusion)
    precision = _ratio(correct, confusion.sum(axis=0))
    recall = _ratio(correct, confusion.sum(axis=1))
    f1 = _ratio(2 * precision * recall, precision + recall)
    support = confusion.sum(axis=1)
    return [
        {
            "class": name,
            "precision": float(precision[i]),
            "recall": float(recall[i]),
            "f1": float(f1[i]),
            "support": int(support[i]),
        }
        for i, name in enumerate(class_names)
    ]


def averages(rows: list[dict]) -> dict:
    """Macro (every class counts once) and weighted (by support) averages of the per-class rows."""
    support = np.array([row["support"] for row in rows], dtype=np.float64)
    result = {}
    for kind, weights in (("macro", np.ones_like(support)), ("weighted", support)):
        total = weights.sum()
        result[kind] = {
            key: float(np.dot([row[key] for row in rows], weights) / total) if total else 0.0
            for key in ("precision", "recall", "f1")
        }
    return result


def top_k_accuracy(labels: np.ndarray, probabilities: np.ndarray, k: int = TOP_K) -> float:
    """Share of examples whose true class is among the k most probable (ties: lower index first)."""
    # A stable sort of -p puts, among equal probabilities, the lower class index first.
    ranked = np.argsort(-probabilities, axis=1, kind="stable")[:, :k]
    return float(np.mean(np.any(ranked == np.asarray(labels)[:, None], axis=1))) if len(labels) else 0.0


def confident_mistakes(labels: np.ndarray, probabilities: np.ndarray, count: int) -> np.ndarray:
    """Positions of at most `count` wrong predictions, most confident first (ties: lower position)."""
    predicted = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predicted != np.asarray(labels))
    confidence = probabilities[wrong, predicted[wrong]]
    return wrong[np.argsort(-confidence, kind="stable")][:count]


def summarize(
    labels: np.ndarray, probabilities: np.ndarray, class_names: list[str]
) -> tuple[dict, np.ndarray]:
    """(accuracy, top-5 accuracy with more than 5 classes, per class, averages; the confusion matrix)."""
    predicted = probabilities.argmax(axis=1)
    confusion = confusion_matrix(labels, predicted, len(class_names))
    rows = per_class(confusion, class_names)
    summary = {
        "examples": len(labels),
        "accuracy": float(np.mean(predicted == labels)) if len(labels) else 0.0,
    }
    if len(class_names) > TOP_K:
        summary[f"top_{TOP_K}_accuracy"] = top_k_accuracy(labels, probabilities, TOP_K)
    return {**summary, "per_class": rows, **averages(rows)}, confusion
