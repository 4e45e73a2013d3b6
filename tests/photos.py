"""Photo folders made by the tests themselves, the way users' folders come.

Three classes named by words, each with its own colours and shapes (learnable even at
8x8), saved in turn as every format and mode a real folder holds: RGB JPEG, RGBA PNG, a
GIF named .jpg, BMP, WebP, 16-bit grayscale PNG, CMYK JPEG, a portrait JPEG stored on its
side with an EXIF orientation, a palette PNG with transparency, a grayscale JPEG with an
upper-case suffix and a PNG named .jpeg; sizes vary from image to image.

Pillow and NumPy only: used by the image tests and by the host tests alike.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

CLASSES = ("apples", "bicycles", "clouds")
EXIF_ORIENTATION = 0x0112
ROTATE_90_CW_TO_VIEW = 6  # EXIF: the viewer turns the stored image 90 degrees clockwise


@dataclass(frozen=True)
class Variant:
    suffix: str
    save: str  # name of the saver below


VARIANTS = (
    Variant(".jpg", "rgb_jpeg"),
    Variant(".png", "rgba_png"),
    Variant(".jpg", "gif"),  # a GIF named .jpg, as in a real public photo set
    Variant(".bmp", "bmp"),
    Variant(".webp", "webp"),
    Variant(".png", "gray16_png"),
    Variant(".jpeg", "cmyk_jpeg"),
    Variant(".jpg", "exif_rotated_jpeg"),
    Variant(".png", "palette_png_transparent"),
    Variant(".JPG", "gray_jpeg"),
    Variant(".jpeg", "rgb_png"),  # a PNG named .jpeg
)


def draw(label: int, size: tuple[int, int], rng: np.random.Generator) -> Image.Image:
    """An RGB picture of class `label`: apples red discs on green, bicycles dark bars on grey,
    clouds white blobs on blue; positions, sizes and noise vary."""
    width, height = size
    backgrounds = ((60, 140, 50), (200, 200, 195), (70, 130, 220))
    image = Image.new("RGB", size, backgrounds[label])
    pen = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 5))):
        x, y = rng.integers(0, width), rng.integers(0, height)
        r = int(rng.integers(max(2, min(size) // 8), max(3, min(size) // 3)))
        if label == 0:
            pen.ellipse((x - r, y - r, x + r, y + r), fill=(220, int(rng.integers(20, 90)), 30))
        elif label == 1:
            pen.line((x - r, y - r, x + r, y + r), fill=(30, 30, 35), width=max(1, r // 3))
        else:
            pen.ellipse((x - 2 * r, y - r, x + 2 * r, y + r), fill=(250, 250, 250))
    noise = rng.integers(-12, 13, size=(height, width, 3))
    pixels = np.clip(np.asarray(image, dtype=np.int16) + noise, 0, 255).astype(np.uint8)
    return Image.fromarray(pixels, "RGB")


def encode(picture: Image.Image, saver: str) -> bytes:
    """The picture as the bytes of one file of the given kind."""
    out = io.BytesIO()
    if saver == "rgb_jpeg":
        picture.save(out, "JPEG", quality=90)
    elif saver == "rgba_png":
        rgba = picture.convert("RGBA")
        rgba.putalpha(Image.new("L", picture.size, 200))
        rgba.save(out, "PNG")
    elif saver == "gif":
        picture.convert("P", palette=Image.Palette.ADAPTIVE).save(out, "GIF")
    elif saver == "bmp":
        picture.save(out, "BMP")
    elif saver == "webp":
        picture.save(out, "WEBP", quality=90)
    elif saver == "gray16_png":
        gray = np.asarray(picture.convert("L"), dtype=np.uint16) * 257
        Image.fromarray(gray).save(out, "PNG")  # uint16 -> mode I;16
    elif saver == "cmyk_jpeg":
        picture.convert("CMYK").save(out, "JPEG", quality=90)
    elif saver == "exif_rotated_jpeg":
        exif = Image.Exif()
        exif[EXIF_ORIENTATION] = ROTATE_90_CW_TO_VIEW
        # Stored turned 90 degrees counter-clockwise; the orientation tag turns it back.
        picture.transpose(Image.Transpose.ROTATE_90).save(out, "JPEG", quality=90, exif=exif)
    elif saver == "palette_png_transparent":
        palette = picture.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
        palette.info["transparency"] = 0
        palette.save(out, "PNG", transparency=0)
    elif saver == "gray_jpeg":
        picture.convert("L").save(out, "JPEG", quality=90)
    elif saver == "rgb_png":
        picture.save(out, "PNG")
    else:
        raise ValueError(f"unknown saver {saver!r}")
    return out.getvalue()


def make_photos(
    folder: Path,
    per_class: int,
    seed: int = 0,
    sizes: tuple[int, int] = (24, 96),
    classes: tuple[str, ...] = CLASSES,
    variants: tuple[Variant, ...] = VARIANTS,
) -> list[Path]:
    """folder/<class>/<class>-<i><suffix> for every class; sides drawn from `sizes`."""
    rng = np.random.default_rng(seed)
    written = []
    for label, name in enumerate(classes):
        (folder / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            size = (int(rng.integers(*sizes)), int(rng.integers(*sizes)))
            variant = variants[(index + label) % len(variants)]
            path = folder / name / f"{name}-{index:04d}{variant.suffix}"
            path.write_bytes(encode(draw(label, size, rng), variant.save))
            written.append(path)
    return written


def make_dataset(root: Path, train_per_class: int, test_per_class: int, seed: int = 0, **options) -> Path:
    """root/photos/{train,test}/<class>/...; returns root (the data directory)."""
    make_photos(root / "photos" / "train", train_per_class, seed, **options)
    make_photos(root / "photos" / "test", test_per_class, seed + 1, **options)
    return root


PHOTO_OVERRIDES = ["data.train=photos/train", "data.test=photos/test", "data.color_mode=rgb"]
