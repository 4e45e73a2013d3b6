"""A real TINY run: the run directory holds everything the host and users rely on."""

import csv
import json
from pathlib import Path

import pytest
from image_helpers import TINY, read_manifest

pytestmark = pytest.mark.image


def test_run_directory_contents(reference_run: Path):
    for name in (
        "manifest.json",
        "config.yaml",
        "model.keras",
        "class_names.json",
        "history.csv",
        "history.json",
        "learning_curves.png",
    ):
        assert (reference_run / name).is_file(), name
    checkpoints = sorted(p.name for p in (reference_run / "checkpoints").iterdir())
    assert checkpoints == ["epoch-0005", "epoch-0006"], "the last two checkpoints are kept"
    assert any((reference_run / "tensorboard").rglob("events.out.tfevents.*"))
    assert not list(reference_run.rglob(".*tmp*")), "no temporary files left behind"
    history = json.loads((reference_run / "history.json").read_text())
    assert [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    rows = list(csv.DictReader((reference_run / "history.csv").open()))
    assert len(rows) == 6 and {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(rows[0])


def test_config_yaml_holds_the_overrides(reference_run: Path):
    from app.config import load_config, parse_override

    config = load_config(reference_run / "config.yaml")
    assert config.data.image_size == [8, 8]
    assert config.training.epochs == 6 and config.training.batch_size == 2
    assert read_manifest(reference_run)["config"] == config.to_dict()
    for override in TINY:  # every --set the run was given, at its value
        keys, value = parse_override(override)
        recorded = config.to_dict()
        for key in keys:
            recorded = recorded[key]
        assert recorded == value, override


def test_manifest_fields(reference_run: Path):
    record = read_manifest(reference_run)
    assert record["run_id"] == "reference"
    assert record["status"] == "completed"
    assert record["epochs_completed"] == 6
    assert record["seed"] == 42
    assert record["determinism"]["op_determinism"] is True
    assert set(record["image"]) == {"id", "tag"} and set(record["git"]) == {"commit", "dirty"}
    environment = record["environment"]
    for key in ("python", "tensorflow", "packages_sha256", "lock_sha256", "variant"):
        assert key in environment
    assert len(environment["packages_sha256"]) == 64
    data = record["data"]
    assert len(data["fingerprint"]) == 64
    assert data["class_names"] == [str(d) for d in range(10)]
    assert data["counts"]["test"] == 360
    assert data["counts"]["train"] + data["counts"]["validation"] == 1437
    metrics = record["metrics"]
    for key in ("test_accuracy", "final_loss", "final_accuracy", "final_val_loss", "final_val_accuracy"):
        assert isinstance(metrics[key], float), key
    assert len(record["weights_sha256"]) == 64
    assert record["started_at"] <= record["finished_at"]


def test_model_round_trips_with_its_class_names_and_digest(reference_run: Path):
    import keras

    from app.train.model import weights_sha256

    model = keras.models.load_model(reference_run / "model.keras")
    assert model.output_shape == (None, 10)
    assert json.loads((reference_run / "class_names.json").read_text()) == [str(d) for d in range(10)]
    assert weights_sha256(model) == read_manifest(reference_run)["weights_sha256"]


def test_stdout_contract(digits_dir: Path, tmp_path: Path):
    from image_helpers import run_app, train_args

    overrides = [
        "data.image_size=[8,8]",
        "model.conv_filters=[4]",
        "model.dense_units=8",
        "training.epochs=1",
    ]
    result = run_app(*train_args(digits_dir, tmp_path, "stdout", overrides))
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert f"run directory: {tmp_path / 'stdout'}" in lines
    accuracy = [line for line in lines if line.startswith("test accuracy: ")]
    assert len(accuracy) == 1 and 0.0 <= float(accuracy[0].split(": ")[1]) <= 1.0
    assert any(" - loss: " in line and "/step" in line for line in lines), "Keras progress is streamed"
