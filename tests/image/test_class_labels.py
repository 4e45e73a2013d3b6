"""Class names are the folder names, and every image's label points at its own folder's name.

The digits' folders are named 0-9, their own indices: code that wrote str(index) for a
class name, or labelled a folder by its position in another split, would pass every
digits test. These use word class names, and a test split that lacks a class.
"""

from __future__ import annotations

import shutil

import pytest

from app.config import load_config
from app.train.files import plan_dataset
from tests.photos import CLASSES, PHOTO_OVERRIDES, make_dataset

pytestmark = pytest.mark.image


def test_every_label_names_the_folder_its_image_is_in(tmp_path):
    data_dir = make_dataset(tmp_path, train_per_class=5, test_per_class=2)
    shutil.rmtree(data_dir / "photos" / "test" / CLASSES[0])  # the test split lacks the first class
    config = load_config(None, PHOTO_OVERRIDES)
    plan = plan_dataset(data_dir, config.data, config.seed)
    assert plan.class_names == sorted(CLASSES)
    for split, files in plan.splits().items():
        folders = [path.parent.name for path in files.paths]
        assert [plan.class_names[label] for label in files.labels] == folders, split
    assert sorted({path.parent.name for path in plan.test.paths}) == sorted(CLASSES[1:])
