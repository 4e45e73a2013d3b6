"""`python -m app data DIR`: scikit-learn's bundled UCI digits as PNG class folders (offline)."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

DATASET_NAME = "digits"
TEST_FRACTION = 0.2
SPLIT_SEED = 0


def export_digits(data_dir: Path) -> tuple[Path, bool]:
    """Write DIR/digits/{train,test}/<class>/<n>.png; returns (path, written). No-op if present."""
    import numpy as np
    from PIL import Image
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    target = data_dir / DATASET_NAME
    if target.exists():
        return target, False
    data_dir.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    # 0..16 -> 0..255, rounded: 16 * 255 / 16 == 255 exactly.
    images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
    indices = np.arange(len(images))
    train_idx, test_idx = train_test_split(
        indices, test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=digits.target
    )
    staging = Path(tempfile.mkdtemp(prefix=f".{DATASET_NAME}.", dir=data_dir))
    try:
        for split, split_idx in (("train", train_idx), ("test", test_idx)):
            for index in sorted(split_idx):
                label = int(digits.target[index])
                folder = staging / split / str(label)
                folder.mkdir(parents=True, exist_ok=True)
                Image.fromarray(images[index]).save(folder / f"{index:04d}.png", optimize=False)
        staging.chmod(0o755)
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target, True
