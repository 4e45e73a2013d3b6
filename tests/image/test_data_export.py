from pathlib import Path

import pytest
from image_helpers import run_app
from PIL import Image

pytestmark = pytest.mark.image


def test_digits_are_png_class_folders_split_80_20(digits_dir: Path):
    root = digits_dir / "digits"
    for split in ("train", "test"):
        assert sorted(p.name for p in (root / split).iterdir()) == [str(d) for d in range(10)]
    train = list((root / "train").rglob("*.png"))
    test = list((root / "test").rglob("*.png"))
    assert len(train) + len(test) == 1797
    assert len(test) == 360
    image = Image.open(train[0])
    assert image.mode == "L" and image.size == (8, 8)
    assert max(Image.open(p).getextrema()[1] for p in train[:50]) == 255
    assert not [p for p in digits_dir.iterdir() if p.name.startswith(".")], "no staging dir left behind"


def test_second_export_is_a_no_op(digits_dir: Path):
    before = sorted((p, p.stat().st_mtime_ns) for p in (digits_dir / "digits").rglob("*.png"))
    result = run_app("data", str(digits_dir))
    assert result.returncode == 0
    assert "already present" in result.stdout
    assert before == sorted((p, p.stat().st_mtime_ns) for p in (digits_dir / "digits").rglob("*.png"))
