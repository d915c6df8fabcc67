"""Augmentation presets: the book's recipe in the book's units as one RandomAffine warp, active only
in training, saved and loaded with the model under the safe loader."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from engine.data.augment import (AUGMENTATION_PRESETS, REGISTERED_LAYERS, augmentation_preview, book_affine,
                                 build_augmentation, register_layers)
from engine.errors import InvalidSetting, UnsafeModelError

ROOT = Path(__file__).resolve().parent.parent


def _checkerboard(size: int = 64, cell: int = 8) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size]
    board = (((yy // cell) + (xx // cell)) % 2 * 255).astype(np.uint8)
    return np.repeat(board[..., None], 3, axis=2)


def _affine(**kwargs):
    return register_layers()["RandomAffine"](**kwargs)


def _params(n: int, **values) -> dict:
    base = dict(angle=0.0, tx=0.0, ty=0.0, shear=0.0, zx=1.0, zy=1.0, flip=1.0)
    base.update(values)
    return {key: np.full(n, value, dtype=np.float32) for key, value in base.items()}


def _warp(images: np.ndarray, params: dict, interpolation="bilinear", fill_mode="nearest") -> np.ndarray:
    import keras

    matrices = register_layers()["RandomAffine"].transforms(params, images.shape[1], images.shape[2])
    return np.asarray(keras.ops.image.affine_transform(images, matrices, interpolation=interpolation,
                                                       fill_mode=fill_mode))


def test_presets_are_described_with_their_units():
    assert {"none", "book", "mild"} <= set(AUGMENTATION_PRESETS)
    assert "0.2°" in AUGMENTATION_PRESETS["book"] and "40°" in AUGMENTATION_PRESETS["book"]
    assert build_augmentation("none") is None


def test_book_preset_is_one_warp_with_the_books_arguments():
    block = build_augmentation("book", seed=0)
    assert [layer.name for layer in block.layers] == ["book_affine"]
    config = block.layers[0].get_config()
    assert config["rotation_range"] == 40 and config["shear_range"] == 0.2  # degrees, as in the book
    assert config["width_shift_range"] == config["height_shift_range"] == 0.2
    assert config["zoom_range"] == pytest.approx([0.8, 1.2])
    assert config["horizontal_flip"] and config["fill_mode"] == "nearest"
    assert config["interpolation"] == "bilinear"  # as ImageDataGenerator


def test_rotation_turns_a_point_about_the_centre_by_the_drawn_angle():
    image = np.zeros((1, 41, 41, 3), dtype=np.float32)
    image[0, 20, 35] = 255  # 15 px right of the centre (20, 20)
    out = _warp(image, _params(1, angle=math.radians(30)), fill_mode="constant")[0, ..., 0]
    rows, cols = np.mgrid[:41, :41]
    row, col = (rows * out).sum() / out.sum(), (cols * out).sum() / out.sum()
    # input = centre + R(30°) @ (output - centre)  =>  output = centre + R(-30°) @ (15, 0): 30° up
    assert math.hypot(row - 20, col - 20) == pytest.approx(15, abs=0.3)
    assert math.degrees(math.atan2(20 - row, col - 20)) == pytest.approx(30, abs=1.5)


def test_rotation_only_layer_draws_angles_up_to_40_degrees_and_keeps_distances():
    layer = _affine(rotation_range=40, seed=3)
    angles = np.degrees(np.asarray(layer.sample_parameters(400)["angle"]))
    assert np.abs(angles).max() <= 40 and np.abs(angles).max() > 35 and angles.min() < -35
    image = np.zeros((16, 41, 41, 3), dtype=np.float32)
    image[:, 20, 35] = 255
    out = np.asarray(layer(image, training=True))
    for one in out[..., 0]:
        row, col = np.unravel_index(np.argmax(one), one.shape)
        assert math.hypot(row - 20, col - 20) == pytest.approx(15, abs=1.0)
        assert abs(math.degrees(math.atan2(20 - row, col - 20))) <= 40 + 4  # one pixel at 15 px is ~4°


def test_same_matrix_as_image_data_generator_for_the_same_draws():
    pytest.importorskip("scipy")
    from engine.tf_runtime import tf

    generator = tf().keras.preprocessing.image.ImageDataGenerator(fill_mode="nearest")
    yy, xx = np.mgrid[:48, :48].astype(np.float32)
    image = np.stack([xx * 5, yy * 5, 128 + 60 * np.sin(xx / 5) * np.cos(yy / 7)], axis=-1)
    draws = dict(theta=23.0, tx=4.0, ty=-6.0, shear=0.2, zx=1.15, zy=0.85, flip_horizontal=True)
    expected = generator.apply_transform(image, draws)
    # ImageDataGenerator's tx is along its first (x) coordinate, in pixels
    ours = _warp(image[None], _params(1, angle=math.radians(23), tx=4 / 48, ty=-6 / 48, shear=math.radians(0.2),
                                      zx=1.15, zy=0.85, flip=-1.0))[0]
    assert np.abs(ours - expected).max() < 0.01  # the same warp, edges included


def test_book_shear_is_the_books_small_angle_not_keras_fraction():
    images = np.repeat(_checkerboard()[None].astype(np.float32), 16, axis=0)
    book = _affine(shear_range=0.2, seed=1)  # the book's 0.2 degrees
    keras_meaning = _affine(shear_range=math.degrees(math.atan(0.2)), seed=1)  # RandomShear(0.2): ~11.3°
    book_change = np.abs(np.asarray(book(images, training=True)) - images).mean()
    keras_change = np.abs(np.asarray(keras_meaning(images, training=True)) - images).mean()
    assert keras_change > 20 * book_change
    assert book_change < 5.0  # at most a quarter pixel of displacement on a 64-pixel board


def test_flip_only_mirrors_exactly_or_leaves_alone():
    image = _checkerboard(24, 3)[None].astype(np.float32) * np.linspace(0.2, 1, 24)[None, None, :, None]
    out = np.asarray(_affine(horizontal_flip=True, seed=0)(np.repeat(image, 12, 0), training=True))
    flipped = [np.allclose(one, image[0, :, ::-1], atol=1e-3) for one in out]
    assert all(f or np.allclose(one, image[0], atol=1e-3) for f, one in zip(flipped, out))
    assert 0 < sum(flipped) < 12


@pytest.mark.parametrize("preset", ["book", "mild"])
def test_augmentation_is_inactive_outside_training(preset):
    import keras

    block = build_augmentation(preset, seed=0)
    images = (np.repeat(_checkerboard()[None], 4, 0) * np.linspace(0.3, 1, 4)[:, None, None, None]).astype(np.float32)
    # the path Keras takes in predict/evaluate: a model holding the block, called without a training flag
    inputs = keras.Input(shape=images.shape[1:])
    wrapped = keras.Model(inputs, block(inputs))
    assert np.array_equal(wrapped.predict(images, verbose=0), images)  # = the input without the block
    assert np.array_equal(np.asarray(block(images, training=False)), images)
    if preset == "book":  # RandomAffine reads a missing flag as inference (Keras' own layers default to training)
        assert np.array_equal(np.asarray(block(images)), images)
    assert not np.array_equal(np.asarray(block(images, training=True)), images)


def test_book_fills_edges_with_nearest_pixels():
    flat = np.full((1, 48, 48, 3), 180, dtype=np.float32)
    out = np.asarray(build_augmentation("book", seed=3)(np.repeat(flat, 8, 0), training=True))
    assert np.abs(out - 180).max() < 1  # constant fill would leave black corners after rotation


def test_seeded_and_config_round_trip():
    layer = book_affine(7, interpolation="nearest")
    config = layer.get_config()
    twin = type(layer).from_config(config)
    assert twin.get_config() == config and config["interpolation"] == "nearest" and config["seed"] == 7
    images = np.repeat(_checkerboard()[None].astype(np.float32), 4, axis=0)
    assert np.array_equal(np.asarray(layer(images, training=True)), np.asarray(twin(images, training=True)))


def test_bad_settings_are_refused():
    with pytest.raises(InvalidSetting, match="interpolation"):
        _affine(interpolation="bicubic")
    with pytest.raises(InvalidSetting, match="width_shift_range"):
        _affine(width_shift_range=1.5)


def _model_with_book_augmentation():
    import keras

    inputs = keras.Input((32, 32, 3))
    x = build_augmentation("book", seed=0)(inputs)
    x = keras.layers.Rescaling(1 / 255)(x)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(1, activation="sigmoid")(x))


@pytest.fixture()
def augmented_file(tmp_path):
    path = tmp_path / "augmented.keras"
    _model_with_book_augmentation().save(path)
    return path


def test_model_with_random_affine_loads_safely_without_trust(augmented_file):
    from engine.models.loading import load_keras_file, unsafe_parts

    with zipfile.ZipFile(augmented_file) as archive:
        config = json.loads(archive.read("config.json"))
    assert "convscope>RandomAffine" in json.dumps(config) and unsafe_parts(config) == []
    model = load_keras_file(augmented_file)
    layer = model.get_layer("augmentation").get_layer("book_affine")
    assert layer.get_config()["shear_range"] == 0.2
    image = np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    assert np.allclose(np.asarray(model(image, training=False)), np.asarray(model(image, training=False)))


def test_a_fresh_process_loads_it_through_the_safe_loader(augmented_file):
    code = ("import sys; from engine.models.loading import load_model; "
            "m = load_model(sys.argv[1]).model; "
            "print(type(m.get_layer('augmentation').get_layer('book_affine')).__name__)")
    done = subprocess.run([sys.executable, "-c", code, str(augmented_file)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "RandomAffine"


def _rewrite_config(source: Path, target: Path, edit) -> Path:
    with zipfile.ZipFile(source) as src, zipfile.ZipFile(target, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "config.json":
                data = json.dumps(edit(json.loads(data.decode()))).encode()
            dst.writestr(item, data)
    return target


@pytest.mark.parametrize("field, value", [
    ("registered_name", "convscope>Evil"),  # a name ConvScope never registered
    ("module", "evil_package.layers"),  # our name, somebody else's module
    ("class_name", "Evil"),
])
def test_unknown_custom_classes_are_still_refused(tmp_path, augmented_file, field, value):
    from engine.models.loading import load_keras_file

    def tamper(node):
        if isinstance(node, dict):
            if node.get("registered_name") == "convscope>RandomAffine":
                node[field] = value
            for child in node.values():
                tamper(child)
        elif isinstance(node, list):
            for child in node:
                tamper(child)
        return node

    bad = _rewrite_config(augmented_file, tmp_path / "tampered.keras", tamper)
    with pytest.raises(UnsafeModelError, match="custom object"):
        load_keras_file(bad)


def test_whitelist_is_exact_names_only():
    assert set(REGISTERED_LAYERS) == {"convscope>RandomAffine"}
    assert REGISTERED_LAYERS["convscope>RandomAffine"] == ("engine.data.augment", "RandomAffine")


def test_importing_the_module_does_not_load_tensorflow():
    code = "import sys, engine.data.augment, engine.models.loading; print('tensorflow' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr[-2000:]


def test_preview_is_deterministic_varied_uint8():
    image = _checkerboard(48)
    for preset in ("mild", "book"):
        first = augmentation_preview(image, preset, count=6, seed=5)
        assert len(first) == 6 and all(p.dtype == np.uint8 and p.shape == image.shape for p in first)
        assert all(np.array_equal(a, b) for a, b in zip(first, augmentation_preview(image, preset, count=6, seed=5)))
        assert len({p.tobytes() for p in first}) > 1
    assert all(np.array_equal(p, image) for p in augmentation_preview(image, "none", count=2))


def test_unknown_preset_is_refused():
    with pytest.raises(InvalidSetting, match="unknown augmentation preset"):
        build_augmentation("extreme")
