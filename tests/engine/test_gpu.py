"""The GPU image, up to the boundary of these machines (no GPU, no NVIDIA runtime)."""

from __future__ import annotations

import pytest

from app import settings
from tests.helpers import assert_one_line_error, invoke

pytestmark = [pytest.mark.docker, pytest.mark.gpu, pytest.mark.slow]


@pytest.fixture(scope="module")
def gpu_image(engine):
    result = invoke("build", "--gpu", timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    yield engine.images.get(settings.image_tag(gpu=True))
    # ~6 GB: CI machines are shared, so it goes as soon as these tests are done. No prune
    # of dangling images here: the CPU image's builder stage is dangling too, and later
    # tests rely on its cache (.ci/run prunes at the very end).
    engine.images.remove(settings.image_tag(gpu=True), force=True)


def test_gpu_image_holds_a_cuda_build_of_tensorflow(engine, gpu_image):
    output = engine.containers.run(
        settings.image_tag(gpu=True),
        [
            "python",
            "-c",
            "import os, app, tensorflow as tf; i = tf.sysconfig.get_build_info(); "
            "print(os.getuid(), i['is_cuda_build'], i.get('cuda_version'))",
        ],
        remove=True,
    ).decode()
    uid, cuda, cuda_version = output.split()[-3:]
    assert uid != "0"
    assert cuda == "True"
    assert cuda_version.startswith("12")
    assert gpu_image.labels["trainbox.variant"] == "gpu"


def test_gpu_request_without_nvidia_runtime_is_one_clear_line(engine, gpu_image, tmp_path, no_leftovers):
    result = invoke("train", "--gpu", "--output-dir", str(tmp_path / "outputs"), "--set", "training.epochs=1")
    assert_one_line_error(result, "no NVIDIA runtime", "NVIDIA Container Toolkit")
    assert not engine.containers.list(all=True, filters={"label": "trainbox.role=train"})
