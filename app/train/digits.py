"""`python -m app data DIR`: the UCI digits bundled in the image, as PNG class folders (offline).

The image carries them as one file, split once at build time from scikit-learn's copy
(docker/bundle-digits.py), so scikit-learn and SciPy stay out of the image.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from app.settings import DEFAULT_DATASET

BUNDLED = Path(sys.prefix) / "share" / "trainbox" / "digits.npz"  # written by the Dockerfile


def write_digits(data_dir: Path) -> tuple[Path, bool]:
    """Write DIR/digits/{train,test}/<class>/<n>.png; returns (path, written). No-op if present."""
    import numpy as np
    from PIL import Image

    target = data_dir / DEFAULT_DATASET
    if target.exists():
        return target, False
    if not BUNDLED.is_file():
        raise FileNotFoundError(f"{BUNDLED} is missing: write the dataset inside the image (invoke data)")
    with np.load(BUNDLED) as digits:
        images, labels = digits["images"], digits["labels"]
        splits = {"train": digits["train"], "test": digits["test"]}
    data_dir.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_DATASET}.", dir=data_dir))
    try:
        for split, indices in splits.items():
            for index in indices:
                folder = staging / split / str(int(labels[index]))
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[index]).save(folder / f"{index:04d}.png", optimize=False)
        staging.chmod(0o755)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, True
