"""Every PNG says what it shows: the run id, the test accuracy, the config keys changed."""

from __future__ import annotations

import io

from PIL import Image

from app.config import load_config
from app.train.plots import config_changes, learning_curves_figure, png_bytes, run_title
from tests.helpers import skip_or_fail

HISTORY = [
    {"epoch": 1, "loss": 1.2, "accuracy": 0.6, "val_loss": 1.3, "val_accuracy": 0.55},
    {"epoch": 2, "loss": 0.7, "accuracy": 0.8, "val_loss": 0.9, "val_accuracy": None},
]


def test_only_keys_that_differ_from_the_defaults_are_named():
    config = load_config(None, ["training.epochs=3", "model.conv_filters=[16,32]", "data.test=null"])
    assert config_changes(config.to_dict()) == [
        "data.test=null",
        "model.conv_filters=[16, 32]",
        "training.epochs=3",
    ]
    assert config_changes(load_config(None).to_dict()) == []


def test_title_names_the_run_its_accuracy_and_its_changes():
    config = load_config(None, ["training.learning_rate=1e-3"]).to_dict()
    title = run_title("20261125-180512-3fa9c2", {"test_accuracy": 0.98331}, config)
    assert title.splitlines() == [
        "run 20261125-180512-3fa9c2 · test accuracy 0.9833",
        "config: training.learning_rate=0.001",
    ]
    untested = run_title("20261125-180512-3fa9c2", {}, load_config(None).to_dict())
    assert untested.splitlines() == ["run 20261125-180512-3fa9c2", "config: defaults"]


def test_a_long_list_of_changes_wraps_instead_of_running_off_the_figure():
    overrides = [f"model.conv_filters=[{','.join(['512'] * 6)}]"]
    overrides += [
        "data.train=a/very/long/folder/name/of/photos",
        "data.test=another/very/long/folder/name/of/photos",
        "training.optimizer=rmsprop",
    ]
    title = run_title("20261125-180512-3fa9c2", None, load_config(None, overrides).to_dict())
    assert len(title.splitlines()) >= 3 and max(map(len, title.splitlines())) <= 110


def test_png_carries_the_title_above_the_plot_and_in_its_text_chunk():
    try:
        import matplotlib
    except ImportError:  # not a host requirement; CI installs it for the benchmarks' native side
        skip_or_fail("matplotlib is not installed on this host")

    matplotlib.use("Agg")
    title = run_title("20261125-180512-3fa9c2", {"test_accuracy": 0.5}, load_config(None).to_dict())
    figure = learning_curves_figure(HISTORY)
    png = png_bytes(figure, title)
    assert figure.get_suptitle() == title
    image = Image.open(io.BytesIO(png))
    assert image.text["Title"] == title
    assert image.size == (1000, 450)
