"""Photo folders for the benchmarks, made here (never downloaded): camera-like RGB JPEGs
and PNGs of mixed sizes in class folders named by words. Host side: Pillow and NumPy only.

The tests have their own maker (tests/photos.py) that also produces every hostile format
and mode; a benchmark wants what most folders hold: JPEGs, some PNGs, smooth content with
sensor-like noise, so that decoding costs what it costs on real photos.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

CLASSES = ("beaches", "forests", "streets")
# The config a photo folder trains with: its classes, in colour (the digits default is grey).
PHOTO_OVERRIDES = ("data.train=photos/train", "data.color_mode=rgb")


def photo(label: int, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """A smooth two-tone gradient whose direction tells the class, plus per-pixel noise."""
    width, height = size
    ramp = np.linspace(0.0, 1.0, width if label != 1 else height, dtype=np.float32)
    field = np.broadcast_to(ramp[None, :] if label != 1 else ramp[:, None], (height, width))
    colours = np.array(((230, 200, 120), (40, 110, 50), (120, 120, 130)), dtype=np.float32)
    base = colours[label] * (0.6 + 0.4 * field[..., None])
    noisy = base + rng.standard_normal((height, width, 3), dtype=np.float32) * 8.0
    return Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8), "RGB")


def make_photos(root: Path, per_class: int, sizes: tuple[int, int], seed: int = 0) -> Path:
    """`root/<class>/<n>.jpg|.png`, sides drawn from `sizes` (min, max); every 5th a PNG."""
    rng = np.random.default_rng(seed)
    for label, name in enumerate(CLASSES):
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            size = tuple(int(side) for side in rng.integers(sizes[0], sizes[1] + 1, size=2))
            picture = photo(label, size, rng)
            if index % 5 == 4:
                picture.save(folder / f"{index:05d}.png")
            else:
                picture.save(folder / f"{index:05d}.jpg", quality=88)
    return root
