"""Photos as they come: every format and mode users' folders hold, decoded upright and resized."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from app.train.decode import Pixels, Unreadable, decode
from tests.photos import EXIF_ORIENTATION, ROTATE_90_CW_TO_VIEW, VARIANTS, draw, encode

pytestmark = pytest.mark.image

RGB_16 = Pixels(16, 16, 3, "stretch")


def photo(tmp_path, name: str, content: bytes):
    path = tmp_path / name
    path.write_bytes(content)
    return path


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.save)
@pytest.mark.parametrize("resize", ["stretch", "crop", "pad"])
def test_every_kind_decodes_to_the_configured_shape(tmp_path, variant, resize):
    picture = draw(0, (37, 23), np.random.default_rng(1))
    path = photo(tmp_path, f"apple{variant.suffix}", encode(picture, variant.save))
    for channels in (1, 3):
        decoded = decode(path, Pixels(12, 20, channels, resize))
        assert decoded.shape == (12, 20, channels) and decoded.dtype == np.uint8
        assert decoded.std() > 0, "a picture, not a blank"


def mean_error(path, picture: Image.Image, pixels=RGB_16) -> float:
    expected = np.asarray(picture.convert("RGB").resize((pixels.width, pixels.height), Image.BILINEAR))
    return float(np.abs(decode(path, pixels).astype(int) - expected.astype(int)).mean())


@pytest.mark.parametrize("saver", ["rgb_jpeg", "cmyk_jpeg", "gif", "webp", "bmp", "rgb_png"])
def test_colours_survive_every_encoding(tmp_path, saver):
    picture = draw(2, (64, 48), np.random.default_rng(2))
    path = photo(tmp_path, "cloud.img", encode(picture, saver))
    assert mean_error(path, picture) < 12, saver  # lossy formats differ a little, never wildly


def test_a_gif_named_jpg_is_read_as_the_gif_it_is(tmp_path):
    content = encode(draw(1, (40, 30), np.random.default_rng(3)), "gif")
    as_gif = decode(photo(tmp_path, "bike.gif", content), RGB_16)
    as_jpg = decode(photo(tmp_path, "bike.jpg", content), RGB_16)
    assert np.array_equal(as_gif, as_jpg)


def test_sixteen_bit_png_keeps_its_grey_levels(tmp_path):
    levels = np.tile(np.linspace(0, 65535, 16, dtype=np.uint16), (16, 1))
    buffer = io.BytesIO()
    Image.fromarray(levels).save(buffer, "PNG")
    decoded = decode(photo(tmp_path, "ramp.png", buffer.getvalue()), Pixels(16, 16, 1, "stretch"))
    assert decoded[0, 0, 0] == 0 and decoded[0, -1, 0] == 255
    assert np.all(np.diff(decoded[0, :, 0].astype(int)) > 0), "a ramp, not clipped to white"


def test_transparent_pixels_are_shown_over_white(tmp_path):
    clear = Image.new("RGBA", (8, 8), (0, 0, 0, 0))
    buffer = io.BytesIO()
    clear.save(buffer, "PNG")
    decoded = decode(photo(tmp_path, "clear.png", buffer.getvalue()), Pixels(8, 8, 3, "stretch"))
    assert np.all(decoded == 255)


def upright_portrait() -> Image.Image:
    """30 wide, 60 tall: white top half, black bottom half."""
    image = Image.new("RGB", (30, 60), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 30, 30))
    return image


def test_a_portrait_jpeg_stored_on_its_side_comes_out_upright(tmp_path):
    exif = Image.Exif()
    exif[EXIF_ORIENTATION] = ROTATE_90_CW_TO_VIEW
    buffer = io.BytesIO()
    upright_portrait().transpose(Image.Transpose.ROTATE_90).save(buffer, "JPEG", quality=95, exif=exif)
    path = photo(tmp_path, "portrait.jpg", buffer.getvalue())
    with Image.open(path) as stored:
        assert stored.size == (60, 30), "stored landscape"
    decoded = decode(path, Pixels(64, 64, 1, "pad")).astype(int)[..., 0]
    assert decoded[:, :8].max() < 20 and decoded[:, -8:].max() < 20, "portrait: bars left and right"
    assert decoded[4:28, 24:40].min() > 200, "white on top"
    assert decoded[36:60, 24:40].max() < 50, "black below"


def three_bands() -> Image.Image:
    """60 wide, 20 tall: red, green, blue thirds."""
    image = Image.new("RGB", (60, 20))
    for index, colour in enumerate([(255, 0, 0), (0, 255, 0), (0, 0, 255)]):
        image.paste(colour, (20 * index, 0, 20 * (index + 1), 20))
    return image


@pytest.fixture
def bands(tmp_path):
    buffer = io.BytesIO()
    three_bands().save(buffer, "PNG")
    return photo(tmp_path, "bands.png", buffer.getvalue())


def test_stretch_keeps_the_whole_photo_out_of_shape(bands):
    decoded = decode(bands, Pixels(12, 12, 3, "stretch"))
    assert decoded[6, 0, 0] > 200 and decoded[6, -1, 2] > 200, "red left edge, blue right edge"


def test_crop_takes_the_centre_at_the_target_aspect(bands):
    decoded = decode(bands, Pixels(12, 12, 3, "crop"))
    assert decoded[..., 1].min() > 200 and decoded[..., 0].max() < 50, "only the green middle is left"


def test_pad_letterboxes_the_whole_photo(bands):
    decoded = decode(bands, Pixels(12, 12, 3, "pad"))
    assert decoded[:3].max() == 0 and decoded[-3:].max() == 0, "black bars above and below"
    assert decoded[6, 0, 0] > 200 and decoded[6, -1, 2] > 200, "nothing cut off"


@pytest.mark.parametrize("content", [b"meeting notes, not a photo\n", b"\xff\xd8\xff\xe0 truncated jpeg"])
def test_a_file_that_is_no_image_is_unreadable(tmp_path, content):
    with pytest.raises(Unreadable):
        decode(photo(tmp_path, "notes.jpg", content), RGB_16)
