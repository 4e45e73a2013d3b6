"""The GPU image, up to the boundary of these machines (no GPU, no NVIDIA runtime)."""

from __future__ import annotations

import pytest

from app import settings
from tests.helpers import assert_one_line_error, invoke, skip_or_fail

pytestmark = [pytest.mark.docker, pytest.mark.gpu, pytest.mark.slow]


@pytest.fixture(scope="module")
def gpu_image(engine, gpu_build):
    tag = settings.image_tag(gpu=True)
    if gpu_build.build is not None:  # `invoke build --gpu`, started once the CPU image was built
        users_own, result = gpu_build.users_own, gpu_build.build.wait()
        gpu_build.build = None
    else:
        users_own = bool(engine.images.list(name=tag))
        result = invoke("build", "--gpu", timeout=3600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    yield engine.images.get(tag)
    # ~6 GB: CI machines are shared, so it goes as soon as these tests are done, unless it
    # was there before (a user's own image stays). No prune of dangling images here: the
    # CPU image's builder stage is dangling too, and later tests rely on its cache.
    if not users_own:
        engine.images.remove(tag, force=True)


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
    if "nvidia" in (engine.info().get("Runtimes") or {}):
        skip_or_fail("this engine has the NVIDIA runtime: the message for its absence cannot be seen here")
    result = invoke("train", "--gpu", "--output-dir", str(tmp_path / "outputs"), "--set", "training.epochs=1")
    assert_one_line_error(result, "no NVIDIA runtime", "NVIDIA Container Toolkit")
    trains = engine.containers.list(all=True, filters={"label": "trainbox.role=train"}, ignore_removed=True)
    assert not [c for c in trains if str(tmp_path) in str(c.attrs.get("Mounts"))], "no container was left"
