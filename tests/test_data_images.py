"""Reading odd but usable image files: all come out upright RGB uint8."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from engine.data.images import IMAGE_EXTENSIONS, UnusableImage, read_rgb, read_rgb_resized
from imagegen import ODD_FILE_WRITERS, save_image, write_exif_rotated_jpeg


@pytest.mark.parametrize("kind", sorted(ODD_FILE_WRITERS))
def test_odd_file_is_read_as_rgb_uint8(tmp_path, kind):
    path = ODD_FILE_WRITERS[kind](tmp_path)
    pixels = read_rgb(path)
    assert pixels.dtype == np.uint8 and pixels.ndim == 3 and pixels.shape[2] == 3
    assert pixels.max() > 0  # not an all-black failure placeholder


def test_exif_orientation_is_applied(tmp_path):
    pixels = read_rgb(write_exif_rotated_jpeg(tmp_path / "r.jpg"))
    assert pixels.shape == (40, 20, 3)  # stored 40 wide x 20 tall, shown 20 wide x 40 tall
    assert pixels[:15].mean() > 200 and pixels[25:].mean() < 50  # white half on top after rotation


def test_sixteen_bit_png_keeps_its_brightness(tmp_path):
    values = np.full((8, 8), 128 * 257, dtype=np.uint16)
    path = tmp_path / "mid_gray16.png"
    Image.fromarray(values).save(path)
    assert abs(int(read_rgb(path)[0, 0, 0]) - 128) <= 1  # not clipped to white


def test_transparent_pixels_become_white(tmp_path):
    image = Image.new("RGBA", (4, 4), (0, 0, 0, 0))
    path = save_image(image, tmp_path / "clear.png", "png")
    assert read_rgb(path).min() == 255


def test_animated_gif_gives_its_first_frame(tmp_path):
    frames = [Image.new("RGB", (8, 8), colour).convert("P") for colour in ((255, 0, 0), (0, 0, 255))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=50)
    pixel = read_rgb(path)[4, 4]
    assert pixel[0] > 200 and pixel[2] < 50


def test_read_rgb_resized_changes_aspect_like_training(tmp_path):
    path = ODD_FILE_WRITERS["4000x6"](tmp_path)
    assert read_rgb_resized(path, 32).shape == (32, 32, 3)


def test_pixel_limit_refuses_large_images(tmp_path):
    path = save_image(Image.new("RGB", (100, 100)), tmp_path / "big.png", "png")
    with pytest.raises(UnusableImage) as caught:
        read_rgb(path, max_pixels=5000)
    assert caught.value.kind == "too-large" and "5,000" in caught.value.reason


def test_extensions_are_lower_case_with_dot():
    assert {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"} <= IMAGE_EXTENSIONS
    assert all(ext.startswith(".") and ext == ext.lower() for ext in IMAGE_EXTENSIONS)
