"""model.architecture and model.weights: what the config accepts, what the host checks and
mounts before any container starts. Pure: no TensorFlow, no engine."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import architectures, settings
from app.config import ConfigError, load_config
from app.container_env import LaunchFacts
from app.launch import training
from app.launch.errors import UsageError

BACKBONE = ["model.architecture=ResNet50", "data.image_size=[64,64]"]


def test_the_default_is_the_small_cnn_without_weights():
    config = load_config()
    assert (config.model.architecture, config.model.weights) == ("small_cnn", "none")


@pytest.mark.parametrize("name", ["MobileNetV3Small", "EfficientNetB0", "ResNet50", "DenseNet121", "VGG16"])
def test_keras_applications_names_as_keras_spells_them(name):
    assert (
        load_config(None, [f"model.architecture={name}", "data.image_size=[32,32]"]).model.architecture
        == name
    )


@pytest.mark.parametrize(
    ("value", "fragments"),
    [
        ("resnet50", ["model.architecture", "as Keras spells it", "did you mean ResNet50?"]),
        ("MobileNetV3Smal", ["did you mean MobileNetV3Small?"]),
        ("NASNetMobile", ["small_cnn, a Keras Applications name"]),
        ("models/sub/net.py", ["directly in the repository's models/ folder"]),
        ("../models/net.py", ["directly in the repository's models/ folder"]),
        ("models/my-net.py", ["models/<name>.py"]),
    ],
)
def test_unknown_architectures_are_one_line_naming_the_key(value, fragments):
    with pytest.raises(ConfigError) as error:
        load_config(None, [f"model.architecture={value}", "data.image_size=[64,64]"])
    for fragment in fragments:
        assert fragment in str(error.value)


def test_a_model_file_name_is_accepted_without_looking_at_the_disk():
    assert load_config(None, ["model.architecture=models/my_net.py"]).model.architecture == "models/my_net.py"


@pytest.mark.parametrize(
    ("architecture", "side", "smallest"),
    [("ResNet50", 16, 32), ("InceptionV3", 64, 75), ("Xception", 70, 71)],
)
def test_images_smaller_than_the_backbone_takes_are_refused(architecture, side, smallest):
    with pytest.raises(
        ConfigError,
        match=rf"model\.architecture {architecture} needs data.image_size of at least {smallest}x{smallest}",
    ):
        load_config(None, [f"model.architecture={architecture}", f"data.image_size=[{side},{side}]"])


@pytest.mark.parametrize(
    "weights", ["none", "imagenet", "weights/resnet50_notop.h5", "w/x.weights.h5", "a.hdf5"]
)
def test_weights_none_imagenet_or_a_relative_h5_file(weights):
    assert load_config(None, [*BACKBONE, f"model.weights={weights}"]).model.weights == weights


@pytest.mark.parametrize(
    ("weights", "fragment"),
    [
        ("ImageNet", "must be none, imagenet or a Keras weights file"),
        ("weights/model.keras", "must be none, imagenet or a Keras weights file"),
        ("/abs/weights.h5", "must be a path relative to the data directory"),
        ("../weights.h5", "escapes the data directory"),
    ],
)
def test_bad_weights_are_one_line(weights, fragment):
    with pytest.raises(ConfigError, match=r"model\.weights") as error:
        load_config(None, [*BACKBONE, f"model.weights={weights}"])
    assert fragment in str(error.value)


@pytest.mark.parametrize("architecture", ["small_cnn", "models/my_net.py"])
def test_weights_need_a_backbone(architecture):
    with pytest.raises(ConfigError, match="needs a Keras Applications backbone"):
        load_config(None, [f"model.architecture={architecture}", "model.weights=imagenet"])


def test_every_backbone_is_a_keras_applications_name_with_a_known_preprocessing():
    modes = {architectures.INCLUDED, architectures.TF, architectures.CAFFE, architectures.TORCH}
    assert set(architectures.BACKBONES.values()) <= modes
    assert {"MobileNetV3Small", "EfficientNetB0", "ResNet50"} <= set(architectures.BACKBONES)


def test_host_checks_name_a_missing_model_file_and_weights_file(tmp_path):
    (tmp_path / "weights").mkdir()
    (tmp_path / "weights" / "here.h5").write_bytes(b"\x89HDF")
    training.check_model_inputs(load_config(None, [*BACKBONE, "model.weights=weights/here.h5"]), tmp_path)
    training.check_model_inputs(load_config(None, ["model.architecture=models/template.py"]), tmp_path)

    with pytest.raises(
        UsageError, match=r"model.weights: weights file not found: .*weights/gone.h5 \(the path is relative"
    ):
        training.check_model_inputs(load_config(None, [*BACKBONE, "model.weights=weights/gone.h5"]), tmp_path)
    with pytest.raises(
        UsageError, match=r"^model.architecture: models/not_there.py not found .*models/template.py"
    ):
        training.check_model_inputs(load_config(None, ["model.architecture=models/not_there.py"]), tmp_path)


def test_a_symlink_out_of_the_data_directory_is_refused(tmp_path):
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    (tmp_path / "outside.h5").write_bytes(b"\x89HDF")
    (data_dir / "link.h5").symlink_to(tmp_path / "outside.h5")
    assert "escapes the data directory" in architectures.missing_weights_file("link.h5", data_dir)


def test_the_keras_cache_defaults_under_the_users_cache_and_can_be_moved(monkeypatch, tmp_path):
    monkeypatch.delenv(settings.KERAS_CACHE_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert settings.keras_cache_dir() == tmp_path / "xdg" / "trainbox" / "keras"
    monkeypatch.setenv(settings.KERAS_CACHE_VARIABLE, str(tmp_path / "shared"))
    assert settings.keras_cache_dir() == tmp_path / "shared"


def spec_for(config, tmp_path: Path):
    facts = LaunchFacts(image_id="sha256:" + "0" * 64, keras_cache_host=str(tmp_path / "keras"))
    dirs = (tmp_path / "data", tmp_path / "out", tmp_path / "config.yaml")
    return training.training_spec(
        training.TrainRequest(), "run", facts, dirs, None, training.keras_cache(config)
    )


def test_imagenet_runs_get_keras_cache_mounted_writable_others_do_not(monkeypatch, tmp_path):
    monkeypatch.setenv(settings.KERAS_CACHE_VARIABLE, str(tmp_path / "keras"))
    spec = spec_for(load_config(None, [*BACKBONE, "model.weights=imagenet"]), tmp_path)
    (mount,) = [m for m in spec.mounts if m["Target"] == settings.KERAS_CACHE_MOUNT]
    assert mount["Source"] == str(tmp_path / "keras") and mount["ReadOnly"] is False
    assert (tmp_path / "keras").is_dir()  # made by the user, not by the engine as root
    assert spec.environment["KERAS_HOME"] == settings.KERAS_CACHE_MOUNT
    assert spec.environment["TRAINBOX_KERAS_CACHE_HOST"] == str(tmp_path / "keras")

    plain = spec_for(load_config(None, BACKBONE), tmp_path)
    assert settings.KERAS_CACHE_MOUNT not in [m["Target"] for m in plain.mounts]
    assert "KERAS_HOME" not in plain.environment


def test_freezing_the_backbone_needs_a_backbone_and_defaults_to_a_tenth_of_the_rate():
    with pytest.raises(
        ConfigError, match=r"training\.freeze_backbone_epochs needs a Keras Applications backbone"
    ):
        load_config(None, ["training.freeze_backbone_epochs=2"])
    config = load_config(
        None, [*BACKBONE, "training.freeze_backbone_epochs=2", "training.learning_rate=0.001"]
    )
    assert config.training.unfrozen_learning_rate == pytest.approx(0.0001)
    config = load_config(
        None, [*BACKBONE, "training.freeze_backbone_epochs=2", "training.fine_tune_learning_rate=3e-5"]
    )
    assert config.training.unfrozen_learning_rate == 3e-5
