"""Regenerate resources/demo/ from Fashion-MNIST (Debian package ``dataset-fashion-mnist``).

Two datasets, both folders of PNG files the app reads like any user dataset:

- ``pullover-vs-coat/{train,validation,test}/{coat,pullover}/NNNNN.png``: the book's protocol
  (chapter 5, cats vs dogs) on the pair where ImageNet transfer helps most: 1,000 / 500 / 500 images
  per class. Train and validation come from the official training set, test from the official test
  set (``t10k``); ``NNNNN`` is the image's index in its source file.
- ``fashion5/<class>/NNNNN.png``: a folder of class folders (5 classes, 100 images each, from the
  official training set) for the softmax path and the automatic split.

Images are the original 28×28 grayscale pixels, lossless PNG (mode L, optimised). The selection is a
seeded shuffle (seed 0) of each class's indices, so reruns give identical files.
Run: ``.venv/bin/python scripts/make_demo_data.py [--source /usr/share/datasets/fashion-mnist]``.
"""

from __future__ import annotations

import argparse
import gzip
import io
import shutil
import struct
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import atomic  # noqa: E402

DEFAULT_SOURCE = Path("/usr/share/datasets/fashion-mnist")
LABELS = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle-boot")
PAIR = ("coat", "pullover")
PAIR_COUNTS = {"train": 1000, "validation": 500, "test": 500}
FIVE = ("t-shirt", "trouser", "dress", "sneaker", "bag")
FIVE_COUNT = 100
SEED = 0


def read_idx(path: Path) -> np.ndarray:
    """An idx file (gzip): big-endian magic (0x0000, dtype 0x08 = uint8, ndim), dims, then the data."""
    raw = gzip.decompress(path.read_bytes())
    zero, dtype, ndim = struct.unpack(">HBB", raw[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not a uint8 idx file")
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * ndim)
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: {data.size} values, header says {dims}")
    return data.reshape(dims)


def png_bytes(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels, mode="L").save(buffer, "PNG", optimize=True)
    return buffer.getvalue()


def write_images(folder: Path, images: np.ndarray, indices) -> None:
    for index in indices:
        atomic.write_bytes(folder / f"{int(index):05d}.png", png_bytes(images[index]))


def class_indices(labels: np.ndarray, name: str, rng: np.random.Generator) -> np.ndarray:
    indices = np.flatnonzero(labels == LABELS.index(name))
    return rng.permutation(indices)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE)
    parser.add_argument("--out", type=Path, default=ROOT / "resources" / "demo")
    args = parser.parse_args(argv)
    train_x = read_idx(args.source / "train-images-idx3-ubyte.gz")
    train_y = read_idx(args.source / "train-labels-idx1-ubyte.gz")
    test_x = read_idx(args.source / "t10k-images-idx3-ubyte.gz")
    test_y = read_idx(args.source / "t10k-labels-idx1-ubyte.gz")

    pair_root = args.out / "pullover-vs-coat"
    five_root = args.out / "fashion5"
    for folder in (pair_root, five_root):
        if folder.exists():
            shutil.rmtree(folder)

    for name in PAIR:
        train_order = class_indices(train_y, name, np.random.default_rng([SEED, LABELS.index(name), 0]))
        test_order = class_indices(test_y, name, np.random.default_rng([SEED, LABELS.index(name), 1]))
        n_train, n_val = PAIR_COUNTS["train"], PAIR_COUNTS["validation"]
        write_images(pair_root / "train" / name, train_x, sorted(train_order[:n_train]))
        write_images(pair_root / "validation" / name, train_x, sorted(train_order[n_train:n_train + n_val]))
        write_images(pair_root / "test" / name, test_x, sorted(test_order[:PAIR_COUNTS["test"]]))

    for name in FIVE:
        order = class_indices(train_y, name, np.random.default_rng([SEED, LABELS.index(name), 2]))
        write_images(five_root / name, train_x, sorted(order[:FIVE_COUNT]))

    total = sum(p.stat().st_size for p in args.out.rglob("*.png"))
    count = sum(1 for _ in args.out.rglob("*.png"))
    print(f"wrote {count} images, {total / 1e6:.1f} MB of PNG data, under {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
