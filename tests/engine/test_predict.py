"""`invoke predict` against the real engine: a tiny run on word-class photos, then its model
on files and folders in a container, and each mistake a user can make as one line."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

from tests.engine.conftest import PROJECT_FILTER
from tests.helpers import REPO_ROOT, assert_one_line_error, invoke
from tests.photos import CLASSES, PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker

TINY = [*PHOTO_OVERRIDES, "data.image_size=[8,8]", "model.conv_filters=[4]", "model.dense_units=8",
        "training.epochs=1", "training.batch_size=4"]  # fmt: skip
TEST_PER_CLASS = 3


@pytest.fixture(scope="module")
def trained(cpu_image, tmp_path_factory) -> tuple[Path, Path]:
    """(data dir, run dir) of one completed tiny run."""
    root = tmp_path_factory.mktemp("predict")
    data_dir = make_dataset(root / "data", 6, TEST_PER_CLASS)
    sets = [arg for override in TINY for arg in ("--set", override)]
    result = invoke(
        "train", "--data-dir", str(data_dir), "--output-dir", str(root / "out"), *sets, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return data_dir, Path(re.findall(r"^run directory: (/\S+)$", result.stdout, re.M)[-1])


@pytest.fixture
def nothing_left(engine, tmp_path_factory):
    """No project container that mounts a folder of this module remains."""
    yield
    base = str(tmp_path_factory.getbasetemp())
    left = [
        container.name
        for container in engine.containers.list(all=True, filters=PROJECT_FILTER, ignore_removed=True)
        if any(mount.get("Source", "").startswith(base) for mount in container.attrs.get("Mounts", []))
    ]
    assert not left, f"left behind: {left}"


def predict(run_dir: Path, *args: str, cwd: Path = REPO_ROOT):
    # Options before the paths: whatever follows `--` is a path.
    return invoke("-r", str(REPO_ROOT), "predict", "--output-dir", str(run_dir.parent), run_dir.name, *args,
                  cwd=cwd, timeout=600)  # fmt: skip


def snapshot(folder: Path) -> dict[str, float]:
    return {str(p): p.stat().st_mtime for p in sorted(folder.rglob("*"))}


def test_a_folder_and_files_give_one_row_each_with_word_classes_and_the_paths_as_given(trained, nothing_left):
    data_dir, run_dir = trained
    spaced = data_dir / "my photos"
    spaced.mkdir()
    shutil.copy(next((data_dir / "photos" / "test" / "clouds").iterdir()), spaced / "a cloud.jpg")
    before = snapshot(run_dir)

    result = predict(run_dir, "photos/test", "--", "my photos/a cloud.jpg", cwd=data_dir)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["file", "class", "probability"]
    expected = sorted(p.relative_to(data_dir).as_posix() for p in (data_dir / "photos" / "test").rglob("*.*"))
    rows = [re.split(r"\s{2,}", line) for line in lines[1:]]
    assert [row[0] for row in rows] == [*expected, "my photos/a cloud.jpg"]
    assert {row[1] for row in rows} <= set(CLASSES)
    assert all(0 < float(row[2]) <= 1 for row in rows)
    assert snapshot(run_dir) == before, "predict writes nothing into the run"


def test_json_output_is_the_same_predictions(trained, nothing_left):
    data_dir, run_dir = trained
    folder = data_dir / "photos" / "test" / "apples"
    result = predict(run_dir, str(folder), "--json")
    assert result.returncode == 0, result.stderr[-2000:]
    rows = json.loads(result.stdout)["predictions"]
    assert [row["file"] for row in rows] == [str(p) for p in sorted(folder.iterdir())]
    assert {row["class"] for row in rows} <= set(CLASSES)


def test_each_mistake_is_one_line_and_a_non_zero_exit(trained, tmp_path, nothing_left):
    data_dir, run_dir = trained
    (tmp_path / "notes.txt").write_text("meeting notes")
    (tmp_path / "notes.jpg").write_text("meeting notes, named like a photo")
    (tmp_path / "empty").mkdir()
    photo = str(next((data_dir / "photos" / "test" / "apples").iterdir()))
    unknown = invoke("predict", "20990101-000000-abcdef", photo, "--output-dir", str(run_dir.parent))
    assert unknown.returncode == 2
    assert_one_line_error(unknown, "no run 20990101-000000-abcdef")
    for path, fragment in (
        ("notes.txt", "is not an image file"),
        ("empty", "no images"),
        ("gone.png", "no such"),
    ):
        result = predict(run_dir, str(tmp_path / path))
        assert result.returncode == 2
        assert_one_line_error(result, fragment, str(tmp_path / path))
    # Found out by the decoder in the container: still one line, naming the file as given.
    result = predict(run_dir, photo, "--", str(tmp_path / "notes.jpg"))
    assert result.returncode == 2
    line = assert_one_line_error(result, "not an image", str(tmp_path / "notes.jpg"))
    assert "/trainbox/" not in line
