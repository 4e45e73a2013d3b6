"""ImageNet weights through `invoke train`: Keras' cache is a host folder mounted into the
container, so a weights file put there once is used by every run, never downloaded again."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import pytest

from tests.engine.conftest import PROJECT_FILTER
from tests.helpers import invoke
from tests.photos import PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker

# The file keras.applications.MobileNetV3Small(include_top=False, weights="imagenet") looks
# for in $KERAS_HOME/models/ (keras/src/applications/mobilenet_v3.py).
MOBILENET_FILE = "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5"


def carried_weights(path: Path) -> None:
    """A MobileNetV3Small weights file in the format Keras publishes (legacy HDF5), with
    values of our own: what a user carries to a machine without internet."""
    import h5py
    import keras
    from keras.src.legacy.saving import legacy_h5_format

    keras.utils.set_random_seed(7)
    backbone = keras.applications.MobileNetV3Small(include_top=False, weights=None, input_shape=(32, 32, 3))
    path.parent.mkdir(parents=True)
    with h5py.File(path, "w") as handle:
        legacy_h5_format.save_weights_to_hdf5_group(handle, backbone)


@pytest.fixture
def none_left(engine, tmp_path):
    """No container of this test remains (each mounts a folder under its tmp_path); other
    sessions' containers on the shared engine are not this test's business."""
    yield
    left = [
        container.name
        for container in engine.containers.list(all=True, filters=PROJECT_FILTER, ignore_removed=True)
        if any(
            mount.get("Source", "").startswith(str(tmp_path)) for mount in container.attrs.get("Mounts", [])
        )
    ]
    assert not left, f"left behind: {left}"


def test_imagenet_weights_come_from_the_mounted_host_cache(cpu_image, tmp_path, none_left):
    data_dir = make_dataset(tmp_path / "data", 4, 2)
    cache = tmp_path / "keras"
    cached = cache / "models" / MOBILENET_FILE
    carried_weights(cached)
    digest = hashlib.sha256(cached.read_bytes()).hexdigest()
    overrides = [*PHOTO_OVERRIDES, "model.architecture=MobileNetV3Small", "model.weights=imagenet"]
    overrides += ["data.image_size=[32,32]", "training.epochs=1", "training.batch_size=4"]
    result = invoke(
        "train",
        "--data-dir",
        str(data_dir),
        "--output-dir",
        str(tmp_path / "out"),
        *[arg for override in overrides for arg in ("--set", override)],
        env={"TRAINBOX_KERAS_CACHE": str(cache)},
        timeout=900,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "Downloading data from" not in result.stdout + result.stderr
    (run_dir,) = [path for path in (tmp_path / "out").iterdir() if not path.name.startswith(".")]
    weights = json.loads((run_dir / "manifest.json").read_text())["model"]["weights"]
    assert weights["source"] == "imagenet" and weights["file"] == MOBILENET_FILE
    assert weights["sha256"] == digest and weights["published"] is False
    assert hashlib.sha256(cached.read_bytes()).hexdigest() == digest  # used as it was, not replaced
    assert [p.name for p in (cache / "models").iterdir()] == [MOBILENET_FILE]  # nothing fetched beside it
    # Keras writes its keras.json there too: everything in the cache is the user's, nothing root's.
    assert all(p.stat().st_uid == os.getuid() for p in [cache, *cache.rglob("*")])
