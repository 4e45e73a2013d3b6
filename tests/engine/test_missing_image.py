"""What `invoke train` and `invoke reproduce` do when the image they need is not there."""

from __future__ import annotations

import json
import os
import shutil
import uuid

import pytest

from app.launch.images import image_layers
from tests.engine.service_support import finished_run
from tests.helpers import assert_one_line_error, invoke

pytestmark = pytest.mark.docker

TINY = ["--set", "training.epochs=1", "--set", "data.image_size=[8,8]", "--set", "model.conv_filters=[4]",
        "--set", "model.dense_units=8"]  # fmt: skip


def test_train_builds_the_image_when_it_is_missing(engine, cpu_image, tmp_path, no_leftovers):
    # A repository name nothing has used: its :cpu tag is missing (the build itself comes from
    # cpu_image's cache, so this costs seconds, not a cold build).
    repository = f"{os.environ.get('TRAINBOX_IMAGE_REPOSITORY', 'trainbox')}-fresh-{uuid.uuid4().hex[:8]}"
    tag = f"{repository}:cpu"
    try:
        result = invoke("train", "--data-dir", str(tmp_path / "data"), "--output-dir", str(tmp_path / "out"),
                        *TINY, env={"TRAINBOX_IMAGE_REPOSITORY": repository})  # fmt: skip
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
        assert f"{tag} is not built yet: building it" in result.stdout
        built = engine.images.get(tag)
        (manifest,) = (tmp_path / "out").glob("*/manifest.json")
        record = json.loads(manifest.read_text())
        assert record["status"] == "completed"
        assert record["image"] == {
            "id": built.id,
            "tag": tag,
            "code_sha256": built.labels["trainbox.code_sha256"],
            "layers": [{"digest": digest, "step": step} for digest, step in image_layers(built)],
        }
        assert [layer["digest"] for layer in record["image"]["layers"]] == built.attrs["RootFS"]["Layers"]
    finally:
        if engine.images.list(name=tag):
            engine.images.remove(tag)  # only the tag: the layers are cpu_image's


def test_reproduce_when_the_runs_image_is_gone_and_cannot_be_rebuilt_says_what_to_do(
    cpu_image, tmp_path_factory, tmp_path
):
    _, output_dir, run_id = finished_run(tmp_path_factory.mktemp("tiny-run"))
    shutil.copytree(output_dir / run_id, tmp_path / run_id)
    manifest = tmp_path / run_id / "manifest.json"
    record = json.loads(manifest.read_text())
    gone = "sha256:" + uuid.uuid4().hex * 2  # an image this engine never had
    # A dirty tree: no image can be rebuilt from the recorded commit, so nothing stands in for it.
    record["image"]["id"], record["git"]["dirty"] = gone, True
    manifest.write_text(json.dumps(record))
    result = invoke("reproduce", run_id, "--output-dir", str(tmp_path), timeout=300)
    assert result.returncode == 2
    assert_one_line_error(result, f"image {gone[:19]} of run {run_id} is not on this engine",
                          "made from uncommitted changes", "--image-archive")  # fmt: skip
