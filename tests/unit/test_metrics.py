"""The per-class numbers of app/train/metrics.py on cases small enough to count by hand."""

from __future__ import annotations

import numpy as np
import pytest

from app.train import metrics

NAMES = ["apples", "bicycles", "clouds"]
# true:      a a a a b b b c c c
# predicted: a a b c b b a c c c
LABELS = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2, 2])
PREDICTED = np.array([0, 0, 1, 2, 1, 1, 0, 2, 2, 2])


def one_hot(predicted, classes=3, confidence=0.8):
    probabilities = np.full((len(predicted), classes), (1 - confidence) / (classes - 1))
    probabilities[np.arange(len(predicted)), predicted] = confidence
    return probabilities


def test_confusion_matrix_rows_are_true_columns_predicted():
    assert metrics.confusion_matrix(LABELS, PREDICTED, 3).tolist() == [[2, 1, 1], [1, 2, 0], [0, 0, 3]]


def test_per_class_precision_recall_f1_support_counted_by_hand():
    rows = metrics.per_class(metrics.confusion_matrix(LABELS, PREDICTED, 3), NAMES)
    # apples: 2 of 3 predicted apples right, 2 of 4 apples found; F1 = 2*(2/3)(1/2)/(2/3+1/2) = 4/7
    # bicycles: 2 of 3, 2 of 3 -> 2/3; clouds: 3 of 4 predicted clouds right, all 3 found -> 6/7
    expected = [
        ("apples", 2 / 3, 2 / 4, 4 / 7, 4),
        ("bicycles", 2 / 3, 2 / 3, 2 / 3, 3),
        ("clouds", 3 / 4, 3 / 3, 6 / 7, 3),
    ]
    for row, (name, precision, recall, f1, support) in zip(rows, expected, strict=True):
        assert row["class"] == name and row["support"] == support
        assert row["precision"] == pytest.approx(precision)
        assert row["recall"] == pytest.approx(recall)
        assert row["f1"] == pytest.approx(f1)


def test_averages_macro_and_weighted():
    rows = metrics.per_class(metrics.confusion_matrix(LABELS, PREDICTED, 3), NAMES)
    result = metrics.averages(rows)
    assert result["macro"]["recall"] == pytest.approx((1 / 2 + 2 / 3 + 1) / 3)
    assert result["weighted"]["recall"] == pytest.approx(7 / 10)  # weighted recall is accuracy


def test_a_class_never_predicted_and_one_never_seen_count_zero_not_nan():
    rows = metrics.per_class(metrics.confusion_matrix([0, 0, 1], [0, 0, 0], 3), NAMES)
    assert rows[1] == {"class": "bicycles", "precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 1}
    assert rows[2]["support"] == 0 and rows[2]["precision"] == 0.0


def test_top_k_accuracy_counts_the_true_class_among_the_k_most_probable():
    probabilities = np.array([[0.5, 0.3, 0.2], [0.1, 0.2, 0.7], [0.6, 0.3, 0.1]])
    labels = np.array([1, 0, 2])  # ranks: 2nd, 3rd, 3rd
    assert metrics.top_k_accuracy(labels, probabilities, 1) == 0.0
    assert metrics.top_k_accuracy(labels, probabilities, 2) == pytest.approx(1 / 3)
    assert metrics.top_k_accuracy(labels, probabilities, 3) == 1.0


def test_confident_mistakes_are_the_wrong_ones_most_confident_first():
    probabilities = one_hot(PREDICTED)
    probabilities[3] = [0.05, 0.05, 0.9]  # apples taken for clouds, very sure
    probabilities[6] = [0.55, 0.45, 0.0]  # a bicycle taken for apples, hardly sure
    assert metrics.confident_mistakes(LABELS, probabilities, 10).tolist() == [3, 2, 6]
    assert metrics.confident_mistakes(LABELS, probabilities, 2).tolist() == [3, 2]


def test_summarize_adds_top_5_only_with_more_than_5_classes():
    summary, confusion = metrics.summarize(LABELS, one_hot(PREDICTED), NAMES)
    assert summary["accuracy"] == pytest.approx(0.7) and "top_5_accuracy" not in summary
    assert confusion.sum() == len(LABELS)
    six = [f"class{i}" for i in range(6)]
    labels = np.arange(6)
    probabilities = np.full((6, 6), 0.05)
    probabilities[labels, (labels + 1) % 6] = 0.5  # all wrong at top-1, right at top-2
    probabilities[labels, labels] = 0.3
    summary, _ = metrics.summarize(labels, probabilities, six)
    assert summary["accuracy"] == 0.0 and summary["top_5_accuracy"] == 1.0
