"""Build time: save scikit-learn's bundled UCI digits, already split, as one .npz file.

The image then needs neither scikit-learn nor SciPy (~200 MB) to write the default
dataset (`python -m app data`, app/train/digits.py reads the file this writes).
Usage: python bundle-digits.py OUTPUT.npz
"""

import sys

import numpy as np
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

TEST_FRACTION = 0.2
SPLIT_SEED = 0

digits = load_digits()
# 0..16 -> 0..255, rounded: 16 * 255 / 16 == 255 exactly.
images = np.clip(np.rint(digits.images * (255.0 / 16.0)), 0, 255).astype(np.uint8)
train_idx, test_idx = train_test_split(
    np.arange(len(images)), test_size=TEST_FRACTION, random_state=SPLIT_SEED, stratify=digits.target
)
np.savez_compressed(
    sys.argv[1],
    images=images,
    labels=digits.target.astype(np.uint8),
    train=np.sort(train_idx),
    test=np.sort(test_idx),
)
print(f"digits: {len(train_idx)} train + {len(test_idx)} test images -> {sys.argv[1]}")
