"""Read any image a user may put in a dataset folder as RGB uint8, or say exactly why it cannot be used.

Rules every reader in ConvScope follows (scan, tf.data pipeline, prediction, the GUI):

- EXIF orientation is applied, so a phone photo comes out the way a viewer shows it.
- Every mode becomes RGB: grayscale is copied to three channels, 16-bit images are scaled to 8 bits,
  CMYK is converted, and transparent pixels (RGBA, LA, palette transparency) are composited onto
  white, as a viewer shows them.
- Animated GIF/WebP/TIFF files contribute their first frame.
- Images with more than ``max_pixels`` pixels are refused as possible decompression bombs (the
  default equals Pillow's warning threshold, stricter than its hard error at twice that).

Nothing here imports TensorFlow, and nothing ever writes to an image file.
"""

from __future__ import annotations

import io
import os
import stat
import struct
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError, features

from engine.data.jpeg_check import jpeg_problem

# Our own ``max_pixels`` check replaces Pillow's warning (emitted at the same threshold), which
# would otherwise go to stderr once per large image.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)

DEFAULT_MAX_PIXELS = 89_478_485  # Pillow's MAX_IMAGE_PIXELS default (~9459 x 9459)

_READABLE = {".jpg", ".jpeg", ".jpe", ".jfif", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
if features.check("avif"):
    _READABLE.add(".avif")
IMAGE_EXTENSIONS: frozenset[str] = frozenset(_READABLE)

# Image formats Pillow cannot decode here: listed as unusable with a fix, rather than ignored.
UNSUPPORTED_EXTENSIONS: dict[str, str] = {
    ".heic": "HEIC", ".heif": "HEIF", ".jxl": "JPEG XL", ".svg": "SVG (vector)", ".psd": "Photoshop",
    ".cr2": "camera RAW", ".nef": "camera RAW", ".arw": "camera RAW", ".dng": "camera RAW",
}
if ".avif" not in IMAGE_EXTENSIONS:
    UNSUPPORTED_EXTENSIONS[".avif"] = "AVIF"

_CONVERT_HINT = "convert it to JPEG or PNG"
_EXIF_ORIENTATION = 0x0112
_SIXTEEN_BIT_MODES = {"I;16", "I;16B", "I;16L", "I;16N"}


class UnusableImage(Exception):
    """A file that cannot be used as a training image. ``kind`` is one of :data:`ISSUE_KINDS`."""

    def __init__(self, path: str | os.PathLike, kind: str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.kind = kind
        self.reason = reason


ISSUE_KINDS = ("empty", "truncated", "not-an-image", "undecodable", "too-large", "unreadable", "not-a-regular-file",
               "timed-out")


@dataclass(frozen=True)
class ImageInfo:
    """What a full decode of one file found (before EXIF rotation)."""

    width: int
    height: int
    mode: str
    format: str
    frames: int
    orientation: int
    fast_decodable: bool  # plain 8-bit RGB/gray JPEG or PNG, upright: tf.io.decode_image gives the same pixels
    damage: str = ""  # a JPEG that decodes but is damaged ("Corrupt JPEG data"): what is wrong, else ""


# Files fully decoded by inspect_image, keyed by path, with the (size, mtime) they had then.
# The tf.data pipeline trusts its fast path only for files verified here and unchanged since.
_verified: dict[str, tuple[int, int, ImageInfo]] = {}
_verified_lock = threading.Lock()


_SPECIAL_FILES = ((stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket"), (stat.S_ISCHR, "a character device"),
                  (stat.S_ISBLK, "a block device"), (stat.S_ISDIR, "a folder"))


def _not_regular(path: str, mode: int) -> UnusableImage:
    what = next((name for test, name in _SPECIAL_FILES if test(mode)), "not a plain file")
    return UnusableImage(path, "not-a-regular-file", f"not a regular file ({what}): skipped")


def _open_file(path: str) -> bytes:
    """Read a regular file (or a link to one). A pipe, socket or device is never read: a named pipe
    would block the first read until someone writes to it, /dev/zero never ends. The stat before
    the open catches them; O_NONBLOCK plus fstat after it catches a file swapped for one in between."""
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        raise _not_regular(path, mode)
    descriptor = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0))
    with open(descriptor, "rb", closefd=True) as handle:
        mode = os.fstat(descriptor).st_mode
        if not stat.S_ISREG(mode):
            raise _not_regular(path, mode)
        return handle.read()


def _read_bytes(path: str) -> bytes:
    try:
        data = _open_file(path)
    except PermissionError:
        raise UnusableImage(path, "unreadable", "permission denied: give your user read access to the file") from None
    except FileNotFoundError:
        raise UnusableImage(path, "unreadable", "the file no longer exists") from None
    except OSError as error:
        raise UnusableImage(path, "unreadable", f"cannot be read ({error.strerror or error})") from None
    if not data:
        raise UnusableImage(path, "empty", "empty file (0 bytes)")
    return data


def _format_from_magic(data: bytes) -> str | None:
    """Name image formats Pillow cannot open, so the user learns to convert rather than that the
    file 'is not an image'."""
    head = data[:64]
    if head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in (b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"):
            return "HEIC/HEIF"
        if brand in (b"avif", b"avis"):
            return "AVIF"
    if head.startswith(b"\xff\x0a") or head.startswith(b"\x00\x00\x00\x0cJXL "):
        return "JPEG XL"
    if head.lstrip().startswith((b"<svg", b"<?xml")):
        return "SVG (vector)"
    if head.startswith(b"8BPS"):
        return "Photoshop"
    return None


def _classify_decode_error(path: str, error: BaseException) -> UnusableImage:
    text = str(error)
    if isinstance(error, EOFError) or "truncat" in text.lower():
        return UnusableImage(path, "truncated", f"truncated: the file ends before the image data does ({text or 'EOF'})")
    return UnusableImage(path, "undecodable", f"corrupt or unsupported image data ({text or type(error).__name__}): {_CONVERT_HINT} again")


def _open_image(path: str, data: bytes, max_pixels: int) -> Image.Image:
    try:
        image = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as error:
        raise UnusableImage(path, "too-large", f"possible decompression bomb ({error})") from None
    except UnidentifiedImageError:
        fmt = _format_from_magic(data) or UNSUPPORTED_EXTENSIONS.get(Path(path).suffix.lower())
        if fmt:
            raise UnusableImage(path, "undecodable", f"{fmt} images cannot be decoded here: {_CONVERT_HINT}") from None
        raise UnusableImage(path, "not-an-image", "not an image (the content is no known image format)") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise _classify_decode_error(path, error) from None
    width, height = image.size
    if width * height > max_pixels:
        raise UnusableImage(
            path, "too-large",
            f"{width}x{height} pixels exceeds the {max_pixels:,}-pixel limit (possible decompression bomb): "
            "downscale the image",
        )
    if width < 1 or height < 1:
        raise UnusableImage(path, "undecodable", f"invalid size {width}x{height}")
    return image


def _load(path: str, image: Image.Image) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as error:
        raise UnusableImage(path, "too-large", f"possible decompression bomb ({error})") from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, struct.error) as error:
        raise _classify_decode_error(path, error) from None


def _orientation(image: Image.Image) -> int:
    try:
        return int(image.getexif().get(_EXIF_ORIENTATION, 1) or 1)
    except Exception:  # a broken EXIF block must not make a good image unusable
        return 1


def _is_fast_decodable(image: Image.Image, orientation: int) -> bool:
    if orientation != 1 or getattr(image, "n_frames", 1) != 1:
        return False
    if image.format == "JPEG":
        return image.mode in ("L", "RGB")
    if image.format == "PNG":
        return image.mode in ("L", "RGB") and "transparency" not in image.info
    return False


def to_rgb(image: Image.Image) -> Image.Image:
    """Apply EXIF orientation and convert any Pillow mode to 8-bit RGB (see the module rules)."""
    try:
        image = ImageOps.exif_transpose(image)
    except Exception:  # unusual EXIF data: keep the stored orientation rather than fail
        pass
    mode = image.mode
    if mode in _SIXTEEN_BIT_MODES or mode in ("I", "F"):
        values = np.asarray(image, dtype=np.float64)
        top = values.max(initial=0.0)
        if mode in _SIXTEEN_BIT_MODES or top > 255:
            values = values * (255.0 / 65535.0)
        elif mode == "F" and top <= 1.0:  # float images stored as 0..1
            values = values * 255.0
        gray = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        return Image.fromarray(gray).convert("RGB")
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _stat_key(path: str) -> tuple[int, int] | None:
    try:
        info = os.stat(path)
    except OSError:
        return None
    return info.st_size, info.st_mtime_ns


def inspect_image(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> ImageInfo:
    """Fully decode ``path`` (a truncated file fails here, not mid-training) and describe it.

    JPEGs are decoded at reduced DCT scale: every byte of the entropy-coded data is still read, so
    truncation and corruption are caught, in about half the time. Raises :class:`UnusableImage`.
    """
    path = str(path)
    key = _stat_key(path)
    data = _read_bytes(path)
    image = _open_image(path, data, max_pixels)
    width, height = image.size
    info_mode, info_format = image.mode, image.format or "unknown"
    if image.format == "JPEG":
        image.draft(image.mode, (max(1, width // 8), max(1, height // 8)))
    _load(path, image)  # before reading EXIF: Pillow's PNG getexif() loads and would hide a decode error
    orientation = _orientation(image)
    fast = _is_fast_decodable(image, orientation)
    damage = (jpeg_problem(data) or "") if info_format == "JPEG" else ""
    info = ImageInfo(width, height, info_mode, info_format, getattr(image, "n_frames", 1), orientation, fast, damage)
    if key is not None and key[0] == len(data):
        with _verified_lock:
            _verified[path] = (key[0], key[1], info)
    return info


def verified_fast(path: str) -> bool:
    """True when ``path`` was fully decoded by :func:`inspect_image`, is a plain upright 8-bit
    JPEG/PNG, and its size and modification time have not changed since."""
    entry = _verified.get(path)
    if entry is None or not entry[2].fast_decodable:
        return False
    return _stat_key(path) == (entry[0], entry[1])


def read_rgb(path: str | os.PathLike, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` to an ``H x W x 3`` uint8 array, upright and RGB. Raises :class:`UnusableImage`."""
    path = str(path)
    image = _open_image(path, _read_bytes(path), max_pixels)
    _load(path, image)
    try:
        rgb = to_rgb(image)
    except (OSError, ValueError) as error:
        raise _classify_decode_error(path, error) from None
    return np.ascontiguousarray(np.asarray(rgb, dtype=np.uint8))


def resize_rgb(pixels: np.ndarray, size: int) -> np.ndarray:
    """Plain (aspect-changing) bilinear resize to ``size x size``, antialiased when shrinking: the
    same filter as the tf.data pipeline (``tf.image.resize(..., antialias=True)``)."""
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    image = Image.fromarray(pixels).resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(image, dtype=np.uint8)


def read_rgb_resized(path: str | os.PathLike, size: int, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """:func:`read_rgb` then :func:`resize_rgb` to ``size x size`` (the aspect ratio is not kept,
    exactly as in training)."""
    return resize_rgb(read_rgb(path, max_pixels), size)


def read_image_file(path: str | os.PathLike) -> np.ndarray:
    """One image the user chose (for prediction or inspection) as RGB uint8; a missing or unusable
    file raises :class:`engine.errors.InvalidSetting` naming it — the GUI's and the CLI's one reader."""
    from engine.errors import InvalidSetting  # noqa: PLC0415

    if not os.path.isfile(path):
        raise InvalidSetting(f"{path}: image file not found", "check the path")
    try:
        return read_rgb(path)
    except UnusableImage as error:
        raise InvalidSetting(f"{path}: {error.reason}", "choose a JPEG, PNG, BMP, GIF, TIFF or WebP image") from None
    except OSError as error:
        raise InvalidSetting(f"{path}: {error.strerror or error}", "check that the file is readable") from None
