"""Progress of the first decoding pass, as a log shows it: plain lines, one every 10%.

A folder of large photos (12 megapixels each, as a phone takes them) is slow to decode, so
the first pass lasts seconds. They are few, and small files, so they are decoded in this
process: the seconds do not depend on the machine's CPU count. stdout is not a terminal
here, so it must print plain lines (no bar redrawn with carriage returns); the second pass,
from the cache, is quick and prints none.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.config import load_config
from app.train.data import load_dataset
from app.train.files import plan_dataset
from tests.photos import CLASSES, draw

pytestmark = pytest.mark.image

PHOTOS_PER_CLASS = 6
PHOTO_SIZE = (4000, 3000)
LINE = re.compile(r"^decoding big/train: (\d+) images of (\d+) images \((\d+)%\), (\d+) s$")


def big_photos(root: Path) -> Path:
    """root/big/train/<class>/: one large PNG per class, and copies of it (hard links: cheap
    to make, and each decoded anew)."""
    rng = np.random.default_rng(0)
    for label, name in enumerate(CLASSES[:2]):
        folder = root / "big" / "train" / name
        folder.mkdir(parents=True)
        first = folder / f"{name}-0000.png"
        # Blown up pixel by pixel: a 0.5 MB file that still inflates to 36 MB of pixels.
        draw(label, (400, 300), rng).resize(PHOTO_SIZE, Image.Resampling.NEAREST).save(first)
        for index in range(1, PHOTOS_PER_CLASS):
            os.link(first, folder / f"{name}-{index:04d}.png")
    return root


def test_first_decoding_pass_prints_plain_progress_lines(tmp_path, capsys):
    data_dir = big_photos(tmp_path / "data")
    config = load_config(None, ["data.train=big/train", "data.test=null", "data.color_mode=rgb"])
    plan = plan_dataset(data_dir, config.data, config.seed)
    load_dataset(plan, config.data, tmp_path / "cache")
    printed = capsys.readouterr().out
    found = [LINE.match(line) for line in printed.splitlines() if line.startswith("decoding ")]
    assert all(found) and len(found) >= 2, printed
    percents = [int(match[3]) for match in found]
    assert percents == sorted(percents) and percents[-1] == 100, printed
    assert {int(match[2]) for match in found} == {2 * PHOTOS_PER_CLASS}
    assert "\r" not in printed and "\x1b[" not in printed
    # The second run reads the cache: done in well under 2 s, so no progress at all.
    load_dataset(plan_dataset(data_dir, config.data, config.seed), config.data, tmp_path / "cache")
    again = capsys.readouterr().out
    assert "cache: reusing" in again and not re.search(r"^decoding ", again, re.M), again
