"""Your own model file (models/<name>.py): it trains, lands in the run directory and the
manifest; every way it can be wrong is one line naming the file."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from image_helpers import REPO, read_manifest, run_app, train_args

from app.config import load_config
from tests.photos import PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.image

TEMPLATE = "models/template.py"
SHAPE = (16, 16, 3)

HEADER = "import keras\n\n"
GOOD_LAYERS = (
    "    inputs = keras.Input(shape=input_shape)\n    x = keras.layers.GlobalAveragePooling2D()(inputs)\n"
)
BAD_FILES = {
    "no_function": (
        HEADER + "def make_model(input_shape, num_classes, config):\n    pass\n",
        "does not define build_model",
    ),
    "import_fails": ("import not_a_module_anywhere\n", "importing it failed: ModuleNotFoundError"),
    "syntax_error": ("def build_model(:\n", "importing it failed: SyntaxError"),
    "raises": (
        HEADER
        + "def build_model(input_shape, num_classes, config):\n    raise ValueError('no such layer')\n",
        "build_model raised ValueError: no such layer",
    ),
    "not_a_model": (
        HEADER + "def build_model(input_shape, num_classes, config):\n    return {'layers': 3}\n",
        "returned dict, not a keras.Model",
    ),
    "wrong_classes": (
        HEADER
        + "def build_model(input_shape, num_classes, config):\n"
        + GOOD_LAYERS
        + "    return keras.Model(inputs, keras.layers.Dense(5, activation='softmax')(x))\n",
        "output has shape (5,), expected (3,)",
    ),
    "logits": (
        HEADER
        + "def build_model(input_shape, num_classes, config):\n"
        + GOOD_LAYERS
        + "    return keras.Model(inputs, keras.layers.Dense(num_classes, bias_initializer='ones')(x))\n",
        "not probabilities: end the model with a softmax",
    ),
}


@pytest.mark.parametrize("name", sorted(BAD_FILES))
def test_a_bad_model_file_is_one_line_naming_it(tmp_path, name):
    from app.train.custom_model import build_custom_model
    from app.train.errors import UserError

    text, fragment = BAD_FILES[name]
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / f"{name}.py").write_text(text)
    config = load_config(None, [f"model.architecture=models/{name}.py"])
    with pytest.raises(UserError) as error:
        build_custom_model(config, SHAPE, 3, repo_root=tmp_path)
    message = str(error.value)
    assert f"models/{name}.py" in message and fragment in message, message
    assert "\n" not in message


def test_a_missing_model_file_stops_before_the_run_starts(tmp_path):
    data_dir = make_dataset(tmp_path / "data", 2, 1)
    output_dir = tmp_path / "out"
    overrides = [*PHOTO_OVERRIDES, "model.architecture=models/not_there.py"]
    result = run_app(*train_args(data_dir, output_dir, "missing", overrides))
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "trainbox: model.architecture: models/not_there.py not found"
    )
    assert "models/template.py" in lines[0]  # where the contract is shown
    assert not (output_dir / "missing").exists()


def test_the_template_trains_and_lands_in_the_run_directory(tmp_path):
    import keras

    data_dir = make_dataset(tmp_path / "data", 6, 2)
    overrides = [
        *PHOTO_OVERRIDES,
        f"model.architecture={TEMPLATE}",
        "data.image_size=[16,16]",
        "training.epochs=1",
        "training.batch_size=4",
    ]
    result = run_app(*train_args(data_dir, tmp_path / "out", "mine", overrides))
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "out" / "mine"
    record = read_manifest(run_dir)
    source = (REPO / TEMPLATE).read_bytes()
    assert record["status"] == "completed"
    assert record["model"]["code"] == {"file": TEMPLATE, "sha256": hashlib.sha256(source).hexdigest()}
    assert (run_dir / TEMPLATE).read_bytes() == source
    model = keras.models.load_model(run_dir / "model.keras")
    assert model.name == "template_net" and model.output_shape == (None, 3)
    assert record["model"]["parameters"] == model.count_params()


def test_the_model_file_is_in_the_image_where_the_config_names_it():
    from app import settings

    assert Path(settings.REPO_ROOT, TEMPLATE).is_file()
