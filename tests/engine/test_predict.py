"""`invoke predict` against the real engine: a tiny run on word-class photos, then its model
on files and folders in a container, in the run's own image, and each mistake a user can make
as one line."""

from __future__ import annotations

import io
import json
import re
import shutil
import tarfile
import uuid
from pathlib import Path

import pytest

from app import settings
from tests.helpers import REPO_ROOT, assert_one_line_error, invoke
from tests.photos import CLASSES, PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.docker

TINY = [*PHOTO_OVERRIDES, "data.image_size=[8,8]", "model.conv_filters=[4]", "model.dense_units=8",
        "training.epochs=1", "training.batch_size=4"]  # fmt: skip
TEST_PER_CLASS = 3
# A later image whose predict code differs: every row it prints names it instead of a class.
OTHER_CLASS = "from-the-other-image"
OTHER_CODE = "f" * 64
PATCH = f"""
_trained_predict = predict


def predict(*args, **kwargs):
    return [{{**row, "class": "{OTHER_CLASS}"}} for row in _trained_predict(*args, **kwargs)]
"""


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


@pytest.fixture(scope="module")
def other_image(engine, cpu_image):
    """The session's image with other predict code and another code hash, under a tag of ours."""
    module = f"{settings.APP_ROOT_IN_IMAGE}/app/train/predict.py"
    dockerfile = (
        f"FROM {settings.image_tag()}\nUSER root\nCOPY patch.py /tmp/patch.py\n"
        f"RUN cat /tmp/patch.py >> {module} && rm /tmp/patch.py\n"
        f"USER trainbox\nLABEL {settings.CODE_LABEL}={OTHER_CODE}\n"
    )
    context = io.BytesIO()
    with tarfile.open(fileobj=context, mode="w") as archive:
        for name, text in (("Dockerfile", dockerfile), ("patch.py", PATCH)):
            info = tarfile.TarInfo(name)
            info.size = len(text.encode())
            archive.addfile(info, io.BytesIO(text.encode()))
    context.seek(0)
    tag = f"{settings.IMAGE_REPOSITORY}:predict-other-{uuid.uuid4().hex[:8]}"
    image, _ = engine.images.build(fileobj=context, custom_context=True, tag=tag, rm=True)
    yield image
    engine.images.remove(tag, force=True)


def recorded_elsewhere(trained, tmp_path: Path, image_id: str, code_sha256: str, **git) -> Path:
    """A copy of the tiny run whose manifest names another image (and code, git state)."""
    run_dir = shutil.copytree(trained[1], tmp_path / "out" / trained[1].name)
    record = json.loads((run_dir / "manifest.json").read_text())
    record["image"].update(id=image_id, code_sha256=code_sha256)
    record["git"].update(git)
    (run_dir / "manifest.json").write_text(json.dumps(record, indent=2))
    return run_dir


def classes(result) -> list[str]:
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    return [row["class"] for row in json.loads(result.stdout)["predictions"]]


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


def test_the_model_runs_in_the_image_the_run_recorded_not_the_current_one(
    trained, other_image, tmp_path, nothing_left
):
    data_dir, _ = trained
    photos = str(data_dir / "photos" / "test" / "apples")
    run_dir = recorded_elsewhere(trained, tmp_path, other_image.id, OTHER_CODE)
    assert set(classes(predict(run_dir, photos, "--json"))) == {OTHER_CLASS}

    # --image: the current image, on purpose, and said to differ from the run's.
    current = predict(run_dir, photos, "--json", "--image", settings.image_tag())
    assert set(classes(current)) <= set(CLASSES)
    assert f"not in run {run_dir.name}'s image {other_image.id[:19]}" in current.stderr
    assert f"it differs: code_sha256 {OTHER_CODE[:12]} -> " in current.stderr


def test_a_run_whose_image_is_gone_uses_one_with_its_lock_and_code_or_says_what_to_do(
    trained, tmp_path, nothing_left
):
    data_dir, run_dir = trained
    photo = str(next((data_dir / "photos" / "test" / "clouds").iterdir()))
    gone = "sha256:" + "0" * 64
    code = json.loads((run_dir / "manifest.json").read_text())["image"]["code_sha256"]
    same_code = recorded_elsewhere(trained, tmp_path / "same", gone, code)
    result = predict(same_code, photo, "--json")
    assert set(classes(result)) <= set(CLASSES)
    assert f"image {gone[:19]} of run {run_dir.name} is not on this engine; using sha256:" in result.stderr

    # No image with its code, and no commit to rebuild it from: one line, and what to do.
    lost = recorded_elsewhere(trained, tmp_path / "lost", gone, "e" * 64, dirty=True)
    result = predict(lost, photo)
    assert result.returncode == 2
    assert_one_line_error(
        result, f"image {gone[:19]} of run {run_dir.name} is not on this engine and cannot be rebuilt",
        f"--image {settings.image_tag()}",
    )  # fmt: skip
