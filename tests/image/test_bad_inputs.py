"""Every mistake a user can make: exit 2, one line on stderr, no traceback, no 'completed' run."""

import json
import shutil
from pathlib import Path

import pytest
from image_helpers import run_app, train_args

pytestmark = pytest.mark.image

QUICK = ["data.image_size=[8,8]", "model.conv_filters=[4]", "model.dense_units=8", "training.epochs=1"]


def small_dataset(digits_dir: Path, root: Path, classes=("0", "1"), per_class=4) -> Path:
    for name in classes:
        target = root / "set" / "train" / name
        target.mkdir(parents=True)
        for source in sorted((digits_dir / "digits" / "train" / name).glob("*.png"))[:per_class]:
            shutil.copy(source, target / source.name)
    return root


def assert_user_error(result, *fragments: str) -> None:
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("trainbox: "), lines[0]
    assert "Traceback" not in result.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def assert_nothing_completed(output_dir: Path) -> None:
    for path in output_dir.rglob("manifest.json"):
        assert json.loads(path.read_text())["status"] != "completed", path


def train(data_dir: Path, output_dir: Path, *overrides: str, run_id="bad"):
    return run_app(*train_args(data_dir, output_dir, run_id, [*QUICK, *overrides]))


def test_unknown_config_key(digits_dir, tmp_path):
    assert_user_error(train(digits_dir, tmp_path, "model.widht=3"), "model.widht")
    assert not (tmp_path / "bad").exists()


def test_malformed_yaml_config(digits_dir, tmp_path):
    config = tmp_path / "broken.yaml"
    config.write_text("training:\n  epochs: [1,\n")
    result = run_app(
        "train", "--config", str(config), "--data-dir", str(digits_dir), "--output-dir", str(tmp_path)
    )
    assert_user_error(result, "line")


def test_missing_data_folder(digits_dir, tmp_path):
    assert_user_error(train(digits_dir, tmp_path / "out", "data.train=nowhere/train"), "nowhere/train")
    assert_nothing_completed(tmp_path)
    assert not (tmp_path / "out" / "bad").exists()


def test_empty_data_folder(tmp_path):
    (tmp_path / "data" / "set" / "train" / "0").mkdir(parents=True)
    (tmp_path / "data" / "set" / "train" / "1").mkdir(parents=True)
    result = train(tmp_path / "data", tmp_path / "out", "data.train=set/train", "data.test=null")
    assert_user_error(result, "no images (JPEG, PNG")
    assert not (tmp_path / "out" / "bad").exists()


def test_single_class(digits_dir, tmp_path):
    data_dir = small_dataset(digits_dir, tmp_path / "data", classes=("3",))
    result = train(data_dir, tmp_path / "out", "data.train=set/train", "data.test=null")
    assert_user_error(result, "single class")


def test_unreadable_image(digits_dir, tmp_path):
    data_dir = small_dataset(digits_dir, tmp_path / "data")
    broken = data_dir / "set" / "train" / "1" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really a png")
    result = train(data_dir, tmp_path / "out", "data.train=set/train", "data.test=null")
    assert_user_error(result, "unreadable image", str(broken))
    assert not (tmp_path / "out" / "bad").exists()


def test_symlink_escaping_the_data_dir(digits_dir, tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "escape").symlink_to(digits_dir / "digits" / "train")
    result = train(tmp_path / "data", tmp_path / "out", "data.train=escape", "data.test=null")
    assert_user_error(result, "outside the data directory")


def test_path_escaping_in_config(digits_dir, tmp_path):
    assert_user_error(train(digits_dir, tmp_path, "data.train=../etc"), "data.train")


def test_output_dir_not_writable(digits_dir, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("a file where the output directory should be")
    assert_user_error(train(digits_dir, blocker / "out"), "not writable")


def test_run_directory_is_never_reused(digits_dir, tmp_path):
    (tmp_path / "taken").mkdir()
    assert_user_error(train(digits_dir, tmp_path, run_id="taken"), "never reused")


def test_resume_unknown_run(digits_dir, tmp_path):
    result = run_app(
        "train",
        "--resume",
        "20260101-000000-abcdef",
        "--data-dir",
        str(digits_dir),
        "--output-dir",
        str(tmp_path),
    )
    assert_user_error(result, "no such run")


def test_resume_refuses_a_completed_run_and_config_flags(reference_run):
    output_dir = reference_run.parent
    result = run_app("train", "--resume", "reference", "--output-dir", str(output_dir))
    assert_user_error(result, "already completed")
    result = run_app("train", "--resume", "reference", "--set", "seed=1", "--output-dir", str(output_dir))
    assert_user_error(result, "--resume")
