"""In the image: every run carries its hyperparameters and final metrics for TensorBoard's
HParams dashboard, read back here with TensorBoard's own reader; a sweep's plot is a PNG."""

import json
from pathlib import Path

import pytest
from image_helpers import read_manifest

pytestmark = pytest.mark.image


def test_a_run_carries_its_hparams_and_final_metrics_for_tensorboard(reference_run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.hparams import metadata
    from tensorboard.util import tensor_util

    record = read_manifest(reference_run)
    events = EventAccumulator(str(reference_run / "tensorboard"))
    events.Reload()
    content = events.PluginTagToContent(metadata.PLUGIN_NAME)[metadata.SESSION_START_INFO_TAG]
    session = metadata.parse_session_start_info_plugin_data(content)
    assert session.group_name == record["run_id"]
    hparams = dict(session.hparams)
    assert hparams["training.epochs"].number_value == record["config"]["training"]["epochs"]
    assert hparams["training.optimizer"].string_value == record["config"]["training"]["optimizer"]
    assert hparams["model.conv_filters"].string_value == json.dumps(record["config"]["model"]["conv_filters"])
    tensors = events.Tensors("test_accuracy")
    assert [event.step for event in tensors] == [record["config"]["training"]["epochs"]]
    value = float(tensor_util.make_ndarray(tensors[0].tensor_proto))
    assert value == pytest.approx(record["metrics"]["test_accuracy"])


def test_the_sweep_plot_has_a_panel_per_swept_key(tmp_path: Path):
    from app.train.sweep_plot import sweep_figure, write_plot

    rate, filters, accuracy = "training.learning_rate", "model.conv_filters", "test_accuracy"
    results = {
        "sweep_id": "s1",
        "metric": accuracy,
        "goal": "maximize",
        "keys": [rate, filters],
        "log_keys": [rate],
        "trials": [
            {"trial": 1, "params": {rate: 1e-3, filters: [8]}, accuracy: 0.5},
            {"trial": 2, "params": {rate: 1e-2, filters: [8, 16]}, accuracy: 0.7},
            {"trial": 3, "params": {rate: 3e-3, filters: [8]}, accuracy: None},  # did not finish: left out
        ],
    }
    axes = sweep_figure(results).axes
    assert [axis.get_xlabel() for axis in axes] == results["keys"]
    assert axes[0].get_xscale() == "log"
    assert [len(axis.collections[0].get_offsets()) for axis in axes] == [2, 2]
    (tmp_path / "results.json").write_text(json.dumps(results))
    assert write_plot(tmp_path).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
