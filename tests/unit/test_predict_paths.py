"""`invoke predict`: the paths it takes, how they are shown, the table it prints (no engine)."""

from __future__ import annotations

import pytest

from app import predictions, settings
from app.launch.errors import UsageError
from app.launch.options import after_double_dash
from app.launch.predict import check_paths, shown_as


@pytest.fixture
def photos(tmp_path):
    (tmp_path / "holiday" / "day 2").mkdir(parents=True)
    for name in ("b.jpg", "a.PNG", ".hidden.jpg", "notes.txt", "day 2/c.webp"):
        (tmp_path / "holiday" / name).write_bytes(b"x")
    (tmp_path / "empty").mkdir()
    return tmp_path


def test_a_folder_gives_its_images_sorted_sub_folders_too_hidden_and_other_files_not(photos):
    found = predictions.image_files(str(photos / "holiday"))
    assert [p.relative_to(photos / "holiday").as_posix() for p in found] == ["a.PNG", "b.jpg", "day 2/c.webp"]


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("missing.jpg", "no such file or folder"),
        ("holiday/notes.txt", "is not an image file"),
        ("empty", "no images"),
    ],
)
def test_each_bad_path_is_one_usage_error_naming_it(photos, name, fragment):
    with pytest.raises(UsageError) as raised:
        check_paths((str(photos / "holiday" / "b.jpg"), str(photos / name)))
    assert fragment in str(raised.value) and name in str(raised.value)
    assert raised.value.exit_code == 2


def test_paths_inside_the_container_are_shown_as_the_user_gave_them(photos, monkeypatch):
    monkeypatch.chdir(photos)
    given = check_paths(("holiday/", "holiday/b.jpg"))
    assert [g.inside for g in given] == [f"{settings.PREDICT_MOUNT}/0", f"{settings.PREDICT_MOUNT}/1/b.jpg"]
    assert shown_as(f"{settings.PREDICT_MOUNT}/0/day 2/c.webp", given) == "holiday/day 2/c.webp"
    assert shown_as(f"{settings.PREDICT_MOUNT}/1/b.jpg", given) == "holiday/b.jpg"


def test_paths_after_a_double_dash_are_taken_as_the_shell_split_them():
    argv = ["invoke", "predict", "RUN", "a.jpg", "--", "my photos/b.jpg", "c/"]
    assert after_double_dash(argv) == ["my photos/b.jpg", "c/"]
    assert after_double_dash(["invoke", "predict", "RUN", "a.jpg"]) == []


def test_the_table_has_one_aligned_row_per_image():
    rows = [
        {"file": "holiday/a.PNG", "class": "apples", "probability": 0.98765},
        {"file": "b.jpg", "class": "bicycles", "probability": 0.5},
    ]
    assert predictions.format_table(rows).splitlines() == [
        "file           class     probability",
        "holiday/a.PNG  apples    0.9877",
        "b.jpg          bicycles  0.5000",
    ]


def test_the_containers_error_line_names_the_paths_as_given(photos, monkeypatch):
    from app.launch.predict import failure_line

    monkeypatch.chdir(photos)
    given = check_paths(("holiday/", "holiday/b.jpg"))
    stderr = (
        b"some TensorFlow noise\n"
        b"trainbox: not an image: /trainbox/predict/0/day 2/c.webp (not an image Pillow can read)\n"
    )
    line = failure_line(stderr, 2, given)
    assert line == "not an image: holiday/day 2/c.webp (not an image Pillow can read)"
    assert failure_line(b"Killed\n", 137, given) == "predicting failed (exit 137)"
