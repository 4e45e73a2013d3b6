"""The run's network as model.architecture names it, and what the manifest records about it.

small_cnn (app/train/model.py), a Keras Applications backbone (app/train/backbones.py,
weights from app/train/pretrained.py or a file), or the user's models/<name>.py
(app/train/custom_model.py), which is also copied into the run directory.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import keras

from app import architectures, manifest, settings
from app.config import Config
from app.train import pretrained
from app.train.backbones import build_backbone_model
from app.train.custom_model import build_custom_model, load_module
from app.train.model import build_model


@dataclass
class Network:
    model: keras.Model
    record: dict  # the manifest's `model` entry
    code_file: Path | None = None  # models/<name>.py, copied into the run directory


def build(
    config: Config,
    input_shape: tuple[int, int, int],
    num_classes: int,
    data_dir: Path,
    keras_cache_host: str | None = None,
) -> Network:
    architecture = config.model.architecture
    record: dict = {"architecture": architecture}
    code_file = None
    if architectures.is_backbone(architecture):
        model, record["weights"] = backbone(config, input_shape, num_classes, data_dir, keras_cache_host)
    elif architectures.is_model_file(architecture):
        model = build_custom_model(config, input_shape, num_classes, settings.REPO_ROOT)
        code_file = architectures.model_file_path(architecture, settings.REPO_ROOT)
        record["code"] = {"file": architecture, "sha256": pretrained.file_sha256(code_file)}
    else:
        model = build_model(config.model, input_shape, num_classes, config.training.precision)
    record["parameters"] = int(model.count_params())
    return Network(model, record, code_file)


def backbone(
    config: Config, input_shape, num_classes: int, data_dir: Path, keras_cache_host: str | None
) -> tuple[keras.Model, dict]:
    """The backbone model and its manifest entry `weights` (source, file, sha256)."""
    weights = config.model.weights
    if weights == architectures.NO_WEIGHTS:
        return build_backbone_model(config, input_shape, num_classes, None), {"source": "none"}
    if weights == architectures.IMAGENET:
        with pretrained.imagenet_cache(config.model.architecture, keras_cache_host) as used:
            model = build_backbone_model(config, input_shape, num_classes, "imagenet")
        return model, {"source": "imagenet", **(used[0] if used else {})}
    path = data_dir / weights
    model = build_backbone_model(config, input_shape, num_classes, str(path))
    return model, {"source": "file", "file": weights, "sha256": pretrained.file_sha256(path)}


def save_code(network: Network, run_dir: Path) -> None:
    """models/<name>.py into the run directory, beside the model it built."""
    if network.code_file is None:
        return
    target = run_dir / network.record["code"]["file"]
    target.parent.mkdir(parents=True, exist_ok=True)
    manifest.write_bytes_atomic(target, network.code_file.read_bytes())


def prepare_loading(config: Config) -> None:
    """Before a checkpoint of a models/ file's network loads: import the file, so the custom
    layers it registers with Keras are known."""
    if architectures.is_model_file(config.model.architecture):
        load_module(config.model.architecture, settings.REPO_ROOT)
