"""Data folders that attack or surprise the loader: one `trainbox:` line, or a run that copes.

The photos are made here: RGB, mixed sizes, JPEG and PNG, class names that are words.
"""

import json
import os
from pathlib import Path

import numpy as np
import pytest
from image_helpers import read_manifest, run_app, train_args
from PIL import Image
from test_bad_inputs import assert_user_error

pytestmark = pytest.mark.image

QUICK = [
    "data.train=pets/train",
    "data.test=null",
    "data.color_mode=rgb",
    "data.image_size=[8,8]",
    "model.conv_filters=[4]",
    "model.dense_units=8",
    "training.epochs=1",
    "training.batch_size=4",
]
SIZES = [(64, 48), (48, 64), (50, 50), (80, 45)]


def photo(path: bytes | Path, tint: tuple[int, int, int], size: tuple[int, int], seed: int) -> None:
    """A smooth RGB gradient tinted by class, with noise: a stand-in for a small photo."""
    width, height = size
    rng = np.random.default_rng(seed)
    ramp = np.linspace(0.3, 1.0, width)[None, :, None] * np.linspace(1.0, 0.6, height)[:, None, None]
    pixels = ramp * np.asarray(tint)[None, None, :] + rng.normal(0, 12, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    kind = "JPEG" if os.fsdecode(path).endswith(".jpg") else "PNG"
    with open(path, "wb") as handle:
        image.save(handle, kind)


def pet_photos(root: Path, per_class: int = 4) -> Path:
    for index, (name, tint) in enumerate({"cat": (200, 120, 60), "dog": (60, 110, 200)}.items()):
        folder = root / "pets" / "train" / name
        folder.mkdir(parents=True)
        for n in range(per_class):
            suffix = "jpg" if n % 2 else "png"
            photo(folder / f"{name}-{n}.{suffix}", tint, SIZES[n % len(SIZES)], seed=10 * index + n)
    return root


def train(data_dir: Path, output_dir: Path, run_id: str = "hostile"):
    return run_app(*train_args(data_dir, output_dir, run_id, QUICK))


@pytest.mark.parametrize(
    ("size", "what"),
    [
        ((20_000, 10_000), "200 M pixels: PIL's DecompressionBombError"),
        ((10_000, 9_000), "90 M: the warning"),
    ],
)
def test_a_decompression_bomb_png_is_one_line_naming_the_file(tmp_path, size, what):
    data_dir = pet_photos(tmp_path / "data")
    bomb = data_dir / "pets" / "train" / "dog" / "holiday.png"
    Image.new("1", size).save(bomb)  # a few KB on disk, gigabytes once decoded
    assert bomb.stat().st_size < 200_000, what
    result = train(data_dir, tmp_path / "out")
    assert_user_error(result, "image too large", str(bomb))
    assert not (tmp_path / "out" / "hostile").exists()


def test_file_names_that_are_not_utf8_are_listed_fingerprinted_and_recorded(tmp_path):
    data_dir = pet_photos(tmp_path / "data")
    cats = os.fsencode(data_dir / "pets" / "train" / "cat")
    photo(cats + b"/caf\xe9-latin1.jpg", (200, 120, 60), (60, 40), seed=99)  # Latin-1, not UTF-8
    birds = os.fsencode(data_dir / "pets" / "train") + b"/oiseau-\xff\xfe"
    os.mkdir(birds)
    for n in range(3):
        photo(birds + b"/%d.png" % n, (90, 200, 90), SIZES[n], seed=50 + n)

    result = train(data_dir, tmp_path / "out")
    assert result.returncode == 0, result.stderr[-3000:]
    run_dir = tmp_path / "out" / "hostile"
    record = read_manifest(run_dir)
    bird = os.fsdecode(b"oiseau-\xff\xfe")
    assert record["status"] == "completed"
    assert record["data"]["class_names"] == ["cat", "dog", bird]
    assert record["data"]["counts"]["train"] + record["data"]["counts"]["validation"] == 12
    assert len(record["data"]["fingerprint"]) == 64
    assert json.loads((run_dir / "class_names.json").read_text()) == ["cat", "dog", bird]


def test_an_unreadable_image_with_a_name_that_is_not_utf8_is_one_line(tmp_path):
    data_dir = pet_photos(tmp_path / "data")
    broken = os.fsencode(data_dir / "pets" / "train" / "dog") + b"/\xff-broken.png"
    with open(broken, "wb") as handle:
        handle.write(b"\x89PNG\r\n\x1a\n not really a png")
    result = train(data_dir, tmp_path / "out")
    assert_user_error(result, "unreadable image", "-broken.png")
    assert not (tmp_path / "out" / "hostile").exists()


@pytest.mark.parametrize("override", ["\n", "training.\nepochs=3", "\r"])
def test_a_newline_in_set_is_one_trainbox_line(digits_dir, tmp_path, override):
    result = run_app("train", "--set", override, "--data-dir", str(digits_dir), "--output-dir", str(tmp_path))
    assert_user_error(result, "--set ")
    assert not list(tmp_path.iterdir())


def test_a_yaml_key_with_a_newline_is_one_trainbox_line(digits_dir, tmp_path):
    config = tmp_path / "experiment.yaml"
    config.write_text('training:\n  "epochs\\nepochs": 3\n')
    result = run_app(
        "train", "--config", str(config), "--data-dir", str(digits_dir), "--output-dir", str(tmp_path / "out")
    )
    assert_user_error(result, "unknown config key 'training.epochs\\nepochs'")
