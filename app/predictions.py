"""What `predict` takes and gives, shared by the host (`invoke predict`) and the container
(`python -m app predict`): the image files a list of paths names, and the table printed.

Pure: no TensorFlow, no docker, no numpy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path

from app import settings

COLUMNS = ("file", "class", "probability")


def images_in(folder: Path) -> list[Path]:
    """The image files below a folder (sub-folders too), sorted; hidden ones skipped."""
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        found += [
            Path(root) / name for name in files if not name.startswith(".") and settings.is_image_name(name)
        ]
    return sorted(found)


def image_files(given: str) -> list[Path]:
    """The images a path names: the file itself, or a folder's images. ValueError (one line)
    for a path that does not exist, a file that is no image, a folder without images."""
    path = Path(given)
    if path.is_dir():
        found = images_in(path)
        if not found:
            raise ValueError(f"{given}: no images ({settings.IMAGE_KINDS}) in this folder")
        return found
    if not path.exists():
        raise ValueError(f"{given}: no such file or folder")
    if not path.is_file() or not settings.is_image_name(path.name):
        raise ValueError(f"{given} is not an image file ({settings.IMAGE_KINDS})")
    return [path]


def all_image_files(paths: Sequence[str]) -> list[Path]:
    return [found for given in paths for found in image_files(given)]


def format_table(rows: list[dict]) -> str:
    """file, predicted class, probability: one row per image, columns aligned."""
    cells = [list(COLUMNS)] + [[row["file"], row["class"], f"{row['probability']:.4f}"] for row in rows]
    widths = [max(len(line[column]) for line in cells) for column in range(2)]
    return "\n".join(f"{line[0]:<{widths[0]}}  {line[1]:<{widths[1]}}  {line[2]}" for line in cells)


def to_json(rows: list[dict]) -> str:
    return json.dumps({"predictions": rows}, indent=2)
