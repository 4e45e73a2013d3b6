"""Keras Applications backbones: each trains a step on raw pixels, carries Keras' own
preprocessing inside the model, and loads weights from a file or from Keras' cache."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest

from app.config import load_config

pytestmark = pytest.mark.image

SIZE = 32  # the smallest side these backbones accept: keeps each step cheap
# The file keras.applications.MobileNetV3Small(include_top=False, weights="imagenet") looks
# for in $KERAS_HOME/models/ (keras/src/applications/mobilenet_v3.py).
MOBILENET_FILE = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"


def raw_images(count: int, channels: int = 3, seed: int = 0) -> np.ndarray:
    """Pixels as the data pipeline hands them to the model: floats 0..255."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, size=(count, SIZE, SIZE, channels)).astype("float32")


def backbone_config(architecture: str, *overrides: str):
    return load_config(
        None, [f"model.architecture={architecture}", f"data.image_size=[{SIZE},{SIZE}]", *overrides]
    )


def build(config, channels: int, data_dir):
    from app.train import networks
    from app.train.determinism import set_determinism

    set_determinism(config.seed, True)
    return networks.build(config, (SIZE, SIZE, channels), 3, data_dir)


def backbone_of(model):
    import keras

    (nested,) = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    return nested


def values(layer) -> list[np.ndarray]:
    return [np.array(weight) for weight in layer.get_weights()]


def sha256(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.parametrize(
    "architecture, channels", [("MobileNetV3Small", 3), ("EfficientNetB0", 3), ("ResNet50", 1)]
)
def test_backbone_trains_a_step_on_raw_images_and_reloads(tmp_path, architecture, channels):
    import keras

    from app.train.model import compile_model

    config = backbone_config(architecture)
    network = build(config, channels, tmp_path)
    model = network.model
    assert network.record == {
        "architecture": architecture,
        "weights": {"source": "none"},
        "parameters": model.count_params(),
    }
    if channels == 1:  # grey photos become three equal channels inside the model
        assert model.get_layer("grey_to_rgb").output.shape[-1] == 3
    compile_model(model, config.training)
    model.run_eagerly = True  # one step: tracing the graph would cost 10-20 s a backbone
    before = values(backbone_of(model))
    images, labels = raw_images(4, channels), np.array([0, 1, 2, 0])
    history = model.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])
    after = values(backbone_of(model))
    assert any(not np.array_equal(b, a) for b, a in zip(before, after, strict=True)), "the backbone trained"

    model.save(tmp_path / "model.keras")
    loaded = keras.models.load_model(tmp_path / "model.keras")  # no code of ours needed
    predictions = loaded.predict(images, verbose=0)
    assert predictions.shape == (4, 3)
    np.testing.assert_allclose(predictions, model.predict(images, verbose=0), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "architecture, module",
    [("ResNet50", "resnet"), ("MobileNetV2", "mobilenet_v2"), ("DenseNet121", "densenet")],
)
def test_the_preprocessing_inside_the_model_is_keras_own(architecture, module):
    import keras

    from app.architectures import BACKBONES
    from app.train.backbones import preprocess

    inputs = keras.Input((SIZE, SIZE, 3))
    layers = keras.Model(inputs, preprocess(inputs, BACKBONES[architecture]))
    images = raw_images(2)
    expected = getattr(keras.applications, module).preprocess_input(images.copy())
    np.testing.assert_allclose(layers.predict(images, verbose=0), expected, rtol=1e-6, atol=1e-4)


def saved_backbone(seed: int, architecture: str = "MobileNetV3Small"):
    import keras

    keras.utils.set_random_seed(seed)
    constructor = getattr(keras.applications, architecture)
    return constructor(include_top=False, weights=None, input_shape=(SIZE, SIZE, 3))


def test_a_weights_file_loads_and_changes_the_first_predictions(tmp_path):
    # ResNet50: untrained MobileNets and EfficientNets give features of ~1e-10 in inference
    # mode, so their first predictions stay 1/num_classes whatever weights they load.
    source = saved_backbone(seed=7, architecture="ResNet50")
    (tmp_path / "weights").mkdir()
    path = tmp_path / "weights" / "resnet.weights.h5"
    source.save_weights(path)
    images = raw_images(4)

    plain = build(backbone_config("ResNet50"), 3, tmp_path)
    loaded = build(backbone_config("ResNet50", "model.weights=weights/resnet.weights.h5"), 3, tmp_path)

    assert loaded.record["weights"] == {
        "source": "file",
        "file": "weights/resnet.weights.h5",
        "sha256": sha256(path),
    }
    for want, got in zip(values(source), values(backbone_of(loaded.model)), strict=True):
        np.testing.assert_array_equal(got, want)
    # Same seed, same head: only the backbone's weights differ.
    first = plain.model.predict(images, verbose=0)
    assert not np.allclose(first, 1 / 3, atol=1e-3), "predictions that can move"
    assert not np.allclose(first, loaded.model.predict(images, verbose=0), atol=1e-3)


def test_a_weights_file_for_another_backbone_is_one_line(tmp_path):
    from app.train.errors import UserError

    (tmp_path / "weights").mkdir()
    saved_backbone(seed=7).save_weights(tmp_path / "weights" / "mobilenet.weights.h5")
    config = backbone_config("EfficientNetB0", "model.weights=weights/mobilenet.weights.h5")
    with pytest.raises(
        UserError, match=r"^model\.architecture EfficientNetB0: weights mobilenet\.weights\.h5: "
    ) as error:
        build(config, 3, tmp_path)
    assert "\n" not in str(error.value)


def test_imagenet_weights_from_a_prefilled_cache_are_used_without_a_download(tmp_path, monkeypatch, capsys):
    import h5py
    from keras.src.backend import config as keras_config
    from keras.src.legacy.saving import legacy_h5_format
    from keras.src.utils import file_utils

    monkeypatch.setattr(keras_config, "_KERAS_DIR", str(tmp_path / "keras"))  # what KERAS_HOME sets

    def no_download(origin, *args, **kwargs):
        raise AssertionError(f"a download was attempted: {origin}")

    monkeypatch.setattr(file_utils, "urlretrieve", no_download)
    # The file as Keras publishes it (legacy HDF5 weights), with other values: a carried copy.
    source = saved_backbone(seed=7)
    cached = tmp_path / "keras" / "models" / MOBILENET_FILE
    cached.parent.mkdir(parents=True)
    with h5py.File(cached, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, source)

    network = build(backbone_config("MobileNetV3Small", "model.weights=imagenet"), 3, tmp_path)

    weights = network.record["weights"]
    assert weights["source"] == "imagenet" and weights["file"] == MOBILENET_FILE
    assert weights["sha256"] == sha256(cached)
    assert weights["published"] is False  # not Keras' own file, and said so
    assert weights["origin"].startswith("https://") and weights["origin"].endswith(MOBILENET_FILE)
    for want, got in zip(values(source), values(backbone_of(network.model)), strict=True):
        np.testing.assert_array_equal(got, want)
    out = capsys.readouterr().out
    assert "Downloading" not in out
    assert f"{cached} is not the file Keras publishes for MobileNetV3Small" in out


def test_imagenet_weights_missing_without_internet_is_one_line_saying_where_to_put_them(tmp_path):
    import subprocess

    from image_helpers import app_command, app_env, train_args

    from tests.photos import PHOTO_OVERRIDES, make_dataset

    data_dir = make_dataset(tmp_path / "data", 2, 1)
    overrides = [*PHOTO_OVERRIDES, "model.architecture=MobileNetV3Small", "model.weights=imagenet"]
    overrides += [f"data.image_size=[{SIZE},{SIZE}]", "training.epochs=1"]
    closed = "http://127.0.0.1:9"  # a proxy nobody listens on: no way out, as on a compute node
    env = dict(app_env(), KERAS_HOME=str(tmp_path / "keras"), HTTPS_PROXY=closed, https_proxy=closed)
    env.pop("NO_PROXY", None), env.pop("no_proxy", None)
    result = subprocess.run(
        app_command(*train_args(data_dir, tmp_path / "out", "offline", overrides)),
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("trainbox: ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("trainbox: ImageNet weights for MobileNetV3Small are not in Keras' cache")
    assert (
        f"https://storage.googleapis.com/tensorflow/keras-applications/mobilenet_v3/{MOBILENET_FILE}"
        in lines[0]
    )
    assert f"put it in {tmp_path / 'keras' / 'models'}/" in lines[0]
    assert not (tmp_path / "keras" / "models" / MOBILENET_FILE).exists()
    assert not (tmp_path / "out" / "offline").exists()  # stopped before the run was claimed


def test_fine_tuning_freezes_then_unfreezes_and_resumes_across_the_switch(tmp_path):
    """Head only for two epochs (backbone weights and BatchNorm statistics untouched), then the
    whole network; stopped in the frozen stage or at the switch and resumed: the same weights."""
    import signal
    import subprocess

    import keras
    from image_helpers import REPO, app_command, app_env, read_manifest, run_app, train_args, wait_for_epochs

    from tests.photos import PHOTO_OVERRIDES, make_dataset

    data_dir = make_dataset(tmp_path / "data", 8, 2)
    (data_dir / "weights").mkdir()
    source = saved_backbone(seed=7)
    source.save_weights(data_dir / "weights" / "mobilenet.weights.h5")
    overrides = [*PHOTO_OVERRIDES, "model.architecture=MobileNetV3Small", f"data.image_size=[{SIZE},{SIZE}]"]
    overrides += ["data.color_mode=grayscale", "model.weights=weights/mobilenet.weights.h5"]
    overrides += ["training.epochs=3", "training.batch_size=2", "training.freeze_backbone_epochs=2"]
    # A schedule too: after the switch its rates scale to the fine-tuning rate (0.002 -> 0.0002).
    overrides += ["training.lr_schedule=step", "training.lr_step_epochs=2", "training.lr_step_factor=0.5"]
    reference = run_app(*train_args(data_dir, tmp_path, "reference", overrides))
    assert reference.returncode == 0, reference.stderr[-3000:]
    assert "epoch 3: training the whole network at learning rate 0.0002" in reference.stdout
    rates = [
        row["learning_rate"] for row in json.loads((tmp_path / "reference" / "history.json").read_text())
    ]
    assert rates == pytest.approx([0.002, 0.002, 0.0001])  # step: x0.5 from epoch 3, then x0.1

    frozen = keras.models.load_model(tmp_path / "reference" / "checkpoints" / "epoch-0002" / "model.keras")
    for want, got in zip(values(source), values(backbone_of(frozen)), strict=True):
        np.testing.assert_array_equal(got, want)  # moving mean/variance too: BatchNorm in inference mode
    final = keras.models.load_model(tmp_path / "reference" / "model.keras")
    assert any(
        not np.array_equal(w, g) for w, g in zip(values(source), values(backbone_of(final)), strict=True)
    )

    with (tmp_path / "log.txt").open("w") as log:
        process = subprocess.Popen(
            app_command(*train_args(data_dir, tmp_path, "stopped", overrides)),
            cwd=REPO,
            env=app_env(),
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_for_epochs(tmp_path / "stopped", 1, process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=60) == 143, (tmp_path / "log.txt").read_text()[-2000:]
    finally:
        if process.poll() is None:
            process.kill()
    assert read_manifest(tmp_path / "stopped")["epochs_completed"] < 3
    resumed = run_app(
        "train", "--resume", "stopped", "--data-dir", str(data_dir), "--output-dir", str(tmp_path)
    )
    assert resumed.returncode == 0, resumed.stderr[-3000:]

    record = read_manifest(tmp_path / "stopped")
    assert record["status"] == "completed" and record["resumes"]
    assert record["model"] == read_manifest(tmp_path / "reference")["model"]
    assert record["weights_sha256"] == read_manifest(tmp_path / "reference")["weights_sha256"]


@pytest.mark.parametrize(
    "freeze, first, expected",
    [
        (0, 0, [(0, 6)]),
        (2, 0, [(0, 2), (2, 6)]),
        (2, 1, [(1, 2), (2, 6)]),
        (2, 2, [(2, 6)]),
        (2, 4, [(4, 6)]),
        (6, 0, [(0, 6)]),
        (9, 0, [(0, 6)]),
        (2, 6, []),
    ],
)
def test_the_stages_split_at_the_switch(freeze, first, expected):
    from app.train.fine_tune import stages

    config = backbone_config("ResNet50", "training.epochs=6", f"training.freeze_backbone_epochs={freeze}")
    assert stages(config, first) == expected
