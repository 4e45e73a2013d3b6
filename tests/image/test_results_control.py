"""Results to look at and training control, for real: word class names in the confusion
matrix and in `python -m app predict`, early stopping and restore_best, and a cosine
schedule that a killed and resumed run follows to the very same weights."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import numpy as np
import pytest
from image_helpers import (
    TINY,
    read_history,
    read_manifest,
    resume,
    run_app,
    signal_after_epochs,
    start_training,
    train_args,
)
from PIL import Image

from tests.photos import CLASSES, PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.image

EPOCHS = 10
CONTROL = [
    *PHOTO_OVERRIDES,
    "data.image_size=[8,8]",
    "model.conv_filters=[4]",
    "model.dense_units=8",
    "training.batch_size=4",
    f"training.epochs={EPOCHS}",
    "training.learning_rate=0.05",
    "training.early_stopping_patience=1",
    "training.restore_best=true",
    "training.class_weight=balanced",
    "training.lr_schedule=cosine",
]
TEST_PER_CLASS = 4


@pytest.fixture(scope="module")
def photo_dir(tmp_path_factory) -> Path:
    """Word classes of unequal size (apples 12, bicycles 8, clouds 5 training photos)."""
    root = make_dataset(tmp_path_factory.mktemp("photos"), 12, TEST_PER_CLASS)
    for name, keep in zip(CLASSES, (12, 8, 5), strict=True):
        for extra in sorted((root / "photos" / "train" / name).iterdir())[keep:]:
            extra.unlink()
    return root


@pytest.fixture(scope="module")
def control_run(photo_dir, tmp_path_factory) -> Path:
    output_dir = tmp_path_factory.mktemp("control")
    result = run_app(*train_args(photo_dir, output_dir, "control", CONTROL))
    assert result.returncode == 0, result.stderr[-3000:]
    return output_dir / "control"


def digest_of(model_file: Path) -> str:
    import keras

    from app.train.model import weights_sha256

    return weights_sha256(keras.models.load_model(model_file, compile=False))


def test_early_stopping_stops_and_restore_best_keeps_the_best_epoch(control_run):
    record = read_manifest(control_run)
    rows = read_history(control_run)
    assert record["status"] == "completed" and record["stopped_early"] is True
    assert record["epochs_completed"] == len(rows) < EPOCHS
    losses = [row["val_loss"] for row in rows]
    assert record["best_epoch"] == int(np.argmin(losses)) + 1
    assert record["epochs_completed"] - record["best_epoch"] == 1, "patience 1: one epoch without progress"
    assert record["weights_epoch"] == record["best_epoch"]
    best = control_run / "checkpoints" / f"epoch-{record['best_epoch']:04d}" / "model.keras"
    last = control_run / "checkpoints" / f"epoch-{record['epochs_completed']:04d}" / "model.keras"
    assert record["weights_sha256"] == digest_of(best) == digest_of(control_run / "model.keras")
    assert digest_of(last) != record["weights_sha256"]


def test_cosine_schedule_and_balanced_class_weights_are_applied_and_recorded(control_run, photo_dir):
    from app.config import load_config
    from app.train import control
    from app.train.files import plan_dataset

    config = load_config(control_run / "config.yaml")
    rates = [row["learning_rate"] for row in read_history(control_run)]
    expected = [control.learning_rate(config.training, epoch) for epoch in range(len(rates))]
    assert rates == pytest.approx(expected, rel=1e-6) and rates[0] > rates[-1]
    labels = plan_dataset(photo_dir, config.data, config.seed).train.labels
    weights = read_manifest(control_run)["class_weights"]
    assert list(weights) == list(CLASSES)
    assert list(weights.values()) == pytest.approx(control.balanced_class_weights(labels, 3).tolist())
    assert weights["clouds"] > weights["bicycles"] > weights["apples"], "fewer photos, more weight"


def test_results_name_the_word_classes_and_agree_with_the_test_accuracy(control_run):
    confusion = json.loads((control_run / "confusion_matrix.json").read_text())
    assert confusion["class_names"] == list(CLASSES)
    matrix = np.array(confusion["matrix"])
    assert matrix.shape == (3, 3) and matrix.sum(axis=1).tolist() == [TEST_PER_CLASS] * 3
    report = json.loads((control_run / "test_metrics.json").read_text())
    assert [row["class"] for row in report["per_class"]] == list(CLASSES)
    assert [row["support"] for row in report["per_class"]] == [TEST_PER_CLASS] * 3
    for index, row in enumerate(report["per_class"]):
        assert row["recall"] == pytest.approx(matrix[index, index] / TEST_PER_CLASS)
    record = read_manifest(control_run)
    assert report["accuracy"] == pytest.approx(np.trace(matrix) / matrix.sum())
    assert report["accuracy"] == pytest.approx(record["metrics"]["test_accuracy"], abs=1e-6)
    assert record["metrics"]["test_macro_f1"] == report["macro"]["f1"]
    assert "top_5_accuracy" not in report, "3 classes: no top-5"
    for name in ("confusion_matrix.png", "confident_mistakes.png"):
        with Image.open(control_run / name) as picture:
            assert picture.format == "PNG", name
            title = picture.text["Title"]  # the same text is drawn above the figure
        assert f"run {record['run_id']}" in title and "test accuracy" in title, title
        assert "config: " in title and "training.epochs" in title, title


def test_the_figures_are_in_the_runs_tensorboard_logs(control_run):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(control_run / "tensorboard" / "test"), size_guidance={"tensors": 0})
    events.Reload()
    tags = set(events.Tags()["tensors"])
    assert {"confusion_matrix", "confident_mistakes", "per_class_metrics", "accuracy"} <= tags
    text = events.Tensors("per_class_metrics")[-1].tensor_proto.string_val[0].decode()
    assert all(f"| {name} |" in text for name in CLASSES)


def test_top_5_accuracy_with_ten_classes(reference_run):
    report = json.loads((reference_run / "test_metrics.json").read_text())
    assert report["accuracy"] <= report["top_5_accuracy"] <= 1.0
    assert read_manifest(reference_run)["metrics"]["test_top_5_accuracy"] == report["top_5_accuracy"]
    assert json.loads((reference_run / "confusion_matrix.json").read_text())["class_names"] == [
        str(digit) for digit in range(10)
    ]


def test_predict_prints_one_row_per_image_with_the_class_names(control_run, photo_dir):
    test_dir = photo_dir / "photos" / "test"
    table = run_app("predict", str(control_run), str(test_dir))
    assert table.returncode == 0, table.stderr[-2000:]
    lines = table.stdout.splitlines()
    assert lines[0].split() == ["file", "class", "probability"]
    images = sorted(str(p) for p in test_dir.rglob("*") if p.is_file())
    assert [line.split()[0] for line in lines[1:]] == images
    assert {line.split()[1] for line in lines[1:]} <= set(CLASSES)

    result = run_app("predict", str(control_run), str(test_dir), "--json")
    rows = json.loads(result.stdout)["predictions"]
    # Decoded exactly as the training decoded the test split: the same confusion matrix.
    matrix = np.zeros((3, 3), dtype=int)
    for row in rows:
        matrix[CLASSES.index(Path(row["file"]).parent.name), CLASSES.index(row["class"])] += 1
    assert matrix.tolist() == json.loads((control_run / "confusion_matrix.json").read_text())["matrix"]
    assert all(0 < row["probability"] <= 1 for row in rows)


def test_predict_refuses_bad_paths_in_one_line(control_run, tmp_path):
    (tmp_path / "notes.jpg").write_text("not a photo")
    (tmp_path / "empty").mkdir()
    for path, fragment in (
        (tmp_path / "notes.jpg", "not an image"),
        (tmp_path / "empty", "no images"),
        (tmp_path / "missing.png", "no such file"),
    ):
        result = run_app("predict", str(control_run), str(path))
        assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr
        (line,) = [line for line in result.stderr.splitlines() if line.startswith("trainbox: ")]
        assert fragment in line and str(path) in line, line


SCHEDULED = [
    *TINY,
    "training.lr_schedule=cosine",
    "training.restore_best=true",
    "training.class_weight=balanced",
]


def test_cosine_restore_best_and_class_weights_killed_and_resumed_give_the_same_weights(digits_dir, tmp_path):
    whole = run_app(*train_args(digits_dir, tmp_path, "whole", SCHEDULED))
    assert whole.returncode == 0, whole.stderr[-2000:]

    run_dir = tmp_path / "killed"
    process = start_training(digits_dir, tmp_path, "killed", tmp_path / "log.txt", SCHEDULED)
    signal_after_epochs(process, run_dir, 3, signal.SIGKILL)  # what `docker kill` does: no handler runs
    assert read_manifest(run_dir)["epochs_completed"] < 6
    resumed = resume(digits_dir, tmp_path, "killed")
    assert resumed.returncode == 0, resumed.stderr[-2000:]

    expected, record = read_manifest(tmp_path / "whole"), read_manifest(run_dir)
    assert record["resumes"][0]["from_epoch"] >= 3
    assert record["weights_sha256"] == expected["weights_sha256"]
    for key in ("best_epoch", "weights_epoch", "class_weights", "metrics"):
        assert record[key] == expected[key], key
    assert [row["learning_rate"] for row in read_history(run_dir)] == [
        row["learning_rate"] for row in read_history(tmp_path / "whole")
    ]
