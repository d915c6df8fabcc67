"""Generate tiny image datasets (and deliberately odd or broken files) inside a test's tmp_path.

Used by every engine and GUI test that needs images::

    from tests.imagegen import make_shapes_dataset, make_presplit_dataset

    root = make_shapes_dataset(tmp_path / "shapes")                  # root/circle/*.png, root/square/*.png
    root = make_presplit_dataset(tmp_path / "book", counts=(8, 4, 4))  # root/{train,validation,test}/<class>/

Shapes are drawn at random positions, sizes and colours on a random plain background, so a small
convnet can learn them in a few epochs while no two images are identical. Everything is seeded.
"""

from __future__ import annotations

import hashlib
import io
import struct
import zlib
from pathlib import Path
from typing import Callable, Iterable

import numpy as np
from PIL import Image, ImageDraw

SHAPES = ("circle", "square", "triangle", "cross")
_SAVE_FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "bmp": "BMP", "webp": "WEBP", "gif": "GIF", "tif": "TIFF"}


def draw_shape(shape: str, size: int, rng: np.random.Generator) -> Image.Image:
    """One RGB ``size x size`` image of ``shape`` (one of :data:`SHAPES`; other names map onto them)."""
    if shape not in SHAPES:
        shape = SHAPES[sum(shape.encode()) % len(SHAPES)]
    background = tuple(int(v) for v in rng.integers(0, 90, 3))
    colour = tuple(int(v) for v in rng.integers(150, 256, 3))
    image = Image.new("RGB", (size, size), background)
    draw = ImageDraw.Draw(image)
    radius = rng.uniform(0.2, 0.35) * size
    cx, cy = rng.uniform(radius, size - radius, 2)
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    if shape == "circle":
        draw.ellipse(box, fill=colour)
    elif shape == "square":
        draw.rectangle(box, fill=colour)
    elif shape == "triangle":
        draw.polygon([(cx, cy - radius), (cx - radius, cy + radius), (cx + radius, cy + radius)], fill=colour)
    else:
        width = max(1, int(radius / 2))
        draw.line([(cx - radius, cy), (cx + radius, cy)], fill=colour, width=width)
        draw.line([(cx, cy - radius), (cx, cy + radius)], fill=colour, width=width)
    return image


def save_image(image: Image.Image, path: Path, fmt: str) -> Path:
    fmt = fmt.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    kwargs = {"quality": 92} if _SAVE_FORMATS[fmt] in ("JPEG", "WEBP") else {}
    image.save(path, _SAVE_FORMATS[fmt], **kwargs)
    return path


def make_shapes_dataset(
    root: str | Path,
    per_class: int = 12,
    size: int = 48,
    classes: Iterable[str] = ("circle", "square"),
    fmt: str = "png",
    seed: int = 0,
) -> Path:
    """Write a folder of class folders: ``root/<class>/<class>_<i>.<fmt>``, ``per_class`` images each.

    ``fmt`` is an extension: png, jpg, bmp, webp, gif or tif. Returns ``root``.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for name in classes:
        for index in range(per_class):
            save_image(draw_shape(name, size, rng), root / name / f"{name}_{index:03d}.{fmt}", fmt)
    return root


def make_presplit_dataset(
    root: str | Path,
    counts: tuple[int, int, int] = (8, 4, 4),
    size: int = 48,
    classes: Iterable[str] = ("circle", "square"),
    fmt: str = "png",
    seed: int = 0,
) -> Path:
    """Write the book's already-split layout: ``root/{train,validation,test}/<class>/...`` with
    ``counts`` images per class in each subset (a count of 0 leaves that subset out). Returns ``root``."""
    root = Path(root)
    classes = tuple(classes)
    for offset, (subset, count) in enumerate(zip(("train", "validation", "test"), counts)):
        if count:
            make_shapes_dataset(root / subset, count, size, classes, fmt, seed + 1000 * offset)
    return root


def file_hashes(root: str | Path) -> dict[str, str]:
    """sha256 of every file under ``root`` (relative path -> hex), to prove nothing was modified."""
    root = Path(root)
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*")) if path.is_file()
    }



def write_square_photo(folder: Path) -> str:
    """``folder/square.png``: a 44x36 dark photo with a yellow square, not the model's input size."""
    pixels = np.full((36, 44, 3), 30, np.uint8)
    pixels[8:28, 10:30] = (240, 220, 40)
    path = Path(folder) / "square.png"
    Image.fromarray(pixels).save(path)
    return str(path)

# ---- odd but usable files: each writes one file into a class folder and returns its path ----------

def _base(seed: int = 1, size: int = 40) -> Image.Image:
    return draw_shape("circle", size, np.random.default_rng(seed))


def _saved(relative: str, fmt: str, image: Callable[[], Image.Image] = _base) -> Callable[[Path], Path]:
    """A writer that saves ``image()`` as ``folder/relative`` in ``fmt``."""
    return lambda folder: save_image(image(), folder / relative, fmt)


def _png_chunk(kind: bytes, payload: bytes) -> bytes:
    return struct.pack(">I", len(payload)) + kind + payload + struct.pack(">I", zlib.crc32(kind + payload))


def _write_rgba(folder: Path) -> Path:
    image = _base().convert("RGBA")
    image.putalpha(128)
    return save_image(image, folder / "alpha.png", "png")


def _write_png16(folder: Path) -> Path:
    values = (np.asarray(_base().convert("L"), dtype=np.uint16) * 257).astype(np.uint16)
    path = folder / "sixteen_bit.png"
    Image.fromarray(values).save(path)  # mode I;16
    return path


def _write_animated_gif(folder: Path) -> Path:
    frames = [_base(seed).convert("P") for seed in (1, 2, 3)]
    path = folder / "animated.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:], duration=100, loop=0)
    return path


def _write_exif_rotated(folder: Path) -> Path:
    """A 40x20 image stored sideways with EXIF orientation 6: viewers show it 20 wide, 40 tall."""
    return write_exif_rotated_jpeg(folder / "rotated.jpg")


def write_exif_rotated_jpeg(path: Path) -> Path:
    """Stored pixels: 40 wide x 20 tall, left half white, right half black; EXIF orientation 6
    (rotate 90° clockwise to display) so the upright image is 20 wide x 40 tall, white on top."""
    stored = np.zeros((20, 40, 3), dtype=np.uint8)
    stored[:, :20] = 255
    exif = Image.Exif()
    exif[0x0112] = 6
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(stored).save(path, "JPEG", quality=95, exif=exif.tobytes())
    return path


ODD_FILE_WRITERS: dict[str, Callable[[Path], Path]] = {
    "grayscale": _saved("gray.png", "png", lambda: _base().convert("L")), "rgba": _write_rgba,
    "palette": _saved("palette.png", "png", lambda: _base().convert("P", palette=Image.Palette.ADAPTIVE)),
    "cmyk-jpeg": _saved("cmyk.jpg", "jpg", lambda: _base().convert("CMYK")), "png-16-bit": _write_png16,
    "bmp": _saved("plain.bmp", "bmp"), "webp": _saved("plain.webp", "webp"),
    "gif": _saved("still.gif", "gif", lambda: _base().convert("P")), "animated-gif": _write_animated_gif,
    "tiff": _saved("plain.tif", "tif"), "exif-rotated": _write_exif_rotated,
    "upper-case-extension": _saved("UPPER.JPG", "jpg"), "non-ascii-and-spaces": _saved("chat noir été 猫.png", "png"),
    "one-pixel": _saved("one_pixel.png", "png", lambda: Image.new("RGB", (1, 1), (200, 10, 10))),
    "4000x6": _saved("wide_4000x6.png", "png", lambda: Image.new("RGB", (4000, 6), (10, 200, 10))),
    "nested-sub-folder": _saved("deeper/still_deeper/nested.png", "png"),
}


# ---- unusable files: name -> (writer, the issue kind the scan must report) -----------------------

def _jpeg_bytes() -> bytes:
    buffer = io.BytesIO()
    _base(size=64).save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


def _write_truncated_jpeg(folder: Path) -> Path:
    path = folder / "truncated.jpg"
    data = _jpeg_bytes()
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


def damaged_jpeg_bytes(size: int = 96) -> bytes:
    """A JPEG that still decodes but that libjpeg calls "Corrupt JPEG data": written with restart
    markers, then two bytes in the middle of its scan data overwritten with an invalid marker (the
    decoder resynchronises at the next restart marker; the rows between come out garbled)."""
    buffer = io.BytesIO()
    _base(seed=4, size=size).save(buffer, "JPEG", quality=95, restart_marker_blocks=1)
    data = buffer.getvalue()
    scan_start = data.index(b"\xff\xda")
    middle = (scan_start + len(data)) // 2
    return data[:middle] + b"\xff\x35" + data[middle + 2:]


def _write_empty(folder: Path) -> Path:
    path = folder / "empty.png"
    path.write_bytes(b"")
    return path


def _write_text_as_jpeg(folder: Path) -> Path:
    path = folder / "notes.jpg"
    path.write_text("this is a text file with an image extension\n")
    return path


def _write_heic(folder: Path) -> Path:
    """An ISO-BMFF 'ftyp heic' header: what an iPhone HEIC photo starts with (Pillow cannot decode it)."""
    path = folder / "iphone.heic"
    path.write_bytes(struct.pack(">I", 24) + b"ftypheic" + b"\x00\x00\x00\x00" + b"mif1heic" + b"\x00" * 64)
    return path


def _write_corrupt_png(folder: Path) -> Path:
    """A complete PNG whose compressed pixel data is garbage (checksums fixed, so only decoding fails)."""
    header = struct.pack(">IIBBBBB", 32, 32, 8, 2, 0, 0, 0)
    garbage = bytes(range(256)) * 4
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", garbage) + _png_chunk(b"IEND", b"")
    path = folder / "corrupt.png"
    path.write_bytes(data)
    return path


def _write_bomb(folder: Path) -> Path:
    """A PNG header declaring 100,000 x 100,000 pixels (10 gigapixels) in a few hundred bytes."""
    header = struct.pack(">IIBBBBB", 100_000, 100_000, 1, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 1000)
    data = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header) + _png_chunk(b"IDAT", idat) + _png_chunk(b"IEND", b"")
    path = folder / "bomb.png"
    path.write_bytes(data)
    return path


def _write_unreadable(folder: Path) -> Path:
    path = save_image(_base(), folder / "locked.png", "png")
    path.chmod(0)
    return path


BAD_FILE_WRITERS: dict[str, tuple[Callable[[Path], Path], str]] = {
    "truncated-jpeg": (_write_truncated_jpeg, "truncated"),
    "zero-bytes": (_write_empty, "empty"),
    "text-named-jpg": (_write_text_as_jpeg, "not-an-image"),
    "heic": (_write_heic, "undecodable"),
    "corrupt-png-data": (_write_corrupt_png, "undecodable"),
    "decompression-bomb": (_write_bomb, "too-large"),
    "no-read-permission": (_write_unreadable, "unreadable"),
}

# Files the scan must ignore (not count as images, not report as errors).
IGNORED_FILES = (".DS_Store", "Thumbs.db", ".hidden.png", "desktop.ini", "README.txt", "labels.csv")


def write_ignored_files(folder: Path) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for name in IGNORED_FILES:
        path = folder / name
        path.write_bytes(b"not an image\n")
        paths.append(path)
    return paths
