"""One photo file -> one uint8 array of the configured size, with Pillow.

Photos come as they come: JPEG, PNG, GIF, BMP or WebP whatever their file name says, in
any mode (RGB, RGBA, palette, grayscale, 16-bit, CMYK), any size, portrait shots with
EXIF orientation. Every one is turned upright, made RGB (transparency over white) or
grayscale, and resized by `data.resize`: `stretch` to the target size, `crop` the centre
to the target's aspect first, or `pad` (letterbox, black bars).

TF-free and pure: the cache's decoding workers call it, and so can a notebook.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import PIL
from PIL import Image, ImageOps, UnidentifiedImageError

# Bump when a change here alters any decoded pixel: it is part of every cache key.
DECODER_VERSION = 1
RESIZE_MODES = ("stretch", "crop", "pad")
RESAMPLE = Image.Resampling.BILINEAR  # on shrinking, Pillow widens the filter: antialiased
SIXTEEN_BIT_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
TRANSPARENT_BACKGROUND = (255, 255, 255)


TOO_LARGE = "too many pixels to decode safely"


class Unreadable(Exception):
    """The file is not an image Pillow can decode; the message says why, briefly."""


def unreadable_line(path, reason: str) -> str:
    """The one line a user reads about a file that could not be decoded."""
    if reason.startswith(TOO_LARGE):
        return f"image too large: {path} ({reason})"
    return f"unreadable image: {path} ({reason}); set data.skip_unreadable=true to skip such files"


@dataclass(frozen=True)
class Pixels:
    """Everything that decides the decoded pixels of a file, besides its bytes."""

    height: int
    width: int
    channels: int  # 1 (grayscale) or 3 (RGB)
    resize: str  # one of RESIZE_MODES

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)

    @property
    def item_bytes(self) -> int:
        return self.height * self.width * self.channels

    def describe(self) -> str:
        return f"{self.height}x{self.width}x{self.channels}-{self.resize}"

    def key_fields(self) -> dict:
        """What a cache key must include: these settings and the decoder's own version."""
        return {
            "shape": list(self.shape),
            "resize": self.resize,
            "decoder": DECODER_VERSION,
            "pillow": PIL.__version__,
        }


def decode(path: str | Path, pixels: Pixels) -> np.ndarray:
    """The file as a (height, width, channels) uint8 array; Unreadable when it is no image."""
    try:
        with warnings.catch_warnings():
            # Past Pillow's warning size a few KB of PNG may decode to gigabytes: refused too.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                # JPEG only: let libjpeg scale down by 1/2..1/8 while decoding, never below
                # the target on either side (a square request survives a 90-degree turn).
                side = max(pixels.height, pixels.width)
                image.draft(None, (side, side))
                ImageOps.exif_transpose(image, in_place=True)  # no copy: a photo can be 100 MB decoded
                resized = _resize(_convert(image, pixels.channels), pixels)
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise Unreadable(_reason(error)) from None
    except (OSError, ValueError, SyntaxError, EOFError) as error:  # truncated or corrupt
        raise Unreadable(_reason(error)) from None
    array = np.asarray(resized, dtype=np.uint8)
    return array.reshape(pixels.shape)


def _reason(error: Exception) -> str:
    if isinstance(error, UnidentifiedImageError):
        return "not an image Pillow can read"
    if isinstance(error, (Image.DecompressionBombError, Image.DecompressionBombWarning)):
        return f"{TOO_LARGE}: {error}"
    message = " ".join(str(error).split())[:120]
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def _convert(image: Image.Image, channels: int) -> Image.Image:
    if image.mode in SIXTEEN_BIT_MODES:
        image = _eight_bit(image)
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info:
        image = _over_background(image.convert("RGBA"))
    target = "L" if channels == 1 else "RGB"
    return image if image.mode == target else image.convert(target)


def _eight_bit(image: Image.Image) -> Image.Image:
    """16-bit grayscale (0..65535) to 8-bit, rounded: Pillow's own convert would clip at 255."""
    values = np.clip(np.asarray(image, dtype=np.int64), 0, 65535)
    return Image.fromarray(((values * 255 + 32767) // 65535).astype(np.uint8), mode="L")


def _over_background(image: Image.Image) -> Image.Image:
    background = Image.new("RGBA", image.size, (*TRANSPARENT_BACKGROUND, 255))
    return Image.alpha_composite(background, image).convert("RGB")


def _resize(image: Image.Image, pixels: Pixels) -> Image.Image:
    size = (pixels.width, pixels.height)
    if pixels.resize == "crop":
        return ImageOps.fit(image, size, method=RESAMPLE)
    if pixels.resize == "pad":
        return ImageOps.pad(image, size, method=RESAMPLE, color=0)
    if image.size == size:
        return image
    return image.resize(size, RESAMPLE)
