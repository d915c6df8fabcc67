"""Data augmentation as a block of Keras preprocessing layers placed inside the training model.

The layers transform images only in training (``model.fit``); in ``evaluate``/``predict`` Keras calls
them with ``training=False`` and they pass images through unchanged. They work on raw 0..255 floats.

The "book" preset reproduces ``ImageDataGenerator(rotation_range=40, width_shift_range=0.2,
height_shift_range=0.2, shear_range=0.2, zoom_range=0.2, horizontal_flip=True, fill_mode="nearest")``
in the units of Keras 3's layers:

- rotation_range=40 is degrees; ``RandomRotation`` takes a fraction of a full turn: 40/360.
- width/height_shift_range=0.2 is a fraction of the size; ``RandomTranslation(0.2, 0.2)`` is the same.
- shear_range=0.2 is a shear ANGLE in degrees (0.2°), while ``RandomShear(0.2)`` shears by 20% of the
  image size (about 11°). The equivalent factor is tan(0.2°) = 0.0035: under a fifth of a pixel at
  the edge of a 150-pixel image. It is kept, at that size, so the preset is faithful.
- zoom_range=0.2 draws independent horizontal and vertical scales in [0.8, 1.2]; ``RandomZoom`` with
  height and width factors (-0.2, 0.2) does the same.
- fill_mode="nearest" everywhere. Unlike the one combined affine warp of ImageDataGenerator, each
  layer resamples once (bilinear), which blurs a little more.
"""

from __future__ import annotations

import math

import numpy as np

from engine.errors import InvalidSetting
from engine.tf_runtime import keras as _keras

BOOK_ROTATION_DEGREES = 40.0
BOOK_SHIFT = 0.2
BOOK_SHEAR_DEGREES = 0.2
BOOK_SHEAR_FACTOR = math.tan(math.radians(BOOK_SHEAR_DEGREES))  # 0.00349 of the image size
BOOK_ZOOM = 0.2
MILD_SHIFT = 0.1

AUGMENTATION_PRESETS: dict[str, str] = {
    "none": "No augmentation.",
    "book": (
        "The book's ImageDataGenerator recipe: horizontal flip, rotation up to ±40°, shifts up to 20% of "
        "width and height, shear up to 0.2° (an angle, as in the book; Keras' RandomShear(0.2) would mean "
        "20% of the image, about 11°), independent zoom 0.8–1.2 per axis, edges filled with the nearest "
        "pixel. Suits photos of objects in any pose (cats and dogs); it hurts on centred, aligned images "
        "such as product photos or scans, where rotation and zoom change what the class looks like."
    ),
    "mild": (
        "Horizontal flip and shifts up to 10% of width and height, edges filled with the nearest pixel. "
        "For centred, aligned images (product photos, documents) where the book's recipe hurts."
    ),
}


def build_augmentation(preset: str, seed: int | None = None):
    """A ``keras.Sequential`` named "augmentation" for ``preset`` (see :data:`AUGMENTATION_PRESETS`),
    or None for "none". Its layers are named flip, rotation, translation, shear and zoom."""
    if preset not in AUGMENTATION_PRESETS:
        raise InvalidSetting(f"unknown augmentation preset '{preset}'",
                             f"use one of {', '.join(AUGMENTATION_PRESETS)}")
    if preset == "none":
        return None
    layers = _keras().layers

    def seeded(offset: int) -> int | None:
        return None if seed is None else seed + offset

    if preset == "book":
        block = [
            layers.RandomFlip("horizontal", seed=seeded(0), name="flip"),
            layers.RandomRotation(BOOK_ROTATION_DEGREES / 360.0, fill_mode="nearest", seed=seeded(1), name="rotation"),
            layers.RandomTranslation(BOOK_SHIFT, BOOK_SHIFT, fill_mode="nearest", seed=seeded(2), name="translation"),
            layers.RandomShear(x_factor=BOOK_SHEAR_FACTOR, y_factor=0.0, fill_mode="nearest", seed=seeded(3),
                               name="shear"),
            layers.RandomZoom((-BOOK_ZOOM, BOOK_ZOOM), (-BOOK_ZOOM, BOOK_ZOOM), fill_mode="nearest",
                              seed=seeded(4), name="zoom"),
        ]
    else:
        block = [
            layers.RandomFlip("horizontal", seed=seeded(0), name="flip"),
            layers.RandomTranslation(MILD_SHIFT, MILD_SHIFT, fill_mode="nearest", seed=seeded(2), name="translation"),
        ]
    return _keras().Sequential(block, name="augmentation")


def augmentation_preview(image_uint8: np.ndarray, preset: str, count: int = 8, seed: int = 0) -> list[np.ndarray]:
    """``count`` augmented versions of one ``H x W x 3`` uint8 image, for the GUI's preview grid
    (deterministic in ``seed``). Pass a display-sized image: every copy is processed at its size."""
    image = np.asarray(image_uint8)
    if image.ndim != 3 or image.shape[2] != 3:
        raise InvalidSetting(f"preview image has shape {image.shape}", "pass an H x W x 3 RGB image")
    if count < 1:
        raise InvalidSetting(f"preview count {count}", "ask for at least one image")
    block = build_augmentation(preset, seed=seed)
    if block is None:
        return [image.astype(np.uint8, copy=True) for _ in range(count)]
    batch = np.repeat(image[None].astype(np.float32), count, axis=0)
    augmented = np.asarray(block(batch, training=True))
    return [np.clip(np.rint(one), 0, 255).astype(np.uint8) for one in augmented]
