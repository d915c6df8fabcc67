"""Augmentation presets: the book's recipe in Keras 3 units, active only in training."""

from __future__ import annotations

import numpy as np
import pytest

from engine.data.augment import AUGMENTATION_PRESETS, augmentation_preview, build_augmentation
from engine.errors import InvalidSetting


def _checkerboard(size: int = 64, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    board = (((yy // cell) + (xx // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


def test_presets_are_described_with_their_units():
    assert {"none", "book", "mild"} <= set(AUGMENTATION_PRESETS)
    assert "0.2°" in AUGMENTATION_PRESETS["book"] and "40°" in AUGMENTATION_PRESETS["book"]
    assert build_augmentation("none") is None


def test_book_shear_is_the_books_small_angle_not_keras_fraction():
    from engine.tf_runtime import keras

    images = np.repeat(_checkerboard()[None].astype(np.float32), 16, axis=0)
    book_shear = build_augmentation("book", seed=1).get_layer("shear")
    keras_shear = keras().layers.RandomShear(x_factor=0.2, y_factor=0.0, fill_mode="nearest", seed=1)
    book_change = np.abs(np.asarray(book_shear(images, training=True)) - images).mean()
    keras_change = np.abs(np.asarray(keras_shear(images, training=True)) - images).mean()
    assert keras_change > 20 * book_change
    assert book_change < 5.0  # at most a quarter pixel of displacement on a 64-pixel board


def test_augmentation_is_inactive_outside_training():
    block = build_augmentation("book", seed=0)
    images = _checkerboard()[None].astype(np.float32)
    assert np.array_equal(np.asarray(block(images, training=False)), images)
    assert not np.array_equal(np.asarray(block(np.repeat(images, 4, 0), training=True)), np.repeat(images, 4, 0))


def test_book_fills_edges_with_nearest_pixels():
    flat = np.full((1, 48, 48, 3), 180, dtype=np.float32)
    out = np.asarray(build_augmentation("book", seed=3)(np.repeat(flat, 8, 0), training=True))
    assert np.abs(out - 180).max() < 1  # constant fill would leave black corners after rotation


def test_preview_is_deterministic_varied_uint8():
    image = _checkerboard(48)
    first = augmentation_preview(image, "mild", count=6, seed=5)
    assert len(first) == 6 and all(p.dtype == np.uint8 and p.shape == image.shape for p in first)
    assert all(np.array_equal(a, b) for a, b in zip(first, augmentation_preview(image, "mild", count=6, seed=5)))
    assert len({p.tobytes() for p in first}) > 1
    assert all(np.array_equal(p, image) for p in augmentation_preview(image, "none", count=2))


def test_unknown_preset_is_refused():
    with pytest.raises(InvalidSetting, match="unknown augmentation preset"):
        build_augmentation("extreme")
